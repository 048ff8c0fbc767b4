"""The operator is told when a running agent's sidecar stops, and the bottle is then kept."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import unittest
from typing import Any
from unittest import mock

from bot_bottle import lifecycle, offline_alarm, pty_relay
from bot_bottle.backend.docker import bottle as bottle_mod
from bot_bottle.backend.docker.bottle import DockerBottle
from bot_bottle.offline_alarm import SidecarAlarm
from tests.unit.test_lifecycle_restart import AgentHost, Base

REASON = "egress-proxy exited with status 1 while waiting for the proxy port"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class AlarmTest(unittest.TestCase):
    def alarm(self, answers: list[Any]) -> tuple[SidecarAlarm, list[str], Clock, list[int]]:
        told: list[str] = []
        looks: list[int] = []
        clock = Clock()

        def check() -> Any:
            looks.append(1)
            return answers.pop(0) if answers else None

        return SidecarAlarm("abcd1234", check, tell=told.append, clock=clock), told, clock, looks

    def test_says_once_why_the_sidecar_stopped(self) -> None:
        alarm, told, clock, _ = self.alarm([None, REASON, "something else"])
        for _ in range(4):
            alarm.poll()
            clock.now += offline_alarm.CHECK_S
        self.assertEqual(alarm.reason, REASON)
        self.assertEqual(len(told), 1)
        self.assertIn("sidecar of bottle abcd1234 stopped", told[0])
        self.assertIn(REASON, told[0])
        self.assertIn("bot-bottle resume abcd1234", told[0])

    def test_a_running_sidecar_raises_nothing(self) -> None:
        alarm, told, clock, looks = self.alarm([])
        for _ in range(3):
            alarm.poll()
            clock.now += offline_alarm.CHECK_S
        self.assertEqual((told, alarm.reason, len(looks)), ([], None, 3))

    def test_it_looks_at_most_every_check_s_unless_asked_now(self) -> None:
        alarm, _, clock, looks = self.alarm([])
        for _ in range(20):
            alarm.poll()
            clock.now += offline_alarm.CHECK_S / 10
        self.assertEqual(len(looks), 2)
        alarm.poll(now=True)
        self.assertEqual(len(looks), 3)

    def test_an_answer_that_is_no_text_is_no_alarm(self) -> None:
        alarm, told, _, _ = self.alarm([mock.Mock()])
        alarm.poll()
        self.assertEqual((told, alarm.reason), ([], None))


class RunAgentTest(unittest.TestCase):
    class NoRestart:
        def restart_request(self) -> None:
            return None

    def test_the_operator_is_told_while_the_agent_runs_on(self) -> None:
        told: list[str] = []
        answers = [None, REASON]
        alarm = SidecarAlarm("abcd1234", lambda: answers.pop(0) if answers else None, tell=told.append)
        with mock.patch.object(offline_alarm, "CHECK_S", 0.1):
            code = lifecycle._run_agent([sys.executable, "-c", "import time; time.sleep(1.5)"], stdin=None,
                                        state=self.NoRestart(), alive=lambda: True, alarm=alarm)
        self.assertEqual(code, 0, "the agent is not ended for it")
        self.assertEqual(len(told), 1)
        self.assertIn(REASON, told[0])


class RelayNoticeTest(unittest.TestCase):
    def test_a_notice_is_one_line_with_its_own_carriage_returns(self) -> None:
        read, write = os.pipe()
        self.addCleanup(os.close, read)
        self.addCleanup(os.close, write)
        relay = pty_relay.Relay(["true"], stdout_fd=write)
        relay.notice("the sidecar stopped\n(a reason)")
        self.assertEqual(os.read(read, 1000), b"\r\nbot-bottle: the sidecar stopped (a reason)\r\n")


def _engine(inspect: tuple[int, str, str], sidecar_stderr: list[dict[str, Any]] | None = None):
    """subprocess.run as the engine answers: the sidecar's state, then its log's messages."""
    calls: list[list[str]] = []

    def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        calls.append(list(argv))
        if argv[1] == "inspect":
            return subprocess.CompletedProcess(argv, *inspect)
        if argv[1] == "logs":
            return subprocess.CompletedProcess(argv, 0, "", "\n".join(json.dumps(m) for m in sidecar_stderr or []))
        raise AssertionError(argv)

    return run, calls


class SidecarStoppedTest(unittest.TestCase):
    def ask(self, inspect: tuple[int, str, str], messages: list[dict[str, Any]] | None = None,
            sidecar: str | None = "bb-x-sidecar") -> tuple[str | None, list[list[str]]]:
        run, calls = _engine(inspect, messages)
        with mock.patch.object(bottle_mod.subprocess, "run", run), \
                mock.patch("bot_bottle.backend.docker.engine.docker_binary", return_value="docker"):
            return DockerBottle("bb-x-agent", docker="docker", sidecar=sidecar).sidecar_stopped(), calls

    def test_a_running_sidecar(self) -> None:
        self.assertEqual(self.ask((0, "true\n", ""))[0], None)

    def test_a_sidecar_gone_offline_says_why(self) -> None:
        messages = [{"event": "sidecar", "what": "ready"}, {"event": "sidecar", "what": "offline", "reason": REASON}]
        reason, calls = self.ask((0, "false\n", ""), messages)
        self.assertEqual(reason, REASON)
        self.assertIn("bb-x-sidecar", calls[0])

    def test_a_sidecar_killed_without_a_word(self) -> None:
        self.assertEqual(self.ask((0, "false\n", ""), [{"event": "sidecar", "what": "ready"}])[0], "it gave no reason")

    def test_a_sidecar_stopped_on_purpose_is_the_bottle_ending(self) -> None:
        messages = [{"event": "sidecar", "what": "ready"}, {"event": "sidecar", "what": "stopped"}]
        self.assertEqual(self.ask((0, "false\n", ""), messages)[0], None)

    def test_a_removed_sidecar(self) -> None:
        self.assertEqual(self.ask((1, "", "Error: No such object: bb-x-sidecar\n"))[0], "its container is gone")

    def test_an_engine_that_cannot_say_is_no_alarm(self) -> None:
        self.assertEqual(self.ask((1, "", "Cannot connect to the Docker daemon\n"))[0], None)

    def test_no_sidecar_known(self) -> None:
        reason, calls = self.ask((0, "false\n", ""), sidecar=None)
        self.assertEqual((reason, calls), (None, []))


class SidecarGoneHost(AgentHost):
    """The agent ends by itself with 0 after its bottle's sidecar went offline."""

    def _docker(self, args: list[str], kwargs: dict[str, Any]) -> tuple[int, str, str]:
        if args[0] == "inspect" and args[-1].endswith("-sidecar") and "Running" in " ".join(args):
            return 0, "false\n", ""
        if args[0] == "logs" and args[-1].endswith("-sidecar"):
            return 0, "", json.dumps({"event": "sidecar", "what": "offline", "reason": REASON}) + "\n"
        return super()._docker(args, kwargs)


class TheBottleIsKept(Base):
    def test_an_agent_that_ends_with_0_after_its_sidecar_stopped_keeps_its_bottle(self) -> None:
        host = SidecarGoneHost([0])
        with mock.patch("sys.stderr", new_callable=io.StringIO) as said:
            result = self.run_bottle(host, headless_prompt="do it")
        self.assertEqual(result.exit_code, 0)
        self.assertTrue(result.preserved, "its work may be unpushed: the git-gate stopped with the rest")
        self.assertEqual(result.preserve_reason, f"its sidecar stopped while the agent ran ({REASON})")
        self.assertIn(f"bot-bottle: the sidecar of bottle {result.bottle_id} stopped ({REASON})", said.getvalue())

    def test_a_sidecar_that_runs_changes_nothing(self) -> None:
        result = self.run_bottle(AgentHost([0]), headless_prompt="do it")
        self.assertEqual((result.exit_code, result.preserved), (0, False))


class TheMicroVmBottleIsKept(TheBottleIsKept):
    """The same on the micro-VM backend, whose sidecar bundle is a container too."""

    backend = "smolmachines"


if __name__ == "__main__":
    unittest.main()
