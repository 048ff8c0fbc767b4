"""Where manifests are looked for: a ``*.md`` entry that is not a file is reported as what it
is (never silently skipped), and HOME must be an absolute path."""

from __future__ import annotations

import os
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle.errors import BotBottleError
from bot_bottle.manifest import Layout, discover, validate
from tests.fixtures import ManifestTestCase


class NotAFileTests(ManifestTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.mh.agent("coder", {"bottle": "dev"})
        self.entry = self.mh.bottles_dir / "dev.md"
        self.entry.parent.mkdir(parents=True, exist_ok=True)

    def assertReported(self, what: str) -> None:
        report = validate(self.mh.layout)
        own = [e for e in report.errors if e.path == self.entry]
        self.assertEqual(len(own), 1, [str(e) for e in report.errors])
        self.assertIn(what, own[0].detail)
        self.assertIn(self.entry, report.checked)
        # The agent naming it is told why the bottle does not count, not "available: none yet".
        agent_errors = [e for e in report.errors if e.path != self.entry]
        self.assertTrue(agent_errors)
        for error in agent_errors:
            self.assertNotIn("none yet", error.hint or "")
            self.assertIn(what, error.hint or "")
        result = self.mh.run_cli("validate")
        self.assertEqual(result.code, 2)
        self.assertIn(f"{self.entry}: {what}", result.stderr)

    def test_a_dangling_symlink(self) -> None:
        self.entry.symlink_to(self.mh.home / "missing.md")
        self.assertReported("is a dangling symlink")
        self.assertIn(str(self.mh.home / "missing.md"), self.mh.run_cli("validate").stderr)
        # Once the link reaches a file, it counts (a bottle kept in a dotfiles checkout).
        kept = self.mh.raw("dotfiles/dev.md", "---\negress:\n  routes: [pypi.org]\n---\n")
        self.entry.unlink()
        self.entry.symlink_to(kept)
        self.assertIn("dev", discover(self.mh.layout).bottles)
        self.assertTrue(validate(self.mh.layout).ok)

    def test_a_directory(self) -> None:
        self.entry.mkdir()
        self.assertReported("is a directory")

    def test_a_fifo_is_reported_and_never_opened(self) -> None:
        os.mkfifo(self.entry)
        self.assertReported("is not a regular file")

    def test_start_names_the_agent_file_that_is_not_a_file(self) -> None:
        agent = self.mh.agents_dir() / "helper.md"
        agent.symlink_to(self.mh.home / "gone.md")
        result = self.mh.run_cli("start", "helper", "--dry-run")
        self.assertEqual(result.code, 2)
        self.assertIn(f"{agent}: is a dangling symlink", result.stderr)
        self.assertNotIn("no agent named", result.stderr)


class HomeTests(unittest.TestCase):
    def layout_with(self, home: str | None) -> Layout:
        env = dict(os.environ)
        env.pop("HOME", None)
        if home is not None:
            env["HOME"] = home
        with mock.patch.dict(os.environ, env, clear=True):
            return Layout.from_env(cwd=Path("/tmp"))

    def test_an_empty_home_is_refused(self) -> None:
        with self.assertRaises(BotBottleError) as cm:
            self.layout_with("")
        self.assertIn("HOME is empty", str(cm.exception))
        self.assertIn("export HOME=", cm.exception.hint or "")

    def test_a_relative_home_is_refused_an_absolute_or_unset_one_used(self) -> None:
        with self.assertRaises(BotBottleError) as cm:
            self.layout_with("rel")
        self.assertIn("relative", str(cm.exception))
        self.assertEqual(self.layout_with("/home/someone").home_dir, Path("/home/someone/.bot-bottle"))
        # Unset, as before: the account's home folder from the user database.
        with mock.patch.object(Path, "home", return_value=Path("/home/from-passwd")):
            self.assertEqual(self.layout_with(None).home, Path("/home/from-passwd"))

    def test_the_cli_says_so(self) -> None:
        from tests.fixtures import ManifestHome

        mh = ManifestHome.for_test(self)
        for home in ("", "rel"):
            with self.subTest(home=home):
                # validate only reads (`init` with the old behaviour would have written under /).
                result = mh.run_cli("validate", env={"HOME": home})
                self.assertEqual(result.code, 1, result.stdout)
                self.assertIn("error: HOME is", result.stderr)


if __name__ == "__main__":
    unittest.main()
