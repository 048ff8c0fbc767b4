"""The thinnest possible edge to the ``smolvm`` CLI: one function per subcommand.

Every call goes through ``subprocess.run`` here. The argv differs between smolvm series and the
functions hide that behind the same keyword arguments:

- 0.8 (what the original design was written against) takes the machine name positionally on
  ``create`` and ``delete`` and needs ``--net`` spelled out next to ``--allow-cidr``;
- 1.x (what the ``smolmachines`` wheel ships) names the machine with ``--name`` everywhere and
  rejects a bare positional; ``--allow-cidr`` implies the network; ``create`` takes a
  ``docker save`` archive or a rootfs folder with ``--image`` and a pack with ``--from``;
  ``exec`` has ``-u USER``.

The series is read once from the installed CLI's ``-V`` (cached). Secret values never belong on
an argv built here: callers pass only non-secret env; secrets travel in files.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot_bottle.errors import BotBottleError

# Keep every machine, image cache and database under one folder (1.x, Linux): tests and users
# who want bot-bottle's machines apart from their own set this.
STATE_DIR_ENV = "BOT_BOTTLE_SMOLVM_STATE_DIR"

# The wheel's binary prints this on every run when it is not a packed executable; it is noise.
_NOTE_PREFIX = "note: no packed assets found"
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PACK_SUFFIXES = (".smolmachine", ".smolcheckpoint")

# How long a subcommand that does not run guest code may take before we call it hung.
_QUICK = 120.0
_SLOW = 3600.0  # pack create pulls and flattens a whole image


class SmolvmError(BotBottleError):
    """A smolvm subcommand failed: ``returncode`` and ``stderr`` are the CLI's own."""

    def __init__(self, returncode: int, stderr: str, *, what: str = "smolvm", hint: str | None = None) -> None:
        self.returncode = returncode
        self.stderr = stderr
        detail = _last_line(stderr)
        super().__init__(f"{what} failed (exit {returncode})" + (f": {detail}" if detail else ""), hint=hint)


@dataclass(frozen=True)
class SmolvmRunResult:
    """What a command run inside the VM returned, whatever its exit code."""

    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Installed:
    """The smolvm CLI this process drives: its path, the env it needs, its version."""

    path: str
    env: Mapping[str, str] = field(default_factory=dict)
    version: str = "unknown"

    @property
    def version_tuple(self) -> tuple[int, ...]:
        numbers = re.findall(r"\d+", self.version)
        # An unreadable version is taken for the current series: that is what pip installs.
        return tuple(int(n) for n in numbers[:3]) if numbers else (1,)

    @property
    def legacy(self) -> bool:
        """The 0.x series: positional names, explicit --net, no exec user flag, packs only."""
        return self.version_tuple[0] == 0

    @property
    def reads_archives(self) -> bool:
        """Whether ``create``/``pack create`` take a ``docker save`` archive directly."""
        return not self.legacy


_installed: Installed | None = None


def installed() -> Installed:
    """The CLI on PATH, else the one in the ``smolmachines`` wheel; probed once per process."""
    global _installed
    if _installed is None:
        from bot_bottle import doctor

        found = doctor.find_smolvm()
        # Not found: "smolvm" by name all the same, so every call still goes through
        # subprocess.run (the probe below says clearly when nothing by that name runs).
        cli = found or doctor.SmolvmCli(Path("smolvm"), {}, "assumed")
        version, error = doctor.smolvm_version(cli)
        if version is None:
            if found is None:
                raise SmolvmError(
                    127,
                    error,
                    what="finding the smolvm CLI",
                    hint="install it with `pip install 'bot-bottle[smolmachines]'` (the wheel ships it)",
                )
            raise SmolvmError(1, error, what=f"running {cli.path} -V")
        _installed = Installed(str(cli.path), dict(cli.env), version)
    return _installed


def use(cli: Installed | None) -> None:
    """Drive this CLI from now on (``None`` probes again on next use). For tests and callers
    that already probed the host."""
    global _installed
    _installed = cli


def is_available() -> bool:
    """A smolvm CLI is installed: on PATH, or inside an installed ``smolmachines`` wheel."""
    from bot_bottle import doctor

    return doctor.find_smolvm() is not None


# -- argv builders (pure) ---------------------------------------------------------------------


def _base(cli: Installed) -> list[str]:
    argv = [cli.path]
    state_dir = os.environ.get(STATE_DIR_ENV)
    if state_dir and not cli.legacy:
        argv += ["--state-dir", state_dir]
    return argv


def _env_flags(env: Mapping[str, str]) -> list[str]:
    flags: list[str] = []
    for key, value in env.items():
        if not _ENV_KEY.match(key):
            raise BotBottleError(f"env {key!r}: not a valid variable name for the guest")
        if "\n" in value or "\r" in value or "\0" in value:
            # Never echo the value: it may be a secret handed here by mistake.
            raise BotBottleError(f"env {key}: multi-line values cannot be passed to a micro-VM")
        flags += ["-e", f"{key}={value}"]
    return flags


