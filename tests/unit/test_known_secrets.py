"""The secret values a bottle's DLP knows: its secret env values and its route credentials, none
lost when an env variable and a credential share a name but not a value."""

from __future__ import annotations

import unittest

from bot_bottle.lifecycle import known_secret_values
from bot_bottle.sidecar.egress import scanning
from bot_bottle.sidecar.egress.dlp_adapter import DlpOutbound
from bot_bottle.sidecar.egress.policy import Policy

ENV_VALUE = "agent-side-value-7Qm2xV9kLp"
CREDENTIAL = "route-credential-3Rt8wZ1nBd"


class KnownSecretsTest(unittest.TestCase):
    def test_an_env_secret_named_like_a_credential_keeps_its_own_entry(self) -> None:
        known = known_secret_values({"GITHUB_TOKEN": ENV_VALUE, "OTHER": "x"}, {"GITHUB_TOKEN": CREDENTIAL})
        self.assertEqual(known, {"GITHUB_TOKEN": CREDENTIAL, "GITHUB_TOKEN.env": ENV_VALUE, "OTHER": "x"})
        # The same value under both: one entry.
        self.assertEqual(known_secret_values({"T": CREDENTIAL}, {"T": CREDENTIAL}), {"T": CREDENTIAL})

    def test_dlp_blocks_the_env_value_leaving(self) -> None:
        known = known_secret_values({"GITHUB_TOKEN": ENV_VALUE}, {"GITHUB_TOKEN": CREDENTIAL})
        dlp = DlpOutbound(Policy(), {"GITHUB_TOKEN": CREDENTIAL}, known)
        request = scanning.OutboundRequest("POST", "https", "allowed.example", 443, "/", (), ENV_VALUE.encode(),
                                           route_index=None, dlp={"outbound_on_match": "block"})
        outcome = dlp.scan(request)
        self.assertEqual(outcome.action, scanning.BLOCK)
        self.assertEqual(outcome.detectors, ("known-secret:GITHUB_TOKEN.env",))


if __name__ == "__main__":
    unittest.main()
