"""Gaps left by the last audit of manifests: an ``extends`` cycle reported once with every hop's
file:line, two routes of one host with different ``auth`` named by both indexes, a token written
as a ``description``, a folder validate could not read, and the YAML parser's speed (libyaml
first, the pure-Python parser for its exact error wording).

Manifests are literal strings: line 1 is the opening ``---``, so the first YAML line is line 2.
"""

from __future__ import annotations

import errno
import json
import pathlib
import unittest
from pathlib import Path
from typing import Any
from unittest import mock

import yaml

from bot_bottle.manifest import ManifestError, frontmatter, validate
from tests.fixtures import SIMPLE_BOTTLE, ManifestTestCase

TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456781"



def assert_no_command_shows(case: unittest.TestCase, mh: Any, token: str) -> None:
    """No command that reads agent ``a``'s manifests prints ``token``; validate and info refuse them."""
    for argv in (("validate",), ("validate", "--format", "json"), ("info", "a"), ("info", "a", "--format", "json"),
                 ("list",), ("list", "--format", "json")):
        with case.subTest(argv=argv):
            result = mh.run_cli(*argv)
            case.assertNotIn(token, result.stdout + result.stderr)
            case.assertNotIn("Traceback", result.stderr)
    case.assertEqual(mh.run_cli("validate").code, 2)
    case.assertEqual(mh.run_cli("info", "a").code, 2)

class ExtendsCycleOnceTests(ManifestTestCase):
    """A cycle is one mistake: one error naming every bottle on it, each at its 'extends' line."""

    def path(self, name: str) -> Path:
        return self.mh.bottles_dir / f"{name}.md"

    def three_on_a_cycle(self) -> None:
        self.mh.bottle("a", "extends: b\n")
        self.mh.bottle("b", "extends: c\n")
        self.mh.bottle("c", "env: {}\nextends: a\n")

    def test_validate_reports_a_three_bottle_cycle_once(self) -> None:
        self.three_on_a_cycle()
        report = validate(self.mh.layout)
        cycles = [e for e in report.errors if "cycle" in str(e)]
        self.assertEqual(len(cycles), 1, [str(e) for e in report.errors])
        self.assertEqual(len(report.errors), 1, [str(e) for e in report.errors])

    def test_the_one_error_names_each_hop_with_its_file_and_line(self) -> None:
        self.three_on_a_cycle()
        (error,) = validate(self.mh.layout).errors
        text = str(error)
        for where in (f"{self.path('a')}:2", f"{self.path('b')}:2", f"{self.path('c')}:3"):
            self.assertIn(where, text)
        self.assertEqual(error.key, "extends")
        self.assertEqual(error.exit_code, 2)
        self.assertNotIn("\n", text)

    def test_loading_an_agent_on_the_cycle_names_every_hop_too(self) -> None:
        self.three_on_a_cycle()
        self.mh.agent("x", {"bottle": "b"})
        err = self.load_error("x")
        for where in (f"{self.path('a')}:2", f"{self.path('b')}:2", f"{self.path('c')}:3"):
            self.assertIn(where, str(err))

    def test_the_cli_prints_one_error_and_exits_2(self) -> None:
        self.three_on_a_cycle()
        result = self.mh.run_cli("validate", "--format", "json")
        self.assertEqual(result.code, 2, result.stderr)
        errors = json.loads(result.stdout)["errors"]
        self.assertEqual(len(errors), 1, errors)
        self.assertIn("cycle", errors[0]["message"])
        result = self.mh.run_cli("validate")
        self.assertEqual(result.code, 2)
        self.assertEqual(sum("cycle" in line for line in result.stderr_lines), 1, result.stderr)

    def test_a_bottle_leading_into_a_cycle_adds_no_second_report(self) -> None:
        self.three_on_a_cycle()
        self.mh.bottle("top", "extends: a\n")
        self.mh.bottle("aa", "extends: top\n")  # sorted first: reaches the cycle from outside it
        report = validate(self.mh.layout)
        self.assertEqual(len(report.errors), 1, [str(e) for e in report.errors])
        self.assertNotIn(str(self.path("top")), str(report.errors[0]))

    def test_two_separate_cycles_are_two_errors(self) -> None:
        self.three_on_a_cycle()
        self.mh.bottle("x", "extends: y\n")
        self.mh.bottle("y", "extends: x\n")
        report = validate(self.mh.layout)
        self.assertEqual(len(report.errors), 2, [str(e) for e in report.errors])

    def test_a_diamond_and_a_shared_parent_are_no_cycle(self) -> None:
        self.mh.bottle("root", SIMPLE_BOTTLE)
        self.mh.bottle("l", "extends: root\n")
        self.mh.bottle("r", "extends: root\n")
        self.mh.bottle("c", "extends: [l, r, root]\n")
        self.mh.bottle("d", "extends: [c, l]\n")
        self.assertEqual(validate(self.mh.layout).errors, ())


