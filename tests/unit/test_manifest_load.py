"""Discovery (where files count), ``load()`` for one agent, and ``validate()`` over every file."""

from __future__ import annotations

import unittest

from bot_bottle.manifest import Layout, ManifestError, NotFoundError, discover, load, validate
from tests.fixtures import SIMPLE_BOTTLE, ManifestTestCase


class LocationTests(ManifestTestCase):
    def test_bottles_come_from_home_only(self) -> None:
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        self.mh.agent("a", {"bottle": "dev"})
        cat = discover(self.mh.layout)
        self.assertEqual(sorted(cat.bottles), ["dev"])
        self.assertEqual(cat.bottles["dev"].path, self.mh.bottles_dir / "dev.md")
        self.assertEqual(cat.bottles["dev"].origin, "home")
        self.assertEqual(cat.warnings, [])

    def test_cwd_bottles_folder_is_ignored_with_a_warning(self) -> None:
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        self.mh.cwd_bottle("dev", {"egress": {"routes": ["evil.example"]}})
        self.mh.cwd_bottle("extra", SIMPLE_BOTTLE)
        self.mh.agent("a", {"bottle": "dev"})
        cat = discover(self.mh.layout)
        self.assertEqual(sorted(cat.bottles), ["dev"])
        self.assertEqual(len(cat.warnings), 1)
        self.assertIn("ignoring", cat.warnings[0])
        self.assertIn(str(self.mh.cwd / ".bot-bottle" / "bottles"), cat.warnings[0])
        manifest = self.load("a")
        self.assertEqual([r.host for r in manifest.bottle.routes], ["example.com"])
        self.assertEqual(manifest.bottle.path, self.mh.bottles_dir / "dev.md")
        self.assertTrue(any("ignoring" in w for w in manifest.warnings))

    def test_bottle_only_in_cwd_is_not_found_with_a_hint(self) -> None:
        self.mh.cwd_bottle("repo-bottle", SIMPLE_BOTTLE)
        agent_path = self.mh.agent("a", "description: x\nbottle: repo-bottle\n", where="cwd")
        err = self.load_error("a")
        self.assertIsInstance(err, NotFoundError)
        self.assertManifestError(err, path=agent_path, line=3, key="bottle", contains="no bottle named 'repo-bottle'")
        self.assertIn("is ignored", err.hint)
        self.assertIn(str(self.mh.bottles_dir), err.hint)

    def test_agents_from_home_and_cwd(self) -> None:
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        self.mh.agent("home-only", {"bottle": "dev"})
        self.mh.agent("repo-only", {"bottle": "dev"}, where="cwd")
        cat = discover(self.mh.layout)
        self.assertEqual(cat.agents["home-only"].origin, "home")
        self.assertEqual(cat.agents["repo-only"].origin, "cwd")
        self.assertEqual(cat.shadowed, {})
        self.assertEqual(self.load("repo-only").agent.origin, "cwd")
        self.assertIsNone(self.load("repo-only").shadowed)

    def test_cwd_agent_wins_and_shadowed_is_set(self) -> None:
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        home = self.mh.agent("a", {"bottle": "dev"}, body="home prompt")
        repo = self.mh.agent("a", {"bottle": "dev"}, body="repo prompt", where="cwd")
        manifest = self.load("a")
        self.assertEqual(manifest.agent.path, repo)
        self.assertEqual(manifest.agent.origin, "cwd")
        self.assertEqual(manifest.agent.prompt, "repo prompt")
        self.assertEqual(manifest.shadowed, home)
        cat = discover(self.mh.layout)
        self.assertEqual(cat.shadowed["a"].path, home)

    def test_agent_shaped_file_in_bottles_folder(self) -> None:
        path = self.mh.bottle("oops", "description: x\nbottle: dev\n")
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        self.mh.agent("a", {"bottle": "oops"})
        err = self.load_error("a")
        self.assertManifestError(err, path=path, line=3, key="bottle", contains="looks like an agent file")
        self.assertIn("agents/", err.hint)

    def test_running_from_home_gives_no_warning(self) -> None:
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        self.mh.agent("a", {"bottle": "dev"})
        layout = Layout(home=self.mh.home, cwd=self.mh.home)
        self.assertTrue(layout.cwd_is_home)
        cat = discover(layout)
        self.assertEqual(cat.warnings, [])
        self.assertEqual(cat.shadowed, {})
        self.assertEqual(cat.agents["a"].origin, "home")
        manifest = load("a", layout)
        self.assertEqual(manifest.warnings, ())
        self.assertIsNone(manifest.shadowed)

    def test_invalid_file_names(self) -> None:
        for name in ("has space", "-dash", ".hidden-is-skipped"):
            with self.subTest(name=name):
                mh_path = self.mh.raw(f".bot-bottle/agents/{name}.md", "---\nbottle: dev\n---\n")
                try:
                    if name.startswith("."):
                        self.assertNotIn(name, discover(self.mh.layout).agents)
                        continue
                    # A badly named file is reported and skipped; it never hides the others.
                    cat = discover(self.mh.layout)
                    self.assertNotIn(name, cat.agents)
                    self.assertEqual(len(cat.invalid), 1)
                    self.assertManifestError(cat.invalid[0], path=mh_path, line=1, key=None, contains="not a valid name")
                    self.assertTrue(any("not a valid name" in w for w in cat.warnings))
                    report = validate(self.mh.layout)
                    self.assertFalse(report.ok)
                    self.assertIn(mh_path, [e.path for e in report.errors])
                finally:
                    mh_path.unlink()

    def test_non_markdown_files_are_not_manifests(self) -> None:
        self.mh.raw(".bot-bottle/bottles/notes.txt", "hello")
        self.mh.raw(".bot-bottle/agents/a.md.bak", "---\nbroken: [\n---\n")
        (self.mh.bottles_dir / "folder.md").mkdir()
        cat = discover(self.mh.layout)
        self.assertEqual(cat.bottles, {})
        self.assertEqual(cat.agents, {})

    def test_missing_folders_are_fine(self) -> None:
        cat = discover(self.mh.layout)
        self.assertEqual((cat.agents, cat.bottles, cat.warnings), ({}, {}, []))


