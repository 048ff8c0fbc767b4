"""A credential written into a manifest by mistake is refused without being printed: not in an
error, not in the plan."""

from __future__ import annotations

import json
import unittest

from tests.fixtures import TEST_IMAGES, ManifestTestCase

TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456781"


class RouteHostCredentialTests(ManifestTestCase):
    def route_host_error(self, host: str) -> str:
        err = self.bottle_error(f'egress:\n  routes:\n    - host: "{host}"\n')
        self.assertManifestError(err, path=self.mh.bottles_dir / "b.md", line=4, key="egress.routes[0].host",
                                 contains="not shown")
        return str(err) + (err.hint or "")

    def test_a_token_before_the_at_sign_is_not_shown(self) -> None:
        for host in (f"user:{TOKEN}@api.github.com", "https://user:tok3n-s3cret@api.github.com",
                     "tok3n-s3cret@api.github.com"):
            with self.subTest(host=host):
                text = self.route_host_error(host)
                self.assertNotIn(TOKEN, text)
                self.assertNotIn("tok3n-s3cret", text)
                self.assertIn("'@'", text)

    def test_a_token_in_place_of_the_host_is_not_shown(self) -> None:
        self.assertNotIn(TOKEN, self.route_host_error(TOKEN))
        # A plain wrong host is still quoted.
        err = self.bottle_error("egress:\n  routes:\n    - host: example.com/api\n")
        self.assertIn("'example.com/api'", str(err))

    def test_validate_does_not_print_it(self) -> None:
        self.mh.bottle("dev", f'egress:\n  routes:\n    - host: "user:{TOKEN}@api.github.com"\n')
        self.mh.agent("coder", {"bottle": "dev"})
        for argv in (("validate",), ("validate", "--format", "json")):
            result = self.mh.run_cli(*argv)
            self.assertEqual(result.code, 2)
            self.assertNotIn(TOKEN, result.stdout + result.stderr)


class OtherEchoedValueTests(ManifestTestCase):
    """Other places that quote what was written: a token pasted there is not printed."""

    def test_header_names_schemes_and_wrong_types(self) -> None:
        cases = {
            f'egress:\n  routes:\n    - host: a.example\n      matches: [{{headers: {{"Authorization: Bearer {TOKEN}": x}}}}]\n':
                "egress.routes[0].matches[0].headers.Authorization: Bearer " + TOKEN,
            f'egress:\n  routes:\n    - host: a.example\n      auth: {{scheme: "Bearer {TOKEN}", token_ref: T}}\n':
                "egress.routes[0].auth.scheme",
            f'egress:\n  routes:\n    - host: a.example\n      auth: {{scheme: header, header: "x-api-key: {TOKEN}", token_ref: T}}\n':
                "egress.routes[0].auth.header",
            f'egress: "{TOKEN}"\n': "egress",
            f'env:\n  "{TOKEN}-x": "1"\n': f"env.{TOKEN}-x",
        }
        for text, key in cases.items():
            with self.subTest(key=key):
                err = self.bottle_error(text)
                self.assertEqual(err.key, key, str(err))
                self.assertNotIn(TOKEN, err.detail)
                self.assertIn("not shown", err.detail)
        # Ordinary mistakes are still quoted.
        err = self.bottle_error("egress:\n  routes:\n    - host: a.example\n      auth: {scheme: magic, token_ref: T}\n")
        self.assertIn("'magic'", str(err))
        err = self.bottle_error('egress: "loud"\n')
        self.assertIn("'loud'", str(err))


class GitUrlQueryTests(ManifestTestCase):
    def test_a_query_string_or_fragment_is_refused_unshown(self) -> None:
        for url in (f"https://github.com/you/app.git?token={TOKEN}", f"https://github.com/you/app.git#{TOKEN}",
                    f"https://github.com/you/app.git?access_token={TOKEN}&x=1"):
            with self.subTest(url=url):
                err = self.bottle_error(f'git-gate:\n  repos:\n    app:\n      url: "{url}"\n')
                self.assertManifestError(err, path=self.mh.bottles_dir / "b.md", line=5,
                                         key="git-gate.repos.app.url", contains=("query string", "not shown"))
                self.assertNotIn(TOKEN, str(err) + (err.hint or ""))

    def test_the_plan_never_shows_it(self) -> None:
        self.mh.bottle("dev", f'git-gate:\n  repos:\n    app:\n      url: "https://github.com/you/app.git?token={TOKEN}"\n')
        self.mh.agent("coder", {"bottle": "dev"})
        result = self.mh.run_cli("start", "coder", "--dry-run", "--format", "json", images=TEST_IMAGES)
        self.assertEqual(result.code, 2, result.stdout)
        self.assertNotIn(TOKEN, result.stdout + result.stderr)
        # Without it, the URL validates and the plan shows it.
        self.mh.bottle("dev", 'git-gate:\n  repos:\n    app:\n      url: "https://github.com/you/app.git"\n')
        self.mh.agent("coder", {"bottle": "dev"})
        result = self.mh.run_cli("start", "coder", "--dry-run", "--format", "json", images=TEST_IMAGES)
        self.assertEqual(result.code, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout)["git_gate"]["repos"][0]["url"], "https://github.com/you/app.git")


if __name__ == "__main__":
    unittest.main()
