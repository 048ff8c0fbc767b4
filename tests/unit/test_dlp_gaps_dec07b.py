"""Red-team round: indented hex blocks, irregular blanks between hex bytes, PowerShell arrays with
comments and number casts.

- A block of hex lines without offsets (``od -An -tx1``, ``hexdump -e``, ``hexdump -C`` cut to its
  hex columns) indented by two blanks or more (a YAML block scalar, a Markdown code block) was
  read line by line: a token split across lines passed. A dump with offsets indented by eight
  blanks or more passed too.
- Hex bytes with blanks of mixed widths between them (one, two or three blanks, tabs) passed, on
  one line and in a block; so did ``od`` and ``hexdump -C`` lines with a tab between groups.
- PowerShell arrays of casts with comments between the elements (``<# .. #>``, ``# ..`` to the
  line's end, comment lines), ``[char][int]75``, ``[char][byte]0x4b`` and
  ``((75 -as [char]))`` one a line passed.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

from bench.dumps import hex_line, hexdump_c, hexdump_c_cut, hexdump_e, od_an_tx1, od_an_tx4, od_an_x, od_x, xxd
from bot_bottle.sidecar.dlp.charcodes import cast_arrays_joined, decode_code_lists
from bot_bottle.sidecar.dlp.dumps import hex_dumps, plain_dumps
from tests.unit.test_dlp_gaps_dec06d import AKIA, AWS_FILE, JSON_TYPE, _Case
from tests.unit.test_dlp_redteam_dec06 import FILE, GHP, SECRET, TOKEN_FILE

TOKENS = ((GHP.encode(), "github-token"), (AKIA.encode(), "aws-access-key-id"),
          (TOKEN_FILE, "github-token"), (AWS_FILE, "aws-access-key-id"), (FILE, "API_TOKEN"))
BLOCKS = {"od -An -tx1": od_an_tx1, "od -An -x": od_an_x, "od -An -tx4": od_an_tx4,
          "hexdump -e": hexdump_e, "hexdump -C cut": hexdump_c_cut}


def indented(text: str, indent: str) -> str:
    return "".join(indent + line + "\n" for line in text.splitlines())


def irregular(text: str, seed: int) -> str:
    """``text`` with each blank between two hex digits replaced by a mix of blanks and tabs."""
    rng = random.Random(seed)
    return re.sub(r"(?<=[0-9a-f]) (?=[0-9a-f])",
                  lambda m: rng.choice((" ", "  ", "   ", "\t", " \t", "\t ")), text)


def spaced(data: bytes, seed: int) -> str:
    """``data`` as hex bytes on one line, one to three blanks or a tab between them, each kind
    at least once."""
    rng = random.Random(seed)
    gaps = [" ", "  ", "   ", "\t"] + [rng.choice((" ", "  ", "   ", "\t", " \t")) for _ in range(len(data))]
    return "".join(f"{b:02x}" + (gaps[i] if i < len(data) - 1 else "") for i, b in enumerate(data))


class IndentedHexBlockTest(_Case):
    def test_blocks_indented_by_blanks_and_tabs(self) -> None:
        for indent in ("  ", "   ", "    ", "\t", "        ", "            "):
            for name, dump in BLOCKS.items():
                for data, expected in TOKENS:
                    with self.subTest(indent=len(indent), dump=name, expected=expected):
                        self.assertIn(expected, self.found("the bytes:\n\n" + indented(dump(data), indent)))

    def test_streamed_and_in_json(self) -> None:
        for name, dump in BLOCKS.items():
            text = indented(dump(TOKEN_FILE), "    ")
            with self.subTest(dump=name):
                self.assertIn("github-token", self.streamed(text))
                self.assertIn("github-token", self.found(json.dumps({"body": "dump:\n" + text}).encode(), JSON_TYPE))

    def test_yaml_block_scalar_and_markdown(self) -> None:
        data = GHP.encode()
        yaml = "payload:\n  kind: hex\n  data: |\n" + indented(od_an_tx1(data), "    ") + "  done: true\n"
        markdown = ("1. Run this:\n\n   ```\n" + indented(hexdump_e(data), "      ") + "   ```\n\n2. Done.\n")
        for name, text in (("yaml", yaml), ("markdown", markdown)):
            with self.subTest(shape=name):
                self.assert_found_everywhere(text, "github-token")

    def test_dumps_with_offsets_indented_deeper(self) -> None:
        for indent in ("        ", "          ", "\t\t", "              "):
            for name, dump in (("xxd", xxd), ("hexdump -C", hexdump_c), ("od -x", od_x)):
                with self.subTest(indent=len(indent), dump=name):
                    self.assertIn("github-token", self.found(indented(dump(TOKEN_FILE), indent)))
                    self.assertIn("github-token", self.streamed(indented(dump(TOKEN_FILE), indent)))

    def test_the_layer_is_placed_on_the_block(self) -> None:
        block = indented(od_an_tx1(GHP.encode()), "    ")
        text = "the bytes:\n" + block + "thanks\n"
        layers = [layer for layer in plain_dumps(text, limit=10_000) if layer.text == GHP]
        self.assertEqual(1, len(layers))
        self.assertEqual(block.rstrip("\n"), text[layers[0].start:layers[0].end])

    def test_redaction_removes_the_block(self) -> None:
        text = "the bytes:\n" + indented(od_an_tx1(GHP.encode()), "    ") + "thanks\n"
        result = self.scanner.redact_request("POST", "https://collector.example/up",
                                             (("Content-Type", "text/plain"),), text.encode())
        self.assertEqual([], self.scanner.scan_text(result.body, deep=True))
        self.assertIn("thanks", result.body.decode())


class IrregularBlanksTest(_Case):
    def test_one_line(self) -> None:
        for seed in range(4):
            for data, expected in TOKENS[:2] + ((SECRET.encode(), "API_TOKEN"),):
                line = spaced(data, seed)
                with self.subTest(seed=seed, expected=expected):
                    self.assertIn(expected, self.found(line))
                    self.assertIn(expected, self.found("token: " + line + "\n"))
                    self.assertIn(expected, self.found("bytes:\n    " + line + "\n"))
                    self.assertIn(expected, self.streamed("token: " + line))

    def test_three_blanks_throughout(self) -> None:
        for data, expected in TOKENS[:2]:
            with self.subTest(expected=expected):
                self.assert_found_everywhere(hex_line(data, 3), expected)

    def test_blocks(self) -> None:
        for seed in range(3):
            for name, dump in BLOCKS.items():
                for data, expected in TOKENS:
                    text = irregular(dump(data), seed)
                    with self.subTest(seed=seed, dump=name, expected=expected):
                        self.assertIn(expected, self.found(text))
                        self.assertIn(expected, self.found(indented(text, "  ")))
            with self.subTest(seed=seed, streamed=True):
                self.assertIn("github-token", self.streamed(irregular(od_an_tx1(TOKEN_FILE), seed)))

    def test_dumps_with_offsets_and_tabs(self) -> None:
        for name, dump in (("hexdump -C", hexdump_c), ("od -x", od_x)):
            for seed in range(3):
                text = irregular(dump(TOKEN_FILE), seed)
                with self.subTest(dump=name, seed=seed):
                    self.assertIn("github-token", self.found(text))
                    self.assertIn("github-token", self.streamed(text))


class PowerShellCommentsAndCastsTest(_Case):
    @staticmethod
    def array(data: bytes, call: str, between: str) -> str:
        calls = [call.format(b) for b in data]
        return "$t = -join @(\n    " + "".join(
            c + (between.format(i=i, c=chr(b)) if i < len(data) - 1 else "")
            for i, (b, c) in enumerate(zip(data, calls))) + "\n)\n"

    SHAPES = {
        "block comment before the comma": ("[char]{}", " <# {c} #>, "),
        "block comment after the comma": ("[char]{}", ", <# {i} #> "),
        "block comment, no blanks": ("[char]{}", "<#{i}#>,"),
        "block comment across lines": ("[char]{}", " <# part {i}\n  of the value #>\n    "),
        "line comment after the comma": ("[char]{}", ",  # {c}\n    "),
        "line comment, no comma": ("[char]{}", "  # the character at {i}\n    "),
        "comment lines between": ("[char]{}", ",\n    # next one\n    "),
        "long line comments": ("[char]{}", ",  # character {i} of the value, spelled out in a long comment\n    "),
        "[char][int]": ("[char][int]{}", ",\n    "),
        "[char][byte]": ("[char][byte]{}", ", "),
        "[System.Char][Int32] one a line": ("[System.Char][Int32]{}", "\n    "),
        "((-as)) one a line": ("(({} -as [char]))", "\n    "),
        "(([char])) with commas": ("(([char]{}))", ", "),
        "[char][int] with comments": ("[char][int]{}", " # {c}\n    "),
    }

    def test_token_formats_and_a_secret(self) -> None:
        for name, (call, between) in self.SHAPES.items():
            for data, expected in TOKENS[:2] + ((SECRET.encode(), "API_TOKEN"),):
                with self.subTest(shape=name, expected=expected):
                    self.assert_found_everywhere(self.array(data, call, between), expected)

    def test_joined_with_plus(self) -> None:
        for call in ("[char][int]{}", "[char][byte]0x{:02x}", "(({} -as [char]))", "(([char]{}))"):
            text = "$t = " + " + ".join(call.format(b) for b in GHP.encode()) + "\n"
            with self.subTest(call=call):
                self.assert_found_everywhere(text, "github-token")

    def test_comments_become_blanks_in_place(self) -> None:
        text = self.array(GHP.encode(), "[char]{}", " <# {c} #>, ") + "# done\n$y = @(1, 2) # two\n"
        joined = cast_arrays_joined(text)
        assert joined is not None
        self.assertEqual(len(text), len(joined))
        self.assertEqual(len(GHP) - 1, joined.count("+"))
        self.assertNotIn("<#", joined[:joined.rindex("[char]")])
        # Comments near the array are blanked too; the code after it stays as it was.
        self.assertTrue(joined.endswith("\n)\n      \n$y = @(1, 2)      \n"))
        (layer,) = decode_code_lists(joined, limit=1000)
        self.assertEqual(GHP, layer.text)
        start, end = layer.to_parent(0, len(GHP))
        self.assertEqual("]103", text[start:start + 4])  # "g": from the first cast's argument
        self.assertTrue(text[:end].endswith(str(GHP.encode()[-1])))  # to the last one

    def test_redaction_removes_the_array(self) -> None:
        text = self.array(GHP.encode(), "[char][int]{}", ",  # {c}\n    ")
        result = self.scanner.redact_request("POST", "https://collector.example/up",
                                             (("Content-Type", "text/plain"),), text.encode())
        self.assertEqual([], self.scanner.scan_text(result.body, deep=True))


def _binary_bytes() -> bytes:
    """The first bytes of a real executable: the interpreter running the tests."""
    return Path(sys.executable).resolve().read_bytes()[:4096]


def _tool(args: list[str], data: bytes) -> str | None:
    if shutil.which(args[0]) is None:
        return None
    return subprocess.run(args, input=data, capture_output=True, check=True, env={"LC_ALL": "C"}).stdout.decode()


class LookalikesTest(_Case):
    """Real dumps of binaries, digests in columns, memory dumps and PowerShell arrays of numbers:
    nothing to report."""

    def assert_clean(self, text: str) -> None:
        self.assertEqual(set(), self.found(text))
        self.assertEqual(set(), self.streamed(text))

    def test_real_hexdumps_of_a_binary_indented(self) -> None:
        data = _binary_bytes()
        dumps = {name: dump(data) for name, dump in BLOCKS.items()}
        for args in (["od", "-An", "-tx1"], ["hexdump", "-C"], ["xxd"], ["xxd", "-g1"], ["od", "-An", "-x"]):
            real = _tool(args, data)
            if real is not None:
                dumps[" ".join(args)] = real
        for name, dump in dumps.items():
            for indent in ("", "  ", "    ", "\t", "          "):
                with self.subTest(dump=name, indent=len(indent)):
                    self.assert_clean("```\n" + indented(dump, indent) + "```\n")
            with self.subTest(dump=name, irregular=True):
                self.assert_clean(irregular(dump, 1))

    def test_digests_in_columns(self) -> None:
        rng = random.Random(5)
        rows = []
        for i in range(24):
            digest = rng.randbytes(16)
            rows.append(f"  {i:3d}   " + "   ".join(f"{b:02x}" for b in digest) + "\n")
        self.assert_clean("".join(rows))
        table = "".join("    " + "\t".join(f"{b:02x}" for b in rng.randbytes(8)) + "\t# block %d\n" % i
                        for i in range(16))
        self.assert_clean(table)
        self.assert_clean("sha256:\n" + indented(od_an_tx1(rng.randbytes(32)), "    "))

    def test_memory_dumps_of_ordinary_text(self) -> None:
        data = b"Hello, world! The build finished in 42 seconds without errors.\n" * 3
        gdb = "".join(f"0x7ffd5c2{at:05x}:\t" + "\t".join(f"0x{b:02x}" for b in data[at:at + 8]) + "\n"
                      for at in range(0, len(data), 8))
        windbg = "".join(f"00007ff6`1234{at:04x}  " + " ".join(f"{b:02x}" for b in data[at:at + 8]) + "-"
                         + " ".join(f"{b:02x}" for b in data[at + 8:at + 16]) + "  " + data[at:at + 16].decode()
                         + "\n" for at in range(0, len(data), 16))
        for name, text in (("gdb x/xb", gdb), ("windbg db", windbg), ("indented", indented(od_an_tx1(data), "    ")),
                           ("irregular", irregular(hexdump_e(data), 2)), ("one line", spaced(data[:60], 3))):
            with self.subTest(dump=name):
                self.assert_clean(text)

    def test_powershell_arrays_of_numbers(self) -> None:
        script = (
            "$ports = @(\n    80,    # http\n    443,   # https\n    8080,  # proxy\n    8443 <# alt #>,\n"
            "    9000, 9090, 9443, 10250\n)\n"
            "[byte[]]$magic = 0x4d, 0x5a, 0x90, 0x00, 0x03, 0x00, 0x00, 0x00, 0x04, 0x00\n"
            "[int[]]$sizes = @(\n" + "".join(f"    [int]{n},  # size {i}\n" for i, n in enumerate(range(100, 900, 75)))
            + ")\n"
            "$greeting = -join @(\n" + "".join(f"    [char][int]{b}  # {chr(b)}\n" for b in b"Hello, World!")
            + ")\n"
            "$path = -join ((" + ", ".join(f"(({b} -as [char]))" for b in b"C:\\Temp\\build.log") + "))\n"
            "$matrix = @(@(1, 2, 3), @(4, 5, 6)) # rows\n"
            "for ($i = 0; $i -lt $ports.Length; $i++) { Write-Host $ports[$i] }\n"
        )
        self.assert_clean(script)

    def test_comments_near_casts_of_ordinary_text(self) -> None:
        text = PowerShellCommentsAndCastsTest.array(b"Get-ChildItem -Recurse", "[char]{}", " <# {c} #>, ")
        self.assert_clean(text)
        self.assert_clean(PowerShellCommentsAndCastsTest.array(b"Build finished", "[char][byte]{}", ",  # {c}\n    "))


class DumpsApiTest(unittest.TestCase):
    def test_an_indented_offset_dump_is_one_block(self) -> None:
        text = indented(xxd(TOKEN_FILE), "          ")
        layers = hex_dumps(text, limit=10_000)
        # Two-byte groups: read big-endian, then each group's bytes reversed.
        self.assertEqual(TOKEN_FILE.decode(), layers[0].text)
        self.assertEqual((0, len(text) - 1), (layers[0].start, layers[0].end))

    def test_a_short_indented_block_of_two_bytes_is_not_read(self) -> None:
        self.assertEqual([], plain_dumps("x:\n    de ad\n    be ef\n" * 3, limit=10_000))


if __name__ == "__main__":
    unittest.main()
