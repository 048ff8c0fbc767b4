"""``Piece``: one text to scan, knowing where in the push it came from (its own module so that
``patch``, ``objects`` and ``scan`` can all use it without importing each other)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PieceKind = Literal[
    "message", "identity", "header", "path", "lines", "binary", "tag", "tagger", "tag-header", "ref",
    "archive", "archive-name", "archive-limit", "log-limit", "message-stream", "tag-stream", "message-limit",
]


@dataclass(frozen=True)
class Piece:
    """Text to scan; ``line`` is the line number of its first line (in the file or message).

    ``path`` is the file's path, or for a ``header``/``tag-header`` the header's (shown) name.
    ``blob`` is the object id of a binary file's new content (read later, by id: a path from
    git's text output may not name the file exactly); it takes no part in comparisons.

    Inside a compressed file or an archive (``packed``): an ``archive`` piece is content found
    inside, ``member`` the archive member it came from (None: the decompressed file itself;
    ``line`` then is the line a stream written as base64 or hex in added lines starts on, when it
    is one); an ``archive-name`` piece is a member's name; an ``archive-limit`` piece's text is
    the reason the file could not be read whole (written by the gate, not taken from the push). A
    ``log-limit`` piece says the same of the push's diff as a whole (``patch.MAX_LOG_BYTES``).
    A ``message-stream`` (``tag-stream``) piece is what a compressed stream in a commit (tag)
    message holds, and a ``message-limit`` piece says such streams could not all be read
    (``path`` is then "commit message" or "tag message").
    """

    commit: str
    kind: PieceKind
    text: str
    path: str | None = None
    line: int | None = None
    blob: str | None = field(default=None, compare=False, repr=False)
    member: str | None = None
