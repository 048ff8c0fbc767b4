"""MCP's streamable-HTTP transport, stateless with JSON answers, on asyncio streams (stdlib only).

One POST carries one JSON-RPC message; a request gets its answer as the response body, a
notification gets ``202``. There are no sessions and no server-initiated streams, so GET and
DELETE are refused. This module knows the protocol's methods, never what a tool means: each
``Tool`` brings its name, description, input schema and handler.

One endpoint serves both eras of the protocol. Revision 2026-07-28 has no handshake: every request
carries its version and the client's capabilities in ``params._meta``, mirrors its version, method
and tool name into the ``MCP-Protocol-Version``, ``Mcp-Method`` and ``Mcp-Name`` headers (which must
agree with the body), and is answered ``server/discover``, ``tools/list`` or ``tools/call`` with a
``resultType``. A request whose ``MCP-Protocol-Version`` names an older version, or that has none,
is served as before (``initialize``, ``ping``, ``tools/list``, ``tools/call``), answers unchanged.

The caller is assumed hostile (a prompt-injected agent): the request head and body are bounded in
size and in time, connections are bounded in number, the Host (and any Origin) header must name
this server (DNS rebinding), and nothing about a failure beyond its one-line summary reaches the
client. A tool call runs while its connection is open: when the client goes away the call is
cancelled, so a tool waiting on someone can withdraw what it asked.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import http.client
import io
import json
import re
import socket
import sys
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Versions reachable through ``initialize``, oldest to newest (those the mcp SDK 2.3.0 served).
HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
# Versions whose every request carries its own ``_meta`` (no ``initialize``).
MODERN_VERSIONS = ("2026-07-28",)
PROTOCOL_VERSIONS = HANDSHAKE_VERSIONS + MODERN_VERSIONS
PROTOCOL_HEADER = "mcp-protocol-version"
METHOD_HEADER = "mcp-method"
NAME_HEADER = "mcp-name"
# The body field ``Mcp-Name`` mirrors, per method (2026-07-28).
NAME_FIELDS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
META_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
META_SERVER_INFO = "io.modelcontextprotocol/serverInfo"
# How long a 2026-07-28 client may keep ``tools/list`` and ``server/discover``: the tools are fixed
# for the server's life; "private" because the descriptions carry this bottle's settings.
LIST_TTL_MS = 300_000
LIST_CACHE_SCOPE = "private"

MAX_HEAD = 16 * 1024
MAX_BODY = 1024 * 1024
MAX_CONNECTIONS = 64
HEAD_TIMEOUT_S = 10.0  # from a request's first byte to the end of its head
BODY_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 75.0  # a kept-alive connection waiting for its next request
WRITE_TIMEOUT_S = 30.0

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
HEADER_MISMATCH = -32020
UNSUPPORTED_PROTOCOL_VERSION = -32022

_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 406: "Not Acceptable", 411: "Length Required",
            413: "Content Too Large", 415: "Unsupported Media Type", 421: "Misdirected Request",
            431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


class ToolError(Exception):
    """A tool's refusal: its message goes back to the agent as an ``isError`` result."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_schema: dict[str, Any]
    # Called with the call's ``arguments`` object; returns what the agent reads (as JSON text).
    handler: Callable[[dict[str, Any]], Awaitable[Any]]

    def listing(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "inputSchema": self.input_schema}


