"""Teardown of a Docker bottle when the engine stops answering: every step still runs, and what
was left is named (with how to remove it) instead of a traceback half way through."""

from __future__ import annotations

import unittest
from pathlib import Path
from tempfile import TemporaryDirectory
from unittest import mock

from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.launch import DockerLauncher, LaunchOptions
from bot_bottle.errors import BotBottleError, teardown_after_failure


class FakeEngine:
    """Records each `docker` call; the verbs in ``hang`` time out as an engine stuck on them would."""

    def __init__(self, hang: set[str], images: str = "") -> None:
        self.hang = hang
        self.images = images  # what `docker images -q` lists
        self.calls: list[list[str]] = []

    def run(self, args: list[str], **_: object) -> engine.DockerResult:
        self.calls.append(list(args))
        if args[0] in self.hang:
            raise engine.DockerError(f"`docker {args[0]}` did not answer within 120 s")
        return engine.DockerResult(0, self.images if args[0] == "images" else "", "")

    def verbs(self) -> list[str]:
        return [" ".join(call[:2]) for call in self.calls]


class TeardownWithAStuckEngine(unittest.TestCase):
    def setUp(self) -> None:
        tmp = TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        plan = mock.Mock(agent="a", bottle="b", cwd=None, label=None, color=None, runtime="runc", agent_folder=None)
        self.launcher = DockerLauncher(plan, LaunchOptions(), Path(tmp.name) / "state")
        self.launcher.state.create()
        names = self.launcher.names
        self.launcher._created = [("volume", names.socket_volume), ("network", "net-1"),
                                  ("container", names.sidecar_container), ("container", names.agent_container)]

    def teardown(self, hang: set[str], images: str = "") -> tuple[FakeEngine, BotBottleError | None]:
        fake = FakeEngine(hang, images)
        with mock.patch.object(engine, "run", fake.run):
            try:
                self.launcher.teardown()
            except BotBottleError as exc:
                return fake, exc
        return fake, None

    def test_a_container_removal_that_does_not_answer_leaves_the_rest_removed_and_says_what_is_left(self) -> None:
        fake, error = self.teardown({"rm"})
        self.assertEqual(fake.verbs(), ["rm -f", "network rm", "volume rm", "images -a"])
        self.assertIsNotNone(error)
        assert error is not None
        self.assertIn(self.launcher.names.agent_container, str(error))
        self.assertIn("did not answer", str(error))
        self.assertIn("bot-bottle cleanup", error.hint or "")
        self.assertFalse(self.launcher.state.path.exists(), "the state folder goes as it would have")

    def test_an_answering_engine_tears_down_silently(self) -> None:
        fake, error = self.teardown(set())
        self.assertIsNone(error)
        self.assertEqual(fake.verbs(), ["rm -f", "network rm", "volume rm", "images -a"])

    def test_every_image_left_with_the_bottles_id_goes_with_it(self) -> None:
        # An earlier snapshot a container still ran on when the tag moved on holds what the agent
        # wrote then: it goes when the bottle does.
        fake, error = self.teardown(set(), images="sha256:b\nsha256:a\nsha256:b\n")
        self.assertIsNone(error)
        listing = fake.calls[-2]
        self.assertIn(f"label=bot-bottle.id={self.launcher.names.id}", listing)
        self.assertEqual(fake.calls[-1], ["rmi", "-f", "sha256:a", "sha256:b"])

    def test_a_preserved_bottle_keeps_its_images(self) -> None:
        self.launcher.preserve_reason = "agent exited with code 1"
        fake, _ = self.teardown(set(), images="sha256:a\n")
        self.assertNotIn("images -a", fake.verbs())
        self.assertFalse([c for c in fake.calls if c[0] == "rmi"])

    def test_every_step_that_did_not_answer_is_named(self) -> None:
        _, error = self.teardown({"rm", "network", "volume"})
        assert error is not None
        for what in ("containers", "network net-1", f"volume {self.launcher.names.socket_volume}"):
            self.assertIn(what, str(error))

    def test_a_preserved_bottle_keeps_its_state_when_the_engine_is_stuck(self) -> None:
        self.launcher.preserve_reason = "agent exited with code 1"
        fake, error = self.teardown({"cp", "rm"})
        self.assertIsNotNone(error)
        self.assertIn("egress log was not saved", str(error))
        self.assertEqual(self.launcher.state.preserve_reason, "agent exited with code 1")
        self.assertIn("volume rm", fake.verbs())


class TeardownAfterAFailedLaunch(unittest.TestCase):
    def left(self) -> None:
        raise BotBottleError("bottle x was not wholly torn down: network n", hint="run `bot-bottle cleanup`")

    def test_the_launchs_own_error_stays_first_and_gains_the_leftovers(self) -> None:
        failure = BotBottleError("the sidecar did not start", hint="see its log")
        teardown_after_failure(failure, self.left)
        self.assertEqual(str(failure), "the sidecar did not start")
        self.assertIn("see its log", failure.hint or "")
        self.assertIn("network n", failure.hint or "")
        self.assertIn("bot-bottle cleanup", failure.hint or "")

    def test_an_interrupt_reports_the_leftovers(self) -> None:
        interrupt = KeyboardInterrupt()
        with self.assertRaises(BotBottleError) as caught:
            teardown_after_failure(interrupt, self.left)
        self.assertIs(caught.exception.__cause__, interrupt)

    def test_a_clean_teardown_changes_nothing(self) -> None:
        failure = BotBottleError("boom")
        teardown_after_failure(failure, lambda: None)
        self.assertIsNone(failure.hint)


if __name__ == "__main__":
    unittest.main()
