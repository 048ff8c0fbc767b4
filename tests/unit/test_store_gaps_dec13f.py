"""The supervise store and console against damaged rows: a cursor whose offset is no offset, a
proposal whose id is damaged, a console over a file with one damaged row, and values of the
wrong type, shape or size in every place the screens read. Each is said naming the file and the
row, never as a traceback, and the other rows are synced, listed and shown as before."""

from __future__ import annotations

import io
import sqlite3
import time
import unittest
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any
from unittest import mock

from textual.widgets import DataTable, Static

from bot_bottle import cli
from bot_bottle.supervise import sync as sync_mod
from bot_bottle.supervise.console import SuperviseApp
from bot_bottle.supervise.store import DamagedRow, NotDamaged, Store, UnknownProposal
from bot_bottle.supervise.sync import sync
from tests.unit.test_console_gaps_dec06c import IDS, MANY
from tests.unit.test_console_gaps_dec07f import damage_pages
from tests.unit.test_console_gaps_dec08e import CliCase, damage
from tests.unit.test_store_gaps_dec12f import NOT_UTF8, cli_run, raw, statuses
from tests.unit.test_supervise_console import NOW, cell_texts
from tests.unit.test_supervise_console_screen import screen_text


def deny(host: str) -> dict[str, Any]:
    return {"ts": "2026-11-22T05:29:01.000Z", "decision": "deny", "host": host}


class Base(CliCase):
    def sync(self, **kwargs: Any) -> sync_mod.SyncReport:
        with Store(self.db, **kwargs) as st:
            return sync(st, bottles=MANY, link_for=self.link_for)

    def hosts(self, bottle: str) -> list[str]:
        with Store(self.db) as st:
            return [e.record.get("host") for e in st.events(bottle, limit=10_000)]

    def cursors(self) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.db)
        try:
            return conn.execute("SELECT bottle_id, typeof(offset) FROM event_cursors WHERE bottle_id IN (?, ?)"
                                " ORDER BY 1", IDS[:2]).fetchall()
        finally:
            conn.close()


