"""What a set of commits adds: added lines with their line numbers, messages, names, binaries.

The parser is checked on hand-written ``git log`` output and on the output of the real git for
a small repository made in a temporary folder (no network).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from bot_bottle.sidecar.git_gate.patch import Piece, header_path, parse_log, parse_patch, read_pieces
from bot_bottle.sidecar.git_gate.scan import PatternDetector, scan
from tests._requires import requires

# Seeded: random bytes now and then hold a stretch that reads as text, and an unseeded run
# could then flake on an assertion of no finding.
NOISE = random.Random(6464)

SHA = "1" * 40
AWS = "AKIA" + "Z7QK4M2XW9RTB3PL"
GHP = "ghp_" + "q8Yt3LmN0pR5sV2wX7zA9cE4gJ6kB1dF0hUi"
PEM = "-----BEGIN " + "OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END " + "OPENSSH PRIVATE KEY-----\n"


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

    def write_object(self, kind: str, data: bytes) -> str:
        return subprocess.run(["git", "hash-object", "-t", kind, "-w", "--stdin"], cwd=self.dir / "r", env=self.env,
                              input=data, capture_output=True, check=True).stdout.decode().strip()

    def raw_commit(self, message: bytes, headers: bytes = b"") -> str:
        """A commit on top of HEAD (made first if need be) with the same tree, built byte by byte."""
        if subprocess.run(["git", "rev-parse", "-q", "--verify", "HEAD"], cwd=self.dir / "r", env=self.env,
                          capture_output=True).returncode != 0:
            self.commit({"README": b"x\n"}, "base")
        tree, head = self.git("rev-parse", "HEAD^{tree}"), self.git("rev-parse", "HEAD")
        ident = b"T <t@x> 1700000000 +0000"
        data = (b"tree " + tree.encode() + b"\nparent " + head.encode() + b"\nauthor " + ident + b"\ncommitter " + ident
                + b"\n" + headers + b"\n" + message)
        return self.write_object("commit", data)

    def findings(self, commits: list[str]) -> list[str]:
        return [f.describe() for f in scan(read_pieces(commits, env=self.env), PatternDetector())]

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

    def test_names_of_empty_folders_are_pieces(self) -> None:
        # git log shows files only: a folder holding nothing (a tree entry for the empty tree,
        # made with plumbing) appears nowhere in it, however deep or in a merge.
        base = self.commit({"README": b"x\n"}, "base")
        empty = self.write_object("tree", b"")

        def tree(*entries: tuple[str, str, str]) -> str:
            text = "".join(f"{mode} {'tree' if mode == '040000' else 'blob'} {oid}\t{name}\n" for mode, oid, name in entries)
            return subprocess.run(["git", "mktree"], cwd=self.dir / "r", env=self.env, input=text, text=True,
                                  capture_output=True, check=True).stdout.strip()

        inner = tree(("040000", empty, f"key-{AWS}"))
        top = tree(("100644", self.git("rev-parse", "HEAD:README"), "README"), ("040000", empty, f"k {GHP}"),
                   ("040000", inner, "outer"))
        commit = self.git("commit-tree", top, "-p", base, "-m", "docs")
        pieces = {p.text for p in read_pieces([commit], env=self.env) if p.kind == "path"}
        self.assertEqual(pieces, {f"k {GHP}", f"outer/key-{AWS}"})
        found = self.findings([commit])
        self.assertIn(f'commit {commit[:12]}: file name "k [redacted]": detector github-token', found)
        self.assertIn(f"commit {commit[:12]}: file name outer/key-[redacted]: detector aws-access-key-id", found)
        # A merge bringing one in: found too, against its first parent.
        merge = self.git("commit-tree", top, "-p", base, "-p", commit, "-m", "merge")
        self.assertIn(f"k {GHP}", {p.text for p in read_pieces([merge], env=self.env) if p.kind == "path"})

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

    def test_a_carriage_return_inside_a_line_hides_nothing(self) -> None:
        first = self.commit({"cfg.txt": f"token = x\r{AWS}\n".encode()}, "cfg")
        self.assertIn(f"commit {first[:12]}: file cfg.txt line 1: detector aws-access-key-id", self.findings([first]))
        # A forged diff header after a CR must not end the file: the key block below it is still seen.
        second = self.commit({"id_key": b"#\rdiff --git a/x b/x\n" + PEM.encode()}, "key")
        self.assertIn(f"commit {second[:12]}: file id_key line 2: detector private-key", self.findings([second]))

    def test_carriage_return_only_line_endings(self) -> None:
        mac = self.commit({"mac.txt": ("header\r" + PEM.replace("\n", "\r")).encode() + b"\n"}, "mac")
        self.assertIn(f"commit {mac[:12]}: file mac.txt line 1: detector private-key", self.findings([mac]))

    def test_a_forged_log_marker_in_a_file_hides_nothing(self) -> None:
        # NULs after git's first 8000 bytes: the file is still diffed as text, NULs and all.
        body = b"# padding\n" * 900 + b"x\x00\x00bb-commit 0\x00\x00\x00\n" + f"key {AWS}\n".encode()
        new = self.commit({"settings.conf": body}, "settings")
        self.assertIn(f"commit {new[:12]}: file settings.conf line 902: detector aws-access-key-id", self.findings([new]))

    def test_binary_file_with_a_non_utf8_name_is_read_by_object_id(self) -> None:
        name = b"data-\xff.bin"
        (self.dir / "r" / os.fsdecode(name)).write_bytes(b"\x00\x01binary\n" + f"k={AWS}\n".encode())
        subprocess.run(["git", "add", "-A"], cwd=self.dir / "r", env=self.env, check=True)
        self.git("commit", "-q", "-m", "data")
        new = self.git("rev-parse", "HEAD")
        self.assertIn(f'commit {new[:12]}: binary file "data-\ufffd.bin": detector aws-access-key-id', self.findings([new]))

    def test_an_unreadable_binary_refuses_instead_of_reading_as_empty(self) -> None:
        from bot_bottle.sidecar.git_gate.objects import ObjectError
        from bot_bottle.sidecar.git_gate.patch import binary_pieces

        for blob in (None, "0" * 40, "abc", "1" * 40):
            with self.subTest(blob=blob), self.assertRaises(ObjectError):
                list(binary_pieces(Piece(SHA, "binary", "", "x.bin", blob=blob), cwd=None, env=self.env))

    def test_the_whole_of_a_large_binary_is_scanned_in_bounded_chunks(self) -> None:
        from bot_bottle.sidecar.git_gate import objects

        size = 3 * objects.CHUNK + 16
        data = bytearray(size)
        data[-40:-20] = AWS.encode()  # past the old 10 MiB-style limit: the end of the blob
        cut = 2 * objects.CHUNK - 10  # a token across a chunk boundary
        data[cut:cut + len(GHP)] = GHP.encode()
        new = self.commit({"big.bin": bytes(data)}, "big")
        pieces = [p for p in read_pieces([new], env=self.env) if p.kind == "binary"]
        self.assertTrue(all(len(p.text) <= objects.CHUNK + objects.OVERLAP for p in pieces))
        found = {f.detector for f in scan(pieces, PatternDetector())}
        self.assertEqual(found, {"aws-access-key-id", "github-token"})

    def test_utf16_text_is_also_read_as_utf16(self) -> None:
        for codec in ("utf-16", "utf-16-le", "utf-16-be"):
            with self.subTest(codec=codec):
                new = self.commit({f"{codec}.txt": f"x\ntoken={GHP}\n".encode(codec)}, codec)
                self.assertIn(f"commit {new[:12]}: binary file {codec}.txt: detector github-token", self.findings([new]))

    def test_every_header_of_a_commit_object_is_scanned(self) -> None:
        note = self.raw_commit(b"msg\n", f"x-note {GHP}\n".encode())
        self.assertIn(f"commit {note[:12]}: commit header x-note: detector github-token", self.findings([note]))
        sig = "gpgsig " + PEM.rstrip("\n").replace("\n", "\n ") + "\n"
        signed = self.raw_commit(b"signed\n", sig.encode())
        self.assertIn(f"commit {signed[:12]}: commit header gpgsig: detector private-key", self.findings([signed]))

    def test_identity_lines_are_scanned_whole(self) -> None:
        self.raw_commit(b"base\n")
        tree, head = self.git("rev-parse", "HEAD^{tree}"), self.git("rev-parse", "HEAD")
        data = (f"tree {tree}\nparent {head}\nauthor T <t@x> {AWS} 1700000000 +0000\n"
                "committer T <t@x> 1700000000 +0000\n\nm\n").encode()
        odd = self.write_object("commit", data)
        self.assertIn(f"commit {odd[:12]}: author/committer name or email: detector aws-access-key-id", self.findings([odd]))

    def test_the_raw_message_is_scanned_past_a_nul_and_in_its_declared_encoding(self) -> None:
        nul = self.raw_commit(b"fix typo\n\x00" + f"{AWS}\n".encode())
        self.assertIn(f"commit {nul[:12]}: commit message line 2: detector aws-access-key-id", self.findings([nul]))
        # ASCII bytes in a message declared UTF-16LE: git log would show them re-encoded, mangled.
        wide = self.raw_commit(f"deploy key {AWS}\n".encode(), b"encoding UTF-16LE\n")
        self.assertIn(f"commit {wide[:12]}: commit message line 1: detector aws-access-key-id", self.findings([wide]))
        real = self.raw_commit(f"deploy {GHP}\n".encode("utf-16-le"), b"encoding UTF-16LE\n")
        self.assertIn(f"commit {real[:12]}: commit message line 1: detector github-token", self.findings([real]))

    def test_replace_refs_are_ignored(self) -> None:
        decoy = self.raw_commit(b"decoy\n")  # on the same parent as the secret commit
        secret = self.commit({"creds.txt": f"{AWS}\n".encode()}, "add config")
        self.git("update-ref", f"refs/replace/{secret}", decoy)
        self.assertIn(f"commit {secret[:12]}: file creds.txt line 1: detector aws-access-key-id", self.findings([secret]))



def _zip(members: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buf.getvalue()


def _tgz(members: dict[str, bytes]) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buf.getvalue()


class PackedFilesTest(unittest.TestCase):
    """Compressed files and archives a push adds are opened: what is inside is scanned too."""

    setUp = RealGitTest.setUp
    git = RealGitTest.git
    commit = RealGitTest.commit
    findings = RealGitTest.findings

    def test_a_secret_in_a_gzipped_file_is_found(self) -> None:
        import gzip

        new = self.commit({"k.gz": gzip.compress(f"key={AWS}\n{PEM}".encode())}, "gz")
        found = self.findings([new])
        self.assertIn(f"commit {new[:12]}: decompressed content of file k.gz: detector aws-access-key-id", found)
        self.assertIn(f"commit {new[:12]}: decompressed content of file k.gz: detector private-key", found)

    def test_a_secret_in_a_zip_or_tgz_member_names_the_member(self) -> None:
        new = self.commit({
            "k.zip": _zip({"readme.md": b"hello\n", "creds.txt": f"{GHP}\n".encode()}),
            "fixtures/site.tar.gz": _tgz({"site/index.html": b"<p>hi</p>\n", "site/conf/.env": f"AWS={AWS}\n".encode()}),
        }, "archives")
        found = self.findings([new])
        self.assertIn(f"commit {new[:12]}: file k.zip, archive member creds.txt: detector github-token", found)
        self.assertIn(
            f"commit {new[:12]}: file fixtures/site.tar.gz, archive member site/conf/.env: detector aws-access-key-id",
            found,
        )

    def test_an_archive_inside_an_archive_is_opened(self) -> None:
        import gzip

        inner = _zip({"deep/key.txt": f"{AWS}\n".encode()})
        new = self.commit({"outer.tgz": _tgz({"lib/inner.jar": inner, "x.gz": gzip.compress(GHP.encode())})}, "nested")
        found = self.findings([new])
        self.assertIn(f"commit {new[:12]}: file outer.tgz, archive member lib/inner.jar: detector aws-access-key-id",
                      found)
        self.assertIn(f"commit {new[:12]}: file outer.tgz, archive member x.gz: detector github-token", found)

    def test_a_member_name_carrying_a_secret_is_a_finding_and_never_shown(self) -> None:
        new = self.commit({"n.zip": _zip({f"{GHP}.txt": f"{AWS}\n".encode(), "a\x1b[2Jb": f"{AWS}\n".encode()})}, "n")
        found = self.findings([new])
        self.assertIn(f"commit {new[:12]}: name of a member of archive n.zip: detector github-token", found)
        self.assertIn(f"commit {new[:12]}: file n.zip, archive member (name withheld: it matches a detector):"
                      " detector aws-access-key-id", found)
        self.assertIn(f"commit {new[:12]}: file n.zip, archive member (unusual name): detector aws-access-key-id",
                      found)
        self.assertNotIn(GHP, "\n".join(found))
        self.assertNotIn("\x1b", "\n".join(found))

    def test_a_compressed_file_git_takes_for_text_is_opened_too(self) -> None:
        import zlib

        # No NUL byte: git diffs it as text (bytes that are not UTF-8 are lost from that view).
        for nonce in range(10000):
            data = zlib.compress(f"{nonce}:{GHP}".encode())
            if b"\x00" not in data and b"\n" not in data:
                break
        new = self.commit({"blob.z": data}, "z")
        self.assertIn(f"commit {new[:12]}: decompressed content of file blob.z: detector github-token",
                      self.findings([new]))

    def test_benign_archives_of_a_realistic_size_pass(self) -> None:
        rng = random.Random(7)
        # A source-tree fixture: 1500 files, about 9 MiB of text; a zip of 40 "images" (8 MiB).
        tree = {f"pkg/mod{i}/file{i}.py": ("\n".join(f"value_{i}_{j} = {rng.random()!r}" for j in range(200))).encode()
                for i in range(1500)}
        images = {f"img/{i}.png": b"\x89PNG\r\n\x1a\n" + rng.randbytes(200 * 1024) for i in range(40)}
        new = self.commit({"tests/fixtures/tree.tar.gz": _tgz(tree), "assets/images.zip": _zip(images)}, "fixtures")
        self.assertEqual(self.findings([new]), [])

    def test_a_decompression_bomb_is_refused_naming_the_limit(self) -> None:
        import gzip

        new = self.commit({"bomb.gz": gzip.compress(bytes(70 * 1024 * 1024))}, "bomb")
        self.assertEqual(self.findings([new]), [
            f"commit {new[:12]}: compressed file or archive bomb.gz (not read whole): detector scan-limit"
            " (it decompresses to more than 64 MiB, the scan limit)"
        ])

    def test_too_many_entries_too_deep_damaged_or_too_big_is_refused(self) -> None:
        import gzip
        from unittest import mock

        from bot_bottle.sidecar.git_gate import packed

        deep = b"x"
        for _ in range(6):
            deep = gzip.compress(deep)
        good = gzip.compress(b"just text\n" * 100)
        new = self.commit({
            "many.zip": _zip({f"f{i}": b"x" for i in range(2001)}),
            "deep.gz": deep,
            "cut.gz": good[: len(good) // 2],
            "bad.zip": b"PK\x03\x04" + b"\x00" * 100,
        }, "limits")
        found = self.findings([new])
        big = self.commit({"big.tgz": _tgz({"a.bin": NOISE.randbytes(1024 * 1024 + 1)})}, "big")
        with mock.patch.object(packed, "MAX_FILE", 1024 * 1024):
            self.assertEqual(self.findings([big]), [
                f"commit {big[:12]}: compressed file or archive big.tgz (not read whole): detector scan-limit"
                " (the file is larger than 1 MiB, the most the gate opens)"
            ])
        place = f"commit {new[:12]}: compressed file or archive"
        self.assertIn(f"{place} many.zip (not read whole): detector scan-limit"
                      " (archive with too many entries: more than 2000 in one archive)", found)
        self.assertIn(f"{place} deep.gz (not read whole): detector scan-limit"
                      " (compression or archives nested too deeply: more than 4 layers)", found)
        self.assertIn(f"{place} cut.gz (not read whole): detector scan-limit"
                      " (its gzip data could not be read whole (damaged or cut short))", found)
        self.assertIn(f"{place} bad.zip (not read whole): detector scan-limit (archive could not be read)", found)

if __name__ == "__main__":
    unittest.main()
