"""Hex dumps, as the shell's tools write them, read back into their bytes.

``xxd file``, ``hexdump -C file``, ``od -t x1 file`` and ``od -x file`` print a file as lines of
an offset, the bytes in hex (one, two or four to a group) and, for some, the bytes as text in a
column of their own. ``od -c`` prints each byte as a character in a cell four columns wide (a
control byte as ``\n`` or three octal digits), ``od -b`` as three octal digits and ``xxd -b`` as
eight bits: read back too. None of this is one run a hex decoder reads: the offsets, the blanks and
the text column sit between the bytes, and the text column shows the value cut every 16
characters. A dump block (two lines or more, from offset zero) is read here into the bytes it
shows, so the decoded layer finds a value (or a gzip, opened there) in it as in ``xxd -p``'s
plain hex. A dump without offsets (``od -An``) is not read here: a bottle secret in its hex,
octal or characters with blanks between the bytes is found by the separator search
(``dlp.spread``); a token format in it is not found (nothing marks such lines as a dump at a
price every text could pay).

Groups of two or four bytes are written big-endian by ``xxd`` and in the machine's order, little-
endian, by ``od -x`` and ``hexdump``: such a block is read both ways.
"""

from __future__ import annotations

import re

from bot_bottle.sidecar.dlp.encodings import Decoded, whole_span

