"""A fetch served from the refs it was checked against, not from the mirror's refs of the moment.

The gate checks a fetch's ``want`` lines (and drops its hidden ``have`` and ``shallow`` lines)
against the mirror's refs as it reads them; upload-pack reads the refs again when it starts, and
a refresh may move them in between (a branch deleted upstream, another request's push). git
would then answer from a mix of the two: commits re-checked against its own read, blobs, trees
and tag objects sent on the gate's check alone, the rest negotiated against refs the gate never
saw. So each fetch's upload-pack runs in a repository of its own, made for the request and
removed after it: its refs are exactly those checked (one ``packed-refs`` file), its HEAD their
HEAD, its objects the mirror's (``objects/info/alternates``), its config a copy of the mirror's.
Nothing in it is changed by a refresh or a push, so the request is served wholly as of the
gate's check: a branch deleted after that check is served to that one request as checked (as to
a fetch whose pack was already streaming) and hidden from the next. Making one writes five small
files; no git runs.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from bot_bottle.sidecar.git_gate.reach import Refs

# ``peeled fully-peeled``: every annotated tag's peeled id follows it on a ``^`` line, and a ref
# without one is not an annotated tag (git need not open any object to know).
PACKED_REFS_HEADER = "# pack-refs with: peeled fully-peeled sorted \n"


def packed_refs(refs: Refs) -> str:
    """A ``packed-refs`` file holding exactly the refs of ``refs`` (HEAD aside), sorted by name."""
    values = {name: oid for name, oid in refs.entries if name.startswith("refs/") and not name.endswith("^{}")}
    peeled = {name[: -len("^{}")]: oid for name, oid in refs.entries if name.endswith("^{}")}
    lines = [PACKED_REFS_HEADER]
    for name in sorted(values, key=lambda n: n.encode("utf-8")):
        lines.append(f"{values[name]} {name}\n")
        if name in peeled:
            lines.append(f"^{peeled[name]}\n")
    return "".join(lines)


def head(refs: Refs, mirror: Path) -> str:
    """The view's HEAD: the id the mirror's HEAD held when the refs were read (detached: it
    cannot move), or the mirror's HEAD file as it is when it named no commit then (unborn)."""
    for name, oid in refs.entries:
        if name == "HEAD":
            return f"{oid}\n"
    return (mirror / "HEAD").read_text(encoding="utf-8")


@contextlib.contextmanager
def frozen(mirror: Path, refs: Refs, views: Path) -> Iterator[Path]:
    """A project root (for ``GIT_PROJECT_ROOT``) holding a repository of ``mirror``'s name that
    shows exactly ``refs`` over ``mirror``'s objects; removed when the block ends."""
    root = views / uuid.uuid4().hex
    repo = root / mirror.name
    try:
        (repo / "refs").mkdir(parents=True)
        (repo / "objects" / "info").mkdir(parents=True)
        (repo / "objects" / "info" / "alternates").write_text(f"{(mirror / 'objects').resolve()}\n", encoding="utf-8")
        shutil.copyfile(mirror / "config", repo / "config")
        (repo / "packed-refs").write_text(packed_refs(refs), encoding="utf-8")
        (repo / "HEAD").write_text(head(refs, mirror), encoding="utf-8")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def remove_all(views: Path) -> None:
    """Remove views a gate killed mid-fetch left behind (at start: no fetch is running then)."""
    shutil.rmtree(views, ignore_errors=True)
    views.mkdir(parents=True, exist_ok=True)
    views.chmod(0o700)
