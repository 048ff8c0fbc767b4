"""The supervise console as the operator meets it: the composed screen read back at 80x24, what
approving grants, syncs that never pile up or hold a key press, text that is never markup, and the
keys that must act on what the operator is looking at.

Built on ``test_supervise_console``'s two bottles with real ctl spools (``LocalSidecar``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import threading
import time
import unittest
from collections.abc import Callable, Sequence
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

from textual.widgets import DataTable, Label, Static

from bot_bottle.supervise import apply
from bot_bottle.supervise.console import ConfirmScreen, SuperviseApp
from bot_bottle.supervise.link import RunResult, SidecarLink
from bot_bottle.supervise.store import Store
from bot_bottle.supervise.sync import BottleInfo, SyncReport, sync
from tests.unit._waits_dec15k import HANG_GUARD_S, until_shown
from tests.unit.test_supervise_console import BOTTLES, NOW, ConsoleCase
from tests.unit.test_supervise_link import CTL_PREFIX, LocalSidecar


def screen_text(app: SuperviseApp) -> str:
    """The screen as composed (what a terminal would show), one line per row."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


def detail_text(app: SuperviseApp) -> str:
    return " ".join(str(app.query_one("#detail", Static).render()).split())


class Case(ConsoleCase):
    def make_app(self, *, sync_fn: Callable[[Store], SyncReport] | None = None, interval: float = 0,
                 bottles: list[BottleInfo] | None = None) -> SuperviseApp:
        shown = bottles or BOTTLES
        return SuperviseApp(
            open_store=lambda: Store(self.db),
            sync_fn=sync_fn or (lambda st: sync(st, bottles=shown, link_for=self.link_for)),
            context=apply.Context(layout=self.layout, link_for=self.link_for),
            stop_fn=self.stopped.append, operator="ann", edit_fn=self.edit, interval=interval,
            clock=lambda: NOW,
        )

    def drive(self, script: Any, *, size: tuple[int, int] = (80, 24), app: SuperviseApp | None = None,
              first_sync: bool = True) -> SuperviseApp:
        the_app = app or self.make_app()

        async def main() -> None:
            # Toasts on: a notification is rendered, so markup in one would be parsed (and crash).
            async with the_app.run_test(size=size, notifications=True) as pilot:
                if first_sync:
                    await self.until(pilot, lambda: the_app.syncs >= 1)
                await script(the_app, pilot)

        asyncio.run(main())
        return the_app


class Readable(Case):
    """Finding: the detail clipped what the operator approves. At 80x24 it must all be readable."""

    def test_at_80x24_every_finding_of_a_push_exception_can_be_read(self) -> None:
        places = [f"commit 2222222222{i:02d}: file src/mod{i:02d}.py line {i}: detector aws-access-key"
                  for i in range(20)] + ["and 7 more"]
        self.propose("aaaaaa11", "push-exception", {
            "repo": "app", "ref": "refs/heads/main", "old": "1" * 40, "new": "2" * 40, "finding": "gf-0123456789ab",
            "detectors": ["aws-access-key", "known-secret:PROD_DB_PASSWORD"], "places": places}, "push-1",
            justification="tests/fixtures/fake.pem is a dummy key")
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await until_shown(pilot, lambda: all(part in screen_text(app) for part in (
                "9m30s left to decide", "grants: this one push of app refs/heads/main")))
            first = screen_text(app)
            self.assertIn("9m30s left to decide", first, "time left, without scrolling")
            self.assertIn("grants: this one push of app refs/heads/main", first, "what approving grants, without scrolling")
            await pilot.press("enter")  # into the detail, which scrolls
            await self.until(pilot, lambda: app.focused is app.query_one("#detail-pane"))
            seen.append(first)
            for _ in range(40):
                await pilot.press("down")
                seen.append(screen_text(app))

        self.drive(script)
        everything = "\n".join(seen)
        missing = [i for i in range(20) if f"src/mod{i:02d}.py" not in everything]
        self.assertEqual(missing, [], "every found: line can be scrolled to")
        self.assertIn("and 7 more", everything)
        self.assertIn("agent says:", everything)

    def test_at_80x24_the_every_path_warning_and_the_clock_are_in_sight_above_a_long_path_list(self) -> None:
        paths = [f"/api/v1/projects/{i:03d}/very/long/path/segment/for/docs/and/more/" for i in range(20)] + ["/"]
        self.propose("aaaaaa11", "egress", {"host": "docs.example", "paths": paths, "methods": ["GET"]}, "egress-1",
                     justification="Need read-only docs pages")

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await until_shown(pilot, lambda: all(part in screen_text(app) for part in (
                "warning: the paths include '/': every path on this host", "9m30s left to decide")))
            text = screen_text(app)
            self.assertIn("warning: the paths include '/': every path on this host", text)
            self.assertIn("9m30s left to decide", text)
            header = next(line for line in text.splitlines() if " kind " in line)
            self.assertIn("expires", header, "the expires column is on screen")
            self.assertIn("age", header, "the age column is on screen")
            row = next(line for line in text.splitlines() if "docs.example" in line and "egress" in line)
            self.assertIn("(+20 paths)", row, "the request cell says what it leaves out")
            self.assertIn("9m30s", row)

        self.drive(script)


