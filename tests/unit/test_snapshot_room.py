"""A snapshot is refused when it would not fit on the engine's disk (a sparse file is written
whole by ``docker commit``), and a snapshot that replaces an earlier one removes it."""

from __future__ import annotations

import os
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle import lifecycle
from bot_bottle.backend.docker import engine, snapshot_room
from bot_bottle.errors import BotBottleError

GIB = snapshot_room.GIB


def setUpModule() -> None:
    # A snapshot takes a lock in bot-bottle's cache folder: a throwaway one, not the user's.
    cache = tempfile.TemporaryDirectory(prefix="bb-cache-")
    unittest.addModuleCleanup(cache.cleanup)
    env = mock.patch.dict(os.environ, {"BOT_BOTTLE_CACHE_DIR": cache.name})
    env.start()
    unittest.addModuleCleanup(env.stop)
    # The engine's folder comes from the fake's `docker info`, not from a real engine's answer
    # an earlier test left in this process (``engine.known_info_field``).
    info = mock.patch.object(engine, "_last_info", None)
    info.start()
    unittest.addModuleCleanup(info.stop)


class Engine:
    """Answers the `docker` calls a snapshot makes; records them."""

    def __init__(self, *, size: str = "1000", root: str = "", ids: tuple[str, ...] = ("", "sha256:new")) -> None:
        self.size, self.root, self.ids = size, root, list(ids)
        self.calls: list[list[str]] = []

    def run(self, args, **_: object) -> engine.DockerResult:
        args = list(args)
        self.calls.append(args)
        if args[:2] == ["inspect", "--size"]:
            return engine.DockerResult(0, self.size + "\n", "")
        if args[0] == "info":
            return engine.DockerResult(0, self.root + "\n", "")
        if args[:2] == ["image", "inspect"]:
            found = self.ids.pop(0) if self.ids else ""
            return engine.DockerResult(0 if found else 1, found + "\n", "" if found else "No such image")
        if args[0] == "inspect":
            return engine.DockerResult(0, "[]", "")
        return engine.DockerResult(0, "", "")

    def verbs(self) -> list[str]:
        return [c[0] for c in self.calls]


class RoomTest(unittest.TestCase):
    def test_the_reserve_is_kept_free(self) -> None:
        self.assertGreater(snapshot_room.room_after(3 * GIB, 100 * GIB, 200 * GIB), 0)
        self.assertLess(snapshot_room.room_after(60 * 1024 * GIB, 100 * GIB, 200 * GIB), 0)
        # 5% of a 1 TB disk (or 2 GiB on a small one) stays free.
        self.assertLess(snapshot_room.room_after(40 * GIB, 80 * GIB, 1024 * GIB), 0)
        self.assertLess(snapshot_room.room_after(9 * GIB, 10 * GIB, 20 * GIB), 0)

    def test_a_snapshot_larger_than_the_disk_is_refused_before_the_commit(self) -> None:
        with tempfile.TemporaryDirectory() as root:
            fake = Engine(size=str(60 * 1024 * GIB), root=root)
            with mock.patch.object(engine, "run", fake.run):
                with self.assertRaises(BotBottleError) as caught:
                    lifecycle.snapshot("abcdef12", "bot-bottle-abcdef12-agent", Path(root) / "state")
        self.assertIn("61440.0 GiB", str(caught.exception))
        self.assertIn("not taken", str(caught.exception))
        self.assertNotIn("commit", fake.verbs())

    def test_a_snapshot_that_fits_is_taken(self) -> None:
        with tempfile.TemporaryDirectory() as root:
            fake = Engine(size="4096", root=root)
            with mock.patch.object(engine, "run", fake.run):
                lifecycle.snapshot("abcdef12", "bot-bottle-abcdef12-agent", Path(root) / "state")
        self.assertIn("commit", fake.verbs())

    def test_an_engine_whose_disk_is_not_here_is_not_second_guessed(self) -> None:
        fake = Engine(size=str(60 * 1024 * GIB), root="/nonexistent/docker")
        with mock.patch.object(engine, "run", fake.run):
            lifecycle.snapshot("abcdef12", "bot-bottle-abcdef12-agent", Path("/tmp/state"))
        self.assertIn("commit", fake.verbs())


class ReplacedSnapshotTest(unittest.TestCase):
    def test_the_snapshot_it_replaces_is_removed(self) -> None:
        fake = Engine(root="/nonexistent", ids=("sha256:old", "sha256:new"))
        with mock.patch.object(engine, "run", fake.run):
            lifecycle.snapshot("abcdef12", "bot-bottle-abcdef12-agent", Path("/tmp/state"))
        self.assertEqual(fake.calls[-1], ["rmi", "sha256:old"])
        self.assertLess(fake.verbs().index("commit"), len(fake.calls) - 1, "removed after the new one is taken")

    def test_a_first_snapshot_removes_nothing(self) -> None:
        fake = Engine(root="/nonexistent", ids=("", "sha256:new"))
        with mock.patch.object(engine, "run", fake.run):
            lifecycle.snapshot("abcdef12", "bot-bottle-abcdef12-agent", Path("/tmp/state"))
        self.assertNotIn("rmi", fake.verbs())


if __name__ == "__main__":
    unittest.main()
