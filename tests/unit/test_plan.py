"""The bottle plan: hosts, routes, provider route, env names, git-gate, labels, the JSON contract."""

from __future__ import annotations

import dataclasses
import json
import unittest
from pathlib import Path
from typing import Any

from bot_bottle import plan as plan_mod
from bot_bottle.errors import UsageError
from bot_bottle.plan import DEFAULT_GIT_USER_SOURCE, BottlePlan, ImageRefs, resolve
from tests.fixtures import TEST_IMAGES, ManifestTestCase

SECRETS = {
    "GITHUB_TOKEN": "ghp_realGithubTokenValue1234567890abcd",
    "ANTHROPIC_API_KEY": "sk-ant-api03-realAnthropicKeyValue-000000",
    "SENTRY_DSN": "https://publickey-secretpart@o0.ingest.sentry.io/1",
    "PUSH_TOKEN": "push-token-real-value-zzz",
    "OPENAI_API_KEY": "sk-proj-realOpenAiKeyValue-111111",
}

FULL_BOTTLE = """\
env:
  TZ: UTC
  DSN: "${SENTRY_DSN}"
  DB_PASSWORD: "?Password for staging"
egress:
  log: 2
  routes:
    - host: pypi.org
      matches:
        - methods: [GET, HEAD]
    - host: api.github.com
      matches:
        - paths: [/repos/]
          methods: [GET]
          headers: {Accept: application/json}
      auth:
        scheme: bearer
        token_ref: GITHUB_TOKEN
      dlp:
        outbound_on_match: supervise
        entropy: true
    - files.pythonhosted.org
    - PyPI.org.
git-gate:
  user:
    name: Bottle Bot
    email: bot@example.com
  repos:
    app:
      url: https://github.com/me/app.git
      token_ref: PUSH_TOKEN
    lib:
      url: git@github.com:me/lib.git
      ssh_key: ~/.ssh/lib_key
      known_hosts: github.com ssh-ed25519 AAAA
supervise: false
"""


class PlanTestCase(ManifestTestCase):
    def plan(self, agent: str = "a", **kwargs: Any) -> BottlePlan:
        kwargs.setdefault("images", TEST_IMAGES)
        return resolve(self.load(agent), **kwargs)

    def full(self, **kwargs: Any) -> BottlePlan:
        self.mh.bottle("dev", FULL_BOTTLE)
        self.mh.agent("a", "bottle: dev\ncolor: green\nskills: [pdf]\ngit-gate:\n  user:\n    email: agent@example.com\n", body="Be careful.\n")
        return self.plan(**kwargs)


