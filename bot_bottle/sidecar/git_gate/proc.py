"""The gate's child processes (git, gitleaks), each with a deadline it cannot outlive.

A pathological object graph, a stuck upstream or a stalled scan must not hold a push (and the
agent waiting on it) forever. Every child starts as the leader of its own process group; at its
deadline the whole group is killed with SIGKILL, by id (git hands work to helpers: remote
transports, ssh, ``pack-objects``; killing git alone would leave them running and holding the
pipes), and ``TimedOut`` is raised: the caller refuses the push and says why.

A scan is bounded as a whole, not per child: ``deadline`` sets the time left for everything the
scan runs (``remaining`` gives each child what is left of it), so many small gits cannot add up
to hours. A child started with no time left is not started at all.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import IO

# The whole scan of one push (every git it runs, reading and scanning their output included).
SCAN_TIMEOUT = 600.0
STDERR_TAIL = 4096  # the end of a child's stderr is kept for the message; the rest is read and dropped
_REAP_GRACE = 5.0  # after a group kill, how long to wait for the pipes to close

_deadline: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar("git_gate_deadline", default=None)


class TimedOut(RuntimeError):
    """A child ran past its deadline and was killed with its process group."""

    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(f"{what} did not finish within {seconds:g} s and was stopped")
        self.what = what
        self.seconds = seconds


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Everything started inside must end within ``seconds`` from now, all together."""
    token = _deadline.set((time.monotonic() + seconds, seconds))
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining(default: float) -> tuple[float, float]:
    """(seconds this child may run, the limit to name if it does not end): the smaller of
    ``default`` and what is left of the enclosing ``deadline``."""
    current = _deadline.get()
    if current is None:
        return default, default
    end, total = current
    left = end - time.monotonic()
    return (left, total) if left < default else (default, default)


def describe(argv: Sequence[str]) -> str:
    """``git log`` for ``["git", "-c", "x=y", "log", ...]``: the program and its subcommand."""
    name = os.path.basename(argv[0])
    rest = list(argv[1:])
    while rest[:1] == ["-c"] and len(rest) >= 2:
        rest = rest[2:]
    sub = next((a for a in rest if not a.startswith("-")), "") if name == "git" else ""
    return f"{name} {sub}".strip()


def as_text(data: bytes) -> str:
    """Output as text mode would give it (universal newlines), for messages read line by line."""
    return data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the child's process group (it leads one of its own: see ``_popen``)."""
    if proc.returncode is not None:
        return  # reaped: its id may already name someone else
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def wait_group_gone(pgid: int, timeout: float) -> bool:
    """After ``kill_group``: wait until no process of the group is left (at most ``timeout``
    seconds); whether it is gone. Signal 0 only asks: it reaches nobody even if the id was reused."""
    end = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.02)


def _popen(argv: Sequence[str], *, stdin: int, env: Mapping[str, str] | None,
           cwd: str | os.PathLike[str] | None) -> subprocess.Popen[bytes]:
    # Its own process group, so that a kill reaches the helpers it starts too.
    return subprocess.Popen(
        list(argv), stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None, cwd=cwd, process_group=0,
    )


def run(
    argv: Sequence[str], *, timeout: float, input: bytes | None = None,
    env: Mapping[str, str] | None = None, cwd: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run to completion with its output in memory (small outputs only), or raise ``TimedOut``."""
    seconds, limit = remaining(timeout)
    what = describe(argv)
    if seconds <= 0:
        raise TimedOut(what, limit)
    proc = _popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL, env=env, cwd=cwd)
    try:
        out, err = proc.communicate(input, timeout=seconds)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise TimedOut(what, limit) from None
    except BaseException:
        _stop(proc)
        raise
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    kill_group(proc)
    try:
        proc.communicate(timeout=_REAP_GRACE)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        pass  # a helper that left the group holds a pipe: it is closed below, not waited for
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
    proc.wait()


class Watchdog:
    """Kills ``proc``'s process group ``seconds`` from now, unless stopped first (``fired`` tells)."""

    def __init__(self, proc: subprocess.Popen[bytes], seconds: float) -> None:
        self.proc = proc
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        if self.proc.returncode is None:  # not a child that just ended in time
            self.fired = True
            kill_group(self.proc)

    def stop(self) -> None:
        self._timer.cancel()


class Stream:
    """A child whose stdout is read as it comes (``stdout``), killed with its group at its
    deadline or when the reader stops early. Use as a context manager: on leaving, a child
    still running is stopped, and ``TimedOut`` is raised if the deadline ended it (whatever
    else went wrong meanwhile: a killed git's cut-short output is not the real reason).

    ``input`` is written from a thread while stdout is read (neither side waits for the
    other); stderr is drained from another, keeping only its tail.
    """

    def __init__(
        self, argv: Sequence[str], *, timeout: float, input: bytes | None = None,
        env: Mapping[str, str] | None = None, cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        seconds, self.limit = remaining(timeout)
        self.what = describe(argv)
        if seconds <= 0:
            raise TimedOut(self.what, self.limit)
        self._err = b""
        self.proc = _popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL, env=env, cwd=cwd)
        assert self.proc.stdout is not None
        self.stdout: IO[bytes] = self.proc.stdout
        self._threads = [threading.Thread(target=self._drain, daemon=True)]
        if input is not None:
            self._threads.append(threading.Thread(target=self._feed, args=(input,), daemon=True))
        for thread in self._threads:
            thread.start()
        self._watchdog = Watchdog(self.proc, seconds)

    def _feed(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.write(data)
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        with contextlib.suppress(OSError, ValueError):
            for data in iter(lambda: self.proc.stderr.read(65536), b""):  # type: ignore[union-attr]
                self._err = (self._err + data)[-STDERR_TAIL:]

    def finish(self) -> tuple[int, str]:
        """After stdout ended: wait for the child (its deadline still applies), give its exit
        status and the end of its stderr; raise ``TimedOut`` if the deadline ended it."""
        code = self.proc.wait()
        self._close()
        return code, self._err.decode("utf-8", "replace").strip()

    def _close(self) -> None:
        if self.proc.returncode is None:
            kill_group(self.proc)  # the reader stopped early (a limit, an error): git must not go on
        with contextlib.suppress(OSError):
            self.stdout.close()
        self.proc.wait()
        self._watchdog.stop()
        for thread in self._threads:
            thread.join(_REAP_GRACE)
        if not self._threads[0].is_alive() and self.proc.stderr is not None:
            # Drained to its end: closed here, not left for the collector (a ResourceWarning).
            # Still being read (a helper outside the group holds it open), it is left alone:
            # closing it would wait for that read.
            with contextlib.suppress(OSError):
                self.proc.stderr.close()
        if self._watchdog.fired:
            raise TimedOut(self.what, self.limit)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()
