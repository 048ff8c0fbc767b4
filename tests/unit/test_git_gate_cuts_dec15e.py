"""Push-scan gaps: a token format cut where the earlier reading of cut tokens did not look.

(1) The prefix itself cut (``"gh"`` / ``"p_..."``, ``"AK"`` / ``"IA..."``, ``"xox"`` /
``"b-..."``); (2) a Google access token (``ya29.``) cut; (3) pieces with lines between them: a
comment, a blank line, or (two assignments the text then joins, ``token = a + b``) other code.
Each passed before. Test fixtures cut into short assignments still pass (pieces under twelve
characters, or not random-looking), and so do ordinary lines ending in a prefix's start.
"""

from __future__ import annotations

import shutil
import unittest

from bot_bottle.sidecar.git_gate import joined
from bot_bottle.sidecar.git_gate.piece import Piece
from bot_bottle.sidecar.git_gate.scan import default_detector, scan
from tests._requires import requires
from tests.unit.git_gate_repo_helper import PushRepos, push_repos

GHP = "ghp_" + "R7bXk2Lw9Tq4Zm8Nc3Vy6Hd1Fs5Jg0Pa7Ue2W"
ANT = "sk-ant-api03-" + "Xq7Kz2Lm9Pw4Rt8Vb3Nc6Hy1Jd5Fs0Ga7Ue2Wi4QmT3rB8"
AKIA = "AKIA" + "QW3RT7YP2KX9ZL4M"
XOXB = "xoxb-" + "2739481650-7362518490-Qm3Zr8Tn5Lm2Xv7Kc4Bp9Hd6"
YA29 = "ya29.a0AfB_" + "byC7Kq2Lm9Pw4Rt8Vb3Nc6Hy1Jd5Fs0Ga7Ue2Wi4QmT3rB8Zq7Kx"
HAS_GIT = shutil.which("git") is not None
COMMIT = "c" * 40


def found(text: str, path: str = "t.py") -> list[tuple[int, str]]:
    return [(f.line, f.detector) for f in scan([Piece(COMMIT, "lines", text, path=path, line=1)], default_detector({}))]


class PrefixCutTest(unittest.TestCase):
    def test_a_prefix_cut_in_implicit_concatenation(self) -> None:
        for token, cut, detector in ((GHP, 2, "github-token"), (GHP, 3, "github-token"), (AKIA, 2, "aws-access-key-id"),
                                     (AKIA, 3, "aws-access-key-id"), (XOXB, 3, "slack-token"),
                                     (XOXB, 2, "slack-token"), (ANT, 2, "anthropic-api-key")):
            with self.subTest(token=token[:cut]):
                text = f'T = ("{token[:cut]}"\n     "{token[cut:]}")\n'
                self.assertIn((2, detector), found(text))

    def test_a_prefix_cut_joined_by_plus(self) -> None:
        self.assertIn((2, "github-token"), found(f'const t = "gh" +\n    "{GHP[2:]}";\n', "t.js"))

    def test_a_prefix_cut_into_two_assignments(self) -> None:
        self.assertIn((2, "github-token"), found(f'a = "gh"\nb = "{GHP[2:]}"\nt = a + b\n'))

    def test_a_prefix_cut_by_a_shell_continuation(self) -> None:
        self.assertIn((2, "aws-access-key-id"), found(f"export AWS_ACCESS_KEY_ID=AK\\\n{AKIA[2:]}\n", "env.sh"))


class GoogleAccessTokenCutTest(unittest.TestCase):
    def test_cut_in_its_body_after_its_prefix_and_in_its_prefix(self) -> None:
        for cut in (20, 5, 4, 2):
            with self.subTest(cut=cut):
                text = f'T = ("{YA29[:cut]}"\n     "{YA29[cut:]}")\n'
                self.assertIn("google-oauth-token", [d for _, d in found(text)])

    def test_a_yaml_scalar(self) -> None:
        text = f"google:\n  token: {YA29[:24]}\n    {YA29[24:]}\n"
        self.assertIn((3, "google-oauth-token"), found(text, "c.yml"))


