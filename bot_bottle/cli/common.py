"""Helpers several subcommands share: the manifest layout, loading with warnings, plan building."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from bot_bottle import plan as plan_mod
from bot_bottle.cli import output
from bot_bottle.manifest import Layout, Manifest, load


def layout() -> Layout:
    return Layout.from_env()


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
    problem = skills_problem(manifest, cwd)
    if problem:
        plan = dataclasses.replace(plan, warnings=(*plan.warnings, f"cannot start yet: {problem}"))
    if cwd is not None:
        plan = dataclasses.replace(plan, warnings=(*plan.warnings, *_tree_warnings(cwd)))
    from bot_bottle.provision import git

    keys = [f"cannot start yet: {problem}" for problem in git.unreadable_ssh_keys(plan.repos)]
    if keys:
        plan = dataclasses.replace(plan, warnings=(*plan.warnings, *keys))
    return plan


def _tree_warnings(cwd: Path) -> list[str]:
    from bot_bottle.provision import workspace

    refused = workspace.refused_tree(cwd.resolve(), Path.home().resolve())
    if refused:
        return [f"cannot start yet: {refused}"]
    found = workspace.credential_entries(cwd)
    if found:
        return [f"the working tree {cwd} holds {', '.join(found)} at its top: copied into the bottle, "
                "the agent could read them"]
    return []


def skills_problem(manifest: Manifest, cwd: Path | None) -> str | None:
    """What `start` would refuse about the agent's skills (looked up the way it looks them up)."""
    from bot_bottle.errors import BotBottleError
    from bot_bottle.provision import agent_files

    try:
        agent_files.find_skills(manifest.agent.skills, agent_files.host_skill_folders(Path.home(), cwd),
                                origin=manifest.agent.skills_origin)
    except BotBottleError as exc:
        return str(exc)
    return None
