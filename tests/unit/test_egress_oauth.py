"""Claude Pro/Max OAuth tokens: injected as a bearer token with the OAuth beta flag; API keys keep x-api-key."""

from __future__ import annotations

import copy
import json
import unittest

from bot_bottle.sidecar.egress.credentials import (
    ANTHROPIC_OAUTH_BETA,
    credential_headers,
    is_anthropic_oauth,
    merge_beta,
)
from bot_bottle.sidecar.egress.policy import RouteAuth
from tests.unit import test_sidecar_addon as addon_tests

OAUTH = "sk-ant-oat01-" + "Q" * 60 + "-AAAA"
API_KEY = "sk-ant-api03-" + "K" * 60 + "-BBBB"
ANTHROPIC = RouteAuth("header", "ANTHROPIC_API_KEY", "x-api-key")


class Shapes(unittest.TestCase):
    def test_oauth_token_goes_as_bearer_with_the_beta_flag(self) -> None:
        self.assertEqual(credential_headers(ANTHROPIC, OAUTH),
                         [("Authorization", f"Bearer {OAUTH}"), ("anthropic-beta", ANTHROPIC_OAUTH_BETA)])

    def test_api_key_keeps_x_api_key_and_the_agents_betas(self) -> None:
        self.assertEqual(credential_headers(ANTHROPIC, API_KEY, "claude-code-20250219"), [("x-api-key", API_KEY)])

    def test_agent_betas_are_kept_and_the_flag_added_once(self) -> None:
        headers = dict(credential_headers(ANTHROPIC, OAUTH, "claude-code-20250219, fine-grained-tool-streaming-2025-05-14"))
        self.assertEqual(headers["anthropic-beta"],
                         f"claude-code-20250219,fine-grained-tool-streaming-2025-05-14,{ANTHROPIC_OAUTH_BETA}")
        self.assertEqual(merge_beta(f"a,{ANTHROPIC_OAUTH_BETA}", ANTHROPIC_OAUTH_BETA), f"a,{ANTHROPIC_OAUTH_BETA}")
        self.assertEqual(merge_beta(None, "x"), "x")

    def test_a_bearer_route_gets_the_flag_too_other_schemes_are_left_alone(self) -> None:
        self.assertEqual(dict(credential_headers(RouteAuth("bearer", "T"), OAUTH))["anthropic-beta"], ANTHROPIC_OAUTH_BETA)
        self.assertEqual(credential_headers(RouteAuth("header", "T", "x-custom"), OAUTH), [("x-custom", OAUTH)])
        self.assertEqual(credential_headers(RouteAuth("token", "T"), OAUTH), [("Authorization", f"token {OAUTH}")])

    def test_shape(self) -> None:
        self.assertTrue(is_anthropic_oauth(OAUTH))
        for other in (API_KEY, "sk-proj-abc", "", "xsk-ant-oat01"):
            self.assertFalse(is_anthropic_oauth(other), other)


class ThroughTheAddon(addon_tests.AddonCase):
    """The proxy itself: the agent's placeholder goes, the right headers come in."""

    def setUp(self) -> None:
        super().setUp()
        policy = copy.deepcopy(addon_tests.POLICY)
        policy["routes"].append({"host": "api.anthropic.com", "ports": [443],
                                 "auth": {"scheme": "header", "token_ref": "ANTHROPIC_API_KEY", "header": "x-api-key"}})
        self.write_policy(policy)

    def send(self, token: str):
        secrets = copy.deepcopy(addon_tests.SECRETS)
        secrets["credentials"]["ANTHROPIC_API_KEY"] = token
        self.secrets.write_text(json.dumps(secrets))
        flow = self.request_flow("api.anthropic.com", port=443, scheme="https", method="POST", path="/v1/messages",
                                 headers={"Host": "api.anthropic.com", "x-api-key": "bot-bottle-placeholder-credential",
                                          "anthropic-beta": "claude-code-20250219"})
        flow, lines = self.exchange(flow)
        self.assertEqual(lines[0]["decision"], "allow", lines)
        self.assertNotIn(token, json.dumps(lines))
        return flow.request.headers

    def test_oauth_token(self) -> None:
        headers = self.send(OAUTH)
        self.assertEqual(headers.get_all("Authorization"), [f"Bearer {OAUTH}"])
        self.assertNotIn("x-api-key", headers)
        self.assertEqual(headers.get_all("anthropic-beta"), [f"claude-code-20250219,{ANTHROPIC_OAUTH_BETA}"])

    def test_api_key(self) -> None:
        headers = self.send(API_KEY)
        self.assertEqual(headers.get_all("x-api-key"), [API_KEY])
        self.assertNotIn("Authorization", headers)
        self.assertEqual(headers.get_all("anthropic-beta"), ["claude-code-20250219"])


if __name__ == "__main__":
    unittest.main()
