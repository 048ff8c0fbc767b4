"""Pieces of a secret sent across requests behind padding, and the word pass of ``FragmentIndex``."""

from __future__ import annotations

import json
import random
import string
import unittest

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp import fragments
from bot_bottle.sidecar.dlp.fragments import BLOCK, MIN_FRAGMENT, MIN_TAIL_FRAGMENT, FragmentIndex

SECRET = "Zq7tKp2WvX9mRb4LcN8yHd3FsG6jT1uE"  # 32 random-looking characters
JSON = [("content-type", "application/json")]
ALPHABET = string.ascii_letters + string.digits


def random_secrets(count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(f"S{i}", "".join(rng.choice(ALPHABET) for _ in range(rng.choice([20, 32, 40, 61]))))
            for i in range(count)]


def padding(count: int = 9_000) -> list[str]:
    """About 1.1 MiB of JSON strings of 126 characters, none of them holding a piece of a secret."""
    return ["p%05d" % i + "y" * 120 for i in range(count)]


def spans(found: list[fragments.Fragment]) -> list[tuple[str, int, int, int, int]]:
    return sorted((f.secret_name, f.start, f.end, f.secret_start, f.secret_end) for f in found)


class PaddedPieces(unittest.TestCase):
    def setUp(self) -> None:
        self.scanner = Scanner({"HOST_SECRET": SECRET})
        self.memory = self.scanner.new_memory()

    def send(self, body: object) -> list[tuple[str, str]]:
        found = self.scanner.scan_request("POST", "http://allowed.example/x", JSON, json.dumps(body).encode(),
                                          memory=self.memory)
        return [(f.secret_name, f.encoding) for f in found]

    def test_padding_in_front_of_each_piece_does_not_hide_it(self) -> None:
        pad = padding()
        parts = [SECRET[at:at + MIN_FRAGMENT] for at in range(0, len(SECRET), MIN_FRAGMENT)]
        for part in parts[:-1]:
            self.assertEqual(self.send({"pad": pad, "x": part}), [])
        self.assertEqual(self.send({"pad": pad, "x": parts[-1]}), [("HOST_SECRET", "split across requests")])

    def test_one_large_padded_request_after_small_ones(self) -> None:
        self.assertEqual(self.send({"x": SECRET[:16]}), [])
        self.assertEqual(self.send({"pad": padding(20_000), "y": "note " + SECRET[16:] + " end"}),
                         [("HOST_SECRET", "split across requests")])

    def test_padded_traffic_without_pieces_is_never_reported(self) -> None:
        rng = random.Random(5)
        pad = padding()
        for _ in range(4):
            # Look-alikes: the secret's alphabet, its blocks too short to count, near misses.
            tokens = ["".join(rng.choice(ALPHABET) for _ in range(32)) for _ in range(50)]
            near = [SECRET[at:at + MIN_FRAGMENT - 1] + "#" for at in range(0, len(SECRET) - MIN_FRAGMENT)]
            self.assertEqual(self.send({"pad": pad, "tokens": tokens, "near": near}), [])
        self.assertEqual(self.memory.sent("HOST_SECRET"), 0)


