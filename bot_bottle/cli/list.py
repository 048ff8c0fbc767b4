"""``bot-bottle list``: agents and bottles, and where each came from."""

from __future__ import annotations

import argparse


from bot_bottle.cli import common, output
from bot_bottle.manifest import discover


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "list",
        help="list agents and bottles and where each came from",
        description="List agents (home and this folder) and bottles (home only), with their files.",
    )
    p.add_argument("--running", action="store_true", help="list running and preserved bottles instead")
    common.add_format(p)
    p.set_defaults(func=run)


def _run_bottles(args: argparse.Namespace) -> int:
    from bot_bottle import state
    from bot_bottle.backend.docker.running import running

    lay = common.layout()
    live = running()
    saved = []
    for sdir in state.all_states(lay.state_dir):
        if sdir.preserved and not any(b.id == sdir.id for b in live):
            try:
                meta = sdir.read()
            except Exception:
                continue
            saved.append({"id": meta.id, "agent": meta.agent, "label": meta.label, "backend": meta.backend,
                          "snapshot": meta.snapshot, "reason": sdir.preserve_reason})
    rows = [
        {"id": b.id, "agent": b.agent, "label": b.label, "status": b.status, "started_at": b.started_at,
         "backend": b.backend, "orphaned": not b.owner_alive, "offline": b.offline}
        for b in live
    ]
    if args.format == "json":
        output.print_json({"running": rows, "preserved": saved})
        return 0
    con = output.console()
    if not rows and not saved:
        con.print("no running or preserved bottles")
        return 0
    if rows:
        table = output.table("Running bottles")
        for col in ("id", "agent", "label", "backend", "status", "started"):
            table.add_column(col, overflow="fold")
        for r in rows:
            status = r["status"] + (" (orphaned: run `bot-bottle cleanup`)" if r["orphaned"] else "")
            if r["offline"]:
                status += f" (offline: its sidecar stopped; `bot-bottle stop {r['id']}`, then `resume` it)"
            table.add_row(r["id"], r["agent"], r["label"] or "-", r["backend"], status, r["started_at"])
        output.show(table)
    if saved:
        table = output.table("Preserved bottles (bot-bottle resume ID)")
        for col in ("id", "agent", "label", "why"):
            table.add_column(col, overflow="fold")
        for r in saved:
            table.add_row(r["id"], r["agent"], r["label"] or "-", r["reason"])
        output.show(table)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.running:
        return _run_bottles(args)
    lay = common.layout()
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
    if args.format == "json":
        output.print_json({"agents": agents, "bottles": bottles, "warnings": list(cat.warnings)})
        return 0
    for warning in cat.warnings:
        output.warn(warning)
    con = output.console()
    if not agents and not bottles:
        con.print(f"No agents or bottles yet in {lay.home_dir}. Run `bot-bottle init` to create examples.")
        return 0
    table = output.table("Agents")
    table.add_column("name", overflow="fold")
    table.add_column("from", overflow="fold")
    table.add_column("file", style="dim", overflow="fold")
    for a in agents:
        origin = "this folder" if a["origin"] == "cwd" else "home"
        if a["overrides"]:
            origin += " (overrides home)"
        table.add_row(a["name"], origin, a["path"])
    output.show(table)
    table = output.table("Bottles")
    table.add_column("name", overflow="fold")
    table.add_column("file", style="dim", overflow="fold")
    for b in bottles:
        table.add_row(b["name"], b["path"])
    output.show(table)
    return 0
