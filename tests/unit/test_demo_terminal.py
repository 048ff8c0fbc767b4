"""The demo's terminal row: a clipboard write printed by the agent, relayed to a terminal the demo
holds. Here the "bottle" runs the print on this machine (no Docker), through the real relay and
filter; the demo itself runs it in a real bottle (tests/integration/test_demo_and_cli_lifecycle.py)."""

from __future__ import annotations

import sys
import unittest

from bot_bottle.demo import terminal as row


class LocalBottle:
    """Runs the row's command here: ``printf`` with its arguments, on whatever terminal it gets."""

    def __init__(self, *, prefix: list[str] | None = None) -> None:
        self.prefix = prefix or []

    def run_argv(self, command: list[str], *, tty: bool) -> list[str]:
        assert tty, "the row must ask for a terminal, as an interactive agent has"
        return [*self.prefix, *command]


class TerminalRow(unittest.TestCase):
    def test_the_sequence_is_held_and_the_text_shown(self) -> None:
        seen = row.print_on_a_terminal(LocalBottle())
        self.assertEqual(seen.exit_code, 0, seen.error)
        self.assertIn(row.BEFORE.encode(), seen.shown)
        self.assertIn(row.AFTER.encode(), seen.shown)
        self.assertNotIn(row.PAYLOAD.encode(), seen.shown)
        self.assertEqual(seen.held, {"clipboard access (OSC 52)": 1})
        outcome = row.evaluate(seen)
        self.assertTrue(outcome.held, outcome.observed)
        self.assertIn("clipboard access (OSC 52) x1", outcome.observed)

    def test_a_sequence_that_reached_the_terminal_fails_the_row(self) -> None:
        shown = f"{row.BEFORE}\x1b]52;c;{row.PAYLOAD}\x07{row.AFTER}\r\n".encode()
        outcome = row.evaluate(row.TerminalSeen(shown=shown, exit_code=0))
        self.assertFalse(outcome.held)
        self.assertEqual(outcome.observed, "the sequence reached the terminal")

    def test_nothing_shown_or_a_failed_run_fails_the_row(self) -> None:
        self.assertFalse(row.evaluate(row.TerminalSeen(shown=b"", exit_code=0)).held)
        failed = row.evaluate(row.TerminalSeen(exit_code=1))
        self.assertFalse(failed.held)
        self.assertIn("exit 1", failed.observed)
        missing = row.print_on_a_terminal(LocalBottle(prefix=[sys.executable, "-c", "raise SystemExit(5)"]))
        self.assertEqual(missing.exit_code, 5)
        self.assertFalse(row.evaluate(missing).held)


if __name__ == "__main__":
    unittest.main()
