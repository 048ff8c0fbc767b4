"""A bound on one WebSocket message, which mitmproxy assembles whole before any hook sees it.

mitmproxy's WebSocket layer grows the message being assembled one piece at a time with
``bytes +=``, a copy of all of it per piece: a 32 MB message held the proxy's one event loop
(and with it every connection of the bottle) for 5 s, a 64 MB one for 18 s, and a few hundred
MB, from the agent or from an upstream, would have cost the proxy its memory as well.

``install`` gives mitmproxy's ``WebsocketConnection`` a message buffer of bytearrays (grown in
place) that refuses to pass ``limit`` bytes, and wraps the layer's relay so that a message
past it closes both sides with code 1009 (message too big), as RFC 6455 provides, and is
reported to ``on_too_big``. The limit is the proxy's held limit: a message is scanned whole,
as a held body is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

MESSAGE_TOO_BIG = 1009

# (flow, from_client, size so far) of a message refused for its size.
TooBig = Callable[[Any, bool, int], None]


class MessageTooBig(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"WebSocket message past {size} bytes")
        self.size = size


class MessageParts(list):  # type: ignore[type-arg]
    """mitmproxy's ``frame_buf``: the frames of the message being assembled, each a bytearray so
    that ``parts[-1] += data`` grows it in place, their total bounded by ``limit``."""

    def __init__(self, parts: Iterable[bytes], limit: int) -> None:
        super().__init__(bytearray(p) for p in parts)
        self.limit = limit
        self.before_last = sum(len(p) for p in self[:-1])

    def __setitem__(self, index: Any, value: Any) -> None:
        if index != -1 and index != len(self) - 1:
            raise TypeError("only the frame being assembled is written")
        if not isinstance(value, bytearray):
            value = bytearray(value)
        size = self.before_last + len(value)
        if size > self.limit:
            raise MessageTooBig(size)
        super().__setitem__(index, value)

    def append(self, value: Any) -> None:
        if self:
            self.before_last += len(self[-1])
        super().append(bytearray(value))


def install(limit: int, on_too_big: TooBig) -> None:
    """Bound every WebSocket message mitmproxy assembles from now on (idempotent: the latest
    ``limit`` and ``on_too_big`` apply)."""
    from mitmproxy.proxy.layers import websocket as ws_layers

    connection = ws_layers.WebsocketConnection
    layer = ws_layers.WebsocketLayer
    settings = getattr(layer, "bottle_ws_limit", None)
    if settings is not None:
        settings.update(limit=limit, on_too_big=on_too_big)
        return
    settings = {"limit": limit, "on_too_big": on_too_big}

    def get_parts(self: Any) -> MessageParts:
        return self.__dict__["bottle_parts"]

    def set_parts(self: Any, parts: Iterable[bytes]) -> None:
        self.__dict__["bottle_parts"] = MessageParts(parts, settings["limit"])

    relay = layer.relay_messages
    settings["originals"] = (connection.__dict__.get("frame_buf"), relay)
    connection.frame_buf = property(get_parts, set_parts)  # type: ignore[assignment]

    def relay_messages(self: Any, event: Any) -> Iterator[Any]:
        try:
            yield from relay(self, event)
        except MessageTooBig as exc:
            from_client = getattr(event, "connection", None) is self.context.client
            settings["on_too_big"](self.flow, from_client, exc.size)
            yield from _close_both(self, ws_layers)

    layer.relay_messages = relay_messages  # type: ignore[method-assign]
    layer.bottle_ws_limit = settings  # type: ignore[attr-defined]


def _close_both(layer: Any, ws_layers: Any) -> Iterator[Any]:
    """What the layer does when a side closes, with our code: both sides get a close frame,
    both connections end, and the layer reads nothing more."""
    import wsproto.events
    from mitmproxy.proxy import commands
    from wsproto.connection import ConnectionState

    websocket = layer.flow.websocket
    websocket.timestamp_end = time.time()
    websocket.close_code = MESSAGE_TOO_BIG
    websocket.close_reason = "message too big"
    for ws in (layer.server_ws, layer.client_ws):
        ws.frame_buf = [b""]
        if ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            yield ws.send2(wsproto.events.CloseConnection(code=MESSAGE_TOO_BIG, reason="message too big"))
        yield commands.CloseConnection(ws.conn)
    yield ws_layers.WebsocketEndHook(layer.flow)
    layer.flow.live = False
    layer._handle_event = layer.done


def uninstall() -> None:
    """Give mitmproxy its own WebSocket layer back (tests)."""
    from mitmproxy.proxy.layers import websocket as ws_layers

    settings = ws_layers.WebsocketLayer.__dict__.get("bottle_ws_limit")
    if settings is None:
        return
    frame_buf, relay = settings["originals"]
    connection = ws_layers.WebsocketConnection
    if frame_buf is None:
        del connection.frame_buf
    else:
        connection.frame_buf = frame_buf
    ws_layers.WebsocketLayer.relay_messages = relay  # type: ignore[method-assign]
    del ws_layers.WebsocketLayer.bottle_ws_limit
