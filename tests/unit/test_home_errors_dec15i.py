"""Clear errors where the user's home or environment is odd.

A file (or a dangling symlink) where ~/.bot-bottle or one of its manifest folders belongs is named
as what it is, by every command that reads or writes there, and `init` leaves nothing half made.
A credential the proxy must inject that is not set is named with where the manifest asks for it.
`start` and `resume` refuse --headless and --prompt apart in one wording; `help` and far-fetched
command names get no misleading suggestion.
"""

from __future__ import annotations

import json
import os
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from tests.fixtures import SIMPLE_AGENT, SIMPLE_BOTTLE, TEST_IMAGES, ManifestTestCase
from tests.unit.test_store_gaps_dec12f import unwritable

from bot_bottle.errors import BotBottleError

ALL_SET = {"ANTHROPIC_API_KEY": "k"}


# A folder as a read-only file system has it (root stopped by the immutable flag).
_unwritable = unwritable


class _Case(ManifestTestCase):
    def cli(self, *argv: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return self.mh.run_cli(*argv, env={**ALL_SET, **(env or {})}, images=TEST_IMAGES)

    def assert_one_clear_error(self, result, *parts: str) -> None:  # type: ignore[no-untyped-def]
        self.assertEqual(result.code, 1, result.stderr)
        self.assertTrue(result.stderr.startswith("error: "), result.stderr)
        first = result.stderr.splitlines()[0]
        for part in parts:
            self.assertIn(part, first)
        for wrong in ("Traceback", "internal error", "File exists", "Not a directory", "bot-bottle init"):
            self.assertNotIn(wrong, result.stderr)


class NotAFolderTests(unittest.TestCase):
    """``state.not_a_folder``: what stands where a folder belongs, or None."""

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix="bot-bottle-dec15i-")
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name)

    def test_what_each_kind_of_entry_is_called(self) -> None:
        from bot_bottle.state import not_a_folder

        folder = self.root / "folder"
        folder.mkdir()
        (self.root / "file").write_text("x")
        (self.root / "to-folder").symlink_to(folder)
        (self.root / "to-file").symlink_to(self.root / "file")
        (self.root / "dangling").symlink_to(self.root / "gone")
        (self.root / "loop").symlink_to(self.root / "loop")
        os.mkfifo(self.root / "fifo")
        self.assertIsNone(not_a_folder(folder))
        self.assertIsNone(not_a_folder(self.root / "missing"))
        self.assertIsNone(not_a_folder(self.root / "to-folder"))
        self.assertEqual(not_a_folder(self.root / "file"), "a file")
        self.assertEqual(not_a_folder(self.root / "to-file"), f"a symlink to {self.root / 'file'}, which is a file")
        self.assertEqual(not_a_folder(self.root / "dangling"),
                         f"a symlink to {self.root / 'gone'}, which does not exist")
        self.assertIn("leads back to itself", not_a_folder(self.root / "loop") or "")
        self.assertIn("not a file nor a folder", not_a_folder(self.root / "fifo") or "")

    def test_the_first_blocker_above_a_folder_is_named(self) -> None:
        from bot_bottle.state import first_not_a_folder

        (self.root / "home").mkdir()
        (self.root / "home" / ".bot-bottle").write_text("x")
        found = first_not_a_folder(self.root / "home" / ".bot-bottle" / "agents")
        self.assertEqual(found, (self.root / "home" / ".bot-bottle", "a file"))
        self.assertIsNone(first_not_a_folder(self.root / "home" / "new" / "agents"))


