"""Where a manifest error points, to the column: a token written where a name belongs (a git user
name, an ssh_key path, a token_ref, an env variable's name, a header name) or a private key pasted
into a block scalar is placed at its own line and column, not its key's; every error carries the
column where it is known, and ``validate --format json`` gives it beside the fields it had. Then
malformed manifests a user may write, each refused with the file, the line and the key, exit
code 2, no traceback and no secret shown.

Files are written byte for byte: line 1 is the opening ``---``.
"""

from __future__ import annotations

import json
from pathlib import Path

from bot_bottle.manifest import ManifestError
from tests.fixtures import ManifestTestCase

GITHUB = "ghp_R7bX2kQ9mLw4Tz8Vn1Pc6Hs3Jd5Fg0Ya2Ue7"
KEY_BODY = ("b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
            "QyNTUxOQAAACDzQ7Y3hP1mXkq2b8tZ7Zr4Vn1Pc6Hs3Jd5Fg0Ya2Ue7wAAAJg8h7Wn")


def private_key(indent: int) -> list[str]:
    """A private key block's lines, each indented by ``indent`` spaces."""
    lines = ["-----BEGIN OPENSSH PRIVATE KEY-----", *KEY_BODY, "-----END OPENSSH PRIVATE KEY-----"]
    return [" " * indent + line for line in lines]


ROUTE = ["egress:", "  routes: [example.com]"]
SSH_REPO = ["git-gate:", "  repos:", "    r:", "      url: git@github.com:o/r.git"]
KNOWN_HOSTS = ("      known_hosts: github.com ssh-ed25519 "
               "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl")
SECRETS = (GITHUB[4:16], KEY_BODY[0][8:24], KEY_BODY[1][8:24])


class Files(ManifestTestCase):
    def write_bottle(self, lines: list[str], name: str = "b") -> Path:
        """Bottle ``name`` whose frontmatter is ``lines`` (from line 2), and agent ``a`` using it."""
        path = self.mh.bottles_dir / f"{name}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(("\n".join(["---", *lines, "---"]) + "\n").encode())
        self.mh.agent("a", {"bottle": name})
        return path

    def write_raw(self, data: bytes, name: str = "b") -> Path:
        path = self.mh.bottles_dir / f"{name}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def assertAt(self, err: ManifestError, path: Path, line: int, column: int | None, key: str) -> None:
        self.assertIsInstance(err, ManifestError)
        self.assertEqual((err.path, err.line, err.column, err.shown_key), (path, line, column, key), str(err))
        self.assertTrue(str(err).startswith(f"{path}:{line}: {key}: "), str(err))
        self.assertHidden(err)

    def assertHidden(self, err: BaseException) -> None:
        shown = str(err) + " " + (getattr(err, "hint", None) or "")
        for secret in SECRETS:
            self.assertNotIn(secret, shown)


