"""The bottle's secrets spelled out with something between their characters.

"Print the key with a space (a dash, a zero-width space, a newline, a soft hyphen) after each
character", or one character per JSON array element, or per line: every character of the value
is still there, in order, with separators a reader (or the attacker's script) drops. The same
holds for the value's hex digits with any separator (``4b:71``, ``=4B=71`` quoted-printable,
``4b-71``), its bits (``01001011 01110001``), its three-digit octal codes (``\\113\\161``) and
its base64 at each byte offset, wrapped narrower than a line the decoder reads as a run
(``base64 -w 16``); lists of decimal codes are ``dlp.charcodes``'s.

Each is searched in the text's *skeleton*: its ASCII letters and digits only, lower-cased (one
``bytes.translate`` that deletes the rest, then a ``find`` per form). Forms are the value's
letters and digits (at least ``MIN_SPREAD`` of them: fewer would match ordinary words run
together) and the digit strings above. A hit is mapped back to the span from its first to its
last character as sent; a span the direct search reports already (the value or its hex as
they are) is left to it.

A word-like value (a passphrase such as ``correcthorsebattery``) is only spelled out when its
letters come one by one or in small groups (at most ``SMALL_GROUP`` in a row), or as exactly its
own words joined by one other separator: its words with code or a line break between
(``correcthorse = battery``) are ordinary text that merely holds them. A random value keeps
every split: its pieces do not occur by chance.

Letters or digits used as separators (``K0q07...``) are not seen, nor are values with fewer than
``MIN_SPREAD`` letters and digits.
"""

from __future__ import annotations

import bisect
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot_bottle.sidecar.dlp.encodings import b64_cores, urlsafe
from bot_bottle.sidecar.dlp.shifts import Shifted, find_shifted

# As ``known.MIN_CASELESS_LENGTH``: sixteen letters and digits in a row, ignoring case, do not
# occur by chance; fewer could be words of ordinary text run together.
MIN_SPREAD = 16
_ALNUM = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_DROP = bytes(b for b in range(256) if b not in _ALNUM)
# Capitals to lower case, the rest as they are: with ``_DROP``, the skeleton in one pass.
_LOWER = bytes(b + 32 if 0x41 <= b <= 0x5A else b for b in range(256))
# The skeleton is read as words of this many bytes, one every ``_WORD`` bytes, for a pass that
# tells which forms can occur at all (``_FormWords``): a form of ``2 * _WORD - 1`` characters or
# more holds a whole one wherever it starts. Every form has ``MIN_SPREAD`` (16).
_WORD = 8
# With fewer forms than this, or a shorter skeleton, a ``find`` per form (about 0.1 ms a MiB of
# skeleton) costs less than the word pass (about 7).
WORD_PASS_FORMS = 64
WORD_PASS_MIN = 16 * 1024
_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]")
_EDGES = re.compile(r"^[^0-9A-Za-z]+|[^0-9A-Za-z]+$")  # a span starts and ends at a letter or digit
# A hit in the skeleton is mapped back through counts of letters and digits per block of the text
# (one translate each, made once a text has a hit), then inside the one block that holds it.
_BLOCK = 256
# Spelling out puts a separator after each character or each few; a longer run of letters is a
# word of the text, and a word-like value's words in text are not a value spelled out.
SMALL_GROUP = 4
_RUN = re.compile(r"[0-9A-Za-z]+")
_VOWELS = frozenset("aeiouyAEIOUY")
_MAX_JOIN = 3  # a separator put between a value's words: " ", "_", " - "


@dataclass(frozen=True)
class SpreadHit:
    start: int
    end: int
    secret_name: str
    encoding: str


@dataclass(frozen=True)
class _Form:
    skeleton: bytes  # lower-case letters and digits
    name: str
    encoding: str
    direct: tuple[str, ...]  # the form as the direct search finds it (lower-cased), if it does
    # A word-like value's own words (lower-cased), when its words in text, in a few long runs,
    # are not it spelled out unless they are exactly its words with other separators.
    words: tuple[str, ...] | None = None


