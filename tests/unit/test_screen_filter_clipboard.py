"""A bottle that lets its agent write the operator's clipboard (``terminal: clipboard: write``):
OSC 52 writes pass, byte for byte; queries, malformed ones and everything else held stay held."""

from __future__ import annotations

import base64
import unittest

from bot_bottle.screen_filter import MAX_CLIPBOARD_OSC, MAX_OSC, ScreenFilter

ST = b"\x1b\\"
CLIPBOARD = "clipboard access (OSC 52)"


def run(data: bytes, *, clipboard_write: bool = True, cut: int | None = None) -> tuple[bytes, ScreenFilter]:
    screen = ScreenFilter(clipboard_write=clipboard_write)
    parts = [data] if cut is None else [data[:cut], data[cut:]]
    out = b"".join(screen.feed(part) for part in parts)
    return out + screen.finish(), screen


def write(text: bytes, selection: bytes = b"c", end: bytes = b"\x07") -> bytes:
    return b"\x1b]52;" + selection + b";" + base64.b64encode(text) + end


class AllowedWritesPass(unittest.TestCase):
    def test_a_write_passes_unchanged_with_either_terminator(self) -> None:
        for end in (b"\x07", ST):
            for selection in (b"c", b"", b"pc", b"s0"):
                seq = write(b"git status", selection, end)
                out, screen = run(b"a" + seq + b"b")
                self.assertEqual(out, b"a" + seq + b"b", seq)
                self.assertEqual(screen.held, {})
                self.assertIsNone(screen.summary())

    def test_a_write_split_anywhere_passes_the_same(self) -> None:
        seq = b"x" + write(b"copied text " * 50) + b"y"
        for cut in range(0, len(seq), 7):
            out, _ = run(seq, cut=cut)
            self.assertEqual(out, seq, cut)

    def test_a_long_write_passes_up_to_its_own_limit(self) -> None:
        long = write(b"x" * (MAX_OSC * 4))
        self.assertEqual(run(long)[0], long)
        too_long = b"\x1b]52;c;" + b"QUFB" * (MAX_CLIPBOARD_OSC // 4 + 1) + b"\x07"
        out, screen = run(too_long)
        self.assertEqual(out, b"")
        self.assertEqual(screen.held, {CLIPBOARD: 1})

    def test_clearing_the_clipboard_passes(self) -> None:
        self.assertEqual(run(b"\x1b]52;c;\x07")[0], b"\x1b]52;c;\x07")


class WhatStaysHeld(unittest.TestCase):
    def test_a_query_is_held(self) -> None:
        # The terminal would answer with the clipboard's content, to the agent.
        for seq in (b"\x1b]52;c;?\x07", b"\x1b]52;;?" + ST, b"\x1b]52;c;?abc\x07"):
            out, screen = run(b"a" + seq + b"b")
            self.assertEqual(out, b"ab", seq)
            self.assertEqual(screen.held, {CLIPBOARD: 1}, seq)

    def test_a_write_that_is_not_plain_base64_is_held(self) -> None:
        for seq in (b"\x1b]52;c;YWJj\x05\x07", b"\x1b]52;c;YW Jj\x07", b"\x1b]52;x;YWJj\x07",
                    b"\x1b]52;c;YWJj;ZGVm\x07", b"\x1b]52\x07", b"\x1b]52;c;YWJj===\x07"):
            out, screen = run(b"a" + seq + b"b")
            self.assertNotIn(b"52;", out, seq)
            self.assertTrue(screen.held, seq)

    def test_other_held_sequences_stay_held(self) -> None:
        for seq in (b"\x1b]1337;File=name=eA==:aGVsbG8=\x07", b"\x1bPtmux;\x1b\x1b]52;c;eA==\x07\x1b\\",
                    b"\xc2\x9d52;c;eA==\x07"):
            out, screen = run(b"a" + seq + b"b")
            self.assertNotIn(b"eA==", out, seq)
            self.assertTrue(screen.held, seq)

    def test_without_the_switch_a_write_is_held(self) -> None:
        out, screen = run(b"a" + write(b"rm -rf ~") + b"b", clipboard_write=False)
        self.assertEqual(out, b"ab")
        self.assertEqual(screen.held, {CLIPBOARD: 1})


if __name__ == "__main__":
    unittest.main()
