"""The egress policy a sidecar enforces: plain frozen data, read from the JSON file the host writes.

The host compiles a bottle plan into this shape; the sidecar never sees manifest files. Parsing
is strict (unknown keys, wrong types and invalid hosts are errors naming the offending field), so
a host and a sidecar that disagree about the format fail at start instead of enforcing half a
policy.

JSON shape (version 2; a document without ``version`` is version 1)::

    {"version": 2, "log": 1,
     "internal_services": {"git-gate": 9418},
     "routes": [{"host": "api.example.com", "ports": [443],
                 "matches": [{"paths": ["/v1/"], "methods": ["GET"],
                              "headers": {"x-team": "blue"}}],
                 "auth": {"scheme": "header", "token_ref": "EXAMPLE_KEY", "header": "x-api-key",
                          "plain_http": false},
                 "dlp": {"outbound_on_match": "block", "server_fetch": "block"},
                 "tls_passthrough": false}]}

Version 1 is the same without ``internal_services``, ``auth`` and ``dlp``; it is still read.

Semantics: a request passes a route when the host and port fit and, if ``matches`` is non-empty,
ANY entry passes; within an entry ALL the fields it gives must hold. ``paths`` are prefixes on
whole path segments (``/v1`` matches ``/v1`` and ``/v1/x`` but not ``/v1x``); a prefix ending in
``*`` is a raw string prefix (``/repo*`` matches ``/repo.git``). ``methods`` compare without case.
``headers`` map a name (any case) to the exact value every occurrence of that header must have.

``auth`` names a credential (``token_ref``) that the sidecar's secrets file holds; the proxy
injects it and strips whatever credential the agent sent. ``plain_http`` allows injecting on a
non-TLS request (the host sets it only when the route lists port 80 on purpose). ``dlp`` is the
route's DLP settings, passed through untouched for the DLP engine, except ``server_fetch``
(``block`` | ``allow``, absent: allow), which the proxy enforces itself (``server_fetch.py``) and
so is checked here. ``internal_services`` maps a
name to a port on the sidecar's loopback, reached by the agent as ``<name>.bottle.internal``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from bot_bottle.sidecar.egress.hosts import (
    INTERNAL_DOMAIN,
    HostError,
    internal_service_name,
    ip_literal,
    is_sidecar_local,
    is_wildcard,
    normalise_host,
)

POLICY_VERSION = 2
READABLE_VERSIONS = (1, 2)
DEFAULT_PORTS: tuple[int, ...] = (80, 443)
DEFAULT_LOG = 1
LOG_LEVELS = (0, 1, 2)  # 0 off, 1 denials and DLP events, 2 every decision
AUTH_SCHEMES = ("bearer", "token", "basic", "header")
# ``dlp.server_fetch``: whether a request may make the provider's servers reach an address it
# names (``server_fetch``); absent is "allow" (routes the host does not mark, granted routes).
SERVER_FETCH = "server_fetch"
SERVER_FETCH_VALUES = ("block", "allow")
SERVER_FETCH_DEFAULT = "allow"

# RFC 9110 token characters: what a header name may contain.
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# A service name is one DNS label, so "<name>.bottle.internal" is a valid host name.
_SERVICE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# Keys each version knows; anything else is an error, so a newer host fails loudly on an older sidecar.
_POLICY_KEYS = {1: {"version", "log", "routes"}, 2: {"version", "log", "routes", "internal_services"}}
_ROUTE_KEYS = {
    1: {"host", "ports", "matches", "tls_passthrough"},
    2: {"host", "ports", "matches", "tls_passthrough", "auth", "dlp"},
}


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
class RouteAuth:
    """Which credential the proxy injects for a route, and how. Never the value itself."""

    scheme: str  # bearer | token | basic | header
    token_ref: str
    header: str | None = None  # lower case; only with scheme "header"
    plain_http: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"scheme": self.scheme, "token_ref": self.token_ref}
        if self.header is not None:
            out["header"] = self.header
        if self.plain_http:
            out["plain_http"] = True
        return out


@dataclass(frozen=True)
class Route:
    host: str  # normalised; "*.example.com" for subdomains, or a canonical IP literal
    ports: tuple[int, ...] = DEFAULT_PORTS
    matches: tuple[Match, ...] = ()
    tls_passthrough: bool = False
    auth: RouteAuth | None = None
    # The plan's DLP settings for this route as canonical JSON, so the route stays hashable;
    # ``dlp_settings`` gives them back as a dict.
    dlp_json: str = ""

    @property
    def is_ip(self) -> bool:
        return not is_wildcard(self.host) and ip_literal(self.host) == self.host

    @cached_property
    def dlp_settings(self) -> dict[str, Any]:
        return json.loads(self.dlp_json) if self.dlp_json else {}

    @cached_property
    def blocks_server_fetch(self) -> bool:
        """Are requests that make the provider's servers fetch refused here (``server_fetch.py``)?"""
        return self.dlp_settings.get(SERVER_FETCH, SERVER_FETCH_DEFAULT) == "block"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"host": self.host, "ports": list(self.ports)}
        if self.matches:
            out["matches"] = [m.to_dict() for m in self.matches]
        if self.tls_passthrough:
            out["tls_passthrough"] = True
        if self.auth is not None:
            out["auth"] = self.auth.to_dict()
        if self.dlp_json:
            out["dlp"] = self.dlp_settings
        return out


