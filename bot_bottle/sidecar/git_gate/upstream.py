"""Talking to a repo's real remote: credentials, fail-fast reachability, fetch and push.

Credentials never go on an argv and are never logged:
- SSH: ``GIT_SSH_COMMAND`` names the key *file* and a pinned known-hosts *file*; batch mode (no
  prompt can hang), strict host key checking (an unknown host key refuses), a connect timeout.
- HTTPS: the ``Authorization`` header is handed to git as ``http.extraHeader`` through the
  ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` environment of the one child
  that needs it, read from the token file at each use.
Every text that leaves this module (error messages, the upstream's answer to a push) goes
through ``Credentials.scrub`` first, as a second line of defence.

A dead upstream must fail in seconds: before any git command the endpoint is probed with a plain
TCP connect bounded by ``connect_timeout`` (git's HTTP transport has no connect timeout of its
own), and transfers that stall are cut by ssh keep-alives or curl's low-speed limit.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import socket
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.sidecar.git_gate import urls
from bot_bottle.sidecar.git_gate.config import RepoConfig

# A transfer that sends (almost) nothing for this long is cut: a hung upstream fails in seconds.
# Fetches ask for progress, which a working server sends every second or so even while it is
# still preparing a large pack, so only a dead one goes quiet this long.
LOW_SPEED_SECONDS = 7
TRANSFER_TIMEOUT = 1800.0  # a backstop for one whole fetch or push
REDACTED = "[redacted]"


class UpstreamError(Exception):
    """The upstream could not be reached or refused; the message is safe to show and log."""


@dataclass(frozen=True)
class Credentials:
    """One repo's upstream identity, resolved into what a git child process needs."""

    env: Mapping[str, str]
    secrets: tuple[str, ...] = ()  # values that must never appear in any output

    def scrub(self, text: str) -> str:
        for value in self.secrets:
            if value:
                text = text.replace(value, REDACTED)
        return text


def credentials(repo: RepoConfig, connect_timeout: float) -> Credentials:
    timeout = max(1, int(round(connect_timeout)))
    env: dict[str, str] = {
        "GIT_TERMINAL_PROMPT": "0",  # never wait for a password nobody can type
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_HTTP_LOW_SPEED_LIMIT": "1",
        "GIT_HTTP_LOW_SPEED_TIME": str(LOW_SPEED_SECONDS),
    }
    if repo.auth == "ssh-key":
        assert repo.ssh_key_file is not None and repo.known_hosts_file is not None
        _check_private(repo.ssh_key_file, f"{repo.name}: ssh key")
        if not repo.known_hosts_file.is_file():
            raise UpstreamError(f"{repo.name}: pinned known_hosts file {repo.known_hosts_file} is missing")
        env["GIT_SSH_COMMAND"] = ssh_command(repo.ssh_key_file, repo.known_hosts_file, timeout)
        env["GIT_SSH_VARIANT"] = "ssh"
        return Credentials(env=env)
    # Whatever ssh the URL may need without a key of ours: still batch mode and pinned nothing.
    env["GIT_SSH_COMMAND"] = f"ssh -F /dev/null -o BatchMode=yes -o ConnectTimeout={timeout} -o StrictHostKeyChecking=yes"
    if repo.auth == "https-token":
        assert repo.token_file is not None
        _check_private(repo.token_file, f"{repo.name}: token")
        token = repo.token_file.read_text(encoding="utf-8").strip()
        if not token:
            raise UpstreamError(f"{repo.name}: the token file is empty")
        basic = base64.b64encode(f"{repo.username}:{token}".encode()).decode("ascii")
        env["GIT_CONFIG_COUNT"] = "1"
        env["GIT_CONFIG_KEY_0"] = "http.extraHeader"
        env["GIT_CONFIG_VALUE_0"] = f"Authorization: Basic {basic}"
        return Credentials(env=env, secrets=(token, basic))
    return Credentials(env=env)


def ssh_command(key: Path, known_hosts: Path, connect_timeout: int) -> str:
    return " ".join(
        [
            "ssh", "-F", "/dev/null",  # no user or system ssh config can loosen anything below
            "-i", shlex.quote(str(key)),
            "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={connect_timeout}",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={shlex.quote(str(known_hosts))}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "ServerAliveInterval=3",
            "-o", "ServerAliveCountMax=2",
        ]
    )


def _check_private(path: Path, what: str) -> None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise UpstreamError(f"{what} file {path} is missing") from exc
    if mode & 0o077:
        # ssh refuses such a key anyway; a token must not be readable by anyone else either.
        raise UpstreamError(f"{what} file {path} must be mode 600 (it is {mode & 0o777:o})")


def probe(url: str, timeout: float) -> None:
    """Raise ``UpstreamError`` unless a TCP connection to the URL's endpoint opens within ``timeout``.

    Name resolution is bounded too: it runs in a helper thread that is abandoned when late.
    """
    endpoint = urls.parse(url).endpoint
    if endpoint is None:
        return
    host, port = endpoint
    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported to the waiting thread
            outcome.append(exc)

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    if not outcome:
        raise UpstreamError(f"no connection to {host}:{port} within {timeout:g} s")
    if outcome[0] is not None:
        raise UpstreamError(f"cannot connect to {host}:{port}: {_describe(outcome[0])}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return f"name not resolved ({exc.strerror or exc})"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def run_git(
    args: Sequence[str],
    *,
    creds: Credentials,
    base_env: Mapping[str, str],
    cwd: Path | None = None,
    timeout: float = TRANSFER_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    env = {**base_env, **creds.env}
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, errors="replace",
            timeout=timeout, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise UpstreamError(f"git {args[0]} gave no result within {timeout:g} s") from exc


def failure_text(result: subprocess.CompletedProcess[str], creds: Credentials) -> str:
    """The useful part of a failed git command's output, scrubbed, on one line per message."""
    useful = []
    for line in (result.stderr or result.stdout or "").splitlines():
        line = line.strip()
        if line.startswith(("fatal: ", "error: ")):
            line = line.split(": ", 1)[1]
        if line and not line.startswith(_BOILERPLATE) and not _PROGRESS.match(line):
            useful.append(line)
    text = "; ".join(useful[-3:]) or f"git exited with status {result.returncode}"
    return creds.scrub(text)


_PROGRESS = re.compile(
    r"^(remote: )?(Enumerating|Counting|Compressing|Receiving|Resolving|Total|Unpacking|Writing|Delta) ", re.I
)
# Lines git adds to every transport failure; they say nothing about this one.
_BOILERPLATE = (
    "hint:",
    "Warning: Permanently added",
    "Could not read from remote repository",
    "Please make sure you have the correct access rights",
    "and the repository exists",
)


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A small, predictable environment for git children (no inherited GIT_* or proxies)."""
    keep = ("PATH", "HOME", "LANG", "TZ", "PYTHONPATH")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("HOME", "/root")
    env["LC_ALL"] = "C"  # git's messages are parsed and shown as they are: one language
    if extra:
        env.update(extra)
    return env
