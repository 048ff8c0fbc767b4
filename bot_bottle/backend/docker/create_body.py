"""The API body of a `docker create` a launch runs, read from the very argv it would give the
CLI, so that both ways make the same container (``engine_api`` sends it).

Only the flags a launch uses are read, each as the CLI reads it; an argv with any other flag (or
a form of one not read here) has no body (None), and the launch runs the CLI for it instead.
Nothing secret is in these argvs (a launch hands the sidecar's secrets in on its stdin); an
``--env-file``'s entries go into the body's ``Env`` exactly as the CLI itself would send them.
Bodies are never logged or shown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

# The CLI's sizes (``--memory 512m``): a number and a binary unit.
_SIZE = re.compile(r"(\d+(?:\.\d+)?)([bkmg]?)", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}

# Flags that take a value, as a launch gives them; flags that take none.
_VALUED = frozenset({
    "--name", "--network", "--network-alias", "--volume", "--tmpfs", "--cap-drop", "--cap-add",
    "--security-opt", "--memory", "--pids-limit", "--log-driver", "--log-opt", "--label", "--runtime",
    "--user", "--hostname", "--workdir", "--entrypoint", "--env", "--env-file", "--ulimit", "--cpus",
})
_SWITCHES = frozenset({"--init", "--privileged"})


class _Unread(ValueError):
    """An argv with something this module does not read: the CLI makes that object."""


def _size(text: str) -> int:
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise _Unread(f"size {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _pair(text: str, sep: str = "=") -> tuple[str, str]:
    key, found, value = text.partition(sep)
    if not found or not key:
        raise _Unread(f"{text!r} is not KEY{sep}VALUE")
    return key, value


def _flags(args: Sequence[str], valued: frozenset[str], switches: frozenset[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """(flag, value) pairs in order, and what follows the last flag."""
    pairs: list[tuple[str, str]] = []
    at = 0
    while at < len(args) and args[at].startswith("-"):
        flag = args[at]
        if flag in switches:
            pairs.append((flag, ""))
            at += 1
        elif flag in valued and at + 1 < len(args):
            pairs.append((flag, args[at + 1]))
            at += 2
        else:
            raise _Unread(f"flag {flag!r}")
    return pairs, list(args[at:])


@dataclass
class _Container:
    config: dict[str, object] = field(default_factory=lambda: {
        # What `docker create` (not detached) asks for: the same container either way.
        "AttachStdin": False, "AttachStdout": True, "AttachStderr": True, "Tty": False,
        "OpenStdin": False, "StdinOnce": False, "Env": [], "Labels": {},
    })
    host: dict[str, object] = field(default_factory=lambda: {
        "Binds": [], "CapAdd": [], "CapDrop": [], "SecurityOpt": [], "Ulimits": [], "Devices": [], "Dns": [],
        "DnsOptions": [], "DnsSearch": [], "BlkioWeightDevice": [], "BlkioDeviceReadBps": [],
        "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [],
    })
    network: str | None = None
    aliases: list[str] = field(default_factory=list)
    name: str = ""

    def read(self, flag: str, value: str) -> None:
        config, host = self.config, self.host
        lists = {"--volume": (host, "Binds"), "--cap-add": (host, "CapAdd"), "--cap-drop": (host, "CapDrop"),
                 "--security-opt": (host, "SecurityOpt"), "--env": (config, "Env")}
        if flag in lists:
            where, key = lists[flag]
            where[key].append(value)  # type: ignore[union-attr]
        elif flag == "--name":
            self.name = value
        elif flag == "--env-file":
            self.config["Env"].extend(env_file(value))  # type: ignore[union-attr]
        elif flag == "--network":
            if self.network is not None:
                raise _Unread("a second --network")
            self.network = value
            host["NetworkMode"] = value
        elif flag == "--network-alias":
            self.aliases.append(value)
        elif flag == "--tmpfs":
            path, _, options = value.partition(":")
            host.setdefault("Tmpfs", {})[path] = options  # type: ignore[index]
        elif flag == "--memory":
            host["Memory"] = _size(value)
        elif flag == "--pids-limit":
            host["PidsLimit"] = int(value)
        elif flag == "--cpus":
            host["NanoCpus"] = round(float(value) * 1e9)
        elif flag == "--ulimit":
            name, limits = _pair(value)
            soft, _, hard = limits.partition(":")
            host["Ulimits"].append(  # type: ignore[union-attr]
                {"Name": name, "Soft": int(soft), "Hard": int(hard or soft)})
        elif flag == "--log-driver":
            host.setdefault("LogConfig", {"Config": {}})["Type"] = value  # type: ignore[index]
        elif flag == "--log-opt":
            key, option = _pair(value)
            host.setdefault("LogConfig", {"Config": {}})["Config"][key] = option  # type: ignore[index]
        elif flag == "--label":
            key, label = _pair(value)
            config["Labels"][key] = label  # type: ignore[index]
        else:
            self._plain(flag, value)

    def _plain(self, flag: str, value: str) -> None:
        keys = {"--runtime": (self.host, "Runtime", value), "--user": (self.config, "User", value),
                "--hostname": (self.config, "Hostname", value), "--workdir": (self.config, "WorkingDir", value),
                "--entrypoint": (self.config, "Entrypoint", [value]), "--init": (self.host, "Init", True),
                "--privileged": (self.host, "Privileged", True)}
        where, key, setting = keys[flag]
        where[key] = setting


def _capability(name: str) -> str:
    return "ALL" if name.upper() == "ALL" else name.upper() if name.upper().startswith("CAP_") else f"CAP_{name.upper()}"


def capabilities(add: Sequence[str], drop: Sequence[str]) -> tuple[list[str] | None, list[str] | None]:
    """``--cap-add`` and ``--cap-drop`` as the CLI sends them: each named ``CAP_X`` (``ALL``
    stays), once, sorted; one both added and dropped is added; ALL added is all that is added."""
    added = {_capability(name) for name in add}
    dropped = {_capability(name) for name in drop} - added
    if "ALL" in added:
        added = {"ALL"}
    return sorted(added) or None, sorted(dropped) or None


def env_file(path: str) -> list[str]:
    """The ``KEY=VALUE`` entries of an env file, read as the CLI reads one: leading blanks
    dropped, empty and ``#`` lines skipped, the value taken as it stands."""
    entries = []
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise _Unread(f"env file {path}: {exc}") from None
    for line in lines:
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, found, _ = line.partition("=")
        # A bare KEY (the CLI would take its value from its own environment) or a key with blanks.
        if not found or not key or any(ch.isspace() for ch in key):
            raise _Unread(f"env file {path}: {line.split('=', 1)[0]!r}")
        entries.append(line)
    return entries


