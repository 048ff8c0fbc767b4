"""``commit`` answers a mistyped bottle id as ``resume``, ``stop`` and ``logs`` do (a usage error,
exit 2, with the closest bottle of this home), and ``commit`` or ``stop`` without an id says
clearly what to do when none or several of this home's bottles run."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

from bot_bottle import api
from bot_bottle.backend.docker.running import RunningBottle
from bot_bottle.errors import BotBottleError
from tests.fixtures import CliResult, ManifestTestCase

SAVED = "abcdef12"
OTHER = "9876fedc"
FOREIGN = "0123abcd"


def _running(*bottle_ids: str) -> list[RunningBottle]:
    return [RunningBottle(id=bottle_id, agent="coder", label=None, status="running", started_at="",
                          owner_alive=True, image="img", backend="docker") for bottle_id in bottle_ids]


class CommitCase(ManifestTestCase):
    def setUp(self) -> None:
        super().setUp()
        for bottle_id in (SAVED, OTHER):
            state = self.mh.home_dir / "state" / bottle_id
            state.mkdir(parents=True)
            (state / "metadata.json").write_text(json.dumps(
                {"id": bottle_id, "agent": "coder", "bottle": "dev", "backend": "docker"}), encoding="utf-8")

    def cli(self, *argv: str, running: list[RunningBottle] | BaseException = ()) -> tuple[CliResult, Any]:
        """``bot-bottle ARGV`` with ``running`` on the engine (an exception: no engine answers);
        nothing is snapshotted for real. Returns (result, the snapshot mock)."""
        answer = ({"side_effect": running} if isinstance(running, BaseException)
                  else {"return_value": list(running)})
        with mock.patch.object(api, "running", **answer), \
                mock.patch("bot_bottle.lifecycle.snapshot", return_value="bot-bottle/snapshot:x") as snap:
            return self.mh.run_cli(*argv, running=running), snap

    def assertUsageError(self, result: CliResult, *needles: str) -> None:
        self.assertEqual(result.code, 2, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        for needle in needles:
            self.assertIn(needle, result.stderr)


class CommitOfAnUnknownId(CommitCase):
    def test_an_id_no_bottle_has_is_a_usage_error_with_the_closest(self) -> None:
        result, snap = self.cli("commit", "abcdef13")
        self.assertUsageError(result, "no bottle 'abcdef13'", f"did you mean '{SAVED}'?")
        snap.assert_not_called()

    def test_something_that_is_no_bottle_id_is_a_usage_error(self) -> None:
        result, snap = self.cli("commit", "nope")
        self.assertUsageError(result, "'nope' is not a bottle id")
        snap.assert_not_called()
        result, _ = self.cli("commit", "abcdef1")  # one character short
        self.assertUsageError(result, "no bottle 'abcdef1'", f"did you mean '{SAVED}'?")

    def test_a_bottle_of_this_home_that_no_longer_runs_keeps_its_own_message(self) -> None:
        result, snap = self.cli("commit", SAVED)
        self.assertEqual(result.code, 1, result.stderr)
        self.assertIn(f"no running bottle {SAVED}", result.stderr)
        snap.assert_not_called()

    def test_another_homes_running_bottle_is_refused_as_before(self) -> None:
        result, snap = self.cli("commit", FOREIGN, running=_running(FOREIGN))
        self.assertEqual(result.code, 1, result.stderr)
        self.assertIn(f"bottle {FOREIGN} has no state under", result.stderr)
        snap.assert_not_called()

    def test_when_no_engine_answers_the_commits_own_check_speaks(self) -> None:
        result, snap = self.cli("commit", "abcdef13", running=BotBottleError("Docker is not running"))
        self.assertEqual(result.code, 1, result.stderr)
        self.assertIn("bottle abcdef13 has no state under", result.stderr)
        snap.assert_not_called()

    def test_a_running_bottle_of_this_home_is_still_committed(self) -> None:
        result, snap = self.cli("commit", SAVED, running=_running(SAVED))
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn(f"committed bottle {SAVED}", result.stdout)
        self.assertEqual(snap.call_args.args[0], SAVED)


class WithoutAnId(CommitCase):
    def test_several_running_bottles_of_this_home_is_a_usage_error_naming_them(self) -> None:
        for verb in ("commit", "stop"):
            with self.subTest(verb=verb), mock.patch.object(api, "stop") as stop:
                result, snap = self.cli(verb, running=_running(SAVED, OTHER, FOREIGN))
                self.assertUsageError(result, f"name the one to {verb}: {SAVED}, {OTHER}", f"bot-bottle {verb} ID")
                self.assertNotIn(FOREIGN, result.stderr)
                snap.assert_not_called()
                stop.assert_not_called()

    def test_nothing_running_at_all_does_not_send_the_user_to_another_home(self) -> None:
        result, snap = self.cli("commit")
        self.assertEqual(result.code, 1, result.stderr)
        self.assertIn("no running bottle was started from this home", result.stderr)
        self.assertNotIn("HOME that started it", result.stderr)
        self.assertNotIn("other running bottle", result.stderr)
        snap.assert_not_called()

    def test_only_another_homes_bottle_running_still_says_so(self) -> None:
        result, _ = self.cli("commit", running=_running(FOREIGN))
        self.assertEqual(result.code, 1, result.stderr)
        self.assertIn("1 other running bottle was started from another home", result.stderr)
        self.assertIn("commit a bottle with the HOME that started it", result.stderr)

    def test_the_only_running_bottle_of_this_home_is_committed(self) -> None:
        result, snap = self.cli("commit", running=_running(FOREIGN, SAVED))
        self.assertEqual(result.code, 0, result.stderr)
        self.assertEqual(snap.call_args.args[0], SAVED)


class CommitHelp(ManifestTestCase):
    def test_help_says_what_no_id_means_and_the_exit_statuses(self) -> None:
        result = self.mh.run_cli("commit", "--help", env={"COLUMNS": "200"})
        self.assertEqual(result.code, 0, result.stderr)
        text = " ".join(result.stdout.split())
        self.assertIn("default: the only running bottle started from this home; with several, name one", text)
        self.assertIn("Exit status 2 when no bottle has that ID", text)
        self.assertIn("a micro-VM is packed when its agent ends", text)


class CommitOfAMicroVmThatNoLongerRuns(CommitCase):
    """A saved micro-VM bottle (its sidecar bundle gone) is not running: a commit must say so,
    not report a pack that will never be made."""

    def setUp(self) -> None:
        super().setUp()
        meta = self.mh.home_dir / "state" / SAVED / "metadata.json"
        meta.write_text(json.dumps({"id": SAVED, "agent": "coder", "bottle": "dev", "backend": "smolmachines"}),
                        encoding="utf-8")

    def test_it_is_refused_and_nothing_is_asked_of_the_machine(self) -> None:
        with mock.patch("bot_bottle.backend.smolmachines.launch.request_commit") as asked:
            result, _ = self.cli("commit", SAVED)
        self.assertEqual(result.code, 1, result.stderr)
        self.assertIn(f"no running bottle {SAVED}", result.stderr)
        asked.assert_not_called()
        self.assertFalse((self.mh.home_dir / "state" / SAVED / ".preserve").exists())
