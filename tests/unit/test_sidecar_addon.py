"""The mitmproxy adapter: facts from flows, 403s on denial, injection, the DLP seam, JSON log lines.

Runs where mitmproxy is importable (the sidecar image, or a developer venv); skips elsewhere.
The import-boundary test runs everywhere. Flows are mitmproxy's own test objects; no socket is
opened (name resolution in ``server_connect`` is replaced by a stand-in).
"""

from __future__ import annotations

import ast
import asyncio
import base64
import io
import json
import socket
import sys
import tempfile
import threading
import unittest
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from types import SimpleNamespace
from unittest import mock
from tests._requires import requires

SIDECAR = Path(__file__).resolve().parents[2] / "bot_bottle" / "sidecar"
REAL_TOKEN = "real-token-5f0c3a9e1d7b"
AGENT_TOKEN = "placeholder-from-the-agent"

try:
    from mitmproxy import http
    from mitmproxy.test import taddons, tflow, tutils

    from bot_bottle.sidecar.egress import addon as addon_mod
    from bot_bottle.sidecar.egress import scanning
except ImportError:  # pragma: no cover - depends on the environment
    addon_mod = None


@contextmanager
def addon_context(*addons, **kwargs):
    """mitmproxy's ``taddons.context``, with the event loop it makes (when none runs) closed
    after: mitmproxy never closes it, and each one left open holds three file descriptors (the
    unit suite reached select()'s limit of 1024 in a later test)."""
    ctx = taddons.context(*addons, **kwargs)
    try:
        with ctx as tctx:
            yield tctx
    finally:
        loop = ctx.master.event_loop
        if not loop.is_running() and not loop.is_closed():
            loop.close()


def sidecar_image_packages() -> set[str]:
    """Top-level module names of the packages pinned into the sidecar image (mitmproxy's closure)."""
    import tomllib

    versions = tomllib.loads((SIDECAR.parents[1] / "images" / "versions.toml").read_text())
    locks = versions["sidecar"]["lock"]
    names = {req.split("==", 1)[0] for req in locks}
    return {name.lower().replace("-", "_").split(".", 1)[0] for name in names}


class ImportBoundaryTest(unittest.TestCase):
    """The sidecar image ships bot_bottle/sidecar alone: nothing else of the package may be imported."""

    def test_sidecar_imports_only_stdlib_mitmproxy_and_itself(self) -> None:
        # Besides the standard library, only what the image installs (mitmproxy and its pinned
        # dependencies, e.g. brotli for decoding bodies) may be imported.
        allowed_roots = set(sys.stdlib_module_names) | sidecar_image_packages() | {"__future__"}
        for path in SIDECAR.rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    with self.subTest(file=path.name, module=name):
                        ok = name.split(".")[0] in allowed_roots or name.startswith("bot_bottle.sidecar")
                        self.assertTrue(ok, f"{path} imports {name}")

    def test_only_the_addon_imports_mitmproxy(self) -> None:
        # ca_maker.py: creates the bottle CA with mitmproxy's own code before the proxy starts;
        # egress/proxy.py: the proxy process, mitmproxy's core running the addon;
        # egress/ws_limit.py: the bound on a WebSocket message, set inside mitmproxy's WebSocket layer;
        # egress/ws_control.py: the agent's control frames, checked inside the same layer.
        inside = ("egress/addon.py", "egress/proxy.py", "egress/ws_limit.py", "egress/ws_control.py", "ca_maker.py")
        for path in SIDECAR.rglob("*.py"):
            if path.relative_to(SIDECAR).as_posix() in inside:
                continue
            self.assertNotIn("import mitmproxy", path.read_text(), path)
            self.assertNotIn("from mitmproxy", path.read_text(), path)


POLICY = {
    "version": 2,
    "log": 2,
    "internal_services": {"git-gate": 9418},
    "routes": [
        {"host": "allowed.example", "ports": [80, 443]},
        {"host": "bearer.example", "ports": [443], "auth": {"scheme": "bearer", "token_ref": "BEARER_REF"},
         "dlp": {"outbound_on_match": "block"}},
        {"host": "token.example", "ports": [443], "auth": {"scheme": "token", "token_ref": "TOKEN_REF"}},
        {"host": "basic.example", "ports": [443], "auth": {"scheme": "basic", "token_ref": "BASIC_REF"}},
        {"host": "header.example", "ports": [443], "auth": {"scheme": "header", "token_ref": "HEADER_REF",
                                                           "header": "x-custom-key"}},
        {"host": "plain.example", "ports": [80], "auth": {"scheme": "bearer", "token_ref": "BEARER_REF",
                                                         "plain_http": True}},
        {"host": "mixed.example", "ports": [80, 443], "auth": {"scheme": "bearer", "token_ref": "BEARER_REF"}},
        {"host": "files.example", "ports": [443], "tls_passthrough": True},
    ],
}
SECRETS = {
    "credentials": {"BEARER_REF": REAL_TOKEN, "TOKEN_REF": REAL_TOKEN, "BASIC_REF": f"user:{REAL_TOKEN}",
                    "HEADER_REF": REAL_TOKEN},
    "known_secrets": {"PROMPTED": "prompted-secret-value"},
}
AGENT_CREDENTIALS = {
    "Authorization": f"Bearer {AGENT_TOKEN}",
    "Proxy-Authorization": f"Basic {AGENT_TOKEN}",
    "X-Api-Key": AGENT_TOKEN,
    "Api-Key": AGENT_TOKEN,
    "X-Goog-Api-Key": AGENT_TOKEN,
    "X-Custom-Key": AGENT_TOKEN,
}