def _local_source(source: str | os.PathLike[str]) -> str:
    """Local images must start with ``/`` (or ``./``) or smolvm takes them for registry refs."""
    text = os.fspath(source)
    if text.startswith(("/", "./", "../")) or Path(text).exists():
        return str(Path(text).resolve())
    return text


def pack_create_argv(cli: Installed, image: str, out_path: str | os.PathLike[str]) -> list[str]:
    return [*_base(cli), "pack", "create", "--image", _local_source(image), "-o", os.fspath(out_path)]


def pack_from_vm_argv(cli: Installed, name: str, out_path: str | os.PathLike[str]) -> list[str]:
    return [*_base(cli), "pack", "create", "--from-vm", name, "-o", os.fspath(out_path)]


def machine_create_argv(
    cli: Installed,
    name: str,
    *,
    from_path: str | os.PathLike[str] | None = None,
    allow_cidrs: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    command: Sequence[str] = (),
    memory_mib: int | None = None,
) -> list[str]:
    env_flags = _env_flags(env or {})
    cidr_flags: list[str] = []
    for cidr in allow_cidrs:
        cidr_flags += ["--allow-cidr", cidr]
    if cli.legacy:
        source: list[str] = []
        if from_path is not None:
            if not os.fspath(from_path).endswith(_PACK_SUFFIXES):
                raise BotBottleError(
                    f"smolvm {cli.version} creates machines only from .smolmachine packs, not {os.fspath(from_path)}"
                )
            source = ["--from", os.fspath(from_path)]
        # 0.8 does not turn the network on for --allow-cidr (not even with --from): say it, and
        # only then, so a machine without allowed addresses has no network at all.
        net = ["--net", *cidr_flags] if allow_cidrs else []
        return [*_base(cli), "machine", "create", *source, *net, *env_flags, name]
    argv = [*_base(cli), "machine", "create", "--name", name]
    if from_path is not None:
        path = os.fspath(from_path)
        if path.endswith(_PACK_SUFFIXES):
            argv += ["--from", str(Path(path).resolve())]
        else:
            argv += ["--image", _local_source(path)]
    argv += cidr_flags  # implies the network in 1.x; nothing else opens it
    argv += env_flags
    for key, value in sorted((labels or {}).items()):
        argv += ["--label", f"{key}={value}"]
    if memory_mib is not None:
        argv += ["--mem", str(int(memory_mib))]
    if command:
        argv += ["--", *command]
    return argv


def machine_start_argv(cli: Installed, name: str) -> list[str]:
    return [*_base(cli), "machine", "start", "--name", name]


def machine_stop_argv(cli: Installed, name: str) -> list[str]:
    return [*_base(cli), "machine", "stop", "--name", name]


def machine_delete_argv(cli: Installed, name: str) -> list[str]:
    # Forced: teardown must never wait on a confirmation prompt.
    if cli.legacy:
        return [*_base(cli), "machine", "delete", "-f", name]
    return [*_base(cli), "machine", "delete", "--name", name, "-f"]


def _duration(seconds: float) -> str:
    return f"{max(1, math.ceil(seconds))}s"


def machine_exec_argv(
    cli: Installed,
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    timeout: float | None = None,
    user: str | None = None,
    interactive: bool = False,
    tty: bool = False,
) -> list[str]:
    command = list(argv)
    out = [*_base(cli), "machine", "exec", "--name", name]
    if user is not None:
        if cli.legacy:
            # 0.8 has no user flag and runs commands as root: switch inside the guest.
            command = ["runuser", "-u", user, "--", *command]
        else:
            out += ["-u", user]
    if interactive:
        out.append("-i")
    if tty:
        out.append("-t")
    out += _env_flags(env or {})
    if workdir is not None:
        out += ["-w", workdir]
    if timeout is not None:
        out += ["--timeout", _duration(timeout)]
    # `--` keeps the CLI's flag parser off the command and its arguments.
    return [*out, "--", *command]


def machine_cp_argv(cli: Installed, src: str, dst: str) -> list[str]:
    return [*_base(cli), "machine", "cp", src, dst]


def machine_ls_argv(cli: Installed) -> list[str]:
    return [*_base(cli), "machine", "ls", "--json"]


# -- running ----------------------------------------------------------------------------------


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _clean(stderr: str | None) -> str:
    return "\n".join(line for line in (stderr or "").splitlines() if not line.startswith(_NOTE_PREFIX))


def process_env(cli: Installed | None = None) -> dict[str, str]:
    """The environment the CLI runs with: ours plus what the wheel's binary needs to find libkrun."""
    cli = cli or installed()
    return {**os.environ, **dict(cli.env)}


