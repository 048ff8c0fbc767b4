"""Spread gaps: a word-like own secret (a passphrase) was reported spelled out on ordinary text
that merely holds its words (``correcthorse = battery``, even across a line break).

A word-like value is now spelled out only when its letters come one by one or in small groups,
or as exactly its own words with other separators; a random value keeps every split.

Base64 wrapped narrower than 24 columns (``base64 -w 16``) and indented (a YAML block scalar,
a Markdown code block) was read line by line: a token crossing a line break passed. Such a
block is now read as one, each line indented as its first; indented lists of short hashes and
YAML with short values per key stay quiet.
"""

from __future__ import annotations

import base64
import json
import random
import unittest

from bot_bottle.sidecar.dlp import Scanner
from tests.unit import test_dlp_fakes as fakes

PASSPHRASE = "correcthorsebattery"
DASHED = "Tiger-Maple-Orbit-Canyon"
RNG = random.Random(7007)
TOKEN = fakes.secret_value(RNG, 32)
SCANNER = Scanner({"PASSPHRASE": PASSPHRASE, "DASHED": DASHED, "TOKEN": TOKEN})


def found(text: str, content_type: str = "text/plain") -> set[tuple[str | None, str | None]]:
    findings = SCANNER.scan_request("POST", "https://x.example/", [("Content-Type", content_type)], text.encode())
    return {(f.secret_name or f.detector, f.encoding) for f in findings}


def pushed(text: str) -> set[tuple[str | None, str | None]]:
    return {(f.secret_name or f.detector, f.encoding) for f in SCANNER.scan_text(text, "git", deep=True)}


class WordsInTextAreNotSpreadTest(unittest.TestCase):
    def test_passphrase_words_in_code_config_and_prose(self) -> None:
        cases = {
            "assignment": "correcthorse = battery\n",
            "across a line break": "x = correcthorse\nbattery = 3\n",
            "call": "correct(horse.battery())\n",
            "config keys": "[correct]\nhorse_battery = on\n",
            "yaml": "correct:\n  horse: 1\n  battery: full\n",
            "prose": "The correct horse. Battery included.\n",
            "capitalised": "Correct Horse = new Battery()\n",
            "dashed words in other runs": "tiger_maple = orbitcanyon\n",
            "dashed words in code": "tigerMaple = orbitCanyon\n",
            "dashed value's own words as code": "tiger = maple.orbit(canyon)\n",
            "dashed value's own words across lines": "tiger_maple:\n  orbit: canyon\n",
        }
        for label, text in cases.items():
            with self.subTest(label):
                self.assertEqual(found(text), set())
                self.assertEqual(found(json.dumps({"t": text}), "application/json"), set())
                self.assertEqual(pushed(text), set())

    def test_random_passphrase_shaped_words_in_code(self) -> None:
        words = ["amber", "castle", "river", "window", "planet", "silver", "garden", "rocket"]
        for _ in range(40):
            picked = RNG.sample(words, 4)
            secret = "".join(picked)
            scanner = Scanner({"PHRASE": secret})
            text = f"{picked[0]} = {picked[1]}.{picked[2]}({picked[3]})\n"
            with self.subTest(secret):
                self.assertEqual(scanner.scan_text(text, "git", deep=True), [])
                self.assertEqual(scanner.scan_batch(text.encode(), "body", deep=True), [])


