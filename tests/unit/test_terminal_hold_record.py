"""What the terminal filter holds back becomes part of the bottle's record.

The relay's recorder (``pty_relay.HoldRecorder``) hands kinds and counts to the supervise store
(``Store.record_terminal``) from a thread of its own, about once a second at most; ``bot-bottle
logs`` and the console show the entries. A payload planted in a clipboard write must appear
nowhere: not in the database's files, not in what ``logs`` prints.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import pty
import select
import sys
import tempfile
import textwrap
import threading
import time
import unittest
from pathlib import Path
from typing import Any
from unittest import mock

from textual.widgets import RichLog, Static

from bot_bottle import lifecycle, pty_relay
from bot_bottle.backend.docker import engine
from bot_bottle.cli import logs
from bot_bottle.screen_filter import ScreenFilter
from bot_bottle.supervise import view
from bot_bottle.supervise.console import SuperviseApp
from bot_bottle.supervise.store import (
    MAX_TERMINAL_KINDS,
    OTHER_KINDS,
    TERMINAL_SOURCE,
    Store,
    merge_counts,
    terminal_recorder,
)
from tests.fixtures import ManifestHome
from tests.unit.test_cli_logs import ALLOW, DENY, FakeEngine
from tests.unit.test_supervise_console import ConsoleCase

REPO = Path(__file__).resolve().parents[2]
BOTTLE = "abcd1234"
SECRET = b"PLANTED-CLIPBOARD-SECRET-5e1f"
CLIPBOARD = "clipboard access (OSC 52)"
# A clipboard write carrying the secret as written and base64-encoded, as an agent would send it.
OSC52 = b"\x1b]52;c;" + SECRET + b"\x07" + b"\x1b]52;c;" + base64.b64encode(SECRET) + b"\x1b\\"


class Calls:
    """A ``record`` stand-in: what it was handed, and when."""

    def __init__(self, fail: int = 0) -> None:
        self.batches: list[dict[str, int]] = []
        self.times: list[float] = []
        self.fail = fail
        self.arrived = threading.Event()

    def __call__(self, held: dict[str, int]) -> None:
        if self.fail:
            self.fail -= 1
            raise OSError("database is locked")
        self.batches.append(dict(held))
        self.times.append(time.monotonic())
        self.arrived.set()

    def total(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for batch in self.batches:
            for kind, count in batch.items():
                out[kind] = out.get(kind, 0) + count
        return out


def _files_of(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


class RecorderCoalescesAndBounds(unittest.TestCase):
    def recorder(self, calls: Calls, **kw: Any) -> tuple[pty_relay.HoldRecorder, list[str]]:
        warnings: list[str] = []
        rec = pty_relay.HoldRecorder(calls, warn=warnings.append, **kw)
        rec.start()
        self.addCleanup(rec.close, 5)
        return rec, warnings

    def test_a_hold_is_recorded_within_a_second_while_the_session_runs(self) -> None:
        calls = Calls()
        rec, _ = self.recorder(calls)
        screen = ScreenFilter(on_held=rec.held)
        start = time.monotonic()
        self.assertEqual(screen.feed(b"a" + OSC52 + b"b"), b"ab")
        self.assertTrue(calls.arrived.wait(5), "no entry while the session runs")
        self.assertLess(calls.times[0] - start, 1.0)
        self.assertEqual(calls.batches, [{CLIPBOARD: 2}])

    def test_a_burst_becomes_one_entry(self) -> None:
        calls = Calls()
        rec, _ = self.recorder(calls, coalesce_s=0.2, gap_s=0.5)
        screen = ScreenFilter(on_held=rec.held)
        screen.feed(OSC52 * 500 + b"\x1bPtmux;\x1b\x1b]52;c;eA==\x07\x1b\\" * 3)
        self.assertTrue(calls.arrived.wait(5))
        rec.close(5)
        self.assertEqual(calls.batches, [{CLIPBOARD: 1000, "tmux passthrough (DCS)": 3}])

    def test_a_flood_makes_one_entry_per_gap_at_most(self) -> None:
        calls = Calls()
        rec, _ = self.recorder(calls, coalesce_s=0.05, gap_s=0.3)
        screen = ScreenFilter(on_held=rec.held)
        start = time.monotonic()
        fed = 0
        while time.monotonic() - start < 1.5:
            screen.feed(OSC52)
            fed += 2
            time.sleep(0.001)
        rec.close(5)
        self.assertLessEqual(len(calls.batches), 1.5 / 0.3 + 2, "bounded by the gap, not by the holds")
        self.assertGreaterEqual(len(calls.batches), 2, "a long flood is recorded as it goes, not only at the end")
        self.assertEqual(calls.total(), {CLIPBOARD: fed}, "every hold counted exactly once")
        gaps = [b - a for a, b in zip(calls.times, calls.times[1:])]
        self.assertTrue(all(g >= 0.25 for g in gaps[:-1]), gaps)  # the last one: the close's flush

    def test_many_kinds_are_bounded(self) -> None:
        calls = Calls()
        rec, _ = self.recorder(calls, coalesce_s=0.05, gap_s=0.1)
        screen = ScreenFilter(on_held=rec.held)
        screen.feed(b"".join(b"\x1b]%d;x\x07" % n for n in range(60000, 60500)))
        rec.close(5)
        (batch,) = calls.batches
        self.assertEqual(len(batch), pty_relay.MAX_KINDS + 1)
        self.assertEqual(batch[pty_relay.OTHER_KINDS], 500 - pty_relay.MAX_KINDS)

    def test_quiet_queries_are_not_recorded(self) -> None:
        calls = Calls()
        rec, _ = self.recorder(calls, coalesce_s=0.05, gap_s=0.1)
        screen = ScreenFilter(on_held=rec.held)
        screen.feed(b"\x1b]7501;?\x07hello")
        rec.close(5)
        self.assertEqual(calls.batches, [])
        self.assertEqual(sum(screen.held.values()), 1, "still held back, only not named")

    def test_a_failing_record_is_said_once_and_its_counts_kept(self) -> None:
        calls = Calls(fail=2)
        rec, warnings = self.recorder(calls, coalesce_s=0.05, gap_s=0.1)
        rec.held(CLIPBOARD)
        time.sleep(0.4)  # the first try fails
        rec.held(CLIPBOARD)
        time.sleep(0.4)  # and the second
        rec.held("tmux passthrough (DCS)")
        rec.close(5)
        self.assertEqual(calls.total(), {CLIPBOARD: 2, "tmux passthrough (DCS)": 1})
        self.assertEqual(len(warnings), 1)
        self.assertIn("could not be recorded", warnings[0])
        self.assertIn("database is locked", warnings[0])

    def test_a_blocked_record_never_holds_the_filter_up(self) -> None:
        release = threading.Event()
        rec = pty_relay.HoldRecorder(lambda held: release.wait(10), coalesce_s=0.01, gap_s=0.01)
        rec.start()
        self.addCleanup(release.set)
        screen = ScreenFilter(on_held=rec.held)
        start = time.monotonic()
        for _ in range(200):
            screen.feed(OSC52 + b"text")
            time.sleep(0.002)
        self.assertLess(time.monotonic() - start, 3.0)
        before = time.monotonic()
        rec.close(0.2)
        self.assertLess(time.monotonic() - before, 2.0, "the end waits a bounded time for a stuck record")


class StoreKeepsKindsAndCountsOnly(unittest.TestCase):
    def setUp(self) -> None:
        self.mh = ManifestHome.for_test(self)
        self.db = self.mh.home_dir / "supervise.db"

    def test_an_entry_names_kinds_and_counts(self) -> None:
        with Store(self.db, clock=lambda: 1795325400.5) as st:
            self.assertTrue(st.record_terminal(BOTTLE, {CLIPBOARD: 2}))
            self.assertFalse(st.record_terminal(BOTTLE, {}))
            (row,) = st.events(BOTTLE)
        self.assertEqual(row.source, TERMINAL_SOURCE)
        self.assertEqual(row.record, {"ts": "2026-11-22T05:30:00.500Z", "event": "terminal",
                                      "held": {CLIPBOARD: 2}, "total": 2})

    def test_past_the_bound_holds_go_into_the_newest_entry(self) -> None:
        with Store(self.db, max_terminal_events=3) as st:
            for n in range(10):
                st.record_terminal(BOTTLE, {CLIPBOARD: 1, f"other OSC {n}": 1})
            rows = st.terminal_events(BOTTLE)
        self.assertEqual(len(rows), 3)
        self.assertEqual(rows[-1].record["held"][CLIPBOARD], 8)
        self.assertEqual(sum(r.record["total"] for r in rows), 20, "nothing lost, nothing counted twice")

    def test_kinds_per_entry_are_bounded_and_bad_counts_dropped(self) -> None:
        counts = merge_counts({}, {**{f"other OSC {n}": 1 for n in range(100)}, "x": 0, "y": True, 3: 4})  # type: ignore[dict-item]
        self.assertEqual(len(counts), MAX_TERMINAL_KINDS + 1)
        self.assertEqual(counts[OTHER_KINDS], 100 - MAX_TERMINAL_KINDS)

    def test_a_flood_of_requests_does_not_push_the_entries_out(self) -> None:
        with Store(self.db, max_events=5) as st:
            st.record_terminal(BOTTLE, {CLIPBOARD: 1})
            st.import_events(BOTTLE, "c-1", [(i, {**DENY, "path": f"/{i}"}) for i in range(20)], next_offset=20)
            self.assertEqual(len(st.terminal_events(BOTTLE)), 1)
            self.assertEqual(len([e for e in st.events(BOTTLE, limit=100) if e.source != TERMINAL_SOURCE]), 5)


class NoHeldByteReachesTheRecord(unittest.TestCase):
    """Filter, recorder and store together, then `bot-bottle logs`: the kind, never the payload."""

    def setUp(self) -> None:
        self.mh = ManifestHome.for_test(self)
        self.db = self.mh.home_dir / "supervise.db"
        saved = self.mh.home_dir / "state" / BOTTLE / "egress.jsonl"  # a preserved bottle's log
        saved.parent.mkdir(parents=True)
        saved.write_text(json.dumps({**ALLOW, "ts": "2000-01-01T00:00:00.000Z"}) + "\n"
                         + json.dumps({**DENY, "ts": "2999-01-01T00:00:00.000Z"}) + "\n")
        rec = pty_relay.HoldRecorder(terminal_recorder(BOTTLE, self.db), coalesce_s=0.01, gap_s=0.05)
        rec.start()
        screen = ScreenFilter(on_held=rec.held)
        out = screen.feed(b"before" + OSC52 + b"\x1bPtmux;\x1b\x1b]52;c;" + SECRET + b"\x07\x1b\\after")
        rec.close(10)
        self.assertEqual(out, b"beforeafter")

    def logs(self, *argv: str):
        with mock.patch.object(engine, "run", FakeEngine(running=False)):
            return self.mh.run_cli("logs", BOTTLE, *argv)

    def test_the_store_holds_no_byte_of_the_payload(self) -> None:
        files = _files_of(self.db)
        self.assertIn(b"clipboard access", files)
        for planted in (SECRET, base64.b64encode(SECRET), b"52;c;"):
            self.assertNotIn(planted, files)

    def test_logs_text_names_the_clipboard_write_in_time_order(self) -> None:
        result = self.logs()
        self.assertEqual(result.code, 0, result.stderr)
        lines = result.stdout.splitlines()
        self.assertEqual(len(lines), 3, result.stdout)
        self.assertIn("ALLOW", lines[0])
        self.assertIn("HELD", lines[1])
        self.assertIn(f"{CLIPBOARD} x2", lines[1])
        self.assertIn("tmux passthrough (DCS) x1", lines[1])
        self.assertIn("DENY", lines[2])
        self.assertNotIn(SECRET.decode(), result.stdout + result.stderr)

    def test_logs_json_tells_the_entries_apart(self) -> None:
        result = self.logs("--format", "json")
        self.assertEqual(result.code, 0, result.stderr)
        records = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual([r["event"] for r in records], ["egress", "terminal", "egress"])
        self.assertEqual(records[0], {**ALLOW, "ts": "2000-01-01T00:00:00.000Z"}, "egress lines unchanged")
        held = records[1]
        self.assertNotIn("decision", held)
        self.assertEqual(held["held"], {CLIPBOARD: 2, "tmux passthrough (DCS)": 1})
        self.assertEqual(held["total"], 3)
        self.assertNotIn(SECRET.decode(), result.stdout)
        self.assertNotIn(base64.b64encode(SECRET).decode(), result.stdout)

    def test_a_removed_bottle_still_shows_what_its_terminal_held(self) -> None:
        (self.mh.home_dir / "state" / BOTTLE / "egress.jsonl").unlink()
        result = self.logs()
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn("no saved egress log", result.stderr)
        self.assertIn(CLIPBOARD, result.stdout)

    def test_an_unreadable_database_does_not_hide_the_decisions(self) -> None:
        for path in self.db.parent.glob(self.db.name + "*"):
            path.unlink()
        self.db.write_bytes(b"not a database at all" * 100)
        result = self.logs("--format", "json")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertEqual(len(result.stdout.splitlines()), 2)
        self.assertIn("cannot be read", result.stderr)


class FollowShowsNewEntries(unittest.TestCase):
    def follow(self, mh: ManifestHome, lines: Any, out: Any) -> list[dict[str, Any]]:
        """`logs BOTTLE --follow --format json` with the sidecar log's lines from ``lines()``;
        the records printed (``print`` writes to ``out``, which ``lines`` may watch)."""
        import subprocess

        class FakePopen:
            def __init__(self, argv: Any, **kw: Any) -> None:
                self.stdout = lines()

            def poll(self) -> int:
                return 0

            def wait(self, timeout: float | None = None) -> int:
                return 0

        with mock.patch.object(engine, "run", FakeEngine(running=True)), \
                mock.patch.object(engine, "docker_binary", return_value="/usr/bin/docker"), \
                mock.patch.object(subprocess, "Popen", FakePopen), \
                mock.patch("builtins.print", lambda text, **kw: out.write(text + "\n")):
            result = mh.run_cli("logs", BOTTLE, "--follow", "--format", "json")
        self.assertEqual(result.code, 0, result.stderr)
        return [json.loads(line) for line in out.getvalue().splitlines()]

    def test_an_entry_recorded_while_following_is_printed(self) -> None:
        import io

        mh = ManifestHome.for_test(self)
        db = mh.home_dir / "supervise.db"
        with Store(db) as st:
            st.record_terminal(BOTTLE, {CLIPBOARD: 1})
        out = io.StringIO()

        def lines():
            yield json.dumps(ALLOW) + "\n"
            with Store(db) as st:  # recorded while the follow runs
                st.record_terminal(BOTTLE, {"tmux passthrough (DCS)": 1})
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and "tmux passthrough" not in out.getvalue():
                time.sleep(0.05)

        records = self.follow(mh, lines, out)
        held = [r["held"] for r in records if r.get("event") == "terminal"]
        self.assertEqual(held, [{CLIPBOARD: 1}, {"tmux passthrough (DCS)": 1}])
        self.assertEqual(sum(1 for r in records if r.get("event") == "egress"), 1)

    def test_the_history_replayed_keeps_time_order(self) -> None:
        """`tail -n +1` replays the log's history after the exec starts: an entry recorded
        between two old decisions is printed between them, not before the whole history."""
        import io

        mh = ManifestHome.for_test(self)
        with Store(mh.home_dir / "supervise.db") as st:
            st.record_terminal(BOTTLE, {CLIPBOARD: 1})

        def lines():
            time.sleep(0.3)  # the exec starting: the terminal thread has read the database by now
            yield json.dumps({**ALLOW, "ts": "2000-01-01T00:00:00.000Z"}) + "\n"
            yield json.dumps({**DENY, "ts": "2999-01-01T00:00:00.000Z"}) + "\n"

        records = self.follow(mh, lines, io.StringIO())
        self.assertEqual([r.get("event") for r in records], ["egress", "terminal", "egress"], records)


class FollowMergeOrders(unittest.TestCase):
    """The merge alone, on a clock the test moves."""

    def setUp(self) -> None:
        self.now = 100.0
        self.printed: list[dict[str, Any]] = []
        patcher = mock.patch.object(logs, "_print_one", lambda record, fmt: self.printed.append(record))
        patcher.start()
        self.addCleanup(patcher.stop)
        self.merge = logs.FollowMerge("json", clock=lambda: self.now)

    def names(self) -> list[str]:
        return [r["name"] for r in self.printed]

    def test_entries_wait_for_the_history_and_go_between_its_decisions(self) -> None:
        self.merge.terminal([{"name": "t2", "ts": "2"}, {"name": "t4", "ts": "4"}])
        self.merge.tick()
        self.assertEqual(self.printed, [], "nothing before the history")
        self.merge.decision({"name": "d1", "ts": "1"})
        self.merge.decision({"name": "d3", "ts": "3"})
        self.now += 0.4
        self.merge.tick()
        self.assertEqual(self.names(), ["d1", "t2", "d3"], "t4 waits: the history may go on")
        self.now += logs.FollowMerge.REPLAY_QUIET_S
        self.merge.tick()
        self.assertEqual(self.names(), ["d1", "t2", "d3", "t4"])
        self.merge.terminal([{"name": "t9", "ts": "9"}])
        self.merge.decision({"name": "d8", "ts": "8"})
        self.assertEqual(self.names()[-2:], ["t9", "d8"], "live: as they come")

    def test_an_empty_log_lets_the_entries_out_after_a_while(self) -> None:
        self.merge.terminal([{"name": "t1", "ts": "1"}])
        self.now += logs.FollowMerge.REPLAY_FIRST_S - 0.1
        self.merge.tick()
        self.assertEqual(self.printed, [])
        self.now += 0.1
        self.merge.tick()
        self.assertEqual(self.names(), ["t1"])

    def test_the_end_prints_what_waits_and_nothing_after(self) -> None:
        self.merge.terminal([{"name": "t1", "ts": "1"}])
        self.merge.close()
        self.merge.terminal([{"name": "t2", "ts": "2"}])
        self.assertEqual(self.names(), ["t1"])


class TheLifecycleRecordsIntoTheSupervisedb(unittest.TestCase):
    def test_the_record_goes_to_the_homes_database_under_the_bottle_id(self) -> None:
        mh = ManifestHome.for_test(self)
        state = mock.Mock(id=BOTTLE)
        with mock.patch.dict(os.environ, {"HOME": str(mh.home)}):
            record = lifecycle._terminal_record(state)
            assert record is not None
            record({CLIPBOARD: 1})
        with Store(mh.home_dir / "supervise.db") as st:
            self.assertEqual(st.terminal_events(BOTTLE)[0].record["held"], {CLIPBOARD: 1})

    def test_no_bottle_id_no_record(self) -> None:
        self.assertIsNone(lifecycle._terminal_record(object()))


HOST = textwrap.dedent("""\
    import json, sys, time
    from bot_bottle import pty_relay

    def record(held):
        with open(sys.argv[2], "a") as fh:
            fh.write(json.dumps(held) + "\\n")
        if sys.argv[3] == "stuck":
            time.sleep(30)  # a database that never answers

    relay = pty_relay.Relay([sys.executable, "-c", sys.argv[1]], record=record)
    try:
        code = relay.start().wait()
    finally:
        relay.close()
    print(f"code {code}", flush=True)
