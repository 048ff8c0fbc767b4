"""Pushes an agent could use to carry a token or a bottle secret past the push scan, on a real
(temporary, local) mirror: each one is rejected and nothing goes upstream.

- ASCII stored as UTF-16 or UTF-32 in a short run among other bytes: a binary asset, a text file
  past its first 8000 bytes (git looks no further to call a file binary, and diffs the rest as
  text lines with NULs in them), a commit or tag message that is not wholly UTF-16;
- a bottle secret with non-ASCII letters written in a legacy encoding (Latin-1) in a text file or
  a file name;
- a commit message in an encoding git (iconv) re-encodes and Python has no codec for (IBM1047);
- a compressed file git diffs as text, changed by a later commit of the same push that keeps its
  first line: the first line is what told the gate to open it.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import unittest
import zlib

from bot_bottle.sidecar.git_gate.patch import read_pieces
from bot_bottle.sidecar.git_gate.scan import PatternDetector, scan
from bot_bottle.sidecar.dlp.wide import wide_runs
from tests._requires import requires
from tests.unit.git_gate_repo_helper import push_repos

GHP = "ghp_" + "q8Yt3LmN0pR5sV2wX7zA9cE4gJ6kB1dF0hUi"
AWS = "AKIA" + "Z7QK4M2XW9RTB3PL"


def _fixed_zlib(data: bytes) -> bytes:
    # Fixed Huffman codes: a stream's first bytes depend only on the first bytes it encodes.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_FIXED)
    return compressor.compress(data) + compressor.flush()


def same_first_line_streams(secret: str) -> tuple[bytes, bytes]:
    """Two zlib streams git diffs as text (no NUL), sharing their first line (up to the first
    "\\n"): one of plain words, one holding ``secret``."""
    rng = random.Random(1)
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    while True:
        prefix = "".join(rng.choice(letters) for _ in range(120)).encode()
        benign = _fixed_zlib(prefix + b" nothing to see here, just some benign words")
        secret_stream = _fixed_zlib(prefix + f" key={secret}".encode())
        cut = benign.find(b"\n")
        if b"\x00" in benign + secret_stream or cut < 0 or secret_stream[:cut + 1] != benign[:cut + 1]:
            continue
        return benign, secret_stream


class _PushCase(unittest.TestCase):
    """A work repo, its upstream and the gate's mirror of it; the hook run on a push to main."""

    def setUp(self) -> None:
        self.repos = push_repos(self)

    def assert_rejected(self, new: str, place: str, detector: str = "github-token",
                        known: dict[str, str] | None = None) -> None:
        code, out = self.repos.push_main(new, PatternDetector(known=known))
        self.assertEqual(code, 1, out)
        self.assertIn(f"commit {new[:12]}: {place}: detector {detector}", out)
        self.assertNotIn(GHP, out)
        for value in (known or {}).values():
            self.assertNotIn(value, out)
        self.assertEqual(self.repos.verdict_doc()["result"], "rejected")
        self.assertEqual(self.repos.upstream_rev(), self.repos.base)


