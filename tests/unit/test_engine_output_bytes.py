"""A docker command whose output is not UTF-8 is read, never a decoding error."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle.backend.docker import engine

# A docker CLI printing what a bottle's file could hold: Latin-1 bytes and a lone 0xff.
FAKE_DOCKER = """#!/bin/sh
printf 'caf\\351 \\377 ok\\n'
printf 'warn \\351\\n' >&2
exit "${FAKE_STATUS:-0}"
"""


class NonUtf8OutputTests(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        docker = Path(tmp.name) / "docker"
        docker.write_text(FAKE_DOCKER)
        docker.chmod(0o755)
        patch = mock.patch.object(engine, "docker_binary", return_value=str(docker))
        patch.start()
        self.addCleanup(patch.stop)

    def test_output_is_read_with_replacement_characters(self) -> None:
        result = engine.run(["exec", "bottle", "cat", "/file"])
        self.assertEqual(result.stdout, "caf\ufffd \ufffd ok\n")
        self.assertEqual(result.stderr, "warn \ufffd\n")

    def test_a_failure_quotes_its_message(self) -> None:
        with mock.patch.dict("os.environ", {"FAKE_STATUS": "3"}):
            with self.assertRaises(engine.DockerError) as ctx:
                engine.run(["exec", "bottle", "cat", "/file"])
        self.assertIn("warn \ufffd", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
