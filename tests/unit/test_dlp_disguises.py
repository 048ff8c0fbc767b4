"""Values sent in a disguise the scan must see through: another case, duplicate JSON keys, an
unencoded ``+``, escapes outside a parsed JSON body, wrapped base64, other byte encodings,
large bodies and pieces hidden in names."""

from __future__ import annotations

import base64
import gzip
import json
import random
import unittest
from urllib.parse import quote_plus

from bot_bottle.sidecar.dlp import Scanner
from tests.unit import test_dlp_fakes as fakes

RNG = random.Random(9090)
SECRET = fakes.secret_value(RNG, 40)
SCANNER = Scanner({"API_SECRET": SECRET})
URL = "https://api.example.test/v1/x"


def scan(body: bytes | str, content_type: str = "text/plain", scanner: Scanner = SCANNER) -> list:
    data = body.encode() if isinstance(body, str) else body
    return scanner.scan_request("POST", URL, [("Content-Type", content_type)], data)


def names(findings) -> set[str]:
    return {f.secret_name or f.detector for f in findings}


def streamed(body: bytes, scanner: Scanner = SCANNER, chunk: int = 65536, **kw):
    """``body`` through a ``StreamScan`` scanning as the proxy does, fed ``chunk`` bytes at a
    time: the scan (its ``findings``) and the bytes it let through."""
    from bot_bottle.sidecar.dlp.stream import StreamScan

    stream = StreamScan(scan_batch=lambda batch: scanner.scan_batch(batch, "body", deep=True),
                        scan_whole=lambda whole: scanner.scan_request("POST", "", [], whole), **kw)
    out = bytearray()
    for i in range(0, len(body), chunk):
        out += stream.feed(body[i:i + chunk])
    out += stream.finish()
    return stream, bytes(out)


class CaseChangeTest(unittest.TestCase):
    def test_known_secret_in_another_case(self) -> None:
        for variant in (SECRET.swapcase(), SECRET.lower(), SECRET.upper()):
            with self.subTest(variant=variant[:3]):
                findings = scan(f"value: {variant}\n")
                self.assertEqual(names(findings), {"API_SECRET"})
                self.assertEqual(findings[0].encoding, "case")

    def test_exact_value_is_reported_raw_once(self) -> None:
        findings = scan(f"value: {SECRET}\n")
        self.assertEqual([(f.secret_name, f.encoding) for f in findings], [("API_SECRET", None)])

    def test_short_secret_is_not_searched_without_case(self) -> None:
        scanner = Scanner({"SHORT": "Passw0rdXy"})
        self.assertEqual(scan("passw0rdxy", scanner=scanner), [])
        self.assertEqual(names(scan("Passw0rdXy", scanner=scanner)), {"SHORT"})

    def test_header_value_in_another_case(self) -> None:
        findings = SCANNER.scan_request("GET", URL, [("X-Trace", SECRET.swapcase())])
        self.assertEqual(names(findings), {"API_SECRET"})

    def test_case_changed_token_formats(self) -> None:
        # (Lower-cased AWS key ids are not searched: a probe for "akia"/"asia" cost a fifth of
        # the token scan's speed.)
        cases = {
            "github-token": fakes.github(RNG).lower(),
            "anthropic-api-key": fakes.anthropic(RNG).upper(),
        }
        for detector, value in cases.items():
            with self.subTest(detector):
                self.assertIn(detector, names(scan(f"x {value} y")))

    def test_lower_case_words_are_not_key_ids(self) -> None:
        for text in ("asiapacificregional2024", "akiaexamplekey12345xyz", "the asia2024conference talk",
                     "ghp_" + "a" * 36, "sk-ant-" + "x" * 40):
            with self.subTest(text):
                self.assertEqual(scan(text), [])


