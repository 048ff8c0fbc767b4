"""What a hostile agent can put into the spool, and what it costs everyone else.

The agent writes proposals; the server, the ctl, the host's database and the operator's screen all
read them. So every list is short, every entry and the whole proposal are bounded, proposals are
written at a bounded rate, listing the pending ones never reads the decided ones, and paths hold
nothing that could read as something else on the operator's screen or in a granted route.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import tempfile
import time
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle.sidecar.supervise import channel, ctl, server
from bot_bottle.sidecar.supervise.channel import (
    ChannelError,
    Decision,
    Proposal,
    Spool,
    add_grant,
    egress_route,
    validate_grant,
    validate_payload,
)
from bot_bottle.sidecar.supervise.server import ToolInputError


def egress(pid: str, created_at: float | None = None, **payload: object) -> Proposal:
    return Proposal(id=pid, kind="egress", justification="why", payload={"host": "a.example", **payload},
                    timeout_s=60, created_at=created_at if created_at is not None else round(time.time(), 3))


class _Spool(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.spool = Spool(Path(tmp.name) / "spool")


class ListLimits(unittest.TestCase):
    def test_each_list_takes_at_most_max_list_items(self) -> None:
        n = channel.MAX_LIST_ITEMS
        ok = {"host": "a.example", "paths": [f"/p{i}/" for i in range(n)], "methods": ["GET"] * n,
              "ports": list(range(1, n + 1))}
        self.assertEqual(len(validate_payload("egress", ok)["paths"]), n)
        packages = [f"pkg{i}" for i in range(n)]
        self.assertEqual(validate_payload("capability", {"packages": packages})["packages"], packages)
        too_many = [
            ("egress", {"host": "a.example", "paths": [f"/p{i}/" for i in range(n + 1)]}, "paths"),
            ("egress", {"host": "a.example", "methods": ["GET"] * (n + 1)}, "methods"),
            ("egress", {"host": "a.example", "ports": list(range(1, n + 2))}, "ports"),
            ("capability", {"packages": [f"pkg{i}" for i in range(n + 1)]}, "packages"),
        ]
        for kind, payload, key in too_many:
            with self.subTest(key=key), self.assertRaisesRegex(ChannelError, rf"{key}: {n + 1} entries, at most {n}"):
                validate_payload(kind, payload)

    def test_each_entry_takes_at_most_max_item_chars(self) -> None:
        longest = "/" + "a" * (channel.MAX_ITEM_CHARS - 1)
        self.assertEqual(validate_payload("egress", {"host": "a.example", "paths": [longest]})["paths"], [longest])
        with self.assertRaisesRegex(ChannelError, rf"paths\[1\]: {channel.MAX_ITEM_CHARS + 1} characters, at most"):
            validate_payload("egress", {"host": "a.example", "paths": ["/ok/", longest + "a"]})

    def test_the_audits_flood_is_refused_at_once_without_echoing_it(self) -> None:
        paths = [f"/{i:05d}/" + "x" * 80 for i in range(30_000)]
        started = time.monotonic()
        with self.assertRaises(ToolInputError) as caught:
            server.egress_proposal("a.example", "why", paths)
        self.assertLess(time.monotonic() - started, 0.5)
        self.assertIn("paths: 30000 entries, at most 32", str(caught.exception))
        self.assertLess(len(str(caught.exception)), 200)


class ProposalSize(_Spool):
    def test_a_proposal_over_max_proposal_bytes_is_refused_with_a_clear_error(self) -> None:
        paths = ["/" + f"{i:02d}" + "a" * (channel.MAX_ITEM_CHARS - 3) for i in range(channel.MAX_LIST_ITEMS)]
        justification = "\u20ac" * channel.MAX_JUSTIFICATION  # 3 bytes each in UTF-8
        with self.assertRaises(ToolInputError) as caught:
            server.egress_proposal("a.example", justification, paths)
        self.assertRegex(str(caught.exception), rf"\d+ bytes as JSON, at most {channel.MAX_PROPOSAL_BYTES}")
        self.assertIn("shorten the justification", str(caught.exception))
        with self.assertRaises(ToolInputError):
            server.capability_proposal(justification, dockerfile="RUN true\n" * 800)
        self.assertEqual(self.spool.pending(), [])

    def test_the_largest_plain_requests_still_fit(self) -> None:
        paths = ["/" + f"{i:02d}" + "a" * (channel.MAX_ITEM_CHARS - 3) for i in range(channel.MAX_LIST_ITEMS)]
        p = server.egress_proposal("a.example", "w" * channel.MAX_JUSTIFICATION, paths,
                                   ["GET"], list(range(1, channel.MAX_LIST_ITEMS + 1)))
        self.assertLessEqual(p.size(), channel.MAX_PROPOSAL_BYTES)
        server.capability_proposal("w" * channel.MAX_JUSTIFICATION, dockerfile="x" * channel.MAX_DOCKERFILE)

    def test_a_held_request_with_a_huge_path_still_makes_a_proposal(self) -> None:
        p = channel.held_request_proposal("POST", "api.example", "/" + "a" * 100_000, "api.example",
                                          ["known-secret:TOKEN"], 30)
        self.assertLessEqual(p.size(), channel.MAX_PROPOSAL_BYTES)
        self.assertTrue(p.payload["path"].endswith("...(cut)"))


class PendingReadsOnlyWaitingProposals(_Spool):
    def test_listing_pending_does_not_read_decided_proposals(self) -> None:
        for i in range(5):
            self.spool.submit(egress(f"p-{i}", created_at=1000 + i))
            self.spool.decide(Decision(f"p-{i}", "expired", operator="timeout"))
        self.spool.submit(egress("p-waiting", created_at=2000))
        with mock.patch.object(channel.Proposal, "from_dict", wraps=channel.Proposal.from_dict) as parsed:
            self.assertEqual([p.id for p in self.spool.pending()], ["p-waiting"])
        self.assertEqual(parsed.call_count, 1)
        self.assertEqual(os.listdir(self.spool.proposals_dir), ["p-waiting.json"])

    def test_a_decided_proposal_is_still_found_by_id(self) -> None:
        held = channel.held_request_proposal("POST", "api.example", "/v1", "api.example", ["known-secret:TOKEN"], 30)
        self.spool.submit(held)
        self.spool.expire(held.id)
        self.assertEqual(self.spool.get(held.id), held)
        self.assertEqual([p.id for p in self.spool.proposals()], [held.id])
        # request-token-use names a held request after the proxy expired it: still there.
        self.assertEqual(server.token_use_proposal(self.spool, held.id, "needed").payload["hold_id"], held.id)

    def test_a_late_decide_still_hears_already_decided(self) -> None:
        self.spool.submit(egress("p-1"))
        self.spool.expire("p-1")
        out = io.StringIO()
        stdin = io.StringIO(json.dumps({"decision": {"id": "p-1", "verdict": "approved"}, "grant": None}))
        self.assertEqual(ctl.main(["decide", "--root", str(self.spool.root)], stdin=stdin, stdout=out), 1)
        self.assertEqual(json.loads(out.getvalue())["type"], "already-decided")

    def test_a_decided_proposal_left_among_the_waiting_ones_is_moved_unread(self) -> None:
        # The decider stopped between writing the decision and moving the proposal (or an older
        # spool, from before the archive): listing moves it, without parsing it.
        self.spool.submit(egress("p-old"))
        channel._write_atomic(self.spool.decisions_dir / "p-old.json", Decision("p-old", "rejected").to_dict())
        with mock.patch.object(channel.Proposal, "from_dict", wraps=channel.Proposal.from_dict) as parsed:
            self.assertEqual(self.spool.pending(), [])
        self.assertEqual(parsed.call_count, 0)
        self.assertTrue((self.spool.archive_dir / "p-old.json").exists())
        self.assertEqual(self.spool.decision_for("p-old").verdict, "rejected")

    def test_only_the_newest_decided_are_kept(self) -> None:
        with mock.patch.object(channel, "MAX_ARCHIVED", 3):
            self.spool.submit(egress("p-long", created_at=1))  # asked first, decided last
            for i in range(5):
                self.spool.submit(egress(f"p-{i}", created_at=10 + i))
            for i in range(5):
                self.spool.decide(Decision(f"p-{i}", "rejected"))
                past = time.time() - 100 + i  # decided in this order, a second apart
                os.utime(self.spool.archive_dir / f"p-{i}.json", (past, past))
            self.spool.decide(Decision("p-long", "approved"))
        kept = sorted(n.removesuffix(".json") for n in os.listdir(self.spool.archive_dir))
        self.assertEqual(kept, ["p-3", "p-4", "p-long"])
        self.assertEqual(sorted(os.listdir(self.spool.decisions_dir)), ["p-3.json", "p-4.json", "p-long.json"])
        self.assertEqual(self.spool.decision_for("p-long").verdict, "approved")  # its waiter still finds it
        self.assertIsNone(self.spool.get("p-0"))

    def test_the_server_waiter_gets_the_decision_of_an_archived_proposal(self) -> None:
        proposal = server.egress_proposal("a.example", "why", timeout_s=10)

        async def scenario() -> dict:
            call = asyncio.create_task(server.ask(self.spool, proposal, poll=0.02))
            while not self.spool.pending():
                await asyncio.sleep(0.02)
            self.spool.decide(Decision(proposal.id, "approved"))
            return await call

        self.assertEqual(asyncio.run(scenario())["verdict"], "approved")
        self.assertTrue((self.spool.archive_dir / f"{proposal.id}.json").exists())


class Rate(_Spool):
    def test_at_most_max_asks_per_minute_are_written(self) -> None:
        now = [100.0]
        rate = server.AskRate(limit=3, window_s=60, clock=lambda: now[0])
        for i in range(3):
            answer = asyncio.run(server.ask(self.spool, server.egress_proposal("a.example", "why", timeout_s=0.01),
                                            poll=0.01, rate=rate))
            self.assertEqual(answer["verdict"], "expired")  # gone at once, like a caller that went away
        with self.assertRaisesRegex(ToolInputError, "too many requests: at most 3 in 60 seconds; ask again in 60 "):
            asyncio.run(server.ask(self.spool, server.egress_proposal("b.example", "why"), poll=0.01, rate=rate))
        self.assertEqual(len(self.spool.proposals()), 3)  # the refused one was never written
        now[0] += 60
        rate.take()

    def test_the_server_default_is_thirty_a_minute(self) -> None:
        self.assertEqual(server.MAX_ASKS_PER_MINUTE, 30)
        self.assertEqual(server.AskRate().limit, server.MAX_ASKS_PER_MINUTE)


class PathCharacters(unittest.TestCase):
    BAD = ["/docs/\n  found: nothing", "/docs/ x", "/docs/\u00a0x", "/docs/\tx", "/a\u200b/", "/a\u202e/",
           "/a\x1b[2J", "/a\u2028b", "/a\U000e0041"]

    def test_paths_with_whitespace_control_or_invisible_characters_are_refused(self) -> None:
        for path in self.BAD:
            with self.subTest(path=path):
                with self.assertRaisesRegex(ChannelError, r"paths\[0\]: contains U\+[0-9A-F]{4}"):
                    validate_payload("egress", {"host": "a.example", "paths": [path]})
                with self.assertRaises(ToolInputError):
                    server.egress_proposal("a.example", "why", [path])
                with self.assertRaises(ChannelError):
                    egress_route({"host": "a.example", "paths": [path]})

    def test_ordinary_paths_pass(self) -> None:
        paths = ["/docs/", "/caf\u00e9/", "/v1/*", "/a%20b", "/"]
        self.assertEqual(validate_payload("egress", {"host": "a.example", "paths": paths})["paths"], paths)

    def test_a_route_grant_with_such_a_path_is_refused_too(self) -> None:
        for path in self.BAD:
            grant = {"kind": "route", "route": {"host": "a.example", "matches": [{"paths": ["/ok/", path]}]}}
            with self.subTest(path=path), self.assertRaisesRegex(ChannelError, r"matches\[0\]\.paths\[1\]: contains"):
                validate_grant(grant)
        fine = {"kind": "route", "route": {"host": "a.example", "matches": [{"paths": ["/ok/"]}]}}
        self.assertEqual(validate_grant(fine)["kind"], "route")

    def test_ctl_decide_refuses_such_a_grant_and_records_nothing(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            spool = Spool(tmp)
            spool.submit(egress("p-1", paths=["/docs/"]))
            grant = {"kind": "route", "route": {"host": "a.example", "matches": [{"paths": ["/docs/\n  found: x"]}]}}
            out = io.StringIO()
            stdin = io.StringIO(json.dumps({"decision": {"id": "p-1", "verdict": "approved"}, "grant": grant}))
            self.assertEqual(ctl.main(["decide", "--root", tmp], stdin=stdin, stdout=out), 1)
            self.assertEqual(json.loads(out.getvalue())["type"], "invalid")
            self.assertIsNone(spool.decision_for("p-1"))
            with self.assertRaises(ChannelError):
                add_grant(tmp, grant)
            self.assertEqual(channel.read_grants(tmp)["routes"], [])


class PushFindingsKept(unittest.TestCase):
    """The gate's records of rejected pushes: the agent makes more at will, so only the newest stay."""

    def test_only_the_newest_records_stay_each_bounded(self) -> None:
        with tempfile.TemporaryDirectory() as root:
            folder = Path(root) / channel.PUSH_FINDINGS_DIR
            update = {"ref": "refs/heads/x", "old": "0" * 40, "new": "1" * 40}
            for i in range(channel.MAX_PUSH_FINDINGS + 5):
                finding = f"gf-{i:012x}"
                channel.record_push_findings(root, finding, "app", [update] * 500, [f"d{j}" for j in range(40)], [])
                os.utime(folder / f"{finding}.json", (1000 + i, 1000 + i))
            kept = sorted(p.stem for p in folder.glob("*.json"))
            self.assertEqual(len(kept), channel.MAX_PUSH_FINDINGS)
            self.assertNotIn("gf-000000000000", kept)
            self.assertIn(f"gf-{channel.MAX_PUSH_FINDINGS + 4:012x}", kept)
            record = channel.push_findings(root, kept[-1])
            assert record is not None
            self.assertEqual(len(record["updates"]), channel.MAX_PUSH_UPDATES)
            self.assertEqual(len(record["detectors"]), channel.MAX_LIST_ITEMS)


if __name__ == "__main__":
    unittest.main()
