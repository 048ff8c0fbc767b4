"""An agent that makes its bottle's snapshot fail (a huge file the engine's disk cannot hold, so
the snapshot is refused) must not make the operator lose its work: the preserved bottle's agent
container is kept, stopped, and the operator is told how to copy the work out."""

from __future__ import annotations

import unittest
from pathlib import Path
from tempfile import TemporaryDirectory
from unittest import mock

from bot_bottle import lifecycle
from bot_bottle.backend.docker import engine, launch, snapshot_room
from bot_bottle.backend.docker.launch import DockerLauncher, LaunchOptions
from bot_bottle.errors import BotBottleError
from tests.unit.test_docker_teardown import FakeEngine
from tests.unit.test_lifecycle_restart import AgentHost, Base

REFUSED = BotBottleError("its snapshot would write 50.0 GiB with 20.0 GiB free on the engine's disk; it was not taken")


class KeptContainerAtTeardown(unittest.TestCase):
    def setUp(self) -> None:
        tmp = TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        plan = mock.Mock(agent="a", bottle="b", cwd=None, label=None, color=None, runtime="runc", agent_folder=None)
        self.launcher = DockerLauncher(plan, LaunchOptions(), Path(tmp.name) / "state")
        self.launcher.state.create()
        names = self.launcher.names
        self.agent, self.sidecar, self.volume = names.agent_container, names.sidecar_container, names.socket_volume
        self.launcher._created = [("volume", self.volume), ("network", "net-1"),
                                  ("container", self.sidecar), ("container", self.agent)]
        self.addCleanup(launch._UNSAVED.discard, self.agent)

    def teardown(self) -> FakeEngine:
        fake = FakeEngine(set())
        with mock.patch.object(engine, "run", fake.run):
            self.launcher.teardown()
        return fake

    def test_a_failed_snapshot_keeps_the_agent_container_stopped(self) -> None:
        launch.note_snapshot(self.agent, saved=False)
        self.launcher.preserve_reason = "agent exited with code 1 (snapshot failed: no room)"
        fake = self.teardown()
        self.assertEqual(self.launcher.state.kept_agent(), self.agent)  # what cleanup reads
        self.assertIn(["stop", "-t", "2", self.agent], fake.calls)
        removed = [call for call in fake.calls if call[0] == "rm"]
        self.assertEqual(len(removed), 1)
        self.assertIn(self.sidecar, removed[0])
        self.assertNotIn(self.agent, removed[0])
        self.assertNotIn("volume rm", fake.verbs(), "the kept container still mounts its socket volume")
        for reason in (self.launcher.preserve_reason, self.launcher.state.preserve_reason):
            self.assertIn(f"docker cp {self.agent}:{launch.WORKDIR} DIR", reason or "")
            self.assertIn("snapshot failed", reason or "")

    def test_a_snapshot_that_was_taken_lets_the_container_go(self) -> None:
        launch.note_snapshot(self.agent, saved=False)
        launch.note_snapshot(self.agent, saved=True)  # a later try that worked
        self.launcher.preserve_reason = "agent exited with code 1"
        fake = self.teardown()
        self.assertIn(self.agent, [ref for call in fake.calls if call[0] == "rm" for ref in call])
        self.assertEqual(self.launcher.preserve_reason, "agent exited with code 1")

    def test_a_bottle_not_preserved_goes_whole(self) -> None:
        launch.note_snapshot(self.agent, saved=False)
        fake = self.teardown()
        self.assertIn(self.agent, [ref for call in fake.calls if call[0] == "rm" for ref in call])
        self.assertNotIn("stop", [call[0] for call in fake.calls])


class ResumeOverAKeptContainer(unittest.TestCase):
    """A resume must not start over the container the teardown kept: its work is in no snapshot."""

    def launcher(self, tmp: str) -> DockerLauncher:
        plan = mock.Mock(agent="a", bottle="b", cwd=None, label=None, color=None, runtime="runc", agent_folder=None)
        return DockerLauncher(plan, LaunchOptions(resume=True, bottle_id="0123abcd"), Path(tmp) / "state")

    def test_refused_before_anything_is_touched_while_the_container_is_there(self) -> None:
        with TemporaryDirectory() as tmp:
            launcher = self.launcher(tmp)
            fake = FakeEngine(set())  # every inspect answers: the container is there
            with mock.patch.object(engine, "run", fake.run), self.assertRaises(BotBottleError) as ctx:
                launcher.launch()
        name = launcher.names.agent_container
        self.assertIn(f"{name} is still there", str(ctx.exception))
        self.assertIn(f"docker cp {name}:{launch.WORKDIR} DIR", ctx.exception.hint or "")
        self.assertEqual(fake.calls, [["container", "inspect", "--format", "{{.Id}}", name]])

    def test_no_container_lets_the_resume_go_on(self) -> None:
        with TemporaryDirectory() as tmp:
            launcher = self.launcher(tmp)
            gone = engine.DockerResult(1, "", "Error: No such container")
            with mock.patch.object(engine, "run", return_value=gone):
                launcher._refuse_over_kept_agent()  # nothing raised


