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

import contextlib
import io
import json
import os
import random
import shutil
import subprocess
import tempfile
import unittest
import zlib
from pathlib import Path
from unittest import mock

from bot_bottle.sidecar.git_gate import hook
from bot_bottle.sidecar.git_gate.config import parse
from bot_bottle.sidecar.git_gate.mirror import HOOK_ENV_VERDICT
from bot_bottle.sidecar.git_gate.patch import read_pieces
from bot_bottle.sidecar.git_gate.scan import PatternDetector, scan
from bot_bottle.sidecar.dlp.wide import wide_runs
from tests._requires import requires

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
        self._tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmp.cleanup)
        self.dir = Path(self._tmp.name)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.dir), "GIT_CONFIG_NOSYSTEM": "1",
                    "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "T",
                    "GIT_COMMITTER_EMAIL": "t@x"}
        self.upstream = self.dir / "upstream.git"
        self.mirror = self.dir / "mirror.git"
        self.work = self.dir / "work"
        self.git("init", "-q", "--bare", "-b", "main", str(self.upstream))
        self.git("init", "-q", "-b", "main", str(self.work))
        self.base = self.commit({"README": b"hello\n"}, "init")
        self.git("-C", str(self.work), "push", "-q", str(self.upstream), "main")
        self.git("clone", "-q", "--mirror", str(self.upstream), str(self.mirror))
        self.config = parse({"repos": [{"name": "app", "url": str(self.upstream)}]})
        self.verdict = self.dir / "verdict.json"

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], env=self.env, capture_output=True, text=True, check=True).stdout.strip()

    def commit(self, files: dict[str, bytes], message: str) -> str:
        for name, content in files.items():
            (self.work / name).write_bytes(content)
            self.git("-C", str(self.work), "add", name)
        self.git("-C", str(self.work), "commit", "-q", "-m", message)
        return self.git("-C", str(self.work), "rev-parse", "HEAD")

    def push(self, new: str, detector: PatternDetector | None = None) -> tuple[int, str]:
        """The hook on a push of ``new`` to main, its objects where receive-pack's quarantine would be."""
        self.git("-C", str(self.mirror), "fetch", "-q", str(self.work), "+refs/heads/main:refs/incoming")
        self.git("-C", str(self.mirror), "update-ref", "-d", "refs/incoming")
        env = {**self.env, "GIT_DIR": str(self.mirror), HOOK_ENV_VERDICT: str(self.verdict)}
        stderr = io.StringIO()
        with mock.patch.dict(os.environ, env, clear=True), contextlib.redirect_stderr(stderr):
            code = hook.run(self.config, self.config.repos[0], f"{self.base} {new} refs/heads/main\n",
                            detector or PatternDetector(),
                            supervise_root=self.dir / "no-supervise")
        return code, stderr.getvalue()

    def assert_rejected(self, new: str, place: str, detector: str = "github-token",
                        known: dict[str, str] | None = None) -> None:
        code, out = self.push(new, PatternDetector(known=known))
        self.assertEqual(code, 1, out)
        self.assertIn(f"commit {new[:12]}: {place}: detector {detector}", out)
        self.assertNotIn(GHP, out)
        for value in (known or {}).values():
            self.assertNotIn(value, out)
        self.assertEqual(json.loads(self.verdict.read_text())["result"], "rejected")
        self.assertEqual(self.git("--git-dir", str(self.upstream), "rev-parse", "main"), self.base)


