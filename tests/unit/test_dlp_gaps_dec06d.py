"""Red-team round: one line of hex bytes, ``od -An -c``/``-b``, PowerShell cast arrays, base64
wrapped at 24 to 59 columns.

- A token format written as one line of hex bytes with blanks between them ("67 68 70 5f ...",
  one or two blanks, ``hexdump -C``'s two-blank middle column) passed: only blocks of two lines
  or more were read; so did ``hexdump -C``'s hex columns with the offsets cut away (two blanks
  in the middle of each line). ``xxd -g 8`` (eight-byte groups) passed even for a bottle secret.
- ``od -An -c`` and ``od -An -b`` (character and octal cells without offsets) of a token format
  passed; with offsets they were read.
- PowerShell casts in an array, ``-join ([char]103, [char]104, ...)`` or one a line inside
  ``@( )``, passed: only casts joined by "+" were read.
- Base64 wrapped at 24 to 36 columns was not decoded (the probes of a run's group leads crossed a
  line break), nor a line of 24 to 59 characters followed by a short last line, nor a last line
  of one character and "==" after lines narrower than 24.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import unittest

from bench.dumps import (
    hex_line,
    hexdump_c_cut,
    od_an_b,
    od_an_c,
    od_an_tx1,
    od_b,
    od_c,
    powershell_join,
    wrapped_b64,
    xxd,
)
from bot_bottle.sidecar.dlp.dumps import plain_dumps
from bot_bottle.sidecar.dlp.charcodes import cast_arrays_joined
from tests.unit.test_dlp_redteam_dec06 import FILE, GHP, SECRET, TOKEN_FILE, URL, ScanCase

JSON_TYPE = (("Content-Type", "application/json"),)
AKIA = "AKIAQYLPMN5HFIQR7XYZ"
AWS_FILE = f"[default]\naws_access_key_id = {AKIA}\nregion = eu-west-1\n".encode()
TOKENS = ((GHP.encode(), "github-token"), (AKIA.encode(), "aws-access-key-id"),
          (TOKEN_FILE, "github-token"), (AWS_FILE, "aws-access-key-id"))
SOURCE = (b"import os\n\n\ndef main() -> None:\n    path = os.path.join('a', 'b')\n"
          b"    print(f'reading {path}')\n    return None\n")
# The writers that print what ``od`` prints for these options (the same bytes), for a system
# without ``od``.
_OD_WRITERS = {("-An", "-c"): od_an_c, ("-An", "-tc"): od_an_c, ("-An", "-b"): od_an_b, ("-An", "-to1"): od_an_b,
               ("-c",): od_c, ("-b",): od_b, ("-An", "-tx1"): od_an_tx1}


def od(args: tuple[str, ...], data: bytes) -> str:
    """What ``od args`` prints for ``data``: the real tool's output where it is installed."""
    if shutil.which("od") is None:
        return _OD_WRITERS[args](data)
    return subprocess.run(["od", *args], input=data, capture_output=True, check=True,
                          env={"LC_ALL": "C"}).stdout.decode()


class _Case(ScanCase):
    def streamed(self, body: str) -> set[str]:
        filler = "".join(f"line {i}: ok\n" for i in range(20_000))
        data = (filler + body + "\n" + filler).encode()
        return {f.secret_name or f.detector for f in self.scanner.scan_batch(data, deep=True)}

    def assert_found_everywhere(self, text: str, expected: str) -> None:
        self.assertIn(expected, self.found(text))
        self.assertIn(expected, self.found("$ xxd -p token | tr '\\n' ' '\n" + text + "\n$ exit\n"))
        self.assertIn(expected, self.found(json.dumps({"output": text, "n": 1}).encode(), JSON_TYPE))
        self.assertIn(expected, self.streamed(text))


