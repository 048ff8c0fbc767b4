"""Lists of byte values: a value written as its character codes, ``[103, 104, 112, 95, ...]``
(a JSON array, ``String.fromCharCode(...)``, Python's ``bytes([...])``, a C initializer) or
``0x67, 0x68, ...``, decoded back to the bytes they stand for.

Numbers are written in digits, separators, blanks and quotes (``["103", "104"]``, a list of
strings): a byte view of the text maps those to one symbol and everything else to a blank, and a
list of ``MIN_CODES`` printable character codes (two digits or more each, one separator between)
is then a run of that symbol found by substring search, without trying a pattern at every
position of ordinary text. Hex lists are looked for only in a text holding ``0x`` often enough.

A value may be written as calls, one per character, joined: ``chr(75)+chr(113)`` (Python),
``CHAR(75)+CHAR(113)``, ``CHR(75)||CHR(113)`` or ``CONCAT(CHAR(75),CHAR(113))`` (SQL),
``Chr(75) & Chr(113)`` (Visual Basic), or as PowerShell casts and calls: ``[char]75+[char]113``,
``[string][char]0x4b + ...``, ``[char](75)``, ``[char][int]75``, ``(75 -as [char])`` (in
parentheses of its own too, ``((75 -as [char]))``), ``[convert]::ToChar(75)``,
``[System.Convert]::ToChar(75)``, ``[char]::ConvertFromUtf32(75)``. Its shape in the same byte
view (parentheses kept; a cast's "]" is an opening parenthesis there and a "+" a closing one) is
a short number in parentheses every few characters: ``MIN_CODES`` of those close together are
found with one search of that view, and only there are the calls read. PowerShell's calls in an
array (``-join ([char]75, [char]113)``, one a line inside ``@( )``, commas, semicolons and bare
line breaks mixed, comments between them) are read as if joined by "+" (``cast_arrays_joined``).

A code is a Unicode code point (up to U+10FFFF; a UTF-16 surrogate pair, as JavaScript's
``String.fromCharCode`` takes, is one character): a byte list is the same thing below 256.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable

from bot_bottle.sidecar.dlp.encodings import Decoded

# The shortest secret searched for: a list must hold at least this many codes.
MIN_CODES = 8
_SEPARATOR = r"(?:[ \t\r\n]*[,;][ \t\r\n]*|[ \t\r\n]+)"
# A code may be quoted (a list of strings); up to seven digits or six hex digits reach U+10FFFF,
# and leading zeros ("0x0067", "0103") are allowed.
_DECIMAL_CODE = r"[\"']?\d{1,7}[\"']?"
_HEX_CODE = r"[\"']?0[xX][0-9a-fA-F]{1,6}[\"']?"
_DECIMAL_LIST = re.compile(r"(?<![\w.])%s(?:%s%s){%d,}(?![\w.])"
                           % (_DECIMAL_CODE, _SEPARATOR, _DECIMAL_CODE, MIN_CODES - 1))
_HEX_LIST = re.compile(r"(?<![\w.])%s(?:%s%s){%d,}(?![\w.])" % (_HEX_CODE, _SEPARATOR, _HEX_CODE, MIN_CODES - 1))
_NUMBER = re.compile(r"(?:0[xX])?[0-9a-fA-F]+")
# A quoted code in a JSON string array or a list in a parsed document.
CODE_STRING = re.compile(r"[ \t]*(?:\d{1,7}|0[xX][0-9a-fA-F]{1,6})[ \t]*")
# Parentheses stay themselves: a code list is a run of "A", a call's argument "(A..)". A
# PowerShell cast's code sits between a "]" and the "+" joining it to the next: "(A..)" too.
_LIST_MAP = bytes(0x41 if chr(b) in "0123456789,; \t\r\n\"'"
                  else (b if chr(b) in "()" else {"]": 0x28, "+": 0x29}.get(chr(b), 0x20))
                  for b in range(256))
# A printable character code has two digits or more, and a separator follows all but the last.
_LIST_RUN = b"A" * (3 * MIN_CODES - 1)
# Decoded lists are kept when they hold this much text in a row (a secret is printable, in any
# script).
_PRINTABLE_RUN = re.compile("[^\x00-\x1f\x7f]{%d}" % MIN_CODES)
_MAX_CODE = 0x10FFFF


# A call's argument in the byte view: a decimal or ``0x`` code, blanks around it allowed; or
# PowerShell's ``(103 -as [char])``, "(AAAA   A     ()" there (the cast's "]" an opening
# parenthesis). The view's "(A" is a literal the regular expression engine skips ahead to. The
# blanks, separators and digits after it are taken in (``_CALL_GAP`` is counted from their end).
_CALL_SHAPE = re.compile(rb"\(A(?:[A ]{0,9}\)|[A ]{3,20}\(\))A*")
# Calls of one value lie this close: ")+chr(", "), CHAR(", ") || CHR(", ") & Chr(", and
# PowerShell's longest, ") + [System.Char]::ConvertFromUtf32(": counted from the end of the blanks
# after a call (``_CALL_SHAPE``), as a comment between two elements of an array, blanked by
# ``cast_arrays_joined``, may be long.
_CALL_GAP = 40
# The longest cast: ``[string] [char] ( 0x10FFFF )``, blanks aside.
_CAST_MAX = 40
_CODE = r"(?:0[xX][0-9a-fA-F]{1,6}|\d{1,7})"
_FUNCTION = rf"(?i:n?chr[wb]?|n?char)[ \t]*\([ \t]*{_CODE}[ \t]*\)"
# PowerShell: ``[char]103``, ``[char](103)``, ``[string][char]0x67``, ``[System.Char]103``; the
# code cast to a number type first, ``[char][int]103``, ``[char][byte]0x67``.
_CHAR_TYPE = r"(?i:\[(?:system\.)?char\])"
_NUMBER_TYPE = r"(?i:\[(?:system\.)?(?:u?int(?:16|32|64)?|s?byte|u?short|u?long)\][ \t]*)?"
_CAST = (rf"(?i:\[string\][ \t]*)?{_CHAR_TYPE}[ \t]*{_NUMBER_TYPE}"
         rf"(?:\([ \t]*{_CODE}[ \t]*\)|{_CODE}(?![\w.]))")
# ``(103 -as [char])``: the parentheses are needed ("-as" binds looser than "+" and ",").
_AS_CHAR = rf"\([ \t]*{_CODE}[ \t]+(?i:-as)[ \t]*{_CHAR_TYPE}[ \t]*\)"
# ``[convert]::ToChar(103)``, ``[System.Convert]::ToChar(103)``, ``[char]::ConvertFromUtf32(103)``.
_STATIC = (rf"(?i:\[(?:system\.)?(?:convert|char)\][ \t]*::[ \t]*(?:tochar|convertfromutf32))"
           rf"[ \t]*\([ \t]*{_CODE}[ \t]*\)")
_CALL = rf"(?:{_FUNCTION}|{_CAST}|{_AS_CHAR}|{_STATIC})"


def _grouped(call: str) -> str:
    """``call`` bare or in parentheses of its own, once or twice: ``([char]103)``,
    ``((103 -as [char]))``."""
    once = rf"(?:\([ \t]*{call}[ \t]*\)|{call})"
    return rf"(?:\([ \t]*{once}[ \t]*\)|{once})"


# A call may sit in parentheses of its own: ``([char]103)+([char]104)``.
_CALL_OR_GROUP = _grouped(_CALL)
# ")$(": PowerShell's subexpressions in a string, "$([char]103)$([char]104)".
_JOIN = r"[ \t\r\n]*(?:\+|\|\||,|\.|&|\)\$\()[ \t\r\n]*"
_CALLS = re.compile(rf"(?<![\w.]){_CALL_OR_GROUP}(?:{_JOIN}{_CALL_OR_GROUP}){{{MIN_CODES - 1},}}")
# A call's argument follows its "(", a cast's its "]" (and maybe a "(").
_CALL_ARGUMENT = re.compile(r"[(\]][ \t]*\(?[ \t]*((?:0[xX])?[0-9a-fA-F]+)")


def decode_code_lists(text: str, *, limit: int, latin: bytes | None = None) -> list[Decoded]:
    """The decimal and hex lists of character codes in ``text``, decoded (a byte list as latin-1
    text: each byte one character; a number past U+10FFFF becomes a NUL, which no detector
    matches across), with an exact offset map from decoded characters to the numbers they were
    written as. ``limit`` bounds the decoded size. ``latin``: the text's latin-1 bytes ("?" for
    wider characters), when the caller has them."""
    out: list[Decoded] = []
    if len(text) < len(_LIST_RUN):
        return out
    if latin is None:
        latin = _latin(text)
    shape = latin.translate(_LIST_MAP)
    spans = [m.span() for start, end in _decimal_regions(shape) for m in _DECIMAL_LIST.finditer(text, start, end)]
    if _enough_hex_prefixes(latin):
        spans += [m.span() for start, end in _hex_regions(text) for m in _HEX_LIST.finditer(text, start, end)]
    calls = [m.span() for start, end in _call_regions(shape) for m in _CALLS.finditer(text, start, end)]
    called = set(calls)  # a lookup per list, not a scan of every call's span
    for start, end in spans + calls:
        if limit <= 0:
            break
        layer = _decoded(text, start, end, _CALL_ARGUMENT if (start, end) in called else _NUMBER)
        if layer is not None:
            out.append(layer)
            limit -= len(layer.text)
    return out


def has_code_list(text: str) -> bool:
    """Could ``text`` hold a list of character codes? (A cheap test before taking it apart.)"""
    latin = _latin(text)
    if _enough_hex_prefixes(latin):
        return True
    return bool(_decimal_regions(latin.translate(_LIST_MAP)))


def _latin(text: str) -> bytes:
    return text.encode("latin-1", "replace")  # "?" for wider characters: same offsets


def _enough_hex_prefixes(latin: bytes) -> bool:
    """Whether the text of ``latin`` holds ``MIN_CODES`` "0x" or "0X" or more: one search of its
    bytes for both, which stops at the last one needed (two counts were two whole passes, and a
    digit "0" is in every line of code, too frequent for a substring search to skip past)."""
    return next(itertools.islice(_HEX_PREFIX_BYTES.finditer(latin), MIN_CODES - 1, None), None) is not None


_HEX_PREFIX_BYTES = re.compile(b"0[xX]")


def _call_regions(shape: bytes) -> list[tuple[int, int]]:
    """Where ``MIN_CODES`` or more call arguments (``_CALL_SHAPE``) follow each other closely:
    the calls' names before the first are taken in, and the last PowerShell cast after the last
    (no "+" follows it, so its shape is not "(A..)")."""
    # Lists made at C speed, not a Python step per argument: minified code holds thousands of
    # "(0)" and "(a,b)" a MiB, next to none of them in a group of ``MIN_CODES``.
    spans = [m.span() for m in _CALL_SHAPE.finditer(shape)]
    if len(spans) < MIN_CODES:
        return []
    # A group ends where the next argument starts more than ``_CALL_GAP`` after its last one's end.
    cuts = [i for i, ((start, _), (_, end)) in enumerate(zip(spans[1:], spans), 1) if start - end > _CALL_GAP]
    firsts = [0, *cuts]
    ends = [*cuts, len(spans)]
    return [(max(0, spans[a][0] - _CALL_GAP), spans[b - 1][1] + _CAST_MAX)
            for a, b in zip(firsts, ends) if b - a >= MIN_CODES]


def _decimal_regions(shape: bytes) -> list[tuple[int, int]]:
    regions = []
    at = shape.find(_LIST_RUN)
    while at >= 0:
        end = shape.find(b" ", at + len(_LIST_RUN))
        end = len(shape) if end < 0 else end
        regions.append((at, end))
        at = shape.find(_LIST_RUN, end)
    return regions


_HEX_PREFIX = re.compile(r"0[xX]")
# Codes of a list are at most this far apart ("0x0067",\n then an indentation): the list pattern
# runs only where ``MIN_CODES`` prefixes lie this close, not at every position of the text.
_HEX_GAP = 128


def _hex_regions(text: str) -> list[tuple[int, int]]:
    regions: list[tuple[int, int]] = []
    first = last = -1
    count = 0
    for m in _HEX_PREFIX.finditer(text):
        at = m.start()
        if count and at - last > _HEX_GAP:
            if count >= MIN_CODES:
                regions.append((max(0, first - 1), last + 16))
            count = 0
        if not count:
            first = at
        last = at
        count += 1
    if count >= MIN_CODES:
        regions.append((max(0, first - 1), last + 16))
    return regions


def _decoded(text: str, start: int, end: int, numbers: re.Pattern[str]) -> Decoded | None:
    """The codes ``numbers`` finds in ``text[start:end]`` (its group 1, or the whole match),
    decoded; None when they hold no text."""
    # Read at C speed first (the numbers as strings, no match objects): most lists of numbers
    # (measurements, pixels, ids) hold no text, and their spans are never needed. A UTF-16
    # surrogate pairs two numbers: such a list is read number by number below.
    found = numbers.findall(text, start, end)
    values = [int(number, 16) if number[:2] in ("0x", "0X") else int(number) for number in found]
    if not any(0xD800 <= value <= 0xDFFF for value in values):
        decoded = "".join([chr(value) if value <= _MAX_CODE else "\x00" for value in values])
        if not _PRINTABLE_RUN.search(decoded):
            return None  # measurements, coordinates, pixel values: no text in them
        places = [m.span() for m in numbers.finditer(text, start, end)]
        return Decoded("charcodes", start, end, decoded, _number_map(places))
    chars: list[str] = []
    spans: list[tuple[int, int]] = []
    for m in numbers.finditer(text, start, end):
        number = m.group(m.re.groups)
        value = int(number, 16) if number[:2] in ("0x", "0X") else int(number)
        if 0xDC00 <= value <= 0xDFFF and chars and "\ud800" <= chars[-1] <= "\udbff":
            # The second half of a UTF-16 pair: one character, written as both numbers.
            chars[-1] = chr(0x10000 + ((ord(chars[-1]) - 0xD800) << 10) + (value - 0xDC00))
            spans[-1] = (spans[-1][0], m.end())
            continue
        chars.append(chr(value) if value <= _MAX_CODE else "\x00")
        spans.append(m.span())
    # A lone surrogate cannot be encoded as UTF-8 further on; a NUL no detector matches across.
    decoded = "".join(c if not "\ud800" <= c <= "\udfff" else "\x00" for c in chars)
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


# PowerShell calls in an array, ``-join ([char]75, [char]113, ...)``, ``@([char]0x4b, ...)`` or
# one call a line inside ``@( )`` (commas, semicolons and bare line breaks mixed; a call in
# parentheses of its own or not; comments, ``<# .. #>`` and ``# ..`` to the line's end, between
# them): the separator between two calls is turned into "+" and the rest of what lies between
# them into blanks (one character for one: the offsets stay) before ``decode_code_lists`` reads
# the text, as it reads calls joined by "+". Each separator follows a call's end, which a hint
# finds: a cast's "]" then a code; ``-as [char]``'s "])" before the next "("; a static method's
# "::ToChar(" or "::ConvertFromUtf32(". Each starts with a literal the regular expression engine
# skips ahead to; in code a "]" is followed by a digit rarely. Only where ``MIN_CODES - 1`` hints
# lie close together are the calls taken apart.
_CAST_HINT = re.compile(
    r"\](?:[ \t]*\(?[ \t]*\d[0-9a-fA-FxX]{0,7}(?:[ \t]*\)){0,2}[ \t\r\n]*(?:[,;\n]|<?#)"
    r"|\)\)?[ \t\r]*(?:[,;\n][ \t\r\n]*\(|<?#))"
)
_STATIC_HINT = re.compile(r"::[ \t]*(?i:tochar|convertfromutf32)[ \t]*\(")
# A call, in parentheses of its own or not; what lies between it and the next call's start: a
# line break, or a comma or a semicolon (``@( )`` takes statements too), with blanks (and, once
# blanked, comments) around it.
_POWERSHELL_CALL = rf"(?:{_CAST}|{_AS_CHAR}|{_STATIC})"
_CAST_JOIN = re.compile(
    rf"{_grouped(_POWERSHELL_CALL)}((?:[ \t]*\r?\n|[ \t\r\n]*[,;])[ \t\r\n]*)"
    rf"(?=(?:\([ \t]*){{0,2}}(?:(?i:\[string\])[ \t]*)?"
    rf"(?:{_CHAR_TYPE}|{_CODE}[ \t]+(?i:-as)|(?i:\[(?:system\.)?convert\])))"
)
# PowerShell's comments: a block, or the rest of a line.
_COMMENT = re.compile(r"<#.*?#>|#[^\n]*", re.DOTALL)
# Hints of one array lie this close (the longest call, ``[System.Char]::ConvertFromUtf32(0x10FFFF)``
# with blanks and a separator, or a comment between two calls); its first call starts this far
# before the first hint at most.
_HINT_GAP = 160


def cast_arrays_joined(text: str) -> str | None:
    """``text`` with what lies between the PowerShell calls of an array of ``MIN_CODES`` or more
    (commas, semicolons or line breaks, blanks, comments) turned into a "+" and blanks, as
    ``decode_code_lists`` reads calls; None when it holds no such array."""
    hints = sorted(m.start() for rx in (_CAST_HINT, _STATIC_HINT) for m in rx.finditer(text))
    if len(hints) < MIN_CODES - 1:
        return None
    regions = _hint_regions(hints)
    if any("#" in text[start:end] for start, end in regions):
        text = _uncommented(text, regions)
    joins: list[tuple[int, int]] = []
    for start, end in regions:
        found = [m.span(1) for m in _CAST_JOIN.finditer(text, start, end)]
        if len(found) >= MIN_CODES - 1:
            joins += found
    if not joins:
        return None
    pieces: list[str] = []
    previous = 0
    for start, end in joins:
        pieces += (text[previous:start], "+", " " * (end - start - 1))
        previous = end
    pieces.append(text[previous:])
    return "".join(pieces)


def _uncommented(text: str, regions: list[tuple[int, int]]) -> str:
    """``text`` with the PowerShell comments inside ``regions`` blanked (the offsets stay)."""
    pieces: list[str] = []
    done = 0
    for start, end in regions:
        start = max(start, done)  # regions may overlap
        if start < end:
            region = _COMMENT.sub(lambda m: " " * len(m.group()), text[start:end])
            pieces += (text[done:start], region)
            done = end
    pieces.append(text[done:])
    return "".join(pieces)


def _hint_regions(hints: list[int]) -> list[tuple[int, int]]:
    """Where ``MIN_CODES - 1`` or more hints lie within ``_HINT_GAP`` of each other, widened by
    ``_HINT_GAP`` on both sides (the first call before its hint, the last after it). Regions may
    overlap so, yet no separator is in two: each lies between the hints of its two calls."""
    regions: list[tuple[int, int]] = []
    first = last = hints[0]
    count = 0
    for at in hints + [hints[-1] + 2 * _HINT_GAP + 1]:  # a last one far away closes the last group
        if at - last > _HINT_GAP:
            if count >= MIN_CODES - 1:
                regions.append((max(0, first - _HINT_GAP), last + _HINT_GAP))
            first, count = at, 0
        last = at
        count += 1
    return regions