@requires(shutil.which("git") is not None, "git")
class WideAndPackedPushTest(_PushCase):
    def test_a_token_in_utf16_past_the_first_8000_bytes_of_a_text_file(self) -> None:
        # git calls the file text (no NUL in its first 8000 bytes) and shows the UTF-16 as lines.
        new = self.commit({"notes.txt": b"filler line\n" * 700 + f"{GHP}\n".encode("utf-16-le")}, "notes")
        self.assert_rejected(new, "file notes.txt line 701")

    def test_a_token_in_big_endian_utf16_text_changed_later_in_a_file(self) -> None:
        self.commit({"notes.txt": b"filler line\n" * 700}, "notes")
        new = self.commit({"notes.txt": b"filler line\n" * 700 + f"token: {GHP}".encode("utf-16-be")}, "more")
        self.assert_rejected(new, "file notes.txt line 701")

    def test_a_short_utf16_or_utf32_token_inside_a_binary_file(self) -> None:
        noise = random.Random(5)
        for encoding in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
            with self.subTest(encoding=encoding):
                data = noise.randbytes(200_000) + f"{GHP}\n".encode(encoding) + noise.randbytes(999)
                new = self.commit({"asset.bin": data}, encoding)
                self.assert_rejected(new, "binary file asset.bin")

    def test_a_compressed_file_changed_after_its_first_line_is_opened(self) -> None:
        benign, secret_stream = same_first_line_streams(GHP)
        self.assertEqual(zlib.decompress(secret_stream).split(b"key=")[1], GHP.encode())
        self.commit({"data.z": benign}, "add data")
        new = self.commit({"data.z": secret_stream}, "update data")  # the same push: its parent is new too
        self.assert_rejected(new, "decompressed content of file data.z")

    def test_a_bottle_secret_written_in_latin1_in_a_text_file(self) -> None:
        # Its non-ASCII letters are no UTF-8: read as UTF-8 alone, the value was never seen whole.
        value = "Gr\xfc\xdfe-Pa\xdfwort-2024"
        new = self.commit({"conf.txt": f"note {value} end\n".encode("cp1252")}, "conf")
        self.assert_rejected(new, "file conf.txt line 1", "known-secret:DB_PASSWORD", known={"DB_PASSWORD": value})

    def test_a_bottle_secret_written_in_latin1_in_a_file_name(self) -> None:
        value = "Gr\xfc\xdfe-Pa\xdfwort-2024"
        name = f"cfg-{value}.txt".encode("cp1252")
        with open(os.path.join(os.fsencode(self.work), name), "wb") as handle:
            handle.write(b"fine\n")
        subprocess.run([b"git", b"-C", os.fsencode(self.work), b"add", b"--", name], env=self.env, check=True)
        self.git("-C", str(self.work), "commit", "-q", "-m", "cfg")
        new = self.git("-C", str(self.work), "rev-parse", "HEAD")
        self.assert_rejected(new, "file name cfg-[redacted].txt", "known-secret:DB_PASSWORD", known={"DB_PASSWORD": value})

    def raw_object(self, kind: str, data: bytes) -> str:
        return subprocess.run(["git", "-C", str(self.work), "hash-object", "-t", kind, "-w", "--stdin"], input=data,
                              env=self.env, capture_output=True, check=True).stdout.decode().strip()

    def test_a_token_in_utf16_among_other_bytes_of_a_commit_or_tag_message(self) -> None:
        # An odd length: the message as a whole is no UTF-16 text, only the token in it is.
        message = b"fix typo\n\n" + GHP.encode("utf-16-le") + b"\n"
        tree = self.git("-C", str(self.work), "rev-parse", "HEAD^{tree}")
        new = self.raw_object("commit", f"tree {tree}\nparent {self.base}\nauthor T <t@x> 1700000000 +0000\n"
                                        "committer T <t@x> 1700000000 +0000\n\n".encode() + message)
        self.git("-C", str(self.work), "update-ref", "refs/heads/main", new)
        self.assert_rejected(new, "commit message line 3")
        tag = self.raw_object("tag", f"object {self.base}\ntype commit\ntag v1\ntagger T <t@x> 1700000000 +0000\n\n"
                                     .encode() + message)
        self.git("-C", str(self.work), "update-ref", "refs/tags/v1", tag)
        self.git("-C", str(self.mirror), "fetch", "-q", str(self.work), "+refs/tags/v1:refs/incoming-tag")
        self.git("-C", str(self.mirror), "update-ref", "-d", "refs/incoming-tag")
        env = {**self.env, "GIT_DIR": str(self.mirror), HOOK_ENV_VERDICT: str(self.verdict)}
        stderr = io.StringIO()
        with mock.patch.dict(os.environ, env, clear=True), contextlib.redirect_stderr(stderr):
            code = hook.run(self.config, self.config.repos[0], f"{'0' * 40} {tag} refs/tags/v1\n", PatternDetector(),
                            supervise_root=self.dir / "no-supervise")
        self.assertEqual(code, 1, stderr.getvalue())
        self.assertIn(f"tag {tag[:12]}: tag message line 3: detector github-token", stderr.getvalue())
        self.assertEqual(self.git("--git-dir", str(self.upstream), "tag"), "")

    def test_a_message_in_an_encoding_only_iconv_knows(self) -> None:
        # IBM1047 (EBCDIC) is no Python codec, but git log re-encodes the message by it (iconv),
        # and so does the upstream: the token is plain text to whoever reads the log there.
        # The same bytes as IBM1047 for these characters ("\n" is 0x25: git re-encodes the whole
        # object, so its own blank line is lost, and the body starts after this one).
        message = f"release notes\n\ntoken {GHP}\n".encode("cp037")
        tree = self.git("-C", str(self.work), "rev-parse", "HEAD^{tree}")
        new = self.raw_object("commit", f"tree {tree}\nparent {self.base}\nauthor T <t@x> 1700000000 +0000\n"
                                        "committer T <t@x> 1700000000 +0000\nencoding IBM1047\n\n".encode() + message)
        shown = subprocess.run(["git", "-C", str(self.work), "log", "-1", "--format=%B", new], env=self.env,
                               capture_output=True, check=True).stdout
        self.assertIn(GHP.encode(), shown)  # what the upstream's git log would show
        self.git("-C", str(self.work), "update-ref", "refs/heads/main", new)
        self.assert_rejected(new, "commit message line 1")

    def test_ordinary_files_stay_clean(self) -> None:
        # Latin-1 text (bytes that are not UTF-8: the blob's head is looked at), UTF-16 prose,
        # random binary data and a compressed file of plain words: no finding, forwarded.
        benign, _ = same_first_line_streams(GHP)
        self.commit({"legacy.txt": "caf\xe9 cr\xe8me\n".encode("latin-1"), "data.z": benign}, "one")
        new = self.commit({
            "legacy.txt": "caf\xe9 cr\xe8me\nna\xefve fa\xe7ade\n".encode("latin-1"),
            "notes.txt": b"filler line\n" * 700 + "Plain words, nothing secret here.\n".encode("utf-16-le"),
            "asset.bin": random.Random(9).randbytes(300_000),
        }, "two")
        code, out = self.push(new)
        self.assertEqual(code, 0, out)
        self.assertEqual(self.git("--git-dir", str(self.upstream), "rev-parse", "main"), new)


