"""The agent's git config for the gate (through a fake ``Bottle`` that records and runs nothing),
and the gate's own files compiled on the host."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import unittest
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.backend import Bottle, ExecResult
from bot_bottle.errors import BotBottleError
from bot_bottle.provision.git import GateRepo, configure_git, gate_files, git_config_script, url_forms
from bot_bottle.sidecar.git_gate.config import parse
from tests._requires import requires

GATE = "http://git-gate.bottle.internal"


@dataclass(frozen=True)
class Repo:
    name: str
    url: str


class FakeBottle(Bottle):
    def __init__(self, returncode: int = 0, stderr: str = "") -> None:
        self.calls: list[tuple[str, str]] = []
        self.result = ExecResult(returncode, "", stderr)

    def exec(self, cmd: str, *, user: str = "node") -> ExecResult:
        self.calls.append((cmd, user))
        return self.result

    def cp_in(self, host_path: str | Path, guest_path: str) -> None:
        raise AssertionError("the git provisioner copies nothing in")

    def agent_argv(self, extra: list[str], *, tty: bool) -> list[str]:
        return []

    def close(self) -> None:
        pass


class UrlFormsTest(unittest.TestCase):
    def test_ssh_declared_url_covers_every_spelling(self) -> None:
        forms = url_forms("git@github.com:org/app.git")
        self.assertEqual(forms[0], "git@github.com:org/app.git")
        for form in ("git@github.com:org/app", "ssh://git@github.com/org/app.git", "ssh://git@github.com/org/app",
                     "ssh://github.com/org/app.git", "https://github.com/org/app.git", "https://github.com/org/app",
                     "http://github.com/org/app.git"):
            self.assertIn(form, forms)
        self.assertEqual(len(forms), len(set(forms)))

    def test_https_declared_url_covers_ssh_too(self) -> None:
        forms = url_forms("https://gitlab.example/group/sub/lib")
        self.assertIn("git@gitlab.example:group/sub/lib.git", forms)
        self.assertIn("https://gitlab.example/group/sub/lib.git", forms)

    def test_ports_stay_with_their_scheme(self) -> None:
        forms = url_forms("ssh://git@git.example:2222/app.git")
        self.assertIn("ssh://git@git.example:2222/app", forms)
        self.assertIn("https://git.example/app.git", forms)
        self.assertFalse(any(f.startswith("git@git.example:") for f in forms))  # scp form cannot carry a port

    def test_local_path_is_itself_only(self) -> None:
        self.assertEqual(url_forms("/srv/git/app.git"), ["/srv/git/app.git"])


class ConfigureGitTest(unittest.TestCase):
    def test_runs_one_script_as_the_agent_user(self) -> None:
        bottle = FakeBottle()
        configure_git(bottle, [Repo("app", "git@github.com:org/app.git")], {"name": "Ada L", "email": "ada@x.org"}, GATE)
        [(script, user)] = bottle.calls
        self.assertEqual(user, "node")
        self.assertIn("git config --global user.name 'Ada L'", script)
        self.assertIn("git config --global user.email ada@x.org", script)
        self.assertIn(f"git config --global --unset-all url.{GATE}/app.git.insteadOf || true", script)
        self.assertIn(f"git config --global --add url.{GATE}/app.git.insteadOf git@github.com:org/app.git", script)

    def test_missing_identity_fields_are_left_alone(self) -> None:
        script = git_config_script([], {"name": None, "email": "e@x"}, GATE)
        self.assertNotIn("user.name", script)
        self.assertIn("user.email", script)

    def test_quotes_what_a_shell_would_read(self) -> None:
        script = git_config_script([Repo("app", "https://h.example/o/app")], {"name": "x'; rm -rf ~; '", "email": None}, GATE)
        self.assertIn("""user.name 'x'"'"'; rm -rf ~; '"'"''""", script)

    def test_failure_is_an_error_that_says_why(self) -> None:
        with self.assertRaisesRegex(BotBottleError, "could not configure git in the bottle: boom"):
            configure_git(FakeBottle(1, "boom"), [Repo("app", "https://h/o/app")], {}, GATE)

    @requires(shutil.which("git") is not None, "git")
    def test_real_git_rewrites_every_form_and_nothing_else(self) -> None:
        with tempfile.TemporaryDirectory() as home:
            env = {"HOME": home, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1"}
            repos = [Repo("app", "git@github.com:org/app.git"), Repo("app-tools", "https://github.com/org/app-tools")]
            script = git_config_script(repos, {"name": "A", "email": "a@x"}, GATE)
            for _ in range(2):  # idempotent
                subprocess.run(["sh", "-c", script], env=env, check=True, capture_output=True)

            def rewritten(url: str) -> str:
                out = subprocess.run(["git", "ls-remote", "--get-url", url], env=env, capture_output=True, text=True)
                return out.stdout.strip()

            for url in url_forms("git@github.com:org/app.git"):
                self.assertEqual(rewritten(url), f"{GATE}/app.git", url)
            self.assertEqual(rewritten("https://github.com/org/app-tools.git"), f"{GATE}/app-tools.git")
            self.assertEqual(rewritten("https://github.com/org/other.git"), "https://github.com/org/other.git")
            listing = subprocess.run(["git", "config", "--global", "--get-all", f"url.{GATE}/app.git.insteadof"],
                                     env=env, capture_output=True, text=True).stdout.splitlines()
            self.assertEqual(len(listing), len(url_forms("git@github.com:org/app.git")))


class GateFilesTest(unittest.TestCase):
    def test_config_and_credentials(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            key = Path(tmp) / "deploy_key"
            key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----")
            files = gate_files(
                [GateRepo("app", "git@github.com:org/app.git", ssh_key=str(key), known_hosts="ssh-ed25519 AAAAC3x"),
                 GateRepo("lib", "https://github.com/org/lib", token_ref="LIB_TOKEN", username="oauth2"),
                 GateRepo("pub", "https://example.org/pub.git"),
                 GateRepo("alt", "ssh://git@git.example:2222/a.git", ssh_key=str(key), known_hosts="ssh-rsa AAAAB")],
                {"name": "Ada", "email": None},
                environ={"LIB_TOKEN": "tok-value-123"},
            )
        config = parse(files.config)  # the gate accepts what the host compiles
        self.assertEqual([r.auth for r in config.repos], ["ssh-key", "https-token", "none", "ssh-key"])
        self.assertEqual(config.user_name, "Ada")
        self.assertEqual(str(config.repos[0].ssh_key_file), "/etc/bot-bottle/git-gate/app.key")
        self.assertEqual(config.repos[1].username, "oauth2")
        self.assertEqual(files.credentials["app.known_hosts"], "github.com ssh-ed25519 AAAAC3x\n")
        self.assertEqual(files.credentials["alt.known_hosts"], "[git.example]:2222 ssh-rsa AAAAB\n")
        self.assertEqual(files.credentials["lib.token"], "tok-value-123\n")
        self.assertTrue(files.credentials["app.key"].endswith("-----\n"))
        self.assertNotIn("tok-value-123", files.config_json())
        self.assertNotIn("tok-value-123", repr(files))

    def test_missing_inputs_are_errors(self) -> None:
        with self.assertRaisesRegex(BotBottleError, "LIB_TOKEN is not set"):
            gate_files([GateRepo("lib", "https://h/lib", token_ref="LIB_TOKEN")], {}, environ={})
        with self.assertRaisesRegex(BotBottleError, "cannot read ssh_key"):
            gate_files([GateRepo("a", "git@h:a", ssh_key="/nonexistent/key", known_hosts="ssh-ed25519 A")], {}, environ={})
        with self.assertRaisesRegex(BotBottleError, "needs known_hosts"):
            gate_files([GateRepo("a", "git@h:a", ssh_key="/k")], {}, environ={})


if __name__ == "__main__":
    unittest.main()
