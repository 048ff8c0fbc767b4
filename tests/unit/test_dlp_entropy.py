"""Optional entropy detection: off by default; when on, random credentials without a known format
are flagged while hashes, UUIDs, integrity strings, images and identifiers are not."""

from __future__ import annotations

import base64
import random
import unittest

from bot_bottle.sidecar.dlp import ENTROPY, Scanner, ScanOptions
from bot_bottle.sidecar.dlp.entropy import entropy_spans
from tests.unit import test_dlp_fakes as fakes

RNG = random.Random(31337)
ON = Scanner(options=ScanOptions(entropy=True))
OFF = Scanner()


def entropy_hits(text: str, scanner: Scanner = ON) -> list[str]:
    return [f.confidence for f in scanner.scan_text(text) if f.detector == ENTROPY]


class EntropyTest(unittest.TestCase):
    def test_off_by_default(self) -> None:
        self.assertEqual(entropy_hits(f"key {fakes.rand(RNG, 40)}", OFF), [])

    def test_random_tokens_are_flagged(self) -> None:
        for n in (24, 32, 48, 64):
            for alphabet in (fakes.ALNUM, fakes.URLSAFE):
                with self.subTest(n=n, alphabet=len(alphabet)):
                    self.assertTrue(entropy_hits(f"X-Custom: {fakes.rand(RNG, n, alphabet)}\n"))

    def test_in_requests(self) -> None:
        findings = ON.scan_request("GET", f"https://x.test/?session={fakes.rand(RNG, 40)}")
        self.assertEqual([(f.detector, f.location) for f in findings], [(ENTROPY, "url.query.session")])

    def test_benign_shapes(self) -> None:
        samples = []
        for _ in range(10):
            samples += [
                fakes.git_sha(RNG), fakes.uuid4(RNG), fakes.rand(RNG, 64, fakes.HEX),
                "sha512-" + base64.b64encode(RNG.randbytes(64)).decode(),
                "sha256-" + base64.b64encode(RNG.randbytes(32)).decode(),
                "data:image/png;base64," + base64.b64encode(b"\x89PNG" + RNG.randbytes(100)).decode(),
                "iVBORw0KGgo" + base64.b64encode(RNG.randbytes(60)).decode(),
                base64.b64encode(RNG.randbytes(400)).decode(),  # a blob, not a credential
                "very_long_snake_case_identifier_name_here", "kebab-case-component-name-for-the-button",
                "abcdefghijklmnopqrstuvwxyz", "0x" + fakes.rand(RNG, 40, fakes.HEX),
            ]
        for text in samples:
            with self.subTest(text=text[:30]):
                self.assertEqual(entropy_hits(f"value = '{text}'"), [])

    def test_short_tokens_are_ignored(self) -> None:
        self.assertEqual(entropy_hits(fakes.rand(RNG, 16)), [])

    def test_threshold_and_length_options(self) -> None:
        token = fakes.rand(RNG, 20)
        self.assertEqual(entropy_spans(token), [])
        self.assertTrue(entropy_spans(token, min_length=16))
        patterned = "ppppQQQQ1111rrrrSSSS2222"  # three classes, low entropy
        self.assertEqual(entropy_spans(patterned), [])
        self.assertTrue(entropy_spans(patterned, threshold=2.0))

    def test_known_format_wins_over_entropy(self) -> None:
        findings = ON.scan_text(fakes.github(RNG))
        self.assertEqual([f.detector for f in findings], ["github-token"])
