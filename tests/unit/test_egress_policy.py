"""The egress policy document: parsing, normalisation, strictness and round trips."""

from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path

from bot_bottle.sidecar.egress.hosts import HostError, host_matches, ip_literal, normalise_host
from bot_bottle.sidecar.egress.policy import DEFAULT_PORTS, Match, Policy, PolicyError, Route


def route(**fields) -> dict:
    return {"host": "api.example.com", **fields}


class ParseTest(unittest.TestCase):
    def test_empty_policy_is_deny_all_with_default_log(self) -> None:
        policy = Policy.from_dict({})
        self.assertEqual(policy.routes, ())
        self.assertEqual(policy.log, 1)
        self.assertEqual(policy.version, 1)

    def test_route_defaults(self) -> None:
        policy = Policy.from_dict({"routes": [{"host": "api.example.com"}]})
        self.assertEqual(policy.routes, (Route("api.example.com", DEFAULT_PORTS, (), False),))
        self.assertEqual(DEFAULT_PORTS, (80, 443))

    def test_full_route(self) -> None:
        policy = Policy.from_dict(
            {
                "version": 1,
                "log": 2,
                "routes": [
                    route(
                        ports=[443, 8443],
                        matches=[{"paths": ["/v1/"], "methods": ["get", "Post"], "headers": {"X-Team": "blue"}}],
                    )
                ],
            }
        )
        (r,) = policy.routes
        self.assertEqual(r.ports, (443, 8443))
        self.assertEqual(r.matches, (Match(("/v1/",), ("GET", "POST"), (("x-team", "blue"),)),))
        self.assertEqual(policy.log, 2)

    def test_host_is_normalised(self) -> None:
        for raw, want in [
            ("API.Example.COM", "api.example.com"),
            ("api.example.com.", "api.example.com"),
            ("  api.example.com ", "api.example.com"),
            ("*.Example.com.", "*.example.com"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("[::1]", "::1"),
            ("10.0.0.5", "10.0.0.5"),
        ]:
            with self.subTest(raw=raw):
                self.assertEqual(Policy.from_dict({"routes": [{"host": raw}]}).routes[0].host, want)

    def test_duplicate_ports_collapse(self) -> None:
        self.assertEqual(Policy.from_dict({"routes": [route(ports=[443, 443, 80])]}).routes[0].ports, (443, 80))

    def test_passthrough_flag(self) -> None:
        self.assertTrue(Policy.from_dict({"routes": [route(tls_passthrough=True)]}).routes[0].tls_passthrough)
        self.assertFalse(Policy.from_dict({"routes": [route(tls_passthrough=False)]}).routes[0].tls_passthrough)

    def test_ip_route_flag(self) -> None:
        routes = Policy.from_dict({"routes": [{"host": "10.0.0.5"}, {"host": "a.example"}, {"host": "*.b.example"}]}).routes
        self.assertEqual([r.is_ip for r in routes], [True, False, False])


class RejectTest(unittest.TestCase):
    def assertRejects(self, data, fragment: str) -> None:
        with self.assertRaises(PolicyError) as caught:
            Policy.from_dict(data)
        self.assertIn(fragment, str(caught.exception))

    def test_not_an_object(self) -> None:
        self.assertRejects([], "policy: expected an object")

    def test_unknown_top_level_key(self) -> None:
        self.assertRejects({"rutes": []}, "unknown key 'rutes'")

    def test_unknown_route_key_names_the_route(self) -> None:
        self.assertRejects({"routes": [route(), route(prot=1)]}, "routes[1]: unknown key 'prot'")

    def test_unknown_match_key(self) -> None:
        self.assertRejects({"routes": [route(matches=[{"path": ["/"]}])]}, "routes[0].matches[0]: unknown key 'path'")

    def test_wrong_version(self) -> None:
        self.assertRejects({"version": 2}, "policy.version")

    def test_bad_log_levels(self) -> None:
        for bad in (3, -1, "1", True, None):
            with self.subTest(bad=bad):
                self.assertRejects({"log": bad}, "policy.log")

    def test_routes_not_a_list(self) -> None:
        self.assertRejects({"routes": {"host": "a"}}, "policy.routes: expected a list")

    def test_missing_host(self) -> None:
        self.assertRejects({"routes": [{"ports": [443]}]}, "routes[0].host: required")

    def test_bad_hosts(self) -> None:
        for bad in ("", "   ", 5, "*", "*.", "a.*.example.com", "*example.com", "ex ample.com",
                    "-bad.example", "bad-.example", "a..example", "a/b.example", "a_b@c.example", "*.10.0.0.1"):
            with self.subTest(bad=bad):
                self.assertRejects({"routes": [{"host": bad}]}, "routes[0].host")

    def test_bad_ports(self) -> None:
        for bad in ([], [0], [65536], ["443"], [True], 443, [1.5]):
            with self.subTest(bad=bad):
                self.assertRejects({"routes": [route(ports=bad)]}, "routes[0].ports")

    def test_bad_paths(self) -> None:
        self.assertRejects({"routes": [route(matches=[{"paths": ["v1/"]}])]}, "must start with '/'")
        self.assertRejects({"routes": [route(matches=[{"paths": ["/a*/b"]}])]}, "only at the end")
        self.assertRejects({"routes": [route(matches=[{"paths": "/v1"}])]}, "expected a list")
        self.assertRejects({"routes": [route(matches=[{"paths": [""]}])]}, "expected a list of non-empty strings")

    def test_bad_methods(self) -> None:
        self.assertRejects({"routes": [route(matches=[{"methods": "GET"}])]}, ".methods")
        self.assertRejects({"routes": [route(matches=[{"methods": [1]}])]}, ".methods")

    def test_bad_headers(self) -> None:
        self.assertRejects({"routes": [route(matches=[{"headers": [["a", "b"]]}])]}, ".headers")
        self.assertRejects({"routes": [route(matches=[{"headers": {"a": 1}}])]}, ".headers")
        self.assertRejects({"routes": [route(matches=[{"headers": {"": "x"}}])]}, ".headers")

    def test_matches_not_a_list(self) -> None:
        self.assertRejects({"routes": [route(matches={"paths": ["/"]})]}, "routes[0].matches: expected a list")

    def test_passthrough_with_matches(self) -> None:
        self.assertRejects({"routes": [route(tls_passthrough=True, matches=[{"paths": ["/"]}])]}, "tls_passthrough")

    def test_passthrough_not_bool(self) -> None:
        self.assertRejects({"routes": [route(tls_passthrough="yes")]}, "tls_passthrough")


class RoundTripTest(unittest.TestCase):
    DOC = {
        "version": 1,
        "log": 0,
        "routes": [
            {"host": "*.example.com", "ports": [443]},
            {"host": "api.example.com", "ports": [80, 443],
             "matches": [{"paths": ["/v1/"], "methods": ["GET"]}, {"headers": {"x-a": "1"}}]},
            {"host": "files.example", "ports": [443], "tls_passthrough": True},
        ],
    }

    def test_to_dict_from_dict(self) -> None:
        policy = Policy.from_dict(self.DOC)
        self.assertEqual(policy.to_dict(), self.DOC)
        self.assertEqual(Policy.from_dict(policy.to_dict()), policy)

    def test_json_and_file(self) -> None:
        policy = Policy.from_dict(self.DOC)
        self.assertEqual(Policy.from_json(policy.to_json()), policy)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "policy.json"
            path.write_text(json.dumps(self.DOC))
            self.assertEqual(Policy.load(path), policy)

    def test_bad_json_and_missing_file(self) -> None:
        with self.assertRaisesRegex(PolicyError, "not valid JSON"):
            Policy.from_json("{")
        with self.assertRaisesRegex(PolicyError, "cannot read policy"):
            Policy.load("/nonexistent/policy.json")

    def test_describe(self) -> None:
        self.assertEqual(Match().describe(), "anything")
        self.assertEqual(
            Match(("/a", "/b"), ("GET",), (("x-k", "v"),)).describe(), "paths /a,/b; methods GET; headers x-k"
        )


class HostsTest(unittest.TestCase):
    def test_wildcard_matching(self) -> None:
        pattern = "*.example.com"
        for host, want in [
            ("a.example.com", True),
            ("a.b.example.com", True),
            ("example.com", False),
            ("evilexample.com", False),
            ("a.evilexample.com", False),
            ("example.com.evil.net", False),
            ("aexample.com", False),
        ]:
            with self.subTest(host=host):
                self.assertEqual(host_matches(pattern, host), want)

    def test_exact_matching(self) -> None:
        self.assertTrue(host_matches("example.com", "example.com"))
        self.assertFalse(host_matches("example.com", "a.example.com"))

    def test_ip_literal_forms(self) -> None:
        for raw, want in [
            ("127.0.0.1", "127.0.0.1"),
            ("127.1", "127.0.0.1"),
            ("2130706433", "127.0.0.1"),
            ("0x7f000001", "127.0.0.1"),
            ("0x7f.0.0.1", "127.0.0.1"),
            ("::1", "::1"),
            ("[::1]", "::1"),
            ("::ffff:10.0.0.1", "10.0.0.1"),
            ("fe80::1%eth0", "fe80::1"),
            ("10.0.0.1.", "10.0.0.1"),
            ("example.com", None),
            ("1.example.com", None),
        ]:
            with self.subTest(raw=raw):
                self.assertEqual(ip_literal(raw), want)

    def test_numeric_last_label_is_never_a_name(self) -> None:
        self.assertIsNotNone(ip_literal("example.123"))
        self.assertIsNotNone(ip_literal("1.2.3.999"))

    def test_normalise_errors(self) -> None:
        for bad in ("", ".", "a b", "a..b", "x" * 64 + ".example", ("a." * 130) + "example"):
            with self.subTest(bad=bad[:20]):
                with self.assertRaises(HostError):
                    normalise_host(bad)


if __name__ == "__main__":
    unittest.main()
