"""Ref updates of a push: their kind, the revisions each adds, and how they are repeated upstream."""

from __future__ import annotations

import unittest

from bot_bottle.sidecar.git_gate.refs import RefUpdate, RefUpdateError, added_rev_args, is_zero, parse_updates, push_args

Z = "0" * 40
A = "a" * 40
B = "b" * 40
C = "c" * 40


class ClassifyTest(unittest.TestCase):
    def test_kinds(self) -> None:
        self.assertEqual(RefUpdate(Z, A, "refs/heads/new").kind, "create")
        self.assertEqual(RefUpdate(A, B, "refs/heads/main").kind, "update")
        self.assertEqual(RefUpdate(A, Z, "refs/heads/old").kind, "delete")
        self.assertTrue(is_zero("0" * 64))

    def test_parse_hook_input(self) -> None:
        updates = parse_updates(f"{A} {B} refs/heads/main\n\n{Z} {C} refs/tags/v1\n")
        self.assertEqual(updates, [RefUpdate(A, B, "refs/heads/main"), RefUpdate(Z, C, "refs/tags/v1")])
        self.assertEqual(parse_updates(""), [])
        for bad in (f"{A} {B}", f"{A} nothex refs/heads/x", f"{A} {B} main"):
            with self.subTest(bad=bad), self.assertRaises(RefUpdateError):
                parse_updates(bad)


class RangesTest(unittest.TestCase):
    def test_update_scans_old_to_new_minus_published(self) -> None:
        self.assertEqual(RefUpdate(A, B, "refs/heads/main").rev_args(), (B, f"^{A}", "--not", "--all"))

    def test_create_scans_what_no_ref_has(self) -> None:
        self.assertEqual(RefUpdate(Z, A, "refs/heads/new").rev_args(), (A, "--not", "--all"))

    def test_delete_scans_nothing(self) -> None:
        self.assertEqual(RefUpdate(A, Z, "refs/heads/old").rev_args(), ())

    def test_whole_push_combines_tips_once(self) -> None:
        updates = [RefUpdate(A, B, "refs/heads/main"), RefUpdate(Z, B, "refs/heads/copy"), RefUpdate(C, Z, "refs/heads/gone"),
                   RefUpdate(Z, C, "refs/tags/v1")]
        # Every old tip is a ref the mirror has, so --not --all already excludes it.
        self.assertEqual(added_rev_args(updates), (B, C, "--not", "--all"))
        self.assertEqual(added_rev_args([RefUpdate(A, Z, "refs/heads/gone")]), ())
        self.assertEqual(added_rev_args([]), ())


class ForwardTest(unittest.TestCase):
    def test_each_update_is_a_compare_and_swap(self) -> None:
        self.assertEqual(push_args("URL", [RefUpdate(A, B, "refs/heads/main")]),
                         ["--porcelain", f"--force-with-lease=refs/heads/main:{A}", "URL", f"{B}:refs/heads/main"])
        self.assertEqual(push_args("URL", [RefUpdate(Z, B, "refs/heads/new")]),
                         ["--porcelain", "--force-with-lease=refs/heads/new:", "URL", f"{B}:refs/heads/new"])
        self.assertEqual(push_args("URL", [RefUpdate(A, Z, "refs/heads/old")]),
                         ["--porcelain", f"--force-with-lease=refs/heads/old:{A}", "URL", ":refs/heads/old"])

    def test_several_updates_are_atomic(self) -> None:
        args = push_args("URL", [RefUpdate(A, B, "refs/heads/main"), RefUpdate(C, Z, "refs/heads/old")])
        self.assertEqual(args[0], "--atomic")
        self.assertEqual(args[-3:], ["URL", f"{B}:refs/heads/main", ":refs/heads/old"])


if __name__ == "__main__":
    unittest.main()