class DuplicateJsonKeyTest(unittest.TestCase):
    """The parse keeps a repeated key's last value; another reader may take the first."""

    def test_first_value_of_a_duplicate_key(self) -> None:
        body = '{"note": "%s", "note": "hello"}' % SECRET
        self.assertEqual(names(scan(body, "application/json")), {"API_SECRET"})

    def test_escaped_and_nested_shadowed_values(self) -> None:
        escaped = "".join(f"\\u{ord(c):04x}" for c in SECRET)
        body = '{"a": {"k": ["%s"]}, "a": 1}' % escaped
        self.assertEqual(names(scan(body, "application/json")), {"API_SECRET"})

    def test_token_format_and_websocket_message(self) -> None:
        aws = f"aws_access_key_id={fakes.aws_key_id(RNG)}"
        self.assertIn("aws-access-key-id", names(scan('{"c": "%s", "c": "x"}' % aws, "application/json")))
        self.assertEqual(names(SCANNER.scan_message('{"m": "%s", "m": "x"}' % SECRET)), {"API_SECRET"})

    def test_redaction_cannot_drop_it_silently(self) -> None:
        body = ('{"note": "%s", "note": "hello"}' % SECRET).encode()
        result = SCANNER.redact_request("POST", URL, [("Content-Type", "application/json")], body)
        self.assertTrue(result.findings)
        self.assertTrue(result.unredacted or SECRET.encode() not in (result.body or b""))

    def test_distinct_keys_are_not_reported_twice(self) -> None:
        findings = scan('{"a": "%s", "b": "x"}' % SECRET, "application/json")
        self.assertEqual([f.location for f in findings], ["body.json:$.a"])


class UnencodedPlusTest(unittest.TestCase):
    """Form and query decoding turns "+" into a blank: a value pasted as is is whole only raw."""

    PLUS = "Zq8+Lm3/Rt7+Wx2+Kp9/Hv4+Ns6/Bc1+Fd5/Jg0+"

    def setUp(self) -> None:
        self.scanner = Scanner({"S3_SECRET": self.PLUS})

    def test_form_body(self) -> None:
        findings = self.scanner.scan_request("POST", URL, [("Content-Type", "application/x-www-form-urlencoded")],
                                             f"a=1&data={self.PLUS}".encode())
        self.assertEqual(names(findings), {"S3_SECRET"})

    def test_query(self) -> None:
        self.assertEqual(names(self.scanner.scan_request("GET", f"{URL}?data={self.PLUS}")), {"S3_SECRET"})

    def test_token_format_assignment_in_a_form(self) -> None:
        key = "sN6f1JfwItMt7fXS/R78f8v44LJpx13pn+WGySnu"
        findings = SCANNER.scan_request("POST", URL, [("Content-Type", "application/x-www-form-urlencoded")],
                                        f"aws_secret_access_key={key}".encode())
        self.assertIn("aws-secret-access-key", names(findings))

    def test_encoded_value_is_reported_once_at_its_field(self) -> None:
        findings = self.scanner.scan_request("GET", f"{URL}?x=a+b&data={quote_plus(self.PLUS)}")
        self.assertEqual([f.location for f in findings], ["url.query.data"])

    def test_redaction_of_a_raw_form_value(self) -> None:
        result = self.scanner.redact_request("POST", URL, [("Content-Type", "application/x-www-form-urlencoded")],
                                             f"data={self.PLUS}".encode())
        self.assertEqual(result.unredacted, ())
        self.assertNotIn(self.PLUS.encode(), result.body or b"")


def wrap(encoded: str, width: int = 76, newline: str = "\n") -> str:
    return newline.join(encoded[i : i + width] for i in range(0, len(encoded), width)) + newline


