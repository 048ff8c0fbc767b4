"""The supervise channel: proposal/decision formats, the spool and the grants file."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
import time
import unittest
from pathlib import Path

from bot_bottle.sidecar.supervise import channel
from bot_bottle.sidecar.supervise.channel import (
    AlreadyDecided,
    ChannelError,
    Decision,
    Proposal,
    Spool,
    UnknownProposal,
    add_grant,
    consume_push,
    egress_route,
    read_grants,
    token_use_granted,
    validate_payload,
)

SHA_A = "a" * 40
SHA_B = "b" * 40


class _TempRoot(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmp.cleanup)
        self.root = Path(self._tmp.name) / "supervise"
        self.spool = Spool(self.root)


class PayloadTests(unittest.TestCase):
    def test_egress_normalises_host_and_lists(self) -> None:
        p = validate_payload("egress", {"host": "Docs.Example.COM.", "methods": ["get", "get"], "paths": ["/v1/"]})
        self.assertEqual(p, {"host": "docs.example.com", "paths": ["/v1/"], "methods": ["GET"], "ports": []})

    def test_egress_refuses_bad_hosts(self) -> None:
        for host in ("https://example.com", "example.com/x", "", "git-gate.bottle.internal", "localhost", "a b"):
            with self.subTest(host=host), self.assertRaises(ChannelError):
                validate_payload("egress", {"host": host})

    def test_egress_refuses_hosts_the_manifest_refuses(self) -> None:
        # A granted route is saved to the manifest on request: one it refuses must not be granted.
        for host in ("*.com", "*.io", "*.COM.", "foo_bar.example.com", "bücher.example", "10.1", "0x7f.1",
                     "169.254.169.254", "100.100.100.200", "224.0.0.1", "a..example",
                     "*.co.uk", "*.com.au", "metadata", "metadata.google.internal", "instance-data"):
            with self.subTest(host=host), self.assertRaises(ChannelError):
                validate_payload("egress", {"host": host})
            with self.subTest(host=host, grant=True), self.assertRaises(ChannelError):
                channel.validate_grant({"kind": "route", "route": {"host": host}})

    def test_egress_hosts_follow_the_manifest_rule(self) -> None:
        from bot_bottle.manifest.schema import check_host, normalize_host

        hosts = ("*.com", "*.example.com", "*.co.uk", "foo_bar.example.com", "bücher.example", "xn--bcher-kva.example",
                 "Docs.Example.COM.", "10.1", "10.1.2.3", "[2001:db8::1]", "::ffff:8.8.8.8", "0x7f.1", "169.254.169.254",
                 "metadata.google.internal", "a-.example", "foo.123", "x.bottle.internal", "*.localhost")
        for host in hosts:
            with self.subTest(host=host):
                manifest_ok = check_host(normalize_host(host)) is None
                try:
                    granted = egress_route({"host": host})["host"]
                except ChannelError:
                    granted = None
                self.assertEqual(granted is not None, manifest_ok)
                if granted is not None:  # what "save to manifest" writes is accepted there too
                    self.assertIsNone(check_host(granted))

    def test_egress_refuses_bad_fields(self) -> None:
        bad = [
            {"host": "a.example", "ports": [0]},
            {"host": "a.example", "ports": ["443"]},
            {"host": "a.example", "paths": ["v1"]},
            {"host": "a.example", "methods": ["GET /"]},
            {"host": "a.example", "extra": 1},
        ]
        for payload in bad:
            with self.subTest(payload=payload), self.assertRaises(ChannelError):
                validate_payload("egress", payload)

    def test_capability_needs_something(self) -> None:
        self.assertEqual(validate_payload("capability", {"packages": ["ripgrep"]}), {"packages": ["ripgrep"], "dockerfile": ""})
        with self.assertRaises(ChannelError):
            validate_payload("capability", {"packages": []})
        with self.assertRaises(ChannelError):
            validate_payload("capability", {"packages": ["rm -rf /"]})

    def test_capability_packages_are_names_the_build_takes(self) -> None:
        # Refused when asked, not after the operator approved and the build failed.
        from bot_bottle.backend.registry import CapabilityChange

        for name in ("libgtk2.0-0", "g++", "python3-venv"):
            with self.subTest(name=name):
                validate_payload("capability", {"packages": [name]})
                CapabilityChange("b", (name,)).validate()
        for name in ("jq=1.6-2", "libc6:i386", "Jq", "a_b", "x~1", "j"):
            with self.subTest(name=name), self.assertRaises(ChannelError):
                validate_payload("capability", {"packages": [name]})

    def test_push_exception_needs_full_shas_and_ref(self) -> None:
        ok = {"repo": "app", "ref": "refs/heads/x", "old": SHA_A, "new": SHA_B, "finding": "gf-0123456789ab"}
        self.assertEqual(validate_payload("push-exception", ok), ok)
        found = {**ok, "detectors": ["aws-access-key-id"], "places": ["commit 0123: file a line 1: detector x"]}
        self.assertEqual(validate_payload("push-exception", found), found)
        for key, value in (("old", "abc"), ("new", SHA_B.upper()), ("ref", "main"), ("repo", ""),
                           ("finding", "a dummy key, trust me"), ("finding", ""), ("places", ["x" * 301])):
            with self.subTest(key=key), self.assertRaises(ChannelError):
                validate_payload("push-exception", {**ok, key: value})

    def test_token_use_shape(self) -> None:
        p = validate_payload(
            "token-use",
            {"hold_id": "h-1", "method": "post", "host": "api.x", "path": "/v", "route": "api.x", "detectors": ["aws-access-key"]},
        )
        self.assertEqual(p["method"], "POST")
        with self.assertRaises(ChannelError):
            validate_payload("token-use", {"hold_id": "../x", "method": "GET", "host": "h", "path": "/", "route": "h"})

    def test_unknown_kind(self) -> None:
        with self.assertRaises(ChannelError):
            validate_payload("root-shell", {})

    def test_egress_route(self) -> None:
        self.assertEqual(egress_route({"host": "a.example"}), {"host": "a.example", "ports": [80, 443]})
        self.assertEqual(
            egress_route({"host": "a.example", "ports": [443], "paths": ["/x"], "methods": ["GET"]}),
            {"host": "a.example", "ports": [443], "matches": [{"paths": ["/x"], "methods": ["GET"]}]},
        )


class ProposalDecisionTests(unittest.TestCase):
    def test_proposal_round_trip(self) -> None:
        p = Proposal.new("egress", {"host": "a.example"}, "read the docs", 120)
        self.assertTrue(p.id.startswith("egress-"))
        self.assertEqual(Proposal.from_dict(json.loads(json.dumps(p.to_dict()))), p)
        self.assertEqual(set(p.to_dict()), {"id", "kind", "created_at", "justification", "payload", "timeout_s"})

    def test_proposal_validation(self) -> None:
        base = Proposal.new("egress", {"host": "a.example"}, "why", 10).to_dict()
        for key, value in (("kind", "bogus"), ("justification", "  "), ("timeout_s", 0), ("timeout_s", True), ("id", "a/b")):
            with self.subTest(key=key, value=value), self.assertRaises(ChannelError):
                Proposal.from_dict({**base, key: value})
        with self.assertRaises(ChannelError):
            Proposal.from_dict({k: v for k, v in base.items() if k != "payload"})
        with self.assertRaises(ChannelError):
            Proposal.from_dict({**base, "secret": "x"})

    def test_decision_round_trip_and_rules(self) -> None:
        d = Decision("p-1", "modified", reason="narrower", change={"host": "a.example"}, operator="me")
        self.assertEqual(Decision.from_dict(json.loads(json.dumps(d.to_dict()))), d)
        self.assertTrue(d.granted)
        self.assertFalse(Decision("p-1", "rejected", "no").granted)
        with self.assertRaises(ChannelError):
            Decision("p-1", "maybe")
        with self.assertRaises(ChannelError):
            Decision("p-1", "modified")  # a modification without the modified payload
        with self.assertRaises(ChannelError):
            Decision("p-1", "approved", change={"host": "a.example"})
        self.assertEqual(Decision.from_dict({"id": "p-1", "verdict": "rejected", "reason": None}).reason, "")


class HeldRequestTests(_TempRoot):
    def test_the_proxys_proposal_is_its_own_hold(self) -> None:
        p = channel.held_request_proposal("post", "api.x", "/v1/upload", "api.x", ["aws-access-key"], 30)
        self.assertEqual(p.kind, "token-use")
        self.assertEqual(p.payload["hold_id"], p.id)
        self.assertEqual(p.payload["method"], "POST")
        self.assertIn("aws-access-key", p.justification)
        self.spool.submit(p)
        self.assertEqual(self.spool.get(p.id), p)


class SpoolTests(_TempRoot):
    def test_submit_pending_decide(self) -> None:
        first = self.spool.submit(Proposal("p-1", "egress", "why", {"host": "a.example"}, 60, created_at=10))
        second = self.spool.submit(Proposal("p-0", "capability", "why", {"packages": ["jq"]}, 60, created_at=20))
        self.assertEqual([p.id for p in self.spool.pending()], [first.id, second.id])  # oldest first
        self.assertEqual(self.root.stat().st_mode & 0o777, 0o700)
        self.assertIsNone(self.spool.decision_for("p-1"))
        self.spool.decide(Decision("p-1", "approved", operator="op"))
        self.assertEqual([p.id for p in self.spool.pending()], ["p-0"])
        self.assertEqual(self.spool.decision_for("p-1").verdict, "approved")
        self.assertEqual(self.spool.get("p-0"), second)

    def test_first_decision_wins(self) -> None:
        self.spool.submit(Proposal("p-1", "egress", "why", {"host": "a.example"}, 60))
        self.spool.decide(Decision("p-1", "rejected", "no"))
        with self.assertRaises(AlreadyDecided):
            self.spool.decide(Decision("p-1", "approved"))
        self.assertEqual(self.spool.decision_for("p-1").verdict, "rejected")
        # expiry after a decision keeps the decision
        self.assertEqual(self.spool.expire("p-1").verdict, "rejected")

    def test_decide_unknown_and_bad_change(self) -> None:
        with self.assertRaises(UnknownProposal):
            self.spool.decide(Decision("nope", "approved"))
        self.spool.submit(Proposal("p-1", "egress", "why", {"host": "a.example"}, 60))
        with self.assertRaises(ChannelError):
            self.spool.decide(Decision("p-1", "modified", change={"packages": ["jq"]}))
        self.assertIsNone(self.spool.decision_for("p-1"))

    def test_submit_twice_refused(self) -> None:
        p = Proposal("p-1", "egress", "why", {"host": "a.example"}, 60)
        self.spool.submit(p)
        with self.assertRaises(ChannelError):
            self.spool.submit(p)

    def test_no_temp_files_left(self) -> None:
        self.spool.submit(Proposal("p-1", "egress", "why", {"host": "a.example"}, 60))
        self.spool.decide(Decision("p-1", "approved"))
        leftovers = [n for d in (self.spool.proposals_dir, self.spool.decisions_dir) for n in os.listdir(d) if n.startswith(".")]
        self.assertEqual(leftovers, [])

    def test_garbage_file_is_skipped_in_pending(self) -> None:
        self.spool.submit(Proposal("p-1", "egress", "why", {"host": "a.example"}, 60))
        (self.spool.proposals_dir / "junk.json").write_text("{not json")
        self.assertEqual([p.id for p in self.spool.pending()], ["p-1"])

    def test_await_decision_sees_a_later_decision(self) -> None:
        self.spool.submit(Proposal("p-1", "egress", "why", {"host": "a.example"}, 60))
        timer = threading.Timer(0.2, lambda: self.spool.decide(Decision("p-1", "approved")))
        timer.start()
        self.addCleanup(timer.cancel)
        start = time.monotonic()
        d = self.spool.await_decision("p-1", timeout=5, poll=0.05)
        self.assertEqual(d.verdict, "approved")
        self.assertLess(time.monotonic() - start, 3)

    def test_await_decision_times_out(self) -> None:
        self.spool.submit(Proposal("p-1", "egress", "why", {"host": "a.example"}, 60))
        self.assertIsNone(self.spool.await_decision("p-1", timeout=0.2, poll=0.05))
        self.assertEqual(self.spool.expire("p-1").verdict, "expired")
        self.assertEqual(self.spool.pending(), [])

    def test_await_decision_async(self) -> None:
        self.spool.submit(Proposal("p-1", "egress", "why", {"host": "a.example"}, 60))

        async def scenario() -> tuple[Decision | None, Decision | None]:
            waiter = asyncio.create_task(self.spool.await_decision_async("p-1", timeout=5, poll=0.05))
            await asyncio.sleep(0.1)
            self.spool.decide(Decision("p-1", "rejected", "not now"))
            none = await self.spool.await_decision_async("missing-id", timeout=0.1, poll=0.05)
            return await waiter, none

        got, none = asyncio.run(scenario())
        self.assertEqual((got.verdict, got.reason), ("rejected", "not now"))
        self.assertIsNone(none)


class SharedSpoolTests(_TempRoot):
    """In the sidecar the init makes the spool setgid for the daemon accounts' group (the proxy,
    the git-gate, the MCP server, the host's ctl): whoever writes there, the others read it."""

    def setUp(self) -> None:
        super().setUp()
        self.root.mkdir()
        self.root.chmod(0o2770)

    def mode(self, path: Path) -> int:
        return path.stat().st_mode & 0o7777

    def test_files_and_folders_are_the_groups(self) -> None:
        self.spool.submit(Proposal("p-1", "egress", "why", {"host": "a.example"}, 60, created_at=10))
        self.assertEqual(self.mode(self.root), 0o2770, "ensure keeps the shared spool's mode")
        # Each account adds proposals and moves only its own (sticky); the group reads, never writes.
        self.assertEqual(self.mode(self.spool.proposals_dir), 0o3770)
        self.assertEqual(self.mode(self.spool.expired_dir), 0o3770)
        self.assertEqual(self.mode(self.spool.proposals_dir / "p-1.json"), 0o640)
        self.spool.decide(Decision("p-1", "approved", operator="op"))
        self.assertEqual(self.mode(self.spool.decisions_dir), 0o2750, "decisions are the ctl's alone")
        self.assertEqual(self.mode(self.spool.decisions_dir / "p-1.json"), 0o640)
        self.assertEqual(self.mode(self.spool.archive_dir / "p-1.json"), 0o640)
        add_grant(self.root, {"kind": "route", "route": {"host": "a.example", "ports": [443]}})
        self.assertEqual(self.mode(channel.grants_path(self.root)) & 0o070, 0o040, "the group reads the grants")
        with self.spool.deciding():
            pass
        self.assertTrue(self.mode(self.root / channel.DECIDE_LOCK_FILE) & 0o040, "every account can take the decide lock")
        self.assertFalse(self.mode(self.root / channel.GRANTS_LOCK_FILE) & 0o077, "no daemon can hold the grants up")

    def test_a_private_spool_stays_private(self) -> None:
        self.root.chmod(0o755)
        self.spool.submit(Proposal("p-1", "egress", "why", {"host": "a.example"}, 60, created_at=10))
        self.assertEqual(self.mode(self.root), 0o700)
        self.assertEqual(self.mode(self.spool.proposals_dir / "p-1.json"), 0o600)


