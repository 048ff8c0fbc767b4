"""What `start` refuses before anything is built, and the plan says first: a working tree that is
the home folder (or holds it), and a gate repo's ssh_key that cannot be read. A tree holding
credential folders at its top is named in the plan."""

from __future__ import annotations

import unittest
from pathlib import Path
from unittest import mock

from bot_bottle import lifecycle
from bot_bottle.errors import BotBottleError
from bot_bottle.plan import ImageRefs, resolve
from bot_bottle.provision import workspace
from tests.fixtures import ManifestTestCase


class RefusedTrees(unittest.TestCase):
    home = Path("/home/u")

    def test_home_its_ancestors_and_the_root_are_refused(self) -> None:
        for cwd in (Path("/home/u"), Path("/home"), Path("/")):
            with self.subTest(cwd=cwd):
                self.assertIn("SSH keys", workspace.refused_tree(cwd, self.home) or "")

    def test_a_project_folder_is_fine(self) -> None:
        for cwd in (Path("/home/u/src/app"), Path("/srv/app"), Path("/home/uv")):
            with self.subTest(cwd=cwd):
                self.assertIsNone(workspace.refused_tree(cwd, self.home))


class PlanAndStart(ManifestTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.mh.bottle("dev", {"egress": {"routes": ["pypi.org"]}})
        self.mh.agent("coder", {"bottle": "dev"})

    def test_the_plan_says_a_home_tree_cannot_start(self) -> None:
        result = self.mh.run_cli("start", "coder", "--dry-run", "--cwd", str(self.mh.home), env={"COLUMNS": "200"})
        self.assertIn("cannot start yet: the working tree", result.stderr + result.stdout)
        self.assertIn("your home folder", result.stderr + result.stdout)

    def test_the_plan_names_credential_folders_at_the_top_of_the_tree(self) -> None:
        project = self.mh.cwd / "app"
        (project / ".aws").mkdir(parents=True)
        (project / "src").mkdir()
        result = self.mh.run_cli("start", "coder", "--dry-run", "--cwd", str(project), env={"COLUMNS": "200"})
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn("holds .aws at its top", result.stdout + result.stderr)
        clean = self.mh.cwd / "clean"
        clean.mkdir()
        result = self.mh.run_cli("start", "coder", "--dry-run", "--cwd", str(clean), env={"COLUMNS": "200"})
        self.assertNotIn("at its top", result.stdout + result.stderr)

    def test_start_refuses_before_anything_is_launched(self) -> None:
        manifest = self.load("coder")
        plan = resolve(manifest, images=ImageRefs(agent="agent:test", sidecar="sidecar:test"),
                       environ={}, cwd=self.mh.home)
        backend = mock.Mock()
        with mock.patch.object(lifecycle.registry, "for_name", lambda name: backend), \
                self.assertRaises(BotBottleError) as caught:
            lifecycle.run_bottle(manifest, plan, state_root=self.mh.home / "state",
                                 environ={"HOME": str(self.mh.home)}, prompt_fn=None, tty=False)
        self.assertIn("your home folder", str(caught.exception))
        backend.launcher.assert_not_called()


class SshKeys(ManifestTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.key = self.mh.cwd / "deploy_key"
        self.mh.bottle("dev", "egress:\n  routes: [pypi.org]\ngit-gate:\n  repos:\n    app:\n"
                              "      url: git@github.com:me/app.git\n"
                              f"      ssh_key: {self.key}\n"
                              '      known_hosts: "github.com ssh-ed25519 AAAA"\n')
        self.mh.agent("coder", {"bottle": "dev"})

    def test_a_missing_key_is_named_in_the_plan_and_refused_at_start(self) -> None:
        result = self.mh.run_cli("start", "coder", "--dry-run", env={"COLUMNS": "200"})
        self.assertIn("cannot start yet: git-gate repo app", result.stdout + result.stderr)
        self.assertIn("dev.md:", result.stdout + result.stderr)
        manifest = self.load("coder")
        plan = resolve(manifest, images=ImageRefs(agent="agent:test", sidecar="sidecar:test"), environ={})
        backend = mock.Mock()
        with mock.patch.object(lifecycle.registry, "for_name", lambda name: backend), \
                self.assertRaises(BotBottleError) as caught:
            lifecycle.run_bottle(manifest, plan, state_root=self.mh.home / "state", environ={},
                                 prompt_fn=None, tty=False)
        self.assertIn("ssh_key", str(caught.exception))
        backend.launcher.assert_not_called()

    def test_a_readable_key_says_nothing(self) -> None:
        self.key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n")
        result = self.mh.run_cli("start", "coder", "--dry-run", env={"COLUMNS": "200"})
        self.assertNotIn("ssh_key", result.stdout + result.stderr)


if __name__ == "__main__":
    unittest.main()
