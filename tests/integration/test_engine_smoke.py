"""The engine scripts/setup prepares: the locally built base image runs, and nothing leaks."""

from __future__ import annotations

import unittest
import uuid

from bot_bottle.backend.docker import engine
from tests._docker import resource_snapshot, skip_unless_docker

BASE_IMAGE = "debian:bookworm-slim"


@skip_unless_docker()
class EngineSmokeTests(unittest.TestCase):
    def test_base_image_runs_without_network(self) -> None:
        label = f"bot-bottle.test={uuid.uuid4().hex}"
        before = resource_snapshot(label=label)
        result = engine.run(
            ["run", "--rm", "--network", "none", "--label", label, BASE_IMAGE, "cat", "/etc/debian_version"],
            timeout=120,
        )
        self.assertRegex(result.stdout.strip(), r"^12\.")
        leaked = resource_snapshot(label=label).new_since(before)
        self.assertTrue(leaked.is_empty(), leaked)

    def test_base_image_never_needs_a_pull(self) -> None:
        # Builds start FROM this tag; with no registry reachable it must already be local.
        engine.run(["image", "inspect", BASE_IMAGE], timeout=30)


if __name__ == "__main__":
    unittest.main()
