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

A JSON, NDJSON or form body that streams as text (past ``structured_limit``) still gets the
adjacent-values check the full scan gives such a body (``scan_values``): its values are read
lexically as the batches pass, the reader's state (a string or an escape cut by a seam) and the
last values carried from batch to batch, and a token or secret cut over two of them blocks the
batch that completes it, before it leaves (a multipart body's parts are values too: a text
field's, a file's, whose ends meet their neighbours). The value still being read is checked as
it is, so its first bytes are not forwarded unchecked however long it goes on. A random or
source-code body does not pay for this: only a JSON, form or multipart Content-Type, or a body
that starts as JSON, is read.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot_bottle.sidecar.dlp.archives import GZIP_MAGIC, ZIP_MAGIC, compression_of
from bot_bottle.sidecar.dlp.bodies import looks_like_json
from bot_bottle.sidecar.dlp.encodings import PACKED_B64_MARKS
from bot_bottle.sidecar.dlp.engine import SPLIT_REACH
from bot_bottle.sidecar.dlp.findings import HIGH, SCAN_LIMIT, Finding
from bot_bottle.sidecar.dlp.json_strings import ValueLexer

# Longer than any value a detector matches whole (a JWT may be tens of KiB, a private key block
# a few) and than every encoded form of a bottle secret the caller knows of (see ``overlap_for``).
DEFAULT_OVERLAP = 64 * 1024
# Batches this large keep the per-scan cost and the re-scanned overlap small.
DEFAULT_BATCH = 1024 * 1024
# How much of the start is needed to tell a structured body from a plain one.
SNIFF_BYTES = 64
# What a JSON parser skips before the first document (``bodies.looks_like_json``): a body that
# starts with more of it than ``SNIFF_BYTES`` is sniffed where it ends, not read as plain text
# (its values then escaped the checks only a parsed body gets: a token cut over two of them).
_BOM = b"\xef\xbb\xbf"
_JSON_BLANKS = b" \t\r\n\x1e"
# The start of base64 of compressed or archived bytes, in a run wrapped into lines or not: one
# that goes on past a batch cannot be opened a batch at a time (only the first batch holds its
# header), so the body is then held whole.
_PACKED_B64_MARKS = tuple(mark.encode("ascii") for mark in PACKED_B64_MARKS)
_B64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-=\r\n"


# The base64 characters as "b", every other byte as a blank: where the run at the end starts is
# one ``rfind`` in this view (``bytes.rstrip`` with a set of characters tests each byte against
# each of them: some 30 ms over a MiB of base64, a sixth of the scan of such an upload).
_B64_SHAPE = bytes(0x62 if byte in _B64_CHARS else 0x20 for byte in range(256))
_LONGEST_MARK = max(map(len, _PACKED_B64_MARKS))


def long_run_start(data: bytes | bytearray, longer_than: int) -> int | None:
    """Where the base64 run (lines of it, wrapped or not) that ``data`` ends in starts, when it
    is longer than ``longer_than``; None otherwise. Random data ends in a run of a few bytes:
    its last byte (or the last ``longer_than`` + 1) tells."""
    size = len(data)
    if size <= max(0, longer_than) or data[-1] not in _B64_CHARS:
        return None
    if b" " in data[size - longer_than - 1 :].translate(_B64_SHAPE):
        return None
    return data.translate(_B64_SHAPE).rfind(b" ") + 1


def holds_mark(data: bytes | bytearray, start: int) -> bool:
    """Whether ``data[start:]`` holds the start of base64 of compressed or archived bytes."""
    return any(data.find(mark, start) >= 0 for mark in _PACKED_B64_MARKS)


def packed_run_goes_on(data: bytes | bytearray, longer_than: int) -> bool:
    """Whether ``data`` ends inside a base64 run (lines of it, wrapped or not) longer than
    ``longer_than`` that holds the start of compressed or archived bytes. Only the run at the
    end is looked at: one shorter than the overlap is read whole with the next batch."""
    start = long_run_start(data, longer_than)
    return start is not None and holds_mark(data, start)


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


def _nothing(data: bytes | bytearray) -> list[Finding]:
    return []


