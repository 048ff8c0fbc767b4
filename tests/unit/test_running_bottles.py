"""Which containers ``running()`` reads as bottles, for both backends."""

from __future__ import annotations

import json
import unittest
from unittest import mock

from bot_bottle.backend.docker import running as running_mod
from bot_bottle.backend.docker.engine import DockerError, DockerResult


def _container(cid: str, *, role: str, backend: str, bottle_id: str) -> dict:
    return {
        "Id": cid,
        "Config": {
            "Image": f"img-{cid}",
            "Labels": {
                "bot-bottle.id": bottle_id,
                "bot-bottle.agent": "dev",
                "bot-bottle.role": role,
                "bot-bottle.backend": backend,
                "bot-bottle.owner": "",
            },
        },
        "State": {"Status": "running", "StartedAt": "2026-11-22T05:00:00.123Z"},
    }


class FakeEngine:
    """Answers ``ps`` by label filters and ``inspect`` by id, like the engine would."""

    def __init__(self, containers: list[dict]) -> None:
        self.containers = {c["Id"]: c for c in containers}

    def run(self, args, **_kw) -> DockerResult:  # noqa: ANN001 - engine.run's shape
        if args[0] == "ps":
            wanted = [args[i + 1].removeprefix("label=") for i, a in enumerate(args) if a == "--filter"]
            hits = [
                cid for cid, c in self.containers.items()
                if all(c["Config"]["Labels"].get(k) == v for k, v in (w.split("=", 1) for w in wanted))
            ]
            return DockerResult(0, "\n".join(hits), "")
        if args[0] == "inspect":
            return DockerResult(0, json.dumps([self.containers[i] for i in args[1:]]), "")
        raise AssertionError(f"unexpected docker call {args}")


class RunningBottlesTest(unittest.TestCase):
    def _running(self, containers: list[dict], bottle_id: str | None = None):
        with mock.patch.object(running_mod.engine, "run", FakeEngine(containers).run):
            return running_mod.running(bottle_id)

    def test_docker_bottle_found_by_agent_and_vm_bottle_by_sidecar(self) -> None:
        found = self._running([
            _container("a1", role="agent", backend="docker", bottle_id="aaaaaaaa"),
            _container("s1", role="sidecar", backend="docker", bottle_id="aaaaaaaa"),
            _container("s2", role="sidecar", backend="smolmachines", bottle_id="bbbbbbbb"),
        ])
        self.assertEqual(sorted((b.id, b.backend) for b in found),
                         [("aaaaaaaa", "docker"), ("bbbbbbbb", "smolmachines")])

    def test_one_bottle_by_id(self) -> None:
        found = self._running([
            _container("a1", role="agent", backend="docker", bottle_id="aaaaaaaa"),
            _container("s2", role="sidecar", backend="smolmachines", bottle_id="bbbbbbbb"),
        ], "bbbbbbbb")
        self.assertEqual([(b.id, b.backend) for b in found], [("bbbbbbbb", "smolmachines")])

    def test_nothing_running(self) -> None:
        self.assertEqual(self._running([]), [])


class VanishingEngine(FakeEngine):
    """Containers ``ps`` lists but that are gone when inspected: their bottle ended in between
    (found with the real CLI: `list --running` failed on "No such object" about one time in ten
    while other bottles of the home ended). ``stderr`` is what the engine says about them."""

    def __init__(self, containers: list[dict], gone: set[str], stderr: str = "Error: No such object: {}\n") -> None:
        super().__init__(containers)
        self.gone = gone
        self.stderr = stderr

    def run(self, args, check: bool = True, **_kw) -> DockerResult:  # noqa: ANN001 - engine.run's shape
        if args[0] != "inspect":
            return super().run(args)
        present = [self.containers[i] for i in args[1:] if i not in self.gone]
        missing = [i for i in args[1:] if i in self.gone]
        result = DockerResult(1 if missing else 0, json.dumps(present), "".join(self.stderr.format(i) for i in missing))
        if check and result.returncode:
            raise DockerError(f"`docker inspect` failed: {result.stderr.strip()}", stderr=result.stderr)
        return result


def _up(container: dict) -> dict:
    return {**container, "State": {**container["State"], "Running": True}}


class BottlesEndingWhileListed(unittest.TestCase):
    containers = [_up(_container(cid, role=role, backend="docker", bottle_id=bid))
                  for cid, role, bid in (("a1", "agent", "aaaaaaaa"), ("s1", "sidecar", "aaaaaaaa"),
                                         ("a2", "agent", "cccccccc"), ("s2", "sidecar", "cccccccc"))]

    def _running(self, fake: VanishingEngine):
        with mock.patch.object(running_mod.engine, "run", fake.run):
            return running_mod.running()

    def test_a_bottle_gone_between_listing_and_inspecting_is_left_out(self) -> None:
        found = self._running(VanishingEngine(self.containers, gone={"a2", "s2"}))
        self.assertEqual([b.id for b in found], ["aaaaaaaa"])
        self.assertFalse(found[0].offline)

    def test_any_other_engine_error_is_still_one(self) -> None:
        fake = VanishingEngine(self.containers, gone={"a2"},
                               stderr="Error response from daemon: permission denied {}\n")
        with self.assertRaises(DockerError):
            self._running(fake)


if __name__ == "__main__":
    unittest.main()
