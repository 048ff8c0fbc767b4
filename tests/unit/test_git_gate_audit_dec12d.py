"""Push-scan gaps an agent could push a token through: tokens glued to their neighbours, and values
cut into unquoted shell assignments joined by expansion.

The detectors take a token only when it stands apart, so one character glued before it
(``xghp_...``, ``rel-sk-ant-...`` in a tag name) or after it (``ghp_..._``) hid it, and so did a
binary file whose byte before the token was a letter (a SQLite record header). A value cut into
short unquoted shell assignments (``A=ghp_x1; B=...; echo $A$B``) was read as parts of eight
characters or fewer, which no detector and no search of the bottle's own values finds.

Look-alikes still pass: base64url blobs that spell an anchor, kebab-case names, npm variables,
short glued prefixes, ordinary shell scripts joining paths, and a token cut into quoted shell
parts (as this repository's tests write tokens).
"""

from __future__ import annotations

import random
import sqlite3
import string
import tempfile
import unittest
from pathlib import Path

from bot_bottle.sidecar.git_gate import joined
from bot_bottle.sidecar.git_gate.piece import Piece
from bot_bottle.sidecar.git_gate.scan import Detector, GitFinding, default_detector, scan
from tests.unit.git_gate_repo_helper import push_repos

COMMIT = "c" * 40
GHP = "ghp_" + "Wq3Zr8Tn5Lm2Xv7Kc4Bp9Hd6Fs1Jg0Ya5UeQ2"
ANT = "sk-ant-" + "api03-Ev7UxyCaIRwEbfFoUtdPJpD9-TH4u5LfJQ4BKGdadqI1rEz38hHf13lZzSVXuctdej1zWmTyNI-pBYFj0TPkQsl"
OWN = "Qv7" + "Xk2mR9pL4wN8tZ3bY6cF1hJ5sD0aG"


def detector() -> Detector:
    return default_detector({"API_TOKEN": OWN})


def findings(text: str, kind: str = "lines", path: str = "f.txt") -> list[GitFinding]:
    return scan([Piece(COMMIT, kind, text, path=path, line=1)], detector())


def shell_parts(value: str, size: int, template: str = "{name}={part}\n") -> str:
    parts = [value[i:i + size] for i in range(0, len(value), size)]
    lines = "".join(template.format(name=f"P{i}", part=part) for i, part in enumerate(parts))
    return "#!/bin/sh\n" + lines + "echo " + "".join(f"$P{i}" for i in range(len(parts))) + "\n"


class GluedTokenTest(unittest.TestCase):
    def test_a_letter_before_a_github_token(self) -> None:
        found = findings(f"id: x{GHP}\n")
        self.assertEqual([(f.detector, f.line) for f in found], [("github-token", 1)])

    def test_a_digit_before_an_anthropic_key(self) -> None:
        self.assertEqual([f.detector for f in findings(f"a\nb\nk=1{ANT}\n")], ["anthropic-api-key"])
        self.assertEqual([f.line for f in findings(f"a\nb\nk=1{ANT}\n")], [3])

    def test_a_dash_before_an_anthropic_key_in_a_file_name(self) -> None:
        found = findings(f"rel-{ANT}", kind="path", path=f"rel-{ANT}")
        self.assertEqual([f.detector for f in found], ["anthropic-api-key"])
        self.assertNotIn(ANT, found[0].describe())

    def test_an_underscore_after_a_github_token(self) -> None:
        self.assertEqual([f.detector for f in findings(f"v = {GHP}_\n")], ["github-token"])

    def test_the_line_of_a_glued_token_past_other_glued_ones(self) -> None:
        text = "".join(f"line {i} x{GHP}\n" if i in (2, 7) else f"line {i}\n" for i in range(1, 10))
        self.assertEqual(sorted(f.line for f in findings(text)), [2, 7])


class GluedTokenPushTest(unittest.TestCase):
    def test_a_tag_name_at_a_commit_upstream_has(self) -> None:
        repos = push_repos(self)
        repos.git("-C", str(repos.work), "tag", f"rel-{ANT}", repos.base)
        code, out = repos.hook(f"{'0' * 40} {repos.base} refs/tags/rel-{ANT}\n", detector())
        self.assertEqual(code, 1)
        self.assertIn("push rejected", out)
        self.assertNotIn(ANT, out)
        self.assertNotIn(ANT, repos.verdict.read_text())  # the ref name is withheld there too
        self.assertEqual(repos.git("--git-dir", str(repos.upstream), "tag"), "")

    def test_a_key_in_a_sqlite_database(self) -> None:
        repos = push_repos(self)
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "app.db"
            con = sqlite3.connect(db)
            con.execute("create table t (v text)")
            con.execute("insert into t values (?)", (ANT,))  # its record header's last byte is "e"
            con.commit()
            con.close()
            new = repos.commit({"app.db": db.read_bytes()}, "db")
        code, out = repos.push_main(new, detector())
        self.assertEqual(code, 1)
        self.assertIn("binary file app.db: detector anthropic-api-key", out)


