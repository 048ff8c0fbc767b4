"""How often the gate asks the upstream: never more than once per ``FRESH_FOR`` seconds per repo
for fetches and advertisements, however the agent asks, and without ever making a request wait
for the sake of it; a push still checks against the upstream as it is when the push arrives.

``MirrorRefreshTest`` drives ``Mirrors`` with a counted stand-in for the upstream fetch; the
``Gate*`` cases run a real gate in this process over a local upstream, and count its fetches."""

from __future__ import annotations

import http.client
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle.sidecar.git_gate import mirror, pktline, upstream
from bot_bottle.sidecar.git_gate.config import parse
from bot_bottle.sidecar.git_gate.mirror import Mirrors
from tests.unit.test_git_gate_server import GateServerCase

# Seconds: a request this long after a refresh is past its window. (Read with a default so that
# this file also runs against the gate before the window, which asked the upstream every time.)
LATER = getattr(mirror, "FRESH_FOR", 5.0) + 1.0


class MirrorRefreshTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        config = parse({"repos": [{"name": "lib", "url": "/nowhere/lib.git"}]})
        self.repo = config.repos[0]
        self.mirrors = Mirrors(config, Path(tmp.name) / "gate.json", Path(tmp.name))
        self.starts: list[float] = []
        self.fail_with: str | None = None
        self.hold = threading.Event()
        self.hold.set()
        patcher = mock.patch.object(Mirrors, "_fetch", lambda _self, _repo: self._fetch())
        patcher.start()
        self.addCleanup(patcher.stop)

    def _fetch(self) -> None:
        self.starts.append(time.monotonic())
        self.hold.wait(10)
        if self.fail_with is not None:
            raise upstream.UpstreamError(self.fail_with)

    def test_asking_again_within_the_window_does_not_ask_the_upstream(self) -> None:
        for _ in range(50):
            self.mirrors.refresh(self.repo)
        self.assertEqual(len(self.starts), 1)

    def test_a_request_past_the_window_asks_again(self) -> None:
        self.mirrors.refresh(self.repo)
        self.mirrors.refresh(self.repo, requested_at=time.monotonic() + LATER)
        self.assertEqual(len(self.starts), 2)

    def test_requests_arriving_during_a_refresh_share_it(self) -> None:
        self.hold.clear()  # the upstream is slow: the first refresh is still in flight
        first = threading.Thread(target=self.mirrors.refresh, args=(self.repo,))
        first.start()
        self._wait(lambda: len(self.starts) == 1)
        # Even arriving past the window of that refresh's start, they wait for it and take it.
        arrived = time.monotonic() + LATER
        waiters = [threading.Thread(target=self.mirrors.refresh, args=(self.repo,), kwargs={"requested_at": arrived})
                   for _ in range(8)]
        for thread in waiters:
            thread.start()
        time.sleep(0.2)
        self.hold.set()
        for thread in [first, *waiters]:
            thread.join(10)
        self.assertEqual(len(self.starts), 1)

    def test_a_failure_is_the_answer_for_the_window_too(self) -> None:
        # An upstream that refuses (a bad token, a rate limit) is not asked again on every request.
        self.fail_with = "rate limited"
        for _ in range(5):
            with self.assertRaisesRegex(upstream.UpstreamError, "rate limited"):
                self.mirrors.refresh(self.repo)
        self.assertEqual(len(self.starts), 1)
        self.fail_with = None
        self.mirrors.refresh(self.repo, requested_at=time.monotonic() + LATER)  # asked again, and back
        self.assertEqual(len(self.starts), 2)

    def test_a_push_always_gets_a_refresh_that_started_after_it_arrived(self) -> None:
        self.mirrors.refresh(self.repo)
        arrived = time.monotonic()
        with self.mirrors.lock(self.repo):
            self.mirrors.refresh_held(self.repo, requested_at=arrived)
        self.assertEqual(len(self.starts), 2)
        self.assertGreaterEqual(self.starts[1], arrived)

    def test_a_fresh_enough_mirror_is_served_while_a_push_holds_the_lock(self) -> None:
        # Nothing waits for the sake of the rate limit: within the window a fetch does not even
        # wait for a push (its scan, its forwarding upstream) to let go of the repo's lock.
        self.mirrors.refresh(self.repo)
        with self.mirrors.lock(self.repo):
            done = threading.Event()
            threading.Thread(target=lambda: (self.mirrors.refresh(self.repo), done.set()), daemon=True).start()
            self.assertTrue(done.wait(5), "a refresh within the window waited for the lock")
        self.assertEqual(len(self.starts), 1)

    def test_a_request_before_any_refresh_asks_even_right_after_start(self) -> None:
        # The monotonic clock of a fresh micro-VM starts near 0: "never refreshed" is not "refreshed at 0".
        self.mirrors.refresh(self.repo, requested_at=0.5)
        self.assertEqual(len(self.starts), 1)

    @staticmethod
    def _wait(check, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError("timed out")
            time.sleep(0.01)


class GateRefreshTest(GateServerCase):
    """A real gate over a local upstream; ``self.fetches`` counts the refreshes it makes."""

    def setUp(self) -> None:
        super().setUp()
        self.fetches = 0
        real = Mirrors._fetch

        def counted(mirrors: Mirrors, repo) -> None:  # type: ignore[no-untyped-def]
            self.fetches += 1
            real(mirrors, repo)

        patcher = mock.patch.object(Mirrors, "_fetch", counted)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.url = f"http://127.0.0.1:{self.port}/lib.git"

    def advertise(self, service: str = "git-upload-pack") -> bytes:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", f"/lib.git/info/refs?service={service}")
            return conn.getresponse().read()
        finally:
            conn.close()

    def test_hammering_the_advertisement_asks_the_upstream_once(self) -> None:
        for _ in range(30):
            self.assertIn(self.base.encode(), self.advertise())
        for _ in range(10):
            self.assertIn(self.base.encode(), self.advertise("git-receive-pack"))
        self.assertEqual(self.fetches, 1)

    def test_an_empty_push_request_does_not_ask_the_upstream(self) -> None:
        # receive-pack does nothing with a request that updates no ref: no reason to ask upstream.
        for _ in range(10):
            status, _ = self.post("git-receive-pack", b"0000")
            self.assertEqual(status, 200)
        self.assertEqual(self.fetches, 0)

    def test_the_agent_sees_its_own_push_at_once(self) -> None:
        self.git("ls-remote", self.url)
        new = self.commit("a.txt", b"fine\n")
        self.assertIn("feature", self.push_through_gate("refs/heads/feature"))
        before = self.fetches
        listing = self.git("ls-remote", self.url, "refs/heads/feature")  # within the window: from the mirror
        self.assertEqual(listing.split()[0], new)
        self.assertEqual(self.fetches, before)

    def test_what_lands_upstream_is_seen_once_the_window_has_passed(self) -> None:
        with mock.patch.object(mirror, "FRESH_FOR", 0.5):
            self.git("ls-remote", self.url)
            new = self.commit("b.txt", b"elsewhere\n")
            self.git("-C", str(self.work), "push", "-q", str(self.upstream), "HEAD:refs/heads/other")
            time.sleep(0.6)
            self.assertEqual(self.git("ls-remote", self.url, "refs/heads/other").split()[0], new)

    def test_a_push_still_checks_against_the_upstream_as_it_is(self) -> None:
        # A branch taken down upstream a moment ago does not count as published for a push, even
        # within the window: the push asks the upstream again under its lock.
        self.git("-C", str(self.work), "checkout", "-q", "-b", "oops")
        leaked = self.commit("oops.env", b"AWS_ACCESS_KEY_ID=AKIAZ7QK4M2XW9RTB3PL\n")
        self.git("-C", str(self.work), "push", "-q", str(self.upstream), "oops")
        self.git("ls-remote", self.url)  # the mirror fetches it
        self.assertEqual(self.git("--git-dir", str(self.mirrors.path(self.repo)), "rev-parse", "refs/heads/oops"), leaked)
        self.git("--git-dir", str(self.upstream), "update-ref", "-d", "refs/heads/oops")
        out = self.push_through_gate("refs/heads/revived")
        self.assertIn("push rejected", out)
        self.assertEqual(self.git("--git-dir", str(self.upstream), "branch", "--list", "revived"), "")

    def test_an_unreachable_upstream_is_reported_within_the_window_without_asking_again(self) -> None:
        self.git("ls-remote", self.url)
        gone = self.dir / "gone.git"
        self.upstream.rename(gone)
        self.addCleanup(gone.rename, self.upstream)
        for window in (0.0, 60.0, 60.0, 60.0):  # the first asks (as past the window), the others reuse it
            with mock.patch.object(mirror, "FRESH_FOR", window):
                run = subprocess.run(["git", "ls-remote", self.url], env=self.env, capture_output=True, text=True)
            self.assertNotEqual(run.returncode, 0)
            self.assertIn("fatal: remote error: upstream lib unreachable", run.stderr)
        self.assertEqual(self.fetches, 2)

    def test_a_push_the_upstream_went_away_under_says_why(self) -> None:
        # The advertisement comes from the mirror (within the window); the push's own refresh
        # finds the upstream gone, and the agent's git prints why, as it does for an advertisement.
        self.git("ls-remote", self.url)
        self.commit("c.txt", b"fine\n")
        gone = self.dir / "gone.git"
        self.upstream.rename(gone)
        self.addCleanup(gone.rename, self.upstream)
        out = self.push_through_gate("refs/heads/feature")
        self.assertIn("fatal: remote error: upstream lib unreachable", out)

    def test_a_fetch_request_the_upstream_went_away_under_says_why(self) -> None:
        gone = self.dir / "gone.git"
        self.upstream.rename(gone)
        self.addCleanup(gone.rename, self.upstream)
        request = pktline.encode(f"want {self.base} side-band-64k\n") + pktline.FLUSH + pktline.encode("done\n")
        status, answer = self.post("git-upload-pack", request)  # no advertisement first: it refreshes itself
        self.assertEqual(status, 200)
        self.assertIn(b"ERR upstream lib unreachable", answer)
        self.assertNotIn(b"PACK", answer)


if __name__ == "__main__":
    unittest.main()
