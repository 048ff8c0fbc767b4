"""Red-team checks of the egress route rules, third round: a credential field the agent puts in
the body of a request on a credentialed route, a ``Proxy-Connection`` header that makes a hop
behind drop what the route checked, request targets that read as a URL naming another host
(``//evil.example/x``), and characters Windows servers read as a dot or a slash in a path under a
path rule (``/api/．．／admin``).

The pure decision logic is fed plain facts; the addon is fed mitmproxy's own test flows (no
socket is opened).
"""

from __future__ import annotations

import json
import unittest

from bot_bottle.sidecar.egress import credentials, structure
from bot_bottle.sidecar.egress.body_credential import (
    OVERLONG_PART_HEADER,
    STREAM_LINE_CAP,
    body_credential_field,
    body_credential_problem,
    body_credential_reason,
    credential_stream,
    credential_stream_feed,
)
from bot_bottle.sidecar.egress.core import RULE_CREDENTIAL_BODY, RequestFacts, Verdict, decide
from bot_bottle.sidecar.egress.policy import Policy
from tests._requires import requires
from tests.unit.test_sidecar_addon import REAL_TOKEN, AddonCase, addon_mod

ATTACKER = "attacker-pat-7c1e9b"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
MULTIPART = "multipart/form-data; boundary=b"

POLICY = Policy.from_dict({"version": 2, "internal_services": {"git-gate": 9418}, "routes": [
    {"host": "open.example", "ports": [443]},
    {"host": "api.example", "ports": [443], "auth": {"scheme": "header", "token_ref": "T", "header": "private-token"}},
    {"host": "files.example", "ports": [443], "matches": [{"paths": ["/api/"]}]},
]})
AUTH_ROUTE = Verdict(True, "api.example", 443, "route", "", POLICY.routes[1], 1)
OPEN_ROUTE = Verdict(True, "open.example", 443, "route", "", POLICY.routes[0], 0)


def _decide(**kw) -> Verdict:
    kw.setdefault("scheme", "https")
    kw.setdefault("port", 443)
    return decide(RequestFacts.make(**kw), POLICY)


def _part(disposition: str, value: str = ATTACKER) -> bytes:
    return f"--b\r\nContent-Disposition: form-data; {disposition}\r\n\r\n{value}\r\n--b--\r\n".encode()