class SpelledOutIsStillFoundTest(unittest.TestCase):
    def test_passphrase_one_by_one_or_in_small_groups(self) -> None:
        cases = [" ".join(PASSPHRASE), "\n".join(PASSPHRASE), json.dumps(list(PASSPHRASE)),
                 "-".join(PASSPHRASE[i:i + 2] for i in range(0, len(PASSPHRASE), 2)),
                 " ".join(PASSPHRASE[i:i + 4] for i in range(0, len(PASSPHRASE), 4))]
        for text in cases:
            with self.subTest(text[:10]):
                self.assertEqual(found(f"note: {text} end"), {("PASSPHRASE", "spread")})

    def test_own_words_with_other_separators(self) -> None:
        for text in ("tiger maple orbit canyon", "TIGER_MAPLE_ORBIT_CANYON", "Tiger / Maple / Orbit / Canyon"):
            with self.subTest(text):
                self.assertEqual(found(f"say {text}!"), {("DASHED", "spread")})

    def test_the_passphrase_as_it_is(self) -> None:
        self.assertEqual({name for name, _ in found(f"p={PASSPHRASE}")}, {"PASSPHRASE"})

    def test_random_token_in_big_chunks_stays_found(self) -> None:
        text = f'"{TOKEN[:12]}" + "{TOKEN[12:24]}" \\\n  "{TOKEN[24:]}"'
        self.assertIn(("TOKEN", "spread"), found(text))
        self.assertIn(("TOKEN", "spread"), pushed(text))


GHP = "ghp_" + fakes.rand(random.Random(4), 36)
AKIA = "AKIAQYLPMN5HFIQR7XYZ"
FILES = {"github-token": f"[default]\ntoken = {GHP}\n".encode(),
         "aws-access-key-id": f"[default]\naws_access_key_id = {AKIA}\nregion = eu-west-1\n".encode()}
PLAIN = Scanner()


def wrapped(data: bytes, width: int, indent: str) -> str:
    encoded = base64.b64encode(data).decode()
    return "".join(indent + encoded[i:i + width] + "\n" for i in range(0, len(encoded), width))


def detectors(text: str) -> set[str]:
    direct = PLAIN.scan_request("POST", "https://x.example/", [("Content-Type", "text/plain")], text.encode())
    filler = "".join(f"line {i}: ok\n" for i in range(20_000))
    batch = PLAIN.scan_batch((filler + text + filler).encode(), "body", deep=True)
    return {f.detector for f in direct} | {f.detector for f in batch}


class IndentedNarrowBase64Test(unittest.TestCase):
    def test_token_files_wrapped_narrow_in_a_yaml_block_scalar_or_code_block(self) -> None:
        for expected, data in FILES.items():
            for width in (8, 12, 16, 20):
                for indent in (" ", "  ", "    ", "\t", " " * 12):
                    with self.subTest(expected, width=width, indent=repr(indent)):
                        yaml = "job:\n  data: |\n" + wrapped(data, width, indent) + "  done: true\n"
                        markdown = "The file:\n\n" + wrapped(data, width, indent) + "\nThat is all.\n"
                        self.assertIn(expected, detectors(yaml))
                        self.assertIn(expected, detectors(markdown))
                        self.assertIn(expected, detectors(json.dumps({"body": markdown})))

    def test_lines_indented_otherwise_are_not_one_block(self) -> None:
        lines = wrapped(FILES["github-token"], 16, "").splitlines()
        text = "".join(("  " if n % 2 else "    ") + line + "\n" for n, line in enumerate(lines))
        self.assertEqual(detectors(text), set())

    def test_indented_hashes_ids_and_short_yaml_values_are_left_alone(self) -> None:
        rng = random.Random(11)
        hexdigits = "0123456789abcdef"
        short_shas = "".join("    " + "".join(rng.choice(hexdigits) for _ in range(7)) + "\n" for _ in range(60))
        ids = "".join("  " + base64.b64encode(rng.randbytes(9)).decode() + "\n" for _ in range(60))
        yaml = "secrets:\n" + "".join(f"  key{i}: {base64.b64encode(rng.randbytes(6)).decode()}\n" for i in range(60))
        words = "".join("        " + rng.choice(["apple", "grape", "lemon", "melon", "berry"]) + "\n"
                        for _ in range(60))
        noise = wrapped(rng.randbytes(3000), 16, "    ")
        for label, text in {"short shas": short_shas, "base64 ids": ids, "yaml": yaml, "words": words,
                            "random bytes wrapped": noise}.items():
            with self.subTest(label):
                self.assertEqual(detectors(text), set())


if __name__ == "__main__":
    unittest.main()
