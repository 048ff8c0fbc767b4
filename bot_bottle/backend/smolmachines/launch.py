"""Launch a bottle on smolmachines: the agent in a micro-VM, its sidecar bundle on Docker.

The image pipeline turns the agent's Docker image into a ``.smolmachine`` pack, cached by image
id. The sidecar bundle is the Docker backend's own (its launcher's volume, network and sidecar
steps, called, not copied). The VM is created with egress confined to one address, the
sidecar's on the bottle network (``--allow-cidr X/32``), where a forwarder inside the sidecar
exposes the proxy; the guest's proxy variables point there. Provisioning then goes through the
``Bottle`` handle exactly as on Docker. If anything fails part way, the machine and every Docker
object created so far are removed before the error propagates.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from bot_bottle import images, interrupts, scratch
from bot_bottle.backend.agent_setup import default_git_fields
from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.launch import (
    CA_IN_AGENT,
    PROXY_PORT,
    SOCKET_DIR,
    DockerLauncher,
    LaunchOptions,
    bottle_metadata,
    provide_agent_files,
    proxy_env,
    timed,
)
from bot_bottle.backend.docker.names import (
    LABEL_AGENT,
    LABEL_BACKEND,
    LABEL_ID,
    LABEL_LABEL,
    LABEL_OWNER,
    LABEL_ROLE,
    label_args,
    new_id,
)
from bot_bottle.backend.smolmachines import local_registry, smolvm
from bot_bottle.backend.secret_env import split_agent_env, write_secret_env
from bot_bottle.backend.smolmachines.bottle import SECRET_ENV_FILE, SmolmachinesBottle
from bot_bottle.backend.smolmachines.names import machine_name
from bot_bottle.errors import BotBottleError, teardown_after_failure
from bot_bottle.plan import BottlePlan
from bot_bottle.state import Metadata, StateDir

BACKEND = "smolmachines"
RUNTIME = "libkrun"

# Where packed agent images are kept, by the first 16 hex digits of their Docker image id.
_SMOLMACHINE_CACHE_DIR = images.cache_dir() / "smolmachines"
# Force the registry path even where smolvm reads docker-save archives (to test it, or for a
# smolvm whose archive import misbehaves).
VIA_REGISTRY_ENV = "BOT_BOTTLE_SMOLVM_VIA_REGISTRY"
SNAPSHOT_NAME = "snapshot"  # packed into the state folder as snapshot.smolmachine
CA_STAGING = "/tmp/bot-bottle-ca.crt"
# The machine's own workload: something that stays up so `exec` always has a container to join.
KEEPALIVE = ("sleep", "infinity")
READY_TIMEOUT = 180.0  # the first start of a machine unpacks its image

Progress = Callable[[str], None]
T = TypeVar("T")


# -- the image pipeline -----------------------------------------------------------------------


def _build_image(image: str, dockerfile: Path | None, template: str | None) -> str:
    """(Re)build the agent image with Docker; return the ref to use.

    Built-in and custom images are tagged by a hash of their inputs, so this is cheap when
    nothing changed and a Dockerfile edit lands without any manual cleanup.
    """
    if template is not None:
        try:
            spec = images.agent_image(template, dockerfile)
        except BotBottleError:
            spec = None
        if spec is not None:
            return images.ensure_image(spec)
    if dockerfile is not None:
        path = Path(dockerfile).expanduser().resolve()
        engine.run(["build", "-t", image, "-f", str(path), str(path.parent)], timeout=3600,
                   env={**os.environ, "DOCKER_BUILDKIT": "0"})
        return image
    builtin = _builtin_spec(image)
    if builtin is not None:  # named by its ref alone: still built when missing
        return images.ensure_image(builtin)
    engine.run(["image", "inspect", "--format", "{{.Id}}", image], timeout=60)
    return image


def _builtin_spec(image: str) -> images.ImageSpec | None:
    """The built-in template whose current image ``image`` is, if any."""
    for template in images.templates():
        try:
            spec = images.agent_image(template)
        except BotBottleError:
            continue
        if spec.ref == image:
            return spec
    return None


def _image_digest(image: str) -> str:
    """The first 16 hex digits of the image's id: the cache key of its pack."""
    image_id = engine.run(["image", "inspect", "--format", "{{.Id}}", image], timeout=60).stdout.strip()
    hexdigits = image_id.split(":", 1)[-1]
    if not re.fullmatch(r"[0-9a-f]{16,}", hexdigits):
        raise BotBottleError(f"docker reported an unexpected id for {image}: {image_id!r}")
    return hexdigits[:16]


