"""The Docker engine's own API over its UNIX socket, for the few calls a start waits on.

Each `docker` CLI call costs a client process's start on top of its round trip to the engine
(measured: `docker inspect` ~24 ms against ~1 ms for the same request on the socket, `docker
exec true` ~90 ms against ~70 ms). A launch uses this module only when the CLI itself talks to
its engine over a local socket and that socket answers (``usable``); otherwise it goes on with
the CLI (``engine.run``). Errors read as the CLI's do: a ``DockerError`` carrying the engine's
own message.

No argv is involved, but an exec's command is still stored by the engine (``docker inspect``
shows it): secrets go to a command through its stdin, never in it.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import time
from collections.abc import Mapping, Sequence
from urllib.parse import quote

from bot_bottle import interrupts
from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.engine import DockerError, DockerResult

STDOUT, STDERR = 1, 2  # the stream numbers in the 8-byte frame header of an exec's output
FRAME = struct.Struct(">B3xL")
EXIT_CODE_WAIT = 2.0  # seconds an ended exec's status may take to be recorded
UNKNOWN_EXIT = 126  # the status of an exec whose own status the engine never recorded


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class EngineAPI:
    """Requests to one engine socket. Each call's errors name the CLI command it stands for, so
    that they read as that command's would (`docker start` failed: ...)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def answers(self, timeout: float = 2) -> bool:
        try:
            status, body = self._request("GET", "/_ping", timeout=timeout)
        except (OSError, http.client.HTTPException):
            return False
        return status == 200 and body.strip() == b"OK"

    def start(self, container: str, *, timeout: float = 120) -> None:
        """``docker start CONTAINER`` (a container already running is no error, as for the CLI)."""
        self._call("start", "POST", f"/containers/{quote(container, safe='')}/start", timeout=timeout,
                   ok=(204, 304))

    def create_container(self, name: str, body: Mapping[str, object], *, timeout: float = 120) -> str:
        """``docker create --name NAME ...`` from its create body (``create_body.container``): the id."""
        data = self._call("create", "POST", f"/containers/create?name={quote(name, safe='')}", body=dict(body),
                          timeout=timeout, ok=(201,))
        return str(json.loads(data)["Id"])

    def create_network(self, body: Mapping[str, object], *, timeout: float = 120) -> str:
        """``docker network create ...`` from its body (``create_body.network``): the network's id."""
        data = self._call("network", "POST", "/networks/create", body=dict(body), timeout=timeout, ok=(201,))
        return str(json.loads(data)["Id"])

    def create_volume(self, body: Mapping[str, object], *, timeout: float = 120) -> str:
        """``docker volume create ...`` from its body (``create_body.volume``): the volume's name."""
        data = self._call("volume", "POST", "/volumes/create", body=dict(body), timeout=timeout, ok=(201,))
        return str(json.loads(data)["Name"])

    def info(self, *, timeout: float = 10) -> object:
        """``docker info``'s engine part (``GET /info``), or None when the engine does not give it."""
        try:
            return json.loads(self._call("info", "GET", "/info", timeout=timeout))
        except (DockerError, ValueError):
            return None

    def image_exists(self, ref: str, *, timeout: float = 60) -> bool:
        """Whether ``docker image inspect REF`` would find the image; any doubt (a refusal, no
        answer) is False, for the caller's CLI way to settle."""
        try:
            self._call("image", "GET", f"/images/{quote(ref, safe='/:@')}/json", timeout=timeout)
        except DockerError:
            return False
        return True

    def attach_stdin(self, container: str, *, timeout: float = 120) -> socket.socket:
        """Attach to a created container's stdin (it was created with ``OpenStdin`` and
        ``StdinOnce``): the connection to write it on (``send_stdin``). Attached before the start,
        as ``docker run -i`` does, so that nothing the container reads at its start is missed."""
        interrupts.raise_pending()
        path = f"/containers/{quote(container, safe='')}/attach?stream=1&stdin=1&stdout=0&stderr=0"
        head = (f"POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                "Content-Length: 0\r\n\r\n").encode()
        sock = self._connect("attach", timeout)
        try:
            sock.sendall(head)
            status, length, rest = _read_head(sock)
            if status >= 400:
                while length is not None and len(rest) < length and (chunk := sock.recv(65536)):
                    rest += chunk
                raise _engine_error("attach", status, rest)
        except TimeoutError:
            sock.close()
            raise DockerError(f"`docker attach` did not answer within {timeout:g} s") from None
        except OSError as exc:
            sock.close()
            raise DockerError(f"`docker attach` lost the engine at {self.path}: {exc}") from None
        except BaseException:
            sock.close()
            raise
        return sock

    def send_stdin(self, sock: socket.socket, data: bytes) -> None:
        """Write ``data`` to an attached stdin (``attach_stdin``) and end it: the container reads
        it, then EOF (``StdinOnce``). Not waited for: the engine keeps an attach of a container
        whose stdin is ``StdinOnce`` open until the container stops, and what was sent on a UNIX
        socket is read by the engine whole whether or not this end is still open."""
        with sock:
            try:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
            except TimeoutError:
                raise DockerError("`docker attach` did not take the container's input in time") from None
            except OSError as exc:
                raise DockerError(f"`docker attach` lost the engine at {self.path}: {exc}") from None

    def exec(self, container: str, argv: Sequence[str], *, user: str | None = None, stdin: bytes | None = None,
             timeout: float = 120) -> DockerResult:
        """``docker exec [-i] [-u USER] CONTAINER ARGV...``: its status and output (decoded as the CLI's).

        The output is read once ``stdin`` is all sent: for commands that say little before their
        input ends (what a launch hands in), not for a pipe that streams both ways at once.
        """
        spec: dict[str, object] = {"Cmd": list(argv), "AttachStdout": True, "AttachStderr": True,
                                   "AttachStdin": stdin is not None, "Tty": False}
        if user is not None:
            spec["User"] = user
        created = self._call("exec", "POST", f"/containers/{quote(container, safe='')}/exec",
                             body=spec, timeout=timeout, ok=(201,))
        exec_id = json.loads(created)["Id"]
        stream = self._exec_stream(exec_id, stdin, timeout)
        out, err = demux(stream)
        return DockerResult(self._exit_code(exec_id, timeout), _text(out), _text(err))

    def _exit_code(self, exec_id: str, timeout: float) -> int:
        """The ended exec's status. Its streams can close a moment before the engine records it:
        asked again for a little while; a status the engine never learnt is a failure."""
        deadline = time.monotonic() + min(timeout, EXIT_CODE_WAIT)
        while True:
            state = json.loads(self._call("exec", "GET", f"/exec/{exec_id}/json", timeout=timeout))
            code = state.get("ExitCode")
            if not state.get("Running") and isinstance(code, int):
                return code
            if time.monotonic() > deadline:
                return UNKNOWN_EXIT
            time.sleep(0.01)

    # ------------------------------------------------------------------ the wire
    def _exec_stream(self, exec_id: str, stdin: bytes | None, timeout: float) -> bytes:
        """Start the exec on a connection taken over for its streams (as the CLI does), hand it
        ``stdin`` and end that (the command reads EOF), then read its output until it ends."""
        interrupts.raise_pending()
        body = json.dumps({"Detach": False, "Tty": False}).encode()
        head = (f"POST /exec/{exec_id}/start HTTP/1.1\r\nHost: localhost\r\n"
                "Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        with self._connect("exec", timeout) as sock:
            try:
                sock.sendall(head + body)
                status, length, rest = _read_head(sock)
                if status >= 400:
                    # A refusal is an ordinary response: its length says where it ends.
                    while length is not None and len(rest) < length and (chunk := sock.recv(65536)):
                        rest += chunk
                    raise _engine_error("exec", status, rest)
                if stdin:
                    sock.sendall(stdin)
                sock.shutdown(socket.SHUT_WR)
                return rest + _read_all(sock)
            except TimeoutError:
                raise DockerError(f"`docker exec` did not answer within {timeout:g} s") from None
            except OSError as exc:
                raise DockerError(f"`docker exec` lost the engine at {self.path}: {exc}") from None

    def _connect(self, command: str, timeout: float) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            raise DockerError(f"`docker {command}` could not reach the engine at {self.path}: {exc}") from None
        return sock

    def _call(self, command: str, method: str, path: str, *, body: object = None, timeout: float,
              ok: tuple[int, ...] = (200,)) -> bytes:
        interrupts.raise_pending()
        try:
            status, data = self._request(method, path, body=body, timeout=timeout)
        except TimeoutError:
            raise DockerError(f"`docker {command}` did not answer within {timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise DockerError(f"`docker {command}` could not reach the engine at {self.path}: {exc}") from None
        if status not in ok:
            raise _engine_error(command, status, data)
        return data

    def _request(self, method: str, path: str, *, body: object = None, timeout: float) -> tuple[int, bytes]:
        conn = _UnixConnection(self.path, timeout)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            # Unversioned: the engine reads it as its own API version (an engine that no longer
            # serves an older one refuses requests pinned to it).
            conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


def demux(stream: bytes) -> tuple[bytes, bytes]:
    """An exec's stdout and stderr from its output stream: frames of an 8-byte header (stream
    number, three zero bytes, big-endian length) and that many bytes. A stream cut short keeps
    what arrived whole."""
    out, err = bytearray(), bytearray()
    at = 0
    while at + FRAME.size <= len(stream):
        kind, size = FRAME.unpack_from(stream, at)
        chunk = stream[at + FRAME.size: at + FRAME.size + size]
        at += FRAME.size + size
        (err if kind == STDERR else out).extend(chunk)
    return bytes(out), bytes(err)


def _text(data: bytes) -> str:
    # As the CLI path reads its output: a byte that is not UTF-8 is U+FFFD, never an exception.
    return data.decode("utf-8", errors="replace")


def _engine_error(command: str, status: int, data: bytes) -> DockerError:
    """The engine's refusal as the CLI words it (``Error response from daemon: MESSAGE``)."""
    try:
        message = json.loads(data).get("message")
    except (ValueError, AttributeError):
        message = None
    if not isinstance(message, str) or not message:
        message = data.decode("utf-8", errors="replace").strip() or f"HTTP status {status}"
    stderr = f"Error response from daemon: {message}"
    return DockerError(f"`docker {command}` failed: {stderr}", returncode=1, stderr=stderr + "\n")


def _read_head(sock: socket.socket) -> tuple[int, int | None, bytes]:
    """The status of a response, its Content-Length if any, and whatever followed its header in
    the same reads."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise DockerError("the Docker engine closed the connection before it answered")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        raise DockerError(f"the Docker engine answered what is not HTTP: {head[:80]!r}") from None
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            length = int(value.strip())
    return status, length, rest


def _read_all(sock: socket.socket) -> bytes:
    parts = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)


# What asks the CLI which engine it talks to: a client's start, no round trip to the engine.
CONTEXT_HOST = ["context", "inspect", "--format", "{{.Endpoints.docker.Host}}"]
UNIX = "unix://"


def usable() -> EngineAPI | None:
    """The engine's API when the CLI itself talks to it over a local socket that answers, else
    None (the caller goes on with the CLI).

    The CLI's own answer settles which engine: DOCKER_HOST, DOCKER_CONTEXT and the current
    context of its config all count, so a call here never reaches another engine than the one
    that holds the objects the CLI made. Asked once per launch, never cached for the process:
    what the CLI answers can change between launches (a test's fake engine, a context switched).
    """
    try:
        found = engine.run(CONTEXT_HOST, timeout=10, check=False)
    except engine.DockerError:
        return None
    host = found.stdout.strip() if found.returncode == 0 else ""
    if not host.startswith(UNIX) or len(host) == len(UNIX):
        return None
    api = EngineAPI(host[len(UNIX):])
    return api if api.answers() else None
