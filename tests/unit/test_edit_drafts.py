"""``bot-bottle edit`` never writes, chmods or reads through a link a repository planted beside
its agent files, and offers as a draft only a file an earlier edit of this user kept."""

from __future__ import annotations

import os
import sys
import unittest
from pathlib import Path
from unittest import mock

from tests.fixtures import CliResult, ManifestTestCase
from tests.unit.test_cli_manifests import EDITOR_SCRIPT, VALID_BOTTLE

INVALID = "---\nbottle: [\n---\n"


class EditDraftLinkTests(ManifestTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.script = self.mh.raw("editor.py", EDITOR_SCRIPT, where="cwd")
        self.new_text = self.mh.cwd / "new-text.md"
        self.mh.bottle("dev", VALID_BOTTLE)
        # A cloned repository's agent, next to the link the repository planted.
        self.agent = self.mh.agent("helper", "bottle: dev\n", where="cwd")
        self.agents = self.agent.parent
        self.victim = self.mh.cwd / "victim.txt"
        self.victim.write_text("the user's own file\n", encoding="utf-8")
        self.victim.chmod(0o644)

    def edit(self, new_text: str, *, answers: list[bool] | None = None) -> CliResult:
        """Run the edit; ``answers`` are what the user at a terminal answers (none: no terminal)."""
        self.new_text.write_text(new_text, encoding="utf-8")
        env = {"EDITOR": f"{sys.executable} {self.script}", "NEW_TEXT_FILE": str(self.new_text)}
        if answers is None:
            return self.mh.run_cli("edit", "helper", env=env, unset=("VISUAL",))
        with mock.patch("bot_bottle.cli.edit._ask", side_effect=answers):
            return self.mh.run_cli("edit", "helper", env=env, unset=("VISUAL",))

    def assertVictimUntouched(self) -> None:
        self.assertEqual(self.victim.read_text(encoding="utf-8"), "the user's own file\n")
        self.assertEqual(self.victim.stat().st_mode & 0o777, 0o644)

    def test_a_rejected_draft_never_goes_through_a_planted_symlink(self) -> None:
        draft = self.agents / ".helper.md.draft"
        draft.symlink_to(self.victim)
        result = self.edit(INVALID)
        self.assertEqual(result.code, 2, result.stderr)
        self.assertVictimUntouched()
        # The edit is kept all the same: a private file of its own in place of the link.
        self.assertFalse(draft.is_symlink())
        self.assertEqual(draft.read_text(encoding="utf-8"), INVALID)
        self.assertEqual(draft.stat().st_mode & 0o777, 0o600)
        self.assertIn(f"your edit is kept at {draft}", result.stderr)
        # The draft kept in the link's place is this user's own: offered, and taken up.
        editor_log = self.mh.cwd / "seen.log"
        with mock.patch.dict(os.environ, {"EDITOR_LOG": str(editor_log)}):
            result = self.edit("---\nbottle: dev\ncolor: blue\n---\n", answers=[True])
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn("bottle: [", editor_log.read_text(encoding="utf-8"))
        self.assertFalse(draft.exists())
        self.assertVictimUntouched()

    def test_a_draft_never_offered_is_not_lost_by_a_later_save(self) -> None:
        draft = self.agents / ".helper.md.draft"
        self.assertEqual(self.edit(INVALID).code, 2)
        self.assertEqual(draft.read_text(encoding="utf-8"), INVALID)
        # No terminal: the draft cannot be offered, and saving another edit keeps it.
        result = self.edit("---\nbottle: dev\ncolor: green\n---\n")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertEqual(draft.read_text(encoding="utf-8"), INVALID)
        self.assertIn(f"still kept at {draft}", result.stdout)
        # Declined at a terminal: gone once the other edit is saved.
        result = self.edit("---\nbottle: dev\ncolor: red\n---\n", answers=[False])
        self.assertEqual(result.code, 0, result.stderr)
        self.assertFalse(draft.exists())

    def test_a_directory_planted_as_the_draft_does_not_lose_the_edit(self) -> None:
        (self.agents / ".helper.md.draft").mkdir()
        result = self.edit(INVALID)
        self.assertEqual(result.code, 2, result.stderr)
        self.assertNotIn("internal error", result.stderr)
        kept = [p for p in self.agents.glob(".helper.md.draft-*")]
        self.assertEqual(len(kept), 1, result.stderr)
        self.assertEqual(kept[0].read_text(encoding="utf-8"), INVALID)
        self.assertIn(str(kept[0]), result.stderr)

    def test_saving_never_goes_through_a_planted_temporary_name(self) -> None:
        (self.agents / ".helper.md.saving").symlink_to(self.victim)
        new = "---\nbottle: dev\ncolor: red\n---\n"
        result = self.edit(new)
        self.assertEqual(result.code, 0, result.stderr)
        self.assertVictimUntouched()
        self.assertFalse(self.agent.is_symlink())
        self.assertEqual(self.agent.read_text(encoding="utf-8"), new)

    def test_a_planted_symlink_is_never_offered_as_a_draft(self) -> None:
        secret = self.mh.cwd / "secret.md"
        secret.write_text("---\nbottle: dev\ndescription: the user's secret\n---\n", encoding="utf-8")
        (self.agents / ".helper.md.draft").symlink_to(secret)
        editor_log = self.mh.cwd / "seen.log"
        with mock.patch.dict(os.environ, {"EDITOR_LOG": str(editor_log)}):
            result = self.edit("---\nbottle: dev\n---\n", answers=[True])
        self.assertEqual(result.code, 0, result.stderr)
        self.assertNotIn("the user's secret", editor_log.read_text(encoding="utf-8"))
        self.assertIn("ignoring", result.stderr)

    def test_a_draft_checked_out_with_the_repository_is_not_offered(self) -> None:
        draft = self.agents / ".helper.md.draft"
        draft.write_text("---\nbottle: dev\ndescription: from the repository\n---\n", encoding="utf-8")
        draft.chmod(0o644)  # as a checkout writes it; `edit` keeps its drafts private
        editor_log = self.mh.cwd / "seen.log"
        with mock.patch.dict(os.environ, {"EDITOR_LOG": str(editor_log)}):
            result = self.edit("---\nbottle: dev\n---\n", answers=[True])
        self.assertEqual(result.code, 0, result.stderr)
        self.assertNotIn("from the repository", editor_log.read_text(encoding="utf-8"))
        # Not ours to remove either.
        self.assertTrue(draft.is_file())


if __name__ == "__main__":
    unittest.main()
