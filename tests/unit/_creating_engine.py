"""A fake Docker engine on a UNIX socket that also answers creates and a container's stdin attach,
and the test case set-up around it: a launch pointed at its socket, the CLI's calls recorded."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from unittest import mock

from bot_bottle.backend.docker import engine, engine_api
from tests.unit.test_engine_api_dec12g import FakeEngine, FakeEngineCase, _launcher


class CreatingEngine(FakeEngine):
    """The fake engine, also answering creates and a container's stdin attach."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.attached: list[bytes] = []
        self.order: list[str] = []
        self.hold_attach: threading.Event | None = None

    def handle(self, handler, method: str) -> None:  # type: ignore[override]
        path = handler.path
        if method == "POST" and "/attach?" in path:
            self.requests.append((method, path, None))
            self.order.append("attach")
            self.attach(handler)
            return
        if method == "POST" and path.endswith("/start"):
            self.order.append("start")
        if any(path.startswith(prefix) for prefix in self.refuse):
            super().handle(handler, method)
            return
        if method == "POST" and path.startswith("/containers/create"):
            body = self.read_body(handler)
            self.requests.append((method, path, body))
            self.order.append("/containers/create")
            self.reply(handler, 201, json.dumps({"Id": "c0ffee"}).encode())
            return
        super().handle(handler, method)

    def attach(self, handler) -> None:
        handler.wfile.write(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                            b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        handler.wfile.flush()
        received = b""
        while chunk := handler.rfile.read1(65536):
            received += chunk
        self.attached.append(received)
        if self.hold_attach is not None:
            self.hold_attach.wait(10)  # as the engine: open until the container stops
        handler.close_connection = True

    def wait_attached(self, timeout: float = 5) -> list[bytes]:
        """What the attach received, once its reader saw EOF (the client does not wait for it)."""
        deadline = time.monotonic() + timeout
        while not self.attached and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.attached

    @staticmethod
    def read_body(handler) -> object:
        """The request's JSON body (None when it has none)."""
        length = int(handler.headers.get("Content-Length") or 0)
        return json.loads(handler.rfile.read(length)) if length else None

    def bodies(self, prefix: str) -> list[dict]:
        return [body for method, path, body in self.requests if path.startswith(prefix)]


class CreatingCase(FakeEngineCase):
    engine_class: type[CreatingEngine] = CreatingEngine  # a case may answer more with a subclass

    def setUp(self) -> None:
        super().setUp()
        self.engine.close()
        self.engine = self.engine_class(_in_folder(self.folder / "creating"))
        self.addCleanup(self.engine.close)
        self.api = engine_api.EngineAPI(self.engine.path)

    def use_launcher(self) -> None:
        """``self.launcher``, a launch that sends its creates to this engine's socket."""
        self.launcher = _launcher(_in_folder(self.folder / "l"))
        self.launcher._api = self.api

    def record_cli(self, stdout: str) -> None:
        """Every CLI call's argv kept in ``self.cli`` (none runs), each answered with ``stdout``."""
        self.cli: list[list[str]] = []

        def run(args: list[str], **_: object) -> engine.DockerResult:
            self.cli.append(list(args))
            return engine.DockerResult(0, stdout, "")

        patcher = mock.patch.object(engine, "run", run)
        patcher.start()
        self.addCleanup(patcher.stop)


def _in_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder
