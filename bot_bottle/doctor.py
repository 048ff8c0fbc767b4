"""What this host can run: probes for the Docker engine, gVisor, micro-VMs and the smolvm CLI.

Each probe takes its inputs as arguments (a ``docker info`` dict, a filesystem root, a platform
tuple, a PATH lookup) so unit tests can describe any host without touching the real one. The
``gather`` function feeds them the real host.

Micro-VM capability is judged from the host itself, never from a library's own availability
check: on a PVM nested-virtualisation host ``/dev/kvm`` exists and libraries say yes, yet every
libkrun, Firecracker or QEMU-KVM guest crashes or hangs at boot.
"""

from __future__ import annotations

import json
import os
import platform as _platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.launch import LaunchOptions, agent_task_limit, gvisor_fence, host_pid_max

DOCKER = "Docker engine"
GVISOR = "gVisor"
OPEN_FILES = "open files (dockerd)"
MICROVM = "micro-VM"
SMOLVM = "smolvm"

# A version query must answer fast; a wedged binary must not hang `bot-bottle doctor`.
_SMOLVM_TIMEOUT = 5.0
_DOCKER_TIMEOUT = 10.0


@dataclass(frozen=True)
class Check:
    """One fact about the host. ``detail`` says what was found; ``reason`` says why not."""

    name: str
    ok: bool
    detail: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Report:
    checks: tuple[Check, ...]
    backends: tuple[Check, ...]

    @property
    def any_backend(self) -> bool:
        return any(b.ok for b in self.backends)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.any_backend,
            "checks": [asdict(c) for c in self.checks],
            "backends": [asdict(b) for b in self.backends],
        }


# --- Docker engine ---------------------------------------------------------------------------


def probe_docker_info(timeout: float = _DOCKER_TIMEOUT) -> tuple[dict[str, Any] | None, str]:
    """The real engine's ``docker info`` as a dict, or None and the engine's own words why not."""
    try:
        result = engine.run(["info", "--format", "{{json .}}"], timeout=timeout, check=False)
    except engine.DockerError as exc:
        return None, str(exc)
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        return None, lines[-1] if lines else f"`docker info` exited with {result.returncode}"
    try:
        info = json.loads(result.stdout)
    except json.JSONDecodeError:
        return None, "`docker info` printed something that is not JSON"
    if not isinstance(info, dict) or not info.get("ServerVersion"):
        # A CLI whose daemon is down can still print client-side JSON with exit code 0.
        errors = info.get("ServerErrors") if isinstance(info, dict) else None
        return None, "; ".join(errors) if errors else "no Docker engine answers"
    return info, ""


def check_docker(info: Mapping[str, Any] | None, error: str = "") -> Check:
    if info is None:
        return Check(DOCKER, False, reason=error or "no Docker engine answers")
    parts = [f"Docker Engine {info.get('ServerVersion', '?')}"]
    where = ", ".join(str(info[k]) for k in ("OperatingSystem", "Architecture") if info.get(k))
    if where:
        parts.append(f"on {where}")
    return Check(DOCKER, True, detail=" ".join(parts))


def check_gvisor(info: Mapping[str, Any] | None, pid_max: int | None = None) -> Check:
    if info is None:
        return Check(GVISOR, False, reason="no Docker engine answers")
    runtimes = info.get("Runtimes") or {}
    if "runsc" not in runtimes:
        return Check(
            GVISOR,
            False,
            reason="runsc is not registered with the Docker engine; containers use "
            f"{info.get('DefaultRuntime') or 'runc'} (optional)",
        )
    entry = runtimes.get("runsc") or {}
    path = entry.get("path") if isinstance(entry, Mapping) else None
    # Debian's runsc (2022) starts containers only with --network none. The agent container
    # has no network at all, so that is enough for it; the sidecar keeps runc.
    detail = "runsc registered" + (f" ({path})" if path and path != "runsc" else "")
    detail += "; used for the agent container, which runs with --network none"
    detail += "; " + _gvisor_limits(entry if isinstance(entry, Mapping) else {}, pid_max)
    return Check(GVISOR, True, detail=detail)


