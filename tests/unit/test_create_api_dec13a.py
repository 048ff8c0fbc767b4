"""A start's container creates on the engine's socket: the create body read from the very argv
the CLI would get (``create_body``), sent by ``engine_api``; the sidecar's config handed in on its stdin
at its start (attached before it), never in a body; refusals worded as the CLI's; a failed
start leaves its container recorded for the rollback. Against a fake engine on a UNIX socket."""

from __future__ import annotations

import json
import socket
import threading
import time
import unittest
from pathlib import Path
from tempfile import TemporaryDirectory
from unittest import mock

from bot_bottle.backend.docker import create_body, engine, engine_api
from bot_bottle.backend.docker.launch import DockerLauncher, LaunchOptions
from tests.unit._creating_engine import CreatingCase, CreatingEngine, _in_folder
from tests.unit.test_engine_api_dec12g import SECRET

__all__ = ["CreatingCase", "CreatingEngine", "_in_folder"]  # still importable from here


SIDECAR_ARGS = [
    "create", "--name", "bb-1-sidecar", "--network", "bb-1-net", "--network-alias", "sidecar",
    "--volume", "bb-1-sock:/run/bottle", "--tmpfs", "/etc/bot-bottle:rw,nosuid,nodev,noexec,size=16m,mode=0711",
    "--cap-drop", "ALL", "--cap-add", "CHOWN", "--cap-add", "kill", "--security-opt", "no-new-privileges",
    "--memory", "512m", "--pids-limit", "512", "--log-driver", "json-file", "--log-opt", "max-size=16m",
    "--log-opt", "max-file=2", "--label", "bot-bottle.id=1", "--label", "bot-bottle.role=sidecar",
    "sidecar-image", "--config-arrives", "--ca-copy", "ca-00ff.crt",
]


