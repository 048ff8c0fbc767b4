"""A bottle's life on the host: resolve secrets, launch, run the agent, then tear down or preserve.

Shared by ``start``, ``resume`` and the Python API. Secret values are read here and handed only
to the launcher (env file, sidecar secret file); they never reach an argv, a log or an error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from pathlib import Path

from bot_bottle.backend.docker import engine
from bot_bottle.backend import registry
from bot_bottle.backend.docker.launch import LaunchOptions
from bot_bottle import preflight
from bot_bottle.errors import BotBottleError, teardown_after_failure
from bot_bottle.manifest import Manifest
from bot_bottle.manifest import env as env_mod
from bot_bottle.manifest.model import EnvEntry
from bot_bottle.plan import BottlePlan
from bot_bottle import interrupts, offline_alarm, providers, pty_relay
from bot_bottle.offline_alarm import SidecarAlarm
from bot_bottle.proc import ALIVE, die_with_parent, owner_state
from bot_bottle.screen_filter import ScreenFilter
from bot_bottle.provision import agent_files
from bot_bottle.state import RunLock, StateDir


@dataclass
class RunResult:
    bottle_id: str
    exit_code: int
    preserved: bool
    preserve_reason: str | None
    restarts: int = 0  # relaunches after an approved capability change
    # What the user must be told of how the run ended, beyond its exit code (an out-of-memory
    # end: what happened, what was kept, how to go on), or None.
    notice: str | None = None


def terminal_prompt(entry: EnvEntry) -> str:
    """Ask for a ``?prompt`` value without echo."""
    return getpass.getpass(f"{entry.value} ({entry.name}): ")


def collect_secrets(
    manifest: Manifest,
    plan: BottlePlan,
    environ: Mapping[str, str],
    prompt: env_mod.PromptFn | None,
) -> tuple[env_mod.ResolvedEnv, dict[str, str]]:
    """Resolve the agent's env and the route credentials; refuse when any is missing."""
    missing = [name for name in plan.credential_refs if not environ.get(name)]
    if missing:
        asked = credential_sources(manifest)
        named = [f"{name} ({' and '.join(asked[name])})" if asked.get(name) else name for name in missing]
        # The agent's ${VAR}s unset too are said now, not at the next try.
        unset_env = [f"{e.value} (env.{e.name} at {e.origin})" for e in manifest.bottle.env
                     if e.kind == "host" and e.value not in environ]
        raise BotBottleError(
            "credentials the proxy must inject are not set in your environment: " + ", ".join(named)
            + ("; the agent's env needs too: " + ", ".join(unset_env) if unset_env else ""),
            hint="export them before starting (only the sidecar will ever hold the credentials), or change "
                 "the manifest where each is asked for",
        )
    resolved = env_mod.resolve(manifest.bottle.env, environ, prompt)
    credentials = {name: environ[name] for name in plan.credential_refs}
    return resolved, credentials


def credential_sources(manifest: Manifest) -> dict[str, list[str]]:
    """Where the manifest asks for each host variable the proxy or the git-gate injects, by name:
    the key and the file and line (``agent_provider.auth_token at FILE:LINE``), so a missing one
    is fixed where it is asked for (a parent bottle's, through ``extends``, included)."""
    bottle = manifest.bottle
    asked: dict[str, list[str]] = {}

    def add(name: str, where: str) -> None:
        asked.setdefault(name, [])
        if where not in asked[name]:
            asked[name].append(where)

    provider = bottle.provider
    if provider.auth_token:
        at = f" at {provider.auth_token_origin}" if provider.auth_token_origin else f" in {bottle.path}"
        add(provider.auth_token, "agent_provider.auth_token" + at)
    else:
        from bot_bottle.plan import contrib_dir

        info = providers.resolve(bottle.template, contrib_dir(manifest))
        if info is not None and info.api_host and info.default_auth_token:
            add(info.default_auth_token, f"the {bottle.template} provider's default, as {bottle.path} sets no "
                                         "agent_provider.auth_token")
    for route in bottle.routes:
        if route.auth is not None:
            add(route.auth.token_ref, f"{route.key}.auth at {route.origin}")
    for repo in bottle.repos:
        if repo.token_ref:
            add(repo.token_ref, f"git-gate.repos.{repo.name}.token_ref at {repo.origin}")
    return asked