""")

AGENT = textwrap.dedent("""\
    import os, sys, time
    out = sys.stdout.buffer
    out.write(b"start\\x1b]52;c;PLANTED-CLIPBOARD-SECRET-5e1f\\x07 printed\\r\\n")
    out.flush()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not os.path.exists(os.environ["RECORD"]):
        time.sleep(0.05)
    out.write(b"recorded while running\\r\\n" if os.path.exists(os.environ["RECORD"]) else b"NOT RECORDED\\r\\n")
    out.flush()
""")


class RelayRecordsAsItRuns(unittest.TestCase):
    """On real pseudo-terminals: the entry is written while the agent still runs, and a record
    that never returns holds up neither the output nor the agent's end for long."""

    def run_host(self, mode: str) -> tuple[bytes, Path, float]:
        tmp = Path(self.enterContext(tempfile.TemporaryDirectory()))
        target = tmp / "record.jsonl"
        pid, fd = pty.fork()
        if pid == 0:
            os.environ["RECORD"] = str(target)
            os.execve(sys.executable, [sys.executable, "-c", HOST, AGENT, str(target), mode],
                      {**os.environ, "PYTHONPATH": str(REPO)})
        start = time.monotonic()
        seen = b""
        deadline = start + 30
        while time.monotonic() < deadline and b"code " not in seen:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
        elapsed = time.monotonic() - start
        os.waitpid(pid, 0)
        os.close(fd)
        return seen, target, elapsed

    def test_recorded_while_the_agent_runs_without_its_payload(self) -> None:
        seen, target, _ = self.run_host("ok")
        self.assertIn(b"start printed", seen)
        self.assertIn(b"recorded while running", seen)
        self.assertIn(b"code 0", seen)
        self.assertNotIn(SECRET, seen)
        entries = [json.loads(line) for line in target.read_text().splitlines()]
        self.assertEqual(entries, [{CLIPBOARD: 1}])
        self.assertNotIn(SECRET.decode(), target.read_text())

    def test_a_record_that_never_returns_neither_slows_the_output_nor_hangs_the_end(self) -> None:
        seen, _, elapsed = self.run_host("stuck")
        self.assertIn(b"recorded while running", seen)
        self.assertIn(b"code 0", seen)
        self.assertLess(elapsed, 15, "the relay's end waits for the recorder a bounded time only")


class ConsoleShowsTheEntries(ConsoleCase):
    def test_the_event_view_names_what_the_terminal_held(self) -> None:
        with Store(self.db, clock=lambda: 1795325400.0) as st:
            st.record_terminal("aaaaaa11", {CLIPBOARD: 2, "tmux passthrough (DCS)": 1})

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.until(pilot, lambda: app.selected_bottle == "aaaaaa11")
            log = app.query_one("#events", RichLog)
            text = "\n".join(line.text for line in log.lines)
            self.assertIn("HELD", text)
            self.assertIn(f"{CLIPBOARD} x2", text)
            self.assertIn("tmux passthrough (DCS) x1", text)
            title = str(app.query_one("#events-title", Static).content)
            self.assertIn("terminal: 3 sequences held back", title)

        self.run_app(script)

    def test_held_totals(self) -> None:
        self.assertEqual(view.terminal_held([{"total": 2}, {"total": True}, {"total": -1}, "x", {"total": 3}]), 5)


if __name__ == "__main__":
    unittest.main()
