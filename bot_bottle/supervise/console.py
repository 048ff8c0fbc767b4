"""``bot-bottle supervise``: the operator's console, a Textual app over the supervise store.

Three panes: running bottles (label, colour, agent, backend, uptime, pending count, and ``slow``
or ``not read`` for those the last sync could not read, whose count is then that of their last
read, marked ``3?``, the title and status line saying as of when), the pending proposals of every bottle,
and the egress/DLP events of the selected bottle, with what its terminal filter held back of the
agent's output (a clipboard write, a tmux passthrough). Between the last two, the selected
proposal's whole detail: warnings first, what approving it grants, how long the agent still
waits, what it asks for, the git-gate's findings, then what the agent wrote. It scrolls (Enter
on a proposal moves there, Escape back; Enter on a bottle goes to its first pending proposal).
Keyboard only: ``a`` approve, ``A`` approve and also save the route to the bottle's manifest
(asks first, naming the file), ``m`` modify (the proposal opens in ``$EDITOR``), ``r`` reject
(asks for a reason), ``s`` stop the bottle highlighted in the bottles pane (or the selected
proposal's), ``g`` sync now, ``tab`` moves between panes, ``j``/``k`` move like the arrow keys,
``?`` lists every key (and the last sync's problems in full), ``q`` quits.

Syncing (``docker exec`` into every sidecar) and deciding (which may rebuild an image) run in
threads of their own, each with its own database connection, so the screen never freezes: one
sync at a time (a tick that finds one running is skipped), and decisions in a pool of their own,
so a key press never waits behind a slow sidecar.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import shlex
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.coordinate import Coordinate
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Header, Input, Label, RichLog, Static

from bot_bottle.errors import BotBottleError
from bot_bottle.supervise import apply, view
from bot_bottle.supervise import sync as sync_mod
from bot_bottle.supervise.store import DamagedRow, ProposalRow, Store
from bot_bottle.supervise.sync import BottleInfo, SyncReport

EVENTS_SHOWN = 200
BOTTLE_COLUMNS = ("id", "label", "agent", "backend", "uptime", "pending", "sync")
BOTTLE_LABEL_MIN_WIDTH = 8
BOTTLE_AGENT_WIDTH = 16  # an agent's name is short; a longer one must not push the sync mark off
PROPOSAL_COLUMNS = ("#", "bottle", "kind", "expires", "age", "request", "justification")
REQUEST_MIN_WIDTH = 20  # what ``fit_columns`` leaves the request at least, a long bottle name cut first
BOTTLE_MIN_WIDTH = 12
JUSTIFICATION_WIDTH = 60
MIN_INTERVAL_S = 0.5  # syncing more often than this only loads the engine
SLOW_AFTER_S = 1.0  # a sidecar still not answering after this is named on the status line
DECISION_THREADS = 4

EditFn = Callable[[str], "str | None"]
_F = TypeVar("_F", bound=Callable[..., Any])


def _while_shown(method: _F) -> _F:
    """For what runs on messages and timers: once the console is closing its panes are gone, and
    a late sync, decision or highlight has nothing left to show (not an error)."""

    @functools.wraps(method)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except NoMatches:
            return None

    return run  # type: ignore[return-value]


class ReasonScreen(ModalScreen["str | None"]):
    """Asks why a proposal is rejected; Enter submits, Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            # Text, not a markup string: ``what`` holds what the agent asked for, verbatim.
            yield Label(Text(f"Reject {view.printable(self.what)}\n"
                             "Why? The agent is told this reason. (Enter: reject, Esc: cancel)"))
            yield Input(placeholder="reason", id="reason")

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(event.value.strip())
        else:
            self.notify("a rejection needs a reason", severity="warning", markup=False)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question: ``y`` confirms, ``n`` or Escape declines."""

    BINDINGS = [Binding("y", "yes", "Yes"), Binding("n", "no", "No"), Binding("escape", "no", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(Text(f"{view.printable(self.question)}  [y/n]"))

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)


# Every key of the console, for the help screen (``?``): the footer has room for the deciding
# keys only, and moving between panes, opening a proposal and going back must be found too.
HELP_KEYS: tuple[tuple[str, str], ...] = (
    ("tab, shift+tab", "next / previous pane: proposals, detail, events, bottles"),
    ("up, down, j, k", "move in a list; scroll the detail"),
    ("enter", "read the selected proposal's whole detail (it scrolls)"),
    ("enter", "on a bottle: go to its first pending proposal"),
    ("escape", "back from the detail to the proposals; cancel a question"),
    ("a", "approve the selected proposal"),
    ("A", "approve an egress route and save it to the manifest (asks)"),
    ("m", "modify the proposal in $EDITOR, then approve it as changed"),
    ("r", "reject the proposal (asks the reason the agent is told)"),
    ("s", "stop the bottle highlighted, or the proposal's (asks)"),
    ("g", "sync now"),
    ("?", "this help (escape closes it)"),
    ("ctrl+p", "command palette"),
    ("q", "quit (decisions being applied finish first)"),
)
HELP_KEY_WIDTH = 16


class HelpScreen(ModalScreen[None]):
    """Every key, and the last sync's problems in full (the status line counts them)."""

    BINDINGS = [Binding("escape", "close", "Close"), Binding("question_mark", "close", "Close")]

    def __init__(self, problems: list[str]) -> None:
        super().__init__()
        self.problems = problems

    def compose(self) -> ComposeResult:
        text = Text("Keys (escape closes this)", style="bold")
        for key, what in HELP_KEYS:
            text.append(f"\n  {key:<{HELP_KEY_WIDTH}}", style="bold")
            text.append(what)
        if self.problems:
            text.append(f"\n\nThe last sync's problems ({len(self.problems)})", style="bold red")
            for problem in self.problems:
                text.append(f"\n  {view.one_line(problem)}")
        with VerticalScroll(id="help"):
            yield Static(text, markup=False)

    def action_close(self) -> None:
        self.dismiss(None)


class ListTable(DataTable):
    """A table that ``j`` and ``k`` move through too."""

    BINDINGS = [Binding("j", "cursor_down", show=False), Binding("k", "cursor_up", show=False)]


class ProposalTable(ListTable):
    """The proposals table, telling the console when the operator moved its cursor.

    The console rebuilds the table on every sync and puts the cursor back itself (``quiet``);
    any other move (a key, a click) is the operator's, which is what the "selection gone" guard
    needs to know.
    """

    quiet = False

    def watch_cursor_coordinate(self, old_coordinate: Coordinate, new_coordinate: Coordinate) -> None:
        super().watch_cursor_coordinate(old_coordinate, new_coordinate)
        if not self.quiet and old_coordinate.row != new_coordinate.row and isinstance(self.app, SuperviseApp):
            self.app.operator_moved()


