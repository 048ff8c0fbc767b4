"""`bot-bottle stop` and `bot-bottle cleanup` on a bottle whose launching process is gone keep
the agent's work.

The launch runs in a child process that then dies without tearing anything down (as a CLI killed
with SIGKILL does): the bottle runs on with no owner. Its agent writes a file; `stop` must
snapshot it and preserve the bottle for `resume`, as the owner's own teardown would, and remove
its containers, network and volume; `cleanup` must do the same, also for a bottle whose
containers an engine restart left exited.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import unittest
from pathlib import Path

from bot_bottle.backend.docker import engine
from bot_bottle.state import StateDir
from tests._docker import skip_unless_docker
from tests.integration import _harness as h

REPO = Path(__file__).resolve().parents[2]

# Launches one bottle for HOME, prints its id and dies at once: no teardown, no preserve.
ORPHAN_LAUNCH = textwrap.dedent("""\
    import os, sys
    from pathlib import Path
    from bot_bottle.backend.docker.launch import DockerLauncher, LaunchOptions
    from tests.integration import _harness as h
    layout = h.write_manifests(Path(sys.argv[1]), bottle=h.NO_CREDENTIAL_BOTTLE)
    plan = h.plan_for(layout)
    credentials = {name: "test-credential" for name in plan.credential_refs}
    launcher = DockerLauncher(plan, LaunchOptions(internal_network=True, credentials=credentials), layout.state_dir)
    launcher.launch()
    print(launcher.names.id, flush=True)
    os._exit(0)
