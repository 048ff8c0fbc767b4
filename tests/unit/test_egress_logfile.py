"""``egress.jsonl`` stays within two parts of a bounded size, newest decisions kept, lines whole."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

from bot_bottle.sidecar.egress.logfile import EARLIER, LogFile


class LogFileTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.path = Path(tmp.name) / "egress.jsonl"

    def test_the_log_never_takes_more_than_two_parts(self) -> None:
        log = LogFile(self.path, limit=1000)
        lines = [f'{{"n": {i}, "pad": "{"x" * 40}"}}\n' for i in range(500)]
        for line in lines:
            log.write(line)
        log.close()
        earlier = self.path.with_name(self.path.name + EARLIER)
        self.assertLessEqual(self.path.stat().st_size, 1000)
        self.assertLessEqual(earlier.stat().st_size, 1000)
        kept = (earlier.read_text() + self.path.read_text()).splitlines(keepends=True)
        self.assertEqual(kept, lines[-len(kept):], "the newest lines, whole and in order")
        self.assertGreaterEqual(len(kept), 1000 // len(lines[-1]), "at least a full part")

    def test_an_existing_log_is_appended_to_and_counted(self) -> None:
        self.path.write_text("a" * 900 + "\n")
        log = LogFile(self.path, limit=1000)
        log.write("b" * 200 + "\n")
        log.close()
        self.assertEqual(self.path.read_text(), "b" * 200 + "\n")
        self.assertEqual(self.path.with_name(self.path.name + EARLIER).read_text(), "a" * 900 + "\n")


if __name__ == "__main__":
    unittest.main()