class Grants(Case):
    """Finding: say what approving grants before deciding, one ``grants:`` line per kind."""

    def grants_line(self, bottle: str, kind: str, payload: dict[str, Any]) -> str:
        self.propose(bottle, kind, payload, f"{kind}-1")
        out: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.pause(0.1)
            out.append(detail_text(app))

        self.drive(script, size=(200, 50))
        (text,) = out
        self.assertEqual(text.count("grants:"), 1, text)
        return text.split("grants:", 1)[1].split(" asks:", 1)[0]

    def test_a_token_use_grants_its_whole_route_until_the_sidecar_stops(self) -> None:
        line = self.grants_line("aaaaaa11", "token-use", {
            "hold_id": "h1", "method": "PUT", "host": "s3.eu-west-1.amazonaws.com", "path": "/bucket/key",
            "route": "*.amazonaws.com", "detectors": ["aws-access-key"]})
        self.assertIn("route *.amazonaws.com", line)
        self.assertIn("aws-access-key", line)
        self.assertIn("not only this one", line)
        self.assertIn("until the bottle's sidecar stops", line)

    def test_a_host_only_egress_grants_both_ports_every_method_and_path_kept_on_resume(self) -> None:
        line = self.grants_line("aaaaaa11", "egress", {"host": "docs.example"})
        self.assertIn("docs.example on ports 80, 443, every method, every path", line)
        self.assertIn("every resume", line)

    def test_a_capability_rebuilds_and_restarts_the_bottle(self) -> None:
        line = self.grants_line("aaaaaa11", "capability", {"packages": ["ripgrep"]})
        self.assertIn("new image built with ripgrep", line)
        self.assertIn("restarts on it", line)
        self.assertIn("every process in it ends", line)

    def test_a_capability_on_a_micro_vm_grants_nothing(self) -> None:
        line = self.grants_line("bbbbbb22", "capability", {"packages": ["ripgrep"]})
        self.assertIn("not supported on smolmachines", line)

    def test_a_push_exception_grants_that_push_once(self) -> None:
        line = self.grants_line("aaaaaa11", "push-exception", {
            "repo": "app", "ref": "refs/heads/main", "old": "1" * 40, "new": "2" * 40, "finding": "gf-0123456789ab"})
        self.assertIn("this one push of app refs/heads/main 11111111..22222222 (finding gf-0123456789ab)", line)
        self.assertIn("once", line)


