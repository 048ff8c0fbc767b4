"""What each agent provider needs from a bottle: its CLI, its API host, its credential.

Built-in providers are below; a user plugin in ``~/.bot-bottle/contrib/<name>/`` (see
``bot_bottle.providers.plugins``) supplies the same ``ProviderInfo`` and is used exactly like one
once ``resolve`` has loaded it. This is the data the plan needs; launching and provisioning per
provider build on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
    "codex": ProviderInfo("codex", "codex", "api.openai.com", "bearer", None, "OPENAI_API_KEY", ("exec",)),
    "pi": ProviderInfo("pi", "pi", "api.anthropic.com", "header", "x-api-key", "ANTHROPIC_API_KEY"),
}

# Plugins loaded in this process, by template name (``resolve`` fills it).
_LOADED: dict[str, ProviderInfo] = {}


def info(template: str) -> ProviderInfo | None:
    """The provider for ``template``: a built-in, or a plugin ``resolve`` has loaded; else None."""
    return BUILTIN.get(template) or _LOADED.get(template)


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