# A group of one, two or four bytes; not the start of a longer run of hex digits.
_GROUP = r"(?:[0-9a-fA-F]{8}|[0-9a-fA-F]{4}|[0-9a-fA-F]{2})(?![0-9a-fA-F])"
# ``xxd``: "00000010: 4b71 3776 ...  Kq7v..." (one blank between groups, two before the text).
# ``hexdump -C``, ``od``: "00000010  4b 71 37 76 ...  |Kq7v...|" or "0000020 714b 7637 ...".
# The text column, after the groups, is never read. Matched at a line's start only.
_LINE = re.compile(
    rf"[ \t]*[0-9a-fA-F]{{6,10}}(?::(?P<xxd>(?: {_GROUP})+)|(?P<od>(?: {{1,3}}{_GROUP})+))"
)
# ``od -c``: "0000020   s  \n   e   x ...": a cell of four columns per byte, right-aligned: a
# character (a blank for a space; ``**`` for the further bytes of a character ``od`` printed
# whole), a C escape, or three octal digits; ``od -b`` ("0000020 163 012 145 ...") is such a
# line of octal cells only. Tried on a line ``_LINE`` does not match.
# A character sent as UTF-8 and read here byte by byte (latin-1) is two to four characters wide.
_CELL = r"(?:   (?:[\xc2-\xf4][\x80-\xbf]{1,3}|[^\s])|    |  \\[0abfnrtv]| [0-7]{3}|  \*\*)"
_CHAR_LINE = re.compile(rf"[ \t]*[0-9a-fA-F]{{6,10}}(?P<cells>{_CELL}+)")
_CELL_PARTS = re.compile(r"   ([\xc2-\xf4][\x80-\xbf]{1,3}|\S)|  \\([0abfnrtv])| ([0-7]{3})|(    )")
_CELL_WIDTH = 4
_C_ESCAPES = {"0": 0, "a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
_BITS = frozenset("01 ")
# The offset of a dump's first line: six to eight zeros (``od -Ax`` writes six), at the start of
# a line (after a line break, the NUL between joined texts, or the text's start), as printed or
# indented as a quote or a code block does. A text is searched for these only (substring
# searches: every decoded layer pays for them), never line by line.
_FIRST_OFFSET = "000000"
# Where such a line may start: right after these, or after a few blanks (``_INDENT``).
_FIRST_LINES = ("\n" + _FIRST_OFFSET, "\x00" + _FIRST_OFFSET, " " + _FIRST_OFFSET, "\t" + _FIRST_OFFSET)
_INDENT = 8
# ``hexdump`` and ``od`` write a line of "*" for lines the same as the one before.
_REPEATED = "\n*\n"
_LINE_MAX = 256  # a dump line is never longer (the NUL search need not go further)
MIN_LINES = 2
MIN_BYTES = 8  # the shortest secret searched for


def may_hold_dump(text: str) -> bool:
    """Whether ``text`` may hold a hex dump of two lines or more (cheap: one substring search)."""
    return _FIRST_OFFSET in text


def hex_dumps(text: str, *, limit: int) -> list[Decoded]:
    """The bytes each hex dump block in ``text`` shows, as latin-1 text (every byte one
    character), placed on the whole block; a block of multi-byte groups also read with each
    group's bytes reversed (little-endian). At most ``limit`` bytes decoded in all."""
    if len(text) < MIN_BYTES * 2 or not may_hold_dump(text):
        return []
    out: list[Decoded] = []
    for start, end, characters, lines in _blocks(text):
        for data in ([b"".join(map(_cell_bytes, lines))] if characters else _readings(lines)):
            if limit <= 0:
                return out
            if len(data) >= MIN_BYTES:
                out.append(Decoded("hexdump", start, end, data.decode("latin-1"), whole_span(start, end)))
                limit -= len(data)
    return out


def _first_lines(text: str) -> list[int]:
    """Where the lines that may start a dump start, ascending: each line whose first characters
    but up to ``_INDENT`` blanks are ``_FIRST_OFFSET``."""
    head = text[: _INDENT + len(_FIRST_OFFSET)]
    zeros = [len(head) - len(head.lstrip(" \t"))]  # the text's first line
    for mark in _FIRST_LINES:
        at = text.find(mark)
        while at >= 0:
            zeros.append(at + 1)
            at = text.find(mark, at + len(mark))
    starts = {_line_start(text, at) for at in zeros if text.startswith(_FIRST_OFFSET, at)}
    return sorted(starts - {-1})


def _line_start(text: str, at: int) -> int:
    """The start of the line ``at`` is in, when only up to ``_INDENT`` blanks come before ``at``
    on it; else -1. A NUL (between joined texts) starts a line too."""
    lo = max(0, at - _INDENT)
    start = max(text.rfind("\n", lo, at), text.rfind("\x00", lo, at)) + 1
    if (start == 0 and lo > 0) or text[start:at].strip(" \t"):
        return -1
    return start


def _blocks(text: str) -> list[tuple[int, int, bool, list[str]]]:
    """``(start, end, characters, lines)`` of each block of ``MIN_LINES`` or more consecutive
    dump lines whose first line's offset is zero; ``characters``: a character dump (``od -c``,
    ``od -b``); ``lines``: the groups of each line, as written (a character dump's cells with
    their blanks, as ``_cell_bytes`` reads them)."""
    out: list[tuple[int, int, bool, list[str]]] = []
    done = 0
    for start in _first_lines(text):
        if start < done:
            continue  # a line of a block read already
        end, lines = start, []
        line = _LINE if _LINE.match(text, start) is not None else _CHAR_LINE  # one kind per block
        m = line.match(text, start)
        while m is not None:
            # The block takes in each line's text column: redacted, the value's last characters
            # must not stay behind in it.
            end = _line_end(text, m.end())
            lines.append(_groups(m))
            if text.startswith(_REPEATED, end):  # lines like the one before left out: read on
                end += len(_REPEATED) - 1
            m = line.match(text, end + 1) if text.startswith("\n", end) else None
        if len(lines) >= MIN_LINES:
            out.append((start, end, line is _CHAR_LINE, lines))
            done = end
    return out


def _groups(m: re.Match[str]) -> str:
    if m.re is _CHAR_LINE:
        return m.group("cells")
    return (m.group("xxd") or m.group("od")).strip()


def _line_end(text: str, at: int) -> int:
    """Where the line ``at`` is in ends: its line break (a carriage return before it left in the
    line), a NUL (between joined texts), or the text's end."""
    ends = [found for found in (text.find("\n", at), text.find("\x00", at, at + _LINE_MAX)) if found >= 0]
    return min(ends) if ends else len(text)


def _cell_bytes(cells: str) -> bytes:
    """The bytes a character dump's cells (``_CELL``, four columns each) show."""
    if cells.isascii() and cells[1::_CELL_WIDTH].isspace() and cells[2::_CELL_WIDTH].isspace():
        return cells[3::_CELL_WIDTH].encode("ascii")  # characters only, the common line: at C speed
    out = bytearray()
    # "  **" (the further bytes of a character shown whole, written with it) matches no group.
    for m in _CELL_PARTS.finditer(cells):
        char, escape, octal, space = m.groups()
        if char is not None:
            # Its UTF-8 bytes: as read (latin-1, each byte one character) or as decoded.
            out += char.encode("latin-1") if len(char) > 1 else char.encode("utf-8")
        elif escape is not None:
            out.append(_C_ESCAPES[escape])
        elif octal is not None:
            out.append(int(octal, 8) & 0xFF)
        elif space is not None:
            out.append(0x20)
    return bytes(out)


def _readings(lines: list[str]) -> list[bytes]:
    """The bytes of a block's ``lines`` in the order written and, when its groups are wider
    than a byte, with each group's bytes reversed; a block of eight-digit groups of ones and
    zeros only (``xxd -b``) as bits. Kept as one string per line, not one per group: a dump of
    a megabyte holds hundreds of thousands of groups."""
    joined = " ".join(lines)
    if _BITS.issuperset(joined) and all(len(group) == 8 for group in joined.split()):
        return [bytes(int(group, 2) for group in joined.split())]
    data = bytes.fromhex(joined)  # blanks between bytes are skipped
    if all(line[2:3] in ("", " ") for line in lines):
        return [data]
    return [data, b"".join(_reversed_groups(line) for line in lines)]


def _reversed_groups(line: str) -> bytes:
    return b"".join(bytes.fromhex(group)[::-1] for group in line.split())
