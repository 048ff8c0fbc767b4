"""Launch a bottle on Docker: volume, network, sidecar, agent, then provision through the handle.

The agent container has no network at all (``--network none``). Its only way out is a unix
socket in a per-bottle volume shared with the sidecar, reached through a forwarder bound to
127.0.0.1 inside the container. If anything fails part way, everything created so far is removed
before the error propagates; a CLI killed outright leaves objects that ``cleanup`` finds by label.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar
from dataclasses import dataclass, field
from pathlib import Path

from bot_bottle import interrupts, proc, scratch
from bot_bottle.backend import Bottle, sidecar_config
from bot_bottle.backend.agent_setup import default_git_fields
from bot_bottle.backend.docker import create_body, egress_log, engine, engine_api, removal, snapshot_room
from bot_bottle.backend.docker.disk_guard import DiskGuard
from bot_bottle.backend.docker.sidecar_watch import SidecarWatch
from bot_bottle.backend.docker.bottle import SECRET_ENV_DIR, SECRET_ENV_FILE, WORKDIR, DockerBottle
from bot_bottle.backend.secret_env import split_agent_env, write_secret_env
from bot_bottle.backend.docker.names import (
    LABEL_AGENT,
    LABEL_BACKEND,
    LABEL_BOTTLE,
    LABEL_ID,
    LABEL_LABEL,
    LABEL_OWNER,
    LABEL_ROLE,
    LABEL_STATE,
    BottleNames,
    label_args,
    new_id,
)
from bot_bottle.errors import BotBottleError, teardown_after_failure
from bot_bottle.plan import BottlePlan
from bot_bottle.sidecar.init import CONFIG_DROP
from bot_bottle.state import Metadata, StateDir

if TYPE_CHECKING:
    from bot_bottle.images import ImageSpec

SOCKET_DIR = "/run/bottle"
SIDECAR_INIT_CAPS = ("CHOWN", "KILL", "SETGID", "SETUID")
AGENT_LOG_MAX = "1m"  # the agent container's docker log on the host's disk
PROXY_PORT = 3128
CA_IN_VOLUME = f"{SOCKET_DIR}/ca.crt"
# How long the agent-side wait for the CA (``_begin_ca_trust``) is given once the sidecar said it
# published it: a poll step and the install, unless the engine is stuck.
CA_TRUST_TIMEOUT = 30.0
CA_IN_AGENT = "/usr/local/share/ca-certificates/bot-bottle-ca.crt"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
SIDECAR_CONFIG_DIR = "/etc/bot-bottle"
EGRESS_LOG_NAME = "egress.jsonl"
# How long a launch waits for the sidecar to publish its CA and to become ready. The sidecar
# gives each daemon a minute (then exits, failing the start); on a busy host the whole bundle
# can take longer than one daemon's limit.
SIDECAR_START_TIMEOUT = 120.0

# What the agent container runs as PID 1 (under --init): the forwarder to the proxy socket, and a
# sleep that keeps the container alive for `docker exec`. If the forwarder dies, the agent is
# offline: there is no other path out.
# nodelay and large blocks: without them Nagle's algorithm adds tens of milliseconds per request.
# The sleep is started again when it ends: an agent tidying up its own sleeps (`pkill sleep`)
# ended the whole bottle with it. A stop (SIGTERM to the shell) still ends it at once.
# socat forks a process per connection, and those count against the agent's own task limit: once
# the agent had used that up (a fork bomb, or just a large parallel build), socat's next fork
# failed and it exited, leaving the bottle offline for good. With ``forever`` it retries a failed
# fork once a second and serves again as soon as the agent's tasks are back under the limit.
AGENT_ENTRY = (
    f"socat -b 262144 TCP-LISTEN:{PROXY_PORT},bind=127.0.0.1,fork,reuseaddr,nodelay,forever,interval=1 "
    f"UNIX-CONNECT:{SOCKET_DIR}/proxy.sock & "
    "while :; do sleep infinity; done"
)

Progress = Callable[[str], None]
T = TypeVar("T")


def timed(timings: dict[str, float], name: str, fn: Callable[[], T]) -> T:
    """``fn()``, with its wall time kept as ``timings[name]`` even when it raises."""
    start = time.perf_counter()
    try:
        return fn()
    finally:
        timings[name] = time.perf_counter() - start


def bottle_metadata(bottle_id: str, plan: BottlePlan, *, backend: str, image: str | None, snapshot: str | None,
                    runtime: str | None, owner: str) -> Metadata:
    """A new bottle's state record, the same fields whichever backend runs it."""
    return Metadata(
        id=bottle_id,
        agent=plan.agent,
        bottle=plan.bottle,
        backend=backend,
        cwd=str(plan.cwd) if plan.cwd else None,
        started_in=str(plan.agent_folder) if plan.agent_folder else None,
        label=plan.label,
        color=plan.color,
        image=image,
        snapshot=snapshot,
        runtime=runtime,
        owner=owner,
    )


def provide_agent_files(bottle: Bottle, plan: BottlePlan, options: LaunchOptions) -> None:
    """The agent's prompt, settings and skills; on a resume the snapshot holds the workspace and
    these are the manifest's, written over it."""
    from bot_bottle.provision import agent_files

    if options.resume:
        agent_files.provision_resume_files(bottle, plan.template, options.system_prompt,
                                           supervise=plan.supervise, skills=list(options.skills))
        return
    agent_files.provision_start_files(bottle, plan.template, options.system_prompt, supervise=plan.supervise)
    agent_files.copy_skills(bottle, plan.template, list(options.skills))


@dataclass
class LaunchOptions:
    env: Mapping[str, str] = field(default_factory=dict)
    # Route credentials by token_ref name; they go to the sidecar only, in a mode-600 file.
    credentials: Mapping[str, str] = field(default_factory=dict)
    # Every secret value the DLP engine must know, by name (prompted and host-var env values).
    known_secrets: Mapping[str, str] = field(default_factory=dict)
    # Networks the sidecar joins besides its own (the demo's and tests' private "internet").
    extra_networks: tuple[str, ...] = ()
    memory: str = "4g"
    pids_limit: int = 1024
    image_override: str | None = None  # a committed snapshot to start from
    agent_command: str | None = None
    bottle_id: str | None = None
    # The sidecar's own network gets no route to the internet (``--internal``): for tests and the
    # demo, whose upstreams are containers they run themselves. Never read from a manifest.
    internal_network: bool = field(default_factory=lambda: os.environ.get("BOT_BOTTLE_INTERNAL_NETWORK") == "1")
    # What the agent reads at start: its system prompt and its skills (name, host folder).
    system_prompt: str = ""
    skills: tuple[tuple[str, Path], ...] = ()
    # Extra CA certificates (PEM) the sidecar trusts for upstream TLS: tests and the demo serve
    # fake "internet" hosts with certificates from their own CA. Never read from a manifest.
    upstream_ca_pem: str | None = None
    # Relaunch of a preserved bottle: its state folder exists and must survive a failed launch.
    resume: bool = False
    # TEST ONLY: deliberately weakened bottles (names in WEAKNESSES), so the sandbox-escape suite
    # can show that each of its attacks fails when the protection it probes is missing. Set only
    # from Python by tests; no manifest key, CLI flag or environment variable ever reads it.
    weaken: frozenset[str] = frozenset()


