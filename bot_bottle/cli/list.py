"""``bot-bottle list``: agents and bottles, where each came from, and the bottles running or
preserved for ``resume``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bot_bottle.backend.docker.engine import DockerError
from bot_bottle.cli import common, output
from bot_bottle.cli.render import _cell as cell  # text as written: never read as Rich markup
from bot_bottle.errors import BotBottleError
from bot_bottle.manifest import discover


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "list",
        help="list agents, bottles, and running and preserved bottles",
        description=(
            "List agents (home and this folder) and bottles (home only), with their files, then the "
            "bottles running now and those preserved for `bot-bottle resume ID`. Without a Docker "
            "engine the running ones are not known: the list says so and shows the rest."
        ),
    )
    p.add_argument("--running", action="store_true",
                   help="list only running and preserved bottles (fails when no Docker engine answers)")
    common.add_format(p)
    p.set_defaults(func=run)


def _preserved(state_dir: Path, live_ids: set[str]) -> list[dict[str, Any]]:
    from bot_bottle import state

    saved = []
    for sdir in state.all_states(state_dir):
        if not sdir.preserved or sdir.id in live_ids:
            continue
        try:
            meta = sdir.read()
        except Exception as exc:  # noqa: BLE001 - one bad state folder must not hide the others
            # Listed, not skipped: `cleanup` reports it as kept, and the operator should see why.
            why = str(exc) if isinstance(exc, BotBottleError) else type(exc).__name__
            saved.append({"id": sdir.id, "agent": None, "label": None, "backend": None, "snapshot": None,
                          "reason": f"its metadata cannot be read ({why})"})
            continue
        saved.append({"id": meta.id, "agent": meta.agent, "label": meta.label, "backend": meta.backend,
                      "snapshot": meta.snapshot, "reason": sdir.preserve_reason})
    return saved


def _owner(state_dir: Path, bottle_id: str) -> str | None:
    """What can be told about this home's bottle's owner from its metadata (``proc.ALIVE``,
    ``GONE`` or ``UNKNOWN``), or None when its metadata cannot be read."""
    from bot_bottle import proc, state

    try:
        return proc.owner_state(state.StateDir(state_dir, bottle_id).read().owner)
    except Exception:  # noqa: BLE001 - one bad state folder must not hide the others
        return None


def current_sidecar_image() -> str | None:
    """This version's sidecar image reference, or None when it cannot be worked out (a broken
    images folder is for `doctor` and `start` to report, not for a listing)."""
    from bot_bottle import images

    try:
        return images.sidecar_image().ref
    except (BotBottleError, OSError, ValueError):
        return None


def sidecar_outdated(sidecar_image: str | None, current: str | None) -> bool:
    """Whether a running bottle's sidecar is another version's than this one's: its egress
    proxy, git-gate and supervise server stay that version's until it is stopped and resumed."""
    return bool(sidecar_image and current and sidecar_image != current)


def _running_row(b: Any, state_dir: Path, current_sidecar: str | None = None) -> dict[str, Any]:
    """One running bottle. Only one of this home's (its state folder is here) can be an orphan
    this home's ``cleanup`` removes; an owner that cannot be checked from here is "unknown"."""
    from bot_bottle import proc
    from bot_bottle.backend.docker.cleanup import has_state_here
    from bot_bottle.state import StateDir

    here = has_state_here(state_dir, b.id)
    owner = _owner(state_dir, b.id) if here else None
    if owner is None and (here or not b.owner_alive):
        # From the engine's label alone: "not alive" is "provably gone"; alive may be unknown.
        owner = proc.ALIVE if b.owner_alive else proc.GONE
    return {"id": b.id, "agent": b.agent, "label": b.label, "status": b.status, "started_at": b.started_at,
            "backend": b.backend, "orphaned": here and owner == proc.GONE, "offline": b.offline,
            "from_this_home": here, "owner": owner,
            "agent_ran": here and StateDir(state_dir, b.id).agent_ran(),
            "outdated_sidecar": sidecar_outdated(getattr(b, "sidecar_image", None), current_sidecar)}


def _bottles(*, strict: bool) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]], str | None]:
    """(running, preserved, why the running ones are not known). ``strict``: no engine raises."""
    from bot_bottle.backend.docker.running import running

    lay = common.layout()
    try:
        live = running()
    except DockerError as exc:
        if strict:
            raise
        return None, _preserved(lay.state_dir, set()), str(exc)
    current = current_sidecar_image() if live else None
    rows = [_running_row(b, lay.state_dir, current) for b in live]
    return rows, _preserved(lay.state_dir, {b.id for b in live}), None


