"""Copy the user's working tree into the bottle (``start --cwd``), owned by the agent user."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from bot_bottle.backend import Bottle
from bot_bottle.errors import BotBottleError


def tree_size(source: Path) -> tuple[int, int]:
    """(files, bytes) under ``source``; links count as links, never as what they point to."""
    files = size = 0
    for folder, dirs, names in os.walk(source):
        for name in names:
            try:
                size += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue  # gone meanwhile, or unreadable: the copy itself says so
            files += 1
    return files, size


def human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def copy_in(bottle: Bottle, source: Path, workdir: str, progress: Callable[[str], None] | None = None) -> None:
    if not source.is_dir():
        raise BotBottleError(f"--cwd {source}: not a folder")
    if progress is not None:
        # A big tree takes a while: say how big, so a long copy does not look like a hang.
        files, size = tree_size(source)
        progress(f"copying the working tree {source} into the bottle ({human_bytes(size)} in {files:,} files)")
    # One archive whose top folder is named like the workspace unpacks onto it, merging.
    bottle.cp_in(source, workdir)