""")


class _OrphanHome(unittest.TestCase):
    def setUp(self) -> None:
        self.home = h.TempHome(self).path
        self.env = {**os.environ, "HOME": str(self.home), "PYTHONPATH": str(REPO), "COLUMNS": "300"}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot_bottle", *args], cwd=self.home, env=self.env,
                              capture_output=True, text=True, timeout=300)

    def orphan(self, work: str, *, agent_ran: bool = True) -> tuple[str, StateDir]:
        """A bottle whose launching process died with no teardown, its agent having written
        ``work`` into a file of its workspace."""
        launched = subprocess.run([sys.executable, "-c", ORPHAN_LAUNCH, str(self.home)], cwd=REPO, env=self.env,
                                  capture_output=True, text=True, timeout=600)
        self.assertEqual(launched.returncode, 0, launched.stderr)
        bottle_id = launched.stdout.split()[-1]
        self.addCleanup(h.remove_bottle, bottle_id)
        self.addCleanup(lambda: engine.run(["rmi", "-f", f"bot-bottle/snapshot:{bottle_id}"], timeout=60, check=False))
        state = StateDir(self.home / ".bot-bottle" / "state", bottle_id)
        if agent_ran:
            state.mark_agent_ran()  # what the lifecycle writes before it starts the agent
        wrote = engine.run(["exec", "-u", "node", f"bot-bottle-{bottle_id}-agent", "sh", "-c",
                            f"echo {work} > /home/node/workspace/kept.txt"], timeout=60, check=False)
        self.assertEqual(wrote.returncode, 0, wrote.stderr)
        return bottle_id, state

    def assert_saved(self, bottle_id: str, state: StateDir, work: str, reason: str) -> None:
        """The bottle is preserved for ``reason``, its snapshot holds the file its agent wrote
        (``work``), and none of its containers is left."""
        self.assertTrue(state.preserved, "the orphan was not preserved")
        self.assertIn(reason, state.preserve_reason or "")
        snapshot = state.read().snapshot
        self.assertEqual(snapshot, f"bot-bottle/snapshot:{bottle_id}")
        kept = engine.run(["run", "--rm", "--network", "none", "--entrypoint", "cat", str(snapshot),
                           "/home/node/workspace/kept.txt"], timeout=120, check=False)
        self.assertEqual(kept.stdout.strip(), work, kept.stderr)
        left = engine.run(["ps", "-a", "-q", "--filter", f"label=bot-bottle.id={bottle_id}"], timeout=60).stdout.split()
        self.assertEqual(left, [], "the orphan's containers are still there")


@skip_unless_docker()
class StopAnOrphan(_OrphanHome):
    def test_its_work_is_snapshotted_and_the_bottle_preserved(self) -> None:
        bottle_id, state = self.orphan("orphan-work", agent_ran=False)

        listed = self.cli("list", "--running")
        self.assertIn(f"`bot-bottle stop {bottle_id}` keeps its work", listed.stdout)

        stopped = self.cli("stop", bottle_id)
        self.assertEqual(stopped.returncode, 0, stopped.stdout + stopped.stderr)
        self.assert_saved(bottle_id, state, "orphan-work", "process was gone")
        listed = self.cli("list")
        self.assertIn(bottle_id, listed.stdout)


@skip_unless_docker()
class CleanupSavesAnOrphansWork(_OrphanHome):
    """`cleanup` after a bot-bottle process died while its agent worked (killed, or the machine
    restarted: the engine then shows the bottle's containers exited) saves the agent's work as the
    teardown would have, a snapshot and the bottle preserved for `resume`, before it removes the
    containers. It used to remove them with the work."""

    def test_its_work_is_saved_then_its_containers_removed(self) -> None:
        restarted, restarted_state = self.orphan("work-before-the-restart")
        for role in ("agent", "sidecar"):  # an engine restart leaves them exited
            engine.run(["stop", "-t", "1", f"bot-bottle-{restarted}-{role}"], timeout=60)
        running, running_state = self.orphan("work-of-a-killed-cli")
        restarted_state.preserve("simulated, so that resume reads it")
        refused = self.cli("resume", restarted, "--headless", "--prompt", "hi")
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("did not end cleanly", refused.stderr)  # not "is still running": it is not
        restarted_state.unpreserve()

        preview = self.cli("cleanup", "-n")
        self.assertEqual(preview.returncode, 0, preview.stdout + preview.stderr)
        self.assertIn(f"would save the work of bottle {restarted}", preview.stdout)
        self.assertFalse(restarted_state.preserved, "the preview changed something")

        cleaned = self.cli("cleanup")
        self.assertEqual(cleaned.returncode, 0, cleaned.stdout + cleaned.stderr)
        for bottle_id, state, work in ((restarted, restarted_state, "work-before-the-restart"),
                                       (running, running_state, "work-of-a-killed-cli")):
            with self.subTest(bottle=bottle_id):
                self.assertIn(f"saved the work of bottle {bottle_id}", cleaned.stdout)
                self.assert_saved(bottle_id, state, work, "saved by cleanup")
        again = self.cli("cleanup")
        self.assertEqual(again.returncode, 0, again.stdout + again.stderr)
        self.assertNotIn("saved the work", again.stdout)
        self.assertTrue(restarted_state.preserved and running_state.preserved)

    def test_an_agent_container_kept_for_a_failed_snapshot_is_saved_later(self) -> None:
        bottle_id, state = self.orphan("work-no-snapshot-had")
        # What a teardown leaves when the snapshot fails (a disk too full, the engine going away):
        # the agent container stopped and kept, with its volume; the rest removed.
        agent = f"bot-bottle-{bottle_id}-agent"
        engine.run(["stop", "-t", "1", agent], timeout=60)
        engine.run(["rm", "-f", f"bot-bottle-{bottle_id}-sidecar"], timeout=60)
        engine.run(["network", "rm", f"bot-bottle-{bottle_id}-net"], timeout=60)
        state.keep_agent(agent)
        state.preserve(f"agent exited with code 1 (snapshot failed: not enough room); its container {agent} is kept")

        self.env["ANTHROPIC_API_KEY"] = "test-credential"  # so the resume gets as far as the launch
        refused = self.cli("resume", bottle_id, "--headless", "--prompt", "hi")
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("is still there", refused.stderr)  # not "is still running": it is not
        self.assertIn("`bot-bottle cleanup` takes its snapshot again", refused.stderr)

        cleaned = self.cli("cleanup")
        self.assertEqual(cleaned.returncode, 0, cleaned.stdout + cleaned.stderr)
        self.assertIn(f"saved the work of bottle {bottle_id}", cleaned.stdout)
        self.assertIsNone(state.kept_agent())
        self.assert_saved(bottle_id, state, "work-no-snapshot-had", "saved by cleanup")


if __name__ == "__main__":
    unittest.main()
