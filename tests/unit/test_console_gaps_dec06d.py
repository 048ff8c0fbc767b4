"""The console as a busy operator meets it once more, at 80x24: every key can be found (``?``),
every bottle a sync could not read is counted and named, a label in wide (CJK) characters is
fitted by the cells it takes, and rapid keys while syncs run and proposals go underneath never
decide a proposal the operator did not see under the cursor, never stack the same warning down
the screen, and never fail a decision already on its way."""

from __future__ import annotations

import random
import threading
import unittest
from typing import Any
from unittest import mock

from rich.cells import cell_len
from textual.widgets import DataTable, Static

from bot_bottle.state import Metadata, StateDir
from bot_bottle.supervise import apply, view
from bot_bottle.supervise.console import HELP_KEYS, HelpScreen, SuperviseApp, sync_problems
from bot_bottle.supervise.link import LinkError
from bot_bottle.supervise.store import Store
from bot_bottle.supervise.sync import BottleInfo, SyncReport, sync
from tests.unit.test_console_gaps_dec06c import IDS, MANY, Busy
from tests.unit.test_supervise_console import NOW
from tests.unit.test_supervise_console_screen import screen_text
from tests.unit.test_supervise_link import LocalSidecar


def footer(app: SuperviseApp) -> str:
    return screen_text(app).splitlines()[-1]


def status(app: SuperviseApp) -> str:
    return str(app.query_one("#status", Static).render())


class KeysCanBeFound(Busy):
    """Finding: tab, enter and escape were in no footer and no help: an operator could not find
    how to move between panes, open a proposal's detail or go back."""

    def test_at_80_columns_the_footer_shows_help_with_every_other_key(self) -> None:
        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            line = footer(app)
            for key, what in (("q", "Quit"), ("g", "Sync"), ("s", "Stop"), ("a", "Approve"), ("A", "+manifest"),
                              ("m", "Modify"), ("r", "Reject"), ("?", "Help")):
                self.assertIn(f"{key} {what}", line)

        self.drive(script, size=(80, 24))

    def test_question_mark_lists_every_key_on_an_80x24_screen_and_escape_closes_it(self) -> None:
        self.busy()
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            await pilot.press("question_mark")
            await self.until(pilot, lambda: isinstance(app.screen, HelpScreen))
            await self.settled(app, pilot)
            seen.append(screen_text(app))
            await pilot.press("escape")
            await self.until(pilot, lambda: not isinstance(app.screen, HelpScreen))

        self.drive(script, size=(80, 24))
        text = seen[0]
        for key, what in HELP_KEYS:
            self.assertIn(what, text, "each key's line whole, on the screen")
        shown = " ".join(key for key, _ in HELP_KEYS)
        for binding in SuperviseApp.BINDINGS:
            self.assertIn("?" if binding.key == "question_mark" else binding.key, shown.split(), binding)
        for key in ("tab", "enter", "escape", "j", "k"):
            self.assertIn(key, shown.replace(",", " ").split())

    def test_keys_pressed_while_the_help_is_open_decide_nothing(self) -> None:
        self.propose(IDS[0], "egress", {"host": "docs.example", "ports": [443]}, "egress-1")

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.press("question_mark")
            await self.until(pilot, lambda: isinstance(app.screen, HelpScreen))
            await pilot.press("a", "a")
            await pilot.pause(0.5)
            self.assertIsInstance(app.screen, HelpScreen)

        self.drive(script, size=(80, 24))
        self.assertEqual(self.status_of("egress-1"), "pending")

    def test_j_and_k_move_through_the_proposals(self) -> None:
        for i in range(3):
            self.propose(IDS[0], "egress", {"host": f"h{i}.example"}, f"egress-{i}", created_at=NOW - 100 + i)

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.press("j", "j")
            self.assertEqual(app.current_proposal().id, "egress-2")
            await pilot.press("k")
            self.assertEqual(app.current_proposal().id, "egress-1")

        self.drive(script, size=(80, 24))


