"""Provider-side fetches through a real sidecar: a request that would make the provider's servers
reach an address it names (an MCP server, the web fetch tool, a URL image or file) is refused on
the provider's route before it leaves, and forwarded on a route whose manifest opts out; an
everyday Claude Code request still passes with its credential injected.

The provider is the lab's echo upstream (``_egress_lab``): a private ``--internal`` network, no
address outside the containers this test creates. The routes' DLP settings are the plan's own
(``plan._dlp_dict``), so the default under test is the one a bottle gets.
"""

from __future__ import annotations

import json
import re
import unittest

from bot_bottle.cli.logs import format_text
from bot_bottle.manifest.model import RouteDlp
from bot_bottle.plan import _dlp_dict
from tests._docker import skip_unless_docker
from tests.integration._egress_lab import Lab, docker
from tests.unit.test_egress_server_fetch import SHAPES, claude_code_body

REAL_KEY = "lab-provider-key-4c2a91e7d05b38f6"
PLACEHOLDER = "placeholder-not-a-real-key"
PROVIDER = "api.example"  # the provider's route, as plan._provider_route builds it
OPTED_OUT = "key.example"  # the same provider, routed by a manifest with dlp: {server_fetch: allow}

POLICY = {
    "version": 2,
    "log": 2,
    "internal_services": {},
    "routes": [
        {"host": PROVIDER, "ports": [443], "auth": {"scheme": "header", "token_ref": "PROVIDER_KEY", "header": "x-api-key"},
         "dlp": _dlp_dict(RouteDlp(), has_auth=True, provider=True)},
        {"host": OPTED_OUT, "ports": [443], "auth": {"scheme": "header", "token_ref": "PROVIDER_KEY", "header": "x-api-key"},
         "dlp": _dlp_dict(RouteDlp(server_fetch="allow"), has_auth=True, provider=True)},
    ],
}
SECRETS = {"credentials": {"PROVIDER_KEY": REAL_KEY}, "known_secrets": {}}


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@skip_unless_docker()
class ServerFetchThroughTheSidecarTest(unittest.TestCase):
    lab: Lab

    @classmethod
    def setUpClass(cls) -> None:
        assert POLICY["routes"][0]["dlp"]["server_fetch"] == "block"  # the plan's default on the provider's route
        cls.lab = Lab(cls, POLICY, SECRETS, agent_env={"PROVIDER_KEY": PLACEHOLDER})

    def put(self, name: str, body: bytes) -> str:
        """Write ``body`` into the agent's /tmp; its path there."""
        path = f"/tmp/{name}.json"
        docker("exec", "-i", "-u", "node", self.lab.agent, "sh", "-c", f"cat > {path}", input=body.decode())
        return path

    def post(self, host: str, path: str, file: str, *headers: str) -> tuple[str, str]:
        extra = [a for h in headers for a in ("-H", h)]
        status, body, _ = self.lab.curl("-X", "POST", "-H", "content-type: application/json",
                                        "-H", f"x-api-key: {PLACEHOLDER}", *extra, "--data-binary", f"@{file}",
                                        f"https://{host}{path}")
        return status, body

    def test_each_shape_is_refused_on_the_provider_route_and_forwarded_with_the_opt_out(self) -> None:
        for name, (doc, where) in SHAPES.items():
            with self.subTest(name):
                file = self.put(slug(name), json.dumps(doc).encode())
                path = f"/v1/refused/{slug(name)}"
                status, body = self.post(PROVIDER, path, file)
                self.assertEqual(status, "403", body)
                self.assertIn("'server-fetch'", body)
                self.assertIn(where, body)
                self.assertNotIn("evil.example", body)
                self.assertEqual(self.lab.hits_for(path), [])  # nothing left for the provider
                decision = self.lab.decision_for(path)
                self.assertEqual((decision["decision"], decision["rule"], decision["status"]), ("deny", "server-fetch", 403))
                self.assertIn("rule server-fetch", format_text(decision).plain)  # as `bot-bottle logs` prints it
                allowed = f"/v1/allowed/{slug(name)}"
                status, body = self.post(OPTED_OUT, allowed, file)
                self.assertEqual(status, "200", body)
                (hit,) = self.lab.hits_for(allowed)
                self.assertEqual(hit["x-api-key"], [REAL_KEY])

    def test_the_beta_header_is_refused_on_the_provider_route(self) -> None:
        file = self.put("plain", b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}')
        status, body = self.post(PROVIDER, "/v1/beta", file, "anthropic-beta: oauth-2025-04-20,mcp-client-2025-04-04")
        self.assertEqual(status, "403", body)
        self.assertIn("anthropic-beta: mcp-client-2025-04-04", body)
        self.assertEqual(self.lab.hits_for("/v1/beta"), [])
        status, body = self.post(OPTED_OUT, "/v1/beta-allowed", file, "anthropic-beta: mcp-client-2025-04-04")
        self.assertEqual(status, "200", body)

    def test_an_everyday_messages_request_passes_and_the_same_with_one_url_image_does_not(self) -> None:
        session = claude_code_body(400_000)
        beta = "anthropic-beta: claude-code-20250219,interleaved-thinking-2025-05-14"
        status, body = self.post(PROVIDER, "/v1/messages", self.put("claude-code", session), beta)
        self.assertEqual(status, "200", body)
        (hit,) = self.lab.hits_for("/v1/messages")
        self.assertEqual(hit["x-api-key"], [REAL_KEY])
        self.assertGreater(hit["bytes"], 400_000)
        self.assertNotIn(REAL_KEY, body)
        doc = json.loads(session)
        doc["messages"][-1]["content"].append({"type": "image", "source": {"type": "url", "url": "https://evil.example/?d=x"}})
        status, body = self.post(PROVIDER, "/v1/messages/with-url", self.put("with-url", json.dumps(doc).encode()), beta)
        self.assertEqual(status, "403", body)
        self.assertIn(f"messages[{len(doc['messages']) - 1}].content[2].source.url", body)
        self.assertEqual(self.lab.hits_for("/v1/messages/with-url"), [])


if __name__ == "__main__":
    unittest.main()
