"""A key that is two tokens run together ("...Ue7ghp_R7b...") is hidden whole in an error: the
scanner reads such a pair as one value that stops inside the second token, or finds only one of
them, and the rest of the pair used to be printed."""

from __future__ import annotations

import random
import unittest

from bot_bottle.manifest.conceal import HIDDEN, conceal_tokens
from tests.fixtures import ManifestTestCase
from tests.unit import test_dlp_fakes as fakes

RNG = random.Random(1511)


def tokens(rng: random.Random) -> dict[str, str]:
    return {
        "github": fakes.github(rng),
        "github_pat": fakes.github_pat(rng),
        "anthropic": fakes.anthropic(rng),
        "openai": fakes.openai(rng),
        "npm": fakes.npm(rng),
        "stripe": fakes.stripe(rng),
        "gitlab": fakes.gitlab(rng),
        "slack": fakes.slack_bot(rng),
        "gcp": fakes.gcp_api_key(rng),
        "client secret": fakes.google_client_secret(rng),
        "google": "ya29.a0AfH6SM" + fakes.rand(rng, 100, fakes.URLSAFE),
        "aws": fakes.aws_key_id(rng),
    }


def shown_pieces(token: str) -> list[str]:
    """Pieces of ``token``'s body, any of which in a message shows part of the token."""
    body = token[-24:]
    return [body[i : i + 8] for i in range(0, len(body) - 7, 4)]


class GluedPairsTest(unittest.TestCase):
    def test_every_pair_is_hidden_whole(self) -> None:
        found = tokens(RNG)
        for first_name, first in found.items():
            for second_name, second in found.items():
                if first_name == second_name == "aws":
                    continue  # two key ids run together: 40 capitals and digits, no token read there
                key = f"env.{first}{second}"
                shown = conceal_tokens(key)
                with self.subTest(first=first_name, second=second_name):
                    self.assertIn(HIDDEN, shown)
                    for piece in shown_pieces(first) + shown_pieces(second):
                        self.assertNotIn(piece, shown)

    def test_the_names_around_stay(self) -> None:
        first, second = fakes.github(RNG), fakes.github(RNG)
        self.assertEqual(conceal_tokens(f"agents.coder.env.{first}{second}.value"),
                         f"agents.coder.env.{HIDDEN}.value")
        shown = conceal_tokens(f"env.{fakes.npm(RNG)}{fakes.aws_key_id(RNG)}")
        self.assertTrue(shown.startswith("env."), shown)

    def test_keys_without_tokens_are_kept(self) -> None:
        for key in ("env.GITHUB_TOKEN", "env.OPENAI_API_KEY.value", "egress.routes[0].auth.token_ref",
                    "env.ghp_ghp_ghp_name", "env.sk-proj-settings", "git-gate.repos.app.url"):
            with self.subTest(key=key):
                self.assertEqual(conceal_tokens(key), key)


class ManifestErrorTest(ManifestTestCase):
    def test_an_env_name_of_two_glued_tokens_is_not_printed(self) -> None:
        pairs = [(fakes.github(RNG), fakes.github(RNG)), (fakes.gcp_api_key(RNG), fakes.openai(RNG)),
                 (fakes.aws_key_id(RNG), fakes.stripe(RNG)), (fakes.github_pat(RNG), fakes.openai(RNG))]
        for first, second in pairs:
            with self.subTest(first=first[:4], second=second[:4]):
                err = self.bottle_error(f'env:\n  "{first}{second}": "1"\n')
                text = str(err) + (getattr(err, "hint", None) or "")
                self.assertIn(HIDDEN, text)
                for piece in shown_pieces(first) + shown_pieces(second):
                    self.assertNotIn(piece, text)


if __name__ == "__main__":
    unittest.main()
