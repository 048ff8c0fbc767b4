"""The console as an operator running eight bottles meets it, at 80x24 and 120x40: a dozen
proposals of every kind and hundreds of events must leave the status line and every key in
sight, the request column must never lose a host's end to the screen's edge, and deciding one
proposal must leave the cursor where a list leaves it (on the row below), never on another row
a later key press would decide unread."""

from __future__ import annotations

import contextlib
import os
import unittest
from typing import Any
from unittest import mock

from textual.widgets import DataTable

from bot_bottle.state import Metadata, StateDir
from bot_bottle.supervise import apply, view
from bot_bottle.supervise.console import REQUEST_MIN_WIDTH, SuperviseApp, fit_columns
from bot_bottle.supervise.store import Store
from bot_bottle.supervise.sync import BottleInfo, sync
from tests.unit.test_supervise_console import NOW
from tests.unit.test_supervise_console_screen import Case, screen_text
from tests.unit.test_supervise_link import LocalSidecar

# Three bottles from one manifest (their names get their ids), five of their own.
MANY = [BottleInfo(f"{c * 6}{n}{n}", "coder", "frontend" if n <= 3 else f"svc-{n}", "magenta", "docker",
                   "2026-11-22T05:00:00+00:00") for n, c in zip(range(1, 9), "abcdefgh")]
IDS = [b.id for b in MANY]
PUSH = {"repo": "app", "ref": "refs/heads/main", "old": "1" * 40, "new": "2" * 40, "finding": "gf-0123456789ab",
        "detectors": ["known-secret:API_TOKEN"],
        "places": ["commit 222222222222: file a line 1: detector known-secret:API_TOKEN"]}


def kinds(i: int) -> tuple[str, dict[str, Any]]:
    """The i-th of a dozen proposals: every kind in turn."""
    return [("egress", {"host": f"api{i}.example.com", "ports": [443], "paths": ["/v1/a", "/v1/b"]}),
            ("capability", {"packages": ["ripgrep", "jq"]}),
            ("push-exception", PUSH),
            ("token-use", {"hold_id": f"h{i}", "method": "POST", "host": "api.example", "path": "/v1",
                           "route": "api.example", "detectors": ["jwt"]})][i % 4]


class Busy(Case):
    def setUp(self) -> None:
        super().setUp()
        for b in MANY:
            if b.id in self.sidecars:  # the base's two
                continue
            state = StateDir(self.layout.state_dir, b.id)
            state.create()
            state.write(Metadata(id=b.id, agent=b.agent, bottle="dev", backend=b.backend))
            self.sidecars[b.id] = LocalSidecar(self.tmp / b.id, container_id=f"c-{b.id}")

    async def settled(self, app: SuperviseApp, pilot: Any) -> None:
        """Until the screen stops changing (a loaded machine renders late), footer drawn."""
        before = None
        await self.until(pilot, lambda: screen_text(app).splitlines()[-1].strip() != "")
        for _ in range(40):
            await pilot.pause(0.1)
            now = screen_text(app)
            if now == before:
                return
            before = now

    def make_app(self, *, bottles: list[BottleInfo] | None = None, **kwargs: Any) -> SuperviseApp:
        return super().make_app(bottles=bottles or MANY, **kwargs)

    def busy(self) -> None:
        for i in range(12):
            kind, payload = kinds(i)
            self.propose(IDS[i % len(IDS)], kind, payload, f"{kind}-{i}", created_at=NOW - 100 + i)
        for b in MANY:
            self.sidecars[b.id].log_lines(*[{"ts": "2026-11-22T05:29:01.000Z", "decision": "deny", "rule": "no-route",
                                             "host": f"h{k}.example", "port": 443, "method": "CONNECT",
                                             "connect": True} for k in range(300)])


