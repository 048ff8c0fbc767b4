"""The plan on a narrow terminal: cells fold, a table that cannot fit becomes plain
``key: value`` lines, and nothing is cut off."""

from __future__ import annotations

import io
import re
import unittest

from rich.console import Console

from bot_bottle.cli import output
from tests.fixtures import TEST_IMAGES, ManifestTestCase

BOTTLE = """\
env:
  TZ: UTC
egress:
  routes:
    - host: registry.npmjs.org
      matches: [{methods: [GET, HEAD]}]
    - host: api.github.com
      matches: [{methods: [GET]}]
      auth: {scheme: bearer, token_ref: GITHUB_TOKEN}
      dlp: {outbound_on_match: redact}
"""
BOX_START = "┏┃┡│└"
BOX_END = "┓┃┩│┘"


class NarrowPlanTests(ManifestTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.mh.bottle("dev", BOTTLE)
        self.mh.agent("coder", {"bottle": "dev"})

    def plan_text(self, columns: int) -> str:
        result = self.mh.run_cli("start", "coder", "--dry-run", env={"COLUMNS": str(columns)}, images=TEST_IMAGES)
        self.assertEqual(result.code, 0, result.stderr)
        return result.stdout

    def test_nothing_is_cut_off_at_any_width(self) -> None:
        for columns in (10, 20, 30, 40, 45, 50, 55, 60, 80, 120):
            with self.subTest(columns=columns):
                text = self.plan_text(columns)
                self.assertNotIn("…", text)
                for line in text.splitlines():
                    if line.startswith("warning:"):
                        continue  # plain notes reach the terminal whole, and it wraps them
                    self.assertLessEqual(len(line), columns, line)
                    if line[:1] in BOX_START:
                        self.assertIn(line.rstrip()[-1:], BOX_END, f"a table cut off at its right: {line!r}")

    def test_below_the_width_a_table_needs_its_rows_are_plain_lines(self) -> None:
        wide = self.plan_text(120)  # where the tables fit, they are tables
        self.assertIn("┃ host", wide)
        self.assertNotIn("- host:", wide)
        for columns in (10, 20):
            with self.subTest(columns=columns):
                # Wrapped words join up again once the line breaks are taken out.
                joined = re.sub(r"\s+", "", self.plan_text(columns))
                for expected in ("agent:coder", "egresshosts:api.anthropic.com,api.github.com,registry.npmjs.org",
                                 "host:api.github.com", "credential:bearer$GITHUB_TOKEN", "DLP:redact",
                                 "name:TZ", "kind:literal"):
                    self.assertIn(expected, joined)


class FittedTests(unittest.TestCase):
    def render(self, renderable: object, width: int) -> str:
        out = io.StringIO()
        Console(file=out, width=width, highlight=False).print(renderable)
        return out.getvalue()

    def test_a_key_value_table_too_narrow_becomes_lines(self) -> None:
        table = output.table("micro-VM", show_header=False)
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
        table.add_row("machine name", "bot-bottle-abcdef123456")
        self.assertIn("│ machine name", self.render(output.fitted(table), 60))
        narrow = self.render(output.fitted(table), 12)
        self.assertNotIn("…", narrow)
        self.assertIn("machine", narrow)
        self.assertIn("abcdef123456", re.sub(r"\s+", "", narrow))

    def test_a_column_without_a_header_leads_its_row_alone(self) -> None:
        table = output.table("Host", show_lines=False)
        table.add_column("", no_wrap=True)
        table.add_column("ok", no_wrap=True)
        table.add_column("details")
        table.add_row("open files (dockerd)", "no", "see /etc/systemd/system/docker.service.d/nofile.conf")
        narrow = self.render(output.fitted(table), 40)
        self.assertIn("- open files (dockerd)\n", narrow)
        self.assertNotIn("- :", narrow)
        self.assertIn("  ok: no", narrow)


    def test_a_long_plain_value_goes_on_under_itself(self) -> None:
        table = output.table("Host", show_lines=False)
        table.add_column("", no_wrap=True)
        table.add_column("details")
        words = [f"word{i:02d}" for i in range(40)]
        table.add_row("gVisor", "see /etc/systemd/system/docker.service.d/nofile.conf " + " ".join(words))
        lines = self.render(output.fitted(table), 50).splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("  details: "))
        rest = lines[start + 1:]
        self.assertGreater(len(rest), 3)
        for line in rest:  # never back at the left edge, where it would read as a line of its own
            self.assertTrue(line.startswith("    "), line)
            self.assertLessEqual(len(line), 50)
        self.assertEqual(re.sub(r"\s+", " ", " ".join(lines[start:])).split()[-40:], words)

if __name__ == "__main__":
    unittest.main()
