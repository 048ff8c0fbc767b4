"""Chunk-wise inbound scanning of a large answer on its way to the agent (a download).

Holding a whole answer to scan it cost the proxy its memory: a 200 MB download got the egress
proxy killed (the sidecar has 512 MB), and the bottle lost its network. ``AnswerStream`` sits
between the bytes the upstream sends and the bytes the agent gets, and keeps at most a batch
plus an overlap of them:

- the bottle's secrets an upstream echoes back are *masked in place* (``[REDACTED]``, then
  ``*``, as long as the value), so the answer keeps its length (its ``Content-Length`` has gone
  out with the headers); the held-back overlap is scanned again with the next batch, so a value
  cut by a batch boundary is found whole before any byte of it leaves;
- prompt-injection phrases are looked for in batches that are text (a few control bytes
  among it allowed: the phrase search skips them), and in the ASCII text stretches of binary
  ones (a README in a tar; the rest of binary data is skipped: the phrase search reads it as
  noise, slowly): a medium-confidence one is logged, a high-confidence one stops the answer
  (``stopped``: nothing more is delivered, and the caller closes the connection, so the agent
  sees an answer cut short, never its rest). Each batch is read with the bytes before it that a
  phrase cut by the seam can reach (``inbound.SEAM_BYTES``), kept apart with their long blank
  runs bounded (``inbound.seam_context``: ten thousand blanks cut by a seam do not push the
  words before them out of reach). The scan is told, as an ``inbound.SeamContext``, how many of
  its first bytes are only context (read with the batch before), the bytes before those
  (whether they start a line or a word) and whether the answer started as JSON (then its
  batches are all read as JSON, strings joined and decoded, not only the first).

An answer of unknown length (chunked) is held whole up to ``hold_upto`` and, if it ends within
that, judged whole by ``judge_whole`` exactly as a buffered answer is (a small answer loses
nothing to streaming); past it, it is scanned as above.

An answer sent compressed (``Content-Encoding: gzip`` or ``deflate``) is read inflated by
``InflatedAnswer``: scanned compressed, an echoed secret or a phrase would pass unseen. One in
layers of them (``Content-Encoding: deflate, gzip``, or two header lines) is read through one
``InflatedAnswer`` per layer (``inflated_layers``), the outer one reading what the inner one
releases, so each compressed chunk leaves once everything it encodes, through every layer, was
scanned. What the layers inflate to is bounded as an upload's is (``stream.Inflow``: past
``DECLARED_FLOOR``, ``DECLARED_RATIO`` times the bytes the upstream sent, each layer measured
against those, not against what the layer around it inflated to): a declared gzip bomb is
stopped as a ``scan-limit``, held or streamed, instead of costing the proxy minutes of
scanning. One in an encoding that cannot be read on its way (``unreadable``: br or zstd, alone
or among layers) is judged whole while it can be held, and stopped before its first byte once
it must stream.

An answer that streams and starts as gzip without saying so (a ``.gz`` download, or a ``.tar.gz``
inside a gzip answer) is opened too, the same way (``sniff_gzip``): its first two bytes decide,
so any other answer pays a two-byte test. It is delivered as sent, each compressed chunk once
what it encodes was scanned; a secret found inside cannot be masked in compressed bytes already
gone, so it stops the answer, as in a declared gzip answer. Phrases are read inside only when
the content starts as text (a ``.log.gz``, a ``.json.gz``): a ``.tar.gz`` of sources quotes
anything in its tests and docs. What it inflates to is bounded (``OPENED_RATIO`` times its size
past the held limit, ``OPENED_FLOOR``): a gzip bomb is stopped as a ``scan-limit`` instead of
costing the proxy minutes of scanning.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from bot_bottle.sidecar.dlp.bodies import GZIP_MAGIC, IN_PLACE_MASK, encode_like
from bot_bottle.sidecar.dlp.compat import is_utf8
from bot_bottle.sidecar.dlp.findings import SCAN_LIMIT
from bot_bottle.sidecar.dlp.inbound import SEAM_BYTES, SeamContext, seam_context, starts_json
from bot_bottle.sidecar.dlp.stream import Inflow

# (start, end, label) of a value to mask, offsets into the batch.
Spans = list[tuple[int, int, str]]
# (label, high confidence) per injection flag.
Flags = list[tuple[str, bool]]
MASK = IN_PLACE_MASK
DEFAULT_BATCH = 1024 * 1024
# An undeclared gzip answer may inflate to this much whatever its size (what a held answer is
# read to, inflated), and past it to at most ``OPENED_RATIO`` times the compressed bytes so far:
# sources and logs compress 3 to 20 times, a deflate bomb about a thousand.
OPENED_FLOOR = 16 * 1024 * 1024
OPENED_RATIO = 100
# A declared gzip or deflate answer (every layer of it) may inflate to this much whatever its
# size, and past it to this many times the bytes the upstream sent: the bound of an upload's
# inflated body (``Inflow`` says why these numbers). Measured against the bytes as sent,
# a layer inside another cannot multiply the two bounds (gzip of a gzip bomb, 50 KB for 50 GB).
DECLARED_FLOOR = Inflow.FLOOR
DECLARED_RATIO = Inflow.RATIO
# Compressed bytes tried before an answer starting with gzip's magic number is taken for gzip
# (random bytes after the magic fail to inflate within a few of them; fewer only at its end).
_SNIFF_BYTES = 4096


@dataclass
class InflationBound:
    """How far compressed bytes may inflate: to ``floor`` whatever their number, past it to
    ``ratio`` times as many as were ``sent``, and within the bound around (``within``). One for
    an answer's declared layers, shared by each of them; one of its own for an undeclared gzip,
    within that of the layers it was sent in, if any."""

    ratio: int
    floor: int
    within: InflationBound | None = None
    sent: int = 0  # the compressed bytes (counted by the outermost layer this bound is for)

    def passed(self, produced: int) -> int | None:
        """The ratio ``produced`` inflated bytes pass, None while within every bound."""
        if produced > self.floor + self.ratio * self.sent:
            return self.ratio
        return self.within.passed(produced) if self.within is not None else None


@dataclass
class WholeVerdict:
    """What ``judge_whole`` decided for an answer held whole."""

    deliver: bytes | None  # None: stop the answer
    labels: tuple[str, ...] = ()
    redacted: bool = False  # ``deliver`` has values replaced


@dataclass
class AnswerStream:
    echoed: Callable[[bytearray], Spans]  # the bottle's secrets in a batch
    # Prompt-injection flags in a text batch, read as the context says; None: the answer is read
    # for the bottle's secrets only (inside a download's compression, say).
    injection: Callable[[bytes, SeamContext], Flags] | None
    overlap: int
    judge_whole: Callable[[bytes], WholeVerdict] | None = None
    hold_upto: int = 0
    batch: int = DEFAULT_BATCH
    # Why this answer cannot be scanned as it streams (its encoding is not read on the way): it
    # is stopped, nothing delivered, as soon as it must stream. None: it can.
    unreadable: str | None = None
    # Open a streamed answer that starts as gzip without a Content-Encoding (see module).
    sniff_gzip: bool = True
    # Phrases read only if the answer starts as text (the inside of an undeclared gzip).
    text_phrases_only: bool = False
    # The bound of the declared layers this answer is read inside (``inflated_layers``): an
    # undeclared gzip opened in it is bounded within it too.
    bound: InflationBound | None = None
    labels: list[str] = field(default_factory=list)  # what was found, for the log
    masked: int = 0  # values masked (or the answer judged whole was redacted)
    stopped: bool = False
    received: int = 0
    delivered: int = 0
    _pending: bytearray = field(default_factory=bytearray)
    _scanned_upto: int = 0  # bytes of _pending already scanned (the held-back tail)
    _streaming: bool = False
    _json: bool | None = None  # the answer starts as JSON (known at its first scan)
    # What was read before ``_pending[_scanned_upto:]``, as far back as a re-read reaches, long
    # blank runs bounded (``inbound.seam_context``).
    _seen: bytes = b""
    _read_whole: bool = True  # the batch before was read whole as text (not its stretches)
    _sniffed: bool = False  # whether it is undeclared gzip has been decided
    _opened: InflatedAnswer | None = None  # it is: read through this

    @property
    def judging_whole(self) -> bool:
        """Still held to be judged whole when it ends (a chunked answer within ``hold_upto``)."""
        return not self._streaming and self.judge_whole is not None

    def feed(self, data: bytes) -> bytes:
        if self.stopped or not data:
            return b""
        self.received += len(data)
        if self._opened is not None:
            return self._from_opened(self._opened.feed(data))
        self._pending += data
        if not self._streaming:
            if self.judge_whole is not None and self.received <= self.hold_upto:
                return b""
            self._streaming = True
            if self.unreadable is not None:
                self._label(self.unreadable)
                self.stopped = True
                self._pending.clear()
                return b""
        if not self._sniffed:
            opened = self._is_gzip(final=False)
            if opened is None:
                return b""
            if opened:
                return self._open(final=False)
        if len(self._pending) - self._scanned_upto < self.batch:
            return b""
        return self._scan_and_release(final=False)

    def finish(self) -> bytes:
        if self.stopped:
            return b""
        if self._opened is not None:
            return self._from_opened(self._opened.finish())
        if not self.judging_whole and not self._sniffed and self._is_gzip(final=True):
            return self._open(final=True)
        if self.judging_whole:
            verdict = self.judge_whole(bytes(self._pending))
            self._pending.clear()
            self.labels.extend(verdict.labels)
            self.masked += verdict.redacted
            if verdict.deliver is None:
                self.stopped = True
                return b""
            self.delivered += len(verdict.deliver)
            return verdict.deliver
        return self._scan_and_release(final=True)

    def _is_gzip(self, *, final: bool) -> bool | None:
        """Whether the answer is to be opened as gzip; None: not known before more bytes come."""
        pending = self._pending
        if not self.sniff_gzip or pending[:2] != GZIP_MAGIC[: len(pending)]:
            self._sniffed = True  # every other answer: decided by its first two bytes
            return False
        found = opens_as_gzip(bytes(pending[:_SNIFF_BYTES]), final=final)
        self._sniffed = found is not None
        return found

    def _open(self, *, final: bool) -> bytes:
        """Read the rest through an ``InflatedAnswer`` that shares what is found with this one."""
        inner = AnswerStream(echoed=self.echoed, injection=self.injection, overlap=self.overlap,
                             batch=self.batch, sniff_gzip=False, text_phrases_only=True, labels=self.labels)
        bound = InflationBound(OPENED_RATIO, OPENED_FLOOR, within=self.bound)
        self._opened = opened = InflatedAnswer(inner, "gzip", bound=bound)
        data = bytes(self._pending)
        self._pending.clear()
        out = opened.feed(data)
        if final and not opened.stopped:
            out += opened.finish()
        return self._from_opened(out)

    def _from_opened(self, out: bytes) -> bytes:
        opened = self._opened
        assert opened is not None
        self.masked = opened.masked
        if opened.stopped:
            self.stopped = True
            return b""
        self.delivered += len(out)
        return out

    def _label(self, label: str) -> None:
        if label not in self.labels:  # an answer full of echoes logs each kind once
            self.labels.append(label)

    def _scan_and_release(self, *, final: bool) -> bytes:
        pending = self._pending
        if len(pending) > self._scanned_upto:
            for start, end, label in self.echoed(pending):
                pending[start:end] = (MASK + b"*" * (end - start))[: end - start]
                self._label(label)
                self.masked += 1
            if self.injection is not None:
                self._read_for_phrases(self.injection)
            if self.stopped:
                pending.clear()
                return b""
        cut = len(pending) - (0 if final else min(self.overlap, len(pending)))
        with memoryview(pending) as view:
            release = bytes(view[:cut])
        del pending[:cut]
        self._scanned_upto = len(pending)
        self.delivered += len(release)
        return release

    def _read_for_phrases(self, injection: Callable[[bytes, SeamContext], Flags]) -> None:
        """The new bytes (with the context before them) read for phrases: whole as text, or
        only their ASCII stretches when binary; a high one stops the answer."""
        if self.text_phrases_only and self._json is None and not starts_as_text(bytes(self._pending[:_HEAD])):
            self.injection = None  # read for the bottle's secrets only from here on
            return
        fresh, context = self._reread()
        if not self._read_whole:
            # Read as binary, the batch before was read only in its ASCII stretches: the
            # bytes it shares with this one were not all read, none is only context.
            context = replace(context, context_bytes=0)
        self._read_whole = _is_text(fresh) or _mostly_text(fresh)
        if not self._read_whole:
            fresh, context = _text_stretches(fresh, context)
        if fresh:
            for label, high in injection(fresh, context):
                self._label(label)
                if high:
                    self.stopped = True

    def _reread(self) -> tuple[bytes, SeamContext]:
        """The bytes to read for phrases: the new ones and, as far back as a phrase cut at the
        seam can reach (``SEAM_BYTES``), those before, with what tells where in a line and in a
        word they start. Those before are kept apart from ``_pending`` (which holds back only
        what secrets need), with long blank runs bounded: "ignore", ten thousand blanks and "all
        previous instructions" cut by a seam are read together as they are in an answer read
        whole."""
        pending = self._pending
        if self._json is None:
            self._json = starts_json(bytes(pending[:64]))
        seen, fresh = self._seen, bytes(pending[self._scanned_upto :])
        self._seen = seam_context(seen, fresh)
        before = seen[-SEAM_BYTES:]
        return before + fresh, SeamContext(self._json, seen[:-SEAM_BYTES], len(before))


@dataclass
class InflatedAnswer:
    """An answer delivered as sent, compressed (its headers went out with the encoding), and
    read by ``plan`` inflated. A compressed chunk leaves only once everything it encodes was
    scanned clean (``stream.Inflow``). A value cannot be masked inside compressed data: found
    while streaming, it stops the answer; in an answer judged whole (chunked, within
    ``plan.hold_upto`` inflated) the redacted answer is compressed again. The same face as
    ``AnswerStream`` for the proxy; ``received`` and ``delivered`` count compressed bytes."""

    # What reads the inflated bytes: the scan, or the next layer in (itself compressed).
    plan: AnswerStream | InflatedAnswer
    encoding: str  # the layer of Content-Encoding this one undoes: gzip, x-gzip or deflate
    # What it may inflate to (None: not bounded).
    bound: InflationBound | None = None
    # This layer gets the bytes as the upstream sent them (the outermost): it counts them for
    # ``bound``; an inner one gets what the layer around it inflated to.
    counts_sent: bool = True
    received: int = 0
    delivered: int = 0
    _inflow: Inflow = field(init=False)

    def __post_init__(self) -> None:
        # Bounded here, against the bytes as sent, with a label saying so (``_too_inflated``).
        self._inflow = Inflow("deflate" if self.encoding == "deflate" else "gzip", bounded=False)

    @property
    def stopped(self) -> bool:
        return self.plan.stopped

    @stopped.setter
    def stopped(self, value: bool) -> None:
        self.plan.stopped = value

    @property
    def labels(self) -> list[str]:
        return self.plan.labels

    @property
    def masked(self) -> int:
        return self.plan.masked

    @property
    def hold_upto(self) -> int:
        return self.plan.hold_upto

    @property
    def batch(self) -> int:
        return self.plan.batch

    @property
    def judging_whole(self) -> bool:
        return self.plan.judging_whole

    def feed(self, data: bytes) -> bytes:
        if self.stopped or not data:
            return b""
        self.received += len(data)
        if self.bound is not None and self.counts_sent:
            self.bound.sent += len(data)
        inflow, plan = self._inflow, self.plan
        inflow.queue(data)
        try:
            for out in inflow.inflate(data, plan.batch):
                if self._too_inflated():
                    return self._stop(self._bomb_label())
                inflow.clean += len(plan.feed(out))
                if plan.stopped or plan.masked:
                    break
        except zlib.error:
            return self._stop(f"{SCAN_LIMIT} (the {self.encoding} answer does not inflate)")
        if plan.stopped:
            return b""
        if plan.masked:
            return self._stop()
        if plan.judging_whole:
            return b""  # it may leave compressed again, redacted
        return self._release(everything=False)

    def finish(self) -> bytes:
        if self.stopped:
            return b""
        plan = self.plan
        try:
            head = plan.feed(self._inflow.flush())
        except zlib.error:
            return self._stop(f"{SCAN_LIMIT} (the {self.encoding} answer does not inflate)")
        if self._too_inflated():
            return self._stop(self._bomb_label())
        judged_whole = plan.judging_whole
        out = head + plan.finish()
        if plan.stopped:
            return b""
        if judged_whole and plan.masked:
            # Judged whole and redacted: compressed again in the framing it came in (each gzip
            # member on its own, bytes after the compressed data kept after it). Held whole,
            # every compressed chunk is still queued.
            sent = b"".join(chunk for chunk, _ in self._inflow.chunks)
            body = encode_like(sent, self.encoding, out, max(plan.hold_upto, len(out)))
            if body is None:
                return self._stop()
            self._inflow.chunks.clear()
            self.delivered += len(body)
            return body
        if plan.masked:
            return self._stop()
        return self._release(everything=True)

    def _too_inflated(self) -> bool:
        return self._passed() is not None

    def _passed(self) -> int | None:
        return self.bound.passed(self._inflow.produced) if self.bound is not None else None

    def _bomb_label(self) -> str:
        return f"{SCAN_LIMIT} (the {self.encoding} answer inflates to more than {self._passed()} times its size)"

    def _release(self, *, everything: bool) -> bytes:
        out = self._inflow.release(everything)
        self.delivered += len(out)
        return out

    def _stop(self, label: str | None = None) -> bytes:
        if label is not None:
            self.plan.labels.append(label)
        self.plan.stopped = True
        self._inflow.chunks.clear()
        return b""


# What the proxy drives an answer through, chunk by chunk.
Answer = AnswerStream | InflatedAnswer


def inflated_layers(plan: AnswerStream, codings: Sequence[str]) -> Answer:
    """``plan`` reading an answer in ``codings`` (gzip, x-gzip or deflate, in the order they were
    applied, as ``Content-Encoding`` lists them): the last one applied is undone first. What
    they inflate to is bounded (``DECLARED_RATIO``), a gzip ``plan`` opens inside them too."""
    if not codings:
        return plan
    plan.bound = bound = InflationBound(DECLARED_RATIO, DECLARED_FLOOR)
    answer: Answer = plan
    for k, coding in enumerate(codings):
        answer = InflatedAnswer(answer, coding, bound=bound, counts_sent=k == len(codings) - 1)
    return answer


# A run of ASCII text inside binary data (a README in a tar, strings in a binary): long enough
# for a phrase, and rare in random bytes (about one in 10^10 positions starts one).
_STRETCH = 24
_TEXT_MARKS = bytes(1 if b in (9, 10, 13) or 0x20 <= b <= 0x7E else 0 for b in range(256))


def _text_stretches(data: bytes, context: SeamContext) -> tuple[bytes, SeamContext]:
    """The ASCII text inside binary ``data``, stretches joined by newlines, to be read for
    phrases (read whole as text, binary noise makes the phrase search slow), and ``context``
    for it: its lead kept only where the first stretch starts ``data``, and no byte only context
    (the batch before read them whole, which may read otherwise than stretches do). Found by
    searching a 0/1 view of the bytes: a regex over a megabyte of binary took longer than its
    whole scan."""
    marks = data.translate(_TEXT_MARKS)
    run = b"\x01" * _STRETCH
    out: list[bytes] = []
    start = marks.find(run)
    lead = context.lead if start == 0 else b""
    while start >= 0:
        end = marks.find(b"\x00", start)
        end = len(data) if end < 0 else end
        out.append(data[start:end])
        start = marks.find(run, end)
    return b"\n".join(out), SeamContext(context.json, lead, 0)


def opens_as_gzip(head: bytes, *, final: bool) -> bool | None:
    """Whether an answer starting with ``head`` (its first ``_SNIFF_BYTES``) is gzip to open:
    its magic number, then bytes that inflate; None while too few bytes have come to tell (a
    shorter ``head`` is the whole answer when ``final``). Any other answer fails the first test."""
    if head[:2] != GZIP_MAGIC[: len(head)]:
        return False
    if len(head) < _SNIFF_BYTES and not final:
        return None
    if len(head) < 2:
        return False
    trial = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = trial.decompress(head, _SNIFF_BYTES)
    except zlib.error:
        return False  # the magic number by chance: read as it is
    # Nothing out of 4 KiB: a header field of random length swallowed them, not a real gzip.
    return bool(out) or trial.eof or len(head) < _SNIFF_BYTES


def starts_as_text(head: bytes) -> bool:
    """Whether content starting with ``head`` is text to read for phrases (a ``.txt.gz``, not a
    tar, an image or an executable in one)."""
    return _is_text(head) or _mostly_text(head)


def _is_text(data: bytes) -> bool:
    """Whether ``data`` reads as text: UTF-8 (a character cut at either end allowed), no NULs."""
    return b"\x00" not in data and is_utf8(data)


# Control bytes that are not whitespace. A text with a few of them is still text: read as
# binary, a NUL inside a word cut the phrase into stretches too short to read, and letters
# outside ASCII were never read at all.
_CONTROLS = bytes(b for b in range(0x20) if b not in b"\t\n\v\f\r") + b"\x7f"
# At most one control byte in this many: binary formats that are ASCII with NULs between (UTF-16
# text, a tar of small files) hold far more.
_MOST_CONTROLS = 20
_HEAD = 4096  # bytes looked at first


def _mostly_text(data: bytes) -> bool:
    """Whether ``data`` is text but for a few control bytes (the phrase search skips those).
    Images, archives and compressed data are not UTF-8 once those are taken out: their first
    kilobytes tell, before the whole batch is looked at."""
    return all(_few_controls_in_utf8(part) for part in (data[:_HEAD], data))



def _few_controls_in_utf8(data: bytes) -> bool:
    kept = data.translate(None, _CONTROLS)
    return (len(data) - len(kept)) * _MOST_CONTROLS <= len(data) and is_utf8(kept)
