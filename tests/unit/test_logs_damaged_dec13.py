"""``bot-bottle logs`` shows a bottle's terminal entries from the supervise database: one damaged
entry is named and left out, and the sound ones are still shown."""

from __future__ import annotations

import io
import tempfile
import unittest
from contextlib import redirect_stderr
from pathlib import Path

from bot_bottle.cli.logs import TerminalEntries
from bot_bottle.supervise.store import Store

BOTTLE = "aaaaaa11"


class DamagedTerminalEntry(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.db = Path(tmp.name) / "supervise.db"
        with Store(self.db) as st:
            st.record_terminal(BOTTLE, {"osc52": 1})
            st.record_terminal(BOTTLE, {"dcs": 2})

    def entries(self) -> tuple[list[dict], str]:
        err = io.StringIO()
        with redirect_stderr(err):
            shown = TerminalEntries(self.db, BOTTLE).new()
        return shown, err.getvalue()

    def test_sound_entries_are_all_shown_without_a_warning(self) -> None:
        shown, err = self.entries()
        self.assertEqual(len(shown), 2)
        self.assertEqual(err, "")

    def test_a_damaged_entry_is_named_and_the_others_shown(self) -> None:
        with Store(self.db) as st:
            st.conn.execute("UPDATE egress_events SET record = 'not json' WHERE source = 'terminal'"
                            " AND offset = (SELECT MIN(offset) FROM egress_events WHERE source = 'terminal')")
        shown, err = self.entries()
        self.assertEqual(len(shown), 1)
        self.assertIn("1 terminal entry of bottle aaaaaa11", err)
        self.assertIn(str(self.db), err)
        self.assertIn("not shown", err)


if __name__ == "__main__":
    unittest.main()
