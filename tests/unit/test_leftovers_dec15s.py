"""A bottle stopped while it starts (`bot-bottle stop`, `docker stop` or `docker kill` before its
agent runs): the start says so, and so does `stop`, instead of a bare "exit status 137" on one
side and "stopped" on the other, with nothing kept for the `resume` the user then tries."""

from __future__ import annotations

import io
import os
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.launch import DockerLauncher, LaunchOptions
from bot_bottle.cli import stop as stop_cli
from bot_bottle.errors import BotBottleError
from bot_bottle.state import StateDir

BROKEN_STEP = "could not configure git in the bottle: exit status 137"


class FakeEngine:
    """Answers `docker inspect` of the agent container with ``agent_state`` ("RUNNING EXITCODE",
    or None: no such container); every other call succeeds. Records the calls."""

    def __init__(self, agent_state: str | None) -> None:
        self.agent_state = agent_state
        self.calls: list[list[str]] = []

    def run(self, args: list[str], **_: object) -> engine.DockerResult:
        self.calls.append(list(args))
        if args[0] == "inspect":
            if self.agent_state is None:
                return engine.DockerResult(1, "", "Error: No such object")
            return engine.DockerResult(0, self.agent_state + "\n", "")
        return engine.DockerResult(0, "", "")


class StartStoppedUnderIt(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name) / "state"
        self.root.mkdir()

    def launcher(self, *, resume: bool = False, failure: BaseException | None = None) -> DockerLauncher:
        plan = mock.Mock(agent="a", bottle="b", cwd=None, label=None, color=None, runtime="runc",
                         agent_folder=None, agent_image="img:agent")
        options = LaunchOptions(bottle_id="abcdef12", resume=resume, image_override="img:agent" if resume else None)
        launcher = DockerLauncher(plan, options, self.root)
        if resume:
            launcher.state.create()
            launcher.state.write(launcher._metadata("img:agent"))
            launcher.state.preserve("agent exited with code 1")
        names = launcher.names

        def start_agent(_image: str, needs: object = ()) -> object:
            launcher._created.append(("container", "c0ffee"))
            launcher._created_names["c0ffee"] = names.agent_container
            return mock.Mock()

        def provision(_bottle: object) -> None:
            raise failure if failure is not None else BotBottleError(BROKEN_STEP)

        for name, fn in {
            "_find_api": lambda: None,
            "_create_volume": lambda: launcher._created.append(("volume", names.socket_volume)),
            "_create_network": lambda: launcher._created.append(("network", "net-1")),
            "_check_images": lambda: ("img:sidecar", "img:agent"),
            "_start_sidecar": lambda image, needs=(): None,
            "_start_agent": start_agent,
            "_provision_on_api": provision,
            "_refuse_over_kept_agent": lambda: None,
        }.items():
            setattr(launcher, name, fn)
        return launcher

    def launch(self, launcher: DockerLauncher, agent_state: str | None) -> tuple[BaseException, FakeEngine]:
        fake = FakeEngine(agent_state)
        with mock.patch.object(engine, "run", fake.run), redirect_stderr(io.StringIO()):
            with self.assertRaises(BaseException) as raised:
                launcher.launch()
        return raised.exception, fake

    def test_a_new_bottle_stopped_while_provisioned_says_so_and_that_nothing_is_kept(self) -> None:
        launcher = self.launcher()
        error, fake = self.launch(launcher, "false 137")
        self.assertIsInstance(error, BotBottleError)
        self.assertIn("bottle abcdef12 was stopped while it was starting", str(error))
        self.assertIn("exited (code 137) before its agent ran", str(error))
        self.assertIn(BROKEN_STEP, str(error))  # the step it broke is still named
        self.assertIn("nothing of it is kept", str(error))
        self.assertIn("start it again", error.hint or "")
        self.assertEqual(str(error.__cause__), BROKEN_STEP)
        # The teardown ran as before: the agent container removed, the state folder gone.
        self.assertIn(["rm", "-f", "-v", "c0ffee"], [c[:4] for c in fake.calls if c[0] == "rm"])
        self.assertFalse(launcher.state.path.exists())

    def test_a_resume_stopped_while_starting_says_it_stays_for_resume(self) -> None:
        launcher = self.launcher(resume=True)
        error, _ = self.launch(launcher, "false 137")
        self.assertIn("was stopped while it was starting", str(error))
        self.assertIn("stays as it was for `bot-bottle resume`", str(error))
        self.assertNotIn("nothing of it is kept", str(error))
        self.assertIn("bot-bottle resume abcdef12", error.hint or "")
        self.assertTrue(launcher.state.preserved, "a failed resume keeps the bottle")

    def test_a_failure_while_the_agent_container_runs_is_shown_as_it_was(self) -> None:
        # Benign look-alike: a step that fails on its own, the container still up.
        error, _ = self.launch(self.launcher(), "true 0")
        self.assertEqual(str(error), BROKEN_STEP)
        self.assertIsNone(error.__cause__)

    def test_an_agent_container_already_gone_is_shown_as_it_was(self) -> None:
        error, _ = self.launch(self.launcher(), None)
        self.assertEqual(str(error), BROKEN_STEP)

    def test_an_interrupt_is_not_rewritten_and_the_engine_is_not_asked(self) -> None:
        error, fake = self.launch(self.launcher(failure=KeyboardInterrupt()), "false 137")
        self.assertIsInstance(error, KeyboardInterrupt)
        self.assertNotIn("inspect", [c[0] for c in fake.calls])


