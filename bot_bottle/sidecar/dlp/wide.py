"""ASCII text stored two or four bytes a character (UTF-16 or UTF-32, either byte order), found
run by run wherever it sits, as ``strings -e l`` finds it.

A token is ASCII; written as UTF-16 or UTF-32, each of its characters is followed (or preceded)
by one or three NULs, and no detector sees it in the bytes as they are: ``iconv -t utf-16`` of a
file holding a token, a string in a binary asset, UTF-16 text past the first 8000 bytes of a file
(the only bytes git looks at to call a file binary). ``wide_layers`` gives the engine each run as
a decoded layer (an upload, a request field); the git-gate reads a blob's or a message's runs
with ``wide_text``, on the lines they start on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot_bottle.sidecar.dlp.encodings import Decoded

# Characters: as short as the shortest secret value looked for (``known.MIN_SECRET_LENGTH``).
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


# The same runs in a text whose characters are the bytes (``bodies.as_text``: latin-1).
_TEXT_RUNS = tuple(
    (width, place, re.compile(pattern.pattern.decode("latin-1"))) for width, place, pattern in _RUNS
)
_ENCODINGS = {2: "utf-16", 4: "utf-32"}


def wide_layers(text: str, *, limit: int) -> list[Decoded]:
    """Each run of ``text`` (bytes as characters) as a decoded layer, its spans mapped back
    character by character; at most ``limit`` characters decoded in all. Cheap when ``text``
    holds no NUL (one ``in`` test) or only NULs no run is made of (the NULs between joined
    texts, a stray one): one search that skips ahead from NUL to NUL."""
    if "\x00" not in text:
        return []
    regions = _text_regions(text)
    out: list[Decoded] = []
    for width, place, pattern in _TEXT_RUNS:
        for match in (found for start, end in regions for found in pattern.finditer(text, start, end)):
            if limit <= 0:
                return out
            decoded = match.group()[place::width]
            # The same text read in the other byte order, shifted by a byte, lacks its first or
            # last character (or has a stray byte's instead): a reading held in another is
            # dropped, one that holds another replaces it, two that differ are both kept.
            other = next((i for i, layer in enumerate(out) if match.start() < layer.end
                          and layer.start < match.end() and (decoded in layer.text or layer.text in decoded)), None)
            if other is not None and decoded in out[other].text:
                continue
            layer = Decoded(_ENCODINGS[width], match.start(), match.end(), decoded,
                            _per_character(match.start(), width))
            if other is not None:
                out[other] = layer
            else:
                out.append(layer)
            limit -= len(decoded)
    return out


def _text_regions(text: str) -> list[tuple[int, int]]:
    """``wide_regions`` of a text whose characters are the bytes, with a margin wide enough that
    each run the patterns of ``_TEXT_RUNS`` match over the whole text lies inside one stretch:
    searched stretch by stretch, they find the same runs. (A run's seeds are at most four
    characters apart, the first within a character of its start, the last within
    ``_TEXT_MARGIN`` - 5 of its end.)"""
    spans: list[tuple[int, int]] = []
    found = _TEXT_SEED.search(text)
    while found is not None:
        extent = _TEXT_EXTENT_32 if text[found.start() + 1] == "\x00" else _TEXT_EXTENT_16
        end = max(extent.match(text, found.start()).end(), found.end())
        if spans and found.start() - _TEXT_MARGIN <= spans[-1][1]:
            spans[-1] = (spans[-1][0], min(len(text), end + _TEXT_MARGIN))
        else:
            spans.append((max(0, found.start() - _TEXT_MARGIN), min(len(text), end + _TEXT_MARGIN)))
        found = _TEXT_SEED.search(text, end)
    return spans


def _per_character(start: int, width: int):  # type: ignore[no-untyped-def]
    """The offset map of a run from ``start``: character i stands for its ``width`` bytes."""
    return lambda s, e: (start + s * width, start + e * width)


# Where a run may be, found fast in a large batch: one pattern that starts with a NUL, which the
# regex engine skips ahead to (a pattern that starts with a class tries every byte: ~50 times
# slower over random data; two patterns, twice the pass). Four UTF-16 characters in either byte
# order hold "NUL c NUL c NUL c NUL"; two UTF-32 ones "NUL NUL NUL c NUL NUL NUL c". Then how far
# the run goes on from there.
_C = rb"[\t\n\r\x20-\x7e]"
_SEED = re.compile(rb"\x00(?:%s\x00%s\x00%s\x00|\x00\x00%s\x00\x00\x00%s)" % (_C, _C, _C, _C, _C))
_EXTENT_16 = re.compile(rb"(?:\x00%s)*" % _C)
_EXTENT_32 = re.compile(rb"(?:\x00\x00\x00%s)*" % _C)
# Bytes taken in before a seed and after a run: its first character (little-endian) and the
# NULs after its last one.
_MARGIN = 4
# The same searches in a text whose characters are the bytes; its stretches are searched with
# the patterns of ``_TEXT_RUNS`` (a UTF-32 run's last seed ends up to three NULs before its end,
# and the next seed is searched from where the extent stopped).
_TEXT_SEED = re.compile(_SEED.pattern.decode("latin-1"))
_TEXT_EXTENT_16 = re.compile(_EXTENT_16.pattern.decode("latin-1"))
_TEXT_EXTENT_32 = re.compile(_EXTENT_32.pattern.decode("latin-1"))
_TEXT_MARGIN = 16


def wide_regions(data: bytes | bytearray) -> list[tuple[int, int]]:
    """``(start, end)`` of the stretches of ``data`` that may hold a run, each taking in a whole
    run (of any length: found once, not once per seed inside it), sorted and disjoint."""
    if b"\x00" not in data:
        return []
    spans: list[tuple[int, int]] = []
    found = _SEED.search(data)
    while found is not None:
        extent = _EXTENT_32 if data[found.start() + 1] == 0 else _EXTENT_16
        end = max(extent.match(data, found.start()).end(), found.end())
        if spans and found.start() - _MARGIN <= spans[-1][1]:
            spans[-1] = (spans[-1][0], min(len(data), end + _MARGIN))
        else:
            spans.append((max(0, found.start() - _MARGIN), min(len(data), end + _MARGIN)))
        found = _SEED.search(data, end)
    return spans


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

    A run held in another run that starts within a few bytes of it (the same bytes read in the
    other byte order, short of a character) is left out: joined after the true reading it would
    make a text none of the bytes hold (a token followed by "token: ...", which reads as an
    assignment). A run starting on a line the text has already passed (another reading of the
    same bytes) is put on the current line, its own line breaks made spaces, so the lines after
    stay true."""
    runs = wide_runs(data)  # in order of their start
    parts: list[str] = []
    line = 0  # the line the text built so far ends on
    at, counted_to = 0, 0  # the line the next run starts on, counted incrementally (runs come in order)
    for i, run in enumerate(runs):
        if _misread(runs, i):
            continue
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


# A run read out of step (the other byte order, a byte off) starts this close to the run it misreads.
_MISREAD_REACH = 4


def _misread(runs: list[Run], i: int) -> bool:
    """Whether ``runs[i]`` is held in a run starting within ``_MISREAD_REACH`` bytes of it (of two
    equal readings, the later one is)."""
    run = runs[i]
    for j in range(i - 1, -1, -1):
        if run.start - runs[j].start > _MISREAD_REACH:
            break
        if run.text in runs[j].text:
            return True
    for j in range(i + 1, len(runs)):
        if runs[j].start - run.start > _MISREAD_REACH:
            break
        if run.text in runs[j].text and run.text != runs[j].text:
            return True
    return False
