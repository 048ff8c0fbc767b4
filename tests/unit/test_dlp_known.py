"""The bottle's own secrets: found raw and under every encoding, inside larger blobs, split across
fields, in host names; too-short values skipped and reported; names, never values, reported."""

from __future__ import annotations

import base64
import json
import codecs
import random
import unittest
from urllib.parse import quote, quote_plus

from bot_bottle.sidecar.dlp import KNOWN_SECRET, MIN_SECRET_LENGTH, Scanner, short_secrets
from bot_bottle.sidecar.dlp.encodings import b32_cores, b64_core, b64_cores, percent_decode, url_full
from bot_bottle.sidecar.dlp.known import KnownSecrets
from tests.unit import test_dlp_fakes as fakes

RNG = random.Random(2024)
SECRET = fakes.secret_value(RNG, 28)
TOKEN = fakes.rand(RNG, 40, fakes.B64)  # base64 alphabet: its encodings contain + and /
OTHER = fakes.secret_value(RNG, 16)
SECRETS = {"DB_PASSWORD": SECRET, "ROUTE_TOKEN": TOKEN, "OTHER": OTHER, "PIN": "1234"}
SCANNER = Scanner(SECRETS)


def names(findings) -> list[str]:
    return sorted({f.secret_name for f in findings if f.secret_name})


def encodings(findings) -> set[str | None]:
    return {f.encoding for f in findings}


