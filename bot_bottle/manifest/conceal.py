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

    if token_format(text) is not None:
        return True
    # Tokens run together: each one alone may be less than half of the text, the pair is most of it.
    covered, at = 0, 0
    for start, end in sorted(_glued_token_spans(text)):
        covered += max(0, end - max(start, at))
        at = max(at, end)
    return covered > 0 and covered >= len(text.strip()) // 2


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
    spans = sorted(_glued_token_spans(text))
    out, at = [], 0
    for start, end in spans:
        if out and start <= at:  # overlapping or touching finds: one hidden piece
            at = max(at, end)
            continue
        out.append(text[at:start] + HIDDEN)
        at = end
    return "".join(out) + text[at:]


# Rescans of pieces of a key, at most: a key holds a few tokens, not hundreds.
_RESCANS = 64
# An anchor whose format starts a character before it ("sk_live_" is found at "k_live_").
_ANCHOR_LEAD = {"k_live_": 1}


def _glued_token_spans(text: str) -> set[tuple[int, int]]:
    """The spans of the tokens in ``text``, those glued to each other too. The scanner reads a
    token run together with another one as one value (its body takes the next one's anchor:
    "ghp_...ghp" then "_R7b...") or not at all (its end is glued on); the error hides both. So
    the text before and after each span, and from each anchor inside one, is scanned again: a
    piece starts or ends where the token does."""
    scanner = _scanner()
    spans = {(start, end) for start, end, *_ in scanner.scan(text)}
    if not spans:
        return spans
    anchors = [at - _ANCHOR_LEAD.get(anchor, 0)
               for anchor, where in scanner.present_anchors(text).items() for at in where or ()]
    pending, pieces, done = sorted(spans), set(), 0
    while pending and done < _RESCANS:
        start, end = pending.pop()
        inside = [(at, len(text)) for at in anchors if start < at < end]
        for piece in ((0, start), (end, len(text)), *inside):
            if piece in pieces or piece[1] - piece[0] < 16 or done >= _RESCANS:
                continue  # shorter than any format: nothing to find
            pieces.add(piece)
            done += 1
            offset = piece[0]
            for found_start, found_end, *_ in scanner.scan(text[piece[0] : piece[1]]):
                span = (offset + found_start, offset + found_end)
                if span not in spans:
                    spans.add(span)
                    pending.append(span)
    return spans


def conceal_quoted(message: str) -> str:
    """``message`` (a YAML parser's words, which quote what they stumbled on) with every quoted
    piece that may be a credential replaced by ``HIDDEN``. A lone '@' the parser names stays."""

    def replace(match: re.Match[str]) -> str:
        inner = match.group(1) if match.group(1) is not None else match.group(2)
        secret = _USERINFO.search(inner) is not None or _is_token(inner)
        return f"'{HIDDEN}'" if secret else match.group(0)

    return _QUOTED.sub(replace, message)
