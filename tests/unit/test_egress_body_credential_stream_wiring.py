"""The addon stops a streamed upload whose body carries a credential field on a credentialed
route (the wiring of ``body_credential.credential_stream``)."""

from __future__ import annotations

import json

from tests._requires import requires
from tests.unit import test_egress_stream as stream_tests
from tests.unit.test_egress_stream import MB, assert_streams_through, feed_all
from tests.unit.test_sidecar_addon import AddonCase, addon_mod


@requires(addon_mod is not None, "mitmproxy (the dev extra)")
class StreamedBodyCredentialTest(AddonCase):
    run_context = stream_tests.AddonStreamTest.run_context

    def big_flow(self, host: str, content_type: str | None, size: int):
        pairs = [("Host", host), ("Content-Length", str(size))]
        if content_type is not None:
            pairs.append(("Content-Type", content_type))
        return self.request_flow(host, port=443, scheme="https", method="POST", path="/upload", headers=pairs)

    def test_a_credential_field_past_megabytes_of_padding_stops_the_upload(self) -> None:
        data = b"pad=" + b"a" * (9 * MB) + b"&private_token=attacker"
        for content_type in (None, "application/x-www-form-urlencoded"):
            with self.subTest(content_type=content_type):
                flow, _ = self.run_hooks(self.big_flow("bearer.example", content_type, len(data)), "requestheaders")
                self.assertTrue(callable(flow.request.stream))
                with self.run_context() as out:
                    forwarded = feed_all(flow, data)
                self.assertNotIn(b"private_token", forwarded)
                self.assertTrue(flow.metadata[addon_mod.STREAM_ABORTED])
                (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
                self.assertEqual((line["decision"], line["rule"]), ("deny", "credential-in-body"))
                self.assertNotIn("attacker", json.dumps(line))

    def test_a_chunked_json_body_is_read_for_keys_too(self) -> None:
        data = b'{"title": "x", "private_token": "attacker"}'
        flow = self.request_flow("bearer.example", port=443, scheme="https", method="POST", path="/x", headers=[
            ("Host", "bearer.example"), ("Transfer-Encoding", "chunked"), ("Content-Type", "application/json")])
        flow, _ = self.run_hooks(flow, "requestheaders")
        self.assertTrue(callable(flow.request.stream))
        with self.run_context() as out:
            forwarded = feed_all(flow, data, chunk=7)
        self.assertNotIn(b"attacker", forwarded)
        (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
        self.assertEqual((line["decision"], line["rule"]), ("deny", "credential-in-body"))

    def test_a_large_plain_upload_on_a_credentialed_route_still_streams(self) -> None:
        data = b"0123456789abcdef" * (3 * MB // 16)
        flow, _ = self.run_hooks(self.big_flow("bearer.example", None, len(data)), "requestheaders")
        assert_streams_through(self, flow, data)
