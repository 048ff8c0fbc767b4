"""Egress decisions: plain request facts and a policy in, a verdict out.

Nothing here imports mitmproxy or touches the network, so every rule is tested as a fast unit
test and the proxy adapter stays a thin translation layer. Default deny: a request is allowed
only when a route names its host, allows its port and (when the route has ``matches``) one of
the route's entries passes, and only when its shape is sound (``structure``). Reserved names
``<service>.bottle.internal`` go to the bundle's own services instead of any route.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from bot_bottle.sidecar.egress import credentials, structure
from bot_bottle.sidecar.egress.hosts import (
    INTERNAL_DOMAIN,
    HostError,
    HostSpellingError,
    host_matches,
    internal_service_name,
    ip_literal,
    is_sidecar_local,
    is_wildcard,
    normalise_host,
)
from bot_bottle.sidecar.egress.policy import Match, Policy, Route

# Rule identifiers: stable strings that appear in logs and 403 bodies.
RULE_ROUTE = "route"
RULE_DEFAULT_DENY = "default-deny"
RULE_INVALID_HOST = "invalid-host"
RULE_NON_CANONICAL_HOST = "non-canonical-host"
RULE_IP_LITERAL = "ip-literal"
RULE_SIDECAR_LOCAL = "sidecar-local"
RULE_PORT = "port"
RULE_MATCH = "match"
RULE_HOST_HEADER = "host-header-mismatch"
RULE_CREDENTIAL_TLS = "credential-needs-tls"
RULE_CREDENTIAL_ECHO = "credential-echo"
RULE_CREDENTIAL_QUERY = "credential-in-query"
RULE_CREDENTIAL_BODY = "credential-in-body"
RULE_INTERNAL_SERVICE = "internal-service"
RULE_INTERNAL_NAME = "internal-name"
RULE_CONNECT_IN_TUNNEL = "connect-in-tunnel"
ECHO_METHOD = "TRACE"  # answered with the request itself: never sent with a credential in it
INTERNAL_PORT = 80  # the agent reaches internal services as plain http://<name>.bottle.internal/


@dataclass(frozen=True)
class RequestFacts:
    """What the proxy knows about one request, before any policy is applied.

    ``host`` and ``port`` are the connection's real target (the CONNECT authority, or the
    absolute URL the proxy will connect to), never a client-sent ``Host`` header, which is kept
    in ``headers`` only to be checked against the target. ``authority`` is the host of an
    absolute-form request line received inside a tunnel, or an HTTP/2 or HTTP/3 request's
    ``:authority`` (empty otherwise): it must agree with the target too. ``in_tunnel``: the
    request came inside a tunnel the proxy opened (a CONNECT there would re-point that tunnel at
    another host).
    """

    scheme: str
    host: str
    port: int
    method: str = "GET"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()  # (lower-case name, value), in arrival order
    is_connect: bool = False
    http_version: str = "HTTP/1.1"
    authority: str = ""
    in_tunnel: bool = False

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
        http_version: str = "HTTP/1.1",
        authority: str = "",
        in_tunnel: bool = False,
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
            http_version=http_version,
            authority=authority,
            in_tunnel=in_tunnel,
        )

    @functools.cached_property
    def methods_asked(self) -> frozenset[str]:
        """The method and every method the request asks the upstream to act as instead (once
        per request: each ``matches`` entry of each route checks it)."""
        return _methods_asked(self)

    @functools.cached_property
    def credential_param(self) -> str | None:
        """The first credential parameter (``credentials.CREDENTIAL_PARAMS``) in the query, or
        None (once per request: each credentialed route checks it)."""
        return _credential_param(self)

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
    internal_service: str | None = None  # the bundle service this request goes to
    internal_port: int | None = None  # its port on the sidecar's loopback
    passthrough: bool = False  # a tunnel to be forwarded untouched (TLS not intercepted)

    @property
    def decision(self) -> str:
        return "allow" if self.allowed else "deny"

    @property
    def route_label(self) -> str | None:
        """``routes[2] (*.example.com)``: which route decided, as logs and messages name it."""
        if self.internal_service is not None:
            return f"internal_services.{self.internal_service}"
        if self.route is None or self.route_index is None:
            return None
        return f"routes[{self.route_index}] ({self.route.host})"

    @property
    def structural(self) -> bool:
        """Refused for the request's shape: the connection should not be reused after it."""
        return self.rule in STRUCTURAL_RULES

    def deny_message(self) -> str:
        """The body of the 403 the agent sees: the host, the rule and why; never a header value."""
        return (
            f"bot-bottle egress: request to {self.host}:{self.port} denied by rule "
            f"'{self.rule}': {self.reason}\n"
        )


