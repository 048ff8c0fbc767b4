"""The demo's own git host: one bare repo served over smart HTTPS by ``git http-backend``.

``python3 git_server.py PORT`` inside a demo container (standard library and git only), with
``GIT_ROOT`` (default /srv/git), ``TOKEN_FILE`` (the password every request must carry, HTTP Basic
or Bearer), and ``FAKE_CERT``/``FAKE_KEY`` (a certificate from the demo's throwaway CA). On start
it seeds ``demo.git`` with one commit on ``main``. Every request is printed as one JSON line
(method, path, service, status, whether the token matched; never the token), so the demo can show
which pushes reached it.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import ssl
import subprocess
import sys
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(os.environ.get("GIT_ROOT", "/srv/git"))
TOKEN_FILE = Path(os.environ.get("TOKEN_FILE", "/srv/token"))
REPO = "demo"
_IDENTITY = {
    "GIT_AUTHOR_NAME": "Demo Upstream", "GIT_AUTHOR_EMAIL": "upstream@demo.invalid",
    "GIT_COMMITTER_NAME": "Demo Upstream", "GIT_COMMITTER_EMAIL": "upstream@demo.invalid",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "HOME": "/tmp",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
}


def git(*args: str, cwd: Path | None = None, input: bytes | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=cwd, input=input, env={**_IDENTITY, **(env or {})},
                          capture_output=True, check=env is None, timeout=60)


def seed() -> None:
    bare = ROOT / f"{REPO}.git"
    if (bare / "HEAD").exists():
        return
    ROOT.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "--bare", "-b", "main", str(bare))
    git("config", "http.receivepack", "true", cwd=bare)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        git("init", "-q", "-b", "main", str(work))
        (work / "README.md").write_text("# demo\n\nThe bot-bottle demo's repository.\n")
        git("add", "README.md", cwd=work)
        git("commit", "-q", "-m", "init demo", cwd=work)
        git("push", "-q", str(bare), "main", cwd=work)


def token_ok(header: str) -> bool:
    try:
        token = TOKEN_FILE.read_text().strip()
    except OSError:
        return False
    scheme, _, value = header.partition(" ")
    given = ""
    if scheme.lower() == "bearer":
        given = value.strip()
    elif scheme.lower() == "basic":
        try:
            given = base64.b64decode(value.strip()).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            given = ""
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

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
        authorised = token_ok(self.headers.get("Authorization", ""))
        body = self._body() if self.command == "POST" else b""
        if authorised:
            status, headers, payload = self._backend(parts.path, parts.query, body)
        else:
            status, headers, payload = 401, [("WWW-Authenticate", 'Basic realm="git"')], b"token required\n"
        print(json.dumps({"method": self.command, "path": parts.path, "service": service, "status": status,
                          "token": "ok" if authorised else "missing-or-wrong"}), flush=True)
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _backend(self, path: str, query: str, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        env = {
            "GIT_PROJECT_ROOT": str(ROOT), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path, "QUERY_STRING": query,
            "REQUEST_METHOD": self.command, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)), "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""), "REMOTE_USER": "token",
            "REMOTE_ADDR": self.client_address[0],
        }
        out = git("http-backend", input=body, env=env).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name.strip(), value.strip()))
        return status, headers, payload

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 443
    seed()
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True
    cert, key = os.environ.get("FAKE_CERT"), os.environ.get("FAKE_KEY")
    if cert and key:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
