"""Whether a bottle's snapshot fits on the engine's disk, asked before ``docker commit`` runs.

A commit writes every file the agent changed as it reads back, a sparse file whole: a
``truncate -s 60T`` costs the container nothing and the commit the whole disk, which every
other bottle and the host share. A commit that cannot fit would fail anyway, after filling the
disk; it is refused first, by name. Where the engine's data folder cannot be seen from here (an
engine in a VM), nothing is refused.
"""

from __future__ import annotations

import os

from bot_bottle.backend.docker import engine
from bot_bottle.errors import BotBottleError

GIB = 1024 ** 3
# Left free after a snapshot, for everything else on that disk.
RESERVE_MIN = 2 * GIB
RESERVE_SHARE = 0.05


def reserve(total: int) -> int:
    """What is kept free on a disk of ``total`` bytes for everything else on it."""
    return max(RESERVE_MIN, int(total * RESERVE_SHARE))


def room_after(changes: int, free: int, total: int) -> int:
    """Bytes left above the reserve once ``changes`` bytes are written (negative: does not fit)."""
    return free - reserve(total) - changes


def changes_size(container: str) -> int | None:
    """What a commit of ``container`` would write: its writable layer, sparse files whole."""
    out = engine.run(["inspect", "--size", "-f", "{{.SizeRw}}", container], timeout=600, check=False)
    text = out.stdout.strip()
    return int(text) if out.returncode == 0 and text.isdigit() else None


def data_root() -> str | None:
    """The engine's data folder, when it is on this machine.

    Read from the ``docker info`` this process already has when there is one (the folder does
    not move while the engine runs): the launch asks at its end, on the start's critical path."""
    known = engine.known_info_field("DockerRootDir")
    if known is not None:
        root = known
    else:
        out = engine.run(["info", "-f", "{{.DockerRootDir}}"], timeout=60, check=False)
        root = out.stdout.strip() if out.returncode == 0 else ""
    return root if root and os.path.isdir(root) else None


def free_and_total(root: str) -> tuple[int, int] | None:
    try:
        stats = os.statvfs(root)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize


def engine_disk() -> tuple[int, int] | None:
    """(free, total) bytes of the disk holding the engine's data, when it is on this machine."""
    root = data_root()
    return free_and_total(root) if root is not None else None


def check(container: str) -> None:
    """Refuse a snapshot of ``container`` that would leave less than the reserve free."""
    changes = changes_size(container)
    disk = engine_disk() if changes is not None else None
    if changes is None or disk is None:
        return
    free, total = disk
    if room_after(changes, free, total) < 0:
        raise BotBottleError(
            f"its snapshot would write {changes / GIB:.1f} GiB (changed files as they read, sparse ones "
            f"whole) with {free / GIB:.1f} GiB free on the engine's disk; it was not taken",
            hint="free space on the engine's disk, or remove what the agent wrote that it does not need",
        )
