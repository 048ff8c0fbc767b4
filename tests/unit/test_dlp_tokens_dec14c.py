"""Token formats read where they were still missed, and their benign look-alikes.

- A token of no fixed length appended to a long base64/hex/letter blob: read where its start is
  marked beyond what a blob spells by chance (Google's "ya29.a0A", PyPI's index name, OpenAI's
  kind and "T3BlbkFJ", Slack's digit groups) and it ends the run; a JWT glued after other base64
  (its header, a JSON object naming "alg", is the mark), found at the header's own "eyJ".
- Google's service-account access token ("ya29.c.c0A...").
- An AWS key id run together with its secret key, with nine or more characters glued around the
  pair or on a line between other lines of base64: read where the key id's body is random base32.
- A glued AWS key id whose body has no digit (letters with few vowels, not in alphabetical order).
- An upper-case base32 hash after a word ending in "GHS" ("HIGHS_") is no upper-cased GitHub token.
"""

from __future__ import annotations

import base64
import json
import random
import string
import unittest

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp.tokens import TokenScanner
from tests.unit import test_dlp_fakes as fakes

RNG = random.Random(1403)
SCANNER = Scanner()
TOKENS = TokenScanner()
BASE32 = string.ascii_uppercase + "234567"


def detectors(text: str) -> list[str]:
    return sorted({f.detector for f in SCANNER.scan_text(text)})


def spans(text: str) -> list[tuple[int, int, str]]:
    return [(start, end, id_) for start, end, _det, id_, _name in TOKENS.scan(text)]


def blob(rng: random.Random, n: int, alphabet: str = fakes.B64) -> str:
    """Random encoded text mixing lower, upper and digits, ending in a letter (after "+", "/" or
    "-" a token stands apart: found already)."""
    while True:
        out = "".join(rng.choice(alphabet) for _ in range(n - 1)) + rng.choice(string.ascii_letters)
        if any(c.islower() for c in out) and any(c.isupper() for c in out) and any(c.isdigit() for c in out):
            return out


def google_oauth(rng: random.Random, service: bool = False) -> str:
    return ("ya29.c.c0A" if service else "ya29.a0A") + fakes.rand(rng, 150, fakes.URLSAFE)


def openai_project(rng: random.Random, kind: str = "proj") -> str:
    return f"sk-{kind}-" + fakes.rand(rng, 74, fakes.URLSAFE) + "T3BlbkFJ" + fakes.rand(rng, 74, fakes.URLSAFE)


def pypi(rng: random.Random, index: str = "pypi.org") -> str:
    """A macaroon: version 2, its location (the index), then its identifier field."""
    macaroon = b"\x02\x01" + bytes([len(index)]) + index.encode() + b"\x02\x25" + rng.randbytes(60)
    return "pypi-" + fakes.b64url(macaroon)


def slack_user(rng: random.Random) -> str:
    return ("xoxp-" + fakes.rand(rng, 11, string.digits) + "-" + fakes.rand(rng, 11, string.digits) + "-"
            + fakes.rand(rng, 13, string.digits) + "-" + fakes.rand(rng, 32, fakes.HEX))


def slack_app(rng: random.Random) -> str:
    return ("xapp-1-A" + fakes.rand(rng, 10, string.ascii_uppercase + string.digits) + "-"
            + fakes.rand(rng, 13, string.digits) + "-" + fakes.rand(rng, 64, fakes.HEX))


def b64_json(doc: object) -> str:
    return fakes.b64url(json.dumps(doc).encode())


def aws_id(rng: random.Random, prefix: str = "AKIA") -> str:
    while True:
        body = fakes.rand(rng, 16, BASE32)
        if any(c.isdigit() for c in body) and any(c.isalpha() for c in body) and len(set(body)) >= 9:
            return prefix + body


def aws_id_without_digits(rng: random.Random) -> str:
    while True:
        body = fakes.rand(rng, 16, string.ascii_uppercase)
        if sum(c in "AEIOU" for c in body) <= 5 and len(set(body)) >= 9:
            return "AKIA" + body


def aws_secret(rng: random.Random) -> str:
    return fakes.rand(rng, 40, fakes.B64)


