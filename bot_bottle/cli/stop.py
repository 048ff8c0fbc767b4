"""``bot-bottle stop [ID]``: stop a running bottle; its owner tears it down (or cleanup does)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.text import Text

from bot_bottle import api
from bot_bottle.cli import common, output
from bot_bottle.errors import BotBottleError, UsageError
from bot_bottle.state import ID_RE


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stop",
        help="stop a running bottle (its state is preserved for resume)",
        description=(
            "Stop the agent of bottle ID, a bottle started from this home. The agent's non-zero exit "
            "preserves the bottle's state and snapshot for `resume`; a Docker bottle whose CLI is gone "
            "is snapshotted and preserved here, then its containers removed."
        ),
    )
    p.add_argument("id", metavar="ID", nargs="?",
                   help="bottle id (default: the only running bottle started from this home)")
    p.add_argument("-t", "--time", type=int, default=5, help="seconds to wait before killing (default 5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.time < 0:
        raise UsageError("--time must be 0 or more seconds")
    lay = common.layout()
    if args.id:
        _require_known(lay.state_dir, args.id)
    bottle_id = args.id or common.only_own_running(lay.state_dir, "stop")
    api.stop(bottle_id, timeout=args.time, home=lay.home)
    output.console().print(Text(f"stopped bottle {bottle_id}", style="green"))
    return 0


def _require_known(state_dir: Path, bottle_id: str) -> None:
    """An id no bottle has is the user's slip, like a mistyped agent name: a usage error (exit 2)
    with the closest bottle of this home. A bottle this home has state for goes on to ``api.stop``
    (which says when it no longer runs), and so does a running bottle of another home, which is
    refused there as not this home's to stop."""
    from bot_bottle.backend.docker.cleanup import has_state_here
    from bot_bottle.cli.resume import bottle_suggestion

    hint = "`bot-bottle list --running` shows the running bottles and which are this home's"
    if not ID_RE.match(bottle_id):
        raise UsageError(f"'{bottle_id}' is not a bottle id" + bottle_suggestion(bottle_id, state_dir, saved=False),
                         hint=hint)
    if has_state_here(state_dir, bottle_id):
        return
    try:
        elsewhere = api.running(bottle_id)
    except BotBottleError:
        return  # the engine does not answer: api.stop still says this home has no such bottle
    if not elsewhere:
        raise UsageError(f"no bottle '{bottle_id}': none runs with that id, and none has state under {state_dir}"
                         + bottle_suggestion(bottle_id, state_dir, saved=False), hint=hint)
