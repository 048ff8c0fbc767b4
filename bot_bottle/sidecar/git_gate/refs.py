"""Ref updates of a push: what kind each one is, what it adds, how it is forwarded upstream.

A pre-receive hook reads one ``<old> <new> <ref>`` line per updated ref. What a push *adds* is
what must be scanned, and nothing else, so that history already published upstream (an old
secret since removed, say) never blocks new work:

- delete (new is all zeros): adds nothing;
- create (old is all zeros): ``new --not --all``, the commits no existing ref has;
- update: ``old..new``, also minus every commit another ref already has (``--not --all``): the
  mirror's refs are exactly the upstream's, so those commits are published already.

Forwarding repeats each update upstream as a compare-and-swap: ``--force-with-lease=ref:old``
(empty ``old`` for a create: the ref must not exist yet). The agent's git already refused a
non-fast-forward unless it was forced, against refs the gate had just fetched; the lease makes
sure the upstream still is what the agent saw, so a forced push stays forced and nothing the
agent never saw is overwritten.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

UpdateKind = Literal["create", "update", "delete"]
_OID_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


class RefUpdateError(ValueError):
    pass


@dataclass(frozen=True)
class RefUpdate:
    old: str
    new: str
    ref: str

    @property
    def kind(self) -> UpdateKind:
        if is_zero(self.new):
            return "delete"
        if is_zero(self.old):
            return "create"
        return "update"

    def rev_args(self) -> tuple[str, ...]:
        """``git rev-list`` arguments selecting the commits this update adds (none for a delete)."""
        if self.kind == "delete":
            return ()
        if self.kind == "create":
            return (self.new, "--not", "--all")
        return (self.new, f"^{self.old}", "--not", "--all")

    def lease(self) -> str:
        return f"--force-with-lease={self.ref}:{'' if self.kind == 'create' else self.old}"

    def refspec(self) -> str:
        return f":{self.ref}" if self.kind == "delete" else f"{self.new}:{self.ref}"


def is_zero(oid: str) -> bool:
    return set(oid) == {"0"}


def parse_updates(text: str) -> list[RefUpdate]:
    """The hook's stdin: ``<old> <new> <ref>`` per line."""
    updates = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or not _OID_RE.match(parts[0]) or not _OID_RE.match(parts[1]):
            raise RefUpdateError(f"line {number}: expected '<old> <new> <ref>'")
        if not parts[2].startswith("refs/"):
            raise RefUpdateError(f"line {number}: {parts[2]!r} is not a full ref name")
        updates.append(RefUpdate(old=parts[0], new=parts[1], ref=parts[2]))
    return updates


def added_rev_args(updates: Iterable[RefUpdate]) -> tuple[str, ...]:
    """One ``rev-list`` argument list for everything a whole push adds (empty when it adds nothing).

    Every ``old`` of an update is the tip of a ref the mirror has, so ``--not --all`` already
    excludes it; the positive tips of all updates are combined to list each commit once.
    """
    tips = [u.new for u in updates if u.kind != "delete"]
    if not tips:
        return ()
    unique = list(dict.fromkeys(tips))
    return (*unique, "--not", "--all")


def push_args(url: str, updates: Sequence[RefUpdate]) -> list[str]:
    """``git push`` arguments (after ``push``) that repeat ``updates`` at ``url``."""
    options = ["--porcelain", *(u.lease() for u in updates)]
    if len(updates) > 1:
        # All or nothing upstream, like the agent's push into the gate.
        options.insert(0, "--atomic")
    return [*options, url, *(u.refspec() for u in updates)]
