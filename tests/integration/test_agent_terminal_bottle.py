"""What an agent prints reaches the operator's terminal only through the filter, in a real bottle.

The "agent" is an interactive shell (a plugin provider whose command is `sh`), started with the
real CLI (`bot-bottle start --yes`) on a pseudo-terminal this test holds as the operator's
terminal. Through it the test types what a prompt-injected agent could print: a clipboard write
(OSC 52), the same smuggled through tmux (DCS passthrough), a title report query (CSI 21 t), next
to what a TUI needs (colours, a title, cursor moves). The operator's terminal must show the
second kind and none of the first; the window size must follow the operator's (also after a
resize); and when the agent exits leaving the alternate screen on and the cursor hidden, both are
put back and what was held back is named.
"""

from __future__ import annotations

import os
import time
import unittest

from tests._docker import skip_unless_docker
from tests.integration._operator_terminal import CLIP, HOSTILE, TMUX, ShellAgentOnATerminal, set_size


@skip_unless_docker()
class TheAgentsTerminalIsFiltered(ShellAgentOnATerminal):
    def test_hostile_sequences_are_held_back_and_the_terminal_given_back(self) -> None:
        self.start_agent()
        at = self.until(b"READY", timeout=600, after=self.type("echo RE''ADY"))  # the quotes: not the echo of the typing
        at = self.until(b"M5M6", after=self.type(HOSTILE))
        shown = self.seen[at - 400:at + 4]
        self.assertIn(b"M1\x1b[31mred\x1b[0mM2", shown)  # colours pass
        self.assertIn(b"M2\x1b]0;bottle-title\x07M3", shown)  # a title passes
        self.assertIn(b"M3M4", shown)  # the clipboard write did not
        self.assertIn(b"M4M5", shown)  # nor the tmux passthrough
        self.assertIn(b"M5M6", shown)  # nor the title report query
        self.assertNotIn(CLIP, self.seen)
        self.assertNotIn(TMUX, self.seen)

        at = self.until(b"SIZE 40 140", after=self.type("echo SIZE $(stty size)"))
        set_size(self.fd, 30, 100)
        time.sleep(1)
        self.until(b"SIZE 30 100", after=self.type("echo SIZE $(stty size)"))

        mark = self.type(r"printf '\033[?1049h\033[?25l'; exit 3")
        held = self.until(b"held back", timeout=120, after=mark)  # the relay's line once the agent ended
        end = self.seen[mark:held]
        self.assertIn(b"\x1b[?1049l", end)  # the alternate screen left
        self.assertIn(b"\x1b[?25h", end)  # the cursor shown again
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and self._read(0.5):
            pass
        _, status = os.waitpid(self.pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 3, self.seen[-2000:])
        summary = self.seen[self.seen.find(b"held back", mark):][:300]
        self.assertIn(b"clipboard", summary)


if __name__ == "__main__":
    unittest.main()
