"""Detectors for well-known credential formats.

Each detector has a stable id (logs, 403 bodies and per-route switches name it), a short human
name, the literal *anchors* its format starts with, and a regular expression.

Speed comes from not running most expressions at all. A few *probes* find out which anchors
occur in a text: one regex per group of anchors that end in the same uncommon character
(``_``, ``-``, ``.``, ``J``) with a look-behind per anchor, a literal-first alternation for the
``A...`` family, and plain substring tests for long anchors. CPython's regex engine only skips ahead
quickly when a pattern starts with a literal, and every probe does; a pattern starting with a
character class or a look-behind would be tried at every position. So on ordinary text a scan
costs about ten fast passes, and a detector's own expression runs only where its anchor is.

Boundaries (a token must not be glued to more token characters) and shape checks are Python
per match for the same reason. A token glued to what is around it (``xghp_...``, ``rel-sk-ant-...``,
``ghp_..._``: one character the receiver strips) is still one where the format is marked well
enough (``Glue``): not inside a long encoded blob, which spells an anchor by chance now and then,
and not a kebab-case or snake-case name. Appended to a blob, a token is one where it ends the run
with its format's exact length or, for a format of no fixed length, with more of its format than a
blob spells by chance (Google's "ya29.a0A" and older "ya29.Gl..." shapes, PyPI's index name,
OpenAI's kind and "T3BlbkFJ", Slack's digit groups); a JWT is one wherever its header decodes to
one; a GitHub, npm or routable GitLab token whose checksum holds is one anywhere. An AWS key id is
read with one or two lower-case letters glued on or run together with other key ids (its body
random base32: letters and digits, or letters with few vowels), an AWS secret key with characters
glued to it or run together with its key id (any glue around the pair, lines of base64 around
it, where the id's body is random base32), an unmarked legacy OpenAI key glued to one character
or after a short name. A GitHub token is read lower- or
upper-cased too (the prefix kept as a marker, a one-case body that is no hex hash; upper-case
base32 glued after a word ending in "GHS" is a hash), an OpenAI key where its "T3BlbkFJ" is kept.
Known-benign shapes never fire: there is no detector for bare hex (hashes, git SHAs, "ghs_" and a
SHA-1), UUIDs, base64 blobs or ``sha512-`` integrity strings, and the generic assignment detector
requires a secret-sounding key *and* a strong literal value.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from bot_bottle.sidecar.dlp.encodings import ascii_lower
from bot_bottle.sidecar.dlp.findings import HIGH
from bot_bottle.sidecar.dlp.fragments import merge

# An extractor returns the value's span, optionally with another (id, name) to report it under.
Span = tuple[int, int] | tuple[int, int, str, str]
Extractor = Callable[[str, "re.Match[str]"], "Span | None"]

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_WORD = _ALNUM | {"_"}
_TOKEN = _WORD | {"-"}
_B64 = _ALNUM | {"+", "/"}
_ALWAYS = "*"  # anchor of detectors that run on every text (the generic keywords)
# For the prefilter of streamed bodies (``dlp.prefilter``): the characters of encoded values, and
# how long a run of them every token format's value contains (see ``Detector.run_min``).
RUN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+/=.%")
RUN = 12
# What follows an assignment detector's keyword (the start of ``_GENERIC_TAIL``).
PROBE_FOLLOWERS = "\"'` \t=:"


# A run of encoded-looking characters longer than this, mixing letter cases and digits, before a
# token's anchor is a blob that spells the anchor by chance: a glued token needs no such run.
BLOB_RUN = 64
_BLOB = re.compile(r"[A-Za-z0-9_\-+/]{%d}" % (BLOB_RUN + 1))


# A token glued after such a run still counts where it ends the run with its format's exact
# length (``Glue.tail``): appended to a blob, not inside one. What ends a run: the end of the
# text or a character no encoding uses.
_RUN_GOES_ON = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+/=")


def _ends_run(text: str, end: int) -> bool:
    return end == len(text) or text[end] not in _RUN_GOES_ON


def _blob_run(text: str, at: int, step: int) -> bool:
    """Whether the characters from ``at`` on (``step`` 1) or before it (``step`` -1) are a run of
    more than ``BLOB_RUN`` encoded-looking characters mixing lower, upper and digits."""
    if step < 0:
        run = _BLOB.fullmatch(text, at - BLOB_RUN - 1, at) if at > BLOB_RUN else None
    else:
        run = _BLOB.match(text, at)
    return run is not None and _random_alnum(run.group())


_KIND_CLASSES = {"l": "a-z", "u": "A-Z", "d": "0-9"}


@functools.lru_cache(maxsize=None)
def _mix_pattern(mix: str) -> re.Pattern[str]:
    """Matches where each kind of character in ``mix`` occurs (one pass per kind, in C)."""
    return re.compile("".join(f"(?=[^{_KIND_CLASSES[kind]}]*+[{_KIND_CLASSES[kind]}])" for kind in mix))


@dataclass(frozen=True)
class Glue:
    """When a value the boundaries reject is a token glued to its neighbours, not part of a name
    or a blob: the receiver strips a glued character as easily as the sender adds it."""

    prefix: int  # length of the format's fixed prefix: ``mix`` is about the rest
    # Kinds of character ("l"ower, "u"pper, "d"igit) a body glued at its start must all hold: a
    # kebab-case name spells "task-ant-colony-..." with a body the detector would take.
    mix: str = ""
    fixed: bool = False  # a fixed-length body: whatever follows it is not part of it
    after: frozenset[str] = frozenset("_")  # what may follow a body of any length glued
    # More of a value glued at its start: ``(text, start, end)`` of the value.
    need: Callable[[str, int, int], bool] | None = None
    # A value that is a token wherever it is glued: its checksum holds (a chance of 2**-32).
    proof: Callable[[str], bool] | None = None
    # Appended to a blob: the value counts where it ends the run and is as long as the format's
    # tokens are (a random blob ends in that shape about once in 64**4 blobs for a
    # four-character anchor). Empty for formats of no fixed length: a body that takes any run
    # would read the end of every blob that spells the anchor near its end.
    tail: tuple[int, ...] = ()
    # More of a value glued at its end (``need`` for the other side), checked before ``fixed``.
    need_end: Callable[[str, int, int], bool] | None = None
    # Appended to a blob, a value of no fixed length counts where it ends the run and this holds:
    # its start is marked beyond what a blob spells by chance (a long fixed prefix, a structure of
    # digit groups). Such a value needs no ``mix`` either.
    marked: Callable[[str], bool] | None = None

    def starts(self, text: str, start: int, end: int) -> bool:
        if self.proof is not None and self.proof(text[start:end]):
            return True
        if self.need is not None and not self.need(text, start, end):
            return False
        marked = self.marked is not None and self.marked(text[start:end])
        if self.mix and not marked and not _mix_pattern(self.mix).match(text, start + self.prefix, end):
            return False  # the format's own marks make it no name, whatever characters it mixes
        if not _blob_run(text, start, -1):
            return True
        return _ends_run(text, end) and (marked or end - start in self.tail)

    def ends(self, text: str, start: int, end: int) -> bool:
        if self.proof is not None and self.proof(text[start:end]):
            return True
        if self.need_end is not None and not self.need_end(text, start, end):
            return False
        return (self.fixed or text[end] in self.after) and not _blob_run(text, end, 1)


@dataclass(frozen=True)
class Detector:
    id: str
    name: str
    pattern: re.Pattern[str] = field(repr=False)
    anchors: tuple[str, ...]
    lowered: bool = False  # the pattern runs on the ASCII-lower-cased text (same offsets)
    group: int = 0
    confidence: str = HIGH
    before: frozenset[str] = field(default=frozenset(), repr=False)  # may not precede the value
    after: frozenset[str] = field(default=frozenset(), repr=False)  # may not follow it
    check: Callable[[str], bool] | None = field(default=None, repr=False)  # on the value
    glue: Glue | None = field(default=None, repr=False)  # a value glued past ``before``/``after``
    extract: Extractor | None = field(default=None, repr=False)  # replaces group/boundaries/check
    # Where a match can lie around an anchor occurrence: (characters before, characters after).
    window: tuple[int, int] = (8, 1024)
    # Every value this detector reports contains a run of at least this many ``RUN_CHARS``
    # (a private key block: its material, within 400 characters after the header); 0: unknown.
    run_min: int = 0
    # For detectors without such a run (the assignments): lower-case keywords, one of which every
    # match contains, followed by a quote, a blank, "=" or ":" (``PROBE_FOLLOWERS``). The
    # prefilter needs ``run_min`` or ``probes`` for each detector, else it scans everything.
    probes: tuple[str, ...] = ()

    def spans(self, text: str, hay: str, start: int = 0, end: int | None = None,
              fences: frozenset[int] = frozenset()) -> list[tuple[int, int, str, str]]:
        """``(start, end, id, name)`` of this detector's values in ``text``; ``hay`` is what the
        pattern runs on (``text`` or its lower-cased copy: same offsets), between ``start`` and
        ``end``. At a position in ``fences`` (where one field of a request ends and the next one
        begins, in fields joined to find a split value) the characters on the other side are
        another field's, so ``before``/``after`` do not apply there."""
        out: list[tuple[int, int, str, str]] = []
        for m in self.pattern.finditer(hay, start, len(hay) if end is None else end):
            if self.extract is not None:
                span = self.extract(text, m)
                if span is not None and not (out and out[-1][:2] == span[:2]):  # two key ids, one secret
                    out.append(span if len(span) == 4 else (span[0], span[1], self.id, self.name))
                continue
            s, e = m.span(self.group)
            if s < 0:
                continue
            if self.before and s > 0 and text[s - 1] in self.before and s not in fences and (
                    self.glue is None or not self.glue.starts(text, s, e)):
                continue
            if self.after and e < len(text) and text[e] in self.after and e not in fences and (
                    self.glue is None or not self.glue.ends(text, s, e)):
                continue
            if self.check is not None and not self.check(text[s:e]):
                continue
            out.append((s, e, self.id, self.name))
        return out


