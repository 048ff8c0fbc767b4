"""The supervise plane's sidecar half: the MCP server the agent asks through, the spool where its
proposals wait for the operator's decisions, and the grants the proxy and the git-gate read.

See docs/supervise.md. Stdlib only, except ``server.py`` (the ``mcp`` SDK, in its own venv):
``channel`` and ``ctl`` are imported on the host too.
"""