def _payload(out: Path) -> Path:
    """``pack create -o X`` writes a launcher stub at X and the pack itself at ``X.smolmachine``."""
    return out.with_name(out.name + ".smolmachine")


def _via_registry() -> bool:
    if os.environ.get(VIA_REGISTRY_ENV) == "1":
        return True
    return not smolvm.installed().reads_archives


def _ensure_smolmachine(
    image: str,
    dockerfile: Path | None = None,
    *,
    template: str | None = None,
    via_registry: bool | None = None,
    progress: Progress | None = None,
) -> Path:
    """The agent image as a ``.smolmachine`` pack: from the cache, or built, saved and packed.

    Cache hit: the image is (re)built, its id read, and the cached pack returned: no save, no
    registry, no push, no pack. Miss: ``docker save`` into the cache, then either push the
    tarball to a throwaway registry and pack from there (smolvm 0.8 packs only what it pulls), or
    pack the archive directly (smolvm 1.x reads ``docker save`` archives).
    """
    say = progress or (lambda message: None)
    ref = _build_image(image, dockerfile, template)
    digest = _image_digest(ref)
    cache = Path(_SMOLMACHINE_CACHE_DIR)
    out = cache / f"{digest}.smolmachine"
    packed = _payload(out)
    if packed.is_file():
        return packed
    cache.mkdir(parents=True, exist_ok=True)
    # Two starts of the same agent must not pack the same image twice at once.
    with images.file_lock(cache / f"{digest}.lock"):
        if packed.is_file():
            return packed
        archive = cache / f"{digest}.image.tar"
        say(f"saving {ref} for the micro-VM")
        engine.run(["save", "-o", str(archive), ref], timeout=1800)
        try:
            if via_registry if via_registry is not None else _via_registry():
                with local_registry.ephemeral_registry() as registry:
                    say("pushing it to a throwaway local registry")
                    local_registry.crane_push_tarball(
                        archive, f"{registry.push_endpoint}/{local_registry.REPOSITORY}:{digest}", network=registry.network
                    )
                    say("packing it with smolvm")
                    smolvm.pack_create(f"{registry.pull_endpoint}/{local_registry.REPOSITORY}:{digest}", out)
            else:
                say("packing it with smolvm")
                smolvm.pack_create(str(archive), out)
        finally:
            archive.unlink(missing_ok=True)
        if not packed.is_file():
            raise BotBottleError(f"smolvm pack create finished but wrote no {packed}")
        # The stub next to the pack is a standalone launcher we never run.
        if out.is_file():
            out.unlink()
    return packed


def read_committed_image(state: StateDir) -> Path | None:
    """The ``.smolmachine`` a ``commit`` (or a preserved failure) left for this bottle, if any."""
    try:
        snapshot = state.read().snapshot
    except BotBottleError:
        return None
    if snapshot and snapshot.endswith(".smolmachine"):
        return Path(snapshot)
    return None


def _agent_from_path(plan: BottlePlan, *, state: StateDir | None = None, progress: Progress | None = None) -> Path:
    """What the machine is created from: a committed snapshot when there is one, else the pack."""
    committed = read_committed_image(state) if state is not None else None
    if committed is not None and committed.is_file():
        return committed
    if plan.agent_image is None:
        raise BotBottleError(f"no agent image for template '{plan.template}'")
    return _ensure_smolmachine(plan.agent_image, dockerfile=plan.agent_dockerfile_path, template=plan.template, progress=progress)


# -- guest env --------------------------------------------------------------------------------


def guest_proxy_env(address: str) -> dict[str, str]:
    """The Docker bottle's proxy env with the proxy at the sidecar's address instead of loopback."""
    env = proxy_env()
    url = f"http://{address}:{PROXY_PORT}"
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[key] = url
    return env


