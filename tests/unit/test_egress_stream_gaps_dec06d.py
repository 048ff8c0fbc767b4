"""Streamed bodies inflated on the way, cut where the first bytes do not yet say how to inflate
them: a ``deflate`` body's zlib header (2 bytes) split over two chunks, and a gzip body's next
member starting with a chunk of 1 byte. Each is read as the buffered path and the upstream read
it, not as raw deflate or as bytes past the compressed data."""

from __future__ import annotations

import gzip
import unittest
import zlib
from collections.abc import Iterable

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp.findings import SCAN_LIMIT
from bot_bottle.sidecar.dlp.stream import Inflow, StreamScan
from bot_bottle.sidecar.egress import stream_method

SECRET = "s3cr3t-value-abcdefghijkl"
FORM = b"title=hello&_method=DELETE&body=" + b"lorem ipsum " * 50


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def pieces(body: bytes, cuts: Iterable[int]) -> list[bytes]:
    """``body`` cut at each offset of ``cuts`` (increasing), the rest in one piece."""
    out, start = [], 0
    for cut in cuts:
        out.append(body[start:cut])
        start = cut
    out.append(body[start:])
    return out


def inflated(coding: str, chunks: list[bytes]) -> bytes:
    decoder = stream_method.body_decoder(coding)
    out = bytearray()
    for i, chunk in enumerate(chunks):
        for piece in stream_method.decoded(decoder, chunk, final=i == len(chunks) - 1):
            out += piece
    return bytes(out)