class HostsAndRoutesTests(PlanTestCase):
    def test_hosts_sorted_and_deduplicated(self) -> None:
        plan = self.full(environ=SECRETS)
        self.assertEqual(
            plan.hosts, ("api.anthropic.com", "api.github.com", "files.pythonhosted.org", "pypi.org")
        )
        self.assertEqual(list(plan.hosts), sorted(set(plan.hosts)))
        # Both pypi.org routes are kept; the host is listed once.
        self.assertEqual([r.host for r in plan.routes].count("pypi.org"), 2)

    def test_provider_route_claude(self) -> None:
        self.mh.bottle("dev", {"egress": {"routes": ["example.com"]}})
        self.mh.agent("a", {"bottle": "dev"})
        plan = self.plan()
        first = plan.routes[0]
        self.assertEqual(first.host, "api.anthropic.com")
        self.assertEqual(first.ports, (443,))
        self.assertEqual(first.auth, {"scheme": "header", "token_ref": "ANTHROPIC_API_KEY", "header": "x-api-key"})
        self.assertEqual(first.source, "provider:claude")
        self.assertEqual(plan.template, "claude")
        self.assertEqual(plan.agent_command, "claude")
        self.assertIn("ANTHROPIC_API_KEY", plan.credential_refs)

    def test_provider_route_codex(self) -> None:
        self.mh.bottle("dev", "agent_provider:\n  template: codex\n")
        self.mh.agent("a", {"bottle": "dev"})
        plan = self.plan()
        self.assertEqual(plan.hosts, ("api.openai.com",))
        self.assertEqual(plan.routes[0].auth, {"scheme": "bearer", "token_ref": "OPENAI_API_KEY"})
        self.assertEqual(plan.agent_command, "codex")

    def test_provider_auth_token_from_the_bottle(self) -> None:
        path = self.mh.bottle("dev", "agent_provider:\n  template: claude\n  auth_token: MY_KEY\n")
        self.mh.agent("a", {"bottle": "dev"})
        route = self.plan().routes[0]
        self.assertEqual(route.auth["token_ref"], "MY_KEY")
        self.assertEqual(route.source, f"provider:claude ({path}:4)")

    def test_provider_route_not_added_when_the_bottle_routes_the_host(self) -> None:
        self.mh.bottle("dev", "egress:\n  routes:\n    - host: api.anthropic.com\n      matches: [{paths: [/v1/messages]}]\n")
        self.mh.agent("a", {"bottle": "dev"})
        plan = self.plan()
        self.assertEqual(len(plan.routes), 1)
        self.assertEqual(plan.routes[0].matches, ({"paths": ["/v1/messages"]},))
        self.assertFalse(plan.routes[0].source.startswith("provider:"))

    def test_agent_folder_is_where_a_repository_agent_lives(self) -> None:
        # What a resume reads back (state ``started_in``): the same after every resume.
        self.mh.bottle("dev", "egress:\n  routes: [pypi.org]\n")
        self.mh.agent("home-agent", {"bottle": "dev"})
        self.mh.agent("repo-agent", {"bottle": "dev"}, where="cwd")
        self.assertIsNone(self.plan("home-agent").agent_folder)
        self.assertEqual(self.plan("repo-agent").agent_folder, self.mh.cwd)

    def test_the_bottles_own_provider_route_gets_the_providers_credential(self) -> None:
        # Narrowing the provider's host used to drop auth_token silently: the agent, holding a
        # placeholder only, could not reach its model.
        self.mh.bottle("dev", "agent_provider:\n  auth_token: MY_KEY\negress:\n  routes:\n"
                       "    - host: api.anthropic.com\n      matches: [{methods: [POST]}]\n"
                       "    - host: api.anthropic.com\n      auth: {scheme: bearer, token_ref: OTHER_KEY}\n")
        self.mh.agent("a", {"bottle": "dev"})
        plan = self.plan()
        narrowed, own = plan.routes
        self.assertEqual(narrowed.matches, ({"methods": ["POST"]},))
        self.assertEqual(narrowed.auth["token_ref"], "MY_KEY")
        self.assertIn("auth from provider:claude", narrowed.source)
        self.assertEqual(narrowed.dlp["own_token"], "redact")  # as on the provider's own route
        self.assertEqual(own.auth, {"scheme": "bearer", "token_ref": "OTHER_KEY"})  # its own kept
        self.assertEqual(plan.credential_refs, ("MY_KEY", "OTHER_KEY"))
        self.assertFalse([w for w in plan.warnings if "tls_passthrough" in w])

    def test_a_passed_through_provider_route_cannot_carry_the_credential(self) -> None:
        self.mh.bottle("dev", "egress:\n  routes:\n    - host: api.anthropic.com\n      tls_passthrough: true\n")
        self.mh.agent("a", {"bottle": "dev"})
        plan = self.plan()
        self.assertIsNone(plan.routes[0].auth)
        (warning,) = [w for w in plan.warnings if "tls_passthrough" in w]
        self.assertIn("cannot be injected", warning)

    def test_supervise_for_an_agent_that_cannot_ask_is_pointed_out(self) -> None:
        for template, warned in (("pi", True), ("claude", False), ("codex", False)):
            with self.subTest(template=template):
                self.mh.bottle("dev", f"supervise: true\nagent_provider:\n  template: {template}\n")
                self.mh.agent("a", {"bottle": "dev"})
                found = [w for w in self.plan().warnings if w.startswith("supervise is on")]
                self.assertEqual(bool(found), warned, found)
        self.mh.bottle("dev", "supervise: false\nagent_provider:\n  template: pi\n")
        self.assertFalse([w for w in self.plan().warnings if "supervise" in w])

    def test_plugin_template_has_no_provider_route(self) -> None:
        (self.mh.home_dir / "contrib" / "mine").mkdir(parents=True)
        (self.mh.home_dir / "contrib" / "mine" / "provider.py").write_text(
            "from bot_bottle.providers import ProviderInfo\n"
            "PROVIDER = ProviderInfo('mine', 'mine', '', 'bearer', None, '')\n"
        )
        self.mh.bottle("dev", "agent_provider:\n  template: mine\n")
        self.mh.agent("a", {"bottle": "dev"})
        plan = self.plan()
        self.assertEqual(plan.routes, ())
        self.assertEqual(plan.hosts, ())
        self.assertEqual(plan.agent_command, "mine")

    def test_route_details(self) -> None:
        plan = self.full(environ=SECRETS)
        github = next(r for r in plan.routes if r.host == "api.github.com")
        self.assertEqual(github.matches, ({"paths": ["/repos/"], "methods": ["GET"], "headers": {"accept": "application/json"}},))
        self.assertEqual(github.auth, {"scheme": "bearer", "token_ref": "GITHUB_TOKEN"})
        self.assertEqual(github.dlp["outbound_on_match"], "supervise")
        self.assertFalse(github.dlp["outbound_on_match_is_default"])
        self.assertTrue(github.dlp["entropy"])
        self.assertEqual(github.source, f"{self.mh.bottles_dir / 'dev.md'}:12")
        files = next(r for r in plan.routes if r.host == "files.pythonhosted.org")
        self.assertIsNone(files.auth)
        self.assertEqual(files.ports, (80, 443))
        self.assertEqual(files.dlp["outbound_on_match"], "block")
        self.assertTrue(files.dlp["outbound_on_match_is_default"])

    def test_route_with_auth_redacts_its_own_token_by_default(self) -> None:
        self.mh.bottle("dev", "egress:\n  routes:\n    - host: a.com\n      auth: {scheme: token, token_ref: T}\n")
        self.mh.agent("a", {"bottle": "dev"})
        route = next(r for r in self.plan().routes if r.host == "a.com")
        self.assertEqual(route.dlp["own_token"], "redact")
        self.assertEqual(route.dlp["outbound_on_match"], "block")

    def test_egress_log_and_supervise(self) -> None:
        plan = self.full()
        self.assertEqual(plan.egress_log, 2)
        self.assertFalse(plan.supervise)


