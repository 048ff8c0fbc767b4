"""Names and labels of a bottle's Docker objects.

Everything a bottle creates carries ``bot-bottle.id`` (and friends), so ``list`` and ``cleanup``
find it from the engine alone, without any database.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

LABEL_ID = "bot-bottle.id"
LABEL_AGENT = "bot-bottle.agent"
LABEL_BOTTLE = "bot-bottle.bottle"
LABEL_ROLE = "bot-bottle.role"
# The launching process, ``proc.identity()``: PID:START-PIDNS-HOST (PID:START before the namespace
# and host were recorded). Read it only through ``proc.owner_state`` / ``proc.is_alive``: a pid is
# checkable only from the PID namespace and host it was taken in.
LABEL_OWNER = "bot-bottle.owner"
LABEL_LABEL = "bot-bottle.label"
LABEL_BACKEND = "bot-bottle.backend"
LABEL_STATE = "bot-bottle.state"  # the bottle's state folder: which home it was started from
PREFIX = "bot-bottle"


def new_id() -> str:
    """8 lowercase hex characters: short enough to type, 4 billion values to avoid clashes."""
    return secrets.token_hex(4)


def slug(text: str) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return cleaned[:24] or "agent"


@dataclass(frozen=True)
class BottleNames:
    id: str
    agent: str

    @property
    def slug(self) -> str:
        return f"{slug(self.agent)}-{self.id}"

    @property
    def agent_container(self) -> str:
        return f"{PREFIX}-{self.id}-agent"

    @property
    def sidecar_container(self) -> str:
        return f"{PREFIX}-{self.id}-sidecar"

    @property
    def network(self) -> str:
        return f"{PREFIX}-{self.id}-net"

    @property
    def socket_volume(self) -> str:
        return f"{PREFIX}-{self.id}-sock"

    @property
    def snapshot_repo(self) -> str:
        return f"{PREFIX}/snapshot"

    def snapshot_ref(self) -> str:
        return f"{self.snapshot_repo}:{self.id}"


def label_args(labels: dict[str, str]) -> list[str]:
    out: list[str] = []
    for key, value in sorted(labels.items()):
        out += ["--label", f"{key}={value}"]
    return out