# What the agent sees where its provider credential would be (see providers.PLACEHOLDER: the CLI
# settings written into the bottle name it too, so it is defined once, there).
PLACEHOLDER = providers.PLACEHOLDER


def provider_placeholders(plan: BottlePlan, manifest: Manifest) -> dict[str, str]:
    info = providers.info(plan.template)
    if info is None or not info.default_auth_token:  # a plugin agent may need no API credential
        return {}
    given = {entry.name for entry in manifest.bottle.env}
    return {} if info.default_auth_token in given else {info.default_auth_token: PLACEHOLDER}


def headless_args(plan: BottlePlan, prompt: str) -> list[str]:
    info = providers.info(plan.template)
    if info is None:
        return [prompt]
    return info.headless_args(prompt)


def snapshot(bottle_id: str, container: str, state_root: Path, repo: str = "bot-bottle/snapshot") -> str:
    """Commit the agent container to an image the next ``resume`` starts from.

    The image names the state folder it belongs to, so ``cleanup`` run under another HOME never
    mistakes it for an orphan while that folder exists.
    """
    from bot_bottle.backend.docker.launch import note_snapshot

    ref = f"{repo}:{bottle_id}"
    # One snapshot at a time: the room check is only true while no other commit writes to the
    # same disk (several bottles stopped at once would each fit, and together fill it), and two
    # commits of one bottle would each keep the tag's previous image, leaving one behind.
    with _snapshot_lock():
        try:
            _commit(bottle_id, container, state_root, ref)
        except BaseException:
            note_snapshot(container, saved=False)  # the teardown keeps the container, and its work
            raise
        note_snapshot(container, saved=True)
    return ref


def _commit(bottle_id: str, container: str, state_root: Path, ref: str) -> None:
    """``docker commit`` of ``container`` to ``ref``, when it fits on the engine's disk."""
    from bot_bottle.backend.docker import snapshot_room

    snapshot_room.check(container)
    blank = [a for name in launch_env_names(container) for a in ("--change", f"ENV {name}=")]
    previous = _image_id(ref)
    engine.run(
        ["commit", "--pause=false",
         "--change", f"LABEL bot-bottle.id={bottle_id}",
         "--change", f"LABEL bot-bottle.state={state_root / bottle_id}",
         *blank,
         container, ref],
        timeout=600,
    )
    if previous is not None and previous != _image_id(ref):
        # The tag moved on: the snapshot it named held whatever the agent had written then.
        # One a container still runs on stays (the teardown removes it with the bottle).
        engine.run(["rmi", previous], timeout=120, check=False)


def snapshot_lock_path() -> Path:
    """The lock every snapshot takes, beside the image builds' (``images.cache_dir``)."""
    from bot_bottle import images

    return images.cache_dir() / "locks" / "snapshot.lock"


@contextlib.contextmanager
def _snapshot_lock() -> Iterator[None]:
    """``snapshot_lock_path`` held; without it when the cache folder cannot be written (a
    read-only home must not cost the bottle its snapshot)."""
    from bot_bottle import images

    path = snapshot_lock_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    except OSError:
        yield
        return
    with images.file_lock(path):
        yield


def _image_id(ref: str) -> str | None:
    out = engine.run(["image", "inspect", "-f", "{{.Id}}", ref], timeout=60, check=False)
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def known_secret_values(env_secrets: Mapping[str, str], credentials: Mapping[str, str]) -> dict[str, str]:
    """Every secret value DLP must know, by name: the agent's secret env values and the route
    credentials (by ``token_ref``). An env variable named like a credential but holding another
    value keeps an entry of its own (``NAME.env``): one name for two values must not drop either
    from DLP."""
    out = dict(env_secrets)
    for name, value in credentials.items():
        if name in out and out[name] != value:
            out[f"{name}.env"] = out.pop(name)
        out[name] = value
    return out


