"""A throwaway OCI registry for the pack step, and a pusher for ``docker save`` tarballs.

smolvm 0.8 packs only images it pulls from a registry. No registry image can be pulled on every
host, so this file is its own registry: a small OCI distribution server (``serve``) and a client
that pushes a ``docker save`` tarball to it (``push_tarball``), both standard library only. The
host runs the server in a container made from the sidecar image (it has Python), with this file
bind-mounted, on a network of its own; the push runs the same way from a second container on that
network (the registry's container address); smolvm pulls through the published loopback port.

The module is imported on the host for ``ephemeral_registry``/``crane_push_tarball`` and run as
a script in the containers; the top level imports nothing outside the standard library.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import re
import secrets
import shutil
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

REGISTRY_PORT = 5000
REPOSITORY = "bot-bottle"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
# docker save writes layers uncompressed; the OCI media type says so and every puller reads it.
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
_CHUNK = 1 << 20
_NAME = r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_BLOB = re.compile(rf"^/v2/({_NAME})/blobs/(sha256:[a-f0-9]{{64}})$")
_UPLOADS = re.compile(rf"^/v2/({_NAME})/blobs/uploads/?$")
_UPLOAD = re.compile(rf"^/v2/({_NAME})/blobs/uploads/([a-f0-9-]{{36}})$")
_MANIFEST = re.compile(rf"^/v2/({_NAME})/manifests/([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}|sha256:[a-f0-9]{{64}})$")


# -- server -----------------------------------------------------------------------------------


class _Store:
    """Blobs by digest, manifests by repository and reference, uploads in progress."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("blobs", "manifests", "uploads"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()

    def blob(self, digest: str) -> Path:
        return self.root / "blobs" / digest.split(":", 1)[1]

    def upload(self, upload_id: str) -> Path:
        return self.root / "uploads" / upload_id

    def manifest(self, name: str, ref: str) -> Path:
        return self.root / "manifests" / hashlib.sha256(f"{name}@{ref}".encode()).hexdigest()


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bot-bottle-registry/1"
    store: _Store  # set on the subclass made by make_server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return  # one line per blob is noise; errors come back to the client

    # -- helpers
    def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None, *, head: bool = False) -> None:
        self.send_response(code)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def _error(self, code: int, error: str, message: str) -> None:
        body = json.dumps({"errors": [{"code": error, "message": message}]}).encode()
        # A HEAD answer carries the length of the body it would have, never the body.
        self._send(code, body, {"Content-Type": "application/json"}, head=self.command == "HEAD")

    def _body_into(self, out: IO[bytes]) -> int:
        """Copy the request body (sized or chunked) into ``out``; return the byte count."""
        total = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return total
                self._copy_exactly(size, out)
                total += size
                self.rfile.readline()
        size = int(self.headers.get("Content-Length") or 0)
        self._copy_exactly(size, out)
        return total + size

    def _copy_exactly(self, size: int, out: IO[bytes]) -> None:
        """Copy the next ``size`` bytes of the request into ``out``; fewer is a broken request."""
        remaining = size
        while remaining:
            data = self.rfile.read(min(_CHUNK, remaining))
            if not data:
                raise ConnectionError("body ended early")
            out.write(data)
            remaining -= len(data)

    def _route(self) -> tuple[str, dict[str, list[str]]]:
        parsed = urllib.parse.urlsplit(self.path)
        return parsed.path, urllib.parse.parse_qs(parsed.query)

    # -- verbs
    def do_GET(self) -> None:
        self._get(head=False)

    def do_HEAD(self) -> None:
        self._get(head=True)

    def _get(self, *, head: bool) -> None:
        path, _ = self._route()
        if path in ("/v2", "/v2/"):
            return self._send(200, b"{}", {"Content-Type": "application/json"}, head=head)
        if m := _BLOB.match(path):
            blob = self.store.blob(m.group(2))
            if not blob.is_file():
                return self._error(404, "BLOB_UNKNOWN", "blob unknown")
            headers = {
                "Content-Length": str(blob.stat().st_size),
                "Content-Type": "application/octet-stream",
                "Docker-Content-Digest": m.group(2),
            }
            self._send(200, b"", headers, head=True)
            if not head:
                with blob.open("rb") as fh:
                    shutil.copyfileobj(fh, self.wfile, _CHUNK)
            return None
        if m := _MANIFEST.match(path):
            stored = self.store.manifest(m.group(1), m.group(2))
            if not stored.is_file():
                return self._error(404, "MANIFEST_UNKNOWN", "manifest unknown")
            record = json.loads(stored.read_text())
            body = bytes.fromhex(record["body"])
            headers = {"Content-Type": record["media_type"], "Docker-Content-Digest": record["digest"]}
            return self._send(200, body, headers, head=head)
        return self._error(404, "NAME_UNKNOWN", "not found")

    def do_POST(self) -> None:
        path, query = self._route()
        m = _UPLOADS.match(path)
        if not m:
            return self._error(404, "NAME_UNKNOWN", "not found")
        upload_id = str(uuid.uuid4())
        target = self.store.upload(upload_id)
        with target.open("wb") as fh:
            self._body_into(fh)
        digest = (query.get("digest") or [""])[0]
        if digest:  # monolithic upload: POST with the whole blob
            return self._finish(m.group(1), upload_id, digest)
        location = f"/v2/{m.group(1)}/blobs/uploads/{upload_id}"
        return self._send(202, b"", {"Location": location, "Range": "0-0", "Docker-Upload-UUID": upload_id})

    def do_PATCH(self) -> None:
        path, _ = self._route()
        m = _UPLOAD.match(path)
        if not m or not self.store.upload(m.group(2)).is_file():
            return self._error(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown")
        target = self.store.upload(m.group(2))
        with target.open("ab") as fh:
            self._body_into(fh)
        size = target.stat().st_size
        location = f"/v2/{m.group(1)}/blobs/uploads/{m.group(2)}"
        return self._send(202, b"", {"Location": location, "Range": f"0-{max(size - 1, 0)}", "Docker-Upload-UUID": m.group(2)})

    def do_PUT(self) -> None:
        path, query = self._route()
        if m := _UPLOAD.match(path):
            target = self.store.upload(m.group(2))
            if not target.is_file():
                return self._error(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown")
            with target.open("ab") as fh:
                self._body_into(fh)
            return self._finish(m.group(1), m.group(2), (query.get("digest") or [""])[0])
        if m := _MANIFEST.match(path):
            buffer = tempfile.SpooledTemporaryFile(max_size=4 << 20)
            with buffer:
                self._body_into(buffer)
                buffer.seek(0)
                body = buffer.read()
            media_type = self.headers.get("Content-Type") or json.loads(body or b"{}").get("mediaType") or OCI_MANIFEST
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            record = json.dumps({"media_type": media_type, "digest": digest, "body": body.hex()})
            with self.store.lock:
                for ref in {m.group(2), digest}:
                    self.store.manifest(m.group(1), ref).write_text(record)
            location = f"/v2/{m.group(1)}/manifests/{digest}"
            return self._send(201, b"", {"Location": location, "Docker-Content-Digest": digest})
        return self._error(404, "NAME_UNKNOWN", "not found")

    def _finish(self, name: str, upload_id: str, digest: str) -> None:
        target = self.store.upload(upload_id)
        if not _DIGEST.match(digest):
            target.unlink(missing_ok=True)
            return self._error(400, "DIGEST_INVALID", "a sha256 digest is required")
        actual = _file_digest(target)
        if actual != digest:
            target.unlink(missing_ok=True)
            return self._error(400, "DIGEST_INVALID", f"content is {actual}, not {digest}")
        target.replace(self.store.blob(digest))
        return self._send(201, b"", {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest})


def make_server(root: Path, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A registry serving ``root`` on ``host:port`` (0: any free port); call ``serve_forever``."""
    handler = type("Handler", (_Handler,), {"store": _Store(root)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


# -- client -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRef:
    endpoint: str  # host:port
    repository: str
    tag: str

    @classmethod
    def parse(cls, ref: str) -> ImageRef:
        endpoint, _, rest = ref.partition("/")
        repository, _, tag = rest.rpartition(":")
        if not endpoint or not repository or not tag:
            raise ValueError(f"{ref!r} is not HOST:PORT/REPOSITORY:TAG")
        return cls(endpoint, repository, tag)


class PushError(Exception):
    pass


def _member_digest(tar: tarfile.TarFile, member: tarfile.TarInfo) -> tuple[str, int]:
    fh = tar.extractfile(member)
    if fh is None:
        raise PushError(f"{member.name} is not a file in the archive")
    h = hashlib.sha256()
    for chunk in iter(lambda: fh.read(_CHUNK), b""):
        h.update(chunk)
    return "sha256:" + h.hexdigest(), member.size


def _request(conn: http.client.HTTPConnection, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    conn.request(method, url, body=body, headers=headers or {})
    response = conn.getresponse()
    response.read()  # drain, so the connection can be reused
    return response


def _push_blob(conn: http.client.HTTPConnection, repository: str, digest: str, size: int, body: Any) -> None:
    if _request(conn, "HEAD", f"/v2/{repository}/blobs/{digest}").status == 200:
        return
    started = _request(conn, "POST", f"/v2/{repository}/blobs/uploads/")
    location = started.getheader("Location")
    if started.status != 202 or not location:
        raise PushError(f"starting an upload failed: HTTP {started.status}")
    url = urllib.parse.urlsplit(location)
    query = urllib.parse.urlencode({"digest": digest})
    target = f"{url.path}?{url.query + '&' if url.query else ''}{query}"
    # One request per blob: the whole blob in the PUT that closes the upload.
    done = _request(conn, "PUT", target, body=body, headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"})
    if done.status != 201:
        raise PushError(f"uploading {digest} failed: HTTP {done.status}")


def push_tarball(tarball: str | Path, ref: str, *, timeout: float = 600) -> str:
    """Push the first image of a ``docker save`` tarball to ``ref``; return the manifest digest."""
    target = ImageRef.parse(ref)
    host, _, port = target.endpoint.partition(":")
    conn = http.client.HTTPConnection(host, int(port or 80), timeout=timeout)
    try:
        with tarfile.open(tarball, "r:") as tar:
            try:
                index = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
            except KeyError:
                raise PushError(f"{tarball} has no manifest.json: not a docker save archive") from None
            if not index:
                raise PushError(f"{tarball} holds no image")
            entry = index[0]
            config = tar.extractfile(entry["Config"])
            if config is None:
                raise PushError(f"{tarball}: config {entry['Config']} is missing")
            config_bytes = config.read()
            layers = []
            for name in entry["Layers"]:
                member = tar.getmember(name)
                digest, size = _member_digest(tar, member)
                _push_blob(conn, target.repository, digest, size, tar.extractfile(member))
                layers.append({"mediaType": OCI_LAYER, "digest": digest, "size": size})
            config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
            _push_blob(conn, target.repository, config_digest, len(config_bytes), config_bytes)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
                "layers": layers,
            },
            separators=(",", ":"),
        ).encode()
        put = _request(conn, "PUT", f"/v2/{target.repository}/manifests/{target.tag}", body=manifest,
                       headers={"Content-Type": OCI_MANIFEST})
        if put.status != 201:
            raise PushError(f"storing the manifest failed: HTTP {put.status}")
        return put.getheader("Docker-Content-Digest") or ""
    finally:
        conn.close()


def wait_ready(endpoint: str, timeout: float = 30.0) -> bool:
    """True once ``GET /v2/`` answers 200 at ``endpoint`` (host:port)."""
    host, _, port = endpoint.partition(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(host, int(port), timeout=2)
            try:
                if _request(conn, "GET", "/v2/").status == 200:
                    return True
            finally:
                conn.close()
        except OSError:
            pass
        time.sleep(0.1)
    return False


# -- host side: the registry and the push in containers ---------------------------------------


@dataclass(frozen=True)
class RegistryHandle:
    network: str  # the registry's own Docker network
    push_endpoint: str  # host:port of the registry container on that network
    pull_endpoint: str  # 127.0.0.1:port published on the host, where smolvm pulls from


_IN_CONTAINER = "/opt/bot-bottle-registry.py"


def _labels(registry_id: str) -> list[str]:
    from bot_bottle import proc
    from bot_bottle.backend.docker.names import LABEL_BACKEND, LABEL_ID, LABEL_OWNER, LABEL_ROLE, label_args

    return label_args({
        LABEL_ID: registry_id,
        LABEL_ROLE: "registry",
        LABEL_BACKEND: "smolmachines",
        LABEL_OWNER: proc.identity(),
    })


def _helper_image(image: str | None) -> str:
    """An image with Python 3 to run this file in: the sidecar's, built when missing."""
    if image:
        return image
    from bot_bottle import images

    return images.ensure_image(images.sidecar_image())


@contextlib.contextmanager
def ephemeral_registry(image: str | None = None, *, timeout: float = 30.0) -> Iterator[RegistryHandle]:
    """Run a registry container for the duration of the block; remove it and its network after."""
    from bot_bottle.backend.docker import engine
    from bot_bottle.errors import BotBottleError

    image = _helper_image(image)
    registry_id = secrets.token_hex(4)
    network = f"bot-bottle-registry-{registry_id}-net"
    container = f"bot-bottle-registry-{registry_id}"
    labels = _labels(registry_id)
    created: list[tuple[str, str]] = []
    try:
        created.append(("network", network))
        engine.run(["network", "create", "--driver", "bridge", *labels, network], timeout=60)
        created.append(("container", container))
        engine.run(
            [
                "run", "-d", "--name", container, "--network", network,
                "--publish", f"127.0.0.1::{REGISTRY_PORT}",
                "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                "--memory", "512m", "--pids-limit", "256",
                "--volume", f"{Path(__file__).resolve()}:{_IN_CONTAINER}:ro",
                *labels, "--entrypoint", "python3", image,
                _IN_CONTAINER, "serve", "--host", "0.0.0.0", "--port", str(REGISTRY_PORT), "--root", "/tmp/registry",
            ],
            timeout=120,
        )
        published = engine.run(["port", container, f"{REGISTRY_PORT}/tcp"], timeout=30).stdout.split()
        host_port = next((p.rsplit(":", 1)[1] for p in published if p.startswith("127.0.0.1:")), None)
        address = engine.run(
            ["inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}', container], timeout=30
        ).stdout.strip()
        if not host_port or not address:
            raise BotBottleError("the throwaway registry got no address", hint="see `docker logs " + container + "`")
        pull = f"127.0.0.1:{host_port}"
        if not wait_ready(pull, timeout):
            logs = engine.run(["logs", "--tail", "20", container], timeout=30, check=False)
            raise BotBottleError(f"the throwaway registry did not answer within {timeout:g} s:\n{(logs.stdout + logs.stderr).strip()}")
        yield RegistryHandle(network=network, push_endpoint=f"{address}:{REGISTRY_PORT}", pull_endpoint=pull)
    finally:
        for kind, ref in reversed(created):
            if kind == "container":
                engine.run(["rm", "-f", ref], timeout=60, check=False)
            else:
                engine.run(["network", "rm", ref], timeout=60, check=False)


def crane_push_tarball(tarball: str | Path, ref: str, *, network: str, image: str | None = None) -> None:
    """Push a ``docker save`` tarball to ``ref`` from a container on the registry's ``network``.

    Named after the ``crane push`` it stands in for; it needs no crane, only Python in ``image``.
    """
    from bot_bottle.backend.docker import engine
    from bot_bottle.errors import BotBottleError

    image = _helper_image(image)
    source = Path(tarball).resolve()
    result = engine.run(
        [
            "run", "--rm", "--network", network,
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--volume", f"{Path(__file__).resolve()}:{_IN_CONTAINER}:ro",
            "--volume", f"{source}:/image.tar:ro",
            *_labels(f"push-{secrets.token_hex(4)}"),
            "--entrypoint", "python3", image, _IN_CONTAINER, "push", "/image.tar", ref,
        ],
        timeout=3600,
        check=False,
    )
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BotBottleError(f"pushing {source.name} to the throwaway registry failed: {detail}")


# -- as a script, inside the containers -------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bot-bottle-registry", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve a registry from a folder")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=REGISTRY_PORT)
    serve.add_argument("--root", type=Path, required=True)
    push = sub.add_parser("push", help="push a docker save tarball")
    push.add_argument("tarball", type=Path)
    push.add_argument("ref")
    args = parser.parse_args(argv)
    if args.command == "serve":
        server = make_server(args.root, args.host, args.port)
        print(f"serving on {args.host}:{server.server_address[1]}", flush=True)
        server.serve_forever()
        return 0
    try:
        digest = push_tarball(args.tarball, args.ref)
    except (PushError, OSError, ValueError, KeyError) as exc:
        print(f"push failed: {exc}", file=sys.stderr)
        return 1
    print(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
