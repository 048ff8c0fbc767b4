"""What the operator reads of an agent's proposal is what approving grants: a path spelled with
lookalike or right-to-left letters is shown escaped and pointed out (the console's detail and
table, ``--once``), while plain paths read as before. And two damaged-row leftovers of the store:
a log cursor holding bytes that are not UTF-8 leaves only that log to be read again (the others
read on), and an audit row of a type bot-bottle never writes is named, not returned as if whole."""

from __future__ import annotations

import sqlite3
import tempfile
import unittest
from pathlib import Path
from typing import Any

from bot_bottle.cli.logs import format_text
from bot_bottle.supervise import view
from textual.widgets import Label

from bot_bottle.supervise.console import ConfirmScreen, ReasonScreen, SuperviseApp
from bot_bottle.supervise.store import AuditEntry, DamagedRow, Store
from bot_bottle.supervise.sync import SyncReport, _cursors
from tests.unit.test_supervise_console_screen import Case, screen_text

BOTTLE = "aaaaaa11"
HEBREW_PATH = "/\u05d0\u05d1/1337/api.github.com"  # reorders around its digits in a bidi terminal
CYRILLIC_PATH = "/repos/my\u043erg/app/*"  # "myorg" with a Cyrillic o


def egress(*paths: str, host: str = "api.github.com") -> dict[str, Any]:
    return {"host": host, "paths": list(paths), "methods": ["GET"], "ports": [443]}


class PathsAsSpelled(unittest.TestCase):
    def test_a_lookalike_path_is_shown_escaped_in_every_line_of_the_proposal(self) -> None:
        payload = egress(CYRILLIC_PATH)
        for line in (view.summary("egress", payload), view.grants("egress", payload),
                     view.request_cell("egress", payload, 60).plain):
            self.assertIn("/repos/my\\u043erg/app/*", line)
            self.assertNotIn("\u043e", line)

    def test_a_right_to_left_path_is_escaped_and_pointed_out(self) -> None:
        payload = egress("/docs/", HEBREW_PATH)
        warnings = view.warnings("egress", payload)
        self.assertEqual(len(warnings), 1)
        self.assertIn("/\\u05d0\\u05d1/1337/api.github.com has characters that are not ASCII", warnings[0])
        self.assertIn("U+05D0 HEBREW LETTER ALEF", warnings[0])
        self.assertTrue(view.request_cell("egress", payload, 60).plain.startswith("! "))
        self.assertNotIn("\u05d0", view.summary("egress", payload))

    def test_several_such_paths_are_said_once(self) -> None:
        warnings = view.warnings("egress", egress(CYRILLIC_PATH, HEBREW_PATH))
        self.assertEqual(len(warnings), 1)
        self.assertIn("(and 1 more like it)", warnings[0])

    def test_a_held_requests_path_is_escaped_and_pointed_out(self) -> None:
        payload = {"route": "api.github.com", "method": "POST", "host": "api.github.com", "path": HEBREW_PATH,
                   "detectors": ["github-pat"]}
        self.assertIn("api.github.com/\\u05d0\\u05d1/1337", view.summary("token-use", payload))
        self.assertTrue(any("the request /\\u05d0" in w for w in view.warnings("token-use", payload)))

    def test_plain_paths_read_as_before_and_warn_of_nothing(self) -> None:
        # Look-alikes of the ones above that are all ASCII: percent-encoded letters, digits, '*'.
        payload = egress("/repos/myorg/app/*", "/%D7%90%D7%91/1337/", "/wiki/Z%C3%BCrich")
        self.assertEqual(view.warnings("egress", payload), [])
        self.assertEqual(view.summary("egress", payload),
                         "api.github.com:443 GET /repos/myorg/app/* /%D7%90%D7%91/1337/ /wiki/Z%C3%BCrich")
        self.assertFalse(view.request_cell("egress", payload, 60).plain.startswith("!"))

    def test_the_once_record_carries_the_escaped_summary_and_the_warning(self) -> None:
        from bot_bottle.supervise.store import ProposalRow
        row = ProposalRow(key=1, bottle_id=BOTTLE, id="e1", kind="egress", payload=egress(CYRILLIC_PATH),
                          justification="route: api.github.com /repos/myorg/app/*", timeout_s=600.0,
                          status="pending", created_at=0.0, imported_at=0.0, updated_at=0.0)
        record = view.proposal_record(row, now=10.0)
        self.assertIn("my\\u043erg", record["summary"])
        self.assertEqual(len(record["warnings"]), 1)


