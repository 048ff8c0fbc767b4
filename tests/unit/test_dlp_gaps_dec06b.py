"""Red-team round: more of what a prompt-injected agent with a shell types to get a value out.

- Character and bit dumps with offsets: ``od -c`` (``od -t c``), ``od -b`` and ``xxd -b``. They
  passed every layer; ``dlp.dumps`` reads them back into their bytes now.
- Octal escapes without zero padding (``\\113\\161\\67``: C, Python, ``printf``) and ``echo -e``'s
  ``\\0NNN``: only the three-digit form of a bottle secret was found (by the separator search);
  the unescaped layer reads octal escapes now, token formats included.
- Character codes as calls joined: ``chr(75)+chr(113)``, SQL ``CHAR(75)+CHAR(113)``,
  ``CHR(75)||CHR(113)``, ``CONCAT(CHAR(75), ...)`` (lists such as ``String.fromCharCode(75, 113)``
  were read already): ``dlp.charcodes`` reads them now.
- Base64 of a bottle secret wrapped narrower than 24 columns (``base64 -w 16``): no line was a
  run the decoder reads; the separator search looks for it now.
- Pieces of a bottle secret across requests: the last piece counts from five characters now (a
  25-character secret cut 9/9/7 passed).
"""

from __future__ import annotations

import json
import random
import unittest

from bench.dumps import od_b, od_c, wrapped_b64, xxd_b
from bot_bottle.sidecar.dlp import Scanner
from tests.unit.test_dlp_redteam_dec06 import FILE, GHP, SECRET, TEXT, TOKEN_FILE, URL, ScanCase

JSON_TYPE = (("Content-Type", "application/json"),)
SOURCE = b"def main() -> None:\n    print('hello, world')\n    return None\n" * 20


class _Base(ScanCase):
    def streamed(self, body: str) -> set[str]:
        filler = "".join(f"line {i}: ok\n" for i in range(20_000))
        data = (filler + body + filler).encode()
        return {f.secret_name or f.detector for f in self.scanner.scan_batch(data, deep=True)}


class CharacterDumpTest(_Base):
    def test_od_c_od_b_and_xxd_b_of_a_secret_are_found(self) -> None:
        for name, dump in {"od -c": od_c(FILE), "od -b": od_b(FILE), "xxd -b": xxd_b(FILE)}.items():
            with self.subTest(dump=name):
                self.assertIn("API_TOKEN", self.found(dump))
                self.assertIn("API_TOKEN", self.streamed(dump))

    def test_a_token_format_in_them_is_found(self) -> None:
        for dump in (od_c(TOKEN_FILE), od_b(TOKEN_FILE), xxd_b(TOKEN_FILE)):
            with self.subTest(dump=dump[:40]):
                self.assertIn("github-token", self.found(dump))

    def test_od_c_in_a_json_field_and_with_characters_printed_whole(self) -> None:
        body = json.dumps({"log": "od -c .env:\n" + od_c(FILE)}).encode()
        self.assertIn("API_TOKEN", self.found(body, JSON_TYPE))
        # In a UTF-8 locale ``od -c`` prints "é" in one cell and "**" in the next.
        dump = od_c(b"x=\xc3\xa9 " + SECRET.encode()).replace(" 303 251", "   \u00e9  **")
        self.assertIn("\u00e9  **", dump)
        self.assertIn("API_TOKEN", self.found(dump))
        self.assertIn("API_TOKEN", self.streamed(dump))

    def test_redaction_removes_an_od_c_dump(self) -> None:
        result = self.scanner.redact_request("POST", URL, TEXT, od_c(FILE).encode())
        self.assertFalse(result.unredacted)
        self.assertFalse(self.scanner.scan_request("POST", URL, TEXT, result.body))

    def test_dumps_of_ordinary_data_are_left_alone(self) -> None:
        rng = random.Random(11)
        for data in (rng.randbytes(3000), SOURCE, b"\x89PNG\r\n\x1a\n" + rng.randbytes(500)):
            for dump in (od_c(data), od_b(data), xxd_b(data)):
                with self.subTest(dump=dump[:40]):
                    self.assertEqual(self.found(dump), set())


class OctalEscapeTest(_Base):
    def test_unpadded_and_echo_octal_escapes_of_a_secret(self) -> None:
        forms = {"\\NNN unpadded": "".join(f"\\{b:o}" for b in SECRET.encode()),
                 "echo -e \\0NNN": "".join(f"\\0{b:03o}" for b in SECRET.encode())}
        for name, text in forms.items():
            with self.subTest(form=name):
                self.assertIn("API_TOKEN", self.found(f"printf '{text}' | sh"))
                self.assertIn("API_TOKEN", self.streamed(f"run: printf '{text}'\n"))

    def test_a_token_format_in_octal_escapes(self) -> None:
        for text in ("".join(f"\\{b:03o}" for b in GHP.encode()), "".join(f"\\{b:o}" for b in GHP.encode()),
                     "".join(f"\\0{b:03o}" for b in GHP.encode())):
            with self.subTest(text=text[:16]):
                self.assertIn("github-token", self.found(f"echo -e '{text}'"))

    def test_padded_octal_of_a_secret_is_still_reported_as_spread(self) -> None:
        text = "".join(f"\\{b:03o}" for b in SECRET.encode())
        findings = self.scanner.scan_request("POST", URL, TEXT, f"x {text} y".encode())
        self.assertEqual([(f.secret_name, f.encoding) for f in findings], [("API_TOKEN", "spread+octal")])

    def test_ordinary_escapes_in_code_are_left_alone(self) -> None:
        code = ('printf("\\033[1;31merror\\033[0m: %s\\n", msg);\nchar sep = \'\\0\';\n'
                'puts("\\101\\102\\103 \\60\\61\\62");\nre.sub(r"(a)(b)", r"\\2\\1", s)\n') * 50
        self.assertEqual(self.found(code), set())