class WordPass(unittest.TestCase):
    """Many secrets: ``find`` reads the text as words; what it finds must not change."""

    def setUp(self) -> None:
        self.secrets = random_secrets(10, seed=11)
        self.index = FragmentIndex(self.secrets)

    def by_blocks(self, text: str) -> list[tuple[str, int, int, int, int]]:
        found: list[fragments.Fragment] = []
        for i in range(len(self.secrets)):
            found += self.index._block_search(text, i)
        return spans(found)

    def test_the_word_pass_is_used_for_many_secrets(self) -> None:
        calls: list[int] = []
        original = FragmentIndex._word_pass

        def counted(index: FragmentIndex, text: str, wanted: list[int]) -> list[fragments.Fragment]:
            calls.append(len(text))
            return original(index, text, wanted)

        FragmentIndex._word_pass = counted  # type: ignore[method-assign]
        try:
            self.index.find("x" * 100)
        finally:
            FragmentIndex._word_pass = original  # type: ignore[method-assign]
        self.assertEqual(calls, [100])

    def test_a_piece_is_found_at_every_alignment_and_across_chunks(self) -> None:
        name, value = self.secrets[3]
        for length in (MIN_FRAGMENT, MIN_FRAGMENT + 1, 11, len(value)):
            for shift in range(-2 * BLOCK, 2 * BLOCK):
                with self.subTest(length=length, shift=shift):
                    at = fragments.WORD_CHUNK + shift
                    piece = value[5:5 + length] if length < len(value) else value
                    text = "-" * at + piece + "-" * 20
                    found = spans(self.index.find(text))
                    self.assertIn((name, at, at + len(piece), 5 if length < len(value) else 0,
                                   5 + len(piece) if length < len(value) else len(value)), found)
                    self.assertEqual(found, self.by_blocks(text))

    def test_the_shortest_piece_that_ends_a_secret_at_every_alignment(self) -> None:
        name, value = next(s for s in self.secrets if len(s[1]) >= fragments.MIN_TAIL_SECRET)
        for length in range(MIN_TAIL_FRAGMENT, MIN_FRAGMENT):
            for at in range(40, 40 + BLOCK):
                with self.subTest(length=length, at=at):
                    text = "." * at + value[-length:] + "."
                    self.assertEqual(spans(self.index.find(text)),
                                     [(name, at, at + length, len(value) - length, len(value))])

    def test_found_as_block_by_block_on_random_texts(self) -> None:
        rng = random.Random(23)
        for trial in range(300):
            parts: list[str] = []
            for _ in range(rng.randint(0, 6)):
                parts.append("".join(rng.choice(ALPHABET + " {}\"é€") for _ in range(rng.randint(0, 40))))
                _, value = rng.choice(self.secrets)
                start = rng.randint(0, len(value) - 1)
                parts.append(value[start:rng.randint(start, len(value))])
            text = "".join(parts)
            with self.subTest(trial=trial):
                self.assertEqual(spans(self.index.find(text)), self.by_blocks(text))

    def test_characters_past_latin1_in_text_and_secret(self) -> None:
        secret = "Ünïcødé€Ω-λ∑パスワード-Kp2WvX9m"
        index = FragmentIndex([("U", secret), *self.secrets])
        text = "‰€€ " + secret[3:17] + " ∑∑ λ? ????" + secret[-MIN_TAIL_FRAGMENT:]
        found = [(f.secret_name, f.secret_start, f.secret_end) for f in index.find(text)]
        self.assertEqual(sorted(found), [("U", 3, 17), ("U", len(secret) - MIN_TAIL_FRAGMENT, len(secret))])
        self.assertEqual(index.find("????????????????" + "?" * 40), [])

    def test_decoys_before_a_piece_do_not_hide_it(self) -> None:
        name, value = self.secrets[0]
        decoys = (value[:BLOCK] + "-") * 50_000  # each too short to count, at every alignment
        found = self.index.find(decoys + " " + value[:12])
        self.assertEqual([(f.secret_name, f.secret_start, f.secret_end) for f in found], [(name, 0, 12)])

    def test_a_text_made_of_pieces_counts_as_the_whole_secret(self) -> None:
        index = FragmentIndex([("A", "a" * 40), *self.secrets])
        found = index.find("a" * 200_000)
        self.assertIn(("A", 0, 200_000, 0, 40), spans(found))
        self.assertEqual({f.secret_name for f in found}, {"A"})

    def test_skipped_secrets_are_not_looked_for(self) -> None:
        name, value = self.secrets[2]
        found = self.index.find("x " + value[3:19], skip={name})
        self.assertEqual(found, [])

    def test_ordinary_text_holds_no_piece(self) -> None:
        text = json.dumps([{"id": i, "email": f"user{i}@example.com", "note": "lorem ipsum dolor sit amet"}
                           for i in range(5_000)])
        self.assertEqual(self.index.find(text), [])


if __name__ == "__main__":
    unittest.main()
