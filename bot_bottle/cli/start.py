"""``bot-bottle start AGENT --dry-run``: resolve the plan and show it; create nothing."""

from __future__ import annotations

import argparse
from pathlib import Path

from bot_bottle.cli import common, output, render
from bot_bottle.errors import UsageError
from bot_bottle.plan import BACKENDS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "start",
        help="resolve an agent's bottle and show the plan (--dry-run)",
        description=(
            "Resolve AGENT and its bottle into a plan: backend and runtime, images, egress hosts and "
            "routes, env names (never secret values), git-gate repos. With --dry-run nothing is "
            "created: no container, network, volume or VM."
        ),
    )
    p.add_argument("agent", metavar="AGENT", help="agent name (a file in ~/.bot-bottle/agents/ or ./.bot-bottle/agents/)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and create nothing")
    common.add_format(p, "plan format: text for people, json for scripts (only with --dry-run)")
    p.add_argument("--backend", choices=BACKENDS, default="docker", help="where the agent runs (default: docker)")
    p.add_argument("--label", help="a human label for this bottle, shown in lists and the console")
    p.add_argument("--cwd", type=Path, help="working tree to copy into the bottle")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.format == "json" and not args.dry_run:
        raise UsageError("--format json is only for --dry-run (the plan); a launch is interactive")
    if not args.dry_run:
        raise UsageError(
            "launching a bottle needs the Docker backend, which this version does not ship yet",
            hint=f"`bot-bottle start {args.agent} --dry-run` shows what the launch would do",
        )
    cwd = args.cwd.resolve() if args.cwd else None
    if cwd is not None and not cwd.is_dir():
        raise UsageError(f"--cwd {args.cwd}: not a folder")
    manifest = common.load_manifest(args.agent, quiet=True)
    plan = common.build_plan(manifest, backend=args.backend, label=args.label, cwd=cwd)
    if args.format == "json":
        output.print_json(plan.to_dict())
    else:
        render.plan(plan, title=f"Plan for agent '{plan.agent}' (dry run: nothing created)")
    return 0
