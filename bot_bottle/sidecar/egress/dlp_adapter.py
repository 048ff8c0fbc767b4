"""The DLP engine behind the proxy's scanning seam: outbound requests and inbound answers.

Per route the plan's ``dlp`` settings decide: which detectors run (``tokens``, ``secrets``,
``entropy``), what a hit does (``outbound_on_match``: block | redact | supervise), and what a hit
on the route's *own* injected credential does (``own_token``, redact by default: an agent that
echoes its credential to its own provider loses nothing). Of the bundle's own services only
the supervise server's requests are scanned here (what the agent tells it is kept on the host):
the git-gate scans what a push adds itself, and pack data is compressed.

Large uploads are streamed (``stream_scan``): a plain body larger than the scanner's
``deep_limit`` is forwarded while it arrives, scanned chunk-wise with an overlap window
(``dlp.stream``), instead of being held whole first. Only when all of this holds:

- the route's ``outbound_on_match`` is ``block``: a hit mid-stream can only stop the upload, not
  rewrite it (the headers, Content-Length included, have gone) nor hold it for the operator, so
  ``redact`` and ``supervise`` routes buffer what they can hold (``HELD_LIMIT``); a larger body
  with a Content-Length streams there too, and a chunked one past the limit is refused (413). On
  a streamed body every hit blocks, the route's own token included (its default is ``redact``,
  which a stream cannot do);
- its length is unknown (chunked) or larger than ``deep_limit``: each batch gets the direct
  layer and the decoded one (base64, hex, percent-encoding, escapes), as a buffered body that
  size gets them in overlapping windows, so streaming keeps the coverage. Smaller bodies are
  buffered and scanned in full as before; a chunked body is held until it passes
  ``deep_limit``, and one that ends before gets the full scan;
- a JSON, form or multipart body up to ``structured_limit`` is taken apart by the full scan and
  is not streamed; past that limit the full scan reads it as text too, so it streams. A chunked
  body of those types, and any streamed body whose first bytes show compression (gzip, zlib,
  bzip2, xz), a zip archive (or JSON, below ``structured_limit``), is held whole by the stream
  scanner and judged at its end with the full scan: forwarded entirely or not at all.

A body with a ``Content-Encoding`` is held whole by the stream scanner too and judged by the full
scan, which decodes it (mitmproxy would otherwise hold it, of any size), unless it is gzip or
deflate alone: that one is inflated on the way, what it inflates to bounded (``stream.Inflow``: a
bomb is a ``scan-limit``). One in several codings stays held even when it starts as gzip (opened
on the way, only its outer layer was read). A body held whole and
larger than ``HELD_LIMIT`` (the proxy scanners' ``max_body_bytes``) is refused as a
``scan-limit`` as soon as it is: the proxy has the sidecar's memory only.

A body nothing reads streams through untouched, whatever its size and the route's
``outbound_on_match`` (``StreamScan.passthrough``): on a route with every detector off, and to
the bundle's own services (a push to the git-gate). Any body mitmproxy still buffers is bounded
by the addon to ``HELD_LIMIT`` as well (``install_body_limit``).

The URL and headers of a streamed request are scanned before the body starts (``scan`` with an
empty body), so a hit there still answers 403 before anything is sent.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from typing import Any

from bot_bottle.sidecar.dlp import SCAN_LIMIT, Finding, ScanOptions, Scanner
from bot_bottle.sidecar.dlp.answer_stream import (AnswerStream, InflatedAnswer, WholeVerdict, inflated_layers,
                                                  starts_as_text)
from bot_bottle.sidecar.dlp.bodies import (GZIP_MAGIC, decode_body, encode_body, encode_like, is_json,
                                          parse_content_type)
from bot_bottle.sidecar.dlp.fragments import FragmentMemory
from bot_bottle.sidecar.dlp.inbound import SeamContext
from bot_bottle.sidecar.dlp.scanner import ACROSS_REQUESTS
from bot_bottle.sidecar.dlp.stream import StreamScan, overlap_for
from bot_bottle.sidecar.egress import scanning
from bot_bottle.sidecar.egress.policy import Policy

# Strongest first: the request takes the strongest action any finding asks for.
_STRENGTH = {scanning.BLOCK: 3, scanning.HOLD: 2, scanning.REDACT: 1, scanning.ALLOW: 0}
_ACTION_OF = {"block": scanning.BLOCK, "redact": scanning.REDACT, "supervise": scanning.HOLD}
_INBOUND_LIMIT = 16 * 1024 * 1024
# The most of one request body the proxy holds whole to scan (and, decompressed, reads): the full
# scan takes about seven times what it reads in memory, and the sidecar has 512 MB. Held past
# this, a 50 MB upload (or a small gzip that inflates to 60 MB) got the proxy killed for memory.
HELD_LIMIT = 16 * 1024 * 1024
# Content-Encodings a streamed upload or answer is scanned through, inflated chunk by chunk (at
# any size); others (br, zstd) hold the body whole, up to HELD_LIMIT.
_INFLATED_ON_THE_WAY = ("gzip", "x-gzip", "deflate")
# Layers of those a streamed answer is read through (a .tar.gz sent with "gzip, gzip"); more is
# no real download's, and each layer holds a batch of its own.
_MOST_LAYERS = 3
# What the agent may ask an upstream to compress answers with: what the inbound scan reads as
# they stream. The brotli and zstandard modules cannot bound what one call inflates (a few
# bytes of br can be megabytes), so those answers can only be judged held whole.
_ASKABLE_ENCODINGS = (*_INFLATED_ON_THE_WAY, "identity")


def _values_kind(mime: str, boundary: str) -> str | None:
    """How a streamed body's values are read for the adjacent-values check (``StreamScan``)."""
    if is_json(mime):
        return "json"
    if mime == "application/x-www-form-urlencoded":
        return "form"
    if mime.startswith("multipart/"):
        return "multipart" if boundary else None
    return "sniff"


