"""The manifest's data model: plain frozen dataclasses, one per concept.

``BottleFile`` and ``AgentFile`` hold exactly what one file says (unset fields are ``None``);
``Bottle`` is the effective bottle after folding ``extends``. Every value keeps the file and
line it came from, so ``info`` can show provenance and later errors can point at the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

EnvKind = Literal["literal", "prompt", "host"]
OutboundAction = Literal["block", "redact", "supervise"]
# Whether a request may make the provider's servers fetch from an address it names (an MCP server,
# a web fetch tool, a URL-sourced image): refused by default on the provider's route.
ServerFetch = Literal["block", "allow"]

BUILTIN_TEMPLATES = ("claude", "codex", "pi")
DEFAULT_TEMPLATE = "claude"
DEFAULT_EGRESS_LOG = 1
DEFAULT_PORTS = (80, 443)


@dataclass(frozen=True)
class Origin:
    """Where a value was written: a file, a line and, where known, the column (1-based) its key or
    list item starts at. ``str()`` and equality leave the column out: a route or a repo written
    the same way on the same line is the same one, and ``FILE:LINE`` stays what messages quote."""

    path: Path
    line: int
    column: int | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class EnvEntry:
    """One ``env`` entry. ``value`` is the literal, the prompt text, or the host variable name."""

    name: str
    kind: EnvKind
    value: str
    origin: Origin

    @property
    def secret(self) -> bool:
        return self.kind != "literal"


@dataclass(frozen=True)
class MatchEntry:
    """One entry of a route's ``matches``: every field given must hold."""

    paths: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RouteAuth:
    """Credential injection: the proxy sends the value of host env var ``token_ref``."""

    scheme: str
    token_ref: str
    header: str | None = None


@dataclass(frozen=True)
class RouteDlp:
    """Per-route DLP switches; ``outbound_on_match`` and ``server_fetch`` None mean the default
    for the route (``server_fetch``: block on the provider's route, allow elsewhere)."""

    outbound_on_match: OutboundAction | None = None
    tokens: bool = True
    secrets: bool = True
    entropy: bool = False
    inbound: bool = True
    server_fetch: ServerFetch | None = None


@dataclass(frozen=True)
class Route:
    host: str
    origin: Origin
    ports: tuple[int, ...] = DEFAULT_PORTS
    matches: tuple[MatchEntry, ...] = ()
    auth: RouteAuth | None = None
    dlp: RouteDlp = field(default_factory=RouteDlp)
    tls_passthrough: bool = False
    # Its place in its file's ``egress.routes``, for errors naming it (``egress.routes[2]``); not
    # part of what the route is, so the same route reached twice by ``extends`` is still one.
    index: int = field(default=0, compare=False)

    @property
    def key(self) -> str:
        return f"egress.routes[{self.index}]"


@dataclass(frozen=True)
class GitUser:
    name: str | None = None
    email: str | None = None
    name_origin: Origin | None = None
    email_origin: Origin | None = None

    def overlay(self, other: GitUser) -> GitUser:
        """Field by field: what ``other`` sets wins."""
        return GitUser(
            name=other.name if other.name is not None else self.name,
            email=other.email if other.email is not None else self.email,
            name_origin=other.name_origin if other.name is not None else self.name_origin,
            email_origin=other.email_origin if other.email is not None else self.email_origin,
        )


@dataclass(frozen=True)
class GitRepo:
    """A remote the git-gate serves: the agent uses ``url``; the gate talks upstream."""

    name: str
    url: str
    origin: Origin
    ssh_key: str | None = None
    known_hosts: str | None = None
    token_ref: str | None = None
    username: str | None = None

    @property
    def auth_kind(self) -> str:
        if self.ssh_key:
            return "ssh-key"
        if self.token_ref:
            return "https-token"
        return "none"


@dataclass(frozen=True)
class Provider:
    template: str | None = None
    dockerfile: Path | None = None
    auth_token: str | None = None
    template_origin: Origin | None = None
    dockerfile_origin: Origin | None = None
    auth_token_origin: Origin | None = None


@dataclass(frozen=True)
class BottleFile:
    """What one bottle file says, before ``extends`` is folded."""

    name: str
    path: Path
    extends: tuple[tuple[str, Origin], ...] = ()
    env: tuple[EnvEntry, ...] = ()
    egress_log: tuple[int, Origin] | None = None
    routes: tuple[Route, ...] = ()
    git_user: GitUser = field(default_factory=GitUser)
    repos: tuple[GitRepo, ...] = ()
    supervise: tuple[bool, Origin] | None = None
    clipboard: tuple[str, Origin] | None = None  # terminal.clipboard
    provider: Provider = field(default_factory=Provider)
    description: str = ""


@dataclass(frozen=True)
class Bottle:
    """The effective bottle: its file and every ancestor folded left to right, child last."""

    name: str
    path: Path
    chain: tuple[Path, ...]
    env: tuple[EnvEntry, ...]
    egress_log: int
    egress_log_origin: Origin | None
    routes: tuple[Route, ...]
    git_user: GitUser
    repos: tuple[GitRepo, ...]
    supervise: bool
    supervise_origin: Origin | None
    provider: Provider
    description: str = ""
    # terminal.clipboard: "hold" (the agent's clipboard writes are held back) or "write".
    clipboard: str = "hold"
    clipboard_origin: Origin | None = None

    @property
    def template(self) -> str:
        return self.provider.template or DEFAULT_TEMPLATE


@dataclass(frozen=True)
class AgentFile:
    name: str
    path: Path
    origin: Literal["home", "cwd"]
    bottle: str
    bottle_origin: Origin
    skills: tuple[str, ...] = ()
    skills_origin: Origin | None = None  # where ``skills`` was written, for a start that cannot find one
    git_user: GitUser = field(default_factory=GitUser)
    prompt: str = ""
    color: str | None = None
    model: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Manifest:
    """One agent and its effective bottle: everything downstream needs, nothing re-read later."""

    agent: AgentFile
    bottle: Bottle
    shadowed: Path | None = None
    warnings: tuple[str, ...] = ()

    @property
    def git_user(self) -> GitUser:
        return self.bottle.git_user.overlay(self.agent.git_user)