class DeflateSniffTest(unittest.TestCase):
    def test_zlib_deflate_body_whose_first_chunk_is_one_byte_is_inflated_as_zlib(self) -> None:
        body = zlib.compress(FORM)
        for cuts in ([1], [1, 2], [1, 2, 3], [1, 5]):
            with self.subTest(cuts=cuts):
                self.assertEqual(inflated("deflate", pieces(body, cuts)), FORM)

    def test_raw_deflate_body_whose_first_chunk_is_one_byte_is_still_read_raw(self) -> None:
        body = raw_deflate(FORM)
        for cuts in ([1], [1, 2]):
            with self.subTest(cuts=cuts):
                self.assertEqual(inflated("deflate", pieces(body, cuts)), FORM)

    def test_empty_first_chunks_do_not_decide(self) -> None:
        body = zlib.compress(FORM)
        self.assertEqual(inflated("deflate", [b"", body[:1], b"", body[1:]]), FORM)

    def test_unchanged_for_bodies_cut_elsewhere(self) -> None:
        for coding, body in (("deflate", zlib.compress(FORM)), ("deflate", raw_deflate(FORM)),
                             ("gzip", gzip.compress(FORM))):
            for cuts in ([], [2], [7, 30]):
                with self.subTest(coding=coding, cuts=cuts):
                    self.assertEqual(inflated(coding, pieces(body, cuts)), FORM)

    def test_a_body_of_one_byte_ends_without_output_or_error(self) -> None:
        for byte in (b"x", b"\x03", b"\x00"):
            with self.subTest(byte=byte):
                self.assertEqual(inflated("deflate", [byte]), b"")

    def test_two_byte_deflate_body_split_in_one_byte_chunks(self) -> None:
        # The shortest raw deflate stream: an empty final fixed-Huffman block.
        self.assertEqual(inflated("deflate", [b"\x03", b"\x00"]), b"")

    def test_next_gzip_member_starting_with_a_one_byte_chunk_is_inflated(self) -> None:
        first = gzip.compress(b"title=hello&")
        second = gzip.compress(FORM)
        body = first + second
        for cuts in ([len(first) + 1], [len(first), len(first) + 1], [len(first) - 3, len(first) + 1]):
            with self.subTest(cuts=cuts):
                self.assertEqual(inflated("gzip", pieces(body, cuts)), b"title=hello&" + FORM)

    def test_next_gzip_member_after_one_inflated_in_several_pieces_is_read_once(self) -> None:
        # The first member inflates to more than one piece (``INFLATE_PIECE``): the bytes past
        # its end are read once, whole chunk or cut.
        big = b"title=hello&" + b"a" * (3 * stream_method.INFLATE_PIECE) + b"&"
        first = gzip.compress(big)
        second = gzip.compress(FORM)
        body = first + second
        for cuts in ([], [len(first) + 1], [len(first) + 9], [len(first) + len(second) // 2]):
            with self.subTest(cuts=cuts):
                self.assertEqual(inflated("gzip", pieces(body, cuts)), big + FORM)

    def test_bytes_after_the_gzip_data_are_still_read_as_sent(self) -> None:
        first = gzip.compress(b"title=hello&")
        body = first + b"x&_method=DELETE"
        for cuts in ([len(first) + 1], [len(first), len(first) + 1]):
            with self.subTest(cuts=cuts):
                self.assertEqual(inflated("gzip", pieces(body, cuts)), b"title=hello&x&_method=DELETE")

    def test_a_one_byte_trailer_after_the_gzip_data_is_read_at_the_end(self) -> None:
        first = gzip.compress(b"title=hello&")
        self.assertEqual(inflated("gzip", [first, b"\x1f"]), b"title=hello&\x1f")

    def test_inflow_produced_counts_only_output(self) -> None:
        inflow = Inflow("deflate")
        body = zlib.compress(FORM)
        out = b"".join(inflow.inflate(body[:1], 1 << 20)) + b"".join(inflow.inflate(body[1:], 1 << 20))
        out += inflow.flush()
        self.assertEqual((out, inflow.produced), (FORM, len(FORM)))


class DlpStreamDeflateSniffTest(unittest.TestCase):
    """The DLP stream scan inflates a declared deflate body with the same ``Inflow``."""

    def stream(self) -> StreamScan:
        scanner = Scanner({"MY_SECRET": SECRET})
        return StreamScan(
            scan_batch=lambda batch: scanner.scan_batch(batch, "body", deep=True),
            scan_whole=lambda body: scanner.scan_request("POST", "", [], body),
            batch=64 * 1024, overlap=4096, sniff_json=False, inflate="deflate",
        )

    def run_chunks(self, stream: StreamScan, chunks: list[bytes]) -> bytes:
        out = bytearray()
        for chunk in chunks:
            out += stream.feed(chunk)
        return bytes(out + stream.finish())

    def test_clean_zlib_body_with_a_one_byte_first_chunk_passes(self) -> None:
        body = zlib.compress(b"nothing to see here " * 5000)
        stream = self.stream()
        out = self.run_chunks(stream, pieces(body, [1, 4096]))
        self.assertFalse(stream.blocked, stream.findings)
        self.assertEqual(out, body)

    def test_secret_in_zlib_body_with_a_one_byte_first_chunk_is_found_by_its_detector(self) -> None:
        body = zlib.compress(b"nothing to see here " * 5000 + SECRET.encode() + b"\n")
        stream = self.stream()
        out = self.run_chunks(stream, pieces(body, [1, 4096]))
        self.assertTrue(stream.blocked)
        self.assertNotIn(SCAN_LIMIT, [f.detector for f in stream.findings])
        self.assertLess(len(out), len(body))

    def test_secret_in_a_later_gzip_member_whose_first_byte_arrives_alone_is_found(self) -> None:
        first = gzip.compress(b"nothing to see here " * 5000)
        body = first + gzip.compress(b"x" * 1000 + SECRET.encode() + b"\n")
        scanner = Scanner({"MY_SECRET": SECRET})
        stream = StreamScan(
            scan_batch=lambda batch: scanner.scan_batch(batch, "body", deep=True),
            scan_whole=lambda whole: scanner.scan_request("POST", "", [], whole),
            batch=64 * 1024, overlap=4096, sniff_json=False, inflate="gzip",
        )
        self.run_chunks(stream, pieces(body, [len(first) + 1]))
        self.assertTrue(stream.blocked)
        self.assertNotIn(SCAN_LIMIT, [f.detector for f in stream.findings])


if __name__ == "__main__":
    unittest.main()
