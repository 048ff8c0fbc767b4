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


if __name__ == "__main__":
    unittest.main()
