"""Host names asked for over HTTP: DNS over HTTPS (RFC 8484) and resolvers' JSON APIs.

A name resolved by an attacker's name server carries whatever its labels hold (a DNS tunnel),
and a public resolver reached over HTTPS is one request away: ``GET /dns-query?dns=<the query
message in base64url>``, ``POST /dns-query`` with the message as the body
(``application/dns-message``), or ``GET /resolve?name=<name>``. The name is then in a query
parameter or a body, not in the request's host, where the host checks (``Scanner.scan_host``:
a secret spread over several labels, base32, lower-cased forms) never looked; base64 of a
binary message is not even text a decoder reads. The names are read out here, for the scanner
to judge like a host.
"""

from __future__ import annotations

import base64
import binascii
import re

# The parameters a resolver reads the name from: RFC 8484's ``dns`` (a query message) and the
# JSON APIs' ``name`` (Google's, Cloudflare's). Others are not read as names: a request with
# thousands of dotted values would cost a host scan each.
PARAMETERS = frozenset({"dns", "name"})
_HEADER = 12
_MAX_QUESTIONS = 16
_MAX_NAME = 255
_MAX_LABEL = 63
# The bytes a label of a name someone resolves is written in (letters, digits, "-", "_"; more
# lenient than a host name: a tunnel's labels need not be host names).
_LABEL_BYTES = frozenset(range(0x21, 0x7F)) - {ord(".")}
# A DNS message in base64url, as the ``dns`` parameter carries one: at least a header and a
# one-label question.
_BASE64URL = re.compile(r"[A-Za-z0-9_-]{24,}={0,2}")
# A name as a JSON API takes it: three labels or more, the longest name DNS allows.
_NAME = re.compile(r"(?:[A-Za-z0-9_-]{1,63}\.){2,}[A-Za-z0-9_-]{1,63}\.?")
MIN_NAME = 16  # shorter names hold no secret worth a host scan


def query_names(data: bytes) -> list[str]:
    """The names a DNS query message (RFC 1035's wire format) asks for, dotted; [] when
    ``data`` is not a query message."""
    if len(data) < _HEADER + 5 or data[2] & 0xF8:  # a response, or an opcode other than QUERY
        return []
    count = int.from_bytes(data[4:6], "big")
    if not 1 <= count <= _MAX_QUESTIONS:
        return []
    names: list[str] = []
    at = _HEADER
    for _ in range(count):
        parsed = _name(data, at)
        if parsed is None:
            return names
        name, at = parsed
        if at + 4 > len(data):
            return names
        at += 4  # the type and class
        names.append(name)
    return names


def _name(data: bytes, at: int) -> tuple[str, int] | None:
    """The name at ``at`` and where the bytes after it start; None when none is there (a query
    never compresses its name: a pointer is not read)."""
    labels: list[str] = []
    size = 0
    while at < len(data):
        length = data[at]
        if length == 0:
            return (".".join(labels), at + 1) if labels else None
        label = data[at + 1 : at + 1 + length]
        if length > _MAX_LABEL or len(label) < length or not _LABEL_BYTES.issuperset(label):
            return None
        size += length + 1
        if size > _MAX_NAME:
            return None
        labels.append(label.decode("ascii"))
        at += 1 + length
    return None


def names_in_value(value: str) -> list[str]:
    """The names the value of one of ``PARAMETERS`` asks for: a DNS message in base64url
    (``?dns=``), or a name itself (``?name=``) long enough to carry a secret."""
    text = value.strip()
    if len(text) >= MIN_NAME and _NAME.fullmatch(text):
        return [text.rstrip(".")]
    if _BASE64URL.fullmatch(text):
        try:
            data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            return []
        return query_names(data)
    return []
