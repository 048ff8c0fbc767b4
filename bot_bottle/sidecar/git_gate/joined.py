"""One more reading of a text a push adds, for a value the detectors skip as it is written.

``shell_joined``: a value cut into unquoted shell assignments joined by expansion
(``A=ghp_x1; B=...; echo $A$B``). Each word holding two expansions or more is read with the
values assigned in the same text put in, all such words in one text (one read), each on the
line of the word. A quoted value is put in after the word's first only when random-looking
(``B="..."``); short quoted parts are how tests write a token, and the bottle's own values in
quoted parts are found by ``split``. (A well-known token glued to the characters around it,
``xghp_...``, is the detectors' own reading: ``dlp.tokens.Glue``.)

``cut_tokens``: a well-known token format (``ghp_...``, ``sk-ant-...``, ``AKIA...``, ``xoxb-...``,
``ya29....``, a PEM private key's header) cut across neighbouring lines: string literals joined
in code (implicit concatenation, ``+``, C's adjacent literals), a shell line continuation, a YAML
multi-line scalar, a list of pieces, halves assigned to two names. Where a line's last run of
token characters starts with a format's prefix (or is a prefix's start, ``"gh"``, which the next
lines must make whole) and nothing but closing decoration follows it, that run is read joined
with the first literal (or bare run) of each of the next lines, one more line at a time (at most
``MAX_CUT_LINES``), in one changed block of one file. Up to ``MAX_GAP_LINES`` lines between two
pieces are read past: blank lines and comments, and (between two assignments the text joins by
name, ``token = a + b``) other code. A hit counts only when it crosses a join and is a token
format's (not ``generic-secret-assignment``: joined pieces are no assignment), reported on the
line holding most of it.

``cut_tokens`` also reads a token cut on ONE line: string literals the line joins with nothing
but joining syntax between them (``"gh" "p_..."``, ``"..." + "..."``, ``'...' . '...'``,
``"..." .. "..."``, ``f"ghp_{'...'}"``, ``${"..."}``, escaped quotes of code in a JSON string),
read joined from the piece a prefix starts in (at most ``MAX_LINE_PIECES``); a piece after a ","
only when random-looking (``_random_piece``), as across lines. ``shell_joined`` puts in quoted
values too, each after a word's first only when random-looking (dec12d: quoted pieces under
twelve characters are how tests write tokens).

It returns ``(detector, line)`` with lines in ``text`` and no span (a span in the text read
would not be one of ``text``'s).

Past a cap of ``cut_tokens`` (``MAX_CANDIDATES`` places a cut may start across lines, or chains
joined on one line; ``CUT_BUDGET`` characters of joins) the rest is not read: it returns a
``scan-limit (...)`` detector on the line reading stopped at, a finding that refuses the push
(stopping silently let decoys hide a real cut after them).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import re
from collections.abc import Callable, Iterable, Iterator

HitsOf = Callable[[str], Iterable[object]]


# Two expansions in one shell word (``$A$B``, ``"${A}x${B}"``); the pattern starts with a literal
# "$", so the regex engine skips ahead fast in a text without one.
_TWO_EXPANSIONS = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?[^\s;&|()<>'`$]*\$\{?[A-Za-z_]")
_WORD_END = frozenset(" \t\n\r\f\v;&|()<>'`")
_EXPANSION = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
# What may stand before ``NAME=`` in an assignment (a line's start, blanks, ``;``, ``&``, ``|``,
# ``(``, or ``export NAME=`` and the like after a blank), and an unquoted value after it.
_BEFORE_ASSIGNMENT = frozenset(" \t\n\r;&|(")
_UNQUOTED_VALUE = re.compile(r"[^\s;&|()<>'\"`$\\]+(?=[\s;&|)]|$)")
# A quoted value of token characters (``B="..."``): joined only where it looks like a generated
# token's half (``_random_piece``), or is the word's first value (dec12d: short quoted pieces are
# how tests write tokens).
_QUOTED_VALUE = re.compile(r"([\"'])([A-Za-z0-9_\-.]{1,300})\1(?=[\s;&|)]|$)")


def _assigned(text: str, names: Iterable[str]) -> dict[str, tuple[str, bool]]:
    """The value each of ``names`` is last assigned in ``text`` and whether it was quoted (found
    by name: a search for every assignment of a long script cost more than the words it joins)."""
    values: dict[str, tuple[str, bool]] = {}
    for name in names:
        at = text.find(name + "=")
        while at != -1:
            if at == 0 or text[at - 1] in _BEFORE_ASSIGNMENT:
                value = _UNQUOTED_VALUE.match(text, at + len(name) + 1)
                quoted = None if value else _QUOTED_VALUE.match(text, at + len(name) + 1)
                if value:
                    values[name] = (value.group(), False)
                elif quoted:
                    values[name] = (quoted.group(2), True)
            at = text.find(name + "=", at + 1)
    return values


def _joining_words(text: str) -> list[tuple[int, str]]:
    """``(offset, word)`` of each shell word holding two expansions or more, each once."""
    words: list[tuple[int, str]] = []
    last_end = 0
    for match in _TWO_EXPANSIONS.finditer(text):
        if match.start() < last_end:
            continue  # in the word before: each word is walked once
        start = match.start()
        while start > last_end and text[start - 1] not in _WORD_END:
            start -= 1
        end = match.end()
        while end < len(text) and text[end] not in _WORD_END:
            end += 1
        words.append((start, text[start:end]))
        last_end = end
    return words


def shell_joined(text: str, hits_of: HitsOf) -> list[tuple[str, int]]:
    """``(detector, line)`` of what the detectors find in the words ``text`` joins from unquoted
    shell assignments made in it; nothing read when it joins none (the usual case)."""
    if text.count("$") < 2 or "=" not in text:
        return []
    words = _joining_words(text)
    if not words:
        return []
    names = {m.group(1) or m.group(2) for _, word in words for m in _EXPANSION.finditer(word)}
    values = _assigned(text, names)
    if len(values) < 2:
        return []
    joined: list[str] = []
    lines: list[int] = []
    for start, word in words:
        used = 0

        def put(m: re.Match[str]) -> str:
            nonlocal used
            value, quoted = values.get(m.group(1) or m.group(2), ("", False))
            if not value or quoted and used and not _random_piece(value):
                return " "  # an unknown variable (or a fixture's piece): not joined across it
            used += 1
            return value

        spelled = _EXPANSION.sub(put, word).replace('"', "")
        if used >= 2:
            joined.append(spelled)
            lines.append(text.count("\n", 0, start) + 1)
    if not joined:
        return []
    return [(str(getattr(hit, "detector")), lines[min(int(getattr(hit, "line", 1)), len(lines)) - 1])
            for hit in hits_of("\n".join(joined))]


# ------------------------------------------------------------------------------ cut tokens

# Where a token format's prefix is: one pattern per first character searched, each starting at a
# single literal (the fastest search ``re`` has: an alternation of them, or ``str.find`` per
# prefix, read a text several times slower), the rest checked backwards from there. A match is a
# prefix's last character ("_", "-"), or an AWS or Google key's, a Google access token's or a
# PEM header's start.
_PREFIXES = (
    re.compile(r"_(?<=[pousrmPOUSR]_)(?:(?<=gh[pousr]_)|(?<=GH[POUSR]_)|(?<=npm_)|(?<=k_live_)|(?<=github_pat_))"),
    re.compile(r"-(?<=[abeikoprstKX]-)(?:(?<=sk-)|(?<=SK-ANT-)|(?<=gl[dr]t-)|(?<=glp(?:at|tt)-)"
               r"|(?<=xox[abposre]-)|(?<=xapp-)|(?<=GOCSPX-)|(?<=pypi-))"),
    re.compile(r"A(?:KIA|SIA|BIA|CCA|Iza)"),
    re.compile(r"-----BEGIN"),
    re.compile(r"ya29\."),
)
_PEM = "-----B"  # a PEM header's start, whole or cut after its dashes
_GOOGLE_ACCESS = "ya"  # a Google access token's start: its body has dots ("ya29.c.c0A...")


def _partials() -> list[str]:
    """Each token prefix's starts of two characters or more that hold no whole prefix (a prefix
    cut itself: ``"gh"`` ending a line, ``"p_..."`` starting the next). A PEM header's start
    needs its first letter: a line of dashes is ordinary."""
    whole = ["gh" + c + "_" for c in "pousr"] + ["GH" + c + "_" for c in "POUSR"] + [
        "npm_", "rk_live_", "sk_live_", "github_pat_", "sk-", "SK-ANT-", "gldt-", "glrt-", "glpat-", "glptt-",
        "xapp-", "GOCSPX-", "pypi-", "AKIA", "ASIA", "ABIA", "ACCA", "AIza", "-----BEGIN", "ya29."]
    whole += ["xox" + c + "-" for c in "abposre"]
    parts = {prefix[:size] for prefix in whole for size in range(2, len(prefix))}
    parts = {part for part in parts if not any(prefix in part for prefix in whole)}
    return sorted((part for part in parts if not part.startswith("-") or len(part) > 5), key=lambda p: (-len(p), p))


def _trie(words: list[str]) -> str:
    """An alternation of ``words`` factored by their first characters (tried one character at a
    time, not word by word at each line break)."""
    heads: dict[str, list[str]] = {}
    for word in words:
        heads.setdefault(word[0], []).append(word[1:])
    branches = []
    for head, rests in sorted(heads.items()):
        longer = [rest for rest in rests if rest]
        tail = _trie(longer) if longer else ""
        branches.append(re.escape(head) + (f"(?:{tail})" + ("?" if "" in rests else "") if tail else ""))
    return "|".join(branches)


# A line's last run that is a prefix's start and nothing else (what may close a piece follows it,
# then the line's end): the run is read on with the next lines as a whole prefix is, and counts
# only when they make the prefix whole. Searched in the text reversed, from each line break back:
# a pattern starting at a literal is searched fast, one starting at any of the prefixes' first
# letters (or looking behind) several times slower.
_PARTIAL_REVERSED = re.compile(
    r"\n[ \t\r+,;).&|\]\\]*+[\"'`]?(?:n\\)?"
    r"(?=[" + "".join(sorted({re.escape(part[-1]) for part in _partials()})) + "])"
    r"(" + _trie([part[::-1] for part in _partials()]) + r")(?![A-Za-z0-9_\-.])"
)


def _partial_starts(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each line's last run that is a prefix's start, in order."""
    if len(text) < 3:
        return []
    reversed_text, size = text[::-1], len(text)
    # One past the cap: more starts than are read is then seen (``_line_cuts`` refuses the text).
    found = itertools.islice(_PARTIAL_REVERSED.finditer(reversed_text), MAX_CANDIDATES + 1)
    return sorted((size - match.end(1), size - match.start(1)) for match in found)


