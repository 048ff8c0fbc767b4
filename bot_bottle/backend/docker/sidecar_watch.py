"""Follow a starting sidecar's own messages instead of polling it.

The sidecar's init writes one JSON line to its stderr at each step of its start (``ca-published``,
``ready``, ``start-failed``; see ``bot_bottle.sidecar.init.say``). A launch waits for them through
one ``docker logs --follow``: the launch goes on the moment a line is written, and no ``docker
exec`` every tenth of a second competes with the proxy's own start for the CPU (on a two-core
host that polling cost about a tenth of the start). When the stream ends before the awaited line,
the container stopped: the error shows its last lines. When the engine cannot stream the logs at
all (a logging driver that cannot be read back), ``wait_for`` says so and the caller polls.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections import deque
from collections.abc import Sequence

from bot_bottle.backend.docker import engine
from bot_bottle.errors import BotBottleError
from bot_bottle.proc import die_with_parent

TAIL_LINES = 20
FAILED = "start-failed"


class SidecarWatch:
    """One follower of a started sidecar's stderr; ``close()`` ends it (also safe twice)."""

    def __init__(self, argv: Sequence[str]) -> None:
        self._cond = threading.Condition()
        self._events: set[str] = set()
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._ended = False
        self._unreadable = False
        # Container stdout is the proxy's decisions: not needed here, never buffered.
        self._proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True, errors="replace")
        self._reader = threading.Thread(target=self._read, name="sidecar-watch", daemon=True)
        self._reader.start()

    @classmethod
    def follow(cls, docker: str, container: str) -> SidecarWatch:
        return cls(die_with_parent([docker, "logs", "--follow", container]))

    def _read(self) -> None:
        assert self._proc.stderr is not None
        with self._proc.stderr:  # closed here, by its only reader, once the stream ends
            for line in self._proc.stderr:
                line = line.rstrip("\n")
                event = _sidecar_event(line)
                with self._cond:
                    self._tail.append(line)
                    if event is not None:
                        self._events.add(event)
                        self._cond.notify_all()
        code = self._proc.wait()
        with self._cond:
            self._ended = True
            # A stopped container ends the stream with status 0. Anything else is the follower's
            # own end (logs that cannot be read back, the client killed): it cannot tell how the
            # sidecar is, so the waits poll it instead.
            self._unreadable = code != 0
            self._cond.notify_all()

    def wait_for(self, event: str, what: str, timeout: float) -> bool:
        """Wait for the sidecar to say ``event``. True once it has; False when its logs cannot be
        followed (poll instead). Raises when it stopped or failed first, or after ``timeout``."""
        with self._cond:
            done = self._cond.wait_for(
                lambda: event in self._events or FAILED in self._events or self._ended, timeout)
            if event in self._events:
                return True
            if self._unreadable:
                return False
            if done:
                tail = "\n".join(self._tail).strip()
                raise BotBottleError(f"the sidecar stopped during start:\n{tail}")
        raise BotBottleError(f"the sidecar was not {what} within {timeout:g} s")

    def raise_if_stopped(self) -> None:
        """Without waiting: raise if the sidecar has already failed or stopped (before a long step)."""
        with self._cond:
            if FAILED in self._events or (self._ended and not self._unreadable):
                tail = "\n".join(self._tail).strip()
                raise BotBottleError(f"the sidecar stopped during start:\n{tail}")

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._reader.join(timeout=5)


def _sidecar_event(line: str) -> str | None:
    """The step a line of the sidecar's init names, or None for any other output."""
    if not line.startswith("{"):
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("event") != "sidecar":
        return None
    what = doc.get("what")
    return what if isinstance(what, str) else None


def why_offline(container: str) -> str:
    """The sidecar's own last word on why it stopped, from its start/stop messages."""
    return last_word(container)[0]


STOPPED_ON_PURPOSE = "it was stopped"


def last_word(container: str) -> tuple[str, bool]:
    """Why the sidecar stopped, and whether it was asked to (its last message says ``stopped``:
    a stop or restart of the bottle) rather than going offline."""
    logs = engine.run(["logs", "--tail", "50", container], timeout=30, check=False)
    reason, asked = "it gave no reason", False
    for line in logs.stderr.splitlines():
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):  # a line too deep or too long to be one of its messages
            continue
        if isinstance(event, dict) and event.get("event") == "sidecar":
            what = event.get("what")
            if what == "offline":
                reason, asked = str(event.get("reason", reason)), False
            elif what == "start-failed":
                reason, asked = f"start failed: {event.get('error', '?')}", False
            elif what == "stopped":
                reason, asked = STOPPED_ON_PURPOSE, True
    return reason, asked


def stopped_why(container: str) -> str | None:
    """Why the sidecar ``container`` stopped while its agent runs on (offline: no network, git
    remote or supervise), from its own last word; None while it runs, when it was stopped on
    purpose (the bottle is ending), or when the engine cannot say (nothing is announced on a
    hiccup)."""
    try:
        state = engine.run(["inspect", "-f", "{{.State.Running}}", container], timeout=30, check=False)
    except BotBottleError:
        return None
    if state.returncode != 0:
        return "its container is gone" if "no such" in state.stderr.lower() else None
    if state.stdout.strip() != "false":
        return None
    try:
        reason, asked = last_word(container)
    except BotBottleError:
        return "it gave no reason"
    return None if asked else reason
