"""Frontmatter parsing: delimiters, YAML errors with their line, refused YAML features, line map."""

from __future__ import annotations

import unittest
from pathlib import Path

from bot_bottle.manifest import ManifestError
from bot_bottle.manifest import frontmatter as fm
from tests.fixtures import ManifestTestCase

P = Path("/manifests/b.md")


class SplitTests(ManifestTestCase):
    def parse_error(self, text: str) -> ManifestError:
        with self.assertRaises(ManifestError) as cm:
            fm.parse(text, P)
        return cm.exception

    def test_missing_opening_delimiter(self) -> None:
        err = self.parse_error("env:\n  A: b\n---\nbody\n")
        self.assertManifestError(err, path=P, line=1, key=None, contains="must start with a '---' line")
        self.assertIsNotNone(err.hint)

    def test_text_before_the_opening_delimiter(self) -> None:
        err = self.parse_error("# Title\n---\nenv: {}\n---\n")
        self.assertManifestError(err, path=P, line=1, key=None, contains="'---'")

    def test_empty_file(self) -> None:
        err = self.parse_error("")
        self.assertManifestError(err, path=P, line=1, key=None, contains="must start")

    def test_unclosed_frontmatter(self) -> None:
        err = self.parse_error("---\nenv:\n  A: b\nbody without a closing line\n")
        self.assertManifestError(err, path=P, line=1, key=None, contains="never closed")

    def test_empty_frontmatter_is_an_empty_mapping(self) -> None:
        doc = fm.parse("---\n---\nthe body\n", P)
        self.assertEqual(doc.data, {})
        self.assertEqual(doc.body, "the body\n")

    def test_comment_only_frontmatter_is_an_empty_mapping(self) -> None:
        doc = fm.parse("---\n# nothing here\n---\n", P)
        self.assertEqual(doc.data, {})

    def test_delimiter_with_trailing_spaces_is_accepted(self) -> None:
        doc = fm.parse("---  \na: 1\n---   \nbody", P)
        self.assertEqual(doc.data, {"a": 1})
        self.assertEqual(doc.body, "body")

    def test_yaml_document_end_marker_closes_frontmatter(self) -> None:
        doc = fm.parse("---\na: 1\n...\nbody\n", P)
        self.assertEqual(doc.data, {"a": 1})
        self.assertEqual(doc.body, "body\n")

    def test_body_is_kept_verbatim_after_the_closing_line(self) -> None:
        body = "# Heading\n\nSome *markdown*.\n---\nA horizontal rule above, still body.\n"
        doc = fm.parse("---\na: 1\n---\n" + body, P)
        self.assertEqual(doc.body, body)

    def test_byte_order_mark_is_ignored(self) -> None:
        doc = fm.parse("\ufeff---\na: 1\nb: 2\n---\nbody\n", P)
        self.assertEqual(doc.data, {"a": 1, "b": 2})
        self.assertEqual(doc.line_of("b"), 3)

    def test_crlf_line_endings(self) -> None:
        doc = fm.parse("---\r\na: 1\r\nb:\r\n  c: two\r\n---\r\nbody\r\n", P)
        self.assertEqual(doc.data, {"a": 1, "b": {"c": "two"}})
        self.assertEqual(doc.line_of("b", "c"), 4)
        self.assertEqual(doc.body.strip(), "body")

    def test_bom_and_crlf_together(self) -> None:
        doc = fm.parse("\ufeff---\r\nbottle: dev\r\n---\r\n", P)
        self.assertEqual(doc.data, {"bottle": "dev"})