def _memory_mib(text: str) -> int | None:
    match = re.fullmatch(r"(\d+)([kmgKMG]?)[bB]?", text.strip())
    if not match:
        return None
    value, unit = int(match.group(1)), match.group(2).lower()
    return {"k": value // 1024, "m": value, "g": value * 1024}.get(unit, value // (1 << 20))


# -- the launcher -----------------------------------------------------------------------------


def preflight() -> None:
    """Refuse, before anything is created, on a host where no micro-VM can boot.

    The doctor judges the host itself (KVM usable, no PVM nesting, vmx/svm, or Apple silicon),
    never a library's own availability check, which says yes on PVM hosts where guests hang.
    """
    from bot_bottle import doctor

    problems = []
    microvm = doctor.check_microvm()
    if not microvm.ok:
        problems.append(f"micro-VM: {microvm.reason}")
    if not smolvm.is_available():
        problems.append("smolvm: not installed")
    if problems:
        raise BotBottleError(
            "the smolmachines backend cannot run on this host: " + "; ".join(problems),
            hint="`bot-bottle doctor` explains; use --backend docker here "
            "(`pip install 'bot-bottle[smolmachines]'` provides smolvm)",
        )


# The VM's forwarder runs in the sidecar and forks a process per connection the agent opens,
# under the bundle's task limit (``SIDECAR_PIDS_LIMIT``), in front of the bundle's own bounded
# forwarder: unbounded, a few hundred connections held open used that limit up, its next fork
# failed and it exited, leaving the VM offline for good. Bounded (the two forwarders' children
# and the git-gate's handlers stay inside the limit; the rest wait in the backlog), and a failed
# fork is retried once a second.
VM_FORWARDER_MAX_CHILDREN = 128
VM_FORWARDER_BOUND = f"max-children={VM_FORWARDER_MAX_CHILDREN},backlog=4096,forever,interval=1"

class _SidecarBundle(DockerLauncher):
    """The Docker backend's sidecar bundle, labelled as belonging to a micro-VM bottle."""

    def labels(self, role: str) -> dict[str, str]:
        labels = super().labels(role)
        labels[LABEL_BACKEND] = BACKEND
        return labels


class SmolmachinesLauncher:
    """One launch. ``launch()`` returns a provisioned ``SmolmachinesBottle``; ``teardown()`` ends it."""

    def __init__(
        self,
        plan: BottlePlan,
        options: LaunchOptions,
        state_root: Path,
        *,
        progress: Progress | None = None,
    ) -> None:
        self.plan = plan
        self.options = dataclasses.replace(options, bottle_id=options.bottle_id or new_id())
        self.bundle = _SidecarBundle(plan, self.options, state_root, progress=progress)
        self.names = self.bundle.names
        self.state: StateDir = self.bundle.state
        self.machine = machine_name(self.names.id)
        self.owner = self.bundle.owner
        self._progress = progress or (lambda message: None)
        self.preserve_reason: str | None = None
        self.timings: dict[str, float] = self.bundle.timings
        self.bottle: SmolmachinesBottle | None = None
        self.sidecar_address: str | None = None
        self.artifact: Path | None = None
        self._secret_env: dict[str, str] = {}
        self._machine_created = False
        self._torn_down = False

    def _step(self, name: str, fn: Callable[[], T]) -> T:
        return timed(self.timings, name, fn)

    # ------------------------------------------------------------------ metadata
    def _metadata(self) -> Metadata:
        meta = bottle_metadata(self.names.id, self.plan, backend=BACKEND, image=self.plan.agent_image,
                               snapshot=self.options.image_override, runtime=RUNTIME, owner=self.owner)
        meta.extra = {"machine": self.machine}
        return meta

    def machine_labels(self) -> dict[str, str]:
        labels = {
            LABEL_ID: self.names.id,
            LABEL_AGENT: self.plan.agent,
            LABEL_BACKEND: BACKEND,
            LABEL_ROLE: "agent",
            LABEL_OWNER: self.owner,
        }
        if self.plan.label:
            labels[LABEL_LABEL] = self.plan.label
        return labels

    # ------------------------------------------------------------------ steps
    def _prepare_state(self) -> None:
        self.bundle._open_state(self._metadata)  # the bundle keeps or drops the state folder

    def _artifact(self) -> Path:
        override = self.options.image_override
        if override and override.endswith(".smolmachine") and Path(override).is_file():
            return Path(override)
        return _agent_from_path(self.plan, state=self.state, progress=self._progress)

    def _start_bundle(self, sidecar_image: str) -> str:
        """Volume, network and sidecar as a Docker bottle has them; return the proxy's address."""
        b = self.bundle
        b._create("volume", ["volume", "create", *label_args(b.labels("socket")), b.names.socket_volume], b.names.socket_volume)
        b._create(
            "network",
            [
                "network", "create", "--driver", "bridge",
                *(["--internal"] if self.options.internal_network else []),
                *label_args(b.labels("network")), b.names.network,
            ],
            b.names.network,
        )
        b._start_sidecar(sidecar_image)
        b._wait_sidecar_ready(b.names.sidecar_container)
        address = engine.run(
            ["inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{b.names.network}").IPAddress}}}}',
             b.names.sidecar_container],
            timeout=30,
        ).stdout.strip()
        if not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", address):
            raise BotBottleError(f"the sidecar has no IPv4 address on {b.names.network} (got {address!r})")
        self._open_proxy_port(address)
        return address

    def _open_proxy_port(self, address: str, timeout: float = 10) -> None:
        """Expose the proxy socket as TCP on the sidecar's bottle-network address only.

        The VM has no shared volume: its single allowed address is this listener. Bound to that
        one address, so networks the sidecar also joins (tests' fake internet) never see it.
        If the forwarder dies the VM is offline: it has no other way out.
        """
        sidecar = self.bundle.names.sidecar_container
        engine.run(
            ["exec", "-d", sidecar, "socat",
             f"TCP-LISTEN:{PROXY_PORT},bind={address},fork,reuseaddr,{VM_FORWARDER_BOUND}",
             f"UNIX-CONNECT:{SOCKET_DIR}/proxy.sock"],
            timeout=30,
        )
        probe = f"import socket; socket.create_connection(('{address}', {PROXY_PORT}), 1).close()"
        deadline = time.monotonic() + timeout
        while True:
            if engine.run(["exec", sidecar, "python3", "-c", probe], timeout=15, check=False).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise BotBottleError(f"the sidecar's proxy port for the micro-VM did not open within {timeout:g} s")
            time.sleep(0.1)

    def guest_env(self, address: str) -> tuple[dict[str, str], dict[str, str]]:
        """(plain env for ``-e``, secret env for the in-guest file)."""
        plain, secret = split_agent_env(self.options.env, self.plan.secret_env_names, self.options.known_secrets)
        return {**plain, **guest_proxy_env(address)}, secret

    def launch(self) -> SmolmachinesBottle:
        preflight()  # before the try: nothing exists yet, so nothing to tear down
        try:
            self._prepare_state()
            self._progress("checking images")
            sidecar_ref = self._step("sidecar-image", lambda: images.ensure_image(images.sidecar_image()))
            self.artifact = self._step("agent-image", self._artifact)
            self._progress("starting the sidecar (egress proxy)")
            address = self._step("sidecar", lambda: self._start_bundle(sidecar_ref))
            self.sidecar_address = address
            plain, self._secret_env = self.guest_env(address)
            self._progress(f"creating the micro-VM (egress only to {address})")
            self._machine_created = True  # before the call: a half-made machine is still removed
            smolvm.machine_create(
                self.machine,
                from_path=self.artifact,
                allow_cidrs=(f"{address}/32",),
                env=plain,
                labels=self.machine_labels(),
                command=KEEPALIVE,
                memory_mib=_memory_mib(self.options.memory),
            )
            meta = self.state.read()
            meta.extra = {**meta.extra, "machine": self.machine, "sidecar_address": address, "artifact": str(self.artifact)}
            self.state.write(meta)
            self._progress("starting the micro-VM")
            self._step("machine", self._boot)
            bottle = SmolmachinesBottle(
                self.machine,
                guest_env=plain,
                agent_command=self.options.agent_command or self.plan.agent_command,
                sidecar=self.bundle.names.sidecar_container,
            )
            self.bottle = bottle
            self._progress("provisioning the agent")
            self._step("provision", lambda: self._provision(bottle))
            return bottle
        except BaseException as failure:
            teardown_after_failure(failure, lambda: self.teardown(launch_failed=True))
            raise

    def _boot(self) -> None:
        smolvm.machine_start(self.machine)
        smolvm.wait_exec_ready(self.machine, timeout=READY_TIMEOUT)

    def _provision(self, bottle: SmolmachinesBottle) -> None:
        from bot_bottle.provision import ca, git, workspace

        if self._secret_env:
            write_secret_env(bottle, self._secret_env, SECRET_ENV_FILE)
        with scratch.private_dir() as tmp:
            cert = Path(tmp) / "ca.crt"
            engine.run(["cp", f"{self.bundle.names.sidecar_container}:{SOCKET_DIR}/ca.crt", str(cert)], timeout=60)
            bottle.cp_in(cert, CA_STAGING)
        ca.trust_bottle_ca(bottle, CA_STAGING, CA_IN_AGENT)
        # As in a Docker bottle: the identity (bot-bottle's default only where the agent set none,
        # so its own survives a resume), and every declared repo's URLs sent to the gate (reached
        # through the proxy the guest's env points at), on a resume too.
        git.configure_git(bottle, self.plan.repos, self.plan.git_user, unless_set=default_git_fields(self.plan))
        provide_agent_files(bottle, self.plan, self.options)
        if self.options.resume:
            return  # the snapshot holds the workspace
        if self.plan.cwd is not None:
            workspace.copy_in(bottle, self.plan.cwd, bottle.workdir, progress=self._progress)

    # ------------------------------------------------------------------ snapshot and teardown
    def snapshot(self, *, restart: bool = False) -> str:
        """Pack the machine's disk into the state folder; return the ``.smolmachine`` path.

        The machine must stop for ``pack create --from-vm``; with ``restart`` it comes back (the
        agent session inside does not survive). The secret env file is removed first so no
        secret value is ever packed; it is written again after a restart.
        """
        if self.bottle is not None:
            self.bottle.exec(f"rm -f {SECRET_ENV_FILE}")
        out = self.state.path / SNAPSHOT_NAME
        smolvm.machine_stop(self.machine)
        smolvm.pack_from_vm(self.machine, out)
        packed = _payload(out)
        if not packed.is_file():
            raise BotBottleError(f"smolvm pack create --from-vm finished but wrote no {packed}")
        if out.is_file():
            out.unlink()
        if restart:
            self._boot()
            if self.bottle is not None and self._secret_env:
                write_secret_env(self.bottle, self._secret_env, SECRET_ENV_FILE)
        return str(packed)

    def _commit_requested(self) -> bool:
        marker = self.state.preserve_marker()
        return marker is not None and marker != self.bundle._marker_at_launch

    def teardown(self, *, launch_failed: bool = False) -> None:
        """Delete the machine, then the bundle (which keeps or drops the state folder).

        A ``commit`` made from another process while this bottle ran only marks the state
        folder; the snapshot is packed here, from the machine as it is at the end.
        """
        if self._torn_down:
            return
        self._torn_down = True
        with interrupts.deferred():  # a second Ctrl-C must not leave the machine or bundle behind
            self._remove_all(launch_failed)

    def _remove_all(self, launch_failed: bool) -> None:
        try:
            if self._machine_created and not launch_failed and not self.preserve_reason and self._commit_requested():
                try:
                    packed = self.snapshot()
                    meta = self.state.read()
                    meta.snapshot = packed
                    self.state.write(meta)
                except BotBottleError as exc:
                    self._progress(f"the committed snapshot could not be packed: {exc}")
        finally:
            if self._machine_created:
                try:
                    smolvm.machine_delete(self.machine)
                except smolvm.SmolvmError:
                    pass  # never created, or already gone; `cleanup` finds anything left
            self.bundle.preserve_reason = self.preserve_reason
            self.bundle.teardown(launch_failed=launch_failed)


