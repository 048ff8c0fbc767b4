"""The filter between what an agent prints and the operator's terminal: what passes byte for
byte, what is held back and counted, the modes finish() puts back, and that no held-back kind gets
through however the stream is split or disguised."""

from __future__ import annotations

import random
import re
import unittest

from bot_bottle.screen_filter import MAX_HELD_KINDS, MAX_OSC, ScreenFilter

ESC = b"\x1b"
ST = b"\x1b\\"
BEL = b"\x07"


def run(data: bytes, chunks: list[int] | None = None) -> tuple[bytes, ScreenFilter]:
    """Feeds ``data`` (split at ``chunks`` offsets, if given) and finishes; returns all output."""
    screen = ScreenFilter()
    cuts = [0, *(chunks or []), len(data)]
    out = b"".join(screen.feed(data[a:b]) for a, b in zip(cuts, cuts[1:]))
    return out + screen.finish(), screen


def feed_only(data: bytes) -> tuple[bytes, ScreenFilter]:
    screen = ScreenFilter()
    return screen.feed(data), screen


# Sequences Claude Code (Ink) and Codex (crossterm/ratatui) print, and other ordinary TUI output.
ALLOWED = [
    b"plain text\r\n\ttabbed\x08\x07\x0b\x0c\x00",
    b"\x1b[1;31mred\x1b[0m", b"\x1b[38;5;208m", b"\x1b[38;2;10;20;30m", b"\x1b[38:2::10:20:30m",
    b"\x1b[4:3m", b"\x1b[m", b"\x1b[2J\x1b[H\x1b[3;4H\x1b[K\x1b[2K\x1b[1A\x1b[G\x1b[10C",
    b"\x1b[5;20r", b"\x1b[r", b"\x1b[2S\x1b[3T\x1b[4L\x1b[2M\x1b[3P\x1b[5@\x1b[6X",
    b"\x1b[?1049h", b"\x1b[?1049l", b"\x1b[?25l", b"\x1b[?25h", b"\x1b[?2004h", b"\x1b[?1004h",
    b"\x1b[?2026h", b"\x1b[?2026l", b"\x1b[?1000h\x1b[?1002h\x1b[?1003h\x1b[?1006h\x1b[?1015h",
    b"\x1b[?1000;1006h", b"\x1b[?2026$p", b"\x1b[6n", b"\x1b[c", b"\x1b[>c", b"\x1b[>0q",
    b"\x1b[>1u", b"\x1b[>7u", b"\x1b[<u", b"\x1b[<1u", b"\x1b[?u", b"\x1b[=5;1u", b"\x1b[2 q",
    b"\x1b[>4;2m", b"\x1b[>4;0m", b"\x1b[?7l", b"\x1b[4h", b"\x1b[14t", b"\x1b[14;2t", b"\x1b[16t",
    b"\x1b[18t", b"\x1b[19t", b"\x1b[22;0t", b"\x1b[23;0t", b"\x1b[22t",
    b"\x1b7\x1b8\x1b=\x1b>\x1bM\x1bD\x1bE\x1bc\x1b(B\x1b)0\x1b(0\x1b#8\x1b F",
    b"\x0e\x0f",
    b"\x1b]0;title\x07", b"\x1b]1;icon" + ST, b"\x1b]2;\xe2\x9c\xb3 Claude Code\x07",
    b"\x1b]4;1;rgb:ff/00/00\x07", b"\x1b]4;1;?" + ST, b"\x1b]5;0;?\x07",
    b"\x1b]10;?\x07", b"\x1b]11;?" + ST, b"\x1b]12;#ff0000\x07", b"\x1b]19;?\x07",
    b"\x1b]104\x07", b"\x1b]104;1\x07", b"\x1b]105\x07", b"\x1b]110\x07", b"\x1b]111" + ST,
    b"\x1b]119\x07", b"\x1b]8;;https://example.com/a?b=c\x07link\x1b]8;;\x07",
    b"\x1b]8;id=1;https://example.com/x" + ST + b"x" + b"\x1b]8;;" + ST,
    b"\x1b]9;4;1;50\x07", b"\x1b]9;4;3" + ST, b"\x1b]9;4;0\x07", b"\x1b]9;4\x07",
    b"\x1b]133;A\x07", b"\x1b]133;D;0" + ST,
    b"\x1b]9;Codex wants your attention\x07", b"\x1b]9;Claude is waiting for your input" + ST,
    b"\x1b]777;notify;Claude Code;Task done\x07",
    "é ŝ → 漢字 ✳ 😀 €".encode(), b"\x18\x1a",  # CAN and SUB outside a sequence
]

