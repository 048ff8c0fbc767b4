"""Readings of a request that an upstream may make and the proxy did not: a git push spelt with
fullwidth or compatibility characters (IIS and frameworks that apply NFKC or Windows best fit
read ``git－receive－pack`` as ``git-receive-pack``), and host names spelt with them."""

from __future__ import annotations

import unittest
from urllib.parse import quote

from bot_bottle.sidecar.egress import core
from bot_bottle.sidecar.egress import structure as s
from bot_bottle.sidecar.egress.core import RequestFacts, decide
from bot_bottle.sidecar.egress.hosts import HostError, normalise_host
from bot_bottle.sidecar.egress.policy import Policy


def policy_of(*routes: dict) -> Policy:
    return Policy.from_dict({"version": 2, "log": 1, "routes": list(routes)})


def utf8_escaped(text: str) -> str:
    """Every non-ASCII character percent-encoded as UTF-8, as a client sends it."""
    return quote(text, safe="/?=&;.-_:")


class GitPushFoldingTest(unittest.TestCase):
    FOLDED_PUSHES = (
        "/org/repo.git/git\uff0dreceive\uff0dpack",  # fullwidth hyphen-minus
        "/org/repo.git/\uff47\uff49\uff54-receive-pack",  # fullwidth letters
        "/org/repo.git/GIT\uff0dRECEIVE\uff0dPACK",
        "/org/repo.git/git\ufe63receive\ufe63pack",  # small hyphen-minus
        "/org/repo.git\uff0fgit-receive-pack",  # fullwidth solidus before it
        "/org/repo.git\u2215git-receive-pack",  # division slash (Windows best fit)
        "/org/repo.git\\git-receive-pack",
        "/org/repo.git/git-receive-pack\uff0f",
        "/org/repo.git/git-receive-pack;\uff58",
        "/org/repo.git/info/refs?service=git\uff0dreceive\uff0dpack",
        "/org/repo.git/info/refs?\uff53ervice=git-receive-pack",
    )

    def test_fullwidth_and_compatibility_spellings_are_pushes(self) -> None:
        for path in self.FOLDED_PUSHES:
            for shown in (path, utf8_escaped(path), utf8_escaped(utf8_escaped(path))):
                with self.subTest(path=shown):
                    problem = s.git_push_problem(shown, [])
                    self.assertIsNotNone(problem)
                    self.assertEqual(problem.rule, s.RULE_GIT_PUSH)

    def test_trailing_dots_and_spaces_iis_trims_are_a_push(self) -> None:
        for path in ("/org/repo.git/git-receive-pack.", "/org/repo.git/git-receive-pack%20",
                     "/org/repo.git/git-receive-pack..%20/"):
            with self.subTest(path=path):
                self.assertEqual(s.git_push_problem(path, []).rule, s.RULE_GIT_PUSH)

    def test_lookalikes_that_fold_to_something_else_pass(self) -> None:
        for path in (
            "/org/repo.git/git\uff0dupload\uff0dpack",
            "/org/repo.git/info/refs?service=git\uff0dupload\uff0dpack",
            "/docs/git\uff0dreceive\uff0dpack/intro",
            "/org/repo.git/git\uff0dreceive\uff0dpack\uff0ddocs",
            "/search?q=git\uff0dreceive\uff0dpack",
            "/wiki/\u6771\u4eac/receive-pack",
            "/caf\u00e9/git-receive-pack-notes",
            "/org/repo.git/git-receive-pack.html",
            "/org/repo.git/git-receive-packs",
        ):
            for shown in (path, utf8_escaped(path)):
                with self.subTest(path=shown):
                    self.assertIsNone(s.git_push_problem(shown, []))

    def test_refused_through_decide_on_an_open_route(self) -> None:
        policy = policy_of({"host": "git.example", "ports": [443]})
        for path in ("/org/repo.git/git%EF%BC%8Dreceive%EF%BC%8Dpack", "/r.git/info/refs?service=git%EF%BC%8Dreceive-pack"):
            with self.subTest(path=path):
                verdict = decide(RequestFacts.make(scheme="https", host="git.example", port=443, method="POST",
                                                   path=path, headers={"host": "git.example"}), policy)
                self.assertFalse(verdict.allowed)
                self.assertEqual(verdict.rule, s.RULE_GIT_PUSH)

    def test_path_rules_still_fold_best_fit_separators(self) -> None:
        # The shared reading still serves the path rules.
        self.assertIsNone(core._normalise_path("/api/\uff0e\uff0e\uff0fadmin"))
        self.assertIsNone(core._normalise_path("/api/%EF%BC%8E%EF%BC%8E%EF%BC%8Fadmin"))
        self.assertEqual(core._normalise_path("/api/caf\u00e9/x"), "/api/caf\u00e9/x")


