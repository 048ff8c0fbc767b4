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
from collections.abc import Sequence
from dataclasses import dataclass

from bot_bottle.sidecar.dlp.encodings import b64_cores, urlsafe
from bot_bottle.sidecar.dlp.shifts import Shifted, find_shifted

# As ``known.MIN_CASELESS_LENGTH``: sixteen letters and digits in a row, ignoring case, do not
# occur by chance; fewer could be words of ordinary text run together.
MIN_SPREAD = 16
_ALNUM = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_DROP = bytes(b for b in range(256) if b not in _ALNUM)
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
    skeleton = data.translate(None, _DROP).lower()
    # Skeleton spans, direct forms, and a word-like value's words.
    found: list[tuple[int, int, str, str, tuple[str, ...], tuple[str, ...] | None]] = []
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