class GrantTests(_TempRoot):
    def test_missing_file_reads_empty(self) -> None:
        self.assertEqual(read_grants(self.root), {"routes": [], "pushes": [], "token_uses": []})
        self.assertFalse(consume_push(self.root, "app", "refs/heads/x", SHA_A, SHA_B))

    def test_route_grant_added_once_and_canonical(self) -> None:
        grant = {"kind": "route", "route": {"host": "A.Example", "ports": [443]}}
        self.assertTrue(add_grant(self.root, grant))
        self.assertFalse(add_grant(self.root, grant))
        self.assertEqual(read_grants(self.root)["routes"], [{"host": "a.example", "ports": [443]}])

    def test_route_grant_refuses_auth_and_bad_routes(self) -> None:
        for route in (
            {"host": "a.example", "auth": {"scheme": "bearer", "token_ref": "X"}},
            {"host": "https://a.example"},
            {"host": "a.example", "ports": []},
        ):
            with self.subTest(route=route), self.assertRaises(ChannelError):
                add_grant(self.root, {"kind": "route", "route": route})
        with self.assertRaises(ChannelError):
            add_grant(self.root, {"kind": "sudo"})
        self.assertFalse(channel.grants_path(self.root).exists())

    def test_push_grant_is_used_once_for_the_exact_range(self) -> None:
        add_grant(self.root, {"kind": "push", "repo": "app", "ref": "refs/heads/x", "old": SHA_A, "new": SHA_B})
        self.assertFalse(consume_push(self.root, "app", "refs/heads/y", SHA_A, SHA_B))
        self.assertFalse(consume_push(self.root, "app", "refs/heads/x", SHA_B, SHA_A))
        self.assertFalse(consume_push(self.root, "other", "refs/heads/x", SHA_A, SHA_B))
        self.assertTrue(consume_push(self.root, "app", "refs/heads/x", SHA_A, SHA_B))
        self.assertFalse(consume_push(self.root, "app", "refs/heads/x", SHA_A, SHA_B))
        (entry,) = read_grants(self.root)["pushes"]
        self.assertTrue(entry["used"])

    def test_remove_grant(self) -> None:
        route = {"kind": "route", "route": {"host": "a.example"}}
        self.assertFalse(channel.remove_grant(self.root, route))
        add_grant(self.root, route)
        add_grant(self.root, {"kind": "route", "route": {"host": "b.example"}})
        self.assertTrue(channel.remove_grant(self.root, {"kind": "route", "route": {"host": "A.example"}}))
        self.assertEqual([r["host"] for r in read_grants(self.root)["routes"]], ["b.example"])
        push = {"kind": "push", "repo": "app", "ref": "refs/heads/x", "old": SHA_A, "new": SHA_B}
        add_grant(self.root, push)
        consume_push(self.root, "app", "refs/heads/x", SHA_A, SHA_B)
        self.assertFalse(channel.remove_grant(self.root, push))  # a used grant is history, not taken back

    def test_token_use_grant(self) -> None:
        add_grant(self.root, {"kind": "token-use", "route": "api.x", "detectors": ["b", "a"]})
        self.assertTrue(token_use_granted(self.root, "api.x", ["a"]))
        self.assertTrue(token_use_granted(self.root, "api.x", ["a", "b"]))
        self.assertFalse(token_use_granted(self.root, "api.x", ["a", "c"]))
        self.assertFalse(token_use_granted(self.root, "api.y", ["a"]))

    def test_concurrent_writers_lose_nothing(self) -> None:
        def worker(n: int) -> None:
            for i in range(10):
                add_grant(self.root, {"kind": "route", "route": {"host": f"h{n}-{i}.example"}})

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(read_grants(self.root)["routes"]), 40)

    def test_malformed_grants_file_names_the_file(self) -> None:
        self.root.mkdir(parents=True)
        channel.grants_path(self.root).write_text('{"routes": {}}')
        with self.assertRaises(ChannelError) as ctx:
            read_grants(self.root)
        self.assertIn("grants.json", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