# The most characters a form of a secret takes per UTF-8 byte of it: an ASCII character as a
# JSON escape inside a JSON string (``\\u0041``, seven), which the decoded layer reads back in
# two steps. Percent-encoding takes three, ``\u`` escapes of a wider character at most two
# (a surrogate pair: twelve characters for four bytes, fourteen doubled).
_WIDEST_FORM = 7


def overlap_for(secret_values: Sequence[str]) -> int:
    """An overlap that covers every form of the given secrets: one of them ``\\u``-escaped in a
    JSON string longer than the default overlap, cut by a batch seam, was not seen whole by
    any batch (and its first part had left)."""
    longest = max((len(v.encode("utf-8")) for v in secret_values), default=0)
    return max(DEFAULT_OVERLAP, _WIDEST_FORM * longest + 16)


@dataclass
class StreamScan:
    """Scans a body chunk by chunk; ``feed`` and ``finish`` return what may be forwarded.

    ``scan_batch`` finds values in a batch of bytes (``Scanner.scan_batch``: offsets are byte
    offsets); ``scan_whole`` is the full scan of a complete body, used when the body turns out to
    be structured.
    """

    scan_batch: Callable[[bytes | bytearray], list[Finding]]  # must not keep the buffer
    scan_whole: Callable[[bytes], list[Finding]]
    # Run on each batch after ``scan_batch``, for what needs each byte once however the batches
    # overlap (pieces of secrets, remembered across requests): given the batch, how many of its
    # first bytes an earlier call was given (the held-back tail) and ``scan_batch``'s findings.
    scan_fresh: Callable[[bytes | bytearray, int, list[Finding]], list[Finding]] | None = None
    overlap: int = DEFAULT_OVERLAP
    batch: int = DEFAULT_BATCH
    findings: list[Finding] = field(default_factory=list)
    whole: bool = False  # the body is structured: held whole and scanned at the end
    max_whole: int = 0  # a body held whole and larger than this is refused (scan-limit); 0: no limit
    # A body held whole only for its structure (JSON, form, multipart) streams as text once it is
    # larger than this, as the full scan reads such a body as text past the same size; 0: never.
    text_past: int = 0
    sniff_json: bool = True  # False: a body that starts like JSON is still scanned as text
    opens: bool = True  # False: a compressed or zip body is not held whole to be opened
    inflate: str | None = None  # "gzip" or "deflate": its Content-Encoding, inflated on the way
    # Nothing is released until more than this has arrived; a body that ends within it gets the
    # full scan (``scan_whole``). For bodies of unknown length (chunked): a small one is judged
    # exactly as if it had been buffered.
    hold_upto: int = 0
    forwarded: int = 0  # bytes released so far
    received: int = 0
    _pending: bytearray = field(default_factory=bytearray)  # the held-back tail, then new bytes
    _sniffed: bool = False
    _lead: int = 0  # the bytes at the start that are all what JSON skips (so far)
    _scanned_upto: int = 0  # bytes of _pending already scanned clean (the held-back tail)
    # The first bytes of _pending that lie in a long base64 run already searched for the marks of
    # packed data (``_packed_goes_on``): a MiB batch of base64 is searched once, not again
    # with each batch the run goes on into.
    _marks_clear: int = 0
    _inflow: Inflow | None = None  # set when the body is scanned inflated (``_pending`` then holds its output)
    # The adjacent-values check of a JSON, NDJSON or form body streamed as text (``Scanner.scan_values``):
    # its values are read as the batches pass (``ValueLexer``, its state carried over each seam)
    # and checked with the last ones before, so a token cut over two values is found whatever
    # batch holds each piece, before the batch with the last piece leaves.
    scan_values: Callable[[list[str]], list[Finding]] | None = None
    # "json", "form" or "multipart" (from the Content-Type), "sniff" (JSON when the body starts
    # as JSON), or None; ``boundary``: a multipart body's.
    values_kind: str | None = None
    boundary: str = ""
    _lexer: ValueLexer | None = None
    _recent: list[str] = field(default_factory=list)  # the last values, ``SPLIT_REACH`` characters of them

    def __post_init__(self) -> None:
        if self.inflate is not None:
            self._inflow = Inflow("gzip" if self.inflate in ("gzip", "x-gzip") else "deflate")
            self.whole = False
            self._sniffed = True

    @classmethod
    def passthrough(cls) -> StreamScan:
        """One that scans nothing and holds nothing: every byte is forwarded as it arrives. For a
        body no detector reads (a route with every detector off, a bundle service that judges
        its own input): held, even only to be opened, it would cost memory and find nothing."""
        return cls(scan_batch=_nothing, scan_whole=_nothing, overlap=0, batch=1, sniff_json=False, opens=False)

    @property
    def blocked(self) -> bool:
        return bool(self.findings)

    @property
    def holds(self) -> bool:
        """Whether this scanner may hold the body (whole, or a batch of it): not a passthrough."""
        return self.scan_batch is not _nothing

    def feed(self, data: bytes) -> bytes:
        if self.blocked or not data:
            return b""
        self.received += len(data)
        if self._inflow is not None:
            return self._inflate(data)
        if self.whole and self.text_past and self.received > self.text_past:
            self.whole = False  # structured and past the size the full scan parses: text
        if self.whole and self.max_whole and self.received > self.max_whole:
            # Held whole to be opened, and larger than the scan reads: refused, not forwarded unread.
            self._refuse("Body larger than the scan limit")
            return b""
        self._pending += data
        if not self._sniffed:
            if len(self._pending) < SNIFF_BYTES or self._blank_lead():
                return b""
            self._sniff()
            if self._inflow is not None:
                return self._inflate_held()
        if self.whole or self.received <= self.hold_upto or len(self._pending) - self._scanned_upto < self.batch:
            return b""
        return self._scan_and_release(final=False)

    def finish(self) -> bytes:
        """The end of the body: scan what is held and release it, unless something was found."""
        if self.blocked:
            return b""
        if not self._sniffed:
            self._sniff()
            if self._inflow is not None:
                out = self._inflate_held()
                return out + self._finish_inflated() if not self.blocked else b""
        if self._inflow is not None:
            return self._finish_inflated()
        if self.whole or (self.forwarded == 0 and self.received <= self.hold_upto):
            body = bytes(self._pending)
            self.findings = list(self.scan_whole(body))
            self._pending.clear()
            if self.blocked:
                return b""
            self.forwarded += len(body)
            return body
        return self._scan_and_release(final=True)

    def _blank_lead(self) -> bool:
        """Whether all that arrived is what a JSON parser skips, and the body may yet be sniffed
        as JSON: then it is held (as a JSON body is) until its first other byte, up to the size
        past which a structured body is read as text anyway."""
        if not self.sniff_json or self.received > (self.text_past or self.max_whole or self.batch):
            return False
        pending = self._pending
        if self._lead == 0 and pending.startswith(_BOM):
            self._lead = len(_BOM)
        rest = len(pending) - self._lead
        self._lead += rest - len(pending[self._lead :].lstrip(_JSON_BLANKS))
        return self._lead == len(pending)

    def _sniff(self) -> None:
        self._sniffed = True
        head = bytes(self._pending[: self._lead + SNIFF_BYTES])  # past a long blank lead: where JSON starts
        kind = compression_of(head) if self.opens else None
        if kind in ("gzip", "zlib") and compressed(head):
            # Inflated while it streams, at any size: a .tar.gz's files are read as they pass.
            self._inflow = Inflow(kind)
            self.whole = False
            return
        if self.opens and compressed(head):
            self.whole, self.text_past = True, 0  # bzip2, xz, zip: opened whole by the full scan
            return
        self.whole = self.whole or (self.sniff_json and looks_like_json(head))

    def _refuse(self, why: str) -> None:
        self.findings = [Finding(SCAN_LIMIT, why, "body", 0, 0, HIGH)]
        self._pending.clear()
        if self._inflow is not None:
            self._inflow.chunks.clear()

    # -- a compressed body, scanned inflated --------------------------------------------------

    def _inflate_held(self) -> bytes:
        """What was held before the sniff showed compression, inflated from the start."""
        held = bytes(self._pending)
        self._pending.clear()
        return self._inflate(held)

    def _inflate(self, data: bytes) -> bytes:
        """Inflate ``data`` (compressed bytes of the body) in pieces of at most one batch, scan the
        output as a plain body's bytes are scanned, and release the compressed bytes whose output
        has been scanned clean."""
        inflow = self._inflow
        assert inflow is not None
        try:
            for out in inflow.inflate(data, self.batch):
                self._pending += out
                if len(self._pending) - self._scanned_upto >= self.batch and not self._scan_inflated(final=False):
                    return b""
        except zlib.error:
            self._refuse("Body does not decompress as its first bytes say")
            return b""
        inflow.queue(data)
        return self._release_compressed(everything=False)

    def _finish_inflated(self) -> bytes:
        inflow = self._inflow
        assert inflow is not None
        try:
            self._pending += inflow.flush()
        except zlib.error:
            self._refuse("Body does not decompress as its first bytes say")
            return b""
        if not self._scan_inflated(final=True):
            return b""
        return self._release_compressed(everything=True)

    def _scan_inflated(self, *, final: bool) -> bool:
        """Scan the inflated bytes held; False (and blocked) on a finding."""
        cut = self._scan(final=final)
        if cut is None:
            return False
        del self._pending[:cut]
        self._scanned_upto = len(self._pending)
        assert self._inflow is not None
        self._inflow.clean += cut
        return True

    def _release_compressed(self, *, everything: bool) -> bytes:
        inflow = self._inflow
        assert inflow is not None
        release = inflow.release(everything)
        self.forwarded += len(release)
        return release

    def _scan(self, *, final: bool) -> int | None:
        """Scan what is held (``_pending``); how many of its bytes are clean now (all but the
        held-back overlap, or all at the end), or None after a finding."""
        pending = self._pending
        if len(pending) > self._scanned_upto:
            # Scanned in place: a megabyte copy (fresh pages) costs a noticeable share of the scan.
            found = self.scan_batch(pending)
            if self.scan_fresh is not None:
                found = found + self.scan_fresh(pending, self._scanned_upto, found)
            if not found and self.scan_values is not None and self.values_kind is not None:
                found = self._value_findings(pending, self._scanned_upto, final)
            if found:
                self.findings = list(found)
                pending.clear()
                if self._inflow is not None:
                    self._inflow.chunks.clear()
                return None
        return len(pending) - (0 if final else min(self.overlap, len(pending)))

    def _value_findings(self, pending: bytearray, fresh: int, final: bool) -> list[Finding]:
        """The adjacent-values check over the values the fresh bytes (``pending[fresh:]``)
        complete, with the last values before them and the one still being read (its bytes may
        leave before it ends)."""
        with memoryview(pending) as view:
            fresh_bytes = bytes(view[fresh:])
        if self.values_kind != "multipart" and _binary(fresh_bytes):
            # Random bytes, an image or an archive sent under a JSON or form type (``curl
            # --data-binary`` says form): no receiver reads values out of it, and lexing it
            # costs ten times its scan. The values after it are read afresh. (A multipart
            # body's file parts are binary, its text fields beside them: its reader only looks
            # for the boundary, which costs little.)
            self._lexer, self._recent = None, []
            return []
        lexer = self._lexer
        if lexer is None:
            kind = self.values_kind
            if kind == "sniff":
                # Decided on the body's first bytes: nothing was scanned (nor released) before.
                kind = "json" if fresh == 0 and _starts_as_json(pending) else None
                self.values_kind = kind
                if kind is None:
                    return []
            lexer = self._lexer = ValueLexer(kind, self.boundary)
        values = lexer.feed(fresh_bytes.decode("latin-1"))  # as the full scan reads a body
        assert self.scan_values is not None
        known = self._recent + values
        # The value still being read counts as one already: its first bytes may leave with this batch.
        found = self.scan_values(known + lexer.pending())
        self._recent = _last_values(known, SPLIT_REACH)
        return found

    def _scan_and_release(self, *, final: bool) -> bytes:
        if not final and self._packed_goes_on():
            # A .tar.gz in base64 (``tar czf - . | base64``) longer than a batch: from here on the
            # body is held whole and opened by the full scan at its end, or refused past the limit.
            self.whole, self.text_past = True, 0
            if self.max_whole and self.received > self.max_whole:
                self._refuse("Base64 of compressed data larger than the scan limit")
            return b""
        cut = self._scan(final=final)
        if cut is None:
            return b""
        pending = self._pending
        with memoryview(pending) as view:
            release = bytes(view[:cut])
        del pending[:cut]  # cheap: a bytearray drops its front by moving its start
        self._scanned_upto = len(pending)
        self._marks_clear = max(0, self._marks_clear - cut)
        self.forwarded += len(release)
        return release

    def _packed_goes_on(self) -> bool:
        """``packed_run_goes_on(self._pending, self.overlap)``, searching for the marks only past
        what an earlier call searched of the same run (a mark may straddle that point)."""
        pending = self._pending
        start = long_run_start(pending, self.overlap)
        if start is None:
            self._marks_clear = 0
            return False
        if holds_mark(pending, max(start, self._marks_clear - _LONGEST_MARK + 1)):
            return True
        self._marks_clear = len(pending)
        return False


