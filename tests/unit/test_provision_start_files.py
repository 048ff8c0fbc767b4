"""A new bottle's start files (settings, the supervise registration, the prompt) in one copy.

The launch writes them with ``agent_files.provision_start_files``: one process in the bottle
instead of one per file. It must leave exactly what the file-by-file provisioners leave.
"""

from __future__ import annotations

import json
import os
import unittest
from pathlib import Path

from bot_bottle.provision import agent_files, mcp
from tests.fake_bottle import FakeBottle
from tests.unit.test_supervise_provision import CatBottle

TEMPLATES = ("claude", "codex", "pi", "my-plugin")
PROMPT = "Be careful.\n\nUse tests.\n\n"


def guest_files(bottle: FakeBottle) -> dict[str, str]:
    return {"/" + str(p.relative_to(bottle.root)): p.read_text()
            for p in bottle.root.rglob("*") if p.is_file()}


class CountingBottle(CatBottle):
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

    def test_the_same_files_as_one_by_one_in_one_copy(self) -> None:
        for template in TEMPLATES:
            for supervise in (True, False):
                for prompt in (PROMPT, " \n"):
                    with self.subTest(template=template, supervise=supervise, prompt=prompt):
                        one_by_one, at_once = self.bottle(), self.bottle()
                        agent_files.settings_for(one_by_one, template)
                        if supervise:
                            mcp.register_supervise(one_by_one, template)
                        agent_files.write_prompt(one_by_one, template, prompt)
                        agent_files.provision_start_files(at_once, template, prompt, supervise=supervise)
                        self.assertEqual(guest_files(at_once), guest_files(one_by_one))
                        self.assertEqual(at_once.prompt_path, one_by_one.prompt_path)
                        self.assertLessEqual(len(at_once.copies), 1)
                        self.assertEqual(at_once.commands, [], "nothing read back from the bottle")

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