# What `LaunchOptions.weaken` can switch off, each the naive design the bottle avoids.
WEAKNESSES = frozenset({
    "agent-network",      # the agent joins the sidecar's networks (runc: gVisor here runs only --network none)
    "privileged",         # --privileged, no cap drop or no-new-privileges, root without a password (runc)
    "docker-socket",      # the engine's socket mounted into the agent
    "no-limits",          # no memory, CPU or process limit
    "agent-credentials",  # route credentials in the agent's environment too
    "shared-config",      # the sidecar's config and secrets also in the shared socket volume
    "no-dlp",             # routes scan nothing; no known secrets
    "no-injection",       # routes inject no credential (the agent's own Authorization goes through)
    "no-gate",            # the agent's git goes straight to HTTPS-token upstreams, token in its config
    "allow-all",          # the proxy lets every *.example host through on the usual ports
})


# The sidecar bundle's tasks: its daemons bound what the agent can make them start (the proxy
# socket's forwarder and the git-gate serve a bounded number of connections at once), so the
# agent cannot use this up and leave the bundle unable to start a process.
SIDECAR_PIDS_LIMIT = 512

# Agent containers whose last snapshot in this process failed or was refused (``note_snapshot``):
# the teardown of a preserved bottle keeps such a container, as no snapshot holds its work.
_UNSAVED: set[str] = set()


def note_snapshot(container: str, *, saved: bool) -> None:
    """Record whether the snapshot just attempted of ``container`` (an agent container's name) holds its work."""
    if saved:
        _UNSAVED.discard(container)
    else:
        _UNSAVED.add(container)


# Under gVisor (ptrace platform, as Debian's runsc runs here) the container's host cgroup holds
# the sandbox's own threads, not the agent's processes: each guest process runs in a stub process
# with a thread for every sentry thread that ever ran it, stubs are pooled, and sentry threads are
# never given back. The host count grows with guest processes times concurrent I/O (a dozen
# parallel downloads: ~700 host tasks, four dozen: ~3,600) and stays there; when it reaches the
# cgroup's limit the sentry cannot start a thread and the whole sandbox exits. So inside gVisor
# the agent's own tasks are bounded by the sandbox's kernel (RLIMIT_NPROC, which gVisor enforces
# per user, threads included, with a clean EAGAIN), and the host limit is a wider fence around
# the sandbox itself. Measured: a fork bomb held at 512 guest tasks peaked at ~5,200 host tasks
# (~8,100 after four dozen parallel downloads had grown the sentry, and ~6,800 on a busy host);
# held at 1,024 it passed 10,000 and kept climbing. A bombed sandbox that close to its fence
# could also not be removed: `docker rm -f` waited on it for minutes. So where the host's PID
# space caps the fence, the agent's own limit shrinks with it, keeping the 32x margin.
GVISOR_TASK_SHARE = 2       # inside gVisor the agent gets pids_limit // 2 tasks ...
GVISOR_HOST_TASKS = 32      # ... and its sandbox may hold 32 host tasks per agent task ...
HOST_PID_SHARE = 4          # ... but never more than a quarter of the host's PID space
GVISOR_MIN_TASKS = 64       # an agent below this could not run its CLI and a build
PID_MAX = Path("/proc/sys/kernel/pid_max")


