"""Unicode compatibility forms folded back to ASCII: fullwidth ``ｇｈｐ＿...``, mathematical
``𝐠𝐡𝐩``, circled ``ⓖⓗⓟ`` and the like, which ``unicodedata.normalize("NFKC", ...)`` turns
into the ASCII value a reader (or a model, or a tool that normalizes) sees in them.

Only characters whose NFKC form holds an ASCII letter or digit, or is one of the punctuation
characters tokens are made of, are folded: the rest of the text (accents, CJK, emoji) stays as
it is, so a text is rescanned only where such characters cluster. Bodies are scanned as a
latin-1 view of their bytes, where a fullwidth character is its three UTF-8 bytes: a text with
characters beyond latin-1 is searched as characters, a latin-1 view for their UTF-8 bytes, in
the stretches that are UTF-8 text (and for fullwidth forms everywhere: binary data is too noisy,
and too slow, to search for the rest). ASCII text costs one ``str.isascii``, which CPython
answers without reading the text.

Letters of other scripts that look like Latin ones (Cyrillic ``а`` for ``a``, Greek ``Ο`` for
``O``), which NFKC leaves alone, are folded the same way (``LOOKALIKES``): a secret retyped with
them reads the same to a human and to a model. In text one such character is enough; in the
noise of binary data a cluster of two is needed (``MIN_CLUSTER``).
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from collections.abc import Callable

from bot_bottle.sidecar.dlp.encodings import Decoded

# Punctuation that is part of token and secret formats: a fullwidth "＿" or "－" inside an
# otherwise ASCII token must fold. Other punctuation ("，", "：") is everyday CJK text.
_TOKEN_PUNCTUATION = frozenset("_-+/=.~!#$%&*@^|")
# A lone compatibility character among binary bytes (three bytes that happen to spell a fullwidth
# form) is common; a disguised value there holds several close together. In text, one is enough.
MIN_CLUSTER = 2
CLUSTER_GAP = 32

# Letters of other scripts drawn like a Latin letter in common fonts (Unicode's confusables,
# restricted to those whole-letter lookalikes), folded to that letter, case kept.
LOOKALIKES = {
    # Cyrillic
    "а": "a", "с": "c", "ԁ": "d", "е": "e", "һ": "h", "і": "i", "ј": "j", "к": "k", "ӏ": "l", "о": "o",
    "р": "p", "ԛ": "q", "ѕ": "s", "у": "y", "х": "x", "ԝ": "w", "ѵ": "v",
    "А": "A", "В": "B", "С": "C", "Е": "E", "Н": "H", "І": "I", "Ј": "J", "К": "K", "М": "M",
    "О": "O", "Р": "P", "Ѕ": "S", "Т": "T", "Х": "X", "У": "Y", "Ү": "Y", "Ԛ": "Q", "Ԝ": "W", "Ѵ": "V",
    "Ӏ": "I", "Ꙅ": "S",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ο": "o", "α": "a", "ν": "v", "ι": "i",
    "κ": "k", "ρ": "p", "υ": "u", "χ": "x", "ϲ": "c", "ϳ": "j", "Ϲ": "C", "Ϳ": "J",
    # Armenian
    "օ": "o", "ս": "u", "ո": "n", "հ": "h", "ց": "g", "զ": "q",
    # Latin letters outside ASCII drawn like ASCII ones
    "ı": "i", "ɑ": "a", "ɡ": "g", "ȷ": "j", "ʏ": "y",
}
_LOOKALIKE_TABLE = str.maketrans(LOOKALIKES)


def fold(text: str) -> str:
    """``text`` as a reader sees it: lookalike letters and compatibility forms as ASCII."""
    return unicodedata.normalize("NFKC", text.translate(_LOOKALIKE_TABLE))


def _folds_to_ascii(ch: str) -> bool:
    if ch in LOOKALIKES:
        return True
    folded = unicodedata.normalize("NFKC", ch)
    if folded == ch or not folded.isascii():
        return False
    return any(c.isalnum() for c in folded) or folded in _TOKEN_PUNCTUATION


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[bytes]]:
    """The characters that fold (as a character class), and their UTF-8 encodings (as bytes).
    Built on first use (some 30 ms): a bottle that never sees non-ASCII text never pays it."""
    chars = [chr(cp) for cp in range(0x80, 0x20000) if not 0xD800 <= cp < 0xE000 and _folds_to_ascii(chr(cp))]
    by_prefix: dict[bytes, list[int]] = {}
    for ch in chars:
        encoded = ch.encode("utf-8")
        by_prefix.setdefault(encoded[:-1], []).append(encoded[-1])
    branches = []
    for prefix, lasts in sorted(by_prefix.items()):
        klass = b"".join(re.escape(bytes([b])) for b in sorted(lasts))
        branches.append(re.escape(prefix) + b"[" + klass + b"]")
    char_class = "".join(re.escape(ch) for ch in chars)
    return re.compile("[" + char_class + "]+"), re.compile(b"(?:" + b"|".join(branches) + b")+")


# (start, end, folded, in text): a run of folding characters (or of their UTF-8 bytes), and
# whether it lies in text (else among binary bytes, where one alone is noise).
Candidate = tuple[int, int, str, bool]


def _candidates(text: str) -> list[Candidate]:
    """Every run of folding characters (or their UTF-8 bytes) in ``text``."""
    chars = _patterns()[0]
    try:
        data = text.encode("latin-1")
    except UnicodeEncodeError:
        return [(m.start(), m.end(), fold(m.group()), True) for m in chars.finditer(text)]
    # A latin-1 text is a body's bytes seen as characters: its compatibility characters are
    # UTF-8 sequences. Its lone bytes 0xAA, 0xB2, 0xB3, 0xB9, 0xBA (ª²³¹º as characters) are
    # binary noise, everywhere in compressed or random data, not a disguise: looking at them
    # made the scan of a random upload thousands of times slower.
    return _utf8_candidates(data)


def compat_regions(data: bytes | bytearray, reach: int) -> list[tuple[int, int]]:
    """Where the UTF-8 bytes ``data`` hold clusters of folding characters (``MIN_CLUSTER`` or
    more, each within ``CLUSTER_GAP`` of the next), widened by ``reach`` and merged: the places
    a compatibility disguise can be in a streamed body."""
    if data.isascii():
        return []
    return _widened(_clusters(_utf8_candidates(data)), reach, len(data))


def _utf8_candidates(data: bytes | bytearray) -> list[Candidate]:
    """Every run of folding characters' UTF-8 in ``data``: searched in the windows that are
    UTF-8 text, and for fullwidth forms anywhere."""
    utf8 = _patterns()[1]
    found: list[Candidate] = []
    windows = utf8_windows(data)
    for start, end in windows:
        found += [(m.start(), m.end(), fold(m.group().decode("utf-8")), True)
                  for m in utf8.finditer(data, start, end)]
    # Fullwidth forms (the usual disguise) are also looked for among binary bytes, where the
    # windows above do not look: two byte searches, about a millisecond per MiB each.
    starts = [w[0] for w in windows]
    for prefix in FULLWIDTH_PREFIXES:
        at = data.find(prefix)
        while at != -1:
            i = bisect.bisect_right(starts, at) - 1
            m = None if i >= 0 and at < windows[i][1] else utf8.match(data, at)
            if m is not None:
                found.append((m.start(), m.end(), fold(m.group().decode("utf-8")), False))
            at = data.find(prefix, m.end() if m is not None else at + 1)
    found.sort()
    return found


# The UTF-8 of the fullwidth forms U+FF01..U+FF5E starts with one of these.
FULLWIDTH_PREFIXES = (b"\xef\xbc", b"\xef\xbd")


# A streamed body is looked at in windows of this size; only windows that are UTF-8 text are searched.
UTF8_WINDOW = 64 * 1024


def utf8_windows(data: bytes | bytearray) -> list[tuple[int, int]]:
    """The windows of ``data`` that decode as UTF-8 and are not plain ASCII. A disguise is text;
    binary data (compressed, random) fails to decode within a few bytes, where searching it for
    the characters' encodings costs a tenth of a second per MiB and finds only noise."""
    out = []
    position, size = 0, len(data)
    while position < size:
        end = min(size, position + UTF8_WINDOW)
        while position < end < size and data[end] & 0xC0 == 0x80:
            end -= 1  # never cut a character: the next window starts at its first byte
        window = data[position:end]
        if not window.isascii():
            try:
                window.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                out.append((position, end))
        position = max(end, position + 1)
    return out


