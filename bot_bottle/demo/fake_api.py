"""A minimal Anthropic Messages API and OpenAI Responses API, for the demo and the tests.

Runs inside a demo or test container under the real API host names (network aliases on an internal
network the test creates), over HTTPS with a certificate from a test CA. Every request is printed
as one JSON line with the credential it carried, so a test can prove what the proxy injected.
Answers are fixed: the text in ``FAKE_REPLY``.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPLY = os.environ.get("FAKE_REPLY", "Hello from the fake model.")
# Words a test planted in the agent's prompt or skills: the record says which ones a request carried.
MARKERS = [m for m in os.environ.get("FAKE_MARKERS", "").split(",") if m]


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def anthropic_events(model: str) -> list[bytes]:
    mid = f"msg_{uuid.uuid4().hex[:24]}"
    usage = {"input_tokens": 10, "output_tokens": 5}
    return [
        _sse("message_start", {"type": "message_start", "message": {
            "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}}),
        _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
        _sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": REPLY}}),
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                               "usage": {"output_tokens": 5}}),
        _sse("message_stop", {"type": "message_stop"}),
    ]


def anthropic_message(model: str) -> dict:
    return {"id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": REPLY}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 5}}


def openai_events(model: str) -> list[bytes]:
    rid = f"resp_{uuid.uuid4().hex[:24]}"
    item = f"msg_{uuid.uuid4().hex[:24]}"
    base = {"id": rid, "object": "response", "model": model, "created_at": 0}
    done_item = {"id": item, "type": "message", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": REPLY, "annotations": []}]}
    usage = {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 5,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 15}
    return [
        _sse("response.created", {"type": "response.created", "sequence_number": 0,
                                  "response": {**base, "status": "in_progress", "output": []}}),
        _sse("response.output_item.added", {"type": "response.output_item.added", "sequence_number": 1,
                                            "output_index": 0, "item": {**done_item, "status": "in_progress", "content": []}}),
        _sse("response.output_text.delta", {"type": "response.output_text.delta", "sequence_number": 2,
                                            "item_id": item, "output_index": 0, "content_index": 0, "delta": REPLY}),
        _sse("response.output_item.done", {"type": "response.output_item.done", "sequence_number": 3,
                                           "output_index": 0, "item": done_item}),
        _sse("response.completed", {"type": "response.completed", "sequence_number": 4,
                                    "response": {**base, "status": "completed", "output": [done_item], "usage": usage}}),
    ]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _record(self, body: bytes) -> None:
        print(json.dumps({
            "method": self.command,
            "path": self.path,
            "host": self.headers.get("host"),
            "x-api-key": self.headers.get("x-api-key"),
            "authorization": self.headers.get("authorization"),
            "anthropic-beta": self.headers.get("anthropic-beta"),
            "bytes": len(body),
            "markers": [m for m in MARKERS if m.encode() in body],
        }), flush=True)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, chunks: list[bytes]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        self._record(body)
        try:
            request = json.loads(body or b"{}")
        except json.JSONDecodeError:
            request = {}
        model = str(request.get("model", "fake-model"))
        path = self.path.split("?")[0]
        if path.endswith("/messages/count_tokens"):
            self._send(200, json.dumps({"input_tokens": 10}).encode(), "application/json")
        elif path.endswith("/messages"):
            if request.get("stream"):
                self._stream(anthropic_events(model))
            else:
                self._send(200, json.dumps(anthropic_message(model)).encode(), "application/json")
        elif path.endswith("/responses"):
            self._stream(openai_events(model))
        else:
            self._send(404, b'{"error": {"type": "not_found", "message": "fake API: unknown path"}}',
                       "application/json")

    def do_GET(self) -> None:
        self._record(b"")
        if self.path.split("?")[0].endswith("/models"):
            self._send(200, json.dumps({"data": [{"id": "fake-model", "object": "model"}]}).encode(),
                       "application/json")
        else:
            self._send(200, b'{"ok": true}', "application/json")

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 443
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    cert, key = os.environ.get("FAKE_CERT"), os.environ.get("FAKE_KEY")
    if cert and key:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
