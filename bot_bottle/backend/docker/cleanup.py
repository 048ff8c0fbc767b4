"""Find and remove what no live bottle owns: containers, networks, volumes, snapshots, state.

Only this home's bottles are judged: a bottle's object (labelled with its ``bot-bottle.bottle``)
is this home's when a state folder for its bottle id exists under this home's state dir, or its
``bot-bottle.state`` label names a folder there (what a failed teardown left, once the folder
went). Other homes' bottles on a
shared engine are skipped (``Inventory.skipped``) and said so, whatever their owner. A helper
that belongs to no bottle (a demo's stand-in internet, a micro-VM launch's throwaway registry)
has no state anywhere and nothing resumes it: it is judged by its owner alone.

A bottle of this home is live while the process named by its objects' ``bot-bottle.owner``
label (pid plus start time, see ``proc.identity``) still runs. An owner in another PID namespace
or on another host cannot be checked from here: its objects are skipped, never taken for orphans.
Removing something already gone is not an error, so ``cleanup`` is idempotent and safe to run
while other bottles work.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bot_bottle import proc, state
from bot_bottle.backend.docker import engine, removal
from bot_bottle.backend.docker.names import LABEL_BOTTLE, LABEL_ID, LABEL_OWNER, LABEL_STATE, BottleNames

# An owner label (or metadata owner) to ``proc.ALIVE``, ``proc.GONE`` or ``proc.UNKNOWN``.
OwnerState = Callable[[str | None], str]

UNKNOWN_OWNER = ("its owner runs in another PID namespace or on another host, so whether it still "
                 "runs cannot be checked from here")


@dataclass(frozen=True)
class Resource:
    kind: str  # container | network | volume | image | state
    ref: str  # what removal takes: id, name or path
    name: str
    bottle_id: str | None


@dataclass
class Inventory:
    orphans: list[Resource] = field(default_factory=list)
    live: list[Resource] = field(default_factory=list)
    # This home's, kept with why (preserved bottles and their snapshots): ``cleanup --all`` removes them.
    kept: list[tuple[Resource, str]] = field(default_factory=list)
    # Never removed from here, with why: other homes' bottles, owners not checkable from here.
    skipped: list[tuple[Resource, str]] = field(default_factory=list)


def _lines(args: list[str]) -> list[str]:
    return [line for line in engine.run(args, timeout=60).stdout.splitlines() if line.strip()]


def _inspect(kind: str, refs: list[str]) -> list[dict]:
    if not refs:
        return []
    cmd = {"container": ["inspect"], "network": ["network", "inspect"], "volume": ["volume", "inspect"], "image": ["image", "inspect"]}[kind]
    result = engine.run([*cmd, *refs], timeout=60, check=False)
    try:
        data = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        return []
    return data if isinstance(data, list) else []


def _labels(kind: str, obj: dict) -> dict[str, str]:
    if kind == "container" or kind == "image":
        return (obj.get("Config") or {}).get("Labels") or {}
    return obj.get("Labels") or {}


def _name(kind: str, obj: dict) -> str:
    if kind == "container":
        return str(obj.get("Name", "")).lstrip("/")
    if kind == "image":
        tags = obj.get("RepoTags") or []
        return tags[0] if tags else str(obj.get("Id", ""))[:19]
    return str(obj.get("Name", ""))


def has_state_here(state_root: Path, bottle_id: str | None) -> bool:
    """Whether bottle ``bottle_id`` has a state folder under ``state_root``: it was started from
    this home, so this home's commands may act on it. A label that is no bottle id never has."""
    if not bottle_id or not state.ID_RE.match(bottle_id):
        return False
    return (state_root / bottle_id).is_dir()


def not_here(bottle_id: str | None, state_root: Path, owner: str | None = None) -> str:
    """Why an object of a bottle with no state under ``state_root`` is skipped: it is not this
    home's to remove (another home's bottle, live or not), and what to do about it."""
    why = f"bottle {bottle_id or '?'} has no state under {state_root}, so it was not started from this home"
    return why + {
        proc.ALIVE: " (it runs)",
        proc.GONE: " (its owner looks gone from here: `bot-bottle cleanup` run with the HOME that started it "
                   "removes it)",
        proc.UNKNOWN: " (its owner runs in another PID namespace or on another host)",
    }.get(owner or "", "")


