"""git-gate: the only way the agent's git reaches its declared remotes.

A smart-HTTP git server (git's own ``http-backend`` over one bare mirror per repo) that the
agent reaches through the egress proxy at ``git-gate.bottle.internal``; inside the agent, git is
configured so the repos' real URLs are rewritten to it (``bot_bottle.provision.git``).

- **Fetch** (``info/refs?service=git-upload-pack``): the mirror is first refreshed from the
  upstream (``git fetch --prune``), unless it was within the last ``mirror.FRESH_FOR`` seconds
  (the agent cannot make the gate spend the operator's rate limit upstream; concurrent requests
  share one refresh; nothing waits for it). When the upstream cannot be reached the agent's git
  fails with ``fatal: remote error: upstream NAME unreachable: ...``: a mirror older than that is
  never served. Only objects the branches and tags shown reach are sent, whatever ids the agent
  names (``reach``): what was deleted upstream stays out of reach though the mirror keeps it.
- **Push** (``git-receive-pack``): the mirror's pre-receive hook (``hook.py``) scans only what the
  push adds (commit objects whole, tag objects, ref names, file names, added lines, binary files
  whole) with the DLP engine, and gitleaks when it is on PATH. A finding rejects the whole push before anything goes upstream, naming commit,
  file, line and detector, never the secret. A clean push is forwarded upstream with the same
  ref updates, and the mirror accepts it only when the upstream did.
- **Credentials** (an SSH key with a pinned host key, or an HTTPS token) are files in the
  sidecar only; they are never put on an argv or in a log.

Modules: ``config`` (the JSON config), ``pktline`` (git's wire framing), ``body`` (request
bodies as they arrive), ``reach`` (which objects a fetch may be sent), ``upstream`` (talking
to the real remote), ``mirror`` (the local bare mirrors), ``refs`` (ref updates and the revision
ranges a push adds), ``piece`` (one text to scan and its place), ``objects`` (raw commit, tag and
blob objects), ``patch`` (what a range adds, as scannable pieces; ASCII stored as UTF-16 or
UTF-32 among other bytes is read with ``dlp.wide``), ``scan`` (detectors and findings), ``hook`` (the
pre-receive check), ``server`` (HTTP), ``__main__`` (the daemon's CLI).
Only the standard library and the ``git`` (and ``ssh``) executables are used.
"""
