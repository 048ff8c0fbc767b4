"""A request's body as it arrives: a fixed length or chunked, and a fetch's gzip undone.

Every reader here yields the body piece by piece and raises ``CutShort`` when the client ends it
before its declared end (or ``ValueError`` for a malformed length or chunk, ``OSError`` for a
connection reset or a read past the socket's timeout). The caller decides what that stops.

git gzips a fetch request of more than 1 KiB (remote-curl.c); the gate inflates it itself, so
the ``want`` lines it checks are exactly the bytes upload-pack then reads (git http-backend gets
them unencoded). Like git's http-backend it reads one gzip member and ignores anything after it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import IO

CHUNK = 64 * 1024
GZIP_ENCODINGS = ("gzip", "x-gzip")  # what git http-backend inflates


class CutShort(Exception):
    """The request body ended before its declared end."""


class TooLarge(ValueError):
    """A gzip body inflates past the limit the caller set."""


def pieces(rfile: IO[bytes], content_length: str | None, transfer_encoding: str) -> Iterator[bytes]:
    """The body's bytes as they arrive (nothing when the request has no body)."""
    if "chunked" in transfer_encoding.lower():
        return chunked(rfile)
    if content_length is not None:
        return fixed(rfile, int(content_length))
    return iter(())


def fixed(rfile: IO[bytes], length: int) -> Iterator[bytes]:
    if length < 0:
        raise ValueError("negative Content-Length")
    remaining = length
    # read1: what has arrived, at once (read would wait for a whole CHUNK): the gate acts on a
    # request's first packets as soon as they are there, as git does.
    read = getattr(rfile, "read1", rfile.read)
    while remaining > 0:
        data = read(min(CHUNK, remaining))
        if not data:
            raise CutShort()
        yield data
        remaining -= len(data)


def chunked(rfile: IO[bytes]) -> Iterator[bytes]:
    while True:
        size_line = rfile.readline(1024)
        if not size_line:
            raise CutShort()
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return
        yield from fixed(rfile, size)
        if not rfile.readline(1024):  # the CRLF after each chunk
            raise CutShort()


def gunzip(compressed: Iterator[bytes], limit: int) -> Iterator[bytes]:
    """The first gzip member of ``compressed``, inflated, at most ``limit`` bytes of it (past
    that: ``TooLarge``; a few KiB of gzip can inflate to gigabytes). A stream that ends inside
    the member is ``CutShort``; a corrupt one a ``ValueError``."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    total = 0
    for data in compressed:
        while not inflater.eof:
            try:
                out = inflater.decompress(data, CHUNK)
            except zlib.error as exc:
                raise ValueError(f"the gzip body is corrupt: {exc}") from exc
            data = inflater.unconsumed_tail
            total += len(out)
            if total > limit:
                raise TooLarge(f"the request inflates to more than {limit} bytes")
            if out:
                yield out
            if not data and len(out) < CHUNK:
                break  # all this input inflated: a full output buffer may have more to give
        if inflater.eof:
            return
    raise CutShort()