class CredentialInBodyTest(unittest.TestCase):
    """GitLab (Grape) reads ``private_token`` and ``job_token`` from the parameters, a form's
    fields and a JSON body's top-level keys among them, before its token headers; Doorkeeper
    takes ``access_token`` there. A credential field the agent puts in the body of a request on a
    route that injects one makes the request act as the account it names."""

    def test_a_form_field_naming_a_credential_is_refused(self) -> None:
        for body, named in (
            (f"title=x&private_token={ATTACKER}", "private_token"), (f"access_token={ATTACKER}", "access_token"),
            ("a=1;job_token=x", "job_token"), ("client_secret=x&client_id=y", "client_secret"),
            ("oauth_token=x", "oauth_token"), ("bearer_token=x", "bearer_token"),
            ("Private-Token=x", "private_token"), ("accessToken=x", "access_token"), ("access+token=x", "access_token"),
            ("access%20token=x", "access_token"), ("%70rivate_token=x", "private_token"),
            ("private%5Ftoken=x", "private_token"), ("private%255ftoken=x", "private_token"),
            ("%70%72%69%76%61%74%65%5f%74%6f%6b%65%6e=x", "private_token"), ("private_token[]=x", "private_token"),
            ("PRIVATE_TOKEN=x", "private_token"), ("private.token=x", "private_token"),
        ):
            for content_type in (FORM, "", "application/x-www-form-urlencoded; charset=utf-8"):
                with self.subTest(body=body, content_type=content_type):
                    reason = body_credential_problem(AUTH_ROUTE, content_type, body.encode())
                    self.assertIsNotNone(reason)
                    self.assertIn(f"({named})", reason)
                    self.assertIn("routes[1] (api.example)", reason)
                    self.assertNotIn(ATTACKER, reason)

    def test_a_json_body_with_a_top_level_credential_key_is_refused(self) -> None:
        for body, named in (
            ({"title": "x", "private_token": ATTACKER}, "private_token"), ({"access_token": ATTACKER}, "access_token"),
            ({"Client-Secret": "x"}, "client_secret"), ({"jobToken": "x"}, "job_token"),
        ):
            for content_type in (JSON, "application/vnd.api+json", "application/json; charset=utf-8"):
                with self.subTest(body=body, content_type=content_type):
                    reason = body_credential_problem(AUTH_ROUTE, content_type, json.dumps(body).encode())
                    self.assertIn(f"({named})", reason or "")
                    self.assertNotIn(ATTACKER, reason or "")

    def test_a_json_key_spelt_with_escapes_is_read_as_its_name(self) -> None:
        body = b'{"\\u0070rivate\\u005ftoken": "x"}'
        self.assertEqual(body_credential_field(JSON, body), "private_token")

    def test_a_json_body_python_cannot_read_is_refused_when_it_may_name_one(self) -> None:
        # Ruby's parser takes comments: the upstream may read the key Python cannot.
        reason = body_credential_problem(AUTH_ROUTE, JSON, b'{"a": 1 /* x */, "private_token": "x"}')
        self.assertIsNotNone(reason)
        self.assertIn("cannot be read as JSON", reason)
        self.assertIsNone(body_credential_problem(AUTH_ROUTE, JSON, b'{"a": 1 /* x */}'))

    def test_a_multipart_part_naming_a_credential_is_refused(self) -> None:
        for disposition in ('name="private_token"', "name=access_token", 'name = "private_token"',
                            "name*=UTF-8''%70rivate_token", 'name*0="priv"; name*1="ate_token"',
                            'name="\\private_token"', 'NAME="Private-Token"'):
            with self.subTest(disposition=disposition):
                self.assertIsNotNone(body_credential_field(MULTIPART, _part(disposition)))

    def test_bodies_that_only_mention_a_credential_pass(self) -> None:
        for content_type, body in (
            (FORM, b"note=private_token&q=access_token"), (FORM, b"token=x&key=y&api_key=z&auth=w"),
            (FORM, b"authenticity_token=x&csrf_token=y&page_token=z"), (FORM, b"a=%70rivate_token"),
            (JSON, json.dumps({"token": "x", "key": "TOKEN", "api_key": "y", "value": "access_token"}).encode()),
            (JSON, json.dumps({"integration": {"access_token": "x"}}).encode()),  # nested: no framework reads it
            (JSON, json.dumps([{"access_token": "x"}]).encode()),
            (JSON, json.dumps({"content": 'def f(access_token): return {"private_token": 1}'}).encode()),
            (MULTIPART, _part('name="file"; filename="access_token.txt"')),
            (MULTIPART, _part('name="note"', "private_token=x")),
            ("text/plain", b"private_token=x"), ("application/octet-stream", b"private_token=x"),
        ):
            with self.subTest(content_type=content_type, body=body[:60]):
                self.assertIsNone(body_credential_problem(AUTH_ROUTE, content_type, body))

    def test_a_route_without_auth_leaves_the_body_to_the_agent(self) -> None:
        self.assertIsNone(body_credential_problem(OPEN_ROUTE, FORM, b"private_token=x"))
        self.assertIsNone(body_credential_problem(Verdict(True, "x", 80, "internal-service", ""), FORM, b"access_token=x"))

    def test_a_credential_field_past_many_marked_values_is_still_found(self) -> None:
        # Each field is read once: a long run of values mentioning a name does not hide a later one.
        body = b"a=access_token&" * 20000 + b"x=" + b"access_token" * 5000 + b";job_token=x"
        self.assertEqual(body_credential_field(FORM, body), "job_token")
        self.assertEqual(body_credential_field(FORM, b"a=access_token&private_token=x"), "private_token")
        self.assertIsNone(body_credential_field(FORM, b"a=access_token&b=c" + b"x" * 40 + b"access_token=1"))

    def test_the_body_list_is_narrower_than_the_query_list(self) -> None:
        self.assertTrue(set(credentials.BODY_CREDENTIAL_FIELDS) <= set(credentials.CREDENTIAL_PARAMS))
        for name in ("token", "key", "api_key", "auth"):
            self.assertIsNone(credentials.body_credential_field(name))
        self.assertEqual(credentials.body_credential_field("Access-Token"), "access_token")
        self.assertEqual(RULE_CREDENTIAL_BODY, "credential-in-body")


def _streamed(content_type: str, body: bytes, size: int) -> str | None:
    stream = credential_stream(AUTH_ROUTE, content_type)
    assert stream is not None
    for i in range(0, len(body), size):
        found = credential_stream_feed(stream, body[i:i + size], final=False)
        if found is not None:
            return found
    return credential_stream_feed(stream, b"", final=True)


