"""Provision what the agent reads at start: its system prompt, its skills, its CLI settings.

Each function uses only ``Bottle.exec`` / ``Bottle.cp_in``. Paths are per provider template:
Claude Code reads ``~/.claude/`` (CLAUDE.md, skills/, settings.json), Codex reads ``~/.codex/``,
pi reads ``~/.pi/agent/`` (AGENTS.md, skills/, settings.json). A plugin gets its base template's
files when it sets ``base_files`` (``providers.reads_like``), else ``~/.bot-bottle/`` and no
settings (see ``bot_bottle.providers.plugins``).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bot_bottle import providers, scratch
from bot_bottle.backend import Bottle
from bot_bottle.backend.docker.bottle import WORKDIR
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
    """Where the ``template`` agent's CLI reads its files (a plugin's: see ``providers.reads_like``)."""
    return LAYOUTS.get(providers.reads_like(template) or "", FALLBACK)


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


def claude_api_key_suffix(key: str) -> str:
    """How Claude Code remembers an API key it was told to use: its last 20 characters."""
    return key.strip()[-20:]


def claude_first_run_state() -> dict[str, object]:
    """bot-bottle's keys in ``~/.claude.json``: each first-run question an interactive session
    would otherwise stop at, answered the way a bottle needs (measured with Claude Code 2.1.330
    on a terminal; ``hasSeenAutoDefaultNudge`` is what it writes itself once the question has
    been answered)."""
    return {
        # The onboarding wizard (theme, login).
        "hasCompletedOnboarding": True,
        "bypassPermissionsModeAccepted": True,
        # "Detected a custom API key in your environment": its default answer is No, which
        # leaves the session "Not logged in". The key is the bottle's placeholder (the proxy
        # injects the real one); a bottle that sets ANTHROPIC_API_KEY itself gets the question.
        "customApiKeyResponses": {"approved": [claude_api_key_suffix(providers.PLACEHOLDER)], "rejected": []},
        # "Quick safety check: ... trust this folder": its default answer exits. The workspace
        # is what the bottle is for.
        "projects": {WORKDIR: {"hasTrustDialogAccepted": True}},
        # "Make auto mode your default permission mode?": its default answer moves the session
        # off bypassPermissions, into a mode that asks a classifier (and may stop) per tool call.
        "hasSeenAutoDefaultNudge": True,
    }


# Claude Code's process environment, from its own settings (so a `claude` started by hand in the
# bottle has it too). Each would otherwise call hosts the proxy refuses at every start (measured
# with 2.1.330): its nonessential traffic (update checks and downloads from downloads.claude.ai,
# telemetry, error reports, release notes; the session showed "Auto-update failed"), and the
# official plugin marketplace's first install (downloads.claude.ai, then github.com). The
# autoupdater is named on its own as well, in case a later version narrows what the first
# switch covers.
CLAUDE_ENV = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
}


def claude_settings_files() -> dict[str, str]:
    """Claude Code inside a bottle: no permission prompts (the bottle is the boundary), no wizard
    or first-run question, no calls the proxy would refuse."""
    layout = LAYOUTS["claude"]
    settings = {
        "permissions": {"defaultMode": "bypassPermissions"},
        "skipDangerousModePermissionPrompt": True,
        "env": dict(CLAUDE_ENV),
    }
    state = claude_first_run_state()
    return {
        f"{layout.config_dir}/settings.json": json.dumps(settings, indent=2) + "\n",
        f"{HOME}/.claude.json": json.dumps(state, indent=2) + "\n",
    }


CODEX_CONFIG = f"""\
# Written by bot-bottle. The bottle is the sandbox: Codex's own sandbox and approvals are off.
approval_policy = "never"
sandbox_mode = "danger-full-access"
model_provider = "bottle"
# The proxy would refuse the interactive session's update check (api.github.com) at every start.
check_for_update_on_startup = false

# Codex ignores OPENAI_BASE_URL: name the real API host explicitly. Requests go through the
# bottle's proxy, which swaps the placeholder key for the real one.
[model_providers.bottle]
name = "OpenAI (through the bottle's proxy)"
base_url = "https://api.openai.com/v1"
env_key = "OPENAI_API_KEY"
wire_api = "responses"

# Usage analytics (ab.chatgpt.com) and the plugin catalogue (chatgpt.com, github.com,
# api.github.com) would only be refused by the proxy, at every start.
[analytics]
enabled = false

[features]
plugins = false

# "Trust this folder?" stops an interactive session when the workspace is a git repository.
[projects."{WORKDIR}"]
trust_level = "trusted"
"""


# No model is pinned: pi (0.73.1) picks the default model of the first provider it has a key for,
# and the bottle gives it only ANTHROPIC_API_KEY (its provider route), so it picks Anthropic's
# current default. A pinned model goes stale (a retired one warns at every run); a provider
# without a model is ignored by pi. Install telemetry would only be refused by the proxy. (The
# version check has no setting: the image sets PI_SKIP_VERSION_CHECK.)
PI_SETTINGS = {
    "quietStartup": True,
    "enableInstallTelemetry": False,
}


def settings_files(template: str) -> dict[str, str]:
    """The provider CLI's settings files, by path in the bottle (none for a plugin that does not
    run a built-in's CLI, see ``providers.reads_like``)."""
    files = providers.reads_like(template)
    if files == "claude":
        return claude_settings_files()
    if files == "codex":
        return {f"{LAYOUTS['codex'].config_dir}/config.toml": CODEX_CONFIG}
    if files == "pi":
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


def _merged(kept: object, fresh: object) -> object:
    """``fresh`` laid over ``kept``: objects merged key by key, lists given ``fresh``'s items that
    are missing, anything else ``fresh``'s. Claude Code keeps its own state next to bot-bottle's
    keys inside the same objects (a project's history beside its trust, its approved keys)."""
    if isinstance(kept, dict) and isinstance(fresh, dict):
        out = dict(kept)
        for key, value in fresh.items():
            out[key] = _merged(kept[key], value) if key in kept else value
        return out
    if isinstance(kept, list) and isinstance(fresh, list):
        return kept + [item for item in fresh if item not in kept]
    return fresh


def resumed_claude_state(existing: str, fresh: str) -> str:
    """``~/.claude.json`` for a resumed bottle: Claude Code's own state kept (projects, history,
    caches), bot-bottle's keys set again from ``fresh`` (merged into the objects they share with
    Claude Code's state, so a project keeps its history and is trusted again), and every MCP
    server registration dropped, top level and per project, so only what the manifest gives now
    (``fresh``'s) is there. A server the agent added would otherwise run again in every later
    session. A file that is no JSON object is replaced by ``fresh``."""
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
    ours = json.loads(fresh)
    merged = _merged(state, ours)
    # The placeholder key rejected in an older bottle (before bot-bottle answered that question)
    # would stay rejected beside its approval: the session would again be "Not logged in".
    approved = (ours.get("customApiKeyResponses") or {}).get("approved") or []
    responses = merged.get("customApiKeyResponses")
    if isinstance(responses, dict) and isinstance(responses.get("rejected"), list):
        responses["rejected"] = [key for key in responses["rejected"] if key not in approved]
    return json.dumps(merged, indent=2) + "\n"


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
    "CLAUDE_ENV", "CODEX_CONFIG", "PI_SETTINGS", "claude_api_key_suffix", "claude_first_run_state", "copy_skills",
    "find_skills", "host_skill_folders", "layout_for", "prompt_files", "provision_resume_files",
    "provision_start_files", "resumed_claude_state", "settings_files", "start_files", "write_files",
]
