"""The host's link to a sidecar and the sync into the store, against the real ctl (run in
process on a spool in a temporary folder instead of through ``docker exec``)."""

from __future__ import annotations

import dataclasses
import io
import json
import tempfile
import unittest
from collections.abc import Sequence
from pathlib import Path

from bot_bottle.sidecar.supervise import ctl
from bot_bottle.sidecar.supervise.channel import Decision, Proposal, Spool
from bot_bottle.supervise import sync as sync_mod
from bot_bottle.supervise.link import LinkError, RunResult, SidecarLink, line_offsets
from bot_bottle.supervise.store import Store
from bot_bottle.supervise.sync import BottleInfo

CTL_PREFIX = ["ctl"]


class LocalSidecar:
    """One bottle's sidecar filesystem on the host: a spool and an egress log, served by the
    real ctl ``main`` in process. Records every argv it was asked to run."""

    def __init__(self, root: Path, container_id: str = "c0ffee") -> None:
        self.spool = Spool(root / "spool")
        self.log = root / "egress.jsonl"
        self.container_id = container_id
        self.calls: list[list[str]] = []
        self.up = True

    def __call__(self, argv: Sequence[str], stdin: str) -> RunResult:
        self.calls.append(list(argv))
        if not self.up:
            return RunResult(1, "", "Error response from daemon: container is not running")
        if argv[0] == "inspect":
            return RunResult(0, self.container_id + "\n", "")
        out = io.StringIO()
        code = ctl.main([argv[-1], "--root", str(self.spool.root), "--events-log", str(self.log)],
                        stdin=io.StringIO(stdin), stdout=out)
        return RunResult(code, out.getvalue(), "")

    def link(self, bottle_id: str) -> SidecarLink:
        return SidecarLink(bottle_id, runner=self, command=CTL_PREFIX)

    def propose(self, host: str, *, pid: str | None = None, created_at: float = 1000.0) -> Proposal:
        proposal = Proposal(id=pid or f"egress-{host}", kind="egress", justification=f"docs on {host}",
                            payload={"host": host}, timeout_s=300, created_at=created_at)
        return self.spool.submit(proposal)

    def log_lines(self, *records: dict, compact: bool = True) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "a", encoding="utf-8") as fh:
            for record in records:
                text = json.dumps(record, separators=(",", ":"), ensure_ascii=True) if compact else json.dumps(record)
                fh.write(text + "\n")


class Base(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)
        self.store = Store(self.tmp / "supervise.db")
        self.addCleanup(self.store.close)
        self.sidecars: dict[str, LocalSidecar] = {}

    def sidecar(self, bottle_id: str) -> LocalSidecar:
        if bottle_id not in self.sidecars:
            self.sidecars[bottle_id] = LocalSidecar(self.tmp / bottle_id)
        return self.sidecars[bottle_id]

    def link_for(self, bottle_id: str) -> SidecarLink:
        return self.sidecar(bottle_id).link(bottle_id)

    def bottles(self, *ids: str) -> list[BottleInfo]:
        return [BottleInfo(i, "coder", f"label-{i}", "blue", "docker", "2026-11-22T05:00:00+00:00") for i in ids]

    def sync(self, *ids: str) -> sync_mod.SyncReport:
        return sync_mod.sync(self.store, bottles=self.bottles(*ids), link_for=self.link_for)


