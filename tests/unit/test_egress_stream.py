"""Streamed uploads: which requests stream (``DlpOutbound.stream_scan``), and what the addon does
with them (headers judged and credentials injected before the body, chunks scanned on their
way, a hit mid-stream stops the upload and is logged)."""

from __future__ import annotations

import json
import unittest

from bot_bottle.sidecar.egress import scanning
from bot_bottle.sidecar.egress.dlp_adapter import DlpOutbound
from bot_bottle.sidecar.egress.policy import Policy
from tests.unit.test_sidecar_addon import AGENT_TOKEN, REAL_TOKEN, AddonCase, addon_mod

MB = 1024 * 1024
SECRET = "prompted-secret-value"


def outbound(headers, *, dlp=None, internal=None, route_index=0) -> scanning.OutboundRequest:
    return scanning.OutboundRequest(method="POST", scheme="https", host="allowed.example", port=443,
                                    path="/upload", headers=tuple(headers), body=b"", route_index=route_index,
                                    dlp=dlp or {}, internal_service=internal)


class StreamChoiceTest(unittest.TestCase):
    def setUp(self) -> None:
        self.dlp = DlpOutbound(Policy(), {}, {"PROMPTED": SECRET})

    def test_large_plain_upload_streams(self) -> None:
        for headers in ([], [("content-type", "application/octet-stream")], [("content-type", "text/plain")]):
            with self.subTest(headers=headers):
                plan = self.dlp.stream_scan(outbound(headers), 16 * MB)
                self.assertIsNotNone(plan)
                self.assertFalse(plan.whole)

    def test_small_bodies_are_buffered(self) -> None:
        self.assertIsNone(self.dlp.stream_scan(outbound([]), 2 * MB))  # up to deep_limit: full scan
        self.assertIsNone(self.dlp.stream_scan(outbound([]), 10))

    def test_no_body_does_not_stream(self) -> None:
        self.assertIsNone(self.dlp.stream_scan(outbound([]), None))

    def test_chunked_plain_streams_and_chunked_structured_is_held_whole(self) -> None:
        plan = self.dlp.stream_scan(outbound([("transfer-encoding", "chunked")]), None)
        self.assertFalse(plan.whole)
        self.assertEqual(plan.hold_upto, 2 * MB)  # a small chunked body is judged whole
        self.assertEqual(self.dlp.stream_scan(outbound([]), 16 * MB).hold_upto, 0)
        plan = self.dlp.stream_scan(outbound([("transfer-encoding", "chunked"),
                                              ("content-type", "application/json")]), None)
        self.assertTrue(plan.whole)

    def test_only_block_routes_stream(self) -> None:
        for mode in ("redact", "supervise"):
            with self.subTest(mode=mode):
                self.assertIsNone(self.dlp.stream_scan(outbound([], dlp={"outbound_on_match": mode}), 16 * MB))
        self.assertIsNotNone(self.dlp.stream_scan(outbound([], dlp={"outbound_on_match": "block"}), 16 * MB))

    def test_compressed_bodies_are_buffered(self) -> None:
        self.assertIsNone(self.dlp.stream_scan(outbound([("content-encoding", "gzip")]), 16 * MB))
        self.assertIsNotNone(self.dlp.stream_scan(outbound([("content-encoding", "identity")]), 16 * MB))

    def test_structured_types_stream_only_past_the_structured_limit(self) -> None:
        for mime in ("application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            with self.subTest(mime=mime):
                self.assertIsNone(self.dlp.stream_scan(outbound([("content-type", mime)]), 4 * MB))
                plan = self.dlp.stream_scan(outbound([("content-type", mime)]), 9 * MB)
                self.assertFalse(plan.whole)  # read as text by the full scan as well
                self.assertFalse(plan.sniff_json)

    def test_internal_services_are_not_streamed(self) -> None:
        self.assertIsNone(self.dlp.stream_scan(outbound([], internal="git-gate"), 16 * MB))

    def test_the_stream_scanner_knows_the_bottle_secrets(self) -> None:
        plan = self.dlp.stream_scan(outbound([]), 16 * MB)
        plan.batch = 1024
        plan.feed(b"x" * 5000 + SECRET.encode() + b"y" * 5000)
        self.assertTrue(plan.blocked)


def feed_all(flow, data: bytes, chunk: int = 256 * 1024) -> bytes:
    out = bytearray()
    for i in range(0, len(data), chunk):
        out += flow.request.stream(data[i:i + chunk])
    out += flow.request.stream(b"")
    return bytes(out)


def assert_streams_through(case: AddonCase, flow, data: bytes) -> None:
    """``data`` fed through ``flow`` leaves unchanged and the upstream's answer comes back."""
    with case.run_context():
        out = feed_all(flow, data)
    case.assertEqual(out, data)
    flow, _ = case.run_hooks(flow, "request", "upstream", "response")
    case.assertIsNone(flow.metadata.get(addon_mod.STREAM_ABORTED))
    case.assertEqual(flow.response.status_code, 200)


class AddonStreamTest(AddonCase):
    def big_flow(self, host="allowed.example", *, size=16 * MB, headers=None):
        pairs = [("Host", host), ("Content-Length", str(size)), ("Content-Type", "application/octet-stream"),
                 *(headers or [])]
        return self.request_flow(host, port=443, scheme="https", method="POST", path="/upload", headers=pairs)

    def test_large_upload_streams_and_clean_bytes_pass_unchanged(self) -> None:
        data = (b"0123456789abcdef" * (MB // 16)) * 3
        flow, lines = self.run_hooks(self.big_flow(size=len(data)), "requestheaders")
        self.assertTrue(callable(flow.request.stream))
        self.assertIsNone(flow.response)
        assert_streams_through(self, flow, data)

    def test_secret_mid_stream_stops_the_upload_and_is_logged(self) -> None:
        data = b"a" * (5 * MB) + SECRET.encode() + b"b" * (5 * MB)
        flow, _ = self.run_hooks(self.big_flow(size=len(data)), "requestheaders")
        with self.run_context() as out:
            forwarded = feed_all(flow, data)
        self.assertNotIn(SECRET.encode(), forwarded)
        self.assertLess(len(forwarded), 5 * MB + 1)
        self.assertTrue(flow.metadata[addon_mod.STREAM_ABORTED])
        (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
        self.assertEqual((line["decision"], line["rule"], line["dlp_action"]), ("deny", "dlp", "block"))
        self.assertIn("known-secret:PROMPTED", line["detectors"])
        self.assertIn("upstream request aborted", line["reason"])
        self.assertNotIn(SECRET, json.dumps(line))
        # The end of the request does not log it again nor let anything through.
        flow, lines = self.run_hooks(flow, "request", "error")
        self.assertEqual(lines, [])

    def test_a_disguised_secret_in_a_text_upload_stops_it(self) -> None:
        filler = "".join(f"ligne {i} d'un journal ordinaire, rien à voir\n" for i in range(120000)).encode()
        disguises = {
            "spelled out": " ".join(SECRET),
            "zero-width spaces": "\u200b".join(SECRET),
            "a Cyrillic lookalike": SECRET.replace("e", "\u0435", 1),
        }
        for label, text in disguises.items():
            with self.subTest(label):
                data = filler + text.encode() + b"\n" + filler
                flow, _ = self.run_hooks(self.big_flow(size=len(data)), "requestheaders")
                with self.run_context() as out:
                    forwarded = feed_all(flow, data)
                self.assertLess(len(forwarded), len(filler) + 1)
                self.assertTrue(flow.metadata[addon_mod.STREAM_ABORTED])
                (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
                self.assertEqual([d.split(" ")[0] for d in line["detectors"]], ["known-secret:PROMPTED"])
                self.assertNotIn(text, json.dumps(line, ensure_ascii=False))

    def test_credential_is_injected_before_the_body_leaves(self) -> None:
        flow, _ = self.run_hooks(self.big_flow("bearer.example", headers=[("Authorization", f"Bearer {AGENT_TOKEN}")]),
                                 "requestheaders")
        self.assertTrue(callable(flow.request.stream))
        self.assertEqual(flow.request.headers["authorization"], f"Bearer {REAL_TOKEN}")

    def test_secret_in_a_header_of_a_large_upload_is_refused_before_streaming(self) -> None:
        flow, lines = self.run_hooks(self.big_flow(headers=[("X-Note", SECRET)]), "requestheaders")
        self.assertEqual(flow.response.status_code, 403)
        self.assertFalse(flow.request.stream)
        self.assertEqual(lines[0]["rule"], "dlp")

    def test_small_upload_keeps_the_buffered_path(self) -> None:
        flow, _ = self.run_hooks(self.big_flow(size=1000), "requestheaders")
        self.assertFalse(flow.request.stream)

    def run_context(self):
        """The addon configured, stdout captured: for calling the stream callable by hand."""
        import contextlib
        import io
        from contextlib import redirect_stdout

        from mitmproxy.test import taddons

        @contextlib.contextmanager
        def ctx():
            out = io.StringIO()
            with taddons.context(self.addon) as tctx, redirect_stdout(out):
                tctx.configure(self.addon, **self.options())
                yield out

        return ctx()


if __name__ == "__main__":
    unittest.main()
