"""``bot-bottle doctor``: report what this host can run, and why not."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table
from rich.text import Text

from bot_bottle import doctor
from bot_bottle.cli import output
from bot_bottle.cli.render import _cell as cell

HELP = "report what this host can run: Docker engine, gVisor (and dockerd's open-file limit), micro-VMs, smolvm"
DESCRIPTION = ("Report what this host can run: the Docker engine, gVisor (runsc) and dockerd's open-file limit, "
               "micro-VMs (KVM) and the smolvm CLI, and why not where one cannot. Exit status 0 when at least "
               "one backend can run here, 1 when none can.")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser("doctor", help=HELP, description=DESCRIPTION)
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people (default), json for scripts",
    )
    parser.set_defaults(func=run)
    return parser


def _status(ok: bool) -> Text:
    return Text("yes", style="green") if ok else Text("no", style="red")


def _table(title: str, checks: tuple[doctor.Check, ...]) -> Table:
    table = output.table(title, show_lines=False)
    table.add_column("", no_wrap=True)
    table.add_column("ok", no_wrap=True)
    table.add_column("details")
    for check in checks:
        text = check.detail if check.ok else check.reason
        if not check.ok and check.detail:
            text = f"{check.detail}: {check.reason}"
        # Details quote the engine's and smolvm's own words: shown as written, never as markup.
        table.add_row(cell(check.name), _status(check.ok), cell(text))
    return table


def render_text(report: doctor.Report) -> None:
    console = output.console()
    output.show(_table("Host", report.checks))
    output.show(_table("Backends", report.backends))
    if not report.any_backend:
        console.print(
            Text.assemble(("No backend can run here. ", "bold red"), "Run scripts/setup, or install Docker.")
        )


def run(args: argparse.Namespace) -> int:
    report = doctor.gather()
    if getattr(args, "format", "text") == "json":
        output.print_json(report.to_json())
    else:
        render_text(report)
    # Scripts can gate on this: 0 when at least one backend can run here.
    return 0 if report.any_backend else 1
