"""Well-known tokens glued where the first glued reading left them, and a hash read as a token.

- An AWS secret access key with several characters glued to it, or run together with its key id.
- A legacy OpenAI key ("sk-" and 48 letters and digits, no mark) glued to one character or after
  a short kebab/snake name.
- A token appended to a long encoded blob: it ends the run with its format's exact length; a
  GitHub or npm token whose checksum holds counts anywhere in a blob.
- "ghs_" and a SHA-1 (a word ending in "ghs_" in a log) is a hash, not a lower-cased token.

Each has look-alikes that must stay clean: identifiers, kebab names, hashes, base64 blobs.
"""

from __future__ import annotations

import base64
import json
import random
import string
import unittest
import zlib

from bot_bottle.sidecar.dlp import Scanner
from tests.unit import test_dlp_fakes as fakes

RNG = random.Random(1313)
SCANNER = Scanner()
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def detectors(text: str | bytes, *, deep: bool = False) -> list[str]:
    return sorted({f.detector for f in SCANNER.scan_text(text, deep=deep)})


def checksummed(prefix: str, rng: random.Random) -> str:
    """A token in GitHub's and npm's current format: 30 random base62 characters, then their CRC32
    in six base62 digits."""
    entropy = fakes.rand(rng, 30)
    crc, digits = zlib.crc32(entropy.encode()), ""
    for _ in range(6):
        crc, digit = divmod(crc, 62)
        digits = BASE62[digit] + digits
    return prefix + entropy + digits


def legacy_openai(rng: random.Random) -> str:
    return "sk-" + fakes.rand(rng, 48)


def before(rng: random.Random, n: int, alphabet: str = fakes.B64) -> str:
    """A blob a token is glued to: it ends in a letter (after "/", "+" or "-" a token stands apart)."""
    return blob(rng, n - 1, alphabet) + rng.choice(string.ascii_letters)


def blob(rng: random.Random, n: int, alphabet: str = fakes.B64) -> str:
    """Random encoded text; from 12 characters on it mixes lower, upper and digits."""
    while True:
        out = "".join(rng.choice(alphabet) for _ in range(n))
        if n < 12 or (any(c.islower() for c in out) and any(c.isupper() for c in out)
                      and any(c.isdigit() for c in out)):
            return out


class AwsSecretGluedTest(unittest.TestCase):
    def setUp(self) -> None:
        self.key_id = fakes.aws_key_id(RNG)
        self.secret = fakes.aws_secret(RNG)

    def test_five_or_more_characters_glued_before_the_secret(self) -> None:
        for glued in ("qzqzq", "Ab3xY9", "note" * 5):
            with self.subTest(glued):
                text = f'{{"id": "{self.key_id}", "s": "{glued}{self.secret}"}}'
                self.assertIn("aws-secret-access-key", detectors(text))

    def test_five_or_more_characters_glued_after_the_secret(self) -> None:
        text = f"creds {self.key_id} then {self.secret}zzzzzz end\n"
        self.assertIn("aws-secret-access-key", detectors(text))

    def test_the_key_id_and_its_secret_run_together(self) -> None:
        for text in (self.key_id + self.secret, f"x{self.key_id}{self.secret}\n",
                     json.dumps({"c": self.key_id + self.secret})):
            with self.subTest(text[:8]):
                self.assertIn("aws-secret-access-key", detectors(text))

    def test_redaction_removes_the_glued_secret(self) -> None:
        text = f"pair={self.key_id}{self.secret}yy ok"
        redacted = SCANNER.redact_text(text).content
        self.assertNotIn(self.secret, redacted)

    def test_a_secret_after_a_longer_run_that_is_not_one(self) -> None:
        text = f"{self.key_id}\nhash={RNG.randbytes(40).hex()}\nsecret: {self.secret}\n"
        self.assertIn("aws-secret-access-key", detectors(text))

    def test_two_key_ids_before_one_secret_give_one_finding(self) -> None:
        text = f"old={fakes.aws_key_id(RNG)} new={self.key_id}\nsecret={self.secret}yyyyy\n"
        found = [f for f in SCANNER.scan_text(text) if f.detector == "aws-secret-access-key"]
        self.assertEqual(len(found), 1)

    def test_a_session_token_after_a_key_id_is_not_its_secret(self) -> None:
        token = base64.b64encode(RNG.randbytes(300)).decode().rstrip("=")
        text = f"ASIA{fakes.rand(RNG, 16, fakes.UPPER32)}\n{token}\n"
        self.assertNotIn("aws-secret-access-key", detectors(text))

    def test_documentation_key_ids_and_hashes_after_a_key_id(self) -> None:
        text = (f"AKIAIOSFODNN7EXAMPLE{blob(RNG, 60)}\n"
                f"AKIAIOSFODNN7EXAMPLE and {blob(RNG, 50)}\n"
                f"x{self.key_id} sha256={RNG.randbytes(32).hex()} sha1={RNG.randbytes(20).hex()}\n"
                f"x{self.key_id}{RNG.randbytes(32).hex()}\n")
        # The key id glued to one lower-case letter is itself read (test_dlp_tokens_dec13j); no
        # hash after it is read as its secret.
        self.assertNotIn("aws-secret-access-key", detectors(text))
        self.assertEqual(set(detectors(text)) - {"aws-access-key-id"}, set())

    # A key id's shape as encoded data spells it (CPython bytecode in base64: its body repeats a
    # letter, not a generated id's). A random-looking id run together with a secret there is read
    # (test_dlp_tokens_dec14c).
    SHAPE = "AKIA2YDZAGECHQBAAAAA"

    def test_a_key_id_inside_wrapped_base64(self) -> None:
        # An embedded font or certificate: lines of 76 or 64, one of which spells a key id's shape.
        for width in (76, 64):
            for at in (0, 10, width - 20):
                lines = [blob(RNG, width) for _ in range(8)]
                lines[3] = lines[3][:at] + self.SHAPE + lines[3][at + 20:]
                if at:  # after "+" or "/" a key id stands apart: found as one already
                    lines[3] = lines[3][:at - 1] + "Q" + lines[3][at:]
                with self.subTest(width=width, at=at):
                    self.assertEqual(detectors("FONT = (\n" + "\n".join(lines) + "\n)\n"), [])

    def test_a_secret_after_an_id_glued_to_a_hash(self) -> None:
        text = f"{self.key_id}{RNG.randbytes(20).hex()}\nsecret: {self.secret}\n"
        self.assertIn("aws-secret-access-key", detectors(text))

    def test_a_key_id_shape_inside_a_blob(self) -> None:
        text = blob(RNG, 90) + self.SHAPE + self.secret + "\n"
        self.assertEqual(detectors(text), [])


