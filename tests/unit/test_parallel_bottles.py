"""Several bottles from one home, on fakes (no engine). Each defect here was found running
several bottles through the real CLI:

- two `resume`s of one bottle at once both failed and left two networks named alike: its
  objects are named by its id, and the second launch's rollback removed the first's by name.
  One process runs a bottle at a time now (the state folder's run lock, ``StateDir.hold_run``),
  for the whole run, restarts included; a bottle still starting elsewhere is not resumed;
- a start named its bottle only at its end (and only when it was preserved): the id to `stop`,
  `commit` or read the `logs` of is now its first progress line;
- starts that wait for an image another start builds said nothing for as long as it took;
- snapshots of bottles stopped together each passed the disk-room check, side by side;
- one `stop` of several bottles read as an agent failure in some and as a stop in others.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Any
from unittest import mock

from bot_bottle import lifecycle, proc
from bot_bottle.backend.docker import engine, snapshot_room
from bot_bottle.backend.docker.launch import LaunchOptions
from bot_bottle.errors import BotBottleError
from bot_bottle.state import RUN_LOCK, Metadata, StateDir
from tests.unit.test_lifecycle_restart import AgentHost, Base, approve_and_stop
from tests.unit.test_smolmachines_fakehost import HOST_ENVIRON, SECRET_PROMPTED

BOTTLE_ID = "abcdef12"


class RunLockOfAStateFolder(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.sdir = StateDir(Path(tmp.name), BOTTLE_ID)
        self.sdir.create()
        self.sdir.write(Metadata(id=BOTTLE_ID, agent="coder", bottle="dev", backend="docker"))

    def test_a_second_holder_is_refused_with_a_clear_error_until_the_first_lets_go(self) -> None:
        first = self.sdir.hold_run()
        self.addCleanup(first.release)
        with self.assertRaises(BotBottleError) as caught:
            StateDir(self.sdir.root, BOTTLE_ID).hold_run()
        self.assertIn(f"bottle {BOTTLE_ID} is already running from another bot-bottle process", str(caught.exception))
        self.assertIn(f"process {os.getpid()}", str(caught.exception))
        self.assertIn(f"bot-bottle stop {BOTTLE_ID}", caught.exception.hint or "")
        first.release()
        again = self.sdir.hold_run()
        self.assertTrue(again.held)
        again.release()
        self.assertFalse(again.held)
        again.release()  # twice is harmless

    def test_another_thread_is_refused_too(self) -> None:
        # An orchestrator resuming from threads of one process: each take is its own descriptor.
        first = self.sdir.hold_run()
        self.addCleanup(first.release)
        errors: list[BaseException] = []

        def other() -> None:
            try:
                self.sdir.hold_run().release()
            except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
                errors.append(exc)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        self.assertEqual(len(errors), 1)
        self.assertIsInstance(errors[0], BotBottleError)

    def test_the_lock_file_is_private_and_holds_no_more_than_a_pid(self) -> None:
        lock = self.sdir.hold_run()
        self.addCleanup(lock.release)
        path = self.sdir.path / RUN_LOCK
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        self.assertEqual(path.read_text(), f"process {os.getpid()}\n")

    def test_no_state_folder_is_the_usual_no_saved_bottle_error(self) -> None:
        with self.assertRaises(BotBottleError) as caught:
            StateDir(self.sdir.root, "0123abcd").hold_run()
        self.assertIn("no saved bottle '0123abcd'", str(caught.exception))


class OnTheFakeHost(Base):
    """``lifecycle.run_bottle`` on the fake host, starting new bottles or resuming a saved one."""

    prompted: list[str]

    def setUp(self) -> None:
        super().setUp()
        self.prompted = []

    def preserved_bottle(self) -> StateDir:
        sdir = StateDir(self.state_root, BOTTLE_ID)
        sdir.create()
        sdir.write(Metadata(id=BOTTLE_ID, agent="coder", bottle="dev", backend="docker", owner="1:1-1-elsewhere",
                            image="bot-bottle/agent-claude:x", snapshot=f"bot-bottle/snapshot:{BOTTLE_ID}"))
        sdir.preserve("agent exited with code 1")
        return sdir

    def prompt(self, entry: Any) -> str:
        self.prompted.append(entry.name)
        return SECRET_PROMPTED

    def resume(self, host: AgentHost) -> Any:
        with host.installed(), mock.patch.object(lifecycle, "_spawn", host.spawn):
            return lifecycle.run_bottle(
                self.manifest, self.plan, state_root=self.state_root, environ=HOST_ENVIRON,
                prompt_fn=self.prompt, tty=False, progress=self.progress.append,
                options=LaunchOptions(bottle_id=BOTTLE_ID, resume=True,
                                      image_override=f"bot-bottle/snapshot:{BOTTLE_ID}"))


class RunBottleHoldsTheLock(OnTheFakeHost):
    def test_a_resume_of_a_bottle_another_process_runs_is_refused_before_anything_is_created(self) -> None:
        sdir = self.preserved_bottle()
        other = sdir.hold_run()  # the first resume, still running
        self.addCleanup(other.release)
        host = AgentHost([0])
        with self.assertRaises(BotBottleError) as caught:
            self.resume(host)
        self.assertIn("already running from another bot-bottle process", str(caught.exception))
        self.assertEqual(host.docker_calls(), [], "the refused resume ran docker commands")
        self.assertEqual(self.prompted, [], "the refused resume asked for a secret first")
        self.assertEqual(sdir.read().owner, "1:1-1-elsewhere", "the refused resume took the bottle's metadata over")
        self.assertTrue(sdir.preserved)

    def test_a_bottle_still_starting_elsewhere_is_not_resumed(self) -> None:
        # A new bottle's state folder exists from the start of its launch, its lock only from
        # the end: its metadata names its live owner and it has no preserve marker yet.
        sdir = self.preserved_bottle()
        sdir.unpreserve()
        meta = sdir.read()
        meta.owner = proc.identity()  # a live process
        sdir.write(meta)
        host = AgentHost([0])
        with self.assertRaises(BotBottleError) as caught:
            self.resume(host)
        self.assertIn(f"bottle {BOTTLE_ID} is still starting in another bot-bottle process", str(caught.exception))
        self.assertEqual(host.docker_calls(), [])
        sdir.hold_run().release()  # the refused resume let go of the lock

    def test_a_killed_start_is_still_resumed_as_before(self) -> None:
        sdir = self.preserved_bottle()
        sdir.unpreserve()  # its owner (another host's identity here, judged unknown) is not alive here
        result = self.resume(AgentHost([0]))
        self.assertEqual(result.exit_code, 0)

    def test_a_resume_holds_the_lock_while_its_agent_runs_and_lets_go_at_its_end(self) -> None:
        sdir = self.preserved_bottle()
        seen: list[str] = []

        def agent(host: AgentHost) -> int:
            try:
                StateDir(self.state_root, BOTTLE_ID).hold_run().release()
                seen.append("free")
            except BotBottleError:
                seen.append("held")
            return 1

        self.resume(AgentHost([agent]))
        self.assertEqual(seen, ["held"])
        sdir.hold_run().release()  # free again once the run ended (the bottle is preserved)

    def test_a_started_bottle_holds_the_lock_across_a_restart(self) -> None:
        seen: list[str] = []

        def probe(host: AgentHost) -> int:
            assert host.state is not None
            try:
                StateDir(host.state.root, host.state.id).hold_run().release()
                seen.append("free")
            except BotBottleError:
                seen.append("held")
            return 0

        def approve_then_probe(host: AgentHost) -> int:
            probe(host)
            return approve_and_stop(host)

        result = self.run_bottle(AgentHost([approve_then_probe, probe]), command=["bb-probe-command"])
        self.assertEqual(result.restarts, 1)
        self.assertEqual(seen, ["held", "held"])


class TheNewBottlesIdComesFirst(OnTheFakeHost):
    """With several bottles running, the user needs each one's id (to stop, commit or read the
    logs of it) from the moment it starts, not only when it ends preserved."""

    def test_a_start_names_its_bottle_before_anything_is_built(self) -> None:
        result = self.run_bottle(AgentHost([0]), command=["bb-probe-command"])
        self.assertEqual(self.progress[0], f"new bottle {result.bottle_id} for agent 'coder'")
        self.assertEqual(sum(result.bottle_id in line for line in self.progress), 1, self.progress)

    def test_a_resume_does_not_announce_a_new_bottle(self) -> None:
        self.preserved_bottle()
        self.resume(AgentHost([0]))
        self.assertFalse([line for line in self.progress if line.startswith("new bottle")], self.progress)


class AnImageAnotherProcessBuilds(unittest.TestCase):
    """Several bottles started at once on a cold cache: one builds each image, the others wait
    for it (``images.file_lock``) and say so, instead of a silent "checking images" for minutes."""

    def test_the_start_that_waits_says_what_for_and_builds_nothing(self) -> None:
        import fcntl
        import io

        from rich.console import Console

        from bot_bottle import images

        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        spec = images.agent_image("claude")
        built = threading.Event()
        out = io.StringIO()
        with mock.patch.dict(os.environ, {"BOT_BOTTLE_CACHE_DIR": tmp.name}), \
                mock.patch.object(images, "image_exists", side_effect=lambda ref: built.is_set()), \
                mock.patch.object(images, "_docker_build") as build:
            lock = Path(tmp.name) / "locks" / f"{spec.name.replace('/', '_')}-{spec.tag}.lock"
            lock.parent.mkdir(parents=True)
            with lock.open("a") as other:  # the process that builds it
                fcntl.flock(other, fcntl.LOCK_EX)
                waiter = threading.Thread(target=images.ensure_image, args=(spec,),
                                          kwargs={"console": Console(file=out, force_terminal=False, width=200)})
                waiter.start()
                deadline = time.monotonic() + 10
                while "Waiting for" not in out.getvalue() and time.monotonic() < deadline:
                    time.sleep(0.02)
                built.set()
                fcntl.flock(other, fcntl.LOCK_UN)
            waiter.join(timeout=10)
        self.assertFalse(waiter.is_alive())
        self.assertIn(f"Waiting for another bot-bottle process to build {spec.ref}", out.getvalue())
        build.assert_not_called()


class SnapshotsOfSeveralBottlesAtOnce(unittest.TestCase):
    """Several bottles stopped at once all snapshot at once, onto the engine's one disk. Each
    commit's room check must see what the commits before it wrote: checked side by side, each
    fits and together they eat the reserve every other bottle and the host rely on."""

    GIB = 1024 ** 3

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.free = 8 * self.GIB  # of 100 GiB: 5 GiB is the reserve, room for one 3 GiB snapshot
        self.commits: list[str] = []
        self.both_checked = threading.Barrier(2)
        patches = [
            mock.patch.dict(os.environ, {"BOT_BOTTLE_CACHE_DIR": tmp.name}),
            mock.patch.object(engine, "run", self.engine),
            mock.patch.object(snapshot_room, "changes_size", self.changes_size),
            mock.patch.object(snapshot_room, "engine_disk", lambda: (self.free, 100 * self.GIB)),
        ]
        for patch in patches:
            patch.start()
            self.addCleanup(patch.stop)
        self.state_root = Path(tmp.name) / "state"

    def changes_size(self, container: str) -> int:
        try:  # side by side, both checks would run before either commit
            self.both_checked.wait(timeout=1)
        except threading.BrokenBarrierError:
            pass
        return 3 * self.GIB

    def engine(self, args: list[str], **_: object) -> engine.DockerResult:
        if args[0] == "commit":
            time.sleep(0.05)
            self.free -= 3 * self.GIB
            self.commits.append(args[-2])
            return engine.DockerResult(0, "", "")
        if args[0] == "inspect":
            return engine.DockerResult(0, "[]", "")
        return engine.DockerResult(1, "", "No such image")

    def test_the_second_snapshot_sees_the_first_and_is_refused_by_name(self) -> None:
        outcomes: dict[str, object] = {}

        def snap(bottle_id: str) -> None:
            try:
                outcomes[bottle_id] = lifecycle.snapshot(bottle_id, f"bot-bottle-{bottle_id}-agent", self.state_root)
            except BotBottleError as exc:
                outcomes[bottle_id] = exc

        threads = [threading.Thread(target=snap, args=(bid,)) for bid in ("aaaaaaaa", "bbbbbbbb")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        self.assertEqual(len(self.commits), 1, "both snapshots were taken: the disk is down to its reserve")
        refused = [o for o in outcomes.values() if isinstance(o, BotBottleError)]
        self.assertEqual(len(refused), 1, outcomes)
        self.assertIn("its snapshot would write 3.0 GiB", str(refused[0]))
        self.assertGreaterEqual(self.free, 5 * self.GIB)


class OneStopOfSeveralBottles(OnTheFakeHost):
    """`bot-bottle stop` of several bottles: each is preserved as stopped, whichever status its
    agent's client died with (137 or 143, depending on timing: seen side by side in `list`)."""

    def test_a_non_zero_status_from_a_stopped_bottle_says_it_was_stopped(self) -> None:
        def stopped_under_it(host: AgentHost) -> int:
            host.containers_stopped = True
            return 137

        result = self.run_bottle(AgentHost([stopped_under_it]), command=["bb-probe-command"])
        self.assertEqual((result.exit_code, result.preserved), (137, True))
        self.assertEqual(result.preserve_reason, lifecycle.STOPPED)

    def test_an_agent_failing_in_a_running_bottle_is_still_a_failure(self) -> None:
        result = self.run_bottle(AgentHost([3]), command=["bb-probe-command"])
        self.assertEqual(result.preserve_reason, "agent exited with code 3")


if __name__ == "__main__":
    unittest.main()
