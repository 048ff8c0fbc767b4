"""A small Python API for scripts and orchestrators: start, resume, stop, commit.

Every failure is a typed exception (``BotBottleError`` and its subclasses, ``ManifestError`` for
manifest problems); nothing here prints or exits. Secrets come from the ``environ`` you pass
(default: this process's environment), never from arguments that could end up in a log.

    from bot_bottle import api
    result = api.start("coder", prompt="fix the failing test", cwd="~/src/app")
    print(result.bottle_id, result.exit_code, result.preserved)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bot_bottle import lifecycle
from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.launch import LaunchOptions
from bot_bottle.backend.docker.running import RunningBottle, running
from bot_bottle.cli.common import build_plan
from bot_bottle.errors import BotBottleError, UsageError
from bot_bottle.lifecycle import RunResult
from bot_bottle.manifest import Layout, ManifestError, load
from bot_bottle.manifest import env as env_mod
from bot_bottle.plan import label_problem
from bot_bottle.state import Metadata, StateDir

__all__ = ["BotBottleError", "ManifestError", "RunResult", "UsageError", "commit", "list_running", "resume", "start", "stop"]


def _layout(home: str | Path | None, cwd: str | Path | None) -> Layout:
    return Layout(
        home=Path(home).expanduser() if home else Path.home(),
        cwd=Path(cwd).expanduser() if cwd else Path.cwd(),
    )


def start(
    agent: str,
    *,
    prompt: str,
    cwd: str | Path | None = None,
    label: str | None = None,
    preserve: bool = False,
    environ: Mapping[str, str] | None = None,
    home: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Run ``agent`` headless on ``prompt`` in a new bottle; return when the agent exits."""
    problem = label_problem(label) if label is not None else None
    if problem:
        raise UsageError(f"label: {problem}")
    layout = _layout(home, None)
    workdir = Path(cwd).expanduser().resolve() if cwd else None
    if workdir is not None and not workdir.is_dir():
        raise UsageError(f"cwd {workdir}: not a folder")
    manifest = load(agent, layout)
    plan = build_plan(manifest, backend="docker", label=label, cwd=workdir)
    return lifecycle.run_bottle(
        manifest, plan, state_root=layout.state_dir,
        environ=dict(environ if environ is not None else os.environ),
        prompt_fn=None, headless_prompt=prompt, tty=False, progress=progress, preserve=preserve,
    )


def read_resumable(state_root: Path, bottle_id: str) -> Metadata:
    """A saved bottle's metadata, checked for a resume: a bad id, a missing or malformed
    metadata file and an unknown backend are each one clear error naming the file."""
    from bot_bottle.backend import registry

    sdir = StateDir(state_root, bottle_id)
    meta = sdir.read()
    try:
        registry.for_name(meta.backend)
    except BotBottleError as exc:
        raise BotBottleError(f"{sdir.metadata_path}: {exc}") from None
    return meta


def _resume_layout(meta: Metadata, home: str | Path | None = None) -> Layout:
    """Where ``resume`` looks for the bottle's agent: where ``start`` found it.

    ``start`` reads ``./.bot-bottle/agents/`` relative to the folder it ran in, recorded as
    ``started_in``. Metadata from before that was recorded (or whose folder is gone) falls back
    to the old lookup: the ``--cwd`` copy source, else the folder ``resume`` runs in.
    """
    if meta.started_in and Path(meta.started_in).is_dir():
        return _layout(home, meta.started_in)
    return _layout(home, meta.cwd)


def resume(
    bottle_id: str,
    *,
    prompt: str | None,
    preserve: bool = False,
    environ: Mapping[str, str] | None = None,
    home: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    tty: bool = False,
    prompt_fn: env_mod.PromptFn | None = None,
) -> RunResult:
    """Relaunch a preserved bottle from its last snapshot, on the backend it ran on.

    With ``prompt`` the agent runs headless; without it (the CLI on a terminal) it is attached.
    """
    layout = _layout(home, None)
    meta = read_resumable(layout.state_dir, bottle_id)
    _refuse_over_left_containers(layout.state_dir, bottle_id)
    manifest = load(meta.agent, _resume_layout(meta, home))
    plan = build_plan(manifest, backend=meta.backend, label=meta.label)
    return lifecycle.run_bottle(
        manifest, plan, state_root=layout.state_dir,
        environ=dict(environ if environ is not None else os.environ),
        prompt_fn=prompt_fn, headless_prompt=prompt, tty=tty, progress=progress, preserve=preserve,
        options=LaunchOptions(bottle_id=bottle_id, resume=True, image_override=meta.snapshot),
    )


