"""Push-scan gaps: compressed data written as base64 or hex in added lines of text files.

A text file's added lines were searched for compressed streams only in their own bytes: a
string literal holding base64 of zlib data (``data = "eJzL..."``), a base64 block of gzip in a
README, or hex of a stream passed with a secret inside. Such runs are now decoded and inflated
as a message's are, on the push's budget, and the refusal names the file and the line the run
starts on. Source code (long identifiers, hashes, lockfile integrity values, base64 of benign
data) still passes, and its identifiers are not decoded at all.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import random
import re
import shutil
import unittest
import zlib
from unittest import mock

from bot_bottle.sidecar.git_gate import embedded, objects
from bot_bottle.sidecar.git_gate.scan import PatternDetector, default_detector
from tests._requires import requires
from tests.unit.git_gate_repo_helper import push_repos

GHP = "ghp_" + "Wq3Zr8Tn5Lm2Xv7Kc4Bp9Hd6Fs1Jg0Ya5UeQ2"
SECRET = f"token = {GHP}\n".encode()
HAS_GIT = shutil.which("git") is not None


@requires(HAS_GIT, "git")
class EncodedStreamInLinesPushTest(unittest.TestCase):
    """A real push through the hook: a secret in base64 or hex of a stream in added lines."""

    def push(self, files: dict[str, bytes | str], detector=None) -> tuple[str, int, str]:  # type: ignore[no-untyped-def]
        repos = push_repos(self)
        new = repos.commit(files, "add")
        code, out = repos.push_main(new, detector or PatternDetector())
        return new, code, out

    def assert_refused(self, files: dict[str, bytes | str], path: str, line: int, detector=None) -> None:  # type: ignore[no-untyped-def]
        new, code, out = self.push(files, detector)
        self.assertEqual(code, 1, out)
        self.assertIn(f"commit {new[:12]}: decompressed content of file {path} line {line}: detector github-token",
                      out)
        self.assertNotIn(GHP, out)

    def test_base64_of_zlib_in_a_python_string(self) -> None:
        encoded = base64.b64encode(zlib.compress(SECRET)).decode()
        source = f"import zlib\n\n\ndef blob() -> bytes:\n    data = \"{encoded}\"\n    return data\n"
        self.assert_refused({"mod.py": source}, "mod.py", 5)

    def test_a_wrapped_base64_block_of_gzip_in_a_readme(self) -> None:
        stream = gzip.compress(SECRET * 4 + random.Random(1).randbytes(200))
        block = base64.encodebytes(stream).decode()
        self.assert_refused({"README.md": f"# Tool\n\nSample payload:\n\n{block}\nThanks.\n"}, "README.md", 5)

    def test_hex_of_zlib_and_urlsafe_base64_after_other_bytes(self) -> None:
        hexed = zlib.compress(SECRET).hex()
        self.assert_refused({"notes.txt": f"a\nb\nvalue: {hexed}\n"}, "notes.txt", 3)
        junk = base64.urlsafe_b64encode(bytes(range(1, 40)) + zlib.compress(SECRET)).decode().rstrip("=")
        self.assert_refused({"cfg.yaml": f"key: {junk}\n"}, "cfg.yaml", 1)

    def test_zip_and_the_shared_engine(self) -> None:
        stream = zlib.compressobj(9, zlib.DEFLATED, -15)
        raw = stream.compress(SECRET) + stream.flush()
        entry = (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 16 + b"\x01\x00\x00\x00" + b"a" + raw)
        self.assert_refused({"z.txt": "zip = " + base64.b64encode(entry).decode() + "\n"}, "z.txt", 1,
                            default_detector())

    def test_decoys_past_the_budget_refuse_the_push(self) -> None:
        decoy = base64.b64encode(zlib.compress(b"\x00" * (3 * 1024 * 1024))).decode()
        secret = base64.b64encode(zlib.compress(SECRET)).decode()
        with mock.patch.object(embedded, "PUSH_OUTPUT", 5 * 1024 * 1024):
            new, code, out = self.push({"data.txt": f"a = {decoy}\nb = {decoy}\nc = {secret}\n"})
        self.assertEqual(code, 1, out)
        self.assertIn(f"commit {new[:12]}: compressed file or archive data.txt (not read whole): detector scan-limit", out)

    def test_ordinary_source_passes(self) -> None:
        rnd = random.Random(5)
        benign = base64.b64encode(zlib.compress(b"hello world, nothing secret here at all " * 20)).decode()
        lines = [
            "def compute_the_really_long_identifier_name_for_tests(argument_number_one):",
            "    return argument_number_one.some_attribute_with_a_long_name_too",
            f'SHA256 = "{hashlib.sha256(b"x").hexdigest()}"',
            f'"integrity": "sha512-{base64.b64encode(hashlib.sha512(b"y").digest()).decode()}",',
            f'FIXTURE = "{benign}"',
            f'NOISE = "{base64.b64encode(rnd.randbytes(3000)).decode()}"',
            f'HEXNOISE = "{rnd.randbytes(500).hex()}"',
            "eJust_a_word_that_starts_like_zlib_base64 = 1",
            "H4sIAAAAAAAA_not_really_gzip = 2",
        ]
        _new, code, out = self.push({"app.py": "\n".join(lines) + "\n"}, default_detector())
        self.assertEqual(code, 0, out)


class LineStreamSourcesTest(unittest.TestCase):
    def test_identifiers_and_short_hashes_are_not_decoded(self) -> None:
        text = (b"def some_really_long_function_name_here(x):\n"
                b"    commit = '0123456789abcdef0123456789abcdef01234567'\n"
                b"    CamelCaseIdentifierThatIsLong = another_long_identifier_name\n")
        self.assertEqual(list(objects.encoded_runs(text)), [])

    def test_a_stream_start_is_decoded_with_its_offset(self) -> None:
        stream = zlib.compress(SECRET)
        text = b"x = 1\ny = '" + base64.b64encode(stream) + b"'\nz = '" + stream.hex().encode() + b"'\n"
        found = {data for _offset, data in objects.encoded_runs(text)}
        self.assertEqual(found, {stream})
        offsets = sorted(offset for offset, _data in objects.encoded_runs(text))
        self.assertEqual([text.count(b"\n", 0, offset) for offset in offsets], [1, 2])


def whole_text_runs(data: bytes) -> str:
    """Runs of text as read by decoding all of ``data`` at once (what ``text_runs`` gives)."""
    text = data.decode("utf-8", "replace").replace("\ufffd", "\x00")
    classes = text.encode("latin-1", "replace").translate(embedded._UTF8_CLASSES)
    return "\n".join(text[match.start():match.end()] for match in re.finditer(rb"c{8,}", classes))


class TextRunsSpansTest(unittest.TestCase):
    """Only spans that may hold text are decoded: the runs are those a decoding of the whole gives."""

    def test_mixtures_of_text_and_bytes_that_are_none(self) -> None:
        rnd = random.Random(4)
        words = ["abc", "Größe", "日本語", "ＧＨＰ＿", "\U0001f600x", "password=", " ", "\u0085", "é"]
        odd = [b"\xc3", b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\x00", b"\xff", b"\x80"]
        for _ in range(3000):
            parts = [rnd.choice(words).encode() if rnd.random() < 0.45 else rnd.choice(odd) if rnd.random() < 0.5
                     else rnd.randbytes(rnd.randrange(1, 6)) for _ in range(rnd.randrange(1, 30))]
            data = b"".join(parts)
            self.assertEqual(embedded.text_runs(data)[0], whole_text_runs(data), data)

    def test_text_cut_inside_a_character_at_either_end(self) -> None:
        text = "Привет, мир. 日本語のテキスト。Größe \U0001f600 ok ".encode() * 3
        for start in range(4):
            for end in range(len(text) - 4, len(text)):
                self.assertEqual(embedded.text_runs(text[start:end])[0], whole_text_runs(text[start:end]))

    def test_an_island_of_text_among_random_bytes(self) -> None:
        rnd = random.Random(6)
        secret = "Geheimnis-für-Müller-42"
        data = rnd.randbytes(5000) + b"\xff" + secret.encode() + b"\xff" + rnd.randbytes(5000)
        self.assertIn(secret, embedded.text_runs(data)[0].split("\n"))


if __name__ == "__main__":
    unittest.main()