class HexLineTest(_Case):
    def test_token_formats_on_one_line(self) -> None:
        for data, expected in TOKENS[:2]:
            for name, text in (("one blank", hex_line(data)), ("two blanks", hex_line(data, 2)),
                               ("hexdump -C middle", hex_line(data, half=True)),
                               ("upper case", hex_line(data).upper())):
                with self.subTest(shape=name, expected=expected):
                    self.assert_found_everywhere(text, expected)

    def test_hexdump_c_columns_cut_from_their_offsets(self) -> None:
        for data, expected in TOKENS:
            with self.subTest(expected=expected, size=len(data)):
                self.assert_found_everywhere(hexdump_c_cut(data), expected)
        self.assertIn("API_TOKEN", self.found(hexdump_c_cut(FILE)))

    def test_a_line_after_text_on_its_own_line(self) -> None:
        self.assertIn("github-token", self.found("token bytes:\n " + hex_line(GHP.encode()) + "\ndone\n"))

    def test_xxd_eight_byte_groups(self) -> None:
        for data, expected in TOKENS + ((FILE, "API_TOKEN"),):
            with self.subTest(expected=expected, size=len(data)):
                self.assertIn(expected, self.found(xxd(data, 8)))

    def test_a_bottle_secret_still_found(self) -> None:
        self.assertIn("API_TOKEN", self.found(hex_line(SECRET.encode(), 2)))

    def test_redaction_removes_the_line(self) -> None:
        text = "note\n" + hex_line(GHP.encode()) + "\n"
        result = self.scanner.redact_request("POST", URL, (("Content-Type", "text/plain"),), text.encode())
        self.assertNotIn(hex_line(GHP.encode())[-20:], result.body.decode())

    def test_the_layer_is_placed_on_the_line(self) -> None:
        text = "x\n" + hex_line(GHP.encode(), 2) + "\n"
        layers = plain_dumps(text, limit=1000)
        self.assertEqual([GHP], [layer.text for layer in layers])
        self.assertEqual(hex_line(GHP.encode(), 2), text[layers[0].start:layers[0].end])

    def test_a_dump_at_a_value_start_is_read_once(self) -> None:
        block = "".join(" ".join(f"{b:02x}" for b in TOKEN_FILE[at:at + 16]) + "\n"
                        for at in range(0, len(TOKEN_FILE), 16))
        layers = plain_dumps(block, limit=10_000)
        self.assertEqual([TOKEN_FILE.decode()], [layer.text for layer in layers])


class CharacterCellsWithoutOffsetsTest(_Case):
    def test_token_formats(self) -> None:
        for dump in (od_an_c, od_an_b):
            for data, expected in TOKENS:
                with self.subTest(dump=dump.__name__, expected=expected, size=len(data)):
                    self.assert_found_everywhere(dump(data), expected)

    def test_real_od_output(self) -> None:
        for args in (("-An", "-c"), ("-An", "-b"), ("-An", "-tc"), ("-An", "-to1")):
            with self.subTest(args=args):
                self.assertEqual(_OD_WRITERS[args](AWS_FILE), od(args, AWS_FILE))
                self.assertIn("aws-access-key-id", self.found(od(args, AWS_FILE)))

    def test_a_bottle_secret_still_found(self) -> None:
        for dump in (od_an_c, od_an_b):
            with self.subTest(dump=dump.__name__):
                self.assertIn("API_TOKEN", self.found(dump(FILE)))

    def test_redaction_removes_the_dump(self) -> None:
        text = "note\n" + od_an_c(TOKEN_FILE)
        result = self.scanner.redact_request("POST", URL, (("Content-Type", "text/plain"),), text.encode())
        self.assertEqual([], self.scanner.scan_text(result.body, deep=True))


class PowerShellCastArrayTest(_Case):
    SHAPES = {
        "-join (casts)": lambda data: powershell_join(data),
        "hex codes": lambda data: powershell_join(data, hex_codes=True),
        "(casts) -join ''": lambda data: "(" + ",".join(f"[char]{b}" for b in data) + ") -join ''",
        "@(casts), parenthesized codes": lambda data: "@(" + ", ".join(f"[CHAR]({b})" for b in data) + ") -join ''",
        "one a line": lambda data: "$t = -join @(\n" + ",\n".join(f"    [char]{b}" for b in data) + "\n)",
        "one a line, no commas": lambda data: "$t = -join @(\n" + "\r\n".join(f"  [char]{b}" for b in data) + "\n)",
    }

    def test_token_formats_and_a_secret(self) -> None:
        for name, shape in self.SHAPES.items():
            for data, expected in TOKENS[:2] + ((SECRET.encode(), "API_TOKEN"),):
                with self.subTest(shape=name, expected=expected):
                    self.assert_found_everywhere(shape(data), expected)

    def test_commas_become_joins_in_place(self) -> None:
        text = "$x = " + powershell_join(GHP.encode()) + "; $y = @(1, 2)"
        joined = cast_arrays_joined(text)
        assert joined is not None
        self.assertEqual(len(text), len(joined))
        self.assertEqual(len(GHP) - 1, joined.count("+"))
        self.assertTrue(joined.endswith("; $y = @(1, 2)"))

    def test_short_arrays_and_plain_brackets_are_left_alone(self) -> None:
        self.assertIsNone(cast_arrays_joined("-join ([char]72, [char]105)"))
        self.assertIsNone(cast_arrays_joined("rows = [[1, 2], [3, 4]]\nx = a[0], b[1]\n" * 5))

    def test_redaction_removes_the_array(self) -> None:
        text = "$t = " + powershell_join(GHP.encode()) + "\n"
        result = self.scanner.redact_request("POST", URL, (("Content-Type", "text/plain"),), text.encode())
        self.assertEqual([], self.scanner.scan_text(result.body, deep=True))


