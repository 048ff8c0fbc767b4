"""Red-team checks of the egress route rules: requests a route does not allow, as an agent would
shape them to slip past, and credentials that must not reach another host.

The pure decision logic is fed plain facts; the addon is fed mitmproxy's own test flows (no
socket is opened).
"""

from __future__ import annotations

import unittest

from bot_bottle.sidecar.egress.core import RequestFacts, Verdict, decide
from bot_bottle.sidecar.egress.policy import Policy
from tests._requires import requires
from tests.unit.test_sidecar_addon import REAL_TOKEN, AddonCase, addon_mod


@requires(addon_mod is not None, "mitmproxy (the dev extra)")
class Http2AuthorityTest(AddonCase):
    """An HTTP/2 request carries its host twice, as ``:authority`` and optionally a ``Host``
    header. mitmproxy forwards ``:authority`` as sent to an HTTP/2 upstream, which routes by it
    (a CDN's front end serves many tenants): the ``Host`` header alone must not decide."""

    def h2_flow(self, host: str, authority: str):
        """An HTTP/2 request inside a tunnel to ``host``, with a Host header naming it."""
        flow = self.request_flow(host, port=443, scheme="https", headers=[("Host", host)], authority=authority)
        flow.request.http_version = "HTTP/2.0"
        return flow

    def test_authority_naming_another_host_is_refused_even_with_a_matching_host_header(self) -> None:
        flow, lines = self.exchange(self.h2_flow("allowed.example", "evil.example"))
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "absolute-form-mismatch")
        self.assertIn(":authority", flow.response.get_text())
        self.assertEqual(flow.response.headers["Connection"], "close")

    def test_authority_naming_another_port_is_refused(self) -> None:
        flow, lines = self.exchange(self.h2_flow("allowed.example", "allowed.example:8443"))
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "absolute-form-mismatch")

    def test_the_credential_never_goes_out_under_another_authority(self) -> None:
        flow, _ = self.exchange(self.h2_flow("bearer.example", "other-tenant.example"))
        self.assertEqual(flow.response.status_code, 403)
        self.assertNotIn(REAL_TOKEN, str(flow.request.headers))

    def test_agreeing_authority_and_host_header_are_allowed(self) -> None:
        for authority in ("allowed.example", "ALLOWED.example.", "allowed.example:443"):
            with self.subTest(authority=authority):
                flow, lines = self.exchange(self.h2_flow("allowed.example", authority))
                self.assertEqual(flow.response.status_code, 200)
                self.assertEqual(lines[0]["decision"], "allow")

    def test_a_path_that_is_an_absolute_url_is_refused(self) -> None:
        # mitmproxy forwards an HTTP/2 :path as sent; an upstream that reads an absolute URL
        # there routes by its host, whatever :authority says.
        for path in ("https://evil.example/x", "http://evil.example:443/", "evil.example/x", ""):
            with self.subTest(path=path):
                flow = self.h2_flow("bearer.example", "bearer.example")
                flow.request.path = path
                flow, lines = self.exchange(flow)
                self.assertEqual(flow.response.status_code, 403)
                self.assertEqual(lines[0]["rule"], "request-target")
                self.assertNotIn(REAL_TOKEN, str(flow.request.headers))

    def test_an_http1_host_header_hiding_another_host_is_refused(self) -> None:
        # Toward an HTTP/2 upstream mitmproxy sends an HTTP/1 request's Host header as its
        # :authority, where "bearer.example:443@evil.example" is userinfo, then evil.example.
        flow = self.request_flow("bearer.example", port=443, scheme="https",
                                 headers=[("Host", "bearer.example:443@evil.example")])
        flow, lines = self.exchange(flow)
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "host-header-mismatch")
        self.assertNotIn(REAL_TOKEN, str(flow.request.headers))

    def test_credential_goes_out_when_both_name_the_route(self) -> None:
        flow, _ = self.exchange(self.h2_flow("bearer.example", "bearer.example"))
        self.assertEqual(flow.response.status_code, 200)
        self.assertEqual(flow.request.headers["authorization"], f"Bearer {REAL_TOKEN}")


POLICY = Policy.from_dict({"version": 2, "routes": [
    {"host": "allowed.example", "ports": [80, 443]},
    {"host": "api.example", "ports": [443], "matches": [{"paths": ["/api/"], "methods": ["GET"]}]},
]})


def _decide(**kw) -> Verdict:
    kw.setdefault("scheme", "https")
    kw.setdefault("port", 443)
    return decide(RequestFacts.make(**kw), POLICY)


