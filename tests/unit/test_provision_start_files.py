"""A new bottle's start files (settings, the supervise registration, the prompt) in one copy.

The launch writes them with ``agent_files.provision_start_files``: one process in the bottle
instead of one per file.
"""

from __future__ import annotations

import json
import os
import unittest
from pathlib import Path

from bot_bottle.provision import agent_files, mcp
from tests.fake_bottle import FakeBottle

TEMPLATES = ("claude", "codex", "pi", "my-plugin")
PROMPT = "Be careful.\n\nUse tests.\n\n"


def guest_files(bottle: FakeBottle) -> dict[str, str]:
    return {"/" + str(p.relative_to(bottle.root)): p.read_text()
            for p in bottle.root.rglob("*") if p.is_file()}


class CountingBottle(FakeBottle):
    def __init__(self) -> None:
        super().__init__()
        self.copies: list[str] = []

    def cp_in(self, host_path: str | Path, guest_path: str) -> None:
        self.copies.append(guest_path)
        super().cp_in(host_path, guest_path)


class StartFilesTest(unittest.TestCase):
    def bottle(self) -> CountingBottle:
        bottle = CountingBottle()
        self.addCleanup(bottle.close)
        return bottle

    def test_each_templates_files_in_one_copy(self) -> None:
        expected = {
            "claude": ["/home/node/.claude.json", "/home/node/.claude/settings.json"],
            "codex": ["/home/node/.codex/config.toml"],
            "pi": ["/home/node/.pi/agent/settings.json"],
            "my-plugin": [],
        }
        for template in TEMPLATES:
            for supervise in (True, False):
                for prompt in (PROMPT, " \n"):
                    with self.subTest(template=template, supervise=supervise, prompt=prompt):
                        bottle = self.bottle()
                        agent_files.provision_start_files(bottle, template, prompt, supervise=supervise)
                        prompt_path = agent_files.layout_for(template).prompt_file if prompt.strip() else None
                        written = guest_files(bottle)
                        self.assertEqual(sorted(written), sorted(expected[template] + ([prompt_path] if prompt_path else [])))
                        self.assertEqual(written, agent_files.start_files(template, prompt, supervise=supervise))
                        registration = mcp.registration_path(template)
                        if registration is not None:
                            self.assertEqual("supervise" in written[registration], supervise)
                        if prompt_path:
                            self.assertEqual(written[prompt_path], "Be careful.\n\nUse tests.\n")
                        self.assertEqual(bottle.prompt_path, prompt_path)
                        self.assertLessEqual(len(bottle.copies), 1)
                        self.assertEqual(bottle.commands, [], "nothing run in the bottle")

    def test_claude_with_supervise_keeps_onboarding_and_registers_the_server(self) -> None:
        files = agent_files.start_files("claude", PROMPT, supervise=True)
        state = json.loads(files[mcp.CLAUDE_STATE])
        self.assertTrue(state["hasCompletedOnboarding"])
        self.assertEqual(state["mcpServers"]["supervise"], {"type": "http", "url": mcp.SUPERVISE_URL})
        self.assertEqual(files["/home/node/.claude/CLAUDE.md"], "Be careful.\n\nUse tests.\n")

    def test_the_copy_is_one_folder_onto_the_home_with_its_usual_modes(self) -> None:
        bottle = self.bottle()
        seen: list[tuple[str, dict[str, int]]] = []
        real = FakeBottle.cp_in

        def record(host_path: str | Path, guest_path: str) -> None:
            root = Path(host_path)
            seen.append((guest_path, {str(p.relative_to(root)): p.stat().st_mode & 0o777
                                      for p in (root, *root.rglob("*")) if p.is_dir()}))
            real(bottle, host_path, guest_path)

        bottle.cp_in = record  # type: ignore[method-assign]
        agent_files.provision_start_files(bottle, "claude", PROMPT, supervise=True)
        ((target, modes),) = seen
        self.assertEqual(target, "/home/node")
        self.assertEqual(modes, {".": 0o755, ".claude": 0o755})

    def test_a_path_outside_the_home_is_refused(self) -> None:
        with self.assertRaises(ValueError):
            agent_files.write_files(self.bottle(), {"/etc/passwd": "x"})

    def test_nothing_to_write_copies_nothing(self) -> None:
        bottle = self.bottle()
        agent_files.provision_start_files(bottle, "my-plugin", "", supervise=True)
        self.assertEqual(bottle.copies, [])
        self.assertEqual(os.listdir(bottle.root), [])


if __name__ == "__main__":
    unittest.main()
