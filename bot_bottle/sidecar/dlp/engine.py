"""The scanning core: texts in, hits out, shared by every public entry point.

Three layers, cheapest first:

1. *direct*: token formats and every pre-computed form of the known secrets, searched in the
   text as it is (plus its ASCII-lower-cased copy, computed once);
2. *decoded* (``deep``): percent-escapes, base64 runs (gzip inside base64 included) and hex
   runs are decoded and the direct layer runs on the result, up to two levels (base64 inside
   percent-encoding, ...), for all texts of a request in one batch. Hits map back to the encoded
   span in the original text, so redaction replaces what was actually sent;
3. *splits*: the values of a request's fields (query parameters, form and JSON fields, headers)
   are checked together, so a secret cut into pieces is found when the pieces are adjacent (the
   concatenation is scanned around each boundary) or scattered in any order (the pieces cover a
   known secret).

Many small texts (the values of a JSON body) are scanned as one text joined by NUL characters,
which no detector or needle matches across: one pass instead of thousands.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot_bottle.sidecar.dlp.encodings import (
    Decoded,
    ascii_lower,
    decode_runs,
    escaped_regions,
    has_escapes,
    long_packed_runs,
    packed_text,
    percent_decode,
    shifted,
    unescape_readings,
    whole_span,
)
from bot_bottle.sidecar.dlp.charcodes import cast_arrays_joined, decode_code_lists
from bot_bottle.sidecar.dlp.compat import fold_compat
from bot_bottle.sidecar.dlp.dumps import hex_dumps, plain_dumps
from bot_bottle.sidecar.dlp.wide import wide_layers
from bot_bottle.sidecar.dlp.entropy import entropy_spans
from bot_bottle.sidecar.dlp.findings import ENTROPY, HIGH, KNOWN_SECRET, Finding, resolve_overlaps
from bot_bottle.sidecar.dlp.known import KnownSecrets
from bot_bottle.sidecar.dlp.tokens import TokenScanner

KNOWN_SECRET_NAME = "Bottle secret"
ENTROPY_NAME = "High-entropy string"
SEPARATOR = "\x00"
# How far from a field boundary a split value may reach: longer than any token format and than
# a private key block cut in two.
SPLIT_REACH = 4096
# Overlap of the windows a segment longer than ``deep_limit`` is decoded in: an encoded value
# up to this long lies whole in one window (as in ``stream``, where batches overlap as much).
DEEP_OVERLAP = 64 * 1024
# Every decoding but inflation yields at most the size of its input, and there are two levels of
# a few decodings each: a budget this many times the input is only spent by inflating.
DECODE_FACTOR = 8
# Decoded layers at least this large are scanned through ``layer_scan``.
LAYER_PREFILTER_SIZE = 256 * 1024
# Decoded layers whose offsets map back exactly (escapes undone in place).
_EXACT = frozenset({"url", "escape"})
# A value written as ``printf`` octal escapes of three digits each, and nothing else.
_OCTAL_ESCAPES = re.compile(r"(?:\\[0-7]{3})+")


@dataclass(frozen=True)
class RawHit:
    start: int
    end: int
    detector: str
    name: str
    confidence: str
    secret_name: str | None = None
    encoding: str | None = None


@dataclass
class Segment:
    """One text to scan and the place it came from.

    ``location`` is a string, or a function that renders it (JSON paths are rendered only for
    the few segments with findings). ``field`` marks values that take part in split checks.
    """

    location: str | Callable[[], str]
    text: str
    field: bool = False
    deep: bool = True
    scan: bool = True  # False: only part of the split check (its text was scanned elsewhere)
    # A name (a JSON key, a parameter's or a header's name) or a cookie's value: one of the pieces
    # a secret cut up in any order may be in, not a field the adjacent-pieces check joins (names
    # sit between the values and would break every join).
    piece: bool = False
    # A field that starts a new run for the adjacent-pieces check: not joined with the field
    # before it (the cookies' values one by one, after the headers' whole texts, which hold
    # "name=" before each value and would read on into them).
    fresh: bool = False

    def where(self) -> str:
        return self.location if isinstance(self.location, str) else self.location()


@dataclass
class Hit:
    """A raw hit placed in a segment; ``parts`` lists every (segment, start, end) a split covers."""

    segment: int
    raw: RawHit
    parts: list[tuple[int, int, int]] = field(default_factory=list)

    def spans(self) -> list[tuple[int, int, int]]:
        return self.parts or [(self.segment, self.raw.start, self.raw.end)]


@dataclass(frozen=True)
class EngineOptions:
    tokens: bool = True
    known_secrets: bool = True
    entropy: bool = False
    entropy_min_length: int = 24
    entropy_threshold: float = 4.0
    deep_limit: int = 2 * 1024 * 1024  # longer segments are decoded in overlapping windows this long
    # Decoded bytes per scan, against inputs of pure runs and inflation bombs: this much plus
    # ``DECODE_FACTOR`` times the text to decode, so a large legitimate body never runs out.
    decode_budget: int = 4 * 1024 * 1024
    max_split_fields: int = 5000


class Engine:
    def __init__(self, tokens: TokenScanner, known: KnownSecrets, options: EngineOptions) -> None:
        self.tokens = tokens
        self.known = known
        self.options = options
        # Same hits as ``direct``, faster on large texts (``Scanner`` sets its prefiltered scan).
        self.layer_scan: Callable[[str], list[RawHit]] | None = None
        self._need_lowered = (options.tokens and tokens.needs_lowered) or (
            options.known_secrets and known.needs_lowered
        )

    # -- layer 1 -------------------------------------------------------------------------------

    def direct(self, text: str, fences: frozenset[int] = frozenset()) -> list[RawHit]:
        """Hits in ``text`` as it is; ``fences``: where joined fields meet (``TokenScanner.scan``)."""
        if not text:
            return []
        low = ascii_lower(text) if self._need_lowered else text
        hits: list[RawHit] = []
        if self.options.tokens:
            for start, end, det, id_, name in self.tokens.scan(text, low, fences):
                hits.append(RawHit(start, end, id_, name, det.confidence))
        if self.options.known_secrets and self.known:
            for k in self.known.find(text, low):
                hits.append(RawHit(k.start, k.end, KNOWN_SECRET, KNOWN_SECRET_NAME, HIGH, k.secret_name, k.encoding))
        if self.options.entropy:
            for start, end, confidence in entropy_spans(
                text, min_length=self.options.entropy_min_length, threshold=self.options.entropy_threshold
            ):
                hits.append(RawHit(start, end, ENTROPY, ENTROPY_NAME, confidence))
        return hits

    # -- layer 2 -------------------------------------------------------------------------------

    def layer_direct(self, text: str) -> list[RawHit]:
        """The direct layer over decoded text; ``layer_scan`` (the scanner's prefiltered scan)
        when set and the text is large, since most decoded bytes of a large body (binary data
        with a stray "%41") hold nothing."""
        if self.layer_scan is not None and len(text) >= LAYER_PREFILTER_SIZE:
            return self.layer_scan(text)
        return self.direct(text)

    def decoded(self, items: Sequence[tuple[int, str]], budget: list[int], depth: int = 2,
                joined: tuple[str, list[int]] | None = None) -> list[tuple[int, RawHit]]:
        """Hits found only after decoding parts of the texts in ``items`` (``(owner, text)``),
        placed on the encoded spans and returned with their owner. ``joined``: the texts joined
        by ``SEPARATOR`` and where each starts (``_join``), when the caller has them already.

        The decoded layers of all texts are scanned together, joined like segments: one pass
        for a request with thousands of encoded values instead of one each.
        """
        if depth <= 0:
            return []
        layers: list[tuple[int, Decoded]] = []
        for owner, text in items:
            if "%" in text and budget[0] > 0:
                for pct in _exact_layers(text, "url", _listed(percent_decode)):
                    budget[0] -= len(pct.text)
                    layers.append((owner, pct))
            if budget[0] > 0 and has_escapes(text):
                # \uXXXX, \xNN, &#NN; outside a JSON body the engine parsed (NDJSON, a JSON
                # string inside a value, HTML): only texts holding a backslash or "&#" pay for it.
                # A ``\0123`` is read as ``echo -e`` and as C reads it (``unescape_readings``).
                for unescaped in _exact_layers(text, "escape", unescape_readings):
                    budget[0] -= len(unescaped.text)
                    layers.append((owner, unescaped))
            if budget[0] > 0 and "\x00" in text:
                # ASCII stored as UTF-16 or UTF-32 (``iconv -t utf-16``), run by run; per text,
                # as the NUL between joined texts would make one-character texts read as a run.
                for run in wide_layers(text, limit=budget[0]):
                    budget[0] -= len(run.text)
                    layers.append((owner, run))
            if budget[0] > 0 and not text.isascii():
                # Fullwidth and other compatibility forms (NFKC): ASCII text never gets here.
                for folded in fold_compat(text, SPLIT_REACH):
                    budget[0] -= len(folded.text)
                    layers.append((owner, folded))
        # Base64 and hex runs, and lists of character codes, of all texts in one go (neither
        # crosses the separator).
        joined_items, item_starts = _join([text for _, text in items], SEPARATOR) if joined is None else joined
        # The joined text's latin-1 bytes, made once for the dump and code-list readers.
        latin = joined_items.encode("latin-1", "replace") if budget[0] > 0 else None
        if budget[0] > 0:
            for run in decode_runs(joined_items, limit=budget[0]):
                k = bisect.bisect_right(item_starts, run.start) - 1
                start, end = run.start - item_starts[k], run.end - item_starts[k]
                layers.append((items[k][0], Decoded(run.encoding, start, end, run.text, whole_span(start, end))))
                budget[0] -= len(run.text)
        if budget[0] > 0:
            # Hex dumps (``xxd``, ``hexdump -C``, ``od``): their bytes, read across the lines.
            for dump in hex_dumps(joined_items, limit=budget[0]):
                k = bisect.bisect_right(item_starts, dump.start) - 1
                layers.append((items[k][0], _moved(dump, item_starts[k])))
                budget[0] -= len(dump.text)
        if budget[0] > 0:
            # Dumps without offsets (``od -An``, ``od -An -c``), a line of hex bytes with blanks
            # between them, and base64 wrapped narrow (``base64 -w 16``).
            for dump in plain_dumps(joined_items, limit=budget[0], latin=latin):
                k = bisect.bisect_right(item_starts, dump.start) - 1
                layers.append((items[k][0], _moved(dump, item_starts[k])))
                budget[0] -= len(dump.text)
        if budget[0] > 0:
            # PowerShell casts in an array ("[char]75, [char]113") are read as casts joined by "+":
            # the same text, a comma or line break between two casts made a "+" (the offsets stay).
            casts = cast_arrays_joined(joined_items)
            codes_of = (decode_code_lists(joined_items, limit=budget[0], latin=latin) if casts is None
                        else decode_code_lists(casts, limit=budget[0]))
            for codes in codes_of:
                k = bisect.bisect_right(item_starts, codes.start) - 1
                layers.append((items[k][0], _moved(codes, item_starts[k])))
                budget[0] -= len(codes.text)
        # Compressed or archived bytes as they are (a form's or a JSON string's decoded value), or
        # that arrived percent-encoded, escaped or as byte values.
        plain = [(owner, Decoded("", 0, len(text), text, whole_span(0, len(text)))) for owner, text in items
                 if not text.isascii()]
        for owner, layer in plain + list(layers):
            opened = packed_text(layer.text, budget[0]) if budget[0] > 0 else None
            if opened is not None:
                budget[0] -= len(opened[0])
                encoding = f"{layer.encoding}+{opened[1]}" if layer.encoding else opened[1]
                layers.append((owner, Decoded(encoding, layer.start, layer.end, opened[0],
                                              whole_span(layer.start, layer.end))))
        if not layers:
            return []
        parents = dict(items)
        inner: list[tuple[int, RawHit]] = []
        joined, starts = _join([layer.text for _, layer in layers], SEPARATOR)
        found = list(self.layer_direct(joined))
        if self.options.known_secrets and self.known:
            # Ascii85 holds '"' and '\\': in JSON that was not parsed, only the unescaped layer
            # has the encoded secret in one piece (and only there are its "\\n" line breaks real).
            # A value spelled out with separators may be inside an encoding too.
            found += [RawHit(k.start, k.end, KNOWN_SECRET, KNOWN_SECRET_NAME, HIGH, k.secret_name, k.encoding)
                      for k in self.known.find_deep(joined)]
        for h in found:
            placed = _place(h, starts, len(SEPARATOR))
            if placed is not None:
                inner.append((placed.segment, placed.raw))
        inner += self.decoded([(i, layer.text) for i, (_, layer) in enumerate(layers)], budget, depth - 1)
        out: list[tuple[int, RawHit]] = []
        for index, h in inner:
            owner, layer = layers[index]
            start, end = layer.to_parent(h.start, h.end)
            if layer.encoding in _EXACT and end - start == h.end - h.start:
                continue  # no escape inside: the direct layer saw this as it was sent
            if layer.encoding == "nfkc" and parents[owner][start:end] == layer.text[h.start:h.end]:
                continue  # nothing folded inside: likewise
            if (layer.encoding == "escape" and h.detector == KNOWN_SECRET
                    and _OCTAL_ESCAPES.fullmatch(parents[owner], start, end)):
                continue  # a bottle secret in three-digit octal escapes: the spread search reports it
            encoding = layer.encoding if h.encoding is None else f"{layer.encoding}+{h.encoding}"
            out.append((owner, RawHit(start, end, h.detector, h.name, h.confidence, h.secret_name, encoding)))
        return out

    # -- segments ------------------------------------------------------------------------------

    def scan_segments(self, segments: Sequence[Segment], *, deep: bool = True, splits: bool = True,
                      limits: list[int] | None = None, direct: bool = True, spread: bool = True) -> list[Hit]:
        """Hits in ``segments``; ``limits`` (when given) receives the index of a segment whose
        decoding was cut short by the decode budget, for the caller to report as a scan limit.
        ``spread``: look for values spelled out with separators in the segments as they are
        (False: the caller does, over more than these segments)."""
        if not segments:
            return []
        hits: list[Hit] = []
        scanned = [i for i, s in enumerate(segments) if s.scan]
        # The scanned texts joined once: the direct layer, the forms searched as sent and the
        # decoded layer read the same text when every segment is deep (a JSON body's values).
        whole = _Joined(segments)
        if direct:  # False: the caller scanned the texts as they are already
            joined, starts = whole.of(scanned)
            for h in self.direct(joined):
                placed = _place(h, starts, len(SEPARATOR))
                if placed is not None:
                    placed.segment = scanned[placed.segment]
                    hits.append(placed)
        if deep:
            hits.extend(self._deep_form_hits(segments, scanned, spread, whole=whole))
            hits.extend(self._deep_hits(segments, scanned, limits, whole))
        if splits:
            hits.extend(self.split_hits(segments, hits))
        return hits

    def packed_form_hits(self, segments: Sequence[Segment]) -> list[Hit]:
        """The base85, ascii85 and uuencode forms of the bottle's secrets in ``segments`` as they
        are, without decoding anything: what a text scanned without ``deep`` (an echo in an
        answer) is still searched for, as an outbound scan finds those forms undecoded."""
        return self._deep_form_hits(segments, [i for i, s in enumerate(segments) if s.scan], False, echoes=True)

    def _deep_form_hits(self, segments: Sequence[Segment], scanned: list[int], spread: bool, *,
                        echoes: bool = False, whole: _Joined | None = None) -> list[Hit]:
        """The base85 and ascii85 forms of the bottle's secrets, and with ``spread`` the values
        spelled out with separators (``KnownSecrets.find_deep``), in every deep segment, as sent."""
        deep = [i for i in scanned if segments[i].deep]
        if not (self.options.known_secrets and self.known and deep):
            return []
        joined, starts = (whole or _Joined(segments)).of(deep)
        out = []
        found = self.known.find_base85(joined, echoes=True) if echoes else self.known.find_deep(joined, spread=spread)
        for k in found:
            raw = RawHit(k.start, k.end, KNOWN_SECRET, KNOWN_SECRET_NAME, HIGH, k.secret_name, k.encoding)
            placed = _place(raw, starts, len(SEPARATOR))
            if placed is not None:
                placed.segment = deep[placed.segment]
                out.append(placed)
        return out

    def _deep_hits(self, segments: Sequence[Segment], scanned: list[int], limits: list[int] | None,
                   whole: _Joined | None = None) -> list[Hit]:
        """The decoded layer over every deep segment; one longer than ``deep_limit`` is decoded in
        overlapping windows (each within the limit) rather than skipped."""
        items: list[tuple[int, str]] = []
        places: list[tuple[int, int]] = []  # item -> (segment, offset of its window)
        for i in scanned:
            if not segments[i].deep:
                continue
            for base, window in _windows(segments[i].text, self.options.deep_limit, DEEP_OVERLAP):
                items.append((len(places), window))
                places.append((i, base))
        if not items:
            return []
        total = sum(len(text) for _, text in items)
        budget = [self.options.decode_budget + DECODE_FACTOR * total]
        out: list[Hit] = []
        seen: set[tuple[int, RawHit]] = set()  # a hit in the overlap of two windows, once
        joined = None
        if whole is not None and all(base == 0 for _, base in places):
            # Every deep segment in one window: the items are the deep segments' texts.
            joined = whole.of([i for i, _ in places])
        for owner, h in self.decoded(items, budget, joined=joined):
            segment, base = places[owner]
            if base:
                h = RawHit(h.start + base, h.end + base, h.detector, h.name, h.confidence, h.secret_name, h.encoding)
            if (segment, h) not in seen:
                seen.add((segment, h))
                out.append(Hit(segment, h))
        # A compressed upload in base64 longer than a window (a workspace's .tar.gz): decoded and
        # opened whole, as no window holds more than a part of it.
        for i in {segment for segment, _ in places}:
            text = segments[i].text
            if len(text) <= self.options.deep_limit:
                continue
            for start, end, content, kind in long_packed_runs(text, self.options.deep_limit - DEEP_OVERLAP, budget[0]):
                budget[0] -= len(content)
                found = list(self.layer_direct(content))
                if self.options.known_secrets and self.known:
                    found += [RawHit(0, 0, KNOWN_SECRET, KNOWN_SECRET_NAME, HIGH, k.secret_name, k.encoding)
                              for k in self.known.find_deep(content)]
                for h in found:
                    encoding = f"base64+{kind}" if h.encoding is None else f"base64+{kind}+{h.encoding}"
                    out.append(Hit(i, RawHit(start, end, h.detector, h.name, h.confidence, h.secret_name, encoding)))
        if budget[0] <= 0 and limits is not None:
            # Something was left undecoded (or inflated only in part): say so, never pass silently.
            limits.append(max((i for i, _ in places), key=lambda i: len(segments[i].text)))
        return out

    def split_hits(self, segments: Sequence[Segment], found: list[Hit]) -> list[Hit]:
        fields = [i for i, s in enumerate(segments) if s.field and s.text][: self.options.max_split_fields]
        out: list[Hit] = []
        already = {(h.raw.detector, h.raw.secret_name) for h in found}
        for run in _runs(segments, fields):
            if len(run) >= 2:
                out += self._adjacent_hits(segments, run, already)
        # Scattered pieces of a known secret, in any order, names and cookies among them.
        if self.options.known_secrets and self.known:
            pieces = [i for i, s in enumerate(segments) if s.piece and s.text and not s.field]
            scattered = sorted(fields + pieces[: max(0, self.options.max_split_fields - len(fields))])
            covered = self.known.split_cover((i, segments[i].text) for i in scattered) if len(scattered) >= 2 else []
            for name, used in covered:
                if (KNOWN_SECRET, name) in already:
                    continue
                already.add((KNOWN_SECRET, name))
                parts = [(i, 0, len(segments[i].text)) for i in used]
                raw = RawHit(0, len(segments[used[-1]].text), KNOWN_SECRET, KNOWN_SECRET_NAME, HIGH, name, "split")
                out.append(Hit(used[0], raw, parts))
        return out

    def _adjacent_hits(self, segments: Sequence[Segment], fields: list[int],
                       already: set[tuple[str, str | None]]) -> list[Hit]:
        out: list[Hit] = []
        # Adjacent pieces: scan the plain concatenation around each field boundary (a value cut
        # in two lies within reach of the cut), keep hits that cross a boundary.
        texts = [segments[i].text for i in fields]
        joined, starts = _join(texts, "")
        for h in self._around_boundaries(joined, starts[1:]):
            if h.detector == ENTROPY:
                continue  # any two fields glued together look random: not evidence of a split
            first = bisect.bisect_right(starts, h.start) - 1
            last = bisect.bisect_right(starts, h.end - 1) - 1
            if first == last or (h.detector, h.secret_name) in already:
                continue
            parts = []
            for k in range(first, last + 1):
                seg_start = max(h.start, starts[k]) - starts[k]
                seg_end = min(h.end, starts[k] + len(texts[k])) - starts[k]
                parts.append((fields[k], seg_start, seg_end))
            already.add((h.detector, h.secret_name))
            raw = RawHit(parts[0][1], parts[-1][2], h.detector, h.name, h.confidence, h.secret_name,
                         "split" if h.encoding is None else f"split+{h.encoding}")
            out.append(Hit(fields[first], raw, parts))
        return out

    def _around_boundaries(self, joined: str, boundaries: list[int]) -> list[RawHit]:
        """The direct layer's hits in the windows of ``joined`` around ``boundaries`` (the caller
        keeps those that cross one). Token formats are searched ``SPLIT_REACH`` either side; the
        bottle's secrets, literal forms that cross a boundary only by lying within their own
        length of it, in narrower windows (``_known_around``): the fields' text is not searched
        for them a second time in full."""
        out = self._tokens_around(joined, boundaries) if self.options.tokens else []
        if self.options.known_secrets and self.known:
            out += self._known_around(joined, boundaries)
        return out

    def _tokens_around(self, joined: str, boundaries: list[int]) -> list[RawHit]:
        """Token formats in the ``SPLIT_REACH`` windows around ``boundaries`` (high-entropy
        strings are not looked for: two fields glued together look random)."""
        out: list[RawHit] = []
        windows = _windows_around(boundaries, SPLIT_REACH, len(joined))
        if len(windows) == 1 and windows[0] == (0, len(joined)):
            return self._token_hits(joined, frozenset(boundaries))
        for start, end in windows:
            inside = frozenset(b - start for b in boundaries[bisect.bisect_left(boundaries, start):
                                                             bisect.bisect_right(boundaries, end)])
            for h in self._token_hits(joined[start:end], inside):
                out.append(RawHit(h.start + start, h.end + start, h.detector, h.name, h.confidence,
                                  h.secret_name, h.encoding))
        return out

    def _token_hits(self, text: str, fences: frozenset[int]) -> list[RawHit]:
        return [RawHit(start, end, id_, name, det.confidence)
                for start, end, det, id_, name in self.tokens.scan(text, None, fences)]

    def _known_around(self, joined: str, boundaries: list[int]) -> list[RawHit]:
        """The bottle's secrets in ``joined`` that may cross a boundary, in the order a search
        of each ``SPLIT_REACH`` window would give them (the first of a secret's hits is the one
        reported): each window's narrow pieces around its boundaries, joined by NUL (which no
        form crosses: a hit across one is dropped), searched as one text."""
        reach = min(self.known.longest_form() + 1, SPLIT_REACH)
        out: list[RawHit] = []
        for start, end in _windows_around(boundaries, SPLIT_REACH, len(joined)):
            inside = boundaries[bisect.bisect_left(boundaries, start):bisect.bisect_right(boundaries, end)]
            pieces = [(max(a, start), min(b, end)) for a, b in _windows_around(inside, reach, len(joined))]
            text, starts = _join([joined[a:b] for a, b in pieces], SEPARATOR)
            for k in self.known.find(text):
                index = bisect.bisect_right(starts, k.start) - 1
                if k.end > starts[index] + pieces[index][1] - pieces[index][0]:
                    continue  # across the NUL between two pieces
                base = pieces[index][0] - starts[index]
                out.append(RawHit(k.start + base, k.end + base, KNOWN_SECRET, KNOWN_SECRET_NAME, HIGH,
                                  k.secret_name, k.encoding))
        return out

    # -- findings ------------------------------------------------------------------------------

    @staticmethod
    def findings(hits: Sequence[Hit], segments: Sequence[Segment]) -> list[Finding]:
        out: list[Finding] = []
        rendered: dict[int, str] = {}

        def where(index: int) -> str:
            if index not in rendered:
                rendered[index] = segments[index].where()
            return rendered[index]

        for hit in hits:
            raw = hit.raw
            if hit.parts:
                location = "+".join(dict.fromkeys(where(i) for i, _, _ in hit.parts))
            else:
                location = where(hit.segment)
            out.append(Finding(raw.detector, raw.name, location, raw.start, raw.end, raw.confidence,
                               raw.secret_name, raw.encoding))
        return resolve_overlaps(out)


def _exact_layers(text: str, encoding: str, decode: Callable[[str], list[Decoded]]) -> list[Decoded]:
    """``decode(text)``; for a large text only the regions around escapes that may be part of a
    value (``escaped_regions``), so a stray escape in megabytes of binary data does not cost a
    decoded copy of all of it."""
    if len(text) < LAYER_PREFILTER_SIZE:
        return decode(text)
    out = []
    for start, end in escaped_regions(text, encoding, SPLIT_REACH):
        for layer in decode(text[start:end]):
            out.append(shifted(layer, start, end) if start else layer)
    return out


def _listed(decode: Callable[[str], Decoded | None]) -> Callable[[str], list[Decoded]]:
    """``decode`` returning its one layer as a list (none when it found nothing)."""
    def listed(text: str) -> list[Decoded]:
        layer = decode(text)
        return [] if layer is None else [layer]

    return listed


def _moved(layer: Decoded, base: int) -> Decoded:
    """``layer`` (offsets into a joined text) with offsets into the item that starts at ``base``."""
    inner = layer.to_parent

    def to_parent(start: int, end: int) -> tuple[int, int]:
        a, b = inner(start, end)
        return a - base, b - base

    return Decoded(layer.encoding, layer.start - base, layer.end - base, layer.text, to_parent)


def _windows(text: str, size: int, overlap: int) -> list[tuple[int, str]]:
    """``text`` as (offset, window) pieces at most ``size`` long, each overlapping the next by
    ``overlap``; a text within ``size`` is its own only window."""
    if len(text) <= size:
        return [(0, text)]
    step = max(1, size - overlap)
    out = []
    for start in range(0, len(text), step):
        out.append((start, text[start : start + size]))
        if start + size >= len(text):
            break
    return out


class _Joined:
    """The texts of some of a scan's segments joined by ``SEPARATOR`` (``_join``), the last
    join kept: asked for the same segments again, the same text is given back."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self.segments = segments
        self._indices: list[int] | None = None
        self._joined: tuple[str, list[int]] = ("", [])

    def of(self, indices: list[int]) -> tuple[str, list[int]]:
        if indices != self._indices:
            self._indices = list(indices)
            self._joined = _join([self.segments[i].text for i in indices], SEPARATOR)
        return self._joined


