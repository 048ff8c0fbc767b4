"""``interrupts``: signals held during cleanup, SIGTERM/SIGHUP unwinding like Ctrl-C (real signals)."""

from __future__ import annotations

import os
import signal
import threading
import unittest

from bot_bottle import interrupts


def _send(sig: int) -> None:
    os.kill(os.getpid(), sig)


class DeferredTests(unittest.TestCase):
    def setUp(self) -> None:
        self.handlers = {sig: signal.getsignal(sig) for sig in interrupts.HELD_SIGNALS}
        self.addCleanup(self._restore)
        self.notices = 0

    def _restore(self) -> None:
        for sig, handler in self.handlers.items():
            signal.signal(sig, handler)

    def _notice(self) -> None:
        self.notices += 1

    def test_ctrl_c_is_held_until_the_block_ends(self) -> None:
        done = []
        with self.assertRaises(KeyboardInterrupt):
            with interrupts.deferred(self._notice):
                _send(signal.SIGINT)
                _send(signal.SIGINT)  # a second press changes nothing
                done.append("the whole cleanup ran")
        self.assertEqual(done, ["the whole cleanup ran"])
        self.assertEqual(self.notices, 1)

    def test_sigterm_and_sighup_are_held_and_raised_as_terminated(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with self.subTest(sig=sig.name):
                done = []
                with self.assertRaises(interrupts.Terminated) as caught:
                    with interrupts.deferred(self._notice):
                        _send(sig)
                        done.append(sig)
                self.assertEqual(done, [sig])
                self.assertEqual(caught.exception.exit_code, 128 + sig)

    def test_handlers_are_restored(self) -> None:
        with interrupts.deferred(self._notice):
            pass
        self.assertEqual({sig: signal.getsignal(sig) for sig in interrupts.HELD_SIGNALS}, self.handlers)
        with self.assertRaises(KeyboardInterrupt):
            _send(signal.SIGINT)  # the ordinary Ctrl-C again

    def test_nested_blocks_raise_once_at_the_outermost_end(self) -> None:
        steps = []
        with self.assertRaises(KeyboardInterrupt):
            with interrupts.deferred(self._notice):
                with interrupts.deferred(self._notice):
                    _send(signal.SIGINT)
                    steps.append("inner")
                steps.append("outer, after the inner block")
        self.assertEqual(steps, ["inner", "outer, after the inner block"])

    def test_an_error_in_the_block_is_not_replaced(self) -> None:
        with self.assertRaises(ValueError):
            with interrupts.deferred(self._notice):
                _send(signal.SIGINT)
                raise ValueError("cleanup failed")

    def test_nothing_is_held_outside_the_main_thread(self) -> None:
        seen: list[object] = []

        def worker() -> None:
            with interrupts.deferred(self._notice):
                seen.append(signal.getsignal(signal.SIGINT))

        t = threading.Thread(target=worker)
        t.start()
        t.join()
        self.assertEqual(seen, [self.handlers[signal.SIGINT]])


class TerminateAsInterruptTests(unittest.TestCase):
    def test_sigterm_raises_where_the_program_is(self) -> None:
        before = signal.getsignal(signal.SIGTERM)
        with self.assertRaises(interrupts.Terminated) as caught:
            with interrupts.terminate_as_interrupt():
                _send(signal.SIGTERM)
                self.fail("SIGTERM did not interrupt")
        self.assertIsInstance(caught.exception, KeyboardInterrupt)  # the same unwinding as Ctrl-C
        self.assertEqual(caught.exception.exit_code, 143)
        self.assertEqual(signal.getsignal(signal.SIGTERM), before)

    def test_sighup_too(self) -> None:
        with self.assertRaises(interrupts.Terminated) as caught:
            with interrupts.terminate_as_interrupt():
                _send(signal.SIGHUP)
        self.assertEqual(caught.exception.exit_code, 129)


class LateSecondInterruptTests(unittest.TestCase):
    def test_a_ctrl_c_while_the_first_is_reported_still_exits_130(self) -> None:
        # The CLI's second Ctrl-C can land while it says "interrupted" for the first: it died of
        # the signal (status -2 to its parent) instead of exiting with a Ctrl-C's 130.
        from unittest import mock

        from bot_bottle import cli

        def interrupted_twice(argv):  # noqa: ANN001, ANN202
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                raise KeyboardInterrupt from None  # the second one, during the first's handling

        with mock.patch.object(cli, "_main", interrupted_twice):
            try:
                code = cli.main(["list"])
            except KeyboardInterrupt:
                self.fail("the second Ctrl-C escaped main()")
        self.assertEqual(code, 130)


if __name__ == "__main__":
    unittest.main()
