"""Text a cloned repository chose, as ``bot-bottle info`` shows it: never a terminal escape."""

from __future__ import annotations

import unittest

from tests.fixtures import ManifestHome


class InfoNoteTest(unittest.TestCase):
    def test_the_folder_of_an_agent_that_wins_is_shown_inert(self) -> None:
        # The note naming the working folder's agent quoted the folder's name raw: a repository
        # cloned under a name with a title-setting escape set the operator's terminal title.
        mh = ManifestHome.for_test(self)
        mh.cwd = mh.cwd.parent / "repo\x1b]0;owned\x07\u202e"
        mh.cwd.mkdir()
        mh.bottle("dev", {"egress": {"routes": ["example.com"]}})
        mh.agent("coder", {"bottle": "dev"})
        mh.agent("coder", {"bottle": "dev"}, where="cwd")
        result = mh.run_cli("info", "coder")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn("wins over", result.stdout)
        for char in ("\x1b", "\x07", "\u202e"):
            self.assertNotIn(char, result.stdout)
        self.assertIn("repo\\x1b]0;owned\\x07\\u202e", result.stdout)


if __name__ == "__main__":
    unittest.main()
