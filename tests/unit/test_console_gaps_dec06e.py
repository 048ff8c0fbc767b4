"""The console once more, as an operator with bottles down and another console beside theirs:
the bottles pane marks each bottle the last sync could not read, Enter on a bottle goes to its
first pending proposal, a decision beaten by another operator says so in a plain sentence, and
``bot-bottle supervise --help`` names every key the console has."""

from __future__ import annotations

import re
import time
import unittest
from typing import Any

from rich.cells import cell_len
from textual.widgets import DataTable

from bot_bottle.cli import build_parser
from bot_bottle.supervise import apply
from bot_bottle.supervise import console as console_mod
from bot_bottle.supervise.console import HELP_KEYS, SuperviseApp
from bot_bottle.supervise.proposals import InvalidTransition
from bot_bottle.supervise.store import StaleProposal, Store
from bot_bottle.supervise.sync import BottleInfo, SyncReport, sync
from tests.unit.test_console_gaps_dec06c import IDS, MANY, Busy
from tests.unit.test_console_gaps_dec06d import DownLink, status
from tests.unit.test_supervise_console import NOW, cell_texts
from tests.unit.test_supervise_console_screen import screen_text


def bottle_line(app: SuperviseApp, bottle_id: str) -> str:
    """The screen line of ``bottle_id``'s row in the bottles pane."""
    top = app.query_one("#bottles").region
    lines = screen_text(app).splitlines()[top.y:top.bottom]
    return next(line for line in lines if bottle_id in line)


class UnreadBottlesMarked(Busy):
    """Finding: which bottles the last sync could not read was on the status line and in the
    help only; in the bottles pane they looked like the others, their pending counts and events
    out of date with no word of it."""

    DOWN = IDS[1:3]

    def link_for(self, bottle_id: str) -> Any:
        return DownLink(bottle_id) if bottle_id in self.DOWN else super().link_for(bottle_id)

    def test_at_80x24_each_bottle_not_read_is_marked_in_its_row(self) -> None:
        seen: dict[str, str] = {}

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            for bottle in IDS[:4]:
                seen[bottle] = bottle_line(app, bottle)
            seen["title"] = next(line for line in screen_text(app).splitlines() if "Running bottles" in line)

        self.drive(script, size=(80, 24))
        for bottle in self.DOWN:
            self.assertIn("not read", seen[bottle])
            self.assertLessEqual(cell_len(seen[bottle].rstrip()), 80)
        for bottle in (IDS[0], IDS[3]):
            self.assertNotIn("not read", seen[bottle], "a bottle read fine is not marked")
            self.assertNotIn("slow", seen[bottle])
        self.assertIn("2 not read in the last sync", seen["title"])

    def test_the_mark_goes_once_a_sync_reads_the_bottle_again(self) -> None:
        cells: list[list[list[str]]] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            cells.append(cell_texts(app.query_one("#bottles", DataTable)))
            self.DOWN = ()
            synced = app.syncs
            await pilot.press("g")
            await self.until(pilot, lambda: app.syncs > synced)
            cells.append(cell_texts(app.query_one("#bottles", DataTable)))

        self.drive(script, size=(80, 24))
        before, after = cells
        self.assertEqual([row[-1] for row in before[:4]], ["", "not read", "not read", ""])
        self.assertEqual({row[-1] for row in after}, {""})

    def test_a_slow_sidecar_is_marked_slow(self) -> None:
        message = f"bottle {IDS[1]}: its sidecar did not answer within 4 s (slow); caught up later"
        report = SyncReport(bottles=MANY, errors=[message], slow=[IDS[1]], unread={IDS[1]: [message]})
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            seen.append(bottle_line(app, IDS[1]))
            seen.append(bottle_line(app, IDS[2]))

        self.drive(script, size=(80, 24), app=self.make_app(sync_fn=lambda st: report))
        self.assertRegex(seen[0], r"\bslow\b")
        self.assertNotIn("not read", seen[0])
        self.assertNotIn("slow", seen[1])

    def test_a_long_label_gives_way_to_the_mark_at_80_columns(self) -> None:
        long = [BottleInfo(b.id, agent="an-agent-with-a-long-name-too", color=b.color, backend=b.backend,
                           label="a-very-long-manifest-name-for-the-frontend-service-of-the-shop",
                           started_at=b.started_at) for b in MANY]
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            seen.append(bottle_line(app, IDS[1]))

        self.drive(script, size=(80, 24), app=self.make_app(bottles=long))
        self.assertIn("not read", seen[0])
        self.assertIn("…", seen[0], "the label is cut, in its middle")

    def test_a_report_without_unread_bottles_marks_none(self) -> None:
        # Errors that are about no one bottle (the engine's list) mark no row.
        self.assertEqual(console_mod.sync_marks(SyncReport(bottles=MANY, errors=["docker ps failed"])), {})
        self.assertEqual(console_mod.sync_marks(None), {})