class ConsoleShowsTheTarget(Case):
    def test_the_detail_and_table_show_the_path_escaped_with_its_warning(self) -> None:
        self.propose(BOTTLE, "egress", egress(HEBREW_PATH), "e-rtl",
                     justification="APPROVED by policy\n  grants: api.github.com /repos/myorg/app/")
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.pause(0.2)
            seen.append(screen_text(app))

        self.drive(script, size=(160, 40))
        screen = seen[0]
        # Written as it reads only where the warning quotes it: nowhere else above the agent's words.
        above = screen.split("agent says")[0].replace("'/\u05d0\u05d1/1337/api.github.com'", "")
        self.assertNotIn("\u05d0", above)
        asks = next(line for line in screen.splitlines() if "asks:" in line)
        self.assertIn("/\\u05d0\\u05d1/1337/api.github.com", asks)
        self.assertIn("warning: the path /\\u05d0\\u05d1/1337/api.github.com has characters that are not ASCII",
                      screen)
        row = next(line for line in screen.splitlines() if " egress " in line)
        self.assertIn("! api.github.com", row)


class FoundPlacesAsSpelled(Case):
    def test_a_lookalike_file_name_in_a_finding_is_escaped(self) -> None:
        places = ["commit 2222222222aa: file t\u0435sts/fixtures/key.pem line 3: detector aws-access-key",
                  "commit 2222222222ab: file tests/fixtures/other.pem line 4: detector aws-access-key"]
        self.propose(BOTTLE, "push-exception", {
            "repo": "app", "ref": "refs/heads/main", "old": "1" * 40, "new": "2" * 40, "finding": "gf-0123456789ab",
            "detectors": ["aws-access-key"], "places": places}, "push-1", justification="a test fixture")
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.pause(0.2)
            seen.append(screen_text(app))

        self.drive(script, size=(160, 40))
        found = [line.strip() for line in seen[0].splitlines() if "found:" in line]
        self.assertEqual(found, [f"found: {places[0].replace(chr(0x435), chr(92) + 'u0435')}", f"found: {places[1]}"])


LONG_HOST = ".".join(["api.github.com", "a" * 63, "b" * 63, "c" * 63, "d" * 20, "evil.example"])  # 240 characters


class QuestionsQuoteTheHostWhole(Case):
    """The approve-and-save and reject questions quote the request cut to fit the screen: never
    inside its host, where the cut would leave the operator answering about the wrong one."""

    def question(self, key: str) -> str:
        manifest = self.layout.bottles_dir / "dev.md"
        manifest.parent.mkdir(parents=True)
        manifest.write_text("---\negress:\n  routes:\n    - example.com\n---\n")
        self.propose(BOTTLE, "egress", egress("/v1/", host=LONG_HOST), "e-long")
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.pause(0.2)
            await pilot.press(key)
            await self.until(pilot, lambda: isinstance(app.screen, (ConfirmScreen, ReasonScreen)))
            await pilot.pause(0.1)
            seen.append("".join(str(app.screen.query_one(Label).render()).split()))
            await pilot.press("escape")

        self.drive(script, size=(80, 24))
        return seen[0]

    def test_approve_and_save(self) -> None:
        self.assertIn(f"host:{LONG_HOST}", self.question("A"))

    def test_reject(self) -> None:
        self.assertIn(f"{LONG_HOST}:443", self.question("r"))

    def test_a_short_request_is_quoted_as_before_and_a_long_one_cut_after_its_host(self) -> None:
        self.assertEqual(view.quoted("docs.example GET /v1/", whole="docs.example"), "docs.example GET /v1/")
        long = view.quoted(f"{LONG_HOST}:443 GET " + "/p" * 200, whole=LONG_HOST)
        self.assertTrue(long.startswith(f"{LONG_HOST}:443"), long)
        self.assertTrue(long.endswith("…"))
        self.assertEqual(view.quoted("x" * 300, 20), "x" * 19 + "…", "no host: cut at its width")


