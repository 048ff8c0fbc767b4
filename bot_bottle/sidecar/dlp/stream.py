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

Bodies that are structured underneath (gzip without a ``Content-Encoding``, JSON sniffed from
the first bytes when ``sniff_json``, or ``whole`` from the start) cannot be judged piecewise:
``StreamScan`` then holds the whole body and scans it at the end with the full request scan,
forwarding all of it or none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot_bottle.sidecar.dlp.bodies import GZIP_MAGIC, looks_like_json
from bot_bottle.sidecar.dlp.findings import Finding

# Longer than any value a detector matches whole (a JWT may be tens of KiB, a private key block
# a few) and than every encoded form of a bottle secret the caller knows of (see ``overlap_for``).
DEFAULT_OVERLAP = 64 * 1024
# Batches this large keep the per-scan cost and the re-scanned overlap small.
DEFAULT_BATCH = 1024 * 1024
# How much of the start is needed to tell a structured body from a plain one.
SNIFF_BYTES = 64


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
        self.whole = self.whole or head[:2] == GZIP_MAGIC or (self.sniff_json and looks_like_json(head))

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
