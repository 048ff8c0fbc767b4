"""Terminal output helpers: Rich for people, plain JSON for scripts, errors on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bot_bottle.terminal import printable

_stdout: Console | None = None
_stderr: Console | None = None


def console() -> Console:
    global _stdout
    if _stdout is None or _stdout.file is not sys.stdout:
        _stdout = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    return _stdout


def show(renderable: Any) -> None:
    """A table or panel on stdout, laid out to the terminal's width. The consoles soft-wrap (a
    long line of text reaches a pipe whole), which would let a table overrun the width or a panel
    cut its text off at its edge."""
    console().print(renderable, soft_wrap=False)


def table(title: str, **options: Any) -> Table:
    """A table titled on its left; never narrower than its title, which would otherwise wrap."""
    return Table(title=title, title_justify="left", min_width=len(title), **options)


def err_console() -> Console:
    global _stderr
    if _stderr is None or _stderr.file is not sys.stderr:
        _stderr = Console(file=sys.stderr, highlight=False, soft_wrap=True)
    return _stderr


def error(message: str, *, hint: str | None = None) -> None:
    """One line on stderr saying what went wrong, and one saying what to do next when we know."""
    # Messages quote file names and manifest text: their control characters are shown as escapes.
    err_console().print(Text.assemble(("error: ", "bold red"), printable(message)))
    if hint:
        err_console().print(Text.assemble(("hint: ", "dim"), printable(hint)))


def warn(message: str) -> None:
    err_console().print(Text.assemble(("warning: ", "yellow"), printable(message)))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()
