"""User plugin providers from ~/.bot-bottle/contrib/<name>/: loading, errors, plan and images."""

from __future__ import annotations

import textwrap
import unittest
from pathlib import Path

from bot_bottle import images, lifecycle, providers
from bot_bottle.plan import agent_dockerfile, resolve
from bot_bottle.providers import ProviderInfo, plugins
from tests.fixtures import ManifestTestCase

GOOD = """\
from bot_bottle.providers import ProviderInfo

PROVIDER = ProviderInfo(
    template="echoer",
    command="echo-agent",
    api_host="api.echo.example",
    auth_scheme="bearer",
    auth_header=None,
    default_auth_token="ECHO_TOKEN",
    headless_flags=("--once",),
)
"""


class PluginCase(ManifestTestCase):
    def plugin(self, module: str | None = GOOD, dockerfile: str | None = None, name: str = "echoer") -> Path:
        folder = self.mh.home_dir / "contrib" / name
        folder.mkdir(parents=True, exist_ok=True)
        if module is not None:
            (folder / "provider.py").write_text(textwrap.dedent(module))
        if dockerfile is not None:
            (folder / "Dockerfile").write_text(dockerfile)
        return folder

    def use(self, name: str = "echoer", extra: str = "") -> None:
        self.mh.bottle("dev", f"agent_provider:\n  template: {name}\n{extra}")
        self.mh.agent("a", {"bottle": "dev"})

    def error(self, name: str = "echoer") -> str:
        with self.assertRaises(plugins.PluginError) as cm:
            plugins.load(name, self.mh.home_dir / "contrib")
        return str(cm.exception)


class Loading(PluginCase):
    def test_a_plugin_is_used_like_a_builtin(self) -> None:
        self.plugin()
        self.use()
        plan = resolve(self.load())
        self.assertEqual(plan.template, "echoer")
        self.assertEqual(plan.agent_command, "echo-agent")
        self.assertEqual(plan.plugin_dir, (self.mh.home_dir / "contrib" / "echoer").resolve())
        # Its API host gets the provider route with its credential, like claude's.
        route = plan.routes[0]
        self.assertEqual((route.host, route.auth), ("api.echo.example", {"scheme": "bearer", "token_ref": "ECHO_TOKEN"}))
        self.assertIn("ECHO_TOKEN", plan.credential_refs)
        # Later steps find it by name, as they find built-ins.
        self.assertEqual(lifecycle.headless_args(plan, "hi"), ["--once", "hi"])
        self.assertEqual(providers.info("echoer").command, "echo-agent")  # type: ignore[union-attr]

    def test_no_dockerfile_runs_in_the_base_templates_image(self) -> None:
        self.plugin()
        self.use()
        plan = resolve(self.load())
        self.assertIsNone(plan.agent_dockerfile)
        self.assertEqual(plan.agent_image, images.agent_image("claude").ref)

    def test_the_plugins_dockerfile_builds_on_the_base_image(self) -> None:
        folder = self.plugin(dockerfile="ARG BOT_BOTTLE_AGENT_IMAGE\nFROM ${BOT_BOTTLE_AGENT_IMAGE}\n")
        (folder / "echo-agent").write_text("#!/bin/sh\necho hi\n")
        self.use()
        plan = resolve(self.load())
        self.assertEqual(plan.agent_dockerfile, (folder / "Dockerfile").resolve())
        spec = images.agent_image("echoer", plan.agent_dockerfile, base_template="claude")
        self.assertEqual(plan.agent_image, spec.ref)
        self.assertTrue(spec.ref.startswith("bot-bottle/agent-echoer-custom:"))
        self.assertIn(("BOT_BOTTLE_AGENT_IMAGE", images.agent_image("claude").ref), spec.build_args)
        self.assertIn("echo-agent", dict(spec.context_files))
        self.assertEqual(spec.labels["bot-bottle.template"], "echoer")

    def test_the_manifests_dockerfile_wins_over_the_plugins(self) -> None:
        self.plugin(dockerfile="FROM scratch\n")
        own = self.mh.raw("images/Dockerfile", "ARG BOT_BOTTLE_AGENT_IMAGE\nFROM ${BOT_BOTTLE_AGENT_IMAGE}\n")
        self.use(extra=f"  dockerfile: {own}\n")
        plan = resolve(self.load())
        self.assertEqual(plan.agent_dockerfile, own)

    def test_dockerfile_precedence(self) -> None:
        plugin = ProviderInfo("p", "p", "", "bearer", None, "", dockerfile=Path("/plugin/Dockerfile"), plugin_dir=Path("/plugin"))
        self.assertEqual(agent_dockerfile(Path("/mine/Dockerfile"), plugin), (Path("/mine/Dockerfile"), "agent_provider.dockerfile"))
        self.assertEqual(agent_dockerfile(None, plugin), (Path("/plugin/Dockerfile"), "plugin p"))
        self.assertEqual(agent_dockerfile(None, providers.BUILTIN["claude"]), (None, "provider default"))
        self.assertEqual(agent_dockerfile(None, None), (None, "provider default"))

    def test_an_agent_without_an_api_gets_no_route_and_no_placeholder(self) -> None:
        self.plugin(GOOD.replace('"api.echo.example"', '""').replace('"ECHO_TOKEN"', '""'))
        self.use()
        manifest = self.load()
        plan = resolve(manifest)
        self.assertEqual(plan.routes, ())
        self.assertEqual(lifecycle.provider_placeholders(plan, manifest), {})


