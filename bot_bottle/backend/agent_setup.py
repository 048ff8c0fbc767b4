"""What every backend gives the agent the same way, whatever runs it (a container, a micro-VM).

- ``terminal_env``: TERM and COLORTERM for an interactive run. The agent images are the same
  Debian-based images on every backend, so the same terminal types are known in all of them.
- ``default_git_fields``: which git identity fields are bot-bottle's default (no
  ``git-gate.user``), the ones written only where the agent has none of its own.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot_bottle.plan import DEFAULT_GIT_USER_SOURCE, BottlePlan

# Terminal types whose terminfo entries the agent images hold (Debian's ncurses-base): a host's
# TERM among them is passed on as it is; any other (xterm-kitty, alacritty, ...) would leave the
# agent's programs without a terminal description, so they get xterm-256color.
KNOWN_TERMS = frozenset({
    "xterm-256color", "screen-256color", "tmux-256color", "rxvt-unicode-256color",
    "xterm", "screen", "tmux", "linux", "vt100", "dumb",
})
DEFAULT_TERM = "xterm-256color"
TRUECOLOR = frozenset({"truecolor", "24bit"})


def terminal_env(host_env: Mapping[str, str]) -> dict[str, str]:
    """TERM (and COLORTERM) for an interactive run: a terminal allocated by `docker exec -t` or
    `smolvm machine exec -t` alone says nothing of what the user's terminal can show."""
    term = host_env.get("TERM", "")
    env = {"TERM": term if term in KNOWN_TERMS else DEFAULT_TERM}
    if host_env.get("COLORTERM", "").lower() in TRUECOLOR:
        env["COLORTERM"] = "truecolor"
    return env


def default_git_fields(plan: BottlePlan) -> list[str]:
    """The git identity fields the plan fills in by default (no ``git-gate.user``)."""
    return [key for key, source in plan.git_user_sources.items() if source == DEFAULT_GIT_USER_SOURCE]
