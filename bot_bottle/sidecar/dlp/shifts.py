"""The bottle's secrets with their letters substituted: a Caesar shift by any amount (ROT1 to
ROT25, with or without the digits shifted too), or atbash (the alphabet reversed).

"Encode the key with a Caesar cipher before you send it" is a one-line script and undone as
easily. The search runs in ``dlp.spread``'s skeleton of the text (its letters and digits,
lower-cased), so a shifted value spelled out with separators is found as well.

A substitution keeps a value's *layout*: which of its characters are letters and which digits.
For a value with ``MIN_LAYOUT_DIGITS`` digits or more, the skeleton is mapped to that layout
(letters ``a``, digits ``0``: one ``bytes.translate``) and the value's layout searched once;
each place found is looked up in the set of the value's substituted forms. A layout of mostly
letters is everywhere in prose: such a value's forms are searched one by one instead (26, or
51 with its digits shifted).

Not found: byte shifts that carry a letter past ``z`` or a digit past ``9`` (``chr(ord(c) + 1)``
turns ``z`` into ``{``), keyed substitutions (Vigenère, a shuffled alphabet), values with fewer
than ``MIN_SHIFTED`` letters and digits.
"""

from __future__ import annotations

import codecs
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# As ``spread.MIN_SPREAD``: sixteen letters and digits in a row do not occur by chance.
MIN_SHIFTED = 16
# Below this many digits, a value's layout matches too much ordinary text to search by it.
MIN_LAYOUT_DIGITS = 3
_EDGES = re.compile(r"^[^0-9A-Za-z]+|[^0-9A-Za-z]+$")
_LAYOUT = bytes.maketrans(string.ascii_lowercase.encode() + string.digits.encode(), b"a" * 26 + b"0" * 10)


@dataclass(frozen=True)
class Shifted:
    """One value's substituted forms, in the skeleton's terms (lower-case letters and digits)."""

    name: str
    forms: dict[bytes, str]  # form -> encoding ("caesar", "rot13", "atbash")
    layout: bytes  # empty: the forms are searched one by one
    length: int
    direct: str  # the ROT13 form as ``dlp.known`` searches it (lower-cased): found there already


def shifted_forms(values: Sequence[tuple[str, str]]) -> tuple[Shifted, ...]:
    """The substituted forms of ``(name, value)`` pairs whose letters and digits are enough."""
    out: list[Shifted] = []
    for name, value in values:
        skeleton = "".join(c for c in value.lower() if c.isascii() and c.isalnum())
        letters = sum(c.isalpha() for c in skeleton)
        if len(skeleton) < MIN_SHIFTED or letters < MIN_SHIFTED // 2:
            continue
        digits = len(skeleton) - letters
        forms: dict[bytes, str] = {}
        for k in range(1, 26):
            encoding = "rot13" if k == 13 else "caesar"
            forms.setdefault(_substitute(skeleton, lambda x, k=k: (x + k) % 26, 0).encode(), encoding)
            if digits:
                forms.setdefault(_substitute(skeleton, lambda x, k=k: (x + k) % 26, k % 10).encode(), encoding)
        forms.setdefault(_substitute(skeleton, lambda x: 25 - x, 0).encode(), "atbash")
        forms.pop(skeleton.encode(), None)  # a value its own substitute: the direct search has it
        if not forms:
            continue
        layout = skeleton.encode().translate(_LAYOUT) if digits >= MIN_LAYOUT_DIGITS else b""
        whole = _EDGES.sub("", codecs.encode(value, "rot13")).lower()
        out.append(Shifted(name, forms, layout, len(skeleton), whole))
    return tuple(out)


def _substitute(skeleton: str, letter: Callable[[int], int], digit_shift: int) -> str:
    out = []
    for c in skeleton:
        if c.isalpha():
            out.append(chr(letter(ord(c) - 97) + 97))
        else:
            out.append(chr((ord(c) - 48 + digit_shift) % 10 + 48))
    return "".join(out)


def find_shifted(shifted: Sequence[Shifted], skeleton: bytes | bytearray) -> list[tuple[int, int, str, str]]:
    """``(start, end, name, encoding)`` per substituted form in ``skeleton`` (its offsets)."""
    out: list[tuple[int, int, str, str]] = []
    layout = b""
    for value in shifted:
        if value.layout:
            layout = layout or skeleton.translate(_LAYOUT)
            at = layout.find(value.layout)
            while at >= 0:
                encoding = value.forms.get(bytes(skeleton[at : at + value.length]))
                if encoding is not None:
                    out.append((at, at + value.length, value.name, encoding))
                at = layout.find(value.layout, at + 1)
        else:
            for form, encoding in value.forms.items():
                at = skeleton.find(form)
                while at >= 0:
                    out.append((at, at + value.length, value.name, encoding))
                    at = skeleton.find(form, at + 1)
    return out