# -- shape helpers -----------------------------------------------------------------------------

_HAS_LOWER = re.compile(r"[a-z]")
_HAS_UPPER = re.compile(r"[A-Z]")
_HAS_DIGIT = re.compile(r"[0-9]")
_HAS_OTHER = re.compile(r"[^A-Za-z0-9]")


def char_classes(value: str) -> int:
    """How many of lower-case, upper-case, digits and other characters ``value`` mixes."""
    return sum(1 for rx in (_HAS_LOWER, _HAS_UPPER, _HAS_DIGIT, _HAS_OTHER) if rx.search(value))


def shannon(value: str) -> float:
    """Shannon entropy in bits per character."""
    if not value:
        return 0.0
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in Counter(value).values())


def _random_alnum(value: str) -> bool:
    """Random base62 has upper, lower and digits; words and identifiers rarely have all three."""
    return bool(_HAS_LOWER.search(value) and _HAS_UPPER.search(value) and _HAS_DIGIT.search(value))


def _not_repetitive(value: str) -> bool:
    return len(set(value)) >= min(12, max(6, len(value) // 6))


def _b64url_decode(segment: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None


def _random_body(prefix_len: int) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        body = value[prefix_len:]
        return _random_alnum(body) and _not_repetitive(body)

    return check


def _varied(prefix_len: int) -> Callable[[str], bool]:
    """The part after the fixed prefix is not one repeated character or a word."""

    def check(value: str) -> bool:
        body = value[prefix_len:]
        return _not_repetitive(body) and char_classes(body) >= 2

    return check


# -- individual checks -------------------------------------------------------------------------


def _aws_id(value: str) -> bool:
    # AWS's own documentation keys (AKIAIOSFODNN7EXAMPLE, AKIAEXAMPLE123456789 in a presigned
    # URL) are everywhere in docs, SDK data files and tests.
    return "EXAMPLE" not in value and len(set(value[4:])) > 3


# A key id's 16 characters after its prefix are base32 (A-Z, 2-7). Glued to letters, it is one
# where that body is random (``_aws_random_body``) and one or two lower-case letters at most are
# glued on each side, then a character no name or encoding goes on with: an upper-case word,
# constant or base32 string spells the prefix inside one run of capitals, an upper-case hash
# glues digits.
_AWS_GLUED_BODY = re.compile(r"(?=[A-Z2-7]*[2-7])(?=[A-Z2-7]*[A-Z])[A-Z2-7]{16}")
_AWS_LETTER_BODY = re.compile(r"[A-Z]{16}")
_AWS_VOWELS = frozenset("AEIOU")
# One random body in 28 has no digit (26/32 per character): it still counts where its letters are
# no words, as random capitals are (vowels: 19% of random letters, about 40% of words); 93% of
# such bodies have five vowels or fewer.
_AWS_MOST_VOWELS = 5
_AWS_VARIED = 9  # distinct characters of a random body (12.4 on average; DNA in base64 has 4)
# Zero bytes in base64 are runs of "A": CPython bytecode spells "AKIA2YDZAGECHQBAAAAA" in base64.
# A random body holds no character more than four times (one body in 250 does).
_AWS_MOST_SAME = 4
_AWS_IN_ORDER = 4  # letters following each other in the alphabet ("ABCDEF..."): 0.6 in a random body


def _aws_random_body(text: str, start: int) -> bool:
    """Whether the 16 characters from ``start`` are a key id's random base32 body: letters and
    digits, or letters with few vowels (no word in capitals), varied either way."""
    body = text[start : start + 16]
    if len(set(body)) < _AWS_VARIED or Counter(body).most_common(1)[0][1] > _AWS_MOST_SAME:
        return False
    if _AWS_GLUED_BODY.fullmatch(body) is not None:
        return True
    return _AWS_LETTER_BODY.fullmatch(body) is not None and \
        sum(c in _AWS_VOWELS for c in body) <= _AWS_MOST_VOWELS and \
        sum(ord(b) - ord(a) == 1 for a, b in zip(body, body[1:])) < _AWS_IN_ORDER


_GLUED_LETTERS = 2
_AWS_GLUE_ENDS = _TOKEN | _B64


_AWS_RUN_TOGETHER = 4  # key ids run together ("AKIA...AKIA..."): each one is a token of its own


def _past_key_ids(text: str, at: int, step: int) -> int:
    """Where the key ids with random bodies run together with one ending (``step`` 1) or starting
    (``step`` -1) at ``at`` end: a list pasted without separators glues whole ids, and a random
    upper-case run spells a prefix and a random body 20 characters apart once in 10**12."""
    for _ in range(_AWS_RUN_TOGETHER):
        start = at if step > 0 else at - 20
        if start < 0 or _AWS_KEY_ID.fullmatch(text, start, start + 20) is None or \
                not _aws_random_body(text, start + 4):
            break
        at = start + 20 if step > 0 else start
    return at


def _aws_glued_side(text: str, at: int, step: int) -> bool:
    """Whether the characters from ``at`` on (``step`` 1) or before it (``step`` -1) are at most
    ``_GLUED_LETTERS`` lower-case letters, then the end of the text or a separator (past other
    key ids run together with it)."""
    at = _past_key_ids(text, at, step)
    for count in range(_GLUED_LETTERS + 1):
        i = at + count if step > 0 else at - 1 - count
        if i < 0 or i >= len(text):
            return True
        c = text[i]
        if not ("a" <= c <= "z"):
            return c not in _AWS_GLUE_ENDS
    return False


def _aws_glued(text: str, start: int, end: int) -> bool:
    return _aws_random_body(text, start + 4) and \
        _aws_glued_side(text, start, -1) and _aws_glued_side(text, end, 1)


def _one_case_body(prefix_len: int) -> Callable[[str], bool]:
    """A token body in one case (lower-cased from a random mix): letters and digits, varied."""

    def check(value: str) -> bool:
        body = value[prefix_len:]
        return bool(_HAS_DIGIT.search(body)) and sum(c.isalpha() for c in body) >= len(body) // 3 and \
            _not_repetitive(body)

    return check


_HEX = re.compile(r"[0-9a-f]*")


def _lowered_github(value: str) -> bool:
    """A lower- or upper-cased token holds letters past "f" (all 36 of its characters in 0-9a-f:
    one chance in 10**12); a hash after a word ending in "ghs" ("...ghs_" and a SHA-1 in a log)
    does not."""
    return _one_case_body(4)(value) and _HEX.fullmatch(ascii_lower(value), 4) is None


_BASE32 = re.compile(r"[A-Z2-7]*")


def _upper_github_glued(text: str, start: int, end: int) -> bool:
    """An upper-cased token with letters glued before it, unless its body is base32 (capitals and
    2-7): an upper-case hash after a word ending in "GHS" ("HIGHS_", "WEIGHS_"). An upper-cased
    body lacks 0, 1, 8 and 9 one time in eleven: standing apart, such a token still counts."""
    return _BASE32.fullmatch(text, start + 4, end) is None


_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _checksummed(prefix_len: int) -> Callable[[str], bool]:
    """GitHub's ghp_/gho_/ghu_/ghs_/ghr_ tokens and npm's npm_ tokens end in a checksum: 30
    random base62 characters, then their CRC32 in six base62 digits (0-9A-Za-z, zero-padded)."""

    def check(value: str) -> bool:
        if len(value) != prefix_len + 36:
            return False
        crc = zlib.crc32(value[prefix_len : prefix_len + 30].encode("ascii"))
        digits = []
        for _ in range(6):
            crc, digit = divmod(crc, 62)
            digits.append(_BASE62[digit])
        return crc == 0 and "".join(reversed(digits)) == value[prefix_len + 30 :]

    return check


# A secret access key near its key id: a run of 40 base64 characters within 300 characters after
# it (up to 128: a secret with characters glued on, not a session token of hundreds), or run
# together with it (a few characters more at most: a line of wrapped base64 is 64 or 76).
_AWS_REACH = 300
_AWS_LONGEST = 128
_AWS_GLUED = 8  # base64 characters glued to a key id whose secret is read glued too
_AWS_GLUED_RUN = re.compile(r"[A-Za-z0-9/+]{40,%d}" % (40 + _AWS_GLUED))
_AWS_RUN = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40,%d}" % _AWS_LONGEST)
_AWS_PAIR_RUN = re.compile(r"[A-Za-z0-9/+]{40,%d}" % _AWS_LONGEST)
_FOUR_SAME = re.compile(r"(.)\1\1\1")  # three zero bytes in base64 ("AAAA"): no random secret's
_AWS_KEY_ID = re.compile(r"A(?:KIA|SIA|BIA|CCA)[A-Z0-9]{16}")
_AWS_RUN_GOES_ON = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/+=")


def _aws_secret_near_id(text: str, m: re.Match[str]) -> Span | None:
    id_start, id_end = m.span()
    glued = _AWS_GLUED_RUN.match(text, id_end)
    if glued is not None:
        span = _aws_secret(text, id_start, glued.start(), glued.end(), True) or _aws_pair(text, id_start, id_end)
        if span is not None:
            return span
    # Bounded: a run starting within reach ends before ``stop``, or is longer than a secret.
    stop = min(len(text), id_end + _AWS_REACH + _AWS_LONGEST + 1)
    for run in _AWS_RUN.finditer(text, id_end + 1, stop):
        if run.start() > id_end + _AWS_REACH:
            break
        span = _aws_secret(text, id_start, run.start(), run.end(), False)
        if span is not None:
            return span
    return None


def _aws_secret(text: str, id_start: int, start: int, end: int, glued: bool) -> Span | None:
    if end < len(text) and text[end] in _AWS_RUN_GOES_ON:
        return None
    value = text[start:end]
    if "EXAMPLE" in value:
        return None  # wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, AWS's documentation secret key
    if not (_random_alnum(value) and _not_repetitive(value)):
        return None
    if glued or end - start > 44:
        # Run together with its key id, or with characters glued to it: the run holds a
        # 40-character secret somewhere. Read only after a real key id with at most a few
        # characters glued to it: base64 wrapped at 64 or 76 columns (a certificate, an embedded
        # font: runs of "A" for zero bytes) spells a key id now and then, inside a line.
        if not _aws_id(text[id_start : id_start + 20]) or _glued_b64(text, id_start, -1) > _AWS_GLUED:
            return None
        if not glued and _glued_b64(text, id_start + 20, 1) > _AWS_GLUED:
            return None
        if glued and _wrapped_line(text, id_start, end):
            return None
        if _AWS_KEY_ID.search(value):
            return None  # another key id with what is glued to it: that id's business
    return start, end


def _aws_pair(text: str, id_start: int, id_end: int) -> Span | None:
    """A key id run together with its secret key, more characters glued around the pair than
    ``_aws_secret`` takes or next to other lines of base64: read where the key id's body is a
    random one (``_aws_random_body``). Base64 spells the prefix and 16 capitals and digits inside
    a line now and then (a font's zero bytes, DNA); a varied base32 body of a real id, once in
    3 * 10**11 characters of random base64 and nowhere in 65 000 files of real data."""
    if "EXAMPLE" in text[id_start:id_end] or not _aws_random_body(text, id_start + 4):
        return None
    run = _AWS_PAIR_RUN.match(text, id_end)
    if run is None:
        return None
    value = run.group()
    if "EXAMPLE" in value or not (_random_alnum(value) and _not_repetitive(value)) or _AWS_KEY_ID.search(value):
        return None
    if _FOUR_SAME.search(value, 0, 40):
        return None  # one random secret in 3 000 has such a run
    return run.span()


_B64_LINE = re.compile(r"[A-Za-z0-9+/]{40,}=*\r?$", re.MULTILINE)


_WRAP_WIDTH = 128  # wrapped base64 has lines of 64 or 76 characters: longer ones are not looked at


def _wrapped_line(text: str, start: int, end: int) -> bool:
    """Whether ``start:end`` is most of a line of wrapped base64: a line of base64 with another
    one of at least 40 characters right above or below it (a certificate, an embedded font)."""
    line_start, line_end = _line_around(text, start, end)
    if line_start < 0 or not _B64_LINE.fullmatch(text, line_start, line_end):
        return False
    if line_start > 0:
        above, _ = _line_around(text, line_start - 1, line_start - 1)
        if above >= 0 and _B64_LINE.fullmatch(text, above, line_start - 1):
            return True
    if line_end < len(text):
        _, below = _line_around(text, line_end + 1, line_end + 1)
        return below >= 0 and _B64_LINE.fullmatch(text, line_end + 1, below) is not None
    return False


def _line_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The line holding ``start:end`` as ``(start, end)``; ``(-1, -1)`` if it is longer than a
    wrapped line (the search stays short on a long single-line body)."""
    before = text.rfind("\n", max(0, start - _WRAP_WIDTH), start)
    if before < 0 and start > _WRAP_WIDTH:
        return -1, -1
    after = text.find("\n", end, end + _WRAP_WIDTH)
    if after < 0:
        if len(text) - end > _WRAP_WIDTH:
            return -1, -1
        after = len(text)
    return before + 1, after


def _glued_b64(text: str, at: int, step: int) -> int:
    """How many base64 characters (up to ``_AWS_GLUED + 1``) are next to ``at``: before it
    (``step`` -1) or from it on (``step`` 1)."""
    count, i = 0, at - 1 if step < 0 else at
    while count <= _AWS_GLUED and 0 <= i < len(text) and text[i] in _B64:
        count += 1
        i += step
    return count


# Glued after other base64 (another document's "eyJ..." before it), a JWT's header starts at a
# later "eyJ" of the first segment. Tried from the dot back, a few within a header's length: only
# the header's own start decodes to one JSON object (a nested object's "eyJ" leaves the outer
# braces over), so the first that does is it.
_JWT_HEADER_LONGEST = 4096
_JWT_HEADER_TRIES = 16
# "alg" in base64 at each of its three alignments: a first segment without one names no algorithm.
_JWT_ALG_B64 = ("ImFsZ", "hbGc", "YWxn")


def _jwt(text: str, m: re.Match[str]) -> Span | None:
    start, end = m.span()
    if start > 0 and text[start - 1] == ".":
        return None  # a later segment of a dotted value
    header_end = m.end(1)
    alg = _jwt_alg(text, start, header_end)
    if alg is None:
        start, alg = _glued_jwt_header(text, start, header_end)
        if alg is None:
            return None
    # The header is the mark: a JSON object naming an algorithm, from an "eyJ" to the dot. A blob
    # of base64 before it (another document, random data) does not make it any less a JWT.
    if alg.lower() != "none" and len(m.group(3)) < 16:
        return None
    return start, end


def _jwt_alg(text: str, start: int, end: int) -> str | None:
    """The "alg" of the JWT header ``text[start:end]``, or None where it is no such header."""
    header = _b64url_decode(text[start:end])
    if header is None:
        return None
    try:
        obj = json.loads(header)
    except ValueError:
        return None
    if not isinstance(obj, dict) or "alg" not in obj:
        return None
    return str(obj["alg"])


def _glued_jwt_header(text: str, start: int, end: int) -> tuple[int, str | None]:
    lowest = max(start + 1, end - _JWT_HEADER_LONGEST)
    if all(text.find(alg, lowest, end) < 0 for alg in _JWT_ALG_B64):
        return start, None
    at = text.rfind("eyJ", lowest, end)
    for _ in range(_JWT_HEADER_TRIES):
        if at < 0:
            break
        alg = _jwt_alg(text, at, end)
        if alg is not None:
            return at, alg
        at = text.rfind("eyJ", lowest, at)
    return start, None


_PEM_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_KEY_MATERIAL = re.compile(r"[A-Za-z0-9+/]{32}")
_PEM_BODY = re.compile(r"(?:[A-Za-z0-9+/=\s]|\\n|\\r)*")
# What a key shown in documentation has and a real one never does: an elision, a placeholder.
_ELIDED_KEY = re.compile(r"\.\.\.|\u2026|EXAMPLE|[<>]|omitted|omittted|redacted|truncated", re.IGNORECASE)


def _private_key(text: str, m: re.Match[str]) -> Span | None:
    start, header_end = m.span()
    # A header alone (code that *looks for* keys, docs) is not a key: require material after it.
    if not _KEY_MATERIAL.search(text, header_end, header_end + 400):
        return None
    closing = _PEM_END.search(text, header_end, header_end + 64 * 1024)
    end = closing.end() if closing is not None else _PEM_BODY.match(text, header_end).end()  # type: ignore[union-attr]
    if _ELIDED_KEY.search(text, header_end, closing.start() if closing is not None else end):
        return None  # documentation: "MIIEow...fvY4+te", "EXAMPLEBAAKCAQEA", "<key>", "key omitted"
    # A key inside a GCP service-account file is reported as that, a more useful name.
    window = text[max(0, start - 2048) : start]
    if '"private_key"' in window[-64:] and "service_account" in window + text[end : end + 2048]:
        return start, end, "gcp-service-account-key", "GCP service-account private key"
    return start, end


def _azure_sas(text: str, m: re.Match[str]) -> Span | None:
    key_start = m.start()
    if key_start == 0 or text[key_start - 1] not in "?&;":
        return None
    if "sv=" not in text[max(0, key_start - 600) : key_start + 600]:
        return None
    return m.span(1)


_STRIPE_LENGTHS = (32, 107)  # "sk_live_" and a body of 24 (older keys) or 99 characters


def _stripe(text: str, m: re.Match[str]) -> Span | None:
    start, end = m.span()
    if start == 0 or text[start - 1] not in "sr":
        return None
    start -= 1
    if start > 0 and text[start - 1] in _ALNUM and _blob_run(text, start, -1) and not (
            end - start in _STRIPE_LENGTHS and _ends_run(text, end)):
        return None  # glued: a token still, unless in the middle of a blob (appended to one: its end)
    if end < len(text) and text[end] in _WORD and _blob_run(text, end, 1):
        return None  # the body takes every letter and digit: what follows it is "_"
    body = text[start + 8 : end]
    return (start, end) if _random_alnum(body) and _not_repetitive(body) else None


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def _hex_ends(text: str, start: int, end: int) -> bool:
    """A hex body of fixed length glued to letters: not to more hex (a longer hash after a name)."""
    return text[end] not in _HEX_DIGITS


def _sendgrid(value: str) -> bool:
    """Both parts random base64url (an id of 22 characters, the secret of 43), not a dotted name."""
    key_id, secret = value[3:25], value[26:]
    return _random_alnum(secret) and _not_repetitive(secret) and char_classes(key_id) >= 2


def _grafana(value: str) -> bool:
    """A Grafana service account token's 32 random letters and digits (before "_" and a checksum)."""
    return _random_body(0)(value[5:37])


# GitLab's routable tokens (every new personal access token since mid-2025): the prefix, a
# base64url payload, ".", a two-character version ("01"; absent in the first ones of 2024),
# ".", the payload's length in two base36 digits and the CRC32 of all before it in seven.
_GITLAB_ROUTABLE = re.compile(r"gl[a-z]+-([0-9A-Za-z_\-]{27,300})\.(?:[0-9a-z]{2}\.)?([0-9a-z]{2})([0-9a-z]{7})")
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(number: int, width: int) -> str:
    digits = ""
    while number:
        number, digit = divmod(number, 36)
        digits = _BASE36[digit] + digits
    return digits.rjust(width, "0")


def _gitlab_checksummed(value: str) -> bool:
    """A routable token whose CRC holds: a token wherever it is glued (a chance of 2**-32)."""
    m = _GITLAB_ROUTABLE.fullmatch(value)
    return m is not None and _base36(zlib.crc32(value[:-7].encode("ascii")), 7) == m.group(3)


def _marked_gitlab(value: str) -> bool:
    """A routable token's dotted tail naming its payload's length: more than a blob spells."""
    m = _GITLAB_ROUTABLE.fullmatch(value)
    return m is not None and int(m.group(2), 36) == len(m.group(1))


def _slack(value: str) -> bool:
    return len(value) >= 20 and bool(_HAS_DIGIT.search(value)) and value.count("-") >= 2


# -- what marks a token of no fixed length appended to a blob (``Glue.marked``) ----------------
# A base64url blob spells a five-character anchor every billion characters and goes on with "-"
# and digits as often: appended to one, a token counts only with more of its format around it.

# "xoxb-" and the team's and bot's numeric ids, then the secret part (letters and digits).
_SLACK_SHAPE = re.compile(r"xox[abposre]-(?:[0-9]+-){1,3}(?=[A-Za-z]*[0-9])(?=[0-9]*[A-Za-z])[A-Za-z0-9]{20,}")
# "xapp-1-" and the app id (capitals and digits), a numeric id, the secret part.
_SLACK_APP_SHAPE = re.compile(r"xapp-[0-9]-[A-Z0-9]{6,}-[0-9]{6,}-[A-Za-z0-9]{20,}")
# A PyPI token is a macaroon: its base64 starts by naming the index ("pypi.org", "test.pypi.org").
_PYPI_MARKS = ("pypi-AgEIcHlwaS5vcmc", "pypi-AgENdGVzdC5weXBpLm9yZw")
_OPENAI_KINDS = ("sk-proj-", "sk-svcacct-", "sk-admin-")
# Google's access tokens since 2020: "ya29.a0A..." ("ya29.A0A..." in 2021), a service account's
# "ya29.c.b0A...", "ya29.c.c0A...". Before that a protobuf in base64url: a field tag ("C", "E",
# "G", "I", "K"), a length byte ("i" to "p"), one or two more characters, then "A" or "B"
# ("ya29.GlvGBZ...", "ya29.ElqKBG...", "ya29.c.Ko8B1g...", "ya29.c.Kl6fB..."): a blob spells that
# after "ya29." one time in about 1 700, and spells "ya29." only where it holds a dot.
_GOOGLE_OAUTH_SHAPE = re.compile(r"ya29\.(?:c\.)?(?:[a-z]0A|A0A|[CEGIK][i-p][0-9A-Za-z_\-]{1,2}[AB])")


def _marked_slack(value: str) -> bool:
    return _SLACK_SHAPE.fullmatch(value) is not None


def _marked_slack_app(value: str) -> bool:
    return _SLACK_APP_SHAPE.fullmatch(value) is not None


def _marked_pypi(value: str) -> bool:
    return value.startswith(_PYPI_MARKS)


def _marked_openai(value: str) -> bool:
    """A project, service-account or admin key: its kind, and "T3BlbkFJ" in its body."""
    return value.startswith(_OPENAI_KINDS) and "T3BlbkFJ" in value


def _marked_google_oauth(value: str) -> bool:
    return _GOOGLE_OAUTH_SHAPE.match(value) is not None


def _openai_marked(value: str) -> bool:
    """A glued "sk-" (three characters a base64url blob spells every few thousand) counts with a
    longer mark: a project, service-account or admin prefix, or "T3BlbkFJ" (base64 of "OpenAI"),
    which OpenAI keys carry in their body."""
    return value.startswith(("sk-proj-", "sk-svcacct-", "sk-admin-")) or "T3BlbkFJ" in value


# How far into a key its "T3BlbkFJ" lies at most: after "sk-svcacct-" and about 74 characters.
_OPENAI_MARK_AT = 160
_LEGACY_OPENAI = re.compile(r"sk-[A-Za-z0-9]{48}")
_NEXT_TO_BASE64 = frozenset("+/=")
_GLUED_NAME = 24  # the longest kebab/snake name read as glued before a legacy key ("rel-", "my_")
_NEXT_TO_NAME = _TOKEN | _B64


def _legacy_glued(text: str, start: int, end: int) -> bool:
    """A legacy key ("sk-" and 48 letters and digits, unmarked) glued to one character ("xsk-")
    or after a short name ending in "-" or "_" ("rel-sk-"), as a whole run: not after two or more
    characters glued straight on ("Qz9sk-": a base64url id spells "sk-" every 260 000 characters;
    "task-", "disk-" a name), nor after a random-looking id ("1L1VqLyea-sk-"), nor next to a
    standard base64 character."""
    if not _LEGACY_OPENAI.fullmatch(text, start, end):
        return False
    if end < len(text) and text[end] in _NEXT_TO_BASE64:
        return False
    glued, limit = start, max(0, start - _GLUED_NAME - 1)
    while glued > limit and text[glued - 1] in _TOKEN:
        glued -= 1
    if glued > 0 and text[glued - 1] in _NEXT_TO_NAME:
        return False  # the run goes on past the name: a blob, or a run too long to be a name
    return start - glued == 1 or (text[start - 1] in "-_" and not _random_alnum(text[glued : start - 1]))


def _openai_glued(text: str, start: int, end: int) -> bool:
    return _openai_marked(text[start:end]) or _legacy_glued(text, start, end)


def _openai(value: str) -> bool:
    body = value[3:]
    if body.startswith("ant-"):
        return False  # Anthropic's detector owns these
    for prefix in ("proj-", "svcacct-", "admin-", "None-"):
        if body.startswith(prefix):
            body = body[len(prefix) :]
            break
    if len(body) < 32:
        return False
    if _random_alnum(body):
        return _not_repetitive(body)
    # Lower-cased: "T3BlbkFJ" (base64 of "OpenAI", which OpenAI's keys carry in their body) is
    # still there as a marker; no random run spells it.
    return "t3blbkfj" in body and _one_case_body(0)(body)


def _upper_openai(value: str) -> bool:
    """An upper-cased key: its marker ("T3BLBKFJ") kept, a varied body of letters and digits."""
    return _one_case_body(3)(value.replace("T3BLBKFJ", "", 1))


# -- the generic "password = ..." detector -----------------------------------------------------

_KEY_START = re.compile(r"[A-Za-z0-9_.\-]*\Z")  # searched up to the keyword: where the key begins
# Words in a key, before the secret-sounding one, that make it name something that is not a
# secret ("page_token", "nextPageToken", "csrftoken", "public_key"). Whole words only:
# "admin_password" and "account_key" are secrets.
# A token that is no credential: idempotency, change, lock and paging tokens of cloud APIs, a
# domain verification token (published in DNS), an OAuth 1 request token.
_BENIGN_TOKEN_WORDS = frozenset({
    "change", "lock", "client", "request", "idempotency", "lifecycle", "action", "update", "output", "input",
    "copy", "verification", "pagination", "resume",
})
_BENIGN_KEY_WORDS = frozenset({
    "page", "next", "cursor", "continuation", "sync", "csrf", "xsrf", "max", "min", "num", "count",
    "limit", "usage", "public", "type", "file", "path", "name", "url", "uri", "hint", "prefix",
    "length", "size", "format", "kind", "mode", "field", "label", "policy", "header", "param",
})
# "key" alone is any dictionary key; it counts only after one of these words.
_KEY_QUALIFIERS = frozenset({"api", "secret", "private", "access", "auth", "signing", "encryption", "master",
                             "client", "app", "account", "service"})
_KEY_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+")


def _key_words(key: str, keyword: str) -> list[str]:
    """The words of a key (snake, kebab, camel or run together: "apikey"), the keyword last."""
    words = [w.lower() for w in _KEY_WORDS.findall(key)]
    if words and words[-1] != keyword and words[-1].endswith(keyword):
        words[-1:] = [words[-1][: -len(keyword)], keyword]
    return words


_PLACEHOLDER = re.compile(
    r"example|sample|placeholder|changeme|change_me|change-me|dummy|redacted|fake|mock|"
    r"your[_\-]|<|>|\$\{|\{\{|\}\}|%s|%\(|\*\*\*|xxxx|\.\.\.|^\$|://|"
    # a value naming what it is ("secret=password", "test_token") is an example, not the thing
    r"password|passwd|secret|token|test",
    re.IGNORECASE,
)
_IN_ARN = re.compile(r"arn:aws[a-z\-]*:[^\s\"'`]*$")
_REFERENCE = re.compile(r"^arn:aws|\{[A-Za-z_][A-Za-z0-9_.]*\}|\[[^\]]*(?:a-z|A-Z|0-9)")
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*")
_DATE_OR_VERSION = re.compile(r"v?\d+(?:[.\-:/T]\d+)+[A-Za-z0-9.\-+:]*")
_AWS_SECRET_SHAPE = re.compile(r"[A-Za-z0-9/+]{40}")
_STOPWORDS = frozenset({"password", "passwd", "secret", "token", "none", "null", "undefined", "true", "false"})
_GENERIC_TAIL = (
    r"""["'`]?[ \t]{0,3}(?:=|:=|=>|:)[ \t]{0,3}"""
    # NUL ends a value: it separates the texts the engine scans joined.
    r"""(?:(?P<q>["'`])(?P<v>[^"'`\s\\\x00]{8,256})(?P=q)|(?P<u>[^\s"'`&;,<>(){}\[\]\\\x00]{8,256}))"""
)


_LETTERS_AND_SEPARATORS = re.compile(r"[A-Za-z_.\- ]+")
_VOWELS = frozenset("aeiouyAEIOUY")
_WORD_SEGMENTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")


def wordy(value: str) -> bool:
    """Made of words, as names are ("challengePassword", "SECRET_DO_NOT_SHARE",
    "test_api_key", "SSHPrivateKeyTypes"), rather than random characters."""
    if not _LETTERS_AND_SEPARATORS.fullmatch(value):
        return False
    segments = _WORD_SEGMENTS.findall(value)
    letters = sum(map(len, segments))
    if len(segments) < 2 or min(map(len, segments)) < 2 or letters < 3 * len(segments):
        return False
    # Random letters split at their capitals also give segments; words have vowels (about 40%
    # of letters in English, about 20% in random text), acronyms are short capitals.
    vowels = sum(1 for ch in value if ch in _VOWELS)
    word_like = sum(len(seg) for seg in segments if (seg.isupper() and len(seg) <= 5) or _VOWELS.intersection(seg))
    return vowels >= 0.3 * letters and word_like >= 0.9 * letters


def strong_secret_value(value: str) -> bool:
    """True when ``value`` looks like a real secret, not a placeholder, name, path or version."""
    if not 8 <= len(value) <= 256 or value.lower() in _STOPWORDS:
        return False
    if _PLACEHOLDER.search(value) or _DATE_OR_VERSION.fullmatch(value):
        return False
    if not _HAS_DIGIT.search(value) and wordy(value):
        return False
    if len(set(value)) < min(6, len(value) // 2):
        return False
    classes = char_classes(value)
    if classes >= 3:
        return True
    return len(value) >= 16 and classes >= 2 and shannon(value) >= 3.5


def _generic(text: str, m: re.Match[str], keyword: str, back: int) -> Span | None:
    # Cheapest rejections first: this runs for every "key:"/"token =" in a file.
    kw_start = m.start() - back
    key_end = m.end("kwtail")
    key_start = _KEY_START.search(text, max(0, kw_start - 64), kw_start).start()  # type: ignore[union-attr]
    key = text[key_start:key_end].lower()
    modifiers = _key_words(text[key_start:key_end], text[kw_start:key_end].lower())[:-1]
    if keyword == "key" and not _KEY_QUALIFIERS.intersection(modifiers):
        return None
    if _BENIGN_KEY_WORDS.intersection(modifiers):
        return None
    if keyword == "token" and _BENIGN_TOKEN_WORDS.intersection(modifiers):
        return None
    quoted = m.group("v") is not None
    start, end = m.span("v") if quoted else m.span("u")
    value = text[start:end]
    if "." in value and _IDENTIFIER.fullmatch(value):
        return None  # "Config.SECRET", quoted or not: a reference to a value, not the value
    if _REFERENCE.search(value):
        return None  # an ARN naming a key, a "{name}" template, a regex
    if _IN_ARN.search(text, max(0, key_start - 256), key_start) or text[max(0, key_start - 2) : key_start] == "::":
        return None  # "arn:aws:secretsmanager:...:secret:name", a type name "AWS::IAM::AccessKey"
    if keyword == "key" and "secret" in key and _AWS_SECRET_SHAPE.fullmatch(value) and _random_alnum(value):
        # aws_secret_access_key, SecretAccessKey, aws_secret_key: report the specific format.
        if "EXAMPLE" in value:
            return None  # AWS's documentation secret key
        if "access" in key or "aws" in key or "aws" in text[max(0, key_start - 200) : key_start].lower():
            if quoted or _literal_context(text, key_start):
                return start, end, "aws-secret-access-key", "AWS secret access key"
    if not strong_secret_value(value):
        return None
    if not quoted:
        # An unquoted value in code is usually an expression (``password = other.password``);
        # accept it where values are literal: env files (``KEY=value``), YAML (``key: value``) and
        # INI files at line start, and query strings. INI puts spaces around "=" as code does:
        # there, only a random-looking value counts.
        literal = _literal_context(text, key_start)
        if end < len(text) and text[end] in "(.[":
            return None  # a call or an attribute: code
        if _IDENTIFIER.fullmatch(value):
            if not literal or wordy(re.sub(r"[0-9]", "", value)):
                return None  # a variable, or a type or constant name ("key: PKCS7PrivateKeyTypes")
            operator = text[key_end:start]
            if " " in operator and ":" not in operator and not (len(value) >= 20 and shannon(value) >= 4.0):
                return None
        elif not literal and not _HAS_OTHER.search(value.replace("_", "")):
            return None
    return start, end


def _literal_context(text: str, key_start: int) -> bool:
    # NUL separates the texts the engine scans joined (see ``engine``): each starts a line.
    line_start = max(text.rfind("\n", 0, key_start), text.rfind("\x00", 0, key_start)) + 1
    prefix = text[line_start:key_start].strip()
    return prefix in ("", "export", "-") or (key_start > 0 and text[key_start - 1] in "?&;")


def _generic_detector(keyword: str, before: str, pivot: str, tail: str, spellings: tuple[str, ...]) -> Detector:
    """The assignment detector for one keyword (``before + pivot + tail``). The pattern starts at
    ``pivot``, the keyword's least common letters in code, and checks ``before`` with a
    look-behind: a regex pass is fast when its leading literal is rare. ``spellings`` are the
    words ``before + pivot + tail`` matches (the prefilter's probes)."""
    pattern = f"{re.escape(pivot)}(?<={re.escape(before + pivot)})(?P<kwtail>{tail})"
    back = len(before)
    return Detector(
        "generic-secret-assignment", "Password or secret assignment",
        re.compile(pattern + _GENERIC_TAIL), (_ALWAYS,), lowered=True,
        extract=lambda text, m: _generic(text, m, keyword, back), probes=spellings,
    )


# -- the catalogue -----------------------------------------------------------------------------


def _d(id: str, name: str, pattern: str, anchors: tuple[str, ...], **kw: object) -> Detector:
    return Detector(id, name, re.compile(pattern), anchors, **kw)  # type: ignore[arg-type]


_AWS_ANCHORS = ("AKIA", "ASIA", "ABIA", "ACCA")
_ANTHROPIC_LENGTH = 108  # "sk-ant-api03-" and 95 characters


def _marked_anthropic_admin(value: str) -> bool:
    """An admin key ("sk-ant-admin01-" and 95 characters): its own length with its own prefix, as
    an API key with two characters glued on is that long too."""
    return len(value) == 110 and value[:15].lower() == "sk-ant-admin01-"


_XOX = tuple(f"xox{c}-" for c in "abposre")

DETECTORS: tuple[Detector, ...] = (
    _d("aws-access-key-id", "AWS access key ID", r"A(?:KIA|SIA|BIA|CCA)[A-Z0-9]{16}", _AWS_ANCHORS, run_min=20,
       before=_ALNUM, after=_ALNUM, check=_aws_id,
       glue=Glue(4, fixed=True, need=_aws_glued, need_end=_aws_glued)),
    # A 40-character base64 value shortly after an access key id is its secret key (characters
    # glued to it, or the id run together with it, make it no other value: the pair is a
    # credential). The expression finds the id; ``_aws_secret_near_id`` reads what follows.
    _d("aws-secret-access-key", "AWS secret access key", r"A(?:KIA|SIA|BIA|CCA)[A-Z0-9]{16}",
       _AWS_ANCHORS, extract=_aws_secret_near_id, window=(0, 20), run_min=20),
    _d("gcp-api-key", "Google API key", r"AIza[0-9A-Za-z_\-]{35}", ("AIza",), run_min=39,
       before=_TOKEN, after=_TOKEN, check=_varied(4), glue=Glue(4, "lud", fixed=True, tail=(39,))),
    _d("google-oauth-token", "Google OAuth access token", r"ya29\.(?:c\.)?[0-9A-Za-z_\-]{30,}", ("ya29.",),
       run_min=35, before=_TOKEN, check=_varied(5), glue=Glue(5, "lud", marked=_marked_google_oauth)),
    _d("google-oauth-client-secret", "Google OAuth client secret", r"GOCSPX-[0-9A-Za-z_\-]{28}",
       ("GOCSPX-",), run_min=35, before=_TOKEN, after=_TOKEN, check=_varied(7),
       glue=Glue(7, fixed=True, tail=(35,))),
    _d("azure-storage-key", "Azure storage account key", r"AccountKey=([A-Za-z0-9+/]{86}==)",
       ("AccountKey=",), run_min=99, group=1, after=_B64, check=_random_alnum, window=(0, 128),
       glue=Glue(0, fixed=True)),
    _d("azure-storage-key", "Azure storage account key", r"SharedAccessKey=([A-Za-z0-9+/]{42,43}=)",
       ("SharedAccessKey=",), run_min=59, group=1, after=_B64, check=_random_alnum,
       glue=Glue(0, fixed=True)),
    _d("azure-sas-token", "Azure SAS signature", r"sig=([A-Za-z0-9%+/]{40,}(?:=|%3[Dd]){0,2})",
       ("sv=20",), run_min=44, extract=_azure_sas, window=(2048, 2048)),
    _d("github-token", "GitHub token", r"gh[pousr]_[A-Za-z0-9]{36,251}",
       ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), run_min=40, before=_ALNUM, after=_WORD, check=_random_body(4),
       glue=Glue(4, proof=_checksummed(4), tail=(40,))),
    # Case-changed tokens: the prefix is kept as a marker, no random value has these shapes.
    _d("github-token", "GitHub token", r"gh[pousr]_[a-z0-9]{36,251}",
       ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), run_min=40, before=_ALNUM, after=_WORD, check=_lowered_github,
       glue=Glue(4)),
    _d("github-token", "GitHub token", r"GH[POUSR]_[A-Z0-9]{36,251}",
       ("GHP_", "GHO_", "GHU_", "GHS_", "GHR_"), run_min=40, before=_ALNUM, after=_WORD, check=_lowered_github,
       glue=Glue(4, need=_upper_github_glued)),
    _d("github-token", "GitHub token", r"github_pat_[A-Za-z0-9_]{50,251}",
       ("github_pat_",), run_min=61, before=_ALNUM, after=_WORD, check=_random_body(11), glue=Glue(11, tail=(93,))),
    # A routable token's dotted tail is part of it where nothing glued follows the tail.
    _d("gitlab-token", "GitLab token",
       r"gl(?:pat|dt|rt|ptt)-[0-9A-Za-z_\-]{20,}(?:(?:\.[0-9a-z]{2})?\.[0-9a-z]{9}(?!\.?[0-9A-Za-z_\-]))?",
       ("glpat-", "gldt-", "glrt-", "glptt-"), run_min=25, before=_ALNUM, after=_TOKEN,
       check=lambda v: _varied(0)(v.split("-", 1)[1]),
       glue=Glue(5, "d", proof=_gitlab_checksummed, tail=(26,), marked=_marked_gitlab)),
    _d("slack-token", "Slack token", r"xox[abposre]-[0-9A-Za-z\-]{10,250}", _XOX, run_min=15,
       before=_ALNUM, after=_TOKEN, check=_slack, glue=Glue(5, "lud", marked=_marked_slack)),
    _d("slack-token", "Slack token", r"xapp-[0-9]-[0-9A-Za-z\-]{20,250}", ("xapp-",), run_min=27,
       before=_ALNUM, after=_TOKEN, glue=Glue(5, "lud", marked=_marked_slack_app)),
    _d("slack-webhook", "Slack webhook URL",
       r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_\-]+/[A-Za-z0-9_\-]+/[A-Za-z0-9_\-]{16,}",
       ("hooks.slack.com/",), run_min=44, after=_TOKEN),
    # Starts at "k_live_" (a literal: fast to find); the "s" or "r" before it is checked per match.
    _d("stripe-secret-key", "Stripe secret key", r"k_live_[0-9A-Za-z]{20,247}", ("k_live_",), run_min=27,
       window=(1, 1024), extract=_stripe),
    _d("anthropic-api-key", "Anthropic API key", r"sk-ant-[A-Za-z0-9_\-]{32,}", ("sk-",), run_min=39,
       before=_TOKEN, after=_TOKEN, check=_varied(7),
       glue=Glue(7, "lud", tail=(_ANTHROPIC_LENGTH,), marked=_marked_anthropic_admin)),
    _d("anthropic-api-key", "Anthropic API key", r"SK-ANT-[A-Z0-9_\-]{32,}", ("SK-ANT-",), run_min=39,
       before=_TOKEN, after=_TOKEN, check=_varied(7),
       glue=Glue(7, "ud", tail=(_ANTHROPIC_LENGTH,), marked=_marked_anthropic_admin)),
    _d("openai-api-key", "OpenAI API key", r"sk-[A-Za-z0-9_\-]{32,}", ("sk-",), run_min=35,
       before=_TOKEN, after=_TOKEN, check=_openai,
       glue=Glue(3, "lud", need=_openai_glued, tail=(51,), marked=_marked_openai)),
    # Upper-cased (a shell's ${KEY^^}, a tool that shouts): the kind and "T3BlbkFJ" upper-cased.
    # Found at the marker, which ordinary text never spells ("TASK-", "RISK-" spell "SK-" often).
    _d("openai-api-key", "OpenAI API key", r"SK-(?:PROJ-|SVCACCT-|ADMIN-)?[A-Z0-9_\-]{16,}?T3BLBKFJ[A-Z0-9_\-]{16,}",
       ("T3BLBKFJ",), run_min=35, before=_TOKEN, after=_TOKEN, check=_upper_openai,
       glue=Glue(3, "ud", marked=lambda _value: True), window=(_OPENAI_MARK_AT, 1024)),
    _d("npm-token", "npm token", r"npm_[A-Za-z0-9]{36}", ("npm_",), run_min=40, before=_ALNUM, after=_WORD,
       check=_random_body(4), glue=Glue(4, fixed=True, proof=_checksummed(4), tail=(40,))),
    _d("pypi-token", "PyPI token", r"pypi-AgE[A-Za-z0-9_\-]{50,}", ("pypi-",), run_min=58, before=_ALNUM, after=_TOKEN,
       glue=Glue(8, marked=_marked_pypi)),
    # Fixed lengths of hex, letters and digits or base64url after a prefix no name spells: read
    # glued, and appended to a blob where they end the run with that exact length.
    _d("digitalocean-token", "DigitalOcean token", r"do[opr]_v1_[a-f0-9]{64}", ("dop_v1_", "doo_v1_", "dor_v1_"),
       run_min=71, before=_ALNUM, after=_ALNUM, check=_varied(7),
       glue=Glue(7, fixed=True, tail=(71,), need_end=_hex_ends)),
    _d("shopify-token", "Shopify access token", r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}",
       ("shpat_", "shpss_", "shpca_", "shppa_"), run_min=38, before=_ALNUM, after=_ALNUM, check=_varied(6),
       glue=Glue(6, fixed=True, tail=(38,), need_end=_hex_ends)),
    _d("sendgrid-api-key", "SendGrid API key", r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}", ("SG.",), run_min=69,
       before=_TOKEN, after=_TOKEN, check=_sendgrid, glue=Glue(3, "lud", fixed=True, tail=(69,))),
    _d("postman-api-key", "Postman API key", r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}", ("PMAK-",), run_min=64,
       before=_TOKEN, after=_TOKEN, check=_varied(5), glue=Glue(5, fixed=True, tail=(64,), need_end=_hex_ends)),
    _d("linear-api-key", "Linear API key", r"lin_api_[A-Za-z0-9]{40}", ("lin_api_",), run_min=48,
       before=_ALNUM, after=_WORD, check=_random_body(8), glue=Glue(8, "lud", fixed=True, tail=(48,))),
    _d("grafana-token", "Grafana service account token", r"glsa_[A-Za-z0-9]{32}_[a-fA-F0-9]{8}", ("glsa_",),
       run_min=46, before=_ALNUM, after=_WORD, check=_grafana, glue=Glue(5, "lud", fixed=True, tail=(46,))),
    # Personal, CLI, service (with its config's name in newer ones) and service account tokens.
    _d("doppler-token", "Doppler token", r"dp\.(?:pt|ct|st|sa)\.(?:[a-z0-9_\-]{2,35}\.)?[A-Za-z0-9]{40,44}",
       ("dp.pt.", "dp.ct.", "dp.st.", "dp.sa."), run_min=46, before=_ALNUM, after=_WORD,
       check=lambda value: _random_body(0)(value.rsplit(".", 1)[1]), glue=Glue(6, "lud", tail=tuple(range(46, 51)))),
    # "ATATT3xFfGF0", base64url, "=" and a checksum of eight hex digits: marked past any blob.
    _d("atlassian-api-token", "Atlassian API token", r"ATATT3[A-Za-z0-9_\-]{100,300}=[0-9A-F]{8}", ("ATATT3",),
       run_min=108, before=_TOKEN, after=_TOKEN, check=_random_body(6),
       glue=Glue(6, "lud", fixed=True, marked=lambda value: value.startswith("ATATT3xFfGF0"))),
    _d("private-key", "Private key block", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
       ("PRIVATE KEY",), extract=_private_key, window=(64, 64), run_min=32),
    _d("jwt", "JSON Web Token",
       r"(eyJ[A-Za-z0-9_\-]{5,})\.([A-Za-z0-9_\-]{8,})\.([A-Za-z0-9_\-]*)", ("eyJ",), extract=_jwt,
       window=(0, 64 * 1024), run_min=18),
    _generic_detector("password", "pass", "w", "(?:or)?d", ("password", "passwd")),
    _generic_detector("secret", "se", "cr", "et", ("secret",)),
    _generic_detector("token", "to", "k", "en", ("token",)),
    _generic_detector("key", "ke", "y", "", ("key",)),
)