def readable_accept_encoding(value: str) -> str | None:
    """The agent's ``Accept-Encoding`` narrowed to the encodings a streamed answer is read in
    (``gzip``, ``deflate``, ``identity``), weights kept; None when it asks for nothing else.
    Without this an upstream answers ``br`` or ``zstd`` to curl, pip or a browser engine, and
    a large answer could not be scanned on its way. Nothing left: ``identity``."""
    kept: list[str] = []
    dropped = False
    for item in value.split(","):
        if not item.strip():
            continue
        coding = item.split(";", 1)[0].strip().lower()
        if coding in _ASKABLE_ENCODINGS:
            kept.append(item.strip())
        else:
            dropped = True  # br, zstd, compress, "*" (any): an upstream could pick one
    if not dropped:
        return None
    if not any(_weight(item) > 0 for item in kept):
        return "identity"
    return ", ".join(kept)


def content_encoding(headers: Sequence[tuple[str, str]]) -> str | None:
    """Every ``Content-Encoding`` an answer declares, in order, as one value ("gzip, gzip" for two
    header lines): reading only the first line let a second layer of gzip pass unread."""
    values = [value for name, value in headers if name.lower() == "content-encoding"]
    return ", ".join(values) if values else None


def readable_layers(encoding: str | None) -> tuple[str, ...] | None:
    """The layers of a ``Content-Encoding`` (as ``content_encoding`` joins them) a streamed answer
    is read through, in the order applied; None when it has none, more than ``_MOST_LAYERS``, or
    one not inflated on the way (br, zstd, identity among others)."""
    codings = tuple(coding.strip().lower() for coding in (encoding or "").split(","))
    if len(codings) > _MOST_LAYERS or not all(coding in _INFLATED_ON_THE_WAY for coding in codings):
        return None
    return codings


def _weight(item: str) -> float:
    """The ``q`` of one ``Accept-Encoding`` entry (1 when absent or unreadable)."""
    for param in item.split(";")[1:]:
        name, _, number = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(number.strip())
            except ValueError:
                return 1.0
    return 1.0


# What the agent tells the supervise server (a justification, paths) is kept on the host and
# shown to the operator: it is scanned here like any request, and blocked on a finding. The
# bundle's other services judge what they are sent themselves (the git-gate scans each push).
_SCANNED_SERVICES = frozenset({"supervise"})


def _scans_itself(request: scanning.OutboundRequest) -> bool:
    return request.internal_service is not None and request.internal_service not in _SCANNED_SERVICES


def label(finding: Finding) -> str:
    """A detector name for logs and the 403: the detector id, or which bottle secret matched."""
    if finding.secret_name:
        return f"{finding.detector}:{finding.secret_name}" + (f" ({finding.encoding})" if finding.encoding else "")
    return finding.detector


# The path a log line or a proposal shows for a request whose own path holds a hit that could not
# be redacted (the query is never shown either way).
WITHHELD_PATH = "/(path withheld: it carries what DLP found)"


def _in_url_path(finding: Finding) -> bool:
    """A finding in the URL other than its host: in what a shown path would carry."""
    where = str(finding.location)
    return where.startswith("url") and not where.startswith("url.host")


def _fragments(scanner: Scanner, memory: FragmentMemory | None
               ) -> Callable[[bytes | bytearray, int, list[Finding]], list[Finding]] | None:
    """A streamed body's search, batch by batch, for pieces of the bottle's secrets
    (``Scanner.scan_fragments``): every batch is searched, so a body that completes a secret
    sent in pieces before is stopped before the batch holding the last piece leaves, however much
    comes before it, and its own pieces count for later requests, as a buffered body's do."""
    if memory is None:
        return None

    def scan(batch: bytes | bytearray, seen: int, found: list[Finding]) -> list[Finding]:
        return scanner.scan_fragments(batch, "body", memory=memory, seen=seen,
                                      whole=(f.secret_name for f in found))

    return scan