class EverythingInSight(Busy):
    """Finding: at 80x24 the panes added up to more than the screen, which scrolled: the status
    line (sync errors, what a decision did) and the events were below its edge, out of reach of
    the keyboard."""

    def test_at_80x24_the_status_line_and_the_events_are_on_the_screen(self) -> None:
        self.busy()

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            for widget in ("#status", "#events-title", "#events", "#detail-pane"):
                region = app.query_one(widget).region
                self.assertLessEqual(region.bottom, 23, f"{widget} below the screen's edge: {region}")
            self.assertIn("synced", screen_text(app))
            self.assertIn("Egress, DLP and terminal events of", screen_text(app))

        self.drive(script, size=(80, 24))

    def test_at_120x40_all_eight_bottles_are_in_sight(self) -> None:
        self.busy()

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            text = screen_text(app)
            for bottle in IDS:
                self.assertIn(bottle, text)
            self.assertLessEqual(app.query_one("#status").region.bottom, 39)

        self.drive(script, size=(120, 40))

    def test_at_80_columns_the_footer_shows_every_key(self) -> None:
        """Finding: "g Sync now" and "q Quit" were cut off the footer's end."""

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            footer = screen_text(app).splitlines()[-1]
            for key, what in (("q", "Quit"), ("g", "Sync"), ("s", "Stop"), ("a", "Approve"), ("A", "+manifest"),
                              ("m", "Modify"), ("r", "Reject")):
                self.assertIn(f"{key} {what}", footer)

        self.drive(script, size=(80, 24))


class HostEndsInSight(Busy):
    """Finding: the request cell was at least 24 characters wide whatever the screen had left,
    and a warning's "! " came on top: at 80 columns the screen's edge cut the end of the host,
    with no ellipsis, so ``raw.githubusercontent.com.x.io`` read as githubusercontent.com's."""

    HOST = "raw.githubusercontent.com.x.io"

    def test_at_80x24_a_long_hosts_owner_is_on_the_screen(self) -> None:
        self.busy()
        self.propose(IDS[0], "egress", {"host": self.HOST, "ports": [443]}, "egress-spoof", created_at=NOW - 500)

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            [line] = [line for line in screen_text(app).splitlines() if "content.com" in line and " egress " in line]
            self.assertIn("content.com.x.io", line)

        self.drive(script, size=(80, 24))

    def test_a_long_bottle_name_gives_way_keeping_its_id(self) -> None:
        self.propose(IDS[0], "egress", {"host": self.HOST, "ports": [443]}, "egress-spoof")
        long_named = [BottleInfo(b.id, b.agent, "payments-service-development" if b.id in IDS[:2] else b.label,
                                 b.color, b.backend, b.started_at) for b in MANY]

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            [line] = [line for line in screen_text(app).splitlines() if "content.com" in line and " egress " in line]
            self.assertIn("content.com.x.io", line)
            self.assertIn("aaaaaa11)", line)

        self.drive(script, size=(80, 24), app=self.make_app(bottles=long_named))

    def test_a_column_once_widened_gives_its_room_back(self) -> None:
        """Finding: a table's columns only widen; a push-exception from a bottle with a long name,
        gone, left its columns wide, and the next long host lost its end to the screen's edge."""
        long_named = [BottleInfo(b.id, b.agent, "payments-service-development" if b.id == IDS[0] else b.label,
                                 b.color, b.backend, b.started_at) for b in MANY]
        self.propose(IDS[0], "push-exception", {**PUSH, "detectors": ["aws-access-key"]}, "push-1")

        async def script(app: SuperviseApp, pilot: Any) -> None:
            self.sidecars[IDS[0]].spool.expire("push-1", "the agent's wait ended")
            self.propose(IDS[6], "egress", {"host": self.HOST, "ports": [443]}, "egress-spoof")
            synced = app.syncs
            await pilot.press("g")
            await self.until(pilot, lambda: app.syncs > synced)
            await self.settled(app, pilot)
            [line] = [line for line in screen_text(app).splitlines() if "content.com" in line and " egress " in line]
            self.assertIn("content.com.x.io", line)

        self.drive(script, size=(80, 24), app=self.make_app(bottles=long_named))

    def test_a_warned_cell_counts_its_mark_in_its_width(self) -> None:
        cell = view.request_cell("egress", {"host": "10-0-0-1." + "x" * 40 + ".nip.io", "ports": [443]}, 30)
        self.assertTrue(cell.plain.startswith("! "))
        self.assertLessEqual(len(cell.plain), 30)
        self.assertTrue(cell.plain.endswith("x.nip.io"))

    def test_a_host_that_fits_is_whole_before_the_path_count(self) -> None:
        """Finding: at 80 columns ``*.github.io`` with two paths read "…ithub.io (+1 paths)":
        the count was kept, and the wildcard, the thing to see, was cut off."""
        cell = view.request_cell("egress", {"host": "*.github.io", "ports": [443], "paths": ["/a", "/"]}, 20).plain
        self.assertTrue(cell.startswith("! *.github.io"), cell)
        self.assertLessEqual(len(cell), 20)

    def test_a_long_wildcard_cut_stays_a_wildcard(self) -> None:
        cell = view.request_cell("egress", {"host": "*.very-long-subdomain.example.com", "paths": ["/a", "/b"]}, 30)
        self.assertEqual(cell.plain, "*.…main.example.com (+1 paths)")


