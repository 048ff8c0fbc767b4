"""Raw git objects as the gate scans them: commit and tag objects byte for byte, blobs in chunks.

``git log``'s format placeholders show only part of a commit object (no extra headers, no
``gpgsig``, a message re-encoded by the ``encoding`` header and cut at a NUL), so commit and tag
objects are read raw with ``git cat-file --batch`` and every header line and the whole message
become pieces, in each way their bytes read (``text_views``: UTF-8, the ``encoding`` header's
codec, and common legacy codecs when the bytes are not UTF-8). Blobs can be any size: they are
streamed in bounded, overlapping chunks.

Every git here runs with replace refs ignored (``GIT_NO_REPLACE_OBJECTS``): a ``refs/replace/*``
ref would otherwise make git show a decoy in place of the object that is actually pushed.
Anything unexpected (a missing object, a failing git, an object of the wrong type, a commit or
tag larger than ``MAX_OBJECT``) raises ``ObjectError``: the caller refuses the push. Every git
here runs under ``proc`` (the scan's deadline; killed with its process group when late).
"""

from __future__ import annotations

import binascii
import codecs
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from bot_bottle.sidecar.dlp import wide
from bot_bottle.sidecar.git_gate import embedded, proc
from bot_bottle.sidecar.git_gate.piece import Piece, PieceKind

CHUNK = 1024 * 1024  # blob bytes read per step: memory stays bounded whatever the blob's size
OVERLAP = 64 * 1024  # carried into the next chunk, so a secret across a chunk boundary is seen whole
MiB = 1024 * 1024
# A commit or tag object is read whole to be scanned; one larger than this is refused (real ones
# are kilobytes: even a long message with a signature).
MAX_OBJECT = 32 * MiB
# git diffs a text file whole in memory, both sides (a text file of a few hundred MB would take
# the sidecar's 512 MB); past this size git calls a file binary, does not load it for the log,
# and streams it to ``cat-file``: the gate then reads it by id in chunks, like any binary file.
BIG_FILE = f"core.bigFileThreshold={16 * MiB}"
MAX_TAG_DEPTH = 32  # a chain of tags longer than this is refused, not followed forever
_OID_RE = re.compile(rb"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")
# Header names shown in a report as they are; any other name could itself be the secret.
_PLAIN_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


class ObjectError(RuntimeError):
    """An object could not be read as expected: the push cannot be checked."""


def git_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """``env`` (or ours) with replace refs off: git must show the objects that are pushed."""
    out = dict(os.environ if env is None else env)
    out["GIT_NO_REPLACE_OBJECTS"] = "1"
    return out


@dataclass(frozen=True)
class RawObject:
    oid: str
    kind: str  # commit, tag, tree, blob
    data: bytes


def read_objects(
    oids: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str] | None = None
) -> list[RawObject]:
    """The objects named by ``oids``, raw, in that order (``git cat-file --batch``)."""
    return list(iter_objects(oids, cwd=cwd, env=env))


def iter_objects(
    oids: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str] | None = None
) -> Iterator[RawObject]:
    """``read_objects`` one at a time, as ``git cat-file --batch`` gives them: only one object is
    held at once, and one over ``MAX_OBJECT`` is refused before it is read."""
    if not oids:
        return
    request = b"".join(o.encode() + b"\n" for o in oids)
    with proc.Stream(["git", "cat-file", "--batch"], input=request, timeout=proc.SCAN_TIMEOUT,
                     cwd=cwd, env=git_env(env)) as stream:
        for oid in oids:
            yield _next_object(stream.stdout, oid)
        code, stderr = stream.finish()
    if code != 0:
        raise ObjectError(f"git cat-file failed: {stderr[:300]}")


def _next_object(out: IO[bytes], oid: str) -> RawObject:
    fields = out.readline(256).rstrip(b"\n").split(b" ")
    if len(fields) != 3 or not _OID_RE.match(fields[0]) or not fields[2].isdigit():
        raise ObjectError(f"object {oid[:12]} could not be read")
    size = int(fields[2])
    if size > MAX_OBJECT:
        # A commit or tag this big is no commit anyone writes; it is refused, not read whole.
        raise ObjectError(f"object {oid[:12]} is larger than {MAX_OBJECT // MiB} MiB, the most the gate reads")
    body = out.read(size + 1)
    if len(body) != size + 1 or body[-1:] != b"\n":
        raise ObjectError(f"object {oid[:12]} was cut short")
    return RawObject(fields[0].decode(), fields[1].decode("ascii", "replace"), body[:-1])


