"""Push-scan gaps: compressed streams in messages, and UTF-8 text inside inflated streams.

A commit or tag message was read only as text: a zlib or gzip stream in its bytes (git keeps
whatever bytes an object holds, and ``git commit`` turns bytes that are no UTF-8 into Latin-1
characters a reader can undo), or written in it as base64 or hex (which the detectors decode but
do not inflate), passed with a secret inside. Messages are now searched for streams like files
are, on the push's budget. And what streams inflate to was read only as its runs of ASCII: a
value with letters beyond ASCII (an own secret, a token in fullwidth forms) passed; runs of
UTF-8 text are read now. Ordinary messages (commit ids, hashes, base64 of benign data) and
ordinary binaries still pass.
"""

from __future__ import annotations

import base64
import gzip
import random
import shutil
import struct
import tempfile
import unittest
import zlib
from pathlib import Path
from unittest import mock

from bot_bottle.sidecar.git_gate import embedded, objects
from bot_bottle.sidecar.git_gate.scan import PatternDetector, default_detector
from tests._requires import requires
from tests.unit.git_gate_repo_helper import PushRepos, push_repos

GHP = "ghp_" + "Wq3Zr8Tn5Lm2Xv7Kc4Bp9Hd6Fs1Jg0Ya5UeQ2"
SECRET = f"token = {GHP}\n".encode()
OWN = "Geheimnis-für-Müller-42"  # an own secret with letters beyond ASCII
JUNK = bytes(range(1, 101))
HAS_GIT = shutil.which("git") is not None
ZERO = "0" * 40


def raw_commit(repos: PushRepos, message: bytes) -> str:
    """A commit on main whose message is ``message`` byte for byte (``git commit`` would turn
    bytes that are no UTF-8 into UTF-8), written as an object and made main's tip."""
    work = str(repos.work)
    tree = repos.git("-C", work, "rev-parse", "HEAD^{tree}")
    head = repos.git("-C", work, "rev-parse", "HEAD")
    body = (f"tree {tree}\nparent {head}\nauthor T <t@x> 1700000000 +0000\n"
            f"committer T <t@x> 1700000000 +0000\n\n").encode() + message
    oid = repos.git("-C", work, "hash-object", "-t", "commit", "-w", "--stdin", data=body)
    repos.git("-C", work, "update-ref", "refs/heads/main", oid)
    return oid


def raw_tag(repos: PushRepos, target: str, message: bytes) -> str:
    """An annotated tag object of ``target`` whose message is ``message`` byte for byte, as
    refs/tags/v1."""
    work = str(repos.work)
    body = (f"object {target}\ntype commit\ntag v1\ntagger T <t@x> 1700000000 +0000\n\n").encode() + message
    oid = repos.git("-C", work, "hash-object", "-t", "tag", "-w", "--stdin", data=body)
    repos.git("-C", work, "update-ref", "refs/tags/v1", oid)
    return oid


