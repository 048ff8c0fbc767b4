"""A dry run resolves the whole plan against a real engine and creates nothing at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from bot_bottle.backend.docker import engine
from tests._docker import resource_snapshot, skip_unless_docker

REPO = Path(__file__).resolve().parents[2]


def _images() -> frozenset[str]:
    out = engine.run(["images", "-a", "-q", "--no-trunc"], timeout=60).stdout
    return frozenset(line for line in out.split() if line)


@skip_unless_docker()
class DryRunCreatesNothing(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="bb-dry-")
        self.addCleanup(self._tmp.cleanup)
        self.home = Path(self._tmp.name) / "home"
        self.work = Path(self._tmp.name) / "work"
        self.home.mkdir()
        self.work.mkdir()
        self.env = {
            **os.environ,
            "HOME": str(self.home),
            "PYTHONPATH": str(REPO),
            "ANTHROPIC_API_KEY": "sk-ant-api03-dry-run-secret-value-never-printed",
        }

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot_bottle", *args],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def test_init_then_dry_run_json_creates_no_docker_resource(self) -> None:
        init = self.cli("init")
        self.assertEqual(init.returncode, 0, init.stderr)
        before = resource_snapshot()
        images_before = _images()

        for backend in ("docker", "smolmachines"):
            with self.subTest(backend=backend):
                result = self.cli("start", "coder", "--dry-run", "--format", "json", "--backend", backend)
                self.assertEqual(result.returncode, 0, result.stderr)
                plan = json.loads(result.stdout)
                self.assertEqual(plan["agent"], "coder")
                self.assertEqual(plan["bottle"], "dev")
                self.assertEqual(plan["backend"], backend)
                self.assertEqual(plan["hosts"], sorted(set(plan["hosts"])))
                self.assertIn("api.anthropic.com", plan["hosts"])
                self.assertNotIn("dry-run-secret-value", result.stdout + result.stderr)

        text = self.cli("start", "coder", "--dry-run")
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertIn("api.github.com", text.stdout)

        after = resource_snapshot()
        leaked = after.new_since(before)
        self.assertTrue(leaked.is_empty(), f"a dry run created Docker objects: {leaked}")
        self.assertEqual(_images() - images_before, frozenset(), "a dry run built or pulled an image")

    def test_runtime_reflects_the_engine(self) -> None:
        self.assertEqual(self.cli("init").returncode, 0)
        result = self.cli("start", "coder", "--dry-run", "--format", "json")
        self.assertEqual(result.returncode, 0, result.stderr)
        plan = json.loads(result.stdout)
        info = engine.engine_info()
        assert info is not None
        expected = "runsc" if "runsc" in (info.get("Runtimes") or {}) else "runc"
        self.assertEqual(plan["runtime"], expected)


if __name__ == "__main__":
    unittest.main()
