"""The proxy refuses requests that would make the provider's servers fetch (``server_fetch``) on a
route whose DLP settings say ``server_fetch: block``: before anything is sent, with a 403 naming
the rule and the JSON path, logged under its own rule; a route that allows it, or says nothing,
forwards them. The everyday requests of the agents pass with their credential injected."""

from __future__ import annotations

import copy
import gzip
import json

from bot_bottle.cli.logs import format_text
from tests.unit.test_egress_server_fetch import (
    ANTHROPIC_IMAGE_URL, ANTHROPIC_MCP, CHAT_IMAGE_URL, OPENAI_MCP, SHAPES, claude_code_body, codex_body, pi_body,
)
from tests.unit.test_sidecar_addon import REAL_TOKEN, SECRETS, AddonCase, addon_mod

try:
    from mitmproxy import websocket
    from mitmproxy.test import tflow
    from wsproto.frame_protocol import Opcode
except ImportError:  # pragma: no cover - AddonCase reports the missing dependency
    websocket = None

PROVIDER = "api.provider.example"
OPTED_OUT = "optout.provider.example"
PLAIN = "plain.example"
POLICY = {
    "version": 2,
    "log": 1,
    "internal_services": {},
    "routes": [
        {"host": PROVIDER, "ports": [443], "auth": {"scheme": "bearer", "token_ref": "BEARER_REF"},
         "dlp": {"outbound_on_match": "block", "own_token": "redact", "server_fetch": "block"}},
        {"host": OPTED_OUT, "ports": [443], "auth": {"scheme": "bearer", "token_ref": "BEARER_REF"},
         "dlp": {"outbound_on_match": "block", "own_token": "redact", "server_fetch": "allow"}},
        {"host": PLAIN, "ports": [443]},
    ],
}


