"""Two gaps after the last manifest audit: a token written as the first paragraph of a bottle's
Markdown body (its description when the frontmatter has none), and ``list`` and ``start`` meeting
a manifest folder they cannot list (a read error, not a folder to make writable).

Manifests are literal strings: line 1 is the opening ``---``, so the first YAML line is line 2.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from tests.fixtures import SIMPLE_BOTTLE, ManifestTestCase
from tests.unit.test_manifest_gaps_dec09h import assert_no_command_shows

TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456781"
# Two frontmatter lines: the body's first line is line 5 of the file.
FRONTMATTER = "egress:\n  routes: [example.com]\n"


class BodyDescriptionTokenTests(ManifestTestCase):
    """The body's first paragraph is the bottle's description when no key sets one: a token
    there is refused at its line, under the key 'description', and never shown."""

    def assertRefused(self, err: Any, path: Path, line: int) -> None:
        self.assertManifestError(err, path=path, line=line, key="description", contains="token")
        self.assertNotIn(TOKEN, str(err))
        self.assertNotIn(TOKEN, err.hint or "")
        self.assertIn("paragraph", str(err))

    def test_a_first_paragraph_that_is_a_token(self) -> None:
        path = self.mh.bottle("dev", FRONTMATTER, body=f"{TOKEN}\n\nA dev bottle.\n")
        self.mh.agent("a", {"bottle": "dev"})
        self.assertRefused(self.load_error("a"), path, 5)

    def test_blank_lines_before_it_count(self) -> None:
        path = self.mh.bottle("dev", FRONTMATTER, body=f"\n\n  \n{TOKEN}\n")
        self.mh.agent("a", {"bottle": "dev"})
        self.assertRefused(self.load_error("a"), path, 8)

    def test_lines_counted_in_a_file_with_crlf_endings(self) -> None:
        text = f"---\r\negress:\r\n  routes: [example.com]\r\n---\r\n\r\n{TOKEN}\r\n"
        path = self.mh.write(self.mh.bottles_dir / "dev.md", text)
        self.mh.agent("a", {"bottle": "dev"})
        self.assertRefused(self.load_error("a"), path, 6)

    def test_the_token_on_the_paragraph_s_second_line(self) -> None:
        path = self.mh.bottle("dev", FRONTMATTER, body=f"Deploy key:\n{TOKEN}\n\nMore.\n")
        self.mh.agent("a", {"bottle": "dev"})
        self.assertRefused(self.load_error("a"), path, 6)

    def test_with_other_mistakes_of_the_file(self) -> None:
        path = self.mh.bottle("dev", "bogus: 1\n", body=f"{TOKEN}\n")
        self.mh.agent("a", {"bottle": "dev"})
        err = self.load_error("a")
        found = {(e.line, e.key) for e in err.each()}
        self.assertEqual(found, {(2, "bogus"), (4, "description")})
        self.assertEqual(err.path, path)
        self.assertNotIn(TOKEN, "".join(str(e) + (e.hint or "") for e in err.each()))

    def test_no_command_shows_it(self) -> None:
        self.mh.bottle("dev", FRONTMATTER, body=f"{TOKEN}\n")
        self.mh.agent("a", {"bottle": "dev"})
        assert_no_command_shows(self, self.mh, TOKEN)

    def test_a_description_key_makes_the_body_no_description(self) -> None:
        # The body is then only Markdown notes, never shown as the description.
        self.mh.bottle("dev", FRONTMATTER + "description: A dev bottle\n", body=f"{TOKEN}\n")
        self.mh.agent("a", {"bottle": "dev"})
        self.assertEqual(self.load("a").bottle.description, "A dev bottle")

    def test_ordinary_first_paragraphs_are_kept(self) -> None:
        paragraphs = (
            "A general development bottle with package registries and read-only GitHub API.",
            "# Dev bottle",
            "Pinned to commit 3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39 of the upstream tree.",
            "3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39",
            "sha256:9b2c1f4e8a7d6c5b4a3928171615141312111009f8e7d6c5b4a3928171615141",
            "Docs: https://example.com/docs/setup?ref=main#install and https://github.com/org/repo/pull/123",
            "https://registry.npmjs.org/@scope/package-name/-/package-name-1.2.3.tgz",
            "Builds with GITHUB_TOKEN from the host; never writes it down.",
            "Set it up once:\n\n    export GITHUB_TOKEN=...",
            "For the nightly job, run\n`curl -fsSL -H \"Authorization: Bearer $GITHUB_TOKEN\" "
            "https://api.github.com/repos/org/repo/actions/runs?per_page=100&branch=main | jq '.workflow_runs[0].id'`\n"
            "then `git log --oneline 3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39..HEAD -- src/` and paste the list "
            "into the ticket; the agent reads its notes from ~/.config/bot/notes.md and never prints a credential.",
            "550e8400-e29b-41d4-a716-446655440000 is this bottle's registry id.",
        )
        for text in paragraphs:
            with self.subTest(text=text):
                self.mh.bottle("dev", FRONTMATTER, body=f"\n{text}\n\nMore notes.\n")
                self.mh.agent("a", {"bottle": "dev"})
                self.assertEqual(self.load("a").bottle.description, text.split("\n\n")[0])

    def test_no_body_is_no_description(self) -> None:
        self.mh.bottle("dev", FRONTMATTER)
        self.mh.agent("a", {"bottle": "dev"})
        self.assertEqual(self.load("a").bottle.description, "")


def _denied_iterdir(target: Path) -> Any:
    real = pathlib.Path.iterdir

    def iterdir(self: pathlib.Path) -> Any:
        if self == target:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    return mock.patch.object(pathlib.Path, "iterdir", iterdir)


@contextlib.contextmanager
def _unlistable(folder: Path) -> Iterator[None]:
    """``folder`` cannot be listed: mode 000 where that binds (not root); root reads through any
    mode, so there listing it fails the way the kernel fails it for others."""
    if os.geteuid() == 0:
        with _denied_iterdir(folder):
            yield
        return
    mode = folder.stat().st_mode
    folder.chmod(0)
    try:
        yield
    finally:
        folder.chmod(mode)


class UnreadableFolderCliTests(ManifestTestCase):
    """``list`` and ``start`` name a folder they cannot list as a read error: its own message
    and hint, a non-zero exit, no traceback, and nothing about making a folder writable."""

    def setUp(self) -> None:
        super().setUp()
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        self.mh.agent("a", {"bottle": "dev"})
        self.mh.agent("c", {"bottle": "dev"}, where="cwd")

    def run_blocked(self, folder: Path, *argv: str) -> Any:
        # Past discovery `start` would build a plan and launch: that is never reached here.
        reached = mock.patch("bot_bottle.cli.common.build_plan", side_effect=AssertionError("plan built"))
        with _unlistable(folder), reached:
            with self.assertRaises(PermissionError):
                list(folder.iterdir())
            return self.mh.run_cli(*argv)

    def assertReadError(self, result: Any, folder: Path) -> None:
        self.assertEqual(result.code, 2, result.stdout + result.stderr)
        self.assertIn(str(folder), result.stderr)
        self.assertIn("could not be read", result.stderr)
        self.assertIn("Permission denied", result.stderr)
        self.assertIn("make it readable", result.stderr)
        self.assertNotIn("writable", result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertNotIn("internal error", result.stderr)

    def test_list(self) -> None:
        for where in ("home", "cwd"):
            folder = self.mh.agents_dir(where)
            for argv in (("list",), ("list", "--format", "json")):
                with self.subTest(where=where, argv=argv):
                    self.assertReadError(self.run_blocked(folder, *argv), folder)

    def test_list_with_the_bottles_folder_unreadable(self) -> None:
        folder = self.mh.bottles_dir
        self.assertReadError(self.run_blocked(folder, "list"), folder)

    def test_start_an_agent(self) -> None:
        # The home agent 'a' too: an agent in the unread folder of this one could override it.
        for where in ("home", "cwd"):
            folder = self.mh.agents_dir(where)
            with self.subTest(where=where):
                self.assertReadError(self.run_blocked(folder, "start", "a"), folder)

    def test_start_without_an_agent_name(self) -> None:
        folder = self.mh.agents_dir("cwd")
        self.assertReadError(self.run_blocked(folder, "start"), folder)

    def test_info_too(self) -> None:
        folder = self.mh.agents_dir("cwd")
        self.assertReadError(self.run_blocked(folder, "info", "a"), folder)

    def test_the_ignored_bottles_folder_of_this_one_stops_nothing(self) -> None:
        # Its files are never read, only named in a warning: not knowing them changes nothing.
        folder = self.mh.write(self.mh.cwd / ".bot-bottle" / "bottles" / "x.md", "---\n---\n").parent
        result = self.run_blocked(folder, "list", "--format", "json")
        self.assertEqual(result.code, 0, result.stdout + result.stderr)
        self.assertIn('"a"', result.stdout)
        self.assertIn('"c"', result.stdout)

    def test_readable_folders_list_as_before(self) -> None:
        result = self.mh.run_cli("list", "--format", "json")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn('"c"', result.stdout)
