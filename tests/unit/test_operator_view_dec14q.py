"""What the operator reads of agent-chosen targets: a push-exception's repository and a refused
request's reason or error are spelled with escapes beyond ASCII, as hosts, paths and refs are
(the console's detail, ``--once``, ``bot-bottle logs`` and the console's events pane); and a host
that starts like a well-known one's but lies under another name (``api.github.com.evil.example``)
gets a warning saying whose it is."""

from __future__ import annotations

import unittest
from typing import Any

from textual.widgets import RichLog

from bot_bottle.cli.logs import format_text
from bot_bottle.supervise import view
from bot_bottle.supervise.console import SuperviseApp
from bot_bottle.supervise.store import ProposalRow
from tests.unit.test_supervise_console_screen import Case, screen_text

BOTTLE = "aaaaaa11"
CYRILLIC_REPO = "\u0430pp"  # "app" with a Cyrillic a
HEBREW_HOST = "\u05d0\u05d1.example"


def push(repo: str, **extra: Any) -> dict[str, Any]:
    return {"repo": repo, "ref": "refs/heads/main", "old": "1" * 40, "new": "2" * 40, "finding": "gf-0123456789ab",
            "detectors": ["aws-access-key"], **extra}


def egress(host: str) -> dict[str, Any]:
    return {"host": host, "paths": ["/v1/"], "methods": ["GET"], "ports": [443]}


def lookalike(host: str) -> list[str]:
    return [w for w in view.host_warnings(host) if "is not a host of" in w]


class RepoAsSpelled(unittest.TestCase):
    def test_a_lookalike_repo_is_escaped_in_every_line(self) -> None:
        payload = push(CYRILLIC_REPO, detectors=["known-secret:DEPLOY_KEY"])
        lines = [view.summary("push-exception", payload), view.grants("push-exception", payload),
                 view.request_cell("push-exception", payload, 80).plain, *view.warnings("push-exception", payload)]
        for line in lines:
            with self.subTest(line=line):
                self.assertNotIn("\u0430", line)
        self.assertIn("push \\u0430pp refs/heads/main", lines[0])
        self.assertIn("this one push of \\u0430pp refs/heads/main", lines[1])
        self.assertIn("sends it to \\u0430pp's remote", lines[3])

    def test_an_ascii_repo_reads_as_before(self) -> None:
        self.assertEqual(view.summary("push-exception", push("app")),
                         "push app refs/heads/main 11111111..22222222 (finding gf-0123456789ab: aws-access-key)")

    def test_the_once_record_carries_the_escaped_repo(self) -> None:
        row = ProposalRow(key=1, bottle_id=BOTTLE, id="p1", kind="push-exception", payload=push(CYRILLIC_REPO),
                          justification="", timeout_s=600.0, status="pending", created_at=0.0, imported_at=0.0,
                          updated_at=0.0)
        self.assertIn("push \\u0430pp ", view.proposal_record(row, now=1.0)["summary"])

    def test_a_held_requests_route_in_its_warning_is_escaped(self) -> None:
        payload = {"route": "\u0430pi.example", "method": "POST", "host": "api.example", "path": "/",
                   "detectors": ["known-secret:TOKEN"]}
        warning = next(w for w in view.warnings("token-use", payload) if "own secret" in w)
        self.assertIn("through route \\u0430pi.example,", warning)


class ReasonAsSpelled(unittest.TestCase):
    RECORD = {"ts": "2026-01-02T03:04:05.678Z", "event": "egress", "decision": "deny", "rule": "no-route",
              "host": "x.example", "port": 443, "method": "GET", "path": "/", "connect": False}

    def line(self, **fields: Any) -> str:
        return format_text({**self.RECORD, **fields}).plain

    def test_a_reason_quoting_a_lookalike_host_is_escaped(self) -> None:
        line = self.line(host="\u0430pi.github.com", reason="no route for \u0430pi.github.com")
        self.assertIn("no route for \\u0430pi.github.com", line)
        self.assertTrue(line.isascii())

    def test_a_right_to_left_error_cannot_reorder_the_line(self) -> None:
        line = self.line(decision="allow", rule="route", error=f"cannot connect to {HEBREW_HOST}:443")
        self.assertIn("error: cannot connect to \\u05d0\\u05d1.example:443", line)
        self.assertTrue(line.isascii())

    def test_ascii_and_undecodable_reasons_read_as_before(self) -> None:
        self.assertIn("  no route for docs.example (routes: a.example)",
                      self.line(reason="no route for docs.example (routes: a.example)"))
        self.assertIn("error: torn \ufffd byte", self.line(error="torn \ufffd byte"))

    def test_control_characters_stay_escaped_once(self) -> None:
        line = self.line(reason="a\nb \u0430")
        self.assertIn("a\\nb \\u0430", line)


