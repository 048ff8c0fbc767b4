"""Compressed files and archives a push adds, opened so that what is inside is scanned too.

A file that starts with a known magic number (gzip, zlib, bzip2, xz; a zip or tar archive) is
read whole and opened with the DLP engine's ``archives.expand``, under its limits (layers deep,
entries per archive) and a budget of bytes produced chosen for repositories (``BUDGET``). The
members of an archive are also read here one by one with their names, so a hit is reported as
the archive's path plus the member's name (the name is scanned like any other text the push adds;
one that carries a finding is never shown).

Whatever cannot be read whole within the limits (a file larger than ``MAX_FILE``, an expansion
over ``BUDGET``, too many entries, nesting too deep, a damaged stream or archive) becomes a
``Part`` with a ``limit``: the caller turns it into a ``scan-limit`` finding, which rejects the
push. Content that could not be checked must not leave unchecked.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

MiB = 1024 * 1024
# A pushed file read whole to be opened: more than this is refused, not skipped. Well above what
# repositories keep as fixtures (GitHub already warns at 50 MB), small enough for the sidecar.
MAX_FILE = 32 * MiB
# Bytes produced by undoing compression and reading members, in all, per file (the engine counts
# a .tar.gz's tar and then its members: about 32 MiB of files). A .tar.gz fixture or a zip of
# images in a repository is rarely more; an expansion past this is a bomb or a data dump the gate
# cannot check in reasonable time and memory.
BUDGET = 64 * MiB
# Strong magic numbers only: a damaged stream that starts with one is refused. zlib's two-byte
# header also occurs by chance (1 in 31 of some byte pairs): such a file is scanned as it is.
_STRONG = ("gzip", "bzip2", "xz")


@dataclass(frozen=True)
class Part:
    """Content found inside a packed file, or a reason it could not all be read."""

    member: str | None = None  # the archive member it came from (None: the decompressed file)
    data: bytes = b""
    limit: str | None = None  # set: a scan-limit (nothing else in this part)


def _archives():  # type: ignore[no-untyped-def]
    try:
        from bot_bottle.sidecar.dlp import archives
    except ImportError:  # pragma: no cover - the engine ships with the gate
        return None
    return archives


def archive_kind(data: bytes) -> str | None:
    """``"zip"`` or ``"tar"`` when ``data`` starts like one."""
    archives = _archives()
    if archives is not None and data[:4] == archives.ZIP_MAGIC:
        return "zip"
    if data[257:262] == b"ustar":
        return "tar"
    return None


def looks_packed(head: bytes) -> bool:
    """``head`` (a file's first bytes, 512 or more) starts with a compression or archive magic."""
    archives = _archives()
    if archives is None:
        return head[:2] == b"\x1f\x8b" or head[:4] == b"PK\x03\x04" or head[257:262] == b"ustar"
    return archives.compression_of(head) is not None or archive_kind(head) is not None


def unpack(data: bytes, *, budget: int | None = None) -> Iterator[Part]:
    """What ``data`` holds under its compression and in its archive (see module). When a limit
    is hit only the limits are given: the file is refused whatever else it holds, and a bomb is
    not scanned for nothing."""
    budget = BUDGET if budget is None else budget
    archives = _archives()
    if archives is None:
        yield Part(limit="compressed files and archives cannot be opened here (no DLP engine)")
        return
    kind = archives.compression_of(data)
    expanded = archives.expand(data, budget, archives.MAX_DEPTH)
    limits = [_explain(reason, budget, archives) for reason in dict.fromkeys(expanded.limits)]
    if expanded.truncated:
        limits.append(f"it decompresses to more than {budget // MiB} MiB, the scan limit")
    if kind in _STRONG and not expanded.layers:
        limits.append(f"its {kind} data could not be read whole (damaged or cut short)")
    if limits:
        for limit in limits:
            yield Part(limit=limit)
        return
    inner = expanded.data if expanded.layers else data
    if archive_kind(inner) is None:
        # Compression only (or nothing to open): the decompressed file, and whatever a damaged
        # stream or an archive nested below still gave.
        if expanded.layers:
            yield Part(None, expanded.data)
        for content in expanded.contents:
            yield Part(None, content)
        return
    # An archive: read again member by member, with names (expand's own reading of it, above,
    # stands for the limits; both read the same members under the same rules).
    depth = archives.MAX_DEPTH - len(expanded.layers) - 1
    left = budget
    members = _tar_members(inner) if archive_kind(inner) == "tar" else _zip_members(inner)
    try:
        for count, (name, read) in enumerate(members):
            if count >= archives.MAX_ENTRIES:
                yield Part(limit=_explain("archive with too many entries", budget, archives))
                return
            content = read(left + 1)
            if len(content) > left:
                yield Part(limit=_explain("archive larger than the scan limit", budget, archives))
                return
            left -= len(content)
            yield Part(name, content)
            if depth <= 0:
                continue
            nested = archives.expand(content, left, depth)
            if nested.limits or nested.truncated:  # not expected: the first reading passed
                yield Part(limit=_explain((nested.limits or ["archive larger than the scan limit"])[0], budget, archives))
                return
            left -= sum(map(len, nested.contents)) + (len(nested.data) if nested.layers else 0)
            if nested.layers:
                yield Part(name, nested.data)
            for more in nested.contents:
                yield Part(name, more)
            left = max(left, 0)
    except (tarfile.TarError, zipfile.BadZipFile, NotImplementedError, OSError, EOFError, ValueError, zlib.error,
            RuntimeError):
        yield Part(limit="the archive could not be read")


def _explain(reason: str, budget: int, archives) -> str:  # type: ignore[no-untyped-def]
    """The engine's reason, with the limit's value where it has one."""
    if "too many entries" in reason:
        return f"{reason}: more than {archives.MAX_ENTRIES} in one archive"
    if "larger than the scan limit" in reason:
        return f"{reason}: more than {budget // MiB} MiB expanded"
    if "nested too deeply" in reason:
        return f"{reason}: more than {archives.MAX_DEPTH} layers"
    return reason


def _tar_members(data: bytes) -> Iterator[tuple[str, Callable[[int], bytes]]]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        for member in archive:
            if not member.isfile() or member.size == 0:
                continue
            handle = archive.extractfile(member)
            if handle is None:
                continue
            yield member.name, handle.read


def _zip_members(data: bytes) -> Iterator[tuple[str, Callable[[int], bytes]]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            if info.is_dir() or info.flag_bits & 0x1:
                continue  # encrypted: ciphertext, skipped like the engine does
            with archive.open(info) as handle:
                yield info.filename, handle.read