HELD = [
    (b"\x1b]52;c;aGVsbG8=\x07", "clipboard access (OSC 52)"),
    (b"\x1b]52;c;?" + ST, "clipboard access (OSC 52)"),
    (b"\x1b]0052;c;aGVsbG8=\x07", "clipboard access (OSC 52)"),
    (b"\x1b]1337;File=name=eA==;inline=0:aGVsbG8=\x07", "iTerm2 command (OSC 1337)"),
    (b"\x1b]1337;SetUserVar=a=Yg==\x07", "iTerm2 command (OSC 1337)"),
    (b"\x1b]5113;ac=send;id=1" + ST, "kitty file transfer (OSC 5113)"),
    (b"\x1b]50;#+1\x07", "font change (OSC 50)"),
    (b"\x1b]7;file://host/tmp\x07", "working directory (OSC 7)"),
    (b"\x1b]9;7;cmd.exe\x07", "terminal command (OSC 9)"),
    (b"\x1b]9;9;/tmp\x07", "terminal command (OSC 9)"),
    (b"\x1b]9;12\x07", "terminal command (OSC 9)"),
    (b"\x1b]9\x07", "terminal command (OSC 9)"),
    (b"\x1b]9;4;1;50;9\x07", "terminal command (OSC 9)"),
    (b"\x1b]9;ding\x05dong\x07", "malformed OSC 9"),
    (b"\x1b]99;i=1:d=0;Hello" + ST, "notification (OSC 99)"),
    (b"\x1b]777;preexec\x07", "terminal command (OSC 777)"),
    (b"\x1b]633;E;ls\x07", "other OSC 633"),
    (b"\x1b]7501;?\x07", "unknown terminal query (OSC 7501)"),
    (b"\x1b]7501;?x\x07", "other OSC 7501"),
    (b"\x1b]7501;state=working\x07", "agent status report (OSC 7501)"),
    (b"\x1b]7501;state=clear" + ST, "agent status report (OSC 7501)"),
    (b"\x1b]7501;state=idle:app=codex\x07", "agent status report (OSC 7501)"),
    (b"\x1b]7501;state=a b\x07", "other OSC 7501"),
    (b"\x1b]7501;state=idle:app=a b\x07", "other OSC 7501"),
    (b"\x1b]7501;cmd=rm\x07", "other OSC 7501"),
    (b"\x1b]21337;status=Working;indicator=;status-color=#ff9500;detail=tests\x07", "agent status report (OSC 21337)"),
    (b"\x1b]21337;exec=sh\x07", "other OSC 21337"),
    (b"\x1b]21337;status=a;exec=sh\x07", "other OSC 21337"),
    (b"\x1b]52;?\x07", "clipboard access (OSC 52)"),
    (b"\x1b]22;pointer\x07", "other OSC 22"),
    (b"\x1b]L;label\x07", "other OSC"),
    (b"\x1b]\x07", "other OSC"),
    (b"\x1b]0;bad\x05title\x07", "malformed OSC 0"),
    (b"\x1b]0;bad\xc2\x85title\x07", "malformed OSC 0"),
    (b"\x1b]0;bad\xfftitle\x07", "malformed OSC 0"),
    (b"\x1bPtmux;\x1b\x1b]52;c;eA==\x07" + ST, "tmux passthrough (DCS)"),
    (b"\x1bP$qm" + ST, "device control string (DCS)"),
    (b"\x1bP+q544e" + ST, "device control string (DCS)"),
    (b"\x1b_Gf=100,a=T;AAAA" + ST, "application command (APC)"),
    (b"\x1b^privacy" + ST, "privacy message (PM)"),
    (b"\x1bXstring" + ST, "start of string (SOS)"),
    (b"\x1b[21t", "title report (CSI 21 t)"),
    (b"\x1b[20t", "title report (CSI 20 t)"),
    (b"\x1b[021t", "title report (CSI 21 t)"),
    (b"\x1b[2t", "window operation (CSI 2 t)"),
    (b"\x1b[3;0;0t", "window operation (CSI 3 t)"),
    (b"\x1b[8;50;100t", "window operation (CSI 8 t)"),
    (b"\x1b[11t", "window operation (CSI 11 t)"),
    (b"\x1b[t", "window operation (CSI t)"),
    (b"\x1b[>2t", "window operation (CSI t)"),
    (b"\x1b[1 t", "window operation (CSI t)"),
    (b"\x1b[1;1;1;1;1;1*y", "screen checksum request (DECRQCRA)"),
    (b"\x1b[5i", "printer control (CSI i)"),
    (b"\x1b[62;1\"p", "conformance level change (DECSCL)"),
    (b"\x1b G", "conformance level change (ESC SP)"),
    (b"\x1b%@", "character set mode switch (ESC %)"),
    (b"\x05", "answerback request (ENQ)"),
    (b"\xc2\x9b31m", "8-bit control (C1)"),
    (b"\xc2\x9d52;c;aGVsbG8=\x07", "8-bit control (C1)"),
    (b"\xc2\x9d0;title\xc2\x9c", "8-bit control (C1)"),
    (b"\xc2\x90tmux;x" + ST, "8-bit control (C1)"),
    (b"\xc2\x9fGa=T" + ST, "8-bit control (C1)"),
    (b"\xc2\x85", "8-bit control (C1)"),
    (b"\xc2\x9c", "8-bit control (C1)"),
]


