"""The decoding layer: which runs are decoded (encoded text, compressed-then-encoded text) and
which are skipped (hashes, random blobs, identifiers), with the work bounded."""

from __future__ import annotations

import base64
import gzip
import random
import unittest
import zlib

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp.encodings import ascii_lower, decode_runs, mostly_printable, url_partial_forms
from tests.unit import test_dlp_fakes as fakes

RNG = random.Random(8080)
TOKEN = fakes.github(RNG)


def decoded_texts(text: str, limit: int = 1 << 20) -> list[str]:
    return [d.text for d in decode_runs(text, limit=limit)]


class DecodeRunsTest(unittest.TestCase):
    def test_base64_of_text(self) -> None:
        blob = base64.b64encode(f"token={TOKEN}".encode()).decode()
        self.assertEqual(decoded_texts(f"x {blob} y"), [f"token={TOKEN}"])

    def test_url_safe_and_unpadded(self) -> None:
        blob = base64.urlsafe_b64encode(f"?{TOKEN}>>".encode()).decode().rstrip("=")
        self.assertEqual(decoded_texts(blob), [f"?{TOKEN}>>"])

    def test_glued_prefix_of_any_length(self) -> None:
        blob = base64.b64encode(f"key={TOKEN}".encode()).decode()
        for prefix in ("t-", "tok_", "token-", "abc_def-"):
            with self.subTest(prefix=prefix):
                texts = decoded_texts(prefix + blob)
                self.assertEqual(len(texts), 1)
                self.assertIn(TOKEN, texts[0])

    def test_gzip_then_base64(self) -> None:
        blob = base64.b64encode(gzip.compress(f"secret {TOKEN}".encode())).decode()
        found = decode_runs(blob, limit=1 << 20)
        self.assertEqual([(d.encoding, d.text) for d in found], [("base64+gzip", f"secret {TOKEN}")])

    def test_zlib_then_base64(self) -> None:
        blob = base64.b64encode(zlib.compress(f"secret {TOKEN}".encode())).decode()
        self.assertEqual(decoded_texts(blob), [f"secret {TOKEN}"])

    def test_hex_runs(self) -> None:
        h = f"id:{TOKEN}".encode().hex()
        for text in (h, h.upper(), f"/{h}", f"key_{h}", f"x-{h}/", f"v={h}"):
            with self.subTest(text=text[:8]):
                self.assertEqual(decoded_texts(text), [f"id:{TOKEN}"])

    def test_noise_is_skipped(self) -> None:
        for text in (
            fakes.git_sha(RNG), fakes.rand(RNG, 64, fakes.HEX), fakes.uuid4(RNG),
            base64.b64encode(RNG.randbytes(300)).decode(), "sha512-" + base64.b64encode(RNG.randbytes(64)).decode(),
            "very_long_snake_case_identifier_for_testing", "SCREAMING_SNAKE_CASE_CONSTANT_NAME_HERE",
            "aGVsbG8",  # too short to matter
        ):
            with self.subTest(text=text[:12]):
                self.assertEqual(decoded_texts(text), [])

    def test_offsets_cover_the_run(self) -> None:
        blob = base64.b64encode(f"token={TOKEN}".encode()).decode()
        text = f"prefix {blob} suffix"
        (found,) = decode_runs(text, limit=1 << 20)
        self.assertEqual(text[found.start : found.end], blob)
        self.assertEqual(found.to_parent(3, 5), (found.start, found.end))

    def test_budget(self) -> None:
        blobs = " ".join(base64.b64encode(f"message number {i} {TOKEN}".encode()).decode() for i in range(100))
        self.assertLess(len(decode_runs(blobs, limit=200)), 10)
        self.assertEqual(len(decode_runs(blobs, limit=1 << 20)), 100)

    def test_text_beyond_latin1(self) -> None:
        blob = base64.b64encode(f"k={TOKEN}".encode()).decode()
        self.assertEqual(decoded_texts(f"日本語 {blob} ✓"), [f"k={TOKEN}"])


class HelpersTest(unittest.TestCase):
    def test_mostly_printable(self) -> None:
        self.assertTrue(mostly_printable(b"hello world\n"))
        self.assertTrue(mostly_printable("grüße, 世界".encode()))
        self.assertFalse(mostly_printable(RNG.randbytes(64)))
        self.assertFalse(mostly_printable(b""))

    def test_ascii_lower_keeps_offsets(self) -> None:
        for text in ("ABC def", "ÀBC İx Q", "bytes \xff\xfe ABC", "emoji \U0001F600 ABC"):
            with self.subTest(text=text):
                low = ascii_lower(text)
                self.assertEqual(len(low), len(text))
                self.assertEqual(low.replace("İ", "?"), text.replace("İ", "?").translate(
                    str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")))

    def test_url_partial_forms(self) -> None:
        self.assertEqual(url_partial_forms("plain"), [])
        self.assertEqual(url_partial_forms("a b/c"), ["a%20b%2Fc", "a%20b/c", "a+b%2Fc"])


class DeepScanningTest(unittest.TestCase):
    """The decoding layer as requests use it, and files do not by default."""

    def test_files_are_scanned_as_written(self) -> None:
        scanner = Scanner()
        blob = base64.b64encode(f"t={TOKEN}".encode()).decode()
        self.assertEqual(scanner.scan_text(blob), [])
        self.assertEqual([f.encoding for f in scanner.scan_text(blob, deep=True)], ["base64"])

    def test_two_levels(self) -> None:
        inner = base64.b64encode(f"t={TOKEN}".encode()).decode()
        outer = base64.b64encode(f"data={inner}".encode()).decode()
        found = Scanner().scan_text(outer, deep=True)
        self.assertEqual([(f.detector, f.encoding) for f in found], [("github-token", "base64+base64")])

    def test_three_levels_are_not_followed(self) -> None:
        text = f"t={TOKEN}"
        for _ in range(3):
            text = base64.b64encode(f"d={text}".encode()).decode()
        self.assertEqual(Scanner().scan_text(text, deep=True), [])

    def test_percent_then_base64(self) -> None:
        from urllib.parse import quote

        blob = quote(base64.b64encode(f"t={TOKEN}//??".encode()).decode(), safe="")
        found = Scanner().scan_request("GET", f"/?q={blob}")
        self.assertEqual([f.detector for f in found], ["github-token"])

    def test_big_file_with_one_token(self) -> None:
        text = ("x = compute(y)  # " + "filler " * 10 + "\n") * 50000
        middle = len(text) // 2
        text = text[:middle] + f" {TOKEN} " + text[middle:]
        found = Scanner().scan_text(text)
        self.assertEqual([f.detector for f in found], ["github-token"])
        self.assertEqual(text[found[0].start : found[0].end], TOKEN)

    def test_many_anchor_occurrences_fall_back_to_full_scan(self) -> None:
        text = "sk-x " * 500 + fakes.openai(RNG) + " " + "ghp_ " * 300 + TOKEN
        found = Scanner().scan_text(text)
        self.assertEqual(sorted(f.detector for f in found), ["github-token", "openai-api-key"])
