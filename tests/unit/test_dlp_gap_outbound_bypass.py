"""Ways out for the bottle's own secret values that the outbound scan now finds: a value in Unicode
tag characters, cut into cookies, JSON keys or parameter and header names, sent as the request's
method, in base32hex, base64 read backwards or ROT47. Ordinary requests stay unflagged."""

from __future__ import annotations

import base64
import json
import random
import unicodedata
import unittest
from typing import Any
from urllib.parse import quote

from bot_bottle.sidecar.dlp import Scanner

SECRET = "Kq7vR2xPz9LmW4tYb8Nc"
GHP = "ghp_" + "q8Yt3LmN0pR5sV2wX7zA9cE4gJ6kB1dF0hUi"
URL = "https://api.example/v1/items"


def _tags(text: str) -> str:
    return "".join(chr(0xE0000 + ord(c)) for c in text)


class OutboundBypassTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.scanner = Scanner(secrets={"ROUTE_TOKEN": SECRET})

    def names(self, method: str = "POST", url: str = URL, headers: Any = (), body: bytes | None = None) -> set[str]:
        found = self.scanner.scan_request(method, url, headers, body)
        return {f.secret_name or f.detector for f in found}

    def test_tag_characters(self) -> None:
        self.assertIn("ROUTE_TOKEN", self.names(body=f"see: {_tags(SECRET)}".encode()))
        self.assertIn("ROUTE_TOKEN", self.names(headers={"X-Note": "hi " + _tags(SECRET)}))
        self.assertIn("github-token", self.names(body=json.dumps({"t": _tags(GHP)}, ensure_ascii=False).encode()))

    def test_tag_characters_in_a_streamed_batch(self) -> None:
        # A streamed upload that is text (tags are looked for where the bytes are UTF-8 text).
        rng = random.Random(5)
        lines = [f"line {i}: {rng.getrandbits(64):x} — ok" for i in range(20_000)]
        lines[12_345] += " " + _tags(SECRET)
        data = "\n".join(lines).encode()
        self.assertIn("ROUTE_TOKEN", {f.secret_name for f in self.scanner.scan_batch(data, deep=True)})

    def test_cut_into_cookies(self) -> None:
        cookie = f"a={SECRET[:6]}; b={SECRET[6:12]}; c={SECRET[12:]}"
        self.assertIn("ROUTE_TOKEN", self.names(headers={"Cookie": cookie}))
        self.assertIn("ROUTE_TOKEN", self.names(headers=[("Cookie", f"x={SECRET[:7]}"), ("Cookie", f"y={SECRET[7:]}")]))
        self.assertIn("ROUTE_TOKEN", self.names(headers={"Cookie": f"{SECRET[10:]}=1; {SECRET[:10]}=2"}))

    def test_cut_into_names(self) -> None:
        keys = {SECRET[:7]: 1, SECRET[7:14]: 2, SECRET[14:]: 3}
        self.assertIn("ROUTE_TOKEN", self.names(body=json.dumps(keys).encode()))
        self.assertIn("ROUTE_TOKEN", self.names(url=f"{URL}?{SECRET[:6]}=1&{SECRET[6:13]}=2&{SECRET[13:]}"))
        self.assertIn("ROUTE_TOKEN", self.names(url=f"{URL}?{SECRET[:10]}={SECRET[10:]}"))
        form = f"{SECRET[14:]}=a&{SECRET[:7]}=b&{SECRET[7:14]}=c".encode()
        self.assertIn("ROUTE_TOKEN", self.names(headers={"Content-Type": "application/x-www-form-urlencoded"},
                                                 body=form))
        self.assertIn("ROUTE_TOKEN", self.names(method="GET", headers={SECRET[:7]: "1", SECRET[7:14]: "2",
                                                                       SECRET[14:]: "3"}))

    def test_cut_into_names_is_blocked_when_redacting(self) -> None:
        cookie = f"a={SECRET[:6]}; b={SECRET[6:12]}; c={SECRET[12:]}"
        redacted = self.scanner.redact_request("GET", URL, {"Cookie": cookie}, None)
        self.assertTrue(redacted.findings)
        self.assertTrue(redacted.unredacted)  # a cookie cannot be rewritten in place: the caller blocks

    def test_cut_into_multipart_field_names(self) -> None:
        body = "".join(f'--XX\r\nContent-Disposition: form-data; name="{piece}"\r\n\r\nv\r\n'
                       for piece in (SECRET[:7], SECRET[7:14], SECRET[14:])) + "--XX--\r\n"
        self.assertIn("ROUTE_TOKEN", self.names(headers={"Content-Type": "multipart/form-data; boundary=XX"},
                                                 body=body.encode()))

    def test_a_value_in_another_unicode_normal_form(self) -> None:
        composed = "Ölfaß-Größe-Übermaß-Äußerst9"
        for given, sent in ((composed, unicodedata.normalize("NFD", composed)),
                            (unicodedata.normalize("NFD", composed), composed)):
            scanner = Scanner(secrets={"PASSPHRASE": given})
            with self.subTest(given=ascii(given[:3])):
                for body in (sent.encode(), base64.b64encode(sent.encode()), sent.encode("utf-16-le")):
                    found = scanner.scan_request("POST", URL, {}, b"x=" + body)
                    self.assertIn("PASSPHRASE", {f.secret_name for f in found})
                self.assertEqual(scanner.secret_names, ("PASSPHRASE",))

    def test_the_method(self) -> None:
        self.assertIn("ROUTE_TOKEN", self.names(method=SECRET))
        redacted = self.scanner.redact_request(SECRET, URL, {}, None)
        self.assertTrue(redacted.unredacted)

    def test_base32hex_reversed_base64_and_rot47(self) -> None:
        data = SECRET.encode()
        forms = {
            "base32hex": base64.b32hexencode(data).decode(),
            "base32hex lower, unpadded": base64.b32hexencode(b"x" + data).decode().lower().rstrip("="),
            "base64 read backwards": base64.b64encode(b"user:" + data).decode()[::-1],
            "url-safe base64 read backwards": base64.urlsafe_b64encode(data).decode().rstrip("=")[::-1],
            "rot47": "".join(chr(33 + (ord(c) - 33 + 47) % 94) for c in SECRET),
        }
        for label, form in forms.items():
            with self.subTest(form=label):
                self.assertIn("ROUTE_TOKEN", self.names(body=f"payload {form}".encode()))
                self.assertIn("ROUTE_TOKEN", self.names(url=f"{URL}?d={quote(form, safe='')}"))


