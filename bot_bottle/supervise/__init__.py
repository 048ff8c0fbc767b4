"""The supervise plane's host half: the store, the proposal state machine, the link to each
bottle's sidecar, applying decisions, and the ``bot-bottle supervise`` console.

See docs/supervise.md. The sidecar half (spool, ctl verbs, MCP server) is
``bot_bottle.sidecar.supervise``; the two meet only through ``docker exec`` on the sidecar
container, a channel the agent cannot reach.
"""
