"""The agent's side of the git-gate: identity, URL rewriting, and the gate's own files.

``configure_git`` sets the agent user's global git config through the bottle handle only:
``user.name``/``user.email`` from the resolved ``git-gate.user`` (else the plan's default, kept
from an identity the agent set itself), and for every repo one
``url.<gate>/<name>.git.insteadOf`` per spelling of its real URL (SSH ``git@host:path``,
``ssh://``, HTTPS and HTTP, each with and without ``.git``), so ``git clone/fetch/pull/push/
ls-remote`` with the URL a human would paste goes to the gate.

``gate_files`` compiles what the sidecar needs to run the gate (its JSON config and one mode-600
credential file per repo), reading SSH keys from the host and tokens from the host environment.
The agent never receives any of it.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bot_bottle.backend import Bottle
from bot_bottle.errors import BotBottleError
from bot_bottle.sidecar.git_gate import urls

GATE_BASE_URL = "http://git-gate.bottle.internal"
SIDECAR_CONFIG_PATH = "/etc/bot-bottle/git-gate.json"
SIDECAR_CREDENTIALS_DIR = "/etc/bot-bottle/git-gate"
# The bottle's own secret values for the gate's push scan: the sidecar's init writes them there
# (``sidecar.init.write_gate_secrets``) from the proxy's secrets file, which the gate cannot read.
GATE_SECRETS_PATH = f"{SIDECAR_CREDENTIALS_DIR}/known-secrets.json"


class RepoLike(Protocol):
    """What the provisioner needs of a repo: the plan's ``RepoPlan`` and the manifest's ``GitRepo`` fit."""

    name: str
    url: str


# ----------------------------------------------------------------------------- URL forms


def url_forms(url: str) -> list[str]:
    """Every spelling of ``url`` that git users type for the same repository, declared one first.

    ``insteadOf`` matches prefixes and the longest one wins, so each form is listed with and
    without ``.git``: ``.../app.git`` must not become ``<gate>/app.git.git``.
    """
    parsed = urls.parse(url)
    forms = [url]
    if parsed.host is None or not parsed.repo_path:
        return forms
    host, path = parsed.host, parsed.repo_path
    ssh_user = parsed.user if parsed.kind in ("ssh", "scp") and parsed.user else "git"
    ssh_port = f":{parsed.port}" if parsed.kind == "ssh" and parsed.port else ""
    web_port = f":{parsed.port}" if parsed.kind in ("https", "http") and parsed.port else ""
    for suffix in (".git", ""):
        if not ssh_port:
            forms.append(f"{ssh_user}@{host}:{path}{suffix}")
        forms.append(f"ssh://{ssh_user}@{host}{ssh_port}/{path}{suffix}")
        forms.append(f"ssh://{host}{ssh_port}/{path}{suffix}")
        forms.append(f"https://{host}{web_port}/{path}{suffix}")
        forms.append(f"http://{host}{web_port}/{path}{suffix}")
    return list(dict.fromkeys(forms))


def gate_url(gate_base_url: str, name: str) -> str:
    return f"{gate_base_url.rstrip('/')}/{name}.git"


# ----------------------------------------------------------------------------- the agent's config


def git_config_script(repos: Iterable[RepoLike], user: Mapping[str, str | None], gate_base_url: str,
                      *, unless_set: Iterable[str] = ()) -> str:
    """One shell script (run as the agent user) that writes the whole global git config.

    The identity fields named in ``unless_set`` (bot-bottle's default, no ``git-gate.user``) are
    written only where the agent has none: one it set itself survives a resume.
    """
    lines = ["set -e"]
    keep = set(unless_set)
    for field_name in ("name", "email"):
        value = user.get(field_name)
        if not value:
            continue
        key = f"user.{field_name}"
        write = f"git config --global {key} {shlex.quote(value)}"
        lines.append(f"git config --global {key} >/dev/null 2>&1 || {write}" if field_name in keep else write)
    for repo in repos:
        key = shlex.quote(f"url.{gate_url(gate_base_url, repo.name)}.insteadOf")
        # Idempotent: a second run (a resumed bottle) replaces, never duplicates.
        lines.append(f"git config --global --unset-all {key} || true")
        for form in url_forms(repo.url):
            lines.append(f"git config --global --add {key} {shlex.quote(form)}")
    return "\n".join(lines) + "\n"


def configure_git(
    bottle: Bottle, repos: Iterable[RepoLike], user: Mapping[str, str | None], gate_base_url: str = GATE_BASE_URL,
    *, unless_set: Iterable[str] = (),
) -> None:
    """Set the agent's git identity and send every declared repo's real URLs to the gate."""
    result = bottle.exec(git_config_script(list(repos), user, gate_base_url, unless_set=unless_set), user="node")
    if not result.ok:
        detail = (result.stderr or result.stdout).strip()
        raise BotBottleError(f"could not configure git in the bottle: {detail or f'exit status {result.returncode}'}")


# ----------------------------------------------------------------------------- the gate's files


@dataclass(frozen=True)
class GateRepo:
    """A repo as the gate needs it: the manifest's ``GitRepo`` fields (paths and names, no values)."""

    name: str
    url: str
    ssh_key: str | None = None  # a path on the host
    known_hosts: str | None = None  # the pinned host key line(s)
    token_ref: str | None = None  # a host environment variable
    username: str | None = None


@dataclass(frozen=True)
class GateFiles:
    """Files for the sidecar: ``config`` goes to ``config_path``; ``credentials`` (name -> content)
    go to ``credentials_dir`` with mode 600. The contents are secret: never log or print them."""

    config: dict[str, object]
    credentials: dict[str, str] = field(default_factory=dict, repr=False)
    config_path: str = SIDECAR_CONFIG_PATH
    credentials_dir: str = SIDECAR_CREDENTIALS_DIR

    def config_json(self) -> str:
        return json.dumps(self.config, indent=2) + "\n"


def gate_files(
    repos: Iterable[GateRepo],
    user: Mapping[str, str | None],
    *,
    environ: Mapping[str, str] | None = None,
    secrets_file: str | None = GATE_SECRETS_PATH,
    credentials_dir: str = SIDECAR_CREDENTIALS_DIR,
) -> GateFiles:
    environ = os.environ if environ is None else environ
    entries: list[dict[str, object]] = []
    credentials: dict[str, str] = {}
    for repo in repos:
        entry: dict[str, object] = {"name": repo.name, "url": repo.url}
        if repo.ssh_key:
            if not repo.known_hosts:
                raise BotBottleError(f"git-gate repo {repo.name}: an SSH key needs known_hosts (the pinned host key)")
            key_path = Path(repo.ssh_key).expanduser()
            try:
                key = key_path.read_text(encoding="utf-8")
            except OSError as exc:
                raise BotBottleError(f"git-gate repo {repo.name}: cannot read ssh_key {key_path}: {exc.strerror or exc}") from exc
            credentials[f"{repo.name}.key"] = key if key.endswith("\n") else key + "\n"
            credentials[f"{repo.name}.known_hosts"] = _known_hosts(repo)
            entry.update(
                auth="ssh-key",
                ssh_key_file=f"{credentials_dir}/{repo.name}.key",
                known_hosts_file=f"{credentials_dir}/{repo.name}.known_hosts",
            )
        elif repo.token_ref:
            token = environ.get(repo.token_ref)
            if not token:
                raise BotBottleError(f"git-gate repo {repo.name}: host variable {repo.token_ref} is not set")
            credentials[f"{repo.name}.token"] = token.strip() + "\n"
            entry.update(auth="https-token", token_file=f"{credentials_dir}/{repo.name}.token")
            if repo.username:
                entry["username"] = repo.username
        else:
            entry["auth"] = "none"
        entries.append(entry)
    config: dict[str, object] = {"version": 1, "repos": entries}
    identity = {k: v for k, v in (("name", user.get("name")), ("email", user.get("email"))) if v}
    if identity:
        config["user"] = identity
    if secrets_file:
        config["secrets_file"] = secrets_file
    return GateFiles(config=config, credentials=credentials, credentials_dir=credentials_dir)


def _known_hosts(repo: GateRepo) -> str:
    """The manifest's pinned line; a bare ``TYPE KEY`` gets the URL's host in front."""
    assert repo.known_hosts is not None
    lines = []
    host = urls.parse(repo.url).endpoint
    for line in repo.known_hosts.strip().splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith(("ssh-", "ecdsa-", "sk-")) and host is not None:
            name = host[0] if host[1] == 22 else f"[{host[0]}]:{host[1]}"
            line = f"{name} {line}"
        lines.append(line)
    return "\n".join(lines) + "\n"
