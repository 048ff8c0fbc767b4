"""The proxy's budget for bodies held at once: answers past it stream, requests past it get a 503."""

from __future__ import annotations

import gc
import unittest
import weakref

from bot_bottle.sidecar.egress import holding
from bot_bottle.sidecar.egress.holding import HoldBudget, Sweeper
from tests.unit import test_egress_stream as stream_tests
from tests.unit.test_sidecar_addon import AddonCase, addon_mod

MB = 1024 * 1024


class HoldBudgetTest(unittest.TestCase):
    def test_reservations_fit_the_limit_and_come_back(self) -> None:
        budget = HoldBudget(limit=10 * MB, per_byte=1)
        self.assertTrue(budget.reserve(6 * MB))
        self.assertFalse(budget.reserve(5 * MB))
        self.assertTrue(budget.reserve(4 * MB))
        budget.release(6 * MB)
        self.assertTrue(budget.reserve(5 * MB))
        self.assertEqual(budget.held, 9 * MB)

    def test_one_body_always_fits_when_nothing_is_held(self) -> None:
        budget = HoldBudget(limit=MB, per_byte=1)
        self.assertTrue(budget.reserve(16 * MB))
        self.assertFalse(budget.reserve(1))

    def test_forced_bytes_count_and_releases_never_go_below_zero(self) -> None:
        budget = HoldBudget(limit=MB, per_byte=1)
        budget.force(3 * MB)
        self.assertFalse(budget.reserve(1))
        budget.release(10 * MB)
        self.assertEqual(budget.held, 0)
        self.assertIn("of the 1 MiB", budget.describe())

    def test_a_held_byte_costs_what_it_costs_the_proxy_while_it_passes(self) -> None:
        budget = HoldBudget(limit=48 * MB)  # per_byte defaults to the measured three
        self.assertTrue(budget.reserve(10 * MB))
        self.assertEqual(budget.held, 30 * MB)
        self.assertFalse(budget.reserve(7 * MB))
        self.assertTrue(budget.reserve(6 * MB))
        budget.release(16 * MB)
        self.assertEqual(budget.held, 0)


class SweeperTest(unittest.TestCase):
    def test_due_once_enough_has_passed_and_once_at_a_time(self) -> None:
        sweeper = Sweeper(every=10)
        sweeper.relayed(6)
        self.assertFalse(sweeper.due())
        sweeper.relayed(4)
        self.assertTrue(sweeper.due())
        sweeper.relayed(100)
        self.assertFalse(sweeper.due())  # one already scheduled
        sweeper.swept()
        self.assertFalse(sweeper.due())  # counted again from nothing
        sweeper.relayed(-5)
        self.assertEqual(sweeper.pending, 0)


class _Cycle:
    """What mitmproxy leaves when a connection ends: objects that refer to each other, one of
    them holding what the connection carried."""

    def __init__(self, size: int) -> None:
        self.me = self
        self.body = bytearray(size)