class RecordingScanner:
    """A stand-in DLP engine: records what it was shown, answers with a fixed outcome."""

    def __init__(self, outcome=None, error: Exception | None = None) -> None:
        self.outcome = outcome
        self.error = error
        self.seen: list = []

    def scan(self, request):
        self.seen.append(request)
        if self.error:
            raise self.error
        return self.outcome or scanning.ScanOutcome()


@requires(addon_mod is not None, "mitmproxy (the dev extra)")
class AddonCase(unittest.TestCase):
    def record_scan_sizes(self) -> list[int]:
        """The sizes of the bodies handed to the addon's scan worker from now on (it still runs them)."""
        sizes: list[int] = []
        run = self.addon.scan_worker.run

        async def recorded(size, scan, *args):
            sizes.append(size)
            return await run(size, scan, *args)

        self.addon.scan_worker.run = recorded
        return sizes

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.dir = Path(tmp.name)
        self.policy = self.dir / "policy.json"
        self.secrets = self.dir / "secrets.json"
        self.write_policy(POLICY)
        self.secrets.write_text(json.dumps(SECRETS))
        self.addon = addon_mod.EgressAddon()

    def write_policy(self, doc: dict) -> None:
        self.policy.write_text(json.dumps(doc))

    def options(self, **extra) -> dict:
        return {"bottle_policy": str(self.policy), "bottle_secrets": str(self.secrets),
                "bottle_log_dir": str(self.dir / "log"), **extra}

    def run_hooks(self, flow, *hooks: str, upstream: tuple[int, bytes] | None = (200, b"upstream answer"), **options):
        """Run hooks in order, as mitmproxy would; ``upstream`` answers an allowed request."""
        out = io.StringIO()
        with addon_context(self.addon) as tctx, redirect_stdout(out):
            tctx.configure(self.addon, **self.options(**options))
            for hook in hooks:
                if hook == "upstream":
                    if flow.response is None and upstream is not None:
                        flow.response = tutils.tresp(status_code=upstream[0], content=upstream[1])
                    continue
                result = getattr(self.addon, hook)(flow)
                if asyncio.iscoroutine(result):
                    asyncio.run(result)
            self.addon.done()
        lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
        return flow, lines

    def exchange(self, flow, **kw):
        return self.run_hooks(flow, "requestheaders", "request", "upstream", "response", **kw)

    def request_flow(self, host: str, *, port: int = 80, path: str = "/", scheme: str = "http", method: str = "GET",
                     headers: dict | list | None = None, content: bytes = b"", authority: str = ""):
        flow = tflow.tflow()
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers if headers is not None else [("Host", host)])
        flow.request = tutils.treq(
            host=host, port=port, path=path.encode(), scheme=scheme.encode(), method=method.encode(),
            authority=authority.encode(), content=content,
            headers=http.Headers([(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs]),
        )
        return flow

    def connect_flow(self, host: str, port: int = 443):
        flow = tflow.tflow()
        flow.request = tutils.treq(method=b"CONNECT", host=host, port=port, path=b"", scheme=b"",
                                   authority=f"{host}:{port}".encode(), headers=http.Headers(), content=b"")
        flow.client_conn.timestamp_tls_setup = None  # the agent's CONNECT reaches the proxy in plain HTTP/1
        return flow

    def file_lines(self) -> list[dict]:
        path = self.dir / "log" / addon_mod.LOG_FILE_NAME
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class DecisionsTest(AddonCase):
    def test_allowed_request_is_forwarded_untouched_and_logged_when_done(self) -> None:
        flow, lines = self.run_hooks(self.request_flow("allowed.example"), "requestheaders", "request")
        self.assertIsNone(flow.response)
        self.assertEqual(lines, [])  # an allowed request is logged once it finishes
        self.assertEqual(flow.metadata[addon_mod.VERDICT].rule, "route")
        self.assertEqual(flow.request.host, "allowed.example")
        flow, lines = self.exchange(self.request_flow("allowed.example", method="POST", content=b"12345"))
        (line,) = lines
        self.assertEqual((line["decision"], line["host"], line["status"]), ("allow", "allowed.example", 200))
        self.assertEqual((line["request_bytes"], line["response_bytes"]), (5, len(b"upstream answer")))
        self.assertIsInstance(line["duration_ms"], float)
        self.assertEqual(self.file_lines()[-1]["host"], "allowed.example")

    def test_denied_request_gets_403_naming_host_and_rule_and_is_logged_once(self) -> None:
        flow, lines = self.exchange(self.request_flow("evil.example"))
        self.assertEqual(flow.response.status_code, 403)
        body = flow.response.get_text()
        self.assertIn("evil.example", body)
        self.assertIn("default-deny", body)
        self.assertEqual(flow.response.headers["X-Bot-Bottle-Rule"], "default-deny")
        self.assertEqual(len(lines), 1)
        self.assertEqual((lines[0]["decision"], lines[0]["rule"], lines[0]["status"]), ("deny", "default-deny", 403))

    def test_connect_denied_port_checked_and_allowed(self) -> None:
        flow, _ = self.run_hooks(self.connect_flow("evil.example"), "http_connect")
        self.assertEqual(flow.response.status_code, 403)
        flow, lines = self.run_hooks(self.connect_flow("allowed.example", 8443), "http_connect")
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "port")
        self.assertTrue(lines[0]["connect"])
        flow, lines = self.run_hooks(self.connect_flow("allowed.example", 443), "http_connect")
        self.assertIsNone(flow.response)
        self.assertEqual((lines[0]["decision"], lines[0]["tls"]), ("allow", "intercept"))
        _, lines = self.run_hooks(self.connect_flow("files.example", 443), "http_connect")
        self.assertEqual(lines[0]["tls"], "passthrough")

    def test_a_connect_through_a_tunnel_is_refused(self) -> None:
        # Over TLS or HTTP/2 it came inside a tunnel the proxy opened: it would re-point that
        # tunnel at another host, under the first one's TLS name.
        tls = self.connect_flow("api.example")
        tls.client_conn.timestamp_tls_setup = 1.0
        h2 = self.connect_flow("api.example")
        h2.request.http_version = "HTTP/2.0"
        for flow in (tls, h2):
            flow, lines = self.run_hooks(flow, "http_connect")
            self.assertEqual(flow.response.status_code, 403)
            self.assertEqual(lines[0]["rule"], "connect-in-tunnel")

    def test_an_unregistered_method_is_refused_and_never_logged(self) -> None:
        method = "Kq7vZp3XwR9mT2nL8sYd"
        flow, lines = self.exchange(self.request_flow("allowed.example", method=method))
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual((lines[0]["rule"], lines[0]["method"]), ("method", "(unregistered)"))
        self.assertNotIn(method.upper(), json.dumps(self.file_lines()).upper())

    def test_spoofed_host_header_refused(self) -> None:
        flow, lines = self.exchange(self.request_flow("allowed.example", headers={"Host": "evil.example"}))
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "host-header-mismatch")

    def test_absolute_form_inside_a_tunnel_must_name_the_target(self) -> None:
        flow, lines = self.exchange(self.request_flow("allowed.example", authority="evil.example"))
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "absolute-form-mismatch")

    def test_http2_authority_is_checked_like_a_host_header(self) -> None:
        flow = self.request_flow("allowed.example", port=443, scheme="https", headers=[], authority="evil.example")
        flow.request.http_version = "HTTP/2.0"
        flow, lines = self.exchange(flow)
        self.assertEqual(lines[0]["rule"], "host-header-mismatch")

    def test_structural_refusals_close_the_connection(self) -> None:
        for headers, rule in (
            ([("Host", "allowed.example"), ("Content-Length", "3"), ("Transfer-Encoding", "chunked")], "smuggling-cl-te"),
            ([("Host", "allowed.example"), ("X-A", "a\r\n b")], "obs-fold"),
            ([("Host", "allowed.example"), ("X-A", "a\x00b")], "header-injection"),
            ([("Host", "allowed.example"), ("X-A", "a" * 17000)], "header-too-large"),
            ([("Host", "allowed.example"), ("Transfer-Encoding", "gzip, chunked")], "smuggling-transfer-encoding"),
        ):
            with self.subTest(rule=rule):
                flow, lines = self.exchange(self.request_flow("allowed.example", headers=headers))
                self.assertEqual(flow.response.status_code, 403)
                self.assertEqual(flow.response.headers["X-Bot-Bottle-Rule"], rule)
                self.assertEqual(flow.response.headers["Connection"], "close")
                self.assertIn(rule, flow.response.get_text())
                self.assertEqual(lines[0]["rule"], rule)

    def test_git_push_refused(self) -> None:
        flow, lines = self.exchange(self.request_flow("allowed.example", method="POST", path="/o/r.git/git-receive-pack"))
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "git-push")

    def test_raw_tcp_in_a_tunnel_is_dropped(self) -> None:
        flow = tflow.ttcpflow()
        _, lines = self.run_hooks(flow, "tcp_message")
        self.assertEqual(flow.messages[-1].content, b"")
        self.assertFalse(flow.live)
        self.assertEqual(lines[0]["rule"], "raw-tcp")

    def test_upstream_error_is_logged_as_allowed_with_the_error(self) -> None:
        flow = self.request_flow("allowed.example")
        flow.error = None
        self.run_hooks(flow, "requestheaders", "request")
        from mitmproxy import flow as flow_mod

        flow.error = flow_mod.Error("Connection refused")
        _, lines = self.run_hooks(flow, "error")
        self.assertEqual((lines[0]["decision"], lines[0]["error"]), ("allow", "Connection refused"))


