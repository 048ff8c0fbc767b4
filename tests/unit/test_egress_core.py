"""Egress decisions: plain facts in, verdict out. Default deny, then every rule in turn."""

from __future__ import annotations

import unittest

from bot_bottle.sidecar.egress.core import (
    RULE_CREDENTIAL_TLS,
    RULE_INTERNAL_NAME,
    RULE_INTERNAL_SERVICE,
    RULE_SIDECAR_LOCAL,
    RULE_DEFAULT_DENY,
    RULE_HOST_HEADER,
    RULE_INVALID_HOST,
    RULE_IP_LITERAL,
    RULE_MATCH,
    RULE_PORT,
    RULE_ROUTE,
    RequestFacts,
    Verdict,
    decide,
)
from bot_bottle.sidecar.egress.policy import Policy


def policy(*routes: dict, log: int = 1) -> Policy:
    return Policy.from_dict({"version": 1, "log": log, "routes": list(routes)})


def get(host: str, path: str = "/", *, port: int = 443, method: str = "GET", scheme: str = "https",
        headers=(), host_header: str | None = None) -> RequestFacts:
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
    if host_header is not None:
        pairs.append(("Host", host_header))
    return RequestFacts.make(scheme=scheme, host=host, port=port, method=method, path=path, headers=pairs)


def connect(host: str, port: int = 443) -> RequestFacts:
    return RequestFacts.make(scheme="https", host=host, port=port, method="CONNECT", path="", is_connect=True)


class DefaultDenyTest(unittest.TestCase):
    def test_empty_policy_denies_everything(self) -> None:
        for facts in (get("example.com"), connect("example.com"), get("10.0.0.1")):
            with self.subTest(facts=facts):
                self.assertFalse(decide(facts, Policy()).allowed)

    def test_unlisted_host_is_default_deny_naming_the_host(self) -> None:
        v = decide(get("evil.example"), policy({"host": "allowed.example"}))
        self.assertFalse(v.allowed)
        self.assertEqual(v.rule, RULE_DEFAULT_DENY)
        self.assertEqual(v.decision, "deny")
        self.assertIn("evil.example", v.reason)
        msg = v.deny_message()
        self.assertIn("evil.example", msg)
        self.assertIn("default-deny", msg)
        self.assertIsNone(v.route)
        self.assertIsNone(v.route_label)


class ExactHostTest(unittest.TestCase):
    P = policy({"host": "api.example.com"})

    def test_exact_host_allowed_for_request_and_connect(self) -> None:
        for facts in (get("api.example.com"), connect("api.example.com"), get("api.example.com", port=80, scheme="http")):
            with self.subTest(facts=facts):
                v = decide(facts, self.P)
                self.assertTrue(v.allowed)
                self.assertEqual(v.rule, RULE_ROUTE)
                self.assertEqual(v.route_index, 0)
                self.assertEqual(v.route_label, "routes[0] (api.example.com)")
                self.assertEqual(v.decision, "allow")

    def test_subdomain_and_parent_not_covered(self) -> None:
        for host in ("x.api.example.com", "example.com", "api.example.com.evil.net", "apiexample.com", "api.example.co"):
            with self.subTest(host=host):
                self.assertEqual(decide(get(host), self.P).rule, RULE_DEFAULT_DENY)

    def test_case_and_trailing_dot_are_normalised(self) -> None:
        for host in ("API.EXAMPLE.COM", "Api.Example.Com.", "api.example.com."):
            with self.subTest(host=host):
                v = decide(get(host), self.P)
                self.assertTrue(v.allowed)
                self.assertEqual(v.host, "api.example.com")

    def test_idn_target_compares_in_ascii_form(self) -> None:
        p = policy({"host": "bücher.example"})
        self.assertTrue(decide(get("xn--bcher-kva.example"), p).allowed)
        self.assertTrue(decide(get("BÜCHER.example"), p).allowed)

    def test_invalid_target_host(self) -> None:
        for host in ("", "a b.example", "a..example", "evil.example/x"):
            with self.subTest(host=host):
                v = decide(get(host), self.P)
                self.assertFalse(v.allowed)
                self.assertEqual(v.rule, RULE_INVALID_HOST)


class WildcardTest(unittest.TestCase):
    P = policy({"host": "*.example.com"})

    def test_subdomains_at_any_depth(self) -> None:
        for host in ("a.example.com", "a.b.example.com", "A.Example.Com."):
            with self.subTest(host=host):
                self.assertTrue(decide(get(host), self.P).allowed)

    def test_apex_and_lookalikes_denied(self) -> None:
        for host in ("example.com", "evilexample.com", "a.evilexample.com", "example.com.evil.net", "xexample.com"):
            with self.subTest(host=host):
                v = decide(get(host), self.P)
                self.assertFalse(v.allowed)
                self.assertEqual(v.rule, RULE_DEFAULT_DENY)

    def test_apex_needs_its_own_route(self) -> None:
        p = policy({"host": "*.example.com"}, {"host": "example.com"})
        self.assertTrue(decide(get("example.com"), p).allowed)
        self.assertEqual(decide(get("example.com"), p).route_index, 1)

    def test_wildcard_never_covers_ip_literals(self) -> None:
        self.assertEqual(decide(get("1.2.3.4"), self.P).rule, RULE_IP_LITERAL)


