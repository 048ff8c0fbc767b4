"""WebSocket messages the agent sends pass the DLP scanner: block drops the message and closes the
connection (reason naming the detector, never the value), redact rewrites it, and every hit is
logged."""

from __future__ import annotations

import base64
import json
import unittest

from bot_bottle.sidecar.egress import scanning
from bot_bottle.sidecar.egress.dlp_adapter import DlpOutbound
from bot_bottle.sidecar.egress.policy import Policy
from tests.unit.test_sidecar_addon import AddonCase, addon_mod

SECRET = "prompted-secret-value"
AWS_ID = "AKIAQ3EGRTHZ5SYXWN7K"

try:
    from mitmproxy import websocket
    from mitmproxy.test import tflow
    from wsproto.frame_protocol import Opcode
except ImportError:  # pragma: no cover - AddonCase reports the missing dependency
    websocket = None


def ws_request(mode: str | None = None, internal: str | None = None) -> scanning.OutboundRequest:
    return scanning.OutboundRequest(method="GET", scheme="https", host="chat.example", port=443, path="/ws",
                                    headers=(), body=b"", route_index=None,
                                    dlp={"outbound_on_match": mode} if mode else {}, internal_service=internal)


class ScanMessageTest(unittest.TestCase):
    def setUp(self) -> None:
        self.dlp = DlpOutbound(Policy(), {}, {"PROMPTED": SECRET})

    def test_clean_message_passes(self) -> None:
        self.assertEqual(self.dlp.scan_message(ws_request(), b'{"say": "hello"}').action, scanning.ALLOW)

    def test_block_names_the_detector_never_the_value(self) -> None:
        outcome = self.dlp.scan_message(ws_request(), json.dumps({"k": AWS_ID}).encode())
        self.assertEqual(outcome.action, scanning.BLOCK)
        self.assertEqual(outcome.detectors, ("aws-access-key-id",))
        self.assertNotIn(AWS_ID, outcome.reason)

    def test_bottle_secret_in_base64_inside_json(self) -> None:
        import base64

        body = json.dumps({"data": base64.b64encode(SECRET.encode()).decode()}).encode()
        outcome = self.dlp.scan_message(ws_request(), body)
        self.assertEqual(outcome.action, scanning.BLOCK)
        self.assertIn("known-secret:PROMPTED (base64)", outcome.detectors)

    def test_redact_rewrites_the_message(self) -> None:
        outcome = self.dlp.scan_message(ws_request("redact"), f"token {SECRET} end".encode())
        self.assertEqual(outcome.action, scanning.REDACT)
        self.assertNotIn(SECRET.encode(), outcome.replacement.body)
        self.assertIn(b"[REDACTED:PROMPTED]", outcome.replacement.body)
        self.assertTrue(outcome.replacement.body.startswith(b"token "))

    def test_supervise_holds(self) -> None:
        self.assertEqual(self.dlp.scan_message(ws_request("supervise"), SECRET.encode()).action, scanning.HOLD)

    def test_internal_services_are_not_scanned(self) -> None:
        self.assertEqual(self.dlp.scan_message(ws_request(internal="git-gate"), SECRET.encode()).action,
                         scanning.ALLOW)


