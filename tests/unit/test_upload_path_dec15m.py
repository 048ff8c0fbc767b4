"""A streamed upload's way out through the addon's stream callable: whatever size the chunks
mitmproxy hands it, the body leaves whole and in order, and a finding in a later batch still stops
that batch (and everything after it) before it leaves, the log saying how much left."""

from __future__ import annotations

import contextlib
import io
import json
import unittest
from contextlib import redirect_stdout

from tests.unit.test_sidecar_addon import AddonCase, addon_context, addon_mod

MB = 1024 * 1024
KB = 1024
SECRET = "prompted-secret-value"


def pieces_bytes(pieces: bytes | list[bytes]) -> bytes:
    """What mitmproxy sends for a stream callable's return: never an empty piece (on a chunked
    body an empty chunk is its end)."""
    if isinstance(pieces, bytes):
        assert pieces, "an empty bytes return ends a chunked body"
        return pieces
    assert all(pieces), "an empty piece ends a chunked body"
    return b"".join(pieces)


class UploadPathTest(AddonCase):
    def big_flow(self, size: int):
        pairs = [("Host", "allowed.example"), ("Content-Length", str(size)),
                 ("Content-Type", "application/octet-stream")]
        flow = self.request_flow("allowed.example", port=443, scheme="https", method="POST", path="/upload",
                                 headers=pairs)
        flow, _ = self.run_hooks(flow, "requestheaders")
        self.assertTrue(callable(flow.request.stream))
        return flow

    @contextlib.contextmanager
    def configured(self):
        out = io.StringIO()
        with addon_context(self.addon) as tctx, redirect_stdout(out):
            tctx.configure(self.addon, **self.options())
            yield out

    def feed(self, flow, data: bytes, chunk: int) -> list[tuple[int, bytes]]:
        """(size of the chunk fed, what the call handed on) for each call, the end last (size 0)."""
        calls = []
        for i in range(0, len(data), chunk):
            piece = data[i:i + chunk]
            calls.append((len(piece), pieces_bytes(flow.request.stream(piece))))
        calls.append((0, pieces_bytes(flow.request.stream(b""))))
        return calls

    def test_every_chunk_size_gives_the_same_body(self) -> None:
        data = b"".join(b"line %d of an ordinary upload\n" % i for i in range(150_000))
        for chunk in (1, 1000, 16 * KB, 64 * KB, 3 * MB):
            if chunk == 1:
                body = data[:3 * MB + 5]  # a byte at a time: a shorter body keeps this quick
            else:
                body = data
            with self.subTest(chunk=chunk):
                flow = self.big_flow(len(body))
                with self.configured():
                    calls = self.feed(flow, body, chunk) if chunk > 1 else self._bytewise(flow, body)
                self.assertEqual(b"".join(out for _, out in calls), body)

    def _bytewise(self, flow, body: bytes) -> list[tuple[int, bytes]]:
        # A large piece first (batches released), then single bytes to the end.
        head = body[:3 * MB]
        calls = [(len(head), pieces_bytes(flow.request.stream(head)))]
        for i in range(len(head), len(body)):
            calls.append((1, pieces_bytes(flow.request.stream(body[i:i + 1]))))
        calls.append((0, pieces_bytes(flow.request.stream(b""))))
        return calls

    def test_a_secret_in_a_later_batch_stops_that_batch_and_the_rest(self) -> None:
        for at in (3 * MB + 100, 3 * MB - 10, 4 * MB + 7):
            with self.subTest(at=at):
                data = b"a" * at + SECRET.encode() + b"b" * (2 * MB)
                flow = self.big_flow(len(data))
                with self.configured() as log:
                    calls = self.feed(flow, data, 64 * KB)
                forwarded = b"".join(out for _, out in calls)
                self.assertNotIn(SECRET.encode()[:8], forwarded)
                self.assertTrue(data.startswith(forwarded))
                self.assertLess(len(forwarded), at)
                # Nothing more leaves once it is found, the end included.
                stopped = next(i for i, _ in enumerate(calls) if flow.metadata.get(addon_mod.STREAM_ABORTED)
                               and sum(len(o) for _, o in calls[:i + 1]) == len(forwarded))
                self.assertEqual(b"".join(out for _, out in calls[stopped + 1:]), b"")
                self.assertTrue(flow.metadata[addon_mod.STREAM_ABORTED])
                (line,) = [json.loads(x) for x in log.getvalue().splitlines()]
                self.assertEqual((line["decision"], line["rule"]), ("deny", "dlp"))
                # The log says how much actually left.
                self.assertIn(f"stopped after {len(forwarded)} of", line["reason"])


if __name__ == "__main__":
    unittest.main()
