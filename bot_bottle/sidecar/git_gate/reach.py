"""Which objects a fetch may be sent: only those the refs the gate shows reach.

git's upload-pack (protocol v0, with ``uploadpack.allowReachableSHA1InWant``, which a partial
clone's lazy fetches need) checks that a wanted *commit* is reachable from a ref, but sends any
blob, tree or tag object to whoever names its id. The mirror keeps every object it ever fetched
(nothing collects them: a running clone may be reading them), so the content of a branch or tag
deleted upstream (a secret taken down) would stay one ``want`` away. The gate checks each wanted
id itself, against the refs as they are when the request is served, before git runs:

- a tip the advertisement shows (a ref's object, or what a tag peels to): served, nothing walked
  (every ordinary clone and fetch wants only these);
- a commit: ``rev-list <commits> --not <tips>``, a walk of commits alone that stops where the
  histories meet;
- a tree, blob or tag object: looked up in the set of every object the tips reach (``rev-list
  --objects``), walked once per state of the refs and kept while they stay so: a partial clone
  asks for blobs batch after batch (checkout, ``log -p``, blame). A repository too large to keep
  that set (``MAX_CACHED_OBJECTS``, all repos together; the oldest walk kept goes first) is walked
  on each such request, stopping at the last id found.
Anything else (an id the mirror lacks, one no tip reaches, a check that ran out of time) is
refused. Replace refs are ignored throughout: the ids checked are the ids sent.

A fetch's ``have`` and ``shallow`` lines are checked too (``hidden``): upload-pack acknowledges a
``have`` of any object it holds ("ACK <id> common"), and dies on a ``shallow`` line naming one
that is not a commit, so a hidden object would answer whether it exists. Only commits the shown
refs reach are kept (a client's haves and shallows are commits of its history): git reads the
others no more than it reads an id it lacks.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.sidecar.git_gate import proc, upstream

# The most object ids kept, all repos together (about 105 bytes each: ~30 MB at most; measured on
# 164,504 objects, 17 MB). A repository of 5,000 commits and 2,000 files holds ~42,000 objects.
MAX_CACHED_OBJECTS = 300_000
# One check (the object walk of a large repository) may take this long; past it the fetch is
# refused, and the agent told why.
CHECK_TIMEOUT = 300.0


class CheckFailed(Exception):
    """The check itself could not run (a git failed or ran out of time): refuse, and say so."""


@dataclass(frozen=True)
class Refs:
    """The refs a request is checked against: ``values`` (what each ref and HEAD hold),
    ``shown`` (those and what the tags peel to: every id the advertisement names) and
    ``entries`` (each name and its id as ``show-ref --head --dereference`` lists them, a tag's
    peeled id under ``<name>^{}``: what a view frozen at these refs holds)."""

    values: tuple[str, ...]
    shown: frozenset[str]
    entries: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Walked:
    values: tuple[str, ...]
    objects: set[bytes]  # raw ids (a third of the memory of hex text); never changed once kept


class Reachability:
    """Checks wanted ids against a mirror's refs; keeps each repo's walked object set (``_guard``
    guards the dict of them, a per-repo lock each walk)."""

    def __init__(self, max_cached: int = MAX_CACHED_OBJECTS) -> None:
        self.max_cached = max_cached
        self._walked: dict[Path, _Walked] = {}  # oldest first
        self._locks: dict[Path, threading.Lock] = {}
        self._guard = threading.Lock()

    def unreachable(self, git_dir: Path, wanted: Sequence[str], refs: Refs | None = None) -> list[str]:
        """The wanted ids no ref reaches (in the order asked), or ``CheckFailed``; against
        ``refs`` if given, else the mirror's refs as they are now."""
        refs = read_refs(git_dir) if refs is None else refs
        pending = [oid for oid in dict.fromkeys(wanted) if oid not in refs.shown]
        if not pending:
            return []
        kinds = object_types(git_dir, pending)
        commits = [oid for oid in pending if kinds.get(oid) == "commit"]
        others = [oid for oid in pending if kinds.get(oid) in ("tree", "blob", "tag")]
        refused = {oid for oid in pending if oid not in commits and oid not in others}  # missing
        refused |= unreachable_commits(git_dir, commits, refs.values)
        refused |= self._unreachable_objects(git_dir, others, refs.values)
        return [oid for oid in pending if oid in refused]

    def _unreachable_objects(self, git_dir: Path, oids: list[str], values: tuple[str, ...]) -> set[str]:
        if not oids:
            return set()
        with self._lock(git_dir):
            with self._guard:
                walked = self._walked.get(git_dir)
            if walked is not None and walked.values == values:
                return {oid for oid in oids if bytes.fromhex(oid) not in walked.objects}
            return self._walk(git_dir, oids, values)

    def _walk(self, git_dir: Path, oids: list[str], values: tuple[str, ...]) -> set[str]:
        """The ids of ``oids`` the refs do not reach, by walking all they reach; the walked set
        is kept for the next request unless it grows past ``max_cached`` (then the walk stops
        at the last of ``oids`` found)."""
        with self._guard:
            self._walked.pop(git_dir, None)  # the refs moved: what was walked before proves nothing now
        left = set(oids)
        objects: set[bytes] | None = set()
        with contextlib.closing(reached(git_dir, values)) as walk:
            for oid in walk:
                left.discard(oid)
                if objects is not None:
                    objects.add(bytes.fromhex(oid))
                    if len(objects) > self.max_cached:
                        objects = None  # too many to keep: from here on, only the asked ids count
                if objects is None and not left:
                    break  # closing the walk stops git
        if objects is not None:
            self._keep(git_dir, _Walked(values, objects))
        return left

    def _keep(self, git_dir: Path, walked: _Walked) -> None:
        """Keep ``walked``, dropping the oldest other repos' walks past ``max_cached`` in all."""
        with self._guard:
            self._walked[git_dir] = walked
            while sum(len(w.objects) for w in self._walked.values()) > self.max_cached:
                oldest = next(path for path in self._walked if path != git_dir)
                del self._walked[oldest]

    def _lock(self, git_dir: Path) -> threading.Lock:
        # One walk per repo at a time: a second request waits and then uses the first one's set.
        with self._guard:
            return self._locks.setdefault(git_dir, threading.Lock())


