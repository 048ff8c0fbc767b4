"""The supervise plane's remaining gaps: router names in a route host, a push carrying the
bottle's own secret, proposals forged by an account in the sidecar, a bounded catch-up of the
egress log, and what a removed bottle leaves in the database."""

from __future__ import annotations

import io
import json
import os
import tempfile
import unittest
from pathlib import Path
from typing import Any

from textual.widgets import Static

from bot_bottle.sidecar.supervise import ctl, server
from bot_bottle.sidecar.supervise.channel import (
    PROXY_WRITER,
    SERVER_WRITER,
    Decision,
    Proposal,
    Spool,
    forgery,
    held_request_proposal,
    read_grants,
    record_push_findings,
)
from bot_bottle.supervise import view
from bot_bottle.supervise.console import SuperviseApp
from bot_bottle.supervise.link import refused_lines
from tests.unit._waits_dec15k import until_shown
from tests.unit.test_supervise_console import ConsoleCase
from tests.unit.test_supervise_console_screen import Case, screen_text

SHA_A = "a" * 40
SHA_B = "b" * 40
FINDING = "gf-0123456789ab"


class RouterAndLanNames(unittest.TestCase):
    """A name the operator's router answers for itself leads into the operator's LAN, like a
    private address does: the console says so before the operator approves a route to it."""

    def test_router_names_are_flagged(self) -> None:
        for host in ("fritz.box", "FRITZ.BOX.", "*.fritz.box", "speedport.ip", "routerlogin.net",
                     "www.routerlogin.net", "tplinkwifi.net", "easy.box"):
            with self.subTest(host=host):
                (warning,) = view.host_warnings(host)
                self.assertIn("own network", warning)

    def test_local_network_names_are_flagged(self) -> None:
        for host in ("router.lan", "nas.local", "printer.home.arpa", "db.internal", "pc.localdomain", "router",
                     "box.ip"):
            with self.subTest(host=host):
                self.assertEqual(len(view.host_warnings(host)), 1)

    def test_names_that_only_look_alike_are_not(self) -> None:
        for host in ("notfritz.box", "fritz.boxes.example", "myrouterlogin.net", "example.com", "ip.example"):
            with self.subTest(host=host):
                self.assertEqual(view.host_warnings(host), [])

    def test_the_request_cell_flags_it(self) -> None:
        self.assertTrue(view.request_cell("egress", {"host": "fritz.box", "ports": [443]}).plain.startswith("! "))


