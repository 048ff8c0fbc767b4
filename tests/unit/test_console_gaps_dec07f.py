"""The console and ``bot-bottle supervise --once`` as a demanding operator meets them: a pending
count the last sync could not bring up to date reads as such (``3?``, and since when), no message
in the state machine's terms ("cannot move the proposal from approved to expired") reaches the
operator, and a damaged database, a decision that raced a sync or an edit nested thousands deep
each give a sentence naming what is wrong, never a traceback."""

from __future__ import annotations

import io
import json
import sqlite3
import tempfile
import time
import unittest
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any
from unittest import mock

from rich.cells import cell_len
from textual.widgets import DataTable, Static

from bot_bottle import cli
from bot_bottle.sidecar.supervise.channel import Proposal
from bot_bottle.supervise import apply, view
from bot_bottle.supervise import console as console_mod
from bot_bottle.supervise import sync as sync_mod
from bot_bottle.supervise.console import SuperviseApp
from bot_bottle.supervise.proposals import InvalidDecision, InvalidTransition
from bot_bottle.supervise.store import StaleProposal, Store, StoreError
from bot_bottle.supervise.sync import BottleInfo, SyncReport, sync
from tests.unit.test_console_gaps_dec06c import IDS, MANY, Busy
from tests.unit.test_console_gaps_dec06d import DownLink, status
from tests.unit.test_console_gaps_dec06e import bottle_line, hh_mm
from tests.unit.test_supervise_console import NOW, cell_texts
from tests.unit.test_supervise_console_screen import screen_text
from tests.unit.test_supervise_link import LocalSidecar

STATE_WORDS = ("cannot move", "can only become", "which is final", "became pending", "(it was pending)",
               "was already bogus", "unknown proposal status")


def no_state_words(test: unittest.TestCase, text: str) -> None:
    for words in STATE_WORDS:
        test.assertNotIn(words, text)


