"""Two bottles with one label, as the proposals table shows them: told apart by their text, not
only by their colour (an operator who cannot see colour, or a terminal without it)."""

from __future__ import annotations

import dataclasses
import unittest
from typing import Any

from textual.widgets import DataTable

from bot_bottle.supervise import view
from bot_bottle.supervise.console import SuperviseApp
from tests.unit import test_supervise_console_screen as screen
from tests.unit.test_supervise_console import BOTTLES, cell_texts


def table_rows(app: SuperviseApp) -> list[str]:
    """The proposals table's rows as drawn: a request and a justification on one line."""
    return [line for line in screen.screen_text(app).splitlines() if "docs.example:443" in line and "because" in line]


class BottleNamesTest(unittest.TestCase):
    def test_distinct_labels_read_as_they_are(self) -> None:
        self.assertEqual(view.bottle_names({"aaaaaa11": "frontend", "bbbbbb22": "review"}),
                         {"aaaaaa11": "frontend", "bbbbbb22": "review"})

    def test_a_bottle_without_a_label_reads_as_its_id(self) -> None:
        self.assertEqual(view.bottle_names({"aaaaaa11": None, "bbbbbb22": "review"}),
                         {"aaaaaa11": "aaaaaa11", "bbbbbb22": "review"})

    def test_a_shared_label_gets_each_bottles_id(self) -> None:
        names = view.bottle_names({"aaaaaa11": "coder", "bbbbbb22": "coder", "cccccc33": "docs"})
        self.assertEqual(names, {"aaaaaa11": "coder (aaaaaa11)", "bbbbbb22": "coder (bbbbbb22)", "cccccc33": "docs"})

    def test_labels_that_read_the_same_are_told_apart_too(self) -> None:
        # Letter case and fullwidth forms: different strings, one name to the eye.
        names = view.bottle_names({"aaaaaa11": "Coder", "bbbbbb22": "coder", "cccccc33": "\uff43oder"})
        self.assertEqual(len(set(names.values())), 3)
        for bottle, name in names.items():
            self.assertIn(f"({bottle})", name)

    def test_a_label_that_is_another_bottles_id_names_its_own(self) -> None:
        names = view.bottle_names({"aaaaaa11": "bbbbbb22", "bbbbbb22": None})
        self.assertEqual(names, {"aaaaaa11": "bbbbbb22 (aaaaaa11)", "bbbbbb22": "bbbbbb22"})

    def test_a_label_that_reads_like_a_name_with_an_id_is_told_apart_too(self) -> None:
        names = view.bottle_names({"aaaaaa11": "coder (bbbbbb22)", "bbbbbb22": "coder", "cccccc33": "coder"})
        self.assertEqual(len(set(names.values())), 3, names)
        self.assertEqual(names["aaaaaa11"], "coder (bbbbbb22) (aaaaaa11)")

    def test_a_label_is_shown_inert(self) -> None:
        names = view.bottle_names({"aaaaaa11": "co\u202eder", "bbbbbb22": "co\u202eder"})
        self.assertEqual(names["aaaaaa11"], "co\\u202eder (aaaaaa11)")


class SameLabelOnScreenTest(screen.Case):
    """The console with two bottles labelled alike and no colour at all."""

    def twins(self) -> list[Any]:
        return [dataclasses.replace(b, label="coder", color=None) for b in BOTTLES]

    def test_the_proposals_table_names_which_bottle_asks(self) -> None:
        self.propose("aaaaaa11", "egress", {"host": "docs.example", "ports": [443]}, "egress-1")
        self.propose("bbbbbb22", "egress", {"host": "docs.example", "ports": [443]}, "egress-2")
        rows: list[list[str]] = []
        text: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.until(pilot, lambda: app.query_one("#proposals", DataTable).row_count == 2)
            rows.extend(cell_texts(app.query_one("#proposals", DataTable)))
            # Both rows drawn (a loaded machine lays the screen out a moment after the table fills).
            await self.until(pilot, lambda: len(table_rows(app)) == 2)
            text.append("\n".join(table_rows(app)))

        self.drive(script, app=self.make_app(bottles=self.twins()), size=(100, 40))
        bottle_cells = sorted(row[1] for row in rows)
        self.assertEqual(bottle_cells, ["coder (aaaaaa11)", "coder (bbbbbb22)"])
        self.assertIn("coder (aaaaaa11)", text[0], "on the screen, not only in the cell")
        self.assertIn("coder (bbbbbb22)", text[0])

    def test_a_label_shared_with_a_bottle_that_does_not_ask_is_told_apart(self) -> None:
        # Only one bottle asks, but the bottles pane lists two called "coder": which one is it?
        self.propose("bbbbbb22", "egress", {"host": "docs.example", "ports": [443]}, "egress-2")
        rows: list[list[str]] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.until(pilot, lambda: app.query_one("#proposals", DataTable).row_count == 1)
            rows.extend(cell_texts(app.query_one("#proposals", DataTable)))

        self.drive(script, app=self.make_app(bottles=self.twins()))
        self.assertEqual(rows[0][1], "coder (bbbbbb22)")

    def test_distinct_labels_stay_uncluttered(self) -> None:
        self.propose("aaaaaa11", "egress", {"host": "docs.example", "ports": [443]}, "egress-1")
        self.propose("bbbbbb22", "egress", {"host": "docs.example", "ports": [443]}, "egress-2")
        rows: list[list[str]] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await self.until(pilot, lambda: app.query_one("#proposals", DataTable).row_count == 2)
            rows.extend(cell_texts(app.query_one("#proposals", DataTable)))

        self.drive(script)
        self.assertEqual(sorted(row[1] for row in rows), ["frontend", "vm-review"])


if __name__ == "__main__":
    unittest.main()
