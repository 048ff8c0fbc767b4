"""``bot-bottle demo``: a real bottle, a scripted agent, each protection shown working."""

from __future__ import annotations

import argparse

from bot_bottle.cli import output


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run a real bottle with a scripted agent and show each protection working",
        description=(
            "Build what is missing, start a bottle whose scripted agent tries an allowed host, a blocked "
            "host, a raw socket and a DNS lookup, and print what happened and why. The demo's internet is "
            "servers it runs itself in its own containers; your ~/.bot-bottle is not touched."
        ),
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot_bottle import demo

    return demo.run(output.console())
