"""A bottle the engine ended for going over its memory limit is said to be so, plainly.

Under gVisor the whole sandbox ends at the limit: the agent's exec client reports 128 (its wait on
the sandbox broke) or hangs until it is ended, and the container is left exited with
``State.OOMKilled`` true and exit code 137. A `docker kill` also leaves 137, and a `docker stop`
143, both with OOMKilled false: only the engine's flag is taken as a lack of memory. Runs on the
fake host of ``test_lifecycle_restart``.
"""

from __future__ import annotations

import unittest
from typing import Any
from unittest import mock

from bot_bottle import lifecycle
from bot_bottle.backend.docker.bottle import MEMORY_END_FORMAT, parse_memory_end
from bot_bottle.state import StateDir
from tests.unit.test_lifecycle_restart import COMMAND, HANG, AgentHost, Base

GIB4 = 4 << 30


class MemoryHost(AgentHost):
    """An agent host whose engine answers ``memory_end``'s inspect with ``ended``."""

    def __init__(self, answers: list[Any], ended: str) -> None:
        super().__init__(answers)
        self.ended = ended
        self.memory_asks = 0

    def _docker(self, args: list[str], kwargs: dict[str, Any]) -> tuple[int, str, str]:
        if args[:1] == ["inspect"] and MEMORY_END_FORMAT in args:
            self.memory_asks += 1
            status, rest = self.ended.split(" ", 1)
            return 0, ("running" if not self.containers_stopped else status) + " " + rest + "\n", ""
        return super()._docker(args, kwargs)


def sandbox_gone(code: int | None):
    """The agent's run as gVisor ends it at the memory limit: the container stops under it."""
    def answer(host: AgentHost) -> int | None:
        host.containers_stopped = True
        return code
    return answer


class OutOfMemory(Base):
    def setUp(self) -> None:
        super().setUp()
        for name, value in (("LIVENESS_INTERVAL_S", 0.0), ("GONE_EXIT_GRACE_S", 0.0), ("OOM_SETTLE_S", 0.2),
                            ("OOM_SETTLE_INTERVAL_S", 0.05)):
            patcher = mock.patch.object(lifecycle, name, value)
            patcher.start()
            self.addCleanup(patcher.stop)

    def assert_out_of_memory(self, result: lifecycle.RunResult) -> None:
        self.assertEqual(result.exit_code, lifecycle.OUT_OF_MEMORY_EXIT)
        self.assertTrue(result.preserved)
        self.assertEqual(result.preserve_reason, "the bottle went over its memory limit of 4 GiB")
        assert result.notice is not None
        self.assertIn(f"bottle {result.bottle_id} went over its memory limit of 4 GiB and was ended whole",
                      result.notice)
        self.assertIn(f"Its files are kept as they were at that moment: `bot-bottle resume {result.bottle_id}` "
                      "continues it.", result.notice)
        meta = StateDir(self.state_root, result.bottle_id).read()
        self.assertTrue(meta.snapshot, "a snapshot was taken for resume")
        self.assertEqual(meta.exit_code, lifecycle.OUT_OF_MEMORY_EXIT)

    def test_a_broken_exec_wait_from_a_sandbox_ended_for_memory(self) -> None:
        host = MemoryHost([sandbox_gone(128)], ended=f"exited true {GIB4}")
        self.assert_out_of_memory(self.run_bottle(host, command=COMMAND))

    def test_an_exec_client_that_hangs_on_a_sandbox_ended_for_memory(self) -> None:
        host = MemoryHost([sandbox_gone(HANG)], ended=f"exited true {GIB4}")
        self.assert_out_of_memory(self.run_bottle(host, headless_prompt="do it"))

    def test_a_client_0_from_a_sandbox_ended_for_memory(self) -> None:
        host = MemoryHost([sandbox_gone(0)], ended=f"exited true {GIB4}")
        self.assert_out_of_memory(self.run_bottle(host, command=COMMAND))

    def test_the_engine_noting_the_end_a_moment_after_the_client(self) -> None:
        def late(h: AgentHost) -> int:
            # The container still runs at the first look after the client returned; stopped at the next.
            original = h._docker
            looks = [0]

            def docker(args: list[str], kwargs: dict[str, Any]) -> tuple[int, str, str]:
                answer = original(args, kwargs)
                if args[:1] == ["inspect"] and "Running" in " ".join(args):
                    looks[0] += 1
                    h.containers_stopped = looks[0] >= 2
                return answer
            h._docker = docker  # type: ignore[method-assign]
            return 128

        host = MemoryHost([late], ended=f"exited true {GIB4}")
        self.assert_out_of_memory(self.run_bottle(host, command=COMMAND))

    def test_a_kill_is_not_called_a_lack_of_memory(self) -> None:
        host = MemoryHost([sandbox_gone(137)], ended=f"exited false {GIB4}")
        result = self.run_bottle(host, command=COMMAND)
        self.assertEqual((result.exit_code, result.preserve_reason), (137, lifecycle.STOPPED))
        self.assertIsNone(result.notice)

    def test_a_stop_is_not_called_a_lack_of_memory(self) -> None:
        host = MemoryHost([sandbox_gone(0)], ended=f"exited false {GIB4}")
        result = self.run_bottle(host, command=COMMAND)
        self.assertEqual((result.exit_code, result.preserve_reason), (lifecycle.STOPPED_EXIT, lifecycle.STOPPED))
        self.assertIsNone(result.notice)

    def test_an_agent_failing_in_a_running_bottle_is_its_own_failure(self) -> None:
        host = MemoryHost([137], ended=f"running false {GIB4}")
        result = self.run_bottle(host, command=COMMAND)
        self.assertEqual((result.exit_code, result.preserve_reason), (137, "agent exited with code 137"))
        self.assertIsNone(result.notice)

    def test_a_finished_agent_asks_nothing(self) -> None:
        host = MemoryHost([0], ended=f"exited true {GIB4}")
        result = self.run_bottle(host, command=COMMAND)
        self.assertEqual((result.exit_code, result.preserved, result.notice), (0, False, None))
        self.assertEqual(host.memory_asks, 0)

    def test_a_failed_snapshot_says_the_files_were_not_saved(self) -> None:
        host = MemoryHost([sandbox_gone(128)], ended=f"exited true {GIB4}")
        host.fail_when(lambda argv: "commit" in argv, stderr="no space left on device")
        result = self.run_bottle(host, command=COMMAND)
        self.assertEqual(result.exit_code, lifecycle.OUT_OF_MEMORY_EXIT)
        assert result.notice is not None
        self.assertIn("its files could not be saved", result.notice)
        self.assertNotIn("Its files are kept", result.notice)


