"""An agent run counts as finished only when the agent itself said so.

The client of a ``docker exec`` that gets SIGINT or SIGTERM exits 0 and leaves its command
running, so its exit status alone cannot tell a finished agent from an interrupted one. The
agent's run records its status inside the bottle; ``run_bottle`` reads it after a 0 and keeps the
bottle when there is none. Runs on the fake host of ``test_lifecycle_restart``, on both backends.
"""

from __future__ import annotations

import re
import unittest
from typing import Any

from bot_bottle import lifecycle
from bot_bottle.state import StateDir
from tests.unit.test_lifecycle_restart import COMMAND, AgentHost, Base

STATUS_PATH = re.compile(r"/agent-exit-[0-9a-f]+$")


class DockerAgentStatus(Base):
    def status_reads(self, host: AgentHost) -> list[str]:
        """The status files the host asked about after the agent's runs."""
        scripts = [c.argv[-1] for c in host.calls]
        return [m.group(1) for s in scripts for m in [re.match(r"^cat (\S+) && rm -f \1$", s)] if m]

    def assert_recorded(self, host: AgentHost) -> None:
        (argv,) = host.agent_runs
        recorder = [i for i, arg in enumerate(argv) if "trap" in arg and "$?" in arg]
        self.assertEqual(len(recorder), 1, "the agent runs under the recorder")
        status_file = argv[recorder[0] + 2]
        self.assertRegex(status_file, STATUS_PATH)
        self.assertEqual(self.status_reads(host), [status_file], "the status read is of this run's file")

    def test_a_client_that_ends_0_without_a_recorded_status_keeps_the_bottle(self) -> None:
        host = AgentHost([0])
        host.recorded_status = None  # the exec client went away; the agent never finished
        result = self.run_bottle(host, headless_prompt="do it")
        self.assertEqual(result.exit_code, lifecycle.DETACHED_EXIT)
        self.assertTrue(result.preserved, "an interrupted agent's work is kept")
        self.assertEqual(result.preserve_reason, lifecycle.DETACHED)
        self.assert_recorded(host)
        meta = StateDir(self.state_root, result.bottle_id).read()
        self.assertTrue(meta.snapshot, "a snapshot was taken for resume")
        self.assertEqual(meta.exit_code, lifecycle.DETACHED_EXIT)

    def test_a_recorded_0_is_a_finished_agent(self) -> None:
        host = AgentHost([0])
        result = self.run_bottle(host, headless_prompt="do it")
        self.assertEqual((result.exit_code, result.preserved), (0, False))
        self.assert_recorded(host)
        self.assertFalse((self.state_root / result.bottle_id).exists(), "removed at the end")

    def test_the_recorded_status_wins_over_the_clients_0(self) -> None:
        host = AgentHost([0])
        host.recorded_status = 3
        result = self.run_bottle(host, command=COMMAND)
        self.assertEqual(result.exit_code, 3)
        self.assertEqual(result.preserve_reason, "agent exited with code 3")
        self.assert_recorded(host)

    def test_a_non_zero_client_status_needs_no_read(self) -> None:
        host = AgentHost([2])
        host.recorded_status = None
        result = self.run_bottle(host, headless_prompt="do it")
        self.assertEqual((result.exit_code, result.preserve_reason), (2, "agent exited with code 2"))
        self.assertEqual(self.status_reads(host), [])

    def test_a_status_read_that_fails_keeps_the_bottle(self) -> None:
        host = AgentHost([0])

        def broken(argv: list[str]) -> bool:
            return bool(re.match(r"^cat \S+/agent-exit-", argv[-1]))

        host.fail_when(broken, returncode=1, stderr="Error response from daemon: conflict")
        result = self.run_bottle(host, headless_prompt="do it")
        self.assertTrue(result.preserved, "a 0 that cannot be checked is not trusted")
        self.assertEqual(result.exit_code, lifecycle.DETACHED_EXIT)


class SmolmachinesAgentStatus(DockerAgentStatus):
    backend = "smolmachines"


class AgentExit(unittest.TestCase):
    """``_agent_exit`` on its own: the order of the checks."""

    class Bottle:
        def __init__(self, status: Any) -> None:
            self.status = status
            self.asked: list[str] = []

        def exit_status(self, status_file: str) -> Any:
            self.asked.append(status_file)
            if isinstance(self.status, Exception):
                raise self.status
            return self.status

    class State:
        def __init__(self, restart: str | None = None) -> None:
            self.restart = restart

        def restart_request(self) -> str | None:
            return self.restart

    def test_a_stopped_container_is_said_before_the_status_is_read(self) -> None:
        bottle = self.Bottle(None)
        got = lifecycle._agent_exit(bottle, 0, "/s", alive=lambda: False, state=self.State())
        self.assertEqual(got, (lifecycle.STOPPED_EXIT, lifecycle.STOPPED))
        self.assertEqual(bottle.asked, [])

    def test_a_restart_is_not_looked_into(self) -> None:
        bottle = self.Bottle(None)
        self.assertEqual(lifecycle._agent_exit(bottle, 0, "/s", alive=lambda: True, state=self.State("why")), (0, None))
        self.assertEqual(bottle.asked, [])

    def test_a_handle_that_cannot_record_is_trusted_as_before(self) -> None:
        self.assertEqual(lifecycle._agent_exit(object(), 0, None, alive=None, state=self.State()), (0, None))

    def test_an_engine_that_cannot_be_run_counts_as_no_status(self) -> None:
        bottle = self.Bottle(OSError("docker: not found"))
        got = lifecycle._agent_exit(bottle, 0, "/s", alive=lambda: True, state=self.State())
        self.assertEqual(got, (lifecycle.DETACHED_EXIT, lifecycle.DETACHED))


if __name__ == "__main__":
    unittest.main()
