"""Talking to a repo's real remote: credentials, fail-fast reachability, fetch and push.

Credentials never go on an argv and are never logged:
- SSH: ``GIT_SSH_COMMAND`` names the key *file* and a pinned known-hosts *file*; batch mode (no
  prompt can hang), strict host key checking (an unknown host key refuses), a connect timeout.
- HTTPS: the ``Authorization`` header is handed to git as ``http.extraHeader`` through the
  ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` environment of the one child
  that needs it, read from the token file at each use.
- Redirects: never followed (``http.followRedirects`` is forced off), so the token goes only to
  the URL's own host.
- TLS: always verified, against the sidecar's system store (``GIT_SSL_CAINFO`` names it, and
  ``http.sslVerify`` is forced on for every child). The store holds the public CAs and whatever
  the launcher added for test or demo upstreams; nothing here can turn verification off, so a
  certificate from an unknown CA or for another name fails closed.
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
import ssl
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.sidecar.git_gate import proc, urls
from bot_bottle.sidecar.git_gate.config import RepoConfig

# A transfer that sends (almost) nothing for this long is cut: a hung upstream fails in seconds.
# Fetches ask for progress, which a working server sends every second or so even while it is
# still preparing a large pack, so only a dead one goes quiet this long.
LOW_SPEED_SECONDS = 7
TRANSFER_TIMEOUT = 1800.0  # a backstop for one whole fetch or push (killed with its helpers)
REDACTED = "[redacted]"
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


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
    if Path(SYSTEM_CA_BUNDLE).is_file():
        env["GIT_SSL_CAINFO"] = SYSTEM_CA_BUNDLE
    if repo.auth == "ssh-key":
        assert repo.ssh_key_file is not None and repo.known_hosts_file is not None
        _check_private(repo.ssh_key_file, f"{repo.name}: ssh key")
        if not repo.known_hosts_file.is_file():
            raise UpstreamError(f"{repo.name}: pinned known_hosts file {repo.known_hosts_file} is missing")
        env["GIT_SSH_COMMAND"] = ssh_command(repo.ssh_key_file, repo.known_hosts_file, timeout)
        env["GIT_SSH_VARIANT"] = "ssh"
        return Credentials(env=_with_config(env, []))
    # Whatever ssh the URL may need without a key of ours: still batch mode and pinned nothing.
    env["GIT_SSH_COMMAND"] = f"ssh -F /dev/null -o BatchMode=yes -o ConnectTimeout={timeout} -o StrictHostKeyChecking=yes"
    if repo.auth == "https-token":
        assert repo.token_file is not None
        _check_private(repo.token_file, f"{repo.name}: token")
        token = repo.token_file.read_text(encoding="utf-8").strip()
        if not token:
            raise UpstreamError(f"{repo.name}: the token file is empty")
        basic = base64.b64encode(f"{repo.username}:{token}".encode()).decode("ascii")
        header = ("http.extraHeader", f"Authorization: Basic {basic}")
        return Credentials(env=_with_config(env, [header]), secrets=(token, basic))
    return Credentials(env=_with_config(env, []))


def _with_config(env: dict[str, str], settings: list[tuple[str, str]]) -> dict[str, str]:
    """Hand git config to the child through its environment (never its argv), TLS checks forced
    on and HTTP redirects never followed: a redirect would carry the ``Authorization`` header (and
    the fetch) to wherever the upstream, or whoever answers in its name, points."""
    settings = [*settings, ("http.sslVerify", "true"), ("http.followRedirects", "false")]
    env["GIT_CONFIG_COUNT"] = str(len(settings))
    for i, (key, value) in enumerate(settings):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


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
    """Raise ``UpstreamError`` unless the URL's endpoint answers within ``timeout``.

    A TCP connect for every network URL; for HTTPS also a verified TLS handshake, because git
    bounds neither (a server that accepts and then says nothing would hold a fetch for minutes),
    and because Python names a refused certificate more clearly than curl does. git verifies the
    certificate again on its own connection. Name resolution is bounded too: it runs in a helper
    thread that is abandoned when late.
    """
    parsed = urls.parse(url)
    endpoint = parsed.endpoint
    if endpoint is None:
        return
    host, port = endpoint
    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout) as sock:
                if parsed.kind == "https":
                    with tls_context().wrap_socket(sock, server_hostname=host):
                        pass
                outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported to the waiting thread
            outcome.append(exc)

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout * (2 if parsed.kind == "https" else 1) + 0.5)
    if not outcome:
        raise UpstreamError(f"no answer from {host}:{port} within {timeout:g} s")
    exc = outcome[0]
    if isinstance(exc, ssl.SSLCertVerificationError):
        raise UpstreamError(
            f"the upstream's TLS certificate is not trusted (not issued by a CA the sidecar trusts, or not for "
            f"this host name), so the gate did not talk to it: {host}:{port}: {exc.verify_message or exc.reason}"
        )
    if isinstance(exc, ssl.SSLError):
        raise UpstreamError(f"TLS handshake with {host}:{port} failed: {exc.reason or exc}")
    if exc is not None:
        raise UpstreamError(f"cannot connect to {host}:{port}: {_describe(exc)}")


def tls_context() -> ssl.SSLContext:
    """Verification on, hostnames checked, against the sidecar's system store (as git's is)."""
    if Path(SYSTEM_CA_BUNDLE).is_file():
        return ssl.create_default_context(cafile=SYSTEM_CA_BUNDLE)
    return ssl.create_default_context()


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
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """git against the upstream, killed with its helpers (remote transport, ssh) when it runs
    past ``timeout`` (``TRANSFER_TIMEOUT``): ``UpstreamError``."""
    timeout = TRANSFER_TIMEOUT if timeout is None else timeout
    env = {**base_env, **creds.env}
    try:
        result = proc.run(["git", *args], cwd=cwd, env=env, timeout=timeout)
    except proc.TimedOut as exc:
        raise UpstreamError(f"git {args[0]} gave no result within {exc.seconds:g} s") from exc
    return subprocess.CompletedProcess(
        result.args, result.returncode, proc.as_text(result.stdout), proc.as_text(result.stderr),
    )


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
    if _TLS_FAILURE.search(text):
        text = ("the upstream's TLS certificate is not trusted (not issued by a CA the sidecar trusts, "
                "or not for this host name), so the gate did not talk to it: " + text)
    return creds.scrub(text)


# What git (with libcurl on OpenSSL or GnuTLS) says when it refuses an upstream's certificate.
_TLS_FAILURE = re.compile(
    r"certificate (verification|problem|subject name|is not trusted|has expired)|SSL certificate|"
    r"no alternative certificate subject name|server certificate verification failed|self[- ]signed",
    re.I,
)
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