@dataclass(frozen=True)
class Policy:
    routes: tuple[Route, ...] = ()
    log: int = DEFAULT_LOG
    version: int = POLICY_VERSION
    internal_services: tuple[tuple[str, int], ...] = field(default=())  # sorted (name, port)

    @property
    def services(self) -> dict[str, int]:
        return dict(self.internal_services)

    @property
    def token_refs(self) -> tuple[str, ...]:
        """Every credential some route injects, in route order, without repeats."""
        return tuple(dict.fromkeys(r.auth.token_ref for r in self.routes if r.auth is not None))

    @classmethod
    def from_dict(cls, data: Any) -> Policy:
        obj = _mapping(data, "policy")
        version = obj.get("version", 1)
        if isinstance(version, bool) or version not in READABLE_VERSIONS:
            raise PolicyError(
                f"policy.version: expected one of {', '.join(map(str, READABLE_VERSIONS))}, got {version!r}"
            )
        _no_unknown(obj, _POLICY_KEYS[version], "policy", version)
        log = obj.get("log", DEFAULT_LOG)
        if isinstance(log, bool) or log not in LOG_LEVELS:
            raise PolicyError(f"policy.log: expected one of 0, 1, 2, got {log!r}")
        routes_raw = obj.get("routes", [])
        if not isinstance(routes_raw, list):
            raise PolicyError("policy.routes: expected a list")
        routes = tuple(_route(item, f"routes[{i}]", version) for i, item in enumerate(routes_raw))
        services = _services(obj.get("internal_services", {}))
        return cls(routes=routes, log=log, version=version, internal_services=services)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version, "log": self.log, "routes": [r.to_dict() for r in self.routes]}
        if self.version >= 2:
            out["internal_services"] = self.services
        return out

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


def _route(data: Any, where: str, version: int) -> Route:
    obj = _mapping(data, where)
    _no_unknown(obj, _ROUTE_KEYS[version], where, version)
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
    auth = _auth(obj["auth"], f"{where}.auth") if obj.get("auth") is not None else None
    if passthrough and auth is not None:
        raise PolicyError(f"{where}: tls_passthrough cannot be combined with auth (nothing can be injected into an untouched tunnel)")
    if auth is not None and host.startswith("*."):
        raise PolicyError(f"{where}: a wildcard route cannot have auth (the real token would go to every subdomain)")
    dlp_raw = obj.get("dlp", {})
    if dlp_raw is None:
        dlp_raw = {}
    if not isinstance(dlp_raw, dict) or not all(isinstance(k, str) for k in dlp_raw):
        raise PolicyError(f"{where}.dlp: expected an object")
    fetch = dlp_raw.get(SERVER_FETCH, SERVER_FETCH_DEFAULT)
    if fetch not in SERVER_FETCH_VALUES:
        # The one DLP key the proxy itself enforces (``server_fetch``): a value it does not know
        # must not leave the route open silently.
        raise PolicyError(f"{where}.dlp.{SERVER_FETCH}: expected one of {', '.join(SERVER_FETCH_VALUES)}, got {fetch!r}")
    dlp_json = json.dumps(dlp_raw, sort_keys=True, separators=(",", ":")) if dlp_raw else ""
    return Route(host=host, ports=tuple(ports), matches=matches, tls_passthrough=passthrough, auth=auth, dlp_json=dlp_json)


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
    if wildcard and ip_literal(host) is not None:
        raise PolicyError(f"{where}: {value!r}: a wildcard cannot cover an IP address")
    if internal_service_name(host) is not None:
        raise PolicyError(
            f"{where}: {value!r}: names under {INTERNAL_DOMAIN} are reserved for the bundle's own services "
            "(listed in internal_services, not in routes)"
        )
    if is_sidecar_local(host):
        # A route here would reach the proxy's own loopback: every daemon of the bundle.
        raise PolicyError(
            f"{where}: {value!r} is the sidecar's own loopback; its services are reached only as "
            f"<name>.{INTERNAL_DOMAIN}"
        )
    return "*." + host if wildcard else host


