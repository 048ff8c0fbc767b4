"""Compile a bottle plan into the files its sidecar reads: the policy and the secrets.

One compiler for every backend: the same proxy, the same DLP engine and the same rules serve a
Docker bottle and a micro-VM bottle. The policy holds no secret; the secrets document holds
values and is written only into the sidecar, mode 600.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot_bottle.plan import BottlePlan

POLICY_FILE = "policy.json"
SECRETS_FILE = "secrets.json"


def policy(plan: BottlePlan) -> dict[str, Any]:
    """The egress policy document the sidecar enforces."""
    routes = []
    for r in plan.routes:
        route: dict[str, Any] = {"host": r.host, "ports": list(r.ports), "tls_passthrough": r.tls_passthrough}
        if r.matches:
            route["matches"] = [dict(m) for m in r.matches]
        routes.append(route)
    return {"version": 1, "log": plan.egress_log, "routes": routes}


def secrets(credentials: Mapping[str, str], known_secrets: Mapping[str, str]) -> dict[str, Any]:
    """Route credentials by token_ref name, and every secret value the DLP engine must know, by name."""
    return {"credentials": dict(credentials), "known_secrets": dict(known_secrets)}
