"""What a set of commits adds, as pieces of text to scan, each knowing where it came from.

One ``git log -p --cc -U0`` over the commits gives every commit's message and patch. From the
patch only *added* lines count (for a merge: lines in none of its parents, i.e. what the merge
itself introduced; everything else is scanned with the commit that introduced it, or is already
published). Contiguous added lines stay together, so a detector that spans lines (a private key
block) still sees them whole, and a hit maps back to its line in the new file. File names of
files that exist after the commit are pieces too, and so is the content of binary files (git
shows no lines for them).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

PieceKind = Literal["message", "identity", "path", "lines", "binary", "tag", "tagger"]
MARKER = "\x00\x00bb-commit "
# %H, then the author/committer identity, then the raw message; NULs never occur in either.
LOG_FORMAT = "%x00%x00bb-commit %H%x00%an <%ae>%n%cn <%ce>%x00%B%x00"
BINARY_LIMIT = 10 * 1024 * 1024

_HEADER_RE = re.compile(r"\x00\x00bb-commit ([0-9a-f]+)\x00(.*?)\x00(.*?)\x00", re.S)
_HUNK_RE = re.compile(r"^(@@+) .*?\+(\d+)(?:,\d+)? @@+")


@dataclass(frozen=True)
class Piece:
    """Text to scan; ``line`` is the line number of its first line (in the file or message)."""

    commit: str
    kind: PieceKind
    text: str
    path: str | None = None
    line: int | None = None


def log_argv(commits: Sequence[str]) -> list[str]:
    """The ``git`` argv (after ``git``) whose output ``parse_log`` reads; commits go on stdin."""
    return [
        "-c", "core.quotePath=false",
        "log", "--no-walk=unsorted", "--stdin", "--patch", "--cc", "--unified=0",
        "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames", "--submodule=short",
        "--src-prefix=a/", "--dst-prefix=b/", f"--format={LOG_FORMAT}",
    ]


def parse_log(output: str) -> Iterator[Piece]:
    parts = _HEADER_RE.split(output)
    # parts: [before, sha, identity, message, patch, sha, identity, message, patch, ...]
    for i in range(1, len(parts) - 3, 4):
        commit, identity, message, patch = parts[i], parts[i + 1], parts[i + 2], parts[i + 3]
        yield Piece(commit, "identity", identity, line=1)
        if message.strip():
            yield Piece(commit, "message", message, line=1)
        yield from parse_patch(commit, patch)


def parse_patch(commit: str, patch: str) -> Iterator[Piece]:
    path: str | None = None
    deleted = False
    columns = 1  # how many prefix columns a body line has: 1, or the parent count for --cc
    new_line = 0
    block: list[str] = []
    block_start = 0

    def flush() -> Iterator[Piece]:
        nonlocal block
        if block and path is not None:
            yield Piece(commit, "lines", "\n".join(block), path=path, line=block_start)
        block = []

    def end_file() -> Iterator[Piece]:
        yield from flush()
        if path is not None and not deleted:
            yield Piece(commit, "path", path, path=path)

    for raw in patch.split("\n"):
        if raw.startswith("diff --git ") or raw.startswith("diff --cc ") or raw.startswith("diff --combined "):
            yield from end_file()
            path, deleted, new_line = header_path(raw), False, 0
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
            elif raw.startswith("Binary files ") and raw.endswith(" differ") and not deleted:
                yield Piece(commit, "binary", "", path=path)
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
    """Every piece the given commits add, with binary files' content filled in."""
    if not commits:
        return
    result = subprocess.run(
        ["git", *log_argv(commits)], input="\n".join(commits) + "\n", cwd=cwd, env=env,
        capture_output=True, text=True, errors="replace", check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"git log failed: {result.stderr.strip()[:500]}")
    for piece in parse_log(result.stdout):
        if piece.kind == "binary" and piece.path is not None:
            yield Piece(piece.commit, "binary", _blob_text(piece.commit, piece.path, cwd, env), path=piece.path)
        else:
            yield piece


def _blob_text(commit: str, path: str, cwd: str | None, env: Mapping[str, str] | None) -> str:
    result = subprocess.run(
        ["git", "cat-file", "blob", f"{commit}:{path}"], cwd=cwd, env=env, capture_output=True, check=False
    )
    # Latin-1 maps every byte to one character: text secrets inside binary formats stay findable.
    return result.stdout[:BINARY_LIMIT].decode("latin-1") if result.returncode == 0 else ""
