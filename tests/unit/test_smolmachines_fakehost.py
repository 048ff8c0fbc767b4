"""A fake host for backend unit tests: ``subprocess.run`` answered for docker and smolvm.

``FakeHost`` stands in for ``subprocess.run`` everywhere (both backends, their handles, the
image helpers) and records every argv, so tests can inspect every host process a launch would
have started. It plays a Docker engine and a smolvm CLI just enough for a launch to complete:
images exist, the sidecar has an address, files copied into a bottle are kept (by guest path),
machines are tracked. Nothing real runs. The tests at the bottom check the fake itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shlex
import subprocess
import tarfile
import tempfile
import threading
import unittest
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.launch import LaunchOptions
from bot_bottle.backend.smolmachines import launch as smol_launch
from bot_bottle.backend.smolmachines import smolvm
from bot_bottle.manifest import env as env_mod
from bot_bottle.manifest import load
from bot_bottle.plan import BottlePlan, resolve
from tests.fixtures import ManifestHome

SMOLVM = "/opt/fake/bin/smolvm"
SIDECAR_IP = "172.31.9.2"
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
V1 = smolvm.Installed(SMOLVM, {"SMOLVM_LIB_DIR": "/opt/fake/lib"}, "1.32.2")
V08 = smolvm.Installed(SMOLVM, {}, "0.8.3")
_CONTAINER_PATH = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*):(/.*)$")
_UNPACK = re.compile(r"-C (\S+) -f (\S+)")
# The read of an agent run's status file (``DockerBottle.exit_status``, ``SmolmachinesBottle.exit_status``).
_STATUS_READ = re.compile(r"^cat \S*/agent-exit-[0-9a-f]+ ")


@dataclass
class Call:
    argv: list[str]
    input: Any
    env: Mapping[str, str] | None


def _members(data: bytes) -> dict[str, bytes]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                fh = tar.extractfile(member)
                out[member.name] = fh.read() if fh else b""
    return out


class FakeHost:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.env_files: dict[str, dict[str, str]] = {}  # container -> its --env-file at create
        self.files: dict[str, bytes] = {}  # guest path -> content (both backends)
        self.containers_stopped = False  # what `inspect -f {{.State.Running}}` answers
        self.recorded_status: int | None = 0  # what an agent run left in its status file (None: nothing)
        self.modes: dict[str, int] = {}
        self.machines: dict[str, dict[str, Any]] = {}
        self.failures: list[tuple[Callable[[list[str]], bool], tuple[int, str, str]]] = []
        self._archives: dict[str, dict[str, bytes]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ queries
    def argvs(self) -> list[list[str]]:
        return [c.argv for c in self.calls]

    def docker_calls(self) -> list[list[str]]:
        return [c.argv[1:] for c in self.calls if Path(c.argv[0]).name == "docker"]

    def smolvm_calls(self) -> list[list[str]]:
        return [_strip_globals(c.argv[1:]) for c in self.calls if c.argv[0] == SMOLVM]

    def fail_when(self, predicate: Callable[[list[str]], bool], returncode: int = 1, stderr: str = "boom") -> None:
        self.failures.append((predicate, (returncode, "", stderr)))

    # ------------------------------------------------------------------ the fake itself
    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        argv = [str(a) for a in argv]
        with self._lock:
            self.calls.append(Call(argv, kwargs.get("input"), kwargs.get("env")))
            result: tuple[int, str, str] | None = None
            for predicate, canned in self.failures:
                if predicate(argv):
                    result = canned
                    break
            if result is None:
                if Path(argv[0]).name == "docker":
                    result = self._docker(argv[1:], kwargs)
                elif argv[0] == SMOLVM:
                    result = self._smolvm(_strip_globals(argv[1:]), kwargs)
                else:
                    result = (0, "", "")
        code, out, err = result
        if not kwargs.get("text"):
            return subprocess.CompletedProcess(argv, code, out.encode(), err.encode())
        return subprocess.CompletedProcess(argv, code, out, err)

    def _docker(self, args: list[str], kwargs: dict[str, Any]) -> tuple[int, str, str]:
        if args[:2] == ["container", "inspect"]:
            # A resume's check for a kept agent container: none was kept here.
            return 1, "", f"Error: No such container: {args[-1]}\n"
        if args[:2] == ["image", "inspect"]:
            ref = args[-1]
            return 0, "sha256:" + hashlib.sha256(ref.encode()).hexdigest() + "\n", ""
        if args[0] == "save":
            Path(args[args.index("-o") + 1]).write_bytes(b"docker save archive")
            return 0, "", ""
        if args[0] == "create" and "--env-file" in args:
            env_file = Path(args[args.index("--env-file") + 1])
            pairs = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if line)
            self.env_files[args[args.index("--name") + 1]] = pairs
            return 0, "", ""
        if args[0] == "cp":
            src = _CONTAINER_PATH.match(args[1])
            if src and src.group(2).endswith("ca.crt"):
                Path(args[2]).write_text(CA_PEM)
            return 0, "", ""
        if args[0] == "inspect":
            fmt = args[args.index("-f") + 1] if "-f" in args else ""
            if "IPAddress" in fmt:
                return 0, SIDECAR_IP + "\n", ""
            if "Running" in fmt:
                return 0, "false\n" if self.containers_stopped else "true\n", ""
            return 0, "[]", ""
        if args[0] == "port":
            return 0, "127.0.0.1:55000\n", ""
        if args[0] == "exec" and _STATUS_READ.match(args[-1]):
            return self._status_read()
        written = re.search(r"mkdir -p \S+ && cat > \S+ && mv \S+ (\S+)$", args[-1]) if args[0] == "exec" else None
        if written and kwargs.get("input") is not None:
            # DockerBottle.write_private streams a file's text in, renamed into place whole.
            self.files[written.group(1)] = str(kwargs["input"]).encode()
            return 0, "", ""
        if args[0] == "exec" and hasattr(kwargs.get("stdin"), "read"):
            # DockerBottle.cp_in streams a tar unpacked with -C PARENT (engine.run's DEVNULL,
            # a number, is no stream).
            data = kwargs["stdin"].read()
            parent = re.search(r"-C (\S+)", args[-1])
            for name, content in _members(data).items():
                self.files[f"{parent.group(1) if parent else ''}/{name}"] = content
            return 0, "", ""
        return 0, "", ""

    def _smolvm(self, args: list[str], kwargs: dict[str, Any]) -> tuple[int, str, str]:
        if args[:2] == ["machine", "create"]:
            name = args[args.index("--name") + 1] if "--name" in args else args[-1]
            self.machines[name] = {"name": name, "state": "created", "argv": args, "labels": _labels(args)}
            return 0, f"Created machine: {name}\n", ""
        if args[:2] in (["machine", "start"], ["machine", "stop"]):
            name = args[args.index("--name") + 1]
            if name not in self.machines:
                return 1, "", f"Error: vm not found: {name}"
            self.machines[name]["state"] = "running" if args[1] == "start" else "stopped"
            return 0, "", ""
        if args[:2] == ["machine", "delete"]:
            name = args[args.index("--name") + 1] if "--name" in args else args[-1]
            if self.machines.pop(name, None) is None:
                return 1, "", f"Error: vm not found: {name}"
            return 0, "", ""
        if args[:2] == ["machine", "cp"]:
            src, dst = args[2], args[3]
            guest = _CONTAINER_PATH.match(dst)
            if guest:
                self._archives[guest.group(2)] = _members(Path(src).read_bytes())
            return 0, "", ""
        if args[:2] == ["machine", "exec"]:
            command = args[args.index("--") + 1:]
            script = command[-1] if command[:2] == ["sh", "-c"] else " ".join(command)
            if _STATUS_READ.match(command[-1]):  # as the user on 1.x, through runuser on 0.8
                return self._status_read()
            unpack = _UNPACK.search(script)
            if unpack and unpack.group(2) in self._archives:
                for name, content in self._archives.pop(unpack.group(2)).items():
                    self.files[f"{unpack.group(1)}/{name}"] = content
            return 0, "", ""
        if args[:2] == ["pack", "create"]:
            out = Path(args[args.index("-o") + 1])
            out.write_bytes(b"stub")
            Path(f"{out}.smolmachine").write_bytes(b"pack")
            return 0, "", ""
        if args[:2] == ["machine", "ls"]:
            return 0, json.dumps([{k: v for k, v in m.items() if k != "argv"} for m in self.machines.values()]), ""
        return 0, "", ""

    def _status_read(self) -> tuple[int, str, str]:
        """The bottle's answer to ``exit_status``: the recorded status, or no such file."""
        if self.recorded_status is None:
            return 1, "", "cat: no such file"
        return 0, f"{self.recorded_status}\n", ""

    # ------------------------------------------------------------------ installing it
    @contextlib.contextmanager
    def installed(self, cli: smolvm.Installed = V1) -> Iterator[FakeHost]:
        cache = tempfile.TemporaryDirectory(prefix="smol-cache-")
        with contextlib.ExitStack() as stack:
            stack.callback(cache.cleanup)
            stack.enter_context(mock.patch("subprocess.run", self))
            stack.enter_context(mock.patch.object(engine, "docker_binary", return_value="docker"))
            stack.enter_context(mock.patch.object(smol_launch, "_SMOLMACHINE_CACHE_DIR", Path(cache.name)))
            # bot-bottle's own cache (the snapshot lock, image build locks): not the user's.
            stack.enter_context(mock.patch.dict(os.environ, {"BOT_BOTTLE_CACHE_DIR": str(Path(cache.name) / "bb")}))
            stack.enter_context(mock.patch.object(smolvm, "is_available", return_value=True))
            # The fake plays a host where micro-VMs boot; the real one may not.
            stack.enter_context(mock.patch.object(smol_launch, "preflight", return_value=None))
            smolvm.use(cli)
            stack.callback(smolvm.use, None)
            yield self


