"""Compressed streams that start partway through a file, found by their header and inflated.

``packed`` opens a file that *starts* like a compressed file. A zlib stream can also sit after
other bytes (``junk + zlib.compress(secret)``), and real files hold such streams legitimately
(PNG's IDAT, PDF's FlateDecode, git's own packs), as they hold a gzip member or a zip entry after
a header of their own. Scanned as it is, a secret in one is invisible. So every offset of a file
where a stream could start is tried:

- a zlib header: CM 8 (deflate), a window of at most 32 KiB, no preset dictionary, and a valid
  header checksum. Any window size is accepted (zlib does), so about one byte pair in 2000 of
  random data qualifies; almost all fail within a few bytes. The deflate data after it is read
  raw: a stream whose Adler-32 was damaged on purpose still gives all it encodes;
- a gzip member (magic, CM 8, reserved flags clear): zlib reads its header;
- a zip local file header with method 8: the raw deflate data after its name and extra field.

A PNG's image data, one stream cut into chunks, is joined first (``PngLayout``). What each
stream gives before it ends, fails or runs out of input is scanned (``Part``s, as ``packed``
gives them; read as its runs of text, ``text_runs``), opened again when it starts like a
compressed file or an archive (``packed.unpack``), and searched again for streams of its own,
``MAX_NESTING`` levels deep.

Trying costs, and a push could hold many decoys before the stream that matters, so every try
and every inflated byte is counted against a budget per file (``FILE_TRIES_BASE`` tries plus one
per ``FILE_TRIES_BYTES`` bytes read, and ``FILE_OUTPUT`` bytes) and per push (``PUSH_TRIES``,
``PUSH_OUTPUT``). Past a budget nothing more is tried and a ``Part`` with a ``limit`` says why:
the caller refuses the push (a ``scan-limit``), naming the file. Skipping the rest instead would
let decoys placed first hide the real stream; a push refused so can be split, or the file left
out.
"""

from __future__ import annotations

import bisect
import codecs
import re
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator

from bot_bottle.sidecar.dlp import wide
from bot_bottle.sidecar.git_gate import packed
from bot_bottle.sidecar.git_gate.packed import MiB, Part

# Tries per file: this many, plus one per FILE_TRIES_BYTES bytes of the file read so far. Random
# bytes hold a candidate header about every 2 KiB, so a large binary of any kind stays within it
# (a factor of 16); a file made of headers does not, and costs at most ~1 s per 32 MiB first.
FILE_TRIES_BASE = 4096
FILE_TRIES_BYTES = 128
FILE_OUTPUT = packed.BUDGET  # bytes inflated from one file's streams, in all (as a compressed file's)
PUSH_TRIES = 1 << 20  # about 2 GiB of random bytes' worth of candidates; a few seconds at most
PUSH_OUTPUT = 1024 * MiB  # some 100 screenshots in PNG; ~30 s of reading at most
MAX_NESTING = 3  # streams inside streams, in all
MIN_OUTPUT = 8  # no secret the scan knows is shorter (scan.MIN_KNOWN_SECRET)
_FIRST_STEP = 8  # input fed to a new stream at first: a wrong guess fails within it
_MAX_STEP = 64 * 1024
_GZIP_WBITS = 16 + zlib.MAX_WBITS


def zlib_headers() -> list[bytes]:
    """Every two-byte zlib header zlib accepts without a preset dictionary."""
    return [bytes([cmf, flg]) for cmf in range(0x08, 0x80, 0x10) for flg in range(256)
            if (cmf * 256 + flg) % 31 == 0 and not flg & 0x20]


# One alternative per header kind; a zlib header's bytes are matched as a pair (one regex pass,
# ~200 MB/s), a gzip member by magic, method and clear reserved flags, a zip entry by signature.
_CANDIDATE = re.compile(
    b"|".join(re.escape(h) for h in zlib_headers())
    + b"|\x1f\x8b\x08[\x00-\x1f]"
    + b"|PK\x03\x04",
    re.DOTALL,
)


