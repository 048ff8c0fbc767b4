"""What a set of commits adds, as pieces of text to scan, each knowing where it came from.

Each commit object is read raw, every header and the whole message (``objects``); one ``git log
-p --cc -U0`` over the commits gives every commit's patch, read as bytes. From the patch only
*added* lines count (for a merge: lines in none of its parents, i.e. what the merge itself
introduced; everything else is scanned with the commit that introduced it, or is already
published). Contiguous added lines stay together, so a detector that spans lines (a private key
block) still sees them whole, and a hit maps back to its line in the new file. File names of
files that exist after the commit are pieces too, and so is the whole content of binary files
(git shows no lines for them), read by object id. Added lines holding bytes that are not UTF-8
or NULs are also read in the other ways a message is (``line_views``): a value written in
Latin-1, or UTF-16 past the 8000 bytes git looks at to call a file binary, is seen as such. A
file git diffs as text whose added bytes are no text has its blob's head checked for a
compressed file or an archive (its first line need not be in the diff), and opened if it is one.
A compressed stream that starts partway through a file (binary, or text whose added lines hold
bytes that are not text, or all text) is found and inflated too (``embedded``), under a budget
shared by the whole push; so is one written as base64 or hex in added lines (a string literal,
a block in a README), decoded first (``objects.encoded_runs``).

The log is never held whole: it is parsed as git writes it (``LogReader``, ``LogParser``), a
long line in parts, a long block of added lines in overlapping windows (``Block``), so memory
stays within a few windows whatever the push's size. Past ``MAX_LOG_BYTES`` the rest is not read
and the push is refused as a ``scan-limit``.
"""

from __future__ import annotations

import codecs
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO

from bot_bottle.sidecar.dlp import wide
from bot_bottle.sidecar.git_gate import embedded, objects, packed, proc
from bot_bottle.sidecar.git_gate.objects import (
    BIG_FILE,
    CHUNK,
    OVERLAP,
    MiB,
    ObjectError,
    blob_chunks,
    blob_size,
    commit_pieces,
    git_env,
    git_reads_otherwise,
    iter_objects,
    read_blob,
    reencoded_pieces,
    text_views,
)
from bot_bottle.sidecar.git_gate.piece import Piece, PieceKind

__all__ = [
    "Block", "LogParser", "LogReader", "Piece", "PieceKind", "header_path", "log_argv", "new_marker", "parse_log",
    "parse_patch", "read_pieces",
]

DEFAULT_MARKER = "bb-commit"
# The most of a push's log (every new commit's patch) the gate reads: past it the push is
# refused as a scan-limit. Memory does not depend on it (the log is streamed), time does.
MAX_LOG_BYTES = 256 * MiB
# Added lines in one piece at most (characters): a longer block comes in windows overlapping by
# OVERLAP, each within the DLP engine's deep limit, so it is decoded whole as before.
BLOCK_WINDOW = 2 * MiB
LINE_PART = 256 * 1024  # bytes of a line read at once: a longer line comes in parts
# A line of the log that is not file content (a commit or file header: a file name) is put
# together whole to be read; one longer than this is refused, not cut.
MAX_HEADER_LINE = 1 * MiB
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
        "-c", "core.quotePath=false", "-c", BIG_FILE,
        "log", "--no-walk=unsorted", "--stdin", "--patch", "--cc", "--unified=0", "--full-index",
        "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames", "--submodule=short",
        "--src-prefix=a/", "--dst-prefix=b/", f"--format=%x00%x00{marker} %H%x00%x00%x00",
    ]


def parse_log(output: str, marker: str = DEFAULT_MARKER) -> Iterator[Piece]:
    """The pieces of a whole ``git log`` output held in memory (``read_pieces`` streams it)."""
    parser = LogParser(marker)
    for line in output.split("\n"):
        yield from parser.line(line)
    yield from parser.end()


def parse_patch(commit: str, patch: str) -> Iterator[Piece]:
    """The pieces of one commit's patch text."""
    parser = LogParser(DEFAULT_MARKER, commit=commit)
    for line in patch.split("\n"):
        yield from parser.line(line)
    yield from parser.end()


