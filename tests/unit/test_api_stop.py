"""``api.stop`` ends a bottle on the backend it runs on, never with another backend's tool."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle import api
from bot_bottle.backend.docker.running import RunningBottle
from bot_bottle.backend.smolmachines.names import machine_name
from bot_bottle.errors import BotBottleError
from bot_bottle.state import StateDir


def _bottle(backend: str) -> RunningBottle:
    return RunningBottle(id="aaaaaaaa", agent="dev", label=None, status="running",
                         started_at="", owner_alive=True, image="img", backend=backend)


class StopDispatchTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.home = tmp.name
        # A bottle of this home: its state folder is here (``api.stop`` refuses any other).
        (Path(self.home) / ".bot-bottle" / "state" / "aaaaaaaa").mkdir(parents=True)

    def test_docker_bottle_stops_its_agent_container(self) -> None:
        with mock.patch.object(api, "running", return_value=[_bottle("docker")]), \
                mock.patch.object(api.engine, "run") as docker_run, \
                mock.patch("bot_bottle.backend.smolmachines.smolvm.machine_stop") as vm_stop:
            api.stop("aaaaaaaa", home=self.home)
        self.assertEqual(docker_run.call_args.args[0][:1], ["stop"])
        self.assertIn("bot-bottle-aaaaaaaa-agent", docker_run.call_args.args[0])
        vm_stop.assert_not_called()

    def test_vm_bottle_stops_its_machine_and_makes_no_docker_stop(self) -> None:
        with mock.patch.object(api, "running", return_value=[_bottle("smolmachines")]), \
                mock.patch.object(api.engine, "run") as docker_run, \
                mock.patch("bot_bottle.backend.smolmachines.smolvm.machine_stop") as vm_stop:
            api.stop("aaaaaaaa", home=self.home)
        vm_stop.assert_called_once_with(machine_name("aaaaaaaa"))
        docker_run.assert_not_called()

    def test_a_bottle_of_this_home_that_does_not_run_is_a_clear_error(self) -> None:
        (Path(self.home) / ".bot-bottle" / "state" / "ffffffff").mkdir()
        with mock.patch.object(api, "running", return_value=[]):
            with self.assertRaises(BotBottleError) as ctx:
                api.stop("ffffffff", home=self.home)
        self.assertIn("no running bottle ffffffff", str(ctx.exception))

    def test_a_name_that_is_no_bottle_id_is_said_so_before_the_engine_is_asked(self) -> None:
        with mock.patch.object(api, "running", side_effect=AssertionError("the engine was asked")):
            with self.assertRaises(BotBottleError) as ctx:
                api.stop("nope", home=self.home)
        self.assertIn("'nope' is not a bottle id", str(ctx.exception))


class OrphanStopTest(unittest.TestCase):
    """A bottle whose launching process is gone: ``stop`` keeps its work as its owner would have."""

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.home = tmp.name
        self.state_root = Path(self.home) / ".bot-bottle" / "state"
        (self.state_root / "aaaaaaaa").mkdir(parents=True)
        self.order: list[str] = []
        self.backend = mock.Mock()
        self.backend.commit.side_effect = lambda *a, **k: self.order.append("commit")
        self.backend.remove.side_effect = lambda *a, **k: self.order.append("remove")
        self.backend.inventory.return_value.orphans = []

    def stop(self, backend: str) -> None:
        orphan = RunningBottle(id="aaaaaaaa", agent="dev", label=None, status="running", started_at="",
                               owner_alive=False, image="img", backend=backend)
        with mock.patch.object(api, "running", return_value=[orphan]), \
                mock.patch.object(api.engine, "run", side_effect=lambda *a, **k: self.order.append("stop")), \
                mock.patch("bot_bottle.backend.smolmachines.smolvm.machine_stop"), \
                mock.patch("bot_bottle.backend.registry.for_name", return_value=self.backend):
            api.stop("aaaaaaaa", home=self.home)

    def test_a_docker_orphan_is_snapshotted_and_preserved_before_it_is_removed(self) -> None:
        self.stop("docker")
        self.assertEqual(self.order, ["stop", "commit", "remove"])
        state = StateDir(self.state_root, "aaaaaaaa")
        self.assertTrue(state.preserved)
        self.assertEqual(state.preserve_reason, api.ORPHAN_STOPPED)

    def test_when_its_work_cannot_be_saved_nothing_is_removed(self) -> None:
        self.backend.commit.side_effect = BotBottleError("the engine's disk is full")
        with self.assertRaises(BotBottleError) as ctx:
            self.stop("docker")
        self.assertIn("its work could not be saved (the engine's disk is full); nothing was removed", str(ctx.exception))
        self.backend.remove.assert_not_called()
        self.assertFalse(StateDir(self.state_root, "aaaaaaaa").preserved)

    def test_a_micro_vm_orphan_is_removed_as_before(self) -> None:
        self.stop("smolmachines")
        self.backend.commit.assert_not_called()
        self.assertEqual(self.order, ["remove"])


if __name__ == "__main__":
    unittest.main()
