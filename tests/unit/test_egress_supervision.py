"""The proxy's half of the supervise plane: grants.json re-read on change (routes merged, token uses
honoured) and held requests turned into token-use proposals that wait for the operator."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import tempfile
import time
import unittest
from unittest import mock
from pathlib import Path

from bot_bottle.sidecar.egress import supervision
from bot_bottle.sidecar.egress.policy import Policy
from bot_bottle.sidecar.supervise import channel
from tests.unit.test_sidecar_addon import AddonCase, addon_context, addon_mod

PLANTED = "AKIAQ3EGRTHZ5SYXWN7K"


def write_grants(root: Path, doc: dict) -> None:
    path = root / "grants.json"
    path.write_text(json.dumps(doc))
    # mtime resolution: make each write visibly newer than the last one read.
    stamp = time.time() + write_grants.bump
    write_grants.bump += 1
    os.utime(path, (stamp, stamp))


write_grants.bump = 1  # type: ignore[attr-defined]


class GrantsTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name)
        self.grants = supervision.Grants(self.root)

    def test_no_file_is_no_grants(self) -> None:
        self.assertFalse(self.grants.refresh())
        self.assertEqual((self.grants.routes, self.grants.token_uses), ((), ()))

    def test_reread_only_when_the_file_changes(self) -> None:
        write_grants(self.root, {"routes": [{"host": "new.example", "ports": [443]}], "pushes": [],
                                 "token_uses": [{"route": "api.example", "detectors": ["aws-access-key-id"]}]})
        self.assertTrue(self.grants.refresh())
        self.assertEqual([r.host for r in self.grants.routes], ["new.example"])
        self.assertFalse(self.grants.refresh())
        write_grants(self.root, {"routes": [], "pushes": [], "token_uses": []})
        self.assertTrue(self.grants.refresh())
        self.assertEqual(self.grants.routes, ())
        (self.root / "grants.json").unlink()
        self.assertFalse(self.grants.refresh())  # nothing granted before, nothing now

    def test_bad_routes_and_credential_routes_are_left_out(self) -> None:
        write_grants(self.root, {"routes": [{"host": "ok.example"}, {"host": ""},
                                            {"host": "auth.example", "auth": {"scheme": "bearer", "token_ref": "X"}}]})
        self.grants.refresh()
        self.assertEqual([r.host for r in self.grants.routes], ["ok.example"])
        self.assertEqual(len(self.grants.skipped), 2)

    def test_broken_file_keeps_what_was_granted(self) -> None:
        write_grants(self.root, {"routes": [{"host": "ok.example"}]})
        self.grants.refresh()
        (self.root / "grants.json").write_text("{not json")
        os.utime(self.root / "grants.json", (time.time() + 100, time.time() + 100))
        self.assertFalse(self.grants.refresh())
        self.assertEqual([r.host for r in self.grants.routes], ["ok.example"])

    def test_an_unreadable_file_grants_nothing_and_says_why(self) -> None:
        # A grant taken back while the file cannot be read must not stay in force.
        write_grants(self.root, {"routes": [{"host": "ok.example"}],
                                 "token_uses": [{"route": "api.example", "detectors": ["aws-access-key-id"]}]})
        self.grants.refresh()
        denied = PermissionError(13, "Permission denied")
        with mock.patch.object(supervision.channel, "read_grants", side_effect=denied):
            os.utime(self.root / "grants.json", (time.time() + 100, time.time() + 100))
            self.assertTrue(self.grants.refresh())
            self.assertEqual((self.grants.routes, self.grants.token_uses), ((), ()))
            self.assertEqual(self.grants.skipped, ("grants.json unreadable: Permission denied",))
            self.assertFalse(self.grants.refresh())  # said once
        self.assertTrue(self.grants.refresh())  # readable again: tried without waiting for a change
        self.assertEqual([r.host for r in self.grants.routes], ["ok.example"])

    def test_token_use_needs_the_route_and_every_detector(self) -> None:
        write_grants(self.root, {"token_uses": [{"route": "api.example", "detectors": ["aws-access-key-id",
                                                                                    "known-secret:DB"]}]})
        self.grants.refresh()
        self.assertTrue(self.grants.token_use_granted(["api.example"], ["aws-access-key-id"]))
        self.assertTrue(self.grants.token_use_granted(["x", "api.example"], ["known-secret:DB (base64)"]))
        self.assertFalse(self.grants.token_use_granted(["api.example"], ["aws-access-key-id", "jwt"]))
        self.assertFalse(self.grants.token_use_granted(["other.example"], ["aws-access-key-id"]))
        self.assertFalse(self.grants.token_use_granted(["api.example"], []))

    def test_merged_policy_appends_after_the_bottles_own_routes(self) -> None:
        base = Policy.from_dict({"version": 2, "routes": [{"host": "a.example"}, {"host": "b.example"}]})
        write_grants(self.root, {"routes": [{"host": "c.example"}, {"host": "a.example"}]})
        self.grants.refresh()
        merged = supervision.merged_policy(base, self.grants.routes)
        self.assertEqual([r.host for r in merged.routes], ["a.example", "b.example", "c.example"])
        self.assertIs(supervision.merged_policy(base, ()), base)


class HoldTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.spool = channel.Spool(Path(tmp.name))

    def proposal(self, timeout: float = 5.0) -> channel.Proposal:
        return supervision.token_use_proposal(method="post", host="api.example", path=f"/v1/x?key={PLANTED}",
                                              route="api.example", detectors=["aws-access-key-id (url)"],
                                              timeout=timeout)

    def test_proposal_names_things_never_values(self) -> None:
        p = self.proposal()
        self.assertEqual(p.kind, "token-use")
        self.assertEqual(p.payload["hold_id"], p.id)
        self.assertEqual(p.payload["path"], "/v1/x")
        self.assertEqual(p.payload["detectors"], ["aws-access-key-id"])
        self.assertEqual(p.payload["method"], "POST")
        self.assertNotIn(PLANTED, json.dumps(p.to_dict()))

    def run_hold(self, proposal: channel.Proposal, timeout: float, decide=None) -> supervision.HoldResult:
        async def main():
            task = asyncio.create_task(supervision.hold(self.spool, proposal, timeout))
            if decide is not None:
                await asyncio.sleep(0.3)
                self.spool.decide(decide(proposal.id))
            return await task

        return asyncio.run(main())

    def test_approved_forwards(self) -> None:
        result = self.run_hold(self.proposal(), 5, lambda pid: channel.Decision(pid, "approved"))
        self.assertEqual((result.forward, result.verdict), (True, "approved"))
        self.assertEqual(self.spool.get(result.proposal_id).kind, "token-use")

    def test_rejected_refuses(self) -> None:
        result = self.run_hold(self.proposal(), 5, lambda pid: channel.Decision(pid, "rejected", "no"))
        self.assertEqual((result.forward, result.verdict), (False, "rejected"))

    def test_no_decision_in_time_expires_the_proposal(self) -> None:
        result = self.run_hold(self.proposal(0.3), 0.3)
        self.assertEqual((result.forward, result.verdict), (False, "expired"))
        self.assertEqual(self.spool.decision_for(result.proposal_id).verdict, "expired")
        self.assertEqual(self.spool.pending(), [])

    def test_the_same_held_request_again_waits_for_the_first_and_a_flood_is_refused(self) -> None:
        async def main():
            first = asyncio.create_task(supervision.hold(self.spool, self.proposal(), 5))
            await asyncio.sleep(0.2)
            again = asyncio.create_task(supervision.hold(self.spool, self.proposal(), 5))
            await asyncio.sleep(0.2)
            self.assertEqual(len(self.spool.pending()), 1)  # the operator is asked once
            other_path = asyncio.create_task(supervision.hold(self.spool, supervision.token_use_proposal(
                method="post", host="api.example", path="/v1/admin", route="api.example",
                detectors=["aws-access-key-id"], timeout=5), 5))
            await asyncio.sleep(0.2)
            self.assertEqual(len(self.spool.pending()), 2)  # another request: asked about on its own
            others = [asyncio.create_task(supervision.hold(self.spool, supervision.token_use_proposal(
                method="POST", host="api.example", path="/v1", route=f"r{i}.example", detectors=["jwt"], timeout=5), 5))
                for i in range(supervision.MAX_HELD_PENDING + 3)]
            await asyncio.sleep(0.5)
            self.assertEqual(len(self.spool.pending()), supervision.MAX_HELD_PENDING)
            refused = [t.result() for t in others if t.done()]
            self.assertEqual([r.verdict for r in refused], ["refused"] * 5)
            self.spool.decide(channel.Decision(self.spool.pending()[0].id, "approved"))
            results = await asyncio.gather(first, again)
            for task in [*others, other_path]:
                task.cancel()
            return results

        first, again = asyncio.run(main())
        self.assertEqual((first.forward, again.forward), (True, True))
        self.assertEqual(first.proposal_id, again.proposal_id)

    def test_held_proposals_past_their_wait_do_not_count(self) -> None:
        # Left by a sidecar that stopped: nobody waits for them any more.
        for i in range(supervision.MAX_HELD_PENDING):
            stale = supervision.token_use_proposal(method="POST", host="api.example", path=f"/old{i}",
                                                   route="api.example", detectors=["jwt"], timeout=5)
            self.spool.submit(dataclasses.replace(stale, created_at=time.time() - 60))
        result = self.run_hold(self.proposal(), 5, lambda pid: channel.Decision(pid, "approved"))
        self.assertEqual((result.forward, result.verdict), (True, "approved"))

    def test_unwritable_spool_refuses(self) -> None:
        blocked = Path(self.spool.root) / "file"
        blocked.write_text("")
        result = self.run_hold_on(channel.Spool(blocked / "below"))
        self.assertFalse(result.forward)
        self.assertEqual(result.verdict, "error")

    def run_hold_on(self, spool: channel.Spool) -> supervision.HoldResult:
        return asyncio.run(supervision.hold(spool, self.proposal(), 0.2))


SUPERVISED_POLICY = {
    "version": 2,
    "log": 2,
    "internal_services": {"supervise": 9430},
    "routes": [
        {"host": "held.example", "ports": [443], "dlp": {"outbound_on_match": "supervise"}},
    ],
}


class AddonSupervisionTest(AddonCase):
    def setUp(self) -> None:
        super().setUp()
        self.spool_dir = self.dir / "supervise"
        self.spool_dir.mkdir()
        self.write_policy(SUPERVISED_POLICY)

    def options(self, **extra) -> dict:
        return super().options(**{"bottle_supervise_dir": str(self.spool_dir), "bottle_hold_timeout": 0.5, **extra})

    def held_flow(self, host: str = "held.example"):
        return self.request_flow(host, port=443, scheme="https", method="POST", path="/v1/upload?x=1",
                                 headers=[("Host", host), ("Content-Type", "text/plain")],
                                 content=f"key {PLANTED}".encode())

    def test_held_request_waits_then_is_refused_naming_the_proposal(self) -> None:
        started = time.monotonic()
        flow, lines = self.exchange(self.held_flow())
        self.assertGreaterEqual(time.monotonic() - started, 0.45)
        self.assertEqual(flow.response.status_code, 403)
        spool = channel.Spool(self.spool_dir)
        (proposal,) = spool.proposals()
        body = flow.response.get_text()
        self.assertIn(proposal.id, body)
        self.assertIn("request-token-use", body)
        self.assertNotIn(PLANTED, body)
        self.assertEqual(spool.decision_for(proposal.id).verdict, "expired")
        self.assertEqual(proposal.payload["route"], "held.example")
        self.assertEqual(lines[-1]["rule"], "dlp-hold")

    def test_approved_while_held_is_forwarded(self) -> None:
        spool = channel.Spool(self.spool_dir)

        async def approve_when_asked():
            for _ in range(100):
                pending = spool.pending()
                if pending:
                    spool.decide(channel.Decision(pending[0].id, "approved", operator="test"))
                    return
                await asyncio.sleep(0.02)

        flow = self.held_flow()
        original = self.addon._hold

        async def hold_with_operator(*args):
            approver = asyncio.create_task(approve_when_asked())
            result = await original(*args)
            await approver
            return result

        self.addon._hold = hold_with_operator
        flow, lines = self.exchange(flow, bottle_hold_timeout=5.0)
        self.assertEqual(flow.response.status_code, 200)
        self.assertEqual(lines[-1]["decision"], "allow")
        self.assertEqual(lines[-1]["dlp_action"], "hold")

    def test_token_use_grant_forwards_without_asking(self) -> None:
        write_grants(self.spool_dir, {"token_uses": [{"route": "held.example", "detectors": ["aws-access-key-id"]}]})
        flow, _ = self.exchange(self.held_flow())
        self.assertEqual(flow.response.status_code, 200)
        self.assertEqual(channel.Spool(self.spool_dir).proposals(), [])

    def test_granted_route_is_allowed_without_restart(self) -> None:
        flow, _ = self.run_hooks(self.request_flow("late.example", port=443, scheme="https"), "requestheaders")
        self.assertEqual(flow.response.status_code, 403)
        with self.configured() as addon:
            write_grants(self.spool_dir, {"routes": [{"host": "late.example", "ports": [443]}]})
            flow = self.request_flow("late.example", port=443, scheme="https")
            addon.requestheaders(flow)
            self.assertIsNone(flow.response)
            self.assertEqual(addon.policy.routes[-1].host, "late.example")
            self.assertEqual(addon.policy.routes[0].host, "held.example")  # the bottle's own stay first

    def test_without_the_supervise_plane_a_hold_is_refused_at_once(self) -> None:
        policy = dict(SUPERVISED_POLICY, internal_services={})
        self.write_policy(policy)
        flow, _ = self.exchange(self.held_flow())
        self.assertEqual(flow.response.status_code, 403)
        self.assertIn("no supervise plane", flow.response.get_text())
        self.assertEqual(channel.Spool(self.spool_dir).proposals(), [])

    def configured(self):
        import contextlib
        import io
        from contextlib import redirect_stdout


        @contextlib.contextmanager
        def ctx():
            with addon_context(self.addon) as tctx, redirect_stdout(io.StringIO()):
                tctx.configure(self.addon, **self.options())
                yield self.addon

        return ctx()


if __name__ == "__main__":
    unittest.main()
