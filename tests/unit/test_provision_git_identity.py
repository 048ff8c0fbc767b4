"""The agent's git identity: the manifest's ``git-gate.user``, else bot-bottle's default, which
never replaces one the agent set itself (a resume provisions git again)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from bot_bottle.backend.agent_setup import default_git_fields
from bot_bottle.manifest.model import GitUser
from bot_bottle.plan import DEFAULT_GIT_USER_SOURCE, default_git_user, git_identity
from bot_bottle.provision.git import git_config_script
from tests._requires import requires

DEFAULT = {"name": "dev agent (bot-bottle)", "email": "dev@bot-bottle.invalid"}


class Identity(unittest.TestCase):
    def test_the_default_names_the_bottle_and_nobody_on_the_host(self) -> None:
        self.assertEqual(default_git_user("dev"), DEFAULT)
        identity, sources = git_identity(GitUser(), "dev")
        self.assertEqual(identity, DEFAULT)
        self.assertEqual(sources, {"name": DEFAULT_GIT_USER_SOURCE, "email": DEFAULT_GIT_USER_SOURCE})
        for value in (os.environ.get("USER"), os.environ.get("LOGNAME")):
            if value and value not in ("dev", "agent", "bot"):
                self.assertNotIn(value, str(identity))

    def test_git_gate_user_wins_field_by_field(self) -> None:
        identity, sources = git_identity(GitUser(email="ada@example.com"), "dev")
        self.assertEqual(identity, {"name": DEFAULT["name"], "email": "ada@example.com"})
        self.assertEqual(sources, {"name": DEFAULT_GIT_USER_SOURCE, "email": None})

    def test_only_default_fields_are_written_unless_set(self) -> None:
        class Plan:
            git_user_sources = {"name": DEFAULT_GIT_USER_SOURCE, "email": "/home/u/.bot-bottle/bottles/dev.md:4"}

        self.assertEqual(default_git_fields(Plan()), ["name"])  # type: ignore[arg-type]


@requires(shutil.which("git") is not None, "git")
class ScriptAgainstRealGit(unittest.TestCase):
    """The script run by sh with a real git, in a private HOME (as the agent user runs it)."""

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.env = {"HOME": tmp.name, "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "GIT_CONFIG_NOSYSTEM": "1"}
        self.home = Path(tmp.name)

    def run_script(self, script: str) -> None:
        subprocess.run(["sh", "-c", script], env=self.env, check=True, capture_output=True)

    def get(self, key: str) -> str:
        return subprocess.run(["git", "config", "--global", key], env=self.env, capture_output=True,
                              text=True).stdout.strip()

    def test_a_fresh_bottle_gets_the_default(self) -> None:
        self.run_script(git_config_script([], DEFAULT, "http://gate", unless_set=["name", "email"]))
        self.assertEqual((self.get("user.name"), self.get("user.email")), (DEFAULT["name"], DEFAULT["email"]))

    def test_an_identity_the_agent_set_survives_a_resume(self) -> None:
        self.run_script(git_config_script([], DEFAULT, "http://gate", unless_set=["name", "email"]))
        self.run_script("git config --global user.name 'Own Name'")
        self.run_script(git_config_script([], DEFAULT, "http://gate", unless_set=["name", "email"]))
        self.assertEqual((self.get("user.name"), self.get("user.email")), ("Own Name", DEFAULT["email"]))

    def test_git_gate_user_is_written_every_time(self) -> None:
        self.run_script("git config --global user.name 'Own Name'")
        self.run_script(git_config_script([], {"name": "Ada", "email": "ada@example.com"}, "http://gate"))
        self.assertEqual(self.get("user.name"), "Ada")


if __name__ == "__main__":
    unittest.main()