class LoadTests(ManifestTestCase):
    def test_unknown_agent_lists_the_available_ones(self) -> None:
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        self.mh.agent("coder", {"bottle": "dev"})
        self.mh.agent("reviewer", {"bottle": "dev"}, where="cwd")
        with self.assertRaises(NotFoundError) as cm:
            load("nobody", self.mh.layout)
        err = cm.exception
        self.assertEqual(str(err), "no agent named 'nobody'")
        self.assertEqual(err.exit_code, 2)
        self.assertIn("available: coder, reviewer", err.hint)

    def test_unknown_agent_that_is_a_bottle(self) -> None:
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        self.mh.agent("coder", {"bottle": "dev"})
        with self.assertRaises(NotFoundError) as cm:
            load("dev", self.mh.layout)
        self.assertIn("'dev' is a bottle", cm.exception.hint)

    def test_unknown_agent_when_nothing_exists(self) -> None:
        with self.assertRaises(NotFoundError) as cm:
            load("coder", self.mh.layout)
        self.assertIn("bot-bottle init", cm.exception.hint)

    def test_agent_naming_a_missing_bottle(self) -> None:
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        path = self.mh.agent("a", "description: x\ncolor: red\nbottle: prod\n")
        err = self.load_error("a")
        self.assertIsInstance(err, NotFoundError)
        self.assertManifestError(err, path=path, line=4, key="bottle", contains="no bottle named 'prod'")
        self.assertIn("available: dev", err.hint)

    def test_two_routes_for_one_host_with_different_auth(self) -> None:
        self.mh.bottle(
            "dev",
            "egress:\n  routes:\n"
            "    - host: api.example.com\n      auth: {scheme: bearer, token_ref: ONE}\n"
            "    - host: api.example.com\n      auth: {scheme: bearer, token_ref: TWO}\n",
        )
        self.mh.agent("a", {"bottle": "dev"})
        err = self.load_error("a")
        path = self.mh.bottles_dir / "dev.md"
        self.assertManifestError(err, path=path, line=6, key="egress.routes[1].auth", contains=("two routes with different auth", f"{path}:4"))

    def test_two_routes_for_one_host_across_extends(self) -> None:
        self.mh.bottle("base", "egress:\n  routes:\n    - host: api.example.com\n      auth: {scheme: bearer, token_ref: ONE}\n")
        self.mh.bottle("dev", "extends: base\negress:\n  routes:\n    - host: api.example.com\n      auth: {scheme: token, token_ref: ONE}\n")
        self.mh.agent("a", {"bottle": "dev"})
        err = self.load_error("a")
        self.assertEqual(err.path, self.mh.bottles_dir / "dev.md")
        self.assertEqual(err.line, 5)

    def test_same_host_same_auth_or_one_without_auth_is_fine(self) -> None:
        self.mh.bottle(
            "dev",
            "egress:\n  routes:\n"
            "    - host: api.example.com\n      auth: {scheme: bearer, token_ref: ONE}\n      matches: [{methods: [GET]}]\n"
            "    - host: api.example.com\n      auth: {scheme: bearer, token_ref: ONE}\n      matches: [{methods: [POST]}]\n"
            "    - host: api.example.com\n      matches: [{paths: [/public]}]\n",
        )
        self.mh.agent("a", {"bottle": "dev"})
        self.assertEqual(len(self.load("a").bottle.routes), 3)

    def test_warning_when_env_hands_the_agent_an_injected_variable(self) -> None:
        self.mh.bottle(
            "dev",
            'env:\n  GH: "${GITHUB_TOKEN}"\n  KEY: "${ANTHROPIC_KEY}"\n  OK: "${OTHER}"\n'
            "egress:\n  routes:\n    - host: api.github.com\n      auth: {scheme: bearer, token_ref: GITHUB_TOKEN}\n"
            "agent_provider:\n  auth_token: ANTHROPIC_KEY\n",
        )
        self.mh.agent("a", {"bottle": "dev"})
        warnings = self.load("a").warnings
        self.assertEqual(len(warnings), 2, warnings)
        self.assertTrue(warnings[0].startswith(f"{self.mh.bottles_dir / 'dev.md'}:3: env.GH"))
        self.assertIn("GITHUB_TOKEN", warnings[0])
        self.assertIn("ANTHROPIC_KEY", warnings[1])
        self.assertFalse(any("OTHER" in w for w in warnings))

    def test_warning_for_the_default_provider_token(self) -> None:
        self.mh.bottle("claude", 'env:\n  KEY: "${ANTHROPIC_API_KEY}"\n  OAI: "${OPENAI_API_KEY}"\n')
        self.mh.bottle("codex", 'extends: claude\nagent_provider:\n  template: codex\n')
        self.mh.agent("a", {"bottle": "claude"})
        self.mh.agent("b", {"bottle": "codex"})
        (warning,) = self.load("a").warnings
        self.assertIn("env.KEY", warning)
        (warning,) = self.load("b").warnings
        self.assertIn("env.OAI", warning)

    def test_no_warning_for_a_clean_bottle(self) -> None:
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        self.mh.agent("a", {"bottle": "dev"})
        self.assertEqual(self.load("a").warnings, ())

    def test_overrides_replace_file_text(self) -> None:
        path = self.mh.bottle("dev", SIMPLE_BOTTLE)
        self.mh.agent("a", {"bottle": "dev"})
        manifest = load("a", self.mh.layout, overrides={path: "---\negress:\n  log: 0\n---\n"})
        self.assertEqual(manifest.bottle.egress_log, 0)
        self.assertEqual(manifest.bottle.routes, ())


