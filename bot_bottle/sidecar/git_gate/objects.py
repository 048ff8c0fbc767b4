"""Raw git objects as the gate scans them: commit and tag objects byte for byte, blobs in chunks.

``git log``'s format placeholders show only part of a commit object (no extra headers, no
``gpgsig``, a message re-encoded by the ``encoding`` header and cut at a NUL), so commit and tag
objects are read raw with ``git cat-file --batch`` and every header line and the whole message
become pieces. Blobs can be any size: they are streamed in bounded, overlapping chunks.

Every git here runs with replace refs ignored (``GIT_NO_REPLACE_OBJECTS``): a ``refs/replace/*``
ref would otherwise make git show a decoy in place of the object that is actually pushed.
Anything unexpected (a missing object, a failing git, an object of the wrong type, a commit or
tag larger than ``MAX_OBJECT``) raises ``ObjectError``: the caller refuses the push. Every git
here runs under ``proc`` (the scan's deadline; killed with its process group when late).
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from bot_bottle.sidecar.git_gate import proc
from bot_bottle.sidecar.git_gate.piece import Piece

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
    """A commit or tag object's headers (name, value; continuation lines joined by newlines) and
    its message (everything after the first empty line, NULs and all)."""
    head, sep, message = data.partition(b"\n\n")
    if not sep and data.endswith(b"\n"):
        head = data[:-1]
    headers: list[tuple[str, str]] = []
    for raw in head.split(b"\n"):
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(" ") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + "\n" + line[1:])
            continue
        name, _, value = line.partition(" ")
        headers.append((name, value))
    return headers, message


def shown_name(name: str) -> str:
    """How a header's name appears in a report (only ordinary names are shown as they are)."""
    return name if _PLAIN_NAME_RE.match(name) else "(unusual name)"


def commit_pieces(obj: RawObject) -> list[Piece]:
    """Every header and the whole message of one commit object."""
    if obj.kind != "commit":
        raise ObjectError(f"{obj.oid[:12]} is a {obj.kind}, not a commit")
    headers, message = split_object(obj.data)
    pieces: list[Piece] = []
    encoding = ""
    for name, value in headers:
        if name in ("author", "committer"):
            # The whole line, date included: text between the e-mail and the date is kept by git.
            pieces.append(Piece(obj.oid, "identity", value, line=1 if name == "author" else 2))
            continue
        if name == "encoding":
            encoding = value.strip()
        pieces.append(Piece(obj.oid, "header", f"{name} {value}", path=shown_name(name), line=1))
    pieces += message_pieces(obj.oid, "message", message, encoding)
    return pieces


def message_pieces(oid: str, kind: str, message: bytes, encoding: str = "") -> list[Piece]:
    """The message as UTF-8 (what most tools show) and, when an ``encoding`` header names another
    codec, decoded with it too (what ``git log`` and the upstream's web UI would show)."""
    pieces = []
    text = message.decode("utf-8", errors="replace")
    if text.strip():
        pieces.append(Piece(oid, kind, text, line=1))  # type: ignore[arg-type]
    if encoding:
        try:
            other = message.decode(codecs.lookup(encoding).name, errors="replace")
        except (LookupError, ValueError):
            other = ""  # a codec Python does not know: the UTF-8 view above is all there is
        if other.strip() and other != text:
            pieces.append(Piece(oid, kind, other, line=1))  # type: ignore[arg-type]
    return pieces


def tag_pieces(obj: RawObject) -> tuple[list[Piece], str, str]:
    """Every header and the message of one tag object; and the object and type it points to."""
    if obj.kind != "tag":
        raise ObjectError(f"{obj.oid[:12]} is a {obj.kind}, not a tag")
    headers, message = split_object(obj.data)
    pieces: list[Piece] = []
    target = target_kind = ""
    for name, value in headers:
        if name == "object" and not target:
            target = value.strip()
        elif name == "type" and not target_kind:
            target_kind = value.strip()
        if name == "tagger":
            pieces.append(Piece(obj.oid, "tagger", value, line=1))
        else:
            pieces.append(Piece(obj.oid, "tag-header", f"{name} {value}", path=shown_name(name), line=1))
    pieces += message_pieces(obj.oid, "tag", message)
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


def peel(oid: str, *, cwd: str | None = None, env: Mapping[str, str] | None = None) -> tuple[list[Piece], str]:
    """Follow a chain of tags from ``oid``: the pieces of every tag object on the way, and the
    type of the object at the end (``commit``, ``tree``, ``blob``)."""
    pieces: list[Piece] = []
    for _ in range(MAX_TAG_DEPTH):
        kind = object_kind(oid, cwd=cwd, env=env)
        if kind != "tag":
            return pieces, kind
        [obj] = read_objects([oid], cwd=cwd, env=env)
        more, oid, _declared = tag_pieces(obj)
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
