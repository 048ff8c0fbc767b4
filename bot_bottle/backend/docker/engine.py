"""The thinnest possible edge to the Docker CLI.

Everything that talks to the Docker engine goes through ``run`` so timeouts, error text and
the "no engine" case are handled once.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot_bottle import interrupts
from bot_bottle.errors import BotBottleError


class DockerError(BotBottleError):
    """A docker command failed; ``stderr`` holds the engine's own words."""

    def __init__(self, message: str, *, returncode: int = 1, stderr: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.returncode = returncode
        self.stderr = stderr


@dataclass(frozen=True)
class DockerResult:
    returncode: int
    stdout: str
    stderr: str


def docker_binary() -> str | None:
    return shutil.which("docker")


NO_ENGINE_HINT = "start the Docker engine (`bash scripts/setup` does it) and run the command again"


def no_engine_error(stderr: str) -> DockerError | None:
    """The one clear error for "the CLI is there but no engine answers", or None for others."""
    low = stderr.lower()
    if "cannot connect to the docker daemon" not in low and "is the docker daemon running" not in low:
        return None
    first = (stderr.strip().splitlines() or ["(no output)"])[-1]
    return DockerError(f"no Docker engine answers: {first}", stderr=stderr, hint=NO_ENGINE_HINT)


def run(
    args: Sequence[str],
    *,
    timeout: float | None = 120,
    check: bool = True,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
) -> DockerResult:
    """Run ``docker ARGS`` and return its output; raise ``DockerError`` on failure when ``check``."""
    binary = docker_binary()
    if binary is None:
        raise DockerError(
            "the docker CLI is not installed",
            hint="run scripts/setup, or install Docker and make sure `docker info` answers",
        )
    # Every docker command is a step of the work: a signal whose exception was lost ends it here.
    interrupts.raise_pending()
    try:
        proc = subprocess.run(
            [binary, *args],
            capture_output=True,
            # Output quotes what bottles hold (files, names, an agent's output): a byte that is
            # not UTF-8 is read as U+FFFD, never an exception that ends the command.
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            input=input,
            # Not the terminal's: nothing here reads it, and a client in a process group of its
            # own that did would be stopped (SIGTTIN) instead of failing.
            stdin=subprocess.DEVNULL if input is None else None,
            # A process group of its own: Ctrl-C at the terminal goes to the whole foreground
            # group, and the docker CLI aborts on it (a `docker commit` of the snapshot, a
            # `network rm`) even while bot-bottle holds the signal until its cleanup is done
            # (``interrupts.deferred``). bot-bottle alone decides: an interrupt it takes ends
            # the client with it (``subprocess.run`` kills it).
            process_group=0,
            env=dict(env) if env is not None else None,
        )
    except subprocess.TimeoutExpired as exc:
        raise DockerError(f"`docker {args[0] if args else ''}` did not answer within {timeout:g} s") from exc
    result = DockerResult(proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        unreachable = no_engine_error(proc.stderr)
        if unreachable is not None:
            raise unreachable
        first = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise DockerError(
            f"`docker {args[0] if args else ''}` failed: {first}",
            returncode=proc.returncode,
            stderr=proc.stderr,
        )
    return result


# The last ``docker info`` an engine answered in this process: what a launch reads of it (the
# engine's CPU count) does not change while it runs, and the plan has usually just asked.
_last_info: dict | None = None


def engine_info(timeout: float = 10) -> dict | None:
    """The engine's ``docker info`` as a dict, or None when no engine answers."""
    global _last_info
    try:
        result = run(["info", "--format", "{{json .}}"], timeout=timeout, check=False)
    except DockerError:
        return None
    if result.returncode != 0:
        return None
    try:
        info = json.loads(result.stdout)
    except json.JSONDecodeError:
        return None
    if not isinstance(info, dict) or info.get("ServerVersion") in (None, ""):
        return None
    _last_info = info
    return info


def remember_info(info: object) -> bool:
    """Keep an engine's info read another way (its API's ``GET /info``: the same fields as
    ``docker info``'s) as this process's last answer; False, and nothing kept, for what is not one."""
    global _last_info
    if not isinstance(info, dict) or info.get("ServerVersion") in (None, ""):
        return False
    _last_info = info
    return True


def has_info() -> bool:
    """Whether an engine's info was read in this process already."""
    return _last_info is not None


def known_info_field(name: str) -> str | None:
    """A text field of the last ``docker info`` an engine answered in this process, if any."""
    value = (_last_info or {}).get(name)
    return value if isinstance(value, str) and value else None


def engine_cpus() -> int | None:
    """The CPUs the engine runs containers on (``docker info``'s NCPU: on Docker Desktop its VM's,
    not this machine's), or None when it cannot tell."""
    info = _last_info if _last_info is not None else engine_info()
    cpus = (info or {}).get("NCPU")
    return cpus if isinstance(cpus, int) and not isinstance(cpus, bool) and cpus > 0 else None


def is_available(timeout: float = 10) -> bool:
    return engine_info(timeout=timeout) is not None
