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
            self.needles = tuple(needles)

    def windows(self, data: bytes | bytearray) -> list[tuple[int, int]] | None:
        """Disjoint ``(start, end)`` windows of ``data`` that hold every possible direct-layer
        hit, in order; ``[]`` when nothing can match; None when the whole of ``data`` should be
        scanned (the prefilter cannot vouch for a detector, or candidates are everywhere)."""
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
        lowered = b""
        for n in self.needles:
            if n.lowered and not lowered:
                lowered = data.lower()
            hay = lowered if n.lowered else data
            at = hay.find(n.text)
            while at >= 0:
                regions.append((at - BEFORE - n.reach, at + n.reach + KEYWORD_AFTER))
                if bail.due(regions):
                    return None
                at = hay.find(n.text, at + 1)
        if self.use_runs:
            mapped = data.translate(_RUN_TABLE)
            at = mapped.find(_RUN_NEEDLE)
            while at >= 0:
                end = mapped.find(b"\x00", at + RUN)
                if end < 0:
                    end = size
                regions.append((at - BEFORE, end + AFTER))
                if bail.due(regions):
                    return None
                at = mapped.find(_RUN_NEEDLE, end)
        merged = _merge(regions, size)
        if sum(end - start for start, end in merged) > limit:
            return None
        return merged


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