def launch_env_names(container: str) -> list[str]:
    """Names of the env variables the launch gave ``container`` (beyond its image's own).

    ``docker commit`` copies the container's env into the image's config. Secret values never
    are there (they live on a tmpfs, see ``backend.secret_env``); the rest the launch set is
    blanked in the snapshot all the same, and a resume provides it again.
    """
    found = json.loads(engine.run(["inspect", container], timeout=60).stdout or "[]")
    if not found:
        return []
    container_env = (found[0].get("Config") or {}).get("Env") or []
    images = json.loads(engine.run(["image", "inspect", str(found[0].get("Image", ""))], timeout=60).stdout or "[]")
    image_env = ((images[0].get("Config") or {}).get("Env") or []) if images else []
    return env_added(container_env, image_env)


def env_added(container_env: list[str], image_env: list[str]) -> list[str]:
    """Variables set in ``container_env`` to something other than in ``image_env``, sorted."""
    base = set(image_env)
    names = {entry.split("=", 1)[0] for entry in container_env if entry not in base and "=" in entry}
    return sorted(n for n in names if n and n.replace("_", "").isalnum())


def run_bottle(
    manifest: Manifest,
    plan: BottlePlan,
    *,
    state_root: Path,
    environ: Mapping[str, str],
    prompt_fn: env_mod.PromptFn | None,
    headless_prompt: str | None = None,
    tty: bool = True,
    options: LaunchOptions | None = None,
    progress: Callable[[str], None] | None = None,
    on_launched: Callable[[Any, Any], None] | None = None,
    command: list[str] | None = None,
    preserve: bool = False,
    capability_build: Any = None,
) -> RunResult:
    """Launch, run the agent to its end, then tear down (preserving state when it should).

    When the agent ends because an approved capability change asked for a restart (the state's
    ``restart`` marker, see ``registry.DockerBackend.request_restart``), the bottle is
    snapshotted (the approved packages added again on top), torn down and relaunched under the
    same id from that snapshot, and the agent runs again: attached again when interactive, the
    same ``command`` again, or headless with the prompt prefixed by a note that it is a
    continuation. ``on_launched`` is called after every launch. ``capability_build`` is TEST
    ONLY (``registry.CapabilityBuild``): how the packages are added again.
    """
    if plan.agent_image is None and not (options and options.image_override):
        problems = [w.removeprefix("cannot start yet: ") for w in plan.warnings if w.startswith("cannot start yet")]
        raise BotBottleError(problems[0] if problems else f"no agent image for template '{plan.template}'")
    home = Path(environ.get("HOME") or Path.home())
    blocked = preflight.problems(plan, home)  # before anything is built
    if blocked:
        raise BotBottleError(blocked[0])
    opts = options or LaunchOptions()
    # One process runs a bottle at a time: a resume takes the bottle's run lock before it asks for
    # a secret or its launch touches anything (its objects' names are the running one's), a start
    # once its launch made the state folder. Held across restarts: no resume slips in between.
    lock = _RunLockHolder()
    if opts.resume and opts.bottle_id:
        lock.take(StateDir(state_root, opts.bottle_id))
    try:
        if opts.resume and opts.bottle_id:
            _refuse_a_starting_bottle(StateDir(state_root, opts.bottle_id))
            _require_snapshot(plan.backend, opts, StateDir(state_root, opts.bottle_id))
        resolved, credentials = collect_secrets(manifest, plan, environ, prompt_fn)
        # A resume writes them again too (``agent_files.provision_resume_files``): the manifest's now.
        opts.system_prompt = opts.system_prompt or manifest.agent.prompt
        # Resolved before anything is created: a missing skill must not leave a half-built bottle.
        opts.skills = tuple(agent_files.find_skills(
            manifest.agent.skills, agent_files.host_skill_folders(home, plan.cwd),
            origin=manifest.agent.skills_origin,
        )) or opts.skills
        opts.env = {**provider_placeholders(plan, manifest), **resolved.values, **dict(opts.env)}
        opts.credentials = {**credentials, **dict(opts.credentials)}
        env_secrets = {name: resolved.values[name] for name in sorted(resolved.secret_names)
                       if resolved.values.get(name)}
        opts.known_secrets = {**known_secret_values(env_secrets, credentials), **dict(opts.known_secrets)}
        backend = registry.for_name(plan.backend)
        say = progress or (lambda message: None)
        prompt = headless_prompt
        restarts = 0
        while True:
            run = _run_once(backend, plan, opts, state_root=state_root, progress=progress, on_launched=on_launched,
                            command=command, headless_prompt=prompt, tty=tty, preserve=preserve,
                            capability_build=capability_build, lock=lock)
            if run.restart is None:
                return RunResult(run.bottle_id, run.exit_code, run.preserve_reason is not None, run.preserve_reason,
                                 restarts=restarts, notice=run.notice)
            restarts += 1
            say(f"restarting bottle {run.bottle_id} on its new image: {run.restart}")
            opts = dataclasses.replace(opts, bottle_id=run.bottle_id, resume=True, image_override=run.snapshot)
            if prompt is not None:
                prompt = continuation_prompt(headless_prompt or "", run.restart)
    finally:
        lock.release()