class Allowed(unittest.TestCase):
    def test_each_allowed_sequence_passes_unchanged(self) -> None:
        for seq in ALLOWED:
            with self.subTest(seq=seq):
                out, screen = feed_only(seq)
                self.assertEqual(out, seq)
                self.assertEqual(screen.held, {})
                self.assertIsNone(screen.summary())

    def test_allowed_sequences_together_pass_unchanged(self) -> None:
        stream = b"x".join(ALLOWED)
        out, screen = feed_only(stream)
        self.assertEqual(out, stream)
        self.assertEqual(screen.held, {})

    def test_utf8_text_with_continuation_bytes_0x80_to_0x9f_passes(self) -> None:
        text = "é ŝ œ → ← ✳ ✔ 漢字かな 한국 Ω ∑ 😀 👍🏽 🇫🇷 \u00a0 \u00ff \U0010fffd".encode()
        # ŝ ends in 0x9D, a C1 OSC as a lone byte
        self.assertIn(b"\xc5\x9d", text)
        self.assertIn(b"\xe2\x86\x92", text)
        out, screen = run(text)
        self.assertEqual(out, text)
        self.assertEqual(screen.held, {})

    def test_utf8_split_inside_a_character_is_kept_for_the_next_call(self) -> None:
        screen = ScreenFilter()
        self.assertEqual(screen.feed(b"a\xf0\x9f"), b"a")
        self.assertEqual(screen.feed(b"\x98"), b"")
        self.assertEqual(screen.feed(b"\x80b"), "😀b".encode())

    def test_plain_text_is_never_delayed(self) -> None:
        screen = ScreenFilter()
        self.assertEqual(screen.feed(b"hello"), b"hello")
        self.assertEqual(screen.feed(b"\x1b[1mx"), b"\x1b[1mx")
        self.assertEqual(screen.feed(b"y\x1b["), b"y")
        self.assertEqual(screen.feed(b"0m"), b"\x1b[0m")

    def test_osc_title_with_utf8_passes(self) -> None:
        seq = "\x1b]0;✳ café → 漢\x07".encode()
        self.assertEqual(feed_only(seq)[0], seq)


class Held(unittest.TestCase):
    def test_each_held_sequence_is_held_back_and_counted(self) -> None:
        for seq, kind in HELD:
            with self.subTest(seq=seq):
                out, screen = run(b"a" + seq + b"b")
                self.assertEqual(out, b"ab")
                self.assertEqual(screen.held, {kind: 1})

    def test_counts_add_up_per_kind(self) -> None:
        osc52 = b"\x1b]52;c;eA==\x07"
        _, screen = run(osc52 * 3 + b"\x05\x05")
        self.assertEqual(screen.held, {"clipboard access (OSC 52)": 3, "answerback request (ENQ)": 2})

    def test_held_osc_ended_by_either_terminator(self) -> None:
        for term in (BEL, ST):
            out, screen = run(b"\x1b]52;c;eA==" + term + b"after")
            self.assertEqual(out, b"after")
            self.assertEqual(screen.held, {"clipboard access (OSC 52)": 1})

    def test_bel_does_not_end_a_dcs(self) -> None:
        # As in xterm: only ST (or a cancel) ends a DCS, so the text after BEL is still its body.
        out, screen = run(b"\x1bPtmux;x\x07hidden" + ST + b"shown")
        self.assertEqual(out, b"shown")
        self.assertEqual(screen.held, {"tmux passthrough (DCS)": 1})


