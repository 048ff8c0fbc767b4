"""Structural blocks: request shapes refused whatever the policy says about their target.

Each check takes plain data (header pairs decoded byte-for-byte as latin-1, so lengths are byte
counts) and returns a ``Problem`` naming a stable rule, or None. The reasons never quote a header
value: the agent may be smuggling a secret in exactly that value.

The proxy underneath (mitmproxy) refuses some of these shapes itself before forwarding; these
checks are ours so that the rule is named in the log and every shape is covered whatever the
proxy version does. For the framing shapes mitmproxy would answer with its own 400 before any
hook runs (Content-Length with Transfer-Encoding, several Content-Length values), the addon
lets the request reach its hooks only when ``framing_problem`` refuses it too, so the agent gets
our 403 naming the rule.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

RULE_HEADER_INJECTION = "header-injection"
RULE_HEADER_NAME = "header-name"
RULE_OBS_FOLD = "obs-fold"
RULE_CL_TE = "smuggling-cl-te"
RULE_CONTENT_LENGTH = "smuggling-content-length"
RULE_TRANSFER_ENCODING = "smuggling-transfer-encoding"
RULE_HEADER_TOO_LARGE = "header-too-large"
RULE_ABSOLUTE_FORM = "absolute-form-mismatch"
RULE_GIT_PUSH = "git-push"
RULE_REQUEST_TARGET = "request-target"
RULE_METHOD = "method"
RULE_FORWARDED_HOST = "forwarded-host"
RULE_HOP_BY_HOP = "hop-by-hop"

MAX_HEADER_VALUE = 16 * 1024
MAX_HEADERS_TOTAL = 64 * 1024

# RFC 9110 token: the only characters a field name may have.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# A folded line as the HTTP/1 parser hands it over: the line break kept, then the indent.
_FOLD = re.compile(r"\r?\n[ \t]")
_FORBIDDEN_CHARS = ("\r", "\n", "\x00")
# No client sends these in a request target: a fragment ("#") or whitespace/control characters.
# Servers disagree on them (some cut the path at "#", some keep it and then resolve "/../" after
# it), so a path rule judged on one reading could be applied by the upstream to another.
_TARGET_UNSAFE = re.compile(r"[#\x00-\x20\x7f]")
_DIGITS = re.compile(r"^[0-9]+$")
GIT_RECEIVE_PACK = "git-receive-pack"

# The IANA HTTP Method Registry (RFC 9110, WebDAV, CalDAV, versioning), plus PURGE (caches) and
# without PRI (HTTP/2's preface, never a request). Anything else is refused: a method is a free
# token of any length, forwarded as sent and read by no scanner.
HTTP_METHODS = frozenset({
    "ACL", "BASELINE-CONTROL", "BIND", "CHECKIN", "CHECKOUT", "CONNECT", "COPY", "DELETE", "GET",
    "HEAD", "LABEL", "LINK", "LOCK", "MERGE", "MKACTIVITY", "MKCALENDAR", "MKCOL", "MKREDIRECTREF",
    "MKWORKSPACE", "MOVE", "OPTIONS", "ORDERPATCH", "PATCH", "POST", "PROPFIND", "PROPPATCH",
    "PURGE", "PUT", "QUERY", "REBIND", "REPORT", "SEARCH", "TRACE", "UNBIND", "UNCHECKOUT",
    "UNLINK", "UNLOCK", "UPDATE", "UPDATEREDIRECTREF", "VERSION-CONTROL",
})


@dataclass(frozen=True)
class Problem:
    rule: str
    reason: str


def header_problem(headers: Sequence[tuple[str, str]], http_version: str = "HTTP/1.1") -> Problem | None:
    """The first structural problem of a header block, or None when it is sound."""
    total = 0
    for name, value in headers:
        if any(c in name for c in _FORBIDDEN_CHARS):
            return Problem(RULE_HEADER_INJECTION, "a header name contains CR, LF or NUL")
        if not _TOKEN.match(name) and not (name.startswith(":") and _TOKEN.match(name[1:])):
            # ":authority" and friends are HTTP/2 pseudo-headers; anything else must be a token.
            return Problem(RULE_HEADER_NAME, "a header name contains characters a header name cannot have")
        if _FOLD.search(value):
            return Problem(RULE_OBS_FOLD, f"header {_shown(name)} is folded over several lines (obsolete line folding)")
        if any(c in value for c in _FORBIDDEN_CHARS):
            return Problem(RULE_HEADER_INJECTION, f"header {_shown(name)} contains CR, LF or NUL")
        if len(value) > MAX_HEADER_VALUE:
            return Problem(
                RULE_HEADER_TOO_LARGE, f"header {_shown(name)} is larger than {MAX_HEADER_VALUE // 1024} KiB"
            )
        total += len(name) + len(value) + 4  # ": " and CRLF on the wire
    if total > MAX_HEADERS_TOTAL:
        return Problem(RULE_HEADER_TOO_LARGE, f"the headers together are larger than {MAX_HEADERS_TOTAL // 1024} KiB")
    return framing_problem(headers, http_version)


def framing_problem(headers: Iterable[tuple[str, str]], http_version: str = "HTTP/1.1") -> Problem | None:
    """Request smuggling shapes: body length that two parsers could read differently."""
    lengths: list[str] = []
    encodings: list[str] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "content-length":
            lengths.append(value)
        elif lowered == "transfer-encoding":
            encodings.append(value)
    if lengths and encodings:
        return Problem(RULE_CL_TE, "the request has both Content-Length and Transfer-Encoding")
    if encodings:
        if len(encodings) > 1:
            return Problem(RULE_TRANSFER_ENCODING, "the request has more than one Transfer-Encoding header")
        if encodings[0].strip(" \t").lower() != "chunked":
            return Problem(RULE_TRANSFER_ENCODING, "Transfer-Encoding must be exactly 'chunked'")
        if http_version.upper() in ("HTTP/1.0", "HTTP/0.9"):
            return Problem(RULE_TRANSFER_ENCODING, f"Transfer-Encoding is not defined for {http_version}")
    if lengths:
        values = [part.strip(" \t") for value in lengths for part in value.split(",")]
        if not all(_DIGITS.match(v) for v in values):
            return Problem(RULE_CONTENT_LENGTH, "Content-Length is not a plain decimal number")
        if len({int(v) for v in values}) > 1:
            return Problem(RULE_CONTENT_LENGTH, "the request has several Content-Length values that differ")
        # RFC 9112 lets a recipient accept repeats of one value; parsers disagree on them (and on
        # leading zeros), and the proxy underneath refuses both, so they are refused here with
        # this rule named.
        if len(values) > 1:
            return Problem(RULE_CONTENT_LENGTH, "the request has more than one Content-Length value")
        if len(values[0]) > 1 and values[0].startswith("0"):
            return Problem(RULE_CONTENT_LENGTH, "Content-Length has leading zeros")
    return None


def method_problem(method: str) -> Problem | None:
    """A request method outside ``HTTP_METHODS`` (the reason does not quote it)."""
    if method.upper() in HTTP_METHODS:
        return None
    return Problem(RULE_METHOD, "the request method is not a registered HTTP method")


def shown_method(method: str) -> str:
    """The method fit for a log line: a registered one, else a stand-in (it may be a secret)."""
    return method if method.upper() in HTTP_METHODS else "(unregistered)"


def target_problem(path: str) -> Problem | None:
    """Control characters in the request target (a second request hidden in the first line), a
    fragment, or whitespace: shapes upstream servers read differently from the proxy. And a
    target that is neither a path nor ``*``: mitmproxy splits an HTTP/1 absolute URL into its
    authority (checked against the target), but forwards an HTTP/2 ``:path`` as sent, and an
    upstream that takes ``http://other.example/`` there as an absolute URL routes by its host."""
    if any(c in path for c in _FORBIDDEN_CHARS):
        return Problem(RULE_HEADER_INJECTION, "the request target contains CR, LF or NUL")
    if _TARGET_UNSAFE.search(path):
        return Problem(RULE_REQUEST_TARGET,
                       "the request target contains a fragment (#), whitespace or a control character")
    if not path.startswith("/") and path != "*":
        return Problem(RULE_REQUEST_TARGET, "the request target is not a path starting with '/'")
    if network_path(path):
        return Problem(RULE_REQUEST_TARGET,
                       "the request target starts with '//' or '/\\' (also percent-encoded), which a server or "
                       "front end that reads it as a URL takes for another host: remove the extra slash")
    return None


