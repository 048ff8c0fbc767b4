"""A streamed form or JSON body sent with a ``Content-Encoding``: the ``_method`` rule and the
credential field check read it decoded, as the upstream's framework does (and as the buffered
path reads it, ``addon._plain_body``)."""

from __future__ import annotations

import copy
import gzip
import json
import zlib

import brotli

from tests._requires import requires
from tests.unit import test_egress_stream as stream_tests
from tests.unit.test_egress_stream import MB, feed_all
from tests.unit.test_sidecar_addon import POLICY, AddonCase, addon_mod

FORM = "application/x-www-form-urlencoded"


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@requires(addon_mod is not None, "mitmproxy (the dev extra)")
class StreamedEncodedBodyTest(AddonCase):
    run_context = stream_tests.AddonStreamTest.run_context

    def setUp(self) -> None:
        super().setUp()
        policy = copy.deepcopy(POLICY)
        policy["routes"].append({"host": "forms.example", "ports": [443], "matches": [{"methods": ["POST"]}]})
        self.write_policy(policy)

    def flow(self, host: str, content_type: str, encoding: str, *, size: int | None = None, content: bytes = b""):
        framing = ("Content-Length", str(size)) if size is not None else ("Transfer-Encoding", "chunked")
        return self.request_flow(host, port=443, scheme="https", method="POST", path="/items/1", content=content,
                                 headers=[("Host", host), framing, ("Content-Type", content_type),
                                          ("Content-Encoding", encoding)])

    def streamed(self, host: str, content_type: str, encoding: str, data: bytes, *, chunk: int = 256 * 1024,
                 size: int | None = None) -> tuple[bytes, list[dict]]:
        flow, _ = self.run_hooks(self.flow(host, content_type, encoding, size=size), "requestheaders")
        self.assertTrue(callable(flow.request.stream))
        with self.run_context() as out:
            forwarded = feed_all(flow, data, chunk=chunk)
        return forwarded, [json.loads(x) for x in out.getvalue().splitlines()]

    def assert_stopped(self, forwarded: bytes, data: bytes, lines: list[dict], rule: str) -> None:
        self.assertNotEqual(forwarded, data)  # the upstream never gets the whole request
        (line,) = lines
        self.assertEqual((line["decision"], line["rule"]), ("deny", rule))
        self.assertIn("upstream request aborted", line["reason"])
        self.assertNotIn("attacker", json.dumps(line))

    def test_a_gzip_form_asking_for_delete_is_stopped(self) -> None:
        data = gzip.compress(b"a=1&_method=DELETE&b=2")
        for chunk in (1, 5, 1024):
            with self.subTest(chunk=chunk):
                forwarded, lines = self.streamed("forms.example", FORM, "gzip", data, chunk=chunk)
                self.assert_stopped(forwarded, data, lines, "match")
                self.assertIn("_method", lines[0]["reason"])

    def test_a_large_gzip_form_with_the_field_far_in_is_stopped_mid_stream(self) -> None:
        body = b"a=" + b"x" * (20 * MB) + b"&_method=DELETE&b=" + b"y" * MB
        data = gzip.compress(body, compresslevel=1)
        forwarded, lines = self.streamed("forms.example", FORM, "x-gzip", data, chunk=7919)
        self.assert_stopped(forwarded, data, lines, "match")

    def test_deflate_json_or_form_with_a_credential_field_is_stopped(self) -> None:
        for content_type, body in (("application/json", b'{"title": "x", "private_token": "attacker"}'),
                                   (FORM, b"title=x&private_token=attacker")):
            for pack in (zlib.compress, raw_deflate):
                with self.subTest(content_type=content_type, pack=pack.__name__):
                    data = pack(body)
                    forwarded, lines = self.streamed("bearer.example", content_type, "Deflate", data, chunk=3)
                    self.assert_stopped(forwarded, data, lines, "credential-in-body")
                    self.assertIn("private_token", lines[0]["reason"])

    def test_a_body_that_does_not_decode_is_stopped_with_a_clear_reason(self) -> None:
        data = gzip.compress(b"a=1&b=2")[:12] + b"not gzip at all" * 10
        forwarded, lines = self.streamed("forms.example", FORM, "gzip", data, chunk=4)
        self.assert_stopped(forwarded, data, lines, "match")
        self.assertIn("does not decode", lines[0]["reason"])

    def test_clean_encoded_bodies_stream_through_as_sent(self) -> None:
        body = b"a=" + b"x" * MB + b"&_method=POST&note=" + b"_method" * 1000
        for host, encoding, data in (("forms.example", "gzip", gzip.compress(body)),
                                     ("bearer.example", "deflate", zlib.compress(body)),
                                     ("forms.example", "identity", body)):
            with self.subTest(host=host, encoding=encoding):
                forwarded, lines = self.streamed(host, FORM, encoding, data, chunk=4099)
                self.assertEqual(forwarded, data)
                self.assertEqual(lines, [])

    def test_an_encoding_not_read_on_the_way_is_held_and_judged_decoded(self) -> None:
        body = b"a=1&_method=DELETE"
        for host, content_type in (("forms.example", FORM), ("bearer.example", "application/json")):
            with self.subTest(host=host):
                flow, _ = self.run_hooks(self.flow(host, content_type, "br", content=brotli.compress(body)),
                                         "requestheaders")
                self.assertFalse(callable(flow.request.stream))
        flow, _ = self.run_hooks(self.flow("forms.example", FORM, "br", content=brotli.compress(body)),
                                 "requestheaders", "request", "upstream", "response")
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(flow.response.headers["X-Bot-Bottle-Rule"], "match")
        # Two codings are held as well (and judged by the buffered path).
        flow, _ = self.run_hooks(self.flow("forms.example", FORM, "gzip, gzip"), "requestheaders")
        self.assertFalse(callable(flow.request.stream))

    def test_the_buffered_path_reads_a_gzip_body_decoded(self) -> None:
        for host, body, rule in (("forms.example", b"a=1&_method=DELETE", "match"),
                                 ("bearer.example", b"title=x&private_token=attacker", "credential-in-body")):
            with self.subTest(host=host):
                data = gzip.compress(body)
                flow, lines = self.exchange(self.flow(host, FORM, "gzip", size=len(data), content=data))
                self.assertEqual(flow.response.status_code, 403)
                self.assertEqual(lines[0]["rule"], rule)

    def test_the_buffered_path_reads_stacked_codings_decoded(self) -> None:
        """``gzip, gzip`` (one header or two lines): mitmproxy reads one coding only; an upstream
        that decompresses undoes both."""
        for host, body, rule in (("forms.example", b"a=1&_method=DELETE", "match"),
                                 ("bearer.example", b"title=x&private_token=attacker", "credential-in-body")):
            for two_lines in (False, True):
                with self.subTest(host=host, two_lines=two_lines):
                    data = gzip.compress(gzip.compress(body))
                    flow = self.flow(host, FORM, "gzip" if two_lines else "gzip, gzip", size=len(data), content=data)
                    if two_lines:
                        flow.request.headers.add("Content-Encoding", "gzip")
                    flow, lines = self.exchange(flow)
                    self.assertEqual(flow.response.status_code, 403)
                    self.assertEqual(lines[0]["rule"], rule)

    def test_an_encoded_body_on_a_route_without_either_check_is_not_read_for_them(self) -> None:
        flow, _ = self.run_hooks(self.flow("allowed.example", FORM, "br"), "requestheaders")
        self.assertTrue(callable(flow.request.stream))
        self.assertIsNone(flow.metadata.get(addon_mod.STREAM_FORM_METHOD))
        self.assertIsNone(flow.metadata.get(addon_mod.STREAM_CREDENTIAL))
