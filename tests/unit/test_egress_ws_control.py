"""The agent's WebSocket control frames (``egress.ws_control``), through mitmproxy's real WebSocket
layer: ping and pong payloads and close reasons are checked before they are relayed (mitmproxy
relays them without any hook); a refused one goes empty, and the addon logs it and closes."""

from __future__ import annotations

import json
import unittest

from bot_bottle.sidecar.egress import ws_control
from tests.unit.test_egress_websocket import SECRET
from tests.unit.test_egress_ws_limit import Relay, frame
from tests.unit.test_sidecar_addon import AddonCase, addon_mod

try:
    from mitmproxy.test import tflow
except ImportError:  # pragma: no cover - AddonCase reports the missing dependency
    tflow = None

PING, PONG, CLOSE = 0x9, 0xA, 0x8


def frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, unmasked payload) of each small frame in ``data``."""
    out = []
    at = 0
    while at < len(data):
        opcode, size, masked = data[at] & 0x0F, data[at + 1] & 0x7F, data[at + 1] & 0x80
        assert size < 126, "small frames only"
        at += 2
        key = data[at:at + 4] if masked else b"\0\0\0\0"
        at += 4 if masked else 0
        out.append((opcode, bytes(b ^ key[i % 4] for i, b in enumerate(data[at:at + size]))))
        at += size
    return out


class ControlFramesTest(unittest.TestCase):
    def setUp(self) -> None:
        self.checked: list[tuple[str, bytes]] = []

        def check(conn, kind: str, payload: bytes) -> bool:
            self.checked.append((kind, payload))
            return b"SECRET" not in payload

        ws_control.install(check)
        self.addCleanup(ws_control.uninstall)

    def test_clean_payloads_pass_as_the_agent_sent_them(self) -> None:
        relay = Relay()
        relay.send(frame(b"hello", opcode=PING) + frame(b"still here", opcode=PONG))
        self.assertEqual(frames(relay.sent_to(relay.context.server)), [(PING, b"hello"), (PONG, b"still here")])
        self.assertEqual(self.checked, [("ping", b"hello"), ("pong", b"still here")])

    def test_a_refused_ping_or_pong_goes_empty(self) -> None:
        relay = Relay()
        relay.send(frame(b"PING:SECRET", opcode=PING) + frame(b"SECRET", opcode=PONG))
        self.assertEqual(frames(relay.sent_to(relay.context.server)), [(PING, b""), (PONG, b"")])

    def test_a_refused_close_reason_goes_and_the_code_stays(self) -> None:
        relay = Relay()
        relay.send(frame((1000).to_bytes(2, "big") + b"bye SECRET", opcode=CLOSE))
        self.assertEqual(self.checked, [("close", b"bye SECRET")])
        self.assertEqual(frames(relay.sent_to(relay.context.server)), [(CLOSE, (1000).to_bytes(2, "big"))])

    def test_an_upstreams_control_frames_are_not_the_agents(self) -> None:
        relay = Relay()
        relay.send(frame(b"SECRET", opcode=PING, masked=False), from_client=False)
        self.assertEqual(self.checked, [])
        self.assertEqual(frames(relay.sent_to(relay.context.client)), [(PING, b"SECRET")])

    def test_an_upstreams_control_frames_go_to_their_own_check(self) -> None:
        upstream: list[tuple[str, bytes]] = []

        def upstream_check(conn, kind: str, payload: bytes) -> bool:
            upstream.append((kind, payload))
            return b"SECRET" not in payload

        ws_control.install(lambda conn, kind, payload: self.fail("the agent's check saw the upstream's frame"),
                           upstream_check)
        relay = Relay()
        relay.send(frame(b"hello", opcode=PING, masked=False) + frame(b"SECRET", opcode=PONG, masked=False)
                   + frame(b"echo SECRET", opcode=PING, masked=False), from_client=False)
        self.assertEqual(frames(relay.sent_to(relay.context.client)), [(PING, b"hello"), (PONG, b""), (PING, b"")])
        self.assertEqual(upstream, [("ping", b"hello"), ("pong", b"SECRET"), ("ping", b"echo SECRET")])

    def test_an_upstreams_refused_close_reason_goes_and_the_code_stays(self) -> None:
        ws_control.install(lambda conn, kind, payload: True, lambda conn, kind, payload: b"SECRET" not in payload)
        relay = Relay()
        relay.send(frame((1000).to_bytes(2, "big") + b"bye SECRET", opcode=CLOSE, masked=False), from_client=False)
        self.assertEqual(frames(relay.sent_to(relay.context.client)), [(CLOSE, (1000).to_bytes(2, "big"))])
        self.assertIsNone(relay.flow.websocket.close_reason)

    def test_uninstalled_mitmproxy_relays_as_before(self) -> None:
        ws_control.uninstall()
        relay = Relay()
        relay.send(frame(b"SECRET", opcode=PING))
        self.assertEqual(frames(relay.sent_to(relay.context.server)), [(PING, b"SECRET")])


class AddonControlFramesTest(AddonCase):
    def loaded_flow(self):
        """The addon loaded (its WebSocket checks installed) and a WebSocket flow to an allowed host."""
        from bot_bottle.sidecar.egress import ws_limit

        self.addon.load(type("Loader", (), {"add_option": lambda *a, **k: None})())
        self.addCleanup(ws_control.uninstall)
        self.addCleanup(ws_limit.uninstall)
        flow = tflow.twebsocketflow()
        flow.request.host = "allowed.example"
        flow.request.headers["host"] = "allowed.example"
        return flow

    def test_a_bottle_secret_in_a_ping_goes_nowhere_and_is_logged_without_it(self) -> None:
        flow = self.loaded_flow()
        sent: list[bytes] = []

        def relay_pings(flow) -> None:
            relay = Relay(flow)
            relay.send(frame(b"hi", opcode=PING) + frame(f"x {SECRET}".encode(), opcode=PING))
            sent.append(relay.sent_to(relay.context.server))

        self.addon.relay_pings = relay_pings
        flow, lines = self.run_hooks(flow, "requestheaders", "websocket_start", "relay_pings", "websocket_end")
        self.assertEqual(frames(sent[0]), [(PING, b"hi"), (PING, b"")])
        (line,) = lines
        self.assertEqual((line["decision"], line["rule"], line["dlp_action"]), ("deny", "dlp-websocket", "block"))
        self.assertEqual(line["detectors"], ["known-secret:PROMPTED"])
        self.assertIn("ping payload", line["reason"])
        self.assertNotIn(SECRET, json.dumps(line))
        self.assertEqual(self.addon._websockets, {})

    def test_a_bottle_secret_an_upstream_pings_back_reaches_the_agent_empty_and_is_logged(self) -> None:
        flow = self.loaded_flow()
        sent: list[bytes] = []

        def relay_pings(flow) -> None:
            relay = Relay(flow)
            relay.send(frame(b"hi", opcode=PING, masked=False)
                       + frame(f"x {SECRET}".encode(), opcode=PONG, masked=False)
                       + frame((1000).to_bytes(2, "big") + SECRET.encode(), opcode=CLOSE, masked=False),
                       from_client=False)
            sent.append(relay.sent_to(relay.context.client))

        self.addon.relay_pings = relay_pings
        flow, lines = self.run_hooks(flow, "requestheaders", "websocket_start", "relay_pings", "websocket_end")
        self.assertEqual(frames(sent[0]), [(PING, b"hi"), (PONG, b""), (CLOSE, (1000).to_bytes(2, "big"))])
        self.assertEqual(len(lines), 2)
        for line in lines:
            self.assertEqual((line["decision"], line["dlp_action"]), ("allow", "redact"))
            self.assertEqual(line["detectors"], ["known-secret:PROMPTED"])
        self.assertNotIn(SECRET, json.dumps(lines))
        self.assertEqual(self.addon._websockets, {})

    def test_a_websocket_never_allowed_lets_no_payload_out(self) -> None:
        flow = tflow.twebsocketflow()
        self.assertFalse(self.addon._websocket_control(flow.client_conn, "ping", b"hello"))
        self.assertFalse(self.addon._websocket_upstream_control(flow.server_conn, "ping", b"hello"))


if __name__ == "__main__":
    unittest.main()