class PushCarryingTheBottlesOwnSecret(Case):
    """The git-gate held a push because it holds ``known-secret:NAME``; the agent asks for an
    exception calling it a test fixture. The screen says it is the bottle's own secret."""

    PAYLOAD = {"repo": "app", "ref": "refs/heads/main", "old": "1" * 40, "new": "2" * 40, "finding": FINDING,
               "detectors": ["aws-access-key", "known-secret:PROD_DB_PASSWORD"],
               "places": ["commit 222222222222: file tests/fixtures/db.env line 3: detector known-secret:PROD_DB_PASSWORD"]}

    def test_the_warning_names_the_secret_and_where_it_goes(self) -> None:
        (warning,) = view.warnings("push-exception", self.PAYLOAD)
        self.assertIn("bottle's own secret PROD_DB_PASSWORD", warning)
        self.assertIn("no test fixture", warning)
        self.assertIn("app's remote", warning)
        self.assertEqual(view.warnings("push-exception", {**self.PAYLOAD, "detectors": ["aws-access-key"]}), [])
        self.assertTrue(view.request_cell("push-exception", self.PAYLOAD).plain.startswith("! "))

    def test_at_80x24_the_warning_and_what_approving_grants_are_in_sight(self) -> None:
        self.propose("aaaaaa11", "push-exception", self.PAYLOAD, "push-1",
                     justification="tests/fixtures/db.env is a test fixture, not a real password")

        async def script(app: SuperviseApp, pilot: Any) -> None:
            shown = ("warning: the push holds the value of the bottle's own secret PROD_DB_PASSWORD",
                     "grants: this one push of app refs/heads/main", "9m30s left to decide")
            await until_shown(pilot, lambda: all(part in " ".join(screen_text(app).split()) for part in shown))
            text = " ".join(screen_text(app).split())
            self.assertIn("warning: the push holds the value of the bottle's own secret PROD_DB_PASSWORD", text)
            self.assertIn("grants: this one push of app refs/heads/main", text)
            self.assertIn("9m30s left to decide", text)

        self.drive(script)

    def test_reading_the_detail_gives_it_the_events_lines(self) -> None:
        self.propose("aaaaaa11", "push-exception", self.PAYLOAD, "push-1")
        heights: list[int] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.pause(0.2)
            heights.append(app.query_one("#detail-pane").size.height)
            await pilot.press("enter")
            await self.until(pilot, lambda: app.focused is app.query_one("#detail-pane"))
            await pilot.pause(0.1)
            heights.append(app.query_one("#detail-pane").size.height)
            await pilot.press("escape")
            await pilot.pause(0.1)
            heights.append(app.query_one("#detail-pane").size.height)

        self.drive(script)
        shown, reading, back = heights
        self.assertGreater(reading, shown)
        self.assertEqual(back, shown)

    def test_an_encoded_secret_can_be_asked_about(self) -> None:
        """The gate labels an encoded find ``known-secret:NAME (base64)``: the ask carried that
        label as a detector, which no proposal may hold, so such a push could never be asked about."""
        with tempfile.TemporaryDirectory() as tmp:
            spool = Spool(tmp)
            spool.ensure()
            record_push_findings(tmp, FINDING, "app", [{"ref": "refs/heads/x", "old": SHA_A, "new": SHA_B}],
                                 ["known-secret:GH_TOKEN (base64)", "known-secret:GH_TOKEN"],
                                 ["commit aaaaaaaaaaaa: file a.txt line 3: detector known-secret:GH_TOKEN (base64)"])
            proposal = server.push_exception_proposal(spool, "app", "refs/heads/x", SHA_A, SHA_B,
                                                      "a fixture", FINDING)
        self.assertEqual(proposal.payload["detectors"], ["known-secret:GH_TOKEN"])
        self.assertIn("(base64)", proposal.payload["places"][0])
        self.assertIn("GH_TOKEN", view.warnings("push-exception", proposal.payload)[0])


