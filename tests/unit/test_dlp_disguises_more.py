"""More disguises of the bottle's own secrets: base85 and ascii85 at any alignment, lists of
character codes (decimal and hex), and fullwidth or other Unicode compatibility forms; and the
ordinary texts that look like them without holding a secret."""

from __future__ import annotations

import base64
import functools
import json
import random
import unittest

from bot_bottle.sidecar.dlp import Scanner
from tests.unit import test_dlp_disguises as disguises
from tests.unit import test_dlp_fakes as fakes

RNG = random.Random(8585)
SECRET = fakes.secret_value(RNG, 40)
SCANNER = Scanner({"API_SECRET": SECRET})
# The shared helper, with this file's scanner.
scan = functools.partial(disguises.scan, scanner=SCANNER)


def found(findings) -> set[tuple[str | None, str | None]]:
    return {(f.secret_name or f.detector, f.encoding) for f in findings}


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


class Base85Test(unittest.TestCase):
    def test_every_alignment_in_both_alphabets(self) -> None:
        for prefix in range(8):
            for suffix in (0, 1, 3):
                data = RNG.randbytes(prefix) + SECRET.encode() + RNG.randbytes(suffix)
                cases = {
                    "base85": base64.b85encode(data).decode(),
                    "ascii85": base64.a85encode(data).decode(),
                }
                cases["ascii85 "] = base64.a85encode(data, adobe=True).decode()
                for encoding, text in cases.items():
                    with self.subTest(prefix=prefix, suffix=suffix, encoding=encoding):
                        self.assertIn(("API_SECRET", encoding.strip()), found(scan(f"blob: {text}\n")))

    def test_in_a_json_value_a_file_and_a_stream(self) -> None:
        text = base64.b85encode(b"config=" + SECRET.encode()).decode()
        self.assertEqual(found(scan(json.dumps({"data": text}), "application/json")), {("API_SECRET", "base85")})
        self.assertEqual(found(SCANNER.scan_text(text, deep=True)), {("API_SECRET", "base85")})
        body = RNG.randbytes(300_000) + b"\n" + base64.a85encode(SECRET.encode()) + b"\n" + RNG.randbytes(1000)
        self.assertEqual(found(SCANNER.scan_batch(body, deep=True)), {("API_SECRET", "ascii85")})

    def test_base85_without_the_secret_is_not_a_finding(self) -> None:
        for encode in (base64.b85encode, base64.a85encode):
            with self.subTest(encode.__name__):
                text = encode(RNG.randbytes(4000) + b"a different value entirely, 0123456789").decode()
                self.assertEqual(scan(text), [])


class CharacterCodesTest(unittest.TestCase):
    CODES = list(SECRET.encode())

    def test_decimal_lists(self) -> None:
        cases = {
            "json array": json.dumps(self.CODES),
            "fromCharCode": "String.fromCharCode(" + ",".join(map(str, self.CODES)) + ")",
            "python bytes": "bytes([" + ", ".join(map(str, self.CODES)) + "])",
            "blanks": " ".join(map(str, self.CODES)),
            "lines": "\n".join(map(str, [7, 9] + self.CODES + [0])),
        }
        for label, text in cases.items():
            with self.subTest(label):
                self.assertEqual(found(scan(f"x = {text};\n")), {("API_SECRET", "charcodes")})

    def test_parsed_json_and_hex_lists(self) -> None:
        body = json.dumps({"payload": {"data": [1, 2] + self.CODES}})
        self.assertEqual(found(scan(body, "application/json")), {("API_SECRET", "charcodes")})
        hex_list = "{" + ", ".join(f"0x{b:02x}" for b in self.CODES) + "}"
        self.assertEqual(found(scan(f"static const char k[] = {hex_list};")), {("API_SECRET", "charcodes")})

    def test_span_covers_the_numbers_and_a_stream_finds_it(self) -> None:
        text = ", ".join(map(str, self.CODES))
        findings = scan("k = [" + text + "]")
        self.assertEqual([(f.start, f.end) for f in findings], [(5, 5 + len(text))])
        body = b"x" * 2_000_000 + b"\n[" + text.encode() + b"]\n"
        self.assertEqual(found(SCANNER.scan_batch(body, deep=True)), {("API_SECRET", "charcodes")})

    def test_token_format_in_character_codes(self) -> None:
        token = fakes.github(RNG)
        self.assertIn("github-token", {f.detector for f in scan(json.dumps(list(token.encode())))})

    def test_ordinary_number_lists_are_not_findings(self) -> None:
        cases = [
            json.dumps({"values": [RNG.randrange(1000) for _ in range(500)]}),
            json.dumps(list(b"just an ordinary sentence, nothing secret in it")),
            "\n".join(", ".join(str(RNG.randrange(256)) for _ in range(16)) for _ in range(200)),
            " ".join(f"0x{RNG.randrange(256):02x}" for _ in range(300)),
        ]
        for text in cases:
            with self.subTest(text[:20]):
                self.assertEqual(scan(text), [])
                self.assertEqual(scan(text, "application/json"), [])


