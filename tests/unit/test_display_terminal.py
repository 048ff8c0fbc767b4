"""Combining marks as ``terminal.printable`` shows them: the few that make accents and vowel
signs as written, a pile of them ("zalgo" text, drawn over the lines above and below in many
terminals, over the tool's own) cut to ``MAX_MARKS`` with the rest as escapes."""

from __future__ import annotations

import unicodedata
import unittest

from bot_bottle.terminal import MAX_MARKS, one_line, printable

ZALGO = "a" + "\u0300\u0301\u0302\u0303\u0304\u0305\u0306\u0307\u0308\u0309" * 3 + "b"


class CombiningMarksTest(unittest.TestCase):
    def test_a_pile_of_marks_is_cut_to_the_limit_and_the_rest_escaped(self) -> None:
        shown = printable(ZALGO)
        kept = [c for c in shown if unicodedata.category(c) == "Mn"]
        self.assertEqual(len(kept), MAX_MARKS)
        self.assertTrue(shown.startswith("a\u0300\u0301\u0302\u0303\\u0304\\u0305"), shown)
        self.assertTrue(shown.endswith("\\u0309b"), shown)

    def test_marks_of_every_script_count(self) -> None:
        # Hebrew points, Cyrillic and kana marks sit in blocks the fast path mostly skips.
        for base, marks in (("\u05d0", "\u05b0\u05b1\u05b2\u05b3\u05b4\u05b5\u05b6"), ("\u0430", "\u0483\u0484\u0485\u0486\u0487\u0488"),
                            ("\u304b", "\u3099\u309a\u3099\u309a\u3099\u309a"), ("x", "\u20dd\u20de\u20df\u20e0\u20dd\u20de")):
            with self.subTest(base=base):
                shown = printable(base + marks)
                self.assertEqual(sum(1 for c in shown if c in marks), MAX_MARKS, ascii(shown))

    def test_ordinary_accents_and_vowel_signs_are_left_alone(self) -> None:
        text = ("Vie\u0302\u0323t Nam; \u0915\u094d\u0937\u093f; \u05e9\u05c1\u05bc\u05b8\u05c1\u05dd; "
                "\u0e01\u0e34\u0e48; e\u0301\u0327")
        self.assertEqual(printable(text), text)
        self.assertEqual(one_line(text), text)

    def test_marks_apart_from_each_other_are_not_a_pile(self) -> None:
        text = "a\u0301\u0301b\u0301\u0301c\u0301\u0301 \u0301\u0301"
        self.assertEqual(printable(text), text)

    def test_no_mark_is_skipped_by_the_fast_path(self) -> None:
        from bot_bottle.terminal import _CANDIDATE

        skipped = [hex(c) for c in range(0x110000)
                   if unicodedata.category(chr(c)) in ("Mn", "Me") and not _CANDIDATE.match(chr(c))]
        self.assertEqual(skipped, [])


if __name__ == "__main__":
    unittest.main()