class HostHeaderPortTest(unittest.TestCase):
    """A Host header (or authority) whose port is not digits: ``a:80@b`` names ``b`` to a server
    that reads it as a URL authority (userinfo ``a:80``, then the host), and an HTTP/2 upstream
    gets a Host header as ``:authority``."""

    def test_a_port_that_is_not_digits_is_refused(self) -> None:
        for value in ("allowed.example:80@evil.example", "allowed.example:@evil.example",
                      "allowed.example:443#@evil.example", "allowed.example:abc", "allowed.example:+443",
                      "allowed.example:\u0664\u0664\u0663"):
            with self.subTest(host_header=value):
                verdict = _decide(host="allowed.example", headers=[("host", value)])
                self.assertFalse(verdict.allowed)
                self.assertEqual(verdict.rule, "host-header-mismatch")
                self.assertNotIn("evil", verdict.reason)

    def test_text_after_a_bracketed_address_is_refused(self) -> None:
        v6 = Policy.from_dict({"version": 2, "routes": [{"host": "2001:db8::1", "ports": [443]}]})
        for value in ("[2001:db8::1]@evil.example", "[2001:db8::1].evil.example:443"):
            with self.subTest(host_header=value):
                facts = RequestFacts.make(scheme="https", host="2001:db8::1", port=443, headers=[("host", value)])
                self.assertEqual(decide(facts, v6).rule, "host-header-mismatch")

    def test_the_absolute_form_authority_is_held_to_the_same_shape(self) -> None:
        verdict = _decide(host="allowed.example", authority="allowed.example:443@evil.example")
        self.assertEqual((verdict.allowed, verdict.rule), (False, "absolute-form-mismatch"))

    def test_plain_host_headers_still_pass(self) -> None:
        for value in ("allowed.example", "allowed.example:443", "ALLOWED.example.", "allowed.example:",
                      "allowed.example:0443"):
            with self.subTest(host_header=value):
                self.assertTrue(_decide(host="allowed.example", headers=[("host", value)]).allowed)
        v6 = Policy.from_dict({"version": 2, "routes": [{"host": "2001:db8::1", "ports": [443]}]})
        for value in ("[2001:db8::1]", "[2001:db8::1]:443"):
            with self.subTest(host_header=value):
                facts = RequestFacts.make(scheme="https", host="2001:db8::1", port=443, headers=[("host", value)])
                self.assertTrue(decide(facts, v6).allowed)


class RequestTargetTest(unittest.TestCase):
    def test_only_a_path_or_an_asterisk_is_a_request_target(self) -> None:
        for path in ("http://evil.example/", "evil.example/", "", "?a=b"):
            with self.subTest(path=path):
                verdict = _decide(host="allowed.example", path=path)
                self.assertEqual((verdict.allowed, verdict.rule), (False, "request-target"))
        self.assertTrue(_decide(host="allowed.example", method="OPTIONS", path="*").allowed)
        self.assertTrue(_decide(host="allowed.example", path="/a?b=http://c.example/").allowed)


class PathEscapesTest(unittest.TestCase):
    """Escapes a server decodes into a dot segment that the path rule did not see as one."""

    def test_escapes_some_servers_decode_to_dots_are_refused_under_a_path_rule(self) -> None:
        for path in ("/api/%u002e%u002e/admin", "/api/%U002E%U002E/admin", "/api/..%3b/admin",
                     "/api/..%3Bx/admin", "/api/%c0%ae%c0%ae/admin", "/api/%e0%80%ae%e0%80%ae/admin",
                     "/api/%c0%af..%c0%afadmin", "/api/%f0%80%80%ae./admin"):
            with self.subTest(path=path):
                verdict = _decide(host="api.example", path=path)
                self.assertFalse(verdict.allowed)
                self.assertEqual(verdict.rule, "match")
                self.assertIn("escapes", verdict.reason)

    def test_ordinary_escapes_and_semicolons_still_pass(self) -> None:
        for path in ("/api/caf%C3%A9", "/api/%e0%a4%85", "/api/a%3bb", "/api/x;v=1/y", "/api/%3b..x",
                     "/api/%e2%82%ac"):
            with self.subTest(path=path):
                self.assertTrue(_decide(host="api.example", path=path).allowed)


class RewrittenPathOverrideTest(unittest.TestCase):
    """A server that routes by ``X-Original-URL`` reads its query too, ``_method`` included."""

    def test_a_method_override_in_the_rewritten_paths_query_is_held_to_the_methods(self) -> None:
        for name in ("X-Original-URL", "X-Rewrite-URL", "X_Original_URL"):
            with self.subTest(header=name):
                verdict = _decide(host="api.example", path="/api/x", headers=[(name, "/api/x?_method=DELETE")])
                self.assertEqual((verdict.allowed, verdict.rule), (False, "match"))
                self.assertIn("DELETE", verdict.reason)

    def test_a_plain_rewritten_path_under_the_rule_still_passes(self) -> None:
        verdict = _decide(host="api.example", path="/api/x", headers=[("X-Original-URL", "/api/y?_method=GET&a=b")])
        self.assertTrue(verdict.allowed)


@requires(addon_mod is not None, "mitmproxy (the dev extra)")
class TraceOnACredentialedRouteTest(AddonCase):
    """TRACE asks the upstream to answer with the request as received: on a route that injects
    a credential, that is the credential handed back, in whatever form the upstream echoes."""

    def test_trace_is_refused_before_the_credential_goes_in(self) -> None:
        for method, headers in (("TRACE", []), ("POST", [("X-HTTP-Method-Override", "TRACE")])):
            with self.subTest(method=method):
                flow = self.request_flow("bearer.example", port=443, scheme="https", method=method,
                                         headers=[("Host", "bearer.example"), *headers])
                flow, lines = self.exchange(flow)
                self.assertEqual(flow.response.status_code, 403)
                self.assertEqual(lines[0]["rule"], "credential-echo")
                self.assertNotIn(REAL_TOKEN, str(flow.request.headers))

    def test_trace_on_a_route_without_a_credential_is_its_own_business(self) -> None:
        flow = self.request_flow("allowed.example", port=443, scheme="https", method="TRACE")
        flow, lines = self.exchange(flow)
        self.assertEqual((flow.response.status_code, lines[0]["decision"]), (200, "allow"))

    def test_other_methods_still_get_the_credential(self) -> None:
        flow = self.request_flow("bearer.example", port=443, scheme="https", method="OPTIONS")
        flow, _ = self.exchange(flow)
        self.assertEqual(flow.request.headers["authorization"], f"Bearer {REAL_TOKEN}")
