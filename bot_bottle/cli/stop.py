"""``bot-bottle stop [ID]``: stop a running bottle; its owner tears it down (or cleanup does)."""

from __future__ import annotations

import argparse

from rich.text import Text

from bot_bottle import api, proc
from bot_bottle.cli import common, output
from bot_bottle.errors import BotBottleError, UsageError
from bot_bottle.state import StateDir


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
    sdir = StateDir(lay.state_dir, bottle_id)
    # Read before the stop: a bottle whose agent ran may be gone by the time the stop returns
    # (an agent that ends with 0 on SIGTERM is not preserved).
    ran = sdir.agent_ran()
    try:
        api.stop(bottle_id, timeout=args.time, home=lay.home)
    except BotBottleError:
        starting = None if ran else _starting_owner(sdir)
        if starting is None or api.running(bottle_id):
            raise
        # "no running bottle" would send the user away while the start goes on to run the agent.
        raise BotBottleError(
            f"bottle {bottle_id} is still starting (its containers are not made yet): there is nothing to stop yet",
            hint=f"stop it once `bot-bottle list --running` shows it, or end its start (process {starting}) "
                 "with Ctrl-C there or `kill`",
        ) from None
    output.console().print(Text(stopped_message(sdir, ran_before=ran), style="green"))
    return 0


def _starting_owner(sdir: StateDir) -> str | None:
    """The pid of the process starting ``sdir``'s bottle when it still runs, else None."""
    try:
        owner = sdir.read().owner
    except Exception:  # noqa: BLE001 - unreadable metadata names no owner
        return None
    if proc.owner_state(owner) != proc.ALIVE:
        return None
    return str(owner).split(":", 1)[0]


def stopped_message(sdir: StateDir, *, ran_before: bool) -> str:
    """What ``stop`` tells the user once the agent container is stopped. A bottle still starting
    (its agent not run before nor after the stop, and not preserved) is not kept for ``resume``:
    its start fails and removes it, which "stopped" alone would hide from the user who expects
    to resume it."""
    if ran_before or (sdir.path.is_dir() and (sdir.agent_ran() or sdir.preserved)):
        return f"stopped bottle {sdir.id}"
    return (f"stopped bottle {sdir.id} while it was still starting: its agent had not run, so its start "
            "ends and nothing of it is kept for `resume`")