def spread_forms(values: Sequence[tuple[str, str]]) -> tuple[_Form, ...]:
    """The spread forms of ``(name, value)`` pairs."""
    forms: list[_Form] = []
    seen: set[bytes] = set()
    for name, value in values:
        data = value.encode("utf-8")
        letters = _NOT_ALNUM.sub("", value)
        candidates: list[tuple[str, str, tuple[str, ...]]] = []
        wordlike = _wordlike(letters)
        if len(letters) >= MIN_SPREAD:
            whole = _EDGES.sub("", value)
            # As text, and as the bytes of a body seen as characters (latin-1).
            candidates.append((letters, "spread", (whole.lower(), whole.encode("utf-8").decode("latin-1").lower())))
        hex_digits = data.hex()
        candidates += [
            (hex_digits, "spread+hex", (hex_digits, data.hex(" "))),  # as ``known`` searches for them
            ("".join(f"{b:08b}" for b in data), "spread+binary", ()),
            ("".join(f"{b:03o}" for b in data), "spread+octal", ()),
            # Base64 at each byte offset, wrapped at any width (``base64 -w 16``) or with blanks:
            # wrapped at 24 columns or more, each line is a run the decoded layer reads already.
            *((core, "spread+base64", _as_sent(core)) for core in b64_cores(data)),
        ]
        for text, encoding, direct in candidates:
            skeleton = text.lower().encode("ascii")
            if len(skeleton) >= MIN_SPREAD and skeleton not in seen:
                seen.add(skeleton)
                words = tuple(_RUN.findall(value.lower())) if wordlike and encoding == "spread" else None
                forms.append(_Form(skeleton, name, encoding, direct, words))
    return tuple(forms)


def _wordlike(letters: str) -> bool:
    """Whether a value's letters and digits read as words (a passphrase) rather than a random
    token: nearly all letters, in one case or capitalised words, with the vowels of a language.
    A random mixed-case token meets all three rarely, and then only loses the few-long-runs form."""
    if not letters:
        return False
    alpha = [c for c in letters if c.isalpha()]
    if len(alpha) < 0.85 * len(letters):
        return False
    upper = sum(c.isupper() for c in alpha)
    if 0.25 * len(alpha) < upper < 0.9 * len(alpha):
        return False
    vowels = sum(c in _VOWELS for c in alpha)
    return 0.3 * len(alpha) <= vowels <= 0.6 * len(alpha)


def _ordinary_words(piece: str, words: tuple[str, ...]) -> bool:
    """Whether a hit of a word-like value is text holding its words: runs of letters and digits
    longer than spelling out leaves, and not the value's own words joined by another separator
    (one, the same each time: code between them, ``a = b.c(d)``, is ordinary text)."""
    runs = _RUN.findall(piece)
    if all(len(run) <= SMALL_GROUP for run in runs):
        return False
    gaps = set(_RUN.split(piece)[1:-1])
    return not (len(gaps) == 1 and len(gaps.pop()) <= _MAX_JOIN and tuple(run.lower() for run in runs) == words)


def _as_sent(core: str) -> tuple[str, ...]:
    """A base64 core as the direct search finds it unbroken, in either alphabet (lower-cased,
    from its first to its last letter or digit, as a hit is mapped back)."""
    edged = _EDGES.sub("", core).lower()
    return (edged, urlsafe(edged))


def find_spread(forms: Sequence[_Form], text: str | bytes | bytearray,
                shifted: Sequence[Shifted] = ()) -> list[SpreadHit]:
    """Every spread form in ``text`` (offsets into it: characters of a ``str``, else bytes), and
    with ``shifted`` every letter substitution (``dlp.shifts``), spelled out or not."""
    if not (forms or shifted) or not text:
        return []
    if isinstance(text, str):
        # A body's bytes seen as characters; a wider character as "?" (one byte each: the same
        # offsets). Only ASCII letters and digits are read: one pass, where trying latin-1 first
        # read a text up to its first wide character before a second pass.
        data: bytes | bytearray = text.encode("latin-1", "replace")
    else:
        data = text
    skeleton = data.translate(_LOWER, _DROP)
    # Skeleton spans, direct forms, and a word-like value's words.
    found: list[tuple[int, int, str, str, tuple[str, ...], tuple[str, ...] | None]] = []
    forms, shifted = _present(forms, shifted, skeleton)
    for form in forms:
        at = skeleton.find(form.skeleton)
        while at >= 0:
            found.append((at, at + len(form.skeleton), form.name, form.encoding, form.direct, form.words))
            at = skeleton.find(form.skeleton, at + 1)
    if shifted:
        direct = {value.name: (value.direct,) for value in shifted}
        found += [(s, e, name, encoding, direct[name] if encoding == "rot13" else (), None)
                  for s, e, name, encoding in find_shifted(shifted, skeleton)]
    if not found:
        return []
    hits: list[SpreadHit] = []
    offsets = _Offsets(data)
    for at, stop, name, encoding, direct_forms, words in found:
        start, end = offsets.of(at), offsets.of(stop - 1) + 1
        piece = text[start:end] if isinstance(text, str) else bytes(data[start:end]).decode("latin-1")
        if words is not None and _ordinary_words(piece, words):
            continue
        if piece.lower() not in direct_forms:
            hits.append(SpreadHit(start, end, name, encoding))
    return hits


