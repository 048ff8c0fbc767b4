"""Rich renderings shared by ``start --dry-run``, ``info`` and the preflight summary."""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from bot_bottle.cli import output
from bot_bottle.plan import BottlePlan
from bot_bottle.terminal import printable


def _cell(text: object, **style: object) -> Text:
    """Manifest-written text as a cell: never read as markup ("[secret]", "[bold]"), and
    control characters shown as escapes (a repository's agent file could hide text otherwise)."""
    return Text(printable(text), **style)  # type: ignore[arg-type]


def _kv_table(title: str) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    return table


_MANIFEST_PATH = re.compile(r"(?:[^\s():]*/)([^/\s():]+\.md)")


def _home_short(text: object) -> str:
    """Paths under the user's home as ``~/...``: the tables stay readable on an 80-column pipe."""
    home = str(Path.home())
    return str(text).replace(home + "/", "~/") if home not in ("", "/") else str(text)


def _dlp_cell(dlp: dict) -> str:
    """What the route's DLP does: what a hit does, which detectors are off (all: "off"), and
    whether requests that make the provider's servers fetch (MCP, web fetch, URL images) are
    refused ("no server fetch") or allowed by the manifest ("server fetch allowed")."""
    off = [name for name in ("tokens", "secrets") if dlp.get(name) is False]
    if len(off) == 2 and not dlp.get("entropy"):
        text = "off (no detector)"
    else:
        text = str(dlp.get("outbound_on_match", "block")) + (f" ({', '.join(off)} off)" if off else "")
    fetch = dlp.get("server_fetch")
    if fetch == "block":
        text += "; no server fetch"
    elif fetch == "allow" and dlp.get("server_fetch_is_default") is False:
        text += "; server fetch allowed"
    return text


def _source(text: str) -> str:
    """A table's "from" cell: manifest files by name and line (the summary above names their
    folders; bottles all live in one), so the tables fit an 80-column pipe without folding."""
    return _MANIFEST_PATH.sub(lambda m: m.group(1), text)


def _launch_rows(launch: dict[str, bool]) -> list[tuple[str, str]]:
    """The summary rows for what start's flags do at launch (``cli.start.launch_options``)."""
    rows = []
    if launch.get("headless"):
        rows.append(("mode", "headless: the --prompt task runs with no TTY, start exits with the agent's code"))
    rows.append(("on exit", "state kept for `bot-bottle resume` (--preserve)" if launch.get("preserve")
                 else "state removed, or kept for `bot-bottle resume` when the agent fails"))
    if not launch.get("confirm", True):
        rows.append(("confirmation", "none (--headless)" if launch.get("headless") else "none (--yes)"))
    return rows