class PortTest(unittest.TestCase):
    def test_default_ports_are_80_and_443(self) -> None:
        p = policy({"host": "a.example"})
        self.assertTrue(decide(get("a.example", port=80, scheme="http"), p).allowed)
        self.assertTrue(decide(get("a.example", port=443), p).allowed)
        v = decide(get("a.example", port=8080, scheme="http"), p)
        self.assertFalse(v.allowed)
        self.assertEqual(v.rule, RULE_PORT)
        self.assertIn("8080", v.reason)
        self.assertIn("80, 443", v.reason)
        self.assertIn("'port'", v.deny_message())

    def test_connect_to_port_not_allowed(self) -> None:
        p = policy({"host": "a.example", "ports": [443]})
        self.assertTrue(decide(connect("a.example", 443), p).allowed)
        for port in (22, 80, 8443):
            with self.subTest(port=port):
                v = decide(connect("a.example", port), p)
                self.assertFalse(v.allowed)
                self.assertEqual(v.rule, RULE_PORT)
                self.assertEqual(v.route_index, 0)

    def test_port_from_a_second_route_for_the_same_host(self) -> None:
        p = policy({"host": "a.example", "ports": [443]}, {"host": "a.example", "ports": [8443]})
        v = decide(connect("a.example", 8443), p)
        self.assertTrue(v.allowed)
        self.assertEqual(v.route_index, 1)

    def test_wildcard_and_exact_routes_combine(self) -> None:
        p = policy({"host": "*.example.com", "ports": [443]}, {"host": "api.example.com", "ports": [8080]})
        self.assertTrue(decide(get("api.example.com", port=8080, scheme="http"), p).allowed)
        self.assertTrue(decide(get("api.example.com", port=443), p).allowed)
        self.assertFalse(decide(get("www.example.com", port=8080, scheme="http"), p).allowed)


class IpLiteralTest(unittest.TestCase):
    def test_ip_targets_refused_without_a_route_naming_them(self) -> None:
        p = policy({"host": "a.example"})
        for host in ("10.0.0.1", "127.0.0.1", "::1", "[::1]", "169.254.169.254", "2130706433", "127.1", "0x7f000001"):
            with self.subTest(host=host):
                v = decide(get(host), p)
                self.assertFalse(v.allowed)
                self.assertEqual(v.rule, RULE_IP_LITERAL)
                self.assertIn("IP address", v.reason)

    def test_route_naming_the_exact_address_allows_it(self) -> None:
        p = policy({"host": "10.0.0.5"})
        self.assertTrue(decide(get("10.0.0.5"), p).allowed)
        self.assertTrue(decide(connect("10.0.0.5"), p).allowed)
        self.assertEqual(decide(get("10.0.0.6"), p).rule, RULE_IP_LITERAL)

    def test_alternative_spellings_of_a_named_address_are_the_same_address(self) -> None:
        p = policy({"host": "10.0.0.1"})
        for host in ("10.1", "167772161", "0x0a000001", "::ffff:10.0.0.1", "012.0.0.1"):
            with self.subTest(host=host):
                self.assertTrue(decide(get(host), p).allowed)

    def test_ipv6_route(self) -> None:
        p = policy({"host": "[2001:db8::1]"})
        self.assertTrue(decide(get("2001:DB8:0::1"), p).allowed)
        self.assertFalse(decide(get("2001:db8::2"), p).allowed)

    def test_numeric_lookalike_name_is_treated_as_address(self) -> None:
        p = policy({"host": "a.example"})
        self.assertEqual(decide(get("a.example.123"), p).rule, RULE_IP_LITERAL)