def _refuse_a_starting_bottle(state: StateDir) -> None:
    """A new bottle takes its run lock only once its launch is done (the launch makes its state
    folder): until then, its folder has no preserve marker and its metadata names its live owner."""
    if state.preserved:
        return
    try:
        owner = state.read().owner
    except BotBottleError:
        return  # the launch reports it
    if owner_state(owner) == ALIVE:
        raise BotBottleError(
            f"bottle {state.id} is still starting in another bot-bottle process; only a preserved bottle is resumed",
            hint="`bot-bottle list --running` shows it once it runs",
        )


def missing_snapshot_error(bottle_id: str, snapshot: str, state_dir: Path) -> BotBottleError:
    """Why a preserved bottle whose snapshot image is gone cannot be resumed, and what is left to do."""
    return BotBottleError(
        f"bottle {bottle_id} cannot be resumed: its snapshot image {snapshot} is gone (removed outside "
        "bot-bottle, by `docker rmi` or an image prune), and the bottle's files with it",
        hint=f"remove {state_dir} to drop the bottle; `bot-bottle start` starts a new one",
    )


def _require_snapshot(backend_name: str, opts: LaunchOptions, state: StateDir) -> None:
    """A Docker bottle resumes from its snapshot image. Checked before a secret is asked for or
    anything is created: an image removed by hand (a prune to free space, often around an
    upgrade) would otherwise end the resume on the engine's own words."""
    if backend_name != "docker" or not opts.image_override:
        return
    from bot_bottle import images

    if not images.image_exists(opts.image_override):
        raise missing_snapshot_error(state.id, opts.image_override, state.path)


class _RunLockHolder:
    """The bottle's run lock for one ``run_bottle``, taken once (``StateDir.hold_run``)."""

    def __init__(self) -> None:
        self._lock: RunLock | None = None

    def take(self, state: StateDir) -> None:
        if self._lock is None:
            self._lock = state.hold_run()

    def release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()


def continuation_prompt(prompt: str, why: str) -> str:
    """What a headless agent is asked after a restart: the same task, knowing it was interrupted.

    Its files are kept but its session is not, so it is told to check what it already did rather
    than start over blindly.
    """
    return (f"[bot-bottle] This bottle was restarted on a new image ({why}). Your files are as you left "
            "them; your previous session and any running processes ended. Check what is already done, "
            f"then continue the task:\n\n{prompt}")


@dataclass
class _Run:
    bottle_id: str
    exit_code: int
    preserve_reason: str | None
    restart: str | None = None  # why the bottle must be relaunched, or None
    snapshot: str | None = None
    notice: str | None = None  # see RunResult