def _env(git_dir: Path) -> dict[str, str]:
    return upstream.clean_env({"GIT_DIR": str(git_dir), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
                               "GIT_NO_REPLACE_OBJECTS": "1"})


def _git(git_dir: Path, args: Sequence[str], stdin: str = "") -> tuple[int, str]:
    try:
        result = proc.run(["git", *args], input=stdin.encode("ascii"), env=_env(git_dir), timeout=CHECK_TIMEOUT)
    except proc.TimedOut as exc:
        raise CheckFailed(str(exc)) from exc
    return result.returncode, result.stdout.decode("ascii", "replace")


def read_refs(git_dir: Path) -> Refs:
    """What the advertisement shows now: HEAD, every ref, and each tag's peeled object."""
    code, out = _git(git_dir, ["show-ref", "--head", "--dereference"])
    if code not in (0, 1):  # 1: no refs at all (an empty mirror shows nothing)
        raise CheckFailed(f"git show-ref failed with status {code}")
    values, shown, entries = [], set(), []
    for line in out.splitlines():
        oid, _, name = line.partition(" ")
        shown.add(oid)
        entries.append((name, oid))
        if not name.endswith("^{}"):
            values.append(oid)
    return Refs(tuple(sorted(set(values))), frozenset(shown), tuple(entries))


def hidden(git_dir: Path, refs: Refs, oids: Sequence[str]) -> set[str]:
    """The ids of ``oids`` that are neither an id ``refs`` show nor a commit they reach: ids the
    mirror lacks, trees and blobs, tags and commits no ref reaches. Shown ids cost nothing; the rest one ``cat-file`` and one
    commit walk that stops where the histories meet. ``CheckFailed`` if a git fails."""
    pending = [oid for oid in dict.fromkeys(oids) if oid not in refs.shown]
    if not pending:
        return set()
    kinds = object_types(git_dir, pending)
    commits = [oid for oid in pending if kinds.get(oid) == "commit"]
    return (set(pending) - set(commits)) | unreachable_commits(git_dir, commits, refs.values)


def object_types(git_dir: Path, oids: Sequence[str]) -> dict[str, str]:
    """id -> commit, tree, blob or tag; ids the mirror lacks are left out."""
    code, out = _git(git_dir, ["cat-file", "--batch-check=%(objectname) %(objecttype)"], "".join(f"{o}\n" for o in oids))
    if code != 0:
        raise CheckFailed(f"git cat-file failed with status {code}")
    kinds = {}
    for line in out.splitlines():
        oid, _, kind = line.partition(" ")
        if kind in ("commit", "tree", "blob", "tag"):
            kinds[oid] = kind
    return kinds


def unreachable_commits(git_dir: Path, commits: Sequence[str], values: Iterable[str]) -> set[str]:
    """The commits no ref value reaches: ``rev-list`` lists exactly those (and their history
    that no ref reaches either)."""
    if not commits:
        return set()
    stdin = "".join(f"{c}\n" for c in commits) + "".join(f"^{v}\n" for v in values)
    code, out = _git(git_dir, ["rev-list", "--stdin"], stdin)
    if code != 0:
        raise CheckFailed(f"git rev-list failed with status {code}")
    return set(out.split()) & set(commits)


def reached(git_dir: Path, values: Sequence[str]) -> Iterator[str]:
    """The ids of every object the ref values reach (``rev-list --objects``: each commit, then
    the trees and blobs it adds, newest first). Close it to stop the walk early. A git that fails
    or runs out of time is ``CheckFailed``."""
    if not values:
        return
    args = ["git", "rev-list", "--objects", "--no-object-names", "--in-commit-order", "--stdin"]
    try:
        with proc.Stream(args, timeout=CHECK_TIMEOUT, input="".join(f"{v}\n" for v in values).encode("ascii"),
                         env=_env(git_dir)) as walk:
            for line in walk.stdout:
                yield line.strip().decode("ascii")
            code, err = walk.finish()
    except proc.TimedOut as exc:
        raise CheckFailed(str(exc)) from exc
    if code != 0:
        raise CheckFailed(f"git rev-list --objects failed: {err[-200:]}")


@functools.lru_cache(maxsize=64)
def hex_length(git_dir: Path) -> int:
    """How many hex digits an object id has in this mirror (40, or 64 for SHA-256)."""
    code, out = _git(git_dir, ["rev-parse", "--show-object-format"])
    return 64 if code == 0 and out.strip() == "sha256" else 40
