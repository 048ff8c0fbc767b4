"""The spread search's word pass (``spread._present``): the forms it leaves out are exactly ones
that do not occur, so ``find_spread`` finds what a ``find`` per form finds; and a streamed
batch's fragment search copies the batch once, finding the same pieces."""

from __future__ import annotations

import base64
import random
import unittest

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp import spread
from bot_bottle.sidecar.dlp.known import KnownSecrets
from bot_bottle.sidecar.dlp.shifts import find_shifted

# Ten secrets give well over ``WORD_PASS_FORMS`` forms; the letter-only ones add their 26 to 51
# substituted forms, searched one by one.
SECRETS = {
    "A": "sk_live_4eC39HqLyjWDarjtT1zdp7dcXQ",
    "B": "hunter2-Pa55w0rd-ZZtop99",
    "C": "correcthorsebatterystaple",
    "D": "TrustNoOneEverAgainPlease",
    "E": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "F": "db_pass_Q9w8E7r6T5y4",
    "G": "3f9a1c7e5b2d8f0a6c4e",
    "H": "zebraquantumvelvetharbor",
    "I": "xoxb-1234-5678-abcdefghijklmnop",
    "J": "MyS3cretT0kenValue!!",
}


def _caesar(value: str, k: int) -> str:
    out = []
    for c in value:
        if c.isalpha():
            base = 97 if c.islower() else 65
            out.append(chr((ord(c) - base + k) % 26 + base))
        else:
            out.append(c)
    return "".join(out)


def _per_form(known: KnownSecrets, text: bytes) -> list[tuple[int, int, str, str]]:
    """What ``find_spread`` reported with a ``find`` per form: the same function with every
    form kept (the word pass left out)."""
    saved = spread.WORD_PASS_FORMS
    spread.WORD_PASS_FORMS = 10**9
    try:
        return [(h.start, h.end, h.secret_name, h.encoding) for h in known.find_spread(text)]
    finally:
        spread.WORD_PASS_FORMS = saved


def _found(known: KnownSecrets, text: bytes) -> list[tuple[int, int, str, str]]:
    return [(h.start, h.end, h.secret_name, h.encoding) for h in known.find_spread(text)]


def _filler(rng: random.Random, size: int) -> bytearray:
    words = ["user_id", "request", "config", "value", "handler", "items", "0x1f", "return", "self"]
    out = bytearray()
    while len(out) < size:
        out += f"{rng.choice(words)} = {rng.choice(words)}.{rng.choice(words)}({rng.randrange(999)})\n".encode()
    return out[:size]