class LoggingTest(AddonCase):
    def test_log_line_has_no_header_values_query_or_secret(self) -> None:
        flow = self.request_flow("evil.example", path="/p/prompted-secret-value?token=supersecret",
                                 headers={"Host": "evil.example", "Authorization": "Bearer supersecret"})
        flow, lines = self.exchange(flow)
        text = json.dumps(lines) + (self.dir / "log" / addon_mod.LOG_FILE_NAME).read_text()
        self.assertNotIn("supersecret", text)
        self.assertNotIn("prompted-secret-value", text)  # a known secret in the path is scrubbed
        self.assertEqual(lines[0]["path"], "/p/[redacted]")
        self.assertNotIn("prompted-secret-value", flow.response.get_text())

    def test_log_levels(self) -> None:
        for level, allow_lines, deny_lines in ((0, 0, 0), (1, 0, 1), (2, 1, 1)):
            with self.subTest(level=level):
                self.write_policy({**POLICY, "log": level})
                _, allowed = self.exchange(self.request_flow("allowed.example"))
                _, denied = self.exchange(self.request_flow("evil.example"))
                self.assertEqual((len(allowed), len(denied)), (allow_lines, deny_lines))

    def test_stdout_can_be_switched_off(self) -> None:
        _, lines = self.exchange(self.request_flow("evil.example"), bottle_log_stdout=False)
        self.assertEqual(lines, [])
        self.assertEqual(self.file_lines()[-1]["host"], "evil.example")