def _state_owner(sdir: state.StateDir, owner_state: OwnerState) -> str:
    try:
        return owner_state(sdir.read().owner)
    except Exception:  # noqa: BLE001 - unreadable metadata names no owner: judged as before
        return proc.GONE


def judge_states(inv: Inventory, states: Iterable[state.StateDir], *, owner_state: OwnerState = proc.owner_state,
                 live_ids: frozenset[str] = frozenset(), unknown_ids: frozenset[str] = frozenset()) -> set[str]:
    """Sort this home's state folders into ``inv``; return the ids of those that are orphans.

    ``live_ids`` / ``unknown_ids``: bottles with an object whose owner runs / cannot be checked.
    A bottle that runs (or may) is never offered to ``--all``, even when it is preserved.
    """
    orphaned = set()
    for sdir in states:
        res = Resource("state", str(sdir.path), sdir.id, sdir.id)
        owner = _state_owner(sdir, owner_state)
        if sdir.id in live_ids or owner == proc.ALIVE:
            inv.live.append(res)
        elif sdir.id in unknown_ids or owner == proc.UNKNOWN:
            inv.skipped.append((res, UNKNOWN_OWNER))
        elif sdir.preserved:
            inv.kept.append((res, "preserved for resume"))
        else:
            inv.orphans.append(res)
            orphaned.add(sdir.id)
    return orphaned


_LISTING = {
    "container": ["ps", "-a", "-q", "--no-trunc", "--filter", f"label={LABEL_ID}"],
    "network": ["network", "ls", "-q", "--no-trunc", "--filter", f"label={LABEL_ID}"],
    "volume": ["volume", "ls", "-q", "--filter", f"label={LABEL_ID}"],
}


@dataclass
class _Owners:
    """Bottle ids with an object whose owner runs (``live``) or cannot be checked (``unknown``)."""

    live: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)


# Why cleanup keeps a preserved bottle's agent container (and the volume it mounts): the
# teardown keeps it, stopped, when the bottle's last snapshot failed, and it then holds work no
# snapshot has. ``cleanup --all`` removes it with the bottle.
KEPT_AGENT = "the agent container of preserved bottle {id}: it holds work no snapshot has (`docker cp` it out)"


def _kept_agent_part(res: Resource, kept: Collection[str]) -> bool:
    """Whether ``res`` is the agent container or socket volume of a preserved bottle whose
    teardown kept it (``StateDir.kept_agent``), of the bottles in ``kept``."""
    if res.bottle_id not in kept:
        return False
    names = BottleNames(str(res.bottle_id), "")
    return (res.kind, res.name) in {("container", names.agent_container), ("volume", names.socket_volume)}


def _judge_object(inv: Inventory, res: Resource, labels: dict[str, str], state_root: Path, *,
                  states: set[str], owner_state: OwnerState, owners: _Owners,
                  kept: Collection[str] = frozenset()) -> None:
    """A container, network or volume: a bottle's goes by its owner only when the bottle is this
    home's; a helper of no bottle (no ``bot-bottle.bottle`` label) goes by its owner alone. The
    agent container and socket volume a preserved bottle's teardown kept stay (``KEPT_AGENT``)."""
    owner = owner_state(labels.get(LABEL_OWNER))
    # This home's too when its state label says so: a teardown that could not remove it may
    # have removed its state folder already.
    labelled_here = bool(labels.get(LABEL_STATE)) and Path(labels[LABEL_STATE]).parent == state_root
    if LABEL_BOTTLE in labels and res.bottle_id not in states and not labelled_here:
        inv.skipped.append((res, not_here(res.bottle_id, state_root, owner)))
    elif owner == proc.ALIVE:
        inv.live.append(res)
        owners.live.add(str(res.bottle_id))
    elif owner == proc.UNKNOWN:
        inv.skipped.append((res, UNKNOWN_OWNER))
        owners.unknown.add(str(res.bottle_id))
    elif _kept_agent_part(res, kept):
        inv.kept.append((res, KEPT_AGENT.format(id=res.bottle_id)))
    else:
        inv.orphans.append(res)


