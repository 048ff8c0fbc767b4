"""Backends by name, behind one small interface.

``for_name("docker" | "smolmachines")`` returns a backend that can launch a plan into a
``Bottle``, commit a running bottle, apply (or cleanly refuse) an approved capability change,
and find and remove what no live bottle owns. ``for_state`` picks the backend a preserved
bottle ran on from its metadata, so ``resume`` and remediation never guess.

The Docker backend wraps the existing ``DockerLauncher`` unchanged. A smolmachines bottle is
never handed to a Docker handler: its capability changes end in ``NotSupportedOnBackend``
before any Docker command runs.
"""

from __future__ import annotations

import abc
import os
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bot_bottle import proc
from bot_bottle.backend import Bottle
from bot_bottle.backend.docker.cleanup import Inventory, OwnerState, Resource
from bot_bottle.backend.docker.launch import DockerLauncher, LaunchOptions
from bot_bottle.backend.docker.names import BottleNames
from bot_bottle.errors import BotBottleError
from bot_bottle.plan import BACKENDS, BottlePlan
from bot_bottle.state import StateDir

Progress = Callable[[str], None]

# Debian package names (policy manual 5.6.1): nothing a shell could read as syntax.
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


class NotSupportedOnBackend(BotBottleError):
    """The operation has no implementation on this backend; nothing was changed."""


@dataclass(frozen=True)
class CapabilityBuild:
    """TEST ONLY: where a capability build gets its packages.

    Tests serve their own Debian repository from a container on an ``--internal`` network they
    created; the build joins that network and reads only that repository. Set only from Python
    (``apply.Context.capability_build``, ``lifecycle.run_bottle(capability_build=...)``); no
    manifest key, CLI flag or environment variable ever reads it, like
    ``LaunchOptions.upstream_ca_pem``.
    """

    network: str | None = None  # `docker build --network`
    apt_source: str | None = None  # one sources.list line, used instead of the image's sources

    def validate(self) -> None:
        if self.apt_source is not None and (not self.apt_source.strip() or "\n" in self.apt_source
                                            or "\r" in self.apt_source):
            raise BotBottleError("CapabilityBuild.apt_source is one sources.list line")
        if self.network is not None and not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", self.network):
            raise BotBottleError(f"CapabilityBuild.network: not a network name: {self.network!r}")


@dataclass(frozen=True)
class CapabilityChange:
    """An approved proposal to add system packages to a bottle's image."""

    bottle_id: str
    packages: tuple[str, ...]
    reason: str = ""
    build: CapabilityBuild | None = None  # TEST ONLY (see CapabilityBuild)

    def validate(self) -> None:
        if not self.packages:
            raise BotBottleError("a capability change names at least one package")
        bad = [p for p in self.packages if not _PACKAGE.match(p)]
        if bad:
            raise BotBottleError("not Debian package names: " + ", ".join(repr(p) for p in bad))
        if self.build is not None:
            self.build.validate()


# Root's commands in a capability build run with nothing of the snapshot's environment: the
# image keeps ``HOME=/home/node``, where the agent can leave a ``.dpkg.cfg`` whose hooks dpkg runs
# as root. No /usr/local either (the agent image's own tools live there, not apt's).
_CLEAN_ROOT = "env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root DEBIAN_FRONTEND=noninteractive"
_FETCHED = "/var/cache/apt/archives/"
_DEBS = "/var/cache/bot-bottle-debs"


def fetch_dockerfile(base: str, packages: tuple[str, ...], build: CapabilityBuild | None = None) -> str:
    """Stage one of adding ``packages`` (names already validated) to ``base``: download them and
    what they need, nothing installed. The only stage with a network, and apt alone runs in it:
    a download runs no package script, and nothing the agent wrote is read."""
    names = " ".join(packages)
    apt = "apt-get"
    setup = ""
    if build is not None and build.apt_source:
        # Only the given repository: its own list, and no sources.list.d parts.
        listing = "/etc/apt/bot-bottle-capability.list"
        apt = f"apt-get -o Dir::Etc::SourceList={listing} -o Dir::Etc::SourceParts=/nonexistent"
        setup = f"printf '%s\\n' {shlex.quote(build.apt_source)} > {listing} && "
    # ``env -i`` also drops the bottle's proxy settings (the sidecar does not exist in a build).
    script = f"{setup}{apt} update && {apt} install -y --no-install-recommends --download-only {names}"
    return f"FROM {base}\nUSER root\nRUN {_CLEAN_ROOT} sh -ec {shlex.quote(script)}\n"


