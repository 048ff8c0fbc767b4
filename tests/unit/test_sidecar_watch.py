"""``SidecarWatch``: waiting on a sidecar's start messages, fed by real child processes that write
what ``docker logs --follow`` would relay (the init's JSON lines on stderr, the proxy's on stdout)."""

from __future__ import annotations

import json
import time
import unittest

from bot_bottle.backend.docker.sidecar_watch import SidecarWatch
from bot_bottle.errors import BotBottleError


def said(what: str) -> str:
    return json.dumps({"event": "sidecar", "what": what})


def watch(script: str) -> SidecarWatch:
    return SidecarWatch(["sh", "-c", script])


class SidecarWatchTest(unittest.TestCase):
    def test_returns_once_the_event_is_said_while_the_sidecar_keeps_running(self) -> None:
        w = watch(f"echo '{said('ca-published')}' >&2; sleep 0.3; echo '{said('ready')}' >&2; exec sleep 30")
        try:
            started = time.monotonic()
            self.assertTrue(w.wait_for("ca-published", "publishing its CA", timeout=10))
            self.assertTrue(w.wait_for("ready", "ready", timeout=10))
            self.assertLess(time.monotonic() - started, 10)  # not after the follower ended
        finally:
            w.close()

    def test_an_event_said_before_the_wait_counts(self) -> None:
        w = watch(f"echo '{said('ready')}' >&2; exec sleep 30")
        try:
            time.sleep(0.3)
            self.assertTrue(w.wait_for("ready", "ready", timeout=5))
        finally:
            w.close()

    def test_a_stream_that_ends_first_means_the_sidecar_stopped_and_shows_its_last_lines(self) -> None:
        lines = "".join(f"echo 'line {i}' >&2; " for i in range(30))
        w = watch(f"echo '{said('ca-published')}' >&2; {lines} exit 0")
        try:
            with self.assertRaises(BotBottleError) as caught:
                w.wait_for("ready", "ready", timeout=10)
            message = str(caught.exception)
            self.assertIn("the sidecar stopped during start", message)
            self.assertIn("line 29", message)
            self.assertNotIn("line 5\n", message)  # the tail only
        finally:
            w.close()

    def test_a_failed_start_is_reported_at_once_even_if_the_stream_goes_on(self) -> None:
        failed = json.dumps({"event": "sidecar", "what": "start-failed", "error": "policy: bad route"})
        w = watch(f"echo '{failed}' >&2; exec sleep 30")
        try:
            started = time.monotonic()
            with self.assertRaises(BotBottleError) as caught:
                w.wait_for("ready", "ready", timeout=20)
            self.assertLess(time.monotonic() - started, 10)
            self.assertIn("policy: bad route", str(caught.exception))
        finally:
            w.close()

    def test_logs_that_cannot_be_followed_hand_over_to_polling(self) -> None:
        # What `docker logs` prints and how it ends for a logging driver without read support.
        w = watch("echo 'Error response from daemon: configured logging driver does not support reading' >&2; exit 1")
        try:
            self.assertFalse(w.wait_for("ready", "ready", timeout=10))
        finally:
            w.close()

    def test_a_follower_that_is_killed_hands_over_to_polling(self) -> None:
        # The client ended, not the sidecar (e.g. killed with the thread that started it under
        # die_with_parent): not a "stopped during start", even after some events were seen.
        w = watch(f"echo '{said('ca-published')}' >&2; kill -9 $$")
        try:
            self.assertTrue(w.wait_for("ca-published", "publishing its CA", timeout=10))
            self.assertFalse(w.wait_for("ready", "ready", timeout=10))
        finally:
            w.close()

    def test_raise_if_stopped_does_not_wait_and_names_the_failure(self) -> None:
        failed = json.dumps({"event": "sidecar", "what": "start-failed", "error": "policy: bad route"})
        running = watch(f"echo '{said('ca-published')}' >&2; exec sleep 30")
        broken = watch(f"echo '{failed}' >&2; exec sleep 30")
        unreadable = watch("echo 'Error response from daemon: cannot read' >&2; exit 1")
        try:
            self.assertTrue(running.wait_for("ca-published", "publishing its CA", timeout=10))
            started = time.monotonic()
            running.raise_if_stopped()  # still running: returns at once
            self.assertLess(time.monotonic() - started, 1)
            with self.assertRaises(BotBottleError):
                broken.wait_for("ready", "ready", timeout=10)
            with self.assertRaises(BotBottleError) as caught:
                broken.raise_if_stopped()
            self.assertIn("policy: bad route", str(caught.exception))
            self.assertFalse(unreadable.wait_for("ready", "ready", timeout=10))
            unreadable.raise_if_stopped()  # cannot tell: the waits poll instead
        finally:
            for w in (running, broken, unreadable):
                w.close()

    def test_stdout_and_lookalike_lines_are_not_events(self) -> None:
        proxy_line = json.dumps({"event": "sidecar", "what": "ready"})
        other = json.dumps({"event": "egress", "what": "ready"})
        w = watch(f"echo '{proxy_line}'; echo '{other}' >&2; echo '{{not json' >&2; exec sleep 30")
        try:
            with self.assertRaises(BotBottleError) as caught:
                w.wait_for("ready", "ready", timeout=0.5)
            self.assertIn("was not ready within 0.5 s", str(caught.exception))
        finally:
            w.close()

    def test_close_ends_a_follower_that_is_still_running(self) -> None:
        w = watch("exec sleep 30")
        started = time.monotonic()
        w.close()
        w.close()  # twice is fine
        self.assertLess(time.monotonic() - started, 5)
        self.assertIsNotNone(w._proc.returncode)

    def test_a_closed_follower_leaves_no_open_pipe(self) -> None:
        for script in (f"echo '{said('ready')}' >&2; exec sleep 30", "exit 0"):
            w = watch(script)
            w.wait_for("ready", "ready", timeout=10) if "ready" in script else time.sleep(0.2)
            w.close()
            assert w._proc.stderr is not None
            self.assertTrue(w._proc.stderr.closed, script)


if __name__ == "__main__":
    unittest.main()