def _runs(segments: Sequence[Segment], fields: list[int]) -> list[list[int]]:
    """``fields`` cut before each ``fresh`` segment: the runs whose neighbours are joined."""
    runs: list[list[int]] = [[]]
    for i in fields:
        if segments[i].fresh and runs[-1]:
            runs.append([])
        runs[-1].append(i)
    return runs


def _windows_around(boundaries: Sequence[int], reach: int, size: int) -> list[tuple[int, int]]:
    """``reach`` either side of each of ``boundaries`` (ascending) within ``[0, size)``, windows
    that overlap or touch merged: two boundaries at most ``2 * reach`` apart share one. The
    places where a window ends are found in C (a large body's values give hundreds of
    thousands of boundaries, a few characters apart)."""
    if not boundaries:
        return []
    gaps = map(operator.sub, itertools.islice(boundaries, 1, None), boundaries)
    breaks = list(itertools.compress(range(1, len(boundaries)), map((2 * reach).__lt__, gaps)))
    firsts = [0, *breaks]
    lasts = [i - 1 for i in breaks] + [len(boundaries) - 1]
    return [(max(0, boundaries[a] - reach), min(size, boundaries[b] + reach)) for a, b in zip(firsts, lasts)]


def _join(texts: Sequence[str], separator: str) -> tuple[str, list[int]]:
    starts: list[int] = []
    position = 0
    for text in texts:
        starts.append(position)
        position += len(text) + len(separator)
    return separator.join(texts), starts


def _place(hit: RawHit, starts: list[int], sep: int) -> Hit | None:
    index = bisect.bisect_right(starts, hit.start) - 1
    base = starts[index]
    limit = starts[index + 1] - sep if index + 1 < len(starts) else None
    if limit is not None and hit.end > limit:
        return None  # crosses a separator: not a value of either segment
    return Hit(index, RawHit(hit.start - base, hit.end - base, hit.detector, hit.name, hit.confidence,
                             hit.secret_name, hit.encoding))
