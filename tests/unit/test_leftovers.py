"""What a launch killed with SIGKILL could leave behind: private temporary folders (named after
their maker, so ``cleanup`` removes the orphans) and child processes (ended by the kernel with
their parent)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import time
import unittest
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

from bot_bottle import proc, scratch


class ScratchTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name)
        patcher = mock.patch.object(tempfile, "tempdir", str(self.root))
        patcher.start()
        self.addCleanup(patcher.stop)

    def dead_owner(self) -> str:
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        ident = proc.identity(child.pid)
        child.wait()
        return ident.replace(":", ".")

    def test_a_folder_is_private_named_after_its_owner_and_removed(self) -> None:
        with scratch.private_dir() as folder:
            self.assertEqual(folder.parent, self.root)
            self.assertTrue(folder.name.startswith(f"bot-bottle-{proc.identity().replace(':', '.')}-"))
            self.assertEqual(folder.stat().st_mode & 0o777, 0o700)
            self.assertEqual(scratch.orphans(), [])  # its owner runs
        self.assertFalse(folder.exists())

    def test_orphans_are_folders_whose_owner_is_gone(self) -> None:
        orphan = self.root / f"bot-bottle-{self.dead_owner()}-abc"
        orphan.mkdir()
        (orphan / "secrets.json").write_text("{}")
        live = self.root / f"bot-bottle-{proc.identity().replace(':', '.')}-def"
        live.mkdir()
        for other in ("bot-bottle-edit-x", "bot-bottle-demo-y", "bot-bottle-1a2b"):
            (self.root / other).mkdir()
        (self.root / f"bot-bottle-{self.dead_owner()}-file").write_text("not a folder")
        self.assertEqual(scratch.orphans(), [orphan])

    def test_cleanup_removes_them_and_the_preview_does_not(self) -> None:
        from bot_bottle import cli

        orphan = self.root / f"bot-bottle-{self.dead_owner()}-abc"
        orphan.mkdir()
        (orphan / "agent.env").write_text("SECRET=x")
        home = self.root / "home"
        home.mkdir()
        with mock.patch.dict(os.environ, {"HOME": str(home), "DOCKER_HOST": "unix:///nonexistent.sock"}), \
                redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            self.assertEqual(cli.main(["cleanup", "-n"]), 0)
            self.assertTrue(orphan.exists())
            self.assertEqual(cli.main(["cleanup"]), 0)
        self.assertFalse(orphan.exists())

    def test_without_an_engine_preserved_bottles_are_kept_unless_all(self) -> None:
        import json

        from bot_bottle import cli
        from bot_bottle.state import StateDir

        home = self.root / "home"
        saved = StateDir(home / ".bot-bottle" / "state", "abcdef12")
        saved.create()
        saved.preserve("asked to preserve")

        def cleanup(*extra: str) -> dict:
            out = io.StringIO()
            with mock.patch.dict(os.environ, {"HOME": str(home), "DOCKER_HOST": "unix:///nonexistent.sock"}), \
                    redirect_stdout(out), redirect_stderr(io.StringIO()):
                self.assertEqual(cli.main(["cleanup", "-n", "--format", "json", *extra]), 0)
            return json.loads(out.getvalue())

        self.assertEqual([k["bottle_id"] for k in cleanup()["kept"]], ["abcdef12"])
        self.assertEqual([r["bottle_id"] for r in cleanup("--all")["would_remove"]], ["abcdef12"])
        self.assertTrue(saved.path.is_dir(), "a preview removes nothing")



class DieWithParentTest(unittest.TestCase):
    def test_a_child_ends_when_the_process_that_started_it_is_killed(self) -> None:
        if proc.die_with_parent(["true"]) == ["true"]:
            self.skipTest("setpriv (util-linux) is not installed: children are started as they are")
        starter = (
            "import subprocess, sys, time\n"
            "from bot_bottle import proc\n"
            "child = subprocess.Popen(proc.die_with_parent(['sleep', '60']))\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(60)\n"
        )
        parent = subprocess.Popen([sys.executable, "-c", starter], stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
        assert parent.stdout is not None
        self.addCleanup(parent.stdout.close)
        child = int(parent.stdout.readline())
        self.addCleanup(lambda: proc.is_alive(proc.identity(child)) and os.kill(child, 9))
        # setpriv asks for the signal, then becomes the command: wait for that (a parent gone
        # before the request is made is a race of the test, not what is tested here).
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and Path(f"/proc/{child}/comm").read_text().strip() != "sleep":
            time.sleep(0.01)
        os.kill(parent.pid, 9)  # SIGKILL: no finally, no handler runs in the parent
        parent.wait(timeout=10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _running(child):
            time.sleep(0.05)
        self.assertFalse(_running(child), "the child outlived its killed parent")


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


if __name__ == "__main__":
    unittest.main()