def install_dockerfile(base: str, fetched: str, packages: tuple[str, ...]) -> str:
    """Stage two: install what stage one (the image ``fetched``) downloaded into ``base``. Built
    with no network (``--network none``): whatever runs as root here, package scripts included,
    reaches nothing."""
    names = " ".join(packages)
    script = (f'set -- {_DEBS}/*.deb; if [ -e "$1" ]; then apt-get install -y --no-install-recommends "$@"; fi; '
              f"dpkg-query -W {names} > /dev/null; rm -rf {_DEBS} /var/lib/apt/lists/*")
    return (
        f"FROM {base}\nUSER root\n"
        f"COPY --from={fetched} {_FETCHED} {_DEBS}/\n"
        f"RUN {_CLEAN_ROOT} sh -ec {shlex.quote(script)}\n"
        "USER node\n"
    )


class Launch(Protocol):
    """One launch: what a caller needs around the bottle (id, state, preservation, teardown)."""

    preserve_reason: str | None

    @property
    def names(self) -> BottleNames: ...

    @property
    def state(self) -> StateDir: ...

    def launch(self) -> Bottle: ...

    def snapshot(self) -> str: ...

    def teardown(self, *, launch_failed: bool = False) -> None: ...


def require_state(bottle_id: str, state_root: Path) -> StateDir:
    """The bottle's state folder under ``state_root``; a clear error when there is none (the
    bottle was started from another home, or by nobody): nothing is snapshotted or marked then."""
    state = StateDir(state_root, bottle_id)
    if not state.exists():
        raise BotBottleError(
            f"bottle {bottle_id} has no state under {state_root}: it was not started from this home "
            "(or does not exist), so it cannot be committed here",
            hint="`bot-bottle list --running` shows the running bottles and which are this home's; "
                 "commit a bottle with the HOME that started it",
        )
    return state


def default_state_root() -> Path:
    from bot_bottle.manifest import Layout

    return Layout.from_env().state_dir


class BottleBackend(abc.ABC):
    name: str
    supports_capability_change: bool

    @abc.abstractmethod
    def launcher(self, plan: BottlePlan, options: LaunchOptions, *, state_root: Path,
                 progress: Progress | None = None) -> Launch:
        """A launch of ``plan`` that has not started yet."""

    def launch(self, plan: BottlePlan, options: LaunchOptions, *, state_root: Path | None = None,
               progress: Progress | None = None) -> Bottle:
        """Launch and provision; the returned bottle is ready for ``agent_argv``."""
        return self.launcher(plan, options, state_root=state_root or default_state_root(), progress=progress).launch()

    @abc.abstractmethod
    def commit(self, bottle_id: str, *, state_root: Path, build: CapabilityBuild | None = None) -> str:
        """Snapshot a running bottle so the next resume starts from it; mark it preserved.

        ``build`` (TEST ONLY) is how packages approved earlier in the run are added again."""

    @abc.abstractmethod
    def apply_capability_change(self, change: CapabilityChange, *, state_root: Path) -> str:
        """Apply an approved change (the bottle resumes from the result), or raise
        ``NotSupportedOnBackend`` having changed nothing."""

    def request_restart(self, bottle_id: str, *, state_root: Path, reason: str) -> None:
        """Ask the bottle's owner to relaunch it, same id, from its snapshot (after a capability
        change): a backend that cannot answers ``NotSupportedOnBackend`` having run nothing."""
        raise NotSupportedOnBackend(f"restarting a running bottle is not supported on {self.name} (bottle {bottle_id})")

    @abc.abstractmethod
    def inventory(self, state_root: Path, *, owner_state: OwnerState = proc.owner_state) -> Inventory:
        """What this backend created for this home's bottles that no live bottle owns (orphans) or
        that is live; what is another home's, or has an owner not checkable here, is skipped."""

    @abc.abstractmethod
    def remove(self, resources: list[Resource]) -> list[str]:
        """Remove this backend's resources among ``resources``; one message per failure."""


# -- Docker ------------------------------------------------------------------------------------


