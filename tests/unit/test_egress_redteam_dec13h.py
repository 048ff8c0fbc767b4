"""Token formats in the labels an agent picks under a wildcard route (``*.example.com``).

The name leaves before any request inside the tunnel is scanned: in the DNS lookup and as the
upstream TLS handshake's SNI. Hex of a token is longer than a label (63 characters), so it is
cut over two; the name's own scan joined the labels with the route's domain, and the hex ran on
into the domain's letters, or a label of hex letters next to it, and was not read. Through the
addon's CONNECT and request hooks, with the real DLP engine.
"""

from __future__ import annotations

import copy

from tests._requires import requires
from tests.unit.test_sidecar_addon import POLICY, AddonCase, addon_mod

GITHUB = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
ANTHROPIC = "sk-ant-api03-h7Kp2Qw9Zr4Xm8Tn1Lv6Bc3Jd5Fs0GaXyZ12345678-AbCdEfGh"
AWS_KEY_ID = "AKIAQYLPMN5HFIQR7XYZ"

WILD_POLICY = copy.deepcopy(POLICY)
WILD_POLICY["routes"] += [
    {"host": "*.wild.example", "ports": [443]},
    {"host": "*.redact.example", "ports": [443], "dlp": {"outbound_on_match": "redact"}},
    {"host": "*.plain.example", "ports": [80]},
    {"host": "one.exact.example", "ports": [443]},
]


def labels(text: str, width: int = 60) -> str:
    """``text`` cut into DNS labels of ``width`` characters."""
    return ".".join(text[i:i + width] for i in range(0, len(text), width))


def hex_labels(token: str) -> str:
    return labels(token.encode().hex())


@requires(addon_mod is not None, "mitmproxy (the dev extra)")
class ChosenLabelsTest(AddonCase):
    def setUp(self) -> None:
        super().setUp()
        self.write_policy(WILD_POLICY)

    def connect(self, host: str):
        return self.run_hooks(self.connect_flow(host), "http_connect")

    def assertRefused(self, host: str, detector: str) -> None:
        flow, lines = self.connect(host)
        self.assertIsNotNone(flow.response, f"the CONNECT to {host} was let through")
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(flow.response.headers["X-Bot-Bottle-Rule"], "dlp")
        self.assertIn(detector, flow.response.get_text())
        self.assertEqual((lines[0]["decision"], lines[0]["rule"]), ("deny", "dlp"))

    def assertAllowed(self, host: str) -> None:
        flow, lines = self.connect(host)
        self.assertIsNone(flow.response, f"the CONNECT to {host} was refused")
        self.assertEqual(lines[0]["decision"], "allow")

    def test_hex_of_a_token_cut_over_two_labels_is_refused_at_the_connect(self) -> None:
        for token, detector in ((GITHUB, "github-token"), (ANTHROPIC, "anthropic-api-key")):
            with self.subTest(detector=detector):
                self.assertRefused(f"{hex_labels(token)}.wild.example", detector)

    def test_hex_cut_at_another_width_or_under_a_deeper_label_is_refused(self) -> None:
        self.assertRefused(f"{labels(GITHUB.encode().hex(), 30)}.wild.example", "github-token")
        self.assertRefused(f"{labels(GITHUB.encode().hex(), 15)}.wild.example", "github-token")
        # Labels of hex letters on both sides, whose letters would join the run.
        self.assertRefused(f"cd.{labels(GITHUB.encode().hex(), 15)}.ab.wild.example", "github-token")
        self.assertRefused(f"{labels(AWS_KEY_ID.encode().hex(), 30)}.wild.example", "aws-access-key-id")
        self.assertRefused(f"x.{hex_labels(GITHUB)}.cdn.wild.example", "github-token")

    def test_a_redact_route_refuses_it_too(self) -> None:
        self.assertRefused(f"{hex_labels(GITHUB)}.redact.example", "github-token")

    def test_a_plain_http_request_to_such_a_name_is_refused_before_it_is_sent(self) -> None:
        host = f"{hex_labels(GITHUB)}.plain.example"
        flow, lines = self.exchange(self.request_flow(host, port=80, headers=[("Host", host)]))
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual((lines[0]["rule"], lines[0]["detectors"]), ("dlp", ["github-token"]))

    def test_ordinary_names_under_a_wildcard_still_pass(self) -> None:
        for host in (
            "api.wild.example", "cdn-7f3a9c.eu-west-1.wild.example",
            # Hex labels that are no token: a commit id, two halves of a random id, a digest.
            "3b18e512dba79e4c8300dd08aeb37f8e728b8dad.wild.example",
            "d3b07384d113edec49eaa6238ad5ff00.c157a79031e1c40f85931829bc5fc552.wild.example",
            f"{labels('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 40)}.wild.example",
            # Names an upper-cased read would take for an AWS key id (a bucket's name): none is
            # one, and the labels are read as sent.
            "asianewswebsitecom12.wild.example", "asia.pacificservers01.wild.example",
        ):
            with self.subTest(host=host):
                self.assertAllowed(host)

    def test_a_route_naming_one_host_is_not_read_as_chosen_labels(self) -> None:
        self.assertAllowed("one.exact.example")