class ForgedProposals(unittest.TestCase):
    """Every daemon account in the sidecar may write a proposal file. One the agent reached (a
    flaw in the MCP server or its SDK) could write one that reads as the proxy's held request, or
    an ask whose request or findings are not what the proxy or the gate saw. The ctl, which runs
    as root, knows each file's writer: it lists only what each writer may write."""

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name) / "spool"
        self.spool = Spool(self.root)
        self.spool.ensure()
        self.writers: dict[str, str] = {}

    def write(self, proposal: Proposal, writer: str) -> Proposal:
        self.spool.submit(proposal)
        self.writers[proposal.id] = writer
        return proposal

    def held(self) -> Proposal:
        return self.write(held_request_proposal("POST", "api.example", "/v1", "api.example", ["github-token"], 60),
                          PROXY_WRITER)

    def pending(self) -> dict[str, Any]:
        return ctl.do_pending(self.spool, self.writers.get)

    def test_the_proxys_held_request_and_the_agents_ask_about_it_are_listed(self) -> None:
        held = self.held()
        ask = self.write(server.token_use_proposal(self.spool, held.id, "it is my own token"), SERVER_WRITER)
        out = self.pending()
        self.assertEqual({p["id"] for p in out["proposals"]}, {held.id, ask.id})
        self.assertNotIn("refused", out)

    def test_a_held_request_the_mcp_server_wrote_is_refused_and_expired(self) -> None:
        forged = self.write(held_request_proposal("POST", "evil.example", "/", "api.github.com", ["aws-access-key"], 60),
                            SERVER_WRITER)
        out = self.pending()
        self.assertEqual(out["proposals"], [])
        (refused,) = out["refused"]
        self.assertEqual(refused["id"], forged.id)
        self.assertIn("not by the proxy", refused["why"])
        self.assertEqual(self.spool.decision_for(forged.id).verdict, "expired")
        self.assertNotIn("refused", self.pending(), "reported once")

    def test_an_ask_whose_request_is_not_the_proxys_is_refused(self) -> None:
        held = self.held()
        payload = dict(held.payload, hold_id=held.id, route="api.github.com", detectors=["aws-access-key"])
        forged = self.write(Proposal.new("token-use", payload, "please", 60), SERVER_WRITER)
        out = self.pending()
        self.assertEqual([p["id"] for p in out["proposals"]], [held.id])
        self.assertEqual([r["id"] for r in out["refused"]], [forged.id])
        self.assertIn("not the one the proxy held", out["refused"][0]["why"])

    def test_an_ask_naming_a_held_request_the_proxy_never_wrote_is_refused(self) -> None:
        fake = self.write(held_request_proposal("POST", "x.example", "/", "x.example", ["github-token"], 60),
                          SERVER_WRITER)
        ask = self.write(Proposal.new("token-use", dict(fake.payload), "please", 60), SERVER_WRITER)
        self.assertIn(ask.id, [r["id"] for r in self.pending()["refused"]])

    def test_an_ask_naming_an_earlier_ask_is_refused_by_the_server(self) -> None:
        held = self.held()
        ask = self.write(server.token_use_proposal(self.spool, held.id, "mine"), SERVER_WRITER)
        with self.assertRaises(server.ToolInputError):
            server.token_use_proposal(self.spool, ask.id, "again")

    def test_a_push_exception_whose_findings_are_not_the_gates_is_refused(self) -> None:
        record_push_findings(self.root, FINDING, "app", [{"ref": "refs/heads/x", "old": SHA_A, "new": SHA_B}],
                             ["known-secret:DB_PASSWORD"], ["commit aaaaaaaaaaaa: file a line 1: detector known-secret:DB_PASSWORD"])
        honest = self.write(server.push_exception_proposal(self.spool, "app", "refs/heads/x", SHA_A, SHA_B, "x", FINDING),
                            SERVER_WRITER)
        hidden = dict(honest.payload, detectors=["aws-access-key"], places=["commit aaaaaaaaaaaa: a fixture"])
        forged = self.write(Proposal.new("push-exception", hidden, "a fixture", 60), SERVER_WRITER)
        unknown = self.write(Proposal.new("push-exception", dict(honest.payload, finding="gf-ffffffffffff"), "x", 60),
                             SERVER_WRITER)
        out = self.pending()
        self.assertEqual([p["id"] for p in out["proposals"]], [honest.id])
        self.assertEqual({r["id"] for r in out["refused"]}, {forged.id, unknown.id})

    def test_an_ask_the_proxy_wrote_is_refused(self) -> None:
        forged = self.write(Proposal.new("egress", {"host": "docs.example"}, "x", 60), PROXY_WRITER)
        self.assertEqual([r["id"] for r in self.pending()["refused"]], [forged.id])

    def test_root_is_the_ctls_own_account(self) -> None:
        """No daemon can make a root file; the sidecar's own tests write proposals as root."""
        held = self.write(held_request_proposal("POST", "a.example", "/", "a.example", ["github-token"], 60), "root")
        ask = self.write(server.token_use_proposal(self.spool, held.id, "mine"), SERVER_WRITER)
        self.assertEqual({p["id"] for p in self.pending()["proposals"]}, {held.id, ask.id})

    def test_a_spool_outside_the_sidecar_image_is_one_accounts(self) -> None:
        self.spool.submit(held_request_proposal("POST", "a.example", "/", "a.example", ["github-token"], 60))
        self.assertEqual(len(ctl.do_pending(self.spool)["proposals"]), 1)
        self.assertNotIn("refused", ctl.do_pending(self.spool))

    def test_in_a_shared_spool_the_file_owner_is_the_writer(self) -> None:
        """A proposal written by an account that is neither the proxy's nor the MCP server's (nor
        root, the ctl's own): in a spool shared like the sidecar image's, the ctl refuses it, and
        will not decide it."""
        os.chmod(self.root, 0o2750)
        proposal = self.spool.submit(Proposal.new("egress", {"host": "docs.example"}, "x", 60))
        if os.geteuid() == 0:  # root's own file would be the ctl's: make it another account's
            os.chown(self.spool.proposals_dir / f"{proposal.id}.json", 4242, -1)
        self.assertIsNotNone(forgery(self.spool, proposal))
        stdout = io.StringIO()
        code = ctl.main(["decide", "--root", str(self.root)],
                        io.StringIO(json.dumps({"decision": Decision(proposal.id, "approved").to_dict(),
                                                "grant": {"kind": "route", "route": {"host": "docs.example"}}})),
                        stdout)
        self.assertEqual(code, 1)
        self.assertIn("refused", json.loads(stdout.getvalue())["error"])
        self.assertEqual(read_grants(self.root)["routes"], [])
        out = ctl.do_pending(self.spool)
        self.assertEqual(out["proposals"], [])
        self.assertEqual([r["id"] for r in out["refused"]], [proposal.id])

    def test_the_writer_names_are_the_sidecars_accounts(self) -> None:
        from bot_bottle.sidecar import init

        self.assertEqual((PROXY_WRITER, SERVER_WRITER), (init.PROXY_ACCOUNT, init.SUPERVISE_ACCOUNT))