AUTH_ONE = "      auth: {scheme: bearer, token_ref: ONE}\n"
AUTH_TWO = "      auth: {scheme: bearer, token_ref: TWO}\n"


class RouteAuthIndexTests(ManifestTestCase):
    """Two routes for one host with different auth: both named by index, file and line."""

    def test_in_one_file_both_indexes_are_named(self) -> None:
        path = self.mh.bottle("dev", "egress:\n  routes:\n    - other.example.com\n"
                                     "    - host: api.example.com\n" + AUTH_ONE +
                              "    - host: api.example.com\n" + AUTH_TWO)
        self.mh.agent("a", {"bottle": "dev"})
        err = self.load_error("a")
        self.assertManifestError(err, path=path, line=7, key="egress.routes[2].auth",
                                 contains=("egress.routes[1]", f"{path}:5", "egress.routes[2]", f"{path}:7",
                                           "different auth"))

    def test_across_extends_each_file_and_index_is_named(self) -> None:
        base = self.mh.bottle("base", "egress:\n  routes:\n    - host: api.example.com\n" + AUTH_ONE)
        dev = self.mh.bottle("dev", "extends: base\negress:\n  routes:\n    - x.example.com\n"
                                    "    - host: api.example.com\n" + AUTH_TWO)
        self.mh.agent("a", {"bottle": "dev"})
        err = self.load_error("a")
        self.assertManifestError(err, path=dev, line=6, key="egress.routes[1].auth",
                                 contains=(f"egress.routes[0] at {base}:4", f"egress.routes[1] at {dev}:6"))

    def test_validate_json_gives_the_indexed_key(self) -> None:
        self.mh.bottle("dev", "egress:\n  routes:\n    - host: api.example.com\n" + AUTH_ONE +
                       "    - host: api.example.com\n" + AUTH_TWO)
        result = self.mh.run_cli("validate", "--format", "json")
        self.assertEqual(result.code, 2, result.stderr)
        (error,) = json.loads(result.stdout)["errors"]
        self.assertEqual((error["line"], error["key"]), (6, "egress.routes[1].auth"))

    def test_the_same_auth_twice_for_one_host_is_fine(self) -> None:
        self.mh.bottle("dev", "egress:\n  routes:\n    - host: api.example.com\n" + AUTH_ONE +
                       "      ports: [443]\n    - host: api.example.com\n" + AUTH_ONE + "      ports: [8443]\n")
        self.mh.agent("a", {"bottle": "dev"})
        self.assertEqual(len(self.load("a").bottle.routes), 2)

    def test_different_auth_for_different_hosts_and_one_without_auth_are_fine(self) -> None:
        self.mh.bottle("dev", "egress:\n  routes:\n    - host: api.example.com\n" + AUTH_ONE +
                       "    - host: up.example.com\n" + AUTH_TWO + "    - api.example.com\n")
        self.mh.agent("a", {"bottle": "dev"})
        self.assertEqual(len(self.load("a").bottle.routes), 3)