class CursorNotAnOffset(Base):
    """Finding: an event cursor whose offset was text raised ValueError (``int('abc')``): the
    sync ended, and ``--once`` said "internal error ... this is a bug"."""

    def setUp(self) -> None:
        super().setUp()
        self.imported((IDS[0], "egress-one"), (IDS[1], "egress-two"))
        for bottle in IDS[:2]:
            self.sidecars[bottle].log_lines(deny("y.example"))
        self.sync()

    def test_it_reads_as_a_damaged_row_naming_the_bottle(self) -> None:
        for bad in ("'abc'", "1.5", "-3", "X'00'"):
            with self.subTest(bad=bad):
                damage(self.db, f"UPDATE event_cursors SET offset = {bad} WHERE bottle_id = ?", IDS[0])
                with Store(self.db) as st:
                    source = next(iter(st.event_cursors(IDS[1])))
                    for read in (lambda: st.event_cursors(IDS[0]), lambda: st.event_cursor(IDS[0], f"c-{IDS[0]}")):
                        with self.assertRaises(DamagedRow) as caught:
                            read()
                        self.assertIn(f"event cursor of bottle {IDS[0]}", str(caught.exception))
                        self.assertIn("column offset", str(caught.exception))
                    damaged: list[DamagedRow] = []
                    self.assertEqual(st.event_cursors(IDS[0], damaged=damaged), {})
                    self.assertEqual(len(damaged), 1)
                    self.assertTrue(source)

    def test_a_sync_goes_on_and_reads_that_log_again_keeping_each_event_once(self) -> None:
        damage(self.db, "UPDATE event_cursors SET offset = 'abc' WHERE bottle_id = ?", IDS[0])
        for bottle in IDS[:2]:
            self.sidecars[bottle].log_lines(deny("z.example"))
        self.propose(IDS[0], "egress", {"host": "five.example"}, "egress-five")
        report = self.sync()
        self.assertEqual((report.new_proposals, report.new_events), (1, 2))
        [said] = [line for line in report.problems if "cursor" in line]
        self.assertIn(f"event cursor of bottle {IDS[0]}", said)
        self.assertIn("read again from its start", said)
        self.assertEqual(self.hosts(IDS[0]), ["y.example", "z.example"], "each event once")
        self.assertEqual(self.hosts(IDS[1]), ["y.example", "z.example"])
        self.assertEqual(self.cursors(), [(IDS[0], "integer"), (IDS[1], "integer")], "the cursor replaced")
        again = self.sync()
        self.assertEqual((again.problems, again.new_events), ([], 0))
        self.assertEqual(self.hosts(IDS[0]), ["y.example", "z.example"])

    def test_events_the_bound_dropped_are_not_brought_back(self) -> None:
        self.sidecars[IDS[0]].log_lines(*(deny(f"h{n}.example") for n in range(5)))
        self.sync(max_events=3)
        self.assertEqual(self.hosts(IDS[0]), ["h2.example", "h3.example", "h4.example"])
        damage(self.db, "UPDATE event_cursors SET offset = 'abc' WHERE bottle_id = ?", IDS[0])
        report = self.sync(max_events=3)
        self.assertEqual(report.new_events, 0)
        self.assertEqual(self.hosts(IDS[0]), ["h2.example", "h3.example", "h4.example"])

    def test_once_names_the_file_and_the_bottle_and_lists_the_proposals(self) -> None:
        damage(self.db, "UPDATE event_cursors SET offset = 'abc' WHERE bottle_id = ?", IDS[0])
        code, out, err = cli_run(self, "--once", running=MANY)
        self.assertEqual(code, 1, err)
        self.assertNotIn("Traceback", err)
        self.assertNotIn("internal error", err)
        self.assertIn(f"{self.db}: cannot read the supervise database: an entry in it is damaged (event cursor of "
                      f"bottle {IDS[0]}", err)
        self.assertIn("egress-one", out)
        self.assertIn("egress-two", out)
        code, _, err = cli_run(self, "--once", running=MANY)
        self.assertEqual((code, err), (0, ""), "repaired by the first")

    def test_sync_events_reads_a_damaged_cursors_log_again(self) -> None:
        damage(self.db, "UPDATE event_cursors SET offset = 'abc' WHERE bottle_id = ?", IDS[0])
        self.sidecars[IDS[0]].log_lines(deny("z.example"))
        with Store(self.db) as st:
            self.assertEqual(sync_mod.sync_events(st, IDS[0], self.link_for(IDS[0])), 1)
        self.assertEqual(self.hosts(IDS[0]), ["y.example", "z.example"])