STRUCTURAL_RULES = frozenset(
    {
        structure.RULE_HEADER_INJECTION,
        structure.RULE_HEADER_NAME,
        structure.RULE_OBS_FOLD,
        structure.RULE_CL_TE,
        structure.RULE_CONTENT_LENGTH,
        structure.RULE_TRANSFER_ENCODING,
        structure.RULE_HEADER_TOO_LARGE,
        structure.RULE_ABSOLUTE_FORM,
        structure.RULE_METHOD,
        RULE_CONNECT_IN_TUNNEL,
    }
)


def decide(request: RequestFacts, policy: Policy) -> Verdict:
    """The verdict for ``request`` under ``policy``. Pure: same input, same verdict."""
    try:
        host = normalise_host(request.host)
    except HostSpellingError as exc:
        return Verdict(
            False, request.host, request.port, RULE_NON_CANONICAL_HOST,
            f"the target host is spelt with fullwidth, compatibility or ignored characters that IDNA folds into "
            f"{exc.folded}, and servers and resolvers do not all fold them so: use the name's ASCII form",
        )
    except HostError as exc:
        return Verdict(False, request.host, request.port, RULE_INVALID_HOST, f"the target host is invalid ({exc})")

    def deny(rule: str, reason: str, idx: int | None = None) -> Verdict:
        route = policy.routes[idx] if idx is not None else None
        return Verdict(False, host, request.port, rule, reason, route, idx)

    # The message's own shape first: a malformed request is refused whatever its target.
    problem = structure.header_problem(request.headers, request.http_version) or structure.method_problem(request.method)
    if problem is None and not request.is_connect:
        problem = structure.target_problem(request.path)
    if problem is not None:
        return deny(problem.rule, problem.reason)
    if request.is_connect and request.in_tunnel:
        return deny(RULE_CONNECT_IN_TUNNEL, "a CONNECT inside a tunnel would re-point it at another host")

    service = internal_service_name(host)
    if service is not None:
        return _internal(request, policy, host, service)
    target_ip = ip_literal(host)
    if target_ip is not None:
        candidates = [i for i, r in enumerate(policy.routes) if r.is_ip and r.host == target_ip]
        if not candidates:
            return deny(
                RULE_IP_LITERAL,
                f"{host} is an IP address; addresses are refused unless a route names that exact address",
            )
    elif is_sidecar_local(host):
        # "localhost" and friends: no route can name them (the policy refuses it), say why here.
        return deny(RULE_SIDECAR_LOCAL, f"{host} is the proxy's own machine; only <name>.{INTERNAL_DOMAIN} leads there")
    else:
        candidates = [i for i, r in enumerate(policy.routes) if not r.is_ip and host_matches(r.host, host)]
        if not candidates:
            return deny(RULE_DEFAULT_DENY, f"no route allows host {host}")
        # The route naming the host most closely decides first: an exact name before any wildcard,
        # a wildcard over a longer domain before a shorter one; in the manifest's order within one.
        # Else a broad route (``*.github.com``, a parent bottle's) would take the requests of a
        # route written for that very host, with its credential, its matches and its DLP.
        candidates.sort(key=lambda i: -_specificity(policy.routes[i].host))

    on_port = [i for i in candidates if request.port in policy.routes[i].ports]
    if not on_port:
        first = candidates[0]
        allowed = ", ".join(str(p) for p in policy.routes[first].ports)
        return deny(RULE_PORT, f"port {request.port} is not allowed for {host} (allowed: {allowed})", first)

    if request.is_connect:
        # A CONNECT carries no path or method yet: with TLS intercepted, each request inside the
        # tunnel comes back here and meets the route's matches then. A tunnel is passed through
        # untouched when a route allowing it says so (such a route allows every request anyway).
        first = on_port[0]
        # Only the routes naming the host most closely: a wildcard passthrough must not take a
        # tunnel to a host another route gives a credential, matches or DLP to.
        closest = [i for i in on_port if _specificity(policy.routes[i].host) == _specificity(policy.routes[first].host)]
        passing = [i for i in closest if policy.routes[i].tls_passthrough]
        chosen = passing[0] if passing else first
        route = policy.routes[chosen]
        how = "passed through untouched" if passing else "intercepted"
        return Verdict(
            True, host, request.port, RULE_ROUTE,
            f"tunnel allowed by routes[{chosen}] ({route.host}), TLS {how}", route, chosen,
            passthrough=bool(passing),
        )

    problem = _request_problem(request, host)
    if problem is not None:
        return deny(problem.rule, problem.reason)

    auth_refusal: Verdict | None = None
    for i in on_port:
        route = policy.routes[i]
        entry = _passing_entry(route, request)
        if entry is None:
            continue
        if route.auth is not None and request.scheme != "https" and not route.auth.plain_http:
            # The real credential would cross the wire in clear text: refuse, and say how to fix it.
            auth_refusal = auth_refusal or deny(
                RULE_CREDENTIAL_TLS,
                f"routes[{i}] ({route.host}) injects a credential, and credentials are only sent over TLS: "
                f"use https://{host}/ (or list port 80 explicitly on the route to allow plain HTTP)",
                i,
            )
            continue
        if route.auth is not None and ECHO_METHOD in request.methods_asked:
            # TRACE asks the upstream to answer with the request as it arrived, credential and all.
            auth_refusal = auth_refusal or deny(
                RULE_CREDENTIAL_ECHO,
                f"routes[{i}] ({route.host}) injects a credential, and a {ECHO_METHOD} request asks the "
                "upstream to send the request back as it received it",
                i,
            )
            continue
        if route.auth is not None and request.credential_param is not None:
            # The upstream could take the agent's credential (an attacker's account) over the one
            # injected in a header: the request would act as someone the bottle's owner is not.
            auth_refusal = auth_refusal or deny(
                RULE_CREDENTIAL_QUERY,
                f"routes[{i}] ({route.host}) injects a credential in a header, and the query carries a "
                f"credential parameter ({request.credential_param}) the upstream may take instead: remove it",
                i,
            )
            continue
        where = f"routes[{i}] ({route.host})" + (f" matches[{entry}]" if entry >= 0 else "")
        return Verdict(True, host, request.port, RULE_ROUTE, f"request allowed by {where}", route, i,
                       entry if entry >= 0 else None)
    if auth_refusal is not None:
        return auth_refusal

    first = on_port[0]
    route = policy.routes[first]
    wanted = " | ".join(m.describe() for m in route.matches)
    why = f"{request.method} {_display_path(request.path)} fits no matches entry of routes[{first}] ({route.host}): {wanted}"
    if _normalise_path(request.path) is None and any(m.paths for m in route.matches):
        why += " (the path has dot segments, encoded separators or escapes servers decode differently, which path rules never accept)"
    overrides = sorted(request.methods_asked - {request.method, WEBSOCKET})
    if WEBSOCKET in request.methods_asked and any(m.methods for m in route.matches):
        why += f" (a WebSocket needs {WEBSOCKET} among an entry's methods)"
    if overrides and any(m.methods for m in route.matches):
        # Only method-shaped values are named: a header value may be what is being smuggled out.
        shown = ", ".join(m if m.isalpha() and len(m) <= 12 else "another method" for m in overrides[:3])
        why += f" (a method override asks the upstream to act as {shown})"
    return deny(RULE_MATCH, why, first)


