"""The proxy's decisions out of a sidecar container, running or stopped (``docker cp``).

The proxy keeps its log in up to three parts (``sidecar.egress.logfile``): the first one,
``.first``, the earlier one, ``.1``, then the current one; read together, in that order, they are
the log (each later part's first line says how much was dropped before it).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bot_bottle import scratch
from bot_bottle.backend.docker import engine

SIDECAR_EGRESS_LOG = "/var/log/bottle/egress.jsonl"
PARTS = (SIDECAR_EGRESS_LOG + ".first", SIDECAR_EGRESS_LOG + ".1", SIDECAR_EGRESS_LOG)


def copy_out(container: str, target: Path) -> bool:
    """Both parts of ``container``'s log, in order, into ``target`` (mode 600); False (and no
    file written) when the container holds neither."""
    with scratch.private_dir() as tmp:
        parts = []
        for index, source in enumerate(PARTS):
            part = Path(tmp) / str(index)
            engine.run(["cp", f"{container}:{source}", str(part)], timeout=60, check=False)
            if part.is_file():
                parts.append(part)
        if not parts:
            return False
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out)
    os.chmod(target, 0o600)
    return True
