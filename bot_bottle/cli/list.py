"""``bot-bottle list``: agents and bottles, and where each came from."""

from __future__ import annotations

import argparse

from rich.table import Table

from bot_bottle.cli import common, output
from bot_bottle.manifest import discover


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "list",
        help="list agents and bottles and where each came from",
        description="List agents (home and this folder) and bottles (home only), with their files.",
    )
    common.add_format(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
    table = Table(title="Agents", title_justify="left")
    table.add_column("name")
    table.add_column("from")
    table.add_column("file", style="dim")
    for a in agents:
        origin = "this folder" if a["origin"] == "cwd" else "home"
        if a["overrides"]:
            origin += " (overrides home)"
        table.add_row(a["name"], origin, a["path"])
    con.print(table)
    table = Table(title="Bottles", title_justify="left")
    table.add_column("name")
    table.add_column("file", style="dim")
    for b in bottles:
        table.add_row(b["name"], b["path"])
    con.print(table)
    return 0
