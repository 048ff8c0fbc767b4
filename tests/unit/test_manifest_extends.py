"""``extends``: single and multiple parents, merge rules per key, diamonds, cycles, missing parents."""

from __future__ import annotations

import unittest

from tests.fixtures import ManifestTestCase


class ExtendsTestCase(ManifestTestCase):
    def effective(self, name: str) -> object:
        self.mh.agent("a", {"bottle": name})
        return self.load("a").bottle

    def path(self, name: str) -> object:
        return self.mh.bottles_dir / f"{name}.md"


class SingleParentTests(ExtendsTestCase):
    def test_child_inherits_everything(self) -> None:
        self.mh.bottle(
            "base",
            "env:\n  A: one\negress:\n  log: 2\n  routes: [pypi.org]\nsupervise: false\n"
            "git-gate:\n  user: {name: Base}\n  repos:\n    app: https://h.com/a/app\n"
            "agent_provider:\n  template: codex\n",
        )
        self.mh.bottle("child", "extends: base\n")
        bottle = self.effective("child")
        self.assertEqual([(e.name, e.value) for e in bottle.env], [("A", "one")])
        self.assertEqual(bottle.egress_log, 2)
        self.assertEqual([r.host for r in bottle.routes], ["pypi.org"])
        self.assertFalse(bottle.supervise)
        self.assertEqual(bottle.git_user.name, "Base")
        self.assertEqual([r.name for r in bottle.repos], ["app"])
        self.assertEqual(bottle.template, "codex")
        self.assertEqual(bottle.chain, (self.path("base"), self.path("child")))
        self.assertEqual(bottle.name, "child")
        self.assertEqual(bottle.path, self.path("child"))

    def test_inherited_values_keep_their_origin(self) -> None:
        self.mh.bottle("base", "egress:\n  log: 2\nenv:\n  A: one\n")
        self.mh.bottle("child", "extends: base\n")
        bottle = self.effective("child")
        self.assertEqual(bottle.egress_log_origin.path, self.path("base"))
        self.assertEqual(bottle.egress_log_origin.line, 3)
        self.assertEqual(bottle.env[0].origin.path, self.path("base"))

    def test_extends_as_a_one_item_list(self) -> None:
        self.mh.bottle("base", "env:\n  A: one\n")
        self.mh.bottle("child", "extends: [base]\n")
        self.assertEqual(self.effective("child").env[0].value, "one")

    def test_env_merges_per_key_child_wins(self) -> None:
        self.mh.bottle("base", "env:\n  A: base-a\n  B: base-b\n")
        self.mh.bottle("child", 'env:\n  B: "${CHILD_B}"\n  C: child-c\n\nextends: base\n')
        bottle = self.effective("child")
        env = {e.name: (e.kind, e.value, e.origin.path.stem) for e in bottle.env}
        self.assertEqual(
            env,
            {"A": ("literal", "base-a", "base"), "B": ("host", "CHILD_B", "child"), "C": ("literal", "child-c", "child")},
        )

    def test_routes_concatenate_parents_first(self) -> None:
        self.mh.bottle("base", "egress:\n  routes: [a.com, b.com]\n")
        self.mh.bottle("child", "extends: base\negress:\n  routes: [c.com]\n")
        self.assertEqual([r.host for r in self.effective("child").routes], ["a.com", "b.com", "c.com"])

    def test_child_route_for_a_parent_host_is_added_not_replacing(self) -> None:
        self.mh.bottle("base", "egress:\n  routes:\n    - host: a.com\n      matches: [{methods: [GET]}]\n")
        self.mh.bottle("child", "extends: base\negress:\n  routes:\n    - host: a.com\n      matches: [{methods: [POST]}]\n")
        routes = self.effective("child").routes
        self.assertEqual([(r.host, r.matches[0].methods) for r in routes], [("a.com", ("GET",)), ("a.com", ("POST",))])

    def test_repos_merge_by_name_child_replaces_whole_entry(self) -> None:
        self.mh.bottle(
            "base",
            "git-gate:\n  repos:\n    app:\n      url: git@github.com:org/app.git\n      ssh_key: ~/.ssh/k\n"
            "      known_hosts: github.com ssh-ed25519 AAAA\n    lib: https://h.com/org/lib\n",
        )
        self.mh.bottle("child", "extends: base\ngit-gate:\n  repos:\n    app: https://github.com/me/app.git\n    docs: https://h.com/org/docs\n")
        repos = {r.name: r for r in self.effective("child").repos}
        self.assertEqual(sorted(repos), ["app", "docs", "lib"])
        self.assertEqual(repos["app"].url, "https://github.com/me/app.git")
        # The parent's SSH key never pairs with the child's URL.
        self.assertIsNone(repos["app"].ssh_key)
        self.assertIsNone(repos["app"].known_hosts)
        self.assertEqual(repos["app"].origin.path, self.path("child"))
        self.assertEqual(repos["lib"].origin.path, self.path("base"))

    def test_scalars_last_wins(self) -> None:
        self.mh.bottle("base", "egress:\n  log: 2\nsupervise: false\n")
        self.mh.bottle("child", "extends: base\negress:\n  log: 0\nsupervise: true\n")
        bottle = self.effective("child")
        self.assertEqual(bottle.egress_log, 0)
        self.assertEqual(bottle.egress_log_origin.path, self.path("child"))
        self.assertTrue(bottle.supervise)
        self.assertEqual(bottle.supervise_origin.path, self.path("child"))

    def test_unset_scalars_do_not_override(self) -> None:
        self.mh.bottle("base", "egress:\n  log: 0\nsupervise: false\n")
        self.mh.bottle("child", "extends: base\negress:\n  routes: [a.com]\n")
        bottle = self.effective("child")
        self.assertEqual(bottle.egress_log, 0)
        self.assertFalse(bottle.supervise)

    def test_provider_fields_overlay_individually(self) -> None:
        self.mh.raw(".bot-bottle/bottles/Dockerfile.base", "FROM scratch\n")
        self.mh.bottle("base", "agent_provider:\n  template: codex\n  dockerfile: Dockerfile.base\n  auth_token: BASE_KEY\n")
        self.mh.bottle("child", "extends: base\nagent_provider:\n  auth_token: CHILD_KEY\n")
        provider = self.effective("child").provider
        self.assertEqual(provider.template, "codex")
        self.assertEqual(provider.dockerfile, self.mh.bottles_dir / "Dockerfile.base")
        self.assertEqual(provider.auth_token, "CHILD_KEY")
        self.assertEqual(provider.template_origin.path, self.path("base"))
        self.assertEqual(provider.auth_token_origin.path, self.path("child"))

    def test_git_user_overlays_field_by_field(self) -> None:
        self.mh.bottle("base", "git-gate:\n  user:\n    name: Base Name\n    email: base@example.com\n")
        self.mh.bottle("child", "extends: base\ngit-gate:\n  user:\n    email: child@example.com\n")
        user = self.effective("child").git_user
        self.assertEqual((user.name, user.email), ("Base Name", "child@example.com"))
        self.assertEqual(user.name_origin.path, self.path("base"))
        self.assertEqual(user.email_origin.path, self.path("child"))

    def test_agent_git_user_overlays_the_bottles(self) -> None:
        self.mh.bottle("base", "git-gate:\n  user:\n    name: Bottle Name\n    email: bottle@example.com\n")
        self.mh.agent("a", "bottle: base\ngit-gate:\n  user:\n    name: Agent Name\n")
        manifest = self.load("a")
        self.assertEqual((manifest.git_user.name, manifest.git_user.email), ("Agent Name", "bottle@example.com"))
        self.assertEqual(manifest.git_user.name_origin.path, self.mh.agents_dir() / "a.md")
        self.assertEqual(manifest.git_user.email_origin.path, self.path("base"))
        # The bottle itself is untouched by the agent.
        self.assertEqual(manifest.bottle.git_user.name, "Bottle Name")

    def test_description_is_the_childs_own(self) -> None:
        self.mh.bottle("base", "description: base bottle\n")
        self.mh.bottle("child", "extends: base\n")
        self.assertEqual(self.effective("child").description, "")


