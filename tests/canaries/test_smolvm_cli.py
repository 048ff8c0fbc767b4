"""Canaries for the real smolvm CLI (from the ``smolmachines`` wheel) and the VM image path.

Run only with ``BOT_BOTTLE_RUN_CANARIES=1``. Nothing here boots a VM: ``machine create``,
``machine ls`` and ``machine delete`` only write smolvm's records, which live in a temporary
``--state-dir``. They check that the argv our wrapper builds is what the installed CLI accepts and
that the machine it records is configured as intended (egress to one address, env, image,
labels, workload), so an upstream change of flags or defaults fails here first.

``SmolvmBootSmoke`` really launches a bottle on smolmachines. It is opt-in
(``BOT_BOTTLE_RUN_SMOLVM_SMOKE=1``) and skips with the doctor's reason where micro-VMs cannot
boot (PVM nested virtualisation, no vmx/svm, no /dev/kvm, no CLI, no Docker engine).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle import doctor
from bot_bottle.backend.smolmachines import launch, local_registry, smolvm
from bot_bottle.backend.smolmachines.names import machine_name

RUN = os.environ.get("BOT_BOTTLE_RUN_CANARIES") == "1"
ADDRESS = "172.30.99.7"  # never contacted: the machine is only created, not started


def _wheel_cli() -> smolvm.Installed | None:
    found = doctor.find_smolvm()
    if found is None:
        return None
    version, _ = doctor.smolvm_version(found)
    return smolvm.Installed(str(found.path), dict(found.env), version) if version else None


def docker_save_archive(path: Path) -> None:
    """A small archive in ``docker save`` format (one layer holding /etc/hello), made in Python."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tarfile.TarInfo("etc/hello")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    layer_bytes = layer.getvalue()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "User": "node"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_bytes).hexdigest()]},
    }).encode()
    index = json.dumps([{"Config": "config.json", "RepoTags": ["bot-bottle-canary:tiny"], "Layers": ["l/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in (("manifest.json", index), ("config.json", config), ("l/layer.tar", layer_bytes)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@unittest.skipUnless(RUN, "canaries run only with BOT_BOTTLE_RUN_CANARIES=1")
class SmolvmCliCanary(unittest.TestCase):
    cli: smolvm.Installed

    @classmethod
    def setUpClass(cls) -> None:
        cli = _wheel_cli()
        if cli is None:
            raise unittest.SkipTest(
                "no smolvm CLI: the smolmachines wheel is not installed (pip install 'bot-bottle[smolmachines]')"
            )
        cls.cli = cli

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix="smolvm-canary-")
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)
        env = mock.patch.dict(os.environ, {smolvm.STATE_DIR_ENV: str(self.tmp / "state")})
        env.start()
        self.addCleanup(env.stop)
        smolvm.use(self.cli)
        self.addCleanup(smolvm.use, None)
        self.archive = self.tmp / "image.tar"
        docker_save_archive(self.archive)
        self.name = machine_name("canary" + os.urandom(3).hex())
        self.addCleanup(self._delete_quietly)

    def _delete_quietly(self) -> None:
        try:
            smolvm.machine_delete(self.name)
        except smolvm.SmolvmError:
            pass

    def raw(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*smolvm._base(self.cli), *args], capture_output=True, text=True,
                              env=smolvm.process_env(self.cli), timeout=60)

    def listed(self) -> dict[str, dict]:
        return {m["name"]: m for m in smolvm.machine_ls()}

    def test_create_ls_delete_with_the_argv_the_launcher_builds(self) -> None:
        self.assertFalse(self.cli.legacy, f"the wheel ships smolvm {self.cli.version}: expected the 1.x series")
        env = {**launch.guest_proxy_env(ADDRESS), "LIT": "plain value"}
        labels = {"bot-bottle.id": self.name.removeprefix("bot-bottle-"), "bot-bottle.backend": "smolmachines"}
        argv = smolvm.machine_create_argv(
            self.cli, self.name, from_path=self.archive, allow_cidrs=(f"{ADDRESS}/32",), env=env,
            labels=labels, command=launch.KEEPALIVE, memory_mib=1024,
        )
        smolvm.machine_create(
            self.name, from_path=self.archive, allow_cidrs=(f"{ADDRESS}/32",), env=env,
            labels=labels, command=launch.KEEPALIVE, memory_mib=1024,
        )
        machine = self.listed()[self.name]
        self.assertEqual(machine["state"], "created", machine)
        self.assertEqual(machine["allowed_cidrs"], [f"{ADDRESS}/32"], "egress confined to the one address")
        self.assertIs(machine["network"], True, "--allow-cidr turns the (filtered) network on")
        self.assertTrue(str(machine["image"]).startswith("local:"), f"the archive was taken as a local image: {machine['image']}")
        self.assertEqual(machine["labels"], labels)
        self.assertEqual(machine["cmd"], list(launch.KEEPALIVE))
        self.assertEqual(machine["memory_mib"], 1024)
        self.assertIsNone(machine["pid"], "nothing was started")
        # `ls --json` leaves env out; the verbose listing shows it.
        verbose = self.raw("machine", "ls", "-v").stdout
        block = verbose[verbose.index(self.name):]
        for key, value in env.items():
            self.assertIn(f"Env: {key}={value}", block)
        self.assertIn("--allow-cidr", argv)
        smolvm.machine_delete(self.name)
        self.assertNotIn(self.name, self.listed())

    def test_a_rootfs_folder_is_a_local_image_too(self) -> None:
        rootfs = self.tmp / "rootfs"
        (rootfs / "etc").mkdir(parents=True)
        (rootfs / "etc" / "hello").write_text("hi\n")
        smolvm.machine_create(self.name, from_path=rootfs, allow_cidrs=(f"{ADDRESS}/32",))
        machine = self.listed()[self.name]
        self.assertEqual(machine["allowed_cidrs"], [f"{ADDRESS}/32"])
        self.assertEqual(machine["image"], f"local-dir:{rootfs.resolve()}")

    def test_no_allowed_address_means_no_network(self) -> None:
        smolvm.machine_create(self.name, from_path=self.archive)
        machine = self.listed()[self.name]
        self.assertFalse(machine.get("network"), machine)
        self.assertFalse(machine.get("allowed_cidrs"), machine)

    def test_the_08_positional_name_is_rejected_by_1x(self) -> None:
        result = self.raw("machine", "create", self.name)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("unexpected argument", result.stderr)
        self.assertNotIn(self.name, self.listed())

    def test_error_paths_the_wrapper_relies_on(self) -> None:
        with self.assertRaises(smolvm.SmolvmError) as gone:
            smolvm.machine_delete(self.name)
        self.assertIn("not found", gone.exception.stderr.lower(), "cleanup treats this text as already gone")
        self.assertNotIn("no packed assets", gone.exception.stderr)
        with self.assertRaises(smolvm.SmolvmError) as missing:
            smolvm.machine_create(self.name, from_path=self.tmp / "absent.smolmachine")
        self.assertIn("absent.smolmachine", str(missing.exception))

    def test_the_flags_we_build_are_in_the_help(self) -> None:
        def flags(*command: str) -> set[str]:
            text = self.raw(*command, "--help").stdout
            return set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", text))

        self.assertLessEqual({"--name", "--from", "--image", "--allow-cidr", "-e", "--label", "--mem"}, flags("machine", "create"))
        self.assertLessEqual({"--name", "-u", "-e", "-w", "--timeout", "-i", "-t"}, flags("machine", "exec"))
        self.assertLessEqual({"--name", "-f"}, flags("machine", "delete"))
        self.assertLessEqual({"--name"}, flags("machine", "start") & flags("machine", "stop"))
        self.assertLessEqual({"--image", "--from-vm", "-o"}, flags("pack", "create"))
        self.assertLessEqual({"--json"}, flags("machine", "ls"))


def _docker_reason() -> str | None:
    info, reason = doctor.probe_docker_info(timeout=15)
    return None if info is not None else f"no Docker engine: {reason}"


@unittest.skipUnless(RUN, "canaries run only with BOT_BOTTLE_RUN_CANARIES=1")
class EphemeralRegistryCanary(unittest.TestCase):
    """The 0.8 pack path's registry: push a docker-save tarball from a container on the
    registry's network, pull it back through the loopback port with the Docker engine itself."""

    def test_push_and_pull_back(self) -> None:
        reason = _docker_reason()
        if reason:
            self.skipTest(reason)
        from bot_bottle.backend.docker import engine

        helpers = engine.run(["images", "--format", "{{.Repository}}:{{.Tag}}", "bot-bottle/sidecar"], timeout=30).stdout.split()
        if not helpers:
            self.skipTest("no bot-bottle/sidecar image to run the registry in (scripts/setup builds it)")
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "image.tar"
            docker_save_archive(archive)
            tag = "canary" + os.urandom(3).hex()
            with local_registry.ephemeral_registry(helpers[0]) as registry:
                self.assertTrue(registry.pull_endpoint.startswith("127.0.0.1:"))
                local_registry.crane_push_tarball(
                    archive, f"{registry.push_endpoint}/bot-bottle:{tag}", network=registry.network, image=helpers[0]
                )
                pulled = f"{registry.pull_endpoint}/bot-bottle:{tag}"
                result = engine.run(["pull", pulled], timeout=120, check=False)
                engine.run(["rmi", pulled], timeout=60, check=False)
                self.assertEqual(result.returncode, 0, result.stderr)
            network = registry.network
        left = engine.run(["network", "ls", "-q", "--filter", f"name={network}"], timeout=30).stdout.strip()
        self.assertEqual(left, "", "the registry's network is removed")


@unittest.skipUnless(RUN and os.environ.get("BOT_BOTTLE_RUN_SMOLVM_SMOKE") == "1",
                     "the boot smoke test runs only with BOT_BOTTLE_RUN_CANARIES=1 and BOT_BOTTLE_RUN_SMOLVM_SMOKE=1")
class SmolvmBootSmoke(unittest.TestCase):
    """Boots a real bottle on smolmachines (needs real KVM or Apple silicon, smolvm and Docker)."""

    def setUp(self) -> None:
        microvm = doctor.check_microvm()
        if not microvm.ok:
            self.skipTest(f"micro-VMs cannot boot here: {microvm.reason}")
        if _wheel_cli() is None:
            self.skipTest("no smolvm CLI (pip install 'bot-bottle[smolmachines]')")
        reason = _docker_reason()
        if reason:
            self.skipTest(reason)

    def test_a_bottle_boots_runs_as_node_and_reaches_only_its_proxy(self) -> None:
        from bot_bottle.backend import registry
        from bot_bottle.backend.docker.launch import LaunchOptions
        from bot_bottle.manifest import load
        from bot_bottle.plan import resolve
        from tests.fixtures import ManifestHome

        mh = ManifestHome.for_test(self)
        mh.bottle("smoke", {"env": {"LIT": "literal"}, "egress": {"routes": ["example.invalid"]}})
        mh.agent("smoke", {"bottle": "smoke"}, body="Smoke test.\n")
        plan = resolve(load("smoke", mh.layout), backend="smolmachines", runtime="libkrun", environ={})
        launcher = registry.for_name("smolmachines").launcher(
            plan,
            LaunchOptions(env={"LIT": "literal", "SMOKE_SECRET": "smoke-secret-value"},
                          known_secrets={"SMOKE_SECRET": "smoke-secret-value"}, internal_network=True),
            state_root=mh.home / ".bot-bottle" / "state",
        )
        bottle = launcher.launch()
        try:
            self.assertEqual(bottle.exec("id -un").stdout.strip(), "node")
            self.assertEqual(bottle.exec("id -un", user="root").stdout.strip(), "root")
            self.assertEqual(bottle.exec("echo $LIT").stdout.strip(), "literal")
            address = launcher.sidecar_address  # type: ignore[attr-defined]
            probe = "curl -s -o /dev/null -w '%{http_code}' --max-time 10 "
            # Through the proxy: the policy answers (403 for a host it does not allow).
            through = bottle.exec(f"{probe} -x http://{address}:3128 http://not-allowed.invalid/")
            self.assertEqual(through.stdout.strip(), "403", through.stderr)
            # Straight to the sidecar on any other port: the VM's egress filter refuses it.
            direct = bottle.exec(f"{probe} http://{address}:8080/")
            self.assertNotEqual(direct.stdout.strip(), "200")
            runner = bottle.run_argv(["sh", "-c", "echo $SMOKE_SECRET"], tty=False)  # type: ignore[attr-defined]
            self.assertNotIn("smoke-secret-value", " ".join(runner))
            out = subprocess.run(runner, capture_output=True, text=True, timeout=60, env=smolvm.process_env())
            self.assertEqual(out.stdout.strip(), "smoke-secret-value")
        finally:
            launcher.teardown()


if __name__ == "__main__":
    unittest.main()