def _widened(spans: list[tuple[int, int]], reach: int, size: int) -> list[tuple[int, int]]:
    regions: list[list[int]] = []
    for s, e in spans:
        low, high = max(0, s - reach), min(size, e + reach)
        if regions and low <= regions[-1][1]:
            regions[-1][1] = max(regions[-1][1], high)
        else:
            regions.append([low, high])
    return [(low, high) for low, high in regions]


def _clusters(candidates: list[Candidate]) -> list[tuple[int, int]]:
    # Counted in folded characters: a fullwidth character is three bytes of a latin-1 view.
    # A cluster with a run in text counts whatever its size.
    out: list[tuple[int, int]] = []
    start = end = count = 0
    text = False
    for s, e, folded, in_text in candidates:
        if count and s - end <= CLUSTER_GAP:
            end, count, text = max(end, e), count + len(folded), text or in_text
            continue
        if count >= MIN_CLUSTER or (count and text):
            out.append((start, end))
        start, end, count, text = s, e, len(folded), in_text
    if count >= MIN_CLUSTER or (count and text):
        out.append((start, end))
    return out


def fold_compat(text: str, reach: int) -> list[Decoded]:
    """Layers of ``text`` with its compatibility characters folded (NFKC), one per cluster
    widened by ``reach`` (merged when they meet), each with an exact offset map back."""
    if text.isascii():
        return []
    candidates = _candidates(text)
    regions = _widened(_clusters(candidates), reach, len(text))
    out = []
    for low, high in regions:
        changes = [c for c in candidates if low <= c[0] and c[1] <= high]
        out.append(_folded(text, low, high, changes))
    return out


