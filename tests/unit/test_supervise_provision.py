"""Registering the supervise MCP server with the agent's CLI, through the bottle handle only."""

from __future__ import annotations

import json
import shlex
import tomllib
import unittest

from bot_bottle.backend import ExecResult
from bot_bottle.provision import agent_files, mcp
from tests.fake_bottle import FakeBottle


class CatBottle(FakeBottle):
    """A fake bottle whose ``cat`` reads the fake guest filesystem (what the provisioner reads back)."""

    def exec(self, cmd: str, *, user: str = "node") -> ExecResult:
        self.commands.append((user, cmd))
        parts = shlex.split(cmd)
        if parts and parts[0] == "cat":
            path = self.guest(parts[1])
            return ExecResult(0, path.read_text() if path.is_file() else "", "")
        return ExecResult(0, "", "")


class RegisterTest(unittest.TestCase):
    def setUp(self) -> None:
        self.bottle = CatBottle()
        self.addCleanup(self.bottle.close)

    def test_claude_keeps_its_settings_and_other_servers(self) -> None:
        agent_files.settings_for(self.bottle, "claude")  # what the launcher writes first
        state = json.loads(self.bottle.guest(mcp.CLAUDE_STATE).read_text())
        state["mcpServers"] = {"other": {"type": "stdio", "command": "x"}}
        self.bottle.guest(mcp.CLAUDE_STATE).write_text(json.dumps(state))
        self.assertEqual(mcp.register_supervise(self.bottle, "claude"), mcp.CLAUDE_STATE)
        mcp.register_supervise(self.bottle, "claude")  # twice: same result
        state = json.loads(self.bottle.guest(mcp.CLAUDE_STATE).read_text())
        self.assertTrue(state["hasCompletedOnboarding"])
        self.assertEqual(state["mcpServers"]["supervise"], {"type": "http", "url": "http://supervise.bottle.internal/mcp"})
        self.assertIn("other", state["mcpServers"])
        self.assertTrue(all(user == "node" for user, _ in self.bottle.commands))

    def test_claude_without_a_state_file(self) -> None:
        mcp.register_supervise(self.bottle, "claude")
        state = json.loads(self.bottle.guest(mcp.CLAUDE_STATE).read_text())
        self.assertEqual(list(state), ["mcpServers"])

    def test_codex_table_with_a_longer_tool_timeout(self) -> None:
        agent_files.settings_for(self.bottle, "codex")
        mcp.register_supervise(self.bottle, "codex", timeout_s=300)
        mcp.register_supervise(self.bottle, "codex", timeout_s=300)
        text = self.bottle.guest(mcp.CODEX_CONFIG).read_text()
        config = tomllib.loads(text)  # still valid TOML, written once
        self.assertEqual(config["mcp_servers"]["supervise"]["url"], "http://supervise.bottle.internal/mcp")
        self.assertGreater(config["mcp_servers"]["supervise"]["tool_timeout_sec"], 300)
        self.assertEqual(config["model_provider"], "bottle")  # agent_files' settings kept
        self.assertEqual(text.count("[mcp_servers.supervise]"), 1)

    def test_other_templates_get_nothing(self) -> None:
        self.assertIsNone(mcp.register_supervise(self.bottle, "pi"))
        self.assertEqual(list(self.bottle.root.iterdir()), [])

    def test_broken_claude_state_is_an_error_not_a_wipe(self) -> None:
        with self.assertRaises(Exception) as ctx:
            mcp.claude_state("{not json")
        self.assertIn(".claude.json", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
