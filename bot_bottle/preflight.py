"""What `start` refuses before anything is built, judged on this host against the plan.

The plan lists each as "cannot start yet: ..." (``cli.common.build_plan``); the launch refuses
with the first (``lifecycle.run_bottle``), so nothing is half built when one holds.
"""

from __future__ import annotations

import os
from pathlib import Path

from bot_bottle.plan import BottlePlan
from bot_bottle.provision import workspace


def problems(plan: BottlePlan, home: Path) -> list[str]:
    found = []
    if plan.cwd is not None:
        refused = workspace.refused_tree(plan.cwd.resolve(), home.resolve())
        if refused:
            found.append(refused)
    for repo in plan.repos:
        key = repo.credential_ref if repo.auth == "ssh-key" else None
        if key and not os.access(Path(key).expanduser(), os.R_OK):
            found.append(f"git-gate repo {repo.name} ({repo.source}): its ssh_key {key} is not a readable file")
    return found
