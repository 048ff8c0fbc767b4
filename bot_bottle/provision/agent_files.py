"""Provision what the agent reads at start: its system prompt, its skills, its CLI settings.

Each function uses only ``Bottle.exec`` / ``Bottle.cp_in``. Paths are per provider template:
Claude Code reads ``~/.claude/`` (CLAUDE.md, skills/, settings.json), Codex reads ``~/.codex/``,
pi reads ``~/.pi/agent/`` (AGENTS.md, skills/, settings.json).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bot_bottle import scratch
from bot_bottle.backend import Bottle
from bot_bottle.errors import BotBottleError

HOME = "/home/node"


@dataclass(frozen=True)
class AgentLayout:
    """Where one provider's CLI looks for its files inside the bottle."""

    config_dir: str
    prompt_file: str
    skills_dir: str | None


LAYOUTS = {
    "claude": AgentLayout(f"{HOME}/.claude", f"{HOME}/.claude/CLAUDE.md", f"{HOME}/.claude/skills"),
    "codex": AgentLayout(f"{HOME}/.codex", f"{HOME}/.codex/AGENTS.md", f"{HOME}/.codex/skills"),
    "pi": AgentLayout(f"{HOME}/.pi/agent", f"{HOME}/.pi/agent/AGENTS.md", f"{HOME}/.pi/agent/skills"),
}
FALLBACK = AgentLayout(f"{HOME}/.bot-bottle", f"{HOME}/.bot-bottle/system-prompt.md", f"{HOME}/.bot-bottle/skills")


def layout_for(template: str) -> AgentLayout:
    return LAYOUTS.get(template, FALLBACK)


def find_skills(names: Iterable[str], search: Iterable[Path], *, origin: object | None = None) -> list[tuple[str, Path]]:
    """Resolve skill names to host folders (first folder that has it wins); missing is an error,
    naming ``origin`` (the manifest's ``file:line`` of ``skills``) when given."""
    folders = list(search)
    found = []
    for name in names:
        for base in folders:
            candidate = base / name
            if candidate.is_dir():
                found.append((name, candidate))
                break
        else:
            where = ", ".join(str(f) for f in folders) or "no skill folders"
            where_written = f"{origin}: skills: " if origin is not None else ""
            raise BotBottleError(f"{where_written}skill '{name}' not found (looked in {where})",
                                 hint="each skill is a folder named like the skill, holding its SKILL.md")
    return found


def copy_skills(bottle: Bottle, template: str, skills: list[tuple[str, Path]]) -> list[str]:
    target = layout_for(template).skills_dir
    if not skills or target is None:
        return []
    copied = []
    for name, folder in skills:
        bottle.cp_in(folder, f"{target}/{name}")
        copied.append(f"{target}/{name}")
    return copied


def claude_settings_files() -> dict[str, str]:
    """Claude Code inside a bottle: no permission prompts (the bottle is the boundary), no wizard."""
    layout = LAYOUTS["claude"]
    settings = {
        "permissions": {"defaultMode": "bypassPermissions"},
        "skipDangerousModePermissionPrompt": True,
    }
    # First-run onboarding would otherwise stop an interactive session before it starts.
    state = {"hasCompletedOnboarding": True, "bypassPermissionsModeAccepted": True}
    return {
        f"{layout.config_dir}/settings.json": json.dumps(settings, indent=2) + "\n",
        f"{HOME}/.claude.json": json.dumps(state, indent=2) + "\n",
    }


CODEX_CONFIG = """\
# Written by bot-bottle. The bottle is the sandbox: Codex's own sandbox and approvals are off.
approval_policy = "never"
sandbox_mode = "danger-full-access"
model_provider = "bottle"

# Codex ignores OPENAI_BASE_URL: name the real API host explicitly. Requests go through the
# bottle's proxy, which swaps the placeholder key for the real one.
[model_providers.bottle]
name = "OpenAI (through the bottle's proxy)"
base_url = "https://api.openai.com/v1"
env_key = "OPENAI_API_KEY"
wire_api = "responses"
"""


# pi defaults to Google's API; the bottle's pi talks to Anthropic (its provider route). Update
# checks and install telemetry would only be refused by the proxy, so they are off.
PI_SETTINGS = {
    "defaultProvider": "anthropic",
    "defaultModel": "claude-sonnet-4-20250514",
    "quietStartup": True,
    "enableInstallTelemetry": False,
}


def settings_files(template: str) -> dict[str, str]:
    """The provider CLI's settings files, by path in the bottle (none for other templates)."""
    if template == "claude":
        return claude_settings_files()
    if template == "codex":
        return {f"{LAYOUTS['codex'].config_dir}/config.toml": CODEX_CONFIG}
    if template == "pi":
        return {f"{LAYOUTS['pi'].config_dir}/settings.json": json.dumps(PI_SETTINGS, indent=2) + "\n"}
    return {}