def _internal(request: RequestFacts, policy: Policy, host: str, service: str) -> Verdict:
    """Requests to ``<service>.bottle.internal``: the bundle's own daemons, never the internet."""
    port = policy.services.get(service) if service else None
    if port is None:
        known = ", ".join(f"{name}.{INTERNAL_DOMAIN}" for name in policy.services) or "none"
        return Verdict(
            False, host, request.port, RULE_INTERNAL_NAME,
            f"{host} is a reserved name that names no service of this bottle (services here: {known})",
        )
    if request.is_connect:
        return Verdict(
            False, host, request.port, RULE_INTERNAL_NAME,
            f"internal services are reached over plain HTTP through the proxy (http://{host}/), not through a tunnel",
        )
    if request.port != INTERNAL_PORT:
        return Verdict(
            False, host, request.port, RULE_PORT,
            f"internal services are reached on port {INTERNAL_PORT} (http://{host}/)",
        )
    problem = _request_problem(request, host, git_push_allowed=True)
    if problem is not None:
        return Verdict(False, host, request.port, problem.rule, problem.reason)
    return Verdict(
        True, host, request.port, RULE_INTERNAL_SERVICE, f"request to the bundle's {service} service",
        internal_service=service, internal_port=port,
    )


def _request_problem(request: RequestFacts, host: str, *, git_push_allowed: bool = False) -> structure.Problem | None:
    """What is wrong with a request (not a tunnel) for its real target, whatever the route says."""
    spoof = _host_header_problem(request, host)
    if spoof is not None:
        return structure.Problem(RULE_HOST_HEADER, spoof)
    mismatch = structure.absolute_form_problem(request.authority, host, request.port, normalise_host)
    if mismatch is not None:
        return mismatch
    hop = structure.forwarded_host_problem(request.headers) or structure.connection_problem(request.headers)
    if hop is not None:
        return hop
    if not git_push_allowed:
        # The git-gate (an internal service) is where pushes go: it scans them first. A server
        # that routes by ``X-Original-URL`` serves a push named there too.
        push = structure.git_push_problem(request.path, request.headers)
        if push is None:
            push = next(filter(None, (structure.git_push_problem(t, ()) for t in _path_overrides(request))), None)
        if push is None:
            # A push over WebDAV (``git http-push``) names no git-receive-pack.
            push = _dumb_push_problem(request)
        return push
    return None


