"""The supervise store: migrations (from nothing and from v1), two writers, idempotent imports."""

from __future__ import annotations

import sqlite3
import tempfile
import threading
import unittest
from pathlib import Path

from bot_bottle.supervise import store as store_mod
from bot_bottle.supervise.store import AuditEntry, StaleProposal, Store, StoreError

PROPOSAL = {
    "id": "p-1", "kind": "egress", "created_at": 1000.0, "justification": "need the docs",
    "payload": {"host": "docs.example", "paths": [], "methods": [], "ports": []}, "timeout_s": 300,
}


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


class Migrations(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.path = Path(tmp.name) / "home" / "supervise.db"

    def test_an_empty_file_reaches_the_latest_schema(self) -> None:
        with Store(self.path) as st:
            self.assertEqual(st.version, store_mod.SCHEMA_VERSION)
            self.assertGreaterEqual(store_mod.SCHEMA_VERSION, 2)
            self.assertEqual(st.conn.execute("PRAGMA journal_mode").fetchone()[0], "wal")
            self.assertTrue({"updated_at", "error"} <= columns(st.conn, "proposals"))
            self.assertIn("outcome", columns(st.conn, "audit"))
        self.assertEqual(self.path.stat().st_mode & 0o777, 0o600, "only the operator reads decisions")

    def test_opening_again_changes_nothing(self) -> None:
        with Store(self.path) as st:
            st.add_proposal("abcdef12", PROPOSAL)
        with Store(self.path) as st:
            self.assertEqual(st.version, store_mod.SCHEMA_VERSION)
            self.assertEqual(len(st.pending()), 1)
            self.assertEqual(st.conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0], 1)

    def test_a_v1_database_with_rows_migrates_and_keeps_them(self) -> None:
        conn = store_mod.connect(self.path)
        self.assertEqual(store_mod.migrate(conn, target=1), 1)
        self.assertNotIn("updated_at", columns(conn, "proposals"))
        conn.execute(
            "INSERT INTO proposals (bottle_id, id, kind, payload, justification, timeout_s, status, created_at,"
            " imported_at) VALUES ('abcdef12', 'old', 'egress', '{\"host\":\"a.example\"}', 'why', 60, 'pending', 5, 7)"
        )
        conn.execute(
            "INSERT INTO proposals (bottle_id, id, kind, payload, status, created_at, imported_at, decided_at,"
            " verdict, operator) VALUES ('abcdef12', 'done', 'egress', '{}', 'rejected', 5, 7, 9, 'rejected', 'ann')"
        )
        conn.execute("INSERT INTO audit (at, operator, action) VALUES (9, 'ann', 'reject')")
        conn.close()

        with Store(self.path) as st:
            self.assertEqual(st.version, store_mod.SCHEMA_VERSION)
            old = st.find("old")
            self.assertEqual(old.payload, {"host": "a.example"})
            self.assertEqual(old.status, "pending")
            self.assertEqual(old.updated_at, 7, "a pending v1 row last changed when imported")
            self.assertEqual(st.find("done").updated_at, 9, "a decided v1 row last changed when decided")
            (row,) = st.audit_rows()
            self.assertEqual((row.operator, row.action, row.outcome), ("ann", "reject", "ok"))
            indexes = {r[0] for r in st.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
            self.assertIn("proposals_by_status", indexes)

    def test_a_newer_schema_is_refused_not_misread(self) -> None:
        Store(self.path).close()
        conn = sqlite3.connect(self.path)
        conn.execute("UPDATE schema_version SET version = 99")
        conn.commit()
        conn.close()
        with self.assertRaises(StoreError) as ctx:
            Store(self.path)
        self.assertIn("schema version 99", str(ctx.exception))
        self.assertIn(str(self.path), str(ctx.exception))

    def test_a_file_that_is_not_a_database_is_a_clear_error(self) -> None:
        self.path.parent.mkdir(parents=True)
        self.path.write_bytes(b"this is not sqlite at all, just some bytes" * 100)
        with self.assertRaises(StoreError) as ctx:
            Store(self.path)
        self.assertIn(str(self.path), str(ctx.exception))
        self.assertIn("move the file aside", ctx.exception.hint or "", "the way out, as for a schema it cannot read")

    def test_a_damaged_database_says_how_to_start_over(self) -> None:
        Store(self.path).close()
        data = self.path.read_bytes()
        self.path.write_bytes(data[:100] + b"\xff" * (len(data) - 100))  # a valid header, garbage pages
        with self.assertRaises(StoreError) as ctx:
            Store(self.path)
        self.assertIn(str(self.path), str(ctx.exception))
        self.assertIn("move the file aside", ctx.exception.hint or "")

    def test_two_processes_migrating_at_once_run_each_step_once(self) -> None:
        # Several openers of one new file at the same moment (the console, --once, a launch):
        # none may fail. Ten new files, so a race that loses one time in twenty shows here.
        for round_ in range(10):
            path = self.path.with_name(f"race-{round_}.db")
            errors: list[BaseException] = []
            barrier = threading.Barrier(6)

            def open_one() -> None:
                try:
                    barrier.wait()
                    Store(path).close()
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

            threads = [threading.Thread(target=open_one) for _ in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(errors, [], f"round {round_}")
            with Store(path) as st:
                self.assertEqual(st.version, store_mod.SCHEMA_VERSION)


class Proposals(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.path = Path(tmp.name) / "supervise.db"
        self.store = Store(self.path)
        self.addCleanup(self.store.close)

    def test_a_proposal_is_imported_once(self) -> None:
        self.assertTrue(self.store.add_proposal("abcdef12", PROPOSAL))
        self.assertFalse(self.store.add_proposal("abcdef12", PROPOSAL))
        (row,) = self.store.pending()
        self.assertEqual((row.bottle_id, row.id, row.kind), ("abcdef12", "p-1", "egress"))
        self.assertEqual(row.payload["host"], "docs.example")
        self.assertEqual(row.timeout_s, 300)

    def test_the_same_id_in_two_bottles_needs_the_bottle_named(self) -> None:
        self.store.add_proposal("abcdef12", PROPOSAL)
        self.store.add_proposal("bbbbbb22", PROPOSAL)
        with self.assertRaises(StoreError) as ctx:
            self.store.find("p-1")
        self.assertIn("BOTTLE/ID", ctx.exception.hint or "")
        self.assertEqual(self.store.find("bbbbbb22/p-1").bottle_id, "bbbbbb22")
        self.assertEqual(self.store.find("p-1", "abcdef12").bottle_id, "abcdef12")
        with self.assertRaises(StoreError):
            self.store.find("nope")

    def test_a_missing_id_is_named(self) -> None:
        with self.assertRaises(StoreError) as ctx:
            self.store.add_proposal("abcdef12", {"kind": "egress"})
        self.assertIn("'id'", str(ctx.exception))

    def test_update_checks_the_expected_status_and_audits_in_the_same_transaction(self) -> None:
        self.store.add_proposal("abcdef12", PROPOSAL)
        row = self.store.find("p-1")
        entry = AuditEntry(operator="ann", action="approve", bottle_id="abcdef12", proposal_key=row.key,
                           reason="fine", before={"status": "pending"}, after={"status": "approved"})
        new = self.store.update_proposal(row.key, expect="pending", audit=entry, status="approved",
                                         verdict="approved", operator="ann", change={"host": "x.example"})
        self.assertEqual((new.status, new.operator, new.change), ("approved", "ann", {"host": "x.example"}))
        with self.assertRaises(StaleProposal):
            self.store.update_proposal(row.key, expect="pending", audit=entry, status="rejected")
        self.assertEqual(len(self.store.audit_rows(proposal_key=row.key)), 1, "no audit row for the lost race")
        self.assertEqual(self.store.get(row.key).status, "approved")
        with self.assertRaises(ValueError):
            self.store.update_proposal(row.key, expect="approved", bottle_id="other")

    def test_two_connections_write_concurrently_without_losing_rows(self) -> None:
        other = Store(self.path)
        self.addCleanup(other.close)
        errors: list[BaseException] = []

        def write(st: Store, bottle: str) -> None:
            try:
                for i in range(40):
                    st.add_proposal(bottle, {**PROPOSAL, "id": f"p{i}"})
                    st.audit(AuditEntry(operator=bottle, action="note"))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(self.store, "aaaaaa11")),
                   threading.Thread(target=write, args=(other, "bbbbbb22"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(self.store.pending("aaaaaa11")), 40)
        self.assertEqual(len(other.pending("bbbbbb22")), 40)
        self.assertEqual(len(self.store.audit_rows()), 80)

    def test_only_one_of_two_deciders_wins(self) -> None:
        self.store.add_proposal("abcdef12", PROPOSAL)
        key = self.store.find("p-1").key
        other = Store(self.path)
        self.addCleanup(other.close)
        outcomes: list[str] = []
        barrier = threading.Barrier(2)

        def decide(st: Store, verdict: str) -> None:
            barrier.wait()
            try:
                st.update_proposal(key, expect="pending", status=verdict, verdict=verdict,
                                   audit=AuditEntry(operator=verdict, action=verdict, proposal_key=key))
                outcomes.append(verdict)
            except StaleProposal:
                outcomes.append("stale")

        threads = [threading.Thread(target=decide, args=(self.store, "approved")),
                   threading.Thread(target=decide, args=(other, "rejected"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(outcomes.count("stale"), 1, outcomes)
        winner = next(o for o in outcomes if o != "stale")
        self.assertEqual(self.store.get(key).status, winner)
        self.assertEqual([r.action for r in self.store.audit_rows(proposal_key=key)], [winner])


class Events(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.store = Store(Path(tmp.name) / "supervise.db")
        self.addCleanup(self.store.close)

    def test_importing_the_same_lines_twice_stores_them_once(self) -> None:
        lines = [(0, {"ts": "t0", "decision": "deny", "host": "evil.example"}),
                 (60, {"ts": "t1", "decision": "allow", "host": "ok.example"})]
        self.assertEqual(self.store.import_events("abcdef12", "c1", lines, next_offset=120), 2)
        self.assertEqual(self.store.import_events("abcdef12", "c1", lines, next_offset=120), 0)
        self.assertEqual(self.store.event_cursor("abcdef12", "c1"), 120)
        more = [*lines, (120, {"ts": "t2", "decision": "deny", "host": "x.example"})]
        self.assertEqual(self.store.import_events("abcdef12", "c1", more, next_offset=180), 1)
        self.assertEqual([e.record["host"] for e in self.store.events("abcdef12")],
                         ["evil.example", "ok.example", "x.example"])

    def test_the_cursor_never_moves_back(self) -> None:
        self.store.import_events("abcdef12", "c1", [], next_offset=500)
        self.store.import_events("abcdef12", "c1", [], next_offset=100)
        self.assertEqual(self.store.event_cursor("abcdef12", "c1"), 500)

    def test_every_incarnations_cursor_is_read_at_once(self) -> None:
        self.store.import_events("abcdef12", "c1", [], next_offset=500)
        self.store.import_events("abcdef12", "c2", [], next_offset=70)
        self.store.import_events("other000", "c9", [], next_offset=9)
        self.assertEqual(self.store.event_cursors("abcdef12"), {"c1": 500, "c2": 70})
        self.assertEqual(self.store.event_cursors("nobody00"), {})

    def test_a_new_sidecar_incarnation_starts_its_own_cursor(self) -> None:
        self.store.import_events("abcdef12", "c1", [(0, {"decision": "deny"})], next_offset=50)
        self.assertEqual(self.store.event_cursor("abcdef12", "c2"), 0)
        self.assertEqual(self.store.import_events("abcdef12", "c2", [(0, {"decision": "allow"})], next_offset=50), 1)
        self.assertEqual(len(self.store.events("abcdef12")), 2)
        self.assertEqual(self.store.events("other000"), [])

    def test_only_the_newest_events_of_a_bottle_are_kept(self) -> None:
        small = Store(self.store.path, max_events=5)
        self.addCleanup(small.close)
        small.import_events("abcdef12", "c1", [(i * 10, {"n": i}) for i in range(8)], next_offset=80)
        small.import_events("other000", "c9", [(0, {"n": 99})], next_offset=10)
        self.assertEqual([e.record["n"] for e in small.events("abcdef12")], [3, 4, 5, 6, 7])
        self.assertEqual([e.record["n"] for e in small.events("other000")], [99], "other bottles keep theirs")

    def test_events_are_limited_to_the_newest(self) -> None:
        self.store.import_events("abcdef12", "c1", [(i * 10, {"n": i}) for i in range(30)], next_offset=300)
        self.assertEqual([e.record["n"] for e in self.store.events("abcdef12", limit=5)], [25, 26, 27, 28, 29])


if __name__ == "__main__":
    unittest.main()
