"""The gate's configuration: which repos it serves, where their upstreams are, how it logs in.

The host writes it (``/etc/bot-bottle/git-gate.json``) together with the credential files it
names; it holds paths, never credential values::

    {
      "version": 1,
      "user": {"name": "Agent", "email": "agent@example.com"},
      "secrets_file": "/etc/bot-bottle/git-gate/known-secrets.json",
      "connect_timeout": 5,
      "repos": [
        {"name": "app", "url": "git@github.com:org/app.git", "auth": "ssh-key",
         "ssh_key_file": "/etc/bot-bottle/git-gate/app.key",
         "known_hosts_file": "/etc/bot-bottle/git-gate/app.known_hosts"},
        {"name": "lib", "url": "https://github.com/org/lib.git", "auth": "https-token",
         "token_file": "/etc/bot-bottle/git-gate/lib.token", "username": "x-access-token"},
        {"name": "docs", "url": "https://example.org/docs.git", "auth": "none"}
      ]
    }

``user``, ``secrets_file`` (the bottle's own secret values, which the scan also looks for: the
sidecar's init writes them into the gate's folder; a file named here that the gate cannot read
refuses every push), ``connect_timeout`` (seconds) and ``username`` (HTTPS basic-auth user, default
``x-access-token``) are optional. Unknown keys are errors: a typo must not silently drop a
protection.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

AuthKind = Literal["ssh-key", "https-token", "none"]
AUTH_KINDS: tuple[str, ...] = ("ssh-key", "https-token", "none")
DEFAULT_USERNAME = "x-access-token"  # what GitHub expects with a token; GitLab accepts any name
DEFAULT_CONNECT_TIMEOUT = 5.0
CONFIG_VERSION = 1

# A name becomes a URL path segment and a folder name: no separators, no leading dot.
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")

_TOP_KEYS = {"version", "user", "secrets_file", "connect_timeout", "repos"}
_REPO_KEYS = {"name", "url", "auth", "ssh_key_file", "known_hosts_file", "token_file", "username"}


class ConfigError(Exception):
    """The config file is missing, unreadable or wrong; the message says where."""


@dataclass(frozen=True)
class RepoConfig:
    name: str
    url: str
    auth: AuthKind = "none"
    ssh_key_file: Path | None = None
    known_hosts_file: Path | None = None
    token_file: Path | None = None
    username: str = DEFAULT_USERNAME

    @property
    def is_ssh(self) -> bool:
        return self.auth == "ssh-key"


@dataclass(frozen=True)
class GateConfig:
    repos: tuple[RepoConfig, ...]
    user_name: str | None = None
    user_email: str | None = None
    secrets_file: Path | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT

    def repo(self, name: str) -> RepoConfig | None:
        for repo in self.repos:
            if repo.name == name:
                return repo
        return None


def load(path: Path) -> GateConfig:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not JSON: {exc}") from exc
    return parse(raw, where=str(path))


def parse(raw: Any, *, where: str = "git-gate config") -> GateConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a JSON object")
    _no_unknown(raw, _TOP_KEYS, where)
    version = raw.get("version", CONFIG_VERSION)
    if version != CONFIG_VERSION:
        raise ConfigError(f"{where}: version {version!r} is not supported (expected {CONFIG_VERSION})")
    user = raw.get("user") or {}
    if not isinstance(user, dict):
        raise ConfigError(f"{where}: user: expected an object with name and/or email")
    _no_unknown(user, {"name", "email"}, f"{where}: user")
    repos_raw = raw.get("repos", [])
    if not isinstance(repos_raw, list):
        raise ConfigError(f"{where}: repos: expected a list")
    repos = tuple(_repo(item, f"{where}: repos[{i}]") for i, item in enumerate(repos_raw))
    names = [r.name for r in repos]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{where}: repos: duplicate name(s): {', '.join(duplicates)}")
    timeout = raw.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 60:
        raise ConfigError(f"{where}: connect_timeout: expected seconds between 0 and 60")
    secrets_file = raw.get("secrets_file")
    return GateConfig(
        repos=repos,
        user_name=_opt_str(user.get("name"), f"{where}: user.name"),
        user_email=_opt_str(user.get("email"), f"{where}: user.email"),
        secrets_file=Path(_str(secrets_file, f"{where}: secrets_file")) if secrets_file is not None else None,
        connect_timeout=float(timeout),
    )


def _repo(item: Any, where: str) -> RepoConfig:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected an object")
    _no_unknown(item, _REPO_KEYS, where)
    name = _str(item.get("name"), f"{where}.name")
    if not NAME_RE.match(name):
        raise ConfigError(f"{where}.name: {name!r} may hold letters, digits, '.', '_' and '-' and not start with '.' or '-'")
    url = _str(item.get("url"), f"{where}.url")
    if any(c.isspace() for c in url) or url.startswith("-"):
        raise ConfigError(f"{where}.url: {url!r} is not a git URL")
    auth = item.get("auth", "none")
    if auth not in AUTH_KINDS:
        raise ConfigError(f"{where}.auth: expected one of {', '.join(AUTH_KINDS)}, got {auth!r}")
    key = _opt_path(item.get("ssh_key_file"), f"{where}.ssh_key_file")
    known_hosts = _opt_path(item.get("known_hosts_file"), f"{where}.known_hosts_file")
    token = _opt_path(item.get("token_file"), f"{where}.token_file")
    if auth == "ssh-key" and (key is None or known_hosts is None):
        # Without a pinned host key, ssh would have to trust whatever answers: refuse instead.
        raise ConfigError(f"{where}: auth ssh-key needs ssh_key_file and known_hosts_file")
    if auth == "https-token" and token is None:
        raise ConfigError(f"{where}: auth https-token needs token_file")
    if auth != "ssh-key" and (key or known_hosts):
        raise ConfigError(f"{where}: ssh_key_file/known_hosts_file are only used with auth ssh-key")
    if auth != "https-token" and token:
        raise ConfigError(f"{where}: token_file is only used with auth https-token")
    username = _str(item.get("username", DEFAULT_USERNAME), f"{where}.username")
    problem = username_problem(username)
    if problem:
        raise ConfigError(f"{where}.username: {problem}")
    return RepoConfig(
        name=name,
        url=url,
        auth=auth,
        ssh_key_file=key,
        known_hosts_file=known_hosts,
        token_file=token,
        username=username,
    )


def username_problem(username: str) -> str | None:
    """Why ``username`` cannot be an HTTPS basic-auth user name, or None: the one rule for the
    gate's config and the manifest (the name goes before the ':' of ``user:token``)."""
    if ":" in username or any(c.isspace() for c in username):
        return "may not contain ':' or spaces"
    return None


def _no_unknown(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s): {', '.join(unknown)}")


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string")
    return value


def _opt_str(value: Any, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _opt_path(value: Any, where: str) -> Path | None:
    if value is None:
        return None
    path = Path(_str(value, where))
    if not path.is_absolute():
        raise ConfigError(f"{where}: expected an absolute path")
    return path
