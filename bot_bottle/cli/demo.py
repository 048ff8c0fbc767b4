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
            "host over HTTP and HTTPS, a raw socket around the proxy, a DNS lookup and two exfiltrations "
            "that DLP refuses; pushes through the git-gate a commit carrying a fake cloud key, one carrying "
            "the bottle's own secret (both rejected) and a clean one (accepted); asks the operator for a "
            "blocked host through the supervise server (the demo approves it); prints an escape sequence that "
            "would write your clipboard, which the terminal relay holds back; and has the real Claude Code "
            "CLI answer through the proxy, which injects its API key. It prints what happened and why, and "
            "exits 0 when every protection held. The demo's internet is servers it runs itself in its own "
            "containers, and it works in a throwaway HOME: your ~/.bot-bottle is not touched."
        ),
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot_bottle import demo

    return demo.run(output.console())
