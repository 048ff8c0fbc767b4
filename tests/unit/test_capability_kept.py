"""An approved capability change survives later snapshots of the same run (Docker).

The snapshot of a running container starts from the image the run began with, which lacks the
packages approved during the run; they are added again on top, and a new run starts clean.
"""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

from bot_bottle import lifecycle
from bot_bottle.backend import registry
from tests.unit.test_backend_parity import Run


class CapabilityKeptTest(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmp.cleanup)
        self.run_ = Run(self, "docker", Path(self._tmp.name) / "state")

    def _builds(self) -> list[str]:
        return [c.input or "" for c in self.run_.fake.calls
                if Path(c.argv[0]).name == "docker" and c.argv[1:2] == ["build"]]

    def test_a_commit_after_a_capability_change_adds_the_packages_again(self) -> None:
        with self.run_.host():
            self.run_.launch()
            launcher = self.run_.launcher
            assert launcher is not None
            state = launcher.state
            backend = registry.for_state(state)
            backend.apply_capability_change(registry.CapabilityChange(state.id, ("ripgrep",)),
                                            state_root=self.run_.state_root)
            self.assertEqual(state.capability_packages(), ("ripgrep",))
            self.run_.fake.calls.clear()
            ref = backend.commit(state.id, state_root=self.run_.state_root)
            builds = self._builds()
            self.assertEqual(len(builds), 2, "the commit is rebuilt with the approved packages (fetch, install)")
            self.assertIn("--download-only ripgrep", builds[0])
            self.assertIn("dpkg-query -W ripgrep", builds[1])
            self.assertEqual(state.read().snapshot, ref)

    def test_without_a_capability_change_a_commit_builds_nothing(self) -> None:
        with self.run_.host():
            self.run_.launch()
            launcher = self.run_.launcher
            assert launcher is not None
            self.run_.fake.calls.clear()
            registry.for_state(launcher.state).commit(launcher.state.id, state_root=self.run_.state_root)
            self.assertEqual(self._builds(), [])

    def test_packages_accumulate_and_are_reapplied_once_each(self) -> None:
        with self.run_.host():
            self.run_.launch()
            launcher = self.run_.launcher
            assert launcher is not None
            state = launcher.state
            state.record_capability(("ripgrep",))
            state.record_capability(("jq", "ripgrep"))
            self.assertEqual(state.capability_packages(), ("ripgrep", "jq"))
            self.run_.fake.calls.clear()
            lifecycle._reapply_capability(registry.for_state(state), state, self.run_.state_root)
            builds = self._builds()
            self.assertEqual(len(builds), 2)
            self.assertIn("--download-only ripgrep jq", builds[0])
            state.clear_capability()
            self.assertEqual(state.capability_packages(), ())



class SnapshotEnvTest(unittest.TestCase):
    """A snapshot never carries the launch's env values (the bottle's secrets) in its config."""

    def test_only_what_the_launch_added_or_changed_is_blanked(self) -> None:
        image = ["PATH=/usr/bin", "LANG=C.UTF-8", "DB_PASSWORD="]
        container = ["PATH=/usr/bin", "LANG=C.UTF-8", "DB_PASSWORD=hunter2-secret", "HTTPS_PROXY=http://127.0.0.1:3128"]
        self.assertEqual(lifecycle.env_added(container, image), ["DB_PASSWORD", "HTTPS_PROXY"])

    def test_nothing_added_nothing_blanked(self) -> None:
        self.assertEqual(lifecycle.env_added(["A=1"], ["A=1"]), [])

    def test_odd_names_are_never_put_into_a_change_line(self) -> None:
        self.assertEqual(lifecycle.env_added(["BAD NAME=x", "=y", "OK_1=z"], []), ["OK_1"])

if __name__ == "__main__":
    unittest.main()
