"""A token format cut in two over pieces a server reads as neighbouring fields, but the parse
into segments did not: cookies (one header or HTTP/2 crumbs), pairs separated by ";" in a query
or form, NDJSON lines and the values of a repeated JSON key. Each such shape must be found by
the adjacent-fields check, and block on a redact route; look-alike benign requests stay clean."""

from __future__ import annotations

import hashlib
import json
import random
import string
import unittest
from urllib.parse import parse_qsl

from bot_bottle.sidecar.dlp import Finding, Scanner

GITHUB = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
ANTHROPIC = "sk-ant-api03-h7Kp2Qw9Zr4Xm8Tn1Lv6Bc3Jd5Fs0GaXyZ12345678-AbCdEfGh"
TOKENS = {"github-token": GITHUB, "anthropic-api-key": ANTHROPIC}
SECRETS = {"HOST_SECRET": "Zq7tKp2WvX9mRb4LcN8yHd3FsG6jT1uE"}
FORM = ("Content-Type", "application/x-www-form-urlencoded")
JSON = ("Content-Type", "application/json")
NDJSON = ("Content-Type", "application/x-ndjson")
URL = "https://api.example.com/v1/items"

Request = tuple[str, str, list[tuple[str, str]], bytes | None]


def halves(token: str, cut: int | None = None) -> tuple[str, str]:
    at = len(token) // 2 if cut is None else cut
    return token[:at], token[at:]


def shapes(first: str, second: str) -> dict[str, Request]:
    """Every shape of this file with ``first`` and ``second`` as the two neighbouring values."""
    return {
        "cookie": ("GET", URL, [("Cookie", f"theme=dark; a={first}; b={second}; lang=en")], None),
        "cookie crumbs": ("GET", URL, [("cookie", f"a={first}"), ("accept", "*/*"), ("cookie", f"b={second}")],
                          None),
        "query ;": ("GET", f"{URL}?a={first};b={second}", [], None),
        "query ; and &": ("GET", f"{URL}?x=1&a={first};b={second}&y=2", [], None),
        "form ;": ("POST", URL, [FORM], f"a={first};b={second}".encode()),
        "ndjson": ("POST", URL, [NDJSON], f'{{"a":"{first}"}}\n{{"b":"{second}"}}\n'.encode()),
        "ndjson as json": ("POST", URL, [JSON], f'{{"a":"{first}"}}\r\n{{"b":"{second}"}}'.encode()),
        "json lines": ("POST", URL, [("Content-Type", "application/jsonl")],
                       f'{{"a":"{first}"}}\n{{"b":"{second}"}}\n'.encode()),
        "json seq": ("POST", URL, [("Content-Type", "application/json-seq")],
                     f'\x1e{{"a":"{first}"}}\n\x1e{{"b":"{second}"}}\n'.encode()),
        "duplicate key": ("POST", URL, [JSON], f'{{"a":"{first}","a":"{second}"}}'.encode()),
        "duplicate key nested": ("POST", URL, [JSON],
                                 f'{{"x":{{"n":1,"a":["{first}"],"m":"z","a":"{second}"}}}}'.encode()),
    }


