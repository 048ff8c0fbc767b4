"""Red-team checks of the egress route rules, second round: a credential the agent puts in the
query or a cookie on a credentialed route, headers that name another host for the upstream to
serve, a Connection header that makes a hop downstream drop what the route checked, and path
segments IIS reads as dot segments once it trims their trailing dots and spaces.

The pure decision logic is fed plain facts; the addon is fed mitmproxy's own test flows (no
socket is opened).
"""

from __future__ import annotations

import json
import unittest

from bot_bottle.sidecar.egress import credentials
from bot_bottle.sidecar.egress.core import RequestFacts, Verdict, decide
from bot_bottle.sidecar.egress.policy import Policy
from tests._requires import requires
from tests.unit.test_sidecar_addon import REAL_TOKEN, AddonCase, addon_mod

ATTACKER = "attacker-pat-7c1e9b"

POLICY = Policy.from_dict({"version": 2, "internal_services": {"git-gate": 9418}, "routes": [
    {"host": "open.example", "ports": [443]},
    {"host": "api.example", "ports": [443], "auth": {"scheme": "bearer", "token_ref": "T"}},
    {"host": "keyed.example", "ports": [443], "auth": {"scheme": "header", "token_ref": "T", "header": "x-goog-api-key"}},
    {"host": "team.example", "ports": [443], "matches": [{"headers": {"x-team": "blue"}}]},
    {"host": "files.example", "ports": [443], "matches": [{"paths": ["/public/"]}]},
]})


def _decide(**kw) -> Verdict:
    kw.setdefault("scheme", "https")
    kw.setdefault("port", 443)
    return decide(RequestFacts.make(**kw), POLICY)


class CredentialInQueryTest(unittest.TestCase):
    """On a route with ``auth`` the proxy injects the credential in a header. A credential the
    agent puts in the query (an attacker's token) is one some APIs take instead (GitLab's
    ``private_token``, OAuth's ``access_token``, Google's ``key``): the request would act as the
    attacker's account, with what the agent sends pushed into it."""

    def test_credential_parameters_are_refused_on_a_credentialed_route(self) -> None:
        for query, named in (
            ("access_token=" + ATTACKER, "access_token"), ("api_key=" + ATTACKER, "api_key"),
            ("key=" + ATTACKER, "key"), ("token=" + ATTACKER, "token"), ("client_secret=x", "client_secret"),
            ("private_token=x", "private_token"), ("a=1&bearer_token=x", "bearer_token"),
            ("subscription-key=x", "subscription_key"), ("auth=x", "auth"),
        ):
            for host in ("api.example", "keyed.example"):
                with self.subTest(host=host, query=query):
                    verdict = _decide(host=host, path="/v1/things?" + query)
                    self.assertEqual((verdict.allowed, verdict.rule), (False, "credential-in-query"))
                    self.assertIn(f"({named})", verdict.reason)
                    self.assertNotIn(ATTACKER, verdict.reason)
                    self.assertIsNotNone(verdict.route)

    def test_every_spelling_a_framework_reads_as_the_name_is_refused(self) -> None:
        for query in ("Access-Token=x", "accessToken=x", "ACCESS_TOKEN=x", "access.token=x", "access+token=x",
                      "access%5Ftoken=x", "access%255Ftoken=x", "token[]=x", "token[0]=x", "token%00x=y",
                      "a=1;token=x", "apiKey=x", "api-key=x"):
            with self.subTest(query=query):
                self.assertEqual(_decide(host="api.example", path="/x?" + query).rule, "credential-in-query")

    def test_the_query_of_a_path_a_rewriting_server_routes_by_counts(self) -> None:
        verdict = _decide(host="api.example", path="/x", headers=[("x-original-url", "/y?access_token=x")])
        self.assertEqual(verdict.rule, "credential-in-query")

    def test_other_parameters_pass(self) -> None:
        for query in ("page_token=abc", "pageToken=abc", "keyword=a", "monkey=1", "tokens=3", "k=v", "q=token",
                      "sort=key", "next=/a?token=x"):
            with self.subTest(query=query):
                self.assertTrue(_decide(host="api.example", path="/x?" + query).allowed)

    def test_a_route_without_auth_leaves_the_query_to_the_agent(self) -> None:
        self.assertTrue(_decide(host="open.example", path="/x?access_token=x&key=y").allowed)

    def test_the_names_read_alike_whatever_their_spelling(self) -> None:
        self.assertEqual(credentials.credential_param("Client-Secret"), "client_secret")
        self.assertEqual(credentials.credential_param(" access token"), "access_token")
        self.assertIsNone(credentials.credential_param("keys"))