def _run_once(backend: Any, plan: BottlePlan, opts: LaunchOptions, *, state_root: Path,
              progress: Callable[[str], None] | None, on_launched: Callable[[Any, Any], None] | None,
              command: list[str] | None, headless_prompt: str | None, tty: bool, preserve: bool,
              capability_build: Any, lock: _RunLockHolder | None = None) -> _Run:
    """One launch of the bottle, its agent run to the end, and its teardown."""
    launcher = backend.launcher(plan, opts, state_root=state_root, progress=progress)
    if progress is not None and not opts.resume:
        # Its id, before anything is built: with several bottles running, the one a user needs
        # to `stop`, `commit` or read the `logs` of (a resume is asked for by its id already).
        progress(f"new bottle {launcher.names.id} for agent '{plan.agent}'")
    bottle = launcher.launch()
    if lock is not None:
        try:
            lock.take(launcher.state)  # a new bottle's: its state folder exists from here on
        except BaseException as failure:
            teardown_after_failure(failure, lambda: _abandon(launcher, bottle))
            raise
    # Whatever capability change an earlier run recorded is in the image this run started from,
    # and a restart asked of an earlier run is done.
    launcher.state.clear_capability()
    launcher.state.clear_restart()
    exit_code = 1
    memory_limit: int | None = None
    interrupted = False
    unfinished: str | None = None  # why the agent counts as not having ended by itself
    restart: str | None = None
    snapshot_ref: str | None = None
    try:
        if on_launched is not None:
            on_launched(bottle, launcher)
        status_file = _status_file(bottle)
        if command is not None:
            argv = _command_argv(bottle, command, tty=tty, status_file=status_file)
        else:
            extra = headless_args(plan, headless_prompt) if headless_prompt is not None else []
            argv = _agent_argv(bottle, extra, tty=tty, status_file=status_file)
        alive = getattr(bottle, "running", None)
        sidecar_check = getattr(bottle, "sidecar_stopped", None)
        alarm = SidecarAlarm(launcher.state.id, sidecar_check) if callable(sidecar_check) else None
        interrupts.raise_pending()  # a signal lost while the bottle was launched: no agent now
        _mark_agent_ran(launcher.state)
        client_code = _run_agent(argv, stdin=None if tty or headless_prompt is None else subprocess.DEVNULL,
                                 alive=alive, state=launcher.state, tty=tty, alarm=alarm,
                                 clipboard_write=plan.clipboard == "write")
        if alarm is not None and launcher.state.restart_request() is None and (alive is None or alive()):
            alarm.poll(now=True)  # ended by itself: perhaps for want of a way out
        # Decided in full before it is kept: a zero must never stand while the check is unfinished.
        code, why = _agent_exit(bottle, client_code, status_file, alive=alive, state=launcher.state)
        memory_limit = _memory_end(bottle, code, why, alive=alive)
        if memory_limit is not None:
            code, why = OUT_OF_MEMORY_EXIT, out_of_memory_reason(memory_limit)
        exit_code, unfinished = code, why
    except KeyboardInterrupt as stop:
        interrupts.taken()
        exit_code = stop.exit_code if isinstance(stop, interrupts.Terminated) else 130
        interrupted = True
    finally:
        # Saving the bottle and removing it must not stop half way: a Ctrl-C (or SIGTERM,
        # SIGHUP) meanwhile is held and raised once both are done.
        with interrupts.deferred():
            reason = None
            try:
                # A restart asked of this run (the agent was stopped for it); never after Ctrl-C, and only
                # on a backend that can (the marker is written by that backend's request_restart alone).
                restart = None if interrupted or not backend.supports_capability_change else launcher.state.restart_request()
                if restart is not None:
                    reason = f"restarting: {restart}"
                elif unfinished is not None:
                    reason = unfinished
                elif exit_code != 0:
                    reason = f"agent exited with code {exit_code}"
                elif alarm is not None and alarm.reason is not None:
                    # Its work may be unpushed: the git-gate stopped with the rest.
                    reason = f"its sidecar stopped while the agent ran ({alarm.reason})"
                elif preserve:
                    reason = "asked to preserve"
                if reason:
                    try:
                        ref = launcher.snapshot()
                        meta = launcher.state.read()
                        meta.snapshot = ref
                        meta.exit_code = exit_code
                        launcher.state.write(meta)
                        snapshot_ref = _reapply_capability(backend, launcher.state, state_root, capability_build) or ref
                    except BotBottleError as exc:
                        if restart is not None:
                            # Without its snapshot the bottle cannot come back as it was: keep it for
                            # `resume` (from the image the capability change built) instead.
                            restart = None
                            reason = f"restart failed (snapshot: {exc})"
                        else:
                            reason += f" (snapshot failed: {exc})"
                    launcher.preserve_reason = reason
                if restart is None and launcher.state.path.is_dir():
                    launcher.state.clear_restart()
            finally:
                # The launch tears down (a VM bottle's handle closes as a no-op by contract).
                try:
                    launcher.teardown()
                finally:
                    bottle.close()
                    # The teardown may have kept the agent's container (its work unsaved) and says so.
                    reason = launcher.preserve_reason if reason else reason
    if restart is not None and snapshot_ref is None:
        snapshot_ref = launcher.state.read().snapshot
    notice = None
    if memory_limit is not None and reason is not None:
        notice = out_of_memory_notice(launcher.names.id, memory_limit, kept=snapshot_ref is not None)
    return _Run(launcher.names.id, exit_code, reason, restart, snapshot_ref, notice)


