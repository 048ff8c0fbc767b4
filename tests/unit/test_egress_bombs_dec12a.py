"""Compression bombs in a declared Content-Encoding, answers and uploads: what gzip or deflate
inflates to is bounded (past a floor, a ratio to the bytes as sent), streamed or held, in one
layer or several, an undeclared gzip inside a declared one too; a bomb stops as a ``scan-limit``
naming the ratio, and large, highly compressible but real answers and uploads (NDJSON, logs, a
.tar.gz of sources) pass whole. The bounds are lowered here so the bombs stay small."""

from __future__ import annotations

import copy
import gzip
import json
import random
import zlib
from unittest import mock

from bot_bottle.sidecar.dlp import answer_stream
from bot_bottle.sidecar.dlp.stream import Inflow
from bot_bottle.sidecar.egress import scanning, stream_method
from bot_bottle.sidecar.egress.dlp_adapter import DlpOutbound
from tests._requires import requires
from tests.unit import test_egress_stream_encoded_dec06c as encoded
from tests.unit.test_egress_bodies_dec08a import ECHOED, tar_gz
from tests.unit.test_egress_dlp_adapter import POLICY, request as upload_request
from tests.unit.test_egress_gzip_dec09c import MB, STREAMED, StreamCase, lines, request
from tests.unit.test_sidecar_addon import POLICY as ADDON_POLICY, AddonCase, addon_mod

RATIO = 200  # Inflow.RATIO, the bound on what a declared encoding inflates to
BOMB_LABEL = f"scan-limit (the gzip answer inflates to more than {RATIO} times its size)"
FLOOR = MB  # the floor the tests lower the bound to: a bomb of a few MiB passes it


def ndjson(count: int, seed: int = 5) -> bytes:
    """Records of a log export: the same keys, ids, times and paths that change (about 10 times
    smaller gzipped)."""
    rng = random.Random(seed)
    return b"".join(json.dumps({"id": k, "ts": 1765000000 + k, "level": "info", "status": 200,
                                "path": f"/api/items/{rng.randrange(500)}", "ms": rng.randrange(90)}).encode() + b"\n"
                    for k in range(count))


def repeated_records(count: int) -> bytes:
    """NDJSON records alike but for their id (about 70 times smaller gzipped)."""
    rest = (b'"status":"ok","level":"info","msg":"request served","service":"api","region":"eu-west-1",'
            b'"version":"2.14.3","tags":["prod","web","blue"],"agent":"Mozilla/5.0 (X11; Linux x86_64)"}\n')
    return b"".join(b'{"id":%d,' % k + rest for k in range(count))


def sources_tar_gz() -> bytes:
    return tar_gz({f"pkg/mod{k}.py": b"def f%d(x):\n    return x * %d  # scaled\n" % (k, k) * 400 for k in range(60)}
                  | {"pkg/README.md": lines(2_000), "pkg/data.json": ndjson(3_000)})


def deflate(data: bytes) -> bytes:
    return zlib.compress(data, 9)


def lowered(floor: int = FLOOR):
    """The declared bound's floor lowered, for answers (its ratio kept)."""
    return mock.patch.object(answer_stream, "DECLARED_FLOOR", floor, create=True)


