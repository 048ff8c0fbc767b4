"""git's pkt-line framing, just enough to answer a ref advertisement with an error git prints.

A smart-HTTP client reads ``info/refs`` as pkt-lines; an ``ERR <text>`` packet there makes it stop
with ``fatal: remote error: <text>``, which is how the gate tells the agent that the upstream is
unreachable instead of serving what it has.
"""

from __future__ import annotations

FLUSH = b"0000"
MAX_PAYLOAD = 65516  # LARGE_PACKET_DATA_MAX in git


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