class RefusalsReachTheOperator(ConsoleCase):
    """What a sidecar refused is an error on the status line and an audit row that stays."""

    def test_refused_lines_are_one_printable_line_each_and_bounded(self) -> None:
        lines = refused_lines("aaaaaa11", [{"id": "p-1\n[ok]", "kind": "token-use", "why": "forged\x1b[2J"}] * 25)
        self.assertEqual(len(lines), 21)
        self.assertNotIn("\n", lines[0])
        self.assertNotIn("\x1b", lines[0])
        self.assertIn("refused 5 more", lines[-1])
        self.assertEqual(refused_lines("aaaaaa11", "nonsense"), [])

    def test_a_sync_reports_and_audits_a_refusal(self) -> None:
        from bot_bottle.supervise.store import Store
        from bot_bottle.supervise.sync import sync
        from tests.unit.test_supervise_console import BOTTLES

        side = self.sidecars["aaaaaa11"]
        forged = held_request_proposal("POST", "evil.example", "/", "api.github.com", ["aws-access-key"], 60)
        side.spool.submit(forged)
        os.chmod(side.spool.root, os.stat(side.spool.root).st_mode | 0o2000)  # shared, as in the sidecar image
        if os.geteuid() == 0:  # root's own file would be the ctl's: make it another account's
            os.chown(side.spool.proposals_dir / f"{forged.id}.json", 4242, -1)
        with Store(self.db) as st:
            report = sync(st, bottles=BOTTLES, link_for=self.link_for)
            self.assertEqual(st.pending(), [])
            audit = [r for r in st.audit_rows(bottle_id="aaaaaa11") if r.action == "refuse"]
        self.assertTrue(any(forged.id in e for e in report.errors), report.errors)
        self.assertEqual(len(audit), 1)
        self.assertIn(forged.id, audit[0].reason)