class Budget:
    """What one push may still spend on streams, in all (shared by every file of the push)."""

    def __init__(self, tries: int | None = None, output: int | None = None) -> None:
        self.tries = PUSH_TRIES if tries is None else tries
        self.output = PUSH_OUTPUT if output is None else output


class _Spend:
    """One file's share: its own budget, drawn from the push's too. ``limit`` is the reason a
    budget ran out (then nothing more is tried)."""

    def __init__(self, push: Budget) -> None:
        self.push = push
        self.tries = 0
        self.output = 0
        self.read = 0  # bytes of the file seen so far: the file's tries grow with them
        self.limit: str | None = None
        self.reported = False

    def may_try(self) -> bool:
        if self.limit is not None:
            return False
        if self.push.tries <= 0:
            self.limit = (f"the push holds more than {PUSH_TRIES} places where a compressed stream could start,"
                          " the most the gate tries in one push")
            return False
        allowed = FILE_TRIES_BASE + self.read // FILE_TRIES_BYTES
        if self.tries >= allowed:
            self.limit = (f"it holds more places where a compressed stream could start than the gate tries"
                          f" in a file ({FILE_TRIES_BASE} plus one per {FILE_TRIES_BYTES} bytes)")
            return False
        self.tries += 1
        self.push.tries -= 1
        return True

    def left(self) -> int:
        return max(min(FILE_OUTPUT - self.output, self.push.output), 0)

    def take(self, size: int) -> None:
        self.output += size
        self.push.output -= size

    def over(self) -> None:
        """A stream inflated past what is left."""
        if self.limit is not None:
            return
        if self.push.output <= FILE_OUTPUT - self.output:
            self.limit = (f"the push's compressed streams inflate to more than {PUSH_OUTPUT // MiB} MiB in all,"
                          " the most the gate reads in one push")
        else:
            self.limit = f"its compressed streams inflate to more than {FILE_OUTPUT // MiB} MiB, the scan limit"


class _Stream:
    """One stream being inflated: fed the file's bytes from its start on until it ends, fails,
    or fills what the budget leaves."""

    def __init__(self, wbits: int) -> None:
        self.inflater = zlib.decompressobj(wbits)
        self.parts: list[bytes] = []
        self.size = 0
        self.fed = 0
        self.done = False
        self.over = False  # it inflated past what the budget left
        self.ahead = 0  # bytes of the file still to pass before its data starts (a zip entry's name)

    def feed(self, data: memoryview, limit: int) -> int:
        """Inflate more of the stream, ``limit`` bytes of output more at most; the bytes it gave."""
        before = self.size
        pos = min(self.ahead, len(data))
        self.ahead -= pos
        while pos < len(data) and not self.done:
            # Small steps first: a wrong guess fails at once, and the bytes of the step that
            # fails are fed again to keep what decoded before the fault (a call that raises
            # returns nothing).
            step = min(max(_FIRST_STEP, self.fed), _MAX_STEP)
            piece = data[pos:pos + step]
            room = limit - (self.size - before)
            saved = self.inflater.copy()
            try:
                out = self.inflater.decompress(piece, room + 1)
            except zlib.error:
                self._keep(_salvage(saved, piece, room))
                self.done = True
                break
            pos += len(piece)
            self.fed += len(piece)
            if len(out) > room or self.inflater.unconsumed_tail:
                self._keep(out[:room])
                self.over = self.done = True
            else:
                self._keep(out)
                self.done = self.inflater.eof
        return self.size - before

    def _keep(self, out: bytes) -> None:
        if out:
            self.parts.append(out)
            self.size += len(out)


def _salvage(saved: object, piece: memoryview, limit: int) -> bytes:
    """What the inflater (as it was before ``piece``) gives from the longest prefix of
    ``piece`` that decodes without error (a binary search: the output only grows with it)."""
    low, high, best = 0, len(piece) - 1, b""
    while low <= high:
        mid = (low + high) // 2
        trial = saved.copy()  # type: ignore[attr-defined]
        try:
            out = trial.decompress(piece[:mid], max(limit, 0) + 1)
        except zlib.error:
            high = mid - 1
            continue
        best, low = out, mid + 1
    return best[:max(limit, 0)]


