"""Provisioning the agent's prompt, skills and settings through the bottle handle only."""

from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path

from bot_bottle.errors import BotBottleError
from bot_bottle.provision import agent_files
from tests.fake_bottle import FakeBottle


class AgentFiles(unittest.TestCase):
    def setUp(self) -> None:
        self.bottle = FakeBottle()
        self.addCleanup(self.bottle.close)
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.host = Path(tmp.name)

    def test_prompt_goes_where_each_provider_reads_it(self) -> None:
        for template, expected in (
            ("claude", "/home/node/.claude/CLAUDE.md"),
            ("codex", "/home/node/.codex/AGENTS.md"),
            ("my-plugin", "/home/node/.bot-bottle/system-prompt.md"),
        ):
            with self.subTest(template=template):
                agent_files.provision_start_files(self.bottle, template, "Be careful.\n\nUse tests.", supervise=False)
                self.assertEqual(self.bottle.prompt_path, expected)
                self.assertEqual(self.bottle.guest(expected).read_text(), "Be careful.\n\nUse tests.\n")

    def test_empty_prompt_writes_nothing(self) -> None:
        self.assertEqual(agent_files.prompt_files("claude", "  \n"), {})
        agent_files.provision_start_files(self.bottle, "claude", "  \n", supervise=False)
        self.assertIsNone(self.bottle.prompt_path)
        self.assertFalse(self.bottle.guest("/home/node/.claude/CLAUDE.md").exists())

    def test_skills_are_found_in_order_and_copied(self) -> None:
        first, second = self.host / "cwd-skills", self.host / "home-skills"
        (first / "review").mkdir(parents=True)
        (first / "review" / "SKILL.md").write_text("cwd review")
        (second / "review").mkdir(parents=True)
        (second / "review" / "SKILL.md").write_text("home review")
        (second / "deploy" / "scripts").mkdir(parents=True)
        (second / "deploy" / "SKILL.md").write_text("deploy")
        (second / "deploy" / "scripts" / "run.sh").write_text("echo hi")
        found = agent_files.find_skills(["review", "deploy"], [first, second])
        self.assertEqual([(n, p) for n, p in found], [("review", first / "review"), ("deploy", second / "deploy")])
        copied = agent_files.copy_skills(self.bottle, "claude", found)
        self.assertEqual(copied, ["/home/node/.claude/skills/review", "/home/node/.claude/skills/deploy"])
        self.assertEqual(self.bottle.guest("/home/node/.claude/skills/review/SKILL.md").read_text(), "cwd review")
        self.assertTrue(self.bottle.guest("/home/node/.claude/skills/deploy/scripts/run.sh").is_file())

    def test_missing_skill_is_a_clear_error(self) -> None:
        with self.assertRaises(BotBottleError) as ctx:
            agent_files.find_skills(["nope"], [self.host / "a", self.host / "b"])
        self.assertIn("skill 'nope' not found", str(ctx.exception))
        self.assertIn(str(self.host / "a"), str(ctx.exception))

    def test_claude_settings_skip_prompts_and_onboarding(self) -> None:
        agent_files.provision_start_files(self.bottle, "claude", "", supervise=False)
        settings = json.loads(self.bottle.guest("/home/node/.claude/settings.json").read_text())
        self.assertEqual(settings["permissions"]["defaultMode"], "bypassPermissions")
        state = json.loads(self.bottle.guest("/home/node/.claude.json").read_text())
        self.assertTrue(state["hasCompletedOnboarding"])

    def test_codex_config_names_the_real_api_host_and_no_inner_sandbox(self) -> None:
        agent_files.provision_start_files(self.bottle, "codex", "", supervise=False)
        import tomllib

        config = tomllib.loads(self.bottle.guest("/home/node/.codex/config.toml").read_text())
        self.assertEqual(config["model_provider"], "bottle")
        self.assertEqual(config["model_providers"]["bottle"]["base_url"], "https://api.openai.com/v1")
        self.assertEqual(config["sandbox_mode"], "danger-full-access")

    def test_skill_folder_search_order(self) -> None:
        folders = agent_files.host_skill_folders(Path("/h"), Path("/w"))
        self.assertEqual(folders[0], Path("/w/.claude/skills"))
        self.assertIn(Path("/h/.claude/skills"), folders)


if __name__ == "__main__":
    unittest.main()