_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


# The same prefixes with what a cut needs after them (a run to the line's end but closing
# decoration), in one pattern: slower per character than the probes, but it lists only the lines
# a cut can start on, for a text with more prefixes than ``MAX_PREFIXES`` (read one by one, a line
# of prefixes run together would cost a walk back from each).
_CANDIDATE = re.compile(
    r"(?<![A-Za-z0-9_\-])((?:gh[pousr]|GH[POUSR]|npm|[rs]k_live|github_pat)_|(?:sk|SK-ANT|gl[dr]t|glp(?:at|tt)"
    r"|xox[abposre]|xapp|GOCSPX|pypi)-|A(?:KIA|SIA|BIA|CCA|Iza)|-----BEGIN|ya29\.)"
    r"[A-Za-z0-9 _\-.]{0,300}+(?:\\n)?[\"'`]?[ \t\r+,;).&|\]\\]*\n"
)
MAX_PREFIXES = 1024
_WHOLE = re.compile(_CANDIDATE.pattern[_CANDIDATE.pattern.index("((") + 1:_CANDIDATE.pattern.index(")[")])
MAX_CANDIDATES = 4096  # lines a cut may start on, read in one text


def _starts(text: str) -> Iterator[tuple[int, int]]:
    """``(token start, prefix end)`` of each token prefix in ``text`` and of each line's last run
    that is a prefix's start (``_PARTIAL_REVERSED``), in order."""
    partial = _partial_starts(text)
    if not partial:
        yield from _whole_starts(text)
        return
    yield from heapq.merge(_whole_starts(text), partial)


