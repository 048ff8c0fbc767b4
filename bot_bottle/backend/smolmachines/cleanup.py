"""Find micro-VM machines no live bottle owns, and the ones still running.

A machine is bot-bottle's when its name is ``bot-bottle-<id>``, and this home's when a state
folder for that id exists under this home's state dir: only those are judged, the rest are
skipped and said so. Its owner (pid plus start time, see ``proc.identity``) comes from its
``bot-bottle.owner`` label (smolvm 1.x) or, for a CLI without labels, from the bottle's state
folder; an owner in another PID namespace or on another host cannot be checked from here, and its
machine is skipped too. The sidecar bundle's Docker objects are the Docker cleanup's business; this
module only ever calls smolvm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bot_bottle import proc
from bot_bottle.backend.docker.cleanup import (
    UNKNOWN_OWNER,
    Inventory,
    OwnerState,
    Resource,
    has_state_here,
    not_here,
)
from bot_bottle.backend.docker.names import LABEL_AGENT, LABEL_LABEL, LABEL_OWNER
from bot_bottle.backend.smolmachines import smolvm
from bot_bottle.backend.smolmachines.names import bottle_id_of
from bot_bottle.errors import BotBottleError
from bot_bottle.state import StateDir

KIND = "machine"


@dataclass(frozen=True)
class Machine:
    name: str
    bottle_id: str
    state: str
    owner: str | None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def agent(self) -> str | None:
        return self.labels.get(LABEL_AGENT)

    @property
    def label(self) -> str | None:
        return self.labels.get(LABEL_LABEL)


def _owner_from_state(state_root: Path | None, bottle_id: str) -> str | None:
    if state_root is None:
        return None
    try:
        return StateDir(state_root, bottle_id).read().owner
    except BotBottleError:
        return None


def machines(state_root: Path | None = None) -> list[Machine]:
    """Every machine named like one of ours, whatever its state."""
    out = []
    for entry in smolvm.machine_ls():
        name = str(entry.get("name") or "")
        bottle_id = bottle_id_of(name)
        if bottle_id is None:
            continue  # somebody else's machine: never touched
        labels = {str(k): str(v) for k, v in (entry.get("labels") or {}).items()}
        owner = labels.get(LABEL_OWNER) or _owner_from_state(state_root, bottle_id)
        out.append(Machine(name, bottle_id, str(entry.get("state") or "?"), owner, labels))
    return out


def running(bottle_id: str | None = None, state_root: Path | None = None) -> list[Machine]:
    return [
        m for m in machines(state_root)
        if m.state == "running" and (bottle_id is None or m.bottle_id == bottle_id)
    ]


def inventory(state_root: Path, *, owner_state: OwnerState = proc.owner_state) -> Inventory:
    """This home's machines whose launching process is gone are orphans; those whose owner runs
    are live; the rest (another home's, or an owner not checkable from here) are skipped.

    A preserved bottle's machine is an orphan too: resume creates a fresh machine from the
    snapshot in the state folder, which is what is kept.
    """
    inv = Inventory()
    if not smolvm.is_available():
        return inv
    for m in machines(state_root):
        res = Resource(KIND, m.name, m.name, m.bottle_id)
        owner = owner_state(m.owner)
        if not has_state_here(state_root, m.bottle_id):
            inv.skipped.append((res, not_here(m.bottle_id, state_root, owner)))
        elif owner == proc.ALIVE:
            inv.live.append(res)
        elif owner == proc.UNKNOWN:
            inv.skipped.append((res, UNKNOWN_OWNER))
        else:
            inv.orphans.append(res)
    return inv


def remove(resources: list[Resource]) -> list[str]:
    """Delete the machines among ``resources``; one message per failure (already gone is fine)."""
    failures = []
    for res in resources:
        if res.kind != KIND:
            continue
        try:
            smolvm.machine_delete(res.ref)
        except smolvm.SmolvmError as exc:
            if "not found" not in exc.stderr.lower():
                failures.append(f"{KIND} {res.name}: {exc}")
    return failures
