"""A bound on one WebSocket message (``egress.ws_limit``), through mitmproxy's real WebSocket layer:
messages within it relayed as they came, one past it closing both sides with 1009 at once
(mitmproxy's own assembly took 18 s of the proxy's event loop for 64 MB)."""

from __future__ import annotations

import io
import json
import unittest
from contextlib import redirect_stdout

from bot_bottle.sidecar.egress import ws_limit
from bot_bottle.sidecar.egress.ws_limit import MessageParts, MessageTooBig
from tests.unit.test_sidecar_addon import AddonCase, addon_mod

LIMIT = 1 << 20


def frame(payload: bytes, *, fin: bool = True, opcode: int = 2, masked: bool = True) -> bytes:
    """One frame as the agent (masked, with a zero key: the payload as is) or an upstream sends it."""
    head = bytes([(0x80 if fin else 0) | opcode])
    mask = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        head += bytes([mask | n])
    elif n < 65536:
        head += bytes([mask | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([mask | 127]) + n.to_bytes(8, "big")
    return head + (b"\0\0\0\0" if masked else b"") + payload


def close_payload(data: bytes) -> bytes:
    """The payload of the close frame ``data`` ends with (unmasked when masked: towards the upstream)."""
    at = data.rfind(b"\x88")
    while at >= 0:
        # A masked payload is random bytes: 0x88 can be its last one, with no length after it.
        size, masked = (data[at + 1] & 0x7F, data[at + 1] & 0x80) if at + 1 < len(data) else (-1, 0)
        body = data[at + 2:]
        if 0 <= size < 126 and len(body) == size + (4 if masked else 0):
            if masked:
                key, body = body[:4], body[4:]
                body = bytes(b ^ key[i % 4] for i, b in enumerate(body))
            return body
        at = data.rfind(b"\x88", 0, at)
    return b""


class Relay:
    """mitmproxy's WebsocketLayer for one test flow, its hooks answered at once."""

    def __init__(self, flow=None) -> None:
        from mitmproxy import options
        from mitmproxy.proxy import context, events
        from mitmproxy.proxy.layers import websocket as ws_layers
        from mitmproxy.test import tflow

        self.events = events
        self.flow = flow if flow is not None else tflow.twebsocketflow()
        self.flow.websocket.messages.clear()
        self.context = context.Context(self.flow.client_conn, options.Options())
        self.context.server = self.flow.server_conn
        self.layer = ws_layers.WebsocketLayer(self.context, self.flow)
        self.commands: list = []
        self.drive(events.Start())

    def drive(self, event) -> None:
        from mitmproxy.proxy import commands

        pending = [event]
        while pending:
            for command in self.layer.handle_event(pending.pop(0)):
                self.commands.append(command)
                if getattr(command, "blocking", False):
                    done = self.events.HookCompleted if isinstance(command, commands.StartHook) else self.events.CommandCompleted
                    pending.append(done(command, None))

    def send(self, data: bytes, *, from_client: bool = True, piece: int = 65536) -> None:
        conn = self.context.client if from_client else self.context.server
        for start in range(0, len(data), piece):
            self.drive(self.events.DataReceived(conn, data[start:start + piece]))

    def names(self) -> list[str]:
        return [type(c).__name__ for c in self.commands]

    def sent_to(self, conn) -> bytes:
        return b"".join(c.data for c in self.commands if type(c).__name__ == "SendData" and c.connection is conn)


class MessagePartsTest(unittest.TestCase):
    def test_the_frame_being_assembled_grows_in_place_within_the_limit(self) -> None:
        parts = MessageParts([b""], limit=10)
        first = parts[-1]
        parts[-1] += b"abcd"
        self.assertIs(parts[-1], first)  # a bytearray, grown in place
        parts.append(b"")
        parts[-1] += b"efghij"
        self.assertEqual(b"".join(parts), b"abcdefghij")
        with self.assertRaises(MessageTooBig) as caught:
            parts[-1] += b"k"
        self.assertEqual(caught.exception.size, 11)

    def test_earlier_frames_are_not_rewritten(self) -> None:
        parts = MessageParts([b"ab", b""], limit=10)
        with self.assertRaises(TypeError):
            parts[0] = b"xy"


class WebSocketLimitTest(unittest.TestCase):
    def setUp(self) -> None:
        self.refused: list[tuple[bool, int]] = []
        ws_limit.install(LIMIT, lambda flow, from_client, size: self.refused.append((from_client, size)))
        self.addCleanup(ws_limit.uninstall)

    def test_messages_within_the_limit_pass_as_they_came(self) -> None:
        relay = Relay()
        parts = [b"a" * 1000, b"b" * 300_000, b"c" * 700_000]  # one message in three frames, just under 1 MiB
        data = (frame(parts[0], fin=False) + frame(parts[1], fin=False, opcode=0)
                + frame(parts[2], opcode=0) + frame(b"hello", opcode=1))
        relay.send(data, piece=4096)
        self.assertEqual([m.content for m in relay.flow.websocket.messages], [b"".join(parts), b"hello"])
        self.assertEqual(self.refused, [])
        self.assertNotIn("CloseConnection", relay.names())
        # Forwarded with the same frames (the upstream sees what the agent sent).
        to_server = relay.sent_to(relay.context.server)
        self.assertGreater(len(to_server), sum(map(len, parts)))

    def test_a_message_past_the_limit_closes_both_sides_with_1009(self) -> None:
        for from_client in (True, False):
            with self.subTest(from_client=from_client):
                self.refused.clear()
                relay = Relay()
                relay.send(frame(bytes(4 * LIMIT), masked=from_client), from_client=from_client)
                self.assertEqual(len(self.refused), 1)
                self.assertEqual(self.refused[0][0], from_client)
                self.assertLessEqual(self.refused[0][1], LIMIT + 65536)
                self.assertEqual(relay.flow.websocket.messages, [])  # never assembled, never relayed
                self.assertEqual(relay.flow.websocket.close_code, 1009)
                self.assertEqual(relay.names().count("CloseConnection"), 2)
                self.assertIn("WebsocketEndHook", relay.names())
                for conn in (relay.context.client, relay.context.server):
                    self.assertEqual(close_payload(relay.sent_to(conn)), (1009).to_bytes(2, "big") + b"message too big")
                self.assertLess(len(relay.sent_to(relay.context.server if from_client else relay.context.client)), 1000)
                before = len(relay.commands)
                relay.send(b"\x82\x05hello", from_client=not from_client)  # nothing more is read
                self.assertEqual(len(relay.commands), before)

    def test_uninstalled_mitmproxy_assembles_as_before(self) -> None:
        ws_limit.uninstall()
        relay = Relay()
        relay.send(frame(bytes(2 * LIMIT)))
        self.assertEqual([len(m.content) for m in relay.flow.websocket.messages], [2 * LIMIT])
        self.assertEqual(self.refused, [])

    def test_many_small_frames_count_together(self) -> None:
        relay = Relay()
        piece = bytes(60_000)
        data = frame(piece, fin=False) + b"".join(frame(piece, fin=False, opcode=0) for _ in range(40))
        relay.send(data)
        self.assertEqual(len(self.refused), 1)
        self.assertEqual(relay.flow.websocket.close_code, 1009)


class AddonWebSocketLimitTest(AddonCase):
    def test_loading_the_addon_bounds_messages_at_the_held_limit_and_logs_the_refusal(self) -> None:
        from mitmproxy.proxy.layers import websocket as ws_layers

        self.addon.load(type("Loader", (), {"add_option": lambda *a, **k: None})())
        self.addCleanup(ws_limit.uninstall)
        self.assertEqual(ws_layers.WebsocketLayer.bottle_ws_limit["limit"], addon_mod.MAX_HELD_BODY)
        flow = self.request_flow("allowed.example", port=443, scheme="https", path="/ws",
                                 headers=[("Host", "allowed.example")])
        flow, _ = self.run_hooks(flow, "requestheaders", "request")
        out = io.StringIO()
        with redirect_stdout(out):
            self.addon._websocket_too_big(flow, True, addon_mod.MAX_HELD_BODY + 5)
        (record,) = [r for r in map(json.loads, out.getvalue().splitlines()) if r.get("rule") == addon_mod.RULE_DLP_WEBSOCKET]
        self.assertEqual(record["decision"], "deny")
        self.assertEqual(record["detectors"], ["scan-limit"])
        self.assertIn("from the agent", record["reason"])
        self.assertEqual(record["request_bytes"], addon_mod.MAX_HELD_BODY + 5)


if __name__ == "__main__":
    unittest.main()