class DlpOutbound:
    """``scanning.OutboundScanner`` backed by the DLP engine."""

    def __init__(self, policy: Policy, credentials: Mapping[str, str], known_secrets: Mapping[str, str]) -> None:
        self.policy = policy
        self.secrets = {**dict(known_secrets), **dict(credentials)}
        self._scanners: dict[tuple[bool, bool, bool], Scanner] = {}
        # Pieces of the secrets that left in earlier requests, whatever the route: one per proxy.
        self._memory: FragmentMemory | None = None
        # Whole-body scans run on a worker thread (``scan_worker``), streamed ones on the loop:
        # both may ask for a scanner or the memory first; one of each must come of it.
        self._making = threading.Lock()

    def scanner(self, settings: Mapping[str, Any]) -> Scanner:
        key = (bool(settings.get("tokens", True)), bool(settings.get("secrets", True)), bool(settings.get("entropy", False)))
        scanner = self._scanners.get(key)
        if scanner is None:
            with self._making:
                scanner = self._scanners.get(key)
                if scanner is None:
                    scanner = self._scanners[key] = Scanner(self.secrets, ScanOptions(
                        tokens=key[0], known_secrets=key[1], entropy=key[2], max_body_bytes=HELD_LIMIT))
        return scanner

    def memory(self, scanner: Scanner) -> FragmentMemory | None:
        """The bottle's fragment memory, when ``scanner`` looks for the bottle's secrets at all."""
        if not scanner.options.known_secrets:
            return None
        if self._memory is None:
            with self._making:
                if self._memory is None:
                    self._memory = scanner.new_memory()
        return self._memory

    def _own_token(self, request: scanning.OutboundRequest) -> str | None:
        if request.route_index is None or request.route_index >= len(self.policy.routes):
            return None
        auth = self.policy.routes[request.route_index].auth
        return auth.token_ref if auth is not None else None

    def _action(self, finding: Finding, settings: Mapping[str, Any], own: str | None) -> str:
        if finding.detector == "scan-limit":
            return scanning.BLOCK  # what could not be scanned must not leave
        mode = str(settings.get("outbound_on_match") or "block")
        if own is not None and finding.secret_name == own:
            mode = str(settings.get("own_token") or "redact")
        return _ACTION_OF.get(mode, scanning.BLOCK)

    def stream_scan(self, request: scanning.OutboundRequest, content_length: int | None) -> StreamScan | None:
        """A chunk-wise scanner when ``request`` (headers only: its body has not arrived) may be
        streamed, else None (see the module docstring for when). ``content_length`` is None for
        a chunked body."""
        content_type = content_encoding = None
        chunked = False
        for name, value in request.headers:
            lowered = name.lower()
            if lowered == "content-type":
                content_type = value
            elif lowered == "content-encoding":
                content_encoding = value
            elif lowered == "transfer-encoding":
                chunked = "chunked" in value.lower()
        if content_length is None and not chunked:
            return None
        settings = request.dlp or {}
        scanner = self.scanner(settings)
        if content_length is not None and content_length <= scanner.options.deep_limit:
            return None
        if _scans_itself(request) or scanner.idle:
            # Nothing here reads the body (the git-gate scans a push itself): held whole, a big
            # one (a push, an upload on a route with its detectors off) would cost the proxy its
            # memory, whatever the route does on a match.
            return StreamScan.passthrough()
        if str(settings.get("outbound_on_match") or "block") != "block" and (
                content_length is None or content_length <= HELD_LIMIT):
            # Redacting or holding needs the whole body. One larger than the proxy holds streams
            # as on a block route (a hit stops it); a chunked one is held, up to the same limit.
            return None
        encoding = (content_encoding or "").strip().lower()
        encoded = encoding not in ("", "identity")
        inflate = encoding if encoding in _INFLATED_ON_THE_WAY else None
        mime, type_params = parse_content_type(content_type or "")
        structured = is_json(mime) or mime == "application/x-www-form-urlencoded" or mime.startswith("multipart/")
        # Past ``structured_limit`` the full scan reads any body as text, whatever its type.
        as_text = content_length is not None and content_length > scanner.options.structured_limit
        if structured and not as_text and content_length is not None:
            return None  # parsed whole by the buffered scan
        type_header = [("content-type", content_type)] if content_type else []
        if encoded:
            type_header.append(("content-encoding", content_encoding or ""))
        memory = self.memory(scanner)
        return StreamScan(
            scan_batch=lambda batch: scanner.scan_batch(batch, "body", deep=True),
            scan_fresh=_fragments(scanner, memory),
            scan_whole=lambda body: scanner.scan_request(request.method, "", type_header, body, memory=memory),
            # Values of a JSON or form body read as text still meet their neighbours, as the full
            # scan's lexical reading of a body past ``structured_limit`` has them.
            scan_values=scanner.scan_values,
            values_kind=_values_kind(mime, type_params.get("boundary", "")),
            boundary=type_params.get("boundary", ""),
            overlap=overlap_for(list(self.secrets.values())),
            # Chunked JSON/form/multipart: held, judged whole, up to the size the full scan parses
            # (then read as text, as the full scan would). A Content-Encoding other than gzip or
            # deflate (inflated on the way): held, judged whole, past HELD_LIMIT a scan-limit.
            whole=(encoded and inflate is None) or (structured and not as_text),
            max_whole=scanner.options.max_body_bytes,
            text_past=0 if encoded else scanner.options.structured_limit,
            inflate=inflate,
            sniff_json=not as_text,
            # Held whole for its encoding, it stays held even when it starts as gzip: opened on
            # the way, only the first layer of "gzip, gzip" (or "br, gzip") was read and a value
            # in the next passed as compressed bytes.
            opens=not (encoded and inflate is None),
            # Chunked: held until it is larger than deep_limit, so a small one gets the full scan.
            hold_upto=scanner.options.deep_limit if content_length is None else 0,
        )

    def scan_message(self, request: scanning.OutboundRequest, content: bytes) -> scanning.ScanOutcome:
        """One WebSocket message the agent sends on the connection ``request`` opened.

        ``redact`` rewrites the message (``replacement.body`` is what to send instead) when every
        hit can be replaced; otherwise, and for ``block``, the outcome blocks. A message cannot
        be held for the operator: ``hold`` is returned and the proxy refuses it.
        """
        if _scans_itself(request) or not content:
            return scanning.ScanOutcome()
        settings = request.dlp or {}
        scanner = self.scanner(settings)
        findings = scanner.scan_message(content, memory=self.memory(scanner))
        if not findings:
            return scanning.ScanOutcome()
        own = self._own_token(request)
        action = max((self._action(f, settings, own) for f in findings), key=_STRENGTH.__getitem__)
        detectors = tuple(sorted({label(f) for f in findings}))
        reason = ", ".join(detectors)
        if action == scanning.REDACT and any(f.encoding == ACROSS_REQUESTS for f in findings):
            # The text redaction below judges the message alone and would not see the piece.
            return scanning.ScanOutcome(scanning.BLOCK, detectors, reason + " (could not be redacted)")
        if action != scanning.REDACT:
            return scanning.ScanOutcome(action, detectors, reason)
        redacted = scanner.redact_text(content, "message", deep=True)
        new = redacted.content if isinstance(redacted.content, bytes) else redacted.content.encode("utf-8")
        if redacted.unredacted or scanner.scan_message(new):
            return scanning.ScanOutcome(scanning.BLOCK, detectors, reason + " (could not be redacted)")
        return scanning.ScanOutcome(scanning.REDACT, detectors, reason, replacement=replace(request, body=new))

    def scan(self, request: scanning.OutboundRequest) -> scanning.ScanOutcome:
        if _scans_itself(request):
            return scanning.ScanOutcome()
        settings = request.dlp or {}
        scanner = self.scanner(settings)
        url = f"{request.scheme}://{request.host}{request.path}"
        findings = scanner.scan_request(request.method, url, request.headers, request.body,
                                        memory=self.memory(scanner))
        in_labels = self._in_chosen_labels(scanner, request) if not findings else []
        findings += in_labels
        if not findings:
            return scanning.ScanOutcome()
        own = self._own_token(request)
        action = max((self._action(f, settings, own) for f in findings), key=_STRENGTH.__getitem__)
        detectors = tuple(sorted({label(f) for f in findings}))
        reason = ", ".join(detectors)
        if in_labels and action == scanning.REDACT:
            # A host name cannot be rewritten.
            return scanning.ScanOutcome(scanning.BLOCK, detectors, reason + " (could not be redacted)")
        if action != scanning.REDACT:
            # Never forwarded: only what the log line and the operator's proposal show.
            shown = self._redacted(request, scanner, to_show=True)
            return scanning.ScanOutcome(action, detectors, reason, replacement=shown)
        replacement = self._redacted(request, scanner)
        if replacement is None:
            # Redaction could not remove every hit (a host name, an unparsable body): block.
            return scanning.ScanOutcome(scanning.BLOCK, detectors, reason + " (could not be redacted)")
        return scanning.ScanOutcome(scanning.REDACT, detectors, reason, replacement=replacement)

    def _in_chosen_labels(self, scanner: Scanner, request: scanning.OutboundRequest) -> list[Finding]:
        """Token formats in the labels an agent picks under a wildcard route, each run of a few
        of them read joined, without the route's own domain.

        The name leaves in the DNS lookup and the SNI before any request inside the tunnel, and
        the whole name's scan joins all its labels: hex cut over two labels (a label holds 63
        characters, a token's hex more) ran on into the domain's letters ("...4135" +
        "allowedexample") and was not read, nor next to a label of hex letters ("cdn").
        """
        chosen = _chosen_labels(request.host, self._route_host(request.route_index))
        if "." not in chosen or not _ENCODED_RUN.search(chosen.replace(".", "")):
            # One label is read alone by the whole name's scan, and labels with no long run of
            # letters and digits across them hold no token's hex or base32 (cheap, before a
            # decoding scan).
            return []
        found = scanner.scan_host(_label_runs(chosen))
        return [replace(f, location="url.host", start=0, end=len(request.host)) for f in found]

    def _route_host(self, index: int | None) -> str:
        routes = self.policy.routes
        return routes[index].host if index is not None and 0 <= index < len(routes) else ""

    def _redacted(self, request: scanning.OutboundRequest, scanner: Scanner, *,
                  to_show: bool = False) -> scanning.OutboundRequest | None:
        """The request with every hit replaced; None when something would remain. ``to_show``:
        for a request that is not forwarded (blocked or held), whose path the log and the
        operator's proposal show: something left elsewhere is no matter, and a path that would
        still hold a hit is withheld (``WITHHELD_PATH``)."""
        url = f"{request.scheme}://{request.host}{request.path}"
        result = scanner.redact_request(request.method, url, request.headers, request.body,
                                        memory=self.memory(scanner))
        if result.unredacted and not to_show:
            return None
        prefix = f"{request.scheme}://{request.host}"
        path = result.url[len(prefix):] if result.url.startswith(prefix) else request.path
        if any(_in_url_path(f) for f in result.unredacted):
            path = WITHHELD_PATH
        elif not path.startswith("/"):
            # A hit decoded from the whole path (base64 of it all) is replaced with its leading
            # slash: a request target must start with one.
            path = "/" + path
        headers = result.headers
        if result.drop_content_encoding:
            headers = tuple((k, v) for k, v in headers if k.lower() != "content-encoding")
        body = result.body if result.body is not None else request.body
        return scanning.OutboundRequest(
            method=request.method, scheme=request.scheme, host=request.host, port=request.port,
            path=path or "/", headers=headers, body=body, route_index=request.route_index,
            dlp=request.dlp, internal_service=request.internal_service,
        )


