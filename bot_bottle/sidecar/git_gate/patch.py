"""What a set of commits adds, as pieces of text to scan, each knowing where it came from.

Each commit object is read raw, every header and the whole message (``objects``); one ``git log
-p --cc -U0`` over the commits gives every commit's patch, read as bytes. From the patch only *added* lines count (for a merge: lines in none of its parents, i.e. what the merge
itself introduced; everything else is scanned with the commit that introduced it, or is already
published). Contiguous added lines stay together, so a detector that spans lines (a private key
block) still sees them whole, and a hit maps back to its line in the new file. File names of
files that exist after the commit are pieces too, and so is the whole content of binary files
(git shows no lines for them), read by object id.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Iterator, Mapping, Sequence

from bot_bottle.sidecar.git_gate import packed
from bot_bottle.sidecar.git_gate.objects import (
    CHUNK,
    OVERLAP,
    ObjectError,
    blob_chunks,
    blob_size,
    commit_pieces,
    git_env,
    read_blob,
    read_objects,
)
from bot_bottle.sidecar.git_gate.piece import Piece, PieceKind

__all__ = ["Piece", "PieceKind", "header_path", "log_argv", "new_marker", "parse_log", "parse_patch", "read_pieces"]

DEFAULT_MARKER = "bb-commit"
_HUNK_RE = re.compile(r"^(@@+) .*?\+(\d+)(?:,\d+)? @@+")
# "index <old>..<new>[ <mode>]", or "index <old1>,<old2>..<new>" for a merge; --full-index: whole ids.
_INDEX_RE = re.compile(r"^index [0-9a-f,]+\.\.([0-9a-f]+)(?: [0-7]+)?$")
_FULL_OID_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


def new_marker() -> str:
    """A commit marker for one run. File content can hold NULs (git calls a file binary only
    when a NUL is in its first 8000 bytes), so a fixed marker could be forged by a file and cut
    the rest of it away; a random one cannot be guessed."""
    return f"{DEFAULT_MARKER}-{secrets.token_hex(16)}"


def log_argv(commits: Sequence[str], marker: str = DEFAULT_MARKER) -> list[str]:
    """The ``git`` argv (after ``git``) whose output ``parse_log`` reads; commits go on stdin.

    Only each commit's id is printed before its patch: the commit object itself (identity,
    headers, message) is read raw (``objects.commit_pieces``), as the log format would re-encode
    the message and leave out headers.
    """
    return [
        "-c", "core.quotePath=false",
        "log", "--no-walk=unsorted", "--stdin", "--patch", "--cc", "--unified=0", "--full-index",
        "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames", "--submodule=short",
        "--src-prefix=a/", "--dst-prefix=b/", f"--format=%x00%x00{marker} %H%x00%x00%x00",
    ]


def parse_log(output: str, marker: str = DEFAULT_MARKER) -> Iterator[Piece]:
    header = re.compile("\x00\x00" + re.escape(marker) + " ([0-9a-f]+)\x00(.*?)\x00(.*?)\x00", re.S)
    parts = header.split(output)
    # parts: [before, sha, identity, message, patch, sha, identity, message, patch, ...]
    for i in range(1, len(parts) - 3, 4):
        commit, identity, message, patch = parts[i], parts[i + 1], parts[i + 2], parts[i + 3]
        if identity:
            yield Piece(commit, "identity", identity, line=1)
        if message.strip():
            yield Piece(commit, "message", message, line=1)
        yield from parse_patch(commit, patch)


def parse_patch(commit: str, patch: str) -> Iterator[Piece]:
    path: str | None = None
    deleted = False
    columns = 1  # how many prefix columns a body line has: 1, or the parent count for --cc
    new_line = 0
    blob: str | None = None  # the new content's id, from the "index" line
    block: list[str] = []
    block_start = 0

    def flush() -> Iterator[Piece]:
        nonlocal block
        if block and path is not None:
            yield Piece(commit, "lines", "\n".join(block), path=path, line=block_start, blob=blob)
        block = []

    def end_file() -> Iterator[Piece]:
        yield from flush()
        if path is not None and not deleted:
            yield Piece(commit, "path", path, path=path)

    for raw in patch.split("\n"):
        if raw.startswith("diff --git ") or raw.startswith("diff --cc ") or raw.startswith("diff --combined "):
            yield from end_file()
            path, deleted, new_line, blob = header_path(raw), False, 0, None
            continue
        if path is None:
            continue
        if raw.startswith("@@"):
            yield from flush()
            hunk = _HUNK_RE.match(raw)
            if hunk:
                columns = len(hunk.group(1)) - 1
                new_line = int(hunk.group(2))
            continue
        if new_line == 0:
            # File header lines between "diff" and the first hunk.
            if raw.startswith("deleted file mode"):
                deleted = True
            elif index := _INDEX_RE.match(raw):
                blob = index.group(1)
            elif raw.startswith("Binary files ") and raw.endswith(" differ") and not deleted:
                yield Piece(commit, "binary", "", path=path, blob=blob)
            continue
        prefix, body = raw[:columns], raw[columns:]
        if len(prefix) < columns or raw.startswith("\\"):
            continue  # "\ No newline at end of file", or the empty tail of the patch
        if "-" in prefix:
            yield from flush()
            continue  # a line of an old version only: not in the result
        if prefix == "+" * columns:
            if not block:
                block_start = new_line
            block.append(body)
        else:
            yield from flush()  # a line the result shares with a parent
        new_line += 1
    yield from end_file()


def header_path(line: str) -> str:
    """The file's path from ``diff --git a/P b/P`` (renames are off, so both sides match) or
    ``diff --cc P``, undoing git's C-style quoting."""
    if line.startswith("diff --git "):
        rest = line[len("diff --git "):]
        if rest.startswith('"'):
            first, _ = _unquote_prefix(rest)
            return first[2:]
        size = (len(rest) - len("a/ b/")) // 2  # rest is "a/" + P + " b/" + P
        return rest[2:2 + size]
    rest = line.split(" ", 2)[2]
    return _unquote_prefix(rest)[0] if rest.startswith('"') else rest


