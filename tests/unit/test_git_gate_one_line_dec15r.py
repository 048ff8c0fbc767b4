"""Push-scan gap: a well-known token format cut on ONE line of code.

String literals joined on the line they stand on (Python/C adjacent literals, ``+``, PHP/Perl
``.``, Lua ``..``, VB ``&``, SQL ``||``), an f-string's or template's embedded literal
(``f"ghp_{'...'}"``, ``${"..."}``), and shell words joining two quoted assignments made on one
line (``A="ghp_..."; B="..."; echo "$A$B"``) each passed: the detectors saw no piece whole, and
the reading of cut tokens looked only at pieces on neighbouring lines. Such lines are now read
joined. Test fixtures cut into short pieces in separate assignments (dec12d) and lists of token
prefixes still pass.
"""

from __future__ import annotations

import unittest

from bot_bottle.sidecar.git_gate import joined
from bot_bottle.sidecar.git_gate.scan import default_detector
from tests._requires import requires
from tests.unit.git_gate_repo_helper import PushRepos, push_repos
# The tokens and the scan of a changed text, as the cut-across-lines tests have them.
from tests.unit.test_git_gate_cuts_dec15e import AKIA, ANT, GHP, HAS_GIT, XOXB, YA29, found


class JoinedLiteralsTest(unittest.TestCase):
    def test_implicit_concatenation(self) -> None:
        for cut in (2, 3, 4, 10, 30):
            with self.subTest(cut=cut):
                self.assertIn((1, "github-token"), found(f't = "{GHP[:cut]}" "{GHP[cut:]}"\n'))
        self.assertIn((2, "github-token"), found(f'x = 1\nt = ("gh" "p_" "{GHP[4:20]}" "{GHP[20:]}")\n'))

    def test_c_adjacent_literals(self) -> None:
        self.assertIn((1, "slack-token"), found(f'const char *k = "{XOXB[:12]}" "{XOXB[12:]}";\n', "k.c"))

    def test_each_joining_operator(self) -> None:
        for path, line in (("t.js", f'const t = "{GHP[:10]}" + "{GHP[10:]}";\n'),
                           ("t.php", f"$t = '{GHP[:8]}' . '{GHP[8:]}';\n"),
                           ("t.pl", f'my $t = "{GHP[:8]}"."{GHP[8:]}";\n'),
                           ("t.lua", f'local t = "ghp_" .. "{GHP[4:]}"\n'),
                           ("t.vb", f'Dim t = "{GHP[:9]}" & "{GHP[9:]}"\n'),
                           ("t.sql", f"SELECT '{GHP[:9]}' || '{GHP[9:]}';\n"),
                           ("t.py", f"t = r'{GHP[:9]}' + b'{GHP[9:]}'\n")):
            with self.subTest(path=path):
                self.assertIn((1, "github-token"), found(line, path))

    def test_other_formats(self) -> None:
        self.assertIn((1, "aws-access-key-id"), found(f'k = "AKIA" "{AKIA[4:]}"\n'))
        self.assertIn((1, "aws-access-key-id"), found(f'k = "AK" + "{AKIA[2:]}"\n', "k.js"))
        self.assertIn((1, "anthropic-api-key"), found(f'k = "{ANT[:20]}" + "{ANT[20:]}"\n'))
        self.assertIn((1, "google-oauth-token"), found(f'k = "{YA29[:12]}" + "{YA29[12:]}"\n'))

    def test_embedded_literals(self) -> None:
        self.assertIn((1, "github-token"), found(f"t = f\"ghp_{{'{GHP[4:]}'}}\"\n"))
        self.assertIn((1, "github-token"), found(f"t = f\"{GHP[:9]}{{'{GHP[9:20]}'}}{{'{GHP[20:]}'}}\"\n"))
        self.assertIn((1, "github-token"), found(f'const t = `gh${{"{GHP[2:]}"}}`;\n', "t.js"))

    def test_code_in_a_json_string(self) -> None:
        # A notebook's cell: the code's quotes are escaped.
        text = '{"cells": [{"source": ["t = \\"' + GHP[:10] + '\\" + \\"' + GHP[10:] + '\\"\\n"]}]}\n'
        self.assertIn((1, "github-token"), found(text, "n.ipynb"))

    def test_a_comma_join_of_a_random_half(self) -> None:
        self.assertIn((1, "github-token"), found(f't = "".join(["{GHP[:10]}", "{GHP[10:]}"])\n'))

    def test_reported_on_its_line_among_others(self) -> None:
        text = f'import os\n\n\nKEY = "{AKIA[:6]}" "{AKIA[6:]}"\nprint(KEY)\n'
        self.assertEqual(found(text), [(4, "aws-access-key-id")])


