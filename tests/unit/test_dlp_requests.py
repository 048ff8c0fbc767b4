"""Request scanning: every part of a request (URL, headers, body of every type and encoding),
WebSocket messages, and the limits that keep a scan bounded."""

from __future__ import annotations

import base64
import gzip
import json
import random
import unittest
import zlib
from urllib.parse import quote, urlencode

from bot_bottle.sidecar.dlp import SCAN_LIMIT, Scanner, ScanOptions, brotli_available
from bot_bottle.sidecar.dlp.bodies import (
    decode_body,
    json_strings,
    multipart_parts,
    parse_content_type,
    part_content,
)
from tests.unit import test_dlp_fakes as fakes
from tests._requires import requires

RNG = random.Random(77)
SECRET = fakes.secret_value(RNG, 26)
SCANNER = Scanner({"API_SECRET": SECRET})
TOKEN = fakes.github(RNG)

try:
    import brotli
except ImportError:  # pragma: no cover
    brotli = None


def found(findings) -> set[tuple[str, str]]:
    return {(f.detector, f.location) for f in findings}


def secret_locations(findings) -> set[str]:
    return {f.location for f in findings if f.secret_name == "API_SECRET"}


def multipart(fields: list[tuple[str, str | None, bytes, dict[str, str]]], boundary: str = "XyZ123boundary") -> bytes:
    out = b""
    for name, filename, content, headers in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        for key, value in headers.items():
            out += f"{key}: {value}\r\n".encode()
        out += b"\r\n" + content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


class UrlTest(unittest.TestCase):
    def test_query_parameter(self) -> None:
        self.assertEqual(secret_locations(SCANNER.scan_request("GET", f"https://x.test/a?k={SECRET}")), {"url.query.k"})

    def test_query_parameter_url_encoded(self) -> None:
        url = "https://x.test/a?" + urlencode({"data": f"user={SECRET}&x=1"})
        self.assertEqual(secret_locations(SCANNER.scan_request("GET", url)), {"url.query.data"})

    def test_query_parameter_name(self) -> None:
        locations = secret_locations(SCANNER.scan_request("GET", f"https://x.test/a?{SECRET}=1"))
        self.assertEqual(locations, {"url.query[0].name"})

    def test_path(self) -> None:
        for path in (f"/v1/{SECRET}/x", f"/v1/{quote(SECRET, safe='')}", "/v1/" + SECRET.encode().hex()):
            with self.subTest(path=path[:10]):
                self.assertEqual(secret_locations(SCANNER.scan_request("GET", "https://x.test" + path)), {"url.path"})

    def test_path_only_url(self) -> None:
        self.assertEqual(found(SCANNER.scan_request("GET", f"/api?token={TOKEN}")), {("github-token", "url.query.token")})

    def test_userinfo_and_fragment(self) -> None:
        self.assertIn("url.userinfo", secret_locations(SCANNER.scan_request("GET", f"https://u:{quote(SECRET)}@x.test/")))
        self.assertIn("url.fragment", secret_locations(SCANNER.scan_request("GET", f"https://x.test/#{SECRET}")))

    def test_token_base64_in_query(self) -> None:
        value = base64.b64encode(f"token={TOKEN}".encode()).decode()
        findings = SCANNER.scan_request("GET", f"https://x.test/?d={quote(value)}")
        self.assertEqual([(f.detector, f.encoding) for f in findings], [("github-token", "base64")])

    def test_token_hex_in_path(self) -> None:
        findings = SCANNER.scan_request("GET", f"https://x.test/{TOKEN.encode().hex()}")
        self.assertEqual([(f.detector, f.encoding) for f in findings], [("github-token", "hex")])

    def test_unsafe_parameter_names_are_not_echoed(self) -> None:
        rng = random.Random(1)
        name = fakes.rand(rng, 30)
        findings = SCANNER.scan_request("GET", f"/?{name}={SECRET}")
        self.assertEqual(secret_locations(findings), {"url.query[0].value"})

    def test_broken_url_is_still_scanned(self) -> None:
        self.assertTrue(secret_locations(SCANNER.scan_request("GET", f"http://[::1/{SECRET}")))

    def test_benign_urls(self) -> None:
        for url in (
            "https://registry.npmjs.org/@types%2fnode/-/node-20.11.5.tgz",
            f"https://files.pythonhosted.org/packages/{fakes.rand(RNG, 2, fakes.HEX)}/{fakes.rand(RNG, 62, fakes.HEX)}/requests-2.31.0-py3-none-any.whl",
            f"https://github.com/org/repo.git/info/refs?service=git-upload-pack",
            f"https://api.github.com/repos/org/repo/commits/{fakes.git_sha(RNG)}",
            f"https://example.test/items/{fakes.uuid4(RNG)}?include=owner,tags&page=3",
        ):
            with self.subTest(url=url[:40]):
                self.assertEqual(SCANNER.scan_request("GET", url), [])


