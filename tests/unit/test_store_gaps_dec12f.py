"""The supervise store and console, the gaps left by the last round: the events query reads an
index (schema v3) and an older file is brought to it safely, a newer one refused by name; a
sync goes on past a damaged row, leaving it as it is; a bottle whose sidecar is gone and a
store that cannot be written are said plainly; text from a bottle reaches no terminal raw."""

from __future__ import annotations

import functools
import io
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any
from unittest import mock

from textual.widgets import DataTable

from bot_bottle import cli
from bot_bottle.supervise import apply
from bot_bottle.supervise import store as store_mod
from bot_bottle.supervise import sync as sync_mod
from bot_bottle.supervise.console import SuperviseApp
from bot_bottle.supervise.link import RunResult, SidecarLink
from bot_bottle.supervise.store import Store, StoreError
from bot_bottle.supervise.sync import BottleInfo, sync
from tests.unit.test_console_gaps_dec06c import IDS, MANY
from tests.unit.test_console_gaps_dec08e import CliCase, damage, synced_again
from tests.unit.test_supervise_console import NOW, cell_texts
from tests.unit.test_supervise_console_screen import screen_text

ROOT = Path(__file__).resolve().parents[2]

# The schema as bot-bottle's schema v2 wrote it, kept here as it was: a v2 file is what users
# have, whatever the migrations in the code become.
V2_SQL = """
CREATE TABLE proposals (
    key INTEGER PRIMARY KEY, bottle_id TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL,
    payload TEXT NOT NULL, justification TEXT NOT NULL DEFAULT '', timeout_s REAL, status TEXT NOT NULL,
    created_at REAL NOT NULL, imported_at REAL NOT NULL, decided_at REAL, verdict TEXT, reason TEXT,
    change TEXT, operator TEXT, UNIQUE (bottle_id, id)
);
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY, at REAL NOT NULL, operator TEXT NOT NULL, action TEXT NOT NULL, bottle_id TEXT,
    proposal_key INTEGER, reason TEXT, before TEXT, after TEXT
);
CREATE TABLE egress_events (
    bottle_id TEXT NOT NULL, source TEXT NOT NULL, offset INTEGER NOT NULL, ts TEXT, record TEXT NOT NULL,
    imported_at REAL NOT NULL, PRIMARY KEY (bottle_id, source, offset)
);
CREATE TABLE event_cursors (
    bottle_id TEXT NOT NULL, source TEXT NOT NULL, offset INTEGER NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (bottle_id, source)
);
ALTER TABLE proposals ADD COLUMN updated_at REAL;
ALTER TABLE proposals ADD COLUMN error TEXT;
ALTER TABLE audit ADD COLUMN outcome TEXT NOT NULL DEFAULT 'ok';
CREATE INDEX proposals_by_status ON proposals (status, created_at);
CREATE INDEX events_by_bottle ON egress_events (bottle_id, imported_at);
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version (version) VALUES (2);
"""
EVENTS_PER_BOTTLE = 300


def v2_store(path: Path) -> None:
    """A v2 file with rows in every table, as the previous bot-bottle left it (WAL, 600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(V2_SQL)
    conn.execute("BEGIN")
    for n, (bottle, status) in enumerate((("b1", "pending"), ("b1", "applied"), ("b2", "rejected"))):
        conn.execute(
            "INSERT INTO proposals (bottle_id, id, kind, payload, justification, timeout_s, status, created_at,"
            " imported_at, updated_at, verdict, operator) VALUES (?, ?, 'egress', ?, 'why', 300, ?, ?, ?, ?, ?, ?)",
            (bottle, f"p{n}", '{"host":"h%d.example"}' % n, status, 1000 + n, 1001 + n, 1002 + n,
             None if status == "pending" else status, None if status == "pending" else "ann"),
        )
        conn.execute("INSERT INTO audit (at, operator, action, bottle_id, proposal_key, reason, before, after)"
                     " VALUES (?, 'ann', ?, ?, ?, 'r', '{}', '{}')", (1003 + n, status, bottle, n + 1))
    for bottle in ("b1", "b2"):
        for i in range(EVENTS_PER_BOTTLE):
            conn.execute("INSERT INTO egress_events VALUES (?, ?, ?, ?, ?, ?)",
                         (bottle, "c1" if i % 3 else "c2", i, f"2026-11-22T05:00:{i % 60:02d}.000Z",
                          '{"decision":"deny","host":"x%d.example"}' % i, 2000 + i // 7))
        conn.execute("INSERT INTO event_cursors VALUES (?, 'c1', 4096, 2100)", (bottle,))
    conn.execute("COMMIT")
    conn.close()


def rows_of(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table bot-bottle keeps (the version table aside), in a stable order."""
    conn = sqlite3.connect(path)
    try:
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
                for table in ("proposals", "audit", "egress_events", "event_cursors")}
    finally:
        conn.close()


