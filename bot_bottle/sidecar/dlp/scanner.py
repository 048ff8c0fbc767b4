"""``Scanner``: the public entry points, built once per policy and reused for every request."""

from __future__ import annotations

import bisect
import gzip
import itertools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bot_bottle.sidecar.dlp import archives, bodies, dns, urls
from bot_bottle.sidecar.dlp.charcodes import CODE_STRING, MIN_CODES, has_code_list
from bot_bottle.sidecar.dlp.compat import compat_regions, fold, utf8_windows
from bot_bottle.sidecar.dlp.engine import (
    KNOWN_SECRET_NAME,
    SEPARATOR,
    SPLIT_REACH,
    Engine,
    EngineOptions,
    Hit,
    RawHit,
    Segment,
    _runs,
)
from bot_bottle.sidecar.dlp.fragments import BLOCK, FragmentIndex, FragmentMemory, merge
from bot_bottle.sidecar.dlp.findings import ENTROPY, HIGH, KNOWN_SECRET, SCAN_LIMIT, Finding, dedupe, resolve_overlaps
from bot_bottle.sidecar.dlp.inbound import SeamContext, scan_response_for_injection
from bot_bottle.sidecar.dlp.known import MIN_FRAGMENT, MIN_SECRET_LENGTH, KnownSecrets, fragment_forms
from bot_bottle.sidecar.dlp.prefilter import Prefilter, TextView, text_view
from bot_bottle.sidecar.dlp.redact import apply_spans, marker
from bot_bottle.sidecar.dlp.tokens import DETECTOR_NAMES, TokenScanner, char_classes
from bot_bottle.sidecar.dlp.wide import wide_regions

Headers = Mapping[str, str] | Iterable[tuple[str, str]]

_SAFE_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,40}")
# The words and numbers of a name: "getUserByID" is get, User, By, ID; "GF49peQI6D" is GF, 49,
# pe, Q, I, 6, D (an all-capitals word followed by a lower-case letter gives its last capital up).
_NAME_PART = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SAFE_CACHE_MAX = 4096
# A name holding this many characters in a row of a bottle secret is never shown in a location
# (shorter runs are common words and syllables: "pass", "key_").
PIECE = 5
# A body or query with more fields than this is scanned as text, not field by field: each field
# costs a few microseconds, and no legitimate request needs more.
MAX_FIELDS = 10_000
ACROSS_REQUESTS = "split across requests"  # the encoding such a finding reports
# A field value that may be a hex or base64 encoding of a piece of a secret (8+ characters of the
# secret are 11+ of unpadded base64): only those are decoded for the fragment search.
_ENCODED_FIELD = re.compile(r"\s*[A-Za-z0-9+/_=-]{8,4096}\s*")


@dataclass(frozen=True)
class ScanOptions:
    """What a scanner looks for. The egress route's ``dlp`` switches map onto these."""

    tokens: bool = True  # well-known credential formats
    known_secrets: bool = True  # the bottle's own secret values, in every encoding
    entropy: bool = False  # random-looking tokens no detector knows (noisier: off by default)
    entropy_min_length: int = 24
    entropy_threshold: float = 4.0
    min_secret_length: int = MIN_SECRET_LENGTH
    max_body_bytes: int = 64 * 1024 * 1024  # decompressed bytes scanned per body (bomb limit)
    structured_limit: int = 8 * 1024 * 1024  # bodies up to this size are also parsed and decoded
    deep_limit: int = 2 * 1024 * 1024  # larger values are base64/hex/%-decoded in windows this size
    disabled_detectors: frozenset[str] = frozenset()

    def engine_options(self) -> EngineOptions:
        return EngineOptions(
            tokens=self.tokens,
            known_secrets=self.known_secrets,
            entropy=self.entropy,
            entropy_min_length=self.entropy_min_length,
            entropy_threshold=self.entropy_threshold,
            deep_limit=self.deep_limit,
        )


@dataclass(frozen=True)
class Redaction:
    """The content with every finding replaced by a marker (same type as the input)."""

    content: str | bytes
    findings: tuple[Finding, ...]  # what the original content carried
    unredacted: tuple[Finding, ...] = ()  # still present afterwards: the caller must block
    changed: bool = False


@dataclass(frozen=True)
class RedactedRequest:
    """The request to forward instead. A rewritten JSON body is re-serialised (compact); the
    caller sends ``body`` with a matching Content-Length."""

    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    findings: tuple[Finding, ...]  # what the original request carried
    unredacted: tuple[Finding, ...] = ()  # what the rewritten request still carries: block it
    # The body was decompressed to be redacted: send it without its Content-Encoding (and with a
    # new Content-Length).
    drop_content_encoding: bool = False
    changed: bool = False


# -- request context: segments plus what is needed to rebuild ----------------------------------


@dataclass
class _Body:
    decoded: bodies.DecodedBody
    kind: str = "raw"  # raw | json | form | multipart
    raw_index: int = -1  # segment index of the whole body
    json_doc: Any = None
    json_strings: list[bodies.JsonString] = field(default_factory=list)
    json_first: int = -1  # segment index of json_strings[0]
    form_pairs: list[tuple[str, str]] = field(default_factory=list)
    form_first: int = -1
    parts: list[bodies.Part] = field(default_factory=list)
    # part -> (header segment, content segment or -1, content was transfer-decoded)
    part_segments: dict[int, tuple[int, int, bool]] = field(default_factory=dict)


@dataclass
class _Request:
    segments: list[Segment] = field(default_factory=list)
    url: urls.UrlView | None = None
    userinfo_index: int = -1
    path_index: int = -1
    path_pieces: list[tuple[int, int]] = field(default_factory=list)  # (segment, raw piece index)
    param_indices: list[tuple[int, int]] = field(default_factory=list)  # (name seg, value seg or -1)
    fragment_index: int = -1
    headers: list[tuple[str, str]] = field(default_factory=list)
    header_indices: dict[int, tuple[int, int]] = field(default_factory=dict)  # header -> (name seg, value seg)
    body: _Body | None = None
    extra: list[Finding] = field(default_factory=list)  # host and limit findings
    # (segment, offsets where one value ends and the next starts): values too many to be fields
    # one by one, joined into one text for the adjacent-fields check (``_joined_hits``).
    joins: list[tuple[int, list[int]]] = field(default_factory=list)

    def add(self, location: Any, text: str, *, field_: bool = False, deep: bool = True, scan: bool = True,
            piece: bool = False, fresh: bool = False) -> int:
        self.segments.append(Segment(location, text, field_, deep, scan, piece, fresh))
        return len(self.segments) - 1


# The shortest encoded value worth decoding (hex of 8 bytes); shorter stretches decode to nothing.
_MIN_TEXT = 16
_TEXT_GAP = 16  # stretches this close are decoded as one: fewer, larger calls for non-ASCII text


def _textual_regions(data: bytes | bytearray, view: TextView | None = None) -> list[tuple[int, int]]:
    """(start, end) of the stretches of ``data`` an encoded value could be written in: its
    stretches of printable text of ``_MIN_TEXT`` bytes or more (``view``: its ``text_view``, when
    the caller has it already)."""
    regions: list[tuple[int, int]] = []
    for start, end in (view or text_view(data)).stretches:
        if end - start < _MIN_TEXT:
            continue
        if regions and start - regions[-1][1] <= _TEXT_GAP:
            regions[-1] = (regions[-1][0], end)  # text with a few other bytes (accents): one stretch
        else:
            regions.append((start, end))
    return regions


# A piece of a secret is grown from a block of it with a matching neighbour (``fragments``).
PIECE_RUN = BLOCK + 1
# More runs than this in a streamed batch (text): it is searched whole.
PIECE_RUNS_MAX = 4096


def _from_runs(runs: list[tuple[int, int]], at: int) -> int:
    """The offset in the body of offset ``at`` of the runs joined with one NUL between them."""
    joined = 0
    for start, end in runs:
        if at <= joined + end - start:
            return start + at - joined
        joined += end - start + 1
    return runs[-1][1] if runs else 0


