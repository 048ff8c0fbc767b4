"""``bot-bottle stop ID``: stop a running bottle; its owner tears it down (or cleanup does)."""

from __future__ import annotations

import argparse

from rich.text import Text

from bot_bottle.backend.docker import cleanup, engine
from bot_bottle.backend.docker.running import running
from bot_bottle.cli import common, output
from bot_bottle.errors import BotBottleError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stop",
        help="stop a running bottle (its state is preserved for resume)",
        description=(
            "Stop the agent of bottle ID. The agent's non-zero exit preserves the bottle's state and "
            "snapshot for `resume`; a bottle whose CLI is gone is removed outright."
        ),
    )
    p.add_argument("id", metavar="ID")
    p.add_argument("-t", "--time", type=int, default=5, help="seconds to wait before killing (default 5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    bottles = running(args.id)
    if not bottles:
        raise BotBottleError(f"no running bottle {args.id}", hint="`bot-bottle list --running` shows them")
    b = bottles[0]
    engine.run(["stop", "-t", str(args.time), b.names.agent_container], timeout=args.time + 60)
    if not b.owner_alive:
        inv = cleanup.inventory(common.layout().state_dir)
        mine = [r for r in inv.orphans if r.bottle_id == b.id and r.kind != "state"]
        cleanup.remove(mine)
    output.console().print(Text(f"stopped bottle {b.id}", style="green"))
    return 0
