"""What a set of commits adds: added lines with their line numbers, messages, names, binaries.

The parser is checked on hand-written ``git log`` output and on the output of the real git for
a small repository made in a temporary folder (no network).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from bot_bottle.sidecar.git_gate.patch import Piece, header_path, parse_log, parse_patch, read_pieces
from tests._requires import requires

SHA = "1" * 40


class ParseTest(unittest.TestCase):
    def test_only_added_lines_with_new_line_numbers(self) -> None:
        patch = (
            "diff --git a/f.txt b/f.txt\nindex 1..2 100644\n--- a/f.txt\n+++ b/f.txt\n"
            "@@ -3 +3,2 @@\n-old\n+new three\n+new four\n@@ -10,0 +12 @@\n+twelve\n"
        )
        pieces = list(parse_patch(SHA, patch))
        self.assertEqual(
            pieces,
            [Piece(SHA, "lines", "new three\nnew four", "f.txt", 3), Piece(SHA, "lines", "twelve", "f.txt", 12),
             Piece(SHA, "path", "f.txt", "f.txt")],
        )

    def test_deleted_file_adds_nothing_and_no_name(self) -> None:
        patch = "diff --git a/gone b/gone\ndeleted file mode 100644\n--- a/gone\n+++ /dev/null\n@@ -1 +0,0 @@\n-secret\n"
        self.assertEqual(list(parse_patch(SHA, patch)), [])

    def test_combined_diff_keeps_only_lines_in_no_parent(self) -> None:
        patch = "diff --cc f\nindex 1,2..3\n--- a/f\n+++ b/f\n@@@ -1,3 -1,3 +1,5 @@@\n +z\n  a\n  b\n+ side\n++evil\n"
        pieces = list(parse_patch(SHA, patch))
        self.assertEqual(pieces[0], Piece(SHA, "lines", "evil", "f", 5))

    def test_binary_file_is_a_piece(self) -> None:
        patch = "diff --git a/x.bin b/x.bin\nnew file mode 100644\nindex 0..1\nBinary files /dev/null and b/x.bin differ\n"
        self.assertEqual(list(parse_patch(SHA, patch))[0], Piece(SHA, "binary", "", "x.bin"))

    def test_header_paths(self) -> None:
        self.assertEqual(header_path("diff --git a/a b/c b/a b/c"), "a b/c")
        self.assertEqual(header_path('diff --git "a/we ird/t\\tb\\"q" "b/we ird/t\\tb\\"q"'), 'we ird/t\tb"q')
        self.assertEqual(header_path('diff --git "a/\\303\\274.txt" "b/\\303\\274.txt"'), "ü.txt")
        self.assertEqual(header_path("diff --cc src/m.py"), "src/m.py")

    def test_log_headers(self) -> None:
        out = (f"\x00\x00bb-commit {SHA}\x00A <a@x>\nC <c@x>\x00subject\n\nbody\n\x00\n\n"
               "diff --git a/f b/f\nnew file mode 100644\n--- /dev/null\n+++ b/f\n@@ -0,0 +1 @@\n+x\n")
        kinds = [(p.kind, p.text) for p in parse_log(out)]
        self.assertEqual(kinds, [("identity", "A <a@x>\nC <c@x>"), ("message", "subject\n\nbody\n"), ("lines", "x"), ("path", "f")])


@requires(shutil.which("git") is not None, "git")
class RealGitTest(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmp.cleanup)
        self.dir = Path(self._tmp.name)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.dir), "GIT_CONFIG_NOSYSTEM": "1",
                    "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@x",
                    "GIT_DIR": str(self.dir / "r" / ".git")}
        self.git("init", "-q", "-b", "main", str(self.dir / "r"))

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.dir / "r" if (self.dir / "r").exists() else self.dir, env=self.env,
                              capture_output=True, text=True, check=True).stdout.strip()

    def commit(self, files: dict[str, bytes | None], message: str) -> str:
        for name, content in files.items():
            path = self.dir / "r" / name
            if content is None:
                self.git("rm", "-q", name)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            self.git("add", name)
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def test_pieces_of_real_commits(self) -> None:
        first = self.commit({"a.txt": b"one\ntwo\n", "bin.dat": b"\x00\x01AKIA-in-binary"}, "first")
        second = self.commit({"a.txt": b"one\nTWO\nthree\n", "dir/ü new.txt": b"x\n", "bin.dat": None}, "second\n\nbody line")
        pieces = list(read_pieces([first, second], env=self.env))
        by_commit: dict[str, list[Piece]] = {}
        for piece in pieces:
            by_commit.setdefault(piece.commit, []).append(piece)
        firsts = {(p.kind, p.path, p.line, p.text) for p in by_commit[first]}
        self.assertIn(("lines", "a.txt", 1, "one\ntwo"), firsts)
        self.assertIn(("binary", "bin.dat", None, "\x00\x01AKIA-in-binary"), firsts)
        self.assertIn(("message", None, 1, "first\n"), firsts)
        seconds = {(p.kind, p.path, p.line, p.text) for p in by_commit[second]}
        self.assertIn(("lines", "a.txt", 2, "TWO\nthree"), seconds)
        self.assertIn(("path", "dir/ü new.txt", None, "dir/ü new.txt"), seconds)
        self.assertNotIn("bin.dat", {p.path for p in by_commit[second]})  # deleted: nothing added

    def test_merge_adds_only_its_own_resolution(self) -> None:
        self.commit({"f": b"a\nb\n"}, "base")
        self.git("checkout", "-q", "-b", "side")
        self.commit({"f": b"a\nb\nside\n"}, "side")
        self.git("checkout", "-q", "main")
        self.commit({"f": b"z\na\nb\n"}, "main")
        subprocess.run(["git", "merge", "-q", "--no-commit", "side"], cwd=self.dir / "r", env=self.env, capture_output=True)
        (self.dir / "r" / "f").write_text("z\na\nb\nside\nevil\n")
        self.git("add", "f")
        self.git("commit", "-q", "-m", "merge")
        merge = self.git("rev-parse", "HEAD")
        lines = [p for p in read_pieces([merge], env=self.env) if p.kind == "lines"]
        self.assertEqual([(p.text, p.line) for p in lines], [("evil", 5)])


if __name__ == "__main__":
    unittest.main()
