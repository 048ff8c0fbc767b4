"""A demanding user's bad manifests and command lines: each refused at its file, line and key,
never with a credential on screen, and fast.

Manifests are literal strings: line 1 is the opening ``---``, so the first YAML line is line 2.
"""

from __future__ import annotations

import base64
import json
import unittest
from pathlib import Path

from bot_bottle.manifest import Layout, ManifestError, NotFoundError, load
from bot_bottle.manifest import frontmatter as fm
from tests.fixtures import TEST_IMAGES, ManifestHome, ManifestTestCase

TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456781"
# A private key block as an editor pastes one (made up, not a key).
_KEY_BODY = base64.b64encode(bytes(range(256)) * 2).decode()
PRIVATE_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
               + "\n".join(_KEY_BODY[i:i + 70] for i in range(0, len(_KEY_BODY), 70))
               + "\n-----END OPENSSH PRIVATE KEY-----\n")
KNOWN_HOSTS = ("github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl")
ROUTE = "egress:\n  routes:\n    - host: api.example.com\n"  # the route's keys from line 5


class TokenInPlaceOfANameTests(ManifestTestCase):
    """A token written where a name belongs is refused without being shown: names are printed in
    every plan (env names, repos, the host variables a start needs) and in errors."""

    @property
    def bpath(self) -> Path:
        return self.mh.bottles_dir / "b.md"

    def assertHidden(self, err: ManifestError, *, line: int, key: str) -> None:
        self.assertManifestError(err, path=self.bpath, line=line, key=key, contains="not shown")
        self.assertNotIn(TOKEN, str(err) + (err.hint or ""))

    def assertHiddenKey(self, err: ManifestError, *, line: int, shown_key: str) -> None:
        """The key holds the token: the error names it by its place, never by the token."""
        self.assertEqual((err.path, err.line, err.shown_key, err.exit_code), (self.bpath, line, shown_key, 2))
        self.assertTrue(str(err).startswith(f"{self.bpath}:{line}: {shown_key}: this is a token itself"), str(err))
        self.assertNotIn(TOKEN, str(err) + (err.hint or ""))

    def test_a_token_as_an_env_variable_name(self) -> None:
        err = self.bottle_error(f"env:\n  {TOKEN}: x\n")
        self.assertHiddenKey(err, line=3, shown_key="env.(not shown)")

    def test_a_token_inside_a_host_variable_reference(self) -> None:
        err = self.bottle_error('env:\n  GH: "${' + TOKEN + '}"\n')
        self.assertHidden(err, line=3, key="env.GH")
        self.assertIn("GitHub token", str(err))

    def test_a_token_as_the_prompt_text(self) -> None:
        err = self.bottle_error(f'env:\n  GH: "?{TOKEN}"\n')
        self.assertHidden(err, line=3, key="env.GH")

    def test_a_token_as_the_parent_bottle(self) -> None:
        err = self.bottle_error(f"extends: {TOKEN}\n")
        self.assertHidden(err, line=2, key="extends")

    def test_a_token_as_the_agents_bottle(self) -> None:
        self.mh.bottle("b", ROUTE)
        self.mh.agent("a", f"bottle: {TOKEN}\n")
        err = self.load_error("a")
        self.assertManifestError(err, path=self.mh.agents_dir() / "a.md", line=2, key="bottle", contains="not shown")
        self.assertNotIn(TOKEN, str(err) + (err.hint or ""))

    def test_a_token_as_a_skill(self) -> None:
        self.mh.bottle("b", ROUTE)
        self.mh.agent("a", f"bottle: b\nskills: [my-skill, {TOKEN}]\n")
        err = self.load_error("a")
        self.assertManifestError(err, path=self.mh.agents_dir() / "a.md", line=3, key="skills[1]",
                                 contains="not shown")
        self.assertNotIn(TOKEN, str(err))

    def test_a_token_as_the_template_or_the_dockerfile(self) -> None:
        for key in ("template", "dockerfile"):
            with self.subTest(key=key):
                err = self.bottle_error(f"agent_provider:\n  {key}: {TOKEN}\n")
                self.assertHidden(err, line=3, key=f"agent_provider.{key}")

    def test_a_token_as_the_git_email_or_name(self) -> None:
        err = self.bottle_error(f"git-gate:\n  user:\n    email: {TOKEN}\n")
        self.assertManifestError(err, path=self.bpath, line=4, key="git-gate.user.email", contains="not shown")
        self.assertNotIn(TOKEN, str(err))
        err = self.bottle_error(f"git-gate:\n  user:\n    name: {TOKEN}\n")
        self.assertHidden(err, line=4, key="git-gate.user.name")

    def test_a_token_as_an_http_method_is_judged_as_written(self) -> None:
        err = self.bottle_error(ROUTE + f"      matches:\n        - methods: [GET, {TOKEN}]\n")
        self.assertManifestError(err, path=self.bpath, line=6, key="egress.routes[0].matches[0].methods[1]",
                                 contains="not shown")
        self.assertNotIn(TOKEN.upper(), str(err))

    def test_a_token_as_a_header_name(self) -> None:
        err = self.bottle_error(ROUTE + f"      matches:\n        - headers: {{{TOKEN}: x}}\n")
        self.assertHiddenKey(err, line=6, shown_key="egress.routes[0].matches[0].headers.(not shown)")
        err = self.bottle_error(ROUTE + f"      auth: {{scheme: header, header: {TOKEN}, token_ref: API_KEY}}\n")
        self.assertHidden(err, line=5, key="egress.routes[0].auth.header")

    def test_a_token_as_a_repo_name(self) -> None:
        err = self.bottle_error(f"git-gate:\n  repos:\n    {TOKEN}: https://github.com/you/app.git\n")
        self.assertHiddenKey(err, line=4, shown_key="git-gate.repos.(not shown)")

    def test_the_private_key_pasted_as_ssh_key(self) -> None:
        indented = "".join(f"        {line}\n" for line in PRIVATE_KEY.splitlines())
        err = self.bottle_error("git-gate:\n  repos:\n    app:\n      url: git@github.com:you/app.git\n"
                                f"      ssh_key: |\n{indented}      known_hosts: '{KNOWN_HOSTS}'\n")
        # At the private key's BEGIN line, below its key.
        self.assertManifestError(err, path=self.bpath, line=7, key="git-gate.repos.app.ssh_key",
                                 contains=("Private key", "not shown"))
        self.assertNotIn(_KEY_BODY[:40], str(err) + (err.hint or ""))

    def test_the_plan_never_shows_a_token_written_as_a_host_variable(self) -> None:
        self.mh.bottle("b", 'env:\n  GH: "${' + TOKEN + '}"\n')
        self.mh.agent("a", {"bottle": "b"})
        for fmt in ("text", "json"):
            with self.subTest(fmt=fmt):
                result = self.mh.run_cli("start", "a", "--dry-run", "--format", fmt, images=TEST_IMAGES)
                self.assertEqual(result.code, 2, result.stderr)
                self.assertIn("b.md:3: env.GH:", result.stderr)
                self.assertNotIn(TOKEN, result.stdout + result.stderr)

    def test_a_token_given_as_the_agent_on_the_command_line(self) -> None:
        self.mh.bottle("b", ROUTE)
        self.mh.agent("a", {"bottle": "b"})
        result = self.mh.run_cli("start", TOKEN, "--dry-run")
        self.assertEqual(result.code, 2, result.stderr)
        self.assertIn("no agent named", result.stderr)
        self.assertNotIn(TOKEN, result.stdout + result.stderr)
        # A mistyped name is still echoed, with the closest agent.
        result = self.mh.run_cli("start", "aa", "--dry-run")
        self.assertIn("no agent named 'aa'", result.stderr)

    def test_the_plan_hides_a_token_in_a_path_prefix_and_shows_plain_paths(self) -> None:
        plain = "/api/v1/organizations/bot-bottle-example/projects/"
        self.mh.bottle("b", ROUTE + f"      matches:\n        - paths: [/hooks/{TOKEN}/, {plain}]\n")
        self.mh.agent("a", {"bottle": "b"})
        result = self.mh.run_cli("start", "a", "--dry-run", "--format", "json", images=TEST_IMAGES)
        self.assertEqual(result.code, 0, result.stderr)
        route = next(r for r in json.loads(result.stdout)["routes"] if r["host"] == "api.example.com")
        self.assertEqual(route["matches"], [{"paths": ["/hooks/(not shown)/", plain]}])
        text = self.mh.run_cli("start", "a", "--dry-run", images=TEST_IMAGES)
        self.assertNotIn(TOKEN, text.stdout + text.stderr)
        self.assertIn("/hooks/(not shown)/", text.stdout)
        # The policy still holds the real prefix: only what is shown changes.
        self.assertEqual(self.load("a").bottle.routes[0].matches[0].paths[0], f"/hooks/{TOKEN}/")