class GitPushElsewhereTest(unittest.TestCase):
    """A push named where some upstream reads it and the path check did not look."""

    def verdict(self, path: str, **headers: str):
        policy = policy_of({"host": "git.example", "ports": [443]})
        return decide(RequestFacts.make(scheme="https", host="git.example", port=443, method="POST", path=path,
                                        headers={"host": "git.example", **headers}), policy)

    def test_push_through_a_rewrite_header_is_refused(self) -> None:
        # IIS URL Rewrite and older Symfony and Zend route by these headers instead of the path.
        for name in ("x-original-url", "x-rewrite-url", "x_original_url"):
            for target in ("/org/repo.git/git-receive-pack", "/r.git/info/refs?service=git-receive-pack",
                           "/org/repo.git/git%EF%BC%8Dreceive%EF%BC%8Dpack"):
                with self.subTest(name=name, target=target):
                    verdict = self.verdict("/", **{name: target})
                    self.assertEqual((verdict.allowed, verdict.rule), (False, s.RULE_GIT_PUSH))

    def test_fetch_through_a_rewrite_header_passes(self) -> None:
        for target in ("/org/repo.git/git-upload-pack", "/r.git/info/refs?service=git-upload-pack", "/docs/git-receive-pack/x"):
            with self.subTest(target=target):
                self.assertTrue(self.verdict("/", **{"x-original-url": target}).allowed)

    def test_push_name_cut_by_an_encoded_nul_is_refused(self) -> None:
        # CGI hands the path over as a C string (git http-backend behind fcgiwrap): it ends at NUL.
        for path in ("/r.git/git-receive-pack%00", "/r.git/git-receive-pack%00.txt", "/r.git/git-receive-pack%2500x"):
            with self.subTest(path=path):
                self.assertEqual(s.git_push_problem(path, []).rule, s.RULE_GIT_PUSH)

    def test_nul_elsewhere_is_no_push(self) -> None:
        for path in ("/r.git/git-upload-pack%00", "/r.git/%00git-receive-pack-docs", "/git%00-receive-pack"):
            with self.subTest(path=path):
                self.assertIsNone(s.git_push_problem(path, []))


# Spellings IDNA 2003 (Python's codec, and so getaddrinfo) folds into an ASCII name, which a
# server reading the bytes does not: fullwidth dots and letters, ideographic dots, ignored
# characters (zero-width space, soft hyphen), compatibility forms, digits in other widths.
FOLDED_HOSTS = (
    "api\uff0egithub\uff0ecom",
    "api\u3002github\u3002com",
    "api\uff61github\uff61com",
    "\uff45vil.example",
    "\uff45\uff56\uff49\uff4c\uff0e\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45",
    "api.github.com\u200b",
    "api.git\u00adhub.com",
    "\u00aapi.github.com",  # feminine ordinal: "a" under NFKC
    "\u2460.example",  # circled digit one
    "\u00df.example",  # IDNA 2003 reads "ss", IDNA 2008 "xn--zca"
    "203.0.113.\uff15",
    "\ufb00.example",
)


def policy_for_folded() -> Policy:
    return policy_of(
        {"host": "api.github.com", "ports": [443]},
        {"host": "evil.example", "ports": [443]},
        {"host": "*.example", "ports": [443]},
        {"host": "ss.example", "ports": [443]},
        {"host": "1.example", "ports": [443]},
        {"host": "203.0.113.5", "ports": [443]},
        {"host": "bücher.example", "ports": [443]},
    )