class AddonHoldingTest(AddonCase):
    run_context = stream_tests.AddonStreamTest.run_context

    def setUp(self) -> None:
        super().setUp()
        self.addon.holding = HoldBudget(limit=10 * MB, per_byte=1)

    def upload(self, size: int, path: str = "/up"):
        return self.request_flow("allowed.example", port=443, scheme="https", method="POST", path=path, headers=[
            ("Host", "allowed.example"), ("Content-Length", str(size)), ("Content-Type", "text/plain")])

    def answer(self, size: int | None):
        from mitmproxy.test import tutils

        flow = self.request_flow("allowed.example", port=443, scheme="https", path="/file",
                                 headers=[("Host", "allowed.example")])
        flow, _ = self.run_hooks(flow, "requestheaders", "request")
        flow.response = tutils.tresp(status_code=200, content=None)
        flow.response.headers.clear()
        flow.response.headers["Content-Length" if size is not None else "Transfer-Encoding"] = (
            str(size) if size is not None else "chunked")
        flow, _ = self.run_hooks(flow, "responseheaders", upstream=None)
        return flow

    def test_a_request_past_the_budget_gets_a_503_and_passes_once_the_others_are_done(self) -> None:
        first, _ = self.run_hooks(self.upload(2 * MB), "requestheaders")  # buffered whole: deep_limit
        self.assertIsNone(first.response)
        self.assertEqual(self.addon.holding.held, 2 * MB)
        second, _ = self.run_hooks(self.upload(2 * MB), "requestheaders")
        self.assertIsNone(second.response)
        others = [self.run_hooks(self.upload(2 * MB, f"/up{i}"), "requestheaders")[0] for i in range(4)]
        refused = others[-1]
        self.assertEqual(refused.response.status_code, 503)
        self.assertEqual(refused.response.headers["Retry-After"], "1")
        self.assertEqual(refused.response.headers["X-Bot-Bottle-Rule"], addon_mod.RULE_BUSY)
        self.assertIn("retry", refused.response.get_text())
        self.assertEqual(self.addon.holding.held, 10 * MB)
        for flow in (first, second):
            self.run_hooks(flow, "request", "upstream", "response")
        self.assertEqual(self.addon.holding.held, 6 * MB)
        again, _ = self.run_hooks(self.upload(2 * MB, "/up5"), "requestheaders")
        self.assertIsNone(again.response)

    def test_streamed_uploads_count_a_batch_each_and_one_held_whole_tops_up(self) -> None:
        streams = [self.run_hooks(self.upload(20 * MB, f"/s{i}"), "requestheaders")[0] for i in range(12)]
        self.assertTrue(all(callable(f.request.stream) and f.response is None for f in streams))  # never refused
        self.assertEqual(self.addon.holding.held, 12 * addon_mod.STREAM_HOLD)
        with self.run_context():
            streams[0].request.stream(b"PK\x03\x04" + bytes(100))  # a zip: held whole to be opened
        self.assertEqual(self.addon.holding.held, 11 * addon_mod.STREAM_HOLD + addon_mod.MAX_HELD_BODY)
        refused, _ = self.run_hooks(self.upload(MB, "/small"), "requestheaders")
        self.assertEqual(refused.response.status_code, 503)

    def test_an_answer_past_the_budget_streams_instead_of_being_held(self) -> None:
        held = self.answer(8 * MB)
        self.assertFalse(held.response.stream)  # held whole for the inbound scan
        self.assertEqual(self.addon.holding.held, 8 * MB)
        for size in (8 * MB, None):
            with self.subTest(size=size):
                flow = self.answer(size)
                self.assertTrue(callable(flow.response.stream))
                with self.run_context():
                    out = stream_tests.feed_all(flow, b"ok " * 1000 + addon_secret(), answer=True)
                self.assertNotIn(addon_secret(), out)  # still scanned on the way
                self.run_hooks(flow, "response", upstream=None)
        self.assertEqual(self.addon.holding.held, 8 * MB)
        self.run_hooks(held, "response", upstream=None)
        self.assertEqual(self.addon.holding.held, 0)

    def test_an_error_or_a_flow_dropped_unfinished_gives_its_share_back(self) -> None:
        flow, _ = self.run_hooks(self.upload(2 * MB), "requestheaders")
        self.run_hooks(flow, "error")
        self.assertEqual(self.addon.holding.held, 0)
        flow, _ = self.run_hooks(self.upload(2 * MB), "requestheaders")
        self.assertEqual(self.addon.holding.held, 2 * MB)
        del flow
        gc.collect()
        self.assertEqual(self.addon.holding.held, 0)

    def test_a_connection_ending_after_enough_bodies_collects_the_cycles_left_behind(self) -> None:
        self.addon.sweeper = Sweeper(every=4 * MB)
        gc.disable()  # only the sweep may collect here
        self.addCleanup(gc.enable)
        cycle = _Cycle(MB)
        left = weakref.ref(cycle)
        del cycle
        flow, _ = self.run_hooks(self.upload(2 * MB), "requestheaders")
        flow.request.content = bytes(2 * MB)
        self.run_hooks(flow, "request", "upstream", "response")
        self.addon.client_disconnected(None)
        self.assertIsNotNone(left(), "collected before enough had passed")
        answer = self.answer(3 * MB)
        answer.response.content = bytes(3 * MB)
        self.run_hooks(answer, "response", upstream=None)
        self.addon.client_disconnected(None)
        self.assertIsNone(left(), "the cycle and the body it holds outlived the connection")
        self.assertEqual(self.addon.sweeper.pending, 0)

    def test_the_default_budget_leaves_room_for_a_scan_in_the_sidecar(self) -> None:
        held_body = addon_mod.MAX_HELD_BODY
        # Two bodies as large as the proxy holds fit at once, and the budget, one full scan of
        # such a body (about seven times it) and the proxy itself stay within 3/4 of 512 MB.
        self.assertGreaterEqual(holding.DEFAULT_BUDGET, 2 * holding.PER_BYTE * held_body)
        self.assertLessEqual(holding.DEFAULT_BUDGET + 7 * held_body + 64 * MB, 384 * MB)


def addon_secret() -> bytes:
    return stream_tests.SECRET.encode()


if __name__ == "__main__":
    unittest.main()