class Block:
    """Contiguous added lines, given out as ``lines`` pieces: whole when at most ``window``
    characters, else in windows of that size, each starting with the last ``overlap``
    characters of the one before (a secret on a seam is seen whole; its line is the same in
    both, so the scan reports it once). Memory stays within about one window."""

    def __init__(self, window: int, overlap: int) -> None:
        self.window = window
        self.overlap = min(overlap, window // 2)
        self.parts: list[str] = []
        self.size = 0
        self.line = 0  # the line number of the first character held

    def __bool__(self) -> bool:
        return bool(self.parts)

    def add_line(self, body: str, number: int) -> list[tuple[str, int]]:
        if not self.parts:
            self.line = number
        else:
            self.parts.append("\n")
            self.size += 1
        return self.extend(body)

    def extend(self, text: str) -> list[tuple[str, int]]:
        """More of the current line (a long line comes in parts); the windows that filled up."""
        self.parts.append(text)
        self.size += len(text)
        if self.size <= self.window:
            return []
        full = []
        held = "".join(self.parts)
        while len(held) > self.window:
            full.append((held[:self.window], self.line))
            cut = self.window - self.overlap
            self.line += held.count("\n", 0, cut)
            held = held[cut:]
        self.parts, self.size = [held], len(held)
        return full

    def take(self) -> tuple[str, int] | None:
        """What is held (the last window), emptying the block."""
        if not self.parts:
            return None
        held = "".join(self.parts), self.line
        self.parts, self.size = [], 0
        return held


class LogParser:
    """``git log`` output (``log_argv``), fed one line at a time (or a long line in parts:
    ``part``), as pieces. Holds one block of added lines at most (``Block``), never the log."""

    def __init__(self, marker: str, commit: str | None = None) -> None:
        self.header_re = re.compile("\x00\x00" + re.escape(marker) + " ([0-9a-f]+)\x00(.*?)\x00(.*?)\x00", re.S)
        # A patch given alone (``parse_patch``) has no commit headers to look for.
        self.start = "\x00\x00" + marker + " " if commit is None else None
        self.commit = commit
        self.header: list[str] | None = None  # the lines of a commit header not yet complete
        self.header_size = 0
        self.long: str | None = None  # how the rest of a long line is handled: added, whole, skip
        self.pending: list[str] = []  # a long line read whole (a header line)
        self._new_file(None)

    def _new_file(self, path: str | None, other_names: Sequence[str] = ()) -> None:
        self.path = path
        self.other_names = other_names  # the name read in other codecs, when it is not UTF-8
        self.deleted = False
        self.columns = 1  # how many prefix columns a body line has: 1, or the parent count for --cc
        self.new_line = 0
        self.blob: str | None = None  # the new content's id, from the "index" line
        self.block = Block(BLOCK_WINDOW, OVERLAP)

    # ---------------------------------------------------------------- whole lines
    def line(self, raw: str) -> Iterator[Piece]:
        if self.header is not None or (self.start is not None and raw.startswith(self.start)):
            yield from self._header_line(raw)
        elif self.commit is not None:
            yield from self._patch_line(raw)

    def end(self) -> Iterator[Piece]:
        if self.commit is not None:
            yield from self._end_file()

    def _header_line(self, raw: str) -> Iterator[Piece]:
        """A commit's header (NUL NUL marker id NUL identity NUL message NUL), on one line or more."""
        if self.header is None:
            yield from self.end()
            self.header, self.header_size = [], 0
        self.header.append(raw)
        self.header_size += len(raw) + 1
        text = "\n".join(self.header) if "\x00" in raw else ""  # it ends with a NUL: no need to look before
        match = self.header_re.match(text)
        if match is None:
            if self.header_size > MAX_HEADER_LINE:
                raise ObjectError(f"a commit header in git log's output is longer than {MAX_HEADER_LINE} bytes")
            return
        self.header = None
        self.commit = match.group(1)
        self._new_file(None)
        identity, message = _shown(match.group(2)), _shown(match.group(3))
        if identity:
            yield Piece(self.commit, "identity", identity, line=1)
        if message.strip():
            yield Piece(self.commit, "message", message, line=1)
        yield from self._patch_line(text[match.end():])

    def _patch_line(self, raw: str) -> Iterator[Piece]:
        if raw.startswith(("diff --git ", "diff --cc ", "diff --combined ")):
            yield from self._end_file()
            name = header_path(raw)
            self._new_file(_shown(name), line_views(name)[1:])
            return
        if self.path is None:
            return
        if raw.startswith("@@"):
            yield from self._flush()
            hunk = _HUNK_RE.match(raw)
            if hunk:
                self.columns = len(hunk.group(1)) - 1
                self.new_line = int(hunk.group(2))
            return
        if self.new_line == 0:
            yield from self._file_header(raw)
            return
        prefix = raw[:self.columns]
        if len(prefix) < self.columns or raw.startswith("\\"):
            return  # "\ No newline at end of file", or the empty tail of the patch
        if "-" in prefix:
            yield from self._flush()
            return  # a line of an old version only: not in the result
        if prefix == "+" * self.columns:
            yield from self._pieces(self.block.add_line(raw[self.columns:], self.new_line))
        else:
            yield from self._flush()  # a line the result shares with a parent
        self.new_line += 1

    def _file_header(self, raw: str) -> Iterator[Piece]:
        """File header lines between "diff" and the first hunk."""
        assert self.commit is not None
        if raw.startswith("deleted file mode"):
            self.deleted = True
        elif index := _INDEX_RE.match(raw):
            self.blob = index.group(1)
        elif raw.startswith("Binary files ") and raw.endswith(" differ") and not self.deleted:
            yield Piece(self.commit, "binary", "", path=self.path, blob=self.blob)

    def _pieces(self, windows: Iterable[tuple[str, int]]) -> Iterator[Piece]:
        assert self.commit is not None
        for text, line in windows:
            for view in line_views(text):
                yield Piece(self.commit, "lines", view, path=self.path, line=line, blob=self.blob)

    def _flush(self) -> Iterator[Piece]:
        held = self.block.take()
        if held is not None and self.path is not None:
            yield from self._pieces([held])

    def _end_file(self) -> Iterator[Piece]:
        yield from self._flush()
        if self.path is not None and not self.deleted:
            assert self.commit is not None
            yield Piece(self.commit, "path", self.path, path=self.path)
            for other in self.other_names:  # a value written in Latin-1, say: seen as such
                yield Piece(self.commit, "path", other, path=self.path)
        self.path = None

    # ---------------------------------------------------------------- long lines
    def part(self, text: str, first: bool, last: bool) -> Iterator[Piece]:
        """Part of a line longer than one read (``LINE_PART``). An added line goes into the
        block as it comes; a header line is put together whole (up to ``MAX_HEADER_LINE``);
        any other line (removed, or shared with a parent) counts by its first part alone."""
        if first:
            self.long = self._long_kind(text)
            if self.long == "added":
                yield from self._patch_line(text)
            elif self.long == "whole":
                self.pending = [text]
            else:
                yield from self.line(text)
        elif self.long == "added":
            yield from self._pieces(self.block.extend(text))
        elif self.long == "whole":
            self.pending.append(text)
            if sum(map(len, self.pending)) > MAX_HEADER_LINE:
                raise ObjectError(f"a line of git log's output that is not file content is longer than"
                                  f" {MAX_HEADER_LINE} bytes (a file name?)")
        if last and self.long == "whole":
            whole, self.pending = "".join(self.pending), []
            yield from self.line(whole)

    def _long_kind(self, first: str) -> str:
        starts = ("diff ", "@@") if self.start is None else (self.start, "diff ", "@@")
        if self.header is not None or first.startswith(starts):
            return "whole"
        if self.commit is None or self.path is None:
            return "skip"
        if self.new_line == 0:
            return "whole"  # a file header line
        added = first[:self.columns] == "+" * self.columns and len(first) >= self.columns
        return "added" if added else "skip"


def header_path(line: str) -> str:
    """The file's path from ``diff --git a/P b/P`` (renames are off, so both sides match) or
    ``diff --cc P``, undoing git's C-style quoting. A byte that is not UTF-8 stays as the lone
    surrogate ``LogReader`` keeps it as (``_shown`` makes it U+FFFD)."""
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
            return out.decode("utf-8", errors="surrogateescape"), text[i + 1:]
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
        out.extend(ch.encode("utf-8", errors="surrogateescape"))
        i += 1
    return out.decode("utf-8", errors="surrogateescape"), ""


# A byte of the log that is not UTF-8, as ``LogReader`` keeps it (``surrogateescape``).
_ESCAPED = re.compile("[\udc80-\udcff]")


def _shown(text: str) -> str:
    """``text`` as it reads as UTF-8: each byte that is not UTF-8 (kept as a lone surrogate) is
    U+FFFD, as if the log had been decoded with ``errors="replace"``."""
    if not _ESCAPED.search(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", errors="replace")


def line_views(text: str) -> list[str]:
    """The ways added lines read, UTF-8's first. Lines holding bytes that are not UTF-8, or NULs,
    are read in each way ``objects.text_views`` reads such bytes too (legacy codecs, UTF-16 and
    UTF-32, runs of ASCII stored wide), as a message is: a value written in Latin-1, or a token
    in UTF-16 past the first 8000 bytes (git diffs the file as text), is then seen."""
    if "\x00" not in text and not _ESCAPED.search(text):
        return [text]
    if "\x00" in text:
        return text_views(text.encode("utf-8", "surrogateescape"))
    # Only the lines holding such bytes read otherwise in another codec: in the other views the
    # rest are left empty (their line breaks kept, so a hit's line is the same), and a large file
    # of legacy text with few such lines costs little more to scan than one in UTF-8.
    odd = "\n".join(line if _ESCAPED.search(line) else "" for line in text.split("\n"))
    return list(dict.fromkeys([_scanned_utf8(text), *text_views(odd.encode("utf-8", "surrogateescape"))[1:]]))


# What a byte that is not UTF-8 is scanned as in a UTF-8 reading that is otherwise ASCII. Like
# U+FFFD it is no character of a token, a secret or a word; unlike it, it is ASCII, so the DLP
# engine skips its search for letters in disguise (compatibility forms, lookalikes), of which
# such a text holds none: U+FFFD on every line of a large file in a legacy encoding cost that
# search a pass over every word next to one (seconds per MiB), and found nothing.
STRAY_BYTE = "\x1a"


def _scanned_utf8(text: str) -> str:
    """``_shown(text)``, with each U+FFFD as ``STRAY_BYTE`` when the rest is ASCII."""
    shown = _shown(text)
    if "\ufffd" not in shown:
        return shown
    bare = shown.replace("\ufffd", STRAY_BYTE)
    return bare if bare.isascii() else shown


def read_pieces(
    commits: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str] | None = None,
    budget: embedded.Budget | None = None,
) -> Iterator[Piece]:
    """Every piece the given commits add: each commit object whole, then what its patch adds,
    with binary files' content read in full (in chunks). The log is read as git writes it and
    scanned as it comes: only a window of it is held at once, never the whole log. Compressed
    streams in messages and files are searched on ``budget``, the push's."""
    if not commits:
        return
    # One budget for the whole push: decoy streams spread over many files and messages still add up.
    budget = embedded.Budget() if budget is None else budget
    for obj in iter_objects(commits, cwd=cwd, env=env):
        yield from commit_pieces(obj, budget)
        if git_reads_otherwise(obj):
            yield from reencoded_pieces(obj.oid, cwd=cwd, env=env)
    marker = new_marker()
    request = ("\n".join(commits) + "\n").encode()
    with proc.Stream(["git", *log_argv(commits, marker)], input=request, timeout=proc.SCAN_TIMEOUT,
                     cwd=cwd, env=git_env(env)) as stream:
        reader = LogReader(stream.stdout, MAX_LOG_BYTES, errors="surrogateescape")
        parser = LogParser(marker)
        yield from _with_content(_parsed(reader, parser), cwd=cwd, env=env, budget=budget)
        if reader.over:
            # What is past the limit is not read: the push is refused (a scan-limit finding),
            # never forwarded with part of it unchecked. git is stopped on leaving this block.
            yield Piece(parser.commit or commits[0], "log-limit",
                        f"the push's diff is larger than {MAX_LOG_BYTES // MiB} MiB, the most the gate reads")
            return
        code, stderr = stream.finish()
    if code != 0:
        raise ObjectError(f"git log failed: {stderr[:500]}")
    yield from empty_folder_pieces(commits, cwd=cwd, env=env)


def tree_argv() -> list[str]:
    """The ``git`` argv (after ``git``) listing every entry the commits on stdin add, folders
    included (``-t``), against each parent (``-m``), NUL-separated."""
    return ["-c", "core.quotePath=false", "diff-tree", "--stdin", "-r", "-t", "-m", "--root", "--no-renames",
            "--diff-filter=A", "-z"]


def empty_folder_pieces(
    commits: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str] | None = None
) -> Iterator[Piece]:
    """The path of every folder a commit adds that holds no file: ``git log`` shows only files,
    so a name given to an empty folder (a tree entry pointing at the empty tree, nested as deep
    as one likes) would pass unread. A folder with anything in it is already in its files'
    paths."""
    request = ("\n".join(commits) + "\n").encode()
    with proc.Stream(["git", *tree_argv()], input=request, timeout=proc.SCAN_TIMEOUT,
                     cwd=cwd, env=git_env(env)) as stream:
        entries = _AddedEntries(stream.stdout, MAX_LOG_BYTES)
        held: tuple[str, str] | None = None  # the last folder seen: empty unless its child follows
        seen: set[tuple[str, str]] = set()
        for commit, mode, path in entries:
            if held is not None and not (commit == held[0] and path.startswith(held[1] + "/")):
                if held not in seen:
                    seen.add(held)
                    yield Piece(held[0], "path", held[1], path=held[1])
            held = (commit, path) if mode == "040000" else None
        if held is not None and held not in seen:
            yield Piece(held[0], "path", held[1], path=held[1])
        if entries.over:
            yield Piece(commits[0], "log-limit",
                        f"the push's list of folders is larger than {MAX_LOG_BYTES // MiB} MiB, the most the gate reads")
            return
        code, stderr = stream.finish()
    if code != 0:
        raise ObjectError(f"git diff-tree failed: {stderr[:500]}")


