"""Supervise from a prompt-injected agent's side: what it asks for must read as what it grants,
what it writes must not break the sidecar's or the host's half, a decision must not be in force
for a proposal its agent heard "expired" about, and a flood leaves the host a bounded history.

Each test here failed before its fix: a warning the operator never saw (a private address, a
name of this machine, a wildcard over sites anybody can create), a held request the proxy could
not turn into a proposal, a spool file that stopped ``ctl pending`` for a whole bottle, a grant
briefly in force for an expired proposal, a store that grew with every proposal an agent ever
made, and a ``pending`` answer with no bound.
"""

from __future__ import annotations

import io
import json
import tempfile
import threading
import time
import unittest
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

from bot_bottle.sidecar.egress import supervision
from bot_bottle.sidecar.supervise import ctl
from bot_bottle.sidecar.supervise.channel import ChannelError, Decision, Proposal, Spool, egress_route, read_grants
from bot_bottle.supervise import store as store_mod
from bot_bottle.supervise import view
from bot_bottle.supervise.store import AuditEntry, Store
from bot_bottle.supervise.sync import BottleInfo, sync
from tests.unit.test_supervise_link import LocalSidecar

BOTTLE = BottleInfo("aaaaaa11", "coder", "frontend", None, "docker", "2026-11-22T05:00:00+00:00")


class HostWarnings(unittest.TestCase):
    """An egress host that leads somewhere other than the internet site its name suggests."""

    def warned(self, host: str) -> list[str]:
        return view.warnings("egress", {"host": host, "paths": [], "methods": [], "ports": []})

    def test_a_private_address_is_pointed_out(self) -> None:
        # The proxy connects to private addresses: 172.17.0.1 is Docker's gateway, this machine.
        for host in ("172.17.0.1", "10.1.2.3", "192.168.1.10", "100.64.0.7", "fd00::1"):
            with self.subTest(host=host):
                (warning,) = self.warned(host)
                self.assertIn("private or local address", warning)
        self.assertEqual(self.warned("8.8.8.8"), [])

    def test_names_of_this_machine_and_local_networks_are_pointed_out(self) -> None:
        self.assertIn("this machine itself", self.warned("host.docker.internal")[0])
        self.assertIn("local network name", self.warned("nas.lan")[0])
        self.assertIn("local network name", self.warned("printer.local")[0])
        self.assertIn("single-label name", self.warned("nas")[0])
        self.assertIn("whatever address they spell", self.warned("10-0-0-1.nip.io")[0])
        self.assertIn("whatever address they spell", self.warned("*.localtest.me")[0])
        self.assertEqual(self.warned("api.github.com"), [])
        self.assertEqual(self.warned("docker.internal.example.com"), [])

    def test_a_wildcard_over_sites_anybody_can_create_is_pointed_out(self) -> None:
        (warning,) = self.warned("*.github.io")
        self.assertIn("every host under github.io", warning)
        self.assertIn("anybody can create a site there", warning)
        self.assertIn("every host under co.uk", self.warned("*.co.uk")[0])
        self.assertIn("amazonaws.com", self.warned("*.s3.amazonaws.com")[0])
        self.assertEqual(self.warned("*.example.com"), [])
        self.assertEqual(self.warned("octocat.github.io"), [], "one named site is what it says")

    def test_the_request_cell_flags_it_and_the_path_warning_still_comes(self) -> None:
        payload = {"host": "172.17.0.1", "paths": ["/"], "methods": [], "ports": [2375]}
        self.assertTrue(view.request_cell("egress", payload).plain.startswith("! 172.17.0.1"))
        self.assertEqual(len(view.warnings("egress", payload)), 2)