# How many characters of a target a network-path reference can start in: "/" and a slash or
# backslash percent-encoded twice ("/%252f").
_NETWORK_PATH_HEAD = 8


def network_path(path: str) -> bool:
    """Does the target start like a network-path reference (``//host/x``, RFC 3986 section 4.2)?
    Read as a URL against the server's own base (WHATWG ``new URL``, Python's ``urljoin``, Java's
    ``URI.resolve``, also with "\\" for "/" as WHATWG reads it), it names another host: a front
    end that forwards by it sends the request, the injected credential with it, there. (A route's
    ``paths`` are not bypassed by it: a path passing one starts with its prefix.) No client needs
    it (an extra slash from joining a base URL is the usual cause), so it is refused on every
    route, also percent-encoded once or twice (servers that decode first)."""
    return any(text[:2] in ("//", "/\\") for text in _decodings(path[:_NETWORK_PATH_HEAD]))


def absolute_form_problem(authority: str, host: str, port: int, normalise) -> Problem | None:
    """An absolute-form URL (or HTTP/2 ``:authority``) that names another host (or port) than the
    connection's real target.

    ``authority`` is the ``host[:port]`` of an absolute-form request line or of an HTTP/2 or
    HTTP/3 request, empty for the usual HTTP/1 origin form. ``normalise`` is the host
    normaliser, passed in to keep this module standalone.
    """
    if not authority:
        return None
    if not authority.isascii():
        # An upstream picks its site by these bytes, which IDNA may fold into the target's name.
        return Problem(RULE_ABSOLUTE_FORM, "the request's absolute-form URL or :authority holds non-ASCII "
                       "characters; send the name in its ASCII (xn--) form")
    name, named_port = split_authority(authority)
    try:
        named = None if authority_shape_problem(authority) else normalise(name)
    except ValueError:
        named = None
    if named is None:
        return Problem(RULE_ABSOLUTE_FORM, "the request's absolute-form URL or :authority "
                       "is not a valid host and port")
    if named != host:
        return Problem(RULE_ABSOLUTE_FORM, "the request's absolute-form URL or :authority "
                       f"names another host than the target {host}")
    if named_port is not None and named_port != port:
        return Problem(RULE_ABSOLUTE_FORM, "the request's absolute-form URL or :authority "
                       f"names another port than {port}")
    return None