class DownLink:
    """A sidecar that is not there (the bottle's container stopped under the sync)."""

    def __init__(self, bottle_id: str) -> None:
        self.bottle_id = bottle_id

    def pending(self) -> list[Any]:
        raise LinkError(f"bottle {self.bottle_id}: no sidecar container c-{self.bottle_id} (is the bottle running?)",
                        kind="unreachable")


class EveryUnreadBottle(Busy):
    """Finding: with several sidecars down, the status line said the first one's error and
    "(+2 more)": which other bottles could not be read was nowhere on the screen."""

    DOWN = IDS[2:5]

    def link_for(self, bottle_id: str) -> Any:
        return DownLink(bottle_id) if bottle_id in self.DOWN else super().link_for(bottle_id)

    def test_a_sync_reports_each_bottle_it_could_not_read(self) -> None:
        with Store(self.db) as st:
            report = sync(st, bottles=MANY, link_for=self.link_for)
        self.assertEqual(sorted(report.unread), sorted(self.DOWN))
        self.assertEqual(len(report.errors), 3)

    def test_at_80x24_the_status_line_counts_and_names_them(self) -> None:
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            seen.append(status(app))
            seen.append(screen_text(app).splitlines()[-2])
            await pilot.press("question_mark")
            await self.settled(app, pilot)
            seen.append(" ".join(screen_text(app).split()))

        self.drive(script, size=(80, 24))
        line, on_screen, help_text = seen
        self.assertTrue(line.startswith("3 bottles could not be read: cccccc33 (no sidecar"), line)
        self.assertLessEqual(cell_len(line), 78)
        self.assertIn(line.strip()[:60], on_screen)
        named = [b for b in self.DOWN if b in line]
        if len(named) < 3:
            # the stale counts' note may follow the count of bottles not named
            self.assertIn(f"+{3 - len(named)} more", line)
        for bottle in self.DOWN:
            self.assertIn(f"bottle {bottle}: no sidecar container c-{bottle} (is the bottle running?)", help_text)

    def test_at_200_columns_all_three_are_named_with_their_reasons(self) -> None:
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            seen.append(status(app))

        self.drive(script, size=(200, 40))
        self.assertNotIn("more", seen[0])
        for bottle in self.DOWN:
            self.assertIn(f"{bottle} (no sidecar container c-{bottle}", seen[0])


class ManyUnreadBottles(Busy):
    def test_the_help_scrolls_to_the_last_of_twenty_problems_at_80x24(self) -> None:
        report = SyncReport(bottles=MANY)
        for n in range(20):
            report.not_read(f"gone{n:02d}", f"bottle gone{n:02d}: no sidecar container c-gone{n:02d}")
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            seen.append(status(app))
            await pilot.press("question_mark")
            await self.settled(app, pilot)
            await pilot.press("end")
            await self.settled(app, pilot)
            seen.append(screen_text(app))

        self.drive(script, size=(80, 24), app=self.make_app(sync_fn=lambda st: report))
        line, text = seen
        self.assertTrue(line.startswith("20 bottles could not be read: gone00 (no sidecar container c-gone00)"), line)
        self.assertLessEqual(cell_len(line), 78)
        self.assertIn("bottle gone19: no sidecar container c-gone19", text)


