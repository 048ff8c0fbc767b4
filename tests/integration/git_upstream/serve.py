"""A test git host's HTTP side: git http-backend behind a token check, with an access log.

``python3 serve.py --root DIR --port N --token-file F --log F [--listen ADDR] [--ready F]
[--tls PORT:CERT:KEY ...]``

Each ``--tls`` adds a listener serving the same repos over HTTPS with that certificate (the
tests give it one from their throwaway CA, and a second one from a CA nobody trusts).

Every request appends one JSON line to the log (method, path, service, status, whether the token
matched; never the token). A request without the right token (HTTP Basic password, or Bearer)
gets 401. Standard library only: it runs in the test upstream image and, for loopback tests, on
the host.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import json
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--listen", default="0.0.0.0")
    parser.add_argument("--ready")
    parser.add_argument("--tls", action="append", default=[], metavar="PORT:CERT:KEY")
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _token_ok(self) -> bool:
            try:
                token = Path(args.token_file).read_text().strip()
            except OSError:
                return False
            header = self.headers.get("Authorization", "")
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer":
                given = value.strip()
            elif scheme.lower() == "basic":
                try:
                    given = base64.b64decode(value.strip()).decode().partition(":")[2]
                except (ValueError, UnicodeDecodeError):
                    given = ""
            else:
                given = ""
            return bool(token) and hmac.compare_digest(given.encode(), token.encode())

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                out = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return bytes(out)
                    out += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            service = (parse_qs(parts.query).get("service") or [parts.path.rsplit("/", 1)[-1]])[0]
            authorised = self._token_ok()
            body = self._body() if self.command == "POST" else b""
            if not authorised:
                status, headers, payload = 401, [("WWW-Authenticate", 'Basic realm="git"')], b"token required\n"
            else:
                status, headers, payload = self._backend(parts.path, parts.query, body)
            entry = {"proto": "http", "tls": self.server.server_address[1] != args.port,
                     "method": self.command, "path": parts.path, "service": service,
                     "status": status, "token": "ok" if authorised else "missing-or-wrong"}
            with LOCK, open(args.log, "a", encoding="utf-8") as log:
                log.write(json.dumps(entry) + "\n")
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _backend(self, path: str, query: str, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            env = {
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "GIT_PROJECT_ROOT": args.root,
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "REQUEST_METHOD": self.command,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "REMOTE_USER": "token",
                "REMOTE_ADDR": self.client_address[0],
            }
            out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            status, headers = 200, []
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers.append((name.strip(), value.strip()))
            return status, headers, payload

    server = ThreadingHTTPServer((args.listen, args.port), Handler)
    server.daemon_threads = True
    for spec in args.tls:
        port, cert, key = spec.split(":", 2)
        secure = ThreadingHTTPServer((args.listen, int(port)), Handler)
        secure.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        secure.socket = context.wrap_socket(secure.socket, server_side=True)
        threading.Thread(target=secure.serve_forever, daemon=True).start()
    if args.ready:
        Path(args.ready).write_text(f"{server.server_address[1]}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
