"""Large whole-body DLP scans, run off the proxy's event loop.

The proxy relays every connection of a bottle on mitmproxy's one event loop. A body held whole
to be scanned (a large JSON request to a model, a form, an answer up to 16 MiB, a WebSocket
message) took the scan's time on that loop, while every other connection of the bottle, the
model's streamed answers included, waited: in the benchmark's lab (``bench/proxy_latency.py``)
a small request sent during the scan of a held 7.5 MB JSON request took 2.2-2.6 s. Run on a
worker thread, the scan leaves the loop free between the scanner's own C calls (the GIL is
handed over every millisecond, ``proxy.SWITCH_INTERVAL``): the same request took 0.16-0.33 s
(most of it its tunnel's set-up), and the next ones on its connection 5-20 ms.

One worker, so large scans still run one at a time: the hold budget (``holding``) counts on one
full scan at a time (about seven times a 16 MiB body). Small bodies (most requests: up to
``INLINE_LIMIT``) are scanned on the loop as before: queued behind a large scan on the one
worker, a small request waited for all of it. Chunk-wise scans of streamed bodies stay on the
loop too (mitmproxy calls them synchronously, a batch at a time). The scanners are safe to share
between the two threads: their lazily built parts are idempotent, the fragment memory takes a
lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

# Bodies up to this size are scanned on the loop: a few milliseconds at most (the slowest text
# measured scans at ~2.5 MB/s), less than the hop to the worker costs a small request in waiting.
INLINE_LIMIT = 64 * 1024


class ScanWorker:
    """A one-thread executor, started on first use and stopped by ``close`` (restartable)."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None

    async def run(self, size: int, scan: Callable[..., T], *args: object) -> T:
        """``scan(*args)`` for a body of ``size`` bytes: on the worker thread when it is large,
        else here; its exception, if any, raised here."""
        if size <= INLINE_LIMIT:
            return scan(*args)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dlp-scan")
        return await asyncio.get_running_loop().run_in_executor(self._pool, scan, *args)

    def close(self) -> None:
        """Stop the thread without waiting for a scan in progress (the proxy is stopping)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
