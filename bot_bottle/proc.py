"""Process identity: a pid plus its start time, so a reused pid is never taken for its owner."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def start_time(pid: int, proc: Path = Path("/proc")) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    # Field 2 (comm) may contain spaces and parentheses: split after its closing ')'.
    rest = stat.rsplit(")", 1)[-1].split()
    return rest[19] if len(rest) > 19 else None


def identity(pid: int | None = None) -> str:
    pid = pid or os.getpid()
    return f"{pid}:{start_time(pid) or '?'}"


def is_alive(ident: str | None, proc: Path = Path("/proc")) -> bool:
    """True when the process named by ``identity()`` still runs (same pid, same start time)."""
    if not ident or ":" not in ident:
        return False
    pid_s, started = ident.split(":", 1)
    try:
        pid = int(pid_s)
    except ValueError:
        return False
    now = start_time(pid, proc)
    return now is not None and (started == "?" or now == started)


def die_with_parent(argv: list[str]) -> list[str]:
    """``argv`` run so that the kernel kills it when this process dies, even by SIGKILL (where
    no ``finally`` runs): util-linux ``setpriv --pdeathsig KILL`` where it is installed, ``argv``
    unchanged elsewhere. For the ``docker`` clients a launch keeps running (the agent's attached
    process, the sidecar's log follower), which would otherwise outlive a killed launcher.

    The kernel sends the signal when the *thread* that started the process ends, not the whole
    process: start it from a thread that lives at least as long as it should (never from a pool
    worker that is shut down before the process is done)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else list(argv)
