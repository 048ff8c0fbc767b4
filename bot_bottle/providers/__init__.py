"""What each built-in agent provider needs from a bottle: its CLI, its API host, its credential.

This is the data the plan needs; launching and provisioning per provider build on it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProviderInfo:
    template: str
    command: str
    # The API host the agent talks to; the proxy injects the provider credential there.
    api_host: str
    # How the credential is sent when the token is an API key (OAuth tokens use bearer).
    auth_scheme: str
    auth_header: str | None
    # Default host env var holding the credential when the bottle does not name one.
    default_auth_token: str
    # The flags that run one prompt non-interactively, before the prompt text.
    headless_flags: tuple[str, ...] = ("-p",)

    def headless_args(self, prompt: str) -> list[str]:
        return [*self.headless_flags, prompt]


BUILTIN: dict[str, ProviderInfo] = {
    "claude": ProviderInfo("claude", "claude", "api.anthropic.com", "header", "x-api-key", "ANTHROPIC_API_KEY"),
    "codex": ProviderInfo("codex", "codex", "api.openai.com", "bearer", None, "OPENAI_API_KEY", ("exec",)),
    "pi": ProviderInfo("pi", "pi", "api.anthropic.com", "header", "x-api-key", "ANTHROPIC_API_KEY"),
}


def info(template: str) -> ProviderInfo | None:
    """The built-in provider for ``template``, or None for a user plugin."""
    return BUILTIN.get(template)