class AddonWebSocketTest(AddonCase):
    def ws_flow(self, *contents: str, from_client: bool = True):
        flow = tflow.twebsocketflow()
        flow.request.host = "allowed.example"
        flow.request.headers["host"] = "allowed.example"
        flow.websocket.messages = [websocket.WebSocketMessage(Opcode.TEXT, from_client, c.encode()) for c in contents]
        return flow

    def send(self, flow, **options):
        """The upgrade request is judged, then the last message passes the hook."""
        return self.run_hooks(flow, "requestheaders", "websocket_message", **options)

    def test_clean_message_passes_untouched(self) -> None:
        flow, lines = self.send(self.ws_flow("hello"))
        self.assertFalse(flow.websocket.messages[-1].dropped)
        self.assertEqual(lines, [])

    def test_secret_is_dropped_and_logged_without_the_value(self) -> None:
        flow, lines = self.send(self.ws_flow("hello", f"exfil {SECRET}"))
        self.assertTrue(flow.websocket.messages[-1].dropped)
        (line,) = lines
        self.assertEqual((line["decision"], line["rule"], line["dlp_action"]), ("deny", "dlp-websocket", "block"))
        self.assertEqual(line["detectors"], ["known-secret:PROMPTED"])
        self.assertIn("connection closed", line["reason"])
        self.assertNotIn(SECRET, json.dumps(line))

    def test_a_bottle_secret_an_upstream_message_echoes_is_masked_and_logged(self) -> None:
        encoded = base64.b64encode(SECRET.encode()).decode()
        flow, lines = self.send(self.ws_flow(f'{{"echo": "{SECRET}", "again": "{encoded}"}}', from_client=False))
        message = flow.websocket.messages[-1]
        self.assertFalse(message.dropped)
        self.assertTrue(message.content.startswith(b'{"echo": "'))
        self.assertNotIn(SECRET.encode(), message.content)
        self.assertNotIn(encoded.encode(), message.content)
        (line,) = lines
        self.assertEqual((line["decision"], line["dlp_action"]), ("allow", "redact"))
        self.assertEqual(line["detectors"], ["known-secret:PROMPTED", "known-secret:PROMPTED (base64)"])
        self.assertNotIn(SECRET, json.dumps(line))

    def test_a_clean_upstream_message_passes_untouched_and_unlogged(self) -> None:
        flow, lines = self.send(self.ws_flow("the weather is fine", from_client=False))
        self.assertEqual(flow.websocket.messages[-1].content, b"the weather is fine")
        self.assertEqual(lines, [])

    def test_a_large_upstream_message_is_searched_on_the_scan_worker(self) -> None:
        sizes = self.record_scan_sizes()
        big = "x" * (300 * 1024) + SECRET
        flow, lines = self.send(self.ws_flow(big, from_client=False))
        self.assertEqual(sizes, [len(big)])
        self.assertEqual(flow.websocket.messages[-1].content, b"x" * (300 * 1024) + b"[REDACTED:PROMPTED]")
        self.assertEqual(lines[0]["dlp_action"], "redact")

    def test_redact_route_rewrites_the_message(self) -> None:
        policy = json.loads(json.dumps(addon_mod_policy()))
        policy["routes"][0]["dlp"] = {"outbound_on_match": "redact"}
        self.write_policy(policy)
        flow, lines = self.send(self.ws_flow(f"exfil {SECRET}"))
        message = flow.websocket.messages[-1]
        self.assertFalse(message.dropped)
        self.assertEqual(message.content, b"exfil [REDACTED:PROMPTED]")
        self.assertEqual(lines[0]["dlp_action"], "redact")

    def test_supervise_route_refuses_the_message(self) -> None:
        policy = json.loads(json.dumps(addon_mod_policy()))
        policy["routes"][0]["dlp"] = {"outbound_on_match": "supervise"}
        self.write_policy(policy)
        flow, lines = self.send(self.ws_flow(f"exfil {SECRET}"))
        self.assertTrue(flow.websocket.messages[-1].dropped)
        self.assertEqual(lines[0]["rule"], "dlp-websocket")

    def test_the_flow_does_not_keep_every_message_of_a_long_connection(self) -> None:
        flow = self.ws_flow(*[f"message {i}" for i in range(1000)])
        flow, _ = self.send(flow)
        self.assertEqual([m.content for m in flow.websocket.messages], [b"message 999"])
        flow, _ = self.send(self.ws_flow(*[f"answer {i}" for i in range(50)], from_client=False))
        self.assertEqual(len(flow.websocket.messages), 1)

    def test_close_reason_fits_a_close_frame(self) -> None:
        reason = addon_mod._close_reason("x" * 100 + "é" * 40)
        self.assertLessEqual(len(reason.encode("utf-8")), 123)


def addon_mod_policy() -> dict:
    from tests.unit.test_sidecar_addon import POLICY

    return POLICY


if __name__ == "__main__":
    unittest.main()
