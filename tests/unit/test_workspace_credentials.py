"""Credential files at the top of a ``--cwd`` tree are named in the plan, never shown.

Beyond the credential folders (``.ssh``, ``.aws``...): git's stored credentials, package registry
tokens (``.npmrc`` with an auth key, ``.pypirc``), dotenv files (their templates aside), and a
``.git/config`` whose remote URLs or headers carry a credential.
"""

from __future__ import annotations

import os
import tempfile
import unittest
from pathlib import Path

from bot_bottle.provision import workspace
from tests.fixtures import ManifestTestCase

TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
NPM_TOKEN = "npm_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
ORIGIN = '[core]\n\tbare = false\n[remote "origin"]\n\turl = {url}\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n'


class CredentialEntries(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.tree = Path(tmp.name)

    def write(self, rel: str, text: str = "x\n") -> Path:
        path = self.tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def test_credential_files_by_name(self) -> None:
        for name in (".git-credentials", ".pypirc"):
            self.write(name)
        self.assertEqual(workspace.credential_entries(self.tree), [".git-credentials", ".pypirc"])

    def test_dotenv_files_but_not_their_templates(self) -> None:
        for name in (".env", ".env.local", ".env.production", ".env.example", ".env.sample", ".env.template",
                     ".environment", "env"):
            self.write(name)
        self.assertEqual(workspace.credential_entries(self.tree), [".env", ".env.local", ".env.production"])

    def test_a_virtual_environment_named_env_is_no_dotenv_file(self) -> None:
        (self.tree / ".env" / "bin").mkdir(parents=True)
        self.write(".env/pyvenv.cfg", "home = /usr/bin\n")
        self.assertEqual(workspace.credential_entries(self.tree), [])

    def test_an_npmrc_only_with_a_token_in_it(self) -> None:
        npmrc = self.write(".npmrc", "registry=https://registry.npmjs.org/\nsave-exact=true\n")
        self.assertEqual(workspace.credential_entries(self.tree), [], "settings only")
        npmrc.write_text("//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n")
        self.assertEqual(workspace.credential_entries(self.tree), [], "it names a variable, the value is elsewhere")
        for text in (f"//registry.npmjs.org/:_authToken={NPM_TOKEN}\n", "_auth = dXNlcjpwYXNz\n",
                     "//npm.example/:_password=c2VjcmV0\n"):
            with self.subTest(text=text):
                npmrc.write_text(text)
                self.assertEqual(workspace.credential_entries(self.tree), [".npmrc"])

    def test_a_git_config_with_a_credential_in_a_url_or_header(self) -> None:
        config = self.write(".git/config")
        clean = ("https://github.com/o/r.git", "git@github.com:o/r.git", "ssh://git@github.com:22/o/r.git",
                 "https://me@dev.azure.com/org/r")
        for url in clean:
            with self.subTest(url=url):
                config.write_text(ORIGIN.format(url=url))
                self.assertEqual(workspace.credential_entries(self.tree), [])
        secret = (ORIGIN.format(url=f"https://x-access-token:{TOKEN}@github.com/o/r.git"),
                  ORIGIN.format(url=f"https://{TOKEN}@github.com/o/r.git"),
                  '[remote "o"]\n\tpushurl = https://deploy:hunter2@git.example/r.git\n',
                  f'[url "https://x:{TOKEN}@github.com/"]\n\tinsteadOf = https://github.com/\n',
                  '[http "https://github.com/"]\n\textraheader = AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46Z2hw\n')
        for text in secret:
            with self.subTest(text=text):
                config.write_text(text)
                self.assertEqual(workspace.credential_entries(self.tree), [workspace.GIT_CONFIG_WITH_CREDENTIALS])

    def test_links_are_not_followed(self) -> None:
        # A link is copied in as a link: what it points to never enters the bottle.
        outside = self.write("../outside.npmrc", f"//registry.npmjs.org/:_authToken={NPM_TOKEN}\n")
        self.addCleanup(outside.unlink)
        os.symlink(outside, self.tree / ".npmrc")
        self.assertEqual(workspace.credential_entries(self.tree), [])

    def test_the_old_folders_are_still_named(self) -> None:
        (self.tree / ".ssh").mkdir()
        self.write(".env")
        self.assertEqual(workspace.credential_entries(self.tree), [".ssh", ".env"])


class ThePlanNamesThem(ManifestTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.mh.bottle("dev", {"egress": {"routes": ["pypi.org"]}})
        self.mh.agent("coder", {"bottle": "dev"})

    def test_named_as_a_warning_and_no_value_printed(self) -> None:
        project = self.mh.cwd / "app"
        (project / ".git").mkdir(parents=True)
        (project / ".git" / "config").write_text(ORIGIN.format(url=f"https://x-access-token:{TOKEN}@github.com/o/r.git"))
        (project / ".git-credentials").write_text(f"https://x-access-token:{TOKEN}@github.com\n")
        (project / ".npmrc").write_text(f"//registry.npmjs.org/:_authToken={NPM_TOKEN}\n")
        (project / ".env").write_text("API_KEY=sk-test-value-1234567890\n")
        (project / ".env.example").write_text("API_KEY=\n")
        (project / ".pypirc").write_text("[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmc\n")
        for args in ((), ("--format", "json")):
            with self.subTest(args=args):
                result = self.mh.run_cli("start", "coder", "--dry-run", "--cwd", str(project), *args,
                                         env={"COLUMNS": "400"})
                self.assertEqual(result.code, 0, result.stderr)
                out = " ".join((result.stdout + result.stderr).split())
                for name in (".git-credentials", ".pypirc", ".env,", ".npmrc", ".git/config"):
                    self.assertIn(name, out)
                self.assertNotIn(".env.example", out)
                for value in (TOKEN, NPM_TOKEN, "sk-test-value", "pypi-AgEI"):
                    self.assertNotIn(value, out)
                self.assertNotIn("cannot start yet", out, "a warning, as for .ssh, not a refusal")


if __name__ == "__main__":
    unittest.main()