class EnterOnABottle(Busy):
    """Finding: Enter in the bottles pane did nothing: from a bottle the operator could not get
    to what it asks for but by searching the proposals for its name."""

    def setUp(self) -> None:
        super().setUp()
        self.propose(IDS[0], "egress", {"host": "a.example"}, "egress-a", created_at=NOW - 300)
        self.propose(IDS[2], "egress", {"host": "c-new.example"}, "egress-c2", created_at=NOW - 100)
        self.propose(IDS[2], "egress", {"host": "c-old.example"}, "egress-c1", created_at=NOW - 200)

    async def on_bottle(self, app: SuperviseApp, pilot: Any, bottle: str) -> None:
        table = app.query_one("#bottles", DataTable)
        table.focus()
        table.move_cursor(row=table.get_row_index(bottle))
        await pilot.pause(0.1)
        await pilot.press("enter")
        await pilot.pause(0.2)

    def test_enter_goes_to_the_bottles_oldest_pending_proposal(self) -> None:
        seen: list[Any] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            await self.on_bottle(app, pilot, IDS[2])
            seen.append(app.current_proposal().id)
            seen.append(app.focused is app.query_one("#proposals"))
            seen.append(app.selected_bottle)

        self.drive(script, size=(80, 24))
        self.assertEqual(seen, ["egress-c1", True, IDS[2]])

    def test_a_decision_key_after_enter_decides_that_proposal(self) -> None:
        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            await self.on_bottle(app, pilot, IDS[2])
            await pilot.press("a")
            await self.until(pilot, lambda: not app.unfinished() and self.status_of("egress-c1") != "pending")

        self.drive(script, size=(80, 24))
        self.assertEqual(self.status_of("egress-c1"), "applied")
        self.assertEqual(self.status_of("egress-a"), "pending")

    def test_a_bottle_with_nothing_pending_says_so_and_stays(self) -> None:
        seen: list[Any] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            before = app.current_proposal().id
            await self.on_bottle(app, pilot, IDS[5])
            seen.append([n.message for n in app._notifications])
            seen.append(app.focused is app.query_one("#bottles"))
            seen.append(app.current_proposal().id == before)

        self.drive(script, size=(80, 24))
        self.assertEqual(seen, [[f"bottle {IDS[5]} has no pending proposal"], True, True])

    def test_enter_on_a_proposal_still_opens_its_detail(self) -> None:
        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            await pilot.press("enter")
            await self.until(pilot, lambda: app.focused is app.query_one("#detail-pane"))

        self.drive(script, size=(80, 24))


def hh_mm(when: float) -> str:
    return time.strftime("%H:%M", time.localtime(when))


