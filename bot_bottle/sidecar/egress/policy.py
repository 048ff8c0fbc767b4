"""The egress policy a sidecar enforces: plain frozen data, read from the JSON file the host writes.

The host compiles a bottle plan into this shape; the sidecar never sees manifest files. Parsing
is strict (unknown keys, wrong types and invalid hosts are errors naming the offending field), so
a host and a sidecar that disagree about the format fail at start instead of enforcing half a
policy.

JSON shape (version 1)::

    {"version": 1, "log": 1,
     "routes": [{"host": "api.example.com", "ports": [443],
                 "matches": [{"paths": ["/v1/"], "methods": ["GET"],
                              "headers": {"x-team": "blue"}}],
                 "tls_passthrough": false}]}

Semantics: a request passes a route when the host and port fit and, if ``matches`` is non-empty,
ANY entry passes; within an entry ALL the fields it gives must hold. ``paths`` are prefixes on
whole path segments (``/v1`` matches ``/v1`` and ``/v1/x`` but not ``/v1x``); a prefix ending in
``*`` is a raw string prefix (``/repo*`` matches ``/repo.git``). ``methods`` compare without case.
``headers`` map a name (any case) to the exact value every occurrence of that header must have.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot_bottle.sidecar.egress.hosts import HostError, ip_literal, is_wildcard, normalise_host

POLICY_VERSION = 1
DEFAULT_PORTS: tuple[int, ...] = (80, 443)
DEFAULT_LOG = 1
LOG_LEVELS = (0, 1, 2)  # 0 off, 1 denials only, 2 every decision


class PolicyError(ValueError):
    """The policy document is malformed; the message names the field."""


@dataclass(frozen=True)
class Match:
    """One ``matches`` entry; an empty field places no condition."""

    paths: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()  # (lower-case name, exact value)

    def describe(self) -> str:
        parts = []
        if self.paths:
            parts.append("paths " + ",".join(self.paths))
        if self.methods:
            parts.append("methods " + ",".join(self.methods))
        if self.headers:
            parts.append("headers " + ",".join(name for name, _ in self.headers))
        return "; ".join(parts) or "anything"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.paths:
            out["paths"] = list(self.paths)
        if self.methods:
            out["methods"] = list(self.methods)
        if self.headers:
            out["headers"] = dict(self.headers)
        return out


@dataclass(frozen=True)
class Route:
    host: str  # normalised; "*.example.com" for subdomains, or a canonical IP literal
    ports: tuple[int, ...] = DEFAULT_PORTS
    matches: tuple[Match, ...] = ()
    tls_passthrough: bool = False

    @property
    def is_ip(self) -> bool:
        return not is_wildcard(self.host) and ip_literal(self.host) == self.host

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"host": self.host, "ports": list(self.ports)}
        if self.matches:
            out["matches"] = [m.to_dict() for m in self.matches]
        if self.tls_passthrough:
            out["tls_passthrough"] = True
        return out


@dataclass(frozen=True)
class Policy:
    routes: tuple[Route, ...] = ()
    log: int = DEFAULT_LOG
    version: int = POLICY_VERSION

    @classmethod
    def from_dict(cls, data: Any) -> Policy:
        obj = _mapping(data, "policy")
        _no_unknown(obj, {"version", "log", "routes"}, "policy")
        version = obj.get("version", POLICY_VERSION)
        if version != POLICY_VERSION:
            raise PolicyError(f"policy.version: expected {POLICY_VERSION}, got {version!r}")
        log = obj.get("log", DEFAULT_LOG)
        if isinstance(log, bool) or log not in LOG_LEVELS:
            raise PolicyError(f"policy.log: expected one of 0, 1, 2, got {log!r}")
        routes_raw = obj.get("routes", [])
        if not isinstance(routes_raw, list):
            raise PolicyError("policy.routes: expected a list")
        routes = tuple(_route(item, f"routes[{i}]") for i, item in enumerate(routes_raw))
        return cls(routes=routes, log=log, version=version)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "log": self.log, "routes": [r.to_dict() for r in self.routes]}

    @classmethod
    def from_json(cls, text: str) -> Policy:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PolicyError(f"policy is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(f"cannot read policy {path}: {exc.strerror or exc}") from exc
        return cls.from_json(text)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


def _route(data: Any, where: str) -> Route:
    obj = _mapping(data, where)
    _no_unknown(obj, {"host", "ports", "matches", "tls_passthrough"}, where)
    if "host" not in obj:
        raise PolicyError(f"{where}.host: required")
    host = _route_host(obj["host"], f"{where}.host")
    ports_raw = obj.get("ports", list(DEFAULT_PORTS))
    if not isinstance(ports_raw, list) or not ports_raw:
        raise PolicyError(f"{where}.ports: expected a non-empty list of port numbers")
    ports: list[int] = []
    for j, port in enumerate(ports_raw):
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise PolicyError(f"{where}.ports[{j}]: expected a port number 1-65535, got {port!r}")
        if port not in ports:
            ports.append(port)
    matches_raw = obj.get("matches", [])
    if not isinstance(matches_raw, list):
        raise PolicyError(f"{where}.matches: expected a list")
    matches = tuple(_match(item, f"{where}.matches[{j}]") for j, item in enumerate(matches_raw))
    passthrough = obj.get("tls_passthrough", False)
    if not isinstance(passthrough, bool):
        raise PolicyError(f"{where}.tls_passthrough: expected true or false")
    if passthrough and matches:
        # Inside an untouched tunnel the proxy sees no path, method or header to check.
        raise PolicyError(f"{where}: tls_passthrough cannot be combined with matches")
    return Route(host=host, ports=tuple(ports), matches=matches, tls_passthrough=passthrough)


def _route_host(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(f"{where}: expected a host name")
    text = value.strip()
    wildcard = text.startswith("*.")
    base = text[2:] if wildcard else text
    if "*" in base:
        raise PolicyError(f"{where}: {value!r}: only a leading '*.' wildcard is allowed")
    try:
        host = normalise_host(base)
    except HostError as exc:
        raise PolicyError(f"{where}: {exc}") from exc
    if wildcard:
        if ip_literal(host) is not None:
            raise PolicyError(f"{where}: {value!r}: a wildcard cannot cover an IP address")
        return "*." + host
    return host


def _match(data: Any, where: str) -> Match:
    obj = _mapping(data, where)
    _no_unknown(obj, {"paths", "methods", "headers"}, where)
    paths = _strings(obj.get("paths", []), f"{where}.paths")
    for k, path in enumerate(paths):
        if not path.startswith("/"):
            raise PolicyError(f"{where}.paths[{k}]: {path!r} must start with '/'")
        if "*" in path[:-1]:
            raise PolicyError(f"{where}.paths[{k}]: {path!r}: '*' is allowed only at the end")
    methods = tuple(m.upper() for m in _strings(obj.get("methods", []), f"{where}.methods"))
    headers_raw = obj.get("headers", {})
    if not isinstance(headers_raw, dict):
        raise PolicyError(f"{where}.headers: expected a mapping of header name to value")
    headers: list[tuple[str, str]] = []
    for name, value in headers_raw.items():
        if not isinstance(name, str) or not name or not isinstance(value, str):
            raise PolicyError(f"{where}.headers: {name!r}: expected a header name and a string value")
        headers.append((name.lower(), value))
    headers.sort()
    return Match(paths=paths, methods=methods, headers=tuple(headers))


def _mapping(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise PolicyError(f"{where}: expected an object")
    return data


def _no_unknown(obj: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(obj) - known)
    if unknown:
        raise PolicyError(f"{where}: unknown key {unknown[0]!r}")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(f"{where}: expected a list of non-empty strings")
    return tuple(value)
