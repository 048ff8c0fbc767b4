"""Find and remove what no live bottle owns: containers, networks, volumes, snapshots, state.

A Docker object belongs to a live bottle when the process named by its ``bot-bottle.owner``
label (pid plus start time) still runs. Removing something already gone is not an error, so
``cleanup`` is idempotent and safe to run while other bottles work.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot_bottle import proc, state
from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.names import LABEL_ID, LABEL_OWNER


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
    kept: list[tuple[Resource, str]] = field(default_factory=list)


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


def inventory(state_root: Path, *, is_alive: Callable[[str | None], bool] = proc.is_alive) -> Inventory:
    inv = Inventory()
    listing = {
        "container": ["ps", "-a", "-q", "--no-trunc", "--filter", f"label={LABEL_ID}"],
        "network": ["network", "ls", "-q", "--no-trunc", "--filter", f"label={LABEL_ID}"],
        "volume": ["volume", "ls", "-q", "--filter", f"label={LABEL_ID}"],
    }
    live_ids: set[str] = set()
    for kind, args in listing.items():
        for obj in _inspect(kind, _lines(args)):
            labels = _labels(kind, obj)
            ref = str(obj.get("Id") or obj.get("Name"))
            res = Resource(kind, ref if kind != "volume" else str(obj.get("Name")), _name(kind, obj), labels.get(LABEL_ID))
            if is_alive(labels.get(LABEL_OWNER)):
                inv.live.append(res)
                if res.bottle_id:
                    live_ids.add(res.bottle_id)
            else:
                inv.orphans.append(res)

    states = {s.id: s for s in state.all_states(state_root)}
    for sid, sdir in states.items():
        res = Resource("state", str(sdir.path), sid, sid)
        try:
            meta = sdir.read()
        except Exception:
            meta = None
        if sdir.preserved:
            inv.kept.append((res, "preserved for resume"))
        elif sid in live_ids or (meta is not None and is_alive(meta.owner)):
            inv.live.append(res)
        else:
            inv.orphans.append(res)

    images = _lines(["images", "-q", "--no-trunc", "--filter", f"label={LABEL_ID}"])
    for obj in _inspect("image", sorted(set(images))):
        labels = _labels("image", obj)
        bid = labels.get(LABEL_ID)
        res = Resource("image", str(obj.get("Id")), _name("image", obj), bid)
        elsewhere = labels.get("bot-bottle.state")
        if bid in states:
            inv.kept.append((res, f"snapshot of saved bottle {bid}"))
        elif elsewhere and Path(elsewhere).parent != state_root and (Path(elsewhere) / state.METADATA).is_file():
            inv.kept.append((res, f"snapshot of bottle {bid} saved under {Path(elsewhere).parent}"))
        elif bid in live_ids:
            inv.live.append(res)
        else:
            inv.orphans.append(res)
    return inv


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
        result = engine.run(cmd, timeout=60, check=False)
        if result.returncode != 0 and "no such" not in result.stderr.lower() and "not found" not in result.stderr.lower():
            failures.append(f"{res.kind} {res.name}: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'failed'}")
    return failures