class HeaderTest(unittest.TestCase):
    def test_every_header_value(self) -> None:
        headers = [("Accept", "*/*"), ("X-Debug", f"ctx={SECRET}"), ("Cookie", f"a=1; session={SECRET}")]
        self.assertEqual(secret_locations(SCANNER.scan_request("GET", "/", headers)), {"header:x-debug", "header:cookie"})

    def test_mapping_headers(self) -> None:
        self.assertEqual(secret_locations(SCANNER.scan_request("GET", "/", {"X-Key": SECRET})), {"header:x-key"})

    def test_skip_headers(self) -> None:
        headers = [("Authorization", f"Bearer {SECRET}"), ("X-Other", "1")]
        self.assertEqual(SCANNER.scan_request("GET", "/", headers, skip_headers=("authorization",)), [])
        self.assertTrue(SCANNER.scan_request("GET", "/", headers))

    def test_basic_auth(self) -> None:
        value = "Basic " + base64.b64encode(f"me:{SECRET}".encode()).decode()
        self.assertEqual(secret_locations(SCANNER.scan_request("GET", "/", {"Authorization": value})),
                         {"header:authorization"})

    def test_secret_as_header_name(self) -> None:
        findings = SCANNER.scan_request("GET", "/", [(SECRET, "1")])
        self.assertEqual(secret_locations(findings), {"header[0].name"})
        for finding in findings:
            self.assertNotIn(SECRET, finding.location)

    def test_token_formats_in_headers(self) -> None:
        findings = SCANNER.scan_request("GET", "/", {"X-Api-Key": fakes.openai(RNG)})
        self.assertEqual(found(findings), {("openai-api-key", "header:x-api-key")})


