"""Several bottles from one home on the real engine: one bottle is never run by two processes.

Two resumes of the same preserved bottle create objects under the same names (the bottle's
id). Before the run lock, the second one's launch failed on a name the first held, and its
rollback removed the first's containers, network and volume by those names: the first
resume's agent was killed under it, and a second network of the same name was left behind.
"""

from __future__ import annotations

import threading
import unittest

from bot_bottle import images, lifecycle
from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.launch import LaunchOptions
from bot_bottle.errors import BotBottleError
from bot_bottle.manifest import load
from bot_bottle.state import StateDir
from tests._docker import skip_unless_docker
from tests.integration import _harness as h


def _objects(bottle_id: str) -> dict[str, list[str]]:
    label = f"label=bot-bottle.id={bottle_id}"
    return {
        "containers": engine.run(["ps", "-a", "-q", "--filter", label], timeout=60).stdout.split(),
        "networks": engine.run(["network", "ls", "-q", "--filter", label], timeout=60).stdout.split(),
        "volumes": engine.run(["volume", "ls", "-q", "--filter", label], timeout=60).stdout.split(),
    }


@skip_unless_docker()
class TwoResumesOfOneBottle(unittest.TestCase):
    def setUp(self) -> None:
        images.ensure_image(images.sidecar_image())
        images.ensure_image(images.agent_image("claude"))
        self.home = h.TempHome(self).path
        self.layout = h.write_manifests(self.home, bottle=h.NO_CREDENTIAL_BOTTLE)
        self.manifest = load("tester", self.layout)
        self.plan = h.plan_for(self.layout)
        self.state_root = self.layout.state_dir
        self.environ = {"HOME": str(self.home), "ANTHROPIC_API_KEY": "test-placeholder"}

    def preserved_bottle(self) -> tuple[str, str]:
        """A bottle saved for resume, as a failed agent leaves one: (id, snapshot)."""
        bottle, launcher = h.launch(self, self.plan, self.state_root)
        bid = launcher.names.id
        self.addCleanup(h.remove_bottle, bid)
        self.addCleanup(h.remove_snapshot, bid)
        self.assertTrue(bottle.exec("echo precious > /home/node/workspace/work.txt").ok)
        ref = lifecycle.snapshot(bid, launcher.names.agent_container, self.state_root)
        meta = launcher.state.read()
        meta.snapshot = ref
        launcher.state.write(meta)
        launcher.preserve_reason = "agent exited with code 1"
        bottle.close()
        self.assertTrue(StateDir(self.state_root, bid).preserved)
        return bid, ref

    def resume(self, bid: str, ref: str, command: list[str], on_launched=None) -> lifecycle.RunResult:
        return lifecycle.run_bottle(
            self.manifest, self.plan, state_root=self.state_root, environ=self.environ, prompt_fn=None, tty=False,
            options=LaunchOptions(bottle_id=bid, resume=True, image_override=ref, internal_network=True),
            command=command, on_launched=on_launched, preserve=True)

    def test_a_second_resume_while_the_first_runs_is_refused_and_the_first_runs_on(self) -> None:
        bid, ref = self.preserved_bottle()
        second: list[BaseException | lifecycle.RunResult] = []

        def start_the_second(bottle, launcher) -> None:
            # The first resume runs: the second one is asked for now, from another thread.
            thread = threading.Thread(target=lambda: second.append(self._catch(
                lambda: self.resume(bid, ref, ["true"]))))
            thread.start()
            thread.join(timeout=300)
            self.assertFalse(thread.is_alive(), "the second resume did not end")

        first = self.resume(bid, ref, ["sh", "-c", "sleep 2; cat /home/node/workspace/work.txt"],
                            on_launched=start_the_second)
        self.assertEqual(len(second), 1)
        self.assertIsInstance(second[0], BotBottleError, second[0])
        self.assertIn(f"bottle {bid} is already running from another bot-bottle process", str(second[0]))
        self.assertEqual(first.exit_code, 0, "the first resume's agent was stopped under it")
        self.assertEqual(_objects(bid), {"containers": [], "networks": [], "volumes": []}, "objects left")
        sdir = StateDir(self.state_root, bid)
        self.assertTrue(sdir.preserved)
        # Free again: the bottle resumes once more, its work still there.
        again = self.resume(bid, ref, ["grep", "-q", "precious", "/home/node/workspace/work.txt"])
        self.assertEqual(again.exit_code, 0)

    @staticmethod
    def _catch(fn):
        try:
            return fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread to assert on
            return exc


if __name__ == "__main__":
    unittest.main()
