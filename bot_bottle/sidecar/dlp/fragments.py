"""Pieces of the bottle's secrets seen leaving, remembered across requests.

A scan judges one request; an agent that sends the first half of a secret in one request and the
second half in the next passes every per-request check. ``FragmentMemory`` keeps, per secret, which
character ranges have already left (in requests that were let through) and reports the request
whose fragments would complete it.

Finding fragments: each secret is cut into aligned blocks of ``BLOCK`` characters; every block
is searched for in the text (``str.find``, fast) and each occurrence is grown left and right
while text and secret agree. Any run of ``2 * BLOCK - 1`` characters of the secret contains a
whole aligned block, so every fragment of ``MIN_FRAGMENT`` characters or more is found. Shorter
fragments are not counted: four random characters turn up everywhere, eight essentially never.
The piece that ends a secret counts from ``MIN_TAIL_FRAGMENT`` characters (the secret's last
``BLOCK`` characters are a block of their own, so it is found at any length): else a secret cut
9/9/7 left with its last piece uncounted. Its start keeps the longer minimum: it is often a
token format's fixed prefix (``ghp_``, ``sk-ant-api03-``) that ordinary text mentions. Only for
secrets of ``MIN_TAIL_SECRET`` characters or more, where a tail found by chance leaves too much
of it unsent to count as sent.

"Complete" allows a small remainder (``tolerance``): the request that leaves fewer than that
many characters of a secret unsent is the one refused, so dropping the last few characters
does not get a secret out. What remains unknown to an outsider is at least that remainder.

Searching for each block costs a pass over the text per block: tens of ms per MiB for a few
secrets. With many blocks, ``find`` instead reads the text once as 4-byte words, one every fourth
character, and looks them up in the set of every 4-character substring of the secrets: a piece
of ``MIN_FRAGMENT`` characters, wherever it starts, holds one such word, so only the places where
a word matched are grown, and the same pieces are found.

The memory holds positions (ranges inside each secret), never secret text.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

BLOCK = 4
MIN_FRAGMENT = 2 * BLOCK  # every run this long holds a whole aligned block (2 * BLOCK - 1 would do)
# The piece at the end of a secret: a block and one more character (the neighbour test in
# ``find`` needs the one). Five characters of a random value turn up by chance about once in 10^9
# positions, and such a piece only completes a secret most of which left already.
MIN_TAIL_FRAGMENT = BLOCK + 1
MIN_TAIL_SECRET = 16
# Candidate pieces grown per secret in one text before the text counts as all of that secret.
GROW_BUDGET = 20_000
# Searching for each block costs about 0.75 ms per MiB of text, the word pass about 11: with more
# blocks than this (beyond one per secret, for its last block), the word pass is cheaper.
WORD_PASS_FINDS = 16
# Text per word-set lookup in the word pass: a chunk whose words meet the secrets' is searched
# for those words, so a chance match costs a search of one chunk, not of the whole text.
WORD_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Fragment:
    """``text[start:end] == secret[secret_start:secret_end]`` for the secret named ``secret_name``."""

    secret_name: str
    start: int
    end: int
    secret_start: int
    secret_end: int


def tolerance(length: int) -> int:
    """Characters of a ``length``-character secret that may stay unsent before it counts as sent."""
    return min(MIN_FRAGMENT - 1, length // 4)


class FragmentIndex:
    """The aligned blocks of each secret, built once. Holds values; ``repr`` shows names only."""

    def __init__(self, secrets: Iterable[tuple[str, str]]) -> None:
        self._secrets: list[tuple[str, str, dict[str, list[int]]]] = []
        for name, value in secrets:
            if len(value) <= MIN_FRAGMENT:
                continue  # no piece of it is long enough to count: only whole matches do
            blocks: dict[str, list[int]] = {}
            for at in range(0, len(value) - BLOCK + 1, BLOCK):
                blocks.setdefault(value[at:at + BLOCK], []).append(at)
            tail = len(value) - BLOCK
            if len(value) >= MIN_TAIL_SECRET and tail % BLOCK:  # an aligned block ends it otherwise
                blocks.setdefault(value[tail:], []).append(tail)
            self._secrets.append((name, value, blocks))
        # Every 4-character substring of every secret, as the word ``_word_pass`` reads it, ->
        # (secret, where in it).
        self._words: dict[int, list[tuple[int, int]]] = {}
        for index, (_, value, _) in enumerate(self._secrets):
            data = _latin1(value)
            for at in range(len(data) - BLOCK + 1):
                self._words.setdefault(_word(data[at:at + BLOCK]), []).append((index, at))
        self._word_set = frozenset(self._words)

    def __repr__(self) -> str:
        return f"FragmentIndex({[name for name, _, _ in self._secrets]})"

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def lengths(self) -> dict[str, int]:
        return {name: len(value) for name, value, _ in self._secrets}

    def find(self, text: str, skip: frozenset[str] | set[str] = frozenset()) -> list[Fragment]:
        """Every maximal run of ``MIN_FRAGMENT`` or more characters of a secret found in ``text``
        (secrets named in ``skip`` are not looked for).

        Every occurrence of every block is looked at: a cap would let decoys placed before a real
        piece hide it. A neighbour test skips most occurrences at the cost of two comparisons;
        the rest are grown, at most ``GROW_BUDGET`` times per secret. A text that needs more is
        made of pieces of that secret (a random secret's 5-character pieces do not turn up by
        chance), and is reported as covering all of it, so it is refused, never waved through.
        With many blocks to search for, the word pass finds the same pieces at less cost.
        """
        wanted = [i for i, (name, _, _) in enumerate(self._secrets) if name not in skip]
        finds = sum(len(self._secrets[i][2]) for i in wanted)
        if finds <= WORD_PASS_FINDS + len(wanted):
            out: list[Fragment] = []
            for i in wanted:
                out += self._block_search(text, i)
            return out
        return self._word_pass(text, wanted)

    def _block_search(self, text: str, index: int) -> list[Fragment]:
        """One secret's pieces, found by searching the text for each of its blocks."""
        name, value, blocks = self._secrets[index]
        out: list[Fragment] = []
        end = len(text)
        seen: set[tuple[int, int]] = set()
        grows = 0
        for block, positions in blocks.items():
            at = text.find(block)
            while at >= 0 and grows <= GROW_BUDGET:
                for pos in positions:
                    # A piece longer than a block extends past it on some side.
                    if not _neighbour(text, at, value, pos):
                        continue
                    grows += 1
                    fragment = _grow(text, at, value, pos, name)
                    if fragment is None or (fragment.start, fragment.secret_start) in seen:
                        continue
                    seen.add((fragment.start, fragment.secret_start))
                    out.append(fragment)
                at = text.find(block, at + 1)
            if grows > GROW_BUDGET:
                out.append(Fragment(name, 0, end, 0, len(value)))
                break
        return out

    def _word_pass(self, text: str, wanted: list[int]) -> list[Fragment]:
        """The pieces of many blocks' worth of secrets in one pass instead of a find per block.

        The text is read as 4-byte words (its latin-1 form, "?" for characters past it, as the
        secrets' words are), one every fourth character: a piece of ``MIN_FRAGMENT`` characters,
        wherever it starts, holds a whole one. A chunk of the text whose words meet the secrets'
        is searched for those words only, and each one there is grown as a block is. The short
        piece that ends a secret need not hold a whole word: its last block is searched for.
        """
        state = _WordState(self._secrets, set(wanted), len(text))
        for lo in range(0, len(text), WORD_CHUNK):  # a chunk at a time: no copy of a large text
            data = _latin1(text[lo:lo + WORD_CHUNK])
            data += b"\x00" * (-len(data) % BLOCK)
            for word in self._word_set.intersection(memoryview(data).cast("I")):
                self._grow_word(text, data, word, lo, state)
        for index in wanted:
            _, value, _ = self._secrets[index]
            if len(value) >= MIN_TAIL_SECRET and index not in state.done:
                self._grow_tail(text, index, state)
        return state.fragments()

    def _grow_word(self, text: str, data: bytes, word: int, lo: int, state: _WordState) -> None:
        """Grow each place of ``word`` in ``data``, the chunk of ``text`` starting at ``lo``."""
        needle = word.to_bytes(BLOCK, sys.byteorder)
        places = [(i, pos) for i, pos in self._words[word] if i in state.wanted]
        at = data.find(needle)
        while at >= 0 and places:
            if at % BLOCK == 0:  # every piece holds a word here; a word elsewhere lies in one too
                for index, pos in places:
                    if index not in state.done and _neighbour(text, lo + at, self._secrets[index][1], pos):
                        state.grow(text, lo + at, index, pos)
                places = [(i, pos) for i, pos in places if i not in state.done]
            at = data.find(needle, at + 1)

    def _grow_tail(self, text: str, index: int, state: _WordState) -> None:
        _, value, _ = self._secrets[index]
        pos = len(value) - BLOCK
        at = text.find(value[pos:])
        while at >= 0 and index not in state.done:
            if _neighbour(text, at, value, pos):
                state.grow(text, at, index, pos)
            at = text.find(value[pos:], at + 1)