def _whole_starts(text: str) -> Iterator[tuple[int, int]]:
    """``(token start, prefix end)`` of each whole token prefix in ``text``, in order."""
    found: list[re.Match[str]] = []
    for pattern in _PREFIXES:
        found += itertools.islice(pattern.finditer(text), MAX_PREFIXES + 1 - len(found))
    if len(found) > MAX_PREFIXES:
        for match in _CANDIDATE.finditer(text):
            yield match.start(1), match.end(1)
        return
    for match in sorted(found, key=lambda match: match.start()) if len(found) > 1 else found:
        start = match.start()
        if match.group() in "_-":
            while start > 0 and match.end() - start < _LONGEST_PREFIX and text[start - 1] in _PREFIX_CHARS:
                start -= 1  # the pattern matches a prefix's last character: back to its first
        yield start, match.end()


def _has_prefix(text: str) -> bool:
    return any(pattern.search(text) for pattern in _PREFIXES)


# The rest of a token from its prefix on (a PEM header's words have blanks between them), and
# what may follow a piece that goes on on the next line: a closing quote (after an escaped line
# break), blanks, "+", ",", ")", ";", "." or "&" (joining strings), a continuation backslash.
# (Bounded: a line of prefixes run together is read once per prefix.)
_BODY = re.compile(r"[A-Za-z0-9_\-]{0,300}")
_DOTTED_BODY = re.compile(r"[A-Za-z0-9_\-.]{0,300}")
_PEM_BODY = re.compile(r"[A-Z0-9 \-]{0,100}")
_OPEN_END = re.compile(r"(?:\\n)?[\"'`]?([ \t\r+,;).&|\]\\]*)$")
# A next line's piece: after blanks, an assignment or key (``b = "..."``, ``const b = ...``,
# ``"key": ...``), joining characters or a list's "- ", a literal's content or a bare run.


