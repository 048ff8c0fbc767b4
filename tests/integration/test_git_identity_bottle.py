"""The agent's git identity in a real bottle: `git commit` works without `git-gate.user`.

Without an identity git refuses to commit ("Please tell me who you are"): a bottle whose manifest
gives none gets one named after the bottle, and `git-gate.user` overrides it.
"""

from __future__ import annotations

import unittest

from bot_bottle import images
from bot_bottle.backend.docker.launch import default_git_fields
from bot_bottle.provision import git
from tests._docker import skip_unless_docker
from tests.integration import _harness as h

COMMIT = ("cd /home/node/workspace && git init -q id-probe && cd id-probe && echo x > f && git add f "
          "&& git commit -qm probe && git log -1 --format='%an <%ae>'")


@skip_unless_docker()
class GitIdentity(unittest.TestCase):
    def setUp(self) -> None:
        images.ensure_image(images.sidecar_image())
        images.ensure_image(images.agent_image("claude"))
        self.home = h.TempHome(self).path

    def commit_author(self, bottle_text: str) -> str:
        layout = h.write_manifests(self.home, bottle=bottle_text)
        bottle, launcher = h.launch(self, h.plan_for(layout), layout.state_dir)
        self.addCleanup(h.remove_bottle, launcher.names.id)
        result = bottle.exec(COMMIT)
        self.assertTrue(result.ok, result.stderr)
        return result.stdout.strip()

    def test_a_bottle_without_git_gate_user_commits_as_its_default(self) -> None:
        self.assertEqual(self.commit_author(h.NO_CREDENTIAL_BOTTLE), "test agent (bot-bottle) <test@bot-bottle.invalid>")

    def test_an_identity_the_agent_set_survives_provisioning_again(self) -> None:
        layout = h.write_manifests(self.home, bottle=h.NO_CREDENTIAL_BOTTLE)
        plan = h.plan_for(layout)
        bottle, launcher = h.launch(self, plan, layout.state_dir)
        self.addCleanup(h.remove_bottle, launcher.names.id)
        self.assertTrue(bottle.exec("git config --global user.name 'Own Name'").ok)
        # What a resume does: git provisioned again, the default only where the agent has none.
        git.configure_git(bottle, plan.repos, plan.git_user, unless_set=default_git_fields(plan))
        got = bottle.exec("git config --global user.name; git config --global user.email").stdout.split("\n")
        self.assertEqual(got[:2], ["Own Name", "test@bot-bottle.invalid"])

    def test_git_gate_user_overrides_the_default(self) -> None:
        manifest = h.NO_CREDENTIAL_BOTTLE.replace(
            "egress:", "git-gate:\n  user:\n    name: Ada Bot\n    email: ada@example.com\negress:", 1)
        self.assertEqual(self.commit_author(manifest), "Ada Bot <ada@example.com>")


if __name__ == "__main__":
    unittest.main()