class CharacterCallTest(_Base):
    def forms(self, value: str) -> dict[str, str]:
        codes = [ord(c) for c in value]
        return {"python chr()+": "+".join(f"chr({c})" for c in codes),
                "python chr(0x..)": " + ".join(f"chr(0x{c:x})" for c in codes),
                "SQL CHAR()+": "+".join(f"CHAR({c})" for c in codes),
                "SQL CHR()||": " || ".join(f"CHR({c})" for c in codes),
                "SQL CONCAT(CHAR())": "CONCAT(" + ", ".join(f"CHAR({c})" for c in codes) + ")",
                "VB Chr() &": " & ".join(f"Chr({c})" for c in codes)}

    def test_calls_joined_spell_a_secret(self) -> None:
        for name, text in self.forms(SECRET).items():
            with self.subTest(form=name):
                self.assertIn("API_TOKEN", self.found(f"s = {text}\nprint(s)\n"))
                self.assertIn("API_TOKEN", self.streamed(f"s = {text}\n"))

    def test_calls_joined_spell_a_token_format(self) -> None:
        for name, text in self.forms(GHP).items():
            with self.subTest(form=name):
                self.assertIn("github-token", self.found(f"q = \"SELECT {text}\""))

    def test_calls_in_a_json_body(self) -> None:
        body = json.dumps({"code": "+".join(f"chr({ord(c)})" for c in SECRET)}).encode()
        self.assertIn("API_TOKEN", self.found(body, JSON_TYPE))

    def test_ordinary_uses_of_character_codes_are_left_alone(self) -> None:
        text = ("SELECT CONCAT(first_name, CHAR(32), last_name, CHAR(13), CHAR(10)) FROM people;\n"
                "letters = " + "+".join(f"chr({65 + i})" for i in range(26)) + "\n"
                + "values = f(1) + f(2) + f(3) + f(4) + f(5) + f(6) + f(7) + f(8) + f(9)\n") * 20
        self.assertEqual(self.found(text), set())


class NarrowBase64Test(_Base):
    def test_base64_of_a_secret_wrapped_narrow(self) -> None:
        for width in (4, 8, 16, 20):
            with self.subTest(width=width):
                self.assertIn("API_TOKEN", self.found(wrapped_b64(FILE, width)))
                self.assertIn("API_TOKEN", self.streamed(wrapped_b64(FILE, width)))

    def test_narrow_base64_of_ordinary_bytes_is_left_alone(self) -> None:
        rng = random.Random(5)
        for width in (8, 16):
            self.assertEqual(self.found(wrapped_b64(rng.randbytes(2000), width)), set())
            self.assertEqual(self.found(wrapped_b64(SOURCE, width)), set())


class TailPieceAcrossRequestsTest(unittest.TestCase):
    def setUp(self) -> None:
        self.scanner = Scanner(secrets={"API_TOKEN": SECRET})
        self.memory = self.scanner.new_memory()

    def send(self, piece: str) -> list[str]:
        body = f"note: {piece} (end)".encode()
        return [f.encoding or "" for f in self.scanner.scan_request("POST", URL, TEXT, body, memory=self.memory)]

    def test_a_secret_cut_9_9_7_is_refused_at_its_last_piece(self) -> None:
        self.assertEqual(self.send(SECRET[:9]), [])
        self.assertEqual(self.send(SECRET[9:18]), [])
        self.assertEqual(self.send(SECRET[18:]), ["split across requests"])

    def test_a_last_piece_of_five_counts(self) -> None:
        self.assertEqual(self.send(SECRET[:9]), [])
        self.assertEqual(self.send(SECRET[20:]), [])
        self.assertEqual(self.memory.sent("API_TOKEN"), 14)
        self.assertEqual(self.send(SECRET[9:18]), ["split across requests"])

    def test_a_tail_alone_is_remembered_but_not_reported(self) -> None:
        self.assertEqual(self.send(SECRET[-5:]), [])
        self.assertEqual(self.memory.sent("API_TOKEN"), 5)

    def test_short_pieces_elsewhere_still_do_not_count(self) -> None:
        self.assertEqual(self.send(SECRET[:7]), [])
        self.assertEqual(self.send(SECRET[9:16]), [])
        self.assertEqual(self.send(SECRET[-4:]), [])
        self.assertEqual(self.memory.sent("API_TOKEN"), 0)

    def test_the_tail_of_a_short_secret_keeps_the_longer_minimum(self) -> None:
        scanner = Scanner(secrets={"PIN_CODE": "Zq7tKp2WvX9m"})  # 12 characters
        memory = scanner.new_memory()
        scanner.scan_request("POST", URL, TEXT, b"note: 2WvX9m", memory=memory)
        self.assertEqual(memory.sent("PIN_CODE"), 0)


if __name__ == "__main__":
    unittest.main()
