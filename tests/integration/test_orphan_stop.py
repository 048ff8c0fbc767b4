"""`bot-bottle stop` on a bottle whose launching process is gone keeps the agent's work.

The launch runs in a child process that then dies without tearing anything down (as a CLI killed
with SIGKILL does): the bottle runs on with no owner. Its agent writes a file; `stop` must
snapshot it and preserve the bottle for `resume`, as the owner's own teardown would, and remove
its containers, network and volume.
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


@skip_unless_docker()
class StopAnOrphan(unittest.TestCase):
    def setUp(self) -> None:
        self.home = h.TempHome(self).path
        self.env = {**os.environ, "HOME": str(self.home), "PYTHONPATH": str(REPO), "COLUMNS": "300"}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot_bottle", *args], cwd=self.home, env=self.env,
                              capture_output=True, text=True, timeout=300)

    def test_its_work_is_snapshotted_and_the_bottle_preserved(self) -> None:
        launched = subprocess.run([sys.executable, "-c", ORPHAN_LAUNCH, str(self.home)], cwd=REPO, env=self.env,
                                  capture_output=True, text=True, timeout=600)
        self.assertEqual(launched.returncode, 0, launched.stderr)
        bottle_id = launched.stdout.split()[-1]
        self.addCleanup(h.remove_bottle, bottle_id)
        state = StateDir(self.home / ".bot-bottle" / "state", bottle_id)
        self.addCleanup(lambda: engine.run(["rmi", "-f", f"bot-bottle/snapshot:{bottle_id}"], timeout=60, check=False))
        agent = f"bot-bottle-{bottle_id}-agent"
        wrote = engine.run(["exec", "-u", "node", agent, "sh", "-c", "echo orphan-work > /home/node/workspace/kept.txt"],
                           timeout=60, check=False)
        self.assertEqual(wrote.returncode, 0, wrote.stderr)

        listed = self.cli("list", "--running")
        self.assertIn(f"`bot-bottle stop {bottle_id}` keeps its work", listed.stdout)

        stopped = self.cli("stop", bottle_id)
        self.assertEqual(stopped.returncode, 0, stopped.stdout + stopped.stderr)
        self.assertTrue(state.preserved, "the orphan was not preserved")
        self.assertIn("process was gone", state.preserve_reason or "")
        snapshot = state.read().snapshot
        self.assertEqual(snapshot, f"bot-bottle/snapshot:{bottle_id}")
        kept = engine.run(["run", "--rm", "--network", "none", "--entrypoint", "cat", snapshot,
                           "/home/node/workspace/kept.txt"], timeout=120, check=False)
        self.assertEqual(kept.stdout.strip(), "orphan-work", kept.stderr)
        left = engine.run(["ps", "-a", "-q", "--filter", f"label=bot-bottle.id={bottle_id}"], timeout=60).stdout.split()
        self.assertEqual(left, [], "the stopped orphan's containers are still there")
        listed = self.cli("list")
        self.assertIn(bottle_id, listed.stdout)


if __name__ == "__main__":
    unittest.main()