DETECTOR_NAMES: dict[str, str] = {d.id: d.name for d in DETECTORS}
DETECTOR_NAMES["gcp-service-account-key"] = "GCP service-account private key"
DETECTOR_IDS: tuple[str, ...] = tuple(sorted(DETECTOR_NAMES))


# -- probes: which anchors occur at all ----------------------------------------------------------


@dataclass(frozen=True)
class _Probe:
    pattern: re.Pattern[str] | None  # None: a plain substring search for the single anchor
    anchors: tuple[str, ...]
    matches_anchor: bool = False  # the match is the anchor itself (else: the anchor ends where it ends)


# Hand-written probes for the short anchors. Each stops only at one character (a literal, so the
# regex engine jumps between occurrences), checks the character before it against the few that
# can precede it in an anchor (cheap: most "_" in code follow other letters), then the anchors.
_PROBE_TABLE: tuple[tuple[str, tuple[str, ...]], ...] = (
    # Anchors whose "_" follows "1", "a" or "i" behind one more look-behind: most "_" in code
    # follow a letter of the first class, and each alternative tried there costs.
    (r"_(?<=[poustrmePOUSR1ai]_)(?:(?<=gh[pousr]_)|(?<=npm_)|(?<=k_live_)|(?<=github_pat_)|(?<=GH[POUSR]_)"
     r"|(?<=shp(?:at|ss)_)|(?<=[1ai]_)(?:(?<=shp[cp]a_)|(?<=glsa_)|(?<=lin_api_)|(?<=do[opr]_v1_)))",
     ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "npm_", "k_live_", "github_pat_",
      "GHP_", "GHO_", "GHU_", "GHS_", "GHR_", "dop_v1_", "doo_v1_", "dor_v1_",
      "shpat_", "shpss_", "shpca_", "shppa_", "lin_api_", "glsa_")),
    (r"-(?<=[abeikoprstXK]-)(?:(?<=sk-)|(?<=gl[dr]t-)|(?<=glp(?:at|tt)-)|(?<=xox[abposre]-)|(?<=xapp-)"
     r"|(?<=GOCSPX-)|(?<=pypi-)|(?<=PMAK-))",
     ("sk-", "gldt-", "glrt-", "glpat-", "glptt-", *(f"xox{c}-" for c in "abposre"), "xapp-", "GOCSPX-", "pypi-",
      "PMAK-")),
    # Anchors ending in a dot: one pass for three formats (the class keeps most dots of code out).
    (r"\.(?<=[G9ta]\.)(?:(?<=SG\.)|(?<=ya29\.)|(?<=dp\.(?:pt|ct|st|sa)\.))",
     ("SG.", "ya29.", "dp.pt.", "dp.ct.", "dp.st.", "dp.sa.")),
    # OpenAI's marker upper-cased ends in "J" too: no pass of its own.
    (r"J(?<=[yF]J)(?:(?<=eyJ)|(?<=T3BLBKFJ))", ("eyJ", "T3BLBKFJ")),
)