class Cancels(unittest.TestCase):
    def test_esc_inside_osc_cancels_it_and_starts_a_new_sequence(self) -> None:
        out, screen = run(b"\x1b]0;title\x1b[1mbold")
        self.assertEqual(out, b"\x1b[1mbold\x1b[0m")
        self.assertEqual(screen.held, {"unterminated OSC 0": 1})

    def test_esc_inside_held_osc_starts_an_allowed_sequence(self) -> None:
        out, screen = run(b"\x1b]52;c;eA==\x1b]0;t\x07")
        self.assertEqual(out, b"\x1b]0;t\x07")
        self.assertEqual(screen.held, {"clipboard access (OSC 52)": 1})

    def test_nested_osc_inside_an_allowed_osc(self) -> None:
        out, screen = run(b"\x1b]0;\x1b]52;c;eA==\x07\x1b\\x")
        self.assertEqual(out, b"\x1b\\x")  # a lone ST is harmless: nothing is left open
        self.assertEqual(screen.held, {"unterminated OSC 0": 1, "clipboard access (OSC 52)": 1})

    def test_8bit_introducer_inside_a_7bit_sequence(self) -> None:
        out, screen = run(b"\x1b[\xc2\x9b21t\x1b\xc2\x9d52;c;eA==\x07")
        self.assertEqual(out, b"")
        self.assertEqual(screen.held, {"malformed escape sequence": 2, "8-bit control (C1)": 2})

    def test_can_and_sub_cancel_strings(self) -> None:
        for cancel in (b"\x18", b"\x1a"):
            with self.subTest(cancel=cancel):
                out, screen = run(b"\x1b]52;c;eA==" + cancel + b"rest" + BEL)
                self.assertEqual(out, b"rest\x07")
                self.assertEqual(screen.held, {"clipboard access (OSC 52)": 1})
                out, screen = run(b"\x1bPtmux;" + cancel + b"rest")
                self.assertEqual(out, b"rest")

    def test_can_cancels_a_csi(self) -> None:
        out, screen = run(b"\x1b[21\x18t")
        self.assertEqual(out, b"t")
        self.assertEqual(screen.held, {"malformed escape sequence": 1})

    def test_control_inside_csi_drops_the_csi_and_is_read_from_ground(self) -> None:
        # xterm would run the BEL and go on with the CSI; the terminal never sees the CSI's start.
        out, screen = run(b"\x1b[2\x071t")
        self.assertEqual(out, b"\x071t")
        self.assertEqual(screen.held, {"malformed escape sequence": 1})

    def test_control_after_esc_cannot_join_esc_and_bracket(self) -> None:
        for ctl in (b"\x07", b"\x05", b"\x00", b"\x7f"):
            with self.subTest(ctl=ctl):
                out, _ = run(b"\x1b" + ctl + b"]52;c;eA==\x07")
                self.assertNotIn(b"\x1b", out)

    def test_esc_esc_keeps_the_second(self) -> None:
        out, _ = run(b"\x1b\x1b[1mx")
        self.assertEqual(out, b"\x1b[1mx\x1b[0m")

    def test_8bit_st_ends_a_held_osc_and_what_follows_is_ground(self) -> None:
        # The terminal never saw the OSC's start, so the BEL after it is a plain BEL to any
        # terminal, whether it reads U+009C as ST or not.
        out, screen = run(b"\x1b]52;c;eA==\xc2\x9c\x07tail")
        self.assertEqual(out, b"\x07tail")
        self.assertEqual(screen.held, {"clipboard access (OSC 52)": 1})

    def test_8bit_st_in_an_allowed_osc_holds_it_back(self) -> None:
        out, screen = run(b"\x1b]0;title\xc2\x9cafter")
        self.assertEqual(out, b"after")
        self.assertEqual(screen.held, {"malformed OSC 0": 1})

    def test_tmux_passthrough_is_held_back_as_one(self) -> None:
        out, screen = run(b"a\x1bPtmux;\x1b\x1b]52;c;eA==\x07\x1b\x1b[21t\x1b\\b")
        self.assertEqual(out, b"ab")
        self.assertEqual(screen.held, {"tmux passthrough (DCS)": 1})

    def test_8bit_osc_then_7bit_terminator(self) -> None:
        out, screen = run(b"\xc2\x9d52;c;eA==" + ST + b"x")
        self.assertEqual(out, b"x")
        self.assertEqual(screen.held, {"8-bit control (C1)": 1})


class Unfinished(unittest.TestCase):
    def test_unterminated_strings_are_dropped_at_finish(self) -> None:
        cases = [
            (b"\x1b]0;title", "unterminated OSC 0"),
            (b"\x1b]52;c;eA==", "clipboard access (OSC 52)"),
            (b"\x1bPtmux;\x1b", "tmux passthrough (DCS)"),
            (b"\x1b_Ga=T", "application command (APC)"),
            (b"\x1b[1;3", "unfinished escape sequence"),
            (b"\x1b", "unfinished escape sequence"),
            (b"\xc2\x9b1", "unfinished escape sequence"),
            (b"\x1b(", "unfinished escape sequence"),
        ]
        for seq, kind in cases:
            with self.subTest(seq=seq):
                screen = ScreenFilter()
                self.assertEqual(screen.feed(b"a" + seq), b"a")
                self.assertEqual(screen.finish(), b"")
                self.assertEqual(screen.held, {kind: 1})

    def test_a_character_cut_at_the_end_shows_as_a_replacement(self) -> None:
        out, screen = run(b"a\xe2\x86")
        self.assertEqual(out, "a\ufffd".encode())
        self.assertEqual(screen.held, {})


