"""How much of all the bodies in flight the proxy may hold at once.

Each body the proxy holds whole (to scan it, or because mitmproxy buffers it) is bounded on its
own (``dlp_adapter.HELD_LIMIT``), but an agent's package manager fetches a dozen files at once:
sixteen 15 MB downloads, each held for the inbound scan, got the proxy killed for memory (the
sidecar has 512 MB) and the bottle lost its network. So every held body reserves its size here
first. An answer that finds no room streams through the scan instead of being held; a request
that finds none is refused with a 503 the agent can retry.

Plain arithmetic over one counter: the proxy's hooks all run on mitmproxy's one event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024
# Memory the held bodies may cost together, beside one full scan at a time (about seven times a
# 16 MiB body) and the proxy's own ~50 MB: well inside the sidecar's 512 MB.
DEFAULT_BUDGET = 128 * MiB
# What one byte of a held body costs while it passes: the body, its TLS-encrypted copy and the
# socket's send buffer when it leaves whole (measured: sixteen 15 MB answers held at once took
# the proxy to ~440 MB, about three times their size over its own).
PER_BYTE = 3


@dataclass
class HoldBudget:
    """Sizes in and out are body bytes; ``held`` and ``limit`` are the memory they cost."""

    limit: int = DEFAULT_BUDGET
    per_byte: int = PER_BYTE
    held: int = 0

    def reserve(self, size: int) -> bool:
        """Take what a body of ``size`` bytes costs if it fits. One body always fits when nothing
        else is held (the limit is never below one body's own bound)."""
        cost = max(0, size) * self.per_byte
        if cost and self.held and self.held + cost > self.limit:
            return False
        self.held += cost
        return True

    def force(self, size: int) -> None:
        """Count a body's ``size`` bytes that are held whatever the budget says (a stream's batch)."""
        self.held += max(0, size) * self.per_byte

    def release(self, size: int) -> None:
        self.held = max(0, self.held - max(0, size) * self.per_byte)

    def describe(self) -> str:
        return (f"other bodies held for their scans cost {self.held // MiB} MiB of the "
                f"{self.limit // MiB} MiB the proxy allows them")


# Body bytes relayed (held or streamed) after which a connection's end triggers a collection.
SWEEP_AFTER = 16 * MiB
SWEEP_DELAY = 0.2  # seconds after the connection's end: its handler's frames are gone by then


@dataclass
class Sweeper:
    """When to run Python's cyclic garbage collector in the proxy.

    A body given back to the budget is not yet given back to the machine: mitmproxy leaves a
    reference cycle behind each connection that ends (the ``CancelledError`` of its reader,
    whose traceback holds the connection handler's frames, and through them its layers, flows
    and bodies), and such cycles wait for a full collection, which Python runs rarely. Under
    rounds of parallel downloads the proxy kept 200-400 MB it no longer used and was killed
    for memory. So once enough body bytes have passed, the next connection's end is followed
    by a full collection (~10 ms on the proxy's ~60,000 objects)."""

    every: int = SWEEP_AFTER
    pending: int = 0  # body bytes relayed since the last collection
    scheduled: bool = False

    def relayed(self, size: int) -> None:
        self.pending += max(0, size)

    def due(self) -> bool:
        """Whether a connection's end should schedule a collection (at most one at a time)."""
        if self.scheduled or self.pending < self.every:
            return False
        self.scheduled = True
        return True

    def swept(self) -> None:
        self.pending = 0
        self.scheduled = False