class MatchSemanticsTest(unittest.TestCase):
    def test_paths_are_segment_prefixes(self) -> None:
        p = policy({"host": "a.example", "matches": [{"paths": ["/v1"]}]})
        for path, want in [
            ("/v1", True), ("/v1/", True), ("/v1/models", True), ("/v1?x=1", True),
            ("/v1x", False), ("/v2/models", False), ("/", False), ("/V1", False),
        ]:
            with self.subTest(path=path):
                self.assertEqual(decide(get("a.example", path), p).allowed, want)

    def test_a_websocket_needs_its_own_method_where_methods_are_listed(self) -> None:
        # A GET-only entry allows reading; a WebSocket handshake opens a two-way channel.
        upgrade = {"Upgrade": "websocket", "Connection": "Upgrade"}
        for methods, want in ((["GET"], False), (["GET", "POST"], False), (["WEBSOCKET"], True),
                              (["GET", "WEBSOCKET"], True), (None, True)):
            entry = {"paths": ["/ws"], **({"methods": methods} if methods else {})}
            p = policy({"host": "a.example", "matches": [entry]})
            with self.subTest(methods=methods):
                v = decide(get("a.example", "/ws", headers=upgrade), p)
                self.assertEqual(v.allowed, want)
                if not want:
                    self.assertIn("WebSocket needs WEBSOCKET", v.reason)
        p = policy({"host": "a.example", "matches": [{"methods": ["WEBSOCKET"]}]})
        self.assertFalse(decide(get("a.example", "/ws"), p).allowed, "a plain GET is not a WebSocket")
        # The header does not stand in for another method: an upstream that ignores it acts on that.
        for methods in (["WEBSOCKET"], ["GET", "WEBSOCKET"]):
            p = policy({"host": "a.example", "matches": [{"methods": methods}]})
            for method in ("DELETE", "POST", "PUT"):
                with self.subTest(methods=methods, method=method):
                    self.assertFalse(decide(get("a.example", "/ws", method=method, headers=upgrade), p).allowed)
        p = policy({"host": "a.example", "matches": [{"methods": ["POST", "WEBSOCKET"]}]})
        self.assertTrue(decide(get("a.example", "/ws", method="POST", headers=upgrade), p).allowed)
        for spelling in ("WebSocket", "websocket, h2c"):
            with self.subTest(spelling=spelling):
                p = policy({"host": "a.example", "matches": [{"methods": ["GET"]}]})
                self.assertFalse(decide(get("a.example", "/ws", headers={"upgrade": spelling}), p).allowed)

    def test_trailing_slash_prefix(self) -> None:
        p = policy({"host": "a.example", "matches": [{"paths": ["/v1/"]}]})
        for path, want in [("/v1", True), ("/v1/", True), ("/v1/x", True), ("/v1x", False)]:
            with self.subTest(path=path):
                self.assertEqual(decide(get("a.example", path), p).allowed, want)

    def test_star_is_a_raw_prefix(self) -> None:
        p = policy({"host": "a.example", "matches": [{"paths": ["/org/repo*"]}]})
        for path, want in [("/org/repo", True), ("/org/repo.git/info/refs", True), ("/org/rep", False)]:
            with self.subTest(path=path):
                self.assertEqual(decide(get("a.example", path), p).allowed, want)

    def test_ambiguous_paths_never_pass_a_path_rule(self) -> None:
        p = policy({"host": "a.example", "matches": [{"paths": ["/v1/"]}]})
        for path in ("/v1/../admin", "/v1/./x", "/v1/%2e%2e/admin", "/v1/%2E%2E/admin", "/v1/..;/admin",
                     "/v1%2f..%2fadmin", "/v1/%5c..", "/v1\\..\\admin", "/v1/%00", "/v1/%252e%252e/admin", "*"):
            with self.subTest(path=path):
                v = decide(get("a.example", path), p)
                self.assertFalse(v.allowed)
                self.assertEqual(v.rule, RULE_MATCH)
        self.assertIn("dot segments", decide(get("a.example", "/v1/../x"), p).reason)

    def test_ambiguous_path_is_fine_without_path_rules(self) -> None:
        p = policy({"host": "a.example", "matches": [{"methods": ["GET"]}]})
        self.assertTrue(decide(get("a.example", "/a/../b"), p).allowed)

    def test_methods_case_insensitive(self) -> None:
        p = policy({"host": "a.example", "matches": [{"methods": ["get", "HEAD"]}]})
        self.assertTrue(decide(get("a.example", method="get"), p).allowed)
        self.assertTrue(decide(get("a.example", method="HEAD"), p).allowed)
        self.assertFalse(decide(get("a.example", method="POST"), p).allowed)

    def test_headers_name_case_insensitive_value_exact(self) -> None:
        p = policy({"host": "a.example", "matches": [{"headers": {"X-Team": "blue"}}]})
        self.assertTrue(decide(get("a.example", headers={"x-team": "blue"}), p).allowed)
        self.assertTrue(decide(get("a.example", headers={"X-TEAM": "blue"}), p).allowed)
        self.assertFalse(decide(get("a.example", headers={"x-team": "Blue"}), p).allowed)
        self.assertFalse(decide(get("a.example", headers={"x-team": "blue2"}), p).allowed)
        self.assertFalse(decide(get("a.example"), p).allowed)

    def test_duplicate_header_every_value_must_hold(self) -> None:
        p = policy({"host": "a.example", "matches": [{"headers": {"x-team": "blue"}}]})
        self.assertFalse(decide(get("a.example", headers=[("x-team", "blue"), ("X-Team", "red")]), p).allowed)
        self.assertTrue(decide(get("a.example", headers=[("x-team", "blue"), ("X-Team", "blue")]), p).allowed)

    def test_and_within_an_entry(self) -> None:
        p = policy({"host": "a.example", "matches": [{"paths": ["/v1"], "methods": ["POST"], "headers": {"x-k": "1"}}]})
        ok = dict(path="/v1/x", method="POST", headers={"x-k": "1"})
        self.assertTrue(decide(get("a.example", **ok), p).allowed)
        for field, bad in (("path", "/v2"), ("method", "GET"), ("headers", {"x-k": "2"})):
            with self.subTest(field=field):
                args = {**ok, field: bad}
                v = decide(get("a.example", **args), p)
                self.assertFalse(v.allowed)
                self.assertEqual(v.rule, RULE_MATCH)

    def test_or_across_entries(self) -> None:
        p = policy({"host": "a.example", "matches": [{"paths": ["/read"], "methods": ["GET"]}, {"paths": ["/write"], "methods": ["POST"]}]})
        self.assertTrue(decide(get("a.example", "/read", method="GET"), p).allowed)
        v = decide(get("a.example", "/write", method="POST"), p)
        self.assertTrue(v.allowed)
        self.assertEqual(v.match_index, 1)
        self.assertIn("matches[1]", v.reason)
        self.assertFalse(decide(get("a.example", "/read", method="POST"), p).allowed)
        self.assertFalse(decide(get("a.example", "/write", method="GET"), p).allowed)

    def test_empty_entry_matches_anything(self) -> None:
        p = policy({"host": "a.example", "matches": [{}]})
        self.assertTrue(decide(get("a.example", "/anything", method="DELETE"), p).allowed)

    def test_connect_passes_host_and_port_then_requests_meet_matches(self) -> None:
        p = policy({"host": "a.example", "matches": [{"paths": ["/ok"]}]})
        v = decide(connect("a.example"), p)
        self.assertTrue(v.allowed)
        self.assertIn("tunnel", v.reason)
        self.assertTrue(decide(get("a.example", "/ok"), p).allowed)
        self.assertFalse(decide(get("a.example", "/no"), p).allowed)

    def test_any_route_for_the_host_may_allow(self) -> None:
        p = policy(
            {"host": "a.example", "matches": [{"paths": ["/one"]}]},
            {"host": "a.example", "matches": [{"paths": ["/two"]}]},
        )
        self.assertEqual(decide(get("a.example", "/one"), p).route_index, 0)
        self.assertEqual(decide(get("a.example", "/two"), p).route_index, 1)
        self.assertFalse(decide(get("a.example", "/three"), p).allowed)

    def test_route_without_matches_wins_over_restricted_one(self) -> None:
        p = policy({"host": "a.example", "matches": [{"paths": ["/one"]}]}, {"host": "*.example"})
        self.assertTrue(decide(get("a.example", "/other"), p).allowed)

    def test_match_deny_reason_names_route_and_what_it_wanted_but_no_query(self) -> None:
        p = policy({"host": "a.example", "matches": [{"paths": ["/v1"], "methods": ["GET"]}]})
        v = decide(get("a.example", "/admin?token=s3cr3t", method="DELETE"), p)
        self.assertEqual(v.rule, RULE_MATCH)
        self.assertIn("routes[0] (a.example)", v.reason)
        self.assertIn("DELETE /admin", v.reason)
        self.assertIn("paths /v1; methods GET", v.reason)
        self.assertNotIn("s3cr3t", v.reason)
        self.assertNotIn("s3cr3t", v.deny_message())

    def test_header_values_never_in_reasons(self) -> None:
        p = policy({"host": "a.example", "matches": [{"headers": {"x-k": "expected-value"}}]})
        v = decide(get("a.example", headers={"x-k": "sent-secret"}), p)
        self.assertNotIn("sent-secret", v.reason)
        self.assertNotIn("expected-value", v.reason)


