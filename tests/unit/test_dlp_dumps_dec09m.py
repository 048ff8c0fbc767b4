"""``od -An -c`` with tabs between its cells, and a spreadsheet paste of ``od -c`` that writes a
space byte as an empty cell.

- ``od -An -c | tr ' ' '\\t'``: each blank of the cells a tab.
- ``od -An -c`` pasted into a spreadsheet: one tab before each cell's character, escape or octal
  digits; a space byte a blank or an empty cell (two tabs in a row).
- ``od -c`` (with offsets) pasted so, a space byte an empty cell.
"""

from __future__ import annotations

import random
import unittest

from bench.dumps import od_an_c, od_c
from bot_bottle.sidecar.dlp.dumps import hex_dumps, plain_dumps
from tests.unit.test_dlp_gaps_dec06d import _Case
from tests.unit.test_dlp_gaps_dec08b import ORDINARY, TOKENS, _binary_bytes, indented
from tests.unit.test_dlp_redteam_dec06 import FILE, GHP, TOKEN_FILE


def _one_tab(dump: str, offset: int, empty: bool) -> str:
    """``dump``'s cells (after ``offset`` columns) each behind one tab, as a spreadsheet pastes
    them; a space byte a blank, or with ``empty`` an empty cell."""
    out = []
    for line in dump.splitlines():
        head, cells = line[:offset], line[offset:]
        shown = [cells[i:i + 4].lstrip() or ("" if empty else " ") for i in range(0, len(cells), 4)]
        out.append(head + "".join("\t" + cell for cell in shown))
    return "\n".join(out) + "\n"


def od_an_c_tabs(data: bytes) -> str:
    """``od -An -c | tr ' ' '\\t'``."""
    return od_an_c(data).replace(" ", "\t")


def od_an_c_one_tab(data: bytes) -> str:
    return _one_tab(od_an_c(data), 0, empty=False)


def od_an_c_empty(data: bytes) -> str:
    return _one_tab(od_an_c(data), 0, empty=True)


def od_c_empty(data: bytes) -> str:
    return _one_tab(od_c(data), 7, empty=True)


SHAPES = {"-An tr ' ' '\\t'": od_an_c_tabs, "-An one tab a cell": od_an_c_one_tab,
          "-An empty cell a space": od_an_c_empty, "offsets, empty cell a space": od_c_empty}


class TabbedCellsTest(_Case):
    def test_token_formats_and_a_secret(self) -> None:
        for name, shape in SHAPES.items():
            for data, expected in TOKENS:
                text = shape(data)
                with self.subTest(shape=name, expected=expected):
                    self.assertIn(expected, self.found(text))
                    self.assertIn(expected, self.streamed(text))
                    self.assertIn(expected, self.found("$ od -An -c f\n" + text + "$ exit\n"))
                    if "offsets" not in name:  # a YAML block scalar's indentation
                        self.assertIn(expected, self.found("out: |\n" + indented(text, "  ") + "n: 1\n"))

    def test_a_bottle_secret_after_prose(self) -> None:
        for name, shape in SHAPES.items():
            with self.subTest(shape=name):
                self.assert_found_everywhere(shape(FILE), "API_TOKEN")

    def test_the_reading_is_the_file(self) -> None:
        data = FILE + b"\x00\x01 \xc3\xa9\t end "
        for name, shape in SHAPES.items():
            with self.subTest(shape=name):
                reader = hex_dumps if "offsets" in name else plain_dumps
                texts = [layer.text for layer in reader(shape(data), limit=10_000)]
                self.assertIn(data.decode("latin-1"), texts)

    def test_a_line_starting_with_a_space_byte(self) -> None:
        data = b"x" * 15 + b" " + b" " + GHP.encode()
        for name, shape in SHAPES.items():
            with self.subTest(shape=name):
                self.assertIn("github-token", self.found(shape(data)))

    def test_a_token_in_a_markdown_reply(self) -> None:
        text = "Here are the bytes:\n\n```\n" + od_an_c_empty(TOKEN_FILE) + "```\n\nDone.\n"
        self.assertIn("github-token", self.found(text))


class LookalikesTest(_Case):
    def assert_clean(self, text: str) -> None:
        self.assertEqual(set(), self.found(text))
        self.assertEqual(set(), self.streamed(text))

    def test_a_tsv_of_single_letters_and_words(self) -> None:
        rng = random.Random(9)
        letters = "".join("\t" + "\t".join(rng.choice("abcxyz ") for _ in range(16)) + "\n" for _ in range(40))
        self.assert_clean(letters)
        self.assert_clean("".join("\t".join(rng.choice("abcxyz") for _ in range(12)) + "\n" for _ in range(40)))
        words = "".join("\t" + "\t".join(rng.choice(("alpha", "beta", "", "ok", "x", "n/a")) for _ in range(8)) + "\n"
                        for _ in range(40))
        self.assert_clean(words)

    def test_a_tab_indented_makefile(self) -> None:
        rules = "".join(f"target{i}: dep{i}.c\n\t$(CC) -c $< -o $@\n\t@echo built {i}\n\t\t\tcd sub && make\n\n"
                        for i in range(40))
        self.assert_clean(rules)

    def test_a_spreadsheet_of_numbers(self) -> None:
        rng = random.Random(4)
        sheet = "".join("\t" + "\t".join(str(rng.randrange(1000)) for _ in range(16)) + "\n" for _ in range(60))
        self.assert_clean(sheet)
        self.assert_clean(sheet.replace("\t", "\t\t"))
        octal = "".join("\t" + "\t".join(f"{rng.randrange(256):03o}" for _ in range(16)) + "\n" for _ in range(60))
        self.assert_clean(octal)

    def test_dumps_of_ordinary_bytes(self) -> None:
        for source, data in (("binary", _binary_bytes()[:1024]), ("text", ORDINARY)):
            for name, shape in SHAPES.items():
                with self.subTest(source=source, shape=name):
                    self.assert_clean(shape(data))

    def test_a_secret_still_read_in_plain_od_an_c(self) -> None:
        self.assertIn("github-token", self.found(od_an_c(GHP.encode())))
        self.assertIn("github-token", self.found(indented(od_an_c(TOKEN_FILE), "    ")))


if __name__ == "__main__":
    unittest.main()
