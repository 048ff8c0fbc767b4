"""Lists of byte values: a value written as its character codes, ``[103, 104, 112, 95, ...]``
(a JSON array, ``String.fromCharCode(...)``, Python's ``bytes([...])``, a C initializer) or
``0x67, 0x68, ...``, decoded back to the bytes they stand for.

Numbers are written in digits, separators and blanks: a byte view of the text maps those to one
symbol and everything else to a blank, and a list of ``MIN_CODES`` printable character codes
(two digits or three each, one separator between) is then a run of that symbol found by
substring search, without trying a pattern at every position of ordinary text. Hex lists are
looked for only in a text holding ``0x`` often enough.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable

from bot_bottle.sidecar.dlp.encodings import Decoded

# The shortest secret searched for: a list must hold at least this many codes.
MIN_CODES = 8
_SEPARATOR = r"(?:[ \t\r\n]*[,;][ \t\r\n]*|[ \t\r\n]+)"
_DECIMAL_LIST = re.compile(r"(?<![\w.])\d{1,3}(?:%s\d{1,3}){%d,}(?![\w.])" % (_SEPARATOR, MIN_CODES - 1))
_HEX_LIST = re.compile(r"(?<![\w.])0[xX][0-9a-fA-F]{1,2}(?:%s0[xX][0-9a-fA-F]{1,2}){%d,}(?![\w.])"
                       % (_SEPARATOR, MIN_CODES - 1))
_NUMBER = re.compile(r"(?:0[xX])?[0-9a-fA-F]+")
_LIST_MAP = bytes(0x41 if chr(b) in "0123456789,; \t\r\n" else 0x20 for b in range(256))
# A printable character code has two digits or three, and a separator follows all but the last.
_LIST_RUN = b"A" * (3 * MIN_CODES - 1)
# Decoded lists are kept when they hold this much text in a row (a secret is printable).
_PRINTABLE_RUN = re.compile("[\x20-\x7e\x80-\xff]{%d}" % MIN_CODES)


def decode_code_lists(text: str, *, limit: int) -> list[Decoded]:
    """The decimal and hex byte lists of ``text``, decoded (as latin-1 text: each byte one
    character; a number over 255 becomes a NUL, which no detector matches across), with an exact
    offset map from decoded characters to the numbers they were written as. ``limit`` bounds the
    decoded size."""
    out: list[Decoded] = []
    if len(text) < len(_LIST_RUN):
        return out
    spans = [m.span() for start, end in _decimal_regions(text) for m in _DECIMAL_LIST.finditer(text, start, end)]
    if text.count("0x") + text.count("0X") >= MIN_CODES:
        spans += [m.span() for m in _HEX_LIST.finditer(text)]
    for start, end in spans:
        if limit <= 0:
            break
        layer = _decoded(text, start, end)
        if layer is not None:
            out.append(layer)
            limit -= len(layer.text)
    return out


def has_code_list(text: str) -> bool:
    """Could ``text`` hold a list of character codes? (A cheap test before taking it apart.)"""
    return bool(_decimal_regions(text)) or text.count("0x") + text.count("0X") >= MIN_CODES


def _decimal_regions(text: str) -> list[tuple[int, int]]:
    shape = text.encode("latin-1", "replace").translate(_LIST_MAP)  # "?" for wider characters: same offsets
    regions = []
    at = shape.find(_LIST_RUN)
    while at >= 0:
        end = shape.find(b" ", at + len(_LIST_RUN))
        end = len(shape) if end < 0 else end
        regions.append((at, end))
        at = shape.find(_LIST_RUN, end)
    return regions


def _decoded(text: str, start: int, end: int) -> Decoded | None:
    chars: list[str] = []
    spans: list[tuple[int, int]] = []
    for m in _NUMBER.finditer(text, start, end):
        number = m.group()
        value = int(number, 16) if number[:2] in ("0x", "0X") else int(number)
        chars.append(chr(value) if value < 256 else "\x00")
        spans.append(m.span())
    decoded = "".join(chars)
    if not _PRINTABLE_RUN.search(decoded):
        return None  # measurements, coordinates, pixel values: no text in them
    return Decoded("charcodes", start, end, decoded, _number_map(spans))


def _number_map(spans: list[tuple[int, int]]) -> Callable[[int, int], tuple[int, int]]:
    def to_parent(start: int, end: int) -> tuple[int, int]:
        if end <= start:
            at = spans[min(start, len(spans) - 1)][0]
            return at, at
        return spans[start][0], spans[min(end, len(spans)) - 1][1]

    return to_parent
