"""Request bodies: undo Content-Encoding (with a bomb limit), and take JSON, form and multipart
bodies apart into the values a scanner looks at, and put them back together after redaction.

Decompression never produces more than ``limit`` bytes: gzip and deflate use zlib's
``max_length``; the ``brotli`` module has no output limit, so it is fed a few bytes at a time
(one brotli input byte can expand to several MB, so the feed is sized from the remaining
budget; that makes br several times slower than gzip, and br request bodies are rare). An
encoding that cannot be undone (unknown, corrupt, or ``br`` without the module) leaves the body
as sent, with ``error`` set: the scanner reports it as a ``scan-limit``, since what the upstream
reads is not what was scanned. With ``nested``, compression and archives found underneath by
their magic numbers are opened too (``archives``).

A redacted body goes back in the form it came in (``encode_like``): each gzip member (deflate
or br stream) compressed again with what the redaction left of it, bytes that followed the
compressed data after it again, so the upstream reads what was scanned, framed as the agent
framed it. A body that ends inside a compressed stream is not written again: it would leave as a
whole one, read as something the agent never sent.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import gzip
import json
import quopri
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, quote_plus

from bot_bottle.sidecar.dlp import archives
# The values of a body too large to parse, read without a parse (for the scanner).
from bot_bottle.sidecar.dlp.json_strings import lexed_form_values, lexed_json_values, value_chunks
from bot_bottle.sidecar.dlp.redact import MARKER_PATTERN

try:  # mitmproxy depends on Brotli, so the sidecar has it; elsewhere br bodies are scanned raw
    import brotli as _brotli  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - depends on the environment
    _brotli = None

GZIP_MAGIC = b"\x1f\x8b"
# A single brotli input byte has been seen to expand to 8 MiB; feed so one step cannot overshoot
# the limit by more than about that much.
_BROTLI_BYTE_EXPANSION = 8 * 1024 * 1024


class DecodeError(Exception):
    """The body does not decode as its Content-Encoding says (message names the encoding only)."""


@dataclass(frozen=True)
class DecodedBody:
    data: bytes
    encodings: tuple[str, ...] = ()  # the Content-Encodings removed, in the order applied
    truncated: bool = False  # decompressed size hit the limit: ``data`` is the first ``limit`` bytes
    error: str | None = None  # could not decode: ``data`` is the body as sent
    sniffed: bool = False  # gzip found by its magic number, without a Content-Encoding header
    # With ``nested``: compression undone beneath the above (found by magic number), what else
    # was inside (archive entries, the readable start of a corrupt stream), and why something
    # could not be read whole (each a scan-limit).
    inner: tuple[str, ...] = ()
    contents: tuple[bytes, ...] = ()
    limits: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.encodings)


def brotli_available() -> bool:
    return _brotli is not None


def decode_body(body: bytes, content_encoding: str | None, limit: int, *, nested: bool = False) -> DecodedBody:
    """Undo ``content_encoding`` (a header value such as ``"gzip"`` or ``"gzip, br"``); with
    ``nested`` also undeclared compression and archives beneath it, within the same ``limit``."""
    decoded = _decode_declared(body, content_encoding, limit)
    if not nested or decoded.error is not None or decoded.truncated:
        return decoded
    found = archives.expand(decoded.data, limit - len(decoded.data))
    if not (found.layers or found.contents or found.limits):
        return decoded
    return DecodedBody(found.data, decoded.encodings, found.truncated, None, decoded.sniffed, tuple(found.layers),
                       tuple(found.contents), tuple(found.limits))


def _decode_declared(body: bytes, content_encoding: str | None, limit: int) -> DecodedBody:
    names = [e.strip().lower() for e in (content_encoding or "").split(",") if e.strip()]
    names = [n for n in names if n != "identity"]
    if not names:
        if body[:2] == GZIP_MAGIC:
            # An agent may compress a body without saying so; the upstream may still store it.
            try:
                data, truncated = _gunzip(body, limit)
                return DecodedBody(data, ("gzip",), truncated, sniffed=True)
            except DecodeError:
                pass
        if len(body) > limit:
            return DecodedBody(body[:limit], (), True)
        return DecodedBody(body)
    data = body
    truncated = False
    applied: list[str] = []
    # Encodings are listed in the order they were applied: undo them from the last one.
    for name in reversed(names):
        try:
            data, cut = _decode_one(name, data, limit)
        except DecodeError as exc:
            return DecodedBody(body[:limit], (), len(body) > limit, error=str(exc))
        applied.insert(0, name)
        truncated = truncated or cut
    return DecodedBody(data, tuple(applied), truncated)


def encode_body(data: bytes, content_encoding: str | None) -> bytes | None:
    """``data`` encoded as ``content_encoding`` says (``decode_body``'s inverse, outermost last),
    or None for an encoding this cannot write."""
    names = [n.strip().lower() for n in (content_encoding or "").split(",") if n.strip()]
    for name in names:
        if name == "identity":
            continue
        if name in ("gzip", "x-gzip"):
            data = gzip.compress(data, mtime=0)
        elif name == "deflate":
            data = zlib.compress(data)
        elif name == "br" and _brotli is not None:
            data = _brotli.compress(data)
        else:
            return None
    return data


def _decode_one(name: str, data: bytes, limit: int) -> tuple[bytes, bool]:
    if name in ("gzip", "x-gzip"):
        return _gunzip(data, limit)
    if name == "deflate":
        try:
            return _inflate(data, zlib.MAX_WBITS, limit)
        except DecodeError:
            return _inflate(data, -zlib.MAX_WBITS, limit)  # some clients send raw deflate
    if name == "br":
        return _unbrotli(data, limit)
    # The header value is the agent's: it is not repeated in the message.
    raise DecodeError("unsupported content encoding")


def _inflate(data: bytes, wbits: int, limit: int) -> tuple[bytes, bool]:
    decomp = zlib.decompressobj(wbits)
    try:
        out = decomp.decompress(data, limit + 1)
    except zlib.error:
        raise DecodeError("deflate data is corrupt") from None
    if len(out) > limit or (decomp.unconsumed_tail and not decomp.eof):
        return out[:limit], True
    # Bytes after the end of the stream reach an upstream that stores the body as sent: they
    # are read as they are (as the streamed ``Inflow`` reads them).
    return _with_tail([out], decomp.unused_data if decomp.eof else b"", limit)


def _gunzip(data: bytes, limit: int) -> tuple[bytes, bool]:
    """Every member of a gzip body (Go, Node, nginx and Python's gzip read them all), then any
    bytes after the last member as they are: a trailer that is no member, or a member that does
    not decode, reaches an upstream storing the body as sent, so it is scanned too."""
    members, tail, over_limit, _ = _gzip_members(data, limit)
    if over_limit:
        return b"".join(members)[:limit], True
    return _with_tail(members, tail, limit)


# A gzip body taken apart: the decoded content of each member, the bytes after the last one,
# whether the members decode to more than the limit (the walk stopped there), and whether the last
# member ends (a body cut inside one decodes only as far as it goes). A tuple: this is on the
# path of every compressed body, and a dataclass cost a microsecond more per small one.
_GzipWalk = tuple[list[bytes], bytes, bool, bool]


def _gzip_members(data: bytes, limit: int) -> _GzipWalk:
    """The one walk over a gzip body's members, for the scan (``_gunzip``) and for writing a
    redacted body back member by member (``encode_like``). Raises DecodeError when the first
    member does not decode; a later one that does not is where the tail starts."""
    members: list[bytes] = []
    size = 0
    rest = data
    while rest:
        decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = decomp.decompress(rest, limit - size + 1)
        except zlib.error:
            if members:
                return members, rest, False, True
            raise DecodeError("gzip data is corrupt") from None
        members.append(out)
        size += len(out)
        if size > limit:
            return members, b"", True, False
        if not decomp.eof:
            # Cut by the limit (input left over), or the body ends inside this member.
            return members, b"", bool(decomp.unconsumed_tail), False
        # Past a member's end the rest is only in unused_data (CPython may leave a copy of it in
        # unconsumed_tail after a call cut by max_length: read twice, it would be garbage).
        rest = decomp.unused_data
        if rest[:2] != GZIP_MAGIC:
            return members, rest, False, True
    return members, b"", False, True


def _with_tail(chunks: list[bytes], tail: bytes, limit: int) -> tuple[bytes, bool]:
    """The decoded chunks and then ``tail`` as sent, within ``limit``."""
    data = b"".join(chunks) + tail if tail else b"".join(chunks)
    if len(data) > limit:
        return data[:limit], True
    return data, False


def _unbrotli(data: bytes, limit: int) -> tuple[bytes, bool]:
    out, cut, _ = _unbrotli_read(data, limit)
    return out, cut


def _unbrotli_read(data: bytes, limit: int) -> tuple[bytes, bool, bool]:
    """``(decoded, cut by the limit, the stream ends)``."""
    if _brotli is None:
        raise DecodeError("br bodies need the brotli module")
    decomp = _brotli.Decompressor()
    chunks: list[bytes] = []
    size = 0
    position = 0
    try:
        while position < len(data):
            step = max(1, min(64 * 1024, (limit - size) // _BROTLI_BYTE_EXPANSION))
            out = decomp.process(data[position : position + step])
            position += step
            if out:
                chunks.append(out)
                size += len(out)
                if size > limit:
                    return b"".join(chunks)[:limit], True, False
    except _brotli.error:
        raise DecodeError("br data is corrupt") from None
    return b"".join(chunks), False, decomp.is_finished()


# -- content types -----------------------------------------------------------------------------


def parse_content_type(value: str | None) -> tuple[str, dict[str, str]]:
    """``("application/json", {"charset": "utf-8"})`` from a Content-Type header value."""
    if not value:
        return "", {}
    mime, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for piece in _split_params(rest):
        key, eq, val = piece.partition("=")
        if eq:
            params[key.strip().lower()] = val.strip().strip('"')
    return mime.strip().lower(), params


def _split_params(text: str) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return [p for p in out if p.strip()]


# JSON documents one after another (NDJSON, JSON Lines, JSON text sequences): parsed as well.
_JSON_LINES = frozenset({"application/x-ndjson", "application/jsonl", "application/jsonlines",
                         "application/x-jsonlines", "application/json-seq"})


def is_json(mime: str) -> bool:
    return mime == "application/json" or mime.endswith("+json") or mime == "text/json" or mime in _JSON_LINES


# What may come before a JSON body's first document: a UTF-8 byte order mark, blanks, and the RS
# a JSON text sequence starts each document with. However many: a parser skips them all.
_JSON_LEAD = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\r\n\x1e]*")


def looks_like_json(data: bytes) -> bool:
    """Whether ``data`` starts (after a BOM and blanks) with an object or an array."""
    lead = _JSON_LEAD.match(data)
    at = lead.end() if lead else 0
    return data[at : at + 1] in (b"{", b"[")


# -- JSON --------------------------------------------------------------------------------------

PathItem = str | int


@dataclass
class JsonString:
    """One string (or long number) of a JSON document and where it sits."""

    path: tuple[PathItem, ...]
    text: str
    is_key: bool
    container: Any = field(repr=False)
    slot: Any = field(repr=False)  # the key (dict) or index (list) holding the value


def parse_json(data: bytes | str, shadowed: list[Any] | None = None,
               repeated: list[list[Any]] | None = None) -> Any:
    """The document, or raises ValueError (RecursionError for absurd nesting becomes ValueError).

    A key repeated in one object keeps its last value, as in most parsers, but another parser
    (or a proxy in between) may read the first: with ``shadowed``, the values the parse dropped
    are appended to it, to be scanned as well. With ``repeated``, each repeated key's values,
    in the order sent, are appended to it as one list (a receiver may join them)."""
    if shadowed is None and repeated is None:
        hook = None
    else:
        def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
            out = dict(pairs)  # built in C: the hook costs one call per object
            if len(out) != len(pairs):
                seen: dict[str, Any] = {}
                chains: dict[str, list[Any]] = {}
                for key, value in pairs:
                    if key in seen and shadowed is not None:
                        shadowed.append(seen[key])
                    seen[key] = value
                    chains.setdefault(key, []).append(value)
                if repeated is not None:
                    repeated.extend(chain for chain in chains.values() if len(chain) > 1)
            return out
    try:
        return json.loads(data, object_pairs_hook=hook)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def json_documents(data: bytes) -> Iterator[Any]:
    """The documents of a body of JSON texts one after another (NDJSON, JSON Lines, documents
    glued together), in order, parsed as they are asked for; none when the body is not UTF-8.
    A document that does not parse ends them: what came before is still read, as a
    line-by-line reader does."""
    try:
        text = data.decode("utf-8-sig")  # a BOM before the first document, as json.loads skips it
    except UnicodeDecodeError:
        return
    decoder = json.JSONDecoder()
    position, size = 0, len(text)
    while True:
        while position < size and text[position] in _JSON_GAPS:
            position += 1
        if position >= size:
            return
        try:
            doc, position = decoder.raw_decode(text, position)
        except (ValueError, RecursionError):
            return
        yield doc


# Between the documents of NDJSON, JSON Lines and JSON text sequences (RFC 7464: RS before each).
_JSON_GAPS = frozenset(" \t\r\n\x1e")


def json_strings(doc: Any, limit: int | None = None) -> list[JsonString] | None:
    """Every key and string value (and every integer of 8+ digits: a numeric secret) in document
    order, iteratively so deep nesting cannot exhaust the stack; None past ``limit`` items."""
    out: list[JsonString] = []
    root = [doc]
    stack: list[tuple[Any, Any, tuple[PathItem, ...]]] = [(root, 0, ())]
    while stack:
        if limit is not None and len(out) > limit:
            return None
        container, slot, path = stack.pop()
        value = container[slot]
        if isinstance(value, str):
            out.append(JsonString(path, value, False, container, slot))
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if abs(value) >= 10_000_000:
                out.append(JsonString(path, str(value), False, container, slot))
        elif isinstance(value, dict):
            children = []
            for key in value:
                out_key = JsonString(path + (key,), key, True, value, key)
                children.append((out_key, (value, key, path + (key,))))
            # keys are reported before their values, in order; values are walked after
            out.extend(k for k, _ in children)
            stack.extend(child for _, child in reversed(children))
        elif isinstance(value, list):
            stack.extend((value, i, path + (i,)) for i in reversed(range(len(value))))
    if limit is not None and len(out) > limit:
        return None
    return out


def json_texts(doc: Any) -> list[str]:
    """Every key and string value (and long integer) of ``doc``, without paths: for a document
    with too many of them to take apart one by one (``json_strings`` gives up past its limit)."""
    out: list[str] = []
    stack: list[Any] = [doc]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if abs(value) >= 10_000_000:
                out.append(str(value))
        elif isinstance(value, dict):
            out.extend(value)
            stack.extend(reversed(list(value.values())))
        elif isinstance(value, list):
            stack.extend(reversed(value))
    return out


def json_values(doc: Any) -> tuple[list[str], int]:
    """The string values (and long integers) of ``doc`` in document order, without keys or
    paths, and how many keys and values it holds: cheaper than ``json_strings`` for values
    that are only joined, never rewritten. ``doc`` is what ``json`` parsed (exact types: a bool
    is no int here); it runs over every value of a large NDJSON body, hence the exact tests."""
    values: list[str] = []
    append = values.append
    keys = 0
    stack: list[Any] = [doc]
    pop, extend = stack.pop, stack.extend
    while stack:
        value = pop()
        kind = type(value)
        if kind is str:
            append(value)
        elif kind is dict:
            keys += len(value)
            extend(reversed(value.values()))
        elif kind is list:
            extend(reversed(value))
        elif kind is int and abs(value) >= 10_000_000:
            append(str(value))
    return values, keys + len(values)


def apply_json_redactions(doc: Any, replacements: dict[int, str], strings: list[JsonString]) -> Any:
    """Replace ``strings[i]`` by ``replacements[i]`` in place; returns the (possibly new) root."""
    root = [doc]
    renames: dict[int, tuple[dict[str, Any], dict[str, str]]] = {}
    for index, new in replacements.items():
        item = strings[index]
        if not item.path:
            root[0] = new  # the document is a bare string
            continue
        container = item.container
        if item.is_key:
            entry = renames.setdefault(id(item.container), (item.container, {}))
            entry[1][item.slot] = new
        else:
            container[item.slot] = new
    for obj, names in renames.values():
        items = list(obj.items())
        obj.clear()
        for key, value in items:
            new_key = names.get(key, key)
            suffix = 2
            candidate = new_key
            while candidate in obj:  # two keys redacted to the same marker must not collide
                candidate = f"{new_key}#{suffix}"
                suffix += 1
            obj[candidate] = value
    return root[0]


def dump_json(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- forms -------------------------------------------------------------------------------------


def form_pairs(data: bytes, limit: int | None = None) -> list[tuple[str, str]] | None:
    """The decoded ``(name, value)`` pairs, or None when there are more than ``limit``."""
    text = data.decode("latin-1")
    try:
        return parse_qsl(text, keep_blank_values=True, encoding="latin-1", max_num_fields=limit)
    except ValueError:
        return None


def encode_form(pairs: Iterable[tuple[str, str]]) -> bytes:
    """The inverse of ``form_pairs`` (latin-1: every character is the byte it was decoded from)."""
    return "&".join(f"{quote_plus(k, safe=':', encoding='latin-1')}={quote_plus(v, safe=':', encoding='latin-1')}"
                    for k, v in pairs).encode("ascii")


# -- multipart ---------------------------------------------------------------------------------


@dataclass
class Part:
    index: int
    headers: list[tuple[str, str]]
    header_start: int  # offsets into the body
    header_end: int
    content_start: int
    content_end: int
    name: str | None = None
    filename: str | None = None
    content_type: str = ""
    transfer_encoding: str = ""


def multipart_parts(data: bytes, boundary: str, limit: int | None = None) -> list[Part]:
    """The parts (at most ``limit``) between the boundary lines."""
    delimiter = b"--" + boundary.encode("latin-1", "replace")
    parts: list[Part] = []
    positions: list[int] = []
    at = data.find(delimiter)
    while at >= 0 and (limit is None or len(positions) <= limit):
        if at == 0 or data[at - 1 : at] == b"\n":
            positions.append(at)
        at = data.find(delimiter, at + len(delimiter))
    for k in range(len(positions) - 1):
        line_end = data.find(b"\n", positions[k])
        if line_end < 0:
            break
        start = line_end + 1
        end = positions[k + 1]
        # the line break before the next delimiter belongs to the delimiter
        if data[end - 2 : end] == b"\r\n":
            end -= 2
        elif data[end - 1 : end] == b"\n":
            end -= 1
        if end < start:
            continue
        split = data.find(b"\r\n\r\n", start, end)
        gap = 4
        if split < 0:
            split = data.find(b"\n\n", start, end)
            gap = 2
        if split < 0:
            header_end, content_start = start, start
        else:
            header_end, content_start = split, split + gap
        part = Part(len(parts), _part_headers(data[start:header_end]), start, header_end, content_start, end)
        for key, value in part.headers:
            if key == "content-disposition":
                _, params = parse_content_type(value)
                part.name = params.get("name")
                part.filename = params.get("filename") or params.get("filename*")
            elif key == "content-type":
                part.content_type = parse_content_type(value)[0]
            elif key == "content-transfer-encoding":
                part.transfer_encoding = value.strip().lower()
        parts.append(part)
    return parts


def _part_headers(block: bytes) -> list[tuple[str, str]]:
    out = []
    for line in block.decode("latin-1").splitlines():
        key, colon, value = line.partition(":")
        if colon:
            out.append((key.strip().lower(), value.strip()))
    return out


def part_content(data: bytes, part: Part) -> bytes:
    raw = data[part.content_start : part.content_end]
    if part.transfer_encoding == "base64":
        try:
            return base64.b64decode(b"".join(raw.split()), validate=False)
        except (binascii.Error, ValueError):
            return raw
    if part.transfer_encoding == "quoted-printable":
        return quopri.decodestring(raw)
    return raw


def encode_part_content(content: bytes, part: Part) -> bytes:
    if part.transfer_encoding == "base64":
        encoded = base64.b64encode(content)
        return b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    if part.transfer_encoding == "quoted-printable":
        return quopri.encodestring(content)
    return content


def as_text(data: bytes) -> str:
    """A byte-for-byte text view (latin-1): offsets equal byte offsets, ASCII reads as itself."""
    return data.decode("latin-1")


# -- re-encoding a redacted body in the framing it was sent in -----------------------------------

# What a value masked in place becomes (an answer keeps its length: ``answer_stream``): this,
# then ``*``, as long as the value.
IN_PLACE_MASK = b"[REDACTED]"

# A marker (as ``redact.marker`` writes it, or percent-encoded in a form field): what a
# redaction put where a value was.
_MARKER = re.compile(MARKER_PATTERN.encode() + rb"|%5BREDACTED(?::|%3A)[A-Za-z0-9_.\-]{1,64}%5D")


@dataclass(frozen=True)
class _Layer:
    """How one Content-Encoding was sent: the decoded size of each compressed part (gzip
    members; one deflate or br stream) and the size of the bytes after them, sent as they are."""

    name: str
    parts: tuple[int, ...]
    tail: int
    raw: bool = False  # deflate without its zlib header


def encode_like(original: bytes, content_encoding: str | None, data: bytes, limit: int) -> bytes | None:
    """``data``, a redaction of what ``decode_body(original, content_encoding)`` read, encoded
    in the framing ``original`` was sent in: each compressed part compressed again with what the
    redaction left of it, and bytes that followed the compressed data kept after it (redacted
    where they held a value). Without ``content_encoding``, ``original`` is gzip found by its
    magic number. None when that cannot be done faithfully (a layer this cannot write, one the
    body ends inside of, a redaction that cannot be placed back, a result that would not read
    as ``data``): the caller must not send something else instead."""
    names = _encoding_names(content_encoding) or (["gzip"] if original[:2] == GZIP_MAGIC else [])
    if not names:
        return None
    layers, inner = _layers(original, names, limit)
    if layers is None:
        return None
    flat = inner + b"".join(tail for _, tail in reversed(layers))
    shapes = [layer for layer, _ in layers]
    placed = _place(flat, data, _cuts(shapes))
    if placed is None and _masked_in_place(flat, data):
        placed = _cuts(shapes)  # byte for byte: every cut stays where it was
    if placed is None:
        if any(shape.tail for shape in shapes):
            return None
        # Nothing after the compressed data (a JSON body written again, say): its parts become
        # one, which every reader of the encoding reads as the same content.
        shapes[-1] = replace(shapes[-1], parts=(len(flat),))
        placed = [len(data)] * (1 + len(shapes))
    out = _rebuild(shapes, data, placed)
    if out is None:
        return None
    check = decode_body(out, content_encoding, limit)
    if check.error is not None or check.truncated or check.data != data:
        return None  # the upstream would read something other than what was scanned
    return out


def _encoding_names(content_encoding: str | None) -> list[str]:
    names = [n.strip().lower() for n in (content_encoding or "").split(",") if n.strip()]
    return [n for n in names if n != "identity"]


def _layers(original: bytes, names: list[str], limit: int) -> tuple[list[tuple[_Layer, bytes]] | None, bytes]:
    """Each layer, outermost first, with its trailing bytes; and the innermost decoded content."""
    layers: list[tuple[_Layer, bytes]] = []
    data = original
    for name in reversed(names):
        split = _split_layer(name, data, limit)  # each layer within the limit, as decode_body reads it
        if split is None:
            return None, b""
        parts, tail, raw = split
        data = b"".join(parts)
        layers.append((_Layer("gzip" if name == "x-gzip" else name, tuple(map(len, parts)), len(tail), raw), tail))
    return layers, data


def _split_layer(name: str, data: bytes, limit: int) -> tuple[list[bytes], bytes, bool] | None:
    """``(decoded parts, bytes after them, raw deflate)``, read as ``_decode_one`` reads them.
    None for a layer cut short (a body that ends inside a gzip member, a deflate or br stream):
    compressed again it would be a whole one, and the upstream would read an end the agent
    never sent (a reader that refuses a cut stream would accept it)."""
    if name in ("gzip", "x-gzip"):
        try:
            members, tail, over_limit, ended = _gzip_members(data, limit)
        except DecodeError:
            return None
        return None if over_limit or not ended else (members, tail, False)
    if name == "deflate":
        for wbits in (zlib.MAX_WBITS, -zlib.MAX_WBITS):
            decomp = zlib.decompressobj(wbits)
            try:
                out = decomp.decompress(data, limit + 1)
            except zlib.error:
                continue
            if len(out) > limit or decomp.unconsumed_tail or not decomp.eof:
                return None
            return [out], decomp.unused_data, wbits < 0
        return None
    if name == "br" and _brotli is not None:
        try:
            out, cut, ended = _unbrotli_read(data, limit)
        except DecodeError:
            return None
        return None if cut or not ended else ([out], b"", False)
    return None


def _masked_in_place(flat: bytes, data: bytes) -> bool:
    """Whether ``data`` is ``flat`` with values masked byte for byte (``IN_PLACE_MASK``, cut to
    a shorter value's length or followed by stars to a longer one's, as a binary answer is
    masked), and nothing else changed."""
    if len(data) != len(flat):
        return False
    restored = bytearray(data)
    head = IN_PLACE_MASK[:4]  # rare in any data: a shorter masked value is not recognised
    at = data.find(head)
    while at >= 0:
        end = at + len(head)
        while end < len(data) and end - at < len(IN_PLACE_MASK) and data[end] == IN_PLACE_MASK[end - at]:
            end += 1
        if end - at == len(IN_PLACE_MASK):
            while end < len(data) and data[end] == 0x2A:  # the stars after the mask
                end += 1
        restored[at:end] = flat[at:end]
        at = data.find(head, end)
    return restored == flat


def _cuts(layers: list[_Layer]) -> list[int]:
    """Offsets into the flat decoded body where a part or a tail ends: the innermost layer's
    parts, then each layer's tail from the innermost out."""
    cuts: list[int] = []
    at = 0
    for size in layers[-1].parts:
        at += size
        cuts.append(at)
    for layer in reversed(layers):
        at += layer.tail
        cuts.append(at)
    return cuts


def _place(flat: bytes, data: bytes, cuts: list[int]) -> list[int] | None:
    """``cuts`` (offsets into ``flat``) moved to where they fall in ``data``, ``flat`` with
    values replaced by markers; None when ``data`` is not that (a re-serialised JSON body). A
    cut inside a replaced value falls after its marker: the marker stays where the value began."""
    if data == flat:
        return cuts
    # (start in flat, end in flat, start in data) of each stretch the redaction left as it was
    kept: list[tuple[int, int, int]] = []
    pieces: list[tuple[int, int]] = []
    position = 0
    for match in _MARKER.finditer(data):
        pieces.append((position, match.start()))
        position = match.end()
    pieces.append((position, len(data)))
    if len(pieces) == 1:
        return None  # changed, yet no marker: not a redaction in place
    at = 0
    for k, (start, end) in enumerate(pieces):
        piece = data[start:end]
        if k == 0:
            found = 0 if flat.startswith(piece) else -1
        elif k == len(pieces) - 1:
            found = len(flat) - len(piece)
            if found <= at or not flat.endswith(piece):
                found = -1
        else:
            found = flat.find(piece, at + 1)  # a marker stands for one byte or more
        if found < 0:
            return None
        kept.append((found, found + len(piece), start))
        at = found + len(piece)
    ends = [flat_end for _, flat_end, _ in kept]
    out: list[int] = []
    for cut in cuts:
        k = bisect.bisect_left(ends, cut)  # the first kept stretch that ends at or after the cut
        if k == len(kept):
            return None
        flat_start, _, data_start = kept[k]
        out.append(data_start + (cut - flat_start) if cut >= flat_start else data_start)
    return out


def _rebuild(layers: list[_Layer], data: bytes, placed: list[int]) -> bytes | None:
    """The body again, innermost layer first: its parts compressed one by one, each layer's tail
    after it; an outer layer's parts (split in compressed bytes that have changed) as one."""
    innermost = layers[-1]
    count = len(innermost.parts)
    starts = [0] + placed
    parts = [data[starts[k] : starts[k + 1]] for k in range(count)]
    packed_parts = [_compress(innermost, part) for part in parts]
    if any(packed is None for packed in packed_parts):
        return None
    body = b"".join(packed for packed in packed_parts if packed is not None)
    tails = [data[starts[count + k] : starts[count + k + 1]] for k in range(len(layers))]
    body += tails[0]
    for layer, tail in zip(reversed(layers[:-1]), tails[1:]):
        packed = _compress(layer, body)
        if packed is None:
            return None
        body = packed + tail
    return body


# zlib's default level and a middling brotli quality: this runs while the request waits, and
# their highest settings took three times as long (br's many more) for a few percent less.
_GZIP_LEVEL = 6
_BROTLI_QUALITY = 5


def _compress(layer: _Layer, data: bytes) -> bytes | None:
    if layer.name == "gzip":
        return gzip.compress(data, compresslevel=_GZIP_LEVEL, mtime=0)
    if layer.name == "deflate":
        if layer.raw:
            packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
            return packer.compress(data) + packer.flush()
        return zlib.compress(data)
    if layer.name == "br" and _brotli is not None:
        return bytes(_brotli.compress(data, quality=_BROTLI_QUALITY))
    return None
