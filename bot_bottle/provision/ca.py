"""Make the bottle's own CA trusted by the system store, Node, Python and git inside the agent."""

from __future__ import annotations

import shlex
import time

from bot_bottle.backend import Bottle
from bot_bottle.errors import BotBottleError

SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def trust_script(ca_in_volume: str, ca_in_agent: str) -> str:
    """The root shell script that installs the certificate at ``ca_in_volume`` (never its key).

    The certificate is appended to the system bundle that curl, git, Python and OpenSSL read, and
    kept as its own file for ``NODE_EXTRA_CA_CERTS``. Appending is what ``update-ca-certificates``
    would do for one certificate, at a fraction of its cost on every start. It is the last step of
    a launch: the shell's builtins do all but reading the file and setting the copy's mode, two
    processes where a tool for each step took six (each a process start in a busy agent).
    """
    src, dst, bundle = shlex.quote(ca_in_volume), shlex.quote(ca_in_agent), shlex.quote(SYSTEM_BUNDLE)
    return (
        f"cert=$(cat {src}) && "
        f"case \"$cert\" in *'BEGIN CERTIFICATE'*'END CERTIFICATE'*) ;; "
        f"*) echo {shlex.quote(f'{ca_in_volume} holds no certificate')} >&2; false ;; esac && "
        f"umask 022 && printf '%s\\n' \"$cert\" > {dst} && chmod 644 {dst} && "
        f"printf '\\n%s\\n' \"$cert\" >> {bundle}"
    )


# How often the waiting script looks for the certificate (one ``sleep`` process a look: the
# shell's test is a builtin), and what it does where ``sleep`` takes whole seconds only.
WAIT_STEP_SECONDS = 0.02
WAIT_STEP = f"sleep {WAIT_STEP_SECONDS} 2>/dev/null || sleep 1"
WAIT_EXPIRED = 3  # the waiting script's status when the certificate never came


def wait_then_trust_script(ca_in_volume: str, ca_in_agent: str, timeout: float) -> str:
    """``trust_script`` run once ``ca_in_volume`` exists, waiting for it inside the bottle.

    Started while the sidecar still makes its CA, the ``docker exec`` (a client's start and a
    round trip to the engine) is behind it by then, and the certificate is trusted a poll step
    after it appears. ``ca_in_volume`` must be a name no earlier start wrote (the sidecar's
    ``--ca-copy``): an older certificate left in a reused volume would be trusted instead.
    The sidecar writes it whole (a rename), so one that exists is complete.
    """
    src = shlex.quote(ca_in_volume)
    looks = max(int(timeout / WAIT_STEP_SECONDS), 1)
    return (
        f"n=0; while [ ! -s {src} ]; do "
        f"n=$((n + 1)); [ \"$n\" -gt {looks} ] && exit {WAIT_EXPIRED}; {WAIT_STEP}; done; "
        + trust_script(ca_in_volume, ca_in_agent)
    )


def trust_bottle_ca(bottle: Bottle, ca_in_volume: str, ca_in_agent: str, *, timeout: float = 30) -> None:
    """Install the sidecar's CA certificate (never its key) into the agent's trust store (``trust_script``)."""
    script = trust_script(ca_in_volume, ca_in_agent)
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
