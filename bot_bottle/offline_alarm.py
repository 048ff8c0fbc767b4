"""Tell the operator, while the agent runs, when its bottle's sidecar stops.

The sidecar is the agent's only way out. When it stops (a daemon in it died, the proxy never
came up, the engine killed it for memory), the agent runs on with no network, no git remote and
no supervise: every request fails, and an operator watching the agent's screen sees only its
errors. The alarm looks at the sidecar every ``CHECK_S`` while the agent runs, and once more
when it ended by itself (an agent that gave up for want of a network), and says once, plainly,
what happened; the run then counts the bottle as one to keep (its work may be unpushed: the
git-gate stopped with the rest).

A sidecar stopped on purpose (``bot-bottle stop``, a restart for a capability) says so in its
last word and raises no alarm: that is the bottle ending, which the run sees by itself.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

CHECK_S = 5.0


def message(bottle_id: str, reason: str) -> str:
    return (f"the sidecar of bottle {bottle_id} stopped ({reason}), leaving the agent no way out (no "
            f"network, git remote or supervise); the bottle is kept for `bot-bottle resume {bottle_id}`, "
            "which starts it again with its sidecar")


def to_stderr(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"bot-bottle: {text}\n")
        sys.stderr.flush()


@dataclass
class SidecarAlarm:
    """``check`` says why the sidecar stopped (None while it runs); ``tell`` is told once."""

    bottle_id: str
    check: Callable[[], str | None]
    tell: Callable[[str], None] = to_stderr
    clock: Callable[[], float] = time.monotonic
    reason: str | None = None  # why it stopped, once it has
    _next: float = field(default=0.0, repr=False)

    def poll(self, *, now: bool = False) -> None:
        """Look again if ``CHECK_S`` has passed since the last look (or ``now``); say it the
        first time."""
        at = self.clock()
        if self.reason is not None or (at < self._next and not now):
            return
        self._next = at + CHECK_S
        reason = self.check()
        if isinstance(reason, str):
            self.reason = reason
            self.tell(message(self.bottle_id, reason))