def _abandon(launcher: Any, bottle: Any) -> None:
    """Remove a bottle whose agent never ran, as a failed launch (its new state folder goes)."""
    try:
        launcher.teardown(launch_failed=True)
    finally:
        bottle.close()


# The exit status of an agent whose bottle was stopped under it: 128 + SIGTERM, what `docker stop`
# sends, and what a shell reports for a process it ended.
STOPPED_EXIT = 143
STOPPED = "the bottle was stopped before its agent ended"
# The exit status of an agent whose exec client ended (with 0) while the agent still ran: 128 +
# SIGINT, what a Ctrl-C gives, since an interrupted client is how that happens (the client of a
# `docker exec` that gets SIGINT or SIGTERM exits 0 and leaves its command running).
DETACHED_EXIT = 130
DETACHED = "interrupted: the agent's session ended before the agent did"
# How long the agent's host process may outlive a restart request before it is ended: the
# request stops the agent container (2 s grace, then `docker stop -t 5`), but the client of a
# `docker exec` into a gVisor container does not always notice its container went away.
RESTART_EXIT_GRACE_S = 20.0
# The same for a container that stopped for any other reason (`bot-bottle stop`, the engine, the
# agent's own PID 1 dying): checked every LIVENESS_INTERVAL_S, ended GONE_EXIT_GRACE_S after.
LIVENESS_INTERVAL_S = 2.0
GONE_EXIT_GRACE_S = 5.0


# The exit status of an agent whose bottle the engine ended for going over its memory limit: 128 +
# SIGKILL, what the engine records for the container.
OUT_OF_MEMORY_EXIT = 137
# What the client of a `docker exec` into a gVisor sandbox that died under it reports (its wait
# on the sandbox broke, or the process was killed), possibly before the engine has noted the end:
# for these the container is given OOM_SETTLE_S to be seen stopped.
SANDBOX_GONE_CODES = (128, 137)
OOM_SETTLE_S = 3.0
OOM_SETTLE_INTERVAL_S = 0.25


def _memory_end(bottle: Any, exit_code: int, unfinished: str | None, *,
                alive: Callable[[], bool] | None) -> int | None:
    """The memory limit (bytes, 0 for none) the bottle was ended for going over, or None.

    Only the engine's word counts (``memory_end``: State.OOMKilled of a stopped container): an
    exit status of 137 is also what `docker kill` leaves, and a stop is never called a lack of memory.
    """
    probe = getattr(bottle, "memory_end", None)
    if probe is None or (exit_code == 0 and unfinished is None):
        return None
    if unfinished is None and alive is not None and exit_code in SANDBOX_GONE_CODES:
        deadline = time.monotonic() + OOM_SETTLE_S
        while alive() and time.monotonic() < deadline:
            time.sleep(OOM_SETTLE_INTERVAL_S)
    limit = probe()
    return limit if isinstance(limit, int) and not isinstance(limit, bool) else None


