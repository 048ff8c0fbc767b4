"""Token formats appended to a blob or case-changed that were still missed, and their look-alikes.

- Google's older access-token shapes (a protobuf in base64url after "ya29.": "ya29.Gl...",
  "ya29.El...", "ya29.c.Ko8B...", "ya29.Cj...") and 2021's "ya29.A0A...": read appended to a blob
  like "ya29.a0A..." is.
- An OpenAI key upper-cased ("SK-PROJ-...T3BLBKFJ...") or lower-cased: its kind and the base64 of
  "OpenAI" are still there as marks.
"""

from __future__ import annotations

import random
import string
import unittest

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp.tokens import TokenScanner
from tests.unit import test_dlp_fakes as fakes

RNG = random.Random(1507)
SCANNER = Scanner()
TOKENS = TokenScanner()
UPPER = string.ascii_uppercase + string.digits


def detectors(text: str) -> list[str]:
    return sorted({f.detector for f in SCANNER.scan_text(text)})


def spans(text: str) -> list[tuple[int, int, str]]:
    return [(start, end, id_) for start, end, _det, id_, _name in TOKENS.scan(text)]


blob = fakes.mixed_blob


# The starts of real tokens Google issued, each followed by random base64url.
GOOGLE_STARTS = ("ya29.GlvGBZ", "ya29.Glw0BT", "ya29.GluNB9", "ya29.ElqKBG", "ya29.El_ZA9", "ya29.ElmsA4",
                 "ya29.c.Ko8B1g", "ya29.c.Kp8B-Q", "ya29.c.Kl6fB3", "ya29.c.Kmq6Bx", "ya29.CjAB",
                 "ya29.ImCpB", "ya29.A0ARrdaM", "ya29.A0AfH6SM")


def google_old(rng: random.Random, start: str) -> str:
    return start + fakes.rand(rng, 140, fakes.URLSAFE)


def openai_upper(rng: random.Random, kind: str = "proj") -> str:
    head = f"sk-{kind}-" if kind else "sk-"
    size = 74 if kind else 20
    return (head + fakes.rand(rng, size, fakes.URLSAFE if kind else fakes.ALNUM) + "T3BlbkFJ"
            + fakes.rand(rng, size, fakes.URLSAFE if kind else fakes.ALNUM)).upper()


def wrapped(rng: random.Random, lines: int = 4) -> str:
    return "\n".join(blob(rng, 76) for _ in range(lines)) + "\n" + blob(rng, 30)


class OlderGoogleShapesTest(unittest.TestCase):
    def test_appended_to_a_blob(self) -> None:
        for start in GOOGLE_STARTS:
            for alphabet in (fakes.B64, fakes.URLSAFE, string.ascii_letters + "0123"):
                token = google_old(RNG, start)
                text = blob(RNG, 300, alphabet) + token
                with self.subTest(start, alphabet=alphabet[-6:]):
                    self.assertEqual(detectors(f'{{"data": "{text}"}}'), ["google-oauth-token"])
                    self.assertIn((text.index(token), len(text), "google-oauth-token"), spans(text))

    def test_appended_to_the_last_line_of_wrapped_base64(self) -> None:
        for start in GOOGLE_STARTS:
            token = google_old(RNG, start)
            with self.subTest(start):
                self.assertEqual(detectors(wrapped(RNG) + token + "\n"), ["google-oauth-token"])

    def test_standing_apart(self) -> None:
        for start in GOOGLE_STARTS:
            with self.subTest(start):
                self.assertEqual(detectors(f"Authorization: Bearer {google_old(RNG, start)}\n"),
                                 ["google-oauth-token"])

    def test_other_starts_at_a_blobs_end_stay_clean(self) -> None:
        # After "ya29.", what no token Google issued starts with: a random tag, a tag with a
        # length byte out of range, or no "A"/"B" where the protobuf has one.
        for tail in ("ya29.Zq", "ya29.Gz", "ya29.Ga", "ya29.GlvGZZ", "ya29.c.Kzzz", "ya29.b1A", "ya29.B0A"):
            body = tail + "".join(RNG.choice("ZYXWzyxw-_") for _ in range(80))
            with self.subTest(tail):
                self.assertEqual(detectors(f'"{blob(RNG, 200, fakes.URLSAFE)}{body}"'), [])

    def test_dotted_base64url_segments_stay_clean(self) -> None:
        # A JWT-like run of dotted segments: a segment ends in "ya29" by chance, the next one goes on.
        for _ in range(30):
            text = blob(RNG, 120, fakes.URLSAFE) + "ya29." + RNG.choice("DFHJLMNOPQRSTUVWXYZ") \
                + blob(RNG, 120, fakes.URLSAFE)
            self.assertEqual(detectors(f"x = {text}\n"), [])

    def test_marked_but_not_ending_the_run(self) -> None:
        for start in GOOGLE_STARTS[:4]:
            with self.subTest(start):
                self.assertEqual(detectors(blob(RNG, 200) + google_old(RNG, start) + "+" + blob(RNG, 30)), [])


