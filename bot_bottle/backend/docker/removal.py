"""Removing containers whose runtime is slow to let them go.

Under gVisor (runsc on its ptrace platform), an agent container that ran many processes sometimes
leaves its containerd shim busy for minutes after its sandbox has died (3.5 to 4 minutes seen on a
2-core machine, about one teardown in five after a fork bomb); `docker rm -f` blocks until then. An
engine that still answers other requests is not gone: the removal goes on inside it. So a removal
that outlasts its timeout is waited for, saying so, instead of leaving the bottle half removed and
sending the user to `cleanup` for a container that is about to go by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot_bottle.backend.docker import engine

# How much longer a removal the engine is still working on is waited for, past the first timeout.
SLOW_REMOVAL_WAIT_S = 480.0
POLL_S = 2.0
# How often the wait says it is still waiting.
SAY_EVERY_S = 60.0
# States in which the engine is still working on the container: a removal that outlived its client
# goes on in the engine. Any other state (exited, dead, created) means that removal was dropped,
# and it is asked for again.
_BUSY = frozenset({"running", "removing", "restarting", "paused"})


def engine_answers(timeout: float = 15) -> bool:
    """Whether the engine answers a request that touches no container."""
    try:
        return engine.run(["version", "--format", "{{.Server.Version}}"], timeout=timeout, check=False).returncode == 0
    except engine.DockerError:
        return False


def still_there(refs: Sequence[str]) -> dict[str, str]:
    """The state of each of ``refs`` (ids, or names) that still exists.

    `docker ps` reads the engine's list without taking any container's lock, so it answers while
    a removal holds one (`docker inspect` would wait behind it).
    """
    out = engine.run(["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.State}}"],
                     timeout=30, check=False).stdout
    found: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        cid, names, container_state = parts
        for ref in refs:
            if cid.startswith(ref) or ref in names.split(","):
                found[ref] = container_state
    return found


@dataclass(frozen=True)
class Waiting:
    """How a removal the engine is still working on is waited for: ``say`` gets a line now and
    then, ``stop_waiting`` (a Ctrl-C held during a teardown) ends the wait early, ``named`` names
    a container for the user."""

    say: Callable[[str], None]
    stop_waiting: Callable[[], bool] = lambda: False
    wait_s: float = SLOW_REMOVAL_WAIT_S
    named: Callable[[str], str] = lambda ref: ref


def remove_containers(refs: Sequence[str], *, timeout: float, waiting: Waiting) -> str | None:
    """`docker rm -f -v` ``refs``; None once all are gone, else why not (for the user).

    A removal that outlasts ``timeout`` while the engine still answers is waited out
    (``wait_out``); an engine that does not answer is not waited for.
    """
    try:
        engine.run(["rm", "-f", "-v", *refs], timeout=timeout, check=False)
        return None
    except engine.DockerError as exc:
        return wait_out(refs, str(exc), timeout=timeout, waiting=waiting)


def wait_out(refs: Sequence[str], first: str, *, timeout: float, waiting: Waiting) -> str | None:
    """After a removal of ``refs`` that did not answer within ``timeout`` (``first`` says so):
    None once the engine has finished it, else why not."""
    if not engine_answers():
        return first
    say, wait_s = waiting.say, waiting.wait_s
    what = ", ".join(waiting.named(ref) for ref in refs)
    say(f"the container runtime is still stopping {what}; the engine answers, so its removal goes on: "
        f"waiting up to {wait_s / 60:g} more minutes (Ctrl-C stops waiting)")
    start = time.monotonic()
    said = start
    while True:
        try:
            left = still_there(refs)
        except engine.DockerError:
            return first
        if not left:
            say(f"removed after {time.monotonic() - start + timeout:.0f} s")
            return None
        dropped = [ref for ref, container_state in left.items() if container_state not in _BUSY]
        if dropped:
            try:
                engine.run(["rm", "-f", "-v", *dropped], timeout=30, check=False)
            except engine.DockerError:
                pass  # still busy: the next look tells
        now = time.monotonic()
        if waiting.stop_waiting():
            return f"{first}; the engine was still removing them when the wait was cut short"
        if now - start >= wait_s:
            return f"{first}, nor in {wait_s:g} s more while the engine was removing them"
        if now - said >= SAY_EVERY_S:
            said = now
            say(f"still waiting for the runtime to let go of {what} ({now - start + timeout:.0f} s so far)")
        time.sleep(POLL_S)


__all__ = ["SLOW_REMOVAL_WAIT_S", "Waiting", "engine_answers", "remove_containers", "still_there", "wait_out"]