def split_object(data: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """A commit or tag object's headers (name, value as UTF-8; continuation lines joined by
    newlines) and its message (everything after the first empty line, NULs and all)."""
    headers, message = split_raw(data)
    return [(name, value.decode("utf-8", errors="replace")) for name, value in headers], message


def split_raw(data: bytes) -> tuple[list[tuple[str, bytes]], bytes]:
    """``split_object`` with each header's value as its bytes: read in another encoding, a
    value can say what its UTF-8 reading hides (``text_views``)."""
    head, sep, message = data.partition(b"\n\n")
    if not sep and data.endswith(b"\n"):
        head = data[:-1]
    headers: list[tuple[str, bytes]] = []
    for raw in head.split(b"\n"):
        if raw.startswith(b" ") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + b"\n" + raw[1:])
            continue
        name, _, value = raw.partition(b" ")
        headers.append((name.decode("utf-8", errors="replace"), value))
    return headers, message


# Codecs the bytes of a message or header that are not UTF-8 are also read in. git stores them as
# the committer's tools wrote them, whatever the ``encoding`` header says (or without one), and a
# reader whose tools assume another locale sees them as that text: a secret written in it would
# pass a UTF-8 reading, where each of its non-ASCII characters is a replacement character. The
# common legacy encodings of Western, Cyrillic, Greek and East Asian text; ``latin-1`` reads any
# byte, so the bytes themselves are always one of the views.
_WIDE_CODECS = ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
_LEGACY_CODECS = ("cp1252", "latin-1", "cp1251", "koi8-r", "iso8859-7", "shift_jis", "euc_jp", "gb18030", "big5",
                  "euc_kr", "iso2022_jp")


def text_views(raw: bytes, encoding: str = "") -> list[str]:
    """The ways ``raw`` reads: as UTF-8 (what most tools show), in the codec an ``encoding``
    header names (what ``git log`` and the upstream's web UI show), and, when it is not plain
    UTF-8, in every codec of ``_LEGACY_CODECS`` (or, holding NULs, ``_WIDE_CODECS``, and its runs
    of ASCII stored as UTF-16 or UTF-32: ``wide``) it decodes in without error; when it is, so are
    the bytes ``git commit``'s repair of a message that was not UTF-8 started from
    (``_unrepaired``). Each distinct reading once, UTF-8's first."""
    views = [raw.decode("utf-8", errors="replace")]
    declared = _codec(encoding)
    if declared:
        views.append(raw.decode(declared, errors="replace"))
    if not _plain_utf8(raw):
        if b"\x00" in raw:
            views += [_byte_lines(text, codec) for codec, text in _decoded(raw, _WIDE_CODECS)]
        views += _decodings(raw, _LEGACY_CODECS)
        # A wide codec reads the whole text or nothing (an odd length, a stray byte before): a run
        # of UTF-16 or UTF-32 among other bytes is read by itself too.
        runs = wide.wide_text(raw) if b"\x00" in raw else ""
        if runs:
            views.append(runs)
    else:
        unrepaired = _unrepaired(views[0])
        if unrepaired is not None:
            views += _decodings(unrepaired, _LEGACY_CODECS)
    return list(dict.fromkeys(views))


def _decodings(raw: bytes, codecs_: tuple[str, ...]) -> list[str]:
    """``raw`` decoded in each of ``codecs_`` it is text in (no decoding error)."""
    return [text for _codec_name, text in _decoded(raw, codecs_)]


def _decoded(raw: bytes, codecs_: tuple[str, ...]) -> list[tuple[str, str]]:
    """``(codec, text)`` for each of ``codecs_`` ``raw`` is text in (no decoding error)."""
    out = []
    for codec in codecs_:
        try:
            out.append((codec, raw.decode(codec)))
        except (UnicodeDecodeError, ValueError):
            continue  # not text in this codec: nothing a reader would see in it
    return out