class ContainerBodyTest(unittest.TestCase):
    def test_the_sidecars_flags_each_in_its_place(self) -> None:
        made = create_body.container(SIDECAR_ARGS)
        assert made is not None
        name, body = made
        host = body["HostConfig"]
        self.assertEqual(name, "bb-1-sidecar")
        self.assertEqual(body["Image"], "sidecar-image")
        self.assertEqual(body["Cmd"], ["--config-arrives", "--ca-copy", "ca-00ff.crt"])
        self.assertEqual(body["Labels"], {"bot-bottle.id": "1", "bot-bottle.role": "sidecar"})
        self.assertEqual(host["NetworkMode"], "bb-1-net")
        self.assertEqual(body["NetworkingConfig"], {"EndpointsConfig": {"bb-1-net": {"Aliases": ["sidecar"]}}})
        self.assertEqual(host["Binds"], ["bb-1-sock:/run/bottle"])
        self.assertEqual(host["Tmpfs"], {"/etc/bot-bottle": "rw,nosuid,nodev,noexec,size=16m,mode=0711"})
        self.assertEqual(host["CapDrop"], ["ALL"])
        self.assertEqual(host["CapAdd"], ["CAP_CHOWN", "CAP_KILL"])  # as the CLI names them
        self.assertEqual(host["SecurityOpt"], ["no-new-privileges"])
        self.assertEqual(host["Memory"], 512 * 1024**2)
        self.assertEqual(host["PidsLimit"], 512)
        self.assertEqual(host["LogConfig"], {"Type": "json-file", "Config": {"max-size": "16m", "max-file": "2"}})
        self.assertFalse(body["OpenStdin"])

    def test_the_agents_flags(self) -> None:
        with TemporaryDirectory() as tmp:
            env = Path(tmp) / "agent.env"
            env.write_text("HTTP_PROXY=http://127.0.0.1:3128\n\n# a comment\n  PLAIN=a b=c # kept\n")
            made = create_body.container([
                "create", "--name", "bb-1-agent", "--hostname", "slug", "--network", "none", "--runtime", "runsc",
                "--init", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--memory", "4g",
                "--cpus", "1", "--ulimit", "nproc=512:512", "--pids-limit", "16384",
                "--tmpfs", "/run/secrets:rw,mode=0700", "--env-file", str(env), "--user", "node",
                "--workdir", "/workspace", "--entrypoint", "sh", "agent-image", "-c", "sleep infinity"])
        assert made is not None
        _, body = made
        host = body["HostConfig"]
        self.assertEqual(body["Env"], ["HTTP_PROXY=http://127.0.0.1:3128", "PLAIN=a b=c # kept"])
        self.assertEqual((body["User"], body["Hostname"], body["WorkingDir"]), ("node", "slug", "/workspace"))
        self.assertEqual((body["Entrypoint"], body["Cmd"]), (["sh"], ["-c", "sleep infinity"]))
        self.assertEqual((host["Runtime"], host["Init"], host["NanoCpus"]), ("runsc", True, 10**9))
        self.assertEqual(host["Ulimits"], [{"Name": "nproc", "Soft": 512, "Hard": 512}])
        self.assertEqual(host["Memory"], 4 * 1024**3)
        self.assertIsNone(host["CapAdd"])
        self.assertEqual(body["NetworkingConfig"], {"EndpointsConfig": {"none": {}}})

    def test_what_is_not_read_here_is_left_to_the_cli(self) -> None:
        unread = [
            ["create", "--name", "x", "--publish", "80:80", "img"],  # a flag no launch gives
            ["create", "--name", "x", "--memory"],  # a flag without its value
            ["create", "--name", "x", "--memory", "lots", "img"],
            ["create", "--name", "x", "--label", "novalue", "img"],
            ["create", "img"],  # no name
            ["create", "--name", "x"],  # no image
            ["run", "--name", "x", "img"],
            ["create", "--name", "x", "--network", "a", "--network", "b", "img"],
        ]
        for args in unread:
            with self.subTest(args=args):
                self.assertIsNone(create_body.container(args))

    def test_an_env_file_with_a_bare_name_is_left_to_the_cli(self) -> None:
        # A bare KEY takes the CLI's own environment's value: only the CLI can do that.
        with TemporaryDirectory() as tmp:
            env = Path(tmp) / "agent.env"
            env.write_text("A=1\nFROM_HOST\n")
            self.assertIsNone(create_body.container(["create", "--name", "x", "--env-file", str(env), "img"]))
            self.assertIsNone(create_body.container(["create", "--name", "x", "--env-file", str(env) + "-gone", "img"]))

    def test_capabilities_as_the_cli_sends_them(self) -> None:
        self.assertEqual(create_body.capabilities(["net_admin", "CAP_KILL", "kill"], ["all"]),
                         (["CAP_KILL", "CAP_NET_ADMIN"], ["ALL"]))
        self.assertEqual(create_body.capabilities(["KILL"], ["KILL", "CHOWN"]), (["CAP_KILL"], ["CAP_CHOWN"]))
        self.assertEqual(create_body.capabilities(["ALL", "KILL"], []), (["ALL"], None))
        self.assertEqual(create_body.capabilities([], []), (None, None))


class CreatesOnTheSocketTest(CreatingCase):
    def setUp(self) -> None:
        super().setUp()
        self.use_launcher()
        self.record_cli("cli-id\n")

    def test_a_container_goes_to_the_socket(self) -> None:
        self.launcher._create("container", SIDECAR_ARGS, "bb-1-sidecar")
        self.assertEqual(self.cli, [])
        self.assertIn(("POST", "/containers/create?name=bb-1-sidecar", create_body.container(SIDECAR_ARGS)[1]),
                      self.engine.requests)
        # Removed by id, as after a CLI create.
        self.assertEqual(self.launcher._created, [("container", "c0ffee")])
        self.assertEqual(self.launcher._created_names, {"c0ffee": "bb-1-sidecar"})

    def test_an_argv_not_read_goes_to_the_cli(self) -> None:
        self.launcher._create("container", ["create", "--name", "x", "--publish", "1:1", "img"], "x")
        self.assertEqual(self.cli, [["create", "--name", "x", "--publish", "1:1", "img"]])
        self.assertEqual(self.engine.bodies("/containers/create"), [])

    def test_a_refusal_reads_as_the_clis(self) -> None:
        self.engine.refuse["/containers/create"] = (409, 'Conflict. The container name "/bb-1-sidecar" is already '
                                                         'in use by container "abc".')
        with self.assertRaises(engine.DockerError) as caught:
            self.launcher._create("container", SIDECAR_ARGS, "bb-1-sidecar")
        self.assertEqual(str(caught.exception), '`docker create` failed: Error response from daemon: Conflict. The '
                                                'container name "/bb-1-sidecar" is already in use by container "abc".')
        # Another launch's name: not this launch's to remove.
        self.assertEqual(self.launcher._created, [])


