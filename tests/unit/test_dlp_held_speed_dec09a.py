"""The cheap pre-checks of a held body's decoded layer, pinned at their edges.

A large JSON request of short lines (lowercase words, most of them made of letters a hex digit
or base64 also uses) used to send every line break through three dump parsers and the UTF-16/32
search through every character of a text whose only NULs join its values. Now: the UTF-16/32
runs are searched only around a NUL-led seed four characters long (``wide._text_regions``); a
dump parser is called only where its block's first line could start (``dumps._block_at``); and
narrow base64 that is lines of lowercase words, whose bytes are no text, gives no layer
(``dumps._word_lines``). Each must let through every block and run the full search found: the
shortest run, runs against stray NULs and at a text's edges, dumps of each shape in a body of
word lines, base64 whose every character is a lowercase letter but whose bytes are text."""

from __future__ import annotations

import base64
import json
import random
import re
import unittest
from collections.abc import Iterator
from typing import Any

from bench.dumps import hexdump_e, od_an_b, od_an_c, od_an_tx1, od_an_x, wrapped_b64
from bot_bottle.sidecar.dlp import Scanner, dumps, wide
from bot_bottle.sidecar.dlp.dumps import plain_dumps
from bot_bottle.sidecar.dlp.wide import MIN_RUN, wide_layers

PASSWORD = "Vx9!kQ2#mW7pL4zR"
SHORT = "Q7!x#2Lm"  # exactly MIN_RUN characters: the shortest run searched for
# Their base64 is lowercase letters only ("azdwdycydlhkdmpx", "acuuxrcxetuuyblx"): text whose
# narrow base64 looks like lines of lowercase words.
LOWER_ASCII = "k7pw'2vXdvjq"
LOWER_UTF8 = "iˮƷ1zۮɹq"
SECRETS = {"PASSWORD": PASSWORD, "SHORT": SHORT, "LOWER_ASCII": LOWER_ASCII, "LOWER_UTF8": LOWER_UTF8}
SCANNER = Scanner(SECRETS)
GHP = "ghp_" + "q8Yt3LmN0pR5sV2wX7zA9cE4gJ6kB1dF0hUi"
WORDS = "abcdefghij klmnop\n"  # the proxy benchmark's held request: every line a hint once


def words(rng: random.Random, size: int, alphabet: str = WORDS) -> str:
    return "".join(rng.choice(alphabet) for _ in range(size))


def held_body(contents: list[str]) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": c} for c in contents]}).encode()


def found(body: bytes) -> set[str]:
    findings = SCANNER.scan_request("POST", "https://api.example/upload", {"content-type": "application/json"}, body)
    return {f.secret_name or f.detector for f in findings}


