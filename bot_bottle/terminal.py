"""Text from outside (manifests, agents, file names) made safe to put on the operator's terminal."""

from __future__ import annotations

import re

# Control characters (ESC starts sequences that move the cursor, rewrite lines, hide text, set
# the clipboard) and bidirectional overrides (which reorder what is shown) are shown as escapes.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """``text`` safe to put on a terminal: control characters shown as ``\\xNN`` / ``\\uNNNN``;
    tabs and newlines kept."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                            else f"\\u{ord(m.group()):04x}", str(text))
