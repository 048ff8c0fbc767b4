"""The supervise console and store as a demanding operator meets them: the status line says since
when the ``3?`` counts are known however many bottles could not be read, a decision still being
applied after an hour is not failed by a sync, a damaged row is named (proposal and column), and
a proposal is named on the command line by a unique prefix of its id."""

from __future__ import annotations

import functools
import io
import threading
import time
import unittest
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any
from unittest import mock

from rich.cells import cell_len

from bot_bottle import cli
from bot_bottle.supervise import apply
from bot_bottle.supervise import sync as sync_mod
from bot_bottle.supervise.console import SuperviseApp, problems_line
from bot_bottle.supervise.store import AuditEntry, DamagedRow, StaleProposal, Store, StoreError, UnknownProposal
from bot_bottle.supervise.sync import sync
from tests.unit import test_console_gaps_dec07f as dec07f
from tests.unit.test_console_gaps_dec06c import IDS, MANY, Busy
from tests.unit.test_console_gaps_dec06d import DownLink, status
from tests.unit.test_console_gaps_dec06e import hh_mm
from tests.unit.test_supervise_console import NOW
from tests.unit.test_supervise_console_screen import screen_text


async def synced_again(case: Busy, app: SuperviseApp, pilot: Any) -> None:
    """Ask the console for a sync (``g``) and wait until it has run and the screen settled."""
    synced = app.syncs
    await pilot.press("g")
    await case.until(pilot, lambda: app.syncs > synced)
    await case.settled(app, pilot)


class StaleNoteOnTheStatusLine(Busy):
    """Finding: with two or more bottles not read, the status line dropped its word on since when
    the ``N?`` counts are known (only the bottles pane's title had it)."""

    down: tuple[str, ...] = ()

    def link_for(self, bottle_id: str) -> Any:
        return DownLink(bottle_id) if bottle_id in self.down else super().link_for(bottle_id)

    def setUp(self) -> None:
        super().setUp()
        for bottle in IDS[:6]:
            self.propose(bottle, "egress", {"host": f"{bottle}.example"}, f"egress-{bottle}")

    def status_after_a_bad_sync(self, down: int, size: tuple[int, int]) -> tuple[str, str]:
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            self.down = tuple(IDS[1:1 + down])
            await synced_again(self, app, pilot)
            seen.append(status(app))
            seen.append(screen_text(app).splitlines()[-2])

        self.drive(script, size=size)
        self.down = ()
        return seen[0], seen[1]

    def check(self, down: int, size: tuple[int, int]) -> None:
        line, on_screen = self.status_after_a_bad_sync(down, size)
        self.assertIn(f"N? as of {hh_mm(NOW)}", line, (down, size))
        self.assertLessEqual(cell_len(line), size[0] - 2, (down, size))
        self.assertIn(f"N? as of {hh_mm(NOW)}", on_screen, (down, size))
        self.assertTrue(line.startswith(f"{down} bottle{'s' if down > 1 else ''} could not be read: {IDS[1]} ("),
                        line)
        named = sum(f"{bottle} (" in line for bottle in IDS[1:1 + down])
        self.assertGreaterEqual(named, 1, line)
        if named < down:
            self.assertIn(f"+{down - named} more", line)

    def test_one_unread_bottle_at_80x24_and_120x40(self) -> None:
        self.check(1, (80, 24))
        self.check(1, (120, 40))

    def test_two_unread_bottles_at_80x24_and_120x40(self) -> None:
        self.check(2, (80, 24))
        self.check(2, (120, 40))

    def test_five_unread_bottles_at_80x24_and_120x40(self) -> None:
        self.check(5, (80, 24))
        self.check(5, (120, 40))

    def test_bottles_never_read_by_this_console_at_80x24(self) -> None:
        self.down = tuple(IDS[1:3])
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            seen.append(status(app))

        self.drive(script, size=(80, 24))
        self.assertTrue(seen[0].endswith(f"; N? before {hh_mm(NOW)}"), seen[0])
        self.assertTrue(seen[0].startswith(f"2 bottles could not be read: {IDS[1]} ("), seen[0])
        self.assertLessEqual(cell_len(seen[0]), 78)


