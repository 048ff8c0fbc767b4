"""A streamed upload is searched for pieces of the bottle's secrets in every batch, not only its
first MiB: padding in front of a piece no longer hides it, a piece cut by a batch seam is found,
and the batch holding the piece that completes a secret is not released."""

from __future__ import annotations

import base64
import gzip
import json
import pathlib
import random
import sysconfig
import unittest

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.egress import scanning
from bot_bottle.sidecar.egress.dlp_adapter import DlpOutbound
from bot_bottle.sidecar.egress.policy import Policy

SECRET = "Zq8vR2mXk9LpT4wNc7HsY3bJ-e5Ud"
HALF = len(SECRET) // 2
MIB = 1 << 20
POLICY = Policy.from_dict({"version": 2, "log": 1, "routes": [{"host": "pypi.org", "ports": [443]}]})


def request(body: bytes = b"", headers: tuple[tuple[str, str], ...] = ()) -> scanning.OutboundRequest:
    return scanning.OutboundRequest("POST", "https", "pypi.org", 443, "/upload", headers, body, route_index=0,
                                    dlp={"outbound_on_match": "block"})


def noise(size: int, seed: int = 14) -> bytes:
    return random.Random(seed).randbytes(size)


class Upload(unittest.TestCase):
    def setUp(self) -> None:
        self.dlp = DlpOutbound(POLICY, {}, {"DB_PASSWORD": SECRET})

    def send_first_half(self) -> None:
        self.assertEqual(self.dlp.scan(request(b"note=" + SECRET[:HALF].encode())).action, scanning.ALLOW)

    def upload(self, body: bytes, *, chunk: int = 1 << 16, headers: tuple[tuple[str, str], ...] = (),
               size: int | None = None) -> tuple[bool, bytes]:
        headers = headers or (("content-type", "application/octet-stream"),)
        stream = self.dlp.stream_scan(request(headers=headers), len(body) if size is None else size)
        assert stream is not None
        sent = b"".join(stream.feed(body[i : i + chunk]) for i in range(0, len(body), chunk))
        sent += stream.finish()
        return stream.blocked, sent


class PaddingDoesNotHideAPiece(Upload):
    def assert_stopped_before(self, body: bytes, at: int, *, chunk: int = 1 << 16,
                              headers: tuple[tuple[str, str], ...] = ()) -> None:
        blocked, sent = self.upload(body, chunk=chunk, headers=headers)
        self.assertTrue(blocked)
        self.assertLessEqual(len(sent), at, "the batch holding the piece was released")
        self.assertEqual(sent, body[: len(sent)])

    def test_a_piece_after_a_mib_of_padding_completes_the_secret(self) -> None:
        self.send_first_half()
        piece = b"id=" + SECRET[HALF:].encode() + b"&"
        body = b"\x00" * (MIB + 5) + piece + b"\x00" * (2 * MIB)
        self.assert_stopped_before(body, MIB + 5)

    def test_a_piece_at_the_end_of_a_long_upload(self) -> None:
        self.send_first_half()
        body = noise(5 * MIB) + SECRET[HALF:].encode()
        self.assert_stopped_before(body, 5 * MIB)

    def test_a_piece_cut_by_a_batch_seam(self) -> None:
        self.send_first_half()
        for offset in (2 * MIB - 3, 2 * MIB - 64 * 1024 - 2, 3 * MIB + 64 * 1024 - 5):
            with self.subTest(offset=offset):
                self.setUp()
                self.send_first_half()
                data = noise(6 * MIB, offset)
                body = data[:offset] + SECRET[HALF:].encode() + data[offset:]
                self.assert_stopped_before(body, offset)

    def test_a_piece_in_one_large_chunk(self) -> None:
        self.send_first_half()
        data = noise(6 * MIB)
        body = data[: 4 * MIB] + SECRET[HALF:].encode() + data[4 * MIB :]
        self.assert_stopped_before(body, 4 * MIB, chunk=5 * MIB)

    def test_both_halves_in_far_apart_batches_of_one_upload(self) -> None:
        data = noise(6 * MIB)
        body = (data[:1000] + SECRET[:HALF].encode() + data[1000 : 4 * MIB] + SECRET[HALF:].encode()
                + data[4 * MIB :])
        self.assert_stopped_before(body, 4 * MIB + 1000)

    def test_a_late_piece_of_an_upload_counts_for_the_next_request(self) -> None:
        blocked, sent = self.upload(noise(3 * MIB) + SECRET[:HALF].encode() + noise(MIB, 2))
        self.assertFalse(blocked)
        self.assertEqual(len(sent), 4 * MIB + HALF)
        self.assertEqual(self.dlp.scan(request(b"note=" + SECRET[HALF:].encode())).action, scanning.BLOCK)

    def test_a_gzip_upload_inflated_on_the_way(self) -> None:
        self.send_first_half()
        inner = noise(3 * MIB) + SECRET[HALF:].encode() + noise(MIB, 3)
        body = gzip.compress(inner, 1)
        blocked, _ = self.upload(body, headers=(("content-type", "application/octet-stream"),
                                                ("content-encoding", "gzip")))
        self.assertTrue(blocked)

    def test_a_plain_text_upload_with_a_piece_deep_inside(self) -> None:
        self.send_first_half()
        lines = b"".join(b"line %d of the log: nothing to see\n" % i for i in range(100_000))
        body = lines + b"password tail " + SECRET[HALF:].encode() + b"\n" + lines
        self.assert_stopped_before(body, len(lines), headers=(("content-type", "text/plain"),))