class IdDamaged(Base):
    """Finding: a proposal whose id column was damaged stayed, and its sidecar's listing was
    imported again beside it: the operator saw the proposal twice."""

    def setUp(self) -> None:
        super().setUp()
        self.imported((IDS[0], "egress-one"), (IDS[0], "egress-two"), (IDS[1], "egress-three"))

    def check_repaired(self, report: sync_mod.SyncReport) -> None:
        self.assertEqual(report.new_proposals, 0)
        self.assertEqual(statuses(self.db), {f"{IDS[0]}/egress-one": "pending", f"{IDS[0]}/egress-two": "pending",
                                           f"{IDS[1]}/egress-three": "pending"})
        self.assertEqual(raw(self.db, "SELECT key, typeof(id) FROM proposals WHERE id = 'egress-one'"),
                         [(1, b"text")], "the row itself, its id whole again")
        [said] = report.problems
        self.assertIn(f"proposal {IDS[0]}/egress-one (#1) had a damaged id", said)
        self.assertIn("repaired from its sidecar's list", said)
        with Store(self.db) as st:
            [audit] = [a for a in st.audit_rows(proposal_key=1) if a.action == "repair"]
        self.assertEqual((audit.operator, audit.after), ("bot-bottle", {"id": "egress-one"}))

    def test_an_id_of_the_wrong_type_is_repaired_not_imported_twice(self) -> None:
        damage(self.db, "UPDATE proposals SET id = CAST(id AS BLOB) WHERE id = 'egress-one'")
        self.check_repaired(self.sync())
        self.assertEqual(self.sync().problems, [])

    def test_an_id_that_is_not_utf8_is_repaired_by_its_kind_and_time(self) -> None:
        damage(self.db, f"UPDATE proposals SET id = {NOT_UTF8} WHERE id = 'egress-one'")
        self.check_repaired(self.sync())

    def test_once_lists_it_once_and_says_it_was_repaired(self) -> None:
        damage(self.db, "UPDATE proposals SET id = CAST(id AS BLOB) WHERE id = 'egress-one'")
        code, out, err = cli_run(self, "--once", running=MANY)
        self.assertEqual(code, 0, err)
        self.assertEqual(len([line for line in out.splitlines() if "egress-one" in line]), 1, out)
        self.assertIn(f"{self.db}: proposal {IDS[0]}/egress-one (#1) had a damaged id", err)

    def test_a_row_damaged_elsewhere_too_is_still_named_once(self) -> None:
        damage(self.db, f"UPDATE proposals SET id = CAST(id AS BLOB), justification = {NOT_UTF8}"
                        " WHERE id = 'egress-one'")
        report = self.sync()
        self.assertEqual(len(statuses(self.db)), 3)
        self.assertEqual([d.column for d in report.damaged], ["justification"])
        self.assertEqual(len(report.repaired), 1)

    def test_two_rows_that_could_each_be_it_are_not_guessed_between(self) -> None:
        damage(self.db, f"UPDATE proposals SET id = {NOT_UTF8} || key WHERE bottle_id = ?", IDS[0])
        report = self.sync()
        self.assertEqual(report.new_proposals, 0)
        self.assertEqual(len(raw(self.db, "SELECT key FROM proposals")), 3, "nothing imported twice")
        self.assertTrue(any("not imported: rows #1, #2" in line and "--drop-damaged" in line
                            for line in report.problems), report.problems)

    def test_look_alikes_are_left_alone(self) -> None:
        # Whole ids of the same kind asked at the same moment (as every proposal here was), and
        # the same id's bytes in another bottle: other proposals, imported as usual. (That
        # other bottle's row is its own egress-three, repaired as such.)
        self.propose(IDS[0], "egress", {"host": "four.example"}, "egress-four")
        damage(self.db, f"UPDATE proposals SET id = CAST('egress-five' AS BLOB) WHERE id = 'egress-three'")
        self.propose(IDS[0], "egress", {"host": "five.example"}, "egress-five")
        before = raw(self.db, "SELECT key, id FROM proposals ORDER BY key")
        report = self.sync()
        self.assertEqual(report.new_proposals, 2)
        self.assertEqual([line.split(" had ")[0] for line in report.repaired], [f"proposal {IDS[1]}/egress-three (#3)"])
        self.assertEqual(raw(self.db, "SELECT key, id FROM proposals ORDER BY key")[:2], before[:2])
        self.assertEqual(sorted(k for k in statuses(self.db) if k.startswith(IDS[0])),
                         [f"{IDS[0]}/egress-five", f"{IDS[0]}/egress-four", f"{IDS[0]}/egress-one",
                          f"{IDS[0]}/egress-two"])


