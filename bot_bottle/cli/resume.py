"""``bot-bottle resume ID``: relaunch a preserved bottle from its state folder, on its backend."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.text import Text

from bot_bottle import api, lifecycle
from bot_bottle.backend import sidecar_config
from bot_bottle.cli import common, output
from bot_bottle.errors import UsageError
from bot_bottle.state import ID_RE, StateDir, all_states


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "resume",
        help="relaunch a preserved bottle (from its last snapshot) and attach",
        description=(
            "Relaunch the preserved bottle ID from ~/.bot-bottle/state/ID/, on the backend it ran on, "
            "starting from its last snapshot (a commit, or the one taken when its agent failed). "
            "The bottle's current manifest decides its policy, with the routes the operator approved "
            "for it while it ran (listed as it resumes; remove its approved_routes.json to drop them), "
            "and its system prompt, skills and agent CLI settings: what the agent changed in those is "
            "not kept (its workspace and its other files are)."
        ),
    )
    p.add_argument("id", metavar="ID")
    p.add_argument("--headless", action="store_true", help="no TTY: run --prompt non-interactively")
    p.add_argument("--prompt", help="the task for --headless")
    p.add_argument("--preserve", action="store_true", help="keep the state again at the end, even on success")
    p.set_defaults(func=run)


def _show_approved_routes(state_dir: Path) -> None:
    """Routes approved while the bottle ran come back with it: say which, and how to drop them."""
    approved = sidecar_config.read_approved_routes(state_dir)
    if not approved:
        return
    shown = ", ".join(_describe(route) for route in approved)
    output.warn(f"routes the operator approved for this bottle are kept: {shown}")
    output.err_console().print(Text(
        f"  (not in its manifest; remove {state_dir / sidecar_config.APPROVED_ROUTES_FILE} to drop them)", style="dim"))


def _describe(route: dict) -> str:
    host = str(route.get("host", "?"))
    ports = route.get("ports") or []
    paths = [p for m in route.get("matches") or [] for p in m.get("paths") or []]
    return host + (f":{','.join(map(str, ports))}" if ports else "") + (f" {' '.join(paths)}" if paths else "")


def bottle_suggestion(bottle_id: str, state_dir: Path, *, saved: bool) -> str:
    """``"; did you mean 'X'?"`` naming the bottle of this home (one with a state folder under
    ``state_dir``; with ``saved``, one whose metadata is there to resume) closest to a mistyped
    ``bottle_id``, else ``""``. Read from the state folders, so no engine is asked."""
    from bot_bottle.manifest.schema import did_you_mean

    try:
        known = [s.id for s in all_states(state_dir) if not saved or s.exists()]
    except OSError:  # an unreadable state folder: the error itself still stands, without a guess
        known = []
    close = did_you_mean(bottle_id, known)
    return f"; {close.strip()}" if close else ""


def _require_saved(state_dir: Path, bottle_id: str) -> None:
    """An id with no saved bottle behind it is the user's slip, like a mistyped agent name: a
    usage error (exit 2) with the closest saved bottle, before anything is read or announced."""
    hint = "`bot-bottle list --running` shows running and preserved bottles"
    if not ID_RE.match(bottle_id):
        raise UsageError(f"'{bottle_id}' is not a bottle id" + bottle_suggestion(bottle_id, state_dir, saved=True),
                         hint=hint)
    sdir = StateDir(state_dir, bottle_id)
    if not sdir.exists():
        raise UsageError(f"no saved bottle '{bottle_id}' (looked in {sdir.path})"
                         + bottle_suggestion(bottle_id, state_dir, saved=True), hint=hint)


def run(args: argparse.Namespace) -> int:
    common.check_headless_prompt(args.headless, args.prompt)
    _require_saved(common.layout().state_dir, args.id)
    err = output.err_console()
    meta = api.read_resumable(common.layout().state_dir, args.id)
    if meta.snapshot:
        source = f" from snapshot {meta.snapshot}"
    elif meta.image:
        source = f" from image {meta.image}"
    else:
        source = ""
    err.print(Text(f"resuming bottle {args.id} ({meta.agent}){source}", style="dim"))
    _show_approved_routes(common.layout().state_dir / args.id)
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
    if result.notice:
        err.print(Text(result.notice, style="yellow"))
    elif result.preserved:
        err.print(Text(f"bottle {args.id} preserved ({result.preserve_reason})", style="yellow"))
    return result.exit_code