class SidecarConfigOnStdinTest(CreatingCase):
    def setUp(self) -> None:
        super().setUp()
        self.use_launcher()
        self.files = {"secrets.json": (json.dumps({"credentials": {"api": SECRET}}), 0o600),
                      "policy.json": ("{}", 0o600)}
        self.record_cli("")
        patcher = mock.patch.object(self.launcher, "_sidecar_files", lambda: self.files)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_attached_before_the_start_and_the_config_only_on_stdin(self) -> None:
        self.launcher._start_sidecar("sidecar-image")
        body, = self.engine.bodies("/containers/create")
        self.assertEqual((body["OpenStdin"], body["StdinOnce"], body["AttachStdin"]), (True, True, True))
        at = body["Cmd"].index("--config-stdin")
        self.assertEqual(body["Cmd"][at:], ["--config-stdin", "--ca-copy", self.launcher._ca_copy])
        self.assertEqual(self.engine.order, ["/containers/create", "attach", "start"])
        handed = json.loads(self.engine.wait_attached()[0])
        self.assertEqual(json.loads(handed["files"]["secrets.json"]["text"])["credentials"]["api"], SECRET)
        self.assertEqual(handed["files"]["secrets.json"]["mode"], 0o600)
        # Nowhere else: no body, no exec, no CLI call.
        self.assertNotIn(SECRET, json.dumps(self.engine.requests))
        self.assertEqual(self.engine.execs, {})
        self.assertEqual(self.cli, [])

    def test_a_refused_start_leaves_the_container_for_the_rollback(self) -> None:
        name = self.launcher.names.sidecar_container
        self.engine.refuse[f"/containers/{name}/start"] = (500, "OCI runtime create failed: no such runtime")
        with self.assertRaises(engine.DockerError) as caught:
            self.launcher._start_sidecar("sidecar-image")
        self.assertEqual(str(caught.exception), "`docker start` failed: Error response from daemon: OCI runtime "
                                                "create failed: no such runtime")
        self.assertEqual(self.launcher._created, [("container", "c0ffee")])
        self.assertEqual(self.engine.wait_attached(), [b""], "the attach was ended, nothing sent on it")

    def test_without_the_socket_the_cli_and_the_exec_after_start(self) -> None:
        self.launcher._api = None
        self.launcher._start_sidecar("sidecar-image")
        create = self.cli[0]
        self.assertEqual(create[create.index("sidecar-image") + 1:], ["--config-arrives", "--ca-copy",
                                                                       self.launcher._ca_copy])
        self.assertNotIn("--interactive", create)
        self.assertEqual(self.cli[1], ["start", self.launcher.names.sidecar_container])
        self.assertEqual(self.cli[2][:2], ["exec", "-i"])
        self.assertEqual(self.engine.requests, [])


class StdinOnTheWireTest(CreatingCase):
    def test_send_stdin_ends_the_stream_without_waiting_for_the_engines_end(self) -> None:
        # The engine keeps the attach open until the container stops: never waited for.
        self.engine.hold_attach = threading.Event()
        self.addCleanup(self.engine.hold_attach.set)
        sock = self.api.attach_stdin("box", timeout=5)
        began = time.monotonic()
        self.api.send_stdin(sock, b"x" * 300_000)
        self.assertLess(time.monotonic() - began, 2)
        self.assertEqual(sock.fileno(), -1, "closed")
        self.assertEqual(self.engine.wait_attached(), [b"x" * 300_000], "all of it read, then EOF")

    def test_a_refused_attach(self) -> None:
        server = socket.socket(socket.AF_UNIX)
        path = str(self.folder / "refusing.sock")
        server.bind(path)
        server.listen()

        def refuse() -> None:
            conn, _ = server.accept()
            conn.recv(65536)
            body = b'{"message": "No such container: box"}'
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
            conn.close()

        threading.Thread(target=refuse, daemon=True).start()
        with self.assertRaises(engine.DockerError) as caught:
            engine_api.EngineAPI(path).attach_stdin("box", timeout=5)
        server.close()
        self.assertEqual(str(caught.exception), "`docker attach` failed: Error response from daemon: "
                                                "No such container: box")


if __name__ == "__main__":
    unittest.main()
