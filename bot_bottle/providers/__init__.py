"""What each agent provider needs from a bottle: its CLI, its API host, its credential.

Built-in providers are below; a user plugin in ``~/.bot-bottle/contrib/<name>/`` (see
``bot_bottle.providers.plugins``) supplies the same ``ProviderInfo`` and is used exactly like one
once ``resolve`` has loaded it. This is the data the plan needs; launching and provisioning per
provider build on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# What the agent holds where its provider credential would be (its ``default_auth_token``
# variable). The proxy strips it and injects the real one, so it only has to make the CLI believe
# it is configured; it is not token-shaped, so it can never be mistaken for (or leak as) a real
# key. The CLI settings written into a bottle name it too (Claude Code is told the key is
# approved), so it is defined here, where both the launch and the provisioners read it.
PLACEHOLDER = "bot-bottle-placeholder-credential"


@dataclass(frozen=True)
class ProviderInfo:
    template: str
    command: str
    # The API host the agent talks to; the proxy injects the provider credential there. Empty
    # for an agent that needs no API (then there is no provider route).
    api_host: str
    # How the credential is sent when the token is an API key (Anthropic OAuth tokens are sent
    # as a bearer token instead: the proxy decides by the token's shape, see egress.credentials).
    auth_scheme: str
    auth_header: str | None
    # Default host env var holding the credential when the bottle does not name one.
    default_auth_token: str
    # The flags that run one prompt non-interactively, before the prompt text.
    headless_flags: tuple[str, ...] = ("-p",)
    # Plugins only: the built-in template whose agent image the plugin's image starts from (its
    # Dockerfile gets it as BOT_BOTTLE_AGENT_IMAGE) or, without a Dockerfile, runs in as it is.
    base_template: str = "claude"
    # Plugins only: True when the plugin's command runs base_template's CLI (a wrapper around
    # `claude`, say): it then gets that CLI's files as the built-in does (its settings, its
    # system prompt and skills where that CLI reads them, the supervise server registered).
    # False (the default) for any other agent: its prompt and skills go to bot-bottle's own
    # neutral place (~/.bot-bottle/) and no CLI's settings are written. Opt-in, because
    # base_template defaults to "claude" for the image alone: every plugin has one.
    base_files: bool = False
    # Plugins only: the plugin's own Dockerfile and folder (set by the loader, not the plugin).
    dockerfile: Path | None = None
    plugin_dir: Path | None = None

    def headless_args(self, prompt: str) -> list[str]:
        return [*self.headless_flags, prompt]

    @property
    def is_plugin(self) -> bool:
        return self.plugin_dir is not None


BUILTIN: dict[str, ProviderInfo] = {
    "claude": ProviderInfo("claude", "claude", "api.anthropic.com", "header", "x-api-key", "ANTHROPIC_API_KEY"),
    # `codex exec` refuses to run outside a git repository unless told; a bottle's workspace is
    # one only when the copied-in tree is.
    "codex": ProviderInfo("codex", "codex", "api.openai.com", "bearer", None, "OPENAI_API_KEY",
                          ("exec", "--skip-git-repo-check")),
    "pi": ProviderInfo("pi", "pi", "api.anthropic.com", "header", "x-api-key", "ANTHROPIC_API_KEY"),
}

# Plugins loaded in this process, by template name (``resolve`` fills it).
_LOADED: dict[str, ProviderInfo] = {}


def info(template: str) -> ProviderInfo | None:
    """The provider for ``template``: a built-in, or a plugin ``resolve`` has loaded; else None."""
    return BUILTIN.get(template) or _LOADED.get(template)


def reads_like(template: str) -> str | None:
    """The built-in template whose files the ``template`` agent's CLI reads (settings, system
    prompt, skills, MCP registration): itself for a built-in, ``base_template`` for a plugin that
    sets ``base_files``, else None (bot-bottle's neutral layout, no CLI settings)."""
    if template in BUILTIN:
        return template
    provider = _LOADED.get(template)
    if provider is not None and provider.base_files and provider.base_template in BUILTIN:
        return provider.base_template
    return None


def resolve(template: str, contrib_dir: Path | None) -> ProviderInfo | None:
    """The provider for ``template``, loading a plugin from ``contrib_dir/<template>/`` when needed.

    Returns None only for a template that is neither built in nor a plugin folder (the manifest
    reports that). A broken plugin raises ``plugins.PluginError`` naming the file and the fault.
    """
    if template in BUILTIN:
        return BUILTIN[template]
    if contrib_dir is None or not (contrib_dir / template).is_dir():
        return _LOADED.get(template)
    from bot_bottle.providers import plugins

    provider = plugins.load(template, contrib_dir)
    _LOADED[template] = provider
    return provider
