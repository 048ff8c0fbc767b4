"""Copying a working tree in: the archive every backend unpacks, its errors, the progress line."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle.backend import archive
from bot_bottle.errors import BotBottleError
from bot_bottle.provision import workspace
from tests.fake_bottle import FakeBottle


class ArchiveTests(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name)
        self.tree = self.root / "tree"
        (self.tree / "src").mkdir(parents=True)
        (self.tree / "src" / "main.py").write_text("print('hi')\n")
        secret = self.root / "outside-secret"
        secret.write_text("host-only-secret\n")
        (self.tree / "key").symlink_to(secret)

    def members(self) -> dict[str, tarfile.TarInfo]:
        buf = io.BytesIO()
        archive.pack(buf, self.tree, "workspace")
        buf.seek(0)
        with tarfile.open(fileobj=buf) as tar:
            return {m.name: m for m in tar.getmembers()}

    def test_links_go_in_as_links_and_owners_are_dropped(self) -> None:
        members = self.members()
        self.assertEqual(members["workspace/src/main.py"].uid, 0)
        self.assertEqual(members["workspace/src/main.py"].uname, "")
        link = members["workspace/key"]
        self.assertTrue(link.issym())
        self.assertEqual(link.size, 0)  # the secret it points to is not in the archive

    def test_a_file_that_cannot_be_read_names_itself(self) -> None:
        # Tests run as root here, where a mode cannot deny reading: the open that tarfile does
        # is made to fail as it would for another user's file.
        victim = str(self.tree / "src" / "main.py")
        real_open = tarfile.bltn_open

        def guarded_open(name, *args, **kwargs):
            if str(name) == victim:
                raise PermissionError(13, "Permission denied", victim)
            return real_open(name, *args, **kwargs)

        with mock.patch.object(tarfile, "bltn_open", guarded_open):
            with self.assertRaises(BotBottleError) as ctx:
                archive.pack(io.BytesIO(), self.tree, "workspace")
        self.assertEqual(str(ctx.exception), f"cannot copy {self.tree} into the bottle: Permission denied: {victim}")

    def test_copy_timeout_grows_with_the_archive(self) -> None:
        self.assertIsNone(archive.copy_timeout(None, 10**9))
        self.assertEqual(archive.copy_timeout(300, 0), 300)
        self.assertEqual(archive.copy_timeout(300, 100 * archive.SLOWEST_COPY_BYTES_PER_S), 400)


class WorkspaceTests(unittest.TestCase):
    def test_progress_says_how_big_the_tree_is(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp) / "proj"
            (tree / "a").mkdir(parents=True)
            (tree / "a" / "big.bin").write_bytes(b"x" * (3 * 1024 * 1024))
            (tree / "small.txt").write_text("hi\n")
            os.symlink("/etc/passwd", tree / "link")
            said: list[str] = []
            bottle = FakeBottle()
            self.addCleanup(bottle.close)
            workspace.copy_in(bottle, tree, "/home/node/workspace", progress=said.append)
            self.assertEqual(len(said), 1)
            self.assertIn(str(tree), said[0])
            self.assertIn("3.0 MB in 3 files", said[0])
            self.assertEqual((bottle.guest("/home/node/workspace") / "small.txt").read_text(), "hi\n")

    def test_human_bytes(self) -> None:
        self.assertEqual(workspace.human_bytes(512), "512 B")
        self.assertEqual(workspace.human_bytes(1536), "1.5 KB")
        self.assertEqual(workspace.human_bytes(5 * 1024**3), "5.0 GB")
        self.assertEqual(workspace.human_bytes(3 * 1024**4), "3072.0 GB")


if __name__ == "__main__":
    unittest.main()
