"""Streamed answers in layers of Content-Encoding ("gzip, gzip", two header lines, "deflate,
gzip"): too large to hold, each layer is inflated in order and the answer delivered as sent once
what it encodes was scanned; an echoed secret deep inside stops it, a layer that does not inflate
stops it as a scan-limit, and br or zstd among the layers (or more than three layers) is still
refused before its first byte. Through ``DlpInbound`` with the real DLP engine."""

from __future__ import annotations

import gzip
import random
import unittest
import zlib

from bot_bottle.sidecar.dlp.answer_stream import AnswerStream, InflatedAnswer
from bot_bottle.sidecar.egress import scanning
from bot_bottle.sidecar.egress.dlp_adapter import DlpInbound
from tests.unit.test_egress_bodies_dec08a import ECHO_MARK, ECHOED
from tests.unit.test_egress_gzip_dec09c import LABEL, MB, STREAMED, StreamCase, lines, request

GZIP_TWICE = ((("Content-Encoding", "gzip, gzip"),), (("Content-Encoding", "gzip"),) * 2,
              (("Content-Encoding", "x-gzip"), ("Content-Encoding", "gzip")))


def deflate_then_gzip(data: bytes) -> bytes:
    return gzip.compress(zlib.compress(data, 1), compresslevel=1)


def gzip_twice(data: bytes) -> bytes:
    return gzip.compress(gzip.compress(data, compresslevel=1), compresslevel=1)


def big_text(size: int, seed: int = 7) -> bytes:
    """Text that compresses about as a log does, ``size`` bytes or a little more."""
    count = size // 38 + 1
    return lines(count, seed)


