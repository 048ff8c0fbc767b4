"""The addon's framing checks: requests mitmproxy would answer with its own 400 reach our hooks
(and get our 403 naming the rule) only when our structural rules refuse them too."""

from __future__ import annotations

import unittest

from tests.unit.test_sidecar_addon import AddonCase, addon_mod

try:
    from mitmproxy import http
    from mitmproxy.net.http import http1
    from mitmproxy.proxy.layers import http as http_layers
    from mitmproxy.test import tutils
except ImportError:  # pragma: no cover - AddonCase reports the missing dependency
    http1 = None


def request(*headers: tuple[str, str]) -> "http.Request":
    return tutils.treq(method=b"POST", content=b"", headers=http.Headers(
        [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]))


class FramingChecksTest(AddonCase):
    def setUp(self) -> None:
        super().setUp()
        addon_mod.install_framing_checks()

    def test_installing_twice_wraps_once(self) -> None:
        wrapped = http1.expected_http_body_size
        addon_mod.install_framing_checks()
        self.assertIs(http1.expected_http_body_size, wrapped)
        self.assertTrue(http_layers.validate_request.bottle_wrapped)

    def test_several_content_lengths_read_no_body_and_reach_the_hooks(self) -> None:
        for headers in ((("Content-Length", "1"), ("Content-Length", "2")),
                        (("Content-Length", "5"), ("Content-Length", "5")),
                        (("Content-Length", "5x"),)):
            with self.subTest(headers=headers):
                self.assertEqual(http1.expected_http_body_size(request(*headers)), 0)

    def test_sound_framing_is_untouched(self) -> None:
        self.assertEqual(http1.expected_http_body_size(request(("Content-Length", "7"))), 7)
        self.assertIsNone(http1.expected_http_body_size(request(("Transfer-Encoding", "chunked"))))

    def test_answers_keep_mitmproxys_own_checks(self) -> None:
        response = tutils.tresp(headers=http.Headers([(b"Content-Length", b"1"), (b"Content-Length", b"2")]))
        with self.assertRaises(ValueError):
            http1.expected_http_body_size(request(), response)

    def test_content_length_with_transfer_encoding_passes_validation_to_be_refused_by_us(self) -> None:
        clte = request(("Content-Length", "4"), ("Transfer-Encoding", "chunked"))
        self.assertIsNone(http_layers.validate_request(http_layers.HTTPMode.regular, clte, True))
        # A problem our rules do not cover keeps mitmproxy's refusal.
        bad_name = request(("Bad Name", "x"))
        self.assertIsNotNone(http_layers.validate_request(http_layers.HTTPMode.regular, bad_name, True))

    def test_a_connect_inside_a_tunnel_keeps_mitmproxys_refusal_whatever_its_framing(self) -> None:
        # Let through for its Content-Length, it re-pointed an HTTP/2 tunnel at another host.
        connect = tutils.treq(method=b"CONNECT", scheme=b"", path=b"", authority=b"b.example:443", content=b"",
                              headers=http.Headers([(b"Content-Length", b"01")]))
        self.assertIsNotNone(http_layers.validate_request(http_layers.HTTPMode.transparent, connect, True))

    def test_the_hooks_answer_403_naming_the_rule_and_close(self) -> None:
        for headers, rule in (
            ([("Host", "allowed.example"), ("Content-Length", "4"), ("Transfer-Encoding", "chunked")], "smuggling-cl-te"),
            ([("Host", "allowed.example"), ("Content-Length", "3"), ("Content-Length", "3")], "smuggling-content-length"),
        ):
            with self.subTest(rule=rule):
                flow, lines = self.run_hooks(self.request_flow("allowed.example", method="POST", headers=headers),
                                             "requestheaders", "request")
                self.assertEqual(flow.response.status_code, 403)
                self.assertEqual(flow.response.headers["x-bot-bottle-rule"], rule)
                self.assertEqual(flow.response.headers["connection"], "close")
                self.assertEqual(lines[0]["rule"], rule)


if __name__ == "__main__":
    unittest.main()
