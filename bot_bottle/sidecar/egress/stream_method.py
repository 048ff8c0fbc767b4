"""The form-body ``_method`` rule (``core.body_method_problem``) for a body that is streamed.

A large upload is forwarded while it arrives (``dlp_adapter.stream_scan``), so the buffered check,
which reads the whole body, never sees it. ``watch`` says whether a streamed body needs the rule
(a form, on a ``matches`` entry that restricts ``methods``); ``feed`` then reads each chunk before
it goes on and reports the first ``_method`` field asking for a method the entry does not allow,
so the caller can stop the upload before its end. Little is carried between chunks (the heads
of the unfinished urlencoded fields, or the last bytes read and the value so far of a multipart
part), a few kilobytes at most, so a field cut by a chunk boundary is still read whole.

The reading agrees with the buffered check:

- urlencoded: the body is read twice over, as the buffered check reads it: fields split on
  ``&`` only (as ``parse_qsl`` does), and fields split on ``&`` or ``;``. Each field is judged
  with the very same ``core.override_values`` (so ``core.is_override_name``: ``.method`` and
  the like too). A field is kept up to ``FIELD_CAP`` bytes; past that, a field whose name is
  the override is refused (its value is longer than any method), and a name longer than the
  cap is refused only while what was kept of it could still become the override (whitespace
  around a beginning of it, or cut by a NUL);
- multipart: a state machine that finds exactly what ``core._MULTIPART_METHOD`` finds (a
  ``Content-Disposition`` line naming ``_method``, however spelt: ``name*=UTF-8''%5Fmethod``,
  ``name="\\_method"``, ``name = "%5Fmethod"``, a ``name*0`` continuation; header lines, a blank
  line, the value's line), token by token, so no line has to be held whole (the blanks before
  the name are skipped, however many; an RFC 2231 charset'language' prefix is at most 82 bytes,
  the name's first characters 21). A value longer than ``VALUE_CAP`` is refused.

Those two caps refuse only bodies no framework's method override produces; the buffered check
might let such a body through if its field, whitespace stripped, named an allowed method.

A body sent with a ``Content-Encoding`` is read decoded, as an upstream that inflates request
bodies reads it (Apache's ``mod_deflate`` input filter, Echo's ``Decompress`` middleware, Rack
middleware that inflates requests) and as the buffered check reads it: gzip and deflate are
inflated on the way (``decoded``), in bounded pieces as the DLP stream scan inflates them and
within the same bound of what they inflate to (a bomb raises ``zlib.error``); a body in another
coding is not streamed when a check reads it (``reads_through``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from bot_bottle.sidecar.dlp.stream import Inflow
from bot_bottle.sidecar.egress.core import (
    FORM_MULTIPART,
    FORM_URLENCODED,
    METHOD_OVERRIDE_PARAM,
    MULTIPART_ATTRIBUTE_CHARS,
    MULTIPART_BLANK,
    MULTIPART_EXTENDED_PREFIX,
    MULTIPART_FIRST,
    MULTIPART_METHOD_WORD,
    PHP_NAME_MANGLING,
    URLENCODED_OVERRIDE_MARK,
    Verdict,
    body_methods,
    form_kind,
    is_override_name,
    json_kind,
    json_override_scan,
    method_allowed,
    override_values,
)

FIELD_CAP = 4096
VALUE_CAP = 1024
# Content-Encodings a streamed body's fields are read through, inflated chunk by chunk (the
# ones the DLP stream scan inflates). brotli and zstandard cannot bound what one call inflates.
INFLATED_ON_THE_WAY = ("gzip", "x-gzip", "deflate")
# The most inflated bytes handed to the checks at a time: a small chunk may inflate to gigabytes.
INFLATE_PIECE = 256 * 1024
# How many times the DLP stream scan's floor (``Inflow.FLOOR``) a body decoded for the checks may
# inflate to before its ratio counts.
DECODER_FLOOR_TIMES = 2

# Multipart phases, as the buffered pattern advances: looking for a ``Content-Disposition`` line
# naming ``_method``; what follows a ``name=`` on it; the rest of that line; the part's other
# header lines; the value's line.
SEARCH, NAME, DISPOSITION, HEADERS, VALUE = "search", "name", "disposition", "headers", "value"

_DISPOSITION = re.compile(rb"content-disposition:", re.I)
# After it on the same line: the line ends, or a parameter named ``name`` starts (``\bname``,
# then what may follow it there, or the window's end: the next chunk tells).
_NAME_OR_EOL = re.compile(rb"[\r\n]|(?<![A-Za-z0-9_])name(?=[*= \t]|\Z)", re.I)
_PARAM_BLANKS = re.compile(rb"[ \t]*")
_NAME_BLANKS = re.compile(MULTIPART_BLANK + b"*", re.I)
_NAME_BLANK = re.compile(MULTIPART_BLANK, re.I)
# What a blank spelt with more than one byte may be cut to by the window's end.
_NAME_BLANK_HEADS = (b"\\", b"%", b"%2", b"%0")
# The name, past its quote and blanks: "_method" with its first character as PHP may rewrite it,
# or "method" right after a space (the pattern's ``BLANK*FIRST`` with FIRST a space), each
# character spelt as ``core.MULTIPART_METHOD_WORD`` allows.
_NAME_OVERRIDE = re.compile(MULTIPART_FIRST + MULTIPART_METHOD_WORD, re.I)
_NAME_OVERRIDE_AFTER_SPACE = re.compile(MULTIPART_METHOD_WORD, re.I)
_EXTENDED_PREFIX = re.compile(MULTIPART_EXTENDED_PREFIX)
_EXTENDED_PREFIX_HEAD = re.compile(MULTIPART_ATTRIBUTE_CHARS + rb"{0,40}(?:'" + MULTIPART_ATTRIBUTE_CHARS + rb"{0,40})?")
# The most bytes the name's first characters take (each character up to three): what is read
# ahead before deciding (a charset'language' prefix, up to 82 bytes, is waited for while it may be one).
_NAME_TOKEN = 3 * len(METHOD_OVERRIDE_PARAM)
_EOL = re.compile(rb"\r\n?|\n")
_VALUE_END = re.compile(rb"[\r\n]")
# Longest token (``content-disposition:``), so one cut by a chunk boundary is found in the next
# window, and the byte before a ``name`` token, whose word boundary depends on it.
_LOOKBACK = 20
# What no field holding that mark lacks (one of its first characters), for a quick skip of a field.
_OVERRIDE_MARK_BYTE = re.compile(rb"[_.\[+ ]|%[25]")


@dataclass
class FieldReader:
    """One reading of a urlencoded body: the fields its ``separators`` split, and the head of
    the field still arriving (``long``: it was longer than kept)."""

    separators: tuple[bytes, ...]
    head: bytearray = field(default_factory=bytearray)
    long: bool = False

    def find(self, data: bytes, start: int = 0, end: int | None = None) -> int:
        """The first separator in ``data[start:end]``, or -1 (bytes.find is memchr, far cheaper
        than a regex over a large chunk)."""
        found = [i for i in (data.find(sep, start, end) for sep in self.separators) if i >= 0]
        return min(found) if found else -1

    def rfind(self, data: bytes, start: int = 0, end: int | None = None) -> int:
        return max(data.rfind(sep, start, end) for sep in self.separators)


# Bytes kept from the end of one chunk for the next, when no key is pending: a mark cut by the
# chunk boundary, with its name's opening quote before it.
JSON_KEEP = 2 * 96 + 16


@dataclass
class JsonReader:
    """The streamed reading of a JSON body's ``_method`` keys (``core.json_override_values``):
    any depth, since a stream cannot tell the top level (stricter than the buffered check)."""

    carry: bytes = b""  # the end of the body so far: a key still arriving, or ``JSON_KEEP`` bytes
    done: int = 0  # offset in ``carry`` up to which marks were judged


@dataclass
class FormMethodState:
    """What ``feed`` carries from one chunk of one body to the next."""

    kind: str | None  # core.FORM_URLENCODED, core.FORM_MULTIPART, or None (JSON only)
    allowed: tuple[str, ...]
    json: JsonReader | None = None  # Laravel reads a JSON body's ``_method`` too
    refused: bool = False
    # urlencoded: the field still arriving under each reading (``&`` only; ``&`` or ``;``).
    fields: tuple[FieldReader, ...] = field(default_factory=lambda: (FieldReader((b"&",)), FieldReader((b"&", b";"))))
    # multipart: the last bytes of the previous window (``base`` is the body offset of its first
    # byte); everything before ``done`` was read; the last token ended at ``floor``.
    carry: bytes = b""
    base: int = 0
    done: int = 0
    floor: int = 0
    phase: str = SEARCH
    disposition_seen: bool = False  # SEARCH: the current line has a Content-Disposition
    name_step: str = "star"  # NAME: which part of ``name*=" charset'lang' _method`` comes next
    name_space: bool = False  # NAME: the last blank skipped was a space
    line_start: int = 0  # HEADERS: where the current line began (a blank line ends the headers)
    value: bytearray = field(default_factory=bytearray)
    value_from: int = 0  # VALUE: the body offset the next value byte comes from


def watch(verdict: Verdict, content_type: str) -> FormMethodState | None:
    """The state for a streamed body that needs the rule, or None (not a form, or the entry
    restricts no methods): the caller then skips it at no cost per chunk."""
    allowed = body_methods(verdict)
    if not allowed:
        return None
    kind = form_kind(content_type)
    reader = JsonReader() if json_kind(content_type) else None
    if kind is None and reader is None:
        return None
    return FormMethodState(kind, allowed, reader)


def feed(state: FormMethodState, data: bytes, *, final: bool = False) -> bool:
    """Read the next chunk of the body (``final``: the body ended after it; ``data`` may be
    empty). True once a ``_method`` field asks for a method ``state.allowed`` does not hold."""
    if state.refused:
        return True
    if state.kind == FORM_URLENCODED:
        state.refused = _urlencoded(state, data, final)
    elif state.kind == FORM_MULTIPART:
        state.refused = _multipart(state, data, final)
    if state.json is not None and not state.refused:
        state.refused = _json(state.json, data, final, state.allowed)
    return state.refused


# -- a body sent with a Content-Encoding ----------------------------------------------------------


def reads_through(content_encoding: str) -> bool:
    """Whether a streamed body in ``content_encoding`` (every header line's, joined) can be read
    decoded on the way: sent as it is, gzip, or deflate."""
    return content_encoding.strip().lower() in ("", "identity", *INFLATED_ON_THE_WAY)


def body_decoder(content_encoding: str) -> Inflow | None:
    """What inflates a streamed body in ``content_encoding`` for ``decoded`` (None: sent as it is).
    Only for one ``reads_through`` accepts."""
    coding = content_encoding.strip().lower()
    if coding not in INFLATED_ON_THE_WAY:
        return None
    # Bounded as the DLP stream scan bounds the same body, with more room: where both read it,
    # the scan stops a bomb first, as the scan-limit it is, not as a body that does not decode.
    return Inflow("deflate" if coding == "deflate" else "gzip", floor=DECODER_FLOOR_TIMES * Inflow.FLOOR)


def decoded(decoder: Inflow | None, data: bytes, *, final: bool) -> Iterator[bytes]:
    """The bytes the upstream's framework reads for the chunk ``data`` (``final``: the body's
    end), in pieces of at most ``INFLATE_PIECE`` for an inflated body. Raises ``zlib.error``
    when the body does not decode."""
    if decoder is None:
        if data:
            yield data
        return
    yield from decoder.inflate(data, INFLATE_PIECE)
    if final:
        rest = decoder.flush()
        if rest:
            yield rest


# -- JSON ------------------------------------------------------------------------------------------


def _json(reader: JsonReader, data: bytes, final: bool, allowed: tuple[str, ...]) -> bool:
    window = reader.carry + data
    values, resume, done = json_override_scan(window, final=final, done=reader.done)
    if any(not method_allowed(value, allowed) for value in values):
        return True
    if resume is not None:
        reader.carry, reader.done = window[resume:], done - resume
    else:
        keep = max(0, len(window) - JSON_KEEP)
        # A mark cut by the boundary is judged whole next time; one judged twice, the same way.
        reader.carry, reader.done = window[keep:], max(0, len(window) - keep - 8)
    return False


# -- urlencoded ------------------------------------------------------------------------------------


def _urlencoded(state: FormMethodState, data: bytes, final: bool) -> bool:
    return any(_read_fields(reader, data, final, state.allowed) for reader in state.fields)


def _read_fields(reader: FieldReader, data: bytes, final: bool, allowed: tuple[str, ...]) -> bool:
    first = reader.find(data)
    if first < 0:
        _extend_field(reader, data, 0, len(data))
    else:
        _extend_field(reader, data, 0, first)
        if _field_refused(bytes(reader.head), reader.long, allowed):
            return True
        last = reader.rfind(data)
        pos = first + 1  # always a field's start
        while pos <= last:
            found = URLENCODED_OVERRIDE_MARK.search(data, pos, last)
            if found is None:
                break
            # The whole field is judged, never a tail of it; a mark in its value is no name.
            start = max(reader.rfind(data, pos, found.start()) + 1, pos)
            end = reader.find(data, found.end(), last)
            end = last if end < 0 else end
            if data.find(b"=", start, found.start()) < 0 and _field_refused(
                    data[start:min(end, start + FIELD_CAP)], end - start > FIELD_CAP, allowed):
                return True
            pos = end + 1
        reader.head = bytearray()
        reader.long = False
        _extend_field(reader, data, last + 1, len(data))
    if final and (reader.head or reader.long):
        return _field_refused(bytes(reader.head), reader.long, allowed)
    return False


def _extend_field(reader: FieldReader, data: bytes, start: int, end: int) -> None:
    room = FIELD_CAP - len(reader.head)
    if end - start > room:
        reader.long = True
        end = start + max(room, 0)
    if end > start:
        reader.head += data[start:end]


def _field_refused(head: bytes, long: bool, allowed: tuple[str, ...]) -> bool:
    """One field (no separator of its reading): ``head`` is all of it unless ``long``, then its
    first bytes."""
    if not long:
        if _OVERRIDE_MARK_BYTE.search(head) is None:
            return False  # no name decodes to the override without one: skip the decoding
        return not all(method_allowed(v, allowed) for v in override_values(head.decode("latin-1")))
    eq = head.find(b"=")
    if eq >= 0:
        # The name is whole; a value this long is no method.
        return bool(override_values(head[:eq + 1].decode("latin-1")))
    # Only the name's head is here: refuse while the rest could still make it the override,
    # which takes whitespace padding past the cap, or a NUL that cuts the name where it was
    # kept (an escape cut at the cap is left out, not guessed).
    if head.endswith(b"%"):
        head = head[:-1]
    elif head[-2:-1] == b"%":
        head = head[:-2]
    names = [k for k, _ in parse_qsl(head.decode("latin-1"), keep_blank_values=True)]
    name = names[0] if names else ""
    if "\0" in name:
        return is_override_name(name)
    kept = name.lower().rstrip("\ufffd")
    size = len(METHOD_OVERRIDE_PARAM)
    # As is_override_name reads a name: stripped, or with its leading whitespace kept.
    return any(METHOD_OVERRIDE_PARAM.startswith(t[:size].translate(PHP_NAME_MANGLING)) and not t[size:].strip()
               for t in (kept.lstrip(), kept))


# -- multipart -------------------------------------------------------------------------------------


def _multipart(state: FormMethodState, data: bytes, final: bool) -> bool:
    window = state.carry + data
    base = state.base
    end = len(window)
    # A token found again must end after ``done`` (earlier ones were read with the earlier bytes).
    pos = max(state.floor - base, state.done - base - (_LOOKBACK - 1), 0)
    while True:
        phase = state.phase
        if phase == SEARCH and not state.disposition_seen:
            found = _DISPOSITION.search(window, pos)
            if found is None:
                break
            state.disposition_seen = True
        elif phase == SEARCH:
            found = _NAME_OR_EOL.search(window, pos)
            if found is None:
                break
            if found.end() - found.start() == 1:  # the line ended without naming _method
                state.disposition_seen = False
            else:
                state.phase, state.name_step, state.name_space = NAME, "star", False
        elif phase == NAME:
            stop = _name(state, window, pos, final)
            if stop is None:  # every byte was read (the name's blanks, say)
                pos = len(window)
                state.floor = base + pos
                break
            if state.phase == NAME:  # the name's first characters are still to come
                end = stop
                state.floor = base + stop
                break
            pos = stop
            state.floor = base + pos
            continue
        elif phase == VALUE:
            found = _VALUE_END.search(window, pos)
            if found is None:
                break
            _take_value(state, window, base, found.start())
            if _value_refused(state):
                return True
            state.phase, state.disposition_seen = SEARCH, False
        else:  # DISPOSITION, HEADERS: only line ends matter
            found = _EOL.search(window, pos)
            if found is None:
                break
            token = found.group()
            if token == b"\r" and found.end() == len(window) and not final:
                end = found.start()  # CR or CRLF: the next chunk tells
                break
            if token == b"\r":
                # A bare CR inside the part's headers: the buffered pattern does not match here.
                state.phase, state.disposition_seen = SEARCH, False
            elif phase == DISPOSITION:
                state.phase, state.line_start = HEADERS, base + found.end()
            elif base + found.start() == state.line_start:
                state.phase, state.value, state.value_from = VALUE, bytearray(), base + found.end()
            else:
                state.line_start = base + found.end()
        pos = found.end()
        state.floor = base + pos
    if state.phase == VALUE:
        _take_value(state, window, base, end)
        if final:
            return _value_refused(state)
    keep = max(0, end - _LOOKBACK)
    state.carry = window[keep:]
    state.base = base + keep
    state.done = base + end
    return False


def _name(state: FormMethodState, window: bytes, pos: int, final: bool) -> int | None:
    """Read on from ``pos`` after a ``name`` parameter's name, as ``core._MULTIPART_METHOD`` reads
    it: ``*`` and a digit (a continuation), or ``*`` and blanks, ``=``, blanks, a quote, then the
    name or a charset'language' prefix and the name. None: every byte was read (blanks, say), more
    may follow. Else the offset where the reading stops: the phase is DISPOSITION (the name is the
    override's), SEARCH (it is not: another ``name`` may follow on the line, even inside what was
    read, so the offset is never past one), or still NAME (too few bytes yet to tell)."""
    size = len(window)
    while True:
        step = state.name_step
        if step in ("star", "digit"):
            if pos == size and not final:
                return None
            byte = window[pos:pos + 1]
            if step == "star" and byte == b"*":
                state.name_step, pos = "digit", pos + 1
                continue
            if step == "digit" and byte.isdigit():
                state.phase = DISPOSITION
                return pos
            state.name_step = "eq"
        elif step in ("eq", "quote"):
            blanks = _PARAM_BLANKS.match(window, pos).end()
            if blanks > pos:
                state.name_space = window[blanks - 1] == 0x20
                pos = blanks
            if pos == size and not final:
                return None
            if step == "eq":
                if window[pos:pos + 1] != b"=":
                    state.phase = SEARCH
                    return pos
                state.name_step, state.name_space, pos = "quote", False, pos + 1
            else:
                if window[pos:pos + 1] == b'"':
                    state.name_space, pos = False, pos + 1
                state.name_step = "start"
        elif step == "start":
            # Blanks first: then no charset prefix can follow (it holds none).
            if _NAME_BLANK.match(window, pos):
                state.name_step = "blanks"
                continue
            if size - pos < _NAME_TOKEN and not final:
                return pos
            if _name_is_override(state, window, pos):
                return pos
            prefix = _EXTENDED_PREFIX.match(window, pos)
            if prefix is None and not final and _EXTENDED_PREFIX_HEAD.fullmatch(window, pos):
                return pos  # what came so far may still be a charset'language' prefix
            if prefix is None:
                state.phase = SEARCH
                return pos
            state.name_step, state.name_space, pos = "blanks", False, prefix.end()
        elif step == "blanks":
            blanks = _NAME_BLANKS.match(window, pos).end()
            if blanks > pos:
                # The last blank ends there: a space, an escaped one, or "%20".
                state.name_space = window[blanks - 1] in b" 0"
                pos = blanks
            if not final and (pos == size or (size - pos <= 2 and window[pos:] in _NAME_BLANK_HEADS)):
                return None if pos == size else pos
            state.name_step = "word"
        else:  # "word"
            if size - pos < _NAME_TOKEN and not final:
                return pos
            if not _name_is_override(state, window, pos):
                state.phase = SEARCH
            return pos


def _name_is_override(state: FormMethodState, window: bytes, pos: int) -> bool:
    if _NAME_OVERRIDE.match(window, pos) or (state.name_space and _NAME_OVERRIDE_AFTER_SPACE.match(window, pos)):
        state.phase = DISPOSITION
        return True
    return False


def _take_value(state: FormMethodState, window: bytes, base: int, stop: int) -> None:
    start = max(state.value_from - base, 0)
    room = VALUE_CAP + 1 - len(state.value)  # one byte more than kept tells "too long"
    if room > 0 and stop > start:
        state.value += window[start:min(stop, start + room)]
    state.value_from = base + stop


def _value_refused(state: FormMethodState) -> bool:
    if len(state.value) > VALUE_CAP:
        return True
    return not method_allowed(bytes(state.value).decode("latin-1"), state.allowed)