class HostHeaderTest(unittest.TestCase):
    P = policy({"host": "allowed.example"}, {"host": "other.example"})

    def test_matching_host_header_is_fine(self) -> None:
        for value in ("allowed.example", "ALLOWED.example.", "allowed.example:443"):
            with self.subTest(value=value):
                self.assertTrue(decide(get("allowed.example", host_header=value), self.P).allowed)

    def test_decision_uses_target_not_host_header(self) -> None:
        v = decide(get("evil.example", host_header="allowed.example"), self.P)
        self.assertFalse(v.allowed)
        self.assertEqual(v.rule, RULE_DEFAULT_DENY)
        self.assertEqual(v.host, "evil.example")

    def test_spoofed_host_header_on_allowed_target_is_refused(self) -> None:
        v = decide(get("allowed.example", host_header="other.example"), self.P)
        self.assertFalse(v.allowed)
        self.assertEqual(v.rule, RULE_HOST_HEADER)
        # The header's value is not echoed: it could be the secret being smuggled out.
        self.assertNotIn("other.example", v.reason)
        self.assertIn("allowed.example", v.reason)

    def test_two_host_headers_refused(self) -> None:
        facts = get("allowed.example", headers=[("Host", "allowed.example"), ("host", "allowed.example")])
        self.assertEqual(decide(facts, self.P).rule, RULE_HOST_HEADER)

    def test_garbage_host_header_refused(self) -> None:
        self.assertEqual(decide(get("allowed.example", host_header="a b"), self.P).rule, RULE_HOST_HEADER)

    def test_ipv6_host_header(self) -> None:
        p = policy({"host": "2001:db8::1"})
        self.assertTrue(decide(get("2001:db8::1", host_header="[2001:db8::1]:443", port=443), p).allowed)
        self.assertTrue(decide(get("2001:db8::1", host_header="[2001:db8::1]", port=443), p).allowed)

    def test_a_host_header_naming_another_port_is_refused(self) -> None:
        p = policy({"host": "allowed.example", "ports": [443]})
        for header in ("allowed.example:8443", "[2001:db8::1]:8443"):
            with self.subTest(header=header):
                self.assertFalse(decide(get("allowed.example", host_header=header, port=443), p).allowed)
        v = decide(get("allowed.example", host_header="allowed.example:8443", port=443), p)
        self.assertEqual(v.rule, RULE_HOST_HEADER)
        self.assertIn("another port than 443", v.reason)
        self.assertTrue(decide(get("allowed.example", host_header="allowed.example:443", port=443), p).allowed)


