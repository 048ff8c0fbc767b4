"""The mitmproxy adapter for the egress policy: facts in, ``core.decide`` verdict out, then act.

Run by the sidecar's proxy process (``proxy.py``: mitmproxy's core and this addon). The adapter
only translates: it builds ``RequestFacts`` from mitmproxy's flows, asks ``decide``, answers a
denial with a 403, hands the allowed request's content to the scanner (``scanning``: the DLP seam),
injects the route's credential, routes internal names to the bundle's services, and writes one
JSON line per decision. Every rule lives in ``core`` / ``structure``; this module holds none.

A tunnel is judged at its CONNECT, and its host name scanned there too: the name leaves before
any request inside it (mitmproxy looks it up and connects at once, and the upstream handshake
names it), and a passed-through tunnel has no request to scan. An intercepted tunnel's upstream
is offered only HTTP's ALPN names (mitmproxy would offer it whatever names the agent offered).

Order for one request, and why:
  requestheaders  decide on the real target and the headers; refuse early (no body is sent on)
  request         on a route that refuses provider-side fetches (``server_fetch``: an MCP server,
                  a web fetch tool, a URL the provider downloads), look for one in the body;
                  scan what the AGENT sent (before injection, so the real token is not a "leak"),
                  then strip the agent's credentials and inject the real one, then re-target
                  internal names to the sidecar's loopback
  response        scan what comes back, then log the finished exchange

A route that refuses provider-side fetches (the provider's API by default) never streams a body:
it is held whole (up to ``MAX_HELD_BODY``; a longer declared one is refused at its head, a longer
chunked one gets a 413) so the whole of it is read. Its WebSocket messages are read the same way.

Large plain uploads take another path (see ``dlp_adapter`` for when): at ``requestheaders`` the
URL and headers are scanned and the credential injected, then the body streams upstream through
a chunk-wise scanner (``dlp.stream``); a hit mid-stream forwards nothing more, closes the upstream
connection (the upstream sees a body cut short, never the value) and logs the refusal. The agent
then gets no HTTP answer for that upload (the connection ends), as its request line has gone.
Upstream requests that share an HTTP/2 connection with the stopped one fail with it. The bytes
forwarded before the hit were scanned clean; an upstream that acts on a body cut short (rather
than discarding it) sees that clean part. A streamed form body's ``_method`` field is read on
the way as well (``stream_method``: the buffered path's override check), and one asking for a
method the route does not allow stops the upload the same way; so is a credential field on a
credentialed route (``body_credential``). Both read the body decoded, as the upstream's framework
may: gzip and deflate inflated on the way, and a body in another coding is held, not streamed.

No body costs the proxy more than bounded memory: what mitmproxy buffers is capped at
``MAX_HELD_BODY`` (a 413 past it, ``install_body_limit``), bodies and answers nothing here scans
(the bundle's own services, routes with every detector off) stream through, and large answers
stream through the inbound scan (``responseheaders``).

WebSocket messages from the agent are scanned one by one (``websocket_message``), and so are its
ping and pong payloads and close reasons (``ws_control``); the upstream's have the bottle's
secrets echoed in them masked (a control payload that carries one goes empty). An answer's
head is searched for echoed secrets too (header values and the reason phrase masked, a header
name carrying one refused, HTTP/2 trailers masked), and so is mitmproxy's own error page, which
quotes a malformed answer's status or header line (``install_error_pages``). A request DLP
holds (``supervise``) becomes a token-use proposal in the supervise spool and waits for the
operator (``supervision``); ``grants.json`` is re-read when it changes (granted routes join the
policy without a restart).

Options are prefixed ``bottle_`` because an addon option that shares a name with one of
mitmproxy's own silently overrides it.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import sys
import time
import weakref
import zlib
from collections.abc import Callable, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

from mitmproxy import ctx, exceptions, http, tcp, tls
from mitmproxy.net.http import status_codes
from mitmproxy.proxy import server_hooks

from bot_bottle.sidecar.dlp.answer_stream import Answer
from bot_bottle.sidecar.dlp.bodies import GZIP_MAGIC, decode_body, encode_like
from bot_bottle.sidecar.dlp.stream import StreamScan
from bot_bottle.sidecar.egress import (
    credentials, dlp_adapter, holding, logfile, records, scan_worker, scanning, server_fetch, stream_method,
    structure, supervision, ws_control, ws_limit,
)
from bot_bottle.sidecar.egress.core import (
    RULE_CREDENTIAL_BODY,
    RULE_INVALID_HOST,
    RULE_MATCH,
    RequestFacts,
    Verdict,
    body_method_problem,
    body_method_reason,
    decide,
)
from bot_bottle.sidecar.egress.body_credential import (
    CredentialStream,
    body_credential_problem,
    body_credential_reason,
    credential_stream,
    credential_stream_feed,
)
from bot_bottle.sidecar.egress.hosts import HostError, forbidden_upstream, ip_literal, is_sidecar_local, normalise_host
from bot_bottle.sidecar.egress.policy import Policy, PolicyError
from bot_bottle.sidecar.supervise import channel

LOG_FILE_NAME = "egress.jsonl"
RULE_INTERNAL_ERROR = "internal-error"
RULE_DLP = "dlp"
RULE_DLP_HOLD = "dlp-hold"
RULE_DLP_INBOUND = "dlp-inbound"
RULE_DLP_WEBSOCKET = "dlp-websocket"
RULE_SERVER_FETCH = server_fetch.RULE
WS_POLICY_VIOLATION = 1008
WS_REASON_LIMIT = 123  # bytes a close frame's reason may hold
RULE_RAW_TCP = "raw-tcp"
RULE_TRAILERS = "request-trailers"
ECH_EXTENSION = 0xFE0D  # TLS encrypted_client_hello
# The ALPN names of the protocols the proxy speaks inside an intercepted tunnel (mitmproxy's own).
HTTP_ALPN_NAMES = frozenset({b"h2", b"http/1.1", b"http/1.0", b"http/0.9"})
RULE_RESOLVES_LOCAL = "resolves-to-sidecar"
RULE_BUSY = "proxy-busy"
INTERNAL_HOST = "127.0.0.1"

# Per-flow state kept in flow.metadata.
VERDICT = "bottle_verdict"
FACTS = "bottle_facts"
SCAN = "bottle_scan"
LOGGED = "bottle_logged"
LOG_PATH = "bottle_log_path"
STREAM = "bottle_stream"
STREAM_ABORTED = "bottle_stream_aborted"
STREAM_FORM_METHOD = "bottle_stream_form_method"
STREAM_CREDENTIAL = "bottle_stream_credential"
STREAM_DECODER = "bottle_stream_decoder"  # what inflates a streamed body for the two above
ANSWER_STREAM = "bottle_answer_stream"
ANSWER_BYTES = "bottle_answer_bytes"  # an answer relayed unscanned: its size, for the log
HELD = "bottle_held"  # [bytes] this flow reserved in the hold budget (holding.py)
STREAM_HELD_WHOLE = "bottle_stream_held_whole"  # a streamed upload's top-up for being held whole
# What a streamed body holds at a time (a batch and its overlap): counted, never refused.
STREAM_HOLD = 1024 * 1024

# The most of one body mitmproxy buffers: what the scan holds. A body buffered past it (a chunked
# upload on a redact or supervise route, which cannot stream; a refused request's body) gets a
# 413 and is read no further: held whole, a few hundred MB got the proxy killed for memory, and
# the bottle lost its network.
MAX_HELD_BODY = dlp_adapter.HELD_LIMIT
BODY_LIMIT_ERROR = "Request body exceeds mitmproxy's body_size_limit."  # mitmproxy's words


class EgressAddon:
    def __init__(self) -> None:
        # Until a policy is loaded nothing is allowed: an empty policy denies everything.
        self.policy = Policy()
        self.secrets = credentials.Secrets()
        self.scrubber = records.Scrubber()
        # The DLP seam: replace these to scan; the defaults scan nothing.
        self.scanner: scanning.OutboundScanner = scanning.NoOutboundScan()
        self.inbound: scanning.InboundScanner = scanning.NoInboundScan()
        self.on_hold: scanning.HoldHandler = scanning.refuse_held
        self._log_file: logfile.LogFile | None = None
        self._internal_targets: frozenset[tuple[str, int]] = frozenset()
        # The supervise plane: the policy as the bottle was launched with it, and the grants
        # read on top of it (None: the bottle has no supervise plane).
        self._base_policy = self.policy
        self.grants: supervision.Grants | None = None
        self.holding = holding.HoldBudget()
        self.sweeper = holding.Sweeper()
        self.scan_worker = scan_worker.ScanWorker()
        self._websockets: dict[str, http.HTTPFlow] = {}  # live WebSockets by the agent's connection id

    # -- mitmproxy lifecycle -------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        install_framing_checks()
        install_body_limit()
        install_error_pages(self._error_page_text)
        ws_limit.install(MAX_HELD_BODY, self._websocket_too_big)
        ws_control.install(self._websocket_control, self._websocket_upstream_control)
        loader.add_option("bottle_policy", str, "", "Path of the bottle's egress policy (JSON).")
        loader.add_option("bottle_secrets", str, "", "Path of the bottle's secrets (JSON, mode 600).")
        loader.add_option("bottle_log_dir", str, "", f"Folder for {LOG_FILE_NAME}; empty: no file.")
        loader.add_option("bottle_log_stdout", bool, True, "Also write decision lines to stdout.")
        loader.add_option("bottle_supervise_dir", str, str(channel.DEFAULT_ROOT),
                          "The supervise spool (proposals, decisions, grants.json).")
        loader.add_option("bottle_hold_timeout", float, supervision.DEFAULT_HOLD_TIMEOUT,
                          "Seconds a request held by DLP 'supervise' waits for the operator.")

    def configure(self, updated: set[str]) -> None:
        if updated & {"bottle_policy", "bottle_secrets"}:
            try:
                policy = Policy.load(ctx.options.bottle_policy) if ctx.options.bottle_policy else Policy()
                secrets = (
                    credentials.Secrets.load(ctx.options.bottle_secrets)
                    if ctx.options.bottle_secrets
                    else credentials.Secrets()
                )
                credentials.check_credentials(policy, secrets)
            except (PolicyError, credentials.SecretsError) as exc:
                # Raising here stops the proxy at start: a bottle with a broken policy stays offline.
                raise exceptions.OptionsError(f"bottle egress: {exc}") from None
            self.policy, self.secrets = policy, secrets
            self._base_policy = policy
            basic = [route.auth.token_ref for route in policy.routes
                     if route.auth is not None and route.auth.scheme == "basic"]
            passwords = dlp_adapter.basic_passwords(secrets.credentials, basic)
            self.scrubber = records.Scrubber([*secrets.values(), *passwords.values()])
            # The DLP engine knows every secret of this bottle, injected credentials included. A
            # scanner someone plugged in by hand (the tests' recorders) is kept.
            if isinstance(self.scanner, (scanning.NoOutboundScan, dlp_adapter.DlpOutbound)):
                self.scanner = dlp_adapter.DlpOutbound(policy, secrets.credentials, secrets.known_secrets)
            if isinstance(self.inbound, (scanning.NoInboundScan, dlp_adapter.DlpInbound)):
                self.inbound = dlp_adapter.DlpInbound(secrets.credentials, secrets.known_secrets, basic=basic)
            self._internal_targets = frozenset((INTERNAL_HOST, port) for _, port in policy.internal_services)
        if updated & {"bottle_policy", "bottle_secrets", "bottle_supervise_dir"}:
            supervised = "supervise" in self._base_policy.services and bool(ctx.options.bottle_supervise_dir)
            self.grants = supervision.Grants(ctx.options.bottle_supervise_dir) if supervised else None
            self._refresh_grants()
        if "bottle_log_dir" in updated:
            self._close_log()
            if ctx.options.bottle_log_dir:
                folder = Path(ctx.options.bottle_log_dir)
                folder.mkdir(parents=True, exist_ok=True)
                self._log_file = logfile.LogFile(folder / LOG_FILE_NAME)

    def running(self) -> None:
        # mitmproxy's own limit bounds what it buffers (``install_body_limit``); ours is the scan's.
        if "body_size_limit" in ctx.options and not ctx.options.body_size_limit:
            ctx.options.update(body_size_limit=str(MAX_HELD_BODY))

    def done(self) -> None:
        self._close_log()
        self.scan_worker.close()

    # -- tunnels -------------------------------------------------------------------------------

    def http_connect(self, flow: http.HTTPFlow) -> None:
        try:
            self._refresh_grants()
            self._judge_connect(flow)
        except Exception as exc:  # noqa: BLE001 - a hook that fails must refuse, not wave through
            self._refuse(flow, _internal_error(flow, exc), None)

    def _judge_connect(self, flow: http.HTTPFlow) -> None:
        facts = RequestFacts.make(
            scheme="https",
            host=flow.request.host,
            port=flow.request.port,
            method="CONNECT",
            path="",
            headers=_header_pairs(flow.request),
            is_connect=True,
            http_version=flow.request.http_version,
            # The agent reaches the proxy in plain HTTP/1: a CONNECT over TLS or HTTP/2 came
            # through a tunnel the proxy opened already.
            in_tunnel=flow.request.is_http2 or flow.client_conn.tls_established,
        )
        verdict = self._enforce(flow, facts)
        if verdict.allowed and self._connect_target_refused(flow, verdict, facts):
            return  # refused and logged
        self._log(flow, verdict, facts)

    def _connect_target_refused(self, flow: http.HTTPFlow, verdict: Verdict, facts: RequestFacts) -> bool:
        """Scan the tunnel's host name before anything is opened for it; True: refused.

        A tunnel's name leaves before any request inside it is scanned: mitmproxy connects as
        soon as the CONNECT is allowed (a DNS lookup of the name, then the TCP connection), and
        the upstream TLS handshake carries the name as its SNI. Under a wildcard route
        (``*.example.com``) the agent picks that name, and a secret written into it as a label
        would reach the allowed host's resolver and server unscanned. A passed-through tunnel
        has no request inside at all. The name cannot be redacted, and a tunnel cannot wait for
        the operator, so any finding refuses it.
        """
        outbound = scanning.OutboundRequest(
            method="CONNECT", scheme="https", host=verdict.host, port=verdict.port, path="", headers=(),
            body=b"", route_index=verdict.route_index,
            dlp=verdict.route.dlp_settings if verdict.route is not None else {},
            internal_service=verdict.internal_service,
        )
        outcome = self.scanner.scan(outbound)
        if outcome.action == scanning.ALLOW:
            return False
        flow.metadata[SCAN] = scanning.ScanOutcome(scanning.BLOCK, outcome.detectors, outcome.reason)
        self._refuse(flow, _dlp_verdict(verdict, RULE_DLP, outcome, "the tunnel's host name carries"), facts)
        return True

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        """Pass a tunnel through untouched when its route says so; otherwise pin the upstream SNI."""
        address = data.context.server.address
        if not address:
            return
        facts = RequestFacts.make(scheme="https", host=str(address[0]), port=int(address[1]),
                                  method="CONNECT", path="", is_connect=True)
        try:
            verdict = decide(facts, self.policy)
        except Exception:  # noqa: BLE001 - intercepting is the safe default: every request is checked
            return
        if not verdict.allowed:
            return  # the CONNECT was refused already; nothing is forwarded either way
        try:
            passthrough = verdict.passthrough and _names_the_route(data.client_hello, verdict.host)
        except Exception:  # noqa: BLE001 - intercepted, then: every request inside is checked
            passthrough = False
        if passthrough:
            data.ignore_connection = True
            return
        # Intercepted: the upstream sees the name the tunnel was allowed for, never a different
        # SNI the client chose (domain fronting). A passthrough tunnel whose SNI disagrees, is
        # missing or is encrypted is intercepted instead, so each request inside is checked
        # against the tunnel's host. For a route naming an address, that address: mitmproxy then
        # sends no name (none is allowed for an address) and checks the certificate against the
        # address, where left unset it would forward the client's SNI and check against that.
        data.context.server.sni = verdict.host  # pinned first: what follows cannot leave it unset
        # mitmproxy offers the upstream the very ALPN names the client offered (``tlsconfig``
        # mirrors them when none are set): any bytes the agent writes there would reach the
        # upstream's handshake unscanned. Only the HTTP names, which the proxy speaks, go on.
        # A hook that raises is only logged by mitmproxy, which then goes on with the client's
        # SNI and ALPN names: a failure here falls back to the plainest safe choice instead.
        try:
            data.context.server.sni = ip_literal(verdict.host) or verdict.host
            offers = upstream_alpn_offers(getattr(data.client_hello, "alpn_protocols", ()) or ())
        except Exception:  # noqa: BLE001 - see above
            offers = (b"http/1.1",)
        if offers is not None:
            data.context.server.alpn_offers = offers

    async def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        """Refuse an upstream connection whose name resolves to an address no route may reach.

        A route may name a host whose DNS points at 127.0.0.1 (only the internal names may lead
        to the sidecar, re-targeted to exactly the listed service ports) or at a link-local
        address where a cloud serves instance credentials (``hosts.forbidden_upstream``).
        ``server_connected`` checks the address actually connected to as well: a second lookup
        (mitmproxy's own, when it connects) may answer differently.

        A check that fails refuses the connection: mitmproxy logs an exception a hook raises and
        connects anyway.
        """
        try:
            await self._check_upstream(data)
        except Exception as exc:  # noqa: BLE001 - an upstream that could not be checked is not connected to
            data.server.error = _unchecked_upstream(exc)

    async def _check_upstream(self, data: server_hooks.ServerConnectionHookData) -> None:
        address = data.server.address
        if not address or (str(address[0]), int(address[1])) in self._internal_targets:
            return
        host, port = str(address[0]), int(address[1])
        try:
            name = normalise_host(host)
        except HostError:
            # decide() refuses such targets first; one reaching here anyway is not connected to
            # (its name is not repeated: it may be what is being smuggled out).
            data.server.error = f"bot-bottle egress: the upstream is not a valid host name ({RULE_INVALID_HOST})"
            return
        if is_sidecar_local(name):
            data.server.error = f"bot-bottle egress: {host} is the sidecar itself ({RULE_RESOLVES_LOCAL})"
            return
        if ip_literal(name) is not None:
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            return  # the connection attempt fails on its own, with the resolver's message
        for info in infos:
            why = forbidden_upstream(str(info[4][0]))
            if why is not None:
                data.server.error = f"bot-bottle egress: {host} resolves to {why} ({RULE_RESOLVES_LOCAL})"
                return

    def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        """The address actually connected to must be one ``server_connect`` would allow: if not,
        the connection is dropped before anything is written to it (also when the check fails)."""
        try:
            error = self._connected_problem(data)
        except Exception as exc:  # noqa: BLE001 - an address that could not be checked is not used
            error = _unchecked_upstream(exc)
        if error is None:
            return
        data.server.error = error
        print(data.server.error, file=sys.stderr, flush=True)
        _drop_transport(data.client, data.server)

    def _connected_problem(self, data: server_hooks.ServerConnectionHookData) -> str | None:
        address, peer = data.server.address, data.server.peername
        if not address or not peer or (str(address[0]), int(address[1])) in self._internal_targets:
            return None
        why = forbidden_upstream(str(peer[0]))
        if why is None:
            return None
        return f"bot-bottle egress: {address[0]} connected to {why} ({RULE_RESOLVES_LOCAL})"

    # -- requests ------------------------------------------------------------------------------

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        try:
            self._refresh_grants()
            self._judge_request(flow)
        except Exception as exc:  # noqa: BLE001 - a hook that fails must refuse, not wave through
            self._refuse(flow, _internal_error(flow, exc), None)

    def _judge_request(self, flow: http.HTTPFlow) -> None:
        # Inside an intercepted tunnel mitmproxy sets request.host/port to the CONNECT target, and
        # for plain HTTP to the absolute URL it connects to: the real target either way.
        request = flow.request
        headers = _header_pairs(request)
        authority = ""
        if request.is_http2 or request.is_http3:
            if request.authority and not any(k.lower() == "host" for k, _ in headers):
                # HTTP/2 and HTTP/3 carry the host as :authority; check it like a Host header.
                headers.append(("host", request.authority))
            # With a Host header as well, an HTTP/2 upstream (a CDN's front end) routes by
            # :authority, which mitmproxy forwards as sent: it must name the target too.
            authority = request.authority
        else:
            # Non-empty only for an absolute-form request line inside a tunnel (mitmproxy clears
            # it for plain proxy requests, whose absolute URL is the target itself).
            authority = request.authority
        facts = RequestFacts.make(
            scheme=request.scheme,
            host=request.host,
            port=request.port,
            method=request.method,
            path=request.path,
            headers=headers,
            http_version=request.http_version,
            authority=authority,
        )
        verdict = self._enforce(flow, facts)
        if not verdict.allowed:
            self._log(flow, verdict, facts)
            return
        if self._server_fetch_at_head(flow, verdict, facts):
            return
        self._maybe_stream(flow, verdict, facts)
        if flow.response is None:
            self._reserve_request(flow, verdict, facts)

    def _server_fetch_at_head(self, flow: http.HTTPFlow, verdict: Verdict, facts: RequestFacts) -> bool:
        """On a route that refuses provider-side fetches (``server_fetch``), what the head alone
        decides: a beta header that turns on a fetching tool, or a body larger than the proxy
        holds (the check reads the body whole; a provider request that large, tens of MB of
        base64 attachments, is unusual, and one that is allowed unread could carry anything).
        Such a route never streams a body (``_maybe_stream``): a chunked one past the limit gets
        mitmproxy's 413. True: refused."""
        if not _checks_server_fetch(verdict):
            return False
        request = flow.request
        found = server_fetch.header_fetch(_header_pairs(request))
        if found is None:
            try:
                length = int(request.headers.get("content-length", "0") or 0)
            except ValueError:
                length = 0  # mitmproxy refuses a malformed length itself
            if length > MAX_HELD_BODY:
                found = server_fetch.Fetch(
                    f"a body of {length} bytes, more than the {MAX_HELD_BODY} the proxy holds to check it "
                    "for fetching fields", "body")
        if found is None:
            return False
        self._refuse(flow, _server_fetch_verdict(verdict, found), facts)
        return True

    def _reserve_request(self, flow: http.HTTPFlow, verdict: Verdict, facts: RequestFacts) -> None:
        """Reserve what this request's body will hold (``holding``), or refuse it for now. A
        streamed body holds a batch at a time (counted, never refused; topped up should its
        first bytes show it must be held whole, ``_stream_chunk``)."""
        plan: StreamScan | None = flow.metadata.get(STREAM)
        if plan is not None and plan.holds and not plan.whole:
            self._reserve(flow, STREAM_HOLD, force=True)
            return
        if self._reserve(flow, _request_hold(flow)):
            return
        flow.request.stream = False
        flow.metadata.pop(STREAM, None)
        busy = Verdict(False, verdict.host, verdict.port, RULE_BUSY,
                       f"the proxy cannot hold this body now ({self.holding.describe()}): retry shortly",
                       verdict.route, verdict.route_index, verdict.match_index, verdict.internal_service)
        self._refuse(flow, busy, facts)
        assert flow.response is not None
        flow.response.status_code = 503
        flow.response.headers["Retry-After"] = "1"

    def _reserve(self, flow: http.HTTPFlow, size: int, *, force: bool = False) -> bool:
        """Take ``size`` bytes of the hold budget for ``flow``, given back when the flow ends."""
        if size <= 0:
            return True
        if force:
            self.holding.force(size)
        elif not self.holding.reserve(size):
            return False
        cell: list[int] | None = flow.metadata.get(HELD)
        if cell is None:
            cell = flow.metadata[HELD] = [0]
            weakref.finalize(flow, self._release_cell, cell)  # whatever way the flow ends
        cell[0] += size
        return True

    def _release_cell(self, cell: list[int]) -> None:
        self.holding.release(cell[0])
        cell[0] = 0

    def _unhold(self, flow: http.HTTPFlow) -> None:
        cell: list[int] | None = flow.metadata.get(HELD)
        if cell is not None:
            self._release_cell(cell)

    # -- large uploads: forwarded while they arrive, scanned chunk-wise --------------------------

    def _maybe_stream(self, flow: http.HTTPFlow, verdict: Verdict, facts: RequestFacts) -> None:
        """Stream the body of a large plain upload (see ``dlp_adapter``: when that is safe).

        The URL and headers are scanned now (the body is empty here), the credential is injected
        now (the headers leave when streaming starts), and each chunk passes ``StreamScan`` on its
        way. Everything else keeps the buffered path of the ``request`` hook.
        """
        stream_scan = getattr(self.scanner, "stream_scan", None)
        if stream_scan is None or flow.response is not None:
            return
        if _checks_server_fetch(verdict):
            return  # held whole: provider-side fetches are looked for in the whole body
        request = flow.request
        try:
            length = int(request.headers["content-length"]) if "content-length" in request.headers else None
        except ValueError:
            return
        outbound = self._outbound(flow, verdict, facts, body=b"")
        plan = stream_scan(outbound, length)
        if plan is None:
            return
        # The buffered path's form ``_method`` and credential field checks (``_scan_and_prepare``),
        # read as the body passes, decoded as the upstream's framework decodes it.
        content_type = request.headers.get("content-type", "")
        form_method = stream_method.watch(verdict, content_type)
        credential = credential_stream(verdict, content_type)
        coding = ", ".join(request.headers.get_all("content-encoding"))
        if (form_method is not None or credential is not None) and not stream_method.reads_through(coding):
            return  # br, zstd, two codings: held, and decoded whole (``_plain_body``) before the checks
        outcome = self.scanner.scan(outbound)
        if outcome.action not in (scanning.ALLOW, scanning.REDACT, scanning.BLOCK):
            return  # held: the buffered path holds it (and scans it again, whole)
        flow.metadata[SCAN] = outcome
        if outcome.replacement is not None:
            flow.metadata[LOG_PATH] = outcome.replacement.path
        if outcome.action == scanning.BLOCK:
            self._refuse(flow, _dlp_verdict(verdict, RULE_DLP, outcome, "the request carries"), facts)
            return
        if outcome.action == scanning.REDACT and outcome.replacement is not None:
            _apply_replacement(request, outcome.replacement, body=False)
        self._prepare_upstream(flow, verdict)
        flow.metadata[STREAM] = plan
        if form_method is not None:
            flow.metadata[STREAM_FORM_METHOD] = form_method
        if credential is not None:
            flow.metadata[STREAM_CREDENTIAL] = credential
        if form_method is not None or credential is not None:
            flow.metadata[STREAM_DECODER] = stream_method.body_decoder(coding)
        request.stream = lambda data: _sendable(self._stream_chunk(flow, plan, data))

    def _stream_chunk(self, flow: http.HTTPFlow, plan: StreamScan, data: bytes) -> bytes:
        """mitmproxy's stream callable: the bytes to forward for ``data`` (b"": the end)."""
        if flow.metadata.get(STREAM_ABORTED):
            return b""
        try:
            verdict: Verdict = flow.metadata[VERDICT]
            # Read before the scanner sees the chunk: the chunk that completes the field, and the
            # end of the body, are then never forwarded.
            refused = self._stream_field_refusal(flow, verdict, data)
            if refused is not None:
                self._stop_stream(flow, plan, refused)
                return b""
            out = plan.feed(data) if data else plan.finish()
        except Exception as exc:  # noqa: BLE001 - a failing scan must stop the upload, not wave it on
            flow.metadata[STREAM_ABORTED] = True
            self._abort_upstream(flow, _internal_error(flow, exc))
            return b""
        if plan.whole and not flow.metadata.get(STREAM_HELD_WHOLE):
            flow.metadata[STREAM_HELD_WHOLE] = True  # compressed or JSON after all: held, up to the limit
            self._reserve(flow, MAX_HELD_BODY - STREAM_HOLD, force=True)
        if plan.blocked:
            detectors = tuple(sorted({dlp_adapter.label(f) for f in plan.findings}))
            outcome = scanning.ScanOutcome(scanning.BLOCK, detectors, ", ".join(detectors))
            flow.metadata[SCAN] = outcome
            self._stop_stream(flow, plan, _dlp_verdict(verdict, RULE_DLP, outcome, "the upload carries"))
            return b""
        return out

    @staticmethod
    def _stream_field_refusal(flow: http.HTTPFlow, verdict: Verdict, data: bytes) -> Verdict | None:
        """The refusal once the streamed body's chunk ``data`` (b"": the end) is read, decoded, by
        the form ``_method`` and credential field checks; None while neither finds anything."""
        form_method: stream_method.FormMethodState | None = flow.metadata.get(STREAM_FORM_METHOD)
        credential: CredentialStream | None = flow.metadata.get(STREAM_CREDENTIAL)
        if form_method is None and credential is None:
            return None
        final = not data
        pieces = stream_method.decoded(flow.metadata.get(STREAM_DECODER), data, final=final)
        try:
            # At the end, an empty piece after the decoder's last output: the checks' ``final``.
            for piece in chain(pieces, (b"",)) if final else pieces:
                last = final and not piece
                if form_method is not None and stream_method.feed(form_method, piece, final=last):
                    return _refusal(verdict, RULE_MATCH, body_method_reason(verdict))
                field = credential_stream_feed(credential, piece, final=last) if credential is not None else None
                if field is not None:
                    return _refusal(verdict, RULE_CREDENTIAL_BODY, body_credential_reason(verdict, field))
        except zlib.error:
            rule = RULE_MATCH if form_method is not None else RULE_CREDENTIAL_BODY
            return _refusal(verdict, rule, "the body does not decode as its Content-Encoding says, "
                                           "so its fields cannot be checked")
        return None

    def _stop_stream(self, flow: http.HTTPFlow, plan: StreamScan, refused: Verdict) -> None:
        """Refuse a streamed upload mid-way: nothing more leaves, the upstream request is aborted."""
        flow.metadata[STREAM_ABORTED] = True
        refused = Verdict(False, refused.host, refused.port, refused.rule,
                          f"{refused.reason}; the upload was stopped after {plan.forwarded} of "
                          f"{plan.received}+ bytes and the upstream request aborted",
                          refused.route, refused.route_index, refused.match_index, refused.internal_service)
        self._abort_upstream(flow, refused)

    def _abort_upstream(self, flow: http.HTTPFlow, verdict: Verdict) -> None:
        """Stop a streamed request: nothing more is sent, the upstream connection is closed (the
        upstream sees a body cut short, which no server treats as a request), and the refusal is
        logged now. The agent's connection gets the proxy's error answer."""
        flow.metadata[VERDICT] = verdict
        facts: RequestFacts | None = flow.metadata.get(FACTS)
        if facts is not None:
            self._log(flow, verdict, facts)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside mitmproxy's loop (tests): close right away
            _close_server_connection(flow)
            return
        # After the current event: the layer that called us is still handling it.
        loop.call_soon(_close_server_connection, flow)

    async def request(self, flow: http.HTTPFlow) -> None:
        verdict: Verdict | None = flow.metadata.get(VERDICT)
        facts: RequestFacts | None = flow.metadata.get(FACTS)
        if flow.response is not None and verdict is not None and not verdict.allowed:
            return  # refused at requestheaders; the 403 is on its way
        if flow.request.trailers:
            self._refuse_trailers(flow, verdict, facts)
            return
        if flow.metadata.get(STREAM) is not None:
            return  # streamed: judged chunk by chunk, already forwarded (or aborted)
        if verdict is None or facts is None or not verdict.allowed:
            # requestheaders never judged this flow: refuse rather than forward unjudged.
            self._refuse(flow, _internal_error(flow), facts)
            return
        try:
            await self._scan_and_prepare(flow, verdict, facts)
        except Exception as exc:  # noqa: BLE001 - a failing step must never forward the request
            self._refuse(flow, _internal_error(flow, exc), facts)

    def _refuse_trailers(self, flow: http.HTTPFlow, verdict: Verdict | None, facts: RequestFacts | None) -> None:
        """Trailers (HTTP/2 headers sent after the body) are dropped and the request refused: they
        would leave after every scan has run, and no agent needs to send them. mitmproxy sends a
        request's trailers only after this hook, so clearing them here means they never leave."""
        flow.request.trailers = None
        refused = Verdict(False, flow.request.host, flow.request.port, RULE_TRAILERS,
                          "request trailers (headers after the body) are not forwarded",
                          verdict.route if verdict else None, verdict.route_index if verdict else None)
        if flow.metadata.get(STREAM) is not None:
            # The body already went out, scanned clean: stop the upstream request before its end.
            if not flow.metadata.get(STREAM_ABORTED):
                flow.metadata[STREAM_ABORTED] = True
                self._abort_upstream(flow, refused)
            return
        self._refuse(flow, refused, facts)

    async def _scan_and_prepare(self, flow: http.HTTPFlow, verdict: Verdict, facts: RequestFacts) -> None:
        request = flow.request
        # Off the loop for a large body, like DLP: decoding it and reading a crafted form's fields
        # can take a good part of a second, which every other connection of the bottle would wait.
        field = await self.scan_worker.run(len(request.raw_content or b""), _body_field_problem, verdict, request)
        if field is not None:
            self._refuse(flow, _refusal(verdict, *field), facts)
            return
        if _checks_server_fetch(verdict):
            # Before DLP and before the credential goes in: a request the provider would act on
            # by reaching out elsewhere is never sent (off the loop for a large body, like DLP).
            body = request.raw_content or b""
            found = await self.scan_worker.run(len(body), server_fetch.find,
                                               tuple(request.headers.items(multi=True)), body)
            if found is not None:
                self._refuse(flow, _server_fetch_verdict(verdict, found), facts)
                return
        outbound = self._outbound(flow, verdict, facts, body=request.raw_content or b"")
        # ---- the DLP seam: the one place outbound content is judged (off the loop) ----
        outcome = await self.scan_worker.run(len(outbound.body), self.scanner.scan, outbound)
        flow.metadata[SCAN] = outcome
        if outcome.replacement is not None:
            flow.metadata[LOG_PATH] = outcome.replacement.path
        if outcome.action == scanning.BLOCK:
            self._refuse(flow, _dlp_verdict(verdict, RULE_DLP, outcome, "the request carries"), facts)
            return
        if outcome.action == scanning.HOLD:
            held = await self._hold(flow, outbound, outcome, verdict)
            if not held.forward:
                lead = "held for the operator, not approved:"
                if held.proposal_id:
                    lead = (f"held for the operator, not approved (proposal {held.proposal_id}: {held.verdict}; "
                            f"ask with request-token-use, hold_id {held.proposal_id}):")
                elif held.note:
                    lead = f"held for the operator, not approved ({held.note}):"
                self._refuse(flow, _dlp_verdict(verdict, RULE_DLP_HOLD, outcome, lead), facts)
                return
        if outcome.action == scanning.REDACT and outcome.replacement is not None:
            replacement = await self.scan_worker.run(len(outbound.body), _in_sent_encoding, request,
                                                     outcome.replacement)
            if replacement is None:
                # Sent decoded (or with bytes moved into the compressed data), the upstream
                # would store something the agent never sent: refused instead.
                why = f"{outcome.reason} (could not be redacted in the encoding it was sent in)"
                outcome = scanning.ScanOutcome(scanning.BLOCK, outcome.detectors, why, outcome.replacement)
                flow.metadata[SCAN] = outcome
                self._refuse(flow, _dlp_verdict(verdict, RULE_DLP, outcome, "the request carries"), facts)
                return
            _apply_replacement(request, replacement)
        self._prepare_upstream(flow, verdict)

    async def _hold(self, flow: http.HTTPFlow, outbound: scanning.OutboundRequest, outcome: scanning.ScanOutcome,
                    verdict: Verdict) -> supervision.HoldResult:
        """Decide a request DLP holds: a plugged-in handler, a standing grant, or the operator."""
        if self.on_hold is not scanning.refuse_held:
            return supervision.HoldResult(bool(await self.on_hold(outbound, outcome)), verdict="handler")
        if self.grants is None:
            return supervision.HoldResult(False, verdict="no-console", note="this bottle has no supervise plane")
        route_name = verdict.route.host if verdict.route is not None else verdict.host
        if self.grants.token_use_granted((route_name, verdict.host), outcome.detectors):
            return supervision.HoldResult(True, verdict="granted")
        timeout = max(0.0, float(ctx.options.bottle_hold_timeout))
        try:
            proposal = supervision.token_use_proposal(
                method=outbound.method, host=verdict.host, path=flow.metadata.get(LOG_PATH) or outbound.path,
                route=route_name, detectors=outcome.detectors, timeout=timeout or 0.001)
        except channel.ChannelError as exc:
            return supervision.HoldResult(False, verdict="error", note=f"no proposal could be made ({exc})")
        return await supervision.hold(channel.Spool(ctx.options.bottle_supervise_dir), proposal, timeout)

    def _refresh_grants(self) -> None:
        """Pick up what the operator granted (grants.json changed): no restart, connections kept."""
        if self.grants is None or not self.grants.refresh():
            return
        policy = supervision.merged_policy(self._base_policy, self.grants.routes)
        self.policy = policy
        if isinstance(self.scanner, dlp_adapter.DlpOutbound):
            self.scanner.policy = policy
        # No "decision": `bot-bottle logs` lists decisions only; the line stays in the log file.
        self._emit({"ts": records.timestamp(), "event": "grants", "reloaded": True,
                    "routes": len(self.grants.routes), "token_uses": len(self.grants.token_uses),
                    "skipped": list(self.grants.skipped)})

    def _outbound(self, flow: http.HTTPFlow, verdict: Verdict, facts: RequestFacts, *, body: bytes) -> scanning.OutboundRequest:
        return scanning.OutboundRequest(
            method=facts.method,
            scheme=facts.scheme,
            host=verdict.host,
            port=verdict.port,
            path=flow.request.path,
            headers=tuple(flow.request.headers.items(multi=True)),
            body=body,
            route_index=verdict.route_index,
            dlp=verdict.route.dlp_settings if verdict.route is not None else {},
            internal_service=verdict.internal_service,
        )

    def _prepare_upstream(self, flow: http.HTTPFlow, verdict: Verdict) -> None:
        request = flow.request
        # ---- credentials: the agent's are removed, the route's real one goes in ----
        request.headers.pop("proxy-authorization", None)  # hop-by-hop: never for an upstream
        route = verdict.route
        if route is not None and route.auth is not None:
            sent = {raw.decode("latin-1") for raw, _ in request.headers.fields}
            for name in sent:
                if credentials.is_stripped(name, route.auth):
                    request.headers.pop(name, None)  # every copy, any case
            secret = self.secrets.credentials[route.auth.token_ref]
            for name, value in credentials.credential_headers(route.auth, secret, request.headers.get("anthropic-beta")):
                request.headers[name] = value
        # ---- answers asked for only in encodings the inbound scan reads as they stream ----
        narrow = getattr(self.inbound, "accept_encoding", None)
        asked = request.headers.get_all("accept-encoding")
        if narrow is not None and asked and verdict.internal_port is None:
            narrowed = narrow(", ".join(asked))
            if narrowed is not None:
                request.headers.set_all("accept-encoding", [narrowed])
        # ---- internal names go to the bundle's own service on loopback ----
        if verdict.internal_port is not None:
            host_header = request.headers.get("host")
            request.scheme = "http"
            request.host = INTERNAL_HOST
            request.port = verdict.internal_port
            if host_header is not None:
                request.headers["host"] = host_header

    # -- large answers: delivered while they arrive, scanned chunk-wise -------------------------

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """Mask the bottle's secrets echoed in an answer's headers, then stream an answer too
        large to hold (a download) through ``AnswerStream``: held whole, a few hundred MB got the
        proxy killed for memory. Smaller answers keep the buffered path of the ``response`` hook."""
        verdict: Verdict | None = flow.metadata.get(VERDICT)
        response = flow.response
        if verdict is None or not verdict.allowed or response is None:
            return
        if verdict.internal_service is None and not self._scrub_answer_headers(flow, verdict, response):
            return  # refused: a header name carried a secret
        stream_answer = getattr(self.inbound, "stream_answer", None)
        if stream_answer is None:
            return
        if flow.request.method == "HEAD" or response.status_code in (204, 304) or response.status_code < 200:
            return  # no body
        if verdict.internal_service is not None:
            # Not scanned here (a clone's pack from the git-gate): relayed as it arrives, never held.
            response.stream = lambda data: _sendable(_counted(flow, data))
            return
        try:
            length = int(response.headers["content-length"]) if "content-length" in response.headers else None
        except ValueError:
            return  # mitmproxy refuses the malformed answer itself
        answer = scanning.InboundResponse(
            request=self._inbound_request(flow, verdict), status=response.status_code,
            headers=tuple(response.headers.items(multi=True)), body=b"",
        )
        plan = stream_answer(answer, length)
        held = (length or 0) if plan is None else plan.hold_upto  # what holding it would take
        if not self._reserve(flow, held):
            plan = stream_answer(answer, length, hold=False)  # no room to hold it: streamed instead
        if plan is None:
            return
        if not plan.hold_upto:
            self._reserve(flow, STREAM_HOLD, force=True)
        flow.metadata[ANSWER_STREAM] = plan
        response.stream = lambda data: _sendable(self._answer_chunk(flow, plan, data, chunked=length is None))

    def _scrub_answer_headers(self, flow: http.HTTPFlow, verdict: Verdict, response: http.Response) -> bool:
        """The bottle's secrets an upstream echoed in header values or the reason phrase are
        masked before the agent sees them (the body is the inbound scan's), logged as a
        redaction: a value is masked in place, a reason phrase becomes the standard one for the
        status. A header name that carries one cannot be rewritten: the answer is refused (502)
        and its body discarded unread. False: refused."""
        echoed_in_headers = getattr(self.inbound, "echoed_in_headers", None)
        if echoed_in_headers is None:
            return True
        found = echoed_in_headers(tuple(response.headers.items(multi=True)), response.reason or "")
        if found is None:
            return True
        labels = found.labels
        if found.names:
            outcome = scanning.ScanOutcome(scanning.BLOCK, labels, "in a header name")
            flow.metadata[SCAN] = outcome
            refused = _dlp_verdict(verdict, RULE_DLP_INBOUND, outcome, "the response carries")
            flow.metadata[VERDICT] = refused
            flow.response = _substitute_answer(_refusal_response(refused, status=502))
            return False
        for name, new in found.values.items():
            response.headers.set_all(name, new)
        if found.reason:
            response.reason = status_codes.RESPONSES.get(response.status_code, "")
        flow.metadata[SCAN] = scanning.ScanOutcome(scanning.REDACT, labels, ", ".join(labels))
        return True

    def _scrub_trailers(self, flow: http.HTTPFlow) -> None:
        """An answer's trailers (HTTP/2 headers after the body, which gRPC needs) leave after the
        ``response`` hook: the bottle's secrets echoed in their values are masked as in its
        headers, a trailer whose name carries one is dropped, and a refused answer keeps none."""
        response = flow.response
        if response is None or not response.trailers:
            return
        verdict: Verdict | None = flow.metadata.get(VERDICT)
        if verdict is None or not verdict.allowed:
            response.trailers = None
            return
        echoed_in_headers = getattr(self.inbound, "echoed_in_headers", None)
        if verdict.internal_service is not None or echoed_in_headers is None:
            return
        trailers = response.trailers
        try:
            found = echoed_in_headers(tuple(trailers.items(multi=True)))
        except Exception:  # noqa: BLE001 - trailers that cannot be scanned do not leave
            response.trailers = None
            return
        if found is None:
            return
        for name, new in found.values.items():
            trailers.set_all(name, new)
        for name in found.names:
            trailers.pop(name, None)
        previous: scanning.ScanOutcome | None = flow.metadata.get(SCAN)
        labels = tuple(sorted({*(previous.detectors if previous else ()), *found.labels}))
        flow.metadata[SCAN] = scanning.ScanOutcome(scanning.REDACT, labels, ", ".join(labels))

    def _answer_chunk(self, flow: http.HTTPFlow, plan: Answer, data: bytes, *, chunked: bool) -> bytes:
        """mitmproxy's stream callable for an answer: the bytes to deliver for ``data`` (b"": the end)."""
        if plan.stopped:
            return b""
        try:
            out = plan.feed(data) if data else plan.finish()
        except Exception as exc:  # noqa: BLE001 - an answer that cannot be scanned is not delivered
            plan.stopped = True
            plan.labels.append(f"internal error: {type(exc).__name__}")
            out = b""
        if not plan.stopped:
            return out
        verdict: Verdict = flow.metadata[VERDICT]
        labels = tuple(sorted(set(plan.labels)))
        outcome = scanning.ScanOutcome(scanning.BLOCK, labels, ", ".join(labels))
        flow.metadata[SCAN] = outcome
        refused = _dlp_verdict(verdict, RULE_DLP_INBOUND, outcome, "the response carries")
        flow.metadata[VERDICT] = Verdict(
            False, refused.host, refused.port, refused.rule,
            f"{refused.reason}; the answer was stopped after {plan.delivered} of {plan.received}+ bytes",
            refused.route, refused.route_index, refused.match_index, refused.internal_service)
        if not data and chunked and plan.delivered == 0:
            # Judged whole at its end: a chunked answer can still carry a notice instead.
            return f"bot-bottle egress: the answer was withheld ({outcome.reason})\n".encode()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # outside mitmproxy's loop (tests)
            _close_connections(flow)
        else:
            loop.call_soon(_close_connections, flow)  # after the event the layer is handling
        return b""

    def _inbound_request(self, flow: http.HTTPFlow, verdict: Verdict) -> scanning.OutboundRequest:
        """The request an answer belongs to, as the inbound scanner sees it (route and settings)."""
        facts: RequestFacts | None = flow.metadata.get(FACTS)
        method, scheme = (facts.method, facts.scheme) if facts is not None else (flow.request.method, flow.request.scheme)
        return scanning.OutboundRequest(
            method=method, scheme=scheme, host=verdict.host, port=verdict.port, path=flow.request.path, headers=(),
            body=b"", route_index=verdict.route_index,
            dlp=verdict.route.dlp_settings if verdict.route is not None else {},
            internal_service=verdict.internal_service,
        )

    async def response(self, flow: http.HTTPFlow) -> None:
        try:
            self._scrub_trailers(flow)
            await self._response(flow)
        finally:
            self._ended(flow)

    async def _response(self, flow: http.HTTPFlow) -> None:
        verdict: Verdict | None = flow.metadata.get(VERDICT)
        facts: RequestFacts | None = flow.metadata.get(FACTS)
        if verdict is None or facts is None or flow.metadata.get(LOGGED) or flow.response is None:
            return
        plan: Answer | None = flow.metadata.get(ANSWER_STREAM)
        if plan is not None:
            if plan.labels and not plan.stopped:  # flagged, or masked on the way
                previous: scanning.ScanOutcome | None = flow.metadata.get(SCAN)  # masked in headers
                labels = tuple(sorted(set(plan.labels) | set(previous.detectors if previous else ())))
                action = scanning.REDACT if plan.masked or previous else scanning.ALLOW
                flow.metadata[SCAN] = scanning.ScanOutcome(action, labels, ", ".join(labels))
            self._log(flow, flow.metadata.get(VERDICT, verdict), facts)
            return
        if verdict.allowed:
            try:
                await self._scan_response(flow, verdict, facts)
            except Exception as exc:  # noqa: BLE001 - an unscannable answer is not delivered
                flow.response = _refusal_response(_internal_error(flow, exc), status=502)
        self._log(flow, flow.metadata.get(VERDICT, verdict), facts)

    async def _scan_response(self, flow: http.HTTPFlow, verdict: Verdict, facts: RequestFacts) -> None:
        response = flow.response
        assert response is not None
        outbound = self._inbound_request(flow, verdict)
        body = response.raw_content or b""
        outcome = await self.scan_worker.run(len(body), self.inbound.scan, scanning.InboundResponse(
            request=outbound, status=response.status_code,
            headers=tuple(response.headers.items(multi=True)), body=body,
        ))
        if not outcome.is_event:
            return
        previous: scanning.ScanOutcome | None = flow.metadata.get(SCAN)
        flow.metadata[SCAN] = scanning.ScanOutcome(
            action=outcome.action if outcome.action != scanning.ALLOW else (previous.action if previous else scanning.ALLOW),
            detectors=(*(previous.detectors if previous else ()), *outcome.detectors),
            reason=outcome.reason,
        )
        if outcome.action == scanning.BLOCK:
            refused = _dlp_verdict(verdict, RULE_DLP_INBOUND, scanning.ScanOutcome(
                scanning.BLOCK, outcome.detectors, outcome.reason), "the response carries")
            flow.metadata[VERDICT] = refused
            flow.response = _refusal_response(refused, status=502)
        elif outcome.action == scanning.REDACT and outcome.body is not None:
            response.raw_content = outcome.body
            if not outcome.encoded:
                response.headers.pop("content-encoding", None)  # the redacted body is sent decoded
            if "content-length" in response.headers:
                response.headers["content-length"] = str(len(outcome.body))

    def error(self, flow: http.HTTPFlow) -> None:
        try:
            self._error(flow)
        finally:
            self._ended(flow)

    def _ended(self, flow: http.HTTPFlow) -> None:
        self._unhold(flow)
        self.sweeper.relayed(_request_bytes(flow) + _response_bytes(flow))

    def client_disconnected(self, client: Any) -> None:
        """A connection's end leaves a reference cycle holding what it carried (``holding.Sweeper``)."""
        if not self.sweeper.due():
            return
        try:
            asyncio.get_running_loop().call_later(holding.SWEEP_DELAY, self._sweep)
        except RuntimeError:  # outside mitmproxy's loop (tests)
            self._sweep()

    def _sweep(self) -> None:
        gc.collect()
        self.sweeper.swept()

    def _error_page_text(self, message: str) -> str:
        """The message of one of mitmproxy's own error pages as the agent may see it
        (``install_error_pages``): the bottle's secrets masked, raw as the log's scrubber does and
        in the forms the echo search finds."""
        text = self.scrubber.text(message)
        echoed_in_message = getattr(self.inbound, "echoed_in_message", None)
        if echoed_in_message is not None:
            found = echoed_in_message(text.encode("utf-8", "surrogateescape"))
            if found is not None:
                text = found[0].decode("utf-8", "replace")
        return text

    def _error(self, flow: http.HTTPFlow) -> None:
        verdict: Verdict | None = flow.metadata.get(VERDICT)
        facts: RequestFacts | None = flow.metadata.get(FACTS)
        if verdict is None or facts is None or flow.metadata.get(LOGGED) or facts.is_connect:
            return
        refused = str(getattr(flow.server_conn, "error", None) or "")
        if RULE_RESOLVES_LOCAL in refused:
            # Our own server_connect/server_connected refusal: a denial, not an upstream failure.
            verdict = Verdict(False, verdict.host, verdict.port, RULE_RESOLVES_LOCAL,
                              refused.removeprefix("bot-bottle egress: "), verdict.route, verdict.route_index)
            flow.metadata[VERDICT] = verdict
            self._log(flow, verdict, facts)
            return
        if flow.error is not None and flow.error.msg == BODY_LIMIT_ERROR:
            # A buffered body past MAX_HELD_BODY: mitmproxy answered 413 and read no more of it.
            outcome = scanning.ScanOutcome(scanning.BLOCK, ("scan-limit",), (
                f"a body larger than the scan limit ({MAX_HELD_BODY} bytes) that cannot stream (chunked, "
                "on a route that redacts or holds what it finds, or that refuses provider-side fetches) is not held"))
            flow.metadata[SCAN] = outcome
            refused = _dlp_verdict(verdict, RULE_DLP, outcome, "the request carries")
            flow.metadata[VERDICT] = refused
            self._log(flow, refused, facts)
            return
        self._log(flow, verdict, facts, error=flow.error.msg if flow.error else "failed")

    # -- WebSocket -------------------------------------------------------------------------------

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        self._websockets[flow.client_conn.id] = flow
        self._websockets[flow.server_conn.id] = flow  # the upstream's control frames (``ws_control``)

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self._websockets.pop(flow.client_conn.id, None)
        self._websockets.pop(flow.server_conn.id, None)

    def _websocket_control(self, conn: Any, kind: str, payload: bytes) -> bool:
        """A ping or pong payload, or a close reason, from the agent (``ws_control``): scanned as
        a message is (at most 125 bytes: on the event loop). Any finding, whatever the route
        does on one, relays it empty and closes the connection (1008), logged."""
        flow = self._websockets.get(conn.id)
        verdict: Verdict | None = flow.metadata.get(VERDICT) if flow is not None else None
        facts: RequestFacts | None = flow.metadata.get(FACTS) if flow is not None else None
        if flow is None or verdict is None or facts is None or not verdict.allowed:
            return False  # a WebSocket this addon never allowed: nothing of it leaves
        scan_message = getattr(self.scanner, "scan_message", None)
        if scan_message is None:
            return True
        try:
            outcome = scan_message(self._outbound(flow, verdict, facts, body=b""), payload)
        except Exception as exc:  # noqa: BLE001 - a payload that cannot be scanned does not leave
            outcome = scanning.ScanOutcome(scanning.BLOCK, (RULE_INTERNAL_ERROR,), type(exc).__name__)
        if not outcome.is_event:
            return True
        what = "reason" if kind == "close" else "payload"
        outcome = scanning.ScanOutcome(scanning.BLOCK, outcome.detectors, outcome.reason)
        refused = _dlp_verdict(verdict, RULE_DLP_WEBSOCKET, outcome, f"a WebSocket {kind} {what} carries")
        refused = Verdict(False, refused.host, refused.port, refused.rule,
                          refused.reason + f"; the {kind} went without its {what} and the connection was closed",
                          refused.route, refused.route_index, refused.match_index, refused.internal_service)
        self._emit(records.decision_record(refused, facts, records.Outcome(
            request_bytes=len(payload), detectors=outcome.detectors, action=scanning.BLOCK)))
        if kind != "close":  # a close ends the connection anyway
            names = ", ".join(outcome.detectors) or "unnamed detector"
            _close_websocket(flow, _close_reason(f"bot-bottle egress: {RULE_DLP_WEBSOCKET}: {names}"))
        return False

    def _websocket_upstream_control(self, conn: Any, kind: str, payload: bytes) -> bool:
        """A ping or pong payload, or a close reason, from the upstream (``ws_control``): one that
        carries the bottle's secrets is relayed empty (at most 125 bytes: on the event loop),
        logged as a redaction. The connection stays open, as for a masked message."""
        flow = self._websockets.get(conn.id)
        verdict: Verdict | None = flow.metadata.get(VERDICT) if flow is not None else None
        facts: RequestFacts | None = flow.metadata.get(FACTS) if flow is not None else None
        if flow is None or verdict is None or facts is None or not verdict.allowed:
            return False  # a WebSocket this addon never allowed: nothing of it is relayed
        echoed_in_message = getattr(self.inbound, "echoed_in_message", None)
        if verdict.internal_service is not None or echoed_in_message is None:
            return True
        try:
            found = echoed_in_message(payload)
        except Exception:  # noqa: BLE001 - a payload that cannot be scanned is not relayed
            return False
        if found is None:
            return True
        self._emit(records.decision_record(verdict, facts, records.Outcome(
            response_bytes=len(payload), detectors=found[1], action=scanning.REDACT)))
        return False

    async def _websocket_answer(self, flow: http.HTTPFlow, message: Any) -> None:
        """A message from the upstream: the bottle's secrets echoed in it are masked, as in a
        held answer (a message is at most the held limit, ``ws_limit``; a large one is searched
        on the scan worker), logged as a redaction without the value. One that cannot be
        searched is dropped and the connection closed."""
        verdict: Verdict | None = flow.metadata.get(VERDICT)
        facts: RequestFacts | None = flow.metadata.get(FACTS)
        if verdict is None or facts is None or not verdict.allowed:
            message.drop()  # a WebSocket this addon never allowed
            return
        echoed_in_message = getattr(self.inbound, "echoed_in_message", None)
        if verdict.internal_service is not None or echoed_in_message is None:
            return
        size = len(message.content)
        try:
            found = await self.scan_worker.run(size, echoed_in_message, message.content)
        except Exception as exc:  # noqa: BLE001 - a message that cannot be searched is not relayed
            message.drop()
            outcome = scanning.ScanOutcome(scanning.BLOCK, (RULE_INTERNAL_ERROR,), type(exc).__name__)
            refused = _dlp_verdict(verdict, RULE_DLP_WEBSOCKET, outcome, "a WebSocket message from the upstream is")
            self._emit(records.decision_record(refused, facts, records.Outcome(
                response_bytes=size, detectors=outcome.detectors, action=scanning.BLOCK)))
            _close_websocket(flow, _close_reason(f"bot-bottle egress: {RULE_DLP_WEBSOCKET}: {RULE_INTERNAL_ERROR}"))
            return
        if found is None:
            return
        message.content, labels = found
        self._emit(records.decision_record(verdict, facts, records.Outcome(
            response_bytes=size, detectors=labels, action=scanning.REDACT)))

    async def websocket_message(self, flow: http.HTTPFlow) -> None:
        """Each message the agent sends passes the DLP scanner, like a request body.

        ``block`` (and ``supervise``: a message cannot be held) drops the message and closes the
        connection with code 1008 and a reason naming the detectors; ``redact`` sends the
        message with the values replaced. A message from the upstream has the bottle's secrets
        echoed in it masked (``_websocket_answer``).
        """
        assert flow.websocket is not None
        messages = flow.websocket.messages
        if len(messages) > 1:
            # mitmproxy keeps every message of a connection for the flow's life; nothing here reads
            # an earlier one, and a long-lived connection would grow the proxy without end.
            del messages[:-1]
        message = messages[-1]
        if message.injected:
            return
        if not message.from_client:
            await self._websocket_answer(flow, message)
            return
        verdict: Verdict | None = flow.metadata.get(VERDICT)
        facts: RequestFacts | None = flow.metadata.get(FACTS)
        try:
            if verdict is None or facts is None or not verdict.allowed:
                raise RuntimeError("WebSocket connection that was never allowed")
            if _checks_server_fetch(verdict):
                # A provider's WebSocket API (Realtime, Responses over WebSocket) takes the same
                # tools in its messages as in a request body.
                found = await self.scan_worker.run(len(message.content), server_fetch.find, (), message.content)
                if found is not None:
                    self._refuse_websocket_fetch(flow, message, verdict, facts, found)
                    return
            scan_message = getattr(self.scanner, "scan_message", None)
            if scan_message is None:
                return
            outcome = await self.scan_worker.run(len(message.content), scan_message,
                                                 self._outbound(flow, verdict, facts, body=b""), message.content)
        except Exception as exc:  # noqa: BLE001 - a message that cannot be scanned does not leave
            outcome = scanning.ScanOutcome(scanning.BLOCK, (RULE_INTERNAL_ERROR,), type(exc).__name__)
            verdict = verdict or _internal_error(flow, exc)
            facts = facts or RequestFacts.make(scheme="wss", host=flow.request.host, port=flow.request.port,
                                               method="GET", path=flow.request.path)
        if not outcome.is_event:
            return
        size = len(message.content)
        if outcome.action == scanning.REDACT and outcome.replacement is not None:
            message.content = outcome.replacement.body
            self._emit(records.decision_record(verdict, facts, records.Outcome(
                request_bytes=size, detectors=outcome.detectors, action=scanning.REDACT)))
            return
        message.drop()
        refused = _dlp_verdict(verdict, RULE_DLP_WEBSOCKET, outcome, "a WebSocket message carries")
        refused = Verdict(False, refused.host, refused.port, refused.rule,
                          refused.reason + "; the message was dropped and the connection closed",
                          refused.route, refused.route_index, refused.match_index, refused.internal_service)
        self._emit(records.decision_record(refused, facts, records.Outcome(
            request_bytes=size, detectors=outcome.detectors, action=scanning.BLOCK)))
        names = ", ".join(outcome.detectors) or "unnamed detector"
        _close_websocket(flow, _close_reason(f"bot-bottle egress: {RULE_DLP_WEBSOCKET}: {names}"))

    def _refuse_websocket_fetch(self, flow: http.HTTPFlow, message: Any, verdict: Verdict, facts: RequestFacts,
                                found: server_fetch.Fetch) -> None:
        """A message that would make the provider fetch: dropped, logged, the connection closed
        (1008), as a DLP block of a message is."""
        size = len(message.content)
        message.drop()
        refused = _server_fetch_verdict(verdict, found)
        refused = Verdict(False, refused.host, refused.port, refused.rule,
                          refused.reason + "; the WebSocket message was dropped and the connection closed",
                          refused.route, refused.route_index, refused.match_index, refused.internal_service)
        self._emit(records.decision_record(refused, facts, records.Outcome(request_bytes=size)))
        _close_websocket(flow, _close_reason(f"bot-bottle egress: {RULE_SERVER_FETCH}: {found.where}"))

    def _websocket_too_big(self, flow: http.HTTPFlow, from_client: bool, size: int) -> None:
        """A message past the held limit closed the connection (``ws_limit``): logged as DLP's
        scan limit, whichever side sent it (an upstream's is not scanned, but it is held whole)."""
        verdict: Verdict | None = flow.metadata.get(VERDICT)
        facts: RequestFacts | None = flow.metadata.get(FACTS)
        if verdict is None or facts is None:
            return
        sender = "the agent" if from_client else "the upstream"
        outcome = scanning.ScanOutcome(scanning.BLOCK, ("scan-limit",), (
            f"a WebSocket message from {sender} passed {MAX_HELD_BODY} bytes, the most the proxy holds; "
            f"the connection was closed ({ws_limit.MESSAGE_TOO_BIG}, message too big)"))
        refused = _dlp_verdict(verdict, RULE_DLP_WEBSOCKET, outcome, "a WebSocket message is")
        self._emit(records.decision_record(refused, facts, records.Outcome(
            request_bytes=size if from_client else None, response_bytes=None if from_client else size,
            detectors=outcome.detectors, action=scanning.BLOCK)))

    # -- anything that is not HTTP ---------------------------------------------------------------

    def tcp_message(self, flow: tcp.TCPFlow) -> None:
        """Raw TCP inside an allowed tunnel would skip every request rule: drop it.

        The proxy runs with ``rawtcp`` off, so this is a second line; passed-through TLS tunnels
        are not TCP flows (mitmproxy forwards them without hooks).
        """
        message = flow.messages[-1]
        message.content = b""
        if flow.killable:
            flow.kill()
        if not flow.metadata.get(LOGGED):
            flow.metadata[LOGGED] = True
            address = flow.server_conn.address or ("?", 0)
            facts = RequestFacts.make(scheme="tcp", host=str(address[0]), port=int(address[1]),
                                      method="TCP", path="", is_connect=True)
            verdict = Verdict(False, str(address[0]), int(address[1]), RULE_RAW_TCP,
                              "only HTTP is allowed inside a tunnel; raw TCP is dropped")
            self._emit(records.decision_record(verdict, facts))

    # -- internals -----------------------------------------------------------------------------

    def _enforce(self, flow: http.HTTPFlow, facts: RequestFacts) -> Verdict:
        try:
            verdict = decide(facts, self.policy)
        except Exception as exc:  # noqa: BLE001 - a crash in a hook must never let the request through
            verdict = Verdict(False, facts.host, facts.port, RULE_INTERNAL_ERROR,
                              f"the proxy could not decide ({type(exc).__name__})")
        flow.metadata[VERDICT] = verdict
        flow.metadata[FACTS] = facts
        if not verdict.allowed:
            flow.response = _refusal_response(verdict, scrub=self.scrubber.text)
        return verdict

    def _refuse(self, flow: http.HTTPFlow, verdict: Verdict, facts: RequestFacts | None) -> None:
        flow.metadata[VERDICT] = verdict
        flow.response = _refusal_response(verdict, scrub=self.scrubber.text)
        if facts is not None:
            self._log(flow, verdict, facts)

    def _log(self, flow: http.HTTPFlow, verdict: Verdict, facts: RequestFacts, *, error: str | None = None) -> None:
        flow.metadata[LOGGED] = True
        scan: scanning.ScanOutcome | None = flow.metadata.get(SCAN)
        quiet = verdict.allowed and not (scan is not None and scan.is_event)
        if self.policy.log == records.LOG_OFF or (quiet and self.policy.log < records.LOG_ALL):
            return  # nothing this level keeps: skip building the record on the hot path
        request, response = flow.request, flow.response
        end: float = time.time()
        if response is not None and response.timestamp_end is not None:
            end = response.timestamp_end
        started: float = request.timestamp_start or end
        outcome = records.Outcome(
            request_bytes=None if facts.is_connect else _request_bytes(flow),
            response_bytes=_response_bytes(flow) if response is not None and not facts.is_connect else None,
            status=response.status_code if response is not None else None,
            duration_ms=max(0.0, (end - started) * 1000.0),
            detectors=scan.detectors if scan else (),
            action=scan.action if scan and scan.action != scanning.ALLOW else None,
            error=error,
        )
        self._emit(records.decision_record(verdict, facts, outcome, path=flow.metadata.get(LOG_PATH)))

    def _emit(self, record: dict[str, Any]) -> None:
        if not records.should_log(self.policy.log, record):
            return
        line = records.to_line(self.scrubber.record(record))
        if ctx.options.bottle_log_stdout:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        if self._log_file is not None:
            self._log_file.write(line + "\n")

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _framing_refused(request: http.Request) -> bool:
    """Our structural rules refuse this request's body framing (see ``install_framing_checks``)."""
    return structure.framing_problem(_header_pairs(request), request.http_version) is not None


def install_framing_checks() -> None:
    """Let requests with a smuggling-shaped body framing reach our hooks, which refuse them.

    mitmproxy answers these with its own 400 before any addon hook can name a rule: a
    Content-Length together with Transfer-Encoding (``validate_request``, under the
    ``validate_inbound_headers`` option) and several or malformed Content-Length values (while
    reading the head, in ``expected_http_body_size``). Turning the option off would also drop
    its checks of answers and of HTTP/2, so instead both functions are wrapped, narrowly: only a
    request that ``structure.framing_problem`` refuses as well is let through, and then with no
    body read (length 0) so nothing of it is parsed or forwarded; ``requestheaders`` answers it
    with our 403, which carries ``Connection: close`` (the bytes after the head are never read
    as a request). Everything else keeps mitmproxy's own handling.
    """
    from mitmproxy.net.http import http1
    from mitmproxy.proxy.layers import http as http_layers

    validate = http_layers.validate_request
    if not getattr(validate, "bottle_wrapped", False):
        def validate_request(mode: Any, request: http.Request, validate_inbound_headers: bool) -> str | None:
            error = validate(mode, request, validate_inbound_headers)
            # Only a refusal for the headers alone is ours to give: anything else (a CONNECT
            # inside a tunnel, which would re-point the tunnel at another host) stays refused.
            if error is not None and validate(mode, request, False) is None and _framing_refused(request):
                return None  # refused by requestheaders, with the rule named
            return error

        validate_request.bottle_wrapped = True  # type: ignore[attr-defined]
        http_layers.validate_request = validate_request

    body_size = http1.expected_http_body_size
    if not getattr(body_size, "bottle_wrapped", False):
        def expected_http_body_size(request: http.Request, response: http.Response | None = None) -> int | None:
            try:
                return body_size(request, response)
            except ValueError:
                if response is None and _framing_refused(request):
                    return 0  # read no body: the request is refused at its headers
                raise

        expected_http_body_size.bottle_wrapped = True  # type: ignore[attr-defined]
        http1.expected_http_body_size = expected_http_body_size


# The latest scrub of ``install_error_pages`` (one for the process: mitmproxy's layers are shared).
_error_page_scrub: list[Callable[[str], str]] = []
ERROR_PAGE_FALLBACK = "bot-bottle egress: the upstream's answer could not be relayed"


def install_error_pages(scrub: Callable[[str], str]) -> None:
    """Pass the message of mitmproxy's own error pages through ``scrub`` before the agent sees it.

    mitmproxy answers an upstream it cannot parse with its own 502 page quoting the parser's
    message, and for a malformed answer that quotes the upstream's status line or header line
    as sent (``Bad HTTP response line: b'HTTP/1.1 2x0 <token>'``): an upstream could hand the
    agent the injected credential that way. The HTTP/1, HTTP/2 and HTTP/3 layers each write the
    page with ``format_error`` (HTTP/1 through ``make_error_response``), by their own module's
    name: each module's is wrapped. A scrub that fails leaves a generic message. Idempotent:
    the latest ``scrub`` applies.
    """
    from mitmproxy.proxy.layers.http import _http1, _http2

    modules: list[Any] = [_http1, _http2]
    try:
        from mitmproxy.proxy.layers.http import _http3
    except ImportError:  # pragma: no cover - mitmproxy without HTTP/3 support
        pass
    else:
        modules.append(_http3)
    _error_page_scrub[:] = [scrub]
    for module in modules:
        original = module.format_error
        if getattr(original, "bottle_wrapped", False):
            continue

        def format_error(status_code: int, message: str, _original: Callable[[int, str], bytes] = original) -> bytes:
            try:
                message = _error_page_scrub[0](message)
            except Exception:  # noqa: BLE001 - an unscrubbed message must not reach the agent
                message = ERROR_PAGE_FALLBACK
            return _original(status_code, message)

        format_error.bottle_wrapped = True  # type: ignore[attr-defined]
        module.format_error = format_error


def install_body_limit() -> None:
    """Let mitmproxy's ``body_size_limit`` bound only what it buffers, never a streamed body.

    mitmproxy checks the limit twice: on the declared length at the head, before any addon hook
    (which would refuse a large upload or download this addon streams, and the git-gate's packs),
    and on the bytes it has buffered so far, as they arrive. The first check is turned off here
    (its size lookup answers "unknown"), so the limit only ever stops a body that is being held
    whole: a chunked upload the route cannot stream, a refused request's body. A body with a
    declared length larger than that is streamed by ``requestheaders`` (``DlpOutbound.stream_scan``).
    """
    from mitmproxy.proxy.layers import http as http_layers

    if getattr(http_layers.expected_http_body_size, "bottle_wrapped", False):
        return

    def expected_http_body_size(request: http.Request, response: http.Response | None = None) -> int | None:
        return None

    expected_http_body_size.bottle_wrapped = True  # type: ignore[attr-defined]
    http_layers.expected_http_body_size = expected_http_body_size  # type: ignore[assignment]


def _request_bytes(flow: http.HTTPFlow) -> int:
    stream: StreamScan | None = flow.metadata.get(STREAM)
    if stream is not None:
        return stream.received  # a streamed body is not kept
    return len(flow.request.raw_content or b"")


def _request_hold(flow: http.HTTPFlow) -> int:
    """How much of its body a request the proxy let through will hold at most: a body buffered
    (by mitmproxy) or held by its stream scanner, up to the held limit; nothing for a body that
    passes through unscanned or a request without one."""
    request = flow.request
    chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
    try:
        length = int(request.headers.get("content-length", "0") or 0)
    except ValueError:
        length = 0
    if not chunked and length <= 0:
        return 0
    plan: StreamScan | None = flow.metadata.get(STREAM)
    if plan is not None and not plan.holds:
        return 0
    return min(length, MAX_HELD_BODY) if not chunked else MAX_HELD_BODY


def _response_bytes(flow: http.HTTPFlow) -> int:
    answer: Answer | None = flow.metadata.get(ANSWER_STREAM)
    if answer is not None:
        return answer.received  # a streamed answer is not kept
    if ANSWER_BYTES in flow.metadata:
        return int(flow.metadata[ANSWER_BYTES])
    return len(flow.response.raw_content or b"") if flow.response is not None else 0


def _counted(flow: http.HTTPFlow, data: bytes) -> bytes:
    """A stream callable's relay of an answer nothing scans, counting its bytes for the log."""
    flow.metadata[ANSWER_BYTES] = flow.metadata.get(ANSWER_BYTES, 0) + len(data)
    return data


def _header_pairs(request: http.Request) -> list[tuple[str, str]]:
    # latin-1 maps every byte to one character: CR, LF and NUL survive, lengths are byte counts.
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.fields]


