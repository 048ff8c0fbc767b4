"""``bot-bottle stop ID``: stop a running bottle; its owner tears it down (or cleanup does)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.text import Text

from bot_bottle import api
from bot_bottle.cli import common, output
from bot_bottle.errors import BotBottleError, UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stop",
        help="stop a running bottle (its state is preserved for resume)",
        description=(
            "Stop the agent of bottle ID, a bottle started from this home. The agent's non-zero exit "
            "preserves the bottle's state and snapshot for `resume`; a bottle whose CLI is gone is "
            "removed outright."
        ),
    )
    p.add_argument("id", metavar="ID")
    p.add_argument("-t", "--time", type=int, default=5, help="seconds to wait before killing (default 5)")
    p.set_defaults(func=run)


def _require_own(bottle_id: str, state_dir: Path) -> None:
    """Refuse a bottle with no state folder here: it was started from another home (its owner
    would preserve it there, and this home's cleanup never removes it), or it does not exist."""
    from bot_bottle.backend.docker.cleanup import has_state_here
    from bot_bottle.state import StateDir

    StateDir(state_dir, bottle_id)  # an argument that is no bottle id is said so first
    if not has_state_here(state_dir, bottle_id):
        raise BotBottleError(
            f"bottle {bottle_id} has no state under {state_dir}: it was not started from this home "
            "(or does not exist), so it is not stopped from here",
            hint="`bot-bottle list --running` shows the running bottles and which are this home's; "
                 "stop a bottle with the HOME that started it",
        )


def run(args: argparse.Namespace) -> int:
    if args.time < 0:
        raise UsageError("--time must be 0 or more seconds")
    lay = common.layout()
    _require_own(args.id, lay.state_dir)
    api.stop(args.id, timeout=args.time, home=lay.home)
    output.console().print(Text(f"stopped bottle {args.id}", style="green"))
    return 0