class StreamedDeclaredBombTest(StreamCase):
    """A streamed answer with a Content-Encoding: past the floor, more than the ratio times the
    bytes sent stops it."""

    def assert_bomb_stopped(self, body: bytes, plan, out: bytes, label: str = BOMB_LABEL) -> None:
        self.assertTrue(plan.stopped)
        self.assertEqual(plan.labels, [label])
        self.assertLess(len(out), len(body))
        self.assertTrue(body.startswith(out))

    def test_a_gzip_or_deflate_bomb_is_stopped_as_a_scan_limit(self) -> None:
        for coding, pack, inside in (("gzip", gzip.compress, b"a" * (12 * MB)),
                                     ("deflate", deflate, bytes(12 * MB)),
                                     ("x-gzip", gzip.compress, b"[" + b"null," * (2 * MB) + b"null]")):
            body = pack(inside)
            for length, hold in ((STREAMED, True), (None, False)):
                with self.subTest(coding=coding, chunked=length is None), lowered():
                    plan, out = self.stream(body, headers=(("Content-Encoding", coding),), length=length, hold=hold)
                    self.assert_bomb_stopped(body, plan, out, BOMB_LABEL.replace("gzip", coding))

    def test_a_bomb_in_layers_is_measured_against_the_bytes_sent(self) -> None:
        # Each layer alone inflates a few hundred times at most; together a million.
        inside = bytes(48 * MB)
        for headers, body in (((("Content-Encoding", "gzip, gzip"),), gzip.compress(gzip.compress(inside))),
                              ((("Content-Encoding", "gzip"),) * 2, gzip.compress(gzip.compress(inside))),
                              ((("Content-Encoding", "deflate, gzip, gzip"),),
                               gzip.compress(gzip.compress(deflate(inside))))):
            with self.subTest(headers=headers), lowered():
                plan, out = self.stream(body, headers=headers, chunk=1024)
                self.assertTrue(plan.stopped)
                self.assertEqual(len(plan.labels), 1)
                self.assertTrue(plan.labels[0].startswith("scan-limit (the ")
                                and plan.labels[0].endswith(f"inflates to more than {RATIO} times its size)"),
                                plan.labels)
                self.assertTrue(body.startswith(out))

    def test_an_undeclared_gzip_bomb_inside_a_declared_gzip(self) -> None:
        # The inner gzip's own bound (16 MiB, then 100 times what it is given) lets 12 MiB
        # through; the declared layer's, against the bytes sent, does not.
        body = gzip.compress(gzip.compress(b"a" * (12 * MB)))
        with lowered():
            plan, out = self.stream(body, headers=(("Content-Encoding", "gzip"),))
        self.assert_bomb_stopped(body, plan, out)

    def test_an_echo_before_the_bound_is_still_what_stops_it(self) -> None:
        body = gzip.compress(b"key " + ECHOED.encode() + b"\n" + b"a" * (12 * MB))
        with lowered():
            plan, _ = self.stream(body, headers=(("Content-Encoding", "gzip"),))
        self.assertTrue(plan.stopped)
        self.assertIn("known-secret:PROMPTED", plan.labels)


