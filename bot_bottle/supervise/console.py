"""``bot-bottle supervise``: the operator's console, a Textual app over the supervise store.

Three panes: running bottles (label, colour, agent, backend, uptime, pending count), the pending
proposals of every bottle, and the egress/DLP events of the selected bottle. Keyboard only:
``a`` approve, ``A`` approve and also save the route to the bottle's manifest, ``m`` modify (the
proposal opens in ``$EDITOR``), ``r`` reject (asks for a reason), ``s`` stop the selected
bottle, ``g`` sync now, ``tab`` moves between panes, ``q`` quits.

Syncing (``docker exec`` into every sidecar) and deciding (which may rebuild an image) run in
worker threads, each with its own database connection, so the screen never freezes.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.notifications import SeverityLevel
from textual.widgets import DataTable, Footer, Header, Input, Label, RichLog, Static

from bot_bottle.errors import BotBottleError
from bot_bottle.supervise import apply, view
from bot_bottle.supervise.store import ProposalRow, Store
from bot_bottle.supervise.sync import BottleInfo, SyncReport

EVENTS_SHOWN = 200
JUSTIFICATION_WIDTH = 60

EditFn = Callable[[str], "str | None"]


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
            self.notify("a rejection needs a reason", severity="warning")

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


class SuperviseApp(App[None]):
    TITLE = "bot-bottle supervise"
    CSS = """
    .pane-title { background: $panel; color: $text; text-style: bold; padding: 0 1; }
    #bottles { height: auto; max-height: 30%; }
    #proposals { height: 1fr; min-height: 3; }
    #detail { height: auto; max-height: 3; padding: 0 1; color: $text-muted; }
    #agent-says { height: auto; max-height: 4; margin: 0 0 0 2; padding: 0 1; border-left: outer $warning; }
    #events { height: 1fr; min-height: 3; }
    #status { height: 1; padding: 0 1; background: $boost; }
    ReasonScreen, ConfirmScreen { align: center middle; }
    #dialog { width: 80%; max-width: 100; height: auto; border: thick $accent; background: $surface; padding: 1 2; }
    #dialog Label { width: 100%; }
    """
    BINDINGS = [
        Binding("a", "approve", "Approve"),
        Binding("A", "approve_save", "Approve+save to manifest"),
        Binding("m", "modify", "Modify"),
        Binding("r", "reject", "Reject"),
        Binding("s", "stop", "Stop bottle"),
        Binding("g", "sync", "Sync now"),
        Binding("q", "quit", "Quit"),
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
        # chosen it, so the next decision key only says so.
        self._selection_lost = False
        self.selected_bottle: str | None = None
        self.last_sync: SyncReport | None = None
        self.syncs = 0  # completed syncs, for tests and the status line
        self._events_shown: tuple[Any, ...] | None = None

    # -- layout --------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header(show_clock=True)
        yield Static("Running bottles", classes="pane-title", id="bottles-title")
        yield DataTable(id="bottles", cursor_type="row", zebra_stripes=True)
        yield Static("Pending proposals", classes="pane-title", id="proposals-title")
        yield DataTable(id="proposals", cursor_type="row", zebra_stripes=True)
        yield Static("", id="detail")
        # What the agent wrote, in a pane of its own with a bar down its left side: every line of
        # it, wrapped ones too, is marked as the agent's, so it cannot pass for the gate's lines.
        yield Static("", id="agent-says")
        yield Static("Events", classes="pane-title", id="events-title")
        yield RichLog(id="events", wrap=False, markup=False, highlight=False, max_lines=EVENTS_SHOWN)
        yield Static("starting...", id="status")
        yield Footer()

    def on_mount(self) -> None:
        bottles = self.query_one("#bottles", DataTable)
        bottles.add_columns("id", "label", "agent", "backend", "uptime", "pending")
        props = self.query_one("#proposals", DataTable)
        props.add_columns("#", "bottle", "kind", "request", "justification", "age", "expires")
        props.focus()
        self.refresh_views()
        self.action_sync()
        if self.interval > 0:
            self.set_interval(self.interval, self.action_sync)

    def on_unmount(self) -> None:
        self.store.close()

    # -- sync ----------------------------------------------------------------------------------
    def action_sync(self) -> None:
        self._sync_worker()

    @work(thread=True, exclusive=True, group="sync")
    def _sync_worker(self) -> None:
        try:
            with self.open_store() as st:
                report = self.sync_fn(st)
        except Exception as exc:  # noqa: BLE001 - shown on the status line, the console stays up
            report = SyncReport(bottles=self.bottles, errors=[f"sync failed: {exc}"])
        self.call_from_thread(self._after_sync, report)

    def _after_sync(self, report: SyncReport) -> None:
        self.last_sync = report
        self.bottles = list(report.bottles)
        self.syncs += 1
        self.refresh_views()
        if report.errors:
            self.set_status(Text(report.errors[0] + (f" (+{len(report.errors) - 1} more)" if len(report.errors) > 1 else ""),
                                 style="red"))
        else:
            self.set_status(Text(f"synced {time.strftime('%H:%M:%S')}: {len(self.bottles)} bottle(s), "
                                 f"{len(self.pending)} pending"))

    # -- views ---------------------------------------------------------------------------------
    def set_status(self, text: str | Text) -> None:
        self.query_one("#status", Static).update(text)

    def refresh_views(self) -> None:
        self.pending = self.store.pending()
        now = self.clock()
        counts: dict[str, int] = {}
        for row in self.pending:
            counts[row.bottle_id] = counts.get(row.bottle_id, 0) + 1
        bottles = self.query_one("#bottles", DataTable)
        keep = self._cursor_key(bottles)
        bottles.clear()
        for b in self.bottles:
            # A bottle whose sidecar stopped has an agent with no way out: say so where uptime goes.
            uptime = Text("offline", style="bold red") if b.offline else view.duration(b.uptime(now))
            bottles.add_row(view.styled(b.id, b.color), view.styled(b.label or "-", b.color), b.agent, b.backend,
                            uptime, str(counts.get(b.id, 0) or ""), key=b.id)
        self._restore_cursor(bottles, keep)
        self.query_one("#bottles-title", Static).update(
            f"Running bottles ({len(self.bottles)})" if self.bottles else "Running bottles: none")

        colors = {b.id: (b.label, b.color) for b in self.bottles}
        props = self.query_one("#proposals", DataTable)
        keep = self._cursor_key(props)
        props.clear()
        for row in self.pending:
            label, color = colors.get(row.bottle_id, (None, None))
            age = now - row.created_at
            left = None if row.timeout_s is None else row.timeout_s - age
            props.add_row(
                str(row.key), view.styled(label or row.bottle_id, color), view.plain(row.kind),
                view.plain(view.summary(row.kind, row.payload)),
                view.plain(_clip(row.justification, JUSTIFICATION_WIDTH)), view.duration(age),
                view.duration(left) if left is None or left > 0 else "waiting ended", key=str(row.key),
            )
        self._restore_cursor(props, keep)
        if keep is not None and keep not in {str(row.key) for row in self.pending}:
            self._selection_lost = True
        self.query_one("#proposals-title", Static).update(
            f"Pending proposals ({len(self.pending)})  a approve · A approve+save · m modify · r reject"
            if self.pending else "Pending proposals: none")
        if self.selected_bottle is None or self.selected_bottle not in colors:
            current = self.current_proposal()
            self.selected_bottle = current.bottle_id if current else (self.bottles[0].id if self.bottles else None)
        self._show_detail()
        self._show_events()

    def _cursor_key(self, table: DataTable) -> str | None:
        if table.row_count == 0:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:  # noqa: BLE001 - no valid cursor yet
            return None

    def _restore_cursor(self, table: DataTable, key: str | None) -> None:
        if key is None or table.row_count == 0:
            return
        try:
            table.move_cursor(row=table.get_row_index(key))
        except Exception:  # noqa: BLE001 - the row is gone: the cursor stays where the table put it
            pass

    def current_proposal(self) -> ProposalRow | None:
        key = self._cursor_key(self.query_one("#proposals", DataTable))
        return next((r for r in self.pending if str(r.key) == key), None)

    def _show_detail(self) -> None:
        row = self.current_proposal()
        detail = self.query_one("#detail", Static)
        agent = self.query_one("#agent-says", Static)
        agent.display = row is not None
        if row is None:
            detail.update("")
            agent.update("")
            return
        text = Text()
        text.append(f"{row.bottle_id}/{row.id}", style="bold")
        text.append(view.one_line(f"  {row.kind}: {view.summary(row.kind, row.payload)}"))
        for warning in view.warnings(row.kind, row.payload):
            text.append("\n  warning: ", style="bold yellow")
            text.append(warning, style="yellow")
        for place in row.payload.get("places") or []:  # what the git-gate found, in its own words
            text.append("\n  found: ", style="bold")
            text.append(view.one_line(place))
        detail.update(text)
        agent.update(view.agent_says(row.justification))

    def _show_events(self) -> None:
        from bot_bottle.cli.logs import format_text

        log = self.query_one("#events", RichLog)
        bottle = self.selected_bottle
        title = self.query_one("#events-title", Static)
        if bottle is None:
            log.clear()
            self._events_shown = None
            title.update("Events: no bottle selected")
            return
        events = self.store.events(bottle, limit=EVENTS_SHOWN)
        label = next((b.label for b in self.bottles if b.id == bottle and b.label), None)
        title.update(f"Egress and DLP events of {bottle}" + (f" ({label})" if label else "") + f": {len(events)}")
        # Rewritten only when something changed, so a sync every few seconds does not flicker.
        shown = (bottle, len(events), (events[-1].source, events[-1].offset) if events else None)
        if shown == self._events_shown:
            return
        self._events_shown = shown
        log.clear()
        for event in events:
            log.write(format_text(event.record))

    @on(DataTable.RowHighlighted, "#bottles")
    def _bottle_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value != self.selected_bottle:
            self.selected_bottle = str(event.row_key.value)
            self._show_events()

    @on(DataTable.RowHighlighted, "#proposals")
    def _proposal_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()
        row = self.current_proposal()
        if row is not None and row.bottle_id != self.selected_bottle:
            self.selected_bottle = row.bottle_id
            self._show_events()

    # -- actions -------------------------------------------------------------------------------
    def _need_proposal(self) -> ProposalRow | None:
        row = self.current_proposal()
        if row is None:
            self.notify("no pending proposal selected", severity="warning")
        elif self._selection_lost:
            # An agent knows when its own proposals expire: a decision meant for the one that
            # just went must not land on whichever took its place.
            self._selection_lost = False
            self.notify("the proposal you had selected is gone (decided, or its wait ended); this is another one: "
                        "read it, then press the key again", severity="warning", timeout=10)
            return None
        return row

    def action_approve(self) -> None:
        row = self._need_proposal()
        if row is not None:
            self._decide(row, "approved")

    def action_approve_save(self) -> None:
        row = self._need_proposal()
        if row is None:
            return
        if row.kind != "egress":
            self.notify("only an egress route can be saved to a manifest", severity="warning")
            return
        self._decide(row, "approved", save_to_manifest=True)

    def action_reject(self) -> None:
        row = self._need_proposal()
        if row is None:
            return

        def done(reason: str | None) -> None:
            if reason:
                self._decide(row, "rejected", reason=reason)

        self.push_screen(ReasonScreen(f"{row.kind} proposal {row.id}: {view.summary(row.kind, row.payload)}"), done)

    def action_modify(self) -> None:
        row = self._need_proposal()
        if row is None:
            return
        original = view.editable(row.kind, row.payload)
        try:
            edited = self.edit_fn(original)
        except BotBottleError as exc:
            self.notify(str(exc), severity="error")
            return
        if edited is None or edited == original:
            self.notify("not modified")
            return
        try:
            change = view.parse_edited(edited)
        except ValueError as exc:
            self.notify(str(exc), severity="error")
            return
        if change is None:
            self.notify("emptied: not modified")
            return
        self._decide(row, "modified", change=change)

    def action_stop(self) -> None:
        bottle = self.selected_bottle
        if bottle is None:
            self.notify("no bottle selected", severity="warning")
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.set_status(f"stopping bottle {bottle}...")
                self._stop_worker(bottle)

        self.push_screen(ConfirmScreen(f"Stop bottle {bottle}? Its state is preserved for resume."), done)

    @work(thread=True, group="stop")
    def _stop_worker(self, bottle: str) -> None:
        try:
            self.stop_fn(bottle)
            self.call_from_thread(self.notify, f"stopped bottle {bottle}")
        except Exception as exc:  # noqa: BLE001 - shown, the console stays up
            self.call_from_thread(self.notify, f"could not stop {bottle}: {exc}", severity="error")
        self.call_from_thread(self.action_sync)

    def _decide(self, row: ProposalRow, verdict: str, **kwargs: Any) -> None:
        self.set_status(f"{verdict}: {row.bottle_id}/{row.id}...")
        self._decide_worker(row.key, verdict, kwargs)

    @work(thread=True, group="decide")
    def _decide_worker(self, key: int, verdict: str, kwargs: dict[str, Any]) -> None:
        try:
            with self.open_store() as st:
                row = apply.decide(st, key, verdict, operator=self.operator, context=self.context, **kwargs)
        except BotBottleError as exc:
            self.call_from_thread(self._decided, None, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a bug: say it, keep the console
            self.call_from_thread(self._decided, None, f"internal error: {type(exc).__name__}: {exc}")
            return
        self.call_from_thread(self._decided, row, None)

    def _decided(self, row: ProposalRow | None, error: str | None) -> None:
        if row is None:
            self.notify(error or "failed", severity="error", timeout=10)
            self.set_status(Text(error or "failed", style="red"))
        else:
            message = f"{row.bottle_id}/{row.id}: {row.status}" + (f" ({row.error})" if row.error else "")
            severity: SeverityLevel = "error" if row.status == "failed" else ("warning" if row.error else "information")
            self.notify(message, severity=severity, timeout=10 if row.error else 5)
            self.set_status(Text(message, style="red" if row.status == "failed" else ""))
        self.refresh_views()

    # -- $EDITOR -------------------------------------------------------------------------------
    def _edit_in_editor(self, text: str) -> str | None:
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
        if not editor:
            raise BotBottleError("no editor: set $EDITOR (or $VISUAL) to modify a proposal")
        fd, name = tempfile.mkstemp(prefix="bot-bottle-proposal-", suffix=".yaml")
        path = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            with self.suspend():
                subprocess.run([*shlex.split(editor), str(path)], check=False)
            return path.read_text(encoding="utf-8")
        finally:
            path.unlink(missing_ok=True)


def _clip(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