class ProblemsLineWithShortNote(unittest.TestCase):
    report = dec07f.ProblemsLine.report

    def test_the_note_is_always_said_and_the_line_fits(self) -> None:
        note, short = "; pending N? as of 23:01", "; N? as of 23:01"
        for bottles in range(1, 12):
            for width in range(20, 200, 3):
                with self.subTest(bottles=bottles, width=width):
                    line = problems_line(self.report(bottles), width, note, short)
                    self.assertLessEqual(cell_len(line), width)
                    if cell_len(line) > 40:
                        self.assertIn("could not be read", line, "never cut for the note")
                    if width >= 72:
                        self.assertTrue(line.endswith(note) or line.endswith(short), line)
                    if width >= 60:
                        named = sum(f"b{n:02d} (" in line for n in range(bottles))
                        self.assertGreaterEqual(named, 1, line)
                        if named < bottles:
                            self.assertIn(f"+{bottles - named} more", line)

    def test_the_whole_note_when_it_costs_no_name(self) -> None:
        line = problems_line(self.report(1), 78, "; pending N? as of 23:01", "; N? as of 23:01")
        self.assertTrue(line.endswith("; pending N? as of 23:01"), line)
        line = problems_line(self.report(2), 200, "; pending N? as of 23:01", "; N? as of 23:01")
        self.assertTrue(line.endswith("; pending N? as of 23:01"), line)
        self.assertIn("b01 (", line)


@contextmanager
def applying_slowly(case: Any, *, heartbeat_s: float) -> Iterator[dict[str, Any]]:
    """``egress-slow`` approved by ``case`` (its db, layout, links and clock) in a thread whose
    apply is under way for the whole block, its heartbeat every ``heartbeat_s``; the dict yielded
    holds, once the block has ended, the row the decision returned ("row") or what it raised
    ("error")."""
    entered, release = threading.Event(), threading.Event()
    real = apply._APPLY["egress"]

    def slow(*args: Any) -> Any:
        entered.set()
        release.wait(20)
        return real(*args)

    outcome: dict[str, Any] = {}

    def decide() -> None:
        ctx = apply.Context(layout=case.layout, link_for=case.link_for, clock=case.clock)
        try:
            with Store(case.db, clock=case.clock) as st:
                outcome["row"] = apply.decide(st, "egress-slow", "approved", operator="ann", context=ctx)
        except Exception as exc:  # noqa: BLE001 - what the test reports
            outcome["error"] = exc

    with mock.patch.dict(apply._APPLY, {"egress": slow}), \
            mock.patch.object(apply, "HEARTBEAT_S", heartbeat_s, create=True):
        worker = threading.Thread(target=decide)
        worker.start()
        case.assertTrue(entered.wait(10))
        try:
            yield outcome
        finally:
            release.set()
            worker.join(20)