class CleanupKeepsTheContainer(unittest.TestCase):
    """``cleanup`` offers the kept container (and the volume it mounts) to ``--all`` only."""

    def test_a_preserved_bottles_agent_container_and_volume_are_kept(self) -> None:
        from bot_bottle.backend.docker import cleanup
        from tests.unit.test_own_bottles import DEAD, FakeEngine as Inventory, _state, dead

        with TemporaryDirectory() as tmp:
            root = Path(tmp) / "state"
            root.mkdir()
            _state(root, DEAD, dead(), preserved=True).keep_agent(f"bot-bottle-{DEAD}-agent")
            fake = Inventory()
            fake.bottle(DEAD, dead())  # what a teardown that kept the agent (and a leak) left
            with mock.patch.object(cleanup.engine, "run", fake.run):
                inv = cleanup.inventory(root)
        kept = {(r.kind, r.name): why for r, why in inv.kept}
        self.assertIn("holds work no snapshot has", kept[("container", f"bot-bottle-{DEAD}-agent")])
        self.assertIn(("volume", f"bot-bottle-{DEAD}-sock"), kept)
        removed = {(r.kind, r.name) for r in inv.orphans}
        self.assertEqual(removed, {("container", f"bot-bottle-{DEAD}-sidecar"), ("network", f"bot-bottle-{DEAD}-net")})

    def test_a_preserved_bottles_containers_go_when_no_teardown_kept_them(self) -> None:
        # A stopped orphan whose snapshot was taken (``stop``) is preserved too: its containers go.
        from bot_bottle.backend.docker import cleanup
        from tests.unit.test_own_bottles import DEAD, FakeEngine as Inventory, _state, dead

        with TemporaryDirectory() as tmp:
            root = Path(tmp) / "state"
            root.mkdir()
            _state(root, DEAD, dead(), preserved=True)
            fake = Inventory()
            fake.bottle(DEAD, dead())
            with mock.patch.object(cleanup.engine, "run", fake.run):
                inv = cleanup.inventory(root)
        self.assertTrue({("container", f"bot-bottle-{DEAD}-agent"), ("volume", f"bot-bottle-{DEAD}-sock")}
                        <= {(r.kind, r.name) for r in inv.orphans})


class SnapshotOutcomeIsNoted(unittest.TestCase):
    def setUp(self) -> None:
        tmp = TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name)
        self.container = "bot-bottle-0badc0de-agent"
        self.addCleanup(launch._UNSAVED.discard, self.container)
        lock = mock.patch.object(lifecycle, "snapshot_lock_path", return_value=self.root / "snapshot.lock")
        lock.start()
        self.addCleanup(lock.stop)

    def test_a_refused_snapshot_is_noted_unsaved_and_a_taken_one_saved(self) -> None:
        fake = FakeEngine(set())
        with mock.patch.object(engine, "run", fake.run), \
                mock.patch.object(snapshot_room, "check", side_effect=REFUSED):
            with self.assertRaises(BotBottleError):
                lifecycle.snapshot("0badc0de", self.container, self.root)
        self.assertIn(self.container, launch._UNSAVED)
        with mock.patch.object(engine, "run", fake.run), mock.patch.object(snapshot_room, "check"), \
                mock.patch.object(lifecycle, "launch_env_names", return_value=[]):
            lifecycle.snapshot("0badc0de", self.container, self.root)
        self.assertNotIn(self.container, launch._UNSAVED)


class RunWithARefusedSnapshot(Base):
    """The whole run on the fake host: the agent fails, its snapshot is refused for room."""

    def test_the_operator_is_told_the_container_is_kept_and_how_to_copy_the_work_out(self) -> None:
        host = AgentHost([3])
        with mock.patch.object(snapshot_room, "check", side_effect=REFUSED):
            result = self.run_bottle(host, command=["bb-probe-command"])
        agent = f"bot-bottle-{result.bottle_id}-agent"
        self.addCleanup(lambda: getattr(launch, "_UNSAVED", set()).discard(agent))
        self.assertTrue(result.preserved)
        self.assertIn("snapshot failed", result.preserve_reason or "")
        self.assertIn(f"docker cp {agent}:{launch.WORKDIR} DIR", result.preserve_reason or "")
        calls = host.docker_calls()
        self.assertIn(["stop", "-t", "2", agent], [call[:4] for call in calls])
        self.assertFalse([call for call in calls if call[0] == "rm" and agent in call], "the agent's container went")


if __name__ == "__main__":
    unittest.main()