def inventory(state_root: Path, *, owner_state: OwnerState = proc.owner_state) -> Inventory:
    inv = Inventory()
    states = {s.id: s for s in state.all_states(state_root)}
    owners = _Owners()
    attached: dict[str, dict[str, str]] = {}  # network ref -> {container id: name} of what uses it
    for kind, args in _LISTING.items():
        for obj in _inspect(kind, _lines(args)):
            labels = _labels(kind, obj)
            ref = str(obj.get("Name")) if kind == "volume" else str(obj.get("Id") or obj.get("Name"))
            res = Resource(kind, ref, _name(kind, obj), labels.get(LABEL_ID))
            if kind == "network":
                attached[ref] = {str(cid): str((info or {}).get("Name") or cid)
                                 for cid, info in (obj.get("Containers") or {}).items()}
            _judge_object(inv, res, labels, state_root, states=set(states), owner_state=owner_state, owners=owners,
                          kept={sid for sid, sdir in states.items() if sdir.preserved and sdir.kept_agent()})
    _keep_networks_in_use(inv, attached)
    orphaned = judge_states(inv, states.values(), owner_state=owner_state,
                            live_ids=frozenset(owners.live), unknown_ids=frozenset(owners.unknown))
    images = _lines(["images", "-q", "--no-trunc", "--filter", f"label={LABEL_ID}"])
    for obj in _inspect("image", sorted(set(images))):
        _judge_image(inv, obj, state_root, states=set(states), orphaned=orphaned, owners=owners)
    return inv


def _keep_networks_in_use(inv: Inventory, attached: dict[str, dict[str, str]]) -> None:
    """An orphaned network that a container this cleanup leaves is still attached to (another
    home's bottle joined a helper's network) cannot be removed: it is skipped, saying by what,
    instead of failing the run."""
    removed = {res.ref for res in inv.orphans if res.kind == "container"}
    for res in [r for r in inv.orphans if r.kind == "network"]:
        users = sorted(name.lstrip("/") for cid, name in attached.get(res.ref, {}).items() if cid not in removed)
        if users:
            inv.orphans.remove(res)
            inv.skipped.append((res, f"still used by {', '.join(users)}, which this cleanup does not remove"))


def _judge_image(inv: Inventory, obj: dict, state_root: Path, *, states: set[str], orphaned: set[str],
                 owners: _Owners) -> None:
    """A snapshot (or capability build) goes with its bottle's state folder here; one whose
    state folder is elsewhere, or not known, is another home's and is never removed from here."""
    labels = _labels("image", obj)
    bid = labels.get(LABEL_ID)
    res = Resource("image", str(obj.get("Id")), _name("image", obj), bid)
    saved_in = Path(labels[LABEL_STATE]).parent if labels.get(LABEL_STATE) else None
    if bid in orphaned:
        inv.orphans.append(res)  # its state folder goes in this run: nothing will resume from it
    elif bid in owners.live:
        inv.live.append(res)
    elif bid in owners.unknown:
        inv.skipped.append((res, UNKNOWN_OWNER))
    elif bid in states:
        inv.kept.append((res, f"snapshot of saved bottle {bid}"))
    elif saved_in == state_root:
        inv.orphans.append(res)  # this home's, and its state folder is gone
    elif saved_in is not None:
        inv.skipped.append((res, f"snapshot of bottle {bid} saved under {saved_in}, another home's"))
    else:
        inv.skipped.append((res, not_here(bid, state_root)))


