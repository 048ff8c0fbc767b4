"""What each agent CLI is told at its start so that it runs in a bottle without stopping at a
first-run question and without calling hosts the proxy refuses; and where a plugin's CLI reads
its files (its base template's when it runs that CLI, bot-bottle's own place otherwise)."""

from __future__ import annotations

import json
import tempfile
import textwrap
import tomllib
import unittest
from pathlib import Path

from bot_bottle import lifecycle, providers
from bot_bottle.backend.docker.bottle import WORKDIR
from bot_bottle.providers import plugins
from bot_bottle.provision import agent_files, mcp
from tests.fake_bottle import FakeBottle

CLAUDE_STATE = "/home/node/.claude.json"
CLAUDE_SETTINGS = "/home/node/.claude/settings.json"
CODEX_CONFIG = "/home/node/.codex/config.toml"
PI_SETTINGS = "/home/node/.pi/agent/settings.json"


class ClaudeFirstRunTest(unittest.TestCase):
    def state(self) -> dict:
        return json.loads(agent_files.start_files("claude", "", supervise=True)[CLAUDE_STATE])

    def test_the_placeholder_key_is_approved(self) -> None:
        # Claude Code remembers an approved key by its last 20 characters; without it, it asks
        # "Detected a custom API key", whose default answer leaves it not logged in.
        state = self.state()
        self.assertEqual(state["customApiKeyResponses"]["approved"], [providers.PLACEHOLDER[-20:]])
        self.assertEqual(state["customApiKeyResponses"]["rejected"], [])

    def test_the_placeholder_is_the_one_the_launch_gives_the_agent(self) -> None:
        self.assertEqual(lifecycle.PLACEHOLDER, providers.PLACEHOLDER)

    def test_the_workspace_is_trusted(self) -> None:
        self.assertEqual(WORKDIR, "/home/node/workspace")
        self.assertIs(self.state()["projects"][WORKDIR]["hasTrustDialogAccepted"], True)

    def test_the_auto_mode_question_is_answered(self) -> None:
        self.assertIs(self.state()["hasSeenAutoDefaultNudge"], True)
        settings = json.loads(agent_files.settings_files("claude")[CLAUDE_SETTINGS])
        self.assertEqual(settings["permissions"]["defaultMode"], "bypassPermissions")

    def test_no_nonessential_traffic(self) -> None:
        settings = json.loads(agent_files.settings_files("claude")[CLAUDE_SETTINGS])
        self.assertEqual(settings["env"]["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"], "1")
        self.assertEqual(settings["env"]["DISABLE_AUTOUPDATER"], "1")


class ClaudeResumeTest(unittest.TestCase):
    def test_a_resumed_project_keeps_its_history_and_is_trusted_again(self) -> None:
        existing = json.dumps({
            "numStartups": 4,
            "customApiKeyResponses": {"approved": ["another-key-suffix"], "rejected": []},
            "projects": {
                WORKDIR: {"hasTrustDialogAccepted": False, "lastSessionId": "abc",
                          "mcpServers": {"planted": {"command": "sh"}}},
                "/tmp/elsewhere": {"lastSessionId": "def"},
            },
        })
        fresh = agent_files.start_files("claude", "", supervise=True)[CLAUDE_STATE]
        state = json.loads(agent_files.resumed_claude_state(existing, fresh))
        project = state["projects"][WORKDIR]
        self.assertEqual(project["lastSessionId"], "abc")
        self.assertIs(project["hasTrustDialogAccepted"], True)
        self.assertNotIn("mcpServers", project)
        self.assertEqual(state["projects"]["/tmp/elsewhere"], {"lastSessionId": "def"})
        self.assertEqual(state["customApiKeyResponses"]["approved"],
                         ["another-key-suffix", providers.PLACEHOLDER[-20:]])
        self.assertIs(state["hasSeenAutoDefaultNudge"], True)
        self.assertEqual(state["numStartups"], 4)
        self.assertEqual(list(state["mcpServers"]), ["supervise"])


class CodexTest(unittest.TestCase):
    def config(self) -> dict:
        return tomllib.loads(agent_files.start_files("codex", "", supervise=True)[CODEX_CONFIG])

    def test_headless_runs_outside_a_git_repository(self) -> None:
        self.assertEqual(providers.BUILTIN["codex"].headless_args("hi"), ["exec", "--skip-git-repo-check", "hi"])

    def test_no_calls_the_proxy_would_refuse(self) -> None:
        config = self.config()
        self.assertIs(config["check_for_update_on_startup"], False)
        self.assertIs(config["analytics"]["enabled"], False)
        self.assertIs(config["features"]["plugins"], False)

    def test_the_workspace_is_trusted_and_the_rest_kept(self) -> None:
        config = self.config()
        self.assertEqual(config["projects"][WORKDIR]["trust_level"], "trusted")
        self.assertEqual(config["model_provider"], "bottle")
        self.assertEqual(config["mcp_servers"]["supervise"]["url"], mcp.SUPERVISE_URL)


class PiTest(unittest.TestCase):
    def test_no_model_is_pinned(self) -> None:
        settings = json.loads(agent_files.settings_files("pi")[PI_SETTINGS])
        self.assertNotIn("defaultModel", settings)
        self.assertFalse(settings["enableInstallTelemetry"])
        self.assertTrue(settings["quietStartup"])


