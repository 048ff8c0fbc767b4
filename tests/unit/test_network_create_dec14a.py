"""A start's network and volume made on the engine's socket (the same bodies the CLI sends, the CLI
kept where the socket is not used, refusals worded as the CLI's), its images checked there, and
the agent's create not waiting for the network it is never attached to. Against a fake engine on
a UNIX socket."""

from __future__ import annotations

import json
import threading
import unittest
from pathlib import Path
from tempfile import TemporaryDirectory
from unittest import mock

from bot_bottle.backend.docker import create_body, engine, launch
from bot_bottle.errors import BotBottleError
from tests.unit._creating_engine import CreatingCase, CreatingEngine
from tests.unit.test_engine_api_dec12g import FakeEngineCase, _launcher

# What `docker network create --driver bridge --internal --label a=1 --label b=2 nname` sends
# (docker CLI 20.10, recorded against a fake engine).
CLI_NETWORK_BODY = {
    "Driver": "bridge", "Scope": "", "IPAM": {"Driver": "default", "Options": {}, "Config": []},
    "Internal": True, "Attachable": False, "Ingress": False, "ConfigOnly": False, "ConfigFrom": None,
    "Options": {}, "Labels": {"a": "1", "b": "2"}, "Name": "nname", "CheckDuplicate": True,
}
CLI_VOLUME_BODY = {"Driver": "local", "Labels": {"a": "1", "b": "2"}, "Name": "vname"}