@requires(shutil.which("git") is not None, "git")
class WideAndPackedPushTest(_PushCase):
    def test_a_token_in_utf16_past_the_first_8000_bytes_of_a_text_file(self) -> None:
        # git calls the file text (no NUL in its first 8000 bytes) and shows the UTF-16 as lines.
        new = self.repos.commit({"notes.txt": b"filler line\n" * 700 + f"{GHP}\n".encode("utf-16-le")}, "notes")
        self.assert_rejected(new, "file notes.txt line 701")

    def test_a_token_in_big_endian_utf16_text_changed_later_in_a_file(self) -> None:
        self.repos.commit({"notes.txt": b"filler line\n" * 700}, "notes")
        new = self.repos.commit({"notes.txt": b"filler line\n" * 700 + f"token: {GHP}".encode("utf-16-be")}, "more")
        self.assert_rejected(new, "file notes.txt line 701")

    def test_a_short_utf16_or_utf32_token_inside_a_binary_file(self) -> None:
        noise = random.Random(5)
        for encoding in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
            with self.subTest(encoding=encoding):
                data = noise.randbytes(200_000) + f"{GHP}\n".encode(encoding) + noise.randbytes(999)
                new = self.repos.commit({"asset.bin": data}, encoding)
                self.assert_rejected(new, "binary file asset.bin")

    def test_a_compressed_file_changed_after_its_first_line_is_opened(self) -> None:
        benign, secret_stream = same_first_line_streams(GHP)
        self.assertEqual(zlib.decompress(secret_stream).split(b"key=")[1], GHP.encode())
        self.repos.commit({"data.z": benign}, "add data")
        new = self.repos.commit({"data.z": secret_stream}, "update data")  # the same push: its parent is new too
        self.assert_rejected(new, "decompressed content of file data.z")

    def test_a_bottle_secret_written_in_latin1_in_a_text_file(self) -> None:
        # Its non-ASCII letters are no UTF-8: read as UTF-8 alone, the value was never seen whole.
        value = "Gr\xfc\xdfe-Pa\xdfwort-2024"
        new = self.repos.commit({"conf.txt": f"note {value} end\n".encode("cp1252")}, "conf")
        self.assert_rejected(new, "file conf.txt line 1", "known-secret:DB_PASSWORD", known={"DB_PASSWORD": value})

    def test_a_bottle_secret_written_in_latin1_in_a_file_name(self) -> None:
        value = "Gr\xfc\xdfe-Pa\xdfwort-2024"
        name = f"cfg-{value}.txt".encode("cp1252")
        with open(os.path.join(os.fsencode(self.repos.work), name), "wb") as handle:
            handle.write(b"fine\n")
        subprocess.run([b"git", b"-C", os.fsencode(self.repos.work), b"add", b"--", name], env=self.repos.env,
                       check=True)
        self.repos.git("-C", str(self.repos.work), "commit", "-q", "-m", "cfg")
        new = self.repos.git("-C", str(self.repos.work), "rev-parse", "HEAD")
        self.assert_rejected(new, "file name cfg-[redacted].txt", "known-secret:DB_PASSWORD", known={"DB_PASSWORD": value})

    def raw_object(self, kind: str, data: bytes) -> str:
        return self.repos.git("-C", str(self.repos.work), "hash-object", "-t", kind, "-w", "--stdin", data=data)

    def test_a_token_in_utf16_among_other_bytes_of_a_commit_or_tag_message(self) -> None:
        # An odd length: the message as a whole is no UTF-16 text, only the token in it is.
        message = b"fix typo\n\n" + GHP.encode("utf-16-le") + b"\n"
        tree = self.repos.git("-C", str(self.repos.work), "rev-parse", "HEAD^{tree}")
        new = self.raw_object("commit", f"tree {tree}\nparent {self.repos.base}\nauthor T <t@x> 1700000000 +0000\n"
                                        "committer T <t@x> 1700000000 +0000\n\n".encode() + message)
        self.repos.git("-C", str(self.repos.work), "update-ref", "refs/heads/main", new)
        self.assert_rejected(new, "commit message line 3")
        tag = self.raw_object("tag", f"object {self.repos.base}\ntype commit\ntag v1\n"
                                     "tagger T <t@x> 1700000000 +0000\n\n".encode() + message)
        self.repos.git("-C", str(self.repos.work), "update-ref", "refs/tags/v1", tag)
        code, out = self.repos.hook(f"{'0' * 40} {tag} refs/tags/v1\n", PatternDetector())
        self.assertEqual(code, 1, out)
        self.assertIn(f"tag {tag[:12]}: tag message line 3: detector github-token", out)
        self.assertEqual(self.repos.git("--git-dir", str(self.repos.upstream), "tag"), "")

    def test_a_message_in_an_encoding_only_iconv_knows(self) -> None:
        # IBM1047 (EBCDIC) is no Python codec, but git log re-encodes the message by it (iconv),
        # and so does the upstream: the token is plain text to whoever reads the log there.
        # The same bytes as IBM1047 for these characters ("\n" is 0x25: git re-encodes the whole
        # object, so its own blank line is lost, and the body starts after this one).
        message = f"release notes\n\ntoken {GHP}\n".encode("cp037")
        tree = self.repos.git("-C", str(self.repos.work), "rev-parse", "HEAD^{tree}")
        new = self.raw_object("commit", f"tree {tree}\nparent {self.repos.base}\nauthor T <t@x> 1700000000 +0000\n"
                                        "committer T <t@x> 1700000000 +0000\nencoding IBM1047\n\n".encode() + message)
        shown = subprocess.run(["git", "-C", str(self.repos.work), "log", "-1", "--format=%B", new],
                               env=self.repos.env, capture_output=True, check=True).stdout
        self.assertIn(GHP.encode(), shown)  # what the upstream's git log would show
        self.repos.git("-C", str(self.repos.work), "update-ref", "refs/heads/main", new)
        self.assert_rejected(new, "commit message line 1")

    def test_ordinary_files_stay_clean(self) -> None:
        # Latin-1 text (bytes that are not UTF-8: the blob's head is looked at), UTF-16 prose,
        # random binary data and a compressed file of plain words: no finding, forwarded.
        benign, _ = same_first_line_streams(GHP)
        self.repos.commit({"legacy.txt": "caf\xe9 cr\xe8me\n".encode("latin-1"), "data.z": benign}, "one")
        new = self.repos.commit({
            "legacy.txt": "caf\xe9 cr\xe8me\nna\xefve fa\xe7ade\n".encode("latin-1"),
            "notes.txt": b"filler line\n" * 700 + "Plain words, nothing secret here.\n".encode("utf-16-le"),
            "asset.bin": random.Random(9).randbytes(300_000),
        }, "two")
        code, out = self.repos.push_main(new, PatternDetector())
        self.assertEqual(code, 0, out)
        self.assertEqual(self.repos.upstream_rev(), new)


