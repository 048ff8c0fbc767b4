"""Structural blocks: every malformed or smuggling-shaped request is refused, naming its rule.

The same shapes go through ``decide`` too, so a refusal never depends on which route the
request was aimed at.
"""

from __future__ import annotations

import unittest

from bot_bottle.sidecar.egress import structure as s
from bot_bottle.sidecar.egress.core import RequestFacts, decide
from bot_bottle.sidecar.egress.hosts import normalise_host
from bot_bottle.sidecar.egress.policy import Policy

OPEN = Policy.from_dict({"version": 2, "routes": [{"host": "a.example"}, {"host": "*.a.example"}]})


def facts(headers, *, path: str = "/", method: str = "POST", http_version: str = "HTTP/1.1",
          authority: str = "", host: str = "a.example", port: int = 443, connect: bool = False) -> RequestFacts:
    return RequestFacts.make(scheme="https", host=host, port=port, method="CONNECT" if connect else method,
                             path="" if connect else path, headers=headers, is_connect=connect,
                             http_version=http_version, authority=authority)


class HeaderCharactersTest(unittest.TestCase):
    def test_cr_lf_nul_in_values(self) -> None:
        for value in ("a\rb", "a\nb", "a\r\nX-Injected: 1", "a\x00b", "\x00", "ok\r", "\nstart"):
            with self.subTest(value=value):
                problem = s.header_problem([("X-Thing", value)])
                self.assertIsNotNone(problem)
                self.assertEqual(problem.rule, s.RULE_HEADER_INJECTION)
                self.assertIn("X-Thing", problem.reason)
                self.assertNotIn(value.strip("\r\n\x00") or "\x00", problem.reason.replace("X-Thing", ""))

    def test_cr_lf_nul_in_names(self) -> None:
        for name in ("X-A\r", "X\nB", "X\x00", "\r\nHost"):
            with self.subTest(name=name):
                self.assertEqual(s.header_problem([(name, "v")]).rule, s.RULE_HEADER_INJECTION)

    def test_names_must_be_tokens(self) -> None:
        for name in ("X A", "X:A", "", "X(A)", "Ä", "X\tA", "X/A", "X@A", "{x}"):
            with self.subTest(name=name):
                self.assertEqual(s.header_problem([(name, "v")]).rule, s.RULE_HEADER_NAME)

    def test_valid_names_pass(self) -> None:
        for name in ("X-A", "x_a", "Accept", "a!#$%&'*+-.^_`|~9", ":authority"):
            with self.subTest(name=name):
                self.assertIsNone(s.header_problem([(name, "value")]))

    def test_obs_fold_is_named(self) -> None:
        # mitmproxy's HTTP/1 parser joins a folded line into the value with the line break kept.
        for value in ("first\r\n second", "first\r\n\tsecond", "a\n b"):
            with self.subTest(value=value):
                self.assertEqual(s.header_problem([("X-Folded", value)]).rule, s.RULE_OBS_FOLD)

    def test_ordinary_values_pass(self) -> None:
        for value in ("", "text/html; charset=utf-8", "Bearer abc.def-ghi", "a\tb", "ünïcode", "x" * 1000):
            with self.subTest(value=value[:20]):
                self.assertIsNone(s.header_problem([("X-A", value)]))

    def test_request_target(self) -> None:
        for path in ("/a\r\nHost: evil", "/a\x00", "/a\nb"):
            with self.subTest(path=path):
                self.assertEqual(s.target_problem(path).rule, s.RULE_HEADER_INJECTION)
        for path in ("/", "/a?b=c", "/%0d%0a", "*"):
            with self.subTest(path=path):
                self.assertIsNone(s.target_problem(path))


