"""Running bottles, read from the engine by label (no database needed)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from bot_bottle import proc
from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.names import LABEL_AGENT, LABEL_ID, LABEL_LABEL, LABEL_OWNER, LABEL_ROLE, BottleNames


@dataclass(frozen=True)
class RunningBottle:
    id: str
    agent: str
    label: str | None
    status: str
    started_at: str
    owner_alive: bool
    image: str

    @property
    def names(self) -> BottleNames:
        return BottleNames(self.id, self.agent)


def running(bottle_id: str | None = None) -> list[RunningBottle]:
    filters = ["--filter", f"label={LABEL_ROLE}=agent"]
    if bottle_id:
        filters += ["--filter", f"label={LABEL_ID}={bottle_id}"]
    ids = engine.run(["ps", "-a", "-q", "--no-trunc", *filters], timeout=60).stdout.split()
    if not ids:
        return []
    data = json.loads(engine.run(["inspect", *ids], timeout=60).stdout or "[]")
    out = []
    for obj in data:
        labels = (obj.get("Config") or {}).get("Labels") or {}
        st = obj.get("State") or {}
        started = str(st.get("StartedAt", ""))
        try:
            started = datetime.fromisoformat(started.replace("Z", "+00:00").split(".")[0] + "+00:00").isoformat()
        except ValueError:
            pass
        out.append(
            RunningBottle(
                id=labels.get(LABEL_ID, "?"),
                agent=labels.get(LABEL_AGENT, "?"),
                label=labels.get(LABEL_LABEL),
                status=str(st.get("Status", "?")),
                started_at=started,
                owner_alive=proc.is_alive(labels.get(LABEL_OWNER)),
                image=str((obj.get("Config") or {}).get("Image", "")),
            )
        )
    return sorted(out, key=lambda b: b.started_at)
