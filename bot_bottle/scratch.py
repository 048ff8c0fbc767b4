"""Private temporary folders on the host, named after the process that made them.

A launch writes a bottle's secrets (the sidecar's credentials, the agent's secret env) to a
mode-700 temporary folder for the moment it takes to copy them in. If the launching process is
killed outright (SIGKILL: no ``finally`` runs), that folder would stay behind with the secrets in
it; the name carries the owner's identity (pid and start time, as the Docker objects' owner
label does), so ``bot-bottle cleanup`` finds the folders whose owner is gone and removes them.
They live in the system's temporary folder, never under the user's home (often backed up).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot_bottle import proc

PREFIX = "bot-bottle-"
_NAME = re.compile(r"^bot-bottle-(\d+)\.(\d+|\?)-")


@contextmanager
def private_dir() -> Iterator[Path]:
    """A mode-700 folder removed when the block ends (also when it raises)."""
    owner = proc.identity().replace(":", ".")
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}{owner}-", dir=temp_root()) as tmp:
        yield Path(tmp)


def temp_root() -> str:
    """The system's temporary folder, as ``tempfile.gettempdir`` picks it (``TMPDIR`` first),
    without its probe when ``TMPDIR`` names a folder: on first use Python writes and removes a
    file of a random name there to test it, and a launch killed in between would leave it behind
    with no name ``cleanup`` could know."""
    if tempfile.tempdir is None:
        named = os.environ.get("TMPDIR")
        if named and os.path.isdir(named):
            return os.path.abspath(named)
    return tempfile.gettempdir()


def orphans(root: Path | None = None) -> list[Path]:
    """This user's private folders whose making process is gone."""
    folder = Path(root) if root is not None else Path(temp_root())
    found = []
    for path in sorted(folder.glob(PREFIX + "*")):
        match = _NAME.match(path.name)
        try:
            ours = match is not None and not path.is_symlink() and path.is_dir() and path.stat().st_uid == os.getuid()
        except OSError:
            continue
        if ours and not proc.is_alive(f"{match.group(1)}:{match.group(2)}"):
            found.append(path)
    return found