# Characters other than "\n" whose UTF-16 or UTF-32 form may hold a "\n" byte: U+0A00..U+0AFF,
# U+xx0A, and (checked one by one) those beyond the BMP.
_LINE_BYTE_CHARS = re.compile(
    "[\u0a00-\u0aff" + "".join(chr(high << 8 | 0x0A) for high in range(1, 256) if high != 0x0A
                               and not 0xD8 <= high <= 0xDF) + "\U00010000-\U0010ffff]"
)


def _byte_lines(text: str, codec: str) -> str:
    """A wide codec's reading of some bytes with the bytes' line breaks: each character whose
    bytes hold a "\n" (git counts lines by that byte) is as many line breaks. Without it a hit's
    line is the reading's own (line 1 of text read out of step), not the file's, and the same
    token is reported again on a line the other readings do not give it. Such a character is no
    ASCII, so no token loses a character to it."""
    def breaks(match: re.Match[str]) -> str:
        count = match.group().encode(codec).count(b"\n")
        return "\n" * count if count else match.group()

    return _LINE_BYTE_CHARS.sub(breaks, text)


# Characters U+0080..U+00FF: what ``git commit`` makes of each byte that is not UTF-8 in a
# message it is told is UTF-8 (the default), keeping the valid sequences among them.
_LATIN1_RUN = re.compile("([\x80-\xff]+)")
# What such a repair leaves and text written in UTF-8 does not: a C1 control character, or four
# of those characters in a row (a Western word holds one or two: "Füße").
_REPAIRED = re.compile("[\x80-\x9f]|[\xa0-\xff]{4}")


def _unrepaired(text: str) -> bytes | None:
    """The bytes a message had before ``git commit`` repaired it into UTF-8 (each stray byte read
    as Latin-1), or None when it does not look repaired. A Shift-JIS message committed so is
    stored as that mojibake; its reader gets the bytes back by undoing it."""
    if not _REPAIRED.search(text):
        return None
    parts = _LATIN1_RUN.split(text)
    return b"".join(part.encode("latin-1" if i % 2 else "utf-8", "surrogatepass") for i, part in enumerate(parts))


def _codec(encoding: str) -> str:
    """Python's name for the codec an ``encoding`` header names; empty when there is none or
    Python does not know it (the other readings still apply)."""
    if not encoding:
        return ""
    try:
        return codecs.lookup(encoding).name
    except (LookupError, ValueError):
        return ""


def _plain_utf8(raw: bytes) -> bool:
    """Whether ``raw`` is UTF-8 without NULs: text every tool reads alike."""
    if b"\x00" in raw:
        return False
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def shown_name(name: str) -> str:
    """How a header's name appears in a report (only ordinary names are shown as they are)."""
    return name if _PLAIN_NAME_RE.match(name) else "(unusual name)"


def commit_pieces(obj: RawObject, budget: embedded.Budget | None = None) -> list[Piece]:
    """Every header and the whole message of one commit object, in each way they read, and what
    compressed streams in the message hold (``message_stream_pieces``, on the push's ``budget``)."""
    if obj.kind != "commit":
        raise ObjectError(f"{obj.oid[:12]} is a {obj.kind}, not a commit")
    headers, message = split_raw(obj.data)
    encoding = _declared_encoding(headers)  # git re-encodes the whole object by it, headers too
    pieces: list[Piece] = []
    for name, value in headers:
        for text in text_views(value, encoding):
            if name in ("author", "committer"):
                # The whole line, date included: text between the e-mail and the date is kept by git.
                pieces.append(Piece(obj.oid, "identity", text, line=1 if name == "author" else 2))
            else:
                pieces.append(Piece(obj.oid, "header", f"{name} {text}", path=shown_name(name), line=1))
    pieces += message_pieces(obj.oid, "message", message, encoding)
    pieces += message_stream_pieces(obj.oid, "message", message, budget)
    return pieces


def git_reads_otherwise(obj: RawObject) -> bool:
    """Whether a commit's ``encoding`` header names a codec Python does not know (``IBM1047``, an
    EBCDIC): ``git log`` and the upstream re-encode the commit by it with iconv, and only git's
    own reading (``reencoded_pieces``) shows what they will."""
    encoding = _declared_encoding(split_raw(obj.data)[0])
    return bool(encoding) and not _codec(encoding)