# Headers through which a proxy tells the server behind it which host the client asked for. Some
# front ends and multi-tenant apps serve the host they name instead of the request's own (Django's
# USE_X_FORWARDED_HOST, Rails and Symfony behind trusted proxies, IIS ARR's X-Original-Host): the
# agent is a client, never a proxy, so a request naming one could reach another host or tenant
# than the target the route allowed. Compared in CGI spelling too (``X_Forwarded_Host``).
HOST_OVERRIDE_HEADERS = ("x-forwarded-host", "x-forwarded-server", "x-original-host", "x-host",
                         "x-http-host-override")
# RFC 7239 ``Forwarded: for=...;host=...``: a ``host`` parameter anywhere in it, any case, with
# the blanks some parsers allow around "=".
_FORWARDED_HOST = re.compile(r"(?:^|[;,\s])host\s*=", re.I)


def forwarded_host_problem(headers: Iterable[tuple[str, str]]) -> Problem | None:
    """A header the agent sent that names a host for the upstream to serve (``X-Forwarded-Host``,
    ``Forwarded: host=``, ...): refused whatever host it names (its value is not quoted)."""
    for name, value in headers:
        spelled = name.lower().replace("_", "-")
        if spelled in HOST_OVERRIDE_HEADERS or (spelled == "forwarded" and _FORWARDED_HOST.search(value)):
            return Problem(RULE_FORWARDED_HOST,
                           f"header {_shown(name)} names a host for the upstream to serve; only a proxy sends it, "
                           "and a front end that honours it could serve another host than the target")
    return None