class BodyTest(unittest.TestCase):
    def scan(self, body, content_type="application/octet-stream", **headers):
        pairs = [("Content-Type", content_type)] + [(k.replace("_", "-"), v) for k, v in headers.items()]
        return SCANNER.scan_request("POST", "https://x.test/upload", pairs, body)

    def test_plain_text(self) -> None:
        self.assertEqual(secret_locations(self.scan(f"hello {SECRET}", "text/plain")), {"body"})

    def test_bytes_and_str_bodies(self) -> None:
        self.assertEqual(secret_locations(self.scan(f"x {SECRET}".encode())), {"body"})
        self.assertEqual(secret_locations(self.scan(f"x {SECRET}")), {"body"})

    def test_binary_body(self) -> None:
        body = RNG.randbytes(5000) + SECRET.encode() + RNG.randbytes(5000)
        self.assertEqual(secret_locations(self.scan(body)), {"body"})
        self.assertEqual(self.scan(RNG.randbytes(20000)), [])

    def test_json_values_and_keys(self) -> None:
        body = json.dumps({"messages": [{"role": "user", "content": f"use {SECRET}"}], SECRET: 1})
        locations = secret_locations(self.scan(body, "application/json"))
        self.assertEqual(locations, {"body.json:$.messages[0].content", "body.json:$[?] (key)"})

    def test_json_unicode_escapes_hide_nothing(self) -> None:
        escaped = "".join(f"\\u{ord(c):04x}" for c in SECRET)
        body = '{"a": "' + escaped + '"}'
        self.assertEqual(secret_locations(self.scan(body, "application/json")), {"body.json:$.a"})

    def test_json_escaped_slash_in_base64(self) -> None:
        blob = base64.b64encode(b"\xff\xfe" + SECRET.encode() + b"\xfb\xff").decode()
        body = json.dumps({"blob": blob}).replace("/", "\\/")
        self.assertIn("body.json:$.blob", secret_locations(self.scan(body, "application/json")))

    def test_json_numbers(self) -> None:
        scanner = Scanner({"PIN": "9876543210123"})
        findings = scanner.scan_request("POST", "/", {"content-type": "application/json"}, '{"n": 9876543210123}')
        self.assertEqual({f.location for f in findings}, {"body.json:$.n"})

    def test_json_sniffed_without_content_type(self) -> None:
        body = '{"x": "\\u0067' + TOKEN[1:] + '"}'  # the "g" of "ghp_" as a JSON escape
        self.assertEqual(found(SCANNER.scan_request("POST", "/", {}, body)), {("github-token", "body.json:$.x")})

    def test_invalid_json_falls_back_to_text(self) -> None:
        self.assertEqual(secret_locations(self.scan('{"a": "' + SECRET, "application/json")), {"body"})

    def test_deeply_nested_json(self) -> None:
        body = "[" * 5000 + json.dumps(SECRET) + "]" * 5000
        self.assertIn("body", secret_locations(self.scan(body, "application/json")))

    def test_graphql(self) -> None:
        body = json.dumps({"query": "mutation Login($p: String!) { login(password: $p) { id } }",
                           "variables": {"p": SECRET}})
        self.assertEqual(secret_locations(self.scan(body, "application/json")), {"body.json:$.variables.p"})

    def test_form(self) -> None:
        body = urlencode({"user": "me", "password": SECRET, "note": "hi"})
        self.assertEqual(secret_locations(self.scan(body, "application/x-www-form-urlencoded")),
                         {"body.form.password"})

    def test_form_partial_escapes(self) -> None:
        body = "a=1&b=" + "".join(f"%{ord(c):02x}" if i % 2 else c for i, c in enumerate(SECRET))
        self.assertEqual(secret_locations(self.scan(body, "application/x-www-form-urlencoded")), {"body.form.b"})

    def test_multipart_field_and_file(self) -> None:
        body = multipart([("comment", None, f"see {SECRET}".encode(), {}),
                          ("upload", "notes.txt", b"line\n" + TOKEN.encode() + b"\n", {"Content-Type": "text/plain"})])
        findings = self.scan(body, "multipart/form-data; boundary=XyZ123boundary")
        self.assertEqual(secret_locations(findings), {"body"})
        self.assertIn("github-token", {f.detector for f in findings})

    def test_multipart_filename(self) -> None:
        body = multipart([("upload", f"{SECRET}.txt", b"data", {})])
        findings = self.scan(body, 'multipart/form-data; boundary="XyZ123boundary"')
        self.assertTrue(secret_locations(findings))

    def test_multipart_base64_part(self) -> None:
        content = base64.encodebytes(b"header\n" + TOKEN.encode() + b"\n" * 40 + b"tail")
        body = multipart([("f", "a.bin", content, {"Content-Transfer-Encoding": "base64"})])
        findings = self.scan(body, "multipart/form-data; boundary=XyZ123boundary")
        self.assertIn(("github-token", "body.multipart[0].content"), found(findings))

    def test_multipart_quoted_printable_part(self) -> None:
        import quopri

        content = quopri.encodestring(f"pw={SECRET}".encode() + b"\n", quotetabs=True)
        content = content.replace(SECRET[:3].encode(), "".join(f"={b:02X}" for b in SECRET[:3].encode()).encode())
        body = multipart([("f", None, content, {"Content-Transfer-Encoding": "quoted-printable"})])
        findings = self.scan(body, "multipart/form-data; boundary=XyZ123boundary")
        self.assertIn("body.multipart[0].content", secret_locations(findings))

    def test_multipart_split_across_fields(self) -> None:
        body = multipart([("a", None, SECRET[:13].encode(), {}), ("b", None, SECRET[13:].encode(), {})])
        findings = self.scan(body, "multipart/form-data; boundary=XyZ123boundary")
        self.assertEqual([f.encoding for f in findings], ["split"])

    def test_a_token_split_between_fields_next_to_letters_is_found(self) -> None:
        # Joined to look for a split, the field before ends in a letter and the one after begins
        # with one: that is another field's text, not the token's own surroundings.
        aws = fakes.aws_key_id(RNG)
        for token, detector in ((TOKEN, "github-token"), (aws, "aws-access-key-id")):
            with self.subTest(detector=detector):
                body = json.dumps({"id": "item42", "a": token[:10], "b": token[10:], "c": "next7"})
                findings = self.scan(body, "application/json")
                self.assertIn((detector, "split"), {(f.detector, f.encoding) for f in findings})
                query = SCANNER.scan_request("GET", f"https://x.test/api/?q=abc&a={token[:10]}&b={token[10:]}&n=x1",
                                             [], b"")
                self.assertIn((detector, "split"), {(f.detector, f.encoding) for f in query})

    def test_gzip(self) -> None:
        body = gzip.compress(f"data {SECRET}".encode())
        self.assertEqual(secret_locations(self.scan(body, "text/plain", Content_Encoding="gzip")), {"body"})

    def test_gzip_json(self) -> None:
        body = gzip.compress(json.dumps({"k": SECRET}).encode())
        self.assertEqual(secret_locations(self.scan(body, "application/json", Content_Encoding="gzip")),
                         {"body.json:$.k"})

    def test_undeclared_gzip_is_sniffed(self) -> None:
        self.assertEqual(secret_locations(self.scan(gzip.compress(SECRET.encode()))), {"body"})

    def test_multi_member_gzip(self) -> None:
        body = gzip.compress(b"harmless " * 100) + gzip.compress(SECRET.encode())
        self.assertEqual(secret_locations(self.scan(body, Content_Encoding="gzip")), {"body"})

    def test_deflate_zlib_and_raw(self) -> None:
        raw = zlib.compressobj(wbits=-15)
        for body in (zlib.compress(SECRET.encode()), raw.compress(SECRET.encode()) + raw.flush()):
            with self.subTest():
                self.assertEqual(secret_locations(self.scan(body, Content_Encoding="deflate")), {"body"})

    @requires(brotli_available(), "the brotli module")
    def test_brotli(self) -> None:
        body = brotli.compress(f"x {SECRET} y".encode())
        self.assertEqual(secret_locations(self.scan(body, Content_Encoding="br")), {"body"})

    @requires(brotli_available(), "the brotli module")
    def test_stacked_encodings(self) -> None:
        body = brotli.compress(gzip.compress(SECRET.encode()))
        self.assertEqual(secret_locations(self.scan(body, Content_Encoding="gzip, br")), {"body"})

    def test_corrupt_compressed_body_is_scanned_raw(self) -> None:
        body = b"\x1f\x8b not really gzip " + SECRET.encode()
        self.assertEqual(secret_locations(self.scan(body, Content_Encoding="gzip")), {"body"})

    def test_unknown_encoding_is_scanned_raw(self) -> None:
        self.assertEqual(secret_locations(self.scan(SECRET.encode(), Content_Encoding="zstd")), {"body"})

    def test_identity(self) -> None:
        self.assertEqual(secret_locations(self.scan(SECRET.encode(), Content_Encoding="identity")), {"body"})