class FactsAndVerdictTest(unittest.TestCase):
    def test_make_normalises(self) -> None:
        f = RequestFacts.make(scheme="HTTP", host="a", port=80, method="get", headers={"X-A": "1"})
        self.assertEqual((f.scheme, f.method, f.headers), ("http", "GET", (("x-a", "1"),)))
        self.assertEqual(f.header_values("X-A"), ["1"])
        self.assertEqual(f.header_values("missing"), [])

    def test_decide_is_pure(self) -> None:
        p = policy({"host": "a.example"})
        facts = get("a.example", "/x")
        self.assertEqual(decide(facts, p), decide(facts, p))

    def test_verdict_is_frozen(self) -> None:
        v = decide(get("a.example"), Policy())
        self.assertIsInstance(v, Verdict)
        with self.assertRaises(AttributeError):
            v.allowed = True  # type: ignore[misc]

    def test_long_paths_truncated_in_reason(self) -> None:
        p = policy({"host": "a.example", "matches": [{"paths": ["/x"]}]})
        v = decide(get("a.example", "/" + "a" * 500), p)
        self.assertLess(len(v.reason), 300)


def v2(*routes: dict, services: dict | None = None) -> Policy:
    return Policy.from_dict({"version": 2, "log": 1, "routes": list(routes), "internal_services": services or {}})


BEARER = {"scheme": "bearer", "token_ref": "API_TOKEN"}


class InternalNamesTest(unittest.TestCase):
    P = v2({"host": "a.example"}, services={"git-gate": 9418, "supervise": 8766})

    def test_listed_service_is_routed_to_its_port(self) -> None:
        for name, port in (("git-gate", 9418), ("supervise", 8766)):
            with self.subTest(name=name):
                v = decide(get(f"{name}.bottle.internal", "/x", port=80, scheme="http"), self.P)
                self.assertTrue(v.allowed)
                self.assertEqual(v.rule, RULE_INTERNAL_SERVICE)
                self.assertEqual((v.internal_service, v.internal_port), (name, port))
                self.assertEqual(v.route_label, f"internal_services.{name}")
                self.assertIsNone(v.route)

    def test_case_and_trailing_dot(self) -> None:
        v = decide(get("Git-Gate.Bottle.Internal.", port=80, scheme="http"), self.P)
        self.assertEqual(v.internal_port, 9418)

    def test_unlisted_or_malformed_names_are_refused_naming_the_rule(self) -> None:
        for host in ("nothing.bottle.internal", "bottle.internal", "a.git-gate.bottle.internal"):
            with self.subTest(host=host):
                v = decide(get(host, port=80, scheme="http"), self.P)
                self.assertFalse(v.allowed)
                self.assertEqual(v.rule, RULE_INTERNAL_NAME)
                self.assertIn("git-gate.bottle.internal", v.reason)  # says what exists

    def test_no_services_at_all(self) -> None:
        v = decide(get("git-gate.bottle.internal", port=80, scheme="http"), v2({"host": "a.example"}))
        self.assertEqual(v.rule, RULE_INTERNAL_NAME)
        self.assertIn("none", v.reason)

    def test_no_tunnel_and_only_port_80(self) -> None:
        v = decide(connect("git-gate.bottle.internal", 443), self.P)
        self.assertEqual(v.rule, RULE_INTERNAL_NAME)
        self.assertIn("plain HTTP", v.reason)
        v = decide(get("git-gate.bottle.internal", port=9418, scheme="http"), self.P)
        self.assertEqual(v.rule, RULE_PORT)

    def test_a_wildcard_route_never_reaches_internal_names(self) -> None:
        p = Policy.from_dict({"version": 2, "routes": [{"host": "*.internal"}]})
        self.assertEqual(decide(get("git-gate.bottle.internal", port=80, scheme="http"), p).rule, RULE_INTERNAL_NAME)

    def test_git_push_to_the_gate_is_allowed_but_nowhere_else(self) -> None:
        path = "/repo.git/git-receive-pack"
        self.assertTrue(decide(get("git-gate.bottle.internal", path, port=80, scheme="http", method="POST"), self.P).allowed)
        self.assertEqual(decide(get("a.example", path, method="POST"), self.P).rule, "git-push")

    def test_host_header_must_agree(self) -> None:
        v = decide(get("git-gate.bottle.internal", port=80, scheme="http", host_header="supervise.bottle.internal"), self.P)
        self.assertEqual(v.rule, RULE_HOST_HEADER)
        ok = decide(get("git-gate.bottle.internal", port=80, scheme="http", host_header="git-gate.bottle.internal"), self.P)
        self.assertTrue(ok.allowed)