class StartTest(AddonCase):
    def test_broken_policy_stops_the_proxy(self) -> None:
        from mitmproxy import exceptions

        self.policy.write_text('{"routes": [{"hots": "x"}]}')
        with addon_context(self.addon) as tctx:
            with self.assertRaisesRegex(exceptions.OptionsError, "unknown key 'hots'"):
                tctx.configure(self.addon, bottle_policy=str(self.policy))

    def test_missing_credential_stops_the_proxy_naming_the_token_ref_only(self) -> None:
        from mitmproxy import exceptions

        self.secrets.write_text(json.dumps({"credentials": {"BEARER_REF": REAL_TOKEN}}))
        with addon_context(self.addon) as tctx:
            with self.assertRaises(exceptions.OptionsError) as caught:
                tctx.configure(self.addon, **self.options())
        message = str(caught.exception)
        for ref in ("TOKEN_REF", "BASIC_REF", "HEADER_REF"):
            self.assertIn(ref, message)
        self.assertNotIn(REAL_TOKEN, message)

    def test_no_secrets_option_with_auth_routes_fails(self) -> None:
        from mitmproxy import exceptions

        with addon_context(self.addon) as tctx:
            with self.assertRaisesRegex(exceptions.OptionsError, "BEARER_REF"):
                tctx.configure(self.addon, bottle_policy=str(self.policy))

    def test_crash_in_decide_denies(self) -> None:
        with mock.patch.object(addon_mod, "decide", side_effect=RuntimeError("boom")):
            flow, lines = self.exchange(self.request_flow("allowed.example"))
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "internal-error")

    def test_a_failing_hook_refuses(self) -> None:
        with mock.patch.object(addon_mod, "_header_pairs", side_effect=RuntimeError("boom")):
            flow, _ = self.exchange(self.request_flow("allowed.example"))
            self.assertEqual(flow.response.status_code, 403)
            self.assertIn("internal-error", flow.response.get_text())
            flow, _ = self.run_hooks(self.connect_flow("allowed.example"), "http_connect")
            self.assertEqual(flow.response.status_code, 403)

    def test_no_policy_option_denies_everything(self) -> None:
        flow = self.request_flow("allowed.example")
        with addon_context(self.addon), redirect_stdout(io.StringIO()):
            self.addon.requestheaders(flow)
        self.assertEqual(flow.response.status_code, 403)

    def test_unjudged_request_is_refused(self) -> None:
        flow, _ = self.run_hooks(self.request_flow("allowed.example"), "request")
        self.assertEqual(flow.response.status_code, 403)
        self.assertIn("internal-error", flow.response.get_text())