def stale_images(state_root: Path, current: set[str]) -> tuple[list[Resource], list[tuple[Resource, str]]]:
    """bot-bottle's own built images (``bot-bottle.image`` label) that this version no longer
    uses: (to remove, kept with why). Kept: the ``current`` refs, images any container uses (of
    any owner), images a saved bottle's metadata names, snapshots (they belong to a bottle and
    ``inventory`` judges them), and for images built from a user's Dockerfile or plugin (whose
    current tag depends on files this command does not read) the newest of each repository."""
    from bot_bottle.images import LABEL_IMAGE

    used = {str(c.get("Image")) for c in _inspect("container", _lines(["ps", "-a", "-q", "--no-trunc"]))}
    named: dict[str, str] = {}
    for sdir in state.all_states(state_root):
        try:
            meta = sdir.read()
        except Exception:  # noqa: BLE001 - an unreadable folder names nothing
            continue
        if meta.image:
            named[meta.image] = sdir.id
    stale: list[Resource] = []
    kept: list[tuple[Resource, str]] = []
    newest: dict[str, tuple[str, Resource]] = {}  # repository -> (created, image) for custom builds
    images = _lines(["images", "-q", "--no-trunc", "--filter", f"label={LABEL_IMAGE}"])
    for obj in _inspect("image", sorted(set(images))):
        labels = _labels("image", obj)
        if labels.get(LABEL_ID):
            continue  # a bottle's snapshot
        image_id = str(obj.get("Id"))
        tags = [t for t in obj.get("RepoTags") or [] if not t.endswith(":<none>")]
        for ref in tags or [image_id]:
            res = Resource("image", ref, ref if tags else f"untagged {image_id[7:19]}", None)
            if ref in current:
                continue
            if image_id in used:
                kept.append((res, "used by a container"))
            elif ref in named:
                kept.append((res, f"the image of saved bottle {named[ref]}"))
            elif tags and not _built_in(ref, current):
                created = str(obj.get("Created", ""))
                repo = ref.rsplit(":", 1)[0]
                previous = newest.get(repo)
                if previous is None or created > previous[0]:
                    if previous is not None:
                        stale.append(previous[1])
                    newest[repo] = (created, res)
                else:
                    stale.append(res)
            else:
                stale.append(res)
    kept += [(res, "the newest build of a custom image") for _, res in newest.values()]
    return stale, kept


def _built_in(ref: str, current: set[str]) -> bool:
    """Whether ``ref`` is of a repository whose current tag is known (a built-in image)."""
    return ref.rsplit(":", 1)[0] in {c.rsplit(":", 1)[0] for c in current}


_ORDER = {"container": 0, "network": 1, "volume": 2, "image": 3, "state": 4}


def remove(resources: list[Resource]) -> list[str]:
    """Remove in dependency order; return one message per failure (already-gone is fine)."""
    failures: list[str] = []
    for res in sorted(resources, key=lambda r: _ORDER[r.kind]):
        if res.kind == "state":
            state.StateDir(Path(res.ref).parent, res.name).remove()
            continue
        cmd = {
            "container": ["rm", "-f", "-v", res.ref],
            "network": ["network", "rm", res.ref],
            "volume": ["volume", "rm", "-f", res.ref],
            # A build image by tag, without force: one a container started to use since is kept.
            "image": ["rmi", res.ref] if res.bottle_id is None else ["rmi", "-f", res.ref],
        }[res.kind]
        try:
            result = engine.run(cmd, timeout=60, check=False)
        except engine.DockerError as exc:
            if res.kind != "container":
                raise
            # A runtime slow to let the container go (gVisor after many processes): waited out
            # while the engine answers, before its network and volume are removed.
            why = removal.wait_out([res.ref], str(exc), timeout=60,
                                   waiting=removal.Waiting(_say, named=lambda _ref, n=res.name: n))
            if why is not None:
                failures.append(f"container {res.name}: {why}")
            continue
        if result.returncode != 0 and not _gone_anyway(res, result.stderr):
            failures.append(f"{res.kind} {res.name}: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'failed'}")
    return failures


def _say(message: str) -> None:
    try:
        sys.stderr.write(f"bot-bottle: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # the terminal is gone: the removal goes on regardless


# How long a removal someone else began (another `cleanup` run at the same time) is waited for:
# a gVisor sandbox can take a while to die.
REMOVAL_WAIT_S = 120.0


def _gone_anyway(res: Resource, stderr: str) -> bool:
    """Whether a failed removal still leaves ``res`` gone: it was gone already, or another
    `cleanup` is removing it right now (then it is waited for, so that its network and volume,
    removed next, are no longer in use by it)."""
    low = stderr.lower()
    if "no such" in low or "not found" in low:
        return True
    if res.kind != "container" or "already in progress" not in low:
        return False
    deadline = time.monotonic() + REMOVAL_WAIT_S
    while time.monotonic() < deadline:
        if engine.run(["container", "inspect", "-f", "{{.Id}}", res.ref], timeout=60, check=False).returncode != 0:
            return True
        time.sleep(0.2)
    return False
