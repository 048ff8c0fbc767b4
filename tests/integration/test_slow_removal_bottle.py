"""A bottle's teardown waits out a container runtime that is slow to let its agent container go.

Under gVisor a sandbox that ran many processes sometimes keeps its containerd shim busy for minutes
after it died, and `docker rm -f` blocks meanwhile (tests/integration/test_sandbox_escape.py's fork
bomb meets it now and then). Here the agent container's shim is held still on purpose (SIGSTOP,
then SIGCONT), so the same stall comes every time: the teardown must wait for the removal while the
engine answers, say so, and leave nothing behind; a Ctrl-C during that wait ends it with a clear
message instead.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import threading
import unittest
from unittest import mock

from bot_bottle.backend.docker import engine, launch
from bot_bottle.errors import BotBottleError
from tests._docker import skip_unless_docker
from tests.integration import _harness as h

HELD_S = 12.0  # how long the runtime is held still: past the (shortened) removal timeout


def _shim_of(container: str) -> int:
    cid = engine.run(["inspect", "-f", "{{.Id}}", container], timeout=30).stdout.strip()
    found = subprocess.run(["pgrep", "-f", f"containerd-shim.* -id {cid}"], capture_output=True, text=True)
    pids = [int(p) for p in found.stdout.split()]
    if len(pids) != 1:
        raise AssertionError(f"no single containerd shim found for {container} (the oracle): {found.stdout!r}")
    return pids[0]


@skip_unless_docker()
class TeardownWaitsForASlowRuntime(unittest.TestCase):
    def setUp(self) -> None:
        home = h.TempHome(self).path
        layout = h.write_manifests(home, bottle=h.NO_CREDENTIAL_BOTTLE)
        self.bottle, self.launcher = h.launch(self, h.plan_for(layout), layout.state_dir)
        self.addCleanup(h.remove_bottle, self.launcher.names.id)
        self.shim = _shim_of(self.launcher.names.agent_container)
        self.addCleanup(self._release)  # never leave a shim stopped, whatever happens
        self.released = threading.Event()
        # A shorter first timeout, so the test waits seconds rather than the real two minutes.
        patch = mock.patch.object(launch, "REMOVE_TIMEOUT", 3.0)
        patch.start()
        self.addCleanup(patch.stop)

    def _release(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.shim, signal.SIGCONT)
        self.released.set()

    def _hold_runtime(self, *, then: float) -> threading.Timer:
        os.kill(self.shim, signal.SIGSTOP)
        timer = threading.Timer(then, self._release)
        timer.start()
        self.addCleanup(timer.cancel)
        return timer

    def _containers_left(self) -> list[str]:
        return engine.run(["ps", "-a", "-q", "--filter", f"label=bot-bottle.id={self.launcher.names.id}"],
                          timeout=60).stdout.split()

    def test_the_removal_is_waited_for_and_nothing_is_left(self) -> None:
        self._hold_runtime(then=HELD_S)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            self.launcher.teardown()  # raises if anything was left
        self.assertTrue(self.released.is_set(), "the teardown ended before the runtime let the container go")
        said = err.getvalue()
        self.assertIn(f"bottle {self.launcher.names.id}: the container runtime is still stopping", said)
        self.assertIn(self.launcher.names.agent_container, said)
        self.assertRegex(said, r"removed after \d+ s")
        self.assertEqual(self._containers_left(), [])
        self.assertFalse(self.launcher.state.path.exists(), "the bottle's state folder was not removed")

    def test_a_ctrl_c_ends_the_wait_with_a_clear_message(self) -> None:
        agent_id = engine.run(["inspect", "-f", "{{.Id}}", self.launcher.names.agent_container], timeout=30).stdout.strip()
        self._hold_runtime(then=120)  # let go by the test itself, after the Ctrl-C
        tearing = threading.Event()
        ctrl_c = threading.Timer(HELD_S, lambda: tearing.is_set() and os.kill(os.getpid(), signal.SIGINT))
        ctrl_c.start()
        self.addCleanup(ctrl_c.cancel)
        err = io.StringIO()
        tearing.set()
        try:
            with contextlib.redirect_stderr(err), self.assertRaises(BotBottleError) as caught:
                self.launcher.teardown()
        finally:
            tearing.clear()  # a Ctrl-C must never reach the test runner itself
            ctrl_c.cancel()
        message = str(caught.exception)
        self.assertIn(f"bottle {self.launcher.names.id} was not wholly torn down", message)
        self.assertIn("the wait was cut short", message)
        self.assertIn("bot-bottle cleanup", caught.exception.hint or "")
        self.assertIn("still stopping", err.getvalue())
        self.assertFalse(self.released.is_set(), "the runtime was let go before the Ctrl-C")
        # Once the runtime goes on, the engine finishes the removal by itself.
        self._release()
        h.wait_for(lambda: not engine.run(["ps", "-a", "-q", "--filter", f"id={agent_id}"], timeout=60).stdout.strip(),
                   "the engine to finish removing the agent container", timeout=60)


if __name__ == "__main__":
    unittest.main()
