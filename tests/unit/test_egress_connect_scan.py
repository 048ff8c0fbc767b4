"""A tunnel's host name is scanned at its CONNECT, before anything is opened for it.

mitmproxy connects as soon as a CONNECT is allowed (a DNS lookup of the name, then TCP), and the
upstream TLS handshake carries the name as its SNI: a secret written as a label under a wildcard
route would leave before any request inside the tunnel is scanned, and a passed-through tunnel
has no request to scan at all.
"""

from __future__ import annotations

import copy
import json

from tests._requires import requires
from tests.unit.test_sidecar_addon import POLICY, SECRETS, AddonCase, addon_mod

SECRET = SECRETS["known_secrets"]["PROMPTED"]

WILD_POLICY = copy.deepcopy(POLICY)
WILD_POLICY["routes"] += [
    {"host": "*.wild.example", "ports": [443]},
    {"host": "*.pass.example", "ports": [443], "tls_passthrough": True},
    {"host": "*.held.example", "ports": [443], "dlp": {"outbound_on_match": "supervise"}},
    {"host": "*.redact.example", "ports": [443], "dlp": {"outbound_on_match": "redact"}},
    {"host": "*.off.example", "ports": [443], "dlp": {"secrets": False, "tokens": False}},
]


@requires(addon_mod is not None, "mitmproxy (the dev extra)")
class ConnectTargetScanTest(AddonCase):
    def setUp(self) -> None:
        super().setUp()
        self.write_policy(WILD_POLICY)

    def connect(self, host: str):
        return self.run_hooks(self.connect_flow(host), "http_connect")

    def assertRefusedByDlp(self, host: str) -> None:
        flow, lines = self.connect(host)
        self.assertIsNotNone(flow.response, f"the CONNECT to {host} was let through")
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(flow.response.headers["X-Bot-Bottle-Rule"], "dlp")
        self.assertIn("known-secret:PROMPTED", flow.response.get_text())
        self.assertNotIn(SECRET, flow.response.get_text())
        self.assertEqual(len(lines), 1)
        self.assertEqual((lines[0]["decision"], lines[0]["rule"]), ("deny", "dlp"))
        self.assertNotIn(SECRET, json.dumps(lines))

    def test_a_secret_as_a_label_of_an_intercepted_tunnels_name_is_refused(self) -> None:
        self.assertRefusedByDlp(f"{SECRET}.wild.example")

    def test_a_secret_as_a_label_of_a_passed_through_tunnels_name_is_refused(self) -> None:
        self.assertRefusedByDlp(f"{SECRET}.pass.example")

    def test_an_encoded_secret_in_the_name_is_refused(self) -> None:
        self.assertRefusedByDlp(f"{SECRET.encode().hex()}.wild.example")

    def test_a_name_that_cannot_be_redacted_or_held_is_refused_on_those_routes_too(self) -> None:
        self.assertRefusedByDlp(f"{SECRET}.held.example")
        self.assertRefusedByDlp(f"{SECRET}.redact.example")

    def test_an_ordinary_name_under_the_wildcard_is_allowed(self) -> None:
        for host in ("docs.wild.example", "cdn.pass.example"):
            flow, lines = self.connect(host)
            self.assertIsNone(flow.response, host)
            self.assertEqual(lines[0]["decision"], "allow")

    def test_a_route_with_its_detectors_off_lets_the_name_through(self) -> None:
        flow, lines = self.connect(f"{SECRET}.off.example")
        self.assertIsNone(flow.response)
        self.assertEqual(lines[0]["decision"], "allow")

    def test_a_denied_connect_is_refused_by_its_rule_before_any_scan(self) -> None:
        flow, lines = self.connect(f"{SECRET}.evil.example")
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "default-deny")