class _AddedEntries:
    """``(commit, mode, path)`` of each entry in ``git diff-tree -z --stdin`` output, read as it
    comes, up to ``limit`` bytes (``over`` tells that there was more)."""

    def __init__(self, out: IO[bytes], limit: int) -> None:
        self.out, self.left, self.over = out, limit, False

    def _tokens(self) -> Iterator[bytes]:
        rest = b""
        while True:
            data = self.out.read(min(65536, self.left + 1))
            if not data:
                break
            if len(data) > self.left:
                self.over = True
                break
            self.left -= len(data)
            parts = (rest + data).split(b"\0")
            rest = parts.pop()
            yield from parts
        if rest and not self.over:
            yield rest

    def __iter__(self) -> Iterator[tuple[str, str, str]]:
        commit = ""
        tokens = self._tokens()
        for token in tokens:
            if token.startswith(b":"):
                meta = token[1:].split(b" ")
                path = next(tokens, None)
                if path is None:
                    return
                if len(meta) >= 2:
                    yield commit, meta[1].decode("ascii", "replace"), path.decode("utf-8", "replace")
            elif token:
                commit = token.split(b" ", 1)[0].decode("ascii", "replace")  # "<id>" or "<id> (from <parent>)"


def _parsed(reader: LogReader, parser: LogParser) -> Iterator[Piece]:
    for text, first, last in reader.parts():
        if first and last:
            yield from parser.line(text)
        else:
            yield from parser.part(text, first, last)
    yield from parser.end()  # past the limit too: what was read is still scanned


