"""``egress.jsonl`` stays within three parts of a bounded size: the first decisions and the
newest kept, lines whole, every later part marked with where it begins in the whole log."""

from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path

from bot_bottle.sidecar.egress.logfile import EARLIER, FIRST, PART_EVENT, LogFile, part_marker


class LogFileTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.path = Path(tmp.name) / "egress.jsonl"

    def part(self, suffix: str) -> Path:
        return self.path.with_name(self.path.name + suffix)

    @staticmethod
    def decisions(path: Path) -> list[str]:
        return [line for line in path.read_text().splitlines(keepends=True) if part_marker(line) is None]

    def test_a_flood_keeps_the_first_decisions_and_the_newest(self) -> None:
        log = LogFile(self.path, limit=1000)
        lines = [f'{{"n": {i}, "pad": "{"x" * 40}"}}\n' for i in range(500)]
        for line in lines:
            log.write(line)
        log.close()
        for suffix in (FIRST, EARLIER, ""):
            self.assertLessEqual(self.part(suffix).stat().st_size, 1000)
        first = self.decisions(self.part(FIRST))
        self.assertEqual(first, lines[:len(first)], "the first decisions, whole and in order")
        self.assertGreaterEqual(len(first), 1000 // len(lines[-1]))
        newest = self.decisions(self.part(EARLIER)) + self.decisions(self.path)
        self.assertEqual(newest, lines[-len(newest):], "the newest decisions, whole and in order")
        self.assertGreaterEqual(len(newest), 1000 // len(lines[-1]), "at least a full part")

    def test_each_later_part_says_where_it_begins_and_what_was_dropped(self) -> None:
        log = LogFile(self.path, limit=1000)
        for i in range(200):
            line = f'{{"n": {i}, "pad": "{"y" * 30}"}}\n'
            log.write(line)
        log.close()
        first_size = self.part(FIRST).stat().st_size
        earlier = self.part(EARLIER).read_text().splitlines(keepends=True)
        current = self.path.read_text().splitlines(keepends=True)
        earlier_marker, current_marker = part_marker(earlier[0]), part_marker(current[0])
        self.assertIsNotNone(earlier_marker)
        self.assertEqual(current_marker["event"], PART_EVENT)
        # The current part begins right after the earlier one, in the whole log's offsets.
        self.assertEqual(current_marker["starts_at"],
                         earlier_marker["starts_at"] + self.part(EARLIER).stat().st_size)
        # What lies between the first part and the earlier one was dropped, and is counted.
        self.assertEqual(earlier_marker["starts_at"] - first_size, current_marker["dropped_bytes"])
        self.assertGreater(current_marker["dropped_bytes"], 0)

    def test_an_existing_log_is_appended_to_and_counted(self) -> None:
        self.path.write_text("a" * 900 + "\n")
        log = LogFile(self.path, limit=1000)
        log.write("b" * 200 + "\n")
        log.close()
        self.assertEqual(self.decisions(self.path), ["b" * 200 + "\n"])
        self.assertEqual(self.part(FIRST).read_text(), "a" * 900 + "\n")
        self.assertEqual(part_marker(self.path.read_text().splitlines()[0])["starts_at"], 901)

    def test_a_reopened_part_keeps_counting_from_its_marker(self) -> None:
        log = LogFile(self.path, limit=300)
        for i in range(40):
            log.write(json.dumps({"n": i, "pad": "z" * 20}) + "\n")
        log.close()
        before = part_marker(self.path.read_text().splitlines()[0])
        again = LogFile(self.path, limit=300)
        for i in range(40, 60):
            again.write(json.dumps({"n": i, "pad": "z" * 20}) + "\n")
        again.close()
        after = part_marker(self.path.read_text().splitlines()[0])
        self.assertGreater(after["starts_at"], before["starts_at"])
        self.assertGreaterEqual(after["dropped_bytes"], before["dropped_bytes"])

    def test_part_marker_reads_only_well_formed_markers(self) -> None:
        self.assertIsNone(part_marker('{"decision": "allow"}'))
        self.assertIsNone(part_marker('{"event": "egress-log-part", "starts_at": -1}'))
        self.assertIsNone(part_marker('{"event": "egress-log-part", "starts_at": true}'))
        self.assertIsNone(part_marker(b"\xff\xfe"))
        self.assertEqual(part_marker('{"event": "egress-log-part", "starts_at": 5}')["starts_at"], 5)


if __name__ == "__main__":
    unittest.main()
