"""A container removal that outlasts its timeout while the engine still answers is waited for
(``removal.remove_containers``), against a scripted engine; the real case (a gVisor sandbox after a
fork bomb) is tests/integration/test_sandbox_escape.py's HostResources, and a runtime held still
on purpose is tests/integration/test_slow_removal_bottle.py."""

from __future__ import annotations

import contextlib
import io
import signal
import unittest
from unittest import mock

from bot_bottle import interrupts
from bot_bottle.backend.docker import cleanup, engine, removal
from bot_bottle.backend.docker.cleanup import Resource


class _Engine:
    """A scripted engine: containers by id with a state; `rm` may hang (times out) while the
    runtime is "busy", and a busy container goes after ``busy_polls`` looks."""

    def __init__(self, containers: dict[str, str], *, rm_hangs: bool = True, answers: bool = True,
                 busy_polls: int = 3, drop_removal: bool = False) -> None:
        self.containers = dict(containers)  # id -> state
        self.rm_hangs = rm_hangs
        self.answers = answers
        self.busy_polls = busy_polls
        self.drop_removal = drop_removal  # the engine gives the removal up: the container is left exited
        self.calls: list[list[str]] = []
        self.now = 0.0

    def run(self, args: list[str], *, timeout: float | None = None, check: bool = True,
            **_: object) -> engine.DockerResult:
        self.calls.append(list(args))
        if args[0] == "version":
            if not self.answers:
                raise engine.DockerError("`docker version` did not answer within 15 s")
            return engine.DockerResult(0, "20.10\n", "")
        if args[0] == "rm":
            refs = [a for a in args[1:] if not a.startswith("-")]
            if self.rm_hangs:
                self.rm_hangs = False  # the first one: the runtime is busy stopping them
                for ref in refs:
                    self.containers[ref] = "removing"
                self.now += timeout or 0
                raise engine.DockerError(f"`docker rm` did not answer within {timeout:g} s")
            for ref in refs:
                self.containers.pop(ref, None)
            return engine.DockerResult(0, "", "")
        if args[0] == "network":
            return engine.DockerResult(0, "", "")
        if args[0] == "ps":
            self.busy_polls -= 1
            if self.busy_polls == 0:
                for ref, container_state in list(self.containers.items()):
                    if container_state == "removing":
                        if self.drop_removal:
                            self.containers[ref] = "exited"
                        else:
                            del self.containers[ref]
            lines = [f"{ref}0000 bot-bottle-{ref}-agent {container_state}"
                     for ref, container_state in self.containers.items()]
            lines.append("ffff0000 someone-elses running")
            return engine.DockerResult(0, "\n".join(lines) + "\n", "")
        raise AssertionError(f"unexpected docker {args}")

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


