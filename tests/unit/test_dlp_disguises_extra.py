"""Further disguises of the bottle's own secrets: character codes written as quoted strings or as
Unicode code points, base85 and ascii85 wrapped into lines, and ascii85 whose ``"`` and ``\\``
are JSON-escaped in a body that was not parsed as JSON; and the ordinary texts that look like
them without holding a secret."""

from __future__ import annotations

import base64
import functools
import json
import random
import unittest

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp.encodings import a85_cores
from tests.unit import test_dlp_disguises as disguises
from tests.unit import test_dlp_fakes as fakes
from tests.unit.test_dlp_disguises import names
from tests.unit.test_dlp_disguises_more import found, fullwidth

RNG = random.Random(8686)
SECRET = fakes.secret_value(RNG, 40)
SCANNER = Scanner({"API_SECRET": SECRET})
# The shared helpers, with this file's scanner.
scan = functools.partial(disguises.scan, scanner=SCANNER)


def wrapped(text: str, width: int, newline: str = "\n") -> str:
    return newline.join(text[i : i + width] for i in range(0, len(text), width))


class QuotedCharacterCodesTest(unittest.TestCase):
    CODES = list(SECRET.encode())

    def test_quoted_lists_in_text(self) -> None:
        cases = {
            "json decimal strings": json.dumps([str(c) for c in self.CODES]),
            "json hex strings": json.dumps([hex(c) for c in self.CODES]),
            "python single quotes": "[" + ", ".join(f"'{c:#04x}'" for c in self.CODES) + "]",
            "ndjson": "\n".join([json.dumps({"i": 0}), json.dumps({"d": [str(c) for c in self.CODES]})]),
        }
        for label, text in cases.items():
            with self.subTest(label):
                self.assertEqual(found(scan(f"x = {text};\n")), {("API_SECRET", "charcodes")})

    def test_quoted_lists_in_parsed_json(self) -> None:
        for render in (str, hex):
            with self.subTest(render.__name__):
                body = json.dumps({"payload": {"data": [render(c) for c in self.CODES]}})
                self.assertEqual(found(scan(body, "application/json")), {("API_SECRET", "charcodes")})

    def test_ordinary_quoted_number_lists_are_not_findings(self) -> None:
        cases = [
            json.dumps({"ids": [str(RNG.randrange(1000)) for _ in range(400)]}),
            json.dumps({"years": [str(y) for y in range(1990, 2030)]}),
            json.dumps([hex(RNG.randrange(256)) for _ in range(300)]),
            json.dumps([str(c) for c in b"an ordinary sentence, nothing secret in it"]),
        ]
        for text in cases:
            with self.subTest(text[:20]):
                self.assertEqual(scan(text), [])
                self.assertEqual(scan(text, "application/json"), [])


class CodePointsTest(unittest.TestCase):
    def test_fullwidth_code_points(self) -> None:
        points = [ord(c) for c in fullwidth(SECRET)]
        for text in (json.dumps(points), "String.fromCharCode(" + ", ".join(map(hex, points)) + ")"):
            with self.subTest(text[:12]):
                self.assertEqual(names(scan(text)), {"API_SECRET"})

    def test_padded_and_wide_hex_codes(self) -> None:
        cases = {
            "0x0067": "String.fromCharCode(" + ", ".join(f"0x{c:04x}" for c in SECRET.encode()) + ")",
            "0103": "[" + ", ".join(f"{c:04d}" for c in SECRET.encode()) + "]",
        }
        for label, text in cases.items():
            with self.subTest(label):
                self.assertEqual(found(scan(text)), {("API_SECRET", "charcodes")})

    def test_secret_beyond_latin1_and_a_mixed_list(self) -> None:
        value = "Zugangs\u20acchl\u00fcssel-\u03a9mega-" + fakes.rand(RNG, 16)
        scanner = Scanner({"WIDE_SECRET": value})
        points = [ord(c) for c in value]
        for text in (json.dumps(points), json.dumps([0x1F600, 0x2603] + points + [0x10FFFF])):
            with self.subTest(text[:12]):
                self.assertEqual(found(scan(text, scanner=scanner)), {("WIDE_SECRET", "charcodes")})
                self.assertEqual(found(scan(text, "application/json", scanner=scanner)),
                                 {("WIDE_SECRET", "charcodes")})

    def test_lists_of_large_numbers_are_not_findings(self) -> None:
        cases = [
            json.dumps([RNG.randrange(1000, 1_200_000) for _ in range(500)]),
            json.dumps({"t": [1_700_000_000 + RNG.randrange(10**6) for _ in range(100)]}),
            ", ".join(f"0x{RNG.randrange(0x110000):06x}" for _ in range(300)),
            json.dumps([ord(c) for c in "日本語のテキスト、ただの文章です。秘密はありません。"]),
        ]
        for text in cases:
            with self.subTest(text[:20]):
                self.assertEqual(scan(text), [])
                self.assertEqual(scan(text, "application/json"), [])