class ForwardedHostTest(unittest.TestCase):
    """The agent is a client, never a proxy: a header naming a host for the upstream to serve
    (front ends and multi-tenant apps that honour it serve that host or tenant instead)."""

    def test_host_naming_proxy_headers_are_refused(self) -> None:
        for name, value in (("x-forwarded-host", "evil.example"), ("X_Forwarded_Host", "evil.example"),
                            ("x-forwarded-server", "evil.example"), ("x-original-host", "evil.example"),
                            ("x-host", "evil.example"), ("x-http-host-override", "evil.example"),
                            ("x-forwarded-host", "open.example"),
                            ("forwarded", "for=192.0.2.1;host=evil.example"), ("forwarded", "Host = evil.example"),
                            ("forwarded", "for=192.0.2.1, host=evil.example")):
            for host in ("open.example", "api.example", "git-gate.bottle.internal"):
                with self.subTest(name=name, value=value, host=host):
                    port = 80 if host.endswith(".internal") else 443
                    verdict = _decide(host=host, port=port, scheme="http" if port == 80 else "https",
                                      headers=[(name, value)])
                    self.assertEqual((verdict.allowed, verdict.rule), (False, "forwarded-host"))
                    self.assertNotIn("evil", verdict.reason)

    def test_forwarded_without_a_host_passes(self) -> None:
        for value in ("for=192.0.2.1", "for=192.0.2.1;proto=https", 'for="_hidden";by=x'):
            with self.subTest(value=value):
                self.assertTrue(_decide(host="open.example", headers=[("forwarded", value)]).allowed)
        self.assertTrue(_decide(host="open.example", headers=[("x-forwarded-proto", "https")]).allowed)


class HopByHopTest(unittest.TestCase):
    """RFC 9110 section 7.6.1: a proxy removes the headers ``Connection`` names. mitmproxy
    forwards an HTTP/1 request's Connection header as sent, so a hop behind it would remove, after
    the route's check, a header the route's ``matches`` required, the Content-Type the body check
    read the body by, or the Content-Length that frames the body."""

    def test_a_connection_header_naming_another_header_is_refused(self) -> None:
        for value in ("x-team", "keep-alive, X-Team", "content-length", "content-type", "authorization",
                      "close, transfer-encoding", "host"):
            with self.subTest(connection=value):
                verdict = _decide(host="team.example", headers=[("x-team", "blue"), ("connection", value)])
                self.assertEqual((verdict.allowed, verdict.rule), (False, "hop-by-hop"))
                self.assertNotIn("x-team", verdict.reason.lower())
        verdict = _decide(host="api.example", headers=[("connection", "Authorization")])
        self.assertEqual(verdict.rule, "hop-by-hop")

    def test_what_clients_send_passes(self) -> None:
        for value in ("close", "keep-alive", "Keep-Alive", "Upgrade", "keep-alive, Upgrade", "Upgrade, HTTP2-Settings",
                      "TE, close", "", " , close"):
            with self.subTest(connection=value):
                verdict = _decide(host="team.example", headers=[("x-team", "blue"), ("connection", value)])
                self.assertTrue(verdict.allowed, verdict.reason)


