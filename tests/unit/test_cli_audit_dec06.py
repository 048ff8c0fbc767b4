"""A first-time user's mistakes with manifests and the CLI, each reported clearly.

Manifests are literal strings: line 1 is the opening ``---``, so the first YAML line is line 2.
"""

from __future__ import annotations

import unittest
from pathlib import Path
from typing import Any

from tests.fixtures import ManifestTestCase, frontmatter_text

MATCHES = "egress:\n  routes:\n    - host: api.example.com\n      matches:\n"  # matches on line 5


class EmptyMatchConditionTests(ManifestTestCase):
    """An empty field of a match entry places no condition: it must not open what it seems to close."""

    @property
    def bpath(self) -> Path:
        return self.mh.bottles_dir / "b.md"

    def test_empty_methods_list_is_refused(self) -> None:
        err = self.bottle_error(MATCHES + "        - methods: []\n")
        self.assertManifestError(err, path=self.bpath, line=6, key="egress.routes[0].matches[0].methods",
                                 contains=("empty 'methods'", "every method"))

    def test_empty_paths_list_beside_another_field_is_refused(self) -> None:
        err = self.bottle_error(MATCHES + "        - methods: [GET]\n          paths: []\n")
        self.assertManifestError(err, path=self.bpath, line=7, key="egress.routes[0].matches[0].paths",
                                 contains="every path")

    def test_empty_headers_mapping_is_refused(self) -> None:
        err = self.bottle_error(MATCHES + "        - paths: [/v1/]\n          headers: {}\n")
        self.assertManifestError(err, path=self.bpath, line=7, key="egress.routes[0].matches[0].headers",
                                 contains="empty 'headers'")

    def test_an_entry_of_empty_fields_never_reaches_the_plan_as_match_everything(self) -> None:
        self.mh.bottle("b", MATCHES + "        - methods: []\n        - paths: [/api/]\n")
        self.mh.agent("a", {"bottle": "b"})
        result = self.mh.run_cli("start", "a", "--dry-run", "--format", "json")
        self.assertEqual(result.code, 2, result.stderr)
        self.assertEqual(result.stdout, "")
        self.assertIn("b.md:6: egress.routes[0].matches[0].methods", result.stderr)

    def test_non_empty_fields_still_load(self) -> None:
        route = self.load_bottle(MATCHES + "        - methods: [GET]\n          paths: [/v1/]\n").routes[0]
        self.assertEqual(route.matches[0].methods, ("GET",))
        self.assertEqual(route.matches[0].paths, ("/v1/",))

    def test_a_host_variable_as_a_header_value_is_refused(self) -> None:
        err = self.bottle_error(MATCHES + '        - headers: {x-team: "${TEAM}"}\n')
        self.assertManifestError(err, path=self.bpath, line=6, key="egress.routes[0].matches[0].headers.x-team",
                                 contains="matched as written")

    def test_a_header_value_starting_with_a_question_mark_is_a_value(self) -> None:
        route = self.load_bottle(MATCHES + '        - headers: {sec-fetch-user: "?1"}\n').routes[0]
        self.assertEqual(route.matches[0].headers, (("sec-fetch-user", "?1"),))

    def test_an_empty_matches_list_is_called_empty(self) -> None:
        err = self.bottle_error(MATCHES.replace("matches:\n", "matches: []\n"))
        self.assertManifestError(err, path=self.bpath, line=5, key="egress.routes[0].matches",
                                 contains="got an empty list")


class ExtendsScalarTests(ManifestTestCase):
    def test_an_empty_single_parent_is_named_as_the_key(self) -> None:
        err = self.bottle_error('extends: ""\n')
        self.assertManifestError(err, path=self.mh.bottles_dir / "b.md", line=2, key="extends",
                                 contains="non-empty string")

    def test_an_empty_single_method_is_named_as_the_key(self) -> None:
        err = self.bottle_error(MATCHES + '        - methods: ""\n')
        self.assertManifestError(err, path=self.mh.bottles_dir / "b.md", line=6,
                                 key="egress.routes[0].matches[0].methods", contains="non-empty string")


class ValueDescriptionTests(ManifestTestCase):
    def test_binary_and_dates_are_described_in_words(self) -> None:
        binary = str(self.bottle_error("env:\n  A: !!binary aGVsbG8=\n"))
        self.assertIn("binary data", binary)
        self.assertNotIn("got bytes", binary)
        date = str(self.bottle_error("description: !!timestamp 2001-12-14\n"))
        self.assertIn("a date (2001-12-14)", date)
        self.assertIn("quote it", date)


