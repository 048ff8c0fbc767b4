"""``egress.jsonl``, bounded: the first part (``.first``), one earlier part (``.1``) and the
current file, each at most ``LIMIT``.

An agent that sends a few hundred refused requests a second writes about half a gigabyte of
decisions an hour, into the sidecar's writable layer on the host's disk. The newest decisions
are what an operator follows; the first ones are how a bottle went wrong (the injected page, the
first blocked exfiltration), and a flood must not push those out: the first part is kept whole,
and only the parts between it and the newest two are dropped.

Every part after the first begins with a marker line (``PART_EVENT``) giving the byte at which
it begins in the whole log, as if nothing had been dropped, and how many bytes were dropped
before it. Readers that ship the log by byte offset (``supervise ctl events``) stay on the same
offsets across a rotation, and readers that show it can say where a gap is.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

LIMIT = 32 * 1024 * 1024
FIRST = ".first"
EARLIER = ".1"
PART_EVENT = "egress-log-part"


def part_marker(line: bytes | str) -> dict[str, Any] | None:
    """The marker a part begins with, from its first line; None if the line is not one."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):  # torn, not UTF-8, or nested too deep to parse
        return None
    if not isinstance(record, dict) or record.get("event") != PART_EVENT:
        return None
    starts, dropped = record.get("starts_at"), record.get("dropped_bytes", 0)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (starts, dropped)):
        return None
    return record


def _first_line(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.readline(4096)
    except FileNotFoundError:
        return b""


class LogFile:
    """Appends whole lines; when a line would take the file past ``limit``, the file becomes the
    first part (the first time) or the earlier part (replacing, and so dropping, the one before),
    and a new one starts with its marker."""

    def __init__(self, path: Path, limit: int = LIMIT) -> None:
        self.path = path
        self.limit = limit
        marker = part_marker(_first_line(path))
        self._starts_at = marker["starts_at"] if marker else 0
        self._dropped = marker["dropped_bytes"] if marker else 0
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
        first = self._sibling(FIRST)
        if first.exists():
            earlier = self._sibling(EARLIER)
            try:
                self._dropped += earlier.stat().st_size
            except FileNotFoundError:
                pass
            os.replace(self.path, earlier)
        else:
            os.replace(self.path, first)
        self._starts_at += self._size
        self._file = open(self.path, "a", encoding="utf-8", buffering=1)
        marker = {"event": PART_EVENT, "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "starts_at": self._starts_at, "dropped_bytes": self._dropped}
        line = json.dumps(marker, separators=(",", ":")) + "\n"
        self._file.write(line)
        self._size = len(line.encode("utf-8"))

    def _sibling(self, suffix: str) -> Path:
        return self.path.with_name(self.path.name + suffix)

    def close(self) -> None:
        self._file.close()