class ConsoleOverADamagedRow(Base):
    """Finding: the console refused to open at all when the store held one damaged row."""

    def setUp(self) -> None:
        super().setUp()
        self.imported((IDS[0], "egress-one"), (IDS[1], "egress-two"), (IDS[2], "egress-three"))
        damage(self.db, "UPDATE proposals SET payload = '[1]' WHERE id = 'egress-two'")

    def test_it_opens(self) -> None:
        opened: list[bool] = []
        with mock.patch.object(SuperviseApp, "run", lambda app: opened.append(True)):
            code, _, err = cli_run(self, running=MANY, tty=True)
        self.assertEqual((code, opened), (0, [True]), err)

    def test_it_shows_the_others_and_the_damaged_one_as_such_and_never_decides_it(self) -> None:
        seen: list[Any] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            seen.append(cell_texts(app.query_one("#proposals", DataTable)))
            seen.append(str(app.query_one("#damaged", Static).render()))
            seen.append([n.message for n in app._notifications])
            for key in ("down", "down", "down", "a", "r"):
                await pilot.press(key)
            await pilot.press("escape")
            await self.settled(app, pilot)
            seen.append(app.is_running)

        self.drive(script, size=(160, 40))
        rows, damaged, told, running = seen
        self.assertEqual([row[0] for row in rows], ["1", "3"])
        self.assertIn(str(self.db), damaged)
        self.assertIn(f"proposal {IDS[1]}/egress-two (#2), column payload: a JSON list, not an object", damaged)
        self.assertIn("bot-bottle supervise --drop-damaged #2", damaged)
        self.assertTrue(any("--drop-damaged #2" in m and str(self.db) in m for m in told), told)
        self.assertTrue(running)
        self.assertEqual(raw(self.db, "SELECT status FROM proposals WHERE key = 2"), [(b"pending",)])
        with Store(self.db) as st:
            self.assertEqual([a.action for a in st.audit_rows(proposal_key=2)], [], "nothing decided about it")

    def test_at_80x24_the_line_leaves_the_status_line_and_the_events_in_sight(self) -> None:
        seen: list[Any] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            seen.extend(app.query_one(widget).region for widget in ("#damaged", "#status", "#events"))

        self.drive(script, size=(80, 24))
        damaged, status, events = seen
        self.assertGreaterEqual(damaged.height, 2)
        self.assertLessEqual(status.bottom, 23)
        self.assertGreaterEqual(events.height, 1)

    def test_a_damaged_file_still_keeps_it_closed(self) -> None:
        damage_pages(self.db)
        opened: list[bool] = []
        with mock.patch.object(SuperviseApp, "run", lambda app: opened.append(True)):
            code, _, err = cli_run(self, running=MANY, tty=True)
        self.assertEqual((code, opened), (1, []), err)
        self.assertIn(f"{self.db}: cannot read the supervise database: it is damaged", err)
        self.assertNotIn("Traceback", err)

    def test_with_no_damage_the_line_is_not_there(self) -> None:
        damage(self.db, "UPDATE proposals SET payload = '{}' WHERE id = 'egress-two'")
        seen: list[bool] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            seen.append(app.query_one("#damaged", Static).display)

        self.drive(script, size=(80, 24))
        self.assertEqual(seen, [False])


