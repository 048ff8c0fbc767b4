"""``resume`` of a preserved Docker bottle whose snapshot image was removed outside bot-bottle
(`docker rmi`, `docker image prune -a`, often run to free space around an upgrade): one clear
error naming the image and what is left to do, before any secret is asked for or anything is
created, and the bottle's state left as it was."""

from __future__ import annotations

import unittest
from typing import Any
from unittest import mock

from bot_bottle import api, images, lifecycle
from bot_bottle.state import Metadata, StateDir
from tests.fixtures import SIMPLE_BOTTLE, ManifestTestCase

BOTTLE_ID = "abcdef34"
SNAPSHOT = f"bot-bottle/snapshot:{BOTTLE_ID}"


class ResumeWithoutItsSnapshot(ManifestTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        self.mh.agent("r", {"bottle": "dev"})
        self.state = StateDir(self.mh.home_dir / "state", BOTTLE_ID)
        self.state.create()
        self.launched: list[Any] = []

    def preserve(self, *, backend: str = "docker", snapshot: str | None = SNAPSHOT) -> None:
        self.state.write(Metadata(id=BOTTLE_ID, agent="r", bottle="dev", backend=backend,
                                  image="bot-bottle/agent-claude:old", snapshot=snapshot))
        self.state.preserve("agent exited with code 1")

    def resume(self, *, exists: bool) -> Any:
        def fake_run_once(backend: Any, plan: Any, opts: Any, **kwargs: Any) -> Any:
            self.launched.append(opts)
            return lifecycle._Run(BOTTLE_ID, 0, None)

        with mock.patch.object(api, "running", return_value=[]), \
                mock.patch.object(images, "image_exists", return_value=exists) as probe, \
                mock.patch.object(lifecycle, "_run_once", side_effect=fake_run_once):
            result = self.mh.run_cli("resume", BOTTLE_ID, "--headless", "--prompt", "go on",
                                     env={"ANTHROPIC_API_KEY": "test-placeholder"})
        self.probed = [call.args[0] for call in probe.call_args_list]
        return result

    def test_a_removed_snapshot_is_one_clear_error_and_nothing_is_launched(self) -> None:
        self.preserve()
        result = self.resume(exists=False)
        self.assertNotEqual(result.code, 0)
        self.assertEqual(self.launched, [], "the resume went on to launch without its snapshot")
        self.assertIn(f"bottle {BOTTLE_ID} cannot be resumed: its snapshot image {SNAPSHOT} is gone", result.stderr)
        self.assertIn(f"remove {self.state.path} to drop the bottle", result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertNotIn("Error response from daemon", result.stderr)
        # The bottle is left as it was: still preserved, with its metadata.
        self.assertTrue(self.state.preserved)
        self.assertEqual(self.state.read().snapshot, SNAPSHOT)

    def test_a_present_snapshot_resumes_from_it(self) -> None:
        self.preserve()
        result = self.resume(exists=True)
        self.assertEqual(result.code, 0, result.stderr)
        self.assertEqual(self.probed, [SNAPSHOT])
        self.assertEqual([opts.image_override for opts in self.launched], [SNAPSHOT])

    def test_a_bottle_preserved_without_a_snapshot_starts_from_its_image_unchecked(self) -> None:
        self.preserve(snapshot=None)
        result = self.resume(exists=False)
        self.assertEqual(result.code, 0, result.stderr)
        self.assertEqual(self.probed, [])
        self.assertEqual(len(self.launched), 1)

    def test_the_error_names_the_image_and_the_folder(self) -> None:
        error = lifecycle.missing_snapshot_error(BOTTLE_ID, SNAPSHOT, self.state.path)
        self.assertIn(SNAPSHOT, str(error))
        self.assertIn(str(self.state.path), error.hint or "")


if __name__ == "__main__":
    unittest.main()