def _dumb_push_problem(request: RequestFacts) -> structure.Problem | None:
    """``structure.git_dumb_push_problem`` for the path and each path a rewriting server routes
    by instead, with every method the request asks for (overrides too) and its ``Destination``."""
    targets = (request.path, *_path_overrides(request))
    destinations = _alias_values(request, "destination")
    if not any(map(structure.may_name_repo_path, (*targets, *destinations))):
        return None  # checked first: most requests ask for no method override to work out
    methods = request.methods_asked
    if not methods & structure.DUMB_PUSH_METHODS:
        return None
    for target in targets:
        problem = structure.git_dumb_push_problem(target, methods, destinations)
        if problem is not None:
            return problem
    return None


def _passing_entry(route: Route, request: RequestFacts) -> int | None:
    """-1 when the route has no matches, the index of the first passing entry, or None."""
    if not route.matches:
        return -1
    for j, entry in enumerate(route.matches):
        if _entry_passes(entry, request):
            return j
    return None


# Headers and a query parameter through which web frameworks (Rails, Laravel, Symfony, Express,
# ASP.NET, Google APIs) let a POST act as another method: a route's ``methods`` hold for them too.
METHOD_OVERRIDE_HEADERS = ("x-http-method-override", "x-http-method", "x-method-override")
METHOD_OVERRIDE_PARAM = "_method"
WEBSOCKET = "WEBSOCKET"  # what a ``matches`` entry's ``methods`` names to allow a WebSocket


def _asks_websocket(request: RequestFacts) -> bool:
    return any("websocket" in value.lower() for value in request.header_values("upgrade"))


def _specificity(pattern: str) -> int:
    """How closely a route's host names its targets (higher: closer)."""
    return len(pattern) if is_wildcard(pattern) else 1 << 16


def _methods_asked(request: RequestFacts) -> frozenset[str]:
    """The request's method and every method it asks the upstream to act as instead. A request
    asking for a WebSocket asks ``WEBSOCKET`` too: a two-way channel, which a ``matches`` entry
    allowing only GET (reading) must not open. Its handshake's GET is part of it; any other method
    still needs allowing itself (an upstream that ignores the header acts on the method)."""
    asked = {request.method}
    if _asks_websocket(request):
        asked.add(WEBSOCKET)
        asked.discard("GET")
    for name in METHOD_OVERRIDE_HEADERS:
        asked.update(v.strip().upper() for value in _alias_values(request, name) for v in value.split(","))
    # The query of a path a rewriting server routes by instead (``X-Original-URL``) is read too.
    for target in (request.path, *_path_overrides(request)):
        query = target.split("?", 1)[1] if "?" in target else ""
        asked.update(value.strip().upper() for value in urlencoded_methods(query))
    return frozenset(asked)


