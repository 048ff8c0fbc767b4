"""A gVisor bottle that goes over its memory limit, against the real engine.

Under gVisor the engine ends the whole sandbox at the limit (``State.OOMKilled``, exit code 137)
and the agent's exec client either reports 128 or hangs. The run must say plainly that the bottle
went over its limit, keep it for resume with the files it had, and never say so of a bottle that
was killed by someone. The limit is small here (256 MiB) to keep the test light on a shared host.
"""

from __future__ import annotations

import threading
import time
import unittest

from bot_bottle import images, lifecycle
from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.launch import LaunchOptions
from bot_bottle.manifest import load
from bot_bottle.state import StateDir
from tests._docker import in_ci, skip_unless_docker
from tests.integration import _harness as h

LIMIT = "256m"
WORK = "/home/node/workspace/work.txt"


@skip_unless_docker()
class OutOfMemory(unittest.TestCase):
    def setUp(self) -> None:
        self.home = h.TempHome(self).path
        self.layout = h.write_manifests(self.home, bottle=h.NO_CREDENTIAL_BOTTLE)
        self.plan = h.plan_for(self.layout)
        if self.plan.runtime != "runsc":
            why = "the engine has no gVisor (runsc): a process over the limit is ended alone, not the bottle"
            if in_ci():  # scripts/setup registers gVisor: a CI run without it must not pass silently
                self.fail(f"CI=true but {why}")
            self.skipTest(why)
        images.ensure_image(images.sidecar_image())
        images.ensure_image(images.agent_image("claude"))
        self.manifest = load("tester", self.layout)
        self.environ = {"HOME": str(self.home), "ANTHROPIC_API_KEY": "test-placeholder"}

    def run_command(self, script: str, on_launched=None) -> lifecycle.RunResult:
        ids: list[str] = []

        def launched(bottle, launcher) -> None:
            ids.append(launcher.names.id)
            self.addCleanup(h.remove_snapshot, launcher.names.id)
            self.addCleanup(h.remove_bottle, launcher.names.id)
            if on_launched is not None:
                on_launched(bottle, launcher)

        return lifecycle.run_bottle(
            self.manifest, self.plan, state_root=self.layout.state_dir, environ=self.environ, prompt_fn=None,
            tty=False, options=LaunchOptions(memory=LIMIT, internal_network=True),
            command=["sh", "-c", script], on_launched=launched)

    def test_going_over_the_limit_is_said_and_the_files_are_kept(self) -> None:
        result = self.run_command(f"echo precious > {WORK}; head -c 700M /dev/zero | tail > /dev/null; echo survived")
        self.assertEqual(result.exit_code, lifecycle.OUT_OF_MEMORY_EXIT, result)
        self.assertEqual(result.preserve_reason, "the bottle went over its memory limit of 256 MiB")
        self.assertIsNotNone(result.notice)
        self.assertIn(f"bottle {result.bottle_id} went over its memory limit of 256 MiB", result.notice or "")
        self.assertIn(f"`bot-bottle resume {result.bottle_id}` continues it", result.notice or "")
        state = StateDir(self.layout.state_dir, result.bottle_id)
        self.assertTrue(state.preserved)
        snapshot = state.read().snapshot
        self.assertTrue(snapshot)
        kept = engine.run(["run", "--rm", "--network", "none", "--entrypoint", "cat", str(snapshot), WORK],
                          timeout=120, check=False)
        self.assertEqual(kept.stdout.strip(), "precious", kept.stderr)

    def test_a_kill_is_not_called_a_lack_of_memory(self) -> None:
        def kill_soon(bottle, launcher) -> None:
            def kill() -> None:
                time.sleep(5)
                engine.run(["kill", launcher.names.agent_container], timeout=60, check=False)
            threading.Thread(target=kill, daemon=True).start()

        result = self.run_command("sleep 120", on_launched=kill_soon)
        # Said to be a stop, or the agent's 137 when its client saw the kill first: never memory.
        self.assertIn(result.preserve_reason, (lifecycle.STOPPED, "agent exited with code 137"), result)
        self.assertIsNone(result.notice)
        self.assertNotEqual(result.exit_code, 0)


if __name__ == "__main__":
    unittest.main()
