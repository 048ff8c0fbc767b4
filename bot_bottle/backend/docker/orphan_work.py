"""An orphaned bottle's work, saved before ``cleanup`` removes the bottle.

A bottle whose bot-bottle process is gone (killed, its terminal closed by force, the machine
restarted under it) had no teardown: its agent container, running or stopped, holds everything
the agent did since the last snapshot. ``cleanup`` used to remove it with that work. It now
saves it first, as the teardown would have: a snapshot, and the bottle preserved for
``resume``. Only Docker bottles whose agent was started (``StateDir.agent_ran``) are saved; a
start killed earlier left nothing worth an image. When the snapshot fails, the agent container
is kept (``StateDir.keep_agent``), so its files stay for ``docker cp``.

A container kept that way (here, or by a teardown whose snapshot failed: a disk too full, an
engine that went away) is tried again by every ``cleanup``: once its snapshot is taken, the
bottle resumes from it and the container goes, as after any teardown.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bot_bottle import proc
from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.cleanup import Inventory, OwnerState
from bot_bottle.backend.docker.names import BottleNames
from bot_bottle.errors import BotBottleError
from bot_bottle.state import StateDir, all_states

# Why cleanup preserved a bottle: what ``list`` shows for it.
SAVED = "saved by cleanup: its bot-bottle process was gone"
SAVED_LATE = "saved by cleanup: its agent container was kept when the bottle's snapshot failed"
NOT_SAVED = "its bot-bottle process was gone and its snapshot failed; the agent container is kept"

# How long a still-running orphaned agent gets to stop before it is killed (as `stop`'s default).
STOP_TIMEOUT_S = 5


def to_save(inv: Inventory, state_root: Path) -> list[str]:
    """The bottles whose work ``cleanup`` saves: their state folder is about to go (an orphan's,
    not preserved), their agent was started, they ran on Docker, and their agent container is
    among the orphans (its owner is gone, and it is this home's)."""
    doomed_states = {r.bottle_id for r in inv.orphans if r.kind == "state" and r.bottle_id}
    agents = {r.bottle_id for r in inv.orphans
              if r.kind == "container" and r.bottle_id and r.name == BottleNames(r.bottle_id, "").agent_container}
    ids = []
    for bottle_id in sorted(doomed_states & agents):
        sdir = StateDir(state_root, str(bottle_id))
        if sdir.agent_ran() and _backend(sdir) == "docker":
            ids.append(str(bottle_id))
    return ids + _kept(inv, state_root)


def awaiting(state_root: Path, *, owner_state: OwnerState = proc.owner_state) -> list[str]:
    """Bottles whose bot-bottle process ended after their agent started, with no teardown (a
    CLI killed, a machine restarted under it): their agent's work is in a container, running or
    left stopped, until ``cleanup`` saves it. Read from the state folders alone, with no engine
    call, so ``start`` can say so at no cost."""
    ids = []
    for sdir in all_states(state_root):
        if sdir.preserved or not sdir.agent_ran():
            continue
        try:
            meta = sdir.read()
        except BotBottleError:
            continue
        if meta.backend == "docker" and owner_state(meta.owner) == proc.GONE:
            ids.append(sdir.id)
    return ids


def awaiting_hint(ids: list[str]) -> str:
    """What ``start`` says of the bottles ``awaiting`` found."""
    which = f"bottle {ids[0]}" if len(ids) == 1 else "bottles " + ", ".join(ids)
    was = "was" if len(ids) == 1 else "were"
    then = f"`bot-bottle resume {ids[0]}`" if len(ids) == 1 else "`bot-bottle resume ID`"
    return (f"{which} {was} left behind when {'its' if len(ids) == 1 else 'their'} bot-bottle process ended "
            f"(killed, or the machine restarted) with the agent's work unsaved: `bot-bottle cleanup` saves "
            f"it for {then} (`cleanup -n` shows what it would do)")


def _kept(inv: Inventory, state_root: Path) -> list[str]:
    """Preserved bottles whose agent container was kept because their snapshot failed."""
    return sorted({str(r.bottle_id) for r, _ in inv.kept
                   if r.kind == "container" and r.bottle_id and r.name == BottleNames(r.bottle_id, "").agent_container
                   and StateDir(state_root, r.bottle_id).kept_agent() == r.name})


def _backend(sdir: StateDir) -> str | None:
    try:
        return sdir.read().backend
    except BotBottleError:
        return None  # unreadable metadata: nothing could resume it, so nothing is saved for it


def save(bottle_id: str, state_root: Path) -> tuple[bool, str | None]:
    """Stop the orphan's agent if it still runs, snapshot it and preserve the bottle.

    Returns (saved, why the snapshot failed). On a failure the agent container is kept and the
    bottle preserved, so ``cleanup`` removes only what holds no work. Not saved and no failure:
    another process holds the bottle now (a second ``cleanup`` saving it, a ``resume``).
    """
    from bot_bottle.backend.registry import DockerBackend

    sdir = StateDir(state_root, bottle_id)
    try:
        lock = sdir.hold_run()
    except (BotBottleError, OSError):
        return False, None
    try:
        container = BottleNames(bottle_id, "").agent_container
        kept = sdir.kept_agent() == container
        if sdir.preserved and not kept:
            return False, None  # saved by another cleanup just before this one took the lock
        engine.run(["stop", "-t", str(STOP_TIMEOUT_S), container], timeout=STOP_TIMEOUT_S + 60, check=False)
        try:
            DockerBackend().commit(bottle_id, state_root=state_root)
        except BotBottleError as exc:
            if not kept:
                sdir.keep_agent(container)
                sdir.preserve(NOT_SAVED)
            # A kept one stays as it was, its reason with it, for the next try.
            return False, str(exc)
        sdir.clear_kept_agent()
        sdir.preserve(SAVED_LATE if kept else SAVED)
        return True, None
    finally:
        lock.release()


BUSY = "another bot-bottle process holds it (a second cleanup saving it, or a resume)"


def leave_busy(inv: Inventory, ids: Iterable[str]) -> None:
    """Nothing of a bottle another process held while this cleanup would have saved it is
    removed in this run: that process may be taking its snapshot right now."""
    busy = set(ids)
    left = [r for r in inv.orphans if r.bottle_id in busy]
    inv.orphans[:] = [r for r in inv.orphans if r.bottle_id not in busy]
    inv.skipped.extend((r, BUSY) for r in left)


def preview(inv: Inventory, ids: Iterable[str]) -> None:
    """What ``cleanup -n`` shows for bottles it would save: their state folder (and the agent's
    work with it) stays, as ``save`` makes it; their containers still go."""
    keep = set(ids)
    kept = [r for r in inv.orphans if r.kind == "state" and r.bottle_id in keep]
    inv.orphans[:] = [r for r in inv.orphans if r not in kept]
    inv.kept.extend((r, "would be saved first (a snapshot), for resume") for r in kept)
    # A container kept for its failed snapshot goes once the snapshot is taken.
    retried = [(r, why) for r, why in inv.kept if r.kind in ("container", "volume") and r.bottle_id in keep]
    inv.kept[:] = [entry for entry in inv.kept if entry not in retried]
    inv.orphans.extend(r for r, _ in retried)


# Why cleanup without an engine keeps an orphan's state folder whose agent had started.
UNCHECKED = ("its agent's work may still be in its container, which cannot be checked without an engine; "
             "`bot-bottle cleanup` with the engine running saves it first")


def keep_unchecked(inv: Inventory, state_root: Path) -> None:
    """Without an engine: keep the state folders of orphans whose agent had started. Removing
    one would make its container, once the engine is back, an orphan nothing resumes, removed
    with the work in it."""
    kept = [r for r in inv.orphans if r.kind == "state" and r.bottle_id
            and StateDir(state_root, r.bottle_id).agent_ran()]
    inv.orphans[:] = [r for r in inv.orphans if r not in kept]
    inv.kept.extend((r, UNCHECKED) for r in kept)