class SizeTest(unittest.TestCase):
    def test_single_value_limit(self) -> None:
        self.assertIsNone(s.header_problem([("X-Big", "a" * s.MAX_HEADER_VALUE)]))
        problem = s.header_problem([("X-Big", "a" * (s.MAX_HEADER_VALUE + 1))])
        self.assertEqual(problem.rule, s.RULE_HEADER_TOO_LARGE)
        self.assertIn("16 KiB", problem.reason)
        self.assertIn("X-Big", problem.reason)

    def test_total_limit(self) -> None:
        value = "a" * (8 * 1024)
        under = [(f"X-{i}", value) for i in range(7)]
        self.assertIsNone(s.header_problem(under))
        over = [(f"X-{i}", value) for i in range(9)]
        problem = s.header_problem(over)
        self.assertEqual(problem.rule, s.RULE_HEADER_TOO_LARGE)
        self.assertIn("64 KiB", problem.reason)

    def test_many_small_headers_count_too(self) -> None:
        many = [("X-N", "v" * 100)] * 700
        self.assertEqual(s.header_problem(many).rule, s.RULE_HEADER_TOO_LARGE)


class FramingTest(unittest.TestCase):
    def test_content_length_and_transfer_encoding(self) -> None:
        for headers in (
            [("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
            [("transfer-encoding", "chunked"), ("content-length", "0")],
            [("Content-Length", "5"), ("Transfer-Encoding", "identity")],
        ):
            with self.subTest(headers=headers):
                self.assertEqual(s.header_problem(headers).rule, s.RULE_CL_TE)

    def test_transfer_encoding_must_be_exactly_chunked(self) -> None:
        for value in ("gzip, chunked", "chunked, chunked", "identity", "gzip", "xchunked", "chunked;q=1",
                      "chunkedx", "", "chunked\x0b", "ch unked", "compress,chunked"):
            with self.subTest(value=value):
                self.assertEqual(s.header_problem([("Transfer-Encoding", value)]).rule, s.RULE_TRANSFER_ENCODING)

    def test_chunked_spellings_that_are_fine(self) -> None:
        for value in ("chunked", "Chunked", "CHUNKED", " chunked", "chunked\t"):
            with self.subTest(value=value):
                self.assertIsNone(s.header_problem([("Transfer-Encoding", value)]))

    def test_two_transfer_encoding_headers(self) -> None:
        headers = [("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")]
        self.assertEqual(s.header_problem(headers).rule, s.RULE_TRANSFER_ENCODING)

    def test_transfer_encoding_on_http10(self) -> None:
        problem = s.header_problem([("Transfer-Encoding", "chunked")], "HTTP/1.0")
        self.assertEqual(problem.rule, s.RULE_TRANSFER_ENCODING)
        self.assertIn("HTTP/1.0", problem.reason)

    def test_differing_content_lengths(self) -> None:
        for headers in (
            [("Content-Length", "5"), ("Content-Length", "6")],
            [("Content-Length", "5, 6")],
            [("Content-Length", "0"), ("content-length", "10")],
        ):
            with self.subTest(headers=headers):
                self.assertEqual(s.header_problem(headers).rule, s.RULE_CONTENT_LENGTH)

    def test_invalid_content_length(self) -> None:
        for value in ("-1", "5a", "0x10", "", "+5", "5.0", "1e3", " "):
            with self.subTest(value=value):
                self.assertEqual(s.header_problem([("Content-Length", value)]).rule, s.RULE_CONTENT_LENGTH)

    def test_plain_values_pass(self) -> None:
        for headers in ([("Content-Length", "5")], [("Content-Length", " 12 ")], [("Content-Length", "0")], []):
            with self.subTest(headers=headers):
                self.assertIsNone(s.header_problem(headers))

    def test_repeats_and_leading_zeros_are_refused(self) -> None:
        # Parsers disagree on these (and mitmproxy refuses them itself): refused with our rule.
        for headers in ([("Content-Length", "5"), ("Content-Length", "5")], [("Content-Length", "5, 5")],
                        [("Content-Length", "005")], [("Content-Length", "00")]):
            with self.subTest(headers=headers):
                problem = s.header_problem(headers)
                self.assertEqual(problem.rule, s.RULE_CONTENT_LENGTH)


class AbsoluteFormTest(unittest.TestCase):
    def check(self, authority: str, host: str = "a.example", port: int = 443):
        return s.absolute_form_problem(authority, host, port, normalise_host)

    def test_same_host_is_fine(self) -> None:
        for authority in ("", "a.example", "A.EXAMPLE", "a.example.", "a.example:443"):
            with self.subTest(authority=authority):
                self.assertIsNone(self.check(authority))

    def test_other_host_or_port_refused(self) -> None:
        for authority in ("b.example", "a.example.evil", "evil:443", "a.example:8443", "10.0.0.1", "[::1]:443"):
            with self.subTest(authority=authority):
                problem = self.check(authority)
                self.assertEqual(problem.rule, s.RULE_ABSOLUTE_FORM)

    def test_invalid_authority(self) -> None:
        self.assertEqual(self.check("a b").rule, s.RULE_ABSOLUTE_FORM)

    def test_reason_names_the_target_not_the_authority(self) -> None:
        problem = self.check("secret-value.evil")
        self.assertIn("a.example", problem.reason)
        self.assertNotIn("secret-value", problem.reason)

    def test_split_authority(self) -> None:
        for text, want in (("a:1", ("a", 1)), ("a", ("a", None)), ("[::1]:8", ("::1", 8)), ("[::1]", ("::1", None)),
                           ("a:x", ("a", None)), ("::1", ("::1", None))):
            with self.subTest(text=text):
                self.assertEqual(s.split_authority(text), want)


class GitPushTest(unittest.TestCase):
    PUSHES = (
        "/org/repo.git/git-receive-pack",
        "/org/repo/git-receive-pack",
        "/git-receive-pack",
        "/org/repo.git/git-receive-pack/",
        "/org/repo.git/GIT-RECEIVE-PACK",
        "/org/repo.git/git-receive-pack;x=1",
        "/org/repo.git/git%2Dreceive%2Dpack",
        "/org/repo.git/git%252Dreceive-pack",
        "/org/repo.git/info/refs?service=git-receive-pack",
        "/org/repo.git/info/refs?a=1&service=git-receive-pack",
        "/org/repo.git/info/refs?service=git%2Dreceive%2Dpack",
        "/org/repo.git/info/refs?service=GIT-RECEIVE-PACK",
        "/x?service=git-receive-pack#frag",
    )
    FETCHES = (
        "/org/repo.git/git-upload-pack",
        "/org/repo.git/info/refs?service=git-upload-pack",
        "/org/repo.git/info/refs",
        "/docs/git-receive-pack/intro",
        "/search?q=git-receive-pack",
        "/org/repo.git/git-receive-pack-docs",
        "/",
    )

    def test_every_push_shape_is_refused(self) -> None:
        for path in self.PUSHES:
            with self.subTest(path=path):
                problem = s.git_push_problem(path, [])
                self.assertIsNotNone(problem)
                self.assertEqual(problem.rule, s.RULE_GIT_PUSH)
                self.assertIn("git-gate", problem.reason)

    def test_fetches_and_lookalikes_pass(self) -> None:
        for path in self.FETCHES:
            with self.subTest(path=path):
                self.assertIsNone(s.git_push_problem(path, []))

    def test_push_body_content_type(self) -> None:
        headers = [("Content-Type", "application/x-git-receive-pack-request")]
        self.assertEqual(s.git_push_problem("/anything", headers).rule, s.RULE_GIT_PUSH)
        self.assertIsNone(s.git_push_problem("/anything", [("Content-Type", "application/x-git-upload-pack-request")]))

    def test_push_refused_on_any_route_through_decide(self) -> None:
        for host in ("a.example", "x.a.example"):
            for path in self.PUSHES:
                with self.subTest(host=host, path=path):
                    v = decide(facts([], path=path, host=host), OPEN)
                    self.assertFalse(v.allowed)
                    # A fragment in the target is refused before any push check looks at it.
                    self.assertEqual(v.rule, s.RULE_REQUEST_TARGET if "#" in path else s.RULE_GIT_PUSH)


class ThroughDecideTest(unittest.TestCase):
    """The structural rules apply before any route is considered, and name the rule."""

    CASES = (
        ([("X-A", "v\r\nX-B: w")], s.RULE_HEADER_INJECTION),
        ([("X A", "v")], s.RULE_HEADER_NAME),
        ([("X-A", "v\r\n w")], s.RULE_OBS_FOLD),
        ([("Content-Length", "3"), ("Transfer-Encoding", "chunked")], s.RULE_CL_TE),
        ([("Content-Length", "3"), ("Content-Length", "4")], s.RULE_CONTENT_LENGTH),
        ([("Transfer-Encoding", "gzip, chunked")], s.RULE_TRANSFER_ENCODING),
        ([("X-Big", "a" * 20000)], s.RULE_HEADER_TOO_LARGE),
    )

    def test_each_shape_on_an_allowed_and_a_denied_host(self) -> None:
        for headers, rule in self.CASES:
            for host in ("a.example", "evil.example"):
                with self.subTest(rule=rule, host=host):
                    v = decide(facts(headers, host=host), OPEN)
                    self.assertFalse(v.allowed)
                    self.assertEqual(v.rule, rule)
                    self.assertTrue(v.structural)
                    self.assertIn(f"'{rule}'", v.deny_message())

    def test_connect_headers_are_checked_too(self) -> None:
        v = decide(facts([("Proxy-Authorization", "x\r\ny")], connect=True), OPEN)
        self.assertEqual(v.rule, s.RULE_HEADER_INJECTION)

    def test_target_with_control_chars(self) -> None:
        v = decide(facts([], path="/a\r\nb"), OPEN)
        self.assertEqual(v.rule, s.RULE_HEADER_INJECTION)

    def test_absolute_form_mismatch_in_a_tunnel(self) -> None:
        v = decide(facts([], authority="evil.example"), OPEN)
        self.assertFalse(v.allowed)
        self.assertEqual(v.rule, s.RULE_ABSOLUTE_FORM)
        self.assertTrue(decide(facts([], authority="a.example:443"), OPEN).allowed)

    def test_only_registered_methods_are_forwarded(self) -> None:
        # A method is a free token, forwarded as sent and read by no scanner.
        for method in ("Kq7vZp3XwR9mT2nL8sYd", "GETX", "PRI", "X" * 8000, "4b7132"):
            with self.subTest(method=method[:20]):
                v = decide(facts([], method=method), OPEN)
                self.assertEqual((v.allowed, v.rule), (False, s.RULE_METHOD))
                self.assertTrue(v.structural)
                self.assertNotIn(method, v.deny_message())
        for method in ("GET", "POST", "PROPFIND", "MKCOL", "VERSION-CONTROL", "PURGE", "QUERY"):
            with self.subTest(method=method):
                self.assertTrue(decide(facts([], method=method), OPEN).allowed)

    def test_a_connect_inside_a_tunnel_is_refused(self) -> None:
        inside = RequestFacts.make(scheme="https", host="a.example", port=443, method="CONNECT", path="",
                                   is_connect=True, in_tunnel=True)
        v = decide(inside, OPEN)
        self.assertEqual((v.allowed, v.rule), (False, "connect-in-tunnel"))
        self.assertTrue(v.structural)
        self.assertTrue(decide(facts([], connect=True), OPEN).allowed)

    def test_sound_request_is_allowed(self) -> None:
        headers = [("Host", "a.example"), ("Content-Length", "12"), ("Content-Type", "application/json")]
        self.assertTrue(decide(facts(headers), OPEN).allowed)


if __name__ == "__main__":
    unittest.main()
