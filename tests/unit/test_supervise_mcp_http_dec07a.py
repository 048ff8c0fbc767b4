"""The supervise MCP server over real sockets: raw HTTP/1.1 against ``mcp_http`` on 127.0.0.1:0.

The answers pinned here are those the mcp SDK 2.3.0 server gave (stateless, JSON answers), which
Claude Code, Codex and pi were shown to work with; where this server differs on purpose (GET and
DELETE refused, batches, ids, limits) the test says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Any
from unittest import mock

from bot_bottle.sidecar.supervise import mcp_http, server
from bot_bottle.sidecar.supervise.channel import Decision, Spool
from tests.unit._waits_dec15k import wait_until

REPO = Path(__file__).resolve().parents[2]
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
PV = {"MCP-Protocol-Version": "2025-06-18"}


class Running:
    """The server on its own event loop in a thread, listening on 127.0.0.1:<free port>."""

    def __init__(self, root: Path, timeout_s: float = 30, tools: list[mcp_http.Tool] | None = None,
                 max_connections: int = mcp_http.MAX_CONNECTIONS) -> None:
        self.spool = Spool(root)
        self.spool.ensure()
        self.app = server.build_server(self.spool, timeout_s, poll=0.02)
        if tools is not None:
            self.app.tools = {t.name: t for t in tools}
        self.app.max_connections = max_connections
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def on_ready(listener: asyncio.Server) -> None:
            self.port = listener.sockets[0].getsockname()[1]
            ready.set()

        async def run() -> None:
            self.task = asyncio.current_task()
            try:
                await mcp_http.serve(self.app, host="127.0.0.1", port=0, ready=on_ready)
            finally:  # the connections' tasks end with the test's loop
                rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for task in rest:
                    task.cancel()
                await asyncio.gather(*rest, return_exceptions=True)

        def thread() -> None:
            with contextlib.suppress(asyncio.CancelledError):
                self.loop.run_until_complete(run())

        self.thread = threading.Thread(target=thread, daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(10)
        self.loop.close()


def request_bytes(body: Any = None, *, method: str = "POST", path: str = "/mcp", headers: dict | None = None,
                  host: str = "127.0.0.1:9430") -> bytes:
    h: dict[str, str | None] = {"Host": host, "Accept": "application/json, text/event-stream",
                                "Content-Type": "application/json"}
    h.update(headers or {})
    data = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    if method == "POST" and "Content-Length" not in h:
        h["Content-Length"] = str(len(data))
    head = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in h.items() if v is not None]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], Any]:
    """One response off ``sock`` (framed by its Content-Length).

    Reads no byte past this response: pipelined answers can arrive in one
    segment, and the next call must still find the second one."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            raise ConnectionError(f"closed before a response: {head!r}")
        head += byte
    head = head[:-4]
    rest = b""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    size = int(headers["content-length"])
    while len(rest) < size:
        chunk = sock.recv(size - len(rest))
        if not chunk:
            raise ConnectionError("closed mid-body")
        rest += chunk
    body: Any = rest[:size]
    if headers.get("content-type") == "application/json" and body:
        body = json.loads(body)
    return status, headers, body


def closed(sock: socket.socket, wait_s: float = 5) -> bool:
    sock.settimeout(wait_s)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


