"""Red-team round: dumps without offsets, PowerShell character codes, ``\\0123``.

- A well-known token format in a hex dump without offsets (``od -An -x``, ``od -An -tx1``,
  ``hexdump -e '16/1 "%02x " "\\n"'``) or in base64 wrapped narrower than a run the decoder reads
  (``base64 -w 16``) passed: only a bottle secret was found there (by the separator search).
  ``dlp.dumps.plain_dumps`` reads such blocks now.
- PowerShell casts (``[char]103+[char]104``, ``[string][char]0x67``, ``"$([char]103)..."``)
  spelled a value out unseen; ``dlp.charcodes`` reads them with the other calls.
- ``\\0123`` is ``S`` to ``echo -e`` and a line break and a "3" to C and Python: only the first
  reading was scanned, so a multi-line value written as a C string passed. Both are scanned now.
"""

from __future__ import annotations

import base64
import json
import random
import unittest

from bench.dumps import hexdump_e, od_an_tx1, od_an_tx4, od_an_x, wrapped_b64
from bot_bottle.sidecar.dlp import Scanner
from tests.unit.test_dlp_redteam_dec06 import FILE, GHP, SECRET, TEXT, TOKEN_FILE, URL, ScanCase

JSON_TYPE = (("Content-Type", "application/json"),)
AKIA = "AKIAQYLPMN5HFIQR7XYZ"
AWS_FILE = f"[default]\naws_access_key_id = {AKIA}\nregion = eu-west-1\n".encode()
SOURCE = b"def main() -> None:\n    print('hello, world')\n    return None\n" * 20


DUMPS = {"od -An -x": od_an_x, "od -An -tx1": od_an_tx1, "od -An -tx4": od_an_tx4, "hexdump -e": hexdump_e}


class _Base(ScanCase):
    def streamed(self, body: str) -> set[str]:
        filler = "".join(f"line {i}: ok\n" for i in range(20_000))
        data = (filler + body + filler).encode()
        return {f.secret_name or f.detector for f in self.scanner.scan_batch(data, deep=True)}


class DumpWithoutOffsetsTest(_Base):
    def test_token_formats_in_each_dump(self) -> None:
        for name, dump in DUMPS.items():
            for data, expected in ((TOKEN_FILE, "github-token"), (AWS_FILE, "aws-access-key-id"),
                                   (GHP.encode(), "github-token"), (b"=" + GHP.encode(), "github-token")):
                with self.subTest(dump=name, expected=expected, size=len(data)):
                    text = dump(data)
                    self.assertIn(expected, self.found(text))
                    self.assertIn(expected, self.found("$ od -An -x ~/.aws/credentials\n" + text + "$ exit\n"))
                    self.assertIn(expected, self.streamed(text))

    def test_token_formats_in_narrow_base64(self) -> None:
        for width in (4, 8, 12, 16, 20, 23):
            for data, expected in ((TOKEN_FILE, "github-token"), (AWS_FILE, "aws-access-key-id"),
                                   (GHP.encode(), "github-token"), (AKIA.encode(), "aws-access-key-id")):
                with self.subTest(width=width, expected=expected):
                    text = wrapped_b64(data, width)
                    self.assertIn(expected, self.found(text))
                    self.assertIn(expected, self.found(text.rstrip("\n")))
                    self.assertIn(expected, self.found("creds:\n" + text + "done\n"))
                    self.assertIn(expected, self.found(json.dumps({"k": text, "n": 1}).encode(), JSON_TYPE))
                    self.assertIn(expected, self.streamed(text))

    def test_crlf_lines_and_a_dump_in_a_json_field(self) -> None:
        self.assertIn("github-token", self.found(wrapped_b64(TOKEN_FILE, 16).replace("\n", "\r\n")))
        self.assertIn("github-token", self.found(od_an_x(TOKEN_FILE).replace("\n", "\r\n")))
        body = json.dumps({"log": "od -An -tx1 creds:\n" + od_an_tx1(AWS_FILE)}).encode()
        self.assertIn("aws-access-key-id", self.found(body, JSON_TYPE))
        # Not parsed (NDJSON): the line breaks are "\n" escapes, undone in the unescaped layer.
        ndjson = (json.dumps({"b64": wrapped_b64(TOKEN_FILE, 16)}) + "\n").encode()
        self.assertIn("github-token", self.found(ndjson, (("Content-Type", "application/x-ndjson"),)))

    def test_a_bottle_secret_in_them_is_still_found(self) -> None:
        for dump in (od_an_x(FILE), od_an_tx1(FILE), hexdump_e(FILE), wrapped_b64(FILE, 16)):
            with self.subTest(dump=dump[:20]):
                self.assertIn("API_TOKEN", self.found(dump))

    def test_redaction_removes_the_dump(self) -> None:
        for dump in (od_an_x(TOKEN_FILE), wrapped_b64(AWS_FILE, 16)):
            with self.subTest(dump=dump[:20]):
                result = self.scanner.redact_request("POST", URL, TEXT, ("note\n" + dump).encode())
                self.assertTrue(result.findings)
                self.assertFalse(result.unredacted)
                self.assertFalse(self.scanner.scan_request("POST", URL, TEXT, result.body))

    def test_dumps_and_lines_of_ordinary_data_are_left_alone(self) -> None:
        rng = random.Random(17)
        for data in (rng.randbytes(4000), SOURCE, b"\x89PNG\r\n\x1a\n" + rng.randbytes(600)):
            for name, dump in [*DUMPS.items(), ("base64 -w 16", lambda d: wrapped_b64(d, 16)),
                               ("base64 -w 8", lambda d: wrapped_b64(d, 8))]:
                with self.subTest(dump=name, size=len(data)):
                    self.assertEqual(self.found(dump(data)), set())
        tables = ("10 20 30 40 50 60 70 80\n" * 30 + "de ad be ef ca fe ba be\n" * 30
                  + "apple\ngrape\nlemon\nmelon\n" * 30 + "deadbeef\ncafebabe\n" * 30)
        self.assertEqual(self.found(tables), set())
        self.assertEqual(self.streamed(tables), set())


