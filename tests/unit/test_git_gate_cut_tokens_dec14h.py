"""Push-scan gap: a well-known token format cut across neighbouring lines of one file.

A GitHub, Anthropic, AWS or Slack token (or a PEM private key's header) cut into pieces one a
line passed when each piece was too short for the wrapped-base64 reader (under 16 characters:
an AWS key id's halves, a prefix alone on its line, pieces of 12), or when the pieces were two
assignments (``a = "ghp_..."`` / ``b = "..."``). The detectors saw no piece whole. A line whose
last piece starts with a token's prefix is now read joined with the next lines' pieces, and the
push is refused at the line holding most of the token.

Look-alikes still pass: lists of token prefixes, neighbouring constants, test data with a
too-short token next to another, a whole PEM key, lock files, go.sum, minified JS, URLs and
hashes cut over lines.
"""

from __future__ import annotations

import shutil
import unittest

from bot_bottle.sidecar.git_gate import joined
from bot_bottle.sidecar.git_gate.piece import Piece
from bot_bottle.sidecar.git_gate.scan import GitFinding, default_detector, scan
from tests._requires import requires
from tests.unit.git_gate_repo_helper import PushRepos, push_repos

GHP = "ghp_" + "Wq3Zr8Tn5Lm2Xv7Kc4Bp9Hd6Fs1Jg0Ya5UeQ2"
ANT = "sk-ant-api03-" + "Xq7Kz2Lm9Pw4Rt8Vb3Nc6Hy1Jd5Fs0Ga7Ue2Wi4QmT3rB8"
AKIA = "AKIA" + "QW3RT7YP2KX9ZL4M"
XOXB = "xoxb-" + "2739481650-7362518490-Qm3Zr8Tn5Lm2Xv7Kc4Bp9Hd6"
PEM_BODY = "MIIEowIBAAKCAQEAx7Kq2Lm9Pw4Rt8Vb3Nc6Hy1Jd5Fs0Ga7Ue2Wi4QmT3rB8Zq7Kx2Lm9Pw4Rt8Vb3"
HAS_GIT = shutil.which("git") is not None
COMMIT = "c" * 40


def chunks(text: str, width: int) -> list[str]:
    return [text[i:i + width] for i in range(0, len(text), width)]


def findings(text: str, path: str = "f.txt") -> list[GitFinding]:
    return scan([Piece(COMMIT, "lines", text, path=path, line=1)], default_detector({}))


