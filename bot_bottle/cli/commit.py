"""``bot-bottle commit ID``: snapshot a running bottle so the next ``resume`` starts from it."""

from __future__ import annotations

import argparse

from rich.text import Text

from bot_bottle import api
from bot_bottle.backend.docker.running import running
from bot_bottle.cli import common, output
from bot_bottle.errors import BotBottleError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "commit",
        help="snapshot a running bottle; its state is kept and `resume` starts from the snapshot",
        description="Snapshot the agent container of the running bottle ID and preserve its state folder.",
    )
    p.add_argument("id", metavar="ID", nargs="?", help="bottle id (default: the only running bottle)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.id:
        ref = api.commit(args.id, home=common.layout().home)
        output.console().print(Text(f"committed bottle {args.id} to {ref}; `bot-bottle resume {args.id}` starts from it", style="green"))
        return 0
    bottles = running(None)
    if not bottles:
        raise BotBottleError(
            f"no running bottle {args.id}" if args.id else "no running bottle",
            hint="`bot-bottle list --running` shows them",
        )
    if len(bottles) > 1:
        raise BotBottleError("several bottles are running; name one: " + ", ".join(b.id for b in bottles))
    b = bottles[0]
    ref = api.commit(b.id, home=common.layout().home)
    output.console().print(Text(f"committed bottle {b.id} to {ref}; `bot-bottle resume {b.id}` starts from it", style="green"))
    return 0
