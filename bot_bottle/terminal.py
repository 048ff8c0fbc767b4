"""Text from outside (manifests, agents, file names) made safe to put on the operator's terminal."""

from __future__ import annotations

import functools
import re
import unicodedata

# Control characters (ESC starts sequences that move the cursor, rewrite lines, hide text, set
# the clipboard), bidirectional overrides (which reorder what is shown) and characters that show
# nothing (zero-width ones, the soft hyphen, the BOM, Hangul fillers, line and paragraph
# separators, and Unicode tags and variation selectors, which can carry hidden data) are shown
# as escapes: what the operator reads is all there is.
#
# Decided by Unicode category rather than by a list of code points, so a format character a
# list forgot (U+206A-206F, the interlinear annotation marks U+FFF9-FFFB, the musical format
# characters U+1D173-1D17A, ...) is escaped too: every control (Cc), format (Cf) and surrogate
# (Cs, which a terminal cannot even encode) character, the line and paragraph separators (Zl,
# Zp), plus the invisible letters and marks below, which Unicode files as ordinary ones.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_HIDDEN_RANGES = (
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul choseong / jungseong fillers
    (0x180B, 0x180F),  # Mongolian free variation selectors
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xE0000, 0xE007F),  # tags (the unassigned ones too: a newer terminal may know them)
    (0xE0100, 0xE01EF),  # variation selectors supplement
)
# Only these can need an escape: printable ASCII, tab and newline never do, nor do the large
# blocks of ordinary letters left out here (Latin, Greek to Hebrew, kana, CJK, Hangul syllables,
# each without its combining marks; unit tests check none of them is hidden or a mark), so most
# text costs one regex scan. A run of them is looked at together (combining marks count).
_CANDIDATE = re.compile("[^\t\n\x20-\x7e\u00ae-\u02ff\u0370-\u0482\u048a-\u0590\u05d0-\u05ff"
                        "\u3040-\u3098\u309b-\u30ff\u4e00-\u9fff\uac00-\ud7a3]+")
# Combining marks (Unicode categories Mn, Me) are drawn over the character before them: a few make
# accents and vowel signs, dozens ("zalgo" text) stack up and down over the lines above and below
# in many terminals, over the tool's own lines. Beyond this many in a row, the rest are escapes.
MAX_MARKS = 4
_MARK_CATEGORIES = frozenset({"Mn", "Me"})


@functools.lru_cache(maxsize=4096)
def hidden(char: str) -> bool:
    """Whether ``char`` is always shown as an escape by ``printable`` (a combining mark is too,
    but only beyond ``MAX_MARKS`` in a row)."""
    if char in "\t\n":
        return False
    code = ord(char)
    return unicodedata.category(char) in _HIDDEN_CATEGORIES or any(lo <= code <= hi for lo, hi in _HIDDEN_RANGES)


@functools.lru_cache(maxsize=4096)
def mark(char: str) -> bool:
    """Whether ``char`` is a combining mark, drawn over the character before it."""
    return unicodedata.category(char) in _MARK_CATEGORIES


def printable(text: object) -> str:
    """``text`` safe to put on a terminal: control characters shown as ``\\xNN`` / ``\\uNNNN``,
    and combining marks beyond ``MAX_MARKS`` in a row; tabs and newlines kept."""
    return _CANDIDATE.sub(_escape_run, str(text))


def one_line(text: object) -> str:
    """``printable`` for one line of the tool's own: line breaks and tabs escaped too, so what it
    quotes can neither start a line that passes for another one nor line up as another column."""
    return printable(text).replace("\n", "\\n").replace("\t", "\\t")


def _escape_run(match: re.Match[str]) -> str:
    # A run holds every mark that follows its base character (marks are never skipped by the
    # fast path), so counting within the run counts them all.
    out, marks = [], 0
    for char in match.group():
        marks = marks + 1 if mark(char) else 0
        out.append(_escape(char) if hidden(char) or marks > MAX_MARKS else char)
    return "".join(out)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