class ServerCase(unittest.TestCase):
    timeout_s: float = 30

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name) / "spool"
        self.server = Running(self.root, self.timeout_s)
        self.addCleanup(self.server.stop)

    def assert_hanging_up_expires(self, sock: socket.socket) -> None:
        """Once the tool call sent on ``sock`` is pending, hang up: its proposal must expire."""
        deadline = time.monotonic() + 10
        while not self.server.spool.pending() and time.monotonic() < deadline:
            time.sleep(0.02)
        (pending,) = self.server.spool.pending()
        sock.close()
        while self.server.spool.decision_for(pending.id) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        decision = self.server.spool.decision_for(pending.id)
        self.assertIsNotNone(decision)
        self.assertEqual(decision.verdict, "expired")
        self.assertLess(time.monotonic(), deadline)

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        self.addCleanup(sock.close)
        return sock

    def exchange(self, body: Any = None, **kw: Any) -> tuple[int, dict[str, str], Any]:
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as sock:
            sock.sendall(request_bytes(body, **kw))
            return read_response(sock)

    def rpc(self, method: str, params: dict | None = None, rid: Any = 7) -> tuple[int, Any]:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            message["params"] = params
        status, _, body = self.exchange(message, headers=PV)
        return status, body

    def call(self, tool: str, arguments: Any) -> tuple[int, Any]:
        return self.rpc("tools/call", {"name": tool, "arguments": arguments})

    def decide_first(self, verdict: str = "approved", reason: str = "") -> threading.Thread:
        def decide() -> None:
            for _ in range(500):
                pending = self.server.spool.pending()
                if pending:
                    self.server.spool.decide(Decision(pending[0].id, verdict, reason))
                    return
                time.sleep(0.01)

        thread = threading.Thread(target=decide)
        thread.start()
        self.addCleanup(thread.join, 10)
        return thread


class LifecycleTest(ServerCase):
    def test_initialize_answers_the_clients_version_or_the_latest(self) -> None:
        status, headers, body = self.exchange(INIT)
        self.assertEqual((status, headers["content-type"]), (200, "application/json"))
        self.assertEqual(body["id"], 1)
        result = body["result"]
        self.assertEqual(result["protocolVersion"], "2025-06-18")
        self.assertEqual(result["capabilities"], {"tools": {"listChanged": False}})
        self.assertEqual(result["serverInfo"]["name"], "bot-bottle-supervise")
        self.assertIsInstance(result["serverInfo"]["version"], str)
        self.assertIn("ask the operator with these tools", result["instructions"])
        for asked, answered in (("2024-11-05", "2024-11-05"), ("2025-11-25", "2025-11-25"), ("1999-01-01", "2025-11-25"),
                                ("2026-07-28", "2025-11-25")):
            with self.subTest(asked=asked):
                _, _, body = self.exchange({**INIT, "params": {**INIT["params"], "protocolVersion": asked}})
                self.assertEqual(body["result"]["protocolVersion"], answered)

    def test_initialize_without_a_version_is_invalid_params(self) -> None:
        status, _, body = self.exchange({"jsonrpc": "2.0", "id": 1, "method": "initialize"})
        self.assertEqual((status, body["id"], body["error"]["code"]), (200, 1, -32602))

    def test_notifications_and_client_responses_get_202_and_no_body(self) -> None:
        for message in ({"jsonrpc": "2.0", "method": "notifications/initialized"},
                        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}},
                        {"jsonrpc": "2.0", "id": 9, "result": {}},
                        {"jsonrpc": "2.0", "id": 9, "error": {"code": 1, "message": "x"}}):
            with self.subTest(message=message):
                status, headers, body = self.exchange(message, headers=PV)
                self.assertEqual((status, headers["content-length"], body), (202, "0", b""))

    def test_ping_and_unknown_methods(self) -> None:
        self.assertEqual(self.rpc("ping"), (200, {"jsonrpc": "2.0", "id": 7, "result": {}}))
        status, body = self.rpc("foo/bar", rid="s")
        self.assertEqual((status, body["id"], body["error"]["code"], body["error"]["data"]), (200, "s", -32601, "foo/bar"))
        # The SDK's server answered these (it listed prompts and resources); there are none.
        self.assertEqual(self.rpc("prompts/list")[1]["result"], {"prompts": []})
        self.assertEqual(self.rpc("resources/list")[1]["result"], {"resources": []})

    def test_tools_list_is_what_the_sdk_listed(self) -> None:
        status, body = self.rpc("tools/list", {})
        self.assertEqual(status, 200)
        tools = {t["name"]: t for t in body["result"]["tools"]}
        self.assertEqual(list(tools), ["request-egress", "request-capability", "request-push-exception", "request-token-use"])
        desc = server.descriptions(self.timeout_s)
        for name, tool in tools.items():
            self.assertEqual(set(tool), {"name", "description", "inputSchema"})
            self.assertEqual(tool["description"], desc[name])
        # Exactly the SDK 2.3.0 schema (from the handlers' signatures), captured from the old server.
        self.assertEqual(tools["request-egress"]["inputSchema"], {
            "properties": {
                "host": {"title": "Host", "type": "string"},
                "justification": {"title": "Justification", "type": "string"},
                "paths": {"anyOf": [{"items": {"type": "string"}, "type": "array"}, {"type": "null"}], "default": None, "title": "Paths"},
                "methods": {"anyOf": [{"items": {"type": "string"}, "type": "array"}, {"type": "null"}], "default": None, "title": "Methods"},
                "ports": {"anyOf": [{"items": {"type": "integer"}, "type": "array"}, {"type": "null"}], "default": None, "title": "Ports"},
            },
            "required": ["host", "justification"], "type": "object", "title": "request_egressArguments"})
        self.assertEqual(tools["request-capability"]["inputSchema"]["properties"]["dockerfile"],
                         {"default": "", "title": "Dockerfile", "type": "string"})
        self.assertEqual(tools["request-capability"]["inputSchema"]["required"], ["justification"])
        self.assertEqual(tools["request-push-exception"]["inputSchema"]["required"],
                         ["repo", "ref", "old", "new", "finding", "justification"])
        self.assertEqual(tools["request-token-use"]["inputSchema"]["properties"]["hold_id"], {"title": "Hold Id", "type": "string"})
        self.assertEqual(tools["request-token-use"]["inputSchema"]["title"], "request_token_useArguments")