def _run(argv: list[str], cli: Installed, *, what: str, timeout: float) -> SmolvmRunResult:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=process_env(cli))
    except subprocess.TimeoutExpired:
        raise SmolvmError(124, f"no answer within {timeout:g} s", what=what) from None
    except OSError as exc:
        raise SmolvmError(127, exc.strerror or str(exc), what=what) from None
    stderr = _clean(proc.stderr)
    if proc.returncode != 0:
        raise SmolvmError(proc.returncode, stderr, what=what)
    return SmolvmRunResult(proc.returncode, proc.stdout or "", stderr)


def pack_create(image: str, out_path: str | os.PathLike[str]) -> Path:
    """Pack ``image`` (a registry ref or, on 1.x, a local archive) into ``out_path``."""
    cli = installed()
    _run(pack_create_argv(cli, image, out_path), cli, what="smolvm pack create", timeout=_SLOW)
    return Path(out_path)


def pack_from_vm(name: str, out_path: str | os.PathLike[str]) -> Path:
    """Pack the stopped machine ``name`` (its disk as it is now) into ``out_path``."""
    cli = installed()
    _run(pack_from_vm_argv(cli, name, out_path), cli, what=f"smolvm pack create --from-vm {name}", timeout=_SLOW)
    return Path(out_path)


def machine_create(
    name: str,
    *,
    from_path: str | os.PathLike[str] | None = None,
    allow_cidrs: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    command: Sequence[str] = (),
    memory_mib: int | None = None,
) -> None:
    """Create (not start) a machine. ``env`` goes on the argv: never put a secret in it.

    ``labels``, ``command`` and ``memory_mib`` are 1.x features and are left out on 0.8.
    """
    cli = installed()
    argv = machine_create_argv(
        cli, name, from_path=from_path, allow_cidrs=allow_cidrs, env=env,
        labels=labels, command=command, memory_mib=memory_mib,
    )
    _run(argv, cli, what=f"smolvm machine create {name}", timeout=_SLOW)


def machine_start(name: str) -> None:
    cli = installed()
    _run(machine_start_argv(cli, name), cli, what=f"smolvm machine start {name}", timeout=_SLOW)


def machine_stop(name: str) -> None:
    cli = installed()
    _run(machine_stop_argv(cli, name), cli, what=f"smolvm machine stop {name}", timeout=_QUICK)


def machine_delete(name: str) -> None:
    cli = installed()
    _run(machine_delete_argv(cli, name), cli, what=f"smolvm machine delete {name}", timeout=_QUICK)


def machine_exec(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    timeout: float | None = None,
    user: str | None = None,
) -> SmolvmRunResult:
    """Run ``argv`` in the machine; the in-VM exit code is returned, never raised."""
    cli = installed()
    full = machine_exec_argv(cli, name, argv, env=env, workdir=workdir, timeout=timeout, user=user)
    # The CLI enforces --timeout itself; ours is a backstop for a CLI that hangs.
    backstop = None if timeout is None else timeout + 30
    try:
        proc = subprocess.run(full, capture_output=True, text=True, timeout=backstop, env=process_env(cli))
    except subprocess.TimeoutExpired:
        return SmolvmRunResult(124, "", f"smolvm machine exec {name}: no answer within {backstop:g} s")
    except OSError as exc:
        raise SmolvmError(127, exc.strerror or str(exc), what=f"smolvm machine exec {name}") from None
    return SmolvmRunResult(proc.returncode, proc.stdout or "", _clean(proc.stderr))


def machine_cp(src: str, dst: str) -> None:
    """Copy between host and machine (``NAME:/path`` names the guest side). Empty paths: no-op."""
    if not src or not dst:
        return
    cli = installed()
    _run(machine_cp_argv(cli, src, dst), cli, what="smolvm machine cp", timeout=_SLOW)


def machine_ls() -> list[dict[str, Any]]:
    """Every machine smolvm knows, as ``machine ls --json`` describes it."""
    cli = installed()
    result = _run(machine_ls_argv(cli), cli, what="smolvm machine ls", timeout=_QUICK)
    try:
        data = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        raise SmolvmError(0, "machine ls printed something that is not JSON", what="smolvm machine ls") from None
    return [m for m in data if isinstance(m, dict)] if isinstance(data, list) else []


def wait_exec_ready(
    name: str,
    timeout: float = 60.0,
    *,
    interval: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll ``true`` in the machine until it succeeds; raise ``SmolvmError`` when time is up.

    Raises instead of exiting: the launcher must tear down what it created before reporting.
    """
    deadline = clock() + timeout
    while True:
        remaining = deadline - clock()
        result = machine_exec(name, ["true"], timeout=max(1.0, min(10.0, remaining)))
        if result.returncode == 0:
            return
        if clock() >= deadline:
            raise SmolvmError(
                result.returncode,
                result.stderr,
                what=f"machine {name} is not ready: `exec true` did not succeed within {timeout:g} s",
            )
        sleep(interval)
