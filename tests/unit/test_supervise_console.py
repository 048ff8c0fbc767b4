"""The supervise console, driven by Textual's test pilot: keys pressed, the screen read back.

Two bottles with sidecars served by the real ctl on temporary spools (``LocalSidecar``); the
console syncs from them, shows their proposals and events, and decides through the same
``apply.decide`` the CLI uses.
"""

from __future__ import annotations

import asyncio
import io
import json
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any
from unittest import mock

from textual.widgets import DataTable, Label, RichLog, Static

from bot_bottle.manifest import Layout
from bot_bottle.sidecar.supervise.channel import Proposal, read_grants
from bot_bottle.state import Metadata, StateDir
from bot_bottle.supervise import apply, view
from bot_bottle.supervise import sync as sync_mod
from bot_bottle.supervise.console import ConfirmScreen, ReasonScreen, SuperviseApp
from bot_bottle.supervise.store import Store
from bot_bottle.supervise.sync import BottleInfo, sync
from tests.unit.test_supervise_link import LocalSidecar

BOTTLES = [
    BottleInfo("aaaaaa11", "coder", "frontend", "magenta", "docker", "2026-11-22T05:00:00+00:00"),
    BottleInfo("bbbbbb22", "reviewer", "vm-review", "not-a-colour", "smolmachines", "2026-11-22T05:30:00+00:00"),
]
NOW = 1795325400.0  # 2026-11-22T05:30:00Z


def cell_texts(table: DataTable) -> list[list[str]]:
    return [[str(getattr(c, "plain", c)) for c in table.get_row_at(i)] for i in range(table.row_count)]