class PlainWording(Busy):
    """Finding: a proposal another console decided first was refused with "cannot move the
    proposal from rejected to approved: the proposal is already rejected, which is final"."""

    def setUp(self) -> None:
        super().setUp()
        self.propose(IDS[0], "egress", {"host": "a.example"}, "egress-a")
        self.ctx = apply.Context(layout=self.layout, link_for=self.link_for, clock=lambda: NOW)
        with Store(self.db) as st:
            sync(st, bottles=MANY, link_for=self.link_for)

    def test_a_proposal_rejected_by_another_operator_says_who_and_when(self) -> None:
        with Store(self.db) as st:
            apply.decide(st, "egress-a", "rejected", reason="no", operator="bob", context=self.ctx)
            with self.assertRaises(InvalidTransition) as caught:
                apply.decide(st, "egress-a", "approved", operator="ann", context=self.ctx)
            refused = st.audit_rows()[-1]
        expected = f"{IDS[0]}/egress-a was already rejected by bob at {hh_mm(NOW)}; it cannot be approved now"
        self.assertEqual(str(caught.exception), expected)
        self.assertEqual((refused.outcome, refused.reason), ("refused", expected))

    def test_an_expired_proposal_names_no_operator(self) -> None:
        with Store(self.db) as st:
            apply.decide(st, "egress-a", "expired", operator="bot-bottle", context=self.ctx)
            with self.assertRaises(InvalidTransition) as caught:
                apply.decide(st, "egress-a", "rejected", reason="no", operator="ann", context=self.ctx)
        self.assertEqual(str(caught.exception),
                         f"{IDS[0]}/egress-a had already expired at {hh_mm(NOW)}; it cannot be rejected now")

    def test_a_verdict_that_does_not_fit_a_pending_proposal_keeps_its_reason(self) -> None:
        with Store(self.db) as st, self.assertRaises(Exception) as caught:
            apply.decide(st, "egress-a", "rejected", reason="", operator="ann", context=self.ctx)
        self.assertIn("a rejection needs a reason", str(caught.exception))

    def test_a_race_lost_between_reading_and_saving_says_who_won(self) -> None:
        with Store(self.db) as st:
            stale = st.find("egress-a")
            apply.decide(st, "egress-a", "rejected", reason="no", operator="bob", context=self.ctx)
            real_get = st.get
            st.find = lambda *a, **k: stale  # type: ignore[method-assign]
            with self.assertRaises(StaleProposal) as caught:
                apply.decide(st, "egress-a", "approved", operator="ann", context=self.ctx)
            self.assertEqual(real_get(stale.key).status, "rejected")
        self.assertEqual(str(caught.exception),
                         f"{IDS[0]}/egress-a was already rejected by bob at {hh_mm(NOW)}; it cannot be approved now")

    def test_the_stores_own_message_names_the_proposal(self) -> None:
        with Store(self.db) as st:
            row = st.find("egress-a")
            st.update_proposal(row.key, expect="pending", status="rejected", reason="no", operator="bob")
            with self.assertRaises(StaleProposal) as caught:
                st.update_proposal(row.key, expect="pending", status="approved")
        self.assertEqual(str(caught.exception), f"{IDS[0]}/egress-a became rejected while this change was being "
                                                "made (it was pending); nothing was changed")

    def test_the_console_shows_the_plain_sentence(self) -> None:
        told: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            with Store(self.db) as st:
                apply.decide(st, "egress-a", "rejected", reason="not now", operator="bob", context=self.ctx)
            await pilot.press("a")
            await self.until(pilot, lambda: not app.unfinished())
            await pilot.pause(0.2)
            told.extend(n.message for n in app._notifications)
            told.append(status(app))

        self.drive(script, size=(200, 40))
        sentence = f"{IDS[0]}/egress-a was already rejected by bob at {hh_mm(NOW)}; it cannot be approved now"
        self.assertEqual(told[0], sentence)
        self.assertIn(sentence, told[1])
        self.assertNotIn("final", " ".join(told))


class HelpTellsTheTruth(unittest.TestCase):
    """Finding: ``supervise --help`` named neither ``?`` nor j/k, and said ``s`` stops only the
    bottle highlighted in the bottles pane (it stops the selected proposal's too)."""

    def help_text(self) -> str:
        parser = build_parser()
        sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        return " ".join(sub.choices["supervise"].format_help().split())

    def test_the_help_names_every_key_of_the_console(self) -> None:
        text = self.help_text()
        for phrase in ("? every key", "j/k", "shift+tab", "enter on a bottle go to its first pending proposal",
                       "or else the selected proposal's", "slow or not read"):
            self.assertIn(phrase, text)
        keys = {key for keys, _ in HELP_KEYS for key in keys.replace(",", " ").split()}
        for key in keys - {"ctrl+p", "up", "down"}:
            self.assertRegex(text, r"(^|[\s/])" + re.escape(key) + r"([\s/]|$)", key)


if __name__ == "__main__":
    unittest.main()