class ShellJoinedTest(unittest.TestCase):
    def test_a_github_token_in_unquoted_parts(self) -> None:
        found = findings(shell_parts(GHP, 8))
        self.assertEqual([f.detector for f in found], ["github-token"])
        self.assertEqual(found[0].line, 2 + (len(GHP) + 7) // 8)  # the echo line

    def test_an_anthropic_key_in_parts_of_seven_with_braces(self) -> None:
        parts = [ANT[i:i + 7] for i in range(0, len(ANT), 7)]
        text = "#!/bin/sh\n" + "".join(f"export V{i}={p}\n" for i, p in enumerate(parts)) + \
            'curl -H "x-api-key: ' + "".join(f"${{V{i}}}" for i in range(len(parts))) + '" http://127.0.0.1/\n'
        self.assertEqual([f.detector for f in findings(text)], ["anthropic-api-key"])

    def test_the_bottles_own_value_in_parts_of_six(self) -> None:
        found = findings(shell_parts(OWN, 6, "{name}={part}; "))
        self.assertIn("known-secret:API_TOKEN", [f.detector for f in found])

    def test_an_own_value_pushed_in_a_script(self) -> None:
        repos = push_repos(self)
        new = repos.commit({"run.sh": shell_parts(OWN, 6)}, "script")
        code, out = repos.push_main(new, detector())
        self.assertEqual(code, 1)
        self.assertIn("file run.sh line", out)
        self.assertNotIn(OWN[:6], out)


class LookAlikeTest(unittest.TestCase):
    def test_a_base64url_blob_that_spells_an_anchor(self) -> None:
        rnd = random.Random(7)
        alphabet = string.ascii_letters + string.digits + "-_"
        blob = "".join(rnd.choice(alphabet) for _ in range(200)) + GHP + "".join(rnd.choice(alphabet) for _ in range(80))
        self.assertEqual(findings(f'data = "{blob}"\n'), [])

    def test_kebab_and_snake_names(self) -> None:
        text = ("task-ant-colony-simulation-with-pheromones-and-more-words\n"
                "desk-ant-" + "x" * 40 + "\n"
                "echo $npm_package_version xnpm_config_cache_folder_for_the_build_of_it\n"
                "bigh_" + "a" * 40 + "\n")
        self.assertEqual(findings(text), [])

    def test_short_glued_prefixes_in_tests(self) -> None:
        text = 'assert not found("xghp_abc")\nname = "rel-sk-ant-short"\nv = "aAIzaSy"\n'
        self.assertEqual(findings(text), [])

    def test_an_ordinary_shell_script(self) -> None:
        script = (
            "#!/bin/sh\nPREFIX=/usr/local\nBIN=bin\nNAME=bottle\nVERSION=1.2.3\n"
            "DEST=$PREFIX/$BIN\ncp out $DEST/$NAME-$VERSION\necho $PREFIX$BIN $NAME$VERSION\n"
            'URL=https://example.invalid\nexport PATH=$PATH:$PREFIX/bin\ncurl "$URL/$NAME"\n'
        )
        self.assertEqual(findings(script, path="install.sh"), [])

    def test_a_token_in_quoted_shell_parts_is_not_joined(self) -> None:
        # The owner's decision: a token format in quoted parts is how tests write tokens.
        self.assertEqual(findings(shell_parts(GHP, 8, '{name}="{part}"\n')), [])

    def test_unquoted_parts_never_joined_are_not_read(self) -> None:
        parts = shell_parts(GHP, 8).rsplit("echo", 1)[0] + "echo $P0 $P1\n"
        self.assertEqual(findings(parts), [])

    def test_no_reading_when_nothing_is_glued_or_joined(self) -> None:
        calls: list[str] = []

        def hits_of(text: str) -> list[object]:
            calls.append(text)
            return []

        ordinary = f'token = "{GHP}"\n$HOME/bin\nA=1\n'
        self.assertEqual(list(joined.readings(ordinary, hits_of, code=True)), [])
        self.assertEqual(calls, [])


if __name__ == "__main__":
    unittest.main()
