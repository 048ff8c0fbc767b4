"""A push-exception for a ref spelled with lookalike letters (Cyrillic, fullwidth) or with
invisible and bidi characters: the operator must see that it is not the branch it imitates."""

from __future__ import annotations

import unittest
from typing import Any

from bot_bottle.supervise import view
from bot_bottle.supervise.console import SuperviseApp
from tests.unit import test_supervise_console_screen as screen


def push(ref: str) -> dict[str, Any]:
    return {"repo": "app", "ref": ref, "old": "1" * 40, "new": "2" * 40, "finding": "gf-0123456789ab"}


CYRILLIC = "refs/heads/m\u0430in"  # the "а" is U+0430
FULLWIDTH = "refs/heads/\uff4d\uff41\uff49\uff4e"
INVISIBLE = "refs/heads/main\u200b"
BIDI = "refs/heads/\u202eniam"


class RefShownTest(unittest.TestCase):
    def test_an_ascii_ref_reads_exactly_as_before(self) -> None:
        payload = push("refs/heads/main")
        self.assertEqual(view.summary("push-exception", payload),
                         "push app refs/heads/main 11111111..22222222 (finding gf-0123456789ab)")
        self.assertTrue(view.grants("push-exception", payload).startswith(
            "this one push of app refs/heads/main 11111111..22222222 (finding gf-0123456789ab) passes"))
        self.assertEqual(view.warnings("push-exception", payload), [])
        self.assertFalse(view.request_cell("push-exception", payload).plain.startswith("!"))

    def test_a_lookalike_ref_is_spelled_with_escapes_where_it_is_granted(self) -> None:
        payload = push(CYRILLIC)
        self.assertIn("refs/heads/m\\u0430in", view.summary("push-exception", payload))
        self.assertIn("refs/heads/m\\u0430in", view.grants("push-exception", payload))
        self.assertNotIn("refs/heads/main", view.summary("push-exception", payload))

    def test_a_lookalike_ref_is_warned_about_with_its_letters_named(self) -> None:
        (warning,) = view.warnings("push-exception", push(CYRILLIC))
        self.assertIn("U+0430 CYRILLIC SMALL LETTER A", warning)
        self.assertIn("not ASCII", warning)
        self.assertIn("can imitate another ref", warning)
        self.assertTrue(view.request_cell("push-exception", push(CYRILLIC)).plain.startswith("! "))

    def test_fullwidth_invisible_and_bidi_refs_are_warned_about(self) -> None:
        for ref, named in ((FULLWIDTH, "FULLWIDTH LATIN SMALL LETTER M"), (INVISIBLE, "U+200B ZERO WIDTH SPACE"),
                           (BIDI, "RIGHT-TO-LEFT OVERRIDE")):
            with self.subTest(ref=ref):
                (warning,) = view.warnings("push-exception", push(ref))
                self.assertIn(named, warning)
                shown = view.one_line(warning) + view.one_line(view.summary("push-exception", push(ref)))
                self.assertNotIn("\u200b", shown)
                self.assertNotIn("\u202e", shown)

    def test_a_ref_with_many_strange_characters_names_a_few_and_counts_the_rest(self) -> None:
        (warning,) = view.warnings("push-exception", push("refs/heads/" + "\u0430\u0435\u043e\u0440\u0441"))
        self.assertIn("and 2 more", warning)

    def test_the_json_of_once_carries_the_warning(self) -> None:
        from bot_bottle.supervise.store import ProposalRow

        row = ProposalRow(key=1, bottle_id="aaaaaa11", id="push-1", kind="push-exception", payload=push(CYRILLIC),
                          justification="x", timeout_s=600, status="pending", created_at=0.0, imported_at=0.0,
                          updated_at=0.0)
        record = view.proposal_record(row, now=1.0)
        self.assertEqual(record["payload"]["ref"], CYRILLIC, "the payload is kept as the agent sent it")
        self.assertEqual(len(record["warnings"]), 1)


class LookalikeRefOnScreenTest(screen.Case):
    def test_the_detail_warns_above_the_fold_and_never_shows_main(self) -> None:
        self.propose("aaaaaa11", "push-exception", push(CYRILLIC), "push-1", justification="just main")
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.pause(0.2)
            seen.append(screen.screen_text(app))

        self.drive(script)
        self.assertIn("warning: the ref refs/heads/m\\u0430in has characters that are not ASCII", seen[0])
        self.assertIn("grants: this one push of app refs/heads/m\\u0430in", seen[0])
        self.assertNotIn("refs/heads/main", seen[0])


if __name__ == "__main__":
    unittest.main()