class TokenCutOverNeighbouringPieces(unittest.TestCase):
    scanner = Scanner(SECRETS)

    def detectors(self, request: Request) -> set[str]:
        return {f.detector for f in self.scanner.scan_request(*request)}

    def test_each_shape_is_found_for_each_token_and_cut(self) -> None:
        for detector, token in TOKENS.items():
            for cut in (6, len(token) // 2, len(token) - 5):
                for shape, request in shapes(*halves(token, cut)).items():
                    with self.subTest(detector=detector, cut=cut, shape=shape):
                        self.assertIn(detector, self.detectors(request))

    def test_a_redact_route_blocks_rather_than_forwarding(self) -> None:
        for shape, request in shapes(*halves(GITHUB)).items():
            with self.subTest(shape=shape):
                redacted = self.scanner.redact_request(*request)
                self.assertTrue(redacted.findings)
                self.assertIn("github-token", {f.detector for f in redacted.unredacted})

    def test_three_values_of_one_key_in_order(self) -> None:
        a, b, c = GITHUB[:10], GITHUB[10:25], GITHUB[25:]
        body = f'{{"k":"{a}","k":"{b}","k":"{c}"}}'.encode()
        self.assertIn("github-token", self.detectors(("POST", URL, [JSON], body)))

    def test_percent_encoded_cookie_halves(self) -> None:
        first, second = halves(GITHUB)
        encoded = "".join(f"%{ord(ch):02X}" for ch in first)
        request = ("GET", URL, [("Cookie", f"a={encoded}; b={second}")], None)
        self.assertIn("github-token", self.detectors(request))


class LookAlikesStayClean(unittest.TestCase):
    scanner = Scanner(SECRETS)

    def assertClean(self, request: Request) -> None:
        found: list[Finding] = self.scanner.scan_request(*request)
        self.assertEqual(found, [], request)

    def test_real_site_cookies(self) -> None:
        cookie = ("_ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1700000001; "
                  "_gcl_au=1.1.1987654321.1700000002; csrftoken=Xy7Qp2Lm9Rt4Vb8Nc3Kd6Fs1Gh5Jw0Ze; "
                  "sessionid=k3j9x0q2m8v7b4n1c6z5a0s9d8f7g6h5j4k3l2p1; __cf_bm=Ab9.cD_8-eF7gH6iJ5kL4mN3oP2qR1sT0; "
                  "ajs_anonymous_id=%22a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d%22; OptanonConsent=isGpcEnabled=0&"
                  "datestamp=Mon+Dec+07+2026&version=202310.1.0")
        self.assertClean(("GET", URL, [("Cookie", cookie)], None))
        crumbs = [("cookie", part.strip()) for part in cookie.split(";")]
        self.assertClean(("GET", URL, crumbs, None))

    def test_ten_thousand_random_cookie_headers(self) -> None:
        rng = random.Random(2026)
        alnum = string.ascii_letters + string.digits
        url_safe = alnum + "-_"

        def word(alphabet: str, length: int) -> str:
            return "".join(rng.choice(alphabet) for _ in range(length))

        for n in range(10_000):
            pairs = [
                f"_ga=GA1.2.{rng.randrange(10**9, 10**10)}.{rng.randrange(10**9, 10**10)}",
                f"_gid=GA1.2.{rng.randrange(10**8, 10**9)}.{rng.randrange(10**9, 10**10)}",
                f"session={word(alnum, 40)}",
                f"sid={word(url_safe, rng.randrange(20, 48))}",
                f"csrf={word(string.hexdigits.lower()[:16], 32)}",
                f"csrftoken={word(alnum, 32)}",
            ]
            rng.shuffle(pairs)
            # Every other request as HTTP/2 sends it: a cookie header per cookie.
            headers = [("Cookie", "; ".join(pairs))] if n % 2 else [("cookie", pair) for pair in pairs]
            found = self.scanner.scan_request("GET", URL, headers, None)
            if found:
                self.fail(f"request {n}: {pairs} -> {found}")

    def test_semicolons_in_urls(self) -> None:
        rng = random.Random(7)
        for _ in range(200):
            a = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(20))
            b = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(20))
            self.assertClean(("GET", f"https://shop.example/cart;jsessionid={a}/items;v={b}?page=2", [], None))
            self.assertClean(("GET", f"https://maps.example/q?ll={a};zoom=12;t={b}", [], None))
            self.assertClean(("GET", f"https://css.example/?style=color:red;font-size:12px&k={a}", [], None))
            self.assertClean(("POST", URL, [FORM], f"a={a};b={b}".encode()))
            self.assertClean(("POST", URL, [FORM], f"name=Ann&note=one;two;three&token_id={a}".encode()))

    def test_ndjson_logs_of_hashes(self) -> None:
        lines = []
        for i in range(500):
            digest = hashlib.sha256(str(i).encode()).hexdigest()
            lines.append(json.dumps({"ts": f"2026-12-07T12:00:{i % 60:02d}Z", "sha256": digest,
                                     "sha1": hashlib.sha1(digest.encode()).hexdigest(), "level": "info"}))
        self.assertClean(("POST", URL, [NDJSON], "\n".join(lines).encode()))

    def test_json_with_duplicate_keys_of_ordinary_values(self) -> None:
        rng = random.Random(11)
        for _ in range(200):
            a = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(20))
            b = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(20))
            body = json.dumps({"id": a}).encode()[:-1] + f', "id": "{b}", "tag": "x", "tag": "y"}}'.encode()
            self.assertClean(("POST", URL, [JSON], body))

    def test_ordinary_forms_and_queries_are_still_rebuilt_as_sent(self) -> None:
        redacted = self.scanner.redact_request("POST", f"{URL}?a=1;b=2&c=3", [FORM], b"x=1;y=2&z=3")
        self.assertEqual((redacted.url, redacted.body, redacted.findings), (f"{URL}?a=1;b=2&c=3", b"x=1;y=2&z=3", ()))
        # A whole token in an "&" parameter next to ";" pairs is redacted, the rest kept as sent.
        redacted = self.scanner.redact_request("POST", f"{URL}?a=1;b=2&t={GITHUB}", [FORM], f"x=1;y=2&t={GITHUB}")
        self.assertEqual(redacted.unredacted, ())
        self.assertTrue(redacted.url.startswith(f"{URL}?a=1;b=2&t=%5BREDACTED"), redacted.url)
        # The form is re-encoded from its pairs, as before: still the same pairs read on "&".
        self.assertEqual(parse_qsl((redacted.body or b"").decode()), [("x", "1;y=2"), ("t", "[REDACTED:github-token]")])


if __name__ == "__main__":
    unittest.main()
