"""Signal dispositions for the processes tests start and then signal."""

from __future__ import annotations

import signal


def default_signals() -> None:
    """In a child before it runs: Ctrl-C not ignored, as at a terminal or in a bottle.

    A test run started in the background (`cmd &` in a script) inherits SIGINT ignored, and its
    children with it: Python then never raises KeyboardInterrupt, and a test of what Ctrl-C does
    would test nothing. Pass as ``preexec_fn``.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