def _status(r: dict[str, Any]) -> str:
    status = r["status"]
    if not r["from_this_home"]:
        # Nothing here may act on it, and an owner label from another PID namespace in the old
        # format reads as gone: its own home's `list` judges it.
        status += " (not started from this home)"
    elif r["orphaned"]:
        if r.get("backend") == "docker":
            # Its work is still in its container: `stop` keeps it for resume, and so does
            # `cleanup` once the agent had started (before that there is no work to keep).
            then = "so does `bot-bottle cleanup`" if r.get("agent_ran") else "`bot-bottle cleanup` removes it"
            status += f" (orphaned: `bot-bottle stop {r['id']}` keeps its work for resume; {then})"
        else:
            status += " (orphaned: run `bot-bottle cleanup`)"
    elif r["owner"] == "unknown":
        status += " (owner unknown: started in another PID namespace or on another host)"
    if r.get("outdated_sidecar") and r["status"] == "running":
        # Started before an upgrade: what this version changed in its protections reaches it
        # only with a new sidecar.
        status += (f" (its sidecar is an older version's: `bot-bottle stop {r['id']}`, then `resume` it, to update)"
                   if r["from_this_home"] else " (its sidecar is an older version's)")
    if r["offline"]:
        # Stopping and resuming it is for the home that started it.
        status += (f" (offline: its sidecar stopped; `bot-bottle stop {r['id']}`, then `resume` it)"
                   if r["from_this_home"] else " (offline: its sidecar stopped)")
    return status


def _show_bottles(rows: list[dict[str, Any]] | None, saved: list[dict[str, Any]], engine: str | None) -> None:
    con = output.console()
    if engine is not None:
        con.print(cell(f"running bottles: not known ({engine})"))
    elif not rows and not saved:
        con.print("no running or preserved bottles")
        return
    if rows:
        table = output.table("Running bottles")
        for col in ("id", "agent", "label", "backend", "status", "started"):
            table.add_column(col, overflow="fold")
        for r in rows:
            cells = (r["id"], r["agent"], r["label"] or "-", r["backend"], _status(r), r["started_at"])
            table.add_row(*map(cell, cells))
        output.show(table)
    if saved:
        table = output.table("Preserved bottles (bot-bottle resume ID)")
        for col in ("id", "agent", "label", "why"):
            table.add_column(col, overflow="fold")
        for r in saved:
            table.add_row(*map(cell, (r["id"], r["agent"] or "?", r["label"] or "-", r["reason"] or "-")))
        output.show(table)


def _run_bottles(args: argparse.Namespace) -> int:
    rows, saved, _ = _bottles(strict=True)
    if args.format == "json":
        output.print_json({"running": rows, "preserved": saved})
        return 0
    _show_bottles(rows, saved, None)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.running:
        return _run_bottles(args)
    lay = common.home_layout()
    cat = discover(lay)
    agents = [
        {
            "name": ref.name,
            "origin": ref.origin,
            "path": str(ref.path),
            "overrides": str(cat.shadowed[ref.name].path) if ref.name in cat.shadowed else None,
        }
        for ref in sorted(cat.agents.values(), key=lambda r: r.name)
    ]
    bottles = [
        {"name": ref.name, "origin": ref.origin, "path": str(ref.path)}
        for ref in sorted(cat.bottles.values(), key=lambda r: r.name)
    ]
    running, saved, engine = _bottles(strict=False)
    if args.format == "json":
        # "running" is null when no engine answered ("engine" says why): not known, not none.
        output.print_json({"agents": agents, "bottles": bottles, "warnings": list(cat.warnings),
                           "running": running, "preserved": saved, "engine": engine})
        return 0
    for warning in cat.warnings:
        output.warn(warning)
    con = output.console()
    if not agents and not bottles:
        con.print(cell(f"No agents or bottles yet in {lay.home_dir}. Run `bot-bottle init` to create examples."))
        _show_bottles(running, saved, engine)
        return 0
    table = output.table("Agents")
    table.add_column("name", overflow="fold")
    table.add_column("from", overflow="fold")
    table.add_column("file", style="dim", overflow="fold")
    for a in agents:
        origin = "this folder" if a["origin"] == "cwd" else "home"
        if a["overrides"]:
            origin += " (overrides home)"
        table.add_row(cell(a["name"]), cell(origin), cell(a["path"]))
    output.show(table)
    table = output.table("Bottles")
    table.add_column("name", overflow="fold")
    table.add_column("file", style="dim", overflow="fold")
    for b in bottles:
        table.add_row(cell(b["name"]), cell(b["path"]))
    output.show(table)
    _show_bottles(running, saved, engine)
    return 0
