"""The egress policy document: parsing, normalisation, strictness and round trips."""

from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path

from bot_bottle.sidecar.egress.hosts import HostError, host_matches, ip_literal, normalise_host
from bot_bottle.sidecar.egress.hosts import internal_service_name, is_sidecar_local
from bot_bottle.sidecar.egress.policy import DEFAULT_PORTS, Match, Policy, PolicyError, Route, RouteAuth


def route(**fields) -> dict:
    return {"host": "api.example.com", **fields}


class ParseTest(unittest.TestCase):
    def test_empty_policy_is_deny_all_with_default_log(self) -> None:
        policy = Policy.from_dict({})
        self.assertEqual(policy.routes, ())
        self.assertEqual(policy.log, 1)
        # A document without a version is the original format.
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
            ("[2001:db8::1]", "2001:db8::1"),
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
        for bad in (0, 3, "2", True, None):
            with self.subTest(bad=bad):
                self.assertRejects({"version": bad}, "policy.version")

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


def v2(*routes: dict, **top) -> dict:
    return {"version": 2, "routes": list(routes), **top}


class VersionTwoTest(unittest.TestCase):
    def test_auth_schemes(self) -> None:
        for auth, want in (
            ({"scheme": "bearer", "token_ref": "T"}, RouteAuth("bearer", "T")),
            ({"scheme": "token", "token_ref": "GH"}, RouteAuth("token", "GH")),
            ({"scheme": "basic", "token_ref": "B"}, RouteAuth("basic", "B")),
            ({"scheme": "header", "token_ref": "K", "header": "X-Api-Key"}, RouteAuth("header", "K", "x-api-key")),
            ({"scheme": "bearer", "token_ref": "T", "plain_http": True}, RouteAuth("bearer", "T", None, True)),
        ):
            with self.subTest(auth=auth):
                self.assertEqual(Policy.from_dict(v2(route(auth=auth))).routes[0].auth, want)

    def test_null_auth_is_no_auth(self) -> None:
        self.assertIsNone(Policy.from_dict(v2(route(auth=None))).routes[0].auth)

    def test_bad_auth(self) -> None:
        for auth, fragment in (
            ("bearer", "routes[0].auth: expected an object"),
            ({"scheme": "oauth", "token_ref": "T"}, "routes[0].auth.scheme"),
            ({"token_ref": "T"}, "routes[0].auth.scheme"),
            ({"scheme": "bearer"}, "routes[0].auth.token_ref"),
            ({"scheme": "bearer", "token_ref": " "}, "routes[0].auth.token_ref"),
            ({"scheme": "bearer", "token_ref": 5}, "routes[0].auth.token_ref"),
            ({"scheme": "header", "token_ref": "T"}, "routes[0].auth.header"),
            ({"scheme": "header", "token_ref": "T", "header": "x api"}, "routes[0].auth.header"),
            ({"scheme": "header", "token_ref": "T", "header": "Host"}, "cannot carry a credential"),
            ({"scheme": "bearer", "token_ref": "T", "header": "x-a"}, "only used with scheme 'header'"),
            ({"scheme": "bearer", "token_ref": "T", "plain_http": "yes"}, "plain_http"),
            ({"scheme": "bearer", "token_ref": "T", "value": "s3cr3t"}, "unknown key 'value'"),
        ):
            with self.subTest(auth=auth):
                with self.assertRaises(PolicyError) as caught:
                    Policy.from_dict(v2(route(auth=auth)))
                self.assertIn(fragment, str(caught.exception))

    def test_passthrough_cannot_inject(self) -> None:
        with self.assertRaisesRegex(PolicyError, "tls_passthrough cannot be combined with auth"):
            Policy.from_dict(v2(route(tls_passthrough=True, auth={"scheme": "bearer", "token_ref": "T"})))

    def test_a_wildcard_route_cannot_inject(self) -> None:
        with self.assertRaisesRegex(PolicyError, "a wildcard route cannot have auth"):
            Policy.from_dict(v2(route(host="*.example.com", auth={"scheme": "bearer", "token_ref": "T"})))

    def test_dlp_is_passed_through_untouched(self) -> None:
        dlp = {"outbound_on_match": "redact", "own_token": "redact", "tokens": True, "entropy": False,
               "future": {"nested": [1, 2]}}
        r = Policy.from_dict(v2(route(dlp=dlp))).routes[0]
        self.assertEqual(r.dlp_settings, dlp)
        self.assertEqual(Policy.from_dict(v2(route(dlp=None))).routes[0].dlp_settings, {})
        hash(r)  # routes stay hashable whatever the DLP settings hold

    def test_bad_dlp(self) -> None:
        for bad in ("block", ["block"], 1):
            with self.subTest(bad=bad):
                with self.assertRaisesRegex(PolicyError, "routes\\[0\\].dlp"):
                    Policy.from_dict(v2(route(dlp=bad)))

    def test_server_fetch_is_checked_and_read(self) -> None:
        # The one DLP key the proxy enforces itself: an unknown value must not leave it open.
        for value, blocks in (("block", True), ("allow", False)):
            with self.subTest(value=value):
                r = Policy.from_dict(v2(route(dlp={"outbound_on_match": "block", "server_fetch": value}))).routes[0]
                self.assertEqual(r.blocks_server_fetch, blocks)
                self.assertEqual(Policy.from_dict(Policy.from_dict(v2(route(dlp={"server_fetch": value}))).to_dict())
                                 .routes[0].blocks_server_fetch, blocks)
        self.assertFalse(Policy.from_dict(v2(route())).routes[0].blocks_server_fetch)  # absent: allow
        for bad in ("Block", "supervise", True, None, ["block"]):
            with self.subTest(bad=bad):
                with self.assertRaisesRegex(PolicyError, r"routes\[0\]\.dlp\.server_fetch: expected one of block, allow"):
                    Policy.from_dict(v2(route(dlp={"server_fetch": bad})))

    def test_internal_services(self) -> None:
        p = Policy.from_dict(v2(internal_services={"supervise": 8766, "git-gate": 9418}))
        self.assertEqual(p.services, {"git-gate": 9418, "supervise": 8766})
        self.assertEqual(p.internal_services, (("git-gate", 9418), ("supervise", 8766)))

    def test_bad_internal_services(self) -> None:
        for bad, fragment in (
            ([], "expected an object"),
            ({"Git": 1}, "one lower-case DNS label"),
            ({"a.b": 1}, "one lower-case DNS label"),
            ({"-a": 1}, "one lower-case DNS label"),
            ({"a": 0}, "port number"),
            ({"a": "80"}, "port number"),
            ({"a": True}, "port number"),
        ):
            with self.subTest(bad=bad):
                with self.assertRaises(PolicyError) as caught:
                    Policy.from_dict(v2(internal_services=bad))
                self.assertIn(fragment, str(caught.exception))

    def test_version_one_refuses_version_two_keys_and_says_why(self) -> None:
        for doc, key in (
            ({"version": 1, "routes": [route(auth={"scheme": "bearer", "token_ref": "T"})]}, "auth"),
            ({"routes": [route(dlp={})]}, "dlp"),
            ({"version": 1, "internal_services": {}}, "internal_services"),
        ):
            with self.subTest(key=key):
                with self.assertRaises(PolicyError) as caught:
                    Policy.from_dict(doc)
                self.assertIn(f"unknown key '{key}'", str(caught.exception))
                self.assertIn("version 2", str(caught.exception))

    def test_version_one_still_reads(self) -> None:
        p = Policy.from_dict({"version": 1, "log": 2, "routes": [route(ports=[443])]})
        self.assertEqual((p.version, p.log, p.routes[0].ports, p.services), (1, 2, (443,), {}))

    def test_token_refs(self) -> None:
        p = Policy.from_dict(v2(
            route(auth={"scheme": "bearer", "token_ref": "A"}),
            {"host": "b.example", "auth": {"scheme": "token", "token_ref": "B"}},
            {"host": "c.example", "auth": {"scheme": "bearer", "token_ref": "A"}},
            {"host": "d.example"},
        ))
        self.assertEqual(p.token_refs, ("A", "B"))

    def test_reserved_and_local_hosts_cannot_be_routes(self) -> None:
        for host in ("git-gate.bottle.internal", "bottle.internal", "*.bottle.internal", "a.b.bottle.internal",
                     "localhost", "a.localhost", "127.0.0.1", "127.0.0.53", "127.1", "0.0.0.0", "0", "::1", "[::]",
                     "::ffff:127.0.0.1"):
            with self.subTest(host=host):
                with self.assertRaises(PolicyError) as caught:
                    Policy.from_dict(v2({"host": host}))
                self.assertIn("routes[0].host", str(caught.exception))

    def test_round_trip_v2(self) -> None:
        doc = {
            "version": 2, "log": 2, "internal_services": {"git-gate": 9418},
            "routes": [
                {"host": "api.example.com", "ports": [443],
                 "auth": {"scheme": "header", "token_ref": "K", "header": "x-api-key"},
                 "dlp": {"outbound_on_match": "block", "tokens": True}},
                {"host": "plain.example", "ports": [80], "auth": {"scheme": "basic", "token_ref": "B", "plain_http": True}},
                {"host": "files.example", "ports": [443], "tls_passthrough": True},
            ],
        }
        p = Policy.from_dict(doc)
        self.assertEqual(p.to_dict(), doc)
        self.assertEqual(Policy.from_json(p.to_json()), p)


class ReservedNamesTest(unittest.TestCase):
    def test_internal_service_name(self) -> None:
        for host, want in (("git-gate.bottle.internal", "git-gate"), ("bottle.internal", ""),
                           ("a.b.bottle.internal", ""), ("bottle.internal.evil", None), ("xbottle.internal", None),
                           ("example.com", None), ("internal", None)):
            with self.subTest(host=host):
                self.assertEqual(internal_service_name(host), want)

    def test_is_sidecar_local(self) -> None:
        for host, want in (("localhost", True), ("x.localhost", True), ("127.0.0.1", True), ("127.9.9.9", True),
                           ("::1", True), ("0.0.0.0", True), ("0.1.2.3", True), ("::", True), ("2130706433", True),
                           ("10.0.0.1", False), ("example.com", False), ("localhost.example", False),
                           ("169.254.169.254", False)):
            with self.subTest(host=host):
                self.assertEqual(is_sidecar_local(normalise_host(host)), want)


if __name__ == "__main__":
    unittest.main()