# PHP (so Laravel, Symfony on PHP) registers a field under a rewritten name: leading spaces
# dropped, cut at a NUL, spaces and dots (and an unmatched "[") turned into "_". So ".method"
# reaches the app as "_method"; " method" and "[method" are taken too, to be safe.
PHP_NAME_MANGLING = str.maketrans(" .[", "___")


def is_override_name(name: str) -> bool:
    """Whether a decoded field name reaches some framework as ``_method``: without case, with
    surrounding whitespace, or under PHP's rewriting of names. ``method``, ``x_method``,
    ``_method_x`` are other fields."""
    name = name.partition("\0")[0].lower()
    return any(n.translate(PHP_NAME_MANGLING) == METHOD_OVERRIDE_PARAM for n in (name.strip(), name.rstrip()))


# How a multipart part may spell the override's name, as some parser decodes it: each character
# literal, backslash-escaped (inside a quoted string) or percent-encoded (parsers that decode
# names, and RFC 2231 / RFC 5987 ``name*=UTF-8''%5Fmethod``, whose charset'language' prefix is
# skipped whatever it names), after blanks (spaces, tabs, spelt those ways too), with its first
# character as PHP may rewrite it ("_", ".", "[", or a space), and with blanks around the "=" as
# Go's parser allows. The charset and language are bounded (no registered name is longer) so the
# streamed reading (``stream_method``) needs only a bounded look ahead.
MULTIPART_BLANK = rb"(?:[ \t]|\\[ \t]|%20|%09)"
MULTIPART_FIRST = rb"(?:[_.\[ ]|\\[_.\[ ]|%5f|%2e|%5b|%20)"
MULTIPART_METHOD_WORD = b"".join(rb"(?:%s|\\%s|%%%s)" % (c, c, code) for c, code in (
    (b"m", b"[46]d"), (b"e", b"[46]5"), (b"t", b"[57]4"), (b"h", b"[46]8"), (b"o", b"[46]f"), (b"d", b"[46]4")))
# RFC 2231's attribute-chars: no blank, "%" nor "\\" in them, so a name's blanks never start one.
MULTIPART_ATTRIBUTE_CHARS = rb"[A-Za-z0-9!#$&+^_`|~.-]"
MULTIPART_EXTENDED_PREFIX = MULTIPART_ATTRIBUTE_CHARS + rb"{0,40}'" + MULTIPART_ATTRIBUTE_CHARS + rb"{0,40}'"

# A form field of that name, as a multipart part: ``name="_method"``, headers, blank line, value.
# A ``name*0`` (an RFC 2231 continuation, which Go and Python join) is taken as the override
# whatever its pieces say: no browser sends one, and joining pieces would need them all kept.
# The name is matched by its start, so ``_method_x`` or ``_methods`` is refused too, on purpose
# (fail closed): where a name ends depends on the parser (a quoted string ends at an unescaped
# quote, a token at ";" or a blank, PHP cuts at a NUL and reads ``_method[]`` or ``_method[0]`` as
# an array under ``_method``), so an exact end would be one parser's guess; a real form's field
# so named whose first line is not an allowed method is rare enough to refuse. (Rack and Symfony
# ignore an array ``_method``, but PHP still registers it under that name.)
_MULTIPART_METHOD = re.compile(
    rb"content-disposition:[^\r\n]*\bname(?:\*[0-9]|\*?[ \t]*=[ \t]*\"?(?:" + MULTIPART_EXTENDED_PREFIX + rb")?"
    + MULTIPART_BLANK + b"*" + MULTIPART_FIRST + MULTIPART_METHOD_WORD
    + rb")[^\r\n]*\r?\n(?:[^\r\n]+\r?\n)*\r?\n([^\r\n]*)", re.I)


FORM_URLENCODED = "application/x-www-form-urlencoded"
FORM_MULTIPART = "multipart/form-data"
_MEDIA_TYPE_END = re.compile(r"[;,\s]")