def _with_content(
    pieces: Iterable[Piece], *, cwd: str | None, env: Mapping[str, str] | None, budget: embedded.Budget | None = None
) -> Iterator[Piece]:
    """Binary files' content, and what a compressed file git took for text holds, read by id;
    compressed streams inside either (``embedded``), counted against the push's ``budget``."""
    budget = embedded.Budget() if budget is None else budget
    checked: tuple[str, str | None] | None = None  # the file whose blob was looked at, or need not be
    streamed: tuple[str, str | None] | None = None  # the text file whose blob was searched for streams
    decoded: tuple[str, str | None, int | None, str] | None = None  # the window whose runs were decoded
    for piece in pieces:
        if piece.kind == "binary" and piece.path is not None:
            yield from binary_pieces(piece, cwd=cwd, env=env, budget=budget)
            continue
        yield piece
        if piece.kind != "lines":
            continue
        if checked != (piece.commit, piece.path) and _decides_packed(piece):
            checked = (piece.commit, piece.path)
            if piece.line != 1 or _may_be_packed_text(piece.text):
                yield from _text_packed_pieces(piece, cwd=cwd, env=env)
        if streamed != (piece.commit, piece.path):
            if _NOT_TEXT.search(piece.text):
                streamed = (piece.commit, piece.path)
                yield from _text_stream_pieces(piece, cwd=cwd, env=env, budget=budget)
            else:
                yield from _lines_stream_pieces(piece, budget)
        # The other readings of the same window (a line not in UTF-8) hold the same ASCII runs.
        window = (piece.commit, piece.path, piece.line, piece.text[-64:])
        if window != decoded:
            decoded = window
            yield from _lines_encoded_pieces(piece, budget)


