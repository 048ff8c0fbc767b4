"""The string values of a JSON (or NDJSON) text and the values of a form, read without a parse.

A body too large to parse (past ``structured_limit``), or a file found inside a body, is scanned
as text: a token cut over two values ("ghp_R7b", "Xk2...") is then in no text whole. These
readers give the values in order, cheaply, for the adjacent-values check, and ``value_chunks``
joins them a window at a time so the check runs in bounded memory whatever the number of values.

Every reader is one forward pass: each character is looked at a bounded number of times, an
unterminated string ends the reading (the rest is one string the text scan reads), and nesting
does not matter (brackets are never matched, only strings are found).
"""

from __future__ import annotations

import itertools
import json
import operator
import re
from collections.abc import Iterable, Iterator
from json.decoder import scanstring
from urllib.parse import unquote_plus

# Characters of values joined and checked at a time: the cut offsets of a window of one-letter
# values stay a few megabytes.
WINDOW = 1024 * 1024
_BATCH = 4096  # values taken at a time
_BLANKS = " \t\r\n"  # between a key and its colon
# The rest of a string after its opening quote, to its closing quote: possessive, one pass.
_REST = re.compile(r'[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_COLON = re.compile(r"[ \t\r\n]*+:")
# Control characters inside strings, as a lenient receiver reads them.
_LENIENT = json.JSONDecoder(strict=False)


def lexed_json_values(text: str, window: int = WINDOW) -> Iterator[list[str]]:
    """The string values (not keys) of ``text``, a JSON text or several one after another, in
    order, escapes decoded (a string with a malformed escape as written), in batches: those of a
    stretch of about ``window`` characters at a time. Reading stops at an unterminated string.
    ``text`` is the body's bytes as latin-1 or as UTF-8 (no byte of a UTF-8 character is a quote).

    Split at the quotes (in C, the cost of a copy): outside a string, a quote opens one. A
    stretch that ends inside a string is read again from that string's opening quote, so each
    starts outside one; a string longer than a stretch is read to its end by one match."""
    position, size = 0, len(text)
    while position < size:
        end = text.find('"', position + window)
        if end < 0:
            end = size
        piece = text[position:end]
        parts = piece.split('"')
        escapes = "\\" in piece
        if '\\"' in piece:
            parts = _unescaped(parts)
        if len(parts) % 2:  # the stretch ends outside a string: every string in it is closed
            yield _values(parts, escapes)
            position = end
            continue
        # The stretch ends inside a string: it is read again from its opening quote.
        opening = end - len(parts[-1]) - 1
        if end == size:
            yield _values(parts[:-1], escapes)
            return  # unterminated: the rest is one string, which the text scan reads
        if opening <= position:
            # One string longer than the stretch: read to its closing quote in one pass.
            closed = _REST.match(text, position + 1)
            if closed is None:
                return  # unterminated
            position = closed.end()
            if _COLON.match(text, position) is None:
                yield _values(["", text[opening + 1 : position - 1], ""], escapes)
            continue
        yield _values(parts[:-1], escapes)
        position = opening


def _unescaped(parts: list[str]) -> list[str]:
    """``parts`` (a text split at its quotes) with each escaped quote (after an odd number of
    backslashes, inside a string) joined back into its string: outside and inside alternate."""
    out: list[str] = []
    pieces: list[str] = []
    for part in parts:
        pieces.append(part)
        if len(out) % 2 and (len(part) - len(part.rstrip("\\"))) % 2:
            continue  # inside a string, the quote after this part is escaped
        out.append('"'.join(pieces))
        pieces = []
    if pieces:
        out.append('"'.join(pieces))
    return out


def _values(parts: list[str], escapes: bool) -> list[str]:
    """The values among the strings of ``parts`` (odd places, the text after each at the next
    even place): a string followed by a colon is a key. Each test runs in C (``map``): a large
    body holds hundreds of thousands of strings."""
    after = map(str.lstrip, parts[2::2], itertools.repeat(_BLANKS))
    keys = map(str.startswith, after, itertools.repeat(":"))
    out = list(filter(None, itertools.compress(parts[1::2], map(operator.not_, keys))))
    if escapes and out:
        try:  # all at once, in C: a body may hold millions of escaped values
            return _LENIENT.decode('["' + '","'.join(out) + '"]')  # type: ignore[no-any-return]
        except ValueError:
            out = [_decoded(value) if "\\" in value else value for value in out]
    return out


def _decoded(value: str) -> str:
    try:
        return scanstring(value + '"', 0, False)[0]
    except ValueError:
        return value  # a malformed escape: as written


def lexed_form_values(text: str) -> Iterator[str]:
    """The values of ``text``, an ``application/x-www-form-urlencoded`` body, decoded (as
    ``parse_qsl`` does, latin-1: a character per byte), in order."""
    position, size = 0, len(text)
    while position <= size:
        end = text.find("&", position)
        if end < 0:
            end = size
        equals = text.find("=", position, end)
        if equals >= 0:
            value = text[equals + 1 : end]
            if "%" in value or "+" in value:
                value = unquote_plus(value, encoding="latin-1")
            yield value
        position = end + 1


def value_chunks(values: Iterable[str], size: int = WINDOW, *, reach: int) -> Iterator[tuple[str, list[int]]]:
    """``values`` (empty ones dropped) joined into texts of about ``size`` characters, each with
    the offsets where one value ends and the next starts. Each text after the first begins with
    the last ``reach`` characters of the one before (and their cuts): a value cut anywhere lies
    whole in some text, as long as it is shorter than ``reach``. Taken a batch at a time: the
    work per value is done in C."""
    it = iter(values)
    parts: list[str] = []
    cuts: list[int] = []
    length = 0
    fresh = False  # a value came since the last text given: the carried tail alone was checked
    while True:
        taken = list(itertools.islice(it, _BATCH))
        if not taken:
            break
        batch = [value for value in taken if value]
        if not batch:
            continue
        ends = list(itertools.accumulate(map(len, batch), initial=length))
        cuts += ends[:-1] if parts else ends[1:-1]
        parts += batch
        length = ends[-1]
        fresh = True
        if length >= size:
            joined = "".join(parts)
            if cuts:
                yield joined, cuts
            start = max(0, length - reach)
            parts = [joined[start:]]
            cuts = [cut - start for cut in cuts if cut > start]
            length -= start
            fresh = False
    if cuts and fresh:
        yield "".join(parts), cuts


# Of a value longer than this, an incremental reader keeps the first and the last this many
# characters (as sent, escapes and all): a cut over two values is within a token's or a secret's
# length of it, and an unterminated string of 60 MiB must not be held.
KEPT = 8 * 4096


class ValueLexer:
    """``lexed_json_values`` or ``lexed_form_values`` a piece at a time, for a body that streams:
    ``feed`` gives the values its text completes, ``pending`` those it has begun and not ended
    (a string still open, or closed and not yet known to be a key), as they read so far.

    What is carried from one piece to the next starts outside a string (at an opening quote, or
    at a form field's start) and holds at most ``2 * KEPT`` characters of a value: memory is
    bounded, each character is split on once plus the carry, whatever the body."""

    def __init__(self, kind: str, boundary: str = "") -> None:
        self.kind = kind  # "json" (NDJSON too), "form" or "multipart" (with its ``boundary``)
        self._carry = ""
        self._delimiter = "--" + boundary
        self._in_part = False  # multipart: past the first delimiter (the carry is a part's start)

    def feed(self, text: str) -> list[str]:
        if self.kind == "form":
            return self._feed_form(text)
        if self.kind == "multipart":
            return self._feed_multipart(text)
        return self._feed_json(text)

    def pending(self) -> list[str]:
        """The value being read, as far as it is (a key until shown otherwise is read as a value
        here: what is forwarded before its end must have been checked)."""
        carry = self._carry
        if not carry:
            return []
        if self.kind == "multipart":
            return [_part_value(carry)] if self._in_part else []
        if self.kind == "form":
            equals = carry.find("=")
            value = carry[equals + 1 :] if equals >= 0 else ""
            return [unquote_plus(value, encoding="latin-1")] if value else []
        body = carry[1:]
        closing = _REST.match(carry, 1)
        if closing is not None:
            body = carry[1 : closing.end() - 1]
        return [_decoded(body) if "\\" in body else body] if body else []

    def _feed_json(self, text: str) -> list[str]:
        buf = self._carry + text
        parts = buf.split('"')
        escapes = "\\" in buf
        if '\\"' in buf:
            parts = _unescaped(parts)
        if len(parts) % 2:  # ends outside a string
            if len(parts) >= 3 and not parts[-1].strip(_BLANKS):
                # The last string may yet be a key (its colon is in the next piece): held.
                self._carry = '"' + _bounded(parts[-2]) + '"'
                return _values(parts[:-2], escapes)
            self._carry = ""
            return _values(parts, escapes)
        # Ends inside a string: carried from its opening quote.
        self._carry = '"' + _bounded(parts[-1])
        return _values(parts[:-1], escapes)

    def _feed_form(self, text: str) -> list[str]:
        buf = self._carry + text
        last = buf.rfind("&")
        if last < 0:
            self._carry = _bounded(buf, form=True)
            return []
        self._carry = _bounded(buf[last + 1 :], form=True)
        return list(lexed_form_values(buf[:last]))


    def _feed_multipart(self, text: str) -> list[str]:
        """The content of each part the text ends (a file's too: only its ends meet a neighbour)."""
        pieces = (self._carry + text).split(self._delimiter)
        out = [_part_value(piece) for piece in pieces[0 if self._in_part else 1 : -1]]
        self._in_part = self._in_part or len(pieces) > 1
        self._carry = _bounded(pieces[-1])
        return out


def _part_value(piece: str) -> str:
    """A multipart part's content: after its headers, without the line break before the next delimiter."""
    start = piece.find("\r\n\r\n")
    if start < 0:
        return ""
    value = piece[start + 4 :]
    return value[:-2] if value.endswith("\r\n") else value


def _bounded(raw: str, *, form: bool = False) -> str:
    """``raw`` (a value as sent, or a form field) cut to its first and last ``KEPT`` characters
    when longer, at places that do not turn an escaped character into a plain one (the head
    does not end in a backslash, the tail does not start right after one) nor a ``%xx`` into
    something else (its characters are kept or dropped whole)."""
    if len(raw) <= 2 * KEPT + 8:
        return raw
    head = raw[:KEPT].rstrip("\\")
    start = len(raw) - KEPT
    run = start
    while run > 0 and raw[run - 1] == "\\":
        run -= 1
    start += (start - run) % 2  # after an odd run of backslashes a character is escaped
    if form and "%" in raw[start - 2 : start]:
        start += 2
    if form and "%" in head[-2:]:
        head = head[: head.rfind("%")]
    return head + raw[start:]