class SyncPastADamagedCursor(Case):
    def test_the_bottles_log_is_read_on_and_the_cursor_repaired(self) -> None:
        from tests.unit.test_supervise_console import BOTTLES
        from bot_bottle.supervise.sync import sync

        side = self.sidecars[BOTTLE]
        side.log_lines({"ts": "2026-11-22T05:29:01.000Z", "decision": "deny", "host": "y.example"})
        with Store(self.db) as st:
            sync(st, bottles=BOTTLES, link_for=self.link_for)
            st.conn.execute("UPDATE event_cursors SET updated_at = CAST(x'ff' AS TEXT) WHERE bottle_id = ?", (BOTTLE,))
        side.log_lines({"ts": "2026-11-22T05:29:02.000Z", "decision": "deny", "host": "z.example"})
        with Store(self.db) as st:
            report = sync(st, bottles=BOTTLES, link_for=self.link_for)
            self.assertEqual(report.new_events, 1)
            self.assertEqual([d.column for d in report.damaged], ["updated_at"])
            self.assertEqual([e.record["host"] for e in st.events(BOTTLE)], ["y.example", "z.example"])
            again = sync(st, bottles=BOTTLES, link_for=self.link_for)
            self.assertEqual((again.new_events, again.damaged), (0, []), "repaired by the import")


class LogLinesAsSpelled(unittest.TestCase):
    RECORD = {"ts": "2026-01-02T03:04:05.678Z", "event": "egress", "decision": "allow", "rule": "route",
              "route": "routes[0] (api.github.com)", "host": "api.github.com", "port": 443, "method": "GET",
              "path": "/x", "connect": False, "status": 200, "duration_ms": 3.25}

    def line(self, **fields: Any) -> str:
        return format_text({**self.RECORD, **fields}).plain

    def test_a_right_to_left_path_cannot_reorder_the_status_and_time(self) -> None:
        line = self.line(path="/\u05d0\u05d1")
        self.assertIn("api.github.com:443/\\u05d0\\u05d1 200 3.2ms", line)
        self.assertTrue(line.isascii())

    def test_a_lookalike_host_is_escaped(self) -> None:
        self.assertIn("DENY  GET     \\u0430pi.github.com:443/x",
                      self.line(decision="deny", host="\u0430pi.github.com", rule="default-deny"))

    def test_ascii_and_undecodable_bytes_read_as_before(self) -> None:
        self.assertIn("api.github.com:443/wiki/Z%C3%BCrich 200", self.line(path="/wiki/Z%C3%BCrich"))
        self.assertIn("api.github.com:443/torn\ufffd 200", self.line(path="/torn\ufffd"))