class LookalikeHostWarning(unittest.TestCase):
    def test_a_host_that_starts_like_a_providers_is_said_to_be_anothers(self) -> None:
        cases = {
            "api.github.com.evil.example": ("github.com", "under evil.example"),
            "github.com-login.example": ("github.com", "under com-login.example"),
            "api.anthropic.com.evil.example": ("anthropic.com", "under evil.example"),
            "api.openai.com.attacker.example": ("openai.com", "under attacker.example"),
            "pypi.org.mirror.evil.co.uk": ("pypi.org", "under evil.co.uk"),
            "registry.npmjs.org.evil.com.au": ("npmjs.org", "under evil.com.au"),
            "*.api.github.com.evil.example": ("github.com", "under evil.example"),
            "api.github.com.evil.github.io": ("github.com", "a site under github.io, where anybody can make one"),
            "API.GitHub.com.Evil.Example.": ("github.com", "under evil.example"),
        }
        for host, (known, owner) in cases.items():
            with self.subTest(host=host):
                found = lookalike(host)
                self.assertEqual(len(found), 1, view.host_warnings(host))
                self.assertIn(f"is not a host of {known}:", found[0])
                self.assertIn(owner, found[0])

    def test_benign_lookalikes_get_no_such_warning(self) -> None:
        for host in ("api.github.com", "github.com", "uploads.github.com", "*.github.com", "*.api.github.com",
                     "objects.githubusercontent.com", "api.anthropic.com", "api.openai.com", "pypi.org",
                     "files.pythonhosted.org", "registry.npmjs.org", "registry-1.docker.io", "github.community",
                     "gitlab.company.com", "api.openai.azure.com", "notgithub.com.example", "mygithub.com",
                     "github.com.github.com", "docs.example", "pypi.organic.example", "openai.community.example"):
            with self.subTest(host=host):
                self.assertEqual(lookalike(host), [])

    def test_the_warning_marks_the_table_row(self) -> None:
        self.assertTrue(view.request_cell("egress", egress("api.github.com.evil.example")).plain.startswith("! "))
        self.assertFalse(view.request_cell("egress", egress("api.github.com")).plain.startswith("!"))

    def test_registrable_names(self) -> None:
        self.assertEqual(view.registrable("a.b.evil.example"), "evil.example")
        self.assertEqual(view.registrable("a.evil.co.uk"), "evil.co.uk")
        self.assertEqual(view.registrable("evil.co.uk"), "evil.co.uk")
        self.assertEqual(view.registrable("co.uk"), "co.uk")
        self.assertEqual(view.registrable("a.evil.uk"), "evil.uk")


class ConsoleShowsThem(Case):
    def shown(self, kind: str, payload: dict[str, Any], key: str) -> str:
        self.propose(BOTTLE, kind, payload, key, justification="routine")
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.pause(0.2)
            seen.append(screen_text(app))

        self.drive(script, size=(200, 40))
        return seen[0]

    def test_the_detail_shows_a_lookalike_repo_escaped(self) -> None:
        screen = self.shown("push-exception", push(CYRILLIC_REPO), "push-1")
        self.assertNotIn("\u0430", screen)
        asks = next(line for line in screen.splitlines() if "asks:" in line)
        self.assertIn("push \\u0430pp refs/heads/main", asks)
        grants = next(line for line in screen.splitlines() if "grants:" in line)
        self.assertIn("this one push of \\u0430pp", grants)

    def test_the_detail_warns_of_a_providers_lookalike_host(self) -> None:
        screen = self.shown("egress", egress("api.github.com.evil.example"), "e-look")
        flat = "".join(screen.split())  # the detail wraps long lines
        self.assertIn("warning:api.github.com.evil.exampleisnotahostofgithub.com", flat)
        self.assertIn("whoeverownsevil.example", flat)
        row = next(line for line in screen.splitlines() if " egress " in line)
        self.assertIn("! api.github.com.evil.example", row)

    def test_the_events_pane_spells_a_reason_with_escapes(self) -> None:
        self.sidecars[BOTTLE].log_lines({"ts": "2026-11-22T05:29:01.000Z", "decision": "deny", "rule": "no-route",
                                         "host": "\u0430pi.github.com", "port": 443, "method": "GET", "path": "/",
                                         "reason": "no route for \u0430pi.github.com"})
        lines: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            log = app.query_one("#events", RichLog)
            await self.until(pilot, lambda: len(log.lines) == 1)
            lines.extend(strip.text for strip in log.lines)

        self.drive(script, size=(200, 40))
        self.assertIn("no route for \\u0430pi.github.com", lines[0])
        self.assertNotIn("\u0430", lines[0])


if __name__ == "__main__":
    unittest.main()
