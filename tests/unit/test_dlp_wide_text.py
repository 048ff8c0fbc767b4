"""ASCII stored as UTF-16 or UTF-32 in what leaves the bottle (``iconv -t utf-16``, a string in a
binary file): token formats and the bottle's secrets are found in it, buffered or streamed, in
either byte order, and redacted; text in those encodings that holds neither passes."""

from __future__ import annotations

import os
import random
import unittest

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp.wide import wide_layers, wide_regions

GHP = "ghp_" + "q8Yt3LmN0pR5sV2wX7zA9cE4gJ6kB1dF0hUi"
SECRET = "Vx9!kQ2#mW7pL4zR"
ENCODINGS = ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
BINARY = ("application/octet-stream",)


def post(scanner: Scanner, body: bytes, content_type: str = "application/octet-stream") -> list:
    return scanner.scan_request("POST", "https://paste.example/up", [("content-type", content_type)], body)


class BufferedBodies(unittest.TestCase):
    scanner = Scanner({"DB_PASSWORD": SECRET})

    def test_a_token_format_in_each_encoding(self) -> None:
        for encoding in ENCODINGS:
            with self.subTest(encoding=encoding):
                body = f"notify:\n  token: {GHP}\n".encode(encoding)
                found = post(self.scanner, body)
                self.assertEqual([(f.detector, f.encoding) for f in found],
                                 [("github-token", encoding[:6])])

    def test_a_secret_last_in_the_body_in_big_endian(self) -> None:
        # Read little-endian a byte late, the text lacks its last character: the longer reading.
        for encoding in ("utf-16-be", "utf-32-be"):
            with self.subTest(encoding=encoding):
                found = post(self.scanner, b"\xff\xfe\x01" + f"pw={SECRET}".encode(encoding))
                self.assertIn("DB_PASSWORD", {f.secret_name for f in found})

    def test_inside_binary_bytes_and_behind_an_odd_offset(self) -> None:
        body = bytes(range(256)) * 3 + b"\x07" + f"k={GHP}".encode("utf-16-le") + bytes(range(256))
        self.assertEqual([f.detector for f in post(self.scanner, body)], ["github-token"])

    def test_redaction_removes_the_value(self) -> None:
        for encoding in ENCODINGS:
            with self.subTest(encoding=encoding):
                body = f"a={GHP};b=2".encode(encoding)
                redaction = self.scanner.redact_text(body)
                self.assertTrue(redaction.changed)
                self.assertNotIn(GHP[8:24].encode(encoding), redaction.content)
                self.assertIn("b=2".encode(encoding)[:4], redaction.content)

    def test_text_in_those_encodings_without_secrets_passes(self) -> None:
        export = ("\ufeffWindows Registry Editor Version 5.00\r\n[HKEY_CURRENT_USER\\Software\\Example]\r\n"
                  "\"InstallId\"=\"3f2b8c1e-9d4a-4e6b-8f0c-2a7d5e1b9c34\"\r\n") * 20
        for encoding in ENCODINGS:
            with self.subTest(encoding=encoding):
                self.assertEqual(post(self.scanner, export.encode(encoding)), [])

    def test_one_character_values_joined_are_not_read_as_a_run(self) -> None:
        # Request texts are joined with NULs: a JSON list of single characters must not become one.
        body = ("[" + ",".join(f'"{c}"' for c in "hello world, nothing here") + "]").encode()
        self.assertEqual(post(self.scanner, body, "application/json"), [])


class StreamedBatches(unittest.TestCase):
    scanner = Scanner({"DB_PASSWORD": SECRET})

    def test_a_batch_finds_what_the_whole_scan_finds(self) -> None:
        rng = random.Random(3)
        for encoding in ENCODINGS:
            with self.subTest(encoding=encoding):
                batch = (rng.randbytes(300_001) + f"x={GHP} ".encode(encoding) + rng.randbytes(200_000)
                         + f"{SECRET}".encode(encoding))
                streamed = {(f.detector, f.secret_name) for f in self.scanner.scan_batch(batch, deep=True)}
                whole = {(f.detector, f.secret_name) for f in self.scanner.scan_text(batch, deep=True)}
                self.assertEqual(streamed, whole)
                self.assertEqual(streamed, {("github-token", None), ("known-secret", "DB_PASSWORD")})

    def test_random_bytes_hold_no_region(self) -> None:
        self.assertEqual(wide_regions(random.Random(4).randbytes(1 << 20)), [])
        self.assertEqual(wide_regions(b"plain ascii text, no NUL at all" * 1000), [])


class Regions(unittest.TestCase):
    def test_a_long_run_is_one_region_covering_it(self) -> None:
        text = ("lorem ipsum " * 5000).encode("utf-16-le")
        data = os.urandom(100) + text + os.urandom(100)
        regions = wide_regions(data)
        self.assertEqual(len(regions), 1)
        start, end = regions[0]
        self.assertLessEqual(start, 100)
        self.assertGreaterEqual(end, 100 + len(text))

    def test_layers_map_back_character_by_character(self) -> None:
        text = "\x01\x02" + "token=abcdefgh".encode("utf-16-le").decode("latin-1")
        (layer,) = wide_layers(text, limit=1000)
        self.assertEqual(layer.text, "token=abcdefgh")
        self.assertEqual(layer.to_parent(6, 14), (2 + 12, 2 + 28))

    def test_the_budget_bounds_the_work(self) -> None:
        text = ("x" * 20).encode("utf-16-le").decode("latin-1") + "\xff" + ("y" * 20).encode("utf-16-le").decode("latin-1")
        self.assertEqual(len(wide_layers(text, limit=10)), 1)


if __name__ == "__main__":
    unittest.main()