class LargeRealUploadsPass(Upload):
    """Half of the secret left already: uploads that hold nothing more of it still pass whole."""

    def assert_passes(self, body: bytes, ctype: str = "application/octet-stream") -> None:
        self.send_first_half()
        blocked, sent = self.upload(body, headers=(("content-type", ctype),))
        self.assertFalse(blocked)
        self.assertEqual(sent, body)

    def test_random_bytes(self) -> None:
        self.assert_passes(noise(6 * MIB))

    def test_python_sources(self) -> None:
        stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
        files = sorted(path for name in ("email", "json", "html", "xml", "asyncio", "concurrent")
                       for path in (stdlib / name).rglob("*.py"))
        text = b"".join(path.read_bytes() for path in files)
        body = (text * (1 + 3 * MIB // max(1, len(text))))[: 3 * MIB]
        self.assert_passes(body, "text/x-python")

    def test_wrapped_base64(self) -> None:
        self.assert_passes(base64.encodebytes(noise(3 * MIB)))

    def test_the_half_that_left_sent_again_far_in(self) -> None:
        # Pieces already sent are no news: the same half again completes nothing.
        self.assert_passes(noise(3 * MIB) + SECRET[:HALF].encode() + noise(MIB, 5))

    def test_short_runs_of_the_secret_here_and_there(self) -> None:
        # Runs of the secret shorter than a piece, in a large log: nothing counts.
        shorts = [SECRET[i : i + 7].encode() for i in range(0, len(SECRET) - 7, 3)]
        rng = random.Random(9)
        lines = b"".join(b"%d request handled in %d ms id=%s\n" % (i, rng.randrange(900),
                                                                    rng.choice(shorts) if i % 20 == 0 else b"-")
                         for i in range(100_000))
        self.assert_passes(lines, "text/plain")

GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


def json_values(values: list[str], extra: list[str]) -> bytes:
    return json.dumps({"items": values + extra + values}).encode()


class JsonAfterALongBlankLead(Upload):
    """A streamed JSON body (not declared as such, 2 to 8 MiB) is held and parsed whole, as its
    first bytes show; blanks in front of it (a parser skips them) no longer make it plain text,
    where a token cut over two adjacent string values went unseen."""

    VALUES = ["entry %d lorem ipsum dolor" % i for i in range(50_000)]

    def test_a_token_cut_over_two_values_after_blanks(self) -> None:
        doc = json_values(self.VALUES, [GITHUB[:20], GITHUB[20:]])
        self.assertGreater(len(doc), 2 * MIB)
        for lead in (b" " * 100, b"\n" * 70_000, b"\xef\xbb\xbf" + b"\r\n\t " * 40):
            with self.subTest(lead=lead[:8], size=len(lead)):
                blocked, sent = self.upload(lead + doc)
                self.assertTrue(blocked)
                self.assertEqual(sent, b"")

    def test_without_blanks_it_was_found_already(self) -> None:
        blocked, _ = self.upload(json_values(self.VALUES, [GITHUB[:20], GITHUB[20:]]))
        self.assertTrue(blocked)

    def test_clean_json_after_blanks_passes_whole(self) -> None:
        body = b" " * 5000 + json_values(self.VALUES, ["ghp_ is how the prefix starts", "and ends here"])
        blocked, sent = self.upload(body)
        self.assertFalse(blocked)
        self.assertEqual(sent, body)

    def test_text_after_blanks_streams_as_text(self) -> None:
        body = b" " * 200 + b"".join(b"line %d of plain text\n" % i for i in range(150_000))
        blocked, sent = self.upload(body, headers=(("content-type", "text/plain"),))
        self.assertFalse(blocked)
        self.assertEqual(sent, body)

    def test_only_blanks(self) -> None:
        body = b" \n" * (3 * MIB // 2)
        blocked, sent = self.upload(body)
        self.assertFalse(blocked)
        self.assertEqual(sent, body)


class SeenBytesAreNotSearchedTwice(unittest.TestCase):
    """``scan_fragments(seen=...)``: the held-back tail is searched again only as far as a piece
    reaching past it can start, and findings point at the piece in the batch."""

    def test_offsets_and_reach(self) -> None:
        scanner = Scanner({"DB_PASSWORD": SECRET})
        memory = scanner.new_memory()
        self.assertEqual(scanner.scan_fragments(b"x" + SECRET[:HALF].encode(), memory=memory), [])
        batch = noise(200_000) + SECRET[HALF:].encode() + noise(1000, 2)
        found = scanner.scan_fragments(batch, memory=memory, seen=150_000)
        self.assertEqual(len(found), 1)
        self.assertEqual(batch[found[0].start : found[0].end], SECRET[HALF:].encode())
        # Wholly inside what an earlier call was given (and far before its end): not searched again.
        self.assertEqual(scanner.scan_fragments(batch, memory=memory, seen=len(batch)), [])

    def test_a_piece_reaching_past_the_seen_bytes_is_found(self) -> None:
        scanner = Scanner({"DB_PASSWORD": SECRET})
        memory = scanner.new_memory()
        scanner.scan_fragments(SECRET[:HALF].encode(), memory=memory)
        piece = SECRET[HALF:].encode()
        batch = noise(5000) + piece + noise(100, 3)
        found = scanner.scan_fragments(batch, memory=memory, seen=5000 + len(piece) - 1)
        self.assertEqual([f.secret_name for f in found], ["DB_PASSWORD"])


if __name__ == "__main__":
    unittest.main()