@requires(HAS_GIT, "git")
class CutTokenPushTest(unittest.TestCase):
    """Real pushes through the hook: each passed before."""

    def setUp(self) -> None:
        self.repos: PushRepos = push_repos(self)
        self.detector = default_detector({})

    def assert_refused(self, files: dict[str, str], *places: str) -> None:
        new = self.repos.commit(files, "add")
        code, out = self.repos.push_main(new, self.detector)
        self.assertEqual(code, 1, out)
        for place in places:
            self.assertIn(f"commit {new[:12]}: {place}", out)
        for token in (GHP, ANT, AKIA, XOXB, PEM_BODY):
            self.assertNotIn(token, out)
        self.assertNotEqual(self.repos.upstream_rev(), new)

    def test_two_assignments_joined(self) -> None:
        source = f'a = "{GHP[:14]}"\nb = "{GHP[14:]}"\nt = a + b\n'
        self.assert_refused({"t.py": source}, "file t.py line 2: detector github-token")

    def test_an_anthropic_key_in_three_python_pieces(self) -> None:
        parts = [ANT[:10], ANT[10:20], ANT[20:]]
        source = "KEY = (\n" + "".join(f'    "{p}"\n' for p in parts) + ")\n"
        self.assert_refused({"k.py": source}, "file k.py line 4: detector anthropic-api-key")

    def test_an_aws_key_id_halves_in_javascript(self) -> None:
        source = f'const id = "{AKIA[:10]}" +\n  "{AKIA[10:]}";\n'
        self.assert_refused({"k.js": source}, "file k.js line 1: detector aws-access-key-id")

    def test_an_aws_key_id_in_c_adjacent_literals(self) -> None:
        source = f'const char *id = "{AKIA[:6]}"\n                 "{AKIA[6:]}";\n'
        self.assert_refused({"k.c": source}, "file k.c line 2: detector aws-access-key-id")

    def test_a_shell_line_continuation(self) -> None:
        source = f"#!/bin/sh\nAWS_ACCESS_KEY_ID={AKIA[:8]}\\\n{AKIA[8:]}\nexport AWS_ACCESS_KEY_ID\n"
        self.assert_refused({"env.sh": source}, "file env.sh line 3: detector aws-access-key-id")

    def test_a_yaml_plain_multi_line_scalar(self) -> None:
        source = f"aws:\n  key_id: {AKIA[:9]}\n    {AKIA[9:]}\n  region: eu-west-1\n"
        self.assert_refused({"c.yml": source}, "file c.yml line 3: detector aws-access-key-id")

    def test_a_json_array_of_pieces(self) -> None:
        source = '{"parts": [\n  "' + AKIA[:4] + '",\n  "' + AKIA[4:] + '"\n]}\n'
        self.assert_refused({"p.json": source}, "file p.json line 3: detector aws-access-key-id")

    def test_the_prefix_alone_on_its_line(self) -> None:
        source = f'TOKEN = ("ghp_"\n         "{GHP[4:]}")\n'
        self.assert_refused({"t.py": source}, "file t.py line 2: detector github-token")

    def test_a_slack_token_in_pieces_of_twelve(self) -> None:
        source = "t = (\n" + "".join(f'    "{p}"\n' for p in chunks(XOXB, 12)) + ")\n"
        new = self.repos.commit({"s.py": source}, "add")
        code, out = self.repos.push_main(new, self.detector)
        self.assertEqual(code, 1, out)
        self.assertIn("detector slack-token", out)
        self.assertNotIn(XOXB, out)

    def test_a_pem_header_cut_in_a_literal(self) -> None:
        source = (f'KEY = ("-----BEGIN RSA PRIV"\n       "ATE KEY-----\\n"\n       "{PEM_BODY}\\n"\n'
                  '       "-----END RSA PRIVATE KEY-----\\n")\n')
        self.assert_refused({"k.py": source}, "file k.py line")
        new = self.repos.git("-C", str(self.repos.work), "rev-parse", "HEAD")
        _code, out = self.repos.push_main(new, self.detector)
        self.assertIn("detector private-key", out)

    def test_a_later_commit_adding_the_pieces_to_a_file(self) -> None:
        first = self.repos.commit({"app.py": "import os\n\n\ndef main() -> None:\n    pass\n"}, "app")
        self.assertTrue(first)
        source = ("import os\n\nID = (\n    \"" + AKIA[:8] + "\"\n    \"" + AKIA[8:] + "\"\n)\n\n\n"
                  "def main() -> None:\n    pass\n")
        self.assert_refused({"app.py": source}, "file app.py line 5: detector aws-access-key-id")

    def test_look_alikes_push_clean(self) -> None:
        new = self.repos.commit(dict(BENIGN), "benign")
        code, out = self.repos.push_main(new, self.detector)
        self.assertEqual(code, 0, out)


class CutTokenScanTest(unittest.TestCase):
    """The scan on one changed block: where a cut token is reported, and what is not joined."""

    def test_reported_on_the_line_holding_most(self) -> None:
        text = f'x = 1\nid = ("{AKIA[:5]}"\n      "{AKIA[5:]}")\n'
        found = [(f.line, f.detector) for f in findings(text, "a.py")]
        self.assertIn((3, "aws-access-key-id"), found)
        text = f'x = 1\nid = ("{AKIA[:15]}"\n      "{AKIA[15:]}")\n'
        found = [(f.line, f.detector) for f in findings(text, "a.py")]
        self.assertIn((2, "aws-access-key-id"), found)

    def test_each_token_format(self) -> None:
        # Cut after the prefix, and leaving a last piece of twelve (the shortest read on across
        # two assignments).
        for token, prefix, detector in ((GHP, 4, "github-token"), (ANT, 7, "anthropic-api-key"),
                                        (AKIA, 4, "aws-access-key-id"), (XOXB, 5, "slack-token")):
            for cut in (prefix, len(token) - 12):
                with self.subTest(detector=detector, cut=cut):
                    text = f'a = "{token[:cut]}"\nb = "{token[cut:]}"\nt = a + b\n'
                    self.assertIn(detector, [f.detector for f in findings(text, "t.py")])

    def test_pieces_in_separate_blocks_are_not_joined(self) -> None:
        pieces = [Piece(COMMIT, "lines", f'id = ("{AKIA[:10]}"\n', path="a.py", line=1),
                  Piece(COMMIT, "lines", f'      "{AKIA[10:]}")\n', path="a.py", line=9)]
        self.assertEqual(scan(pieces, default_detector({})), [])

    def test_a_blank_line_between_the_pieces_is_read_through(self) -> None:
        # Python joins adjacent literals across a blank line inside brackets: so does the reading.
        text = f'id = ("{AKIA[:10]}"\n\n      "{AKIA[10:]}")\n'
        self.assertIn("aws-access-key-id", [f.detector for f in findings(text, "a.py")])

    def test_a_whole_token_is_reported_once_where_it_is(self) -> None:
        text = f'T = "{GHP}",\nU = "Zq7Kx2Lm9Pw4Rt8V",\n'
        self.assertEqual([(f.line, f.detector) for f in findings(text, "a.py")], [(1, "github-token")])

    def test_a_cut_token_after_many_prefixes(self) -> None:
        # Past ``MAX_PREFIXES`` prefixes a text's cuts are listed by one pattern: still found.
        listed = "PREFIXES = [\n" + '    "ghp_",\n' * (joined.MAX_PREFIXES + 50) + "]\n"
        self.assertEqual(findings(listed, "p.py"), [])
        text = listed + f'ID = ("{AKIA[:9]}"\n      "{AKIA[9:]}")\n'
        line = joined.MAX_PREFIXES + 50 + 4
        self.assertIn((line, "aws-access-key-id"), [(f.line, f.detector) for f in findings(text, "p.py")])

    def test_the_reading_adds_nothing_to_a_whole_pem_key(self) -> None:
        key = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(chunks(PEM_BODY * 3, 64)) + "\n-----END PRIVATE KEY-----\n"
        self.assertEqual(joined.cut_tokens(key, default_detector({}).hits), [])

    def test_look_alikes(self) -> None:
        for path, text in BENIGN.items():
            with self.subTest(path=path):
                self.assertEqual(findings(text, path), [])
                self.assertEqual(joined.cut_tokens(text, default_detector({}).hits), [])


