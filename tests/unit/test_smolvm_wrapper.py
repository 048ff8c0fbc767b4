"""The smolvm wrapper: argv per version series, error paths, readiness polling, CLI discovery."""

from __future__ import annotations

import os
import subprocess
import tempfile
import unittest
from pathlib import Path
from typing import Any
from unittest import mock

from bot_bottle import doctor
from bot_bottle.backend.smolmachines import smolvm
from bot_bottle.backend.smolmachines.smolvm import Installed, SmolvmError, SmolvmRunResult
from bot_bottle.errors import BotBottleError

CLI = "/opt/smol/smolvm"
V1 = Installed(CLI, {"SMOLVM_LIB_DIR": "/opt/smol/lib"}, "1.32.2")
V08 = Installed(CLI, {}, "0.8.3")
NOTE = "note: no packed assets found for 'smol-vmm' (looked for a sidecar); running as the plain smolvm CLI."


class Recorder:
    """``subprocess.run`` stand-in: records argv and env, answers from a queue (default: ok)."""

    def __init__(self, *answers: tuple[int, str, str] | BaseException) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[list[str], dict[str, Any]]] = []

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((list(argv), kwargs))
        answer = self.answers.pop(0) if self.answers else (0, "", "")
        if isinstance(answer, BaseException):
            raise answer
        return subprocess.CompletedProcess(argv, *answer)

    @property
    def argvs(self) -> list[list[str]]:
        return [argv for argv, _ in self.calls]


class WrapperCase(unittest.TestCase):
    cli = V1

    def setUp(self) -> None:
        smolvm.use(self.cli)
        self.addCleanup(smolvm.use, None)
        env = mock.patch.dict(os.environ)
        env.start()
        self.addCleanup(env.stop)
        os.environ.pop(smolvm.STATE_DIR_ENV, None)

    def run_with(self, recorder: Recorder) -> mock._patch[Any]:
        return mock.patch("bot_bottle.backend.smolmachines.smolvm.subprocess.run", recorder)


class NoCliFound(unittest.TestCase):
    """Where no CLI is found, calls still go through ``subprocess.run`` (by the name ``smolvm``):
    a stand-in for it drives the wrapper, and with nothing to run the error says how to install."""

    def setUp(self) -> None:
        smolvm.use(None)
        self.addCleanup(smolvm.use, None)
        nothing = mock.patch.object(doctor, "find_smolvm", return_value=None)
        nothing.start()
        self.addCleanup(nothing.stop)

    def test_a_stand_in_for_subprocess_run_sees_every_call(self) -> None:
        recorder = Recorder((0, "smolvm 0.8.3\n", ""))
        with mock.patch("bot_bottle.backend.smolmachines.smolvm.subprocess.run", recorder):
            smolvm.machine_create("bb-1", allow_cidrs=["172.20.0.2/32"])
        self.assertEqual(recorder.argvs[0], ["smolvm", "-V"])
        self.assertEqual(recorder.argvs[1][0], "smolvm")
        self.assertEqual(recorder.argvs[1][-1], "bb-1")  # 0.8: the name positional and last
        self.assertIn("--net", recorder.argvs[1])

    def test_nothing_to_run_is_a_clear_error(self) -> None:
        recorder = Recorder(FileNotFoundError(2, "No such file or directory"))
        with mock.patch("bot_bottle.backend.smolmachines.smolvm.subprocess.run", recorder), \
                self.assertRaises(SmolvmError) as caught:
            smolvm.machine_start("bb-1")
        self.assertEqual(caught.exception.returncode, 127)
        self.assertIn("pip install", caught.exception.hint or "")


