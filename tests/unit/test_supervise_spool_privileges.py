"""What the sidecar's daemons write in the spool can only deny or narrow, never grant.

Decisions and grants.json are the host's ``ctl``'s (root) alone in the sidecar image; a daemon's
expiry goes to ``expired/`` (read as ``expired`` whatever it says, and standing over a decision),
and the git-gate's use of a push grant to ``push-uses/`` (which only marks grants used).
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle.sidecar.supervise import channel, ctl
from bot_bottle.sidecar.supervise.channel import (
    AlreadyDecided,
    Decision,
    Proposal,
    Spool,
    add_grant,
    consume_push,
    read_grants,
    remove_grant,
)

SHA_A, SHA_B = "a" * 40, "b" * 40
PUSH = {"kind": "push", "repo": "app", "ref": "refs/heads/x", "old": SHA_A, "new": SHA_B}


class _Spool(unittest.TestCase):
    def setUp(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bb-spool-privs-"))
        self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)
        self.spool = Spool(self.root)
        self.spool.submit(Proposal("p-1", "egress", "why", {"host": "a.example"}, 60, created_at=10))

    def decide(self, request: dict) -> dict:
        out = io.StringIO()
        ctl.main(["decide", "--root", str(self.root)], stdin=io.StringIO(json.dumps(request)), stdout=out)
        return json.loads(out.getvalue())


class ExpiryOnlyDeniesTest(_Spool):
    def test_an_expiry_is_written_apart_from_the_decisions(self) -> None:
        self.assertEqual(self.spool.expire("p-1", "gone").verdict, "expired")
        self.assertTrue((self.spool.expired_dir / "p-1.json").is_file())
        self.assertFalse((self.spool.decisions_dir / "p-1.json").exists(), "a daemon never writes decisions")
        self.assertEqual(self.spool.pending(), [])
        self.assertTrue((self.spool.archive_dir / "p-1.json").is_file())

    def test_an_expiry_file_that_says_approved_still_denies(self) -> None:
        self.spool.ensure()
        forged = Decision("p-1", "approved", "granted by me", operator="op").to_dict()
        (self.spool.expired_dir / "p-1.json").write_text(json.dumps(forged))
        decision = self.spool.decision_for("p-1")
        assert decision is not None
        self.assertEqual((decision.verdict, decision.granted, decision.operator), ("expired", False, "timeout"))
        (self.spool.expired_dir / "p-1.json").write_text("not json")
        self.assertEqual(self.spool.decision_for("p-1").verdict, "expired")  # type: ignore[union-attr]

    def test_an_expiry_stands_over_a_decision(self) -> None:
        self.spool.ensure()
        (self.spool.decisions_dir / "p-1.json").write_text(json.dumps(Decision("p-1", "approved").to_dict()))
        (self.spool.expired_dir / "p-1.json").write_text(json.dumps(Decision("p-1", "expired").to_dict()))
        self.assertEqual(self.spool.decision_for("p-1").verdict, "expired")  # type: ignore[union-attr]

    def test_the_host_cannot_approve_an_expired_proposal_nor_grant_for_it(self) -> None:
        self.spool.expire("p-1")
        grant = {"kind": "route", "route": {"host": "a.example"}}
        answer = self.decide({"decision": Decision("p-1", "approved").to_dict(), "grant": grant})
        self.assertEqual((answer["ok"], answer["type"]), (False, "already-decided"))
        self.assertEqual(read_grants(self.root)["routes"], [])

    def test_an_expiry_landing_between_takes_the_decision_and_its_grant_back(self) -> None:
        real = channel._create_atomic

        def then_expiry(path: Path, data: dict, mode: int = 0o600) -> bool:
            made = real(path, data, mode)
            if path.parent.name == channel.DECISIONS_DIR:  # an expiry that did not wait for the lock
                real(self.spool.expired_dir / path.name, Decision("p-1", "expired").to_dict())
            return made

        grant = {"kind": "route", "route": {"host": "a.example"}}
        with mock.patch.object(channel, "_create_atomic", then_expiry):
            answer = self.decide({"decision": Decision("p-1", "approved").to_dict(), "grant": grant})
        self.assertEqual(answer["type"], "already-decided")
        self.assertEqual(self.spool.decision_for("p-1").verdict, "expired")  # type: ignore[union-attr]
        self.assertFalse((self.spool.decisions_dir / "p-1.json").exists())
        self.assertEqual(read_grants(self.root)["routes"], [])

    def test_expire_after_the_hosts_decision_returns_that_decision(self) -> None:
        self.assertTrue(self.decide({"decision": Decision("p-1", "rejected", "no").to_dict(), "grant": None})["ok"])
        self.assertEqual(self.spool.expire("p-1").verdict, "rejected")
        self.assertFalse((self.spool.expired_dir / "p-1.json").exists())


class PushUsesOnlyNarrowTest(_Spool):
    def test_the_gate_records_a_use_without_writing_the_grants(self) -> None:
        add_grant(self.root, PUSH)
        before = channel.grants_path(self.root).read_bytes()
        self.assertTrue(consume_push(self.root, "app", "refs/heads/x", SHA_A, SHA_B))
        self.assertFalse(consume_push(self.root, "app", "refs/heads/x", SHA_A, SHA_B))
        self.assertEqual(channel.grants_path(self.root).read_bytes(), before)
        self.assertEqual(len(list((self.root / channel.PUSH_USES_DIR).glob("*.json"))), 1)
        (entry,) = read_grants(self.root)["pushes"]
        self.assertTrue(entry["used"])
        self.assertIsInstance(entry["used_at"], float)

    def test_a_use_record_without_a_grant_grants_nothing(self) -> None:
        # Records beyond the grants (or for none) change nothing: a use only takes a grant away.
        folder = self.root / channel.PUSH_USES_DIR
        folder.mkdir()
        key = channel.push_key({"repo": "app", "ref": "refs/heads/x", "old": SHA_A, "new": SHA_B})
        for n in range(3):
            (folder / f"{key}-{n}.json").write_text("{}")
        self.assertEqual(read_grants(self.root)["pushes"], [])
        self.assertFalse(consume_push(self.root, "app", "refs/heads/x", SHA_A, SHA_B))
        add_grant(self.root, PUSH)
        self.assertTrue(read_grants(self.root)["pushes"][0]["used"])

    def test_the_same_push_granted_again_is_used_once_more(self) -> None:
        self.assertTrue(add_grant(self.root, PUSH))
        self.assertFalse(add_grant(self.root, PUSH), "an identical unused grant is there")
        self.assertTrue(consume_push(self.root, "app", "refs/heads/x", SHA_A, SHA_B))
        self.assertTrue(add_grant(self.root, PUSH))
        self.assertEqual([p["used"] for p in read_grants(self.root)["pushes"]], [True, False])
        self.assertTrue(consume_push(self.root, "app", "refs/heads/x", SHA_A, SHA_B))
        self.assertFalse(consume_push(self.root, "app", "refs/heads/x", SHA_A, SHA_B))
        self.assertEqual([p["used"] for p in read_grants(self.root)["pushes"]], [True, True])

    def test_taking_back_an_unused_grant_leaves_the_used_one(self) -> None:
        add_grant(self.root, PUSH)
        consume_push(self.root, "app", "refs/heads/x", SHA_A, SHA_B)
        add_grant(self.root, PUSH)
        self.assertTrue(remove_grant(self.root, PUSH))
        self.assertFalse(remove_grant(self.root, PUSH))
        self.assertEqual([p["used"] for p in read_grants(self.root)["pushes"]], [True])

    def test_an_older_spools_used_grants_stay_used(self) -> None:
        # grants.json as an older gate wrote it: the use in the file itself.
        old = dict(PUSH, used=True, used_at=5.0)
        del old["kind"]
        channel.grants_path(self.root).write_text(json.dumps({"routes": [], "pushes": [old], "token_uses": []}))
        self.assertFalse(consume_push(self.root, "app", "refs/heads/x", SHA_A, SHA_B))
        self.assertTrue(add_grant(self.root, PUSH))
        self.assertTrue(consume_push(self.root, "app", "refs/heads/x", SHA_A, SHA_B))
        self.assertEqual([p.get("used_at") is not None for p in read_grants(self.root)["pushes"]], [True, True])


class ArchivingAnotherAccountsProposalTest(_Spool):
    def test_pending_leaves_a_decided_proposal_it_may_not_move(self) -> None:
        self.spool.ensure()
        (self.spool.expired_dir / "p-1.json").write_text(json.dumps(Decision("p-1", "expired").to_dict()))
        with mock.patch.object(channel.os, "replace", side_effect=PermissionError(1, "Operation not permitted")):
            self.assertEqual(self.spool.pending(), [])
        self.assertTrue((self.spool.proposals_dir / "p-1.json").exists())

    def test_the_host_archives_a_copy_when_it_may_not_touch_the_file(self) -> None:
        with mock.patch.object(channel.os, "utime", side_effect=PermissionError(1, "not permitted")):
            self.assertTrue(self.decide({"decision": Decision("p-1", "rejected").to_dict(), "grant": None})["ok"])
        self.assertEqual(self.spool.get("p-1").id, "p-1")  # type: ignore[union-attr]
        self.assertEqual([p.name for p in self.spool.archive_dir.iterdir()], ["p-1.json"])


if __name__ == "__main__":
    unittest.main()