class HostSpellingTest(unittest.TestCase):
    def test_folded_spellings_are_not_normalised_into_another_name(self) -> None:
        for host in FOLDED_HOSTS:
            with self.subTest(host=host):
                with self.assertRaises(HostError):
                    normalise_host(host)

    def test_canonical_idn_names_still_normalise(self) -> None:
        # mitmproxy hands a CONNECT to xn--bcher-kva.example over as its U-label.
        for host, want in (("bücher.example", "xn--bcher-kva.example"), ("BÜCHER.example", "xn--bcher-kva.example"),
                           ("xn--bcher-kva.example", "xn--bcher-kva.example"), ("Api.GitHub.com.", "api.github.com"),
                           ("\u6771\u4eac.example", "xn--1lqs71d.example")):
            with self.subTest(host=host):
                self.assertEqual(normalise_host(host), want)

    def test_tunnel_to_a_folded_spelling_is_refused_by_its_own_rule(self) -> None:
        p = policy_for_folded()
        for host in FOLDED_HOSTS:
            with self.subTest(host=host):
                verdict = decide(RequestFacts.make(scheme="https", host=host, port=443, method="CONNECT",
                                                   is_connect=True), p)
                self.assertFalse(verdict.allowed)
                self.assertEqual(verdict.rule, core.RULE_NON_CANONICAL_HOST)
                self.assertIn("ASCII", verdict.reason)

    def test_request_to_a_folded_spelling_is_refused(self) -> None:
        p = policy_for_folded()
        for host in FOLDED_HOSTS:
            with self.subTest(host=host):
                verdict = decide(RequestFacts.make(scheme="https", host=host, port=443, path="/"), p)
                self.assertEqual((verdict.allowed, verdict.rule), (False, core.RULE_NON_CANONICAL_HOST))

    def test_host_header_with_non_ascii_bytes_is_refused(self) -> None:
        # Headers reach the rules decoded as latin-1: a soft hyphen (0xAD) or "ª" (0xAA) byte
        # folds away under IDNA, while the upstream reads the bytes as another name.
        p = policy_for_folded()
        for header in ("api.git\u00adhub.com", "\u00aapi.github.com", "api.github.com\u00ad",
                       "api\u00ef\u00bc\u008egithub\u00ef\u00bc\u008ecom", "b\u00fccher.example"):
            target = "bücher.example" if "cher" in header else "api.github.com"
            with self.subTest(header=header):
                verdict = decide(RequestFacts.make(scheme="https", host=target, port=443, path="/",
                                                   headers={"host": header}), p)
                self.assertFalse(verdict.allowed)
                self.assertEqual(verdict.rule, core.RULE_HOST_HEADER)

    def test_authority_with_non_ascii_is_refused(self) -> None:
        p = policy_for_folded()
        for authority in ("api.git\u00adhub.com", "api\uff0egithub\uff0ecom:443"):
            with self.subTest(authority=authority):
                verdict = decide(RequestFacts.make(scheme="https", host="api.github.com", port=443, path="/",
                                                   headers={"host": "api.github.com"}, authority=authority,
                                                   http_version="HTTP/2.0"), p)
                self.assertEqual((verdict.allowed, verdict.rule), (False, s.RULE_ABSOLUTE_FORM))

    def test_ascii_and_idn_requests_still_pass(self) -> None:
        p = policy_for_folded()
        for host, header in (("api.github.com", "api.github.com"), ("api.github.com", "API.GitHub.com:443"),
                             ("bücher.example", "xn--bcher-kva.example"), ("xn--bcher-kva.example", "xn--bcher-kva.example"),
                             ("bücher.example", None), ("a.example", "a.example."), ("203.0.113.5", "203.0.113.5")):
            with self.subTest(host=host, header=header):
                headers = {"host": header} if header is not None else {}
                verdict = decide(RequestFacts.make(scheme="https", host=host, port=443, path="/", headers=headers), p)
                self.assertTrue(verdict.allowed, verdict.reason)

    def test_folded_route_host_is_a_policy_error(self) -> None:
        from bot_bottle.sidecar.egress.policy import PolicyError
        with self.assertRaises(PolicyError):
            policy_of({"host": "api\uff0egithub\uff0ecom"})


if __name__ == "__main__":
    unittest.main()