class CompatibilityFormsTest(unittest.TestCase):
    def test_fullwidth_secret_in_every_view(self) -> None:
        wide = fullwidth(SECRET)
        self.assertEqual(found(scan(f"note: {wide}\n")), {("API_SECRET", "nfkc")})
        for ensure_ascii in (True, False):
            body = json.dumps({"note": wide}, ensure_ascii=ensure_ascii)
            self.assertEqual(found(scan(body, "application/json")), {("API_SECRET", "nfkc")})
        self.assertEqual(found(SCANNER.scan_text(wide, deep=True)), {("API_SECRET", "nfkc")})

    def test_partly_fullwidth_and_other_compatibility_forms(self) -> None:
        half = len(SECRET) // 2
        bold = "".join(chr(0x1D41A + ord(c) - ord("a")) if "a" <= c <= "z" else c for c in SECRET)
        for label, text in {"half": fullwidth(SECRET[:half]) + SECRET[half:], "math bold": bold}.items():
            with self.subTest(label):
                if text == SECRET:
                    continue
                self.assertEqual(found(scan(f"x {text} y")), {("API_SECRET", "nfkc")})

    def test_span_is_the_fullwidth_text(self) -> None:
        wide = fullwidth(SECRET)
        findings = SCANNER.scan_text("ab " + wide + " cd", deep=True)
        self.assertEqual([(f.start, f.end) for f in findings], [(3, 3 + len(wide))])

    def test_fullwidth_token_format_and_stream(self) -> None:
        token = fakes.github(RNG)
        self.assertIn("github-token", {f.detector for f in scan("t=" + fullwidth(token))})
        body = RNG.randbytes(500_000) + ("\n" + fullwidth(SECRET) + "\n").encode() + RNG.randbytes(999)
        stream, _ = disguises.streamed(body, SCANNER)
        self.assertEqual(found(stream.findings), {("API_SECRET", "nfkc")})

    def test_binary_noise_is_not_taken_for_compatibility_characters(self) -> None:
        # A body's bytes seen as latin-1: lone bytes 0xAA, 0xB2, 0xB3, 0xB9, 0xBA read as the
        # characters ª²³¹º, everywhere in random data. Folding them made the deep scan of a
        # random upload some 400 times slower; they are noise, not a disguise.
        from bot_bottle.sidecar.dlp import compat

        noise = bytes(random.Random(7).randbytes(1 << 20))
        self.assertEqual(compat.fold_compat("x\xb2\xb3\xaa\xba\xb9y" * 20, 64), [])
        self.assertLess(len(compat.fold_compat(noise.decode("latin-1"), 64)), 3)
        self.assertEqual(compat.compat_regions(noise, 64), [])
        # Real UTF-8 compatibility characters in a latin-1 view are still folded.
        view = ("x" + fullwidth(SECRET) + "y").encode().decode("latin-1")
        self.assertEqual(len(compat.fold_compat(view, 64)), 1)

    def test_non_ascii_prose_is_not_a_finding(self) -> None:
        cases = [
            "Café au lait, naïve façade, Ærøskøbing, 1½ cups, x², 3ª edição",
            "日本語のテキスト，ＡＢＣ社のテスト（２０２４年）。中文，标点：“引号”",
            "Ｈｅｌｌｏ ｗｏｒｌｄ, ＦＵＬＬＷＩＤＴＨ text, ①②③, 𝐛𝐨𝐥𝐝 words, ﬁne ligatures",
        ]
        for text in cases:
            with self.subTest(text[:10]):
                self.assertEqual(scan(text * 50), [])
                self.assertEqual(scan(json.dumps({"t": text}, ensure_ascii=False), "application/json"), [])
        self.assertEqual(SCANNER.scan_batch(("\n".join(cases) * 2000).encode(), deep=True), [])


if __name__ == "__main__":
    unittest.main()