class TrailingDotSegmentTest(unittest.TestCase):
    """IIS (and Windows paths) trim a segment's trailing dots and spaces: ``..%20``, ``...`` or
    ``..%2e`` reach it as ``..`` and lead out of an allowed prefix."""

    def test_segments_of_dots_and_spaces_are_refused_under_a_path_rule(self) -> None:
        for path in ("/public/..%20/secret", "/public/.../secret", "/public/..%2e/secret", "/public/%2e%2e%20/secret",
                     "/public/.%20/x", "/public/....", "/public/.. ;x/secret".replace(" ", "%20"),
                     "/public/..%20%20/secret", "/allowed./../secret", "/public/x/../../secret"):
            with self.subTest(path=path):
                verdict = _decide(host="files.example", path=path)
                self.assertEqual((verdict.allowed, verdict.rule), (False, "match"))
                self.assertIn("dot segments", verdict.reason)

    def test_the_rewrite_header_is_held_to_it_too(self) -> None:
        verdict = _decide(host="files.example", path="/public/a", headers=[("x-original-url", "/public/..%20/secret")])
        self.assertEqual((verdict.allowed, verdict.rule), (False, "match"))

    def test_names_with_dots_still_pass(self) -> None:
        for path in ("/public/a.b", "/public/file.", "/public/.hidden", "/public/v1.2/x", "/public/a%20b/..a"):
            with self.subTest(path=path):
                self.assertTrue(_decide(host="files.example", path=path).allowed)


@requires(addon_mod is not None, "mitmproxy (the dev extra)")
class ThroughTheAddonTest(AddonCase):
    def test_a_credential_in_the_query_gets_a_403_and_no_credential_goes_out(self) -> None:
        flow = self.request_flow("bearer.example", port=443, scheme="https", path=f"/x?private_token={ATTACKER}",
                                 headers=[("Host", "bearer.example")])
        flow, lines = self.exchange(flow)
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(flow.response.headers["X-Bot-Bottle-Rule"], "credential-in-query")
        self.assertIn("private_token", flow.response.get_text())
        self.assertEqual(lines[0]["rule"], "credential-in-query")
        self.assertNotIn(REAL_TOKEN, str(flow.request.headers))
        self.assertNotIn(ATTACKER, flow.response.get_text())

    def test_the_agents_cookies_and_other_token_headers_are_stripped_on_a_credentialed_route(self) -> None:
        # Short values, which the route's DLP does not take for secrets: only the stripping is tested.
        sent = [("Host", "bearer.example"), ("Cookie", "sid=acct-b"), ("cookie", "csrf=acct-b"),
                ("X-Vault-Token", "acct-b"), ("X-Auth-Key", "acct-b"), ("Circle-Token", "acct-b")]
        flow, lines = self.exchange(self.request_flow("bearer.example", port=443, scheme="https", headers=sent))
        self.assertEqual(flow.response.status_code, 200, lines)
        self.assertNotIn("acct-b", str(flow.request.headers))
        self.assertNotIn("cookie", flow.request.headers)
        self.assertEqual(flow.request.headers["authorization"], f"Bearer {REAL_TOKEN}")

    def test_cookies_are_the_agents_own_on_a_route_without_auth(self) -> None:
        flow = self.request_flow("allowed.example", headers=[("Host", "allowed.example"), ("Cookie", "a=1")])
        flow, _ = self.exchange(flow)
        self.assertEqual(flow.response.status_code, 200)
        self.assertEqual(flow.request.headers["cookie"], "a=1")

    def test_a_forwarded_host_is_refused_before_the_credential_goes_in(self) -> None:
        flow = self.request_flow("bearer.example", port=443, scheme="https",
                                 headers=[("Host", "bearer.example"), ("X-Forwarded-Host", "other-tenant.example")])
        flow, lines = self.exchange(flow)
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "forwarded-host")
        self.assertNotIn(REAL_TOKEN, str(flow.request.headers))
        self.assertNotIn("other-tenant", flow.response.get_text() + json.dumps(lines))

    def test_a_connection_header_naming_content_length_is_refused(self) -> None:
        flow = self.request_flow("allowed.example", method="POST", content=b"12345",
                                 headers=[("Host", "allowed.example"), ("Content-Length", "5"),
                                          ("Connection", "keep-alive, Content-Length")])
        flow, lines = self.exchange(flow)
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "hop-by-hop")

    def test_a_websocket_handshake_still_passes(self) -> None:
        flow = self.request_flow("allowed.example", headers=[
            ("Host", "allowed.example"), ("Connection", "keep-alive, Upgrade"), ("Upgrade", "websocket"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")])
        flow, lines = self.exchange(flow)
        self.assertEqual(flow.response.status_code, 200)
        self.assertEqual(lines[0]["decision"], "allow")


if __name__ == "__main__":
    unittest.main()