class DropDamaged(Base):
    def setUp(self) -> None:
        super().setUp()
        self.imported((IDS[0], "egress-one"), (IDS[1], "egress-two"))
        damage(self.db, f"UPDATE proposals SET justification = {NOT_UTF8} WHERE id = 'egress-one'")

    def test_it_drops_a_damaged_row_and_audits_it_and_the_next_sync_brings_it_back_whole(self) -> None:
        code, out, err = self.run_cli("--drop-damaged", "#1")
        self.assertEqual(code, 0, err)
        self.assertIn(f"dropped #1 from {self.db}", " ".join(out.split()))
        self.assertEqual(statuses(self.db), {f"{IDS[1]}/egress-two": "pending"})
        with Store(self.db) as st:
            [audit] = st.audit_rows(proposal_key=1)
        self.assertEqual(audit.action, "drop")
        self.assertIn("column justification", audit.reason or "")
        self.assertEqual(self.sync().problems, [])
        self.assertEqual(statuses(self.db), {f"{IDS[1]}/egress-two": "pending", f"{IDS[0]}/egress-one": "pending"})

    def test_a_whole_row_or_none_is_refused_and_nothing_changes(self) -> None:
        before = raw(self.db, "SELECT * FROM proposals")
        for typed, said in (("#2", "is not damaged; nothing was dropped"), ("9", "no proposal #9"),
                            ("egress-one", "takes a proposal's #KEY")):
            code, _, err = self.run_cli("--drop-damaged", typed)
            self.assertEqual(code, 2, err)
            self.assertIn(said, err)
        self.assertEqual(raw(self.db, "SELECT * FROM proposals"), before)
        with Store(self.db) as st:
            with self.assertRaises(NotDamaged):
                st.drop_damaged(2, operator="ann")
            with self.assertRaises(UnknownProposal):
                st.drop_damaged(9, operator="ann")

    def test_it_runs_alone_and_is_in_the_help(self) -> None:
        code, _, err = self.run_cli("--drop-damaged", "#1", "--once")
        self.assertEqual(code, 2, err)
        out = io.StringIO()
        with redirect_stdout(out), self.assertRaises(SystemExit):
            cli.main(["supervise", "--help"])
        self.assertIn("--drop-damaged KEY", out.getvalue())

    def test_once_names_the_command(self) -> None:
        code, _, err = cli_run(self, "--once", running=MANY)
        self.assertEqual(code, 1, err)
        self.assertIn("`bot-bottle supervise --drop-damaged #1` drops it", err)


# The proposals table as a hand-made file can have it: no NOT NULL anywhere (a row from another
# tool, a newer bot-bottle's or a crash's debris can then hold an empty value anywhere).
LOOSE = """
ALTER TABLE proposals RENAME TO proposals_old;
CREATE TABLE proposals (key INTEGER PRIMARY KEY, bottle_id TEXT, id TEXT, kind TEXT, payload TEXT,
    justification TEXT, timeout_s REAL, status TEXT, created_at REAL, imported_at REAL, decided_at REAL,
    verdict TEXT, reason TEXT, change TEXT, operator TEXT, updated_at REAL, error TEXT, UNIQUE (bottle_id, id));
INSERT INTO proposals SELECT key, bottle_id, id, kind, payload, justification, timeout_s, status, created_at,
    imported_at, decided_at, verdict, reason, change, operator, updated_at, error FROM proposals_old;
DROP TABLE proposals_old;
"""

ONE = "WHERE id = 'egress-one'"
# Damage to egress-one, and the column it is named by.
SHAPES: dict[str, tuple[str, str]] = {
    "NULL where a value is needed": (f"UPDATE proposals SET kind = NULL {ONE}", "kind"),
    "NULL in a time": (f"UPDATE proposals SET created_at = NULL {ONE}", "created_at"),
    "text in a time": (f"UPDATE proposals SET created_at = 'yesterday' {ONE}", "created_at"),
    "text in a timeout": (f"UPDATE proposals SET timeout_s = 'soon' {ONE}", "timeout_s"),
    "a blob in a text column": (f"UPDATE proposals SET justification = X'00ff' {ONE}", "justification"),
    "JSON that is not JSON": (f"UPDATE proposals SET payload = '{{host' {ONE}", "payload"),
    "JSON of the wrong type": (f"UPDATE proposals SET payload = '\"a.example\"' {ONE}", "payload"),
    "a payload field of the wrong type": (f"UPDATE proposals SET payload = '{{\"host\":\"a.example\",\"ports\":5,"
                                          f"\"paths\":7}}' {ONE}", "payload"),
    "a host that is not text": (f"UPDATE proposals SET payload = '{{\"host\":[1]}}' {ONE}", "payload"),
    "an enormous justification": (f"UPDATE proposals SET justification = printf('%.*c', 3000000, 'x') {ONE}",
                                  "justification"),
    "an enormous payload": (f"UPDATE proposals SET payload = '{{\"host\":\"' || printf('%.*c', 3000000, 'x') || "
                            f"'\"}}' {ONE}", "payload"),
}
# Whole rows that look odd: read, listed and shown like any other.
BENIGN = (
    f"UPDATE proposals SET timeout_s = NULL, updated_at = NULL, created_at = {NOW - 30:.0f} {ONE}",
    f"UPDATE proposals SET justification = 5 {ONE}",
    f"UPDATE proposals SET payload = '{{\"host\":\"a.example\",\"ports\":[],\"later\":[1,{{}}]}}' {ONE}",
    f"UPDATE proposals SET kind = 'teleport', payload = '{{\"to\":[\"mars\"]}}' {ONE}",
)


