"""A request URL taken apart into what is scanned (userinfo, path, each query parameter name and
value, fragment) and put back together after redaction.

Query parameters are decoded as latin-1 (``%xx`` becomes one character per byte), the same view
the body scanner has of bytes, so the needles of a secret match either way and re-encoding
restores the exact bytes of everything not redacted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit


@dataclass
class QueryParam:
    raw: str  # "name=value" as sent
    name: str  # decoded
    value: str | None  # decoded; None when there is no "="


@dataclass
class UrlView:
    scheme: str = ""
    userinfo: str | None = None  # raw
    hostport: str = ""  # as sent (host and port, no userinfo)
    host: str = ""  # as sent (case kept: token formats need it), without port or brackets
    path: str = ""  # raw
    query: str | None = None  # raw, without "?"
    fragment: str | None = None  # raw, without "#"
    params: list[QueryParam] = field(default_factory=list)

    def rebuild(self) -> str:
        out = ""
        if self.scheme or self.hostport:
            out = f"{self.scheme}://" if self.scheme else "//"
            if self.userinfo is not None:
                out += self.userinfo + "@"
            out += self.hostport
        out += self.path
        if self.query is not None:
            out += "?" + "&".join(p.raw for p in self.params) if self.params else "?" + self.query
        if self.fragment is not None:
            out += "#" + self.fragment
        return out


def split_url(url: str) -> UrlView:
    view = UrlView()
    try:
        parts = urlsplit(url)
    except ValueError:
        # Unparseable (a broken IPv6 literal, ...): treat the whole thing as a path.
        view.path = url
        return view
    view.scheme = parts.scheme
    if parts.netloc:
        userinfo, at, hostport = parts.netloc.rpartition("@")
        view.userinfo = userinfo if at else None
        view.hostport = hostport
        host = hostport
        if host.startswith("["):
            host = host[1:].split("]", 1)[0]
        elif host.count(":") == 1:
            host = host.split(":", 1)[0]
        view.host = host
    view.path = parts.path
    query_marker = url.find("?")
    if query_marker >= 0 and (not parts.fragment or query_marker < url.find("#")):
        view.query = parts.query
    if "#" in url:
        view.fragment = parts.fragment
    if view.query:
        for raw in view.query.split("&"):
            name, eq, value = raw.partition("=")
            view.params.append(QueryParam(raw, decode_component(name), decode_component(value) if eq else None))
    return view


def decode_component(text: str) -> str:
    return unquote_plus(text, encoding="latin-1")


def encode_component(text: str) -> str:
    # ":" kept readable so a marker reads "%5BREDACTED:NAME%5D" in logs.
    return quote_plus(text, safe=":", encoding="latin-1")


def unquote_latin1(text: str) -> str:
    """Percent-decoding for userinfo and path pieces (``+`` stays ``+``), one character a byte."""
    return unquote(text, encoding="latin-1")


def quote_latin1(text: str) -> str:
    return quote(text, safe=":", encoding="latin-1")


def encode_path_marker(marker: str) -> str:
    return quote(marker, safe=":")


def semicolon_values(text: str, limit: int) -> list[str]:
    """The decoded values of ``text`` (a query or form body) read as pairs separated by ``&``
    or ``;`` (as some servers read them), in order, at most ``limit``; none unless a ``;`` does
    separate pairs (a ``name=value`` follows one): a plain query is taken apart on ``&`` only
    (``split_url``, ``parse_qsl``), and a ``;`` inside an ordinary value adds nothing."""
    if ";" not in text or not any("=" in piece for piece in text.split(";")[1:]):
        return []
    out: list[str] = []
    for pair in text.split("&"):
        for piece in pair.split(";"):
            name, eq, value = piece.partition("=")
            if eq and value:
                out.append(decode_component(value))
                if len(out) >= limit:
                    return out
    return out