class RemoveContainers(unittest.TestCase):
    def remove(self, fake: _Engine, refs: list[str], **kwargs: object) -> tuple[str | None, list[str]]:
        said: list[str] = []
        with mock.patch.object(removal.engine, "run", fake.run), \
                mock.patch.object(removal.time, "sleep", fake.sleep), \
                mock.patch.object(removal.time, "monotonic", fake.monotonic):
            why = removal.remove_containers(refs, timeout=120, waiting=removal.Waiting(said.append, **kwargs))  # type: ignore[arg-type]
        return why, said

    def test_a_quick_removal_says_nothing(self) -> None:
        fake = _Engine({"aaaa": "running"}, rm_hangs=False)
        why, said = self.remove(fake, ["aaaa"])
        self.assertIsNone(why)
        self.assertEqual(said, [])
        self.assertEqual(fake.containers, {})

    def test_a_slow_removal_is_waited_for_while_the_engine_answers(self) -> None:
        fake = _Engine({"aaaa": "running", "bbbb": "running"}, busy_polls=40)
        why, said = self.remove(fake, ["aaaa", "bbbb"], named=lambda ref: f"bot-bottle-{ref}-agent")
        self.assertIsNone(why)
        self.assertEqual(fake.containers, {})
        self.assertIn("still stopping bot-bottle-aaaa-agent, bot-bottle-bbbb-agent", said[0])
        self.assertIn("waiting up to 8 more minutes", said[0])
        self.assertTrue(any("still waiting" in line for line in said[1:-1]), said)  # 40 looks: over a minute
        self.assertEqual(said[-1], "removed after 198 s")  # 120 s, then 39 looks 2 s apart
        # The wait re-asked for no removal: the engine's own goes on.
        self.assertEqual(sum(1 for call in fake.calls if call[0] == "rm"), 1)

    def test_an_engine_that_does_not_answer_is_not_waited_for(self) -> None:
        fake = _Engine({"aaaa": "running"}, answers=False)
        why, said = self.remove(fake, ["aaaa"])
        self.assertEqual(why, "`docker rm` did not answer within 120 s")
        self.assertEqual(said, [])
        self.assertFalse(any(call[0] == "ps" for call in fake.calls))

    def test_a_removal_the_engine_dropped_is_asked_for_again(self) -> None:
        fake = _Engine({"aaaa": "running"}, busy_polls=2, drop_removal=True)
        why, _ = self.remove(fake, ["aaaa"])
        self.assertIsNone(why)
        self.assertEqual(fake.containers, {})
        self.assertEqual(sum(1 for call in fake.calls if call[0] == "rm"), 2)

    def test_the_wait_ends_when_asked(self) -> None:
        fake = _Engine({"aaaa": "running"}, busy_polls=1000)
        why, _ = self.remove(fake, ["aaaa"], stop_waiting=lambda: True)
        self.assertIsNotNone(why)
        self.assertIn("wait was cut short", why or "")
        self.assertEqual(fake.containers, {"aaaa": "removing"})

    def test_the_wait_is_bounded(self) -> None:
        fake = _Engine({"aaaa": "running"}, busy_polls=10_000)
        why, _ = self.remove(fake, ["aaaa"], wait_s=60)
        self.assertEqual(why, "`docker rm` did not answer within 120 s, nor in 60 s more while the engine was removing them")
        self.assertLess(fake.now, 120 + 60 + 5)

    def test_only_the_containers_asked_for_are_looked_at(self) -> None:
        fake = _Engine({"aaaa": "exited", "cccc": "running"}, rm_hangs=False)
        with mock.patch.object(removal.engine, "run", fake.run):
            self.assertEqual(removal.still_there(["aaaa", "bot-bottle-cccc-agent", "dddd"]),
                             {"aaaa": "exited", "bot-bottle-cccc-agent": "running"})


class CleanupWaitsToo(unittest.TestCase):
    def test_a_slow_container_removal_is_waited_out_before_its_network(self) -> None:
        fake = _Engine({"aaaa": "running"}, busy_polls=5)
        err = io.StringIO()
        with mock.patch.object(removal.engine, "run", fake.run), \
                mock.patch.object(removal.time, "sleep", fake.sleep), \
                mock.patch.object(removal.time, "monotonic", fake.monotonic), \
                contextlib.redirect_stderr(err):
            failures = cleanup.remove([Resource("network", "net-aaaa", "bot-bottle-aaaa", "aaaa"),
                                       Resource("container", "aaaa", "bot-bottle-aaaa-agent", "aaaa")])
        self.assertEqual(failures, [])
        self.assertEqual(fake.containers, {})
        self.assertIn("still stopping bot-bottle-aaaa-agent", err.getvalue())
        kinds = [call[0] for call in fake.calls]
        self.assertGreater(kinds.index("network"), max(i for i, kind in enumerate(kinds) if kind == "ps"))

    def test_one_that_is_not_gone_in_time_is_named(self) -> None:
        fake = _Engine({"aaaa": "running"}, busy_polls=10_000)
        with mock.patch.object(removal.engine, "run", fake.run), \
                mock.patch.object(removal.time, "sleep", fake.sleep), \
                mock.patch.object(removal.time, "monotonic", fake.monotonic), \
                contextlib.redirect_stderr(io.StringIO()):
            failures = cleanup.remove([Resource("container", "aaaa", "bot-bottle-aaaa-agent", "aaaa")])
        self.assertEqual(len(failures), 1)
        self.assertTrue(failures[0].startswith("container bot-bottle-aaaa-agent: `docker rm` did not answer within 60 s, nor in 480 s more"), failures)


class HeldSignal(unittest.TestCase):
    def test_what_a_deferred_block_holds_so_far(self) -> None:
        self.assertIsNone(interrupts.held())
        with self.assertRaises(KeyboardInterrupt):
            with interrupts.deferred(notice=lambda: None):
                self.assertIsNone(interrupts.held())
                signal.raise_signal(signal.SIGINT)
                self.assertEqual(interrupts.held(), signal.SIGINT)
        self.assertIsNone(interrupts.held())


if __name__ == "__main__":
    unittest.main()