class ServerFetchTests(PlanTestCase):
    """``dlp.server_fetch``: requests that make the provider's servers fetch from an address they
    name are refused by default on the provider's API, allowed elsewhere; a manifest opts out on
    a route of the provider's host. The plan, its JSON, the table and the policy all say so."""

    def routes(self, bottle: str) -> dict[str, Any]:
        self.mh.bottle("dev", bottle)
        self.mh.agent("a", {"bottle": "dev"})
        plan = self.plan()
        return {f"{r.host} {i}": r for i, r in enumerate(plan.routes)}

    def test_the_provider_route_blocks_by_default_and_others_allow(self) -> None:
        for template, host in (("claude", "api.anthropic.com"), ("codex", "api.openai.com"), ("pi", "api.anthropic.com")):
            with self.subTest(template=template):
                routes = self.routes(f"agent_provider:\n  template: {template}\negress:\n  routes: [pypi.org]\n")
                provider = routes[f"{host} 0"]
                self.assertEqual((provider.dlp["server_fetch"], provider.dlp["server_fetch_is_default"]), ("block", True))
                self.assertEqual(routes["pypi.org 1"].dlp["server_fetch"], "allow")
                self.assertTrue(routes["pypi.org 1"].dlp["server_fetch_is_default"])

    def test_every_route_of_the_providers_host_blocks_whoever_holds_the_key(self) -> None:
        routes = self.routes("egress:\n  routes:\n    - host: api.anthropic.com\n      matches: [{methods: [POST]}]\n"
                             "    - host: api.anthropic.com\n      auth: {scheme: bearer, token_ref: OTHER_KEY}\n"
                             "    - host: api.openai.com\n      auth: {scheme: bearer, token_ref: OPENAI_KEY}\n")
        merged, own, other = routes.values()
        self.assertEqual(merged.auth["token_ref"], "ANTHROPIC_API_KEY")  # the provider's, merged in
        self.assertEqual(merged.dlp["server_fetch"], "block")
        self.assertEqual(merged.dlp["own_token"], "redact")
        self.assertEqual(own.dlp["server_fetch"], "block")
        self.assertEqual(own.dlp["own_token"], "redact")
        self.assertEqual(other.dlp["server_fetch"], "allow")  # another provider's API, for this bottle a route like any

    def test_the_manifest_opts_out_on_a_route_of_the_providers_host(self) -> None:
        routes = self.routes("egress:\n  routes:\n    - host: api.anthropic.com\n      dlp: {server_fetch: allow}\n"
                             "    - host: llm-gateway.example\n      dlp: {server_fetch: block}\n")
        opted, gateway = routes.values()
        self.assertEqual((opted.dlp["server_fetch"], opted.dlp["server_fetch_is_default"]), ("allow", False))
        self.assertEqual(opted.auth["token_ref"], "ANTHROPIC_API_KEY")
        self.assertEqual(opted.dlp["outbound_on_match"], "block")
        self.assertEqual((gateway.dlp["server_fetch"], gateway.dlp["server_fetch_is_default"]), ("block", False))

    def test_the_plan_json_the_table_and_the_policy_show_it(self) -> None:
        from bot_bottle.backend import sidecar_config
        from bot_bottle.cli import render
        from bot_bottle.sidecar.egress.policy import Policy

        self.mh.bottle("dev", "egress:\n  routes:\n    - pypi.org\n    - host: api.example.com\n"
                              "      dlp: {server_fetch: allow}\n")
        self.mh.agent("a", {"bottle": "dev"})
        plan = self.plan()
        result = self.mh.run_cli("start", "a", "--dry-run", "--format", "json", images=TEST_IMAGES)
        self.assertEqual(result.code, 0, result.stderr)
        data = json.loads(result.stdout)
        self.assertEqual([(r["host"], r["dlp"]["server_fetch"], r["dlp"]["server_fetch_is_default"]) for r in data["routes"]],
                         [("api.anthropic.com", "block", True), ("pypi.org", "allow", True),
                          ("api.example.com", "allow", False)])
        result = self.mh.run_cli("start", "a", "--dry-run", env={"COLUMNS": "250"}, images=TEST_IMAGES)
        self.assertEqual(result.code, 0, result.stderr)
        rows = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("│ ")}
        self.assertIn("block; no server fetch", rows["api.anthropic.com"])
        self.assertIn("block; server fetch allowed", rows["api.example.com"])
        self.assertNotIn("server fetch", rows["pypi.org"])  # the default elsewhere goes unsaid
        self.assertEqual(render._dlp_cell({"tokens": False, "secrets": False, "server_fetch": "block"}),
                         "off (no detector); no server fetch")
        policy = Policy.from_dict(sidecar_config.policy(plan))
        self.assertEqual([r.blocks_server_fetch for r in policy.routes], [True, False, False])