class OnceShowsWarnings(unittest.TestCase):
    """``--once`` (text and JSON) carries the same warnings as the console."""

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.home = Path(tmp.name)
        self.side = LocalSidecar(self.home / "sidecar")
        self.side.spool.submit(Proposal(id="egress-1", kind="egress", justification="the build cache",
                                        payload={"host": "host.docker.internal"}, timeout_s=600))

    def run_once(self, *extra: str) -> str:
        from bot_bottle import cli
        from bot_bottle.supervise import sync as sync_mod

        out = io.StringIO()
        with mock.patch.dict("os.environ", {"HOME": str(self.home), "COLUMNS": "200"}), \
                mock.patch.object(sync_mod, "running_bottles", lambda state_root=None: [BOTTLE]), \
                mock.patch.object(sync_mod, "SidecarLink", lambda bottle_id: self.side.link(bottle_id)), \
                mock.patch("sys.stdout", out), redirect_stdout(out), redirect_stderr(io.StringIO()):
            self.assertEqual(cli.main(["supervise", "--once", *extra]), 0)
        return out.getvalue()

    def test_json_and_text_carry_the_warning(self) -> None:
        (p,) = json.loads(self.run_once("--format", "json"))["pending"]
        self.assertEqual(len(p["warnings"]), 1)
        self.assertIn("this machine itself", p["warnings"][0])
        self.assertIn("this machine itself", " ".join(self.run_once().split()))


class UndecodableBytes(unittest.TestCase):
    """mitmproxy hands a path's invalid UTF-8 over as lone surrogates (``surrogateescape``)."""

    def test_a_held_request_with_undecodable_bytes_in_its_path_becomes_a_proposal(self) -> None:
        # Before: UnicodeEncodeError out of the proposal, so the proxy refused the request as an
        # internal error instead of holding it for the operator.
        proposal = supervision.token_use_proposal(
            method="POST", host="api.example.com", path="/up/\udcff\u202eexe.txt\x1b[2J?token=x",
            route="api.example.com", detectors=["aws-access-key"], timeout=30)
        self.assertEqual(proposal.payload["path"], "/up/%FF%E2%80%AEexe.txt%1B[2J")
        self.assertEqual(Proposal.from_dict(json.loads(json.dumps(proposal.to_dict()))), proposal)

    def test_a_proposal_holding_a_lone_surrogate_is_malformed_not_a_crash(self) -> None:
        with self.assertRaises(ChannelError):
            Proposal(id="egress-1", kind="egress", justification="a\ud800", payload={"host": "a.example"},
                     timeout_s=60)

    def test_ctl_pending_skips_a_spool_file_no_reader_could_store(self) -> None:
        # Before: ``ctl pending`` died with a traceback on it, so the host saw none of the
        # bottle's proposals, on every sync, for as long as the file stayed.
        with tempfile.TemporaryDirectory() as tmp:
            spool = Spool(Path(tmp))
            spool.submit(Proposal(id="egress-good", kind="egress", justification="docs",
                                  payload={"host": "docs.example"}, timeout_s=60))
            bad = spool.get("egress-good").to_dict() | {"id": "egress-bad", "justification": "x\ud800"}
            (spool.proposals_dir / "egress-bad.json").write_text(json.dumps(bad), encoding="utf-8")
            out = io.StringIO()
            code = ctl.main(["pending", "--root", tmp], stdin=io.StringIO(""), stdout=out)
            self.assertEqual(code, 0, out.getvalue())
            self.assertEqual([p["id"] for p in json.loads(out.getvalue())["proposals"]], ["egress-good"])


