"""The micro-VM bottle handle's contract, checked on the argv it builds (no VM needed)."""

from __future__ import annotations

import subprocess
import tempfile
import unittest
from pathlib import Path
from typing import Any
from unittest import mock

from bot_bottle.backend import Bottle, ExecResult
from bot_bottle.backend.smolmachines import smolvm
from bot_bottle.backend.secret_env import LAUNCHER, secret_env_text
from bot_bottle.backend.smolmachines.bottle import SECRET_ENV_FILE, SmolmachinesBottle
from bot_bottle.errors import BotBottleError
from tests.unit.test_smolmachines_fakehost import SMOLVM, V08, V1, FakeHost, parse_env_file


class HandleContract(unittest.TestCase):
    def setUp(self) -> None:
        smolvm.use(V1)
        self.addCleanup(smolvm.use, None)

    def test_is_a_bottle_and_close_is_a_noop_twice(self) -> None:
        bottle = SmolmachinesBottle("bb")
        self.assertIsInstance(bottle, Bottle)
        with mock.patch("subprocess.run") as run:
            bottle.close()
            bottle.close()
        run.assert_not_called()

    def test_exec_runs_as_node_by_default_and_root_on_request(self) -> None:
        calls: list[list[str]] = []

        def fake_run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
            calls.append(argv)
            return subprocess.CompletedProcess(argv, 3, "out", "note: no packed assets found here\nerr")

        bottle = SmolmachinesBottle("bb-1", guest_env={"LIT": "v"})
        with mock.patch("bot_bottle.backend.smolmachines.bottle.subprocess.run", fake_run):
            result = bottle.exec("id -un")
            bottle.exec("id -un", user="root")
        self.assertEqual(result, ExecResult(3, "out", "err"))
        self.assertEqual(calls[0][:7], [SMOLVM, "machine", "exec", "--name", "bb-1", "-u", "node"])
        self.assertEqual(calls[1][5:7], ["-u", "root"])
        self.assertEqual(calls[0][calls[0].index("--") + 1:], ["sh", "-c", "id -un"])
        self.assertIn("LIT=v", calls[0])

    def test_exec_on_08_switches_user_inside_the_guest(self) -> None:
        bottle = SmolmachinesBottle("bb", cli=V08)
        argv = bottle.exec_argv("whoami", user="node")
        self.assertEqual(argv[argv.index("--") + 1:], ["runuser", "-u", "node", "--", "sh", "-c", "whoami"])

    def test_exec_timeout_is_a_result(self) -> None:
        bottle = SmolmachinesBottle("bb", exec_timeout=1)
        with mock.patch("bot_bottle.backend.smolmachines.bottle.subprocess.run",
                        side_effect=subprocess.TimeoutExpired(["x"], 1)):
            self.assertEqual(bottle.exec("sleep 5").returncode, 124)

    def test_agent_argv_carries_plain_env_and_every_extra_flag_unchanged(self) -> None:
        bottle = SmolmachinesBottle("bb-2", guest_env={"HTTPS_PROXY": "http://172.18.0.2:3128", "LIT": "a b"},
                                    agent_command="claude")
        extra = ["-p", "fix the bug; rm -rf / $(id)", "--model", "x"]
        argv = bottle.agent_argv(extra, tty=False)
        self.assertTrue(all(isinstance(a, str) for a in argv))
        self.assertEqual(argv[-len(extra) - 1:], ["claude", *extra])
        self.assertIn("HTTPS_PROXY=http://172.18.0.2:3128", argv)
        self.assertIn("LIT=a b", argv)
        self.assertEqual(argv[argv.index("-u") + 1], "node")
        self.assertEqual(argv[argv.index("-w") + 1], "/home/node/workspace")
        self.assertIn("-i", argv)
        self.assertNotIn("-t", argv)
        self.assertIn("-t", bottle.agent_argv([], tty=True))
        # The launcher sources the secret env file; its path is the only thing about it on the argv.
        tail = argv[argv.index("--") + 1:]
        self.assertEqual(tail[:5], ["sh", "-c", LAUNCHER, "bot-bottle-agent", SECRET_ENV_FILE])

    def test_the_launcher_sources_the_file_and_passes_arguments_verbatim(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            env_file = Path(tmp) / "agent.env"
            env_file.write_text(secret_env_text({"TOKEN": "it's $HOME `x` \"q\"", "OTHER": "2"}))
            out = subprocess.run(
                ["sh", "-c", LAUNCHER, "bot-bottle-agent", str(env_file),
                 "sh", "-c", 'printf "%s|%s|%s|%s" "$TOKEN" "$OTHER" "$1" "$2"', "x", "a b", "$(id)"],
                capture_output=True, text=True, check=True,
            ).stdout
            self.assertEqual(out, "it's $HOME `x` \"q\"|2|a b|$(id)")
            missing = subprocess.run(
                ["sh", "-c", LAUNCHER, "bot-bottle-agent", str(Path(tmp) / "none"), "echo", "ok"],
                capture_output=True, text=True, check=True,
            ).stdout
        self.assertEqual(missing, "ok\n")

    def test_secret_env_text_round_trips(self) -> None:
        values = {"A": "plain", "B": "quote ' and \" and $x", "C": "multi\nline"}
        self.assertEqual(parse_env_file(secret_env_text(values))["B"], values["B"])
        with self.assertRaises(BotBottleError):
            secret_env_text({"BAD-NAME": "x"})

    def test_cp_in_copies_an_archive_and_unpacks_it_as_the_user(self) -> None:
        fake = FakeHost()
        with fake.installed(), tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "tree"
            (src / "sub").mkdir(parents=True)
            (src / "sub" / "a.txt").write_text("a")
            fake.machines["bb-3"] = {"name": "bb-3", "state": "running", "labels": {}}
            SmolmachinesBottle("bb-3").cp_in(src, "/home/node/workspace")
        calls = fake.smolvm_calls()
        self.assertEqual(calls[0][:2], ["machine", "cp"])
        staging = calls[0][3].split(":", 1)[1]
        self.assertTrue(staging.startswith("/tmp/bot-bottle-cp-"))
        users = [c[c.index("-u") + 1] for c in calls[1:]]
        self.assertEqual(users, ["root", "node", "root"])  # readable, unpacked by node, removed
        self.assertIn("-C /home/node", calls[2][-1])
        self.assertEqual(fake.files["/home/node/workspace/sub/a.txt"], b"a")

    def test_cp_in_of_a_missing_file_or_a_failed_copy_is_an_error(self) -> None:
        with self.assertRaises(BotBottleError):
            SmolmachinesBottle("bb").cp_in("/nonexistent/x", "/tmp/x")
        fake = FakeHost()
        fake.fail_when(lambda argv: "cp" in argv, 1, "Error: vm not running")
        with fake.installed(), tempfile.NamedTemporaryFile() as f, self.assertRaises(BotBottleError) as ctx:
            SmolmachinesBottle("bb").cp_in(f.name, "/tmp/x")
        self.assertIn("vm not running", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
