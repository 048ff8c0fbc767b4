"""Git remote URLs: the forms git accepts, the endpoint they reach, and how to print them safely.

Shared by the gate (which probes the upstream's endpoint before talking to it) and the host-side
provisioner (which rewrites every spelling of a repo's URL to the gate).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"ssh": 22, "scp": 22, "https": 443, "http": 80, "git": 9418}

# git's own rule for the scp-like form: "[user@]host:path" with no slash before the colon.
_SCP_RE = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>\[[^\]]+\]|[^@/:]+):(?P<path>(?!//).*)$")


@dataclass(frozen=True)
class GitUrl:
    kind: str  # ssh | scp | https | http | git | file | local
    host: str | None = None
    port: int | None = None
    user: str | None = None
    path: str = ""  # as written: scp paths have no leading '/', URL paths do

    @property
    def endpoint(self) -> tuple[str, int] | None:
        """(host, port) a connection goes to, or None for a path on this machine."""
        if self.host is None:
            return None
        return self.host.strip("[]"), self.port or DEFAULT_PORTS.get(self.kind, 22)

    @property
    def repo_path(self) -> str:
        """The path without leading/trailing slashes and without a trailing ``.git``."""
        path = self.path.strip("/")
        return path[: -len(".git")] if path.endswith(".git") else path


def parse(url: str) -> GitUrl:
    if "://" in url:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "file":
            return GitUrl(kind="file", path=parts.path)
        if scheme in ("ssh", "git+ssh", "ssh+git"):
            scheme = "ssh"
        try:
            port = parts.port
        except ValueError:
            port = None
        return GitUrl(kind=scheme, host=parts.hostname, port=port, user=parts.username, path=parts.path)
    match = _SCP_RE.match(url)
    if match and not url.startswith(("/", ".")):
        return GitUrl(kind="scp", host=match["host"], user=match["user"], path=match["path"])
    return GitUrl(kind="local", path=url)


def redact(url: str) -> str:
    """The URL without any password or token in its userinfo, fit for messages and logs."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None and (parts.username is None or parts.scheme not in ("http", "https")):
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    # An https username is often the token itself: drop all userinfo there.
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