# What a client's ``Connection`` header may name. Each other name is a header that a proxy
# downstream must remove (RFC 9110 section 7.6.1) after this proxy checked the request with it
# (mitmproxy forwards an HTTP/1 request's Connection header as sent): a header a route's
# ``matches`` require, the Content-Type the ``_method`` body check read the body by, or the
# Content-Length that frames the body (a next hop left without it reads the body as another
# request, for any path and host). These name only hop-by-hop headers themselves: closing or
# keeping the connection, a WebSocket or h2c upgrade, ``TE: trailers``.
CONNECTION_TOKENS = frozenset({"close", "keep-alive", "upgrade", "te", "http2-settings"})
# ``Proxy-Connection`` is the pre-standard spelling of ``Connection`` meant for a proxy. mitmproxy
# forwards it to an HTTP/1 upstream as sent (only HTTP/2 drops it), and a hop behind may take it
# for ``Connection`` (Node's parser reads its tokens so): it is held to the same tokens. What it
# may name only closes or keeps the connection, so it needs no further handling. ``Keep-Alive``
# carries parameters (``timeout=5, max=100``), never header names: nothing reads them as such.
CONNECTION_HEADERS = ("connection", "proxy-connection")


def connection_problem(headers: Iterable[tuple[str, str]]) -> Problem | None:
    """A ``Connection`` (or ``Proxy-Connection``) header naming any other header than
    ``CONNECTION_TOKENS`` (its value is not quoted)."""
    for name, value in headers:
        if name.lower().replace("_", "-") not in CONNECTION_HEADERS:
            continue
        tokens = {token.strip(" \t").lower() for token in value.split(",")}
        if tokens - CONNECTION_TOKENS - {""}:
            return Problem(RULE_HOP_BY_HOP,
                           f"the {_shown(name)} header names a header a proxy downstream would remove after this "
                           f"proxy checked the request (allowed: {', '.join(sorted(CONNECTION_TOKENS))})")
    return None


def git_push_problem(path: str, headers: Iterable[tuple[str, str]]) -> Problem | None:
    """A git smart-HTTP push: only the bundle's git-gate may receive one (it scans pushes).
    The path and query are read as servers may read them: decoded once and twice, and as a
    Windows server reads them (``windows_reading``: ``git－receive－pack``, ``repo.git＼git-receive-pack``),
    with a last segment's trailing dots and spaces trimmed as IIS trims them. ``headers`` are
    looked at for the body's type; a caller checks a path a rewriting server routes by instead
    (``X-Original-URL``) with no headers."""
    raw_path, _, query = path.split("#", 1)[0].partition("?")
    for candidate in _folded_decodings(raw_path):
        last = candidate.rstrip("/. ").rpartition("/")[2]
        # A CGI server (git http-backend) gets the path as a C string: it ends at a NUL.
        if last.split(";", 1)[0].partition("\0")[0].rstrip(". ") == GIT_RECEIVE_PACK:
            return _push("the path ends in /git-receive-pack")
    for candidate in _folded_decodings(query):
        for key, value in parse_qsl(candidate, keep_blank_values=True):
            if key.strip() == "service" and value.strip() == GIT_RECEIVE_PACK:
                return _push("the query asks for service=git-receive-pack")
    for name, value in headers:
        if name.lower() == "content-type" and GIT_RECEIVE_PACK in value.lower():
            return _push("the body is a git-receive-pack request")
    return None