class Caps(unittest.TestCase):
    def test_long_allowed_osc_is_held_back_whole(self) -> None:
        seq = b"\x1b]0;" + b"t" * (MAX_OSC + 10) + BEL
        out, screen = run(b"a" + seq + b"b")
        self.assertEqual(out, b"ab")
        self.assertEqual(screen.held, {"oversized OSC 0": 1})

    def test_osc_at_the_cap_passes(self) -> None:
        seq = b"\x1b]0;" + b"t" * (MAX_OSC - 2) + BEL
        self.assertEqual(run(seq)[0], seq)

    def test_never_terminated_osc_does_not_grow_memory(self) -> None:
        screen = ScreenFilter()
        screen.feed(b"\x1b]0;")
        for _ in range(200):
            self.assertEqual(screen.feed(b"x" * 4096), b"")
        self.assertLessEqual(len(screen._string.payload), MAX_OSC)  # noqa: SLF001
        screen.feed(BEL + b"ok")
        self.assertEqual(screen.held, {"oversized OSC 0": 1})

    def test_huge_clipboard_write_is_named_as_such(self) -> None:
        out, screen = run(b"\x1b]52;c;" + b"QUFB" * 10000 + BEL + b"z")
        self.assertEqual(out, b"z")
        self.assertEqual(screen.held, {"clipboard access (OSC 52)": 1})

    def test_long_csi_is_dropped_and_its_rest_read_as_text(self) -> None:
        out, screen = run(b"\x1b[" + b"1;" * 400 + b"21t")
        self.assertNotIn(b"\x1b", out)
        self.assertEqual(screen.held, {"malformed escape sequence": 1})


class StrayBytes(unittest.TestCase):
    def test_stray_c1_bytes_are_replaced(self) -> None:
        for byte in (b"\x9b", b"\x9d", b"\x90", b"\x80", b"\x9f"):
            with self.subTest(byte=byte):
                out, screen = run(b"a" + byte + b"31m")
                self.assertEqual(out, "a\ufffd31m".encode())
                self.assertEqual(screen.held, {})

    def test_invalid_utf8_is_replaced_byte_by_byte(self) -> None:
        cases = [
            (b"\xc0\xaf", "\ufffd\ufffd"),  # overlong
            (b"\xed\xa0\x80", "\ufffd" * 3),  # surrogate
            (b"\xe2\x86A", "\ufffd\ufffdA"),  # cut short
            (b"\xff\xfe", "\ufffd\ufffd"),
            (b"\xe0\x9b\x80", "\ufffd" * 3),  # overlong whose second byte is 0x9B
            (b"\xc2\x1b[1m", "\ufffd\x1b[1m"),
        ]
        for data, text in cases:
            with self.subTest(data=data):
                out, _ = feed_only(data)
                self.assertEqual(out, text.encode())


class Summary(unittest.TestCase):
    def test_none_when_nothing_held(self) -> None:
        self.assertIsNone(run(b"\x1b[1mhi\x1b]0;t\x07")[1].summary())

    def test_wording(self) -> None:
        tmux = b"\x1bPtmux;\x1b\x1b]52;c;eA==\x07\x1b\\"
        _, screen = run(b"\x1b]52;c;eA==\x07" + b"\x1b]52;c;eA==" + ST + tmux.replace(b"\x1b\x1b", b"\x1b"))
        self.assertEqual(
            screen.summary(),
            "held back 4 terminal sequences the agent printed: clipboard access (OSC 52) x3, "
            "tmux passthrough (DCS) x1")

    def test_singular(self) -> None:
        _, screen = run(b"\x05")
        self.assertEqual(screen.summary(), "held back 1 terminal sequence the agent printed: "
                         "answerback request (ENQ) x1")


    def test_many_numbered_kinds_stay_bounded_and_counted(self) -> None:
        # Each unknown OSC number is a kind of its own: an agent printing thousands of them must
        # grow neither the host's memory nor the operator's line, and lose none of the count.
        numbered = b"".join(b"\x1b]%d;x\x07" % n for n in range(1000, 11000))
        queries = b"".join(b"\x1b]%d;?\x07" % n for n in range(20000, 21000))
        out, screen = run(b"\x1b]52;c;eA==\x07" + numbered + queries + b"done")
        self.assertEqual(out, b"done")
        self.assertLessEqual(len(screen.held), MAX_HELD_KINDS + 2)
        self.assertEqual(sum(screen.held.values()), 1 + 10000 + 1000)
        summary = screen.summary()
        self.assertLess(len(summary), 2000)
        self.assertIn("held back 10001 terminal sequences", summary)  # the quiet queries stay quiet
        self.assertIn("clipboard access (OSC 52) x1", summary)
        self.assertIn("other kinds x", summary)


