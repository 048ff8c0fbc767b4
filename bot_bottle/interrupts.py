"""Ctrl-C, SIGTERM and SIGHUP end a bottle cleanly, and never in the middle of its cleanup.

Python's default for SIGTERM and SIGHUP (a closed terminal) is to die on the spot, which would
leave the bottle's containers, network and volume behind. ``terminate_as_interrupt`` turns them
into ``Terminated``, a ``KeyboardInterrupt``, so the same ``finally`` blocks that handle Ctrl-C
snapshot and tear the bottle down. ``deferred`` holds all three signals while a teardown runs:
a second Ctrl-C there would otherwise stop it half way (containers gone, network, volume and
state folder left). The held signal is raised once the outermost cleanup is done.

Python raises a signal's exception wherever the program happens to be, which can be a finalizer
(a ``Popen.__del__`` run by the garbage collector) or a weakref callback, where the interpreter
prints "Exception ignored" and drops it: the start went on as if no signal had come. So each
signal raised is also remembered until a handler takes it (``taken``), and ``raise_pending``,
called between steps (every docker command, every wait), raises a lost one again.

Signal handlers can only be set from the main thread; elsewhere both are no-ops.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
NOTICE = "bot-bottle: still cleaning up the bottle; it stops by itself in a moment\n"


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program was, so that cleanup runs as for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


# The signal last raised as an exception and not yet taken by a handler that acts on it.
_pending: int | None = None


def _exception(signum: int) -> KeyboardInterrupt:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _raise_for_signal(signum: int, frame: FrameType | None) -> None:
    global _pending
    _pending = signum
    raise _exception(signum)


def taken() -> None:
    """The interrupt reached the handler that ends the work for it: nothing is pending any more."""
    global _pending
    _pending = None


def pending() -> int | None:
    """The signal raised and not yet taken (lost, or on its way to its handler), or None."""
    return _pending


def raise_pending() -> None:
    """Raise again a signal whose exception was lost where Python drops exceptions.

    A no-op while an exception is being handled (that cleanup must run to its end, and the
    exception may be the signal's own, on its way) and while signals are held (``deferred``
    raises what it holds once its block is done).
    """
    if _pending is None or _active is not None or not _main_thread() or sys.exc_info()[1] is not None:
        return
    raise _exception(_pending)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise ``Terminated`` instead of ending the process, and
    every signal raised (Ctrl-C's ``KeyboardInterrupt`` too) is remembered until taken."""
    if not _main_thread():
        yield
        return
    ours = [signal.SIGTERM, signal.SIGHUP]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when Ctrl-C is ignored
        ours.append(signal.SIGINT)
    taken()  # what is pending belongs to this block (one caught by a caller outside is gone)
    previous = {sig: signal.signal(sig, _raise_for_signal) for sig in ours}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        taken()


class _Hold:
    """The signal received while held (the first one), or None."""

    def __init__(self, notice: Callable[[], None]) -> None:
        self.signum: int | None = None
        self._notice = notice

    def handler(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
            self._notice()


_active: _Hold | None = None


def _say_notice() -> None:
    try:
        sys.stderr.write(NOTICE)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # the terminal is gone (SIGHUP): cleanup goes on regardless


def held() -> int | None:
    """The signal a ``deferred`` block holds so far, or None: a long wait inside one (a slow
    teardown) may end early once the user has asked the program to end."""
    return _active.signum if _active is not None else None


@contextmanager
def deferred(notice: Callable[[], None] = _say_notice) -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP until the block ends, then raise the first one held.

    Nested blocks share the outermost hold. Nothing is raised when the block itself ends with an
    exception: that one goes on (a held Ctrl-C during a failed launch's teardown still exits).
    """
    global _active
    if _active is not None or not _main_thread():
        yield
        return
    hold = _Hold(notice)
    previous: dict[int, Any] = {}
    _active = hold
    try:
        for sig in HELD_SIGNALS:
            previous[sig] = signal.signal(sig, hold.handler)
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _active = None
    if hold.signum is not None:
        if hold.signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(hold.signum)
    raise_pending()  # one lost before the block: the cleanup is done, now it ends the program


__all__ = ["HELD_SIGNALS", "Terminated", "deferred", "held", "pending", "raise_pending", "taken", "terminate_as_interrupt"]