class CaseChangedOpenAiTest(unittest.TestCase):
    KINDS = ("proj", "svcacct", "admin", "")

    def test_upper_cased_standing_apart(self) -> None:
        for kind in self.KINDS:
            key = openai_upper(RNG, kind)
            for text in (f"OPENAI_API_KEY={key}\n", f"export OPENAI_API_KEY='{key}'", f"Bearer {key}"):
                with self.subTest(kind=kind, text=text[:20]):
                    self.assertEqual(detectors(text), ["openai-api-key"])

    def test_upper_cased_appended_to_a_blob(self) -> None:
        for kind in self.KINDS:
            key = openai_upper(RNG, kind)
            for prefix in (blob(RNG, 300), blob(RNG, 300, fakes.URLSAFE), fakes.rand(RNG, 300, "0123456789ABCDEF"),
                           fakes.github(RNG), wrapped(RNG)):
                text = prefix + key
                with self.subTest(kind=kind, prefix=prefix[:8]):
                    self.assertIn((len(prefix), len(text), "openai-api-key"), spans(text))

    def test_lower_cased(self) -> None:
        for kind in self.KINDS:
            key = openai_upper(RNG, kind).lower()
            with self.subTest(kind=kind):
                self.assertEqual(detectors(f"OPENAI_API_KEY={key}\n"), ["openai-api-key"])

    def test_upper_case_look_alikes_stay_clean(self) -> None:
        texts = [
            "TASK-1234 RISK-ASSESSMENT-FOR-PROJECT-ALPHA-AND-BETA-RELEASE-2024",
            "SK-" + fakes.rand(RNG, 48, UPPER),  # an upper-case id after "SK-": no marker
            "SK-PROJ-" + fakes.rand(RNG, 120, UPPER + "-_"),
            "SK-" + fakes.rand(RNG, 64, "0123456789ABCDEF"),
            "DESK-" + "T3BLBKFJ" * 8,  # the marker repeated: no varied body
            "SK-PROJ-" + "A" * 20 + "T3BLBKFJ" + "B" * 20,
            "SKU: SK-2024-00001234-ABCDEFGH-T3BLBKFJ",  # too short on both sides
        ]
        for text in texts:
            with self.subTest(text=text[:24]):
                self.assertEqual(detectors(f"value = '{text}'\n"), [])

    def test_lower_case_look_alikes_stay_clean(self) -> None:
        for text in ("sk-" + fakes.rand(RNG, 48, "0123456789abcdef"),  # a hash after "sk-"
                     "task-" + fakes.rand(RNG, 60, string.ascii_lowercase + string.digits),
                     "sk-" + fakes.rand(RNG, 60, string.ascii_lowercase + string.digits)):
            with self.subTest(text=text[:12]):
                self.assertEqual(detectors(f"name: {text}\n"), [])


class UpperCasedAnthropicTest(unittest.TestCase):
    """Found before: kept so (an upper-cased key glued on keeps its exact length)."""

    def test_appended_to_blobs(self) -> None:
        key = fakes.anthropic(RNG).upper()
        for prefix in (blob(RNG, 300), fakes.rand(RNG, 300, "0123456789ABCDEF"), fakes.github(RNG)):
            text = prefix + key
            with self.subTest(prefix=prefix[:8]):
                self.assertIn((len(prefix), len(text), "anthropic-api-key"), spans(text))


if __name__ == "__main__":
    unittest.main()