def _names_the_route(hello: Any, host: str) -> bool:
    """Whether a ClientHello names ``host`` in clear, so its tunnel may pass through untouched.
    A hello with no name (the front picks a default tenant; fine only for a route naming an
    address) or an encrypted inner hello (ECH: the real name is hidden from us) could reach
    another site behind the same front."""
    sni = hello.sni
    named = _same_host(sni, host) if sni is not None else ip_literal(host) is not None
    hidden = any(ext_type == ECH_EXTENSION for ext_type, _ in getattr(hello, "extensions", ()))
    return named and not hidden


def upstream_alpn_offers(client_offers: Sequence[bytes]) -> tuple[bytes, ...] | None:
    """The ALPN names an intercepted tunnel offers its upstream: the client's HTTP ones, in its
    order. None when the client offered none (the upstream is then offered none either). A
    client that offered only other names gets HTTP/1.1: an empty offer would have mitmproxy
    mirror the client's names after all."""
    if not client_offers:
        return None
    kept = tuple(name for name in client_offers if name in HTTP_ALPN_NAMES)
    return kept or (b"http/1.1",)


def _same_host(sni: str, host: str) -> bool:
    try:
        return normalise_host(sni) == host
    except HostError:
        return False


def _substitute_answer(response: http.Response) -> http.Response:
    """``response`` (set at ``responseheaders``) sent instead of the upstream's answer, whose body
    is read and discarded as it arrives: set as a stream, the substitute's own body goes at the
    end (unset, mitmproxy would buffer the upstream's body into it)."""
    body = response.raw_content or b""
    response.stream = lambda data: [] if data else _sendable(body)
    return response


