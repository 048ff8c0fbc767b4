"""Freeze a running agent while the engine's disk is down to its reserve, and thaw it once there
is room again.

An agent's files live on the engine's disk, which the host and every other bottle share, and no
quota holds them there (overlay2 on most hosts has none): one agent writing without end would
fill it. Nothing it wrote is lost by a pause (``docker pause``: its processes stop where they
are), and it goes on by itself once the operator has freed space. Where the engine's data folder
cannot be seen from here (an engine in a VM), there is nothing to watch and nothing is done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.snapshot_room import GIB, free_and_total, reserve

# Checked this often: statvfs costs microseconds, and a fast writer fills about a GiB a second.
INTERVAL_SECONDS = 1.0
# Thawed only with this much more than the reserve free, so a bottle does not flap at the line.
MARGIN_MIN = 1 * GIB
MARGIN_SHARE = 0.01


def next_step(free: int, total: int, paused: bool) -> str | None:
    """"pause", "unpause" or None for an agent ``paused`` or not, with ``free`` of ``total`` bytes."""
    if not paused and free < reserve(total):
        return "pause"
    if paused and free >= reserve(total) + max(MARGIN_MIN, int(total * MARGIN_SHARE)):
        return "unpause"
    return None


@dataclass
class DiskGuard:
    """Watches ``root`` for ``container`` from a thread of its own, from ``start`` to ``stop``."""

    container: str
    root: str
    notify: Callable[[str], None]
    interval: float = INTERVAL_SECONDS
    measure: Callable[[str], tuple[int, int] | None] = free_and_total
    paused: bool = False

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name=f"disk-guard-{self.container}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the watch; a frozen agent is thawed (its bottle is then committed or removed)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.paused:
            self._docker("unpause")

    def check(self) -> None:
        """One look at the disk, and the pause or thaw it calls for."""
        disk = self.measure(self.root)
        if disk is None:
            return
        free, total = disk
        step = next_step(free, total, self.paused)
        if step is None or not self._docker(step):
            return
        self.paused = step == "pause"
        if self.paused:
            self.notify(f"paused: the engine's disk is down to {free / GIB:.1f} GiB free (it keeps "
                        f"{reserve(total) / GIB:.1f} GiB); the agent goes on once space is freed")
        else:
            self.notify(f"resumed: the engine's disk has {free / GIB:.1f} GiB free again")

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()

    def _docker(self, verb: str) -> bool:
        result = engine.run([verb, self.container], timeout=60, check=False)
        return result.returncode == 0