class StopWhileStarting(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.home = Path(tmp.name)
        self.root = self.home / ".bot-bottle" / "state"
        self.sdir = StateDir(self.root, "abcdef12")
        self.sdir.create()

    def test_a_bottle_whose_agent_had_not_run_is_said_not_kept(self) -> None:
        self.sdir.remove()  # its start failed and removed it
        message = stop_cli.stopped_message(self.sdir, ran_before=False)
        self.assertIn("while it was still starting", message)
        self.assertIn("nothing of it is kept", message)

    def test_a_bottle_whose_agent_ran_is_just_stopped(self) -> None:
        self.sdir.remove()  # an agent that ended with 0 on SIGTERM: its owner removed the state
        self.assertEqual(stop_cli.stopped_message(self.sdir, ran_before=True), "stopped bottle abcdef12")

    def test_an_agent_started_during_the_stop_or_a_preserved_orphan_is_just_stopped(self) -> None:
        self.sdir.mark_agent_ran()
        self.assertEqual(stop_cli.stopped_message(self.sdir, ran_before=False), "stopped bottle abcdef12")
        other = StateDir(self.root, "12345678")
        other.create()
        other.preserve("stopped after its bot-bottle process was gone")
        self.assertEqual(stop_cli.stopped_message(other, ran_before=False), "stopped bottle 12345678")

    def test_the_cli_reads_the_state_before_and_after_the_stop(self) -> None:
        from bot_bottle import api, cli

        def owner_tears_down(bottle_id: str, **_: object) -> None:
            StateDir(self.root, bottle_id).remove()  # what the starting bottle's own teardown does

        for ran, expected in ((False, "while it was still starting"), (True, "stopped bottle abcdef12\n")):
            with self.subTest(agent_ran=ran):
                if not self.sdir.path.exists():
                    self.sdir.create()
                if ran:
                    self.sdir.mark_agent_ran()
                out = io.StringIO()
                with mock.patch.dict(os.environ, {"HOME": str(self.home), "COLUMNS": "300"}), \
                        mock.patch.object(api, "stop", owner_tears_down), \
                        redirect_stdout(out), redirect_stderr(io.StringIO()):
                    self.assertEqual(cli.main(["stop", "abcdef12"]), 0)
                self.assertIn(expected, out.getvalue())


if __name__ == "__main__":
    unittest.main()


class StopBeforeTheContainersExist(unittest.TestCase):
    """`stop` of a bottle whose start has not made its containers yet used to answer "no running
    bottle" while the start went on to run the agent."""

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.home = Path(tmp.name)
        self.sdir = StateDir(self.home / ".bot-bottle" / "state", "abcdef12")
        self.sdir.create()

    def stop(self, owner: str) -> tuple[int, str]:
        from bot_bottle import api, cli, state

        meta = state.Metadata(id="abcdef12", agent="a", bottle="b", backend="docker", owner=owner)
        self.sdir.write(meta)

        def no_containers(bottle_id: str, **_: object) -> None:
            raise BotBottleError(f"no running bottle {bottle_id}")

        err = io.StringIO()
        with mock.patch.dict(os.environ, {"HOME": str(self.home), "COLUMNS": "300"}), \
                mock.patch.object(api, "stop", no_containers), mock.patch.object(api, "running", lambda *_a: []), \
                redirect_stdout(io.StringIO()), redirect_stderr(err):
            code = cli.main(["stop", "abcdef12"])
        return code, err.getvalue()

    def test_a_bottle_its_live_owner_still_starts_is_said_to_be_starting(self) -> None:
        from bot_bottle import proc

        code, err = self.stop(proc.identity())
        self.assertEqual(code, 1)
        self.assertIn("bottle abcdef12 is still starting", err)
        self.assertIn(f"process {os.getpid()}", err)

    def test_a_bottle_whose_owner_is_gone_keeps_the_plain_answer(self) -> None:
        import subprocess
        import sys

        from bot_bottle import proc

        child = subprocess.Popen([sys.executable, "-c", "pass"])
        gone = proc.identity(child.pid)
        child.wait()
        code, err = self.stop(gone)
        self.assertEqual(code, 1)
        self.assertIn("no running bottle abcdef12", err)
        self.assertNotIn("still starting", err)


class NoAddressRangeLeft(unittest.TestCase):
    """Each start killed with SIGKILL after its network was made leaves that network (an address
    range of the engine's ~30): when they run out, the error must point at `cleanup`, which
    removes them, not only at stopping bottles."""

    def test_the_hint_names_cleanup(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        plan = mock.Mock(agent="a", bottle="b", cwd=None, label=None, color=None, runtime="runc", agent_folder=None)
        launcher = DockerLauncher(plan, LaunchOptions(bottle_id="abcdef12"), Path(tmp.name))

        def refuse(args: list[str], **_: object) -> engine.DockerResult:
            raise engine.DockerError("`docker network` failed", stderr=(
                "Error response from daemon: could not find an available, non-overlapping IPv4 address "
                "pool among the defaults to assign to the network"))

        with mock.patch.object(engine, "run", refuse), self.assertRaises(BotBottleError) as caught:
            launcher._create_network()
        self.assertIn("no address range left", str(caught.exception))
        self.assertIn("`bot-bottle cleanup` removes those that killed bot-bottle processes left",
                      caught.exception.hint or "")
