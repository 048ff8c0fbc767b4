"""The console at 80x24 with what a hostile agent asked for: the request cell keeps a long host's
end, and an internationalised host is pointed out, both on the first screen."""

from __future__ import annotations

from typing import Any

from bot_bottle.supervise.console import SuperviseApp
from tests.unit import test_supervise_console_screen as screen

LONG_HOST = "api.github.com." + "a" * 40 + ".evil.example"


class HostileHostOnScreenTest(screen.Case):
    def test_the_proposals_table_shows_the_end_of_a_long_host(self) -> None:
        self.propose("aaaaaa11", "egress", {"host": LONG_HOST, "ports": [443]}, "egress-1",
                     justification="the GitHub API")
        rows: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.pause(0.2)
            text = screen.screen_text(app)
            rows.extend(line for line in text.splitlines() if "egress" in line and "…" in line)

        self.drive(script)
        self.assertTrue(rows, "the request is cut in the table at 80 columns")
        self.assertIn(".evil.example", rows[0])
        self.assertNotIn("api.github.com", rows[0])

    def test_an_internationalised_host_is_warned_about_above_the_fold(self) -> None:
        self.propose("aaaaaa11", "egress", {"host": "xn--80ak6aa92e.com", "ports": [443]}, "egress-1",
                     justification="the vendor's site")
        seen: list[str] = []

        async def script(app: SuperviseApp, pilot: Any) -> None:
            await pilot.pause(0.2)
            seen.append(screen.screen_text(app))

        self.drive(script)
        self.assertIn("warning: xn--80ak6aa92e.com is an internationalised name", seen[0])
        self.assertIn("\u0430\u0440\u0440\u04cf\u0435.com", seen[0])
