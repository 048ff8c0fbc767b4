"""Terminal output helpers: Rich for people, plain JSON for scripts, errors on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

_stdout: Console | None = None
_stderr: Console | None = None


def console() -> Console:
    global _stdout
    if _stdout is None or _stdout.file is not sys.stdout:
        _stdout = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    return _stdout


def err_console() -> Console:
    global _stderr
    if _stderr is None or _stderr.file is not sys.stderr:
        _stderr = Console(file=sys.stderr, highlight=False, soft_wrap=True)
    return _stderr


def error(message: str, *, hint: str | None = None) -> None:
    """One line on stderr saying what went wrong, and one saying what to do next when we know."""
    err_console().print(f"[bold red]error:[/] {message}", markup=True, emoji=False)
    if hint:
        err_console().print(f"[dim]hint:[/] {hint}", markup=True, emoji=False)


def warn(message: str) -> None:
    err_console().print(f"[yellow]warning:[/] {message}", markup=True, emoji=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()
