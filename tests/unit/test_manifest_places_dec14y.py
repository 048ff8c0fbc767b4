"""Columns and keys for the manifest errors that lacked them: a YAML syntax mistake names the key
being read (the nearest key above at a lower indent, as a user would look for it) in its message;
the errors raised across files (a missing bottle or parent, an ``extends`` cycle), an alias inside
a list and a byte that is not UTF-8 carry the column; ``validate``'s text output shows the column
of an error that names no key, after the ``FILE:LINE: message`` a script reads.

Frontmatter lines count from the file's line 1, the opening ``---``.
"""

from __future__ import annotations

import json
from pathlib import Path

from bot_bottle.manifest import ManifestError
from bot_bottle.manifest import frontmatter as fm
from bot_bottle.manifest.env import resolve
from bot_bottle.manifest.model import Origin
from tests.fixtures import ManifestTestCase

P = Path("/m/b.md")
GITHUB = "ghp_R7bX2kQ9mLw4Tz8Vn1Pc6Hs3Jd5Fg0Ya2Ue7"


def parse_error(case: ManifestTestCase, yaml_text: str) -> ManifestError:
    with case.assertRaises(ManifestError) as cm:
        fm.parse(f"---\n{yaml_text}---\n", P)
    return cm.exception


class SyntaxErrorKeyTests(ManifestTestCase):
    """The key being read is named in the message; ``key`` stays None (the error is the YAML's,
    not a key's value refused), so ``FILE:LINE: invalid YAML...`` keeps its shape."""

    def assertWithin(self, yaml_text: str, line: int, column: int, named: str, key_line: int | None) -> ManifestError:
        err = parse_error(self, yaml_text)
        self.assertEqual((err.line, err.column, err.key), (line, column, None), str(err))
        where = f" (line {key_line})" if key_line is not None else ""
        self.assertTrue(str(err).startswith(f"{P}:{line}: invalid YAML in the value of '{named}'{where}: "), str(err))
        return err

    def test_a_tab_names_the_key_above_it(self) -> None:
        err = self.assertWithin("egress:\n\troutes: [example.com]\n", 3, 1, "egress", 2)
        self.assertIn("'\\t'", str(err))
        self.assertIn("spaces", err.hint)

    def test_a_tab_before_a_list_dash(self) -> None:
        self.assertWithin("skills:\n\t- review\n", 3, 1, "skills", 2)

    def test_a_bad_indent_names_the_key_it_falls_under(self) -> None:
        self.assertWithin("supervise: true\nclipboard: hold\n  log: 2\n", 4, 6, "clipboard", 3)
        self.assertWithin("env:\n  A: x\n    B: y\n", 4, 6, "env.A", 3)
        # A key indented less than its siblings, more than its parent: under the parent.
        self.assertWithin("env:\n  A: x\n B: y\n", 4, 2, "env", 2)
        self.assertWithin("env:\n  A: x\n  - y\n", 4, 3, "env", 2)

    def test_an_unclosed_quote_names_the_key_it_opened_under(self) -> None:
        err = self.assertWithin('env:\n  A: "abc\n  B: x\n', 5, 1, "env.A", 3)
        self.assertIn("quoted scalar that begins on line 3", str(err))

    def test_an_unclosed_bracket_names_the_key_and_its_list_item(self) -> None:
        text = "egress:\n  routes:\n    - host: a.com\n    - host: b.com\n      ports: [443,\n"
        self.assertWithin(text, 7, 1, "egress.routes[1].ports", 6)
        self.assertWithin("egress:\n  routes: [a.com, b.com\nsupervise: true\n", 4, 10, "egress.routes", 3)

    def test_list_items_written_as_scalars_are_counted(self) -> None:
        self.assertWithin("extends:\n  - a\n  - b\n  - [c\n", 6, 1, "extends[2]", 5)
        self.assertWithin("extends:\n  - a\n  -\n    - b\n  - [c\n", 7, 1, "extends[2]", 6)

    def test_a_mistake_on_the_keys_own_line_gives_no_second_line(self) -> None:
        self.assertWithin("env:\n  A: x: y\n", 3, 7, "env.A", None)
        self.assertWithin("env:\n  A: x\x00y\n", 3, 7, "env.A", None)

    def test_quoted_keys_and_comments(self) -> None:
        self.assertWithin('env:\n  "MY VAR":\n\t  x\n', 4, 1, "env.MY VAR", 3)
        # A comment that reads like a key is not one.
        self.assertWithin("env:\n  A:\n # B: y\n    'x\n", 6, 1, "env.A", 3)

    def test_a_token_written_as_the_key_is_not_shown(self) -> None:
        err = self.assertWithin(f"env:\n  {GITHUB}: 'x\n", 4, 1, "env.(not shown)", 3)
        self.assertNotIn(GITHUB[4:16], str(err))

    def test_no_key_above_names_none(self) -> None:
        for text, line in (("\tenv: {}\n", 2), ("[a, b\n", 3), ("# env: x\n\tsupervise: true\n", 3)):
            with self.subTest(text=text):
                err = parse_error(self, text)
                self.assertEqual((err.line, err.key), (line, None), str(err))
                self.assertTrue(str(err).startswith(f"{P}:{line}: invalid YAML: "), str(err))

    def test_valid_look_alikes_still_parse(self) -> None:
        # A tab inside a value, a colon in a URL, a '- ' inside text: all valid, nothing refused.
        doc = fm.parse("---\ndescription: 'a\tb'\nenv:\n  A: 'x: y'\n  B: https://h.com/a:b\n"
                       "extends:\n  - base\n---\n", P)
        self.assertEqual(doc.data["env"], {"A": "x: y", "B": "https://h.com/a:b"})


