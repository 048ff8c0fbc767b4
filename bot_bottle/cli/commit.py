"""``bot-bottle commit ID``: snapshot a running bottle so the next ``resume`` starts from it."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.text import Text

from bot_bottle import api
from bot_bottle.cli import common, output
from bot_bottle.errors import BotBottleError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "commit",
        help="snapshot a running bottle; its state is kept and `resume` starts from the snapshot",
        description=(
            "Snapshot the agent container of the running bottle ID and preserve its state folder. "
            "Only a bottle started from this home (its state folder is here) can be committed."
        ),
    )
    p.add_argument("id", metavar="ID", nargs="?",
                   help="bottle id (default: the only running bottle started from this home)")
    p.set_defaults(func=run)


def _only_own_running(state_dir: Path) -> str:
    """The id of the one running bottle whose state folder is under ``state_dir``. Other homes'
    bottles on a shared engine are never picked: nothing here could resume their snapshot."""
    from bot_bottle.backend.docker import running
    from bot_bottle.backend.docker.cleanup import has_state_here

    bottles = running.running(None)
    own = [b.id for b in bottles if has_state_here(state_dir, b.id)]
    others = len(bottles) - len(own)
    elsewhere = (f" ({others} other running bottle{' was' if others == 1 else 's were'} started from another home)"
                 if others else "")
    if not own:
        raise BotBottleError("no running bottle was started from this home" + elsewhere,
                             hint="`bot-bottle list --running` shows them; commit a bottle with the HOME "
                                  "that started it")
    if len(own) > 1:
        raise BotBottleError("several bottles of this home are running; name one: " + ", ".join(own))
    return own[0]


def run(args: argparse.Namespace) -> int:
    lay = common.layout()
    bottle_id = args.id or _only_own_running(lay.state_dir)
    ref = api.commit(bottle_id, home=lay.home)
    done = f"committed bottle {bottle_id} to {ref}; `bot-bottle resume {bottle_id}` starts from it"
    output.console().print(Text(done, style="green"))
    return 0
