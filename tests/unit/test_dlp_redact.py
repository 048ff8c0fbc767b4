"""Redaction: every found value replaced by a marker in the form it was found, structure kept
(JSON stays JSON, forms stay forms), and whatever cannot be redacted reported for blocking."""

from __future__ import annotations

import base64
import gzip
import json
import random
import unittest
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from bot_bottle.sidecar.dlp import Scanner, ScanOptions, brotli_available
from bot_bottle.sidecar.dlp.redact import apply_spans, marker
from tests.unit import test_dlp_fakes as fakes
from tests._requires import requires

RNG = random.Random(99)
SECRET = fakes.secret_value(RNG, 24)
TOKEN = fakes.github(RNG)
SCANNER = Scanner({"DB_PASSWORD": SECRET})
MARK = "[REDACTED:DB_PASSWORD]"


class MarkerTest(unittest.TestCase):
    def test_marker(self) -> None:
        self.assertEqual(marker("DB_PASSWORD"), MARK)
        self.assertEqual(marker("weird name/\n"), "[REDACTED:weird_name__]")
        self.assertEqual(marker(""), "[REDACTED:secret]")

    def test_apply_spans_merges_overlaps(self) -> None:
        self.assertEqual(apply_spans("abcdefgh", [(1, 3, "A"), (2, 5, "B"), (6, 7, "C")]),
                         "a[REDACTED:A]f[REDACTED:C]h")
        self.assertEqual(apply_spans("abc", []), "abc")
        self.assertEqual(apply_spans("abc", [(5, 9, "X")]), "abc")


class RedactTextTest(unittest.TestCase):
    def test_raw(self) -> None:
        result = SCANNER.redact_text(f"pw={SECRET}; ok")
        self.assertEqual(result.content, f"pw={MARK}; ok")
        self.assertTrue(result.changed)
        self.assertEqual(result.unredacted, ())

    def test_in_the_form_found(self) -> None:
        blob = base64.b64encode(b"k:" + SECRET.encode()).decode()
        for text in (blob, SECRET.encode().hex(), quote(SECRET, safe=""), SECRET[::-1]):
            with self.subTest(text=text[:8]):
                result = SCANNER.redact_text(f"a {text} b")
                self.assertIn(MARK, result.content)
                self.assertNotIn(text, result.content)
                self.assertEqual(SCANNER.scan_text(result.content, deep=True), [])

    def test_token_marker_names_the_detector(self) -> None:
        self.assertEqual(SCANNER.redact_text(f"t={TOKEN}").content, "t=[REDACTED:github-token]")

    def test_bytes_in_bytes_out(self) -> None:
        result = SCANNER.redact_text(b"\xff\x00" + SECRET.encode())
        self.assertEqual(result.content, b"\xff\x00" + MARK.encode())

    def test_nothing_found(self) -> None:
        result = SCANNER.redact_text("nothing here")
        self.assertEqual(result.content, "nothing here")
        self.assertFalse(result.changed)

    def test_several_values(self) -> None:
        result = SCANNER.redact_text(f"{SECRET} {TOKEN} {SECRET}")
        self.assertEqual(result.content, f"{MARK} [REDACTED:github-token] {MARK}")