class Link(Base):
    def test_the_docker_argv_runs_the_ctl_with_the_sidecar_python(self) -> None:
        seen: list[list[str]] = []

        def runner(argv: Sequence[str], stdin: str) -> RunResult:
            seen.append(list(argv))
            return RunResult(0, '{"proposals": []}\n', "")

        self.assertEqual(SidecarLink("abcdef12", runner=runner).pending(), [])
        self.assertEqual(seen, [["exec", "-i", "bot-bottle-abcdef12-sidecar", "/opt/mitmproxy/bin/python", "-m",
                                 "bot_bottle.sidecar.supervise.ctl", "pending"]])

    def test_pending_and_decide_through_the_real_ctl(self) -> None:
        side = self.sidecar("abcdef12")
        side.propose("docs.example")
        link = side.link("abcdef12")
        (proposal,) = link.pending()
        self.assertEqual((proposal.id, proposal.payload["host"]), ("egress-docs.example", "docs.example"))
        grant = {"kind": "route", "route": {"host": "docs.example", "ports": [443]}}
        answer = link.decide(Decision(proposal.id, "approved", operator="ann"), grant)
        self.assertEqual(answer, {"ok": True, "grant_added": True})
        self.assertEqual(link.pending(), [])
        self.assertEqual(side.spool.decision_for(proposal.id).operator, "ann")
        self.assertEqual(link.grants()["routes"], [{"host": "docs.example", "ports": [443]}])

    def test_ctl_errors_become_link_errors_with_their_type(self) -> None:
        side = self.sidecar("abcdef12")
        side.propose("docs.example")
        link = side.link("abcdef12")
        link.decide(Decision("egress-docs.example", "rejected", reason="no"))
        with self.assertRaises(LinkError) as ctx:
            link.decide(Decision("egress-docs.example", "approved"))
        self.assertEqual(ctx.exception.kind, "already-decided")
        self.assertIn("bottle abcdef12", str(ctx.exception))
        with self.assertRaises(LinkError) as ctx:
            link.decide(Decision("egress-nothing", "approved"))
        self.assertEqual(ctx.exception.kind, "unknown-proposal")

    def test_a_stopped_sidecar_is_unreachable(self) -> None:
        side = self.sidecar("abcdef12")
        side.up = False
        with self.assertRaises(LinkError) as ctx:
            side.link("abcdef12").pending()
        self.assertEqual(ctx.exception.kind, "unreachable")
        self.assertIn("container is not running", str(ctx.exception))

    def test_output_that_is_not_json_is_an_error(self) -> None:
        link = SidecarLink("abcdef12", runner=lambda argv, stdin: RunResult(0, "Traceback...\n", ""))
        with self.assertRaises(LinkError):
            link.grants()

    def test_events_carry_the_byte_offset_of_their_line(self) -> None:
        side = self.sidecar("abcdef12")
        side.log_lines({"ts": "a", "decision": "deny", "host": "evil.example"},
                       {"ts": "b", "decision": "allow", "host": "ok.example", "note": "caf\u00e9"})
        raw = side.log.read_bytes()
        chunk = side.link("abcdef12").events(0)
        self.assertEqual(chunk.next_offset, len(raw))
        self.assertEqual([o for o, _ in chunk.records], [0, raw.index(b"\n") + 1])
        again = side.link("abcdef12").events(chunk.records[1][0])
        self.assertEqual(again.records, chunk.records[1:], "the same line has the same key from any start")

    def test_offsets_fall_back_to_indexes_when_lines_do_not_re_serialise(self) -> None:
        records = [{"a": 1}, {"b": 2}]
        self.assertEqual([o for o, _ in line_offsets(100, 100 + 40, records)], [100, 101])
        self.assertEqual([o for o, _ in line_offsets(100, 100 + 16, records)], [100, 108])