class EnvAndSecretsTests(PlanTestCase):
    def test_env_names_and_kinds(self) -> None:
        plan = self.full(environ=SECRETS)
        self.assertEqual([(e.name, e.kind, e.secret) for e in plan.env], [
            ("TZ", "literal", False), ("DSN", "host", True), ("DB_PASSWORD", "prompt", True),
        ])
        dsn = plan.env[1]
        self.assertEqual(dsn.host_var, "SENTRY_DSN")
        self.assertEqual(dsn.source, f"{self.mh.bottles_dir / 'dev.md'}:4")
        self.assertEqual(plan.env[2].prompt, "Password for staging")
        self.assertEqual(plan.secret_env_names, ("DSN", "DB_PASSWORD"))

    def test_a_token_written_as_a_literal_is_warned_about_without_its_value(self) -> None:
        token = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
        self.mh.bottle("dev", {"env": {"GH": token, "TZ": "UTC", "BUILD_ID": "a3f9c2e18b7d4e6f"}})
        self.mh.agent("a", {"bottle": "dev"})
        warnings = [w for w in self.plan().warnings if w.startswith("env ")]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn("env GH (", warnings[0])
        self.assertIn("GitHub token", warnings[0])
        self.assertNotIn(token, warnings[0])

    def test_a_route_an_earlier_one_for_the_same_host_shadows_is_warned_about(self) -> None:
        # A parent bottle allows api.example whole; the child's narrower route with a credential
        # would never decide a request.
        self.mh.bottle("base", {"egress": {"routes": [{"host": "api.example", "dlp": {"tokens": False}}]}})
        self.mh.bottle("dev", {"extends": "base", "egress": {"routes": [
            {"host": "api.example", "auth": {"scheme": "bearer", "token_ref": "T"}},
            {"host": "other.example", "matches": [{"paths": ["/a/"]}]}, {"host": "other.example"}]}})
        self.mh.agent("a", {"bottle": "dev"})
        warnings = [w for w in self.plan(environ={"T": "x"}).warnings if "never decides" in w]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn("route api.example", warnings[0])
        self.assertIn("base.md", warnings[0])

    def test_credential_refs(self) -> None:
        plan = self.full(environ=SECRETS)
        self.assertEqual(plan.credential_refs, ("ANTHROPIC_API_KEY", "GITHUB_TOKEN", "PUSH_TOKEN"))

    def test_secret_values_never_in_the_json(self) -> None:
        plan = self.full(environ=SECRETS)
        text = json.dumps(plan.to_dict())
        for name, value in SECRETS.items():
            self.assertNotIn(value, text, name)
        # Names are there; the values are not.
        self.assertIn("GITHUB_TOKEN", text)
        self.assertIn("SENTRY_DSN", text)
        self.assertEqual(plan.missing_host_vars, ())
        self.assertNotIn(SECRETS["GITHUB_TOKEN"], repr(plan))

    def test_missing_host_vars_listed(self) -> None:
        plan = self.full(environ={"GITHUB_TOKEN": "x"})
        self.assertEqual(plan.missing_host_vars, ("ANTHROPIC_API_KEY", "PUSH_TOKEN", "SENTRY_DSN"))
        self.assertTrue(any("ANTHROPIC_API_KEY, PUSH_TOKEN, SENTRY_DSN" in w for w in plan.warnings))

    def test_no_environ_means_every_host_var_is_missing(self) -> None:
        plan = self.full()
        self.assertIn("GITHUB_TOKEN", plan.missing_host_vars)

    def test_manifest_warnings_carried(self) -> None:
        self.mh.bottle("dev", 'env:\n  KEY: "${ANTHROPIC_API_KEY}"\n')
        self.mh.agent("a", {"bottle": "dev"})
        plan = self.plan(environ={"ANTHROPIC_API_KEY": "v"})
        self.assertEqual(len(plan.warnings), 1)
        self.assertIn("env.KEY", plan.warnings[0])


