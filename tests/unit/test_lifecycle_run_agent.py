"""The agent's host process: run to its end, but never left hanging on a bottle that is gone."""

from __future__ import annotations

import signal
import sys
import time
import unittest
from unittest import mock

from bot_bottle import lifecycle


class NoRestart:
    def restart_request(self) -> None:
        return None


SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


class RunAgent(unittest.TestCase):
    def test_the_exit_status_is_returned(self) -> None:
        code = lifecycle._run_agent([sys.executable, "-c", "raise SystemExit(3)"], stdin=None, state=NoRestart(),
                                    alive=lambda: True)
        self.assertEqual(code, 3)

    def test_a_process_that_outlives_its_stopped_bottle_is_ended(self) -> None:
        checks: list[float] = []

        def alive() -> bool:
            checks.append(time.monotonic())
            return False

        start = time.monotonic()
        with mock.patch.object(lifecycle, "LIVENESS_INTERVAL_S", 0.1), \
                mock.patch.object(lifecycle, "GONE_EXIT_GRACE_S", 0.3):
            code = lifecycle._run_agent(SLEEPER, stdin=None, state=NoRestart(), alive=alive)
        self.assertEqual(code, -signal.SIGTERM)
        self.assertLess(time.monotonic() - start, 10, "ended within the grace, not after the sleep")
        self.assertTrue(checks)

    def test_a_running_bottle_is_left_alone(self) -> None:
        with mock.patch.object(lifecycle, "LIVENESS_INTERVAL_S", 0.05):
            code = lifecycle._run_agent([sys.executable, "-c", "import time; time.sleep(1.2)"], stdin=None,
                                        state=NoRestart(), alive=lambda: True)
        self.assertEqual(code, 0)


if __name__ == "__main__":
    unittest.main()