class AcrossFilesColumnTests(ManifestTestCase):
    """The errors ``load`` raises from a file's line now carry the column, the shape unchanged."""

    def assertAt(self, err: ManifestError, path: Path, line: int, column: int, key: str) -> None:
        self.assertEqual((err.path, err.line, err.column, err.key), (path, line, column, key), str(err))
        self.assertTrue(str(err).startswith(f"{path}:{line}: {key}: "), str(err))

    def test_no_bottle_named(self) -> None:
        self.mh.bottle("dev")
        agent = self.mh.agent("a", "model: opus\nbottle: devv\n")
        err = self.load_error()
        self.assertAt(err, agent, 3, 1, "bottle")
        self.assertIn("no bottle named 'devv'", str(err))

    def test_a_missing_parent_in_a_list_is_placed_at_its_item(self) -> None:
        self.mh.bottle("base")
        path = self.mh.bottle("dev", "extends: [base, nope]\n")
        self.mh.agent("a", {"bottle": "dev"})
        self.assertAt(self.load_error(), path, 2, 17, "extends")

    def test_a_missing_parent_written_alone(self) -> None:
        path = self.mh.bottle("dev", "supervise: true\nextends: nope\n")
        self.mh.agent("a", {"bottle": "dev"})
        err = self.load_error()
        self.assertAt(err, path, 3, 1, "extends")
        self.assertIn("no parent bottle named 'nope'", str(err))

    def test_an_agent_named_as_a_parent(self) -> None:
        self.mh.agent("helper", {"bottle": "dev"})
        path = self.mh.bottle("dev", "extends:\n  - helper\n")
        self.mh.agent("a", {"bottle": "dev"})
        self.assertAt(self.load_error(), path, 3, 5, "extends")  # a list item's column is its value's

    def test_a_cycle(self) -> None:
        self.mh.bottle("one", "extends: two\n")
        two = self.mh.bottle("two", "env:\n  A: x\nextends:\n  - one\n")
        self.mh.agent("a", {"bottle": "one"})
        err = self.load_error()
        self.assertAt(err, two, 5, 5, "extends")
        self.assertIn("'extends' makes a cycle", str(err))

    def test_two_routes_with_different_auth(self) -> None:
        path = self.mh.bottle(
            "dev",
            "egress:\n  routes:\n"
            "    - host: api.example.com\n      auth: {scheme: bearer, token_ref: ONE}\n"
            "    - host: api.example.com\n      auth: {scheme: bearer, token_ref: TWO}\n",
        )
        self.mh.agent("a", {"bottle": "dev"})
        self.assertAt(self.load_error(), path, 6, 7, "egress.routes[1].auth")

    def test_a_host_variable_not_set(self) -> None:
        path = self.mh.bottle("dev", 'env:\n  TOKEN: "${NOT_SET_DEC14Y}"\n')
        self.mh.agent("a", {"bottle": "dev"})
        entries = self.load().bottle.env
        with self.assertRaises(ManifestError) as cm:
            resolve(entries, {}, None)
        self.assertAt(cm.exception, path, 3, 3, "env.TOKEN")

    def test_validate_json_carries_the_column(self) -> None:
        self.mh.agent("a", "bottle: devv\n")
        data = json.loads(self.mh.run_cli("validate", "--format", "json").stdout)
        (error,) = data["errors"]
        self.assertEqual((error["line"], error["column"], error["key"]), (2, 1, "bottle"))

    def test_an_origin_compares_and_reads_without_its_column(self) -> None:
        self.assertEqual(Origin(P, 3, 1), Origin(P, 3, 5))
        self.assertEqual(hash(Origin(P, 3, 1)), hash(Origin(P, 3)))
        self.assertEqual(str(Origin(P, 3, 7)), f"{P}:3")