class EncodingHelpersTest(unittest.TestCase):
    def test_b64_cores_appear_inside_any_blob(self) -> None:
        data = SECRET.encode()
        for prefix_len in range(9):
            for suffix_len in range(4):
                prefix, suffix = RNG.randbytes(prefix_len), RNG.randbytes(suffix_len)
                blob = base64.b64encode(prefix + data + suffix).decode()
                with self.subTest(prefix=prefix_len, suffix=suffix_len):
                    self.assertIn(b64_core(data, prefix_len % 3), blob)

    def test_b64_core_lengths(self) -> None:
        for n in range(8, 20):
            for offset, core in enumerate(b64_cores(bytes(n))):
                with self.subTest(n=n, offset=offset):
                    self.assertEqual(len(core), (offset + n) * 8 // 6 - (-(-offset * 8 // 6)))

    def test_b32_cores_inside_blobs(self) -> None:
        data = SECRET.encode()
        for prefix_len in range(6):
            blob = base64.b32encode(RNG.randbytes(prefix_len) + data + RNG.randbytes(2)).decode().lower()
            with self.subTest(prefix=prefix_len):
                self.assertIn(b32_cores(data)[prefix_len % 5], blob)

    def test_url_full(self) -> None:
        self.assertEqual(url_full(b"A/"), "%41%2f")

    def test_percent_decode_maps_offsets_back(self) -> None:
        text = "a%41b%2Fc%%zz%4a"
        decoded = percent_decode(text)
        assert decoded is not None
        self.assertEqual(decoded.text, "aAb/c%%zzJ")
        self.assertEqual(decoded.to_parent(1, 2), (1, 4))  # "A" <- "%41"
        self.assertEqual(decoded.to_parent(3, 4), (5, 8))  # "/" <- "%2F"
        self.assertEqual(decoded.to_parent(0, 10), (0, 16))
        self.assertIsNone(percent_decode("no escapes here"))


class RawAndEncodedTest(unittest.TestCase):
    def assert_secret(self, text: str, name: str = "DB_PASSWORD", encoding: str | None = "any") -> None:
        found = SCANNER.scan_text(text)
        self.assertIn(name, names(found), f"{name} not found")
        if encoding != "any":
            self.assertIn(encoding, {f.encoding for f in found if f.secret_name == name})

    def test_raw(self) -> None:
        self.assert_secret(f"the password is {SECRET}.", encoding=None)
        self.assert_secret(SECRET, encoding=None)

    def test_reversed(self) -> None:
        self.assert_secret(f"x={SECRET[::-1]}", encoding="reversed")

    def test_hex_lower_upper_mixed(self) -> None:
        h = SECRET.encode().hex()
        for form in (h, h.upper(), "".join(c.upper() if i % 3 else c for i, c in enumerate(h))):
            with self.subTest(form=form[:8]):
                self.assert_secret(f"data={form}", encoding="hex")

    def test_base32_and_utf16_forms_after_any_prefix(self) -> None:
        # PowerShell's -EncodedCommand (base64 of UTF-16LE) of "$k='...'", base32 of "k=...",
        # and the hex of UTF-16: decoded as the body is scanned, whatever text comes first.
        for prefix in ("", "k", "k=", "$k=", "$k='", "key: "):
            forms = {"utf-16+base64": base64.b64encode((prefix + SECRET).encode("utf-16-le")),
                     "utf-16+base64 (big-endian)": base64.b64encode((prefix + SECRET).encode("utf-16-be")),
                     "base32": base64.b32encode((prefix + SECRET).encode()),
                     "base32 (lower case)": base64.b32encode((prefix + SECRET).encode()).lower().rstrip(b"="),
                     "hex": (prefix + SECRET).encode("utf-16-le").hex().encode()}
            for label, form in forms.items():
                with self.subTest(prefix=prefix, form=label):
                    found = SCANNER.scan_request("POST", "https://x.test/", [("Content-Type", "text/plain")],
                                                 b"cmd " + form + b"\n")
                    self.assertIn(("DB_PASSWORD", label.split(" (")[0]), {(f.secret_name, f.encoding) for f in found})

    def test_base64_every_variant(self) -> None:
        data = TOKEN.encode()
        for prefix_len in range(6):
            prefix = RNG.randbytes(prefix_len)
            suffix = RNG.randbytes(RNG.randint(0, 5))
            blob = base64.b64encode(prefix + data + suffix)
            for form, label in ((blob.decode(), "std"), (blob.rstrip(b"=").decode(), "unpadded"),
                                (base64.urlsafe_b64encode(prefix + data + suffix).decode(), "urlsafe"),
                                (base64.urlsafe_b64encode(prefix + data + suffix).rstrip(b"=").decode(), "url-unpadded")):
                with self.subTest(prefix=prefix_len, form=label):
                    self.assert_secret(f"payload={form}&x=1", "ROUTE_TOKEN", "base64")

    def test_base64_inside_a_large_blob(self) -> None:
        blob = base64.b64encode(RNG.randbytes(3001) + SECRET.encode() + RNG.randbytes(5000)).decode()
        self.assert_secret(blob, encoding="base64")

    def test_base64_of_basic_auth(self) -> None:
        header = "Basic " + base64.b64encode(f"user:{SECRET}".encode()).decode()
        self.assert_secret(header, encoding="base64")

    def test_url_encodings(self) -> None:
        for form in (url_full(SECRET.encode()), url_full(SECRET.encode()).upper(), quote(SECRET, safe=""),
                     quote_plus(SECRET)):
            with self.subTest(form=form[:12]):
                self.assert_secret(f"q={form}")

    def test_url_encoding_partial_in_a_request(self) -> None:
        # Every third character escaped: no fixed needle, the decoding layer finds it.
        partial = "".join(f"%{ord(c):02X}" if i % 3 == 0 else c for i, c in enumerate(SECRET))
        found = SCANNER.scan_request("GET", f"https://api.test/x?v={partial}")
        self.assertIn("DB_PASSWORD", names(found))
        found = SCANNER.scan_request("POST", "https://api.test/x", {"content-type": "text/plain"}, f"v={partial}")
        self.assertIn("DB_PASSWORD", names(found))

    def test_double_encodings_in_a_request(self) -> None:
        b64_then_url = quote(base64.b64encode(b"k=" + SECRET.encode()).decode(), safe="")
        hex_then_b64 = base64.b64encode(SECRET.encode().hex().encode()).decode()
        for form in (b64_then_url, hex_then_b64, quote(quote(SECRET, safe=""), safe="")):
            with self.subTest(form=form[:12]):
                found = SCANNER.scan_request("GET", f"https://api.test/?d={form}")
                self.assertIn("DB_PASSWORD", names(found))

    def test_rot13_in_every_scan_other_letter_shifts_in_deep_ones(self) -> None:
        self.assertEqual(names(SCANNER.scan_text(codecs.encode(SECRET, "rot13"))), ["DB_PASSWORD"])
        # Other shifts are searched in deep scans (requests, pushes, uploads: dlp.shifts), not in
        # the direct layer every file gets.
        shifted = "".join(chr((ord(c) - 97 + 3) % 26 + 97) if "a" <= c <= "z"
                          else chr((ord(c) - 65 + 3) % 26 + 65) if "A" <= c <= "Z" else c for c in SECRET)
        self.assertEqual(names(SCANNER.scan_text(shifted)), [])
        self.assertEqual(names(SCANNER.scan_text(shifted, deep=True)), ["DB_PASSWORD"])

    def test_utf8_secret_in_bytes_and_text(self) -> None:
        value = "pässwörd-" + fakes.rand(RNG, 12)
        scanner = Scanner({"UNI": value})
        self.assertEqual(names(scanner.scan_text(f"x {value} y")), ["UNI"])
        self.assertEqual(names(scanner.scan_text(f"x {value} y".encode())), ["UNI"])
        self.assertEqual(names(scanner.scan_text(base64.b64encode(value.encode()).decode())), ["UNI"])

    def test_every_occurrence_is_reported(self) -> None:
        found = [f for f in SCANNER.scan_text(f"{SECRET} and {SECRET} and {SECRET}") if f.encoding is None]
        self.assertEqual(len(found), 3)

    def test_offsets_point_at_the_value(self) -> None:
        text = f"prefix {SECRET} suffix"
        finding = SCANNER.scan_text(text)[0]
        self.assertEqual(text[finding.start : finding.end], SECRET)

    def test_secret_that_is_also_a_token_reports_the_name(self) -> None:
        token = fakes.github(RNG)
        scanner = Scanner({"GITHUB_TOKEN": token})
        found = scanner.scan_text(f"auth {token}")
        self.assertEqual([(f.detector, f.secret_name) for f in found], [(KNOWN_SECRET, "GITHUB_TOKEN")])

    def test_duplicate_values_report_one_name(self) -> None:
        scanner = Scanner({"B_NAME": SECRET, "A_NAME": SECRET})
        self.assertEqual(names(scanner.scan_text(SECRET)), ["A_NAME"])

    def test_surrounding_whitespace_is_ignored(self) -> None:
        scanner = Scanner({"X": f"  {SECRET}\n"})
        self.assertEqual(names(scanner.scan_text(f"v={SECRET}")), ["X"])

    def test_near_misses(self) -> None:
        # (The value in another case is no near miss: see test_dlp_disguises.CaseChangeTest.)
        for text in (SECRET[:-1], SECRET[1:], SECRET[:-1].lower(),
                     base64.b64encode(SECRET[:-2].encode()).decode()[:-4]):
            with self.subTest(text=text[:6]):
                self.assertNotIn("DB_PASSWORD", names(SCANNER.scan_text(f"v={text} ")))


class ShortSecretTest(unittest.TestCase):
    def test_short_values_are_skipped_and_reported(self) -> None:
        self.assertEqual(SCANNER.skipped_secrets, ("PIN",))
        self.assertNotIn("PIN", SCANNER.secret_names)
        self.assertEqual(names(SCANNER.scan_text("pin 1234 1234")), [])

    def test_helper(self) -> None:
        self.assertEqual(MIN_SECRET_LENGTH, 8)
        self.assertEqual(short_secrets({"A": "1234567", "B": "12345678", "C": "", "D": "  abc  "}), ["A", "C", "D"])
        self.assertEqual(short_secrets({"A": "123"}, min_length=3), [])

    def test_custom_minimum(self) -> None:
        from bot_bottle.sidecar.dlp import ScanOptions

        scanner = Scanner({"PIN": "98765"}, ScanOptions(min_secret_length=5))
        self.assertEqual(names(scanner.scan_text("pin 98765")), ["PIN"])
        self.assertEqual(scanner.skipped_secrets, ())

    def test_invalid_input(self) -> None:
        with self.assertRaises(TypeError) as ctx:
            KnownSecrets({"X": 12345678})  # type: ignore[dict-item]
        self.assertNotIn("12345678", str(ctx.exception))
        with self.assertRaises(ValueError):
            KnownSecrets({}, min_length=0)

    def test_no_secrets(self) -> None:
        scanner = Scanner()
        self.assertEqual(scanner.secret_names, ())
        self.assertEqual(scanner.scan_text(SECRET), [])


class SplitTest(unittest.TestCase):
    def test_halves_in_two_query_parameters(self) -> None:
        half = len(SECRET) // 2
        found = SCANNER.scan_request("GET", f"https://x.test/?a={SECRET[:half]}&b={SECRET[half:]}")
        split = [f for f in found if f.encoding == "split"]
        self.assertEqual(names(split), ["DB_PASSWORD"])
        self.assertIn("+", split[0].location)

    def test_three_pieces_out_of_order(self) -> None:
        a, b, c = SECRET[:9], SECRET[9:18], SECRET[18:]
        found = SCANNER.scan_request("GET", f"https://x.test/?c={c}&z=1&a={a}&y=2&b={b}")
        self.assertIn("DB_PASSWORD", names(found))

    def test_shuffled_pieces_whose_short_tail_is_left_out_or_too_short_to_count(self) -> None:
        # SECRET has 28 characters: pieces of 5 or 6 leave a tail of 3 or 4; dropping it, or the
        # one piece shorter than a field the cover counts, leaves no more than the tolerance.
        for size in (5, 6):
            chunks = [SECRET[i:i + size] for i in range(0, len(SECRET), size)]
            order = list(range(len(chunks)))
            random.Random(size).shuffle(order)
            for kept in (chunks, chunks[:-1]):
                with self.subTest(size=size, tail=len(kept) == len(chunks)):
                    body = json.dumps({str(i): kept[i] for i in order if i < len(kept)})
                    found = SCANNER.scan_request("POST", "/api", {"Content-Type": "application/json"}, body)
                    self.assertIn(("DB_PASSWORD", "split"), {(f.secret_name, f.encoding) for f in found})
        # Half the secret is not the secret.
        body = json.dumps({str(i): SECRET[i:i + 5] for i in range(0, len(SECRET) // 2, 5)})
        self.assertEqual(SCANNER.scan_request("POST", "/api", {"Content-Type": "application/json"}, body), [])

    def test_pieces_in_json_fields(self) -> None:
        body = '{"first": "%s", "meta": {"second": "%s"}}' % (SECRET[:10], SECRET[10:])
        found = SCANNER.scan_request("POST", "/api", {"Content-Type": "application/json"}, body)
        self.assertEqual([f.encoding for f in found], ["split"])
        self.assertEqual(found[0].location, "body.json:$.first+body.json:$.meta.second")

    def test_pieces_across_url_and_body(self) -> None:
        body = "part=" + SECRET[12:]
        found = SCANNER.scan_request("POST", f"/api?part={SECRET[:12]}",
                                     {"Content-Type": "application/x-www-form-urlencoded"}, body)
        self.assertIn("DB_PASSWORD", names(found))

    def test_pieces_in_headers(self) -> None:
        found = SCANNER.scan_request("GET", "/", [("X-A", SECRET[:14]), ("X-B", SECRET[14:])])
        self.assertIn("DB_PASSWORD", names(found))

    def test_pieces_in_path_segments(self) -> None:
        found = SCANNER.scan_request("GET", f"/upload/{SECRET[:13]}/{SECRET[13:]}/x")
        self.assertIn("DB_PASSWORD", names(found))

    def test_hex_encoded_pieces(self) -> None:
        h = SECRET.encode().hex()
        found = SCANNER.scan_request("GET", f"/?a={h[:20]}&b={h[20:]}")
        self.assertIn("DB_PASSWORD", names(found))

    def test_base64_encoded_pieces_in_any_order(self) -> None:
        p1 = base64.b64encode(SECRET[:12].encode()).decode()
        p2 = base64.b64encode(SECRET[12:].encode()).decode()
        found = SCANNER.scan_request("GET", f"/?x={p2}&y={p1}")
        self.assertIn("DB_PASSWORD", names(found))

    def test_token_format_split_in_two(self) -> None:
        token = fakes.github(RNG)
        found = Scanner().scan_request("GET", f"/?a={token[:20]}&b={token[20:]}")
        self.assertEqual([(f.detector, f.encoding) for f in found], [("github-token", "split")])

    def test_fragments_that_do_not_cover_are_not_a_split(self) -> None:
        found = SCANNER.scan_request("GET", f"/?a={SECRET[:6]}&b={SECRET[-6:]}&c=hello")
        self.assertEqual(names(found), [])

    def test_benign_parameters_are_not_a_split(self) -> None:
        found = SCANNER.scan_request("GET", "/search?q=python+tutorial&page=2&sort=desc&lang=en&limit=50")
        self.assertEqual(found, [])


class HostTest(unittest.TestCase):
    def assert_host(self, host: str, encoding: str | None) -> None:
        found = SCANNER.scan_host(host)
        self.assertIn("DB_PASSWORD", names(found), host)
        self.assertIn(encoding, encodings(found))
        for finding in found:
            self.assertEqual(finding.location, "host")

    def test_hex_label(self) -> None:
        self.assert_host(f"{SECRET.encode().hex()}.evil.example", "hex")

    def test_hex_split_over_labels(self) -> None:
        h = SECRET.encode().hex()
        self.assert_host(f"{h[:30]}.{h[30:]}.evil.example", "hex")

    def test_base32_label(self) -> None:
        b32 = base64.b32encode(SECRET.encode()).decode().rstrip("=").lower()
        self.assert_host(f"{b32[:40]}.{b32[40:]}.exfil.example", "base32")

    def test_base32_at_an_offset(self) -> None:
        b32 = base64.b32encode(b"xy" + SECRET.encode()).decode().rstrip("=").lower()
        self.assert_host(f"{b32}.exfil.example", "base32")

    def test_raw_label_any_case(self) -> None:
        plain = "Kq7pL2vX9mN4wR8t"
        scanner = Scanner({"P": plain})
        self.assertEqual(names(scanner.scan_host(f"{plain}.evil.example")), ["P"])
        self.assertEqual(names(scanner.scan_host(f"{plain.lower()}.evil.example:443")), ["P"])

    def test_url_safe_base64_label(self) -> None:
        label = base64.urlsafe_b64encode(b"k" + SECRET.encode()).decode().rstrip("=")
        self.assert_host(f"{label.lower()}.evil.example", "base64")

    def test_punycode_label_in_lookalike_letters(self) -> None:
        # "е" (Cyrillic) for "e", "ѕ" for "s", "а" for "a": an IDN label that reads as the secret.
        plain = "hs-6b18ce063780fc3b-host-var-secret"
        disguised = plain.replace("e", "\u0435").replace("s", "\u0455").replace("a", "\u0430")
        label = "xn--" + disguised.encode("punycode").decode("ascii")
        scanner = Scanner({"P": plain})
        found = scanner.scan_host(f"{label}.allowed.example")
        self.assertEqual(names(found), ["P"])
        self.assertEqual(encodings(found), {"punycode"})
        self.assertEqual((found[0].start, found[0].end), (0, len(f"{label}.allowed.example")))
        # Ordinary IDN names, and a label that only starts like punycode, are nothing.
        for host in ("xn--mnchen-3ya.de", "xn--80ak6aa92e.com", "xn--zzzz-.example", "xn--.example"):
            with self.subTest(host=host):
                self.assertEqual(scanner.scan_host(host), [])

    def test_token_format_in_a_label(self) -> None:
        token = fakes.npm(RNG)
        found = Scanner().scan_host(f"{token}.evil.example")
        self.assertEqual([f.detector for f in found], ["npm-token"])

    def test_host_in_a_request_url(self) -> None:
        found = SCANNER.scan_request("GET", f"https://{SECRET.encode().hex()}.evil.example/ping")
        self.assertIn("url.host", {f.location for f in found})

    def test_benign_hosts(self) -> None:
        for host in ("registry.npmjs.org", "objects.githubusercontent.com", "d1a2b3c4d5e6f7.cloudfront.net",
                     "bucket-name-1234.s3.us-east-1.amazonaws.com", "[2001:db8::1]", "127.0.0.1:8080",
                     "api.anthropic.com", "a3f9c2d4e5b6a7c8d9e0f1a2b3c4d5e6.example.com", ""):
            with self.subTest(host=host):
                self.assertEqual(SCANNER.scan_host(host), [])


class ReprTest(unittest.TestCase):
    def test_scanner_and_known_never_show_values(self) -> None:
        for obj in (SCANNER, SCANNER.known, list(SCANNER.known._needles)):
            text = repr(obj) + str(obj)
            for value in (SECRET, TOKEN, OTHER):
                self.assertNotIn(value, text)
        self.assertIn("DB_PASSWORD", repr(SCANNER))
