"""The agent's secret env: kept out of container and machine configs, sourced at exec time.

A container's env (``docker create --env-file``) is part of its config: ``docker inspect`` shows
it, and ``docker commit`` copies it into the snapshot image (Docker 20.10 even keeps a second
copy under ``ContainerConfig`` that ``--change ENV`` cannot blank). Secret values (prompted
``?prompt`` values, ``${HOST_VAR}`` values, any known secret under another name) therefore go
into a mode-600 file inside the bottle instead, on memory that no snapshot captures, and the
agent's launcher sources it just before it replaces itself with the agent. Plain values stay in
the config.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from bot_bottle.errors import BotBottleError

# What runs the agent: source the secret env file (when there is one), then replace the shell
# with the agent so its extra arguments reach it unchanged ("$@", never re-parsed).
LAUNCHER = 'f="$1"; shift; if [ -r "$f" ]; then set -a; . "$f"; set +a; fi; exec "$@"'
LAUNCHER_NAME = "bot-bottle-agent"


def secret_env_text(env: Mapping[str, str]) -> str:
    """The secret env file: ``KEY='value'`` lines a POSIX shell sources (values shell-quoted)."""
    lines = []
    for key, value in env.items():
        if not key.isidentifier() or not key.isascii():
            raise BotBottleError(f"env {key!r}: not a valid variable name for the bottle")
        if "\0" in value:
            raise BotBottleError(f"env {key}: a value cannot contain a NUL byte")
        lines.append(f"{key}={shlex.quote(value)}")
    return "\n".join(lines) + ("\n" if lines else "")


def split_env(env: Mapping[str, str], secret_names: set[str], secret_values: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    """(plain, secret): secret by name, or by value when a known secret hides under another name."""
    plain: dict[str, str] = {}
    secret: dict[str, str] = {}
    for key, value in env.items():
        (secret if key in secret_names or (value and value in secret_values) else plain)[key] = value
    return plain, secret


def launcher_argv(secret_env_file: str, command: list[str]) -> list[str]:
    """``command`` run by a shell that first sources ``secret_env_file`` (argv of the bottle's exec)."""
    return ["sh", "-c", LAUNCHER, LAUNCHER_NAME, secret_env_file, *command]