class Sync(Base):
    def test_pending_proposals_are_imported_once(self) -> None:
        self.sidecar("abcdef12").propose("docs.example")
        self.sidecar("bbbbbb22").propose("pypi.example")
        report = self.sync("abcdef12", "bbbbbb22")
        self.assertEqual((report.new_proposals, report.errors), (2, []))
        self.assertEqual({(r.bottle_id, r.payload["host"]) for r in self.store.pending()},
                         {("abcdef12", "docs.example"), ("bbbbbb22", "pypi.example")})
        self.assertEqual(self.sync("abcdef12", "bbbbbb22").new_proposals, 0)
        self.assertEqual(len(self.store.pending()), 2)

    def test_events_are_imported_incrementally_and_idempotently(self) -> None:
        side = self.sidecar("abcdef12")
        side.log_lines({"ts": "a", "decision": "deny", "host": "evil.example"})
        self.assertEqual(self.sync("abcdef12").new_events, 1)
        side.log_lines({"ts": "b", "decision": "allow", "host": "ok.example"})
        self.assertEqual(self.sync("abcdef12").new_events, 1)
        self.assertEqual(self.sync("abcdef12").new_events, 0)
        self.assertEqual([e.record["host"] for e in self.store.events("abcdef12")], ["evil.example", "ok.example"])
        # Forgetting the cursor (a second importer from 0) adds nothing twice.
        self.store.conn.execute("DELETE FROM event_cursors")
        self.assertEqual(self.sync("abcdef12").new_events, 0)
        self.assertEqual(len(self.store.events("abcdef12")), 2)

    def test_every_decision_is_imported_once_across_the_proxys_rotations(self) -> None:
        from bot_bottle.sidecar.egress.logfile import LogFile

        side = self.sidecar("abcdef12")
        side.log.parent.mkdir(parents=True, exist_ok=True)
        log = LogFile(side.log, limit=300)
        for i in range(40):
            log.write(json.dumps({"ts": str(i), "decision": "deny", "host": f"h{i}.example"}, separators=(",", ":")) + "\n")
            if i % 4 == 3:
                self.sync("abcdef12")
        log.close()
        self.sync("abcdef12")
        hosts = [e.record["host"] for e in self.store.events("abcdef12", limit=1000) if "host" in e.record]
        self.assertEqual(hosts, [f"h{i}.example" for i in range(40)])

    def test_a_new_sidecar_incarnation_is_read_from_its_start(self) -> None:
        side = self.sidecar("abcdef12")
        side.log_lines({"ts": "a", "decision": "deny", "host": "one.example"}, {"ts": "b", "decision": "deny", "host": "two.example"})
        self.sync("abcdef12")
        side.log.write_text(json.dumps({"ts": "c", "decision": "deny", "host": "three.example"}, separators=(",", ":")) + "\n")
        side.container_id = "newc0ffee"
        self.assertEqual(self.sync("abcdef12").new_events, 1)
        self.assertEqual([e.record["host"] for e in self.store.events("abcdef12")][-1], "three.example")

    def test_a_proposal_the_sidecar_expired_is_expired_in_the_store(self) -> None:
        side = self.sidecar("abcdef12")
        side.propose("docs.example")
        self.sync("abcdef12")
        side.spool.expire("egress-docs.example")
        report = self.sync("abcdef12")
        self.assertEqual(report.expired, 1)
        row = self.store.find("egress-docs.example")
        self.assertEqual((row.status, row.operator), ("expired", "bot-bottle"))
        (audit,) = self.store.audit_rows(proposal_key=row.key)
        self.assertEqual((audit.action, audit.before, audit.after), ("expire", {"status": "pending"}, {"status": "expired"}))

    def test_proposals_of_a_bottle_that_stopped_expire_but_a_broken_link_expires_nothing(self) -> None:
        self.sidecar("abcdef12").propose("docs.example")
        self.sidecar("bbbbbb22").propose("pypi.example")
        self.sync("abcdef12", "bbbbbb22")
        self.sidecars["bbbbbb22"].up = False
        report = self.sync("abcdef12", "bbbbbb22")
        self.assertEqual(report.expired, 0, "an unreachable sidecar is not a decision")
        self.assertTrue(any("bbbbbb22" in e for e in report.errors), report.errors)
        self.assertEqual(report.new_proposals, 0)
        report = self.sync("abcdef12")
        self.assertEqual(report.expired, 1)
        self.assertEqual(self.store.find("egress-pypi.example").reason, "bottle bbbbbb22 is no longer running")
        self.assertEqual(self.store.find("egress-docs.example").status, "pending")

    def test_no_engine_is_reported_and_expires_nothing(self) -> None:
        self.sidecar("abcdef12").propose("docs.example")
        self.sync("abcdef12")

        def broken() -> list[BottleInfo]:
            raise RuntimeError("docker: not found")

        original = sync_mod.running_bottles
        sync_mod.running_bottles = lambda state_root=None: broken()  # type: ignore[assignment]
        self.addCleanup(setattr, sync_mod, "running_bottles", original)
        report = sync_mod.sync(self.store, link_for=self.link_for)
        self.assertEqual(report.expired, 0)
        self.assertIn("docker: not found", report.errors[0])
        self.assertEqual(self.store.find("egress-docs.example").status, "pending")

    def test_a_grant_whose_applying_was_interrupted_ends_failed(self) -> None:
        self.sidecar("abcdef12").propose("docs.example")
        self.sidecar("abcdef12").propose("pypi.example")
        self.sync("abcdef12")
        old, recent = self.store.find("egress-docs.example"), self.store.find("egress-pypi.example")
        now = 1_800_000_000.0
        # As a decide() whose process died after recording the verdict, before applying it.
        self.store.update_proposal(old.key, expect="pending", status="approved", verdict="approved",
                                   decided_at=now - sync_mod.STUCK_AFTER_S - 60)
        self.store.update_proposal(recent.key, expect="pending", status="approved", verdict="approved",
                                   decided_at=now - 60)
        report = sync_mod.sync(self.store, bottles=self.bottles("abcdef12"), link_for=self.link_for, now=now)
        self.assertEqual(report.interrupted, 1)
        failed = self.store.get(old.key)
        self.assertEqual(failed.status, "failed")
        self.assertIn("interrupted", failed.error or "")
        self.assertEqual(self.store.get(recent.key).status, "approved", "one still being applied is left alone")
        (audit,) = [a for a in self.store.audit_rows(proposal_key=old.key) if a.action == "fail"]
        self.assertEqual(audit.operator, sync_mod.SYSTEM_OPERATOR)

    def test_a_proposal_imported_while_the_sidecar_list_was_read_is_not_expired(self) -> None:
        # Two consoles (or two overlapping syncs): A reads the sidecar's list, then the agent asks
        # and B imports the proposal, then A reconciles with its older list.
        side = self.sidecar("abcdef12")
        other = Store(self.tmp / "supervise.db")
        self.addCleanup(other.close)
        real = self.link_for

        class ListThenInterleave:
            def __init__(self, link: SidecarLink) -> None:
                self.link = link

            def pending(self) -> list[Proposal]:
                listed = self.link.pending()  # nothing yet
                # The other console's sync imports it (what its sync does with a listed proposal).
                other.add_proposal("abcdef12", side.propose("pypi.example", pid="egress-X").to_dict())
                return listed

            def __getattr__(self, name: str) -> object:
                return getattr(self.link, name)

        report = sync_mod.sync(self.store, bottles=self.bottles("abcdef12"),
                               link_for=lambda b: ListThenInterleave(real(b)))  # type: ignore[arg-type,return-value]
        self.assertEqual(report.expired, 0)
        self.assertEqual(self.store.find("egress-X").status, "pending")
        self.sync("abcdef12")
        self.assertEqual([r.id for r in self.store.pending()], ["egress-X"], "and it stays")

    def test_a_proposal_a_sync_expired_that_the_sidecar_still_lists_is_pending_again(self) -> None:
        self.sidecar("abcdef12").propose("docs.example")
        self.sync("abcdef12")
        row = self.store.find("egress-docs.example")
        # As an earlier, mistaken expiry by a sync (an older list, a stale bottle list).
        self.store.update_proposal(row.key, expect="pending", status="expired", verdict="expired",
                                   reason="the agent stopped waiting (no decision in time)", decided_at=1.0,
                                   operator=sync_mod.SYSTEM_OPERATOR)
        report = self.sync("abcdef12")
        again = self.store.find("egress-docs.example")
        self.assertEqual((again.status, again.verdict, again.operator), ("pending", None, None))
        self.assertEqual(report.reopened, 1)
        self.assertEqual(self.store.audit_rows(proposal_key=row.key)[-1].action, "reopen")
        # An operator's own decision is never undone this way.
        self.store.update_proposal(row.key, expect="pending", status="rejected", verdict="rejected", reason="no",
                                   operator="ann")
        self.assertEqual(self.sync("abcdef12").reopened, 0)
        self.assertEqual(self.store.find("egress-docs.example").status, "rejected")

    def test_a_slow_sidecar_holds_up_neither_the_others_nor_the_sync(self) -> None:
        import threading
        import time

        self.sidecar("abcdef12").propose("docs.example")
        slow = self.sidecar("bbbbbb22")
        slow.propose("pypi.example")
        release = threading.Event()
        self.addCleanup(release.set)
        calls: list[str] = []

        def hanging(argv: Sequence[str], stdin: str) -> RunResult:
            calls.append(argv[-1])
            release.wait(30)
            return LocalSidecar.__call__(slow, argv, stdin)

        fetches = sync_mod.Fetches()

        def link_for(bottle_id: str) -> SidecarLink:
            if bottle_id == "bbbbbb22":
                return SidecarLink(bottle_id, runner=hanging, command=CTL_PREFIX)
            return self.link_for(bottle_id)

        def run() -> sync_mod.SyncReport:
            return sync_mod.sync(self.store, bottles=self.bottles("abcdef12", "bbbbbb22"), link_for=link_for,
                                 wait_s=0.3, fetches=fetches)

        t0 = time.monotonic()
        report = run()
        self.assertLess(time.monotonic() - t0, 3.0)
        self.assertEqual([r.bottle_id for r in self.store.pending()], ["abcdef12"], "the quick one is imported")
        self.assertEqual(report.slow, ["bbbbbb22"])
        self.assertTrue(any("bbbbbb22" in e and "slow" in e for e in report.errors), report.errors)
        self.assertEqual(fetches.slow(after=0.0), ["bbbbbb22"])
        report = run()  # its question is still out: not asked a second time
        self.assertEqual(calls, ["pending"])
        self.assertEqual(report.slow, ["bbbbbb22"])
        release.set()
        deadline = time.monotonic() + 10
        while fetches.slow(after=0.0) and time.monotonic() < deadline:
            time.sleep(0.02)
        report = run()
        self.assertEqual(report.errors, [])
        self.assertEqual(sorted(r.bottle_id for r in self.store.pending()), ["abcdef12", "bbbbbb22"])

    def test_only_bottles_with_state_here_are_this_users(self) -> None:
        from bot_bottle.backend.docker.running import RunningBottle
        from bot_bottle.state import Metadata, StateDir

        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            mine = StateDir(root, "abcdef12")
            mine.create()
            mine.write(Metadata(id="abcdef12", agent="a", bottle="b", backend="docker", color="green"))

            def engine_row(bottle_id: str) -> RunningBottle:
                return RunningBottle(bottle_id, "a", None, "running", "2026-11-22T05:00:00+00:00", True, "img")

            found = [engine_row("abcdef12"), engine_row("bbbbbb22"), engine_row("?")]
            own = sync_mod.own_bottles(found, root)
            self.assertFalse(own[0].offline)
            down = dataclasses.replace(engine_row("abcdef12"), sidecar_running=False)
            (offline,) = sync_mod.own_bottles([down], root)
        self.assertEqual([(b.id, b.color) for b in own], [("abcdef12", "green")],
                         "another user's (or a test's) bottle, and a bad id, are left out")
        self.assertTrue(offline.offline, "a bottle whose sidecar stopped is shown offline")
        self.assertTrue(offline.to_dict()["offline"])

    def test_uptime(self) -> None:
        (b,) = self.bottles("abcdef12")
        started = 1795323600.0  # 2026-11-22T05:00:00Z
        self.assertEqual(b.uptime(now=started + 90), 90)
        self.assertIsNone(BottleInfo("x", "a", None, None, "docker", "?").uptime())


if __name__ == "__main__":
    unittest.main()
