"""The agent's interactive terminal, relayed to the operator's through ``screen_filter``.

An agent attached with ``docker exec -it`` (or smolvm's) wrote every byte straight to the
operator's terminal, and a prompt-injected agent can use terminal escape sequences against the
host: write the clipboard, start a file download, pass sequences through tmux, make the terminal
answer with text of its choosing that the host's shell reads once the agent is gone, or leave
modes on that break the shell afterwards. Here the exec client runs on a pseudo-terminal of ours:
what the operator types goes to it unchanged, what it prints passes the filter first, the window
size follows the operator's, and when the agent ends the modes it left on are put back, the
terminal's own late answers are dropped, and what was held back is named.

What was held back is also named in the bottle's record as it happens (``HoldRecorder``): an
agent that tries to write the clipboard is a sign of prompt injection that an operator watching
the console, or reading ``bot-bottle logs`` afterwards, should see. Kinds and counts only, never
a held byte (they are the agent's, and may carry secrets); written from a thread of its own, so
the output never waits for a database.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import subprocess
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable
from types import FrameType
from typing import Any

from bot_bottle.screen_filter import ScreenFilter, is_named

# How long the terminal gets to send answers to the agent's last queries after it ended; they
# are then dropped from the input, never read by the operator's shell as if typed.
ANSWER_GRACE_S = 0.1
# How long output still queued in the pseudo-terminal is waited for once the client ended.
DRAIN_S = 2.0
_CHUNK = 65536
# How long the recorder waits after a hold for more of the same burst before it writes an entry,
# and the least time between two entries: a flood of sequences makes one entry a second at most.
RECORD_COALESCE_S = 0.25
RECORD_GAP_S = 1.0
# How long the end of the relay waits for the recorder's last entry (a locked database can make
# it wait longer; the entry is then written if the process lives on long enough).
RECORD_CLOSE_S = 2.0
# Kinds kept apart between two entries; any further kind is counted as OTHER_KINDS (the filter
# names some kinds by number, and an agent can print many numbers).
MAX_KINDS = 32
OTHER_KINDS = "other kinds"

Record = Callable[[dict[str, int]], None]


def usable(stdin_fd: int = 0, stdout_fd: int = 1) -> bool:
    """Whether the operator has a terminal on both ends to relay to."""
    return os.isatty(stdin_fd) and os.isatty(stdout_fd)


class Relay:
    """One agent process on a pseudo-terminal of ours: ``start`` it, wait for it as for any
    ``Popen``, then ``close`` (always, also after an exception: it gives the terminal back)."""

    def __init__(self, argv: list[str], *, stdin_fd: int = 0, stdout_fd: int = 1,
                 screen: ScreenFilter | None = None, report: Callable[[str], None] | None = None,
                 record: Record | None = None) -> None:
        self.argv = argv
        self.stdin_fd = stdin_fd
        self.stdout_fd = stdout_fd
        self._report = report or _tell_operator
        # ``record`` gets what was held back (named kinds and counts) about once a second, from
        # the recorder's own thread; it may block, and whatever it raises is reported once.
        self._recorder = HoldRecorder(record, warn=self._report) if record is not None else None
        self.screen = screen or ScreenFilter()
        if self._recorder is not None:
            self.screen.on_held = self._recorder.held
        self.proc: subprocess.Popen[bytes] | None = None
        self._writing = threading.Lock()  # the agent's output and our notices, one at a time
        self._master: int | None = None
        self._saved: list[Any] | None = None
        self._wake_r, self._wake_w = os.pipe()
        self._threads: list[threading.Thread] = []
        self._previous_winch: Any = None
        self._closed = False

    def start(self) -> subprocess.Popen[bytes]:
        master, slave = os.openpty()
        self._master = master
        try:
            self._copy_size()
            # The client's input is ours to give: the operator's terminal goes raw (as the
            # client's own would have), and the client puts its pseudo-terminal raw itself.
            self._saved = termios.tcgetattr(self.stdin_fd)
            tty.setraw(self.stdin_fd, termios.TCSANOW)
            # A process group of its own: the operator's terminal's signals (a resize before its
            # size is copied over, a hangup) are for this process, which passes on what applies.
            self.proc = subprocess.Popen(self.argv, stdin=slave, stdout=slave, stderr=slave, process_group=0)
        except BaseException:
            os.close(slave)
            self.close()
            raise
        os.close(slave)  # the client's end only: its exit then ends the relay's reads
        if threading.current_thread() is threading.main_thread():
            self._previous_winch = signal.signal(signal.SIGWINCH, self._resized)
        if self._recorder is not None:
            self._recorder.start()
        self._threads = [threading.Thread(target=self._output, name="pty-output", daemon=True),
                         threading.Thread(target=self._input, name="pty-input", daemon=True)]
        for thread in self._threads:
            thread.start()
        return self.proc

    # ------------------------------------------------------------------ the two directions
    def _output(self) -> None:
        """Client -> filter -> operator, until the client's side is closed."""
        assert self._master is not None
        writable = True
        while True:
            try:
                data = os.read(self._master, _CHUNK)
            except OSError:  # EIO: every holder of the client's side has closed it
                return
            if not data:
                return
            safe = self.screen.feed(data)
            if safe and writable:
                with self._writing:
                    writable = self._write_out(safe)

    def notice(self, text: str) -> None:
        """One line of bot-bottle's own on the operator's terminal, between two writes of the
        agent's output (never inside a sequence: the filter passes only whole ones). The
        terminal is raw while the agent runs: the line brings its own carriage returns."""
        line = " ".join(text.split())
        with self._writing:
            self._write_out(f"\r\nbot-bottle: {line}\r\n".encode("utf-8", "replace"))

    def _write_out(self, data: bytes) -> bool:
        """Whole ``data`` to the operator's terminal; False once it is gone (then the client's
        output is still read, so that it never blocks on a full terminal)."""
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.stdout_fd, view)
            except InterruptedError:
                continue
            except OSError:
                return False
            view = view[written:]
        return True

    def _input(self) -> None:
        """Operator -> client, unchanged, until ``close`` wakes it."""
        assert self._master is not None
        while True:
            try:
                ready, _, _ = select.select([self.stdin_fd, self._wake_r], [], [])
            except (OSError, ValueError):
                return
            if self._wake_r in ready:
                return
            try:
                data = os.read(self.stdin_fd, _CHUNK)
            except OSError:  # the operator's terminal is gone (closed window: SIGHUP follows)
                return
            if not data:
                return
            try:
                os.write(self._master, data)
            except OSError:
                return

    # ------------------------------------------------------------------ window size
    def _copy_size(self) -> None:
        if self._master is None:
            return
        with contextlib.suppress(OSError):
            size = fcntl.ioctl(self.stdout_fd, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, size)

    def _resized(self, signum: int, frame: FrameType | None) -> None:
        self._copy_size()
        # The client is in no session of that pseudo-terminal, so the kernel does not tell it:
        # the signal is passed on once the size is there, and it reads it from its terminal.
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                os.kill(self.proc.pid, signal.SIGWINCH)
        previous = self._previous_winch
        if callable(previous):
            previous(signum, frame)

    # ------------------------------------------------------------------ the end
    def close(self) -> None:
        """Once the client has ended (or was killed): the rest of its output, the modes it left
        on put back, the operator's terminal as it was, and a line naming what was held back."""
        if self._closed:
            return
        self._closed = True
        if self._previous_winch is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGWINCH, self._previous_winch)
        output = self._threads[0] if self._threads else None
        if output is not None:
            output.join(DRAIN_S)
        drained = output is None or not output.is_alive()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        for thread in self._threads[1:]:
            thread.join(DRAIN_S)
        if self._saved is not None:
            if drained:  # else the output thread still owns the filter (a client that never let go)
                self._write_out(self.screen.finish())
            time.sleep(ANSWER_GRACE_S)
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(self.stdin_fd, termios.TCSADRAIN, self._saved)
                termios.tcflush(self.stdin_fd, termios.TCIFLUSH)
        # A descriptor a live thread still reads is left to the process's end, never reused under it.
        for fd, reader in ((self._master, output), (self._wake_r, None), (self._wake_w, None)):
            if fd is not None and (reader is None or not reader.is_alive()):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = None
        if self._recorder is not None:
            self._recorder.close(RECORD_CLOSE_S)  # what finish() held too, and a failure said once
        summary = self.screen.summary()
        if summary:
            self._report(summary)