@requires(HAS_GIT, "git")
class MessageStreamPushTest(unittest.TestCase):
    """A real push through the hook: a secret in a stream in a commit or tag message is refused."""

    def setUp(self) -> None:
        self.repos = push_repos(self)

    def push_message(self, message: bytes, detector=None) -> tuple[str, int, str]:  # type: ignore[no-untyped-def]
        new = raw_commit(self.repos, message)
        code, out = self.repos.push_main(new, detector or PatternDetector())
        return new, code, out

    def assert_refused(self, message: bytes, detector=None) -> None:  # type: ignore[no-untyped-def]
        new, code, out = self.push_message(message, detector)
        self.assertEqual(code, 1, out)
        self.assertIn(f"commit {new[:12]}: decompressed content of the commit message: detector github-token", out)
        self.assertNotIn(GHP, out)

    def test_a_zlib_stream_in_a_commit_messages_bytes(self) -> None:
        self.assert_refused(b"fix the build\n\n" + JUNK + zlib.compress(SECRET) + b"\n")

    def test_a_gzip_member_cut_at_a_nul_and_a_damaged_checksum(self) -> None:
        stream = gzip.compress(SECRET)
        self.assert_refused(b"fix\n\n" + stream[:-8] + b"\xff" * 8)

    def test_base64_of_a_zlib_stream_in_a_message_written_by_git_commit(self) -> None:
        encoded = base64.b64encode(zlib.compress(SECRET)).decode()
        new = self.repos.commit({"a.txt": "a\n"}, f"fix the build\n\nartifact: {encoded}\n")
        code, out = self.repos.push_main(new, PatternDetector())
        self.assertEqual(code, 1, out)
        self.assertIn(f"commit {new[:12]}: decompressed content of the commit message: detector github-token", out)

    def test_base64_wrapped_in_lines_urlsafe_unpadded_and_hex(self) -> None:
        stream = JUNK + zlib.compress(SECRET * 3)
        self.assert_refused(b"wrapped\n\n" + base64.encodebytes(stream))
        self.assert_refused(b"urlsafe " + base64.urlsafe_b64encode(stream).rstrip(b"="))
        self.assert_refused(b"hex: " + gzip.compress(SECRET).hex().encode() + b"\n")

    def test_a_stream_git_commit_turned_into_utf8(self) -> None:
        # ``git commit -F`` of bytes that are no UTF-8 stores each as a Latin-1 character (it
        # refuses a NUL: the stream is cut before its end, where it has one, and still gives all).
        stream = zlib.compress(SECRET)
        stream = stream[:stream.index(b"\x00")]
        path = Path(tempfile.mkdtemp(dir=self.repos.dir)) / "msg"
        path.write_bytes(b"fix\n\n" + stream + b"\n")
        (self.repos.work / "b.txt").write_text("b\n")
        work = str(self.repos.work)
        self.repos.git("-C", work, "add", "b.txt")
        self.repos.git("-C", work, "commit", "-q", "-F", str(path))
        new = self.repos.git("-C", work, "rev-parse", "HEAD")
        code, out = self.repos.push_main(new, PatternDetector())
        self.assertEqual(code, 1, out)
        self.assertIn(f"commit {new[:12]}: decompressed content of the commit message: detector github-token", out)

    def test_a_stream_in_a_tag_message(self) -> None:
        head = self.repos.git("-C", str(self.repos.work), "rev-parse", "HEAD")
        tag = raw_tag(self.repos, head, b"release\n\n" + base64.b64encode(gzip.compress(SECRET)) + b"\n")
        code, out = self.repos.hook(f"{ZERO} {tag} refs/tags/v1\n", PatternDetector())
        self.assertEqual(code, 1, out)
        self.assertIn(f"tag {tag[:12]}: decompressed content of the tag message: detector github-token", out)

    def test_the_shared_engine_finds_it_too(self) -> None:
        self.assert_refused(b"fix\n\n" + base64.b64encode(zlib.compress(SECRET)), default_detector())

    def test_decoys_in_a_message_past_the_budget_refuse_the_push(self) -> None:
        decoy = zlib.compress(b"\x00" * (3 * 1024 * 1024))
        with mock.patch.object(embedded, "PUSH_OUTPUT", 5 * 1024 * 1024):
            new, code, out = self.push_message(b"fix\n\n" + decoy + decoy + zlib.compress(SECRET))
        self.assertEqual(code, 1, out)
        self.assertIn(f"commit {new[:12]}: compressed data in the commit message (not read whole): detector"
                      " scan-limit (the push's compressed streams inflate to more than 5 MiB in all", out)
        self.assertIn("a scan-limit on a message means it holds more compressed data than the gate reads", out)

    def test_ordinary_messages_pass(self) -> None:
        rnd = random.Random(7)
        messages = [
            b"Merge 0123456789abcdef0123456789abcdef01234567 into main\n\nSigned-off-by: A <a@example.com>\n",
            b"sha256: " + rnd.randbytes(32).hex().encode() + b"\n",
            b"fixture (base64): " + base64.b64encode(zlib.compress(b"hello world, nothing secret " * 20)) + b"\n",
            b"noise\n\n" + base64.encodebytes(rnd.randbytes(6000)),
            "Überarbeitung der Größenberechnung für Ärzte\n".encode(),
            b"gz\n\n" + gzip.compress(b"just a changelog entry\n" * 10),
        ]
        for message in messages:
            _new, code, out = self.push_message(message)
            self.assertEqual(code, 0, (message[:40], out))
            self.repos.git("-C", str(self.repos.upstream), "fetch", "-q", str(self.repos.work), "+main:main")
            self.repos.base = _new