class _WordState:
    """What ``_word_pass`` found so far, per secret, and the grows it spent."""

    def __init__(self, secrets: list[tuple[str, str, dict[str, list[int]]]], wanted: set[int], end: int) -> None:
        self.secrets = secrets
        self.wanted = wanted
        self.end = end
        self.found: dict[int, dict[tuple[int, int], Fragment]] = {}
        self.grows: dict[int, int] = {}
        self.done: set[int] = set()  # over GROW_BUDGET: the whole secret

    def grow(self, text: str, at: int, index: int, pos: int) -> None:
        name, value, _ = self.secrets[index]
        self.grows[index] = self.grows.get(index, 0) + 1
        if self.grows[index] > GROW_BUDGET:
            self.done.add(index)
            self.found[index] = {(0, 0): Fragment(name, 0, self.end, 0, len(value))}
            return
        fragment = _grow(text, at, value, pos, name)
        if fragment is not None:
            self.found.setdefault(index, {}).setdefault((fragment.start, fragment.secret_start), fragment)

    def fragments(self) -> list[Fragment]:
        return [f for index in sorted(self.found) for _, f in sorted(self.found[index].items())]


def _latin1(text: str) -> bytes:
    """One byte per character (offsets kept); "?" for a character past latin-1, in the text as in
    a secret, so equal characters stay equal."""
    return text.encode("latin-1", "replace")


