"""The agent's CPU quota: every CPU of the engine's but one, read from the engine."""

from __future__ import annotations

import json
import unittest
from unittest import mock

from bot_bottle.backend.docker import engine, launch


class AgentCpusTest(unittest.TestCase):
    def test_every_cpu_but_one(self) -> None:
        self.assertEqual(launch.agent_cpus(2), ["--cpus", "1"])
        self.assertEqual(launch.agent_cpus(16), ["--cpus", "15"])

    def test_no_quota_on_one_cpu_or_an_unknown_count(self) -> None:
        self.assertEqual(launch.agent_cpus(1), [])
        self.assertEqual(launch.agent_cpus(None), [])

    def test_the_limits_carry_the_quota_with_and_without_gvisor(self) -> None:
        options = launch.LaunchOptions()
        for gvisor in (False, True):
            flags = launch.agent_limits(options, gvisor, 4_194_304, engine_cpus=4)
            self.assertEqual(flags[flags.index("--cpus") + 1], "3")
        self.assertNotIn("--cpus", launch.agent_limits(options, False, None))


class EngineCpusTest(unittest.TestCase):
    def setUp(self) -> None:
        patch = mock.patch.object(engine, "_last_info", None)
        patch.start()
        self.addCleanup(patch.stop)

    def answer(self, info: dict) -> engine.DockerResult:
        return engine.DockerResult(0, json.dumps(info), "")

    def test_read_from_docker_info_once(self) -> None:
        with mock.patch.object(engine, "run", return_value=self.answer({"ServerVersion": "28.0", "NCPU": 6})) as run:
            self.assertEqual(engine.engine_cpus(), 6)
            self.assertEqual(engine.engine_cpus(), 6)
        self.assertEqual(run.call_count, 1)  # the first answer is kept: the count does not change

    def test_the_plans_earlier_question_is_reused(self) -> None:
        with mock.patch.object(engine, "run", return_value=self.answer({"ServerVersion": "28.0", "NCPU": 3})) as run:
            engine.engine_info()
            self.assertEqual(engine.engine_cpus(), 3)
        self.assertEqual(run.call_count, 1)

    def test_unknown_when_no_engine_answers_or_the_count_is_odd(self) -> None:
        with mock.patch.object(engine, "run", return_value=engine.DockerResult(1, "", "down")):
            self.assertIsNone(engine.engine_cpus())
        for odd in ("4", True, 0, None):
            with mock.patch.object(engine, "_last_info", {"ServerVersion": "28.0", "NCPU": odd}):
                self.assertIsNone(engine.engine_cpus(), odd)


if __name__ == "__main__":
    unittest.main()