class LookAlikeNamesStillLoadTests(ManifestTestCase):
    """Names that merely speak of credentials are names: each loads and reaches the plan."""

    def test_credential_like_names_load(self) -> None:
        bottle = (
            "env:\n  GITHUB_TOKEN: \"${GITHUB_TOKEN}\"\n  AWS_SECRET_ACCESS_KEY: \"?AWS secret key (starts with "
            "wJalr)\"\n  API_KEY_HEADER: x-api-key\n"
            "egress:\n  routes:\n    - host: api.example.com\n      matches:\n        - methods: [get, Post]\n"
            "          headers: {X-Goog-Api-Key: abc}\n"
            "      auth: {scheme: header, header: X-Api-Key, token_ref: OPENAI_API_KEY}\n"
            "git-gate:\n  user: {email: agent@example.com}\n  repos:\n"
            "    ghp-mirror: https://github.com/you/app.git\n"
            "    app:\n      url: git@github.com:you/app.git\n      ssh_key: ~/.ssh/bot_bottle_deploy_key\n"
            f"      known_hosts: '{KNOWN_HOSTS}'\n"
        )
        loaded = self.load_bottle(bottle)
        self.assertEqual([e.name for e in loaded.env], ["GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "API_KEY_HEADER"])
        self.assertEqual(loaded.routes[0].matches[0].methods, ("GET", "POST"))
        self.assertEqual(loaded.routes[0].auth.header, "x-api-key")
        self.assertEqual([r.name for r in loaded.repos], ["ghp-mirror", "app"])

    def test_a_prompt_mentioning_a_token_prefix_is_a_prompt(self) -> None:
        env = self.load_bottle('env:\n  GH: "?GitHub token (ghp_...) for the org"\n').env
        self.assertEqual((env[0].kind, env[0].value), ("prompt", "GitHub token (ghp_...) for the org"))


class HostVariableNameTests(ManifestTestCase):
    def test_a_bad_name_inside_braces_is_named(self) -> None:
        for name in ("1BAD", "A-B", "A:-default"):
            with self.subTest(name=name):
                err = self.bottle_error('env:\n  A: "${' + name + '}"\n')
                self.assertManifestError(err, path=self.mh.bottles_dir / "b.md", line=3, key="env.A",
                                         contains=(f"{name!r}", "not an environment variable name", "whole value"))

    def test_mixed_text_keeps_its_own_message(self) -> None:
        err = self.bottle_error('env:\n  A: "x${B}"\n')
        self.assertIn("mixing it with other text", str(err))


class MisplacedKeyTests(ManifestTestCase):
    """A key of another level is sent where it belongs, not to the closest spelling of this one."""

    def assertSentTo(self, frontmatter: str, *, line: int, key: str, where: str) -> None:
        err = self.bottle_error(frontmatter)
        self.assertManifestError(err, path=self.mh.bottles_dir / "b.md", line=line, key=key,
                                 contains=f"belongs under '{where}'")
        self.assertNotIn("did you mean", str(err))

    def test_match_fields_written_in_the_route(self) -> None:
        for field in ("paths: [/v1/]", "methods: [GET]"):
            with self.subTest(field=field):
                self.assertSentTo(ROUTE + f"      {field}\n", line=5, key=f"egress.routes[0].{field.split(':')[0]}",
                                  where="egress.routes[N].matches[N]")

    def test_route_and_section_keys_written_a_level_off(self) -> None:
        self.assertSentTo("routes: [api.example.com]\n", line=2, key="routes", where="egress")
        self.assertSentTo("egress:\n  host: api.example.com\n", line=3, key="egress.host", where="egress.routes[N]")
        self.assertSentTo(ROUTE + "      token_ref: API_KEY\n", line=5, key="egress.routes[0].token_ref",
                          where="egress.routes[N].auth")
        self.assertSentTo("template: codex\n", line=2, key="template", where="agent_provider")
        self.assertSentTo("git-gate:\n  url: https://github.com/you/app.git\n", line=3, key="git-gate.url",
                          where="git-gate.repos.NAME")

    def test_skills_in_a_bottle_is_sent_to_the_agent(self) -> None:
        err = self.bottle_error("skills: [my-skill]\n")
        self.assertManifestError(err, path=self.mh.bottles_dir / "b.md", line=2, key="skills",
                                 contains="set in an agent file")

    def test_a_misspelling_still_gets_the_closest_key(self) -> None:
        err = self.bottle_error(ROUTE + "      port: [443]\n")
        self.assertIn("did you mean 'ports'?", str(err))
        self.mh.bottle("b", ROUTE)
        self.mh.agent("a", "bottle: b\ngit-gate:\n  repos: {}\n")
        err = self.load_error("a")  # an agent's git-gate takes 'user' only: not sent to where it is
        self.assertNotIn("belongs under", str(err))
        self.assertIn("expected one of: user", str(err))


class DeepNestingTests(unittest.TestCase):
    """Nesting no manifest needs is refused at the line where it goes too deep."""

    def test_deep_flow_brackets_are_refused_at_their_line(self) -> None:
        path = Path("/tmp/deep.md")
        for opener, closer in (("[", "]"), ("{a: ", "}")):
            with self.subTest(opener=opener), self.assertRaises(ManifestError) as caught:
                fm.parse("---\ndescription: x\nenv: " + opener * 5000 + closer * 5000 + "\n---\n", path)
            self.assertEqual(caught.exception.line, 3)
            self.assertIn("nested too deeply", str(caught.exception))
            self.assertEqual(caught.exception.exit_code, 2)

    def test_deep_block_nesting_is_refused_where_it_passes_the_limit(self) -> None:
        text = "---\nenv:\n" + "".join("  " * (i + 1) + "-\n" for i in range(200)) + "---\n"
        with self.assertRaises(ManifestError) as caught:
            fm.parse(text, Path("/tmp/deep.md"))
        self.assertEqual(caught.exception.line, 2 + fm.MAX_DEPTH)

    def test_the_deepest_real_key_still_parses(self) -> None:
        doc = fm.parse("---\negress:\n  routes:\n    - host: a.example.com\n      matches:\n"
                       "        - headers: {x-v: [[[[[1]]]]]}\n---\n", Path("/tmp/ok.md"))
        self.assertEqual(doc.data["egress"]["routes"][0]["matches"][0]["headers"]["x-v"], [[[[[1]]]]])


class MissingAgentHintTests(ManifestTestCase):
    def test_run_from_home_the_agents_folder_is_named_once(self) -> None:
        self.mh.bottle("b", ROUTE)
        self.mh.agent("a", {"bottle": "b"})
        # From HOME itself, the working folder's agents/ is the home one.
        with self.assertRaises(NotFoundError) as caught:
            load("zz", Layout(home=self.mh.home, cwd=self.mh.home))
        self.assertEqual(caught.exception.hint.count(str(self.mh.agents_dir())), 1, caught.exception.hint)
        self.assertIn("(available: a)", caught.exception.hint)

    def test_a_bottles_path_that_is_a_file_is_named(self) -> None:
        self.mh.raw(".bot-bottle/bottles", "not a folder\n")
        self.mh.agent("a", {"bottle": "b"})
        result = self.mh.run_cli("validate", "--format", "json")
        self.assertEqual(result.code, 2)
        errors = {(e["path"], e["message"]) for e in json.loads(result.stdout)["errors"]}
        self.assertIn((str(self.mh.bottles_dir), "is not a folder, so no manifest is read from it"), errors)
        self.assertIn((str(self.mh.agents_dir() / "a.md"), "no bottle named 'b'"), errors)
        err = self.load_error("a")
        self.assertIn("is not a folder", err.hint or "")


class NotAFolderTests(ManifestTestCase):
    """A file where a manifest folder belongs hides every manifest: validate must not pass it."""

    def test_validate_names_a_home_folder_that_is_a_file(self) -> None:
        for relative in (".bot-bottle", ".bot-bottle/agents"):
            with self.subTest(relative=relative):
                self.mh = ManifestHome.for_test(self)
                blocked = self.mh.raw(relative, "not a folder\n")
                result = self.mh.run_cli("validate")
                self.assertEqual(result.code, 2, result.stderr)
                self.assertIn(f"error: {blocked}: is not a folder", result.stderr)
                self.assertNotIn("no manifest files found", result.stderr)
                start = self.mh.run_cli("start", "coder", "--dry-run")
                self.assertEqual(start.code, 2)
                self.assertIn(f"{blocked} is not a folder", start.stderr)
                self.assertNotIn("bot-bottle init", start.stderr)

    def test_a_working_folder_without_manifests_still_passes(self) -> None:
        result = self.mh.run_cli("validate")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn("no manifest files found", result.stderr)


class FrontmatterSizeTests(ManifestTestCase):
    def test_a_frontmatter_of_thousands_of_routes_is_refused_at_once(self) -> None:
        routes = "".join(f"    - host: h{i}.example.com\n" for i in range(12000))
        err = self.bottle_error("egress:\n  routes:\n" + routes)
        self.assertManifestError(err, path=self.mh.bottles_dir / "b.md", line=2, key=None,
                                 contains="longer than 256 KiB")

    def test_long_literals_and_a_long_body_still_load(self) -> None:
        value = "x" * (120 * 1024)
        self.mh.bottle("b", f"env:\n  A: {value}\n  B: {value}\negress:\n  routes: [api.example.com]\n")
        self.mh.agent("a", "bottle: b\n", body="y" * (1024 * 1024))
        loaded = self.load("a")
        self.assertEqual([len(e.value) for e in loaded.bottle.env], [len(value)] * 2)
        self.assertEqual(len(loaded.agent.prompt), 1024 * 1024)


if __name__ == "__main__":
    unittest.main()