class _DockerLaunch:
    """``DockerLauncher`` plus ``snapshot`` (a ``docker commit`` of the agent container)."""

    def __init__(self, inner: DockerLauncher) -> None:
        self.inner = inner

    @property
    def names(self) -> BottleNames:
        return self.inner.names

    @property
    def state(self) -> StateDir:
        return self.inner.state

    @property
    def preserve_reason(self) -> str | None:
        return self.inner.preserve_reason

    @preserve_reason.setter
    def preserve_reason(self, value: str | None) -> None:
        self.inner.preserve_reason = value

    def launch(self) -> Bottle:
        return self.inner.launch()

    def snapshot(self) -> str:
        from bot_bottle import lifecycle

        return lifecycle.snapshot(self.inner.names.id, self.inner.names.agent_container, self.inner.state.root)

    def teardown(self, *, launch_failed: bool = False) -> None:
        self.inner.teardown(launch_failed=launch_failed)


class DockerBackend(BottleBackend):
    name = "docker"
    supports_capability_change = True
    restart_grace_s = 2.0

    def launcher(self, plan: BottlePlan, options: LaunchOptions, *, state_root: Path,
                 progress: Progress | None = None) -> _DockerLaunch:
        return _DockerLaunch(DockerLauncher(plan, options, state_root, progress=progress))

    def commit(self, bottle_id: str, *, state_root: Path, build: CapabilityBuild | None = None) -> str:
        from bot_bottle import lifecycle

        # Checked before the snapshot: without a state folder here it would be an image nothing
        # resumes from, of a bottle another home (or nobody) owns.
        state = require_state(bottle_id, state_root)
        ref = lifecycle.snapshot(bottle_id, BottleNames(bottle_id, "agent").agent_container, state_root)
        meta = state.read()
        meta.snapshot = ref
        state.write(meta)
        state.preserve("committed")
        packages = state.capability_packages()
        if packages:
            # The container predates this run's approved packages: add them again on top.
            ref = self.apply_capability_change(
                CapabilityChange(bottle_id, packages, reason="kept after commit", build=build), state_root=state_root)
            state.preserve("committed")
        return ref

    def apply_capability_change(self, change: CapabilityChange, *, state_root: Path) -> str:
        """Build the bottle's image (its snapshot, else its image) plus the packages, as the
        snapshot the next resume starts from."""
        from bot_bottle.backend.docker import engine
        from bot_bottle.backend.docker.names import LABEL_ID

        change.validate()
        state = StateDir(state_root, change.bottle_id)
        meta = state.read()
        base = meta.snapshot or meta.image
        if not base:
            raise BotBottleError(f"bottle {change.bottle_id} records no image to extend")
        ref = f"bot-bottle/snapshot:{change.bottle_id}"
        fetched = f"bot-bottle/capability-fetch:{change.bottle_id}"
        packages = " ".join(change.packages)
        network = ["--network", change.build.network] if change.build and change.build.network else []
        label = ["--label", f"{LABEL_ID}={change.bottle_id}"]  # `cleanup` finds what a failure left
        build_env = {**os.environ, "DOCKER_BUILDKIT": "0"}  # the classic builder: no BuildKit everywhere
        # Two builds, as the base is the agent's own snapshot: the packages are downloaded with
        # a network, then installed (package scripts run as root) with none.
        try:
            engine.run(["build", "-t", fetched, *label, *network, "-"],
                       input=fetch_dockerfile(base, change.packages, change.build), timeout=3600, env=build_env)
            engine.run(["build", "-t", ref, *label, "--network", "none", "-"],
                       input=install_dockerfile(base, fetched, change.packages), timeout=3600, env=build_env)
        finally:
            try:
                engine.run(["rmi", "-f", fetched], timeout=120, check=False)
            except engine.DockerError:
                pass  # `cleanup` finds it by its label
        meta.snapshot = ref
        state.write(meta)
        state.record_capability(change.packages)
        state.preserve(f"capability change: {packages}" + (f" ({change.reason})" if change.reason else ""))
        return ref

    def owner_running(self, bottle_id: str, *, state_root: Path) -> bool:
        """True when the process that launched the bottle still runs it (it can relaunch it)."""
        state = StateDir(state_root, bottle_id)
        return state.exists() and proc.is_alive(state.read().owner)

    def request_restart(self, bottle_id: str, *, state_root: Path, reason: str) -> None:
        """The restart marker first, then stop the agent container: its owner
        (``lifecycle.run_bottle``) sees the agent end and the marker, snapshots, tears down and
        relaunches the same bottle from the snapshot."""
        from bot_bottle.backend.docker import engine

        state = StateDir(state_root, bottle_id)
        if not self.owner_running(bottle_id, state_root=state_root):
            raise BotBottleError(f"bottle {bottle_id} has no running owner to restart it",
                                 hint=f"`bot-bottle resume {bottle_id}` starts it on the new image")
        meta = state.read()
        state.request_restart(reason)
        try:
            # The decision is in the spool already; the MCP server polls it every 0.25 s and
            # answers through the proxy. A moment's grace lets that answer reach the agent.
            time.sleep(self.restart_grace_s)
            engine.run(["stop", "-t", "5", BottleNames(bottle_id, meta.agent).agent_container], timeout=120)
        except BaseException:
            state.clear_restart()  # nothing will restart it: the marker must not outlive the attempt
            raise

    def inventory(self, state_root: Path, *, owner_state: OwnerState = proc.owner_state) -> Inventory:
        from bot_bottle.backend.docker import cleanup

        return cleanup.inventory(state_root, owner_state=owner_state)

    def remove(self, resources: list[Resource]) -> list[str]:
        from bot_bottle.backend.docker import cleanup

        return cleanup.remove([r for r in resources if r.kind in ("container", "network", "volume", "image", "state")])