def _refuse_over_left_containers(state_root: Path, bottle_id: str) -> None:
    """A resume needs the bottle's containers gone. One that runs is stopped first; stopped ones
    that a run whose process died left behind (killed, or the machine restarted) hold the
    agent's work, which ``cleanup`` saves. An agent container a teardown kept for its failed
    snapshot is the launch's to refuse, saying so."""
    found = running(bottle_id)
    if any(b.status == "running" for b in found):
        raise BotBottleError(f"bottle {bottle_id} is still running", hint=f"`bot-bottle stop {bottle_id}` first")
    if found and StateDir(state_root, bottle_id).kept_agent() is None:
        raise BotBottleError(
            f"bottle {bottle_id} still has the containers of a run that did not end cleanly (its bot-bottle "
            "process was gone)",
            hint=f"`bot-bottle cleanup` saves the agent's work in a snapshot and removes them; then "
                 f"`bot-bottle resume {bottle_id}` continues from it",
        )


def list_running() -> list[RunningBottle]:
    return running()


def stop(bottle_id: str, *, timeout: int = 5, home: str | Path | None = None) -> None:
    """Stop a running bottle's agent; its owner preserves the state for ``resume``.

    A bottle whose launching process is gone has no owner to tear it down: it is done here as the
    owner would, its agent's work snapshotted and the bottle preserved for ``resume``, then its
    objects removed (a micro-VM's only removed: its launcher alone packs it). When the snapshot
    cannot be taken, nothing is removed (its work stays in its container) and the error says so.

    Only a bottle with a state folder under this home's state dir: one started from another home
    is refused before the engine is asked to stop anything (its owner would preserve it there,
    and this home's cleanup would never remove it).
    """
    from bot_bottle.backend import registry
    from bot_bottle.backend.docker.cleanup import has_state_here
    from bot_bottle.state import ID_RE

    if not ID_RE.match(bottle_id):
        raise BotBottleError(f"'{bottle_id}' is not a bottle id", hint="`bot-bottle list --running` shows them")
    state_root = _layout(home, None).state_dir
    if not has_state_here(state_root, bottle_id):
        raise BotBottleError(
            f"bottle {bottle_id} has no state under {state_root}: it was not started from this home "
            "(or does not exist), so it is not stopped from here",
            hint="`bot-bottle list --running` shows the running bottles and which are this home's; "
                 "stop a bottle with the HOME that started it",
        )
    bottles = running(bottle_id)
    if not bottles:
        raise BotBottleError(f"no running bottle {bottle_id}", hint="`bot-bottle list --running` shows them")
    bottle = bottles[0]
    if bottle.backend == "smolmachines":
        from bot_bottle.backend.smolmachines import smolvm
        from bot_bottle.backend.smolmachines.names import machine_name

        smolvm.machine_stop(machine_name(bottle_id))
    else:
        engine.run(["stop", "-t", str(timeout), bottle.names.agent_container], timeout=timeout + 60)
    if not bottle.owner_alive:
        backend = registry.for_name(bottle.backend)
        if bottle.backend == "docker":  # a micro-VM is packed by its launcher only, which is gone
            _keep_orphans_work(backend, bottle_id, state_root)
        inv = backend.inventory(state_root)
        backend.remove([r for r in inv.orphans if r.bottle_id == bottle_id and r.kind != "state"])


# Why an orphan ``stop`` preserved: what ``list`` shows for it.
ORPHAN_STOPPED = "stopped after its bot-bottle process was gone"


def _keep_orphans_work(backend: Any, bottle_id: str, state_root: Path) -> None:
    """Snapshot a stopped orphan's agent and mark it preserved, as its owner's teardown would
    have: removing it unsaved would lose everything the agent did since its start."""
    try:
        backend.commit(bottle_id, state_root=state_root)
    except BotBottleError as exc:
        raise BotBottleError(
            f"bottle {bottle_id} is stopped, but its work could not be saved ({exc}); nothing was removed",
            hint="its containers keep its files; `bot-bottle cleanup` removes them, and the work with them",
        ) from None
    StateDir(state_root, bottle_id).preserve(ORPHAN_STOPPED)


def commit(bottle_id: str, *, home: str | Path | None = None) -> str:
    """Snapshot a running bottle (on the backend it runs on); the next ``resume`` starts from it.

    Only a bottle with a state folder under this home's state dir: one started from another home
    (or by nobody) is refused before anything is snapshotted, as nothing here could resume it.
    """
    from bot_bottle.backend import registry

    state_root = _layout(home, None).state_dir
    backend = registry.for_state(registry.require_state(bottle_id, state_root))
    if not running(bottle_id):  # a micro-VM bottle runs while its sidecar bundle does
        raise BotBottleError(f"no running bottle {bottle_id}", hint="`bot-bottle list --running` shows them")
    return backend.commit(bottle_id, state_root=state_root)
