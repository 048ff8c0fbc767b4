"""Two `cleanup`s at once (two terminals, a cron job and a user): neither reports a failure for
what the other is removing. Found with the real CLI: both ended with status 1 on "removal of
container ... is already in progress". Docker is faked: no real engine call is made."""

from __future__ import annotations

import unittest
from pathlib import Path
from tempfile import TemporaryDirectory
from unittest import mock

from bot_bottle.backend.docker import cleanup, engine
from bot_bottle.backend.docker.cleanup import Resource

IN_PROGRESS = ("Error response from daemon: removal of container 4f14b206c884 is already in progress")


class FakeEngine:
    """`rm` answers "already in progress"; the container is gone after ``inspects_until_gone``
    inspections (the other cleanup finishing its removal)."""

    def __init__(self, inspects_until_gone: int | None) -> None:
        self.inspects_until_gone = inspects_until_gone
        self.calls: list[list[str]] = []

    def run(self, args: list[str], **_: object) -> engine.DockerResult:
        self.calls.append(list(args))
        if args[0] == "rm":
            return engine.DockerResult(1, "", IN_PROGRESS)
        if args[:2] == ["container", "inspect"]:
            if self.inspects_until_gone is not None:
                self.inspects_until_gone -= 1
                if self.inspects_until_gone <= 0:
                    return engine.DockerResult(1, "", "Error: No such container: 4f14b206c884")
            return engine.DockerResult(0, "4f14b206c884\n", "")
        return engine.DockerResult(0, "", "")


def resources(state_root: Path) -> list[Resource]:
    return [Resource("container", "4f14b206c884", "bot-bottle-7ad7f141-agent", "7ad7f141"),
            Resource("network", "n1", "bot-bottle-7ad7f141-net", "7ad7f141"),
            Resource("state", str(state_root / "7ad7f141"), "7ad7f141", "7ad7f141")]


class RemovalsAnotherCleanupIsDoing(unittest.TestCase):
    def setUp(self) -> None:
        tmp = TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name)
        (self.root / "7ad7f141").mkdir()

    def remove(self, fake: FakeEngine) -> list[str]:
        with mock.patch.object(engine, "run", fake.run), mock.patch("time.sleep", lambda _s: None):
            return cleanup.remove(resources(self.root))

    def test_a_container_another_cleanup_is_removing_is_waited_for_not_reported(self) -> None:
        fake = FakeEngine(inspects_until_gone=3)
        self.assertEqual(self.remove(fake), [])
        verbs = [" ".join(c[:2]) for c in fake.calls]
        # The network goes only once the container that used it is gone.
        self.assertLess(max(i for i, v in enumerate(verbs) if v == "container inspect"), verbs.index("network rm"))
        self.assertFalse((self.root / "7ad7f141").exists())

    def test_one_that_never_goes_is_still_a_failure(self) -> None:
        fake = FakeEngine(inspects_until_gone=None)
        with mock.patch.object(cleanup, "REMOVAL_WAIT_S", 0.05, create=True):
            failures = self.remove(fake)
        self.assertEqual(len(failures), 1)
        self.assertIn("already in progress", failures[0])


if __name__ == "__main__":
    unittest.main()