class LegacyOpenAIGluedTest(unittest.TestCase):
    def test_glued_to_one_character(self) -> None:
        for text in ("x" + legacy_openai(RNG), f"key: 1{legacy_openai(RNG)}\n",
                     json.dumps({"k": "_" + legacy_openai(RNG)}), f"a=Z{legacy_openai(RNG)}&b=2"):
            with self.subTest(text[:6]):
                self.assertEqual(detectors(text), ["openai-api-key"])

    def test_after_a_short_kebab_or_snake_name(self) -> None:
        for prefix in ("rel-", "my_", "prod-env-"):
            with self.subTest(prefix):
                self.assertEqual(detectors(f"tag {prefix}{legacy_openai(RNG)} ok"), ["openai-api-key"])

    def test_the_finding_covers_the_key(self) -> None:
        key = legacy_openai(RNG)
        text = f"v=x{key};"
        finding = SCANNER.scan_text(text)[0]
        self.assertEqual(text[finding.start:finding.end], key)

    def test_names_hashes_and_blobs_stay_clean(self) -> None:
        text = "\n".join((
            "task-" + fakes.rand(RNG, 48),  # two characters glued straight on: "ta"
            "Qz9sk-" + fakes.rand(RNG, 48),
            "disk-" + RNG.randbytes(24).hex(),
            "xsk-" + RNG.randbytes(24).hex(),  # a hash: one case, no mix
            "xsk-" + fakes.rand(RNG, 48, string.ascii_lowercase + string.digits),
            "xsk-" + fakes.rand(RNG, 47), "xsk-" + fakes.rand(RNG, 49),
            "ab+xsk-" + fakes.rand(RNG, 48),  # standard base64 around it
            "xsk-" + fakes.rand(RNG, 48) + "==",
            "xsk-" + fakes.rand(RNG, 48) + "/Ab3",
            "a-kebab-name-longer-than-a-prefix-sk-" + fakes.rand(RNG, 48),
            "mask-layout-for-the-dashboard-with-extra-words-and-more-of-them-here",
            "const task_queue_sk = disk_sk_cache_for_the_build;",
        )) + "\n"
        self.assertEqual(detectors(text), [])

    def test_base64url_ids_ending_in_a_legacy_shape(self) -> None:
        rnd = random.Random(5)
        for _ in range(200):
            glued = blob(rnd, rnd.randrange(2, 60), fakes.URLSAFE)
            if glued[-1] in "-_":
                glued += "Q"  # characters glued straight on
            random_id = blob(rnd, rnd.randrange(12, 24), fakes.ALNUM) + rnd.choice("-_")
            for value in (glued + legacy_openai(rnd), random_id + legacy_openai(rnd)):
                self.assertEqual(detectors(f'"{value}"'), [], value)