class SyncProblemsLine(unittest.TestCase):
    def report(self, bottles: int, others: list[str] | None = None) -> SyncReport:
        report = SyncReport(errors=list(others or []))
        for n in range(bottles):
            report.not_read(f"b{n:02d}", f"bottle b{n:02d}: its sidecar did not answer within 5 s (slow); "
                                         "its proposals and events wait for a later sync")
        return report

    def test_it_never_exceeds_the_width_and_counts_every_bottle(self) -> None:
        for bottles in range(1, 21):
            for width in range(20, 200, 7):
                line = sync_problems(self.report(bottles), width)
                self.assertLessEqual(cell_len(line), width, (bottles, width))
                if width >= 60:
                    named = sum(f"b{n:02d} (" in line for n in range(bottles))
                    more = int(line.rsplit("+", 1)[1].split()[0]) if named < bottles else 0
                    self.assertEqual(named + more, bottles, line)

    def test_other_problems_keep_their_place_first(self) -> None:
        forged = "bottle b09: its sidecar refused proposal p1 (forged: not what it says)"
        line = sync_problems(self.report(2, [forged]), 120)
        self.assertTrue(line.startswith(forged[:40]), line)
        self.assertIn("2 bottles could not be read: b00 (", line)
        self.assertNotIn("b09 (", line, "a refused forgery is not a bottle that could not be read")

    def test_problems_that_are_not_about_reading_a_bottle_read_as_before(self) -> None:
        self.assertEqual(sync_problems(SyncReport(errors=["sync failed: boom", "other"]), 80),
                         "sync failed: boom (+1 more)")


class WideLabels(Busy):
    """Finding: a bottle's name was fitted by its characters, not the cells they take: a label in
    CJK characters took twice the room it was given, and the screen's edge cut the end of the
    host (its owner's name) off the request beside it."""

    HOST = "raw.githubusercontent.com.x.io"
    LABEL = "支払いサービス開発チーム"  # 12 characters, 24 cells

    def test_cut_middle_counts_cells_and_keeps_the_id(self) -> None:
        name = f"{self.LABEL} (aaaaaa11)"
        for width in range(4, 40):
            cut = view.cut_middle(name, width)
            self.assertLessEqual(cell_len(cut), width, width)
            if 16 <= width < cell_len(name):  # from 16 cells on, the id is whole (as for an ASCII name)
                self.assertTrue(cut.endswith(" (aaaaaa11)"), cut)
        self.assertEqual(view.cut_middle("frontend (aaaaaa11)", 18), "front…d (aaaaaa11)")

    def test_cut_counts_cells(self) -> None:
        self.assertEqual(view.cut("ＡＢＣＤ", 5), "ＡＢ…")
        self.assertEqual(view.cut("abcdef", 5), "abcd…")
        self.assertEqual(view.cut("ＡＢ", 4), "ＡＢ")

    def test_at_80x24_a_wide_label_leaves_the_hosts_owner_on_the_screen(self) -> None:
        self.propose(IDS[0], "egress", {"host": self.HOST, "ports": [443]}, "egress-spoof")
        wide = [BottleInfo(b.id, b.agent, self.LABEL if b.id in IDS[:2] else b.label, b.color, b.backend,
                           b.started_at) for b in MANY]

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            [line] = [line for line in screen_text(app).splitlines() if "content.com" in line and " egress " in line]
            self.assertIn("content.com.x.io", line)
            self.assertIn("aaaaaa11)", line)

        self.drive(script, size=(80, 24), app=self.make_app(bottles=wide))


