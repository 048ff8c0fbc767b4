"""Chunk-wise scanning of streamed bodies: what is released, when, and that a value cut by a
batch boundary is found before any byte of it leaves."""

from __future__ import annotations

import gzip
import json
import random
import unittest
import zlib

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp.stream import DEFAULT_OVERLAP, StreamScan, overlap_for

# Seeded: random bytes now and then hold a stretch that reads as text, and an unseeded run
# could then flake on an assertion of no finding.
NOISE = random.Random(6262)

SECRET = "s3cr3t-value-abcdefghijkl"
AWS_ID = "AKIAQ3EGRTHZ5SYXWN7K"


def filler(size: int) -> bytes:
    # Printable, token-free text: random bytes could by chance contain a detector's anchor.
    line = b"lorem ipsum dolor sit amet, consectetur adipiscing elit 0123456789\n"
    return (line * (size // len(line) + 1))[:size]


def make(scanner: Scanner, **kw) -> StreamScan:
    return StreamScan(
        scan_batch=lambda batch: scanner.scan_batch(batch, "body", deep=True),  # as the proxy does
        scan_whole=lambda body: scanner.scan_request("POST", "", [], body),
        **kw,
    )


def run(stream: StreamScan, data: bytes, chunk: int) -> tuple[bytes, list[int]]:
    """Feed ``data`` in ``chunk``-sized pieces; the forwarded bytes and, per feed, how many had
    been forwarded after it."""
    out = bytearray()
    progress = []
    for i in range(0, len(data), chunk):
        out += stream.feed(data[i:i + chunk])
        progress.append(len(out))
    out += stream.finish()
    return bytes(out), progress


class StreamScanTest(unittest.TestCase):
    def setUp(self) -> None:
        self.scanner = Scanner({"MY_SECRET": SECRET})

    def test_base64_of_a_tgz_longer_than_a_batch_is_held_whole_and_opened_or_refused(self) -> None:
        import base64
        import io
        import tarfile

        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            for name, data in (("blob.hex", NOISE.randbytes(1_500_000).hex().encode()),
                               (".env", f"TOKEN={SECRET}\n".encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        for blob in (base64.b64encode(archive.getvalue()), base64.encodebytes(archive.getvalue())):
            with self.subTest(wrapped=b"\n" in blob):
                body = b"payload=" + blob + b"&done=1"
                stream = make(self.scanner)
                out, _ = run(stream, body, 65536)
                self.assertTrue(stream.blocked)
                self.assertEqual(out, b"")
                self.assertIn("base64+gzip", {f.encoding for f in stream.findings})
                stream = make(self.scanner, max_whole=2 * 1024 * 1024)
                run(stream, body, 65536)
                self.assertEqual([f.detector for f in stream.findings], ["scan-limit"])
        # A short one, ending within a batch, streams as before.
        small = base64.b64encode(gzip.compress(b"hello world\n" * 100))
        stream = make(self.scanner)
        out, _ = run(stream, filler(3 * 1024 * 1024) + small + filler(1024), 65536)
        self.assertFalse(stream.blocked)
        self.assertFalse(stream.whole)

    def test_clean_body_is_forwarded_whole_and_unchanged(self) -> None:
        data = filler(3 * 1024 * 1024 + 123)
        for chunk in (1000, 65536, 700_000):
            with self.subTest(chunk=chunk):
                stream = make(self.scanner, batch=256 * 1024, overlap=4096)
                out, progress = run(stream, data, chunk)
                self.assertEqual(out, data)
                self.assertFalse(stream.blocked)
                self.assertEqual((stream.received, stream.forwarded), (len(data), len(data)))
                # Forwarded while it arrives, not only at the end.
                self.assertGreater(progress[-1], len(data) // 2)

    def test_nothing_is_released_before_a_batch_was_scanned(self) -> None:
        stream = make(self.scanner, batch=100_000, overlap=1000)
        self.assertEqual(stream.feed(filler(99_000)), b"")
        released = stream.feed(filler(2_000))
        self.assertEqual(len(released), 101_000 - 1000)  # all but the held-back overlap

    def test_secret_across_a_batch_boundary_is_found_before_any_byte_of_it_leaves(self) -> None:
        batch, overlap = 64 * 1024, 4096
        for cut in range(1, len(SECRET)):
            with self.subTest(cut=cut):
                start = 3 * batch - cut  # the batch boundary falls inside the secret
                data = filler(start) + SECRET.encode() + filler(batch)
                stream = make(self.scanner, batch=batch, overlap=overlap)
                out, _ = run(stream, data, batch)
                self.assertTrue(stream.blocked)
                self.assertLessEqual(len(out), start)
                self.assertEqual(out, data[:len(out)])
                self.assertEqual(stream.findings[0].secret_name, "MY_SECRET")

    def test_token_format_near_the_end_is_found_at_finish(self) -> None:
        data = filler(2 * 1024 * 1024) + b" key=" + AWS_ID.encode() + b"\n"
        stream = make(self.scanner, batch=512 * 1024, overlap=8192)
        out, _ = run(stream, data, 65536)
        self.assertTrue(stream.blocked)
        self.assertNotIn(AWS_ID.encode(), out)
        self.assertLess(len(out), len(data))
        self.assertEqual(stream.findings[0].detector, "aws-access-key-id")

    def test_after_a_hit_nothing_more_is_released(self) -> None:
        stream = make(self.scanner, batch=1024, overlap=128)
        stream.feed(filler(2000) + SECRET.encode() + filler(2000))
        self.assertTrue(stream.blocked)
        self.assertEqual(stream.feed(filler(100_000)), b"")
        self.assertEqual(stream.finish(), b"")

    def test_json_body_is_held_whole_and_judged_with_the_full_scan(self) -> None:
        # base64 of the secret inside a JSON value: found by the full (decoding) scan only.
        import base64

        hidden = base64.b64encode(SECRET.encode()).decode()
        doc = json.dumps({"blob": filler(300_000).decode(), "note": hidden}).encode()
        stream = make(self.scanner, batch=16 * 1024, overlap=1024)
        out, progress = run(stream, doc, 8192)
        self.assertTrue(stream.whole)
        self.assertEqual(progress[-1], 0)  # nothing released while it arrived
        self.assertEqual(out, b"")
        self.assertTrue(stream.blocked)
        clean = json.dumps({"blob": filler(300_000).decode()}).encode()
        stream = make(self.scanner, batch=16 * 1024, overlap=1024)
        self.assertEqual(run(stream, clean, 8192)[0], clean)

    def test_json_sniffing_can_be_turned_off(self) -> None:
        doc = json.dumps({"blob": filler(300_000).decode()}).encode()
        stream = make(self.scanner, batch=16 * 1024, overlap=1024, sniff_json=False)
        out, progress = run(stream, doc, 8192)
        self.assertFalse(stream.whole)
        self.assertGreater(progress[-1], 0)
        self.assertEqual(out, doc)

    def test_undeclared_gzip_is_inflated_on_the_way(self) -> None:
        packed = gzip.compress(filler(200_000) + SECRET.encode(), mtime=0)
        stream = make(self.scanner, batch=4096, overlap=512, sniff_json=False)
        out, _ = run(stream, packed, 1024)
        self.assertFalse(stream.whole)
        self.assertTrue(stream.blocked)
        self.assertLess(len(out), len(packed))
        self.assertLess(len(zlib.decompressobj(31).decompress(out)), 200_000)  # none of the value left

    def test_bzip2_xz_and_zip_are_held_and_opened(self) -> None:
        # Streamed as bytes, a secret compressed among megabytes of other data passed.
        import bz2
        import io
        import lzma
        import zipfile

        noise = NOISE.randbytes(3 * 1024 * 1024)
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("noise.bin", noise)
            z.writestr("notes.txt", "key=" + SECRET)
        bodies = {"zip": archive.getvalue(), "bzip2": bz2.compress(noise + SECRET.encode()),
                  "xz": lzma.compress(filler(300_000) + SECRET.encode())}
        for name, body in bodies.items():
            with self.subTest(name):
                stream = make(self.scanner, sniff_json=False)
                out, _ = run(stream, body, 65536)
                self.assertTrue(stream.whole)
                self.assertEqual(out, b"")
                self.assertTrue(stream.blocked)

    def test_a_body_held_whole_past_max_whole_is_refused_with_nothing_held(self) -> None:
        import bz2

        body = bz2.compress(NOISE.randbytes(2 * 1024 * 1024))
        stream = make(self.scanner, sniff_json=False, max_whole=1024 * 1024)
        out, _ = run(stream, body, 65536)
        self.assertEqual((out, [f.detector for f in stream.findings]), (b"", ["scan-limit"]))
        self.assertEqual(len(stream._pending), 0)

    def test_a_body_held_for_its_structure_streams_as_text_past_text_past(self) -> None:
        body = b'{"log": "' + filler(3 * 1024 * 1024) + b'"}'
        stream = make(self.scanner, batch=256 * 1024, whole=True, text_past=1024 * 1024)
        out, progress = run(stream, body, 65536)
        self.assertEqual(out, body)
        self.assertFalse(stream.whole)
        self.assertGreater(progress[-1], 0)  # released before the end
        stream = make(self.scanner, batch=256 * 1024, whole=True, text_past=1024 * 1024)
        out, _ = run(stream, body[:-2] + SECRET.encode() + b'"}', 65536)
        self.assertTrue(stream.blocked)

    def test_random_data_with_a_zlib_looking_start_streams(self) -> None:
        import os

        # 0x78 0x9c is a valid zlib header; what follows does not inflate.
        body = b"\x78\x9c" + b"\xff" * 62 + NOISE.randbytes(3 * 1024 * 1024)
        stream = make(self.scanner, sniff_json=False)
        out, _ = run(stream, body, 65536)
        self.assertFalse(stream.whole)
        self.assertEqual(out, body)

    def test_short_body_is_scanned_at_finish(self) -> None:
        stream = make(self.scanner)
        self.assertEqual(stream.feed(b"tiny"), b"")
        self.assertEqual(stream.finish(), b"tiny")
        stream = make(self.scanner)
        stream.feed(SECRET.encode())
        self.assertEqual(stream.finish(), b"")
        self.assertTrue(stream.blocked)

    def test_random_binary_body_passes(self) -> None:
        data = NOISE.randbytes(600_000)
        stream = make(self.scanner, batch=100_000, overlap=2048)
        out, _ = run(stream, data, 30_000)
        if stream.blocked:  # a random match of a token format is possible, if unlikely: show it
            self.fail(f"random data flagged: {stream.findings}")
        self.assertEqual(out, data)

    def test_a_small_body_of_unknown_length_gets_the_full_scan(self) -> None:
        import base64

        hidden = b"data " + base64.b64encode(SECRET.encode()) + b" end"
        stream = make(self.scanner, hold_upto=1000)
        self.assertEqual(stream.feed(hidden), b"")
        self.assertEqual(stream.finish(), b"")
        self.assertTrue(stream.blocked)  # the direct layer alone would not decode the base64
        self.assertIn("base64", stream.findings[0].encoding)

    def test_nothing_is_released_within_hold_upto(self) -> None:
        stream = make(self.scanner, batch=1000, overlap=100, hold_upto=5000)
        self.assertEqual(stream.feed(filler(4000)), b"")
        released = stream.feed(filler(2000))
        self.assertEqual(len(released), 6000 - 100)

    def test_overlap_covers_every_encoded_form_of_a_long_secret(self) -> None:
        self.assertEqual(overlap_for([]), DEFAULT_OVERLAP)
        self.assertEqual(overlap_for(["x" * 10]), DEFAULT_OVERLAP)
        self.assertGreaterEqual(overlap_for(["é" * 20_000]), 3 * 40_000)



class NothingToLookForTest(unittest.TestCase):
    def test_a_scanner_with_every_detector_off_skips_streamed_batches_and_one_with_any_on_does_not(self) -> None:
        from bot_bottle.sidecar.dlp.scanner import Scanner, ScanOptions

        token = "ghp_" + "q8Yt3LmN0pR5sV2wX7zA9cE4gJ6kB1dF0hUi"
        secret = "s3cr3t-value-for-the-bench-0123456789"
        batch = bytearray(f"a={token}&b={secret}".encode())
        off = ScanOptions(tokens=False, known_secrets=False, entropy=False)
        self.assertEqual(Scanner({"S": secret}, off).scan_batch(batch, deep=True), [])
        self.assertEqual(Scanner({}, ScanOptions(tokens=False, entropy=False)).scan_batch(batch, deep=True), [])
        self.assertTrue(Scanner({"S": secret}, ScanOptions(tokens=False, entropy=False)).scan_batch(batch, deep=True))
        self.assertTrue(Scanner({}, ScanOptions(known_secrets=False, entropy=False)).scan_batch(batch, deep=True))


class InflatedStreamTest(unittest.TestCase):
    """gzip and zlib bodies (and gzip/deflate Content-Encodings) are inflated as they stream and
    their output scanned like a plain body's: any size, in bounded memory, and no compressed byte
    leaves before what it encodes was scanned."""

    def setUp(self) -> None:
        self.scanner = Scanner({"MY_SECRET": SECRET})
        self.text = filler(6 * 1024 * 1024)

    def stream(self, **kw) -> StreamScan:
        return make(self.scanner, batch=256 * 1024, overlap=4096, sniff_json=False, **kw)

    def test_clean_compressed_bodies_pass_unchanged_while_they_arrive(self) -> None:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        raw_deflate = c.compress(self.text) + c.flush()
        bodies = {
            "gzip": (gzip.compress(self.text, 6), None),
            "gzip of random data": (gzip.compress(NOISE.randbytes(4 * 1024 * 1024), 1), None),
            "zlib": (zlib.compress(self.text), None),
            "two gzip members": (gzip.compress(self.text[:100_000]) + gzip.compress(self.text), None),
            "declared gzip": (gzip.compress(self.text), "gzip"),
            "declared deflate (zlib)": (zlib.compress(self.text), "deflate"),
            "declared deflate (raw)": (raw_deflate, "deflate"),
        }
        for name, (body, declared) in bodies.items():
            for chunk in (1000, 65536):
                with self.subTest(name, chunk=chunk):
                    stream = self.stream(inflate=declared)
                    out, progress = run(stream, body, chunk)
                    self.assertFalse(stream.blocked)
                    self.assertEqual(out, body)
                    self.assertEqual((stream.received, stream.forwarded), (len(body), len(body)))
                    if len(body) > 8 * 65536:
                        self.assertGreater(progress[-1], 0)  # not held to the end

    def test_no_compressed_byte_leaves_before_what_it_encodes_was_scanned(self) -> None:
        at = 4_000_000
        for hidden in (SECRET.encode(), b"key " + __import__("base64").b64encode(SECRET.encode()), AWS_ID.encode()):
            plain = self.text[:at] + b"\n" + hidden + b"\n" + self.text[at:]
            for level in (1, 9):
                for chunk in (333, 4096, 65536, 1_000_000):
                    with self.subTest(hidden=hidden[:8], level=level, chunk=chunk):
                        body = gzip.compress(plain, level)
                        stream = self.stream()
                        out, _ = run(stream, body, chunk)
                        self.assertTrue(stream.blocked)
                        self.assertLessEqual(len(zlib.decompressobj(31).decompress(out)), at)

    def test_a_secret_in_a_later_member_or_after_the_compressed_data_is_found(self) -> None:
        first = gzip.compress(self.text, 1)
        for name, body in {"second gzip member": first + gzip.compress(b"x" * 1000 + SECRET.encode()),
                           "bytes after the gzip data": first + b"trailer " + SECRET.encode()}.items():
            with self.subTest(name):
                stream = self.stream()
                out, _ = run(stream, body, 65536)
                self.assertTrue(stream.blocked)
                self.assertLessEqual(len(out), len(first))

    def test_a_body_that_does_not_inflate_is_refused_as_a_scan_limit(self) -> None:
        body = bytearray(gzip.compress(NOISE.randbytes(3 * 1024 * 1024), 1))
        body[len(body) // 2: len(body) // 2 + 64] = bytes(64)
        stream = self.stream()
        out, _ = run(stream, bytes(body), 65536)
        self.assertEqual([f.detector for f in stream.findings], ["scan-limit"])
        self.assertLess(len(out), len(body))

    def test_a_bomb_streams_through_in_bounded_memory(self) -> None:
        bomb = gzip.compress(bytes(200 * 1024 * 1024), 9)  # 200 MiB of zeros in ~200 KB
        stream = self.stream()
        largest = 0
        out = bytearray()
        for i in range(0, len(bomb), 65536):
            out += stream.feed(bomb[i:i + 65536])
            largest = max(largest, len(stream._pending))
        out += stream.finish()
        self.assertEqual(bytes(out), bomb)
        self.assertLessEqual(largest, 2 * 256 * 1024 + 4096)


if __name__ == "__main__":
    unittest.main()