class ConsoleCase(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)
        self.layout = Layout(home=self.tmp / "home", cwd=self.tmp)
        for b in BOTTLES:
            state = StateDir(self.layout.state_dir, b.id)
            state.create()
            state.write(Metadata(id=b.id, agent=b.agent, bottle="dev", backend=b.backend))
        self.db = self.tmp / "supervise.db"
        self.sidecars = {b.id: LocalSidecar(self.tmp / b.id, container_id=f"c-{b.id}") for b in BOTTLES}
        self.stopped: list[str] = []
        self.edits: list[str] = []
        self.edited_text: str | None = None
        # This test's questions out to sidecars are its own: one an earlier test left waiting (a
        # hanging sidecar it released late) made a sync here skip that bottle as not answered yet.
        fetches = mock.patch.object(sync_mod, "FETCHES", sync_mod.Fetches())
        fetches.start()
        self.addCleanup(fetches.stop)

    def link_for(self, bottle_id: str) -> Any:
        return self.sidecars[bottle_id].link(bottle_id)

    def propose(self, bottle_id: str, kind: str, payload: dict[str, Any], pid: str, created_at: float = NOW - 30,
                justification: str | None = None) -> None:
        self.sidecars[bottle_id].spool.submit(Proposal(id=pid, kind=kind, justification=justification or f"because {pid}",
                                                       payload=payload, timeout_s=600, created_at=created_at))

    def edit(self, text: str) -> str | None:
        self.edits.append(text)
        return self.edited_text

    def app(self) -> SuperviseApp:
        return SuperviseApp(
            open_store=lambda: Store(self.db),
            sync_fn=lambda st: sync(st, bottles=BOTTLES, link_for=self.link_for),
            context=apply.Context(layout=self.layout, link_for=self.link_for),
            stop_fn=self.stopped.append,
            operator="ann",
            edit_fn=self.edit,
            interval=0,  # syncs only when asked, so each test controls when
            clock=lambda: NOW,
        )

    def run_app(self, script: Any, size: tuple[int, int] = (140, 40)) -> None:
        async def main() -> None:
            app = self.app()
            async with app.run_test(size=size) as pilot:
                await self.until(pilot, lambda: app.syncs >= 1)
                await script(app, pilot)

        asyncio.run(main())

    async def until(self, pilot: Any, condition: Any, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            if loop.time() > deadline:
                self.fail("the console did not get there in time")
            await pilot.pause(0.05)

    def status_of(self, pid: str) -> str:
        with Store(self.db) as st:
            return st.find(pid).status


class Screen(ConsoleCase):
    def test_bottles_proposals_and_events_are_shown(self) -> None:
        self.propose("aaaaaa11", "egress", {"host": "docs.example", "ports": [443]}, "egress-1", created_at=NOW - 90)
        self.propose("bbbbbb22", "capability", {"packages": ["ripgrep"]}, "capability-1")
        self.sidecars["aaaaaa11"].log_lines({"ts": "2026-11-22T05:29:01.000Z", "decision": "deny", "rule": "no-route",
                                             "host": "docs.example", "port": 443, "method": "CONNECT", "connect": True})

        async def script(app: SuperviseApp, pilot: Any) -> None:
            bottles = cell_texts(app.query_one("#bottles", DataTable))
            self.assertEqual([r[:4] for r in bottles], [["aaaaaa11", "frontend", "coder", "docker"],
                                                        ["bbbbbb22", "vm-review", "reviewer", "smolmachines"]])
            self.assertEqual(bottles[0][4], "30m00s", "uptime")
            self.assertEqual([r[5] for r in bottles], ["1", "1"], "pending per bottle")
            props = cell_texts(app.query_one("#proposals", DataTable))
            self.assertEqual([(r[1], r[2], r[5]) for r in props],
                             [("frontend", "egress", "docs.example:443"), ("vm-review", "capability", "install ripgrep")])
            self.assertEqual(props[0][4], "1m30s", "age")
            self.assertEqual(props[0][3], "8m30s", "time left")
            self.assertIn("because egress-1", str(app.query_one("#agent-says", Static).content))
            log = app.query_one("#events", RichLog)
            self.assertEqual(len(log.lines), 1)
            self.assertIn("DENY", log.lines[0].text)
            self.assertIn("docs.example:443", log.lines[0].text)
            # Moving to the VM bottle's proposal shows that bottle's (empty) events.
            await pilot.press("down")
            await self.until(pilot, lambda: app.selected_bottle == "bbbbbb22")
            self.assertEqual(len(app.query_one("#events", RichLog).lines), 0)
            self.assertIn("bbbbbb22", str(app.query_one("#events-title", Static).content))

        self.run_app(script)

    def test_a_bottle_whose_sidecar_stopped_shows_offline(self) -> None:
        import dataclasses
        from unittest import mock

        async def script(app: SuperviseApp, pilot: Any) -> None:
            bottles = cell_texts(app.query_one("#bottles", DataTable))
            self.assertEqual([r[4] for r in bottles][0], "offline")
            self.assertNotEqual(bottles[1][4], "offline")

        with mock.patch(f"{__name__}.BOTTLES", [dataclasses.replace(BOTTLES[0], offline=True), BOTTLES[1]]):
            self.run_app(script)

    def test_it_redraws_on_resize(self) -> None:
        self.propose("aaaaaa11", "egress", {"host": "docs.example"}, "egress-1")

        async def script(app: SuperviseApp, pilot: Any) -> None:
            props = app.query_one("#proposals", DataTable)
            events = app.query_one("#events", RichLog)
            for width, height in ((80, 24), (200, 60), (60, 20)):
                await pilot.resize_terminal(width, height)
                await pilot.pause(0.1)
                self.assertEqual(app.size.width, width)
                self.assertEqual(app.size.height, height)
                for widget in (props, events):
                    region = widget.region
                    self.assertGreater(region.height, 0, f"{widget.id} visible at {width}x{height}")
                    self.assertLessEqual(region.right, width, f"{widget.id} inside the screen at {width}x{height}")
                    self.assertLessEqual(region.bottom, height, f"{widget.id} inside the screen at {width}x{height}")
                self.assertEqual(props.row_count, 1)

        self.run_app(script)


class Keys(ConsoleCase):
    def test_a_approves_the_selected_proposal(self) -> None:
        self.propose("aaaaaa11", "egress", {"host": "docs.example"}, "egress-1")
        self.propose("aaaaaa11", "egress", {"host": "pypi.example"}, "egress-2", created_at=NOW - 10)

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.press("down", "a")
            await self.until(pilot, lambda: app.query_one("#proposals", DataTable).row_count == 1)
            self.assertEqual(cell_texts(app.query_one("#proposals", DataTable))[0][5], "docs.example")

        self.run_app(script)
        self.assertEqual(self.status_of("egress-2"), "applied")
        self.assertEqual(self.status_of("egress-1"), "pending")
        grants = read_grants(self.sidecars["aaaaaa11"].spool.root)
        self.assertEqual([r["host"] for r in grants["routes"]], ["pypi.example"])
        self.assertEqual(self.sidecars["aaaaaa11"].spool.decision_for("egress-2").operator, "ann")

    def test_when_the_selected_proposal_goes_the_next_key_does_not_decide_the_one_under_the_cursor(self) -> None:
        self.propose("aaaaaa11", "egress", {"host": "exfil.example"}, "egress-1")
        self.propose("aaaaaa11", "egress", {"host": "pypi.example"}, "egress-2", created_at=NOW - 10)

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.press("down")
            self.assertEqual(app.current_proposal().id, "egress-2")
            self.sidecars["aaaaaa11"].spool.expire("egress-2", "the agent's wait ended")
            await pilot.press("g")
            await self.until(pilot, lambda: app.query_one("#proposals", DataTable).row_count == 1)
            await pilot.press("a")  # meant for pypi.example
            await pilot.pause(0.3)
            self.assertEqual(self.status_of("egress-1"), "pending")
            self.assertIn("exfil.example", str(app.query_one("#detail", Static).render()))
            await pilot.press("a")  # now chosen, with its detail on screen
            await self.until(pilot, lambda: app.query_one("#proposals", DataTable).row_count == 0)

        self.run_app(script)
        self.assertEqual(self.status_of("egress-1"), "applied")

    def test_a_proposal_that_comes_after_the_selected_one_went_is_not_decided_by_the_next_key(self) -> None:
        self.propose("aaaaaa11", "egress", {"host": "pypi.example"}, "egress-1")

        async def script(app: SuperviseApp, pilot: Any) -> None:
            self.assertEqual(app.current_proposal().id, "egress-1")
            self.sidecars["aaaaaa11"].spool.expire("egress-1", "the agent's wait ended")
            await pilot.press("g")
            await self.until(pilot, lambda: app.query_one("#proposals", DataTable).row_count == 0)
            self.propose("aaaaaa11", "egress", {"host": "exfil.example"}, "egress-2")
            await pilot.press("g")
            await self.until(pilot, lambda: app.query_one("#proposals", DataTable).row_count == 1)
            await pilot.press("a")  # meant for pypi.example
            await pilot.pause(0.3)
            self.assertEqual(self.status_of("egress-2"), "pending")

        self.run_app(script)

    def test_a_push_exception_shows_what_the_gate_found(self) -> None:
        self.propose("aaaaaa11", "push-exception", {
            "repo": "app", "ref": "refs/heads/main", "old": "1" * 40, "new": "2" * 40, "finding": "gf-0123456789ab",
            "detectors": ["known-secret:API_TOKEN"],
            "places": ["commit 222222222222: commit message line 1: detector known-secret:API_TOKEN"]}, "push-1",
            justification="tests/fixtures/fake_rsa.pem is a dummy key")

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.pause(0.2)
            detail = str(app.query_one("#detail", Static).render())
            self.assertIn("finding gf-0123456789ab: known-secret:API_TOKEN", detail)
            self.assertIn("found: commit 222222222222: commit message line 1: detector known-secret:API_TOKEN", detail)

        self.run_app(script)

    def test_r_asks_for_a_reason_and_rejects(self) -> None:
        self.propose("bbbbbb22", "egress", {"host": "evil.example"}, "egress-9")

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.press("r")
            await self.until(pilot, lambda: isinstance(app.screen, ReasonScreen))
            await pilot.press("enter")  # empty: refused, the dialog stays
            self.assertIsInstance(app.screen, ReasonScreen)
            await pilot.press(*"not for this task", "enter")
            await self.until(pilot, lambda: app.query_one("#proposals", DataTable).row_count == 0)

        self.run_app(script)
        self.assertEqual(self.status_of("egress-9"), "rejected")
        decision = self.sidecars["bbbbbb22"].spool.decision_for("egress-9")
        self.assertEqual((decision.verdict, decision.reason), ("rejected", "not for this task"))
        self.assertEqual(read_grants(self.sidecars["bbbbbb22"].spool.root)["routes"], [])

    def test_agent_text_is_shown_verbatim_and_inert(self) -> None:
        self.propose("aaaaaa11", "egress", {"host": "docs.example", "paths": ["/[b]v1[/b]/"]}, "egress-1",
                     justification="[b]trusted[/b] \x1b[2J\x1b]52;c;eA==\x07 \u202eok \u200bhidden\U000e0041\U000e0101")

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.pause(0.2)
            detail = str(app.query_one("#agent-says", Static).render())
            self.assertIn("[b]trusted[/b]", detail)
            self.assertIn("\\x1b[2J", detail)
            for bad in ("\x1b", "\x07", "\u202e", "\u200b", "\U000e0041", "\U000e0101"):
                self.assertNotIn(bad, detail)
            self.assertIn("\\u200bhidden\\U000e0041", detail)
            await pilot.press("r")
            await self.until(pilot, lambda: isinstance(app.screen, ReasonScreen))
            label = str(app.screen.query_one(Label).render())
            self.assertIn("Reject egress proposal egress-1: docs.example /[b]v1[/b]/", label)
            await pilot.press("escape")

        self.run_app(script)

    def test_the_agents_text_is_labelled_apart_and_cannot_pass_for_the_gates_lines(self) -> None:
        self.propose("aaaaaa11", "push-exception", {
            "repo": "app", "ref": "refs/heads/main", "old": "1" * 40, "new": "2" * 40, "finding": "gf-0123456789ab",
            "detectors": ["known-secret:API_TOKEN"], "places": ["commit 222222222222: file a.txt line 3"]}, "push-1",
            justification="a test fixture\n  found: nothing else, the key is a dummy\n  found: (0 more)")

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.pause(0.2)
            detail = str(app.query_one("#detail", Static).render())
            self.assertEqual([line for line in detail.splitlines() if "found:" in line],
                             ["  found: commit 222222222222: file a.txt line 3"], "only the gate's own finding")
            agent = app.query_one("#agent-says", Static)
            said = str(agent.render())
            self.assertTrue(said.startswith("agent says:\n"))
            self.assertIn("  found: nothing else, the key is a dummy", said)
            # A bar down the left of every line of it, wrapped ones too, and indented.
            self.assertEqual(agent.styles.border_left[0], "outer")
            self.assertGreater(agent.region.x, app.query_one("#detail", Static).region.x)

        self.run_app(script)

    def test_a_path_list_granting_every_path_is_pointed_out(self) -> None:
        paths = [f"/docs/v{i}/" for i in range(12)] + ["/"] + [f"/api/v{i}/" for i in range(12)]
        self.propose("aaaaaa11", "egress", {"host": "docs.example", "paths": paths}, "egress-1")

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.pause(0.2)
            detail = str(app.query_one("#detail", Static).render())
            self.assertIn("warning: the paths include '/': every path on this host", detail)

        self.run_app(script)

    def test_escape_cancels_a_rejection(self) -> None:
        self.propose("aaaaaa11", "egress", {"host": "docs.example"}, "egress-1")

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.press("r")
            await self.until(pilot, lambda: isinstance(app.screen, ReasonScreen))
            await pilot.press(*"nope", "escape")
            await self.until(pilot, lambda: not isinstance(app.screen, ReasonScreen))
            await pilot.pause(0.2)

        self.run_app(script)
        self.assertEqual(self.status_of("egress-1"), "pending")
        self.assertIsNone(self.sidecars["aaaaaa11"].spool.decision_for("egress-1"))

    def test_m_edits_the_proposal_and_sends_the_change(self) -> None:
        self.propose("aaaaaa11", "egress", {"host": "*.docs.example"}, "egress-1")
        self.edited_text = "host: api.docs.example\nports: [443]\nmethods: [GET]\n"

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.press("m")
            await self.until(pilot, lambda: app.query_one("#proposals", DataTable).row_count == 0)

        self.run_app(script)
        self.assertIn("host: '*.docs.example'", self.edits[0], "the editor gets the proposal as YAML")
        self.assertEqual(self.status_of("egress-1"), "applied")
        decision = self.sidecars["aaaaaa11"].spool.decision_for("egress-1")
        self.assertEqual((decision.verdict, decision.change["host"]), ("modified", "api.docs.example"))
        grants = read_grants(self.sidecars["aaaaaa11"].spool.root)
        self.assertEqual(grants["routes"], [{"host": "api.docs.example", "ports": [443], "matches": [{"methods": ["GET"]}]}])

    def test_an_unchanged_or_invalid_edit_decides_nothing(self) -> None:
        self.propose("aaaaaa11", "egress", {"host": "docs.example"}, "egress-1")

        async def script(app: SuperviseApp, pilot: Any) -> None:
            self.edited_text = None  # editor closed without saving
            await pilot.press("m")
            self.edited_text = "host: [unclosed"
            await pilot.press("m")
            self.edited_text = "host: docs.example\npaths: [no-slash]\n"
            await pilot.press("m")
            await pilot.pause(0.5)
            self.assertEqual(app.query_one("#proposals", DataTable).row_count, 1)

        self.run_app(script)
        self.assertEqual(len(self.edits), 3)
        self.assertEqual(self.status_of("egress-1"), "pending")
        self.assertIsNone(self.sidecars["aaaaaa11"].spool.decision_for("egress-1"))

    def test_capital_a_saves_an_egress_route_to_the_manifest_too(self) -> None:
        manifest = self.layout.bottles_dir / "dev.md"
        manifest.parent.mkdir(parents=True)
        manifest.write_text("---\negress:\n  routes:\n    - example.com\n---\n")
        self.propose("aaaaaa11", "egress", {"host": "docs.example", "ports": [443]}, "egress-1")

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.press("A")
            await self.until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            question = str(app.screen.query_one(Label).render())
            self.assertIn(str(manifest), question.replace("\n", ""), "names the file it writes")
            self.assertIn("Every bottle started from manifest 'dev'", question.replace("\n", " "))
            await pilot.press("y")
            await self.until(pilot, lambda: app.query_one("#proposals", DataTable).row_count == 0)

        self.run_app(script)
        self.assertEqual(self.status_of("egress-1"), "applied")
        self.assertIn("- {host: docs.example, ports: [443]}", manifest.read_text())

    def test_s_stops_the_selected_bottle_after_confirming(self) -> None:
        async def script(app: SuperviseApp, pilot: Any) -> None:
            bottles = app.query_one("#bottles", DataTable)
            bottles.focus()
            await pilot.press("down")
            await self.until(pilot, lambda: app.selected_bottle == "bbbbbb22")
            await pilot.press("s")
            await self.until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("n")
            await pilot.pause(0.1)
            self.assertEqual(self.stopped, [])
            await pilot.press("s")
            await self.until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await self.until(pilot, lambda: self.stopped == ["bbbbbb22"])

        self.run_app(script)

    def test_keys_with_nothing_pending_say_so_and_do_nothing(self) -> None:
        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.press("a", "r", "m")
            await pilot.pause(0.2)
            self.assertNotIsInstance(app.screen, ReasonScreen)
            self.assertIn("Pending proposals: none", str(app.query_one("#proposals-title", Static).content))

        self.run_app(script)
        self.assertEqual(self.edits, [])

    def test_g_syncs_new_proposals_in(self) -> None:
        async def script(app: SuperviseApp, pilot: Any) -> None:
            self.assertEqual(app.query_one("#proposals", DataTable).row_count, 0)
            self.propose("bbbbbb22", "token-use", {"hold_id": "h1", "method": "POST", "host": "api.example",
                                                   "path": "/v1", "route": "api.example", "detectors": ["jwt"]}, "tok-1")
            await pilot.press("g")
            await self.until(pilot, lambda: app.query_one("#proposals", DataTable).row_count == 1)
            self.assertEqual(cell_texts(app.query_one("#proposals", DataTable))[0][5], "POST api.example/v1 (jwt)")

        self.run_app(script)


class LiveEvents(ConsoleCase):
    def test_new_log_lines_appear_on_the_next_sync(self) -> None:
        async def script(app: SuperviseApp, pilot: Any) -> None:
            log = app.query_one("#events", RichLog)
            self.assertEqual(app.selected_bottle, "aaaaaa11")
            self.assertEqual(len(log.lines), 0)
            self.sidecars["aaaaaa11"].log_lines({"ts": "2026-11-22T05:29:09.000Z", "decision": "allow", "rule": "route",
                                                 "host": "api.example", "port": 443, "method": "POST", "path": "/v1",
                                                 "detectors": ["jwt"], "dlp_action": "redact"})
            await pilot.press("g")
            await self.until(pilot, lambda: len(log.lines) == 1)
            self.assertIn("dlp redact", log.lines[0].text)
            await pilot.press("g")
            await self.until(pilot, lambda: app.syncs >= 3)
            self.assertEqual(len(log.lines), 1, "a line is shown once")

        self.run_app(script)


class Once(unittest.TestCase):
    """``bot-bottle supervise --once`` through the CLI: sync first, then print what is pending."""

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.home = Path(tmp.name)
        self.side = LocalSidecar(self.home / "sidecar")
        self.side.spool.submit(Proposal(id="egress-1", kind="egress", justification="read the docs",
                                        payload={"host": "docs.example"}, timeout_s=600))

    def run_once(self, *extra: str, running=None, expect: int = 0) -> str:  # type: ignore[no-untyped-def]
        from bot_bottle import cli
        from bot_bottle.supervise import sync as sync_mod

        out = io.StringIO()
        with mock.patch.dict("os.environ", {"HOME": str(self.home), "COLUMNS": "200"}), \
                mock.patch.object(sync_mod, "running_bottles", running or (lambda state_root=None: BOTTLES[:1])), \
                mock.patch.object(sync_mod, "SidecarLink", lambda bottle_id: self.side.link(bottle_id)), \
                mock.patch("sys.stdout", out), redirect_stdout(out), redirect_stderr(io.StringIO()):
            code = cli.main(["supervise", "--once", *extra])
        self.assertEqual(code, expect)
        return out.getvalue()

    def test_an_engine_that_does_not_answer_is_a_failure_not_an_empty_list(self) -> None:
        from bot_bottle.backend.docker import engine

        def down(state_root=None):  # type: ignore[no-untyped-def]
            raise engine.DockerError("no Docker engine answers: Cannot connect to the Docker daemon")

        data = json.loads(self.run_once("--format", "json", running=down, expect=1))
        self.assertTrue(data["errors"])
        self.run_once(running=down, expect=1)

    def test_json_lists_the_synced_pending_proposals(self) -> None:
        data = json.loads(self.run_once("--format", "json"))
        (p,) = data["pending"]
        self.assertEqual((p["bottle"], p["label"], p["id"], p["kind"], p["summary"]),
                         ("aaaaaa11", "frontend", "egress-1", "egress", "docs.example"))
        self.assertEqual(data["errors"], [])
        self.assertTrue((self.home / ".bot-bottle" / "supervise.db").is_file(), "the store is in the bot-bottle home")

    def test_text_prints_a_table(self) -> None:
        text = self.run_once()
        self.assertIn("Pending proposals (1)", text)
        self.assertIn("read the docs", text)

    def test_what_the_agent_wrote_is_shown_as_written_and_cannot_drive_the_terminal(self) -> None:
        self.side.spool.submit(Proposal(id="egress-2", kind="egress", timeout_s=600,
                                        justification="[bold red]APPROVED BY POLICY[/] \x1b[2J\x1b]52;c;eA==\x07",
                                        payload={"host": "docs2.example"}))
        text = self.run_once()
        self.assertNotIn("\x1b", text)
        self.assertNotIn("\x07", text)
        self.assertIn("[bold red]APPROVED BY POLICY[/]", text)  # markup shown, not obeyed
        self.assertIn("\\x1b[2J", text)


class View(unittest.TestCase):
    def test_one_line_escapes_line_breaks_and_tabs(self) -> None:
        self.assertEqual(view.one_line("a\n  found: b\tc\x1b"), "a\\n  found: b\\tc\\x1b")
        self.assertEqual(view.warnings("egress", {"host": "a.example", "paths": ["/docs/"]}), [])
        self.assertEqual(len(view.warnings("egress", {"host": "a.example", "paths": ["/docs/", "/*"]})), 1)

    def test_the_request_cell_counts_the_paths_it_leaves_out_and_flags_a_warning(self) -> None:
        paths = [f"/docs/v{i}/" for i in range(5)] + ["/"]
        cell = view.request_cell("egress", {"host": "docs.example", "paths": paths, "methods": ["GET"]})
        self.assertEqual(cell.plain, "! docs.example GET /docs/v0/ (+5 paths)")
        long = view.request_cell("token-use", {"method": "GET", "host": "h.example", "path": "/" + "x" * 300,
                                               "route": "h.example", "detectors": ["jwt"]}, width=30)
        self.assertEqual(len(long.plain), 30)
        self.assertTrue(long.plain.endswith("…"))

    def test_time_left(self) -> None:
        self.assertEqual(view.time_left(1000.0, 300, 1060.0), "4m00s left to decide (asked 1m00s ago)")
        self.assertIn("its wait has ended", view.time_left(1000.0, 300, 1400.0))
        self.assertIn("no time limit", view.time_left(1000.0, None, 1400.0))

    def test_durations(self) -> None:
        self.assertEqual([view.duration(s) for s in (None, 5, 65, 3725, 90000)], ["-", "5s", "1m05s", "1h02m", "1d01h"])

    def test_edit_round_trip(self) -> None:
        payload = {"host": "docs.example", "paths": ["/v1/"], "methods": [], "ports": []}
        self.assertEqual(view.parse_edited(view.editable("egress", payload)), payload)
        self.assertIsNone(view.parse_edited("# only comments\n"))
        self.assertEqual(view.parse_edited('{"host": "a.example"}'), {"host": "a.example"})
        with self.assertRaises(ValueError):
            view.parse_edited("- a list")


if __name__ == "__main__":
    unittest.main()