class MultipleParentTests(ExtendsTestCase):
    def test_parents_fold_left_to_right_then_child(self) -> None:
        self.mh.bottle("p1", "env:\n  A: p1\n  B: p1\n  C: p1\negress:\n  log: 0\n  routes: [one.com]\n")
        self.mh.bottle("p2", "env:\n  B: p2\n  C: p2\negress:\n  log: 2\n  routes: [two.com]\n")
        self.mh.bottle("child", "extends: [p1, p2]\nenv:\n  C: child\negress:\n  routes: [three.com]\n")
        bottle = self.effective("child")
        self.assertEqual({e.name: e.value for e in bottle.env}, {"A": "p1", "B": "p2", "C": "child"})
        self.assertEqual(bottle.egress_log, 2)
        self.assertEqual([r.host for r in bottle.routes], ["one.com", "two.com", "three.com"])
        self.assertEqual(bottle.chain, (self.path("p1"), self.path("p2"), self.path("child")))

    def test_order_of_parents_matters(self) -> None:
        self.mh.bottle("p1", "supervise: false\n")
        self.mh.bottle("p2", "supervise: true\n")
        self.mh.bottle("c12", "extends: [p1, p2]\n")
        self.mh.bottle("c21", "extends: [p2, p1]\n")
        self.assertTrue(self.effective("c12").supervise)
        self.assertFalse(self.effective("c21").supervise)

    def test_diamond_shares_a_grandparent_once(self) -> None:
        self.mh.bottle("root", "env:\n  R: root\negress:\n  routes: [root.com]\n")
        self.mh.bottle("left", "extends: root\negress:\n  routes: [left.com]\n")
        self.mh.bottle("right", "extends: root\negress:\n  routes: [right.com]\n")
        self.mh.bottle("child", "extends: [left, right]\n")
        bottle = self.effective("child")
        self.assertEqual([r.host for r in bottle.routes], ["root.com", "left.com", "right.com"])
        self.assertEqual([e.name for e in bottle.env], ["R"])
        self.assertEqual(
            bottle.chain, (self.path("root"), self.path("left"), self.path("right"), self.path("child"))
        )

    def test_deep_chain(self) -> None:
        self.mh.bottle("b0", "env:\n  LEVEL: '0'\n  FIRST: kept\negress:\n  routes: [h0.com]\n")
        for level in range(1, 12):
            self.mh.bottle(f"b{level}", f"extends: b{level - 1}\nenv:\n  LEVEL: '{level}'\negress:\n  routes: [h{level}.com]\n")
        bottle = self.effective("b11")
        env = {e.name: e.value for e in bottle.env}
        self.assertEqual(env, {"LEVEL": "11", "FIRST": "kept"})
        self.assertEqual([r.host for r in bottle.routes], [f"h{i}.com" for i in range(12)])
        self.assertEqual(len(bottle.chain), 12)