def _gvisor_limits(entry: Mapping[str, Any], pid_max: int | None) -> str:
    """What a gVisor agent may run, and the host tasks its sandbox may hold (``launch.agent_limits``)."""
    options = LaunchOptions()
    text = (f"the agent may run {agent_task_limit(options, gvisor=True, pid_max=pid_max)} tasks in it, "
            f"the sandbox {gvisor_fence(options, pid_max)} host tasks")
    args = entry.get("runtimeArgs") or []
    platform = next((str(a).split("=", 1)[1] for a in args if str(a).startswith("--platform=")), "ptrace")
    if platform == "ptrace":
        # docs/security.md: the ptrace platform's threads stay grown; a sandbox at its fence exits.
        text += " (ptrace platform: the sandbox's threads grow with use and are not given back)"
    return text


# --- dockerd's open-file limit ---------------------------------------------------------------

# gVisor's file proxy (runsc's gofer, started under the engine, so under dockerd's limit) holds a
# host file descriptor for every file the agent has open or hard-linked; at the limit the bottle
# stops working. runsc raises its soft limit to the hard one, so the hard limit is what counts.
# Enough: systemd's default hard limit (DefaultLimitNOFILE since systemd 240); the advice asks for
# what docker.service's LimitNOFILE=infinity gives on most hosts.
NOFILE_ENOUGH = 524288
NOFILE_ADVISED = 1048576
DOCKERD_PID_FILE = Path("/var/run/docker.pid")
RAISE_NOFILE = (
    f"raise it: under systemd, a drop-in /etc/systemd/system/docker.service.d/nofile.conf with "
    f"\"[Service]\" and \"LimitNOFILE={NOFILE_ADVISED}\", then `systemctl daemon-reload && systemctl restart docker` "
    f"(the same in containerd.service when containerd runs as its own service); otherwise "
    f"`ulimit -n {NOFILE_ADVISED}` in the shell that starts dockerd"
)


@dataclass(frozen=True)
class FileLimit:
    """dockerd's RLIMIT_NOFILE; None stands for unlimited."""

    pid: int
    soft: int | None
    hard: int | None


def parse_nofile(limits: str) -> tuple[int | None, int | None] | None:
    """(soft, hard) from the text of ``/proc/<pid>/limits``; None when it has no such line."""
    for line in limits.splitlines():
        if line.startswith("Max open files"):
            values = line[len("Max open files"):].split()
            if len(values) >= 2 and all(v == "unlimited" or v.isdigit() for v in values[:2]):
                soft, hard = (None if v == "unlimited" else int(v) for v in values[:2])
                return soft, hard
    return None


