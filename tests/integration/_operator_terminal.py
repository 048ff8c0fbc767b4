"""An interactive shell "agent" started by the real CLI on a pseudo-terminal the test holds.

The agent is `sh` (a plugin provider whose command is `sh`); `bot-bottle start tester --yes` runs
on a pseudo-terminal that stands in for the operator's terminal. Tests type into it and read what
reaches it. Used by the terminal filter's integration tests.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
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


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class ShellAgentOnATerminal(unittest.TestCase):
    """A home with the shell agent's manifests; ``start_agent`` runs it on the test's terminal."""

    PREFIX = "bb-term-"
    BOTTLE = BOTTLE  # the bottle's manifest

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix=self.PREFIX)
        self.addCleanup(tmp.cleanup)
        self.home = Path(tmp.name)
        h.write_manifests(self.home, bottle=self.BOTTLE)
        plugin = self.home / ".bot-bottle" / "contrib" / "shellagent"
        plugin.mkdir(parents=True)
        (plugin / "provider.py").write_text(PROVIDER)
        self.env = {**os.environ, "HOME": str(self.home), "PYTHONPATH": str(REPO),
                    "BOT_BOTTLE_INTERNAL_NETWORK": "1", "TERM": "xterm-256color"}
        self.seen = b""

    def start_agent(self) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the operator's shell: `bot-bottle start` on the terminal
            os.chdir(self.home)
            os.execve(sys.executable, [sys.executable, "-m", "bot_bottle", "start", "tester", "--yes"], self.env)
        self.addCleanup(self._end)
        set_size(self.fd, 40, 140)

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

    def bottle_id(self) -> str:
        """The id the start printed for the new bottle."""
        found = re.search(rb"new bottle ([a-z0-9]{6,32}) for agent", self.seen)
        assert found is not None, self.seen[-2000:]
        return found.group(1).decode()

    def type(self, line: str) -> int:
        """Type ``line`` and Enter; the offset in ``seen`` from which its effects show."""
        mark = len(self.seen)
        os.write(self.fd, line.encode() + b"\r")
        return mark