class StreamedCredentialInBodyTest(unittest.TestCase):
    """A large upload is forwarded while it arrives: its form fields and part headers are read
    chunk by chunk, and a credential field padded past the size the proxy holds is still found."""

    BODIES = (
        (FORM, b"title=x&private_token=A"), (FORM, b"private_token=A"), (FORM, b"a=1;access-token=A"),
        (FORM, b"%70rivate_token=A"), (FORM, b"private%255ftoken=A"), (FORM, b"Access+Token=A"),
        (FORM, b"a=private_token"), (FORM, b"token=x&key=y"), (FORM, b"a=access_token&private_token=x"),
        (FORM, b"a=access_token&b=c" + b"x" * 40 + b"access_token=1"), (FORM, b"x=" + b"q" * 5000 + b"&job_token=1"),
        (FORM, b"_" * 6000 + b"private_token=1"), (FORM, b"private_tokenx=1"), (FORM, b"a=b&private_token"),
        (MULTIPART, _part('name="private_token"')), (MULTIPART, _part('name="file"')),
        (MULTIPART, _part("name*=UTF-8''%70rivate_token")),
        (MULTIPART, _part('name="f"; filename="a"', "x" * 50000) + _part('name="client_secret"')),
        (JSON, b'{"title": "x", "private_token": "A"}'), (JSON, b'{"jobToken": "x"}'),
        (JSON, b'{"pad": "' + b"a" * 5000 + b'", "access_token": "x"}'), (JSON, b'{"\\u0070rivate\\u005ftoken": 1}'),
        (JSON, b'{"token": "x", "key": "TOKEN", "value": "access_token"}'),
        (JSON, b'{"content": "def f(access_token): return {\\"private_token\\": 1}"}'),
    )

    def test_streamed_and_buffered_readings_agree_wherever_the_chunks_are_cut(self) -> None:
        for content_type, body in self.BODIES:
            want = body_credential_field(content_type, body)
            for size in (1, 2, 3, 7, 13, 64, 1000, len(body) + 1):
                with self.subTest(body=body[:50], size=size):
                    self.assertEqual(_streamed(content_type, body, size) is None, want is None)

    def test_a_streamed_json_key_is_refused_at_any_level(self) -> None:
        # Which level a key is at needs the document from its start, which a stream does not keep.
        self.assertEqual(_streamed(JSON, b'{"a": {"access_token": "x"}}', 5), "access_token")

    def test_a_field_past_megabytes_of_padding_is_found(self) -> None:
        body = b"pad=" + b"a" * (9 << 20) + b"&private_token=" + ATTACKER.encode()
        self.assertEqual(_streamed("", body, 1 << 20), "private_token")
        self.assertIsNone(_streamed("", body.replace(b"private", b"public"), 1 << 20))

    def test_a_part_header_longer_than_any_client_writes_is_refused(self) -> None:
        body = b"--b\r\nContent-Disposition: form-data; " + b"a=b; " * (STREAM_LINE_CAP // 4) + b'name="x"\r\n\r\nv'
        found = _streamed(MULTIPART, body, 4096)
        self.assertEqual(found, OVERLONG_PART_HEADER)
        self.assertIn("part header longer", body_credential_reason(AUTH_ROUTE, found))
        long_file_line = _part('name="f"; filename="a"', "x" * (3 * STREAM_LINE_CAP))
        self.assertIsNone(_streamed(MULTIPART, long_file_line, 4096))

    def test_only_forms_on_credentialed_routes_are_read(self) -> None:
        self.assertIsNone(credential_stream(OPEN_ROUTE, FORM))
        self.assertIsNone(credential_stream(AUTH_ROUTE, "application/octet-stream"))
        self.assertIsNotNone(credential_stream(AUTH_ROUTE, "application/vnd.api+json"))
        self.assertIsNotNone(credential_stream(AUTH_ROUTE, ""))


class ProxyConnectionTest(unittest.TestCase):
    """``Proxy-Connection`` is ``Connection``'s pre-standard spelling. mitmproxy forwards it to an
    HTTP/1 upstream as sent, and a hop behind may take it for ``Connection`` and drop the headers
    it names after the route checked them (the Content-Length that frames the body among them)."""

    def test_a_proxy_connection_header_naming_another_header_is_refused(self) -> None:
        for name in ("proxy-connection", "Proxy-Connection", "proxy_connection"):
            for value in ("content-length", "keep-alive, X-Team", "authorization"):
                with self.subTest(name=name, value=value):
                    verdict = _decide(host="open.example", headers=[(name, value)])
                    self.assertEqual((verdict.allowed, verdict.rule), (False, "hop-by-hop"))
                    self.assertNotIn("x-team", verdict.reason.lower())

    def test_what_clients_send_passes(self) -> None:
        for value in ("Keep-Alive", "close", "keep-alive, Upgrade"):
            with self.subTest(value=value):
                self.assertTrue(_decide(host="open.example", headers=[("proxy-connection", value)]).allowed)
        self.assertTrue(_decide(host="open.example", headers=[("keep-alive", "timeout=5, max=100")]).allowed)


class NetworkPathTargetTest(unittest.TestCase):
    """``//evil.example/x`` (or ``/\\evil.example/x``, as WHATWG URLs read it) is a network-path
    reference: a server or front end that resolves the target as a URL against its own base
    reaches the host it names, with the injected credential if it forwards the request."""

    def test_targets_that_read_as_another_host_are_refused_on_every_route(self) -> None:
        for path in ("//evil.example/x", "/\\evil.example/x", "/%2fevil.example/x", "/%2F%2Fevil.example",
                     "/%5cevil.example/x", "/%5Cevil.example", "/%252fevil.example/x", "//", "///x"):
            for host, port, scheme in (("open.example", 443, "https"), ("api.example", 443, "https"),
                                       ("files.example", 443, "https"), ("git-gate.bottle.internal", 80, "http")):
                with self.subTest(path=path, host=host):
                    verdict = _decide(host=host, port=port, scheme=scheme, path=path)
                    self.assertEqual((verdict.allowed, verdict.rule), (False, "request-target"))
                    self.assertNotIn("evil", verdict.reason)

    def test_slashes_further_in_pass(self) -> None:
        for path in ("/", "/a//b", "/api//evil.example/x", "/a/%2f", "/?next=//evil.example", "*"):
            with self.subTest(path=path):
                self.assertIsNone(structure.target_problem(path))
        self.assertTrue(_decide(host="open.example", path="/a//b").allowed)


class BestFitPathTest(unittest.TestCase):
    """IIS and ASP.NET read characters the Windows code page lacks by a "best fit": fullwidth
    ``．`` and ``／`` as "." and "/", and so do servers that apply NFKC. ``/api/．．／admin``
    passes a ``/api/`` prefix as written and reaches ``/admin`` there."""

    def test_dot_segments_spelt_with_look_alikes_are_refused_under_a_path_rule(self) -> None:
        for path in ("/api/\uff0e\uff0e/admin", "/api/..\uff0fadmin", "/api/\uff0e\uff0e\uff0fadmin",
                     "/api/%EF%BC%8E%EF%BC%8E/admin", "/api/%ef%bc%8e%ef%bc%8e%ef%bc%8fadmin",
                     "/api/%2e%2e%EF%BC%8Fadmin", "/api/..%E2%88%95admin", "/api/..\u2215admin", "/api/..\uff3cadmin",
                     "/api/..\ufe68admin", "/api/\u2024\u2024/admin", "/api/\ufe52\ufe52/admin", "/api/\u2025/admin",
                     "/api/..\u00a5admin", "/api/.\uff0e/admin", "/api/\uff0e\uff0e;x/admin"):
            with self.subTest(path=path):
                verdict = _decide(host="files.example", path=path)
                self.assertEqual((verdict.allowed, verdict.rule), (False, "match"))
                self.assertIn("dot segments", verdict.reason)

    def test_the_rewrite_header_is_held_to_it_too(self) -> None:
        verdict = _decide(host="files.example", path="/api/a", headers=[("x-original-url", "/api/\uff0e\uff0e/admin")])
        self.assertEqual((verdict.allowed, verdict.rule), (False, "match"))

    def test_other_non_ascii_names_pass(self) -> None:
        for path in ("/api/caf\u00e9", "/api/%C3%A9t%C3%A9", "/api/\u65e5\u672c/\u6587\u66f8.md", "/api/a\uff0eb",
                     "/api/\uff0ehidden", "/api/prices/\u00a5100", "/api/v1\uff0f2"):
            with self.subTest(path=path):
                self.assertTrue(_decide(host="files.example", path=path).allowed)

    def test_a_route_without_path_rules_is_not_concerned(self) -> None:
        self.assertTrue(_decide(host="open.example", path="/api/\uff0e\uff0e/admin").allowed)


@requires(addon_mod is not None, "mitmproxy (the dev extra)")
class ThroughTheAddonTest(AddonCase):
    def test_a_network_path_target_gets_a_403_and_no_credential_goes_out(self) -> None:
        flow = self.request_flow("bearer.example", port=443, scheme="https", path="//evil.example/x",
                                 headers=[("Host", "bearer.example")])
        flow, lines = self.exchange(flow)
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "request-target")
        self.assertNotIn(REAL_TOKEN, str(flow.request.headers))

    def test_a_proxy_connection_naming_content_length_is_refused(self) -> None:
        flow = self.request_flow("allowed.example", method="POST", content=b"12345",
                                 headers=[("Host", "allowed.example"), ("Content-Length", "5"),
                                          ("Proxy-Connection", "keep-alive, Content-Length")])
        flow, lines = self.exchange(flow)
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "hop-by-hop")

    def test_curls_proxy_connection_still_passes(self) -> None:
        flow = self.request_flow("allowed.example", headers=[("Host", "allowed.example"),
                                                             ("Proxy-Connection", "Keep-Alive")])
        flow, lines = self.exchange(flow)
        self.assertEqual(flow.response.status_code, 200)
        self.assertEqual(lines[0]["decision"], "allow")


if __name__ == "__main__":
    unittest.main()
