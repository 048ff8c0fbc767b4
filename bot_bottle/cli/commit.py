"""``bot-bottle commit ID``: snapshot a running bottle so the next ``resume`` starts from it."""

from __future__ import annotations

import argparse

from rich.text import Text

from bot_bottle import api
from bot_bottle.cli import common, output


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "commit",
        help="snapshot a running bottle; its state is kept and `resume` starts from the snapshot",
        description=(
            "Snapshot the running bottle ID and preserve its state folder, so `resume` starts from the "
            "snapshot: a Docker bottle's agent container is snapshotted now, a micro-VM is packed when its "
            "agent ends. Only a bottle started from this home (its state folder is here) can be committed. "
            "Exit status 2 when no bottle has that ID (or, without one, when several of this home's run), "
            "1 when none of this home's runs or the bottle cannot be committed from here (another home's, or no "
            "longer running)."
        ),
    )
    p.add_argument("id", metavar="ID", nargs="?",
                   help="bottle id (default: the only running bottle started from this home; with several, "
                        "name one)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    lay = common.layout()
    if args.id:
        common.require_known_bottle(lay.state_dir, args.id)
    bottle_id = args.id or common.only_own_running(lay.state_dir, "commit")
    ref = api.commit(bottle_id, home=lay.home)
    done = f"committed bottle {bottle_id} to {ref}; `bot-bottle resume {bottle_id}` starts from it"
    output.console().print(Text(done, style="green"))
    return 0