def _decides_packed(piece: Piece) -> bool:
    """Whether this piece of a file's added lines settles if its blob is to be opened as a
    compressed file or an archive (each file's pieces come in order of their lines).

    Its first line does: opened when it starts like one. A first line the push leaves as it was
    is not in the diff: a later commit can keep a compressed file's first line and change the
    compressed bytes after it, which then hold whatever it likes. So the first added lines that
    hold what text does not (bytes that are not UTF-8, control characters) send the gate to the
    blob's first bytes too: compressed bytes that encode anything are never all plain text.
    """
    return piece.line == 1 or _NOT_TEXT.search(piece.text) is not None


# What a text file does not hold and compressed bytes do: a byte that is not UTF-8 (U+FFFD here),
# a control character other than tab, line and page breaks, and escape.
_NOT_TEXT = re.compile("[\ufffd\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")


class LogReader:
    """``git log``'s output as decoded lines, each in parts of at most ``LINE_PART`` bytes, up to
    ``limit`` bytes in all (``over`` tells that there was more).

    Bytes, split on "\n" only: text mode's universal newlines would also split at a "\r" inside
    a line, and the rest of that line (or a forged "diff --git" after it) would lose its "+"
    prefix. Invalid UTF-8 is handled by ``errors``, as if the whole log were decoded at once (a
    line's parts go through one incremental decoder, so a character cut by a read stays whole):
    U+FFFD by default, or each such byte kept as a lone surrogate (``surrogateescape``: the scan
    reads those bytes in other codecs too); every ASCII byte stays as it is.
    """

    def __init__(self, out: IO[bytes], limit: int, errors: str = "replace") -> None:
        self.out = out
        self.limit = limit
        self.errors = errors
        self.count = 0
        self.over = False

    def parts(self) -> Iterator[tuple[str, bool, bool]]:
        """(text, first part of its line, last part of its line), without the "\n"."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors=self.errors)
        first = True
        while True:
            data = self.out.readline(min(LINE_PART, self.limit + 1 - self.count))
            self.count += len(data)
            if self.count > self.limit:
                self.over = True
                return
            if not data:
                if not first:  # the log ended inside a line
                    yield decoder.decode(b"", final=True), False, True
                return
            last = data.endswith(b"\n")
            yield decoder.decode(data[:-1] if last else data, final=last), first, last
            first = last


def binary_pieces(
    piece: Piece, *, cwd: str | None, env: Mapping[str, str] | None, budget: embedded.Budget | None = None
) -> Iterator[Piece]:
    """A binary file's whole content, read by its object id in overlapping chunks.

    Latin-1 maps every byte to one character: text secrets inside binary formats stay findable.
    Text stored as UTF-16 (git sees its NULs and calls it binary) is also decoded as such, and
    every shorter run of ASCII stored as UTF-16 or UTF-32 is read too (``wide``).
    """
    if piece.blob is None or not _FULL_OID_RE.match(piece.blob) or set(piece.blob) == {"0"}:
        raise ObjectError(f"no object id for binary file {piece.path!r} in commit {piece.commit[:12]}")
    budget = embedded.Budget() if budget is None else budget
    first = True
    is_packed = False
    finder = embedded.Finder(budget)
    png: _PngReading | None = None
    for chunk, new in _new_bytes(blob_chunks(piece.blob, cwd=cwd, env=env)):
        if first:
            is_packed = packed.looks_packed(chunk[:1024])
            finder.entries = packed.archive_kind(chunk[:1024]) != "zip"  # packed reads a zip's own
            png = _PngReading(finder) if chunk.startswith(embedded.PNG_SIGNATURE) else None
        for text in chunk_views(chunk, first):
            yield Piece(piece.commit, "binary", text, path=piece.path, blob=piece.blob)
        parts = finder.feed(new) if png is None else png.feed(new)
        yield from _stream_pieces(piece.commit, piece.path, None, parts)
        first = False
    yield from _stream_pieces(piece.commit, piece.path, None, finder.end() if png is None else png.end())
    if is_packed:
        yield from packed_pieces(piece.commit, piece.path, piece.blob, cwd=cwd, env=env, budget=budget)


class _PngReading:
    """A PNG's streams: its image data joined (``embedded.PngLayout``), the frames of an
    animated one apart, and the file's other bytes in ``finder``; all on the file's one budget."""

    def __init__(self, finder: embedded.Finder) -> None:
        self.layout = embedded.PngLayout()
        self.finder = finder
        finder.outside = self.layout.outside
        self.image = embedded.Finder(finder.spend.push, skip=0, spend=finder.spend, outer=False)
        self.frames = embedded.Finder(finder.spend.push, skip=0, spend=finder.spend, outer=False)

    def feed(self, new: bytes) -> Iterator[packed.Part]:
        image, frames = self.layout.feed(new)
        yield from self.image.feed(image)
        yield from self.frames.feed(frames)
        yield from self.finder.feed(new)  # the one that reports a limit, after the others ran

    def end(self) -> Iterator[packed.Part]:
        yield from self.image.end()
        yield from self.frames.end()
        yield from self.finder.end()


def _new_bytes(chunks: Iterable[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """Each chunk of ``blob_chunks`` with the bytes it adds to the one before (without the
    ``OVERLAP`` it repeats)."""
    repeated = 0
    for chunk in chunks:
        yield chunk, chunk[repeated:]
        repeated = min(OVERLAP, len(chunk))


def packed_pieces(
    commit: str, path: str | None, blob: str, *, cwd: str | None, env: Mapping[str, str] | None,
    budget: embedded.Budget | None = None,
) -> Iterator[Piece]:
    """What a compressed file or an archive holds (``packed``): each member's name, its content
    (the views of ``chunk_views``, in bounded chunks like a binary file), and an ``archive-limit``
    piece for each limit hit (the scan turns it into a finding: the push is rejected)."""
    size = blob_size(blob, cwd=cwd, env=env)
    if size > packed.MAX_FILE:
        yield Piece(commit, "archive-limit", f"the file is larger than {packed.MAX_FILE // packed.MiB} MiB,"
                    " the most the gate opens", path=path)
        return
    budget = embedded.Budget() if budget is None else budget
    named: set[str] = set()
    for part in packed.unpack(read_blob(blob, cwd=cwd, env=env)):
        if part.limit is None and part.member is not None and part.member not in named:
            named.add(part.member)
            yield Piece(commit, "archive-name", part.member, path=path, member=part.member)
        yield from _parts_pieces(commit, path, part.member, [part])
        if part.data:
            # A member (or the decompressed file) can hold a stream after bytes of its own too.
            yield from _stream_pieces(commit, path, part.member, embedded.streams_in(part.data, budget))


def _parts_pieces(
    commit: str, path: str | None, member: str | None, parts: Iterable[packed.Part]
) -> Iterator[Piece]:
    """``archive`` pieces of what was found inside a compressed file or an archive (in bounded
    chunks, each read as ``chunk_views`` reads it; as ``member`` when inside one), and an
    ``archive-limit`` piece for a limit."""
    for part in parts:
        if part.limit is not None:
            yield Piece(commit, "archive-limit", part.limit, path=path)
            continue
        for start, chunk in _chunks(part.data):
            for text in chunk_views(chunk, start == 0):
                yield Piece(commit, "archive", text, path=path, member=member if part.member is None else part.member)


def _stream_pieces(
    commit: str, path: str | None, member: str | None, parts: Iterable[packed.Part]
) -> Iterator[Piece]:
    """``_parts_pieces`` for what streams found partway through a file inflate to, each chunk
    read as ``stream_views`` reads it. The texts of many small streams (a git pack's objects, a
    PDF's) go to the detector together, up to ``CHUNK`` characters at a time: one call each cost
    more than reading them."""
    batch: list[str] = []
    size = 0
    shown: str | None = member
    for part in parts:
        this = member if part.member is None else part.member
        if batch and (part.limit is not None or this != shown or size >= CHUNK):
            yield Piece(commit, "archive", "\n".join(batch), path=path, member=shown)
            batch, size = [], 0
        if part.limit is not None:
            yield Piece(commit, "archive-limit", part.limit, path=path)
            continue
        shown = this
        for _start, chunk in _chunks(part.data):
            for text in stream_views(chunk):
                batch.append(text)
                size += len(text)
    if batch:
        yield Piece(commit, "archive", "\n".join(batch), path=path, member=shown)


def _chunks(data: bytes) -> Iterator[tuple[int, bytes]]:
    """``data`` in chunks of ``CHUNK`` bytes and the ``OVERLAP`` after them (a secret across a
    boundary is whole in one), with their offsets."""
    if not data:
        return
    for start in range(0, max(len(data) - OVERLAP, 1), CHUNK):
        yield start, data[start:start + CHUNK + OVERLAP]


# First characters (as git's UTF-8 text diff shows them) of a compressed file or an archive that
# git took for text (no NUL in its first 8000 bytes, or a diff attribute): its blob is checked.
_ZLIB_FIRST = "\x08\x18(8HXhx"


def _may_be_packed_text(text: str) -> bool:
    if text.startswith(("\x1f", "PK\x03\x04", "\ufffd7zXZ", STRAY_BYTE + "7zXZ")) or "ustar" in text[:1024]:
        return True
    if text.startswith("BZh") and text[4:10] == "1AY&SY":
        return True
    if len(text) > 1 and text[0] in _ZLIB_FIRST:
        second = text[1]
        return second in ("\ufffd", STRAY_BYTE) or (ord(second) < 128 and (ord(text[0]) * 256 + ord(second)) % 31 == 0)
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


def _text_stream_pieces(
    piece: Piece, *, cwd: str | None, env: Mapping[str, str] | None, budget: embedded.Budget
) -> Iterator[Piece]:
    """The streams in a file git diffs as text whose added lines hold bytes that are not text:
    its blob is searched whole, as it is (the diff shows such bytes as U+FFFD)."""
    if piece.blob is None or not _FULL_OID_RE.match(piece.blob) or set(piece.blob) == {"0"}:
        raise ObjectError(f"no object id for file {piece.path!r} in commit {piece.commit[:12]}")
    finder = embedded.Finder(budget)
    for _chunk, new in _new_bytes(blob_chunks(piece.blob, cwd=cwd, env=env)):
        yield from _stream_pieces(piece.commit, piece.path, None, finder.feed(new))
    yield from _stream_pieces(piece.commit, piece.path, None, finder.end())


def _lines_stream_pieces(piece: Piece, budget: embedded.Budget) -> Iterator[Piece]:
    """The streams in added lines that are all text (a deflate stream can be written in printable
    bytes only): the lines' UTF-8 bytes are the file's, so they are searched as they are."""
    yield from _stream_pieces(piece.commit, piece.path, None,
                             embedded.streams_in(piece.text.encode("utf-8", "surrogateescape"), budget, skip=0))


def _lines_encoded_pieces(piece: Piece, budget: embedded.Budget) -> Iterator[Piece]:
    """What compressed streams written as base64 or hex in added lines hold
    (``objects.encoded_runs``), as ``archive`` pieces on the line the run starts on. The
    runs of one piece are searched on one budget as a file's (drawn from the push's)."""
    text = piece.text.encode("utf-8", "surrogateescape")
    at = [0]  # the offset of the run being searched: its parts come before the next run is read

    def sources() -> Iterator[bytes]:
        for offset, data in objects.encoded_runs(text):
            at[0] = offset
            yield data

    line = piece.line or 1
    for part in embedded.streams_in_each(sources(), budget):
        if part.limit is not None:
            yield Piece(piece.commit, "archive-limit", part.limit, path=piece.path)
            continue
        where = line + text.count(b"\n", 0, at[0])
        for _start, chunk in _chunks(part.data):
            found = "\n".join(stream_views(chunk))
            if found:
                yield Piece(piece.commit, "archive", found, path=piece.path, line=where)


def stream_views(chunk: bytes) -> list[str]:
    """The texts one chunk of what a stream found partway through a file inflates to is read
    as: its runs of text, also those stored wide (``embedded.stream_texts``)."""
    return embedded.stream_texts(chunk)


def chunk_views(chunk: bytes, first: bool) -> list[str]:
    """The texts one chunk of a binary file or an archive member is scanned as: its bytes as
    Latin-1, UTF-16 readings when it is mostly UTF-16, and its runs of wide ASCII (``wide``)."""
    views = [chunk.decode("latin-1"), *utf16_views(chunk, first)]
    runs = wide.wide_text(chunk)
    return [*views, runs] if runs else views


def utf16_views(data: bytes, first: bool) -> list[str]:
    """UTF-16 readings of ``data`` when it looks like UTF-16 text (a byte order mark, or NULs in
    at least a quarter of its odd or even bytes); both alignments, so a string that starts at
    an odd offset, or big-endian text, reads right in one of them."""
    bom = first and data[:2] in (b"\xff\xfe", b"\xfe\xff")
    half = max(len(data) // 2, 1)
    if not bom and max(data[0::2].count(0), data[1::2].count(0)) * 4 < half:
        return []
    return [data.decode("utf-16-le", errors="replace"), data[1:].decode("utf-16-le", errors="replace")]
