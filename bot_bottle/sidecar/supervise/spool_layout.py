"""The supervise spool's folders and files, and who may write each (``channel`` describes them).

Its own module, with no imports, because the sidecar's init lays the spool out
(``init.hand_out_spool``) before it starts the egress proxy, and every module the init imports
by then delays the proxy's start; ``channel`` (and the asyncio it needs) is not one of them.
``channel`` takes these names as its own.
"""

from __future__ import annotations

GRANTS_FILE = "grants.json"
GRANTS_LOCK_FILE = ".grants.lock"  # the host's ``ctl`` only (no daemon takes it, none can hold it up)
# Held by ``ctl decide`` from its grant to its decision, and by ``Spool.expire``: a grant is
# never in force for a proposal an expiry is deciding meanwhile (see ``Spool.deciding``).
DECIDE_LOCK_FILE = ".decide.lock"
EXPIRED_DIR = "expired"
PUSH_USES_DIR = "push-uses"
PUSH_FINDINGS_DIR = "push-findings"
ARCHIVE_DIR = "archive"
PROPOSALS_DIR = "proposals"
DECISIONS_DIR = "decisions"

# Who may write where in the sidecar image's spool (root is the host's ``ctl``; the daemons are
# in the spool's group): folder -> (mode, owner). A sticky folder the group writes lets each
# account add files and rename or delete only its own; a folder the group only reads is its
# owner's. Files are 640 (``channel._file_mode``): nobody changes another account's file. The
# spool's own folder is root's, so only root makes ``grants.json`` and the lock files there.
SPOOL_MODE = 0o2750
SHARED_FOLDERS: dict[str, tuple[int, str]] = {
    PROPOSALS_DIR: (0o3770, "root"),  # the proxy's held requests, the MCP server's asks
    ARCHIVE_DIR: (0o3770, "root"),  # each expirer moves its own proposal here; ``ctl`` any
    EXPIRED_DIR: (0o3770, "root"),  # an expiry can only deny
    DECISIONS_DIR: (0o2750, "root"),
    PUSH_FINDINGS_DIR: (0o2750, "gate"),
    PUSH_USES_DIR: (0o2750, "gate"),
}