def _inside(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    """Whether ``span`` lies within one of the sorted, disjoint ``spans``."""
    i = bisect.bisect_right(spans, (span[0], float("inf"))) - 1
    return i >= 0 and spans[i][1] >= span[1]


# The methods of HTTP and WebDAV: scanning these could find nothing.
_METHODS = frozenset({"", "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "PROPFIND",
                      "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT", "SEARCH", "QUERY"})


class Scanner:
    """Built once from the policy's options and the bottle's secrets; thread-safe to share.

    ``secrets`` maps a name (env var or token ref) to its value; values shorter than
    ``options.min_secret_length`` are not scanned and are listed in ``skipped_secrets``.
    """

    def __init__(self, secrets: Mapping[str, str] | None = None, options: ScanOptions | None = None) -> None:
        self.options = options or ScanOptions()
        self.known = KnownSecrets(secrets or {}, self.options.min_secret_length)
        self.tokens = TokenScanner(disabled=self.options.disabled_detectors)
        self.engine = Engine(self.tokens, self.known, self.options.engine_options())
        # Echoed secrets in responses: the known values only, no format detectors.
        self._echo_engine = Engine(self.tokens, self.known, EngineOptions(tokens=False, entropy=False))
        self._safe_names: dict[str, bool] = {}
        self._pieces: frozenset[str] | None = None  # built when a location first names something
        self._batch_prefilter: Prefilter | None = None  # built on the first streamed batch
        self._piece_bytes: bytes | None = None  # ``_piece_table``, built on first use
        self.engine.layer_scan = self._prefiltered_direct
        self.fragments = FragmentIndex(self.known.values() if self.options.known_secrets else ())
        self._idle = not (self.options.tokens or self.options.entropy
                          or (self.options.known_secrets and list(self.known.values())))

    def __repr__(self) -> str:
        return f"Scanner(secrets={list(self.known.names)!r}, options={self.options!r})"

    @property
    def idle(self) -> bool:
        """Every detector is off: nothing would be found, and no body needs holding to scan."""
        return self._idle

    @property
    def secret_names(self) -> tuple[str, ...]:
        return self.known.names

    @property
    def skipped_secrets(self) -> tuple[str, ...]:
        """Names of the secrets too short to scan for: callers warn about these."""
        return self.known.skipped

    # -- texts -----------------------------------------------------------------------------

    def scan_text(self, text: str | bytes, location: str = "text", *, deep: bool = False) -> list[Finding]:
        """Findings in one text (a file, a body already decoded). ``deep`` also decodes base64,
        hex and percent-encoded parts, which requests get and files, by default, do not."""
        segment = Segment(location, _as_text(text), False, deep)
        hits = self.engine.scan_segments([segment], deep=deep, splits=False)
        return self.engine.findings(hits, [segment])

    def scan_batch(self, data: bytes | bytearray, location: str = "body", *, deep: bool = False) -> list[Finding]:
        """``scan_text(data, location, deep=deep)`` for a large chunk of a streamed body, faster:
        a prefilter (``dlp.prefilter``) finds where any detector could match, and only windows
        around those places are scanned. Same findings, offsets into ``data``. ``deep`` also
        decodes (as a buffered body of any size is, in windows): a streamed upload is then
        judged like the same body buffered; a decoding cut short by the budget is a
        ``scan-limit``."""
        if self._idle:
            return []  # a route with its detectors off: decoding a streamed body would find nothing
        # The shape of the batch serves the prefilter and the decoded layer's stretches of text.
        view = text_view(data) if deep else None
        windows = self._prefilter().windows(data, view)
        if windows is None:
            out = self.scan_text(data, location, deep=False)
        else:
            out = []
            for start, end in windows:
                for finding in self.scan_text(data[start:end], location, deep=False):
                    out.append(replace(finding, start=finding.start + start, end=finding.end + start))
        if deep:
            # Every encoding decoded here (base64, hex, %xx, escapes) is written in printable
            # ASCII: only stretches of it are decoded. Binary data (an image, an archive, random
            # bytes) holds next to none, text is one stretch: the same findings, a fraction of
            # the work on a binary upload. Fullwidth and other compatibility characters are not
            # ASCII: the stretches where they cluster are decoded as well.
            # Text in another script is one stretch too: its windows of UTF-8 join the printable
            # stretches (decoded one by one, a Russian or Chinese text's ASCII pieces between
            # its words cost thousands of calls per MiB).
            windows = utf8_windows(data)  # the stretches of UTF-8 text, for the searches below
            view = view or text_view(data)
            textual = merge(_textual_regions(data, view) + windows)
            regions = textual + [r for r in compat_regions(data, SPLIT_REACH, windows) if not _inside(r, textual)]
            # ASCII stored as UTF-16 or UTF-32 is not printable: its runs are decoded too.
            regions += [r for r in wide_regions(data) if not _inside(r, textual)]
            with memoryview(data) as raw:  # a region copied once (a bytearray's slice, then bytes of it: twice)
                for start, end in regions:
                    for finding in self._decoded_findings(bodies.as_text(bytes(raw[start:end])), location):
                        out.append(replace(finding, start=finding.start + start, end=finding.end + start))
            out += self._spread_findings(data, textual, location)
        return resolve_overlaps(dedupe(out))

    def _spread_findings(self, data: bytes | bytearray, text: list[tuple[int, int]],
                         location: str) -> list[Finding]:
        """Secrets spelled out with separators (``dlp.spread``) in ``text``, the stretches of a
        streamed batch that are text: printable ones and windows of UTF-8 (zero-width or other
        non-ASCII separators). Binary data between them is not searched: a pass over it costs
        a third of the whole scan of a random upload."""
        if not (self.options.known_secrets and self.known):
            return []
        out = []
        for start, end in merge(text):
            for k in self.known.find_spread(data[start:end]):
                out.append(Finding(KNOWN_SECRET, KNOWN_SECRET_NAME, location, k.start + start, k.end + start, HIGH,
                                   k.secret_name, k.encoding))
        return out

    def _decoded_findings(self, text: str, location: str) -> list[Finding]:
        segment = Segment(location, text)
        limits: list[int] = []
        hits = self.engine.scan_segments([segment], deep=True, splits=False, limits=limits, direct=False,
                                         spread=False)
        out = self.engine.findings(hits, [segment])
        if limits:
            out.append(Finding(SCAN_LIMIT, "Encoded values past the decoding budget", location, 0, 0, HIGH))
        return out

    def _prefiltered_direct(self, text: str) -> list[RawHit]:
        """``engine.direct(text)`` through the batch prefilter: the same hits, found faster in a
        large decoded layer that is mostly noise."""
        try:
            data = text.encode("latin-1")
        except UnicodeEncodeError:
            return self.engine.direct(text)  # escapes beyond latin-1: rare, scanned whole
        windows = self._prefilter().windows(data)
        if windows is None:
            return self.engine.direct(text)
        out: list[RawHit] = []
        for start, end in windows:
            for h in self.engine.direct(text[start:end]):
                out.append(RawHit(h.start + start, h.end + start, h.detector, h.name, h.confidence,
                                  h.secret_name, h.encoding))
        return out

    def _prefilter(self) -> Prefilter:
        if self._batch_prefilter is None:
            self._batch_prefilter = Prefilter(self.tokens, self.known, use_tokens=self.options.tokens,
                                              use_known=self.options.known_secrets, entropy=self.options.entropy)
        return self._batch_prefilter

    def redact_text(self, text: str | bytes, location: str = "text", *, deep: bool = True) -> Redaction:
        segment = Segment(location, _as_text(text), False, deep)
        hits = self.engine.scan_segments([segment], deep=deep, splits=False)
        findings = self.engine.findings(hits, [segment])
        new = apply_spans(segment.text, _spans_for(hits, 0))
        rescanned = Segment(location, new, False, deep)
        after = self.engine.findings(self.engine.scan_segments([rescanned], deep=deep, splits=False), [rescanned])
        return Redaction(_like(text, new), tuple(findings), tuple(after), new != segment.text)

    def redact_echoed_secrets(self, data: str | bytes, location: str = "response") -> Redaction:
        """The bottle's own secrets (any encoding) that an upstream echoed back, redacted."""
        segment = Segment(location, _as_text(data), False, True)
        hits = self._echo_engine.scan_segments([segment], deep=False, splits=False)
        # The forms an outbound scan finds without decoding (base85 and ascii85 at any offset,
        # wrapped or not, uuencode) are echoes too: an answer that carries one gives the value away.
        hits += self._echo_engine.packed_form_hits([segment])
        findings = self._echo_engine.findings(hits, [segment])
        new = apply_spans(segment.text, _spans_for(hits, 0))
        return Redaction(_like(data, new), tuple(findings), (), new != segment.text)

    def scan_response_for_injection(self, text: str | bytes, context: SeamContext | None = None) -> list[Finding]:
        """``context``: where ``text`` sits in a streamed answer (``inbound.SeamContext``)."""
        return scan_response_for_injection(text, context=context)

    def scan_message(self, data: str | bytes, location: str = "message", *,
                     memory: FragmentMemory | None = None) -> list[Finding]:
        """A WebSocket message (text or binary): scanned like a small body, JSON taken apart.
        Offsets of a ``location`` finding are into the message's UTF-8 bytes. ``memory`` as for
        ``scan_request``: each message counts as one request."""
        request = _Request()
        raw = data.encode("utf-8") if isinstance(data, str) else data
        self._add_body(request, raw, None, "", base=location)
        hits = self._scan(request)
        if memory is not None:
            hits += self._across_requests(request, hits, memory)
        return self._finish(request, hits)

    # -- hosts -----------------------------------------------------------------------------

    def scan_host(self, host: str) -> list[Finding]:
        """Known secrets (and token formats) carried in a host name, e.g. ``<hex>.evil.example``.

        Known secrets are matched without case (DNS ignores it, proxies lower-case names); token
        formats need the case the host arrived with, when the caller kept it.
        """
        as_sent = _bare_host(host)
        name = as_sent.lower()
        if not name:
            return []
        out: list[Finding] = []
        if self.options.known_secrets:
            for k in self.known.find_in_host(name):
                out.append(Finding(KNOWN_SECRET, "Bottle secret", "host", k.start, k.end, HIGH, k.secret_name,
                                   k.encoding))
            readable = readable_host(name)
            if readable is not None:
                # Found in the name as read, not as sent: the whole name is the place (a host is
                # refused, never redacted).
                for k in self.known.find_in_host(readable):
                    out.append(Finding(KNOWN_SECRET, "Bottle secret", "host", 0, len(name), HIGH, k.secret_name,
                                       "punycode" if k.encoding is None else f"punycode+{k.encoding}"))
        # Labels are also scanned joined, for a token spread over several of them.
        segments = [Segment("host", as_sent), Segment("host", as_sent.replace(".", ""))]
        hits = self.engine.scan_segments(segments, deep=True, splits=False)
        for finding in self.engine.findings(hits, segments):
            if finding.detector != KNOWN_SECRET:
                # Offsets in the dot-less copy are approximate; a host is blocked, never redacted.
                out.append(replace(finding, start=min(finding.start, len(name)), end=min(finding.end, len(name))))
        return resolve_overlaps(dedupe(out))

    # -- requests --------------------------------------------------------------------------

    def scan_request(
        self,
        method: str,
        url: str,
        headers: Headers = (),
        body: bytes | str | None = None,
        *,
        skip_headers: Iterable[str] = (),
        memory: FragmentMemory | None = None,
    ) -> list[Finding]:
        """Findings in the URL (path, each query parameter, decoded), the header values (minus
        ``skip_headers``, e.g. an ``Authorization`` the proxy replaces) and the body (decompressed,
        JSON/form/multipart taken apart), plus secrets split across fields and in the host.

        With ``memory`` (the proxy's, one per bottle), pieces of the bottle's secrets are also
        remembered across requests, and the request that would complete one is a finding."""
        request = self._request(url, headers, body, skip_headers, method)
        hits = self._scan(request)
        if memory is not None:
            hits += self._across_requests(request, hits, memory)
        return self._finish(request, hits)

    def _scan(self, request: _Request) -> list[Hit]:
        """All layers over the request's segments; a decoding the budget cut short becomes a
        ``scan-limit`` finding (the caller blocks) instead of passing unseen."""
        limits: list[int] = []
        hits = self.engine.scan_segments(request.segments, deep=True, splits=True, limits=limits)
        for index in limits:
            request.extra.append(Finding(SCAN_LIMIT, "Encoded values past the decoding budget",
                                         request.segments[index].where(), 0, 0, HIGH))
        already = {(h.raw.detector, h.raw.secret_name) for h in hits}
        hits += self._overflow_hits(request.segments, already)
        for index, boundaries in request.joins:
            hits += self._joined_hits(index, request.segments[index].text, boundaries, already)
        return hits

    def _overflow_hits(self, segments: list[Segment], already: set[tuple[str, str | None]]) -> list[Hit]:
        """The adjacent-fields check past the engine's ``max_split_fields`` (which it stops at):
        padding a request with that many fields must not hide a token cut over the next two. From
        the last field the engine joined, so the cut after it is seen too."""
        cap = self.engine.options.max_split_fields
        fields = [i for i, s in enumerate(segments) if s.field and s.text]
        if len(fields) <= cap:
            return []
        out: list[Hit] = []
        for run in _runs(segments, fields[cap - 1:]):
            if len(run) >= 2:
                out += self.engine._adjacent_hits(segments, run, already)
        return out

    def _joined_hits(self, index: int, joined: str, boundaries: list[int],
                     already: set[tuple[str, str | None]]) -> list[Hit]:
        """Tokens and secrets that cross a cut between two of the values joined in segment
        ``index``, as the engine's adjacent-fields check finds them, in one pass over the text
        whatever the number of values (the engine's check costs a window and a piece per cut).
        A finding covers the joined segment, which cannot be rewritten: a redaction blocks."""
        starts = [0, *boundaries]
        out: list[Hit] = []
        for start, end, cuts in self._join_windows(joined, boundaries):
            text = joined[start:end]
            raws = self.engine._token_hits(text, frozenset(cuts)) if self.options.tokens else []
            if self.options.known_secrets and self.known:
                # Only a secret's length either side of each cut (a third of a search of all of it).
                raws += self.engine._known_around(text, cuts)
            for h in raws:
                if h.detector == ENTROPY or (h.detector, h.secret_name) in already:
                    continue  # any two values glued together look random: not evidence
                first = bisect.bisect_right(starts, h.start + start) - 1
                if first == bisect.bisect_right(starts, h.end + start - 1) - 1:
                    continue  # inside one value: that value's own scan judges it
                already.add((h.detector, h.secret_name))
                out.append(Hit(index, RawHit(h.start + start, h.end + start, h.detector, h.name, h.confidence,
                                             h.secret_name, "split" if h.encoding is None else f"split+{h.encoding}")))
        return out

    def scan_values(self, values: Iterable[str], location: str = "body") -> list[Finding]:
        """The adjacent-values check alone on ``values`` (read in order from a streamed body, its
        text scanned elsewhere): tokens and secrets cut over two neighbouring values, a window
        at a time. Offsets are into the joined values, not the body."""
        if self._idle:
            return []
        where = f"{location} (adjacent values)"
        seen: set[tuple[str, str | None]] = set()
        out: list[Finding] = []
        for joined, cuts in bodies.value_chunks(values, reach=SPLIT_REACH):
            for hit in self._joined_hits(-1, joined, cuts, seen):
                raw = hit.raw
                out.append(Finding(raw.detector, raw.name, where, raw.start, raw.end, raw.confidence,
                                   raw.secret_name, raw.encoding))
        return out

    def _join_windows(self, joined: str, boundaries: list[int]) -> list[tuple[int, int, list[int]]]:
        """``(start, end, cuts inside)`` of the stretches of ``joined`` a detector could match in
        (the batch prefilter's windows: a big document's values are mostly words and numbers),
        or the whole text when the prefilter cannot vouch for it."""
        # Beyond latin-1 a character becomes one "?": offsets stay, and no token format holds one.
        windows = self._prefilter().windows(joined.encode("latin-1", "replace"))
        if windows is None:
            windows = [(0, len(joined))]
        out = []
        for start, end in windows:
            cuts = [b - start for b in boundaries[bisect.bisect_right(boundaries, start):
                                                  bisect.bisect_left(boundaries, end)]]
            if cuts:
                out.append((start, end, cuts))
        return out

    @property
    def _piece_table(self) -> bytes | None:
        """Bytes of the secrets' characters to "A", others to a blank (a body's text is its bytes
        as latin-1: only characters below 256 can match); None when a secret holds a NUL."""
        if self._piece_bytes is None:
            chars = {ord(ch) for _, value in self.known.values() for ch in value if ord(ch) < 256}
            self._piece_bytes = b"" if 0 in chars else bytes(0x41 if b in chars else 0x20 for b in range(256))
        return self._piece_bytes or None

    def new_memory(self) -> FragmentMemory:
        """An empty memory of the pieces of this scanner's secrets that have left."""
        return FragmentMemory(self.fragments.lengths())

    def scan_fragments(self, data: bytes | bytearray, location: str = "body", *, memory: FragmentMemory,
                       whole: Iterable[str | None] = (), seen: int = 0) -> list[Finding]:
        """Pieces of the bottle's secrets in a batch of a streamed body, remembered in ``memory``
        as ``scan_request`` does: a finding per secret that, with the pieces sent before (in
        earlier requests or earlier batches of this body), this batch completes. Every batch is
        searched, as a buffered body is searched whole: padding cannot push a piece out of reach.
        ``seen``: how many of the batch's first bytes an earlier call was given (the tail a
        stream holds back); only a piece reaching past them is new, so of those only the last
        secret's length is searched again. ``whole``: the names of secrets found whole in the
        body already (judged as they are, not looked for in pieces)."""
        lengths = self.fragments.lengths()
        if not lengths:
            return []
        base = max(0, seen - max(lengths.values()))
        with memoryview(data) as view:
            head = bytes(view[base:])  # one copy (a slice of a bytearray, then bytes of it, made two)
        runs = self._piece_runs(head)
        request = _Request()
        if runs is None:
            request.add(location, bodies.as_text(head))
        else:
            # Only the runs of the secrets' characters, NUL between them (no secret holds one):
            # every piece, and every place one could be grown from, lies inside one run.
            request.add(location, "\x00".join(bodies.as_text(head[start:end]) for start, end in runs))
        hits = self._across_requests(request, [], memory, whole={name for name in whole if name})
        found = self._finish(request, hits)
        if runs is not None:
            found = [replace(f, start=_from_runs(runs, f.start), end=_from_runs(runs, f.end - 1) + 1)
                     if f.end > f.start else replace(f, start=_from_runs(runs, f.start), end=_from_runs(runs, f.start))
                     for f in found]
        return [replace(f, start=f.start + base, end=f.end + base) for f in found] if base else found

    def _piece_runs(self, head: bytes) -> list[tuple[int, int]] | None:
        """The maximal runs of ``head`` made of the secrets' characters and long enough to hold a
        block with a neighbour (``fragments.find`` grows nothing shorter), when they are few and
        short (binary data: a few per KiB); else None, and ``head`` is searched whole. One
        ``find`` per block over a MiB of random data cost about 30 ms an upload."""
        table = self._piece_table
        if table is None or not self.fragments:
            return None
        shape = head.translate(table)
        needle = b"A" * PIECE_RUN
        runs: list[tuple[int, int]] = []
        covered = 0
        at = shape.find(needle)
        while at != -1:
            end = shape.find(b" ", at + PIECE_RUN)
            end = len(shape) if end == -1 else end
            runs.append((at, end))
            covered += end - at
            if len(runs) > PIECE_RUNS_MAX or covered > len(head) // 8:
                return None  # text: searched whole, as a buffered body is
            at = shape.find(needle, end)
        return runs

    def _across_requests(self, request: _Request, hits: list[Hit], memory: FragmentMemory,
                         whole: set[str] | None = None) -> list[Hit]:
        if not self.fragments:
            return []
        whole = (whole or set()) | {h.raw.secret_name for h in hits if h.raw.detector == KNOWN_SECRET}
        # Every text (and decoded field value) of the request, joined by NUL characters, which no
        # secret holds: one search for all of them instead of one per JSON string. All of it, as
        # much as the body limit lets be read: a budget spent in order would let padding sent in
        # front of a piece push it out of reach.
        texts: list[str] = []
        owners: list[tuple[int, bool, int]] = []  # (segment, decoded form?, segment length)
        for index, segment in enumerate(request.segments):
            text = segment.text
            texts.append(text)
            owners.append((index, False, len(segment.text)))
            if segment.field and _ENCODED_FIELD.fullmatch(text):
                # Only a value with the shape of hex or base64 can hold an encoded piece.
                for form in fragment_forms(text)[1:]:
                    texts.append(form)
                    owners.append((index, True, len(segment.text)))
        starts = list(itertools.accumulate((len(t) + 1 for t in texts[:-1]), initial=0))
        # A secret sent whole here was found (and judged) already: not looked for.
        found = self.fragments.find(SEPARATOR.join(texts), skip=whole)
        parts: dict[str, list[tuple[int, int, int]]] = {}
        for fragment in found:
            i = bisect.bisect_right(starts, fragment.start) - 1
            while i < len(texts) and starts[i] < fragment.end:
                index, decoded, length = owners[i]
                if decoded:
                    span = (0, length)  # a decoded form's offsets are not the text's: all of it
                else:
                    span = (max(fragment.start, starts[i]) - starts[i],
                            min(fragment.end, starts[i] + len(texts[i])) - starts[i])
                parts.setdefault(fragment.secret_name, []).append((index, *span))
                i += 1
        out: list[Hit] = []
        for name in memory.observe(found):
            spans = sorted(set(parts[name]))
            first = spans[0]
            raw = RawHit(first[1], first[2], KNOWN_SECRET, KNOWN_SECRET_NAME, HIGH, name, ACROSS_REQUESTS)
            out.append(Hit(first[0], raw, spans))
        return out

    def redact_request(
        self,
        method: str,
        url: str,
        headers: Headers = (),
        body: bytes | str | None = None,
        *,
        skip_headers: Iterable[str] = (),
        memory: FragmentMemory | None = None,
    ) -> RedactedRequest:
        """The request with every finding replaced by a marker, JSON kept JSON and forms kept
        forms. Whatever could not be redacted (a host name, a body past the scan limit, a value
        cut in a way the rebuild cannot follow) is in ``unredacted``: the caller must block."""
        request = self._request(url, headers, body, skip_headers, method)
        hits = self._scan(request)
        if memory is not None:
            # The request that completes a secret is never recorded, so looking again is safe.
            hits += self._across_requests(request, hits, memory)
        findings = self._finish(request, hits)
        if not findings:
            return RedactedRequest(url, tuple(request.headers), _body_bytes(body), ())
        per_segment: dict[int, list[tuple[int, int, str]]] = {}
        for hit in hits:
            label = hit.raw.secret_name or hit.raw.detector
            for index, start, end in hit.spans():
                per_segment.setdefault(index, []).append((start, end, label))
        new_url = self._rebuild_url(request, per_segment)
        new_headers = self._rebuild_headers(request, per_segment)
        new_body, drop_encoding = self._rebuild_body(request, per_segment, body)
        rescan_headers = [(k, v) for k, v in new_headers if not (drop_encoding and k.lower() == "content-encoding")]
        after = self.scan_request(method, new_url, rescan_headers, new_body, skip_headers=skip_headers)
        # A host name is not rewritten: what was found in it (a piece of a secret in a label,
        # completing one sent before) is still there, whatever the rescan alone sees.
        after += [f for f in findings if "url.host" in f.location and f not in after]
        changed = new_url != url or new_headers != request.headers or new_body != _body_bytes(body)
        return RedactedRequest(new_url, tuple(new_headers), new_body, tuple(findings), tuple(after), drop_encoding,
                               changed)

    # -- building the segment list ---------------------------------------------------------

    def _request(self, url: str, headers: Headers, body: bytes | str | None, skip: Iterable[str],
                 method: str = "") -> _Request:
        request = _Request()
        skipped = {s.lower() for s in skip}
        if method.upper() not in _METHODS:
            # HTTP lets a client name any method, and the upstream receives it as sent: a method
            # that is no standard one is a text like any other (it cannot be rewritten: a finding
            # there blocks).
            request.add("method", method)
        self._add_url(request, url)
        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
        request.headers = [(str(k), str(v)) for k, v in pairs]
        content_type = content_encoding = None
        cookies: list[tuple[str, str]] = []
        after_cookie = False  # the field before is a cookie header's value
        for i, (name, value) in enumerate(request.headers):
            lowered = name.lower()
            if lowered == "content-type":
                content_type = value
            elif lowered == "content-encoding":
                content_encoding = value
            if lowered in skipped:
                continue
            name_index = request.add(f"header[{i}].name", name, deep=False, piece=True)
            # Cookie headers one after another (HTTP/2 sends each cookie as a header of its own)
            # are not joined as texts: "csrftoken=<random>" would read on into the next cookie's
            # text. Their values are joined one by one below.
            value_index = request.add(self._label("header:", lowered, f"header[{i}]"), value, field_=True,
                                      fresh=after_cookie and lowered == "cookie")
            after_cookie = lowered == "cookie"
            request.header_indices[i] = (name_index, value_index)
            if lowered == "cookie":
                cookies += self._add_cookies(request, value, i)
        # The values of every cookie, of one header or of several, join the adjacent-fields check
        # in the order sent, as a server reads them: a token cut over two cookies. A run of their
        # own (no cookie name between them). Only joined: each header was scanned whole above; a
        # finding here cannot be rewritten (the re-scan of a redaction blocks).
        for k, (where, text) in enumerate(cookies[: MAX_FIELDS]):
            request.add(where, text, field_=True, scan=False, fresh=k == 0)
        if body:
            raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
            self._add_body(request, raw, content_encoding, content_type or "", base="body")
        return request

    def _add_cookies(self, request: _Request, value: str, header: int) -> list[tuple[str, str]]:
        """Each cookie's name and value joins the check for pieces of a secret in any order: a
        value cut into cookies is one header's text, not fields. The header was scanned whole.
        Returns each cookie's (location, decoded value), for the adjacent-fields check."""
        values: list[tuple[str, str]] = []
        for k, pair in enumerate(value.split(";")[:MAX_FIELDS]):
            name, eq, cookie = pair.strip().partition("=")
            where = f"header[{header}].cookie[{k}]"
            # A pair without "=" is a value to some servers (and a name to others). Servers
            # percent-decode cookie values (a "&" or ";" in one must be escaped).
            raw = cookie.strip().strip('"') if eq else name
            decoded = urls.unquote_latin1(raw)
            values.append((where, decoded))
            # The decoded value is a field (the caller adds it); the name and the value as sent
            # are pieces.
            for text in dict.fromkeys((name, urls.unquote_latin1(name), raw) if eq else (raw,)):
                if text != decoded and len(text) >= MIN_FRAGMENT:
                    request.add(where, text, scan=False, piece=True)
        return values

    def _add_url(self, request: _Request, url: str) -> None:
        view = urls.split_url(url)
        request.url = view
        if view.host:
            request.extra.extend(replace(f, location="url.host") for f in self.scan_host(view.host))
            # Each label joins the split check and the search for pieces sent across requests,
            # as path pieces do: a secret sent a label at a time, one host per request (a DNS
            # tunnel under a wildcard route), or half in the host and half in the path.
            for k, label in enumerate(_bare_host(view.host).split(".")):
                if len(label) >= MIN_SECRET_LENGTH:
                    request.add(f"url.host[{k}]", label, field_=True, scan=False)
        if view.userinfo:
            request.userinfo_index = request.add("url.userinfo", urls.unquote_latin1(view.userinfo), field_=True)
        if view.path:
            request.path_index = request.add("url.path", view.path)
            # Path pieces join the split check only: the whole path was scanned (and decoded) above.
            for k, piece in enumerate(view.path.split("/")):
                if piece:
                    index = request.add(f"url.path[{k}]", urls.unquote_latin1(piece), field_=True, scan=False)
                    request.path_pieces.append((index, k))
        if len(view.params) > MAX_FIELDS and view.query is not None:
            # Absurdly many parameters: the query is scanned as one text instead.
            request.add("url.query", view.query)
            view.params = []
        elif view.params and view.query is not None and "+" in view.query:
            # Decoding turns a "+" into a blank; a value sent with an unencoded "+" (a base64
            # secret pasted into a URL) is only whole in the raw text: the direct layer looks there.
            request.add("url.query", view.query, deep=False)
        for i, param in enumerate(view.params):
            name_index = request.add(f"url.query[{i}].name", param.name, piece=True)
            value_index = -1
            if param.value is not None:
                label = self._label("url.query.", param.name, f"url.query[{i}].value")
                value_index = request.add(label, param.value, field_=True)
                if param.name.lower() in dns.PARAMETERS:
                    self._add_dns_names(request, dns.names_in_value(param.value), f"url.query[{i}]")
            request.param_indices.append((name_index, value_index))
        if view.params and view.query is not None:
            self._add_semicolon_values(request, view.query, "url.query")
        if view.fragment:
            request.fragment_index = request.add("url.fragment", view.fragment)

    def _add_semicolon_values(self, request: _Request, text: str, where: str) -> None:
        """The values of ``text`` (a query or form) read with ``;`` between pairs as well as
        ``&`` (``urls.semicolon_values``), which the parse on ``&`` alone leaves in one value:
        they join the adjacent-fields check only (the text was scanned), so a token cut over
        ``a=half;b=half`` is found. A finding here cannot be rewritten: a redaction blocks."""
        for k, value in enumerate(urls.semicolon_values(text, MAX_FIELDS)):
            request.add(f"{where}[;{k}].value", value, field_=True, scan=False, fresh=k == 0)

    def _add_dns_names(self, request: _Request, names: Iterable[str], where: str) -> None:
        """Names a request asks a resolver for (``dlp.dns``), judged as a request's host is: a
        finding stays in the request (a name cannot be rewritten), so the caller blocks."""
        for name in names:
            request.extra.extend(replace(f, location=f"{where} (DNS name)") for f in self.scan_host(name))

    def _add_body(self, request: _Request, raw: bytes, content_encoding: str | None, content_type: str,
                  *, base: str) -> None:
        opts = self.options
        decoded = bodies.decode_body(raw, content_encoding, opts.max_body_bytes, nested=True)
        info = _Body(decoded)
        request.body = info
        if decoded.truncated:
            request.extra.append(Finding(SCAN_LIMIT, "Body larger than the scan limit", base, opts.max_body_bytes,
                                         opts.max_body_bytes, HIGH))
        if decoded.error is not None:
            # The upstream reads the decoded body, which was not scanned: corrupt data, or an
            # encoding this engine lacks, must not be a way past it.
            request.extra.append(Finding(SCAN_LIMIT, "Body does not decode as its Content-Encoding says", base,
                                         0, 0, HIGH))
        data = decoded.data
        budget = [max(0, opts.max_body_bytes - len(data) - sum(map(len, decoded.contents)))]
        self._add_inner(request, decoded.contents, decoded.limits, base)
        structured = len(data) <= opts.structured_limit
        mime, params = bodies.parse_content_type(content_type)
        # Decoded at any size: past ``deep_limit`` in overlapping windows (``engine``).
        info.raw_index = request.add(base, bodies.as_text(data))
        if mime == "application/dns-message":  # DNS over HTTPS, POST
            self._add_dns_names(request, dns.query_names(data), base)
        if not structured:
            # Too large to parse: the values, read by a lexical pass, still meet their neighbours
            # in the adjacent-values check (a token cut over two of them is in no text whole).
            text = request.segments[info.raw_index].text
            if mime == "application/x-www-form-urlencoded":
                self._add_joined(request, f"{base}.form", bodies.lexed_form_values(text), lazy=True)
            elif bodies.is_json(mime) or (not mime.startswith("multipart/") and bodies.looks_like_json(data)):
                self._add_joined(request, f"{base}.json", itertools.chain.from_iterable(bodies.lexed_json_values(text)),
                                 lazy=True)
            return
        # JSON under any type but a form's or multipart's is read as JSON (documents one after
        # another as well): NDJSON is sent as application/ndjson, text/x-ndjson, x-ldjson or a
        # vendor type (x-amz-json-1.1) as much as under the types ``is_json`` knows.
        if bodies.is_json(mime) or (
            mime != "application/x-www-form-urlencoded" and not mime.startswith("multipart/")
            and bodies.looks_like_json(data)
        ):
            if self._add_json(request, info, data, base):
                # Every key and value is scanned (unescaped) on its own; the raw text adds nothing.
                request.segments[info.raw_index].scan = False
                return
        if mime == "application/x-www-form-urlencoded":
            pairs = bodies.form_pairs(data, MAX_FIELDS)
            if pairs is None:
                return  # absurdly many fields: the raw text (decoded layer included) is scanned
            info.kind = "form"
            info.form_pairs = pairs
            info.form_first = len(request.segments)
            for i, (name, value) in enumerate(info.form_pairs):
                request.add(f"{base}.form[{i}].name", name, piece=True)
                request.add(self._label(f"{base}.form.", name, f"{base}.form[{i}].value"), value, field_=True)
            if b";" in data:
                self._add_semicolon_values(request, data.decode("latin-1"), f"{base}.form")
            # Names and values are scanned decoded; the raw text is scanned as sent (no decoded
            # layer: that is the fields'), for a value with an unencoded "+" the decoding broke.
            if b"+" in data:
                request.segments[info.raw_index].deep = False
            else:
                request.segments[info.raw_index].scan = False
            return
        if mime.startswith("multipart/") and params.get("boundary"):
            info.kind = "multipart"
            # Parts past the limit are still in the raw body, which is scanned.
            info.parts = bodies.multipart_parts(data, params["boundary"], MAX_FIELDS)
            pairs: list[tuple[str, str]] = []  # (content, location) of the small fields holding a ";"
            for part in info.parts:
                where = f"{base}.multipart[{part.index}]"
                header_text = bodies.as_text(data[part.header_start : part.header_end])
                header_index = request.add(f"{where}.headers", header_text, deep=True)
                if part.name:
                    # A field's name, like a form's, is one of the pieces a secret may be cut into.
                    request.add(f"{where}.name", part.name, scan=False, piece=True)
                content = bodies.part_content(data, part)
                content_index = -1
                encoded = content != data[part.content_start : part.content_end]
                if archives.compression_of(content) or part.filename:
                    # An uploaded file may be compressed or an archive (a package): its files
                    # are scanned too. Redaction cannot rewrite them; the re-scan then blocks.
                    found = archives.expand(content, budget[0])
                    budget[0] = max(0, budget[0] - len(found.data) - sum(map(len, found.contents)))
                    inner = ([found.data] if found.layers else []) + found.contents
                    limits = found.limits + (["file part larger than the scan limit"] if found.truncated else [])
                    self._add_inner(request, inner, limits, where)
                if encoded:
                    # Transfer-encoded: the raw body scan saw only the encoding.
                    content_index = request.add(f"{where}.content", bodies.as_text(content))
                elif len(content) <= 64 * 1024 and not part.filename:
                    # A small form field takes part in the split check like any field; its text
                    # is in the raw body, which was scanned already.
                    content_index = request.add(f"{where}.content", bodies.as_text(content), field_=True,
                                                scan=False)
                    if b";" in content:
                        pairs.append((bodies.as_text(content), where))
                info.part_segments[part.index] = (header_index, content_index, encoded)
            # A field holding pairs ("a=half;b=half") is read as a form's would be: their values
            # join the adjacent-fields check, as one run after the parts (a run costs a scan).
            values = [(f"{where}.content[;{k}].value", value) for text, where in pairs
                      for k, value in enumerate(urls.semicolon_values(text, MAX_FIELDS))]
            if len(values) > MAX_FIELDS:
                self._add_joined(request, f"{base}.multipart[;]", [value for _, value in values])
            else:
                for k, (where, value) in enumerate(values):
                    request.add(where, value, field_=True, scan=False, fresh=k == 0)

    def _add_inner(self, request: _Request, contents: Iterable[bytes], limits: Iterable[str], base: str) -> None:
        """What was found inside a body or part (``archives``): each content scanned as text, and
        each thing that could not be read whole a scan-limit (the caller blocks)."""
        for i, content in enumerate(contents):
            request.add(f"{base}.inner[{i}]", bodies.as_text(content))
            if bodies.looks_like_json(content):
                # A JSON file in an archive (or under compression): its values are neighbours as
                # a body's are. Read as UTF-8 when it is, as a parse would (a secret's letters
                # past ASCII), else byte for byte.
                text = content.decode("utf-8", "replace") if len(content) <= self.options.structured_limit \
                    else bodies.as_text(content)
                values = itertools.chain.from_iterable(bodies.lexed_json_values(text))
                # Fields one by one (the checks a small body's get) while the request holds few
                # segments: an archive of many small files must not make millions of them.
                room = max(0, 2 * MAX_FIELDS - len(request.segments))
                head = list(itertools.islice(values, room + 1))
                if len(head) <= room:
                    self._add_adjacent(request, f"{base}.inner[{i}].json", head)
                else:
                    self._add_joined(request, f"{base}.inner[{i}].json", itertools.chain(head, values), lazy=True)
        for reason in dict.fromkeys(limits):
            request.extra.append(Finding(SCAN_LIMIT, reason[:1].upper() + reason[1:], base, 0, 0, HIGH))

    def _add_json(self, request: _Request, info: _Body, data: bytes, base: str) -> bool:
        shadowed: list[Any] = []
        repeated: list[list[Any]] = []
        try:
            doc = bodies.parse_json(data, shadowed, repeated)
        except (ValueError, UnicodeDecodeError) as error:
            if isinstance(error, json.JSONDecodeError) and (error.msg == "Extra data" or data[:1] == b"\x1e"):
                # Documents one after another (a JSON text sequence starts each with RS).
                self._add_json_lines(request, data, base)
            else:
                # Not JSON to a strict parser (cut short, a stray comma): a lenient receiver still
                # reads its strings, which meet their neighbours as a document's values do.
                values = bodies.lexed_json_values(bodies.as_text(data))
                self._add_adjacent(request, f"{base}.json", itertools.chain.from_iterable(values))
            return False
        strings = bodies.json_strings(doc, MAX_FIELDS)
        if strings is None:
            # Too many values to take apart one by one (a model request with a long
            # conversation and many tools): the parsed keys and values, the earlier values of
            # duplicate keys and the lists of character codes are scanned joined by NUL (no
            # detector matches across it), decoded layers included, as the parse undid every
            # JSON escape. The raw text is scanned as sent: its decoded layer would undo the
            # same escapes once more, one by one (four times the scan of the whole body).
            texts = bodies.json_texts(doc) + bodies.json_texts(shadowed)
            request.add(f"{base}.json (values)", SEPARATOR.join(texts))
            self._add_code_lists(request, doc, data, base)
            request.segments[info.raw_index].deep = False
            # Values (not keys) in document order are neighbours as they are in a smaller
            # document: a token cut over two of them is found however many pad the body. The
            # values of a repeated key, in the order sent, as well.
            self._add_joined(request, f"{base}.json", bodies.json_values(doc)[0])
            self._add_joined(request, f"{base}.json (duplicate key)", _value_texts(repeated))
            return False
        self._add_code_lists(request, doc, data, base)
        info.kind = "json"
        info.json_doc = doc
        info.json_strings = strings
        info.json_first = len(request.segments)
        for item in info.json_strings:
            # Values join the split check; keys sit between them and would break every join.
            request.add(self._json_location(base, item), item.text, field_=not item.is_key, piece=item.is_key)
        if shadowed:
            # A duplicate key's earlier value is not in the document, yet the upstream may read
            # it: scanned too, unescaped. A redaction cannot rebuild it, so the re-scan blocks.
            for item in bodies.json_strings(shadowed, MAX_FIELDS) or [bodies.JsonString((), data.decode(
                    "utf-8", "replace"), False, None, None)]:
                request.add(f"{base}.json (duplicate key)", item.text, field_=not item.is_key)
            # A repeated key's values, in the order sent, join the adjacent-fields check (a
            # receiver may join them): the earlier ones are apart from the document's above.
            self._add_adjacent(request, f"{base}.json (duplicate key)", _value_texts(repeated))
        return True

    def _add_json_lines(self, request: _Request, data: bytes, base: str) -> None:
        """A body of JSON documents one after another (NDJSON, JSON Lines): the raw text is
        scanned as a whole document's would be, and the documents' string values, in order, join
        the adjacent-fields check, as fields of one document do (a token cut over two lines).
        A finding here cannot be rewritten: a redaction blocks."""
        self._add_adjacent(request, f"{base}.ndjson", _value_texts([bodies.json_documents(data)]))

    def _add_adjacent(self, request: _Request, where: str, texts: Iterable[str]) -> None:
        """``texts`` (values a receiver may read as neighbours, their text scanned elsewhere) join
        the adjacent-fields check as a run of their own: one field each, or, past ``MAX_FIELDS``,
        joined into one text checked at every cut (``_joined_hits``), so padding a body with
        more values than that does not take the check away. Values read lexically (an iterator,
        not a list) are, past that, joined a window at a time (``_add_joined``'s ``lazy``)."""
        lazy = not isinstance(texts, list)
        values = iter(texts)
        head = list(itertools.islice(values, MAX_FIELDS + 1))
        if len(head) <= MAX_FIELDS:
            for k, text in enumerate(head):
                request.add(f"{where}[{k}]", text, field_=True, scan=False, fresh=k == 0)
            return
        self._add_joined(request, where, itertools.chain(head, values) if lazy else texts, lazy=lazy)

    def _add_joined(self, request: _Request, where: str, texts: Iterable[str], *, lazy: bool = False) -> None:
        """``texts`` as one segment (scanned by nothing but ``_joined_hits``) and its cuts.

        ``lazy``: values of a body too large to join whole (millions of one-letter values would
        cost gigabytes of cut offsets): joined and checked a window at a time here, and only
        the stretch around what a window holds across a cut is kept, for ``_scan`` to find
        again. Memory stays a window's, whatever the body."""
        if lazy:
            seen: set[tuple[str, str | None]] = set()  # one stretch per token kind or secret
            for joined, cuts in bodies.value_chunks(texts, reach=SPLIT_REACH):
                for hit in self._joined_hits(-1, joined, cuts, seen):
                    start, end = max(0, hit.raw.start - SPLIT_REACH), min(len(joined), hit.raw.end + SPLIT_REACH)
                    kept = [cut - start for cut in cuts[bisect.bisect_right(cuts, start):bisect.bisect_left(cuts, end)]]
                    index = request.add(f"{where} (adjacent values)", joined[start:end], scan=False)
                    request.joins.append((index, kept))
            return
        texts = [t for t in texts if t]  # an empty value is no cut of its own
        if len(texts) < 2:
            return
        boundaries = list(itertools.accumulate(map(len, texts[:-1])))
        index = request.add(f"{where} (adjacent values)", "".join(texts), scan=False)
        request.joins.append((index, boundaries))

    def _add_code_lists(self, request: _Request, doc: Any, data: bytes, base: str) -> None:
        if has_code_list(bodies.as_text(data)):
            # Numbers are not strings: a list of character codes would be in no segment.
            lists = _code_lists(doc)
            if lists:
                request.add(f"{base}.json (numbers)", SEPARATOR.join(lists))

    def _json_location(self, base: str, item: bodies.JsonString) -> Any:
        def render() -> str:
            out = "$"
            for step in item.path:
                if isinstance(step, int):
                    out += f"[{step}]"
                elif self._safe(step):
                    out += f".{step}"
                else:
                    out += "[?]"
            return f"{base}.json:{out}" + (" (key)" if item.is_key else "")

        return render

    # -- findings --------------------------------------------------------------------------

    def _finish(self, request: _Request, hits: list[Hit]) -> list[Finding]:
        findings = self.engine.findings(hits, request.segments) + request.extra
        # A value seen both in the raw body and in its parsed field is reported once, at the field.
        body = request.body
        raw_locations = ["url.query"]
        if body is not None and body.raw_index >= 0:
            raw_locations.append(request.segments[body.raw_index].where())
        for raw_location in raw_locations:
            structured = {(f.detector, f.secret_name) for f in findings
                          if f.location.startswith(raw_location + ".")}
            if structured:
                findings = [f for f in findings
                            if not (f.location == raw_location and (f.detector, f.secret_name) in structured)]
        return resolve_overlaps(dedupe(findings))

    def _label(self, prefix: str, name: str, fallback: str) -> Any:
        """A location naming ``name`` when that is safe, rendered only if a finding needs it."""
        return lambda: f"{prefix}{name}" if self._safe(name) else fallback

    def _safe(self, name: str) -> bool:
        """May ``name`` (a header, parameter or JSON key chosen by the agent) appear in a location?

        Only short, plain names that carry nothing a scan would flag and do not look random: a
        secret used *as* a key must not reach the logs through the location string.
        """
        cached = self._safe_names.get(name)
        if cached is not None:
            return cached
        ok = bool(_SAFE_NAME.fullmatch(name)) and not _looks_random(name) and not self._holds_piece(name)
        if ok:
            ok = not self.engine.direct(name) and not self.known.find_in_host(name)
        if len(self._safe_names) >= _SAFE_CACHE_MAX:
            self._safe_names.clear()
        self._safe_names[name] = ok
        return ok

    def _holds_piece(self, name: str) -> bool:
        """Does ``name`` hold ``PIECE`` characters in a row of a bottle secret (any case)? A
        secret cut into short keys must not reach the logs a piece per location."""
        if self._pieces is None:
            self._pieces = frozenset(
                value[i : i + PIECE].lower()
                for _, value in self.known.values() for i in range(len(value) - PIECE + 1)
            )
        if not self._pieces:
            return False
        lowered = name.lower()
        return any(lowered[i : i + PIECE] in self._pieces for i in range(len(lowered) - PIECE + 1))

    # -- rebuilding ------------------------------------------------------------------------

    def _rebuild_url(self, request: _Request, spans: dict[int, list[tuple[int, int, str]]]) -> str:
        view = request.url
        assert view is not None
        if request.userinfo_index in spans and view.userinfo is not None:
            text = request.segments[request.userinfo_index].text
            view.userinfo = urls.quote_latin1(apply_spans(text, spans[request.userinfo_index]))
        if request.path_index in spans:
            view.path = apply_spans(view.path, spans[request.path_index],
                                    render=lambda label: urls.encode_path_marker(marker(label)))
        piece_spans = [(seg, k) for seg, k in request.path_pieces if seg in spans]
        if piece_spans:
            raw_pieces = view.path.split("/")
            for seg, k in piece_spans:
                if k < len(raw_pieces):
                    label = spans[seg][0][2]
                    raw_pieces[k] = urls.encode_path_marker(marker(label))
            view.path = "/".join(raw_pieces)
        for param, (name_index, value_index) in zip(view.params, request.param_indices):
            if name_index in spans or value_index in spans:
                name = request.segments[name_index].text
                if name_index in spans:
                    name = apply_spans(name, spans[name_index])
                raw = urls.encode_component(name)
                if value_index >= 0:
                    value = request.segments[value_index].text
                    if value_index in spans:
                        value = apply_spans(value, spans[value_index])
                    raw += "=" + (urls.encode_component(value) if value_index in spans or name_index in spans
                                  else param.raw.partition("=")[2])
                param.raw = raw
        if request.fragment_index in spans and view.fragment is not None:
            view.fragment = apply_spans(view.fragment, spans[request.fragment_index])
        return view.rebuild()

    def _rebuild_headers(self, request: _Request, spans: dict[int, list[tuple[int, int, str]]]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for i, (name, value) in enumerate(request.headers):
            indices = request.header_indices.get(i)
            if indices is not None and indices[1] in spans:
                value = apply_spans(value, spans[indices[1]])
            out.append((name, value))
        return out

    def _rebuild_body(self, request: _Request, spans: dict[int, list[tuple[int, int, str]]],
                      original: bytes | str | None) -> tuple[bytes | None, bool]:
        info = request.body
        if info is None or info.decoded.truncated or info.decoded.inner:
            # Past the scan limit nothing can be rebuilt without losing data, nor can compression
            # found nested inside: the body goes out as it came and the re-scan reports what it
            # still holds as unredacted.
            return _body_bytes(original), False
        data = info.decoded.data
        touched = False
        if info.kind == "json":
            replacements: dict[int, str] = {}
            for offset, item in enumerate(info.json_strings):
                index = info.json_first + offset
                if index in spans:
                    replacements[offset] = apply_spans(item.text, spans[index])
            if replacements:
                doc = bodies.apply_json_redactions(info.json_doc, replacements, info.json_strings)
                data = bodies.dump_json(doc)
                touched = True
            if info.raw_index in spans and not replacements:
                data = _redact_bytes(data, spans[info.raw_index])
                touched = True
        elif info.kind == "form":
            pairs = list(info.form_pairs)
            for i in range(len(pairs)):
                name_index, value_index = info.form_first + 2 * i, info.form_first + 2 * i + 1
                if name_index in spans or value_index in spans:
                    name, value = pairs[i]
                    if name_index in spans:
                        name = apply_spans(name, spans[name_index])
                    if value_index in spans:
                        value = apply_spans(value, spans[value_index])
                    pairs[i] = (name, value)
                    touched = True
            if touched:
                data = bodies.encode_form(pairs)
            elif info.raw_index in spans:
                data = _redact_bytes(data, spans[info.raw_index])
                touched = True
        elif info.kind == "multipart":
            # (start, end, replacement, rank): a re-encoded part beats a marker over the same bytes
            regions: list[tuple[int, int, str, int]] = [
                (s, e, marker(label), 1) for s, e, label in spans.get(info.raw_index, [])
            ]
            for part in info.parts:
                header_index, content_index, transfer = info.part_segments.get(part.index, (-1, -1, False))
                for s, e, label in spans.get(header_index, []):
                    regions.append((part.header_start + s, part.header_start + e, marker(label), 1))
                if content_index in spans and transfer:
                    text = apply_spans(request.segments[content_index].text, spans[content_index])
                    encoded = bodies.encode_part_content(text.encode("latin-1"), part)
                    regions.append((part.content_start, part.content_end, encoded.decode("latin-1"), 0))
                elif content_index in spans:
                    for s, e, label in spans[content_index]:
                        regions.append((part.content_start + s, part.content_start + e, marker(label), 1))
            if regions:
                data = _replace_regions(data, regions)
                touched = True
        elif info.raw_index in spans:
            data = _redact_bytes(data, spans[info.raw_index])
            touched = True
        if not touched:
            return _body_bytes(original), False
        if info.decoded.sniffed:
            return gzip.compress(data, mtime=0), False  # undeclared gzip: send gzip again
        return data, bool(info.decoded.encodings)


# -- helpers -----------------------------------------------------------------------------------


def _looks_random(name: str) -> bool:
    """A name that may be a generated value, or a piece of one: 8+ characters that fall apart into
    words and numbers averaging under 2 characters (``GF49peQI6D``, ``a8f3k2m9``), or into
    three numbers or more, or 12+ characters mixing three classes. Names of words (``messages``,
    ``x-api-key``, ``getUserByID``, ``X-Amz-Date``, ``userId42``) are not."""
    if len(name) < 8:
        return False
    if len(name) >= 12 and char_classes(name) >= 3:
        return True  # long and mixed: a random value is too often made of long-looking words
    parts = _NAME_PART.findall(name)
    if not parts:
        return False
    numbers = sum(1 for part in parts if part[0].isdigit())
    return numbers >= 3 or sum(map(len, parts)) < 2 * len(parts)


def _value_texts(chains: Iterable[Iterable[Any]]) -> list[str]:
    """The string values (not keys) of each document in ``chains``, in order."""
    out: list[str] = []
    for chain in chains:
        out += bodies.json_values(list(chain))[0]  # one walk over the documents as a list
    return out


def _code_lists(doc: Any) -> list[str]:
    """The lists of ``MIN_CODES`` or more integers (or strings that are numbers, ``["0x67", ...]``:
    each is a segment of its own, too short to hold anything) in a parsed JSON document, each
    written as numbers separated by commas (for the character-code layer)."""
    out: list[str] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            if len(node) >= MIN_CODES and all(type(x) is int for x in node):
                out.append(",".join(map(str, node)))
            elif len(node) >= MIN_CODES and all(type(x) is str and CODE_STRING.fullmatch(x) for x in node):
                out.append(",".join(x.strip() for x in node))
            else:
                stack.extend(x for x in node if isinstance(x, (dict, list)))
    return out


def _as_text(data: str | bytes) -> str:
    return data if isinstance(data, str) else bodies.as_text(bytes(data))


def _like(original: str | bytes, text: str) -> str | bytes:
    return text if isinstance(original, str) else text.encode("latin-1")


def _body_bytes(body: bytes | str | None) -> bytes | None:
    if body is None:
        return None
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _spans_for(hits: list[Hit], segment: int) -> list[tuple[int, int, str]]:
    return [(s, e, h.raw.secret_name or h.raw.detector) for h in hits for i, s, e in h.spans() if i == segment]


def _redact_bytes(data: bytes, spans: list[tuple[int, int, str]]) -> bytes:
    return apply_spans(bodies.as_text(data), spans).encode("latin-1")


def _replace_regions(data: bytes, regions: list[tuple[int, int, str, int]]) -> bytes:
    text = bodies.as_text(data)
    out: list[str] = []
    position = 0
    # Wider regions (a whole re-encoded part) win over spans inside them, then lower rank.
    for start, end, replacement, _ in sorted(regions, key=lambda r: (r[0], -(r[1] - r[0]), r[3])):
        if start < position:
            continue
        out.append(text[position:start])
        out.append(replacement)
        position = end
    out.append(text[position:])
    return "".join(out).encode("latin-1")


def readable_host(name: str) -> str | None:
    """``name`` as a reader sees it when a label is punycode (``xn--``), else None: each such label
    decoded, lookalike letters and compatibility forms folded to ASCII. An IDN name is how a
    secret written in lookalike letters ("е" for "e") travels as a host label under a wildcard route."""
    if "xn--" not in name:
        return None
    labels = []
    for label in name.split("."):
        if label.startswith("xn--"):
            try:
                label = label[4:].encode("ascii").decode("punycode")
            except (UnicodeError, ValueError):
                pass  # not valid punycode: searched as sent, which it was already
        labels.append(label)
    return fold(".".join(labels)).lower()


def _bare_host(host: str) -> str:
    """The host name without port, brackets or trailing dot, in the case it was given."""
    text = host.strip()
    if text.startswith("["):
        return text[1:].split("]", 1)[0]
    if text.count(":") == 1:
        text = text.split(":", 1)[0]
    return text.rstrip(".")


def detector_name(detector_id: str) -> str:
    """The human name of a detector id (for messages); the id itself when unknown."""
    return DETECTOR_NAMES.get(detector_id, detector_id)
