"""Bodies that hide what they carry: a Content-Encoding the engine cannot undo, compression
nobody declared (several layers deep), archives (tar, zip) in a body, a file part or base64."""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import lzma
import random
import tarfile
import unittest
import zipfile
import zlib

from bot_bottle.sidecar.dlp import SCAN_LIMIT, Scanner, ScanOptions
from bot_bottle.sidecar.dlp.bodies import decode_body
from tests.unit import test_dlp_fakes as fakes

RNG = random.Random(4242)
SECRET = fakes.secret_value(RNG, 30)
AWS = f"aws_access_key_id={fakes.aws_key_id(RNG)}\naws_secret_access_key={fakes.aws_secret(RNG)}\n"
SCANNER = Scanner({"API_SECRET": SECRET})


def scan(body: bytes, content_type: str = "application/octet-stream", **headers: str) -> list:
    pairs = [("Content-Type", content_type)] + [(k.replace("_", "-"), v) for k, v in headers.items()]
    return SCANNER.scan_request("POST", "https://x.test/up", pairs, body)


def detectors(findings) -> set[str]:
    return {f.secret_name or f.detector for f in findings}


def tar(files: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zipped(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buf.getvalue()


ENV = f"# config\nAPI_URL=https://example.com\nSECRET={SECRET}\n{AWS}".encode()


# Nothing in it a detector takes: what blocks a body of it is the scan limit alone (with a secret
# inside, the engine may find the secret by the compression's magic bytes instead).
PLAIN = b"hello, world\n" * 50


class ContentEncodingErrorTest(unittest.TestCase):
    """A body the engine cannot decode is not what the upstream reads: it must not pass."""

    def assertBlocked(self, findings) -> None:
        self.assertIn(SCAN_LIMIT, {f.detector for f in findings})
        self.assertTrue(all(f.confidence == "high" for f in findings if f.detector == SCAN_LIMIT))

    def test_unknown_encoding(self) -> None:
        self.assertBlocked(scan(gzip.compress(PLAIN), Content_Encoding="x-custom"))
        self.assertIn("API_SECRET", detectors(scan(gzip.compress(ENV), Content_Encoding="x-custom")))

    def test_encoding_the_engine_lacks(self) -> None:
        self.assertBlocked(scan(bz2.compress(PLAIN), Content_Encoding="zstd"))

    def test_gzip_with_a_bad_checksum(self) -> None:
        body = bytearray(gzip.compress(PLAIN))
        body[-8] ^= 0xFF
        self.assertBlocked(scan(bytes(body), Content_Encoding="gzip"))

    def test_identity_and_valid_encodings_are_not_limits(self) -> None:
        self.assertEqual(scan(b"hello", Content_Encoding="identity"), [])
        self.assertEqual(scan(gzip.compress(b"hello"), Content_Encoding="gzip"), [])

    def test_redaction_leaves_it_unredacted(self) -> None:
        result = SCANNER.redact_request("POST", "https://x.test/", [("Content-Encoding", "x-custom")], b"data")
        self.assertIn(SCAN_LIMIT, {f.detector for f in result.unredacted})


class NestedCompressionTest(unittest.TestCase):
    def test_gzip_inside_declared_gzip(self) -> None:
        findings = scan(gzip.compress(gzip.compress(ENV)), Content_Encoding="gzip")
        self.assertIn("API_SECRET", detectors(findings))
        self.assertIn("aws-access-key-id", detectors(findings))

    def test_undeclared_gzip_twice(self) -> None:
        self.assertIn("API_SECRET", detectors(scan(gzip.compress(gzip.compress(ENV)))))

    def test_undeclared_zlib_bzip2_xz(self) -> None:
        for body in (zlib.compress(ENV), bz2.compress(ENV), lzma.compress(ENV), zlib.compress(bz2.compress(ENV))):
            with self.subTest(head=body[:4]):
                self.assertIn("API_SECRET", detectors(scan(body)))

    def test_raw_deflate_without_any_header(self) -> None:
        raw = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        for body in (raw.compress(ENV) + raw.flush(), zlib.compress(ENV)[2:-4], zlib.compress(ENV)[2:],
                     gzip.compress(ENV)[10:]):  # a zlib or gzip stream with its header cut off
            with self.subTest(head=body[:4]):
                self.assertIn("API_SECRET", detectors(scan(body)))

    def test_raw_deflate_of_a_bomb_is_a_scan_limit(self) -> None:
        body = zlib.compress(b"\0" * (80 << 20) + ENV)[2:-4]
        self.assertIn(SCAN_LIMIT, {f.detector for f in scan(body)})

    def test_random_bytes_are_not_taken_for_raw_deflate(self) -> None:
        from bot_bottle.sidecar.dlp import archives

        rng = random.Random(7)
        for size in (2, 16, 300, 70_000):
            for _ in range(200 if size < 1000 else 5):
                data = rng.randbytes(size)
                self.assertIsNone(archives.raw_deflate(data, 1 << 20), data[:16].hex())
        self.assertEqual(scan(rng.randbytes(4096)), [])

    def test_text_that_looks_like_a_zlib_header_is_scanned_as_itself(self) -> None:
        body = b"x^" + SECRET.encode()  # 0x78 0x5E is a valid zlib header
        self.assertIn("API_SECRET", detectors(scan(body, "text/plain")))

    def test_corrupt_inner_stream_keeps_what_decoded(self) -> None:
        inner = bytearray(gzip.compress(ENV + b"x" * 1000))
        inner[-8] ^= 0xFF  # bad CRC: the data decodes, the check fails
        self.assertIn("API_SECRET", detectors(scan(gzip.compress(bytes(inner)), Content_Encoding="gzip")))

    def test_nested_bomb_is_a_scan_limit(self) -> None:
        scanner = Scanner({"S": SECRET}, ScanOptions(max_body_bytes=1024 * 1024))
        bomb = gzip.compress(gzip.compress(b"\0" * (20 * 1024 * 1024)))
        findings = scanner.scan_request("POST", "/", {"Content-Encoding": "gzip"}, bomb)
        self.assertEqual([f.detector for f in findings], [SCAN_LIMIT])

    def test_too_deep_is_a_scan_limit(self) -> None:
        body = PLAIN
        for _ in range(8):
            body = gzip.compress(body)
        self.assertIn(SCAN_LIMIT, {f.detector for f in scan(body)})

    def test_nested_compression_is_not_rebuilt_by_redaction(self) -> None:
        body = gzip.compress(gzip.compress(SECRET.encode()))
        result = SCANNER.redact_request("POST", "https://x.test/", [], body)
        self.assertTrue(result.findings)
        self.assertTrue(result.unredacted)  # the caller blocks

    def test_expand_plain_data_is_untouched(self) -> None:
        from bot_bottle.sidecar.dlp.archives import expand

        found = expand(b"just text", 1000)
        self.assertEqual((found.data, found.layers, found.contents, found.limits), (b"just text", [], [], []))


class ArchiveTest(unittest.TestCase):
    def test_tar_tgz_and_zip_bodies(self) -> None:
        bodies = {
            "tar": tar({"pkg/.env": ENV}),
            "tgz": tar({"pkg/README": b"hello", "pkg/.env": ENV}, "w:gz"),
            "zip": zipped({"a/.env": ENV}),
            "zip stored": zipped({"a/.env": ENV}, zipfile.ZIP_STORED),
            "tar in zip": zipped({"inner.tar": tar({".env": ENV})}),
        }
        for label, body in bodies.items():
            with self.subTest(label):
                found = detectors(scan(body))
                self.assertIn("API_SECRET", found)
                self.assertIn("aws-access-key-id", found)

    def test_tgz_in_a_multipart_file_part(self) -> None:
        pkg = tar({"package/.env": ENV}, "w:gz")
        body = (b'--B\r\nContent-Disposition: form-data; name="content"; filename="p-1.0.tar.gz"\r\n\r\n' + pkg
                + b"\r\n--B--\r\n")
        found = detectors(scan(body, "multipart/form-data; boundary=B"))
        self.assertTrue({"API_SECRET", "aws-access-key-id"} <= found)

    def test_base64_of_a_tgz_in_json(self) -> None:
        # One finding per encoded run: the bottle's secret and a token format in two tarballs.
        for env, expected in ((ENV, "API_SECRET"), (AWS.encode(), "aws-access-key-id")):
            pkg = tar({"package/package.json": b'{"name": "p"}', "package/.env": env}, "w:gz")
            body = json.dumps({"name": "p", "_attachments": {"p.tgz": {"data": base64.b64encode(pkg).decode()}}})
            with self.subTest(expected):
                self.assertIn(expected, detectors(scan(body.encode(), "application/json")))

    def test_base64_of_a_plain_tar_in_json(self) -> None:
        body = json.dumps({"data": base64.b64encode(tar({"package/.env": AWS.encode()})).decode()})
        self.assertIn("aws-access-key-id", detectors(scan(body.encode(), "application/json")))

    def test_base64_of_a_zip_bzip2_or_xz_is_opened(self) -> None:
        # A file attached to a JSON call (a repository contents API, a data: URL), either alphabet,
        # as a whole body and as the proxy scans a streamed one, a batch at a time. One finding
        # per encoded run: the bottle's secret and a token format in two files.
        packers = {"zip": lambda data: zipped({"notes/.env": data, "README.md": b"# notes\n"}),
                   "bzip2": bz2.compress, "xz": lzma.compress}
        for kind, pack in packers.items():
            for env, expected in ((ENV, "API_SECRET"), (AWS.encode(), "aws-access-key-id")):
                for encode in (base64.b64encode, base64.urlsafe_b64encode):
                    text = encode(pack(env)).decode()
                    with self.subTest(kind=kind, expected=expected, alphabet=encode.__name__):
                        body = json.dumps({"message": "add notes", "content": text}).encode()
                        self.assertIn(expected, detectors(scan(body, "application/json")))
                        body = b"\0" * 5000 + b"data:application/octet-stream;base64," + text.encode() + b"\0" * 5000
                        found = SCANNER.scan_batch(body, "body", deep=True)
                        self.assertIn((expected, f"base64+{kind}"),
                                      {(f.secret_name or f.detector, f.encoding) for f in found})

    def test_compressed_bytes_under_other_encodings_are_opened(self) -> None:
        # ``xxd -p`` of a .gz, a gzip in a form field (percent-encoded), as a JSON string of
        # latin-1 characters (parsed or not), as a Node Buffer's byte values, percent-encoded text.
        from urllib.parse import quote_from_bytes, urlencode

        for name, pack in (("gzip", gzip.compress), ("zip", lambda d: zipped({"a/.env": d})), ("bzip2", bz2.compress)):
            blob = pack(ENV)
            bodies = {
                "hex": (b"dump " + blob.hex().encode() + b"\n", "text/plain"),
                "form": (urlencode({"f": blob, "n": "1"}).encode(), "application/x-www-form-urlencoded"),
                "percent in text": (b"data=" + quote_from_bytes(blob).encode(), "text/plain"),
                "json string": (json.dumps({"f": blob.decode("latin-1")}).encode(), "application/json"),
                "json text": (json.dumps({"f": blob.decode("latin-1")}).encode(), "text/plain"),
                "byte values": (json.dumps({"type": "Buffer", "data": list(blob)}).encode(), "application/json"),
            }
            for label, (body, content_type) in bodies.items():
                with self.subTest(kind=name, form=label):
                    self.assertIn("API_SECRET", detectors(scan(body, content_type)))
        self.assertIn("API_SECRET", {f.secret_name for f in SCANNER.scan_batch(
            b"\0" * 3000 + gzip.compress(ENV).hex().encode() + b"\0" * 3000, "body", deep=True)})
        for blob in (gzip.compress(b"# notes\n" * 40), zipped({"README.md": b"# Project\n" * 50})):
            with self.subTest(benign=blob[:4]):
                self.assertEqual(scan(urlencode({"f": blob}).encode(), "application/x-www-form-urlencoded"), [])
                self.assertEqual(scan(blob.hex().encode(), "text/plain"), [])

    def test_base64_of_a_tgz_longer_than_a_decoding_window_is_opened_whole(self) -> None:
        # ``tar czf - . | base64`` of a workspace: past the 2 MiB windows a long text is decoded
        # in, no window holds the gzip header and the file with the secret.
        noise = random.Random(5).randbytes(1_800_000).hex().encode()
        pkg = tar({"data/blob.hex": noise, "app/.env": ENV}, "w:gz")
        for blob in (base64.b64encode(pkg), base64.encodebytes(pkg)):
            with self.subTest(wrapped=b"\n" in blob):
                self.assertGreater(len(blob), 2 * 1024 * 1024 + 64 * 1024)
                found = scan(b"payload: " + blob + b"\n", "text/plain")
                self.assertIn(("API_SECRET", "base64+gzip"), {(f.secret_name, f.encoding) for f in found})
                found = scan(json.dumps({"data": blob.decode()}).encode(), "application/json")
                self.assertIn("API_SECRET", detectors(found))

    def test_a_decoy_header_in_front_does_not_hide_the_real_one(self) -> None:
        from bot_bottle.sidecar.dlp import encodings

        real = base64.b64encode(lzma.compress(ENV)).decode()
        decoy = base64.b64encode(b"\xfd7zXZ\x00junk").decode()[:8]
        self.assertIn("API_SECRET", detectors(scan(json.dumps({"d": decoy + real}).encode(), "application/json")))
        blob = gzip.compress(ENV)
        self.assertIn("API_SECRET", detectors(scan(b"log \x1f\x8b\x08junk " + blob, "text/plain")))
        for stray in ("Q", "QQQ", "A" * 24 + "1"):
            with self.subTest(stray=stray):
                body = stray + base64.b32encode(b"k=" + SECRET.encode()).decode()
                self.assertIn("API_SECRET", detectors(scan(f"v {body}\n".encode(), "text/plain")))
        # Many marks in one long run: each run is examined once, a few places tried at most.
        calls = []
        original = encodings._opened
        encodings._opened = lambda *a: calls.append(1) or original(*a)
        self.addCleanup(setattr, encodings, "_opened", original)
        encodings.long_packed_runs("H4sIAAAA" * 300_000, 1024, 1 << 20)
        self.assertLessEqual(len(calls), encodings._PACKED_TRIES)

    def test_base64_of_benign_archives_passes(self) -> None:
        for blob in (zipped({"README.md": b"# Project\n" * 50, "img.bin": bytes(range(256)) * 40}),
                     bz2.compress(b"print('hello')\n" * 100), lzma.compress(b"# notes\n" * 100)):
            with self.subTest():
                self.assertEqual(scan(json.dumps({"content": base64.b64encode(blob).decode()}).encode(),
                                      "application/json"), [])

    def test_too_many_entries_is_a_scan_limit(self) -> None:
        body = tar({f"f{i}": b"x" for i in range(2100)})
        self.assertIn(SCAN_LIMIT, {f.detector for f in scan(body)})

    def test_archive_larger_than_the_budget_is_a_scan_limit(self) -> None:
        body = zipped({"big": b"\0" * (4 * 1024 * 1024)})
        self.assertEqual(decode_body(body, None, 1024 * 1024, nested=True).limits,
                         ("archive larger than the scan limit",))

    def test_benign_archives_pass(self) -> None:
        for body in (tar({"src/main.py": b"print('hello')\n" * 100}, "w:gz"),
                     zipped({"README.md": b"# Project\n" * 50, "img.bin": bytes(range(256)) * 40})):
            with self.subTest():
                self.assertEqual(scan(body), [])

    def test_text_with_ustar_at_offset_257_is_not_an_archive(self) -> None:
        body = b"a" * 257 + b"ustar" + b" more text"
        self.assertEqual(scan(body, "text/plain"), [])


if __name__ == "__main__":
    unittest.main()