def agent_task_limit(options: LaunchOptions, gvisor: bool, pid_max: int | None = None) -> int:
    """How many tasks (processes and threads) the agent itself may run."""
    if not gvisor:
        return options.pids_limit
    tasks = options.pids_limit // GVISOR_TASK_SHARE
    if pid_max:
        tasks = min(tasks, max(pid_max // HOST_PID_SHARE // GVISOR_HOST_TASKS, GVISOR_MIN_TASKS))
    return tasks


def host_pid_max(path: Path = PID_MAX) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None  # not Linux (a client on macOS): the host limit alone bounds the sandbox


def gvisor_fence(options: LaunchOptions, pid_max: int | None) -> int:
    """The host tasks a gVisor agent's sandbox may hold (its host cgroup's pids limit)."""
    tasks = agent_task_limit(options, gvisor=True, pid_max=pid_max)
    fence = tasks * GVISOR_HOST_TASKS
    return max(min(fence, pid_max // HOST_PID_SHARE), tasks) if pid_max else fence


def agent_cpus(engine_cpus: int | None) -> list[str]:
    """`docker create` flags bounding the agent's CPU time: every CPU of the engine's but one.

    Without a quota a busy agent (a runaway loop, a fork bomb, a prompt-injected one mining)
    takes every core: measured on a 2-core host, four busy loops in one agent made a task on the
    host 3.7x slower and the bottle's own proxy answers 25 times slower. One CPU's worth stays
    for the host, its other bottles and this bottle's sidecar. A one-CPU engine gets no quota
    (the agent could not run at all), nor does one whose count is unknown."""
    if engine_cpus is None or engine_cpus < 2:
        return []
    return ["--cpus", str(engine_cpus - 1)]


def agent_limits(options: LaunchOptions, gvisor: bool, pid_max: int | None = None,
                 engine_cpus: int | None = None) -> list[str]:
    """`docker create` flags bounding the agent container's memory, CPU time and tasks."""
    memory = ["--memory", options.memory, *agent_cpus(engine_cpus)]
    if not gvisor:
        return [*memory, "--pids-limit", str(options.pids_limit)]
    tasks = agent_task_limit(options, gvisor, pid_max)
    return [*memory, "--ulimit", f"nproc={tasks}:{tasks}", "--pids-limit", str(gvisor_fence(options, pid_max))]


def _weakened_policy(doc: dict, weaken: frozenset[str]) -> dict:
    routes = []
    for route in doc["routes"]:
        route = dict(route)
        if "no-dlp" in weaken:
            route["dlp"] = {"tokens": False, "secrets": False}
        if "no-injection" in weaken:
            route.pop("auth", None)
        routes.append(route)
    if "allow-all" in weaken:
        routes.append({"host": "*.example", "ports": [22, 53, 80, 443, 8080, 8443], "tls_passthrough": False})
    return {**doc, "routes": routes}


def proxy_env() -> dict[str, str]:
    proxy = f"http://127.0.0.1:{PROXY_PORT}"
    return {
        "HTTP_PROXY": proxy,
        "HTTPS_PROXY": proxy,
        "http_proxy": proxy,
        "https_proxy": proxy,
        "NO_PROXY": "localhost,127.0.0.1",
        "no_proxy": "localhost,127.0.0.1",
        "NODE_EXTRA_CA_CERTS": CA_IN_AGENT,
        "SSL_CERT_FILE": SYSTEM_BUNDLE,
        "REQUESTS_CA_BUNDLE": SYSTEM_BUNDLE,
        "GIT_SSL_CAINFO": SYSTEM_BUNDLE,
    }


# How long `docker rm` is given before the teardown looks whether the engine is still removing
# (then it waits on: removal.py); a gVisor sandbox that ran thousands of tasks can take a while to die.
REMOVE_TIMEOUT = 120.0


def _remove(args: list[str], left: list[str], what: str, *, timeout: float = 60) -> None:
    """One teardown step; an engine that does not answer is noted and the next step still runs."""
    try:
        engine.run(args, timeout=timeout, check=False)
    except engine.DockerError as exc:
        left.append(f"{what} ({exc})")


def _name_taken(exc: engine.DockerError) -> bool:
    """Whether a create failed because the name belongs to an object that already exists."""
    text = f"{exc.stderr}\n{exc}".lower()
    return "already in use" in text or "already exists" in text


# Every bottle has a network of its own, and Docker's default address pools hold about 30 of them.
NO_SUBNET_HINT = ("each running bottle uses one Docker network: stop the bottles (or remove the networks) you no "
                  "longer need (`bot-bottle cleanup` removes those that killed bot-bottle processes left), or give the engine smaller ones, e.g. \"default-address-pools\": "
                  "[{\"base\": \"172.16.0.0/12\", \"size\": 24}] in its daemon.json (then restart it)")


def _no_subnet_left(exc: engine.DockerError) -> bool:
    """Whether a network create failed because the engine's address pools are used up."""
    text = f"{exc.stderr}\n{exc}".lower()
    return any(words in text for words in ("fully subnetted", "non-overlapping ipv4 address pool",
                                           "available predefined network"))


def _write_private(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def _env_file_text(env: Mapping[str, str]) -> str:
    lines = []
    for key, value in env.items():
        if "\n" in value or "\r" in value:
            raise BotBottleError(f"env {key}: multi-line values cannot be passed to a container")
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


class DockerLauncher:
    """One launch. ``launch()`` returns a provisioned ``DockerBottle`` whose ``close()`` tears down."""

    def __init__(
        self,
        plan: BottlePlan,
        options: LaunchOptions,
        state_root: Path,
        *,
        progress: Progress | None = None,
    ) -> None:
        self.plan = plan
        self.options = options
        unknown = sorted(set(options.weaken) - WEAKNESSES)
        if unknown:
            raise BotBottleError(f"LaunchOptions.weaken: unknown {', '.join(unknown)}")
        self.weak = frozenset(options.weaken)
        self._secret_env: dict[str, str] = {}  # written into the bottle, never into its config
        self.names = BottleNames(options.bottle_id or new_id(), plan.agent)
        self.state = StateDir(state_root, self.names.id)
        self.owner = proc.identity()
        self._progress = progress or (lambda message: None)
        self._created: list[tuple[str, str]] = []  # (kind, ref), in creation order
        self._created_names: dict[str, str] = {}  # ref (an id once created) -> name, for messages
        self._torn_down = False
        self._sidecar_watch: SidecarWatch | None = None  # follows the sidecar's start messages
        self._disk_guard: DiskGuard | None = None  # while the agent runs
        # The CA's name in the shared folder for this start only (the sidecar's ``--ca-copy``),
        # and the exec that waits for it in the agent and trusts it (``_begin_ca_trust``).
        self._ca_copy = f"ca-{secrets.token_hex(16)}.crt"
        self._ca_trust: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # ``_created`` is written by the launch's parallel steps
        # The engine's socket for the calls a start waits on, when the CLI talks to it there
        # (``engine_api.usable``, asked as the launch begins); None: the CLI for everything.
        self._api: engine_api.EngineAPI | None = None
        self._state_created = False
        self._marker_at_launch: str | None = None
        self.preserve_reason: str | None = None
        self.timings: dict[str, float] = {}
        # How each wait for the sidecar ended: "followed" (its logs said so) or "polled".
        self.waits: dict[str, str] = {}
        # How the agent came to trust the bottle's CA: "early" (``_begin_ca_trust``) or "after".
        self.ca_trusted: str | None = None

    def _step(self, name: str, fn: Callable[[], T]) -> T:
        return timed(self.timings, name, fn)
    # ------------------------------------------------------------------ labels and metadata
    def labels(self, role: str) -> dict[str, str]:
        labels = {
            LABEL_ID: self.names.id,
            LABEL_AGENT: self.plan.agent,
            LABEL_BOTTLE: self.plan.bottle,
            LABEL_BACKEND: "docker",
            LABEL_ROLE: role,
            LABEL_OWNER: self.owner,
            # Which home's: `cleanup` there removes what a teardown left after its state folder went.
            LABEL_STATE: str(self.state.path),
        }
        if self.plan.label:
            labels[LABEL_LABEL] = self.plan.label
        return labels

    def _metadata(self, image: str) -> Metadata:
        return bottle_metadata(self.names.id, self.plan, backend="docker", image=image,
                               snapshot=self.options.image_override, runtime=self.plan.runtime, owner=self.owner)

    def _open_state(self, metadata: Callable[[], Metadata]) -> None:
        """The state folder: on a resume the kept one, now this user's and with no exit code yet
        (its preserve marker noted, to tell a ``commit`` made during the run); else a new one
        holding ``metadata()``."""
        if self.options.resume:
            self._marker_at_launch = self.state.preserve_marker()
            meta = self.state.read()
            meta.owner = self.owner
            meta.exit_code = None
            self.state.write(meta)
        else:
            self.state.create()
            self._state_created = True
            self.state.write(metadata())

    # ------------------------------------------------------------------ steps
    def _docker(self, args: list[str], *, timeout: float = 120) -> str:
        return engine.run(args, timeout=timeout).stdout.strip()

    def _start_container(self, name: str) -> None:
        """``docker start NAME``, on the engine's socket when the launch found it (``_api``)."""
        if self._api is None:
            self._docker(["start", name])
        else:
            self._api.start(name)

    def _create(self, kind: str, args: list[str], ref: str, *, stdin: bool = False) -> None:
        """``docker ARGS`` making a ``kind`` named ``ref``. A container is made on the engine's
        socket when the launch found it (``_api``) and the argv reads as a body (``create_body``),
        anything else by the CLI. ``stdin``: the container's stdin open for one attach (socket
        only: ``_sidecar_on_socket``)."""
        # Record before running: a create that fails half way must still be rolled back.
        record = (kind, ref)
        with self._lock:
            self._created.append(record)
        try:
            out = self._run_create(kind, args, stdin)
        except engine.DockerError as exc:
            if _name_taken(exc):
                # The name is another launch's (the same bottle run by another process): removing
                # it by name in the rollback would remove that bottle's object.
                with self._lock:
                    self._created.remove(record)
            if kind == "network" and _no_subnet_left(exc):
                raise BotBottleError(
                    f"no network for bottle {self.names.id}: the Docker engine has no address range left ({exc})",
                    hint=NO_SUBNET_HINT,
                ) from None
            raise
        created_id = out.splitlines()[-1].strip() if out else ""
        if kind in ("container", "network") and created_id:
            # Removed by id from here on: Docker lets two networks share a name, and the teardown
            # must only ever remove this launch's.
            with self._lock:
                self._created[self._created.index(record)] = (kind, created_id)
                self._created_names[created_id] = ref

    def _run_create(self, kind: str, args: list[str], stdin: bool) -> str:
        api = self._api
        if api is not None and kind == "container" and (made := create_body.container(args)) is not None:
            name, body = made
            if stdin:
                body.update(AttachStdin=True, OpenStdin=True, StdinOnce=True)
            return api.create_container(name, body)
        if api is not None and kind == "network" and (made := create_body.network(args)) is not None:
            return api.create_network(made[1])
        if api is not None and kind == "volume" and (made := create_body.volume(args)) is not None:
            return api.create_volume(made[1])
        if stdin:
            raise BotBottleError("a container's stdin is handed in only on the engine's socket")
        return self._docker(args)

    def launch(self) -> DockerBottle:
        if self.options.resume:
            self._refuse_over_kept_agent()
        try:
            agent_image = self.options.image_override or self.plan.agent_image
            self._open_state(lambda: self._metadata(agent_image))

            self._progress("checking images; creating the bottle's volume and network")
            # The engine's socket is looked up first (``_api``, a CLI's start): the volume, the
            # network and the image checks then go over it (measured: a volume 1 ms there against
            # 14-48 ms by the CLI, an image check 1 ms against 21 ms, a network 53 ms against 63).
            # Each container waits only for what it needs: the agent (no network) for the volume
            # and its image, the sidecar for the volume, the network and its image. The network is
            # the slowest of them: the agent is created, started and provisioned meanwhile.
            with ThreadPoolExecutor(max_workers=3) as pool:
                self._find_api()
                volume = pool.submit(self._create_volume)
                network = pool.submit(self._create_network)
                made = [volume, network]
                try:
                    sidecar_ref, agent_ref = self._check_images()
                    self._progress("starting the sidecar (egress proxy) and the agent container (no network)")
                    made.append(pool.submit(self._step, "sidecar",
                                            lambda: self._start_sidecar(sidecar_ref, needs=(volume, network))))
                    needs = (volume, network) if "agent-network" in self.weak else (volume,)
                    bottle = self._step("agent", lambda: self._start_agent(agent_ref, needs=needs))
                    self._progress("provisioning the agent")
                    self._step("provision", lambda: self._provision_on_api(bottle))
                finally:
                    wait(made)
            for step in made:
                step.result()
            # Followed from this thread, which outlives the follower: the kernel ends a process
            # started under `die_with_parent` when the *thread* that started it ends.
            self._watch_sidecar()
            self._begin_ca_trust(bottle)
            if self.plan.cwd is not None and not self.options.resume:
                # The one step that can take long: not begun for a sidecar that has failed already
                # (a broken policy ends it within a fraction of a second).
                if self._sidecar_watch is not None:
                    self._sidecar_watch.raise_if_stopped()
                self._step("workspace", lambda: self._copy_workspace(bottle))
            self._progress("waiting for the egress proxy")
            self._step("proxy-ca", lambda: self._trust_proxy_ca(bottle))
            self._step("proxy-ready", lambda: self._wait_sidecar_ready(self.names.sidecar_container))
            self._guard_disk()
            return bottle
        except BaseException as caught:
            failure = self._stopped_while_starting(caught) or caught
            # Ends the sidecar follower too.
            teardown_after_failure(failure, lambda: self.teardown(launch_failed=True))
            if failure is caught:
                raise
            raise failure from caught

    def _stopped_while_starting(self, caught: BaseException) -> BotBottleError | None:
        """The error to show when the launch failed because its agent container was stopped
        under it (`bot-bottle stop` or `docker stop`/`kill` while the bottle starts): the step it
        broke fails with a bare exit status (137, 143) or an empty error, which names neither the cause nor that nothing
        is kept. None when the container still runs, or the failure is an interrupt or a bug."""
        if not isinstance(caught, BotBottleError):
            return None
        with self._lock:
            ref = next((ref for kind, ref in self._created if kind == "container"
                        and self._created_names.get(ref, ref) == self.names.agent_container), None)
        if ref is None:
            return None
        try:
            found = engine.run(["inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", ref],
                               timeout=30, check=False)
        except engine.DockerError:
            return None  # an engine that does not answer: the first error says as much
        running, _, code = found.stdout.strip().partition(" ")
        if found.returncode != 0 or running != "false":
            return None
        # A resume's state folder (and snapshot) outlive a failed launch; a new bottle's do not.
        kept = ("it stays as it was for `bot-bottle resume`" if not self._state_created
                else "the bottle is removed, and nothing of it is kept for `resume`")
        return BotBottleError(
            f"bottle {self.names.id} was stopped while it was starting: its agent container exited "
            f"(code {code or '?'}) before its agent ran ({caught}); {kept}",
            hint="`bot-bottle stop`, `docker stop` or `docker kill` ends a starting bottle this way; "
                 + ("start it again" if self._state_created else f"`bot-bottle resume {self.names.id}` again"),
        )

    def _check_images(self) -> tuple[str, str]:
        from bot_bottle import images

        sidecar_ref = self._step("sidecar-image", lambda: self._ensure_image(images.sidecar_image()))
        if self.options.image_override is None:
            agent_ref = self._step(
                "agent-image",
                lambda: self._ensure_image(images.agent_image(self.plan.template, self.plan.agent_dockerfile)),
            )
        else:
            agent_ref = self.options.image_override
            if self._api is None or not self._api.image_exists(agent_ref, timeout=30):
                engine.run(["image", "inspect", agent_ref], timeout=30)
        return sidecar_ref, agent_ref

    def _ensure_image(self, spec: ImageSpec) -> str:
        """``images.ensure_image``, asked first on the engine's socket: an image found there needs
        no CLI call; one not found (or any doubt) goes the CLI's way, which builds it if missing."""
        if self._api is not None and self._api.image_exists(spec.ref):
            return spec.ref
        from bot_bottle import images

        return images.ensure_image(spec)

    def _create_volume(self) -> None:
        self._create(
            "volume",
            ["volume", "create", *label_args(self.labels("socket")), self.names.socket_volume],
            self.names.socket_volume,
        )

    def _find_api(self) -> None:
        self._api = engine_api.usable()

    def _create_network(self) -> None:
        self._create(
            "network",
            [
                "network", "create", "--driver", "bridge",
                *(["--internal"] if self.options.internal_network else []),
                *label_args(self.labels("network")), self.names.network,
            ],
            self.names.network,
        )

    def _sidecar_on_socket(self, args: list[str]) -> bool:
        """Whether the sidecar is made and started on the engine's socket, its config handed in on
        its stdin at its start (``_start_sidecar``), rather than by the CLI and an exec after."""
        return self._api is not None and create_body.container(args) is not None

    def _start_sidecar(self, image: str, *, needs: Sequence[Future[None]] = ()) -> None:
        name = self.names.sidecar_container
        files = self._sidecar_files()  # before anything is created: a bad grant fails here
        for made in needs:
            made.result()
        args = self._sidecar_args(image, "--config-arrives")
        stdin = self._sidecar_on_socket(args)
        if stdin:
            args = self._sidecar_args(image, "--config-stdin")
        self._create("container", args, name, stdin=stdin)
        self._prepare_sidecar(name, files)
        if not stdin:
            self._start_container(name)
            self._hand_in_config(name, files)
            return
        api = self._api
        assert api is not None
        # Attached before the start, as `docker run -i` does: its init reads the config from
        # stdin (``--config-stdin``) and nothing of it is on an argv or in a create body.
        attached = api.attach_stdin(name)
        try:
            api.start(name)
        except BaseException:
            attached.close()
            raise
        api.send_stdin(attached, self._config_document(files))

    def _sidecar_args(self, image: str, config_flag: str) -> list[str]:
        """The sidecar's `docker create` argv (``create_body`` reads the same one for the socket)."""
        return [
            "create",
            "--name",
            self.names.sidecar_container,
            "--network",
            self.names.network,
            "--network-alias",
            "sidecar",
            "--volume",
            f"{self.names.socket_volume}:{SOCKET_DIR}",
            # The policy and the secrets, handed in at or after the start (on stdin, or
            # ``_hand_in_config``): in memory, never in the container's writable layer on the
            # host's disk.
            "--tmpfs",
            f"{SIDECAR_CONFIG_DIR}:rw,nosuid,nodev,noexec,size=16m,mode=0711",
            "--cap-drop",
            "ALL",
            # Only for its init: to hand the daemons their own accounts and files, and stop them
            # (a daemon switched to a non-root account holds no capability).
            *(arg for cap in SIDECAR_INIT_CAPS for arg in ("--cap-add", cap)),
            "--security-opt",
            "no-new-privileges",
            "--memory",
            "512m",
            "--pids-limit",
            str(SIDECAR_PIDS_LIMIT),
            # Its decisions go to stdout too: bounded on the host's disk, as egress.jsonl is.
            "--log-driver",
            "json-file",
            "--log-opt",
            "max-size=16m",
            "--log-opt",
            "max-file=2",
            *label_args(self.labels("sidecar")),
            image,
            config_flag,
            "--ca-copy",
            self._ca_copy,
        ]

    def _prepare_sidecar(self, name: str, files: Mapping[str, tuple[str, int]]) -> None:
        """What a created sidecar gets before its start: test-only files, more networks."""
        if "shared-config" in self.weak or self.options.upstream_ca_pem:
            with scratch.private_dir() as tmp:
                folder = Path(tmp)
                if "shared-config" in self.weak:
                    config = folder / "config"
                    config.mkdir(mode=0o700)
                    for relative, (text, _mode) in files.items():
                        (config / relative).parent.mkdir(mode=0o700, exist_ok=True)
                        _write_private(config, relative, text)
                    self._docker(["cp", f"{config}/.", f"{name}:{SOCKET_DIR}/config"])
                if self.options.upstream_ca_pem:
                    # The container is created, not started: extend its trust store before the proxy reads it.
                    bundle = folder / "ca-certificates.crt"
                    self._docker(["cp", f"{name}:{SYSTEM_BUNDLE}", str(bundle)])
                    with bundle.open("a", encoding="utf-8") as fh:
                        fh.write("\n" + self.options.upstream_ca_pem.strip() + "\n")
                    self._docker(["cp", str(bundle), f"{name}:{SYSTEM_BUNDLE}"])
        for network in self.options.extra_networks:
            self._docker(["network", "connect", network, name])

    @staticmethod
    def _config_document(files: Mapping[str, tuple[str, int]]) -> bytes:
        """The sidecar's config as its init reads it (``init.receive_config``)."""
        doc = {"files": {relative: {"mode": mode, "text": text} for relative, (text, mode) in files.items()}}
        return json.dumps(doc).encode("utf-8")

    def _sidecar_files(self) -> dict[str, tuple[str, int]]:
        """The sidecar's config by name in its folder: (text, mode). Secrets among them."""
        services = sidecar_config.internal_services(self.plan)
        doc = sidecar_config.policy(self.plan, services)
        # Routes the operator approved while this bottle ran before (resume keeps them).
        doc = sidecar_config.with_approved_routes(doc, sidecar_config.read_approved_routes(self.state.path))
        doc = _weakened_policy(doc, self.weak) if self.weak else doc
        known = {} if "no-dlp" in self.weak else self.options.known_secrets
        secrets = sidecar_config.secrets(self.options.credentials, known)
        files = {
            sidecar_config.POLICY_FILE: (json.dumps(doc, indent=2), 0o600),
            sidecar_config.SECRETS_FILE: (json.dumps(secrets), 0o600),
        }
        if self.plan.repos:
            files.update(self._gate_files())
        return files

    def _hand_in_config(self, name: str, files: Mapping[str, tuple[str, int]]) -> None:
        """Write the config into the started sidecar's tmpfs, through `docker exec -i` (stdin,
        never an argv); its init waits for it (``--config-arrives``) before anything reads it."""
        doc = self._config_document(files)
        part, drop = f"{SIDECAR_CONFIG_DIR}/{CONFIG_DROP}.part", f"{SIDECAR_CONFIG_DIR}/{CONFIG_DROP}"
        argv = ["sh", "-c", f"umask 077 && cat > {part} && mv {part} {drop}"]
        api = self._api
        if api is None:
            engine.run(["exec", "-i", name, *argv], input=doc.decode("utf-8"), timeout=120)
            return
        result = api.exec(name, argv, stdin=doc, timeout=120)
        if result.returncode != 0:
            first = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise engine.DockerError(f"`docker exec` failed: {first}", returncode=result.returncode,
                                     stderr=result.stderr)

    def _watch_sidecar(self) -> None:
        """Follow the started sidecar's messages (``docker logs`` replays them from its start)."""
        docker = engine.docker_binary()
        if docker is not None:
            try:
                self._sidecar_watch = SidecarWatch.follow(docker, self.names.sidecar_container)
            except OSError:
                self._sidecar_watch = None  # the waits poll instead

    def _stop_watching_sidecar(self) -> None:
        watch, self._sidecar_watch = self._sidecar_watch, None
        if watch is not None:
            watch.close()

    def _gate_files(self) -> dict[str, tuple[str, int]]:
        """The git-gate's config and upstream credentials: only ever inside the sidecar, mode 600."""
        from bot_bottle.provision.git import GateRepo, gate_files

        repos = [
            GateRepo(
                r.name, r.url,
                ssh_key=r.credential_ref if r.auth == "ssh-key" else None,
                known_hosts=r.known_hosts,
                token_ref=r.credential_ref if r.auth == "https-token" else None,
                username=r.username,
            )
            for r in self.plan.repos
        ]
        files = gate_files(repos, self.plan.git_user, environ=self.options.credentials)
        out = {"git-gate.json": (files.config_json(), 0o600)}
        out.update({f"git-gate/{name}": (content, 0o600) for name, content in files.credentials.items()})
        return out

    def _wait_sidecar_ready(self, name: str) -> None:
        """The last wait of a start (the micro-VM backend's bundle too): the follower ends here."""
        try:
            self._wait_sidecar_file(name, "ready", "ready", "ready")
        finally:
            self._stop_watching_sidecar()

    def _wait_sidecar_file(self, name: str, filename: str, event: str, what: str,
                           timeout: float = SIDECAR_START_TIMEOUT) -> None:
        """Wait for the sidecar to publish ``filename`` in the shared folder; fail fast if it stops.

        The sidecar says ``event`` on its stderr once the file is there: followed through its
        logs when the engine can stream them (``SidecarWatch``), else the file is polled for.
        The sidecar gives each of its daemons a minute to come up (its own fail-closed limit);
        waiting less here would give up on a sidecar that is slow only because the host is busy.
        """
        watch = self._sidecar_watch
        if watch is not None and watch.wait_for(event, what, timeout):
            self.waits[event] = "followed"
            return
        self.waits[event] = "polled"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = engine.run(["exec", name, "test", "-e", f"{SOCKET_DIR}/{filename}"], timeout=10, check=False)
            if result.returncode == 0:
                return
            state = engine.run(["inspect", "-f", "{{.State.Running}}", name], timeout=10, check=False)
            if state.stdout.strip() == "false":
                logs = engine.run(["logs", "--tail", "20", name], timeout=10, check=False)
                tail = (logs.stdout + logs.stderr).strip()
                raise BotBottleError(f"the sidecar stopped during start:\n{tail}")
            time.sleep(0.1)
        raise BotBottleError(f"the sidecar was not {what} within {timeout:g} s")

    def agent_env(self) -> tuple[dict[str, str], dict[str, str]]:
        """(plain env for the container's config, secret env for the file on its tmpfs)."""
        plain, secret = split_agent_env(self.options.env, self.plan.secret_env_names, self.options.known_secrets)
        plain.update(proxy_env())
        if "agent-credentials" in self.weak:
            plain.update(self.options.credentials)
        return plain, secret

    @property
    def gvisor(self) -> bool:
        """Whether the agent runs under gVisor (the weaknesses that need runc's network or root do not)."""
        return self.plan.runtime == "runsc" and not self.weak & {"agent-network", "privileged"}

    @property
    def agent_tasks(self) -> int:
        return agent_task_limit(self.options, self.gvisor, host_pid_max())

    def _engine_cpus(self) -> int | None:
        """``engine.engine_cpus``, its ``docker info`` read on the engine's socket when this process
        has none yet (measured: 1-5 ms there against 30-90 ms by the CLI, on the agent's path; the
        disk guard at the start's end reads the same answer)."""
        if self._api is not None and not engine.has_info():
            engine.remember_info(self._api.info())
        return engine.engine_cpus()

    def _start_agent(self, image: str, *, needs: Sequence[Future[None]] = ()) -> DockerBottle:
        name = self.names.agent_container
        for made in needs:
            made.result()
        _UNSAVED.discard(name)  # a resumed bottle's new container: nothing was attempted of it yet
        env, self._secret_env = self.agent_env()
        weak = self.weak
        gvisor = self.gvisor
        runtime = ["--runtime", "runsc"] if gvisor else []
        confined = (["--privileged"] if "privileged" in weak
                    else ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"])
        limits = [] if "no-limits" in weak else agent_limits(self.options, gvisor, host_pid_max(), self._engine_cpus())
        engine_socket = ["--volume", "/var/run/docker.sock:/var/run/docker.sock"] if "docker-socket" in weak else []
        with scratch.private_dir() as tmp:
            env_file = _write_private(Path(tmp), "agent.env", _env_file_text(env))
            args = [
                "create",
                "--name",
                name,
                "--hostname",
                self.names.slug,
                "--network",
                self.names.network if "agent-network" in weak else "none",
                *runtime,
                "--init",
                *confined,
                *limits,
                *engine_socket,
                # PID 1's output (the forwarder's) is all that reaches this log, but the agent can
                # write to PID 1's stdout too: unbounded, that fills the host's disk.
                "--log-driver",
                "json-file",
                "--log-opt",
                f"max-size={AGENT_LOG_MAX}",
                "--log-opt",
                "max-file=1",
                "--volume",
                f"{self.names.socket_volume}:{SOCKET_DIR}",
                # Secret env lives here (see secret_env): memory, agent user only, not committed.
                "--tmpfs",
                f"{SECRET_ENV_DIR}:rw,nosuid,nodev,noexec,size=1m,mode=0700,uid=1000,gid=1000",
                "--env-file",
                str(env_file),
                "--user",
                "node",
                "--workdir",
                WORKDIR,
                *label_args(self.labels("agent")),
                "--entrypoint",
                "sh",
                image,
                "-c",
                AGENT_ENTRY,
            ]
            self._create("container", args, name)
            # The env file is gone when this block ends, right after create.
        if "agent-network" in weak:
            for network in self.options.extra_networks:
                self._docker(["network", "connect", network, name])
        self._start_container(name)
        if "privileged" in weak:
            self._docker(["exec", "-u", "root", name, "passwd", "-d", "root"])
        return DockerBottle(
            container=name,
            sidecar=self.names.sidecar_container,
            teardown=self.teardown,
            agent_command=self.options.agent_command or self.plan.agent_command,
        )

    def _provision_on_api(self, bottle: DockerBottle) -> None:
        """``_provision`` with its commands on the engine's socket when the launch found it
        (measured: each exec's CLI client start, 20-60 ms on a busy host, is off the start's path)."""
        with bottle.provisioning_on(self._api):
            self._provision(bottle)

    def _provision(self, bottle: DockerBottle) -> None:
        from bot_bottle.provision import git

        if self._secret_env:
            write_secret_env(bottle, self._secret_env, SECRET_ENV_FILE)
        # Identity and the gate rewrites: set even with no repos, so commits carry the identity.
        git.configure_git(bottle, [] if "no-gate" in self.weak else self.plan.repos, self.plan.git_user,
                          unless_set=default_git_fields(self.plan))
        if "no-gate" in self.weak:
            self._git_without_gate(bottle)
        provide_agent_files(bottle, self.plan, self.options)

    def _copy_workspace(self, bottle: DockerBottle) -> None:
        from bot_bottle.provision import workspace

        assert self.plan.cwd is not None
        workspace.copy_in(bottle, self.plan.cwd, WORKDIR, progress=self._progress)

    def _begin_ca_trust(self, bottle: DockerBottle) -> None:
        """Start the exec that trusts the bottle's CA in the agent once the sidecar publishes it.

        Started once the agent is provisioned and the sidecar runs, while the sidecar still makes
        its CA (the last step of the launch's critical path), it waits inside the agent for this
        start's own copy of the certificate (``--ca-copy``): the exec's own start is behind it by
        then. Not earlier: each look for the file starts a process in the agent, CPU time the
        sidecar's start needs on a small host. Its output is not read until
        it ends (a line at most: what failed, which the blocking way after it says again).
        """
        from bot_bottle.proc import die_with_parent
        from bot_bottle.provision import ca

        script = ca.wait_then_trust_script(f"{SOCKET_DIR}/{self._ca_copy}", CA_IN_AGENT, SIDECAR_START_TIMEOUT)
        try:
            # From the launch's own thread: the client dies with it (``die_with_parent``).
            self._ca_trust = subprocess.Popen(die_with_parent(bottle.exec_argv(script, user="root")),
                                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT, process_group=0)
        except OSError:
            self._ca_trust = None  # trusted after the CA is published instead (``_trust_proxy_ca``)

    def _end_ca_trust(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` for the early CA exec: its status, or None (none, or unfinished)."""
        proc, self._ca_trust = self._ca_trust, None
        if proc is None:
            return None
        try:
            proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return None
        return proc.returncode

    def _stop_ca_trust(self) -> None:
        proc, self._ca_trust = self._ca_trust, None
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            proc.communicate()

    def _trust_proxy_ca(self, bottle: DockerBottle) -> None:
        from bot_bottle.provision import ca

        self._wait_sidecar_file(self.names.sidecar_container, "ca.crt", "ca-published", "publishing its CA")
        if self._end_ca_trust(CA_TRUST_TIMEOUT) == 0:
            self.ca_trusted = "early"
            return
        # The early exec could not do it (a client that could not start, a bottle without a
        # shell's tools): the way that needs nothing of it, with its own error if it fails.
        self.ca_trusted = "after"
        ca.trust_bottle_ca(bottle, CA_IN_VOLUME, CA_IN_AGENT)

    def _git_without_gate(self, bottle: DockerBottle) -> None:
        """Weakened bottles only: HTTPS-token repos reached directly, the token in the agent's git config."""
        from urllib.parse import quote, urlsplit

        lines = []
        for repo in self.plan.repos:
            token = self.options.credentials.get(repo.credential_ref or "")
            if repo.auth == "https-token" and token:
                parts = urlsplit(repo.url)
                user = quote(repo.username or "x-access-token")
                lines += [f'[url "{parts.scheme}://{user}:{quote(token)}@{parts.netloc}{parts.path}"]',
                          f"\tinsteadOf = {repo.url}",
                          f'[http "{parts.scheme}://{parts.netloc}/"]', '\tproxy = ""',
                          "\tsslVerify = false"]  # the naive design trusts whatever answers
        with scratch.private_dir() as tmp:
            include = _write_private(Path(tmp), "gitconfig-direct", "\n".join(lines) + "\n")
            bottle.cp_in(include, "/home/node/.gitconfig-direct")
        bottle.exec("git config --global include.path /home/node/.gitconfig-direct")

    # ------------------------------------------------------------------ teardown
    def _save_egress_log(self) -> None:
        """Keep the proxy's decisions with a preserved bottle, for `bot-bottle logs ID` later."""
        egress_log.copy_out(self.names.sidecar_container, self.state.path / EGRESS_LOG_NAME)

    def teardown(self, *, launch_failed: bool = False) -> None:
        """Remove every Docker object of this bottle, then keep or drop its state folder.

        After a failed launch only a state folder this launch created is removed (a resumed
        bottle's saved state survives). After a run, ``preserve_reason`` decides.
        """
        if self._torn_down:
            return
        self._torn_down = True
        with interrupts.deferred():  # a second Ctrl-C must not leave half a bottle behind
            self._remove_all(launch_failed)

    def _guard_disk(self) -> None:
        """Freeze the agent while the engine's disk is down to its reserve (``disk_guard``)."""
        root = snapshot_room.data_root()
        if root is not None:
            self._disk_guard = DiskGuard(self.names.agent_container, root, self._tell_operator)
            self._disk_guard.start()

    def _tell_operator(self, message: str) -> None:
        # Over whatever the agent shows: its terminal may be raw, so each line ends in CR LF.
        sys.stderr.write(f"\r\nbot-bottle: bottle {self.names.id} {message}\r\n")
        sys.stderr.flush()

    def _remove_all(self, launch_failed: bool) -> None:
        self._stop_watching_sidecar()
        self._stop_ca_trust()
        guard, self._disk_guard = self._disk_guard, None
        if guard is not None:
            guard.stop()
        left: list[str] = []  # what an engine that stopped answering kept; the rest goes regardless
        if self.preserve_reason and not launch_failed and self.state.path.is_dir():
            try:
                self._save_egress_log()
            except engine.DockerError as exc:
                left.append(f"its egress log was not saved ({exc})")
        kept = self._keep_unsaved_agent(launch_failed)
        containers = [ref for kind, ref in self._created if kind == "container" and ref not in kept]
        if containers:
            why = removal.remove_containers(containers, timeout=REMOVE_TIMEOUT, waiting=removal.Waiting(
                self._say_removal, stop_waiting=lambda: interrupts.held() is not None, named=self._named))
            if why is not None:
                left.append(f"containers {', '.join(map(self._named, containers))} ({why})")
        for kind, ref in reversed(self._created):
            if kind == "network":
                _remove(["network", "rm", ref], left, f"network {self._named(ref)}")
            elif kind == "volume" and not kept:  # the kept agent still mounts its socket volume
                _remove(["volume", "rm", "-f", ref], left, f"volume {ref}")
        self._finish_state(launch_failed, left)
        if left:
            raise BotBottleError(
                f"bottle {self.names.id} was not wholly torn down: " + "; ".join(left),
                hint="once `docker info` answers again, `bot-bottle cleanup` removes what is left",
            )

    def _say_removal(self, message: str) -> None:
        try:
            sys.stderr.write(f"bot-bottle: bottle {self.names.id}: {message}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass  # the terminal is gone (SIGHUP): the removal goes on regardless

    def _named(self, ref: str) -> str:
        return self._created_names.get(ref, ref)

    def _refuse_over_kept_agent(self) -> None:
        """Before a resume touches anything: the bottle's agent container must be gone. The
        teardown keeps it, stopped, when the bottle's last snapshot failed (``_keep_unsaved_agent``),
        and its work is then in no snapshot: a resume would start from an older one, and could
        not take the container's name anyway."""
        name = self.names.agent_container
        found = engine.run(["container", "inspect", "--format", "{{.Id}}", name], timeout=30, check=False)
        if found.returncode != 0:
            return
        why = ("it was kept when the bottle's last snapshot failed, and holds work no snapshot has"
               if self.state.kept_agent() == name else "a teardown could not remove it")
        raise BotBottleError(
            f"bottle {self.names.id}'s agent container {name} is still there: {why}",
            hint=(f"`bot-bottle cleanup` takes its snapshot again and removes it once saved; or copy the work "
                  f"out with `docker cp {name}:{WORKDIR} DIR`, remove it with `docker rm -f {name}`, "
                  f"then `bot-bottle resume {self.names.id}` starts from the last snapshot"),
        )

    def _keep_unsaved_agent(self, launch_failed: bool) -> set[str]:
        """The agent container, stopped, when its bottle is preserved but its snapshot failed.

        The snapshot at the end of a run can fail, or be refused when it would not fit on the
        engine's disk (``snapshot_room``), and an agent can make it so on purpose by writing a huge
        file. Removing the container then would lose the operator's work with it.
        """
        agent = next((ref for kind, ref in self._created
                      if kind == "container" and self._named(ref) == self.names.agent_container), None)
        if agent is None or launch_failed or not self.preserve_reason or self.names.agent_container not in _UNSAVED:
            return set()
        name = self.names.agent_container
        try:
            engine.run(["stop", "-t", "2", agent], timeout=REMOVE_TIMEOUT, check=False)
        except engine.DockerError:
            pass  # kept all the same; a stuck engine is reported by the steps that follow
        self.state.keep_agent(name)
        self.preserve_reason = (
            f"{self.preserve_reason}; its container {name} is kept, stopped, with the work no snapshot "
            f"holds: `bot-bottle cleanup` takes its snapshot again (and removes it once saved), "
            f"`docker cp {name}:{WORKDIR} DIR` copies the work out"
        )
        return {agent}

    def _finish_state(self, launch_failed: bool, left: list[str]) -> None:
        if launch_failed:
            if self._state_created:
                self.state.remove()
            return
        if self.preserve_reason:
            if self.state.path.is_dir():
                self.state.preserve(self.preserve_reason)
            return
        marker = self.state.preserve_marker()
        if marker is not None and marker != self._marker_at_launch:
            return  # committed while it ran: the snapshot is what the next resume needs
        snapshot = None
        try:
            snapshot = self.state.read().snapshot
        except BotBottleError:
            pass
        self.state.remove()
        if snapshot:
            _remove(["rmi", snapshot], left, f"image {snapshot}")
        self._remove_own_images(left)

    def _remove_own_images(self, left: list[str]) -> None:
        """Every image left with this bottle's id: earlier snapshots a container still ran on
        when they were replaced, a capability build's download stage. They hold what the agent
        wrote, and nothing will start from them again."""
        try:
            found = engine.run(["images", "-a", "-q", "--filter", f"label={LABEL_ID}={self.names.id}"],
                               timeout=60, check=False).stdout.split()
        except engine.DockerError as exc:
            left.append(f"images of this bottle ({exc})")
            return
        if found:
            _remove(["rmi", "-f", *sorted(set(found))], left, "images of this bottle")
