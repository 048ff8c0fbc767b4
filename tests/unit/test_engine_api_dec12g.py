"""The engine's API on its UNIX socket (``engine_api``), against a fake engine served here: exec
output framing, stdin ended so the command sees EOF, engine errors worded as the CLI's, the
socket used only when the CLI itself talks to it; and the launch's calls that take it (the
sidecar's config hand-in with no secret in the exec's command, the containers' starts), with the
CLI kept when there is no socket."""

from __future__ import annotations

import json
import os
import socketserver
import stat
import struct
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from tempfile import TemporaryDirectory
from unittest import mock

from bot_bottle.backend.docker import engine, engine_api, launch
from bot_bottle.backend.docker.launch import DockerLauncher, LaunchOptions

SECRET = "sk-live-0123456789abcdef-never-on-a-command"


def frame(kind: int, data: bytes) -> bytes:
    return struct.pack(">B3xL", kind, len(data)) + data


class FakeEngine:
    """A Docker engine on a UNIX socket: records what it is asked, answers as ``script`` says."""

    def __init__(self, folder: Path) -> None:
        self.path = str(folder / "engine.sock")
        self.requests: list[tuple[str, str, object]] = []
        self.stdin: list[bytes] = []
        self.exec_answer = (0, b"", b"")  # status, stdout, stderr of every exec
        self.refuse: dict[str, tuple[int, str]] = {}  # path prefix -> (status, engine message)
        self.start_status = 204
        self.running_answers = 0  # how many inspections of an ended exec still say it runs
        self.execs: dict[str, dict] = {}
        engine_ = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # the connection stays open after a response

            def log_message(self, *_: object) -> None:
                pass

            def do_GET(self) -> None:
                engine_.handle(self, "GET")

            def do_POST(self) -> None:
                engine_.handle(self, "POST")

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(self.path, Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reply(self, handler: BaseHTTPRequestHandler, status: int, body: bytes = b"") -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if body:
            handler.wfile.write(body)
        handler.wfile.flush()

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        path = handler.path
        self.requests.append((method, path, body))
        for prefix, (status, message) in self.refuse.items():
            if path.startswith(prefix):
                self.reply(handler, status, json.dumps({"message": message}).encode())
                return
        if path == "/_ping":
            self.reply(handler, 200, b"OK")
        elif path.endswith("/start") and path.startswith("/containers/"):
            self.reply(handler, self.start_status)
        elif path.startswith("/containers/") and path.endswith("/exec"):
            exec_id = f"exec{len(self.execs)}"
            self.execs[exec_id] = body
            self.reply(handler, 201, json.dumps({"Id": exec_id}).encode())
        elif path.startswith("/exec/") and path.endswith("/start"):
            self.stream(handler, path.split("/")[2])
        elif path.startswith("/exec/") and path.endswith("/json"):
            if self.running_answers > 0:
                self.running_answers -= 1
                state = {"ExitCode": None, "Running": True}
            else:
                state = {"ExitCode": self.exec_answer[0], "Running": False}
            self.reply(handler, 200, json.dumps(state).encode())
        else:
            self.reply(handler, 404, json.dumps({"message": f"page not found: {path}"}).encode())

    def stream(self, handler: BaseHTTPRequestHandler, exec_id: str) -> None:
        """The taken-over connection: read stdin to its end (when attached), then the framed output."""
        if handler.headers.get("Upgrade") != "tcp":
            self.reply(handler, 400, b'{"message": "not upgraded"}')
            return
        handler.wfile.write(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                            b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        handler.wfile.flush()
        received = b""
        if self.execs[exec_id].get("AttachStdin"):
            while chunk := handler.rfile.read1(65536):
                received += chunk
        self.stdin.append(received)
        _, out, err = self.exec_answer
        handler.wfile.write(frame(1, out[:3]) + frame(2, err) + frame(1, out[3:]))
        handler.wfile.flush()
        handler.close_connection = True


class FakeEngineCase(unittest.TestCase):
    def setUp(self) -> None:
        tmp = TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.folder = Path(tmp.name)
        self.engine = FakeEngine(self.folder)
        self.addCleanup(self.engine.close)
        self.api = engine_api.EngineAPI(self.engine.path)

    def fake_cli(self, context_host: str | None, *, record: Path | None = None) -> None:
        """A `docker` first on PATH: answers ``context inspect`` with ``context_host`` (fails
        without one) and records any other call's argv and stdin in ``record``."""
        bin_dir = self.folder / "bin"
        bin_dir.mkdir(exist_ok=True)
        script = bin_dir / "docker"
        answer = f"echo '{context_host}'" if context_host is not None else "echo 'no context' >&2; exit 1"
        log = record or self.folder / "cli.log"
        script.write_text(
            "#!/bin/sh\n"
            f'if [ "$1" = context ]; then {answer}; exit 0; fi\n'
            f'echo "$*" >> {log}\n'
            f'cat >> {log}.stdin\n'
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        patcher = mock.patch.dict(os.environ, {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"})
        patcher.start()
        self.addCleanup(patcher.stop)


class DemuxTest(unittest.TestCase):
    def test_frames_are_split_by_stream(self) -> None:
        stream = frame(1, b"out-1 ") + frame(2, b"err") + frame(1, b"out-2")
        self.assertEqual(engine_api.demux(stream), (b"out-1 out-2", b"err"))

    def test_a_frame_cut_short_keeps_what_came_whole(self) -> None:
        stream = frame(1, b"whole") + frame(2, b"cut off here")[:-4]
        self.assertEqual(engine_api.demux(stream), (b"whole", b"cut off "))
        self.assertEqual(engine_api.demux(frame(1, b"x")[:5]), (b"", b""))

    def test_a_frame_whose_payload_holds_a_header_lookalike(self) -> None:
        payload = struct.pack(">B3xL", 2, 3) + b"abc"
        self.assertEqual(engine_api.demux(frame(1, payload)), (payload, b""))


class ExecTest(FakeEngineCase):
    def test_stdin_reaches_the_command_whole_and_ends(self) -> None:
        self.engine.exec_answer = (3, b"stdout text", b"a warning")
        data = b"x" * 300_000
        result = self.api.exec("box", ["sh", "-c", "cat > f"], user="root", stdin=data, timeout=10)
        self.assertEqual((result.returncode, result.stdout, result.stderr), (3, "stdout text", "a warning"))
        self.assertEqual(self.engine.stdin, [data])
        spec = self.engine.execs["exec0"]
        self.assertEqual(spec["Cmd"], ["sh", "-c", "cat > f"])
        self.assertEqual(spec["User"], "root")
        self.assertTrue(spec["AttachStdin"])

    def test_without_stdin_none_is_attached(self) -> None:
        self.engine.exec_answer = (0, b"ok\n", b"")
        result = self.api.exec("box", ["true"], timeout=10)
        self.assertEqual((result.returncode, result.stdout), (0, "ok\n"))
        self.assertFalse(self.engine.execs["exec0"]["AttachStdin"])
        self.assertNotIn("User", self.engine.execs["exec0"])

    def test_output_that_is_not_utf8_is_read_as_replacement(self) -> None:
        self.engine.exec_answer = (0, b"ok \xff\xfe", b"")
        self.assertEqual(self.api.exec("box", ["true"], timeout=10).stdout, "ok \ufffd\ufffd")

    def test_a_status_recorded_a_moment_after_the_streams_closed(self) -> None:
        self.engine.exec_answer = (5, b"", b"")
        self.engine.running_answers = 3
        self.assertEqual(self.api.exec("box", ["false"], timeout=10).returncode, 5)

    def test_a_status_never_recorded_is_a_failure(self) -> None:
        self.engine.running_answers = 10_000
        with mock.patch.object(engine_api, "EXIT_CODE_WAIT", 0.1):
            self.assertEqual(self.api.exec("box", ["true"], timeout=10).returncode, engine_api.UNKNOWN_EXIT)

    def test_a_refused_start_is_the_engines_words_without_waiting_out_the_timeout(self) -> None:
        self.engine.refuse["/exec/"] = (409, "Container box is not running")
        began = time.monotonic()
        with self.assertRaises(engine.DockerError) as caught:
            self.api.exec("box", ["true"], stdin=b"data", timeout=20)
        self.assertLess(time.monotonic() - began, 5)
        self.assertEqual(str(caught.exception), "`docker exec` failed: Error response from daemon: "
                                                "Container box is not running")

    def test_an_unknown_container(self) -> None:
        self.engine.refuse["/containers/gone/"] = (404, "No such container: gone")
        with self.assertRaises(engine.DockerError) as caught:
            self.api.exec("gone", ["true"], timeout=10)
        self.assertIn("No such container: gone", str(caught.exception))
        self.assertTrue(caught.exception.stderr.startswith("Error response from daemon: "))


class StartTest(FakeEngineCase):
    def test_start(self) -> None:
        self.api.start("bot-bottle-1-sidecar", timeout=10)
        self.assertIn(("POST", "/containers/bot-bottle-1-sidecar/start", None), self.engine.requests)

    def test_a_container_already_running_is_no_error(self) -> None:
        self.engine.start_status = 304
        self.api.start("box", timeout=10)

    def test_a_refused_start_reads_as_the_clis(self) -> None:
        self.engine.refuse["/containers/gone/start"] = (404, "No such container: gone")
        with self.assertRaises(engine.DockerError) as caught:
            self.api.start("gone", timeout=10)
        self.assertEqual(str(caught.exception),
                         "`docker start` failed: Error response from daemon: No such container: gone")
        self.assertEqual(caught.exception.returncode, 1)

    def test_a_name_is_quoted_into_the_path(self) -> None:
        self.api.start("../networks/create?x=1", timeout=10)
        self.assertEqual([path for _, path, _ in self.engine.requests],
                         ["/containers/..%2Fnetworks%2Fcreate%3Fx%3D1/start"])

    def test_no_engine_on_the_socket(self) -> None:
        api = engine_api.EngineAPI(str(self.folder / "nothing.sock"))
        self.assertFalse(api.answers())
        with self.assertRaises(engine.DockerError) as caught:
            api.start("box", timeout=5)
        self.assertIn("could not reach the engine", str(caught.exception))


class UsableTest(FakeEngineCase):
    def test_the_socket_the_cli_uses_and_that_answers(self) -> None:
        self.fake_cli(f"unix://{self.engine.path}")
        api = engine_api.usable()
        self.assertIsNotNone(api)
        assert api is not None
        self.assertEqual(api.path, self.engine.path)

    def test_a_cli_that_talks_to_anything_else_keeps_the_cli(self) -> None:
        for host in ("tcp://127.0.0.1:2375", "ssh://user@host", "npipe:////./pipe/docker_engine", "unix://", ""):
            with self.subTest(host=host):
                self.fake_cli(host)
                self.assertIsNone(engine_api.usable())

    def test_a_socket_that_does_not_answer_keeps_the_cli(self) -> None:
        self.fake_cli(f"unix://{self.folder / 'nothing.sock'}")
        self.assertIsNone(engine_api.usable())

    def test_a_cli_that_cannot_say_keeps_the_cli(self) -> None:
        self.fake_cli(None)
        self.assertIsNone(engine_api.usable())


def _launcher(tmp: Path) -> DockerLauncher:
    plan = mock.Mock(agent="a", bottle="b", cwd=None, label=None, color=None, runtime="runc", agent_folder=None,
                     agent_image="agent-image")
    return DockerLauncher(plan, LaunchOptions(internal_network=True), tmp / "state")


class LaunchOnTheSocketTest(FakeEngineCase):
    FILES = {"secrets.json": (json.dumps({"credentials": {"api": SECRET}}), 0o600), "policy.json": ("{}", 0o600)}

    def setUp(self) -> None:
        super().setUp()
        self.launcher = _launcher(self.folder)

    def test_the_config_goes_in_over_stdin_never_in_the_command(self) -> None:
        self.launcher._api = self.api
        self.launcher._hand_in_config("box-sidecar", self.FILES)
        spec = self.engine.execs["exec0"]
        self.assertNotIn(SECRET, json.dumps(spec))
        self.assertTrue(spec["AttachStdin"])
        handed = json.loads(self.engine.stdin[0])
        self.assertEqual(json.loads(handed["files"]["secrets.json"]["text"])["credentials"]["api"], SECRET)
        self.assertEqual(handed["files"]["secrets.json"]["mode"], 0o600)

    def test_a_failed_hand_in_is_a_docker_error_with_the_commands_words(self) -> None:
        self.launcher._api = self.api
        self.engine.exec_answer = (1, b"", b"sh: 1: cannot create /etc/bot-bottle/.incoming.part: "
                                           b"Read-only file system\n")
        with self.assertRaises(engine.DockerError) as caught:
            self.launcher._hand_in_config("box-sidecar", self.FILES)
        self.assertEqual(str(caught.exception), "`docker exec` failed: sh: 1: cannot create "
                                                "/etc/bot-bottle/.incoming.part: Read-only file system")

    def test_the_start_goes_to_the_socket(self) -> None:
        self.launcher._api = self.api
        self.launcher._start_container("box-agent")
        self.assertIn(("POST", "/containers/box-agent/start", None), self.engine.requests)

    def test_the_launch_takes_the_socket_the_cli_names(self) -> None:
        self.fake_cli(f"unix://{self.engine.path}")
        self.launcher._find_api()
        assert self.launcher._api is not None
        self.assertEqual(self.launcher._api.path, self.engine.path)

    def test_without_the_socket_the_cli_does_it_all(self) -> None:
        record = self.folder / "cli.log"
        self.fake_cli("tcp://127.0.0.1:2375", record=record)
        self.launcher._find_api()
        self.launcher._create_network()
        self.launcher._start_container("box-agent")
        self.launcher._hand_in_config("box-sidecar", self.FILES)
        lines = record.read_text().splitlines()
        self.assertTrue(lines[0].startswith("network create --driver bridge --internal --label"))
        self.assertEqual(lines[1], "start box-agent")
        self.assertTrue(lines[2].startswith("exec -i box-sidecar sh -c umask 077"))
        self.assertNotIn(SECRET, record.read_text())
        self.assertIn(SECRET, Path(f"{record}.stdin").read_text())
        self.assertEqual([r for r in self.engine.requests if r[1] != "/_ping"], [])


if __name__ == "__main__":
    unittest.main()
