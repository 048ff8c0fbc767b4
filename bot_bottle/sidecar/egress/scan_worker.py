"""Whole-body DLP scans, run off the proxy's event loop.

The proxy relays every connection of a bottle on mitmproxy's one event loop. A body held whole
to be scanned (a large JSON request to a model, a form, an answer up to 16 MiB, a WebSocket
message) took the scan's time on that loop: measured, an 11.8 MB JSON request held it for 3.6 s,
and 3 MB of percent-encoded form for 0.6 s, while every other connection of the bottle, the
model's streamed answers included, waited. Run on one worker thread, the same scans leave the
loop free between the scanner's own C calls (longest measured gap 65-130 ms; Python switches
threads every 5 ms otherwise).

One worker, so whole-body scans still run one at a time: the hold budget (``holding``) counts on
one full scan at a time (about seven times a 16 MiB body). Chunk-wise scans of streamed bodies
stay on the loop (mitmproxy calls them synchronously, a batch at a time). The scanners are safe
to share: their lazily built parts are idempotent, and the fragment memory takes a lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class ScanWorker:
    """A one-thread executor, started on first use and stopped by ``close`` (restartable)."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None

    async def run(self, scan: Callable[..., T], *args: object) -> T:
        """``scan(*args)`` on the worker thread; its exception, if any, raised here."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dlp-scan")
        return await asyncio.get_running_loop().run_in_executor(self._pool, scan, *args)

    def close(self) -> None:
        """Stop the thread without waiting for a scan in progress (the proxy is stopping)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
