"""The git-gate scans pushes with the shared DLP engine or not at all: it never falls back to its
small built-in patterns, which miss a token glued to its neighbours, and a copy of the package
without the engine refuses to start, saying why, rather than serve pushes it cannot check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from bot_bottle.sidecar.git_gate.scan import PatternDetector, default_detector

GITHUB = "ghp_R7bX2kQ9mLw4Tz8Vn1Pc6Hs3Jd5Fg0Ya2Ue7"
ROOT = Path(__file__).resolve().parents[2]

# Starts the gate's daemon with one module made unimportable (as in a copy of the package that
# lacks it), on a config that does not exist: what fails first is reported.
START_WITHOUT = """\
import runpy, sys
missing, config, state = sys.argv[1:4]
class Missing:
    def find_spec(self, name, path=None, target=None):
        if name == missing:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Missing())
sys.argv = ["git_gate", "--config", config, "--state-dir", state]
runpy.run_module("bot_bottle.sidecar.git_gate", run_name="__main__")
"""


class NoFallbackTests(unittest.TestCase):
    def test_the_builtin_patterns_miss_a_glued_token_the_engine_finds(self) -> None:
        # Why there is no fallback: the same push would pass the built-in patterns.
        for text in (f"x{GITHUB}\n", f"{GITHUB}_\n", f"1{GITHUB}\n"):
            with self.subTest(text=text[:8]):
                self.assertEqual(list(PatternDetector().hits(text)), [])
                self.assertTrue(any(hit.detector == "github-token" for hit in default_detector().hits(text)))

    def test_names_that_only_look_glued_stay_clean(self) -> None:
        # A kebab-case or snake-case name and a hash glued to a word are no tokens.
        detector = default_detector()
        for text in ("ghp_task_ant_colony_simulation_module_version_two_final\n",
                     "cache-ghs_3f786850e387550fdab836ed7e6dc881de23001b\n",
                     "xghp_abcdefghijklmnopqrstuvwxyzabcdefghij\n"):
            with self.subTest(text=text[:12]):
                self.assertEqual([hit.detector for hit in detector.hits(text)], [])


class StartWithoutTheEngineTests(unittest.TestCase):
    def start_without(self, module: str) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            return subprocess.run([sys.executable, "-c", START_WITHOUT, module, str(Path(tmp) / "none.json"),
                                   str(Path(tmp) / "state")], env=env, cwd=ROOT, capture_output=True, text=True,
                                  timeout=60)

    def test_the_daemon_refuses_to_start_and_says_why(self) -> None:
        for module in ("bot_bottle.sidecar.dlp", "bot_bottle.sidecar.dlp.wide", "bot_bottle.sidecar.dlp.fragments"):
            with self.subTest(module=module):
                run = self.start_without(module)
                self.assertEqual(run.returncode, 1, run.stderr)
                self.assertNotIn("Traceback", run.stderr)
                event = json.loads(run.stderr.strip().splitlines()[-1])
                self.assertEqual((event["event"], event["what"]), ("git-gate", "start-failed"))
                self.assertIn(module, event["error"])
                self.assertIn("rebuild the sidecar image", event["error"])

    def test_with_the_engine_the_start_goes_on_to_read_the_config(self) -> None:
        run = self.start_without("no_such_module_anyone_imports")
        self.assertEqual(run.returncode, 1, run.stderr)
        event = json.loads(run.stderr.strip().splitlines()[-1])
        self.assertEqual(event["what"], "start-failed")
        self.assertIn("none.json", event["error"])
        self.assertNotIn("push check", event["error"])


if __name__ == "__main__":
    unittest.main()