class Finish(unittest.TestCase):
    def test_nothing_when_nothing_changed(self) -> None:
        for data in (b"", b"hello\r\n", b"\x1b[1mx\x1b[0m", b"\x1b[?1049h\x1b[?1049l", b"\x1b[?25l\x1b[?25h",
                     b"\x1b[>1u\x1b[<u", b"\x1b]0;t\x07\x1b[2J\x1b[H", b"\x0e\x0f", b"\x1b(0\x1b(B",
                     b"\x1b]10;?\x07\x1b]11;?\x1b\\\x1b]4;1;?\x07", b"\x1b]11;red\x07\x1b]111\x07",
                     b"\x1b]4;1;red\x07\x1b]104\x07"):
            with self.subTest(data=data):
                out, _ = run(data)
                self.assertEqual(out, feed_only(data)[0])

    def test_each_tracked_mode(self) -> None:
        cases = [
            (b"\x1b[?1049h", b"\x1b[?1049l"),
            (b"\x1b[?1047h", b"\x1b[?1047l"),
            (b"\x1b[?47h", b"\x1b[?47l"),
            (b"\x1b[?25l", b"\x1b[?25h"),
            (b"\x1b[?1000h", b"\x1b[?1000l"),
            (b"\x1b[?1002;1006h", b"\x1b[?1002l\x1b[?1006l"),
            (b"\x1b[?1003h", b"\x1b[?1003l"),
            (b"\x1b[?1004h", b"\x1b[?1004l"),
            (b"\x1b[?2004h", b"\x1b[?2004l"),
            (b"\x1b[?2026h", b"\x1b[?2026l"),
            (b"\x1b[?1h", b"\x1b[?1l"),
            (b"\x1b[?7l", b"\x1b[?7h"),
            (b"\x1b[>1u", b"\x1b[<1u"),
            (b"\x1b[>1u\x1b[>3u", b"\x1b[<2u"),
            (b"\x1b[>1u\x1b[>3u\x1b[<u", b"\x1b[<1u"),
            (b"\x1b[=3;1u", b"\x1b[=0;1u"),
            (b"\x1b[>4;2m", b"\x1b[>4;0m"),
            (b"\x1b=", b"\x1b>"),
            (b"\x0e", b"\x0f"),
            (b"\x1bn", b"\x0f"),
            (b"\x1b(0", b"\x1b(B"),
            (b"\x1b[1;31m", b"\x1b[0m"),
            (b"\x1b[38:2::1:2:3m", b"\x1b[0m"),
            (b"\x1b[4h", b"\x1b[4l"),
            (b"\x1b[12l", b"\x1b[12h"),
            (b"\x1b[5;20r", b"\x1b7\x1b[r\x1b8"),
            (b"\x1b[3 q", b"\x1b[0 q"),
            (b"\x1b[3g", b"\x1b[?5W"),
            (b"\x1b[1;1'z", b"\x1b[0'z"),
            (b"\x1b]4;1;rgb:ff/00/00\x07", b"\x1b]104\x1b\\"),
            (b"\x1b]5;0;#ffffff\x1b\\", b"\x1b]105\x1b\\"),
            (b"\x1b]11;#000000\x07", b"\x1b]111\x1b\\"),
            (b"\x1b]10;#000000;?;red\x07", b"\x1b]110\x1b\\\x1b]112\x1b\\"),
        ]
        for data, restore in cases:
            with self.subTest(data=data):
                screen = ScreenFilter()
                self.assertEqual(screen.feed(data), data)
                self.assertEqual(screen.finish(), restore)
                self.assertEqual(screen.finish(), b"")  # the modes are back: nothing more to do

    def test_order_input_modes_then_alt_screen_then_main_screen(self) -> None:
        screen = ScreenFilter()
        screen.feed(b"\x1b[>1u\x1b[?1049h\x1b[>7u\x1b[?25l\x1b[?2004h\x1b[?1002;1006h\x1b[1m"
                    b"\x1b[?2026h\x1b[>4;2m")
        self.assertEqual(screen.finish(),
                         b"\x1b[?2026l\x1b[<1u\x1b[?1002l\x1b[?1006l\x1b[?2004l\x1b[?1049l"
                         b"\x1b[<1u\x1b[>4;0m\x1b[?25h\x1b[0m")

    def test_claude_code_style_session_that_cleans_up_needs_only_an_sgr_reset(self) -> None:
        # Startup and shutdown bytes as Claude Code prints them, around a frame. Its last SGR
        # (39, default colour) is not a full reset: finish() adds one, which shows nothing.
        session = (b"\x1b[>0q\x1b[c\x1b[?2004h\x1b[?1004h\x1b[>1u\x1b[?25l\x1b]0;\xe2\x9c\xb3 Claude Code\x07"
                   b"\x1b[?2026h\x1b[2K\x1b[1A\x1b[2K\x1b[G\x1b[38;2;215;119;87m\xe2\x95\xad\x1b[39m"
                   b"\x1b]8;;https://example.com\x07link\x1b]8;;\x07\x1b[?2026l"
                   b"\x1b[?2026l\x1b[<u\x1b[?1004l\x1b[?2004l\x1b[?25h")
        out, screen = run(session)
        self.assertEqual(out, session + b"\x1b[0m")
        self.assertEqual(screen.held, {})

    def test_codex_style_session_that_cleans_up_needs_nothing(self) -> None:
        session = (b"\x1b[>4;0m\x1b[>7u\x1b[?2004h\x1b[?1004h\x1b]10;?\x1b\\\x1b]11;?\x1b\\\x1b[?u\x1b[c"
                   b"\x1b[1;30r\x1b[30;1H\x1bM\x1b[r\x1b[?1049h\x1b[H\x1b[1mx\x1b[0m\x1b[?1049l"
                   b"\x1b[<1u\x1b[<u\x1b[>4;0m\x1b[?2004l\x1b[?1004l\x1b[?25h")
        out, screen = run(session)
        self.assertEqual(out, session)
        self.assertEqual(screen.held, {})

    def test_full_reset_forgets_modes(self) -> None:
        out, _ = run(b"\x1b[?1049h\x1b[?25l\x1bc")
        self.assertEqual(out, b"\x1b[?1049h\x1b[?25l\x1bc")

    def test_held_sequences_change_no_mode(self) -> None:
        out, _ = run(b"\xc2\x9b?1049h\xc2\x9b?25l")
        self.assertEqual(out, b"")