def _refusal_response(verdict: Verdict, *, status: int = 403, scrub=lambda text: text) -> http.Response:
    headers = {"Content-Type": "text/plain; charset=utf-8", "X-Bot-Bottle-Rule": verdict.rule}
    if verdict.structural:
        # The framing of what follows on this connection cannot be trusted: do not reuse it.
        headers["Connection"] = "close"
    return http.Response.make(status, scrub(verdict.deny_message()), headers)


def _checks_server_fetch(verdict: Verdict) -> bool:
    """Does this allowed request's route refuse provider-side fetches (``server_fetch``)?"""
    return verdict.route is not None and verdict.internal_service is None and verdict.route.blocks_server_fetch


def _server_fetch_verdict(verdict: Verdict, found: server_fetch.Fetch) -> Verdict:
    """The refusal of a request that would make the provider's servers fetch: the rule, what and
    where (a JSON path or a header name, never a value the request carries)."""
    return Verdict(False, verdict.host, verdict.port, RULE_SERVER_FETCH, server_fetch.describe_refusal(found),
                   verdict.route, verdict.route_index, verdict.match_index, verdict.internal_service)


def _dlp_verdict(verdict: Verdict, rule: str, outcome: scanning.ScanOutcome, lead: str) -> Verdict:
    names = ", ".join(outcome.detectors) or "unnamed detector"
    reason = f"{lead} what DLP flags as {names}" + (f" ({outcome.reason})" if outcome.reason else "")
    return Verdict(False, verdict.host, verdict.port, rule, reason, verdict.route, verdict.route_index,
                   verdict.match_index, verdict.internal_service)


