"""Red-team round: hex bytes inside a line, PowerShell's other character calls, ``@( )`` arrays
of mixed separators.

- A token format written as one line of hex bytes passed when the line started inside a line
  ("token: 67 68 70 5f ...", after "=", ",", a quote), was indented by two blanks or more, or had
  tabs between its bytes: only a line at a line's or a value's start, one or two blanks apart,
  was read.
- PowerShell's ``(103 -as [char])``, ``[convert]::ToChar(103)``, ``[System.Convert]::ToChar(...)``,
  ``[char]::ConvertFromUtf32(103)`` and ``[System.Char]103`` passed, joined with "+" or in arrays:
  only ``[char]`` casts were read.
- An ``@( )`` array of casts in parentheses of their own (``([char]103)``), or separated by
  semicolons, passed.
"""

from __future__ import annotations

import json
import random

from bench.dumps import hex_line, hexdump_c, powershell_chars, xxd
from bot_bottle.sidecar.dlp import charcodes
from bot_bottle.sidecar.dlp.charcodes import decode_code_lists
from bot_bottle.sidecar.dlp.dumps import plain_dumps
from tests.unit.test_dlp_gaps_dec06d import AKIA, JSON_TYPE, _Case
from tests.unit.test_dlp_redteam_dec06 import GHP, SECRET, URL

TOKENS = ((GHP, "github-token"), (AKIA, "aws-access-key-id"))


def _mid_line_shapes(value: str) -> dict[str, str]:
    data = value.encode()
    return {
        "key: ": "auth:\n  token: " + hex_line(data) + "\n  user: bot\n",
        "token = ": "[hook]\ntoken = " + hex_line(data, 2) + "\n",
        "after =": "TOKEN=" + hex_line(data),
        "after a double quote": 'x = "' + hex_line(data) + '"\n',
        "after a single quote": "echo '" + hex_line(data) + "' | xxd -r -p\n",
        "after a comma": "id, " + hex_line(data) + "\n",
        "hexdump -C middle after a colon": "bytes: " + hex_line(data, half=True) + "\n",
        "indented by two": "the bytes:\n  " + hex_line(data) + "\n",
        "indented by four": "the bytes:\n\n    " + hex_line(data) + "\n\nthanks\n",
        "indented by a tab": "bytes:\n\t" + hex_line(data) + "\n",
        "tab-separated": "note\n" + hex_line(data, tabs=True) + "\n",
        "tab-separated after a key": "key\t" + hex_line(data, tabs=True) + "\n",
        "upper case after a colon": "value: " + hex_line(data).upper() + "\n",
    }


class HexBytesInsideALineTest(_Case):
    def test_token_formats(self) -> None:
        for value, expected in TOKENS:
            for name, text in _mid_line_shapes(value).items():
                with self.subTest(shape=name, expected=expected):
                    self.assertIn(expected, self.found(text))

    def test_in_json_and_streamed(self) -> None:
        for value, expected in TOKENS:
            text = "token: " + hex_line(value.encode())
            with self.subTest(expected=expected):
                self.assertIn(expected, self.found(json.dumps({"out": text}).encode(), JSON_TYPE))
                self.assertIn(expected, self.streamed(text))
                self.assertIn(expected, self.streamed("  " + hex_line(value.encode(), tabs=True)))

    def test_a_bottle_secret(self) -> None:
        self.assertIn("API_TOKEN", self.found("secret = " + hex_line(SECRET.encode()) + "\n"))

    def test_the_layer_is_placed_on_the_bytes(self) -> None:
        line = hex_line(GHP.encode())
        text = "cfg:\n  token: " + line + "  # hex\n"
        layers = plain_dumps(text, limit=1000)
        self.assertEqual([GHP], [layer.text for layer in layers])
        self.assertEqual(line, text[layers[0].start:layers[0].end])

    def test_a_word_before_the_bytes_is_not_read_as_one(self) -> None:
        # "cafe" and "be" are hex digits too: the line starts after the word.
        line = hex_line(GHP.encode())
        text = "cafe " + line + "\nbe " + line + "\n"
        layers = plain_dumps(text, limit=1000)
        # "be" at a line's start is a byte of that line, as before; "cafe" is a word.
        self.assertEqual({GHP, "\xbe" + GHP}, {layer.text for layer in layers})
        self.assertEqual(line, text[layers[-1].start:layers[-1].end])

    def test_a_line_at_the_start_is_read_once(self) -> None:
        line = hex_line(GHP.encode())
        for text in (line + "\n", "x\n" + line + "\n", "x\x00" + line):
            with self.subTest(text=text[:3]):
                self.assertEqual([GHP], [layer.text for layer in plain_dumps(text, limit=1000)])

    def test_lines_of_dumps_with_offsets_are_left_to_the_dump_reader(self) -> None:
        data = ("token = " + GHP + "\n").encode()
        self.assertEqual([], plain_dumps("dump:\n" + hexdump_c(data), limit=10_000))
        self.assertEqual([], plain_dumps("dump:\n" + xxd(data, 1), limit=10_000))
        self.assertIn("github-token", self.found(hexdump_c(data)))

    def test_a_long_line_without_text_is_read_once(self) -> None:
        # Every few bytes of it start a search of the line: each must not read the rest again.
        rng = random.Random(3)
        noise = bytes(b | 0x80 for b in rng.randbytes(200_000))
        text = "dump: " + hex_line(noise) + " " + hex_line(GHP.encode()) + "\n"
        layers = plain_dumps(text, limit=1_000_000)
        self.assertEqual(1, len(layers))
        self.assertTrue(layers[0].text.endswith(GHP))

    def test_redaction_removes_the_bytes(self) -> None:
        line = hex_line(GHP.encode())
        text = "auth:\n  token: " + line + "\n"
        result = self.scanner.redact_request("POST", URL, (("Content-Type", "text/plain"),), text.encode())
        self.assertNotIn(line[-20:], result.body.decode())
        self.assertIn("auth:", result.body.decode())


