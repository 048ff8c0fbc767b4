"""The quicker searches of ``dlp.known`` find what the plain ones do.

- ``wrapped_blocks`` finds long lines with ``bytes.find`` and matches each on its own, the regex
  taking over past one long line per ``BLOCK_FIND_SPAN`` characters: the same blocks as one
  ``finditer`` pass of ``_BLOCK``.
- ``_across_breaks`` joins each block with ``str.replace`` and maps hits back to the lines only
  for the blocks a form is found in: the same spans as a character-by-character map.
- ``_search_runs`` searches the short forms (halves of a value sent every other character) in the
  whole text and the long ones in the runs long enough for them: the same hits as one search of
  the whole text.
"""

from __future__ import annotations

import base64
import random
import string
import unittest

from bot_bottle.sidecar.dlp import known
from bot_bottle.sidecar.dlp.known import KnownSecrets

SECRETS = {
    "API_KEY": "Zq8vN3xR7tLp2WcY9bHk4sFm",
    "DB_PASS": "hunter2-Correct-Horse-88",
    "ROUTE": "rt_4f9a8b7c6d5e4f3a2b1c0d9e",
}
KNOWN = KnownSecrets(SECRETS)
PRINTABLE = string.ascii_letters + string.digits + "+/=!~<>{}"


def plain_blocks(text: str) -> list[tuple[int, int]]:
    shape = text.encode("latin-1", "replace").translate(known._LINE_MAP)
    return [m.span() for m in known._BLOCK.finditer(shape) if m.end(1) > m.start(1)]


def lines_text(rng: random.Random, count: int) -> str:
    lines = []
    for _ in range(count):
        r = rng.random()
        if r < 0.45:
            lines.append("".join(rng.choice(PRINTABLE) for _ in range(rng.choice([39, 40, 41, 64, 76, 120]))))
        elif r < 0.65:
            lines.append("word " * rng.randrange(1, 6))
        elif r < 0.72:
            lines.append("")
        else:
            lines.append("".join(rng.choice(PRINTABLE) for _ in range(rng.randrange(1, 30))))
    return "".join(line + rng.choice(["\n", "\r\n", "\r", "\x00", " \n", "\n\n"]) for line in lines)


