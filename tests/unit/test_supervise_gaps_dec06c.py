"""A console's sync forgets the events of removed bottles only: a bottle of another home (its
state folder under another HOME) whose terminal entries landed in this home's database keeps
them for as long as the engine has it."""

from __future__ import annotations

import os
import tempfile
import unittest
from pathlib import Path
from typing import Any
from unittest import mock

from bot_bottle import lifecycle
from bot_bottle.backend.docker.running import RunningBottle
from bot_bottle.state import Metadata, StateDir
from bot_bottle.supervise.store import Store
from bot_bottle.supervise.sync import forget_removed, sync

FOREIGN = "eeeeee55"
REMOVED = "dddddd44"
CLIPBOARD = {"osc52 clipboard write": 1}


def _on_engine(bottle_id: str, status: str = "running") -> RunningBottle:
    return RunningBottle(id=bottle_id, agent="coder", label=None, status=status, started_at="",
                         owner_alive=True, image="img", backend="docker")


class ForeignBottlesAreNotForgotten(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)
        self.home_dir = self.tmp / "home" / ".bot-bottle"  # the home the console runs in
        self.state_root = self.home_dir / "state"
        self.state_root.mkdir(parents=True)
        self.db = self.home_dir / "supervise.db"

    def console_sync(self, st: Store, engine: list[RunningBottle]) -> Any:
        """A sync as the console runs it: the engine lists the bottles (of every home)."""
        with mock.patch("bot_bottle.backend.docker.running.running", return_value=engine):
            return sync(st, state_root=self.state_root, link_for=self._no_sidecar)

    @staticmethod
    def _no_sidecar(bottle_id: str) -> Any:
        raise AssertionError(f"no bottle of this home runs, yet {bottle_id}'s sidecar was asked")

    def test_another_homes_running_bottle_keeps_its_terminal_entries(self) -> None:
        with Store(self.db) as st:
            st.record_terminal(FOREIGN, CLIPBOARD)
            report = self.console_sync(st, [_on_engine(FOREIGN)])
            self.assertEqual(report.forgotten, [])
            self.assertEqual(len(st.terminal_events(FOREIGN)), 1)
            self.assertEqual(report.bottles, [], "it is still not shown as this home's")

    def test_one_the_engine_still_has_stopped_is_kept_too(self) -> None:
        with Store(self.db) as st:
            st.record_terminal(FOREIGN, CLIPBOARD)
            report = self.console_sync(st, [_on_engine(FOREIGN, status="exited")])
            self.assertEqual(report.forgotten, [])
            self.assertEqual(len(st.terminal_events(FOREIGN)), 1)

    def test_a_bottle_gone_from_the_engine_and_from_this_home_is_still_forgotten(self) -> None:
        with Store(self.db) as st:
            st.record_terminal(REMOVED, CLIPBOARD)
            st.record_terminal(FOREIGN, CLIPBOARD)
            report = self.console_sync(st, [_on_engine(FOREIGN)])
            self.assertEqual(report.forgotten, [REMOVED])
            self.assertEqual(st.terminal_events(REMOVED), [])
            self.assertEqual(len(st.terminal_events(FOREIGN)), 1)

    def test_an_engine_that_cannot_say_what_it_has_forgets_nothing(self) -> None:
        def down() -> set[str]:
            raise RuntimeError("Cannot connect to the Docker daemon")

        with Store(self.db) as st:
            st.record_terminal(REMOVED, CLIPBOARD)
            self.assertEqual(forget_removed(st, self.state_root, set(), on_the_engine=down), [])
            self.assertEqual(len(st.terminal_events(REMOVED)), 1)

    def test_a_callers_own_list_of_bottles_is_not_checked_with_the_engine(self) -> None:
        with Store(self.db) as st, \
                mock.patch("bot_bottle.backend.docker.running.running", side_effect=AssertionError("engine asked")):
            st.record_terminal(REMOVED, CLIPBOARD)
            report = sync(st, bottles=[], state_root=self.state_root, link_for=self._no_sidecar)
            self.assertEqual(report.forgotten, [REMOVED])

    def test_a_bottle_started_with_another_home_keeps_its_entries_while_it_runs(self) -> None:
        """Started with another home than the HOME its launching process runs with, a bottle's
        terminal entries are recorded in one of the two homes' databases: wherever they are, a
        console of this home keeps them while the bottle runs."""
        other_home_dir = self.tmp / "other" / ".bot-bottle"
        state = StateDir(other_home_dir / "state", FOREIGN)
        state.create()
        state.write(Metadata(id=FOREIGN, agent="coder", bottle="dev", backend="docker"))
        with mock.patch.dict(os.environ, {"HOME": str(self.tmp / "home")}):
            record = lifecycle._terminal_record(state)
        assert record is not None
        record(CLIPBOARD)
        with Store(self.db) as st:
            self.console_sync(st, [_on_engine(FOREIGN)])
        kept = 0
        for db in (self.db, other_home_dir / "supervise.db"):
            with Store(db) as st:
                kept += len(st.terminal_events(FOREIGN))
        self.assertEqual(kept, 1)

    def test_a_bottle_started_with_another_home_records_into_that_homes_database(self) -> None:
        """The home whose console and `logs` show a bottle is the one its state folder is in,
        whatever HOME the launching process runs with."""
        other_home_dir = self.tmp / "other" / ".bot-bottle"
        state = StateDir(other_home_dir / "state", FOREIGN)
        state.create()
        with mock.patch.dict(os.environ, {"HOME": str(self.tmp / "home")}):
            record = lifecycle._terminal_record(state)
        assert record is not None
        record(CLIPBOARD)
        with Store(other_home_dir / "supervise.db") as st:
            self.assertEqual(len(st.terminal_events(FOREIGN)), 1)
        with Store(self.db) as st:
            self.assertEqual(st.terminal_events(FOREIGN), [])


if __name__ == "__main__":
    unittest.main()