class HoldRecorder:
    """Hands what the filter held back to ``record`` in a thread of its own.

    ``held`` is the filter's hook, called on the relay's output thread for every sequence held
    back: it only counts (named kinds only, at most ``MAX_KINDS``) and wakes the thread. The
    thread waits ``RECORD_COALESCE_S`` for the rest of a burst and keeps ``RECORD_GAP_S``
    between two entries, then hands over the counts since the last entry. A failing ``record``
    (the store locked, damaged, not writable) never reaches the agent's session: ``warn`` is
    told once, and the counts are kept for the next try."""

    def __init__(self, record: Record, *, warn: Callable[[str], None] | None = None,
                 coalesce_s: float = RECORD_COALESCE_S, gap_s: float = RECORD_GAP_S) -> None:
        self._record = record
        self._warn = warn
        self._coalesce_s = coalesce_s
        self._gap_s = gap_s
        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._failure: str | None = None
        self._thread = threading.Thread(target=self._run, name="pty-record", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def held(self, kind: str) -> None:
        """One sequence of ``kind`` held back (on the output thread: no waiting here)."""
        if not is_named(kind):
            return
        with self._lock:
            pending = self._pending
            if kind not in pending and len(pending) >= MAX_KINDS:
                kind = OTHER_KINDS
            pending[kind] = pending.get(kind, 0) + 1
        if not self._wake.is_set():
            self._wake.set()

    def close(self, timeout: float) -> None:
        """Write what is still counted, waiting up to ``timeout`` seconds, and report a failure."""
        self._closing.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        elif self._thread.ident is None:
            self._flush()  # never started (the client did not start): nothing waits on the output
        if self._failure is not None and self._warn is not None:
            self._warn(self._failure)

    def _run(self) -> None:
        last = -self._gap_s
        while not self._closing.is_set():
            self._wake.wait()
            # The rest of the burst, and the gap since the last entry; an ending relay cuts it short.
            delay = max(self._coalesce_s, last + self._gap_s - time.monotonic())
            self._closing.wait(delay)
            self._wake.clear()
            self._flush()
            last = time.monotonic()
        self._flush()

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return
        try:
            self._record(batch)
        except Exception as exc:  # noqa: BLE001 - the agent's session goes on without its record
            with self._lock:
                for kind, count in batch.items():  # kept for the next try, within the same bound
                    if kind not in self._pending and len(self._pending) >= MAX_KINDS:
                        kind = OTHER_KINDS
                    self._pending[kind] = self._pending.get(kind, 0) + count
            if self._failure is None:
                self._failure = ("the terminal sequences held back could not be recorded in the bottle's "
                                 f"record: {_one_line(str(exc))}")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def _tell_operator(summary: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"bot-bottle: {summary}\n")
        sys.stderr.flush()


__all__ = ["ANSWER_GRACE_S", "HoldRecorder", "Relay", "usable"]
