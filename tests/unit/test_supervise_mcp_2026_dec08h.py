"""MCP revision 2026-07-28 on the supervise server, over real sockets (raw HTTP/1.1, no SDK).

The requests pinned here are what the mcp SDK 2.3.0 client sent (``Client(url, mode="auto")`` and
``mode="2026-07-28"``): lowercase header names, ``mcp-protocol-version``, ``mcp-method`` and, for
``tools/call``, ``mcp-name`` mirroring the body, and the per-request ``_meta`` envelope. The answers
are the ones that client accepted (its ``server/discover`` probe adopted 2026-07-28 instead of
falling back to ``initialize``). The older versions' answers stay as
tests/unit/test_supervise_mcp_http_dec07a.py pins them; here only that they stay apart.
"""

from __future__ import annotations

import base64
import json
import socket
from typing import Any

from bot_bottle.sidecar.supervise import mcp_http, server
from tests.unit.test_supervise_mcp_http_dec07a import ServerCase, read_response, request_bytes

MODERN = "2026-07-28"
ENVELOPE = {  # as the SDK client sent it
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientInfo": {"name": "mcp", "version": "0.1.0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
IDENTITY = {"name": "bot-bottle-supervise", "version": server.SERVER_VERSION}
# The keys 2026-07-28's schema requires on a DiscoverResult (CacheableResult plus its own).
DISCOVER_REQUIRED = {"resultType", "supportedVersions", "capabilities", "ttlMs", "cacheScope"}

# The SDK client's first request, byte for byte but for the Host port (captured through a relay).
SDK_DISCOVER = (
    b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:60797\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n"
    b"User-Agent: python-httpx2/2.17.0\r\naccept: application/json, text/event-stream\r\n"
    b"content-type: application/json\r\nmcp-protocol-version: 2026-07-28\r\nmcp-method: server/discover\r\n"
    b"Content-Length: 245\r\n\r\n"
    b'{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion"'
    b':"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"mcp","version":"0.1.0"},'
    b'"io.modelcontextprotocol/clientCapabilities":{}}}}'
)


def modern_headers(method: str, name: str | None = None, version: str = MODERN) -> dict[str, str]:
    headers = {"mcp-protocol-version": version, "mcp-method": method}
    if name is not None:
        headers["mcp-name"] = name
    return headers


def modern_message(method: str, params: dict[str, Any] | None = None, rid: Any = 7,
                   meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": {**(params or {}), "_meta": meta or ENVELOPE}}


class ModernCase(ServerCase):
    def modern(self, method: str, params: dict[str, Any] | None = None, *, name: str | None = None,
               headers: dict[str, Any] | None = None, meta: dict[str, Any] | None = None,
               rid: Any = 7) -> tuple[int, dict[str, str], Any]:
        if name is None and method == "tools/call":
            name = (params or {}).get("name")
        return self.exchange(modern_message(method, params, rid, meta),
                             headers={**modern_headers(method, name), **(headers or {})})

    def assert_error(self, reply: tuple[int, dict[str, str], Any], status: int, code: int, rid: Any = 7) -> dict:
        got, headers, body = reply
        self.assertEqual((got, headers["content-type"], body["jsonrpc"], body["id"], body["error"]["code"]),
                         (status, "application/json", "2.0", rid, code), body)
        self.assertNotIn("result", body)
        return body["error"]

    def assert_mismatch(self, reply: tuple[int, dict[str, str], Any], rid: Any = 7) -> str:
        return self.assert_error(reply, 400, mcp_http.HEADER_MISMATCH, rid)["message"]


class DiscoverTest(ModernCase):
    def test_discover_names_versions_capabilities_identity_and_instructions(self) -> None:
        status, headers, body = self.modern("server/discover", rid="discover-1")
        self.assertEqual((status, headers["content-type"], body["id"]), (200, "application/json", "discover-1"))
        result = body["result"]
        self.assertLessEqual(DISCOVER_REQUIRED, set(result))
        self.assertEqual(result["resultType"], "complete")
        self.assertEqual(result["supportedVersions"], [MODERN])
        self.assertEqual(result["capabilities"], {"tools": {"listChanged": False}})
        self.assertEqual(result["instructions"], server.INSTRUCTIONS)
        self.assertEqual(result["serverInfo"], IDENTITY)
        self.assertEqual(result["_meta"], {"io.modelcontextprotocol/serverInfo": IDENTITY})
        self.assertIsInstance(result["ttlMs"], int)
        self.assertGreaterEqual(result["ttlMs"], 0)
        self.assertIn(result["cacheScope"], ("public", "private"))
        self.assertNotIn("mcp-session-id", headers)

    def test_the_sdk_clients_probe_as_sent(self) -> None:
        sock = self.connect()
        sock.sendall(SDK_DISCOVER.replace(b"127.0.0.1:60797", f"127.0.0.1:{self.server.port}".encode()))
        status, _, body = read_response(sock)
        self.assertEqual((status, body["id"], body["result"]["supportedVersions"]), (200, 1, [MODERN]))

    def test_discover_is_not_part_of_the_older_versions(self) -> None:
        status, _, body = self.exchange({"jsonrpc": "2.0", "id": 1, "method": "server/discover"},
                                        headers={"MCP-Protocol-Version": "2025-11-25"})
        self.assertEqual((status, body["error"]["code"]), (200, -32601))


class ModernMethodsTest(ModernCase):
    def test_tools_list_is_the_same_listing_made_cacheable(self) -> None:
        status, _, body = self.modern("tools/list")
        self.assertEqual(status, 200)
        result = body["result"]
        self.assertEqual((result["resultType"], result["cacheScope"]), ("complete", "private"))
        self.assertEqual(result["ttlMs"], mcp_http.LIST_TTL_MS)
        self.assertEqual(result["_meta"], {"io.modelcontextprotocol/serverInfo": IDENTITY})
        _, _, legacy = self.exchange({"jsonrpc": "2.0", "id": 7, "method": "tools/list"},
                                     headers={"MCP-Protocol-Version": "2025-11-25"})
        self.assertEqual(result["tools"], legacy["result"]["tools"])

    def test_a_bad_argument_comes_back_at_once_as_a_complete_error_result(self) -> None:
        status, _, body = self.modern("tools/call", {"name": "request-egress", "arguments": {"host": "example.org"}})
        self.assertEqual(status, 200)
        self.assertEqual(body["result"], {
            "resultType": "complete",
            "content": [{"type": "text", "text": "Error executing tool request-egress: justification: required"}],
            "isError": True, "_meta": {"io.modelcontextprotocol/serverInfo": IDENTITY}})

    def test_an_approved_call_returns_its_verdict(self) -> None:
        self.decide_first("approved")
        status, _, body = self.modern("tools/call", {"name": "request-egress",
                                                     "arguments": {"host": "example.org", "justification": "docs"}})
        self.assertEqual((status, body["result"]["isError"], body["result"]["resultType"]), (200, False, "complete"))
        self.assertEqual(json.loads(body["result"]["content"][0]["text"])["verdict"], "approved")

    def test_methods_outside_the_revision_are_404_method_not_found(self) -> None:
        for method in ("initialize", "ping", "prompts/list", "resources/list", "logging/setLevel", "foo/bar"):
            with self.subTest(method=method):
                error = self.assert_error(self.modern(method), 404, -32601)
                self.assertEqual(error["data"], method)

    def test_bad_call_params_are_400_invalid_params(self) -> None:
        for params in ({"name": 5}, {"name": "request-egress", "arguments": [1]}):
            with self.subTest(params=params):
                self.assert_error(self.modern("tools/call", params, name="request-egress"), 400, -32602)
        status, _, body = self.modern("tools/call", {"name": "no-such-tool"})  # as on the older versions
        self.assertEqual((status, body["result"]["isError"]), (200, True))

    def test_notifications_get_202_and_client_responses_are_refused(self) -> None:
        status, headers, body = self.exchange({"jsonrpc": "2.0", "method": "notifications/cancelled",
                                               "params": {"requestId": 3}},
                                              headers=modern_headers("notifications/cancelled"))
        self.assertEqual((status, headers["content-length"], body), (202, "0", b""))
        status, _, body = self.exchange({"jsonrpc": "2.0", "id": 9, "result": {}},
                                        headers={"mcp-protocol-version": MODERN})
        self.assertEqual((status, body["error"]["code"]), (400, -32600))

    def test_a_caller_going_away_withdraws_its_proposal(self) -> None:
        sock = self.connect()
        sock.sendall(request_bytes(modern_message("tools/call", {"name": "request-egress", "arguments": {
            "host": "a.example", "justification": "x"}}), headers=modern_headers("tools/call", "request-egress")))
        self.assert_hanging_up_expires(sock)

    def test_one_connection_serves_both_eras(self) -> None:
        sock = self.connect()
        sock.sendall(request_bytes({"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={"MCP-Protocol-Version": "2025-06-18"})
                     + request_bytes(modern_message("server/discover", rid=2), headers=modern_headers("server/discover"))
                     + request_bytes({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))
        self.assertEqual(read_response(sock)[2], {"jsonrpc": "2.0", "id": 1, "result": {}})
        self.assertEqual(read_response(sock)[2]["result"]["supportedVersions"], [MODERN])
        self.assertEqual(set(read_response(sock)[2]["result"]), {"tools"})


class EnvelopeTest(ModernCase):
    def test_a_missing_or_malformed_required_field_is_400_invalid_params(self) -> None:
        version, caps, info = ("io.modelcontextprotocol/protocolVersion", "io.modelcontextprotocol/clientCapabilities",
                               "io.modelcontextprotocol/clientInfo")
        for meta in ({version: MODERN}, {version: MODERN, caps: None}, {version: MODERN, caps: []},
                     {version: 20260728, caps: {}}, {**ENVELOPE, info: "mcp"}):
            with self.subTest(meta=meta):
                self.assert_error(self.modern("tools/list", meta=meta), 400, -32602)
        # clientInfo is optional; other keys ride along
        for meta in ({version: MODERN, caps: {}}, {**ENVELOPE, "progressToken": 1, "traceparent": "00-x"}):
            with self.subTest(meta=meta):
                self.assertEqual(self.modern("tools/list", meta=meta)[0], 200)

    def test_a_body_version_other_than_the_headers_is_a_header_mismatch(self) -> None:
        for body_version in ("2025-11-25", "2027-01-01", ""):
            with self.subTest(body_version=body_version):
                meta = {**ENVELOPE, "io.modelcontextprotocol/protocolVersion": body_version}
                self.assertIn("MCP-Protocol-Version", self.assert_mismatch(self.modern("tools/list", meta=meta)))

    def test_a_request_without_the_envelope_has_invalid_params(self) -> None:
        # The revision requires the version in _meta; the header alone does not make one.
        for params in (None, {}, {"_meta": {}}, {"_meta": {"progressToken": 1}}):
            with self.subTest(params=params):
                message: dict[str, Any] = {"jsonrpc": "2.0", "id": 7, "method": "tools/list"}
                if params is not None:
                    message["params"] = params
                error = self.assert_error(self.exchange(message, headers=modern_headers("tools/list")), 400, -32602)
                self.assertIn("protocolVersion", error["message"])

    def test_an_unknown_header_version_gets_the_whole_supported_list(self) -> None:
        meta = {**ENVELOPE, "io.modelcontextprotocol/protocolVersion": "2027-01-01"}
        status, _, body = self.exchange(modern_message("tools/list", meta=meta),
                                        headers=modern_headers("tools/list", version="2027-01-01"))
        self.assertEqual((status, body["error"]["code"]), (400, -32022))
        self.assertEqual(body["error"]["data"]["supported"],
                         ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", MODERN])
        self.assertEqual(body["error"]["data"]["requested"], "2027-01-01")


class HeaderTest(ModernCase):
    def test_mcp_method_is_required_and_must_match(self) -> None:
        message = modern_message("tools/list")
        self.assertIn("Mcp-Method", self.assert_mismatch(self.exchange(message, headers={"mcp-protocol-version": MODERN})))
        for value in ("tools/call", "Tools/List", "tools/list ", ""):
            with self.subTest(value=value):
                self.assert_mismatch(self.exchange(message, headers={**modern_headers("tools/list"), "mcp-method": value}))
        # names are case-insensitive, as HTTP has them
        self.assertEqual(self.exchange(message, headers={"MCP-PROTOCOL-VERSION": MODERN, "MCP-METHOD": "tools/list"})[0], 200)

    def test_the_version_header_must_be_there_when_the_body_names_a_version(self) -> None:
        for headers in ({"mcp-method": "tools/list"}, {"mcp-method": "tools/list", "mcp-protocol-version": "2025-11-25"}):
            with self.subTest(headers=headers):
                self.assertIn("MCP-Protocol-Version", self.assert_mismatch(self.exchange(modern_message("tools/list"), headers=headers)))

    def test_mcp_name_is_required_for_a_call_and_must_match(self) -> None:
        params = {"name": "request-egress", "arguments": {"host": "example.org"}}
        message = modern_message("tools/call", params)
        self.assertIn("Mcp-Name", self.assert_mismatch(self.exchange(message, headers=modern_headers("tools/call"))))
        for value in ("request-capability", "REQUEST-EGRESS", "=?base64?cmVxdWVzdC1jYXBhYmlsaXR5?=",
                      "=?base64?not base64?=", "=?base64?cmVxdWVzdC1lZ3Jlc3N=?=",  # non-canonical padding bits
                      "=?BASE64?cmVxdWVzdC1lZ3Jlc3M=?="):
            with self.subTest(value=value):
                self.assert_mismatch(self.exchange(message, headers=modern_headers("tools/call", value)))
        encoded = "=?base64?" + base64.b64encode(b"request-egress").decode() + "?="
        status, _, body = self.exchange(message, headers=modern_headers("tools/call", encoded))
        self.assertEqual((status, body["result"]["isError"]), (200, True))

    def test_non_ascii_header_bytes_never_match(self) -> None:
        name = "réquest"
        message = modern_message("tools/call", {"name": name, "arguments": {}})
        raw = request_bytes(message, headers=modern_headers("tools/call", "PLACEHOLDER"))
        sock = self.connect()
        sock.sendall(raw.replace(b"PLACEHOLDER", name.encode()))
        self.assert_mismatch(read_response(sock))
        encoded = "=?base64?" + base64.b64encode(name.encode()).decode() + "?="
        status, _, body = self.exchange(message, headers=modern_headers("tools/call", encoded))
        self.assertEqual((status, body["result"]["content"][0]["text"]), (200, "Unknown tool: réquest"))

    def test_a_mirrored_header_sent_twice_is_refused(self) -> None:
        raw = request_bytes(modern_message("tools/list"), headers=modern_headers("tools/list"))
        for extra in (b"mcp-method: tools/list\r\n", b"mcp-protocol-version: 2026-07-28\r\n",
                      b"mcp-name: x\r\n" * 2):
            with self.subTest(extra=extra):
                sock = self.connect()
                sock.sendall(raw.replace(b"mcp-method:", extra + b"mcp-method:", 1))
                self.assert_mismatch(read_response(sock))
        # an older first copy does not hide a 2026-07-28 one from its checks
        sock = self.connect()
        sock.sendall(raw.replace(b"mcp-protocol-version:", b"mcp-protocol-version: 2025-11-25\r\nmcp-protocol-version:", 1))
        self.assert_mismatch(read_response(sock))

    def test_session_and_resumption_headers_are_ignored(self) -> None:
        status, headers, body = self.modern("server/discover", headers={"Mcp-Session-Id": "abc", "Last-Event-ID": "5",
                                                                       "Mcp-Param-Region": "x"})
        self.assertEqual((status, body["result"]["resultType"]), (200, "complete"))
        self.assertNotIn("mcp-session-id", headers)

    def test_get_and_delete_are_405(self) -> None:
        for method in ("GET", "DELETE"):
            with self.subTest(method=method):
                status, headers, _ = self.exchange(method=method, headers={"Content-Type": None, **modern_headers("x"),
                                                                          "Mcp-Session-Id": "abc", "Last-Event-ID": "1"})
                self.assertEqual((status, headers["allow"]), (405, "POST"))


class OlderVersionsStayApartTest(ModernCase):
    """Look-alikes of a 2026-07-28 request that are older requests, answered as before."""

    def test_older_results_carry_none_of_the_new_fields(self) -> None:
        for headers in ({"MCP-Protocol-Version": "2025-11-25"}, {}):
            with self.subTest(headers=headers):
                _, _, body = self.exchange({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=headers)
                self.assertEqual(set(body["result"]), {"tools"})
        _, _, body = self.exchange({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                    "params": {"name": "request-egress", "arguments": {}}},
                                   headers={"MCP-Protocol-Version": "2025-06-18"})
        self.assertEqual(set(body["result"]), {"content", "isError"})

    def test_older_meta_is_left_alone(self) -> None:
        for meta in ({"progressToken": 3}, {"io.modelcontextprotocol/clientInfo": {"name": "x", "version": "1"}},
                     {"io.modelcontextprotocol/protocolVersion": "2025-11-25"}):
            with self.subTest(meta=meta):
                status, _, body = self.exchange({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"_meta": meta}},
                                                headers={"MCP-Protocol-Version": "2025-11-25"})
                self.assertEqual((status, body), (200, {"jsonrpc": "2.0", "id": 1, "result": {}}))

    def test_mirrored_headers_on_an_older_request_change_nothing(self) -> None:
        status, _, body = self.exchange({"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                        headers={"MCP-Protocol-Version": "2025-11-25", "Mcp-Method": "tools/call",
                                                 "Mcp-Name": "x"})
        self.assertEqual((status, body["result"]), (200, {}))