def _next_piece(chars: str) -> re.Pattern[str]:
    return re.compile(
        r"[ \t]*(?P<key>(?:[A-Za-z_]\w*[ \t]+)?[\w.\[\]\"'$]{1,64}[ \t]*(?::=|=|:)[ \t]*)?"
        r"(?P<lead>[+,(\[.&|]*)[ \t]*(?:-[ \t]+)?"
        rf"(?:([\"'`])(?P<quoted>[{chars} ]+)(?:\\n)?\3|(?P<bare>[{chars}]+))"
    )


_NEXT = _next_piece(r"A-Za-z0-9_\-")
_NEXT_DOTTED = _next_piece(r"A-Za-z0-9_\-.")  # a Google access token's rest
# A line read past between two pieces: blank, or a comment alone (``#``, ``//``, ``--``, ``;``,
# ``/*``, a block comment's ``*``, ``<!--``). Past other lines only two assignments' pieces are
# read, and only when the text joins the two names (``_names_joined``).
_FILLER = re.compile(r"[ \t\r]*(?:(?:#|//|--|;|/\*|\*|<!--).*)?$")
_NAME_BEFORE = re.compile(r"([A-Za-z_]\w*)[\"'\]]*[ \t]*(?::=|=|:)[ \t]*[\"'`]?$")
_KEY_NAME = re.compile(r"([A-Za-z_]\w*)[\"'\]]*[ \t]*(?::=|=|:)")
MAX_GAP_LINES = 4  # lines read past between a cut's pieces, in all (a cut reads 10 lines at most)
_JOINING = frozenset("+.&|\\")  # what joins strings (or a continued line) in some language
_LONGEST_PREFIX = len("github_pat_")
_PREFIX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
# Letters and digits a piece read on across items of a list or two assignments needs: a half of
# a token, not a short part (a token cut into quoted assignments of eight characters is how
# tests write tokens, and is left to the search of the bottle's own values).
MIN_LOOSE_PIECE = 12
MAX_CUT_LINES = 6  # next lines a cut token is read over: 12 characters a line spell a long token
MAX_CUTS = 512  # joins read at once (each a short segment)
CUT_BUDGET = 1 << 20  # characters of joins read for one text: a text of decoys is not read at length
_NOT_TOKENS = ("generic-secret-assignment",)
_APART = "\n\x00\n"  # between the segments read at once: the engine reads no token across a NUL


def _random_piece(piece: str) -> bool:
    """Whether ``piece`` looks like a generated token's second half: ``MIN_LOOSE_PIECE`` letters
    and digits or more, of two kinds or more, changing kind at a quarter of them (a name, a word
    with a number, a date do not)."""
    chars = [0 if c.islower() else 1 if c.isupper() else 2 for c in piece if c.isascii() and c.isalnum()]
    changes = sum(a != b for a, b in zip(chars, chars[1:]))
    return len(chars) >= MIN_LOOSE_PIECE and len(set(chars)) >= 2 and changes * 4 >= len(chars)


def _joined_on(end: str, piece: re.Match[str]) -> bool:
    """Whether the next line's piece goes on the one before: joined by an operator or a
    continuation, or written after it with no "," or ";" between and no name of its own (adjacent
    literals, a YAML scalar's next line). Else (items of a list, two assignments) only a random-
    looking piece is read on (``_random_piece``): ordinary neighbouring values are not."""
    lead = piece.group("lead")
    if _JOINING.intersection(end) or _JOINING.intersection(lead):
        return True
    if piece.group("key") or "," in end or ";" in end or "," in lead:
        return _random_piece(piece.group("quoted") or piece.group("bare"))
    return True


