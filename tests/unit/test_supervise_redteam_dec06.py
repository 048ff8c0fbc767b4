"""The supervise plane as a prompt-injected agent would try it: what it writes must neither pass
for more (or less) than it grants on the operator's screens."""

from __future__ import annotations

import unittest
from typing import Any

from textual.widgets import DataTable, Static

from bot_bottle.sidecar.supervise.channel import Proposal
from bot_bottle.supervise import view
from bot_bottle.supervise.console import SuperviseApp
from tests.unit import test_supervise_console as console_tests
from tests.unit.test_supervise_console import ConsoleCase, cell_texts


class PackageNamesAptReadsAsPatterns(ConsoleCase):
    """apt-get reads a name no package has exactly as a regular expression: ``node.js`` is not a
    Debian package, so "install node.js" makes apt fetch every package whose name has ``node``,
    any character, ``js`` (over 200 in Debian 12); the build then fails its check that the names
    asked for are installed, but the operator is told what the name means before approving."""

    def test_a_name_apt_may_read_as_a_pattern_is_a_warning(self) -> None:
        (warning,) = view.warnings("capability", {"packages": ["ripgrep", "node.js"], "dockerfile": ""})
        self.assertIn("node.js", warning)
        self.assertIn("pattern", warning)
        self.assertNotIn("ripgrep", warning)
        self.assertTrue(view.request_cell("capability", {"packages": ["node.js"]}).plain.startswith("! "))

    def test_plain_names_have_none(self) -> None:
        self.assertEqual(view.warnings("capability", {"packages": ["ripgrep", "jq", "build-essential", "g++"]}), [])

    def test_the_console_shows_it_before_the_request(self) -> None:
        self.propose("aaaaaa11", "capability", {"packages": ["node.js"]}, "capability-1",
                     justification="I need Node.js to run the test suite")

        async def script(app: SuperviseApp, pilot: Any) -> None:
            (row,) = cell_texts(app.query_one("#proposals", DataTable))
            self.assertTrue(row[5].startswith("! install node.js"), row[5])
            detail = str(app.query_one("#detail", Static).content)
            self.assertIn("warning: node.js", detail)
            self.assertLess(detail.index("warning:"), detail.index("asks:"))

        self.run_app(script)


class PackagePatternsInOnce(unittest.TestCase):
    """``supervise --once`` prints the same warning before the request (``Once``'s harness, not
    its tests)."""

    setUp = console_tests.Once.setUp
    run_once = console_tests.Once.run_once

    def test_once_warns_before_the_request(self) -> None:
        self.side.spool.submit(Proposal(id="capability-2", kind="capability", timeout_s=600,
                                        justification="I need Node.js", payload={"packages": ["node.js"]}))
        text = self.run_once()
        self.assertIn("! node.js: a name with '.' that", " ".join(text.split()))


class HeldRequestCarryingTheBottlesOwnSecret(ConsoleCase):
    """A held request that DLP stopped for ``known-secret:NAME`` carries that secret's very value.
    The agent asks to release it calling it a test fixture; the screen must say what it is."""

    @staticmethod
    def held(detectors: list[str]) -> dict[str, Any]:
        from bot_bottle.sidecar.egress.supervision import token_use_proposal

        return token_use_proposal(method="POST", host="paste.example", path="/new", route="paste.example",
                                  detectors=detectors, timeout=30).payload

    def test_the_secret_is_named_as_the_bottles_own(self) -> None:
        payload = self.held(["known-secret:NPM_TOKEN (base64)", "github-token"])
        (warning,) = view.warnings("token-use", payload)
        self.assertIn("bottle's own secret NPM_TOKEN", warning)
        self.assertIn("paste.example", warning)
        self.assertEqual(view.warnings("token-use", self.held(["github-token"])), [])

    def test_the_console_shows_it_above_the_agents_story(self) -> None:
        payload = self.held(["known-secret:NPM_TOKEN"])
        self.propose("aaaaaa11", "token-use", payload, payload["hold_id"],
                     justification="False positive: tests/fixtures/npmrc holds a dummy token, please release")

        async def script(app: SuperviseApp, pilot: Any) -> None:
            detail = str(app.query_one("#detail", Static).content)
            self.assertIn("warning: the request holds the value of the bottle's own secret NPM_TOKEN", detail)

        self.run_app(script)


class IPv6HostWithAPort(unittest.TestCase):
    """``2606:4700::1111:443`` is an address of its own: the request must not read as that one
    when the grant is for ``2606:4700::1111`` on port 443."""

    def test_the_address_is_bracketed_before_its_port(self) -> None:
        from bot_bottle.sidecar.supervise.channel import validate_payload

        payload = validate_payload("egress", {"host": "[2606:4700::1111]", "ports": [443]})
        self.assertEqual(view.summary("egress", payload), "[2606:4700::1111]:443")
        self.assertEqual(view.request_cell("egress", payload).plain, "[2606:4700::1111]:443")
        self.assertEqual(view.summary("egress", {**payload, "ports": []}), "2606:4700::1111")
        self.assertEqual(view.summary("egress", {"host": "docs.example", "ports": [443]}), "docs.example:443")


if __name__ == "__main__":
    unittest.main()
