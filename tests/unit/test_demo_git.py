"""The demo's git-gate rows: verdicts from the scripted agent's report and the upstream's state."""

from __future__ import annotations

import unittest

from bot_bottle.demo import GitUpstream, evaluate_git

SECRET = "3f1c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a"
CLEAN = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
REJECTED = (
    "remote: git-gate: push rejected: 1 possible secret(s) in what this push adds; nothing was sent upstream. "
    f"remote: git-gate:   commit {SECRET[:12]}: file deploy.env line 2: detector aws-access-key-id "
    "To https://git.example/demo.git  ! [remote rejected] HEAD -> main (pre-receive hook declined)"
)
OWN = "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f"
OWN_REJECTED = (
    "remote: git-gate: push rejected: 1 possible secret(s) in what this push adds; nothing was sent upstream. "
    f"remote: git-gate:   commit {OWN[:12]}: file db.env line 1: detector known-secret:DEMO_DB_PASSWORD "
    "To https://git.example/demo.git  ! [remote rejected] HEAD -> main (pre-receive hook declined)"
)
GOOD = {
    "git-clone": (0, ""),
    "git-secret-commit": (0, SECRET),
    "git-push-secret": (1, REJECTED),
    "git-own-secret-commit": (0, OWN),
    "git-push-own-secret": (1, OWN_REJECTED),
    "git-push-clean": (0, "To https://git.example/demo.git    0a1b2c3..a1b2c3d  HEAD -> main"),
    "git-clean-commit": (0, CLEAN),
}
LANDED = GitUpstream(main=CLEAN, has_secret_commit=False, receive_packs=1)


class DemoGitRows(unittest.TestCase):
    def test_all_held_and_the_reason_is_shown(self) -> None:
        rows = evaluate_git(dict(GOOD), LANDED)
        self.assertTrue(all(r.held for r in rows), rows)
        self.assertIn("file deploy.env line 2", rows[1].observed)
        self.assertIn("aws-access-key-id", rows[1].observed)
        self.assertIn(SECRET[:12], rows[1].observed)
        self.assertIn("file db.env line 1", rows[2].observed)
        self.assertIn("known-secret:DEMO_DB_PASSWORD", rows[2].observed)

    def test_each_failure_is_reported(self) -> None:
        cases = {
            "clone failed": ({**GOOD, "git-clone": (128, "fatal: remote error")}, LANDED),
            "secret push accepted": ({**GOOD, "git-push-secret": (0, "To https://git.example/demo.git")}, LANDED),
            "no reason given": ({**GOOD, "git-push-secret": (1, "remote: push refused")}, LANDED),
            "another commit named": ({**GOOD, "git-secret-commit": (0, CLEAN)}, LANDED),
            "secret reached upstream": (dict(GOOD), GitUpstream(main=CLEAN, has_secret_commit=True, receive_packs=1)),
            "own secret push accepted": ({**GOOD, "git-push-own-secret": (0, "To https://git.example/demo.git")}, LANDED),
            "own secret found as something else": (
                {**GOOD, "git-push-own-secret": (1, OWN_REJECTED.replace("known-secret:DEMO_DB_PASSWORD", "entropy"))},
                LANDED),
            "own secret's value shown": (
                {**GOOD, "git-push-own-secret": (1, OWN_REJECTED + " db_password = demo-xyz")}, LANDED),
            "own secret reached upstream": (
                dict(GOOD), GitUpstream(main=CLEAN, has_own_secret_commit=True, receive_packs=1)),
            "clean push failed": ({**GOOD, "git-push-clean": (1, "rejected")}, LANDED),
            "upstream unchanged": (dict(GOOD), GitUpstream(main="0" * 40, receive_packs=1)),
            "two pushes reached it": (dict(GOOD), GitUpstream(main=CLEAN, receive_packs=2)),
            "nothing ran": ({}, GitUpstream()),
        }
        for name, (results, upstream) in cases.items():
            with self.subTest(name):
                self.assertFalse(all(r.held for r in evaluate_git(results, upstream)))


if __name__ == "__main__":
    unittest.main()