class HomeIsAFileTests(_Case):
    """~/.bot-bottle is a file: each command says so, exits non-zero, and suggests nothing that fails."""

    def setUp(self) -> None:
        super().setUp()
        self.blocked = self.mh.raw(".bot-bottle", "not a folder\n")

    def test_list_refuses_instead_of_suggesting_init(self) -> None:
        result = self.cli("list")
        self.assert_one_clear_error(result, f"{self.blocked} is not a folder: it is a file")
        self.assertIn(f"mv {self.blocked}", result.stderr)

    def test_init_names_the_file(self) -> None:
        result = self.cli("init")
        self.assert_one_clear_error(result, f"cannot make the folder {self.blocked}: it is a file; nothing written")
        self.assertTrue(self.blocked.is_file())

    def test_validate_does_not_count_the_folder_as_an_invalid_manifest_file(self) -> None:
        result = self.cli("validate")
        self.assertEqual(result.code, 2, result.stderr)
        self.assertIn(f"error: {self.blocked}: is not a folder", result.stderr)
        self.assertIn("hint: it is a file;", result.stderr)
        self.assertNotIn("manifest files invalid", result.stderr)
        self.assertIn("not checked", result.stderr)
        data = json.loads(self.cli("validate", "--format", "json").stdout)
        self.assertEqual(data["checked"], [])
        self.assertEqual([e["path"] for e in data["errors"]], [str(self.blocked)])

    def test_supervise_once_names_the_file(self) -> None:
        result = self.cli("supervise", "--once")
        self.assert_one_clear_error(result, f"{self.blocked} is not a folder: it is a file")

    def test_edit_names_the_file(self) -> None:
        result = self.cli("edit", "coder", env={"EDITOR": "true"})
        self.assert_one_clear_error(result, f"{self.blocked} is not a folder: it is a file")

    def test_the_store_names_the_file_where_its_folder_belongs(self) -> None:
        from bot_bottle.supervise.store import StoreError, connect

        with self.assertRaises(StoreError) as caught:
            connect(self.blocked / "supervise.db")
        self.assertIn(f"{self.blocked} is not a folder, it is a file", str(caught.exception))
        self.assertNotIn("File exists", str(caught.exception))


class DanglingHomeSymlinkTests(_Case):
    def test_a_dangling_symlink_is_named_with_its_target(self) -> None:
        target = self.mh.home / "elsewhere"
        link = self.mh.home_dir
        link.symlink_to(target)
        for argv in (("list",), ("init",), ("supervise", "--once")):
            with self.subTest(argv=argv):
                result = self.cli(*argv)
                self.assert_one_clear_error(result, f"{link}", f"it is a symlink to {target}, which does not exist")
                self.assertIn("make the folder it points to", result.stderr)
        self.assertFalse(target.exists())

    def test_a_home_folder_that_is_a_symlink_to_a_folder_works(self) -> None:
        real = self.mh.home / "real-bot-bottle"
        real.mkdir()
        self.mh.home_dir.symlink_to(real)
        self.assertEqual(self.cli("init").code, 0)
        self.assertTrue((real / "agents" / "coder.md").is_file())
        result = self.cli("list")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn("coder", result.stdout)


class ManifestFolderIsAFileTests(_Case):
    """~/.bot-bottle/agents (or bottles) is a file or a dangling symlink."""

    def test_init_names_the_agents_file_and_leaves_nothing_made(self) -> None:
        blocked = self.mh.raw(".bot-bottle/agents", "not a folder\n")
        result = self.cli("init")
        self.assert_one_clear_error(result, f"cannot make the folder {blocked}: it is a file")
        self.assertNotIn(f"{self.mh.home_dir} must be", result.stderr)
        self.assertEqual(sorted(p.name for p in self.mh.home_dir.iterdir()), ["agents"])

    def test_list_names_a_dangling_agents_symlink(self) -> None:
        self.mh.home_dir.mkdir()
        link = self.mh.home_dir / "agents"
        link.symlink_to(self.mh.home / "gone")
        result = self.cli("list")
        self.assert_one_clear_error(result, f"{link} is not a folder: it is a symlink to")

    def test_validate_fails_on_a_dangling_agents_symlink(self) -> None:
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        link = self.mh.home_dir / "agents"
        link.symlink_to(self.mh.home / "gone")
        result = self.cli("validate")
        self.assertEqual(result.code, 2, result.stderr)
        self.assertIn(f"error: {link}: is not a folder", result.stderr)
        self.assertIn("which does not exist", result.stderr)
        self.assertIn("1 manifest file valid", result.stdout + result.stderr)
        self.assertNotIn("invalid", result.stderr)
        start = self.cli("start", "coder", "--dry-run")
        self.assertEqual(start.code, 2)
        self.assertIn(f"{link} is not a folder (it is a symlink to", start.stderr)

    def test_edit_of_a_bottle_still_works_when_only_agents_is_a_file(self) -> None:
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        self.mh.raw(".bot-bottle/agents", "not a folder\n")
        result = self.cli("edit", "dev", env={"EDITOR": "true"})
        self.assertEqual(result.code, 0, result.stderr)
        missing = self.cli("edit", "coder", env={"EDITOR": "true"})
        self.assert_one_clear_error(missing, "agents is not a folder: it is a file")


