"""The supervise plane's sidecar half: the MCP server the agent asks through, the spool where its
proposals wait for the operator's decisions, and the grants the proxy and the git-gate read.

See docs/supervise.md. Stdlib only (``server.py`` speaks MCP through ``mcp_http``, run by the
sidecar's system Python): ``channel`` and ``ctl`` are imported on the host too.
"""