def _unchecked_upstream(exc: BaseException) -> str:
    return (f"bot-bottle egress: the upstream's address could not be checked ({type(exc).__name__}) "
            f"({RULE_INTERNAL_ERROR})")


def _internal_error(flow: http.HTTPFlow, exc: BaseException | None = None) -> Verdict:
    why = f" ({type(exc).__name__})" if exc is not None else ""
    return Verdict(False, flow.request.host, flow.request.port, RULE_INTERNAL_ERROR,
                   f"the proxy could not process this request{why}")


def _refusal(verdict: Verdict, rule: str, reason: str) -> Verdict:
    """``verdict`` turned into a refusal by ``rule`` of the request's body."""
    return Verdict(False, verdict.host, verdict.port, rule, reason, verdict.route, verdict.route_index,
                   verdict.match_index)


def _body_field_problem(verdict: Verdict, request: http.Request) -> tuple[str, str] | None:
    """``(rule, reason)`` when the request's body, decoded, carries a credential field on a
    credentialed route or a ``_method`` override the route's methods do not allow; else None."""
    content_type, body = request.headers.get("content-type", ""), _plain_body(request)
    for rule, check in ((RULE_CREDENTIAL_BODY, body_credential_problem), (RULE_MATCH, body_method_problem)):
        why = check(verdict, content_type, body)
        if why is not None:
            return rule, why
    return None