def reencoded_pieces(
    oid: str, *, cwd: str | None = None, env: Mapping[str, str] | None = None
) -> list[Piece]:
    """A commit's identity lines and message as ``git log`` shows them, re-encoded to UTF-8 from
    the codec its ``encoding`` header names (the raw bytes again where iconv knows none)."""
    argv = ["git", "log", "--no-walk", "--encoding=UTF-8", "--format=%an <%ae>%n%cn <%ce>%n%B", oid]
    result = proc.run(argv, cwd=cwd, env=git_env(env), timeout=proc.SCAN_TIMEOUT)
    if result.returncode != 0:
        raise ObjectError(f"commit {oid[:12]} could not be read as git shows it")
    author, committer, message = (result.stdout.split(b"\n", 2) + [b"", b""])[:3]
    pieces = [Piece(oid, "identity", text, line=line)
              for line, raw in ((1, author), (2, committer)) for text in text_views(raw)]
    return pieces + message_pieces(oid, "message", message)


def _declared_encoding(headers: list[tuple[str, bytes]]) -> str:
    for name, value in headers:
        if name == "encoding":
            return value.decode("ascii", errors="replace").strip()
    return ""


def message_pieces(oid: str, kind: str, message: bytes, encoding: str = "") -> list[Piece]:
    """The message in each way it reads (``text_views``)."""
    return [Piece(oid, kind, text, line=1)  # type: ignore[arg-type]
            for text in text_views(message, encoding) if text.strip()]


# A message is text a reader sees, but it can carry a compressed stream too: as raw bytes (git
# keeps whatever bytes a commit or tag object holds), or written as base64 or hex, which the
# detectors decode but do not inflate. Every run of either that holds 12 bytes or more (the
# smallest stream that holds a secret: a header and eight literals) is decoded and searched as
# well (``encoded_runs``, as for added lines but without their filter: a message is short).
_HEX_ONLY = re.compile(rb"[0-9a-fA-F\r\n]+")
_URLSAFE = bytes.maketrans(b"-_", b"+/")
_LINE_BREAKS = re.compile(rb"[\r\n]")


def message_stream_pieces(
    oid: str, kind: str, message: bytes, budget: embedded.Budget | None = None
) -> list[Piece]:
    """What compressed streams in a message hold (``embedded``: a zlib or gzip stream, a zip
    entry, anywhere in it), in its bytes and in its base64 and hex runs decoded, searched on one
    budget as a file's (drawn from the push's): a ``message-stream`` (``tag-stream``) piece for
    each chunk of what they give, a ``message-limit`` piece when a budget ran out."""
    budget = embedded.Budget() if budget is None else budget
    found: PieceKind = "tag-stream" if kind == "tag" else "message-stream"
    place = "tag message" if kind == "tag" else "commit message"
    pieces: list[Piece] = []
    for part in embedded.streams_in_each(_stream_sources(message), budget):
        if part.limit is not None:
            pieces.append(Piece(oid, "message-limit", part.limit, path=place))
            continue
        for start in range(0, max(len(part.data) - OVERLAP, 1), CHUNK):
            text = "\n".join(embedded.stream_texts(part.data[start:start + CHUNK + OVERLAP]))
            if text:
                pieces.append(Piece(oid, found, text))
    return pieces


def _stream_sources(message: bytes) -> Iterator[bytes]:
    """The bytes a message's streams may be in: its own, those ``git commit`` turned into UTF-8
    (each byte that was no UTF-8 read as Latin-1: its reader gets the stream back by undoing
    that), and each base64 or hex run decoded."""
    yield message
    if _plain_utf8(message):
        unrepaired = _unrepaired(message.decode("utf-8"))
        if unrepaired is not None:
            yield unrepaired
    for _offset, decoded in encoded_runs(message, every=True):
        yield decoded


def _base64(run: bytes) -> bytes:
    """A base64 run's bytes (standard or URL-safe, padded or not; a stray last character
    dropped), empty when they are none."""
    run = run.rstrip(b"=").translate(_URLSAFE)
    run = run[:len(run) - len(run) % 4] if len(run) % 4 == 1 else run
    try:
        return binascii.a2b_base64(run + b"=" * (-len(run) % 4))
    except binascii.Error:
        return b""


