"""The command line takes the options its --help lists, spelled whole, and nothing else.

argparse takes a shortened long option by default (`--dry` for `--dry-run`): a script that came
to rely on one would change meaning, or break, the day another option shared its start, and
--help never lists them. A mistyped option is named with the closest one the command takes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle.cli import build_parser, main


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


class _Home(unittest.TestCase):
    """A throwaway HOME holding the example manifests, so a command that runs has work to do."""

    def setUp(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="walk15h-"))
        self.addCleanup(shutil.rmtree, self.home, True)
        patcher = mock.patch.dict(os.environ, {"HOME": str(self.home)})
        patcher.start()
        self.addCleanup(patcher.stop)
        cwd = os.getcwd()
        os.chdir(self.home)
        self.addCleanup(os.chdir, cwd)
        code, _, err = _run(["init"])
        self.assertEqual(code, 0, err)


class ShortenedOptionsRefused(_Home):
    def test_a_shortened_option_is_a_usage_error_naming_the_whole_one(self) -> None:
        code, out, err = _run(["validate", "--form", "json"])
        self.assertEqual(code, 2)
        self.assertEqual(out, "")
        self.assertIn("unrecognized arguments: --form json", err)
        self.assertIn("did you mean '--format'?", err)
        self.assertNotIn("Traceback", err)

    def test_dry_is_not_dry_run(self) -> None:
        code, out, err = _run(["start", "coder", "--dry", "--format", "json"])
        self.assertEqual(code, 2)
        self.assertEqual(out, "")
        self.assertIn("bot-bottle start: error: unrecognized arguments: --dry", err)
        self.assertIn("did you mean '--dry-run'?", err)

    def test_shortened_with_equals_is_refused_too(self) -> None:
        code, out, err = _run(["validate", "--form=json"])
        self.assertEqual(code, 2)
        self.assertEqual(out, "")
        self.assertIn("did you mean '--format'?", err)

    def test_whole_options_still_work_both_ways(self) -> None:
        for argv in (["validate", "--format", "json"], ["validate", "--format=json"]):
            with self.subTest(argv=argv):
                code, out, err = _run(argv)
                self.assertEqual(code, 0, err)
                self.assertIn('"ok": true', out)

    def test_an_option_close_to_none_gets_no_guess(self) -> None:
        code, _, err = _run(["validate", "--zzzzzz"])
        self.assertEqual(code, 2)
        self.assertIn("unrecognized arguments: --zzzzzz", err)
        self.assertNotIn("did you mean", err)

    def test_a_token_typed_as_an_option_is_never_echoed_in_a_guess(self) -> None:
        token = "--ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5"
        code, _, err = _run(["validate", token])
        self.assertEqual(code, 2)
        self.assertNotIn("did you mean", err)


class EveryCommandTakesOnlyWholeOptions(unittest.TestCase):
    """Over every subcommand's every long option: its start alone is not taken for it."""

    def test_no_prefix_of_a_long_option_is_accepted(self) -> None:
        parser = build_parser()
        checked = 0
        for name, sub in _subparsers(parser).items():
            positionals = ["x" for a in sub._actions if not a.option_strings and a.nargs is None]
            longs = {flag for a in sub._actions for flag in a.option_strings if flag.startswith("--")}
            for flag in sorted(longs):
                prefix = flag[:-1]
                if len(prefix) < 3 or prefix in longs:
                    continue
                with self.subTest(command=name, prefix=prefix):
                    err = io.StringIO()
                    with contextlib.redirect_stderr(err):
                        try:
                            _, extra = parser.parse_known_args([name, *positionals, prefix])
                        except SystemExit:
                            self.fail(f"{name} {prefix} was taken for {flag}: {err.getvalue()}")
                    self.assertIn(prefix, extra)
                    checked += 1
        self.assertGreater(checked, 20)


class DemoHelp(unittest.TestCase):
    def test_demo_help_names_the_clipboard_step_the_readme_describes(self) -> None:
        code, out, _ = _run(["demo", "--help"])
        self.assertEqual(code, 0)
        self.assertIn("clipboard", " ".join(out.split()))


if __name__ == "__main__":
    unittest.main()