class TokenWhereANameBelongsTests(Files):
    """``not_a_token`` and ``secret_ref`` refusals at the token's own line and column."""

    def test_a_git_user_name_in_a_block_scalar(self) -> None:
        for header in ("|", ">-", "|+"):
            with self.subTest(header=header):
                path = self.write_bottle(["git-gate:", "  user:", f"    name: {header}", f"      {GITHUB}"])
                err = self.load_error()
                self.assertAt(err, path, 5, 7, "git-gate.user.name")
                self.assertIn("token itself (GitHub token) at column 7, not a git user name", str(err))

    def test_a_private_key_pasted_under_ssh_key(self) -> None:
        path = self.write_bottle([*SSH_REPO, "      ssh_key: |", *private_key(8), KNOWN_HOSTS])
        err = self.load_error()
        self.assertAt(err, path, 7, 9, "git-gate.repos.r.ssh_key")  # the BEGIN line
        self.assertIn("at column 9, not the path of the SSH key file", str(err))

    def test_a_private_key_on_the_keys_own_line_keeps_that_line_with_its_column(self) -> None:
        path = self.write_bottle([*SSH_REPO, "      ssh_key: \"-----BEGIN OPENSSH PRIVATE KEY-----\\n"
                                  f"{KEY_BODY[0]}\\n{KEY_BODY[1]}\\n-----END OPENSSH PRIVATE KEY-----\"", KNOWN_HOSTS])
        self.assertAt(self.load_error(), path, 6, 17, "git-gate.repos.r.ssh_key")

    def test_a_private_key_in_an_env_literal_block(self) -> None:
        path = self.write_bottle(["env:", "  DEPLOY_KEY: |", *private_key(4)])
        err = self.load_error()
        self.assertAt(err, path, 4, 5, "env.DEPLOY_KEY")
        self.assertIn("must be one line", str(err))

    def test_a_token_ref_in_a_folded_block(self) -> None:
        path = self.write_bottle(["egress:", "  routes:", "    - host: api.github.com", "      auth:",
                                  "        scheme: bearer", "        token_ref: >-", "", f"          {GITHUB}"])
        err = self.load_error()
        self.assertAt(err, path, 9, 11, "egress.routes[0].auth.token_ref")
        self.assertIn("at column 11, not the name of the host variable", str(err))

    def test_an_env_prompt_and_a_host_variable_holding_a_token_in_a_block(self) -> None:
        for value, column in ((f"?{GITHUB}", 6), (f"${{{GITHUB}}}", 7)):
            with self.subTest(value=value[:2]):
                path = self.write_bottle(["env:", "  A: |-", f"    {value}"])
                self.assertAt(self.load_error(), path, 4, column, "env.A")

    def test_a_token_as_an_env_variables_name_names_the_keys_column(self) -> None:
        path = self.write_bottle(["env:", "  OK: x", f"  {GITHUB}: x"])
        err = self.load_error()
        self.assertAt(err, path, 4, 3, "env.(not shown)")
        self.assertIn("at column 3, not an environment variable name", str(err))

    def test_a_token_as_a_header_name_names_the_keys_column(self) -> None:
        path = self.write_bottle(["egress:", "  routes:", "    - host: api.github.com", "      matches:",
                                  "        - headers:", f"            {GITHUB}: x"])
        self.assertAt(self.load_error(), path, 7, 13, "egress.routes[0].matches[0].headers.(not shown)")

    def test_a_token_as_a_route_host_in_a_block(self) -> None:
        path = self.write_bottle(["egress:", "  routes:", "    - host: |-", f"        {GITHUB}"])
        err = self.load_error()
        self.assertAt(err, path, 5, 9, "egress.routes[0].host")
        self.assertIn("looks like a token at column 9, not a host name", str(err))

    def test_a_token_in_extends_and_in_skills(self) -> None:
        path = self.write_bottle(["extends:", "  - base", "  - >-", f"    {GITHUB}"])
        self.assertAt(self.load_error(), path, 5, 5, "extends[1]")
        self.mh.bottle("c", "env: {}\n")
        agent = self.mh.agents_dir() / "a.md"
        agent.write_bytes("\n".join(["---", "bottle: c", "skills:", "  - |-", f"    {GITHUB}", "---", ""]).encode())
        self.assertAt(self.load_error(), agent, 5, 5, "skills[0]")