# Methods with which a WebDAV client writes (``git http-push``, the "dumb HTTP" push, uses PUT,
# MOVE, MKCOL, LOCK and DELETE). Reads (GET, HEAD, PROPFIND: a dumb-HTTP fetch) stay allowed.
DUMB_PUSH_METHODS = frozenset({"PUT", "MOVE", "COPY", "MKCOL", "LOCK", "PROPPATCH", "DELETE"})
# What a push writes inside a repository: a loose object ``objects/xx/<38 hex>`` (``http-push``
# first writes it under that name with its lock token appended, then MOVEs it; SHA-256 names are
# longer), a pack and its companions, or the list of packs. Only git's own layout: a two-hex
# directory then a 38-hex (62 for SHA-256) name with no extension (OSTree's ``.filez`` objects
# and longer hashes are other stores), a pack named by its hash.
_REPO_OBJECT = re.compile(
    r"(?:^|/)objects/(?:[0-9a-f]{2}/[0-9a-f]{38}(?:[0-9a-f]{24})?(?![0-9a-f.])"
    r"|pack/pack-[0-9a-f]{40}(?:[0-9a-f]{24})?\.(?:pack|idx|rev|bitmap|keep|promisor)"
    r"|info/packs(?:;|$))"
)
# A branch or tag, or the ``info/refs`` list a dumb-HTTP fetch starts from.
_REPO_REF = re.compile(r"(?:^|/)(?:refs/(?:heads|tags)/[^/]|info/refs(?:;|$))")
# What every path the two patterns above match holds, in any case (checked before decoding).
_REPO_WORDS = re.compile(r"objects|refs", re.I)
# GitHub's REST API deletes a branch at ``/repos/<owner>/<repo>/git/refs/heads/<name>``: that
# changes no content, and it is no WebDAV write.
_API_REF = re.compile(r"(?:^|/)repos/[^/]+/[^/]+/git/refs/")


def may_name_repo_path(text: str) -> bool:
    """Whether ``text`` could name a path ``git_dumb_push_problem`` refuses: false for ASCII
    without escapes and without "objects" or "refs" (the usual request, for one scan)."""
    return not text.isascii() or "%" in text or _REPO_WORDS.search(text) is not None


def git_dumb_push_problem(path: str, methods: Iterable[str], destinations: Iterable[str] = ()) -> Problem | None:
    """A git push over WebDAV ("dumb HTTP", ``git http-push``): a write method (``methods`` are
    the request's and those it asks the upstream to act as) on a path in git's repository layout
    (``objects/xx/<38 hex>``, ``objects/pack/pack-<hash>.pack``, ``refs/heads/...``,
    ``info/refs``), or a MOVE or COPY whose ``Destination`` (``destinations``) names one. It never
    names git-receive-pack, so ``git_push_problem`` does not see it. The path is read as there:
    decoded once and twice, and as a Windows server reads it."""
    writes = DUMB_PUSH_METHODS.intersection(m.upper() for m in methods)
    if not writes:
        return None
    targets = [path]
    if writes & {"MOVE", "COPY"}:
        targets.extend(destinations)
    for target in targets:
        raw_path = target.split("#", 1)[0].partition("?")[0]
        if not may_name_repo_path(raw_path):
            continue
        for candidate in _folded_decodings(raw_path):
            # A CGI server ends the path at a NUL; IIS trims a last segment's dots and spaces.
            text = candidate.partition("\0")[0].rstrip("/. ")
            if _REPO_OBJECT.search(text):
                return _push("a WebDAV write to a git object path: a dumb-HTTP push")
            if _REPO_REF.search(text) and not (writes == {"DELETE"} and _API_REF.search(text)):
                return _push("a WebDAV write to a git ref path: a dumb-HTTP push")
    return None


