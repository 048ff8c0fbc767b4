"""The Docker bottle handle's contract, checked on the argv it builds (no Docker needed)."""

from __future__ import annotations

import io
import subprocess
import tarfile
import unittest
from pathlib import Path
from tempfile import TemporaryDirectory
from unittest import mock

from bot_bottle.backend import Bottle, ExecResult
from bot_bottle.backend.docker.bottle import SECRET_ENV_DIR, SECRET_ENV_FILE, DockerBottle
from bot_bottle.backend.secret_env import LAUNCHER


class DockerBottleContract(unittest.TestCase):
    def test_is_a_bottle(self) -> None:
        self.assertIsInstance(DockerBottle(container="c"), Bottle)

    def test_exec_runs_as_node_by_default_and_root_on_request(self) -> None:
        bottle = DockerBottle(container="bb-1")
        calls: list[list[str]] = []

        def fake_run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
            calls.append(argv)
            return subprocess.CompletedProcess(argv, 3, "out", "err")

        with mock.patch("bot_bottle.backend.docker.bottle.subprocess.run", fake_run):
            result = bottle.exec("id -un")
            bottle.exec("id -un", user="root")
        self.assertEqual(result, ExecResult(3, "out", "err"))
        self.assertEqual(calls[0][:5], ["docker", "exec", "-u", "node", "bb-1"])
        self.assertEqual(calls[1][:5], ["docker", "exec", "-u", "root", "bb-1"])
        self.assertEqual(calls[0][-1], "id -un")

    def test_agent_argv_holds_command_and_every_extra_flag(self) -> None:
        bottle = DockerBottle(container="bb-2", agent_command="claude")
        extra = ["-p", "fix the bug; rm -rf /", "--model", "x"]
        argv = bottle.agent_argv(extra, tty=False)
        self.assertTrue(all(isinstance(a, str) for a in argv))
        self.assertIn("claude", argv)
        self.assertEqual(argv[-len(extra):], extra)
        self.assertNotIn("-it", argv)
        self.assertIn("-it", bottle.agent_argv([], tty=True))
        self.assertEqual(argv[argv.index("-u") + 1], "node")
        self.assertEqual(argv[argv.index("-w") + 1], "/home/node/workspace")
        # Through the launcher that sources the secret env file (on the agent's tmpfs).
        tail = argv[argv.index("bb-2") + 1:]
        self.assertEqual(tail, ["sh", "-c", LAUNCHER, "bot-bottle-agent", SECRET_ENV_FILE, "claude", *extra])
        self.assertTrue(SECRET_ENV_FILE.startswith(SECRET_ENV_DIR + "/"))

    def test_run_is_the_agents_way_without_a_tty(self) -> None:
        bottle = DockerBottle(container="bb-4", exec_timeout=7)
        seen: dict[str, object] = {}

        def fake_run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
            seen.update(argv=argv, **kwargs)
            return subprocess.CompletedProcess(argv, 0, "v\n", "")

        with mock.patch("bot_bottle.backend.docker.bottle.subprocess.run", fake_run):
            result = bottle.run(["printenv", "X"])
        self.assertEqual(result, ExecResult(0, "v\n", ""))
        self.assertEqual(seen["argv"], bottle.run_argv(["printenv", "X"], tty=False))
        self.assertEqual(seen["stdin"], subprocess.DEVNULL)
        self.assertEqual(seen["timeout"], 7)

    def test_running_says_no_only_for_a_stopped_or_missing_container(self) -> None:
        bottle = DockerBottle(container="bb-5")
        cases = [((0, "true\n", ""), True), ((0, "false\n", ""), False),
                 ((1, "", "Error: No such object: bb-5"), False), ((1, "", "Cannot connect to the Docker daemon"), True)]
        for (code, out, err), expected in cases:
            with self.subTest(out=out, err=err), mock.patch(
                    "bot_bottle.backend.docker.bottle.subprocess.run",
                    return_value=subprocess.CompletedProcess([], code, out, err)):
                self.assertEqual(bottle.running(), expected)
        with mock.patch("bot_bottle.backend.docker.bottle.subprocess.run",
                        side_effect=subprocess.TimeoutExpired(["docker"], 30)):
            self.assertTrue(bottle.running(), "an engine that does not answer ends nothing")

    def test_the_prompt_path_is_stored_back_on_the_handle(self) -> None:
        bottle = DockerBottle(container="c", prompt_path_in_container="/home/node/.claude/CLAUDE.md")
        self.assertEqual(bottle.prompt_path, "/home/node/.claude/CLAUDE.md")
        bottle.prompt_path_in_container = "/tmp/prompt.md"  # what a launch does with the provisioner's result
        self.assertEqual((bottle.prompt_path, bottle.prompt_path_in_container), ("/tmp/prompt.md", "/tmp/prompt.md"))

    def test_close_is_idempotent_and_tears_down_once(self) -> None:
        calls = []
        bottle = DockerBottle(container="c", teardown=lambda: calls.append(1))
        bottle.close()
        bottle.close()
        self.assertEqual(calls, [1])

    def test_cp_in_streams_a_tar_unpacked_by_the_target_user(self) -> None:
        bottle = DockerBottle(container="bb-3")
        seen: dict[str, object] = {}

        def fake_run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
            seen["argv"] = argv
            stdin = kwargs["stdin"]
            seen["members"] = tarfile.open(fileobj=io.BytesIO(stdin.read())).getnames()  # type: ignore[union-attr]
            return subprocess.CompletedProcess(argv, 0, b"", b"")

        with TemporaryDirectory() as tmp:
            src = Path(tmp) / "tree"
            (src / "sub").mkdir(parents=True)
            (src / "sub" / "a.txt").write_text("a")
            with mock.patch("bot_bottle.backend.docker.bottle.subprocess.run", fake_run):
                bottle.cp_in(src, "/home/node/workspace")
        argv = seen["argv"]
        assert isinstance(argv, list)
        self.assertEqual(argv[:6], ["docker", "exec", "-i", "-u", "node", "bb-3"])
        self.assertIn("-C /home/node", argv[-1])
        self.assertIn("workspace/sub/a.txt", seen["members"])

    def test_a_private_file_is_streamed_in_never_written_on_the_host(self) -> None:
        secret = "sk-streamed-" + "9" * 24
        with TemporaryDirectory() as tmp:
            # A stand-in docker that runs `exec -i -u USER CONTAINER CMD...` as CMD here.
            fake = Path(tmp) / "docker"
            fake.write_text('#!/bin/sh\nshift 5\nexec "$@"\n')
            fake.chmod(0o755)
            target = Path(tmp) / "guest" / "env" / "agent.env"
            bottle = DockerBottle(container="bb-4", docker=str(fake))
            with mock.patch("bot_bottle.scratch.private_dir", side_effect=AssertionError("a host file")), \
                    mock.patch("bot_bottle.backend.docker.bottle.subprocess.run", wraps=subprocess.run) as run:
                bottle.write_private(str(target), f"TOKEN={secret}\n")
            self.assertEqual(target.read_text(), f"TOKEN={secret}\n")
            self.assertEqual(target.stat().st_mode & 0o777, 0o600)
            self.assertEqual(target.parent.stat().st_mode & 0o777, 0o700)
            self.assertFalse(any(secret in " ".join(call.args[0]) for call in run.call_args_list), "on an argv")
            self.assertEqual([p.name for p in target.parent.iterdir()], ["agent.env"], "no part left behind")

    def test_a_private_file_that_cannot_be_written_is_an_error(self) -> None:
        with TemporaryDirectory() as tmp:
            fake = Path(tmp) / "docker"
            fake.write_text('#!/bin/sh\necho "no such container" >&2\nexit 1\n')
            fake.chmod(0o755)
            with self.assertRaisesRegex(Exception, "could not write /run/x/agent.env into bb-5: no such container"):
                DockerBottle(container="bb-5", docker=str(fake)).write_private("/run/x/agent.env", "A=1\n")


if __name__ == "__main__":
    unittest.main()