def _plain_body(request: http.Request) -> bytes:
    """The body as the upstream's framework reads it: its Content-Encoding undone when it can be."""
    raw = request.raw_content or b""
    if "content-encoding" not in request.headers:
        return raw
    try:
        return request.get_content(strict=True) or b""
    except (ValueError, LookupError):
        # mitmproxy reads one coding; codings stacked ("gzip, gzip", or two header lines) are
        # undone one by one, as an upstream that decompresses would (the _method and credential
        # field checks read this). A body that does not decode at all is refused by DLP.
        decoded = decode_body(raw, request.headers.get("content-encoding"), MAX_HELD_BODY)
        return raw if decoded.error is not None else decoded.data


def _drop_transport(client: Any, server: Any) -> None:
    """Close a just-opened upstream socket from its ``server_connected`` hook. Only the transport
    is closed (what the layer writes next is discarded, as on a closed socket, and the read side
    sees the end); cancelling the handler here would cancel the task that awaits this hook."""
    proxy = ctx.master.addons.get("proxyserver")
    handler = getattr(proxy, "connections", {}).get(client.id) if proxy is not None else None
    io = handler.transports.get(server) if handler is not None else None
    if io is not None and io.writer is not None:
        io.writer.close()


def _sendable(out: bytes) -> bytes | list[bytes]:
    """What a stream callable returns to mitmproxy: nothing to send is an empty list, never b"".
    mitmproxy sends each returned piece as one chunk of a chunked body, and an empty one is the
    chunk that ends it: holding a chunk back by returning b"" ended a chunked body early."""
    return out if out else []


