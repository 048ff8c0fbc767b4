"""The host's channel into a sidecar's spool: ctl verbs, JSON in and out, errors as one line."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from bot_bottle.sidecar.supervise import ctl
from bot_bottle.sidecar.supervise.channel import Decision, Proposal, Spool, read_grants

SHA_A = "a" * 40
SHA_B = "b" * 40


class CtlTests(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name) / "spool"
        self.log = Path(tmp.name) / "egress.jsonl"
        self.spool = Spool(self.root)

    def call(self, verb: str, request: object | None = None) -> tuple[int, dict]:
        stdin = io.StringIO("" if request is None else json.dumps(request))
        stdout = io.StringIO()
        code = ctl.main([verb, "--root", str(self.root), "--events-log", str(self.log)], stdin, stdout)
        lines = stdout.getvalue().splitlines()
        self.assertEqual(len(lines), 1, stdout.getvalue())
        return code, json.loads(lines[0])

    def test_pending_lists_undecided_oldest_first(self) -> None:
        self.assertEqual(self.call("pending"), (0, {"proposals": []}))
        a = self.spool.submit(Proposal("p-a", "egress", "docs", {"host": "a.example"}, 60, created_at=2))
        self.spool.submit(Proposal("p-b", "egress", "docs", {"host": "b.example"}, 60, created_at=1))
        self.spool.submit(Proposal("p-c", "capability", "jq", {"packages": ["jq"]}, 60, created_at=3))
        self.spool.decide(Decision("p-c", "rejected", "no"))
        code, out = self.call("pending")
        self.assertEqual(code, 0)
        self.assertEqual([p["id"] for p in out["proposals"]], ["p-b", "p-a"])
        self.assertEqual(Proposal.from_dict(out["proposals"][1]), a)

    def test_decide_writes_grant_then_decision(self) -> None:
        self.spool.submit(Proposal("p-a", "egress", "docs", {"host": "a.example"}, 60))
        decision = Decision("p-a", "approved", operator="op").to_dict()
        grant = {"kind": "route", "route": {"host": "a.example", "ports": [443]}}
        code, out = self.call("decide", {"decision": decision, "grant": grant})
        self.assertEqual((code, out), (0, {"ok": True, "grant_added": True}))
        self.assertEqual(self.spool.decision_for("p-a").verdict, "approved")
        self.assertEqual(read_grants(self.root)["routes"], [{"host": "a.example", "ports": [443]}])
        self.assertEqual(self.call("pending"), (0, {"proposals": []}))

    def test_decide_again_is_an_error_and_adds_no_grant(self) -> None:
        self.spool.submit(Proposal("p-a", "egress", "docs", {"host": "a.example"}, 60))
        self.spool.decide(Decision("p-a", "rejected", "no"))
        grant = {"kind": "route", "route": {"host": "a.example"}}
        code, out = self.call("decide", {"decision": Decision("p-a", "approved").to_dict(), "grant": grant})
        self.assertEqual(code, 1)
        self.assertEqual(out["type"], "already-decided")
        self.assertFalse(out["ok"])
        self.assertEqual(read_grants(self.root)["routes"], [])

    def test_a_decision_that_loses_the_race_takes_its_grant_back(self) -> None:
        from unittest import mock

        self.spool.submit(Proposal("p-a", "egress", "docs", {"host": "a.example"}, 60))
        real_decide = Spool.decide

        def expire_first(spool: Spool, decision: Decision) -> Decision:
            real_decide(spool, Decision("p-a", "expired", "no decision in time", operator="timeout"))
            return real_decide(spool, decision)

        grant = {"kind": "route", "route": {"host": "a.example"}}
        with mock.patch.object(Spool, "decide", expire_first):
            code, out = self.call("decide", {"decision": Decision("p-a", "approved").to_dict(), "grant": grant})
        self.assertEqual((code, out["type"]), (1, "already-decided"))
        self.assertEqual(read_grants(self.root)["routes"], [])
        self.assertEqual(self.spool.decision_for("p-a").verdict, "expired")

    def test_decide_errors(self) -> None:
        self.spool.submit(Proposal("p-a", "push-exception", "test fixture", {"repo": "app", "ref": "refs/heads/x", "old": SHA_A, "new": SHA_B, "finding": "gf-0123456789ab"}, 60))
        cases = [
            ({"decision": Decision("nope", "approved").to_dict()}, "unknown-proposal"),
            ({"decision": {"id": "p-a", "verdict": "perhaps"}}, "invalid"),
            ({}, "invalid"),
            ({"decision": Decision("p-a", "rejected", "no").to_dict(), "grant": {"kind": "push", "repo": "app", "ref": "refs/heads/x", "old": SHA_A, "new": SHA_B}}, "invalid"),
            ({"decision": Decision("p-a", "approved").to_dict(), "grant": {"kind": "route", "route": {"host": "x", "auth": {"scheme": "bearer", "token_ref": "T"}}}}, "invalid"),
        ]
        for request, kind in cases:
            with self.subTest(request=request):
                code, out = self.call("decide", request)
                self.assertEqual((code, out["type"]), (1, kind))
                self.assertTrue(out["error"])
        self.assertIsNone(self.spool.decision_for("p-a"))
        self.assertEqual(read_grants(self.root)["pushes"], [])

    def test_decide_not_json(self) -> None:
        stdout = io.StringIO()
        code = ctl.main(["decide", "--root", str(self.root)], io.StringIO("{oops"), stdout)
        self.assertEqual(code, 1)
        self.assertIn("not valid JSON", json.loads(stdout.getvalue())["error"])

    def test_events_skip_lines_json_cannot_take(self) -> None:
        # A number too long to convert and nesting too deep to parse are bad lines like a torn
        # one: skipped, the lines after them still read.
        good = json.dumps({"host": "a.example", "verdict": "deny"}) + "\n"
        self.log.write_text('{"n": ' + "9" * 5000 + "}\n" + "[" * 100_000 + "\n" + good)
        code, out = self.call("events", {"offset": 0})
        self.assertEqual(code, 0)
        self.assertEqual(out["lines"], [{"host": "a.example", "verdict": "deny"}])
        self.assertEqual(out["offset"], self.log.stat().st_size)

    def test_a_part_marker_nested_too_deep_is_no_marker(self) -> None:
        from bot_bottle.sidecar.egress.logfile import part_marker

        self.assertIsNone(part_marker("[" * 100_000))

    def test_events_from_offsets(self) -> None:
        self.assertEqual(self.call("events", {"offset": 0}), (0, {"start": 0, "offset": 0, "lines": []}))
        first = json.dumps({"host": "a.example", "verdict": "deny"}) + "\n"
        self.log.write_text(first + "not json\n" + '{"host": "b.ex')  # a partial last line
        code, out = self.call("events", {"offset": 0})
        self.assertEqual(code, 0)
        self.assertEqual(out["lines"], [{"host": "a.example", "verdict": "deny"}])
        self.assertEqual(out["offset"], len(first) + len("not json\n"))
        with self.log.open("a") as fh:
            fh.write('ample"}\n')
        code, out2 = self.call("events", {"offset": out["offset"]})
        self.assertEqual(out2["lines"], [{"host": "b.example"}])
        self.assertEqual(out2["offset"], self.log.stat().st_size)
        # a log shorter than the offset is a new log: read again from the start
        self.log.write_text(first)
        _, out3 = self.call("events", {"offset": 10_000})
        self.assertEqual((out3["offset"], len(out3["lines"])), (len(first), 1))
        self.assertEqual(self.call("events", {"offset": -1})[0], 1)

    def test_events_keep_their_offsets_across_the_proxys_rotations(self) -> None:
        from bot_bottle.sidecar.egress.logfile import LogFile

        log = LogFile(self.log, limit=400)
        shipped: list[dict] = []
        offset = 0
        for i in range(60):
            log.write(json.dumps({"n": i, "pad": "p" * 30}) + "\n")
            if i % 3 == 2:  # the console syncs now and then, rotations in between
                _, out = self.call("events", {"offset": offset})
                self.assertGreaterEqual(out["offset"], offset, "offsets only move on")
                offset = out["offset"]
                shipped += out["lines"]
        log.close()
        while True:  # what the last sync left (a call reads within one part)
            _, out = self.call("events", {"offset": offset})
            if out["offset"] == offset:
                break
            offset = out["offset"]
            shipped += out["lines"]
        numbers = [line["n"] for line in shipped if "n" in line]
        self.assertEqual(numbers, list(range(60)), "every decision shipped once, in order")
        self.assertTrue(any(line.get("event") == "egress-log-part" for line in shipped))

    def test_grants(self) -> None:
        self.assertEqual(self.call("grants"), (0, {"routes": [], "pushes": [], "token_uses": []}))

    def test_usage_error(self) -> None:
        stdout = io.StringIO()
        code = ctl.main(["reboot"], io.StringIO(""), stdout)
        self.assertEqual(code, 2)
        self.assertEqual(json.loads(stdout.getvalue())["type"], "usage")

    def test_runs_as_a_module(self) -> None:
        """The exact entry the host runs with docker exec -i."""
        self.spool.submit(Proposal("p-a", "egress", "docs", {"host": "a.example"}, 60))
        proc = subprocess.run(
            [sys.executable, "-m", "bot_bottle.sidecar.supervise.ctl", "pending", "--root", str(self.root)],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual([p["id"] for p in json.loads(proc.stdout)["proposals"]], ["p-a"])


if __name__ == "__main__":
    unittest.main()
