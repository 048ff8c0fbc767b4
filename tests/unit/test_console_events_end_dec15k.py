"""The events pane keeps the newest event in sight whatever its height does after it was written.

Finding: on a loaded machine the 10,000-events console showed the events pane scrolled three
lines short of its end, for good. The log scrolled to its end once, after its lines were written,
against the height it had then; the first sync's other panes (the bottles' rows) took their room
a layout later, the pane got shorter, and its newest lines stayed below the edge: nothing wrote
to it again to scroll it. A terminal made smaller did the same."""

from __future__ import annotations

import threading
from typing import Any

from textual.widgets import RichLog

from bot_bottle.supervise.console import SuperviseApp
from bot_bottle.supervise.store import Store
from bot_bottle.supervise.sync import sync
from tests.unit.test_console_gaps_dec06c import IDS, MANY, Busy
from tests.unit.test_console_gaps_dec09g import event
from tests.unit.test_supervise_console_screen import screen_text

NEWEST = "h9999.example"
OLDEST_SHOWN = "h9800.example"
# A hang guard, not a measure: a loaded machine lays the screen out late.
DEADLINE_S = 60.0


class NewestInSight(Busy):
    def setUp(self) -> None:
        super().setUp()
        with Store(self.db) as st:
            st.import_events(IDS[0], "c-old", [(n, event(n)) for n in range(10_000)], next_offset=10_000)

    async def shrunk(self, app: SuperviseApp, pilot: Any, size: tuple[int, int]) -> None:
        """Resize the terminal and wait until the events pane has its new height and the screen settled."""
        log = app.query_one("#events", RichLog)
        before = log.size.height
        await pilot.resize_terminal(*size)
        await self.until(pilot, lambda: 0 < log.size.height < before, timeout=DEADLINE_S)
        await self.settled(app, pilot)

    async def at_the_end(self, app: SuperviseApp, pilot: Any) -> None:
        await self.settled(app, pilot)
        await self.until(pilot, lambda: NEWEST in screen_text(app), timeout=DEADLINE_S)

    def test_a_pane_made_shorter_still_shows_the_newest(self) -> None:
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.at_the_end(app, pilot)
            await self.shrunk(app, pilot, (120, 30))
            seen.append(screen_text(app))

        self.drive(script, size=(120, 40))
        [text] = seen
        self.assertIn(NEWEST, text, "the newest is in sight")

    def test_a_sync_that_lands_after_the_first_layout_shows_the_newest(self) -> None:
        # The first sync held until the events pane has its first size, the screen's first
        # layouts still going on: as on a loaded machine, whose sync thread finishes late.
        release = threading.Event()
        self.addCleanup(release.set)

        def late(st: Any) -> Any:
            release.wait(DEADLINE_S)
            return sync(st, bottles=MANY, link_for=self.link_for)

        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            log = app.query_one("#events", RichLog)
            await self.until(pilot, lambda: log.size.height > 0, timeout=DEADLINE_S)
            release.set()
            await self.until(pilot, lambda: app.syncs >= 1, timeout=DEADLINE_S)
            await self.until(pilot, lambda: len(log.lines) > 0, timeout=DEADLINE_S)
            await self.settled(app, pilot)
            seen.append(screen_text(app))

        self.drive(script, size=(120, 40), app=self.make_app(sync_fn=late), first_sync=False)
        [text] = seen
        self.assertIn(NEWEST, text, "the newest is in sight")

    def test_a_log_scrolled_back_by_the_operator_stays_where_they_put_it(self) -> None:
        # The look-alike: the pane keeps to its end only while the operator has not scrolled away.
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.at_the_end(app, pilot)
            app.query_one("#events", RichLog).scroll_home(animate=False)
            await self.until(pilot, lambda: OLDEST_SHOWN in screen_text(app), timeout=DEADLINE_S)
            await self.shrunk(app, pilot, (120, 30))
            seen.append(screen_text(app))

        self.drive(script, size=(120, 40))
        [text] = seen
        self.assertIn(OLDEST_SHOWN, text)
        self.assertNotIn(NEWEST, text)