class TokenRefSpellingTests(ManifestTestCase):
    """A token_ref (or auth_token) is a variable's bare name; env's spellings get a clear word."""

    AUTH = "egress:\n  routes:\n    - host: api.example.com\n      auth: {scheme: bearer, token_ref: %s}\n"

    def test_dollar_brace_name_says_to_write_the_name(self) -> None:
        for written in ('"${GH_TOKEN}"', '"$GH_TOKEN"'):
            with self.subTest(written=written):
                err = self.bottle_error(self.AUTH % written)
                self.assertEqual(err.key, "egress.routes[0].auth.token_ref")
                self.assertIn("without '$'", str(err))
                self.assertIn("write 'GH_TOKEN'", str(err))

    def test_provider_auth_token_in_shell_spelling(self) -> None:
        err = self.bottle_error('agent_provider:\n  auth_token: "${ANTHROPIC_API_KEY}"\n')
        self.assertEqual(err.key, "agent_provider.auth_token")
        self.assertIn("write 'ANTHROPIC_API_KEY'", str(err))

    def test_prompt_spelling_explains_what_belongs_here(self) -> None:
        err = self.bottle_error(self.AUTH % '"?GitHub token"')
        self.assertIn("'?prompt' asks for an env value", str(err))
        self.assertNotIn("GitHub token", str(err))

    def test_a_token_after_a_dollar_is_never_echoed(self) -> None:
        token = "ghp_" + "a1B2c3D4e5" * 4
        err = self.bottle_error(self.AUTH % f'"${{{token[:40]}}}"')
        self.assertNotIn(token[:40], str(err))


class ShellSpellingInEnvTests(ManifestTestCase):
    def test_dollar_name_literal_is_warned_of(self) -> None:
        self.mh.bottle("b", "env:\n  GITHUB_TOKEN: $GITHUB_TOKEN\n  PRICE: $5\n  MIXED: a $B\n")
        self.mh.agent("a", {"bottle": "b"})
        warnings = [w for w in self.load("a").warnings if "literal text" in w]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn("b.md:3: env.GITHUB_TOKEN", warnings[0])
        self.assertIn('write "${GITHUB_TOKEN}"', warnings[0])

    def test_validate_shows_the_warning_and_still_passes(self) -> None:
        self.mh.bottle("b", "env:\n  HOME_DIR: $HOME\n")
        self.mh.agent("a", {"bottle": "b"})
        result = self.mh.run_cli("validate")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn('env.HOME_DIR is the literal text', result.stderr)

    def test_a_token_spelt_after_a_dollar_is_not_echoed(self) -> None:
        token = "ghp_" + "a1B2c3D4e5" * 4
        self.mh.bottle("b", f"env:\n  T: ${token[:40]}\n")
        self.mh.agent("a", {"bottle": "b"})
        self.assertFalse(any(token[:40] in w for w in self.load("a").warnings))


class UnreadFileTests(ManifestTestCase):
    """Only NAME.md is read: a manifest saved under another name is named, not silently missing."""

    def test_agent_with_another_extension_is_named_in_the_hint(self) -> None:
        self.mh.bottle("dev", {"egress": {"routes": ["example.com"]}})
        for file_name in ("coder.yaml", "coder.MD", "coder"):
            with self.subTest(file_name=file_name):
                path = self.mh.raw(f".bot-bottle/agents/{file_name}", frontmatter_text({"bottle": "dev"}))
                result = self.mh.run_cli("start", "coder", "--dry-run")
                path.unlink()
                self.assertEqual(result.code, 2)
                self.assertIn("no agent named 'coder'", result.stderr)
                self.assertIn(f"{path} is not read", result.stderr)
                self.assertIn("coder.md", result.stderr)
                self.assertNotIn("none yet", result.stderr)

    def test_cwd_agent_with_another_extension_is_named(self) -> None:
        self.mh.bottle("dev", {})
        path = self.mh.raw(".bot-bottle/agents/helper.markdown", frontmatter_text({"bottle": "dev"}), where="cwd")
        result = self.mh.run_cli("info", "helper")
        self.assertEqual(result.code, 2)
        self.assertIn(f"{path} is not read", result.stderr)

    def test_bottle_with_another_extension_is_named_where_an_agent_names_it(self) -> None:
        self.mh.raw(".bot-bottle/bottles/dev.yml", frontmatter_text({}))
        self.mh.agent("a", {"bottle": "dev"})
        result = self.mh.run_cli("start", "a", "--dry-run")
        self.assertEqual(result.code, 2)
        self.assertIn("a.md:2: bottle: no bottle named 'dev'", result.stderr)
        self.assertIn("dev.yml is not read", result.stderr)

    def test_validate_warns_of_unread_files_and_slipped_folder_names(self) -> None:
        self.mh.bottle("dev", {})
        self.mh.agent("a", {"bottle": "dev"})
        self.mh.raw(".bot-bottle/agents/coder.yaml", "x")
        self.mh.raw(".bot-bottle/bottles/work", "x")
        self.mh.raw(".bot-bottle/agent/z.md", "x", where="cwd")
        result = self.mh.run_cli("validate")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn("agents/coder.yaml: not read, as a manifest file is named NAME.md (it ends in '.yaml')",
                      result.stderr)
        self.assertIn("bottles/work: not read, as a manifest file is named NAME.md (it has no extension)",
                      result.stderr)
        self.assertIn(f"{self.mh.cwd / '.bot-bottle' / 'agent'}: this folder is not read; agent files go in",
                      result.stderr)

    def test_drafts_backups_and_other_files_are_not_warned_of(self) -> None:
        self.mh.bottle("dev", {})
        self.mh.agent("a", {"bottle": "dev"})
        for name in (".a.md.draft", "a.md~", "notes.json", "a.md.orig"):
            self.mh.raw(f".bot-bottle/agents/{name}", "x")
        result = self.mh.run_cli("validate")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertNotIn("not read", result.stderr)


