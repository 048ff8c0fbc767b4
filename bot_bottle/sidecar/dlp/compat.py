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
``O``), which NFKC leaves alone, are folded the same way (``LOOKALIKES``) where they touch an
ASCII letter or digit: a secret retyped with them reads the same to a human and to a model. In
text one such character is enough; in the noise of binary data a cluster of two is needed
(``MIN_CLUSTER``). Tag characters (``TAGS``: invisible, each mirrors a printable ASCII one)
fold to that character wherever they are, as compatibility forms do.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from bot_bottle.sidecar.dlp.encodings import Decoded
from bot_bottle.sidecar.dlp.fragments import merge

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
# Unicode tag characters (U+E0020..U+E007E) mirror printable ASCII and render as nothing: a value
# written in them is invisible to a reader yet whole to a tool or model that reads the code
# points ("ASCII smuggling"). NFKC leaves them alone; they fold to the ASCII they mirror.
TAGS = {chr(0xE0000 + cp): chr(cp) for cp in range(0x20, 0x7F)}
_FOLD_TABLE = str.maketrans({**LOOKALIKES, **TAGS})


def fold(text: str) -> str:
    """``text`` as a tool reads it: lookalike letters, tag characters and compatibility forms as
    ASCII."""
    return unicodedata.normalize("NFKC", text.translate(_FOLD_TABLE))


def _folds_to_ascii(ch: str) -> bool:
    if ch in LOOKALIKES or ch in TAGS:
        return True
    folded = unicodedata.normalize("NFKC", ch)
    if folded == ch or not folded.isascii():
        return False
    return any(c.isalnum() for c in folded) or folded in _TOKEN_PUNCTUATION


@dataclass(frozen=True)
class _Finders:
    compat_run: re.Pattern[bytes]  # a run of compatibility characters' UTF-8, matched where it starts
    lookalike_run: re.Pattern[bytes]  # likewise for lookalike letters
    compat_prefixes: frozenset[bytes]  # the first two bytes of each compatibility character
    # translate tables, one per group of first bytes: such a first byte -> "L", a second byte
    # one of them takes -> "S", others -> NUL; a character can start only where "LS" is
    pair_views: tuple[bytes, ...]
    mix: bytes  # translate table: ASCII letter or digit -> "a", non-ASCII byte -> "u", others -> " "


@functools.cache
def _finders() -> _Finders:
    """Built on first use (some 30 ms): a bottle that never sees non-ASCII text never pays it.

    A regex of the characters' encodings tried at every position costs ~110 ms per MiB of
    UTF-8 text (a Russian or an accented one): the bytes are first mapped to a few symbols
    (``bytes.translate``) and searched for the places a run can start, and only there is the
    regex tried. Lookalike letters count only in a word that also holds an ASCII letter or digit
    next to one: a value retyped with a few of them is a word of mixed scripts, where prose in
    those scripts (every other letter of a Russian text is one) is not."""
    # NFKC changes only a character with a decomposition mapping (a Hangul syllable, decomposed
    # by rule, composes back to itself): one lookup turns away the rest without normalizing.
    decomposition = unicodedata.decomposition
    chars = [ch for ch in map(chr, range(0x80, 0x20000))
             if ch in LOOKALIKES or (decomposition(ch) and _folds_to_ascii(ch))]
    chars += list(TAGS)
    compat = [ch for ch in chars if ch not in LOOKALIKES]
    lookalikes = [ch for ch in chars if ch in LOOKALIKES]

    def utf8_run(group: list[str]) -> re.Pattern[bytes]:
        by_prefix: dict[bytes, list[int]] = {}
        for ch in group:
            encoded = ch.encode("utf-8")
            by_prefix.setdefault(encoded[:-1], []).append(encoded[-1])
        branches = []
        for prefix, lasts in sorted(by_prefix.items()):
            klass = b"".join(re.escape(bytes([b])) for b in sorted(lasts))
            branches.append(re.escape(prefix) + b"[" + klass + b"]")
        return re.compile(b"(?:" + b"|".join(branches) + b")+")

    prefixes = frozenset(ch.encode("utf-8")[:2] for ch in compat)
    # East Asian text has a first byte 0xE3..0xED in every character (kana, CJK, Hangul), the same
    # first bytes as a few compatibility characters: searched apart from the others' second bytes,
    # a kana or a Hangul syllable is not a place a run can start (it was, one Python step each).
    east = {p[0] for p in prefixes if 0xE3 <= p[0] <= 0xED}
    groups = [east, {p[0] for p in prefixes} - east]

    def pair_view(leads: set[int]) -> bytes:
        seconds = {p[1] for p in prefixes if p[0] in leads}
        return bytes(0x4C if b in leads else 0x53 if b in seconds else 0 for b in range(256))

    return _Finders(
        compat_run=utf8_run(compat),
        lookalike_run=utf8_run(lookalikes),
        compat_prefixes=prefixes,
        pair_views=tuple(pair_view(leads) for leads in groups if leads),
        mix=bytes(0x61 if chr(b).isalnum() and b < 0x80 else (0x75 if b >= 0x80 else 0x20) for b in range(256)),
    )


