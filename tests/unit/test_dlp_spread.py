"""The bottle's secrets spelled out with separators between their characters (``dlp.spread``):
in requests, streamed uploads, redaction and pushes; and ordinary text that must not match."""

from __future__ import annotations

import functools
import json
import random
import unittest
from pathlib import Path
from urllib.parse import quote

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp.spread import MIN_SPREAD, find_spread, spread_forms
from bot_bottle.sidecar.dlp.stream import StreamScan
from tests.unit import test_dlp_disguises as disguises
from tests.unit import test_dlp_fakes as fakes

# Seeded: random bytes now and then hold a stretch that reads as text, and an unseeded run
# could then flake on an assertion of no finding.
NOISE = random.Random(6363)

RNG = random.Random(5150)
SECRET = fakes.secret_value(RNG, 32)
SCANNER = Scanner({"API_SECRET": SECRET})
scan = functools.partial(disguises.scan, scanner=SCANNER)

SEPARATORS = {
    "space": " ", "dash": "-", "dot": ".", "comma": ", ", "tab": "\t", "newline": "\n",
    "zero-width space": "\u200b", "zero-width joiner": "\u200d", "soft hyphen": "\u00ad",
    "word joiner": "\u2060", "underscore": "_", "pipe and blanks": " | ",
}


def spaced(value: str, separator: str) -> str:
    return separator.join(value)


def found(findings) -> set[tuple[str | None, str | None]]:
    return {(f.secret_name or f.detector, f.encoding) for f in findings}


class SeparatorsTest(unittest.TestCase):
    def test_every_separator_in_plain_json_and_form_bodies(self) -> None:
        for label, sep in SEPARATORS.items():
            text = spaced(SECRET, sep)
            bodies = {
                "text/plain": f"here it is: {text} -- done".encode(),
                "application/json": json.dumps({"note": text}).encode(),
                "application/x-www-form-urlencoded": ("q=" + quote(text, safe="")).encode(),
            }
            for content_type, body in bodies.items():
                with self.subTest(label, content_type=content_type):
                    self.assertEqual(found(scan(body, content_type)), {("API_SECRET", "spread")})

    def test_one_character_per_array_element_or_line(self) -> None:
        cases = [json.dumps(list(SECRET)), "\n".join(SECRET), json.dumps({"c": [{"v": c} for c in SECRET]})]
        for text in cases:
            with self.subTest(text[:12]):
                self.assertIn("API_SECRET", disguises.names(scan(text, "application/json")))

    def test_in_the_url_and_a_header(self) -> None:
        text = spaced(SECRET, "-")
        by_url = SCANNER.scan_request("GET", "https://x.example/p?q=" + quote(text, safe=""), [], None)
        by_header = SCANNER.scan_request("GET", "https://x.example/", [("X-Note", text)], None)
        self.assertEqual(found(by_url), {("API_SECRET", "spread")})
        self.assertEqual(found(by_header), {("API_SECRET", "spread")})

    def test_inside_an_encoding(self) -> None:
        import base64

        body = base64.b64encode(spaced(SECRET, " ").encode()).decode()
        self.assertEqual(disguises.names(scan(f"blob={body}")), {"API_SECRET"})

    def test_the_span_runs_from_the_first_character_to_the_last(self) -> None:
        text = spaced(SECRET, " . ")
        body = f"before {text} after"
        [finding] = scan(body)
        self.assertEqual(body.encode()[finding.start:finding.end].decode(), text)

    def test_the_value_as_it_is_is_reported_once_raw(self) -> None:
        for text in (SECRET, SECRET.lower()):
            with self.subTest(text[:4]):
                findings = scan(f"value: {text}\n")
                self.assertEqual(len(findings), 1)
                self.assertNotEqual(findings[0].encoding, "spread")


class DigitFormsTest(unittest.TestCase):
    def test_hex_with_any_separator_bits_and_octal_escapes(self) -> None:
        data = SECRET.encode()
        cases = {
            "spread+hex": [":".join(f"{b:02x}" for b in data), "".join(f"={b:02X}" for b in data),
                           "-".join(f"{b:02X}" for b in data), "\n".join(f"{b:02x}" for b in data)],
            "spread+binary": [" ".join(f"{b:08b}" for b in data), "".join(f"{b:08b}" for b in data)],
            "spread+octal": ["".join(f"\\{b:03o}" for b in data), " ".join(f"{b:03o}" for b in data)],
        }
        for encoding, texts in cases.items():
            for text in texts:
                with self.subTest(encoding, text=text[:12]):
                    self.assertIn(("API_SECRET", encoding), found(scan(f"x {text} y")))

    def test_plain_hex_is_left_to_the_hex_form(self) -> None:
        for text in (SECRET.encode().hex(), SECRET.encode().hex(" ")):
            with self.subTest(text[:5]):
                self.assertEqual(found(scan(f"x {text} y")), {("API_SECRET", "hex")})