class SidecarLocalTest(unittest.TestCase):
    def test_localhost_names_refused(self) -> None:
        p = v2({"host": "*.example"})
        for host in ("localhost", "LOCALHOST.", "api.localhost"):
            with self.subTest(host=host):
                v = decide(get(host), p)
                self.assertEqual(v.rule, RULE_SIDECAR_LOCAL)

    def test_loopback_addresses_are_ip_literals(self) -> None:
        p = v2({"host": "10.0.0.1"})
        for host in ("127.0.0.1", "127.1", "::1", "0.0.0.0", "[::]"):
            with self.subTest(host=host):
                self.assertEqual(decide(get(host), p).rule, RULE_IP_LITERAL)


class CredentialTlsTest(unittest.TestCase):
    def test_plain_http_to_an_auth_route_is_refused(self) -> None:
        p = v2({"host": "api.example", "ports": [80, 443], "auth": BEARER})
        v = decide(get("api.example", port=80, scheme="http"), p)
        self.assertFalse(v.allowed)
        self.assertEqual(v.rule, RULE_CREDENTIAL_TLS)
        self.assertIn("only sent over TLS", v.reason)
        self.assertIn("https://api.example/", v.reason)
        self.assertIn("only sent over TLS", v.deny_message())

    def test_https_to_the_same_route_is_allowed_and_names_it(self) -> None:
        p = v2({"host": "api.example", "ports": [80, 443], "auth": BEARER})
        v = decide(get("api.example"), p)
        self.assertTrue(v.allowed)
        self.assertEqual(v.route.auth.token_ref, "API_TOKEN")

    def test_plain_http_inside_a_tunnel_is_refused_too(self) -> None:
        p = v2({"host": "api.example", "ports": [443], "auth": BEARER})
        self.assertEqual(decide(get("api.example", port=443, scheme="http"), p).rule, RULE_CREDENTIAL_TLS)

    def test_route_that_lists_port_80_on_purpose(self) -> None:
        p = v2({"host": "api.example", "ports": [80], "auth": {**BEARER, "plain_http": True}})
        self.assertTrue(decide(get("api.example", port=80, scheme="http"), p).allowed)

    def test_connect_is_not_judged_on_scheme(self) -> None:
        p = v2({"host": "api.example", "ports": [443], "auth": BEARER})
        self.assertTrue(decide(connect("api.example"), p).allowed)

    def test_a_second_route_without_auth_may_still_allow_plain_http(self) -> None:
        p = v2({"host": "api.example", "ports": [80, 443], "auth": BEARER}, {"host": "api.example", "ports": [80]})
        v = decide(get("api.example", port=80, scheme="http"), p)
        self.assertTrue(v.allowed)
        self.assertEqual(v.route_index, 1)
        self.assertIsNone(v.route.auth)

    def test_matches_still_apply_before_the_tls_rule(self) -> None:
        p = v2({"host": "api.example", "auth": BEARER, "matches": [{"paths": ["/v1"]}]})
        self.assertEqual(decide(get("api.example", "/v2", port=80, scheme="http"), p).rule, RULE_MATCH)
        self.assertEqual(decide(get("api.example", "/v1", port=80, scheme="http"), p).rule, RULE_CREDENTIAL_TLS)


class PassthroughVerdictTest(unittest.TestCase):
    def test_connect_to_passthrough_route(self) -> None:
        p = v2({"host": "files.example", "ports": [443], "tls_passthrough": True}, {"host": "api.example"})
        v = decide(connect("files.example"), p)
        self.assertTrue(v.allowed)
        self.assertTrue(v.passthrough)
        self.assertIn("passed through", v.reason)
        v = decide(connect("api.example"), p)
        self.assertFalse(v.passthrough)
        self.assertIn("intercepted", v.reason)

    def test_passthrough_wins_when_any_allowing_route_asks_for_it(self) -> None:
        p = v2({"host": "*.example", "matches": [{"methods": ["GET"]}]}, {"host": "files.example", "tls_passthrough": True})
        v = decide(connect("files.example"), p)
        self.assertTrue(v.passthrough)
        self.assertEqual(v.route_index, 1)

    def test_a_wildcard_passthrough_does_not_take_a_tunnel_another_route_names_exactly(self) -> None:
        # api.example injects a credential, checks paths and scans; *.example is passed through.
        p = v2({"host": "*.example", "tls_passthrough": True},
               {"host": "api.example", "auth": {"scheme": "bearer", "token_ref": "T"}, "matches": [{"paths": ["/v1/"]}]})
        v = decide(connect("api.example"), p)
        self.assertEqual((v.allowed, v.passthrough, v.route_index), (True, False, 1))
        self.assertTrue(decide(connect("files.example"), p).passthrough)

    def test_the_route_naming_the_host_most_closely_decides_first(self) -> None:
        # A broad route first (a parent bottle's, say) must not take the requests of a route
        # written for that very host: its credential, matches and DLP would never apply.
        p = v2({"host": "*.example"}, {"host": "*.api.example"},
               {"host": "api.example", "auth": {"scheme": "bearer", "token_ref": "T"}})
        self.assertEqual(decide(get("api.example", "/x"), p).route_index, 2)
        self.assertEqual(decide(get("v2.api.example", "/x"), p).route_index, 1, "the longer wildcard")
        self.assertEqual(decide(get("www.example", "/x"), p).route_index, 0)
        # Within one tier the manifest's order stands; a closer route that refuses leaves the rest.
        p = v2({"host": "*.example"}, {"host": "api.example", "matches": [{"paths": ["/v1/"]}]},
               {"host": "api.example"})
        self.assertEqual(decide(get("api.example", "/v1/x"), p).route_index, 1)
        self.assertEqual(decide(get("api.example", "/other"), p).route_index, 2)

    def test_port_rules_still_apply(self) -> None:
        p = v2({"host": "files.example", "ports": [443], "tls_passthrough": True})
        self.assertEqual(decide(connect("files.example", 8443), p).rule, RULE_PORT)
        self.assertEqual(decide(connect("other.example"), p).rule, RULE_DEFAULT_DENY)


