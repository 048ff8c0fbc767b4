"""The proposal state machine and the checks on an operator's verdict."""

from __future__ import annotations

import itertools
import unittest

from bot_bottle.supervise import proposals as p
from bot_bottle.supervise.proposals import InvalidDecision, InvalidTransition

EGRESS = {"host": "docs.example", "paths": [], "methods": [], "ports": []}
ALLOWED = {
    ("pending", "approved"), ("pending", "modified"), ("pending", "rejected"), ("pending", "expired"),
    ("approved", "applied"), ("approved", "failed"), ("modified", "applied"), ("modified", "failed"),
}


class Transitions(unittest.TestCase):
    def test_exactly_the_documented_moves_are_allowed(self) -> None:
        for current, new in itertools.product(p.STATUSES, repeat=2):
            with self.subTest(current=current, new=new):
                if (current, new) in ALLOWED:
                    self.assertEqual(p.transition(current, new), new)
                    self.assertTrue(p.can_move(current, new))
                else:
                    with self.assertRaises(InvalidTransition):
                        p.transition(current, new)
                    self.assertFalse(p.can_move(current, new))

    def test_errors_name_both_statuses_and_why(self) -> None:
        with self.assertRaises(InvalidTransition) as ctx:
            p.transition("rejected", "applied")
        self.assertIn("from rejected to applied", str(ctx.exception))
        self.assertIn("final", str(ctx.exception))
        with self.assertRaises(InvalidTransition) as ctx:
            p.transition("pending", "applied")
        self.assertIn("approved, expired, modified, rejected", str(ctx.exception))

    def test_unknown_statuses_are_refused(self) -> None:
        with self.assertRaises(InvalidTransition) as ctx:
            p.transition("pending", "maybe")
        self.assertIn("'maybe'", str(ctx.exception))
        with self.assertRaises(InvalidTransition):
            p.is_final("done")

    def test_final_statuses(self) -> None:
        self.assertEqual({s for s in p.STATUSES if p.is_final(s)}, {"rejected", "expired", "applied", "failed"})


class Decide(unittest.TestCase):
    def test_approve(self) -> None:
        v = p.decide("pending", "egress", "approved", reason="ok", operator="ann", now=5)
        self.assertEqual((v.status, v.change, v.operator, v.decided_at), ("approved", None, "ann", 5))
        d = v.decision("egress-1")
        self.assertEqual((d.id, d.verdict, d.reason, d.change), ("egress-1", "approved", "ok", None))

    def test_modify_canonicalises_the_change(self) -> None:
        v = p.decide("pending", "egress", "modified", change={"host": "Docs.Example", "methods": ["get"]},
                     operator="ann", now=5)
        self.assertEqual(v.change, {"host": "docs.example", "paths": [], "methods": ["GET"], "ports": []})
        self.assertEqual(v.decision("egress-1").change, v.change)

    def test_modify_needs_a_valid_change(self) -> None:
        with self.assertRaises(InvalidDecision):
            p.decide("pending", "egress", "modified", operator="ann", now=5)
        with self.assertRaises(InvalidDecision) as ctx:
            p.decide("pending", "egress", "modified", change={"host": "a.example", "paths": ["no-slash"]},
                     operator="ann", now=5)
        self.assertIn("paths[0]", str(ctx.exception))
        with self.assertRaises(InvalidDecision) as ctx:
            p.decide("pending", "capability", "modified", change={"packages": ["rg; rm -rf /"]}, operator="ann", now=5)
        self.assertIn("packages[0]", str(ctx.exception))

    def test_only_modified_carries_a_change(self) -> None:
        with self.assertRaises(InvalidDecision):
            p.decide("pending", "egress", "approved", change=EGRESS, operator="ann", now=5)

    def test_a_rejection_needs_a_reason(self) -> None:
        with self.assertRaises(InvalidDecision) as ctx:
            p.decide("pending", "egress", "rejected", reason="  ", operator="ann", now=5)
        self.assertIn("reason", str(ctx.exception))
        v = p.decide("pending", "egress", "rejected", reason=" not today ", operator="ann", now=5)
        self.assertEqual(v.reason, "not today")

    def test_a_decided_proposal_cannot_be_decided_again(self) -> None:
        for status in ("approved", "rejected", "applied", "failed", "expired"):
            with self.subTest(status=status), self.assertRaises(InvalidTransition):
                p.decide(status, "egress", "approved", operator="ann", now=5)

    def test_unknown_verdicts_and_missing_operators(self) -> None:
        with self.assertRaises(InvalidDecision):
            p.decide("pending", "egress", "applied", operator="ann", now=5)
        with self.assertRaises(InvalidDecision):
            p.decide("pending", "egress", "approved", operator=" ", now=5)

    def test_a_granted_decision_can_be_told_as_rejected_when_it_failed(self) -> None:
        v = p.decide("pending", "capability", "approved", operator="ann", now=5)
        d = v.decision("cap-1", verdict="rejected", reason="not supported on smolmachines")
        self.assertEqual((d.verdict, d.reason, d.change), ("rejected", "not supported on smolmachines", None))


class Helpers(unittest.TestCase):
    def test_effective_payload(self) -> None:
        change = {**EGRESS, "host": "other.example"}
        self.assertEqual(p.effective_payload("approved", EGRESS, None), EGRESS)
        self.assertEqual(p.effective_payload("modified", EGRESS, change), change)
        self.assertEqual(p.effective_payload("applied", EGRESS, change), change)
        with self.assertRaises(InvalidDecision):
            p.effective_payload("modified", EGRESS, None)

    def test_overdue(self) -> None:
        self.assertTrue(p.overdue("pending", 100, 60, 161))
        self.assertFalse(p.overdue("pending", 100, 60, 160))
        self.assertFalse(p.overdue("pending", 100, 60, 161, grace_s=5))
        self.assertFalse(p.overdue("approved", 100, 60, 1000))
        self.assertFalse(p.overdue("pending", 100, None, 1000))


if __name__ == "__main__":
    unittest.main()
