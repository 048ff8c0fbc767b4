"""``bot-bottle logs``' text lines from a damaged or hand-edited log: a field of the wrong type
is left out, the rest of the line is shown, and nothing crashes."""

from __future__ import annotations

import json
import unittest
from unittest import mock

from bot_bottle.cli import logs
from tests.fixtures import ManifestHome

GOOD = {"ts": "2026-01-02T03:04:05.678Z", "decision": "deny", "rule": "default-deny", "host": "evil.example",
        "port": 443, "method": "POST", "path": "/steal", "status": 403, "duration_ms": 1.5,
        "reason": "no route allows host evil.example"}


class FormatTextTypesTest(unittest.TestCase):
    def test_a_duration_that_is_not_a_number_is_left_out(self) -> None:
        line = logs.format_text({"decision": "allow", "duration_ms": "slow"}).plain
        self.assertIn("ALLOW", line)
        self.assertNotIn("slow", line)
        self.assertNotIn("ms", line)
        # A well-formed record reads as it always did.
        line = logs.format_text(GOOD).plain
        for part in ("03:04:05.678", "DENY", "POST", "evil.example:443/steal", " 403", "1.5ms",
                     "rule default-deny", "no route allows host evil.example"):
            self.assertIn(part, line)

    def test_each_field_of_the_wrong_type_is_left_out_and_the_rest_shown(self) -> None:
        wrong = {"ts": ["2026"], "decision": ["deny"], "host": {"a": 1}, "port": None, "method": {"x": 1},
                 "path": ["/a"], "status": {"code": 1}, "duration_ms": True, "rule": [1], "route": {"r": 1},
                 "detectors": {"d": 7}, "dlp_action": ["redact"], "reason": {"why": 1}, "error": ["e"]}
        for field, value in wrong.items():
            with self.subTest(field=field):
                line = logs.format_text({**GOOD, field: value}).plain
                self.assertNotIn(repr(value), line)
                if field != "host":
                    self.assertIn("evil.example", line)
                if field != "method":
                    self.assertIn("POST", line)

    def test_detectors_as_one_word_or_with_odd_entries(self) -> None:
        self.assertIn("detectors github-token", logs.format_text({**GOOD, "detectors": "github-token"}).plain)
        line = logs.format_text({**GOOD, "detectors": ["aws", None, {"x": 1}, "gh"]}).plain
        self.assertIn("detectors aws,gh", line)


class SavedLogCommandTest(unittest.TestCase):
    def test_logs_of_a_saved_log_with_a_wrong_type(self) -> None:
        mh = ManifestHome.for_test(self)
        saved = mh.home / ".bot-bottle" / "state" / "abcd1234" / "egress.jsonl"
        saved.parent.mkdir(parents=True)
        saved.write_text(json.dumps({"decision": "allow", "duration_ms": "slow"}) + "\n" + json.dumps(GOOD) + "\n")
        with mock.patch.object(logs, "_container_state", return_value=None):  # no engine is asked
            result = mh.run_cli("logs", "abcd1234")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertNotIn("internal error", result.stderr)
        self.assertIn("ALLOW", result.stdout)
        self.assertIn("evil.example:443/steal", result.stdout)


if __name__ == "__main__":
    unittest.main()
