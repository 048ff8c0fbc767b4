"""Helpers several subcommands share: the manifest layout, loading with warnings, plan building."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from bot_bottle import plan as plan_mod
from bot_bottle.cli import output
from bot_bottle.errors import BotBottleError, UsageError
from bot_bottle.manifest import Layout, Manifest, load


def layout() -> Layout:
    return Layout.from_env()


def home_layout(*, manifests: bool = True) -> Layout:
    """``layout()`` for a command that reads or writes ~/.bot-bottle, refused (``NotAFolderError``)
    when it, or with ``manifests`` its agents/ or bottles/, is a file, a dangling symlink or
    anything else than a folder: nothing could be read from it nor written to it, and an empty
    listing or a "run init" would send the user where init fails too."""
    from bot_bottle.state import require_folders

    lay = layout()
    folders = (lay.bottles_dir, lay.home_agents_dir) if manifests else (lay.home_dir,)
    require_folders(*folders, within=lay.home_dir)
    return lay


# Said by `start` and `resume` alike when one of --headless and --prompt comes without the other.
HEADLESS_HINT = ("`--headless --prompt TEXT` runs TEXT as the agent's task with no terminal; "
                 "without both, it is attached")


def check_headless_prompt(headless: bool, prompt: str | None) -> None:
    """Refuse --headless without --prompt, and --prompt without --headless, in one wording."""
    if headless and prompt is None:
        raise UsageError("--headless needs --prompt TEXT", hint=HEADLESS_HINT)
    if prompt is not None and not headless:
        raise UsageError("--prompt goes with --headless", hint=HEADLESS_HINT)


def add_format(parser: argparse.ArgumentParser, help_text: str = "output format") -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text", help=help_text)


def load_manifest(agent: str, *, quiet: bool = False) -> Manifest:
    manifest = load(agent, layout())
    if not quiet:
        for warning in manifest.warnings:
            output.warn(warning)
    return manifest


def docker_runtime() -> tuple[str, str]:
    """(runtime, note) for the agent container: gVisor when the engine has it registered."""
    from bot_bottle.backend.docker import engine

    info = engine.engine_info(timeout=10)
    if info is None:
        return "runc", "Docker engine not reachable now; runc assumed (gVisor is used when registered)"
    runtimes = info.get("Runtimes") or {}
    if "runsc" in runtimes:
        return "runsc", "gVisor (runsc) is registered with the Docker engine"
    return "runc", "gVisor (runsc) is not registered with the Docker engine"


def build_plan(
    manifest: Manifest,
    *,
    backend: str = "docker",
    label: str | None = None,
    cwd: Path | None = None,
) -> plan_mod.BottlePlan:
    if backend == "docker":
        runtime, note = docker_runtime()
    else:
        from bot_bottle import doctor

        check = doctor.check_microvm()
        runtime = "libkrun"
        note = "micro-VMs can run here" if check.ok else f"micro-VMs cannot run here: {check.reason}"
    plan = plan_mod.resolve(
        manifest,
        backend=backend,
        runtime=runtime,
        runtime_note=note,
        label=label,
        cwd=cwd,
        environ=dict(os.environ),
    )
    from bot_bottle import preflight
    from bot_bottle.provision import workspace

    blockers = [skills_problem(manifest, cwd), *preflight.problems(plan, Path.home())]
    warnings = [f"cannot start yet: {problem}" for problem in blockers if problem]
    credentials = workspace.credential_entries(cwd) if cwd is not None else []
    if credentials:
        warnings.append(f"the working tree {cwd} holds {', '.join(credentials)} at its top: copied into the "
                        "bottle, the agent could read them")
    return dataclasses.replace(plan, warnings=(*plan.warnings, *warnings)) if warnings else plan


def skills_problem(manifest: Manifest, cwd: Path | None) -> str | None:
    """What `start` would refuse about the agent's skills (looked up the way it looks them up)."""
    from bot_bottle.provision import agent_files

    try:
        agent_files.find_skills(manifest.agent.skills, agent_files.host_skill_folders(Path.home(), cwd),
                                origin=manifest.agent.skills_origin)
    except BotBottleError as exc:
        return str(exc)
    return None


def only_own_running(state_dir: Path, verb: str) -> str:
    """The id of the one running bottle whose state folder is under ``state_dir``, for ``verb``
    (``commit``, ``stop``) named without an id. Other homes' bottles on a shared engine are never
    picked: nothing here could resume their snapshot. None running here is an error (1); several
    is the user's to settle by naming one, a usage error (2)."""
    from bot_bottle.backend.docker import running
    from bot_bottle.backend.docker.cleanup import has_state_here

    bottles = running.running(None)
    own = [b.id for b in bottles if has_state_here(state_dir, b.id)]
    others = len(bottles) - len(own)
    if not own:
        raise BotBottleError("no running bottle was started from this home" + _elsewhere(others),
                             hint=_none_here_hint(verb, others))
    if len(own) > 1:
        raise UsageError(f"several bottles of this home are running; name the one to {verb}: " + ", ".join(own),
                         hint=f"`bot-bottle {verb} ID`; `bot-bottle list --running` shows their agents and labels")
    return own[0]


def _elsewhere(others: int) -> str:
    if not others:
        return ""
    return f" ({others} other running bottle{' was' if others == 1 else 's were'} started from another home)"


def _none_here_hint(verb: str, others: int) -> str:
    """Where to look: the HOME that started a bottle matters only when another home's bottles run."""
    if not others:
        return "`bot-bottle list --running` shows running and preserved bottles"
    return f"`bot-bottle list --running` shows them; {verb} a bottle with the HOME that started it"


def require_known_bottle(state_dir: Path, bottle_id: str) -> None:
    """An id no bottle has is the user's slip, like a mistyped agent name: a usage error (exit 2)
    with the closest bottle of this home. A bottle this home has state for goes on to the command
    (which says when it no longer runs), and so does a running bottle of another home, refused
    there as not this home's; so does any id when the engine does not answer (the command's own
    check then says this home has no such bottle)."""
    from bot_bottle import api
    from bot_bottle.backend.docker.cleanup import has_state_here
    from bot_bottle.cli.resume import bottle_suggestion
    from bot_bottle.state import ID_RE

    hint = "`bot-bottle list --running` shows the running bottles and which are this home's"
    if not ID_RE.match(bottle_id):
        raise UsageError(f"'{bottle_id}' is not a bottle id" + bottle_suggestion(bottle_id, state_dir, saved=False),
                         hint=hint)
    if has_state_here(state_dir, bottle_id):
        return
    try:
        elsewhere = api.running(bottle_id)
    except BotBottleError:
        return
    if not elsewhere:
        raise UsageError(f"no bottle '{bottle_id}': none runs with that id, and none has state under {state_dir}"
                         + bottle_suggestion(bottle_id, state_dir, saved=False), hint=hint)