def plan(p: BottlePlan, *, title: str, provenance: bool = False, launch: dict[str, bool] | None = None) -> None:
    con = output.console()
    # ``info`` (provenance) names the agent's and bottle's files in full; the plan shortens them
    # to fit a terminal. Table cells name files by name and line in both.
    short = str if provenance else _home_short
    summary = _kv_table(title)
    agent_line = f"{p.agent}  ({p.agent_origin}: {short(p.agent_path)})"
    summary.add_row("agent", _cell(agent_line))
    if p.shadowed_agent:
        summary.add_row("", _cell(f"overrides the home agent {p.shadowed_agent}", style="yellow"))
    chain = " <- ".join(path.stem for path in reversed(p.bottle_chain))
    summary.add_row("bottle", _cell(f"{p.bottle}  ({short(p.bottle_path)})" + (f"  extends: {chain}" if len(p.bottle_chain) > 1 else "")))
    summary.add_row("backend", _cell(f"{p.backend}, runtime {p.runtime}" + (f"  ({p.runtime_note})" if p.runtime_note else "")))
    summary.add_row("provider", _cell(f"{p.template} (runs `{p.agent_command}`)"))
    summary.add_row("images", _cell(f"agent {p.agent_image or '(none: see warnings)'}\nsidecar {p.sidecar_image}"))
    summary.add_row("egress hosts", _cell(", ".join(p.hosts) or "none: every request is refused"))
    summary.add_row("egress log", _cell({0: "off", 1: "blocked requests", 2: "every request"}[p.egress_log]))
    summary.add_row("supervise", _cell("on" if p.supervise else "off"))
    if p.clipboard == "write":
        # Said wherever the plan is shown: the bottle lets its agent write the operator's clipboard.
        summary.add_row("clipboard", _cell("the agent may write your clipboard (terminal.clipboard: write)",
                                           style="yellow"))
    if p.skills:
        summary.add_row("skills", _cell(", ".join(p.skills)))
    summary.add_row("system prompt", _cell(f"{p.system_prompt_chars} characters" if p.system_prompt_chars else "none"))
    user = p.git_user
    if user.get("name") or user.get("email"):
        who = f"{user.get('name') or '?'} <{user.get('email') or '?'}>"
        if provenance:
            srcs = [f"{k} from {v}" for k, v in p.git_user_sources.items() if v]
            who += "  (" + "; ".join(srcs) + ")"
        summary.add_row("git identity", _cell(who))
    if p.label:
        summary.add_row("label", _cell(p.label))
    if p.cwd:
        summary.add_row("working tree", _cell(str(p.cwd)))
    for name, text in _launch_rows(launch) if launch is not None else ():
        summary.add_row(name, _cell(text))
    output.show(summary)

    if p.routes:
        # A host or a variable's name cut in two reads as two names: kept whole where the table
        # still fits (the other columns wrap at their words instead), folded where it would not.
        # Where even that does not fit, `output.show` lists the routes as plain lines.
        layouts = [(True, True), (True, False), (False, False)]
        output.show(*(_routes_table(p, provenance, whole_hosts=h, whole_refs=v) for h, v in layouts))

    if p.env:
        env = output.table("Environment (names only; values never shown)")
        env.add_column("name", overflow="fold")
        env.add_column("kind", overflow="fold")
        env.add_column("from", style="dim", overflow="fold")
        for e in p.env:
            kind = {"literal": "literal", "prompt": f"asked at start: {e.prompt!r}", "host": f"host ${e.host_var}"}[e.kind]
            env.add_row(_cell(e.name), _cell(kind + ("  [secret]" if e.secret else "")), _cell(_source(e.source)))
        output.show(env)

    if p.repos:
        repos = output.table("git-gate repos")
        repos.add_column("name", overflow="fold")
        repos.add_column("upstream", overflow="fold")
        repos.add_column("gate credential", overflow="fold")
        repos.add_column("from", style="dim", overflow="fold")
        for repo in p.repos:
            repos.add_row(_cell(repo.name), _cell(repo.url),
                          _cell(f"{repo.auth}" + (f" ({repo.credential_ref})" if repo.credential_ref else "")),
                          _cell(_source(repo.source)))
        output.show(repos)

    for warning in p.warnings:
        con.print(_cell(f"warning: {warning}", style="yellow"))


def _routes_table(p: BottlePlan, provenance: bool, *, whole_hosts: bool, whole_refs: bool) -> Table:
    """The plan's routes; ``whole_hosts``/``whole_refs``: hosts and credential variables never
    cut across lines. Where each route came from is `info`'s job (``provenance``): without
    that column the plan fits an 80-column pipe more often."""
    routes = output.table("Routes")
    if whole_hosts:
        routes.add_column("host", no_wrap=True)
    else:
        # Narrow minimums so all columns (with "from", six of them) fit an 80-column pipe.
        routes.add_column("host", overflow="fold", min_width=min(10, max(len(r.host) for r in p.routes)))
    routes.add_column("ports", overflow="fold")
    routes.add_column("matches", overflow="fold")
    # The scheme, the variable and a note each on lines of their own: none is longer than it must be.
    routes.add_column("credential", **({"no_wrap": True} if whole_refs else {"overflow": "fold"}))
    routes.add_column("DLP", overflow="fold")
    if provenance:
        routes.add_column("from", style="dim", overflow="fold")
    for r in p.routes:
        matches = "; ".join(
            " ".join(
                part
                for part in (
                    ",".join(m.get("methods", [])),
                    " ".join(m.get("paths", [])),
                    " ".join(f"{k}={v}" for k, v in m.get("headers", {}).items()),
                )
                if part
            )
            for m in r.shown_matches()
        ) or ("any (TLS passthrough: host rules only)" if r.tls_passthrough else "any")
        cred = f"{r.auth['scheme']}\n${r.auth['token_ref']}" if r.auth else "-"
        if r.auth and r.auth.get("plain_http") == "yes":
            cred += "\n(also over\nplain HTTP)"
        dlp = _dlp_cell(r.dlp)
        if r.tls_passthrough:
            dlp += " (plain HTTP only: TLS passes unscanned)"  # the tunnel is never opened
        cells = [r.host, ",".join(map(str, r.ports)), matches, cred, dlp]
        routes.add_row(*map(_cell, cells), *([_cell(_source(r.source))] if provenance else []))
    return routes


def mapping(title: str, data: dict) -> RenderableType:
    """A plain key/value table (nested values as compact JSON); plain lines where it would not fit."""
    import json

    table = _kv_table(title)
    for key, value in data.items():
        shown = value if isinstance(value, str) else json.dumps(value)
        table.add_row(_cell(key), _cell(shown))
    return output.fitted(table)