def _close_connections(flow: http.HTTPFlow) -> None:
    """Close both connections of a live flow: the agent sees its answer cut short."""
    _close(flow, flow.server_conn, flow.client_conn)


def _close_server_connection(flow: http.HTTPFlow) -> None:
    """Close the upstream connection of a live flow: the agent's connection is closed as if the
    upstream had gone away."""
    _close(flow, flow.server_conn)


def _close(flow: http.HTTPFlow, *connections: Any) -> None:
    """Close ``connections`` of a live flow (mitmproxy has no public call for a flow in transit:
    ``flow.kill`` is only looked at between hooks) through the proxy server's handler for the
    agent's connection."""
    server = ctx.master.addons.get("proxyserver")
    handler = getattr(server, "connections", {}).get(flow.client_conn.id) if server is not None else None
    if handler is not None:
        for conn in connections:
            if conn in handler.transports:
                handler.close_connection(conn)


def _close_reason(text: str) -> str:
    data = text.encode("utf-8")[:WS_REASON_LIMIT]
    return data.decode("utf-8", "ignore")


def _close_websocket(flow: http.HTTPFlow, reason: str) -> None:
    """Close both sides of a live WebSocket with code 1008 and ``reason``.

    mitmproxy has no call for this: a close frame is handed to its WebSocket layer as if the
    upstream had sent it, and an empty message injected towards the agent makes the layer read
    it once the current hook returns (the agent gets that empty message, then the close). The
    layer then closes both sides with our code and reason, through TLS where there is TLS.
    Without the layer at hand, both connections are dropped.
    """
    from mitmproxy.proxy.layers import websocket as ws_layers
    from mitmproxy.websocket import WebSocketMessage
    from wsproto.frame_protocol import Opcode

    server = ctx.master.addons.get("proxyserver")
    handler = getattr(server, "connections", {}).get(flow.client_conn.id) if server is not None else None
    if handler is None:
        return
    layer = _find_websocket_layer(handler.layer, flow)
    if layer is None or not hasattr(layer, "client_ws"):
        for conn in (flow.server_conn, flow.client_conn):
            if conn in handler.transports:
                handler.close_connection(conn)
        return
    payload = WS_POLICY_VIOLATION.to_bytes(2, "big") + reason.encode("utf-8")
    layer.server_ws.receive_data(bytes([0x88, len(payload)]) + payload)  # FIN + close, unmasked
    server.inject_event(ws_layers.WebSocketMessageInjected(flow, WebSocketMessage(Opcode.TEXT, False, b"")))