def plans_of(st: Store, run: Any) -> dict[str, list[str]]:
    """The query plan of each statement on egress_events that ``run`` makes ``st`` run."""
    said: list[str] = []
    st.conn.set_trace_callback(said.append)
    try:
        run()
    finally:
        st.conn.set_trace_callback(None)
    plans = {}
    for sql in said:
        if "egress_events" in sql and sql.lstrip().upper().startswith(("SELECT", "DELETE")):
            plans[sql] = [row[3] for row in st.conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
    return plans


class SchemaV3(unittest.TestCase):
    """Finding: the events pane's query sorted every event of a bottle on each refresh where
    anything changed (12-20 ms at 10,000 events): no index gave its order."""

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.path = Path(tmp.name) / "home" / "supervise.db"

    def test_a_v2_file_is_brought_to_v3_with_every_row_kept(self) -> None:
        v2_store(self.path)
        before = rows_of(self.path)
        with Store(self.path) as st:
            self.assertEqual(st.version, 3)
            self.assertEqual(len(st.events("b1", limit=10_000)), EVENTS_PER_BOTTLE)
            self.assertEqual([p.id for p in st.pending()], ["p0"])
            indexes = {r[0] for r in st.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        self.assertEqual(rows_of(self.path), before, "not a row changed")
        self.assertIn("events_newest", indexes)
        self.assertNotIn("events_by_bottle", indexes, "its columns lead the new index: one index less to keep")
        self.assertIn("proposals_by_status", indexes)
        with Store(self.path) as st:
            self.assertEqual([tuple(r) for r in st.conn.execute("SELECT version FROM schema_version")], [(3,)])

    def test_the_events_query_and_the_bound_read_the_index_without_sorting(self) -> None:
        v2_store(self.path)
        with Store(self.path, max_events=EVENTS_PER_BOTTLE) as st:
            for plans in (plans_of(st, lambda: st.events("b1")),
                          plans_of(st, lambda: st.import_events("b1", "c3", [(0, {"decision": "deny"})],
                                                                next_offset=10))):
                self.assertTrue(plans)
                for sql, plan in plans.items():
                    self.assertFalse([step for step in plan if "TEMP B-TREE" in step], (sql, plan))
            events = plans_of(st, lambda: st.events("b1"))
            self.assertTrue(any("USING INDEX events_newest" in step for plan in events.values() for step in plan),
                            events)
            version = plans_of(st, lambda: st.events_version("b1"))
            self.assertTrue(all(any("COVERING INDEX" in step for step in plan) for plan in version.values()), version)
            # The order is the one the pane showed before: newest import, then source, then offset.
            newest = st.events("b1", limit=3)
        self.assertEqual([(e.source, e.offset) for e in newest], [("c2", 294), ("c2", 297), ("c3", 0)])

    def test_two_processes_opening_a_v2_file_at_once_both_get_v3(self) -> None:
        v2_store(self.path)
        before = rows_of(self.path)
        opener = ("import sys\nfrom pathlib import Path\nfrom bot_bottle.supervise.store import Store\n"
                  "sys.stdin.readline()\nwith Store(Path(sys.argv[1])) as st:\n"
                  "    print(st.version, len(st.events('b2', limit=10000)), flush=True)\n")
        # Held under a write lock of ours until both wait for it: then they race for it.
        blocker = sqlite3.connect(self.path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        procs = [subprocess.Popen([sys.executable, "-c", opener, str(self.path)], cwd=ROOT, text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(3)]
        try:
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            time.sleep(0.5)
            blocker.execute("COMMIT")
            outs = [proc.communicate(timeout=60) for proc in procs]
        finally:
            blocker.close()
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        for proc, (out, err) in zip(procs, outs):
            self.assertEqual((proc.returncode, out.strip()), (0, f"3 {EVENTS_PER_BOTTLE}"), err)
        self.assertEqual(rows_of(self.path), before)
        conn = sqlite3.connect(self.path)
        try:
            self.assertEqual(conn.execute("SELECT version FROM schema_version").fetchall(), [(3,)])
            self.assertEqual(conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'events_newest'").fetchone(),
                             (1,))
        finally:
            conn.close()

    def test_a_file_from_a_newer_bot_bottle_is_refused_by_name_and_left_as_it_is(self) -> None:
        v2_store(self.path)
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("UPDATE schema_version SET version = 4")
        conn.execute("CREATE TABLE later (x TEXT)")  # what a v4 bot-bottle may have added
        conn.close()
        before = rows_of(self.path)
        with self.assertRaises(StoreError) as caught:
            Store(self.path)
        self.assertIn(f"{self.path}: schema version 4 is newer than this bot-bottle understands (3)",
                      str(caught.exception))
        self.assertIn("upgrade bot-bottle", caught.exception.hint or "")
        self.assertEqual(rows_of(self.path), before)
        conn = sqlite3.connect(self.path)
        try:
            self.assertEqual(conn.execute("SELECT version FROM schema_version").fetchall(), [(4,)], "no downgrade")
        finally:
            conn.close()

    def test_a_newer_bot_bottle_migrating_meanwhile_is_refused_too(self) -> None:
        """Read as v2 first, then found at v4 under the write lock (a newer bot-bottle got there
        between): refused, not taken for done."""
        v2_store(self.path)
        conn = store_mod.connect(self.path)
        real = store_mod.schema_version
        seen = []

        def newer_after_the_first_read(c: sqlite3.Connection) -> int:
            seen.append(real(c))
            if len(seen) == 2:
                c.execute("UPDATE schema_version SET version = 4")
            return real(c)

        try:
            with mock.patch.object(store_mod, "schema_version", newer_after_the_first_read), \
                    self.assertRaises(StoreError) as caught:
                store_mod.migrate(conn, path=self.path)
        finally:
            conn.close()
        self.assertIn("schema version 4 is newer", str(caught.exception))
        self.assertIn(str(self.path), str(caught.exception))


NOT_UTF8 = "CAST(X'41FF42' AS TEXT)"  # "A", a byte no UTF-8 text holds, "B"


def raw(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows as bytes, read past SQLite's text decoding (so a damaged row can be compared)."""
    conn = sqlite3.connect(db)
    conn.text_factory = bytes
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


class PastADamagedRow(CliCase):
    """Finding: a sync stopped at the first damaged row (``DamagedRow``): nothing was imported,
    expired or failed for any bottle until the file was moved aside."""

    def setUp(self) -> None:
        super().setUp()
        self.imported((IDS[0], "egress-one"), (IDS[1], "egress-two"), (IDS[2], "egress-three"))
        damage(self.db, f"UPDATE proposals SET justification = {NOT_UTF8} WHERE id = 'egress-one'")
        self.damaged_before = raw(self.db, "SELECT * FROM proposals WHERE id = 'egress-one'")

    def sync(self, bottles: list[BottleInfo] | None = None, **kwargs: Any) -> sync_mod.SyncReport:
        with Store(self.db) as st:
            return sync(st, bottles=MANY if bottles is None else bottles, link_for=self.link_for, **kwargs)

    def assert_left_as_it_is(self, report: sync_mod.SyncReport) -> None:
        self.assertEqual(raw(self.db, "SELECT * FROM proposals WHERE id = 'egress-one'"), self.damaged_before)
        self.assertEqual([(d.row.split(" (#")[0], d.column) for d in report.damaged],
                         [(f"proposal {IDS[0]}/egress-one", "justification")], "named once, with its column")
        said = [line for line in report.problems if "egress-one" in line]
        self.assertEqual(len(said), 1, report.problems)
        self.assertIn("an entry in it is damaged", said[0])
        self.assertIn("left as it is", said[0])

    def test_the_other_rows_are_synced_as_before(self) -> None:
        self.sidecars[IDS[1]].spool.expire("egress-two")  # its agent stopped waiting
        self.propose(IDS[3], "egress", {"host": "four.example"}, "egress-four")
        self.sidecars[IDS[2]].log_lines({"ts": "2026-11-22T05:29:01.000Z", "decision": "deny", "host": "x.example"})
        with Store(self.db) as st:
            audited = len(st.audit_rows(proposal_key=1))
        report = self.sync()
        self.assertEqual((report.new_proposals, report.expired, report.new_events), (1, 1, 1))
        self.assertEqual(statuses(self.db), {f"{IDS[0]}/egress-one": "pending", f"{IDS[1]}/egress-two": "expired",
                                           f"{IDS[2]}/egress-three": "pending", f"{IDS[3]}/egress-four": "pending"})
        self.assert_left_as_it_is(report)
        with Store(self.db) as st:
            self.assertEqual(len(st.audit_rows(proposal_key=1)), audited, "no audit row: nothing was done to it")

    def test_nothing_is_decided_about_it_when_its_wait_ends_or_its_bottle_stops(self) -> None:
        self.sidecars[IDS[0]].spool.expire("egress-one")
        report = self.sync()
        self.assert_left_as_it_is(report)
        self.assertEqual(report.expired, 0)
        # Now no bottle runs: every whole pending proposal is expired, the damaged one is not.
        report = self.sync(bottles=[])
        self.assert_left_as_it_is(report)
        self.assertEqual(statuses(self.db), {f"{IDS[0]}/egress-one": "pending", f"{IDS[1]}/egress-two": "expired",
                                           f"{IDS[2]}/egress-three": "expired"})

    def test_a_damaged_granted_row_is_not_failed_and_a_whole_one_is(self) -> None:
        damage(self.db, "UPDATE proposals SET status = 'approved', decided_at = 1, updated_at = 1")
        report = self.sync(now=NOW)
        self.assertEqual(report.interrupted, 2)
        self.assertEqual(statuses(self.db), {f"{IDS[0]}/egress-one": "approved", f"{IDS[1]}/egress-two": "failed",
                                           f"{IDS[2]}/egress-three": "failed"})
        self.assertEqual([d.column for d in report.damaged], ["justification"])

    def test_a_damaged_cursor_is_reported_and_its_log_read_again_without_duplicates(self) -> None:
        for bottle in IDS[:2]:
            self.sidecars[bottle].log_lines({"ts": "2026-11-22T05:29:01.000Z", "decision": "deny", "host": "y.example"})
        self.sync()
        damage(self.db, f"UPDATE proposals SET justification = 'fine' WHERE id = 'egress-one'")
        damage(self.db, f"UPDATE event_cursors SET updated_at = {NOT_UTF8} WHERE bottle_id = ?", IDS[0])
        for bottle in IDS[:2]:
            self.sidecars[bottle].log_lines({"ts": "2026-11-22T05:29:02.000Z", "decision": "deny", "host": "z.example"})
        self.propose(IDS[0], "egress", {"host": "five.example"}, "egress-five")
        report = self.sync()
        self.assertEqual((report.new_proposals, report.new_events), (1, 2))
        self.assertEqual([d.row for d in report.damaged], [f"event cursor of bottle {IDS[0]}"])
        with Store(self.db) as st:
            self.assertEqual([e.record["host"] for e in st.events(IDS[1])], ["y.example", "z.example"])
            self.assertEqual([e.record["host"] for e in st.events(IDS[0])], ["y.example", "z.example"])

    def test_once_lists_the_others_and_names_it_once(self) -> None:
        for fmt in ("text", "json"):
            code, out, err = cli_run(self, "--once", "--format", fmt, running=MANY)
            self.assertEqual(code, 1, err)
            self.assertNotIn("Traceback", err)
            self.assertIn("egress-two", out)
            self.assertIn("egress-three", out)
            self.assertEqual(err.count("column justification"), 1, err)
            self.assertIn("left as it is", err)
            self.assertIn("hint: move the file aside", err)
        self.assertEqual(set(statuses(self.db).values()), {"pending"}, "a sync that goes on expires nothing unasked")

    def test_a_console_names_it_and_keeps_syncing(self) -> None:
        seen: list[Any] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            self.propose(IDS[4], "egress", {"host": "six.example"}, "egress-six")
            await synced_again(self, app, pilot)
            seen.append(cell_texts(app.query_one("#proposals", DataTable)))
            seen.append(screen_text(app))
            seen.append(app.last_sync)

        self.drive(script, size=(160, 40))
        rows, text, report = seen
        self.assertEqual(len(rows), 3, "the others and the one that came since")
        self.assertIn("six.example", text)
        self.assertIn("Pending proposals (3; 1 damaged, not shown)", text)
        self.assertIn(f"an entry in it is damaged (proposal {IDS[0]}/egress-one", text)
        self.assertEqual(len(report.damaged), 1)



def removed(argv: Sequence[str], stdin: str) -> RunResult:
    """What Docker answers for a sidecar container that was removed (exit 1, its words)."""
    name = argv[-1] if argv[0] == "inspect" else argv[2]
    return RunResult(1, "", f"Error response from daemon: No such container: {name}")


def stopped(argv: Sequence[str], stdin: str) -> RunResult:
    """What Docker answers for a sidecar container that is stopped."""
    return RunResult(1, "", "Error response from daemon: container 3f2a9c is not running")


class SidecarGone(CliCase):
    """What the operator sees when a bottle's sidecar went (stopped, or its container removed)
    while proposals of it are pending."""

    def setUp(self) -> None:
        super().setUp()
        self.imported((IDS[0], "egress-one"), (IDS[0], "egress-two"), (IDS[1], "egress-three"))
        self.runner = removed

    def links(self, bottle_id: str) -> Any:
        if bottle_id == IDS[0]:
            return SidecarLink(bottle_id, runner=self.runner)  # the docker exec argv, as run for real
        return self.link_for(bottle_id)

    def test_once_names_the_bottle_keeps_its_proposals_and_exits_1(self) -> None:
        for self.runner in (removed, stopped):
            code, out, err = cli_run(self, "--once", running=MANY, link_for=self.links)
            self.assertEqual(code, 1, err)
            self.assertNotIn("Traceback", err)
            self.assertIn(f"bottle {IDS[0]}: cannot run supervise pending in bot-bottle-{IDS[0]}-sidecar", err)
            self.assertIn(f"the proposals of {IDS[0]} are as last read", err)
            self.assertIn("egress-one", out)
        self.assertEqual(set(statuses(self.db).values()), {"pending"}, "not expired: nobody knows their wait ended")

    def test_approving_fails_saying_why_and_exits_1(self) -> None:
        code, out, err = cli_run(self, "--approve", "egress-one", running=MANY, link_for=self.links)
        self.assertEqual(code, 1, err)
        self.assertNotIn("Traceback", err)
        self.assertIn(f"{IDS[0]}/egress-one: failed (the sidecar did not take the grant", err)
        self.assertIn(f"No such container: bot-bottle-{IDS[0]}-sidecar", err)
        self.assertFalse((self.layout.state_dir / IDS[0] / "approved_routes.json").exists(), "no route kept")

    def test_a_rejection_its_agent_never_heard_exits_1(self) -> None:
        code, out, err = cli_run(self, "--reject", "egress-two", "--reason", "no", running=MANY, link_for=self.links)
        self.assertEqual(code, 1, (out, err))
        self.assertIn(f"{IDS[0]}/egress-two: rejected (not delivered to the sidecar", err)
        self.assertIn("its agent was not told", err)
        self.assertEqual(statuses(self.db)[f"{IDS[0]}/egress-two"], "rejected", "recorded all the same")
        code, out, err = cli_run(self, "--reject", "egress-three", "--reason", "no", running=MANY, link_for=self.links)
        self.assertEqual((code, err), (0, ""), "a rejection its agent heard")

    def test_the_console_marks_the_bottle_and_an_approval_says_it_failed(self) -> None:
        seen: list[Any] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            seen.append(screen_text(app))
            await pilot.press("a")
            await self.until(pilot, lambda: "failed" in screen_text(app))
            await self.settled(app, pilot)
            seen.append(screen_text(app))
            seen.append(app.is_running)

        app = self.make_app(sync_fn=lambda st: sync(st, bottles=MANY, link_for=self.links))
        app.context = apply.Context(layout=self.layout, link_for=self.links)
        self.drive(script, size=(160, 40), app=app)
        first, after, running = seen
        self.assertIn("not read", first)
        self.assertIn(f"{IDS[0]} (cannot run supervise pending in bot-bottle-{IDS[0]}-sidecar", first)
        self.assertIn("egress-one", first)
        self.assertIn("the sidecar did not take the grant", after)
        self.assertTrue(running)



class NewerFileOnTheCommandLine(CliCase):
    def test_every_command_names_the_file_and_exits_1(self) -> None:
        self.imported((IDS[0], "egress-one"))
        damage(self.db, "UPDATE schema_version SET version = 4")
        opened: list[bool] = []
        with mock.patch.object(SuperviseApp, "run", lambda app: opened.append(True)):
            for args, tty in ((["--once"], False), (["--approve", "egress-one"], False), ([], True)):
                code, _, err = cli_run(self, *args, running=MANY, tty=tty)
                self.assertEqual(code, 1, (args, err))
                self.assertIn(f"{self.db}: schema version 4 is newer than this bot-bottle understands (3)", err)
                self.assertNotIn("Traceback", err)
        self.assertEqual(opened, [])
        self.assertEqual(raw(self.db, "SELECT version FROM schema_version"), [(4,)])
        self.assertEqual(statuses(self.db), {f"{IDS[0]}/egress-one": "pending"})

@contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """``path`` (a file or a folder) as a read-only file system has it: nobody, root included,
    writes it or adds to it. Root is stopped only by the immutable flag; anyone else by its mode."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        return
    mode = path.stat().st_mode
    path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        yield
    finally:
        path.chmod(mode)


class StoreNotWritable(CliCase):
    """Finding: a store that cannot be written (a read-only file system, a folder that is not
    the user's) was said as "cannot read" or as a damaged file to move aside; a home folder that
    could not be made was an internal error."""

    def setUp(self) -> None:
        super().setUp()
        self.imported((IDS[0], "egress-one"))

    def assert_said(self, code: int, err: str, what: str) -> None:
        self.assertEqual(code, 1, err)
        self.assertIn(str(self.db), err)
        self.assertIn(what, err)
        self.assertIn("writable", err)
        self.assertNotIn("move the file aside", err)
        self.assertNotIn("Traceback", err)
        self.assertNotIn("internal error", err)

    def test_deciding_and_listing_say_the_file_cannot_be_written(self) -> None:
        with unwritable(self.db):
            for args in (["--approve", "egress-one"], ["--reject", "egress-one", "--reason", "no"], ["--once"]):
                code, _, err = cli_run(self, *args, running=MANY)
                self.assert_said(code, err, "cannot write the supervise database (attempt to write a readonly database)")
        self.assertEqual(statuses(self.db), {f"{IDS[0]}/egress-one": "pending"})

    def test_an_older_file_that_cannot_be_written_is_not_called_damaged(self) -> None:
        self.db.unlink()
        for extra in ("-wal", "-shm"):
            Path(f"{self.db}{extra}").unlink(missing_ok=True)
        v2_store(self.db)
        with unwritable(self.db):
            with self.assertRaises(StoreError) as caught:
                Store(self.db)
            self.assertIn("cannot bring the supervise database up to schema version 3: it cannot be written",
                          str(caught.exception))
            self.assertNotIn("move the file aside", caught.exception.hint or "")
            for args in (["--approve", "p0"], ["--once"]):
                code, _, err = cli_run(self, *args, running=[])
                self.assert_said(code, err, "it cannot be written")
        self.assertEqual(raw(self.db, "SELECT version FROM schema_version"), [(2,)])

    def test_a_folder_that_cannot_be_written_is_said_so(self) -> None:
        for extra in ("-wal", "-shm"):
            self.assertFalse(Path(f"{self.db}{extra}").exists(), "closed cleanly: WAL files removed")
        with unwritable(self.db.parent):
            code, _, err = cli_run(self, "--once", running=MANY)
        self.assert_said(code, err, "cannot open the supervise database")

    def test_a_home_folder_that_cannot_be_made_is_said_so(self) -> None:
        home = self.db.parent
        for child in sorted(home.rglob("*"), reverse=True):
            child.rmdir() if child.is_dir() else child.unlink()
        home.rmdir()
        with unwritable(home.parent):
            for args in (["--once"], ["--approve", "egress-one"]):
                code, _, err = cli_run(self, *args, running=MANY)
                self.assertEqual(code, 1, err)
                self.assertIn(f"{self.db}: cannot make the folder of the supervise database", err)
                self.assertNotIn("internal error", err)

    def test_the_console_opens_and_says_it_cannot_write(self) -> None:
        opened: list[bool] = []
        seen: list[Any] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            seen.append(screen_text(app))
            await pilot.press("a")
            await self.until(pilot, lambda: "not approved" in " ".join(n.title for n in app._notifications))
            seen.append([n.message for n in app._notifications])
            seen.append(app.is_running)

        with unwritable(self.db):
            with mock.patch.object(SuperviseApp, "run", lambda app: opened.append(True)):
                code, _, err = cli_run(self, running=MANY, tty=True)
            self.assertEqual((code, opened), (0, [True]), err)
            self.drive(script, size=(160, 40))
        text, told, running = seen
        self.assertIn("egress-one", text, "what the file holds is shown")
        self.assertIn("sync failed: cannot write the supervise database", text)
        self.assertTrue(any("cannot write the supervise database" in m for m in told), told)
        self.assertTrue(running)
        self.assertEqual(statuses(self.db), {f"{IDS[0]}/egress-one": "pending"})


ODD = "x\x1b[2J\x1b]0;owned\x07[bold]y[/bold]\u202egnp.exe"  # an escape, a title, markup, a bidi override
RAW = ("\x1b", "\x07", "\u202e")


class NothingRawOnAScreen(CliCase):
    """Finding: two places showed text from a bottle as it came: ``--once``'s id column (raw,
    and read as Rich markup) and the console's "bottle ... slow" status line (the engine's id)."""

    def test_once_shows_an_id_from_the_store_with_its_escapes(self) -> None:
        self.imported((IDS[0], "egress-one"))
        damage(self.db, "UPDATE proposals SET id = ? WHERE id = 'egress-one'", ODD)
        stopped_first = lambda b: SidecarLink(b, runner=stopped) if b == IDS[0] else self.link_for(b)  # noqa: E731
        code, out, err = cli_run(self, "--once", running=MANY, link_for=stopped_first)
        self.assertEqual(code, 1, err)  # its sidecar could not be read: listed as last read
        for text in (out, err):
            for char in RAW:
                self.assertNotIn(char, text)
        flat = "".join(out.split())
        self.assertIn("\\x1b[2J", flat)
        self.assertIn("[bold]y[/bold]", flat, "markup shown as the text it is")
        self.assertIn("\\u202e", flat)

    def test_the_console_names_a_slow_bottle_with_its_escapes(self) -> None:
        answer = threading.Event()
        self.addCleanup(answer.set)

        class Slow:
            def pending(self) -> list[Any]:
                answer.wait(30)
                return []

            def incarnation(self) -> str:
                return "c"

        odd = BottleInfo(ODD, "coder", None, None, "docker", "2026-11-22T05:00:00+00:00")
        app = self.make_app(bottles=[odd], sync_fn=lambda st: sync(st, bottles=[odd], link_for=lambda b: Slow()))
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.until(pilot, lambda: " slow)" in screen_text(app))
            seen.append(screen_text(app))
            answer.set()

        self.drive(script, size=(160, 30), app=app, first_sync=False)
        [line] = [line for line in seen[0].splitlines() if " slow)" in line]
        for char in RAW:
            self.assertNotIn(char, line)
        self.assertIn("x\\x1b[2J", line)

class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def cli_run(case: CliCase, *args: str, running: list[BottleInfo], tty: bool = False,
            link_for: Any = None) -> tuple[int, str, str]:
    """``bot-bottle supervise ARGS`` over ``case``'s home, ``running`` as the engine's bottles,
    their sidecars ``link_for`` (the case's own by default)."""
    links = link_for or case.link_for
    out, err = (_Terminal(), _Terminal()) if tty else (io.StringIO(), io.StringIO())
    context = functools.partial(apply.Context, link_for=links)
    with mock.patch.dict("os.environ", {"HOME": str(case.layout.home), "COLUMNS": "200"}), \
            mock.patch.object(apply, "Context", context), \
            mock.patch.object(sync_mod, "running_bottles", lambda state_root=None: running), \
            mock.patch.object(sync_mod, "SidecarLink", links), \
            mock.patch.object(sync_mod, "_on_the_engine", lambda: {b.id for b in running}), \
            mock.patch("sys.stdin", _Terminal() if tty else io.StringIO()), \
            redirect_stdout(out), redirect_stderr(err):
        code = cli.main(["supervise", *args])
    return code, out.getvalue(), " ".join(err.getvalue().split())


def statuses(db: Path) -> dict[str, str]:
    """Every proposal's status, a damaged one's read past its damage."""
    return {f"{b.decode()}/{i.decode(errors='replace')}": st.decode()
            for b, i, st in raw(db, "SELECT bottle_id, id, status FROM proposals")}


if __name__ == "__main__":
    unittest.main()