class ColumnFitting(unittest.TestCase):
    def test_the_request_never_exceeds_what_is_left(self) -> None:
        for room in range(40, 120):
            for longest in (5, 19, 30, 60):
                bottle, request = fit_columns(room, longest)
                if room - 4 - 2 - bottle >= REQUEST_MIN_WIDTH:
                    self.assertLessEqual(bottle + 2 + request, room - 4, (room, longest))

    def test_a_short_bottle_name_is_whole_and_the_request_gets_the_rest(self) -> None:
        self.assertEqual(fit_columns(80, 8), (8, view.REQUEST_CELL_WIDTH))
        self.assertEqual(fit_columns(44, 19), (18, 20))

    def test_cut_middle_keeps_both_ends(self) -> None:
        self.assertEqual(view.cut_middle("frontend (aaaaaa11)", 18), "front…d (aaaaaa11)")
        self.assertEqual(view.cut_middle("short", 18), "short")
        self.assertEqual(len(view.cut_middle("x" * 100, 12)), 12)


class NextIsBelow(Busy):
    """Finding: deciding a proposal rebuilt the table and left the cursor on its first row; the
    "next one takes one press" rule then let the next ``a`` approve the top proposal, not the one
    the operator read below the one they decided."""

    def six(self) -> None:
        for i in range(6):
            self.propose(IDS[i % 3], "egress", {"host": f"h{i}.example"}, f"egress-{i}", created_at=NOW - 100 + i)

    def test_after_deciding_one_the_cursor_is_on_the_row_below_it(self) -> None:
        self.six()

        async def script(app: SuperviseApp, pilot: Any) -> None:
            for _ in range(3):
                await pilot.press("down")
            self.assertEqual(app.current_proposal().id, "egress-3")
            await pilot.press("a")
            await self.until(pilot, lambda: app.query_one("#proposals", DataTable).row_count == 5)
            self.assertEqual(app.current_proposal().id, "egress-4")
            await pilot.press("a")
            await self.until(pilot, lambda: self.status_of("egress-4") == "applied", timeout=3)
            self.assertEqual(self.status_of("egress-0"), "pending")

        self.drive(script, size=(120, 40))

    def test_a_sync_adding_rows_above_does_not_move_the_cursor_off_the_next_one(self) -> None:
        self.six()

        async def script(app: SuperviseApp, pilot: Any) -> None:
            for _ in range(3):
                await pilot.press("down")
            self.propose(IDS[2], "egress", {"host": "new.example"}, "egress-new", created_at=NOW - 500)
            self.sidecars[IDS[0]].spool.expire("egress-0", "the agent's wait ended")
            await pilot.press("a")
            await self.until(pilot, lambda: self.status_of("egress-3") == "applied")
            n = app.syncs
            await pilot.press("g")
            await self.until(pilot, lambda: app.syncs > n)
            self.assertEqual(app.current_proposal().id, "egress-4")

        self.drive(script, size=(120, 40))

    def test_when_the_row_below_went_too_the_next_press_only_warns(self) -> None:
        self.six()

        async def script(app: SuperviseApp, pilot: Any) -> None:
            for _ in range(3):
                await pilot.press("down")
            # Another operator (``supervise --once``, another console) decides the one below.
            with Store(self.db) as st:
                apply.decide(st, "egress-4", "rejected", reason="not now", operator="bob",
                             context=apply.Context(layout=self.layout, link_for=self.link_for))
            await pilot.press("a")
            await self.until(pilot, lambda: app.query_one("#proposals", DataTable).row_count == 4)
            shown = app.current_proposal().id
            await pilot.press("a")
            await pilot.pause(0.5)
            self.assertEqual(self.status_of(shown), "pending")

        self.drive(script, size=(120, 40))