class YamlErrorTests(ManifestTestCase):
    def parse_error(self, text: str) -> ManifestError:
        with self.assertRaises(ManifestError) as cm:
            fm.parse(text, P)
        return cm.exception

    def test_syntax_error_reports_its_line(self) -> None:
        err = self.parse_error("---\na: 1\nb: [1, 2\nc: 3\n---\n")
        self.assertManifestError(err, path=P, line=4, key=None, contains="invalid YAML")

    def test_bad_indentation_reports_its_line(self) -> None:
        err = self.parse_error("---\na: 1\nb: 2\n  c: 3\n---\n")
        self.assertManifestError(err, path=P, line=4, key=None, contains="invalid YAML")

    def test_non_mapping_frontmatter_list(self) -> None:
        err = self.parse_error("---\n- a\n- b\n---\n")
        self.assertManifestError(err, path=P, line=2, key=None, contains="must be a mapping")

    def test_non_mapping_frontmatter_scalar(self) -> None:
        err = self.parse_error("---\n\njust words\n---\n")
        self.assertManifestError(err, path=P, line=3, key=None, contains="must be a mapping")

    def test_duplicate_top_level_key(self) -> None:
        err = self.parse_error("---\nsupervise: true\nenv: {}\nsupervise: false\n---\n")
        self.assertManifestError(err, path=P, line=4, key="supervise", contains=["twice", "first on line 2"])

    def test_duplicate_nested_key(self) -> None:
        err = self.parse_error("---\nenv:\n  A: x\n  B: y\n  A: z\n---\n")
        self.assertManifestError(err, path=P, line=5, key="env.A", contains="first on line 3")

    def test_alias_to_a_mapping_is_refused(self) -> None:
        err = self.parse_error("---\nbase: &b\n  x: 1\nother: *b\n---\n")
        self.assertManifestError(err, path=P, line=4, key="other", contains="anchors and aliases")

    def test_alias_to_a_scalar_is_refused(self) -> None:
        err = self.parse_error("---\nenv:\n  A: &tok secret\n  B: *tok\n---\n")
        self.assertManifestError(err, path=P, line=4, key="env.B", contains="anchors and aliases")

    def test_alias_to_a_list_is_refused(self) -> None:
        err = self.parse_error("---\na: &l [1, 2]\nb: *l\n---\n")
        self.assertManifestError(err, path=P, line=3, key="b", contains="anchors and aliases")

    def test_an_alias_in_a_list_is_named_at_its_own_line_not_the_anchors(self) -> None:
        err = self.parse_error("---\nx: &a [1]\nz: 1\nw: 2\ny: [*a]\n---\n")
        self.assertManifestError(err, path=P, line=5, key="y[0]", contains="anchors and aliases")
        err = self.parse_error("---\nx: &a 1\nv:\n  - 2\n  - *a\n---\n")
        self.assertManifestError(err, path=P, line=5, key="v[1]", contains="anchors and aliases")
        err = self.parse_error("---\nv:\n  - &a x\n  - *a\n---\n")  # anchored in the same list
        self.assertManifestError(err, path=P, line=4, key="v[1]", contains="anchors and aliases")

    def test_merge_key_is_refused(self) -> None:
        err = self.parse_error("---\negress:\n  <<: {log: 2}\n---\n")
        self.assertManifestError(err, path=P, line=3, key="egress", contains="merge keys")

    def test_merge_key_with_an_anchor_is_refused(self) -> None:
        err = self.parse_error("---\nbase: &b {log: 2}\negress:\n  <<: *b\n---\n")
        self.assertManifestError(err, path=P, line=4, key="egress", contains="merge keys")

    def test_top_level_merge_key_is_refused(self) -> None:
        err = self.parse_error("---\n<<: {supervise: true}\n---\n")
        self.assertManifestError(err, path=P, line=2, key="<<", contains="merge keys")

    def test_undefined_alias(self) -> None:
        err = self.parse_error("---\na: *nowhere\n---\n")
        self.assertManifestError(err, path=P, line=2, key=None, contains="invalid YAML")

    def test_python_tags_are_refused(self) -> None:
        err = self.parse_error("---\nenv:\n  A: !!python/object/apply:os.system [echo]\n---\n")
        self.assertEqual(err.line, 3)
        self.assertEqual(err.key, "env.A")
        self.assertIn("cannot read this value", str(err))

    def test_tagged_collections_are_refused(self) -> None:
        err = self.parse_error("---\nbottle: dev\nskills: !!set {a, b}\n---\n")
        self.assertManifestError(err, path=P, line=3, key="skills", contains="tag")
        err = self.parse_error("---\nskills: !!omap [a: 1]\n---\n")
        self.assertManifestError(err, path=P, line=2, key="skills", contains="tag")

    def test_complex_key_is_refused(self) -> None:
        err = self.parse_error("---\n? [a, b]\n: 1\n---\n")
        self.assertManifestError(err, path=P, line=2, key=None, contains="plain word")

    def test_second_yaml_document_is_refused(self) -> None:
        err = self.parse_error("---\na: 1\n--- !!map\nb: 2\n---\n")
        self.assertEqual(err.path, P)
        self.assertEqual(err.exit_code, 2)


