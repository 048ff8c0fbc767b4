"""``bot-bottle start [AGENT]``: resolve, show the preflight summary, confirm, launch, attach.

Without AGENT: the only agent there is, or (on a terminal) the one picked from a list.

``--dry-run`` prints the plan and creates nothing; ``--headless --prompt TEXT`` runs the agent's
non-interactive mode with no TTY and exits with the agent's exit code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.prompt import Prompt
from rich.text import Text

from bot_bottle import lifecycle
from bot_bottle.backend.docker import orphan_work
from bot_bottle.cli import common, output, render
from bot_bottle.errors import UsageError
from bot_bottle.manifest import discover
from bot_bottle.plan import BACKENDS, label_problem


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "start",
        help="start an agent in a new bottle (--dry-run: only show the plan)",
        description=(
            "Resolve AGENT and its bottle, show the preflight summary (hosts, secrets by name, repos, "
            "backend, runtime), ask for confirmation, build missing images, launch, and attach the agent. "
            "The bottle is removed when the agent exits; its state is kept when the agent fails "
            "(non-zero exit) or with --preserve, for `bot-bottle resume ID`."
        ),
    )
    p.add_argument("agent", metavar="AGENT", nargs="?",
                   help="agent name (a file in ~/.bot-bottle/agents/ or ./.bot-bottle/agents/); "
                        "omitted: the only agent, or one picked from a list on a terminal")
    p.add_argument("--dry-run", action="store_true", help="print the plan and create nothing")
    common.add_format(p, "plan format: text for people, json for scripts (only with --dry-run)")
    p.add_argument("--backend", choices=BACKENDS, default="docker", help="where the agent runs (default: docker)")
    p.add_argument("--label", help="a human label for this bottle, shown in lists")
    p.add_argument("--cwd", type=Path, help="working tree to copy into the bottle's workspace")
    p.add_argument("-y", "--yes", action="store_true", help="skip the confirmation")
    p.add_argument("--headless", action="store_true", help="no TTY: run --prompt non-interactively, exit with the agent's code")
    p.add_argument("--prompt", help="the task for --headless")
    p.add_argument("--preserve", action="store_true", help="keep the bottle's state (and a snapshot) for resume, even on success")
    p.set_defaults(func=run)


def _check_args(args: argparse.Namespace) -> None:
    if args.format == "json" and not args.dry_run:
        raise UsageError("--format json is only for --dry-run (the plan); a launch is interactive")
    common.check_headless_prompt(args.headless, args.prompt)
    problem = label_problem(args.label) if args.label is not None else None
    if problem:
        raise UsageError(f"--label: {problem}")
    if args.cwd is not None and not args.cwd.is_dir():
        raise UsageError(f"--cwd {args.cwd}: not a folder")


def launch_options(args: argparse.Namespace) -> dict[str, bool]:
    """What the flags change about the launch rather than the bottle. The dry-run plan shows
    them, so a flag given with --dry-run is never silently dropped: ``preserve`` (the state is
    kept for resume even when the agent succeeds), ``confirm`` (start asks before launching)
    and ``headless`` (the --prompt task runs with no TTY)."""
    return {"preserve": args.preserve, "confirm": not (args.yes or args.headless), "headless": args.headless}


def _agent_name(args: argparse.Namespace) -> str:
    """The agent named, or the one to start when none was."""
    if args.agent is not None:
        return args.agent
    names = sorted(discover(common.layout()).agents)
    if not names:
        raise UsageError("no agent to start: there are no agents yet",
                         hint="`bot-bottle init` writes an example agent and bottle")
    if len(names) == 1:
        output.err_console().print(Text(f"agent: '{names[0]}' (the only one)", style="dim"))
        return names[0]
    if sys.stdin.isatty() and not args.headless and args.format != "json":
        return Prompt.ask("Which agent?", choices=names, console=output.err_console())
    raise UsageError(f"name the agent to start, one of: {', '.join(names)}")


def _confirmed(question: str) -> bool:
    """The user's yes (Enter alone is yes); end of input (Ctrl-D) is a no, not a crash."""
    try:
        answer = input(question)
    except EOFError:
        output.err_console().print()  # the terminal's line still ends after the question
        return False
    return answer.strip().lower() in ("", "y", "yes")


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    cwd = args.cwd.resolve() if args.cwd else None
    manifest = common.load_manifest(_agent_name(args), quiet=True)
    plan = common.build_plan(manifest, backend=args.backend, label=args.label, cwd=cwd)
    if args.dry_run:
        data = plan.to_dict()
        data["launch"] = launch_options(args)
        if plan.backend == "smolmachines":
            from bot_bottle.backend.smolmachines.launch import dry_run_fields

            data["vm"] = dry_run_fields(plan)
        if args.format == "json":
            output.print_json(data)
        else:
            render.plan(plan, title=f"Plan for agent '{plan.agent}' (dry run: nothing created)",
                        launch=data["launch"])
            if "vm" in data:
                output.console().print(render.mapping("micro-VM", data["vm"]))
        return 0

    err = output.err_console()
    left = orphan_work.awaiting(common.layout().state_dir)
    if left:
        output.warn(orphan_work.awaiting_hint(left))
    if args.headless:
        # No plan is shown, but what it warns of (a secret written as a literal, an agent that
        # cannot ask the operator) still holds: a script's log is where it must be seen.
        for warning in plan.warnings:
            output.warn(warning)
    else:
        render.plan(plan, title=f"Starting agent '{plan.agent}'")
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError("no terminal to confirm on; pass --yes, or use --headless --prompt TEXT")
            if not _confirmed("Start this bottle? [Y/n] "):
                err.print("not started")
                return 1

    def progress(message: str) -> None:
        err.print(Text(f"• {message}", style="dim"))

    tty = not args.headless and sys.stdin.isatty() and sys.stdout.isatty()
    result = lifecycle.run_bottle(
        manifest,
        plan,
        state_root=common.layout().state_dir,
        environ=lifecycle.default_environ(),
        prompt_fn=lifecycle.terminal_prompt if sys.stdin.isatty() else None,
        headless_prompt=args.prompt if args.headless else None,
        tty=tty,
        progress=progress,
        preserve=args.preserve,
    )
    if result.notice:
        err.print(Text(result.notice, style="yellow"))
    elif result.preserved:
        err.print(
            Text(f"bottle {result.bottle_id} preserved ({result.preserve_reason}); `bot-bottle resume {result.bottle_id}` continues it", style="yellow")
        )
    return result.exit_code