def prompt_files(template: str, prompt: str) -> dict[str, str]:
    """The system prompt where the provider's CLI reads standing instructions (none if blank)."""
    if not prompt.strip():
        return {}
    return {layout_for(template).prompt_file: prompt.rstrip("\n") + "\n"}


def write_files(bottle: Bottle, files: Mapping[str, str]) -> None:
    """Write files under the agent's home with one copy into the bottle (one process in it,
    where a copy per file costs a ``docker exec`` each on the start's critical path)."""
    if not files:
        return
    with scratch.private_dir() as tmp:
        home = Path(tmp) / PurePosixPath(HOME).name
        home.mkdir()
        for guest_path, text in files.items():
            relative = PurePosixPath(guest_path).relative_to(HOME)  # ValueError: not under HOME
            local = home.joinpath(*relative.parts)
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(text, encoding="utf-8")
        # The unpacked folders take these modes, the home itself included: what it has already.
        for folder in (home, *(p for p in home.rglob("*") if p.is_dir())):
            folder.chmod(0o755)
        bottle.cp_in(home, HOME)


def start_files(template: str, prompt: str, *, supervise: bool) -> dict[str, str]:
    """Every file the agent's CLI reads at its start, by path in the bottle: its settings, the
    supervise server's registration (added to those settings) and the system prompt."""
    from bot_bottle.provision import mcp

    files = settings_files(template)
    path = mcp.registration_path(template) if supervise else None
    if path is not None:
        files[path] = mcp.registered(template, files.get(path))
    files.update(prompt_files(template, prompt))
    return files


def provision_start_files(bottle: Bottle, template: str, prompt: str, *, supervise: bool) -> None:
    """``start_files`` written into a new bottle with one copy; the prompt's place noted on the
    handle (``prompt_path``)."""
    write_files(bottle, start_files(template, prompt, supervise=supervise))
    if prompt.strip():
        bottle.prompt_path = layout_for(template).prompt_file


def resumed_claude_state(existing: str, fresh: str) -> str:
    """``~/.claude.json`` for a resumed bottle: Claude Code's own state kept (projects, history,
    caches), bot-bottle's keys set again from ``fresh``, and every MCP server registration
    dropped, top level and per project, so only what the manifest gives now (``fresh``'s) is
    there. A server the agent added would otherwise run again in every later session. A file
    that is no JSON object is replaced by ``fresh``."""
    try:
        state = json.loads(existing)
    except json.JSONDecodeError:
        return fresh
    if not isinstance(state, dict):
        return fresh
    state.pop("mcpServers", None)
    projects = state.get("projects")
    if isinstance(projects, dict):
        for project in projects.values():
            if isinstance(project, dict):
                project.pop("mcpServers", None)
    state.update(json.loads(fresh))
    return json.dumps(state, indent=2) + "\n"


def provision_resume_files(bottle: Bottle, template: str, prompt: str, *, supervise: bool,
                           skills: list[tuple[str, Path]]) -> None:
    """A resumed bottle's start files, as its manifest gives them now: the CLI's settings, the
    system prompt and the skills are written again and whatever the agent changed in them is
    gone (a prompt injection written into its own standing instructions, settings or skills
    would otherwise come back in every later session; an operator's edit of the manifest takes
    effect). Claude Code's ``~/.claude.json`` keeps its project state (``resumed_claude_state``).
    The workspace, and anything else the agent wrote, is kept as it is."""
    from bot_bottle.provision import mcp

    layout = layout_for(template)
    files = start_files(template, prompt, supervise=supervise)
    if mcp.CLAUDE_STATE in files:
        found = bottle.exec(f"cat {mcp.CLAUDE_STATE} 2>/dev/null")
        if found.ok and found.stdout.strip():
            files[mcp.CLAUDE_STATE] = resumed_claude_state(found.stdout, files[mcp.CLAUDE_STATE])
    stale = [layout.prompt_file, *([layout.skills_dir] if layout.skills_dir else [])]
    removed = bottle.exec("rm -rf -- " + " ".join(shlex.quote(path) for path in stale))
    if not removed.ok:
        raise BotBottleError(f"could not reset the agent's prompt and skills in the resumed bottle: "
                             f"{removed.stderr.strip() or 'rm failed'}")
    write_files(bottle, files)
    bottle.prompt_path = layout.prompt_file if prompt.strip() else None
    copy_skills(bottle, template, skills)


def host_skill_folders(home: Path, cwd: Path | None) -> list[Path]:
    folders = [home / ".bot-bottle" / "skills", home / ".claude" / "skills"]
    if cwd is not None:
        folders.insert(0, cwd / ".claude" / "skills")
    return folders


__all__ = [
    "copy_skills", "find_skills", "host_skill_folders", "layout_for", "prompt_files", "provision_resume_files",
    "provision_start_files", "resumed_claude_state", "settings_files", "start_files", "write_files",
]
