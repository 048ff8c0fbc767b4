"""A bottle that lets its agent write the operator's clipboard (`terminal: {clipboard: write}`).

The shell "agent" of test_agent_terminal_bottle.py, started with the real CLI on a terminal the
test holds, prints the same hostile line: with this bottle the clipboard write reaches the
operator's terminal byte for byte, while a clipboard query, the tmux passthrough and the title
report are still held back and named when the agent ends.
"""

from __future__ import annotations

import os
import time
import unittest

from tests._docker import skip_unless_docker
from tests.integration._operator_terminal import BOTTLE, CLIP, HOSTILE, TMUX, ShellAgentOnATerminal


@skip_unless_docker()
class TheClipboardWritePassesWhenTheBottleSaysSo(ShellAgentOnATerminal):
    PREFIX = "bb-termclip-"
    BOTTLE = BOTTLE.replace("---\n", "---\nterminal:\n  clipboard: write\n", 1)

    def test_the_write_passes_and_the_rest_is_held(self) -> None:
        self.start_agent()
        self.until(b"READY", timeout=600, after=self.type("echo RE''ADY"))
        at = self.until(b"M5M6", after=self.type(HOSTILE))
        shown = self.seen[at - 400:at + 4]
        self.assertIn(b"M3\x1b]52;c;" + CLIP + b"\x07M4", shown)  # the clipboard write, unchanged
        self.assertIn(b"M4M5", shown)  # the tmux passthrough still held
        self.assertIn(b"M5M6", shown)  # the title report query still held
        self.assertNotIn(TMUX, self.seen)
        at = self.until(b"Q1Q2", after=self.type(r"printf 'Q1\033]52;c;?\007Q2\n'"))
        self.assertNotIn(b"\x1b]52;c;?", self.seen)  # reading the clipboard: never (the typed line is echoed as text)

        mark = self.type("exit 0")
        held = self.until(b"held back", timeout=120, after=mark)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and self._read(0.5):
            pass
        _, status = os.waitpid(self.pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, self.seen[-2000:])
        summary = self.seen[held:held + 300]
        self.assertIn(b"tmux passthrough", summary)
        self.assertIn(b"clipboard access (OSC 52) x1", summary)  # the query alone


if __name__ == "__main__":
    unittest.main()