def _cut_pieces(text: str, start: int, prefix_end: int, counted: list[int],
                joins: Joins | None = None) -> tuple[list[str], list[int]] | None:
    """The pieces a token starting at ``start`` (its prefix ending at ``prefix_end``) is read
    from (its run, then the first piece of each next line while the one before ends its line and
    this one goes on it), and the line (0-based) each is on; None when the run does not end its
    line. ``counted``: the line breaks before an offset already counted, and the next line break
    after the last prefix (prefixes come in order: a text is not counted or searched again per
    prefix). ``joins``: the text's joins of two names, once listed (``_names_joined``)."""
    pem = text.startswith(_PEM, start)
    dotted = text.startswith(_GOOGLE_ACCESS, start)
    if start > 0 and text[start - 1] in _ALNUM:
        return None  # inside a word: no token starts there
    if start >= counted[2]:
        counted[2] = text.find("\n", start) % (len(text) + 1)  # no line break: the text's end
    line_end = counted[2]
    if line_end == len(text):
        return None
    body = (_PEM_BODY if pem else _DOTTED_BODY if dotted else _BODY).match(text, prefix_end, line_end)
    end = _OPEN_END.match(text, body.end(), line_end) if body is not None else None
    if body is None or end is None:
        return None
    if pem and text.endswith("-----", start, body.end()) and body.end() - start > 10:
        return None  # a PEM header whole on its line: the detectors read the key under it
    if start < counted[1]:
        counted[:2] = [0, 0]
    pieces = [text[start:body.end()]]
    lines = [text.count("\n", counted[1], start) + counted[0]]
    counted[:2] = [lines[0], start]
    line, gap, code_gap = lines[0], 0, False
    name: str | None = ""  # the name the last piece is assigned to ("": not looked up yet)
    while len(pieces) <= MAX_CUT_LINES and line_end >= 0:
        begin = line_end + 1
        line_end = text.find("\n", begin)
        stop = len(text) if line_end < 0 else line_end
        line += 1
        if gap < MAX_GAP_LINES and _FILLER.match(text, begin, stop):
            gap += 1
            continue
        piece = (_NEXT_DOTTED if dotted else _NEXT).match(text, begin, stop)
        joined_name = _key_name(piece) if piece is not None else None
        accept = piece is not None and _joined_on(end.group(1), piece)
        if accept and code_gap:
            accept = _names_joined(text, name, joined_name, start, [] if joins is None else joins)
        elif accept and piece is not None and _code_line(text, piece, stop):
            name = _name_before(text, start) if name == "" else name
            accept = name is None  # after no assignment, a last piece as before
        if not accept or piece is None:
            if name == "":
                name = _name_before(text, start)
            if name is None or gap >= MAX_GAP_LINES:
                break
            gap, code_gap = gap + 1, True  # a line of other code between two assignments
            continue
        chars = piece.group("quoted") or piece.group("bare")
        if (" " in chars and not pem) or _has_prefix(chars):
            break  # words, or a token of its own: the next value, not this one's rest
        pieces.append(chars)
        lines.append(line)
        code_gap, name = False, joined_name
        end = _OPEN_END.match(text, piece.end(), stop)
        if end is None:
            break
    if len(pieces) < 2 or not _has_prefix(pieces[0]) and not _WHOLE.match("".join(pieces)):
        return None  # a prefix's start the next lines do not make whole: no token's
    return pieces, lines


def _name_before(text: str, start: int) -> str | None:
    """The name assigned the literal starting at ``start`` (``a = "ghp_...``), if it is one."""
    found = _NAME_BEFORE.search(text, text.rfind("\n", 0, start) + 1, start)
    return found.group(1) if found else None


def _code_line(text: str, piece: re.Match[str], stop: int) -> bool:
    """Whether a next line's piece is a bare word that more code follows (``import os``): no
    piece of a cut token after an assignment's literal, but a line between two."""
    return bool(piece.group("bare")) and not piece.group("key") and _OPEN_END.match(text, piece.end(), stop) is None


def _key_name(piece: re.Match[str]) -> str | None:
    key = piece.group("key")
    found = _KEY_NAME.search(key) if key else None
    return found.group(1) if found else None


