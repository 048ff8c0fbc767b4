"""Buffered body decoding reads what an upstream may read: every gzip member, and bytes after
the compressed data as sent (a trailer, a member that does not decode, bytes after a zlib or
deflate stream), with and without a Content-Encoding, and beneath it (``archives``)."""

from __future__ import annotations

import bz2
import gzip
import unittest
import zlib

from bot_bottle.sidecar.dlp import archives
from bot_bottle.sidecar.dlp.bodies import decode_body
from bot_bottle.sidecar.dlp.scanner import Scanner

GHP = b"ghp_" + b"q8Yt3LmN0pR5sV2wX7zA9cE4gJ6kB1dF0hUi"
LIMIT = 1 << 20
URL = "https://upload.example/v1/blob"
BINARY = (("Content-Type", "application/octet-stream"),)


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


class BufferedDecodeTest(unittest.TestCase):
    def test_every_gzip_member_is_read(self) -> None:
        body = gzip.compress(b"first ") + gzip.compress(b"second " + GHP) + gzip.compress(b" third")
        for encoding in ("gzip", None):
            with self.subTest(encoding=encoding):
                self.assertEqual(decode_body(body, encoding, LIMIT).data, b"first second " + GHP + b" third")

    def test_bytes_after_the_last_member_are_read_as_sent(self) -> None:
        for encoding in ("gzip", "x-gzip", None):
            with self.subTest(encoding=encoding):
                decoded = decode_body(gzip.compress(b"hello") + b" and then " + GHP, encoding, LIMIT)
                self.assertIsNone(decoded.error)
                self.assertIn(GHP, decoded.data)
                self.assertTrue(decoded.data.startswith(b"hello"))

    def test_a_later_member_that_does_not_decode_is_read_as_sent(self) -> None:
        body = gzip.compress(b"hello") + b"\x1f\x8b\x08 not really gzip " + GHP
        self.assertIn(GHP, decode_body(body, "gzip", LIMIT).data)

    def test_bytes_after_a_deflate_stream_are_read_as_sent(self) -> None:
        for name, stream in (("zlib", zlib.compress(b"hello")), ("raw", raw_deflate(b"hello"))):
            with self.subTest(stream=name):
                decoded = decode_body(stream + b" " + GHP, "deflate", LIMIT)
                self.assertEqual(decoded.data, b"hello " + GHP)
                self.assertFalse(decoded.truncated)

    def test_bomb_limits_hold(self) -> None:
        bomb = gzip.compress(b"\0" * (4 * LIMIT))
        for body in (bomb, gzip.compress(b"a") + bomb, bomb + b"tail"):
            with self.subTest(size=len(body)):
                decoded = decode_body(body, "gzip", LIMIT)
                self.assertTrue(decoded.truncated)
                self.assertEqual(len(decoded.data), LIMIT)
        tail = decode_body(gzip.compress(b"a" * 10) + b"b" * 100, "gzip", 50)
        self.assertEqual((tail.data, tail.truncated), (b"a" * 10 + b"b" * 40, True))
        deflated = decode_body(zlib.compress(b"\0" * (4 * LIMIT)) + b"tail", "deflate", LIMIT)
        self.assertTrue(deflated.truncated)
        self.assertEqual(len(deflated.data), LIMIT)

    def test_clean_bodies_decode_as_before(self) -> None:
        self.assertEqual(decode_body(gzip.compress(b"plain"), "gzip", LIMIT).data, b"plain")
        self.assertEqual(decode_body(zlib.compress(b"plain"), "deflate", LIMIT).data, b"plain")
        self.assertEqual(decode_body(raw_deflate(b"plain"), "deflate", LIMIT).data, b"plain")
        cut = gzip.compress(b"x" * 1000)[:-12]  # ends inside the member: what decoded, no tail
        self.assertFalse(decode_body(cut, "gzip", LIMIT).truncated)
        self.assertIsNotNone(decode_body(b"\x1f\x8bnot gzip", "gzip", LIMIT).error)


class UndeclaredLayersTest(unittest.TestCase):
    def test_bytes_after_an_undeclared_stream_stay_in_the_data(self) -> None:
        for name, stream in (("zlib", zlib.compress(b"hello world")), ("bzip2", bz2.compress(b"hello world"))):
            with self.subTest(stream=name):
                found = archives.expand(stream + b" " + GHP, LIMIT)
                self.assertEqual(found.layers, [name])
                self.assertEqual(found.data, b"hello world " + GHP)

    def test_nested_gzip_with_a_trailer(self) -> None:
        inner = gzip.compress(b"a") + b" " + GHP
        self.assertIn(GHP, archives.expand(gzip.compress(inner), LIMIT).data)
        self.assertIn(GHP, decode_body(gzip.compress(inner), "gzip", LIMIT, nested=True).data)

    def test_members_and_streams_still_join(self) -> None:
        self.assertEqual(archives.expand(bz2.compress(b"a") + bz2.compress(b"b"), LIMIT).data, b"ab")
        self.assertEqual(archives.expand(gzip.compress(b"a") + gzip.compress(b"b"), LIMIT).data, b"ab")

    def test_the_trailer_is_not_charged_as_output(self) -> None:
        body = zlib.compress(b"x" * 10) + b"y" * 100
        found = archives.expand(body, 20)
        self.assertEqual((found.data, found.truncated, found.limits), (b"x" * 10 + b"y" * 100, False, []))

    def test_text_that_starts_like_a_header_is_left_alone(self) -> None:
        for text in (b"x^ hello " + GHP, b"x\x9c" + GHP, b"\x1f\x8b" + GHP):
            with self.subTest(text=text[:4]):
                self.assertEqual(archives.expand(text, LIMIT).layers, [])


class ScannedTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.scanner = Scanner(secrets={})

    def found(self, body: bytes, encoding: str | None = None) -> set[str]:
        headers = BINARY + ((("Content-Encoding", encoding),) if encoding else ())
        return {f.detector for f in self.scanner.scan_request("POST", URL, headers, body)}

    def test_a_token_after_compressed_data_is_found(self) -> None:
        for encoding, body in (
            ("gzip", gzip.compress(b"hello") + b" " + GHP),
            ("deflate", zlib.compress(b"hello") + b" " + GHP),
            (None, zlib.compress(b"hello world") + b" " + GHP),  # undeclared: stored as sent
            (None, gzip.compress(b"hello") + b" " + GHP),
        ):
            with self.subTest(encoding=encoding, head=body[:2]):
                self.assertIn("github-token", self.found(body, encoding))

    def test_clean_compressed_bodies_find_nothing(self) -> None:
        text = b"a perfectly ordinary upload " * 40
        for encoding, body in (("gzip", gzip.compress(text) + gzip.compress(text)), ("deflate", zlib.compress(text)),
                               (None, zlib.compress(text) + b"\0" * 8)):
            with self.subTest(encoding=encoding):
                self.assertEqual(self.found(body, encoding), set())


if __name__ == "__main__":
    unittest.main()