class ExtendsErrorTests(ExtendsTestCase):
    def test_self_extends(self) -> None:
        self.mh.bottle("loop", "env: {}\nextends: loop\n")
        self.mh.agent("a", {"bottle": "loop"})
        err = self.load_error("a")
        self.assertManifestError(err, path=self.path("loop"), line=3, key="extends", contains="cycle: loop -> loop")

    def test_two_bottle_cycle(self) -> None:
        self.mh.bottle("x", "extends: y\n")
        self.mh.bottle("y", "env: {}\nextends: [x]\n")
        self.mh.agent("a", {"bottle": "x"})
        err = self.load_error("a")
        self.assertManifestError(err, path=self.path("y"), line=3, key="extends", contains="cycle: x -> y -> x")

    def test_longer_cycle_names_the_chain(self) -> None:
        self.mh.bottle("top", "extends: one\n")
        self.mh.bottle("one", "extends: two\n")
        self.mh.bottle("two", "extends: three\n")
        self.mh.bottle("three", "extends:\n  - ok\n  - one\n")
        self.mh.bottle("ok", "")
        self.mh.agent("a", {"bottle": "top"})
        err = self.load_error("a")
        self.assertManifestError(err, path=self.path("three"), line=4, key="extends", contains="top -> one -> two -> three -> one")

    def test_diamond_is_not_a_cycle(self) -> None:
        self.mh.bottle("root", "")
        self.mh.bottle("l", "extends: root\n")
        self.mh.bottle("r", "extends: root\n")
        self.mh.bottle("c", "extends: [l, r, root]\n")
        self.assertEqual(len(self.effective("c").chain), 4)

    def test_missing_parent(self) -> None:
        self.mh.bottle("child", "env: {}\nextends:\n  - base\n  - gone\n")
        self.mh.bottle("base", "")
        self.mh.agent("a", {"bottle": "child"})
        err = self.load_error("a")
        self.assertManifestError(err, path=self.path("child"), line=5, key="extends", contains="no parent bottle named 'gone'")
        self.assertIn("available: base, child", err.hint)

    def test_missing_parent_as_a_string(self) -> None:
        self.mh.bottle("child", "\nextends: gone\n")
        self.mh.agent("a", {"bottle": "child"})
        self.assertManifestError(self.load_error("a"), path=self.path("child"), line=3, key="extends", contains="no parent bottle named 'gone'")

    def test_missing_grandparent_points_at_the_parent(self) -> None:
        self.mh.bottle("child", "extends: base\n")
        self.mh.bottle("base", "extends: gone\n")
        self.mh.agent("a", {"bottle": "child"})
        self.assertManifestError(self.load_error("a"), path=self.path("base"), line=2, key="extends", contains="'gone'")

    def test_bad_parent_name(self) -> None:
        self.mh.bottle("child", 'extends: ["ok", "../x"]\n')
        self.mh.agent("a", {"bottle": "child"})
        self.assertManifestError(self.load_error("a"), path=self.path("child"), line=2, key="extends[1]", contains="not a bottle name")

    def test_extends_wrong_type(self) -> None:
        self.mh.bottle("child", "extends: {base: true}\n")
        self.mh.agent("a", {"bottle": "child"})
        self.assertManifestError(self.load_error("a"), path=self.path("child"), line=2, key="extends", contains="list of strings")

    def test_error_in_a_parent_names_the_parents_file(self) -> None:
        self.mh.bottle("base", "env:\n  HTTPS_PROXY: http://evil\n")
        self.mh.bottle("child", "extends: base\n")
        self.mh.agent("a", {"bottle": "child"})
        self.assertManifestError(self.load_error("a"), path=self.path("base"), line=3, key="env.HTTPS_PROXY")


if __name__ == "__main__":
    unittest.main()