# How a text joins two names (``a + b``, ``a .. b``, ``$a . $b``, ``a, b`` for a join's
# arguments, ``$a$b``, ``${a}${b}``, ``{a}{b}``): what stands between the two names.
_JOIN_BETWEEN = r"(?:[ \t]*(?:\+|\.\.?|&|\|\||,)[ \t]*\$?|\}?\$\{?|\}\$?\{)"
JOIN_WINDOW = 4096  # characters after a cut's first piece searched for its names joined


# Each join of two names in a text, the second read ahead (``a + b + c`` joins both pairs).
_NAMES_JOINED = re.compile(r"(?<![\w.])\$?([A-Za-z_]\w*)(?=" + _JOIN_BETWEEN + r"([A-Za-z_]\w*)(?!\w))")
Joins = list[dict[tuple[str, str], list[int]]]  # a text's joins by names, once built (lazily)


def _names_joined(text: str, first: str | None, second: str | None, at: int, joins: Joins) -> bool:
    """Whether ``text`` joins the two names soon after ``at``. Every join in the text is listed
    once (only for a text where a cut goes past code, rare), then looked up: a cap on the places
    of the second name read let its uses (``use(b)`` again and again) hide the join after them,
    and a pattern per pair of names, or per window, cost a millisecond a cut."""
    if not first or not second:
        return False
    if not joins:
        listed: dict[tuple[str, str], list[int]] = {}
        for match in _NAMES_JOINED.finditer(text):
            listed.setdefault((match.group(1), match.group(2)), []).append(match.start())
        joins.append(listed)
    places = joins[0].get((first, second), [])
    index = bisect.bisect_left(places, at)
    return index < len(places) and places[index] < at + JOIN_WINDOW


# ------------------------------------------------------------------------------ one-line cuts

# What joins two literals on one line: a literal's closing quote, blanks and a joining operator
# (none: Python's and C's adjacent literals; "+", PHP's and Perl's ".", Lua's "..", VB's "&",
# SQL's "||", D's "~", or "," of a join's arguments) and the next literal's opening quote (after
# a string prefix, ``r"``, ``f"``); or an embedded literal's edges (``f"ghp_{'...'}"``,
# ``${"..."}``). A quote may be escaped (code held in a JSON string: a notebook's cell). Searched
# as two patterns each starting at one character class or literal (one alternation of both, or a
# leading optional backslash, read a text ten times slower); only what stands at a join's edges
# is looked at further.
_QUOTE_GLUE = (r"[\"'`][ \t]*(?:\}(?:\$?\{[ \t]*\\?[\"'`])?"
               r"|(?:\+|\.\.?|&|\|\||~|,)?[ \t]*[rRbBuUfF]{0,2}\\?[\"'`])")
_OPEN_GLUE = r"\{[ \t]*\\?[\"'`]"
_PIECE_AFTER = r"(?=[A-Za-z0-9_\-.])"  # checked only where a join matched: no cost elsewhere
_GLUES = (re.compile(_QUOTE_GLUE + _PIECE_AFTER), re.compile(_OPEN_GLUE + _PIECE_AFTER))
_NEXT_GLUE = re.compile(r"\\?" + _QUOTE_GLUE + r"|\$?" + _OPEN_GLUE)
_RUN_CHARS = _PREFIX_CHARS | {"."}
MAX_LINE_PIECES = 8  # literals of one line read joined: eight pieces of five spell a long token


def _run_before(text: str, end: int) -> int:
    """Where the run of token characters ending at ``end`` starts (at most 300 back)."""
    start = end
    while start > 0 and end - start < 300 and text[start - 1] in _RUN_CHARS:
        start -= 1
    return start


# A chain's rest from a join on: up to ``MAX_LINE_PIECES`` - 1 runs with joins between, found in
# one match (a walk piece by piece read a line of thousands of joined pieces ten times slower).
_CHAIN = re.compile(r"(?:[A-Za-z0-9_\-.]{1,300}(?:" + _NEXT_GLUE.pattern + r")){0,%d}[A-Za-z0-9_\-.]{1,300}"
                    % (MAX_LINE_PIECES - 2))