# Every byte but the C0 controls a text holds no more than a few of (tab, line feeds): deleted,
# what is left is a batch's control bytes. Text, JSON and forms hold next to none; random bytes
# one in nine.
_NOT_CONTROL = bytes(b for b in range(256) if b in b"\t\n\r" or 0x20 <= b != 0x7F)


def _binary(data: bytes) -> bool:
    """Whether more than one byte in a hundred of ``data`` is a control byte: not text."""
    return len(data.translate(None, _NOT_CONTROL)) * 100 > len(data)


def _starts_as_json(data: bytearray) -> bool:
    """``looks_like_json`` past a lead of any length (the whole first batch is searched)."""
    with memoryview(data) as view:
        return looks_like_json(bytes(view).lstrip(_BOM + _JSON_BLANKS)[:SNIFF_BYTES])


def _last_values(values: list[str], reach: int) -> list[str]:
    """The last of ``values`` (empty ones dropped) that hold ``reach`` characters between them,
    the first of them cut to what is needed."""
    out: list[str] = []
    held = 0
    for value in reversed(values):
        if not value:
            continue
        if held + len(value) >= reach:
            out.append(value[len(value) - (reach - held) :])
            break
        out.append(value)
        held += len(value)
    out.reverse()
    return out


# The bytes that tell zlib from raw deflate (its header), and a gzip member from a trailer (its magic).
DECIDING_BYTES = len(GZIP_MAGIC)