class VariableLengthAppendedToBlobTest(unittest.TestCase):
    TOKENS = {
        "google oauth": (google_oauth(RNG), "google-oauth-token"),
        "google service account": (google_oauth(RNG, service=True), "google-oauth-token"),
        "pypi": (pypi(RNG), "pypi-token"),
        "test pypi": (pypi(RNG, "test.pypi.org"), "pypi-token"),
        "openai project": (openai_project(RNG), "openai-api-key"),
        "openai service account": (openai_project(RNG, "svcacct"), "openai-api-key"),
        "slack bot": (fakes.slack_bot(RNG), "slack-token"),
        "slack user": (slack_user(RNG), "slack-token"),
        "slack app": (slack_app(RNG), "slack-token"),
    }

    def test_appended_to_a_base64_blob(self) -> None:
        for name, (token, detector) in self.TOKENS.items():
            for alphabet in (fakes.B64, fakes.URLSAFE, fakes.HEX + "ghijkZ", string.ascii_letters + "0123"):
                text = blob(RNG, 300, alphabet) + token
                with self.subTest(name, alphabet=alphabet[-6:]):
                    self.assertEqual(detectors(f'{{"data": "{text}"}}'), [detector])
                    at = text.index(token)
                    self.assertIn((at, len(text), detector), spans(text))

    def test_the_google_service_account_token_standing_apart(self) -> None:
        token = google_oauth(RNG, service=True)
        self.assertEqual(detectors(f"Authorization: Bearer {token}\n"), ["google-oauth-token"])

    def test_unmarked_starts_at_a_blobs_end_stay_clean(self) -> None:
        # What a blob spells by chance: the anchor, then random text of the token's alphabet.
        for tail in ("ya29." + fakes.rand(RNG, 80, fakes.URLSAFE), "pypi-AgE" + fakes.rand(RNG, 70, fakes.URLSAFE),
                     "sk-proj-" + fakes.rand(RNG, 120, fakes.URLSAFE), "xoxb-" + fakes.rand(RNG, 60, fakes.URLSAFE),
                     "xoxb-" + fakes.rand(RNG, 40, fakes.ALNUM) + "-" + fakes.rand(RNG, 30, fakes.ALNUM),
                     "xapp-1-" + fakes.rand(RNG, 60, fakes.URLSAFE)):
            with self.subTest(tail[:8]):
                self.assertEqual(detectors(f'"{blob(RNG, 200, fakes.URLSAFE)}{tail}"'), [])

    def test_a_marked_token_that_does_not_end_the_run(self) -> None:
        for name, (token, _) in self.TOKENS.items():
            for after in ("+", "/", "="):
                with self.subTest(name, after=after):
                    self.assertEqual(detectors(blob(RNG, 200) + token + after + blob(RNG, 30)), [])

    def test_blobs_that_contain_the_anchors(self) -> None:
        rnd = random.Random(5)
        for anchor in ("ya29", "pypi", "xoxb", "xapp", "eyJ", "sk", "T3BlbkFJ"):
            for _ in range(20):
                text = blob(rnd, 150) + anchor + blob(rnd, 150)
                self.assertEqual(detectors(f"src: url(data:font/woff2;base64,{text});"), [], text)
                self.assertEqual(detectors(blob(rnd, 150, fakes.URLSAFE) + anchor + "-" + blob(rnd, 40, fakes.URLSAFE)),
                                 [])


class JwtGluedTest(unittest.TestCase):
    def test_after_a_base64_blob(self) -> None:
        for alphabet in (fakes.B64, fakes.URLSAFE, fakes.HEX):
            token = fakes.jwt(RNG)
            text = blob(RNG, 200, alphabet) + token + "\n"
            with self.subTest(alphabet=alphabet[-4:]):
                at = text.index(token)
                self.assertIn((at, at + len(token), "jwt"), spans(text))

    def test_after_base64_json_documents(self) -> None:
        token = fakes.jwt(RNG)
        docs = "".join(b64_json({"n": i, "note": "x" * i}) for i in range(3))
        text = docs + token
        self.assertIn((len(docs), len(text), "jwt"), spans(text))
        self.assertEqual(detectors(f"cookie={text};"), ["jwt"])

    def test_after_many_documents_with_a_nested_header(self) -> None:
        header = b64_json({"alg": "RS256", "jwk": {"kty": "RSA", "e": "AQAB"}, "kid": "k1"})
        token = f"{header}.{b64_json({'sub': 'x', 'iat': 1700000000})}.{fakes.b64url(RNG.randbytes(64))}"
        docs = "".join(b64_json({"i": i}) for i in range(200))
        text = docs + token
        self.assertIn((len(docs), len(text), "jwt"), spans(text))

    def test_joined_base64_json_documents_are_no_jwt(self) -> None:
        docs = [b64_json({"id": i, "name": f"item-{i}", "tags": ["a", "b"]}) for i in range(6)]
        for text in ("".join(docs), ".".join(docs), "".join(docs[:3]) + "." + "".join(docs[3:]) + "." + "".join(docs),
                     "\n".join(docs)):
            with self.subTest(text=text[:30]):
                self.assertEqual(detectors(f'data = "{text}"\n'), [])

    def test_dotted_hashes_are_no_jwt(self) -> None:
        rnd = random.Random(9)
        digests = [base64.urlsafe_b64encode(rnd.randbytes(32)).decode().rstrip("=") for _ in range(400)]
        hexes = [rnd.randbytes(32).hex() for _ in range(200)]
        for text in (".".join(digests), ".".join(hexes), " ".join(f"sha512-{d}" for d in digests)):
            with self.subTest(text=text[:20]):
                self.assertEqual(detectors(text), [])

    def test_an_alg_document_without_a_signature_is_no_jwt(self) -> None:
        header = b64_json({"alg": "HS256", "typ": "JWT"})
        text = blob(RNG, 120, fakes.URLSAFE) + header + "." + b64_json({"sub": "x"}) + ".abc"
        self.assertEqual(detectors(text), [])


