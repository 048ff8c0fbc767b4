"""User plugin providers: ``~/.bot-bottle/contrib/<name>/`` used like a built-in provider.

A plugin folder holds ``provider.py``, a Python module that defines ``PROVIDER``, a
``bot_bottle.providers.ProviderInfo`` whose ``template`` is the folder's name, and optionally a
``Dockerfile`` for the agent image. The Dockerfile is built with the plugin folder as its context
and ``BOT_BOTTLE_AGENT_IMAGE`` naming the built-in image of ``PROVIDER.base_template`` (default
``claude``: Debian, git, socat, curl, the ``node`` user), so a plugin usually starts with::

    ARG BOT_BOTTLE_AGENT_IMAGE
    FROM ${BOT_BOTTLE_AGENT_IMAGE}

Without a Dockerfile the agent runs in that built-in image as it is.

By default ``base_template`` chooses the image only, and what the agent reads at its start lands
in bot-bottle's own neutral place, which any CLI can be pointed at (``$HOME`` is ``/home/node``):

- the agent manifest's body (its system prompt): ``~/.bot-bottle/system-prompt.md``;
- each skill the manifest names: ``~/.bot-bottle/skills/<name>/`` (the folder as on the host,
  ``SKILL.md`` in it);
- no CLI settings, and no supervise MCP server registration (there is no file to add it to).

A plugin whose command runs ``base_template``'s own CLI (a wrapper script around ``claude``, or
the same CLI with other flags) sets ``base_files=True`` and gets that CLI's files exactly as the
built-in template does (``bot_bottle.provision.agent_files`` writes them):

- ``claude``: ``~/.claude/CLAUDE.md``, ``~/.claude/skills/<name>/``, ``~/.claude/settings.json``,
  and ``~/.claude.json`` with the supervise server registered;
- ``codex``: ``~/.codex/AGENTS.md``, ``~/.codex/skills/<name>/``, and ``~/.codex/config.toml``
  with the supervise server registered;
- ``pi``: ``~/.pi/agent/AGENTS.md``, ``~/.pi/agent/skills/<name>/``, ``~/.pi/agent/settings.json``.

It is not the default because every plugin has a ``base_template`` (``claude`` unless it says
otherwise) whether or not it runs that CLI, and an agent that does not would get Claude Code's
settings and lose the prompt file it reads today.

The module runs on the host, in the bot-bottle process, when a manifest that names the plugin is
resolved: it is the user's own code, like a shell rc file. Whatever is wrong with it is reported
with its file (and line when there is one), never as a traceback.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import sys
import traceback
from pathlib import Path

from bot_bottle.errors import BotBottleError
from bot_bottle.providers import BUILTIN, ProviderInfo

MODULE_FILE = "provider.py"
DOCKERFILE = "Dockerfile"
AUTH_SCHEMES = ("bearer", "token", "basic", "header")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
_EXAMPLE = "PROVIDER = ProviderInfo(template=..., command=..., api_host=..., ...)"


class PluginError(BotBottleError):
    """A plugin provider cannot be used; the message names the file and what is wrong."""


def load(name: str, contrib_dir: Path) -> ProviderInfo:
    folder = contrib_dir / name
    module_path = folder / MODULE_FILE
    if not module_path.is_file():
        raise PluginError(
            f"plugin provider '{name}': {module_path} does not exist",
            hint=f"a plugin folder holds {MODULE_FILE} defining {_EXAMPLE} (from bot_bottle.providers)",
        )
    module = _run(name, module_path)
    provider = getattr(module, "PROVIDER", None)
    if provider is None:
        raise PluginError(f"{module_path}: defines no PROVIDER", hint=f"add {_EXAMPLE}")
    if not isinstance(provider, ProviderInfo):
        raise PluginError(
            f"{module_path}: PROVIDER is {_a(type(provider).__name__)}, not a bot_bottle.providers.ProviderInfo",
            hint=f"from bot_bottle.providers import ProviderInfo; {_EXAMPLE}",
        )
    problems = check(provider, name)
    if problems:
        raise PluginError(f"{module_path}: PROVIDER: " + "; ".join(problems))
    dockerfile = folder / DOCKERFILE
    return dataclasses.replace(
        provider,
        dockerfile=dockerfile.resolve() if dockerfile.is_file() else None,
        plugin_dir=folder.resolve(),
    )


def _a(noun: str) -> str:
    """``noun`` with its indefinite article: "an int", "a dict"."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def check(provider: ProviderInfo, name: str) -> list[str]:
    """Every problem with a plugin's ``ProviderInfo`` (pure; empty when it is usable)."""
    problems = []
    if provider.template != name:
        problems.append(f"template is {provider.template!r}, but the folder is named {name!r} (they must match)")
    if not isinstance(provider.command, str) or not provider.command or any(c.isspace() for c in provider.command):
        problems.append("command must be one program name or path, without spaces (arguments go in headless_flags)")
    flags = provider.headless_flags
    if not isinstance(flags, tuple) or not all(isinstance(f, str) for f in flags):
        problems.append("headless_flags must be a tuple of strings")
    if provider.base_template not in BUILTIN:
        problems.append(f"base_template {provider.base_template!r} is not a built-in template ({', '.join(BUILTIN)})")
    if not isinstance(provider.base_files, bool):
        problems.append("base_files must be True or False")
    if provider.dockerfile is not None or provider.plugin_dir is not None:
        problems.append("dockerfile and plugin_dir are set by bot-bottle (put a Dockerfile next to provider.py)")
    if not isinstance(provider.api_host, str):
        problems.append("api_host must be a host name, or '' for an agent that needs no API")
    elif provider.api_host:
        if not _HOST.match(provider.api_host):
            problems.append(f"api_host {provider.api_host!r} is not a lower-case host name")
        if provider.auth_scheme not in AUTH_SCHEMES:
            problems.append(f"auth_scheme must be one of {', '.join(AUTH_SCHEMES)} (got {provider.auth_scheme!r})")
        if provider.auth_scheme == "header" and not provider.auth_header:
            problems.append("auth_scheme 'header' needs auth_header (the header's name)")
        if not isinstance(provider.default_auth_token, str) or not _ENV_NAME.match(provider.default_auth_token):
            problems.append("default_auth_token must name a host environment variable")
    return problems


def _run(name: str, path: Path) -> object:
    """Execute the plugin module; any failure becomes a ``PluginError`` naming file and line."""
    module_name = "bot_bottle_contrib_" + re.sub(r"\W", "_", name)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and the like look their module up here
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        raise PluginError(f"{path}:{exc.lineno or '?'}: syntax error: {exc.msg}") from None
    except SystemExit as exc:  # exit() in the module must not end bot-bottle with its status
        sys.modules.pop(module_name, None)
        raise PluginError(f"{path}: the module called exit({exc.code!r}) while loading",
                          hint="a provider module only defines PROVIDER; it runs when a bottle using it is resolved") from None
    except Exception as exc:  # noqa: BLE001 - the user's code may raise anything
        sys.modules.pop(module_name, None)
        line = next((f.lineno for f in reversed(traceback.extract_tb(exc.__traceback__))
                     if Path(f.filename) == path), None)
        where = f"{path}:{line}" if line else str(path)
        raise PluginError(f"{where}: {type(exc).__name__}: {exc}",
                          hint="fix the plugin module; it runs when a bottle using it is resolved") from None
    return module
