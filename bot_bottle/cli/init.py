"""``bot-bottle init``: write an example bottle and agent into an empty ~/.bot-bottle/."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
from pathlib import Path

from rich.text import Text

from bot_bottle import examples
from bot_bottle.cli import common, output
from bot_bottle.errors import BotBottleError
from bot_bottle.state import NotAFolderError, require_folders, unwritable, unwritable_hint


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


def _make_folders(folders: tuple[Path, ...], home_dir: Path) -> list[Path]:
    """Make each of ``folders`` (parents first) that is not there yet; the ones made, in order.
    On a failure those made are removed again and the error names what stood in the way."""
    made: list[Path] = []
    for folder in folders:
        try:
            folder.mkdir()
            made.append(folder)
        except FileExistsError:
            if folder.is_dir():
                continue
            _remove_folders(made)
            _require_folders(folder, within=home_dir)  # what is there instead, by name
            raise BotBottleError(f"cannot make the folder {folder}: something else is there; nothing written") from None
        except OSError as exc:
            _remove_folders(made)
            if exc.errno == errno.ENOTDIR:
                _require_folders(folder, within=home_dir)
            raise BotBottleError(f"cannot make the folder {folder}: {exc.strerror or exc}; nothing written",
                                 hint=unwritable_hint(folder.parent, exc)) from None
    return made


def _require_folders(*folders: Path, within: Path) -> None:
    """``state.require_folders``, said as the folder init cannot make."""
    try:
        require_folders(*folders, within=within)
    except NotAFolderError as exc:
        raise BotBottleError(f"cannot make the folder {exc.path}: it is {exc.what}; nothing written",
                             hint=exc.hint) from None


def _remove_folders(made: list[Path]) -> None:
    """Remove the folders ``_make_folders`` made, the deepest first (each only while empty)."""
    for folder in reversed(made):
        with contextlib.suppress(OSError):
            folder.rmdir()


def run(args: argparse.Namespace) -> int:
    lay = common.layout()
    if not lay.home.is_dir():
        # A mistyped HOME would otherwise be made, and the examples written where no later
        # command run with the real HOME looks.
        raise BotBottleError(f"HOME is {lay.home}, which is not a folder; nothing written",
                             hint="set HOME to your home folder, for example: export HOME=/home/you")
    # Before anything is made: a file where one of the folders belongs is named as the culprit.
    _require_folders(lay.bottles_dir, lay.home_agents_dir, within=lay.home_dir)
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
    made = _make_folders((lay.home_dir, lay.bottles_dir, lay.home_agents_dir), lay.home_dir)
    try:
        os.chmod(lay.home_dir, 0o700)
        _write_examples(((bottle, examples.EXAMPLE_BOTTLE), (agent, examples.EXAMPLE_AGENT)))
    except BaseException:
        _remove_folders(made)  # a failed init leaves the home as it found it
        raise
    con = output.console()
    con.print(Text(f"wrote {bottle}", style="green"))
    con.print(Text(f"wrote {agent}", style="green"))
    con.print(f"next: bot-bottle start {examples.EXAMPLE_AGENT_NAME} --dry-run")
    return 0