def _word(data: bytes) -> int:
    return int.from_bytes(data, sys.byteorder)


def _neighbour(text: str, at: int, value: str, pos: int) -> bool:
    """Whether the text and the secret also agree just before or just after a block's match."""
    return ((at > 0 and pos > 0 and text[at - 1] == value[pos - 1])
            or (at + BLOCK < len(text) and pos + BLOCK < len(value) and text[at + BLOCK] == value[pos + BLOCK]))


def _grow(text: str, at: int, value: str, pos: int, name: str) -> Fragment | None:
    left = 0
    while at - left > 0 and pos - left > 0 and text[at - left - 1] == value[pos - left - 1]:
        left += 1
    right = BLOCK
    while at + right < len(text) and pos + right < len(value) and text[at + right] == value[pos + right]:
        right += 1
    if left + right < _minimum(pos + right, len(value)):
        return None
    return Fragment(name, at - left, at + right, pos - left, pos + right)


def _minimum(end: int, length: int) -> int:
    """The fewest characters a piece ending at ``end`` of a ``length``-character secret counts from."""
    return MIN_TAIL_FRAGMENT if end == length and length >= MIN_TAIL_SECRET else MIN_FRAGMENT


def merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def covered(ranges: Sequence[tuple[int, int]]) -> int:
    return sum(end - start for start, end in ranges)


class FragmentMemory:
    """What has left so far, per secret name; one per proxy (one bottle). Thread-safe."""

    def __init__(self, lengths: dict[str, int]) -> None:
        self._lengths = dict(lengths)
        self._sent: dict[str, list[tuple[int, int]]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FragmentMemory({sorted(self._sent)})"

    def sent(self, name: str) -> int:
        """Characters of the secret ``name`` known to have left."""
        with self._lock:
            return covered(self._sent.get(name, []))

    def observe(self, fragments: Iterable[Fragment]) -> list[str]:
        """Record the fragments of one request and return the secrets it would complete.

        The fragments of a completed secret are not recorded: that request is refused (or its
        pieces redacted), so they do not leave, and the same pieces sent again are refused again.
        """
        by_name: dict[str, list[tuple[int, int]]] = {}
        for f in fragments:
            if f.secret_name in self._lengths:
                by_name.setdefault(f.secret_name, []).append((f.secret_start, f.secret_end))
        completed: list[str] = []
        with self._lock:
            for name, ranges in sorted(by_name.items()):
                length = self._lengths[name]
                union = merge([*self._sent.get(name, []), *ranges])
                if covered(union) >= length - tolerance(length):
                    completed.append(name)
                else:
                    self._sent[name] = union
        return completed