# Added lines of a file are searched for base64 and hex of compressed data too (a string literal,
# a block in a README). They are mostly source code, whose identifiers and hashes look like such
# runs, so only a run that starts as a stream's encoding does, or is too long for a name, is
# decoded: the first two base64 characters of any zlib header, gzip's "H4sI", zip's "UEsDB", and
# their hex; a run of 64 base64 or 96 hex characters and more (a stream after other bytes). Runs
# are found by ``find`` over the bytes' classes (a regex took 20 times as long as the rest).
_B64_STREAM_STARTS = tuple(sorted({binascii.b2a_base64(h + b"\x00", newline=False)[:2]
                                  for h in embedded.zlib_headers()} | {b"H4sI", b"UEsDB"}))
_HEX_STREAM_STARTS = tuple(sorted({h.hex().encode() for h in embedded.zlib_headers()} | {b"1f8b08", b"504b0304"}))
_B64_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-"
_B64_CLASSES = bytes(ord("b") if b in _B64_LETTERS else ord(" ") for b in range(256))
_HEX_CLASSES = bytes(ord("h") if b in b"0123456789abcdefABCDEF" else ord(" ") for b in range(256))
_B64_SHORTEST = b"b" * 16  # 12 bytes: the smallest stream that holds a secret
_HEX_SHORTEST = b"h" * 24
_B64_LONG = 64
_HEX_LONG = 96


def encoded_runs(text: bytes, *, every: bool = False) -> Iterator[tuple[int, bytes]]:
    """``(offset, bytes)`` of each base64 or hex run in ``text`` (added lines, a message) that
    may encode a compressed stream, decoded: a run that starts as one's encoding does, or is
    long; with ``every``, any run long enough to hold one. A base64 run may go on over more lines
    (``base64`` wraps at 76 characters)."""
    kinds = text.translate(_HEX_CLASSES)
    at = kinds.find(_HEX_SHORTEST)
    while at != -1:
        end = _class_end(kinds, at + len(_HEX_SHORTEST))
        if every or end - at >= _HEX_LONG or text[at:at + 8].lower().startswith(_HEX_STREAM_STARTS):
            yield at, bytes.fromhex(text[at:end - (end - at) % 2].decode("ascii"))
        at = kinds.find(_HEX_SHORTEST, end)
    kinds = text.translate(_B64_CLASSES)
    at = kinds.find(_B64_SHORTEST)
    while at != -1:
        end = _class_end(kinds, at + len(_B64_SHORTEST))
        if every or end - at >= _B64_LONG or text.startswith(_B64_STREAM_STARTS, at):
            end = _wrapped_end(text, kinds, end)
            run = text[at:end]
            decoded = b"" if _HEX_ONLY.fullmatch(run) else _base64(_LINE_BREAKS.sub(b"", run))
            if len(decoded) >= embedded.MIN_OUTPUT:  # a run of hex is read as such above
                yield at, decoded
        at = kinds.find(_B64_SHORTEST, end)


def _class_end(kinds: bytes, at: int) -> int:
    """Where the run of one class that goes on at ``at`` in ``kinds`` ends."""
    end = kinds.find(b" ", at)
    return len(kinds) if end == -1 else end


def _wrapped_end(text: bytes, kinds: bytes, end: int) -> int:
    """The end of a base64 run that ends at ``end`` with its padding, and with the runs of the
    lines right after it (each ``_B64_SHORTEST`` long at least) when it is wrapped."""
    while True:
        pad = end
        while pad < end + 2 and text[pad:pad + 1] == b"=":
            pad += 1
        after = pad + (2 if text.startswith(b"\r\n", pad) else 1 if text.startswith(b"\n", pad) else 0)
        if after == pad or not kinds.startswith(_B64_SHORTEST, after):
            return pad
        end = _class_end(kinds, after + len(_B64_SHORTEST))