class DecidedDuringTheRead:
    """A sidecar link whose list is read just after a console decided ``pid`` (the decision
    reached the sidecar, so it no longer lists it): the sync read it as pending before."""

    def __init__(self, inner: Any, db: Path, pid: str) -> None:
        self.inner, self.db, self.pid = inner, db, pid

    def pending(self) -> list[Any]:
        with Store(self.db) as st:
            row = st.find(self.pid)
            if row.status == "pending":
                st.update_proposal(row.key, expect="pending", status="approved", verdict="approved",
                                   operator="bob", decided_at=NOW)
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class StaleCounts(Busy):
    """Finding: a bottle the last sync could not read showed, beside its ``not read`` mark, the
    pending count of its last good read as if it were current."""

    down: tuple[str, ...] = ()
    slow: tuple[str, ...] = ()

    def link_for(self, bottle_id: str) -> Any:
        return DownLink(bottle_id) if bottle_id in self.down else super().link_for(bottle_id)

    def setUp(self) -> None:
        super().setUp()
        self.propose(IDS[1], "egress", {"host": "b1.example"}, "egress-b1")
        self.propose(IDS[1], "egress", {"host": "b2.example"}, "egress-b2")
        self.propose(IDS[0], "egress", {"host": "a1.example"}, "egress-a1")

    async def resync(self, app: SuperviseApp, pilot: Any) -> None:
        synced = app.syncs
        await pilot.press("g")
        await self.until(pilot, lambda: app.syncs > synced)
        await self.settled(app, pilot)

    def test_at_80x24_a_bottle_not_read_shows_its_count_marked_and_since_when(self) -> None:
        seen: dict[str, Any] = {}

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            seen["before"] = bottle_line(app, IDS[1])
            self.down = (IDS[1],)
            await self.resync(app, pilot)
            seen["down"] = bottle_line(app, IDS[1])
            seen["read"] = bottle_line(app, IDS[0])
            seen["cells"] = cell_texts(app.query_one("#bottles", DataTable))
            seen["title"] = next(line for line in screen_text(app).splitlines() if "Running bottles" in line)
            seen["status"] = status(app)
            seen["on screen"] = screen_text(app).splitlines()[-2]

        self.drive(script, size=(80, 24))
        self.assertRegex(seen["before"], r"\s2\s")
        self.assertNotIn("?", seen["before"])
        self.assertIn("2?", seen["down"])
        self.assertIn("not read", seen["down"])
        self.assertLessEqual(cell_len(seen["down"].rstrip()), 80)
        self.assertNotIn("?", seen["read"], "a bottle read now shows its count plain")
        counts = {row[0]: row[5] for row in seen["cells"]}
        self.assertEqual((counts[IDS[0]], counts[IDS[1]], counts[IDS[2]]), ("1", "2?", ""))
        self.assertIn(f"pending N? as of {hh_mm(NOW)}", seen["title"])
        line = seen["status"]
        self.assertTrue(line.startswith(f"1 bottle could not be read: {IDS[1]} ("), line)
        self.assertTrue(line.endswith(f"; pending N? as of {hh_mm(NOW)}"), line)
        self.assertLessEqual(cell_len(line), 78)
        self.assertIn(line.strip()[:60], seen["on screen"])

    def test_the_mark_goes_once_the_bottle_is_read_again(self) -> None:
        cells: list[dict[str, str]] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            self.down = (IDS[1],)
            await self.resync(app, pilot)
            cells.append({row[0]: row[5] for row in cell_texts(app.query_one("#bottles", DataTable))})
            self.down = ()
            await self.resync(app, pilot)
            cells.append({row[0]: row[5] for row in cell_texts(app.query_one("#bottles", DataTable))})
            cells.append({"status": status(app)})

        self.drive(script, size=(80, 24))
        self.assertEqual(cells[0][IDS[1]], "2?")
        self.assertEqual(cells[1][IDS[1]], "2")
        self.assertNotIn("?", cells[2]["status"])

    def test_a_bottle_never_read_by_this_console_says_from_before_it_started(self) -> None:
        self.down = (IDS[1],)
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            seen.append(next(line for line in screen_text(app).splitlines() if "Running bottles" in line))
            seen.append({row[0]: row[5] for row in cell_texts(app.query_one("#bottles", DataTable))}[IDS[1]])

        # Its proposals came into the store in an earlier session.
        with Store(self.db) as st:
            sync(st, bottles=MANY, link_for=super().link_for)
        self.drive(script, size=(80, 24))
        self.assertIn(f"pending N? from before {hh_mm(NOW)}", seen[0])
        self.assertEqual(seen[1], "2?")

    def test_a_slow_bottle_is_marked_in_its_marks_colour_and_a_zero_is_not_blank(self) -> None:
        message = f"bottle {IDS[2]}: its sidecar did not answer within 4 s (slow); caught up later"
        report = SyncReport(bottles=MANY, errors=[message], slow=[IDS[2]], unread={IDS[2]: [message]})
        seen: list[Any] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            table = app.query_one("#bottles", DataTable)
            row = table.get_row_at(table.get_row_index(IDS[2]))
            seen.extend([row[5].plain, row[5].style, row[6].style])

        self.drive(script, size=(80, 24), app=self.make_app(sync_fn=lambda st: report))
        self.assertEqual(seen[0], "0?", "no proposal known is not the same as none")
        self.assertEqual(seen[1], seen[2], "the count in the colour of its mark")

    def test_a_sync_that_failed_as_a_whole_marks_every_count(self) -> None:
        fail = {"now": False}

        def sync_fn(st: Store) -> SyncReport:
            if fail["now"]:
                raise StoreError("database is locked")
            return sync(st, bottles=MANY, link_for=self.link_for)

        seen: list[Any] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            fail["now"] = True
            await self.resync(app, pilot)
            seen.append(cell_texts(app.query_one("#bottles", DataTable)))
            seen.append(status(app))

        self.drive(script, size=(80, 24), app=self.make_app(sync_fn=sync_fn))
        rows, line = seen
        self.assertEqual({row[6] for row in rows}, {"not read"})
        self.assertEqual({row[0]: row[5] for row in rows}[IDS[1]], "2?")
        self.assertTrue(line.startswith("sync failed: database is locked"), line)
        self.assertTrue(line.endswith(f"; pending N? as of {hh_mm(NOW)}"), line)


class ProblemsLine(unittest.TestCase):
    def report(self, bottles: int) -> SyncReport:
        report = SyncReport()
        for n in range(bottles):
            report.not_read(f"b{n:02d}", f"bottle b{n:02d}: no sidecar container c-b{n:02d} (is the bottle running?)")
        return report

    def test_it_fits_and_the_note_never_costs_a_name(self) -> None:
        note = "; pending N? as of 23:01"
        for bottles in range(1, 12):
            for width in range(20, 200, 3):
                with self.subTest(bottles=bottles, width=width):
                    line = console_mod.problems_line(self.report(bottles), width, note)
                    plain = console_mod.sync_problems(self.report(bottles), width)
                    self.assertLessEqual(cell_len(line), width)
                    named = sum(f"b{n:02d} (" in line for n in range(bottles))
                    self.assertGreaterEqual(named, sum(f"b{n:02d} (" in plain for n in range(bottles)))
        self.assertTrue(console_mod.problems_line(self.report(1), 78, note).endswith(note))

    def test_no_note_no_change(self) -> None:
        report = self.report(3)
        self.assertEqual(console_mod.problems_line(report, 80, ""), console_mod.sync_problems(report, 80))