BENIGN: dict[str, str] = {
    # Token prefixes listed one a line, and neighbouring constants of a client.
    "prefixes.py": 'PREFIXES = (\n    "ghp_",\n    "gho_",\n    "sk-ant-",\n    "xoxb-",\n    "AKIA",\n)\n',
    "consts.py": 'OAUTH_PREFIX = "sk-ant-oat"\nOAUTH_BETA = "oauth-2025-04-20"\nBETA_HEADER = "anthropic-beta"\n',
    # Test data: a token too short for its format next to another value.
    "fixture.py": ('SECRETS = {\n    "GITHUB_TOKEN": "ghp_realGithubTokenValue1234567890abcd",\n'
                   '    "REGION": "eu-west-1Xb7Q2kPz9LmR4",\n'
                   '    "SENTRY_DSN": "https://publickey-secretpart@o0.ingest.sentry.io/1",\n}\n'),
    "names.py": ('NAMES = (\n    "cache-ghs_",\n    "task_ant_colony_simulation_module_version",\n'
                 '    "sk-",\n    "model_name_v2",\n)\nprefix = "sk-" +\n    model_name\n'),
    # A long hash and base64 test data cut over lines.
    "hashes.py": ('DIGEST = ("3f786850e387550fdab836ed7e6dc881"\n          "de23001b3f786850e387550fdab836ed")\n'
                  'BLOB = ("dGhpcyBpcyBhIHRlc3Qgb2YgYmFzZTY0IGRhdGEg"\n        "c3BsaXQgb3ZlciBsaW5lcw==")\n'),
    # Lock files and go.sum.
    "package-lock.json": ('{\n  "packages": {\n    "node_modules/sk-lib": {\n      "version": "1.0.0",\n'
                          '      "integrity": "sha512-Xq7Kz2Lm9Pw4Rt8Vb3Nc6Hy1Jd5Fs0Ga7Ue2Wi4QmT3rB8Zq7Kx2Lm9'
                          'Pw4Rt8Vb3Nc6Hy1Jd5Fs0Ga7Ue2Wi4QmT3rB8A=="\n    }\n  }\n}\n'),
    "poetry.lock": ('[[package]]\nname = "sk-learn-helpers"\nversion = "0.1.0"\nfiles = [\n'
                    '    {file = "sk_learn_helpers-0.1.0.tar.gz",\n'
                    '     hash = "sha256:3f786850e387550fdab836ed7e6dc881de23001b3f786850e387550fdab836ed"},\n]\n'),
    "go.sum": ("github.com/aws/aws-sdk-go v1.44.0 h1:Xq7Kz2Lm9Pw4Rt8Vb3Nc6Hy1Jd5Fs0Ga7Ue2Wi4QmT3=\n"
               "github.com/aws/aws-sdk-go v1.44.0/go.mod h1:Qm3Zr8Tn5Lm2Xv7Kc4Bp9Hd6Fs1Jg0Ya5UeQ2Wi4=\n"),
    # Minified JS with a prefix at a line's end, and URLs cut over lines.
    "app.min.js": 'var e="sk-"+\nt.key,n="xoxb-"+\nr.id;function a(o){return"ghp_"+\no}\n',
    "urls.py": ('DOCS = ("https://api.slack.com/docs/xoxb-"\n        "tokens-and-scopes")\n'
                'AWS = ("https://docs.aws.amazon.com/IAM/AKIA"\n       "/keys.html")\n'),
    "doc.md": ("Keys look like `AKIAIOSFODNN7EXAMPLE`; a GitHub token starts with ghp_\n"
               "followed by 36 letters and digits.\n"),
}


if __name__ == "__main__":
    unittest.main()