class ObjectEngine(CreatingEngine):
    """The creating engine, also answering network and volume creates and image inspections."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.images = {"sidecar:1"}

    def handle(self, handler, method: str) -> None:  # type: ignore[override]
        path = handler.path
        if any(path.startswith(prefix) for prefix in self.refuse):
            super().handle(handler, method)
            return
        if method == "POST" and path in ("/networks/create", "/volumes/create"):
            body = self.read_body(handler)
            self.requests.append((method, path, body))
            answer = {"Id": "ne7", "Warning": ""} if path.startswith("/networks") else {"Name": body["Name"]}
            self.reply(handler, 201, json.dumps(answer).encode())
            return
        if method == "GET" and path.startswith("/images/") and path.endswith("/json"):
            self.requests.append((method, path, None))
            found = path[len("/images/"):-len("/json")] in self.images
            answer = b'{"Id": "sha256:1"}' if found else b'{"message": "No such image"}'
            self.reply(handler, 200 if found else 404, answer)
            return
        super().handle(handler, method)


class ObjectCase(CreatingCase):
    engine_class = ObjectEngine

    def setUp(self) -> None:
        super().setUp()
        self.use_launcher()
        self.record_cli("cli-id\n")


class BodiesTest(unittest.TestCase):
    def test_the_network_body_is_the_clis(self) -> None:
        args = ["network", "create", "--driver", "bridge", "--internal", "--label", "b=2", "--label", "a=1", "nname"]
        self.assertEqual(create_body.network(args), ("nname", CLI_NETWORK_BODY))

    def test_a_network_with_a_route_out_is_not_internal(self) -> None:
        made = create_body.network(["network", "create", "--driver", "bridge", "nname"])
        assert made is not None
        self.assertFalse(made[1]["Internal"])
        self.assertEqual(made[1]["Labels"], {})

    def test_the_volume_body_is_the_clis(self) -> None:
        args = ["volume", "create", "--label", "b=2", "--label", "a=1", "vname"]
        self.assertEqual(create_body.volume(args), ("vname", CLI_VOLUME_BODY))

    def test_forms_not_read_have_no_body(self) -> None:
        for args in (["network", "create", "--subnet", "10.0.0.0/24", "n"], ["network", "create", "a", "b"],
                     ["network", "create", "--internal"], ["network", "create", "--label", "x", "n"],
                     ["network", "create", "--driver", "bridge", "--driver", "overlay", "n"],
                     ["network", "create", "--label", "a=1", "--label", "a=2", "n"],
                     ["network", "connect", "n", "c"], ["volume", "create", "--opt", "type=tmpfs", "v"],
                     ["volume", "create", "--driver", "local", "v"], ["volume", "rm", "v"], ["create", "n"]):
            with self.subTest(args=args):
                self.assertIsNone(create_body.network(args) if args[0] == "network" else create_body.volume(args))

    def test_the_launchers_own_argvs_are_read(self) -> None:
        with mock.patch.object(launch.proc, "identity", return_value="owner"):
            launcher = _launcher(Path("/nonexistent-dec14a"))
        seen: list[list[str]] = []
        with mock.patch.object(launcher, "_create", lambda kind, args, ref, **_: seen.append(args)):
            launcher._create_network()
            launcher._create_volume()
        network, volume = create_body.network(seen[0]), create_body.volume(seen[1])
        assert network is not None and volume is not None
        self.assertEqual(network[0], launcher.names.network)
        self.assertTrue(network[1]["Internal"])
        self.assertEqual(network[1]["Labels"], launcher.labels("network"))
        self.assertEqual(volume[1]["Labels"], launcher.labels("socket"))


class ObjectsOnTheSocketTest(ObjectCase):
    def test_the_network_goes_to_the_socket_and_is_removed_by_id(self) -> None:
        self.launcher._create_network()
        self.assertEqual(self.cli, [])
        bodies = self.engine.bodies("/networks/create")
        self.assertEqual(len(bodies), 1)
        self.assertTrue(bodies[0]["Internal"])
        self.assertTrue(bodies[0]["CheckDuplicate"])
        self.assertEqual(bodies[0]["Labels"]["bot-bottle.role"], "network")
        self.assertEqual(self.launcher._created, [("network", "ne7")])
        self.assertEqual(self.launcher._created_names, {"ne7": self.launcher.names.network})

    def test_the_volume_goes_to_the_socket(self) -> None:
        self.launcher._create_volume()
        self.assertEqual(self.cli, [])
        self.assertEqual(self.engine.bodies("/volumes/create")[0]["Name"], self.launcher.names.socket_volume)
        self.assertEqual(self.launcher._created, [("volume", self.launcher.names.socket_volume)])

    def test_a_refused_network_reads_as_the_clis(self) -> None:
        self.engine.refuse["/networks/create"] = (409, "network with name bb-net already exists")
        with self.assertRaises(engine.DockerError) as caught:
            self.launcher._create_network()
        self.assertEqual(str(caught.exception),
                         "`docker network` failed: Error response from daemon: network with name bb-net already exists")
        self.assertEqual(self.launcher._created, [])  # another launch's: never removed by this one

    def test_no_address_range_left_is_the_clear_error(self) -> None:
        self.engine.refuse["/networks/create"] = (
            403, "could not find an available, non-overlapping IPv4 address pool among the defaults")
        with self.assertRaises(BotBottleError) as caught:
            self.launcher._create_network()
        self.assertEqual(caught.exception.hint, launch.NO_SUBNET_HINT)
        self.assertEqual(self.launcher._created, [("network", self.launcher.names.network)])

    def test_an_image_found_on_the_socket_needs_no_cli(self) -> None:
        spec = mock.Mock(ref="sidecar:1")
        with mock.patch("bot_bottle.images.ensure_image") as ensure:
            self.assertEqual(self.launcher._ensure_image(spec), "sidecar:1")
        ensure.assert_not_called()
        self.assertIn(("GET", "/images/sidecar:1/json", None), self.engine.requests)

    def test_an_image_not_found_goes_the_clis_way(self) -> None:
        spec = mock.Mock(ref="agent:2")
        with mock.patch("bot_bottle.images.ensure_image", return_value="agent:2") as ensure:
            self.assertEqual(self.launcher._ensure_image(spec), "agent:2")
        ensure.assert_called_once_with(spec)


class WithoutTheSocketTest(FakeEngineCase):
    def test_the_network_and_volume_by_the_cli(self) -> None:
        record = self.folder / "cli.log"
        self.fake_cli("tcp://127.0.0.1:2375", record=record)
        launcher = _launcher(self.folder)
        launcher._find_api()
        launcher._create_volume()
        launcher._create_network()
        lines = record.read_text().splitlines()
        self.assertTrue(lines[0].startswith("volume create --label"))
        self.assertTrue(lines[1].startswith("network create --driver bridge --internal --label"))
        self.assertEqual([r for r in self.engine.requests if r[1] != "/_ping"], [])


class AgentDoesNotWaitForTheNetworkTest(unittest.TestCase):
    """The agent (``--network none``) is created while the network is still being made."""

    def _launch(self, weaken: frozenset[str] = frozenset()) -> dict[str, bool]:
        tmp = Path(self.enterContext(TemporaryDirectory()))
        launcher = _launcher(tmp)
        launcher.weak = weaken
        release, network_made = threading.Event(), threading.Event()
        seen: dict[str, bool] = {}

        def network() -> None:
            release.wait(2)  # released by the agent's create, or made after 2 s
            network_made.set()

        def agent(image: str, **kwargs: object) -> None:
            for needed in kwargs.get("needs", ()):  # type: ignore[attr-defined]
                needed.result()
            seen["network made before the agent"] = network_made.is_set()
            release.set()
            raise BotBottleError("ended here")

        def sidecar(image: str, **kwargs: object) -> None:
            for needed in kwargs.get("needs", ()):  # type: ignore[attr-defined]
                needed.result()

        with mock.patch.multiple(launcher, _find_api=lambda: None, _create_volume=lambda: None,
                                 _create_network=network, _check_images=lambda: ("s", "a"),
                                 _start_agent=agent, _start_sidecar=sidecar, teardown=lambda **_: None):
            with self.assertRaises(BotBottleError):
                launcher.launch()
        return seen

    def test_the_agent_is_created_before_the_network_is_made(self) -> None:
        self.assertEqual(self._launch(), {"network made before the agent": False})

    def test_an_agent_on_the_network_waits_for_it(self) -> None:
        self.assertEqual(self._launch(frozenset({"agent-network"})), {"network made before the agent": True})


if __name__ == "__main__":
    unittest.main()


SECRET_VALUE = "sk-live-dec14a-0123456789abcdef"


class ProvisioningOnTheSocketTest(FakeEngineCase):
    """The launch's provisioning commands on the engine's socket; the CLI again once it is done."""

    def setUp(self) -> None:
        super().setUp()
        self.record = self.folder / "cli.log"
        self.fake_cli("unix:///nonexistent", record=self.record)
        from bot_bottle.backend.docker.bottle import DockerBottle

        self.bottle = DockerBottle("box-agent")

    def _cli_lines(self) -> list[str]:
        return self.record.read_text().splitlines() if self.record.exists() else []

    def test_an_exec_goes_to_the_socket_as_the_user_asked(self) -> None:
        self.engine.exec_answer = (3, b"out", b"err")
        with self.bottle.provisioning_on(self.api):
            result = self.bottle.exec("git config --global x y", user="root")
        self.assertEqual((result.returncode, result.stdout, result.stderr), (3, "out", "err"))
        spec = self.engine.execs["exec0"]
        self.assertEqual(spec["Cmd"], ["sh", "-c", "git config --global x y"])
        self.assertEqual(spec["User"], "root")
        self.assertEqual(self._cli_lines(), [])

    def test_a_private_write_hands_the_secret_in_on_stdin_only(self) -> None:
        with self.bottle.provisioning_on(self.api):
            self.bottle.write_private("/run/bot-bottle-env/agent.env", f"TOKEN={SECRET_VALUE}\n")
        self.assertNotIn(SECRET_VALUE, json.dumps(self.engine.requests))
        self.assertEqual(self.engine.stdin, [f"TOKEN={SECRET_VALUE}\n".encode()])
        self.assertEqual(self._cli_lines(), [])

    def test_a_copy_in_streams_its_archive_on_stdin(self) -> None:
        source = self.folder / "skill"
        source.mkdir()
        (source / "SKILL.md").write_text("hello")
        with self.bottle.provisioning_on(self.api):
            self.bottle.cp_in(source, "/home/node/.claude/skills/skill")
        self.assertIn("tar -x --no-same-owner", " ".join(self.engine.execs["exec0"]["Cmd"]))
        import io
        import tarfile

        with tarfile.open(fileobj=io.BytesIO(self.engine.stdin[0])) as tar:
            self.assertIn("skill/SKILL.md", tar.getnames())

    def test_a_failed_copy_in_is_the_clear_error(self) -> None:
        self.engine.exec_answer = (2, b"", b"tar: short read\n")
        (self.folder / "f").write_text("x")
        with self.bottle.provisioning_on(self.api), self.assertRaises(BotBottleError) as caught:
            self.bottle.cp_in(self.folder / "f", "/home/node/f")
        self.assertIn("tar: short read", str(caught.exception))

    def test_an_engine_that_refuses_reads_as_the_clis_failure(self) -> None:
        self.engine.refuse["/containers/box-agent/exec"] = (409, "container box-agent is not running")
        with self.bottle.provisioning_on(self.api):
            result = self.bottle.exec("true")
        self.assertEqual(result.returncode, 126)
        self.assertIn("container box-agent is not running", result.stderr)

    def test_after_provisioning_the_cli_again(self) -> None:
        with self.bottle.provisioning_on(self.api):
            pass
        self.bottle.exec("true")
        self.assertEqual(self._cli_lines(), ["exec -u node box-agent sh -c true"])
        self.assertEqual(self.engine.execs, {})

    def test_a_large_copy_in_goes_through_the_cli(self) -> None:
        from bot_bottle.backend.docker import bottle as bottle_module

        (self.folder / "big").write_bytes(b"x" * 4096)
        with mock.patch.object(bottle_module, "API_ARCHIVE_MAX", 1024), self.bottle.provisioning_on(self.api):
            self.bottle.cp_in(self.folder / "big", "/home/node/big")
        self.assertEqual(self.engine.execs, {})
        self.assertTrue(self._cli_lines()[0].startswith("exec -i -u node box-agent sh -c mkdir -p"))

    def test_the_launch_provisions_on_the_socket_it_found(self) -> None:
        launcher = _launcher(self.folder)
        launcher._api = self.api
        seen: list[object] = []
        with mock.patch.object(launcher, "_provision", lambda b: seen.append(b._api)):
            launcher._provision_on_api(self.bottle)
        self.assertEqual(seen, [self.api])
        self.assertIsNone(self.bottle._api)


class InfoOnTheSocketTest(ObjectCase):
    def setUp(self) -> None:
        super().setUp()
        patcher = mock.patch.object(engine, "_last_info", None)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_the_engines_cpus_read_on_the_socket(self) -> None:
        self.engine.refuse.clear()
        original = self.engine.handle

        def handle(handler, method: str) -> None:
            if handler.path == "/info":
                self.engine.requests.append((method, "/info", None))
                self.engine.reply(handler, 200, json.dumps({"ServerVersion": "20.10", "NCPU": 4,
                                                            "DockerRootDir": "/var/lib/docker"}).encode())
                return
            original(handler, method)

        self.engine.handle = handle  # type: ignore[method-assign]
        self.assertEqual(self.launcher._engine_cpus(), 4)
        self.assertEqual(engine.known_info_field("DockerRootDir"), "/var/lib/docker")
        self.assertEqual(self.cli, [])

    def test_an_engine_without_info_falls_back_to_the_cli(self) -> None:
        self.assertEqual(self.launcher._engine_cpus(), None)  # the fake CLI's answer is no JSON
        self.assertEqual(self.cli, [["info", "--format", "{{json .}}"]])

    def test_what_is_not_an_engines_info_is_not_kept(self) -> None:
        for info in (None, [], {"NCPU": 2}, {"ServerVersion": ""}):
            with self.subTest(info=info):
                self.assertFalse(engine.remember_info(info))
                self.assertFalse(engine.has_info())
