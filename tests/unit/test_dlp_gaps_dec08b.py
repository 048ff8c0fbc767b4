"""Red-team round: dumps whose blanks were re-aligned, and indented character dumps.

- ``xxd`` lines with two or three blanks or a tab between their groups (re-indented, aligned in
  columns) were read only up to the first wider gap: a token cut at a line's end passed.
- ``od -An -c`` and ``od -An -b`` (character and octal cells without offsets) indented as a
  Markdown code block or a YAML block scalar has them passed.
- Hex bytes four blanks or more apart (a dump aligned in wide columns), on one line, in a block
  without offsets and in a dump with offsets, passed.
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

from bench.dumps import hexdump_c, od_an_b, od_an_c, od_an_tx1, od_an_x, xxd
from bot_bottle.sidecar.dlp.dumps import hex_dumps, plain_dumps
from tests.unit.test_dlp_gaps_dec06d import AKIA, AWS_FILE, JSON_TYPE, _Case
from tests.unit.test_dlp_redteam_dec06 import FILE, GHP, SECRET, TOKEN_FILE

TOKENS = ((GHP.encode(), "github-token"), (AKIA.encode(), "aws-access-key-id"),
          (TOKEN_FILE, "github-token"), (AWS_FILE, "aws-access-key-id"), (FILE, "API_TOKEN"))


def indented(text: str, indent: str) -> str:
    return "".join(indent + line + "\n" for line in text.splitlines())


def tool(args: list[str], data: bytes) -> str | None:
    """What the real tool prints for ``data``, where it is installed."""
    if shutil.which(args[0]) is None:
        return None
    return subprocess.run(args, input=data, capture_output=True, check=True, env={"LC_ALL": "C"}).stdout.decode()


def xxd_gaps(data: bytes, gaps: tuple[str, ...], seed: int = 0, group: int = 2) -> str:
    """``xxd -g group`` with each blank between two groups replaced by one of ``gaps``."""
    rng = random.Random(seed)
    out = []
    for line in xxd(data, group).splitlines():
        offset, rest = line.split(": ", 1)
        width = 16 * 2 + 16 // group - 1
        hexes, shown = rest[:width].rstrip(), rest[width + 2:]
        out.append(offset + ": " + re.sub(" ", lambda m: rng.choice(gaps), hexes) + "  " + shown)
    return "\n".join(out) + "\n"


def wide(data: bytes, blanks: int, *, offsets: bool = False, indent: str = "") -> str:
    """``data`` as hex bytes sixteen a line, ``blanks`` blanks between them (a dump aligned in
    wide columns); ``offsets``: each line after its offset, as ``od -Ax -tx1`` prints it."""
    lines = []
    for at in range(0, len(data), 16):
        row = (" " * blanks).join(f"{b:02x}" for b in data[at:at + 16])
        lines.append(indent + (f"{at:07x}" + " " * blanks if offsets else "") + row)
    if offsets:
        lines.append(indent + f"{len(data):07x}")
    return "\n".join(lines) + "\n"


def _binary_bytes() -> bytes:
    """The first bytes of a real executable: the interpreter running the tests."""
    return Path(sys.executable).resolve().read_bytes()[:2048]


ORDINARY = (b"Hello, world! The build finished in 42 seconds without errors.\n"
            b"def add(a, b):\n    return a + b\n\nbeef cafe dead face 1234 5678 abcd ef01\n") * 2


class XxdIrregularBlanksTest(_Case):
    GAPS = {"two blanks": ("  ",), "three blanks": ("   ",), "a tab": ("\t",), "mixed": (" ", "  ", "   ", "\t")}

    def test_token_formats_and_a_secret(self) -> None:
        for name, gaps in self.GAPS.items():
            for data, expected in TOKENS:
                for group in (2, 4):
                    text = xxd_gaps(data, gaps, 1, group)
                    with self.subTest(gaps=name, group=group, expected=expected):
                        self.assertIn(expected, self.found(text))
                        self.assertIn(expected, self.streamed(text))

    def test_indented_and_in_json(self) -> None:
        text = xxd_gaps(TOKEN_FILE, ("  ", "\t"), 2)
        for indent in ("  ", "    ", "\t"):
            with self.subTest(indent=len(indent)):
                self.assertIn("github-token", self.found("```\n" + indented(text, indent) + "```\n"))
                self.assertIn("github-token", self.streamed(indented(text, indent)))
        self.assertIn("github-token", self.found(json.dumps({"output": text}).encode(), JSON_TYPE))

    def test_the_real_tool_realigned(self) -> None:
        real = tool(["xxd"], AWS_FILE) or xxd(AWS_FILE)
        text = re.sub(r"(?<=[0-9a-f]{4}) (?=[0-9a-f]{4})", "   ", real)
        self.assertIn("aws-access-key-id", self.found(text))
        self.assertIn("aws-access-key-id", self.streamed(text))

    def test_a_text_column_of_hex_words_is_not_read_as_bytes(self) -> None:
        # Each line's text column starts with hex words: the bytes a line holds end at the offset
        # of the next line.
        data = b"cafe babe dead b" + b"eef 1234 abcd 12" + TOKEN_FILE
        for text in (xxd_gaps(data, ("  ", "\t"), 3), xxd(data), xxd(data, 4)):
            readings = [layer.text for layer in hex_dumps(text, limit=10_000)]
            self.assertEqual(data.decode(), readings[0])
            self.assertIn("github-token", self.found(text))


class IndentedCharacterCellsTest(_Case):
    DUMPS = {"od -An -c": od_an_c, "od -An -b": od_an_b}

    def test_indented_blocks(self) -> None:
        for indent in ("  ", "   ", "    ", "\t", "        ", "            "):
            for name, dump in self.DUMPS.items():
                for data, expected in TOKENS:
                    text = "the bytes:\n\n" + indented(dump(data), indent)
                    with self.subTest(indent=len(indent), dump=name, expected=expected):
                        self.assertIn(expected, self.found(text))
                        self.assertIn(expected, self.streamed(text))

    def test_markdown_and_yaml(self) -> None:
        dump = tool(["od", "-An", "-c"], TOKEN_FILE) or od_an_c(TOKEN_FILE)
        markdown = "1. Run this:\n\n   ```\n   $ od -An -c token\n" + indented(dump, "   ") + "   ```\n\n2. Done.\n"
        yaml = "steps:\n  - name: dump\n    output: |\n" + indented(dump, "      ") + "    ok: true\n"
        for name, text in (("markdown", markdown), ("yaml", yaml)):
            with self.subTest(shape=name):
                self.assert_found_everywhere(text, "github-token")

    def test_a_first_byte_that_is_a_blank(self) -> None:
        # The first cell is blank: the indentation is told by the other lines.
        for data in (b" " + GHP.encode(), b"  token = " + GHP.encode()):
            text = indented(od_an_c(data), "    ")
            with self.subTest(data=data[:12]):
                self.assertIn("github-token", self.found(text))
                self.assertIn("github-token", self.streamed(text))

    def test_the_layer_is_the_bytes(self) -> None:
        text = "dump:\n" + indented(od_an_c(TOKEN_FILE), "    ") + "end\n"
        self.assertIn(TOKEN_FILE.decode(), [layer.text for layer in plain_dumps(text, limit=10_000)])


class WideBlanksTest(_Case):
    def test_one_line(self) -> None:
        for blanks in (4, 5, 6, 8, 12):
            for data, expected in TOKENS[:2] + ((SECRET.encode(), "API_TOKEN"),):
                line = (" " * blanks).join(f"{b:02x}" for b in data)
                with self.subTest(blanks=blanks, expected=expected):
                    self.assertIn(expected, self.found(line))
                    self.assertIn(expected, self.found("token:    " + line + "\n"))
                    self.assertIn(expected, self.found("bytes:\n" + line + "\n"))
                    self.assertIn(expected, self.streamed("token: " + line))
        self.assert_found_everywhere("\t\t".join(f"{b:02x}" for b in GHP.encode()), "github-token")
        self.assert_found_everywhere("  \t  ".join(f"{b:02x}" for b in GHP.encode()), "github-token")

    def test_blocks_without_offsets(self) -> None:
        for blanks in (4, 6, 9):
            for indent in ("", "    "):
                for data, expected in TOKENS:
                    text = "the bytes:\n" + wide(data, blanks, indent=indent)
                    with self.subTest(blanks=blanks, indent=len(indent), expected=expected):
                        self.assertIn(expected, self.found(text))
                        self.assertIn(expected, self.streamed(text))

    def test_blocks_of_words(self) -> None:
        text = od_an_x(TOKEN_FILE).replace(" ", "     ")
        self.assertIn("github-token", self.found(text))
        self.assertIn("github-token", self.streamed(text))

    def test_dumps_with_offsets(self) -> None:
        for blanks in (4, 5, 8):
            for data, expected in TOKENS:
                text = wide(data, blanks, offsets=True)
                with self.subTest(blanks=blanks, expected=expected):
                    self.assertIn(expected, self.found(text))
                    self.assertIn(expected, self.streamed(text))
        realigned = re.sub(r"(?<=[0-9a-f]{2}) (?=[0-9a-f]{2}\b)", "    ", hexdump_c(TOKEN_FILE))
        self.assert_found_everywhere(realigned, "github-token")

    def test_the_layer_is_placed_on_the_block(self) -> None:
        block = wide(GHP.encode(), 5, indent="  ")
        text = "x:\n" + block + "done\n"
        layers = [layer for layer in plain_dumps(text, limit=10_000) if layer.text == GHP]
        self.assertEqual(1, len(layers))
        self.assertEqual(block.rstrip("\n"), text[layers[0].start:layers[0].end])


class LookalikesTest(_Case):
    """Real dumps of binaries and of ordinary text, re-aligned; digests and numbers in wide
    columns; memory dumps: nothing to report."""

    def assert_clean(self, text: str) -> None:
        self.assertEqual(set(), self.found(text))
        self.assertEqual(set(), self.streamed(text))

    def dumps(self, data: bytes) -> dict[str, str]:
        out = {"xxd": xxd(data), "od -An -c": od_an_c(data), "od -An -b": od_an_b(data),
               "od -An -tx1": od_an_tx1(data), "hexdump -C": hexdump_c(data)}
        for args in (["xxd"], ["xxd", "-g4"], ["od", "-An", "-c"], ["od", "-c"], ["hexdump", "-C"], ["od", "-tx1"]):
            real = tool(args, data)
            if real is not None:
                out[" ".join(args)] = real
        return out

    def test_dumps_of_a_binary_and_of_text_realigned(self) -> None:
        for source, data in (("binary", _binary_bytes()), ("text", ORDINARY)):
            for name, dump in self.dumps(data).items():
                for shape, text in (("as printed", dump), ("indented", indented(dump, "    ")),
                                    ("two blanks", re.sub(r"(?<=[0-9a-f]) (?=[0-9a-f])", "  ", dump)),
                                    ("tabs", re.sub(r"(?<=[0-9a-f]) (?=[0-9a-f])", "\t", dump)),
                                    ("wide", re.sub(r"(?<=[0-9a-f]) (?=[0-9a-f])", "      ", dump))):
                    with self.subTest(source=source, dump=name, shape=shape):
                        self.assert_clean("```\n" + text + "```\n")

    def test_wide_columns_of_a_binary(self) -> None:
        data = _binary_bytes()[:512]
        for blanks in (4, 7):
            with self.subTest(blanks=blanks):
                self.assert_clean(wide(data, blanks))
                self.assert_clean(wide(data, blanks, offsets=True))
                self.assert_clean(wide(ORDINARY, blanks, indent="    "))
                self.assert_clean((" " * blanks).join(f"{b:02x}" for b in ORDINARY[:64]))

    def test_digests_and_numbers_in_columns(self) -> None:
        rng = random.Random(8)
        digests = "".join(f"{i:4d}    " + "     ".join(f"{b:02x}" for b in rng.randbytes(16)) + "\n"
                          for i in range(24))
        table = "".join("    ".join(f"{rng.randrange(10, 100):>2}" for _ in range(12)) + "\n" for _ in range(30))
        aligned = "".join(f"{name:<12}" + "".join(f"{rng.randrange(100):>8}" for _ in range(6)) + "\n"
                          for name in ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"))
        shas = "".join(f"{rng.randbytes(20).hex()}        {rng.randbytes(4).hex()}    src/file_{i}.py\n"
                       for i in range(20))
        for name, text in (("digests", digests), ("decimal table", table), ("aligned table", aligned),
                           ("hashes", shas)):
            with self.subTest(table=name):
                self.assert_clean(text)

    def test_memory_dumps_of_ordinary_text(self) -> None:
        gdb = "".join(f"0x7ffd5c2{at:05x}:    " + "    ".join(f"0x{b:02x}" for b in ORDINARY[at:at + 8]) + "\n"
                      for at in range(0, len(ORDINARY), 8))
        lldb = "".join(f"0x{0x100003f80 + at:x}:    " + "    ".join(f"{b:02x}" for b in ORDINARY[at:at + 16])
                       + "    " + ORDINARY[at:at + 16].decode().replace("\n", ".") + "\n"
                       for at in range(0, len(ORDINARY), 16))
        for name, text in (("gdb", gdb), ("lldb", lldb), ("od -An -c indented", indented(od_an_c(ORDINARY), "  "))):
            with self.subTest(dump=name):
                self.assert_clean(text)

    def test_indented_prose_and_code(self) -> None:
        text = ("Notes:\n\n    a   b   c   d   e   f   g   h\n    1   2   3   4   5   6   7   8\n\n"
                "    x = [1,   2,   3]\n    y = {'a':   1}\n\n  - item   one\n  - item   two\n"
                "        \\n   is a line break,   \\t   a tab\n        \\0   ends a C string\n")
        self.assert_clean(text)


class DumpsApiTest(unittest.TestCase):
    def test_an_irregular_xxd_block_is_one_layer(self) -> None:
        text = xxd_gaps(TOKEN_FILE, ("   ",))
        layers = hex_dumps(text, limit=10_000)
        self.assertEqual(TOKEN_FILE.decode(), layers[0].text)
        self.assertEqual((0, len(text) - 1), (layers[0].start, layers[0].end))

    def test_a_regular_xxd_block_reads_as_before(self) -> None:
        text = xxd(FILE)
        self.assertEqual(FILE.decode(), hex_dumps(text, limit=10_000)[0].text)


if __name__ == "__main__":
    unittest.main()