def _provider(name: str, *, base_template: str = "claude", base_files: bool | None = None) -> str:
    files = "" if base_files is None else f"    base_files={base_files},\n"
    return textwrap.dedent(f"""\
        from bot_bottle.providers import ProviderInfo

        PROVIDER = ProviderInfo(
            template={name!r},
            command="my-agent",
            api_host="api.anthropic.com",
            auth_scheme="header",
            auth_header="x-api-key",
            default_auth_token="ANTHROPIC_API_KEY",
            base_template={base_template!r},
        """) + files + ")\n"


class PluginFilesTest(unittest.TestCase):
    """A plugin that runs a built-in's CLI reads that CLI's files; any other plugin reads
    bot-bottle's own."""

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.contrib = Path(tmp.name)
        self.host_skill = self.contrib / "skill-src" / "review"
        self.host_skill.mkdir(parents=True)
        (self.host_skill / "SKILL.md").write_text("review")

    def plugin(self, name: str, **kw: object) -> str:
        (self.contrib / name).mkdir()
        (self.contrib / name / "provider.py").write_text(_provider(name, **kw))  # type: ignore[arg-type]
        self.addCleanup(providers._LOADED.pop, name, None)
        providers.resolve(name, self.contrib)
        return name

    def provisioned(self, template: str) -> FakeBottle:
        bottle = FakeBottle()
        self.addCleanup(bottle.close)
        agent_files.provision_start_files(bottle, template, "Be careful.", supervise=True)
        agent_files.copy_skills(bottle, template, [("review", self.host_skill)])
        return bottle

    def test_a_plugin_wrapping_claude_gets_claudes_files(self) -> None:
        name = self.plugin("myclaude", base_files=True)
        self.assertEqual(providers.reads_like(name), "claude")
        self.assertEqual(agent_files.layout_for(name), agent_files.LAYOUTS["claude"])
        bottle = self.provisioned(name)
        self.assertEqual(bottle.prompt_path, "/home/node/.claude/CLAUDE.md")
        self.assertEqual(bottle.guest("/home/node/.claude/CLAUDE.md").read_text(), "Be careful.\n")
        self.assertTrue(bottle.guest("/home/node/.claude/skills/review/SKILL.md").is_file())
        settings = json.loads(bottle.guest(CLAUDE_SETTINGS).read_text())
        self.assertEqual(settings["permissions"]["defaultMode"], "bypassPermissions")
        self.assertEqual(mcp.registration_path(name), CLAUDE_STATE)
        state = json.loads(bottle.guest(CLAUDE_STATE).read_text())
        self.assertEqual(state["mcpServers"]["supervise"]["url"], mcp.SUPERVISE_URL)
        self.assertIs(state["projects"][WORKDIR]["hasTrustDialogAccepted"], True)

    def test_a_plugin_wrapping_codex_gets_codexs_files(self) -> None:
        name = self.plugin("mycodex", base_template="codex", base_files=True)
        bottle = self.provisioned(name)
        self.assertEqual(bottle.prompt_path, "/home/node/.codex/AGENTS.md")
        self.assertTrue(bottle.guest("/home/node/.codex/skills/review/SKILL.md").is_file())
        config = tomllib.loads(bottle.guest(CODEX_CONFIG).read_text())
        self.assertEqual(config["mcp_servers"]["supervise"]["url"], mcp.SUPERVISE_URL)

    def test_a_plugin_on_pi_gets_pis_files_and_no_registration(self) -> None:
        name = self.plugin("mypi", base_template="pi", base_files=True)
        bottle = self.provisioned(name)
        self.assertEqual(bottle.prompt_path, "/home/node/.pi/agent/AGENTS.md")
        self.assertTrue(bottle.guest(PI_SETTINGS).is_file())
        self.assertIsNone(mcp.registration_path(name))

    def test_any_other_plugin_reads_bot_bottles_own_place(self) -> None:
        for name, kw in (("plain", {}), ("imageonly", {"base_template": "codex", "base_files": False})):
            with self.subTest(name=name):
                self.plugin(name, **kw)
                self.assertIsNone(providers.reads_like(name))
                bottle = self.provisioned(name)
                self.assertEqual(bottle.prompt_path, "/home/node/.bot-bottle/system-prompt.md")
                self.assertTrue(bottle.guest("/home/node/.bot-bottle/skills/review/SKILL.md").is_file())
                self.assertEqual(agent_files.settings_files(name), {})
                self.assertIsNone(mcp.registration_path(name))
                self.assertFalse(bottle.guest("/home/node/.claude").exists())

    def test_base_files_must_be_a_bool(self) -> None:
        (self.contrib / "bad").mkdir()
        (self.contrib / "bad" / "provider.py").write_text(_provider("bad").replace(")\n", '    base_files="yes",\n)\n'))
        with self.assertRaises(plugins.PluginError) as ctx:
            plugins.load("bad", self.contrib)
        self.assertIn("base_files must be True or False", str(ctx.exception))

    def test_a_builtin_reads_its_own(self) -> None:
        for template in ("claude", "codex", "pi"):
            self.assertEqual(providers.reads_like(template), template)
        self.assertIsNone(providers.reads_like("never-loaded"))


if __name__ == "__main__":
    unittest.main()