class LimitTest(unittest.TestCase):
    def test_gzip_bomb_stops_at_the_limit(self) -> None:
        bomb = gzip.compress(b"\0" * (50 * 1024 * 1024))
        scanner = Scanner({"S": SECRET}, ScanOptions(max_body_bytes=1024 * 1024))
        findings = scanner.scan_request("POST", "/", {"Content-Encoding": "gzip"}, bomb)
        self.assertEqual([f.detector for f in findings], [SCAN_LIMIT])
        self.assertEqual(findings[0].confidence, "high")

    def test_deflate_bomb(self) -> None:
        decoded = decode_body(zlib.compress(b"A" * (20 * 1024 * 1024)), "deflate", 1000)
        self.assertTrue(decoded.truncated)
        self.assertEqual(len(decoded.data), 1000)

    @requires(brotli_available(), "the brotli module")
    def test_brotli_bomb(self) -> None:
        bomb = brotli.compress(b"\0" * (256 * 1024 * 1024), quality=5)
        decoded = decode_body(bomb, "br", 2 * 1024 * 1024)
        self.assertTrue(decoded.truncated)
        self.assertEqual(len(decoded.data), 2 * 1024 * 1024)

    def test_secret_before_the_limit_is_still_found(self) -> None:
        scanner = Scanner({"S": SECRET}, ScanOptions(max_body_bytes=4096))
        body = gzip.compress(SECRET.encode() + b"\0" * 100000)
        findings = scanner.scan_request("POST", "/", {"Content-Encoding": "gzip"}, body)
        self.assertEqual({f.detector for f in findings}, {SCAN_LIMIT, "known-secret"})

    def test_plain_body_over_the_limit(self) -> None:
        scanner = Scanner({"S": SECRET}, ScanOptions(max_body_bytes=100))
        findings = scanner.scan_request("POST", "/", {}, b"x" * 200)
        self.assertEqual([f.detector for f in findings], [SCAN_LIMIT])

    def test_large_bodies_skip_structure(self) -> None:
        scanner = Scanner({"S": SECRET}, ScanOptions(structured_limit=10))
        body = json.dumps({"a": SECRET})
        self.assertEqual({f.location for f in scanner.scan_request("POST", "/", {"content-type": "application/json"}, body)},
                         {"body"})

    def test_decode_budget_bounds_work(self) -> None:
        # A request made of nothing but base64 runs: scanning finishes and stays correct.
        runs = " ".join(base64.b64encode(RNG.randbytes(30)).decode() for _ in range(20000))
        findings = SCANNER.scan_request("POST", "/", {"content-type": "text/plain"}, runs + " " + SECRET)
        self.assertEqual(secret_locations(findings), {"body"})