_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def _unquote_prefix(text: str) -> tuple[str, str]:
    """Decode a leading C-quoted string; return it and the rest of ``text``."""
    out = bytearray()
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return out.decode("utf-8", errors="replace"), text[i + 1:]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            if nxt.isdigit() and i + 3 < len(text):
                out.append(int(text[i + 1:i + 4], 8) & 0xFF)
                i += 4
                continue
        out.extend(ch.encode("utf-8"))
        i += 1
    return out.decode("utf-8", errors="replace"), ""


def read_pieces(
    commits: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str] | None = None
) -> Iterator[Piece]:
    """Every piece the given commits add: each commit object whole, then what its patch adds,
    with binary files' content read in full (in chunks)."""
    if not commits:
        return
    for obj in read_objects(commits, cwd=cwd, env=env):
        yield from commit_pieces(obj)
    marker = new_marker()
    result = subprocess.run(
        ["git", *log_argv(commits, marker)], input=("\n".join(commits) + "\n").encode(), cwd=cwd,
        env=git_env(env), capture_output=True, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"git log failed: {result.stderr.decode('utf-8', 'replace').strip()[:500]}")
    # Bytes, split later on "\n" only: text mode's universal newlines would also split at a "\r"
    # inside a line, and the rest of that line (or a forged "diff --git" after it) would lose its
    # "+" prefix. Invalid UTF-8 becomes U+FFFD; every ASCII byte stays as it is.
    for piece in parse_log(result.stdout.decode("utf-8", errors="replace"), marker):
        if piece.kind == "binary" and piece.path is not None:
            yield from binary_pieces(piece, cwd=cwd, env=env)
        else:
            yield piece
            if piece.kind == "lines" and piece.line == 1 and _may_be_packed_text(piece.text):
                yield from _text_packed_pieces(piece, cwd=cwd, env=env)


