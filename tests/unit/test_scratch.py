"""Private temporary folders carry their maker's identity; ``cleanup`` removes the orphans."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
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


if __name__ == "__main__":
    unittest.main()
