"""tests/_docker.py: skip without an engine, fail under CI, snapshot differences."""

from __future__ import annotations

import os
import unittest
from typing import Any
from unittest import mock

from bot_bottle.backend.docker import engine
from tests import _docker


class _Sample(unittest.TestCase):
    def test_noop(self) -> None:
        pass


def run_class(cls: type[unittest.TestCase]) -> unittest.TestResult:
    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(cls).run(result)
    return result


class SkipUnlessDockerTests(unittest.TestCase):
    def setUp(self) -> None:
        _docker._probe.cache_clear()
        self.addCleanup(_docker._probe.cache_clear)

    def decorate(self, *, answers: bool, ci: str | None) -> type[unittest.TestCase]:
        probe = (answers, "" if answers else "Cannot connect to the Docker daemon")
        env = {k: v for k, v in os.environ.items() if k != "CI"}
        if ci is not None:
            env["CI"] = ci
        with mock.patch.object(_docker, "_probe", return_value=probe), mock.patch.dict(os.environ, env, clear=True):
            # A fresh subclass each time: the decorator changes the class it is given.
            cls = type("Decorated", (_Sample,), {})
            return _docker.skip_unless_docker()(cls)

    def test_engine_answers_runs_the_class(self) -> None:
        result = run_class(self.decorate(answers=True, ci="true"))
        self.assertEqual((result.testsRun, len(result.skipped), len(result.errors)), (1, 0, 0))

    def test_no_engine_skips(self) -> None:
        result = run_class(self.decorate(answers=False, ci=None))
        self.assertEqual(len(result.skipped), 1)
        self.assertIn("Cannot connect", result.skipped[0][1])
        self.assertEqual(len(result.errors), 0)

    def test_no_engine_under_ci_fails(self) -> None:
        result = run_class(self.decorate(answers=False, ci="true"))
        self.assertEqual(len(result.skipped), 0)
        self.assertEqual(len(result.errors), 1)
        self.assertIn("CI=true but no Docker engine answers: Cannot connect", result.errors[0][1])

    def test_probe_reports_why(self) -> None:
        down = engine.DockerResult(1, "", "Client:\nCannot connect to the Docker daemon at unix:///x\n")
        with mock.patch.object(engine, "run", return_value=down):
            self.assertFalse(_docker.docker_available())
            self.assertIn("Cannot connect", _docker.docker_unavailable_reason())

    def test_probe_without_cli(self) -> None:
        with mock.patch.object(engine, "run", side_effect=engine.DockerError("the docker CLI is not installed")):
            self.assertFalse(_docker.docker_available())
            self.assertIn("not installed", _docker.docker_unavailable_reason())


class SnapshotTests(unittest.TestCase):
    def test_snapshot_and_difference(self) -> None:
        calls: list[list[str]] = []
        outputs = {"ps": "c1\nc2\n", "network": "n1\n", "volume": "v1\nv2\n"}

        def fake_run(args: list[str], **kwargs: Any) -> engine.DockerResult:
            calls.append(list(args))
            return engine.DockerResult(0, outputs[args[0]], "")

        with mock.patch.object(engine, "run", side_effect=fake_run):
            before = _docker.resource_snapshot()
            outputs["ps"] = "c1\nc2\nc3\n"
            after = _docker.resource_snapshot(label="bot-bottle.test=1")
        self.assertEqual(before.containers, {"c1", "c2"})
        self.assertIn("-a", calls[0])
        leaked = after.new_since(before)
        self.assertEqual(leaked.containers, {"c3"})
        self.assertFalse(leaked.is_empty())
        self.assertTrue(before.new_since(before).is_empty())
        self.assertIn("label=bot-bottle.test=1", calls[-1])


if __name__ == "__main__":
    unittest.main()