class ValidateTests(ManifestTestCase):
    def test_all_valid(self) -> None:
        self.mh.bottle("base", SIMPLE_BOTTLE)
        self.mh.bottle("dev", {"extends": "base"})
        self.mh.agent("a", {"bottle": "dev"})
        self.mh.agent("b", {"bottle": "base"}, where="cwd")
        report = validate(self.mh.layout)
        self.assertTrue(report.ok)
        self.assertEqual(report.errors, ())
        self.assertEqual(len(report.checked), 4)

    def test_every_error_of_each_broken_file_and_others_still_checked(self) -> None:
        good = self.mh.bottle("good", SIMPLE_BOTTLE)
        bad1 = self.mh.bottle("bad1", "env:\n  A: [1]\nsupervise: maybe\n")
        bad2 = self.mh.bottle("bad2", "egress:\n  log: 9\n")
        agent_bad = self.mh.agent("x", "bottle: good\nunknown: 1\n")
        agent_missing = self.mh.agent("y", "bottle: nowhere\n", where="cwd")
        agent_ok = self.mh.agent("z", {"bottle": "good"})
        report = validate(self.mh.layout)
        self.assertFalse(report.ok)
        by_path: dict[object, list] = {}
        for e in report.errors:
            by_path.setdefault(e.path, []).append(e)
        self.assertEqual(set(by_path), {bad1, bad2, agent_bad, agent_missing})
        self.assertEqual(len(report.errors), 5)
        self.assertEqual([(e.line, e.key) for e in by_path[bad1]], [(3, "env.A"), (4, "supervise")])
        by_path = {path: errors[0] for path, errors in by_path.items()}
        self.assertEqual((by_path[bad2].line, by_path[bad2].key), (3, "egress.log"))
        self.assertEqual((by_path[agent_bad].line, by_path[agent_bad].key), (3, "unknown"))
        self.assertEqual((by_path[agent_missing].line, by_path[agent_missing].key), (2, "bottle"))
        for path in (good, agent_ok):
            self.assertIn(path, report.checked)

    def test_a_broken_parent_is_reported_once(self) -> None:
        base = self.mh.bottle("base", "egress:\n  log: 7\n")
        self.mh.bottle("c1", {"extends": "base"})
        self.mh.bottle("c2", {"extends": "base"})
        report = validate(self.mh.layout)
        self.assertEqual([e.path for e in report.errors], [base])

    def test_cycle_is_reported(self) -> None:
        self.mh.bottle("x", "extends: y\n")
        self.mh.bottle("y", "extends: x\n")
        report = validate(self.mh.layout)
        self.assertFalse(report.ok)
        self.assertTrue(all("cycle" in str(e) for e in report.errors))

    def test_shadowed_home_agent_is_validated_too(self) -> None:
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        home = self.mh.agent("a", "bottle: dev\nbogus: 1\n")
        self.mh.agent("a", {"bottle": "dev"}, where="cwd")
        report = validate(self.mh.layout)
        self.assertEqual([e.path for e in report.errors], [home])

    def test_warnings_for_stray_files_and_cwd_bottles(self) -> None:
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        stray = self.mh.raw(".bot-bottle/dev.md", "---\n---\n")
        self.mh.cwd_bottle("dev", SIMPLE_BOTTLE)
        report = validate(self.mh.layout)
        self.assertTrue(report.ok)
        self.assertTrue(any(str(stray) in w and "ignored" in w for w in report.warnings), report.warnings)
        self.assertTrue(any(w.startswith("ignoring") for w in report.warnings), report.warnings)

    def test_overrides_are_validated(self) -> None:
        path = self.mh.bottle("dev", SIMPLE_BOTTLE)
        report = validate(self.mh.layout, overrides={path: "---\nsupervise: 3\n---\n"})
        self.assertEqual([(e.path, e.line, e.key) for e in report.errors], [(path, 2, "supervise")])

    def test_empty_home_is_valid(self) -> None:
        report = validate(self.mh.layout)
        self.assertTrue(report.ok)
        self.assertEqual(report.checked, ())


if __name__ == "__main__":
    unittest.main()