@dataclass(frozen=True)
class Reply:
    """One HTTP response: its status, a body (JSON-encoded unless bytes) and extra headers."""

    status: int
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False

    def encode(self, keep_alive: bool) -> bytes:
        if self.body is None:
            payload, kind = b"", None
        elif isinstance(self.body, bytes):
            payload, kind = self.body, "text/plain; charset=utf-8"
        else:
            payload = json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode()
            kind = "application/json"
        lines = [f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Error')}"]
        if kind:
            lines.append(f"Content-Type: {kind}")
        lines.append(f"Content-Length: {len(payload)}")
        lines.extend(f"{k}: {v}" for k, v in self.headers)
        if not keep_alive:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def _error(status: int, code: int, message: str, rid: Any = None, data: Any = None, close: bool = False) -> Reply:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return Reply(status, {"jsonrpc": "2.0", "id": rid, "error": err}, close=close)


def _text(status: int, text: str, *headers: tuple[str, str], close: bool = False) -> Reply:
    return Reply(status, text.encode(), tuple(headers), close=close)


def log(message: str) -> None:
    # stderr: the sidecar's stdout carries the proxy's decision lines.
    print(f"supervise: {message}", file=sys.stderr, flush=True)


class _Gone(Exception):
    """The client closed its side, or stalled past a deadline: drop the connection silently."""


class _Refused(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


@dataclass
class _Wire:
    """A connection's read side with its own buffer, so the EOF watch during a tool call can
    read ahead without losing the bytes of a pipelined next request."""

    reader: asyncio.StreamReader
    buf: bytearray = field(default_factory=bytearray)
    eof: bool = False

    async def _fill(self) -> None:
        data = await self.reader.read(65536)
        if not data:
            self.eof = True
            raise _Gone
        self.buf += data

    async def head(self, idle_s: float) -> bytes:
        try:
            async with asyncio.timeout(idle_s):
                while not self.buf:
                    await self._fill()
        except TimeoutError:
            raise _Gone from None
        try:
            async with asyncio.timeout(HEAD_TIMEOUT_S):
                while (end := self.buf.find(b"\r\n\r\n")) < 0:
                    if len(self.buf) > MAX_HEAD:
                        raise _Refused(_text(431, "Request header fields too large", close=True))
                    await self._fill()
        except TimeoutError:
            raise _Gone from None
        if end + 4 > MAX_HEAD:
            raise _Refused(_text(431, "Request header fields too large", close=True))
        head = bytes(self.buf[:end])
        del self.buf[:end + 4]
        return head

    async def body(self, size: int) -> bytes:
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                while len(self.buf) < size:
                    await self._fill()
        except TimeoutError:
            raise _Gone from None
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data

    async def wait_gone(self) -> None:
        """Return once the client has closed its side (reading ahead, within bounds)."""
        while not self.eof:
            if len(self.buf) > MAX_HEAD + MAX_BODY:
                await asyncio.Event().wait()  # a client this far ahead is not waiting for EOF checks
            try:
                await self._fill()
            except _Gone:
                return
            except ConnectionError:
                self.eof = True
                return


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: http.client.HTTPMessage
    body: bytes = b""

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in (self.headers.get("connection") or "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


def parse_head(head: bytes) -> Request:
    """The request line by hand (it is one line), the header fields by the stdlib's parser."""
    line, _, rest = head.partition(b"\r\n")
    parts = line.decode("latin-1").split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0") or not parts[0].isalpha() or not parts[1]:
        raise _Refused(_text(400, "Bad request line", close=True))
    try:
        headers = http.client.parse_headers(io.BytesIO(rest + b"\r\n\r\n"))
    except http.client.HTTPException:
        raise _Refused(_text(431, "Request header fields too large", close=True)) from None
    if headers.defects:
        raise _Refused(_text(400, "Malformed header fields", close=True))
    return Request(parts[0], parts[1], parts[2], headers)


def _path(target: str) -> str:
    """The path of a request target, in origin form (``/mcp?x``) or absolute form (``http://h/mcp``)."""
    if not target.startswith("/"):
        target = urllib.parse.urlsplit(target).path or "/"
    return target.split("?", 1)[0]


def _content_length(request: Request) -> int | None:
    if request.headers.get_all("transfer-encoding"):
        raise _Refused(_text(411, "Send the body with a Content-Length, not chunked", close=True))
    values = {v.strip() for v in request.headers.get_all("content-length") or ()}
    if not values:
        return None
    if len(values) != 1 or not (value := values.pop()).isdigit():
        raise _Refused(_text(400, "Bad Content-Length", close=True))
    return int(value)


def host_allowed(host: str | None, allowed: Sequence[str]) -> bool:
    """The mcp SDK's rule: an exact entry, or ``name:*`` for ``name`` with any port."""
    if not host:
        return False
    if host in allowed:
        return True
    return any(a.endswith(":*") and host.startswith(a[:-1]) for a in allowed)


def origin_allowed(origin: str | None, allowed: Sequence[str]) -> bool:
    if origin is None:
        return True
    scheme, sep, host = origin.partition("://")
    return bool(sep) and scheme in ("http", "https") and "/" not in host and host_allowed(host, allowed)


def _accepts_json(accept: str | None) -> bool:
    types = {part.split(";", 1)[0].strip().lower() for part in (accept or "").split(",")}
    return bool(types & {"application/json", "application/*", "*/*"})


def _is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == "application/json"


class McpServer:
    """The JSON-RPC side: one decoded message in, one reply out."""

    def __init__(self, tools: Sequence[Tool], *, name: str, version: str, instructions: str,
                 allowed_hosts: Sequence[str], path: str = "/mcp",
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.tools = {tool.name: tool for tool in tools}
        self.info = {"name": name, "version": version}
        self.instructions = instructions
        self.allowed_hosts = tuple(allowed_hosts)
        self.path = path
        self.max_connections = max_connections
        self.connections = 0

    # -- HTTP ---------------------------------------------------------------------------------

    def check(self, request: Request) -> Reply | None:
        """What refuses ``request`` before its body is read, if anything."""
        if _path(request.target) != self.path:
            return _text(404, "Not Found")
        if len(request.headers.get_all("host") or ()) > 1:
            return _text(400, "More than one Host header")
        if not host_allowed(request.headers.get("host"), self.allowed_hosts):
            return _text(421, "Invalid Host header")
        if not origin_allowed(request.headers.get("origin"), self.allowed_hosts):
            return _text(403, "Invalid Origin header")
        if request.method != "POST":
            # Stateless: no stream the server could open, no session to end.
            refusal = _error(405, INVALID_REQUEST, "Method Not Allowed: this server takes POST only")
            return Reply(refusal.status, refusal.body, (("Allow", "POST"),))
        if not _accepts_json(request.headers.get("accept")):
            return _error(406, INVALID_REQUEST, "Not Acceptable: Client must accept application/json")
        if not _is_json(request.headers.get("content-type")):
            return _text(400, "Invalid Content-Type header")
        version = request.headers.get(PROTOCOL_HEADER)
        if version is not None and version not in PROTOCOL_VERSIONS:
            return _unsupported(version)
        return None

    # -- JSON-RPC -----------------------------------------------------------------------------

    def decode(self, body: bytes) -> dict[str, Any] | Reply:
        """The message in ``body``, or the reply refusing it."""
        try:
            message = json.loads(body)
        except (ValueError, RecursionError) as exc:
            return _error(400, PARSE_ERROR, f"Parse error: {str(exc)[:200]}")
        if isinstance(message, list):
            return _error(400, INVALID_REQUEST, "Invalid Request: batches are not supported; send one message per POST")
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return _error(400, INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message")
        if "method" in message:
            if not isinstance(message["method"], str):
                return _error(400, INVALID_REQUEST, "Invalid Request: 'method' must be a string")
            if "id" in message and not _valid_id(message["id"]):
                return _error(400, INVALID_REQUEST, "Invalid Request: 'id' must be a string or an integer")
            if message.get("params") is not None and not isinstance(message["params"], dict):
                return _error(400, INVALID_PARAMS, "Invalid params: 'params' must be an object", _rid(message))
        elif "id" not in message or ("result" in message) == ("error" in message):
            return _error(400, INVALID_REQUEST, "Invalid Request: neither a request, a notification nor a response")
        return message

    async def answer(self, message: dict[str, Any], headers: http.client.HTTPMessage | None = None) -> Reply:
        modern = headers is not None and _names_modern(headers)
        if "method" not in message:
            if modern:  # 2026-07-28 clients send no responses: there is nothing they could answer
                return _error(400, INVALID_REQUEST, "Invalid Request: a client sends requests and notifications only")
            return Reply(202)  # the client's response: nothing to say back
        if "id" not in message:
            return Reply(202)  # a notification: nothing to say back
        if modern and headers is not None:
            return await self._answer_modern(message, headers)
        stray = _stray_envelope(message, headers)
        if stray is not None:
            return stray
        rid, method, params = message["id"], message["method"], message.get("params") or {}
        handler = self._methods.get(method)
        if handler is None:
            return _error(200, METHOD_NOT_FOUND, "Method not found", rid, data=method[:100])
        try:
            result = await handler(self, params)
        except _BadParams as exc:
            return _error(200, INVALID_PARAMS, f"Invalid params: {exc}", rid)
        return Reply(200, {"jsonrpc": "2.0", "id": rid, "result": result})

    async def _answer_modern(self, message: dict[str, Any], headers: http.client.HTTPMessage) -> Reply:
        """A 2026-07-28 request: its envelope and headers checked, then answered with a ``resultType``
        and this server's identity (errors map to HTTP statuses, as that revision requires)."""
        rid, method, params = message["id"], message["method"], message.get("params") or {}
        refusal = _modern_refusal(method, params, headers, rid)
        if refusal is not None:
            return refusal
        handler = self._modern_methods.get(method)
        if handler is None:  # ``initialize`` and ``ping`` included: that revision has neither
            return _error(404, METHOD_NOT_FOUND, "Method not found", rid, data=method[:100])
        try:
            result = await handler(self, params)
        except _BadParams as exc:
            return _error(400, INVALID_PARAMS, f"Invalid params: {exc}", rid)
        result = {"resultType": "complete", **result, "_meta": {META_SERVER_INFO: dict(self.info)}}
        return Reply(200, {"jsonrpc": "2.0", "id": rid, "result": result})

    async def _discover(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "supportedVersions": list(MODERN_VERSIONS),
            "capabilities": {"tools": {"listChanged": False}},
            # The discover page's example names the server here; the schema, in ``_meta`` (both sent).
            "serverInfo": dict(self.info),
            "instructions": self.instructions,
            "ttlMs": LIST_TTL_MS,
            "cacheScope": LIST_CACHE_SCOPE,
        }

    async def _tools_list_cacheable(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**await self._tools_list(params), "ttlMs": LIST_TTL_MS, "cacheScope": LIST_CACHE_SCOPE}

    async def _initialize(self, params: dict[str, Any]) -> dict[str, Any]:
        requested = params.get("protocolVersion")
        if not isinstance(requested, str):
            raise _BadParams("'protocolVersion' must be a string")
        for key in ("capabilities", "clientInfo"):
            if params.get(key) is not None and not isinstance(params[key], dict):
                raise _BadParams(f"{key!r} must be an object")
        return {
            "protocolVersion": requested if requested in HANDSHAKE_VERSIONS else HANDSHAKE_VERSIONS[-1],
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": dict(self.info),
            "instructions": self.instructions,
        }

    async def _ping(self, params: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def _tools_list(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"tools": [tool.listing() for tool in self.tools.values()]}

    async def _empty(self, key: str) -> dict[str, Any]:
        return {key: []}

    async def _tools_call(self, params: dict[str, Any]) -> dict[str, Any]:
        name, arguments = params.get("name"), params.get("arguments")
        if not isinstance(name, str):
            raise _BadParams("'name' must be a string")
        if arguments is not None and not isinstance(arguments, dict):
            raise _BadParams("'arguments' must be an object")
        tool = self.tools.get(name)
        if tool is None:
            return _tool_error(f"Unknown tool: {name[:100]}")
        try:
            value = await tool.handler(arguments or {})
        except ToolError as exc:
            return _tool_error(f"Error executing tool {name}: {exc}")
        except Exception as exc:  # the tool's bug stays here: one line in the log, none of it to the agent
            log(f"tool {name} failed: {type(exc).__name__}: {exc}")
            return _tool_error(f"Error executing tool {name}: internal error")
        return {"content": [{"type": "text", "text": json.dumps(value, indent=2, ensure_ascii=False)}],
                "isError": False}

    _methods: dict[str, Callable[[McpServer, dict[str, Any]], Awaitable[dict[str, Any]]]] = {
        "initialize": _initialize,
        "ping": _ping,
        "tools/list": _tools_list,
        "tools/call": _tools_call,
        # Listed by the SDK's server too: a client asking anyway is told there are none.
        "prompts/list": lambda self, params: self._empty("prompts"),
        "resources/list": lambda self, params: self._empty("resources"),
        "resources/templates/list": lambda self, params: self._empty("resourceTemplates"),
    }
    # 2026-07-28: only what the capabilities name (no prompts or resources: those are 404 there).
    _modern_methods: dict[str, Callable[[McpServer, dict[str, Any]], Awaitable[dict[str, Any]]]] = {
        "server/discover": _discover,
        "tools/list": _tools_list_cacheable,
        "tools/call": _tools_call,
    }

    # -- connections --------------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.connections >= self.max_connections:
            await _send(writer, _text(503, "Too many connections", close=True), keep_alive=False)
            await _close(writer)
            return
        self.connections += 1
        try:
            await self._serve(_Wire(reader), writer)
        except (_Gone, ConnectionError, TimeoutError):
            pass
        except asyncio.CancelledError:
            # The server is stopping. Ending plainly: Python 3.11's stream callback calls
            # exception() on the handler's task, which raises for a cancelled one.
            writer.transport.abort()
        except Exception as exc:  # a bug must cost one connection, never the server
            log(f"connection failed: {type(exc).__name__}: {exc}")
        finally:
            self.connections -= 1
            await _close(writer)

    async def _serve(self, wire: _Wire, writer: asyncio.StreamWriter) -> None:
        idle = HEAD_TIMEOUT_S
        while True:
            try:
                request = parse_head(await wire.head(idle))
                reply = await self._one(request, wire, writer)
            except _Refused as refused:
                await _send(writer, refused.reply, keep_alive=False)
                return
            if reply is None:  # the client went away mid-call
                return
            keep_alive = request.keep_alive and not reply.close
            await _send(writer, reply, keep_alive)
            if not keep_alive:
                return
            idle = IDLE_TIMEOUT_S

    async def _one(self, request: Request, wire: _Wire, writer: asyncio.StreamWriter) -> Reply | None:
        length = _content_length(request)
        refusal = self.check(request)
        if refusal is not None:
            # Skip a body within bounds so the connection can go on; a bigger one ends it.
            if length and length > MAX_BODY:
                return _with_close(refusal)
            if length:
                await wire.body(length)
            return refusal
        if length is None:
            raise _Refused(_text(411, "Content-Length required", close=True))
        if length > MAX_BODY:
            raise _Refused(_text(413, "Request body too large", close=True))
        message = self.decode(await wire.body(length))
        if isinstance(message, Reply):
            return message
        return await _unless_gone(self.answer(message, request.headers), wire)


class _BadParams(ValueError):
    pass


def _unsupported(requested: str, rid: Any = None, why: str = "") -> Reply:
    return _error(400, UNSUPPORTED_PROTOCOL_VERSION, f"Unsupported protocol version: {requested[:100]}{why}", rid,
                  data={"supported": list(PROTOCOL_VERSIONS), "requested": requested[:100]})


def _mismatch(message: str, rid: Any) -> Reply:
    return _error(400, HEADER_MISMATCH, f"Header mismatch: {message}", rid)


def _names_modern(headers: http.client.HTTPMessage) -> bool:
    # Any copy: a duplicate naming 2026-07-28 must not slip past its checks behind an older first one.
    return any(v in MODERN_VERSIONS for v in headers.get_all(PROTOCOL_HEADER) or ())


def _envelope(params: dict[str, Any]) -> dict[str, Any] | None:
    """The request's ``_meta`` when it carries a per-request protocol version (2026-07-28's envelope)."""
    meta = params.get("_meta")
    return meta if isinstance(meta, dict) and META_VERSION in meta else None


def _stray_envelope(message: dict[str, Any], headers: http.client.HTTPMessage | None) -> Reply | None:
    """A request on the older path whose body names its version per request: the header must say
    the same, or a proxy routing on the header and this server reading the body would disagree."""
    params = message.get("params")
    if headers is None or not params or (meta := _envelope(params)) is None:
        return None
    if headers.get(PROTOCOL_HEADER) != meta[META_VERSION]:
        return _mismatch("MCP-Protocol-Version header is missing or does not match params._meta", _rid(message))
    return None


_SENTINEL = re.compile(r"=\?base64\?(.*)\?=", re.DOTALL)
_HEADER_SAFE = re.compile(r"[\x20-\x7e]*")


def _header_value(raw: str) -> str | None:
    """A mirrored header's value as the body would hold it: plain printable ASCII as is, the
    ``=?base64?...?=`` form decoded (canonical base64 of UTF-8); None when neither."""
    if not _HEADER_SAFE.fullmatch(raw):
        return None
    sentinel = _SENTINEL.fullmatch(raw)
    if sentinel is None:
        return raw
    try:
        data = base64.b64decode(sentinel.group(1), validate=True)
        if base64.b64encode(data).decode("ascii") != sentinel.group(1):
            return None
        return data.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _modern_refusal(method: str, params: dict[str, Any], headers: http.client.HTTPMessage, rid: Any) -> Reply | None:
    """What refuses a 2026-07-28 request before it is dispatched: a mirrored header sent twice, its
    ``_meta`` envelope, the headers mirroring the body (equal to it), then the version itself."""
    for name, label in ((PROTOCOL_HEADER, "MCP-Protocol-Version"), (METHOD_HEADER, "Mcp-Method"), (NAME_HEADER, "Mcp-Name")):
        if len(headers.get_all(name) or ()) > 1:  # a proxy reading one copy and this server another would disagree
            return _mismatch(f"more than one {label} header", rid)
    meta = _envelope(params)
    if meta is None:
        # The revision requires the version per request; its header alone does not make one.
        return _error(400, INVALID_PARAMS, f"Invalid params: _meta must carry {META_VERSION!r}", rid)
    refusal = _envelope_refusal(meta, rid) or _mirror_refusal(method, params, meta[META_VERSION], headers, rid)
    if refusal is None and meta[META_VERSION] not in MODERN_VERSIONS:
        return _unsupported(meta[META_VERSION], rid)
    return refusal


def _envelope_refusal(meta: dict[str, Any], rid: Any) -> Reply | None:
    """The per-request fields 2026-07-28 requires (version, capabilities) and their types."""
    if not isinstance(meta[META_VERSION], str):
        return _error(400, INVALID_PARAMS, f"Invalid params: _meta {META_VERSION!r} must be a string", rid)
    if not isinstance(meta.get(META_CAPABILITIES), dict):
        return _error(400, INVALID_PARAMS, f"Invalid params: _meta must carry {META_CAPABILITIES!r} (an object)", rid)
    if meta.get(META_CLIENT_INFO) is not None and not isinstance(meta[META_CLIENT_INFO], dict):
        return _error(400, INVALID_PARAMS, f"Invalid params: _meta {META_CLIENT_INFO!r} must be an object", rid)
    return None


def _mirror_refusal(method: str, params: dict[str, Any], version: str, headers: http.client.HTTPMessage,
                    rid: Any) -> Reply | None:
    """The headers that repeat the body for intermediaries: present, and saying what the body says."""
    if headers.get(PROTOCOL_HEADER) != version:
        return _mismatch(f"MCP-Protocol-Version header does not match params._meta {META_VERSION}", rid)
    method_header = headers.get(METHOD_HEADER)
    if method_header is None:
        return _mismatch("Mcp-Method header is required", rid)
    if method_header != method:
        return _mismatch("Mcp-Method header does not match the body's method", rid)
    field_name = NAME_FIELDS.get(method)
    if field_name is None or not isinstance(params.get(field_name), str):
        return None  # a name of the wrong type is the method's own invalid params
    raw = headers.get(NAME_HEADER)
    if raw is None:
        return _mismatch(f"Mcp-Name header is required for {method}", rid)
    if _header_value(raw) != params[field_name]:
        return _mismatch(f"Mcp-Name header does not match params.{field_name}", rid)
    return None


def _valid_id(rid: Any) -> bool:
    return isinstance(rid, str) or (isinstance(rid, int) and not isinstance(rid, bool))


def _rid(message: dict[str, Any]) -> Any:
    return message.get("id") if _valid_id(message.get("id")) else None


def _tool_error(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": True}


def _with_close(reply: Reply) -> Reply:
    return Reply(reply.status, reply.body, reply.headers, close=True)


async def _unless_gone(call: Awaitable[Reply], wire: _Wire) -> Reply | None:
    """``call``'s reply, or None once the client closed its side (``call`` is then cancelled,
    so a tool waiting on the operator withdraws what it asked)."""
    task = asyncio.ensure_future(call)
    watch = asyncio.ensure_future(wire.wait_gone())
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone = not task.done()
        watch.cancel()
        task.cancel()
        # Both must have ended before the stream is read again (one reader at a time), and the
        # call's own cleanup (expiring its proposal) must have run.
        await asyncio.wait({task, watch})
    if gone:
        if not task.cancelled() and task.exception() is not None:
            log(f"cancelled call failed: {type(task.exception()).__name__}: {task.exception()}")
        return None
    return task.result()


async def _send(writer: asyncio.StreamWriter, reply: Reply, keep_alive: bool) -> None:
    writer.write(reply.encode(keep_alive))
    try:
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await writer.drain()
    except TimeoutError:
        raise _Gone from None


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        async with asyncio.timeout(5):
            await writer.wait_closed()
    except (ConnectionError, TimeoutError, OSError, asyncio.CancelledError):
        # Closing is the handler's last step: a stop arriving now has nothing left to stop
        # (and see ``handle`` on cancelled handler tasks).
        pass


async def serve(server: McpServer, *, host: str | None = None, port: int | None = None,
                sock: socket.socket | None = None, ready: Callable[[asyncio.Server], None] | None = None) -> None:
    """Serve until cancelled, on ``host``:``port`` or on an already listening ``sock`` (whose
    waiting connections are the first ones served)."""
    listener = await asyncio.start_server(server.handle, host, port, sock=sock, limit=MAX_HEAD)
    if ready is not None:
        ready(listener)
    async with listener:
        await listener.serve_forever()
