"""``pty_relay``: an agent's terminal relayed through a filter, on real pseudo-terminals.

The test is the operator's terminal: it runs a small host program on a pseudo-terminal of its
own; that program relays a stand-in agent (a Python script) the way the lifecycle relays the
agent's exec client. The filter here is a stand-in that holds back one marker, so the relay's own
work is what is checked: output through the filter, input through unchanged, the window size
followed, the operator's terminal given back as it was, the filter's last bytes and its summary.
The real filter is tested in tests/unit/test_screen_filter.py, and both together through a real
bottle in tests/integration/test_agent_terminal_bottle.py.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import textwrap
import time
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# The host program: relays AGENT (argv[1]) with a stand-in filter, then reports on its terminal.
HOST = textwrap.dedent("""\
    import os, sys, termios
    from bot_bottle import pty_relay

    class Stand:
        held = {}
        def feed(self, data):
            if b"HIDE" in data:
                self.held["marker"] = self.held.get("marker", 0) + data.count(b"HIDE")
            return data.replace(b"HIDE", b"")
        def finish(self):
            return b"<finish>"
        def summary(self):
            return f"held back {self.held['marker']} markers" if self.held else None

    before = termios.tcgetattr(0)
    relay = pty_relay.Relay([sys.executable, "-c", sys.argv[1]], screen=Stand())
    try:
        code = relay.start().wait()
    finally:
        relay.close()
    after = termios.tcgetattr(0)
    print(f"code {code}; terminal {'restored' if after == before else 'CHANGED'}", flush=True)
""")

AGENT = textwrap.dedent("""\
    import os, signal, sys, time
    size = os.get_terminal_size()
    print(f"agent size {size.columns}x{size.lines}; HIDE shown", flush=True)
    line = sys.stdin.readline().strip()
    print(f"agent read {line!r}", flush=True)
    changed = []
    signal.signal(signal.SIGWINCH, lambda *_: changed.append(os.get_terminal_size()))
    print("agent waits for a resize", flush=True)
    deadline = time.monotonic() + 20
    while not changed and time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"agent resized {changed[0].columns}x{changed[0].lines}" if changed else "agent saw no resize", flush=True)
    sys.exit(7)
""")


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Terminal:
    """The operator's side of a pseudo-terminal running the host program."""

    def __init__(self, test: unittest.TestCase, agent: str) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.chdir(REPO)
            os.execv(sys.executable, [sys.executable, "-c", HOST, agent])
        test.addCleanup(self.close)
        self.seen = b""

    def until(self, text: bytes, timeout: float = 30) -> bytes:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never came; the terminal showed {self.seen!r}")
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                self.seen += chunk
        if text not in self.seen:
            raise AssertionError(f"{text!r} never came; the terminal showed {self.seen!r}")
        return self.seen

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
        os.close(self.fd)


class RelayOnATerminal(unittest.TestCase):
    def test_output_filtered_input_passed_size_followed_terminal_given_back(self) -> None:
        term = Terminal(self, AGENT)
        _set_size(term.fd, 30, 100)
        term.until(b"agent size ")
        self.assertIn(b"agent size 100x30; ", term.until(b" shown"))
        self.assertNotIn(b"HIDE", term.seen)
        os.write(term.fd, b"typed text\r")
        term.until(b"agent read 'typed text'")
        term.until(b"agent waits for a resize")
        _set_size(term.fd, 40, 120)  # the kernel tells the host program, which tells the agent
        term.until(b"agent resized 120x40")
        shown = term.until(b"; terminal ")
        term.until(b"\n", timeout=5)
        self.assertIn(b"<finish>", shown)
        self.assertLess(shown.index(b"agent resized"), shown.index(b"<finish>"))
        self.assertIn(b"bot-bottle: held back 1 markers", shown)
        self.assertIn(b"code 7; terminal restored", term.until(b"restored"))

    def test_an_agent_that_changes_nothing_gets_no_summary(self) -> None:
        term = Terminal(self, "print('plain', flush=True)")
        shown = term.until(b"restored")
        self.assertIn(b"plain", shown)
        self.assertIn(b"code 0; terminal restored", shown)
        self.assertNotIn(b"held back", shown)


class NotATerminal(unittest.TestCase):
    def test_usable_only_with_a_terminal_on_both_ends(self) -> None:
        from bot_bottle import pty_relay

        read, write = os.pipe()
        self.addCleanup(os.close, read)
        self.addCleanup(os.close, write)
        self.assertFalse(pty_relay.usable(read, write))


if __name__ == "__main__":
    unittest.main()