class StoreCase(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.db = Path(tmp.name) / "supervise.db"
        self.store = Store(self.db)
        self.addCleanup(self.store.close)

    def sql(self, statement: str, *args: Any) -> None:
        self.store.conn.execute(statement, args)


class CursorNotUtf8(StoreCase):
    def setUp(self) -> None:
        super().setUp()
        self.store.import_events(BOTTLE, "side-1", [(0, {"ts": "t", "host": "a.example"})], next_offset=40)
        self.store.import_events(BOTTLE, "side-2", [(0, {"ts": "t", "host": "b.example"})], next_offset=70)
        self.sql("UPDATE event_cursors SET offset = CAST(x'ff3130' AS TEXT) WHERE source = 'side-2'")

    def test_the_other_logs_read_on_and_the_damaged_one_is_named(self) -> None:
        damaged: list[DamagedRow] = []
        self.assertEqual(self.store.event_cursors(BOTTLE, damaged=damaged), {"side-1": 40})
        self.assertEqual(len(damaged), 1)
        self.assertEqual((damaged[0].row, damaged[0].column), (f"event cursor of bottle {BOTTLE}", "offset"))
        self.assertIn("read again from its start", damaged[0].fate)

    def test_without_a_list_it_is_still_an_error_naming_the_row(self) -> None:
        with self.assertRaises(DamagedRow) as caught:
            self.store.event_cursors(BOTTLE)
        self.assertEqual(caught.exception.column, "offset")

    def test_sync_reads_the_bottles_logs_and_reports_the_row(self) -> None:
        report = SyncReport()
        self.assertEqual(_cursors(self.store, BOTTLE, report), {"side-1": 40})
        self.assertEqual(len(report.damaged), 1)

    def test_the_next_import_of_that_log_repairs_the_row(self) -> None:
        self.store.import_events(BOTTLE, "side-2", [(0, {"ts": "t", "host": "b.example"})], next_offset=70,
                                 rescan=True)
        damaged: list[DamagedRow] = []
        self.assertEqual(self.store.event_cursors(BOTTLE, damaged=damaged), {"side-1": 40, "side-2": 70})
        self.assertEqual(damaged, [])

    def test_a_damaged_log_name_is_left_and_said_so(self) -> None:
        self.sql("UPDATE event_cursors SET source = CAST(x'73ff' AS TEXT), offset = 5 WHERE source = 'side-2'")
        damaged: list[DamagedRow] = []
        self.assertEqual(self.store.event_cursors(BOTTLE, damaged=damaged), {"side-1": 40})
        self.assertEqual([d.column for d in damaged], ["source"])
        self.assertIn("left as it is", damaged[0].fate)


class AuditRowsChecked(StoreCase):
    def setUp(self) -> None:
        super().setUp()
        for action in ("approve", "reject", "expire"):
            self.store.audit(AuditEntry(operator="ann", action=action, bottle_id=BOTTLE, proposal_key=1, at=5.0))

    def damage(self, column: str, value: Any) -> None:
        self.sql(f"UPDATE audit SET {column} = ? WHERE action = 'reject'", value)

    def test_a_whole_log_reads_as_written(self) -> None:
        damaged: list[DamagedRow] = []
        rows = self.store.audit_rows(damaged=damaged)
        self.assertEqual([r.action for r in rows], ["approve", "reject", "expire"])
        self.assertEqual(damaged, [])
        self.assertEqual([r.action for r in self.store.audit_rows(proposal_key=1)], ["approve", "reject", "expire"])

    def test_a_column_of_another_type_is_named(self) -> None:
        # A number written to a text column is stored as text (the column's affinity): a blob is not.
        for column, value in (("operator", b"ann"), ("action", b"\x00\x01"), ("at", "yesterday"),
                              ("proposal_key", 1.5), ("bottle_id", b"aaaaaa11"), ("reason", b"\xff"),
                              ("outcome", b"ok")):
            with self.subTest(column=column):
                self.store.conn.execute("DELETE FROM audit")
                for action in ("approve", "reject", "expire"):
                    self.store.audit(AuditEntry(operator="ann", action=action, at=5.0))
                self.damage(column, value)
                with self.assertRaises(DamagedRow) as caught:
                    self.store.audit_rows()
                self.assertEqual(caught.exception.column, column)
                damaged: list[DamagedRow] = []
                self.assertEqual([r.action for r in self.store.audit_rows(damaged=damaged)], ["approve", "expire"])
                self.assertEqual([d.column for d in damaged], [column])

    def test_bytes_that_are_not_utf8_leave_the_other_rows_readable(self) -> None:
        self.sql("UPDATE audit SET reason = CAST(x'ff' AS TEXT) WHERE action = 'reject'")
        damaged: list[DamagedRow] = []
        self.assertEqual([r.action for r in self.store.audit_rows(damaged=damaged)], ["approve", "expire"])
        self.assertEqual([d.column for d in damaged], ["reason"])

    def test_a_time_as_a_whole_number_and_empty_optional_columns_are_whole(self) -> None:
        self.store.audit(AuditEntry(operator="system", action="expire", at=7))
        rows = self.store.audit_rows(damaged=(damaged := []))
        self.assertEqual(len(rows), 4)
        self.assertEqual(damaged, [])
        self.assertIsNone(rows[-1].proposal_key)


if __name__ == "__main__":
    unittest.main()
