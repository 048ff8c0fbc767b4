"""The bottle's own secret values, and every form in which they are searched for.

Each secret (name -> value: ``?prompt`` and ``${HOST_VAR}`` env values, route tokens) becomes a
list of literal *needles*: the raw value (and, for values of ``MIN_CASELESS_LENGTH`` or more,
the value in any letter case), reversed, ROT13, lower-case hex, ``%xx`` for every byte, the
usual partial percent-encodings, and the base64 cores (standard and URL-safe alphabets) at each
of the three byte offsets; base85 and ascii85 cores at each of the four, uuencode at each of the
three, base32hex, base64 read backwards, ROT47, and the two halves of a value sent as every other
character are kept apart
(``find_base85``), for texts scanned deep, as are letter shifts (``dlp.shifts``).
Case-insensitive forms (hex, ``%xx``) are searched in the ASCII-lower-cased text, so upper,
lower and mixed case are one search.

Searching is one ``str.find`` loop per needle (forms sharing a long substring share one search,
see ``_Group``): substring search in CPython skips ahead by the needle's length and runs at GB/s
for needles this long, more than an order of magnitude faster than one regex alternation of the
same needles.

Values shorter than ``MIN_SECRET_LENGTH`` are not searched (a 4-character PIN matches
everywhere); ``short_secrets`` names them so callers can warn at launch. No value ever leaves
this module: findings carry the secret's *name*, and ``repr`` shows names only.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import codecs
import itertools
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot_bottle.sidecar.dlp.encodings import (
    a85_cores,
    ascii_lower,
    b32_cores,
    b85_cores,
    b64_cores,
    url_full,
    url_partial_forms,
    urlsafe,
)
from bot_bottle.sidecar.dlp.escaped import escaped_forms, find_escaped
from bot_bottle.sidecar.dlp.fragments import tolerance
from bot_bottle.sidecar.dlp.shifts import shifted_forms
from bot_bottle.sidecar.dlp.spread import find_spread, spread_forms

MIN_SECRET_LENGTH = 8
# Values at least this long are also searched without case (a ``tr``, ``upper()`` or swapcase
# of a random value is as good a carrier as the value): a chance match of 16 characters is
# negligible, where a short value without case could be an ordinary word.
MIN_CASELESS_LENGTH = 16
# A fragment shorter than this is too common to count as part of a split secret.
MIN_FRAGMENT = 4
# Base85 cores are whole 5-character groups: one group (4 bytes) would match by chance, two are
# found for every value of 11 characters or more at every alignment (8 to 10: at some).
MIN_B85_CORE = 10
# Each half of a value sent as every other character is searched for from this length.
MIN_HALF = 10
_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_UU_TABLES = tuple(str.maketrans(_B64_ALPHABET, zero + "".join(chr(33 + i) for i in range(63))) for zero in " `")


def _normal_forms(value: str) -> list[str]:
    """``value`` and, when it is not ASCII, its composed and decomposed Unicode forms (NFC, NFD):
    "Ö" is one character or an "O" with a combining mark, as the tool that typed or copied it
    chose (macOS file names are decomposed), and reads the same either way. Each form is searched
    as a value of its own, in every encoding."""
    if value.isascii():
        return [value]
    return list(dict.fromkeys([value, unicodedata.normalize("NFC", value), unicodedata.normalize("NFD", value)]))


def short_secrets(secrets: Mapping[str, str], min_length: int = MIN_SECRET_LENGTH) -> list[str]:
    """Names of the secrets too short to be scanned for (callers warn about these at launch)."""
    return sorted(name for name, value in secrets.items() if len(_clean(value)) < min_length)


def _clean(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


@dataclass(frozen=True)
class KnownHit:
    start: int
    end: int
    secret_name: str
    encoding: str | None  # None: the raw value


class _Needle:
    """One searchable form of one secret. Holds the value; never printed."""

    __slots__ = ("text", "lowered", "name", "encoding", "exact")

    def __init__(self, text: str, lowered: bool, name: str, encoding: str | None, exact: str | None = None) -> None:
        self.text = text
        self.lowered = lowered
        self.name = name
        self.encoding = encoding
        # A caseless form of ``exact``: where the text holds ``exact`` itself, the raw form reports it.
        self.exact = exact

    def __repr__(self) -> str:
        return f"<needle {self.name} {self.encoding or 'raw'}>"


class _Group:
    """Forms that share a substring (the *anchor*): one search finds candidates for all of them,
    each then confirmed where it would start. The raw value and its percent-encodings share their
    longest run of unreserved characters; a base64 core and its URL-safe twin share their longest
    run without ``+``/``/``. Fewer, longer searches: substring search gets faster with length."""

    __slots__ = ("anchor", "lowered", "forms", "nul", "chars", "twin")

    def __init__(self, anchor: str, lowered: bool, forms: list[tuple[_Needle, int]]) -> None:
        self.anchor = anchor
        self.lowered = lowered
        # The same form in the other letter case (base32hex): when a large text holds the
        # letters of both, one search of the lower-cased text finds both (``_search``).
        self.twin: _Group | None = None
        self.forms = forms  # (needle, offset of the anchor inside the needle)
        self.nul = "\x00" in anchor
        self.chars = "".join(dict.fromkeys(anchor))  # each character of the anchor once

    def __repr__(self) -> str:
        return f"<group of {len(self.forms)}>"


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~\-]+")
_B64_PLAIN = re.compile(r"[A-Za-z0-9]+")
MIN_ANCHOR = 10


def _group(needles: list[_Needle], runs: re.Pattern[str]) -> list[_Group]:
    """One group for ``needles`` when they share a long enough run, else one group each."""
    first = needles[0]
    candidates = sorted(runs.findall(first.text), key=len, reverse=True)
    for anchor in candidates:
        if len(anchor) < MIN_ANCHOR and len(anchor) < len(first.text):
            break
        forms = []
        for needle in needles:
            offset = needle.text.find(anchor)
            if offset < 0 or needle.text.find(anchor, offset + 1) >= 0:
                break  # absent, or ambiguous: fall back to separate searches
            forms.append((needle, offset))
        else:
            return [_Group(anchor, first.lowered, forms)]
    return [_Group(n.text, n.lowered, [(n, 0)]) for n in needles]


class KnownSecrets:
    def __init__(self, secrets: Mapping[str, str], min_length: int = MIN_SECRET_LENGTH) -> None:
        if min_length < 1:
            raise ValueError("min_length must be at least 1")
        self.min_length = min_length
        values: dict[str, str] = {}  # value -> first name (sorted), so duplicates report once
        for name in sorted(secrets):
            if not isinstance(name, str):
                raise TypeError("secret names must be strings")
            raw = secrets[name]
            if not isinstance(raw, str):
                raise TypeError(f"secret {name!r}: the value must be a string")
            value = _clean(raw)
            if len(value) >= min_length:
                for form in _normal_forms(value):
                    values.setdefault(form, name)
        self.names = tuple(sorted(set(values.values())))
        self.skipped = tuple(short_secrets(secrets, min_length))
        self._values = tuple((name, value) for value, name in values.items())
        self._needles = self._build_needles()
        # Values with punctuation or non-ASCII letters, as JSON, HTML and string literals escape
        # them (``dlp.escaped``): one more search per such value.
        self._escaped = escaped_forms(self._values)
        self._host_needles = self._build_host_needles()
        # Eight more searches per secret (two alphabets, four offsets) would cost the direct
        # layer a third more: only texts scanned deep (requests, pushes, uploads) pay for them.
        self._base85_needles, self._echo_needles = self._build_base85_needles()
        # Values spelled out with separators between their characters (``dlp.spread``): one
        # more pass over a deep text, and one search per form.
        self._spread = spread_forms(self._values)
        # Letter substitutions (Caesar shifts, atbash), searched in the same skeleton.
        self._shifted = shifted_forms(self._values)
        self.needs_lowered = any(g.lowered for g in self._needles)

    def __repr__(self) -> str:
        return f"KnownSecrets(names={list(self.names)!r}, skipped={list(self.skipped)!r})"

    def values(self) -> tuple[tuple[str, str], ...]:
        """``(name, value)`` per distinct value scanned for (for the fragment index; never logged)."""
        return self._values

    def __bool__(self) -> bool:
        return bool(self._values)

    # -- building ------------------------------------------------------------------------------

    def _build_needles(self) -> tuple[_Group, ...]:
        groups: list[_Group] = []
        seen: set[tuple[str, bool]] = set()

        def needles(forms: Sequence[tuple[str, bool, str, str | None]]) -> list[_Needle]:
            out = []
            for text, lowered, name, encoding in forms:
                if len(text) < (self.min_length if encoding is None else min(6, self.min_length)):
                    continue  # a core this short (tiny secrets at odd offsets) would match by chance
                if (text, lowered) not in seen:
                    seen.add((text, lowered))
                    out.append(_Needle(text, lowered, name, encoding))
            return out

        for name, value in self._values:
            data = value.encode("utf-8")
            raw_forms: list[tuple[str, bool, str, str | None]] = [(value, False, name, None)]
            as_bytes = data.decode("latin-1")
            if as_bytes != value:
                raw_forms.append((as_bytes, False, name, None))  # UTF-8 bytes, as the latin-1 view of a body shows them
            raw_forms += [(form, False, name, "url") for form in url_partial_forms(value)]
            found = needles(raw_forms)
            if found:
                groups.extend(_group(found, _UNRESERVED))
            singles = [(value[::-1], False, name, "reversed"), (data.hex(), True, name, "hex"),
                       (url_full(data), True, name, "url")]
            # ROT13 (``tr A-Za-z N-ZA-Mn-za-m``, ``codecs``): as cheap to undo as reversing; in any
            # case when the value is long enough to be searched without case.
            rot13 = codecs.encode(value, "rot13")
            if rot13 != value:
                caseless = len(value) >= MIN_CASELESS_LENGTH
                singles.append((ascii_lower(rot13) if caseless else rot13, caseless, name, "rot13"))
            for single in needles(singles):
                groups.append(_Group(single.text, single.lowered, [(single, 0)]))
            # Cheap whole-value forms of common tools: ``base32`` (upper-case, searched without
            # case), ``xxd``/``od``-style hex with blanks, UTF-16 (PowerShell, .NET) and its base64.
            utf16 = value.encode("utf-16-le")
            extra = [(b32_cores(data)[0], True, name, "base32"), (b64_cores(utf16)[0], False, name, "utf-16+base64"),
                     (data.hex(" "), True, name, "hex"),
                     (utf16.decode("latin-1"), False, name, "utf-16"),
                     (value.encode("utf-16-be").decode("latin-1"), False, name, "utf-16")]
            for single in needles(extra):
                groups.append(_Group(single.text, single.lowered, [(single, 0)]))
            caseless = ascii_lower(value)
            if len(value) >= MIN_CASELESS_LENGTH and (caseless, True) not in seen and caseless != value.upper():
                seen.add((caseless, True))
                groups.append(_Group(caseless, True, [(_Needle(caseless, True, name, "case", value), 0)]))
            for core in b64_cores(data):
                found = needles([(core, False, name, "base64"), (urlsafe(core), False, name, "base64")])
                if found:
                    groups.extend(_group(found, _B64_PLAIN))
        return tuple(groups)

    def _build_base85_needles(self) -> tuple[tuple[_Group, ...], tuple[_Group, ...]]:
        """The forms searched in texts scanned deep; and of them, those searched in answers too
        (``find_base85(echoes=True)``: base85, ascii85, uuencode)."""
        groups: list[_Group] = []
        seen: set[str] = set()
        for name, value in self._values:
            data = value.encode("utf-8")
            forms = [(core, "base85") for core in b85_cores(data)] + [(core, "ascii85") for core in a85_cores(data)]
            # uuencode: base64's groups in another alphabet (zero as a blank or a backquote).
            forms += [(core.translate(table), "uuencode") for core in b64_cores(data) for table in _UU_TABLES]
            forms += _more_forms(value, data)
            # Every other character, one half per request or field: each half gives away half
            # the value. Long values only: a half of ten characters does not occur by chance.
            if len(value) >= 2 * MIN_HALF:
                forms += [(value[::2], "every-other"), (value[1::2], "every-other")]
            for text, encoding in forms:
                if len(text) >= MIN_B85_CORE and text not in seen:
                    seen.add(text)
                    groups.append(_Group(text, False, [(_Needle(text, False, name, encoding), 0)]))
        echoed = tuple(g for g in groups if g.forms[0][0].encoding in _ECHOED_FORMS)
        return _either_case(groups), echoed

    def _build_host_needles(self) -> tuple[_Needle, ...]:
        # DNS names are case-insensitive and proxies lower-case them: every form is lower-cased,
        # and base32 (the usual DNS-tunnelling alphabet) joins the list.
        needles: list[_Needle] = []
        seen: set[str] = set()
        for name, value in self._values:
            data = value.encode("utf-8")
            forms: list[tuple[str, str | None]] = [(value.lower(), None), (value[::-1].lower(), "reversed"),
                                                   (data.hex(), "hex")]
            forms += [(core, "base32") for core in b32_cores(data)]
            forms += [(urlsafe(core).lower(), "base64") for core in b64_cores(data)]
            for text, encoding in forms:
                if len(text) >= 6 and text not in seen:
                    seen.add(text)
                    needles.append(_Needle(text, True, name, encoding))
        return tuple(needles)

    # -- searching -----------------------------------------------------------------------------

    def search_anchors(self) -> list[tuple[str, bool, list[str]]]:
        """``(text, lowered, forms)`` per search this module makes: each of the ``forms`` (of
        the bottle's secrets) contains ``text`` (``lowered``: searched in the ASCII-lower-cased
        text), and every form is in one such list. For the prefilter of streamed bodies."""
        return ([(g.anchor, g.lowered, [n.text for n, _ in g.forms]) for g in self._needles]
                + [(f.anchor, False, [f.widest]) for f in self._escaped])

    def longest_form(self) -> int:
        """The longest text a hit of ``find`` can span: a hit that crosses a point of a text lies
        within this many characters of it on either side, and is found there alike (each form is
        a literal, or an escaped form matched from its anchor over at most this much)."""
        return max([len(n.text) for g in self._needles for n, _ in g.forms]
                   + [len(f.widest) for f in self._escaped], default=0)

    def find(self, text: str, lowered: str | None = None) -> list[KnownHit]:
        """Every occurrence of every form of every secret in ``text``."""
        if not self._needles or not text:
            return []
        low = lowered if lowered is not None else (ascii_lower(text) if self.needs_lowered else text)
        hits = _search(self._needles, text, low)
        for start, end, name in find_escaped(self._escaped, text):
            hits.append(KnownHit(start, end, name, "escaped"))
        return hits

    def find_base85(self, text: str, *, echoes: bool = False) -> list[KnownHit]:
        """Every occurrence of the base85 and ascii85 cores of every secret in ``text`` (and the
        other forms ``find`` leaves out, see ``__init__``; with ``echoes``, only those an
        upstream's answer is searched for), also across the line breaks of a wrapped block
        (``wrapped_blocks``)."""
        needles = self._echo_needles if echoes else self._base85_needles
        if not needles or not text:
            return []
        hits = _search_runs(needles, text)
        if "\n" in text:
            hits += _across_breaks(needles, text, wrapped_blocks(text))
        return hits

    def find_spread(self, text: str | bytes | bytearray) -> list[KnownHit]:
        """Every secret spelled out with separators between its characters (``dlp.spread``);
        offsets into ``text`` (characters, or bytes for ``bytes``)."""
        return [KnownHit(h.start, h.end, h.secret_name, h.encoding)
                for h in find_spread(self._spread, text, self._shifted)]

    def find_deep(self, text: str, *, spread: bool = True) -> list[KnownHit]:
        """The forms only texts scanned deep are searched for: base85/ascii85 and, with
        ``spread``, values spelled out with separators."""
        hits = self.find_base85(text)
        if spread:
            hits += self.find_spread(text)
        return hits

    def find_in_host(self, host: str) -> list[KnownHit]:
        """Secrets carried in a host name: in one label, or spread over several (dots removed).

        Offsets refer to ``host`` itself (lower-cased by the caller or not: matching ignores case).
        """
        if not self._host_needles or not host:
            return []
        low = host.lower()
        joined_chars: list[int] = [i for i, ch in enumerate(low) if ch != "."]
        joined = "".join(low[i] for i in joined_chars)
        hits: list[KnownHit] = []
        for needle in self._host_needles:
            for hay, mapped in ((low, False), (joined, True)):
                at = hay.find(needle.text)
                while at >= 0:
                    end = at + len(needle.text)
                    if mapped:
                        start, stop = joined_chars[at], joined_chars[end - 1] + 1
                    else:
                        start, stop = at, end
                    hits.append(KnownHit(start, stop, needle.name, needle.encoding))
                    at = hay.find(needle.text, at + 1)
        return hits

    # -- splits --------------------------------------------------------------------------------

    def split_cover(self, fragments: Iterable[tuple[int, str]]) -> list[tuple[str, list[int]]]:
        """Secrets wholly covered by two or more of ``fragments`` (each ``(field index, text)``),
        in any order: a secret cut into query parameters or JSON fields and sent in pieces.

        Each fragment is tried raw and, when it has the shape, hex- and base64-decoded. Returns
        ``(secret name, [field indices used])`` per secret found.
        """
        if not self._values:
            return []
        candidates: list[tuple[int, str]] = []
        for index, text in fragments:
            for form in fragment_forms(text):
                if len(form) >= MIN_FRAGMENT:
                    candidates.append((index, form))
        found: list[tuple[str, list[int]]] = []
        for name, value in self._values:
            covered: list[tuple[int, int, int]] = []  # (start, end, field)
            for index, form in candidates:
                if len(form) >= len(value) or form not in value:
                    continue
                at = value.find(form)
                while at >= 0:
                    covered.append((at, at + len(form), index))
                    at = value.find(form, at + 1)
            if not covered:
                continue
            fields = _covering_fields(covered, len(value))
            if fields is not None and len(fields) >= 2:
                found.append((name, fields))
        return found


# The forms of ``_build_base85_needles`` an answer is searched for as well: what an upstream
# reflecting a value in its own way could plausibly write (the rest are an agent's disguises).
_ECHOED_FORMS = frozenset({"base85", "ascii85", "uuencode"})
# base32hex (RFC 4648's "extended hex" alphabet: ``basenc --base32hex``), from base32's lower case.
_B32HEX = str.maketrans("abcdefghijklmnopqrstuvwxyz234567", "0123456789abcdefghijklmnopqrstuv")
# ROT47: every printable ASCII character but the blank shifted by 47 (``tr '!-~' 'P-~!-O'``).
_ROT47 = str.maketrans({chr(c): chr(33 + (c - 33 + 47) % 94) for c in range(33, 127)})


def _more_forms(value: str, data: bytes) -> list[tuple[str, str]]:
    """Forms searched with base85's (texts scanned deep): base32hex in either case, base64 read
    backwards (``base64 | rev``) in both alphabets, and ROT47."""
    forms: list[tuple[str, str]] = []
    for core in b32_cores(data):
        hexed = core.translate(_B32HEX)
        forms += [(hexed, "base32hex"), (hexed.upper(), "base32hex")]
    for core in b64_cores(data):
        forms += [(core[::-1], "reversed+base64"), (urlsafe(core)[::-1], "reversed+base64")]
    rot47 = value.translate(_ROT47)
    if rot47 != value:  # a value without printable ASCII is its own ROT47: found as it is
        forms.append((rot47, "rot47"))
    return forms


# From this length on, a text is first asked which characters of the anchors it holds: an anchor
# with a character the text lacks (base85 cores are full of punctuation that code or JSON may
# never use) costs no pass. Each character is one ``in`` (memchr), remembered for the text.
GATE_MIN_TEXT = 1 << 16


def _either_case(groups: list[_Group]) -> tuple[_Group, ...]:
    """``groups``, each base32hex form linked to the same form in the other case (``_more_forms``
    makes both): code and prose hold both cases' letters, and each search is a full pass."""
    first_of: dict[str, _Group] = {}
    for group in groups:
        if group.forms[0][0].encoding != "base32hex" or not group.anchor.isascii():
            continue
        key = ascii_lower(group.anchor)
        first = first_of.setdefault(key, group)
        if first is not group and first.twin is None:
            first.twin, group.twin = group, first
    return tuple(groups)


def _search(groups: Sequence[_Group], text: str, low: str, gate: _CharGate | None = None) -> list[KnownHit]:
    """Every form of ``groups`` in ``text`` (``low``: its lower-cased copy, or itself); ``gate``:
    the text's ``_CharGate`` when the caller made one."""
    hits: list[KnownHit] = []
    # UTF-16 forms hold NULs: a text without one (any single file) cannot hold them.
    has_nul = "\x00" in text
    gated = len(text) >= GATE_MIN_TEXT
    if gated and gate is None:
        gate = _CharGate(text)
    gate_low = (gate if low is text else _CharGate(low)) if gated else None
    twins_low: str | None = None  # the lower-cased text, made for the first pair of twins
    searched: set[int] = set()  # twins already found with their pair
    for group in groups:
        if (group.nul and not has_nul) or id(group) in searched:
            continue
        hay = low if group.lowered else text
        if gate is not None:
            asked = gate_low if group.lowered else gate
            if asked is not None and not asked.holds_all(group.chars):
                continue
        twin = group.twin
        if twin is not None and gate is not None and not group.lowered and gate.holds_all(twin.chars):
            # Both cases' letters occur: one search in the lower-cased text, each form then
            # confirmed in the text as it is (a mixed-case string is neither).
            searched.add(id(twin))
            if twins_low is None:
                twins_low = low if low is not text else ascii_lower(text)
            hits += _confirmed(twins_low, ascii_lower(group.anchor), group.forms + twin.forms, text, text)
            continue
        hits += _confirmed(hay, group.anchor, group.forms, hay, text)
    return hits


# Blanks, line breaks and NUL: no base85, ascii85, base32hex, ROT47 or every-other form of a value
# without them holds one, so such a form lies inside a run of other characters at least as long
# as itself. Prose and code are mostly short runs between blanks: those forms are searched only in
# the long runs, joined by a line break (``_search_runs``).
_BREAKS = " \t\n\r\x0b\x0c\x00"
_RUN_MAP = bytes(0x20 if chr(b) in _BREAKS else 0x41 for b in range(256))
# Finding a large text's long runs costs about this many searches of it.
RUNS_WORTH = 32
# A text with fewer breaks than one in this many characters is mostly long runs (random bytes:
# one in 36; prose and code: one in five or six): searched whole.
RUNS_SPARSE = 16


def _search_runs(groups: Sequence[_Group], text: str) -> list[KnownHit]:
    """``_search(groups, text, text)`` (the same hits, not in the same order); in a large text, the
    groups whose forms hold no ``_BREAKS`` character only in its runs without one that are long
    enough to hold a form, when enough of them can be there for the runs to be worth finding
    (each search left out is a pass over the text; finding the runs costs about ``RUNS_WORTH``
    passes)."""
    if len(text) < GATE_MIN_TEXT:
        return _search(groups, text, text)
    gate = _CharGate(text)
    runs_only = [g for g in groups if _unbroken(g) and gate.holds_all(g.chars)]
    if len(runs_only) < RUNS_WORTH:
        return _search(groups, text, text, gate)
    if _sparse_breaks(text[:GATE_MIN_TEXT].encode("latin-1", "replace").translate(_RUN_MAP)):
        return _search(groups, text, text, gate)  # its start says: long runs, most of the text
    shape = text.encode("latin-1", "replace").translate(_RUN_MAP)  # "?" for wider characters: same offsets
    if _sparse_breaks(shape):
        return _search(groups, text, text, gate)  # long runs (binary data, base64): most of the text
    runs_only = _in_long_runs(runs_only)
    shortest = min(len(n.text) for g in runs_only for n, _ in g.forms)
    spans = [m.span() for m in re.finditer(b"A" * shortest + b"A*+", shape)]
    kept = set(map(id, runs_only))
    hits = _search([g for g in groups if id(g) not in kept], text, text, gate)
    if not spans:
        return hits
    joined = "\n".join(text[a:b] for a, b in spans)
    found = _search(runs_only, joined, joined)
    if found:
        joined_starts = list(itertools.accumulate((b - a + 1 for a, b in spans[:-1]), initial=0))
        for hit in found:
            k = bisect.bisect_right(joined_starts, hit.start) - 1
            base = spans[k][0] - joined_starts[k]
            hits.append(KnownHit(hit.start + base, hit.end + base, hit.secret_name, hit.encoding))
    return hits


# The halves of a value sent every other character are half its length, the other deep forms
# about as long as the value or longer: the few short ones are searched in the whole text, so
# that the runs the long ones are searched in can be longer, fewer and quicker to find (in code,
# runs of 24 characters or more are a fifth of those of 12, and a tenth of the text).
LONG_RUN = 20


def _in_long_runs(runs_only: list[_Group]) -> list[_Group]:
    """The groups of ``runs_only`` to search in the runs of a text: those whose forms are at least
    ``LONG_RUN`` long when they are ``RUNS_WORTH`` or more and the others few, else all."""
    long = [g for g in runs_only if all(len(n.text) >= LONG_RUN for n, _ in _with_twin(g))]
    if len(long) >= RUNS_WORTH and len(runs_only) - len(long) < RUNS_WORTH:
        return long
    return runs_only


def _with_twin(group: _Group) -> list[tuple[_Needle, int]]:
    return group.forms + (group.twin.forms if group.twin is not None else [])


def _sparse_breaks(shape: bytes) -> bool:
    """Whether fewer than one character in ``RUNS_SPARSE`` of ``shape`` (``_RUN_MAP``) is a break."""
    return shape.count(b" ") * RUNS_SPARSE < len(shape)


def _unbroken(group: _Group) -> bool:
    """Whether no form of ``group`` (or of its twin, searched with it) holds a ``_BREAKS`` character."""
    return all(ch not in _BREAKS for n, _ in _with_twin(group) for ch in n.text)


def _confirmed(hay: str, anchor: str, forms: list[tuple[_Needle, int]], confirm: str, text: str) -> list[KnownHit]:
    """The ``forms`` found where ``anchor`` occurs in ``hay``, each confirmed in ``confirm``."""
    hits: list[KnownHit] = []
    at = hay.find(anchor)
    while at >= 0:
        for needle, offset in forms:
            start = at - offset
            if start >= 0 and confirm.startswith(needle.text, start):
                if needle.exact is not None and text.startswith(needle.exact, start):
                    continue
                hits.append(KnownHit(start, start + len(needle.text), needle.name, needle.encoding))
        at = hay.find(anchor, at + 1)
    return hits


class _CharGate:
    """Which characters a large text holds, each asked once. A character below U+0100 is looked
    for in the text's latin-1 bytes ("?" for wider characters) when the text is stored wide (a
    layer holding one CJK character or emoji): one ``memchr`` there, where ``in`` on the text
    itself walks two or four bytes per character, and hundreds of anchors ask."""

    __slots__ = ("text", "held", "_narrow")

    def __init__(self, text: str) -> None:
        self.text = text
        self.held: dict[str, bool] = {}
        self._narrow: bytes | None = None

    def holds_all(self, chars: str) -> bool:
        held = self.held
        for ch in chars:
            there = held.get(ch)
            if there is None:
                there = held[ch] = self._holds(ch)
            if not there:
                return False
        return True

    def _holds(self, ch: str) -> bool:
        text = self.text
        if text.isascii() or ord(ch) > 0xFF or ch == "?":
            return ch in text
        if self._narrow is None:
            self._narrow = text.encode("latin-1", "replace")
        return ch.encode("latin-1") in self._narrow


# Base85 and ascii85 wrapped into lines (PDF and PostScript streams, ``a85encode(wrapcol=...)``,
# any tool that wraps at 64, 72, 76 or 80 columns): lines of printable ASCII without blanks (both
# alphabets are nearly all of it), every line but the last at least ``WRAP_MIN`` wide. A byte view
# maps such characters to "A" and keeps line breaks, so a block starts at a literal "AAA..." the
# regex engine skips ahead to, and one possessive match (no backtracking) follows its lines.
WRAP_MIN = 40
_LINE_MAP = bytes(0x41 if 0x21 <= b <= 0x7E else (b if b in (0x00, 0x0A, 0x0D) else 0x20) for b in range(256))
_LONG_LINE = re.compile(b"A" * WRAP_MIN + b"A*+")
# A short last line is a whole line (up to a line break, the end, or the NUL between joined
# texts): a long line followed by the first word of a line of code or prose is no block.
_MORE_LINES = re.compile(rb"(?:\r?\nA{%d,}+)*+(?:\r?\nA++(?=[\r\n\x00]|\Z))?+" % WRAP_MIN)
# A long line and the lines that follow it in one match (one regex call per long line instead of
# two: a MiB of source code holds thousands of long lines, nearly all alone). Every quantifier is
# possessive, so each match is what ``_LONG_LINE`` then ``_MORE_LINES`` would take.
_BLOCK = re.compile(_LONG_LINE.pattern + b"(" + _MORE_LINES.pattern + b")")
_LINE_BREAK = re.compile(r"\r?\n")


_LONG_LINE_START = b"A" * WRAP_MIN
# Long lines are found with ``bytes.find``, which skips ahead by the length of what it looks for
# where a blank or line break is (the regex engine walks every character), then each is matched
# on its own: code has a few hundred per MiB. A text with more than one per ``BLOCK_FIND_SPAN``
# characters (thousands of long lines, each alone) is left to the regex, which is then cheaper.
BLOCK_FIND_SPAN = 1024
BLOCK_FINDS_LEAST = 64


def wrapped_blocks(text: str) -> list[tuple[int, int]]:
    """The spans of ``text`` that are blocks of two lines or more of wrapped printable text."""
    shape = text.encode("latin-1", "replace").translate(_LINE_MAP)  # "?" for wider characters: same offsets
    blocks: list[tuple[int, int]] = []
    at = shape.find(_LONG_LINE_START)
    for _ in range(BLOCK_FINDS_LEAST + len(shape) // BLOCK_FIND_SPAN):
        if at < 0:
            return blocks
        # ``_BLOCK`` matches wherever its first long line does (all that follows is optional):
        # the match at the first long line is the one ``finditer`` would find.
        m = _BLOCK.match(shape, at)
        assert m is not None
        if m.end(1) > m.start(1):
            blocks.append(m.span())
        at = shape.find(_LONG_LINE_START, m.end())
    if at < 0:
        return blocks
    return blocks + [m.span() for m in _BLOCK.finditer(shape, at) if m.end(1) > m.start(1)]


def _across_breaks(groups: Sequence[_Group], text: str, blocks: list[tuple[int, int]]) -> list[KnownHit]:
    """The forms found in the ``blocks`` of ``text`` with their line breaks removed that cross one
    (the others are found as the text is), placed on the text as sent, line breaks included.
    All blocks are searched as one text (NUL between blocks, which no form holds): a text of
    thousands of short blocks costs one search per form, not one per block and form.

    Each block loses its line breaks in two ``str.replace`` calls (its only carriage returns are
    those before a line feed): a MiB of wrapped base64 is thousands of lines. The map from the
    joined text back to the lines is made only for the blocks a form is found in, rarely any."""
    if not blocks:
        return []
    joined_starts: list[int] = []  # where each block starts in the joined text
    pieces: list[str] = []
    length = 0
    for start, end in blocks:
        joined_starts.append(length)
        piece = text[start:end].replace("\r\n", "").replace("\n", "") + "\x00"
        pieces.append(piece)
        length += len(piece)
    joined = "".join(pieces)
    lines: dict[int, tuple[list[int], list[int]]] = {}

    def parent(at: int) -> tuple[tuple[int, int], int]:
        k = bisect.bisect_right(joined_starts, at) - 1
        parents, starts = lines.get(k) or lines.setdefault(k, _block_lines(text, *blocks[k]))
        line = bisect.bisect_right(starts, at - joined_starts[k]) - 1
        return (k, line), parents[line] + at - joined_starts[k] - starts[line]

    out = []
    for hit in _search(groups, joined, joined):
        first, hit_start = parent(hit.start)
        last, hit_last = parent(hit.end - 1)
        if first != last:
            out.append(KnownHit(hit_start, hit_last + 1, hit.secret_name, hit.encoding))
    return out


def _block_lines(text: str, start: int, end: int) -> tuple[list[int], list[int]]:
    """Where each line of the block ``text[start:end]`` starts in ``text``, and in the block with
    its line breaks removed."""
    parents: list[int] = []
    starts: list[int] = []
    line_start = start
    length = 0
    for m in _LINE_BREAK.finditer(text, start, end):
        parents.append(line_start)
        starts.append(length)
        length += m.start() - line_start
        line_start = m.end()
    parents.append(line_start)
    starts.append(length)
    return parents, starts


def fragment_forms(text: str) -> list[str]:
    forms = [text]
    stripped = text.strip()
    if 8 <= len(stripped) <= 4096:
        if len(stripped) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in stripped[:64]):
            try:
                forms.append(bytes.fromhex(stripped).decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                pass
        try:
            padded = stripped + "=" * (-len(stripped) % 4)
            decoded = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
            forms.append(decoded.decode("utf-8"))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            pass
    return forms


def _covering_fields(spans: list[tuple[int, int, int]], length: int) -> list[int] | None:
    """Greedy interval cover of ``[0, length)``; the fields used, or None when more is left
    uncovered than ``fragments.tolerance`` allows (as across requests: leaving out the last few
    characters, or a piece too short to count, does not get a secret out)."""
    spans.sort()
    allowed_gap = tolerance(length)
    gap = 0
    reach = 0
    used: list[int] = []
    i = 0
    while reach < length:
        best: tuple[int, int, int] | None = None
        while i < len(spans) and spans[i][0] <= reach:
            if best is None or spans[i][1] > best[1]:
                best = spans[i]
            i += 1
        if best is None or best[1] <= reach:
            if i >= len(spans):
                gap += length - reach
                break
            gap += spans[i][0] - reach  # skip to the next piece
            reach = spans[i][0]
            continue
        reach = best[1]
        if best[2] not in used:
            used.append(best[2])
    return sorted(used) if gap <= allowed_gap else None