def _strip_globals(args: list[str]) -> list[str]:
    return args[2:] if args[:1] == ["--state-dir"] else args


def _labels(args: list[str]) -> dict[str, str]:
    return dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--label")


def env_pairs(argv: list[str]) -> dict[str, str]:
    """The ``-e KEY=VALUE`` pairs on an argv (up to ``--``)."""
    end = argv.index("--") if "--" in argv else len(argv)
    return dict(argv[i + 1].split("=", 1) for i in range(end - 1) if argv[i] == "-e")


def parse_env_file(text: str) -> dict[str, str]:
    """A shell-quoted ``KEY='value'`` file as the guest's shell would read it."""
    out = {}
    for word in shlex.split(text):
        key, _, value = word.partition("=")
        out[key] = value
    return out


# -- manifests ---------------------------------------------------------------------------------

SECRET_PROMPTED = "prompted-Secret-Value-7f3a9c"
SECRET_HOST = "host-Secret-Value-b81e44"
LITERAL = "plain literal value"
HOST_ENVIRON = {"HOST_TOKEN_SRC": SECRET_HOST, "ANTHROPIC_API_KEY": "sk-route-credential-for-the-proxy-only"}


def bottle_plan(case: unittest.TestCase, backend: str, *, cwd: Path | None = None) -> tuple[BottlePlan, LaunchOptions]:
    """A plan with a literal, a ``?prompt`` and a ``${HOST_VAR}`` env entry, and its launch
    options resolved the way ``lifecycle`` resolves them (values to the launcher, secrets
    named for the DLP engine)."""
    mh = ManifestHome.for_test(case)
    mh.bottle("dev", {
        "env": {"LIT": LITERAL, "ASKED": "?Your token", "FROM_HOST": "${HOST_TOKEN_SRC}"},
        "egress": {"routes": ["example.com"]},
    })
    mh.agent("coder", {"bottle": "dev"}, body="You are careful.\n")
    manifest = load("coder", mh.layout)
    plan = resolve(manifest, backend=backend, runtime="libkrun" if backend == "smolmachines" else "runc",
                   cwd=cwd, environ=HOST_ENVIRON)
    resolved = env_mod.resolve(manifest.bottle.env, HOST_ENVIRON, lambda entry: SECRET_PROMPTED)
    credentials = {name: HOST_ENVIRON[name] for name in plan.credential_refs}
    options = LaunchOptions(
        env=dict(resolved.values),
        credentials=credentials,
        known_secrets={**{n: resolved.values[n] for n in resolved.secret_names}, **credentials},
        system_prompt=manifest.agent.prompt,
    )
    return plan, options


class FakeHostSelfTest(unittest.TestCase):
    def test_records_every_call_and_answers_docker_and_smolvm(self) -> None:
        fake = FakeHost()
        with fake.installed():
            self.assertEqual(engine.run(["inspect", "-f", "{{.IPAddress}}", "x"]).stdout.strip(), SIDECAR_IP)
            smolvm.machine_create("bot-bottle-abcdef12")
            self.assertEqual([m["name"] for m in smolvm.machine_ls()], ["bot-bottle-abcdef12"])
        self.assertEqual(fake.docker_calls()[0][0], "inspect")
        self.assertEqual(fake.smolvm_calls()[0][:2], ["machine", "create"])

    def test_env_helpers(self) -> None:
        self.assertEqual(env_pairs(["x", "-e", "A=1", "-e", "B=x=y", "--", "-e", "C=3"]), {"A": "1", "B": "x=y"})
        self.assertEqual(parse_env_file("A='it'\"'\"'s'\nB=plain\n"), {"A": "it's", "B": "plain"})


if __name__ == "__main__":
    unittest.main()
