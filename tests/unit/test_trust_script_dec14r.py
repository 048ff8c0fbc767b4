"""The agent's CA install, the last step of a launch: the shell's builtins do all but ``cat`` and
``chmod``, so it starts two processes in the agent where it started six. Run here with a PATH that
holds only those two tools, against a bundle of our own, under each POSIX shell found."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle.provision import ca

CERT = "-----BEGIN CERTIFICATE-----\nMIIBfake\nMIIBmore\n-----END CERTIFICATE-----\n"
SHELLS = [s for s in ("/bin/sh", "/bin/dash", "/bin/bash", "/bin/busybox") if os.path.exists(s)]


class TwoToolsTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name)
        self.tools = self.root / "bin"
        self.tools.mkdir()
        for tool in ("cat", "chmod"):
            (self.tools / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
        self.bundle = self.root / "bundle.crt"
        self.bundle.write_text("SYSTEM ROOTS\n")
        self.src = self.root / "run" / "ca-0123456789abcdef.crt"
        self.src.parent.mkdir()
        self.dst = self.root / "agent ca.crt"  # a name the script must quote
        patcher = mock.patch.object(ca, "SYSTEM_BUNDLE", str(self.bundle))
        patcher.start()
        self.addCleanup(patcher.stop)

    def run_sh(self, shell: str, script: str) -> subprocess.CompletedProcess[str]:
        argv = [shell, "sh", "-c", script] if shell.endswith("busybox") else [shell, "-c", script]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                              env={"PATH": str(self.tools)})

    def reset(self) -> None:
        self.bundle.write_text("SYSTEM ROOTS\n")
        self.dst.unlink(missing_ok=True)

    def test_installs_with_cat_and_chmod_alone(self) -> None:
        self.src.write_text(CERT)
        for shell in SHELLS:
            with self.subTest(shell=shell):
                self.reset()
                self.dst.write_text("an older copy\n")
                self.dst.chmod(0o600)
                result = self.run_sh(shell, ca.trust_script(str(self.src), str(self.dst)))
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(self.dst.read_text(), CERT)
                self.assertEqual(self.dst.stat().st_mode & 0o777, 0o644)
                self.assertEqual(self.bundle.read_text(), "SYSTEM ROOTS\n\n" + CERT)

    def test_the_waiting_script_too(self) -> None:
        for shell in SHELLS:
            with self.subTest(shell=shell):
                self.reset()
                self.src.unlink(missing_ok=True)

                def publish() -> None:
                    time.sleep(0.2)
                    part = self.src.with_name(".part")
                    part.write_text(CERT)
                    part.replace(self.src)

                writer = threading.Thread(target=publish)
                writer.start()
                # ``sleep`` is the wait's own tool, not the install's.
                (self.tools / "sleep").unlink(missing_ok=True)
                (self.tools / "sleep").symlink_to(shutil.which("sleep") or "/bin/sleep")
                result = self.run_sh(shell, ca.wait_then_trust_script(str(self.src), str(self.dst), 20))
                writer.join()
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(self.bundle.read_text(), "SYSTEM ROOTS\n\n" + CERT)

    def test_what_is_no_certificate_is_refused_saying_so_and_nothing_is_written(self) -> None:
        for text in ("not a certificate\n", "-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\n",
                     "-----BEGIN CERTIFICATE-----\nMIIB\n", ""):
            for shell in SHELLS:
                with self.subTest(text=text, shell=shell):
                    self.reset()
                    self.src.write_text(text)
                    result = self.run_sh(shell, ca.trust_script(str(self.src), str(self.dst)))
                    self.assertNotEqual(result.returncode, 0)
                    self.assertIn("holds no certificate", result.stderr)
                    self.assertEqual(self.bundle.read_text(), "SYSTEM ROOTS\n")
                    self.assertFalse(self.dst.exists())

    def test_a_missing_file_fails_and_writes_nothing(self) -> None:
        self.src.unlink(missing_ok=True)
        for shell in SHELLS:
            with self.subTest(shell=shell):
                self.reset()
                result = self.run_sh(shell, ca.trust_script(str(self.src), str(self.dst)))
                self.assertNotEqual(result.returncode, 0)
                self.assertEqual(self.bundle.read_text(), "SYSTEM ROOTS\n")
                self.assertFalse(self.dst.exists())

    def test_a_name_with_shell_characters_is_only_a_name(self) -> None:
        odd = self.root / "run" / "ca-$(touch pwned);'x'.crt"
        odd.write_text(CERT)
        for shell in SHELLS:
            with self.subTest(shell=shell):
                self.reset()
                result = self.run_sh(shell, ca.trust_script(str(odd), str(self.dst)))
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertFalse((Path.cwd() / "pwned").exists())
                self.assertEqual(self.dst.read_text(), CERT)


if __name__ == "__main__":
    unittest.main()
