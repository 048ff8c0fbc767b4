"""Credential fields in a request body on a route that injects a credential (rule
``credential-in-body``): a form's fields, a multipart body's part names, a JSON body's keys that
name one of ``credentials.BODY_CREDENTIAL_FIELDS``. Read whole for a buffered body, chunk by chunk
for a streamed one. Pure functions over bytes, like ``core``'s ``_method`` checks beside them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

from bot_bottle.sidecar.egress import credentials
from bot_bottle.sidecar.egress.core import FORM_MULTIPART, Verdict, form_kind, json_kind, json_string

# Reading a body for ``credentials.BODY_CREDENTIAL_FIELDS`` costs more than a search only where a
# cheap search over the lower-cased body finds a trace of one: a field's last word ("token",
# "secret") right after its first word and a separator as a form or JSON may spell it, or an
# escape of an ASCII letter, "_", "-" or "." (also "%" in a form, and a blank in JSON): only an
# escaped name hides the words from that search, and no encoder escapes those characters, so
# real bodies seldom hold one. Each search starts at a literal word, which a regular expression
# finds fast (one pattern per word: an alternation of words at the start is many times slower),
# and looks behind it only there.
_BODY_FIELD_SEPARATORS = ("", "_", "-", ".", " ", "+", "%20")


def _body_field_marks() -> tuple[re.Pattern[bytes], ...]:
    """One pattern per last word: the word, then a look behind it for each first word it has."""
    heads: dict[str, list[str]] = {}
    for name in credentials.BODY_CREDENTIAL_FIELDS:
        head, _, tail = name.partition("_")
        heads.setdefault(tail, []).append(head)
    marks = []
    for tail, firsts in heads.items():
        behind = "|".join(f"(?<={re.escape(head + sep + tail)})" for head in firsts for sep in _BODY_FIELD_SEPARATORS)
        marks.append(re.compile(f"{tail}(?:{behind})".encode()))
    return tuple(marks)


_BODY_FIELD_MARKS = _body_field_marks()
_FORM_ESCAPE = re.compile(rb"%(?:4[1-9a-f]|5[0-9af]|6[1-9a-f]|7[0-9a]|2[de5])")
_JSON_ESCAPE = re.compile(rb"\\u00(?:4[1-9a-f]|5[0-9af]|6[1-9a-f]|7[0-9a]|2[de0])")
UNREADABLE_JSON = ""  # ``body_credential_field`` of a JSON body that may name one and cannot be read
_DISPOSITION_LINE = re.compile(rb"content-disposition:[^\r\n]*")
# A multipart ``name`` parameter: ``name="x"``, ``name=x``, RFC 2231 ``name*=utf-8''x`` or a
# continuation piece ``name*0="x"``, with the blanks Go's parser allows around "=".
_DISPOSITION_NAME = re.compile(rb'(?<![a-z0-9_-])name(\*[0-9]*)?[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[^; \t]*)')


def body_credential_problem(verdict: Verdict, content_type: str, body: bytes) -> str | None:
    """Why a body on a route that injects a credential carries a credential field of its own, or
    None. Rails, Grape and PHP read a form's fields (or a JSON body's top-level keys) with the
    query's parameters, and GitLab and Doorkeeper take a credential there before the injected
    header (``RULE_CREDENTIAL_QUERY``'s reason, for a body): the request would act as the account
    the agent names. A form is urlencoded (also a body without a type, as Rack reads it) or
    multipart; a JSON body's nested objects are not read, as no framework authenticates by them."""
    if verdict.route is None or verdict.route.auth is None or not body:
        return None
    field = body_credential_field(content_type, body)
    return None if field is None else body_credential_reason(verdict, field)


def body_credential_reason(verdict: Verdict, field: str) -> str:
    """The reason for refusing a body holding ``field`` (or a sentinel: ``UNREADABLE_JSON``,
    ``OVERLONG_PART_HEADER``) on the route ``verdict`` allowed."""
    route = verdict.route.host if verdict.route is not None else verdict.host
    where = f"routes[{verdict.route_index}] ({route}) injects a credential in a header, and the body"
    if field == UNREADABLE_JSON:
        return f"{where} may name a credential field the upstream takes instead, and cannot be read as JSON to tell"
    if field == OVERLONG_PART_HEADER:
        return f"{where} has a part header longer than {STREAM_LINE_CAP} bytes, which may name a credential field"
    return f"{where} carries a credential field ({field}) the upstream may take instead: remove it"


def body_credential_field(content_type: str, body: bytes) -> str | None:
    """The ``credentials.BODY_CREDENTIAL_FIELDS`` entry a form or JSON body holds, or None;
    ``UNREADABLE_JSON`` for a JSON body that may hold one but that Python's parser refuses (Ruby's
    takes comments, so its reading is not known)."""
    kind = form_kind(content_type)
    is_json = json_kind(content_type)
    if kind is None and not is_json:
        return None
    lowered = body.lower()
    if kind == FORM_MULTIPART:
        return _multipart_credential(lowered)
    if is_json:
        if any(mark.search(lowered) for mark in _BODY_FIELD_MARKS) or _JSON_ESCAPE.search(lowered):
            return _json_credential(body)
        return None
    for mark in (*_BODY_FIELD_MARKS, _FORM_ESCAPE):
        found = _form_credential(lowered, mark)
        if found is not None:
            return found
    return None


def _form_credential(lowered: bytes, mark: re.Pattern[bytes]) -> str | None:
    """The credential field named by a field of a urlencoded body in whose name ``mark`` is found.
    Fields end at "&" or ";" (``urlencoded_methods``: some parsers split on both); each field is
    read once, so the cost stays linear however many marks one long value holds."""
    done = 0
    while (hit := mark.search(lowered, done)) is not None:
        # The field starts past the last separator before the hit, or at ``done`` (where the
        # field after the last one read starts): the searches never go back past it.
        amp = lowered.rfind(b"&", done, hit.start())
        start = max(done, amp + 1, lowered.rfind(b";", max(amp, done), hit.start()) + 1)
        end = lowered.find(b"&", hit.start())
        end = len(lowered) if end < 0 else end
        semi = lowered.find(b";", hit.start(), end)
        end = end if semi < 0 else semi
        equals = lowered.find(b"=", start, end)
        name_end = end if equals < 0 else equals
        if hit.start() >= name_end:
            done = end + 1
            continue  # in the field's value
        name = unquote_plus(lowered[start:name_end].decode("latin-1"))
        found = _named_field(name)
        if found is not None:
            return found
        done = end + 1
    return None


def _named_field(name: str) -> str | None:
    """The credential field a decoded field name reads as, also once more percent-decoded (a
    framework that decodes names twice)."""
    return credentials.body_credential_field(name) or credentials.body_credential_field(unquote(name))


def _json_credential(body: bytes) -> str | None:
    try:
        data = json.loads(body.decode("utf-8", "surrogatepass"), parse_int=lambda _: 0, parse_constant=lambda _: 0)
    except (ValueError, RecursionError):
        return UNREADABLE_JSON
    if not isinstance(data, dict):
        return None
    return next((f for f in map(credentials.body_credential_field, data) if f is not None), None)


def _multipart_credential(lowered: bytes) -> str | None:
    """A part named a credential field: its name unquoted, unescaped and percent-decoded (RFC 2231
    charset'language' prefix skipped), continuation pieces joined."""
    for line in _DISPOSITION_LINE.finditer(lowered):
        pieces: list[str] = []
        for star, raw in _DISPOSITION_NAME.findall(line.group()):
            value = re.sub(rb"\\(.)", rb"\1", raw[1:-1] if raw.startswith(b'"') else raw).decode("latin-1")
            if star:
                value = value.split("'", 2)[-1] if value.count("'") >= 2 else value
            name = unquote(value)
            pieces.append(name)
            found = _named_field(name)
            if found is not None:
                return found
        joined = credentials.body_credential_field("".join(pieces)) if len(pieces) > 1 else None
        if joined is not None:
            return joined
    return None


# A streamed body (a large upload, forwarded while it arrives) is read for credential fields chunk
# by chunk, as the buffered check reads it whole: a form's fields, a multipart body's part
# headers. Carried between chunks: the unfinished field's name (its last ``STREAM_NAME_CAP``
# bytes: only PHP equates a longer name with a short one, by dropping its leading blanks), or the
# unfinished line of a multipart body (a ``Content-Disposition`` line longer than
# ``STREAM_LINE_CAP`` is refused, as no client writes one). In a JSON body, which level a key is
# at needs the document from its start: streamed, a key naming a credential field is refused at
# any level (a chunked or very large JSON body nesting one is rare), as ``json_override_scan``
# reads ``_method`` keys.
STREAM_NAME_CAP = 4096
STREAM_LINE_CAP = 16 * 1024
OVERLONG_PART_HEADER = "\0"  # ``credential_stream_feed`` of a part header past ``STREAM_LINE_CAP``
_DISPOSITION = b"content-disposition:"
JSON_BODY = "json"  # a ``CredentialStream``'s kind for a JSON body
# A JSON key: a string of at most ``_JSON_KEY_CAP`` characters or escapes, blanks, a colon.
_JSON_KEY_CAP = 128
_JSON_KEY = re.compile(rb'"((?:[^"\\\r\n]|\\.){1,%d})"[ \t\r\n]{0,%d}:' % (_JSON_KEY_CAP, _JSON_KEY_CAP))
_JSON_KEY_REACH = 6 * _JSON_KEY_CAP  # a mark lies this far at most after its key's quote (escapes are 6 bytes)


@dataclass
class CredentialStream:
    kind: str  # FORM_URLENCODED, FORM_MULTIPART or JSON_BODY
    carry: bytes = b""  # lower-cased: the unfinished field's name, or the unfinished line
    in_value: bool = False  # urlencoded: the unfinished field is past its "="


def credential_stream(verdict: Verdict, content_type: str) -> CredentialStream | None:
    """The reading state for a streamed body that needs ``credential_stream_feed``: a form or a
    JSON body on a route that injects a credential; else None."""
    if verdict.route is None or verdict.route.auth is None:
        return None
    kind = JSON_BODY if json_kind(content_type) else form_kind(content_type)
    return CredentialStream(kind) if kind is not None else None


def credential_stream_feed(stream: CredentialStream, data: bytes, *, final: bool) -> str | None:
    """The credential field (or ``OVERLONG_PART_HEADER``) found once ``data`` is read, or None.
    Call it with each chunk before it is forwarded, and with ``final`` at the body's end."""
    buf = stream.carry + data.lower()
    stream.carry = b""
    if stream.kind == FORM_MULTIPART:
        return _multipart_stream(stream, buf, final)
    if stream.kind == JSON_BODY:
        return _json_stream(stream, buf, final)
    return _form_stream(stream, buf, final)


def _json_stream(stream: CredentialStream, buf: bytes, final: bool) -> str | None:
    """A key naming a credential field, at any level: each mark's key is the string it lies in
    (its opening quote not escaped), followed by a colon. The last bytes are carried on, so a key
    cut by a chunk's end is read whole with the next one."""
    for mark in (*_BODY_FIELD_MARKS, _JSON_ESCAPE):
        for hit in mark.finditer(buf):
            quote = buf.rfind(b'"', max(0, hit.start() - _JSON_KEY_REACH), hit.start())
            while quote > 0 and buf[quote - 1:quote] == b"\\":
                quote = buf.rfind(b'"', max(0, hit.start() - _JSON_KEY_REACH), quote)
            key = _JSON_KEY.match(buf, quote) if quote >= 0 else None
            if key is None or key.end(1) < hit.end():
                continue
            found = credentials.body_credential_field(json_string(key.group(1)))
            if found is not None:
                return found
    if not final:
        stream.carry = buf[-2 * _JSON_KEY_REACH:]
    return None


def _form_stream(stream: CredentialStream, buf: bytes, final: bool) -> str | None:
    skip = 0
    if stream.in_value:
        first = min((i for i in (buf.find(b"&"), buf.find(b";")) if i >= 0), default=-1)
        if first < 0:
            return None  # still the value of the field that was unfinished
        skip = first + 1
    last = max(buf.rfind(b"&"), buf.rfind(b";"))
    complete = len(buf) if final else max(skip, last + 1)
    fields = buf[skip:complete]
    for mark in (*_BODY_FIELD_MARKS, _FORM_ESCAPE):
        found = _form_credential(fields, mark)
        if found is not None:
            return found
    if final:
        return None
    tail = buf[complete:]
    equals = tail.find(b"=")
    stream.in_value = equals >= 0
    if equals < 0:
        stream.carry = tail[-STREAM_NAME_CAP:]
        return None
    name = unquote_plus(tail[:equals][-STREAM_NAME_CAP:].decode("latin-1"))
    return _named_field(name)


def _multipart_stream(stream: CredentialStream, buf: bytes, final: bool) -> str | None:
    complete = len(buf) if final else buf.rfind(b"\n") + 1
    found = _multipart_credential(buf[:complete])
    if found is not None or final:
        return found
    tail = buf[complete:]
    if len(tail) > STREAM_LINE_CAP:
        # A line this long is file content, unless a part header starts in its last bytes.
        header = tail.rfind(_DISPOSITION)
        if header >= 0 and len(tail) - header > STREAM_LINE_CAP:
            return OVERLONG_PART_HEADER
        tail = tail[header:] if header >= 0 else tail[-len(_DISPOSITION):]
    stream.carry = tail
    return None