def _match(data: Any, where: str) -> Match:
    obj = _mapping(data, where)
    _no_unknown(obj, {"paths", "methods", "headers"}, where)
    paths = _strings(obj.get("paths", []), f"{where}.paths")
    for k, path in enumerate(paths):
        problem = path_problem(path)
        if problem:
            raise PolicyError(f"{where}.paths[{k}]: {problem}")
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


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot be a ``paths`` entry, or None: the one rule for the policy, the
    manifest and a granted route."""
    if not path.startswith("/"):
        return f"{path!r} must start with '/'"
    if "*" in path[:-1]:
        return f"{path!r}: '*' is allowed only at the end"
    return None


def _auth(data: Any, where: str) -> RouteAuth:
    obj = _mapping(data, where)
    _no_unknown(obj, {"scheme", "token_ref", "header", "plain_http"}, where)
    scheme = obj.get("scheme")
    if scheme not in AUTH_SCHEMES:
        raise PolicyError(f"{where}.scheme: expected one of {', '.join(AUTH_SCHEMES)}, got {scheme!r}")
    token_ref = obj.get("token_ref")
    if not isinstance(token_ref, str) or not token_ref.strip():
        raise PolicyError(f"{where}.token_ref: expected the name of a credential")
    header = obj.get("header")
    if scheme == "header":
        if not isinstance(header, str) or not _HEADER_NAME.match(header):
            raise PolicyError(f"{where}.header: scheme 'header' needs a valid header name, got {header!r}")
        header = header.lower()
        if header in ("host", "content-length", "transfer-encoding", "connection"):
            raise PolicyError(f"{where}.header: {header!r} cannot carry a credential")
    elif header is not None:
        raise PolicyError(f"{where}.header: only used with scheme 'header'")
    plain_http = obj.get("plain_http", False)
    if not isinstance(plain_http, bool):
        raise PolicyError(f"{where}.plain_http: expected true or false")
    return RouteAuth(scheme=scheme, token_ref=token_ref, header=header, plain_http=plain_http)


def _services(data: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(data, dict):
        raise PolicyError("policy.internal_services: expected an object of service name to port")
    out = []
    for name, port in data.items():
        where = f"policy.internal_services.{name}"
        if not isinstance(name, str) or not _SERVICE_NAME.match(name):
            raise PolicyError(f"{where}: a service name is one lower-case DNS label")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise PolicyError(f"{where}: expected a port number 1-65535, got {port!r}")
        out.append((name, port))
    return tuple(sorted(out))


def _mapping(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise PolicyError(f"{where}: expected an object")
    return data


def _no_unknown(obj: Mapping[str, Any], known: set[str], where: str, version: int | None = None) -> None:
    unknown = sorted(set(obj) - known)
    if unknown:
        newer = version is not None and version < POLICY_VERSION and unknown[0] in _ROUTE_KEYS[POLICY_VERSION] | _POLICY_KEYS[POLICY_VERSION]
        hint = f" (it needs policy version {POLICY_VERSION})" if newer else ""
        raise PolicyError(f"{where}: unknown key {unknown[0]!r}{hint}")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(f"{where}: expected a list of non-empty strings")
    return tuple(value)