class InjectionTest(AddonCase):
    def injected(self, host: str):
        flow = self.request_flow(host, port=443, scheme="https", headers={"Host": host, **AGENT_CREDENTIALS})
        flow, lines = self.exchange(flow)
        return flow, lines

    def assertNoAgentCredential(self, flow) -> None:
        for name in ("Authorization", "Proxy-Authorization", "X-Api-Key", "Api-Key", "X-Goog-Api-Key"):
            for value in flow.request.headers.get_all(name):
                self.assertNotIn(AGENT_TOKEN, value, name)
        self.assertNotIn("Proxy-Authorization", flow.request.headers)

    def test_each_scheme(self) -> None:
        for host, header, want in (
            ("bearer.example", "Authorization", f"Bearer {REAL_TOKEN}"),
            ("token.example", "Authorization", f"token {REAL_TOKEN}"),
            ("basic.example", "Authorization", "Basic " + base64.b64encode(f"user:{REAL_TOKEN}".encode()).decode()),
            ("header.example", "X-Custom-Key", REAL_TOKEN),
        ):
            with self.subTest(host=host):
                flow, lines = self.injected(host)
                self.assertEqual(flow.request.headers.get_all(header), [want])
                self.assertNoAgentCredential(flow)
                self.assertEqual(lines[0]["decision"], "allow")
                self.assertNotIn(REAL_TOKEN, json.dumps(lines))

    def test_the_real_token_echoed_in_an_answers_headers_is_masked(self) -> None:
        # A debug endpoint copying the request's Authorization back hands the agent the token.
        flow = self.request_flow("bearer.example", port=443, scheme="https",
                                 headers={"Host": "bearer.example", **AGENT_CREDENTIALS})
        flow, _ = self.run_hooks(flow, "requestheaders", "request")
        flow.response = tutils.tresp(status_code=200, content=b"ok", headers=http.Headers([
            (b"X-Echo-Authorization", f"Bearer {REAL_TOKEN}".encode()), (b"Content-Type", b"text/plain"),
            (b"Set-Cookie", b"a=1"), (b"Set-Cookie", f"b={REAL_TOKEN}".encode())]))
        flow, lines = self.run_hooks(flow, "responseheaders", "response", upstream=None)
        sent = [(k.decode(), v.decode()) for k, v in flow.response.headers.fields]
        self.assertFalse([v for _, v in sent if REAL_TOKEN in v], sent)
        self.assertEqual(flow.response.headers["content-type"], "text/plain")
        self.assertEqual(flow.response.headers.get_all("set-cookie")[0], "a=1")
        self.assertEqual(len(flow.response.headers.get_all("set-cookie")), 2)
        (line,) = lines
        self.assertEqual(line.get("dlp_action"), "redact")
        self.assertNotIn(REAL_TOKEN, json.dumps(lines))

    def test_header_scheme_removes_authorization_too(self) -> None:
        flow, _ = self.injected("header.example")
        self.assertNotIn("Authorization", flow.request.headers)
        self.assertNotIn("X-Api-Key", flow.request.headers)
        self.assertEqual(flow.request.headers.get_all("X-Custom-Key"), [REAL_TOKEN])

    def test_credential_headers_in_other_spellings_are_stripped_too(self) -> None:
        spellings = {"X_Api_Key": AGENT_TOKEN, "PRIVATE-TOKEN": AGENT_TOKEN, "x-auth-token": AGENT_TOKEN,
                     "Job_Token": AGENT_TOKEN, "X-Custom_Key": AGENT_TOKEN}
        for host in ("bearer.example", "header.example"):
            with self.subTest(host=host):
                flow = self.request_flow(host, port=443, scheme="https", headers={"Host": host, **spellings})
                flow, _ = self.exchange(flow)
                sent = [(k.decode(), v.decode()) for k, v in flow.request.headers.fields]
                self.assertEqual([name for name, value in sent if AGENT_TOKEN in value],
                                 ["X-Custom_Key"] if host == "bearer.example" else [])

    def test_a_routes_own_header_is_only_stripped_on_that_route(self) -> None:
        flow, _ = self.injected("bearer.example")
        self.assertEqual(flow.request.headers["X-Custom-Key"], AGENT_TOKEN)

    def test_routes_without_auth_keep_the_agents_authorization(self) -> None:
        flow = self.request_flow("allowed.example", headers={"Host": "allowed.example", **AGENT_CREDENTIALS})
        flow, _ = self.exchange(flow)
        self.assertEqual(flow.request.headers["Authorization"], f"Bearer {AGENT_TOKEN}")
        self.assertNotIn("Proxy-Authorization", flow.request.headers)  # hop-by-hop: never forwarded

    def test_plain_http_to_an_auth_route_is_refused_without_injecting(self) -> None:
        flow, lines = self.exchange(self.request_flow("mixed.example", headers={"Host": "mixed.example"}))
        self.assertEqual(flow.response.status_code, 403)
        self.assertIn("only sent over TLS", flow.response.get_text())
        self.assertEqual(lines[0]["rule"], "credential-needs-tls")
        self.assertNotIn("Authorization", flow.request.headers)

    def test_plain_http_when_the_route_lists_port_80_on_purpose(self) -> None:
        flow, _ = self.exchange(self.request_flow("plain.example", headers={"Host": "plain.example"}))
        self.assertIsNone(flow.metadata[addon_mod.VERDICT].internal_port)
        self.assertEqual(flow.request.headers["Authorization"], f"Bearer {REAL_TOKEN}")

    def test_the_token_is_not_in_refusals(self) -> None:
        flow = self.request_flow("bearer.example", port=443, scheme="https", path="/x?k=" + REAL_TOKEN,
                                 headers={"Host": "evil.example"})
        flow, lines = self.exchange(flow)
        self.assertNotIn(REAL_TOKEN, flow.response.get_text() + json.dumps(lines))


class InternalServiceTest(AddonCase):
    def test_listed_service_is_retargeted_to_loopback(self) -> None:
        flow = self.request_flow("git-gate.bottle.internal", path="/r.git/info/refs",
                                 headers={"Host": "git-gate.bottle.internal"})
        flow, lines = self.exchange(flow)
        self.assertEqual((flow.request.scheme, flow.request.host, flow.request.port), ("http", "127.0.0.1", 9418))
        self.assertEqual(flow.request.headers["Host"], "git-gate.bottle.internal")
        self.assertEqual((lines[0]["rule"], lines[0]["route"]), ("internal-service", "internal_services.git-gate"))
        self.assertEqual(lines[0]["host"], "git-gate.bottle.internal")

    def test_unlisted_service_is_refused(self) -> None:
        flow, lines = self.exchange(self.request_flow("supervise.bottle.internal",
                                                      headers={"Host": "supervise.bottle.internal"}))
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "internal-name")
        self.assertEqual(flow.request.host, "supervise.bottle.internal")


