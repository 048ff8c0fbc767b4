"""Compile a bottle plan into the files its sidecar reads: the policy and the secrets.

One compiler for every backend: the same proxy, the same DLP engine and the same rules serve a
Docker bottle and a micro-VM bottle. The policy holds no secret (credentials appear by
``token_ref`` name only); the secrets document holds values and is written only into the
sidecar, mode 600. The format is ``bot_bottle/sidecar/egress/policy.py``'s version 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot_bottle.manifest.model import DEFAULT_PORTS
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
        if _plain_http_intended(r):
            auth["plain_http"] = True
        route["auth"] = auth
    if r.dlp:
        route["dlp"] = dict(r.dlp)
    return route


def _plain_http_intended(r: RoutePlan) -> bool:
    """May the proxy inject this route's credential on a non-TLS request?

    Only when the route lists port 80 on purpose. The plan does not say whether ports were
    written or defaulted, so the default pair (80, 443) counts as not on purpose: a credential
    never crosses the wire in clear text because of a default.
    """
    return 80 in r.ports and tuple(sorted(r.ports)) != tuple(sorted(DEFAULT_PORTS))


def secrets(credentials: Mapping[str, str], known_secrets: Mapping[str, str]) -> dict[str, Any]:
    """Route credentials by token_ref name, and every secret value the DLP engine must know, by name."""
    return {"credentials": dict(credentials), "known_secrets": dict(known_secrets)}


# Loopback ports of the bundle's own daemons inside the sidecar (see bot_bottle/sidecar/init.py).
GIT_GATE_PORT = 9420


def internal_services(plan: BottlePlan) -> dict[str, int]:
    """The bundle's daemons this bottle runs, reachable by the agent as ``<name>.bottle.internal``."""
    services: dict[str, int] = {}
    if plan.repos:
        services["git-gate"] = GIT_GATE_PORT
    return services