def split_authority(authority: str) -> tuple[str, int | None]:
    """``host[:port]`` (IPv6 in brackets) into the host text and the port, if any and numeric
    (``authority_shape_problem`` tells whether a port that is not is to be refused)."""
    text = authority.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    port = int(port_text) if port_text.isascii() and port_text.isdigit() else None
    return host, port


# A port as RFC 3986 spells it: ASCII digits only (``str.isdigit`` takes Arabic-Indic digits too), or none.
_PORT = re.compile(r"[0-9]*")


def authority_shape_problem(authority: str) -> str | None:
    """Why ``host[:port]`` text is not one, or None. A port that is not digits hides another
    host: ``a.example:80@b.example`` is ``b.example`` to a server that reads the text as a URL
    authority (userinfo, then host), and an HTTP/2 upstream gets a Host header as ``:authority``."""
    text = authority.strip()
    if text.startswith("["):
        rest = text.partition("]")[2]
        if rest and not rest.startswith(":"):
            return "text follows the bracketed address"
        port_text = rest[1:]
    elif text.count(":") == 1:
        port_text = text.partition(":")[2]
    else:
        port_text = ""
    return None if _PORT.fullmatch(port_text) else "the port is not a number"


def _push(why: str) -> Problem:
    return Problem(
        RULE_GIT_PUSH,
        f"git pushes leave the bottle only through its git-gate ({why})",
    )


def _decodings(text: str) -> list[str]:
    """The text lower-cased, and decoded once and twice: servers differ in how often they decode."""
    once = unquote(text)
    return [text.lower(), once.lower(), unquote(once).lower()]


def _folded_decodings(text: str) -> list[str]:
    """``_decodings`` with "\\" read as "/" (IIS and Windows servers read it so), and the Windows
    reading of the text and of it decoded once (so of it decoded once and twice), lower-cased
    again (NFKC may leave capitals)."""
    decodings = _decodings(text)
    readings = dict.fromkeys(d.replace("\\", "/") if "\\" in d else d for d in decodings)  # most are alike
    for decoded in dict.fromkeys(decodings[:2]):
        folded = windows_reading(decoded)
        if folded:
            readings[folded.lower()] = None
    return list(readings)


# Non-ASCII characters IIS and ASP.NET read as "/", "\" or ".": Windows maps a character its code
# page lacks to a "best fit": fullwidth ``／``, ``．``, ``＼`` and their small forms (which NFKC
# folds into ASCII too), look-alikes NFKC keeps (the division slash), the yen and won signs (the
# Japanese and Korean code pages hold them where ASCII has "\"). Either separator is "/" there.
_BEST_FIT_SEPARATORS = str.maketrans({c: "/" for c in "\\\u2215\u2044\u29f8\u2216\u29f5\u29f9\u00a5\u20a9"})
_ENCODED_NON_ASCII = re.compile(r"%[89a-f][0-9a-f]")


def windows_reading(lowered: str) -> str:
    """Lower-cased text (a path or a query) as a Windows server may read it: percent escapes
    decoded as UTF-8, then NFKC (fullwidth and compatibility forms become ASCII: ``－`` is "-")
    and the best-fit separators applied; "" (nothing more to read) for ASCII text without escapes
    of non-ASCII bytes, which holds no such character."""
    if lowered.isascii() and not _ENCODED_NON_ASCII.search(lowered):
        return ""
    return unicodedata.normalize("NFKC", unquote(lowered, errors="replace")).translate(_BEST_FIT_SEPARATORS)


def _shown(name: str) -> str:
    """A header name fit for a message: names are tokens once checked, but stay bounded."""
    return name if len(name) <= 64 else name[:61] + "..."