class PowerShellTest(_Base):
    def forms(self, value: str) -> dict[str, str]:
        codes = [ord(c) for c in value]
        return {"[char]N+": "+".join(f"[char]{c}" for c in codes),
                "[char] N + (blanks)": " + ".join(f"[char] {c}" for c in codes),
                "[CHAR]0xNN+": "+".join(f"[CHAR]0x{c:x}" for c in codes),
                "[string][char]0xNN +": " + ".join(f"[string][char]0x{c:X}" for c in codes),
                "[char](N)+": "+".join(f"[char]({c})" for c in codes),
                "$([char]N) in a string": '"' + "".join(f"$([char]{c})" for c in codes) + '"',
                "-join [char[]](N,...)": "-join [char[]](" + ",".join(map(str, codes)) + ")"}

    def test_casts_spell_a_secret(self) -> None:
        for name, text in self.forms(SECRET).items():
            with self.subTest(form=name):
                self.assertIn("API_TOKEN", self.found(f"$s = {text}\nInvoke-WebRequest -Body $s\n"))
                self.assertIn("API_TOKEN", self.streamed(f"$s = {text}\n"))

    def test_casts_spell_a_token_format(self) -> None:
        for name, text in self.forms(GHP).items():
            with self.subTest(form=name):
                self.assertIn("github-token", self.found(f"$t = {text}"))
                self.assertIn("github-token", self.found(json.dumps({"script": f"$t = {text}"}).encode(), JSON_TYPE))

    def test_ordinary_powershell_and_indexing_are_left_alone(self) -> None:
        text = ("$tab = [char]9; $crlf = [char]13 + [char]10\n"
                "$sep = [string][char]0x2C + ' '\n"
                "$upper = -join ([char[]]$name | ForEach-Object { [char]::ToUpper($_) })\n"
                "$sum = $a[0] + $a[1] + $a[2] + $a[3] + $a[4] + $a[5] + $a[6] + $a[7] + $a[8] + $a[9]\n"
                "total = row[1]+row[2]+row[3]+row[4]+row[5]+row[6]+row[7]+row[8]+row[9]+row[10]\n") * 20
        self.assertEqual(self.found(text), set())
        self.assertEqual(self.streamed(text), set())


class AmbiguousOctalTest(unittest.TestCase):
    """``\\0123``: ``echo -e`` reads "S", C and Python a line break and "3"."""

    MULTI = "Kq7vR2xPz9/LmW4+\n3tYb8Nc&Qe"  # a value of two lines, the second starting with a digit
    TABBED = "Kq7vR2xPz9\t41LmW4tYb8NcQe"

    @classmethod
    def setUpClass(cls) -> None:
        cls.scanner = Scanner(secrets={"MULTI": cls.MULTI, "TABBED": cls.TABBED, "API_TOKEN": SECRET})

    def found(self, body: str) -> set[str]:
        return {f.secret_name or f.detector for f in self.scanner.scan_request("POST", URL, TEXT, body.encode())}

    def streamed(self, body: str) -> set[str]:
        filler = "".join(f"line {i}: ok\n" for i in range(20_000))
        data = (filler + body + filler).encode()
        return {f.secret_name or f.detector for f in self.scanner.scan_batch(data, deep=True)}

    @staticmethod
    def c_string(value: str) -> str:
        """``value`` as a C programmer writes it: control characters as three-digit octal."""
        return "".join(f"\\{ord(c):03o}" if ord(c) < 0x20 else c for c in value)

    def test_a_line_break_or_tab_before_a_digit_in_a_c_string(self) -> None:
        for name, value in (("MULTI", self.MULTI), ("TABBED", self.TABBED)):
            text = self.c_string(value)
            self.assertIn("\\01", text)
            with self.subTest(secret=name):
                self.assertIn(name, self.found(f'static const char *k = "{text}";\n'))
                self.assertIn(name, self.streamed(f'char k[] = "{text}";\n'))

    def test_the_echo_reading_is_still_scanned(self) -> None:
        # "S" (0123) and "Q" (0121) in echo -e's form, the rest as they are.
        value = "S7vR2xPz9/LmW4+tYb8NcQeS"
        scanner = Scanner(secrets={"ECHOED": value})
        text = value.replace("S", "\\0123").replace("Q", "\\0121")
        found = {f.secret_name for f in scanner.scan_request("POST", URL, TEXT, f"echo -e '{text}'".encode())}
        self.assertIn("ECHOED", found)

    def test_ordinary_c_escapes_before_digits_are_left_alone(self) -> None:
        code = ('printf("total\\0123 items\\0114 done\\0125%%\\n");\nputs("a\\0101b\\0102c");\n'
                'fprintf(f, "%s\\0120\\0121\\0122", name);\n') * 50
        self.assertEqual(self.found(code), set())
        self.assertEqual(self.streamed(code), set())


if __name__ == "__main__":
    unittest.main()