def container(args: Sequence[str]) -> tuple[str, dict[str, object]] | None:
    """(name, body) of ``docker create ARGS`` (``args[0]`` is ``create``), or None when the
    argv holds what is not read here."""
    if not args or args[0] != "create":
        return None
    try:
        pairs, rest = _flags(args[1:], _VALUED, _SWITCHES)
        made = _Container()
        for flag, value in pairs:
            made.read(flag, value)
    except (_Unread, ValueError):
        return None
    if not rest or not made.name:
        return None
    config = dict(made.config)
    host = dict(made.host)
    host["CapAdd"], host["CapDrop"] = capabilities(host["CapAdd"], host["CapDrop"])  # type: ignore[arg-type]
    config["Image"] = rest[0]
    config["Cmd"] = rest[1:] or None
    endpoints = {}
    if made.network is not None:
        endpoints[made.network] = {"Aliases": made.aliases} if made.aliases else {}
    elif made.aliases:
        return None  # an alias needs a network to be one on
    body: dict[str, object] = {**config, "HostConfig": host, "NetworkingConfig": {"EndpointsConfig": endpoints}}
    return made.name, body


def _named_create(args: Sequence[str], what: str, valued: frozenset[str],
                  switches: frozenset[str]) -> tuple[str, list[tuple[str, str]]] | None:
    """(name, flags) of ``docker WHAT create [FLAGS] NAME``, or None for any other form."""
    if list(args[:2]) != [what, "create"]:
        return None
    try:
        pairs, rest = _flags(args[2:], valued, switches)
        labels = [_pair(value) for flag, value in pairs if flag == "--label"]
    except _Unread:
        return None
    if len(rest) != 1 or not rest[0] or len({key for key, _ in labels}) != len(labels):
        return None  # a repeated label: the CLI keeps the last, not worth reading here
    return rest[0], pairs


def network(args: Sequence[str]) -> tuple[str, dict[str, object]] | None:
    """(name, body) of ``docker network create [--driver D] [--internal] [--label K=V]... NAME``
    as the CLI sends it (the same defaults: the default IPAM, a refused duplicate name), or None."""
    made = _named_create(args, "network", frozenset({"--driver", "--label"}), frozenset({"--internal"}))
    if made is None:
        return None
    name, pairs = made
    drivers = [value for flag, value in pairs if flag == "--driver"]
    if len(drivers) > 1:
        return None
    body: dict[str, object] = {
        "Name": name, "CheckDuplicate": True, "Driver": drivers[0] if drivers else "bridge", "Scope": "",
        "IPAM": {"Driver": "default", "Options": {}, "Config": []},
        "Internal": any(flag == "--internal" for flag, _ in pairs),
        "Attachable": False, "Ingress": False, "ConfigOnly": False, "ConfigFrom": None, "Options": {},
        "Labels": dict(_pair(value) for flag, value in pairs if flag == "--label"),
    }
    return name, body


def volume(args: Sequence[str]) -> tuple[str, dict[str, object]] | None:
    """(name, body) of ``docker volume create [--label K=V]... NAME`` as the CLI sends it, or None."""
    made = _named_create(args, "volume", frozenset({"--label"}), frozenset())
    if made is None:
        return None
    name, pairs = made
    return name, {"Driver": "local", "Labels": dict(_pair(value) for _, value in pairs), "Name": name}
