"""The interactive agent gets the user's terminal type, not `docker exec -t`'s 8-colour xterm."""

from __future__ import annotations

import os
import unittest
from unittest import mock

from bot_bottle.backend.docker.bottle import DockerBottle, terminal_env


class TerminalEnv(unittest.TestCase):
    def test_a_known_terminal_type_is_passed_on(self) -> None:
        for term in ("xterm-256color", "screen-256color", "tmux-256color", "xterm", "dumb"):
            with self.subTest(term=term):
                self.assertEqual(terminal_env({"TERM": term}), {"TERM": term})

    def test_one_the_images_cannot_describe_becomes_xterm_256color(self) -> None:
        for host in ({"TERM": "xterm-kitty"}, {"TERM": "alacritty"}, {"TERM": "xterm-256color; rm -rf /"}, {}):
            with self.subTest(host=host):
                self.assertEqual(terminal_env(host), {"TERM": "xterm-256color"})

    def test_truecolor_is_passed_on_when_the_host_has_it(self) -> None:
        for colorterm, expected in (("truecolor", "truecolor"), ("24bit", "truecolor"), ("TrueColor", "truecolor")):
            with self.subTest(colorterm=colorterm):
                self.assertEqual(terminal_env({"TERM": "xterm-256color", "COLORTERM": colorterm}),
                                 {"TERM": "xterm-256color", "COLORTERM": expected})
        for colorterm in ("", "yes", "rxvt-xpm"):
            with self.subTest(colorterm=colorterm):
                self.assertNotIn("COLORTERM", terminal_env({"TERM": "xterm-256color", "COLORTERM": colorterm}))


class InteractiveExecOnly(unittest.TestCase):
    def test_the_interactive_agent_exec_carries_the_terminal_type(self) -> None:
        bottle = DockerBottle(container="bb-t", agent_command="claude")
        with mock.patch.dict(os.environ, {"TERM": "screen-256color", "COLORTERM": "truecolor"}):
            argv = bottle.agent_argv([], tty=True)
            plain = bottle.agent_argv(["-p", "x"], tty=False)
        self.assertEqual(argv[:8], ["docker", "exec", "-it", "-e", "TERM=screen-256color",
                                    "-e", "COLORTERM=truecolor", "-u"])
        self.assertFalse([a for a in plain if a.startswith(("TERM=", "COLORTERM="))], "only with a terminal")
        self.assertNotIn("-e", plain[:plain.index("bb-t")])

    def test_other_execs_are_left_alone(self) -> None:
        bottle = DockerBottle(container="bb-t")
        with mock.patch.dict(os.environ, {"TERM": "screen-256color"}):
            self.assertNotIn("-e", bottle.exec_argv("true"))


if __name__ == "__main__":
    unittest.main()
