"""Registering the supervise MCP server with the agent's CLI: added to the config file
``agent_files`` writes, whatever else it holds kept, the same when done twice."""

from __future__ import annotations

import json
import tomllib
import unittest

from bot_bottle.provision import agent_files, mcp
from tests.fake_bottle import FakeBottle


class RegisterTest(unittest.TestCase):
    def setUp(self) -> None:
        self.bottle = FakeBottle()
        self.addCleanup(self.bottle.close)

    def test_claude_keeps_its_settings_and_other_servers(self) -> None:
        settings = agent_files.settings_files("claude")[mcp.CLAUDE_STATE]  # what the launcher writes first
        state = json.loads(settings)
        state["mcpServers"] = {"other": {"type": "stdio", "command": "x"}}
        self.assertEqual(mcp.registration_path("claude"), mcp.CLAUDE_STATE)
        once = mcp.registered("claude", json.dumps(state))
        self.assertEqual(mcp.registered("claude", once), once)  # twice: same result
        state = json.loads(once)
        self.assertTrue(state["hasCompletedOnboarding"])
        self.assertEqual(state["mcpServers"]["supervise"], {"type": "http", "url": "http://supervise.bottle.internal/mcp"})
        self.assertIn("other", state["mcpServers"])

    def test_a_new_claude_bottle_gets_it_with_its_settings(self) -> None:
        agent_files.provision_start_files(self.bottle, "claude", "", supervise=True)
        state = json.loads(self.bottle.guest(mcp.CLAUDE_STATE).read_text())
        self.assertTrue(state["hasCompletedOnboarding"])
        self.assertEqual(state["mcpServers"]["supervise"], {"type": "http", "url": "http://supervise.bottle.internal/mcp"})

    def test_claude_without_a_state_file(self) -> None:
        state = json.loads(mcp.registered("claude", None))
        self.assertEqual(list(state), ["mcpServers"])

    def test_codex_table_with_a_longer_tool_timeout(self) -> None:
        settings = agent_files.settings_files("codex")[mcp.CODEX_CONFIG]
        text = mcp.registered("codex", mcp.registered("codex", settings, timeout_s=300), timeout_s=300)
        config = tomllib.loads(text)  # still valid TOML, written once
        self.assertEqual(config["mcp_servers"]["supervise"]["url"], "http://supervise.bottle.internal/mcp")
        self.assertGreater(config["mcp_servers"]["supervise"]["tool_timeout_sec"], 300)
        self.assertEqual(config["model_provider"], "bottle")  # agent_files' settings kept
        self.assertEqual(text.count("[mcp_servers.supervise]"), 1)

    def test_other_templates_get_nothing(self) -> None:
        self.assertIsNone(mcp.registration_path("pi"))
        self.assertEqual(agent_files.start_files("pi", "", supervise=True), agent_files.start_files("pi", "", supervise=False))
        agent_files.provision_start_files(self.bottle, "my-plugin", "", supervise=True)
        self.assertEqual(list(self.bottle.root.iterdir()), [])

    def test_broken_claude_state_is_an_error_not_a_wipe(self) -> None:
        with self.assertRaises(Exception) as ctx:
            mcp.claude_state("{not json")
        self.assertIn(".claude.json", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