class FloodLeavesBoundedHistory(unittest.TestCase):
    """Every proposal an agent makes reaches the host's store; those nobody decided do not pile up."""

    def test_a_sync_keeps_only_the_newest_proposals_nobody_decided(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            side = LocalSidecar(Path(tmp) / "sidecar")
            side.spool.ensure()
            with Store(Path(tmp) / "supervise.db") as st:
                big = "x" * 3000
                for i in range(30):  # asks whose waits all ran out (the sidecar lists none of them)
                    st.add_proposal(BOTTLE.id, {"id": f"egress-{i:03d}", "kind": "egress", "justification": big,
                                                "payload": {"host": f"h{i}.example"}, "timeout_s": 60,
                                                "created_at": 1000.0 + i})
                st.add_proposal(BOTTLE.id, {"id": "egress-rejected", "kind": "egress", "justification": "j",
                                            "payload": {"host": "r.example"}, "timeout_s": 60, "created_at": 999.0})
                rejected = st.find("egress-rejected")
                st.update_proposal(rejected.key, expect="pending", status="rejected", verdict="rejected",
                                   reason="no", operator="alice",
                                   audit=AuditEntry(operator="alice", action="rejected", proposal_key=rejected.key))
                with mock.patch.object(store_mod, "MAX_UNDECIDED_PER_BOTTLE", 10, create=True):
                    report = sync(st, bottles=[BOTTLE], link_for=side.link)
                self.assertEqual(report.expired, 30, report.errors)
                expired = st.proposals(status="expired")
                self.assertEqual([r.id for r in expired], [f"egress-{i:03d}" for i in range(20, 30)])
                self.assertEqual(st.find("egress-rejected").status, "rejected", "a person's decision is kept")
                self.assertEqual(len([a for a in st.audit_rows() if a.action == "expire"]), 30,
                                 "the audit log still says each one expired")


class SpoolFlood(unittest.TestCase):
    def test_ctl_pending_lists_a_bounded_number(self) -> None:
        # No writer makes more than about 30 (the server's 20 asks, the proxy's 10 holds); a
        # daemon gone wrong that writes thousands must not make the host read them all at once.
        with tempfile.TemporaryDirectory() as tmp:
            spool = Spool(Path(tmp))
            for i in range(150):
                spool.submit(Proposal(id=f"egress-{i:03d}", kind="egress", justification="docs",
                                      payload={"host": "docs.example"}, timeout_s=60, created_at=1000.0 + i))
            out = io.StringIO()
            self.assertEqual(ctl.main(["pending", "--root", tmp], stdin=io.StringIO(""), stdout=out), 0)
            listed = [p["id"] for p in json.loads(out.getvalue())["proposals"]]
            self.assertEqual(listed, [f"egress-{i:03d}" for i in range(100)], "the oldest first")


class ApprovalRacingTheExpiry(unittest.TestCase):
    """The operator approves just as the agent's wait runs out (which the agent can time: it
    knows its own timeout)."""

    def test_no_grant_is_in_force_for_a_proposal_its_agent_heard_expired_about(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            spool = Spool(Path(tmp))
            spool.submit(Proposal(id="egress-1", kind="egress", justification="docs",
                                  payload={"host": "docs.example"}, timeout_s=60))
            heard: list[Decision] = []
            real_add = ctl.add_grant

            def add_then_expire(root, grant):  # type: ignore[no-untyped-def]
                added = real_add(root, grant)
                # The server's wait ends right after the grant is written, before the decision.
                expiry = threading.Thread(target=lambda: heard.append(spool.expire("egress-1", "no decision")))
                expiry.start()
                expiry.join(0.5)
                return added

            out = io.StringIO()
            request = {"decision": Decision("egress-1", "approved", operator="alice").to_dict(),
                       "grant": {"kind": "route", "route": egress_route({"host": "docs.example"})}}
            with mock.patch.object(ctl, "add_grant", add_then_expire):
                code = ctl.main(["decide", "--root", tmp], stdin=io.StringIO(json.dumps(request)), stdout=out)
            deadline = time.monotonic() + 5
            while not heard and time.monotonic() < deadline:
                time.sleep(0.05)
            # Before: the expiry decided in between, the agent heard "expired" while the route was
            # granted (then taken back). Now the expiry waits and the agent hears "approved".
            self.assertEqual(code, 0, out.getvalue())
            self.assertEqual([d.verdict for d in heard], ["approved"])
            self.assertEqual([r["host"] for r in read_grants(tmp)["routes"]], ["docs.example"])

    def test_an_expiry_waits_for_a_decider_only_so_long(self) -> None:
        # The server and the proxy expire from their event loops: a decider that does not let
        # go must not stall them, nor leave the proposal waiting forever.
        from bot_bottle.sidecar.supervise import channel

        with tempfile.TemporaryDirectory() as tmp:
            spool = Spool(Path(tmp))
            spool.submit(Proposal(id="egress-1", kind="egress", justification="docs",
                                  payload={"host": "docs.example"}, timeout_s=60))
            with mock.patch.object(channel, "EXPIRE_LOCK_WAIT_S", 0.2), spool.deciding():
                started = time.monotonic()
                self.assertEqual(spool.expire("egress-1").verdict, "expired")
                self.assertLess(time.monotonic() - started, 2)


if __name__ == "__main__":
    unittest.main()
