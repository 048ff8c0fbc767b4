"""The bottle plan: everything a launch will do, resolved from the manifest for one agent.

``BottlePlan`` is the single source for the dry-run JSON, the preflight screen and the launch.
It holds names, never secret values. ``to_dict()`` is a public contract: keys may be added,
never renamed or removed.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from bot_bottle import providers
from bot_bottle.errors import UsageError
from bot_bottle.manifest.model import DEFAULT_PORTS, EnvEntry, GitUser, Manifest, Route, RouteAuth, RouteDlp

SCHEMA_VERSION = 1
BACKENDS = ("docker", "smolmachines")
Backend = Literal["docker", "smolmachines"]


# What the plan shows in place of a header condition's value that may be a credential.
HIDDEN_VALUE = "(not shown)"


def _header_may_hold_credential(name: str, value: str) -> bool:
    from bot_bottle.manifest.schema import may_hold_credential
    from bot_bottle.sidecar.egress.credentials import CREDENTIAL_HEADERS

    return name.lower() in CREDENTIAL_HEADERS or may_hold_credential(value)


def _shown_path(path: str) -> str:
    from bot_bottle.manifest.conceal import conceal_tokens

    return conceal_tokens(path)


@dataclass(frozen=True)
class RoutePlan:
    host: str
    ports: tuple[int, ...]
    matches: tuple[dict[str, Any], ...]
    auth: dict[str, str] | None
    dlp: dict[str, Any]
    tls_passthrough: bool
    source: str

    def shown_matches(self) -> list[dict[str, Any]]:
        """The match entries as the plan shows them: a header condition that may hold a
        credential (a credential header, or a value like a token) has its value hidden, and so
        has a token in a path prefix (a webhook's key, say). The policy gets ``matches`` itself."""
        out = []
        for entry in self.matches:
            m = dict(entry)
            if "paths" in m:
                m["paths"] = [_shown_path(path) for path in m["paths"]]
            if "headers" in m:
                m["headers"] = {k: (HIDDEN_VALUE if _header_may_hold_credential(k, v) else v)
                                for k, v in m["headers"].items()}
            out.append(m)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "ports": list(self.ports),
            "matches": self.shown_matches(),
            "auth": dict(self.auth) if self.auth else None,
            "dlp": dict(self.dlp),
            "tls_passthrough": self.tls_passthrough,
            "source": self.source,
        }


@dataclass(frozen=True)
class EnvPlan:
    name: str
    kind: str  # literal | prompt | host
    secret: bool
    source: str
    host_var: str | None = None
    prompt: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "secret": self.secret, "source": self.source}
        if self.host_var is not None:
            out["host_var"] = self.host_var
        if self.prompt is not None:
            out["prompt"] = self.prompt
        return out


@dataclass(frozen=True)
class RepoPlan:
    name: str
    url: str
    auth: str  # ssh-key | https-token | none
    credential_ref: str | None
    source: str
    known_hosts: str | None = None  # the pinned host key line(s): public, not secret
    username: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "auth": self.auth,
            "credential_ref": self.credential_ref,
            "source": self.source,
            "known_hosts": self.known_hosts,
            "username": self.username,
        }