class DamageShapes(Base):
    """Finding: text in a time, a payload field of the wrong type, text where a decision's time
    belongs ended ``--once`` in "internal error" (a TypeError), a sync with it (every bottle
    unsynced), and would end the console; an enormous value was parsed and drawn on every
    refresh."""

    def setUp(self) -> None:
        super().setUp()
        self.imported((IDS[0], "egress-one"), (IDS[1], "egress-two"))
        with Store(self.db) as st:
            st.conn.execute("BEGIN")
            for statement in LOOSE.split(";"):
                if statement.strip():
                    st.conn.execute(statement)
            st.conn.execute("COMMIT")

    def check_named(self, column: str, report: sync_mod.SyncReport) -> None:
        self.assertEqual([(d.row.split(" (#")[0], d.column) for d in report.damaged],
                         [(f"proposal {IDS[0]}/egress-one", column)], report.problems)
        self.assertEqual(report.damaged[0].key, 1)

    def test_each_is_named_by_sync_and_once_and_the_others_go_on(self) -> None:
        for n, (shape, (sql, column)) in enumerate(SHAPES.items()):
            with self.subTest(shape=shape):
                keep = raw(self.db, "SELECT * FROM proposals WHERE key = 1")
                damage(self.db, sql)
                self.propose(IDS[1], "egress", {"host": "more.example"}, f"egress-more-{n}")
                started = time.monotonic()
                report = self.sync()
                self.assertLess(time.monotonic() - started, 5)
                self.check_named(column, report)
                self.assertIn(f"egress-more-{n}", {k.split("/")[1] for k in statuses(self.db)})
                code, out, err = cli_run(self, "--once", running=MANY)
                self.assertEqual(code, 1, err)
                self.assertNotIn("Traceback", err)
                self.assertNotIn("internal error", err)
                self.assertIn(f"{self.db}: cannot read the supervise database: an entry in it is damaged "
                              f"(proposal {IDS[0]}/egress-one (#1), column {column}", err)
                self.assertIn("egress-two", out)
                self.assertLess(len(err), 2000, "no value of megabytes quoted")
                conn = sqlite3.connect(self.db)
                conn.execute("DELETE FROM proposals WHERE key = 1")
                conn.execute(f"INSERT INTO proposals VALUES ({', '.join('?' * len(keep[0]))})",
                             [v.decode() if isinstance(v, bytes) else v for v in keep[0]])
                conn.commit()
                conn.close()

    def test_a_granted_row_with_text_for_its_decision_time_does_not_stop_the_sync(self) -> None:
        damage(self.db, "UPDATE proposals SET status = 'approved', decided_at = 'noon', updated_at = 1")
        damage(self.db, "UPDATE proposals SET decided_at = 1 WHERE id = 'egress-two'")
        self.propose(IDS[2], "egress", {"host": "three.example"}, "egress-three")
        with Store(self.db) as st:
            report = sync(st, bottles=MANY, link_for=self.link_for, now=NOW)
        self.check_named("decided_at", report)
        self.assertEqual((report.new_proposals, report.interrupted), (1, 1))
        self.assertEqual(statuses(self.db)[f"{IDS[1]}/egress-two"], "failed")

    def test_the_console_shows_the_others_and_names_it(self) -> None:
        damage(self.db, SHAPES["text in a time"][0])
        seen: list[Any] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            seen.append(cell_texts(app.query_one("#proposals", DataTable)))
            seen.append(" ".join(str(app.query_one("#damaged", Static).render()).split()))
            seen.append(app.is_running)

        self.drive(script, size=(160, 40))
        rows, text, running = seen
        self.assertEqual([row[0] for row in rows], ["2"])
        self.assertIn("column created_at: text 'yesterday' where a time (a number of seconds) belongs", text)
        self.assertTrue(running)

    def test_look_alikes_are_whole(self) -> None:
        for sql in BENIGN:
            with self.subTest(sql=sql):
                damage(self.db, sql)
                report = self.sync()
                self.assertEqual(report.damaged, [], report.problems)
                code, out, err = cli_run(self, "--once", running=MANY)
                self.assertEqual(code, 0, err)
                with Store(self.db) as st:
                    self.assertEqual([r.key for r in st.pending()], [1, 2])

    def test_a_row_from_a_newer_schema_with_a_status_of_its_own(self) -> None:
        damage(self.db, "ALTER TABLE proposals ADD COLUMN later TEXT")
        damage(self.db, f"UPDATE proposals SET status = 'deferred', later = 'x' {ONE}")
        report = self.sync()
        self.assertEqual(report.damaged, [])
        code, out, err = cli_run(self, "--once", running=MANY)
        self.assertEqual(code, 0, err)
        self.assertIn("egress-two", out)