class StreamedDeclaredLookAlikeTest(StreamCase):
    """Real answers, highly compressible or large, pass whole and byte for byte."""

    def test_ndjson_and_logs_pass_under_a_lowered_floor(self) -> None:
        # About 10, 70 and 4 times smaller gzipped: below the ratio, whatever the floor.
        for inside in (ndjson(150_000), repeated_records(100_000), lines(200_000)):
            for coding, pack in (("gzip", gzip.compress), ("deflate", deflate)):
                with self.subTest(coding=coding, size=len(inside)), lowered():
                    self.assert_passes(pack(inside), headers=(("Content-Encoding", coding),), chunk=256 * 1024)

    def test_degenerate_json_passes_within_the_floor(self) -> None:
        # The same record repeated (350 times smaller) or an array of nulls (700): past the
        # ratio, within the real floor.
        record = b'{"status":"ok","level":"info","msg":"request served"}\n'
        for inside in (record * (24 * MB // len(record)), b"[" + b"null," * (6 * MB) + b"null]"):
            with self.subTest(size=len(inside)):
                self.assert_passes(gzip.compress(inside), headers=(("Content-Encoding", "gzip"),), chunk=MB)

    def test_a_tar_gz_of_sources_passes_declared_or_not_and_in_two_layers(self) -> None:
        inner = sources_tar_gz()
        with lowered():
            self.assert_passes(inner)
            self.assert_passes(gzip.compress(inner), headers=(("Content-Encoding", "gzip"),))
            self.assert_passes(gzip.compress(gzip.decompress(inner)), headers=(("Content-Encoding", "gzip"),))
            self.assert_passes(gzip.compress(inner), headers=(("Content-Encoding", "gzip, gzip"),))


class HeldDeclaredBombTest(StreamCase):
    """A held answer (its length within the held limit) that inflates past the limit is read to
    its end batch by batch, within the same bound."""

    def scan(self, body: bytes, coding: str) -> scanning.InboundOutcome:
        return self.inbound.scan(scanning.InboundResponse(
            request(None), 200, (("Content-Type", "application/json"), ("Content-Encoding", coding)), body))

    def test_a_held_bomb_is_refused_as_a_scan_limit(self) -> None:
        for coding, pack in (("gzip", gzip.compress), ("deflate", deflate)):
            with self.subTest(coding=coding), lowered():
                outcome = self.scan(pack(b"a" * (20 * MB)), coding)
                self.assertEqual(outcome.action, scanning.BLOCK)
                self.assertEqual(outcome.detectors, (BOMB_LABEL.replace("gzip", coding),))
        with lowered():
            outcome = self.scan(gzip.compress(gzip.compress(bytes(40 * MB))), "gzip, gzip")
        self.assertEqual(outcome.action, scanning.BLOCK)
        self.assertEqual(outcome.detectors, (BOMB_LABEL,))

    def test_a_held_ndjson_export_past_the_limit_passes(self) -> None:
        inside = ndjson(180_000)
        self.assertGreater(len(inside), 16 * MB)
        with lowered():
            outcome = self.scan(gzip.compress(inside), "gzip")
        self.assertEqual((outcome.action, outcome.detectors), (scanning.ALLOW, ()))


def upload(body_headers: tuple[tuple[str, str], ...]) -> scanning.OutboundRequest:
    return upload_request(b"", headers=[("content-type", "application/octet-stream"), ("transfer-encoding", "chunked"),
                                        *body_headers])


def through(plan, body: bytes, chunk: int = 64 * 1024) -> bytes:
    out = bytearray()
    for start in range(0, len(body), chunk):
        out += plan.feed(body[start:start + chunk])
        if plan.blocked:
            return bytes(out)
    return bytes(out + plan.finish())


class StreamedUploadBombTest(StreamCase):
    """A large upload inflated on its way (declared gzip or deflate, or gzip sniffed without a
    header) is bounded as an answer is."""

    def setUp(self) -> None:
        super().setUp()
        self.outbound = DlpOutbound(POLICY, {}, {"DB_PASSWORD": ECHOED})

    def test_a_declared_or_sniffed_bomb_upload_is_refused_as_a_scan_limit(self) -> None:
        for headers, body in (((("Content-Encoding", "gzip"),), gzip.compress(b"a" * (12 * MB))),
                              ((("Content-Encoding", "deflate"),), deflate(bytes(12 * MB))),
                              ((), gzip.compress(b"a" * (12 * MB)))):
            with self.subTest(headers=headers), mock.patch.object(Inflow, "FLOOR", FLOOR, create=True):
                plan = self.outbound.stream_scan(upload(headers), None)
                assert plan is not None
                out = through(plan, body)
                self.assertTrue(plan.blocked)
                self.assertEqual([f.detector for f in plan.findings], ["scan-limit"])
                self.assertLess(len(out), len(body))

    def test_a_two_layer_upload_is_held_and_bounded_by_the_held_limit(self) -> None:
        body = gzip.compress(gzip.compress(bytes(24 * MB)))
        plan = self.outbound.stream_scan(upload((("Content-Encoding", "gzip, gzip"),)), None)
        assert plan is not None
        self.assertEqual(through(plan, body), b"")
        self.assertEqual([f.detector for f in plan.findings], ["scan-limit"])

    def test_a_value_in_the_second_layer_of_an_upload_is_found(self) -> None:
        # Its first bytes are gzip: opened on the way, only the outer layer was read.
        inside = lines(60_000) + b" password=" + ECHOED.encode() + b"\n"
        for coding, body in (("gzip, gzip", gzip.compress(gzip.compress(inside))),
                             ("deflate, gzip", gzip.compress(deflate(inside)))):
            with self.subTest(coding=coding):
                plan = self.outbound.stream_scan(upload((("Content-Encoding", coding),)), None)
                assert plan is not None
                self.assertEqual(through(plan, body), b"")
                self.assertEqual([f.detector for f in plan.findings], ["known-secret"])

    def test_a_clean_two_layer_upload_is_forwarded_whole(self) -> None:
        body = gzip.compress(gzip.compress(ndjson(40_000)))
        plan = self.outbound.stream_scan(upload((("Content-Encoding", "gzip, gzip"),)), None)
        assert plan is not None
        self.assertEqual(through(plan, body), body)
        self.assertFalse(plan.blocked)

    def test_real_uploads_pass_under_a_lowered_floor(self) -> None:
        inside = ndjson(60_000)
        for headers, body in (((("Content-Encoding", "gzip"),), gzip.compress(inside)),
                              ((("Content-Encoding", "deflate"),), deflate(inside)),
                              ((), sources_tar_gz())):
            with self.subTest(headers=headers), mock.patch.object(Inflow, "FLOOR", FLOOR, create=True):
                plan = self.outbound.stream_scan(upload(headers), None)
                assert plan is not None
                self.assertEqual(through(plan, body), body)
                self.assertFalse(plan.blocked)

    def test_the_field_checks_decoder_is_bounded_with_more_room(self) -> None:
        decoder = stream_method.body_decoder("gzip")
        assert decoder is not None
        self.assertEqual((decoder.ratio, decoder.floor), (RATIO, stream_method.DECODER_FLOOR_TIMES * Inflow.FLOOR))
        self.assertGreater(decoder.floor, Inflow.FLOOR)
        with mock.patch.object(Inflow, "FLOOR", FLOOR, create=True):
            decoder = stream_method.body_decoder("gzip")
            assert decoder is not None
            with self.assertRaises(zlib.error):
                for _ in stream_method.decoded(decoder, gzip.compress(bytes(12 * MB)), final=True):
                    pass
            decoder = stream_method.body_decoder("gzip")
            assert decoder is not None
            inside = ndjson(60_000)
            self.assertEqual(b"".join(stream_method.decoded(decoder, gzip.compress(inside), final=True)), inside)


@requires(addon_mod is not None, "mitmproxy (the dev extra)")
class AddonUploadBombTest(AddonCase):
    """Through the proxy's addon: a streamed gzip form that is a bomb is stopped and logged as
    the DLP's scan-limit, not as a body that does not decode."""

    run_context = encoded.StreamedEncodedBodyTest.run_context
    flow = encoded.StreamedEncodedBodyTest.flow
    streamed = encoded.StreamedEncodedBodyTest.streamed

    def setUp(self) -> None:
        super().setUp()
        policy = copy.deepcopy(ADDON_POLICY)
        policy["routes"].append({"host": "forms.example", "ports": [443], "matches": [{"methods": ["POST"]}]})
        self.write_policy(policy)

    def test_a_gzip_form_bomb_is_logged_as_a_scan_limit(self) -> None:
        # Chunks that inflate to at most the floor each (as a real chunk does to at most 256
        # MiB): the field checks, read first, have a floor twice the scan's.
        data = gzip.compress(b"a=" + b"x" * (12 * MB))
        with mock.patch.object(Inflow, "FLOOR", FLOOR, create=True):
            forwarded, log = self.streamed("forms.example", encoded.FORM, "gzip", data, chunk=1024)
        self.assertNotEqual(forwarded, data)
        (line,) = log
        self.assertEqual(line["decision"], "deny")
        self.assertIn("scan-limit", line["reason"])
        self.assertIn("upstream request aborted", line["reason"])


if __name__ == "__main__":
    import unittest

    unittest.main()
