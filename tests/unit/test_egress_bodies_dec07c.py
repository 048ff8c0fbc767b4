"""A redacted compressed request body leaves in the form the agent sent it: each gzip member
(deflate or br stream) compressed again with what the redaction left of it, bytes after the
compressed data kept after it (redacted where they held the value), its Content-Encoding kept,
gzip found by its magic number sent as gzip again; a body that cannot be rebuilt that way is
refused rather than sent in another form. Through the proxy's addon with the real DLP engine,
and ``bodies.encode_like`` on its own."""

from __future__ import annotations

import gzip
import json
import unittest
import zlib

from bot_bottle.sidecar.dlp import bodies
from bot_bottle.sidecar.dlp.bodies import decode_body
from tests.unit.test_sidecar_addon import AddonCase

try:
    import brotli  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - mitmproxy depends on it
    brotli = None

SECRET = b"hunter2-is-the-db-password-42"
MARK = b"[REDACTED:DB_PASSWORD]"
LIMIT = 1 << 20
HOST = "redact.example"
POLICY = {
    "version": 2,
    "log": 1,
    "routes": [
        {"host": HOST, "ports": [443], "dlp": {"outbound_on_match": "redact"}},
        {"host": "block.example", "ports": [443], "dlp": {"outbound_on_match": "block"}},
    ],
}
SECRETS = {"credentials": {}, "known_secrets": {"DB_PASSWORD": SECRET.decode()}}


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def gzip_members(body: bytes) -> tuple[list[bytes], bytes]:
    """The decoded content of each gzip member, and the bytes after the last one."""
    members: list[bytes] = []
    rest = body
    while rest[:2] == b"\x1f\x8b":
        decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            members.append(decomp.decompress(rest))
        except zlib.error:
            break
        if not decomp.eof:
            break
        rest = decomp.unused_data
    return members, rest


def zlib_stream(body: bytes, wbits: int = zlib.MAX_WBITS) -> tuple[bytes, bytes]:
    decomp = zlib.decompressobj(wbits)
    out = decomp.decompress(body)
    return out, decomp.unused_data


class EncodeLikeTest(unittest.TestCase):
    """``encode_like(original, encoding, redacted)``: the framing of ``original`` kept."""

    def redacted(self, original: bytes, encoding: str | None) -> bytes:
        flat = decode_body(original, encoding, LIMIT).data
        self.assertIn(SECRET, flat)
        out = bodies.encode_like(original, encoding, flat.replace(SECRET, MARK), LIMIT)
        assert out is not None
        self.assertEqual(decode_body(out, encoding, LIMIT).data, flat.replace(SECRET, MARK))
        return out

    def test_a_value_in_the_trailer_stays_in_the_trailer(self) -> None:
        out = self.redacted(gzip.compress(b"hello ") + b" tail " + SECRET, "gzip")
        self.assertEqual(gzip_members(out), ([b"hello "], b" tail " + MARK))

    def test_a_trailer_after_a_redacted_member_is_kept_as_sent(self) -> None:
        out = self.redacted(gzip.compress(b"hello " + SECRET) + b"\0\0 trailer", "gzip")
        self.assertEqual(gzip_members(out), ([b"hello " + MARK], b"\0\0 trailer"))

    def test_values_in_a_member_and_in_the_trailer(self) -> None:
        out = self.redacted(gzip.compress(SECRET + b" a") + b" b " + SECRET + b" c", "x-gzip")
        self.assertEqual(gzip_members(out), ([MARK + b" a"], b" b " + MARK + b" c"))

    def test_every_member_is_kept_apart(self) -> None:
        original = gzip.compress(b"one ") + gzip.compress(b"two " + SECRET) + gzip.compress(b" three")
        out = self.redacted(original + b"tail", "gzip")
        self.assertEqual(gzip_members(out), ([b"one ", b"two " + MARK, b" three"], b"tail"))

    def test_a_value_cut_by_the_end_of_the_compressed_data_is_one_marker_inside_it(self) -> None:
        out = self.redacted(gzip.compress(b"x " + SECRET[:9]) + SECRET[9:] + b" end", "gzip")
        self.assertEqual(gzip_members(out), ([b"x " + MARK], b" end"))

    def test_deflate_with_a_trailer_keeps_its_header_or_its_lack_of_one(self) -> None:
        out = self.redacted(zlib.compress(b"hello ") + b" " + SECRET, "deflate")
        self.assertEqual(zlib_stream(out), (b"hello ", b" " + MARK))
        out = self.redacted(raw_deflate(b"hello ") + b" " + SECRET, "deflate")
        self.assertEqual(zlib_stream(out, -zlib.MAX_WBITS), (b"hello ", b" " + MARK))

    def test_stacked_encodings_keep_each_layers_trailer(self) -> None:
        original = gzip.compress(gzip.compress(b"in " + SECRET) + b"T1") + b"T2 " + SECRET
        out = self.redacted(original, "gzip, gzip")
        outer, after = gzip_members(out)
        self.assertEqual(after, b"T2 " + MARK)
        self.assertEqual(gzip_members(outer[0]), ([b"in " + MARK], b"T1"))

    def test_brotli(self) -> None:
        if brotli is None:
            self.assertFalse(bodies.brotli_available())
            return
        out = self.redacted(brotli.compress(b"a " + SECRET), "br")
        self.assertEqual(brotli.decompress(out), b"a " + MARK)
        out = self.redacted(brotli.compress(gzip.compress(b"a " + SECRET) + b"tail"), "gzip, br")
        self.assertEqual(gzip_members(brotli.decompress(out)), ([b"a " + MARK], b"tail"))

    def test_undeclared_gzip(self) -> None:
        out = self.redacted(gzip.compress(b"a ") + gzip.compress(SECRET) + b" after", None)
        self.assertEqual(gzip_members(out), ([b"a ", MARK], b" after"))

    def test_what_is_no_redaction_in_place_is_refused(self) -> None:
        original = gzip.compress(b'{"a": "' + SECRET + b'"}') + b" \n"
        for data in (b'{"a":"' + MARK + b'"} \n', b"something else entirely", b""):
            with self.subTest(data=data):
                self.assertIsNone(bodies.encode_like(original, "gzip", data, LIMIT))
        self.assertIsNone(bodies.encode_like(b"not compressed", None, b"x", LIMIT))
        self.assertIsNone(bodies.encode_like(gzip.compress(b"x" * 100), "gzip", b"x" * 100, 10))
        self.assertIsNone(bodies.encode_like(b"\x1f\x8bnot gzip", "gzip", b"x", LIMIT))
        self.assertIsNone(bodies.encode_like(b"data", "compress", b"data", LIMIT))

    def test_without_trailer_or_members_the_data_is_simply_compressed_again(self) -> None:
        text = b"a perfectly ordinary upload " * 10
        self.assertEqual(bodies.encode_like(gzip.compress(text), "gzip", text, LIMIT),
                         gzip.compress(text, compresslevel=6, mtime=0))
        self.assertEqual(bodies.encode_like(zlib.compress(text), "deflate", text, LIMIT), zlib.compress(text))


