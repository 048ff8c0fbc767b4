"""The supervise console and store after a night away: a decision being applied is not failed by
the first sync after the machine slept, a row holding bytes that are not UTF-8 is named (proposal
and column) on every read, a bottle with 10,000 events is shown as its newest few hundred and
updated in place, and odd input on the command line decides nothing and reaches no terminal raw."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any
from unittest import mock

from textual.widgets import DataTable, RichLog, Static

from bot_bottle import cli
from bot_bottle.supervise import apply
from bot_bottle.supervise import proposals as states
from bot_bottle.supervise import sync as sync_mod
from bot_bottle.supervise.console import EVENTS_SHOWN, SuperviseApp
from bot_bottle.supervise import store as store_mod
from bot_bottle.supervise.store import DamagedRow, Store, StoreError
from bot_bottle.supervise.sync import sync
from tests.unit._waits_dec15k import until_shown
from tests.unit.test_console_gaps_dec06c import IDS, MANY, Busy
from tests.unit.test_console_gaps_dec08e import CliCase, applying_slowly, damage, synced_again
from tests.unit.test_supervise_console import NOW, cell_texts
from tests.unit.test_supervise_console_screen import screen_text

ROOT = Path(__file__).resolve().parents[2]
HOURS_2 = 2 * sync_mod.STUCK_AFTER_S
# A process that takes a proposal's applying lock, says so, and holds it until its stdin closes.
HOLDER = """
import sys
from pathlib import Path
from bot_bottle.supervise.store import Store
with Store(Path(sys.argv[1])) as st, st.applying(int(sys.argv[2])) as held:
    print("held" if held else "not held", flush=True)
    sys.stdin.read()