class AppendedToBlobTest(unittest.TestCase):
    TOKENS = {
        "github": (fakes.github(RNG), "github-token"),
        "github server": (fakes.github(RNG, "s"), "github-token"),
        "github_pat": (fakes.github_pat(RNG), "github-token"),
        "npm": (fakes.npm(RNG), "npm-token"),
        "google api": (fakes.gcp_api_key(RNG), "gcp-api-key"),
        "google client secret": (fakes.google_client_secret(RNG), "google-oauth-client-secret"),
        "anthropic": (fakes.anthropic(RNG), "anthropic-api-key"),
        "gitlab": (fakes.gitlab(RNG), "gitlab-token"),
        "stripe": (fakes.stripe(RNG), "stripe-secret-key"),
        "openai marked": (fakes.openai(RNG, project=False), "openai-api-key"),
    }

    def test_a_token_appended_to_a_standard_base64_blob(self) -> None:
        for name, (token, detector) in self.TOKENS.items():
            with self.subTest(name):
                self.assertEqual(detectors(f'{{"data": "{before(RNG, 300)}{token}"}}'), [detector])
                self.assertEqual(detectors(before(RNG, 100) + token), [detector])

    def test_a_token_appended_to_a_base64url_blob(self) -> None:
        for name, (token, detector) in self.TOKENS.items():
            with self.subTest(name):
                self.assertEqual(detectors(before(RNG, 120, fakes.URLSAFE) + token + "\n"), [detector])

    def test_in_a_streamed_batch(self) -> None:
        token = self.TOKENS["github"][0]
        noise = random.Random(3).randbytes(200_000)
        data = noise[:100_000] + b"\n" + before(RNG, 4000).encode() + token.encode() + b"\n" + noise[100_000:]
        self.assertIn("github-token", {f.detector for f in SCANNER.scan_batch(data, "body")})

    def test_a_checksummed_token_inside_a_blob(self) -> None:
        for prefix, detector in (("ghp_", "github-token"), ("ghs_", "github-token"), ("npm_", "npm-token")):
            token = checksummed(prefix, RNG)
            with self.subTest(prefix):
                self.assertEqual(detectors(before(RNG, 200) + token + "/" + blob(RNG, 200)), [detector])
                self.assertEqual(detectors(before(RNG, 200) + token + "_" + blob(RNG, 200, fakes.URLSAFE)), [detector])

    def test_a_token_that_does_not_end_the_run(self) -> None:
        for name, (token, _) in self.TOKENS.items():
            with self.subTest(name):
                for after in ("A", "9", "+", "/", "=", "-x"):
                    self.assertEqual(detectors(before(RNG, 200) + token + after + "\n"), [], after)

    def test_formats_of_no_fixed_length_at_a_blobs_end(self) -> None:
        # Unmarked: a marked one (pypi's index name, Slack's digit groups) is read there
        # (test_dlp_tokens_dec14c).
        for token in (fakes.google_oauth(RNG), "pypi-AgE" + fakes.rand(RNG, 70, fakes.URLSAFE), fakes.openai(RNG),
                      "xoxb-" + fakes.rand(RNG, 50, fakes.URLSAFE)):
            with self.subTest(token[:5]):
                self.assertEqual(detectors(before(RNG, 200, fakes.URLSAFE) + token + '"'), [])

    def test_a_lower_cased_token_at_a_blobs_end(self) -> None:
        token = "ghp_" + fakes.rand(RNG, 36, string.ascii_lowercase + string.digits)
        self.assertEqual(detectors(before(RNG, 200) + token + "\n"), [])

    def test_blobs_that_spell_a_token_near_their_end(self) -> None:
        rnd = random.Random(13)
        for _ in range(100):
            for token, _ in self.TOKENS.values():
                extra = rnd.choice(fakes.ALNUM) + blob(rnd, rnd.randrange(0, 40), fakes.URLSAFE)
                text = before(rnd, 150, fakes.URLSAFE) + token + extra
                self.assertEqual(detectors(f'"{text}"'), [], text)

    def test_real_shaped_blobs(self) -> None:
        rnd = random.Random(14)
        integrity = "sha512-" + base64.b64encode(rnd.randbytes(64)).decode()
        record = "".join(f"pkg/m{i}.py,sha256={base64.urlsafe_b64encode(rnd.randbytes(32)).decode().rstrip('=')},{i}\n"
                         for i in range(50))
        pem = "\n".join(base64.b64encode(rnd.randbytes(48)).decode() for _ in range(20))
        image = base64.b64encode(rnd.randbytes(3000)).decode()
        text = (f'"integrity": "{integrity}"\n{record}-----BEGIN CERTIFICATE-----\n{pem}\n'
                f"-----END CERTIFICATE-----\n<img src=\"data:image/png;base64,{image}\">\n{fakes.jwt(rnd)}\n")
        self.assertEqual(detectors(text), ["jwt"])


class HashAfterGhsTest(unittest.TestCase):
    def test_a_sha1_after_a_word_ending_in_ghs(self) -> None:
        sha1, sha256 = RNG.randbytes(20).hex(), RNG.randbytes(32).hex()
        text = (f"2026-12-07 build highs ghs_{sha1} ok\n"
                f"object ghs_{sha1}\nlabel=GHS_{sha1.upper()}\n"
                f"digest ghs_{sha256}\nref: ghp_{RNG.randbytes(20).hex()}\n")
        self.assertEqual(detectors(text), [])

    def test_a_lower_cased_token_is_still_one(self) -> None:
        token = "ghs_" + fakes.rand(RNG, 36, string.ascii_lowercase + string.digits)
        self.assertEqual(detectors(f"auth {token}\n"), ["github-token"])

    def test_a_checksummed_token(self) -> None:
        self.assertEqual(detectors(f"token {checksummed('ghs_', RNG)}\n"), ["github-token"])


if __name__ == "__main__":
    unittest.main()
