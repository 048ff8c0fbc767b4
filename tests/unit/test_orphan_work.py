"""``cleanup`` saves an orphaned bottle's agent work before removing it (which bottles, and what
it does without an engine); the snapshot itself is tested through a real bottle in
tests/integration/test_orphan_stop.py."""

from __future__ import annotations

import io
import json
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

from bot_bottle.backend.docker import orphan_work
from bot_bottle.backend.docker.cleanup import Inventory, Resource
from bot_bottle.state import Metadata, StateDir


class _Home(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.home = Path(tmp.name)
        self.root = self.home / ".bot-bottle" / "state"

    def bottle(self, bottle_id: str, *, ran: bool, backend: str = "docker") -> StateDir:
        sdir = StateDir(self.root, bottle_id)
        sdir.create()
        sdir.write(Metadata(id=bottle_id, agent="coder", bottle="dev", backend=backend))
        if ran:
            sdir.mark_agent_ran()
        return sdir

    @staticmethod
    def orphaned(bottle_id: str, *, agent: bool = True) -> list[Resource]:
        found = [Resource("state", f"/state/{bottle_id}", bottle_id, bottle_id),
                 Resource("container", f"id-{bottle_id}-s", f"bot-bottle-{bottle_id}-sidecar", bottle_id),
                 Resource("network", f"net-{bottle_id}", f"bot-bottle-{bottle_id}", bottle_id)]
        if agent:
            found.append(Resource("container", f"id-{bottle_id}-a", f"bot-bottle-{bottle_id}-agent", bottle_id))
        return found


class WhichBottlesAreSaved(_Home):
    def test_only_orphans_whose_agent_ran_with_their_agent_container_left(self) -> None:
        self.bottle("aaaaaa01", ran=True)  # killed while its agent worked: saved
        self.bottle("aaaaaa02", ran=False)  # killed during its start: nothing to save
        self.bottle("aaaaaa03", ran=True)  # its agent container is gone already
        self.bottle("aaaaaa04", ran=True, backend="smolmachines")  # only its launcher packs a VM
        inv = Inventory(orphans=[*self.orphaned("aaaaaa01"), *self.orphaned("aaaaaa02"),
                                 *self.orphaned("aaaaaa03", agent=False), *self.orphaned("aaaaaa04")])
        self.assertEqual(orphan_work.to_save(inv, self.root), ["aaaaaa01"])

    def test_a_live_or_preserved_bottle_is_not_saved_again(self) -> None:
        self.bottle("aaaaaa05", ran=True)
        # Its state folder is not among the orphans: live, preserved or not this home's.
        containers = [r for r in self.orphaned("aaaaaa05") if r.kind != "state"]
        self.assertEqual(orphan_work.to_save(Inventory(orphans=containers), self.root), [])

    def test_unreadable_metadata_saves_nothing(self) -> None:
        sdir = self.bottle("aaaaaa06", ran=True)
        sdir.metadata_path.write_text("{", encoding="utf-8")
        self.assertEqual(orphan_work.to_save(Inventory(orphans=self.orphaned("aaaaaa06")), self.root), [])

    def test_the_preview_keeps_the_state_folder_and_still_removes_the_containers(self) -> None:
        inv = Inventory(orphans=self.orphaned("aaaaaa07"))
        orphan_work.preview(inv, ["aaaaaa07"])
        self.assertEqual(sorted(r.kind for r in inv.orphans), ["container", "container", "network"])
        self.assertEqual([(r.kind, r.name) for r, _ in inv.kept], [("state", "aaaaaa07")])

    def test_a_bottle_another_process_holds_is_not_saved_here_nor_removed(self) -> None:
        sdir = self.bottle("aaaaaa14", ran=True)
        held = sdir.hold_run()  # a second cleanup saving it (or a resume)
        self.addCleanup(held.release)
        with mock.patch.object(orphan_work.engine, "run", side_effect=AssertionError("no docker call")):
            self.assertEqual(orphan_work.save("aaaaaa14", self.root), (False, None))
        inv = Inventory(orphans=[*self.orphaned("aaaaaa14"), *self.orphaned("aaaaaa15")])
        orphan_work.leave_busy(inv, ["aaaaaa14"])
        self.assertEqual({r.bottle_id for r in inv.orphans}, {"aaaaaa15"})
        self.assertEqual({r.bottle_id for r, _ in inv.skipped}, {"aaaaaa14"})

    def test_a_bottle_saved_meanwhile_is_not_saved_twice(self) -> None:
        sdir = self.bottle("aaaaaa16", ran=True)
        sdir.preserve(orphan_work.SAVED)
        with mock.patch.object(orphan_work.engine, "run", side_effect=AssertionError("no docker call")):
            self.assertEqual(orphan_work.save("aaaaaa16", self.root), (False, None))

    def test_an_agent_container_kept_for_a_failed_snapshot_is_tried_again(self) -> None:
        sdir = self.bottle("aaaaaa17", ran=True)
        sdir.preserve("agent exited with code 1 (snapshot failed: no room); its container is kept")
        sdir.keep_agent("bot-bottle-aaaaaa17-agent")
        agent = Resource("container", "id-a", "bot-bottle-aaaaaa17-agent", "aaaaaa17")
        volume = Resource("volume", "bot-bottle-aaaaaa17-sock", "bot-bottle-aaaaaa17-sock", "aaaaaa17")
        state = Resource("state", "/state/aaaaaa17", "aaaaaa17", "aaaaaa17")
        inv = Inventory(kept=[(state, "preserved for resume"), (agent, "kept"), (volume, "kept")])
        self.assertEqual(orphan_work.to_save(inv, self.root), ["aaaaaa17"])
        orphan_work.preview(inv, ["aaaaaa17"])
        self.assertEqual(inv.orphans, [agent, volume])  # they go once the snapshot is taken
        self.assertEqual(inv.kept, [(state, "preserved for resume")])

    def test_a_retry_that_fails_again_changes_nothing(self) -> None:
        sdir = self.bottle("aaaaaa18", ran=True)
        reason = "agent exited with code 1 (snapshot failed: no room); its container is kept"
        sdir.preserve(reason)
        sdir.keep_agent("bot-bottle-aaaaaa18-agent")
        from bot_bottle.backend import registry
        from bot_bottle.errors import BotBottleError

        with mock.patch.object(orphan_work.engine, "run"), \
                mock.patch.object(registry.DockerBackend, "commit", side_effect=BotBottleError("no room")):
            self.assertEqual(orphan_work.save("aaaaaa18", self.root), (False, "no room"))
        self.assertEqual(sdir.preserve_reason, reason)
        self.assertEqual(sdir.kept_agent(), "bot-bottle-aaaaaa18-agent")

    def test_a_retry_that_succeeds_lets_the_container_go(self) -> None:
        sdir = self.bottle("aaaaaa19", ran=True)
        sdir.preserve("agent exited with code 1 (snapshot failed: no room); its container is kept")
        sdir.keep_agent("bot-bottle-aaaaaa19-agent")
        from bot_bottle.backend import registry

        with mock.patch.object(orphan_work.engine, "run"), \
                mock.patch.object(registry.DockerBackend, "commit", return_value="bot-bottle/snapshot:aaaaaa19"):
            self.assertEqual(orphan_work.save("aaaaaa19", self.root), (True, None))
        self.assertIsNone(sdir.kept_agent())
        self.assertEqual(sdir.preserve_reason, orphan_work.SAVED_LATE)


class WithoutAnEngine(_Home):
    def run_cleanup(self, *args: str) -> tuple[int, str]:
        from bot_bottle import cli

        out = io.StringIO()
        with mock.patch.dict("os.environ", {"HOME": str(self.home)}), \
                mock.patch("bot_bottle.backend.docker.engine.is_available", return_value=False), \
                redirect_stdout(out), redirect_stderr(io.StringIO()):
            code = cli.main(["cleanup", *args, "--format", "json"])
        return code, out.getvalue()

    def test_a_state_folder_whose_agent_ran_is_kept_until_the_engine_answers(self) -> None:
        # Removing it would leave its container, once the engine is back, an orphan nothing
        # resumes: the next cleanup would remove it with the agent's work.
        ran = self.bottle("aaaaaa08", ran=True)
        never = self.bottle("aaaaaa09", ran=False)
        code, out = self.run_cleanup()
        self.assertEqual(code, 0, out)
        report = json.loads(out)
        self.assertEqual([r["bottle_id"] for r in report["removed"]], ["aaaaaa09"])
        self.assertTrue(ran.exists())
        self.assertFalse(never.exists())
        self.assertIn("cannot be checked without an engine", json.dumps(report["kept"]))

    def test_all_still_removes_it(self) -> None:
        ran = self.bottle("aaaaaa10", ran=True)
        code, out = self.run_cleanup("--all")
        self.assertEqual(code, 0, out)
        self.assertFalse(ran.exists())


class TheMarker(_Home):
    def test_the_lifecycle_marks_a_bottle_before_its_agent_starts(self) -> None:
        from bot_bottle import lifecycle

        sdir = self.bottle("aaaaaa11", ran=False)
        lifecycle._mark_agent_ran(sdir)
        self.assertTrue(sdir.agent_ran())

    def test_a_home_that_cannot_take_the_marker_does_not_stop_the_agent(self) -> None:
        from bot_bottle import lifecycle

        sdir = self.bottle("aaaaaa12", ran=False)
        with mock.patch.object(StateDir, "mark_agent_ran", side_effect=OSError(28, "No space left on device")):
            lifecycle._mark_agent_ran(sdir)  # no exception
        self.assertFalse(sdir.agent_ran())


class TheListing(unittest.TestCase):
    def status(self, *, ran: bool) -> str:
        from bot_bottle.cli import list as list_cmd

        return list_cmd._status({"id": "aaaaaa13", "status": "running", "from_this_home": True, "orphaned": True,
                                 "backend": "docker", "owner": "gone", "offline": False, "agent_ran": ran})

    def test_an_orphan_whose_agent_ran_is_saved_by_cleanup_too(self) -> None:
        self.assertIn("so does `bot-bottle cleanup`", self.status(ran=True))
        self.assertIn("`bot-bottle cleanup` removes it", self.status(ran=False))


if __name__ == "__main__":
    unittest.main()


class StartSaysWhatWaits(_Home):
    """`start` names the bottles whose work waits for `cleanup`, from the state folders alone."""

    @staticmethod
    def gone(_owner: str | None) -> str:
        from bot_bottle import proc

        return proc.GONE

    def test_which_bottles_wait(self) -> None:
        from bot_bottle import proc

        self.bottle("aaaaaa21", ran=True)  # its process is gone, its agent had started: waits
        self.bottle("aaaaaa22", ran=False)  # killed during its start: nothing to save
        self.bottle("aaaaaa23", ran=True).preserve("agent exited with code 1")  # kept already
        self.bottle("aaaaaa24", ran=True, backend="smolmachines")  # only its launcher packs a VM
        live = self.bottle("aaaaaa25", ran=True)
        live.write(Metadata(id="aaaaaa25", agent="coder", bottle="dev", backend="docker", owner=proc.identity()))
        broken = self.bottle("aaaaaa26", ran=True)
        broken.metadata_path.write_text("{", encoding="utf-8")  # unreadable: nothing could resume it
        self.assertEqual(orphan_work.awaiting(self.root), ["aaaaaa21"])  # the real /proc: this process lives
        self.assertEqual(orphan_work.awaiting(self.root, owner_state=self.gone), ["aaaaaa21", "aaaaaa25"])
        self.assertEqual(orphan_work.awaiting(self.home / "nowhere"), [])

    def test_what_it_says(self) -> None:
        one = orphan_work.awaiting_hint(["aaaaaa21"])
        self.assertIn("bottle aaaaaa21 was left behind when its bot-bottle process ended", one)
        self.assertIn("`bot-bottle cleanup` saves it for `bot-bottle resume aaaaaa21`", one)
        two = orphan_work.awaiting_hint(["aaaaaa21", "aaaaaa22"])
        self.assertIn("bottles aaaaaa21, aaaaaa22 were left behind when their bot-bottle process ended", two)
        self.assertIn("`bot-bottle resume ID`", two)


class StartShowsIt(unittest.TestCase):
    def test_start_warns_before_its_plan(self) -> None:
        from bot_bottle.lifecycle import RunResult
        from tests.fixtures import TEST_IMAGES, ManifestHome

        mh = ManifestHome()
        self.addCleanup(mh.close)
        mh.bottle("dev", "")
        mh.agent("coder", {"bottle": "dev"})
        sdir = StateDir(mh.home / ".bot-bottle" / "state", "aaaaaa31")
        sdir.create()
        sdir.write(Metadata(id="aaaaaa31", agent="coder", bottle="dev", backend="docker"))  # no owner: gone
        ran = RunResult(bottle_id="abcdef12", exit_code=0, preserved=False, preserve_reason=None)
        with mock.patch("bot_bottle.lifecycle.run_bottle", return_value=ran):
            quiet = mh.run_cli("start", "coder", "--headless", "--prompt", "hi", images=TEST_IMAGES,
                               env={"ANTHROPIC_API_KEY": "x"})
            sdir.mark_agent_ran()
            said = mh.run_cli("start", "coder", "--headless", "--prompt", "hi", images=TEST_IMAGES,
                              env={"ANTHROPIC_API_KEY": "x"})
        self.assertEqual((quiet.code, said.code), (0, 0), said.stderr)
        self.assertNotIn("aaaaaa31", quiet.stderr)
        self.assertIn("warning: bottle aaaaaa31 was left behind", " ".join(said.stderr.split()))
        self.assertIn("bot-bottle cleanup", said.stderr)