class WhatIsNotSpreadTest(unittest.TestCase):
    def test_ordinary_text_and_random_data_hold_nothing(self) -> None:
        prose = ("The quick brown fox jumps over the lazy dog; " * 200).encode()
        code = Path(disguises.__file__).read_bytes()
        for body in (prose, code, NOISE.randbytes(1 << 20), bytes(range(256)) * 512):
            with self.subTest(len(body)):
                self.assertEqual(scan(body, "application/octet-stream"), [])

    def test_a_value_with_too_few_letters_and_digits_has_no_letter_form(self) -> None:
        short = fakes.rand(RNG, MIN_SPREAD - 1) + "!!"
        encodings = {form.encoding for form in spread_forms([("S", short)])}
        self.assertNotIn("spread", encodings)
        self.assertEqual(find_spread(spread_forms([("S", short)]), " ".join(short)), [])

    def test_letters_as_separators_are_not_seen(self) -> None:
        # The documented limit: separators that are letters or digits themselves.
        self.assertEqual(scan("x".join(SECRET)), [])

    def test_every_one_of_many_occurrences_is_placed_exactly(self) -> None:
        forms = spread_forms([("S", SECRET)])
        pieces, expected = [], []
        position = 0
        for i in range(300):
            filler = "x, " * RNG.randrange(0, 400) + "- "
            spelled = spaced(SECRET, RNG.choice(list(SEPARATORS.values())))
            pieces += [filler, spelled]
            position += len(filler)
            expected.append((position, position + len(spelled)))
            position += len(spelled)
        text = "".join(pieces)
        hits = [(h.start, h.end) for h in find_spread(forms, text) if h.encoding == "spread"]
        self.assertEqual(hits, expected)

    def test_offsets_of_a_str_beyond_latin1_are_characters(self) -> None:
        text = "日本語 " + spaced(SECRET, "\u200b") + " 終わり"
        [hit] = find_spread(spread_forms([("S", SECRET)]), text)
        self.assertEqual(text[hit.start:hit.end], spaced(SECRET, "\u200b"))


class RedactionTest(unittest.TestCase):
    def test_redact_removes_the_whole_spread_value(self) -> None:
        text = spaced(SECRET, " ")
        result = SCANNER.redact_request("POST", "https://x.example/", [("Content-Type", "application/json")],
                                        json.dumps({"m": f"key {text} end"}).encode())
        self.assertFalse(result.unredacted)
        body = json.loads(result.body)["m"]
        self.assertTrue(body.startswith("key ") and body.endswith(" end"))
        self.assertNotIn(SECRET[:4], body.replace(" ", ""))


class StreamedTest(unittest.TestCase):
    def stream(self, body: bytes) -> StreamScan:
        stream, self.forwarded = disguises.streamed(body, SCANNER, sniff_json=False)
        return stream

    def test_in_text_and_between_random_bytes(self) -> None:
        lines = b"".join(b"line %d of an ordinary log, nothing in it\n" % i for i in range(60000))
        cases = {
            "spaces in text": lines + spaced(SECRET, " ").encode() + lines,
            "zero-width in text": lines + spaced(SECRET, "\u200b").encode() + lines,
            "dashes between random bytes": NOISE.randbytes(3 << 20) + b" " + spaced(SECRET, "-").encode()
            + b" " + NOISE.randbytes(1 << 20),
        }
        for label, body in cases.items():
            with self.subTest(label):
                stream = self.stream(body)
                self.assertEqual(found(stream.findings), {("API_SECRET", "spread")})
                self.assertLess(len(self.forwarded), len(body))

    def test_batch_scan_finds_what_the_buffered_scan_finds(self) -> None:
        for sep in SEPARATORS.values():
            body = b"prefix text " + spaced(SECRET, sep).encode() + b" suffix text"
            with self.subTest(repr(sep)):
                self.assertEqual(found(SCANNER.scan_batch(body, "body", deep=True)),
                                 found(scan(body, "application/octet-stream")))


class PushTest(unittest.TestCase):
    def test_the_git_gate_scan_finds_a_spread_value(self) -> None:
        findings = SCANNER.scan_text("password = '" + spaced(SECRET, " ") + "'\n", "git", deep=True)
        self.assertEqual(found(findings), {("API_SECRET", "spread")})


if __name__ == "__main__":
    unittest.main()