class ModifyWarnsFirst(Busy):
    """Finding: a change made with ``m`` was applied at once, even when it brought a warning the
    proposal as asked did not have (a private address, a wildcard over a shared domain): the
    one path to a grant that never showed the operator what the console warns about."""

    def setUp(self) -> None:
        super().setUp()
        self.propose(IDS[0], "egress", {"host": "docs.example", "ports": [443]}, "egress-m")

    def modify(self, edited: str, answer: str | None) -> tuple[SuperviseApp, list[str]]:
        self.edited_text = edited
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.press("m")
            await self.settled(app, pilot)
            seen.append(type(app.screen).__name__)
            seen.append(" ".join(screen_text(app).split()))
            if answer:
                await pilot.press(answer)
                await pilot.pause(0.5)

        return self.drive(script, size=(120, 40)), seen

    def test_a_change_to_a_private_address_is_asked_about_and_n_keeps_it_pending(self) -> None:
        _, (screen, text) = self.modify("host: 169.254.169.254\nports: [80]\n", "n")
        self.assertEqual(screen, "ConfirmScreen")
        self.assertIn("169.254.169.254 is a private or local address", text)
        self.assertEqual(self.status_of("egress-m"), "pending")

    def test_y_applies_it_as_changed(self) -> None:
        app, (screen, _) = self.modify("host: '*.github.io'\nports: [443]\n", "y")
        self.assertEqual(screen, "ConfirmScreen")
        with Store(self.db) as st:
            row = st.find("egress-m")
        self.assertIn(row.status, ("modified", "applied"))
        self.assertEqual(row.change["host"], "*.github.io")

    def test_a_change_with_no_new_warning_is_applied_without_a_question(self) -> None:
        _, (screen, _) = self.modify("host: docs.example\nports: [8443]\n", None)
        self.assertEqual(screen, "Screen")

    def test_a_change_of_the_wrong_shape_is_refused_in_a_sentence(self) -> None:
        _, (screen, text) = self.modify("host: docs.example\npaths: 5\n", None)
        self.assertEqual(screen, "Screen")
        self.assertIn("the changed egress proposal is not valid: change.paths", text)
        self.assertNotIn("Traceback", text)
        self.assertEqual(self.status_of("egress-m"), "pending")


class DialogsFit(Busy):
    """Finding: the reject and approve-and-save questions quoted the whole request; an egress
    ask with thirty long paths made them taller than an 80x24 screen: the reject dialog lost
    which proposal it rejects, the approve-and-save one its manifest file and its ``[y/n]``."""

    def setUp(self) -> None:
        super().setUp()
        self.propose(IDS[0], "egress", {"host": "docs.example", "ports": [443],
                                        "paths": [f"/p{i}/" + "x" * 90 for i in range(30)]}, "egress-big")

    def dialog(self, key: str) -> str:
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.press(key)
            await self.settled(app, pilot)
            seen.append(" ".join(screen_text(app).split()))

        self.drive(script, size=(80, 24))
        return seen[0]

    def test_the_reject_question_says_what_it_rejects(self) -> None:
        text = self.dialog("r")
        self.assertIn("Reject egress proposal egress-big: docs.example:443", text)
        self.assertIn("Why? The agent is told this reason.", text)

    def test_the_approve_and_save_question_names_its_manifest_and_asks(self) -> None:
        text = self.dialog("A")
        self.assertIn("Approve aaaaaa11/egress-big and add the route", text)
        self.assertIn("to the manifest", text)
        self.assertIn("[y/n]", text)