# A stream mixing everything, for the split tests.
TRICKY = b"".join([
    "héllo ŝ → 漢 😀".encode(), b"\x1b[1;38;2;1;2;3m", b"\x1b]0;\xe2\x9c\xb3 t\x07",
    b"\x1b]52;c;aGVsbG8=\x07", b"\x1bPtmux;\x1b\x1b]52;c;eA==\x07\x1b\\", b"\x05", b"\xc2\x9b21t",
    b"\x9b", b"\x1b[21t", b"\x1b[18t", b"\x1b]8;;http://x\x1b\\l\x1b]8;;\x1b\\", b"\x1b]9;4;1;5\x1b\\",
    b"\x1b]9;7;run\x07", b"\x1b_Ga=T\x1b\\", b"\x1b]0;cut\x1b[2K", b"\x1b]52;\x18x", b"\x1b[?1049h",
    b"\x1b[>1u", b"\x1b(0q\x1b(B", b"\xe2\x86", b"\x92", b"\x1b[2\x07m", b"\x1b%@", b"\xc2\x9d0;x\xc2\x9c",
    b"\x1b\x1b[0m", b"\x1b]1337;File=x:YQ==\x07", b"tail \xf0\x9f\x98",
])


def _random_cuts(rng: random.Random, length: int) -> list[int]:
    count = rng.randint(1, 12)
    return sorted(rng.sample(range(1, length), min(count, length - 1)))


class Streaming(unittest.TestCase):
    def test_split_at_every_position_gives_the_same_output(self) -> None:
        whole, screen = run(TRICKY)
        for cut in range(1, len(TRICKY)):
            with self.subTest(cut=cut):
                out, split = run(TRICKY, [cut])
                self.assertEqual(out, whole)
                self.assertEqual(split.held, screen.held)

    def test_one_byte_at_a_time_gives_the_same_output(self) -> None:
        whole, screen = run(TRICKY)
        out, split = run(TRICKY, list(range(1, len(TRICKY))))
        self.assertEqual(out, whole)
        self.assertEqual(split.held, screen.held)

    def test_random_splits_of_a_long_stream(self) -> None:
        rng = random.Random(1234)
        stream = TRICKY * 20
        whole, screen = run(stream)
        for _ in range(60):
            cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(1, 400)))
            out, split = run(stream, cuts)
            self.assertEqual(out, whole)
            self.assertEqual(split.held, screen.held)

    def test_expected_output_of_the_tricky_stream(self) -> None:
        whole, _ = run(TRICKY)
        check_safe(self, whole)
        self.assertIn(b"\x1b]0;\xe2\x9c\xb3 t\x07", whole)
        self.assertIn(b"\x1b]9;4;1;5\x1b\\", whole)
        self.assertIn("→".encode(), whole)


# An independent reference reader of what reached the terminal: everything in it must be a
# complete, allowed sequence, or valid UTF-8 text without C1 code points or ENQ.
_REF_OSC_ALLOWED = {0, 1, 2, 4, 5, 8, 104, 105, 133, *range(10, 20), *range(110, 120)}
_REF_WINDOW_OK = {14, 16, 18, 19, 22, 23}


def check_safe(test: unittest.TestCase, out: bytes) -> None:
    text = out.decode("utf-8")  # what passes is always valid UTF-8
    test.assertIsNone(re.search("[\x05\x80-\x9f]", text), out)
    i = 0
    while True:
        i = out.find(b"\x1b", i)
        if i < 0:
            return
        test.assertLess(i + 1, len(out), f"lone ESC at the end of {out!r}")
        kind = out[i + 1]
        if kind == ord("["):
            j = i + 2
            while j < len(out) and 0x30 <= out[j] <= 0x3F:
                j += 1
            params_end = j
            while j < len(out) and 0x20 <= out[j] <= 0x2F:
                j += 1
            test.assertLess(j, len(out), out)
            test.assertTrue(0x40 <= out[j] <= 0x7E, f"CSI without a final in {out!r}")
            if out[j] == ord("t"):
                first = out[i + 2:params_end].split(b";")[0]
                test.assertTrue(first.isdigit() and int(first) in _REF_WINDOW_OK, out)
                test.assertEqual(params_end, j)
            test.assertNotEqual(out[j], ord("i"))
            i = j + 1
        elif kind == ord("]"):
            ends = [p for p in (out.find(b"\x07", i), out.find(b"\x1b", i + 2)) if p >= 0]
            test.assertTrue(ends, out)
            end = min(ends)
            if out[end] == 0x1B:
                test.assertEqual(out[end + 1:end + 2], b"\\", f"OSC not ended by ST in {out!r}")
            body = out[i + 2:end]
            number = body.split(b";")[0]
            test.assertTrue(number.isdigit(), body)
            test.assertTrue(int(number) in _REF_OSC_ALLOWED
                            or (int(number) == 9 and re.fullmatch(rb"\d+;4(;\d*){0,2}", body))
                            or (int(number) == 9 and re.fullmatch(rb"\d+;(?!\d+(;|$)).+", body))  # text
                            or re.match(rb"777;notify;", body), body)
            test.assertIsNone(re.search(rb"[\x00-\x1f\x7f]", body))
            i = end + 1
        else:
            test.assertNotIn(kind, b"PX^_%", f"string or charset switch passed in {out!r}")
            test.assertTrue(0x20 <= kind <= 0x7E, out)
            if kind == 0x20:
                test.assertEqual(out[i + 2:i + 3], b"F")
            i += 2