class Syncing(Case):
    """Finding: syncs piled up, shared threads with decisions, and one slow sidecar held all."""

    def test_a_tick_never_starts_a_second_sync_while_one_runs(self) -> None:
        lock = threading.Lock()
        state = {"active": 0, "peak": 0, "calls": 0}

        def slow_sync(st: Store) -> SyncReport:
            with lock:
                state["active"] += 1
                state["calls"] += 1
                state["peak"] = max(state["peak"], state["active"])
            time.sleep(1.2)
            with lock:
                state["active"] -= 1
            return sync(st, bottles=BOTTLES, link_for=self.link_for)

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.pause(3.5)

        self.drive(script, app=self.make_app(sync_fn=slow_sync, interval=0.5), first_sync=False)
        self.assertEqual(state["peak"], 1, "one sync at a time")
        self.assertLessEqual(state["calls"], 4)

    def test_a_decision_does_not_wait_for_the_threads_syncs_use(self) -> None:
        self.propose("aaaaaa11", "egress", {"host": "docs.example"}, "egress-1")
        release = threading.Event()
        self.addCleanup(release.set)
        first = [True]

        def hanging_sync(st: Store) -> SyncReport:
            report = sync(st, bottles=BOTTLES, link_for=self.link_for)
            if not first[0]:
                release.wait(30)  # a sidecar that does not answer
            first[0] = False
            return report

        async def script(app: SuperviseApp, pilot: Any) -> None:
            # However many threads syncs (or anything else) hold in the shared pool, a decision
            # has threads of its own.
            loop = asyncio.get_running_loop()
            for _ in range(40):
                loop.run_in_executor(None, release.wait, 30)
            await pilot.pause(1.0)
            started = time.monotonic()
            await pilot.press("a")
            await self.until(pilot, lambda: self.status_of("egress-1") == "applied", timeout=4)
            self.assertLess(time.monotonic() - started, 4)
            release.set()

        self.drive(script, app=self.make_app(sync_fn=hanging_sync, interval=0.5))

    def test_a_slow_sidecar_is_named_on_the_status_line_while_the_sync_waits(self) -> None:
        release = threading.Event()
        self.addCleanup(release.set)
        slow = self.sidecars["bbbbbb22"]

        def hanging(argv: Sequence[str], stdin: str) -> RunResult:
            release.wait(30)
            return LocalSidecar.__call__(slow, argv, stdin)

        def link_for(bottle_id: str) -> SidecarLink:
            if bottle_id == "bbbbbb22":
                return SidecarLink(bottle_id, runner=hanging, command=CTL_PREFIX)
            return self.link_for(bottle_id)

        statuses: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            status = app.query_one("#status", Static)
            await self.until(pilot, lambda: statuses.append(str(status.render())) or "slow" in statuses[-1], timeout=4)
            self.assertIn("bbbbbb22", statuses[-1])
            self.assertIn("syncing", statuses[-1])
            await self.until(pilot, lambda: app.syncs >= 1, timeout=6)
            self.assertIn("bbbbbb22", str(status.render()), "the sync ended naming the slow one")
            release.set()

        app = self.make_app(sync_fn=lambda st: sync(st, bottles=BOTTLES, link_for=link_for, wait_s=3))
        self.drive(script, app=app, first_sync=False)


class NoMarkup(Case):
    """Finding: text from agents, labels and errors was read as Textual markup."""

    def test_a_label_with_markup_neither_crashes_the_console_nor_styles_anything(self) -> None:
        labelled = [dataclasses.replace(BOTTLES[0], label="fix [/]"),
                    dataclasses.replace(BOTTLES[1], label="[@click=app.quit]x[/]")]

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await until_shown(pilot, lambda: "(fix [/])" in screen_text(app))
            self.assertIn("(fix [/])", screen_text(app))
            self.assertTrue(app.is_running)

        self.drive(script, app=self.make_app(bottles=labelled))

    def test_an_error_quoting_an_agents_path_is_shown_as_written(self) -> None:
        manifest = self.layout.bottles_dir / "dev.md"
        manifest.parent.mkdir(parents=True)
        manifest.write_text("---\negress:\n  log: 1\n  routes: [api.github.com, pypi.org]\n---\n")
        self.propose("aaaaaa11", "egress", {"host": "docs.example", "paths": ["/[reverse]docs[/reverse]"]}, "egress-1")
        self.propose("aaaaaa11", "egress", {"host": "later.example", "paths": ["/[@click=app.quit]x"]}, "egress-2",
                     created_at=NOW - 10)

        async def script(app: SuperviseApp, pilot: Any) -> None:
            for _ in range(2):
                await pilot.press("A")
                await self.until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
                await pilot.press("y")
                await self.until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
                await pilot.pause(0.5)
            await self.until(pilot, lambda: self.status_of("egress-2") == "applied")
            await pilot.pause(0.5)  # the toasts are drawn
            self.assertTrue(app.is_running)
            shown = [n.message for n in app._notifications]
            self.assertTrue(any("/[reverse]docs[/reverse]" in m for m in shown), shown)
            self.assertTrue(any("/[@click=app.quit]x" in m for m in shown), shown)

        self.drive(script, size=(140, 40))
        self.assertIn("inline", self.store_row("egress-1").error or "")

    def store_row(self, pid: str) -> Any:
        with Store(self.db) as st:
            return st.find(pid)


