"""``bot-bottle stop [ID]``: stop a running bottle; its owner tears it down (or cleanup does)."""

from __future__ import annotations

import argparse

from rich.text import Text

from bot_bottle import api
from bot_bottle.cli import common, output
from bot_bottle.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stop",
        help="stop a running bottle (its state is preserved for resume)",
        description=(
            "Stop the agent of bottle ID, a bottle started from this home. The agent's non-zero exit "
            "preserves the bottle's state and snapshot for `resume`; a Docker bottle whose CLI is gone "
            "is snapshotted and preserved here, then its containers removed. Exit status 2 when no bottle "
            "has that ID (or, without one, when several of this home's run), 1 when none of this home's runs "
            "or the bottle cannot be stopped from here (another home's, or not running)."
        ),
    )
    p.add_argument("id", metavar="ID", nargs="?",
                   help="bottle id (default: the only running bottle started from this home; with several, "
                        "name one)")
    p.add_argument("-t", "--time", type=int, default=5, help="seconds to wait before killing (default 5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.time < 0:
        raise UsageError("--time must be 0 or more seconds")
    lay = common.layout()
    if args.id:
        common.require_known_bottle(lay.state_dir, args.id)
    bottle_id = args.id or common.only_own_running(lay.state_dir, "stop")
    api.stop(bottle_id, timeout=args.time, home=lay.home)
    output.console().print(Text(f"stopped bottle {bottle_id}", style="green"))
    return 0