class WrappedBlocksTest(unittest.TestCase):
    def test_same_blocks_as_one_regex_pass(self) -> None:
        rng = random.Random(14)
        for _ in range(150):
            text = lines_text(rng, rng.choice([3, 40, 400]))
            if rng.random() < 0.3:
                text = text[rng.randrange(len(text)):]
            if rng.random() < 0.2:
                text += "\u4e2d" + lines_text(rng, 5)  # a wide character: "?" in the byte view
            self.assertEqual(known.wrapped_blocks(text), plain_blocks(text))

    def test_text_of_many_long_lines_each_alone(self) -> None:
        # More long lines than are found one by one: the regex takes over where they stop.
        line = "x" * 50 + "\nshortline\n"
        repeats = 2 * (known.BLOCK_FINDS_LEAST + len(line) * 4000 // known.BLOCK_FIND_SPAN)
        text = line * repeats + ("y" * 64 + "\n") * 3 + "end"
        self.assertGreater(text.count("x" * 50), known.BLOCK_FINDS_LEAST + len(text) // known.BLOCK_FIND_SPAN)
        blocks = known.wrapped_blocks(text)
        self.assertEqual(blocks, plain_blocks(text))
        self.assertEqual(len(blocks), text.count("x" * 50) + 1)  # each long line with its short one, and the y lines

    def test_block_at_the_very_end_and_start(self) -> None:
        block = "\n".join("A" * 40 for _ in range(3))
        for text in (block, block + "\r\n", "\r\n" + block, "lead " + block + " trail"):
            self.assertEqual(known.wrapped_blocks(text), plain_blocks(text))
            self.assertTrue(known.wrapped_blocks(text))

    def test_no_long_line_no_block(self) -> None:
        self.assertEqual(known.wrapped_blocks("short\nlines\n" * 1000), [])
        self.assertEqual(known.wrapped_blocks(""), [])


def across_reference(groups: list[known._Group], text: str) -> list[tuple[int, int, str, str | None]]:
    """Each form found in a block with its line breaks removed that crosses one, mapped back one
    character at a time."""
    out = []
    for start, end in known.wrapped_blocks(text):
        kept: list[int] = []  # parent offset of each character of the block kept
        i = start
        while i < end:
            if text.startswith("\r\n", i):
                i += 2
                continue
            if text[i] == "\n":
                i += 1
                continue
            kept.append(i)
            i += 1
        joined = "".join(text[i] for i in kept)
        for group in groups:
            for needle, _ in group.forms:
                at = joined.find(needle.text)
                while at >= 0:
                    first, last = kept[at], kept[at + len(needle.text) - 1]
                    if last - first + 1 > len(needle.text):
                        out.append((first, last + 1, needle.name, needle.encoding))
                    at = joined.find(needle.text, at + 1)
    return sorted(out)


class AcrossBreaksTest(unittest.TestCase):
    def wrapped_text(self, rng: random.Random, forms: list[str]) -> tuple[str, list[str]]:
        parts = []
        planted = []
        for _ in range(rng.randrange(1, 6)):
            filler = base64.a85encode(rng.randbytes(rng.randrange(40, 400))).decode()
            form = rng.choice(forms)
            cut = rng.randrange(len(filler) + 1)
            body = filler[:cut] + form + filler[cut:]
            width = rng.choice([40, 64, 72, 76, 80])
            sep = rng.choice(["\n", "\r\n"])
            parts.append(sep.join(body[i : i + width] for i in range(0, len(body), width)))
            planted.append(form)
            parts.append(rng.choice(["\n\nsome prose between blocks\n", "\n", " x = 1\n"]))
        return "".join(parts), planted

    def test_same_spans_as_a_character_map(self) -> None:
        rng = random.Random(1414)
        groups = list(KNOWN._base85_needles)
        forms = [n.text for g in groups for n, _ in g.forms if "\n" not in n.text and "\r" not in n.text]
        crossing = 0
        for _ in range(120):
            text, _ = self.wrapped_text(rng, forms)
            found = known._across_breaks(groups, text, known.wrapped_blocks(text))
            expected = across_reference(groups, text)
            self.assertEqual(sorted((h.start, h.end, h.secret_name, h.encoding) for h in found), expected)
            crossing += len(expected)
        self.assertGreater(crossing, 50)

    def test_each_planted_form_found_whole(self) -> None:
        rng = random.Random(7)
        groups = KNOWN._base85_needles
        by_text = {n.text: n for g in groups for n, _ in g.forms}
        for text_form, needle in list(by_text.items())[:40]:
            if any(ch in text_form for ch in "\r\n"):
                continue
            filler = base64.a85encode(rng.randbytes(200)).decode()
            body = filler[:70] + text_form + filler[70:]
            text = "prose first\n" + "\r\n".join(body[i : i + 64] for i in range(0, len(body), 64)) + "\nend"
            hits = KNOWN.find_base85(text)
            start = text.index(body[:64]) + 70 + 2  # the form starts after the first line break
            self.assertIn(needle.name, {h.secret_name for h in hits})
            spans = {(h.start, h.end) for h in hits if h.secret_name == needle.name}
            self.assertTrue(any(s <= start < e for s, e in spans), (needle, spans))

    def test_nothing_across_breaks_in_plain_base64(self) -> None:
        rng = random.Random(3)
        text = base64.encodebytes(rng.randbytes(300_000)).decode()
        self.assertEqual(known._across_breaks(KNOWN._base85_needles, text, known.wrapped_blocks(text)), [])


class SearchRunsTiersTest(unittest.TestCase):
    def text(self, rng: random.Random, forms: list[str]) -> str:
        words = ["the", "self.handler", "user_id,", "0.1234", "x", "\n", "\t", "b" * 10,
                 "a_longer_identifier_name_here", "return", "\u00e9t\u00e9"]
        parts: list[str] = []
        size = 0
        while size < known.GATE_MIN_TEXT + 20_000:
            if rng.random() < 0.01:
                glue = rng.choice(["", " ", "\n", "x", "\x00", "\t", "y" * 30])
                parts.append(glue + rng.choice(forms) + rng.choice(["", " ", "\n", "Q", "z" * 20]))
            else:
                parts.append(rng.choice(words) + rng.choice([" ", "", "\n"]))
            size += len(parts[-1])
        return "".join(parts)

    def test_long_forms_in_long_runs_short_ones_whole(self) -> None:
        groups = KNOWN._base85_needles
        gate_all = [g for g in groups if known._unbroken(g)]
        long = known._in_long_runs(gate_all)
        self.assertGreaterEqual(len(long), known.RUNS_WORTH)
        self.assertLess(len(long), len(gate_all))  # the every-other halves are left to the whole text
        self.assertTrue(all(len(n.text) >= known.LONG_RUN for g in long for n, _ in g.forms))

    def test_same_hits_as_the_whole_text_search(self) -> None:
        rng = random.Random(1414)
        forms = [n.text for g in KNOWN._base85_needles for n, _ in g.forms]
        short = [f for f in forms if len(f) < known.LONG_RUN]
        self.assertTrue(short)
        for _ in range(10):
            text = self.text(rng, forms + short * 4)
            for groups in (KNOWN._base85_needles, KNOWN._echo_needles):
                whole = known._search(groups, text, text)
                runs = known._search_runs(groups, text)
                self.assertEqual(sorted((h.start, h.end, h.secret_name, h.encoding) for h in runs),
                                 sorted((h.start, h.end, h.secret_name, h.encoding) for h in whole))
            self.assertTrue(any(len(text[h.start : h.end]) < known.LONG_RUN for h in known._search_runs(
                KNOWN._base85_needles, text)))

    def test_many_short_forms_keep_one_kind_of_run(self) -> None:
        # Many short values: their halves are too many to search in the whole text each.
        many = KnownSecrets({f"S{i}": f"{i:02d}q8vN3xR7tLp2WcY9b" for i in range(40)})
        groups = [g for g in many._base85_needles if known._unbroken(g)]
        self.assertEqual(known._in_long_runs(groups), groups)
        rng = random.Random(2)
        forms = [n.text for g in many._base85_needles for n, _ in g.forms]
        text = self.text(rng, forms)
        runs = known._search_runs(many._base85_needles, text)
        whole = known._search(many._base85_needles, text, text)
        self.assertEqual(sorted((h.start, h.end, h.secret_name) for h in runs),
                         sorted((h.start, h.end, h.secret_name) for h in whole))
        self.assertTrue(whole)


if __name__ == "__main__":
    unittest.main()