@requires(shutil.which("git") is not None, "git")
class StaysCoveredTest(_PushCase):
    """Tricks tried and found covered: kept as tests so they stay so."""

    def mktree(self, entries: list[tuple[str, str, str]]) -> str:
        # Written literally: git mktree refuses a gitlink whose id names a blob it has.
        raw = b"".join(f"{mode} {name}".encode() + b"\0" + bytes.fromhex(oid) for mode, name, oid in entries)
        return self.repos.git("-C", str(self.repos.work), "hash-object", "-t", "tree", "-w", "--literally", "--stdin",
                              data=raw)

    def test_a_blob_whose_id_an_earlier_gitlink_named(self) -> None:
        # A gitlink's target is never sent, so a clean push can name any id; a later commit keeps
        # the same id for the same path as a file. git diffs the type change as a new file.
        blob = self.repos.git("-C", str(self.repos.work), "hash-object", "-w", "--stdin", data=f"t={GHP}\n".encode())
        readme = self.repos.git("-C", str(self.repos.work), "rev-parse", "HEAD:README")
        with_link = self.mktree([("100644", "README", readme), ("160000", "lib", blob)])
        with_file = self.mktree([("100644", "README", readme), ("100644", "lib", blob)])
        work = ("-C", str(self.repos.work))
        link = self.repos.git(*work, "commit-tree", with_link, "-p", self.repos.base, "-m", "lib")
        as_file = self.repos.git(*work, "commit-tree", with_file, "-p", link, "-m", "lib as a file")
        merge = self.repos.git(*work, "commit-tree", with_file, "-p", link, "-p", link, "-m", "merge")
        for new in (as_file, merge):
            with self.subTest(new=new):
                self.repos.git("-C", str(self.repos.work), "update-ref", "refs/heads/main", new)
                self.assert_rejected(new, "file lib line 1")

    def test_secrets_in_a_symlink_target_and_a_gitlink_id(self) -> None:
        os.symlink(GHP, self.repos.work / "link")
        self.repos.git("-C", str(self.repos.work), "add", "link")
        self.repos.git("-C", str(self.repos.work), "commit", "-q", "-m", "link")
        new = self.repos.git("-C", str(self.repos.work), "rev-parse", "HEAD")
        work_env = {**self.repos.env, "GIT_DIR": str(self.repos.work / ".git")}
        self.assertIn(f"commit {new[:12]}: file link line 1: detector github-token",
                      [f.describe() for f in scan(read_pieces([new], env=work_env), PatternDetector())])


class WideRunsTest(unittest.TestCase):
    def test_runs_in_either_width_and_byte_order(self) -> None:
        for encoding in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
            with self.subTest(encoding=encoding):
                data = b"\x01\xff" + f"key={AWS}".encode(encoding) + b"\xfe\x02"
                # Read the other way too (one character short): each run once whole is what counts.
                self.assertIn(f"key={AWS}", [run.text for run in wide_runs(data)])
                self.assertFalse(any("\x00" in run.text or len(run.text) > len(f"key={AWS}") for run in wide_runs(data)))

    def test_short_runs_and_plain_bytes_are_no_runs(self) -> None:
        self.assertEqual(wide_runs("abcdefg".encode("utf-16-le") + b"\xff\xff" + b"plain ascii text" * 4), [])


if __name__ == "__main__":
    unittest.main()
