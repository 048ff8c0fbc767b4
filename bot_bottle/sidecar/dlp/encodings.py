"""The encoded forms of a value, and the decoders the deeper scanning layers use.

Two directions:
- *encode* a known secret into every form we search for (base64 at each of the three byte
  offsets, so the secret is found inside a larger base64 blob, base85 and ascii85 at each of the
  four; hex; percent-encoding; base32 for hostnames), computed once per scanner;
- *decode* suspicious runs found in a request (base64 and hex runs, percent-escapes, base64 of
  gzip) so token formats and secrets hidden under encoding layers are seen too.

Base64 "cores": when bytes sit at offset k of a longer input, the characters that encode only
those bytes do not depend on the neighbours. The first ceil(8k/6) characters mix in preceding
bytes and the last partial character mixes in following ones, so both are cut off; what is
left is present in every base64 text that contains the value at that alignment, with or without
padding.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import itertools
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

from bot_bottle.sidecar.dlp import archives

_URLSAFE = str.maketrans("+/", "-_")
_TO_STD = str.maketrans("-_", "+/")


def ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only, so offsets stay the same as in ``text``.

    ``str.lower`` is the fast path for ASCII text; for other text it can change the length
    (``"İ".lower()`` is two characters), which would break offsets.
    """
    if text.isascii():
        return text.lower()
    try:
        # bytes.lower() touches ASCII letters only, and latin-1 round-trips every character
        # below U+0100: the usual case for a byte-for-byte view of a body.
        return text.encode("latin-1").lower().decode("latin-1")
    except UnicodeEncodeError:
        pass
    # The same through UTF-8, which round-trips every character (lone surrogates too): ASCII
    # bytes never occur inside another character's encoding. (``str.lower`` folds other scripts
    # and changes the length of a few, and lowering run by run was ~170 ms per MiB of a binary
    # answer decoded as text.)
    return text.encode("utf-8", "surrogatepass").lower().decode("utf-8", "surrogatepass")


