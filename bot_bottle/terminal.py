"""Text from outside (manifests, agents, file names) made safe to put on the operator's terminal."""

from __future__ import annotations

import re

# Control characters (ESC starts sequences that move the cursor, rewrite lines, hide text, set
# the clipboard), bidirectional overrides (which reorder what is shown) and characters that show
# nothing (zero-width ones, the soft hyphen, the BOM, Hangul fillers, line and paragraph
# separators, and Unicode tags and variation selectors, which can carry hidden data) are shown
# as escapes: what the operator reads is all there is.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u061c\u115f\u1160\u180e\u200b-\u200f"
                          "\u2028-\u202e\u2060-\u2064\u2066-\u2069\u3164\ufe00-\ufe0f\ufeff\uffa0"
                          "\U000e0000-\U000e007f\U000e0100-\U000e01ef]")


def printable(text: object) -> str:
    """``text`` safe to put on a terminal: control characters shown as ``\\xNN`` / ``\\uNNNN``;
    tabs and newlines kept."""
    return _UNPRINTABLE.sub(_escape, str(text))


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
