"""The Python API drives a real bottle headless and raises typed errors."""

from __future__ import annotations

import os
import tempfile
import unittest
from unittest import mock
from pathlib import Path

from bot_bottle import api
from bot_bottle.errors import BotBottleError
from bot_bottle.manifest import ManifestError
from tests._docker import skip_unless_docker
from tests.integration import _harness as h


@skip_unless_docker()
class PythonApi(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix="bb-api-")
        self.addCleanup(tmp.cleanup)
        self.home = Path(tmp.name)
        # No provider credential in the agent: claude exits at once (non-zero) instead of retrying.
        h.write_manifests(self.home, bottle='---\nenv:\n  ANTHROPIC_API_KEY: ""\negress:\n  routes: [allowed.example]\n---\n')

    def test_start_runs_headless_and_preserves_a_failed_agent(self) -> None:
        # The bottle's network has no route out, and no model answers: claude exits non-zero, so
        # the bottle is preserved with a snapshot, and resume brings it back.
        env = {"ANTHROPIC_API_KEY": "test-placeholder", "HOME": str(self.home)}
        with mock.patch.dict(os.environ, {"BOT_BOTTLE_INTERNAL_NETWORK": "1"}):
            result = api.start("tester", prompt="hi", environ=env, home=self.home)
            self.addCleanup(lambda: h.remove_snapshot(result.bottle_id))
            self.assertNotEqual(result.exit_code, 0)
            self.assertTrue(result.preserved)
            again = api.resume(result.bottle_id, prompt="hi again", environ=env, home=self.home)
        self.assertEqual(again.bottle_id, result.bottle_id)
        self.assertTrue(again.preserved)

    def test_typed_errors(self) -> None:
        with self.assertRaises(ManifestError):
            api.start("no-such-agent", prompt="x", home=self.home, environ={})
        with self.assertRaises(BotBottleError):
            api.resume("abcdef12", prompt="x", home=self.home, environ={})
        with self.assertRaises(BotBottleError):
            api.stop("abcdef12")
        with self.assertRaises(BotBottleError):
            api.start("tester", prompt="x", home=self.home, environ={})  # the provider credential is missing


if __name__ == "__main__":
    unittest.main()