class WrappedBase64Test(unittest.TestCase):
    """``base64 .env`` wraps at 76 columns: a value may straddle a line break."""

    def test_secret_and_token_across_line_breaks(self) -> None:
        aws = f"aws_access_key_id={fakes.aws_key_id(RNG)}\n"
        for offset in range(0, 80, 7):
            env = f"# config\n{'X' * offset}\nAPI_URL=https://example.com\nSECRET={SECRET}\n{aws}DEBUG=0\n"
            for newline in ("\n", "\r\n"):
                text = wrap(base64.b64encode(env.encode()).decode(), newline=newline)
                with self.subTest(offset=offset, newline=newline):
                    self.assertIn("API_SECRET", names(scan(text)))
                    self.assertIn("API_SECRET", names(scan(json.dumps({"file": text}), "application/json")))
                    # one finding per encoded run: the token format is seen by a scanner without secrets
                    self.assertIn("aws-access-key-id", names(Scanner({}).scan_text(text, deep=True)))

    def test_pem_width_and_short_last_line(self) -> None:
        text = wrap(base64.b64encode(f"token: {SECRET} end".encode()).decode(), width=64)
        self.assertIn("API_SECRET", names(scan(text)))

    def test_separate_values_on_consecutive_lines_stay_separate(self) -> None:
        first = base64.b64encode(b"harmless text, nothing here!!").decode()  # not a multiple of 4 wide
        text = first.rstrip("=") + "\n" + base64.b64encode(f"s={SECRET}".encode()).decode() + "\n"
        self.assertIn("API_SECRET", names(scan(text)))

    def test_wrapped_binary_is_not_a_finding(self) -> None:
        blob = bytes(RNG.randrange(256) for _ in range(3000))
        self.assertEqual(scan(wrap(base64.b64encode(blob).decode())), [])


class OtherEncodingsTest(unittest.TestCase):
    def test_whole_value_encodings_of_common_tools(self) -> None:
        data = SECRET.encode()
        forms = {
            "base32": base64.b32encode(data).decode(),
            "hex": data.hex(" "),
            "hex ": data.hex(" ").upper(),
            "utf-16": SECRET.encode("utf-16"),
            "utf-16 ": SECRET.encode("utf-16-be"),
            "utf-16+base64": base64.b64encode(SECRET.encode("utf-16-le")).decode(),
        }
        for encoding, body in forms.items():
            with self.subTest(encoding):
                findings = scan(body if isinstance(body, bytes) else f"x {body} y".encode())
                self.assertEqual([(f.secret_name, f.encoding) for f in findings], [("API_SECRET", encoding.strip())])


def escaped(value: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in value)


class EscapesOutsideParsedJsonTest(unittest.TestCase):
    """JSON's parser undoes escapes only in a body it parsed; elsewhere the scan must."""

    def test_unicode_escapes_where_json_is_not_parsed(self) -> None:
        token = fakes.github(RNG)
        cases = {
            "ndjson": ('{"a":1}\n{"note":"' + escaped(SECRET) + '"}\n', "application/x-ndjson"),
            "xssi prefix": (")]}'\n{\"note\":\"" + escaped(SECRET) + "\"}", "application/json"),
            "json in a json string": (json.dumps({"payload": '{"note":"' + escaped(SECRET) + '"}'}),
                                      "application/json"),
            "es6 braces": ("".join(f"\\u{{{ord(c):x}}}" for c in SECRET), "text/javascript"),
        }
        for label, (body, content_type) in cases.items():
            with self.subTest(label):
                self.assertEqual(names(scan(body, content_type)), {"API_SECRET"})
        self.assertEqual(names(scan("x=" + escaped(token), "text/plain")), {"github-token"})

    def test_html_references_and_x_escapes(self) -> None:
        cases = {
            "decimal": "".join(f"&#{ord(c)};" for c in SECRET),
            "hex": "".join(f"&#x{ord(c):x};" for c in SECRET),
            "no semicolons": "".join(f"&#{ord(c)}" for c in SECRET),
            "x escapes": "".join(f"\\x{ord(c):02x}" for c in SECRET),
            "U escapes (Python)": "".join(f"\\U{ord(c):08x}" for c in SECRET),
            "%u escapes (escape(), IIS)": "".join(f"%u{ord(c):04X}" for c in SECRET),
        }
        for label, body in cases.items():
            with self.subTest(label):
                findings = scan(f"<p>{body}</p>", "text/html")
                self.assertEqual([(f.secret_name, f.encoding) for f in findings], [("API_SECRET", "escape")])
                self.assertEqual(findings[0].start, 3)
                self.assertEqual(findings[0].end, 3 + len(body))

    def test_partly_escaped_value_and_escaped_slash(self) -> None:
        half = len(SECRET) // 2
        findings = scan(SECRET[:half] + escaped(SECRET[half:]))
        self.assertEqual(names(findings), {"API_SECRET"})
        aws = fakes.aws_secret(RNG)
        while "/" not in aws:
            aws = fakes.aws_secret(RNG)
        body = f"aws_secret_access_key = {aws.replace('/', chr(92) + '/')}"
        self.assertIn("aws-secret-access-key", names(scan(body)))

    def test_escapes_inside_an_encoding(self) -> None:
        body = base64.b64encode(("note: " + escaped(SECRET)).encode()).decode()
        findings = scan(body)
        self.assertEqual([(f.secret_name, f.encoding) for f in findings], [("API_SECRET", "base64+escape")])

    def test_redaction_replaces_the_escaped_form(self) -> None:
        body = "a " + "".join(f"&#{ord(c)};" for c in SECRET) + " b"
        result = SCANNER.redact_request("POST", URL, [("Content-Type", "text/html")], body.encode())
        self.assertEqual(result.body, b"a [REDACTED:API_SECRET] b")
        self.assertEqual(result.unredacted, ())

    def test_benign_escapes_are_not_findings(self) -> None:
        body = json.dumps({"text": "caf\u00e9 \\n \\t &#169; &amp; \\x00 C:\\Users\\me"})
        self.assertEqual(scan("\n".join([body] * 3), "application/x-ndjson"), [])
        self.assertEqual(scan("<p>&#8212; &#x2014; caf&eacute;</p>", "text/html"), [])