class DecidedDuringASync(Busy):
    """Finding: a proposal decided (here or in another console) while a sync read its bottle
    stopped that sync with "cannot move the proposal from approved to expired: from approved it
    can only become applied, failed", on the status line and out of ``--once``: the sync read it
    as pending, then tried to expire it. The decision stands and the sync goes on."""

    def setUp(self) -> None:
        super().setUp()
        self.propose(IDS[0], "egress", {"host": "a.example"}, "egress-a")
        with Store(self.db) as st:
            sync(st, bottles=MANY, link_for=super().link_for)
        self.racing = False

    def link_for(self, bottle_id: str) -> Any:
        inner = super().link_for(bottle_id)
        return DecidedDuringTheRead(inner, self.db, "egress-a") if self.racing and bottle_id == IDS[0] else inner

    def assert_decision_stands(self) -> None:
        # bob's approval, not the sync's expiry (the fake decision is never applied, so a later
        # step of the sync may mark it failed as an interrupted apply: still bob's decision).
        with Store(self.db) as st:
            row = st.find("egress-a")
        self.assertEqual(row.operator, "bob")
        self.assertNotEqual(row.status, "expired")

    def test_the_console_syncs_on_and_the_decision_stands(self) -> None:
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            self.racing = True
            synced = app.syncs
            await pilot.press("g")
            await self.until(pilot, lambda: app.syncs > synced)
            await self.settled(app, pilot)
            seen.append(status(app))

        self.drive(script, size=(80, 24))
        self.assertNotIn("sync failed", seen[0])
        no_state_words(self, seen[0])
        self.assert_decision_stands()

    def test_once_lists_on_and_the_decision_stands(self) -> None:
        self.racing = True
        out, err = io.StringIO(), io.StringIO()
        with mock.patch.dict("os.environ", {"HOME": str(self.layout.home), "COLUMNS": "200"}), \
                mock.patch.object(sync_mod, "running_bottles", lambda state_root=None: list(MANY)), \
                mock.patch.object(sync_mod, "SidecarLink", self.link_for), \
                mock.patch.object(sync_mod, "_on_the_engine", lambda: set(IDS)), \
                mock.patch.object(Store, "default_path", classmethod(lambda cls, home_dir=None: self.db)), \
                redirect_stdout(out), redirect_stderr(err):
            code = cli.main(["supervise", "--once"])
        self.assertEqual(code, 0, err.getvalue())
        self.assertNotIn("Traceback", err.getvalue())
        no_state_words(self, err.getvalue())
        self.assert_decision_stands()