@dataclass(frozen=True)
class BottlePlan:
    agent: str
    agent_path: Path
    agent_origin: str
    bottle: str
    bottle_path: Path
    bottle_chain: tuple[Path, ...]
    backend: str
    runtime: str
    runtime_note: str
    template: str
    agent_command: str
    agent_image: str | None
    agent_dockerfile: Path | None
    sidecar_image: str
    hosts: tuple[str, ...]
    routes: tuple[RoutePlan, ...]
    egress_log: int
    env: tuple[EnvPlan, ...]
    credential_refs: tuple[str, ...]
    git_user: dict[str, str | None]
    git_user_sources: dict[str, str | None]
    repos: tuple[RepoPlan, ...]
    supervise: bool
    skills: tuple[str, ...]
    system_prompt_chars: int
    label: str | None
    color: str | None
    cwd: Path | None
    labels: dict[str, str]
    shadowed_agent: Path | None = None
    plugin_dir: Path | None = None  # the plugin provider's folder, when the template is a plugin
    warnings: tuple[str, ...] = ()
    missing_host_vars: tuple[str, ...] = field(default=())
    # terminal.clipboard: "write" lets the agent's clipboard writes reach the operator's terminal.
    clipboard: str = "hold"

    @property
    def agent_folder(self) -> Path | None:
        """The folder whose ``./.bot-bottle/agents/`` holds the agent (a repository's), where a
        resume must look for it again; None for an agent in the home."""
        return self.agent_path.parent.parent.parent if self.agent_origin == "cwd" else None

    @property
    def agent_dockerfile_path(self) -> Path | None:
        """The custom Dockerfile the agent image is built from (the launch pipelines' name)."""
        return self.agent_dockerfile

    @property
    def secret_env_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.env if e.secret)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "agent": self.agent,
            "agent_path": str(self.agent_path),
            "agent_origin": self.agent_origin,
            "shadowed_agent": str(self.shadowed_agent) if self.shadowed_agent else None,
            "bottle": self.bottle,
            "bottle_path": str(self.bottle_path),
            "bottle_chain": [str(p) for p in self.bottle_chain],
            "backend": self.backend,
            "runtime": self.runtime,
            "runtime_note": self.runtime_note,
            "provider": {"template": self.template, "command": self.agent_command},
            "images": {
                "agent": self.agent_image,
                "agent_dockerfile": str(self.agent_dockerfile) if self.agent_dockerfile else None,
                "sidecar": self.sidecar_image,
            },
            "hosts": list(self.hosts),
            "routes": [r.to_dict() for r in self.routes],
            "egress_log": self.egress_log,
            "env": [e.to_dict() for e in self.env],
            "env_names": [e.name for e in self.env],
            "secret_env_names": list(self.secret_env_names),
            "credential_refs": list(self.credential_refs),
            "missing_host_vars": list(self.missing_host_vars),
            "git_gate": {
                "user": dict(self.git_user),
                "user_sources": dict(self.git_user_sources),
                "repos": [r.to_dict() for r in self.repos],
            },
            "supervise": self.supervise,
            "terminal": {"clipboard": self.clipboard},
            "skills": list(self.skills),
            "system_prompt_chars": self.system_prompt_chars,
            "label": self.label,
            "color": self.color,
            "cwd": str(self.cwd) if self.cwd else None,
            "labels": dict(self.labels),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class ImageRefs:
    agent: str | None
    sidecar: str
    # Why there is no agent image (a template this version cannot build yet).
    agent_problem: str | None = None


def default_images(template: str, dockerfile: Path | None, base_template: str | None = None) -> ImageRefs:
    """Image references computed from their inputs (pure: no Docker, no network)."""
    from bot_bottle import images
    from bot_bottle.errors import BotBottleError

    sidecar = images.sidecar_image().ref
    try:
        return ImageRefs(agent=images.agent_image(template, dockerfile, base_template=base_template).ref,
                         sidecar=sidecar)
    except BotBottleError as exc:
        return ImageRefs(agent=None, sidecar=sidecar, agent_problem=str(exc))


def _route_plan(route: Route, source: str | None = None) -> RoutePlan:
    matches = []
    for entry in route.matches:
        m: dict[str, Any] = {}
        if entry.paths:
            m["paths"] = list(entry.paths)
        if entry.methods:
            m["methods"] = list(entry.methods)
        if entry.headers:
            m["headers"] = {k: v for k, v in entry.headers}
        matches.append(m)
    auth = _auth_dict(route.auth)
    if auth is not None and 80 in route.ports and tuple(sorted(route.ports)) != tuple(sorted(DEFAULT_PORTS)):
        # Port 80 listed on purpose next to the route's own credential: it may go in clear text.
        # Only then: never for the default pair, nor for a credential the route inherits.
        auth["plain_http"] = "yes"
    return RoutePlan(
        host=route.host,
        ports=route.ports,
        matches=tuple(matches),
        auth=auth,
        dlp=_dlp_dict(route.dlp, route.auth is not None),
        tls_passthrough=route.tls_passthrough,
        source=source or str(route.origin),
    )