def _start(data: bytes, at: int) -> tuple[int, int] | None:
    """``(wbits, where its data starts)`` of the stream whose header is at ``at``; None when the
    header is not one after all (a zip entry not deflated)."""
    if data[at:at + 2] == b"\x1f\x8b":
        return _GZIP_WBITS, at
    if data[at:at + 4] == b"PK\x03\x04":
        if len(data) < at + 30:
            return None
        method, = struct.unpack_from("<H", data, at + 8)
        name, extra = struct.unpack_from("<HH", data, at + 26)
        return (-zlib.MAX_WBITS, at + 30 + name + extra) if method == 8 else None
    return -zlib.MAX_WBITS, at + 2


def _hopeless(data: bytes, start: tuple[int, int]) -> bool:
    """Whether raw deflate data is wrong from its first block's header on, seen without zlib
    (half of the headers random bytes hold): a reserved block type, or a stored block whose
    length and its complement disagree. Neither gives a byte."""
    wbits, at = start
    if wbits != -zlib.MAX_WBITS or at >= len(data):
        return False
    kind = data[at] >> 1 & 3
    if kind == 3:
        return True
    if kind == 0 and at + 5 <= len(data):
        length, complement = struct.unpack_from("<HH", data, at + 1)
        return length ^ complement != 0xFFFF
    return False


class Finder:
    """The streams in one file, fed as it is read (``feed`` the new bytes of each chunk, then
    ``end``): ``Part``s of what they hold, and a ``Part`` with a ``limit`` when a budget ran out
    (reported once; nothing more is tried then). The first ``skip`` bytes start no stream
    (``packed`` already opens a file by its first bytes). ``entries`` False: zip entries are not
    looked for (the file is a zip archive, whose entries ``packed`` reads).

    ``nesting`` is how many levels of streams are read from here; at 0 a stream is only looked
    for: one that gives anything scannable means the file nests deeper than is read, a limit.
    ``outside``, when set, says which file offsets a header is looked for at (a PNG's image data
    is read joined, by another finder sharing this one's ``spend``)."""

    # A zip header's fields take 30 bytes: that much of each feed is held back and searched with
    # the next (a header cut by a chunk's end is found whole).
    _HOLD = 30

    def __init__(self, budget: Budget, *, skip: int = 1, nesting: int = MAX_NESTING,
                 spend: _Spend | None = None, outer: bool | None = None) -> None:
        self.spend = _Spend(budget) if spend is None else spend
        # The finder that reports a limit (those a stream's output is searched by share its spend).
        self.outer = spend is None if outer is None else outer
        self.skip = skip
        self.nesting = nesting
        self.entries = True
        self.outside: Callable[[int], bool] | None = None
        self.live: list[_Stream] = []
        self.held = b""
        self.base = 0  # the file offset of held's first byte

    def feed(self, data: bytes) -> Iterator[Part]:
        self.spend.read += len(data)
        view = memoryview(data)
        for stream in self.live:
            self._run(stream, view)
        yield from self._finished()
        window = self.held + data
        yield from self._search(window, len(window) - self._HOLD)
        keep = min(len(window), self._HOLD)
        self.base += len(window) - keep
        self.held = window[len(window) - keep:]
        yield from self._limit()

    def end(self) -> Iterator[Part]:
        """The held bytes' headers, and the streams the file ended inside (what they gave)."""
        window, self.held = self.held, b""
        yield from self._search(window, len(window))
        for stream in self.live:
            stream.done = True
        yield from self._finished()
        yield from self._limit()

    def _search(self, window: bytes, last: int) -> Iterator[Part]:
        """Try each header that starts before ``last`` in ``window``."""
        for match in _CANDIDATE.finditer(window):
            at = match.start()
            if at >= last or self.spend.limit is not None:
                break
            if self.base + at < self.skip or (not self.entries and match.group() == b"PK\x03\x04"):
                continue
            if self.outside is not None and not self.outside(self.base + at):
                continue
            if not self.spend.may_try():  # every header counts, the cheapest too: each costs a step here
                break
            start = _start(window, at)
            if start is None or _hopeless(window, start):
                continue
            stream = _Stream(start[0])
            stream.ahead = max(start[1] - len(window), 0)
            self.live.append(stream)
            self._run(stream, memoryview(window)[start[1]:])
            yield from self._finished()

    def _run(self, stream: _Stream, data: memoryview) -> None:
        """Feed a stream, its output counted as it comes (many streams can be open at once)."""
        limit = MIN_OUTPUT - stream.size if self.nesting <= 0 else self.spend.left()
        self.spend.take(stream.feed(data, max(limit, 0)))
        if stream.over and self.nesting > 0:
            self.spend.over()

    def _finished(self) -> Iterator[Part]:
        still: list[_Stream] = []
        done: list[_Stream] = []
        for stream in self.live:
            (done if stream.done else still).append(stream)
        self.live = still
        for stream in done:
            if stream.size < MIN_OUTPUT or self.spend.limit is not None:
                continue
            if self.nesting <= 0:
                self.spend.limit = f"it holds compressed streams nested more than {MAX_NESTING} deep"
                return
            data, stream.parts = b"".join(stream.parts), []
            yield Part(None, data)
            yield from self._inside(data)

    def _inside(self, data: bytes) -> Iterator[Part]:
        """What a stream's output holds in its turn: a compressed file or an archive it is, and
        streams inside it (one level less)."""
        opened = packed.looks_packed(data[:1024])
        if opened:
            for part in packed.unpack(data, budget=self.spend.left()):
                if part.limit is None:
                    self.spend.take(len(part.data))
                yield part
        inner = Finder(self.spend.push, skip=int(opened), nesting=self.nesting - 1, spend=self.spend)
        yield from inner.feed(data)
        yield from inner.end()

    def _limit(self) -> Iterator[Part]:
        if self.outer and self.spend.limit is not None and not self.spend.reported:
            self.spend.reported = True
            self.live = []
            yield Part(limit=self.spend.limit)