def form_kind(content_type: str) -> str | None:
    """``FORM_URLENCODED`` or ``FORM_MULTIPART`` for a body whose ``_method`` field frameworks
    read, else None. The media type ends at ";", "," or a blank (Rack and PHP cut it there: an
    ``application/x-www-form-urlencoded, x`` body is a form to them), and a body without any
    type is a form (Rack reads a POST so)."""
    kind = _MEDIA_TYPE_END.split(content_type.strip(), 1)[0].lower()
    if not kind:
        return FORM_URLENCODED
    return kind if kind in (FORM_URLENCODED, FORM_MULTIPART) else None


def json_kind(content_type: str) -> bool:
    """Does Laravel read this body as JSON, and its top-level ``_method`` as the method? It does
    when the type contains ``/json`` or ``+json`` anywhere."""
    lowered = content_type.lower()
    return "/json" in lowered or "+json" in lowered


def json_override_values(body: bytes) -> list[str]:
    """The ``_method`` values of a JSON object body's top level (``is_override_name`` keys); one
    that is not a string is returned as its JSON text (no method is spelt so: refused). A body
    Python's parser refuses (PHP's may still read it) is read by ``json_override_scan``."""
    try:
        data = json.loads(body.decode("utf-8", "surrogatepass"), parse_int=lambda _: 0, parse_constant=lambda _: 0)
    except (ValueError, RecursionError):
        return json_override_scan(body, final=True)[0]
    if not isinstance(data, dict):
        return []
    return [v if isinstance(v, str) else json.dumps(v) for k, v in data.items() if is_override_name(k)]


# Reading JSON for ``_method`` keys without parsing it (a streamed body, or one Python's parser
# refuses): at any depth, so stricter than the top level Laravel reads. A key's letters appear as
# themselves or as ``\u`` escapes of the override's letters (its PHP-rewritten first characters
# too): only where those are is a key looked for. Its blanks and its string value are bounded
# (``JSON_VALUE_CAP``); a key with more is refused, as no client writes one.
JSON_VALUE_CAP = 1024
_JSON_NAME_CAP = 96
_JSON_MAYBE = re.compile(rb"[Mm][Ee][Tt][Hh][Oo][Dd]|\\u00(?:5[fFbB]|[46][dDfF54]|[57]4|[46]8|2[eE0])")
_JSON_NAME = re.compile(rb'"((?:[^"\\\r\n]|\\.){1,%d})"' % _JSON_NAME_CAP)
_JSON_BLANKS = re.compile(rb"[ \t\r\n]{0,%d}" % JSON_VALUE_CAP)
_JSON_STRING = re.compile(rb'"((?:[^"\\]|\\.){0,%d})"' % JSON_VALUE_CAP)
_JSON_REACH = 2 * _JSON_NAME_CAP + 2  # a mark lies this far at most after its name's quote


def json_string(raw: bytes) -> str:
    try:
        return str(json.loads(b'"' + raw + b'"'))
    except ValueError:
        return ""


def json_override_scan(data: bytes, *, final: bool, done: int = 0) -> tuple[list[str], int | None, int]:
    """``(values, resume, done)``: the values of the override keys in ``data`` whose marks lie
    at or past ``done`` (a non-string value, or one cut off at the end of a ``final`` body, as
    ""), where a key still arriving starts (None: nothing is), and how far marks were judged."""
    values: list[str] = []
    for mark in _JSON_MAYBE.finditer(data, done):
        quote = data.rfind(b'"', max(0, mark.start() - _JSON_REACH), mark.start())
        name = _JSON_NAME.match(data, quote) if quote >= 0 else None
        if name is None or name.end() <= mark.start() or not is_override_name(json_string(name.group(1))):
            if name is None and quote >= 0 and not final and len(data) - quote <= _JSON_REACH + 2:
                return values, quote, mark.start()  # the name may still be arriving
            continue
        colon = _JSON_BLANKS.match(data, name.end()).end()
        value_at = _JSON_BLANKS.match(data, colon + 1).end() if data[colon:colon + 1] == b":" else -1
        if colon == len(data) or value_at == len(data):
            if not final and len(data) - name.end() <= 2 * JSON_VALUE_CAP:
                return values, quote, mark.start()  # its colon or value is still arriving
            values.append("")
            continue
        if value_at < 0:
            if colon - name.end() >= JSON_VALUE_CAP:
                values.append("")  # a name, then more blanks than any client writes: refused
            continue  # a string that is no key
        value = _JSON_STRING.match(data, value_at)
        if value is None and not final and len(data) - value_at <= JSON_VALUE_CAP + 2:
            return values, quote, mark.start()
        values.append(json_string(value.group(1)) if value is not None else "")
    return values, None, len(data)