class WordPassTest(unittest.TestCase):
    def setUp(self) -> None:
        self.known = Scanner(SECRETS).known

    def test_engaged_for_many_forms(self) -> None:
        index = spread._word_index(self.known._spread, self.known._shifted)
        self.assertIsNotNone(index)
        words, owners, count = index
        self.assertEqual(set(words), set(owners))
        self.assertGreaterEqual(count, spread.WORD_PASS_FORMS)

    def test_not_engaged_for_few_forms(self) -> None:
        known = Scanner({"A": SECRETS["A"]}).known
        skeleton = b"abcdefgh" * 4096
        forms, shifted = spread._present(known._spread, known._shifted, skeleton)
        self.assertIs(forms, known._spread)
        self.assertIs(shifted, known._shifted)

    def test_clean_text_drops_every_form(self) -> None:
        text = bytes(_filler(random.Random(1), 64 * 1024))
        skeleton = text.translate(spread._LOWER, spread._DROP)
        forms, shifted = spread._present(self.known._spread, self.known._shifted, skeleton)
        self.assertEqual(list(forms), [])
        self.assertTrue(all(value.layout for value in shifted))  # only those searched by layout stay

    def test_kept_forms_include_every_one_present(self) -> None:
        rng = random.Random(2)
        text = _filler(rng, 40 * 1024)
        text[1000:1000] = " ".join(SECRETS["C"]).encode()
        text[9000:9000] = _caesar(SECRETS["H"], 7).encode()
        skeleton = bytes(text).translate(spread._LOWER, spread._DROP)
        forms, shifted = spread._present(self.known._spread, self.known._shifted, skeleton)
        self.assertIn(b"correcthorsebatterystaple", [form.skeleton for form in forms])
        caesar = _caesar(SECRETS["H"], 7).encode()
        self.assertTrue(any(caesar in value.forms for value in shifted))
        # Searched only in the kept ones, the substituted forms are all found.
        self.assertTrue(any(encoding == "caesar" for _, _, _, encoding in find_shifted(shifted, skeleton)))

    def test_reference_search_has_no_word_pass(self) -> None:
        # ``_per_form``, the reference the hits are compared with, searches every form.
        skeleton = b"zzzzzzzz" * 4096
        saved = spread.WORD_PASS_FORMS
        spread.WORD_PASS_FORMS = 10**9
        try:
            forms, shifted = spread._present(self.known._spread, self.known._shifted, skeleton)
        finally:
            spread.WORD_PASS_FORMS = saved
        self.assertIs(forms, self.known._spread)
        self.assertIs(shifted, self.known._shifted)
        forms, _ = spread._present(self.known._spread, self.known._shifted, skeleton)
        self.assertEqual(list(forms), [])

    def test_short_skeleton_keeps_everything(self) -> None:
        skeleton = b"abc" * 100
        forms, shifted = spread._present(self.known._spread, self.known._shifted, skeleton)
        self.assertIs(forms, self.known._spread)
        self.assertIs(shifted, self.known._shifted)

    def test_one_pass_skeleton_matches_two(self) -> None:
        data = bytes(range(256)) * 50 + b"AbC-DeF_0x1F zZ"
        self.assertEqual(data.translate(spread._LOWER, spread._DROP), data.translate(None, spread._DROP).lower())

    def test_same_hits_as_per_form_search(self) -> None:
        rng = random.Random(3)
        values = list(SECRETS.values())
        for case in range(60):
            text = _filler(rng, rng.choice([17 * 1024, 40 * 1024, 70 * 1024 + 5]))
            for _ in range(rng.randrange(4)):
                value = rng.choice(values)
                form = rng.choice([
                    " ".join(value),
                    _caesar(value, rng.randrange(1, 26)),
                    ":".join(f"{b:02x}" for b in value.encode()),
                    " ".join(f"{b:08b}" for b in value.encode()),
                    "\n".join(base64.b64encode(value.encode()).decode()[i:i + 8] for i in range(0, 60, 8)),
                    "-".join(value[i:i + 3] for i in range(0, len(value), 3)),
                ])
                # At the ends too: the last bytes of a skeleton are outside its whole words.
                at = rng.choice([0, len(text), rng.randrange(len(text) + 1), len(text) - rng.randrange(8)])
                text[at:at] = form.encode()
            with self.subTest(case=case):
                self.assertEqual(_found(self.known, bytes(text)), _per_form(self.known, bytes(text)))

    def test_found_at_every_alignment(self) -> None:
        # A form starting at each offset modulo the word size, up to the end of the text.
        filler = _filler(random.Random(4), 20 * 1024)
        for shift in range(16):
            for value in (SECRETS["C"], _caesar(SECRETS["D"], 3), SECRETS["G"]):
                text = bytes(filler[: len(filler) - shift]) + " ".join(value).encode()
                with self.subTest(shift=shift, value=value):
                    found = _found(self.known, text)
                    self.assertEqual(found, _per_form(self.known, text))
                    self.assertTrue(any(end == len(text) for _, end, _, _ in found))

    def test_benign_text_finds_nothing(self) -> None:
        text = bytes(_filler(random.Random(5), 256 * 1024))
        self.assertEqual(_found(self.known, text), [])
        self.assertEqual(_per_form(self.known, text), [])


class FragmentCopyTest(unittest.TestCase):
    def test_bytearray_batch_same_as_bytes(self) -> None:
        scanner = Scanner(SECRETS)
        rng = random.Random(6)
        data = bytearray(rng.randbytes(300 * 1024))
        data[200_000:200_000] = SECRETS["A"][:12].encode()
        m1, m2 = scanner.new_memory(), scanner.new_memory()
        a = scanner.scan_fragments(data, memory=m1, seen=65536)
        b = scanner.scan_fragments(bytes(data), memory=m2, seen=65536)
        self.assertEqual(a, b)
        # The piece counts: the other half, sent next, completes the secret.
        rest = bytearray(rng.randbytes(100 * 1024))
        rest[5000:5000] = SECRETS["A"][12:].encode()
        found = scanner.scan_fragments(rest, memory=m1)
        self.assertEqual([f.secret_name for f in found], ["A"])
        self.assertGreaterEqual(found[0].start, 5000)


if __name__ == "__main__":
    unittest.main()