class DescriptionTokenTests(ManifestTestCase):
    """A token written as a description is refused at its line and never shown."""

    def assertRefused(self, err: Any, path: Path, line: int) -> None:
        self.assertManifestError(err, path=path, line=line, key="description", contains="token")
        self.assertNotIn(TOKEN, str(err))
        self.assertNotIn(TOKEN, err.hint or "")

    def test_a_bottle_description_that_is_a_token(self) -> None:
        path = self.mh.bottle("dev", f"egress:\n  routes: [example.com]\ndescription: {TOKEN}\n")
        self.mh.agent("a", {"bottle": "dev"})
        self.assertRefused(self.load_error("a"), path, 4)

    def test_a_bottle_description_that_is_mostly_a_token(self) -> None:
        path = self.mh.bottle("dev", f"description: 'deploy key {TOKEN}'\n")
        self.mh.agent("a", {"bottle": "dev"})
        self.assertRefused(self.load_error("a"), path, 2)

    def test_an_agent_description_that_is_a_token(self) -> None:
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        path = self.mh.agent("a", f"bottle: dev\ndescription: {TOKEN}\n")
        self.assertRefused(self.load_error("a"), path, 3)

    def test_no_command_shows_it(self) -> None:
        self.mh.bottle("dev", f"egress:\n  routes: [example.com]\ndescription: {TOKEN}\n")
        self.mh.agent("a", f"bottle: dev\ndescription: {TOKEN}\n")
        assert_no_command_shows(self, self.mh, TOKEN)

    def test_ordinary_descriptions_are_kept(self) -> None:
        texts = (
            "A careful general-purpose coding agent that reviews every change twice before it commits "
            "anything, writes tests first, and explains each decision in plain words for the reviewer.",
            "Pinned to commit 3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39 of the upstream tree",
            "3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39",
            "Docs: https://example.com/docs/setup?ref=main#install and https://github.com/org/repo/pull/123",
            "Builds with GITHUB_TOKEN from the host; never writes it down",
            "",
        )
        for text in texts:
            with self.subTest(text=text):
                self.mh.bottle("dev", {"egress": {"routes": ["example.com"]}, "description": text})
                self.mh.agent("a", {"bottle": "dev", "description": text})
                manifest = self.load("a")
                self.assertEqual(manifest.bottle.description, text)
                self.assertEqual(manifest.agent.description, text)


def _denied_iterdir(target: Path) -> Any:
    real = pathlib.Path.iterdir

    def iterdir(self: pathlib.Path) -> Any:
        if self == target:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    return mock.patch.object(pathlib.Path, "iterdir", iterdir)


class UnreadableFolderTests(ManifestTestCase):
    """A folder validate could not list is said separately, never counted as a manifest file."""

    def setUp(self) -> None:
        super().setUp()
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        self.mh.agent("a", {"bottle": "dev"})
        self.blocked = self.mh.agents_dir("cwd")
        self.mh.agent("c", {"bottle": "dev"}, where="cwd")

    def test_text_names_the_folder_apart_and_exits_non_zero(self) -> None:
        with _denied_iterdir(self.blocked):
            result = self.mh.run_cli("validate")
        self.assertNotEqual(result.code, 0, result.stderr)
        self.assertEqual(result.code, 2)
        self.assertIn(str(self.blocked), result.stderr)
        self.assertIn("Permission denied", result.stderr)
        self.assertIn("could not be read", result.stderr)
        # The files it could read are still checked and counted, the folder apart from them.
        self.assertIn("2 manifest files valid", result.stdout + result.stderr)
        self.assertNotIn("of 3", result.stdout + result.stderr)

    def test_json_lists_it_and_is_not_ok(self) -> None:
        with _denied_iterdir(self.blocked):
            result = self.mh.run_cli("validate", "--format", "json")
        self.assertEqual(result.code, 2, result.stderr)
        report = json.loads(result.stdout)
        self.assertFalse(report["ok"])
        self.assertEqual([u["path"] for u in report["unreadable"]], [str(self.blocked)])
        self.assertNotIn(str(self.blocked), report["checked"])
        self.assertEqual(len(report["checked"]), 2)

    def test_errors_in_the_readable_files_are_still_reported(self) -> None:
        self.mh.bottle("dev", "bogus: 1\n")
        with _denied_iterdir(self.blocked):
            result = self.mh.run_cli("validate")
        self.assertEqual(result.code, 2)
        self.assertIn("bogus", result.stderr)
        self.assertIn("could not be read", result.stderr)

    def test_a_missing_folder_is_not_unreadable(self) -> None:
        for path in self.blocked.iterdir():
            path.unlink()
        self.blocked.rmdir()
        result = self.mh.run_cli("validate", "--format", "json")
        self.assertEqual(result.code, 0, result.stdout + result.stderr)
        self.assertEqual(json.loads(result.stdout)["unreadable"], [])