def _chosen_labels(host: str, route_host: str) -> str:
    """The labels of ``host`` a wildcard ``route_host`` (``*.example.com``) leaves to the agent,
    dotted as sent (empty when the route names one host)."""
    if not route_host.startswith("*."):
        return ""
    name, domain = host.rstrip(".").lower(), "." + route_host[2:].rstrip(".").lower()
    return host.rstrip(".")[: len(name) - len(domain)] if name.endswith(domain) else ""


# Runs of this many labels at most are read on their own (and all of them joined): the hex of a
# token fits in 4 labels of 63, a GitHub token's in 8 of 10.
LABEL_RUN = 8
# The shortest token (an AWS key id, 20 characters) is 32 characters in base32, 40 in hex: the
# encodings DNS leaves whole, as it ignores case.
_ENCODED_RUN = re.compile(r"[0-9A-Za-z]{32,}")


def _label_runs(chosen: str) -> str:
    """Every run of 2 to ``LABEL_RUN`` consecutive labels of ``chosen`` joined, and all of them
    joined, separated by "!" (no token format, base64 or hex holds one): one text to scan."""
    parts = chosen.split(".")
    runs = ["".join(parts[i:j]) for i in range(len(parts))
            for j in range(i + 2, min(len(parts), i + LABEL_RUN) + 1)]
    if len(parts) > LABEL_RUN:
        runs.append("".join(parts))
    return "!".join(runs)


