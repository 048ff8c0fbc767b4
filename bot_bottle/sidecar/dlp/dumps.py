"""Hex dumps, as the shell's tools write them, read back into their bytes.

``xxd file``, ``hexdump -C file``, ``od -t x1 file`` and ``od -x file`` print a file as lines of
an offset, the bytes in hex (one, two, four or eight to a group) and, for some, the bytes as text
in a column of their own. ``od -c`` prints each byte as a character in a cell four columns wide (a
control byte as ``\n`` or three octal digits), ``od -b`` as three octal digits and ``xxd -b`` as
eight bits: read back too. None of this is one run a hex decoder reads: the offsets, the blanks and
the text column sit between the bytes, and the text column shows the value cut every 16
characters. A dump block (two lines or more, from offset zero) is read here into the bytes it
shows, so the decoded layer finds a value (or a gzip, opened there) in it as in ``xxd -p``'s
plain hex. Groups may be blanks or tabs of any width apart (re-indented, aligned in wide
columns): an ``xxd`` line's bytes end at the next line's offset, and a short last line's at a gap
wider than the block's, so ``xxd``'s text column is not read as bytes. ``od -c``'s cells may have
tabs between them (``od -c | tr ' ' '\\t'``, a spreadsheet paste). A dump may be indented up to
``_OFFSET_INDENT`` columns (a block scalar nested deep in YAML).

A dump without offsets (``od -An -x``, ``od -An -tx1``, ``hexdump -e '16/1 "%02x " "\\n"'``) and
base64 wrapped narrower than a run the decoder reads (``base64 -w 16``) are read too
(``plain_dumps``): lines of hex groups with one blank between them (two in ``hexdump -C``'s middle
column, its offsets cut away), ``od -An -c`` and ``od -An -b`` cells (tabs between them too, as
``od -c``'s may have; a space byte an empty cell in a spreadsheet paste), or lines of base64 of one
width and one indent (none, or a YAML block scalar's or a Markdown code block's), two lines or
more; and one line of hex bytes with one or two blanks between them ("67 68 70
5f ...", at a line's or a value's start, or inside a line: ``key: 67 68 ...``, after "=", ",", a
quote, two blanks or a tab; a tab between bytes too, or blanks of any width: a dump aligned in
wide columns). What finds them is one search of the text for a line break followed by such a
line's start (``od -An -c`` and ``-b`` cells indented too: the indentation is what the cells,
right-aligned, leave; or a tab, then a cell's one to three characters and a tab), which source
code and prose fail within a character or two of most line breaks; only where it matches are
lines taken apart. A line inside a line is found by one
search of a byte view of the text (a hex digit one symbol, a blank or tab another). (A bottle secret in them was found before by the separator search, ``dlp.spread``; a
token format was not.) That search finds too the blocks the line-break search turns away: lines
indented by two blanks or more (a YAML block scalar, a Markdown code block) or with blanks or
tabs of any mix and width between their bytes; a block is read from its first line across its
lines, so a value cut at a line's end is read whole. Narrow "base64" that is lines of
lowercase letters only and whose bytes are no text (a word list, a column of short lowercase
words) gives no layer: a large text of short lines holds thousands of such blocks.

Groups of two or four bytes are written big-endian by ``xxd`` and in the machine's order, little-
endian, by ``od -x``, ``hexdump`` and ``xxd -e``: such a block is read both ways.

A dump pasted as a table (a spreadsheet, TSV) is read too: rows of an offset or a row number, a
tab, then the row's bytes in hex (a cell each, one run, or blanks between them), maybe a cell of
text last (``_tab_tables``); only a text holding a tab is searched for one.
"""

from __future__ import annotations

import binascii
import bisect
import itertools
import re
from collections.abc import Iterator

from bot_bottle.sidecar.dlp.encodings import Decoded, whole_span

