"""``bot-bottle init``: write an example bottle and agent into an empty ~/.bot-bottle/."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.text import Text

from bot_bottle import examples
from bot_bottle.cli import common, output
from bot_bottle.errors import BotBottleError
from bot_bottle.state import unwritable


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "init",
        help="create an example bottle and agent in ~/.bot-bottle/ (never overwrites)",
        description=(
            f"Write ~/.bot-bottle/bottles/{examples.EXAMPLE_BOTTLE_NAME}.md and "
            f"~/.bot-bottle/agents/{examples.EXAMPLE_AGENT_NAME}.md. Refuses when manifests already exist."
        ),
    )
    p.set_defaults(func=run)


def _write_examples(files: tuple[tuple[Path, str], ...]) -> None:
    """Write every example or none: a file cut short by a full disk would be an invalid manifest,
    and its mere presence would make the next `init` refuse."""
    written: list[Path] = []
    for path, text in files:
        try:
            # O_EXCL: never overwrite, even if a file appeared since the check in ``run``.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            written.append(path)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            for done in written:
                done.unlink(missing_ok=True)
            raise unwritable(path, exc, "cannot write the example") from None


def run(args: argparse.Namespace) -> int:
    lay = common.layout()
    if not lay.home.is_dir():
        # A mistyped HOME would otherwise be made, and the examples written where no later
        # command run with the real HOME looks.
        raise BotBottleError(f"HOME is {lay.home}, which is not a folder; nothing written",
                             hint="set HOME to your home folder, for example: export HOME=/home/you")
    bottle = lay.bottles_dir / f"{examples.EXAMPLE_BOTTLE_NAME}.md"
    agent = lay.home_agents_dir / f"{examples.EXAMPLE_AGENT_NAME}.md"
    existing = [
        p
        for folder in (lay.bottles_dir, lay.home_agents_dir)
        if folder.is_dir()
        for p in sorted(folder.glob("*.md"))
    ]
    if existing:
        shown = ", ".join(str(p.relative_to(lay.home_dir)) for p in existing[:5])
        raise BotBottleError(
            f"{lay.home_dir} already holds manifests ({shown}{', ...' if len(existing) > 5 else ''}); nothing written",
            hint="`bot-bottle list` shows them; `bot-bottle edit NAME` changes one",
        )
    for folder in (lay.bottles_dir, lay.home_agents_dir):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BotBottleError(f"cannot make the folder {folder}: {exc.strerror or exc}",
                                 hint=f"{lay.home_dir} must be a folder you can write to") from None
    os.chmod(lay.home_dir, 0o700)
    _write_examples(((bottle, examples.EXAMPLE_BOTTLE), (agent, examples.EXAMPLE_AGENT)))
    con = output.console()
    con.print(Text(f"wrote {bottle}", style="green"))
    con.print(Text(f"wrote {agent}", style="green"))
    con.print(f"next: bot-bottle start {examples.EXAMPLE_AGENT_NAME} --dry-run")
    return 0