def streams_in(data: bytes, budget: Budget, *, skip: int = 1) -> Iterator[Part]:
    """``Finder`` over bytes held whole."""
    finder = Finder(budget, skip=skip)
    yield from finder.feed(data)
    yield from finder.end()


def streams_in_each(sources: Iterable[bytes], budget: Budget) -> Iterator[Part]:
    """The streams in each of ``sources`` (bytes held whole, read apart: a stream does not run
    from one into the next), from their first byte on, on one budget as one file's: the many
    runs of one text (a message's base64) are no way around it. A limit is reported once."""
    spend = _Spend(budget)
    for data in sources:
        if _CANDIDATE.search(data) is None:
            continue  # most texts hold no header at all: nothing to set up for them
        finder = Finder(budget, skip=0, spend=spend, outer=True)
        yield from finder.feed(data)
        yield from finder.end()
        if spend.limit is not None:
            return


# ------------------------------------------------------------------------------ split streams

# A PNG's image is one zlib stream cut into IDAT chunks (libpng: 8 KiB each), and an animated
# PNG's other frames are more, in fdAT chunks: between two pieces lie the chunks' checksums and
# headers, where a stream found by its header goes astray. A PNG's image data is read joined, as
# its reader reads it (each frame after the first starts with a header of its own), and only
# the bytes around it are searched as the file's own.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IMAGE_KINDS = (b"IDAT", b"fdAT")