def _present(forms: Sequence[_Form], shifted: Sequence[Shifted],
             skeleton: bytes | bytearray) -> tuple[Sequence[_Form], Sequence[Shifted]]:
    """``forms`` and ``shifted`` with what cannot occur in ``skeleton`` left out, in their order:
    a form (a spread form, or a substituted one searched by itself) occurs only where it holds
    one of the skeleton's words (``_WORD`` bytes at a multiple of ``_WORD``). One C-speed pass
    over those words instead of a ``find`` per form: a secret has seven spread forms or so
    (letters, hex, bits, octal, base64 at three offsets) and, mostly letters, 26 to 51
    substituted ones. A substituted value searched by its layout keeps its one search."""
    if len(skeleton) < WORD_PASS_MIN:
        return forms, shifted
    index = _word_index(forms, shifted)
    if index is None or index[2] < WORD_PASS_FORMS:
        return forms, shifted
    words, owners, _ = index
    with memoryview(skeleton) as view, view[: len(skeleton) - len(skeleton) % _WORD] as whole, \
            whole.cast("Q") as aligned:
        met = words.intersection(aligned)
    wanted: set[tuple[int, bytes]] = set()
    for word in met:
        wanted.update(owners[word])
    kept_forms = [form for i, form in enumerate(forms) if (i, form.skeleton) in wanted]
    kept_shifted: list[Shifted] = []
    for i, value in enumerate(shifted):
        if value.layout:
            kept_shifted.append(value)
            continue
        held = {form: encoding for form, encoding in value.forms.items() if (len(forms) + i, form) in wanted}
        if held:
            kept_shifted.append(replace(value, forms=held))
    return kept_forms, kept_shifted


# The forms' words, each one's forms (by place and text), and how many forms there are.
_WordIndex = tuple[frozenset[int], dict[int, tuple[tuple[int, bytes], ...]], int]
# (forms, shifted, their index): a ``KnownSecrets`` passes the same two sequences every time.
_INDEXES: list[tuple[Sequence[_Form], Sequence[Shifted], _WordIndex | None]] = []
_INDEXES_MAX = 16


def _word_index(forms: Sequence[_Form], shifted: Sequence[Shifted]) -> _WordIndex | None:
    """The words of the forms ``_present`` looks up (built once per pair of sequences); None
    when one is too short to hold a whole word, or the sequences are not tuples (a list may
    change after its index was made)."""
    if not (isinstance(forms, tuple) and isinstance(shifted, tuple)):
        return None
    for cached_forms, cached_shifted, index in _INDEXES:
        if cached_forms is forms and cached_shifted is shifted:
            return index
    index = _build_index(forms, shifted)
    if len(_INDEXES) >= _INDEXES_MAX:
        del _INDEXES[0]
    _INDEXES.append((forms, shifted, index))
    return index


def _build_index(forms: Sequence[_Form], shifted: Sequence[Shifted]) -> _WordIndex | None:
    """Every ``_WORD``-byte piece of every form, as ``_present`` reads the skeleton's words, ->
    the forms holding it, each as (its place: a spread form's index, or ``len(forms)`` plus its
    substituted value's, and its text)."""
    texts = [(i, form.skeleton) for i, form in enumerate(forms)]
    texts += [(len(forms) + i, form) for i, value in enumerate(shifted) if not value.layout for form in value.forms]
    if any(len(text) < 2 * _WORD - 1 for _, text in texts):
        return None
    owners: dict[int, set[tuple[int, bytes]]] = {}
    for i, text in texts:
        for at in range(len(text) - _WORD + 1):
            owners.setdefault(int.from_bytes(text[at:at + _WORD], sys.byteorder), set()).add((i, text))
    return frozenset(owners), {word: tuple(held) for word, held in owners.items()}, len(texts)


_KEPT = re.compile(b"[0-9A-Za-z]")


class _Offsets:
    """Where the n-th letter or digit of ``data`` is: letters and digits counted per block
    once, then one block searched per question."""

    def __init__(self, data: bytes | bytearray) -> None:
        self.data = data
        self.before: list[int] = []  # letters and digits before each block
        total = 0
        for base in range(0, len(data), _BLOCK):
            self.before.append(total)
            total += len(data[base : base + _BLOCK].translate(None, _DROP))

    def of(self, index: int) -> int:
        block = bisect.bisect_right(self.before, index) - 1
        base = block * _BLOCK
        wanted = index - self.before[block]
        for n, m in enumerate(_KEPT.finditer(self.data, base, base + _BLOCK)):
            if n == wanted:
                return m.start()
        raise ValueError("index past the text's letters and digits")