# Texts the libyaml path must read exactly as the pure-Python parser does: values, lines, the
# text of implicitly typed scalars, and every error's wording.
SAME_RESULT = (
    "a: 1\nb: 1.10\nc: yes\nd: 0x10\ne: 010\nf: 12:30\ng: ~\nh: 2024-01-02\n",
    "env:\n  A: '1'\n  B: \"x\\ty\"\n  C: ${HOME}\n  D: !!str 010\n  E: ! 010\n  F: !!int '7'\n",
    "egress:\n  routes:\n    - api.example.com\n    - host: x.example.com\n      ports: [443, 8443]\n"
    "      auth: {scheme: bearer, token_ref: T}\n",
    "text: |\n  one\n  two\nfolded: >-\n  a\n  b\nkeep: |+\n  x\n\n",
    "on: 1\nNO: 2\n'yes': 3\n? complex\n: 4\n",
    "a: &x [1, 2]\nb: *x\n",
    "list:\n  - &x 1\n  - *x\n",
    "base: &b {x: 1}\nchild:\n  <<: *b\n  y: 2\n",
    "a: 1\na: 2\n",
    "a: !!binary aGVsbG8=\nb: !!set {x, y}\n",
    "a: !!python/object:os.system x\n",
    "a: !custom x\n",
    "a: !!omap [x: 1]\n",
    "",
    "# only a comment\n",
    "just a string\n",
    "- 1\n- 2\n",
    "a: 1\n---\nb: 2\n",
    "%YAML 1.1\n---\na: 1\n",
    "%TAG !e! tag:example.com,2000:\n---\na: !e!x 1\n",
    "a: [" * 40 + "]" * 40 + "\n",
    "a: " + "[" * 3000 + "\n",
    "a:\n\t- b\n",
    "a: 'unclosed\nb: 2\n",
    "a: \"unclosed\nb: 2\n",
    "a: [1, 2\nb: 3\n",
    "a: b: c\n",
    "a:\n  - 1\n b: 2\n",
    "a: @x\n",
    "a: `x\n",
    "a: *nowhere\n",
    "a: &x 1\nb: &x 2\nc: *x\n",
    "a: 1\x00\n",
    "a: 1\x07\n",
    "key: \u00e9\u4e2d\U0001f600\n",
    "a: 'it''s'\nb: \"\\u00e9\\x41\"\n",
    "a: \"\\q\"\n",
    "a: -.inf\nb: .NaN\nc: +1_000\nd: 0b101\ne: 1e3\n",
    f"env:\n  {TOKEN}: 1\n",
    f"a: !{TOKEN} x\n",
    f"a: &{TOKEN} 1\nb: *{TOKEN}\n",
    "a: {b: 1, b: 2}\n",
    "? [1, 2]\n: x\n",
    "a: 1\n...\n",
    "a:\n  b:\n    c:\n      d: [1, {e: f}]\n",
    # Where libyaml alone would read the text (or read it otherwise): the same as without it.
    "color: cy\tan\n",
    "description: A \tcareful agent\n",
    "methods: [GE?T, HEAD]\n",
    "methods: [!GET, HEAD]\n",
    "egress: |# a comment\n  log: 1\n",
    "a: 1\n\ufeff  b: 2\n",
    "a: 1\n\ufeff# a comment\nb: 2\n",
    "# What? Comments may hold '?', '!', '|' and '>' freely.\na: 1\n",
    "url: https://example.com/a?b=1\n",
)


