"""Names and labels of a micro-VM bottle's machine.

Machines are found again by their name prefix (every smolvm series has names) and, on 1.x, by
the same ``bot-bottle.*`` labels Docker objects carry (owner, id), so ``cleanup`` can tell a
live bottle's machine from an orphan without any database.
"""

from __future__ import annotations

import re

from bot_bottle.backend.docker.names import PREFIX

MACHINE_PREFIX = f"{PREFIX}-"
_MACHINE_RE = re.compile(rf"^{re.escape(MACHINE_PREFIX)}([a-z0-9]{{6,32}})$")


def machine_name(bottle_id: str) -> str:
    return f"{MACHINE_PREFIX}{bottle_id}"


def bottle_id_of(machine: str) -> str | None:
    """The bottle id in a machine name we created, or None for anybody else's machine."""
    match = _MACHINE_RE.match(machine)
    return match.group(1) if match else None
