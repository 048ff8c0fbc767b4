"""The sidecar's config handed in on PID 1's stdin at its start (``--config-stdin``): read to its
end, written out with each file's mode, and never readable by a daemon (each gets /dev/null as
its stdin, even the proxy started before the config is read)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
from pathlib import Path

from bot_bottle.sidecar import init
from tests.unit._sidecar_process import REPO, SidecarProcess, config_document, daemon_pids, free_port

SECRET = "sk-live-on-stdin-only-0123456789"



class ReadFromStdinTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.folder = Path(tmp.name)

    def pipe(self, data: bytes | None) -> int:
        read, write = os.pipe()
        if data is not None:
            os.write(write, data)
            os.close(write)
        else:
            self.addCleanup(os.close, write)  # never ended
        return read

    def test_files_are_written_with_their_modes(self) -> None:
        fd = self.pipe(config_document({"secrets.json": (SECRET, 0o600), "git-gate/app.key": ("KEY", 0o600),
                                  "policy.json": ("{}", 0o644)}))
        init.receive_config(self.folder, timeout=2, stdin_fd=fd)
        self.assertEqual((self.folder / "secrets.json").read_text(), SECRET)
        self.assertEqual((self.folder / "secrets.json").stat().st_mode & 0o777, 0o600)
        self.assertEqual((self.folder / "policy.json").stat().st_mode & 0o777, 0o644)
        self.assertEqual((self.folder / "git-gate").stat().st_mode & 0o777, 0o700)
        self.assertFalse((self.folder / init.CONFIG_DROP).exists())
        with self.assertRaises(OSError):
            os.fstat(fd)  # closed once read

    def test_a_stream_that_never_ends_fails_the_start(self) -> None:
        fd = self.pipe(None)
        with self.assertRaisesRegex(init._StartFailed, "did not arrive within"):
            init.receive_config(self.folder, timeout=0.1, stdin_fd=fd)

    def test_what_is_not_a_document_or_too_large_fails_the_start(self) -> None:
        with self.assertRaisesRegex(init._StartFailed, "not a config document"):
            init.receive_config(self.folder, timeout=2, stdin_fd=self.pipe(b"\xff\xfe not json"))
        with self.assertRaisesRegex(init._StartFailed, "outside its folder"):
            init.receive_config(self.folder, timeout=2, stdin_fd=self.pipe(config_document({"../x": ("x", 0o600)})))
        read, write = os.pipe()
        writer = subprocess.Popen([sys.executable, "-c", "import os, sys; os.write(1, b'x' * (17 * 1024 * 1024))"],
                                  stdout=write)
        os.close(write)
        with self.assertRaisesRegex(init._StartFailed, "larger than"):
            init.receive_config(self.folder, timeout=10, stdin_fd=read)
        writer.kill()
        writer.wait()

    def test_the_flag_is_a_handed_in_config(self) -> None:
        config = init.parse_args(["--config-stdin"])
        self.assertTrue(config.config_stdin)
        self.assertTrue(config.config_arrives)  # the secrets file must then be there (``preflight``)
        self.assertFalse(init.parse_args(["--config-arrives"]).config_stdin)

    def test_a_child_started_after_take_stdin_reads_nothing_of_it(self) -> None:
        script = textwrap.dedent("""
            import os, subprocess, sys
            from bot_bottle.sidecar import init
            private = init.take_stdin()
            child = subprocess.run([sys.executable, "-c", "import sys; print(repr(sys.stdin.buffer.read()))"],
                                   capture_output=True, text=True, timeout=20)
            print(child.stdout.strip())
            print(repr(os.read(private, 100)))
            print(os.get_inheritable(private))
        """)
        out = subprocess.run([sys.executable, "-c", script], input=SECRET.encode(), capture_output=True,
                             env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.decode().splitlines()
        self.assertEqual(lines, ["b''", repr(SECRET.encode()), "False"])


class StartWithConfigOnStdinTest(SidecarProcess, unittest.TestCase):
    """The init as a process with stand-in daemons (``_sidecar_process``), its config on stdin."""

    def setUp(self) -> None:
        self.make_root()

    def start(self, etc: Path) -> subprocess.Popen[bytes]:
        return self.start_init(etc, free_port(), "--config-stdin", stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def daemons(self, proc: subprocess.Popen[bytes]) -> dict[str, int]:
        return daemon_pids(proc)

    def test_ready_with_the_config_from_stdin_and_no_daemon_holds_it(self) -> None:
        etc = self.root / "etc"
        etc.mkdir(mode=0o711)
        proc = self.start(etc)
        time.sleep(0.3)  # the proxy starts before the config is read: it must not share the stream
        assert proc.stdin is not None
        proc.stdin.write(config_document({
            "policy.json": ('{"version": 2, "routes": [{"host": "a.example"}]}', 0o600),
            "secrets.json": (json.dumps({"credentials": {}, "known_secrets": {"k": SECRET}}), 0o600)}))
        proc.stdin.close()
        proc.stdin = None  # communicate() would flush it
        self.wait_ready(proc)
        self.assertEqual((etc / "secrets.json").stat().st_mode & 0o777, 0o600)
        self.assertIn(SECRET, (etc / "secrets.json").read_text())
        daemons = self.daemons(proc)
        self.assertEqual(sorted(daemons), ["bottle-proxy", "socat"])
        for name, pid in daemons.items():
            self.assertEqual(os.readlink(f"/proc/{pid}/fd/0"), os.devnull, name)
        self.assertEqual(os.readlink(f"/proc/{proc.pid}/fd/0"), os.devnull)

    def test_a_config_that_is_not_handed_in_fails_the_start(self) -> None:
        etc = self.root / "etc"
        etc.mkdir(mode=0o711)
        proc = self.start(etc)
        assert proc.stdin is not None
        proc.stdin.close()  # an empty stream: no document
        proc.stdin = None
        _, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 1)
        self.assertIn(b"not a config document", err)
        self.assertFalse((self.run_dir / "ready").exists())


if __name__ == "__main__":
    unittest.main()