def tag_pieces(obj: RawObject, budget: embedded.Budget | None = None) -> tuple[list[Piece], str, str]:
    """Every header and the message of one tag object, in each way they read (and what streams
    in the message hold); and the object and type it points to."""
    if obj.kind != "tag":
        raise ObjectError(f"{obj.oid[:12]} is a {obj.kind}, not a tag")
    headers, message = split_raw(obj.data)
    encoding = _declared_encoding(headers)
    pieces: list[Piece] = []
    target = target_kind = ""
    for name, raw in headers:
        value = raw.decode("utf-8", errors="replace")
        if name == "object" and not target:
            target = value.strip()
        elif name == "type" and not target_kind:
            target_kind = value.strip()
        for text in text_views(raw, encoding):
            if name == "tagger":
                pieces.append(Piece(obj.oid, "tagger", text, line=1))
            else:
                pieces.append(Piece(obj.oid, "tag-header", f"{name} {text}", path=shown_name(name), line=1))
    pieces += message_pieces(obj.oid, "tag", message, encoding)
    pieces += message_stream_pieces(obj.oid, "tag", message, budget)
    if not _OID_RE.match(target.encode()):
        raise ObjectError(f"tag {obj.oid[:12]} names no valid object")
    return pieces, target, target_kind


def object_kind(oid: str, *, cwd: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The type of one object, without reading its content (a blob may be huge)."""
    result = proc.run(["git", "cat-file", "-t", oid], cwd=cwd, env=git_env(env), timeout=proc.SCAN_TIMEOUT)
    kind = result.stdout.decode("ascii", "replace").strip()
    if result.returncode != 0 or kind not in ("commit", "tag", "tree", "blob"):
        raise ObjectError(f"object {oid[:12]} could not be read")
    return kind


def peel(
    oid: str, *, cwd: str | None = None, env: Mapping[str, str] | None = None, budget: embedded.Budget | None = None
) -> tuple[list[Piece], str]:
    """Follow a chain of tags from ``oid``: the pieces of every tag object on the way, and the
    type of the object at the end (``commit``, ``tree``, ``blob``). Streams in the tags' messages
    are searched on ``budget`` (the push's)."""
    pieces: list[Piece] = []
    for _ in range(MAX_TAG_DEPTH):
        kind = object_kind(oid, cwd=cwd, env=env)
        if kind != "tag":
            return pieces, kind
        [obj] = read_objects([oid], cwd=cwd, env=env)
        more, oid, _declared = tag_pieces(obj, budget)
        pieces += more
    raise ObjectError(f"a chain of more than {MAX_TAG_DEPTH} tags")


def blob_chunks(oid: str, *, cwd: str | None = None, env: Mapping[str, str] | None = None) -> Iterator[bytes]:
    """A blob's bytes in chunks of at most ``CHUNK + OVERLAP``; each chunk after the first starts
    with the last ``OVERLAP`` bytes of the one before. Raises ``ObjectError`` (after the chunks
    read so far) when git could not give the whole blob: never an empty or partial "success"."""
    with proc.Stream(["git", "-c", BIG_FILE, "cat-file", "blob", oid], timeout=proc.SCAN_TIMEOUT, cwd=cwd,
                     env=git_env(env)) as stream:
        tail = b""
        while True:
            data = stream.stdout.read(CHUNK)
            if not data:
                break
            yield tail + data
            tail = (tail + data)[-OVERLAP:]
        code, _ = stream.finish()
    if code != 0:
        raise ObjectError(f"blob {oid[:12]} could not be read")


def blob_size(oid: str, *, cwd: str | None = None, env: Mapping[str, str] | None = None) -> int:
    """A blob's size in bytes, without reading it."""
    result = proc.run(["git", "cat-file", "-s", oid], cwd=cwd, env=git_env(env), timeout=proc.SCAN_TIMEOUT)
    size = result.stdout.decode("ascii", "replace").strip()
    if result.returncode != 0 or not size.isdigit():
        raise ObjectError(f"blob {oid[:12]} could not be read")
    return int(size)


def read_blob(oid: str, *, cwd: str | None = None, env: Mapping[str, str] | None = None) -> bytes:
    """A blob's whole content (the caller checks its size first: ``blob_size``)."""
    result = proc.run(["git", "cat-file", "blob", oid], cwd=cwd, env=git_env(env), timeout=proc.SCAN_TIMEOUT)
    if result.returncode != 0:
        raise ObjectError(f"blob {oid[:12]} could not be read")
    return result.stdout