class PngLayout:
    """A PNG's chunks as it is read: ``feed`` the new bytes of each chunk of the file, get the
    image data among them (IDAT's, and fdAT's without their sequence numbers);
    ``outside(offset)`` says whether a file offset read so far lies outside that data."""

    def __init__(self) -> None:
        self.at = len(PNG_SIGNATURE)  # the file offset of the next chunk's header
        self.read = 0
        self.tail = b""  # the last bytes read: a header cut by a feed's end
        self.starts: list[int] = []  # image data spans: their start offsets, ascending...
        self.ends: list[int] = []  # ...their end offsets...
        self._kinds: list[bytes] = []  # ...and their chunks' kind

    def feed(self, new: bytes) -> tuple[bytes, bytes]:
        """The IDAT data and the fdAT data among ``new``, in file order."""
        buffer = self.tail + new
        base, first = self.read - len(self.tail), self.read
        self.read += len(new)
        while self.at + 8 <= self.read:
            length, kind = struct.unpack_from(">I4s", buffer, self.at - base)
            if kind in _IMAGE_KINDS:
                self.starts.append(self.at + 8 + (4 if kind == b"fdAT" else 0))
                self.ends.append(self.at + 8 + length)
                self._kinds.append(kind)
            self.at += 12 + length
        self.tail = buffer[-7:]
        found: dict[bytes, list[bytes]] = {kind: [] for kind in _IMAGE_KINDS}
        for index in range(bisect.bisect_right(self.ends, first), len(self.starts)):
            low, high = max(self.starts[index], first), min(self.ends[index], self.read)
            if low < high:
                found[self._kinds[index]].append(new[low - first:high - first])
        return b"".join(found[b"IDAT"]), b"".join(found[b"fdAT"])

    def outside(self, offset: int) -> bool:
        index = bisect.bisect_right(self.starts, offset) - 1
        return index < 0 or offset >= self.ends[index]


# ------------------------------------------------------------------------------ reading what came out

# What an inflated stream is read as. Image rows, a font's tables, a pack's deltas: most of what
# such streams hold is no text, and reading all of it as Latin-1 (as a binary file is read) cost
# more than the rest of a push's scan together (a PNG inflates to 20 to 40 times its size). A
# secret the scan knows is text: a run of characters, MIN_OUTPUT or more in a row, in UTF-8 (ASCII
# among it) or stored wide (UTF-16, UTF-32). Each such run is read, on a line of its own.
# Each byte as its class: "c" an ASCII character (tab, line breaks, printable), "z" a NUL, "x"
# anything else. Runs are found in the classes with ``find`` (a regex over the bytes took longer
# than all the inflating).
_CLASSES = bytes(ord("c") if 0x20 <= b <= 0x7E or b in (9, 10, 13) else ord("z") if b == 0 else ord("x")
                 for b in range(256))
# The same for UTF-8 text, one class per character: the bytes decoded (each byte that is no
# UTF-8 a U+FFFD, made a NUL), then encoded as Latin-1 with "?" for what it cannot hold. A letter
# of Latin-1 (U+00A0..U+00FF) and any character past it (Cyrillic, CJK, fullwidth forms, which
# the engine folds to ASCII) are text, the C1 controls are not.
_UTF8_CLASSES = bytes(ord("c") if 0x20 <= b <= 0x7E or b in (9, 10, 13) or b >= 0xA0 else ord("x")
                      for b in range(256))
_RUN_START = b"c" * MIN_OUTPUT
_RUN_END = re.compile(b"[^c]")
# The same for wide text, whose line breaks and tabs are "x": runs of them are common in image
# rows (a pixel of 0A 00 00 00), and a secret is seven printable characters in a row at least.
_WIDE_CLASSES = bytes(ord("c") if 0x20 <= b <= 0x7E else ord("z") if b == 0 else ord("x") for b in range(256))
# A big-endian run is a little-endian one a byte later, less its last character.
_WIDE_SHAPES = (b"cz" * (MIN_OUTPUT - 1), b"czzz" * (MIN_OUTPUT - 1))


def text_runs(data: bytes) -> tuple[str, bool]:
    """The runs of text in ``data`` (UTF-8, ASCII among it), one a line; and whether ``data``
    may also hold such a run stored as UTF-16 or UTF-32, in either byte order (then
    ``wide.wide_text`` reads it: it costs more than the rest, and most inflated bytes hold none)."""
    if data.isascii():
        runs = _runs(data.decode("ascii"), data.translate(_CLASSES))
    elif (whole := _utf8(data)) is not None:
        runs = _utf8_runs(whole)
    else:
        runs = []
        for start, stop, multibyte in _text_spans(data):
            if multibyte:
                runs += _utf8_runs(data[start:stop].decode("utf-8", "replace"))
            else:
                runs.append(data[start:stop].decode("ascii"))
    wide_classes = data.translate(_WIDE_CLASSES) if b"\x00" in data else b""
    return "\n".join(runs), any(shape in wide_classes for shape in _WIDE_SHAPES)


