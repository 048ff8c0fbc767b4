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
from collections.abc import Iterable, Mapping
from pathlib import Path

from bot_bottle.backend import Bottle
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


def split_agent_env(env: Mapping[str, str], secret_env_names: Iterable[str],
                    known_secrets: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(plain, secret) env of a launch: the plan's secret names and every known secret."""
    secret_values = {v for v in known_secrets.values() if v}
    return split_env(env, set(secret_env_names) | set(known_secrets), secret_values)


def write_secret_env(bottle: Bottle, env: Mapping[str, str], path: str) -> None:
    """Put the secret env file at ``path`` in the bottle: streamed in (never on an argv), its
    folder mode 700 and itself mode 600 (``Bottle.write_private``: on Docker, never a file on
    the host either)."""
    bottle.write_private(path, secret_env_text(env))
    folder = shlex.quote(str(Path(path).parent))
    result = bottle.exec(f"chmod 700 {folder} && chmod 600 {shlex.quote(path)}")
    if not result.ok:
        raise BotBottleError(f"could not restrict the agent's env file: {(result.stderr or result.stdout).strip()}")


def launcher_argv(secret_env_file: str, command: list[str]) -> list[str]:
    """``command`` run by a shell that first sources ``secret_env_file`` (argv of the bottle's exec)."""
    return ["sh", "-c", LAUNCHER, LAUNCHER_NAME, secret_env_file, *command]