_TOKENS = [
    b"\x1b", b"[", b"]", b"P", b"_", b"^", b"X", b"\\", b"\x07", b"\x18", b"\x1a", b"\x05", b"\x9b",
    b"\x9d", b"\x9c", b"\xc2", b"\xc2\x9b", b"\xc2\x9d", b"\xc2\x9c", b"\xc2\x90", b"52", b"0", b"9",
    b"4", b";", b"c;", b"21", b"t", b"m", b"?", b"1049h", b"tmux;", b"1337", b"%", b"@", b" ", b"G",
    b"\xe2\x86\x92", b"\xc5\x9d", b"\xf0\x9f\x98\x80", b"\xe2", b"abc", b"\x00", b"\x7f", b"i", b"*y",
    b"\x1b]", b"\x1b[", b"\x1b\\", b"\x1bP", b"\x1b]52;c;", b"\x1b]0;", b"\x1b]9;4;", b"\x1b]8;;",
]


class Property(unittest.TestCase):
    def _streams(self, seed: int, count: int) -> list[bytes]:
        rng = random.Random(seed)
        streams = []
        for _ in range(count):
            parts = []
            for _ in range(rng.randint(1, 80)):
                if rng.random() < 0.15:
                    parts.append(bytes(rng.randrange(256) for _ in range(rng.randint(1, 4))))
                else:
                    parts.append(rng.choice(_TOKENS))
            streams.append(b"".join(parts))
        return streams

    def test_random_streams_never_let_a_held_kind_through(self) -> None:
        rng = random.Random(99)
        for stream in self._streams(7, 1500):
            cuts = _random_cuts(rng, len(stream)) if len(stream) > 1 else []
            out, _ = run(stream, cuts)
            with self.subTest(stream=stream):
                check_safe(self, out)

    def test_random_streams_do_not_depend_on_splits(self) -> None:
        rng = random.Random(5)
        for stream in self._streams(11, 400):
            if len(stream) < 2:
                continue
            whole, screen = run(stream)
            out, split = run(stream, _random_cuts(rng, len(stream)))
            self.assertEqual(out, whole, stream)
            self.assertEqual(split.held, screen.held)

    def test_output_passes_a_second_filter_unchanged(self) -> None:
        for stream in self._streams(13, 500):
            out, _ = feed_only(stream)
            again, screen = feed_only(out)
            self.assertEqual(again, out, stream)
            self.assertEqual(screen.held, {}, stream)


class QuietQueries(unittest.TestCase):
    def test_a_bare_query_of_an_unknown_command_is_held_but_not_named(self) -> None:
        # Claude Code asks OSC 7501 at every start: a line about it each time would teach the
        # operator to skip the summary.
        out, screen = run(b"a\x1b]7501;?\x07b")
        self.assertEqual(out, b"ab")
        self.assertEqual(screen.held, {"unknown terminal query (OSC 7501)": 1})
        self.assertIsNone(screen.summary())
        _, both = run(b"\x1b]7501;?\x07\x1b]52;c;eA==\x07")
        self.assertEqual(both.summary(), "held back 1 terminal sequence the agent printed: clipboard access (OSC 52) x1")

    def test_an_agents_status_report_is_held_but_not_named(self) -> None:
        # Codex prints OSC 7501 state= at its start and on every turn (and OSC 21337 status=).
        stream = (b"a\x1b]7501;state=idle:app=codex\x1b\\b\x1b]7501;state=working:app=codex\x07c"
                  b"\x1b]21337;status=Working;indicator=;status-color=#ff9500;detail=\x1b\\d")
        out, screen = run(stream)
        self.assertEqual(out, b"abcd")
        self.assertEqual(sum(screen.held.values()), 3)
        self.assertIsNone(screen.summary())
        _, both = run(b"\x1b]7501;state=clear\x07\x1b]7501;run=x\x07")
        self.assertEqual(both.summary(), "held back 1 terminal sequence the agent printed: other OSC 7501 x1")


if __name__ == "__main__":
    unittest.main()