# -- smolmachines ------------------------------------------------------------------------------


class SmolmachinesBackend(BottleBackend):
    name = "smolmachines"
    # Adding packages means rebuilding from a Docker image, and a micro-VM's snapshot is a
    # .smolmachine pack, not an image: refused cleanly rather than losing the bottle's work.
    supports_capability_change = False

    def launcher(self, plan: BottlePlan, options: LaunchOptions, *, state_root: Path,
                 progress: Progress | None = None) -> Launch:
        from bot_bottle.backend.smolmachines.launch import SmolmachinesLauncher

        return SmolmachinesLauncher(plan, options, state_root, progress=progress)

    def commit(self, bottle_id: str, *, state_root: Path, build: CapabilityBuild | None = None) -> str:
        """Mark the running bottle committed; its launcher packs the machine when it ends.

        Packing needs the machine stopped, which would end the agent's session now.
        """
        from bot_bottle.backend.smolmachines.launch import SNAPSHOT_NAME, request_commit

        state = require_state(bottle_id, state_root)
        request_commit(state)
        return str(state.path / f"{SNAPSHOT_NAME}.smolmachine")

    def apply_capability_change(self, change: CapabilityChange, *, state_root: Path) -> str:
        raise NotSupportedOnBackend(
            f"capability changes are not supported on smolmachines (bottle {change.bottle_id}): "
            "its snapshot is a micro-VM pack, which cannot be rebuilt with more packages",
            hint="add the packages to agent_provider.dockerfile and start a new bottle, or run the bottle on --backend docker",
        )

    def inventory(self, state_root: Path, *, owner_state: OwnerState = proc.owner_state) -> Inventory:
        from bot_bottle.backend.smolmachines import cleanup

        return cleanup.inventory(state_root, owner_state=owner_state)

    def remove(self, resources: list[Resource]) -> list[str]:
        from bot_bottle.backend.smolmachines import cleanup

        return cleanup.remove(resources)


# -- lookup ------------------------------------------------------------------------------------

_BACKENDS: dict[str, type[BottleBackend]] = {"docker": DockerBackend, "smolmachines": SmolmachinesBackend}
assert set(_BACKENDS) == set(BACKENDS), "every planned backend has an implementation"


def for_name(name: str) -> BottleBackend:
    try:
        return _BACKENDS[name]()
    except KeyError:
        raise BotBottleError(f"unknown backend {name!r}; expected one of: {', '.join(sorted(_BACKENDS))}") from None


def for_state(state: StateDir) -> BottleBackend:
    """The backend a saved bottle ran on, from its metadata."""
    return for_name(state.read().backend)


def apply_capability_change(change: CapabilityChange, *, state_root: Path) -> str:
    """Dispatch an approved capability change to the backend that owns the bottle."""
    return for_state(StateDir(state_root, change.bottle_id)).apply_capability_change(change, state_root=state_root)


def inventory(state_root: Path, *, owner_state: OwnerState = proc.owner_state) -> Inventory:
    """Every backend's orphans and live objects together (machines first: they go first)."""
    merged = Inventory()
    for backend in (SmolmachinesBackend(), DockerBackend()):
        inv = backend.inventory(state_root, owner_state=owner_state)
        merged.orphans += inv.orphans
        merged.live += inv.live
        merged.kept += inv.kept
        merged.skipped += inv.skipped
    return merged


def remove(resources: list[Resource]) -> list[str]:
    """Remove machines before Docker objects and state folders."""
    return SmolmachinesBackend().remove(resources) + DockerBackend().remove(resources)