class GitGateAndAgentTests(PlanTestCase):
    def test_git_user_with_sources(self) -> None:
        plan = self.full()
        self.assertEqual(plan.git_user, {"name": "Bottle Bot", "email": "agent@example.com"})
        self.assertEqual(plan.git_user_sources["name"], f"{self.mh.bottles_dir / 'dev.md'}:27")
        self.assertEqual(plan.git_user_sources["email"], f"{self.mh.agents_dir() / 'a.md'}:7")

    def test_git_user_unset(self) -> None:
        self.mh.bottle("dev", "")
        self.mh.agent("a", {"bottle": "dev"})
        plan = self.plan()
        # Without one, `git commit` in the bottle fails: a default named after the bottle alone.
        self.assertEqual(plan.git_user, {"name": "dev agent (bot-bottle)", "email": "dev@bot-bottle.invalid"})
        self.assertEqual(plan.git_user_sources, {"name": DEFAULT_GIT_USER_SOURCE, "email": DEFAULT_GIT_USER_SOURCE})

    def test_git_user_half_set_keeps_its_half(self) -> None:
        self.mh.bottle("dev", {"git-gate": {"user": {"name": "Ada"}}})
        self.mh.agent("a", {"bottle": "dev"})
        plan = self.plan()
        self.assertEqual(plan.git_user, {"name": "Ada", "email": "dev@bot-bottle.invalid"})
        self.assertEqual(plan.git_user_sources["email"], DEFAULT_GIT_USER_SOURCE)
        self.assertTrue(str(plan.git_user_sources["name"]).startswith(str(self.mh.bottles_dir / "dev.md")))

    def test_repos(self) -> None:
        plan = self.full()
        repos = {r.name: r for r in plan.repos}
        self.assertEqual(repos["app"].url, "https://github.com/me/app.git")
        self.assertEqual(repos["app"].auth, "https-token")
        self.assertEqual(repos["app"].credential_ref, "PUSH_TOKEN")
        self.assertEqual(repos["lib"].auth, "ssh-key")
        self.assertEqual(repos["lib"].credential_ref, "~/.ssh/lib_key")
        self.assertEqual(repos["app"].source, f"{self.mh.bottles_dir / 'dev.md'}:30")

    def test_agent_fields(self) -> None:
        plan = self.full()
        self.assertEqual(plan.agent, "a")
        self.assertEqual(plan.agent_origin, "home")
        self.assertEqual(plan.bottle, "dev")
        self.assertEqual(plan.skills, ("pdf",))
        self.assertEqual(plan.color, "green")
        self.assertEqual(plan.system_prompt_chars, len("Be careful."))
        self.assertIsNone(plan.shadowed_agent)

    def test_shadowed_agent(self) -> None:
        self.mh.bottle("dev", "")
        home = self.mh.agent("a", {"bottle": "dev"})
        self.mh.agent("a", {"bottle": "dev"}, where="cwd")
        plan = self.plan()
        self.assertEqual(plan.agent_origin, "cwd")
        self.assertEqual(plan.shadowed_agent, home)
        self.assertEqual(plan.to_dict()["shadowed_agent"], str(home))

    def test_bottle_chain(self) -> None:
        self.mh.bottle("base", "")
        self.mh.bottle("dev", "extends: base\n")
        self.mh.agent("a", {"bottle": "dev"})
        plan = self.plan()
        self.assertEqual(plan.bottle_chain, (self.mh.bottles_dir / "base.md", self.mh.bottles_dir / "dev.md"))