class SelectionGuard(Case):
    """Finding: the "selection gone" guard fired after the operator's own decision."""

    def test_after_deciding_one_the_next_takes_one_press(self) -> None:
        self.propose("aaaaaa11", "egress", {"host": "one.example"}, "egress-1", created_at=NOW - 20)
        self.propose("aaaaaa11", "egress", {"host": "two.example"}, "egress-2", created_at=NOW - 10)

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.press("a")
            await self.until(pilot, lambda: self.status_of("egress-1") == "applied")
            await self.until(pilot, lambda: app.query_one("#proposals", DataTable).row_count == 1)
            self.assertEqual(app.current_proposal().id, "egress-2")
            await pilot.press("a")
            await self.until(pilot, lambda: self.status_of("egress-2") == "applied", timeout=3)

        self.drive(script, size=(140, 40))

    def test_moving_the_cursor_after_the_selection_went_is_a_choice(self) -> None:
        self.propose("aaaaaa11", "egress", {"host": "gone.example"}, "egress-1", created_at=NOW - 30)
        self.propose("aaaaaa11", "egress", {"host": "two.example"}, "egress-2", created_at=NOW - 20)
        self.propose("aaaaaa11", "egress", {"host": "three.example"}, "egress-3", created_at=NOW - 10)

        async def script(app: SuperviseApp, pilot: Any) -> None:
            self.sidecars["aaaaaa11"].spool.expire("egress-1", "the agent's wait ended")
            await pilot.press("g")
            await self.until(pilot, lambda: app.query_one("#proposals", DataTable).row_count == 2)
            await pilot.press("down")  # the operator picks one
            self.assertEqual(app.current_proposal().id, "egress-3")
            await pilot.press("a")
            await self.until(pilot, lambda: self.status_of("egress-3") == "applied", timeout=3)
            self.assertEqual(self.status_of("egress-2"), "pending")

        self.drive(script, size=(140, 40))


class Keys(Case):
    def test_s_in_the_bottles_pane_stops_the_highlighted_bottle_and_names_it(self) -> None:
        # A proposal of the other bottle: each refresh re-highlights it in the proposals table.
        self.propose("aaaaaa11", "egress", {"host": "docs.example"}, "egress-1")

        async def script(app: SuperviseApp, pilot: Any) -> None:
            app.query_one("#bottles", DataTable).focus()
            await pilot.press("down")
            await pilot.press("g")
            await self.until(pilot, lambda: app.syncs >= 2)
            await pilot.pause(0.2)
            await pilot.press("s")
            await self.until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            question = str(app.screen.query_one(Label).render())
            self.assertIn("bbbbbb22", question)
            self.assertIn("vm-review", question, "its label")
            self.assertIn("reviewer", question, "its agent")
            await pilot.press("y")
            await self.until(pilot, lambda: self.stopped != [])

        self.drive(script, size=(140, 40))
        self.assertEqual(self.stopped, ["bbbbbb22"], "the bottle the cursor is on")

    def test_quitting_while_a_decision_is_applied_says_what_it_finishes(self) -> None:
        self.propose("aaaaaa11", "egress", {"host": "docs.example"}, "egress-1")
        side = self.sidecars["aaaaaa11"]
        # The decision is still being applied when the console closes, and goes on once finish
        # has said so: held by this, not by a sleep a loaded machine may outlast.
        release = threading.Event()
        self.addCleanup(release.set)

        def slow_decide(argv: Sequence[str], stdin: str) -> RunResult:
            if argv[-1] == "decide":
                release.wait(HANG_GUARD_S)
            return LocalSidecar.__call__(side, argv, stdin)

        slow = lambda bottle_id: SidecarLink(bottle_id, runner=slow_decide, command=CTL_PREFIX)  # noqa: E731
        app = self.make_app()
        app.context = apply.Context(layout=self.layout, link_for=slow)

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.press("a")
            await until_shown(pilot, app.unfinished)
            await pilot.press("q")

        self.drive(script, size=(140, 40), app=app)
        said: list[str] = []

        def say(line: str) -> None:
            said.append(line)
            release.set()

        app.finish(say)
        self.assertEqual(len(said), 2, said)
        self.assertIn("finishing 1 decision", said[0])
        self.assertIn("egress-1", said[0])
        self.assertIn("egress-1: applied", said[1])
        self.assertEqual(self.status_of("egress-1"), "applied")


class Interval(unittest.TestCase):
    def test_a_pace_that_is_not_a_number_of_seconds_is_a_usage_error(self) -> None:
        from bot_bottle import cli

        for value in ("nan", "inf", "1e-9", "0", "-1"):
            with self.subTest(value=value):
                err = io.StringIO()
                with redirect_stdout(io.StringIO()), redirect_stderr(err):
                    code = cli.main(["supervise", "--interval", value])
                self.assertEqual(code, 2, err.getvalue())
                self.assertIn("--interval", err.getvalue())
                self.assertIn("0.5", err.getvalue())

    def test_the_app_refuses_one_too(self) -> None:
        for value in (float("nan"), float("inf"), 1e-9):
            with self.subTest(value=value), self.assertRaises(ValueError):
                SuperviseApp(open_store=lambda: None, sync_fn=lambda st: SyncReport(),  # type: ignore[arg-type,return-value]
                             context=None, stop_fn=lambda b: None, operator="ann", interval=value)  # type: ignore[arg-type]


if __name__ == "__main__":
    unittest.main()
