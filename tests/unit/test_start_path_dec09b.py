"""The bottle start's critical path: the CA trusted in the agent by an exec started early (waiting
for this start's own copy of the certificate), the sidecar's PID 1 beginning its CA before it
imports the init, the volume and network made while the images are checked, and the engine's
data folder read from the ``docker info`` already at hand."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import unittest
from pathlib import Path
from tempfile import TemporaryDirectory
from unittest import mock

from bot_bottle.backend.docker import engine, launch, snapshot_room
from bot_bottle.backend.docker.launch import DockerLauncher, LaunchOptions
from bot_bottle.errors import BotBottleError
from bot_bottle.provision import ca
from bot_bottle.sidecar import boot, ca_maker, init

REPO = Path(__file__).resolve().parents[2]
CERT = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


def _launcher(tmp: str, **options: object) -> DockerLauncher:
    plan = mock.Mock(agent="a", bottle="b", cwd=None, label=None, color=None, runtime="runc", agent_folder=None,
                     agent_image="agent-image")
    return DockerLauncher(plan, LaunchOptions(**options), Path(tmp) / "state")


class WaitThenTrustScriptTest(unittest.TestCase):
    """The script the early exec runs as root in the agent, run here against a bundle of our own."""

    def setUp(self) -> None:
        tmp = TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name)
        self.bundle = self.root / "bundle.crt"
        self.bundle.write_text("SYSTEM ROOTS\n")
        self.src = self.root / "run" / "ca-0123456789abcdef.crt"
        self.src.parent.mkdir()
        self.dst = self.root / "agent-ca.crt"
        patcher = mock.patch.object(ca, "SYSTEM_BUNDLE", str(self.bundle))
        patcher.start()
        self.addCleanup(patcher.stop)

    def run_script(self, timeout: float) -> subprocess.CompletedProcess[str]:
        script = ca.wait_then_trust_script(str(self.src), str(self.dst), timeout)
        return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)

    def test_waits_for_the_certificate_then_trusts_it(self) -> None:
        def publish() -> None:
            time.sleep(0.3)
            part = self.src.with_name(".part")
            part.write_text(CERT)
            part.replace(self.src)

        writer = threading.Thread(target=publish)
        writer.start()
        began = time.monotonic()
        result = self.run_script(timeout=20)
        writer.join()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertGreaterEqual(time.monotonic() - began, 0.3)
        self.assertEqual(self.dst.read_text(), CERT)
        self.assertEqual(self.bundle.read_text(), "SYSTEM ROOTS\n\n" + CERT)
        self.assertEqual(self.dst.stat().st_mode & 0o777, 0o644)

    def test_a_certificate_that_never_comes_ends_the_wait(self) -> None:
        began = time.monotonic()
        result = self.run_script(timeout=1)
        self.assertEqual(result.returncode, ca.WAIT_EXPIRED)
        self.assertLess(time.monotonic() - began, 10)
        self.assertEqual(self.bundle.read_text(), "SYSTEM ROOTS\n")
        self.assertFalse(self.dst.exists())

    def test_a_file_that_is_no_certificate_is_not_trusted(self) -> None:
        self.src.write_text("not a certificate\n")
        result = self.run_script(timeout=5)
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(self.bundle.read_text(), "SYSTEM ROOTS\n")

    def test_the_blocking_way_runs_the_same_install(self) -> None:
        bottle = mock.Mock()
        bottle.exec.return_value = mock.Mock(ok=True)
        ca.trust_bottle_ca(bottle, "/run/bottle/ca.crt", "/usr/local/share/ca-certificates/x.crt")
        script = bottle.exec.call_args.args[0]
        self.assertEqual(script, ca.trust_script("/run/bottle/ca.crt", "/usr/local/share/ca-certificates/x.crt"))
        self.assertNotIn("while", script)


class CaCopyTest(unittest.TestCase):
    """The sidecar publishes its certificate under a name new to each launch too."""

    def setUp(self) -> None:
        tmp = TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name)

    def config(self, copy: str | None) -> init.Config:
        return init.Config(run_dir=self.root / "run", state_dir=self.root / "state", ca_copy=copy)

    def test_both_names_hold_the_certificate(self) -> None:
        config = self.config("ca-" + "ab" * 16 + ".crt")
        config.confdir.mkdir(parents=True)
        config.run_dir.mkdir()
        (config.confdir / init.MITM_CA_CERT).write_text(CERT)
        init.publish_ca(config)
        self.assertEqual(config.ca_path.read_text(), CERT)
        assert config.ca_copy_path is not None
        self.assertEqual(config.ca_copy_path.read_text(), CERT)
        self.assertEqual(sorted(p.name for p in config.run_dir.iterdir()), sorted(["ca.crt", config.ca_copy]))

    def test_without_a_copy_only_ca_crt(self) -> None:
        config = self.config(None)
        config.confdir.mkdir(parents=True)
        config.run_dir.mkdir()
        (config.confdir / init.MITM_CA_CERT).write_text(CERT)
        init.publish_ca(config)
        self.assertEqual([p.name for p in config.run_dir.iterdir()], ["ca.crt"])

    def test_the_name_is_checked(self) -> None:
        good = "ca-" + "0f" * 16 + ".crt"
        self.assertEqual(init.parse_args(["--ca-copy", good]).ca_copy, good)
        self.assertIsNone(init.parse_args([]).ca_copy)
        for bad in ("../ca-0123456789abcdef.crt", "ca.crt", "ca-0123456789abcdef.crt/x", "proxy.sock",
                    "ca-XYZ0123456789abcdef.crt", "ca-0123.crt"):
            with self.subTest(bad=bad), mock.patch("sys.stderr"), self.assertRaises(SystemExit):
                init.parse_args(["--ca-copy", bad])

    def test_an_older_starts_copies_go_before_anything_starts(self) -> None:
        config = self.config("ca-" + "cd" * 16 + ".crt")
        config.run_dir.mkdir(parents=True)
        stale = config.run_dir / ("ca-" + "ee" * 16 + ".crt")
        stale.write_text(CERT)
        kept = config.run_dir / "other.txt"
        kept.write_text("x")

        def stop(_confdir: Path) -> None:
            raise init._StartFailed("stop here")

        with mock.patch.object(init, "start_ca", side_effect=stop), mock.patch.object(init.signal, "signal"), \
                mock.patch.object(init.signal, "alarm"), mock.patch("sys.stderr"):
            self.assertEqual(init.run(config), 1)
        self.assertFalse(stale.exists())
        self.assertTrue(kept.exists())


class SidecarInitOrderTest(unittest.TestCase):
    def test_the_ca_is_begun_before_the_accounts_and_folders(self) -> None:
        tmp = TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        root = Path(tmp.name)
        config = init.Config(policy=root / "etc" / "policy.json", secrets=root / "etc" / "secrets.json",
                             run_dir=root / "run", state_dir=root / "state", log_dir=root / "log",
                             git_gate_config=root / "etc" / "git-gate.json")
        order: list[str] = []

        def accounts() -> None:
            order.append("accounts")
            raise init._StartFailed("stop here")

        with mock.patch.object(init, "start_ca", side_effect=lambda _c: order.append("ca")), \
                mock.patch.object(init, "daemon_accounts", side_effect=accounts), \
                mock.patch.object(init.signal, "signal"), mock.patch.object(init.signal, "alarm"), \
                mock.patch("sys.stderr"):
            self.assertEqual(init.run(config), 1)
        self.assertEqual(order, ["ca", "accounts"])


class BootBeginsTheCaTest(unittest.TestCase):
    """PID 1 (``boot``) forks the CA's maker before it imports the init."""

    def test_the_ca_is_begun_in_the_default_folder_and_handed_to_the_init(self) -> None:
        with mock.patch.object(ca_maker, "start_ca", return_value=4242) as start, \
                mock.patch.object(init, "main", return_value=0) as run:
            self.assertEqual(boot.main(["--config-arrives"]), 0)
        confdir = ca_maker.DEFAULT_STATE_DIR / ca_maker.CONFDIR_NAME
        start.assert_called_once_with(confdir)
        self.assertEqual(run.call_args.args, (["--config-arrives"],))
        self.assertEqual(run.call_args.kwargs, {"early_ca": (confdir, 4242)})
        self.assertEqual(init.Config().confdir, confdir)

    def test_help_begins_nothing(self) -> None:
        with mock.patch.object(ca_maker, "start_ca") as start, mock.patch.object(init, "main", return_value=0) as run:
            boot.main(["--help"])
        start.assert_not_called()
        self.assertIsNone(run.call_args.kwargs["early_ca"])

    def test_boot_imports_nothing_of_the_init(self) -> None:
        probe = ("import sys; import bot_bottle.sidecar.boot; "
                 "print(sorted(m for m in ('bot_bottle.sidecar.init', 'argparse', 'json', 'subprocess', 'socket', "
                 "'dataclasses', 'mitmproxy') if m in sys.modules) or 'none')")
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=60,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
        self.assertEqual(out.stdout.strip(), "none", out.stderr)

    def run_main(self, argv: list[str], early: tuple[Path, int | None]) -> tuple[list[object], list[int]]:
        seen: list[object] = []
        waited: list[int] = []
        with mock.patch.object(init, "run", side_effect=lambda config, *rest: seen.append(rest) or 0), \
                mock.patch.object(init.os, "waitpid", side_effect=lambda pid, _f: waited.append(pid) or (pid, 0)):
            init.main(argv, early_ca=early)
        return seen, waited

    def test_the_init_takes_the_begun_ca_for_its_own_folder(self) -> None:
        default = init.Config().confdir
        self.assertEqual(self.run_main([], (default, 77)), ([((77,),)], []))
        self.assertEqual(self.run_main([], (default, None)), ([((None,),)], []))

    def test_another_state_folder_makes_its_own_ca(self) -> None:
        default = init.Config().confdir
        self.assertEqual(self.run_main(["--state-dir", "/elsewhere"], (default, 77)), ([()], [77]))
        self.assertEqual(self.run_main(["--state=/elsewhere"], (default, None)), ([()], []))

    def test_the_init_begins_it_itself_when_run_alone(self) -> None:
        self.assertEqual(self.run_main([], None)[0], [()])  # type: ignore[arg-type]

    def test_run_does_not_begin_a_second_ca(self) -> None:
        tmp = TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        root = Path(tmp.name)
        config = init.Config(policy=root / "etc" / "policy.json", secrets=root / "etc" / "secrets.json",
                             run_dir=root / "run", state_dir=root / "state", log_dir=root / "log",
                             git_gate_config=root / "etc" / "git-gate.json")

        def stop() -> None:
            raise init._StartFailed("stop here")

        with mock.patch.object(init, "start_ca") as start, \
                mock.patch.object(init, "daemon_accounts", side_effect=stop), \
                mock.patch.object(init.signal, "signal"), mock.patch.object(init.signal, "alarm"), \
                mock.patch("sys.stderr"):
            self.assertEqual(init.run(config, (None,)), 1)
        start.assert_not_called()


class EarlyCaTrustTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name
        self.launcher = _launcher(tmp.name)
        self.bottle = mock.Mock(container="agent-1")
        self.bottle.exec_argv.side_effect = lambda script, user="node": ["docker", "exec", "-u", user, "agent-1",
                                                                         "sh", "-c", script]

    def test_each_launch_has_its_own_copy_name(self) -> None:
        other = _launcher(self.tmp)
        self.assertRegex(self.launcher._ca_copy, init.CA_COPY_NAME)
        self.assertRegex(other._ca_copy, init.CA_COPY_NAME)
        self.assertNotEqual(self.launcher._ca_copy, other._ca_copy)

    def test_the_early_exec_waits_as_root_for_this_starts_copy(self) -> None:
        started: list[list[str]] = []

        def popen(argv: list[str], **_: object) -> mock.Mock:
            started.append(argv)
            return mock.Mock()

        with mock.patch.object(launch.subprocess, "Popen", popen):
            self.launcher._begin_ca_trust(self.bottle)
        argv = started[0]
        tail = argv[argv.index("docker"):]
        self.assertEqual(tail[:5], ["docker", "exec", "-u", "root", "agent-1"])
        self.assertIn(f"/run/bottle/{self.launcher._ca_copy}", tail[-1])
        self.assertNotIn("/run/bottle/ca.crt", tail[-1])

    def trusted(self, script: str) -> tuple[list[str], str]:
        self.launcher._ca_trust = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE,
                                                   stderr=subprocess.STDOUT)
        with mock.patch.object(self.launcher, "_wait_sidecar_file"), \
                mock.patch.object(ca, "trust_bottle_ca") as blocking:
            self.launcher._trust_proxy_ca(self.bottle)
        self.assertNotIn("ca-trusted", self.launcher.waits)  # the sidecar's waits only
        return [c.args[1] for c in blocking.call_args_list], str(self.launcher.ca_trusted)

    def test_an_early_exec_that_trusted_it_is_all(self) -> None:
        self.assertEqual(self.trusted("exit 0"), ([], "early"))

    def test_an_early_exec_that_failed_is_followed_by_the_blocking_way(self) -> None:
        self.assertEqual(self.trusted("exit 3"), (["/run/bottle/ca.crt"], "after"))

    def test_no_early_exec_at_all_takes_the_blocking_way(self) -> None:
        with mock.patch.object(self.launcher, "_wait_sidecar_file"), \
                mock.patch.object(ca, "trust_bottle_ca") as blocking:
            self.launcher._trust_proxy_ca(self.bottle)
        self.assertEqual(blocking.call_count, 1)

    def test_a_failed_launch_ends_the_waiting_exec(self) -> None:
        waiting = subprocess.Popen(["sleep", "30"], stdout=subprocess.PIPE)
        self.addCleanup(lambda: waiting.poll() is None and waiting.kill())
        self.launcher._ca_trust = waiting
        with mock.patch.object(engine, "run", side_effect=AssertionError("no docker call expected")):
            self.launcher.teardown(launch_failed=True)
        self.assertIsNotNone(waiting.poll(), "the early exec's client outlived the launch")

    def test_the_sidecar_is_told_the_copy_name(self) -> None:
        calls: list[list[str]] = []

        def run(args: list[str], **_: object) -> engine.DockerResult:
            calls.append(list(args))
            raise engine.DockerError("stop here")

        with mock.patch.object(engine, "run", run), \
                mock.patch.object(self.launcher, "_sidecar_files", return_value={}), \
                self.assertRaises(engine.DockerError):
            self.launcher._start_sidecar("sidecar-image")
        create = calls[0]
        at = create.index("sidecar-image")
        self.assertEqual(create[at + 1:], ["--config-arrives", "--ca-copy", self.launcher._ca_copy])