class PlainWordsInApply(Busy):
    def setUp(self) -> None:
        super().setUp()
        self.propose(IDS[0], "egress", {"host": "a.example"}, "egress-a")
        self.ctx = apply.Context(layout=self.layout, link_for=self.link_for, clock=lambda: NOW)
        with Store(self.db) as st:
            sync(st, bottles=MANY, link_for=self.link_for)

    def test_a_proposal_pending_again_when_its_decision_was_saved_says_so(self) -> None:
        """Finding: "aaaaaa11/egress-a became pending while this change was being made (it was
        pending); nothing was changed" for a proposal a sync expired and the next reopened."""
        real = Store.update_proposal
        calls = {"n": 0}

        def first_stale(store: Store, key: int, **kwargs: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 1:
                row = store.get(key)
                raise StaleProposal(f"{row.bottle_id}/{row.id} became pending while this change was being made "
                                    "(it was pending); nothing was changed", hint="someone else decided it first")
            return real(store, key, **kwargs)

        with Store(self.db) as st, mock.patch.object(Store, "update_proposal", first_stale), \
                self.assertRaises(StaleProposal) as caught:
            apply.decide(st, "egress-a", "approved", operator="ann", context=self.ctx)
        message = str(caught.exception)
        self.assertIn(f"{IDS[0]}/egress-a", message)
        self.assertIn("it was not approved, and is still pending", message)
        no_state_words(self, message)
        self.assertEqual(caught.exception.hint, "decide it again to have it approved")
        self.assertEqual(self.status_of("egress-a"), "pending")


class BadInputToDecide(Busy):
    """What a script or the console hands ``apply.decide`` that does not fit: each refused with a
    sentence that names it, and nothing changed."""

    def setUp(self) -> None:
        super().setUp()
        for bottle, pid in ((IDS[0], "egress-1"), (IDS[0], "egress-10"), (IDS[1], "egress-1"), (IDS[2], "egress-x")):
            self.propose(bottle, "egress", {"host": f"{pid}.example"}, pid)
        self.ctx = apply.Context(layout=self.layout, link_for=self.link_for, clock=lambda: NOW)
        with Store(self.db) as st:
            sync(st, bottles=MANY, link_for=self.link_for)

    def refused(self, *args: Any, **kwargs: Any) -> Exception:
        with Store(self.db) as st, self.assertRaises(Exception) as caught:
            apply.decide(st, *args, operator="ann", context=self.ctx, **kwargs)
        no_state_words(self, str(caught.exception))
        return caught.exception

    def test_unknown_ambiguous_and_prefix_ids(self) -> None:
        exc = self.refused("egress-nope", "approved")
        self.assertIsInstance(exc, StoreError)
        self.assertIn("no proposal 'egress-nope'", str(exc))
        exc = self.refused("egress-1", "approved")
        self.assertIn(f"is in several bottles ({IDS[0]}, {IDS[1]})", str(exc))
        self.assertEqual(exc.hint, "name it as BOTTLE/ID")  # type: ignore[attr-defined]
        # An id is matched whole: a prefix of two never picks one of them.
        self.assertIn("no proposal 'egress'", str(self.refused("egress", "approved")))

    def test_an_expired_proposal(self) -> None:
        with Store(self.db) as st:
            apply.decide(st, "egress-x", "expired", operator="bot-bottle", context=self.ctx)
        exc = self.refused("egress-x", "approved")
        self.assertEqual(str(exc), f"{IDS[2]}/egress-x had already expired at {hh_mm(NOW)}; it cannot be approved now")

    def test_a_status_nobody_decided(self) -> None:
        with Store(self.db) as st:
            st.conn.execute("UPDATE proposals SET status = 'bogus' WHERE id = 'egress-x'")
        exc = self.refused("egress-x", "approved")
        self.assertIsInstance(exc, InvalidTransition)
        self.assertEqual(str(exc), f"{IDS[2]}/egress-x has a status bot-bottle does not know ('bogus'; the "
                                   "supervise database may be damaged); it cannot be approved")

    def test_a_malformed_change_and_an_empty_reason(self) -> None:
        exc = self.refused(f"{IDS[2]}/egress-x", "modified", change={"host": "a.example", "paths": "no-list"})
        self.assertIsInstance(exc, InvalidDecision)
        self.assertIn("the changed egress proposal is not valid: change.paths", str(exc))
        exc = self.refused(f"{IDS[2]}/egress-x", "rejected", reason="   ")
        self.assertEqual(str(exc), "a rejection needs a reason: the agent is told it")
        self.assertEqual(self.status_of("egress-x"), "pending")


def damage_pages(db: Path) -> None:
    """Overwrite the start of every page after the schema's: the file still opens."""
    with Store(db) as st:
        for i in range(200):
            st.add_proposal("aaaaaa11", {"id": f"egress-{i}", "kind": "egress",
                                         "payload": {"host": f"h{i}.example", "paths": ["/" + "x" * 200]},
                                         "justification": "j" * 300, "timeout_s": 600, "created_at": NOW})
        st.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(db.read_bytes())
    for offset in range(4096 * 5, len(data), 4096):
        data[offset:offset + 100] = b"\xff" * 100
    db.write_bytes(bytes(data))


def damage_a_row(db: Path) -> None:
    with Store(db) as st:
        st.add_proposal("aaaaaa11", {"id": "egress-1", "kind": "egress", "payload": {"host": "a.example"},
                                     "timeout_s": 600, "created_at": NOW})
        st.conn.execute("UPDATE proposals SET payload = 'not json' WHERE id = 'egress-1'")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class DamagedDatabase(unittest.TestCase):
    """Finding: a supervise database whose file opened but whose pages or rows were damaged
    ended ``--once`` with "internal error: DatabaseError ... this is a bug" (exit 70), and the
    console with a full traceback."""

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.home = Path(tmp.name)
        self.db = self.home / ".bot-bottle" / "supervise.db"
        self.db.parent.mkdir(parents=True)

    def run_cli(self, *args: str, tty: bool = False) -> tuple[int, str]:
        out, err = (Terminal() if tty else io.StringIO()), io.StringIO()
        ran: list[bool] = []
        with mock.patch.dict("os.environ", {"HOME": str(self.home), "COLUMNS": "200"}), \
                mock.patch.object(sync_mod, "running_bottles", lambda state_root=None: []), \
                mock.patch.object(sync_mod, "_on_the_engine", lambda: set()), \
                mock.patch("sys.stdin", Terminal() if tty else io.StringIO()), \
                mock.patch.object(SuperviseApp, "run", lambda app: ran.append(True)), \
                redirect_stdout(out), redirect_stderr(err):
            code = cli.main(["supervise", *args])
        self.assertEqual(ran, [], "no console opened over a damaged database")
        return code, err.getvalue()

    def check(self, code: int, err: str, what: str) -> None:
        self.assertEqual(code, StoreError.exit_code, err)
        self.assertIn(f"{self.db}: cannot read the supervise database: {what}", err)
        self.assertIn("move the file aside", err)
        self.assertNotIn("internal error", err)
        self.assertNotIn("Traceback", err)

    def test_once_with_damaged_pages(self) -> None:
        damage_pages(self.db)
        for fmt in ("text", "json"):
            code, err = self.run_cli("--once", "--format", fmt)
            self.check(code, err, "it is damaged")

    def test_once_with_a_damaged_row(self) -> None:
        damage_a_row(self.db)
        code, err = self.run_cli("--once")
        self.check(code, err, "an entry in it is damaged")

    def test_the_console_is_not_opened_over_a_damaged_database(self) -> None:
        # A damaged file (one damaged row opens the console, which names it: test_store_gaps_dec13f).
        damage_pages(self.db)
        code, err = self.run_cli(tty=True)
        self.check(code, err, "it is damaged")

    def test_once_with_a_file_that_is_no_database(self) -> None:
        self.db.write_bytes(b"garbage " * 100)
        code, err = self.run_cli("--once")
        self.assertEqual(code, 1)
        self.assertIn("cannot open the supervise database (file is not a database)", err)
        self.assertNotIn("Traceback", err)


class DamagedUnderTheConsole(Busy):
    def test_a_row_damaged_while_the_console_runs_is_said_and_the_console_stays(self) -> None:
        self.propose(IDS[0], "egress", {"host": "a.example"}, "egress-a")
        seen: list[Any] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            with Store(self.db) as st:
                st.conn.execute("UPDATE proposals SET payload = 'not json' WHERE id = 'egress-a'")
            synced = app.syncs
            await pilot.press("g")
            await self.until(pilot, lambda: app.syncs > synced)
            await self.settled(app, pilot)
            seen.append(status(app))
            seen.append([n.message for n in app._notifications])
            seen.append(app.is_running)

        self.drive(script, size=(80, 24))
        line, told, running = seen
        self.assertIn("cannot read the supervise database: an entry in it is damaged", line)
        self.assertTrue(any(f"{self.db}: cannot read the supervise database" in m for m in told), told)
        self.assertTrue(running)


class DeeplyNestedEdit(Busy):
    """Finding: an edit of thousands of nested brackets ended the console in a RecursionError
    traceback, the other proposals still waiting."""

    def test_parse_edited_says_it(self) -> None:
        with self.assertRaises(ValueError) as caught:
            view.parse_edited("host: " + "[" * 5000 + "]" * 5000)
        self.assertEqual(str(caught.exception), "the edited proposal is nested too deeply to be a proposal")

    def test_the_console_tells_it_and_stays(self) -> None:
        self.propose(IDS[0], "egress", {"host": "a.example"}, "egress-a")
        self.edited_text = "host: " + "[" * 5000 + "]" * 5000
        seen: list[Any] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            await pilot.press("m")
            await pilot.pause(0.3)
            seen.append([n.message for n in app._notifications])
            seen.append(app.is_running)

        self.drive(script, size=(80, 24))
        self.assertEqual(seen, [["the edited proposal is nested too deeply to be a proposal"], True])
        self.assertEqual(self.status_of("egress-a"), "pending")


class NoBottles(Busy):
    """The console started with no bottle running: every key says why it does nothing."""

    def test_every_key_says_why_and_the_console_stays(self) -> None:
        seen: list[Any] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            seen.append(screen_text(app))
            for key in ("a", "A", "m", "r", "s", "enter", "tab", "s"):
                await pilot.press(key)
                await pilot.pause(0.05)
            seen.append({n.message for n in app._notifications})
            seen.append(app.is_running)

        self.drive(script, size=(80, 24), app=self.make_app(sync_fn=lambda st: SyncReport()))
        text, told, running = seen
        self.assertIn("Running bottles: none", text)
        self.assertIn("Pending proposals: none", text)
        self.assertIn("synced", text)
        self.assertEqual(told, {"no pending proposal selected", "no bottle selected"})
        self.assertTrue(running)


class OnceSaysWhatItCouldNotRead(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.home = Path(tmp.name)
        self.sidecar = LocalSidecar(self.home / "sidecar")
        self.down = False

    def link(self, bottle_id: str) -> Any:
        return DownLink(bottle_id) if self.down else self.sidecar.link(bottle_id)

    def run_once(self, bottles: Any, *extra: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with mock.patch.dict("os.environ", {"HOME": str(self.home), "COLUMNS": "200"}), \
                mock.patch.object(sync_mod, "running_bottles", bottles), \
                mock.patch.object(sync_mod, "SidecarLink", self.link), \
                mock.patch.object(sync_mod, "_on_the_engine", lambda: set()), \
                redirect_stdout(out), redirect_stderr(err):
            code = cli.main(["supervise", "--once", *extra])
        return code, out.getvalue(), " ".join(err.getvalue().split())

    def test_no_engine_is_not_no_bottles(self) -> None:
        def no_engine(state_root: Any = None) -> list[BottleInfo]:
            raise StoreError("the docker CLI is not installed")

        code, out, err = self.run_once(no_engine)
        self.assertEqual(code, 1)
        self.assertIn("cannot list running bottles: the docker CLI is not installed", err)
        self.assertIn("no pending proposals known (0 running bottle(s) listed; the problems above may hide some)",
                      " ".join(out.split()))
        code, out, _ = self.run_once(no_engine, "--format", "json")
        self.assertEqual(set(json.loads(out)), {"pending", "bottles", "errors"}, "the JSON fields as they were")

    def test_proposals_of_a_bottle_not_read_now_are_said_to_be_as_last_read(self) -> None:
        from bot_bottle.state import Metadata, StateDir
        from bot_bottle.manifest import Layout

        bottle = BottleInfo("aaaaaa11", "coder", "frontend", None, "docker", "2026-11-22T05:00:00+00:00")
        state = StateDir(Layout(home=self.home, cwd=self.home).state_dir, bottle.id)
        state.create()
        state.write(Metadata(id=bottle.id, agent="coder", bottle="dev", backend="docker"))
        self.sidecar.spool.submit(Proposal(id="egress-1", kind="egress", justification="docs",
                                           payload={"host": "docs.example"}, timeout_s=600, created_at=time.time()))
        code, out, err = self.run_once(lambda state_root=None: [bottle])
        self.assertEqual(code, 0, err)
        self.assertNotIn("as last read", err)
        self.down = True
        code, out, err = self.run_once(lambda state_root=None: [bottle])
        self.assertEqual(code, 1)
        self.assertIn("docs.example", out)
        self.assertIn("the proposals of aaaaaa11 are as last read: the sync could not read its sidecar now", err)
        code, out, _ = self.run_once(lambda state_root=None: [bottle], "--format", "json")
        self.assertEqual(set(json.loads(out)), {"pending", "bottles", "errors"})


class DamagedWording(unittest.TestCase):
    def test_the_two_kinds_of_damage(self) -> None:
        self.assertEqual(view.damaged_store(Path("/x/supervise.db"), sqlite3.DatabaseError("malformed")),
                         "/x/supervise.db: cannot read the supervise database: it is damaged (malformed)")
        self.assertEqual(view.damaged_store(None, json.JSONDecodeError("Expecting value", "x", 0)),
                         "cannot read the supervise database: an entry in it is damaged "
                         "(Expecting value: line 1 column 1 (char 0))")

    def test_a_locked_database_is_not_called_damaged(self) -> None:
        locked = sqlite3.OperationalError("database is locked")
        self.assertEqual(view.damaged_store(None, locked), "cannot read the supervise database (database is locked)")
        self.assertFalse(view.is_damage(locked))


if __name__ == "__main__":
    unittest.main()