class ShellQuotedHalvesTest(unittest.TestCase):
    def test_quoted_halves_assigned_on_one_line(self) -> None:
        for text in (f'A="{GHP[:10]}"; B="{GHP[10:]}"; echo "${{A}}${{B}}"\n',
                     f"A='{GHP[:10]}' B='{GHP[10:]}'\ncurl -H \"$A$B\" x\n",
                     f'A="gh"; B="{GHP[2:]}"; echo "$A$B"\n'):
            with self.subTest(text=text[:12]):
                self.assertIn("github-token", [d for _, d in found(text, "t.sh")])

    def test_short_quoted_pieces_still_pass(self) -> None:
        # dec12d: quoted pieces under twelve characters in separate assignments are test fixtures.
        parts = [GHP[i:i + 8] for i in range(0, len(GHP), 8)]
        text = "; ".join(f'P{i}="{p}"' for i, p in enumerate(parts)) + '\necho "' + "".join(
            f"$P{i}" for i in range(len(parts))) + '"\n'
        self.assertEqual(found(text, "t.sh"), [])


class LookAlikeTest(unittest.TestCase):
    def test_benign(self) -> None:
        for path, text in BENIGN.items():
            with self.subTest(path=path):
                self.assertEqual(found(text, path), [])
                self.assertEqual(joined.cut_tokens(text, default_detector({}).hits), [])

    def test_fixture_pieces_in_separate_assignments_still_pass(self) -> None:
        parts = [GHP[i:i + 8] for i in range(0, len(GHP), 8)]
        text = "; ".join(f'p{i} = "{p}"' for i, p in enumerate(parts)) + "\nT = " + " + ".join(
            f"p{i}" for i in range(len(parts))) + "\n"
        self.assertEqual(found(text), [])

    def test_many_joined_prefixes_are_read_within_bounds(self) -> None:
        text = ('x = ' + '"gh" "p_" ' * 20000 + '\n') * 5
        self.assertEqual(found(text), [])
        text += f't = "{GHP[:10]}" "{GHP[10:]}"\n'
        self.assertIn((6, "github-token"), found(text))


BENIGN: dict[str, str] = {
    "prefixes.py": 'PREFIXES = ("ghp_", "gho_", "ghs_", "sk-ant-", "xoxb-", "AKIA", "ya29.")\n',
    "names.py": ('name = "sk-" + "learn"\nkey = "gh" "pages"\nurl = "https://" + "github.com/" + "x"\n'
                 'MSG = ("AKIA" "-style keys are redacted")\nfmt = "ya29." + "example.com"\n'),
    "fixture.py": 'T = "ghp_" + "x" * 36\nU = "sk-" + "test"\nV = "AKIA" + "EXAMPLE"\n',
    "list.py": 'PARTS = ["ghp_R7bX", "documentation", "k2Lw9Tq4"]\nfields = ("AKIA", "secret_access_key_id_name")\n',
    "fstr.py": "label = f\"ghp_{name}\"\nmsg = f\"sk-{'ant'}\"\nx = f\"{'a'}{'b'}\"\n",
    "join.js": 'const p = "xoxb-" + team + "-" + user;\nconst h = "gh" + "p_" + suffix;\n',
    "hash.php": "$h = 'sha256:' . '3f786850e387550fdab836ed7e6dc881de23001b3f786850e387550fdab836ed';\n",
    "env.sh": 'A="gh"; B="pages"; echo "$A$B"\nC="sk-"; D="learn_model"; echo "$C$D"\n',
}


@requires(HAS_GIT, "git")
class OneLinePushTest(unittest.TestCase):
    """Real pushes through the hook: each passed before."""

    def setUp(self) -> None:
        self.repos: PushRepos = push_repos(self)
        self.detector = default_detector({})

    def test_a_token_cut_on_one_line_is_refused(self) -> None:
        new = self.repos.commit({"t.php": f"<?php\n$t = '{GHP[:8]}' . '{GHP[8:]}';\n"}, "add")
        code, out = self.repos.push_main(new, self.detector)
        self.assertEqual(code, 1, out)
        self.assertIn(f"commit {new[:12]}: file t.php line 2: detector github-token", out)
        for part in (GHP, GHP[8:]):
            self.assertNotIn(part, out)
        self.assertNotEqual(self.repos.upstream_rev(), new)

    def test_look_alikes_push_clean(self) -> None:
        new = self.repos.commit(dict(BENIGN), "benign")
        code, out = self.repos.push_main(new, self.detector)
        self.assertEqual(code, 0, out)


if __name__ == "__main__":
    unittest.main()
