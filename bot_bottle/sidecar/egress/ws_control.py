"""The agent's WebSocket control frames: ping and pong payloads, and a close frame's reason.

mitmproxy relays these without any hook (only data messages reach ``websocket_message``): up
to 125 bytes per ping or pong, as many as the agent cares to send, and a 123-byte close reason
would leave unread. ``install`` wraps the event stream of the side of each WebSocket that talks
to the agent: every such payload is handed to ``check`` before it is relayed. One that ``check``
refuses is relayed empty (the ping or pong itself still goes, the close keeps its code), and
``check`` is the one to close the connection and log why (the addon: 1008, as for a message).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

# (the agent's mitmproxy connection, "ping" | "pong" | "close", payload) -> may it leave?
Check = Callable[[Any, str, bytes], bool]


def install(check: Check) -> None:
    """Check the agent's control payloads from now on (idempotent: the latest ``check`` applies)."""
    from mitmproxy.proxy.layers import websocket as ws_layers

    connection = ws_layers.WebsocketConnection
    settings = connection.__dict__.get("bottle_ws_control")
    if settings is not None:
        settings["check"] = check
        return
    settings = {"check": check, "original": connection.__dict__.get("events")}
    events = connection.events

    def checked_events(self: Any) -> Iterator[Any]:
        for event in events(self):
            # wsproto's "client" side is the one mitmproxy speaks to the upstream with; the
            # other one reads what the agent sends.
            yield event if self.client else _checked(event, self.conn, settings["check"])

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