def basic_passwords(credentials: Mapping[str, str], refs: Iterable[str]) -> dict[str, str]:
    """The password part of each ``basic`` credential (``user:password``), named ``REF:password``.

    The credential goes out as base64 of ``user:password``, which the echo search finds in any
    of its forms; an upstream that hands back the password alone would not be caught by it."""
    out: dict[str, str] = {}
    for ref in refs:
        _, colon, password = credentials.get(ref, "").partition(":")
        if colon and password:
            out[f"{ref}:password"] = password
    return out


@dataclass(frozen=True)
class HeaderEchoes:
    """What ``DlpInbound.echoed_in_headers`` found in an answer's head (never the values)."""

    values: dict[str, list[str]]  # lower-cased name -> every value of it, masked, in order
    labels: tuple[str, ...]  # the detectors
    names: frozenset[str] = frozenset()  # lower-cased names that carry a secret themselves
    reason: bool = False  # the reason phrase carries one


class DlpInbound:
    """``scanning.InboundScanner``: prompt-injection flags and the bottle's secrets echoed back."""

    def __init__(self, credentials: Mapping[str, str], known_secrets: Mapping[str, str], *,
                 basic: Iterable[str] = ()) -> None:
        # ``basic``: the token_refs used with scheme ``basic``; their passwords are secrets too
        # (one that is another secret's value already keeps that secret's name).
        secrets = {**dict(known_secrets), **dict(credentials)}
        known = set(secrets.values())
        secrets.update((name, value) for name, value in basic_passwords(credentials, basic).items()
                       if value not in known)
        self.scanner = Scanner(secrets, ScanOptions(tokens=False))
        self._overlap = overlap_for(list(secrets.values()))

    def echoed_in_headers(self, fields: Sequence[tuple[str, str]], reason: str = "") -> HeaderEchoes | None:
        """The bottle's secrets an upstream echoed in its answer's head (a debug endpoint copying
        the request's ``Authorization`` back): the new values of each header whose values held
        one (by name, every value in order), the names that carry one themselves (a name cannot
        be rewritten without changing its meaning: the caller refuses the answer, or drops a
        trailer), whether ``reason`` (the status line's phrase) does, and the detectors; None
        when nothing did. A clean head costs one search."""
        if not fields and not reason:
            return None
        # One search over the names, the values and the reason (none holds a newline: the proxy
        # refuses such headers, and a secret with one cannot be in a single field anyway).
        head = "\n".join(chain(chain.from_iterable(fields), (reason,)))
        if not self.scanner.redact_echoed_secrets(head).changed:
            return None
        values: dict[str, list[str]] = {}
        labels: set[str] = set()
        names: set[str] = set()
        for name, value in fields:
            in_name = self.scanner.redact_echoed_secrets(name)
            if in_name.changed:
                labels.update(label(f) for f in in_name.findings)
                names.add(name.lower())
            echoed = self.scanner.redact_echoed_secrets(value)
            if echoed.changed:
                labels.update(label(f) for f in echoed.findings)
            values.setdefault(name.lower(), []).append(str(echoed.content) if echoed.changed else value)
        in_reason = self.scanner.redact_echoed_secrets(reason) if reason else None
        if in_reason is not None and in_reason.changed:
            labels.update(label(f) for f in in_reason.findings)
        changed = {name: vals for name, vals in values.items()
                   if vals != [v for k, v in fields if k.lower() == name]}
        echoes = HeaderEchoes(changed, tuple(sorted(labels)), frozenset(names),
                              in_reason is not None and in_reason.changed)
        return echoes if changed or echoes.names or echoes.reason else None

    def echoed_in_message(self, content: bytes) -> tuple[bytes, tuple[str, ...]] | None:
        """``content`` (a WebSocket message or control payload from the upstream, a message the
        proxy relays from it) with the bottle's secrets echoed in it masked, and the detectors;
        None when it holds none. The same search as a held answer's; the caller bounds the size
        (a message is at most the held limit)."""
        if not content:
            return None
        echoed = self.scanner.redact_echoed_secrets(content)
        if not echoed.changed:
            return None
        new = echoed.content
        masked = new.encode("utf-8", "surrogateescape") if isinstance(new, str) else new
        return masked, tuple(sorted({label(f) for f in echoed.findings}))

    def stream_answer(self, response: scanning.InboundResponse, content_length: int | None, *,
                      hold: bool = True) -> AnswerStream | InflatedAnswer | None:
        """A chunk-wise scanner for an answer too large to hold (``dlp.answer_stream``), given its
        status and headers (``response.body`` is empty: it has not arrived); None keeps the
        buffered path: an answer with a ``Content-Length`` up to the inbound limit. One without
        a length (chunked) is held up to that limit and judged whole if it ends within it.
        ``hold=False`` (the proxy holds too much already): any answer streams from its start.
        A gzip or deflate answer, or one in up to three layers of those, is read inflated
        (``InflatedAnswer``, one per layer) and delivered as sent."""
        request = response.request
        if request.internal_service is not None:
            return None
        if hold and content_length is not None and content_length <= _INBOUND_LIMIT:
            return None
        encoding = content_encoding(response.headers)
        layers = readable_layers(encoding)
        unreadable = None
        if layers is not None:
            # Judged on its inflated bytes: a redacted answer is compressed again, layer by
            # layer, by the wrappers.
            response = replace(response, headers=tuple(
                (k, v) for k, v in response.headers if k.lower() != "content-encoding"))
            encoding = None
        else:
            inflate = (encoding or "").strip().lower()
            if inflate not in ("", "identity"):
                # Unasked for (the agent's Accept-Encoding is narrowed, ``readable_accept_encoding``):
                # scanned as sent, an echoed secret or a phrase in it would pass unseen.
                what = f"a {inflate} answer" if inflate.isalnum() and len(inflate) <= 16 else "an encoded answer"
                unreadable = (f"{SCAN_LIMIT} ({what} that cannot be held whole: only gzip and deflate "
                              f"answers, in up to {_MOST_LAYERS} layers, are read as they stream)")

        def judge_whole(body: bytes) -> WholeVerdict:
            outcome = self.scan(replace(response, body=body))
            if outcome.action == scanning.ALLOW:
                return WholeVerdict(body, outcome.detectors)
            if outcome.action == scanning.REDACT and outcome.body is not None:
                # Its headers have gone, Content-Encoding included: a redacted answer the scan
                # left decoded is encoded again to match them.
                body = outcome.body if outcome.encoded else encode_body(outcome.body, encoding)
                if body is not None:
                    return WholeVerdict(body, outcome.detectors, redacted=True)
            # Blocked, or a redaction in an encoding this cannot write: the answer is replaced
            # by a notice (a chunked answer has no length to keep).
            return WholeVerdict(None, outcome.detectors)

        held = content_length is None and hold
        plan = self._batches(request, judge_whole=judge_whole if held else None, hold_upto=_INBOUND_LIMIT if held else 0,
                             unreadable=unreadable)
        return inflated_layers(plan, layers) if layers else plan

    @staticmethod
    def accept_encoding(value: str) -> str | None:
        """What the agent's ``Accept-Encoding`` becomes upstream (``readable_accept_encoding``)."""
        return readable_accept_encoding(value)

    def _batches(self, request: scanning.OutboundRequest, *, phrases: bool = True, **kw: Any) -> AnswerStream:
        """An answer scanner that reads batch by batch (``dlp.answer_stream``); without
        ``phrases``, for the bottle's secrets only."""
        flag_injection = bool((request.dlp or {}).get("inbound", True))

        def echoed(batch: bytearray) -> list[tuple[int, int, str]]:
            return [(f.start, f.end, label(f)) for f in self.scanner.scan_batch(batch, "body")]

        def injection(text: bytes, context: SeamContext) -> list[tuple[str, bool]]:
            if not flag_injection:
                return []
            return [(f"{f.detector} ({f.confidence})", f.confidence == "high")
                    for f in self.scanner.scan_response_for_injection(text, context)]

        return AnswerStream(echoed=echoed, injection=injection if phrases else None, overlap=self._overlap, **kw)

    def _scan_binary(self, request: scanning.OutboundRequest, data: bytes, complete: bool, *,
                     phrases: bool = True) -> scanning.InboundOutcome:
        """A held answer that is binary (a wheel, a tarball): read as a download is, batch by
        batch, its echoed secrets masked in place and its text stretches read for phrases. Read
        whole as text, a 15 MB one took ~170 MB to scan, and a few downloads at once got the
        proxy killed for memory."""
        plan = self._batches(request, phrases=phrases)
        out: bytearray | None = None  # kept only once a value is masked: until then, the input
        done = 0
        with memoryview(data) as view:
            pieces = (bytes(view[start:start + plan.batch]) for start in range(0, len(data), plan.batch))
            for piece in chain(pieces, [b""]):
                released = plan.feed(piece) if piece else plan.finish()
                if plan.stopped:
                    break
                if out is None and plan.masked:
                    out = bytearray(view[:done])
                if out is not None:
                    out += released
                done += len(released)
        detectors = tuple(plan.labels)
        reason = ", ".join(detectors)
        if plan.stopped or (plan.masked and not complete):
            return scanning.InboundOutcome(scanning.BLOCK, detectors, reason)
        if plan.masked and out is not None:
            return scanning.InboundOutcome(scanning.REDACT, detectors, reason, bytes(out))
        return scanning.InboundOutcome(scanning.ALLOW, detectors, reason)

    def scan(self, response: scanning.InboundResponse) -> scanning.InboundOutcome:
        request = response.request
        if request.internal_service is not None or not response.body:
            return scanning.InboundOutcome()
        encoding = content_encoding(response.headers)
        data = response.body
        complete = len(data) <= _INBOUND_LIMIT
        if encoding:
            decoded = decode_body(response.body, encoding, _INBOUND_LIMIT)
            if decoded.error is not None:
                # Scanned as sent, an echoed secret or a phrase in it would pass unseen (as on
                # the streamed path, which refuses an encoding it cannot read).
                coding = encoding.strip().lower()
                what = f"a {coding} answer" if coding.isalnum() and len(coding) <= 16 else "an encoded answer"
                return scanning.InboundOutcome(scanning.BLOCK, (SCAN_LIMIT,), f"{what} that cannot be decoded")
            layers = readable_layers(encoding)
            if decoded.truncated and layers:
                # Inflated past the held limit: read to its end as a streamed one is, not only
                # so far (an echo past the limit passed).
                return self._scan_inflating(request, response.body, layers)
            data, complete = decoded.data, not decoded.truncated
        else:
            inside = self._echoed_in_gzip(response) if data[:2] == GZIP_MAGIC else None
            return inside if inside is not None else self._judge(request, data, complete)
        outcome = self._judge(request, data, complete)
        if outcome.action != scanning.REDACT or outcome.body is None:
            return outcome
        return self._in_sent_encoding(response, encoding, outcome, outcome.body)

    def _scan_inflating(self, request: scanning.OutboundRequest, body: bytes,
                        layers: Sequence[str]) -> scanning.InboundOutcome:
        """A held answer in a declared gzip or deflate (in up to three layers) that inflates past
        the held limit, read inflated batch by batch to its end (``InflatedAnswer``, one per
        layer, as a streamed one is). Anything
        found that a streamed answer would be stopped for, or a value to mask (it cannot be
        masked in compressed bytes, nor the whole held inflated), refuses it."""
        inflated = inflated_layers(self._batches(request), layers)
        step = inflated.batch
        with memoryview(body) as view:
            for start in range(0, len(body), step):
                inflated.feed(bytes(view[start:start + step]))
                if inflated.stopped:
                    break
            else:
                inflated.finish()
        detectors = tuple(inflated.labels)
        reason = ", ".join(detectors)
        if inflated.stopped or inflated.masked:
            return scanning.InboundOutcome(scanning.BLOCK, detectors, reason)
        return scanning.InboundOutcome(scanning.ALLOW, detectors, reason)

    def _echoed_in_gzip(self, response: scanning.InboundResponse) -> scanning.InboundOutcome | None:
        """gzip without a Content-Encoding (a .gz download sent as application/octet-stream;
        None when the body is no gzip after all): the agent can open it, so the bottle's secrets
        are looked for inside (as in a request's undeclared gzip), and one found there is masked
        inside, the gzip written again member by member (``encode_like``), or the answer is
        refused. This read replaces the one of the bytes as sent (compressed, they are noise to
        both searches). Phrases are read inside only when the content is text: a package's .tar.gz
        holds tests and docs quoting anything, and blocking those downloads would cost more than
        it protects."""
        decoded = decode_body(response.body, None, _INBOUND_LIMIT)
        if not decoded.sniffed:
            return None
        if decoded.truncated:
            # Inflated past the held limit: read to its end as a streamed one is (opened batch by
            # batch, its inflation bounded); read only so far, an echo past it passed.
            return self._scan_binary(response.request, response.body, False)
        # Phrases only in text (a .log.gz, a .json.gz): a .tar.gz or any binary content is read
        # for the bottle's secrets only, as a streamed one is (``answer_stream.starts_as_text``).
        phrases = starts_as_text(decoded.data[:4096])
        inside = self._judge(response.request, decoded.data, not decoded.truncated, phrases=phrases)
        if inside.action != scanning.REDACT or inside.body is None:
            return inside
        body = encode_like(response.body, None, inside.body, max(_INBOUND_LIMIT, len(inside.body)))
        if body is not None:
            return replace(inside, body=body, encoded=True)
        # Delivered opened instead, the agent would get another file than the one it asked for.
        return scanning.InboundOutcome(scanning.BLOCK, inside.detectors,
                                       inside.reason + " (could not be redacted in the form it was sent in)")

    @staticmethod
    def _in_sent_encoding(response: scanning.InboundResponse, encoding: str | None,
                          outcome: scanning.InboundOutcome, redacted: bytes) -> scanning.InboundOutcome:
        """A redacted answer in the Content-Encoding and framing the upstream sent it in
        (``encode_like``: each gzip member compressed again, bytes after the compressed data kept
        after it), the header kept, as a redacted request is. Where that would not be faithful
        it is delivered decoded, the proxy dropping the header: every client reads that as the
        redacted content."""
        declared_lines = sum(1 for name, _ in response.headers if name.lower() == "content-encoding")
        if declared_lines > 1:
            # Clients read several Content-Encoding lines differently (aiohttp's ``get`` reads
            # the first line only, urllib3 and fetch join them): the layers written again could
            # be undone otherwise than the scan undid them. Decoded, every client reads the
            # redacted content.
            return outcome
        body = encode_like(response.body, encoding, redacted, max(_INBOUND_LIMIT, len(redacted)))
        if body is None:
            # A layer that cannot be written again as it came: a stream cut short would become
            # a whole one, and the agent would read an end the upstream never sent.
            return outcome
        return replace(outcome, body=body, encoded=True)

    def _judge(self, request: scanning.OutboundRequest, data: bytes, complete: bool, *,
               phrases: bool = True) -> scanning.InboundOutcome:
        """An answer's content (decoded) judged: phrases (unless not ``phrases``), then the
        bottle's secrets echoed in it; a redacted ``body`` is the decoded content."""
        if b"\0" in data:
            return self._scan_binary(request, data, complete, phrases=phrases)
        detectors: list[str] = []
        action = scanning.ALLOW
        body: bytes | None = None
        if phrases and (request.dlp or {}).get("inbound", True):
            flags = self.scanner.scan_response_for_injection(data)
            for flag in flags:
                detectors.append(f"{flag.detector} ({flag.confidence})")
            if any(flag.confidence == "high" for flag in flags):
                action = scanning.BLOCK
        if action != scanning.BLOCK:
            echoed = self.scanner.redact_echoed_secrets(data)
            if echoed.changed:
                detectors.extend(sorted({label(f) for f in echoed.findings}))
                if complete:
                    action = scanning.REDACT
                    content = echoed.content
                    body = content.encode("utf-8", "surrogateescape") if isinstance(content, str) else content
                else:
                    action = scanning.BLOCK  # too large or undecodable to rewrite safely
        reason = ", ".join(detectors)
        return scanning.InboundOutcome(action, tuple(detectors), reason, body)