def _build_probes(anchors: set[str]) -> tuple[_Probe, ...]:
    probes: list[_Probe] = []
    rest = set(anchors)
    for source, covered in _PROBE_TABLE:
        wanted = tuple(a for a in covered if a in rest)
        if wanted:
            probes.append(_Probe(re.compile(source), wanted))
            rest -= set(wanted)
    starting_a = tuple(sorted(a for a in rest if a.startswith("A") and 4 <= len(a) <= 6))
    if starting_a:
        family = re.compile("A(?:" + "|".join(re.escape(a[1:]) for a in starting_a) + ")")
        probes.append(_Probe(family, starting_a, matches_anchor=True))
        rest -= set(starting_a)
    for anchor in sorted(rest):
        probes.append(_Probe(None, (anchor,)))
    return tuple(probes)


# Anchors seen more often than this are not tracked one by one: their detectors scan everything.
_POSITION_LIMIT = 64


class TokenScanner:
    """Runs the catalogue over a text; built once, reused for every scan."""

    def __init__(self, detectors: tuple[Detector, ...] = DETECTORS, disabled: frozenset[str] = frozenset()):
        self.detectors = tuple(d for d in detectors if d.id not in disabled)
        self._by_anchor: dict[str, list[int]] = {}
        for index, det in enumerate(self.detectors):
            for anchor in det.anchors:
                self._by_anchor.setdefault(anchor, []).append(index)
        self._always = tuple(self._by_anchor.pop(_ALWAYS, ()))
        self._probes = _build_probes(set(self._by_anchor))
        self.needs_lowered = any(d.lowered for d in self.detectors)

    def present_anchors(self, text: str) -> dict[str, list[int] | None]:
        """Each anchor that occurs in ``text``, with where it starts (None: too often to list)."""
        found: dict[str, list[int] | None] = {}

        def note(anchor: str, position: int) -> None:
            positions = found.setdefault(anchor, [])
            if positions is not None:
                if len(positions) >= _POSITION_LIMIT:
                    found[anchor] = None
                else:
                    positions.append(position)

        for probe in self._probes:
            if probe.pattern is None:
                anchor = probe.anchors[0]
                at = text.find(anchor)
                while at >= 0 and found.get(anchor, []) is not None:
                    note(anchor, at)
                    at = text.find(anchor, at + 1)
                continue
            seen = 0
            for m in probe.pattern.finditer(text):
                seen += 1
                if seen > _POSITION_LIMIT * 2:
                    for anchor in probe.anchors:
                        if anchor in text:
                            found[anchor] = None
                    break
                if probe.matches_anchor:
                    note(m.group(), m.start())
                    continue
                for anchor in probe.anchors:
                    if text.startswith(anchor, m.end() - len(anchor)):
                        note(anchor, m.end() - len(anchor))
        return found

    def scan(self, text: str, lowered: str | None = None,
             fences: frozenset[int] = frozenset()) -> list[tuple[int, int, Detector, str, str]]:
        """``(start, end, detector, id, name)`` for every value found (the id may be a more
        specific one than the detector's own, e.g. a GCP key found by the private-key detector);
        ``fences`` as in ``Detector.spans``.

        A detector whose anchors occur only a few times runs in windows around them rather than
        over the whole text, so a large file with one token costs one short match, not a pass.
        """
        present = self.present_anchors(text)
        positions: dict[int, list[int] | None] = {i: None for i in self._always}
        for anchor, where in present.items():
            for index in self._by_anchor[anchor]:
                if where is None or positions.get(index, []) is None:
                    positions[index] = None
                else:
                    positions.setdefault(index, []).extend(where)  # type: ignore[union-attr]
        low = text
        if any(self.detectors[i].lowered for i in positions):
            low = lowered if lowered is not None else ascii_lower(text)
        hits: list[tuple[int, int, Detector, str, str]] = []
        size = len(text)
        for index in sorted(positions):
            det = self.detectors[index]
            hay = low if det.lowered else text
            where = positions[index]
            if where is None:
                spans = det.spans(text, hay, fences=fences)
            else:
                spans = []
                for start, end in _windows(where, det.window, size):
                    spans.extend(det.spans(text, hay, start, end, fences))
                spans = list(dict.fromkeys(spans))
            for start, end, id_, name in spans:
                hits.append((start, end, det, id_, name))
        return hits


def _windows(positions: list[int], window: tuple[int, int], size: int) -> list[tuple[int, int]]:
    before, after = window
    return merge((max(0, position - before), min(size, position + after)) for position in positions)


@functools.lru_cache(maxsize=1)
def _default_scanner() -> TokenScanner:
    return TokenScanner()


def token_format(text: str) -> str | None:
    """The name of the well-known token format ``text`` is (a manifest value that should have
    been a variable's name or a host variable), or None."""
    if len(text) < 16:  # shorter than any format in the catalogue: no need to build the scanner
        return None
    for start, end, _detector, _id, name in _default_scanner().scan(text):
        if end - start >= len(text.strip()) // 2:  # mostly that token, not a name mentioning one
            return name
    return None
