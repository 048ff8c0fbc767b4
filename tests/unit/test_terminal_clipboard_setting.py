"""``terminal: {clipboard: hold | write}`` in a bottle: read, folded, planned and given to the relay.

The filter's own behaviour with the switch is in test_screen_filter_clipboard.py; a real bottle
on a terminal in tests/integration/test_agent_terminal_clipboard.py.
"""

from __future__ import annotations

import json
import unittest
from typing import Any
from unittest import mock

from bot_bottle import lifecycle, pty_relay
from tests.fixtures import ManifestTestCase

WRITE = "terminal:\n  clipboard: write\n"


class TheSettingIsRead(ManifestTestCase):
    def test_the_default_holds(self) -> None:
        bottle = self.load_bottle("env:\n  TZ: UTC\n")
        self.assertEqual(bottle.clipboard, "hold")
        self.assertIsNone(bottle.clipboard_origin)

    def test_write_is_read_with_its_line(self) -> None:
        bottle = self.load_bottle("env:\n  TZ: UTC\n" + WRITE)
        self.assertEqual(bottle.clipboard, "write")
        self.assertEqual(bottle.clipboard_origin.line, 5)

    def test_a_child_wins_and_a_parent_is_inherited(self) -> None:
        self.mh.bottle("base", WRITE)
        self.assertEqual(self.load_bottle("extends: base\n").clipboard, "write")
        self.assertEqual(self.load_bottle("extends: base\nterminal:\n  clipboard: hold\n", name="c").clipboard,
                         "hold")

    def test_a_wrong_value_names_the_file_line_and_key(self) -> None:
        err = self.bottle_error("env:\n  TZ: UTC\nterminal:\n  clipboard: wrte\n")
        self.assertManifestError(err, path=self.mh.bottles_dir / "b.md", line=5, key="terminal.clipboard",
                                 contains=("did you mean 'write'", "hold, write"))

    def test_a_wrong_shape_or_key_is_an_error(self) -> None:
        err = self.bottle_error("terminal: write\n")
        self.assertManifestError(err, path=self.mh.bottles_dir / "b.md", line=2, key="terminal",
                                 contains="'clipboard'")
        err = self.bottle_error("terminal:\n  clipbaord: write\n", name="c")
        self.assertEqual(err.key, "terminal.clipbaord")
        self.assertIn("did you mean 'clipboard'", str(err))

    def test_a_bool_is_not_a_mode(self) -> None:
        err = self.bottle_error("terminal:\n  clipboard: true\n")
        self.assertEqual(err.key, "terminal.clipboard")


class ThePlanSaysIt(ManifestTestCase):
    def plan(self, frontmatter: str, *argv: str) -> Any:
        self.mh.bottle("b", frontmatter)
        self.mh.agent("a", {"bottle": "b"})
        return self.mh.run_cli("start", "a", "--dry-run", *argv, env={"ANTHROPIC_API_KEY": "k"})

    def test_json(self) -> None:
        result = self.plan(WRITE, "--format", "json")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout)["terminal"], {"clipboard": "write"})

    def test_json_default(self) -> None:
        result = self.plan("env:\n  TZ: UTC\n", "--format", "json")
        self.assertEqual(json.loads(result.stdout)["terminal"], {"clipboard": "hold"})

    def test_text_names_it_only_when_the_agent_may_write(self) -> None:
        self.assertIn("may write your clipboard", self.plan(WRITE).stdout)
        self.assertNotIn("clipboard", self.plan("env:\n  TZ: UTC\n").stdout)


class TheRelayGetsIt(unittest.TestCase):
    def run_agent(self, **kw: Any) -> pty_relay.Relay:
        made: list[pty_relay.Relay] = []

        class Ended(Exception):
            pass

        def start(relay: pty_relay.Relay) -> Any:
            made.append(relay)
            raise Ended  # the relay as built is all this test needs

        with mock.patch.object(pty_relay, "usable", return_value=True), \
                mock.patch.object(pty_relay.Relay, "start", start), \
                mock.patch.object(pty_relay.Relay, "close", lambda relay: None), \
                mock.patch.object(lifecycle, "_terminal_record", return_value=None):
            with self.assertRaises(Ended):
                lifecycle._run_agent(["true"], stdin=None, state=object(), tty=True, **kw)
        return made[0]

    def test_the_relays_filter_passes_clipboard_writes_only_when_asked(self) -> None:
        self.assertFalse(self.run_agent().screen.clipboard_write)
        self.assertTrue(self.run_agent(clipboard_write=True).screen.clipboard_write)


if __name__ == "__main__":
    unittest.main()
