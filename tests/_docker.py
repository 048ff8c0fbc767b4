"""Docker helpers for integration tests: engine detection, skip-or-fail, leak snapshots.

Integration tests skip cleanly on a machine without Docker, except under ``CI=true`` where a
missing engine must fail the run: a green CI must never hide a broken install.
"""

from __future__ import annotations

import functools
import os
import unittest
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from bot_bottle import doctor
from bot_bottle.backend.docker import engine

_T = TypeVar("_T", bound=type)

# `docker info` against a hung engine never returns; an integration test run must not either.
_INFO_TIMEOUT = 15.0


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@functools.lru_cache(maxsize=1)
def _probe() -> tuple[bool, str]:
    """(engine answers, why not). Cached: one `docker info` per test process is enough.

    Shares the doctor's probe, which copes with old and new docker CLIs reporting a down
    daemon differently (exit code 0 with ServerErrors, or non-zero with words on stderr).
    """
    info, reason = doctor.probe_docker_info(timeout=_INFO_TIMEOUT)
    return info is not None, reason


def docker_available() -> bool:
    return _probe()[0]


def docker_unavailable_reason() -> str:
    return _probe()[1]


def skip_unless_docker() -> Callable[[_T], _T]:
    """Class decorator: run the TestCase when an engine answers, else skip it (fail under CI)."""

    def decorate(cls: _T) -> _T:
        if docker_available():
            return cls
        reason = docker_unavailable_reason()
        if in_ci():
            message = f"CI=true but no Docker engine answers: {reason}"

            def setUpClass(klass: type) -> None:
                raise AssertionError(message)

            cls.setUpClass = classmethod(setUpClass)  # type: ignore[attr-defined]
            return cls
        return unittest.skip(f"no Docker engine answers: {reason}")(cls)

    return decorate


@dataclass(frozen=True)
class ResourceSnapshot:
    """Docker objects that exist at one moment: container ids (stopped ones too), network ids,
    volume names. Compare a snapshot taken before a test with one taken after to find leaks."""

    containers: frozenset[str]
    networks: frozenset[str]
    volumes: frozenset[str]

    def new_since(self, before: ResourceSnapshot) -> ResourceSnapshot:
        return ResourceSnapshot(
            containers=self.containers - before.containers,
            networks=self.networks - before.networks,
            volumes=self.volumes - before.volumes,
        )

    def is_empty(self) -> bool:
        return not (self.containers or self.networks or self.volumes)


def _ids(args: list[str]) -> frozenset[str]:
    result = engine.run(args, timeout=60)
    return frozenset(line.strip() for line in result.stdout.splitlines() if line.strip())


def resource_snapshot(*, label: str | None = None) -> ResourceSnapshot:
    """Snapshot the engine's containers, networks and volumes.

    Other test runs may share the engine; pass ``label`` (``key`` or ``key=value``) to look
    only at objects carrying it.
    """
    filters = ["--filter", f"label={label}"] if label else []
    return ResourceSnapshot(
        containers=_ids(["ps", "-a", "-q", "--no-trunc", *filters]),
        networks=_ids(["network", "ls", "-q", "--no-trunc", *filters]),
        volumes=_ids(["volume", "ls", "-q", *filters]),
    )