class LookAlikesPassTests(Files):
    """Names and values in the same block scalar shapes that hold no token are read as before."""

    def test_names_in_block_scalars_load(self) -> None:
        self.write_bottle([*ROUTE, "git-gate:", "  user:", "    name: |-", "      Release Bot",
                           "    email: bot@example.com", "env:", "  GREETING: |-", "    ghp_ is GitHub's prefix",
                           "  TOKEN: |-", "    ${GITHUB_TOKEN}"])
        bottle = self.load().bottle
        self.assertEqual(bottle.git_user.name, "Release Bot")
        self.assertEqual({e.name: e.value for e in bottle.env},
                         {"GREETING": "ghp_ is GitHub's prefix", "TOKEN": "GITHUB_TOKEN"})

    def test_a_multi_line_literal_without_a_secret_stays_at_its_key(self) -> None:
        path = self.write_bottle(["env:", "  NOTE: |", "    first line", "    second line"])
        self.assertAt(self.load_error(), path, 3, 3, "env.NOTE")

    def test_a_plain_ascii_unknown_key_has_no_character_note(self) -> None:
        path = self.write_bottle(["egres:", "  routes: [example.com]"])
        err = self.load_error()
        self.assertAt(err, path, 2, 1, "egres")
        self.assertIn("did you mean 'egress'?", str(err))
        self.assertNotIn("U+", str(err))

    def test_non_ascii_values_and_a_short_number_are_shown_as_before(self) -> None:
        self.write_bottle([*ROUTE, "env:", "  CITY: Zürich"])
        self.assertEqual(self.load().bottle.env[0].value, "Zürich")
        path = self.write_bottle(["egress:", "  routes:", "    - host: example.com", "      ports: [123456789012]"])
        self.assertIn("got a number (123456789012)", str(self.load_error()))
        self.assertEqual(path.name, "b.md")


class ColumnTests(Files):
    """Every error carries the column where it is known; ``str()`` keeps its ``FILE:LINE: KEY:`` shape."""

    def test_key_errors_name_the_keys_column(self) -> None:
        cases = [
            (["env:", "  A: x", "  A: y"], 4, 3, "env.A"),
            ([*ROUTE, "  rotues: []"], 4, 3, "egress.rotues"),
            (["egress:", "  routes:", "    - host: example.com", "      ports: [0]"], 5, 15,
             "egress.routes[0].ports[0]"),
            (["env:", "  <<: {A: x}"], 3, 3, "env"),
            (["env: !!set {a, b}"], 2, 6, "env"),
        ]
        for lines, line, column, key in cases:
            with self.subTest(key=key):
                path = self.write_bottle(lines)
                self.assertAt(self.load_error(), path, line, column, key)

    def test_yaml_syntax_errors_name_the_column(self) -> None:
        path = self.write_raw(b"---\negress:\n  routes: [example.com\nenv: {}\n---\n")
        self.mh.agent("a", {"bottle": "b"})
        err = self.load_error()
        self.assertEqual((err.path, err.line, err.column), (path, 4, 4), str(err))

    def test_a_nul_and_an_escape_past_unicode_name_their_column(self) -> None:
        self.mh.agent("a", {"bottle": "b"})
        self.write_raw(b"---\nenv:\n  A: x\x00y\n---\n")
        self.assertEqual((self.load_error().line, self.load_error().column), (3, 7))
        self.write_raw(b'---\nenv:\n  OK: "\\u00e9"\n  A: "\\U00110000"\n---\n')
        err = self.load_error()
        self.assertEqual((err.line, err.column), (4, 7), str(err))

    def test_several_errors_read_as_the_first_with_its_column(self) -> None:
        path = self.write_bottle(["egres: {}", "env:", "  A: x", "  9B: y"])
        err = self.load_error()
        self.assertAt(err, path, 2, 1, "egres")
        self.assertEqual([(e.line, e.column) for e in err.each()], [(2, 1), (5, 3)])

    def test_an_error_with_no_line_has_no_column(self) -> None:
        self.assertIsNone(ManifestError("x", path="f.md", column=3).column)
        self.assertEqual(str(ManifestError("bad", path="f.md", line=2, column=3, key="k")), "f.md:2: k: bad")