def _comm(proc_root: Path, pid: int) -> str:
    try:
        return (proc_root / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""


def find_dockerd(proc_root: Path = Path("/proc"), pid_file: Path = DOCKERD_PID_FILE) -> tuple[int | None, str]:
    """The local dockerd's pid, or None and why it is not known."""
    try:
        pids = sorted(int(entry.name) for entry in proc_root.iterdir() if entry.name.isdigit())
    except OSError as exc:
        return None, f"cannot list {proc_root} ({exc.strerror or exc})"
    found = [pid for pid in pids if _comm(proc_root, pid) == "dockerd"]
    if len(found) == 1:
        return found[0], ""
    if not found:
        return None, "no dockerd process is visible on this host (an engine in a VM or elsewhere)"
    try:
        named = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        named = None
    if named in found:
        return named, ""
    return None, f"{len(found)} dockerd processes run here and {pid_file} names none of them"


def dockerd_file_limit(proc_root: Path = Path("/proc"),
                       pid_file: Path = DOCKERD_PID_FILE) -> tuple[FileLimit | None, str]:
    """dockerd's open-file limit, or None and why it could not be read."""
    pid, why = find_dockerd(proc_root, pid_file)
    if pid is None:
        return None, why
    path = proc_root / str(pid) / "limits"
    try:
        text = path.read_text()
    except OSError as exc:
        return None, f"cannot read {path} ({exc.strerror or exc})"
    limits = parse_nofile(text)
    if limits is None:
        return None, f"{path} names no open-file limit"
    return FileLimit(pid, *limits), ""


def _count(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


def check_open_files(limit: FileLimit | None, why: str, gvisor: bool) -> Check:
    """Whether dockerd may hold open the files a gVisor bottle needs (it matters to no other)."""
    if limit is None:
        return Check(OPEN_FILES, True, detail=f"dockerd's limit is unknown: {why}; gVisor bottles need "
                                               f"{NOFILE_ENOUGH} or more")
    found = f"dockerd (pid {limit.pid}) may open {_count(limit.hard)} files (soft limit {_count(limit.soft)})"
    if limit.hard is not None and limit.hard < NOFILE_ENOUGH and gvisor:
        return Check(OPEN_FILES, False, detail=found,
                     reason=f"too few for gVisor bottles (their file proxy holds one per file the agent has "
                            f"open or hard-linked, and a bottle stops working at the limit); {RAISE_NOFILE}")
    if limit.hard is not None and limit.hard < NOFILE_ENOUGH:
        return Check(OPEN_FILES, True, detail=f"{found}: low, but only gVisor bottles need more")
    return Check(OPEN_FILES, True, detail=found)


# --- micro-VMs -------------------------------------------------------------------------------


def host_platform() -> tuple[str, str]:
    """(system, machine) as ``platform`` names them, e.g. ("Linux", "x86_64"), ("Darwin", "arm64")."""
    return _platform.system(), _platform.machine()


def _cpu_flags(cpuinfo: Path) -> set[str]:
    flags: set[str] = set()
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return flags
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


def check_microvm(root: Path = Path("/"), platform: tuple[str, str] | None = None) -> Check:
    """Can a real micro-VM guest boot here? ``root`` stands in for / (holding dev, sys, proc)."""
    system, machine = platform if platform is not None else host_platform()
    if system == "Darwin":
        if machine in ("arm64", "aarch64"):
            return Check(MICROVM, True, detail="macOS on Apple silicon (Hypervisor.framework)")
        return Check(
            MICROVM,
            False,
            reason=f"macOS on {machine}: libkrun micro-VMs need Apple silicon (arm64)",
        )
    if system != "Linux":
        return Check(
            MICROVM, False, reason=f"micro-VMs need Linux with KVM or macOS on Apple silicon, not {system}"
        )

    kvm = root / "dev" / "kvm"
    reasons: list[str] = []
    if not kvm.exists():
        reasons.append("/dev/kvm is missing: the kernel offers no KVM")
    elif not os.access(kvm, os.R_OK | os.W_OK):
        reasons.append("/dev/kvm is not readable and writable by this user (join the kvm group)")
    if (root / "sys" / "module" / "kvm_pvm").exists():
        reasons.append("PVM nested virtualisation (kvm_pvm loaded): libkrun guests cannot boot")
    flags = _cpu_flags(root / "proc" / "cpuinfo")
    if not flags & {"vmx", "svm"} and machine in ("x86_64", "amd64", "i686", "i386"):
        reasons.append("the CPU shows neither vmx nor svm in /proc/cpuinfo: no hardware virtualisation")
    if reasons:
        return Check(MICROVM, False, reason="; ".join(reasons))
    found = "vmx" if "vmx" in flags else "svm" if "svm" in flags else "KVM"
    return Check(MICROVM, True, detail=f"/dev/kvm usable, hardware virtualisation ({found}), no PVM")


# --- smolvm CLI ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmolvmCli:
    """Where the smolvm CLI is and the environment it needs to run."""

    path: Path
    env: dict[str, str]
    source: str  # "PATH" or "smolmachines wheel"


def find_smolvm(
    which: Callable[[str], str | None] | None = None,
    search_dirs: Sequence[str | Path] | None = None,
) -> SmolvmCli | None:
    """The smolvm CLI on PATH, else the one inside an installed ``smolmachines`` wheel.

    The wheel ships the full CLI as ``<site-packages>/smol/smol-vmm``; it finds its libkrun and
    agent rootfs only through SMOLVM_LIB_DIR and SMOLVM_AGENT_ROOTFS_TAR.
    """
    # Looked up at call time (not bound as a default) so a patched or changed PATH is honoured.
    on_path = (which or shutil.which)("smolvm")
    if on_path:
        return SmolvmCli(Path(on_path), {}, "PATH")
    dirs = search_dirs if search_dirs is not None else [p for p in sys.path if p]
    for entry in dirs:
        package = Path(entry) / "smol"
        binary = package / "smol-vmm"
        if binary.is_file() and os.access(binary, os.X_OK):
            env = {
                "SMOLVM_LIB_DIR": str(package),
                "SMOLVM_AGENT_ROOTFS_TAR": str(package / "agent-rootfs.tar.zst"),
            }
            return SmolvmCli(binary, env, "smolmachines wheel")
    return None


Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def smolvm_version(cli: SmolvmCli, runner: Runner | None = None) -> tuple[str | None, str]:
    """(version, error): runs ``smolvm -V``, which prints e.g. ``smolvm 1.32.2``."""
    try:
        proc = (runner or subprocess.run)(
            [str(cli.path), "-V"],
            capture_output=True,
            text=True,
            timeout=_SMOLVM_TIMEOUT,
            env={**os.environ, **cli.env},
        )
    except subprocess.TimeoutExpired:
        return None, f"`{cli.path} -V` did not answer within {_SMOLVM_TIMEOUT:g} s"
    except OSError as exc:
        return None, f"cannot run {cli.path}: {exc.strerror or exc}"
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr or "").strip().splitlines() if line.strip()]
        return None, f"`{cli.path} -V` exited with {proc.returncode}" + (f": {lines[-1]}" if lines else "")
    words = (proc.stdout or "").split()
    version = words[-1] if words else ""
    return (version or "unknown"), ""