class MessageTest(unittest.TestCase):
    def test_text_message(self) -> None:
        self.assertEqual(secret_locations(SCANNER.scan_message(f"hello {SECRET}")), {"message"})

    def test_json_message(self) -> None:
        message = json.dumps({"type": "input", "data": {"text": SECRET}})
        self.assertEqual(secret_locations(SCANNER.scan_message(message)), {"message.json:$.data.text"})

    def test_binary_message(self) -> None:
        self.assertEqual(secret_locations(SCANNER.scan_message(b"\x00\x01" + SECRET.encode())), {"message"})

    def test_encoded_token_in_message(self) -> None:
        message = json.dumps({"d": base64.b64encode(TOKEN.encode()).decode()})
        self.assertEqual([f.detector for f in SCANNER.scan_message(message)], ["github-token"])

    def test_benign_message(self) -> None:
        self.assertEqual(SCANNER.scan_message(json.dumps({"type": "ping", "id": fakes.uuid4(RNG)})), [])


class BodyHelpersTest(unittest.TestCase):
    def test_content_type(self) -> None:
        self.assertEqual(parse_content_type('Multipart/Form-Data; boundary="a;b"; charset=utf-8'),
                         ("multipart/form-data", {"boundary": "a;b", "charset": "utf-8"}))
        self.assertEqual(parse_content_type(None), ("", {}))

    def test_json_strings_order_and_paths(self) -> None:
        items = json_strings({"a": ["x", {"b": "y"}], "n": 123456789, "f": 1.5, "t": True})
        self.assertEqual([(i.path, i.text, i.is_key) for i in items], [
            (("a",), "a", True), (("n",), "n", True), (("f",), "f", True), (("t",), "t", True),
            (("a", 0), "x", False), (("a", 1, "b"), "b", True), (("a", 1, "b"), "y", False),
            (("n",), "123456789", False),
        ])

    def test_multipart_parts(self) -> None:
        body = multipart([("a", None, b"1", {}), ("b", "f.txt", b"two\r\nlines", {"Content-Type": "text/plain"})])
        parts = multipart_parts(body, "XyZ123boundary")
        self.assertEqual([(p.name, p.filename, p.content_type) for p in parts],
                         [("a", None, ""), ("b", "f.txt", "text/plain")])
        self.assertEqual(part_content(body, parts[1]), b"two\r\nlines")

    def test_multipart_with_bare_newlines(self) -> None:
        body = b'--B\nContent-Disposition: form-data; name="x"\n\nvalue\n--B--\n'
        parts = multipart_parts(body, "B")
        self.assertEqual(part_content(body, parts[0]), b"value")


