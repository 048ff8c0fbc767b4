"""``init`` and ``start --dry-run`` in-process: files written, plan printed, errors on one line."""

from __future__ import annotations

import json
import re
import unittest

from bot_bottle import examples
from tests.fixtures import ManifestTestCase

SECRET = "sk-ant-api03-thisIsTheRealKeyValue-abcdef"


class InitTests(ManifestTestCase):
    def test_init_writes_the_examples(self) -> None:
        result = self.mh.run_cli("init")
        self.assertEqual(result.code, 0, result.stderr)
        bottle = self.mh.bottles_dir / f"{examples.EXAMPLE_BOTTLE_NAME}.md"
        agent = self.mh.agents_dir() / f"{examples.EXAMPLE_AGENT_NAME}.md"
        self.assertEqual(bottle.read_text(encoding="utf-8"), examples.EXAMPLE_BOTTLE)
        self.assertEqual(agent.read_text(encoding="utf-8"), examples.EXAMPLE_AGENT)
        self.assertIn(str(bottle), result.stdout)
        self.assertEqual(self.mh.home_dir.stat().st_mode & 0o777, 0o700)
        # The examples are valid.
        self.assertEqual(self.mh.run_cli("validate").code, 0)

    def test_init_where_the_folder_is_a_file_is_a_clear_error(self) -> None:
        import shutil

        if self.mh.home_dir.is_dir():
            shutil.rmtree(self.mh.home_dir)
        self.mh.home_dir.write_text("not a folder\n")
        result = self.mh.run_cli("init")
        self.assertEqual(result.code, 1, result.stderr)
        self.assertIn("cannot make the folder", result.stderr)
        self.assertNotIn("internal error", result.stderr)

    def test_init_refuses_the_second_time(self) -> None:
        self.assertEqual(self.mh.run_cli("init").code, 0)
        bottle = self.mh.bottles_dir / f"{examples.EXAMPLE_BOTTLE_NAME}.md"
        bottle.write_text(bottle.read_text(encoding="utf-8") + "\nEdited by the user.\n", encoding="utf-8")
        before = {p: p.read_bytes() for p in self.mh.home_dir.rglob("*.md")}
        result = self.mh.run_cli("init")
        self.assertNotEqual(result.code, 0)
        self.assertIn("already holds manifests", result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        after = {p: p.read_bytes() for p in self.mh.home_dir.rglob("*.md")}
        self.assertEqual(before, after)

    def test_init_refuses_when_any_manifest_exists(self) -> None:
        own = self.mh.agent("mine", {"bottle": "x"})
        result = self.mh.run_cli("init")
        self.assertNotEqual(result.code, 0)
        self.assertFalse((self.mh.bottles_dir / f"{examples.EXAMPLE_BOTTLE_NAME}.md").exists())
        self.assertTrue(own.is_file())

    def test_init_then_dry_run_json(self) -> None:
        self.assertEqual(self.mh.run_cli("init").code, 0)
        result = self.mh.run_cli("start", examples.EXAMPLE_AGENT_NAME, "--dry-run", "--format", "json")
        self.assertEqual(result.code, 0, result.stderr)
        data = json.loads(result.stdout)
        self.assertEqual(data["agent"], examples.EXAMPLE_AGENT_NAME)
        self.assertEqual(data["bottle"], examples.EXAMPLE_BOTTLE_NAME)
        self.assertIn("api.anthropic.com", data["hosts"])
        self.assertIn("pypi.org", data["hosts"])
        # The examples start with the provider's key alone: a new user's first start is not
        # refused for a GitHub token they may not have.
        self.assertEqual(data["credential_refs"], ["ANTHROPIC_API_KEY"])


class DryRunTests(ManifestTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.mh.bottle(
            "dev",
            'env:\n  TZ: UTC\n  GH: "${HOST_GH}"\negress:\n  routes:\n    - pypi.org\n    - host: api.github.com\n'
            "      auth: {scheme: bearer, token_ref: GITHUB_TOKEN}\n",
        )
        self.mh.agent("coder", {"bottle": "dev", "color": "cyan"}, body="Prompt.\n")

    def test_json_plan(self) -> None:
        env = {"ANTHROPIC_API_KEY": SECRET, "GITHUB_TOKEN": "ghp_secretvalue000111222", "HOST_GH": "host-gh-secret-value"}
        result = self.mh.run_cli("start", "coder", "--dry-run", "--format", "json", "--label", "try-1", env=env)
        self.assertEqual(result.code, 0, result.stderr)
        data = json.loads(result.stdout)
        self.assertEqual(data["agent"], "coder")
        self.assertEqual(data["bottle"], "dev")
        self.assertEqual(data["backend"], "docker")
        self.assertEqual(data["runtime"], "runc")
        self.assertEqual(data["hosts"], ["api.anthropic.com", "api.github.com", "pypi.org"])
        self.assertEqual(data["env_names"], ["TZ", "GH"])
        self.assertEqual(data["labels"]["bot-bottle.label"], "try-1")
        self.assertTrue(data["images"]["agent"])
        self.assertTrue(data["images"]["sidecar"])
        self.assertEqual(data["missing_host_vars"], [])
        for value in env.values():
            self.assertNotIn(value, result.stdout)
            self.assertNotIn(value, result.stderr)

    def test_text_plan_says_a_passed_through_route_is_not_scanned_over_tls(self) -> None:
        self.mh.bottle("pt", "egress:\n  routes:\n    - host: files.example\n      tls_passthrough: true\n")
        self.mh.agent("tunnel", {"bottle": "pt"})
        result = self.mh.run_cli("start", "tunnel", "--dry-run", env={"COLUMNS": "250"})
        self.assertEqual(result.code, 0, result.stderr)
        (row,) = [line for line in result.stdout.splitlines() if line.startswith("│ files.example ")]
        self.assertIn("plain HTTP only: TLS passes unscanned", row)
        (provider,) = [line for line in result.stdout.splitlines() if line.startswith("│ api.anthropic.com ")]
        self.assertNotIn("unscanned", provider)

    def test_text_plan_says_which_detectors_are_off_and_where_a_credential_goes_in_clear(self) -> None:
        self.mh.bottle("d", "egress:\n  routes:\n    - host: quiet.example\n      dlp: {tokens: false, secrets: false}\n"
                            "    - host: half.example\n      dlp: {tokens: false}\n"
                            "    - host: plain.example\n      ports: [80]\n      auth: {scheme: bearer, token_ref: PLAIN}\n")
        self.mh.agent("dlp", {"bottle": "d"})
        result = self.mh.run_cli("start", "dlp", "--dry-run", env={"COLUMNS": "250", "PLAIN": "x"})
        self.assertEqual(result.code, 0, result.stderr)
        lines = result.stdout.splitlines()
        rows = {line.split()[1]: at for at, line in enumerate(lines) if line.startswith("│ ") and ".example" in line}
        self.assertIn("off (no detector)", lines[rows["quiet.example"]])
        self.assertIn("block (tokens off)", lines[rows["half.example"]])
        # The credential's scheme, then its variable on a line of its own (never cut in two).
        self.assertIn("│ bearer ", lines[rows["plain.example"]])
        self.assertEqual([line.split("│")[4].strip() for line in lines[rows["plain.example"]:][:4]],
                         ["bearer", "$PLAIN", "(also over", "plain HTTP)"])

    def test_text_plan_on_an_80_column_pipe_keeps_hosts_and_variables_whole(self) -> None:
        hosts = ("files.pythonhosted.org", "registry.npmjs.org", "github.com")
        self.mh.bottle("w", "egress:\n  routes:\n" + "".join(f"    - host: {h}\n" for h in hosts)
                            + "    - host: api.github.com\n      matches: [{methods: [GET, POST]}]\n"
                            "      auth: {scheme: bearer, token_ref: GITHUB_TOKEN}\n")
        self.mh.agent("wide", {"bottle": "w"})
        result = self.mh.run_cli("start", "wide", "--dry-run", env={"COLUMNS": "80", "GITHUB_TOKEN": "x"})
        self.assertEqual(result.code, 0, result.stderr)
        table = result.stdout[result.stdout.index("Routes"):result.stdout.index("└")].splitlines()[1:]
        for line in table:
            self.assertLessEqual(len(line), 80)
            self.assertTrue(line.rstrip().endswith(("┓", "┃", "┩", "│")), f"cut off: {line!r}")
        for whole in (*hosts, "api.github.com", "$GITHUB_TOKEN", "$ANTHROPIC_API_KEY"):
            self.assertTrue(any(whole in line for line in table), f"{whole} cut across lines")

    def test_text_plan_on_an_80_column_pipe_keeps_a_long_host_whole_before_a_variable(self) -> None:
        # No room for both whole: the host stays whole, the variables fold.
        host = "objects.githubusercontent.com"
        self.mh.bottle("w", "egress:\n  routes:\n    - host: " + host + "\n"
                            "      auth: {scheme: bearer, token_ref: A_RATHER_LONG_TOKEN_VARIABLE_NAME}\n")
        self.mh.agent("wide", {"bottle": "w"})
        result = self.mh.run_cli("start", "wide", "--dry-run",
                                 env={"COLUMNS": "80", "A_RATHER_LONG_TOKEN_VARIABLE_NAME": "x"})
        self.assertEqual(result.code, 0, result.stderr)
        table = result.stdout[result.stdout.index("Routes"):result.stdout.index("└")].splitlines()[1:]
        self.assertTrue(all(len(line) <= 80 for line in table))
        self.assertTrue(any(host in line for line in table), f"{host} cut across lines")

    def test_json_plan_lists_missing_host_vars(self) -> None:
        result = self.mh.run_cli("start", "coder", "--dry-run", "--format", "json", unset=("ANTHROPIC_API_KEY", "GITHUB_TOKEN", "HOST_GH"))
        self.assertEqual(result.code, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout)["missing_host_vars"], ["ANTHROPIC_API_KEY", "GITHUB_TOKEN", "HOST_GH"])

    def test_dry_run_says_a_missing_skill_would_stop_the_start(self) -> None:
        agent = self.mh.agent("skilled", {"bottle": "dev", "skills": ["review", "absent"]})
        folder = self.mh.home / ".claude" / "skills" / "review"
        folder.mkdir(parents=True)
        (folder / "SKILL.md").write_text("# review\n", encoding="utf-8")
        result = self.mh.run_cli("start", "skilled", "--dry-run", "--format", "json")
        self.assertEqual(result.code, 0, result.stderr)
        problems = [w for w in json.loads(result.stdout)["warnings"] if "skill" in w]
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("skills: skill 'absent' not found", problems[0])
        self.assertRegex(problems[0], rf"cannot start yet: {re.escape(str(agent))}:\d+: skills: ")  # file:line: key
        (self.mh.home / ".claude" / "skills" / "absent").mkdir()
        result = self.mh.run_cli("start", "skilled", "--dry-run", "--format", "json")
        self.assertEqual([w for w in json.loads(result.stdout)["warnings"] if "skill" in w], [])

    def test_smolmachines_dry_run(self) -> None:
        result = self.mh.run_cli("start", "coder", "--dry-run", "--format", "json", "--backend", "smolmachines")
        self.assertEqual(result.code, 0, result.stderr)
        data = json.loads(result.stdout)
        self.assertEqual(data["backend"], "smolmachines")
        self.assertEqual(data["runtime"], "libkrun")

    def test_text_plan(self) -> None:
        result = self.mh.run_cli("start", "coder", "--dry-run", env={"ANTHROPIC_API_KEY": SECRET})
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn("dry run", result.stdout)
        self.assertIn("api.github.com", result.stdout)
        self.assertIn("GH", result.stdout)
        self.assertNotIn(SECRET, result.stdout)

    def test_text_plan_fits_an_80_column_pipe_without_losing_a_host(self) -> None:
        self.mh.bottle(
            "dev",
            "egress:\n  routes:\n    - host: artifacts.very-long-registry-name.example.com\n"
            "      auth: {scheme: bearer, token_ref: GITHUB_TOKEN}\n    - pypi.org\n",
        )
        result = self.mh.run_cli("start", "coder", "--dry-run", env={"COLUMNS": "80", "ANTHROPIC_API_KEY": SECRET})
        self.assertEqual(result.code, 0, result.stderr)
        out = result.stdout
        # Nothing is cut short with an ellipsis; a long host folds and stays whole; manifest
        # files are shown under ~ (`info` keeps full paths and adds each route's source).
        self.assertNotIn("…", out)
        host_cells = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")]
        self.assertIn("artifacts.very-long-registry-name.example.com", "".join(host_cells))
        self.assertIn("pypi.org", host_cells)
        self.assertIn("(~/.bot-bottle/bottles/dev.md)", out)
        self.assertEqual([line for line in out.splitlines() if len(line) > 80], [])

    def test_json_without_dry_run_is_a_usage_error(self) -> None:
        result = self.mh.run_cli("start", "coder", "--format", "json")
        self.assertEqual(result.code, 2)
        self.assertEqual(result.stdout, "")
        self.assertTrue(result.stderr_lines[0].startswith("error: "), result.stderr)
        self.assertIn("--dry-run", result.stderr_lines[0])

    def test_unknown_backend_is_a_usage_error(self) -> None:
        result = self.mh.run_cli("start", "coder", "--dry-run", "--backend", "k8s")
        self.assertEqual(result.code, 2)
        self.assertIn("invalid choice", result.stderr)

    def test_a_stray_argument_is_named_under_the_subcommands_own_usage(self) -> None:
        result = self.mh.run_cli("start", "coder", "extra", "--dry-run")
        self.assertEqual(result.code, 2)
        self.assertTrue(result.stderr.startswith("usage: bot-bottle start "), result.stderr)
        self.assertIn("bot-bottle start: error: unrecognized arguments: extra", result.stderr)

    def test_missing_cwd_is_a_usage_error(self) -> None:
        result = self.mh.run_cli("start", "coder", "--dry-run", "--cwd", str(self.mh.cwd / "nope"))
        self.assertEqual(result.code, 2)
        self.assertIn("not a folder", result.stderr)

    def test_unknown_agent(self) -> None:
        result = self.mh.run_cli("start", "nobody", "--dry-run", "--format", "json")
        self.assertEqual(result.code, 2)
        self.assertEqual(result.stdout, "")
        self.assertEqual(result.stderr_lines[0], "error: no agent named 'nobody'")
        self.assertIn("available: coder", result.stderr)


class MalformedManifestTests(ManifestTestCase):
    def assertOneLineError(self, result: object, expected_prefix: str) -> None:
        self.assertEqual(result.code, 2, result.stderr)
        self.assertEqual(result.stdout, "")
        self.assertNotIn("Traceback", result.stderr)
        errors = [line for line in result.stderr_lines if line.startswith("error: ")]
        self.assertEqual(len(errors), 1, result.stderr)
        self.assertEqual(result.stderr_lines[0], errors[0])
        self.assertTrue(errors[0].startswith("error: " + expected_prefix), f"{errors[0]!r} vs {expected_prefix!r}")
        # Anything else is a hint, never a second error or a stack frame.
        for line in result.stderr_lines[1:]:
            self.assertTrue(line.startswith("hint: "), line)

    def test_each_kind_of_malformed_manifest(self) -> None:
        bottle = self.mh.bottles_dir / "dev.md"
        cases = [
            ("env:\n  A: [1]\n", f"{bottle}:3: env.A: "),
            ("egress:\n  log: 5\n", f"{bottle}:3: egress.log: "),
            ("egress:\n  routes:\n    - https://x.com\n", f"{bottle}:4: egress.routes[0].host: "),
            ("color: red\n", f"{bottle}:2: color: unknown key"),
            ("env:\n  A: 1\n  A: 2\n", f"{bottle}:4: env.A: "),
            ("extends: dev\n", f"{bottle}:2: extends: "),
            ("extends: gone\n", f"{bottle}:2: extends: no parent bottle"),
            ("env: [\n", f"{bottle}:"),
        ]
        self.mh.agent("coder", {"bottle": "dev"})
        for text, prefix in cases:
            with self.subTest(text=text):
                self.mh.bottle("dev", text)
                for argv in (("start", "coder", "--dry-run"), ("start", "coder", "--dry-run", "--format", "json"), ("info", "coder")):
                    self.assertOneLineError(self.mh.run_cli(*argv), prefix)

    def test_missing_frontmatter(self) -> None:
        self.mh.bottle("dev", "")
        path = self.mh.raw(".bot-bottle/agents/coder.md", "bottle: dev\n")
        self.assertOneLineError(self.mh.run_cli("start", "coder", "--dry-run"), f"{path}:1: the file must start")

    def test_agent_naming_a_missing_bottle(self) -> None:
        path = self.mh.agent("coder", "\nbottle: prod\n")
        self.assertOneLineError(self.mh.run_cli("start", "coder", "--dry-run"), f"{path}:3: bottle: no bottle named 'prod'")



class WithoutAnAgentNameTests(ManifestTestCase):
    def test_the_only_agent_is_started(self) -> None:
        self.mh.bottle("dev", "egress:\n  routes: [pypi.org]\n")
        self.mh.agent("solo", {"bottle": "dev"})
        result = self.mh.run_cli("start", "--dry-run", "--format", "json")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout)["agent"], "solo")
        self.assertIn("'solo' (the only one)", result.stderr)

    def test_several_agents_and_no_terminal_name_them(self) -> None:
        self.mh.bottle("dev", "egress:\n  routes: [pypi.org]\n")
        self.mh.agent("coder", {"bottle": "dev"})
        self.mh.agent("reviewer", {"bottle": "dev"}, where="cwd")
        result = self.mh.run_cli("start", "--dry-run")
        self.assertEqual(result.code, 2)
        self.assertIn("name the agent to start, one of: coder, reviewer", result.stderr)
        self.assertNotIn("Traceback", result.stderr)

    def test_no_agents_points_at_init(self) -> None:
        result = self.mh.run_cli("start")
        self.assertEqual(result.code, 2)
        self.assertIn("no agents yet", result.stderr)
        self.assertIn("bot-bottle init", result.stderr)


if __name__ == "__main__":
    unittest.main()
