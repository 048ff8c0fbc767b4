"""The disk guard: an agent is frozen while the engine's disk is down to its reserve."""

from __future__ import annotations

import subprocess
import time
import unittest
from unittest import mock

from bot_bottle.backend.docker import disk_guard, engine
from bot_bottle.backend.docker.disk_guard import DiskGuard, next_step

GIB = disk_guard.GIB


class NextStepTest(unittest.TestCase):
    def test_pauses_below_the_reserve_and_thaws_above_it_with_a_margin(self) -> None:
        total = 100 * GIB  # reserve: 5 GiB; thawed from 6 GiB free
        self.assertIsNone(next_step(50 * GIB, total, paused=False))
        self.assertEqual(next_step(int(4.9 * GIB), total, paused=False), "pause")
        self.assertIsNone(next_step(int(4.9 * GIB), total, paused=True))
        self.assertIsNone(next_step(int(5.5 * GIB), total, paused=True), "no flapping at the line")
        self.assertEqual(next_step(6 * GIB, total, paused=True), "unpause")

    def test_a_small_disk_keeps_at_least_two_gib(self) -> None:
        self.assertEqual(next_step(int(1.9 * GIB), 10 * GIB, paused=False), "pause")
        self.assertIsNone(next_step(int(2.1 * GIB), 10 * GIB, paused=False))


class GuardTest(unittest.TestCase):
    def setUp(self) -> None:
        self.verbs: list[list[str]] = []
        self.answer = 0

        def run(args, **_: object) -> subprocess.CompletedProcess[str]:
            self.verbs.append(list(args))
            return subprocess.CompletedProcess(args, self.answer, "", "")

        patcher = mock.patch.object(engine, "run", side_effect=run)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.free = 50 * GIB
        self.told: list[str] = []
        self.guard = DiskGuard("agent-1", "/data", self.told.append, measure=lambda root: (self.free, 100 * GIB))

    def test_pause_then_thaw_as_the_disk_empties_and_fills(self) -> None:
        self.guard.check()
        self.assertEqual(self.verbs, [])
        self.free = 1 * GIB
        self.guard.check()
        self.guard.check()  # once is enough
        self.assertEqual(self.verbs, [["pause", "agent-1"]])
        self.assertTrue(self.guard.paused)
        self.assertIn("paused", self.told[0])
        self.free = 20 * GIB
        self.guard.check()
        self.assertEqual(self.verbs[-1], ["unpause", "agent-1"])
        self.assertFalse(self.guard.paused)
        self.assertIn("resumed", self.told[-1])

    def test_a_pause_the_engine_refused_is_tried_again(self) -> None:
        self.free, self.answer = 1 * GIB, 1
        self.guard.check()
        self.assertFalse(self.guard.paused)
        self.assertEqual(self.told, [])
        self.answer = 0
        self.guard.check()
        self.assertTrue(self.guard.paused)

    def test_stop_thaws_a_frozen_agent(self) -> None:
        self.free = 1 * GIB
        self.guard.check()
        self.guard.stop()
        self.assertEqual(self.verbs[-1], ["unpause", "agent-1"])

    def test_an_unseen_disk_changes_nothing(self) -> None:
        guard = DiskGuard("agent-1", "/data", self.told.append, measure=lambda root: None)
        guard.check()
        self.assertEqual(self.verbs, [])

    def test_the_thread_watches_until_stopped(self) -> None:
        self.free = 1 * GIB
        guard = DiskGuard("agent-1", "/data", self.told.append, interval=0.01,
                          measure=lambda root: (self.free, 100 * GIB))
        guard.start()
        for _ in range(500):
            if guard.paused:
                break
            time.sleep(0.01)
        guard.stop()
        self.assertIn(["pause", "agent-1"], self.verbs)
        self.assertEqual(self.verbs[-1], ["unpause", "agent-1"])


if __name__ == "__main__":
    unittest.main()