class AuthHeaderTests(ManifestTestCase):
    """A header the proxy will not inject into is refused at its line, not when the sidecar starts."""

    ROUTE = "egress:\n  routes:\n    - host: api.example.com\n      auth: {scheme: header, token_ref: K, header: %s}\n"

    def test_framing_headers_are_refused_at_the_manifest_line(self) -> None:
        for header in ("Host", "content-length", "Transfer-Encoding", "connection"):
            with self.subTest(header=header):
                err = self.bottle_error(self.ROUTE % header)
                self.assertManifestError(err, path=self.mh.bottles_dir / "b.md", line=5,
                                         key="egress.routes[0].auth.header", contains="cannot carry a credential")

    def test_the_refused_headers_are_the_ones_the_sidecar_refuses(self) -> None:
        from bot_bottle.manifest.schema import FRAMING_HEADERS
        from bot_bottle.sidecar.egress.policy import Policy, PolicyError

        for header in FRAMING_HEADERS:
            route = {"host": "a.com", "auth": {"scheme": "header", "token_ref": "K", "header": header}}
            with self.subTest(header=header), self.assertRaises(PolicyError):
                Policy.from_dict({"version": 2, "routes": [route]})

    def test_an_ordinary_header_still_loads(self) -> None:
        route = self.load_bottle(self.ROUTE % "X-Api-Key").routes[0]
        self.assertEqual(route.auth.header, "x-api-key")


class DockerfileFolderTests(ManifestTestCase):
    def test_a_folder_named_as_the_dockerfile_is_called_a_folder(self) -> None:
        folder = self.mh.home / "images"
        folder.mkdir()
        err = self.bottle_error(f"agent_provider:\n  dockerfile: {folder}\n")
        self.assertManifestError(err, path=self.mh.bottles_dir / "b.md", line=3, key="agent_provider.dockerfile",
                                 contains="is a folder")


class OpeningLineTests(ManifestTestCase):
    """Where the frontmatter's opening '---' is when an editor put something before it."""

    P = Path("/m/b.md")

    def parse_error(self, text: str) -> Any:
        from bot_bottle.manifest import ManifestError, frontmatter

        with self.assertRaises(ManifestError) as cm:
            frontmatter.parse(text, self.P)
        return cm.exception

    def test_blank_lines_before_the_opening_are_named_at_its_line(self) -> None:
        err = self.parse_error("\n\n---\nenv: {}\n---\n")
        self.assertManifestError(err, path=self.P, line=3, key=None, contains=("very first line", "2 blank lines"))
        self.assertIn("blank lines", err.hint)

    def test_an_indented_opening_is_named(self) -> None:
        err = self.parse_error("  ---\nenv: {}\n---\n")
        self.assertManifestError(err, path=self.P, line=1, key=None, contains="it is indented")

    def test_an_empty_file_says_it_is_empty(self) -> None:
        for text in ("", "\n  \n"):
            with self.subTest(text=text):
                err = self.parse_error(text)
                self.assertManifestError(err, path=self.P, line=1, key=None, contains=("the file is empty", "'---'"))

    def test_text_before_the_opening_keeps_the_plain_rule(self) -> None:
        err = self.parse_error("# Title\n---\nenv: {}\n---\n")
        self.assertManifestError(err, path=self.P, line=1, key=None, contains="must start with a '---' line")


