"""Pieces a push spreads a secret over: the bottle's own values cut into parts, and base64 wrapped
into decorated lines.

``SplitSearch``: one of the bottle's own random-looking values cut into parts the detectors never
see whole: string pieces joined in code with names between (``t = a + "..." + b``), parts on
lines apart, in two files or two commits of one push. A *part* is a run of ``MIN_FRAGMENT``
characters or more of the value in a text the push adds. Parts are remembered by place (commit,
file, line) across the whole push, in any order; when they cover all of a value but
``dlp.fragments.tolerance`` characters (the proxy's rule for a value sent in parts), the push
carries it. A value one part covers is left to the detectors (they find it whole).

Finding parts cheaply: a search per window of each value over every added line cost a few
percent of a push's scan per secret. Uppercase letters and digits are most of a random token
and an eighth of source code or prose, so each text is first reduced to those (one
``bytes.translate``). A value's own such characters (a value without uppercase letters: its
digits) are cut into aligned blocks (``BLOCK``: three of 36 kinds, or five digits, turn up by
chance about as seldom), searched in the reduced text: a part holds its characters there in a
row. Only a block found is looked for in the text itself, as the stretch of the value it spans,
and grown left and right while text and value agree. A part holding twice a block's characters
but one holds a whole block: about nine characters of a token of letters and digits (a long
value's blocks are further apart, ``MAX_BLOCKS``, and its parts need more).

Shorter parts, in quotes: code that cuts a value into string literals of five to eight
characters (``"Ab3dE" + "fG7hI"``, one a line with comments or names between) leaves no part the
blocks find. Each text is also read with every quote made a double quote (one more
``bytes.translate``), and a regular expression that starts at a quote lists the quoted literals
of ``MIN_END`` to ``MAX_QUOTED`` characters (a 6.9 MB push of source holds some 38,000); they
are looked up in a table of the values' stretches at once, and only a text holding one is read
again for where. A literal is a part when it is a stretch of the value, at least ``short_part``
characters long (where the value's alphabet spells it by chance no more often than one in
``_CHANCE``: five characters of a value of both letter cases and digits, six of lower-case
letters and digits, eight of hex digits), of a value that changes kind of character as often as
a generated one does (``_mixed_throughout``: ordinary literals hold the stretches of a word with
a counting run). So does a quoted literal that is the value's first or last ``MIN_END``
characters or more: a token format's prefix ("ghp_") and the rest of a value cut into parts of
one length (they would leave more than the tolerance unseen together). Searching every such
stretch in every text cost as much as the rest of the scan; this costs about two percent of it.

Only values that look random are searched: ``MIN_SPLIT_SECRET`` characters or more, mixing
letters and digits or letter cases, a quarter of them uppercase letters or digits; and a part
counts only when it mixes them too. A PIN, a word or a phrase is not searched, and a value made
of a word and a counting run ("password12345678") is not pieced together from "password" and
"12345678" in ordinary text.

``wrapped_runs``: base64 (standard or URL-safe, or hex) wrapped into lines that are quoted,
indented or joined with ``+``, one chunk a line. The detectors read text line by line there (the
DLP engine joins a wrapped block only when its lines are bare), so a token whose base64 crosses a
line break was not seen. Such runs are joined and scanned as one value; each hit maps back to
the line holding most of it (``WrappedRun.line_holding``).

Values are held here and never shown: ``repr`` names the secrets only.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from bot_bottle.sidecar.dlp.fragments import GROW_BUDGET, MIN_FRAGMENT, tolerance

MIN_SPLIT_SECRET = 16  # shorter values: a part is half of one, and they are rarely random
# Characters of a value searched for at once in a reduced text: three of 36 kinds (uppercase
# letters and digits) turn up by chance about as seldom as five digits.
BLOCK = {"upper+digits": 3, "digits": 5}
# Blocks searched per value at most (each is one pass over the reduced text): a longer value's
# blocks are taken further apart, and its parts must hold more of its rare characters.
MAX_BLOCKS = 10
# Kinds of piece a secret's parts are looked for in: what the push adds as text.
SPLIT_KINDS = frozenset({"lines", "message", "tag"})

# Quoted literals looked up whole (``short_part``): from the shortest part a value's alphabet
# leaves to chance to the longest the blocks may miss (a part with few of the value's rare
# characters holds no whole block).
MIN_QUOTED = 5
MAX_QUOTED = 16
# A value's first or last characters, shorter: a token format's prefix ("ghp_") or the rest of
# a value cut into parts of one length. They count only towards a value the push holds nearly
# all of in other parts (``found``), so ordinary text naming a prefix is no part of anything.
MIN_END = 3
# Strings of a value's alphabet a part must be long enough to be one of by chance no more often
# than once in this many: 62 kinds (both letter cases and digits) need five characters, 36 six,
# hex digits eight.
_CHANCE = 300_000_000

_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGIT = frozenset("0123456789")
# What a text is reduced to: every byte but an uppercase letter or a digit deleted. A value
# without uppercase letters is searched by its digits alone, in the same reduced text (its parts
# hold no uppercase letter to come between them).
_KEEP = {"upper+digits": "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", "digits": "0123456789"}
_DELETE = bytes(b for b in range(256) if chr(b) not in _KEEP["upper+digits"])


_HEX = (frozenset("0123456789abcdef"), frozenset("0123456789ABCDEF"))
# A text as the quoted-literal search reads it: every quote a double quote, every character a
# literal holds (printable ASCII but a backslash) as it is, anything else a blank.
_QUOTED_VIEW = bytes(0x22 if b in b"\"'`" else b if 0x21 <= b <= 0x7E and b != 0x5C else 0x20 for b in range(256))
# From a quote (a single literal byte: the fastest search ``re`` has) to the next; possessive, so
# a longer literal fails at once. The closing quote is not taken (it may open the next literal).
_QUOTED = re.compile(rb'"([!#-~]{%d,%d}+)(?=")' % (MIN_END, MAX_QUOTED))


def _kinds(text: str) -> int:
    chars = set(text)
    return sum(1 for kind in (_LOWER, _UPPER, _DIGIT) if chars & kind)


def _rare(value: str) -> tuple[str, list[int]]:
    """Which characters ``value`` is searched by (``_KEEP``), and where they are in it."""
    kind = "upper+digits" if set(value) & _UPPER else "digits"
    kept = _KEEP[kind]
    return kind, [at for at, char in enumerate(value) if char in kept]


def random_looking(value: str) -> bool:
    """Whether ``value`` is long enough and mixes letters and digits (or letter cases), a quarter
    of it uppercase letters or digits: what a generated token is, and a PIN, a word or a phrase
    is not."""
    if len(value) < MIN_SPLIT_SECRET or _kinds(value) < 2 or len(set(value)) * 2 < MIN_SPLIT_SECRET:
        return False
    return len(_rare(value)[1]) * 4 >= len(value)


def _kind(char: str) -> int:
    return 0 if char in _LOWER else 1 if char in _UPPER else 2 if char in _DIGIT else 3


def _mixed_throughout(value: str) -> bool:
    """Whether ``value`` changes between lower-case letters, upper-case letters, digits and
    other characters at a quarter of its characters or more: a generated token does (a random
    one of letters and digits at about half), a word with a counting run ("password12345678",
    "admin2024Password!") does not, and ordinary literals ('password1') hold stretches of those."""
    kinds = [_kind(char) for char in value]
    return sum(a != b for a, b in zip(kinds, kinds[1:])) * 4 >= len(value)


def short_part(value: str) -> int:
    """The fewest characters a quoted literal needs to count as a part of ``value``: the length
    at which strings of its alphabet (hex digits, or its kinds of letters and digits) turn up by
    chance about as seldom as ``_CHANCE``."""
    chars = set(value)
    if any(chars <= hex_digits for hex_digits in _HEX):
        kinds = 16
    else:
        kinds = 26 * bool(chars & _LOWER) + 26 * bool(chars & _UPPER) + 10 * bool(chars & _DIGIT)
        kinds += len(chars - _LOWER - _UPPER - _DIGIT)
    length = MIN_QUOTED
    while kinds ** length < _CHANCE:
        length += 1
    return length


@dataclass(frozen=True)
class Place:
    """Where a part was found: the piece's commit, kind, path and the part's line."""

    commit: str
    kind: str
    path: str | None
    line: int | None


class _Secret:
    __slots__ = ("name", "value", "blocks")

    def __init__(self, name: str, value: str) -> None:
        self.name = name
        self.value = value
        kind, rare = _rare(value)
        size = BLOCK[kind]
        # Each aligned block of the value's rare characters, and the stretch of the value it spans.
        self.blocks: dict[bytes, list[tuple[int, int]]] = {}
        step = max(size, -(-(len(rare) - size) // (MAX_BLOCKS - 1)))
        for at in range(0, len(rare) - size + 1, step):
            block = "".join(value[i] for i in rare[at:at + size]).encode()
            self.blocks.setdefault(block, []).append((rare[at], rare[at + size - 1] + 1))

    def __repr__(self) -> str:
        return f"<split secret {self.name}>"


class SplitSearch:
    """The parts of the bottle's own values found in one push, by place; ``found`` tells which
    values they spell. Holds values; ``repr`` shows names only."""

    def __init__(self, secrets: Iterable[tuple[str, str]]) -> None:
        self._secrets = [_Secret(name, value) for name, value in secrets if random_looking(value)]
        # Per secret: (value start, value end) -> the places that hold that part.
        self._parts: dict[str, dict[tuple[int, int], dict[Place, None]]] = {s.name: {} for s in self._secrets}
        # Per secret: texts holding more of its stretches than are grown (``GROW_BUDGET``).
        self._flooded: dict[str, list[Place]] = {s.name: [] for s in self._secrets}
        # Each stretch a quoted literal may be (``short_part`` to ``MAX_QUOTED`` characters of a
        # value, ASCII only: what the search reads) -> (secret, value start) for each place it is.
        self._quoted: dict[bytes, list[tuple[_Secret, int]]] = {}
        for secret in self._secrets:
            value = secret.value
            if not _mixed_throughout(value):
                continue  # words and counting runs: ordinary literals hold their stretches
            for size in range(max(short_part(value), MIN_QUOTED), MAX_QUOTED + 1):
                for at in range(len(value) - size + 1):
                    stretch = value[at:at + size]
                    if stretch.isascii() and _kinds(stretch) >= 2:
                        self._quoted.setdefault(stretch.encode(), []).append((secret, at))
            for size in range(MIN_END, short_part(value)):
                for at in (0, len(value) - size):
                    if value[at:at + size].isascii():
                        self._quoted.setdefault(value[at:at + size].encode(), []).append((secret, at))

    def __repr__(self) -> str:
        return f"SplitSearch({[s.name for s in self._secrets]})"

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def feed(self, text: str, commit: str, kind: str, path: str | None, line: int | None,
             data: bytes | None = None) -> None:
        """Remember the parts of every value ``text`` holds (``line``: its first line's number;
        ``data``: ``as_bytes(text)``, when the caller has it)."""
        data = as_bytes(text) if data is None else data
        reduced = data.translate(None, _DELETE)
        quoted = self._quoted_parts(data)
        for secret in self._secrets:
            spans = [span for block, spans in secret.blocks.items() if block in reduced for span in spans]
            found = quoted.get(secret.name, [])
            if not spans and not found:
                continue
            parts = self._parts[secret.name]
            pieces = [*found, *_fragments(text, secret.value, spans, GROW_BUDGET - len(found))]
            if any(at < 0 for _start, _end, at in pieces):
                # Decoys before a real part must not hide it: such a text counts as the value.
                self._flooded[secret.name].append(Place(commit, kind, path, line))
                continue
            # Line numbers counted in one pass over the text, however many parts it holds.
            number, counted = line, 0
            for start, end, at in sorted(pieces, key=lambda piece: piece[2]):
                if number is not None:
                    number += text.count("\n", counted, at)
                    counted = at
                parts.setdefault((start, end), {}).setdefault(Place(commit, kind, path, number))

    def _quoted_parts(self, data: bytes) -> dict[str, list[tuple[int, int, int]]]:
        """Per secret, ``(value start, value end, text offset)`` of each quoted literal of ``data``
        that is a stretch of it (``short_part`` characters or more); past ``GROW_BUDGET`` of them
        for one secret, ``(0, len(value), -1)`` last (as ``_fragments``: the text counts as the
        value)."""
        out: dict[str, list[tuple[int, int, int]]] = {}
        if not self._quoted or len(data) < MIN_END + 2:
            return out
        table = self._quoted
        view = data.translate(_QUOTED_VIEW)
        # The literals' texts first (no match objects): most texts hold none of the values'.
        if table.keys().isdisjoint(_QUOTED.findall(view)):
            return out
        for match in _QUOTED.finditer(view):
            for secret, start in table.get(match.group(1), ()):
                found = out.setdefault(secret.name, [])
                if len(found) >= GROW_BUDGET:
                    if found[-1][2] >= 0:
                        found.append((0, len(secret.value), -1))
                    continue
                found.append((start, start + match.end(1) - match.start(1), match.start(1)))
        return out

    def found(self) -> list[tuple[str, list[Place]]]:
        """``(secret name, places)`` for each value the remembered parts spell, with the place
        of every part of it (all are to go, not only those one cover would use); a value one
        part covers is left to the detectors."""
        out: list[tuple[str, list[Place]]] = []
        for secret in self._secrets:
            parts = self._parts[secret.name]
            places = list(dict.fromkeys(place for held in parts.values() for place in held))
            need = len(secret.value) - tolerance(len(secret.value))
            if self._flooded[secret.name]:
                out.append((secret.name, list(dict.fromkeys([*self._flooded[secret.name], *places]))))
            elif parts and not any(end - start >= need for start, end in parts) and _covers(sorted(parts), need):
                out.append((secret.name, places))
        return out


def as_bytes(text: str) -> bytes:
    """``text`` one byte a character (what is no Latin-1 as "?"): only ASCII is searched here."""
    return text.encode("latin-1", "replace")


def _fragments(text: str, value: str, spans: list[tuple[int, int]],
               budget: int = GROW_BUDGET) -> Iterator[tuple[int, int, int]]:
    """``(value start, value end, text offset)`` of each maximal run of ``MIN_FRAGMENT`` or more
    characters of ``value`` in ``text`` that holds one of the stretches ``spans`` of it and mixes
    letters and digits or letter cases; ``(0, len(value), -1)`` last when the text holds more
    stretches than ``budget`` (each is grown in Python: a text made of them would take long)."""
    seen: set[tuple[int, int]] = set()
    grown = 0
    for pos, stop in spans:
        stretch = value[pos:stop]
        at = text.find(stretch)
        while at >= 0:
            grown += 1
            if grown > budget:
                yield 0, len(value), -1
                return
            left = 0
            while at - left > 0 and pos - left > 0 and text[at - left - 1] == value[pos - left - 1]:
                left += 1
            right = stop - pos
            while at + right < len(text) and pos + right < len(value) and text[at + right] == value[pos + right]:
                right += 1
            key = (at - left, pos - left)
            # A part of one kind ("12345678", "password") is ordinary text, whatever value holds it.
            if left + right >= MIN_FRAGMENT and key not in seen and _kinds(value[pos - left:pos + right]) >= 2:
                seen.add(key)
                yield pos - left, pos + right, at - left
            at = text.find(stretch, at + 1)


def _covers(spans: list[tuple[int, int]], need: int) -> bool:
    """Whether the parts (sorted ``(start, end)`` spans of a value) hold ``need`` of its characters."""
    covered = reach = 0
    for start, end in spans:
        if end > reach:
            covered += end - max(start, reach)
            reach = end
    return covered >= need


# ------------------------------------------------------------------------------ wrapped base64

# Each character as its class: "b" base64 (either alphabet: the standard one, and URL-safe's "-"
# and "_"), "q" an equals sign (padding, or an assignment), "e" a backslash (a line continuation,
# an escaped line break in a JSON string), "d" what wraps a chunk in code or YAML (blanks, quotes,
# commas, brackets, ";", "."), "n" a line break, "x" anything else. A "+" is "b" (it is base64);
# one standing apart, joining strings, is told from it on the text, as is a list's "-" (before a
# blank only). A chunk holding "-" or "_" counts on its own only with both letter cases in it
# (``_url_safe``): names in snake_case or kebab-case, UUIDs and rules of dashes are no chunks;
# one in one case is read only among lines of its width wrapping made (``_read_lines``). A line
# of a wrapped run is one chunk with decoration around it; a regular expression over the view
# finds them from a literal run of "b"s it skips ahead to.
_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_"
_DECO = b" \t\r\"'`,()[]{};.&|"
_CLASSES = bytes(ord("b") if b in _B64 else ord("q") if b == 0x3D else ord("e") if b == 0x5C
                 else ord("n") if b == 0x0A else ord("d") if b in _DECO else ord("x") for b in range(256))
MIN_CHUNK = 16  # characters of a line's chunk: shorter ones are words, numbers, short ids
MIN_RUN = 32  # characters of a joined run: the base64 of the shortest token
_CHUNK_RUN = b"b" * MIN_CHUNK
# A chunk alone on its line: after decoration (and a "+" joining it to the line before), before
# decoration (and a "+" joining the next, an escaped line break, a continuation).
# Possessive: a line that fails is given up at once, not tried again with less decoration.
_CHUNK_LINE = re.compile(rb"nd*+(?:bd++)?+(" + _CHUNK_RUN + rb"b*+q{0,2})(?:eb)?[de]*+(?:b[de]*+)?(?=n)")
# A chunk appended to a name, one a line: ``data += "..."`` (matched at each "+=" of the text).
_APPEND_LINE = re.compile(rb"bqd++(" + _CHUNK_RUN + rb"b*+q{0,2})(?:eb)?[de]*+(?:b[de]*+)?(?=n)")
_APPEND_NAME = re.compile(r"[ \t]*[\w.]{1,64}[ \t]*")
# The line before a run may start it: its chunk after an assignment, a key or an opening quote.
_FIRST_LINE = re.compile(r"[\s\"'`=:(\[,+]([A-Za-z0-9+/_-]{%d,}={0,2})(?:\\n)?[\"'`]?[\s,+\\)\]]*$" % MIN_CHUNK)
# The line after a run may end it with a shorter chunk (the rest of the value, its padding).
# A "-" before it is a YAML list's only before a blank (``-abc`` is the text "-abc", not an item).
_LAST_LINE = re.compile(r"(?:[\w. \t]{1,64}\+=)?(?:[\s\"'`,(\[+]|-(?=[ \t]))*"
                        r"([A-Za-z0-9+/_-]+={0,2})(?:\\n)?[\"'`]?[\s,+\\)\];]*")


@dataclass(frozen=True)
class WrappedRun:
    """A run's chunks joined (``text``); ``starts`` where each chunk starts in it, ``lines`` the
    line (0-based, in the scanned text) each chunk is on."""

    text: str
    starts: tuple[int, ...]
    lines: tuple[int, ...]

    def line_of(self, offset: int) -> int:
        return self.lines[bisect.bisect_right(self.starts, offset) - 1]

    def line_holding(self, start: int, end: int) -> int:
        """The line holding most of ``text[start:end]`` (the first of those holding as much)."""
        first = bisect.bisect_right(self.starts, start) - 1
        last = bisect.bisect_right(self.starts, max(end - 1, start)) - 1
        bounds = [*self.starts, len(self.text)]
        best = max(range(first, last + 1), key=lambda i: (min(end, bounds[i + 1]) - max(start, bounds[i]), -i))
        return self.lines[best]


def wrapped_runs(text: str, data: bytes | None = None) -> list[WrappedRun]:
    """The runs of two lines or more, each one chunk of base64 (or hex) with decoration around
    it, at least one of them decorated (bare blocks are read as such by the detectors).
    ``data``: ``as_bytes(text)``, when the caller has it."""
    if "\n" not in text:
        return []
    view = b"n" + (as_bytes(text) if data is None else data).translate(_CLASSES) + b"n"
    out: list[WrappedRun] = []
    for group in _groups(sorted(_chunk_lines(text, view))):
        for found in _read_lines(group):
            spans = [span for _start, _end, span, _bare, _one_case in found]
            decorated = not all(bare for _start, _end, _span, bare, _one_case in found)
            width = None if found[0][4] else _width(found[0])
            spans = _with_last_line(text, _with_first_line(text, spans, width))
            if not decorated and len(spans) == len(found):
                continue  # a plain block: the detectors read those joined
            chunks = [text[start:end] for start, end in spans]
            if len(chunks) >= 2 and sum(map(len, chunks)) >= MIN_RUN:
                out.append(_joined(text, spans, chunks))
    return out


_Line = tuple[int, int, tuple[int, int], bool, bool]  # line breaks, chunk span, bare, one case


def _groups(lines: list[_Line]) -> list[list[_Line]]:
    """The chunk lines in runs of lines next to each other."""
    groups: list[list[_Line]] = []
    last_end = -1
    for line in lines:
        if line[0] == last_end and groups:
            groups[-1].append(line)
        else:
            groups.append([line])
        last_end = line[1]
    return groups


def _read_lines(group: list[_Line]) -> list[list[_Line]]:
    """The lines of ``group`` read as chunks, in runs: a chunk holding "-" or "_" in one letter
    case (``_url_safe``) only where wrapping put it, among lines of its width at least one of
    which counts on its own, or as the shorter last line after them. Base64 of a token holds no
    "-" or "_" (the bytes of a token's characters never end in the bits of 62 or 63 where a group
    of four characters ends); they come from the bytes around it ("~", "?", ">", bytes past
    ASCII), and a narrow line that holds a few of the token's characters and the rest of such
    bytes can be in one case (``fn5-fn5-`` is "~~~~~~"). Names, UUIDs and rules one a line are
    of one width only by chance, and never next to a chunk that counts."""
    keep = [not one_case for _start, _end, _span, _bare, one_case in group]
    at = 0
    while at < len(group):
        width = _width(group[at])
        stop = at
        while stop < len(group) and _width(group[stop]) == width:
            stop += 1
        if any(keep[at:stop]):
            keep[at:stop] = [True] * (stop - at)
            if stop + 1 == len(group) and _width(group[stop]) < width:
                keep[stop] = True  # the shorter last line of a wrapped block
        at = stop
    runs: list[list[_Line]] = []
    previous = False
    for line, kept in zip(group, keep):
        if kept:
            if previous:
                runs[-1].append(line)
            else:
                runs.append([line])
        previous = kept
    return runs


def _width(line: _Line) -> int:
    start, end = line[2]
    return end - start


def _chunk_lines(text: str, view: bytes) -> list[_Line]:
    """``(line break before, line break after, chunk span, bare, one case)`` of each line of
    ``view`` (the text's classes, one "n" before and after) that is one chunk; spans are in
    ``text``; "one case": it holds "-" or "_" and one letter case only (``_url_safe``)."""
    out = []
    for match in _CHUNK_LINE.finditer(view):
        if _joins_only(text, view, match.start() + 1, match.start(1)) and _joins_only(
                text, view, match.end(1), match.end()):
            bare = match.start(1) == match.start() + 1 and match.end(1) == match.end()
            one_case = not _url_safe(text, match.start(1) - 1, match.end(1) - 1)
            out.append((match.start(), match.end(), (match.start(1) - 1, match.end(1) - 1), bare, one_case))
    at = text.find("+=")
    while at >= 0:
        match = _APPEND_LINE.match(view, at + 1)  # the view has one character more before
        if match is not None:
            line_start = view.rfind(b"n", 0, match.start())
            if _APPEND_NAME.fullmatch(text, line_start, at) and _joins_only(text, view, match.end(1), match.end()):
                one_case = not _url_safe(text, match.start(1) - 1, match.end(1) - 1)
                out.append((line_start, match.end(), (match.start(1) - 1, match.end(1) - 1), False, one_case))
        at = text.find("+=", at + 2)
    return out


def _url_safe(text: str, start: int, end: int) -> bool:
    """Whether the chunk ``text[start:end]`` holds no "-" or "_", or holds both letter cases (as
    URL-safe base64 of 16 characters or more all but always does, and names, UUIDs and rules do
    not)."""
    if text.find("-", start, end) < 0 and text.find("_", start, end) < 0:
        return True
    chunk = text[start:end]
    return chunk != chunk.lower() and chunk != chunk.upper()


def _joins_only(text: str, view: bytes, start: int, end: int) -> bool:
    """Whether the decoration between ``start`` and ``end`` of ``view`` holds no base64
    character but a "+" (joining strings), a list's "-" or the letter of an escaped line break.
    A "-" is a list's only before a blank (YAML's rule: ``-abc`` is the text "-abc")."""
    at = view.find(b"b", start, end)
    while at >= 0:
        char = text[at - 1]
        if not (char == "+" or char == "-" and text[at:at + 1] in (" ", "\t") or view[at - 1] == 0x65):
            return False  # 0x65: "e", a backslash before it
        at = view.find(b"b", at + 1, end)
    return True


def _with_first_line(text: str, spans: list[tuple[int, int]], width: int | None = None) -> list[tuple[int, int]]:
    """``spans``, and before them the chunk ending the line before the run, if it has one (one
    holding "-" or "_" in one letter case only when it is ``width`` long: the width of a first
    chunk that counts on its own)."""
    first = spans[0][0]
    line_start = text.rfind("\n", 0, first)
    if line_start <= 0:
        return spans
    before = text.rfind("\n", 0, line_start) + 1
    match = _FIRST_LINE.search(text, before, line_start)
    if match is None or match.end(1) - match.start(1) != width and not _url_safe(text, *match.span(1)):
        return spans
    return [match.span(1), *spans]


def _with_last_line(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``spans``, and after them the shorter chunk on the line after the run, if it has one."""
    start = text.find("\n", spans[-1][1])
    if start < 0:
        return spans
    end = text.find("\n", start + 1)
    match = _LAST_LINE.fullmatch(text, start + 1, len(text) if end < 0 else end)
    if match is None or match.end(1) - match.start(1) >= MIN_CHUNK:
        return spans  # a full chunk there would be part of the run already
    return [*spans, match.span(1)]


def _joined(text: str, spans: list[tuple[int, int]], chunks: list[str]) -> WrappedRun:
    starts: list[int] = []
    lines: list[int] = []
    offset = 0
    line = text.count("\n", 0, spans[0][0])
    previous = spans[0][0]
    for (start, _end), chunk in zip(spans, chunks):
        line += text.count("\n", previous, start)
        previous = start
        starts.append(offset)
        lines.append(line)
        offset += len(chunk)
    return WrappedRun("".join(chunks), tuple(starts), tuple(lines))