def _auth_dict(auth: RouteAuth | None) -> dict[str, str] | None:
    if auth is None:
        return None
    out = {"scheme": auth.scheme, "token_ref": auth.token_ref}
    if auth.header:
        out["header"] = auth.header
    return out


def _dlp_dict(dlp: RouteDlp, has_auth: bool, *, provider: bool = False) -> dict[str, Any]:
    # A route that carries an injected credential redacts that credential by default (the agent
    # may echo its placeholder's real value back) and blocks anything else; others block.
    default = "block"
    return {
        "outbound_on_match": dlp.outbound_on_match or default,
        "outbound_on_match_is_default": dlp.outbound_on_match is None,
        "own_token": "redact" if has_auth and dlp.outbound_on_match is None else (dlp.outbound_on_match or default),
        "tokens": dlp.tokens,
        "secrets": dlp.secrets,
        "entropy": dlp.entropy,
        "inbound": dlp.inbound,
        # A request that makes the provider's servers fetch from an address it names (an MCP
        # server, a web fetch tool, a URL image) leaves outside every route: refused on the
        # provider's route unless the manifest allows it (the sidecar's ``server_fetch.py``).
        "server_fetch": dlp.server_fetch or ("block" if provider else "allow"),
        "server_fetch_is_default": dlp.server_fetch is None,
    }


def _shadowed_route_warnings(routes: Sequence[RoutePlan]) -> list[str]:
    """Routes that never decide a request: an earlier route for the very same host allows every
    request on all their ports (no matches), and the first route that allows a request decides
    its credential and DLP. A parent bottle's route for a host a child narrows is the usual case."""
    out = []
    for j, later in enumerate(routes):
        for earlier in routes[:j]:
            if (earlier.host == later.host and not earlier.matches and not earlier.tls_passthrough
                    and set(later.ports) <= set(earlier.ports)):
                out.append(f"route {later.host} ({later.source}) never decides a request: the route for it from "
                           f"{earlier.source}, before it, allows every request there; its auth, matches and DLP "
                           "do not apply (give the host one route)")
                break
    return out


def _supervise_warnings(supervise: bool, template: str) -> list[str]:
    """Supervise on for an agent whose CLI bot-bottle does not register the server with (pi, a
    plugin that does not read a built-in's files): the sidecar runs it, but the agent cannot ask."""
    from bot_bottle.provision import mcp

    if not supervise or mcp.registration_path(template) is not None:
        return []
    return [f"supervise is on, but the {template} agent's CLI is not registered with its MCP server "
            "(bot-bottle registers it with Claude Code and Codex): this agent cannot ask the operator for more"]


def token_literal_warnings(env: Sequence[EnvEntry]) -> list[str]:
    """A literal that is a well-known token: written into a manifest it is not handled as a
    secret (it is not among the values DLP guards as the bottle's own). Never the value itself."""
    from bot_bottle.sidecar.dlp.tokens import token_format

    out = []
    for e in env:
        kind = token_format(e.value) if e.kind == "literal" else None
        if kind:
            out.append(f"env {e.name} ({e.origin}): its literal value is a {kind}; a secret belongs in the host, "
                       f"as \"${{HOST_VAR}}\" or \"?prompt\", so it is handled as one")
    return out


def contrib_dir(manifest: Manifest) -> Path:
    """Where plugin providers live: ``contrib/`` next to ``bottles/`` in the bot-bottle home."""
    return manifest.bottle.path.parent.parent / "contrib"


def agent_dockerfile(
    manifest_dockerfile: Path | None, info: providers.ProviderInfo | None
) -> tuple[Path | None, str]:
    """Which Dockerfile builds the agent image, and why.

    Precedence: the manifest's ``agent_provider.dockerfile`` (a child bottle's overrides its
    parents' when ``extends`` is folded), then the plugin's own Dockerfile, then the provider's
    default image. A resumed bottle's snapshot (``LaunchOptions.image_override``) replaces all
    of them at launch.
    """
    if manifest_dockerfile is not None:
        return manifest_dockerfile, "agent_provider.dockerfile"
    if info is not None and info.dockerfile is not None:
        return info.dockerfile, f"plugin {info.template}"
    return None, "provider default"