class OptionsTest(unittest.TestCase):
    def test_tokens_off(self) -> None:
        scanner = Scanner({"API_SECRET": SECRET}, ScanOptions(tokens=False))
        findings = scanner.scan_request("GET", f"/?a={TOKEN}&b={SECRET}")
        self.assertEqual({f.detector for f in findings}, {"known-secret"})

    def test_known_secrets_off(self) -> None:
        scanner = Scanner({"API_SECRET": SECRET}, ScanOptions(known_secrets=False))
        findings = scanner.scan_request("GET", f"/?a={TOKEN}&b={SECRET}&h={SECRET.encode().hex()}")
        self.assertEqual({f.detector for f in findings}, {"github-token"})
        self.assertEqual(scanner.scan_host(SECRET.encode().hex() + ".evil.example"), [])

    def test_everything_off(self) -> None:
        scanner = Scanner({"API_SECRET": SECRET}, ScanOptions(tokens=False, known_secrets=False))
        self.assertEqual(scanner.scan_request("POST", f"/?a={TOKEN}", {"X": SECRET}, SECRET), [])

    def test_too_many_fields_are_scanned_as_text(self) -> None:
        from unittest import mock

        from bot_bottle.sidecar.dlp import scanner as scanner_module

        body = json.dumps({f"k{i}": i for i in range(50)} | {"s": SECRET})
        with mock.patch.object(scanner_module, "MAX_FIELDS", 10):
            found = SCANNER.scan_request("POST", "/", {"Content-Type": "application/json"}, body)
            # The parsed values are scanned joined (their escapes undone), reported there.
            self.assertEqual(secret_locations(found), {"body.json (values)"})
            form = urlencode({f"k{i}": str(i) for i in range(50)} | {"s": SECRET})
            found = SCANNER.scan_request("POST", "/", {"Content-Type": "application/x-www-form-urlencoded"}, form)
            self.assertEqual(secret_locations(found), {"body"})

    def test_too_many_fields_keep_every_layer_without_the_raw_texts(self) -> None:
        # Past the limit the raw JSON is scanned as sent only; what its decoded layer found is
        # found in the parsed values, duplicate keys and code lists instead.
        from unittest import mock

        from bot_bottle.sidecar.dlp import scanner as scanner_module

        escaped = "".join(f"\\u{ord(c):04x}" for c in SECRET)  # one \\u escape per character in the raw text
        filler = {f"k{i}": f"v{i}" for i in range(50)}
        cases = {
            "base64 value": json.dumps(filler | {"s": base64.b64encode(SECRET.encode()).decode()}),
            "escaped value": json.dumps(filler).rstrip("}") + f', "s": "{escaped}"}}',
            "JSON inside a value": json.dumps(filler | {"s": json.dumps({"inner": SECRET}, ensure_ascii=False)}),
            "key": json.dumps(filler | {SECRET: 1}),
            "duplicate key": json.dumps(filler).rstrip("}") + f', "d": "{escaped}", "d": "clean"}}',
            "character codes": json.dumps(filler | {"s": [ord(c) for c in SECRET]}),
        }
        with mock.patch.object(scanner_module, "MAX_FIELDS", 10):
            for what, body in cases.items():
                with self.subTest(what):
                    found = SCANNER.scan_request("POST", "/", {"Content-Type": "application/json"}, body)
                    self.assertTrue(secret_locations(found), body[-200:])

    def test_too_many_query_parameters_are_scanned_as_text(self) -> None:
        from unittest import mock

        from bot_bottle.sidecar.dlp import scanner as scanner_module

        url = "/?" + "&".join(f"p{i}={i}" for i in range(30)) + f"&s={SECRET}"
        with mock.patch.object(scanner_module, "MAX_FIELDS", 10):
            self.assertEqual(secret_locations(SCANNER.scan_request("GET", url)), {"url.query"})
            self.assertTrue(SCANNER.redact_request("GET", url).unredacted)

    def test_many_multipart_parts(self) -> None:
        from unittest import mock

        from bot_bottle.sidecar.dlp import scanner as scanner_module

        body = multipart([(f"f{i}", None, b"x", {}) for i in range(30)] + [("s", None, SECRET.encode(), {})])
        with mock.patch.object(scanner_module, "MAX_FIELDS", 10):
            found = SCANNER.scan_request("POST", "/", {"Content-Type": "multipart/form-data; boundary=XyZ123boundary"},
                                         body)
        self.assertEqual(secret_locations(found), {"body"})

    def test_method_does_not_change_the_scan(self) -> None:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            with self.subTest(method=method):
                self.assertEqual(secret_locations(SCANNER.scan_request(method, f"/?k={SECRET}")), {"url.query.k"})

    def test_locations_render_lazily_and_safely(self) -> None:
        # A parameter name that is itself a token never becomes part of a location.
        findings = SCANNER.scan_request("GET", f"/?{TOKEN}={SECRET}")
        self.assertEqual({f.location for f in findings}, {"url.query[0].name", "url.query[0].value"})
