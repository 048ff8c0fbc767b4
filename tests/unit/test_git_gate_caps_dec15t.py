"""Push-scan gap: decoys past the caps of the reading of cut tokens hid a real cut after them.

``joined.cut_tokens`` reads at most ``MAX_CANDIDATES`` places a cut may start (across lines, and
strings joined on one line) and ``CUT_BUDGET`` characters of joins in one text. Past a cap it
stopped silently, so thousands of decoy lines (``x = "ghp_"``) followed by a real cut passed.
Now a cap reached with text left unread is a ``scan-limit`` finding on the line reading stopped
at (the push is refused); ordinary big files still read clean.
"""

from __future__ import annotations

import inspect
import unittest

from bot_bottle.sidecar.git_gate import joined
from bot_bottle.sidecar.git_gate.piece import Piece
from bot_bottle.sidecar.git_gate.scan import default_detector, scan

GHP = "ghp_" + "R7bXk2Lw9Tq4Zm8Nc3Vy6Hd1Fs5Jg0Pa7Ue2W"
COMMIT = "c" * 40
DECOYS = joined.MAX_CANDIDATES + 500


def findings(text: str) -> list[tuple[int | None, str]]:
    return [(f.line, f.detector) for f in scan([Piece(COMMIT, "lines", text, path="t.py", line=1)],
                                              default_detector({}))]


def refused(text: str) -> bool:
    return any(d.startswith("scan-limit") or d == "github-token" for _, d in findings(text))


class CapsRefuseTest(unittest.TestCase):
    def test_line_starts_cap(self) -> None:
        decoys = 'x = "ghp_"\n' * DECOYS
        text = decoys + f't = "{GHP[:12]}" \\\n    "{GHP[12:]}"\n'
        found = findings(text)
        self.assertTrue(refused(text), found)
        limits = [(line, d) for line, d in found if d.startswith("scan-limit")]
        self.assertEqual(1, len(limits), found)
        self.assertEqual(joined.MAX_CANDIDATES + 1, limits[0][0])  # where reading stopped
        self.assertIn(str(joined.MAX_CANDIDATES), limits[0][1])

    def test_partial_starts_cap(self) -> None:
        # A prefix cut itself ("gh" ending a line) first, then decoys ending in "gh" after it.
        text = f't = ("gh"\n     "{GHP[2:]}")\n' + 'x = "gh"\n' * DECOYS
        self.assertTrue(refused(text), findings(text))

    def test_one_line_chains_cap(self) -> None:
        decoys = "".join(f'x = "ghp_" "a{i}"\n' for i in range(DECOYS))
        text = decoys + f't = "{GHP[:10]}" "{GHP[10:]}"\n'
        found = findings(text)
        self.assertTrue(refused(text), found)
        self.assertIn(joined.MAX_CANDIDATES + 1,
                      [line for line, d in found if d.startswith("scan-limit")])

    def test_cut_budget(self) -> None:
        body = "-" * 290
        count = joined.CUT_BUDGET // 500
        self.assertLess(count, joined.MAX_CANDIDATES)  # the budget is reached before the starts' cap
        decoys = f'a = "ghp_{body}" +\n    "x"\n' * count
        text = decoys + f't = "{GHP[:12]}" +\n    "{GHP[12:]}"\n'
        found = findings(text)
        self.assertTrue(refused(text), found)
        self.assertTrue(any(d.startswith("scan-limit") and str(joined.CUT_BUDGET) in d for _, d in found), found)

    def test_join_of_two_names_after_many_uses(self) -> None:
        # Two assignments with code between, joined by name after many uses of the second name:
        # the places of the name looked at were capped, the join after them was not read.
        head = f'a = "ghp_R7bXk2Lw9"\nimport os\n\nb = "{GHP[13:]}"\n'
        for uses in (0, 40, 200):
            with self.subTest(uses=uses):
                self.assertIn((4, "github-token"), findings(head + "use(b)\n" * uses + "token = a + b\n"))
                self.assertIn((4, "github-token"), findings(head + "use(b)\n" * uses + 'echo "$a$b"\n'))
        # Names used but never joined: the halves are two values.
        self.assertEqual([], findings(head + "use(b)\n" * 40 + "print(xa + b, a_b + b)\n"))

    def test_cut_before_the_decoys_is_still_named(self) -> None:
        text = f't = "{GHP[:12]}" \\\n    "{GHP[12:]}"\n' + 'x = "ghp_"\n' * DECOYS
        self.assertIn((2, "github-token"), findings(text))  # the line holding most of it


class RealTextClean(unittest.TestCase):
    def test_big_stdlib_text(self) -> None:
        import argparse, email.message, json.decoder, typing, unittest.case  # noqa: E401
        text = "".join(inspect.getsource(m) for m in (argparse, typing, email.message, json.decoder, unittest.case))
        self.assertGreater(text.count("\n"), joined.MAX_CANDIDATES)
        self.assertEqual([], [d for _, d in findings(text) if d.startswith("scan-limit")])

    def test_many_ordinary_prefix_like_words(self) -> None:
        lines = [f'task-{i} = risk-{i} + disk-{i}  # ask-{i}\n' for i in range(3000)]
        lines += [f'words = ["sk", "gh", "ya", "{i}"]\n' for i in range(1500)]
        lines += [f'path = "a" + "b{i}" + "c"\n' for i in range(5000)]
        self.assertEqual([], findings("".join(lines)))

    def test_few_decoys_are_no_limit(self) -> None:
        text = 'x = "ghp_"\n' * 100 + "y = 1\n"
        self.assertEqual([], findings(text))


if __name__ == "__main__":
    unittest.main()
