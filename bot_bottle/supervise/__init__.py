"""The supervise plane's host half: the store, the proposal state machine, the link to each
bottle's sidecar, applying decisions, and the ``bot-bottle supervise`` console.

See docs/supervise.md. The sidecar half (spool, ctl verbs, MCP server) is
``bot_bottle.sidecar.supervise``; the two meet only through ``docker exec`` on the sidecar
container, a channel the agent cannot reach.
"""

# What an operator's reason may hold (``proposals.check_reason``): the agent reads it, and the
# audit log keeps it. Here, not in ``proposals``, so the command line's help can say it without
# loading the sidecar channel at every start of bot-bottle.
MAX_REASON_CHARS = 4000  # as much as an agent's justification may hold
