"""Copy the user's working tree into the bottle (``start --cwd``), owned by the agent user."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from bot_bottle.backend import Bottle
from bot_bottle.errors import BotBottleError


# Folders and files that hold the user's own credentials: a working tree holding them at its top
# would hand them to the agent, which is what a bottle exists to prevent.
CREDENTIAL_ENTRIES = (".ssh", ".aws", ".gnupg", ".netrc", ".docker", ".kube", ".config/gcloud", ".bot-bottle")


def refused_tree(cwd: Path, home: Path) -> str | None:
    """Why ``cwd`` may not be copied into a bottle at all, or None. Both paths resolved."""
    if cwd == Path(cwd.anchor) or cwd == home or home.is_relative_to(cwd):
        return (f"the working tree {cwd} is {'your home folder' if cwd == home else 'a folder holding your home'}: "
                "copying it would put your SSH keys, cloud credentials and bot-bottle's own state into the "
                "bottle; give the project's folder instead")
    return None


def credential_entries(cwd: Path) -> list[str]:
    """The credential folders and files at the top of the working tree (copied in with it)."""
    return [name for name in CREDENTIAL_ENTRIES if os.path.lexists(cwd / name)]


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
