"""The attackers' ears: a server that records every packet or request it receives, as JSON lines.

Runs inside the test's own "attacker" containers (``evil.example``, the fake cloud metadata
server, the allowed host whose logs show what leaked). Standard library only.

TCP ports (HTTP when the bytes look like HTTP, else raw): every request (or raw connection) is one record with its
raw bytes in base64. ``/redirect?to=URL`` answers 302 to URL (an open redirect); anything else
answers 200. UDP ports: every datagram is a record. ICMP: a raw socket sees echo requests (the
container keeps Docker's default NET_RAW).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import sys
import threading
from urllib.parse import parse_qs, urlsplit

NAME = os.environ.get("RECORDER_NAME", "recorder")
LOCK = threading.Lock()


def record(**fields: object) -> None:
    with LOCK:
        print(json.dumps({"at": NAME, **fields}), flush=True)


def _read_http(conn: socket.socket, first: bytes) -> bytes:
    data = first
    while b"\r\n\r\n" not in data and len(data) < 1 << 20:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            length = int(value.strip() or 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _answer(conn: socket.socket, raw: bytes) -> None:
    line = raw.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    target = parts[1] if len(parts) > 1 else "/"
    query = parse_qs(urlsplit(target).query)
    if urlsplit(target).path == "/redirect" and query.get("to"):
        head = f"HTTP/1.1 302 Found\r\nLocation: {query['to'][0]}\r\ncontent-length: 0\r\n"
        conn.sendall((head + "\r\n").encode())
        return
    body = f"hello from {NAME}\n".encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)


def serve_tcp(port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    sock.listen(64)
    while True:
        conn, peer = sock.accept()
        threading.Thread(target=_handle, args=(conn, peer, port), daemon=True).start()


HTTP_METHODS = (b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"PATCH", b"OPTIONS", b"CONNECT")


def _handle(conn: socket.socket, peer: tuple, port: int) -> None:
    """One record per HTTP request (the connection is kept alive, as proxies expect), else one per connection."""
    conn.settimeout(5)
    pending = b""
    try:
        while True:
            pending = conn.recv(65536)
            if not pending:
                return
            is_http = pending.split(b" ", 1)[0] in HTTP_METHODS
            request = _read_http(conn, pending) if is_http else pending
            pending = b""
            record(proto="tcp", port=port, peer=peer[0], http=is_http, raw=base64.b64encode(request).decode())
            if not is_http:
                return
            if b"\r\nupgrade: websocket" in request.lower():
                _websocket(conn, request, port, peer)
                return
            _answer(conn, request)
    except OSError:
        if pending:
            record(proto="tcp", port=port, peer=peer[0], http=False, raw=base64.b64encode(pending).decode())
    finally:
        conn.close()


def _websocket(conn: socket.socket, request: bytes, port: int, peer: tuple) -> None:
    """Accept the upgrade, then record every frame's unmasked payload."""
    key = b""
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    buf = b""
    while True:
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        buf += data
        while len(buf) >= 2:
            size, at = buf[1] & 0x7F, 2
            if size == 126:
                size, at = int.from_bytes(buf[2:4], "big"), 4
            elif size == 127:
                size, at = int.from_bytes(buf[2:10], "big"), 10
            masked = buf[1] & 0x80
            mask, at = (buf[at:at + 4], at + 4) if masked else (b"\0\0\0\0", at)
            if len(buf) < at + size:
                break
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(buf[at:at + size]))
            record(proto="ws", port=port, peer=peer[0], opcode=buf[0] & 0x0F, raw=base64.b64encode(payload).decode())
            buf = buf[at + size:]
        if not data:
            return


def serve_udp(port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    while True:
        data, peer = sock.recvfrom(65536)
        record(proto="udp", port=port, peer=peer[0], raw=base64.b64encode(data).decode())


def serve_icmp() -> None:
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    except OSError as exc:
        record(proto="icmp-unavailable", error=str(exc))
        return
    while True:
        data, peer = sock.recvfrom(65536)
        ihl = (data[0] & 0x0F) * 4
        if len(data) > ihl and data[ihl] == 8:  # echo request (replies we send ourselves are type 0)
            record(proto="icmp", peer=peer[0], raw=base64.b64encode(data[ihl:]).decode())


if __name__ == "__main__":
    tcp = [int(p) for p in (sys.argv[1] if len(sys.argv) > 1 else "80").split(",")]
    udp = [int(p) for p in (sys.argv[2] if len(sys.argv) > 2 else "").split(",") if p]
    for p in tcp:
        threading.Thread(target=serve_tcp, args=(p,), daemon=True).start()
    for p in udp:
        threading.Thread(target=serve_udp, args=(p,), daemon=True).start()
    threading.Thread(target=serve_icmp, daemon=True).start()
    record(proto="ready")
    threading.Event().wait()