def _runs(data: bytes | bytearray, start: int, end: int) -> list[tuple[int, int, str]]:
    """``(start, end, folded)`` per run of folding characters in ``data[start:end]``, UTF-8 text."""
    f = _finders()
    out: list[tuple[int, int, str]] = []
    starts: list[int] = []
    for table in f.pair_views:
        view = data[start:end].translate(table)
        at = view.find(b"LS")
        while at != -1:
            starts.append(start + at)
            at = view.find(b"LS", at + 2)
        del view
    done = start  # the end of the last run: a start inside it is part of it
    for pos in sorted(starts):
        if pos < done or bytes(data[pos : pos + 2]) not in f.compat_prefixes:
            continue
        m = f.compat_run.match(data, pos, end)
        if m is not None:
            out.append((m.start(), m.end(), fold(m.group().decode("utf-8"))))
            done = m.end()
    # Lookalikes: the words (between ASCII blanks and punctuation) where an ASCII letter or digit
    # meets a non-ASCII byte.
    mix = data[start:end].translate(f.mix)
    words: list[tuple[int, int]] = []
    for pair in (b"au", b"ua"):
        at = mix.find(pair)
        while at != -1:
            first = mix.rfind(b" ", 0, at) + 1
            last = mix.find(b" ", at + 1)
            last = len(mix) if last == -1 else last
            words.append((first, last))
            at = mix.find(pair, last)
    for first, last in sorted(set(words)):
        for m in f.lookalike_run.finditer(data, start + first, start + last):
            before, after = m.start() - start, m.end() - start
            if mix[before - 1 : before] == b"a" or mix[after : after + 1] == b"a":
                out.append((m.start(), m.end(), fold(m.group().decode("utf-8"))))
    out.sort()
    return out


# (start, end, folded, in text): a run of folding characters (or of their UTF-8 bytes), and
# whether it lies in text (else among binary bytes, where one alone is noise).
Candidate = tuple[int, int, str, bool]


def _candidates(text: str) -> list[Candidate]:
    """Every run of folding characters (or their UTF-8 bytes) in ``text``."""
    try:
        data = text.encode("latin-1")
    except UnicodeEncodeError:
        return _char_candidates(text)
    # A latin-1 text is a body's bytes seen as characters: its compatibility characters are
    # UTF-8 sequences. Its lone bytes 0xAA, 0xB2, 0xB3, 0xB9, 0xBA (ª²³¹º as characters) are
    # binary noise, everywhere in compressed or random data, not a disguise: looking at them
    # made the scan of a random upload thousands of times slower.
    return _utf8_candidates(data)


def _char_candidates(text: str) -> list[Candidate]:
    """The runs of a text of characters, found in its UTF-8 and placed back on its characters."""
    data = text.encode("utf-8", "surrogatepass")
    out: list[Candidate] = []
    chars = done = 0  # characters before byte ``done``
    for start, end, folded in _runs(data, 0, len(data)):
        chars += len(data[done:start].decode("utf-8", "surrogatepass"))
        length = len(data[start:end].decode("utf-8", "surrogatepass"))
        out.append((chars, chars + length, folded, True))
        chars, done = chars + length, end
    return out


def compat_regions(data: bytes | bytearray, reach: int,
                   windows: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    """Where the UTF-8 bytes ``data`` hold clusters of folding characters (``MIN_CLUSTER`` or
    more, each within ``CLUSTER_GAP`` of the next), widened by ``reach`` and merged: the places
    a compatibility disguise can be in a streamed body. ``windows``: ``utf8_windows(data)``, if
    the caller has them already."""
    if data.isascii():
        return []
    return _widened(_clusters(_utf8_candidates(data, windows)), reach, len(data))


def _utf8_candidates(data: bytes | bytearray, windows: list[tuple[int, int]] | None = None) -> list[Candidate]:
    """Every run of folding characters' UTF-8 in ``data``: searched in the windows that are
    UTF-8 text (``utf8_windows``), and for fullwidth forms anywhere."""
    compat_run = _finders().compat_run
    found: list[Candidate] = []
    if windows is None:
        windows = utf8_windows(data)
    for start, end in windows:
        found += [(s, e, folded, True) for s, e, folded in _runs(data, start, end)]
    # Fullwidth forms (the usual disguise) are also looked for among binary bytes, between the
    # windows above: one regex search for their first two bytes, about half a millisecond per
    # MiB (a ``find`` per prefix costs twice that each in random data, where 0xEF is frequent).
    edges = [0] + [edge for window in windows for edge in window] + [len(data)]
    for gap_start, gap_end in zip(edges[::2], edges[1::2]):
        done = gap_start
        for start in _FULLWIDTH_START.finditer(data, gap_start, gap_end):
            if start.start() < done:
                continue  # inside the run just found
            m = compat_run.match(data, start.start())
            if m is not None:
                found.append((m.start(), m.end(), fold(m.group().decode("utf-8")), False))
                done = m.end()
    found.sort()
    return found


# The UTF-8 of the fullwidth forms U+FF01..U+FF5E starts with one of these.
FULLWIDTH_PREFIXES = (b"\xef\xbc", b"\xef\xbd")
_FULLWIDTH_START = re.compile(rb"\xef[\xbc\xbd]")  # the same, as one pattern


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
        if not window.isascii() and is_utf8(window):
            out.append((position, end))
        position = max(end, position + 1)
    return out


def is_utf8(window: bytes | bytearray) -> bool:
    """Whether ``window`` is UTF-8 text, but for a character cut at either edge: a streamed batch,
    or a region of one, starts and ends wherever the bytes were cut."""
    lead = 0
    while lead < min(3, len(window)) and window[lead] & 0xC0 == 0x80:
        lead += 1
    try:
        window[lead:].decode("utf-8")
    except UnicodeDecodeError as error:
        return error.reason == "unexpected end of data" and error.start >= len(window) - lead - 3
    return True


def _widened(spans: list[tuple[int, int]], reach: int, size: int) -> list[tuple[int, int]]:
    return merge((max(0, s - reach), min(size, e + reach)) for s, e in spans)


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