class AbsoluteFormDecideTest(unittest.TestCase):
    def test_authority_must_name_the_target(self) -> None:
        p = v2({"host": "a.example"}, {"host": "b.example"})
        facts = RequestFacts.make(scheme="https", host="a.example", port=443, path="/", authority="b.example")
        v = decide(facts, p)
        self.assertFalse(v.allowed)
        self.assertEqual(v.rule, "absolute-form-mismatch")



class ParserDifferentialTest(unittest.TestCase):
    """Requests an upstream could read differently from how the proxy judged them."""

    P = policy({"host": "pypi.org", "ports": [443], "matches": [{"paths": ["/simple/"], "methods": ["GET"]}]},
               {"host": "api.example.com", "ports": [443], "matches": [{"paths": ["/v1/"], "methods": ["GET", "POST"]}]},
               {"host": "team.example", "ports": [443], "matches": [{"headers": {"x-team": "blue"}}]})

    def test_a_path_override_header_must_keep_to_the_routes_paths_too(self) -> None:
        # IIS URL Rewrite and older Symfony/Zend route by these headers instead of the path.
        for name in ("X-Original-URL", "x-rewrite-url", "X_Original_Url"):
            with self.subTest(name=name):
                self.assertFalse(decide(get("pypi.org", "/simple/x/", headers={name: "/upload/"}), self.P).allowed)
                self.assertFalse(decide(get("pypi.org", "/simple/x/", headers={name: "/simple/../upload"}), self.P).allowed)
                self.assertTrue(decide(get("pypi.org", "/simple/x/", headers={name: "/simple/y/"}), self.P).allowed)

    def test_a_fragment_or_whitespace_in_the_target_is_refused(self) -> None:
        for path in ("/simple/#/../../upload", "/simple/#", "/simple/ x", "/simple/\tx", "/simple/\x7f", "/simple/\x01"):
            with self.subTest(path=path):
                v = decide(get("pypi.org", path), self.P)
                self.assertFalse(v.allowed)
                self.assertEqual(v.rule, "request-target")
        self.assertTrue(decide(get("pypi.org", "/simple/pkg/?q=a%20b%23c"), self.P).allowed)

    def test_method_overrides_must_be_allowed_methods_too(self) -> None:
        for headers, path in (
            ({"X-HTTP-Method-Override": "DELETE"}, "/v1/items/42"),
            ({"X-HTTP-Method": "PUT"}, "/v1/items/42"),
            ({"X-Method-Override": "patch"}, "/v1/items/42"),
            ({}, "/v1/items/42?_method=DELETE"),
            ({}, "/v1/items/42?a=1&_METHOD=delete"),
            ({}, "/v1/items/42?%5Fmethod=DELETE"),
        ):
            with self.subTest(headers=headers, path=path):
                v = decide(get("api.example.com", path, method="POST", headers=headers), self.P)
                self.assertFalse(v.allowed)
                self.assertEqual(v.rule, RULE_MATCH)
                self.assertIn("method override", v.reason)
        # Names PHP rewrites to _method, and fields split on ";" by some parsers.
        for path in ("/v1/items/42?.method=DELETE", "/v1/items/42?%2emethod=PUT", "/v1/items/42?+method=DELETE",
                     "/v1/items/42?%20method=DELETE", "/v1/items/42?[method=DELETE", "/v1/items/42?%5Bmethod=PATCH",
                     "/v1/items/42?_method%00x=DELETE", "/v1/items/42?a=1;_method=DELETE",
                     "/v1/items/42?a=1&b=2;.method=DELETE"):
            with self.subTest(path=path):
                v = decide(get("api.example.com", path, method="POST"), self.P)
                self.assertFalse(v.allowed)
                self.assertEqual(v.rule, RULE_MATCH)
        benign = "/v1/items/42?payment_method=DELETE&x_method=PUT&method=DELETE&_method_x=PUT&a.b=DELETE;x.method=PUT"
        self.assertTrue(decide(get("api.example.com", benign, method="POST"), self.P).allowed)
        smuggled = decide(get("api.example.com", "/v1/", method="POST",
                              headers={"X-HTTP-Method": "ghp_0123456789abcdefghijklmnopqrstuvwxyz"}), self.P)
        self.assertNotIn("ghp_", smuggled.reason)
        allowed = get("api.example.com", "/v1/items/42?_method=GET", method="POST",
                      headers={"X-HTTP-Method-Override": "POST"})
        self.assertTrue(decide(allowed, self.P).allowed)
        # A route without a methods list allows every method, overrides included.
        open_route = policy({"host": "api.example.com", "ports": [443]})
        self.assertTrue(decide(get("api.example.com", "/x?_method=DELETE", method="POST"), open_route).allowed)

    def test_header_conditions_hold_for_underscore_spellings(self) -> None:
        self.assertTrue(decide(get("team.example", headers=[("X-Team", "blue")]), self.P).allowed)
        for extra in (("X_Team", "red"), ("x_team", "blue2")):
            with self.subTest(extra=extra):
                self.assertFalse(decide(get("team.example", headers=[("X-Team", "blue"), extra]), self.P).allowed)
        self.assertTrue(decide(get("team.example", headers=[("X_Team", "blue")]), self.P).allowed)