class DamagedEvents(Base):
    """Finding: one damaged event hid the whole log of its bottle ("cannot be read")."""

    def test_the_others_are_shown_and_it_is_named(self) -> None:
        self.imported((IDS[0], "egress-one"))
        self.sidecars[IDS[0]].log_lines(*(deny(f"h{n}.example") for n in range(3)))
        self.sync()
        damage(self.db, "UPDATE egress_events SET record = '[1]' WHERE record LIKE '%h1.example%'")
        with Store(self.db) as st:
            damaged: list[DamagedRow] = []
            self.assertEqual([e.record["host"] for e in st.events(IDS[0], damaged=damaged)],
                             ["h0.example", "h2.example"])
            self.assertEqual([d.column for d in damaged], ["record"])
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            seen.append(screen_text(app))

        self.drive(script, size=(200, 40))
        self.assertIn("h2.example", seen[0])
        self.assertIn("1 damaged, not shown: event", seen[0])

    def test_a_terminal_entry_whose_offset_is_text_does_not_stop_the_recorder(self) -> None:
        with Store(self.db, max_terminal_events=5) as st:
            for _ in range(2):
                st.record_terminal(IDS[0], {"osc52": 1})
            st.conn.execute("UPDATE egress_events SET offset = 'zz' WHERE source = 'terminal' AND offset = 1")
            self.assertTrue(st.record_terminal(IDS[0], {"osc52": 2}))
            self.assertEqual(sorted(e.record["total"] for e in st.terminal_events(IDS[0])), [1, 1, 2])

    def test_an_enormous_record_is_damaged_not_parsed(self) -> None:
        self.imported((IDS[0], "egress-one"))
        self.sidecars[IDS[0]].log_lines(deny("h0.example"), deny("h1.example"))
        self.sync()
        damage(self.db, "UPDATE egress_events SET record = '{\"host\":\"' || printf('%.*c', 3000000, 'x') || '\"}'"
                        " WHERE record LIKE '%h1.example%'")
        with Store(self.db) as st:
            damaged: list[DamagedRow] = []
            self.assertEqual([e.record["host"] for e in st.events(IDS[0], damaged=damaged)], ["h0.example"])
        self.assertIn("3,000,011 characters, more than bot-bottle ever writes there", damaged[0].why)


if __name__ == "__main__":
    unittest.main()