def _provider_route(manifest: Manifest, info: providers.ProviderInfo | None) -> RoutePlan | None:
    if info is None or not info.api_host:
        return None
    token = manifest.bottle.provider.auth_token or info.default_auth_token
    auth = RouteAuth(scheme=info.auth_scheme, token_ref=token, header=info.auth_header)
    source = f"provider:{info.template}"
    if manifest.bottle.provider.auth_token_origin is not None:
        source += f" ({manifest.bottle.provider.auth_token_origin})"
    return RoutePlan(
        host=info.api_host,
        ports=(443,),
        matches=(),
        auth=_auth_dict(auth),
        dlp=_dlp_dict(RouteDlp(), has_auth=True, provider=True),
        tls_passthrough=False,
        source=source,
    )


def _with_provider_route(
    routes: list[RoutePlan], declared: Sequence[Route], provider: RoutePlan
) -> tuple[list[RoutePlan], list[str]]:
    """The bottle's routes with the provider's: added first, or, where the bottle routes the
    provider's host itself (to narrow its paths, say), the provider's credential injected on
    those routes that name none, so ``auth_token`` is never silently lost. A route with its own
    ``auth`` keeps it; a passed-through one cannot carry a credential (a warning says so).

    Every route of the provider's host is the provider's API whoever's key it carries, so each
    refuses provider-side fetches by default (``server_fetch``), as the provider's own does."""
    own = [i for i, r in enumerate(routes) if r.host == provider.host]
    if not own:
        return [provider, *routes], []
    routes = list(routes)
    notes: list[str] = []
    for i in own:
        route = routes[i]
        if route.auth is not None or provider.auth is None:
            routes[i] = replace(route, dlp=_dlp_dict(declared[i].dlp, has_auth=route.auth is not None, provider=True))
            continue
        if route.tls_passthrough:
            notes.append(f"route {route.host} ({route.source}) is tls_passthrough: the provider's credential "
                         f"({provider.auth['token_ref']}) cannot be injected there")
            routes[i] = replace(route, dlp=_dlp_dict(declared[i].dlp, has_auth=False, provider=True))
            continue
        routes[i] = replace(route, auth=provider.auth, dlp=_dlp_dict(declared[i].dlp, has_auth=True, provider=True),
                            source=f"{route.source}; auth from {provider.source}")
    return routes, notes


# Where a git identity the manifest does not give comes from, as the plan names its source.
DEFAULT_GIT_USER_SOURCE = "bot-bottle default (no git-gate.user)"


def default_git_user(bottle: str) -> dict[str, str]:
    """The agent's git identity when ``git-gate.user`` gives none: named after its bottle, never
    after anyone on the host, at a domain that cannot receive mail (``.invalid``, RFC 2606).
    Without one, ``git commit`` in the bottle fails ("Please tell me who you are")."""
    return {"name": f"{bottle} agent (bot-bottle)", "email": f"{bottle}@bot-bottle.invalid"}


def git_identity(user: GitUser, bottle: str) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """(identity, where each field comes from): ``git-gate.user`` field by field, else the default."""
    default = default_git_user(bottle)
    identity: dict[str, str | None] = {}
    sources: dict[str, str | None] = {}
    for key, value, origin in (("name", user.name, user.name_origin), ("email", user.email, user.email_origin)):
        given = value is not None and value != ""
        identity[key] = value if given else default[key]
        sources[key] = (str(origin) if origin else None) if given else DEFAULT_GIT_USER_SOURCE
    return identity, sources


# A label is shown in one table cell (list, the console) and kept as a Docker label.
MAX_LABEL_CHARS = 100


def label_problem(label: str) -> str | None:
    """Why ``label`` cannot name a bottle, or None. A line break or a control character (an
    escape sequence) would break the tables that show it, or restyle the terminal showing it."""
    if not label.strip():
        return "a label cannot be empty"
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in label):
        return "a label must be one line of printable text (no line breaks, tabs or control characters)"
    if len(label) > MAX_LABEL_CHARS:
        return f"a label may be at most {MAX_LABEL_CHARS} characters, this one has {len(label)}"
    return None


