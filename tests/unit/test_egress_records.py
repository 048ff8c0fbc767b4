"""Egress log records: fields, levels, and no header value, query string or secret ever."""

from __future__ import annotations

import json
import unittest

from bot_bottle.sidecar.egress import records
from bot_bottle.sidecar.egress.core import RequestFacts, decide
from bot_bottle.sidecar.egress.policy import Policy

P = Policy.from_dict({"version": 2, "log": 2, "routes": [{"host": "a.example"},
                                                         {"host": "f.example", "tls_passthrough": True}]})
SECRET = "sk-live-0123456789abcdef"


def facts(host: str = "a.example", path: str = "/v1/x?token=" + SECRET, **kw) -> RequestFacts:
    return RequestFacts.make(scheme="https", host=host, port=443, method="POST", path=path,
                             headers={"Authorization": f"Bearer {SECRET}", "Host": host}, **kw)


class RecordTest(unittest.TestCase):
    def test_fields(self) -> None:
        f = facts()
        record = records.decision_record(decide(f, P), f, records.Outcome(
            request_bytes=10, response_bytes=20, status=201, duration_ms=1.23456, detectors=("aws-key",), action="redact"),
            now=0.5)
        self.assertEqual(record["ts"], "1970-01-01T00:00:00.500Z")
        self.assertEqual(record["decision"], "allow")
        self.assertEqual(record["rule"], "route")
        self.assertEqual(record["route"], "routes[0] (a.example)")
        self.assertEqual((record["host"], record["port"], record["method"]), ("a.example", 443, "POST"))
        self.assertEqual(record["path"], "/v1/x")
        self.assertEqual((record["request_bytes"], record["response_bytes"], record["status"]), (10, 20, 201))
        self.assertEqual(record["duration_ms"], 1.23)
        self.assertEqual(record["detectors"], ["aws-key"])
        self.assertEqual(record["dlp_action"], "redact")
        self.assertNotIn("tls", record)

    def test_never_header_values_or_query(self) -> None:
        f = facts()
        for verdict in (decide(f, P), decide(facts("evil.example"), P)):
            line = records.to_line(records.decision_record(verdict, f))
            self.assertNotIn(SECRET, line)
            self.assertNotIn("token=", line)
            self.assertNotIn("Bearer", line)

    def test_fragment_and_long_paths(self) -> None:
        self.assertEqual(records.strip_query("/a#frag"), "/a")
        self.assertEqual(len(records.strip_query("/" + "x" * 1000)), records.PATH_LIMIT)

    def test_tunnel_records_say_how_tls_is_handled(self) -> None:
        for host, how in (("a.example", "intercept"), ("f.example", "passthrough")):
            with self.subTest(host=host):
                f = RequestFacts.make(scheme="https", host=host, port=443, method="CONNECT", path="", is_connect=True)
                self.assertEqual(records.decision_record(decide(f, P), f)["tls"], how)

    def test_path_override_for_a_redacted_url(self) -> None:
        f = facts(path=f"/leak/{SECRET}")
        record = records.decision_record(decide(f, P), f, path="/leak/[redacted]")
        self.assertEqual(record["path"], "/leak/[redacted]")

    def test_error_is_bounded(self) -> None:
        f = facts()
        record = records.decision_record(decide(f, P), f, records.Outcome(error="x" * 1000))
        self.assertEqual(len(record["error"]), records.REASON_LIMIT)


class LevelTest(unittest.TestCase):
    def test_levels(self) -> None:
        allow = {"decision": "allow"}
        deny = {"decision": "deny"}
        event = {"decision": "allow", "detectors": ["jwt"]}
        action = {"decision": "allow", "dlp_action": "redact"}
        for level, wanted in ((0, (False, False, False, False)), (1, (False, True, True, True)),
                              (2, (True, True, True, True))):
            with self.subTest(level=level):
                self.assertEqual(tuple(records.should_log(level, r) for r in (allow, deny, event, action)), wanted)


class ScrubberTest(unittest.TestCase):
    def test_scrubs_every_string_field(self) -> None:
        scrub = records.Scrubber([SECRET, "abc", "another-secret"])
        record = {"path": f"/x/{SECRET}/y", "host": "another-secret.evil", "n": 5, "list": [SECRET], "d": {"k": SECRET}}
        out = scrub.record(record)
        self.assertNotIn(SECRET, json.dumps(out))
        self.assertNotIn("another-secret", json.dumps(out))
        self.assertEqual(out["path"], "/x/[redacted]/y")
        self.assertEqual(out["n"], 5)

    def test_short_values_are_left_alone(self) -> None:
        self.assertEqual(records.Scrubber(["abc"]).text("abcdef"), "abcdef")

    def test_longest_first(self) -> None:
        scrub = records.Scrubber(["secret", "secret-long-value"])
        self.assertEqual(scrub.text("x secret-long-value y"), "x [redacted] y")

    def test_empty_scrubber_returns_record_as_is(self) -> None:
        record = {"a": "b"}
        self.assertIs(records.Scrubber().record(record), record)


if __name__ == "__main__":
    unittest.main()
