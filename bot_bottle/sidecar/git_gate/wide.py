"""ASCII text stored two or four bytes a character (UTF-16 or UTF-32, either byte order), found
run by run wherever it sits in a file, as ``strings -e l`` finds it.

A token is ASCII; written as UTF-16 or UTF-32, each of its characters is followed (or preceded)
by one or three NULs, and no detector sees it in the bytes as they are. ``patch.utf16_views``
reads a chunk whole as UTF-16 only where such text is most of it. A short run inside other bytes
is found here: a string in a binary asset, or UTF-16 text past the first 8000 bytes of a file
(the only bytes git looks at to call a file binary), which git then diffs as text lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Characters: as short as the shortest secret value the gate looks for (scan.MIN_KNOWN_SECRET).
MIN_RUN = 8
_CHAR = rb"[\t\n\r\x20-\x7e]"
# (bytes per character, the character's place among them, the pattern of a run). Each byte order
# has its own: read the other way, a run would gain a stray byte before it or lose its last
# character, and a detector that wants a token whole (a word boundary) would miss it.
_RUNS = tuple(
    (width, place, re.compile(rb"(?:%s){%d,}" % (unit, MIN_RUN)))
    for width, place, unit in (
        (2, 0, _CHAR + rb"\x00"),  # UTF-16 little-endian
        (2, 1, rb"\x00" + _CHAR),  # UTF-16 big-endian
        (4, 0, _CHAR + rb"\x00\x00\x00"),  # UTF-32 little-endian
        (4, 3, rb"\x00\x00\x00" + _CHAR),  # UTF-32 big-endian
    )
)


@dataclass(frozen=True)
class Run:
    start: int  # byte offset of its first character in the data
    text: str


def wide_runs(data: bytes) -> list[Run]:
    """Every run of at least ``MIN_RUN`` ASCII characters stored as UTF-16 or UTF-32, in order
    (text in one byte order may also read as a shorter run in the other: scanned twice, found once)."""
    runs = []
    for width, place, pattern in _RUNS:
        for match in pattern.finditer(data):
            runs.append(Run(match.start() + place, match.group()[place::width].decode("ascii")))
    return sorted(runs, key=lambda run: run.start)


def wide_text(data: bytes) -> str:
    """Every run of ``data`` as one text to scan (empty when there is none), each run on the line
    it starts on in ``data`` (counting its "\\n" bytes): a hit's line is the line in the data.

    A run starting on a line the text has already passed (another reading of the same bytes) is
    put on the current line, its own line breaks made spaces, so the lines after stay true."""
    parts: list[str] = []
    line = 0  # the line the text built so far ends on
    at, counted_to = 0, 0  # the line the next run starts on, counted incrementally (runs come in order)
    for run in wide_runs(data):
        at += data.count(b"\n", counted_to, run.start)
        counted_to = run.start
        text = run.text
        if at > line:
            parts.append("\n" * (at - line))
            line = at
        elif parts:
            parts.append(" ")
            if at < line:
                text = text.replace("\n", " ")
        parts.append(text)
        line += text.count("\n")
    return "".join(parts)