class VolumeAndNetworkWhileImagesAreCheckedTest(unittest.TestCase):
    def test_made_alongside_the_image_check_and_rolled_back_after(self) -> None:
        tmp = TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        launcher = _launcher(tmp.name)
        network_asked = threading.Event()
        seen_during_check: list[bool] = []
        calls: list[list[str]] = []
        lock = threading.Lock()

        def run(args: list[str], **_: object) -> engine.DockerResult:
            with lock:
                calls.append(list(args))
            if args[:2] == ["network", "create"]:
                network_asked.set()
                return engine.DockerResult(0, "net-id-1\n", "")
            return engine.DockerResult(0, "", "")

        def check_images() -> tuple[str, str]:
            seen_during_check.append(network_asked.wait(5))
            return "sidecar-ref", "agent-ref"

        with mock.patch.object(engine, "run", run), \
                mock.patch.object(launcher, "_check_images", check_images), \
                mock.patch.object(launcher, "_start_sidecar"), \
                mock.patch.object(launcher, "_start_agent", side_effect=BotBottleError("stop here")), \
                self.assertRaises(BotBottleError):
            launcher.launch()
        self.assertEqual(seen_during_check, [True])
        verbs = [" ".join(c[:2]) for c in calls]
        self.assertIn("volume create", verbs)
        self.assertIn(["network", "rm", "net-id-1"], calls)
        self.assertIn(["volume", "rm", "-f", launcher.names.socket_volume], calls)
        self.assertFalse(launcher.state.path.exists())

    def test_a_failed_image_check_still_removes_what_was_made(self) -> None:
        tmp = TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        launcher = _launcher(tmp.name)
        calls: list[list[str]] = []
        lock = threading.Lock()

        def run(args: list[str], **_: object) -> engine.DockerResult:
            time.sleep(0.05)  # still being made when the image check fails
            with lock:
                calls.append(list(args))
            return engine.DockerResult(0, "net-id-2\n" if args[:2] == ["network", "create"] else "", "")

        with mock.patch.object(engine, "run", run), \
                mock.patch.object(launcher, "_check_images", side_effect=BotBottleError("no image")), \
                self.assertRaises(BotBottleError):
            launcher.launch()
        self.assertIn(["network", "rm", "net-id-2"], calls)
        self.assertIn(["volume", "rm", "-f", launcher.names.socket_volume], calls)


class DataRootTest(unittest.TestCase):
    def test_the_known_info_answers_without_asking_the_engine(self) -> None:
        tmp = TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        with mock.patch.object(engine, "_last_info", {"DockerRootDir": tmp.name, "NCPU": 2}), \
                mock.patch.object(engine, "run", side_effect=AssertionError("asked the engine again")):
            self.assertEqual(snapshot_room.data_root(), tmp.name)

    def test_without_it_the_engine_is_asked(self) -> None:
        tmp = TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        answer = engine.DockerResult(0, tmp.name + "\n", "")
        with mock.patch.object(engine, "_last_info", None), mock.patch.object(engine, "run", return_value=answer):
            self.assertEqual(snapshot_room.data_root(), tmp.name)

    def test_a_folder_not_on_this_machine_is_none(self) -> None:
        with mock.patch.object(engine, "_last_info", {"DockerRootDir": "/no/such/folder/here"}), \
                mock.patch.object(engine, "run", side_effect=AssertionError("asked the engine again")):
            self.assertIsNone(snapshot_room.data_root())


if __name__ == "__main__":
    unittest.main()