def _chain(text: str, glue: re.Match[str]) -> tuple[list[str], int]:
    """The literals a line joins from the one ending at ``glue`` on, and where the chain's
    reading stops (a piece holding a prefix of its own starts the next chain)."""
    end = glue.start()
    if end > 0 and text[end - 1] in "\\$":
        end -= 1  # an escaped quote, or a template's "${"
    first = _run_before(text, end)
    rest = _CHAIN.match(text, glue.end()) if first < end else None
    if rest is None:
        return [], glue.start() + 1
    # Read in a copy of the chain alone: a search bounded in a long text costs more than the copy.
    base, stop = glue.end(), rest.end()
    chain = text[base:stop]
    pieces = [text[first:end]]
    prefixed = _WHOLE.search(chain) is not None  # some piece holds a prefix of its own
    at, comma = 0, "," in glue.group()
    for following in itertools.chain(_NEXT_GLUE.finditer(chain), (None,)):
        piece = chain[at:following.start() if following is not None else len(chain)]
        if comma and (len(piece) < MIN_LOOSE_PIECE or not _random_piece(piece)) or prefixed and _has_prefix(piece):
            return pieces, base + at  # an item of a list, or a token of its own (the next chain's)
        pieces.append(piece)
        if following is None:
            break
        at, comma = following.end(), "," in following.group()
    return pieces, stop


def _next_glue(text: str, at: int, ahead: list[re.Match[str] | None]) -> re.Match[str] | None:
    """The first join of ``_GLUES`` from ``at`` on; ``ahead`` keeps each pattern's next match
    (searched again only once passed; None: none is left)."""
    for kind, pattern in enumerate(_GLUES):
        match = ahead[kind]
        if match is not None and match.start() < at:
            ahead[kind] = pattern.search(text, at)
    present = [match for match in ahead if match is not None]
    return min(present, key=lambda match: match.start()) if present else None


def _one_line_cuts(text: str, limits: dict[tuple[str, int], None]) -> Iterator[tuple[list[str], list[int]]]:
    """``(pieces, lines)`` of each chain of literals joined on one line whose pieces read joined
    hold a token's prefix, from the piece the first prefix starts in; each chain once. A chain
    past ``MAX_CANDIDATES`` of them is a scan-limit instead."""
    seen: set[tuple[str, ...]] = set()
    counted = line = 0
    ahead = [pattern.search(text) for pattern in _GLUES]
    glue = _next_glue(text, 0, ahead)
    while glue is not None:
        pieces, at = _chain(text, glue)
        glue = _next_glue(text, at, ahead)
        if len(pieces) < 2:
            continue
        joined_text = "".join(pieces)
        prefix = _WHOLE.search(joined_text)
        if prefix is None:
            continue
        while len(pieces[0]) <= prefix.start():  # pieces before the token's: not its own
            prefix = _WHOLE.search(joined_text := joined_text[len(pieces[0]):])
            pieces = pieces[1:]
            if prefix is None:
                break
        if prefix is None or len(pieces) < 2 or tuple(pieces) in seen:
            continue
        if len(seen) >= MAX_CANDIDATES:
            _limit(limits, text, at, f"it holds more than {MAX_CANDIDATES} strings joined on a line that could"
                                     " spell a token, the most the gate reads in a text")
            return
        seen.add(tuple(pieces))
        line += text.count("\n", counted, at)
        counted = at
        yield pieces, [line] * len(pieces)


_Join = tuple[int, int, tuple[int, ...], tuple[int, ...]]  # (offset, which cut, piece starts, lines)


def cut_tokens(text: str, hits_of: HitsOf) -> list[tuple[str, int]]:
    """``(detector, line)`` of each token format the detectors find only with a line's last
    piece read joined with the next lines' (``cut_tokens``'s words in the module); nothing read
    when no line ends in a token's prefix and part (the usual case). Joins are read in batches
    of ``MAX_CUTS``, up to ``CUT_BUDGET`` characters in all."""
    found: dict[tuple[str, int], None] = {}
    seen: set[tuple[str, int]] = set()  # (detector, cut): a longer join of a cut found is the same token
    # Each reading has a budget of its own: decoys of one kind do not hide the other's cuts.
    # A cap reached with text left unread is a scan-limit finding on the line reading stopped at
    # (the push is refused): stopping silently let decoys hide a real cut after them.
    limits: dict[tuple[str, int], None] = {}
    for number_base, cuts in ((0, _line_cuts(text, limits)), (MAX_CANDIDATES, _one_line_cuts(text, limits))):
        _read_cuts(cuts, number_base, hits_of, found, seen, limits)
    found.update(limits)
    return list(found)


