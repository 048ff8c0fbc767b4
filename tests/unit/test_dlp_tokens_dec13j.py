"""An AWS access key id glued to lower-case letters, and an upper-cased GitHub token.

- An AWS key id with one or two lower-case letters glued before or after it ("xAKIA...",
  "AKIA...y"): its 16-character body is base32 (A-Z, 2-7) mixing letters and digits. Upper-case
  words and constants that spell the prefix, base32 strings, upper-case hashes and base64 blobs
  stay clean.
- A GitHub token upper-cased ("GHP_" and 36 upper-case letters and digits, after ``.upper()``).
  Upper-case constants ("GHS_SOMETHING_...") and upper-case hex hashes stay clean.
"""

from __future__ import annotations

import base64
import random
import string
import unittest

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp.tokens import TokenScanner

RNG = random.Random(1413)
SCANNER = Scanner()
TOKENS = TokenScanner()
BASE32 = string.ascii_uppercase + "234567"
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def rand(n: int, alphabet: str = BASE62) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n))


def aws_id(prefix: str = "AKIA") -> str:
    body = rand(16, BASE32)
    while not (any(c.isdigit() for c in body) and any(c.isalpha() for c in body)):
        body = rand(16, BASE32)
    return prefix + body


def github_upper(prefix: str = "ghp_") -> str:
    body = rand(36)
    while not (any(c.isdigit() for c in body) and any(c.isalpha() for c in body)):
        body = rand(36)
    return (prefix + body).upper()


def detectors(text: str) -> list[str]:
    return sorted({f.detector for f in SCANNER.scan_text(text)})


def token_spans(text: str) -> list[tuple[int, int, str]]:
    return [(start, end, id_) for start, end, _det, id_, _name in TOKENS.scan(text)]


class AwsKeyIdGlued(unittest.TestCase):
    def test_letter_glued_before(self) -> None:
        for prefix in ("AKIA", "ASIA", "ABIA", "ACCA"):
            key = aws_id(prefix)
            for glued in ("x", "xy"):
                text = f"id: {glued}{key} end"
                with self.subTest(text=text):
                    at = text.index(key)
                    self.assertIn((at, at + 20, "aws-access-key-id"), token_spans(text))
                    self.assertIn("aws-access-key-id", detectors(text))

    def test_letter_glued_after(self) -> None:
        key = aws_id()
        for text in (f"{key}y", f"'{key}yz'", f"export AWS_ACCESS_KEY_ID={key}q\n"):
            with self.subTest(text=text):
                at = text.index(key)
                self.assertIn((at, at + 20, "aws-access-key-id"), token_spans(text))

    def test_letters_glued_both_sides(self) -> None:
        key = aws_id()
        text = f"k={'ab'}{key}{'c'},"
        self.assertIn((4, 24, "aws-access-key-id"), token_spans(text))

    def test_separators_around_still_found(self) -> None:
        key = aws_id()
        self.assertIn((1, 21, "aws-access-key-id"), token_spans(f"={key},"))

    def test_upper_case_word_before_is_not_a_key(self) -> None:
        for text in (f"M{aws_id()}", f"ZZ{aws_id()}", f"THE{aws_id()}"):
            with self.subTest(text=text):
                self.assertNotIn("aws-access-key-id", [s[2] for s in token_spans(text)])

    def test_digit_glued_is_not_a_key(self) -> None:
        for text in (f"7{aws_id()}", f"{aws_id()}3", f"x{aws_id()}9"):
            with self.subTest(text=text):
                self.assertNotIn("aws-access-key-id", [s[2] for s in token_spans(text)])

    def test_three_letters_or_a_name_glued_is_not_a_key(self) -> None:
        key = aws_id()
        for text in (f"abc{key}", f"{key}xyz", f"my_x{key}", f"kebab-x{key}", f"a/b{key}", f"x{key}y+"):
            with self.subTest(text=text):
                self.assertNotIn("aws-access-key-id", [s[2] for s in token_spans(text)])

    def test_constants_and_words_that_spell_the_prefix(self) -> None:
        for text in ("AKIAS_TOTAL_COUNT = 3", "xAKIASTOTALCOUNTERWORDSy", "mACCAUNTINGREPORTSFORTHEYEAR",
                     "xAKIAABCDEFGHIJKLMNOPy", "xAKIA2345672345672345y"):
            with self.subTest(text=text):
                self.assertNotIn("aws-access-key-id", [s[2] for s in token_spans(text)])

    def test_body_outside_base32_glued_is_not_a_key(self) -> None:
        # 0, 1, 8 and 9 are not base32: an upper-case hash glued after a letter, not a key id.
        for text in ("xACCA0189ABCDEF018901y", "xAKIA8ABCDEF91BCDEFGHy"):
            with self.subTest(text=text):
                self.assertNotIn("aws-access-key-id", [s[2] for s in token_spans(text)])

    def test_upper_case_hashes_and_base32(self) -> None:
        texts = [rand(40, "0123456789ABCDEF") + "ACCA" + rand(16, "0123456789ABCDEF") + rand(20, "0123456789ABCDEF"),
                 base64.b32encode(RNG.randbytes(40)).decode() + "AKIA" + rand(16, BASE32) + "QQ",
                 "x" + rand(30, BASE32) + aws_id() + rand(10, BASE32) + "y"]
        for text in texts:
            with self.subTest(text=text):
                self.assertNotIn("aws-access-key-id", [s[2] for s in token_spans(text)])

    def test_base64_blob_spelling_a_glued_key(self) -> None:
        for _ in range(20):
            blob = base64.b64encode(RNG.randbytes(60)).decode()
            text = blob[:40] + "x" + aws_id() + "y" + blob[40:]
            with self.subTest(text=text):
                self.assertNotIn("aws-access-key-id", [s[2] for s in token_spans(text)])


class UpperCasedGitHubToken(unittest.TestCase):
    def test_upper_cased_tokens(self) -> None:
        for prefix in ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"):
            token = github_upper(prefix)
            for text in (token, f"GITHUB_TOKEN={token}\n", f'{{"t": "{token}"}}', f"x{token}"):
                with self.subTest(text=text):
                    at = text.index(token)
                    self.assertIn((at, at + 40, "github-token"), token_spans(text))
                    self.assertIn("github-token", detectors(text))

    def test_upper_constants_are_not_tokens(self) -> None:
        for text in ("GHS_SOMETHING_CONSTANT_NAME_FOR_THE_BUILD_STEP = 1",
                     "GHP_TOKENENVIRONMENTVARIABLENAMEFORTHEBUILDS",
                     "GHO_" + "A" * 18 + "1" * 18,
                     "GHR_" + "ABC123" * 7):
            with self.subTest(text=text):
                self.assertNotIn("github-token", [s[2] for s in token_spans(text)])

    def test_upper_case_hex_hash_is_not_a_token(self) -> None:
        for length in (40, 64):
            text = "OBJECT GHS_" + rand(length, "0123456789ABCDEF") + " CACHED"
            with self.subTest(text=text):
                self.assertNotIn("github-token", [s[2] for s in token_spans(text)])

    def test_inside_upper_case_base32_blob_after_a_long_mixed_run(self) -> None:
        blob = base64.b64encode(RNG.randbytes(120)).decode()
        text = blob + "GHP_" + rand(36, string.ascii_uppercase + string.digits) + blob
        self.assertNotIn("github-token", [s[2] for s in token_spans(text)])


if __name__ == "__main__":
    unittest.main()