class DetailPane(VerticalScroll):
    """The selected proposal's whole detail; scrolls with the arrow keys, Escape goes back."""

    BINDINGS = [Binding("escape", "back", "Back to proposals", show=False),
                Binding("j", "scroll_down", show=False), Binding("k", "scroll_up", show=False)]

    def action_back(self) -> None:
        self.app.query_one("#proposals", DataTable).focus()

    def on_focus(self) -> None:
        # A push's findings, a long path list: what the operator approves gets the screen's lines.
        self.screen.add_class("reading")

    def on_blur(self) -> None:
        self.screen.remove_class("reading")


class SuperviseApp(App[None]):
    TITLE = "bot-bottle supervise"
    CSS = """
    .pane-title { height: 1; background: $panel; color: $text; text-style: bold; padding: 0 1; }
    /* At 80x24 the six one-line bars, these two and the detail's and events' least heights add
       up to the screen: more, and the screen scrolls, the status line and events below its edge. */
    #bottles { height: auto; max-height: 24%; }
    /* Rows only, never sideways: a horizontal scrollbar would take a line from the detail. */
    #proposals { height: auto; max-height: 28%; min-height: 2; overflow-x: hidden; }
    /* Damaged rows, named under the proposals (never among them: they cannot be decided). Two
       lines at most: at 80x24 more would make the screen scroll (see above). */
    #damaged { height: auto; max-height: 2; padding: 0 1; color: $error; display: none; }
    #detail-pane { height: 2fr; min-height: 4; }
    #detail-pane:focus { background: $boost; }
    #detail { height: auto; padding: 0 1; color: $text-muted; }
    #agent-says { height: auto; margin: 0 0 0 2; padding: 0 1; border-left: outer $warning; }
    #events { height: 1fr; min-height: 3; }
    /* While the operator reads a proposal's detail, the events give it their lines (the newest stays). */
    Screen.reading #events { height: 1; min-height: 1; }
    #status { height: 1; padding: 0 1; background: $boost; }
    ReasonScreen, ConfirmScreen, HelpScreen { align: center middle; }
    /* At 80 columns each key's line is one line: the border and padding take 4 columns. */
    #help { width: 100%; max-width: 100; height: auto; max-height: 100%; border: thick $accent;
            background: $surface; padding: 0 1; }
    #dialog { width: 80%; max-width: 100; height: auto; border: thick $accent; background: $surface; padding: 1 2; }
    #dialog Label { width: 100%; }
    """
    BINDINGS = [
        # Short descriptions: at 80 columns the footer must show every key, the last (quit) too.
        Binding("a", "approve", "Approve"),
        Binding("A", "approve_save", "+manifest"),
        Binding("m", "modify", "Modify"),
        Binding("r", "reject", "Reject"),
        Binding("s", "stop", "Stop"),
        Binding("g", "sync", "Sync"),
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(
        self,
        *,
        open_store: Callable[[], Store],
        sync_fn: Callable[[Store], SyncReport],
        context: apply.Context,
        stop_fn: Callable[[str], None],
        operator: str,
        edit_fn: EditFn | None = None,
        interval: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        if not math.isfinite(interval) or interval < 0 or 0 < interval < MIN_INTERVAL_S:
            raise ValueError(f"interval must be 0 (no automatic sync) or at least {MIN_INTERVAL_S} s, not {interval}")
        self.open_store = open_store
        self.sync_fn = sync_fn
        self.context = context
        self.stop_fn = stop_fn
        self.operator = operator
        self.edit_fn = edit_fn or self._edit_in_editor
        self.interval = interval
        self.clock = clock
        self.store = open_store()  # the UI thread's own connection; workers open theirs
        self.bottles: list[BottleInfo] = []
        self.pending: list[ProposalRow] = []
        # The selected proposal went (decided elsewhere, or its wait ended): whatever the cursor is
        # on now (another proposal, or one that came after the list emptied), the operator has not
        # chosen it, so the next decision key only says so. Not set for a proposal this console
        # decided itself when the cursor moves on to the row that was below it (the operator knows
        # where that one went, and saw what came next), and cleared when the operator moves the
        # cursor (they chose what is under it now).
        self._selection_lost = False
        self._decided_here: set[int] = set()
        # The row below each proposal decided here when its key was pressed: only that one is the
        # "next" the operator saw. A sync that took it away before the decision landed leaves
        # the cursor on a row they never saw below, which the next key must not decide.
        self._next_after: dict[int, str | None] = {}
        self._deciding: set[int] = set()  # decisions still being applied, by proposal key
        self._told: dict[str, float] = {}  # notifications shown, until when: a repeat is not stacked
        self.selected_bottle: str | None = None
        self.last_sync: SyncReport | None = None
        self._sync_failed = False  # the last sync read no bottle at all (it raised)
        # When each bottle's sidecar was last read whole: a bottle the last sync could not read
        # shows the pending count of that read, marked as such.
        self._read_at: dict[str, float] = {}
        self._started_at = clock()
        self.syncs = 0  # completed syncs, for tests and the status line
        # The events in the log now, as (bottle, [(source, offset, imported_at), ...]): a refresh
        # writes only those after them, rather than the whole log again.
        self._events_shown: tuple[str, list[tuple[str, int, float]]] | None = None
        self._damaged = 0  # pending proposals the last refresh could not read (left out)
        self.damaged_rows: list[DamagedRow] = []  # those, as the store names them
        self._events_damaged: list[DamagedRow] = []  # events of the shown bottle left out as damaged
        # What the log was last read for: (bottle, ``Store.events_version``, events shown, events
        # kept, terminal sequences held). A refresh that finds the same version reads nothing.
        self._events_read: tuple[str, tuple[int, int, float | None, float | None], int, int, int] | None = None
        self._detail_key: int | None = None
        self._columns_added = False  # mounted: the tables have their columns
        # One sync at a time, in a thread of its own; decisions and stops in their own pool, so
        # a slow sidecar never makes a key press wait.
        self._sync_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="supervise-sync")
        self._action_pool = ThreadPoolExecutor(max_workers=DECISION_THREADS, thread_name_prefix="supervise-decide")
        self._syncing_since: float | None = None
        self._sync_again = False
        self._decisions: list[tuple[str, Future[tuple[ProposalRow | None, str | None]]]] = []

    # -- layout --------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header(show_clock=True)
        # markup=False on every Static: what they show (labels, ids, errors) is never read as markup.
        yield Static("Running bottles", classes="pane-title", id="bottles-title", markup=False)
        yield ListTable(id="bottles", cursor_type="row", zebra_stripes=True)
        yield Static("Pending proposals", classes="pane-title", id="proposals-title", markup=False)
        yield ProposalTable(id="proposals", cursor_type="row", zebra_stripes=True)
        yield Static("", id="damaged", markup=False)
        with DetailPane(id="detail-pane"):
            yield Static("", id="detail", markup=False)
            # What the agent wrote, in a pane of its own with a bar down its left side: every line
            # of it, wrapped ones too, is marked as the agent's, so it cannot pass for the gate's.
            yield Static("", id="agent-says", markup=False)
        yield Static("Events", classes="pane-title", id="events-title", markup=False)
        yield RichLog(id="events", wrap=False, markup=False, highlight=False, max_lines=EVENTS_SHOWN)
        yield Static("starting...", id="status", markup=False)
        # The palette's entry gives its room to "? Help", which lists every key (ctrl+p still works).
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        props = self.query_one("#proposals", DataTable)
        # Time left before the long columns: on a narrow terminal the request and the
        # justification are cut, never the clock the operator decides against.
        props.add_columns(*PROPOSAL_COLUMNS)
        props.focus()
        self._columns_added = True
        # Kept at its end through every layout, not only when written: the first sync's other
        # panes take their room a layout after the events were written and scrolled, and the
        # newest stayed below the edge. Scrolling away releases it; scrolling back re-anchors it.
        self.query_one("#events", RichLog).anchor()
        self.refresh_views()
        self.action_sync()
        if self.interval > 0:
            self.set_interval(self.interval, self._tick)
        self.set_interval(0.5, self._watch_sync)

    @_while_shown
    def on_resize(self) -> None:
        if self._columns_added:
            self.refresh_views()  # the request column is fitted to the width

    def on_unmount(self) -> None:
        self.store.close()
        # Running decisions finish (``finish`` waits for them and says so); nothing new starts.
        self._sync_pool.shutdown(wait=False, cancel_futures=True)
        self._action_pool.shutdown(wait=False)

    # -- sync ----------------------------------------------------------------------------------
    def action_sync(self) -> None:
        if self._syncing_since is not None:
            self._sync_again = True  # asked for now: one more right after the running one
            return
        self._syncing_since = time.monotonic()
        self._sync_worker()

    def _tick(self) -> None:
        if self._syncing_since is None:  # a sync still running: this tick is skipped, not queued
            self.action_sync()

    @_while_shown
    def _watch_sync(self) -> None:
        since = self._syncing_since
        if since is None or time.monotonic() - since < SLOW_AFTER_S:
            return
        slow = sync_mod.FETCHES.slow(SLOW_AFTER_S)
        # Bottle ids come from the engine's labels: shown as text of one line, like every other.
        named = ", ".join(view.one_line(bottle) for bottle in slow)
        self.set_status(Text(f"syncing… (bottle{'s' if len(slow) > 1 else ''} {named} slow)" if slow
                             else f"syncing… ({time.monotonic() - since:.0f} s)", style="yellow"))

    @work(group="sync")
    async def _sync_worker(self) -> None:
        try:
            report, failed = await asyncio.get_running_loop().run_in_executor(self._sync_pool, self._run_sync)
        finally:
            self._syncing_since = None
        self._after_sync(report, failed=failed)
        if self._sync_again:
            self._sync_again = False
            self.action_sync()

    def _run_sync(self) -> tuple[SyncReport, bool]:
        """In the sync thread: the report, and whether the sync failed as a whole."""
        try:
            with self.open_store() as st:
                return self.sync_fn(st), False
        except Exception as exc:  # noqa: BLE001 - shown on the status line, the console stays up
            return SyncReport(bottles=self.bottles, errors=[f"sync failed: {sync_failure(exc)}"]), True

    @_while_shown
    def _after_sync(self, report: SyncReport, *, failed: bool = False) -> None:
        self.last_sync = report
        self._sync_failed = failed
        self.bottles = list(report.bottles)
        self.syncs += 1
        if not failed:
            read_at = self.clock()
            self._read_at.update({b.id: read_at for b in self.bottles if b.id not in report.unread})
        self.refresh_views()
        if report.problems:
            self.set_status(Text(problems_line(report, max(20, self.size.width - 2), *self._stale_notes()),
                                 style="red"))
        else:
            self.set_status(Text(f"synced {time.strftime('%H:%M:%S')}: {len(self.bottles)} bottle(s), "
                                 f"{len(self.pending)} pending"))

    # -- views ---------------------------------------------------------------------------------
    def set_status(self, text: str | Text) -> None:
        self.query_one("#status", Static).update(Text(view.one_line(text)) if isinstance(text, str) else text)

    def _title(self, widget_id: str, text: str) -> None:
        # Text, never markup: titles carry labels and ids from manifests and engines.
        self.query_one(widget_id, Static).update(Text(view.one_line(text)))

    def _tell(self, message: str, *, severity: SeverityLevel = "information", timeout: float | None = None,
              title: str = "") -> None:
        """A notification whose text (errors, paths, what an agent wrote) is never markup.

        One still shown is not shown again: a key pressed a few times in a row would stack the
        same toast down the screen, over the proposals and the events."""
        now = time.monotonic()
        if self._told.get(title + message, 0.0) > now:
            return
        shown_for = self.NOTIFICATION_TIMEOUT if timeout is None else timeout
        self._told = {m: until for m, until in self._told.items() if until > now}
        self._told[title + message] = now + shown_for
        self.notify(view.printable(message), title=view.one_line(title), severity=severity, timeout=timeout,
                     markup=False)

    def refresh_views(self) -> None:
        damaged: list[DamagedRow] = []
        try:
            # A damaged row is left out and named; the others are shown and can be decided.
            self.pending = self.store.pending(damaged=damaged)
        except (sqlite3.DatabaseError, DamagedRow) as exc:
            # The file damaged under the console: the lists stay as last read and it says why,
            # rather than the console ending in a traceback with proposals still waiting.
            self._store_unreadable(exc)
        else:
            self._damaged = len(damaged)
            self.damaged_rows = damaged
            if damaged:
                self._store_unreadable(damaged[0])
            self._show_damaged()
        now = self.clock()
        counts: dict[str, int] = {}
        for row in self.pending:
            counts[row.bottle_id] = counts.get(row.bottle_id, 0) + 1
        self._show_bottles(counts, now)

        colors = {b.id: (b.label, b.color) for b in self.bottles}
        # Every bottle the operator can see, so a name shared with one in the bottles pane gets
        # its id too: which bottle asks must read without its colour.
        names = view.bottle_names({**{row.bottle_id: None for row in self.pending},
                                   **{b.id: b.label for b in self.bottles}})
        props = self.query_one("#proposals", ProposalTable)
        keep, after, keep_row = self._cursor_key(props), self._key_below_cursor(props), props.cursor_row
        rows = []  # every cell but the justification's, as the table shows them
        shown = [names[row.bottle_id] for row in self.pending]
        for row in self.pending:
            age = now - row.created_at
            left = None if row.timeout_s is None else row.timeout_s - age
            rows.append([Text(str(row.key)), Text(), view.plain(row.kind),
                         Text(view.duration(left) if left is None or left > 0 else "ended"), Text(view.duration(age))])
        # The request gets what the screen has left after the short columns, so the row (with its
        # "(+N paths)") fits; the justification takes the rest, and the detail has it all.
        fixed = sum(_column_width(h, rows, i) + 2 for i, h in enumerate(PROPOSAL_COLUMNS[:5]) if h != "bottle")
        bottle_width, width = fit_columns(self.size.width - fixed, max((cell_len(n) for n in shown), default=0))
        for row, name, cells in zip(self.pending, shown, rows):
            cells[1] = view.styled(view.cut_middle(name, bottle_width), colors.get(row.bottle_id, (None, None))[1])
            cells.append(view.request_cell(row.kind, row.payload, width))
        props.quiet = True
        try:
            # Columns too, each as wide as it is now: a table's column only ever widens (one a
            # long bottle name or a push-exception once widened would push the request past the
            # screen's edge), and one it sizes itself is sized only when the app is next idle.
            props.clear(columns=True)
            for i, label in enumerate(PROPOSAL_COLUMNS):
                props.add_column(label, width=_column_width(label, rows, i) if i < len(PROPOSAL_COLUMNS) - 1 else None)
            for row, cells in zip(self.pending, rows):
                props.add_row(*cells, view.plain(_clip(row.justification, JUSTIFICATION_WIDTH)), key=str(row.key))
            # The selected row gone, the one below it takes its place, as in any list; whatever
            # a sync added or removed above it, the cursor never lands on another row by index.
            kept = self._restore_cursor(props, keep)
            moved_on = not kept and self._restore_cursor(props, after)
            if keep is not None and not kept and not moved_on and props.row_count:
                props.move_cursor(row=min(keep_row, props.row_count - 1))
        finally:
            props.quiet = False
        if keep is not None and keep not in {str(row.key) for row in self.pending} and not (
                int(keep) in self._decided_here and moved_on and self._next_after.get(int(keep)) == after):
            # Gone, not decided here, or decided here but the row below it went too: what the
            # cursor is on now is not the "next" the operator saw below the one they decided.
            self._selection_lost = True
            if int(keep) not in self._decided_here:
                # Said at once: an operator reading its detail would otherwise see another
                # proposal take its place there with no word of why.
                self._tell(self._gone(int(keep)), severity="warning", timeout=10)
        left_out = f"; {self._damaged} damaged, not shown" if self._damaged else ""
        self._title("#proposals-title",
                    f"Pending proposals ({len(self.pending)}{left_out})  a approve  A +save  m modify  r reject  "
                    "enter detail" if self.pending else f"Pending proposals: none{left_out}")
        if self.selected_bottle is None or self.selected_bottle not in colors:
            current = self.current_proposal()
            self.selected_bottle = current.bottle_id if current else (self.bottles[0].id if self.bottles else None)
        self._show_detail()
        self._show_events()

    def _show_bottles(self, counts: dict[str, int], now: float) -> None:
        """The bottles pane: each bottle's row, with a mark on those the last sync could not read
        (their pending count and events may be out of date)."""
        bottles = self.query_one("#bottles", DataTable)
        keep = self._cursor_key(bottles)
        marks = self._marks()
        rows = []
        for b in self.bottles:
            # A bottle whose sidecar stopped has an agent with no way out: say so where uptime goes.
            uptime = Text("offline", style="bold red") if b.offline else Text(view.duration(b.uptime(now)))
            agent = view.cut(view.one_line(b.agent), BOTTLE_AGENT_WIDTH)
            rows.append([view.styled(view.one_line(b.id), b.color), view.styled(view.one_line(b.label or "-"), b.color),
                         view.plain(agent), view.plain(b.backend), uptime,
                         pending_cell(counts.get(b.id, 0), marks.get(b.id)), marks.get(b.id, Text())])
        # The label gives way (cut in its middle, its start and end kept) so the sync mark, last, stays on
        # the screen: a horizontal scroll would hide it.
        others = sum(_column_width(h, rows, i) + 2 for i, h in enumerate(BOTTLE_COLUMNS) if h != "label")
        label_width = max(BOTTLE_LABEL_MIN_WIDTH, self.size.width - 4 - others)  # a scrollbar's 2 too
        bottles.clear(columns=True)
        for i, label in enumerate(BOTTLE_COLUMNS):
            bottles.add_column(label, width=_column_width(label, rows, i) if label != "label" else
                               min(label_width, _column_width(label, rows, i)))
        for b, cells in zip(self.bottles, rows):
            cells[1] = view.styled(view.cut_middle(cells[1].plain, label_width), b.color)
            bottles.add_row(*cells, key=b.id)
        self._restore_cursor(bottles, keep)
        unread = sum(1 for b in self.bottles if b.id in marks)
        self._title("#bottles-title", (f"Running bottles ({len(self.bottles)}"
                                       + (f"; {unread} not read in the last sync, pending "
                                          f"{self._stale_as_of()}" if unread else "") + ")")
                    if self.bottles else "Running bottles: none")

    def _marks(self) -> dict[str, Text]:
        """The sync mark of each bottle the last sync could not read: every bottle when the
        sync failed as a whole."""
        if self._sync_failed:
            return {b.id: Text("not read", style="bold red") for b in self.bottles}
        return sync_marks(self.last_sync)

    def _stale_as_of(self) -> str:
        """Since when the pending counts marked ``?`` are known: the oldest last read of the
        bottles not read now (``N? as of 23:01``), or ``from before`` the console's start for one it
        never read (its count is what an earlier session imported)."""
        stale = [b.id for b in self.bottles if b.id in self._marks()]
        if any(bottle not in self._read_at for bottle in stale):
            return f"N? from before {_hh_mm(self._started_at)}"
        return f"N? as of {_hh_mm(min((self._read_at[b] for b in stale), default=self._started_at))}"

    def _stale_notes(self) -> tuple[str, str]:
        """The status line's word on the pending counts the last sync could not bring up to
        date, whole and short (``; N? as of 23:01``, for when the whole one would cost a bottle
        its name); both "" when no count in the bottles pane is marked ``?``."""
        marks = self._marks()
        if not any(b.id in marks for b in self.bottles):
            return "", ""
        as_of = self._stale_as_of()
        return f"; pending {as_of}", "; " + as_of.replace(" from before ", " before ")

    def _show_damaged(self) -> None:
        """Under the proposals: the first damaged pending row, how to drop it, what is wrong with
        it and in which file (most needed first: the line may be cut at 80 columns; the
        notification and the help have it whole). Damaged rows are never rows of the table, so
        no key can decide one."""
        pane = self.query_one("#damaged", Static)
        pane.display = bool(self.damaged_rows)
        if not self.damaged_rows:
            pane.update("")
            return
        first = self.damaged_rows[0]
        drop = f" (drop it: {drop_command(first.key)})" if first.key is not None else ""
        more = len(self.damaged_rows) - 1
        pane.update(Text(view.one_line(f"Damaged, cannot be decided{drop}: {first}"
                                       + (f"; and {more} more" if more else "") + f"; in {self.store.path}")))

    def _store_unreadable(self, exc: BaseException) -> None:
        fix = "; quit, move the file aside and start again" if view.is_damage(exc) else ""
        if isinstance(exc, DamagedRow) and exc.key is not None:
            # One row, not the file: it can go alone; a pending one comes back whole if its
            # sidecar still lists it.
            fix = (f"; it cannot be decided: `{drop_command(exc.key)}` drops it (a pending one its sidecar "
                   "still lists is imported again, whole), or quit and move the file aside")
        self._tell(view.damaged_store(self.store.path, exc) + fix, severity="error", timeout=10)
        self.set_status(Text(view.one_line(view.damaged_store(None, exc)), style="red"))

    def _gone(self, key: int) -> str:
        """Why the selected proposal left the list, as the store has it."""
        try:
            row = self.store.get(key)
        except (BotBottleError, sqlite3.Error):  # forgotten, the database busy: gone all the same
            return "the proposal you had selected is gone; the cursor is on another now"
        by = apply.decided_by(row)
        why = f" ({row.reason})" if row.reason else ""
        return view.one_line(f"{row.bottle_id}/{row.id}, which you had selected, is gone: {row.status}{by}{why}; "
                             "the cursor is on another now")

    def _cursor_key(self, table: DataTable) -> str | None:
        if table.row_count == 0:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:  # noqa: BLE001 - no valid cursor yet
            return None

    def _key_below_cursor(self, table: DataTable) -> str | None:
        """The key of the row below the cursor's, if any."""
        if table.cursor_row + 1 >= table.row_count:
            return None
        try:
            return str(table.coordinate_to_cell_key(Coordinate(table.cursor_row + 1, 0)).row_key.value)
        except Exception:  # noqa: BLE001 - no valid cursor yet
            return None

    def _restore_cursor(self, table: DataTable, key: str | None) -> bool:
        """The cursor on the row ``key``, if the table still has it."""
        if key is None or table.row_count == 0:
            return False
        try:
            table.move_cursor(row=table.get_row_index(key))
        except Exception:  # noqa: BLE001 - the row is gone
            return False
        return True

    def current_proposal(self) -> ProposalRow | None:
        key = self._cursor_key(self.query_one("#proposals", DataTable))
        return next((r for r in self.pending if str(r.key) == key), None)

    def _bottle(self, bottle_id: str) -> BottleInfo | None:
        return next((b for b in self.bottles if b.id == bottle_id), None)

    def _show_detail(self) -> None:
        row = self.current_proposal()
        detail = self.query_one("#detail", Static)
        agent = self.query_one("#agent-says", Static)
        agent.display = row is not None
        if row is None:
            detail.update("")
            agent.update("")
            self._detail_key = None
            return
        bottle = self._bottle(row.bottle_id)
        text = Text()
        text.append(view.one_line(f"{row.bottle_id}/{row.id}"), style="bold")
        if bottle is not None and bottle.label:
            text.append(view.one_line(f" ({bottle.label})"))
        text.append(view.one_line(f"  {row.kind} · {view.time_left(row.created_at, row.timeout_s, self.clock())}"))
        # Warnings first: a long request must not push them out of sight.
        for warning in view.warnings(row.kind, row.payload):
            text.append("\n  warning: ", style="bold yellow")
            text.append(view.one_line(warning), style="yellow")
        text.append("\n  grants: ", style="bold")
        text.append(view.one_line(view.grants(row.kind, row.payload, backend=bottle.backend if bottle else None)))
        text.append("\n  asks: ", style="bold")
        text.append(view.one_line(view.summary(row.kind, row.payload)))
        for place in row.payload.get("places") or []:  # what the git-gate found, in its own words
            text.append("\n  found: ", style="bold")
            # The file names in it are the agent's: one spelled with lookalike letters
            # ("tеsts/fixtures") must not read as the test fixture it imitates.
            text.append(view.one_line(view.escaped(place)))
        detail.update(text)
        agent.update(view.agent_says(row.justification))
        if row.key != self._detail_key:
            self._detail_key = row.key
            self.query_one("#detail-pane", DetailPane).scroll_home(animate=False)

    def _show_events(self) -> None:
        log = self.query_one("#events", RichLog)
        bottle = self.selected_bottle
        if bottle is None:
            log.clear()
            self._events_shown = self._events_read = None
            self._title("#events-title", "Events: no bottle selected")
            return
        try:
            version = self.store.events_version(bottle)
            read = self._events_read
            if read is None or read[:2] != (bottle, version):
                read = self._events_read = self._read_events(bottle, version, log)
        except (sqlite3.DatabaseError, DamagedRow) as exc:
            self._store_unreadable(exc)
            self._title("#events-title", f"Events of {bottle}: cannot be read")
            return
        _, _, shown, total, held = read
        broken = self._events_damaged
        if broken and not shown:
            self._store_unreadable(broken[0])
            self._title("#events-title", f"Events of {bottle}: cannot be read ({len(broken)} damaged: {broken[0]})")
            return
        label = next((b.label for b in self.bottles if b.id == bottle and b.label), None)
        # The store keeps up to 10,000 a bottle; the newest few hundred are what an operator
        # reads here, and the count says that the rest exist.
        older = total - shown - len(broken)
        count = f"newest {shown} of {total - len(broken)} ({older} older not shown)" if older > 0 else f"{shown}"
        if broken:
            # Which and why: the first named (the file's path is in the notification).
            count += f"; {len(broken)} damaged, not shown: {broken[0]}"
        self._title("#events-title", f"Egress, DLP and terminal events of {bottle}" + (f" ({label})" if label else "")
                    + f": {count}" + (f"  (terminal: {held} sequence{'s' if held != 1 else ''} held back)"
                                      if held else ""))

    def _read_events(self, bottle: str, version: tuple[int, int, float | None, float | None],
                     log: RichLog) -> tuple[str, tuple[int, int, float | None, float | None], int, int, int]:
        """Read ``bottle``'s newest events into the log: only those after the lines it shows when
        it shows that bottle's and they are still among the newest, else all of them again.
        Return what ``_events_read`` keeps of them."""
        from bot_bottle.cli.logs import format_text

        # A damaged event is left out (counted in the title), not the whole log.
        damaged: list[DamagedRow] = []
        events = self.store.events(bottle, limit=EVENTS_SHOWN, damaged=damaged)
        # Counted over all of them: a flood of requests may push the entries out of the newest shown.
        terminal: list[DamagedRow] = []
        held = view.terminal_held([row.record for row in self.store.terminal_events(bottle, damaged=terminal)])
        # A terminal entry among the newest is in both lists: named once.
        self._events_damaged = damaged + [d for d in terminal if str(d) not in {str(e) for e in damaged}]
        keys = [(event.source, event.offset, event.imported_at) for event in events]
        new = _appended(self._events_shown, bottle, keys)
        self._events_shown = (bottle, keys)
        if new is None:
            # Another bottle, or the shown ones changed (a terminal entry that grew in place has
            # a new import time): the log is written again.
            log.clear()
            new = 0
        # Only what came after the lines shown: a sync every few seconds neither flickers nor
        # redraws a few hundred lines; the log drops its oldest beyond ``EVENTS_SHOWN``.
        for event in events[new:]:
            log.write(format_text(event.record))
        return bottle, version, len(events), max(version[1], len(events)), held

    @on(DataTable.RowHighlighted, "#bottles")
    @_while_shown
    def _bottle_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is None or event.row_key.value != self._cursor_key(self.query_one("#bottles", DataTable)):
            # Posted while a refresh rebuilt the table, its cursor since put back on the bottle
            # the operator chose: following it would show the first bottle's events, then the
            # chosen one's again, on every sync.
            return
        if event.row_key.value != self.selected_bottle:
            self.selected_bottle = str(event.row_key.value)
            self._show_events()

    @on(DataTable.RowHighlighted, "#proposals")
    @_while_shown
    def _proposal_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()
        if self.query_one("#bottles", DataTable).has_focus:
            return  # the operator is choosing a bottle: a refresh of the proposals does not switch it
        row = self.current_proposal()
        if row is not None and row.bottle_id != self.selected_bottle:
            self.selected_bottle = row.bottle_id
            self._show_events()

    @on(DataTable.RowSelected, "#proposals")
    def _proposal_selected(self, event: DataTable.RowSelected) -> None:
        # Enter: read the whole detail (it scrolls), Escape comes back.
        self.query_one("#detail-pane", DetailPane).focus()

    @on(DataTable.RowSelected, "#bottles")
    @_while_shown
    def _bottle_selected(self, event: DataTable.RowSelected) -> None:
        # Enter on a bottle: to its first pending proposal, the oldest (it has waited longest).
        bottle_id = str(event.row_key.value)
        first = next((row for row in self.pending if row.bottle_id == bottle_id), None)
        if first is None:
            self._tell(f"bottle {bottle_id} has no pending proposal")
            return
        props = self.query_one("#proposals", ProposalTable)
        props.focus()
        self._restore_cursor(props, str(first.key))
        self.operator_moved()  # chosen by the operator, now in the detail: a decision key decides it

    def operator_moved(self) -> None:
        """The operator moved the proposals cursor: what is under it now is their choice."""
        self._selection_lost = False

    # -- actions -------------------------------------------------------------------------------
    def _need_proposal(self) -> ProposalRow | None:
        row = self.current_proposal()
        if row is None:
            self._tell("no pending proposal selected", severity="warning")
        elif self._selection_lost:
            # An agent knows when its own proposals expire: a decision meant for the one that
            # just went must not land on whichever took its place.
            self._selection_lost = False
            self._tell("the proposal you had selected is gone (decided, or its wait ended); this is another one: "
                       "read it, then press the key again", severity="warning", timeout=10)
            return None
        elif row.key in self._deciding:
            # Pressed again before the first landed: that one stands, a second would only fail.
            self._tell(f"{row.bottle_id}/{row.id} is already being decided", severity="warning")
            return None
        return row

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.last_sync.problems if self.last_sync else []))

    def action_approve(self) -> None:
        row = self._need_proposal()
        if row is not None:
            self._decide(row, "approved")

    def action_approve_save(self) -> None:
        row = self._need_proposal()
        if row is None:
            return
        if row.kind != "egress":
            self._tell("only an egress route can be saved to a manifest", severity="warning")
            return
        try:
            path, manifest, line = self._manifest_target(row)
        except Exception as exc:  # noqa: BLE001 - no state or an unreadable one: say so, decide nothing
            self._tell(f"cannot tell which manifest bottle {row.bottle_id} was started from: {exc}", severity="error")
            return

        def done(yes: bool | None) -> None:
            if yes:
                self._decide(row, "approved", save_to_manifest=True)

        # The manifest is shared: every bottle started from it later gets the route too.
        route = view.quoted(line, whole=view.target(row.kind, row.payload))
        self.push_screen(ConfirmScreen(
            f"Approve {row.bottle_id}/{row.id} and add the route {route} to the manifest {path}? Every bottle "
            f"started from manifest '{manifest}' gets this route at its next start, not only {row.bottle_id} "
            f"(a bottle running now gets it when it is resumed)."), done)

    def _manifest_target(self, row: ProposalRow) -> tuple[Path, str, str]:
        """The manifest file an approve-and-save writes (as ``routes.save_to_manifest`` picks it),
        its bottle name, and the line it adds."""
        from bot_bottle.sidecar.supervise.channel import egress_route
        from bot_bottle.state import StateDir
        from bot_bottle.supervise import routes as routes_mod

        manifest = StateDir(self.context.state_root, row.bottle_id).read().bottle
        path = self.context.layout.bottles_dir / f"{manifest}.md"
        return path, manifest, routes_mod.route_line(egress_route(row.payload))

    def action_reject(self) -> None:
        row = self._need_proposal()
        if row is None:
            return

        def done(reason: str | None) -> None:
            if reason:
                self._decide(row, "rejected", reason=reason)

        asks = view.quoted(view.summary(row.kind, row.payload), whole=view.target(row.kind, row.payload))
        self.push_screen(ReasonScreen(f"{row.kind} proposal {row.id}: {asks}"), done)

    def action_modify(self) -> None:
        row = self._need_proposal()
        if row is None:
            return
        original = view.editable(row.kind, row.payload)
        try:
            edited = self.edit_fn(original)
        except BotBottleError as exc:
            self._tell(str(exc), severity="error")
            return
        if edited is None or edited == original:
            self._tell("not modified")
            return
        try:
            change = view.parse_edited(edited)
        except ValueError as exc:
            self._tell(str(exc), severity="error")
            return
        if change is None:
            self._tell("emptied: not modified")
            return
        # A warning the change brings (a wildcard over a shared domain, a private address) is
        # asked about first, as the detail shows the agent's own before approving.
        added = view.added_warnings(row.kind, row.payload, change)
        if not added:
            self._decide(row, "modified", change=change)
            return

        def done(yes: bool | None) -> None:
            if yes:
                self._decide(row, "modified", change=change)
            else:
                self._tell("not modified")

        self.push_screen(ConfirmScreen(f"Your change to {row.bottle_id}/{row.id}: "
                                       + "; ".join(f"warning: {warning}" for warning in added)
                                       + ". Approve it as changed?"), done)

    def action_stop(self) -> None:
        table = self.query_one("#bottles", DataTable)
        # The bottle the operator is looking at: the highlighted row when the bottles pane has
        # focus (what the cursor shows), else the one whose events are shown.
        bottle_id = self._cursor_key(table) if table.has_focus else self.selected_bottle
        if bottle_id is None:
            self._tell("no bottle selected", severity="warning")
            return
        info = self._bottle(bottle_id)
        what = bottle_id
        if info is not None:
            what += f" ({', '.join(p for p in (info.label and f'label {info.label}', f'agent {info.agent}', info.backend) if p)})"

        def done(yes: bool | None) -> None:
            if yes:
                self.set_status(f"stopping bottle {bottle_id}...")
                self._stop_worker(bottle_id)

        self.push_screen(ConfirmScreen(f"Stop bottle {what}? Its agent's processes end; its state is preserved "
                                       "for resume."), done)

    @work(group="stop")
    async def _stop_worker(self, bottle: str) -> None:
        def stop() -> str | None:
            try:
                self.stop_fn(bottle)
                return None
            except Exception as exc:  # noqa: BLE001 - shown, the console stays up
                return str(exc)

        error = await asyncio.get_running_loop().run_in_executor(self._action_pool, stop)
        if error is None:
            self._tell(f"stopped bottle {bottle}")
        else:
            self._tell(f"could not stop {bottle}: {error}", severity="error")
        self.action_sync()

    def _decide(self, row: ProposalRow, verdict: str, **kwargs: Any) -> None:
        # Decided here: when it leaves the list the operator knows why (no "selection gone").
        self._decided_here.add(row.key)
        props = self.query_one("#proposals", ProposalTable)
        self._next_after[row.key] = self._key_below_cursor(props) if self._cursor_key(props) == str(row.key) else None
        self._deciding.add(row.key)
        self.set_status(f"{verdict}: {row.bottle_id}/{row.id}...")
        future = self._action_pool.submit(self._run_decision, row.key, verdict, kwargs)
        self._decisions.append((f"{verdict} {row.bottle_id}/{row.id}", future))
        self._await_decision(row.key, f"{row.bottle_id}/{row.id} not {verdict}", future)

    def _run_decision(self, key: int, verdict: str, kwargs: dict[str, Any]) -> tuple[ProposalRow | None, str | None]:
        """In a decision thread: (the proposal as it ended, None) or (None, why it failed)."""
        try:
            with self.open_store() as st:
                return apply.decide(st, key, verdict, operator=self.operator, context=self.context, **kwargs), None
        except (sqlite3.DatabaseError, DamagedRow) as exc:
            return None, view.damaged_store(None, exc)
        except BotBottleError as exc:
            return None, str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug: say it, keep the console
            return None, f"internal error: {type(exc).__name__}: {exc}"

    @work(group="decide")
    async def _await_decision(self, key: int, failed: str,
                              future: Future[tuple[ProposalRow | None, str | None]]) -> None:
        try:
            row, error = await asyncio.wrap_future(future)
        finally:
            self._deciding.discard(key)
        self._decided(row, error, failed)

    @_while_shown
    def _decided(self, row: ProposalRow | None, error: str | None, failed: str) -> None:
        if row is None:
            # Named in the title too: not every reason names its proposal ("the sidecar did not
            # answer"), and with several decisions out the operator must know which failed.
            self._tell(error or "failed", severity="error", timeout=10, title=failed)
            self.set_status(Text(view.one_line(f"{error or 'failed'} ({failed})"), style="red"))
        else:
            message = _outcome(row)
            severity: SeverityLevel = "error" if row.status == "failed" else ("warning" if row.error else "information")
            self._tell(message, severity=severity, timeout=10 if row.error else 5)
            self.set_status(Text(view.one_line(message), style="red" if row.status == "failed" else ""))
        self.refresh_views()

    def unfinished(self) -> list[str]:
        """The decisions still being applied (what each is), e.g. when the console closes."""
        return [what for what, future in self._decisions if not future.done()]

    def finish(self, say: Callable[[str], None]) -> None:
        """After the console closed: wait for the decisions still being applied, saying so (an
        image build can take minutes; the terminal must not look hung), then how each ended."""
        left = [(what, future) for what, future in self._decisions if not future.done()]
        if left:
            say(f"finishing {len(left)} decision{'s' if len(left) > 1 else ''} "
                f"({'; '.join(what for what, _ in left)})…")
        for what, future in left:
            row, error = future.result()
            say(f"{what}: " + (_outcome(row) if row is not None else f"failed: {error}"))
        self._action_pool.shutdown(wait=True)

    # -- $EDITOR -------------------------------------------------------------------------------
    def _edit_in_editor(self, text: str) -> str | None:
        command = editor_command(os.environ.get("VISUAL") or os.environ.get("EDITOR"))
        fd, name = tempfile.mkstemp(prefix="bot-bottle-proposal-", suffix=".yaml")
        path = Path(name)
        # Every way this fails is a sentence (``action_modify`` shows it), never a traceback
        # that ends the console with the other proposals still waiting.
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            with self.suspend():
                subprocess.run([*command, str(path)], check=False)
            return path.read_text(encoding="utf-8")
        except SuspendNotSupported:
            raise BotBottleError("this terminal cannot hand the screen to an editor, so a proposal cannot be "
                                 "modified here") from None
        except OSError as exc:
            raise BotBottleError(f"could not run the editor {command[0]}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise BotBottleError("the edited proposal is not UTF-8 text: not modified") from None
        finally:
            path.unlink(missing_ok=True)


def _appended(shown: tuple[str, list[tuple[str, int, float]]] | None, bottle: str,
              keys: list[tuple[str, int, float]]) -> int | None:
    """Where the events not yet in the log begin in ``keys`` (the newest events, oldest first),
    when the log holds ``bottle``'s events ``shown`` and ``keys`` only moves on from them (the
    oldest gone off the top, new ones at the end); None when the log must be written again."""
    if shown is None or shown[0] != bottle:
        return None
    before = shown[1]
    if not before:
        return 0
    if not keys:
        return None
    try:
        gone = before.index(keys[0])
    except ValueError:
        # Nothing of what is shown is among the newest any more (a flood): written whole.
        return None
    kept = len(before) - gone
    return kept if keys[:kept] == before[gone:] else None


def editor_command(editor: str | None) -> list[str]:
    """$VISUAL or $EDITOR as a command (the file's name goes after it)."""
    if not editor or not editor.strip():
        raise BotBottleError("no editor: set $EDITOR (or $VISUAL) to modify a proposal")
    try:
        return shlex.split(editor)
    except ValueError as exc:
        raise BotBottleError(f"$EDITOR (or $VISUAL) is not a command this console can run: {exc}") from None


def _outcome(row: ProposalRow) -> str:
    return f"{row.bottle_id}/{row.id}: {row.status}" + (f" ({row.error})" if row.error else "")


def fit_columns(room: int, longest_bottle: int) -> tuple[int, int]:
    """The widths of the proposals table's bottle and request cells in ``room`` columns (what
    the short columns leave): the request whole up to ``view.REQUEST_CELL_WIDTH``, and never
    wider than what is left on the screen, where the edge would cut the end of a host (its
    owner's name) with no ellipsis; a long bottle name gives way first (cut in its middle, so
    its id stays), down to ``BOTTLE_MIN_WIDTH``."""
    room -= 4  # the request cell's padding, and the table's scrollbar
    bottle = min(longest_bottle, max(BOTTLE_MIN_WIDTH, room - 2 - REQUEST_MIN_WIDTH))
    return bottle, max(REQUEST_MIN_WIDTH, min(view.REQUEST_CELL_WIDTH, room - 2 - bottle))


def _column_width(label: str, rows: list[list[Text]], index: int) -> int:
    """How wide column ``index`` is for its label and its cells in ``rows``."""
    return max([len(label), *(cells[index].cell_len for cells in rows)])


def drop_command(key: int) -> str:
    """The command that deletes damaged proposal ``key`` (and audits it)."""
    return f"bot-bottle supervise --drop-damaged #{key}"


def sync_marks(report: SyncReport | None) -> dict[str, Text]:
    """The bottles pane's sync cell of each bottle the last sync could not read: ``slow`` for a
    sidecar that did not answer in time, ``not read`` for one that failed (down, an error)."""
    if report is None:
        return {}
    return {bottle: Text("slow", style="bold yellow") if bottle in report.slow else Text("not read", style="bold red")
            for bottle in report.unread}


def pending_cell(count: int, mark: Text | None) -> Text:
    """A bottles pane's pending cell: the count, blank for none; for a bottle the last sync
    could not read, the count of its last read with ``?`` (``3?``, ``0?``: more may have come),
    in its mark's colour."""
    if mark is None:
        return Text(str(count or ""))
    return Text(f"{count}?", style=mark.style)


def sync_failure(exc: BaseException) -> str:
    """Why a sync stopped, in the operator's words."""
    if isinstance(exc, (sqlite3.DatabaseError, DamagedRow)):
        return view.damaged_store(None, exc)
    return str(exc)


def _hh_mm(when: float) -> str:
    return time.strftime("%H:%M", time.localtime(when))


def _clip(text: str, width: int) -> str:
    return view.cut(" ".join(text.split()), width)


def sync_problems(report: SyncReport, width: int) -> str:
    """A sync's problems on the status line's ``width`` cells: the first of those that are not
    about reading one bottle (the engine's list, a refused forgery) with how many more, then the
    bottles that could not be read, counted, each named with its reason as far as they fit."""
    unread = set().union(*report.unread.values()) if report.unread else set()
    others = [error for error in report.problems if error not in unread]
    parts = []
    if others:
        first = view.one_line(others[0]) + (f" (+{len(others) - 1} more)" if len(others) > 1 else "")
        parts.append(view.cut(first, width // 2 if report.unread else width))
    if report.unread:
        used = sum(cell_len(part) + 2 for part in parts)
        parts.append(_unread_line(report.unread, width - used))
    return view.cut("; ".join(parts), width)


def problems_line(report: SyncReport, width: int, note: str, short: str = "") -> str:
    """The status line after a sync with problems: ``sync_problems`` and then ``note`` (since
    when the counts marked ``?`` are known), as long as the note costs no bottle its name; the
    reasons are cut shorter for it first (the help has them whole).

    With ``short`` (the note in fewer words) the line says it whenever it can: ``note`` when that
    costs no name, else ``short``, for which the reasons and then the names give way (counted in
    ``+N more``; the help and the bottles pane's marks have every one), all but the first.
    Without it, a count marked ``?`` would read as current whenever two bottles' reasons fill
    the line."""
    line = sync_problems(report, width)
    if not note:
        return line
    if not report.unread:
        # A sync that failed as a whole: its reason whole first (every bottle is marked, and the
        # bottles pane's title says since when).
        fits = [said for said in (note, short) if said and cell_len(line + said) <= width]
        return line + fits[0] if fits else line
    with_note = sync_problems(report, width - cell_len(note))
    if _named(with_note, report) >= max(1, _named(line, report)):
        return with_note + note
    with_short = sync_problems(report, width - cell_len(short)) if short and cell_len(short) < width else ""
    # Never at the cost of the last bottle named, nor of saying how many could not be read (on a
    # narrow terminal): the line is about what could not be read first.
    if _unread_head(report).rstrip(": ") not in with_short or _named(with_short, report) < min(1, _named(line, report)):
        return line
    return with_short + short


def _named(line: str, report: SyncReport) -> int:
    return sum(f"{view.one_line(bottle)} (" in line for bottle in report.unread)


def _unread_head(unread: SyncReport | dict[str, list[str]]) -> str:
    count = len(unread.unread if isinstance(unread, SyncReport) else unread)
    return f"{count} bottle{'s' if count > 1 else ''} could not be read: "


UNREAD_REASON_WIDTHS = (60, 40, 32, 24, 12)  # tried in turn: the one naming the most bottles wins


def _unread_line(unread: dict[str, list[str]], width: int) -> str:
    """``N bottles could not be read: a (reason), b (reason), +1 more`` in ``width`` cells."""
    head = _unread_head(unread)
    best = head + f"+{len(unread)} more" if len(unread) > 1 else head.rstrip(": ")
    best_count = 0
    for reason_width in UNREAD_REASON_WIDTHS:
        named: list[str] = []
        for bottle_id, messages in unread.items():
            reason = view.one_line(messages[0]).removeprefix(f"bottle {view.one_line(bottle_id)}: ")
            entry = f"{view.one_line(bottle_id)} ({view.cut(reason, reason_width)})"
            left = len(unread) - len(named) - 1
            line = head + ", ".join([*named, entry]) + (f", +{left} more" if left else "")
            if cell_len(line) > width:
                break
            named.append(entry)
        if len(named) > best_count:
            left = len(unread) - len(named)
            best, best_count = head + ", ".join(named) + (f", +{left} more" if left else ""), len(named)
    return best