class Words(unittest.TestCase):
    def test_the_engines_answer(self) -> None:
        answers = {f"exited true {GIB4}": GIB4, "exited true 0": 0, f"exited false {GIB4}": None,
                   f"running true {GIB4}": None, "": None, "[]": None, "exited true <no value>": None}
        for text, expected in answers.items():
            with self.subTest(text=text):
                self.assertEqual(parse_memory_end(text), expected)

    def test_limits_as_people_read_them(self) -> None:
        self.assertEqual(lifecycle.memory_text(GIB4), "4 GiB")
        self.assertEqual(lifecycle.memory_text(256 << 20), "256 MiB")
        self.assertEqual(lifecycle.memory_text(3 << 29), "1.5 GiB")
        self.assertEqual(lifecycle.out_of_memory_reason(0), "the bottle ran out of memory")


if __name__ == "__main__":
    unittest.main()


class WhatTheCliSays(unittest.TestCase):
    """`start` and `resume` print the notice instead of the bare "preserved (...)" line."""

    NOTICE = lifecycle.out_of_memory_notice("ab12cd34", GIB4, kept=True)
    RESULT = lifecycle.RunResult("ab12cd34", 137, True, lifecycle.out_of_memory_reason(GIB4), notice=NOTICE)

    def stderr_of(self, run: Any) -> tuple[int, str]:
        import io
        from contextlib import redirect_stderr

        err = io.StringIO()
        with redirect_stderr(err):
            code = run()
        return code, err.getvalue()

    def test_start(self) -> None:
        import argparse

        from bot_bottle.cli import common, start

        args = argparse.Namespace(agent="coder", dry_run=False, format="text", backend="docker", label=None, cwd=None,
                                  yes=True, headless=True, prompt="do it", preserve=False)
        with mock.patch.object(common, "load_manifest"), mock.patch.object(common, "build_plan"), \
                mock.patch.object(common, "layout"), mock.patch.object(lifecycle, "run_bottle", return_value=self.RESULT):
            code, err = self.stderr_of(lambda: start.run(args))
        self.assertEqual(code, 137)
        self.assertIn("went over its memory limit of 4 GiB and was ended whole", " ".join(err.split()))
        self.assertIn("`bot-bottle resume ab12cd34` continues it", " ".join(err.split()))
        self.assertNotIn("preserved (", err)

    def test_resume(self) -> None:
        import argparse

        from bot_bottle import api
        from bot_bottle.cli import common, resume
        from bot_bottle.state import Metadata

        args = argparse.Namespace(id="ab12cd34", headless=True, prompt="go on", preserve=False)
        meta = mock.Mock(spec=Metadata, snapshot="bot-bottle/snapshot:ab12cd34", image=None, agent="coder")
        with mock.patch.object(common, "layout"), mock.patch.object(api, "read_resumable", return_value=meta), \
                mock.patch.object(resume, "_show_approved_routes"), mock.patch.object(api, "resume", return_value=self.RESULT):
            code, err = self.stderr_of(lambda: resume.run(args))
        self.assertEqual(code, 137)
        self.assertIn("went over its memory limit of 4 GiB", " ".join(err.split()))
        self.assertNotIn("preserved (", err)