def _limit(limits: dict[tuple[str, int], None], text: str, at: int, why: str) -> None:
    """Note a scan-limit at the line of ``at`` (1-based), worded as the gate's other limits."""
    limits.setdefault((f"scan-limit (the text is not read whole for tokens cut into pieces: {why})",
                       text.count("\n", 0, at) + 1))


def _line_cuts(text: str, limits: dict[tuple[str, int], None]) -> Iterator[tuple[list[str], list[int]]]:
    """``(pieces, lines)`` of each token cut across neighbouring lines (``_cut_pieces``); past
    ``MAX_CANDIDATES`` places a cut may start a scan-limit instead of the rest."""
    counted = [0, 0, -1]
    joins: Joins = []
    for number, (start, prefix_end) in enumerate(itertools.islice(_starts(text), MAX_CANDIDATES + 1)):
        if number == MAX_CANDIDATES:
            _limit(limits, text, start, f"it holds more than {MAX_CANDIDATES} places where a token cut"
                                        " across lines could start, the most the gate reads in a text")
            return
        cut = _cut_pieces(text, start, prefix_end, counted, joins)
        if cut is not None:
            yield cut


def _read_cuts(cuts: Iterable[tuple[list[str], list[int]]], number_base: int, hits_of: HitsOf,
               found: dict[tuple[str, int], None], seen: set[tuple[str, int]],
               limits: dict[tuple[str, int], None]) -> None:
    """Read each cut's joins (in batches of ``MAX_CUTS``, ``CUT_BUDGET`` characters in all; a
    cut left over past the budget is a scan-limit on its line)."""
    segments: list[str] = []
    joins: list[_Join] = []
    offset = read = 0
    for number, (pieces, lines) in enumerate(cuts, number_base):
        if read + offset > CUT_BUDGET:
            limits.setdefault((f"scan-limit (the text is not read whole for tokens cut into pieces: its pieces"
                               f" read joined come to more than {CUT_BUDGET} characters, the most the gate reads"
                               " in a text)", lines[0] + 1))
            break
        # One more line at a time, from the first piece alone: a piece of ordinary text after the
        # token's last one must not spoil a token of fixed length, and a token whole on its line
        # is the detectors' own finding (what follows it joined on is no other token).
        for count in range(1, len(pieces) + 1):
            starts = [0]
            for piece in pieces[:count]:
                starts.append(starts[-1] + len(piece))  # the last is the segment's end
            joins.append((offset, number, tuple(starts), tuple(lines[:count])))
            segments.append("".join(pieces[:count]))
            offset += starts[-1] + len(_APART)
        if len(joins) >= MAX_CUTS:
            _read_joins(segments, joins, hits_of, found, seen)
            read += offset
            segments, joins, offset = [], [], 0
    if segments:
        _read_joins(segments, joins, hits_of, found, seen)


def _read_joins(segments: list[str], joins: list[_Join], hits_of: HitsOf, found: dict[tuple[str, int], None],
                seen: set[tuple[str, int]]) -> None:
    """Read ``segments`` at once; note in ``found`` each token that crosses a join and ends
    where a piece does, on the line holding most of it."""
    begins = [join[0] for join in joins]
    read = [(span, str(getattr(hit, "detector"))) for hit in hits_of(_APART.join(segments))
            if (span := getattr(hit, "span", None)) is not None]
    for span, detector in sorted(read):  # a cut's shorter joins first
        if detector.startswith(_NOT_TOKENS):
            continue
        begin, number, starts, lines = joins[bisect.bisect_right(begins, span[0]) - 1]
        if (detector, number) in seen:
            continue
        first, last = span[0] - begin, min(span[1] - begin, starts[-1])  # a key's body read on: its segment
        held = [min(last, end) - max(first, start) for start, end in zip(starts, starts[1:])]
        if sum(1 for size in held if size > 0) < 2:
            seen.add((detector, number))  # within one piece: the detectors read it as it is
            continue
        if last not in starts:
            continue  # ends inside a piece: a cut token ends where its last piece does
        best = max(range(len(held)), key=lambda i: (held[i], -i))
        seen.add((detector, number))
        found.setdefault((detector, lines[best] + 1))


def readings(text: str, hits_of: HitsOf, *, code: bool) -> Iterator[tuple[str, int]]:
    """The shell reading and the cut-token reading, for ``code`` only: added lines, not names
    or headers."""
    if code:
        yield from shell_joined(text, hits_of)
        yield from cut_tokens(text, hits_of)
