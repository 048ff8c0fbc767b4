"""`bot-bottle doctor` on dockerd's open-file limit, read from described /proc trees."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

from bot_bottle import doctor

LIMITS = """Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max processes             94000                94000                processes
Max open files            {soft}                {hard}                files
Max locked memory         8388608              8388608              bytes
"""


class FakeProc:
    """A temp folder laid out like /proc with the processes given (pid -> (comm, soft, hard))."""

    def __init__(self, test: unittest.TestCase, processes: dict[int, tuple[str, str, str]]) -> None:
        tmp = tempfile.TemporaryDirectory()
        test.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name) / "proc"
        self.pid_file = Path(tmp.name) / "docker.pid"
        (self.root / "self").mkdir(parents=True)
        for pid, (comm, soft, hard) in processes.items():
            (self.root / str(pid)).mkdir()
            (self.root / str(pid) / "comm").write_text(comm + "\n")
            (self.root / str(pid) / "limits").write_text(LIMITS.format(soft=soft, hard=hard))

    def limit(self) -> tuple[doctor.FileLimit | None, str]:
        return doctor.dockerd_file_limit(self.root, self.pid_file)


class ReadTheLimit(unittest.TestCase):
    def test_dockerds_own_limit_is_read(self) -> None:
        proc = FakeProc(self, {1: ("systemd", "1024", "524288"), 812: ("dockerd", "20000", "20000"),
                               830: ("containerd", "20000", "20000")})
        self.assertEqual(proc.limit(), (doctor.FileLimit(812, 20000, 20000), ""))

    def test_unlimited(self) -> None:
        proc = FakeProc(self, {9: ("dockerd", "unlimited", "unlimited")})
        self.assertEqual(proc.limit(), (doctor.FileLimit(9, None, None), ""))

    def test_no_dockerd_here_is_unknown(self) -> None:
        limit, why = FakeProc(self, {1: ("systemd", "1024", "524288")}).limit()
        self.assertIsNone(limit)
        self.assertIn("no dockerd process is visible on this host", why)

    def test_several_dockerds_take_the_pid_files(self) -> None:
        proc = FakeProc(self, {5: ("dockerd", "1024", "4096"), 6: ("dockerd", "1048576", "1048576")})
        self.assertIsNone(proc.limit()[0], "none named: unknown")
        proc.pid_file.write_text("6\n")
        self.assertEqual(proc.limit()[0], doctor.FileLimit(6, 1048576, 1048576))

    def test_unreadable_limits_are_unknown(self) -> None:
        proc = FakeProc(self, {7: ("dockerd", "1", "1")})
        (proc.root / "7" / "limits").unlink()
        (proc.root / "7" / "limits").mkdir()  # reading it fails, as a permission refusal would
        limit, why = proc.limit()
        self.assertIsNone(limit)
        self.assertIn("cannot read", why)

    def test_parse(self) -> None:
        self.assertEqual(doctor.parse_nofile(LIMITS.format(soft="1024", hard="524288")), (1024, 524288))
        self.assertIsNone(doctor.parse_nofile("Max processes 1 1 processes\n"))


class TheCheck(unittest.TestCase):
    def test_a_low_limit_warns_gvisor_hosts_and_says_how_to_raise_it(self) -> None:
        check = doctor.check_open_files(doctor.FileLimit(812, 20000, 20000), "", gvisor=True)
        self.assertFalse(check.ok)
        self.assertIn("may open 20000 files", check.detail)
        self.assertIn("LimitNOFILE=1048576", check.reason)
        self.assertIn("docker.service.d", check.reason)
        self.assertIn("ulimit -n 1048576", check.reason)

    def test_a_low_limit_without_gvisor_is_only_noted(self) -> None:
        check = doctor.check_open_files(doctor.FileLimit(812, 20000, 20000), "", gvisor=False)
        self.assertTrue(check.ok)
        self.assertIn("only gVisor bottles need more", check.detail)

    def test_enough(self) -> None:
        for hard in (doctor.NOFILE_ENOUGH, 1048576, None):
            with self.subTest(hard=hard):
                check = doctor.check_open_files(doctor.FileLimit(1, 1024, hard), "", gvisor=True)
                self.assertTrue(check.ok, check)
                self.assertEqual(check.reason, "")

    def test_unknown_is_said(self) -> None:
        check = doctor.check_open_files(None, "no dockerd process is visible on this host", gvisor=True)
        self.assertTrue(check.ok)
        self.assertIn("unknown", check.detail)
        self.assertIn("no dockerd process is visible", check.detail)

    def test_gather_reports_it(self) -> None:
        from unittest import mock

        with mock.patch.object(doctor, "probe_docker_info", return_value=(None, "engine down")), \
                mock.patch.object(doctor, "dockerd_file_limit", return_value=(doctor.FileLimit(3, 100, 100), "")), \
                mock.patch.object(doctor, "find_smolvm", return_value=None):
            report = doctor.gather()
        names = [c.name for c in report.checks]
        self.assertIn(doctor.OPEN_FILES, names)
        self.assertIn("may open 100 files", report.checks[names.index(doctor.OPEN_FILES)].detail)


if __name__ == "__main__":
    unittest.main()