class ValidateJsonTests(Files):
    FIELDS = {"path", "line", "column", "key", "message", "text"}

    def test_each_error_carries_its_column_beside_the_fields_it_had(self) -> None:
        path = self.write_bottle(["git-gate:", "  user:", "    name: |", f"      {GITHUB}"])
        result = self.mh.run_cli("validate", "--format", "json")
        self.assertEqual(result.code, 2)
        self.assertNotIn(GITHUB[4:16], result.stdout + result.stderr)
        data = json.loads(result.stdout)
        self.assertEqual(set(data), {"ok", "checked", "errors", "warnings", "unreadable"})
        (error,) = data["errors"]
        self.assertEqual(set(error), self.FIELDS)
        self.assertEqual((error["path"], error["line"], error["column"], error["key"]),
                         (str(path), 5, 7, "git-gate.user.name"))
        self.assertEqual(error["text"], f"{path}:5: git-gate.user.name: {error['message']}")

    def test_the_column_is_null_where_it_is_not_known(self) -> None:
        self.write_raw(b"---\nenv: {}\n")  # never closed: the file, line 1, no key
        data = json.loads(self.mh.run_cli("validate", "--format", "json").stdout)
        (error,) = data["errors"]
        self.assertEqual(set(error), self.FIELDS)
        self.assertEqual((error["line"], error["column"], error["key"]), (1, None, None))


# Malformed bottle files: (name, bytes, line, key, words the error holds). Every one must be
# refused by `validate` with exit code 2, naming the file and line (and key where there is one),
# without a traceback and without a secret.
NL = "\n"
MALFORMED: list[tuple[str, bytes, int | None, str | None, str]] = [
    ("duplicate key", b"---\nenv:\n  A: x\n  A: y\n---\n", 4, "env.A", "appears twice"),
    ("tab indent", b"---\negress:\n\troutes: [example.com]\n---\n", 3, None, "'\\t'"),
    ("crlf duplicate", b"---\r\nenv:\r\n  A: x\r\n  A: y\r\n---\r\n", 4, "env.A", "appears twice"),
    ("never closed", b"---\nenv:\n  A: x\n", 1, None, "never closed"),
    ("bom and unknown key", "\ufeff---\nenvv: {}\n---\n".encode(), 2, "envv", "did you mean 'env'?"),
    ("anchor and alias", b"---\nenv: &e\n  A: x\negress: *e\n---\n", 4, "egress", "aliases are not supported"),
    ("merge key", b"---\nenv:\n  <<: {A: x}\n---\n", 3, "env", "merge keys"),
    ("alias bomb", ("---\na: &a [x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\n"
                    "c: [*b,*b,*b,*b,*b,*b,*b,*b]\n---\n").encode(), 3, "b[0]", "aliases are not supported"),
    ("python object tag", b"---\nenv: !!python/object:os.system {}\n---\n", 2, "env", "is not supported"),
    ("python name tag", b"---\nenv:\n  A: !!python/name:os.system\n---\n", 3, "env.A", "constructor"),
    ("huge int", ("---\negress:\n  log: " + "9" * 5000 + "\n---\n").encode(), 3, "egress.log", "too long"),
    ("huge port", ("---\negress:\n  routes:\n    - host: example.com\n      ports: [" + "9" * 400 + "]\n---\n")
     .encode(), 5, "egress.routes[0].ports[0]", "a number of 400 digits"),
    ("list as a key", b"---\nenv:\n  [a, b]: x\n---\n", 3, "env", "plain word"),
    ("int key", b"---\nenv:\n  1: x\n---\n", 3, "env.1", "not an environment variable name"),
    ("key at the wrong level", b"---\nroutes: [example.com]\n---\n", 2, "routes", "belongs under 'egress'"),
    ("list for a map", b"---\nenv:\n  - A\n---\n", 2, "env", "got a list"),
    ("near miss top", b"---\ngit_gate: {}\n---\n", 2, "git_gate", "did you mean 'git-gate'?"),
    ("near miss route", b"---\negress:\n  routes:\n    - hots: example.com\n---\n", 4, "egress.routes[0].hots",
     "did you mean 'host'?"),
    ("look-alike letter", "---\n\u0435nv: {}\n---\n".encode(), 2, "\u0435nv", "U+0435 (CYRILLIC SMALL LETTER IE)"),
    ("host with scheme", b"---\negress:\n  routes: [https://example.com]\n---\n", 3, "egress.routes[0].host",
     "without a scheme"),
    ("host with path", b"---\negress:\n  routes: [example.com/api]\n---\n", 3, "egress.routes[0].host", "paths"),
    ("host with port", b"---\negress:\n  routes: [example.com:443]\n---\n", 3, "egress.routes[0].host", "'ports'"),
    ("port 0", b"---\negress:\n  routes:\n    - host: example.com\n      ports: [0]\n---\n", 5,
     "egress.routes[0].ports[0]", "1 to 65535"),
    ("port 70000", b"---\negress:\n  routes:\n    - host: example.com\n      ports: 70000\n---\n", 5,
     "egress.routes[0].ports[0]", "1 to 65535"),
    ("empty file", b"", 1, None, "the file is empty"),
    ("binary file", bytes(range(256)) * 4, 2, None, "not UTF-8"),
    ("NUL in text", b"---\nenv:\n  A: x\x00y\n---\n", 3, None, "#x0000"),
    ("text after the opening", b"--- yaml\nenv: {}\n---\n", 1, None, "alone on the first line"),
    ("a scalar frontmatter", b"---\njust words\n---\n", 2, None, "mapping of keys"),
    ("nested too deeply", ("---\nenv: " + "[" * 200 + "]" * 200 + "\n---\n").encode(), 2, None, "nested too deeply"),
    ("unclosed quote", b'---\nenv:\n  A: "abc\n  B: x\n---\n', 5, None, "quoted scalar that begins on line 3"),
    ("token as env name", f"---\nenv:\n  {GITHUB}: x\n---\n".encode(), 3, "env.(not shown)", "token itself"),
    ("token in a URL", f"---\ngit-gate:\n  repos:\n    r: https://me:{GITHUB}@github.com/o/r.git\n---\n".encode(),
     4, "git-gate.repos.r.url", "not shown"),
    ("private key under ssh_key",
     NL.join(["---", *SSH_REPO, "      ssh_key: |", *private_key(8), KNOWN_HOSTS, "---", ""]).encode(), 7,
     "git-gate.repos.r.ssh_key", "Private key block"),
    ("a date for a boolean", b"---\nsupervise: 2024-01-01\n---\n", 2, "supervise", "quote it"),
    ("an escape past unicode", b'---\nenv:\n  A: "\\U00110000"\n---\n', 3, None, "names no character"),
]