class BodyMethodOverrideTest(unittest.TestCase):
    """A form field ``_method`` (Rails, Laravel, Symfony) is a method override too."""

    P = ParserDifferentialTest.P

    def verdict(self):
        v = decide(get("api.example.com", "/v1/items/42", method="POST"), self.P)
        self.assertTrue(v.allowed)
        return v

    def test_a_form_field_asking_for_another_method_is_refused(self) -> None:
        from bot_bottle.sidecar.egress.core import body_method_problem

        v = self.verdict()
        form = "application/x-www-form-urlencoded"
        multipart = "multipart/form-data; boundary=B"
        part = b'--B\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--B--\r\n'
        for ctype, body in ((form, b"a=1&_method=DELETE"), (form, b"_METHOD=patch"), (form, b"%5Fmethod=PUT"),
                            (multipart, part)):
            with self.subTest(body=body):
                why = body_method_problem(v, ctype, body)
                self.assertIsNotNone(why)
                self.assertIn("_method", why)
        for ctype, body in ((form, b"a=1&_method=POST"), (form, b"a=1"), ("application/json", b'{"method": "DELETE"}'),
                            (multipart, part.replace(b"DELETE", b"GET"))):
            with self.subTest(ok=body):
                self.assertIsNone(body_method_problem(v, ctype, body))
        # Names PHP rewrites to _method, and fields split on ";" by some parsers.
        for ctype, body in ((form, b"a=1&.method=DELETE"), (form, b"%2Emethod=PUT"), (form, b"+method=DELETE"),
                            (form, b"%20method=DELETE"), (form, b"[method=DELETE"), (form, b"_method%00=PUT"),
                            (form, b"a=1;_method=DELETE"), (form, b"a=1&b=2;%5Bmethod=DELETE"),
                            (multipart, part.replace(b'"_method"', b'".method"')),
                            (multipart, part.replace(b'"_method"', b'"[method"')),
                            (multipart, part.replace(b'"_method"', b'" method"')),
                            (multipart, part.replace(b'"_method"', b'"   _method"'))):
            with self.subTest(rewritten=body):
                self.assertIsNotNone(body_method_problem(v, ctype, body))
        for ctype, body in ((form, b"payment_method=DELETE&x_method=PUT&method=DELETE&_method_x=PUT&a.b=DELETE"),
                            (form, b"a=1;payment_method=DELETE;x.method=PUT;method=DELETE"),
                            (multipart, part.replace(b'"_method"', b'"payment_method"')),
                            (multipart, part.replace(b'"_method"', b'"method"')),
                            (multipart, part.replace(b'"_method"', b'"a.b"'))):
            with self.subTest(benign=body):
                self.assertIsNone(body_method_problem(v, ctype, body))
        # Multipart names some parser decodes to _method: RFC 2231 / 5987 extended parameters and
        # continuations, percent-encoding, backslash escapes, blanks around "=".
        for params in (b"name*=UTF-8''%5Fmethod", b"name*=utf-8''_method", b"name*=UTF-8'en'%5fmethod",
                       b'name*0="_me"; name*1="thod"', b'name="%5Fmethod"', b'name="\\_method"',
                       b'name="%2E%6Dethod"', b'name = "_method"'):
            body = part.replace(b'name="_method"', params)
            with self.subTest(encoded=body):
                self.assertIsNotNone(body_method_problem(v, multipart, body))
                self.assertIsNone(body_method_problem(v, multipart, body.replace(b"DELETE", b"POST")))
        for params in (b"name*=UTF-8''payment%5Fmethod", b"name*=UTF-8''%6Dethod", b'name="\\tmethod"',
                       b"filename*=UTF-8''%5Fmethod; name=f", b'name="%5Fmeth"'):
            with self.subTest(benign_encoded=params):
                self.assertIsNone(body_method_problem(v, multipart, part.replace(b'name="_method"', params)))
        # A route without a methods list: anything goes.
        open_verdict = decide(get("api.example.com", "/x", method="POST"), policy({"host": "api.example.com", "ports": [443]}))
        self.assertIsNone(body_method_problem(open_verdict, form, b"_method=DELETE"))

if __name__ == "__main__":
    unittest.main()
