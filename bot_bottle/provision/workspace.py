"""Copy the user's working tree into the bottle (``start --cwd``), owned by the agent user."""

from __future__ import annotations

from pathlib import Path

from bot_bottle.backend import Bottle
from bot_bottle.errors import BotBottleError


def copy_in(bottle: Bottle, source: Path, workdir: str) -> None:
    if not source.is_dir():
        raise BotBottleError(f"--cwd {source}: not a folder")
    # One archive whose top folder is named like the workspace unpacks onto it, merging.
    bottle.cp_in(source, workdir)