class RedactRequestTest(unittest.TestCase):
    def test_query_parameter(self) -> None:
        result = SCANNER.redact_request("GET", f"https://x.test/a/b?keep=1&pw={SECRET}&z=%20x")
        self.assertEqual(result.url, "https://x.test/a/b?keep=1&pw=%5BREDACTED:DB_PASSWORD%5D&z=%20x")
        self.assertEqual(result.unredacted, ())
        self.assertTrue(result.changed)

    def test_partially_encoded_parameter(self) -> None:
        partial = "".join(f"%{ord(c):02X}" if i % 4 == 0 else c for i, c in enumerate(SECRET))
        result = SCANNER.redact_request("GET", f"/?a=1&q=pre-{partial}-post")
        query = dict(parse_qsl(urlsplit(result.url).query))
        self.assertEqual(query["q"], f"pre-{MARK}-post")
        self.assertEqual(result.unredacted, ())

    def test_path(self) -> None:
        result = SCANNER.redact_request("GET", f"https://x.test/v1/{SECRET}/items?x=1")
        self.assertEqual(result.url, "https://x.test/v1/%5BREDACTED:DB_PASSWORD%5D/items?x=1")

    def test_path_percent_encoded(self) -> None:
        result = SCANNER.redact_request("GET", f"/v1/{quote(SECRET, safe='')}/items")
        self.assertEqual(result.url, "/v1/%5BREDACTED:DB_PASSWORD%5D/items")

    def test_split_parameters_are_both_redacted(self) -> None:
        result = SCANNER.redact_request("GET", f"/?a={SECRET[:12]}&b={SECRET[12:]}&c=ok")
        query = dict(parse_qsl(urlsplit(result.url).query))
        self.assertEqual(query, {"a": MARK, "b": MARK, "c": "ok"})
        self.assertEqual(result.unredacted, ())

    def test_headers(self) -> None:
        result = SCANNER.redact_request("GET", "/", [("X-A", f"v={SECRET}"), ("Accept", "*/*")])
        self.assertEqual(result.headers, (("X-A", f"v={MARK}"), ("Accept", "*/*")))

    def test_basic_auth_header(self) -> None:
        value = "Basic " + base64.b64encode(f"me:{SECRET}".encode()).decode()
        result = SCANNER.redact_request("GET", "/", {"Authorization": value})
        self.assertEqual(result.headers, (("Authorization", f"Basic {MARK}"),))

    def test_json_stays_json(self) -> None:
        body = json.dumps({"a": [1, {"pw": f"x {SECRET} y"}], "n": None, "t": TOKEN, SECRET: "key too"})
        result = SCANNER.redact_request("POST", "/", {"Content-Type": "application/json"}, body)
        doc = json.loads(result.body)
        self.assertEqual(doc["a"][1]["pw"], f"x {MARK} y")
        self.assertEqual(doc["t"], "[REDACTED:github-token]")
        self.assertEqual(doc[MARK], "key too")
        self.assertIsNone(doc["n"])
        self.assertEqual(result.unredacted, ())
        self.assertFalse(result.drop_content_encoding)

    def test_json_escaped_value(self) -> None:
        body = '{"a": "' + "".join(f"\\u{ord(c):04x}" for c in SECRET) + '"}'
        result = SCANNER.redact_request("POST", "/", {"Content-Type": "application/json"}, body)
        self.assertEqual(json.loads(result.body), {"a": MARK})

    def test_json_split_fields(self) -> None:
        body = json.dumps({"x": SECRET[:11], "y": SECRET[11:]})
        result = SCANNER.redact_request("POST", "/", {"Content-Type": "application/json"}, body)
        self.assertEqual(json.loads(result.body), {"x": MARK, "y": MARK})

    def test_json_colliding_keys(self) -> None:
        other = fakes.secret_value(RNG, 20)
        scanner = Scanner({"A": SECRET, "B": other})
        body = json.dumps({SECRET: 1, f"{SECRET}": 2, "[REDACTED:A]": 3})
        result = scanner.redact_request("POST", "/", {"Content-Type": "application/json"}, body)
        doc = json.loads(result.body)
        self.assertEqual(sorted(doc.values()), [2, 3])  # same key twice in the source: JSON keeps the last

    def test_json_bare_string_document(self) -> None:
        result = SCANNER.redact_request("POST", "/", {"Content-Type": "application/json"}, json.dumps(SECRET))
        self.assertEqual(json.loads(result.body), MARK)

    def test_form_stays_form(self) -> None:
        body = urlencode({"user": "me", "password": SECRET, "next": "/home?a=b"})
        result = SCANNER.redact_request("POST", "/", {"Content-Type": "application/x-www-form-urlencoded"}, body)
        self.assertEqual(dict(parse_qsl(result.body.decode())), {"user": "me", "password": MARK, "next": "/home?a=b"})

    def test_form_keeps_non_ascii_bytes(self) -> None:
        body = urlencode({"name": "Zoë Ångström", "password": SECRET, "city": "Zürich"}).encode()
        result = SCANNER.redact_request("POST", "/", {"Content-Type": "application/x-www-form-urlencoded"}, body)
        from urllib.parse import parse_qs

        self.assertEqual(parse_qs(result.body.decode()), {"name": ["Zoë Ångström"], "password": [MARK],
                                                          "city": ["Zürich"]})

    def test_query_keeps_non_ascii_bytes(self) -> None:
        result = SCANNER.redact_request("GET", f"/?city=Z%C3%BCrich&pw={SECRET}")
        self.assertEqual(result.url, "/?city=Z%C3%BCrich&pw=%5BREDACTED:DB_PASSWORD%5D")

    def test_multipart(self) -> None:
        boundary = "b0undary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv={SECRET}\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\n"
                f"Content-Transfer-Encoding: base64\r\n\r\n"
                + base64.b64encode(b"abc " + TOKEN.encode()).decode() + f"\r\n--{boundary}--\r\n").encode()
        result = SCANNER.redact_request("POST", "/", {"Content-Type": f"multipart/form-data; boundary={boundary}"}, body)
        self.assertIn(f"v={MARK}".encode(), result.body)
        self.assertIn(base64.b64encode(b"abc [REDACTED:github-token]"), result.body)
        self.assertTrue(result.body.endswith(f"--{boundary}--\r\n".encode()))
        self.assertEqual(result.unredacted, ())

    def test_gzip_body_comes_back_decompressed(self) -> None:
        body = gzip.compress(json.dumps({"k": SECRET}).encode())
        result = SCANNER.redact_request("POST", "/", {"Content-Type": "application/json", "Content-Encoding": "gzip"},
                                        body)
        self.assertTrue(result.drop_content_encoding)
        self.assertEqual(json.loads(result.body), {"k": MARK})
        self.assertEqual(result.unredacted, ())

    @requires(brotli_available(), "the brotli module")
    def test_brotli_body(self) -> None:
        import brotli

        result = SCANNER.redact_request("POST", "/", {"Content-Encoding": "br"}, brotli.compress(SECRET.encode()))
        self.assertTrue(result.drop_content_encoding)
        self.assertEqual(result.body, MARK.encode())

    def test_undeclared_gzip_is_recompressed(self) -> None:
        result = SCANNER.redact_request("POST", "/", {}, gzip.compress(SECRET.encode()))
        self.assertFalse(result.drop_content_encoding)
        self.assertEqual(gzip.decompress(result.body), MARK.encode())

    def test_compressed_body_without_findings_is_untouched(self) -> None:
        body = gzip.compress(b"hello")
        result = SCANNER.redact_request("POST", "/", {"Content-Encoding": "gzip"}, body)
        self.assertEqual(result.body, body)
        self.assertFalse(result.drop_content_encoding)
        self.assertFalse(result.changed)

    def test_plain_binary_body(self) -> None:
        body = b"\x00\xffdata " + SECRET.encode() + b" \xfe"
        result = SCANNER.redact_request("PUT", "/", {"Content-Type": "application/octet-stream"}, body)
        self.assertEqual(result.body, b"\x00\xffdata " + MARK.encode() + b" \xfe")

    def test_host_cannot_be_redacted(self) -> None:
        result = SCANNER.redact_request("GET", f"https://{SECRET.encode().hex()}.evil.example/")
        self.assertEqual([f.location for f in result.unredacted], ["url.host"])

    def test_scan_limit_cannot_be_redacted(self) -> None:
        scanner = Scanner({"S": SECRET}, ScanOptions(max_body_bytes=64))
        result = scanner.redact_request("POST", "/", {}, SECRET.encode() + b"x" * 100)
        self.assertIn("scan-limit", [f.detector for f in result.unredacted])

    def test_redacted_request_rescans_clean(self) -> None:
        body = json.dumps({"m": [f"a {SECRET}", base64.b64encode(TOKEN.encode()).decode()]})
        result = SCANNER.redact_request("POST", f"/p/{SECRET}?q={TOKEN}", {"Content-Type": "application/json",
                                                                            "X-T": TOKEN}, body)
        self.assertEqual(result.unredacted, ())
        self.assertEqual(SCANNER.scan_request("POST", result.url, result.headers, result.body), [])
        self.assertGreaterEqual(len(result.findings), 4)

    def test_nothing_to_redact(self) -> None:
        result = SCANNER.redact_request("GET", "/ok?x=1", {"A": "b"}, b"body")
        self.assertFalse(result.changed)
        self.assertEqual((result.url, result.headers, result.body), ("/ok?x=1", (("A", "b"),), b"body"))


class EchoTest(unittest.TestCase):
    def test_echoed_secret_is_redacted(self) -> None:
        result = SCANNER.redact_echoed_secrets(f'{{"you_sent": "{SECRET}"}}'.encode())
        self.assertEqual(result.content, f'{{"you_sent": "{MARK}"}}'.encode())
        self.assertEqual([f.secret_name for f in result.findings], ["DB_PASSWORD"])

    def test_echoed_encoded_secret(self) -> None:
        result = SCANNER.redact_echoed_secrets("auth=" + base64.b64encode(SECRET.encode()).decode())
        self.assertIn(MARK, result.content)

    def test_token_formats_are_left_alone_in_responses(self) -> None:
        # A response may legitimately contain tokens (a repo's test fixtures, docs); only the
        # bottle's own values are taken out.
        result = SCANNER.redact_echoed_secrets(f"example: {TOKEN}")
        self.assertEqual(result.content, f"example: {TOKEN}")
