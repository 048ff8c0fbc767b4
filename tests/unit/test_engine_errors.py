"""No Docker engine answering is one clear error with what to do, wherever it is met first."""

from __future__ import annotations

import os
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle import images
from bot_bottle.backend.docker import engine

DAEMON_DOWN = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"

# A docker CLI whose engine is down, as the real CLI behaves: the message on stderr, status 1.
FAKE_DOCKER = f"""#!/bin/sh
echo "{DAEMON_DOWN}" >&2
exit 1
"""


class NoEngineTests(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        docker = Path(tmp.name) / "docker"
        docker.write_text(FAKE_DOCKER)
        docker.chmod(0o755)
        patch = mock.patch.object(engine, "docker_binary", return_value=str(docker))
        patch.start()
        self.addCleanup(patch.stop)

    def assert_no_engine(self, exc: engine.DockerError) -> None:
        self.assertEqual(str(exc), f"no Docker engine answers: {DAEMON_DOWN}")
        self.assertEqual(exc.hint, engine.NO_ENGINE_HINT)

    def test_any_command(self) -> None:
        with self.assertRaises(engine.DockerError) as ctx:
            engine.run(["ps", "-a"])
        self.assert_no_engine(ctx.exception)

    def test_an_image_is_not_taken_for_missing(self) -> None:
        # Missing would start a build, which cannot help and says so far less clearly.
        with self.assertRaises(engine.DockerError) as ctx:
            images.image_exists("bot-bottle/sidecar:abc")
        self.assert_no_engine(ctx.exception)

    def test_other_failures_keep_their_own_words(self) -> None:
        self.assertIsNone(engine.no_engine_error("Error: No such image: bot-bottle/sidecar:abc"))
        self.assertIsNotNone(engine.no_engine_error("error during connect: Is the docker daemon running?"))
        self.assertEqual(os.path.basename(engine.docker_binary() or ""), "docker")


if __name__ == "__main__":
    unittest.main()
