"""Where the supervise MCP server listens and how long a call may wait.

Kept apart from ``server.py`` so the host (the plan, the agents' MCP
configuration) can name the endpoint without importing the server's asyncio
and HTTP machinery.
"""

from __future__ import annotations

PORT = 9430
SERVICE = "supervise"
PATH = "/mcp"
DEFAULT_TIMEOUT_S = 300
