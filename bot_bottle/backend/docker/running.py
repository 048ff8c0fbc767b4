"""Running bottles, read from the engine by label (no database needed).

A Docker bottle is found by its agent container. A micro-VM bottle has no agent container, but
its sidecar bundle is a Docker container labelled with its backend, so it is found by that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from bot_bottle import proc
from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.names import (
    LABEL_AGENT,
    LABEL_BACKEND,
    LABEL_ID,
    LABEL_LABEL,
    LABEL_OWNER,
    LABEL_ROLE,
    BottleNames,
)

# Backends whose bottles show up only through their sidecar bundle.
_SIDECAR_ONLY_BACKENDS = ("smolmachines",)


@dataclass(frozen=True)
class RunningBottle:
    id: str
    agent: str
    label: str | None
    status: str
    started_at: str
    owner_alive: bool
    image: str
    backend: str = "docker"
    # The agent's only way out: when its sidecar stopped (it fails closed when one of its
    # daemons dies) the agent runs on, offline. None where the sidecar is the bottle itself.
    sidecar_running: bool | None = None
    # The image its sidecar runs (None when unknown): one older than this version's keeps the
    # protections of the version that started it until the bottle is stopped and resumed.
    sidecar_image: str | None = None

    @property
    def offline(self) -> bool:
        return self.status == "running" and self.sidecar_running is False

    @property
    def names(self) -> BottleNames:
        return BottleNames(self.id, self.agent)


def _container_ids(role: str, bottle_id: str | None, backend: str | None = None) -> list[str]:
    filters = ["--filter", f"label={LABEL_ROLE}={role}"]
    if backend:
        filters += ["--filter", f"label={LABEL_BACKEND}={backend}"]
    if bottle_id:
        filters += ["--filter", f"label={LABEL_ID}={bottle_id}"]
    return engine.run(["ps", "-a", "-q", "--no-trunc", *filters], timeout=60).stdout.split()


def _inspect(ids: list[str]) -> list[dict]:
    """``docker inspect`` of containers just listed. One removed in between (another bottle
    ending meanwhile: on a busy engine, often) is left out, never an error for the whole list."""
    result = engine.run(["inspect", *ids], timeout=60, check=False)
    if result.returncode != 0:
        unreachable = engine.no_engine_error(result.stderr)
        if unreachable is not None:
            raise unreachable
        gone = ("no such object", "no such container")
        problems = [line for line in result.stderr.splitlines()
                    if line.strip() and not any(words in line.lower() for words in gone)]
        if problems:
            raise engine.DockerError(f"`docker inspect` failed: {problems[-1].strip()}", returncode=result.returncode,
                                     stderr=result.stderr)
    try:
        data = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        raise engine.DockerError("`docker inspect` answered something that is not JSON") from None
    return [obj for obj in data if isinstance(obj, dict)] if isinstance(data, list) else []


@dataclass(frozen=True)
class _Sidecar:
    running: bool
    image: str


def _sidecars(bottle_id: str | None) -> dict[str, _Sidecar]:
    """Bottle id -> its sidecar container (whether it runs, its image), for the Docker backend's bottles."""
    ids = _container_ids("sidecar", bottle_id, "docker")
    if not ids:
        return {}
    return {((obj.get("Config") or {}).get("Labels") or {}).get(LABEL_ID, ""):
            _Sidecar(bool((obj.get("State") or {}).get("Running")), str((obj.get("Config") or {}).get("Image", "")))
            for obj in _inspect(ids)}


def running(bottle_id: str | None = None) -> list[RunningBottle]:
    ids = _container_ids("agent", bottle_id)
    for backend in _SIDECAR_ONLY_BACKENDS:
        ids += _container_ids("sidecar", bottle_id, backend)
    if not ids:
        return []
    data = _inspect(ids)
    sidecars = _sidecars(bottle_id)
    out = []
    for obj in data:
        labels = (obj.get("Config") or {}).get("Labels") or {}
        st = obj.get("State") or {}
        started = str(st.get("StartedAt", ""))
        image = str((obj.get("Config") or {}).get("Image", ""))
        # A micro-VM bottle is found by its sidecar bundle: its own image is the sidecar's.
        sidecar = sidecars.get(labels.get(LABEL_ID, "")) if labels.get(LABEL_ROLE) == "agent" else _Sidecar(True, image)
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
                image=image,
                backend=labels.get(LABEL_BACKEND, "docker"),
                sidecar_running=(sidecar is not None and sidecar.running) if labels.get(LABEL_ROLE) == "agent" else None,
                sidecar_image=sidecar.image if sidecar is not None and sidecar.image else None,
            )
        )
    return sorted(out, key=lambda b: b.started_at)