# A group of one to eight bytes (``xxd -g 8``; a last group cut short by the end of the file, as
# ``xxd -g 4`` and ``-g 8`` write it); not the start of a longer run of hex digits.
_GROUP = r"(?:[0-9a-fA-F]{2}){1,8}(?![0-9a-fA-F])"
# ``xxd``: "00000010: 4b71 3776 ...  Kq7v..." (one blank between groups, two before the text).
# ``hexdump -C``, ``od``: "00000010  4b 71 37 76 ...  |Kq7v...|" or "0000020 714b 7637 ...".
# Matched at a line's start only. Between ``od``'s groups, blanks and tabs of any mix and width,
# as a dump aligned by hand or in wide columns has them; between ``xxd``'s too. Its text column,
# two blanks on, may then be read as groups when it starts with hex words: a line's bytes end
# where the next line's offset says, a short last line's at a gap wider than the block's
# (``_capped``).
# ``xxd -g0`` (or ``-g 16``) writes a line's bytes as one group: "00000010: 4b713776...  Kq7v...".
# A group that wide after an offset may also be two hashes or a UUID without dashes: such a line
# is read only when the text column showing its bytes follows (``_wide_line_shown``).
_WIDE_GROUP = r"(?:[0-9a-fA-F]{2}){9,64}(?![0-9a-fA-F])"
_LINE = re.compile(
    rf"[ \t]*(?P<offset>[0-9a-fA-F]{{6,10}})"
    rf"(?::(?:(?P<xxd>(?:[ \t]++{_GROUP}(?![^\s\x00]))+)|[ ](?P<wide>{_WIDE_GROUP})(?=  ))"
    rf"|(?P<od>(?:[ \t]++{_GROUP})+))"
)
# ``xxd``'s text column: a printable ASCII byte as itself, any other as ".".
_SHOWN = bytes(byte if 0x20 <= byte < 0x7F else 0x2E for byte in range(256))
_GAPS = re.compile(r"[ \t]+")
_GROUP_AT = re.compile(r"[^ \t]+")
_NARROW_GAP = 3  # the widest gap between an ``xxd`` line's groups before wide gaps were read
# ``od -c``: "0000020   s  \n   e   x ...": a cell of four columns per byte, right-aligned: a
# character (a blank for a space; ``**`` for the further bytes of a character ``od`` printed
# whole), a C escape, or three octal digits; ``od -b`` ("0000020 163 012 145 ...") is such a
# line of octal cells only. Tried on a line ``_LINE`` does not match.
# A character sent as UTF-8 and read here byte by byte (latin-1) is two to four characters wide.
_CELL = r"(?:   (?:[\xc2-\xf4][\x80-\xbf]{1,3}|[^\s])|    |  \\[0abfnrtv]| [0-7]{3}|  \*\*)"
_CHAR_LINE = re.compile(rf"[ \t]*[0-9a-fA-F]{{6,10}}(?P<cells>{_CELL}+)")
# The same with tabs between its cells: each blank a tab (``od -c | tr ' ' '\t'``), or one tab
# before each cell's character, escape or octal digits (a spreadsheet paste; a space byte a
# blank, or an empty cell: two tabs in a row). Tried on a line ``_CHAR_LINE`` does not match
# either; a line is matched whole.
_UTF8_CHAR = r"[\xc2-\xf4][\x80-\xbf]{1,3}"
_TAB_CELL = rf"(?:\t\t\t(?:{_UTF8_CHAR}|[^\s])|\t\t\t\t|\t\t\\[0abfnrtv]|\t[0-7]{{3}}|\t\t\*\*)"
_ONE_TAB_CELL = rf"(?:\t(?:[0-7]{{3}}|\\[0abfnrtv]|\*\*|{_UTF8_CHAR}|[^\t\r\n\x00])?(?![^\t\r\n\x00]))"
_TAB_CHAR_LINE = re.compile(
    rf"[ \t]*[0-9a-fA-F]{{6,10}}(?:(?P<tabs>{_TAB_CELL}+)|(?P<cells>{_ONE_TAB_CELL}+))\r?(?![^\n\x00])"
)
_ONE_TAB_PARTS = re.compile(r"\t([^\t]*)")
_CELL_PARTS = re.compile(r"   ([\xc2-\xf4][\x80-\xbf]{1,3}|\S)|  \\([0abfnrtv])| ([0-7]{3})|(    )")
_CELL_WIDTH = 4
_C_ESCAPES = {"0": 0, "a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
_BITS = frozenset("01 \t")
# The offset of a dump's first line: six to eight zeros (``od -Ax`` writes six), at the start of
# a line (after a line break, the NUL between joined texts, or the text's start), as printed or
# indented as a quote or a code block does. A text is searched for these only (substring
# searches: every decoded layer pays for them), never line by line.
_FIRST_OFFSET = "000000"
# Where such a line may start: right after these, or after blanks (``_OFFSET_INDENT``).
_FIRST_LINES = ("\n" + _FIRST_OFFSET, "\x00" + _FIRST_OFFSET, " " + _FIRST_OFFSET, "\t" + _FIRST_OFFSET)
_LINE_LEADS = frozenset(mark[0] for mark in _FIRST_LINES)
_ZEROS = re.compile("0*")
_INDENT = 16  # a code block in a list in Markdown, a block scalar in YAML: up to 15 blanks
# A dump with offsets indented deeper: a block scalar nested in YAML, a log's continuation lines.
# The blanks before a "000000" are looked back over only that far (a long line costs no more).
_OFFSET_INDENT = 64
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
    but up to ``_OFFSET_INDENT`` blanks are ``_FIRST_OFFSET``."""
    head = text[: _OFFSET_INDENT + len(_FIRST_OFFSET)]
    zeros = [len(head) - len(head.lstrip(" \t"))]  # the text's first line
    # One search for the zeros, each run of them then passed at once: the zeros themselves are
    # rare in code and prose, where a search for one of ``_FIRST_LINES`` stops at every line break
    # or blank (four such passes cost ten times this one).
    at = text.find(_FIRST_OFFSET)
    while at >= 0:
        if at and text[at - 1] in _LINE_LEADS:
            zeros.append(at)
        at = text.find(_FIRST_OFFSET, _ZEROS.match(text, at).end())
    starts = {_line_start(text, at) for at in zeros if text.startswith(_FIRST_OFFSET, at)}
    return sorted(starts - {-1})


def _line_start(text: str, at: int) -> int:
    """The start of the line ``at`` is in, when only up to ``_OFFSET_INDENT`` blanks come before
    ``at`` on it; else -1. A NUL (between joined texts) starts a line too."""
    lo = max(0, at - _OFFSET_INDENT)
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
        end = start
        lines: list[str] = []
        offsets: list[str | None] = []  # an ``xxd`` line's offset, None for another dump's
        line = _line_kind(text, start)  # one kind per block
        m = _match_line(line, text, start)
        while m is not None:
            # The block takes in each line's text column: redacted, the value's last characters
            # must not stay behind in it.
            end = _line_end(text, m.end())
            lines.append(_groups(m))
            offsets.append(m.group("offset") if line is _LINE and m.group("od") is None else None)
            if text.startswith(_REPEATED, end):  # lines like the one before left out: read on
                end += len(_REPEATED) - 1
            m = _match_line(line, text, end + 1) if text.startswith("\n", end) else None
        if len(lines) >= MIN_LINES:
            out.append((start, end, line is not _LINE, _capped(lines, offsets)))
            done = end
    return out


def _match_line(line: re.Pattern[str], text: str, at: int) -> re.Match[str] | None:
    m = line.match(text, at)
    if m is not None and line is _LINE and m.group("wide") is not None and not _wide_line_shown(text, m):
        return None
    return m


def _wide_line_shown(text: str, m: re.Match[str]) -> bool:
    """Whether the ``xxd -g0`` line ``m`` goes on with its text column: two blanks or more (more
    on a short last line, padded out), then its bytes as ``xxd`` shows them."""
    shown = bytes.fromhex(m.group("wide")).translate(_SHOWN).decode("ascii")
    blanks = len(text) - len(text[m.end() :].lstrip(" ")) - m.end()
    # The column may itself start with blanks (bytes 0x20): any of its possible starts.
    return any(text.startswith(shown, m.end() + gap) for gap in range(2, blanks + 1))


def _line_kind(text: str, start: int) -> re.Pattern[str]:
    """The pattern of the dump line at ``start``: hex groups, character cells, or character
    cells with tabs between them."""
    if _match_line(_LINE, text, start) is not None:
        return _LINE
    if _CHAR_LINE.match(text, start) is not None or "\t" not in text[start : start + _OFFSET_INDENT + 12]:
        return _CHAR_LINE
    return _TAB_CHAR_LINE


def _capped(lines: list[str], offsets: list[str | None]) -> list[str]:
    """``lines`` of an ``xxd`` block (``offsets``: each line's, None for a line of another
    dump), each cut to the bytes a line holds: the least step between two offsets. Groups past
    it are the start of the text column, read as groups when the blanks before it were
    re-aligned."""
    if None in offsets:
        return lines
    at = [int(offset, 16) for offset in offsets if offset is not None]
    size = min((b - a for a, b in itertools.pairwise(at) if b > a), default=0)
    if not 0 < size <= _LINE_MAX:
        return lines
    digits = size * (8 if _bits(lines) else 2)
    full = [_cut(line, digits) for line in lines[:-1]]
    # The last line may be short: it ends at its first gap wider than any between a full line's
    # groups (three blanks at least, as before wide gaps were read), or after a group narrower
    # than theirs (a group cut by the end of the file); the blanks that pad it out to the text
    # column are wider, as ``xxd`` and an aligned table leave them.
    widest = max((len(gap) for line in full for gap in _GAPS.findall(line)), default=0)
    group = max((len(group) for line in full for group in line.split()), default=0)
    return [*full, _cut(_narrow(lines[-1], max(widest, _NARROW_GAP), group), digits)]


def _digits(line: str) -> int:
    return len(line) - line.count(" ") - line.count("\t")


def _narrow(line: str, widest: int, group: int) -> str:
    """``line`` up to its first gap wider than ``widest`` blanks (but ``xxd -e``'s before its
    last group), or up to and with its first group narrower than ``group`` digits."""
    end = 0
    for m in _GROUP_AT.finditer(line):
        width = m.end() - m.start()
        # ``xxd -e`` right-aligns a group cut short by the end of the file in its column: one
        # blank, and one more per digit it lacks, before it (the text column is further away).
        aligned = width < group and line[end : m.start()] == " " * (1 + group - width)
        if end and m.start() - end > widest and not aligned:
            break
        end = m.end()
        if width < group:
            break
    return line[:end]


def _cut(line: str, digits: int) -> str:
    """The groups of ``line`` up to its first ``digits`` hex digits, the gaps between them kept."""
    if _digits(line) <= digits:
        return line  # the common line: no text column read as groups
    for group in _GROUP_AT.finditer(line):
        digits -= group.end() - group.start()
        if digits <= 0:
            return line[: group.end() + digits]
    return line


def _groups(m: re.Match[str]) -> str:
    if m.re is _CHAR_LINE:
        return m.group("cells")
    if m.re is _TAB_CHAR_LINE:
        return _tabbed_cells(m)
    return (m.group("xxd") or m.group("wide") or m.group("od")).strip()


def _tabbed_cells(m: re.Match[str]) -> str:
    """The cells of a ``_TAB_CHAR_LINE`` (or ``_TAB_CELLS_LINE``) match as ``od -c`` prints
    them (``_CELL``)."""
    if m.group("tabs") is not None:
        return m.group("tabs").replace("\t", " ")
    cells = m.group("cells")
    shown = cells[1::2]
    if cells[::2].count("\t") == len(shown) == len(cells) // 2 and "\t" not in shown:
        return "   " + "   ".join(shown)  # one character a cell, the common line: at C speed
    return "".join(_cell(cell) for cell in _ONE_TAB_PARTS.findall(cells))


def _cell(shown: str) -> str:
    """One cell of a spreadsheet's row as ``od -c`` prints it, four columns wide."""
    if shown.startswith("\\") or shown == "**" or (len(shown) == 3 and shown.isdigit()):
        return shown.rjust(_CELL_WIDTH)
    return "   " + (shown or " ")  # a character (a multi-byte one read as latin-1 is wider)


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
    if _bits(lines):
        return [bytes(int(group, 2) for group in joined.split())]
    data = bytes.fromhex(joined)  # blanks between bytes are skipped
    if all(not line[2:3].strip() for line in lines) or len(lines[0].split(None, 1)[0]) > 16:
        return [data]  # a byte a group, or ``xxd -g0``'s line a group: never little-endian
    return [data, b"".join(_reversed_groups(line) for line in lines)]


def _bits(lines: list[str]) -> bool:
    """Whether ``lines`` are ``xxd -b``'s: groups of eight ones and zeros."""
    return all(_BITS.issuperset(line) and all(len(group) == 8 for group in line.split()) for line in lines)


def _reversed_groups(line: str) -> bytes:
    return b"".join(bytes.fromhex(group)[::-1] for group in line.split())


# -- dumps without offsets, and narrow base64 ---------------------------------------------------

# Where such a block may be: a line break, then the start of a line of hex groups with one
# blank between them (``od -An`` puts a blank before each group, ``hexdump -e '"%02x "'`` one
# after) or of a line of base64 under ``NARROW`` wide followed by the next line's start. Every
# block of two lines or more has one (after its first line break). The line break is a literal
# the regular expression engine skips ahead to, and the next two characters (a letter or digit
# after one blank at most) turn away an indented line of code at once: the search costs little
# more than finding the line breaks of a text.
_PLAIN_HINT = re.compile(
    # ``od -An -c``: two cells (``_CELL``) of a character or an escape first, a space's blank cell
    # second; ``od -An -b``'s octal cells are hinted as ``od -An``'s hex groups are.
    r"\n(?:  (?: [!-~]|\\[0abfnrtv])(?:   [!-~]|  \\[0abfnrtv]| [0-7]{3}|    )|"
    r"[ 0-9A-Za-z+/][0-9A-Za-z+/]"
    r"(?:(?<= [0-9a-fA-F])[0-9a-fA-F]{1,7} [0-9a-fA-F]{2}"  # od -An
    # hexdump -e '16/1 "%02x "', a line of bytes one or two blanks apart: the blank is tested first
    r"| (?<=\n[0-9a-fA-F]{2} ) ?[0-9a-fA-F]{2} {1,2}[0-9a-fA-F]"
    # base64 -w 4 .. -w 23: a line, then the next one's start (a last line may be one character
    # and its padding), or its padding or the text's end
    # after it (a block of two lines that is all of a text: only its second line break is there);
    # a line of code or prose is turned away at the first character after its first word.
    r"|[A-Za-z0-9+/]{2,21}+(?![^\r\n=\x00])"
    r"(?:\r?\n[A-Za-z0-9+/][A-Za-z0-9+/=]|={1,2}\r?(?![^\n\x00])|\r?\n?(?![^\x00])))|"
    # the same indented (a YAML block scalar, a Markdown code block): a line, then the next
    # one's indented start; an indented line of code is turned away after its first word.
    r"[ \t]{1,15}+(?:[A-Za-z0-9+/]{4,23}+={0,2}\r?\n[ \t]{1,15}+[A-Za-z0-9+/]|"
    # or, the indentation read once for both, ``od -An -c`` or ``-b`` indented: a cell's
    # character, escape or octal digits, then three more cells, or (tabs between the cells) the
    # tab before the next cell; a line of code or prose is turned away a character or two past
    # its indentation.
    r"[!-~]{1,3}+(?: (?:  [!-~]| \\[0abfnrtv]|[0-7]{3}|   )(?:   [!-~]|  \\[0abfnrtv]| [0-7]{3}|    ){2}|\t)))"
)
# One line of ``od -An -c`` or ``od -An -b``: cells only.
_CELLS_LINE = re.compile(rf"((?:{_CELL})+)\r?")
# The same with tabs between its cells (``_TAB_CHAR_LINE``), maybe indented by blanks.
_TAB_CELLS_LINE = re.compile(rf"( {{0,{_INDENT - 1}}}+)(?:(?P<tabs>{_TAB_CELL}+)|(?P<cells>{_ONE_TAB_CELL}+))\r?")
_BLANKS = re.compile(r"[ \t]*")
_INDENTED = ("    ", "\t")  # a line that may be indented, four blanks or a tab first
# One line of a dump without offsets: groups of one, two or four bytes, one blank between them
# (``od`` writes one before each group, ``hexdump -e '"%02x "'`` one after; ``hexdump -C`` with
# its offsets and text column cut away two in the middle and blanks to fill a short last line);
# blanks and tabs of any mix and width, as a dump aligned by hand or in wide columns has them,
# and indented (a code block in Markdown, a block scalar in YAML).
_HEX_LINE = re.compile(
    r"[ \t]*+((?:[0-9a-fA-F]{2}|[0-9a-fA-F]{4}|[0-9a-fA-F]{8})(?:[ \t]++[0-9a-fA-F]{2,8})*)[ \t]*\r?"
)
# One line of narrow base64: its last line may be shorter and padded (one character and "==");
# indented as every line of its block is (a YAML block scalar, a Markdown code block).
_B64_LINE = re.compile(r"([ \t]{0,%d})([A-Za-z0-9+/]{1,23})(={0,2})\r?" % (_INDENT - 1))
# The same, matched where a line starts: the whole line, up to its line break, a NUL or the end.
_B64_LINE_AT = re.compile(r"([ \t]{0,%d}+)([A-Za-z0-9+/]{1,23}+)(={0,2})\r?(?![^\n\x00])" % (_INDENT - 1))
NARROW = 24  # from this width on, each line is a run ``encodings.decode_runs`` reads
# A block of narrow base64 that is lowercase letters only (its lines, their indentation and
# line breaks): the shape of lines of lowercase words (``_word_lines``).
_LOWERCASE_LINES = re.compile(r"[a-z \t\r\n]*")
# What a block of offset-less hex lines or of cells starts with: a hex digit, a blank or a tab.
_DUMP_LEADS = frozenset("0123456789abcdefABCDEF \t")
# The first two lines of a block of narrow base64 (``_B64_LINE``): the first as wide as the
# block (four characters or more, not padded), the second indented the same and, when it is the
# block's last, maybe shorter (``_block_at`` compares their widths).
_B64_PAIR = re.compile(
    r"([ \t]{0,%d}+)([A-Za-z0-9+/]{4,23}+)\r?\n\1([A-Za-z0-9+/]{1,23}+)={0,2}\r?(?![^\n\x00])" % (_INDENT - 1)
)


def plain_dumps(text: str, *, limit: int, latin: bytes | None = None) -> list[Decoded]:
    """The bytes of each dump without offsets (hex groups, their bytes reversed read too; ``od
    -An -c`` and ``-b`` cells), each line of hex bytes with blanks between them and each block of
    narrow base64 in ``text``, as latin-1 text placed on the whole block. At most ``limit`` bytes
    decoded in all. ``latin``: the text's latin-1 bytes ("?" for wider characters), when the
    caller has them."""
    out: list[Decoded] = []
    done = 0
    read_at_starts: list[tuple[int, int]] = []  # blocks read at a value's start: their hints are passed over
    for at in _value_starts(text) if len(text) >= MIN_BYTES * 3 - 1 else ():
        # A value that is one line of hex bytes; the first line of a block is read with it, below.
        line = _spaced_line(text, at)
        if line is not None and limit > 0 and _hex_block(text, at, limit) is None:
            out.append(line)
            limit -= len(line.text)
        elif line is None and limit > 0 and _B64_PAIR.match(text, at) is not None:
            # A block at a value's start has no line break before its first line: its hint is
            # after that line, and a short last line (``base64 -w 20`` of 16 bytes ends "Ug==")
            # gives none. Read here as the hint would have it read.
            block = _block_at(text, at, limit)
            if block is not None:
                end, limit = _add_block(out, text, at, block, limit)
                read_at_starts.append((at, end))
    pending = iter(read_at_starts)
    next_read = next(pending, None)
    for m in _PLAIN_HINT.finditer(text):
        while next_read is not None and next_read[0] <= m.start():
            done = max(done, next_read[1])
            next_read = next(pending, None)
        if m.start() < done:
            continue  # a line of a block read already
        if limit <= 0:
            break
        # The block starts at the line before the hint's line break, or (that line being
        # something else) at the line after it.
        for start in (_line_start_before(text, m.start()), m.start() + 1):
            block = _block_at(text, start, limit)
            if block is not None:
                break
        else:
            line = _spaced_line(text, m.start() + 1)
            if line is not None:
                out.append(line)
                limit -= len(line.text)
                done = line.end
            continue
        done, limit = _add_block(out, text, start, block, limit)
        if limit <= 0:
            return out
    if limit > 0 and len(text) >= MIN_BYTES * 3 - 1:
        out += _spaced_lines_inside(text, out, limit, latin)
    if limit > 0 and "\t" in text:
        out += _tab_tables(text, out, limit)
    return out


def _add_block(out: list[Decoded], text: str, start: int, block: tuple[int, str, list[bytes]],
               limit: int) -> tuple[int, int]:
    """The readings of ``block`` (at ``start``) added to ``out`` while ``limit`` lasts, but
    narrow base64 that is lines of lowercase words; returns the block's end and what is left."""
    end, encoding, readings = block
    for data in readings:
        if limit <= 0:
            break
        if len(data) >= MIN_BYTES and not (encoding == "base64" and _word_lines(text, start, end, data)):
            out.append(Decoded(encoding, start, end, data.decode("latin-1"), whole_span(start, end)))
            limit -= len(data)
    return end, limit


def _block_at(text: str, start: int, limit: int) -> tuple[int, str, list[bytes]] | None:
    """The block of offset-less hex lines, ``od -An -c`` cells or narrow base64 at ``start``, the
    first of them that is there. Each parser is called only where its block's first line (or
    two) could start: most hints are lines of short words (prose, lowercase text), turned away
    by a character's test or one match instead of three parsers' line loops."""
    block = None
    if text[start : start + 1] in _DUMP_LEADS:
        end = _first_line_end(text, start)
        if end >= 0 and _HEX_LINE.fullmatch(text, start, end) is not None:
            block = _hex_block(text, start, limit)
        if block is None and text.startswith((" ", "\t"), start):
            block = _cell_block(text, start, limit)  # a cell is a blank or more, then its character
        if block is None and end >= 0 and text.find("\t", start, end) >= 0:
            block = _tab_cell_block(text, start, limit)
    if block is None:
        pair = _B64_PAIR.match(text, start)
        if pair is not None and len(pair.group(3)) <= len(pair.group(2)):
            block = _b64_block(text, start, limit)
    return block


def _first_line_end(text: str, start: int) -> int:
    """Where the first line ``_lines(text, start)`` gives ends, or -1 when it gives none."""
    if start >= len(text):
        return -1
    end = text.find("\n", start, start + _LINE_MAX)
    nul = text.find("\x00", start, start + _LINE_MAX if end < 0 else end)
    if nul >= 0:
        return nul
    return min(len(text), start + _LINE_MAX) if end < 0 else end


def _word_lines(text: str, start: int, end: int, data: bytes) -> bool:
    """Whether the narrow base64 block ``start:end`` (``data``, its bytes) is lines of lowercase
    words read as base64: a word list, a column of names, lowercase letters at random. Those hold
    nothing a detector looks for, and their layers (thousands in a large text of short lines) cost
    more than the rest of the decoding: only a block whose bytes are no text is passed over. The
    base64 of text (a run of ``MIN_BYTES`` printable characters, or UTF-8 throughout) is read
    even when it is all lowercase letters, and compressed data's is not (its magic numbers
    encode to capitals, digits or "+")."""
    return (_LOWERCASE_LINES.fullmatch(text, start, end) is not None and _PRINTABLE.search(data) is None
            and not _is_utf8(data))


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _line_start_before(text: str, at: int) -> int:
    """The start of the line that ends at ``at`` (a line break): the block may begin there. A
    NUL (between joined texts) starts a line too."""
    return max(text.rfind("\n", 0, at), text.rfind("\x00", max(0, at - _LINE_MAX), at)) + 1


def _lines(text: str, start: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each line from ``start`` on (without its line break), up to a NUL
    (between joined texts); taken one at a time, as a block ends at its first other line."""
    at = start
    size = len(text)
    while at < size:
        end = text.find("\n", at, at + _LINE_MAX)
        nul = text.find("\x00", at, at + _LINE_MAX if end < 0 else end)
        if nul >= 0:
            yield at, nul
            return
        if end < 0:
            yield at, min(size, at + _LINE_MAX)
            return
        yield at, end
        at = end + 1


def _hex_block(text: str, start: int, limit: int) -> tuple[int, str, list[bytes]] | None:
    """The end, encoding and readings (``_readings``) of the block of offset-less hex lines at
    ``start``: two or more, each group as wide as the first line's; read up to about ``limit``
    bytes (the rest is read as a block of its own, if the budget lasts)."""
    lines: list[str] = []
    end = start
    width = 0
    for line_start, line_end in _lines(text, start):
        if end - start > 3 * limit:
            break
        m = _HEX_LINE.fullmatch(text, line_start, line_end)
        if m is None:
            break
        line = m.group(1)
        sizes = {len(group) for group in line.split()}
        if len(sizes) != 1 or (width and sizes != {width}):
            break  # groups of another width: not this dump's line
        width = sizes.pop()
        lines.append(line)
        end = line_end
    if len(lines) < MIN_LINES:
        return None
    return end, "hexdump", _readings(lines)


def _cell_block(text: str, start: int, limit: int) -> tuple[int, str, list[bytes]] | None:
    """The end, encoding and bytes of the block of ``od -An -c`` (or ``-b``) lines at ``start``,
    indented alike (a Markdown code block, a YAML block scalar) or not: two lines or more; read
    up to about ``limit`` bytes."""
    found: list[tuple[int, int, int, str]] = []  # each line's start, end, greatest indentation, cells
    for line_start, line_end in _lines(text, start):
        if found and found[-1][1] - start > _CELL_WIDTH * limit:
            break
        # A line not indented (under four blanks first) is read at once, as ``od`` prints it.
        m = None if text.startswith(_INDENTED, line_start) else _CELLS_LINE.fullmatch(text, line_start, line_end)
        cells = (0, m.group(1)) if m is not None else _indented_cells(text, line_start, line_end)
        if cells is None:
            break
        found.append((line_start, line_end, *cells))
    if len(found) < MIN_LINES:
        return None
    # The block's indentation: the least a line leaves (a line whose first byte is a blank
    # leaves four more: read again with it).
    indent = min(width for _, _, width, _ in found)
    lines: list[str] = []
    end = start
    for line_start, line_end, width, line in found:
        if width != indent:
            m = _CELLS_LINE.fullmatch(text, line_start + indent, line_end)
            if m is None:
                break
            line = m.group(1)
        lines.append(line)
        end = line_end
    if len(lines) < MIN_LINES:
        return None
    return end, "hexdump", [b"".join(map(_cell_bytes, lines))]


def _tab_cell_block(text: str, start: int, limit: int) -> tuple[int, str, list[bytes]] | None:
    """The end, encoding and bytes of the block of ``od -An -c`` lines with tabs between their
    cells (``_TAB_CELLS_LINE``) at ``start``, each indented as the first: two lines or more;
    read up to about ``limit`` bytes."""
    lines: list[str] = []
    end = start
    indent = ""
    for line_start, line_end in _lines(text, start):
        if end - start > _CELL_WIDTH * limit:
            break
        m = _TAB_CELLS_LINE.fullmatch(text, line_start, line_end)
        if m is None or (lines and m.group(1) != indent):
            break
        indent = m.group(1)
        lines.append(_tabbed_cells(m))
        end = line_end
    if len(lines) < MIN_LINES:
        return None
    return end, "hexdump", [b"".join(map(_cell_bytes, lines))]


def _indented_cells(text: str, start: int, end: int) -> tuple[int, str] | None:
    """The greatest indentation that leaves the line ``start:end`` cells only (``_CELLS_LINE``)
    and those cells, or None. A cell is right-aligned, one to three blanks before its character,
    escape or octal digits: only three widths can be the line's indentation (less would read four
    of its blanks as a cell of a blank byte, the rest of the line the same)."""
    m = _BLANKS.match(text, start, end)
    blanks = 0 if m is None else m.end() - start
    for indent in (blanks - 3, blanks - 2, blanks - 1):
        m = _CELLS_LINE.fullmatch(text, start + indent, end) if indent >= 0 else None
        if m is not None:
            return indent, m.group(1)
    return None


def _b64_block(text: str, start: int, limit: int) -> tuple[int, str, list[bytes]] | None:
    """The end, encoding and bytes of the block of base64 lines of one width under ``NARROW``
    at ``start`` (the last may be shorter and padded), each indented as the first: two lines
    or more; read up to about ``limit`` bytes."""
    pieces: list[str] = []
    end = start
    width = 0
    indent = ""
    at = start
    # Line by line as ``_lines`` gives them (a line ends at a line break or a NUL, after which
    # nothing is read), each matched whole where it starts: no line is longer than ``_LINE_MAX``.
    while end - start <= 2 * limit:
        m = _B64_LINE_AT.match(text, at)
        if m is None or (pieces and m.group(1) != indent):
            break  # not base64, or indented otherwise than the block
        if width and (len(m.group(2)) > width or len(pieces[-1]) < width):
            break  # wider than the block, or after its short last line
        indent = m.group(1)
        width = width or len(m.group(2))
        pieces.append(m.group(2))
        end = m.end()
        if m.group(3) or not text.startswith("\n", end):
            break  # padding ends the value; a NUL or the text's end ends the block
        at = end + 1
    if len(pieces) < MIN_LINES or not 4 <= width < NARROW:
        return None
    encoded = "".join(pieces)
    if len(encoded) % 4 == 1:
        encoded = encoded[:-1]  # a cut-off last character encodes no whole byte
    try:
        return end, "base64", [binascii.a2b_base64(encoded + "=" * (-len(encoded) % 4))]
    except binascii.Error:
        return None


# -- one line of hex bytes with blanks between them ---------------------------------------------

# ``xxd -p -c1 | tr '\\n' ' '``, ``hexdump -e '"%02x "'`` of a short value, a value pasted as
# "67 68 70 5f ...": one line, one or two blanks between bytes (``hexdump -C``'s middle column), or
# blanks and tabs of any mix and width (a line aligned in columns).
# Read where ``_PLAIN_HINT`` finds a line starting so but no block of two lines, at the text's
# start and after a NUL (a value of its own): no search of its own.
_SPACED_LINE = re.compile(
    r"[ \t]*+([0-9a-fA-F]{2}(?:[ \t]++[0-9a-fA-F]{2}){%d,})(?![0-9A-Za-z])" % (MIN_BYTES - 1)
)
_PRINTABLE = re.compile(rb"[\t\n\r\x20-\x7e]{%d}" % MIN_BYTES)


def _value_starts(text: str) -> list[int]:
    """The text's start and each NUL's next character (joined texts: each a value of its own)."""
    starts = [0]
    at = text.find("\x00")
    while at >= 0:
        starts.append(at + 1)
        at = text.find("\x00", at + 1)
    return starts


def _spaced_line(text: str, at: int) -> Decoded | None:
    """The bytes of the line of hex bytes with blanks between them at ``at``, if it holds text."""
    m = _SPACED_LINE.match(text, at)
    return None if m is None else _line_layer(m)


def _line_layer(m: re.Match[str]) -> Decoded | None:
    """The bytes of a ``_SPACED_LINE`` match, if they hold text."""
    data = bytes.fromhex(m.group(1))  # blanks between bytes are skipped
    if _PRINTABLE.search(data) is None:
        return None  # measurements, pixel values, a table of small numbers: no text in them
    return Decoded("hex", m.start(1), m.end(1), data.decode("latin-1"), whole_span(m.start(1), m.end(1)))


# A line of hex bytes inside a line ("key: 67 68 70 5f ...", "token = ...", after a quote, two
# blanks or a tab, or tab-separated): in a byte view where a hex digit is "h" and a blank or tab
# " ", every such line of three bytes or more holds " hh" followed by two more bytes, a literal
# the regular expression engine skips ahead to (code and prose seldom have a two-character hex
# word after a blank, and fewer three in a row). Blanks of any width between them: a dump
# aligned in wide columns.
_SPACED_MAP = bytes(0x68 if chr(b) in "0123456789abcdefABCDEF" else (0x20 if b in (0x09, 0x20) else 0x2E)
                    for b in range(256))
# Groups of two or four bytes (``od -An -x``) too: only a block of lines of those is read.
_SPACED_SEED = re.compile(rb" hh(?:hh(?:hhhh)?)? ++hh(?:hh(?:hhhh)?)? ++hh")
# What may come before a seed on a block's line: indentation, then groups.
_BLOCK_LEAD = re.compile(r"[ \t]*+(?:[0-9a-fA-F]{2,8}[ \t]++)*")


def _spaced_lines_inside(text: str, read: list[Decoded], limit: int, latin: bytes | None = None) -> list[Decoded]:
    """Each line of hex bytes with blanks between them that starts inside a line of ``text`` and
    is in none of the layers ``read`` already (a value's start, a line's, a block), and each block
    of offset-less hex lines such a line starts (``_hex_block``). A line of a dump with offsets
    (``hex_dumps`` reads those) is passed over."""
    out: list[Decoded] = []
    if latin is None:
        latin = text.encode("latin-1", "replace")  # "?" for wider characters: same offsets
    view = latin.translate(_SPACED_MAP)
    spans = sorted((layer.start, layer.end) for layer in read)
    starts = [start for start, _ in spans]
    reach = list(itertools.accumulate((end for _, end in spans), max))  # the furthest end so far
    done = 0
    for m in _SPACED_SEED.finditer(view):
        at = m.start() + 1
        k = bisect.bisect_right(starts, at) - 1
        if at < done or (k >= 0 and reach[k] > at):
            continue  # read already
        start = _run_start(view, at)
        if start > 0 and text[start - 1].isalnum():
            start = at  # the first "byte" is the end of a word: the line starts after it
        line_start = _line_start_before(text, start)
        if _BLOCK_LEAD.fullmatch(text, line_start, at) is not None:
            # A line of its own, indented (``_PLAIN_HINT`` turns those away) or with blanks of
            # another width between its bytes: the first of a block, maybe, read across its lines.
            # Tried before the test for an offset: ``od -An -tx4``'s first group looks like one.
            block = _hex_block(text, line_start, limit)
            if block is not None:
                done = block[0]
                for layer in _block_layers(line_start, *block):
                    out.append(layer)
                    limit -= len(layer.text)
                if limit <= 0:
                    break
                continue
        if _LINE.match(text, line_start) is not None or _CHAR_LINE.match(text, line_start) is not None:
            done = _line_end(text, start)  # a dump line with an offset
            continue
        run = _SPACED_LINE.match(text, start)
        done = m.end() if run is None else run.end()  # a long run without text is tried once
        line = None if run is None else _line_layer(run)
        if line is None:
            continue
        out.append(line)
        limit -= len(line.text)
        if limit <= 0:
            break
    return out


def _block_layers(start: int, end: int, encoding: str, readings: list[bytes]) -> list[Decoded]:
    """The readings of the block ``start:end`` long enough to hold a secret, as layers on it."""
    return [Decoded(encoding, start, end, data.decode("latin-1"), whole_span(start, end))
            for data in readings if len(data) >= MIN_BYTES]


def _run_start(view: bytes, at: int) -> int:
    """The first byte of the run of bytes and blanks in ``view`` that has a byte at ``at``."""
    while True:
        blank = at
        while blank > 0 and view[blank - 1] == 0x20:
            blank -= 1
        if blank == at or blank < 2 or not view.startswith(b"hh", blank - 2):
            return at
        at = blank - 2


# -- tables of bytes, tab-separated ---------------------------------------------------------------

# A dump pasted into a spreadsheet or written as TSV: each row an offset or a row number (hex or
# decimal, maybe with xxd's colon), a tab, then the row's bytes in hex (one cell each, one run,
# or blanks between them), maybe a last cell of text. Rows are read in order across the table, so
# a value cut at a row's end is read whole. Found from a row's first byte cell: a literal tab the
# regular expression engine skips ahead to, and only texts holding a tab are searched.
_TAB_SEED = re.compile(r"\t[0-9a-fA-F]{2}(?:[ \t]?[0-9a-fA-F]{2}){3}")
# One row, matched where a line starts: the bytes are whole cells (a cell of text after them is
# not read, even when it starts with hex letters).
_TAB_ROW = re.compile(
    r"[ ]*+[0-9a-fA-F]{1,10}:?\t(?P<bytes>[0-9a-fA-F]{2}(?:(?:[ \t]?[0-9a-fA-F]{2})*+))"
    r"(?=[\t\r]|(?![^\n\x00]))[^\n\x00]*"
)
# A row's cells after its first, when they are bytes one a cell: a text column is a cell of
# another width (bytes shown as characters, "|...|").
_TAB_BYTE_CELL = re.compile(r"[0-9a-fA-F]{2}")


def _tab_tables(text: str, read: list[Decoded], limit: int) -> list[Decoded]:
    """Each table of two rows or more of bytes with a tab after their first cell (``_TAB_ROW``)
    that no layer of ``read`` holds already, its bytes read across its rows."""
    out: list[Decoded] = []
    spans = sorted((layer.start, layer.end) for layer in read)
    starts = [start for start, _ in spans]
    reach = list(itertools.accumulate((end for _, end in spans), max))
    done = 0
    for m in _TAB_SEED.finditer(text):
        if m.start() < done:
            continue
        start = _line_start_before(text, m.start())
        k = bisect.bisect_right(starts, start) - 1
        if k >= 0 and reach[k] > start:
            done = reach[k]
            continue  # read already (a dump with offsets, one without)
        table = _tab_table(text, start, limit)
        if table is None:
            done = _line_end(text, m.start())
            continue
        end, data = table
        done = end
        if len(data) >= MIN_BYTES:
            out.append(Decoded("hexdump", start, end, data.decode("latin-1"), whole_span(start, end)))
            limit -= len(data)
            if limit <= 0:
                break
    return out


def _tab_table(text: str, start: int, limit: int) -> tuple[int, bytes] | None:
    """The end and bytes of the table of rows (``_TAB_ROW``) at ``start``: two or more."""
    rows: list[str] = []
    end = start
    for line_start, line_end in _lines(text, start):
        if end - start > 3 * limit:
            break
        m = _TAB_ROW.fullmatch(text, line_start, line_end)
        if m is None:
            break
        rows.append(_row_bytes(m.group("bytes")))
        end = line_end
    if len(rows) < MIN_LINES:
        return None
    return end, bytes.fromhex("".join(rows))


def _row_bytes(cells: str) -> str:
    """A row's hex digits, blanks and tabs between them left out."""
    return cells.replace("\t", "").replace(" ", "")