def memory_text(limit: int) -> str:
    """``limit`` bytes as a person reads a memory limit: 4 GiB, 512 MiB."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20)):
        if limit >= size:
            amount = limit / size
            return f"{amount:g} {unit}" if amount == int(amount) else f"{amount:.1f} {unit}"
    return f"{limit} bytes"


def out_of_memory_reason(limit: int) -> str:
    """Why the bottle is kept, as its preserve marker and `list` say it."""
    if limit <= 0:
        return "the bottle ran out of memory"
    return f"the bottle went over its memory limit of {memory_text(limit)}"


def out_of_memory_notice(bottle_id: str, limit: int, *, kept: bool) -> str:
    """What the user is told when the engine ended the bottle for its memory: what happened, what
    was kept, and how to go on."""
    over = f"its memory limit of {memory_text(limit)}" if limit > 0 else "the memory it could have"
    lines = [f"bottle {bottle_id} went over {over} and was ended whole: the agent and every process in it "
             "stopped, not only the one that used the memory."]
    if kept:
        lines.append(f"Its files are kept as they were at that moment: `bot-bottle resume {bottle_id}` continues it.")
    else:
        lines.append(f"Its state is kept but its files could not be saved: `bot-bottle resume {bottle_id}` "
                     "starts it from its last snapshot, or from its image when it has none.")
    lines.append("To stay under the limit, have the agent run fewer memory-hungry things at once "
                 "(parallel builds and test runs, language servers).")
    return "\n".join(lines)


def _agent_exit(bottle: Any, client_code: int, status_file: str | None, *, alive: Callable[[], bool] | None,
                state: Any) -> tuple[int, str | None]:
    """The agent's exit status from its host client's, and why it did not end by itself (or None).

    A client's 0 is checked: it is the agent finishing only if its container still runs and (on a
    bottle that records it) the agent left a status. A restart asked for stopped the agent on
    purpose, so it is not looked into further. A non-zero status already keeps the bottle; it is
    kept, and said to be a stop when the container stopped (the status a stop leaves, 137 or
    143, depends only on how fast the agent died of it: one `stop` of several bottles would read
    as an agent failing in some and as a stop in others).
    """
    if state.restart_request() is not None:
        return client_code, None
    if alive is not None and client_code != 0:
        return client_code, (STOPPED if not alive() else None)
    if client_code != 0:
        return client_code, None
    if alive is not None and not alive():
        # The agent runs beside the container's PID 1, so its container stops only when
        # someone stops it (`bot-bottle stop`, the engine, an OOM kill). The client of an exec
        # into a stopped gVisor container can report 0: that is not the agent finishing.
        return STOPPED_EXIT, STOPPED
    if status_file is None:
        return client_code, None
    recorded = _recorded_status(bottle, status_file)
    if recorded is None:
        return DETACHED_EXIT, DETACHED
    return recorded, None


def _recorded_status(bottle: Any, status_file: str) -> int | None:
    """What the agent's run recorded; None when nothing was (or the bottle could not be asked)."""
    try:
        status = bottle.exit_status(status_file)
    except (OSError, BotBottleError):
        return None
    return status if isinstance(status, int) else None


def _status_file(bottle: Any) -> str | None:
    """A new path for this run's exit status, or None for a handle that cannot record one."""
    make = getattr(bottle, "status_file", None)
    if make is None or not all(hasattr(bottle, name) for name in ("exit_status", "run_argv")):
        return None
    return str(make())


def _agent_argv(bottle: Any, extra: list[str], *, tty: bool, status_file: str | None) -> list[str]:
    if status_file is None:
        return list(bottle.agent_argv(extra, tty=tty))
    return list(bottle.agent_argv(extra, tty=tty, status_file=status_file))


def _spawn(argv: list[str], stdin: Any) -> Any:
    # Ended with this process, however it ends: a `docker exec` client into a gVisor container
    # does not always notice its container is gone, and nothing else would end it.
    return subprocess.Popen(die_with_parent(argv), stdin=stdin)


def _mark_agent_ran(state: Any) -> None:
    """Mark the bottle as holding the agent's work, so that a ``cleanup`` after this process
    dies (killed, the machine restarted) saves it instead of removing it. Best effort: a home
    that cannot take one more empty file (full, read-only) must not stop the agent."""
    try:
        state.mark_agent_ran()
    except OSError:
        pass


