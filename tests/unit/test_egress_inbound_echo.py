"""What an upstream answers cannot hand the agent the bottle's secrets outside the body either:
the reason phrase, a header name, HTTP/2 trailers, mitmproxy's own error page quoting a malformed
answer, and the password of a basic credential on its own (the addon, with the DLP engine)."""

from __future__ import annotations

import base64
import gzip
import json
import unittest

from tests.unit.test_sidecar_addon import AGENT_CREDENTIALS, REAL_TOKEN, SECRETS, AddonCase, addon_mod

try:
    from mitmproxy import http
    from mitmproxy.test import tutils
except ImportError:  # pragma: no cover - AddonCase reports the missing dependency
    http = None

BASIC_PASSWORD = "basic-password-only-7c41e09b"


def held(status: int, body: bytes, *headers: tuple[bytes, bytes]):
    """An answer small enough to be held whole (its length declared), as the upstream sent it."""
    response = tutils.tresp(status_code=status, headers=http.Headers(
        [*headers, (b"Content-Length", str(len(body)).encode())]))
    response.raw_content = body
    return response


class AnswerHeadTest(AddonCase):
    def sent(self, host: str = "bearer.example"):
        flow = self.request_flow(host, port=443, scheme="https", headers={"Host": host, **AGENT_CREDENTIALS})
        flow, _ = self.run_hooks(flow, "requestheaders", "request")
        return flow

    def answer(self, flow, response, *hooks: str):
        flow.response = response
        return self.run_hooks(flow, *(hooks or ("responseheaders", "response")), upstream=None)

    def test_a_reason_phrase_carrying_the_token_becomes_the_standard_one(self) -> None:
        response = held(200, b"ok", (b"Content-Type", b"text/plain"))
        response.reason = f"OK {REAL_TOKEN}"
        flow, lines = self.answer(self.sent(), response)
        self.assertEqual((flow.response.status_code, flow.response.reason), (200, "OK"))
        (line,) = lines
        self.assertEqual(line["dlp_action"], "redact")
        self.assertNotIn(REAL_TOKEN, json.dumps(lines))

    def test_a_clean_reason_phrase_is_kept(self) -> None:
        response = held(200, b"ok", (b"Content-Type", b"text/plain"))
        response.reason = "Fine Thanks"
        flow, _ = self.answer(self.sent(), response)
        self.assertEqual(flow.response.reason, "Fine Thanks")

    def test_a_header_name_carrying_the_token_refuses_the_answer(self) -> None:
        response = held(200, b"some body", (b"Content-Type", b"text/plain"), (f"X-{REAL_TOKEN}".encode(), b"1"))
        flow, _ = self.answer(self.sent(), response, "responseheaders")
        refusal = flow.response
        self.assertEqual(refusal.status_code, 502)
        self.assertNotIn(REAL_TOKEN, repr(refusal.headers.fields) + repr(refusal.raw_content))
        # The upstream's body is read and discarded; the refusal's own body goes at its end.
        self.assertEqual(refusal.stream(b"the upstream's body"), [])
        self.assertEqual(refusal.stream(b""), refusal.raw_content)
        flow, lines = self.run_hooks(flow, "response", upstream=None)
        (line,) = lines
        self.assertEqual((line["decision"], line["rule"], line["dlp_action"], line["status"]),
                         ("deny", "dlp-inbound", "block", 502))
        self.assertEqual(line["detectors"], ["known-secret:BEARER_REF"])
        self.assertNotIn(REAL_TOKEN, json.dumps(lines))

    def test_trailers_are_masked_not_dropped(self) -> None:
        response = held(200, b"ok", (b"Content-Type", b"text/plain"))
        response.http_version = "HTTP/2.0"
        response.trailers = http.Headers([(b"grpc-status", b"0"), (b"x-echo", f"Bearer {REAL_TOKEN}".encode()),
                                          (f"x-{REAL_TOKEN}".encode(), b"1")])
        flow, lines = self.answer(self.sent(), response)
        trailers = flow.response.trailers
        self.assertEqual(trailers.get("grpc-status"), "0")
        self.assertIn("x-echo", trailers)
        self.assertNotIn(REAL_TOKEN, repr(trailers.fields))
        (line,) = lines
        self.assertEqual(line["dlp_action"], "redact")
        self.assertNotIn(REAL_TOKEN, json.dumps(lines))

    def test_clean_trailers_pass_untouched(self) -> None:
        response = held(200, b"ok", (b"Content-Type", b"text/plain"))
        response.trailers = http.Headers([(b"grpc-status", b"0"), (b"grpc-message", b"fine")])
        flow, lines = self.answer(self.sent(), response)
        self.assertEqual(flow.response.trailers.fields, ((b"grpc-status", b"0"), (b"grpc-message", b"fine")))
        self.assertNotIn("dlp_action", lines[0])