class BoundedCatchUp(ConsoleCase):
    """A console that was closed while a bottle logged a lot catches up over several syncs: one
    sync reads a bounded part of the log (it read up to 20 MiB per bottle), and every line still
    arrives, once."""

    LINES = 2000  # of about 2.6 KiB each: about 5 MiB of log

    def test_a_large_backlog_is_read_over_several_syncs_without_losing_a_line(self) -> None:
        from bot_bottle.supervise import sync as sync_mod
        from bot_bottle.supervise.store import Store
        from tests.unit.test_supervise_console import BOTTLES

        side = self.sidecars["aaaaaa11"]
        side.log_lines(*({"ts": f"t{i:05d}", "event": "egress", "host": "docs.example", "pad": "x" * 2600}
                         for i in range(self.LINES)))
        size = side.log.stat().st_size
        imported, calls = [], []
        with Store(self.db, max_events=self.LINES) as st:
            for _ in range(10):
                before = len(side.calls)
                report = sync_mod.sync(st, bottles=BOTTLES[:1], link_for=self.link_for)
                calls.append(sum(1 for argv in side.calls[before:] if argv[-1] == "events"))
                imported.append(report.new_events)
                if sum(imported) >= self.LINES:
                    break
            stamps = [e.record["ts"] for e in st.events("aaaaaa11", limit=self.LINES + 10)]
        self.assertLess(imported[0], self.LINES, "the first sync did not read it all")
        self.assertGreater(len(imported), 2)
        per_sync = sync_mod.MAX_EVENT_BYTES_PER_SYNC
        self.assertLessEqual(imported[0] * 2600, per_sync, "at most the budget")
        self.assertTrue(all(n <= 2 for n in calls), calls)
        self.assertLess(per_sync, size)
        self.assertEqual(sorted(stamps), [f"t{i:05d}" for i in range(self.LINES)], "every line, once")


class RemovedBottlesAreForgotten(ConsoleCase):
    """A bottle removed (not preserved) left its events and terminal entries in supervise.db
    for good: nothing pruned them. A sync with the state root forgets a bottle that neither runs
    nor has a state folder; a preserved bottle keeps its (it can be resumed)."""

    def test_a_removed_bottles_events_and_terminal_entries_go(self) -> None:
        from bot_bottle.state import StateDir
        from bot_bottle.supervise.store import Store
        from bot_bottle.supervise.sync import sync

        state_root = self.tmp / "state"
        kept = "cccccc33"
        StateDir(state_root, kept).path.mkdir(parents=True)
        (StateDir(state_root, kept).metadata_path).write_text("{}", encoding="utf-8")
        with Store(self.db) as st:
            for bottle in ("dddddd44", kept):
                st.record_terminal(bottle, {"osc52 clipboard write": 1})
                st.import_events(bottle, "c-old", [(0, {"ts": "t", "event": "egress"})], next_offset=10)
            st.add_proposal("dddddd44", Proposal.new("egress", {"host": "a.example"}, "x", 60).to_dict())
            report = sync(st, bottles=[], state_root=state_root, link_for=self.link_for)
            self.assertEqual(st.terminal_events("dddddd44"), [])
            self.assertEqual(st.events("dddddd44"), [])
            self.assertEqual(st.event_cursors("dddddd44"), {})
            self.assertEqual(report.forgotten, ["dddddd44"])
            self.assertEqual(len(st.proposals(bottle_id="dddddd44")), 1, "its proposals and audit stay")
            self.assertEqual(len(st.terminal_events(kept)), 1, "a preserved bottle keeps its entries")
            self.assertEqual(len(st.events(kept)), 2)

    def test_a_running_bottle_is_never_forgotten(self) -> None:
        from bot_bottle.supervise.store import Store
        from bot_bottle.supervise.sync import sync
        from tests.unit.test_supervise_console import BOTTLES

        with Store(self.db) as st:
            st.record_terminal("aaaaaa11", {"osc52 clipboard write": 1})
            report = sync(st, bottles=BOTTLES, state_root=self.tmp / "no-state-here", link_for=self.link_for)
            self.assertEqual(report.forgotten, [])
            self.assertEqual(len(st.terminal_events("aaaaaa11")), 1)

    def test_without_a_state_root_nothing_is_forgotten(self) -> None:
        from bot_bottle.supervise.store import Store
        from bot_bottle.supervise.sync import sync

        with Store(self.db) as st:
            st.record_terminal("dddddd44", {"osc52 clipboard write": 1})
            sync(st, bottles=[], link_for=self.link_for)
            self.assertEqual(len(st.terminal_events("dddddd44")), 1)


if __name__ == "__main__":
    unittest.main()