class LongApplyIsNotFailed(Busy):
    """Finding: a sync failed every proposal still granted an hour after its decision, taken as
    lost with its deciding process; an image build that ran longer was failed while it ran, and
    its own end then raised "became failed while this change was being made"."""

    def setUp(self) -> None:
        super().setUp()
        self.propose(IDS[0], "egress", {"host": "slow.example"}, "egress-slow")
        self.now = NOW
        with Store(self.db) as st:
            sync(st, bottles=MANY, link_for=self.link_for)

    def clock(self) -> float:
        return self.now

    def until_stamped(self, when: float) -> None:
        deadline = time.monotonic() + 10
        with Store(self.db) as st:
            while st.find("egress-slow").updated_at < when:
                self.assertLess(time.monotonic(), deadline, "no stamp from the applying process")
                time.sleep(0.02)

    def test_a_sync_an_hour_into_a_running_apply_leaves_it_alone(self) -> None:
        with applying_slowly(self, heartbeat_s=0.05) as outcome:
            self.now = NOW + 2 * sync_mod.STUCK_AFTER_S  # the build has run two hours
            self.until_stamped(self.now)  # its process stamped the proposal meanwhile
            with Store(self.db) as st:
                report = sync(st, bottles=MANY, link_for=self.link_for, now=self.now)
                during = st.find("egress-slow")
        self.assertEqual(report.interrupted, 0)
        self.assertEqual(during.status, "approved")
        self.assertNotIn("error", outcome)
        self.assertEqual(outcome["row"].status, "applied")

    def test_an_apply_whose_process_is_gone_is_still_failed_an_hour_after_its_last_stamp(self) -> None:
        with Store(self.db, clock=self.clock) as st:
            row = st.find("egress-slow")
            st.update_proposal(row.key, expect="pending", status="approved", verdict="approved", operator="ann",
                               decided_at=NOW)
            self.now = NOW + 30 * 60
            self.assertTrue(st.heartbeat(row.key, ("approved", "modified")))  # its last stamp
            hour_later = self.now + sync_mod.STUCK_AFTER_S - 1
            self.assertEqual(sync_mod.fail_interrupted(st, now=hour_later), 0)
            self.assertEqual(sync_mod.fail_interrupted(st, now=hour_later + 2), 1)
            failed = st.get(row.key)
        self.assertEqual(failed.status, "failed")
        self.assertIn("applying it was interrupted", failed.error or "")

    def test_a_stamp_after_the_sync_read_it_keeps_it(self) -> None:
        with Store(self.db, clock=self.clock) as st:
            row = st.find("egress-slow")
            st.update_proposal(row.key, expect="pending", status="approved", verdict="approved", decided_at=NOW)
            read = st.get(row.key)
            self.now = NOW + 10
            st.heartbeat(row.key, ("approved",))
            with self.assertRaises(StaleProposal):
                st.update_proposal(row.key, expect="approved", unchanged_since=read.updated_at, status="failed")
            self.assertEqual(st.get(row.key).status, "approved")

    def test_no_stamp_once_it_is_decided(self) -> None:
        with Store(self.db, clock=self.clock) as st:
            row = st.find("egress-slow")
            self.assertFalse(st.heartbeat(row.key, ("approved", "modified")), "pending is not being applied")
            st.update_proposal(row.key, expect="pending", status="rejected", verdict="rejected", decided_at=NOW)
            self.assertFalse(st.heartbeat(row.key, ("approved", "modified")))


def damage(db: Path, sql: str, *args: Any) -> None:
    with Store(db) as st:
        st.conn.execute(sql, args)


