"""A cheap first pass over a large plain body: where could any direct-layer detector match?

A streamed upload is scanned in ~1 MiB batches of arbitrary bytes (archives, images, model
weights, logs). Running every detector over every byte costs ~10 ms per MiB; almost all of
that finds nothing. The prefilter finds *candidate regions* in a few passes over the raw bytes
(no decoding to ``str``), and the full direct scan then runs only on windows around them:

- *runs*: every token-format detector's value contains a run of at least ``RUN`` characters
  from ``RUN_CHARS`` (base64/base64url/hex/percent-encoding characters plus ``.``), or has one
  within a few hundred characters after its start (a private key block's material); each
  detector declares that with ``Detector.run_min``. The batch is mapped byte-wise onto two
  symbols (``bytes.translate``) and ``RUN`` of the run symbol is searched as one literal, which
  CPython's substring search skips through at GB/s. Random or binary data has almost no such
  runs (a byte is a run character with p ~ 0.27, twelve in a row ~ 1e-7 per position);
- *keywords*: the always-on assignment detectors (``password = ...``) declare the keywords
  (``Detector.probes``) every match contains, each followed by a quote, a blank or an operator.
  In a second three-symbol view (the keywords' letters in either case, those followers,
  everything else) the shortest keyword plus a follower is one literal; each occurrence is
  confirmed on the bytes, so random data costs one search, not one per keyword;
- *known secrets*: a form of the bottle's secrets that is itself such a run (hex, ``%xx``, base64
  cores, a token-like value) is left to the run search; the others (a value with punctuation,
  reversed) are searched as bytes by their ``KnownSecrets`` anchors, precomputed once per bottle.

Over binary data (a *sparse* batch: few, short stretches of printable text, ``text_view``) the
runs and the needles that are all text are searched only inside those stretches, where any of
them must lie; the stretches serve the decoded layer too (``Scanner.scan_batch``). Needles that
find the same places are searched once (``_fewer_needles``).

Windows reach ``BEFORE`` bytes before and ``AFTER`` bytes past a candidate: more than any
detector's look-around (the value of an assignment within 256 characters, a JWT or a private
key block within 64 KiB of its start, an Azure SAS signature's ``sv=`` within 2 KiB) so the
window scan reports what a scan of the whole batch would (one difference: an assignment on a
line that started more than ``BEFORE`` bytes earlier is judged as if the line started at the
window, which can only add a hit, except when an ``export`` sits exactly at the cut). When the windows would cover most of
the batch (source code, logs: text full of ``key``/``token``), the whole batch is scanned as
before, and the prefilter has cost a pass or two.

The prefilter is only used when it can vouch for every enabled detector: with entropy detection
on (any long random token), or a detector without ``run_min``/``probes``, ``windows`` returns None
and the caller scans the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot_bottle.sidecar.dlp.known import KnownSecrets
from bot_bottle.sidecar.dlp.tokens import PROBE_FOLLOWERS, RUN, RUN_CHARS, TokenScanner

# Window reach around a candidate, in bytes. AFTER covers a JWT or a private key block (64 KiB
# from the run inside it) plus context; BEFORE covers a key name and its line, the header of a
# private key block before its material, and the ``sv=`` an Azure SAS signature needs.
BEFORE = 8 * 1024
AFTER = 72 * 1024
KEYWORD_AFTER = 4 * 1024  # an assignment's value is at most 256 characters past its keyword
# A needle is not shortened below this (a NUL-stripped UTF-16 form of a short value).
_MIN_NEEDLE = 8
# Above this share of the batch covered by windows, one whole-batch scan is cheaper.
WHOLE_SHARE = 0.5
# Keyword candidates to confirm before giving up on a batch (plus one per 8 KiB): random data
# has a few dozen per MiB, text thousands, and confirming each costs a microsecond.
CANDIDATE_BUDGET = 64

_RUN_SYMBOL = b"a"
_RUN_TABLE = bytes(_RUN_SYMBOL[0] if chr(i) in RUN_CHARS else 0 for i in range(256))
_RUN_NEEDLE = _RUN_SYMBOL * RUN
# The keyword view: the keywords' letters become one symbol, the characters that may follow a
# keyword another, everything else a third.
_KEY_LETTER = b"k"
_FOLD = b"="


@dataclass(frozen=True)
class _Needle:
    text: bytes
    lowered: bool  # searched in the lower-cased bytes
    reach: int  # how far the whole form can extend around the found text

    @property
    def printable(self) -> bool:
        """Only ever inside a stretch of text (``TextView.stretches``): all of it is text, and
        it is at least as long as the shortest stretch."""
        return len(self.text) >= RUN and not self.text.translate(TEXT_SHAPE).strip(b"A")


# Printable ASCII and the line-breaking whitespace (wrapped base64) become "A", every other byte
# a blank: a stretch of text is then a run of "A" that ``find`` skips ahead to. Lower-casing
# moves no byte from one class to the other.
TEXT_SHAPE = bytes(0x41 if 0x20 <= b < 0x7F or b in (0x09, 0x0A, 0x0D) else 0x20 for b in range(256))
_STRETCH = b"A" * RUN
# A batch whose stretches of text are at most this many (plus one per 16 KiB) and cover at most
# this share of it is binary with a few chance stretches: searched only there.
SPARSE_STRETCHES = 64
SPARSE_SHARE = 1 / 8
# Below this size (a decoded layer's piece) the shape is not made just for the prefilter.
SPARSE_MIN = 64 * 1024


@dataclass(frozen=True)
class TextView:
    """A batch's stretches of text: the maximal runs of ``RUN`` bytes or more of printable ASCII
    and line-breaking whitespace, where every run of ``RUN_CHARS``, every needle that is all text
    and every encoded value lies. ``sparse``: they are few and small (random or compressed data)."""

    stretches: list[tuple[int, int]]
    sparse: bool


def text_view(data: bytes | bytearray) -> TextView:
    """One ``translate`` and a ``find`` per stretch: shared by the prefilter and the decoded layer."""
    shape = data.translate(TEXT_SHAPE)
    size = len(shape)
    stretches: list[tuple[int, int]] = []
    covered = 0
    start = shape.find(_STRETCH)
    while start != -1:
        end = shape.find(b" ", start + RUN)
        end = size if end == -1 else end
        stretches.append((start, end))
        covered += end - start
        start = shape.find(_STRETCH, end)
    sparse = len(stretches) <= SPARSE_STRETCHES + size // 16384 and covered <= SPARSE_SHARE * size
    return TextView(stretches, sparse)


class Prefilter:
    """Built once per scanner (per bottle): the literals to search, as bytes."""

    def __init__(self, tokens: TokenScanner, known: KnownSecrets, *, use_tokens: bool, use_known: bool,
                 entropy: bool) -> None:
        self.usable = not entropy
        self.use_runs = False
        probes: list[str] = []
        if use_tokens:
            for det in tokens.detectors:
                if det.probes:
                    probes.extend(det.probes)
                elif det.run_min >= RUN:
                    self.use_runs = True
                else:
                    self.usable = False  # a detector the prefilter cannot vouch for
        self.probes = tuple(dict.fromkeys(p.lower().encode("ascii") for p in probes))
        # Keywords are found as a run of their letters followed by a follower, in a view where
        # their letters (either case) are one symbol and followers another: one search for
        # all of them; each candidate is then confirmed on the bytes themselves.
        letters = {c for p in self.probes for c in p.decode("ascii")}
        self._keyword_table = bytes(
            _KEY_LETTER[0] if chr(i).lower() in letters and chr(i).isascii()
            else (_FOLD[0] if chr(i) in PROBE_FOLLOWERS else 0)
            for i in range(256)
        )
        shortest = min((len(p) for p in self.probes), default=0)
        self._keyword_needle = _KEY_LETTER * shortest + _FOLD
        self._longest_probe = max((len(p) for p in self.probes), default=0)
        self.needles: tuple[_Needle, ...] = ()
        if use_known and known:
            needles: list[_Needle] = []
            for anchor, lowered, forms in known.search_anchors():
                if all(len(form) >= RUN and all(ch in RUN_CHARS for ch in form) for form in forms):
                    self.use_runs = True  # each form is itself a run: the run search finds it
                    continue
                try:
                    text = anchor.encode("latin-1")
                except UnicodeEncodeError:
                    continue  # not in a byte-for-byte view of any body: cannot match there
                needles.append(_Needle(text, lowered, max(len(form) for form in forms)))
            self.needles = _fewer_needles(needles)
        # Over binary data (a sparse ``TextView``): needles that are all text are searched in its
        # stretches only, the others (UTF-16 forms, short ones) everywhere. A cheap gate for the
        # UTF-16 ones ("A NUL A NUL ..." in the shape) costs more than their own searches:
        # printable bytes are frequent in random data, and ``find`` skips little past them.
        self._in_text = [n for n in self.needles if n.printable]
        self._anywhere = [n for n in self.needles if not n.printable]

    def windows(self, data: bytes | bytearray, view: TextView | None = None) -> list[tuple[int, int]] | None:
        """Disjoint ``(start, end)`` windows of ``data`` that hold every possible direct-layer
        hit, in order; ``[]`` when nothing can match; None when the whole of ``data`` should be
        scanned (the prefilter cannot vouch for a detector, or candidates are everywhere).
        ``view``: ``text_view(data)``, when the caller has it already."""
        if not self.usable:
            return None
        size = len(data)
        limit = WHOLE_SHARE * size
        regions: list[tuple[int, int]] = []
        bail = _Bail(size, limit)
        # Keywords first: in text they are frequent, and the bail-out comes early.
        if self.probes:
            mapped = data.translate(self._keyword_table)
            needle = self._keyword_needle
            at = mapped.find(needle)
            budget = CANDIDATE_BUDGET + size // 8192
            while at >= 0:
                budget -= 1
                if budget < 0:
                    return None  # prose or code: words before blanks everywhere, scan it whole
                follower = at + len(needle) - 1
                word = data[max(0, follower - self._longest_probe) : follower].lower()
                if word.endswith(self.probes):
                    regions.append((follower - BEFORE, follower + KEYWORD_AFTER))
                    if bail.due(regions):
                        return None
                at = mapped.find(needle, follower + 1)
            # Freed before the next view is made: the allocator hands the same (warm) memory
            # back, where a second fresh megabyte costs page faults, about a third of a pass.
            del mapped
        if view is None and size >= SPARSE_MIN and (self.needles or self.use_runs):
            view = text_view(data)
        if view is not None and view.sparse:
            # Binary data: what lies in printable text is searched only in its few stretches.
            for start, end in view.stretches:
                piece = data[start:end]
                if self._find_needles(piece, self._in_text, regions, bail, start) or (
                        self.use_runs and self._find_runs(piece, regions, bail, start)):
                    return None
            if self._find_needles(data, self._anywhere, regions, bail, 0):
                return None
        elif self._find_needles(data, list(self.needles), regions, bail, 0) or (
                self.use_runs and self._find_runs(data, regions, bail, 0)):
            return None
        merged = _merge(regions, size)
        if sum(end - start for start, end in merged) > limit:
            return None
        return merged

    @staticmethod
    def _find_needles(data: bytes | bytearray, needles: list[_Needle], regions: list[tuple[int, int]],
                      bail: _Bail, base: int) -> bool:
        """Add the windows of ``needles`` found in ``data``, which starts at ``base`` in the
        batch; True when the windows cover too much."""
        lowered = b""
        for n in needles:
            if n.lowered and not lowered:
                lowered = data.lower()
            hay = lowered if n.lowered else data
            at = hay.find(n.text)
            while at >= 0:
                regions.append((base + at - BEFORE - n.reach, base + at + n.reach + KEYWORD_AFTER))
                if bail.due(regions):
                    return True
                at = hay.find(n.text, at + 1)
        return False

    @staticmethod
    def _find_runs(data: bytes | bytearray, regions: list[tuple[int, int]], bail: _Bail, base: int) -> bool:
        """Add the windows of the runs (``RUN`` or more of ``RUN_CHARS``) in ``data``, which
        starts at ``base`` in the batch; True when the windows cover too much.

        Added merged: once a run's window is open, the last run that starts soon enough to
        join it (found by one ``rfind`` back from the window's reach) extends it, and the runs
        in between add nothing. Text is runs every few bytes: a window per run cost a Python
        step each, thousands per MiB of base64 or code, for the same union."""
        mapped = data.translate(_RUN_TABLE)
        at = mapped.find(_RUN_NEEDLE)
        while at >= 0:
            end = _run_end(mapped, at)
            while True:
                # A run starting within BEFORE of the window's end joins it (``_merge``).
                last = mapped.rfind(_RUN_NEEDLE, end, end + AFTER + BEFORE + RUN)
                if last < 0:
                    break
                end = _run_end(mapped, last)
            regions.append((base + at - BEFORE, base + end + AFTER))
            if bail.due(regions):
                return True
            at = mapped.find(_RUN_NEEDLE, end)
        return False


def _run_end(mapped: bytes | bytearray, at: int) -> int:
    """The end of the run that holds ``RUN`` run characters from ``at``."""
    end = mapped.find(b"\x00", at + RUN)
    return len(mapped) if end < 0 else end


def _fewer_needles(needles: list[_Needle]) -> tuple[_Needle, ...]:
    """Needles that find every place ``needles`` find, in fewer passes over a batch (each is a
    full ``find`` pass, the main cost of the prefilter on random data). A UTF-16 form loses its
    edge NULs, so its two byte orders become one. A needle holding another is left to the other
    (searched lower-cased, it may hold an exact one lower-cased), whose reach grows to cover it.
    Each step only widens what is found; the windows are then scanned in full."""
    reach: dict[tuple[bytes, bool], int] = {}
    for n in needles:
        text, extra = n.text, 0
        core = text.strip(b"\x00")
        if len(core) >= _MIN_NEEDLE:
            # A match of ``text`` holds ``core`` at most this many bytes later.
            text, extra = core, len(text) - len(core)
        key = (text, n.lowered)
        reach[key] = max(reach.get(key, 0), n.reach + extra)
    kept: list[_Needle] = []
    # Shortest first, lower-cased before exact among equals: what holds another comes later.
    for text, lowered in sorted(reach, key=lambda key: (len(key[0]), not key[1])):
        folded = text.lower()
        index = next((i for i, k in enumerate(kept)
                      if k.text in (folded if k.lowered else text) and (k.lowered or not lowered)), None)
        if index is None:
            kept.append(_Needle(text, lowered, reach[(text, lowered)]))
            continue
        inner = kept[index]
        # ``inner`` lies somewhere in ``text``: from its match, the whole form is within this.
        kept[index] = _Needle(inner.text, inner.lowered,
                              max(inner.reach, reach[(text, lowered)] + len(text) - len(inner.text)))
    return tuple(kept)


def _merge(regions: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for start, end in sorted(regions):
        start, end = max(0, start), min(size, end)
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


class _Bail:
    """Whether the windows already cover too much: checked each time the number of regions has
    doubled, so dense candidates cost a few merges, not one per candidate."""

    def __init__(self, size: int, limit: float) -> None:
        self.size = size
        self.limit = limit
        self.next_check = 8

    def due(self, regions: list[tuple[int, int]]) -> bool:
        if len(regions) < self.next_check:
            return False
        self.next_check = 2 * len(regions)
        return sum(end - start for start, end in _merge(regions, self.size)) > self.limit