class AddonRedactionTest(AddonCase):
    """What the upstream receives for a redacted compressed body, through the whole proxy."""

    def setUp(self) -> None:
        super().setUp()
        self.write_policy(POLICY)
        self.secrets.write_text(json.dumps(SECRETS))

    def send(self, body: bytes, encoding: str | None = None, *, host: str = HOST,
             content_type: str = "application/octet-stream", extra: tuple[tuple[str, str], ...] = ()):
        headers = [("Host", host), ("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if encoding is not None:
            headers.append(("Content-Encoding", encoding))
        flow = self.request_flow(host, port=443, scheme="https", method="POST", path="/up",
                                 headers=headers + list(extra), content=body)
        flow, lines = self.exchange(flow)
        return flow, lines

    def forwarded(self, body: bytes, encoding: str | None = None, **kw) -> tuple[bytes, list[str], str]:
        flow, lines = self.send(body, encoding, **kw)
        self.assertEqual(flow.response.status_code, 200, flow.response.get_text())
        self.assertEqual(lines[0]["dlp_action"], "redact")
        request = flow.request
        self.assertEqual(request.headers["content-length"], str(len(request.raw_content)))
        return request.raw_content, request.headers.get_all("content-encoding"), lines[0]

    def test_declared_gzip_with_a_trailer_keeps_its_encoding_and_framing(self) -> None:
        sent, encodings, _ = self.forwarded(gzip.compress(b"hello ") + b" tail " + SECRET, "gzip")
        self.assertEqual(encodings, ["gzip"])
        self.assertEqual(gzip_members(sent), ([b"hello "], b" tail " + MARK))

    def test_declared_gzip_members_are_compressed_again_one_by_one(self) -> None:
        sent, encodings, _ = self.forwarded(gzip.compress(b"a ") + gzip.compress(SECRET + b" b"), "gzip")
        self.assertEqual(encodings, ["gzip"])
        self.assertEqual(gzip_members(sent), ([b"a ", MARK + b" b"], b""))

    def test_deflate_with_a_trailer(self) -> None:
        sent, encodings, _ = self.forwarded(zlib.compress(b"hello " + SECRET) + b" after", "deflate")
        self.assertEqual(encodings, ["deflate"])
        self.assertEqual(zlib_stream(sent), (b"hello " + MARK, b" after"))

    def test_two_encodings_in_one_header_and_in_two(self) -> None:
        if brotli is None:
            self.assertFalse(bodies.brotli_available())
            return
        body = brotli.compress(gzip.compress(b"in " + SECRET) + b"tail")
        sent, encodings, _ = self.forwarded(body, "gzip, br")
        self.assertEqual(encodings, ["gzip, br"])
        self.assertEqual(gzip_members(brotli.decompress(sent)), ([b"in " + MARK], b"tail"))
        # Two header lines: the scan reads the last and finds the layer beneath as nested gzip,
        # which a redaction does not rewrite: refused, never sent with the value.
        body = gzip.compress(gzip.compress(SECRET))
        flow, _ = self.send(body, "gzip", extra=(("Content-Encoding", "gzip"),))
        self.assertEqual(flow.response.status_code, 403)

    def test_undeclared_gzip_is_sent_as_gzip_with_its_trailer_after_it(self) -> None:
        sent, encodings, _ = self.forwarded(gzip.compress(b"hello ") + b" tail " + SECRET)
        self.assertEqual(encodings, [])
        self.assertEqual(gzip_members(sent), ([b"hello "], b" tail " + MARK))
        sent, _, _ = self.forwarded(gzip.compress(b"a ") + gzip.compress(SECRET))
        self.assertEqual(gzip_members(sent), ([b"a ", MARK], b""))

    def test_a_body_that_cannot_keep_its_framing_is_refused_not_sent_decoded(self) -> None:
        # JSON is written again compactly: the trailing line break cannot be placed back.
        body = gzip.compress(b'{"note": "' + SECRET + b'"}') + b"\n"
        flow, lines = self.send(body, "gzip", content_type="application/json")
        self.assertEqual(flow.response.status_code, 403)
        self.assertNotIn(SECRET.decode(), flow.response.get_text())
        self.assertIn("could not be redacted in the encoding it was sent in", flow.response.get_text())
        self.assertEqual((lines[0]["rule"], lines[0]["dlp_action"]), ("dlp", "block"))

    def test_a_redacted_gzip_body_decompresses_to_the_original_with_the_value_replaced(self) -> None:
        text = b"line one\n" * 50 + b"password=" + SECRET + b"\n" + b"line two\n" * 50
        sent, encodings, _ = self.forwarded(gzip.compress(text), "gzip")
        self.assertEqual(encodings, ["gzip"])
        self.assertEqual(gzip.decompress(sent), text.replace(SECRET, MARK))
        sent, _, _ = self.forwarded(gzip.compress(b'{"note": "' + SECRET + b'"}'), "gzip",
                                    content_type="application/json")
        self.assertEqual(json.loads(gzip.decompress(sent)), {"note": MARK.decode()})

    def test_a_clean_compressed_body_passes_byte_for_byte(self) -> None:
        text = b"a perfectly ordinary upload " * 40
        for encoding, body in (("gzip", gzip.compress(text) + b"\0\0\0\0"), ("deflate", raw_deflate(text)),
                               (None, gzip.compress(text) + gzip.compress(text))):
            with self.subTest(encoding=encoding):
                flow, lines = self.send(body, encoding)
                self.assertEqual(flow.response.status_code, 200)
                self.assertEqual(flow.request.raw_content, body)
                self.assertEqual(flow.request.headers.get_all("content-encoding"), [encoding] if encoding else [])
                self.assertEqual(lines, [])

    def test_a_plain_body_is_redacted_as_before(self) -> None:
        sent, encodings, _ = self.forwarded(b"password=" + SECRET + b"&x=1",
                                            content_type="application/x-www-form-urlencoded")
        self.assertEqual((sent, encodings), (b"password=" + MARK.replace(b"[", b"%5B").replace(b"]", b"%5D")
                                             + b"&x=1", []))

    def test_json_followed_by_other_bytes_and_a_form_keep_their_trailer(self) -> None:
        # With bytes after it the document is no JSON: redacted in place, as text.
        sent, _, _ = self.forwarded(gzip.compress(b'{"note": "' + SECRET + b'"}') + b"--end", "gzip",
                                    content_type="application/json")
        self.assertEqual(gzip_members(sent), ([b'{"note": "' + MARK + b'"}'], b"--end"))
        sent, _, _ = self.forwarded(gzip.compress(b"a=1&password=" + SECRET) + b"&b=2", "gzip",
                                    content_type="application/x-www-form-urlencoded")
        members, after = gzip_members(sent)
        self.assertEqual((len(members), after), (1, b"&b=2"))
        self.assertNotIn(SECRET, members[0])

    def test_many_small_members(self) -> None:
        body = b"".join(gzip.compress(b"line %d\n" % k) for k in range(3000)) + gzip.compress(SECRET)
        sent, _, _ = self.forwarded(body, "gzip")
        members, after = gzip_members(sent)
        self.assertEqual((len(members), members[-1], after), (3001, MARK, b""))

    def test_br_with_bytes_after_it_is_refused_as_unreadable(self) -> None:
        if brotli is None:
            self.assertFalse(bodies.brotli_available())
            return
        flow, lines = self.send(brotli.compress(b"hello") + b" " + SECRET, "br")
        self.assertEqual(flow.response.status_code, 403)
        self.assertIn("scan-limit", lines[0]["detectors"])

    def test_a_block_route_still_blocks(self) -> None:
        flow, _ = self.send(gzip.compress(b"x " + SECRET), "gzip", host="block.example")
        self.assertEqual(flow.response.status_code, 403)


if __name__ == "__main__":
    unittest.main()