def binary_pieces(piece: Piece, *, cwd: str | None, env: Mapping[str, str] | None) -> Iterator[Piece]:
    """A binary file's whole content, read by its object id in overlapping chunks.

    Latin-1 maps every byte to one character: text secrets inside binary formats stay findable.
    Text stored as UTF-16 (git sees its NULs and calls it binary) is also decoded as such.
    """
    if piece.blob is None or not _FULL_OID_RE.match(piece.blob) or set(piece.blob) == {"0"}:
        raise ObjectError(f"no object id for binary file {piece.path!r} in commit {piece.commit[:12]}")
    first = True
    is_packed = False
    for chunk in blob_chunks(piece.blob, cwd=cwd, env=env):
        if first:
            is_packed = packed.looks_packed(chunk[:1024])
        for text in [chunk.decode("latin-1"), *utf16_views(chunk, first)]:
            yield Piece(piece.commit, "binary", text, path=piece.path, blob=piece.blob)
        first = False
    if is_packed:
        yield from packed_pieces(piece.commit, piece.path, piece.blob, cwd=cwd, env=env)


def packed_pieces(
    commit: str, path: str | None, blob: str, *, cwd: str | None, env: Mapping[str, str] | None
) -> Iterator[Piece]:
    """What a compressed file or an archive holds (``packed``): each member's name, its content
    (latin-1 and UTF-16 views, in bounded chunks like a binary file), and an ``archive-limit``
    piece for each limit hit (the scan turns it into a finding: the push is rejected)."""
    size = blob_size(blob, cwd=cwd, env=env)
    if size > packed.MAX_FILE:
        yield Piece(commit, "archive-limit", f"the file is larger than {packed.MAX_FILE // packed.MiB} MiB,"
                    " the most the gate opens", path=path)
        return
    named: set[str] = set()
    for part in packed.unpack(read_blob(blob, cwd=cwd, env=env)):
        if part.limit is not None:
            yield Piece(commit, "archive-limit", part.limit, path=path)
            continue
        if part.member is not None and part.member not in named:
            named.add(part.member)
            yield Piece(commit, "archive-name", part.member, path=path, member=part.member)
        data = part.data
        if not data:
            continue
        for start in range(0, max(len(data) - OVERLAP, 1), CHUNK):
            chunk = data[start:start + CHUNK + OVERLAP]
            for text in [chunk.decode("latin-1"), *utf16_views(chunk, start == 0)]:
                yield Piece(commit, "archive", text, path=path, member=part.member)


# First characters (as git's UTF-8 text diff shows them) of a compressed file or an archive that
# git took for text (no NUL in its first 8000 bytes, or a diff attribute): its blob is checked.
_ZLIB_FIRST = "\x08\x18(8HXhx"


def _may_be_packed_text(text: str) -> bool:
    if text.startswith(("\x1f", "PK\x03\x04", "\ufffd7zXZ")) or "ustar" in text[:1024]:
        return True
    if text.startswith("BZh") and text[4:10] == "1AY&SY":
        return True
    if len(text) > 1 and text[0] in _ZLIB_FIRST:
        second = text[1]
        return second == "\ufffd" or (ord(second) < 128 and (ord(text[0]) * 256 + ord(second)) % 31 == 0)
    return False


def _text_packed_pieces(piece: Piece, *, cwd: str | None, env: Mapping[str, str] | None) -> Iterator[Piece]:
    if piece.blob is None or not _FULL_OID_RE.match(piece.blob) or set(piece.blob) == {"0"}:
        raise ObjectError(f"no object id for file {piece.path!r} in commit {piece.commit[:12]}")
    chunks = blob_chunks(piece.blob, cwd=cwd, env=env)
    try:
        head = next(chunks, b"")
    finally:
        chunks.close()
    if packed.looks_packed(head[:1024]):
        yield from packed_pieces(piece.commit, piece.path, piece.blob, cwd=cwd, env=env)


def utf16_views(data: bytes, first: bool) -> list[str]:
    """UTF-16 readings of ``data`` when it looks like UTF-16 text (a byte order mark, or NULs in
    at least a quarter of its odd or even bytes); both alignments, so a string that starts at
    an odd offset, or big-endian text, reads right in one of them."""
    bom = first and data[:2] in (b"\xff\xfe", b"\xfe\xff")
    half = max(len(data) // 2, 1)
    if not bom and max(data[0::2].count(0), data[1::2].count(0)) * 4 < half:
        return []
    return [data.decode("utf-16-le", errors="replace"), data[1:].decode("utf-16-le", errors="replace")]