class BenignRequestsTest(unittest.TestCase):
    def test_ordinary_requests_are_not_flagged(self) -> None:
        scanner = Scanner(secrets={"ROUTE_TOKEN": SECRET})
        england = "\U0001F3F4" + _tags("gbeng") + "\U000E007F"  # a flag emoji is a tag sequence
        rng = random.Random(9)
        blob = rng.randbytes(600)
        requests = [
            ("GET", f"{URL}?page=2&per_page=50&sort=created", {"Cookie": "session=abc123def456; theme=dark; lang=en"},
             None),
            ("POST", URL, {"Content-Type": "application/json"},
             json.dumps({"title": f"Go team {england}", "labels": ["bug", "help wanted"],
                         "meta": {f"field_{i}": i for i in range(200)}}, ensure_ascii=False).encode()),
            ("PROPFIND", URL, {"Depth": "1"}, None),
            ("MKCALENDAR", URL, {}, None),
            ("POST", URL, {}, (base64.b32hexencode(blob) + b"\n" + base64.b64encode(blob)[::-1]).decode().encode()),
        ]
        for method, url, headers, body in requests:
            with self.subTest(method=method, url=url):
                self.assertEqual(scanner.scan_request(method, url, headers, body), [])


if __name__ == "__main__":
    unittest.main()