class Inflow:
    """The compressed side of a body scanned inflated: its decompressor, and the compressed
    chunks not yet released, each with how much output the decompressor had produced once it
    was consumed.

    A chunk leaves only when the output produced by the time the chunk *after* it was consumed
    has been scanned clean: zlib emits all the output its input allows, but the last few bits
    of a chunk can complete a symbol only with the next one. So no compressed byte leaves
    before everything it encodes was scanned (and the overlap rule of a plain body applies to
    the output).

    What it inflates to is bounded: to ``FLOOR`` whatever the body's size, and past it to ``RATIO``
    times the compressed bytes so far; past that, ``inflate`` and ``flush`` raise ``zlib.error``
    (the caller refuses the body as a ``scan-limit``). Without it a declared gzip bomb (50 KB
    that inflate to 5 GB) held memory within a batch but cost the proxy minutes of scanning.
    """

    # Real bodies stay below the ratio: JSON, logs and sources compress 3 to 30 times, NDJSON of
    # near-identical records up to about 100. Degenerate content passes it (the same record
    # repeated 350 times, a JSON array of nulls 700, zeros of a blank image or a sparse file
    # 1030, deflate's most): the floor lets such a body through up to 256 MiB whatever its size
    # (200 MB of zeros sent as 200 KB are delivered). A bomb, at deflate's most, is stopped past
    # about 320 MiB: some 20 s of the scan's CPU for text (65 ms a MiB), where 5 GB took more
    # than five minutes; in layers (gzip of gzip, a million times) just past the floor. A ratio
    # above deflate's most would bound bombs in layers only.
    RATIO = 200
    FLOOR = 256 * 1024 * 1024

    def __init__(self, kind: str, *, bounded: bool = True, floor: int | None = None) -> None:
        self.kind = kind
        # Not ``bounded``: the caller bounds what it inflates (an answer, across its layers).
        self.ratio = Inflow.RATIO if bounded else None
        self.floor = Inflow.FLOOR if floor is None else floor
        self.consumed = 0  # compressed bytes taken so far
        self._decompressor: Any = None
        self._raw_tail = False  # past the compressed data: the rest is scanned as it is
        self._members = 0  # compressed streams ended so far (gzip allows several in a row)
        self.produced = 0  # output bytes so far
        self.clean = 0  # output bytes scanned clean (released to the compressed side)
        self.chunks: deque[tuple[bytes, int]] = deque()  # (compressed chunk, output once consumed)
        self._undecided = b""  # a byte held until the next says how to read what follows

    def inflate(self, data: bytes, piece: int) -> Iterator[bytes]:
        """The output of ``data``, in pieces of at most ``piece`` bytes (a small body can
        inflate to gigabytes: it is never held whole). Raises ``zlib.error`` on corrupt data."""
        self.consumed += len(data)
        held, self._undecided = self._undecided, b""
        yield from self._inflate(held + data if held else data, piece, final=False)

    def flush(self) -> bytes:
        """The last output, once the body ended (a byte held undecided is read as it can be)."""
        held, self._undecided = self._undecided, b""
        tail = b"".join(self._inflate(held, 1 << 16, final=True)) if held else b""
        out = self._decompressor.flush() if self._decompressor is not None else b""
        self.produced += len(out)
        self._check_bound()
        return tail + out

    def _check_bound(self) -> None:
        ratio = self.ratio
        if ratio is not None and self.produced > self.floor + ratio * self.consumed:
            raise zlib.error(f"inflates to more than {ratio} times its size")

    def _inflate(self, rest: bytes, piece: int, *, final: bool) -> Iterator[bytes]:
        while rest:
            if not final and len(rest) < DECIDING_BYTES and self._next_is_sniffed():
                # One byte cannot tell zlib from raw deflate, nor a gzip member from a trailer:
                # decided with the next byte (or at the end), not guessed from a padded header.
                self._undecided = rest
                return
            if self._decompressor is None and self._members and not (self.kind == "gzip" and rest[:2] == GZIP_MAGIC):
                self._raw_tail = True  # after the compressed data, not another gzip member: read as sent
            if self._raw_tail:
                out, rest = rest, b""
            else:
                if self._decompressor is None:
                    self._decompressor = self._new(rest)
                d = self._decompressor
                out = d.decompress(rest, piece)
                rest = d.unconsumed_tail
                if d.eof:
                    # All input past the end is in unused_data; after a call cut by ``piece``,
                    # CPython leaves a copy of it in unconsumed_tail too (read twice, it would
                    # turn a next member into a corrupt one, or into bytes read as sent).
                    rest = d.unused_data
                    self._decompressor = None
                    self._members += 1
            self.produced += len(out)
            self._check_bound()
            if out:
                yield out

    def _next_is_sniffed(self) -> bool:
        """Whether what comes next is read by its first two bytes: the start of a deflate body
        (zlib or raw), or what follows a gzip member (another member, or a trailer)."""
        if self._decompressor is not None or self._raw_tail:
            return False
        return self._members > 0 if self.kind == "gzip" else self._members == 0

    def queue(self, data: bytes) -> None:
        self.chunks.append((data, self.produced))

    def release(self, everything: bool) -> bytes:
        out = []
        chunks = self.chunks
        while chunks and (everything or (len(chunks) > 1 and chunks[1][1] <= self.clean)):
            out.append(chunks.popleft()[0])
        return b"".join(out)

    def _new(self, head: bytes) -> Any:
        if self.kind == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        # zlib-wrapped (as "deflate" should be) or, as some clients send it, raw deflate.
        return zlib.decompressobj(zlib.MAX_WBITS if compression_of(head[:2] + b"\0") == "zlib" else -zlib.MAX_WBITS)