class HostileJustification(Busy):
    """What an agent writes is shown inert everywhere the console quotes it (no finding: kept)."""

    JUSTIFICATION = ("ok\x1b[2J\x1b]52;c;SGVsbG8=\x07 [red]approved[/red] \u202egnp.exe\u202c\r"
                     + "A" * 3000 + "\n" * 200 + "  grants: nothing at all")

    def test_the_table_the_detail_and_the_reject_question_show_it_as_escapes(self) -> None:
        self.propose(IDS[0], "egress", {"host": "docs.example", "ports": [443]}, "egress-1",
                     justification=self.JUSTIFICATION)
        screens: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.settled(app, pilot)
            screens.append(screen_text(app))
            await pilot.press("r")
            await self.settled(app, pilot)
            screens.append(screen_text(app))

        self.drive(script, size=(80, 24))
        for screen in screens:
            self.assertNotIn("\x1b", screen)
            self.assertNotIn("\u202e", screen)
            self.assertEqual(len(screen.splitlines()), 24)
        self.assertIn("agent says:", screens[0])
        self.assertIn("ok\\x1b[2J\\x1b]52;c;SGVsbG8=\\x07 [red]approved[/red]", screens[0])


class EditorFailures(Busy):
    """Finding: ``m`` with an $EDITOR that does not run (a typo, an unbalanced quote), or that
    saved bytes that are not UTF-8, raised out of the key handler: a traceback, and the console
    gone with every other proposal still waiting."""

    def setUp(self) -> None:
        super().setUp()
        self.propose(IDS[0], "egress", {"host": "docs.example", "ports": [443]}, "egress-m")

    def press_m(self, editor: str) -> list[str]:
        app = SuperviseApp(open_store=lambda: Store(self.db),
                           sync_fn=lambda st: sync(st, bottles=MANY, link_for=self.link_for),
                           context=apply.Context(layout=self.layout, link_for=self.link_for),
                           stop_fn=self.stopped.append, operator="ann", interval=0, clock=lambda: NOW)
        app.suspend = contextlib.nullcontext  # type: ignore[method-assign] # no terminal to hand over here
        told: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.press("m")
            await pilot.pause(0.3)
            told.extend(n.message for n in app._notifications)
            self.assertIs(app.screen, app.screen_stack[0])

        with mock.patch.dict(os.environ, {"EDITOR": editor, "VISUAL": ""}):
            self.drive(script, size=(120, 40), app=app)
        self.assertEqual(self.status_of("egress-m"), "pending")
        return told

    def test_an_editor_that_is_not_there_is_a_sentence(self) -> None:
        self.assertEqual(self.press_m(str(self.tmp / "no-such-editor")),
                         [f"could not run the editor {self.tmp / 'no-such-editor'}: No such file or directory"])

    def test_an_editor_command_with_an_unbalanced_quote_is_a_sentence(self) -> None:
        [told] = self.press_m("vim '-c set nu")
        self.assertIn("is not a command this console can run", told)

    def test_an_editor_of_blanks_is_no_editor(self) -> None:
        self.assertEqual(self.press_m("   "), ["no editor: set $EDITOR (or $VISUAL) to modify a proposal"])

    def test_a_file_saved_as_bytes_that_are_not_utf8_is_a_sentence(self) -> None:
        script = self.tmp / "latin1-editor"
        script.write_text('#!/bin/sh\nprintf "host: \\377\\n" > "$1"\n')
        script.chmod(0o700)
        self.assertEqual(self.press_m(str(script)), ["the edited proposal is not UTF-8 text: not modified"])


if __name__ == "__main__":
    unittest.main()