class Errors(PluginCase):
    def test_no_module(self) -> None:
        self.plugin(module=None)
        message = self.error()
        self.assertIn("provider.py does not exist", message)
        self.assertIn(str(self.mh.home_dir / "contrib" / "echoer"), message)

    def test_syntax_error_names_file_and_line(self) -> None:
        self.plugin("x = 1\nPROVIDER = (\n")
        self.assertRegex(self.error(), r"contrib/echoer/provider\.py:\d+: syntax error")

    def test_an_exception_names_file_and_line(self) -> None:
        self.plugin("import os\n\nraise RuntimeError('no config here')\n")
        self.assertRegex(self.error(), r"contrib/echoer/provider\.py:3: RuntimeError: no config here")
        self.plugin("import not_a_module_anywhere\n")
        self.assertRegex(self.error(), r"provider\.py:1: ModuleNotFoundError")

    def test_missing_or_wrong_provider(self) -> None:
        self.plugin("X = 1\n")
        self.assertIn("provider.py: defines no PROVIDER", self.error())
        self.plugin("PROVIDER = {'template': 'echoer'}\n")
        self.assertIn("PROVIDER is a dict, not a bot_bottle.providers.ProviderInfo", self.error())

    def test_field_problems_are_listed(self) -> None:
        cases = {
            GOOD.replace('template="echoer"', 'template="other"'): "folder is named 'echoer'",
            GOOD.replace('command="echo-agent"', 'command="echo-agent --fast"'): "command must be one program",
            GOOD.replace('auth_scheme="bearer"', 'auth_scheme="magic"'): "auth_scheme must be one of",
            GOOD.replace('auth_scheme="bearer"', 'auth_scheme="header"'): "needs auth_header",
            GOOD.replace('"ECHO_TOKEN"', '"not a var"'): "default_auth_token must name",
            GOOD.replace('"api.echo.example"', '"API.Echo"'): "not a lower-case host name",
            GOOD.replace('headless_flags=("--once",),', 'headless_flags=("--once",), base_template="vim",'): "base_template 'vim'",
            GOOD.replace('headless_flags=("--once",),', 'headless_flags="--once",'): "headless_flags must be a tuple",
        }
        for module, expected in cases.items():
            with self.subTest(expected=expected):
                self.plugin(module)
                message = self.error()
                self.assertIn("provider.py: PROVIDER: ", message)
                self.assertIn(expected, message)

    def test_exit_in_the_module_is_an_error_not_the_processs_status(self) -> None:
        self.plugin("import sys\nsys.exit(3)\n")
        self.assertIn("called exit(3)", self.error())

    def test_validate_loads_the_plugins_agents_use(self) -> None:
        self.plugin("x = 1\nPROVIDER = (\n")
        self.use()
        result = self.mh.run_cli("validate")
        self.assertEqual(result.code, 2, result.stdout + result.stderr)
        self.assertIn("template 'echoer'", result.stderr)
        self.assertIn("syntax error", result.stderr)
        self.plugin(GOOD)
        self.assertEqual(self.mh.run_cli("validate").code, 0)

    def test_a_broken_plugin_is_named_at_the_bottle_line_that_names_it(self) -> None:
        self.plugin("raise RuntimeError('boom')\n")
        self.use()  # bottles/dev.md: line 2 "agent_provider:", line 3 "  template: echoer"
        bottle = self.mh.bottles_dir / "dev.md"
        for argv in (("validate",), ("start", "a", "--dry-run")):
            with self.subTest(argv=argv):
                result = self.mh.run_cli(*argv)
                self.assertEqual(result.code, 2, result.stdout + result.stderr)
                self.assertIn(f"error: {bottle}:3: agent_provider.template: template 'echoer'", result.stderr)
                self.assertIn("provider.py:1: RuntimeError: boom", result.stderr)
                # Reported once, at the bottle: not again at the agent that uses it.
                self.assertNotIn(str(self.mh.agents_dir() / "a.md"), result.stderr)

    def test_a_broken_plugin_named_by_a_parent_bottle_is_named_there(self) -> None:
        self.plugin("PROVIDER = None\n")
        self.mh.bottle("base", "egress:\n  log: 1\nagent_provider:\n  template: echoer\n")
        self.mh.bottle("dev", "extends: base\n")
        self.mh.agent("a", {"bottle": "dev"})
        err = self.load_error("a")
        self.assertManifestError(err, path=self.mh.bottles_dir / "base.md", line=5, key="agent_provider.template",
                                 contains="defines no PROVIDER")

    def test_provider_of_the_wrong_type_reads_well(self) -> None:
        self.plugin("PROVIDER = 42\n")
        self.assertIn("PROVIDER is an int, not a bot_bottle.providers.ProviderInfo", self.error())

    def test_the_auth_token_hint_suggests_the_providers_own_variable(self) -> None:
        cases = {"": "ANTHROPIC_API_KEY", "  template: codex\n": "OPENAI_API_KEY"}
        for template, expected in cases.items():
            with self.subTest(template=template or "claude"):
                self.mh.bottle("dev", f"agent_provider:\n{template}  auth_token: sk-not-a-name\n")
                self.mh.agent("a", {"bottle": "dev"})
                err = self.load_error("a")
                self.assertEqual(err.key, "agent_provider.auth_token")
                self.assertIn(f"export {expected}=", err.hint)
                self.assertNotIn("GITHUB_TOKEN", err.hint)

    def test_a_broken_plugin_stops_the_plan_with_its_message(self) -> None:
        self.plugin("PROVIDER = None\n")
        self.use()
        with self.assertRaisesRegex(plugins.PluginError, "defines no PROVIDER"):
            resolve(self.load())


if __name__ == "__main__":
    unittest.main()