def check_smolvm(cli: SmolvmCli | None, version: str | None, error: str = "") -> Check:
    if cli is None:
        return Check(
            SMOLVM,
            False,
            reason="not installed (optional: `pip install smolmachines` ships it)",
        )
    if version is None:
        return Check(SMOLVM, False, detail=str(cli.path), reason=error or "the CLI does not run")
    return Check(SMOLVM, True, detail=f"smolvm {version} ({cli.path}, from {cli.source})")


# --- backends --------------------------------------------------------------------------------


def backend_checks(docker: Check, microvm: Check, smolvm: Check) -> tuple[Check, ...]:
    """Which backends can run: docker needs the engine; smolmachines needs a bootable micro-VM,
    the CLI, and the engine too (it builds the agent image and runs the sidecar bundle)."""
    docker_backend = Check("docker", docker.ok, detail=docker.detail if docker.ok else "", reason=docker.reason)
    missing = [c for c in (microvm, smolvm, docker) if not c.ok]
    smol_backend = Check(
        "smolmachines",
        not missing,
        detail="" if missing else "micro-VM via smolvm, sidecar bundle in Docker",
        reason="; ".join(f"{c.name}: {c.reason}" for c in missing),
    )
    return docker_backend, smol_backend


def gather() -> Report:
    """Probe the real host."""
    info, error = probe_docker_info()
    docker = check_docker(info, error)
    gvisor = check_gvisor(info, host_pid_max())
    open_files = check_open_files(*dockerd_file_limit(), gvisor=gvisor.ok)
    microvm = check_microvm()
    cli = find_smolvm()
    version, smol_error = smolvm_version(cli) if cli is not None else (None, "")
    smolvm = check_smolvm(cli, version, smol_error)
    return Report(
        checks=(docker, gvisor, open_files, microvm, smolvm),
        backends=backend_checks(docker, microvm, smolvm),
    )
