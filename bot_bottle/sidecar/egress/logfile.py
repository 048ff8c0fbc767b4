"""``egress.jsonl``, bounded: the current file and one earlier part (``.1``), each at most ``LIMIT``.

An agent that sends a few hundred refused requests a second writes about half a gigabyte of
decisions an hour, into the sidecar's writable layer on the host's disk. The newest decisions
are what an operator reads; the oldest go once two parts are full.
"""

from __future__ import annotations

import os
from pathlib import Path

LIMIT = 32 * 1024 * 1024
EARLIER = ".1"


class LogFile:
    """Appends whole lines; when a line would take the file past ``limit``, the file becomes the
    earlier part (replacing the one before) and a new one starts."""

    def __init__(self, path: Path, limit: int = LIMIT) -> None:
        self.path = path
        self.limit = limit
        self._file = open(path, "a", encoding="utf-8", buffering=1)
        self._size = self._file.tell()

    def write(self, line: str) -> None:
        size = len(line.encode("utf-8"))
        if self._size and self._size + size > self.limit:
            self._rotate()
        self._file.write(line)
        self._size += size

    def _rotate(self) -> None:
        self._file.close()
        os.replace(self.path, self.path.with_name(self.path.name + EARLIER))
        self._file = open(self.path, "a", encoding="utf-8", buffering=1)
        self._size = 0

    def close(self) -> None:
        self._file.close()