class ReadOnlyHomeTests(_Case):
    def test_init_in_a_read_only_home_names_the_home_and_makes_nothing(self) -> None:
        with _unwritable(self.mh.home):
            result = self.cli("init")
        self.assertEqual(result.code, 1, result.stderr)
        self.assertIn(f"cannot make the folder {self.mh.home_dir}", result.stderr)
        self.assertIn(str(self.mh.home), result.stderr.splitlines()[1])  # the hint: the home, not .bot-bottle
        self.assertNotIn(f"{self.mh.home_dir} must be a folder", result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertFalse(self.mh.home_dir.exists())

    def test_a_failed_write_removes_the_folders_init_made(self) -> None:
        from bot_bottle.cli import init

        with mock.patch.object(init, "_write_examples", side_effect=BotBottleError("disk full")):
            result = self.cli("init")
        self.assertEqual(result.code, 1)
        self.assertFalse(self.mh.home_dir.exists())

    def test_a_failed_write_keeps_folders_that_were_there(self) -> None:
        from bot_bottle.cli import init

        self.mh.bottles_dir.mkdir(parents=True)
        with mock.patch.object(init, "_write_examples", side_effect=BotBottleError("disk full")):
            self.cli("init")
        self.assertEqual(sorted(p.name for p in self.mh.home_dir.iterdir()), ["bottles"])

    def test_init_in_an_empty_home_still_writes_both_examples(self) -> None:
        result = self.cli("init")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertTrue((self.mh.bottles_dir / "dev.md").is_file())
        self.assertTrue((self.mh.agents_dir() / "coder.md").is_file())
        self.assertEqual(self.mh.home_dir.stat().st_mode & 0o777, 0o700)

    def test_list_of_a_home_without_bot_bottle_suggests_init(self) -> None:
        result = self.cli("list")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn("bot-bottle init", result.stdout)


class MissingCredentialTests(_Case):
    """The error names where each missing variable is asked for, not only "the routes' auth"."""

    def refused(self, bottle: str | dict, environ: dict[str, str], *, parent: str | None = None) -> str:
        from bot_bottle import lifecycle, plan as plan_mod

        if parent is not None:
            self.mh.bottle("base", parent)
        self.mh.bottle("dev", bottle)
        self.mh.agent("a", SIMPLE_AGENT)
        manifest = self.load()
        plan = plan_mod.resolve(manifest, environ=environ, images=TEST_IMAGES)
        with self.assertRaises(BotBottleError) as caught:
            lifecycle.collect_secrets(manifest, plan, environ, None)
        self.assertEqual(caught.exception.exit_code, 1)
        self.assertNotIn("routes' auth", caught.exception.hint or "")
        self.assertNotIn("\n", str(caught.exception))
        return str(caught.exception)

    def test_the_provider_token_is_named_at_its_line(self) -> None:
        text = self.refused("agent_provider:\n  template: claude\n  auth_token: MY_CLAUDE_KEY\n", {})
        path = self.mh.bottles_dir / "dev.md"
        self.assertIn(f"MY_CLAUDE_KEY (agent_provider.auth_token at {path}:4)", text)

    def test_the_provider_default_is_named_as_such(self) -> None:
        text = self.refused(SIMPLE_BOTTLE, {})
        self.assertIn("ANTHROPIC_API_KEY (the claude provider's default, as", text)
        self.assertIn("sets no agent_provider.auth_token", text)

    def test_a_route_auth_is_named_with_its_key_and_line(self) -> None:
        text = self.refused("egress:\n  routes:\n    - host: api.example.com\n"
                            "      auth: {scheme: bearer, token_ref: EX_TOKEN}\n", ALL_SET)
        self.assertIn(f"EX_TOKEN (egress.routes[0].auth at {self.mh.bottles_dir / 'dev.md'}:4)", text)
        self.assertNotIn("ANTHROPIC_API_KEY", text)

    def test_a_git_remote_token_is_named(self) -> None:
        text = self.refused("git-gate:\n  repos:\n    lib:\n      url: https://github.com/o/lib.git\n"
                            "      token_ref: LIB_TOKEN\n", ALL_SET)
        self.assertIn("LIB_TOKEN (git-gate.repos.lib.token_ref at", text)

    def test_a_token_asked_for_by_a_parent_bottle_names_the_parent_file(self) -> None:
        text = self.refused("extends: base\n", {}, parent="agent_provider:\n  auth_token: BASE_KEY\n")
        self.assertIn(f"BASE_KEY (agent_provider.auth_token at {self.mh.bottles_dir / 'base.md'}:3)", text)

    def test_an_unset_env_host_variable_is_named_in_the_same_error(self) -> None:
        text = self.refused({"env": {"DSN": "${SENTRY_DSN}"}}, {})
        self.assertIn("ANTHROPIC_API_KEY (", text)
        self.assertIn(f"the agent's env needs too: SENTRY_DSN (env.DSN at {self.mh.bottles_dir / 'dev.md'}:", text)

    def test_an_empty_credential_is_refused_and_named(self) -> None:
        self.assertIn("ANTHROPIC_API_KEY (", self.refused(SIMPLE_BOTTLE, {"ANTHROPIC_API_KEY": ""}))

    def test_values_are_never_in_the_error(self) -> None:
        text = self.refused({"env": {"DSN": "${SENTRY_DSN}", "T": "${PRESENT}"}}, {"PRESENT": "s3cr3t-value"})
        self.assertNotIn("s3cr3t-value", text)
        self.assertNotIn("PRESENT", text)

    def test_a_launch_refuses_before_anything_is_made(self) -> None:
        from bot_bottle import lifecycle, plan as plan_mod

        self.mh.bottle("dev", SIMPLE_BOTTLE)
        self.mh.agent("a", SIMPLE_AGENT)
        manifest = self.load()
        plan = plan_mod.resolve(manifest, environ={}, images=TEST_IMAGES)
        state_root = self.mh.home_dir / "state"
        with self.assertRaises(BotBottleError) as caught:
            lifecycle.run_bottle(manifest, plan, state_root=state_root, environ={}, prompt_fn=None)
        self.assertIn("ANTHROPIC_API_KEY (the claude provider's default", str(caught.exception))
        self.assertFalse(state_root.exists())

    def test_all_set_is_no_error(self) -> None:
        from bot_bottle import lifecycle, plan as plan_mod

        self.mh.bottle("dev", {"env": {"DSN": "${SENTRY_DSN}", "TZ": "UTC"}})
        self.mh.agent("a", SIMPLE_AGENT)
        manifest = self.load()
        environ = {**ALL_SET, "SENTRY_DSN": "d"}
        plan = plan_mod.resolve(manifest, environ=environ, images=TEST_IMAGES)
        resolved, credentials = lifecycle.collect_secrets(manifest, plan, environ, None)
        self.assertEqual(credentials, {"ANTHROPIC_API_KEY": "k"})
        self.assertEqual(resolved.values, {"DSN": "d", "TZ": "UTC"})


class WordingTests(_Case):
    def test_start_and_resume_refuse_a_prompt_without_headless_alike(self) -> None:
        start = self.cli("start", "coder", "--prompt", "x")
        resume = self.cli("resume", "abcdef12", "--prompt", "x")
        self.assertEqual((start.code, resume.code), (2, 2))
        self.assertEqual(start.stderr, resume.stderr)
        self.assertIn("--prompt goes with --headless", start.stderr)

    def test_start_and_resume_refuse_headless_without_a_prompt_alike(self) -> None:
        start = self.cli("start", "coder", "--headless")
        resume = self.cli("resume", "abcdef12", "--headless")
        self.assertEqual(start.stderr, resume.stderr)
        self.assertIn("--headless needs --prompt TEXT", start.stderr)

    def test_help_points_to_the_help_option(self) -> None:
        result = self.cli("help")
        self.assertEqual(result.code, 2)
        self.assertIn("`bot-bottle --help` lists the commands", result.stderr)
        self.assertNotIn("did you mean", result.stderr)

    def test_a_far_guess_is_not_suggested(self) -> None:
        for word in ("bogus", "status", "remove", "xyz", "st"):
            with self.subTest(word=word):
                result = self.cli(word)
                self.assertEqual(result.code, 2)
                self.assertNotIn("did you mean", result.stderr)

    def test_near_slips_are_still_suggested(self) -> None:
        for word, meant in (("stat", "start"), ("lsit", "list"), ("inti", "init"), ("doc", "doctor"),
                            ("resum", "resume"), ("Start", "start"), ("vaildate", "validate")):
            with self.subTest(word=word):
                self.assertIn(f"did you mean '{meant}'?", self.cli(word).stderr)


if __name__ == "__main__":
    unittest.main()
