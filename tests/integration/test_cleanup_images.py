"""``cleanup --images``: older builds of bot-bottle's own images go, anything still in use stays.

The images here are made for the test (a label on the base image, built in a second) under tags
no real build has; the command runs with ``-n`` so no other image on the engine is touched, and
the removal itself is run on the test's own images only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest
import uuid
from pathlib import Path

from bot_bottle import images
from bot_bottle.backend.docker import cleanup, engine
from tests._docker import skip_unless_docker

REPO = Path(__file__).resolve().parents[2]


@skip_unless_docker()
class CleanupImagesTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix="bb-images-")
        self.addCleanup(tmp.cleanup)
        self.home = Path(tmp.name)
        self.tag = uuid.uuid4().hex[:12]
        base = images.load_versions().get("base", {}).get("image", "debian:bookworm-slim")
        self.old_sidecar = f"bot-bottle/sidecar:old{self.tag}"  # a built-in repository, not this version's tag
        self.in_use = f"bot-bottle/agent-claude:old{self.tag}"
        self.custom_old = f"bot-bottle/agent-test{self.tag}-custom:a{self.tag}"
        self.custom_new = f"bot-bottle/agent-test{self.tag}-custom:b{self.tag}"
        for ref, kind in ((self.old_sidecar, "sidecar"), (self.in_use, "agent"),
                          (self.custom_old, "agent"), (self.custom_new, "agent")):
            self.addCleanup(engine.run, ["rmi", "-f", ref], timeout=60, check=False)
            engine.run(["build", "-q", "-t", ref, "-"], timeout=120,
                       input=f"FROM {base}\nLABEL {images.LABEL_IMAGE}={kind} test.ref={ref}\n",
                       env={**os.environ, "DOCKER_BUILDKIT": "0"})
        container = f"bb-test-images-{self.tag}"
        self.addCleanup(engine.run, ["rm", "-f", container], timeout=60, check=False)
        engine.run(["create", "--name", container, "--network", "none", self.in_use, "true"], timeout=60)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HOME": str(self.home), "PYTHONPATH": str(REPO)}
        return subprocess.run([sys.executable, "-m", "bot_bottle", *args], capture_output=True, text=True,
                              env=env, cwd=self.home, timeout=300)

    def test_older_builds_go_and_what_is_in_use_or_newest_stays(self) -> None:
        result = self.cli("cleanup", "-n", "--images", "--format", "json")
        self.assertEqual(result.returncode, 0, result.stderr)
        data = json.loads(result.stdout)
        would = {r["name"] for r in data["would_remove"] if r["kind"] == "image"}
        kept = {r["name"]: r["why"] for r in data["kept"] if r["kind"] == "image"}
        self.assertIn(self.old_sidecar, would)
        self.assertIn(self.custom_old, would)
        self.assertEqual(kept.get(self.in_use), "used by a container")
        self.assertEqual(kept.get(self.custom_new), "the newest build of a custom image")
        for current in (images.sidecar_image().ref, images.agent_image("claude").ref):
            self.assertNotIn(current, would)
        # -n removed nothing.
        self.assertEqual(engine.run(["image", "inspect", self.old_sidecar], timeout=60, check=False).returncode, 0)

        ours = {self.old_sidecar, self.custom_old}
        stale, _ = cleanup.stale_images(self.home / ".bot-bottle" / "state", {images.sidecar_image().ref})
        self.assertEqual(cleanup.remove([r for r in stale if r.ref in ours]), [])
        for ref in ours:
            self.assertNotEqual(engine.run(["image", "inspect", ref], timeout=60, check=False).returncode, 0, ref)
        for ref in (self.in_use, self.custom_new):
            self.assertEqual(engine.run(["image", "inspect", ref], timeout=60, check=False).returncode, 0, ref)

    def test_an_image_a_saved_bottle_names_is_kept(self) -> None:
        from bot_bottle import state

        root = self.home / ".bot-bottle" / "state"
        sdir = state.StateDir(root, f"t{self.tag}")
        sdir.create()
        sdir.write(state.Metadata(id=f"t{self.tag}", agent="a", bottle="b", backend="docker", image=self.old_sidecar))
        stale, kept = cleanup.stale_images(root, {images.sidecar_image().ref})
        self.assertNotIn(self.old_sidecar, {r.ref for r in stale})
        self.assertIn((self.old_sidecar, f"the image of saved bottle t{self.tag}"), {(r.ref, why) for r, why in kept})


if __name__ == "__main__":
    unittest.main()
