"""The supervise endpoint's constants, shared by the host and the sidecar's server."""

from __future__ import annotations

import subprocess
import sys
import unittest

from bot_bottle.backend import sidecar_config
from bot_bottle.provision import mcp
from bot_bottle.sidecar.supervise import endpoint, server


class EndpointTest(unittest.TestCase):
    def test_host_and_server_agree_on_the_endpoint(self) -> None:
        self.assertEqual((server.PORT, server.PATH, server.SERVICE), (endpoint.PORT, endpoint.PATH, endpoint.SERVICE))
        self.assertEqual(sidecar_config.SUPERVISE_PORT, endpoint.PORT)
        self.assertIn(f"{endpoint.SERVICE}.", mcp.SUPERVISE_URL)
        self.assertTrue(mcp.SUPERVISE_URL.endswith(endpoint.PATH))

    def test_the_agents_configuration_does_not_load_the_server(self) -> None:
        # The plan and start build the agents' MCP configuration on the host; the server's asyncio
        # and HTTP machinery cost them ~0.2 s of imports for four constants.
        code = ("import sys, bot_bottle.provision.mcp; "
                "print(sorted(m for m in ('asyncio', 'http.client', 'bot_bottle.sidecar.supervise.server') "
                "if m in sys.modules))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
        self.assertEqual(out.stdout.strip(), "[]")


if __name__ == "__main__":
    unittest.main()