def _runs(text: str, classes: bytes) -> list[str]:
    """The runs of ``MIN_OUTPUT`` or more characters of class "c" in ``text``."""
    runs: list[str] = []
    at = classes.find(_RUN_START)
    while at != -1:
        end = _RUN_END.search(classes, at + MIN_OUTPUT)
        stop = len(classes) if end is None else end.start()
        runs.append(text[at:stop])
        at = classes.find(_RUN_START, stop)
    return runs


def _utf8(data: bytes) -> str | None:
    """``data`` decoded when it is UTF-8 throughout, else None (most bytes that are no text fail
    within a few bytes). A character cut by the chunk's start or end is no error here (what
    streams inflate to is read in chunks): its bytes read as U+FFFD, as they would anyway."""
    lead = 0
    while lead < min(3, len(data)) and 0x80 <= data[lead] <= 0xBF:
        lead += 1
    try:
        text, used = codecs.utf_8_decode(data[lead:] if lead else data, "strict", False)
    except UnicodeDecodeError:
        return None
    if lead == 0 and used == len(data):
        return text
    return "\ufffd" * lead + text + data[lead + used:].decode("utf-8", "replace")


def _utf8_runs(decoded: str) -> list[str]:
    """The runs of UTF-8 text in bytes ``decoded`` (each byte that was no UTF-8 a U+FFFD, no text)."""
    text = decoded.replace("\ufffd", "\x00")
    return _runs(text, text.encode("latin-1", "replace").translate(_UTF8_CLASSES))


# Decoding all of data that is not text (image rows, random bytes) as UTF-8 cost four times what
# finding its ASCII runs did, and almost none of it is text: only spans that may hold a run are
# decoded. Each byte as its class ("a" ASCII text, "k" a continuation byte, "2" "3" "4" the lead
# of a sequence that long, "x" anything else); each complete sequence becomes "m"s (a lead and its
# continuations; not checked further: the span is decoded); then a span is a stretch of "a"s and
# "m"s. A run of text lies in one span (the bytes around it are no text in any reading), and a
# span shorter than MIN_OUTPUT bytes holds none.
_SPAN_CLASSES = bytes(ord("a") if 0x20 <= b <= 0x7E or b in (9, 10, 13) else ord("k") if 0x80 <= b <= 0xBF
                      else ord("2") if 0xC2 <= b <= 0xDF else ord("3") if 0xE0 <= b <= 0xEF
                      else ord("4") if 0xF0 <= b <= 0xF4 else ord("x") for b in range(256))
_SEQUENCES = ((b"4kkk", b"mmmm"), (b"3kk", b"mmm"), (b"2k", b"mm"))
_SPAN_OF = bytes.maketrans(b"amk234x", b"tt.....")  # "." ends a span
_SPAN_START = b"t" * MIN_OUTPUT


def _text_spans(data: bytes) -> Iterator[tuple[int, int, bool]]:
    """``(start, stop, holds a multi-byte sequence)`` of each span of ``data`` that may hold a
    run of text (``_SPAN_CLASSES``), in order."""
    classes = data.translate(_SPAN_CLASSES)
    for sequence, marks in _SEQUENCES:
        classes = classes.replace(sequence, marks)
    spans = classes.translate(_SPAN_OF)
    at = spans.find(_SPAN_START)
    while at != -1:
        stop = spans.find(b".", at + MIN_OUTPUT)
        stop = len(spans) if stop == -1 else stop
        yield at, stop, classes.find(b"m", at, stop) != -1
        at = spans.find(_SPAN_START, stop)


def stream_texts(data: bytes) -> list[str]:
    """The texts what a stream inflated to is read as: its runs of text (``text_runs``), and
    those stored wide when it may hold any."""
    runs, wide_too = text_runs(data)
    views = [runs, wide.wide_text(data)] if wide_too else [runs]
    return [view for view in views if view]