class ScanSeamTest(AddonCase):
    def flow(self, **kw):
        return self.request_flow("bearer.example", port=443, scheme="https", method="POST", path="/v1/x?q=1",
                                 headers={"Host": "bearer.example", "Authorization": f"Bearer {AGENT_TOKEN}"},
                                 content=b'{"k": "value"}', **kw)

    def test_the_dlp_engine_is_the_default_scanner_and_lets_clean_requests_through(self) -> None:
        from bot_bottle.sidecar.egress import dlp_adapter

        flow, _ = self.exchange(self.flow())
        self.assertIsInstance(self.addon.scanner, dlp_adapter.DlpOutbound)
        self.assertIsInstance(self.addon.inbound, dlp_adapter.DlpInbound)
        self.assertIsNone(flow.metadata[addon_mod.VERDICT].internal_port)
        self.assertEqual(flow.response.status_code, 200)

    def test_scanner_sees_what_the_agent_sent_before_injection(self) -> None:
        scanner = RecordingScanner()
        self.addon.scanner = scanner
        self.exchange(self.flow())
        (seen,) = scanner.seen
        self.assertEqual((seen.method, seen.host, seen.port, seen.path), ("POST", "bearer.example", 443, "/v1/x?q=1"))
        self.assertEqual(seen.body, b'{"k": "value"}')
        self.assertIn(("Authorization", f"Bearer {AGENT_TOKEN}"), seen.headers)
        self.assertNotIn(REAL_TOKEN, repr(seen))
        self.assertEqual(seen.dlp, {"outbound_on_match": "block"})
        self.assertEqual(seen.route_index, 1)

    def test_block_answers_403_naming_detectors_and_logs_at_level_1(self) -> None:
        self.write_policy({**POLICY, "log": 1})
        self.addon.scanner = RecordingScanner(scanning.ScanOutcome("block", ("aws-access-key",), "in the body"))
        flow, lines = self.exchange(self.flow())
        self.assertEqual(flow.response.status_code, 403)
        self.assertIn("aws-access-key", flow.response.get_text())
        self.assertEqual((lines[0]["rule"], lines[0]["detectors"], lines[0]["dlp_action"]),
                         ("dlp", ["aws-access-key"], "block"))
        self.assertEqual(len(lines), 1)

    def test_redact_forwards_the_replacement_and_logs_the_event(self) -> None:
        self.write_policy({**POLICY, "log": 1})

        class Redactor(RecordingScanner):
            def scan(self, request):
                super().scan(request)
                replacement = scanning.OutboundRequest(
                    method=request.method, scheme=request.scheme, host=request.host, port=request.port,
                    path="/v1/[redacted]", headers=request.headers + (("X-Redacted", "1"),), body=b"{}")
                return scanning.ScanOutcome("redact", ("github-token",), replacement=replacement)

        self.addon.scanner = Redactor()
        flow, lines = self.exchange(self.flow())
        self.assertEqual(flow.request.path, "/v1/[redacted]")
        self.assertEqual(flow.request.raw_content, b"{}")
        self.assertEqual(flow.request.headers["X-Redacted"], "1")
        self.assertEqual(flow.request.headers["Authorization"], f"Bearer {REAL_TOKEN}")  # injected after
        self.assertEqual((lines[0]["decision"], lines[0]["dlp_action"], lines[0]["path"]),
                         ("allow", "redact", "/v1/[redacted]"))

    def test_hold_is_refused_unless_the_operator_approves(self) -> None:
        self.addon.scanner = RecordingScanner(scanning.ScanOutcome("hold", ("entropy",)))
        flow, lines = self.exchange(self.flow())
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "dlp-hold")

        asked = []

        async def approve(request, outcome):
            asked.append((request.host, outcome.detectors))
            return True

        self.addon = addon_mod.EgressAddon()
        self.addon.scanner = RecordingScanner(scanning.ScanOutcome("hold", ("entropy",)))
        self.addon.on_hold = approve
        flow, lines = self.exchange(self.flow())
        self.assertEqual(flow.response.status_code, 200)
        self.assertEqual(asked, [("bearer.example", ("entropy",))])
        self.assertEqual(lines[0]["dlp_action"], "hold")

    def test_a_failing_scanner_fails_closed(self) -> None:
        self.addon.scanner = RecordingScanner(error=RuntimeError("engine bug"))
        flow, lines = self.exchange(self.flow())
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "internal-error")

    def test_internal_services_are_shown_to_the_scanner_with_their_name(self) -> None:
        scanner = RecordingScanner()
        self.addon.scanner = scanner
        self.exchange(self.request_flow("git-gate.bottle.internal", headers={"Host": "git-gate.bottle.internal"}))
        self.assertEqual(scanner.seen[0].internal_service, "git-gate")

    def test_inbound_block_and_redact(self) -> None:
        class Inbound:
            def __init__(self, outcome):
                self.outcome = outcome

            def scan(self, response):
                return self.outcome

        self.addon.inbound = Inbound(scanning.InboundOutcome("block", ("prompt-injection",)))
        flow, lines = self.exchange(self.request_flow("allowed.example"))
        self.assertEqual(flow.response.status_code, 502)
        self.assertEqual((lines[0]["rule"], lines[0]["detectors"]), ("dlp-inbound", ["prompt-injection"]))

        self.addon = addon_mod.EgressAddon()
        self.addon.inbound = Inbound(scanning.InboundOutcome("redact", ("own-secret",), body=b"[redacted]"))
        flow, lines = self.exchange(self.request_flow("allowed.example"))
        self.assertEqual(flow.response.raw_content, b"[redacted]")
        self.assertEqual((lines[0]["decision"], lines[0]["dlp_action"]), ("allow", "redact"))

    def test_large_scans_leave_the_event_loop_free_and_small_ones_do_not_queue_behind_them(self) -> None:
        # A held body's scan took seconds on the loop every connection is relayed on. A large
        # scan below waits for a coroutine on that loop: run on the loop it could never see it.
        # A small request's scan, meanwhile, must not wait in the worker's queue behind it.
        from bot_bottle.sidecar.egress.scan_worker import INLINE_LIMIT

        class Waiting:
            def __init__(self, outcome):
                self.outcome = outcome
                self.loop_ran = threading.Event()
                self.seen: list[tuple[int, str, bool]] = []

            def scan(self, request):
                size = len(request.body)
                free = self.loop_ran.wait(5) if size > INLINE_LIMIT else True
                self.seen.append((size, threading.current_thread().name, free))
                return self.outcome

        outbound, inbound = Waiting(scanning.ScanOutcome()), Waiting(scanning.InboundOutcome())
        self.addon.scanner, self.addon.inbound = outbound, inbound
        big = self.flow()
        big.request.content = b"x" * (INLINE_LIMIT + 1)
        big, _ = self.run_hooks(big, "requestheaders")
        small, _ = self.run_hooks(self.flow(), "requestheaders")

        async def large_while_the_loop_works(hook, flow, waiting, then=None) -> None:
            task = asyncio.create_task(getattr(self.addon, hook)(flow))
            await asyncio.sleep(0.05)
            if then is not None:
                await getattr(self.addon, hook)(then)  # done before the large scan is
            waiting.loop_ran.set()
            await task

        with addon_context(self.addon) as tctx, redirect_stdout(io.StringIO()):
            tctx.configure(self.addon, **self.options())
            asyncio.run(large_while_the_loop_works("request", big, outbound, then=small))
            big.response = tutils.tresp(status_code=200, content=b"a" * (INLINE_LIMIT + 1))
            asyncio.run(large_while_the_loop_works("response", big, inbound))
            self.addon.done()
        (small_seen, big_seen) = outbound.seen
        self.assertEqual((small_seen[0], small_seen[1]), (len(b'{"k": "value"}'), "MainThread"))
        self.assertTrue(big_seen[2], "the loop was not free during the large scan")
        self.assertNotEqual(big_seen[1], "MainThread")
        ((size, thread, free),) = inbound.seen
        self.assertTrue(free)
        self.assertNotEqual(thread, "MainThread")
        self.assertIsNone(small.response)  # both forwarded
        self.assertEqual(big.response.status_code, 200)

    def test_outcome_validation(self) -> None:
        with self.assertRaises(ValueError):
            scanning.ScanOutcome("maybe")
        with self.assertRaises(ValueError):
            scanning.InboundOutcome("hold")