class PowerShellCallsTest(_Case):
    SEPARATORS = {
        "+": (" + ",),
        "array": (", ",),
        "one a line": ("\n    ",),
        "one a line, CRLF": ("\r\n  ",),
        "commas and line breaks mixed": (",\n    ", "\n    ", ", "),
        "blank lines between": (",\n\n  ", "\n  "),
        "semicolons": ("; ",),
    }
    NEW_FORMS = ("-as", "ToChar", "System.Convert", "ConvertFromUtf32")

    def _script(self, data: bytes, form: str, separators: tuple[str, ...], hex_codes: bool = False) -> str:
        calls = powershell_chars(data, form, separators, hex_codes=hex_codes)
        if separators == (" + ",):
            return "$t = " + calls + "\n"
        return "$t = -join @(\n    " + calls + "\n)\n"

    def test_token_formats(self) -> None:
        for form in self.NEW_FORMS:
            for name, separators in self.SEPARATORS.items():
                for value, expected in TOKENS:
                    with self.subTest(form=form, separators=name, expected=expected):
                        self.assertIn(expected, self.found(self._script(value.encode(), form, separators)))

    def test_hex_codes_case_and_spelling(self) -> None:
        data = GHP.encode()
        self.assertIn("github-token", self.found(self._script(data, "ToChar", (", ",), hex_codes=True)))
        self.assertIn("github-token", self.found(self._script(data, "-as", (" + ",), hex_codes=True)))
        text = self._script(data, "System.Convert", ("\n  ",))
        text = text.replace("[System.Convert]::ToChar", "[SYSTEM.CONVERT]::tochar")
        self.assertIn("github-token", self.found(text))
        system_char = " + ".join(f"[System.Char]{b}" for b in data)
        self.assertIn("github-token", self.found("$t = " + system_char))
        as_upper = " + ".join(f"({b} -AS [CHAR])" for b in data)
        self.assertIn("github-token", self.found("$t = " + as_upper))

    def test_casts_in_parentheses_and_semicolons_in_an_array(self) -> None:
        data = GHP.encode()
        for name, separators in self.SEPARATORS.items():
            with self.subTest(separators=name):
                self.assertIn("github-token", self.found(self._script(data, "(cast)", separators)))
        self.assertIn("github-token", self.found(self._script(data, "cast", ("; ", "\n  "))))

    def test_a_bottle_secret_in_json_and_streamed(self) -> None:
        for form in self.NEW_FORMS:
            with self.subTest(form=form):
                script = self._script(SECRET.encode(), form, (",\n  ", "\n  "))
                self.assertIn("API_TOKEN", self.found(json.dumps({"script": script}).encode(), JSON_TYPE))
                self.assertIn("API_TOKEN", self.streamed(script))

    def test_the_layer_maps_back_to_the_calls(self) -> None:
        script = "$t = " + powershell_chars(GHP.encode(), "System.Convert") + "; Write-Host $t"
        (layer,) = decode_code_lists(script, limit=1000)
        self.assertEqual(GHP, layer.text)
        start, end = layer.to_parent(0, len(GHP))
        self.assertEqual("(103", script[start:start + 4])  # "g": from the first call's argument
        self.assertTrue(script[:end].endswith(f"({ord(GHP[-1])}"))  # to the last one's
        self.assertEqual("); Write-Host $t", script[end:])

    def test_separators_become_joins_in_place(self) -> None:
        calls = powershell_chars(GHP.encode(), "ToChar", (",\n  ", "\n  ", "; "))
        text = "$x = -join @(\n  " + calls + "\n)\n$y = @(1, 2)\n"
        joined = charcodes.cast_arrays_joined(text)
        assert joined is not None
        self.assertEqual(len(text), len(joined))
        self.assertEqual(len(GHP) - 1, joined.count("+"))
        self.assertTrue(joined.endswith("\n)\n$y = @(1, 2)\n"))

    def test_two_arrays_close_together_are_joined_once(self) -> None:
        # The second array starts a little more than a region's reach after the first one.
        for gap in range(60, 200, 7):
            first = "$a = -join @(" + powershell_chars(GHP.encode(), "ToChar", (",\n  ",)) + ")\n"
            second = "$b = -join @(" + powershell_chars(AKIA.encode(), "cast", ("\n  ",)) + ")\n"
            text = first + "#" * gap + "\n" + second
            with self.subTest(gap=gap):
                joined = charcodes.cast_arrays_joined(text)
                assert joined is not None
                self.assertEqual(len(text), len(joined))
                self.assertEqual(len(GHP) + len(AKIA) - 2, joined.count("+"))
                self.assertEqual([GHP, AKIA], [layer.text for layer in decode_code_lists(joined, limit=1000)])

    def test_redaction_removes_the_calls(self) -> None:
        for form in self.NEW_FORMS:
            with self.subTest(form=form):
                text = self._script(GHP.encode(), form, (",\n    ", "\n    "))
                result = self.scanner.redact_request("POST", URL, (("Content-Type", "text/plain"),), text.encode())
                self.assertEqual([], self.scanner.scan_text(result.body, deep=True))


