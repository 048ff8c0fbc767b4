"""The demo as a user runs it, and the lifecycle commands through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

from tests._docker import skip_unless_docker
from tests.integration import _harness as h

REPO = Path(__file__).resolve().parents[2]


class _Cli(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix="bb-cli-")
        self.addCleanup(tmp.cleanup)
        self.home = Path(tmp.name)
        self.env = {**os.environ, "HOME": str(self.home), "PYTHONPATH": str(REPO),
                    "ANTHROPIC_API_KEY": "test-placeholder", "BOT_BOTTLE_INTERNAL_NETWORK": "1"}
        self.addCleanup(lambda: self.cli("cleanup", "--all"))

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot_bottle", *args], cwd=self.home, env=self.env,
                              capture_output=True, text=True, timeout=timeout)


@skip_unless_docker()
class Demo(_Cli):
    def test_demo_shows_every_protection_holding(self) -> None:
        result = self.cli("demo")
        self.assertEqual(result.returncode, 0, result.stdout[-3000:] + result.stderr[-3000:])
        self.assertIn("every protection held", result.stdout)
        for text in ("allowed.example", "evil.example", "403", "no network"):
            self.assertIn(text, result.stdout)
        self.assertNotIn("FAILED", result.stdout)
        leftovers = subprocess.run(["docker", "ps", "-a", "-q", "--filter", "label=bot-bottle.role=demo"],
                                   capture_output=True, text=True, timeout=60).stdout.split()
        self.assertEqual(leftovers, [], "the demo left containers behind")


@skip_unless_docker()
class CliLifecycle(_Cli):
    def test_cwd_is_copied_in_and_owned_by_node(self) -> None:
        h.write_manifests(self.home, bottle=h.NO_CREDENTIAL_BOTTLE)
        tree = self.home / "project"
        (tree / "src").mkdir(parents=True)
        (tree / "src" / "main.py").write_text("print('hello')\n")
        (tree / "README").write_text("project readme\n")
        # The agent command fails on purpose (no model), so the bottle is preserved with a snapshot
        # whose workspace we can inspect by resuming it.
        result = self.cli("start", "tester", "--headless", "--prompt", "x", "--cwd", str(tree))
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(f"copying the working tree {tree} into the bottle (", result.stderr)
        self.assertIn(" in 2 files)", result.stderr)
        listing = json.loads(self.cli("list", "--running", "--format", "json").stdout)
        self.assertEqual(len(listing["preserved"]), 1, listing)
        bid = listing["preserved"][0]["id"]
        snapshot = listing["preserved"][0]["snapshot"]
        out = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", "--entrypoint", "sh", snapshot, "-c",
             "stat -c '%U %n' /home/node/workspace/src/main.py /home/node/workspace/README && "
             "cat /home/node/workspace/src/main.py"],
            capture_output=True, text=True, timeout=120,
        )
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("node /home/node/workspace/src/main.py", out.stdout)
        self.assertIn("print('hello')", out.stdout)
        self.assertTrue(bid)

    def test_stop_a_running_bottle(self) -> None:
        self._stop_a_running_bottle("runc")

    def test_stop_a_running_gvisor_bottle(self) -> None:
        # The client of a `docker exec` into a gVisor container may outlive the container: the
        # owner must still notice the stop, preserve the bottle and end.
        from bot_bottle.cli.common import docker_runtime

        runtime, note = docker_runtime()
        if runtime != "runsc":
            self.skipTest(f"gVisor is optional and not here: {note}")
        self._stop_a_running_bottle("runsc")

    def _stop_a_running_bottle(self, runtime: str) -> None:
        layout = h.write_manifests(self.home, bottle=h.NO_CREDENTIAL_BOTTLE)
        from bot_bottle import lifecycle
        from bot_bottle.backend.docker.launch import LaunchOptions
        from bot_bottle.manifest import load
        from bot_bottle.plan import resolve

        manifest = load("tester", layout)
        label = f"stop-test-{os.getpid()}-{time.monotonic_ns()}"
        plan = resolve(manifest, backend="docker", runtime=runtime, environ={}, label=label)
        outcome: dict[str, object] = {}

        def long_running_agent() -> None:
            outcome["result"] = lifecycle.run_bottle(
                manifest, plan, state_root=layout.state_dir,
                environ={"ANTHROPIC_API_KEY": "test-placeholder"}, prompt_fn=None, tty=False,
                options=LaunchOptions(internal_network=True), command=["sleep", "600"],
            )

        worker = threading.Thread(target=long_running_agent, daemon=True)
        worker.start()
        bid = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and bid is None:
            rows = json.loads(self.cli("list", "--running", "--format", "json").stdout)["running"]
            # Other bottles may run on the same engine: find ours by its label.
            mine = [r for r in rows if r["label"] == label]
            bid = mine[0]["id"] if mine else None
            time.sleep(0.3)
        self.assertIsNotNone(bid, "the bottle never showed up in list --running")
        # Whatever happens below, this test's bottle must not outlive it.
        self.addCleanup(h.remove_bottle, str(bid))
        # The bottle is listed as soon as its container exists; stop it once the agent itself
        # runs, after provisioning (a stop during provisioning is a failed launch, not this test).
        agent_container = f"bot-bottle-{bid}-agent"

        def agent_runs() -> bool:
            # From inside (`docker top` does not list a gVisor container's processes).
            seen = subprocess.run(["docker", "exec", agent_container, "sh", "-c",
                                   "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done"],
                                  capture_output=True, text=True)
            return any(line.strip() == "sleep 600" for line in seen.stdout.splitlines())

        h.wait_for(agent_runs, "the agent command running in the bottle", timeout=120)
        stop = self.cli("stop", bid, "-t", "1")
        self.assertEqual(stop.returncode, 0, stop.stderr)
        worker.join(timeout=180)
        self.assertFalse(worker.is_alive(), "the agent did not end after stop")
        result = outcome["result"]
        self.assertNotEqual(result.exit_code, 0)  # type: ignore[attr-defined]
        self.assertTrue(result.preserved)  # type: ignore[attr-defined]
        rows = json.loads(self.cli("list", "--running", "--format", "json").stdout)
        self.assertEqual([r for r in rows["running"] if r["id"] == bid], [])
        self.assertEqual([p["id"] for p in rows["preserved"]], [bid])
        again = self.cli("stop", bid)
        self.assertEqual(again.returncode, 1)
        self.assertIn("no running bottle", again.stderr)

    def test_format_json_without_dry_run_is_a_usage_error(self) -> None:
        h.write_manifests(self.home, bottle=h.NO_CREDENTIAL_BOTTLE)
        result = self.cli("start", "tester", "--format", "json")
        self.assertEqual(result.returncode, 2)
        self.assertIn("--dry-run", result.stderr)


if __name__ == "__main__":
    unittest.main()