class TlsTest(AddonCase):
    def hello(self, host: str, port: int, sni: str | None, extensions: list | None = None):
        server = SimpleNamespace(address=(host, port), sni=None)
        hello = SimpleNamespace(sni=sni, extensions=extensions if extensions is not None else [(0, b"")])
        return SimpleNamespace(context=SimpleNamespace(server=server), client_hello=hello, ignore_connection=False)

    def call(self, data):
        with addon_context(self.addon) as tctx:
            tctx.configure(self.addon, **self.options())
            self.addon.tls_clienthello(data)
        return data

    def test_passthrough_route_is_not_intercepted(self) -> None:
        for sni in ("files.example", "FILES.example."):
            with self.subTest(sni=sni):
                data = self.call(self.hello("files.example", 443, sni))
                self.assertTrue(data.ignore_connection)

    def test_passthrough_to_an_address_needs_no_name(self) -> None:
        self.write_policy({**POLICY, "routes": [*POLICY["routes"],
                                                {"host": "192.0.2.10", "ports": [443], "tls_passthrough": True}]})
        self.assertTrue(self.call(self.hello("192.0.2.10", 443, None)).ignore_connection)

    def test_passthrough_without_a_name_or_with_an_encrypted_hello_is_intercepted(self) -> None:
        # No SNI: a shared front would pick its default tenant. ECH: the real name is hidden.
        for data in (self.hello("files.example", 443, None),
                     self.hello("files.example", 443, "files.example", [(0, b""), (0xFE0D, b"\x00")])):
            with self.subTest(sni=data.client_hello.sni):
                self.call(data)
                self.assertFalse(data.ignore_connection)
                self.assertEqual(data.context.server.sni, "files.example")

    def test_intercepted_route_pins_the_upstream_name(self) -> None:
        data = self.call(self.hello("allowed.example", 443, "evil.example"))
        self.assertFalse(data.ignore_connection)
        self.assertEqual(data.context.server.sni, "allowed.example")

    def test_an_intercepted_route_naming_an_address_pins_that_address_not_the_clients_sni(self) -> None:
        # Left unset, mitmproxy would send the client's SNI to the address and check the
        # certificate against it: any site behind a shared front (domain fronting).
        self.write_policy({**POLICY, "routes": [*POLICY["routes"], {"host": "192.0.2.10", "ports": [443]},
                                                {"host": "2001:db8::5", "ports": [443]}]})
        for address in ("192.0.2.10", "2001:db8::5"):
            for sni in ("evil.example", None):
                with self.subTest(address=address, sni=sni):
                    data = self.call(self.hello(address, 443, sni))
                    self.assertFalse(data.ignore_connection)
                    self.assertEqual(data.context.server.sni, address)

    def test_a_check_that_fails_intercepts_and_still_pins_the_name(self) -> None:
        # mitmproxy only logs a hook that raises, and goes on with the client's SNI and ALPN names.
        for broken in ("_same_host", "upstream_alpn_offers"):
            with self.subTest(broken=broken), mock.patch.object(addon_mod, broken, side_effect=RuntimeError("bug")):
                data = self.hello("files.example", 443, "evil.example")
                data.client_hello.alpn_protocols = [b"leak-this", b"http/1.1"]
                data.context.server.alpn_offers = None
                self.call(data)
                self.assertFalse(data.ignore_connection)
                self.assertEqual(data.context.server.sni, "files.example")
                self.assertIn(data.context.server.alpn_offers, (None, (b"http/1.1",)))

    def test_passthrough_with_a_different_sni_is_intercepted_instead(self) -> None:
        data = self.call(self.hello("files.example", 443, "evil.example"))
        self.assertFalse(data.ignore_connection)
        self.assertEqual(data.context.server.sni, "files.example")

    def test_refused_tunnels_are_left_alone(self) -> None:
        data = self.call(self.hello("evil.example", 443, "evil.example"))
        self.assertFalse(data.ignore_connection)
        self.assertIsNone(data.context.server.sni)


