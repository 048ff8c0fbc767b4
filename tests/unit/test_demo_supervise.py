"""The demo's supervise row holds only when every step was observed as it should be."""

from __future__ import annotations

import json
import unittest

from bot_bottle.demo import supervise as row

GOOD = dict(before="403", verdict="approved", status="applied", after="200", after_body="hello from docs.example\n")


class SuperviseRowTest(unittest.TestCase):
    def test_holds_when_refused_then_approved_applied_and_answered(self) -> None:
        self.assertTrue(row.evaluate(row.SuperviseSeen(**GOOD)).held)

    def test_fails_on_any_step_that_did_not_happen(self) -> None:
        for key, bad in (("before", "200"), ("verdict", "rejected"), ("status", "failed"), ("after", "403"),
                         ("after_body", "hello from evil.example")):
            with self.subTest(key=key):
                seen = row.SuperviseSeen(**{**GOOD, key: bad})
                self.assertFalse(row.evaluate(seen).held)

    def test_an_error_fails_the_row_and_is_shown(self) -> None:
        outcome = row.evaluate(row.SuperviseSeen(**GOOD, error="the proposal never reached the operator's store"))
        self.assertFalse(outcome.held)
        self.assertIn("never reached", outcome.observed)

    def test_verdict_read_from_the_mcp_answer(self) -> None:
        answer = {"jsonrpc": "2.0", "id": 1,
                  "result": {"content": [{"type": "text", "text": json.dumps({"verdict": "approved"})}]}}
        self.assertEqual(row._verdict(json.dumps(answer)), "approved")
        self.assertTrue(row._verdict("curl: (7) failed").startswith("(no verdict"))


if __name__ == "__main__":
    unittest.main()