class InitHomeTests(ManifestTestCase):
    def test_init_refuses_a_home_that_does_not_exist(self) -> None:
        missing = self.mh.home / "typo" / "home"
        result = self.mh.run_cli("init", env={"HOME": str(missing)})
        self.assertEqual(result.code, 1)
        self.assertIn(f"HOME is {missing}, which is not a folder; nothing written", result.stderr)
        self.assertFalse((self.mh.home / "typo").exists())

    def test_init_still_writes_into_an_existing_home(self) -> None:
        result = self.mh.run_cli("init")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertTrue((self.mh.bottles_dir / "dev.md").is_file())


class AgentPathOnTheCommandLineTests(ManifestTestCase):
    def test_the_path_of_an_agent_file_points_at_its_name(self) -> None:
        self.mh.bottle("dev", {})
        path = self.mh.agent("coder", {"bottle": "dev"})
        for written in (str(path), "agents/coder", "coder.md"):
            with self.subTest(written=written):
                result = self.mh.run_cli("start", written, "--dry-run")
                self.assertEqual(result.code, 2)
                self.assertIn(f"no agent named '{written}'; give the name, not the file: 'coder'", result.stderr)

    def test_a_path_of_no_known_agent_gets_no_such_word(self) -> None:
        self.mh.bottle("dev", {})
        self.mh.agent("coder", {"bottle": "dev"})
        result = self.mh.run_cli("info", "x/other.md")
        self.assertEqual(result.code, 2)
        self.assertNotIn("give the name", result.stderr)


class EmptyCredentialTests(ManifestTestCase):
    """A route credential set to nothing is refused by the launch: the plan says so beforehand."""

    def setUp(self) -> None:
        super().setUp()
        self.mh.bottle("dev", {"egress": {"routes": [{"host": "api.example.com",
                                                      "auth": {"scheme": "bearer", "token_ref": "EX_TOKEN"}}]}})
        self.mh.agent("a", {"bottle": "dev"})

    def plan_warnings(self, env: dict[str, str]) -> list[str]:
        import json

        result = self.mh.run_cli("start", "a", "--dry-run", "--format", "json", env=env)
        self.assertEqual(result.code, 0, result.stderr)
        return json.loads(result.stdout)["warnings"]

    def test_an_empty_credential_is_a_reason_start_would_refuse(self) -> None:
        import json

        env = {"EX_TOKEN": "", "ANTHROPIC_API_KEY": "k"}
        warnings = self.plan_warnings(env)
        self.assertIn("host variables unset or empty (start refuses them): EX_TOKEN",
                      warnings)
        result = self.mh.run_cli("start", "a", "--dry-run", "--format", "json", env=env)
        self.assertEqual(json.loads(result.stdout)["missing_host_vars"], ["EX_TOKEN"])

    def test_a_set_credential_gets_no_such_warning(self) -> None:
        warnings = self.plan_warnings({"EX_TOKEN": "t", "ANTHROPIC_API_KEY": "k"})
        self.assertFalse([w for w in warnings if "empty" in w], warnings)


class EditNotFoundTests(ManifestTestCase):
    def test_a_mistyped_name_gets_a_suggestion(self) -> None:
        self.mh.bottle("dev", {})
        self.mh.agent("coder", {"bottle": "dev"})
        result = self.mh.run_cli("edit", "codr", env={"EDITOR": "true"})
        self.assertEqual(result.code, 2)
        self.assertIn("no agent or bottle named 'codr'; did you mean 'coder'?", result.stderr)


class ABrokenWorkingFolderAgentNamesTheHomeOneItHides(ManifestTestCase):
    def test_the_hint_names_the_home_agent(self) -> None:
        self.mh.bottle("b", "env:\n  TZ: UTC\n")
        home = self.mh.agent("a", {"bottle": "b"})
        self.mh.agent("a", "bottle: b\ncolour: red\n", where="cwd")
        err = self.load_error("a")
        self.assertIn("colour", str(err))
        self.assertIn(str(home), err.hint or "")
        result = self.mh.run_cli("start", "a", "--dry-run")
        self.assertEqual(result.code, 2)
        self.assertIn(str(home), result.stderr)


if __name__ == "__main__":
    unittest.main()
