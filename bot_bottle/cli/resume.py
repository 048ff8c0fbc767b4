"""``bot-bottle resume ID``: relaunch a preserved bottle from its state folder, on its backend."""

from __future__ import annotations

import argparse
import sys

from rich.text import Text

from bot_bottle import lifecycle
from bot_bottle.backend import registry
from bot_bottle.backend.docker.launch import LaunchOptions
from bot_bottle.backend.docker.running import running
from bot_bottle.cli import common, output
from bot_bottle.errors import BotBottleError, UsageError
from bot_bottle.state import StateDir


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
    lay = common.layout()
    sdir = StateDir(lay.state_dir, args.id)
    meta = sdir.read()
    registry.for_state(sdir)  # an unknown backend in the metadata is a clear error here
    if running(args.id):
        raise BotBottleError(f"bottle {args.id} is still running", hint=f"`bot-bottle stop {args.id}` first")
    manifest = common.load_manifest(meta.agent, quiet=True)
    plan = common.build_plan(manifest, backend=meta.backend, label=meta.label, cwd=None)
    err = output.err_console()
    image = meta.snapshot or meta.image
    err.print(Text(f"resuming bottle {args.id} ({meta.agent}) from {image}", style="dim"))
    result = lifecycle.run_bottle(
        manifest,
        plan,
        state_root=lay.state_dir,
        environ=lifecycle.default_environ(),
        prompt_fn=lifecycle.terminal_prompt if sys.stdin.isatty() else None,
        headless_prompt=args.prompt,
        tty=not args.headless and sys.stdin.isatty() and sys.stdout.isatty(),
        options=LaunchOptions(bottle_id=args.id, resume=True, image_override=meta.snapshot),
        progress=lambda m: err.print(Text(f"• {m}", style="dim")),
        preserve=args.preserve,
    )
    if result.preserved:
        err.print(Text(f"bottle {args.id} preserved ({result.preserve_reason})", style="yellow"))
    return result.exit_code
