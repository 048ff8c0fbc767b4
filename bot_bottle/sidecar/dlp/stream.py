"""Chunk-wise scanning of a body that is forwarded while it arrives (a large upload).

``StreamScan`` sits between the bytes the agent sends and the bytes that go upstream. It scans
in batches and forwards a batch only once it was scanned clean, always holding back the last
``overlap`` bytes: they are scanned again, joined to the next batch, so a value cut by a batch
boundary is found whole, and no byte of it has left before it is found (any value up to
``overlap`` long lies entirely in the held-back tail plus the new batch). On the first finding
it stops: nothing more is forwarded, and the caller aborts the upstream request.

A batch is scanned with the direct layer (token formats and every precomputed form of the
bottle's secrets) and, with ``Scanner.scan_batch(..., deep=True)`` as the proxy calls it, the
decoded layer, which is what a buffered body larger than the scanner's ``deep_limit`` gets as
well (decoded in overlapping windows of that size): streaming does not weaken the scan of a
large body, it only stops holding it whole. A byte-level prefilter finds where any detector
could match and the direct layer runs only around those places (``dlp.prefilter``), with the
same findings as scanning the whole batch.

Bodies that are structured underneath (compressed without a ``Content-Encoding``: gzip, zlib,
bzip2, xz, or a zip archive, whose content is not in their bytes; JSON sniffed from the first
bytes when ``sniff_json``; or ``whole`` from the start) cannot be judged piecewise:
``StreamScan`` then holds the whole body and scans it at the end with the full request scan
(which opens them), forwarding all of it or none; one larger than ``max_whole`` is refused as a
``scan-limit`` as soon as it is (held, it would cost the proxy its memory).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot_bottle.sidecar.dlp.archives import ZIP_MAGIC, compression_of
from bot_bottle.sidecar.dlp.bodies import looks_like_json
from bot_bottle.sidecar.dlp.findings import HIGH, SCAN_LIMIT, Finding

# Longer than any value a detector matches whole (a JWT may be tens of KiB, a private key block
# a few) and than every encoded form of a bottle secret the caller knows of (see ``overlap_for``).
DEFAULT_OVERLAP = 64 * 1024
# Batches this large keep the per-scan cost and the re-scanned overlap small.
DEFAULT_BATCH = 1024 * 1024
# How much of the start is needed to tell a structured body from a plain one.
SNIFF_BYTES = 64


def compressed(head: bytes) -> bool:
    """Whether a body starting with ``head`` is compressed, or a zip archive: its content is not
    in its bytes, so it is held whole and opened by the full scan. A zlib header is 2 bytes (one
    random body in a thousand has one): it counts only when the bytes after it inflate."""
    if head.startswith(ZIP_MAGIC):
        return True
    kind = compression_of(head)
    if kind != "zlib":
        return kind is not None
    try:
        zlib.decompressobj().decompress(head)
    except zlib.error:
        return False
    return True


def overlap_for(secret_values: Sequence[str]) -> int:
    """An overlap that covers every form of the given secrets (percent-encoding triples a value)."""
    longest = max((len(v.encode("utf-8")) for v in secret_values), default=0)
    return max(DEFAULT_OVERLAP, 3 * longest + 16)


@dataclass
class StreamScan:
    """Scans a body chunk by chunk; ``feed`` and ``finish`` return what may be forwarded.

    ``scan_batch`` finds values in a batch of bytes (``Scanner.scan_batch``: offsets are byte
    offsets); ``scan_whole`` is the full scan of a complete body, used when the body turns out to
    be structured.
    """

    scan_batch: Callable[[bytes | bytearray], list[Finding]]  # must not keep the buffer
    scan_whole: Callable[[bytes], list[Finding]]
    overlap: int = DEFAULT_OVERLAP
    batch: int = DEFAULT_BATCH
    findings: list[Finding] = field(default_factory=list)
    whole: bool = False  # the body is structured: held whole and scanned at the end
    max_whole: int = 0  # a body held whole and larger than this is refused (scan-limit); 0: no limit
    sniff_json: bool = True  # False: a body that starts like JSON is still scanned as text
    # Nothing is released until more than this has arrived; a body that ends within it gets the
    # full scan (``scan_whole``). For bodies of unknown length (chunked): a small one is judged
    # exactly as if it had been buffered.
    hold_upto: int = 0
    forwarded: int = 0  # bytes released so far
    received: int = 0
    _pending: bytearray = field(default_factory=bytearray)  # the held-back tail, then new bytes
    _sniffed: bool = False
    _scanned_upto: int = 0  # bytes of _pending already scanned clean (the held-back tail)

    @property
    def blocked(self) -> bool:
        return bool(self.findings)

    def feed(self, data: bytes) -> bytes:
        if self.blocked or not data:
            return b""
        self.received += len(data)
        if self.whole and self.max_whole and self.received > self.max_whole:
            # Held whole to be opened, and larger than the scan reads: refused, not forwarded unread.
            self.findings = [Finding(SCAN_LIMIT, "Body larger than the scan limit", "body", 0, 0, HIGH)]
            self._pending.clear()
            return b""
        self._pending += data
        if not self._sniffed:
            if len(self._pending) < SNIFF_BYTES:
                return b""
            self._sniff()
        if self.whole or self.received <= self.hold_upto or len(self._pending) - self._scanned_upto < self.batch:
            return b""
        return self._scan_and_release(final=False)

    def finish(self) -> bytes:
        """The end of the body: scan what is held and release it, unless something was found."""
        if self.blocked:
            return b""
        if not self._sniffed:
            self._sniff()
        if self.whole or (self.forwarded == 0 and self.received <= self.hold_upto):
            body = bytes(self._pending)
            self.findings = list(self.scan_whole(body))
            self._pending.clear()
            if self.blocked:
                return b""
            self.forwarded += len(body)
            return body
        return self._scan_and_release(final=True)

    def _sniff(self) -> None:
        self._sniffed = True
        head = bytes(self._pending[:SNIFF_BYTES])
        self.whole = self.whole or compressed(head) or (self.sniff_json and looks_like_json(head))

    def _scan_and_release(self, *, final: bool) -> bytes:
        pending = self._pending
        if len(pending) > self._scanned_upto:
            # Scanned in place: a megabyte copy (fresh pages) costs a noticeable share of the scan.
            found = self.scan_batch(pending)
            if found:
                self.findings = list(found)
                pending.clear()
                return b""
        cut = len(pending) - (0 if final else min(self.overlap, len(pending)))
        with memoryview(pending) as view:
            release = bytes(view[:cut])
        del pending[:cut]  # cheap: a bytearray drops its front by moving its start
        self._scanned_upto = len(pending)
        self.forwarded += len(release)
        return release