class BodyMethodTest(AddonCase):
    def test_a_form_asking_for_a_method_the_route_does_not_allow_is_refused(self) -> None:
        self.write_policy({**POLICY, "routes": [*POLICY["routes"], {
            "host": "rails.example", "ports": [80], "matches": [{"methods": ["GET", "POST"]}]}]})
        headers = [("Host", "rails.example"), ("Content-Type", "application/x-www-form-urlencoded")]
        flow, lines = self.run_hooks(self.request_flow("rails.example", method="POST", headers=headers,
                                                       content=b"id=4&_method=DELETE"), "requestheaders", "request")
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual((lines[0]["decision"], lines[0]["rule"]), ("deny", "match"))
        flow, _ = self.run_hooks(self.request_flow("rails.example", method="POST", headers=headers,
                                                   content=b"id=4"), "requestheaders", "request")
        self.assertIsNone(flow.response)


class AcceptEncodingTest(AddonCase):
    def sent(self, host: str, asked: list[str]) -> list[str]:
        headers = [("Host", host), *(("Accept-Encoding", value) for value in asked)]
        flow, _ = self.exchange(self.request_flow(host, headers=headers))
        return flow.request.headers.get_all("accept-encoding")

    def test_answers_are_asked_for_only_in_encodings_read_as_they_stream(self) -> None:
        self.assertEqual(self.sent("allowed.example", ["gzip, deflate, br, zstd"]), ["gzip, deflate"])
        self.assertEqual(self.sent("allowed.example", ["br", "gzip;q=0.5"]), ["gzip;q=0.5"])
        self.assertEqual(self.sent("allowed.example", ["br"]), ["identity"])
        self.assertEqual(self.sent("allowed.example", ["gzip"]), ["gzip"])
        self.assertEqual(self.sent("allowed.example", []), [])

    def test_the_bundles_own_services_get_what_was_asked(self) -> None:
        self.assertEqual(self.sent("git-gate.bottle.internal", ["gzip, br"]), ["gzip, br"])


class ServerConnectTest(AddonCase):
    def connect(self, host: str, port: int, resolved: list[str] | None = None) -> str | None:
        data = SimpleNamespace(server=SimpleNamespace(address=(host, port), error=None))

        async def fake_getaddrinfo(self_loop, host, port, **kw):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in resolved or []]

        with addon_context(self.addon) as tctx:
            tctx.configure(self.addon, **self.options())
            with mock.patch.object(asyncio.BaseEventLoop, "getaddrinfo", fake_getaddrinfo):
                asyncio.run(self.addon.server_connect(data))
        return data.server.error

    def test_loopback_targets_are_refused(self) -> None:
        for host in ("127.0.0.1", "localhost", "::1", "0.0.0.0"):
            with self.subTest(host=host):
                self.assertIn("sidecar itself", self.connect(host, 8080))

    def test_names_resolving_to_loopback_are_refused(self) -> None:
        self.assertIn("resolves to the sidecar", self.connect("rebind.example", 443, ["10.0.0.5", "127.0.0.1"]))
        self.assertIsNone(self.connect("fine.example", 443, ["10.0.0.5"]))

    def test_internal_service_ports_are_allowed(self) -> None:
        self.assertIsNone(self.connect("127.0.0.1", 9418))
        self.assertIsNotNone(self.connect("127.0.0.1", 9419))

    def test_names_resolving_to_metadata_or_link_local_addresses_are_refused(self) -> None:
        for answer in ("169.254.169.254", "169.254.170.2", "fe80::1", "fd00:ec2::254", "100.100.100.200",
                       "::ffff:169.254.169.254", "224.0.0.1"):
            with self.subTest(answer=answer):
                error = self.connect("meta.example", 80, ["93.184.216.34", answer])
                self.assertIsNotNone(error)
                self.assertIn("meta.example resolves to", error)
        self.assertIsNone(self.connect("lan.example", 443, ["172.17.0.1", "192.168.1.10"]))  # private: allowed

    def connected(self, address: tuple[str, int], peer: str) -> str | None:
        data = SimpleNamespace(client=SimpleNamespace(id="c1"),
                               server=SimpleNamespace(address=address, peername=(peer, address[1]), error=None))
        with addon_context(self.addon) as tctx, redirect_stderr(io.StringIO()):
            tctx.configure(self.addon, **self.options())
            self.addon.server_connected(data)
        return data.server.error

    def test_a_check_that_fails_refuses_the_connection(self) -> None:
        # mitmproxy logs an exception a hook raises and connects anyway: the hook must refuse itself.
        broken = mock.patch.object(addon_mod, "forbidden_upstream", side_effect=RuntimeError("broken"))
        with broken:
            error = self.connect("fine.example", 443, ["10.0.0.5"])
        self.assertIsNotNone(error)
        self.assertIn("could not be checked (RuntimeError)", error)
        with broken, mock.patch.object(addon_mod, "_drop_transport") as dropped:
            error = self.connected(("fine.example", 443), "10.0.0.5")
        self.assertIsNotNone(error)
        self.assertIn("could not be checked (RuntimeError)", error)
        dropped.assert_called_once()

    def test_the_address_actually_connected_to_is_checked_again(self) -> None:
        # A second lookup (the connection's own) answered differently from the one checked.
        self.assertIn("connected to the sidecar itself", self.connected(("rebind.example", 443), "127.0.0.1"))
        self.assertIn("link-local", self.connected(("rebind.example", 80), "169.254.169.254"))
        self.assertIsNone(self.connected(("fine.example", 443), "10.0.0.5"))
        self.assertIsNone(self.connected(("127.0.0.1", 9418), "127.0.0.1"))  # an internal service


if __name__ == "__main__":
    unittest.main()
