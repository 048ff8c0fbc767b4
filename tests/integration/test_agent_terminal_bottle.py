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

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
import unittest
from pathlib import Path

from tests._docker import skip_unless_docker
from tests.integration import _harness as h

REPO = Path(__file__).resolve().parents[2]

PROVIDER = """\
from bot_bottle.providers import ProviderInfo

PROVIDER = ProviderInfo(
    template="shellagent",
    command="sh",
    api_host="",            # no API: no provider route, no credential
    auth_scheme="bearer",
    auth_header=None,
    default_auth_token="",
    headless_flags=("-c",),
)
"""

BOTTLE = """\
---
agent_provider:
  template: shellagent
---
"""

# What the shell is asked to print, in one line of printf: allowed and hostile sequences between
# plain markers, so that what arrives can be told apart. The payloads are made base64 by the shell,
# so that the terminal's echo of the typed line does not hold them.
HOSTILE = (r"printf 'M1\033[31mred\033[0mM2\033]0;bottle-title\007M3\033]52;c;%s\007M4"
           r"\033Ptmux;\033\033]52;c;%s\007\033\\M5\033[21tM6\n' "
           r"$(echo clip-payload | base64) $(echo tmux-payload | base64)")
CLIP = b"Y2xpcC1wYXlsb2FkCg=="  # base64 of "clip-payload\n"
TMUX = b"dG11eC1wYXlsb2FkCg=="


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


@skip_unless_docker()
class TheAgentsTerminalIsFiltered(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix="bb-term-")
        self.addCleanup(tmp.cleanup)
        self.home = Path(tmp.name)
        h.write_manifests(self.home, bottle=BOTTLE)
        plugin = self.home / ".bot-bottle" / "contrib" / "shellagent"
        plugin.mkdir(parents=True)
        (plugin / "provider.py").write_text(PROVIDER)
        self.seen = b""

    def _start(self) -> None:
        env = {**os.environ, "HOME": str(self.home), "PYTHONPATH": str(REPO), "BOT_BOTTLE_INTERNAL_NETWORK": "1",
               "TERM": "xterm-256color"}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the operator's shell: `bot-bottle start` on the terminal
            os.chdir(self.home)
            os.execve(sys.executable, [sys.executable, "-m", "bot_bottle", "start", "tester", "--yes"], env)
        self.addCleanup(self._end)
        _set_size(self.fd, 40, 140)

    def _end(self) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)  # a clean teardown if the test stopped half way
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and os.waitpid(self.pid, os.WNOHANG) == (0, 0):
                self._read(0.5)
        except (ProcessLookupError, ChildProcessError):
            pass
        else:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(self.fd)
        subprocess.run([sys.executable, "-m", "bot_bottle", "cleanup", "--all"], cwd=self.home, capture_output=True,
                       env={**os.environ, "HOME": str(self.home), "PYTHONPATH": str(REPO)}, timeout=600)

    def _read(self, wait: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], wait)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:
            return False
        self.seen += chunk
        return bool(chunk)

    def until(self, text: bytes, timeout: float = 60, after: int = 0) -> int:
        """Read until ``text`` shows after offset ``after``; its offset."""
        deadline = time.monotonic() + timeout
        while self.seen.find(text, after) < 0:
            if time.monotonic() > deadline or not self._read(0.2):
                raise AssertionError(f"{text!r} never came; the terminal showed ...{self.seen[-3000:]!r}")
        return self.seen.find(text, after)

    def type(self, line: str) -> int:
        mark = len(self.seen)
        os.write(self.fd, line.encode() + b"\r")
        return mark

    def test_hostile_sequences_are_held_back_and_the_terminal_given_back(self) -> None:
        self._start()
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
        _set_size(self.fd, 30, 100)
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