@requires(HAS_GIT, "git")
class Utf8InStreamsPushTest(unittest.TestCase):
    """Text beyond ASCII in what a stream inflates to is read: an own secret with such letters,
    a token in fullwidth forms."""

    def push(self, files: dict[str, bytes], detector) -> tuple[str, int, str]:  # type: ignore[no-untyped-def]
        repos = push_repos(self)
        new = repos.commit(files, "add")
        code, out = repos.push_main(new, detector)
        return new, code, out

    def test_an_own_secret_with_letters_beyond_ascii(self) -> None:
        data = b"\x00" + JUNK + zlib.compress(f"password={OWN}\n".encode())
        for detector in (PatternDetector(known={"own": OWN}), default_detector({"own": OWN})):
            new, code, out = self.push({"blob.bin": data}, detector)
            self.assertEqual(code, 1, out)
            self.assertIn(f"commit {new[:12]}: decompressed content of file blob.bin: detector known-secret", out)
            self.assertNotIn(OWN, out)

    def test_an_own_secret_beyond_ascii_in_a_pngs_pixels(self) -> None:
        def chunk(kind: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        rnd = random.Random(2)
        rows = [rnd.randbytes(64) for _ in range(100)] + [OWN.encode().ljust(64, b" ")]
        stream = zlib.compress(b"".join(b"\x00" + row for row in rows))
        image = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 64, len(rows), 8, 0, 0, 0, 0))
                 + chunk(b"IDAT", stream[:500]) + chunk(b"IDAT", stream[500:]) + chunk(b"IEND", b""))
        new, code, out = self.push({"image.png": image}, PatternDetector(known={"own": OWN}))
        self.assertEqual(code, 1, out)
        self.assertIn(f"commit {new[:12]}: decompressed content of file image.png: detector known-secret:own", out)

    def test_a_token_in_fullwidth_forms(self) -> None:
        wide = "".join(chr(ord(c) + 0xFEE0) for c in GHP)
        new, code, out = self.push({"fw.bin": b"\x00" + JUNK + zlib.compress(wide.encode())}, default_detector())
        self.assertEqual(code, 1, out)
        self.assertIn(f"commit {new[:12]}: decompressed content of file fw.bin: detector github-token", out)

    def test_text_in_other_scripts_and_binaries_pass(self) -> None:
        rnd = random.Random(8)
        text = "Привет, мир. 日本語のテキスト。Größe und Maß. ".encode() * 50
        files = {
            "text.bin": b"\x00" + JUNK + zlib.compress(text),
            "noise.bin": b"\x00" + JUNK + zlib.compress(rnd.randbytes(512 * 1024)),
            "mixed.bin": b"\x00" + JUNK + zlib.compress(bytes(rnd.choice(range(0x80, 0x100)) for _ in range(100000))),
        }
        _new, code, out = self.push(files, default_detector({"own": OWN}))
        self.assertEqual(code, 0, out)


class TextRunsTest(unittest.TestCase):
    def test_utf8_runs_are_read_and_bytes_that_are_no_text_end_them(self) -> None:
        data = b"\x01" + OWN.encode() + b"\xff\x02" + "ＧＨＰ＿ａｂｃｄ".encode() + b"\xc3\x28ascii-run-here\x85abc"
        runs, wide = embedded.text_runs(data)
        self.assertEqual(runs.split("\n"), [OWN, "ＧＨＰ＿ａｂｃｄ", "(ascii-run-here"])
        self.assertFalse(wide)

    def test_c1_controls_are_no_text_and_short_runs_are_dropped(self) -> None:
        runs, _wide = embedded.text_runs("abcä\u0085défghijk".encode() + b"\xfe" + "ähnlich".encode())
        self.assertEqual(runs, "défghijk")

    def test_ascii_only_data_reads_as_before(self) -> None:
        self.assertEqual(embedded.text_runs(b"\x01\x02short\x03" + SECRET + b"\x04"), (SECRET.decode(), False))


class MessageSourcesTest(unittest.TestCase):
    def test_base64_runs_decode_whole_across_lines(self) -> None:
        blob = random.Random(3).randbytes(300)
        sources = list(objects._stream_sources(b"x\n\n" + base64.encodebytes(blob) + b"\nSigned-off-by: a"))
        self.assertIn(blob, sources)

    def test_a_plain_message_is_its_own_only_source(self) -> None:
        self.assertEqual(list(objects._stream_sources(b"fix a typo in the readme\n")), [b"fix a typo in the readme\n"])


if __name__ == "__main__":
    unittest.main()