def request_commit(state: StateDir) -> None:
    """``commit`` for a running micro-VM bottle: mark it; its launcher packs at teardown.

    Packing needs the machine stopped; doing it now would kill the agent's session.
    """
    meta = state.read()
    meta.extra = {**meta.extra, "commit_requested_at": time.time()}
    state.write(meta)
    state.preserve("committed")


def dry_run_fields(plan: BottlePlan, cli: smolvm.Installed | None = None) -> dict[str, Any]:
    """What a launch on smolmachines would create, for the dry-run plan. Pure but for ``-V``."""
    if cli is None:
        try:
            cli = smolvm.installed()
        except BotBottleError:
            cli = None
    pipeline = (
        "not installed" if cli is None
        else "docker save, then smolvm pack create from the archive" if cli.reads_archives
        else "docker save, push to a throwaway local registry, smolvm pack create from it"
    )
    return {
        "runtime": RUNTIME,
        "smolvm": {"version": cli.version if cli else None, "path": cli.path if cli else None},
        "image_artifact": {
            "source_image": plan.agent_image,
            "dockerfile": str(plan.agent_dockerfile) if plan.agent_dockerfile else None,
            "cache": str(_SMOLMACHINE_CACHE_DIR / "<image id, 16 hex>.smolmachine.smolmachine"),
            "pipeline": pipeline,
        },
        "egress": {
            "allow_cidrs": ["<sidecar address on the bottle network>/32"],
            "proxy": f"http://<sidecar address>:{PROXY_PORT}",
        },
        "secret_env": "a mode-600 file in the guest, sourced by the agent's launcher (never an argv)",
        "machine_name": "bot-bottle-<bottle id>",
    }


__all__ = [
    "SmolmachinesLauncher",
    "_agent_from_path",
    "_ensure_smolmachine",
    "dry_run_fields",
    "read_committed_image",
    "request_commit",
]