class CliCase(Busy):
    """The CLI over this test's home: its database is where ``bot-bottle supervise`` looks."""

    def setUp(self) -> None:
        super().setUp()
        self.db = Store.default_path(self.layout.home_dir)

    def imported(self, *proposals: tuple[str, str]) -> None:
        for bottle, pid in proposals:
            self.propose(bottle, "egress", {"host": f"{pid[-8:]}.example"}, pid)
        with Store(self.db) as st:
            sync(st, bottles=MANY, link_for=self.link_for)

    def run_cli(self, *args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        context = functools.partial(apply.Context, link_for=self.link_for)
        with mock.patch.dict("os.environ", {"HOME": str(self.layout.home), "COLUMNS": "200"}), \
                mock.patch.object(apply, "Context", context), \
                mock.patch.object(sync_mod, "running_bottles", lambda state_root=None: []), \
                mock.patch.object(sync_mod, "_on_the_engine", lambda: set()), \
                mock.patch.object(SuperviseApp, "run", lambda app: self.fail("no console opens")), \
                redirect_stdout(out), redirect_stderr(err):
            code = cli.main(["supervise", *args])
        return code, out.getvalue(), " ".join(err.getvalue().split())

    def statuses(self) -> dict[str, str]:
        with Store(self.db) as st:
            return {f"{row.bottle_id}/{row.id}": row.status for row in st.proposals()}

    def decisions(self) -> list[str]:
        with Store(self.db) as st:
            return [a.action for a in st.audit_rows() if a.operator != sync_mod.SYSTEM_OPERATOR]


class DamagedRowNamed(CliCase):
    """Finding: a row whose JSON was damaged raised ``json.JSONDecodeError`` out of the store;
    what callers said named neither the proposal nor the column."""

    def setUp(self) -> None:
        super().setUp()
        self.imported((IDS[0], "egress-one"), (IDS[1], "egress-two"))

    def test_the_store_raises_its_own_error_naming_the_proposal_and_the_column(self) -> None:
        damage(self.db, "UPDATE proposals SET payload = 'not json' WHERE id = 'egress-one'")
        with Store(self.db) as st:
            key = st.find("egress-two").key
            for read in (st.pending, lambda: st.find("egress-one"), lambda: st.proposals(bottle_id=IDS[0])):
                with self.assertRaises(StoreError) as caught:
                    read()
                self.assertIsInstance(caught.exception, DamagedRow)
                self.assertIn(f"proposal {IDS[0]}/egress-one (#", str(caught.exception))
                self.assertIn("column payload", str(caught.exception))
                self.assertIn("move the file aside", caught.exception.hint or "")
            self.assertEqual(st.get(key).id, "egress-two", "the other rows still read")

    def test_json_of_the_wrong_shape_is_damage_too(self) -> None:
        for column, value in (("payload", "[1, 2]"), ("payload", '"text"'), ("change", "7"),
                              ("payload", "[" * 50_000 + "]" * 50_000)):
            damage(self.db, f"UPDATE proposals SET {column} = ? WHERE id = 'egress-one'", value)
            with Store(self.db) as st, self.assertRaises(DamagedRow) as caught:
                st.find("egress-one")
            self.assertIn(f"column {column}", str(caught.exception))
            damage(self.db, "UPDATE proposals SET payload = '{}', change = NULL WHERE id = 'egress-one'")

    def test_damaged_audit_and_event_rows_are_named(self) -> None:
        self.sidecars[IDS[0]].log_lines({"ts": "2026-11-22T05:29:01.000Z", "decision": "deny", "host": "x.example"})
        with Store(self.db) as st:
            sync(st, bottles=MANY, link_for=self.link_for)
            st.audit(AuditEntry(operator="ann", action="note", bottle_id=IDS[0], before={"a": 1}))
        damage(self.db, "UPDATE audit SET before = '{broken'")
        damage(self.db, "UPDATE egress_events SET record = 'nope'")
        with Store(self.db) as st:
            with self.assertRaises(DamagedRow) as audit:
                st.audit_rows()
            with self.assertRaises(DamagedRow) as events:
                st.events(IDS[0])
        self.assertIn("audit row #", str(audit.exception))
        self.assertIn("column before", str(audit.exception))
        self.assertIn(f"of bottle {IDS[0]}", str(events.exception))
        self.assertIn("column record", str(events.exception))

    def test_the_cli_says_it_plainly_and_exits_1(self) -> None:
        damage(self.db, "UPDATE proposals SET payload = 'not json' WHERE id = 'egress-one'")
        # The rows that are whole can still be decided, one by one (before --once, whose sync
        # expires what no running bottle waits for).
        code, out, err = self.run_cli("--approve", "egress-two")
        self.assertEqual(code, 0, err)
        self.assertIn(f"{IDS[1]}/egress-two: applied", out)
        for args in (["--once"], ["--once", "--format", "json"], ["--approve", "egress-one"],
                     ["--reject", "egress-o", "--reason", "no"]):
            code, _, err = self.run_cli(*args)
            self.assertEqual(code, 1, (args, err))
            self.assertIn(f"{self.db}: cannot read the supervise database: an entry in it is damaged", err)
            self.assertIn(f"proposal {IDS[0]}/egress-one (#", err)
            self.assertIn("column payload", err)
            self.assertIn("hint: move the file aside", err)
            self.assertNotIn("Traceback", err)
            self.assertNotIn("internal error", err)

    def test_the_console_names_it_and_stays_up(self) -> None:
        seen: list[Any] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            damage(self.db, "UPDATE proposals SET change = '{x' WHERE id = 'egress-two'")
            await synced_again(self, app, pilot)
            seen.append(status(app))
            seen.append([n.message for n in app._notifications])
            await pilot.press("g")
            await self.settled(app, pilot)
            seen.append(app.is_running)

        self.drive(script, size=(120, 40))
        line, told, running = seen
        self.assertIn("an entry in it is damaged", line)
        self.assertIn(f"{IDS[1]}/egress-two", line)
        self.assertTrue(any(f"{IDS[1]}/egress-two (#2), column change: not JSON" in m
                            and "move the file aside" in m for m in told), told)
        self.assertTrue(running)

    def test_a_damaged_event_keeps_the_console_up(self) -> None:
        self.sidecars[IDS[0]].log_lines({"ts": "2026-11-22T05:29:01.000Z", "decision": "deny", "host": "x.example"})
        seen: list[Any] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            damage(self.db, "UPDATE egress_events SET record = '[]'")
            await synced_again(self, app, pilot)
            seen.append(screen_text(app))
            seen.append(app.is_running)

        self.drive(script, size=(120, 40))
        text, running = seen
        self.assertIn(f"Events of {IDS[0]}: cannot be read", text)
        self.assertTrue(running)


PIDS = ("egress-20261207T041800-ab12cd34", "egress-20261207T041800-ab99ffff", "egress-20261207T0420-11110000",
        "capability-20261207T0430-9f00aa11")


class PrefixIds(CliCase):
    """Finding: an operator had to type a proposal's whole id (a kind, a time and eight hex
    digits); as with git or docker, a prefix only one id starts with names it, and one that
    several start with decides nothing."""

    def setUp(self) -> None:
        super().setUp()
        self.imported((IDS[0], PIDS[0]), (IDS[0], PIDS[1]), (IDS[1], PIDS[2]), (IDS[1], PIDS[3]))

    def test_a_unique_prefix_decides_that_proposal(self) -> None:
        code, out, err = self.run_cli("--approve", "egress-20261207T041800-ab1")
        self.assertEqual(code, 0, err)
        self.assertIn(f"{IDS[0]}/{PIDS[0]}: applied", out)
        code, out, err = self.run_cli("--reject", "capa", "--reason", "not now")
        self.assertEqual(code, 0, err)
        self.assertIn(f"{IDS[1]}/{PIDS[3]}: rejected", out)
        self.assertEqual(self.statuses(), {f"{IDS[0]}/{PIDS[0]}": "applied", f"{IDS[0]}/{PIDS[1]}": "pending",
                                           f"{IDS[1]}/{PIDS[2]}": "pending", f"{IDS[1]}/{PIDS[3]}": "rejected"})

    def test_an_ambiguous_prefix_decides_nothing_and_names_the_candidates(self) -> None:
        before = self.statuses()
        for args in (["--approve", "egress-2026"], ["--reject", "egress-20261207T041800-ab", "--reason", "no"],
                     ["--approve", "e"]):
            code, out, err = self.run_cli(*args)
            self.assertEqual(code, 2, err)
            self.assertIn("nothing was decided", err)
            self.assertIn(f"{IDS[0]}/{PIDS[0]}", err)
            self.assertIn(f"{IDS[0]}/{PIDS[1]}", err)
            self.assertNotIn("applied", out)
        self.assertIn(f"{IDS[1]}/{PIDS[2]}", self.run_cli("--approve", "egress-2026")[2])
        self.assertIn("matches 3 proposals", self.run_cli("--approve", "egress-2026")[2])
        self.assertEqual(self.statuses(), before)
        self.assertEqual(self.decisions(), [])

    def test_at_most_a_few_candidates_are_named(self) -> None:
        self.imported(*[(IDS[2], f"egress-20261207T05{n:02d}-00000000") for n in range(12)])
        code, _, err = self.run_cli("--approve", "egress-")
        self.assertEqual(code, 2)
        self.assertIn("matches 15 proposals", err)
        self.assertEqual(err.count(f"{IDS[2]}/egress-") + err.count(f"{IDS[0]}/egress-")
                         + err.count(f"{IDS[1]}/egress-"), 5)
        self.assertIn("and 10 more", err)
        self.assertEqual(self.decisions(), [])

    def test_a_whole_id_wins_over_longer_ids_it_begins(self) -> None:
        self.imported((IDS[2], "egress-1"), (IDS[2], "egress-10"))
        code, out, err = self.run_cli("--approve", "egress-1")
        self.assertEqual(code, 0, err)
        self.assertIn(f"{IDS[2]}/egress-1: applied", out)
        self.assertEqual(self.statuses()[f"{IDS[2]}/egress-10"], "pending")

    def test_one_id_in_two_bottles_needs_its_bottle(self) -> None:
        self.imported((IDS[2], "egress-same"), (IDS[3], "egress-same"))
        code, _, err = self.run_cli("--approve", "egress-same")
        self.assertEqual(code, 2)
        self.assertIn(f"is in 2 bottles: {IDS[2]}/egress-same, {IDS[3]}/egress-same", err)
        self.assertIn("hint: name it as BOTTLE/ID", err)
        code, out, err = self.run_cli("--approve", f"{IDS[3]}/egress-s")
        self.assertEqual(code, 0, err)
        self.assertIn(f"{IDS[3]}/egress-same: applied", out)
        self.assertEqual(self.statuses()[f"{IDS[2]}/egress-same"], "pending")

    def test_a_prefix_is_taken_literally(self) -> None:
        for typed in ("EGRESS-2026", "egress-2026%", "egress_2026", "%", "_", "gress", f"{IDS[1]}/egress-20261207T04180"):
            code, _, err = self.run_cli("--approve", typed)
            self.assertEqual(code, 2, typed)
            self.assertIn("no proposal", err)
        self.assertEqual(self.decisions(), [])

    def test_the_store_resolves_keys_and_refuses_an_empty_id(self) -> None:
        with Store(self.db) as st:
            row = st.find(PIDS[2])
            self.assertEqual(st.resolve(f"#{row.key}").id, PIDS[2])
            for typed in ("#999", f"{IDS[0]}/", ""):
                with self.assertRaises(UnknownProposal):
                    st.resolve(typed)
            with self.assertRaises(UnknownProposal) as caught:
                st.resolve("egress-")
            self.assertEqual(caught.exception.candidates, (f"{IDS[0]}/{PIDS[0]}", f"{IDS[0]}/{PIDS[1]}",
                                                           f"{IDS[1]}/{PIDS[2]}"))

    def test_usage_errors_decide_nothing(self) -> None:
        for args in (["--reject", PIDS[0]], ["--reject", PIDS[0], "--reason", "  "], ["--approve", PIDS[0], "--once"],
                     ["--approve", PIDS[0], "--reject", PIDS[1], "--reason", "x"], ["--once", "--reason", "x"],
                     ["--approve", PIDS[0], "--format", "json"]):
            code, _, err = self.run_cli(*args)
            self.assertEqual(code, 2, (args, err))
        self.assertEqual(self.decisions(), [])

    def test_help_says_a_unique_prefix_is_enough_and_an_ambiguous_one_decides_nothing(self) -> None:
        out = io.StringIO()
        with redirect_stdout(out), self.assertRaises(SystemExit):
            cli.main(["supervise", "--help"])
        text = " ".join(out.getvalue().split())
        self.assertIn("--approve ID", text)
        self.assertIn("--reject ID", text)
        self.assertIn("unique prefix", text)
        self.assertIn("decides nothing, exits 2 and names a few of them", text)
