"""Bounds that keep a hostile agent from exhausting its bottle's task limits and taking the bottle
offline for good: the forwarders outlast a failed fork, and the sidecar's daemons serve a bounded
number of connections at once."""

from __future__ import annotations

import contextlib
import io
import socket
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from unittest import mock

from bot_bottle.backend.docker import launch
from bot_bottle.sidecar import init
from bot_bottle.sidecar.git_gate import server


def _listen_address(argv: list[str]) -> str:
    return next(arg for arg in argv if arg.startswith(("UNIX-LISTEN:", "TCP-LISTEN:")))


class SocatForwardersTest(unittest.TestCase):
    def test_the_sidecar_forwarder_is_bounded_and_retries_a_failed_fork(self) -> None:
        config = init.Config(run_dir=Path("/run/x"), proxy_port=9000)
        options = _listen_address(init.socat_argv(config, init.SOCAT_MAX_CHILDREN)).split(",")
        self.assertIn(f"max-children={init.SOCAT_MAX_CHILDREN}", options)
        self.assertIn("forever", options)
        self.assertIn("interval=1", options)
        self.assertIn(f"backlog={init.SOCAT_BACKLOG}", options)

    def test_the_bound_leaves_the_other_daemons_room_under_the_task_limit(self) -> None:
        # The bundle's task limit (launch) holds socat's children, the gate's handlers and the
        # git processes they run (a few each), the proxy and the MCP server.
        self.assertLessEqual(init.SOCAT_MAX_CHILDREN + 8 * server.MAX_HANDLERS, launch.SIDECAR_PIDS_LIMIT - 32)

    def test_the_init_starts_the_bounded_forwarder(self) -> None:
        spawned: dict[str, list[str]] = {}

        def spawn(_sup: init.Supervisor, name: str, argv: list[str], *_args: object, **_kwargs: object) -> int:
            spawned[name] = list(argv)
            if name == "socat":
                raise init._StartFailed("stop here")  # nothing runs in a unit test
            return 0

        no_account = mock.Mock(side_effect=KeyError("none"))
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "policy.json").write_text('{"version": 2, "routes": []}')
            (root / "secrets.json").write_text("{}")
            config = init.Config(policy=root / "policy.json", secrets=root / "secrets.json",
                                 run_dir=root / "run", state_dir=root / "state", log_dir=root / "log",
                                 git_gate_config=root / "git-gate.json")
            # As the init's own tests run it: no accounts to switch to, signals left alone.
            with mock.patch.object(init, "daemon_accounts", return_value=None), \
                    mock.patch.object(init.pwd, "getpwnam", no_account), \
                    mock.patch.object(init.grp, "getgrnam", no_account), \
                    mock.patch.object(init, "start_ca", return_value=None), \
                    mock.patch.object(init, "finish_ca", return_value=False), \
                    mock.patch.object(init.signal, "signal"), mock.patch.object(init.signal, "alarm"), \
                    mock.patch.object(init.Supervisor, "spawn", spawn), \
                    contextlib.redirect_stderr(io.StringIO()):
                init.run(config)
        self.assertIn("socat", spawned, f"the init started {sorted(spawned)}")
        self.assertIn(f"max-children={init.SOCAT_MAX_CHILDREN}", _listen_address(spawned["socat"]).split(","))

    def test_the_micro_vm_forwarder_is_bounded_and_retries_a_failed_fork(self) -> None:
        from bot_bottle.backend.smolmachines import launch as vm_launch

        options = vm_launch.VM_FORWARDER_BOUND.split(",")
        self.assertIn(f"max-children={vm_launch.VM_FORWARDER_MAX_CHILDREN}", options)
        self.assertIn("forever", options)
        self.assertIn("interval=1", options)
        # Its children, the bundle's forwarder's behind it (one each at most) and the gate's
        # handlers stay inside the bundle's task limit.
        self.assertLessEqual(2 * vm_launch.VM_FORWARDER_MAX_CHILDREN + 8 * server.MAX_HANDLERS,
                             launch.SIDECAR_PIDS_LIMIT - 32)

    def test_the_agent_forwarder_retries_a_failed_fork(self) -> None:
        listen = next(word for word in launch.AGENT_ENTRY.split() if word.startswith("TCP-LISTEN:"))
        options = listen.split(",")
        self.assertIn("forever", options)
        self.assertIn("interval=1", options)
        self.assertIn("fork", options)


class _Held(BaseHTTPRequestHandler):
    """Answers only once the test lets it go, so handlers pile up."""

    release = threading.Event()
    started = threading.Semaphore(0)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        type(self).started.release()
        type(self).release.wait(10)
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's signature
        pass


class GateHandlerBoundTest(unittest.TestCase):
    def _serve(self, max_handlers: int) -> server.BoundedServer:
        httpd = server.BoundedServer(("127.0.0.1", 0), _Held, max_handlers)
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self.addCleanup(httpd.server_close)
        self.addCleanup(httpd.shutdown)
        self.addCleanup(_Held.release.set)
        return httpd

    def _ask(self, port: int) -> socket.socket:
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        conn.sendall(b"GET / HTTP/1.1\r\nHost: gate\r\nConnection: close\r\n\r\n")
        self.addCleanup(conn.close)
        return conn

    def test_connections_past_the_bound_wait_until_a_handler_ends(self) -> None:
        _Held.release = threading.Event()
        _Held.started = threading.Semaphore(0)
        httpd = self._serve(max_handlers=2)
        port = httpd.server_address[1]
        first, _second, _third = (self._ask(port) for _ in range(3))
        for _ in range(2):
            self.assertTrue(_Held.started.acquire(timeout=5))
        # The third connection is accepted by the kernel but given no handler while two run.
        self.assertFalse(_Held.started.acquire(timeout=0.5))
        _Held.release.set()
        self.assertTrue(_Held.started.acquire(timeout=5))
        self.assertIn(b"204", first.recv(1024))

    def test_a_failed_thread_start_gives_its_slot_back(self) -> None:
        httpd = server.BoundedServer(("127.0.0.1", 0), _Held, 1)
        self.addCleanup(httpd.server_close)
        with mock.patch("threading.Thread.start", side_effect=RuntimeError("can't start new thread")):
            with self.assertRaises(RuntimeError):
                httpd.process_request(mock.Mock(), ("127.0.0.1", 1))
        self.assertTrue(httpd.slots.acquire(timeout=0))

    def test_the_gate_server_is_bounded(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            httpd = server.make_server(mock.Mock(), mock.Mock(), Path(tmp), "127.0.0.1", 0)
            self.addCleanup(httpd.server_close)
            self.assertIsInstance(httpd, server.BoundedServer)
            taken = 0
            while httpd.slots.acquire(timeout=0):
                taken += 1
                if taken > 10_000:
                    break
            self.assertEqual(taken, server.MAX_HANDLERS)


if __name__ == "__main__":
    unittest.main()
