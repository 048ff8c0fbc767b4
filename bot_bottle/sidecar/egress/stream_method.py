"""The form-body ``_method`` rule (``core.body_method_problem``) for a body that is streamed.

A large upload is forwarded while it arrives (``dlp_adapter.stream_scan``), so the buffered check,
which reads the whole body, never sees it. ``watch`` says whether a streamed body needs the rule
(a form, on a ``matches`` entry that restricts ``methods``); ``feed`` then reads each chunk before
it goes on and reports the first ``_method`` field asking for a method the entry does not allow,
so the caller can stop the upload before its end. Little is carried between chunks (the head
of the unfinished urlencoded field, or the last bytes read and the value so far of a multipart
part), a few kilobytes at most, so a field cut by a chunk boundary is still read whole.

The reading agrees with the buffered check:

- urlencoded: fields split on ``&`` only (as ``parse_qsl`` does), each field judged with the very
  same ``core.urlencoded_methods``. A field is kept up to ``FIELD_CAP`` bytes; past that, a field
  named ``_method`` is refused (its value is longer than any method), and a name longer than the
  cap is refused only while what was kept of it is whitespace around a beginning of ``_method``;
- multipart: a state machine that finds exactly what ``core._MULTIPART_METHOD`` finds (a
  ``Content-Disposition`` line naming ``_method``, header lines, a blank line, the value's line),
  token by token, so no line has to be held whole. A value longer than ``VALUE_CAP`` is refused.

Those two caps refuse only bodies no framework's method override produces; the buffered check
might let such a body through if its field, whitespace stripped, named an allowed method.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from bot_bottle.sidecar.egress.core import (
    FORM_MULTIPART,
    FORM_URLENCODED,
    METHOD_OVERRIDE_PARAM,
    Verdict,
    body_methods,
    form_kind,
    method_allowed,
    urlencoded_methods,
)

FIELD_CAP = 4096
VALUE_CAP = 1024

# Multipart phases, as the buffered pattern advances: looking for a ``Content-Disposition`` line
# naming ``_method``; the rest of that line; the part's other header lines; the value's line.
SEARCH, DISPOSITION, HEADERS, VALUE = "search", "disposition", "headers", "value"

_DISPOSITION = re.compile(rb"content-disposition:", re.I)
# After it on the same line: the line ends, or the field name (``\bname="?_method``).
_NAME_OR_EOL = re.compile(rb'[\r\n]|(?<![A-Za-z0-9_])name="?_method', re.I)
_EOL = re.compile(rb"\r\n?|\n")
_VALUE_END = re.compile(rb"[\r\n]")
# Longest token (``content-disposition:``), so one cut by a chunk boundary is found in the next
# window, and the byte before a ``name=`` token, whose word boundary depends on it.
_LOOKBACK = 20
# A urlencoded field whose raw name holds ``_method``, each letter literal or percent-encoded
# (the only ways a name decodes to it): other fields are skipped without being decoded.
_URLENCODED_CANDIDATE = re.compile(
    rb"(?<![^&])[^&=]*?(?:_|%5f)(?:m|%[46]d)(?:e|%[46]5)(?:t|%[57]4)(?:h|%[46]8)(?:o|%[46]f)(?:d|%[46]4)", re.I)


@dataclass
class FormMethodState:
    """What ``feed`` carries from one chunk of one body to the next."""

    kind: str  # core.FORM_URLENCODED or core.FORM_MULTIPART
    allowed: tuple[str, ...]
    refused: bool = False
    # urlencoded: the head of the field still arriving, and whether it was longer than kept.
    field_head: bytearray = field(default_factory=bytearray)
    field_long: bool = False
    # multipart: the last bytes of the previous window (``base`` is the body offset of its first
    # byte); everything before ``done`` was read; the last token ended at ``floor``.
    carry: bytes = b""
    base: int = 0
    done: int = 0
    floor: int = 0
    phase: str = SEARCH
    disposition_seen: bool = False  # SEARCH: the current line has a Content-Disposition
    line_start: int = 0  # HEADERS: where the current line began (a blank line ends the headers)
    value: bytearray = field(default_factory=bytearray)
    value_from: int = 0  # VALUE: the body offset the next value byte comes from


def watch(verdict: Verdict, content_type: str) -> FormMethodState | None:
    """The state for a streamed body that needs the rule, or None (not a form, or the entry
    restricts no methods): the caller then skips it at no cost per chunk."""
    allowed = body_methods(verdict)
    kind = form_kind(content_type) if allowed else None
    if kind is None:
        return None
    return FormMethodState(kind, allowed)


def feed(state: FormMethodState, data: bytes, *, final: bool = False) -> bool:
    """Read the next chunk of the body (``final``: the body ended after it; ``data`` may be
    empty). True once a ``_method`` field asks for a method ``state.allowed`` does not hold."""
    if state.refused:
        return True
    if state.kind == FORM_URLENCODED:
        state.refused = _urlencoded(state, data, final)
    elif state.kind == FORM_MULTIPART:
        state.refused = _multipart(state, data, final)
    return state.refused


# -- urlencoded ------------------------------------------------------------------------------------


def _urlencoded(state: FormMethodState, data: bytes, final: bool) -> bool:
    first = data.find(b"&")
    if first < 0:
        _extend_field(state, data, 0, len(data))
    else:
        _extend_field(state, data, 0, first)
        if _field_refused(bytes(state.field_head), state.field_long, state.allowed):
            return True
        last = data.rfind(b"&")
        pos = first + 1
        while pos <= last:
            found = _URLENCODED_CANDIDATE.search(data, pos, last)
            if found is None:
                break
            start = found.start()
            end = data.find(b"&", found.end(), last)
            end = last if end < 0 else end
            if _field_refused(data[start:min(end, start + FIELD_CAP)], end - start > FIELD_CAP, state.allowed):
                return True
            pos = end + 1
        state.field_head = bytearray()
        state.field_long = False
        _extend_field(state, data, last + 1, len(data))
    if final and (state.field_head or state.field_long):
        return _field_refused(bytes(state.field_head), state.field_long, state.allowed)
    return False


def _extend_field(state: FormMethodState, data: bytes, start: int, end: int) -> None:
    room = FIELD_CAP - len(state.field_head)
    if end - start > room:
        state.field_long = True
        end = start + max(room, 0)
    if end > start:
        state.field_head += data[start:end]


def _field_refused(head: bytes, long: bool, allowed: tuple[str, ...]) -> bool:
    """One field (no ``&``): ``head`` is all of it unless ``long``, then its first bytes."""
    if not long:
        if b"_" not in head and b"%5" not in head:
            return False  # no name decodes to _method without "_" or "%5F": skip the decoding
        return not all(method_allowed(v, allowed) for v in urlencoded_methods(head.decode("latin-1")))
    eq = head.find(b"=")
    if eq >= 0:
        # The name is whole; a value this long is no method.
        return bool(urlencoded_methods(head[:eq + 1].decode("latin-1")))
    # Only the name's head is here: refuse while the rest could still make it _method, which
    # takes whitespace padding past the cap (an escape cut at the cap is left out, not guessed).
    if head.endswith(b"%"):
        head = head[:-1]
    elif head[-2:-1] == b"%":
        head = head[:-2]
    names = [k for k, _ in parse_qsl(head.decode("latin-1"), keep_blank_values=True)]
    kept = names[0].lstrip().lower().rstrip("\ufffd") if names else ""
    size = len(METHOD_OVERRIDE_PARAM)
    return METHOD_OVERRIDE_PARAM.startswith(kept[:size]) and not kept[size:].strip()


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
                state.phase = DISPOSITION
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
