"""Make the bottle's own CA trusted by the system store, Node, Python and git inside the agent."""

from __future__ import annotations

import shlex
import time

from bot_bottle.backend import Bottle
from bot_bottle.errors import BotBottleError


def trust_bottle_ca(bottle: Bottle, ca_in_volume: str, ca_in_agent: str, *, timeout: float = 20) -> None:
    """Install the sidecar's CA certificate (never its key) into the agent's trust store."""
    src, dst = shlex.quote(ca_in_volume), shlex.quote(ca_in_agent)
    deadline = time.monotonic() + timeout
    while True:
        result = bottle.exec(f"test -s {src}", user="root")
        if result.ok:
            break
        if time.monotonic() > deadline:
            raise BotBottleError(f"the sidecar did not publish its CA certificate ({ca_in_volume}) in {timeout:g} s")
        time.sleep(0.1)
    result = bottle.exec(f"cp {src} {dst} && chmod 644 {dst} && update-ca-certificates >/dev/null 2>&1", user="root")
    if not result.ok:
        raise BotBottleError(f"could not trust the bottle CA inside the agent: {result.stderr.strip()}")
