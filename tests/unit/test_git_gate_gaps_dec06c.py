"""Push-scan gaps: compressed streams that start partway through a file.

A zlib stream after other bytes (``junk + zlib.compress(secret)``), a gzip member or a deflated
zip entry after bytes of their own, in a binary file or one git diffs as text, were scanned as
their compressed bytes: a secret in one passed. The gate now tries every place such a stream
could start (``embedded``), under a budget of tries and inflated bytes per file and per push;
past a budget the push is refused as a scan-limit naming the file, so decoys placed before the
real stream cannot hide it. Ordinary files holding such streams (PNG, PDF, git packs, random
bytes) still pass.
"""

from __future__ import annotations

import gzip
import io
import random
import shutil
import struct
import unittest
import zipfile
import zlib
from unittest import mock

from bot_bottle.sidecar.git_gate import embedded, patch
from bot_bottle.sidecar.git_gate.scan import PatternDetector, default_detector
from tests._requires import requires
from tests.unit.git_gate_repo_helper import push_repos

GHP = "ghp_" + "Wq3Zr8Tn5Lm2Xv7Kc4Bp9Hd6Fs1Jg0Ya5UeQ2"
SECRET = f"token = {GHP}\n".encode()
JUNK = bytes(range(1, 101))  # no NUL before the stream; a chance zlib header (18 19) among it
HAS_GIT = shutil.which("git") is not None
MiB = 1024 * 1024


