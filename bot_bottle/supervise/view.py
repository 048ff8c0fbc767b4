"""How proposals, bottles and events read on a screen: pure functions shared by the console and
``bot-bottle supervise --once``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml
from rich.style import Style
from rich.text import Text

from bot_bottle.supervise.store import ProposalRow
from bot_bottle.terminal import printable  # noqa: F401 - the console and --once use view.printable


def plain(text: object) -> Text:
    """A table cell or line of agent-written text: no markup read, nothing unprintable."""
    return Text(printable(text))


def duration(seconds: float | None) -> str:
    """``42s``, ``5m03s``, ``2h07m``, ``3d04h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def summary(kind: str, payload: Mapping[str, Any]) -> str:
    """One line saying what a proposal asks for."""
    if kind == "egress":
        host = str(payload.get("host", "?"))
        ports = payload.get("ports") or []
        text = host + (":" + ",".join(map(str, ports)) if ports else "")
        if payload.get("methods"):
            text += " " + ",".join(payload["methods"])
        if payload.get("paths"):
            text += " " + " ".join(payload["paths"])
        return text
    if kind == "capability":
        packages = ", ".join(payload.get("packages") or []) or "(no packages)"
        return f"install {packages}" + (" + Dockerfile lines" if (payload.get("dockerfile") or "").strip() else "")
    if kind == "push-exception":
        old, new = str(payload.get("old", "")), str(payload.get("new", ""))
        detectors = ", ".join(payload.get("detectors") or [])
        finding = f" (finding {payload['finding']}{': ' + detectors if detectors else ''})" if payload.get("finding") else ""
        return f"push {payload.get('repo', '?')} {payload.get('ref', '?')} {old[:8]}..{new[:8]}{finding}"
    if kind == "token-use":
        detectors = ", ".join(payload.get("detectors") or [])
        return f"{payload.get('method', '?')} {payload.get('host', '?')}{payload.get('path', '')} ({detectors})"
    return json.dumps(dict(payload), sort_keys=True)


def one_line(text: object) -> str:
    """``printable`` for a line of the console's own: line breaks and tabs escaped too, so what
    it quotes cannot start lines of its own."""
    return printable(text).replace("\n", "\\n").replace("\t", "\\t")


def warnings(kind: str, payload: Mapping[str, Any]) -> list[str]:
    """What the operator should not miss in a proposal, one line each (none for most)."""
    out = []
    if kind == "egress" and any(p in ("/", "/*") for p in payload.get("paths") or []):
        # Easy to overlook in a list of narrower paths, and it makes them all moot.
        out.append("the paths include '/': every path on this host")
    return out


def agent_says(justification: str) -> Text:
    """The agent's justification for the console's detail pane: labelled as the agent's, shown
    as written (nothing unprintable) but never styled like the console's own lines."""
    text = Text("agent says:\n", style="bold")
    text.append(printable(justification or "(no justification)"), style="italic")
    return text


def proposal_record(row: ProposalRow, *, label: str | None = None, now: float) -> dict[str, Any]:
    """A pending proposal for ``--once --format json``: stable keys, no secrets (payloads carry none)."""
    return {
        "bottle": row.bottle_id,
        "label": label,
        "id": row.id,
        "kind": row.kind,
        "summary": summary(row.kind, row.payload),
        "justification": row.justification,
        "payload": row.payload,
        "created_at": row.created_at,
        "age_s": round(max(0.0, now - row.created_at), 1),
        "timeout_s": row.timeout_s,
        "status": row.status,
    }


def styled(text: str, color: str | None) -> Text:
    """``text`` in the bottle's colour when it is one Rich knows (manifests may say anything)."""
    if color:
        try:
            return Text(text, style=Style.parse(color))
        except Exception:  # noqa: BLE001 - an unknown colour name is shown plain
            pass
    return Text(text)


def editable(kind: str, payload: Mapping[str, Any]) -> str:
    """The text the operator edits to modify a proposal: a comment, then the payload as YAML."""
    head = (
        f"# Modify this {kind} proposal, save and quit; the agent is told the change.\n"
        "# YAML or JSON. Empty the file (or leave it unchanged) to cancel.\n"
    )
    return head + yaml.safe_dump(dict(payload), sort_keys=False, default_flow_style=False)


def parse_edited(text: str) -> dict[str, Any] | None:
    """The edited payload, or None when the operator emptied the file (cancelled)."""
    try:
        data = yaml.safe_load(text)  # JSON is YAML too; comments alone load as None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"the edited proposal is not valid YAML{where}") from None
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError("the edited proposal must be a mapping of fields (like the original)")
    return data
