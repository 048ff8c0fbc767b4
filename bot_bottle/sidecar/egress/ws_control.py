"""WebSocket control frames: ping and pong payloads, and a close frame's reason, on both sides.

Its one job: hand every such payload to a check before mitmproxy relays it, and relay one that
the check refuses empty. mitmproxy relays these without any hook (only data messages reach
``websocket_message``): up to 125 bytes per ping or pong, as many as a side cares to send, and
a 123-byte close reason. ``install`` wraps the event stream of both sides of each WebSocket:

- what the agent sends goes to ``check`` (nothing of the bottle's may leave that way); ``check``
  is the one to close the connection and log why (the addon: 1008, as for a message);
- what the upstream sends goes to ``upstream_check`` (the bottle's secrets it echoes must not
  reach the agent; the addon logs a redaction and keeps the connection open).

A refused ping or pong is still relayed, with no payload; a close keeps its code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

# (that side's mitmproxy connection, "ping" | "pong" | "close", payload) -> may it be relayed?
Check = Callable[[Any, str, bytes], bool]


def install(check: Check, upstream_check: Check | None = None) -> None:
    """Check the agent's control payloads with ``check`` from now on, and the upstream's with
    ``upstream_check`` (None: relayed as sent). Idempotent: the latest checks apply."""
    from mitmproxy.proxy.layers import websocket as ws_layers

    connection = ws_layers.WebsocketConnection
    settings = connection.__dict__.get("bottle_ws_control")
    if settings is not None:
        settings["check"], settings["upstream_check"] = check, upstream_check
        return
    settings = {"check": check, "upstream_check": upstream_check, "original": connection.__dict__.get("events")}
    events = connection.events

    def checked_events(self: Any) -> Iterator[Any]:
        # wsproto's "client" side is the one mitmproxy speaks to the upstream with (its events
        # are what the upstream sends); the other one reads what the agent sends.
        side_check = settings["upstream_check"] if self.client else settings["check"]
        for event in events(self):
            yield event if side_check is None else _checked(event, self.conn, side_check)

    connection.events = checked_events  # type: ignore[method-assign]
    connection.bottle_ws_control = settings  # type: ignore[attr-defined]


def _checked(event: Any, conn: Any, check: Check) -> Any:
    import wsproto.events

    if isinstance(event, (wsproto.events.Ping, wsproto.events.Pong)) and event.payload:
        kind = "ping" if isinstance(event, wsproto.events.Ping) else "pong"
        if not check(conn, kind, bytes(event.payload)):
            return type(event)(payload=b"")
    elif isinstance(event, wsproto.events.CloseConnection) and event.reason:
        if not check(conn, "close", event.reason.encode("utf-8", "surrogatepass")):
            return wsproto.events.CloseConnection(code=event.code, reason=None)
    return event


def uninstall() -> None:
    """Give mitmproxy its own WebSocket connections back (tests)."""
    from mitmproxy.proxy.layers import websocket as ws_layers

    connection = ws_layers.WebsocketConnection
    settings = connection.__dict__.get("bottle_ws_control")
    if settings is None:
        return
    if settings["original"] is None:
        del connection.events
    else:
        connection.events = settings["original"]
    del connection.bottle_ws_control
