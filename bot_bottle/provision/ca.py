"""Make the bottle's own CA trusted by the system store, Node, Python and git inside the agent."""

from __future__ import annotations

import shlex
import time

from bot_bottle.backend import Bottle
from bot_bottle.errors import BotBottleError

SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def trust_bottle_ca(bottle: Bottle, ca_in_volume: str, ca_in_agent: str, *, timeout: float = 30) -> None:
    """Install the sidecar's CA certificate (never its key) into the agent's trust store.

    The certificate is appended to the system bundle that curl, git, Python and OpenSSL read, and
    kept as its own file for ``NODE_EXTRA_CA_CERTS``. Appending is what ``update-ca-certificates``
    would do for one certificate, at a fraction of its cost on every start.
    """
    src, dst, bundle = shlex.quote(ca_in_volume), shlex.quote(ca_in_agent), shlex.quote(SYSTEM_BUNDLE)
    script = (
        f"grep -q 'BEGIN CERTIFICATE' {src} && grep -q 'END CERTIFICATE' {src} && "
        f"cp {src} {dst} && chmod 644 {dst} && "
        f"{{ printf '\\n'; cat {dst}; }} >> {bundle} && "
        f"grep -c 'BEGIN CERTIFICATE' {bundle} >/dev/null"
    )
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        result = bottle.exec(script, user="root")
        if result.ok:
            return
        last = (result.stderr or result.stdout).strip()
        if time.monotonic() > deadline:
            break
        # The sidecar publishes its certificate shortly after it starts.
        time.sleep(0.1)
    raise BotBottleError(
        f"the agent could not trust the bottle CA within {timeout:g} s"
        + (f": {last}" if last else f" (the sidecar did not publish {ca_in_volume})")
    )
