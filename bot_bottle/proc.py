"""Process identity: a pid plus its start time, so a reused pid is never taken for its owner.

An identity also names the PID namespace and the host it was taken in
(``PID:START-PIDNS-HOST``): a pid means nothing in another namespace's ``/proc`` or on another
host, so an owner from there is "unknown" here, never "gone". Identities written before that was
recorded (``PID:START``) are read as they always were, against this ``/proc``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

# What ``owner_state`` can tell about the process an identity names.
ALIVE = "alive"
GONE = "gone"
UNKNOWN = "unknown"  # taken in another PID namespace or on another host: not checkable here

# PID:START, then (since identities carry them) -PIDNS-HOST. The hostname is last, so it may
# hold '-'; it never holds ':' (a scratch folder's name swaps ':' for '.' and keys on PID.START-).
_IDENTITY = re.compile(r"^(\d+):(\d+|\?)(?:-(\d+|\?)-([A-Za-z0-9._-]+|\?))?$")


def start_time(pid: int, proc: Path = Path("/proc")) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    # Field 2 (comm) may contain spaces and parentheses: split after its closing ')'.
    rest = stat.rsplit(")", 1)[-1].split()
    return rest[19] if len(rest) > 19 else None


def pid_namespace() -> str:
    """This process's PID namespace (the inode of ``/proc/self/ns/pid``), or ``?`` without one."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "?"


def hostname() -> str:
    """This host's name, kept to label- and file-name-safe characters (at most 64)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", os.uname().nodename)[:64]
    return name or "?"


def identity(pid: int | None = None) -> str:
    """``PID:START-PIDNS-HOST`` for ``pid`` (default: this process), as seen from here."""
    pid = pid or os.getpid()
    return f"{pid}:{start_time(pid) or '?'}-{pid_namespace()}-{hostname()}"


def owner_state(ident: str | None, proc: Path = Path("/proc")) -> str:
    """``ALIVE``, ``GONE`` or ``UNKNOWN`` for the process an ``identity()`` names.

    No identity, or one that cannot be read, is ``GONE`` (as it always was). An identity taken in
    another PID namespace or on another host is ``UNKNOWN``: its pid is not this ``/proc``'s.
    """
    match = _IDENTITY.match(ident or "")
    if match is None:
        return GONE
    pid, started, namespace, host = match.groups()
    if namespace is not None and (namespace != pid_namespace() or host != hostname()):
        return UNKNOWN
    now = start_time(int(pid), proc)
    return ALIVE if now is not None and started in ("?", now) else GONE


def is_alive(ident: str | None, proc: Path = Path("/proc")) -> bool:
    """False only when the process named by ``identity()`` is provably gone (its pid ended or was
    reused). An owner that cannot be checked from here counts as alive: callers tear down or
    remove what is not alive, and nothing may be removed on a guess."""
    return owner_state(ident, proc) != GONE


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