def body_methods(verdict: Verdict) -> tuple[str, ...]:
    """The methods a form body's ``_method`` field may ask for; empty: the passing entry
    restricts none, so the field is not looked at."""
    if verdict.route is None or verdict.match_index is None:
        return ()
    return verdict.route.matches[verdict.match_index].methods


def override_values(text: str) -> list[str]:
    """The values of the ``_method`` fields (``is_override_name``) of urlencoded text (a body
    read as latin-1, or a query) split on ``&`` only, as ``parse_qsl`` reads them: ``+`` and
    percent escapes decoded."""
    return [v for k, v in parse_qsl(text, keep_blank_values=True) if is_override_name(k)]


# The first character of a name that decodes to one ``core.is_override_name`` takes ("_", ".",
# "[", a space), then "method", each literal or percent-encoded (the only ways a name decodes to
# it): a field whose name lacks it is skipped without being decoded. No separator nor "=" in it.
URLENCODED_OVERRIDE_MARK = re.compile(rb"(?:_|%5f|\.|%2e|\[|%5b|\+|%20| )"
                            rb"(?:m|%[46]d)(?:e|%[46]5)(?:t|%[57]4)(?:h|%[46]8)(?:o|%[46]f)(?:d|%[46]4)", re.I)


def urlencoded_methods(text: str) -> list[str]:
    """``override_values`` of the text split on ``&``, and again split on ``&`` and ``;``: some
    parsers (older Rack, some Java and Python ones, PHP with ``arg_separator.input``) split on
    both, and the upstream's is not known."""
    asked = override_values(text)
    if ";" in text:
        asked += override_values(text.replace(";", "&"))
    return asked


def method_allowed(value: str, allowed: Iterable[str]) -> bool:
    return value.strip().upper() in allowed


def body_method_reason(verdict: Verdict) -> str:
    return (f"the form's {METHOD_OVERRIDE_PARAM} field asks the upstream to act as another method than "
            f"{', '.join(body_methods(verdict))} (routes[{verdict.route_index}] matches[{verdict.match_index}])")


def body_method_problem(verdict: Verdict, content_type: str, body: bytes) -> str | None:
    """Why a form body's ``_method`` field (Rails, Laravel, Symfony read it as the method) asks
    for a method the passing ``matches`` entry does not allow, or None. A streamed body gets the
    same check chunk by chunk (``stream_method``)."""
    allowed = body_methods(verdict)
    if not allowed:
        return None
    kind = form_kind(content_type)
    asked: list[str] = []
    if kind == FORM_URLENCODED and URLENCODED_OVERRIDE_MARK.search(body):
        # Only a body with such a name is parsed (a large upload sent without a type is a form
        # to Rack, and parsing megabytes of it field by field takes a noticeable time).
        asked = urlencoded_methods(body.decode("latin-1"))
    elif kind == FORM_MULTIPART:
        asked = [m.group(1).decode("latin-1") for m in _MULTIPART_METHOD.finditer(body)]
    if json_kind(content_type):
        asked += json_override_values(body)
    if all(method_allowed(v, allowed) for v in asked):
        return None
    return body_method_reason(verdict)


def _alias_values(request: RequestFacts, name: str) -> list[str]:
    """Values of header ``name`` and of its ``_``/``-`` spellings: CGI-style servers (WSGI,
    older gunicorn) read ``X_Team`` and ``X-Team`` as one header."""
    wanted = name.lower().replace("_", "-")
    return [value for key, value in request.headers if key.replace("_", "-") == wanted]


# Headers through which some servers route a request by another path than its own (IIS URL
# Rewrite, older Symfony and Zend): a route's ``paths`` hold for them too.
PATH_OVERRIDE_HEADERS = ("x-original-url", "x-rewrite-url")


def _path_overrides(request: RequestFacts) -> list[str]:
    return [v.strip() for name in PATH_OVERRIDE_HEADERS for v in _alias_values(request, name)]