class Gate:
    """Holds every decision of the console until released: a sync can run meanwhile."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.decide = apply.decide

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.open.wait(10)
        return self.decide(*args, **kwargs)


class RapidKeys(Busy):
    def six(self) -> None:
        for i in range(6):
            self.propose(IDS[i % 3], "egress", {"host": f"h{i}.example"}, f"egress-{i}", created_at=NOW - 100 + i)

    def test_a_row_below_that_went_before_the_decision_landed_is_not_the_next_one(self) -> None:
        """Finding: ``a`` on egress-3 with egress-4 below; a sync took egress-4 away while the
        decision was applied; when it landed the cursor moved on to egress-5, never seen below
        egress-3, and the next ``a`` approved it unread."""
        self.six()
        gate = Gate()

        async def script(app: SuperviseApp, pilot: Any) -> None:
            for _ in range(3):
                await pilot.press("down")
            await pilot.press("a")
            self.sidecars[IDS[4 % 3]].spool.expire("egress-4", "the agent's wait ended")
            synced = app.syncs
            await pilot.press("g")
            await self.until(pilot, lambda: app.syncs > synced)
            gate.open.set()
            await self.until(pilot, lambda: app.query_one("#proposals", DataTable).row_count == 4)
            self.assertEqual(app.current_proposal().id, "egress-5")
            await pilot.press("a")
            await pilot.pause(0.5)

        with mock.patch.object(apply, "decide", gate):
            self.drive(script, size=(120, 40))
        self.assertEqual(self.status_of("egress-3"), "applied")
        self.assertEqual(self.status_of("egress-5"), "pending")

    def test_pressing_a_again_before_the_decision_lands_neither_fails_nor_decides_another(self) -> None:
        self.six()
        gate = Gate()
        told: list[tuple[str, str]] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.press("a", "a", "a")
            gate.open.set()
            await self.until(pilot, lambda: self.status_of("egress-0") == "applied")
            await pilot.pause(0.5)
            told.extend((n.severity, n.message) for n in app._notifications)

        with mock.patch.object(apply, "decide", gate):
            self.drive(script, size=(120, 40))
        self.assertEqual([m for s, m in told if s == "error"], [])
        self.assertIn(("warning", f"{IDS[0]}/egress-0 is already being decided"), told)
        self.assertEqual(self.status_of("egress-1"), "pending")

    def test_the_proposal_being_read_going_is_said_at_once(self) -> None:
        """Finding: a proposal decided by another console while the operator read its detail
        was replaced there by the one below, with no word: the detail they were reading was now
        another proposal's, and only a decision key said so."""
        self.six()
        told: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            for _ in range(3):
                await pilot.press("down")
            await pilot.press("enter")
            with Store(self.db) as st:
                apply.decide(st, "egress-3", "rejected", reason="not now", operator="bob",
                             context=apply.Context(layout=self.layout, link_for=self.link_for))
            synced = app.syncs
            await pilot.press("g")
            await self.until(pilot, lambda: app.syncs > synced)
            told.extend(n.message for n in app._notifications)

        self.drive(script, size=(80, 24))
        self.assertIn(f"{IDS[0]}/egress-3, which you had selected, is gone: rejected by bob (not now); "
                      "the cursor is on another now", told)

    def test_a_decision_that_fails_names_its_proposal(self) -> None:
        """Finding: a decision beaten by another console's said only "cannot move the proposal
        from rejected to approved: ... which is final": with several decisions out, not which."""
        self.six()
        told: list[tuple[str, str, str]] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            with Store(self.db) as st:
                apply.decide(st, "egress-0", "rejected", reason="not now", operator="bob",
                             context=apply.Context(layout=self.layout, link_for=self.link_for))
            await pilot.press("a")
            await self.until(pilot, lambda: not app.unfinished())
            await pilot.pause(0.2)
            told.extend((n.severity, n.title, n.message) for n in app._notifications)
            told.append(("status", "", status(app)))

        self.drive(script, size=(80, 24))
        [(severity, title, message), (_, _, line)] = told
        self.assertEqual((severity, title), ("error", f"{IDS[0]}/egress-0 not approved"))
        self.assertIn("already rejected", message)
        self.assertTrue(line.endswith(f"({IDS[0]}/egress-0 not approved)"), line)

    def test_a_proposal_that_goes_while_not_selected_is_not_announced(self) -> None:
        self.six()
        told: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            self.sidecars[IDS[4 % 3]].spool.expire("egress-4", "the agent's wait ended")
            synced = app.syncs
            await pilot.press("g")
            await self.until(pilot, lambda: app.syncs > synced)
            told.extend(n.message for n in app._notifications)
            self.assertEqual(app.current_proposal().id, "egress-0")

        self.drive(script, size=(80, 24))
        self.assertEqual(told, [])

    def test_a_warning_repeated_by_rapid_keys_is_shown_once(self) -> None:
        """Finding: ``a`` pressed five times with nothing pending stacked five identical toasts
        down the right half of an 80x24 screen, over the proposals and the events."""

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.press(*"aaaaa")
            await pilot.pause(0.2)
            self.assertEqual([n.message for n in app._notifications], ["no pending proposal selected"])

        self.drive(script, size=(80, 24))