def _pure(text: str) -> Any:
    with mock.patch.object(frontmatter, "C_LOADER", None):
        return _outcome(text)


def _outcome(text: str) -> Any:
    try:
        doc = frontmatter.parse(f"---\n{text}---\n", Path("/m/b.md"))
    except ManifestError as exc:
        return ("error", str(exc), exc.line, exc.key, exc.hint)
    return ("doc", doc.data, doc.lines, doc.written, doc.frontmatter_line)


class ValuesPyYamlCannotConvertTests(ManifestTestCase):
    """Scalars PyYAML's checks pass but its conversion fails on: an error at their line, not a crash."""

    def test_each_is_an_error_at_its_line(self) -> None:
        cases = (("a: 1\nb: 0x_\n", 3, "b", "'0x_' is not a valid int"),
                 ("b: +0b_\n", 2, "b", "'+0b_' is not a valid int"),
                 ("b: !!float x\n", 2, "b", "'x' is not a valid float"),
                 ('a: 1\nb: "\\U00110000"\n', 3, None, "names no character"))
        for text, line, key, words in cases:
            for loader in ("libyaml", "pure"):
                with self.subTest(text=text, loader=loader):
                    outcome = _outcome(text) if loader == "libyaml" else _pure(text)
                    self.assertEqual(outcome[0], "error", outcome)
                    self.assertEqual((outcome[2], outcome[3]), (line, key), outcome[1])
                    self.assertIn(words, outcome[1])

    def test_the_cli_reports_it_as_a_manifest_error(self) -> None:
        self.mh.bottle("dev", "env:\n  A: 0x_\n")
        result = self.mh.run_cli("validate")
        self.assertEqual(result.code, 2, result.stderr)
        self.assertIn("dev.md:3: env.A: cannot read this value", result.stderr)
        self.assertNotIn("internal error", result.stderr)


class LibyamlTests(ManifestTestCase):
    """libyaml scans and parses; the composing, the marks and every check stay the same."""

    def test_every_text_reads_as_the_pure_python_parser_reads_it(self) -> None:
        for text in SAME_RESULT:
            with self.subTest(text=text[:60]):
                self.assertEqual(_outcome(text), _pure(text))

    def test_large_dense_settings_read_the_same(self) -> None:
        routes = "".join(f"    - host: h{i}.example.com\n      ports: [443, 8443]\n" for i in range(2000))
        text = "egress:\n  routes:\n" + routes
        self.assertEqual(_outcome(text), _pure(text))

    def test_valid_text_is_read_without_the_pure_python_parser(self) -> None:
        def refuse(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("the pure-Python parser read valid text")

        with mock.patch.object(frontmatter._Loader, "__init__", refuse):
            if yaml.__with_libyaml__:
                doc = frontmatter.parse("---\na: 1\nb: [x, y]\n---\n", Path("/m/b.md"))
                self.assertEqual(doc.data, {"a": 1, "b": ["x", "y"]})
            else:
                with self.assertRaises(AssertionError):
                    frontmatter.parse("---\na: 1\n---\n", Path("/m/b.md"))

    def test_an_error_keeps_the_pure_python_wording(self) -> None:
        err = _outcome("a: 'unclosed\nb: 2\n")
        self.assertEqual(err[0], "error")
        self.assertIn("found unexpected end of stream (in a quoted scalar that begins on line 2)", err[1])
        err = _outcome("a:\n\t- b\n")
        self.assertIn("'\\t'", err[1])
        self.assertEqual(err[4], "indent with spaces; YAML does not allow tabs there")

    def test_a_token_in_the_text_never_reaches_an_error(self) -> None:
        for text in (f"a: !{TOKEN} x\n", f"env:\n  {TOKEN}: 1\n  {TOKEN}: 2\n", f"a: '{TOKEN}\n"):
            with self.subTest(text=text):
                outcome = _outcome(text)
                self.assertEqual(outcome[0], "error")
                self.assertNotIn(TOKEN, outcome[1])
