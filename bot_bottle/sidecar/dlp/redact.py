"""Replacing found values with markers: ``[REDACTED:<secret name or detector id>]``.

The marker names what was removed so the agent (and the upstream) can see why a value is gone,
without the value. Overlapping spans are merged into one marker named after the first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
# What ``marker`` writes, to find the markers in a redacted text again (``bodies.encode_like``).
MARKER_PATTERN = r"\[REDACTED:[A-Za-z0-9_.\-]{1,64}\]"


def marker(label: str) -> str:
    return f"[REDACTED:{_UNSAFE.sub('_', label)[:64] or 'secret'}]"


def apply_spans(text: str, spans: Iterable[tuple[int, int, str]],
                render: Callable[[str], str] | None = None) -> str:
    """``text`` with each ``(start, end, label)`` span replaced by its marker (``render`` turns a
    label into the replacement, e.g. a percent-encoded marker inside a URL path)."""
    ordered = sorted((s, e, label) for s, e, label in spans if 0 <= s < e <= len(text))
    if not ordered:
        return text
    merged: list[tuple[int, int, str]] = []
    for start, end, label in ordered:
        if merged and start < merged[-1][1]:
            first_start, first_end, first_label = merged[-1]
            merged[-1] = (first_start, max(first_end, end), first_label)
        else:
            merged.append((start, end, label))
    out: list[str] = []
    position = 0
    for start, end, label in merged:
        out.append(text[position:start])
        out.append(render(label) if render is not None else marker(label))
        position = end
    out.append(text[position:])
    return "".join(out)
