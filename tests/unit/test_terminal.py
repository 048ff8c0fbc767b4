"""``terminal.printable``: what an agent, a manifest or a file name puts on the operator's screen."""

from __future__ import annotations

import unicodedata
import unittest

from bot_bottle.terminal import hidden, printable


class Printable(unittest.TestCase):
    def test_format_characters_a_list_would_miss_are_escaped(self) -> None:
        # Deprecated format characters, interlinear annotation marks, musical format characters.
        for code in [*range(0x206A, 0x2070), *range(0xFFF9, 0xFFFC), *range(0x1D173, 0x1D17B)]:
            shown = printable(f"a{chr(code)}b")
            self.assertNotIn(chr(code), shown, hex(code))
            self.assertIn(f"{code:04x}", shown.lower(), hex(code))

    def test_every_control_format_surrogate_and_separator_character_is_escaped(self) -> None:
        missed = [hex(c) for c in range(0x110000)
                  if unicodedata.category(chr(c)) in ("Cc", "Cf", "Cs", "Zl", "Zp") and chr(c) not in "\t\n"
                  and chr(c) in printable(chr(c))]
        self.assertEqual(missed, [])

    def test_the_known_escapes_stay(self) -> None:
        self.assertEqual(printable("\x1b[2J\x07"), "\\x1b[2J\\x07")
        self.assertEqual(printable("\u202eok\u200b"), "\\u202eok\\u200b")
        self.assertEqual(printable("\U000e0041\U000e0101\ufe0f\u3164"), "\\U000e0041\\U000e0101\\ufe0f\\u3164")
        self.assertEqual(printable("\ud800"), "\\ud800", "a lone surrogate cannot even be encoded")

    def test_ordinary_text_is_left_alone(self) -> None:
        text = "tab\there\nline café Ελληνικά עברית 日本語 中文 한국어 🙂 ½ — [b]x[/b]"
        self.assertEqual(printable(text), text)

    def test_no_character_the_fast_path_skips_is_hidden(self) -> None:
        # printable() only looks at characters outside a few large ordinary blocks; none of
        # those may be one that needs an escape.
        from bot_bottle.terminal import _CANDIDATE

        skipped_but_hidden = [hex(c) for c in range(0x110000) if not _CANDIDATE.match(chr(c)) and hidden(chr(c))]
        self.assertEqual(skipped_but_hidden, [])


if __name__ == "__main__":
    unittest.main()