class StreamedLayersTest(StreamCase):
    def assert_stopped(self, body: bytes, plan: AnswerStream, out: bytes, label: str) -> None:
        self.assertTrue(plan.stopped)
        self.assertIn(label, " ".join(plan.labels))
        self.assertLess(len(out), len(body))
        self.assertTrue(body.startswith(out))

    def test_a_clean_20_mib_two_layer_answer_passes_byte_for_byte(self) -> None:
        inside = big_text(20 * MB)
        for headers, body in ((GZIP_TWICE[0], gzip_twice(inside)),
                              ((("Content-Encoding", "deflate, gzip"),), deflate_then_gzip(inside))):
            with self.subTest(headers=headers):
                self.assert_passes(body, headers=headers, chunk=256 * 1024)

    def test_two_header_lines_or_x_gzip_pass_and_three_layers_too(self) -> None:
        inside = big_text(3 * MB, 2)
        body = gzip_twice(inside)
        for headers in GZIP_TWICE[1:]:
            with self.subTest(headers=headers):
                self.assert_passes(body, headers=headers)
        three = gzip.compress(gzip_twice(inside))
        self.assert_passes(three, headers=(("Content-Encoding", "gzip, gzip, gzip"),))

    def test_a_chunked_two_layer_answer_with_no_room_to_hold_it_passes(self) -> None:
        body = gzip_twice(big_text(3 * MB, 4))
        self.assert_passes(body, headers=GZIP_TWICE[0], length=None, hold=False, chunk=MB)

    def test_an_echo_deep_inside_stops_the_answer(self) -> None:
        inside = big_text(12 * MB) + b"Authorization: Bearer " + ECHOED.encode() + b"\n" + big_text(6 * MB, 3)
        for headers, body in ((GZIP_TWICE[0], gzip_twice(inside)), (GZIP_TWICE[1], gzip_twice(inside)),
                              ((("Content-Encoding", "deflate, gzip"),), deflate_then_gzip(inside))):
            with self.subTest(headers=headers):
                plan, out = self.stream(body, headers=headers, chunk=128 * 1024)
                self.assert_stopped(body, plan, out, LABEL)
                self.assertGreater(len(out), 0)  # what came before it was delivered once scanned
                self.assertNotIn(ECHOED.encode(), self.readable(out, headers))

    def readable(self, out: bytes, headers: tuple[tuple[str, str], ...]) -> bytes:
        """What the agent can inflate of a stopped answer's bytes, both layers undone as far as
        they go."""
        first = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(out)
        if "deflate" in headers[0][1]:
            return zlib.decompressobj().decompress(first)
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(first)

    def test_an_echo_cut_by_tiny_chunks_or_in_a_later_member_stops_it(self) -> None:
        inner = gzip.compress(lines(3_000)) + gzip.compress(b"x" * 50 + ECHOED.encode() + b"y" * 50)
        body = gzip.compress(inner)
        for first, chunk in (((1, 1, 1), 5), ((), 4096)):
            with self.subTest(chunk=chunk):
                plan, out = self.stream(body, headers=GZIP_TWICE[0], chunks=first, chunk=chunk)
                self.assert_stopped(body, plan, out, LABEL)

    def test_br_or_zstd_among_the_layers_is_still_refused(self) -> None:
        body = gzip_twice(lines(20_000))
        for coding in ("gzip, br", "br, gzip", "zstd, gzip", "gzip, identity", "gzip, gzip, gzip, gzip"):
            with self.subTest(coding=coding):
                plan, out = self.stream(body, headers=(("Content-Encoding", coding),))
                self.assertEqual((plan.stopped, out, plan.delivered), (True, b"", 0))
                self.assertTrue(plan.labels[0].startswith("scan-limit ("), plan.labels)

    def test_a_layer_that_does_not_inflate_stops_as_a_scan_limit(self) -> None:
        noise = random.Random(5).randbytes(2 * MB)
        # The outer gzip is sound; what it holds claims to be gzip and is not past its header.
        inner = gzip.compress(lines(40_000))
        broken = inner[:4000] + noise + inner[4000:]
        for body in (gzip.compress(broken), broken):
            with self.subTest(outer_sound=body is not broken):
                plan, out = self.stream(body, headers=GZIP_TWICE[0])
                self.assertTrue(plan.stopped)
                self.assertTrue(any(label.startswith("scan-limit (the gzip answer does not inflate")
                                    for label in plan.labels), plan.labels)
                self.assertLess(len(out), len(body))

    def test_the_held_answer_is_still_judged_whole_and_masked_in_both(self) -> None:
        text = b"echo: " + ECHOED.encode() + b"\n" + lines(500)
        body = gzip_twice(text)
        plan, out = self.stream(body, headers=GZIP_TWICE[0], length=None, chunk=7)
        self.assertFalse(plan.stopped)
        self.assertEqual(plan.masked, 1)
        self.assertEqual(gzip.decompress(gzip.decompress(out)), text.replace(ECHOED.encode(), ECHO_MARK))

    def test_what_is_held_stays_bounded_through_the_layers(self) -> None:
        body = gzip_twice(big_text(20 * MB, 9))
        plan = self.inbound.stream_answer(
            scanning.InboundResponse(request(), 200, GZIP_TWICE[0], b""), STREAMED)
        assert isinstance(plan, InflatedAnswer) and isinstance(plan.plan, InflatedAnswer)
        most = 0
        out = bytearray()
        for start in range(0, len(body), 256 * 1024):
            out += plan.feed(body[start:start + 256 * 1024])
            most = max(most, self.held_bytes(plan))
        out += plan.finish()
        self.assertEqual(bytes(out), body)
        # A batch and its overlap in the scan, and about as much queued in each layer: a few
        # MiB, not the 20 MiB the answer inflates to.
        self.assertLess(most, 6 * MB)

    @staticmethod
    def held_bytes(answer: InflatedAnswer | AnswerStream) -> int:
        held = 0
        while isinstance(answer, InflatedAnswer):
            held += sum(len(chunk) for chunk, _ in answer._inflow.chunks)
            answer = answer.plan
        return held + len(answer._pending)


class HeldLayersPastLimitTest(unittest.TestCase):
    """A held answer in two layers that inflates past the held limit is read to its end, as a
    single layer is, not only its first part."""

    def setUp(self) -> None:
        self.inbound = DlpInbound({}, {"PROMPTED": ECHOED})

    def scan(self, body: bytes, coding: str) -> scanning.InboundOutcome:
        return self.inbound.scan(scanning.InboundResponse(
            request(None), 200, (("Content-Type", "text/plain"), ("Content-Encoding", coding)), body))

    def test_an_echo_past_the_limit_refuses_it_and_a_clean_one_passes(self) -> None:
        text = b"a" * (17 * MB)
        for coding, pack in (("gzip, gzip", gzip_twice), ("deflate, gzip", deflate_then_gzip)):
            with self.subTest(coding=coding):
                outcome = self.scan(pack(text + b" key " + ECHOED.encode() + b"\n"), coding)
                self.assertEqual(outcome.action, scanning.BLOCK)
                self.assertIn(LABEL, outcome.detectors)
                self.assertEqual(self.scan(pack(text + b" no key here\n"), coding).action, scanning.ALLOW)


if __name__ == "__main__":
    unittest.main()
