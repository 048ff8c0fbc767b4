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
        fake, error = self.teardown({"rm", "version"})  # stuck: it answers nothing
        self.assertEqual(fake.verbs(), ["rm -f", "version --format", "network rm", "volume rm", "images -a"])
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
        _, error = self.teardown({"rm", "version", "network", "volume"})
        assert error is not None
        for what in ("containers", "network net-1", f"volume {self.launcher.names.socket_volume}"):
            self.assertIn(what, str(error))

    def test_a_preserved_bottle_keeps_its_state_when_the_engine_is_stuck(self) -> None:
        self.launcher.preserve_reason = "agent exited with code 1"
        fake, error = self.teardown({"cp", "rm", "version"})
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


class NamesTakenByAnotherLaunch(unittest.TestCase):
    """A launch whose create finds the name taken (the same bottle id launched by another
    process) must not remove that other launch's object by name in its rollback; what it did
    create is removed by id, so a second network of the same name (Docker allows one) is never
    taken for its own."""

    def setUp(self) -> None:
        tmp = TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        plan = mock.Mock(agent="a", bottle="b", cwd=None, label=None, color=None, runtime="runc", agent_folder=None)
        self.launcher = DockerLauncher(plan, LaunchOptions(bottle_id="abcdef12"), Path(tmp.name) / "state")
        self.launcher.state.create()
        self.calls: list[list[str]] = []

    def engine(self, args: list[str], **_: object) -> engine.DockerResult:
        self.calls.append(list(args))
        if args[:2] == ["network", "create"]:
            return engine.DockerResult(0, "4e7c0ffee0net\n", "")
        if args[0] == "create" and "bot-bottle-abcdef12-agent" in args:
            stderr = ('Error response from daemon: Conflict. The container name "/bot-bottle-abcdef12-agent" '
                      'is already in use by container "d9c5a3e8". You have to remove (or rename) that container.')
            raise engine.DockerError(f"`docker create` failed: {stderr}", stderr=stderr)
        if args[0] == "create":
            return engine.DockerResult(0, "5ca1ab1e0sidecar\n", "")
        return engine.DockerResult(0, "", "")

    def test_a_create_refused_for_a_taken_name_leaves_that_object_alone(self) -> None:
        names = self.launcher.names
        with mock.patch.object(engine, "run", self.engine):
            self.launcher._create("network", ["network", "create", names.network], names.network)
            self.launcher._create("container", ["create", "--name", names.sidecar_container], names.sidecar_container)
            with self.assertRaises(engine.DockerError):
                self.launcher._create("container", ["create", "--name", names.agent_container], names.agent_container)
            self.launcher.teardown(launch_failed=True)
        removals = [c for c in self.calls if c[0] == "rm" or c[:2] == ["network", "rm"]]
        # By id, as created (a message about them still names them: see the next test).
        self.assertEqual(removals, [["rm", "-f", "-v", "5ca1ab1e0sidecar"], ["network", "rm", "4e7c0ffee0net"]])
        self.assertFalse(any(names.agent_container in c for c in removals), "removed the other launch's container")

    def test_what_a_stuck_engine_left_is_named_not_given_by_id(self) -> None:
        names = self.launcher.names
        with mock.patch.object(engine, "run", self.engine):
            self.launcher._create("network", ["network", "create", names.network], names.network)
            self.launcher._create("container", ["create", "--name", names.sidecar_container], names.sidecar_container)
        fake = FakeEngine({"rm", "version", "network"})
        with mock.patch.object(engine, "run", fake.run), self.assertRaises(BotBottleError) as caught:
            self.launcher.teardown(launch_failed=True)
        self.assertIn(f"containers {names.sidecar_container}", str(caught.exception))
        self.assertIn(f"network {names.network}", str(caught.exception))
        self.assertNotIn("5ca1ab1e0sidecar", str(caught.exception))

    def test_a_create_that_failed_otherwise_is_still_rolled_back_by_name(self) -> None:
        # A timeout may have created it: only a name another object holds is left alone.
        names = self.launcher.names

        def stuck(args: list[str], **_: object) -> engine.DockerResult:
            self.calls.append(list(args))
            if args[0] == "create":
                raise engine.DockerError("`docker create` did not answer within 120 s")
            return engine.DockerResult(0, "", "")

        with mock.patch.object(engine, "run", stuck):
            with self.assertRaises(engine.DockerError):
                self.launcher._create("container", ["create", "--name", names.agent_container], names.agent_container)
            self.launcher.teardown(launch_failed=True)
        self.assertIn(["rm", "-f", "-v", names.agent_container], self.calls)


class NoAddressRangeLeft(unittest.TestCase):
    """About 30 bottles at once use up Docker's default address pools (a network each): the
    launch says so and how to make room, instead of the engine's words alone."""

    def test_the_engines_exhausted_pools_are_a_clear_error_with_what_to_do(self) -> None:
        tmp = TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        plan = mock.Mock(agent="a", bottle="b", cwd=None, label=None, color=None, runtime="runc", agent_folder=None)
        launcher = DockerLauncher(plan, LaunchOptions(bottle_id="abcdef12"), Path(tmp.name) / "state")
        stderr = "Error response from daemon: all predefined address pools have been fully subnetted"

        def full(args: list[str], **_: object) -> engine.DockerResult:
            raise engine.DockerError(f"`docker network` failed: {stderr}", stderr=stderr)

        names = launcher.names
        with mock.patch.object(engine, "run", full), self.assertRaises(BotBottleError) as caught:
            launcher._create("network", ["network", "create", names.network], names.network)
        self.assertIn("no network for bottle abcdef12", str(caught.exception))
        self.assertIn("fully subnetted", str(caught.exception))
        self.assertIn("default-address-pools", caught.exception.hint or "")
        self.assertNotIsInstance(caught.exception, engine.DockerError)


if __name__ == "__main__":
    unittest.main()