class AliasInAListTests(ManifestTestCase):
    def test_a_flow_list_alias_is_placed_at_its_column(self) -> None:
        err = parse_error(self, "x: &a [1]\ny: [2, *a]\n")
        self.assertEqual((err.line, err.column, err.key), (3, 8, "y[1]"), str(err))

    def test_a_block_list_alias_is_placed_at_its_column(self) -> None:
        err = parse_error(self, "x: &a 1\nv:\n  - 2\n  - *a\n")
        self.assertEqual((err.line, err.column, err.key), (5, 5, "v[1]"), str(err))

    def test_an_alias_of_an_item_anchored_in_the_same_list(self) -> None:
        err = parse_error(self, "v:\n  - &a x\n  -   *a\n")
        self.assertEqual((err.line, err.column, err.key), (4, 7, "v[1]"), str(err))

    def test_items_without_aliases_keep_their_columns(self) -> None:
        doc = fm.parse("---\nv:\n  - a\n  -  b\nw: [c, d]\n---\n", P)
        self.assertEqual([doc.place_of(k) for k in (("v", 0), ("v", 1), ("w", 1))], [(3, 5), (4, 6), (5, 8)])


class NotUtf8ColumnTests(ManifestTestCase):
    def decode_error(self, data: bytes) -> ManifestError:
        with self.assertRaises(ManifestError) as cm:
            fm.decode(data, P)
        return cm.exception

    def test_the_column_counts_characters_of_the_valid_prefix(self) -> None:
        err = self.decode_error(b"---\nenv:\n  A: caf\xc3\xa9 \xff\n---\n")
        self.assertEqual((err.line, err.column), (3, 11), str(err))
        self.assertTrue(str(err).startswith(f"{P}:3: the file is not UTF-8 text"))

    def test_the_first_byte_of_a_line(self) -> None:
        self.assertEqual(self.decode_error(b"---\n\xfe\n").column, 1)

    def test_a_cut_character_is_placed_at_its_first_byte(self) -> None:
        err = self.decode_error(b"---\nname: \xe2\x82\n---\n")  # a euro sign missing its last byte
        self.assertEqual((err.line, err.column), (2, 7))

    def test_a_bom_is_not_a_column_and_crlf_lines_count_once(self) -> None:
        self.assertEqual(self.decode_error(b"\xef\xbb\xbf--- \xff").column, 5)
        err = self.decode_error(b"---\r\nenv:\r\n  A: x\xff\r\n")
        self.assertEqual((err.line, err.column), (3, 7))

    def test_valid_utf8_decodes(self) -> None:
        self.assertEqual(fm.decode("---\nname: caf\u00e9 \u20ac\n---\n".encode(), P), "---\nname: caf\u00e9 \u20ac\n---\n")


class OtherColumnTests(ManifestTestCase):
    def test_a_frontmatter_that_is_not_a_mapping(self) -> None:
        err = parse_error(self, "\n  - a\n")
        self.assertEqual((err.line, err.column), (3, 3), str(err))

    def test_nested_too_deeply(self) -> None:
        err = parse_error(self, "env:\n  A: " + "[" * 40 + "]" * 40 + "\n")
        self.assertEqual(err.line, 3)
        self.assertIsNotNone(err.column)
        self.assertIn("nested too deeply", str(err))


class ValidateTextTests(ManifestTestCase):
    """``validate``'s text output: `` (at column N)`` after an error that names no key; a keyed
    error's line is as it was."""

    def errors(self) -> list[str]:
        result = self.mh.run_cli("validate")
        self.assertEqual(result.code, 2, result.stderr)
        return [line for line in result.stderr_lines if line.startswith("error: ")]

    def test_a_syntax_error_shows_its_column_last(self) -> None:
        path = self.mh.bottle("dev", "env:\n  A: x\n    B: y\n")
        self.mh.agent("a", {"bottle": "dev"})
        (line,) = self.errors()
        self.assertTrue(line.startswith(f"error: {path}:4: invalid YAML in the value of 'env.A' (line 3): "), line)
        self.assertTrue(line.endswith(" (at column 6)"), line)

    def test_not_utf8_shows_its_column(self) -> None:
        path = self.mh.bottles_dir / "dev.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"---\nenv:\n  A: x\xff\n---\n")
        self.mh.agent("a", {"bottle": "dev"})
        (line,) = self.errors()
        self.assertEqual(line, f"error: {path}:3: the file is not UTF-8 text (at column 7)")

    def test_a_keyed_error_is_unchanged(self) -> None:
        path = self.mh.bottle("dev", "egress:\n  log: 9\n")
        self.mh.agent("a", {"bottle": "dev"})
        (line,) = self.errors()
        self.assertNotIn("column", line)
        self.assertTrue(line.startswith(f"error: {path}:3: egress.log: "), line)

    def test_a_column_the_message_gives_is_not_repeated(self) -> None:
        path = self.mh.bottle("dev", f"git-gate:\n  user:\n    name: |\n      {GITHUB}\n")
        self.mh.agent("a", {"bottle": "dev"})
        (line,) = self.errors()
        self.assertEqual(line.count("column"), 1, line)
        self.assertNotIn(GITHUB[4:16], line)
        self.assertTrue(line.startswith(f"error: {path}:5: git-gate.user.name: "), line)
