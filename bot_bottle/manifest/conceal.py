"""What a manifest error may quote: never text that may be a credential.

Errors are printed, logged and pasted into bug reports, so a token written where a name belongs
(a key, an alias, a tag) must not come back in one.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot_bottle.sidecar.dlp.tokens import TokenScanner

# What an error says in place of a value that may carry a credential.
NOT_SHOWN = "(the value is not shown, in case it holds a credential)"
# In place of a key or a quoted piece of a message: short, as it sits inside a longer line.
HIDDEN = "(not shown)"

_QUOTED = re.compile(r"'([^'\n]*)'|\"([^\"\n]*)\"")
# ``user:password@`` inside a word: a URL's credentials.
_USERINFO = re.compile(r"[^\s@/:]*:[^\s@/]+@")


def may_hold_credential(text: str) -> bool:
    """Whether ``text``, written where a name or a word belongs, may carry a credential: user
    information before an '@' (``user:token@host``) or a token of a known format."""
    return "@" in text or _is_token(text)


def _is_token(text: str) -> bool:
    from bot_bottle.sidecar.dlp.tokens import token_format  # its regexes only when an error is shown

    return token_format(text) is not None


def shown_key(part: str) -> str:
    """A key as an error names it: itself, or ``HIDDEN`` when it may be a credential."""
    return HIDDEN if may_hold_credential(part) else part


@functools.lru_cache(maxsize=1)
def _scanner() -> TokenScanner:
    from bot_bottle.sidecar.dlp.tokens import TokenScanner  # its regexes only when an error is shown

    return TokenScanner()


# The assignment detector ("password = ...") is left out of prose: a prompt or a description that
# explains where a credential goes reads like one. The well-known formats have shape checks of
# their own that pass over placeholders and documentation keys (``ghp_****``, ``AKIA...EXAMPLE``).
_PROSE_DISABLED = frozenset({"generic-secret-assignment"})


@functools.lru_cache(maxsize=1)
def _prose_scanner() -> TokenScanner:
    from bot_bottle.sidecar.dlp.tokens import TokenScanner  # its regexes only when prose is read

    return TokenScanner(disabled=_PROSE_DISABLED)


def token_in_prose(text: str) -> tuple[int, int, str] | None:
    """The span and the format's name of the first live-looking token of a well-known format
    anywhere in ``text`` (a description, a system prompt: shown on screen and in plans), or None.
    The proxy's own detectors decide: a text that passes here is one its DLP lets out too."""
    if len(text) < 16:  # shorter than any format in the catalogue: no need to build the scanner
        return None
    hits = _prose_scanner().scan(text)
    return min((start, end, name) for start, end, _detector, _id, name in hits) if hits else None


def token_itself(text: str) -> tuple[int, int, str] | None:
    """``dlp.tokens.token_format`` with where that token is: the span and the format's name of
    a token that is most of ``text`` (written where a name or a description belongs), or None."""
    from bot_bottle.sidecar.dlp.tokens import token_format  # its regexes only when a value is read

    name = token_format(text)
    if name is None:
        return None
    # Scanned again only to say where: the text is refused, and ``token_format`` alone judges.
    spans = [(start, end) for start, end, _detector, _id, found in _scanner().scan(text) if found == name]
    start, end = max(spans, key=lambda span: span[1] - span[0], default=(0, len(text)))
    return start, end, name


def conceal_tokens(text: str) -> str:
    """``text`` (a key path such as ``env.NAME``) with every well-known token in it replaced by
    ``HIDDEN``: a token pasted where a key belongs is named by the error, but never shown."""
    spans = sorted((start, end) for start, end, *_ in _scanner().scan(text))
    out, at = [], 0
    for start, end in spans:
        if start < at:  # overlapping finds: the first already hid this part
            start = at
        if start < end:
            out.append(text[at:start] + HIDDEN)
            at = end
    return "".join(out) + text[at:]


def conceal_quoted(message: str) -> str:
    """``message`` (a YAML parser's words, which quote what they stumbled on) with every quoted
    piece that may be a credential replaced by ``HIDDEN``. A lone '@' the parser names stays."""

    def replace(match: re.Match[str]) -> str:
        inner = match.group(1) if match.group(1) is not None else match.group(2)
        secret = _USERINFO.search(inner) is not None or _is_token(inner)
        return f"'{HIDDEN}'" if secret else match.group(0)

    return _QUOTED.sub(replace, message)
