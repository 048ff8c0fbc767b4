"""A mistyped bottle id, a broken manifest looked at in ``edit``, a dangling agent link and a
failure while the command line is being built: each one clear line and the documented status."""

from __future__ import annotations

import io
import json
import unittest
from typing import Any
from unittest import mock

from bot_bottle import api, cli
from bot_bottle.backend.docker.running import RunningBottle
from bot_bottle.errors import BotBottleError
from tests.fixtures import SIMPLE_BOTTLE, CliResult, ManifestTestCase

SAVED = "abcdef12"


def _running(bottle_id: str) -> list[RunningBottle]:
    return [RunningBottle(id=bottle_id, agent="dev", label=None, status="running", started_at="",
                          owner_alive=True, image="img", backend="docker")]


class UnknownBottleIdTests(ManifestTestCase):
    """An id no bottle has is a usage error (2) with the closest bottle of this home, as a
    mistyped agent or bottle name is."""

    def setUp(self) -> None:
        super().setUp()
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        state = self.mh.home_dir / "state" / SAVED
        state.mkdir(parents=True)
        (state / "metadata.json").write_text(json.dumps(
            {"id": SAVED, "agent": "coder", "bottle": "dev", "backend": "docker"}), encoding="utf-8")

    def run_quietly(self, *argv: str, elsewhere: list[RunningBottle] | None = None) -> tuple[CliResult, Any, Any]:
        """``bot-bottle ARGV`` with the engine answering ``elsewhere`` for one id; nothing resumes or
        stops for real. Returns (result, the resume mock, the stop mock)."""
        with mock.patch.object(api, "running", return_value=elsewhere or []), \
                mock.patch.object(api, "resume") as resume, mock.patch.object(api, "stop") as stop:
            return self.mh.run_cli(*argv), resume, stop

    def assertUsageError(self, result: CliResult, *needles: str) -> None:
        self.assertEqual(result.code, 2, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        for needle in needles:
            self.assertIn(needle, result.stderr)

    def test_resume_of_an_id_no_saved_bottle_has(self) -> None:
        result, resume, _ = self.run_quietly("resume", "abcdef13")
        self.assertUsageError(result, "no saved bottle 'abcdef13'", f"did you mean '{SAVED}'?")
        self.assertNotIn("resuming", result.stderr)
        resume.assert_not_called()

    def test_resume_of_something_that_is_no_bottle_id(self) -> None:
        result, resume, _ = self.run_quietly("resume", "nope")
        self.assertUsageError(result, "'nope' is not a bottle id")
        resume.assert_not_called()
        result, _, _ = self.run_quietly("resume", "abcdef1")  # one character short
        self.assertUsageError(result, f"did you mean '{SAVED}'?")

    def test_resume_of_a_saved_bottle_still_goes_on(self) -> None:
        result, resume, _ = self.run_quietly("resume", SAVED)
        self.assertNotEqual(result.code, 2, result.stderr)
        self.assertEqual(resume.call_args.args[0], SAVED)

    def test_resume_of_broken_metadata_is_still_not_a_usage_error(self) -> None:
        (self.mh.home_dir / "state" / SAVED / "metadata.json").write_text("[1]", encoding="utf-8")
        result, resume, _ = self.run_quietly("resume", SAVED)
        self.assertEqual(result.code, 1, result.stderr)
        resume.assert_not_called()

    def test_stop_of_an_id_no_bottle_has(self) -> None:
        result, _, stop = self.run_quietly("stop", "abcdef13")
        self.assertUsageError(result, "no bottle 'abcdef13'", f"did you mean '{SAVED}'?")
        stop.assert_not_called()

    def test_stop_of_something_that_is_no_bottle_id(self) -> None:
        result, _, stop = self.run_quietly("stop", "nope")
        self.assertUsageError(result, "'nope' is not a bottle id")
        stop.assert_not_called()

    def test_stop_of_another_homes_running_bottle_is_refused_as_before(self) -> None:
        foreign = "0123abcd"
        with mock.patch.object(api, "running", return_value=_running(foreign)), \
                mock.patch("bot_bottle.backend.docker.engine.run") as engine:
            result = self.mh.run_cli("stop", foreign)
        self.assertEqual(result.code, 1, result.stderr)
        self.assertIn(f"bottle {foreign} has no state under", result.stderr)
        engine.assert_not_called()

    def test_stop_of_a_bottle_of_this_home_that_no_longer_runs_is_unchanged(self) -> None:
        with mock.patch.object(api, "running", return_value=[]):
            result = self.mh.run_cli("stop", SAVED)
        self.assertEqual(result.code, 1, result.stderr)
        self.assertIn(f"no running bottle {SAVED}", result.stderr)

    def test_stop_when_the_engine_does_not_answer_keeps_its_own_message(self) -> None:
        with mock.patch.object(api, "running", side_effect=BotBottleError("Docker is not running")):
            result = self.mh.run_cli("stop", "abcdef13")
        self.assertEqual(result.code, 1, result.stderr)
        self.assertIn("bottle abcdef13 has no state under", result.stderr)

    def test_info_of_a_mistyped_agent_is_already_a_usage_error(self) -> None:
        self.mh.agent("coder", {"bottle": "dev"})
        result = self.mh.run_cli("info", "codr")
        self.assertUsageError(result, "no agent named 'codr'", "did you mean 'coder'?")


INVALID_BOTTLE = "---\nbogus: 1\n---\n"


class EditLeftBrokenTests(ManifestTestCase):
    def edit(self, name: str, *extra: str) -> CliResult:
        return self.mh.run_cli("edit", name, *extra, env={"EDITOR": "true"}, unset=("VISUAL",))

    def test_an_invalid_file_saved_unchanged_still_reports_its_errors(self) -> None:
        path = self.mh.raw(".bot-bottle/bottles/b.md", INVALID_BOTTLE)
        result = self.edit("b")
        self.assertEqual(result.code, 2, result.stderr)
        self.assertIn(f"no changes to {path}", result.stdout)
        self.assertIn(f"{path}:2: bogus", result.stderr)
        self.assertEqual(path.read_text(encoding="utf-8"), INVALID_BOTTLE)

    def test_a_valid_file_saved_unchanged_is_still_fine(self) -> None:
        path = self.mh.bottle("dev", SIMPLE_BOTTLE)
        result = self.edit("dev")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn(f"no changes to {path}", result.stdout)
        self.assertEqual(result.stderr, "")

    def test_another_files_errors_are_not_blamed_on_an_unchanged_file(self) -> None:
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        self.mh.raw(".bot-bottle/bottles/b.md", INVALID_BOTTLE)
        result = self.edit("dev")
        self.assertEqual(result.code, 0, result.stderr)

    def test_a_dangling_agent_link_is_named(self) -> None:
        link = self.mh.agents_dir("cwd") / "a.md"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(self.mh.cwd / "gone.md")
        result = self.edit("a")
        self.assertEqual(result.code, 2, result.stderr)
        self.assertIn(f"{link}: is a dangling symlink", result.stderr)
        self.assertNotIn("no agent or bottle named", result.stderr)
        # Asked for as a bottle, the agent's link is not the answer.
        result = self.edit("a", "--bottle")
        self.assertIn("no bottle named 'a'", result.stderr)

    def test_a_dangling_bottle_link_is_named(self) -> None:
        link = self.mh.bottles_dir / "b.md"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(self.mh.cwd / "gone.md")
        result = self.edit("b")
        self.assertEqual(result.code, 2, result.stderr)
        self.assertIn(f"{link}: is a dangling symlink", result.stderr)


class ParserBuildFailureTests(unittest.TestCase):
    """Building the command line imports every subcommand: what goes wrong there is one line."""

    def call(self, fail: BaseException) -> tuple[int, str]:
        err = io.StringIO()
        with mock.patch.object(cli, "build_parser", side_effect=fail), \
                mock.patch.dict("os.environ", {}, clear=False) as env, \
                mock.patch("sys.stderr", err):
            env.pop("BOT_BOTTLE_DEBUG", None)
            try:
                code = cli._main(["list"])
            except BaseException as exc:  # noqa: BLE001 - what escapes is the failure under test
                self.fail(f"{type(exc).__name__} escaped _main")
        return code, err.getvalue()

    def test_an_error_while_importing_a_subcommand_is_one_line(self) -> None:
        code, err = self.call(TypeError("'NoneType' object is not callable"))
        self.assertEqual(code, 70)
        self.assertIn("internal error: TypeError", err)
        self.assertNotIn("Traceback", err)

    def test_a_ctrl_c_while_importing_ends_quietly(self) -> None:
        self.assertEqual(self.call(KeyboardInterrupt()), (130, ""))

    def test_a_real_import_failure_of_one_subcommand(self) -> None:
        import importlib

        real = importlib.import_module

        def broken(name: str, *args: Any) -> Any:
            if name == "bot_bottle.cli.demo":
                raise TypeError("interrupted import")
            return real(name, *args)

        err = io.StringIO()
        with mock.patch.object(cli.importlib, "import_module", broken), mock.patch("sys.stderr", err):
            self.assertEqual(cli.main(["list", "--format", "json"]), 70)
        self.assertIn("internal error: TypeError: interrupted import", err.getvalue())

    def test_help_and_usage_errors_are_unchanged(self) -> None:
        for argv, want in ((["--help"], 0), (["list", "--nope"], 2), (["bogus"], 2)):
            with self.subTest(argv=argv), mock.patch("sys.stdout", io.StringIO()), \
                    mock.patch("sys.stderr", io.StringIO()), self.assertRaises(SystemExit) as ctx:
                cli._main(argv)
            self.assertEqual(ctx.exception.code, want)


if __name__ == "__main__":
    unittest.main()
