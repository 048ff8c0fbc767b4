"""What a body or file part holds underneath: compression the sender did not declare (gzip,
zlib, bzip2 or xz by magic number, several layers deep; raw deflate, which has none, by trying)
and the entries of tar and zip archives.

An upload of a package (an npm tarball, a wheel, a ``.tar.gz`` sdist) carries its files
compressed: scanned as sent, a ``.env`` inside is invisible. ``expand`` undoes the layers and
opens the archive with the standard library, under strict limits: at most ``depth`` layers
(compression or archive), at most ``budget`` bytes produced in all, at most ``MAX_ENTRIES``
entries per archive. Whatever cannot be read whole within them is reported in ``limits`` (the
caller turns each into a ``scan-limit`` finding and blocks): content that could not be read must
not leave unscanned. Encrypted zip entries are skipped, like any ciphertext.

A layer found by its magic number is only taken when it decodes completely (checksum included)
or fills the budget: text that happens to start like a zlib header (``x^``) must keep being
scanned as itself. A corrupt stream's decodable prefix is kept as an extra content instead.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

try:  # optional modules of a Python build: without them those formats are scanned as sent
    import bz2
except ImportError:  # pragma: no cover - depends on the build
    bz2 = None  # type: ignore[assignment]
try:
    import lzma
except ImportError:  # pragma: no cover - depends on the build
    lzma = None  # type: ignore[assignment]

_FORMAT_ERRORS: tuple[type[Exception], ...] = (lzma.LZMAError,) if lzma is not None else ()

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
MAX_DEPTH = 4  # compression and archive layers, in all
MAX_ENTRIES = 2000  # entries read per archive; more is a scan-limit
_FEED = 64 * 1024  # input fed per step, so a corrupt stream keeps what decoded before the error


@dataclass
class Expanded:
    """``data`` with its undeclared compression undone, and what else was found inside."""

    data: bytes
    layers: list[str] = field(default_factory=list)  # compression undone on ``data``, outermost first
    contents: list[bytes] = field(default_factory=list)  # archive entries, partial streams
    limits: list[str] = field(default_factory=list)  # reasons something was not read whole
    truncated: bool = False  # a layer filled the budget: ``data`` is its first ``budget`` bytes


class _Budget:
    def __init__(self, size: int) -> None:
        self.left = size


def compression_of(data: bytes) -> str | None:
    """``"gzip"``, ``"zlib"``, ``"bzip2"`` or ``"xz"`` when ``data`` starts with that format's
    header, else None."""
    if data[:2] == GZIP_MAGIC:
        return "gzip"
    # zlib: deflate with a window of at most 32 KiB, and a header checksum (1 in 31 by chance).
    if len(data) > 2 and data[0] & 0x0F == 8 and data[0] >> 4 <= 7 and (data[0] * 256 + data[1]) % 31 == 0:
        return "zlib"
    if bz2 is not None and data[:3] == b"BZh" and data[4:10] == b"1AY&SY":
        return "bzip2"
    if lzma is not None and data[:6] == b"\xfd7zXZ\x00":
        return "xz"
    return None


def _decompressor(kind: str) -> Any:
    if kind == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind == "zlib":
        return zlib.decompressobj(zlib.MAX_WBITS)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    return lzma.LZMADecompressor(lzma.FORMAT_XZ)


def expand(data: bytes, budget: int, depth: int = MAX_DEPTH) -> Expanded:
    """Undo compression layers found in ``data`` and open an archive beneath them (see module);
    ``data`` with no header of any known kind is also tried as raw deflate (``raw_deflate``)."""
    out = Expanded(data)
    left = _Budget(budget)
    _expand_into(out, data, left, depth, top=True)
    if not (out.layers or out.contents or out.limits) and _archive_kind(data) is None:
        _raw_deflate_into(out, data, left, depth)
    return out


# Past a raw deflate stream's end, at most this much may follow: a zlib (4) or gzip (8) trailer
# cut loose with its header. Random bytes that happen to end a deflate stream leave the rest.
_RAW_DEFLATE_SLACK = 8


def raw_deflate(data: bytes, limit: int) -> tuple[bytes, bool] | None:
    """``data`` inflated as a raw deflate stream (no header: ``zlib.compress(x)[2:-4]``, a zip
    entry's bytes), as ``(output, filled)``: None unless it decodes to its very end (or fills
    ``limit``, which random bytes never do). There is no magic number to find it by: a wrong
    guess fails within a few bytes, so trying costs little."""
    if len(data) < 2:
        return None
    decomp = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = decomp.decompress(data, limit + 1)
    except zlib.error:
        return None
    if len(out) > limit:
        return out[:limit], True
    if not decomp.eof or len(decomp.unused_data) > _RAW_DEFLATE_SLACK or not out:
        return None
    return out, False


def _raw_deflate_into(out: Expanded, data: bytes, budget: _Budget, depth: int) -> None:
    found = raw_deflate(data, budget.left)
    if found is None:
        return
    inflated, filled = found
    budget.left -= len(inflated)
    out.contents.append(inflated)
    if filled:
        out.limits.append("compressed content larger than the scan limit")
        return
    _expand_into(out, inflated, budget, depth - 1, top=False)


def _expand_into(out: Expanded, data: bytes, budget: _Budget, depth: int, *, top: bool) -> None:
    while depth > 0:
        kind = compression_of(data)
        if kind is None:
            break
        depth -= 1
        inflated, complete, filled = _inflate(data, kind, budget)
        if not (complete or filled):
            if inflated:
                out.contents.append(inflated)  # a corrupt stream: what decoded before the error
            break
        data = inflated
        if top:
            out.data = data
            out.layers.append(kind)
        else:
            out.contents.append(data)
        if filled:
            if top:
                out.truncated = True
            else:
                out.limits.append("compressed content larger than the scan limit")
            return
    if depth <= 0:
        if compression_of(data) or _archive_kind(data):
            out.limits.append("compression or archives nested too deeply")
        return
    kind = _archive_kind(data)
    if kind is None:
        return
    entries = _tar_entries(data, budget, out) if kind == "tar" else _zip_entries(data, budget, out)
    for entry in entries:
        out.contents.append(entry)
        _expand_into(out, entry, budget, depth - 1, top=False)


def _inflate(data: bytes, kind: str, budget: _Budget) -> tuple[bytes, bool, bool]:
    """``(output, ended cleanly, filled the budget)``; concatenated gzip (bzip2, xz) members are
    one stream, and bytes after the last one follow the output as sent: whoever reads the body
    as it is (an upstream storing it) reads them, so they are scanned too."""
    chunks: list[bytes] = []
    size = 0
    rest = data
    after = b""
    decomp = _decompressor(kind)
    try:
        while True:
            position = 0
            while position < len(rest) and not decomp.eof:
                piece = rest[position : position + _FEED]
                saved = decomp.copy() if hasattr(decomp, "copy") else None
                try:
                    out = decomp.decompress(piece, budget.left - size + 1)
                except zlib.error:
                    if saved is None:
                        raise
                    # A bad checksum or a cut stream: the output of the failing call is lost;
                    # fed again byte by byte, all that decodes before the fault is kept.
                    chunks.append(_salvage(saved, piece, budget.left - size))
                    raise
                position += _FEED
                chunks.append(out)
                size += len(out)
                if size > budget.left or _more_pending(decomp):
                    kept = b"".join(chunks)[: budget.left]
                    budget.left = 0
                    return kept, False, True
            if not decomp.eof:
                break
            # Past the end only unused_data holds the rest (after a call cut by max_length,
            # CPython's zlib leaves a copy of it in unconsumed_tail too: never read from there).
            tail = decomp.unused_data + rest[position:]
            if compression_of(tail) != kind or kind == "zlib":
                after = tail
                break
            rest, decomp = tail, _decompressor(kind)
    except (zlib.error, OSError, EOFError, ValueError) + _FORMAT_ERRORS:
        pass
    produced = b"".join(chunks)
    budget.left -= len(produced)
    if after and decomp.eof:
        # Not charged to the budget: it is part of the input (already counted), not output a
        # bomb could inflate.
        produced += after
    return produced, decomp.eof, False


def _salvage(decomp: Any, piece: bytes, limit: int) -> bytes:
    out: list[bytes] = []
    size = 0
    try:
        for k in range(len(piece)):
            data = decomp.decompress(piece[k : k + 1], max(1, limit - size))
            out.append(data)
            size += len(data)
            if size >= limit:
                break
    except zlib.error:
        pass
    return b"".join(out)[:limit]


def _more_pending(decomp: Any) -> bool:
    """The decompressor stopped at the output limit with input left over (a bomb)."""
    if hasattr(decomp, "unconsumed_tail"):
        return bool(decomp.unconsumed_tail)
    return not decomp.eof and not decomp.needs_input


def _archive_kind(data: bytes) -> str | None:
    if data[:4] == ZIP_MAGIC:
        return "zip"
    if data[257:262] == b"ustar":
        return "tar"
    return None


def _tar_entries(data: bytes, budget: _Budget, out: Expanded) -> list[bytes]:
    entries: list[bytes] = []
    try:
        tarfile.TarInfo.frombuf(data[:512], "utf-8", "surrogateescape")
    except tarfile.TarError:
        return entries  # "ustar" at offset 257 by chance, without a valid header: not a tar
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for count, member in enumerate(archive):
                if count >= MAX_ENTRIES:
                    out.limits.append("archive with too many entries")
                    break
                if not member.isfile() or member.size == 0:
                    continue
                if member.size > budget.left:
                    out.limits.append("archive larger than the scan limit")
                    break
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                content = handle.read(member.size)
                budget.left -= len(content)
                entries.append(content)
    except (tarfile.TarError, OSError, EOFError, ValueError):
        out.limits.append("archive could not be read")
    return entries


def _zip_entries(data: bytes, budget: _Budget, out: Expanded) -> list[bytes]:
    entries: list[bytes] = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ENTRIES:
                out.limits.append("archive with too many entries")
                infos = infos[:MAX_ENTRIES]
            for info in infos:
                if info.is_dir() or info.flag_bits & 0x1:
                    continue  # encrypted: ciphertext, as opaque as any other
                with archive.open(info) as handle:
                    # The declared size is the sender's word: read one byte more than is left.
                    content = handle.read(budget.left + 1)
                if len(content) > budget.left:
                    out.limits.append("archive larger than the scan limit")
                    break
                budget.left -= len(content)
                entries.append(content)
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, ValueError, zlib.error,
            RuntimeError):
        out.limits.append("archive could not be read")
    return entries