class AwsPairGluedTest(unittest.TestCase):
    def test_nine_or_more_characters_glued_after_the_pair(self) -> None:
        for glued in (9, 20, 200):
            key_id, secret = aws_id(RNG), aws_secret(RNG)
            text = f"creds {key_id}{secret}{blob(RNG, glued)}\n"
            with self.subTest(glued=glued):
                self.assertIn("aws-secret-access-key", detectors(text))
                found = [s for s in spans(text) if s[2] == "aws-secret-access-key"]
                self.assertEqual(found[0][0], text.index(secret))

    def test_nine_or_more_characters_glued_before_the_pair(self) -> None:
        for glued in (9, 90):
            text = blob(RNG, glued) + aws_id(RNG) + aws_secret(RNG) + "\n"
            with self.subTest(glued=glued):
                self.assertIn("aws-secret-access-key", detectors(text))

    def test_the_pair_between_lines_of_base64(self) -> None:
        for width in (64, 76):
            lines = [blob(RNG, width) for _ in range(6)]
            lines[3] = aws_id(RNG) + aws_secret(RNG)
            with self.subTest(width=width):
                self.assertIn("aws-secret-access-key", detectors("\n".join(lines) + "\n"))

    def test_key_id_shapes_in_real_base64_stay_clean(self) -> None:
        # DNA ("ACCA" and 16 of A, C, G, T), a font's zero bytes ("AKIAAQAAAAAABAAHAM0A") and
        # CPython bytecode ("AKIA2YDZAGECHQBAAAAA") spell a key id in base64; an id with a body
        # outside base32 or AWS's example id too.
        dna = "".join(RNG.choice("ACGT") for _ in range(60))
        bytecode = ("DhwSXAIgBiAKIA2YDZAGECHQBAAAAAAAAAAAAAIkDiQR6AAAApgEAAKsBAAAAAAAAAABEAKYAAACrAAAAAAAAAAAAfQ"
                    "WIAYgCiARmA2QChAh0AQAAAAAAAAAAAACJA4kEegAAAKYBAACrAQAAAAAAA")
        texts = [blob(RNG, 30) + "ACCA" + dna + blob(RNG, 60),
                 blob(RNG, 35) + "AKIAAQAAAAAABAAHAM0A" + blob(RNG, 60),
                 bytecode, bytecode[:76] + "\n" + bytecode[76:],
                 blob(RNG, 30) + "AKIA2YDZAGECHQB3KMRT" + blob(RNG, 20) + "AAAA" + blob(RNG, 60),
                 blob(RNG, 30) + "AKIA0189ABCDEF018901" + aws_secret(RNG) + blob(RNG, 20),
                 blob(RNG, 30) + "AKIAIOSFODNN7EXAMPLE" + aws_secret(RNG) + blob(RNG, 20),
                 blob(RNG, 30) + "AKIAABCDEFGHIJKLMNOP" + aws_secret(RNG) + blob(RNG, 20)]
        for text in texts:
            with self.subTest(text=text):
                self.assertEqual(detectors(text), [])

    def test_zero_heavy_base64_stays_clean(self) -> None:
        rnd = random.Random(8)
        data = b"".join(rnd.randrange(0, 300).to_bytes(2, "little") + bytes(rnd.choice((0, 0, 1, 64))
                                                                            for _ in range(2))
                        for _ in range(200_000))
        text = base64.b64encode(data).decode()
        wrapped = "\n".join(text[i:i + 76] for i in range(0, len(text), 76))
        self.assertEqual(detectors(wrapped), [])
        self.assertEqual(detectors(f"src: url(data:font/ttf;base64,{text});"), [])


class AwsKeyIdWithoutDigitsTest(unittest.TestCase):
    def test_glued_to_letters(self) -> None:
        for _ in range(5):
            key_id = aws_id_without_digits(RNG)
            text = f"id: x{key_id}yz end"
            with self.subTest(text=text):
                self.assertIn((5, 25, "aws-access-key-id"), spans(text))

    def test_words_and_sequences_stay_clean(self) -> None:
        for text in ("xASIAPACIFICSOUTHEASTy", "xAKIAABCDEFGHIJKLMNOPy", "mACCAUNTINGSEPARATELYq",
                     "xABIAQRSTUVWXYZABCDEFy", "kACCAAAAAAAAAAAAAAAAAz"):
            with self.subTest(text=text):
                self.assertNotIn("aws-access-key-id", [s[2] for s in spans(text)])


class UpperCaseBase32AfterGhsTest(unittest.TestCase):
    def test_a_base32_hash_after_a_word_ending_in_ghs(self) -> None:
        digest = base64.b32encode(RNG.randbytes(32)).decode().rstrip("=")
        for word in ("HIGHS", "WEIGHS", "LAUGHS"):
            text = f"label={word}_{digest}\n"
            with self.subTest(word=word):
                self.assertEqual(detectors(text), [])

    def test_an_upper_cased_token_glued_is_still_one(self) -> None:
        body = fakes.rand(RNG, 30, BASE32) + "0189" + fakes.rand(RNG, 2, BASE32)
        text = f"v=xGHS_{body} end"
        self.assertIn((3, 3 + 40, "github-token"), spans(text))


if __name__ == "__main__":
    unittest.main()