class ContentEncodingTest(AddonCase):
    def test_two_gzip_lines_are_both_undone_before_the_scan(self) -> None:
        flow = self.request_flow("bearer.example", port=443, scheme="https", headers={"Host": "bearer.example"})
        flow, _ = self.run_hooks(flow, "requestheaders", "request")
        flow.response = held(200, gzip.compress(gzip.compress(b"echo: " + REAL_TOKEN.encode())),
                             (b"Content-Type", b"text/plain"), (b"Content-Encoding", b"gzip"),
                             (b"Content-Encoding", b"gzip"))
        flow, lines = self.run_hooks(flow, "responseheaders", "response", upstream=None)
        self.assertNotIn("content-encoding", flow.response.headers)
        self.assertNotIn(REAL_TOKEN.encode(), flow.response.raw_content)
        self.assertEqual(lines[0]["dlp_action"], "redact")

    def test_an_answer_in_an_unknown_encoding_is_refused(self) -> None:
        flow = self.request_flow("bearer.example", port=443, scheme="https", headers={"Host": "bearer.example"})
        flow, _ = self.run_hooks(flow, "requestheaders", "request")
        flow.response = held(200, b"echo: " + REAL_TOKEN.encode()[::-1], (b"Content-Encoding", b"x-foo"))
        flow, lines = self.run_hooks(flow, "responseheaders", "response", upstream=None)
        self.assertEqual(flow.response.status_code, 502)
        (line,) = lines
        self.assertEqual((line["rule"], line["detectors"]), ("dlp-inbound", ["scan-limit"]))


class BasicPasswordTest(AddonCase):
    def test_the_password_of_a_basic_credential_alone_is_masked(self) -> None:
        secrets = json.loads(json.dumps(SECRETS))
        secrets["credentials"]["BASIC_REF"] = f"deploybot:{BASIC_PASSWORD}"
        self.secrets.write_text(json.dumps(secrets))
        flow = self.request_flow("basic.example", port=443, scheme="https", headers={"Host": "basic.example"})
        flow, _ = self.run_hooks(flow, "requestheaders", "request")
        self.assertEqual(flow.request.headers["authorization"],
                         "Basic " + base64.b64encode(f"deploybot:{BASIC_PASSWORD}".encode()).decode())
        flow.response = held(200, f"your password: {BASIC_PASSWORD}".encode(),
                             (b"Content-Type", b"text/plain"), (b"X-Echo", BASIC_PASSWORD.encode()))
        flow, lines = self.run_hooks(flow, "responseheaders", "response", upstream=None)
        self.assertNotIn(BASIC_PASSWORD.encode(), flow.response.raw_content)
        self.assertNotIn(BASIC_PASSWORD, flow.response.headers["x-echo"])
        self.assertIn("known-secret:BASIC_REF:password", lines[0]["detectors"])
        self.assertNotIn(BASIC_PASSWORD, json.dumps(lines))


class ErrorPageTest(AddonCase):
    """mitmproxy's own 502 page quotes the upstream's malformed status or header line."""

    def load(self) -> None:
        self.addon.load(type("Loader", (), {"add_option": lambda *a, **k: None})())
        from bot_bottle.sidecar.egress import ws_control, ws_limit

        self.addCleanup(ws_control.uninstall)
        self.addCleanup(ws_limit.uninstall)
        self.run_hooks(self.request_flow("allowed.example"))  # configured: the bottle's secrets known

    def test_the_page_never_quotes_the_bottles_secrets(self) -> None:
        from mitmproxy.proxy.layers.http import _http1, _http2

        self.load()
        encoded = base64.b64encode(REAL_TOKEN.encode()).decode()
        for message in (f"Cannot parse HTTP response: Bad HTTP response line: b'HTTP/1.1 2x0 {REAL_TOKEN}'",
                        f"Cannot parse HTTP response: Invalid header line: b'Authorization {REAL_TOKEN}'",
                        f"Cannot parse HTTP response: Invalid header line: b'X {encoded}'"):
            with self.subTest(message=message[:60]):
                page = _http1.make_error_response(502, message)
                self.assertIn(b"502 Bad Gateway", page)
                self.assertIn(b"Cannot parse HTTP response", page)
                self.assertNotIn(REAL_TOKEN.encode(), page)
                self.assertNotIn(encoded.encode(), page)
                self.assertNotIn(REAL_TOKEN.encode(), _http2.format_error(502, message))

    def test_other_messages_keep_their_words(self) -> None:
        from mitmproxy.proxy.layers.http import _http1

        self.load()
        page = _http1.make_error_response(502, "Server connection to ('a.example', 443) failed: refused")
        self.assertIn(b"failed: refused", page)

    def test_a_scrub_that_fails_leaves_a_generic_message(self) -> None:
        from mitmproxy.proxy.layers.http import _http1

        self.load()
        self.addon.inbound = None  # echoed_in_message is looked up on it: the scrub raises
        self.addon.scrubber = type("Broken", (), {"text": lambda self, value: 1 / 0})()
        page = _http1.make_error_response(502, f"Bad HTTP response line: b'{REAL_TOKEN}'")
        self.assertIn(addon_mod.ERROR_PAGE_FALLBACK.encode().replace(b"'", b"&#x27;"), page)
        self.assertNotIn(REAL_TOKEN.encode(), page)


if __name__ == "__main__":
    unittest.main()