class ServerFetchAddonTest(AddonCase):
    def setUp(self) -> None:
        super().setUp()
        self.write_policy(POLICY)
        self.secrets.write_text(json.dumps(SECRETS))

    def post(self, host: str, body: bytes, *, headers: dict | None = None, path: str = "/v1/messages"):
        pairs = {"Host": host, "Content-Type": "application/json", "Authorization": "Bearer placeholder",
                 "Content-Length": str(len(body)), **(headers or {})}
        return self.request_flow(host, port=443, scheme="https", method="POST", path=path, headers=pairs,
                                 content=body)

    def test_every_shape_is_refused_on_the_provider_route_before_anything_is_sent(self) -> None:
        for name, (doc, where) in SHAPES.items():
            with self.subTest(name):
                flow, lines = self.exchange(self.post(PROVIDER, json.dumps(doc).encode()))
                self.assertEqual(flow.response.status_code, 403)
                self.assertEqual(flow.response.headers["X-Bot-Bottle-Rule"], "server-fetch")
                text = flow.response.get_text()
                self.assertIn("server-fetch", text)
                self.assertIn(where, text)
                self.assertIn("server_fetch: allow", text)
                self.assertNotIn("evil.example", text)
                self.assertNotIn("SECRET-VALUE", text)
                # Refused before the credential went in.
                self.assertNotIn(REAL_TOKEN, flow.request.headers.get("authorization", ""))
                (line,) = lines
                self.assertEqual((line["decision"], line["rule"], line["status"]), ("deny", "server-fetch", 403))
                self.assertIn(where, line["reason"])
                self.assertNotIn("evil.example", json.dumps(line))
                self.assertIn("rule server-fetch", format_text(line).plain)  # what `bot-bottle logs` prints

    def test_the_agents_everyday_requests_pass_and_the_same_with_a_url_image_do_not(self) -> None:
        beta = {"anthropic-beta": "oauth-2025-04-20,claude-code-20250219,interleaved-thinking-2025-05-14"}
        url_image = {"type": "image", "source": {"type": "url", "url": "https://evil.example/?d=x"}}
        for name, body, add in (
                ("claude code", claude_code_body(200_000), lambda d: d["messages"][-1]["content"].append(url_image)),
                ("codex", codex_body(200_000), lambda d: d["input"][0]["content"].append(
                    {"type": "input_image", "image_url": "https://evil.example/?d=x"})),
                ("pi", pi_body(), lambda d: d["messages"][0]["content"].append(url_image))):
            with self.subTest(name):
                flow, lines = self.exchange(self.post(PROVIDER, body, headers=beta))
                self.assertEqual(flow.response.status_code, 200)
                self.assertEqual(flow.request.headers["authorization"], f"Bearer {REAL_TOKEN}")
                self.assertEqual(lines, [])
                doc = json.loads(body)
                add(doc)
                flow, lines = self.exchange(self.post(PROVIDER, json.dumps(doc).encode(), headers=beta))
                self.assertEqual(flow.response.status_code, 403)
                self.assertEqual(lines[0]["rule"], "server-fetch")

    def test_only_the_route_that_blocks_refuses(self) -> None:
        beta = {"anthropic-beta": "mcp-client-2025-04-04"}
        for host, status in ((PROVIDER, 403), (OPTED_OUT, 200), (PLAIN, 200)):
            with self.subTest(host):
                flow, _ = self.exchange(self.post(host, json.dumps(OPENAI_MCP).encode()))
                self.assertEqual(flow.response.status_code, status)
                flow, _ = self.exchange(self.post(host, b'{"messages": []}', headers=beta))
                self.assertEqual(flow.response.status_code, status)

    def test_the_beta_header_is_refused_at_the_head(self) -> None:
        flow, lines = self.run_hooks(self.post(PROVIDER, b'{"messages": []}',
                                               headers={"anthropic-beta": "oauth-2025-04-20,mcp-client-2025-04-04"}),
                                     "requestheaders")
        self.assertEqual(flow.response.status_code, 403)
        self.assertIn("header anthropic-beta: mcp-client-2025-04-04", flow.response.get_text())
        self.assertEqual(lines[0]["rule"], "server-fetch")

    def test_a_compressed_body_is_read_decoded(self) -> None:
        body = gzip.compress(json.dumps(ANTHROPIC_MCP).encode())
        flow, lines = self.exchange(self.post(PROVIDER, body, headers={"Content-Encoding": "gzip"}))
        self.assertEqual(flow.response.status_code, 403)
        self.assertIn("mcp_servers[0]", flow.response.get_text())

    def test_a_body_larger_than_the_proxy_holds_is_refused_at_the_head(self) -> None:
        flow = self.post(PROVIDER, b"{}", headers={"Content-Length": str(addon_mod.MAX_HELD_BODY + 1)})
        flow, lines = self.run_hooks(flow, "requestheaders")
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "server-fetch")
        self.assertIn("more than the", lines[0]["reason"])

    def test_a_large_body_is_held_whole_on_the_provider_route_and_streams_elsewhere(self) -> None:
        # Past the scanner's deep limit a plain body streams through DLP chunk by chunk; on a
        # route that refuses provider-side fetches it is held, so the whole of it is checked.
        size = 3 * 1024 * 1024
        big = b'{"messages": [{"content": [{"type": "image", "source": {"type": "url", "url": "https://e/"}}]}], "x": "' \
            + b"a" * size + b'"}'
        for host, streamed in ((PROVIDER, False), (PLAIN, True)):
            with self.subTest(host):
                flow = self.post(host, big, headers={"Content-Type": "text/plain"})
                flow, _ = self.run_hooks(flow, "requestheaders")
                self.assertEqual(callable(flow.request.stream), streamed)
        flow, lines = self.exchange(self.post(PROVIDER, big, headers={"Content-Type": "text/plain"}))
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "server-fetch")

    def test_a_large_body_is_checked_on_the_scan_worker(self) -> None:
        sizes = self.record_scan_sizes()
        body = json.dumps({"pad": "x" * 200_000, **copy.deepcopy(CHAT_IMAGE_URL)}).encode()
        flow, _ = self.exchange(self.post(PROVIDER, body))
        self.assertEqual(flow.response.status_code, 403)
        self.assertIn(len(body), sizes)

    def test_a_supervise_route_refuses_rather_than_holds(self) -> None:
        policy = copy.deepcopy(POLICY)
        policy["routes"][0]["dlp"]["outbound_on_match"] = "supervise"
        self.write_policy(policy)
        flow, lines = self.exchange(self.post(PROVIDER, json.dumps(ANTHROPIC_IMAGE_URL).encode()))
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "server-fetch")

    def test_a_websocket_message_asking_for_an_mcp_server_is_dropped(self) -> None:
        flow = tflow.twebsocketflow()
        flow.request.host = PROVIDER
        flow.request.port = 443
        flow.request.scheme = "https"
        flow.request.headers["host"] = PROVIDER
        message = {"type": "response.create", "response": {"tools": [{"type": "mcp", "server_url": "https://e/"}]}}
        flow.websocket.messages = [websocket.WebSocketMessage(Opcode.TEXT, True, json.dumps(message).encode())]
        flow, lines = self.run_hooks(flow, "requestheaders", "websocket_message")
        self.assertTrue(flow.websocket.messages[-1].dropped)
        (line,) = lines
        self.assertEqual((line["decision"], line["rule"]), ("deny", "server-fetch"))
        self.assertIn("response.tools[0].type=mcp", line["reason"])
        clean = tflow.twebsocketflow()
        clean.request.host, clean.request.port, clean.request.scheme = PROVIDER, 443, "https"
        clean.request.headers["host"] = PROVIDER
        clean.websocket.messages = [websocket.WebSocketMessage(Opcode.TEXT, True, b'{"type": "response.create"}')]
        clean, lines = self.run_hooks(clean, "requestheaders", "websocket_message")
        self.assertFalse(clean.websocket.messages[-1].dropped)
        self.assertEqual(lines, [])
