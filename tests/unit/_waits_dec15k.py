"""Waits for the state a test then asserts, instead of a sleep that stands in for it.

A fixed sleep is a guess at how long the machine takes; on a loaded one (a shared 2-core CI
runner) the guess is short and the test fails with nothing wrong. These wait for the condition
itself, with a deadline that is only a hang guard: when it passes they return and the test's own
assertion says what was not reached."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HANG_GUARD_S = 60.0
POLL_S = 0.02


def wait_until(condition: Callable[[], object], timeout: float = HANG_GUARD_S) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes; whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True


def group_commands(pgid: int) -> list[list[str]]:
    """The command lines of the live processes of process group ``pgid``."""
    found: list[list[str]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # Fields after the command (in parentheses, which may hold spaces): state, ppid, pgrp.
            state, _, pgrp = stat.rsplit(")", 1)[1].split()[:3]
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue  # gone meanwhile
        if int(pgrp) == pgid and state != "Z":
            found.append([arg.decode(errors="replace") for arg in argv if arg])
    return found


def group_runs(pgid: int, command: list[str]) -> bool:
    """Whether a live process of group ``pgid`` runs exactly ``command``."""
    return command in group_commands(pgid)




async def until_shown(pilot: Any, condition: Callable[[], object], timeout: float = HANG_GUARD_S) -> bool:
    """In a console test: pause until ``condition`` holds (the screen redrawn at each pause) or
    ``timeout`` passes; whether it held."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            return False
        await pilot.pause(0.05)
    return True