class LookalikesTest(_Case):
    """Spaced hex digests, MAC addresses, byte tables and ordinary PowerShell: nothing to report."""

    def assert_clean(self, text: str) -> None:
        self.assertEqual(set(), self.found(text))
        self.assertEqual(set(), self.found(json.dumps({"body": text}).encode(), JSON_TYPE))
        self.assertEqual(set(), self.streamed(text))

    def test_digests_as_spaced_hex_in_config_files(self) -> None:
        rng = random.Random(5)
        self.assert_clean(
            "artifact:\n  sha256: " + hex_line(rng.randbytes(32)) + "\n  md5: " + hex_line(rng.randbytes(16), 2)
            + "\n[sums]\nsha1 = " + hex_line(rng.randbytes(20)) + '\ndigest = "' + hex_line(rng.randbytes(32))
            + '"\nkey\t' + hex_line(rng.randbytes(16), tabs=True) + "\n")

    def test_mac_addresses_and_byte_tables(self) -> None:
        table = "".join(f"  {row * 8:02x}:  " + hex_line(bytes((row * 8 + i) * 7 % 256 for i in range(8)), 2) + "\n"
                        for row in range(16))
        ascii_rows = "".join(f"  {c:02x}  " + hex_line(bytes(range(c, c + 8))) + "\n" for c in range(0x20, 0x80, 8))
        self.assert_clean("eth0: ether 00 1a 2b 3c 4d 5e\nmac = 52 54 00 12 34 56, 52 54 00 ab cd ef\n"
                          + table + ascii_rows + "\tde ad be ef ca fe ba be\n")

    def test_prose_and_code_with_short_hex_words(self) -> None:
        self.assert_clean("We added 12 ab cd ef to the list, and 10 20 30 40 50 60 70 80 to the table.\n"
                          "x = [0x10, 0x20]  # 10 20\nvalues: 1 2 3 4 5 6 7 8 9 10 11 12\n")

    def test_ordinary_powershell(self) -> None:
        self.assert_clean(
            "$hello = -join @(" + powershell_chars(b"Hello, World!", "ToChar", (", ",)) + ")\n"
            "$path = " + powershell_chars(b"C:\\Temp\\build.log", "-as") + "\n"
            "$smile = [char]::ConvertFromUtf32(0x1F600)\n$tab = [System.Convert]::ToChar(9)\n"
            "$line = -join @(\n  " + powershell_chars(b"Build finished", "System.Convert", (",\n  ", "\n  "))
            + "\n)\n$upper = -join ([char[]]$name | ForEach-Object { [char]::ToUpper($_) })\n"
            "$n = [convert]::ToInt32('ff', 16); $c = (65 -as [char])\n")
