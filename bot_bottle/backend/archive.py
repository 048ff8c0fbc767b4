"""The tar archive every backend's ``cp_in`` unpacks inside the bottle, built on the host."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import IO

from bot_bottle.errors import BotBottleError


def _portable(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # Host owner names and ids mean nothing inside the bottle.
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def pack(target: IO[bytes] | Path, source: Path, arcname: str) -> None:
    """Write ``source`` (a file, or a folder with everything in it) as ``arcname`` into ``target``.

    Symlinks go in as links, never as what they point to: a link to ``~/.ssh`` in a working tree
    does not carry the key into the bottle. A file that cannot be read fails the copy with its
    name (a working tree can hold another user's files), not with a traceback.
    """
    where_to = {"name": target} if isinstance(target, Path) else {"fileobj": target}
    try:
        with tarfile.open(mode="w", **where_to) as tar:
            tar.add(str(source), arcname=arcname, filter=_portable)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise BotBottleError(f"cannot copy {source} into the bottle: {exc.strerror or exc}{where}") from None


# A big working tree must not hit a fixed limit: the copy may take this long per byte on top.
SLOWEST_COPY_BYTES_PER_S = 10 * 1024 * 1024


def copy_timeout(base: float | None, archive_bytes: int) -> float | None:
    """How long a copy of ``archive_bytes`` may take: ``base`` plus time at the slowest rate."""
    return None if base is None else base + archive_bytes / SLOWEST_COPY_BYTES_PER_S


def timed_out(source: Path, timeout: float | None) -> BotBottleError:
    return BotBottleError(f"copying {source} into the bottle did not finish within {timeout:.0f} s")