def resolve(
    manifest: Manifest,
    *,
    backend: str = "docker",
    runtime: str = "runc",
    runtime_note: str = "",
    label: str | None = None,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    images: ImageRefs | None = None,
) -> BottlePlan:
    """Resolve the plan for one agent. Pure: the caller supplies backend facts and the environ."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; expected one of: {', '.join(BACKENDS)}")
    bottle = manifest.bottle
    agent = manifest.agent
    template = bottle.template
    info = providers.resolve(template, contrib_dir(manifest))
    dockerfile, _ = agent_dockerfile(bottle.provider.dockerfile, info)
    base_template = info.base_template if info is not None and info.is_plugin else None
    refs = images or default_images(template, dockerfile, base_template)

    routes = [_route_plan(r) for r in bottle.routes]
    provider_route = _provider_route(manifest, info)
    provider_notes: list[str] = []
    if provider_route is not None:
        routes, provider_notes = _with_provider_route(routes, bottle.routes, provider_route)
    hosts = tuple(sorted({r.host for r in routes}))

    env = tuple(
        EnvPlan(
            name=e.name,
            kind=e.kind,
            secret=e.secret,
            source=str(e.origin),
            host_var=e.value if e.kind == "host" else None,
            prompt=e.value if e.kind == "prompt" else None,
        )
        for e in bottle.env
    )
    credential_refs = sorted(
        {r.auth["token_ref"] for r in routes if r.auth} | {r.token_ref for r in bottle.repos if r.token_ref}
    )
    environ = environ if environ is not None else {}
    needed_host_vars = {e.host_var for e in env if e.host_var} | set(credential_refs)
    # A credential set to nothing is one the proxy cannot inject: start refuses it as unset.
    missing = tuple(sorted({v for v in needed_host_vars if v not in environ}
                           | {v for v in credential_refs if not environ.get(v)}))

    git_user, git_user_sources = git_identity(manifest.git_user, bottle.name)
    repos = tuple(
        RepoPlan(
            name=r.name,
            url=r.url,
            auth=r.auth_kind,
            credential_ref=r.token_ref or r.ssh_key,
            source=str(r.origin),
            known_hosts=r.known_hosts,
            username=r.username,
        )
        for r in bottle.repos
    )
    labels = {
        "bot-bottle.agent": agent.name,
        "bot-bottle.bottle": bottle.name,
        "bot-bottle.backend": backend,
    }
    if label:
        labels["bot-bottle.label"] = label
    warnings = [*manifest.warnings, *provider_notes]
    if refs.agent_problem:
        warnings.append(f"cannot start yet: {refs.agent_problem}")
    if missing:
        warnings.append("host variables unset or empty (start refuses them): " + ", ".join(missing))
    warnings += token_literal_warnings(bottle.env)
    warnings += _shadowed_route_warnings(routes)
    warnings += _supervise_warnings(bottle.supervise, template)
    return BottlePlan(
        agent=agent.name,
        agent_path=agent.path,
        agent_origin=agent.origin,
        bottle=bottle.name,
        bottle_path=bottle.path,
        bottle_chain=bottle.chain,
        backend=backend,
        runtime=runtime,
        runtime_note=runtime_note,
        template=template,
        agent_command=info.command if info else template,
        plugin_dir=info.plugin_dir if info else None,
        agent_image=refs.agent,
        agent_dockerfile=dockerfile,
        sidecar_image=refs.sidecar,
        hosts=hosts,
        routes=tuple(routes),
        egress_log=bottle.egress_log,
        env=env,
        credential_refs=tuple(credential_refs),
        git_user=git_user,
        git_user_sources=git_user_sources,
        repos=repos,
        supervise=bottle.supervise,
        clipboard=bottle.clipboard,
        skills=agent.skills,
        system_prompt_chars=len(agent.prompt),
        label=label,
        color=agent.color,
        cwd=cwd,
        labels=labels,
        shadowed_agent=manifest.shadowed,
        warnings=tuple(warnings),
        missing_host_vars=missing,
    )


__all__ = ["BACKENDS", "DEFAULT_PORTS", "BottlePlan", "ImageRefs", "resolve"]
