"""A bottle restarted by an approved capability change (``lifecycle.run_bottle`` on a fake host).

The agent's run is answered by the fake: the first time it plays the apply step (the restart
marker and the approved packages recorded, then the agent killed as ``docker stop`` would); the
second time it exits 0. Every host command either launch runs is recorded, so the snapshot, the
rebuild with the packages and the relaunch from that image can be inspected.
"""

from __future__ import annotations

import subprocess
import tempfile
import unittest
from pathlib import Path
from typing import Any
from unittest import mock

from bot_bottle import lifecycle, proc
from bot_bottle.backend import registry
from bot_bottle.backend.docker.launch import LaunchOptions
from bot_bottle.backend.docker.names import BottleNames
from bot_bottle.errors import BotBottleError
from bot_bottle.manifest import load
from bot_bottle.plan import resolve
from bot_bottle.state import Metadata, StateDir
from tests.fixtures import ManifestHome
from tests.unit.test_smolmachines_fakehost import HOST_ENVIRON, LITERAL, SECRET_PROMPTED, FakeHost

COMMAND = ["bb-probe-command", "--once"]
WHY = "capability change approved (capability-1): ripgrep"


class AgentHost(FakeHost):
    """A fake host whose agent runs are scripted: ``answers`` in order, one per agent run."""

    def __init__(self, answers: list[Any]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.agent_runs: list[list[str]] = []
        self.state: StateDir | None = None

    @staticmethod
    def is_agent_run(argv: list[str], kwargs: dict[str, Any]) -> bool:
        # run_bottle's own call: the agent CLI (or the command) with the terminal's stdin or none.
        return (("bb-probe-command" in argv or "claude" in argv)
                and "stdin" in kwargs and kwargs["stdin"] in (None, subprocess.DEVNULL))

    def spawn(self, argv: list[str], stdin: Any) -> FakeProcess:
        """``lifecycle._spawn``: the agent's host process."""
        argv = [str(a) for a in argv]
        assert self.is_agent_run(argv, {"stdin": stdin}), argv
        self.agent_runs.append(argv)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            answer = answer(self)
        return FakeProcess(answer)


HANG = None  # an answer: the process never ends by itself (a gVisor exec client)


class FakeProcess:
    def __init__(self, code: int | None) -> None:
        self.code = code
        self.signals: list[str] = []

    def wait(self, timeout: float | None = None) -> int:
        if self.code is None:
            if timeout is None:
                raise AssertionError("waited forever on a hung process")
            raise subprocess.TimeoutExpired("agent", timeout)
        return self.code

    def terminate(self) -> None:
        self.signals.append("TERM")
        self.code = -15

    def kill(self) -> None:
        self.signals.append("KILL")
        self.code = -9


def approve_and_stop(host: AgentHost) -> int:
    """What the apply step does to a running Docker bottle: packages recorded, marker, stop."""
    assert host.state is not None
    host.state.record_capability(("ripgrep",))
    host.state.request_restart(WHY)
    return 137  # the agent container was stopped under it


class Base(unittest.TestCase):
    backend = "docker"

    def setUp(self) -> None:
        mh = ManifestHome.for_test(self)
        mh.bottle("dev", {"env": {"LIT": LITERAL, "ASKED": "?Your token", "FROM_HOST": "${HOST_TOKEN_SRC}"},
                          "egress": {"routes": ["example.com"]}})
        mh.agent("coder", {"bottle": "dev"}, body="You are careful.\n")
        self.manifest = load("coder", mh.layout)
        self.plan = resolve(self.manifest, backend=self.backend,
                            runtime="libkrun" if self.backend == "smolmachines" else "runc", environ=HOST_ENVIRON)
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.state_root = Path(tmp.name) / "state"
        self.progress: list[str] = []
        self.launched: list[tuple[str, bool]] = []  # (bottle id, resumed)

    def run_bottle(self, host: AgentHost, **kwargs: Any) -> lifecycle.RunResult:
        def on_launched(bottle: Any, launcher: Any) -> None:
            host.state = launcher.state
            self.launched.append((launcher.state.id, launcher.inner.options.resume
                                  if hasattr(launcher, "inner") else launcher.options.resume))

        with host.installed(), mock.patch.object(lifecycle, "_spawn", host.spawn):
            return lifecycle.run_bottle(
                self.manifest, self.plan, state_root=self.state_root, environ=HOST_ENVIRON,
                prompt_fn=lambda entry: SECRET_PROMPTED, tty=False, options=LaunchOptions(),
                progress=self.progress.append, on_launched=on_launched, **kwargs)

    def builds(self, host: FakeHost) -> list[tuple[list[str], str]]:
        return [(c.argv[1:], c.input or "") for c in host.calls
                if Path(c.argv[0]).name == "docker" and c.argv[1:2] == ["build"]]

    def agent_creates(self, host: FakeHost) -> list[list[str]]:
        return [c for c in host.docker_calls() if c[0] == "create" and "--env-file" in c]


class DockerRestart(Base):
    def test_a_requested_restart_relaunches_the_same_bottle_from_the_rebuilt_snapshot(self) -> None:
        host = AgentHost([approve_and_stop, 0])
        result = self.run_bottle(host, command=COMMAND)
        (first, _), (second, resumed) = self.launched
        self.assertEqual(first, second, "the same bottle id after the restart")
        self.assertTrue(resumed, "relaunched as a resume: the snapshot holds the workspace")
        self.assertEqual(result.bottle_id, first)
        self.assertEqual((result.exit_code, result.restarts), (0, 1))
        self.assertEqual(len(host.agent_runs), 2, "the command ran again after the restart")
        self.assertEqual(host.agent_runs[0][-2:], COMMAND)
        self.assertEqual(host.agent_runs[1][-2:], COMMAND, "the same command, unchanged")
        ref = f"bot-bottle/snapshot:{first}"
        verbs = [c[0] for c in host.docker_calls()]
        commit = verbs.index("commit")
        self.assertLess(commit, verbs.index("build"), "the exit snapshot first, then the packages on top")
        (fetch_argv, fetch), (build_argv, dockerfile) = self.builds(host)
        self.assertIn(f"FROM {ref}", fetch)
        self.assertIn("--download-only ripgrep", fetch, "downloaded only where there is a network")
        self.assertIn(f"FROM {ref}", dockerfile)
        self.assertIn("apt-get install -y --no-install-recommends", dockerfile)
        self.assertIn(ref, build_argv)
        self.assertEqual(build_argv[build_argv.index("--network") + 1], "none", "installed with no network")
        for stage in (fetch, dockerfile):
            # Nothing of the snapshot's environment: its HOME is the agent's (a .dpkg.cfg there
            # names hooks dpkg runs as root).
            self.assertIn("RUN env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root ", stage)
        creates = self.agent_creates(host)
        self.assertEqual(len(creates), 2, "two launches of the agent container")
        self.assertNotIn(ref, creates[0])
        self.assertIn(ref, creates[1], "the second launch starts from the rebuilt snapshot")
        self.assertTrue(any("restarting bottle" in p and WHY in p for p in self.progress),
                        f"a progress line says why: {self.progress}")
        state = StateDir(self.state_root, first)
        self.assertFalse(state.path.exists(), "a resumed run that ends 0 leaves nothing, as resume does")

    def test_an_agent_process_that_outlives_its_stopped_container_is_ended(self) -> None:
        def approve_and_hang(h: AgentHost) -> None:
            approve_and_stop(h)
            return HANG

        host = AgentHost([approve_and_hang, 0])
        with mock.patch.object(lifecycle, "RESTART_EXIT_GRACE_S", 0.2):
            result = self.run_bottle(host, command=COMMAND)
        self.assertEqual((result.exit_code, result.restarts), (0, 1), "restarted instead of hanging")
        self.assertEqual(len(host.agent_runs), 2)

    def test_headless_agent_is_asked_to_continue_the_same_task(self) -> None:
        host = AgentHost([approve_and_stop, 0])
        result = self.run_bottle(host, headless_prompt="fix the flaky test")
        self.assertEqual(result.restarts, 1)
        first, second = host.agent_runs
        self.assertIn("fix the flaky test", first)
        self.assertFalse(any("restarted on a new image" in a for a in first))
        (prompt,) = [a for a in second if "fix the flaky test" in a]
        self.assertIn("restarted on a new image", prompt)
        self.assertIn(WHY, prompt)
        self.assertTrue(prompt.rstrip().endswith("fix the flaky test"), "the original task, unchanged, last")

    def test_packages_are_added_with_the_test_build_hook(self) -> None:
        build = registry.CapabilityBuild(network="bb-test-repo-net", apt_source="deb [trusted=yes] http://repo:8000/ ./")
        host = AgentHost([approve_and_stop, 0])
        self.run_bottle(host, command=COMMAND, capability_build=build)
        (argv, dockerfile), (install_argv, _) = self.builds(host)
        self.assertEqual(argv[argv.index("--network") + 1], "bb-test-repo-net")
        self.assertIn("deb [trusted=yes] http://repo:8000/ ./", dockerfile)
        self.assertIn("Dir::Etc::SourceParts=/nonexistent", dockerfile, "the image's own sources are not read")
        self.assertEqual(install_argv[install_argv.index("--network") + 1], "none")

    def test_without_a_restart_request_a_stopped_agent_is_preserved_not_relaunched(self) -> None:
        host = AgentHost([137])
        result = self.run_bottle(host, command=COMMAND)
        self.assertEqual((result.exit_code, result.restarts, result.preserved), (137, 0, True))
        self.assertEqual(len(self.launched), 1)
        self.assertEqual(result.preserve_reason, "agent exited with code 137")

    def test_a_stopped_bottle_whose_agent_reports_0_is_preserved(self) -> None:
        # A gVisor exec client can report 0 when its container is stopped under it.
        def stopped_under_it(h: AgentHost) -> int:
            h.containers_stopped = True
            return 0

        host = AgentHost([stopped_under_it])
        result = self.run_bottle(host, command=COMMAND)
        self.assertEqual((result.exit_code, result.preserved), (lifecycle.STOPPED_EXIT, True))
        self.assertEqual(result.preserve_reason, "the bottle was stopped before its agent ended")

    def test_an_agent_that_ends_0_in_a_running_bottle_is_done(self) -> None:
        host = AgentHost([0])
        result = self.run_bottle(host, command=COMMAND)
        self.assertEqual((result.exit_code, result.preserved), (0, False))

    def test_ctrl_c_is_never_turned_into_a_restart(self) -> None:
        def approve_then_interrupt(h: AgentHost) -> int:
            approve_and_stop(h)
            raise KeyboardInterrupt

        host = AgentHost([approve_then_interrupt])
        result = self.run_bottle(host, command=COMMAND)
        self.assertEqual((result.exit_code, result.restarts, result.preserved), (130, 0, True))
        self.assertEqual(len(self.launched), 1)
        state = StateDir(self.state_root, result.bottle_id)
        self.assertIsNone(state.restart_request(), "the marker does not outlive the run it was for")
        self.assertIn("ripgrep", self.builds(host)[0][1], "the approved packages are still kept for resume")

    def test_a_failed_snapshot_keeps_the_bottle_for_resume_instead_of_restarting(self) -> None:
        host = AgentHost([approve_and_stop])
        host.fail_when(lambda argv: argv[1:2] == ["commit"], stderr="no space left")
        result = self.run_bottle(host, command=COMMAND)
        self.assertEqual(result.restarts, 0)
        self.assertTrue(result.preserved)
        self.assertIn("restart failed", result.preserve_reason or "")
        self.assertEqual(len(self.launched), 1)


class SmolmachinesNeverRestarts(Base):
    backend = "smolmachines"

    def test_a_marker_on_a_vm_bottle_is_ignored_and_no_docker_build_runs(self) -> None:
        def marker_only(h: AgentHost) -> int:
            assert h.state is not None
            h.state.request_restart(WHY)
            return 0

        host = AgentHost([marker_only])
        result = self.run_bottle(host)
        self.assertEqual(len(host.agent_runs), 1)
        self.assertEqual((result.restarts, len(self.launched)), (0, 1))
        self.assertEqual(self.builds(host), [], "never a Docker build for a VM bottle")

    def test_the_backend_refuses_to_restart(self) -> None:
        with self.assertRaises(registry.NotSupportedOnBackend) as ctx:
            registry.SmolmachinesBackend().request_restart("abcdef12", state_root=self.state_root, reason=WHY)
        self.assertIn("not supported on smolmachines", str(ctx.exception))


class RequestRestart(unittest.TestCase):
    """``DockerBackend.request_restart``: the marker first, then the agent container stopped."""

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name)
        self.state = StateDir(self.root, "abcdef12")
        self.state.create()
        self.backend = registry.DockerBackend()
        self.backend.restart_grace_s = 0

    def write(self, owner: str | None) -> None:
        self.state.write(Metadata(id="abcdef12", agent="coder", bottle="dev", backend="docker", owner=owner))

    def test_marker_then_stop(self) -> None:
        self.write(proc.identity())
        seen: list[tuple[list[str], str | None]] = []
        host = FakeHost()

        def record(argv: list[str], **kwargs: Any) -> Any:
            seen.append(([str(a) for a in argv], self.state.restart_request()))
            return host(argv, **kwargs)

        with host.installed(), mock.patch("subprocess.run", record):
            self.backend.request_restart("abcdef12", state_root=self.root, reason=WHY)
        (argv, marker), = seen
        self.assertEqual(argv[1:3], ["stop", "-t"])
        self.assertEqual(argv[-1], BottleNames("abcdef12", "coder").agent_container)
        self.assertEqual(marker, WHY, "the marker is there before the agent ends")

    def test_no_live_owner_no_stop_no_marker(self) -> None:
        self.write("1:not-a-start-time")
        host = FakeHost()
        with host.installed(), self.assertRaises(BotBottleError) as ctx:
            self.backend.request_restart("abcdef12", state_root=self.root, reason=WHY)
        self.assertIn("resume abcdef12", ctx.exception.hint or "")
        self.assertEqual(host.calls, [])
        self.assertIsNone(self.state.restart_request())

    def test_a_failed_stop_takes_the_marker_back(self) -> None:
        self.write(proc.identity())
        host = FakeHost()
        host.fail_when(lambda argv: argv[1:2] == ["stop"], stderr="no such container")
        with host.installed(), self.assertRaises(BotBottleError):
            self.backend.request_restart("abcdef12", state_root=self.root, reason=WHY)
        self.assertIsNone(self.state.restart_request())

    def test_build_hook_is_validated(self) -> None:
        for bad in (registry.CapabilityBuild(apt_source="deb x ./\nRUN evil"), registry.CapabilityBuild(network="a b")):
            with self.subTest(bad=bad), self.assertRaises(BotBottleError):
                registry.CapabilityChange("abcdef12", ("ripgrep",), build=bad).validate()


if __name__ == "__main__":
    unittest.main()