def _find_websocket_layer(root: Any, flow: http.HTTPFlow) -> Any:
    from mitmproxy.proxy.layers.websocket import WebsocketLayer

    seen: set[int] = set()
    stack = [root]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, WebsocketLayer):
            if item.flow is flow:
                return item
            continue
        for name in ("layer", "child_layer"):
            stack.append(getattr(item, name, None))
        for name in ("_handle_event", "_handle"):
            # Mode layers hand on to their child through a bound method.
            stack.append(getattr(getattr(item, name, None), "__self__", None))
        for name in ("streams", "connections"):
            children = getattr(item, name, None)
            if isinstance(children, dict):
                stack.extend(children.values())
    return None


def _in_sent_encoding(request: http.Request, replacement: scanning.OutboundRequest) -> scanning.OutboundRequest | None:
    """``replacement`` with its body in the encoding and framing the agent sent ``request``'s in
    (``encode_like``): the redaction reads a compressed body decoded, and would send it decoded
    (its Content-Encoding dropped), or gzip found by its magic number as one new member with any
    bytes after the original's inside it. None when that cannot be done faithfully."""
    raw = request.raw_content or b""
    body = replacement.body
    if body is None or body == raw:
        return replacement
    sent = [(index, name, value) for index, (name, value) in enumerate(request.headers.items(multi=True))
            if name.lower() == "content-encoding"]
    coding = ", ".join(value for _, _, value in sent)
    declared = any(part.strip().lower() not in ("", "identity") for part in coding.split(","))
    headers = list(replacement.headers)
    if declared and not any(name.lower() == "content-encoding" for name, _ in headers):
        data = body
        for index, name, value in sent:  # back where the agent had them
            headers.insert(min(index, len(headers)), (name, value))
    elif not declared and raw[:2] == GZIP_MAGIC and body[:2] == GZIP_MAGIC:
        decoded = decode_body(body, None, MAX_HELD_BODY)
        if not decoded.sniffed:
            return replacement  # not gzip after all: redacted in place, as sent
        if decoded.truncated:
            return None
        data = decoded.data
    else:
        return replacement
    encoded = encode_like(raw, coding or None, data, MAX_HELD_BODY)
    if encoded is None:
        return None
    return scanning.OutboundRequest(
        method=replacement.method, scheme=replacement.scheme, host=replacement.host, port=replacement.port,
        path=replacement.path, headers=tuple(headers), body=encoded, route_index=replacement.route_index,
        dlp=replacement.dlp, internal_service=replacement.internal_service,
    )


def _apply_replacement(request: http.Request, replacement: scanning.OutboundRequest, *, body: bool = True) -> None:
    request.path = replacement.path
    request.headers = http.Headers(
        [(name.encode("utf-8", "surrogateescape"), value.encode("utf-8", "surrogateescape"))
         for name, value in replacement.headers]
    )
    if not body:
        return  # a streamed body: its bytes and Content-Length are the agent's, scanned as they pass
    request.raw_content = replacement.body
    if "content-length" in request.headers:
        request.headers["content-length"] = str(len(replacement.body))


addons = [EgressAddon()]
