"""Compile a bottle plan into the files its sidecar reads: the policy and the secrets.

One compiler for every backend: the same proxy, the same DLP engine and the same rules serve a
Docker bottle and a micro-VM bottle. The policy holds no secret (credentials appear by
``token_ref`` name only); the secrets document holds values and is written only into the
sidecar, mode 600. The format is ``bot_bottle/sidecar/egress/policy.py``'s version 2.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bot_bottle.errors import BotBottleError
from bot_bottle.plan import BottlePlan, RoutePlan

POLICY_FILE = "policy.json"
SECRETS_FILE = "secrets.json"
POLICY_VERSION = 2


def policy(plan: BottlePlan, internal_services: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The egress policy document the sidecar enforces.

    ``internal_services`` maps the bundle's own daemons (git-gate, supervise, ...) to their
    loopback ports in the sidecar; the agent reaches them as ``<name>.bottle.internal``.
    """
    return {
        "version": POLICY_VERSION,
        "log": plan.egress_log,
        "internal_services": dict(sorted((internal_services or {}).items())),
        "routes": [_route(r) for r in plan.routes],
    }


def _route(r: RoutePlan) -> dict[str, Any]:
    route: dict[str, Any] = {"host": r.host, "ports": list(r.ports), "tls_passthrough": r.tls_passthrough}
    if r.matches:
        route["matches"] = [dict(m) for m in r.matches]
    if r.auth:
        auth: dict[str, Any] = {"scheme": r.auth["scheme"], "token_ref": r.auth["token_ref"]}
        if r.auth.get("header"):
            auth["header"] = r.auth["header"]
        if r.auth.get("plain_http") == "yes":  # the plan decides (``plan._route_plan``)
            auth["plain_http"] = True
        route["auth"] = auth
    if r.dlp:
        route["dlp"] = dict(r.dlp)
    return route


def secrets(credentials: Mapping[str, str], known_secrets: Mapping[str, str]) -> dict[str, Any]:
    """Route credentials by token_ref name, and every secret value the DLP engine must know, by name."""
    return {"credentials": dict(credentials), "known_secrets": dict(known_secrets)}


# Loopback ports of the bundle's own daemons inside the sidecar (see bot_bottle/sidecar/init.py).
GIT_GATE_PORT = 9420
SUPERVISE_PORT = 9430  # the supervise MCP server (bot_bottle/sidecar/supervise/server.py)


def internal_services(plan: BottlePlan) -> dict[str, int]:
    """The bundle's daemons this bottle runs, reachable by the agent as ``<name>.bottle.internal``.

    The sidecar starts the supervise MCP server exactly when this lists ``supervise``.
    """
    services: dict[str, int] = {}
    if plan.repos:
        services["git-gate"] = GIT_GATE_PORT
    if plan.supervise:
        services["supervise"] = SUPERVISE_PORT
    return services


# Routes the operator approved while the bottle ran (written by the host's supervise side), kept
# in the bottle's state folder so a resumed bottle still has them.
APPROVED_ROUTES_FILE = "approved_routes.json"


def read_approved_routes(state_dir: Path) -> list[dict[str, Any]]:
    """The routes in ``<state_dir>/approved_routes.json``; [] when the file is absent.

    The host's supervise side writes ``{"routes": [<policy v2 route>, ...]}``; a bare JSON list
    of routes is read the same way.
    """
    path = Path(state_dir) / APPROVED_ROUTES_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise BotBottleError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BotBottleError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if isinstance(data, dict) and set(data) == {"routes"}:
        data = data["routes"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise BotBottleError(f'{path}: expected {{"routes": [<route>, ...]}} (or a JSON list of routes)')
    return data


def with_approved_routes(doc: Mapping[str, Any], approved: Sequence[Mapping[str, Any]], source: str = APPROVED_ROUTES_FILE) -> dict[str, Any]:
    """The policy ``doc`` with the approved routes appended (after the manifest's, without repeats).

    Each route is checked with the sidecar's own parser first, so a bad entry fails the launch
    naming the file and the entry instead of taking the proxy down at start. A granted route
    never injects a credential: one carrying ``auth`` is refused.
    """
    from bot_bottle.sidecar.egress.hosts import route_host_problem
    from bot_bottle.sidecar.egress.policy import Policy, PolicyError

    routes = [dict(r) for r in doc.get("routes", [])]
    for i, raw in enumerate(approved):
        where = f"{source}[{i}]"
        if raw.get("auth") is not None:
            raise BotBottleError(f"{where}: an approved route cannot carry auth (credentials belong in the manifest)")
        # The rule a grant meets today, for one approved before it was (a `*.com`, a loopback name).
        problem = route_host_problem(raw["host"]) if isinstance(raw.get("host"), str) else None
        if problem is not None:
            raise BotBottleError(f"{where}: host {raw['host']!r}: {problem}",
                                 hint=f"remove that route from {source} in the bottle's state folder to resume it")
        try:
            route = Policy.from_dict({"version": POLICY_VERSION, "routes": [dict(raw)]}).routes[0].to_dict()
        except PolicyError as exc:
            raise BotBottleError(f"{where}: {str(exc).removeprefix('routes[0]').lstrip('.: ')}") from None
        route.setdefault("tls_passthrough", False)
        if not any(_same_route(route, r) for r in routes):
            routes.append(route)
    return {**doc, "routes": routes}


def _same_route(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Do two routes grant the same reach? (A manifest route's auth and DLP settings then stand.)"""
    keys = ("host", "ports", "matches", "tls_passthrough")
    norm = lambda r: {k: r.get(k) or None for k in keys}  # noqa: E731 - absent and empty compare equal
    return norm(a) == norm(b)