def _run_agent(argv: list[str], *, stdin: Any, state: Any, alive: Callable[[], bool] | None = None,
               tty: bool = False, alarm: SidecarAlarm | None = None, clipboard_write: bool = False) -> int:
    """Run the agent's host process to its end (its exit status), like ``subprocess.run``.

    Once a restart is asked for, the process gets ``RESTART_EXIT_GRACE_S`` to end by itself
    (its container is being stopped), then it is terminated, so the restart cannot hang. Once
    ``alive`` says the bottle stopped, it gets ``GONE_EXIT_GRACE_S``, so a stop cannot hang it.
    With ``tty`` (and a terminal on both ends) its terminal is relayed through ``pty_relay``.
    ``alarm`` looks at the bottle's sidecar meanwhile, and says on that terminal when it stopped.
    ``clipboard_write``: the agent's clipboard writes pass the filter (``terminal.clipboard``).
    """
    relay = (pty_relay.Relay(die_with_parent(argv), record=_terminal_record(state),
                             screen=ScreenFilter(clipboard_write=clipboard_write))
             if tty and pty_relay.usable() else None)
    if alarm is not None and relay is not None:
        alarm.tell = relay.notice
    try:
        return _wait_agent(relay.start() if relay is not None else _spawn(argv, stdin), state, alive, alarm)
    finally:
        if relay is not None:
            relay.close()
            if alarm is not None:
                alarm.tell = offline_alarm.to_stderr  # the terminal is the operator's again


def _terminal_record(state: Any) -> pty_relay.Record | None:
    """Where the relay records what the terminal filter held back: the bottle's events in the
    supervise database of the home its state folder is in (``<home>/state/<id>``), which that
    home's console and `bot-bottle logs` read; a bottle started with another home than the
    process's HOME must not land in HOME's database, whose console would forget it as not its
    own (None: no bottle id)."""
    bottle_id = getattr(state, "id", None)
    if not isinstance(bottle_id, str):
        return None
    from bot_bottle.supervise.store import Store, terminal_recorder

    root = getattr(state, "root", None)
    try:
        path = Store.default_path(root.parent if isinstance(root, Path) else None)
    except (OSError, BotBottleError):  # no usable home: the operator's line at the end still names it
        return None
    return terminal_recorder(bottle_id, path)


def _wait_agent(proc: Any, state: Any, alive: Callable[[], bool] | None, alarm: SidecarAlarm | None = None) -> int:
    deadline: float | None = None
    next_check = time.monotonic() + LIVENESS_INTERVAL_S
    restart_asked = False
    try:
        while True:
            try:
                return int(proc.wait(timeout=0.5))
            except subprocess.TimeoutExpired:
                pass
            interrupts.raise_pending()
            now = time.monotonic()
            if not restart_asked and state.restart_request() is not None:
                restart_asked = True
                deadline = min(deadline or float("inf"), now + RESTART_EXIT_GRACE_S)
            if alive is not None and now >= next_check:
                next_check = now + LIVENESS_INTERVAL_S
                if not alive():
                    deadline = min(deadline or float("inf"), now + GONE_EXIT_GRACE_S)
            if alarm is not None and deadline is None:  # not while the bottle is ending
                alarm.poll()
            if deadline is not None and now > deadline:
                proc.terminate()
                try:
                    return int(proc.wait(timeout=5))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    return int(proc.wait())
    except BaseException:
        proc.kill()
        proc.wait()
        raise


def _reapply_capability(backend: Any, state: Any, state_root: Path, build: Any = None) -> str | None:
    """Add again the packages approved during this run on top of the snapshot just taken.

    The snapshot is of the running container, which started before the change was approved.
    """
    packages = state.capability_packages()
    if not packages:
        return None
    from bot_bottle.backend.registry import CapabilityChange

    ref = backend.apply_capability_change(CapabilityChange(state.id, packages, reason="kept after the run", build=build),
                                          state_root=state_root)
    return str(ref)


def _command_argv(bottle: Any, command: list[str], *, tty: bool, status_file: str | None = None) -> list[str]:
    """The host argv that runs ``command`` (instead of the agent CLI) inside the bottle."""
    if hasattr(bottle, "run_argv"):
        if status_file is None:
            return list(bottle.run_argv(command, tty=tty))
        return list(bottle.run_argv(command, tty=tty, status_file=status_file))
    argv = bottle.agent_argv([], tty=tty)
    return argv[: argv.index(bottle.container) + 1] + command


def default_environ() -> dict[str, str]:
    return dict(os.environ)


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()