def planted(rng: random.Random, dump: str, messages: int = 60) -> bytes:
    """A held body of word lines with ``dump`` on lines of its own in one message."""
    contents = [words(rng, 2000) for _ in range(messages)]
    contents[messages // 2] = words(rng, 700) + "\n" + dump + words(rng, 700)
    return held_body(contents)


def _runs_of_whole_text(text: str) -> list[tuple[str, int, int, str]]:
    """What each run pattern finds searching all of ``text`` (the search before the seeds)."""
    out = []
    for width, place, pattern in wide._TEXT_RUNS:
        for m in pattern.finditer(text):
            out.append((width, m.start(), m.end(), m.group()[place::width]))
    return out


def _forms(value: str) -> list[str]:
    return [value.encode(codec).decode("latin-1") for codec in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")]


class WideRunsTest(unittest.TestCase):
    def test_the_runs_are_those_of_a_search_of_the_whole_text(self) -> None:
        rng = random.Random(9)
        noise = ["\x00", "\x00\x00", "\x00\x00\x00", "a", "a\x00", "\x00a", "\n", "\xff", " \x00Z"]
        for _ in range(3000):
            parts = []
            for _ in range(rng.randint(1, 6)):
                if rng.random() < 0.5:
                    value = "".join(rng.choice("abcXYZ09 \t\n") for _ in range(rng.randint(MIN_RUN - 2, MIN_RUN + 3)))
                    parts.append(rng.choice(_forms(value)))
                else:
                    parts.append("".join(rng.choice(noise) for _ in range(rng.randint(0, 6))))
            text = "".join(parts)
            got = [(layer.start, layer.end, layer.text) for layer in wide_layers(text, limit=1 << 30)]
            whole = {(start, end, run) for _, start, end, run in _runs_of_whole_text(text)}
            with self.subTest(text=text):
                self.assertTrue(set(got) <= whole)
                # Each run of the whole search is a layer, or held in one that overlaps it
                # (the other byte order's reading, one character short).
                for start, end, run in whole:
                    self.assertTrue(any(s < end and start < e and run in t for s, e, t in got), (start, end, run))

    def test_the_shortest_run_at_a_text_s_edges_and_against_stray_nuls(self) -> None:
        for form in _forms(SHORT):
            for before, after in (("", ""), ("\x00", "\x00"), ("\x00\x00\x00", "\x00\x00\x00"),
                                  ("x" * 40 + "\x00", "\x00" + "y" * 40), ("\x00a\x00b", "c\x00d\x00")):
                text = before + form + after
                with self.subTest(form=form, before=before, after=after):
                    # Characters around it may join the run: found inside it.
                    self.assertTrue(any(SHORT in layer.text for layer in wide_layers(text, limit=1 << 30)))
            # One character short of a run: none.
            self.assertEqual([], wide_layers("\x00" + form[: len(form) * (MIN_RUN - 1) // MIN_RUN] + "\x00",
                                             limit=1 << 30))

    def test_a_text_of_joined_values_is_searched_only_around_its_runs(self) -> None:
        rng = random.Random(4)
        text = "\x00".join(words(rng, 2000) for _ in range(100))
        text += "\x00" + _forms(PASSWORD)[0] + "\x00" + words(rng, 2000)
        searched = []

        class Spy:
            def __init__(self, pattern: re.Pattern[str]) -> None:
                self.pattern = pattern

            def finditer(self, string: str, pos: int = 0, endpos: int = 1 << 62) -> Iterator[re.Match[str]]:
                searched.append(min(endpos, len(string)) - pos)
                return self.pattern.finditer(string, pos, endpos)

        runs = wide._TEXT_RUNS
        wide._TEXT_RUNS = tuple((width, place, Spy(pattern)) for width, place, pattern in runs)  # type: ignore[assignment]
        try:
            layers = wide_layers(text, limit=1 << 30)
        finally:
            wide._TEXT_RUNS = runs
        self.assertEqual(1, len(layers))
        self.assertIn(PASSWORD, layers[0].text)
        self.assertLess(sum(searched), 4 * (2 * len(PASSWORD) + 2 * 16 + 8))

    def test_a_held_body_s_wide_secrets(self) -> None:
        rng = random.Random(5)
        for name, value in (("PASSWORD", PASSWORD), ("SHORT", SHORT)):
            for form in _forms(value):
                contents = [words(rng, 2000) for _ in range(40)]
                contents[20] = words(rng, 300) + form + words(rng, 300)
                with self.subTest(name=name, form=form[:8]):
                    self.assertIn(name, found(held_body(contents)))


class _Spied:
    """Counts the calls of the dump parsers while in use."""

    NAMES = ("_hex_block", "_cell_block", "_b64_block")

    def __enter__(self) -> dict[str, int]:
        self.calls = dict.fromkeys(self.NAMES, 0)
        self.saved = {name: getattr(dumps, name) for name in self.NAMES}
        for name, parse in self.saved.items():
            def counted(*args: Any, _name: str = name, _parse: Any = parse) -> Any:
                self.calls[_name] += 1
                return _parse(*args)
            setattr(dumps, name, counted)
        return self.calls

    def __exit__(self, *_: object) -> None:
        for name, parse in self.saved.items():
            setattr(dumps, name, parse)


class DumpStartsTest(unittest.TestCase):
    def assert_read(self, text: str, data: bytes) -> None:
        # A reading holds the bytes (``od -x`` pads an odd last byte with a NUL).
        self.assertTrue(any(data.decode("latin-1") in layer.text for layer in plain_dumps(text, limit=1 << 20)))

    def test_each_shape_in_a_text_of_word_lines(self) -> None:
        rng = random.Random(6)
        data = f"token = {GHP}\n".encode()
        indented15 = "".join(" " * 15 + line + "\n" for line in wrapped_b64(data, 16).splitlines())
        crlf = wrapped_b64(data, 12).replace("\n", "\r\n")
        shapes = {
            "od -An -x (a blank first)": od_an_x(data),
            "od -An -tx1": od_an_tx1(data),
            "hexdump -e (a hex digit first)": hexdump_e(data),
            "od -An -c (cells)": od_an_c(data),
            "od -An -b": od_an_b(data),
            "base64 -w 4 (the narrowest)": wrapped_b64(data, 4),
            "base64 -w 23 (the widest)": wrapped_b64(data, 23),
            "indented 15 blanks": indented15,
            "CRLF lines": crlf,
        }
        for name, dump in shapes.items():
            for before, after in (("", ""), (words(rng, 500) + "\n", words(rng, 500)),
                                  (words(rng, 500) + "\x00", "\x00" + words(rng, 500))):
                with self.subTest(shape=name, where=len(before)):
                    self.assert_read(before + dump + after, data)

    def test_two_lines_the_second_one_shorter(self) -> None:
        for value in (b"0123456789abcde", b"Zz" * 7 + b"!", b"\xff" * 15):
            encoded = base64.b64encode(value).decode()
            self.assertEqual(20, len(encoded))
            for lead in ("", "words here\n", "x\x00"):
                with self.subTest(value=value, lead=lead):
                    self.assert_read(lead + encoded[:16] + "\n" + encoded[16:] + "\n", value)
                    self.assert_read(lead + encoded[:16] + "\n" + encoded[16:], value)  # the text's end

    def test_a_first_line_of_each_kind_of_lead(self) -> None:
        # A letter past f, a hex letter, a digit, "+" and "/": each first character of base64.
        for value in (b"\xa5" + b"secret!!" * 2, b"i" + b"secret!!" * 2, b"\xd7" + b"secret!!" * 2,
                      b"\xfb" + b"secret!!" * 2, b"\xff" + b"secret!!" * 2):
            text = "prose\n" + wrapped_b64(value, 8) + "more prose\n"
            with self.subTest(first=base64.b64encode(value)[:1]):
                self.assert_read(text, value)

    def test_parsers_are_not_called_where_no_block_can_start(self) -> None:
        rng = random.Random(7)
        # Words of letters no hex digit is, no line led by a blank: neither hex nor cell parser.
        text = "\n".join("g" + words(rng, rng.randint(0, 30), "ghijklmnop" * 9 + " ") for _ in range(3000))
        with _Spied() as calls:
            plain_dumps(text, limit=1 << 20)
        self.assertEqual(0, calls["_hex_block"])
        self.assertEqual(0, calls["_cell_block"])
        # Base64 is tried only where a line is followed by one no wider, indented the same.
        lines = text.split("\n")
        pairs = sum(1 for a, b in zip(lines, lines[1:]) if 4 <= len(a) <= 23 and 1 <= len(b) <= len(a))
        self.assertLessEqual(calls["_b64_block"], pairs)


class WordLinesTest(unittest.TestCase):
    def test_lines_of_lowercase_words_give_no_base64_layer(self) -> None:
        for text in ("abcdefgh\nijklmnop\nqrstuv\n", "  abcdefgh\n  ijklmnop\n  qrst\n",
                     "lorem\nipsum\ndolor\n", "abcd\r\nefgh\r\nijkl\r\nmn\r\n"):
            with self.subTest(text=text):
                self.assertEqual([], [layer for layer in plain_dumps(text, limit=1 << 20) if layer.encoding == "base64"])

    def test_base64_of_text_in_lowercase_letters_is_read(self) -> None:
        for value in (LOWER_ASCII, LOWER_UTF8):
            data = value.encode()
            encoded = base64.b64encode(data).decode()
            self.assertTrue(encoded.islower() and encoded.isalpha(), encoded)
            for width in (4, 8, 12):
                with self.subTest(value=value, width=width):
                    self.assertIn(data.decode("latin-1"),
                                  [layer.text for layer in plain_dumps(wrapped_b64(data, width), limit=1 << 20)])

    def test_other_base64_blocks_of_letters_are_read(self) -> None:
        # A capital, a digit or padding: not lines of lowercase words.
        for text, data in (("Abcdefgh\nijklmnop\n", base64.b64decode("Abcdefghijklmnop")),
                           ("abcdefgh\nijklmno9\n", base64.b64decode("abcdefghijklmno9")),
                           ("abcdefgh\nijklmn==\n", base64.b64decode("abcdefghijklmn=="))):
            with self.subTest(text=text):
                self.assertIn(data.decode("latin-1"), [layer.text for layer in plain_dumps(text, limit=1 << 20)])


class HeldBodyTest(unittest.TestCase):
    """The proxy benchmark's held request (messages of lowercase word lines), small: a secret
    planted in each shape is found by the detector that reads it."""

    def test_a_clean_body_has_no_finding(self) -> None:
        rng = random.Random(1)
        self.assertEqual(set(), found(held_body([words(rng, 2000) for _ in range(60)])))

    def test_planted_secrets(self) -> None:
        rng = random.Random(2)
        file = f"export PASSWORD={PASSWORD}\ntoken = {GHP}\n".encode()
        cases = {
            "raw": (PASSWORD + "\n", "PASSWORD"),
            "base64 -w 16": (wrapped_b64(file, 16), "PASSWORD"),
            "base64 -w 8 of lowercase letters": (wrapped_b64(LOWER_ASCII.encode(), 8), "LOWER_ASCII"),
            "base64 -w 8 of UTF-8 in lowercase letters": (wrapped_b64(LOWER_UTF8.encode(), 8), "LOWER_UTF8"),
            "od -An -x": (od_an_x(file), "PASSWORD"),
            "hexdump -e": (hexdump_e(file), "PASSWORD"),
            "od -An -c": (od_an_c(file), "PASSWORD"),
            "od -An -tx1 of a token": (od_an_tx1(f"token = {GHP}\n".encode()), "github-token"),
            "od -An -b of a token": (od_an_b(f"token = {GHP}\n".encode()), "github-token"),
            "indented base64": ("".join("    " + line + "\n" for line in wrapped_b64(file, 20).splitlines()), "PASSWORD"),
        }
        for name, (dump, expected) in cases.items():
            with self.subTest(shape=name):
                self.assertIn(expected, found(planted(rng, dump)))


if __name__ == "__main__":
    unittest.main()
