"""One more reading of a text a push adds, for a value the detectors skip as it is written.

``shell_joined``: a value cut into unquoted shell assignments joined by expansion
(``A=ghp_x1; B=...; echo $A$B``). Each word holding two expansions or more is read with the
values assigned in the same text put in, all such words in one text (one read), each on the
line of the word. Quoted parts are not joined (``"ghp_" + "..."`` is how tests write a token);
the bottle's own values in quoted parts are found by ``split``. (A well-known token glued to the
characters around it, ``xghp_...``, is the detectors' own reading: ``dlp.tokens.Glue``.)

It returns ``(detector, line)`` with lines in ``text`` and no span (a span in the text read
would not be one of ``text``'s).
"""

from __future__ import annotations

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
    """The shell reading, for ``code`` only: added lines, not names or headers."""
    if code:
        yield from shell_joined(text, hits_of)