class WrappedBase85Test(unittest.TestCase):
    def test_wrapped_at_the_usual_widths(self) -> None:
        for prefix in (30, 31, 33):
            data = RNG.randbytes(prefix) + SECRET.encode() + RNG.randbytes(40)
            for encode, encoding in ((base64.b85encode, "base85"), (base64.a85encode, "ascii85")):
                for width in (64, 72, 76, 80):
                    for newline in ("\n", "\r\n"):
                        text = wrapped(encode(data).decode(), width, newline)
                        with self.subTest(prefix=prefix, encoding=encoding, width=width, newline=repr(newline)):
                            self.assertEqual(found(scan(f"blob:\n{text}\n")), {("API_SECRET", encoding)})

    def test_wrapped_in_a_file_and_a_json_value(self) -> None:
        text = wrapped(base64.a85encode(RNG.randbytes(30) + SECRET.encode(), wrapcol=0).decode(), 64)
        findings = SCANNER.scan_text("<~" + text + "~>", deep=True)
        self.assertEqual(found(findings), {("API_SECRET", "ascii85")})
        self.assertTrue(all("\n" in ("<~" + text)[f.start : f.end] for f in findings))
        body = json.dumps({"pdf": wrapped(base64.b85encode(RNG.randbytes(40) + SECRET.encode()).decode(), 76)})
        self.assertEqual(found(scan(body, "application/json")), {("API_SECRET", "base85")})

    def test_wrapped_text_without_the_secret_is_not_a_finding(self) -> None:
        prose = " ".join(RNG.choice(["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog"])
                         for _ in range(3000))
        cases = [
            wrapped(prose, 72),
            wrapped(base64.b85encode(RNG.randbytes(6000)).decode(), 76),
            wrapped(base64.a85encode(RNG.randbytes(6000)).decode(), 64),
            wrapped(base64.b64encode(RNG.randbytes(6000)).decode(), 76),
        ]
        for text in cases:
            with self.subTest(text[:20]):
                self.assertEqual(scan(text), [])
                self.assertEqual(SCANNER.scan_text(text, deep=True), [])


def _escaping_secret() -> str:
    """A secret whose ascii85 at every byte offset holds a ``"`` or a ``\\`` inside it (the
    escape JSON puts before it splits the encoded secret)."""
    rng = random.Random(4242)
    while True:
        value = fakes.secret_value(rng, 32)
        if all('"' in core[1:-1] or "\\" in core[1:-1] for core in a85_cores(value.encode())):
            return value


class EscapedAscii85Test(unittest.TestCase):
    VALUE = _escaping_secret()
    SCANNER = Scanner({"A85_SECRET": VALUE})

    def a85(self, prefix: int) -> str:
        return base64.a85encode(RNG.randbytes(prefix) + self.VALUE.encode() + RNG.randbytes(3)).decode()

    def test_ndjson_and_json_in_a_json_string(self) -> None:
        for prefix in range(4):
            text = self.a85(prefix)
            ndjson = json.dumps({"n": 1}) + "\n" + json.dumps({"blob": text}) + "\n"
            nested = json.dumps({"event": json.dumps({"blob": text})})
            with self.subTest(prefix=prefix):
                self.assertIn("\\", json.dumps(text))  # escaped: not contiguous as sent
                self.assertEqual(names(scan(ndjson, "application/x-ndjson", scanner=self.SCANNER)), {"A85_SECRET"})
                self.assertEqual(names(scan(nested, "application/json", scanner=self.SCANNER)), {"A85_SECRET"})
                self.assertEqual(names(scan("data: " + json.dumps(text), scanner=self.SCANNER)), {"A85_SECRET"})

    def test_escaped_and_wrapped(self) -> None:
        text = json.dumps({"blob": wrapped(self.a85(20) + self.a85(1), 64)})
        self.assertEqual(names(scan(text + "\n" + text, "application/x-ndjson", scanner=self.SCANNER)), {"A85_SECRET"})
        # The secret runs into the short last line, inside a JSON string inside a JSON value.
        filler = base64.a85encode(bytes(range(1, 41))).decode()  # 50 characters, whole groups
        text = wrapped(filler + self.a85(0), 64)
        self.assertLess(len(text.split("\n")[-1]), 40)
        nested = json.dumps({"event": json.dumps({"blob": text})})
        self.assertEqual(names(scan(nested, "application/json", scanner=self.SCANNER)), {"A85_SECRET"})

    def test_escaped_json_without_secrets_is_not_a_finding(self) -> None:
        inner = {"path": "C:\\Users\\me\\file.txt", "quote": 'he said "hi"\n\ttab', "a85":
                 base64.a85encode(RNG.randbytes(3000)).decode(), "re": "\\d+\\s*\\\\"}
        cases = [
            json.dumps(inner) + "\n" + json.dumps(inner),
            json.dumps({"event": json.dumps(inner)}),
            json.dumps({"event": json.dumps({"event": json.dumps(inner)})}),
        ]
        for text in cases:
            with self.subTest(text[:20]):
                self.assertEqual(scan(text, "application/x-ndjson", scanner=self.SCANNER), [])
                self.assertEqual(scan(text, "text/plain", scanner=self.SCANNER), [])
                self.assertEqual(scan(text, "text/plain"), [])


if __name__ == "__main__":
    unittest.main()
