"""``bot-bottle info AGENT``: the fully resolved view of an agent and its bottle, with provenance."""

from __future__ import annotations

import argparse

from rich.panel import Panel
from rich.text import Text

from bot_bottle.terminal import printable

from bot_bottle.cli import common, output, render
from bot_bottle.plan import BACKENDS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="show an agent's fully resolved bottle and where each setting came from",
        description="Show AGENT with its effective bottle (extends folded), and the file and line each setting came from.",
    )
    p.add_argument("agent", metavar="AGENT")
    p.add_argument("--backend", choices=BACKENDS, default="docker", help="resolve for this backend (default: docker)")
    common.add_format(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    manifest = common.load_manifest(args.agent, quiet=True)
    plan = common.build_plan(manifest, backend=args.backend)
    if args.format == "json":
        data = plan.to_dict()
        data["system_prompt"] = manifest.agent.prompt
        output.print_json(data)
        return 0
    render.plan(plan, title=f"Agent '{plan.agent}'", provenance=True)
    if manifest.agent.origin == "cwd" and manifest.shadowed:
        # Printable: the folder's name is a cloned repository's to choose.
        output.console().print(
            Text(
                printable(f"note: the agent in this folder ({manifest.agent.path}) wins over {manifest.shadowed}"),
                style="yellow",
            )
        )
    if manifest.agent.prompt:
        prompt = manifest.agent.prompt
        shown = prompt if len(prompt) <= 1200 else prompt[:1200] + "\n..."
        # A repository's agent file could hide text from the operator with terminal escapes.
        output.show(Panel(Text(printable(shown)), title="system prompt", title_align="left"))
    return 0