class MalformedManifestTests(Files):
    def test_each_is_refused_with_file_line_and_key(self) -> None:
        self.assertGreaterEqual(len(MALFORMED), 30)
        for name, data, line, key, words in MALFORMED:
            with self.subTest(name):
                for old in self.mh.bottles_dir.glob("*.md"):
                    old.unlink()
                path = self.write_raw(data, name="broken")
                result = self.mh.run_cli("validate", "--format", "json")
                self.assertEqual(result.code, 2, result.stdout)
                self.assertNotIn("Traceback", result.stderr)
                data_out = json.loads(result.stdout)
                error = data_out["errors"][0]
                self.assertEqual((error["path"], error["line"], error["key"]), (str(path), line, key), error["text"])
                self.assertIn(words, error["text"])
                self.assertLess(len(error["text"]), 600)
                text = self.mh.run_cli("validate")
                self.assertEqual(text.code, 2)
                self.assertNotIn("Traceback", text.stderr)
                for secret in SECRETS:
                    self.assertNotIn(secret, result.stdout + result.stderr + text.stdout + text.stderr)

    def test_a_folder_and_symlinks_in_place_of_a_file(self) -> None:
        folder = self.mh.bottles_dir
        (folder / "dir.md").mkdir(parents=True)
        (folder / "loop.md").symlink_to(folder / "loop.md")
        (folder / "gone.md").symlink_to(folder / "nowhere")
        result = self.mh.run_cli("validate", "--format", "json")
        self.assertEqual(result.code, 2)
        self.assertNotIn("Traceback", result.stderr)
        by_name = {Path(e["path"]).name: e["message"] for e in json.loads(result.stdout)["errors"]}
        self.assertEqual(by_name["dir.md"], "is a directory, not a manifest file")
        self.assertIn("leads back to itself", by_name["loop.md"])
        self.assertIn("dangling symlink", by_name["gone.md"])