class LinesBetweenTest(unittest.TestCase):
    def test_a_comment_or_blank_line_between_concatenated_halves(self) -> None:
        for between in ("    # the rest\n", "\n", "    // the rest\n", "\n    # two lines\n"):
            with self.subTest(between=between):
                text = f'T = ("{GHP[:14]}"\n{between}     "{GHP[14:]}")\n'
                self.assertIn("github-token", [d for _, d in found(text)])

    def test_a_comment_after_a_plus_continuation(self) -> None:
        text = f'T = "{AKIA[:10]}" + \\\n    # rest\n    "{AKIA[10:]}"\n'
        self.assertIn("aws-access-key-id", [d for _, d in found(text)])

    def test_two_assignments_with_code_between_then_joined(self) -> None:
        text = f'a = "ghp_R7bXk2Lw9"\nimport os\n\nb = "{GHP[13:]}"\ntoken = a + b\n'
        self.assertIn((4, "github-token"), found(text))
        text = f'const a = "{ANT[:20]}";\nconst n = f(1);\nconst b = "{ANT[20:]}";\nconst key = `${{a}}${{b}}`;\n'
        self.assertIn((3, "anthropic-api-key"), found(text, "k.js"))

    def test_two_assignments_with_a_comment_between(self) -> None:
        self.assertIn((3, "github-token"), found(f'a = "{GHP[:14]}"\n# half\nb = "{GHP[14:]}"\n'))

    def test_reported_on_the_line_holding_most(self) -> None:
        text = f'T = ("{AKIA[:15]}"\n\n     "{AKIA[15:]}")\n'
        self.assertIn((1, "aws-access-key-id"), found(text))


class LookAlikeTest(unittest.TestCase):
    def test_fixture_tokens_in_short_pieces_still_pass(self) -> None:
        # dec12d: eight-character quoted pieces in separate assignments are how tests write tokens.
        parts = [GHP[i:i + 8] for i in range(0, len(GHP), 8)]
        text = "".join(f'p{i} = "{p}"\n' for i, p in enumerate(parts)) + "T = " + " + ".join(
            f"p{i}" for i in range(len(parts))) + "\n"
        self.assertEqual(found(text), [])
        text = f'a = "gh"\nx = 1\nb = "p_" + "R7bXk2Lw"\n'
        self.assertEqual(found(text), [])

    def test_code_between_two_assignments_not_joined_is_not_read(self) -> None:
        text = f'a = "{GHP[:14]}"\nimport os\nb = "{GHP[14:]}"\nprint(a)\nprint(b)\n'
        self.assertEqual(found(text), [])

    def test_benign(self) -> None:
        for path, text in BENIGN.items():
            with self.subTest(path=path):
                self.assertEqual(found(text, path), [])
                self.assertEqual(joined.cut_tokens(text, default_detector({}).hits), [])


BENIGN: dict[str, str] = {
    "ext.py": 'EXTS = (\n    "py",\n    "pyi",\n    "gh",\n    "sk",\n)\nSUFFIX = "py"\n\nimport os\n',
    "langs.yml": "languages:\n  - py\n\n  - go\n  - sk\nregion: ya\n  # note\nname: Xq7Kz2Lm9Pw4Rt8Vb3Nc6\n",
    "github.py": ('host = "github"\n# api\npath = "_pat_tokens_and_scopes_documentation"\nurl = host + path\n'),
    "aws.md": "Access keys start with AK\n\nIA and sixteen more capitals: AKIAIOSFODNN7EXAMPLE.\n",
    "google.py": 'SCOPE = ("ya29."\n\n         "token-docs")\nHOST = "ya29.example.com"\n',
    "sql.sql": "SELECT sk\n-- the key column\n  , name FROM t;\n",
    "pem.md": "-----\n\nBEGIN RSA PRIVATE KEY is a header.\n",
    "hash.py": ('a = "gh"\nx = compute()\nb = "3f786850e387550fdab836ed7e6dc881"\nprint(a + b)\n'),
}


@requires(HAS_GIT, "git")
class CutPushTest(unittest.TestCase):
    """Real pushes through the hook: each passed before."""

    def setUp(self) -> None:
        self.repos: PushRepos = push_repos(self)
        self.detector = default_detector({})

    def assert_refused(self, files: dict[str, str], place: str) -> None:
        new = self.repos.commit(files, "add")
        code, out = self.repos.push_main(new, self.detector)
        self.assertEqual(code, 1, out)
        self.assertIn(f"commit {new[:12]}: {place}", out)
        for token in (GHP, AKIA, YA29, GHP[2:], YA29[4:]):
            self.assertNotIn(token, out)
        self.assertNotEqual(self.repos.upstream_rev(), new)

    def test_a_prefix_cut(self) -> None:
        self.assert_refused({"t.py": f'T = ("gh"\n     "{GHP[2:]}")\n'}, "file t.py line 2: detector github-token")

    def test_a_google_access_token_cut(self) -> None:
        self.assert_refused({"g.py": f'T = ("ya"\n     "{YA29[2:]}")\n'}, "file g.py line 2: detector google-oauth-token")

    def test_two_assignments_far_apart_then_joined(self) -> None:
        source = f'a = "ghp_R7bXk2Lw9"\nimport os\n\nb = "{GHP[13:]}"\ntoken = a + b\n'
        self.assert_refused({"t.py": source}, "file t.py line 4: detector github-token")

    def test_look_alikes_push_clean(self) -> None:
        new = self.repos.commit(dict(BENIGN), "benign")
        code, out = self.repos.push_main(new, self.detector)
        self.assertEqual(code, 0, out)


if __name__ == "__main__":
    unittest.main()