def _credential_param(request: RequestFacts) -> str | None:
    """The first credential parameter in the query of the path or of a path a rewriting server
    routes by instead, split on "&" and on ";" (``urlencoded_methods``), its name decoded once and
    twice (servers differ in how often they decode)."""
    for target in (request.path, *_path_overrides(request)):
        query = target.partition("?")[2]
        if not query:
            continue
        for text in (query, query.replace(";", "&")) if ";" in query else (query,):
            for name, _ in parse_qsl(text, keep_blank_values=True):
                found = credentials.credential_param(name) or credentials.credential_param(unquote(name))
                if found is not None:
                    return found
    return None


def _entry_passes(entry: Match, request: RequestFacts) -> bool:
    if entry.methods and not request.methods_asked <= set(entry.methods):
        return False
    if entry.paths:
        for raw in (request.path, *_path_overrides(request)):
            path = _normalise_path(raw)
            if path is None or not any(_path_has_prefix(path, prefix) for prefix in entry.paths):
                return False
    for name, value in entry.headers:
        values = _alias_values(request, name)
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


# Escapes no valid URL holds, which some servers still decode: IIS reads ``%u002e`` as ".", and
# overlong UTF-8 (``%c0%ae``, ``%e0%80%ae``: a lead byte that never starts valid UTF-8, or one
# followed by a byte that makes the sequence overlong) was read as "." or "/" by IIS and Tomcat.
SERVER_ONLY_ESCAPES = ("%u", "%c0", "%c1", "%e0%8", "%e0%9", "%f0%8")


def _normalise_path(raw: str) -> str | None:
    """The path without query or fragment, or None when servers could read it differently.

    Dot segments (also percent-encoded, also before ``;params``, also with an encoded ``;``, also
    with trailing dots or spaces, which IIS trims), encoded slashes or backslashes and NUL make
    "which prefix is this under" depend on the server, so any path rule refuses them rather than
    guessing. So do the escapes some servers decode into a dot or a slash that no valid URL holds
    (``SERVER_ONLY_ESCAPES``), and characters Windows servers read as a dot or a separator that
    make a dot segment so read (``structure.windows_reading``: ``/api/．．／admin``).
    """
    path = raw.split("#", 1)[0].split("?", 1)[0]
    if not path.startswith("/"):
        return None  # "*" (OPTIONS), or an absolute URL that was not split off
    lowered = path.lower()
    if "\\" in path or any(bad in lowered for bad in ("%2f", "%5c", "%00", "%25", *SERVER_ONLY_ESCAPES)):
        return None
    decoded = lowered.replace("%2e", ".").replace("%3b", ";").replace("%20", " ")
    for reading in (decoded, structure.windows_reading(lowered)):
        for segment in reading.split("/"):
            if _dot_segment(segment.split(";", 1)[0]):
                return None
    return path


def _dot_segment(segment: str) -> bool:
    """``.`` or ``..``, also as IIS and Windows read a segment: without its trailing dots and
    spaces (``...``, ``.. ``, ``..%20`` are ``..`` or ``.`` there)."""
    return "." in segment and not segment.strip(". ")


def _host_header_problem(request: RequestFacts, host: str) -> str | None:
    """Why the ``Host`` header disagrees with the real target, or None when it does not."""
    values = request.header_values("host")
    if len(values) > 1:
        return "the request carries more than one Host header"
    if not values:
        return None
    if not values[0].isascii():
        # Clients send a name in its ASCII (xn--) form. Other bytes (read here as latin-1) may fold
        # into the target's name under IDNA, while the upstream picks its site by the bytes.
        return "the Host header holds non-ASCII bytes; send the name in its ASCII (xn--) form"
    if structure.authority_shape_problem(values[0]):
        return "the Host header is not a host name and port"
    name, named_port = structure.split_authority(values[0])
    try:
        named = normalise_host(name)
    except HostError:
        return "the Host header is not a valid host name"
    if named != host:
        # The header's value is not repeated: it may be the very thing being smuggled out.
        return f"the Host header names another host than the target {host}"
    if named_port is not None and named_port != request.port:
        return f"the Host header names another port than {request.port}"
    return None


def _display_path(path: str) -> str:
    """The path for messages: no query string (it may carry secrets), bounded length."""
    shown = path.split("?", 1)[0]
    return shown if len(shown) <= 120 else shown[:117] + "..."
