"""Doctor probes against described hosts: fake /dev, /sys and /proc trees, canned docker info."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import tempfile
import unittest
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any
from unittest import mock

from bot_bottle import doctor
from bot_bottle.cli import doctor as doctor_cli

GOOD_CPU = "processor\t: 0\nflags\t\t: fpu vme de pse vmx sse sse2\n\nprocessor\t: 1\nflags\t\t: fpu vmx\n"
AMD_CPU = "processor\t: 0\nflags\t\t: fpu svm sse\n"
NO_VIRT_CPU = "processor\t: 0\nflags\t\t: fpu vme de pse sse sse2 hypervisor\n"

LINUX = ("Linux", "x86_64")

INFO_RUNC: dict[str, Any] = {
    "ServerVersion": "20.10.24+dfsg1",
    "OperatingSystem": "Debian GNU/Linux 12 (bookworm)",
    "Architecture": "x86_64",
    "DefaultRuntime": "runc",
    "Runtimes": {"io.containerd.runc.v2": {"path": "runc"}, "runc": {"path": "runc"}},
}
INFO_RUNSC: dict[str, Any] = {
    **INFO_RUNC,
    "Runtimes": {**INFO_RUNC["Runtimes"], "runsc": {"path": "/usr/bin/runsc"}},
}


class FakeHost:
    """A temp folder laid out like / with only the files the micro-VM probe reads."""

    def __init__(self, *, kvm: bool, pvm: bool, cpuinfo: str) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.root = Path(self._tmp.name)
        (self.root / "dev").mkdir()
        (self.root / "sys" / "module").mkdir(parents=True)
        (self.root / "proc").mkdir()
        if kvm:
            (self.root / "dev" / "kvm").write_text("")
        if pvm:
            (self.root / "sys" / "module" / "kvm_pvm" / "parameters").mkdir(parents=True)
        (self.root / "proc" / "cpuinfo").write_text(cpuinfo)

    def cleanup(self) -> None:
        self._tmp.cleanup()


class MicroVmTests(unittest.TestCase):
    def host(self, **kwargs: Any) -> Path:
        fake = FakeHost(**kwargs)
        self.addCleanup(fake.cleanup)
        return fake.root

    def test_good_intel_host(self) -> None:
        check = doctor.check_microvm(self.host(kvm=True, pvm=False, cpuinfo=GOOD_CPU), LINUX)
        self.assertTrue(check.ok, check)
        self.assertIn("vmx", check.detail)
        self.assertEqual(check.reason, "")

    def test_good_amd_host(self) -> None:
        check = doctor.check_microvm(self.host(kvm=True, pvm=False, cpuinfo=AMD_CPU), LINUX)
        self.assertTrue(check.ok, check)
        self.assertIn("svm", check.detail)

    def test_pvm_host_is_refused_even_with_vmx(self) -> None:
        check = doctor.check_microvm(self.host(kvm=True, pvm=True, cpuinfo=GOOD_CPU), LINUX)
        self.assertFalse(check.ok)
        self.assertEqual(
            check.reason, "PVM nested virtualisation (kvm_pvm loaded): libkrun guests cannot boot"
        )

    def test_no_vmx_or_svm(self) -> None:
        check = doctor.check_microvm(self.host(kvm=True, pvm=False, cpuinfo=NO_VIRT_CPU), LINUX)
        self.assertFalse(check.ok)
        self.assertIn("neither vmx nor svm", check.reason)
        self.assertNotIn("PVM", check.reason)
        self.assertNotIn("/dev/kvm", check.reason)

    def test_no_kvm(self) -> None:
        check = doctor.check_microvm(self.host(kvm=False, pvm=False, cpuinfo=GOOD_CPU), LINUX)
        self.assertFalse(check.ok)
        self.assertIn("/dev/kvm is missing", check.reason)
        self.assertNotIn("vmx", check.reason)

    def test_this_kind_of_machine_names_every_failing_condition(self) -> None:
        # /dev/kvm present, kvm_pvm loaded, no vmx/svm: the PVM host these tests run on.
        check = doctor.check_microvm(self.host(kvm=True, pvm=True, cpuinfo=NO_VIRT_CPU), LINUX)
        self.assertFalse(check.ok)
        self.assertIn("kvm_pvm loaded", check.reason)
        self.assertIn("neither vmx nor svm", check.reason)

    def test_missing_cpuinfo_counts_as_no_virtualisation(self) -> None:
        root = self.host(kvm=True, pvm=False, cpuinfo="")
        (root / "proc" / "cpuinfo").unlink()
        check = doctor.check_microvm(root, LINUX)
        self.assertFalse(check.ok)
        self.assertIn("neither vmx nor svm", check.reason)

    def test_unusable_kvm_node(self) -> None:
        root = self.host(kvm=True, pvm=False, cpuinfo=GOOD_CPU)
        # Root can open any file, so the denial is simulated rather than made with chmod.
        with mock.patch.object(doctor.os, "access", return_value=False):
            check = doctor.check_microvm(root, LINUX)
        self.assertFalse(check.ok)
        self.assertIn("kvm group", check.reason)

    def test_macos_apple_silicon(self) -> None:
        # The filesystem is irrelevant on macOS: an empty root must not matter.
        check = doctor.check_microvm(self.host(kvm=False, pvm=False, cpuinfo=""), ("Darwin", "arm64"))
        self.assertTrue(check.ok, check)
        self.assertIn("Apple silicon", check.detail)

    def test_macos_intel_is_refused(self) -> None:
        check = doctor.check_microvm(self.host(kvm=False, pvm=False, cpuinfo=""), ("Darwin", "x86_64"))
        self.assertFalse(check.ok)
        self.assertIn("Apple silicon (arm64)", check.reason)

    def test_other_systems(self) -> None:
        check = doctor.check_microvm(self.host(kvm=True, pvm=False, cpuinfo=GOOD_CPU), ("Windows", "AMD64"))
        self.assertFalse(check.ok)
        self.assertIn("Windows", check.reason)


class DockerChecksTests(unittest.TestCase):
    def test_engine_present(self) -> None:
        check = doctor.check_docker(INFO_RUNC)
        self.assertTrue(check.ok)
        self.assertIn("20.10.24", check.detail)

    def test_no_engine_keeps_the_engines_words(self) -> None:
        check = doctor.check_docker(None, "Cannot connect to the Docker daemon")
        self.assertFalse(check.ok)
        self.assertEqual(check.reason, "Cannot connect to the Docker daemon")

    def test_gvisor_registered(self) -> None:
        check = doctor.check_gvisor(INFO_RUNSC)
        self.assertTrue(check.ok)
        self.assertIn("/usr/bin/runsc", check.detail)
        self.assertIn("--network none", check.detail)

    def test_gvisor_states_the_agents_and_the_sandboxs_limits(self) -> None:
        check = doctor.check_gvisor(INFO_RUNSC, pid_max=32768)
        self.assertIn("the agent may run 256 tasks in it, the sandbox 8192 host tasks", check.detail)
        self.assertIn("ptrace platform", check.detail)  # no --platform: runsc's default
        self.assertIn("16384 host tasks", doctor.check_gvisor(INFO_RUNSC, pid_max=4194304).detail)
        kvm = {**INFO_RUNSC, "Runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--platform=kvm"]}}}
        self.assertNotIn("ptrace", doctor.check_gvisor(kvm, pid_max=4194304).detail)

    def test_gvisor_absent(self) -> None:
        check = doctor.check_gvisor(INFO_RUNC)
        self.assertFalse(check.ok)
        self.assertIn("runsc is not registered", check.reason)

    def test_gvisor_without_engine(self) -> None:
        check = doctor.check_gvisor(None)
        self.assertFalse(check.ok)
        self.assertIn("no Docker engine", check.reason)

    def test_gvisor_with_no_runtimes_key(self) -> None:
        self.assertFalse(doctor.check_gvisor({"ServerVersion": "1"}).ok)


class ProbeDockerInfoTests(unittest.TestCase):
    def fake_run(self, returncode: int, stdout: str = "", stderr: str = "") -> mock._patch[Any]:
        result = doctor.engine.DockerResult(returncode, stdout, stderr)
        return mock.patch.object(doctor.engine, "run", return_value=result)

    def test_engine_answers(self) -> None:
        with self.fake_run(0, json.dumps(INFO_RUNSC)):
            info, error = doctor.probe_docker_info()
        self.assertEqual(info, INFO_RUNSC)
        self.assertEqual(error, "")

    def test_daemon_down(self) -> None:
        with self.fake_run(1, "", "Client: ...\nCannot connect to the Docker daemon at unix:///x.sock\n"):
            info, error = doctor.probe_docker_info()
        self.assertIsNone(info)
        self.assertIn("Cannot connect", error)

    def test_client_only_json(self) -> None:
        body = json.dumps({"ServerVersion": "", "ServerErrors": ["daemon is down"]})
        with self.fake_run(0, body):
            info, error = doctor.probe_docker_info()
        self.assertIsNone(info)
        self.assertEqual(error, "daemon is down")

    def test_no_cli(self) -> None:
        with mock.patch.object(doctor.engine, "run", side_effect=doctor.engine.DockerError("the docker CLI is not installed")):
            info, error = doctor.probe_docker_info()
        self.assertIsNone(info)
        self.assertIn("not installed", error)


class SmolvmTests(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)

    def wheel(self) -> Path:
        site = self.tmp / "site-packages"
        package = site / "smol"
        package.mkdir(parents=True)
        binary = package / "smol-vmm"
        # Like the real one, it cannot run without the wheel's library folder in its env.
        binary.write_text('#!/bin/sh\n[ -d "$SMOLVM_LIB_DIR" ] || exit 3\necho smolvm 1.32.2\n')
        binary.chmod(0o755)
        return site

    def test_on_path_wins(self) -> None:
        cli = doctor.find_smolvm(which=lambda name: "/usr/local/bin/smolvm", search_dirs=[self.wheel()])
        assert cli is not None
        self.assertEqual(cli.path, Path("/usr/local/bin/smolvm"))
        self.assertEqual(cli.env, {})

    def test_found_in_the_wheel_with_its_environment(self) -> None:
        site = self.wheel()
        cli = doctor.find_smolvm(which=lambda name: None, search_dirs=[self.tmp / "nothing", site])
        assert cli is not None
        self.assertEqual(cli.path, site / "smol" / "smol-vmm")
        self.assertEqual(cli.env["SMOLVM_LIB_DIR"], str(site / "smol"))
        self.assertEqual(cli.env["SMOLVM_AGENT_ROOTFS_TAR"], str(site / "smol" / "agent-rootfs.tar.zst"))

    def test_absent(self) -> None:
        cli = doctor.find_smolvm(which=lambda name: None, search_dirs=[self.tmp])
        self.assertIsNone(cli)
        check = doctor.check_smolvm(None, None)
        self.assertFalse(check.ok)
        self.assertIn("not installed", check.reason)

    def test_version_runs_the_real_binary_with_the_wheel_env(self) -> None:
        cli = doctor.find_smolvm(which=lambda name: None, search_dirs=[self.wheel()])
        assert cli is not None
        version, error = doctor.smolvm_version(cli)
        self.assertEqual((version, error), ("1.32.2", ""))
        check = doctor.check_smolvm(cli, version, error)
        self.assertTrue(check.ok)
        self.assertIn("smolvm 1.32.2", check.detail)

    def test_version_passes_the_env_and_a_timeout(self) -> None:
        cli = doctor.SmolvmCli(Path("/x/smol/smol-vmm"), {"SMOLVM_LIB_DIR": "/x/smol"}, "smolmachines wheel")
        seen: dict[str, Any] = {}

        def runner(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
            seen.update(kwargs, argv=argv)
            return subprocess.CompletedProcess(argv, 0, "smolvm 1.32.2\n", "")

        self.assertEqual(doctor.smolvm_version(cli, runner=runner)[0], "1.32.2")
        self.assertEqual(seen["argv"], ["/x/smol/smol-vmm", "-V"])
        self.assertEqual(seen["env"]["SMOLVM_LIB_DIR"], "/x/smol")
        self.assertLessEqual(seen["timeout"], 10)

    def test_version_timeout_and_failure(self) -> None:
        cli = doctor.SmolvmCli(Path("/x/smolvm"), {}, "PATH")

        def hang(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
            raise subprocess.TimeoutExpired(argv, kwargs["timeout"])

        version, error = doctor.smolvm_version(cli, runner=hang)
        self.assertIsNone(version)
        self.assertIn("did not answer", error)

        def broken(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
            return subprocess.CompletedProcess(argv, 127, "", "libkrun.so: cannot open shared object\n")

        version, error = doctor.smolvm_version(cli, runner=broken)
        self.assertIsNone(version)
        self.assertIn("libkrun.so", error)
        self.assertFalse(doctor.check_smolvm(cli, version, error).ok)


class BackendTests(unittest.TestCase):
    def test_docker_only(self) -> None:
        backends = doctor.backend_checks(
            doctor.check_docker(INFO_RUNC),
            doctor.Check(doctor.MICROVM, False, reason="PVM"),
            doctor.check_smolvm(None, None),
        )
        by_name = {b.name: b for b in backends}
        self.assertTrue(by_name["docker"].ok)
        self.assertFalse(by_name["smolmachines"].ok)
        self.assertIn("PVM", by_name["smolmachines"].reason)

    def test_smolmachines_needs_docker_too(self) -> None:
        cli = doctor.SmolvmCli(Path("/usr/bin/smolvm"), {}, "PATH")
        backends = doctor.backend_checks(
            doctor.check_docker(None, "down"),
            doctor.Check(doctor.MICROVM, True, detail="ok"),
            doctor.check_smolvm(cli, "1.32.2"),
        )
        self.assertEqual([b.ok for b in backends], [False, False])
        self.assertIn("down", backends[1].reason)

    def test_everything(self) -> None:
        cli = doctor.SmolvmCli(Path("/usr/bin/smolvm"), {}, "PATH")
        backends = doctor.backend_checks(
            doctor.check_docker(INFO_RUNC),
            doctor.Check(doctor.MICROVM, True, detail="ok"),
            doctor.check_smolvm(cli, "1.32.2"),
        )
        self.assertEqual([b.ok for b in backends], [True, True])


def report(docker_ok: bool) -> doctor.Report:
    docker = doctor.check_docker(INFO_RUNC if docker_ok else None, "" if docker_ok else "engine down")
    microvm = doctor.Check(doctor.MICROVM, False, reason="PVM nested virtualisation (kvm_pvm loaded)")
    smolvm = doctor.check_smolvm(None, None)
    return doctor.Report(
        checks=(docker, doctor.check_gvisor(INFO_RUNC if docker_ok else None), microvm, smolvm),
        backends=doctor.backend_checks(docker, microvm, smolvm),
    )


class DoctorCommandTests(unittest.TestCase):
    def parse(self, argv: list[str]) -> argparse.Namespace:
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers(dest="command")
        doctor_cli.add_parser(sub)
        return parser.parse_args(argv)

    def invoke(self, argv: list[str], fake: doctor.Report) -> tuple[int, str]:
        args = self.parse(argv)
        out = io.StringIO()
        with mock.patch.object(doctor, "gather", return_value=fake), redirect_stdout(out):
            code = args.func(args)
        return code, out.getvalue()

    def test_parser(self) -> None:
        self.assertEqual(self.parse(["doctor"]).format, "text")
        self.assertEqual(self.parse(["doctor", "--format", "json"]).format, "json")
        self.assertIs(self.parse(["doctor"]).func, doctor_cli.run)
        with self.assertRaises(SystemExit), mock.patch("sys.stderr", io.StringIO()):
            self.parse(["doctor", "--format", "yaml"])

    def test_json_with_docker(self) -> None:
        code, text = self.invoke(["doctor", "--format", "json"], report(docker_ok=True))
        self.assertEqual(code, 0)
        data = json.loads(text)
        self.assertTrue(data["ok"])
        self.assertEqual([c["name"] for c in data["checks"]], [doctor.DOCKER, doctor.GVISOR, doctor.MICROVM, doctor.SMOLVM])
        self.assertEqual(set(data["checks"][0]), {"name", "ok", "detail", "reason"})
        self.assertEqual({b["name"]: b["ok"] for b in data["backends"]}, {"docker": True, "smolmachines": False})

    def test_text_without_any_backend(self) -> None:
        code, text = self.invoke(["doctor"], report(docker_ok=False))
        self.assertEqual(code, 1)
        self.assertIn("engine down", text)
        self.assertIn("kvm_pvm", text)
        self.assertIn("No backend can run here", text)

    def test_text_with_docker(self) -> None:
        code, text = self.invoke(["doctor"], report(docker_ok=True))
        self.assertEqual(code, 0)
        self.assertIn("20.10.24", text)
        self.assertNotIn("No backend can run here", text)


if __name__ == "__main__":
    unittest.main()