@requires(shutil.which("git") is not None, "git")
class StaysCoveredTest(_PushCase):
    """Tricks tried and found covered: kept as tests so they stay so."""

    def mktree(self, entries: list[tuple[str, str, str]]) -> str:
        # Written literally: git mktree refuses a gitlink whose id names a blob it has.
        raw = b"".join(f"{mode} {name}".encode() + b"\0" + bytes.fromhex(oid) for mode, name, oid in entries)
        return subprocess.run(["git", "-C", str(self.work), "hash-object", "-t", "tree", "-w", "--literally", "--stdin"],
                              input=raw, env=self.env, capture_output=True, check=True).stdout.decode().strip()

    def test_a_blob_whose_id_an_earlier_gitlink_named(self) -> None:
        # A gitlink's target is never sent, so a clean push can name any id; a later commit keeps
        # the same id for the same path as a file. git diffs the type change as a new file.
        blob = subprocess.run(["git", "-C", str(self.work), "hash-object", "-w", "--stdin"], input=f"t={GHP}\n",
                              env=self.env, capture_output=True, text=True, check=True).stdout.strip()
        readme = self.git("-C", str(self.work), "rev-parse", "HEAD:README")
        link = self.git("-C", str(self.work), "commit-tree", self.mktree([("100644", "README", readme),
                                                                          ("160000", "lib", blob)]),
                        "-p", self.base, "-m", "lib")
        as_file = self.git("-C", str(self.work), "commit-tree", self.mktree([("100644", "README", readme),
                                                                             ("100644", "lib", blob)]),
                           "-p", link, "-m", "lib as a file")
        merge = self.git("-C", str(self.work), "commit-tree", self.mktree([("100644", "README", readme),
                                                                           ("100644", "lib", blob)]),
                         "-p", link, "-p", link, "-m", "merge")
        for new in (as_file, merge):
            with self.subTest(new=new):
                self.git("-C", str(self.work), "update-ref", "refs/heads/main", new)
                self.assert_rejected(new, "file lib line 1")

    def test_secrets_in_a_symlink_target_and_a_gitlink_id(self) -> None:
        os.symlink(GHP, self.work / "link")
        self.git("-C", str(self.work), "add", "link")
        self.git("-C", str(self.work), "commit", "-q", "-m", "link")
        new = self.git("-C", str(self.work), "rev-parse", "HEAD")
        self.assertIn(f"commit {new[:12]}: file link line 1: detector github-token",
                      [f.describe() for f in scan(read_pieces([new], env={**self.env, "GIT_DIR": str(self.work / ".git")}),
                                                  PatternDetector())])


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
