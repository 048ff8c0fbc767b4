"""Request trailers (HTTP/2 headers sent after the body) never leave: every scan has run by the
time they arrive, so the request is refused and the trailers dropped, buffered or streamed."""

from __future__ import annotations

from mitmproxy import http

from tests.unit import test_egress_stream as stream
from tests.unit.test_sidecar_addon import AddonCase, addon_mod

TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


def with_trailers(flow):
    flow.request.trailers = http.Headers([(b"x-note", TOKEN.encode())])
    return flow


class TrailersTest(AddonCase):
    big_flow = stream.AddonStreamTest.big_flow
    run_context = stream.AddonStreamTest.run_context

    def test_a_buffered_request_with_trailers_is_refused_and_its_trailers_dropped(self) -> None:
        flow = with_trailers(self.request_flow("allowed.example", method="POST", content=b"hello"))
        flow, lines = self.run_hooks(flow, "requestheaders", "request")
        self.assertEqual(flow.response.status_code, 403)
        self.assertFalse(flow.request.trailers)
        (line,) = lines
        self.assertEqual((line["decision"], line["rule"]), ("deny", "request-trailers"))
        self.assertNotIn(TOKEN, str(lines))

    def test_a_streamed_upload_with_trailers_is_stopped_before_they_leave(self) -> None:
        data = b"0123456789abcdef" * (4 * 1024 * 1024 // 16) * 3
        flow, _ = self.run_hooks(self.big_flow(size=len(data)), "requestheaders")
        self.assertTrue(callable(flow.request.stream))
        with self.run_context():
            stream.feed_all(flow, data)
        with_trailers(flow)
        flow, lines = self.run_hooks(flow, "request")
        self.assertFalse(flow.request.trailers)  # mitmproxy sends trailers after this hook: none left
        self.assertTrue(flow.metadata[addon_mod.STREAM_ABORTED])
        (line,) = lines
        self.assertEqual((line["decision"], line["rule"]), ("deny", "request-trailers"))

    def test_a_request_without_trailers_is_untouched(self) -> None:
        flow, lines = self.run_hooks(self.request_flow("allowed.example", method="POST", content=b"hello"),
                                     "requestheaders", "request")
        self.assertIsNone(flow.response)

