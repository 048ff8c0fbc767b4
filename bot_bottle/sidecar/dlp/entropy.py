"""Optional entropy detection: long, random-looking tokens that match no known format.

Off by default: it catches credentials nobody wrote a detector for, at the price of flagging
some random identifiers. Shapes that are random by design but not secret are skipped: hex runs
(hashes, git SHAs), UUIDs, integrity strings (``sha512-...``), base64 of images (``data:`` URLs,
PNG/JPEG/GIF/WebP magic), and runs long enough to be a blob rather than a credential.
"""

from __future__ import annotations

import math
import re

from bot_bottle.sidecar.dlp.findings import LOW, MEDIUM
from bot_bottle.sidecar.dlp.tokens import shannon

_CANDIDATE = re.compile(r"[A-Za-z0-9+/_\-]{20,}={0,2}")
_HEX = re.compile(r"(?:0x)?[0-9a-fA-F]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HAS = [re.compile(p) for p in (r"[a-z]", r"[A-Z]", r"[0-9]")]
# Base64 of common image formats starts with the encoded magic number.
_IMAGE_MAGIC = ("iVBORw0KGgo", "/9j/", "R0lGOD", "UklGR", "PHN2Zy", "Qk0")
_INTEGRITY_PREFIXES = ("sha1-", "sha256-", "sha384-", "sha512-")
MAX_TOKEN = 200  # longer runs are blobs (images, archives, key material caught elsewhere)


def entropy_spans(
    text: str, *, min_length: int = 24, threshold: float = 4.0
) -> list[tuple[int, int, str]]:
    """``(start, end, confidence)`` of high-entropy tokens in ``text``."""
    out: list[tuple[int, int, str]] = []
    for m in _CANDIDATE.finditer(text):
        token = m.group()
        if not min_length <= len(token) <= MAX_TOKEN:
            continue
        start, end = m.span()
        if _benign(text, token, start):
            continue
        bare = token.rstrip("=")
        if sum(1 for rx in _HAS if rx.search(bare)) < 3:
            continue  # random credentials mix upper, lower and digits; identifiers rarely do
        score = shannon(bare)
        # A short string cannot reach high entropy (24 characters: at most 4.58 bits each):
        # the bar is capped at a fraction of what its length allows.
        bar = min(threshold, 0.8 * _max_entropy(len(bare)))
        if score >= bar:
            out.append((start, end, MEDIUM if score >= bar + 0.5 else LOW))
    return out


def _max_entropy(n: int) -> float:
    return math.log2(min(n, 64))


_WORDY = re.compile(r"[_\-]")


def _benign(text: str, token: str, start: int) -> bool:
    if _HEX.fullmatch(token) or _UUID.search(token):
        return True
    # "-" is a token character, so an integrity string arrives whole: "sha512-<base64>".
    if token.lower().startswith(_INTEGRITY_PREFIXES):
        return True
    if token.startswith(_IMAGE_MAGIC) or "base64," in text[max(0, start - 40) : start]:
        return True
    if text[max(0, start - 10) : start].lower().endswith(("boundary=", 'boundary="')):
        return True  # multipart boundaries are random by design
    # snake_case / kebab-case identifiers made of words and numbers
    parts = [p for p in _WORDY.split(token) if p]
    return len(parts) >= 3 and all(p.isalpha() or p.isdigit() for p in parts)
