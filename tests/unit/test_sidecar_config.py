"""The host's policy compiler: a plan in, the sidecar's version-2 policy out, which the sidecar reads.

The compiled document is parsed back with the sidecar's own strict parser in every case: the
host and the sidecar must never disagree about the format.
"""

from __future__ import annotations

import json
import unittest

from bot_bottle.backend import sidecar_config
from bot_bottle.manifest import load
from bot_bottle.plan import resolve
from bot_bottle.sidecar.egress.policy import Policy, RouteAuth
from tests.fixtures import TEST_IMAGES, ManifestHome

BOTTLE = {
    "egress": {
        "log": 2,
        "routes": [
            {"host": "api.github.com", "auth": {"scheme": "token", "token_ref": "GH_TOKEN"}},
            {"host": "plain.example", "ports": [80], "auth": {"scheme": "basic", "token_ref": "PLAIN_CRED"}},
            {"host": "both.example", "ports": [80, 8443],
             "auth": {"scheme": "header", "token_ref": "BOTH_KEY", "header": "X-Key"}},
            {"host": "*.pkg.example", "matches": [{"paths": ["/simple/"], "methods": ["GET"]}],
             "dlp": {"outbound_on_match": "redact", "entropy": True}},
            {"host": "files.example", "ports": [443], "tls_passthrough": True},
        ],
    },
}


class CompileTest(unittest.TestCase):
    def setUp(self) -> None:
        mh = ManifestHome.for_test(self)
        mh.bottle("b", BOTTLE)
        mh.agent("a", {"bottle": "b"})
        self.plan = resolve(load("a", mh.layout), images=TEST_IMAGES)
        self.doc = sidecar_config.policy(self.plan)
        self.routes = {r["host"]: r for r in self.doc["routes"]}

    def test_version_log_and_every_route(self) -> None:
        self.assertEqual(self.doc["version"], 2)
        self.assertEqual(self.doc["log"], 2)
        self.assertEqual(self.doc["internal_services"], {})
        self.assertEqual(set(self.routes), {r.host for r in self.plan.routes})
        self.assertIn("api.anthropic.com", self.routes)  # the provider's route

    def test_the_sidecar_reads_what_the_host_writes(self) -> None:
        policy = Policy.from_json(json.dumps(self.doc))
        self.assertEqual(policy.version, 2)
        self.assertEqual(len(policy.routes), len(self.plan.routes))

    def test_auth_names_the_credential_never_a_value(self) -> None:
        self.assertEqual(self.routes["api.github.com"]["auth"], {"scheme": "token", "token_ref": "GH_TOKEN"})
        self.assertEqual(self.routes["api.anthropic.com"]["auth"],
                         {"scheme": "header", "token_ref": "ANTHROPIC_API_KEY", "header": "x-api-key"})
        policy = Policy.from_dict(self.doc)
        self.assertEqual(policy.token_refs, ("ANTHROPIC_API_KEY", "GH_TOKEN", "PLAIN_CRED", "BOTH_KEY"))

    def test_plain_http_only_when_port_80_is_listed_on_purpose(self) -> None:
        self.assertNotIn("plain_http", self.routes["api.github.com"]["auth"])  # default ports 80, 443
        self.assertTrue(self.routes["plain.example"]["auth"]["plain_http"])
        self.assertTrue(self.routes["both.example"]["auth"]["plain_http"])
        self.assertNotIn("plain_http", self.routes["api.anthropic.com"]["auth"])  # 443 only
        parsed = {r.host: r for r in Policy.from_dict(self.doc).routes}
        self.assertEqual(parsed["plain.example"].auth, RouteAuth("basic", "PLAIN_CRED", None, True))

    def test_an_inherited_provider_credential_never_goes_in_clear_text(self) -> None:
        # The bottle routes the provider's host itself, on port 80, writing no auth: the
        # provider's credential is injected there, over TLS only.
        mh = ManifestHome.for_test(self)
        mh.bottle("p", {"egress": {"routes": [{"host": "api.anthropic.com", "ports": [80, 8443]}]}})
        mh.agent("a", {"bottle": "p"})
        plan = resolve(load("a", mh.layout), images=TEST_IMAGES)
        (route,) = [r for r in sidecar_config.policy(plan)["routes"] if r["host"] == "api.anthropic.com"]
        self.assertEqual(route["auth"]["token_ref"], "ANTHROPIC_API_KEY")
        self.assertNotIn("plain_http", route["auth"])
        self.assertEqual(self.routes["plain.example"]["auth"]["plain_http"], True, "its own auth, port 80 on purpose")

    def test_dlp_passes_through_from_the_plan(self) -> None:
        pkg = next(r for r in self.plan.routes if r.host == "*.pkg.example")
        self.assertEqual(self.routes["*.pkg.example"]["dlp"], pkg.dlp)
        self.assertEqual(self.routes["*.pkg.example"]["dlp"]["outbound_on_match"], "redact")
        parsed = {r.host: r for r in Policy.from_dict(self.doc).routes}
        self.assertEqual(parsed["*.pkg.example"].dlp_settings, pkg.dlp)

    def test_passthrough_and_matches(self) -> None:
        self.assertTrue(self.routes["files.example"]["tls_passthrough"])
        self.assertNotIn("auth", self.routes["files.example"])
        self.assertEqual(self.routes["*.pkg.example"]["matches"], [{"paths": ["/simple/"], "methods": ["GET"]}])

    def test_internal_services(self) -> None:
        doc = sidecar_config.policy(self.plan, {"supervise": 8766, "git-gate": 9418})
        self.assertEqual(doc["internal_services"], {"git-gate": 9418, "supervise": 8766})
        self.assertEqual(Policy.from_dict(doc).services, {"git-gate": 9418, "supervise": 8766})

    def test_no_secret_value_anywhere_in_the_policy(self) -> None:
        text = json.dumps(self.doc)
        for value in ("ghp_", "sk-ant"):
            self.assertNotIn(value, text)

    def test_secrets_document(self) -> None:
        doc = sidecar_config.secrets({"GH_TOKEN": "v1"}, {"PROMPTED": "v2"})
        self.assertEqual(doc, {"credentials": {"GH_TOKEN": "v1"}, "known_secrets": {"PROMPTED": "v2"}})


if __name__ == "__main__":
    unittest.main()
