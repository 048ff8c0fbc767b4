"""The host's policy compiler for supervise: the internal service, and approved routes on resume."""

from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path

from bot_bottle.backend import sidecar_config
from bot_bottle.errors import BotBottleError
from bot_bottle.manifest import load
from bot_bottle.plan import resolve
from bot_bottle.sidecar.egress.policy import Policy
from tests.fixtures import TEST_IMAGES, ManifestHome


def plan_for(test: unittest.TestCase, bottle: dict):
    mh = ManifestHome.for_test(test)
    mh.bottle("b", bottle)
    mh.agent("a", {"bottle": "b"})
    return resolve(load("a", mh.layout), images=TEST_IMAGES)


class InternalServiceTest(unittest.TestCase):
    def test_supervise_on_by_default(self) -> None:
        plan = plan_for(self, {"egress": {"routes": [{"host": "a.example"}]}})
        self.assertTrue(plan.supervise)
        services = sidecar_config.internal_services(plan)
        self.assertEqual(services, {"supervise": sidecar_config.SUPERVISE_PORT})
        doc = sidecar_config.policy(plan, services)
        self.assertEqual(Policy.from_dict(doc).services, {"supervise": 9430})

    def test_supervise_off(self) -> None:
        plan = plan_for(self, {"supervise": False})
        self.assertNotIn("supervise", sidecar_config.internal_services(plan))


class ApprovedRoutesTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.state = Path(tmp.name)
        plan = plan_for(self, {"egress": {"routes": [{"host": "a.example", "ports": [443]}]}})
        self.doc = sidecar_config.policy(plan, sidecar_config.internal_services(plan))

    def write(self, text: str) -> None:
        (self.state / sidecar_config.APPROVED_ROUTES_FILE).write_text(text)

    def test_absent_file_changes_nothing(self) -> None:
        self.assertEqual(sidecar_config.read_approved_routes(self.state), [])
        self.assertEqual(sidecar_config.with_approved_routes(self.doc, []), self.doc)

    def test_routes_are_appended_after_the_manifests_without_repeats(self) -> None:
        self.write(json.dumps([
            {"host": "Docs.Example", "matches": [{"paths": ["/v1/"]}]},
            {"host": "a.example", "ports": [443]},          # already in the manifest
            {"host": "docs.example", "matches": [{"paths": ["/v1/"]}]},  # same as the first
        ]))
        merged = sidecar_config.with_approved_routes(self.doc, sidecar_config.read_approved_routes(self.state))
        hosts = [r["host"] for r in merged["routes"]]
        manifest_hosts = [r["host"] for r in self.doc["routes"]]
        self.assertIn("a.example", manifest_hosts)
        self.assertEqual(hosts, manifest_hosts + ["docs.example"])
        policy = Policy.from_dict(merged)  # the sidecar accepts what the launcher writes
        self.assertEqual(policy.routes[-1].ports, (80, 443))
        self.assertEqual(policy.routes[-1].dlp_settings, {})  # the proxy's defaults: scanned, blocked on a hit
        self.assertEqual(policy.services, self.doc["internal_services"])
        self.assertEqual(len(self.doc["routes"]), len(manifest_hosts))  # the input is not changed

    def test_the_host_sides_document_form(self) -> None:
        """bot_bottle/supervise/routes.py writes {"routes": [...]}; both forms read the same."""
        routes = [{"host": "docs.example", "ports": [443]}]
        self.write(json.dumps({"routes": routes}))
        self.assertEqual(sidecar_config.read_approved_routes(self.state), routes)
        self.write(json.dumps(routes))
        self.assertEqual(sidecar_config.read_approved_routes(self.state), routes)

    def test_what_the_host_side_writes_is_merged(self) -> None:
        from bot_bottle.supervise import routes as host_routes

        host_routes.add_approved(self.state, {"host": "docs.example", "ports": [443]})
        merged = sidecar_config.with_approved_routes(self.doc, sidecar_config.read_approved_routes(self.state))
        self.assertEqual(merged["routes"][-1]["host"], "docs.example")

    def test_bad_entries_name_the_file_and_entry(self) -> None:
        for text, needle in (
            ('{"host": "x"}', "expected"),
            ('{"routes": [1]}', "expected"),
            ("[1]", "expected"),
            ("[{", "not valid JSON"),
        ):
            with self.subTest(text=text):
                self.write(text)
                with self.assertRaises(BotBottleError) as ctx:
                    sidecar_config.read_approved_routes(self.state)
                self.assertIn(needle, str(ctx.exception))
                self.assertIn("approved_routes.json", str(ctx.exception))
        for routes, needle in (
            ([{"host": "https://x.example"}], "approved_routes.json[0]"),
            ([{"host": "ok.example"}, {"host": "x.example", "ports": []}], "approved_routes.json[1]"),
            ([{"host": "x.example", "auth": {"scheme": "bearer", "token_ref": "T"}}], "cannot carry auth"),
            ([{"host": "supervise.bottle.internal"}], "reserved"),
            # approved before grants had to meet the route-host rule: refused now as then
            ([{"host": "*.com"}], "approved_routes.json[0]: host '*.com'"),
            ([{"host": "ok.example"}, {"host": "localhost"}], "approved_routes.json[1]: host 'localhost'"),
            ([{"host": "169.254.169.254"}], "approved_routes.json[0]: host '169.254.169.254'"),
        ):
            with self.subTest(routes=routes), self.assertRaises(BotBottleError) as ctx:
                sidecar_config.with_approved_routes(self.doc, routes)
            self.assertIn(needle, str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