TWENTY = [BottleInfo(f"busy{n:02d}ab", "coder", f"svc-{n}", "magenta", "docker", "2026-11-22T05:00:00+00:00")
          for n in range(20)]


class BusyOperator(Busy):
    """Twenty bottles, fifty proposals, keys pressed as fast as the pilot can while syncs run
    every half second, another operator decides, agents stop waiting and bottles stop: every
    decision made here is on the proposal the cursor showed when its key was pressed, and the
    screen keeps up (no exception, the detail of what is under the cursor)."""

    KEYS = ["a", "a", "a", "r", "m", "j", "k", "g", "tab", "enter", "escape", "down", "up"]

    def setUp(self) -> None:
        super().setUp()
        for b in TWENTY:
            state = StateDir(self.layout.state_dir, b.id)
            state.create()
            state.write(Metadata(id=b.id, agent=b.agent, bottle="dev", backend=b.backend))
            self.sidecars[b.id] = LocalSidecar(self.tmp / b.id, container_id=f"c-{b.id}")
        self.live = list(TWENTY)
        self.edited_text = "host: changed.example\nports: [443]\n"

    def meddle(self, rnd: random.Random) -> None:
        """What happens underneath: another console decides, a wait ends, a bottle stops."""
        roll = rnd.random()
        if roll < 0.1:
            with Store(self.db) as st:
                rows = st.pending()
                if rows:
                    row = rnd.choice(rows)
                    try:
                        apply.decide(st, row.key, "rejected", reason="not now", operator="bob",
                                     context=apply.Context(layout=self.layout, link_for=self.link_for))
                    except Exception:  # noqa: BLE001 - decided here meanwhile: that one stands
                        pass
        elif roll < 0.15:
            i = rnd.randrange(50)
            self.sidecars[TWENTY[i % 20].id].spool.expire(f"p{i}", "the agent's wait ended")
        elif roll < 0.18 and len(self.live) > 5:
            self.live.remove(rnd.choice(self.live))

    def test_rapid_keys_over_a_changing_list(self) -> None:
        for i in range(50):
            self.propose(TWENTY[i % 20].id, "egress", {"host": f"h{i}.example", "ports": [443]}, f"p{i}",
                         created_at=NOW - 200 + i)
        app = self.make_app(sync_fn=lambda st: sync(st, bottles=list(self.live), link_for=self.link_for),
                            interval=0.5)
        pressed: list[tuple[str, str | None]] = []
        rnd = random.Random(7)

        async def script(app: SuperviseApp, pilot: Any) -> None:
            for _ in range(80):
                self.meddle(rnd)
                key = rnd.choice(self.KEYS)
                shown = app.current_proposal()
                await pilot.press(key)
                if key == "r" and type(app.screen).__name__ == "ReasonScreen":
                    await pilot.press(*"no", "enter")
                pressed.append((key, shown.id if shown else None))
                if rnd.random() < 0.3:
                    await pilot.pause(rnd.random() * 0.2)
            synced = app.syncs
            await self.until(pilot, lambda: not app.unfinished())
            await pilot.press("g")
            await self.until(pilot, lambda: app.syncs > synced + 1)
            await pilot.pause(0.3)
            row = app.current_proposal()
            first = str(app.query_one("#detail", Static).render()).split("  ", 1)[0]
            self.assertEqual(first.split(" ")[0], f"{row.bottle_id}/{row.id}" if row else "")

        self.drive(script, size=(80, 24), app=app)
        key_of = {"approved": "a", "rejected": "r", "modified": "m"}
        with Store(self.db) as st:
            mine = [row for row in st.proposals() if row.operator == "ann"]
        self.assertTrue(mine, "some decisions were made")
        for row in mine:
            self.assertIn((key_of[row.verdict], row.id), pressed, f"{row.id} {row.verdict} with no such key on it")


if __name__ == "__main__":
    unittest.main()
