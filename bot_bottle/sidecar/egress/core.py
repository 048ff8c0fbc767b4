"""Egress decisions: plain request facts and a policy in, a verdict out.

Nothing here imports mitmproxy or touches the network, so every rule is tested as a fast unit
test and the proxy adapter stays a thin translation layer. Default deny: a request is allowed
only when a route names its host, allows its port and (when the route has ``matches``) one of
the route's entries passes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot_bottle.sidecar.egress.hosts import HostError, host_matches, ip_literal, normalise_host
from bot_bottle.sidecar.egress.policy import Match, Policy, Route

# Rule identifiers: stable strings that appear in logs and 403 bodies.
RULE_ROUTE = "route"
RULE_DEFAULT_DENY = "default-deny"
RULE_INVALID_HOST = "invalid-host"
RULE_IP_LITERAL = "ip-literal"
RULE_PORT = "port"
RULE_MATCH = "match"
RULE_HOST_HEADER = "host-header-mismatch"


@dataclass(frozen=True)
class RequestFacts:
    """What the proxy knows about one request, before any policy is applied.

    ``host`` and ``port`` are the connection's real target (the CONNECT authority, or the
    absolute URL the proxy will connect to), never a client-sent ``Host`` header, which is kept
    in ``headers`` only to be checked against the target.
    """

    scheme: str
    host: str
    port: int
    method: str = "GET"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()  # (lower-case name, value), in arrival order
    is_connect: bool = False

    @classmethod
    def make(
        cls,
        *,
        scheme: str,
        host: str,
        port: int,
        method: str = "GET",
        path: str = "/",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        is_connect: bool = False,
    ) -> RequestFacts:
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        return cls(
            scheme=scheme.lower(),
            host=host,
            port=port,
            method=method.upper(),
            path=path,
            headers=tuple((str(k).lower(), str(v)) for k, v in pairs),
            is_connect=is_connect,
        )

    def header_values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key == wanted]


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    host: str  # the normalised target (the raw one when it could not be normalised)
    port: int
    rule: str
    reason: str
    route: Route | None = None
    route_index: int | None = None
    match_index: int | None = None

    @property
    def decision(self) -> str:
        return "allow" if self.allowed else "deny"

    @property
    def route_label(self) -> str | None:
        """``routes[2] (*.example.com)``: which route decided, as logs and messages name it."""
        if self.route is None or self.route_index is None:
            return None
        return f"routes[{self.route_index}] ({self.route.host})"

    def deny_message(self) -> str:
        """The body of the 403 the agent sees: the host, the rule and why; never a header value."""
        return (
            f"bot-bottle egress: request to {self.host}:{self.port} denied by rule "
            f"'{self.rule}': {self.reason}\n"
        )


def decide(request: RequestFacts, policy: Policy) -> Verdict:
    """The verdict for ``request`` under ``policy``. Pure: same input, same verdict."""
    try:
        host = normalise_host(request.host)
    except HostError as exc:
        return Verdict(False, request.host, request.port, RULE_INVALID_HOST, f"the target host is invalid ({exc})")

    def deny(rule: str, reason: str, idx: int | None = None) -> Verdict:
        route = policy.routes[idx] if idx is not None else None
        return Verdict(False, host, request.port, rule, reason, route, idx)

    target_ip = ip_literal(host)
    if target_ip is not None:
        candidates = [i for i, r in enumerate(policy.routes) if r.is_ip and r.host == target_ip]
        if not candidates:
            return deny(
                RULE_IP_LITERAL,
                f"{host} is an IP address; addresses are refused unless a route names that exact address",
            )
    else:
        candidates = [i for i, r in enumerate(policy.routes) if not r.is_ip and host_matches(r.host, host)]
        if not candidates:
            return deny(RULE_DEFAULT_DENY, f"no route allows host {host}")

    on_port = [i for i in candidates if request.port in policy.routes[i].ports]
    if not on_port:
        first = candidates[0]
        allowed = ", ".join(str(p) for p in policy.routes[first].ports)
        return deny(RULE_PORT, f"port {request.port} is not allowed for {host} (allowed: {allowed})", first)

    if not request.is_connect:
        spoof = _host_header_problem(request, host)
        if spoof is not None:
            return deny(RULE_HOST_HEADER, spoof)

    for i in on_port:
        route = policy.routes[i]
        if request.is_connect or not route.matches:
            # A CONNECT carries no path or method yet: with TLS intercepted, each request inside
            # the tunnel comes back here and meets the route's matches then.
            what = "tunnel" if request.is_connect else "request"
            return Verdict(True, host, request.port, RULE_ROUTE, f"{what} allowed by routes[{i}] ({route.host})", route, i)
        for j, entry in enumerate(route.matches):
            if _entry_passes(entry, request):
                return Verdict(
                    True, host, request.port, RULE_ROUTE,
                    f"request allowed by routes[{i}] ({route.host}) matches[{j}]", route, i, j,
                )

    first = on_port[0]
    route = policy.routes[first]
    wanted = " | ".join(m.describe() for m in route.matches)
    why = f"{request.method} {_display_path(request.path)} fits no matches entry of routes[{first}] ({route.host}): {wanted}"
    if _normalise_path(request.path) is None and any(m.paths for m in route.matches):
        why += " (the path has dot segments or encoded separators, which path rules never accept)"
    return deny(RULE_MATCH, why, first)


def _entry_passes(entry: Match, request: RequestFacts) -> bool:
    if entry.methods and request.method not in entry.methods:
        return False
    if entry.paths:
        path = _normalise_path(request.path)
        if path is None or not any(_path_has_prefix(path, prefix) for prefix in entry.paths):
            return False
    for name, value in entry.headers:
        values = request.header_values(name)
        # Every occurrence must hold: with duplicates, upstream may read the one we did not check.
        if not values or any(v != value for v in values):
            return False
    return True


def _path_has_prefix(path: str, prefix: str) -> bool:
    if prefix.endswith("*"):
        return path.startswith(prefix[:-1])
    if prefix.endswith("/"):
        return path.startswith(prefix) or path == prefix[:-1]
    return path == prefix or path.startswith(prefix + "/")


def _normalise_path(raw: str) -> str | None:
    """The path without query or fragment, or None when servers could read it differently.

    Dot segments (also percent-encoded, also before ``;params``), encoded slashes or
    backslashes and NUL make "which prefix is this under" depend on the server, so any path rule
    refuses them rather than guessing.
    """
    path = raw.split("#", 1)[0].split("?", 1)[0]
    if not path.startswith("/"):
        return None  # "*" (OPTIONS), or an absolute URL that was not split off
    lowered = path.lower()
    if "\\" in path or any(bad in lowered for bad in ("%2f", "%5c", "%00", "%25")):
        return None
    decoded = lowered.replace("%2e", ".")
    for segment in decoded.split("/"):
        if segment.split(";", 1)[0] in (".", ".."):
            return None
    return path


def _host_header_problem(request: RequestFacts, host: str) -> str | None:
    """Why the ``Host`` header disagrees with the real target, or None when it does not."""
    values = request.header_values("host")
    if len(values) > 1:
        return "the request carries more than one Host header"
    if not values:
        return None
    try:
        named = normalise_host(_strip_port(values[0]))
    except HostError:
        return "the Host header is not a valid host name"
    if named != host:
        return f"the Host header names {named}, not the target {host}"
    return None


def _strip_port(authority: str) -> str:
    text = authority.strip()
    if text.startswith("["):
        return text.split("]", 1)[0] + "]"
    if text.count(":") == 1:
        return text.split(":", 1)[0]
    return text


def _display_path(path: str) -> str:
    """The path for messages: no query string (it may carry secrets), bounded length."""
    shown = path.split("?", 1)[0]
    return shown if len(shown) <= 120 else shown[:117] + "..."