class ToolCallTest(ServerCase):
    def test_an_approved_call_returns_the_result_as_json_text(self) -> None:
        self.decide_first("approved")
        status, body = self.call("request-egress", {"host": "a.example", "justification": "read docs", "ports": [443]})
        self.assertEqual(status, 200)
        result = body["result"]
        self.assertFalse(result["isError"])
        (content,) = result["content"]
        self.assertEqual(content["type"], "text")
        self.assertTrue(content["text"].startswith('{\n  "proposal_id": "egress-'))  # indented like the SDK's
        answer = json.loads(content["text"])
        self.assertEqual(answer["verdict"], "approved")
        self.assertEqual(set(answer), {"proposal_id", "verdict", "reason", "change", "message"})
        self.assertEqual(self.server.spool.get(answer["proposal_id"]).payload["ports"], [443])

    def test_a_rejection_reaches_the_agent(self) -> None:
        self.decide_first("rejected", "use grep")
        _, body = self.call("request-capability", {"packages": ["ripgrep"], "justification": "search"})
        answer = json.loads(body["result"]["content"][0]["text"])
        self.assertEqual((answer["verdict"], answer["reason"]), ("rejected", "use grep"))

    def test_the_tools_refusal_is_an_error_result(self) -> None:
        status, body = self.call("request-egress", {"host": "https://a.example/x", "justification": "why"})
        self.assertEqual(status, 200)
        self.assertEqual(body["result"], {"content": [{"type": "text", "text":
            "Error executing tool request-egress: host: 'https://a.example/x': give the host name only, without a scheme or path"}],
            "isError": True})
        self.assertEqual(self.server.spool.pending(), [])

    def test_arguments_are_checked_against_the_schema_naming_the_argument(self) -> None:
        for arguments, text in (
            ({"host": "a.example"}, "justification: required"),
            ({}, "host: required; justification: required"),
            ({"host": 5, "justification": "x"}, "host: expected a string"),
            ({"host": "a.example", "justification": "x", "ports": "443"}, "ports: expected a list"),
            ({"host": "a.example", "justification": "x", "ports": ["x"]}, "ports[0]: expected an integer"),
            ({"host": "a.example", "justification": "x", "ports": [True]}, "ports[0]: expected an integer"),
            ({"host": None, "justification": "x"}, "host: expected a string"),
            ({"host": "a.example", "justification": "x", "paths": [1]}, "paths[0]: expected a string"),
        ):
            with self.subTest(arguments=arguments):
                status, body = self.call("request-egress", arguments)
                self.assertEqual(status, 200)
                self.assertTrue(body["result"]["isError"])
                self.assertIn(f"Error executing tool request-egress: {text}", body["result"]["content"][0]["text"])
        self.assertEqual(self.server.spool.pending(), [])

    def test_lax_values_the_sdk_took_are_still_taken(self) -> None:
        # "443" and 443.0 were ints to the SDK, null an absent optional, unknown names ignored.
        self.decide_first("approved")
        _, body = self.call("request-egress", {"host": "a.example", "justification": "x", "ports": ["443", 8443.0],
                                               "paths": None, "extra": 1})
        answer = json.loads(body["result"]["content"][0]["text"])
        self.assertEqual(self.server.spool.get(answer["proposal_id"]).payload["ports"], [443, 8443])

    def test_bad_call_params(self) -> None:
        status, body = self.call("nope", {})
        self.assertEqual((status, body["result"]), (200, {"content": [{"type": "text", "text": "Unknown tool: nope"}], "isError": True}))
        for params in ({"arguments": {}}, {"name": 3}, {"name": "request-egress", "arguments": [1]}, None):
            with self.subTest(params=params):
                status, body = self.rpc("tools/call", params)
                self.assertEqual((status, body["id"], body["error"]["code"]), (200, 7, -32602))

    def test_a_failing_tool_logs_one_line_and_tells_the_agent_nothing_more(self) -> None:
        async def broken(arguments: dict) -> dict:
            raise KeyError("/var/lib/secret/path")

        self.server.app.tools = {"t": mcp_http.Tool("t", "d", {"type": "object"}, broken)}
        err = io.StringIO()
        with mock.patch.object(sys, "stderr", err):
            _, body = self.call("t", {})
        self.assertEqual(body["result"]["content"][0]["text"], "Error executing tool t: internal error")
        self.assertNotIn("secret", json.dumps(body))
        self.assertEqual(len(err.getvalue().splitlines()), 1)
        self.assertNotIn("Traceback", err.getvalue())

    def test_calls_wait_in_parallel(self) -> None:
        results: dict[int, str] = {}

        def one(i: int) -> None:
            _, body = self.call("request-egress", {"host": f"h{i}.example", "justification": "x"})
            results[i] = json.loads(body["result"]["content"][0]["text"])["verdict"]

        threads = [threading.Thread(target=one, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while len(self.server.spool.pending()) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        pending = self.server.spool.pending()
        self.assertEqual(len(pending), 5)  # all five wait at once
        for p in pending:
            self.server.spool.decide(Decision(p.id, "approved" if p.payload["host"] != "h3.example" else "rejected", ""))
        for t in threads:
            t.join(10)
        self.assertEqual(results, {0: "approved", 1: "approved", 2: "approved", 3: "rejected", 4: "approved"})

    def test_a_caller_going_away_withdraws_its_proposal(self) -> None:
        sock = self.connect()
        sock.sendall(request_bytes({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                    "params": {"name": "request-egress", "arguments": {"host": "a.example", "justification": "x"}}},
                                   headers=PV))
        self.assert_hanging_up_expires(sock)


class HttpTest(ServerCase):
    def test_get_and_delete_are_refused_with_allow_post(self) -> None:
        for method in ("GET", "DELETE", "PUT"):
            with self.subTest(method=method):
                status, headers, body = self.exchange(method=method, headers={"Content-Type": None, **PV})
                self.assertEqual((status, headers["allow"]), (405, "POST"))
                self.assertEqual(body["error"]["code"], -32600)

    def test_host_and_origin_must_name_this_server(self) -> None:
        for host in ("supervise.bottle.internal", "supervise.bottle.internal:80", "127.0.0.1:9430", "localhost:8000"):
            with self.subTest(host=host):
                self.assertEqual(self.exchange(INIT, host=host)[0], 200)
        for host in ("evil.example", "evil.example:9430", "localhost", "supervise.bottle.internal.evil.example",
                     "127.0.0.1"):
            with self.subTest(host=host):
                self.assertEqual(self.exchange(INIT, host=host)[:3:2], (421, b"Invalid Host header"))
        self.assertEqual(self.exchange(INIT, headers={"Host": None})[0], 421)
        for origin in ("http://evil.example", "supervise.bottle.internal", "http://supervise.bottle.internal/x",
                       "null", "file://supervise.bottle.internal"):
            with self.subTest(origin=origin):
                self.assertEqual(self.exchange(INIT, headers={"Origin": origin})[:3:2], (403, b"Invalid Origin header"))
        self.assertEqual(self.exchange(INIT, headers={"Origin": "http://supervise.bottle.internal"})[0], 200)

    def test_path_must_be_mcp(self) -> None:
        for path in ("/other", "/mcp/", "/", "/mcpx"):
            with self.subTest(path=path):
                self.assertEqual(self.exchange(INIT, path=path)[0], 404)
        self.assertEqual(self.exchange(INIT, path="/mcp?x=1")[0], 200)
        self.assertEqual(self.exchange(INIT, path="http://supervise.bottle.internal/mcp")[0], 200)  # absolute form
        self.assertEqual(self.exchange(INIT, path="http://supervise.bottle.internal/other")[0], 404)

    def test_two_host_headers_are_refused(self) -> None:
        sock = self.connect()
        sock.sendall(request_bytes(INIT).replace(b"Host: ", b"Host: evil.example\r\nHost: ", 1))
        self.assertEqual(read_response(sock)[0], 400)

    def test_accept_and_content_type(self) -> None:
        for accept in ("application/json", "*/*", "application/json;q=0.9", "text/event-stream, application/*"):
            with self.subTest(accept=accept):
                self.assertEqual(self.exchange(INIT, headers={"Accept": accept})[0], 200)
        for accept in ("text/event-stream", None, "text/html"):
            with self.subTest(accept=accept):
                status, _, body = self.exchange(INIT, headers={"Accept": accept})
                self.assertEqual((status, body["error"]["code"]), (406, -32600))
        for kind in ("text/plain", None, "application/jsonx"):
            with self.subTest(kind=kind):
                self.assertEqual(self.exchange(INIT, headers={"Content-Type": kind})[:3:2], (400, b"Invalid Content-Type header"))
        self.assertEqual(self.exchange(INIT, headers={"Content-Type": "application/json; charset=utf-8"})[0], 200)

    def test_protocol_version_header(self) -> None:
        for version in ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"):
            with self.subTest(version=version):
                self.assertEqual(self.exchange({"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                               headers={"MCP-Protocol-Version": version})[0], 200)
        status, _, body = self.exchange({"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                        headers={"MCP-Protocol-Version": "2099-01-01"})
        self.assertEqual((status, body["error"]["code"]), (400, -32022))
        self.assertEqual(body["error"]["data"]["supported"], list(mcp_http.PROTOCOL_VERSIONS))
        # 2026-07-28 carries its version per request: the header alone is a request missing it
        status, _, body = self.exchange({"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                        headers={"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"})
        self.assertEqual((status, body["error"]["code"]), (400, -32602))

    def test_bad_messages(self) -> None:
        cases = (
            (b"{not json", 400, -32700),
            (b"", 400, -32700),
            (b"[" * 100000 + b"]" * 100000, 400, -32700),  # nesting past the recursion limit
            ([{"jsonrpc": "2.0", "id": 1, "method": "ping"}], 400, -32600),  # batches: refused as the SDK did
            ([], 400, -32600),
            ({"x": 1}, 400, -32600),
            ({"id": 1, "method": "ping"}, 400, -32600),
            ({"jsonrpc": "1.0", "id": 1, "method": "ping"}, 400, -32600),
            ({"jsonrpc": "2.0", "id": 1, "method": 5}, 400, -32600),
            # ids of other types: the SDK took these for notifications (202); they are malformed
            ({"jsonrpc": "2.0", "id": None, "method": "ping"}, 400, -32600),
            ({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}, 400, -32600),
            ({"jsonrpc": "2.0", "id": True, "method": "ping"}, 400, -32600),
            ({"jsonrpc": "2.0", "id": 1, "result": {}, "error": {}}, 400, -32600),
            ({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": [1]}, 400, -32602),
        )
        for message, status, code in cases:
            with self.subTest(message=str(message)[:60]):
                got, _, body = self.exchange(message, headers=PV)
                self.assertEqual((got, body["error"]["code"]), (status, code))
                self.assertNotIn("Traceback", json.dumps(body))


class ConnectionTest(ServerCase):
    def test_keep_alive_serves_several_requests_and_close_is_honoured(self) -> None:
        sock = self.connect()
        for rid in range(3):
            sock.sendall(request_bytes({"jsonrpc": "2.0", "id": rid, "method": "ping"}, headers=PV))
            status, headers, body = read_response(sock)
            self.assertEqual((status, body["id"]), (200, rid))
            self.assertNotIn("connection", headers)
        # a refusal with a small body keeps the connection too
        sock.sendall(request_bytes(INIT, host="evil.example"))
        self.assertEqual(read_response(sock)[0], 421)
        sock.sendall(request_bytes({"jsonrpc": "2.0", "id": 9, "method": "ping"}, headers={**PV, "Connection": "close"}))
        status, headers, _ = read_response(sock)
        self.assertEqual((status, headers["connection"]), (200, "close"))
        self.assertTrue(closed(sock))

    def test_pipelined_requests_are_each_answered(self) -> None:
        sock = self.connect()
        sock.sendall(request_bytes({"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=PV)
                     + request_bytes({"jsonrpc": "2.0", "id": 2, "method": "ping"}, headers=PV))
        self.assertEqual(read_response(sock)[2]["id"], 1)
        self.assertEqual(read_response(sock)[2]["id"], 2)

    def test_http_1_0_closes_after_the_answer(self) -> None:
        sock = self.connect()
        sock.sendall(request_bytes({"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=PV).replace(b"HTTP/1.1", b"HTTP/1.0", 1))
        self.assertEqual(read_response(sock)[0], 200)
        self.assertTrue(closed(sock))

    def test_an_oversized_head_gets_431(self) -> None:
        sock = self.connect()
        sock.sendall(request_bytes(INIT, headers={"X-Pad": "a" * (mcp_http.MAX_HEAD + 10)}))
        self.assertEqual(read_response(sock)[0], 431)
        self.assertTrue(closed(sock))
        sock = self.connect()
        sock.sendall(b"POST /mcp HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n")  # too many fields
        self.assertEqual(read_response(sock)[0], 431)

    def test_an_oversized_body_gets_413_before_it_is_sent(self) -> None:
        sock = self.connect()
        sock.sendall(request_bytes(b"", headers={"Content-Length": str(mcp_http.MAX_BODY + 1)}))
        self.assertEqual(read_response(sock)[:3:2], (413, b"Request body too large"))
        self.assertTrue(closed(sock))
        status, _, body = self.exchange(b'{"jsonrpc": "2.0", "id": 1, "method": "ping"' + b" " * (mcp_http.MAX_BODY - 100) + b"}",
                                        headers=PV)
        self.assertEqual((status, body["result"]), (200, {}))  # just under the limit is fine

    def test_a_body_needs_a_content_length(self) -> None:
        for headers, status in (({"Transfer-Encoding": "chunked", "Content-Length": None}, 411),
                                ({"Content-Length": None}, 411),
                                ({"Content-Length": "12, 13"}, 400),
                                ({"Content-Length": "-1"}, 400)):
            with self.subTest(headers=headers):
                sock = self.connect()
                raw = request_bytes(None, headers=headers)
                sock.sendall(raw)
                self.assertEqual(read_response(sock)[0], status)
                self.assertTrue(closed(sock))

    def test_a_bad_request_line_gets_400(self) -> None:
        for line in (b"GARBAGE\r\n\r\n", b"POST /mcp HTTP/2\r\nHost: x\r\n\r\n", b"POST  /mcp HTTP/1.1\r\n\r\n"):
            with self.subTest(line=line):
                sock = self.connect()
                sock.sendall(line)
                self.assertEqual(read_response(sock)[0], 400)

    def test_a_slow_client_is_dropped(self) -> None:
        with mock.patch.object(mcp_http, "HEAD_TIMEOUT_S", 0.3), mock.patch.object(mcp_http, "BODY_TIMEOUT_S", 0.3):
            sock = self.connect()
            sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:1\r\n")  # the head never ends
            self.assertTrue(closed(sock, 3))
            sock = self.connect()
            sock.sendall(request_bytes(b"", headers={"Content-Length": "100", **PV}) + b"{")  # the body never ends
            self.assertTrue(closed(sock, 3))
            sock = self.connect()  # nothing at all
            self.assertTrue(closed(sock, 3))
        self.assertEqual(self.rpc("ping")[0], 200)  # the server goes on

    def test_connections_are_bounded(self) -> None:
        self.server.app.max_connections = 3
        held = [self.connect() for _ in range(3)]
        for sock in held:
            sock.sendall(b"P")  # started, never finished: each holds its place
        wait_until(lambda: self.server.app.connections == 3)  # the server has taken all three
        extra = self.connect()
        self.assertEqual(read_response(extra)[0], 503)
        for sock in held:
            sock.close()
        wait_until(lambda: self.server.app.connections == 0)  # and seen them go
        self.assertEqual(self.rpc("ping")[0], 200)


class MainTest(unittest.TestCase):
    def test_main_serves_an_inherited_socket_and_its_waiting_connection(self) -> None:
        # The sidecar's init binds and listens, and starts the server on the first connection;
        # that connection, already in the backlog, is the first one served.
        with tempfile.TemporaryDirectory() as tmp, socket.create_server(("127.0.0.1", 0)) as listener:
            port = listener.getsockname()[1]
            client = socket.create_connection(("127.0.0.1", port), timeout=20)
            self.addCleanup(client.close)
            client.sendall(request_bytes(INIT, host=f"127.0.0.1:{port}"))
            proc = subprocess.Popen(
                [sys.executable, "-m", "bot_bottle.sidecar.supervise.server", "--port", str(port),
                 "--root", str(Path(tmp) / "spool"), "--fd", str(listener.fileno())],
                pass_fds=(listener.fileno(),), env=dict(os.environ, PYTHONPATH=str(REPO)),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
            try:
                status, _, body = read_response(client)
                self.assertEqual((status, body["result"]["serverInfo"]["name"]), (200, "bot-bottle-supervise"))
            finally:
                proc.terminate()
                out, _ = proc.communicate(timeout=10)
            self.assertEqual(out, b"")  # stdout carries the proxy's lines in the sidecar: nothing here

    def test_the_server_module_loads_without_third_party_packages(self) -> None:
        # -S: no site-packages at all, as for the sidecar's system python3 with nothing installed.
        probe = "import sys; import bot_bottle.sidecar.supervise.server as s; print(sorted(m for m in sys.modules if m.split('.')[0] not in sys.stdlib_module_names and m.split('.')[0] not in ('bot_bottle', '__main__')))"
        result = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, timeout=30,
                                env=dict(os.environ, PYTHONPATH=str(REPO)), check=False)
        self.assertEqual((result.returncode, result.stdout.strip()), (0, "[]"), result.stderr)


if __name__ == "__main__":
    unittest.main()
