"""How ``engine.run`` runs the docker CLI: output that is not UTF-8 is read, never a decoding
error; the client is out of the terminal's reach (its own process group, no stdin)."""

from __future__ import annotations

import os
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


def use_fake_docker(test: unittest.TestCase, script: str) -> None:
    """``engine.run`` runs ``script`` as the docker CLI for the rest of ``test``."""
    tmp = tempfile.TemporaryDirectory()
    test.addCleanup(tmp.cleanup)
    docker = Path(tmp.name) / "docker"
    docker.write_text(script)
    docker.chmod(0o755)
    patch = mock.patch.object(engine, "docker_binary", return_value=str(docker))
    patch.start()
    test.addCleanup(patch.stop)


class NonUtf8OutputTests(unittest.TestCase):
    def setUp(self) -> None:
        use_fake_docker(self, FAKE_DOCKER)

    def test_output_is_read_with_replacement_characters(self) -> None:
        result = engine.run(["exec", "bottle", "cat", "/file"])
        self.assertEqual(result.stdout, "caf\ufffd \ufffd ok\n")
        self.assertEqual(result.stderr, "warn \ufffd\n")

    def test_a_failure_quotes_its_message(self) -> None:
        with mock.patch.dict("os.environ", {"FAKE_STATUS": "3"}):
            with self.assertRaises(engine.DockerError) as ctx:
                engine.run(["exec", "bottle", "cat", "/file"])
        self.assertIn("warn \ufffd", str(ctx.exception))


# A docker CLI reporting its process group and what its stdin holds.
GROUP_DOCKER = """#!/usr/bin/env python3
import os, sys
print(os.getpgid(0), os.getpid(), repr(sys.stdin.read()))
"""


class TerminalReachTests(unittest.TestCase):
    def setUp(self) -> None:
        use_fake_docker(self, GROUP_DOCKER)

    def test_the_client_leads_a_process_group_of_its_own(self) -> None:
        # Ctrl-C at a terminal signals the foreground group: the client is never in it.
        group, pid, _ = engine.run(["commit", "bottle"]).stdout.split()
        self.assertEqual(group, pid)
        self.assertNotEqual(int(group), os.getpgid(0))

    def test_stdin_is_empty_unless_input_is_given(self) -> None:
        self.assertEqual(engine.run(["ps"]).stdout.split()[2], "''")
        self.assertEqual(engine.run(["exec", "-i", "bottle"], input="data").stdout.split()[2], "'data'")


if __name__ == "__main__":
    unittest.main()
