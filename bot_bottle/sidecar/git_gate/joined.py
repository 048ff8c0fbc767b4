"""Two more readings of a text a push adds, for tokens the detectors skip as they are written.

``unglued``: a well-known token format glued to the characters around it. The detectors require
a token to stand apart (``xghp_...``, ``rel-sk-ant-...`` or ``ghp_..._`` is not a token to them,
which keeps them off the middle of identifiers and encoded blobs), so gluing one character to a
token hid it, and so did a binary file whose byte before the token happened to be a letter (a
SQLite record's header). Each anchor of those formats that is glued is set apart with a line
break before it (and after the token's body, where the format rejects what follows), and the
text so cut is read once more. An anchor in the middle of a long base64-looking run is left
alone: a random blob spells "ghp_" and a body by chance now and then, a glued token does not
need 64 random characters before it.

``shell_joined``: a value cut into unquoted shell assignments joined by expansion
(``A=ghp_x1; B=...; echo $A$B``). Each word holding two expansions or more is read with the
values assigned in the same text put in, all such words in one text (one read), each on the
line of the word. Quoted parts are not joined (``"ghp_" + "..."`` is how tests write a token);
the bottle's own values in quoted parts are found by ``split``.

Both return ``(detector, line)`` with lines in ``text`` and no span (a span in the text read
would not be one of ``text``'s).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

_TOKEN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
# A body is read 512 characters at most (tokens are shorter): a long run of anchors glued to each
# other costs a bounded read per anchor, not one to the run's end.
_ALNUM = re.compile(r"[A-Za-z0-9]{0,512}")
_ALNUM_UNDERSCORE = re.compile(r"[A-Za-z0-9_]{0,512}")
_ANY_TOKEN = re.compile(r"[A-Za-z0-9_-]{0,512}")


@dataclass(frozen=True)
class _Anchor:
    text: str
    body: re.Pattern[str]  # the characters the format's body is made of
    shortest: int  # the format's shortest body: an anchor with less is no token, nothing is cut
    longest: int | None = None  # a fixed body length (the rest is cut off), or None
    # Kinds of character a glued body must all hold to be set apart ("l"ower, "u"pper, "d"igit):
    # a kebab-case name spells "task-ant-colony-..." with a body the detector would take.
    mix: str = ""


# The formats whose detectors reject a token glued to what is around it. A body made of every
# token character (sk-ant-, glpat-) takes in what follows: only what is before it is cut.
_ANCHORS: tuple[_Anchor, ...] = (
    *(_Anchor(f"gh{c}_", _ALNUM, 36) for c in "pousr"),
    _Anchor("github_pat_", _ALNUM_UNDERSCORE, 50),
    _Anchor("sk-ant-", _ANY_TOKEN, 32, mix="lud"),
    _Anchor("SK-ANT-", _ANY_TOKEN, 32, mix="ud"),
    _Anchor("glpat-", _ANY_TOKEN, 20, mix="d"),
    _Anchor("npm_", _ALNUM, 36, 36),
    _Anchor("AIza", _ANY_TOKEN, 35, 35),
)
_BY_TEXT = {anchor.text: anchor for anchor in _ANCHORS}
# One pass finds every anchor (one search per anchor cost twice as much on ordinary text).
_ANCHOR_SEARCH = re.compile("|".join(re.escape(anchor.text) for anchor in _ANCHORS))
# A run of token characters this long before an anchor, mixing letter cases and digits, is an
# encoded blob, not glue.
_BLOB_RUN = 64


def _blob_before(text: str, at: int) -> bool:
    start = at
    while start > 0 and text[start - 1] in _TOKEN and at - start <= _BLOB_RUN:
        start -= 1
    run = text[start:at]
    if len(run) <= _BLOB_RUN:
        return False
    return any(c.islower() for c in run) and any(c.isupper() for c in run) and any(c.isdigit() for c in run)


_KINDS = {"l": re.compile("[a-z]"), "u": re.compile("[A-Z]"), "d": re.compile("[0-9]")}


def _mixed(body: str, mix: str) -> bool:
    return all(_KINDS[kind].search(body) for kind in mix)


def _cuts(text: str) -> list[int]:
    """Offsets to set a line break at, in order: before each glued anchor and after its body."""
    cuts: set[int] = set()
    last_end = 0
    for found in _ANCHOR_SEARCH.finditer(text):
        anchor, at, body_start = _BY_TEXT[found.group()], found.start(), found.end()
        if at < last_end:
            continue  # in the body of the token before: read with it (anchors glued in a row cost one read)
        match = anchor.body.match(text, body_start)
        end = match.end() if match else body_start
        if anchor.longest is not None:
            end = min(end, body_start + anchor.longest)
        if end - body_start < anchor.shortest:
            continue
        last_end = end
        glued_before = at > 0 and text[at - 1] in _TOKEN and _mixed(text[body_start:end], anchor.mix) \
            and not _blob_before(text, at)
        glued_after = end < len(text) and text[end] in _TOKEN
        if glued_before:
            cuts.add(at)
        if glued_after and (glued_before or anchor.longest is not None or text[end] == "_"):
            cuts.add(end)
    return sorted(cuts)


HitsOf = Callable[[str], Iterable[object]]


def unglued(text: str, hits_of: HitsOf) -> list[tuple[str, int]]:
    """``(detector, line)`` of what the detectors find in ``text`` once its glued tokens are set
    apart; nothing read again when no token is glued (the usual case)."""
    cuts = _cuts(text)
    if not cuts:
        return []
    parts, pos = [], 0
    for cut in cuts:
        parts.append(text[pos:cut])
        pos = cut
    parts.append(text[pos:])
    cut_text = "\n".join(parts)
    # A line of the cut text is a line of ``text`` plus the breaks added before it.
    added_before: list[int] = []  # per cut line: how many added breaks precede it
    added = 0
    for part in parts:
        added_before.extend([added] * (part.count("\n") + 1))
        added += 1
    out = []
    for hit in hits_of(cut_text):
        line = int(getattr(hit, "line", 1))
        out.append((str(getattr(hit, "detector")), line - added_before[min(line, len(added_before)) - 1]))
    return out


# Two expansions in one shell word (``$A$B``, ``"${A}x${B}"``); the pattern starts with a literal
# "$", so the regex engine skips ahead fast in a text without one.
_TWO_EXPANSIONS = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?[^\s;&|()<>'`$]*\$\{?[A-Za-z_]")
_WORD_END = frozenset(" \t\n\r\f\v;&|()<>'`")
_EXPANSION = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
# What may stand before ``NAME=`` in an assignment (a line's start, blanks, ``;``, ``&``, ``|``,
# ``(``, or ``export NAME=`` and the like after a blank), and an unquoted value after it.
_BEFORE_ASSIGNMENT = frozenset(" \t\n\r;&|(")
_UNQUOTED_VALUE = re.compile(r"[^\s;&|()<>'\"`$\\]+(?=[\s;&|)]|$)")


def _assigned(text: str, names: Iterable[str]) -> dict[str, str]:
    """The unquoted value each of ``names`` is last assigned in ``text`` (found by name: a
    search for every assignment of a long script cost more than the words it joins)."""
    values: dict[str, str] = {}
    for name in names:
        at = text.find(name + "=")
        while at != -1:
            if at == 0 or text[at - 1] in _BEFORE_ASSIGNMENT:
                value = _UNQUOTED_VALUE.match(text, at + len(name) + 1)
                if value:
                    values[name] = value.group()
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
            value = values.get(m.group(1) or m.group(2))
            if value is None:
                return " "  # an unknown variable: its neighbours are not joined across it
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


def readings(text: str, hits_of: HitsOf, *, code: bool) -> Iterator[tuple[str, int]]:
    """Both readings (the shell one only for ``code``: added lines, not names or headers)."""
    yield from unglued(text, hits_of)
    if code:
        yield from shell_joined(text, hits_of)
