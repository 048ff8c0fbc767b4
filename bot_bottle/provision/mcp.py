"""Register the bottle's supervise MCP server with the agent's CLI.

The server runs in the sidecar; the agent reaches it through its proxy as
``http://supervise.bottle.internal/mcp`` (streamable HTTP). Registration is additive: it adds one
entry to the CLI's config file as ``agent_files`` writes it, so whatever else is there is kept,
and registering twice changes nothing. Pure functions over the file's text; ``agent_files``
writes the result with the rest of a new bottle's start files.

- Claude Code: ``~/.claude.json`` ``mcpServers.supervise = {"type": "http", "url": ...}``.
- Codex: a ``[mcp_servers.supervise]`` table in ``~/.codex/config.toml``, with a tool timeout
  longer than the server's wait (Codex's own default would cut a call off after a minute).
- pi: nothing (it has no MCP client); the tools are simply not offered.
- Plugins: what their base template gets when they set ``base_files`` (they run its CLI, see
  ``providers.reads_like``), else nothing.
"""

from __future__ import annotations

import json

from bot_bottle import providers
from bot_bottle.errors import BotBottleError
from bot_bottle.sidecar.supervise.endpoint import DEFAULT_TIMEOUT_S, PATH, SERVICE

HOME = "/home/node"
SERVER_NAME = "supervise"
SUPERVISE_URL = f"http://{SERVICE}.bottle.internal{PATH}"
CLAUDE_STATE = f"{HOME}/.claude.json"
CODEX_CONFIG = f"{HOME}/.codex/config.toml"
# Headroom over the server's own wait, so the agent always hears the verdict (even "expired").
TOOL_TIMEOUT_MARGIN_S = 60


def claude_state(existing: str | None, url: str = SUPERVISE_URL) -> str:
    """``~/.claude.json`` with the supervise server registered; other keys and servers kept."""
    try:
        state = json.loads(existing) if existing else {}
    except json.JSONDecodeError:
        raise BotBottleError(f"{CLAUDE_STATE} in the bottle is not valid JSON; cannot register the supervise server") from None
    if not isinstance(state, dict):
        raise BotBottleError(f"{CLAUDE_STATE} in the bottle is not a JSON object")
    servers = state.get("mcpServers")
    if not isinstance(servers, dict):
        servers = {}
    servers[SERVER_NAME] = {"type": "http", "url": url}
    state["mcpServers"] = servers
    return json.dumps(state, indent=2) + "\n"


def codex_config(existing: str | None, url: str = SUPERVISE_URL, timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
    """``config.toml`` with a ``[mcp_servers.supervise]`` table; unchanged if it has one already."""
    text = existing or ""
    if f"[mcp_servers.{SERVER_NAME}]" in text:
        return text
    table = (
        "\n# Written by bot-bottle: ask the operator when the bottle blocks something.\n"
        f"[mcp_servers.{SERVER_NAME}]\n"
        f"url = {json.dumps(url)}\n"
        f"tool_timeout_sec = {int(timeout_s + TOOL_TIMEOUT_MARGIN_S)}\n"
    )
    if text and not text.endswith("\n"):
        text += "\n"
    return text + table


def registration_path(template: str) -> str | None:
    """The file that registers MCP servers with the ``template`` agent's CLI, or None."""
    return {"claude": CLAUDE_STATE, "codex": CODEX_CONFIG}.get(providers.reads_like(template) or "")


def registered(template: str, existing: str | None, *, url: str = SUPERVISE_URL,
               timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
    """``registration_path(template)``'s text with the supervise server added to ``existing``."""
    files = providers.reads_like(template)
    if files == "claude":
        return claude_state(existing, url)
    if files == "codex":
        return codex_config(existing, url, timeout_s)
    raise ValueError(f"no MCP registration for template {template!r}")


__all__ = ["SUPERVISE_URL", "claude_state", "codex_config", "registered", "registration_path"]
