"""The bottle's secrets as text escapers write them: JSON strings, HTML and XML, source literals.

A value with punctuation or letters outside ASCII does not reach a reader as it is once it sits
in a JSON string (``"`` as ``\\"``, ``/`` as ``\\/`` from PHP, ``<``, ``>`` and ``&`` as
``\\u003c`` from Go, anything outside ASCII as ``\\u`` and four hex digits), an HTML page
(``&quot;``, ``&amp;``, ``&#47;``, ``&#x2F;``) or a string literal (``\\x2f``). An upstream that echoes an injected
credential in its JSON answer is the common case, and every such answer escapes some of these;
a JSON string inside a JSON string doubles the backslashes.

Each escaper keeps letters, digits, ``-``, ``_`` and ``.`` as they are, so a value is found by
its longest run of them (the *anchor*: one substring search, as for the other forms in ``known``) and confirmed
with one regular expression around each place it occurs, in which every other character may be
written as itself or as any of those escapes, each character its own way. Values without such a
character have no escaped form; values whose longest run of those is shorter than ``MIN_ANCHOR``
are not searched this way (an anchor that short occurs everywhere). Not found:
letters or digits written as escapes themselves, and escapes of other schemes (see ``known`` for
percent-encoding, base64 and the rest).
"""

from __future__ import annotations

import html.entities
import re
from collections.abc import Sequence
from dataclasses import dataclass

# Characters no escaper above changes (OWASP's HTML encoder keeps ``,.-_`` too): a value made
# only of these has no escaped form, and the anchor is the longest run of them.
_KEPT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
_ANCHOR_RUN = re.compile(r"[A-Za-z0-9_.\-]+")
MIN_ANCHOR = 4
# Backslashes before an escape: one, or more when a JSON string is itself inside one (each level
# doubles them and adds one), up to three levels.
_SLASHES = r"\\{1,7}"
_ZEROS = 6  # leading zeros a character reference may have
_SHORT = {'"': '"', "\\": "\\\\", "/": "/", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t", "'": "'"}


def _named_references() -> dict[str, list[str]]:
    """HTML's named character references per character, each written with its semicolon."""
    named: dict[str, list[str]] = {}
    for name, text in html.entities.html5.items():
        if name.endswith(";") and len(text) == 1:
            named.setdefault(text, []).append(name)
    return named


_NAMED = _named_references()


def _hex(digits: str) -> str:
    """Hex digits in either case."""
    return "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d for d in digits)


def _u_escape(code: int) -> str:
    """``\\u`` and four hex digits, or the surrogate pair of a character beyond the BMP."""
    if code < 0x10000:
        return rf"{_SLASHES}u{_hex(f'{code:04x}')}"
    code -= 0x10000
    high, low = 0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)
    return rf"{_SLASHES}u{_hex(f'{high:04x}')}{_SLASHES}u{_hex(f'{low:04x}')}"


def _char_pattern(ch: str) -> tuple[str, int]:
    """A pattern for ``ch`` written as itself or escaped, and the longest text it matches."""
    code = ord(ch)
    raw = ch.encode("utf-8").decode("latin-1")  # a body's latin-1 view shows a character as its UTF-8 bytes
    options = [re.escape(ch), rf"\\{{0,7}}{re.escape(ch)}"]
    if raw != ch:
        options.append(re.escape(raw))
    options.append(_u_escape(code))
    if ch in _SHORT:
        options.append(_SLASHES + re.escape(_SHORT[ch]))
    if code < 0x100:
        options.append(rf"{_SLASHES}x{_hex(f'{code:02x}')}")
    if raw != ch:  # its UTF-8 bytes, each as ``\xHH`` (a bytes literal)
        options.append("".join(rf"{_SLASHES}x{_hex(f'{b:02x}')}" for b in ch.encode("utf-8")))
    options.append(rf"&#0{{0,{_ZEROS}}}{code};")
    options.append(rf"&#[xX]0{{0,{_ZEROS}}}{_hex(f'{code:x}')};")
    names = _NAMED.get(ch, [])
    options.extend(re.escape("&" + name) for name in names)
    longest = max([7 + len(raw), 2 * (7 + 5), 2 + _ZEROS + 7 + 1, 4 * (7 + 3), *(1 + len(n) for n in names)])
    return "(?:" + "|".join(options) + ")", longest


@dataclass(frozen=True)
class EscapedForm:
    """One secret's escaped forms: found by ``anchor``, confirmed by ``pattern``. Holds the
    value's pieces; never printed."""

    name: str
    anchor: str
    pattern: re.Pattern[str]  # the whole value, with the anchor as group "a"
    raw: frozenset[str]  # the value as it is (found by ``known``'s own needles, not here)
    before: int  # the most text the escaped form can have before the anchor
    after: int  # ... and after it
    widest: str  # the anchor padded to the longest match on both sides (the prefilter's reach)

    def __repr__(self) -> str:
        return f"<escaped form of {self.name}>"


def escaped_forms(values: Sequence[tuple[str, str]]) -> tuple[EscapedForm, ...]:
    """The escaped forms of ``(name, value)`` pairs that have any."""
    forms: list[EscapedForm] = []
    for name, value in values:
        if all(ch in _KEPT for ch in value):
            continue
        runs = _ANCHOR_RUN.findall(value)
        anchor = max(runs, key=len, default="")
        if len(anchor) < MIN_ANCHOR:
            continue
        at = value.index(anchor)
        head, tail = _pieces(value[:at]), _pieces(value[at + len(anchor):])
        pattern = re.compile("".join(p for p, _, _ in head) + f"(?P<a>{re.escape(anchor)})"
                             + "".join(p for p, _, _ in tail))
        raw = frozenset({value, value.encode("utf-8").decode("latin-1")})
        forms.append(EscapedForm(
            name, anchor, pattern, raw,
            before=sum(n for _, n, _ in head), after=sum(n for _, n, _ in tail),
            widest="".join(w for _, _, w in head) + anchor + "".join(w for _, _, w in tail)))
    return tuple(forms)


def _pieces(text: str) -> list[tuple[str, int, str]]:
    """``(pattern, longest match, a widest example)`` per character of ``text``."""
    out = []
    for ch in text:
        if ch in _KEPT:
            out.append((re.escape(ch), 1, ch))
        else:
            pattern, longest = _char_pattern(ch)
            out.append((pattern, longest, "&" * longest))
    return out


def find_escaped(forms: Sequence[EscapedForm], text: str) -> list[tuple[int, int, str]]:
    """``(start, end, secret name)`` of every escaped form in ``text`` (not the value as it is)."""
    hits: list[tuple[int, int, str]] = []
    for form in forms:
        at = text.find(form.anchor)
        while at >= 0:
            start = max(0, at - form.before)
            stop = min(len(text), at + len(form.anchor) + form.after)
            for m in form.pattern.finditer(text, start, stop):
                if m.start("a") == at and m.group() not in form.raw:
                    hits.append((m.start(), m.end(), form.name))
            at = text.find(form.anchor, at + 1)
    return hits