class WrappedBase64Test(_Case):
    def test_widths_24_to_59(self) -> None:
        for width in range(24, 60):
            for data, expected in TOKENS:
                with self.subTest(width=width, expected=expected, size=len(data)):
                    self.assertIn(expected, self.found(wrapped_b64(data, width)))
                    self.assertIn(expected, self.found("creds:\n" + wrapped_b64(data, width) + "done\n"))

    def test_a_last_line_of_one_character(self) -> None:
        # 23 columns: "...Va\nQ==" (the token's last byte is in the last line alone).
        data = b"tok = tok = " + GHP.encode()
        self.assertTrue(wrapped_b64(data, 23).endswith("\nQ==\n"))
        self.assertIn("github-token", self.found(wrapped_b64(data, 23)))
        self.assertIn("aws-access-key-id", self.found(wrapped_b64(AKIA.encode(), 13)))
        self.assertIn("aws-access-key-id", self.streamed(wrapped_b64(AKIA.encode(), 13)))

    def test_streamed(self) -> None:
        for width in (24, 32, 40, 56):
            with self.subTest(width=width):
                self.assertIn("github-token", self.streamed(wrapped_b64(TOKEN_FILE, width)))


class LookalikesTest(_Case):
    """Ordinary dumps, hex lines and PowerShell text: nothing to report."""

    def assert_clean(self, text: str) -> None:
        self.assertEqual(set(), self.found(text))
        self.assertEqual(set(), self.streamed(text))

    def test_real_od_output_of_source(self) -> None:
        for args in (("-An", "-c"), ("-An", "-b"), ("-c",), ("-b",), ("-An", "-tx1")):
            with self.subTest(args=args):
                self.assert_clean(od(args, SOURCE))

    def test_hexdump_c_columns_of_ordinary_bytes(self) -> None:
        self.assert_clean(hexdump_c_cut(SOURCE))
        self.assert_clean(hexdump_c_cut(bytes(range(256))))

    def test_hex_lines_of_ordinary_bytes(self) -> None:
        digest = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        self.assert_clean(hex_line(digest))
        self.assert_clean(hex_line(b"Hello, world! This is fine.", 2))
        self.assert_clean("10 20 30 40 50 60 70 80 90 99\n11 22 33 44 55 66 77 88 99 00\n")
        self.assert_clean("ab cd ef 01 23 45 67 89 is the pattern\n")

    def test_powershell_with_char_casts_for_ordinary_text(self) -> None:
        script = ("$greeting = -join ([char]72, [char]101, [char]108, [char]108, [char]111, [char]44,"
                  " [char]32, [char]87, [char]111, [char]114, [char]108, [char]100)\n"
                  "$sep = [char]0x2C, [char]0x20\nWrite-Host $greeting\n"
                  "$chars = [char[]]('a', 'b', 'c')\n$tab = [char]9\n")
        self.assert_clean(script)
        self.assert_clean(powershell_join(b"Get-ChildItem -Recurse | Sort-Object Length"))

    def test_wrapped_base64_of_ordinary_text(self) -> None:
        for width in (13, 23, 24, 40, 56):
            with self.subTest(width=width):
                self.assert_clean(wrapped_b64(SOURCE, width))

    def test_source_lines_ending_in_long_identifiers(self) -> None:
        text = ("    from package.module import some_really_long_identifier_name\nfoo\n"
                "VERY_LONG_CONSTANT_NAME_FOR_TESTS\nabc\n")
        self.assert_clean(text)


if __name__ == "__main__":
    unittest.main()
