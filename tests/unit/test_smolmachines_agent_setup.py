"""A micro-VM bottle gives the agent what a Docker bottle gives it: the user's terminal type on an
interactive run, and bot-bottle's default git identity only where the agent set none of its own
(so one it set survives a resume). And no out-of-memory end is ever claimed for it."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle import lifecycle
from bot_bottle.backend import agent_setup
from bot_bottle.backend.docker.launch import LaunchOptions
from bot_bottle.backend.smolmachines.bottle import SmolmachinesBottle
from bot_bottle.backend.smolmachines.launch import SmolmachinesLauncher
from bot_bottle.plan import DEFAULT_GIT_USER_SOURCE
from tests.unit.test_smolmachines_fakehost import V08, V1, FakeHost, bottle_plan, env_pairs

HOST_TERMINAL = {"TERM": "screen-256color", "COLORTERM": "truecolor"}


def flag_count(argv: list[str], name: str) -> int:
    """How many ``-e NAME=...`` flags the argv carries before its ``--``."""
    end = argv.index("--")
    return sum(1 for i in range(end - 1) if argv[i] == "-e" and argv[i + 1].startswith(f"{name}="))


class TerminalOnInteractiveRuns(unittest.TestCase):
    def bottle(self, cli=V1, guest_env: dict[str, str] | None = None) -> SmolmachinesBottle:
        return SmolmachinesBottle("bot-bottle-t", guest_env=guest_env or {"LIT": "plain"}, cli=cli)

    def test_the_interactive_agent_gets_the_users_terminal_type(self) -> None:
        for cli in (V1, V08):
            with self.subTest(version=cli.version), mock.patch.dict(os.environ, HOST_TERMINAL):
                env = env_pairs(self.bottle(cli).agent_argv([], tty=True))
            self.assertEqual(env, {"LIT": "plain", "TERM": "screen-256color", "COLORTERM": "truecolor"})

    def test_a_terminal_the_image_cannot_describe_becomes_xterm_256color(self) -> None:
        with mock.patch.dict(os.environ, {"TERM": "xterm-kitty"}):
            os.environ.pop("COLORTERM", None)  # patch.dict puts the whole environment back
            env = env_pairs(self.bottle().agent_argv([], tty=True))
        self.assertEqual(env["TERM"], "xterm-256color")
        self.assertNotIn("COLORTERM", env)

    def test_the_users_terminal_wins_over_a_term_in_the_manifests_env_once(self) -> None:
        with mock.patch.dict(os.environ, HOST_TERMINAL):
            argv = self.bottle(guest_env={"TERM": "vt100"}).agent_argv([], tty=True)
        self.assertEqual(env_pairs(argv)["TERM"], "screen-256color")
        self.assertEqual(flag_count(argv, "TERM"), 1)

    def test_runs_without_a_terminal_and_provisioning_are_left_alone(self) -> None:
        bottle = self.bottle()
        with mock.patch.dict(os.environ, HOST_TERMINAL):
            headless = bottle.agent_argv(["-p", "x"], tty=False)
            provisioning = bottle.exec_argv("true")
        for argv in (headless, provisioning):
            self.assertEqual(flag_count(argv, "TERM") + flag_count(argv, "COLORTERM"), 0, argv)
        self.assertEqual(bottle.guest_env, {"LIT": "plain"}, "the handle's own env is not changed")

    def test_docker_and_smolmachines_share_one_rule(self) -> None:
        from bot_bottle.backend.docker import bottle as docker_bottle

        self.assertIs(docker_bottle.terminal_env, agent_setup.terminal_env)


class GitIdentity(unittest.TestCase):
    """The git config script a launch runs, taken from the fake host and run by sh with a real git
    in a private HOME, as the agent user runs it in the guest."""

    def setUp(self) -> None:
        self.fake = FakeHost()
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.state_root = Path(tmp.name) / "state"
        self.home = Path(tmp.name) / "home"
        self.home.mkdir()
        self.git_env = {"HOME": str(self.home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                        "GIT_CONFIG_NOSYSTEM": "1"}
        self.plan, self.options = bottle_plan(self, "smolmachines")

    def run_in_guest(self, script: str) -> None:
        subprocess.run(["sh", "-c", script], env=self.git_env, check=True, capture_output=True)

    def git_get(self, key: str) -> str:
        return subprocess.run(["git", "config", "--global", key], env=self.git_env, capture_output=True,
                              text=True).stdout.strip()

    def launch_and_resume(self) -> tuple[str, str]:
        """The git config scripts of a start and of its resume (the fake host runs nothing)."""
        with self.fake.installed(V1):
            first = SmolmachinesLauncher(self.plan, self.options, self.state_root)
            first.launch()
            first.preserve_reason = "asked to preserve"
            first.teardown()
            resumed = SmolmachinesLauncher(self.plan, LaunchOptions(
                env=self.options.env, known_secrets=self.options.known_secrets,
                bottle_id=first.names.id, resume=True,
            ), self.state_root)
            resumed.launch()
            resumed.teardown()
        scripts = [c[-1] for c in self.fake.smolvm_calls() if c[:2] == ["machine", "exec"] and "git config" in c[-1]]
        self.assertEqual(len(scripts), 2, "git is configured at the start and again at the resume")
        return scripts[0], scripts[1]

    def test_an_identity_the_agent_set_survives_a_resume(self) -> None:
        self.assertEqual(set(self.plan.git_user_sources.values()), {DEFAULT_GIT_USER_SOURCE})
        start, resume = self.launch_and_resume()
        self.run_in_guest(start)
        default = (self.plan.git_user["name"], self.plan.git_user["email"])
        self.assertEqual((self.git_get("user.name"), self.git_get("user.email")), default)
        self.run_in_guest("git config --global user.name 'Own Name'")
        self.run_in_guest(resume)
        self.assertEqual((self.git_get("user.name"), self.git_get("user.email")), ("Own Name", default[1]))

    def test_git_gate_user_is_written_every_time(self) -> None:
        self.plan = dataclasses.replace(
            self.plan, git_user={"name": "Ada", "email": "ada@example.com"},
            git_user_sources={"name": "dev.md:4", "email": "dev.md:5"},
        )
        _, resume = self.launch_and_resume()
        self.run_in_guest("git config --global user.name 'Own Name'")
        self.run_in_guest(resume)
        self.assertEqual((self.git_get("user.name"), self.git_get("user.email")), ("Ada", "ada@example.com"))


class NoMemoryEnd(unittest.TestCase):
    def test_an_end_in_a_micro_vm_is_never_called_a_lack_of_memory(self) -> None:
        # smolvm documents no reason a machine or a process in it ended: nothing to ask.
        bottle = SmolmachinesBottle("bot-bottle-t", cli=V1)
        self.assertFalse(hasattr(bottle, "memory_end"))
        self.assertIsNone(lifecycle._memory_end(bottle, 137, None, alive=None))


if __name__ == "__main__":
    unittest.main()