def png(rows: list[bytes], width: int, piece: int = 8192) -> bytes:
    """A grayscale PNG of ``rows`` (``width`` bytes each), its image data in IDAT chunks of
    ``piece`` bytes (as libpng writes them)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    stream = zlib.compress(b"".join(b"\x00" + row for row in rows))
    header = struct.pack(">IIBBBBB", width, len(rows), 8, 0, 0, 0, 0)
    idat = b"".join(chunk(b"IDAT", stream[at:at + piece]) for at in range(0, len(stream), piece))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + idat + chunk(b"IEND", b"")


def pdf(texts: list[bytes]) -> bytes:
    """A PDF-like file with one FlateDecode stream per text."""
    out = [b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"]
    for number, text in enumerate(texts, start=1):
        body = zlib.compress(text)
        out.append(b"%d 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % (number, len(body)))
        out.append(body + b"\nendstream\nendobj\n")
    out.append(b"trailer\n<< /Size %d >>\n%%%%EOF\n" % (len(texts) + 1))
    return b"".join(out)


@requires(HAS_GIT, "git")
class StreamPartwayPushTest(unittest.TestCase):
    """A real push through the hook: a secret in a stream that starts partway is refused."""

    def push(self, files: dict[str, bytes], detector=None) -> tuple[int, str]:  # type: ignore[no-untyped-def]
        repos = push_repos(self)
        new = repos.commit(files, "add")
        self.new = new
        return repos.push_main(new, detector or PatternDetector())

    def assert_found(self, name: str, data: bytes, detector=None) -> None:  # type: ignore[no-untyped-def]
        code, out = self.push({name: data}, detector)
        self.assertEqual(code, 1, out)
        self.assertIn(f"commit {self.new[:12]}: decompressed content of file {name}: detector github-token", out)
        self.assertNotIn(GHP, out)

    def test_a_zlib_stream_after_other_bytes_in_a_binary_file(self) -> None:
        self.assert_found("blob.bin", b"\x00" + JUNK + zlib.compress(SECRET) + JUNK)

    def test_a_zlib_stream_after_a_text_header_in_a_file_git_diffs_as_text(self) -> None:
        # Without a NUL git diffs it as text (the stream is in its added lines, shown as U+FFFD);
        # zlib's last bytes hold one, and the stream cut before it still gives the secret.
        stream = zlib.compress(SECRET)
        data = b"header line\n" + stream[:stream.index(b"\x00")]
        self.assert_found("notes.txt", data)

    def test_a_stream_whose_checksum_was_damaged_or_that_is_cut_short(self) -> None:
        stream = zlib.compress(SECRET)
        self.assert_found("bad-adler.bin", JUNK + stream[:-4] + b"\x00\x00\x00\x00")
        self.assert_found("cut.bin", JUNK + stream[:-6])

    def test_a_stream_with_any_window_size(self) -> None:
        packer = zlib.compressobj(9, zlib.DEFLATED, 9)  # header 18 xx: CINFO 1
        self.assert_found("small-window.bin", JUNK + packer.compress(SECRET) + packer.flush())

    def test_a_gzip_member_and_a_deflated_zip_entry_after_other_bytes(self) -> None:
        self.assert_found("member.bin", b"\x00" + JUNK + gzip.compress(SECRET))
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
            handle.writestr("a.txt", SECRET * 3)
        self.assert_found("appended.bin", b"\x00" + JUNK + archive.getvalue())

    def test_streams_nested_after_other_bytes(self) -> None:
        self.assert_found("nested.bin", b"\x00" + JUNK + zlib.compress(JUNK + zlib.compress(SECRET)))

    def test_a_token_stored_wide_inside_a_stream(self) -> None:
        self.assert_found("wide.bin", b"\x00" + JUNK + zlib.compress(SECRET.decode().encode("utf-16-le")))

    def test_a_stream_across_the_gates_read_chunks(self) -> None:
        # The header a few bytes before the 1 MiB boundary of blob_chunks, its data after it.
        data = random.Random(1).randbytes(patch.CHUNK - 5) + zlib.compress(SECRET * 50)
        self.assert_found("seam.bin", b"\x00" + data)

    def test_pixels_spelling_a_token_past_a_pngs_first_idat_chunk(self) -> None:
        rnd = random.Random(4)
        rows = [rnd.randbytes(200) for _ in range(300)] + [SECRET.ljust(200, b" ")]
        self.assert_found("image.png", png(rows, 200))

    def test_the_shared_engine_finds_it_too(self) -> None:
        self.assert_found("engine.bin", b"\x00" + JUNK + zlib.compress(SECRET), default_detector())

    def test_a_png_a_pdf_a_git_pack_and_random_bytes_pass(self) -> None:
        rnd = random.Random(3)
        rows = [bytes((x * y) % 251 for x in range(256)) for y in range(256)]
        files = {
            "image.png": png(rows, 256),
            "doc.pdf": pdf([b"BT /F1 12 Tf 72 712 Td (Hello, world) Tj ET\n" * 40, rnd.randbytes(4000)]),
            "noise.bin": rnd.randbytes(2 * MiB),
            "objects.pack": b"PACK" + b"".join(zlib.compress(b"def f():\n    return %d\n" % i) for i in range(300)),
        }
        code, out = self.push(files)
        self.assertEqual(code, 0, out)


@requires(HAS_GIT, "git")
class StreamBudgetPushTest(unittest.TestCase):
    """Past a budget the push is refused, naming the file: decoys cannot hide the real stream."""

    def push(self, files: dict[str, bytes]) -> tuple[int, str]:
        repos = push_repos(self)
        self.new = repos.commit(files, "add")
        return repos.push_main(self.new, PatternDetector())

    def test_decoys_that_inflate_past_the_files_budget_refuse_the_push(self) -> None:
        decoy = zlib.compress(b"\x00" * (40 * MiB))  # ~40 KB each, 80 MiB inflated in all
        code, out = self.push({"decoys.bin": b"\x00" + JUNK + decoy + JUNK + decoy + JUNK + zlib.compress(SECRET)})
        self.assertEqual(code, 1, out)
        self.assertIn(f"commit {self.new[:12]}: compressed file or archive decoys.bin (not read whole): detector"
                      " scan-limit (its compressed streams inflate to more than 64 MiB, the scan limit)", out)
        self.assertIn("git-gate: a scan-limit means a compressed file or archive could not be read whole", out)

    def test_streams_spread_over_files_past_the_pushs_budget_refuse_it(self) -> None:
        decoy = zlib.compress(b"\x00" * (3 * MiB))
        with mock.patch.object(embedded, "PUSH_OUTPUT", 5 * MiB):
            code, out = self.push({"a.bin": b"\x00" + JUNK + decoy, "b.bin": b"\x00" + JUNK + decoy})
        self.assertEqual(code, 1, out)
        self.assertIn("compressed file or archive b.bin (not read whole): detector scan-limit (the push's compressed"
                      " streams inflate to more than 5 MiB in all, the most the gate reads in one push)", out)
        self.assertIn("push the work in smaller parts", out)

    def test_a_file_of_headers_past_the_tries_budget_refuses_the_push(self) -> None:
        code, out = self.push({"headers.bin": b"\x00" + b"x\x9c\x02" * 15000})
        self.assertEqual(code, 1, out)
        self.assertIn("compressed file or archive headers.bin (not read whole): detector scan-limit (it holds more"
                      " places where a compressed stream could start than the gate tries in a file (4096 plus one"
                      " per 128 bytes))", out)

    def test_tries_past_the_pushs_budget_refuse_it(self) -> None:
        with mock.patch.object(embedded, "PUSH_TRIES", 3000):
            code, out = self.push({"a.bin": b"\x00" + b"x\x9c" * 2000, "b.bin": b"\x00" + b"x\x9c" * 2000})
        self.assertEqual(code, 1, out)
        self.assertIn("b.bin (not read whole): detector scan-limit (the push holds more than 3000 places where a"
                      " compressed stream could start, the most the gate tries in one push)", out)

    def test_streams_nested_deeper_than_read_refuse_the_push(self) -> None:
        data = SECRET
        for _ in range(embedded.MAX_NESTING + 1):
            data = JUNK + zlib.compress(data)
        code, out = self.push({"deep.bin": b"\x00" + data})
        self.assertEqual(code, 1, out)
        self.assertIn("deep.bin (not read whole): detector scan-limit (it holds compressed streams nested more than"
                      f" {embedded.MAX_NESTING} deep)", out)


class FinderTest(unittest.TestCase):
    """``embedded.Finder`` fed in pieces finds what it finds in the whole."""

    def found(self, data: bytes, step: int) -> list[bytes]:
        finder = embedded.Finder(embedded.Budget())
        parts = []
        for start in range(0, len(data), step):
            parts += finder.feed(data[start:start + step])
        parts += finder.end()
        return [part.data for part in parts if SECRET in part.data]

    def test_a_header_split_by_a_feed_and_a_stream_across_many(self) -> None:
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
            handle.writestr("a.txt", SECRET)
        for stream in (zlib.compress(SECRET * 20), gzip.compress(SECRET), archive.getvalue()):
            data = random.Random(5).randbytes(3000).replace(b"\x1f", b"\x1e") + stream + JUNK
            for step in (1, 7, 29, 31, 1000, len(data)):
                self.assertTrue(self.found(data, step), (stream[:4], step))

    def test_random_bytes_spend_a_few_tries_and_stay_within_budget(self) -> None:
        budget = embedded.Budget()
        parts = list(embedded.streams_in(random.Random(9).randbytes(4 * MiB), budget))
        self.assertEqual([p.limit for p in parts if p.limit], [])
        self.assertLess(embedded.PUSH_TRIES - budget.tries, 4 * MiB // 1000)  # about one per 2 KiB
        self.assertLess(embedded.PUSH_OUTPUT - budget.output, 256 * 1024)

    def test_a_pngs_image_data_read_in_pieces_is_its_stream_joined(self) -> None:
        rnd = random.Random(6)
        rows = [rnd.randbytes(100) for _ in range(200)]
        stream = zlib.compress(b"".join(b"\x00" + row for row in rows))
        for piece in (1000, 1 << 20):
            data = png(rows, 100, piece)
            for step in (1, 5, 8, 13, 4096):
                layout = embedded.PngLayout()
                image = b""
                for start in range(0, len(data), step):
                    image += layout.feed(data[start:start + step])[0]
                self.assertEqual(image, stream, (piece, step))
                self.assertEqual([layout.outside(at) for at in (0, 40, 41, len(data) - 17, len(data) - 16)],
                                 [True, True, False, False, True], (piece, step))

    def test_text_runs_and_wide_runs(self) -> None:
        runs, wide = embedded.text_runs(b"\x01\x02short\x03" + SECRET + b"\xff\xfe")
        self.assertEqual((runs, wide), (SECRET.decode(), False))
        for codec in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
            self.assertTrue(embedded.text_runs(b"\xff" + GHP.encode(codec) + b"\xff")[1], codec)
            self.assertFalse(embedded.text_runs(b"\xff" + "ghp_ab".encode(codec) + b"\xff")[1], codec)


if __name__ == "__main__":
    unittest.main()
