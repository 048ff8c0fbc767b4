"""The agent's run records its own exit status in the bottle (``docker.bottle.RECORDER``).

The recorder runs here for real with the host's ``sh`` (what runs in the bottle is a POSIX shell
too): the status it writes, the streams it leaves alone, and a whole-group SIGINT (a TTY's Ctrl-C)
that must not end it before the agent. The handles of both backends put it on the agent's argv
and read the status back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle.backend import ExecResult
from bot_bottle.backend.docker.bottle import RECORDER, SECRET_ENV_DIR, SECRET_ENV_FILE, DockerBottle
from bot_bottle.backend.secret_env import LAUNCHER, launcher_argv
from bot_bottle.backend.smolmachines import smolvm
from bot_bottle.backend.smolmachines.bottle import STATUS_DIR, SmolmachinesBottle
from tests._signals import default_signals
from tests.unit._waits_dec15k import group_runs, wait_until
from tests.unit.test_smolmachines_fakehost import V1


def recorded(status_file: Path, *command: str) -> list[str]:
    """What the bottle runs for the agent: the recorder around the secret env launcher."""
    return ["sh", "-c", RECORDER, "bot-bottle-agent", str(status_file),
            *launcher_argv(str(status_file.parent / "none.env"), list(command))]


class Recorder(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.status = Path(tmp.name) / "agent-exit-0123"

    def test_the_agents_status_is_written_and_returned(self) -> None:
        proc = subprocess.run(recorded(self.status, "sh", "-c", "exit 3"), capture_output=True)
        self.assertEqual(proc.returncode, 3)
        self.assertEqual(self.status.read_text(), "3\n")

    def test_streams_and_arguments_pass_through_unchanged(self) -> None:
        proc = subprocess.run(
            recorded(self.status, "sh", "-c", 'read line; printf "%s|%s|%s" "$line" "$1" "$2"; echo err >&2',
                     "x", "a b", "$(id)"),
            input=b"from stdin\n", capture_output=True, check=True)
        self.assertEqual(proc.stdout, b"from stdin|a b|$(id)")
        self.assertEqual(proc.stderr, b"err\n", "the recorder itself prints nothing")
        self.assertEqual(self.status.read_text(), "0\n")

    def test_nothing_is_recorded_while_the_agent_runs(self) -> None:
        proc = subprocess.Popen(recorded(self.status, "sleep", "30"), start_new_session=True)
        try:
            time.sleep(0.5)
            self.assertFalse(self.status.exists(), "no status before the agent ends")
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def test_a_ctrl_c_to_the_whole_group_is_the_agents_to_answer(self) -> None:
        # A TTY's Ctrl-C reaches every process of the foreground group: the recorder stays to
        # write what the agent ended with, whether the agent dies of it or handles it.
        # Each with the command that shows it runs (the trap set, for the second: it loops).
        agents = {130: (("sleep", "30"), ["sleep", "30"]),
                  7: (("sh", "-c", 'trap "exit 7" INT; while :; do sleep 0.1; done'), ["sleep", "0.1"])}
        for expected, (agent, running) in agents.items():
            with self.subTest(agent=agent):
                self.status.unlink(missing_ok=True)
                proc = subprocess.Popen(recorded(self.status, *agent), start_new_session=True,
                                        preexec_fn=default_signals)
                # The Ctrl-C comes while the agent runs: a loaded machine may take long to start it.
                wait_until(lambda: group_runs(proc.pid, running))
                os.killpg(proc.pid, signal.SIGINT)
                self.assertEqual(proc.wait(timeout=20), expected)
                self.assertEqual(self.status.read_text(), f"{expected}\n")

    def test_an_unwritable_status_file_changes_nothing_else(self) -> None:
        proc = subprocess.run(recorded(self.status / "no" / "such", "sh", "-c", "echo ok; exit 4"),
                              capture_output=True)
        self.assertEqual((proc.returncode, proc.stdout, proc.stderr), (4, b"ok\n", b""))


class DockerHandle(unittest.TestCase):
    def test_the_agent_argv_wraps_the_launcher_in_the_recorder(self) -> None:
        bottle = DockerBottle(container="bb-1", agent_command="claude")
        status_file = bottle.status_file()
        self.assertTrue(status_file.startswith(SECRET_ENV_DIR + "/agent-exit-"), "on the tmpfs no snapshot keeps")
        self.assertNotEqual(status_file, bottle.status_file(), "a new path for every run")
        terminal = ["-e", "TERM=tmux-256color", "-e", "COLORTERM=truecolor"]
        for tty, flags in ((False, ["-i"]), (True, ["-it", *terminal])):
            with mock.patch.dict(os.environ, {"TERM": "tmux-256color", "COLORTERM": "truecolor"}):
                argv = bottle.agent_argv(["-p", "x"], tty=tty, status_file=status_file)
            head = ["docker", "exec", *flags, "-u", "node", "-w", "/home/node/workspace", "bb-1"]
            self.assertEqual(argv[:len(head)], head)
            self.assertEqual(argv[len(head):], ["sh", "-c", RECORDER, "bot-bottle-agent", status_file,
                                        "sh", "-c", LAUNCHER, "bot-bottle-agent", SECRET_ENV_FILE, "claude", "-p", "x"])
        self.assertEqual(bottle.run_argv(["make"], tty=False, status_file=status_file)[-1], "make")
        self.assertNotIn(RECORDER, bottle.agent_argv([], tty=False), "only when asked")

    def test_exit_status_reads_and_removes_the_file(self) -> None:
        bottle = DockerBottle(container="bb-2")
        answers = {(0, "5\n"): 5, (0, "0\n"): 0, (1, ""): None, (0, ""): None, (0, "garbage"): None, (124, ""): None}
        for (code, out), expected in answers.items():
            with self.subTest(code=code, out=out), \
                    mock.patch.object(bottle, "exec", return_value=ExecResult(code, out, "")) as exec_:
                self.assertEqual(bottle.exit_status("/run/bot-bottle-env/agent-exit-ab"), expected)
            exec_.assert_called_once_with("cat /run/bot-bottle-env/agent-exit-ab && rm -f /run/bot-bottle-env/agent-exit-ab")


class SmolmachinesHandle(unittest.TestCase):
    def setUp(self) -> None:
        smolvm.use(V1)
        self.addCleanup(smolvm.use, None)

    def test_the_agent_argv_wraps_the_launcher_in_the_recorder(self) -> None:
        bottle = SmolmachinesBottle("bb-3", agent_command="claude")
        status_file = bottle.status_file()
        self.assertTrue(status_file.startswith(STATUS_DIR + "/agent-exit-"))
        argv = bottle.agent_argv(["-p", "x"], tty=True, status_file=status_file)
        self.assertIn("-t", argv)
        tail = argv[argv.index("--") + 1:]
        self.assertEqual(tail[:5], ["sh", "-c", RECORDER, "bot-bottle-agent", status_file])
        self.assertEqual(tail[5:9], ["sh", "-c", LAUNCHER, "bot-bottle-agent"])
        self.assertEqual(tail[-3:], ["claude", "-p", "x"])

    def test_exit_status_reads_and_removes_the_file(self) -> None:
        bottle = SmolmachinesBottle("bb-4")
        with mock.patch.object(bottle, "exec", return_value=ExecResult(0, "9\n", "")) as exec_:
            self.assertEqual(bottle.exit_status("/tmp/agent-exit-cd"), 9)
        exec_.assert_called_once_with("cat /tmp/agent-exit-cd && rm -f /tmp/agent-exit-cd")
        with mock.patch.object(bottle, "exec", return_value=ExecResult(1, "", "No such file")):
            self.assertIsNone(bottle.exit_status("/tmp/agent-exit-cd"))


if __name__ == "__main__":
    unittest.main()