def b64_core(data: bytes, offset: int) -> str:
    """The base64 characters that encode ``data`` alone when it starts ``offset`` bytes into a
    3-byte group (see the module docstring)."""
    encoded = base64.b64encode(b"\0" * offset + data).decode("ascii")
    start = -(-offset * 8 // 6)
    end = (offset + len(data)) * 8 // 6
    return encoded[start:end]


def b64_cores(data: bytes) -> list[str]:
    return [b64_core(data, k) for k in range(3)]


def b32_cores(data: bytes) -> list[str]:
    """Base32 cores at each of the five byte offsets, lower-case (DNS labels ignore case)."""
    cores = []
    for k in range(5):
        encoded = base64.b32encode(b"\0" * k + data).decode("ascii").lower()
        start = -(-k * 8 // 5)
        end = (k + len(data)) * 8 // 5
        cores.append(encoded[start:end])
    return cores


def _base85_cores(data: bytes, encode: Callable[[bytes], bytes]) -> list[str]:
    """Cores of a base85 family encoding (5 characters per 4-byte group) at each of the four
    byte offsets: the groups made of ``data``'s bytes alone, without the partial groups at
    either end (they mix in the neighbours)."""
    cores = []
    for k in range(4):
        encoded = encode(b"\0" * k + data).decode("ascii")
        first = (4 - k) % 4  # bytes of ``data`` that share a group with the bytes before it
        groups = max(0, (len(data) - first) // 4)
        start = (k + first) // 4 * 5
        if len(encoded) < start + 5 * groups:
            cores.append("")  # a85's "z" (four NULs) shortened the text: no fixed core
            continue
        cores.append(encoded[start : start + 5 * groups])
    return cores


def b85_cores(data: bytes) -> list[str]:
    """Base85 (RFC 1924, git binary patches, ``base64.b85encode``) at each byte offset."""
    return _base85_cores(data, base64.b85encode)


def a85_cores(data: bytes) -> list[str]:
    """Ascii85 (Adobe, PostScript/PDF, ``base64.a85encode``; ``<~ ~>`` frames the whole text and
    does not move the groups) at each byte offset."""
    return _base85_cores(data, base64.a85encode)


def urlsafe(text: str) -> str:
    return text.translate(_URLSAFE)


def url_full(data: bytes) -> str:
    """Every byte as ``%xx`` (lower-case: matched against lower-cased text, so both cases hit)."""
    return "".join(f"%{byte:02x}" for byte in data)


def url_partial_forms(value: str) -> list[str]:
    """The usual percent-encodings of ``value`` (only reserved characters escaped)."""
    forms = {quote(value, safe=""), quote_plus(value, safe=""), quote(value, safe="/")}
    forms.discard(value)
    return sorted(forms)


# -- decoding ----------------------------------------------------------------------------------

_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_HEX_ONLY = re.compile(r"[0-9a-fA-F]+")
_NOT_PRINTABLE = bytes(b for b in range(256) if not (0x20 <= b < 0x7F or b in (0x09, 0x0A, 0x0D)))


@dataclass(frozen=True)
class Decoded:
    """A decoded layer of part of a text: ``text`` stands for ``text_of_parent[start:end]``.

    ``to_parent`` maps a span in ``text`` back to a span in the parent; for base64 and hex the
    whole run is the only honest answer, for percent-decoding it is exact.
    """

    encoding: str
    start: int
    end: int
    text: str
    to_parent: Callable[[int, int], tuple[int, int]]


def mostly_printable(data: bytes, ratio: float = 0.85) -> bool:
    """True for bytes that look like text: ASCII printables, or UTF-8 text."""
    if not data:
        return False
    printable = len(data.translate(None, _NOT_PRINTABLE))
    if printable >= ratio * len(data):
        return True
    if data.isascii():
        # ASCII decodes one character a byte, printable exactly when counted above: the same
        # answer without a Python pass over each character (binary base64 of zero-filled
        # sections is ASCII and decodes as UTF-8).
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    good = sum(1 for ch in text if ch.isprintable() or ch in "\t\r\n")
    return good >= ratio * len(text)


_TO_STD_BYTES = bytes.maketrans(b"-_", b"+/")


def _b64_decode(run: str) -> bytes | None:
    body = run.replace("\n", "").replace("\r", "") if "\n" in run else run
    body = body.rstrip("=")
    body = body[: len(body) - len(body) % 4] if len(body) % 4 == 1 else body
    try:
        # ``base64.b64decode(..., validate=True)`` is this strict call on the ASCII bytes (a
        # character beyond ASCII fails either way); a table of bytes instead of a ``str.translate``
        # of a dict: a tenth of the cost on the thousands of lines of a wrapped blob.
        raw = (body + "=" * (-len(body) % 4)).encode("ascii").translate(_TO_STD_BYTES)
        return binascii.a2b_base64(raw, strict_mode=True)
    except (binascii.Error, ValueError):
        return None


def _inflate_small(data: bytes, limit: int) -> bytes | None:
    """``data`` gunzipped or inflated (at most ``limit`` bytes) when it is gzip or zlib, else None."""
    if data[:2] == b"\x1f\x8b":
        wbits = 16 + zlib.MAX_WBITS
    elif len(data) > 2 and data[0] & 0x0F == 8 and (data[0] * 256 + data[1]) % 31 == 0:
        wbits = zlib.MAX_WBITS
    else:
        return None
    try:
        return zlib.decompressobj(wbits).decompress(data, max(0, limit))
    except zlib.error:
        return None


def whole_span(start: int, end: int) -> Callable[[int, int], tuple[int, int]]:
    """The offset map of a decoded run: anything inside it stands for the whole run."""
    return lambda _s, _e: (start, end)


_RUN_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-"
MIN_RUN = 24  # shorter runs decode to under 18 bytes: below any token format worth decoding for
_B64_RUN = re.compile(r"[A-Za-z0-9+/_\-]{%d,}" % MIN_RUN)  # the slow way, for text beyond latin-1
# Every base64/hex character becomes "A", everything else a space: a run is then a literal
# "AAAA..." that the regex engine finds by skipping ahead, instead of trying every position.
# "=" stays itself: up to two of them after a run are its padding, matched with it.
_RUN_MAP = bytes(0x41 if byte in _RUN_CHARS else 0x20 for byte in range(256))
_PADDED_RUN_MAP = bytes(0x3D if byte == 0x3D else code for byte, code in enumerate(_RUN_MAP))
_PADDED_RUN_RX = re.compile(b"A" * MIN_RUN + b"A*={0,2}")
_RUN_RX = re.compile(b"A" * MIN_RUN + b"A*+")
# Base64 of text: the first character of every 4-character group encodes the top six bits of a
# byte below 0x80, so it is one of "CDI..Za..f" (tab/newline and 0x20-0x7F). Hex of text: every
# high nibble is 0-7. Marked "T"; other run characters "o".
_B64_TEXT_LEADS = b"CDIJKLMNOPQRSTUVWXYZabcdef"
_TEXTISH_MAP = bytes(0x54 if byte in _B64_TEXT_LEADS else (0x6F if byte in _RUN_CHARS else 0x20) for byte in range(256))
_HEX_LEADS = b"01234567"
_HEXTEXT_MAP = bytes(0x54 if byte in _HEX_LEADS else 0x6F for byte in range(256))
# Hex digits as "h", anything else as a blank: a run without ``MIN_RUN`` digits in a row has no
# hex part (``_hex_part``), which one search of this view tells (most runs of code are names).
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_HEX_SHAPE_MAP = bytes(0x68 if byte in _HEX_DIGITS else 0x20 for byte in range(256))
_HEX_STRETCH = b"h" * MIN_RUN  # found with ``bytes.find``: per run, cheaper than a regex search
_PROBE_GROUPS = 8


@dataclass(frozen=True)
class LatinView:
    """A text's latin-1 bytes, a character beyond latin-1 as "?" (one byte each: the offsets
    stay), and whether there was none: made once for the runs and for the shapes of the text
    ``decode_runs`` reads (a pass over megabytes each time it is made)."""

    data: bytes
    narrow: bool  # every character below U+0100: ``data`` is the text's exact latin-1


def latin_view(text: str) -> LatinView:
    try:
        return LatinView(text.encode("latin-1"), True)
    except UnicodeEncodeError:
        return LatinView(text.encode("latin-1", "replace"), False)


def _run_spans(text: str, view: LatinView | None = None) -> list[tuple[int, int]]:
    if view is None:
        view = latin_view(text)
    if not view.narrow:
        # A character beyond latin-1 is no run character: as "?" it ends a run as it does in the
        # text, and the runs are ``_B64_RUN``'s (an unescaped layer holding one emoji took that
        # pattern, a tenth of the speed, over all of it).
        return [m.span() for m in _RUN_RX.finditer(view.data.translate(_RUN_MAP))]
    return [m.span() for m in _PADDED_RUN_RX.finditer(view.data.translate(_PADDED_RUN_MAP))]


def decode_runs(text: str, *, limit: int) -> list[Decoded]:
    """Base64 and hex runs of ``text`` that decode to mostly printable bytes (or to gzip/zlib
    data that inflates to them).

    Bytes are returned as latin-1 text so every byte stays one character. ``limit`` bounds the
    total decoded size (the caller's budget against inputs made of nothing but runs). Code and
    traffic are full of runs that decode to noise (hashes, random ids, images), so each run is
    first checked for the shape of encoded text (see ``_TEXTISH_MAP``) and decoded only if it
    has it.
    """
    out: list[Decoded] = []
    if len(text) < MIN_RUN:
        return out
    view = latin_view(text)
    spans = _run_spans(text, view)
    if not spans:
        return out
    budget = limit
    latin = view.data
    shape = latin.translate(_TEXTISH_MAP)
    hex_shape = latin.translate(_HEX_SHAPE_MAP)
    if "\n" in text:
        spans = spans + _wrapped_blocks(text, spans)
    # Every run is part of ``text``: a header mark absent from the text is absent from each run,
    # told by a few substring searches of the whole instead of a search per run. Worth it where
    # runs are dense (a wrapped blob, a run a line); the searches cost more than the runs of code.
    marks = _marks_in(text) if len(spans) * _DENSE_RUNS >= len(text) else _ALL_MARKS
    for start, end in spans:
        if budget <= 0:
            break
        run = text[start:end]
        if "\n" in run:
            # A wrapped block of hex (``xxd -p`` wraps at 60 columns) is one run once unwrapped.
            hex_part = _hex_part(_unwrapped(run))
        else:
            hex_part = _hex_part(run) if hex_shape.find(_HEX_STRETCH, start, end) >= 0 else None
        if hex_part is not None:
            if not (_hex_may_be_text(hex_part) or _PACKED_HEX.search(hex_part)):
                continue  # not text at either alignment, nor compressed: nothing to decode
            decoded = _decode_hex_run(hex_part, budget)
            encoding = "hex"
        else:
            if run.islower() or run.isupper():
                if _B32_RUN.search(run) is None:
                    continue  # one letter case, and no stretch base32 could be: nothing to decode
            elif not (_b64_may_be_text(run, shape, start)
                      or (marks is not _NO_MARKS and _PACKED_B64_START.search(run))):
                continue  # no candidate ``_decode_b64_run`` would decode
            decoded, encoding = _decode_b64_run(run, shape, start, budget, marks)
        if decoded is not None:
            out.append(Decoded(encoding, start, end, decoded, whole_span(start, end)))
            budget -= len(decoded)
    return out


_LEADS_OF_TEXT = b"TTTT"
# Junk bytes in front of hex of text (``ab`` + hex + ``cd``) hid it: its bytes are read from the
# first ``_TEXT_LEADS`` bytes in a row below 0x80 that start within ``_TEXT_REACH`` bytes of the
# run's start, at either alignment. Bounded so a long blob of hex costs no more than a hash.
_TEXT_LEADS = 16
_TEXT_REACH = 48
_REACH_DIGITS = 2 * (_TEXT_REACH + _TEXT_LEADS) + 1
_TEXT_STRETCH = re.compile(b"T{%d,}" % _TEXT_LEADS)
_TEXT_RUN = b"T" * _TEXT_LEADS
_PRINTABLE_START = re.compile(b"[\t\n\r\x20-\x7e]{%d,}" % _TEXT_LEADS)
_ZLIB_FIRST = ("eJ", "eN", "eF", "eA")
# One of ``_ZLIB_FIRST`` at one of the first four characters, in one call.
_ZLIB_NEAR_START = re.compile(r"(?s).{0,3}e[JNFA]")


def _hex_may_be_text(hex_part: str) -> bool:
    """False only when ``_decode_hex_run`` finds nothing in ``hex_part`` (one without
    ``_PACKED_HEX``, the caller's test): at either alignment it decodes from the run's start
    only when every probed high nibble is 0-7 (``_HEXTEXT_MAP``), and a hex part of ``MIN_RUN``
    characters or more has at least twelve probed, so the first four must be; or from a later
    byte, within ``_TEXT_REACH``, that starts ``_TEXT_LEADS`` such bytes in a row."""
    leads = hex_part[:_REACH_DIGITS].encode("ascii").translate(_HEXTEXT_MAP)
    even, odd = leads[0::2], leads[1::2]
    # A substring search per alignment: a regular expression over both at once cost four times
    # the rest of this test on a hash.
    return (even.startswith(_LEADS_OF_TEXT) or odd.startswith(_LEADS_OF_TEXT)
            or even.find(_TEXT_RUN) >= 0 or odd.find(_TEXT_RUN) >= 0)


def _b64_may_be_text(run: str, shape: bytes, start: int) -> bool:
    """False only when ``_decode_b64_run`` would find no candidate to decode in ``run``, a run of
    both letter cases at ``start`` holding none of ``PACKED_B64_MARKS`` (the caller's test): a
    few C-speed tests instead of its several searches and slices (a MiB of source code holds
    thousands of runs: hashes, ids, images). Its candidates are base64 of UTF-16 (a fifth of the
    run "A"), a tar (352 characters or more), zlib (a header at one of the first four), and
    text: at one of four alignments, every probed group lead (``_TEXTISH_MAP``) "T". A run is
    at least ``MIN_RUN`` characters, so at least four groups are probed from
    ``start + skip + 8``, and the first four must be "T"."""
    if run.count("A") * 5 >= len(run) or len(run) >= 352:
        return True
    if "e" in run[:4] and _ZLIB_NEAR_START.match(run):  # the header's "e" first: a regex call per run cost more
        return True
    probes = shape[start + 8 : start + 24]
    if b"T" not in probes[:4]:
        return False
    return _LEADS_OF_TEXT in (probes[0::4], probes[1::4], probes[2::4], probes[3::4])


def _unwrapped(run: str) -> str:
    """``run`` without its line breaks (``\\n`` or ``\\r\\n``; a lone ``\\r`` stays). Two ``replace``
    calls: a regular expression substitution cost 12 ms per MiB of wrapped base64 (7% of its scan)."""
    return run.replace("\r\n", "").replace("\n", "")


_WRAP_TAIL = re.compile(r"\r?\n([A-Za-z0-9+/_\-]{1,%d}=*)(?=\r?\n|$)" % (MIN_RUN - 1))


def _wrapped_blocks(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Base64 wrapped into lines (``base64`` and MIME at 76 columns, PEM at 64): consecutive
    runs separated by one line break, as one more span (each line stays a span of its own, as
    it may be a value by itself). The last line may be shorter than a run, and a block may be a
    run and such a line only (a token wrapped at 40 columns: 40 characters, then 16)."""
    blocks: list[tuple[int, int]] = []
    block_start = -1
    previous_end = -1
    lines = 0
    for start, end in spans + [(-1, -1)]:
        gap = text[previous_end:start] if start >= 0 else ""
        if block_start >= 0 and gap in ("\n", "\r\n") and start >= 0:
            previous_end = end
            lines += 1
            continue
        if block_start >= 0:
            tail = _WRAP_TAIL.match(text, previous_end)
            if tail is not None and text[previous_end - 1] == "=":
                tail = None  # padding ends the value: the next line is something else
            # The block is read without its short last line as well: that line may be a word
            # after a value that fills its last line ("done", a prompt), not the value's end.
            if lines >= 2:
                blocks.append((block_start, previous_end))
            if tail is not None:
                blocks.append((block_start, tail.end(1)))
        block_start, previous_end, lines = start, end, 1
    return blocks


# The base64 of a gzip's, a zip's, a bzip2's (block sizes 1-9) or an xz's magic number, either
# alphabet: fixed letters at a group's start. Only a run holding one is decoded and opened.
PACKED_B64_MARKS = ("H4sI", "UEsDB", "QlpoM", "QlpoN", "QlpoO", "/Td6WFoA", "_Td6WFoA")
_PACKED_B64_START = re.compile("|".join(map(re.escape, PACKED_B64_MARKS)))
# Gzip (the first) is inflated by ``_decode_b64_run``'s own path; the others are opened whole: a
# file attached to a JSON call or a data: URL.
_PACKED_B64 = re.compile("|".join(map(re.escape, PACKED_B64_MARKS[1:])))


@dataclass(frozen=True)
class _Marks:
    """Which base64 header marks a text holds: the gzip's ("H4sI"), the others
    (``_PACKED_B64``)."""

    gzip: bool
    packed: bool


_NO_MARKS = _Marks(False, False)
_DENSE_RUNS = 100  # a run every this many characters or closer: the text is searched for marks
_ALL_MARKS = _Marks(True, True)


def _marks_in(text: str) -> _Marks:
    gzip = "H4sI" in text
    packed = any(mark in text for mark in PACKED_B64_MARKS[1:])
    return _NO_MARKS if not (gzip or packed) else _Marks(gzip, packed)


_B32_RUN = re.compile(r"[A-Z2-7]{24,}|[a-z2-7]{24,}")
_B32_DIGIT = re.compile(r"[2-7]")


def _decode_b64_run(run: str, shape: bytes, start: int, budget: int,
                    marks: _Marks = _ALL_MARKS) -> tuple[str | None, str]:
    """``marks``: the header marks the text around ``run`` holds (``_marks_in``); a mark it
    lacks is not looked for."""
    if run.islower() or run.isupper():
        # Base64 of 18+ bytes mixes upper and lower case; base32 (``base32``, DNS tunnels, TOTP
        # seeds) is one case: decoded from the start of its letters, where its groups begin.
        if _B32_DIGIT.search(run) is None or sum(map(run.count, "234567")) * 24 < len(run):
            return None, ""  # base32 of text has its digits (6 of 32 symbols); words and names have none
        for b32 in itertools.islice(_B32_RUN.finditer(run), _PACKED_TRIES):
            letters = b32.group().upper()
            if sum(map(letters.count, "234567")) * 24 < len(letters):
                continue  # base32 of text has its digits (6 of 32 symbols); words and names have none
            for skip in range(8):  # a stray letter before it shifts the groups
                # Its start tells (base32 decodes slowly, in Python): then all of it, up to the budget.
                if _b32_text(letters[skip:skip + _B32_PROBE]) is not None:
                    text = _b32_text(letters[skip:skip + max(_B32_PROBE, budget * 8 // 5)])
                    if text is not None:
                        return text, "base32"
        return None, ""
    if marks.packed:
        for packed in itertools.islice(_PACKED_B64.finditer(run), _PACKED_TRIES):
            opened = _opened(_b64_decode(run[packed.start():]), budget)
            if opened is not None:
                return opened[0], f"base64+{opened[1]}"
    tried: set[int] = set()
    for skip in _b64_candidates(run, shape, start, marks.gzip):
        if skip in tried:
            continue  # decoded there already, to no text (zero-filled binary is a UTF-16 and a text candidate)
        tried.add(skip)
        data = _b64_decode(run[skip:])
        if data is None or len(data) < 8:
            continue
        encoding = "base64"
        inflated = _inflate_small(data, budget)
        for _ in range(2):  # compressed again (a .tar.gz inside a gzip stream): a layer or two more
            deeper = _inflate_small(inflated, budget) if inflated else None
            if deeper is None:
                break
            inflated = deeper
        if inflated is not None:
            # Compressed, then encoded: a common pair (a package tarball in a JSON publish
            # request). Kept even when binary: a tar holds its files verbatim between NUL-padded
            # headers, and NUL is the separator no detector matches across.
            return inflated.decode("latin-1"), "base64+gzip"
        if mostly_printable(data) or data[257:262] == b"ustar":
            # A tar (mostly NUL padding) holds its files verbatim: scanned as well.
            return data.decode("latin-1"), encoding
        wide = utf16_text(data)
        if wide is not None:
            return wide, "utf-16+base64"
    return None, ""


def _b64_candidates(run: str, shape: bytes, start: int, gzip: bool = True) -> Iterator[int]:
    """Where in ``run`` ``_decode_b64_run`` tries decoding, in order: a gzip header, the start
    (UTF-16 text, a tar), then each alignment whose group leads have the shape of text or that
    starts with a zlib header. Made as they are tried: a line of a wrapped blob of text decodes
    at the first, and its other alignments are never probed."""
    gzip_at = run.find("H4sI") if gzip else -1  # base64 of the gzip magic number
    if gzip_at >= 0:
        yield gzip_at
    if run.count("A") * 5 >= len(run):
        yield 0  # base64 of UTF-16 text (PowerShell's -EncodedCommand): every other byte 0
    if _b64_tar_at_start(run):
        yield 0
    # A wrapped block's line break shifts the groups after it by one: its leads are probed on its
    # first line only (``base64 -w 24`` to ``-w 36`` lines are shorter than the eight probes).
    probed = run.find("\n")
    probed = len(run) if probed < 0 else probed
    for skip in range(4):
        # A prefix glued to the run ("token-", "key_") shifts the groups: probe past the first two
        # groups at each alignment.
        leads = shape[start + skip + 8 : start + probed : 4][:_PROBE_GROUPS]
        if len(leads) >= 2 and leads.count(b"T") == len(leads):
            yield skip
        elif run.startswith(("eJ", "eN", "eF", "eA"), skip):
            yield skip  # zlib header


_B32_PROBE = 256


def _b32_text(body: str) -> str | None:
    body = body[: len(body) // 8 * 8 + (0, 0, 2, 2, 4, 5, 5, 7)[len(body) % 8]]
    if len(body) < 16:
        return None
    try:
        return _as_text(base64.b32decode(body + "=" * (-len(body) % 8)))
    except (binascii.Error, ValueError):
        return None


def utf16_text(data: bytes) -> str | None:
    """``data`` as text when it is UTF-16 (either byte order) of mostly ASCII text, else None."""
    if len(data) < 16:
        return None
    for codec, high in (("utf-16-le", data[1::2]), ("utf-16-be", data[0::2])):
        if high.count(0) >= 0.9 * len(high):
            text = data[: len(data) // 2 * 2].decode(codec, "replace")
            return text if mostly_printable(text.encode("utf-8")) else None
    return None


def _as_text(data: bytes) -> str | None:
    if len(data) >= 8 and mostly_printable(data):
        return data.decode("latin-1")
    return utf16_text(data)


def _opened(data: bytes | None, budget: int, kinds: tuple[str, ...] = ("bzip2", "xz")) -> tuple[str, str] | None:
    """The files of a zip, or a stream of one of ``kinds`` inflated (and a tar in it opened), as
    one text joined by NUL (no detector matches across it), within ``budget`` bytes; None when
    ``data`` is none of these."""
    if not data or not (data[:4] == archives.ZIP_MAGIC or archives.compression_of(data) in kinds):
        return None
    found = archives.expand(data, max(0, budget))
    parts = ([found.data] if found.layers else []) + found.contents
    if not parts:
        return None
    kind = found.layers[0] if found.layers else "zip"
    return b"\0".join(parts).decode("latin-1"), kind


# Where compressed or archived bytes begin inside a decoded layer (percent-encoding, escapes,
# character codes, hex), as latin-1 characters: gzip (with deflate), zip, bzip2, xz.
_PACKED_TRIES = 4  # places tried per text or run: a decoy header in front does not hide the real one
_PACKED_START = re.compile("\x1f\x8b\x08|PK\x03\x04|BZh[1-9]1AY&SY|\xfd7zXZ\x00")
_ALL_PACKED = ("gzip", "zlib", "bzip2", "xz")
_PACKED_MARKS = tuple(re.compile(re.escape(mark)) for mark in (b"\x1f\x8b", b"PK\x03", b"BZh", b"7zXZ"))


def packed_text(text: str, budget: int) -> tuple[str, str] | None:
    """What compressed or archived bytes inside a decoded layer hold (``_opened``): a gzip sent
    percent-encoded in a form, as ``\\u00XX`` escapes, or as a list of byte values. A zlib
    stream is taken only at the very start (its two-byte header is too common elsewhere)."""
    if text.isascii():
        return None  # compressed data of any size has bytes past 0x7f (and the test costs nothing)
    starts = [0] if archives.compression_of(text[:2].encode("latin-1", "replace")) == "zlib" else []
    # Four literal searches (fast) before the pattern, which would try every position. In the
    # latin-1 bytes ("?" for wider characters, which no mark holds): a substring search in a
    # text of four-byte characters (one emoji makes a whole layer so) is many times slower.
    data = text.encode("latin-1", "replace")
    if any(mark.search(data) for mark in _PACKED_MARKS):
        starts += [found.start() for found in itertools.islice(_PACKED_START.finditer(text), _PACKED_TRIES)]
    for at in starts:  # a few, so a decoy header before the real one does not hide it
        opened = _opened(text[at:].encode("latin-1", "ignore"), budget, _ALL_PACKED)
        if opened is not None:
            return opened
    return None


# A base64 run, wrapped into lines or not (``tar czf - . | base64`` wraps at 76 columns).
_WRAPPED_RUN = re.compile(r"[A-Za-z0-9+/_\-]+(?:=*\r?\n[A-Za-z0-9+/_\-]+)*=*")


def long_packed_runs(text: str, longer_than: int, budget: int) -> list[tuple[int, int, str, str]]:
    """``(start, end, content, kind)`` of each base64 run in ``text`` longer than
    ``longer_than`` that holds compressed or archived bytes: decoded whole and opened, within
    ``budget`` bytes of content in all. Windows of a long text each see only part of such a run,
    and only the first of them its header."""
    out: list[tuple[int, int, str, str]] = []
    if not any(mark in text for mark in PACKED_B64_MARKS):
        return out  # substring searches are far cheaper than the pattern's pass
    examined = 0  # every run is matched once: the marks inside one already examined are skipped
    tries = 0
    for found in _PACKED_B64_START.finditer(text):
        if budget <= 0:
            break
        if found.start() < examined:
            continue
        run = _WRAPPED_RUN.match(text, found.start())
        examined = run.end() if run is not None else found.end()
        if run is None or run.end() - run.start() <= longer_than:
            continue
        tries += 1
        if tries > _PACKED_TRIES:
            break
        opened = _opened(_b64_decode(run.group().replace("\r", "").replace("\n", "")), budget, _ALL_PACKED)
        if opened is not None:
            out.append((run.start(), run.end(), opened[0], opened[1]))
            budget -= len(opened[0])
    return out


def _b64_tar_at_start(run: str) -> bool:
    """Does ``run`` start with the base64 of a tar header? Its first bytes (a file name, then
    NUL padding) do not have the shape of text, but ``ustar`` sits at byte 257 (characters
    340-352 encode bytes 255-263)."""
    if len(run) < 352:
        return False
    try:
        return base64.b64decode(run[340:352].translate(_TO_STD))[2:7] == b"ustar"
    except (binascii.Error, ValueError):
        return False


def _hex_part(run: str) -> str | None:
    """The hex in a run: all of it, or the part after a path slash or a ``key_``/``x-`` prefix."""
    if _HEX_ONLY.fullmatch(run):
        return run
    core = run.strip("+/_-=")
    for separator in "/_-":
        core = core.rsplit(separator, 1)[-1]
    if len(core) >= MIN_RUN and _HEX_ONLY.fullmatch(core):
        return core
    return None


_PACKED_HEX = re.compile(r"1f8b08|504b0304|425a68[3][1-9]314159265359|fd377a585a00", re.I)


def _decode_hex_run(run: str, budget: int) -> str | None:
    for packed in itertools.islice(_PACKED_HEX.finditer(run), _PACKED_TRIES):
        if packed.start() % 2:
            continue
        # ``xxd -p`` of a .gz or a zip: opened within the caller's budget
        body = run[packed.start():]
        opened = _opened(bytes.fromhex(body[: len(body) // 2 * 2]), budget, _ALL_PACKED)
        if opened is not None:
            return opened[0]
    for skip in (0, 1):
        body = run[skip:]
        body = body[: len(body) - len(body) % 2]
        leads = body[::2][:16].encode("ascii").translate(_HEXTEXT_MAP)
        if leads.count(b"T") != len(leads):
            continue
        text = _as_text(bytes.fromhex(body))
        if text is not None:
            return text
    for skip in (0, 1):
        text = _text_after_junk(run[skip:])
        if text is not None:
            return text
    return None


def _text_after_junk(body: str) -> str | None:
    """Hex of text after a few junk bytes: read from the first stretch of ``_TEXT_LEADS`` bytes
    below 0x80 within ``_TEXT_REACH`` bytes; if the rest is not text (junk after it too), the
    stretch alone."""
    leads = body[::2][: _TEXT_REACH + _TEXT_LEADS].encode("ascii").translate(_HEXTEXT_MAP)
    stretch = _TEXT_STRETCH.search(leads)
    if stretch is None:
        return None
    start = 2 * stretch.start()
    rest = body[start : len(body) - (len(body) - start) % 2]
    if start:  # from the run's start it was read whole already
        text = _as_text(bytes.fromhex(rest))
        if text is not None:
            return text
    whole = _TEXT_STRETCH.match(rest[::2].encode("ascii").translate(_HEXTEXT_MAP))
    if whole is None:
        return None
    # Random bytes below 0x80 are mostly printable too: the stretch is read only as far as it is
    # printable throughout, and only when that is ``_TEXT_LEADS`` bytes or more.
    printable = _PRINTABLE_START.match(bytes.fromhex(rest[: 2 * whole.end()]))
    return printable.group().decode("ascii") if printable is not None else None


def percent_decode(text: str) -> Decoded | None:
    """``text`` with every ``%xx`` replaced by that byte (as a latin-1 character), with an exact
    offset map back; None when there is no escape."""
    escapes = [m.start() for m in _PERCENT.finditer(text)]
    if not escapes:
        return None
    pieces: list[str] = []
    decoded_at: list[int] = []  # decoded offset of each escape
    previous = 0
    length = 0
    for position in escapes:
        if position < previous:
            continue  # "%%41": the second escape overlaps the first
        chunk = text[previous:position]
        pieces.append(chunk)
        length += len(chunk)
        decoded_at.append(length)
        pieces.append(chr(int(text[position + 1 : position + 3], 16)))
        length += 1
        previous = position + 3
    pieces.append(text[previous:])
    decoded = "".join(pieces)

    def to_parent(start: int, end: int) -> tuple[int, int]:
        # Each escape before a decoded offset stretched the original by two characters.
        before_start = bisect.bisect_left(decoded_at, start)
        before_end = bisect.bisect_left(decoded_at, end)
        return start + 2 * before_start, end + 2 * before_end

    return Decoded("url", 0, len(text), decoded, to_parent)


# Escapes of other languages a value may be written in: JSON/JS ``\uXXXX`` (a surrogate pair as
# one character) and ``\u{X..}``, ``\xNN`` (Python, C, JS), JSON's one-character escapes
# (``\"`` and ``\\``, which ascii85 text is full of, ``\/``, ``\n`` of a wrapped value...), and
# HTML numeric character references (``&#103;``, ``&#x67;``, the ``;`` optional as browsers
# allow), and octal escapes of a space or above: ``\NNN`` of two or three digits (C, Python,
# ``printf``; ``\57`` as well as ``\057``) and ``echo -e``'s ``\0NNN`` (a zero and three digits,
# read that way first). C and Python read ``\0123`` as ``\012`` and a "3": a line break or a tab
# before a digit, as a multi-line value written in a C string has it; a text holding such an
# escape is read that way too (``unescape_readings``). Control characters (``\0`` in C strings)
# stay as written: a NUL in the layer would send it through the UTF-16 search for nothing. A
# JSON body the engine parsed has its escapes undone by the parser; anything else (NDJSON, a
# JSON string inside a JSON value, a body with an XSSI prefix, HTML, a script) needs this. Two
# patterns, each starting with a literal the regex engine can skip ahead to (one alternation of
# both is tried at every position: five times slower on binary data).
_BACKSLASH_ESCAPE = re.compile(
    r"\\(?:u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"
    r"|u([0-9a-fA-F]{4})|u\{([0-9a-fA-F]{1,6})\}|x([0-9a-fA-F]{2})|([\"\\/bfnrt])|U([0-9a-fA-F]{8})"
    r"|0(0[4-7][0-7]|[1-3][0-7]{2})|(0[4-7][0-7]|[1-3][0-7]{2}|[4-7][0-7]))"
)
# JavaScript's escape() and IIS: ``%u`` and four hex digits.
_PERCENT_U = re.compile(r"%u([0-9a-fA-F]{4})")
_SINGLE_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HTML_REFERENCE = re.compile(r"&#(?:[xX]([0-9a-fA-F]{1,6})|([0-9]{1,7}));?")


# A two-character ``in`` is a full substring search (about 1 ms per MiB, with no skipping); a
# one-character one is a ``memchr`` (a hundredth of that), and a compiled literal pattern skips to
# its first character the same way: the marks are looked for in that order.
_MARKS = {"&#": re.compile("&#"), "%u": re.compile("%u")}


def _holds_mark(text: str, mark: str) -> bool:
    """``mark in text`` for one of ``_MARKS``, fast on large texts."""
    return mark[0] in text and _MARKS[mark].search(text) is not None


def has_escapes(text: str) -> bool:
    """Cheap test before ``unescape``: most texts hold neither a backslash nor ``&#``."""
    return "\\" in text or _holds_mark(text, "&#") or _holds_mark(text, "%u")


def _escape_matches(text: str) -> list[re.Match[str]]:
    found = list(_BACKSLASH_ESCAPE.finditer(text)) if "\\" in text else []
    for mark, pattern in (("&#", _HTML_REFERENCE), ("%u", _PERCENT_U)):
        if _holds_mark(text, mark):
            more = list(pattern.finditer(text))
            found = sorted(found + more, key=lambda m: m.start()) if found else more
    return found


def _escaped_char(m: re.Match[str], c_octal: bool = False) -> str:
    if m.re is _HTML_REFERENCE:
        hexref, decref = m.groups()
        code = int(hexref, 16) if hexref is not None else int(decref)
        return chr(code) if code <= 0x10FFFF else "\ufffd"
    if m.re is _PERCENT_U:
        return chr(int(m.group(1), 16))
    high, low, u4, ubrace, x2, single, u8, echo_octal, octal = m.groups()
    if high is not None:
        return chr(0x10000 + ((int(high, 16) - 0xD800) << 10) + (int(low, 16) - 0xDC00))
    if single is not None:
        return _SINGLE_ESCAPES.get(single, single)
    if echo_octal is not None and c_octal and _c_reads_apart(echo_octal):
        return chr(int(echo_octal[:2], 8)) + echo_octal[2]  # "\0123": "\012" and a "3"
    if echo_octal is not None or octal is not None:
        return chr(int(echo_octal or octal, 8))
    code = int(u4 or ubrace or x2 or u8, 16)
    return chr(code) if code <= 0x10FFFF else "\ufffd"


_READ_APART = re.compile(r"\\0[1-3][0-7]{2}")


def _c_reads_apart(echo_octal: str) -> bool:
    """Whether C reads ``\0`` and ``echo_octal`` (the three digits ``echo -e`` reads) as another
    character: a control character (``\012``) and a digit. Digits "0NN" give ``\00N`` and a digit
    in C, a control character no value holds before a digit; those keep ``echo -e``'s reading."""
    return echo_octal[0] != "0"


def unescape(text: str) -> Decoded | None:
    """``text`` with every escape (``_BACKSLASH_ESCAPE``, ``_HTML_REFERENCE``) undone, with an
    exact offset map back; None when there is none."""
    return _unescaped(text, _escape_matches(text), False)


def unescape_readings(text: str) -> list[Decoded]:
    """``unescape(text)`` and, when ``text`` holds a ``\0NNN`` that C reads as two characters
    (``\0123``: ``\012`` and "3"), also ``text`` read that way: both writers are common, and
    the one reading cannot tell which wrote it."""
    matches = _escape_matches(text)
    first = _unescaped(text, matches, False)
    if first is None:
        return []
    # Only a ``\0`` and three octal digits not starting with 0 can be read apart: one search
    # tells most texts hold none, before looking at each of thousands of escapes.
    if _READ_APART.search(text) is None or not any(
            m.re is _BACKSLASH_ESCAPE and m.group(8) is not None and _c_reads_apart(m.group(8)) for m in matches):
        return [first]
    second = _unescaped(text, matches, True)
    return [first] if second is None else [first, second]


# What each escape stands for, by its text and reading (JSON with escaped text repeats a few
# escapes thousands of times a MiB): an escape's character depends on its own characters only.
_CHAR_OF: tuple[dict[str, str], dict[str, str]] = ({}, {})
_CHAR_MEMO = 4096


def _chars_of(matches: list[re.Match[str]], c_octal: bool) -> list[str]:
    memo = _CHAR_OF[c_octal]
    if len(memo) > _CHAR_MEMO:
        memo.clear()  # bounded: a text of many distinct escapes does not grow it without end
    out = []
    for m in matches:
        key = m.group()
        char = memo.get(key)
        if char is None:
            char = memo[key] = _escaped_char(m, c_octal)
        out.append(char)
    return out


def _unescaped(text: str, matches: list[re.Match[str]], c_octal: bool) -> Decoded | None:
    if not matches:
        return None
    starts = [m.start() for m in matches]
    ends = [m.end() for m in matches]
    if any(start < end for start, end in zip(starts[1:], ends)):
        return _unescaped_overlapping(text, matches, c_octal)  # escapes of two schemes overlap
    # No escape overlaps the one before (one scheme, the usual case): built a list at a time,
    # not an escape at a time (a JSON text of escaped words holds tens of thousands a MiB).
    chars = _chars_of(matches, c_octal)
    stretch = list(itertools.accumulate(end - start - len(char) for start, end, char in zip(starts, ends, chars)))
    decoded_at = [start - added for start, added in zip(starts, itertools.chain((0,), stretch))]
    pieces = [text[a:b] for a, b in zip(itertools.chain((0,), ends), starts)]
    decoded = "".join(itertools.chain.from_iterable(zip(pieces, chars))) + text[ends[-1]:]
    return Decoded("escape", 0, len(text), decoded, _escape_map(decoded_at, stretch))


def _escape_map(decoded_at: list[int], stretch: list[int]) -> Callable[[int, int], tuple[int, int]]:
    def to_parent(start: int, end: int) -> tuple[int, int]:
        # Offsets move by what the escapes before them added (a span inside an escape's
        # characters covers the whole escape).
        before_start = bisect.bisect_left(decoded_at, start)
        before_end = bisect.bisect_left(decoded_at, end)
        return (start + (stretch[before_start - 1] if before_start else 0),
                end + (stretch[before_end - 1] if before_end else 0))

    return to_parent


def _unescaped_overlapping(text: str, matches: list[re.Match[str]], c_octal: bool) -> Decoded | None:
    pieces: list[str] = []
    decoded_at: list[int] = []  # decoded offset of each escape
    stretch: list[int] = []  # characters the escapes up to and including this one added
    previous = length = added = 0
    for m in matches:
        if m.start() < previous:
            continue  # "\\x26#65;": the reference overlaps the escape before it
        chunk = text[previous : m.start()]
        pieces.append(chunk)
        length += len(chunk)
        char = _escaped_char(m, c_octal)
        decoded_at.append(length)
        pieces.append(char)
        length += len(char)
        added += (m.end() - m.start()) - len(char)
        stretch.append(added)
        previous = m.end()
    if not decoded_at:
        return None
    pieces.append(text[previous:])
    return Decoded("escape", 0, len(text), "".join(pieces), _escape_map(decoded_at, stretch))


# Characters a token or an encoded secret is made of, plus the escapes' own: an escape with
# none of them beside it (a stray "%41" in binary data) cannot be part of one.
_VALUE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-=.%\\&;")
_VALUE_MAP = bytes(1 if chr(byte) in _VALUE_CHARS else 0 for byte in range(256))


def escaped_regions(text: str, encoding: str, reach: int) -> list[tuple[int, int]]:
    """Where in a large ``text`` the escapes of ``encoding`` ("url" or "escape") that may belong
    to a value lie, each widened by ``reach`` and merged: only these need decoding, as a value
    the direct layer missed must hold an escape. In binary data most escapes are chance bytes
    with no value character beside them."""
    if encoding == "url":
        spans = [m.span() for m in _PERCENT.finditer(text)]
    else:
        spans = [m.span() for m in _escape_matches(text)]
    if not spans:
        return []
    size = len(text)
    # Each character as 1 when it is a value character, padded so that ``marks[start]`` is the
    # character before an escape and ``marks[end + 1]`` the one after it (0 past either end):
    # lists built at C speed, where a JSON text of escaped words holds tens of thousands a MiB.
    marks = b"\0" + text.encode("latin-1", "replace").translate(_VALUE_MAP) + b"\0"
    kept = [(start, end) for start, end in spans if marks[start] or marks[end + 1]]
    if not kept:
        return []
    starts = [start for start, _ in kept]
    reach_ends = list(itertools.accumulate((end for _, end in kept), max))  # escapes of two schemes may nest
    # Regions ``(start - reach, end + reach)`` in order of their starts: one ends where the next
    # escape lies beyond twice the reach of every escape before it.
    cuts = [i for i in range(1, len(kept)) if starts[i] - reach > reach_ends[i - 1] + reach]
    firsts = [0, *cuts]
    lasts = [i - 1 for i in cuts] + [len(kept) - 1]
    return [(max(0, starts[a] - reach), min(size, reach_ends[b] + reach)) for a, b in zip(firsts, lasts)]


def shifted(layer: Decoded, offset: int, end: int) -> Decoded:
    """``layer`` (decoded from ``parent[offset:end]``) with its offsets into the whole parent."""
    inner = layer.to_parent

    def to_parent(start: int, stop: int) -> tuple[int, int]:
        a, b = inner(start, stop)
        return a + offset, b + offset

    return Decoded(layer.encoding, offset, end, layer.text, to_parent)