"""


class Granted(Busy):
    """One egress proposal, imported and then approved at ``NOW`` with nobody applying it."""

    def setUp(self) -> None:
        super().setUp()
        self.propose(IDS[0], "egress", {"host": "slow.example"}, "egress-slow")
        self.now = NOW
        with Store(self.db) as st:
            sync(st, bottles=MANY, link_for=self.link_for)
            self.key = st.find("egress-slow").key

    def clock(self) -> float:
        return self.now

    def approve_unapplied(self) -> None:
        with Store(self.db, clock=self.clock) as st:
            st.update_proposal(self.key, expect="pending", status="approved", verdict="approved", operator="ann",
                               decided_at=NOW)

    def sync_at(self, when: float) -> tuple[int, str]:
        with Store(self.db) as st:
            report = sync(st, bottles=MANY, link_for=self.link_for, now=when)
            return report.interrupted, st.get(self.key).status

    def holder(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(self.db), str(self.key)], cwd=ROOT,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(self.end, proc)
        self.assertEqual(proc.stdout.readline().strip() if proc.stdout else "", "held")
        return proc

    def end(self, proc: subprocess.Popen[str]) -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


class AnApplyThroughASuspend(Granted):
    """Finding: after the machine slept for over an hour, the first sync on waking failed a
    decision still being applied: its decision and last stamp both looked an hour old, though
    the applying process was alive and would have stamped within the minute."""

    def test_a_live_apply_not_stamped_for_two_hours_is_left_alone(self) -> None:
        # The heartbeat's next stamp is far off: as on waking, before the applier's thread runs.
        with applying_slowly(self, heartbeat_s=3600.0) as outcome:
            interrupted, during = self.sync_at(NOW + HOURS_2)
        self.assertEqual((interrupted, during), (0, "approved"))
        self.assertNotIn("error", outcome)
        self.assertEqual(outcome["row"].status, "applied")

    def test_a_stopped_applying_process_is_alive_and_a_killed_one_is_not(self) -> None:
        self.approve_unapplied()
        proc = self.holder()
        os.kill(proc.pid, signal.SIGSTOP)  # as a suspended machine: it runs nothing, and it lives
        try:
            self.assertEqual(self.sync_at(NOW + HOURS_2), (0, "approved"))
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        self.assertEqual(self.sync_at(NOW + 10 * HOURS_2), (0, "approved"))
        proc.kill()  # a crash: no chance to tidy up
        proc.wait(10)
        interrupted, status = self.sync_at(NOW + HOURS_2)
        self.assertEqual((interrupted, status), (1, "failed"))
        with Store(self.db) as st:
            self.assertIn("applying it was interrupted", st.get(self.key).error or "")

    def test_a_dead_apply_is_still_failed_only_an_hour_after_its_last_stamp(self) -> None:
        self.approve_unapplied()
        proc = self.holder()
        proc.kill()
        proc.wait(10)
        self.assertEqual(self.sync_at(NOW + sync_mod.STUCK_AFTER_S - 1), (0, "approved"))
        self.assertEqual(self.sync_at(NOW + sync_mod.STUCK_AFTER_S + 1), (1, "failed"))

    def test_the_file_a_crash_left_is_removed_and_an_apply_leaves_none(self) -> None:
        self.approve_unapplied()
        folder = self.db.parent / f"{self.db.name}{store_mod.APPLYING_SUFFIX}"
        proc = self.holder()
        self.assertTrue((folder / str(self.key)).exists())
        proc.kill()
        proc.wait(10)
        self.assertEqual(self.sync_at(NOW + HOURS_2), (1, "failed"))
        self.assertFalse((folder / str(self.key)).exists(), "left by the crash, removed by the sync")
        self.propose(IDS[1], "egress", {"host": "quick.example"}, "egress-quick")
        with Store(self.db) as st:
            sync(st, bottles=MANY, link_for=self.link_for)
            done = apply.decide(st, "egress-quick", "approved", operator="ann",
                                context=apply.Context(layout=self.layout, link_for=self.link_for))
        self.assertEqual(done.status, "applied")
        self.assertEqual(list(folder.iterdir()), [])
        self.assertEqual(folder.stat().st_mode & 0o777, 0o700)

    def test_the_console_applying_a_decision_sees_its_own_lock(self) -> None:
        with Store(self.db) as st, st.applying(self.key) as held:
            self.assertTrue(held)
            self.assertTrue(st.apply_alive(self.key), "a second open of the same file sees the lock")
        with Store(self.db) as st:
            self.assertFalse(st.apply_alive(self.key))

    def test_a_folder_that_cannot_be_written_leaves_the_clock_rule(self) -> None:
        self.approve_unapplied()
        (self.db.parent / f"{self.db.name}{store_mod.APPLYING_SUFFIX}").write_text("not a folder")
        with Store(self.db) as st, st.applying(self.key) as held:
            self.assertFalse(held)
            self.assertEqual(sync_mod.fail_interrupted(st, now=NOW + sync_mod.STUCK_AFTER_S - 1), 0)
            self.assertEqual(sync_mod.fail_interrupted(st, now=NOW + HOURS_2), 1)


NOT_UTF8 = "CAST(X'41FF42' AS TEXT)"  # "A", a byte no UTF-8 text holds, "B"


class BytesThatAreNotUtf8(CliCase):
    """Finding: a row holding bytes that are not UTF-8 (an older or damaged sidecar wrote them)
    raised SQLite's bare "Could not decode to UTF-8" out of every read: no proposal named, and no
    word that the file is damaged."""

    def setUp(self) -> None:
        super().setUp()
        self.imported((IDS[0], "egress-one"), (IDS[1], "egress-two"))
        with Store(self.db) as st:
            self.one, self.two = st.find("egress-one").key, st.find("egress-two").key

    def check(self, exc: BaseException, column: str, name: str | None = None) -> None:
        self.assertIsInstance(exc, DamagedRow)
        self.assertIn(name or f"proposal {IDS[0]}/egress-one (#{self.one})", str(exc))
        self.assertIn(f"column {column}: not UTF-8 text", str(exc))
        self.assertIn("move the file aside", getattr(exc, "hint", "") or "")

    def test_every_read_of_proposals_names_the_row_and_the_column(self) -> None:
        for column in ("justification", "payload", "reason", "error", "kind"):
            damage(self.db, f"UPDATE proposals SET {column} = {NOT_UTF8} WHERE id = 'egress-one'")
            with Store(self.db) as st:
                for read in (st.pending, st.proposals, lambda: st.proposals(bottle_id=IDS[0]),
                             lambda: st.get(self.one), lambda: st.find("egress-one"),
                             lambda: st.find(f"{IDS[0]}/egress-one"), lambda: st.resolve("egress-one"),
                             lambda: st.resolve("egress-o"), lambda: st.resolve("egress-"),
                             lambda: st.resolve(f"#{self.one}")):
                    with self.assertRaises(StoreError) as caught:
                        read()
                    self.check(caught.exception, column)
                self.assertEqual(st.get(self.two).id, "egress-two", "the other rows still read")
                self.assertEqual(st.resolve("egress-t").id, "egress-two")
            damage(self.db, f"UPDATE proposals SET {column} = 'x' WHERE id = 'egress-one'")

    def test_a_damaged_id_is_named_with_its_bytes_escaped(self) -> None:
        damage(self.db, f"UPDATE proposals SET id = {NOT_UTF8} WHERE key = ?", self.one)
        with Store(self.db) as st, self.assertRaises(DamagedRow) as caught:
            st.pending()
        self.check(caught.exception, "id", f"proposal {IDS[0]}/A\\xffB (#{self.one})")
        str(caught.exception).encode("utf-8")  # printable as it is: no lone surrogate in it

    def test_the_others_can_be_listed_leaving_the_damaged_out(self) -> None:
        self.imported((IDS[2], "egress-three"))
        damage(self.db, f"UPDATE proposals SET justification = {NOT_UTF8} WHERE id = 'egress-one'")
        damage(self.db, "UPDATE proposals SET payload = 'not json' WHERE id = 'egress-two'")
        with Store(self.db) as st:
            damaged: list[DamagedRow] = []
            rows = st.pending(damaged=damaged)
        self.assertEqual([row.id for row in rows], ["egress-three"])
        self.assertEqual(sorted(exc.column for exc in damaged), ["justification", "payload"])

    def test_a_stale_update_names_the_row_too(self) -> None:
        damage(self.db, f"UPDATE proposals SET id = {NOT_UTF8} WHERE key = ?", self.one)
        with Store(self.db) as st, self.assertRaises(DamagedRow) as caught:
            st.update_proposal(self.one, expect="approved", status="applied")
        self.assertIn("column id", str(caught.exception))

    def test_audit_events_and_cursors_are_named(self) -> None:
        self.sidecars[IDS[0]].log_lines({"ts": "2026-11-22T05:29:01.000Z", "decision": "deny", "host": "x.example"})
        with Store(self.db) as st:
            sync(st, bottles=MANY, link_for=self.link_for)
            st.record_terminal(IDS[0], {"clipboard": 1})
        self.run_cli("--reject", "egress-two", "--reason", "no")
        damage(self.db, f"UPDATE audit SET reason = {NOT_UTF8}")
        damage(self.db, f"UPDATE egress_events SET ts = {NOT_UTF8}")
        with Store(self.db) as st:
            for read, name in ((st.audit_rows, "audit row #"), (lambda: st.events(IDS[0]), f"of bottle {IDS[0]}"),
                               (lambda: st.terminal_events(IDS[0]), f"of bottle {IDS[0]} (from terminal)")):
                with self.assertRaises(DamagedRow) as caught:
                    read()
                self.assertIn(name, str(caught.exception))
        damage(self.db, f"UPDATE event_cursors SET source = {NOT_UTF8}")
        with Store(self.db) as st, self.assertRaises(DamagedRow) as caught:
            st.event_cursors(IDS[0])
        self.assertIn(f"event cursor of bottle {IDS[0]}, column source", str(caught.exception))

    def test_a_sync_goes_on_naming_the_row(self) -> None:
        damage(self.db, f"UPDATE proposals SET justification = {NOT_UTF8} WHERE id = 'egress-one'")
        with Store(self.db) as st:
            report = sync(st, bottles=MANY, link_for=self.link_for)
        [left] = report.damaged
        self.check(left, "justification")

    def test_the_cli_says_it_plainly_and_exits_1(self) -> None:
        damage(self.db, f"UPDATE proposals SET justification = {NOT_UTF8} WHERE id = 'egress-one'")
        # Before --once: its sync goes on past the damaged row, expiring what no running bottle waits for.
        code, out, err = self.run_cli("--approve", "egress-two")
        self.assertEqual(code, 0, err)
        self.assertIn(f"{IDS[1]}/egress-two: applied", out)
        for args in (["--once"], ["--once", "--format", "json"], ["--approve", "egress-one"],
                     ["--approve", "egress-"], ["--reject", "egress-o", "--reason", "no"]):
            code, _, err = self.run_cli(*args)
            self.assertEqual(code, 1, (args, err))
            self.assertIn("cannot read the supervise database: an entry in it is damaged", err)
            self.assertIn(f"proposal {IDS[0]}/egress-one (#{self.one}), column justification: not UTF-8", err)
            self.assertIn("hint: move the file aside", err)
            self.assertNotIn("Traceback", err)

    def test_the_console_shows_the_others_and_stays_up(self) -> None:
        damage(self.db, f"UPDATE proposals SET justification = {NOT_UTF8} WHERE id = 'egress-one'")
        seen: list[Any] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            await synced_again(self, app, pilot)
            seen.append(cell_texts(app.query_one("#proposals", DataTable)))
            seen.append(screen_text(app))
            seen.append([n.message for n in app._notifications])
            seen.append(app.is_running)

        self.drive(script, size=(120, 40))
        rows, text, told, running = seen
        self.assertEqual([row[0] for row in rows], [str(self.two)])
        self.assertIn("Pending proposals (1; 1 damaged, not shown)", text)
        self.assertIn("an entry in it is damaged", text)
        self.assertTrue(any(f"{IDS[0]}/egress-one (#{self.one}), column justification" in m for m in told), told)
        self.assertTrue(running)


def event(n: int) -> dict[str, Any]:
    return {"ts": "2026-11-22T05:29:01.000Z", "decision": "deny", "rule": "no-route", "host": f"h{n}.example",
            "port": 443, "method": "CONNECT", "connect": True}


class TenThousandEvents(Busy):
    """Finding: with 10,000 events of the selected bottle the title said "200", as if that were
    all of them, and every sync that brought one more event cleared the log and wrote its 200
    lines again."""

    def setUp(self) -> None:
        super().setUp()
        with Store(self.db) as st:
            st.import_events(IDS[0], "c-old", [(n, event(n)) for n in range(10_000)], next_offset=10_000)

    def add(self, first: int, count: int) -> None:
        with Store(self.db) as st:
            st.import_events(IDS[0], "c-old", [(n, event(n)) for n in range(first, first + count)],
                             next_offset=first + count)

    def title(self, app: SuperviseApp) -> str:
        return str(app.query_one("#events-title", Static).render())

    def test_the_title_says_how_many_are_not_shown(self) -> None:
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            # A screen that stopped changing may still be a layout short of the end: wait for it.
            await until_shown(pilot, lambda: "h9999.example" in screen_text(app))
            seen.append(self.title(app))
            seen.append(screen_text(app))

        self.drive(script, size=(120, 40))
        title, text = seen
        self.assertIn(f": newest {EVENTS_SHOWN} of 10000 ({10_000 - EVENTS_SHOWN} older not shown)", title)
        self.assertIn("h9999.example", text, "the newest is in sight")

    def test_new_events_are_added_below_without_writing_the_log_again(self) -> None:
        seen: list[Any] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            log = app.query_one("#events", RichLog)
            before = list(log.lines)
            self.add(10_000, 5)
            await synced_again(self, app, pilot)
            seen.extend([before, list(log.lines), self.title(app)])

        self.drive(script, size=(120, 40))
        before, after, title = seen
        self.assertEqual(len(after), EVENTS_SHOWN)
        self.assertIn("h10004.example", after[-1].text)
        self.assertIn("h10000.example", after[-5].text)
        self.assertTrue(all(a is b for a, b in zip(after[:-5], before[5:])), "the lines kept are not written again")
        self.assertIn(": newest 200 of 10000 (9800 older not shown)", title, "the store keeps 10,000")

    def test_another_bottle_and_a_flood_write_the_log_whole(self) -> None:
        seen: list[Any] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            log = app.query_one("#events", RichLog)
            self.add(20_000, 2 * EVENTS_SHOWN)  # more than the log shows: none of the old ones stays
            await synced_again(self, app, pilot)
            seen.append([strip.text for strip in log.lines])
            app.query_one("#bottles", DataTable).focus()
            await pilot.press("down")
            await self.settled(app, pilot)
            seen.append([strip.text for strip in log.lines])
            seen.append(self.title(app))

        self.drive(script, size=(120, 40))
        flood, other, title = seen
        self.assertEqual(len(flood), EVENTS_SHOWN)
        self.assertIn(f"h{20_000 + EVENTS_SHOWN}.example", flood[0])
        self.assertIn(f"h{20_000 + 2 * EVENTS_SHOWN - 1}.example", flood[-1])
        self.assertEqual([line for line in other if line.strip()], [])
        self.assertIn(f"events of {IDS[1]}", title)
        self.assertIn(": 0", title)

    def test_a_small_log_grows_in_place_and_says_its_count(self) -> None:
        seen: list[Any] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            app.query_one("#bottles", DataTable).focus()
            await pilot.press("down")
            await self.settled(app, pilot)
            with Store(self.db) as st:
                st.import_events(IDS[1], "c-b", [(n, event(n)) for n in range(3)], next_offset=3)
            await synced_again(self, app, pilot)
            log = app.query_one("#events", RichLog)
            before = list(log.lines)
            with Store(self.db) as st:
                st.import_events(IDS[1], "c-b", [(3, event(3))], next_offset=4)
            await synced_again(self, app, pilot)
            seen.extend([before, list(log.lines), self.title(app)])

        self.drive(script, size=(120, 40))
        before, after, title = seen
        self.assertEqual(len(after), 4)
        self.assertTrue(all(a is b for a, b in zip(after, before)))
        self.assertTrue(title.endswith(": 4"), title)


ESC = "\x1b]0;owned\x07\x1b[2J"


class OddInputOnTheCommandLine(CliCase):
    """Finding: ``--reason`` took anything: a megabyte (stored twice, and sent to the agent) and
    terminal escapes (which reach the agent's terminal, and any screen that shows the reason)."""

    def setUp(self) -> None:
        super().setUp()
        self.imported((IDS[0], "egress-one"), (IDS[1], "egress-two"))

    def test_help_names_the_forms_of_an_id_and_what_a_reason_may_hold(self) -> None:
        out = io.StringIO()
        with mock.patch.dict("os.environ", {"COLUMNS": "200"}), redirect_stdout(out), \
                self.assertRaises(SystemExit) as caught:
            cli.main(["supervise", "--help"])
        self.assertEqual(caught.exception.code, 0)
        text = " ".join(out.getvalue().split())
        for said in ("--approve ID", "--reject ID", "--reason TEXT", "BOTTLE/ID", "#KEY", "unique prefix",
                     f"most {states.MAX_REASON_CHARS} characters", "no other control characters",
                     "exit status 1 when it was decided already"):
            self.assertIn(said, text)

    def test_an_unknown_id_decides_nothing_and_its_escapes_are_shown_as_such(self) -> None:
        for typed in ("nope", f"{ESC}/x", f"x/{ESC}", ESC):
            code, out, err = self.run_cli("--approve", typed)
            self.assertEqual(code, 2, (typed, err))
            self.assertIn("no proposal", err)
            self.assertIn("nothing was decided", err)
            for raw in ("\x1b", "\x07"):
                self.assertNotIn(raw, out + err)
        self.assertEqual(self.decisions(), [])

    def test_a_decided_proposal_says_so_and_changes_nothing(self) -> None:
        self.assertEqual(self.run_cli("--reject", "egress-one", "--reason", "no")[0], 0)
        for args in (["--approve", "egress-one"], ["--reject", "egress-one", "--reason", "again"]):
            code, _, err = self.run_cli(*args)
            self.assertEqual(code, 1, (args, err))
            self.assertIn(f"{IDS[0]}/egress-one was already rejected by ", err)
            self.assertIn("it cannot be", err)
            self.assertNotIn("Traceback", err)
        self.assertEqual(self.statuses()[f"{IDS[0]}/egress-one"], "rejected")

    def test_a_reason_with_terminal_escapes_is_refused(self) -> None:
        for reason in (f"no {ESC}", "no\rmore", "no\x00", "bell\x07", "rtl \u202e txt", "c1 \x9b31m"):
            for args in (["--reject", "egress-one", "--reason", reason], ["--approve", "egress-one", "--reason", reason]):
                code, out, err = self.run_cli(*args)
                self.assertEqual(code, 2, (reason, err))
                self.assertIn("no other control character", err)
                self.assertIn("nothing was decided", err)
                for raw in ("\x1b", "\x07", "\r", "\x00", "\u202e", "\x9b"):
                    self.assertNotIn(raw, out + err)
        self.assertEqual(self.statuses()[f"{IDS[0]}/egress-one"], "pending")
        self.assertEqual(self.decisions(), [])

    def test_a_megabyte_reason_is_refused_and_the_most_allowed_is_taken(self) -> None:
        code, _, err = self.run_cli("--reject", "egress-one", "--reason", "x" * (1024 * 1024))
        self.assertEqual(code, 2, err)
        self.assertIn(f"at most {states.MAX_REASON_CHARS} characters; this one has 1048576", err)
        self.assertLess(len(err), 1000)
        self.assertEqual(self.statuses()[f"{IDS[0]}/egress-one"], "pending")
        code, out, err = self.run_cli("--reject", "egress-one", "--reason", "y" * states.MAX_REASON_CHARS)
        self.assertEqual(code, 0, err)
        self.assertIn("rejected", out)

    def test_line_breaks_tabs_and_any_script_are_a_reason_like_any_other(self) -> None:
        reason = "not this host:\n\tuse the mirror — see ünïcode docs 文档 ✓ ❤️ 👨\u200d👩\u200d👧 soft\u00adhyphen"
        code, out, err = self.run_cli("--reject", "egress-one", "--reason", reason)
        self.assertEqual(code, 0, err)
        with Store(self.db) as st:
            self.assertEqual(st.find("egress-one").reason, reason)
        code, out, err = self.run_cli("--approve", "egress-two", "--reason", "ok for\nnow")
        self.assertEqual(code, 0, err)
        self.assertIn(f"{IDS[1]}/egress-two: applied", out)

    def test_the_console_refuses_such_a_reason_too(self) -> None:
        ctx = apply.Context(layout=self.layout, link_for=self.link_for)
        with Store(self.db) as st:
            with self.assertRaises(states.InvalidDecision):
                apply.decide(st, "egress-one", "rejected", reason=f"no {ESC}", operator="ann", context=ctx)
            with self.assertRaises(states.InvalidDecision):
                apply.decide(st, "egress-one", "rejected", reason="z" * (states.MAX_REASON_CHARS + 1), operator="ann",
                             context=ctx)
            self.assertEqual(st.find("egress-one").status, "pending")

    def once(self) -> tuple[int, str, str]:
        """``supervise --once`` with every bottle of this test running."""
        out, err = io.StringIO(), io.StringIO()
        with mock.patch.dict("os.environ", {"HOME": str(self.layout.home), "COLUMNS": "200"}), \
                mock.patch.object(sync_mod, "_on_the_engine", lambda: set(IDS)), \
                redirect_stdout(out), redirect_stderr(err):
            code = cli.main(["supervise", "--once"])
        return code, out.getvalue(), err.getvalue()

    def test_what_an_agent_wrote_reaches_no_screen_raw(self) -> None:
        self.propose(IDS[2], "egress", {"host": "esc.example"}, "egress-esc", justification=f"please {ESC} now\x9b2J")
        with Store(self.db) as st:
            sync(st, bottles=MANY, link_for=self.link_for)
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            for _ in range(3):
                await pilot.press("down")
            await self.settled(app, pilot)
            seen.append(screen_text(app))

        self.drive(script, size=(160, 40))
        with mock.patch.object(sync_mod, "running_bottles", lambda state_root=None: MANY), \
                mock.patch.object(sync_mod, "SidecarLink", self.link_for):
            code, out, err = self.once()
        for text in (seen[0], out, err):
            for raw in ("\x1b", "\x07", "\x9b"):
                self.assertNotIn(raw, text)
        self.assertIn("please \\x1b]0;owned\\x07", out.replace("\n", ""))
