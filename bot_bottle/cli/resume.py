"""``bot-bottle resume ID``: relaunch a preserved bottle from its state folder, on its backend."""

from __future__ import annotations

import argparse
import sys

from rich.text import Text

from bot_bottle import api, lifecycle
from bot_bottle.cli import common, output
from bot_bottle.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "resume",
        help="relaunch a preserved bottle (from its last snapshot) and attach",
        description=(
            "Relaunch the preserved bottle ID from ~/.bot-bottle/state/ID/, on the backend it ran on, "
            "starting from its last snapshot (a commit, or the one taken when its agent failed). "
            "The bottle's current manifest decides its policy."
        ),
    )
    p.add_argument("id", metavar="ID")
    p.add_argument("--headless", action="store_true", help="no TTY: run --prompt non-interactively")
    p.add_argument("--prompt", help="the task for --headless")
    p.add_argument("--preserve", action="store_true", help="keep the state again at the end, even on success")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.headless != (args.prompt is not None):
        raise UsageError("--headless and --prompt go together")
    err = output.err_console()
    meta = api.read_resumable(common.layout().state_dir, args.id)
    if meta.snapshot:
        source = f" from snapshot {meta.snapshot}"
    elif meta.image:
        source = f" from image {meta.image}"
    else:
        source = ""
    err.print(Text(f"resuming bottle {args.id} ({meta.agent}){source}", style="dim"))
    result = api.resume(
        args.id,
        prompt=args.prompt,
        preserve=args.preserve,
        environ=lifecycle.default_environ(),
        home=common.layout().home,
        progress=lambda m: err.print(Text(f"• {m}", style="dim")),
        tty=not args.headless and sys.stdin.isatty() and sys.stdout.isatty(),
        prompt_fn=lifecycle.terminal_prompt if sys.stdin.isatty() else None,
    )
    if result.preserved:
        err.print(Text(f"bottle {args.id} preserved ({result.preserve_reason})", style="yellow"))
    return result.exit_code
