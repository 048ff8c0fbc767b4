"""Agent file keys: bottle, skills, git-gate.user, Claude Code passthrough keys, body as prompt."""

from __future__ import annotations

import unittest
from pathlib import Path

from tests.fixtures import SIMPLE_BOTTLE, ManifestTestCase


class AgentKeyTestCase(ManifestTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.mh.bottle("dev", SIMPLE_BOTTLE)

    @property
    def apath(self) -> Path:
        return self.mh.agents_dir("home") / "a.md"

    def agent(self, yaml_text: str, body: str = "") -> object:
        self.mh.agent("a", yaml_text, body)
        return self.load("a").agent

    def assertAgentError(self, yaml_text: str, *, line: int, key: str | None, contains: str | tuple[str, ...] = ()) -> None:
        self.mh.agent("a", yaml_text)
        self.assertManifestError(self.load_error("a"), path=self.apath, line=line, key=key, contains=contains)


class AgentKeyTests(AgentKeyTestCase):
    def test_minimal_agent(self) -> None:
        agent = self.agent("bottle: dev\n")
        self.assertEqual(agent.name, "a")
        self.assertEqual(agent.bottle, "dev")
        self.assertEqual(agent.bottle_origin.line, 2)
        self.assertEqual(agent.origin, "home")
        self.assertEqual(agent.skills, ())
        self.assertEqual(agent.prompt, "")

    def test_each_independent_mistake_is_reported(self) -> None:
        self.mh.agent("a", "skills: [ok, 'bad skill']\nwat: 1\ngit-gate: {user: {email: nope}}\n")
        err = self.load_error("a")
        self.assertEqual(
            [(e.line, e.key) for e in err.each()],
            [(2, "bottle"), (2, "skills[1]"), (3, "wat"), (4, "git-gate.user.email")],
        )

    def test_bottle_is_required(self) -> None:
        self.assertAgentError("description: x\n", line=2, key="bottle", contains="needs 'bottle: NAME'")

    def test_empty_agent_file(self) -> None:
        self.assertAgentError("", line=2, key="bottle", contains="needs 'bottle: NAME'")

    def test_bad_bottle_name(self) -> None:
        self.assertAgentError('description: x\nbottle: "../dev"\n', line=3, key="bottle", contains="is not a bottle name")

    def test_bottle_must_be_a_string(self) -> None:
        self.assertAgentError("bottle: [dev]\n", line=2, key="bottle", contains="expected a string")

    def test_skills_list(self) -> None:
        agent = self.agent("bottle: dev\nskills: [pdf, review, pdf]\n")
        self.assertEqual(agent.skills, ("pdf", "review"))

    def test_skills_string(self) -> None:
        self.assertEqual(self.agent("bottle: dev\nskills: pdf\n").skills, ("pdf",))

    def test_bad_skill_name(self) -> None:
        self.assertAgentError("bottle: dev\nskills:\n  - ok\n  - ../../etc\n", line=5, key="skills[1]", contains="skill folder name")

    def test_skills_wrong_type(self) -> None:
        self.assertAgentError("bottle: dev\nskills: {a: 1}\n", line=3, key="skills", contains="list of strings")

    def test_git_user(self) -> None:
        agent = self.agent("bottle: dev\ngit-gate:\n  user:\n    name: Ada\n    email: ada@example.com\n")
        self.assertEqual((agent.git_user.name, agent.git_user.email), ("Ada", "ada@example.com"))
        self.assertEqual(agent.git_user.name_origin.path, self.apath)
        self.assertEqual(agent.git_user.name_origin.line, 5)

    def test_git_repos_are_refused(self) -> None:
        self.assertAgentError(
            "bottle: dev\ngit-gate:\n  repos:\n    app: https://h.com/a/b\n", line=4, key="git-gate.repos", contains="expected one of: user"
        )

    def test_bad_git_email(self) -> None:
        self.assertAgentError("bottle: dev\ngit-gate:\n  user: {email: nope}\n", line=4, key="git-gate.user.email", contains="email address")

    def test_claude_code_passthrough_keys(self) -> None:
        agent = self.agent(
            "name: reviewer\n"
            "description: Reviews code.\n"
            "model: sonnet\n"
            "color: cyan\n"
            "memory: project\n"
            "tools: [Read, Grep]\n"
            "bottle: dev\n"
        )
        self.assertEqual(agent.description, "Reviews code.")
        self.assertEqual(agent.model, "sonnet")
        self.assertEqual(agent.color, "cyan")
        # The file name is the agent's name, whatever `name:` says.
        self.assertEqual(agent.name, "a")

    def test_passthrough_values_of_other_types_are_ignored(self) -> None:
        agent = self.agent("bottle: dev\ncolor: [red]\nmodel: 4\n")
        self.assertIsNone(agent.color)
        self.assertEqual(agent.model, "4")

    def test_plain_values_as_written(self) -> None:
        agent = self.agent("bottle: dev\nmodel: 1.10\nskills: 010\ngit-gate:\n  user: {name: 0x10}\n")
        self.assertEqual((agent.model, agent.skills, agent.git_user.name), ("1.10", ("010",), "0x10"))

    def test_unknown_agent_key(self) -> None:
        self.assertAgentError("bottle: dev\npermissions: all\n", line=3, key="permissions", contains="unknown key in an agent file")

    def test_bottle_keys_in_an_agent_file(self) -> None:
        for key, value in (("env", "{A: b}"), ("egress", "{log: 2}"), ("extends", "dev"), ("supervise", "false"), ("agent_provider", "{template: codex}")):
            with self.subTest(key=key):
                self.mh.agent("a", f"bottle: dev\n{key}: {value}\n")
                err = self.load_error("a")
                self.assertManifestError(err, path=self.apath, line=3, key=key, contains="bottle settings in an agent file")
                self.assertIn("bottle: NAME", err.hint or "")

    def test_body_is_the_system_prompt(self) -> None:
        agent = self.agent("bottle: dev\n", body="\nYou are careful.\n\nAlways test.\n\n")
        self.assertEqual(agent.prompt, "You are careful.\n\nAlways test.")

    def test_body_keeps_inner_markdown(self) -> None:
        body = "# Role\n\n- one\n- two\n\n```sh\necho hi\n```"
        self.assertEqual(self.agent("bottle: dev\n", body=body + "\n").prompt, body)


if __name__ == "__main__":
    unittest.main()