class NestingTests(unittest.TestCase):
    def test_deep_nesting_is_a_manifest_error_not_a_crash(self) -> None:
        path = Path("/tmp/deep.md")
        for depth in (500, 5000):
            with self.subTest(depth=depth), self.assertRaises(ManifestError) as caught:
                fm.parse("---\nenv: " + "[" * depth + "]" * depth + "\n---\n", path)
            self.assertIn("nested too deeply", str(caught.exception))
            self.assertIn("deep.md", str(caught.exception))


class CharacterTests(unittest.TestCase):
    def test_a_character_yaml_refuses_is_named_at_its_line_in_one_line(self) -> None:
        for char in ("\x00", "\x1b"):
            with self.subTest(char=repr(char)), self.assertRaises(ManifestError) as caught:
                fm.parse(f"---\nenv:\n  A: x{char}y\n---\n", Path("/tmp/c.md"))
            message = str(caught.exception)
            self.assertIn("/tmp/c.md:3:", message)
            self.assertIn(f"#x{ord(char):04x}", message)
            self.assertNotIn("\n", message)
            self.assertNotIn("position", message)


class LineMapTests(unittest.TestCase):
    TEXT = (
        "---\n"  # 1
        "# a comment\n"  # 2
        "env:\n"  # 3
        "  A: x\n"  # 4
        "egress:\n"  # 5
        "  routes:\n"  # 6
        "    - host: a.example\n"  # 7
        "    - b.example\n"  # 8
        "---\n"
        "body\n"
    )

    def test_every_key_and_item_has_its_line(self) -> None:
        doc = fm.parse(self.TEXT, P)
        self.assertEqual(doc.line_of("env"), 3)
        self.assertEqual(doc.line_of("env", "A"), 4)
        self.assertEqual(doc.line_of("egress", "routes"), 6)
        self.assertEqual(doc.line_of("egress", "routes", 0), 7)
        self.assertEqual(doc.line_of("egress", "routes", 0, "host"), 7)
        self.assertEqual(doc.line_of("egress", "routes", 1), 8)

    def test_unknown_path_falls_back_to_its_deepest_known_prefix(self) -> None:
        doc = fm.parse(self.TEXT, P)
        self.assertEqual(doc.line_of("egress", "routes", 1, "auth", "scheme"), 8)
        self.assertEqual(doc.line_of("nothing"), doc.frontmatter_line)
        self.assertEqual(doc.frontmatter_line, 2)

    def test_error_helper_formats_the_key_path(self) -> None:
        doc = fm.parse(self.TEXT, P)
        err = doc.error(("egress", "routes", 1, "host"), "bad")
        self.assertEqual(str(err), f"{P}:8: egress.routes[1].host: bad")

    def test_format_key(self) -> None:
        self.assertEqual(fm.format_key(("egress", "routes", 0, "matches", 2, "paths")), "egress.routes[0].matches[2].paths")
        self.assertIsNone(fm.format_key(()))

    def test_non_string_keys_become_strings(self) -> None:
        doc = fm.parse("---\nenv:\n  1: a\n  true: b\n---\n", P)
        self.assertEqual(doc.data["env"], {"1": "a", "true": "b"})

    def test_yaml11_boolean_words_as_keys_stay_as_written(self) -> None:
        doc = fm.parse("---\nenv:\n  NO: a\n  on: b\n  Y: c\n  1.50: d\n  0x10: e\n---\n", P)
        self.assertEqual(list(doc.data["env"]), ["NO", "on", "Y", "1.50", "0x10"])
        self.assertEqual(doc.line_of("env", "Y"), 5)

    def test_typed_plain_scalars_keep_their_text(self) -> None:
        doc = fm.parse("---\nenv:\n  V: 1.10\n  S: '1.10'\n  L: [0x10]\n  N:\nsupervise: yes\n---\n", P)
        # The data stays typed (ports, booleans); the text waits beside it for string keys.
        self.assertEqual(doc.data["env"]["V"], 1.1)
        self.assertIs(doc.data["supervise"], True)
        self.assertEqual(doc.as_written(("env", "V"), 1.1), "1.10")
        self.assertEqual(doc.as_written(("env", "L", 0), 16), "0x10")
        self.assertEqual(doc.as_written(("supervise",), True), "yes")
        self.assertEqual(doc.written, {("env", "V"): "1.10", ("env", "L", 0): "0x10", ("supervise",): "yes"})
        self.assertIsNone(doc.as_written(("env", "N"), None))
        self.assertEqual(doc.as_written(("env", "L"), [16]), [16])

    def test_explicitly_tagged_scalars_have_no_written_text(self) -> None:
        doc = fm.parse("---\na: !!int 010\nb: !!float 1.10\n---\n", P)
        self.assertEqual(doc.data, {"a": 8, "b": 1.1})
        self.assertEqual(doc.written, {})

    def test_value_and_merge_words_are_plain_strings(self) -> None:
        doc = fm.parse("---\na: =\nb: <<\n---\n", P)
        self.assertEqual(doc.data, {"a": "=", "b": "<<"})

    def test_equals_sign_as_a_key_is_a_word(self) -> None:
        # Once an uncaught ConstructorError (no file, no line); now just the key '='.
        doc = fm.parse("---\nenv:\n  =: x\n---\n", P)
        self.assertEqual(doc.data, {"env": {"=": "x"}})

    def test_unreadable_tagged_key_names_the_file(self) -> None:
        with self.assertRaises(ManifestError) as cm:
            fm.parse("---\nenv:\n  !custom A: x\n---\n", P)
        err = cm.exception
        self.assertEqual((err.path, err.line, err.key), (P, 3, "env"))

    def test_read_rejects_non_utf8(self) -> None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "x.md"
            path.write_bytes(b"---\na: \xff\xfe\n---\n")
            with self.assertRaises(ManifestError) as cm:
                fm.read(path)
            self.assertEqual(cm.exception.path, path)
            self.assertEqual(cm.exception.line, 2)  # the line holding the first bad byte
            self.assertIn("UTF-8", str(cm.exception))

    def test_read_uses_override_text(self) -> None:
        doc = fm.read(Path("/does/not/exist.md"), "---\na: 1\n---\n")
        self.assertEqual(doc.data, {"a": 1})


class ErrorShapeTests(unittest.TestCase):
    def test_error_without_line_or_key(self) -> None:
        err = ManifestError("broken", path="/x/y.md")
        self.assertEqual(str(err), "/x/y.md: broken")
        self.assertEqual(err.exit_code, 2)

    def test_error_without_path(self) -> None:
        err = ManifestError("no agent named 'x'")
        self.assertEqual(str(err), "no agent named 'x'")

    def test_error_with_everything(self) -> None:
        err = ManifestError("bad", path=Path("/x/y.md"), line=7, key="env.A", hint="do this")
        self.assertEqual(str(err), "/x/y.md:7: env.A: bad")
        self.assertEqual(err.detail, "bad")
        self.assertEqual(err.hint, "do this")


if __name__ == "__main__":
    unittest.main()