class Argv1x(WrapperCase):
    """1.x: the name is ``--name NAME`` on every subcommand (the real CLI rejects a positional)."""

    def test_every_subcommand_names_the_machine_with_a_flag(self) -> None:
        rec = Recorder()
        with self.run_with(rec):
            smolvm.machine_create("bb-1")
            smolvm.machine_start("bb-1")
            smolvm.machine_stop("bb-1")
            smolvm.machine_delete("bb-1")
            smolvm.machine_exec("bb-1", ["true"])
        self.assertEqual(rec.argvs, [
            [CLI, "machine", "create", "--name", "bb-1"],
            [CLI, "machine", "start", "--name", "bb-1"],
            [CLI, "machine", "stop", "--name", "bb-1"],
            [CLI, "machine", "delete", "--name", "bb-1", "-f"],
            [CLI, "machine", "exec", "--name", "bb-1", "--", "true"],
        ])
        for argv in rec.argvs:
            self.assertEqual(argv.count("bb-1"), 1, argv)
            self.assertEqual(argv[argv.index("bb-1") - 1], "--name", argv)

    def test_create_with_pack_cidr_env_labels_command(self) -> None:
        rec = Recorder()
        with self.run_with(rec):
            smolvm.machine_create(
                "bb-2", from_path="/c/abc.smolmachine.smolmachine", allow_cidrs=("172.18.0.2/32",),
                env={"A": "1", "B": "x y"}, labels={"bot-bottle.id": "abcdef12"}, command=("sleep", "infinity"),
                memory_mib=4096,
            )
        self.assertEqual(rec.argvs[0], [
            CLI, "machine", "create", "--name", "bb-2", "--from", "/c/abc.smolmachine.smolmachine",
            "--allow-cidr", "172.18.0.2/32", "-e", "A=1", "-e", "B=x y",
            "--label", "bot-bottle.id=abcdef12", "--mem", "4096", "--", "sleep", "infinity",
        ])
        # --allow-cidr implies the network in 1.x; nothing opens it wider.
        self.assertNotIn("--net", rec.argvs[0])

    def test_create_from_an_archive_or_folder_uses_image_with_an_absolute_path(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "img.tar"
            archive.write_bytes(b"x")
            cwd = os.getcwd()
            os.chdir(tmp)
            try:
                argv = smolvm.machine_create_argv(V1, "bb", from_path="img.tar")
            finally:
                os.chdir(cwd)
            self.assertEqual(argv[argv.index("--image") + 1], str(archive.resolve()))
            folder = smolvm.machine_create_argv(V1, "bb", from_path=tmp)
            self.assertEqual(folder[folder.index("--image") + 1], str(Path(tmp).resolve()))

    def test_no_cidrs_means_no_network_flag(self) -> None:
        argv = smolvm.machine_create_argv(V1, "bb", from_path="/x.smolmachine")
        self.assertFalse({"--net", "--allow-cidr"} & set(argv))

    def test_exec_with_user_env_workdir_timeout_after_a_double_dash(self) -> None:
        argv = smolvm.machine_exec_argv(
            V1, "bb", ["sh", "-c", "echo --name x"], env={"K": "v"}, workdir="/w", timeout=2.2, user="node",
            interactive=True, tty=True,
        )
        self.assertEqual(argv, [
            CLI, "machine", "exec", "--name", "bb", "-u", "node", "-i", "-t", "-e", "K=v", "-w", "/w",
            "--timeout", "3s", "--", "sh", "-c", "echo --name x",
        ])

    def test_cp_pack_and_ls(self) -> None:
        self.assertEqual(smolvm.machine_cp_argv(V1, "/h/f", "bb:/g/f"), [CLI, "machine", "cp", "/h/f", "bb:/g/f"])
        self.assertEqual(smolvm.pack_create_argv(V1, "127.0.0.1:5000/bot-bottle:ab", "/c/ab.smolmachine"),
                         [CLI, "pack", "create", "--image", "127.0.0.1:5000/bot-bottle:ab", "-o", "/c/ab.smolmachine"])
        self.assertEqual(smolvm.pack_from_vm_argv(V1, "bb", "/s/snapshot"),
                         [CLI, "pack", "create", "--from-vm", "bb", "-o", "/s/snapshot"])
        self.assertEqual(smolvm.machine_ls_argv(V1), [CLI, "machine", "ls", "--json"])

    def test_state_dir_goes_before_the_subcommand(self) -> None:
        os.environ[smolvm.STATE_DIR_ENV] = "/tmp/smol-state"
        self.assertEqual(smolvm.machine_start_argv(V1, "bb")[:5], [CLI, "--state-dir", "/tmp/smol-state", "machine", "start"])
        self.assertNotIn("--state-dir", smolvm.machine_start_argv(V08, "bb"))


class Argv08(WrapperCase):
    """0.8: the shapes the original design was written against."""

    cli = V08

    def test_shapes(self) -> None:
        rec = Recorder()
        with self.run_with(rec):
            smolvm.pack_create("reg:5000/bot-bottle:ab", "/c/ab.smolmachine")
            smolvm.machine_create("bb", from_path="/c/ab.smolmachine", allow_cidrs=("10.0.0.2/32", "10.0.0.3/32"), env={"A": "1"})
            smolvm.machine_start("bb")
            smolvm.machine_stop("bb")
            smolvm.machine_delete("bb")
            smolvm.machine_exec("bb", ["ls", "-la"], env={"A": "1"}, workdir="/w", timeout=5)
            smolvm.machine_cp("/h/f", "bb:/g/f")
        self.assertEqual(rec.argvs, [
            [CLI, "pack", "create", "--image", "reg:5000/bot-bottle:ab", "-o", "/c/ab.smolmachine"],
            [CLI, "machine", "create", "--from", "/c/ab.smolmachine", "--net", "--allow-cidr", "10.0.0.2/32",
             "--allow-cidr", "10.0.0.3/32", "-e", "A=1", "bb"],
            [CLI, "machine", "start", "--name", "bb"],
            [CLI, "machine", "stop", "--name", "bb"],
            [CLI, "machine", "delete", "-f", "bb"],
            [CLI, "machine", "exec", "--name", "bb", "-e", "A=1", "-w", "/w", "--timeout", "5s", "--", "ls", "-la"],
            [CLI, "machine", "cp", "/h/f", "bb:/g/f"],
        ])

    def test_net_only_with_cidrs(self) -> None:
        self.assertNotIn("--net", smolvm.machine_create_argv(V08, "bb", from_path="/c/a.smolmachine"))
        self.assertEqual(smolvm.machine_create_argv(V08, "bb")[-1], "bb")

    def test_user_switch_happens_inside_the_guest(self) -> None:
        argv = smolvm.machine_exec_argv(V08, "bb", ["id", "-un"], user="root")
        self.assertEqual(argv[argv.index("--") + 1:], ["runuser", "-u", "root", "--", "id", "-un"])
        self.assertNotIn("-u", argv[: argv.index("--")])

    def test_archives_are_refused_with_a_clear_error(self) -> None:
        with self.assertRaises(BotBottleError) as ctx:
            smolvm.machine_create_argv(V08, "bb", from_path="/c/image.tar")
        self.assertIn(".smolmachine", str(ctx.exception))


class Errors(WrapperCase):
    def test_nonzero_raises_with_returncode_and_stderr_without_the_wheel_note(self) -> None:
        rec = Recorder((3, "", f"{NOTE}\nError: vm not found: bb\n"))
        with self.run_with(rec), self.assertRaises(SmolvmError) as ctx:
            smolvm.machine_delete("bb")
        self.assertEqual(ctx.exception.returncode, 3)
        self.assertEqual(ctx.exception.stderr.strip(), "Error: vm not found: bb")
        self.assertIn("vm not found", str(ctx.exception))
        self.assertIsInstance(ctx.exception, BotBottleError)

    def test_exec_returns_the_guest_exit_code_instead_of_raising(self) -> None:
        rec = Recorder((42, "out", f"{NOTE}\nerr"))
        with self.run_with(rec):
            result = smolvm.machine_exec("bb", ["false"])
        self.assertEqual(result, SmolvmRunResult(42, "out", "err"))

    def test_exec_timeout_is_a_result_and_a_missing_binary_an_error(self) -> None:
        with self.run_with(Recorder(subprocess.TimeoutExpired(["x"], 1))):
            self.assertEqual(smolvm.machine_exec("bb", ["sleep", "9"], timeout=1).returncode, 124)
        with self.run_with(Recorder(FileNotFoundError(2, "No such file or directory"))):
            with self.assertRaises(SmolvmError) as ctx:
                smolvm.machine_exec("bb", ["true"])
        self.assertEqual(ctx.exception.returncode, 127)

    def test_hung_subcommand_raises(self) -> None:
        with self.run_with(Recorder(subprocess.TimeoutExpired(["x"], 1))), self.assertRaises(SmolvmError) as ctx:
            smolvm.machine_start("bb")
        self.assertEqual(ctx.exception.returncode, 124)

    def test_cp_with_an_empty_path_does_nothing(self) -> None:
        rec = Recorder()
        with self.run_with(rec):
            smolvm.machine_cp("", "bb:/x")
            smolvm.machine_cp("/x", "")
        self.assertEqual(rec.calls, [])

    def test_the_cli_runs_with_the_wheel_env(self) -> None:
        rec = Recorder()
        with self.run_with(rec):
            smolvm.machine_start("bb")
        self.assertEqual(rec.calls[0][1]["env"]["SMOLVM_LIB_DIR"], "/opt/smol/lib")

    def test_env_values_are_checked_without_being_echoed(self) -> None:
        with self.assertRaises(BotBottleError) as ctx:
            smolvm.machine_create_argv(V1, "bb", env={"TOKEN": "line1\nsecret-part"})
        self.assertNotIn("secret-part", str(ctx.exception))
        with self.assertRaises(BotBottleError):
            smolvm.machine_create_argv(V1, "bb", env={"BAD NAME": "x"})

    def test_ls_parses_json(self) -> None:
        with self.run_with(Recorder((0, '[{"name": "bb", "state": "created"}]', ""))):
            self.assertEqual(smolvm.machine_ls(), [{"name": "bb", "state": "created"}])
        with self.run_with(Recorder((0, "not json", ""))), self.assertRaises(SmolvmError):
            smolvm.machine_ls()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Readiness(WrapperCase):
    def test_polls_true_until_it_succeeds(self) -> None:
        clock = FakeClock()
        answers = iter([SmolvmRunResult(1, "", "agent not up"), SmolvmRunResult(255, "", "x"), SmolvmRunResult(0, "", "")])
        calls: list[tuple[str, list[str]]] = []

        def fake_exec(name: str, argv: list[str], **kwargs: Any) -> SmolvmRunResult:
            calls.append((name, argv))
            return next(answers)

        with mock.patch.object(smolvm, "machine_exec", fake_exec):
            smolvm.wait_exec_ready("bb", timeout=10, interval=0.5, clock=clock, sleep=clock.sleep)
        self.assertEqual(calls, [("bb", ["true"])] * 3)
        self.assertEqual(clock.sleeps, [0.5, 0.5])

    def test_times_out_with_an_error_naming_the_machine_and_never_exits(self) -> None:
        clock = FakeClock()
        with mock.patch.object(smolvm, "machine_exec", return_value=SmolvmRunResult(1, "", "connection refused")):
            with self.assertRaises(SmolvmError) as ctx:
                smolvm.wait_exec_ready("bb-9", timeout=3, interval=1, clock=clock, sleep=clock.sleep)
        self.assertIn("bb-9", str(ctx.exception))
        self.assertIn("not ready", str(ctx.exception))
        self.assertIn("connection refused", str(ctx.exception))
        self.assertLessEqual(len(clock.sleeps), 4)
        self.assertNotIsInstance(ctx.exception, SystemExit)

    def test_each_poll_is_bounded_by_a_timeout(self) -> None:
        rec = Recorder()
        with self.run_with(rec):
            smolvm.wait_exec_ready("bb", timeout=60)
        argv = rec.argvs[0]
        self.assertEqual(argv[argv.index("--timeout") + 1], "10s")


class Discovery(unittest.TestCase):
    def tearDown(self) -> None:
        smolvm.use(None)

    def test_version_series(self) -> None:
        self.assertTrue(Installed(CLI, {}, "0.8.3").legacy)
        self.assertFalse(Installed(CLI, {}, "1.32.2").legacy)
        self.assertFalse(Installed(CLI, {}, "unknown").legacy)
        self.assertTrue(Installed(CLI, {}, "1.0.0").reads_archives)
        self.assertFalse(Installed(CLI, {}, "0.8.0").reads_archives)

    def test_installed_is_probed_once_from_the_doctor(self) -> None:
        found = doctor.SmolvmCli(Path("/w/smol/smol-vmm"), {"SMOLVM_LIB_DIR": "/w/smol"}, "smolmachines wheel")
        with mock.patch.object(doctor, "find_smolvm", return_value=found) as find, \
                mock.patch.object(doctor, "smolvm_version", return_value=("1.32.2", "")) as version:
            first = smolvm.installed()
            second = smolvm.installed()
        self.assertIs(first, second)
        self.assertEqual(find.call_count, 1)
        self.assertEqual(version.call_count, 1)
        self.assertEqual(first, Installed("/w/smol/smol-vmm", {"SMOLVM_LIB_DIR": "/w/smol"}, "1.32.2"))

    def test_missing_cli_is_a_clear_error(self) -> None:
        with mock.patch.object(doctor, "find_smolvm", return_value=None):
            with self.assertRaises(SmolvmError) as ctx:
                smolvm.installed()
            self.assertFalse(smolvm.is_available())
        self.assertIn("smolmachines", ctx.exception.hint or "")

    def test_is_available_finds_the_wheel_binary(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            binary = Path(tmp) / "smol" / "smol-vmm"
            binary.parent.mkdir()
            binary.write_text("#!/bin/sh\n")
            binary.chmod(0o755)
            with mock.patch.object(doctor.shutil, "which", return_value=None), \
                    mock.patch.object(doctor.sys, "path", [tmp]):
                self.assertTrue(smolvm.is_available())
            with mock.patch.object(doctor.shutil, "which", return_value="/usr/bin/smolvm"):
                self.assertTrue(smolvm.is_available())


if __name__ == "__main__":
    unittest.main()
