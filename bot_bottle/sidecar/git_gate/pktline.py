"""git's pkt-line framing, just enough for what the gate says and reads itself.

Said: an ``ERR <text>`` packet in answer to ``info/refs`` or to an RPC makes the client stop with
``fatal: remote error: <text>`` (how the gate tells the agent that the upstream is unreachable, or
that an object it asked for is not served).

Read: the first section of a request (up to its first flush), as git's own reader would see it:
an upload-pack request's ``want`` and ``shallow`` lines (every object the client asks for is named
there, and nowhere else), a receive-pack request's ref updates; and an upload-pack request's
second section, its ``have`` lines up to a flush or ``done`` (all that upload-pack reads of it).
Lines naming an object can be left out of what git is handed (``without``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

FLUSH = b"0000"
MAX_PAYLOAD = 65516  # LARGE_PACKET_DATA_MAX in git
MAX_PACKET = MAX_PAYLOAD + 4
SPECIAL = 3  # lengths 0000-0002: flush, delim, response-end (git's reader ends a section on each)


class ProtocolError(ValueError):
    """The request is not pkt-lines git would read; git itself would refuse it."""


def encode(payload: bytes | str) -> bytes:
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    if len(data) > MAX_PAYLOAD:
        data = data[:MAX_PAYLOAD]
    return f"{len(data) + 4:04x}".encode("ascii") + data


def error_advertisement(service: str, message: str) -> bytes:
    """The body of an ``info/refs?service=...`` answer that makes the client die with ``message``.

    The ``# service=`` header keeps protocol-v0 clients on the smart path (they check it before
    reading refs); v2 clients accept it too and then read the ERR packet as the first ref line.
    """
    one_line = " ".join(message.split())
    return encode(f"# service={service}\n") + FLUSH + encode(f"ERR {one_line}\n")


def sideband_error(message: str) -> bytes:
    """An ERR packet for a POST answer (upload-pack / receive-pack result)."""
    return encode(f"ERR {' '.join(message.split())}\n")


def push_error(message: str, sideband: bool) -> bytes:
    """A receive-pack result that makes the client die with ``message``. A push that asked for
    side-band reads the answer through it: the ERR packet goes inside band 1 (git reports an
    ERR packet sent outside any band as a bad band), shortened to fit side-band's 1000 bytes."""
    packet = sideband_error(message[:900])
    return encode(b"\x01" + packet) if sideband else packet


def capabilities(payloads: Iterable[bytes]) -> set[str]:
    """The capabilities a push asks for: what follows the NUL of its first ref update."""
    for payload in payloads:
        if b"\0" in payload:
            return set(payload.split(b"\0", 1)[1].decode("ascii", "replace").split())
    return set()


@dataclass(frozen=True)
class Section:
    """A request's first section: its packets' payloads (newline kept), and every byte read to
    find its end (the section and whatever came after it in the same reads), which must still be
    handed on, first, to the git that serves the request."""

    payloads: tuple[bytes, ...]
    consumed: bytes
    end: int  # where in ``consumed`` the section (with the packet that ended it) ends

    @property
    def data(self) -> bytes:
        """The section's own bytes, its ending packet included."""
        return self.consumed[:self.end]

    @property
    def after(self) -> bytes:
        """What was read past the section's end."""
        return self.consumed[self.end:]


def read_section(chunks: Iterator[bytes], limit: int, *, until_done: bool = False) -> Section:
    """Read ``chunks`` up to the end of the first section: a flush (or delim, response-end)
    packet, or the end of the input, where git's reader stops too; with ``until_done``, also
    just after a ``done`` line (where upload-pack stops reading its haves). More than ``limit``
    bytes before that end, or a malformed length, is a ``ProtocolError``."""
    buffer = bytearray()
    payloads: list[bytes] = []
    at = 0
    while True:
        while (found := _next_packet(buffer, at)) is not None:
            payload, at = found
            if payload is None:
                return Section(tuple(payloads), bytes(buffer), at)
            payloads.append(payload)
            if until_done and _chomp(payload) == b"done":
                return Section(tuple(payloads), bytes(buffer), at)
        if len(buffer) > limit:
            raise ProtocolError(f"the request's section is longer than {limit} bytes")
        data = next(chunks, None)
        if data is None:
            if at != len(buffer):
                raise ProtocolError("the request ends in the middle of a packet")
            return Section(tuple(payloads), bytes(buffer), at)
        buffer += data


def _chomp(payload: bytes) -> bytes:
    """A payload as upload-pack compares it: one trailing newline dropped."""
    return payload[:-1] if payload.endswith(b"\n") else payload


def _next_packet(buffer: bytearray, at: int) -> tuple[bytes | None, int] | None:
    """(payload, or None for a flush/delim/response-end; where the next packet starts), or None
    while ``buffer`` does not hold the whole packet yet."""
    if len(buffer) - at < 4:
        return None
    head = bytes(buffer[at:at + 4])
    if not re.fullmatch(rb"[0-9a-fA-F]{4}", head):  # git reads the length as hex, either case
        raise ProtocolError(f"bad packet length {head!r}")
    length = int(head, 16)
    if length < SPECIAL:
        return None, at + 4
    if length < 4 or length > MAX_PACKET:
        raise ProtocolError(f"bad packet length {length}")
    if len(buffer) - at < length:
        return None
    return bytes(buffer[at + 4:at + length]), at + length


def wanted_ids(payloads: Iterable[bytes], hexsz: int) -> list[str]:
    """The object ids of the ``want`` lines, lower case, in order, as upload-pack parses them:
    ``want `` and then exactly ``hexsz`` hex digits of either case (whatever follows is read as
    capabilities). A ``want`` line that does not parse is a ``ProtocolError`` (git dies on it)."""
    pattern = re.compile(rb"want ([0-9a-fA-F]{%d})" % hexsz)
    out = []
    for payload in payloads:
        if not payload.startswith(b"want"):
            continue
        match = pattern.match(payload)
        if match is None:
            raise ProtocolError(f"malformed want line {payload[:80]!r}")
        out.append(match[1].decode("ascii").lower())
    return out


def named_ids(payloads: Iterable[bytes], keyword: str, hexsz: int) -> list[str]:
    """The object ids of the ``<keyword> <id>`` lines (``have``, ``shallow``), lower case, in
    order, as upload-pack parses them. A line that does not parse is skipped: git dies on it
    before it looks any object up."""
    pattern = re.compile(rb"%s ([0-9a-fA-F]{%d})" % (keyword.encode("ascii"), hexsz))
    return [match[1].decode("ascii").lower() for payload in payloads if (match := pattern.match(payload))]


def without(data: bytes, keyword: str, hexsz: int, dropped: set[str]) -> bytes:
    """``data`` (whole packets, as read) less each ``<keyword> <id>`` packet whose id is in
    ``dropped``; every other packet is kept byte for byte."""
    if not dropped:
        return data
    pattern = re.compile(rb"%s ([0-9a-fA-F]{%d})" % (keyword.encode("ascii"), hexsz))
    buffer = bytearray(data)
    kept = bytearray()
    at = 0
    while (found := _next_packet(buffer, at)) is not None:
        payload, end = found
        match = pattern.match(payload) if payload is not None else None
        if match is None or match[1].decode("ascii").lower() not in dropped:
            kept += data[at:end]
        at = end
    if at != len(data):
        raise ProtocolError("a section ends in the middle of a packet")
    return bytes(kept)
