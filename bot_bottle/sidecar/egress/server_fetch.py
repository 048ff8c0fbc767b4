"""Provider-side fetches: a model request that makes the PROVIDER's servers reach an address.

The provider's API route is allowed with the real key injected, so anything the provider does on
a request's behalf happens outside the bottle's default-deny egress. Some request fields make
the provider itself connect to an address the request names, carrying whatever the request puts
in it (a query string, an MCP call's arguments): a way out that no route allows. This module
finds those fields; the proxy refuses such a request on a route whose DLP settings say
``server_fetch: block`` (``policy.Route.blocks_server_fetch``; the default on the provider's
route, ``plan._dlp_dict``).

What counts (structural fields only, wherever they sit in the JSON document, since the providers
have several endpoints that take them: messages, batches, responses, chat completions, realtime
sessions, containers):

- an MCP server the provider connects to: an object of ``type`` ``mcp`` (OpenAI's remote MCP
  tool and connectors) or ``mcp_toolset``, a non-empty ``mcp_servers`` (Anthropic's MCP
  connector), a ``server_url``;
- the provider's web fetch tool: a ``type`` starting with ``web_fetch`` (not a ``*_result`` block
  replayed from history);
- content the provider downloads: a ``source`` of ``type`` ``url`` (Anthropic image and document
  blocks), an ``image_url`` (OpenAI ``input_image``, Chat Completions ``image_url`` parts, the
  image tools' inputs) or a ``file_url`` (``input_file``), unless it is a ``data:`` URL (inline);
- a hosted container given network access: a ``network_policy`` whose type is not ``disabled``;
- the ``anthropic-beta`` header naming an ``mcp-client-*`` or ``web-fetch-*`` beta, which the
  provider requires for those tools (refused even without a body that uses them: the header is
  the cheap, certain sign).

Not counted: ``web_search`` server tools (Claude Code's WebSearch uses them; the query goes to the
provider's search backend, not to an address the request names: a residual channel, documented),
text that merely mentions a URL (a tool result, a prompt), the model's own tool calls replayed
from history (``tool_use`` inputs, ``function_call`` arguments) and JSON schemas: the provider
never fetches from those.

Cost: most requests never get parsed. The raw bytes are searched once for the few spellings such
a field can have (``TRIGGER``); a body without any is answered at once. A JSON key or value can be
spelt with ``\\u`` escapes, and a body can be UTF-16 or UTF-32: escaped ASCII letters and a
non-UTF-8 start are triggers too, which no client that serialises JSON normally writes. A body
that triggers is parsed (duplicate keys noted: the provider may read the other copy) and walked
iteratively, within bounds on depth and size; one that cannot be read (not JSON, too deep, too
large, an encoding that does not decode) is refused too, since what it holds cannot be known.
Pure: no mitmproxy, no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot_bottle.sidecar.dlp.bodies import decode_body
from bot_bottle.sidecar.egress.policy import SERVER_FETCH as SETTING

RULE = "server-fetch"  # the rule a refusal names, in the 403 and the log

BETA_HEADER = "anthropic-beta"
_FETCHING_BETAS = ("mcp-client-", "web-fetch-")

# A body past this (decoded) is not read: the proxy never holds more (``dlp_adapter.HELD_LIMIT``).
DECODED_LIMIT = 16 * 1024 * 1024
# Bounds of the walk: provider requests nest a few levels (a block in a message in a list) and
# hold tens of thousands of objects at most; a document past these is refused, not half-checked.
MAX_DEPTH = 128
MAX_CONTAINERS = 1_000_000

# Every spelling a fetching field can have in UTF-8 JSON, as raw bytes: JSON whitespace around
# the colon is allowed; ``"image_url"`` followed by a ``data:`` URL (what Codex sends for a
# screenshot) does not count. One pass (every branch starts with a quote, which keeps the regex
# engine's scan fast: ~1 ms per MB; an alternation without a common first byte took ten times that).
TRIGGER = re.compile(
    rb'"(?:type"[ \t\r\n]*:[ \t\r\n]*"(?:url"|mcp"|mcp_toolset"|web_fetch)'
    rb'|image_url"[ \t\r\n]*:(?![ \t\r\n]*"data:)'
    rb'|(?:mcp_servers|file_url|server_url|network_policy)")'
)
# A ``\u`` escape of an ASCII letter or "_" (``"\u0075rl"`` is ``"url"`` to a parser),
# which no client that serialises JSON normally writes; searched separately (a literal start is
# fast) and kept only when the backslash is not itself escaped (``\\u0041`` in quoted source code
# is a backslash and the text "u0041").
_ESCAPE = re.compile(rb"\\u00[4-7]")
# Byte-order marks, and a NUL in the first four bytes: UTF-16 or UTF-32 JSON (which Python's
# parser, and maybe the provider's, reads), where the ASCII spellings above do not occur.
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")

# Keys whose values the provider never fetches from (a tool's JSON schema, metadata, the model's
# own call arguments): not walked, so a schema property or a replayed tool call named like a
# fetching field is not mistaken for one.
_OPAQUE_KEYS = frozenset({"input_schema", "parameters", "schema", "json_schema", "metadata", "arguments"})
# Block types whose ``input`` is the model's call, replayed from history: never fetched from.
_CALL_TYPES = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})

# Field names shown in a reported path; any other key (it may be a secret the request carries)
# is shown as "?". Indices are always shown.
_SHOWN_KEYS = frozenset({
    "messages", "content", "system", "tools", "tool", "input", "output", "instructions", "mcp_servers",
    "source", "url", "image_url", "file_url", "server_url", "type", "requests", "params", "body", "prompt",
    "variables", "environment", "network_policy", "container", "session", "response", "item", "items",
    "input_image_mask", "images", "image", "document", "data", "contents", "parts", "message", "conversation",
})
# Dated names as the providers spell them are shown; anything else in their place (it may carry a
# value the request chose) is shown by its prefix only.
_SHOWN_BETA = re.compile(r"(?:mcp-client|web-fetch)-\d{4}-\d{2}-\d{2}")
_SHOWN_TYPE = re.compile(r"web_fetch_\d{8}")


@dataclass(frozen=True)
class Fetch:
    """One provider-side fetch a request asks for: what it is, and where (a JSON path or a
    header name). Neither holds a value the request carries: keys outside the API's own
    vocabulary are shown as "?", and no URL is ever quoted."""

    what: str
    where: str

    def describe(self) -> str:
        return f"{self.what} at {self.where}"


def find(headers: Iterable[tuple[str, str]], body: bytes) -> Fetch | None:
    """The first provider-side fetch a request asks for, in its headers or its body; None when
    it asks for none. ``headers`` as sent (any case); ``body`` raw, its Content-Encoding (named
    in ``headers``) still applied."""
    pairs = list(headers)
    found = header_fetch(pairs)
    if found is not None or not body:
        return found
    encoding = ", ".join(v for k, v in pairs if _spelling(k) == "content-encoding") or None
    return body_fetch(body, encoding)


def header_fetch(headers: Iterable[tuple[str, str]]) -> Fetch | None:
    """An ``anthropic-beta`` flag that turns on a fetching tool (``mcp-client-*``, ``web-fetch-*``).
    Read under any spelling of the name (a server reading headers CGI-style takes
    ``anthropic_beta`` for it), every occurrence, every comma-separated flag."""
    for name, value in headers:
        if _spelling(name) != BETA_HEADER:
            continue
        for flag in value.split(","):
            flag = flag.strip().lower()
            if flag.startswith(_FETCHING_BETAS):
                shown = flag if _SHOWN_BETA.fullmatch(flag) else next(p for p in _FETCHING_BETAS if flag.startswith(p)) + "..."
                return Fetch("a beta that lets the provider fetch from addresses the request names",
                             f"header {BETA_HEADER}: {shown}")
    return None


def might_fetch(body: bytes) -> bool:
    """The cheap first look: can ``body`` hold a fetching field at all? False means it cannot."""
    head = body[:4]
    if head.startswith(_BOMS) or b"\0" in head:
        return True
    if TRIGGER.search(body) is not None:
        return True
    return any(_escapes(body, m.start()) for m in _ESCAPE.finditer(body))


def _escapes(body: bytes, at: int) -> bool:
    """Is the backslash at ``at`` an escape (preceded by an even number of backslashes)?"""
    before = at
    while before > 0 and body[before - 1] == 0x5C:
        before -= 1
    return (at - before) % 2 == 0


def body_fetch(body: bytes, content_encoding: str | None = None) -> Fetch | None:
    """The first provider-side fetch ``body`` asks for, or None (see the module docstring)."""
    if content_encoding and content_encoding.strip().lower() not in ("", "identity"):
        decoded = decode_body(body, content_encoding, DECODED_LIMIT)
        if decoded.error is not None:
            return Fetch("a body whose Content-Encoding does not decode (what it holds cannot be checked)", "body")
        if decoded.truncated:
            return Fetch(f"a body larger than {DECODED_LIMIT} bytes once decoded (it cannot be checked)", "body")
        body = decoded.data
    if not might_fetch(body):
        return None
    try:
        doc = json.loads(body, object_pairs_hook=_object)
    except RecursionError:
        return Fetch("a JSON document nested too deeply to check", "body")
    except ValueError:
        # It holds a fetching field's spelling and is not one JSON document (JSON lines for a
        # batch, a form, a parser's leniency): what the provider would read in it is unknown.
        return Fetch("a body that spells a fetching field but cannot be read as one JSON document", "body")
    return json_fetch(doc)


class _Twice(dict):  # type: ignore[type-arg]
    """A JSON object that gave some key more than once (``repeated``): the provider's parser may
    keep another copy than Python's (the last)."""

    repeated: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    twice = _Twice(obj)
    seen: set[str] = set()
    twice.repeated = tuple(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
    return twice


# A trail is a linked list of path segments, (segment, parent trail), built only as containers
# are pushed; the path string is made only for a finding.
_Trail = tuple[Any, Any] | None


def json_fetch(doc: Any) -> Fetch | None:
    """The first provider-side fetch in a parsed JSON document, in document order; None if none.
    Iterative (no recursion), bounded by ``MAX_DEPTH`` and ``MAX_CONTAINERS``: a document past
    them is reported as one that cannot be checked."""
    stack: list[tuple[Any, _Trail, int]] = [(doc, None, 0)]
    containers = 0
    while stack:
        value, trail, depth = stack.pop()
        containers += 1
        if containers > MAX_CONTAINERS:
            return Fetch(f"a JSON document of more than {MAX_CONTAINERS} objects and lists (it cannot be checked)",
                         "body")
        if depth > MAX_DEPTH:
            return Fetch(f"a JSON document nested more than {MAX_DEPTH} levels (it cannot be checked)", _path(trail))
        if isinstance(value, dict):
            found = _judge(value, trail)
            if found is not None:
                return found
            kind = value.get("type")
            call = isinstance(kind, str) and kind in _CALL_TYPES
            children = [(key, child) for key, child in value.items()
                        if isinstance(child, (dict, list)) and key not in _OPAQUE_KEYS and not (call and key == "input")]
            for key, child in reversed(children):  # reversed: popped in document order
                stack.append((child, (key, trail), depth + 1))
        else:
            for index in range(len(value) - 1, -1, -1):
                child = value[index]
                if isinstance(child, (dict, list)):
                    stack.append((child, (index, trail), depth + 1))
    return None


def _judge(obj: dict[str, Any], trail: _Trail) -> Fetch | None:
    """The fetch this one object asks for itself (not its children), or None."""
    repeated = getattr(obj, "repeated", ())
    if repeated:
        return Fetch("a key given twice (the provider may read the other copy)", _path(trail, repeated[0]))
    kind = obj.get("type")
    if isinstance(kind, str):
        if kind in ("mcp", "mcp_toolset"):
            return Fetch("an MCP server the provider connects to", _path(trail, "type") + "=" + kind)
        if kind.startswith("web_fetch") and "result" not in kind:
            shown = kind if _SHOWN_TYPE.fullmatch(kind) else "web_fetch..."
            return Fetch("the provider's web fetch tool (it fetches URLs the request names)",
                         _path(trail, "type") + "=" + shown)
    servers = obj.get("mcp_servers")
    if servers:
        where = _path(trail, "mcp_servers") + ("[0]" if isinstance(servers, list) else "")
        return Fetch("an MCP server the provider connects to", where)
    if "server_url" in obj and obj["server_url"] is not None:
        return Fetch("an MCP server the provider connects to", _path(trail, "server_url"))
    source = obj.get("source")
    if isinstance(source, dict) and source.get("type") == "url" and not _inline(source.get("url")):
        return Fetch("content the provider downloads from a URL", _path(("source", trail), "url"))
    image = obj.get("image_url")
    if isinstance(image, str) and not _inline(image):
        return Fetch("an image the provider downloads from a URL", _path(trail, "image_url"))
    if isinstance(image, dict) and isinstance(image.get("url"), str) and not _inline(image["url"]):
        return Fetch("an image the provider downloads from a URL", _path(("image_url", trail), "url"))
    file_url = obj.get("file_url")
    if isinstance(file_url, str) and not _inline(file_url):
        return Fetch("a file the provider downloads from a URL", _path(trail, "file_url"))
    policy = obj.get("network_policy")
    if policy and not (isinstance(policy, dict) and policy.get("type") == "disabled"):
        return Fetch("a hosted container with network access", _path(trail, "network_policy"))
    return None


def _inline(url: Any) -> bool:
    """A ``data:`` URL carries its content itself: nothing is fetched."""
    return isinstance(url, str) and url.lstrip()[:5].lower() == "data:"


def _path(trail: _Trail, last: str | None = None) -> str:
    """``messages[0].content[1].source.url`` for a trail (and a last key)."""
    parts: list[Any] = [last] if last is not None else []
    while trail is not None:
        segment, trail = trail
        parts.append(segment)
    out = ""
    for segment in reversed(parts):
        if isinstance(segment, int):
            out += f"[{segment}]"
        else:
            shown = segment if segment in _SHOWN_KEYS else "?"
            out += ("." if out else "") + shown
    return out or "body"


def _spelling(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def describe_refusal(found: Fetch) -> str:
    """The reason a refusal gives: where first (the log keeps the start of a long reason), what,
    why, and how the operator allows it."""
    return (f"{found.where}: {found.what}; the provider's servers would reach an address the request "
            f"names, outside the bottle's egress policy (a bottle that needs this sets "
            f"'dlp: {{{SETTING}: allow}}' on the route)")