class BackendAndLabelTests(PlanTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.mh.bottle("dev", "")
        self.mh.agent("coder", {"bottle": "dev"})

    def test_labels(self) -> None:
        plan = self.plan("coder", label="fix-bug-12")
        self.assertEqual(
            plan.labels,
            {"bot-bottle.agent": "coder", "bot-bottle.bottle": "dev", "bot-bottle.backend": "docker", "bot-bottle.label": "fix-bug-12"},
        )
        self.assertEqual(plan.label, "fix-bug-12")

    def test_no_label(self) -> None:
        plan = self.plan("coder")
        self.assertNotIn("bot-bottle.label", plan.labels)
        self.assertIsNone(plan.label)

    def test_backends(self) -> None:
        for backend in ("docker", "smolmachines"):
            with self.subTest(backend=backend):
                plan = self.plan("coder", backend=backend, runtime="x", runtime_note="why")
                self.assertEqual(plan.backend, backend)
                self.assertEqual(plan.labels["bot-bottle.backend"], backend)
                self.assertEqual((plan.runtime, plan.runtime_note), ("x", "why"))

    def test_unknown_backend(self) -> None:
        with self.assertRaises(UsageError) as cm:
            self.plan("coder", backend="kubernetes")
        self.assertEqual(cm.exception.exit_code, 2)
        self.assertIn("docker, smolmachines", str(cm.exception))

    def test_images(self) -> None:
        plan = self.plan("coder", images=ImageRefs(agent="agent:1", sidecar="sidecar:2"))
        self.assertEqual((plan.agent_image, plan.sidecar_image), ("agent:1", "sidecar:2"))
        self.assertEqual(plan.to_dict()["images"], {"agent": "agent:1", "agent_dockerfile": None, "sidecar": "sidecar:2"})

    def test_dockerfile_in_images(self) -> None:
        dockerfile = self.mh.raw(".bot-bottle/bottles/Dockerfile", "FROM scratch\n")
        self.mh.bottle("dev", "agent_provider:\n  dockerfile: Dockerfile\n")
        plan = self.plan("coder")
        self.assertEqual(plan.agent_dockerfile, dockerfile)
        self.assertEqual(plan.to_dict()["images"]["agent_dockerfile"], str(dockerfile))

    def test_cwd(self) -> None:
        plan = self.plan("coder", cwd=self.mh.cwd)
        self.assertEqual(plan.to_dict()["cwd"], str(self.mh.cwd))

    def test_plan_is_frozen(self) -> None:
        plan = self.plan("coder")
        with self.assertRaises(dataclasses.FrozenInstanceError):
            plan.backend = "smolmachines"  # type: ignore[misc]


class JsonContractTests(PlanTestCase):
    REQUIRED = (
        "schema_version", "agent", "agent_path", "agent_origin", "shadowed_agent", "bottle", "bottle_path",
        "bottle_chain", "backend", "runtime", "runtime_note", "provider", "images", "hosts", "routes",
        "egress_log", "env", "env_names", "secret_env_names", "credential_refs", "missing_host_vars",
        "git_gate", "supervise", "terminal", "skills", "system_prompt_chars", "label", "color", "cwd", "labels",
        "warnings",
    )

    def test_contract_keys_present(self) -> None:
        data = self.full(environ=SECRETS).to_dict()
        for key in self.REQUIRED:
            self.assertIn(key, data)
        self.assertEqual(set(data["git_gate"]), {"user", "user_sources", "repos"})
        self.assertEqual(set(data["images"]), {"agent", "agent_dockerfile", "sidecar"})
        self.assertEqual(set(data["routes"][0]), {"host", "ports", "matches", "auth", "dlp", "tls_passthrough", "source"})
        self.assertLessEqual({"name", "url", "auth", "credential_ref", "source"}, set(data["git_gate"]["repos"][0]))

    def test_json_values(self) -> None:
        data = self.full(environ=SECRETS, label="L").to_dict()
        self.assertEqual(data["schema_version"], 1)
        self.assertEqual(data["agent"], "a")
        self.assertEqual(data["bottle"], "dev")
        self.assertEqual(data["backend"], "docker")
        self.assertEqual(data["hosts"], sorted(set(data["hosts"])))
        self.assertEqual(data["env_names"], ["TZ", "DSN", "DB_PASSWORD"])
        self.assertEqual(data["secret_env_names"], ["DSN", "DB_PASSWORD"])
        self.assertEqual(data["provider"], {"template": "claude", "command": "claude"})
        self.assertEqual(data["images"]["agent"], TEST_IMAGES.agent)
        self.assertEqual(data["labels"]["bot-bottle.label"], "L")
        self.assertEqual([r["name"] for r in data["git_gate"]["repos"]], ["app", "lib"])
        for env in data["env"]:
            self.assertNotIn("value", env)

    def test_json_round_trips(self) -> None:
        data = self.full(environ=SECRETS).to_dict()
        self.assertEqual(json.loads(json.dumps(data)), data)

    def test_a_header_condition_that_may_be_a_credential_is_hidden_in_the_plan_not_the_policy(self) -> None:
        from contextlib import redirect_stdout
        from io import StringIO

        from bot_bottle.backend import sidecar_config
        from bot_bottle.cli import render

        token = "ghp_1a2B3c4D5e6F7g8H9i0JkLmNoPqRsTuVwXy9"
        self.mh.bottle("dev", "egress:\n  routes:\n    - host: api.example.com\n      matches:\n"
                              "        - headers: {Authorization: 'Bearer plain-words', X-Team: 'core',\n"
                              f"                    X-Debug: '{token}'}}\n")
        self.mh.agent("a", {"bottle": "dev"})
        plan = self.plan()
        (shown,) = [r["matches"][0]["headers"] for r in plan.to_dict()["routes"] if r["host"] == "api.example.com"]
        self.assertEqual(shown, {"authorization": plan_mod.HIDDEN_VALUE, "x-team": "core",
                                 "x-debug": plan_mod.HIDDEN_VALUE})
        out = StringIO()
        with redirect_stdout(out):
            render.plan(plan, title="plan")
        self.assertIn("x-team=core", out.getvalue())
        self.assertNotIn("plain-words", out.getvalue())
        self.assertNotIn(token, out.getvalue())
        # The sidecar still enforces the conditions as written.
        (policy_headers,) = [r["matches"][0]["headers"] for r in sidecar_config.policy(plan)["routes"]
                             if r["host"] == "api.example.com"]
        self.assertEqual(policy_headers["authorization"], "Bearer plain-words")
        self.assertEqual(policy_headers["x-debug"], token)

    def test_literal_env_values_are_not_in_the_plan(self) -> None:
        self.mh.bottle("dev", "env:\n  LITERAL_NAME: a-literal-value-987\n")
        self.mh.agent("a", {"bottle": "dev"})
        text = json.dumps(self.plan().to_dict())
        self.assertIn("LITERAL_NAME", text)
        self.assertNotIn("a-literal-value-987", text)


class DefaultImagesTests(ManifestTestCase):
    def test_default_images_are_computed_without_docker(self) -> None:
        self.mh.bottle("dev", "")
        self.mh.agent("a", {"bottle": "dev"})
        plan = resolve(self.load("a"))
        self.assertTrue(plan.agent_image)
        self.assertTrue(plan.sidecar_image)
        self.assertNotEqual(plan.agent_image, plan.sidecar_image)
        self.assertEqual(plan_mod.default_images("claude", None), ImageRefs(agent=plan.agent_image, sidecar=plan.sidecar_image))


if __name__ == "__main__":
    unittest.main()