class JsonOverTheFieldCapTest(unittest.TestCase):
    def test_values_are_scanned_unescaped(self) -> None:
        key = fakes.private_key(RNG)
        doc = {"pad": ["a"] * 10_001, "note": SECRET}
        body = json.dumps(doc).replace(json.dumps(SECRET), '"' + escaped(SECRET) + '"')
        self.assertEqual(names(scan(body, "application/json")), {"API_SECRET"})
        # "\n" inside a JSON string is undone by the parse alone.
        body = json.dumps({"pad": ["a"] * 10_001, "key": key})
        self.assertIn("private-key", {f.detector for f in scan(body, "application/json")})

    def test_many_benign_values_are_not_findings(self) -> None:
        body = json.dumps({"pad": [f"item {i}" for i in range(10_001)], "note": "caf\u00e9"})
        self.assertEqual(scan(body, "application/json"), [])


def lorem(size: int) -> bytes:
    return (b"lorem ipsum dolor sit amet, consectetur adipiscing elit\n" * (size // 50 + 1))[:size]


class LargeBodyTest(unittest.TestCase):
    """Past ``deep_limit`` a body is decoded in overlapping windows, not left to the direct layer."""

    def test_encoded_values_past_the_deep_limit(self) -> None:
        filler = lorem(2 * 1024 * 1024 + 10)
        pair = f"aws_access_key_id={fakes.aws_key_id(RNG)}\n".encode()
        anthropic = fakes.anthropic(RNG).encode()
        cases = {
            "aws-access-key-id": base64.b64encode(pair),
            "anthropic-api-key": "".join(f"%{b:02x}" for b in anthropic).encode(),
            "API_SECRET": base64.b64encode(gzip.compress(SECRET.encode())),
        }
        for name, encoded in cases.items():
            with self.subTest(name):
                self.assertIn(name, names(scan(filler + b" " + encoded + b" " + filler[:1000])))

    def test_value_across_a_window_boundary(self) -> None:
        encoded = base64.b64encode(f"key: {SECRET}".encode())
        start = 2 * 1024 * 1024 - len(encoded) // 2  # cut by the first window's end
        body = lorem(start - 1) + b" " + encoded + b" " + lorem(1024 * 1024)
        findings = scan(body)
        self.assertEqual([(f.secret_name, f.encoding, f.start) for f in findings],
                         [("API_SECRET", "base64", start)])

    def test_spent_decode_budget_in_a_large_json_body(self) -> None:
        blob = base64.b64encode(b"The quick brown fox jumps over the lazy dog. " * 40000).decode()[: 2 * 1024 * 1024 - 4]
        note = base64.b64encode(gzip.compress(SECRET.encode())).decode()
        body = json.dumps({"a": blob, "b": blob, "c": blob, "note": note})
        self.assertEqual(names(scan(body, "application/json")), {"API_SECRET"})

    def test_large_plain_bodies_are_not_blocked_for_their_size(self) -> None:
        self.assertEqual(scan(lorem(3 * 1024 * 1024)), [])
        text = lorem(3 * 1024 * 1024).replace(b"dolor", b"%20s%3D")  # percent escapes all over
        self.assertEqual(scan(text), [])

    def test_inflation_past_the_budget_is_a_scan_limit(self) -> None:
        bomb = base64.b64encode(gzip.compress(b"A" * (24 * 1024 * 1024))).decode()
        findings = scan(f"data: {bomb}\n")
        self.assertIn("scan-limit", {f.detector for f in findings})
        self.assertTrue(all(SECRET not in str(f.to_dict()) for f in findings))

    def test_streamed_batches_decode_as_well(self) -> None:
        encoded = base64.b64encode(f"token: {fakes.github(RNG)}".encode())
        body = lorem(3 * 1024 * 1024) + encoded + lorem(1024)
        stream, _ = streamed(body)
        self.assertEqual({f.detector for f in stream.findings}, {"github-token"})
        self.assertEqual(SCANNER.scan_batch(bytes(RNG.randrange(256) for _ in range(1 << 20)), deep=True), [])


class NamesInLocationsTest(unittest.TestCase):
    """A location never carries a piece of a bottle secret, whatever names the agent chose."""

    def assert_no_piece(self, findings: list) -> None:
        self.assertTrue(findings)
        for finding in findings:
            text = str(finding.to_dict())
            for i in range(len(SECRET) - 4):
                self.assertNotIn(SECRET[i : i + 5], text)

    def test_pieces_as_json_keys_across_requests(self) -> None:
        pieces = [SECRET[i : i + 10] for i in range(0, 40, 10)]
        memory = SCANNER.new_memory()
        body = json.dumps({p: 1 for p in pieces}).encode()
        findings = SCANNER.scan_request("POST", URL, [("Content-Type", "application/json")], body, memory=memory)
        self.assert_no_piece(findings)

    def test_short_piece_as_the_key_of_a_token(self) -> None:
        for key in (SECRET[3:9], SECRET[10:15].lower(), "a8f3k2m9"):
            with self.subTest(key=key):
                body = json.dumps({"data": {key: fakes.github(RNG)}})
                findings = scan(body, "application/json")
                self.assertEqual([f.location for f in findings], ["body.json:$.data[?]"])
                findings = SCANNER.scan_request("GET", f"{URL}?{key}={fakes.github(RNG)}", [])
                self.assertEqual([f.location for f in findings], ["url.query[0].value"])

    def test_ordinary_names_stay_readable(self) -> None:
        body = json.dumps({"messages": [{"role": "user", "content": SECRET}], "max_tokens": 5})
        self.assertEqual([f.location for f in scan(body, "application/json")], ["body.json:$.messages[0].content"])
        findings = SCANNER.scan_request("GET", f"{URL}?q={SECRET}", [("X-Api-Key", SECRET), ("X-Amz-Date", SECRET)])
        self.assertEqual(sorted(f.location for f in findings), ["header:x-amz-date", "header:x-api-key", "url.query.q"])
        for name in ("getUserByID", "userId42", "x-goog-api-client", "base64Data"):
            findings = SCANNER.scan_request("GET", f"{URL}?{name}={SECRET}", [])
            self.assertEqual([f.location for f in findings], [f"url.query.{name}"])


if __name__ == "__main__":
    unittest.main()
