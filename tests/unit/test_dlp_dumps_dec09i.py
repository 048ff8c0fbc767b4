"""Three dump shapes the scan passed over.

- ``xxd`` lines with four blanks or more between their groups (``xxd -g 2`` re-aligned in wide
  columns): no line was read as a dump line.
- A dump with offsets indented sixteen columns or more: its first line was not looked for.
- ``od -c`` with tabs between its cells (``od -c | tr ' ' '\\t'``, or one tab before each cell
  as a spreadsheet paste has them).
"""

from __future__ import annotations

import random
import re
import unittest

from bench.dumps import hexdump_c, od_b, od_c, od_x, xxd
from bot_bottle.sidecar.dlp.dumps import hex_dumps
from tests.unit.test_dlp_gaps_dec06d import _Case
from tests.unit.test_dlp_gaps_dec08b import ORDINARY, TOKENS, _binary_bytes, indented
from tests.unit.test_dlp_redteam_dec06 import FILE, GHP, TOKEN_FILE


def xxd_wide(data: bytes, blanks: int, group: int = 2, seed: int | None = None) -> str:
    """``xxd -g group`` with each blank between two groups widened to ``blanks`` (or, with
    ``seed``, to four to eight blanks at random) and the columns kept aligned: a short last
    line's groups padded out to where a full line's end, then two blanks and the text column."""
    rng = random.Random(seed)
    gap = (lambda: " " * rng.randint(4, 8)) if seed is not None else (lambda: " " * blanks)
    full = 16 * 2 + (16 // group - 1) * (8 if seed is not None else blanks)
    out = []
    for at in range(0, len(data), 16):
        chunk = data[at:at + 16]
        groups = [chunk[i:i + group].hex() for i in range(0, len(chunk), group)]
        row = groups[0] + "".join(gap() + g for g in groups[1:])
        shown = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        out.append(f"{at:08x}: " + row.ljust(full) + "  " + shown)
    return "\n".join(out) + "\n"


def od_c_tabs(data: bytes) -> str:
    """``od -c | tr ' ' '\\t'``."""
    return od_c(data).replace(" ", "\t")


def od_c_one_tab(data: bytes) -> str:
    """``od -c`` with one tab before each cell (a space byte a blank): a spreadsheet paste."""
    out = []
    for line in od_c(data).splitlines():
        offset, cells = line[:7], line[7:]
        shown = [cells[i:i + 4].lstrip() or " " for i in range(0, len(cells), 4)]
        out.append(offset + "".join("\t" + cell for cell in shown))
    return "\n".join(out) + "\n"


class XxdWideGapsTest(_Case):
    def test_token_formats_and_a_secret(self) -> None:
        for blanks in (4, 5, 8):
            for group in (1, 2, 4):
                for data, expected in TOKENS:
                    text = xxd_wide(data, blanks, group)
                    with self.subTest(blanks=blanks, group=group, expected=expected):
                        self.assertIn(expected, self.found(text))
                        self.assertIn(expected, self.streamed(text))

    def test_mixed_wide_gaps_and_indented(self) -> None:
        text = xxd_wide(TOKEN_FILE, 0, seed=4)
        self.assert_found_everywhere(text, "github-token")
        self.assertIn("github-token", self.found("```\n" + indented(text, "    ") + "```\n"))

    def test_the_reading_is_the_file(self) -> None:
        for data in (TOKEN_FILE, FILE, FILE[:-1], FILE + b"cafe"):
            for blanks in (4, 6):
                with self.subTest(size=len(data), blanks=blanks):
                    readings = [layer.text for layer in hex_dumps(xxd_wide(data, blanks), limit=10_000)]
                    self.assertEqual(data.decode(), readings[0])

    def test_a_short_last_line_of_hex_words(self) -> None:
        # The last line's text column is hex words, its bytes fewer than a line holds: only its
        # bytes are read, not the words.
        for tail in (b"cafe babe", b"beef", b"ab cd", b"dead beef cafe", b"\nabcd ef", b"\nab cafe", b"\nabc", b"\nok. cafe babe dead!", b"\nok. cafe babe dead"):
            data = TOKEN_FILE + tail
            for blanks in (4, 5, 9):
                for group in (1, 2, 4):
                    text = xxd_wide(data, blanks, group)
                    with self.subTest(tail=tail, blanks=blanks, group=group):
                        self.assertEqual(data.decode(), hex_dumps(text, limit=10_000)[0].text)
                        self.assertIn("github-token", self.found(text))


class DeeplyIndentedTest(_Case):
    DUMPS = {"xxd": xxd, "hexdump -C": hexdump_c, "od -c": od_c, "od -b": od_b, "od -x": od_x}

    def test_offsets_indented_sixteen_columns_or_more(self) -> None:
        for indent in (" " * 16, " " * 20, " " * 32, "\t" * 4, "\t" * 8):
            for name, dump in self.DUMPS.items():
                for data, expected in TOKENS:
                    text = "steps:\n" + indented(dump(data), indent) + "done\n"
                    with self.subTest(indent=repr(indent), dump=name, expected=expected):
                        self.assertIn(expected, self.found(text))
                        self.assertIn(expected, self.streamed(text))

    def test_the_first_line_of_a_text(self) -> None:
        self.assert_found_everywhere(indented(xxd(TOKEN_FILE), " " * 24), "github-token")


class OdCTabsTest(_Case):
    SHAPES = {"tr ' ' '\\t'": od_c_tabs, "one tab a cell": od_c_one_tab}

    def test_token_formats_and_a_secret(self) -> None:
        for name, shape in self.SHAPES.items():
            for data, expected in TOKENS:
                text = shape(data)
                with self.subTest(shape=name, expected=expected):
                    self.assertIn(expected, self.found(text))
                    self.assertIn(expected, self.streamed(text))
                    self.assertIn(expected, self.found("$ od -c f\n" + indented(text, "  ") + "$ exit\n"))

    def test_the_reading_is_the_file(self) -> None:
        data = FILE + b"\x00\x01\xc3\xa9\t end"
        for name, shape in self.SHAPES.items():
            with self.subTest(shape=name):
                self.assertEqual(data.decode("latin-1"), hex_dumps(shape(data), limit=10_000)[0].text)

    def test_a_character_printed_whole(self) -> None:
        # ``od -c`` in a UTF-8 locale prints "é" whole, then "**" for its second byte.
        text = "0000000\t\t\té\t\t**\t\t\tk\t\t\te\t\t\ty\t\t\t=\t\t\t\t\n" \
            + "".join(od_c_tabs(b"x" * 16 + GHP.encode()).splitlines(True)[1:])
        self.assertIn("é".encode() + b"key= ", self.read(text))
        one_tab = "0000000\té\t**\tk\te\ty\t=\t \n" + "".join(od_c_one_tab(b"x" * 16 + GHP.encode()).splitlines(True)[1:])
        self.assertTrue(self.read(one_tab).startswith("é".encode() + b"key= ghp_"))
        self.assertIn("github-token", self.found(text))
        self.assertIn("github-token", self.found(one_tab))

    @staticmethod
    def read(text: str) -> bytes:
        """The bytes the first dump in ``text``, sent as UTF-8, shows."""
        latin = text.encode().decode("latin-1")  # as the scan reads a body: each byte a character
        return hex_dumps(latin, limit=10_000)[0].text.encode("latin-1")

    def test_od_b_with_tabs(self) -> None:
        self.assert_found_everywhere(od_b(TOKEN_FILE).replace(" ", "\t"), "github-token")


class LookalikesTest(_Case):
    def assert_clean(self, text: str) -> None:
        self.assertEqual(set(), self.found(text))
        self.assertEqual(set(), self.streamed(text))

    def test_a_table_of_numbers_with_wide_gaps(self) -> None:
        rng = random.Random(3)
        table = "".join(f"{at:08x}:" + "".join(f"    {rng.randrange(10000):04d}" for _ in range(8)) + "\n"
                        for at in range(0, 16 * 20, 16))
        self.assert_clean(table)
        self.assert_clean(indented(table, " " * 20))

    def test_an_indented_log_with_timestamps(self) -> None:
        log = "".join(f"{' ' * 18}{at:06d} 2026-12-07 08:{at % 60:02d}:00 worker {at} done ok\n"
                      for at in range(40))
        self.assert_clean("run:\n" + log)
        self.assert_clean("".join(f"{' ' * 20}00000{i} 12 34 56 78 9a bc de f0 ready\n" for i in range(8)))

    def test_a_tsv_of_words(self) -> None:
        rows = ["0000000\tname\tsize\towner", "0000001\ta\tb\tc", "0000002\talpha\t12\troot"]
        self.assert_clean("\n".join(rows) + "\n")
        self.assert_clean("".join(f"{i:07o}\t" + "\t".join("abcdefgh") + "\n" for i in range(0, 64, 8)))

    def test_xxd_of_an_ordinary_file_realigned(self) -> None:
        for source, data in (("binary", _binary_bytes()[:1024]), ("text", ORDINARY)):
            for blanks in (4, 6):
                with self.subTest(source=source, blanks=blanks):
                    self.assert_clean(xxd_wide(data, blanks))
                    self.assert_clean(indented(xxd(data), " " * 20))
                    self.assert_clean(od_c_tabs(data))
                    self.assert_clean(od_c_one_tab(data))
                    self.assert_clean(indented(xxd_wide(data, blanks), " " * 18))


if __name__ == "__main__":
    unittest.main()
