"""``bot-bottle info AGENT``: the fully resolved view of an agent and its bottle, with provenance."""

from __future__ import annotations

import argparse
import re

from rich.panel import Panel
from rich.text import Text

from bot_bottle.terminal import printable

from bot_bottle.cli import common, output, render
from bot_bottle.plan import BACKENDS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="show an agent's fully resolved bottle and where each setting came from",
        description="Show AGENT with its effective bottle (extends folded), and the file and line each setting came from.",
    )
    p.add_argument("agent", metavar="AGENT")
    p.add_argument("--backend", choices=BACKENDS, default="docker", help="resolve for this backend (default: docker)")
    common.add_format(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    manifest = common.load_manifest(args.agent, quiet=True)
    plan = common.build_plan(manifest, backend=args.backend)
    if args.format == "json":
        data = plan.to_dict()
        data["system_prompt"] = manifest.agent.prompt
        output.print_json(data)
        return 0
    render.plan(plan, title=f"Agent '{plan.agent}'", provenance=True)
    if manifest.agent.origin == "cwd" and manifest.shadowed:
        # Printable: the folder's name is a cloned repository's to choose.
        output.console().print(
            Text(
                printable(f"note: the agent in this folder ({manifest.agent.path}) wins over {manifest.shadowed}"),
                style="yellow",
            )
        )
    if manifest.agent.prompt:
        # The panel wraps to the terminal: a prompt hard-wrapped at ~72 columns would read as
        # ragged long and short lines, so its paragraphs are joined first (JSON keeps it as written).
        prompt = unwrapped(manifest.agent.prompt)
        shown = prompt if len(prompt) <= 1200 else prompt[:1200] + "\n..."
        # A repository's agent file could hide text from the operator with terminal escapes.
        output.show(Panel(Text(printable(shown)), title="system prompt", title_align="left"))
    return 0


# Lines that are never joined to the line before them, nor that line to them: each starts a
# Markdown block of its own (heading, list item, block quote, table row, HTML, thematic break or
# setext underline), or it holds nothing.
_BLOCK_START = re.compile(r"\s*$|\s{0,3}(#{1,6}(\s|$)|[-*+](\s|$)|\d{1,9}[.)](\s|$)|>|\||<|(=+|-+|_+|\*+)\s*$)")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r" {0,3}(=+|-+)\s*$")
_LIST_ITEM = re.compile(r" {0,3}([-*+]|\d{1,9}[.)])\s+\S")
_CODE_INDENT = 4  # this many leading spaces (or a tab) make a line indented code, kept as written


def unwrapped(prompt: str) -> str:
    """``prompt`` with the soft line breaks inside its Markdown paragraphs (and list items) joined,
    the way Markdown reads them: a line that only continues the paragraph before it is appended to
    that paragraph's line, with one space. Everything else is kept as written: blank lines,
    headings, list items (each its own line), block quotes, tables, indented and fenced code, and
    a line ending in two spaces or a backslash (a hard line break)."""
    out: list[str] = []
    fence: str | None = None  # the opening fence of the code block we are in
    joinable = False  # whether the last line kept is paragraph text a next line may continue
    lines = prompt.split("\n")
    for index, line in enumerate(lines):
        if fence is not None:
            out.append(line)
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
            continue
        if opening := _FENCE.match(line):
            fence, joinable = opening.group(1), False
            out.append(line)
            continue
        underlined = index + 1 < len(lines) and bool(_SETEXT.match(lines[index + 1]))  # a heading's text
        if joinable and not underlined and not _BLOCK_START.match(line) and not _code(line):
            out[-1] = out[-1].rstrip(" ") + " " + line.strip(" ")
        else:
            out.append(line)
            joinable = _starts_paragraph(line)
        joinable = joinable and not _hard_break(out[-1])
    return "\n".join(out)


def _code(line: str) -> bool:
    return line.startswith("\t") or len(line) - len(line.lstrip(" ")) >= _CODE_INDENT


def _starts_paragraph(line: str) -> bool:
    """Whether ``line`` (not joined to the one before) is text a next line may continue: a
    paragraph's or a list item's first line, not a heading, quote, table row or indented code."""
    if _code(line):
        return False
    return not _BLOCK_START.match(line) or bool(_LIST_ITEM.match(line))


def _hard_break(line: str) -> bool:
    """Whether ``line`` ends in a Markdown hard line break: the next line stays a line of its own."""
    return line.endswith("  ") or line.endswith("\\")