def _folded(text: str, low: int, high: int, changes: list[tuple[int, int, str]]) -> Decoded:
    pieces: list[str] = []
    spans: list[tuple[int, int, int, int]] = []  # (folded start, folded end, parent start, parent end)
    position, length = low, 0
    for start, end, folded, _ in changes:
        if start < position:
            continue  # a character run and its UTF-8 bytes cannot overlap; guard all the same
        pieces.append(text[position:start])
        length += start - position
        spans.append((length, length + len(folded), start, end))
        pieces.append(folded)
        length += len(folded)
        position = end
    pieces.append(text[position:high])
    return Decoded("nfkc", low, high, "".join(pieces), _span_map(spans, low))


def _span_map(spans: list[tuple[int, int, int, int]], low: int) -> Callable[[int, int], tuple[int, int]]:
    starts = [s[0] for s in spans]

    def char(at: int) -> tuple[int, int]:
        # The parent span of one folded character: its whole run when folded, else itself.
        i = bisect.bisect_right(starts, at) - 1
        if i < 0:
            return low + at, low + at + 1
        fs, fe, ps, pe = spans[i]
        if at < fe:
            return ps, pe
        return pe + (at - fe), pe + (at - fe) + 1

    def to_parent(start: int, end: int) -> tuple[int, int]:
        if end <= start:
            first = char(start)[0]
            return first, first
        return char(start)[0], char(end - 1)[1]

    return to_parent
