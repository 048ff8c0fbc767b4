"""The secrets file and credential headers: injection shapes, refusals that name only token_refs."""

from __future__ import annotations

import base64
import json
import tempfile
import unittest
from pathlib import Path

from bot_bottle.sidecar.egress.credentials import (
    CREDENTIAL_HEADERS,
    Secrets,
    SecretsError,
    check_credentials,
    credential_header,
    headers_to_strip,
)
from bot_bottle.sidecar.egress.policy import Policy, RouteAuth

VALUE = "real-credential-0123456789"


def policy_with(*auths: dict) -> Policy:
    routes = [{"host": f"h{i}.example", "auth": auth} for i, auth in enumerate(auths)]
    return Policy.from_dict({"version": 2, "routes": routes})


class HeaderShapeTest(unittest.TestCase):
    def test_each_scheme(self) -> None:
        self.assertEqual(credential_header(RouteAuth("bearer", "T"), VALUE), ("Authorization", f"Bearer {VALUE}"))
        self.assertEqual(credential_header(RouteAuth("token", "T"), VALUE), ("Authorization", f"token {VALUE}"))
        self.assertEqual(credential_header(RouteAuth("header", "T", "x-api-key"), VALUE), ("x-api-key", VALUE))
        name, value = credential_header(RouteAuth("basic", "T"), "user:pa:ss")
        self.assertEqual(name, "Authorization")
        self.assertEqual(base64.b64decode(value.removeprefix("Basic ")).decode(), "user:pa:ss")

    def test_basic_with_non_ascii(self) -> None:
        _, value = credential_header(RouteAuth("basic", "T"), "usér:pässword")
        self.assertEqual(base64.b64decode(value[6:]).decode("utf-8"), "usér:pässword")

    def test_header_scheme_without_header_is_a_bug(self) -> None:
        with self.assertRaises(ValueError):
            credential_header(RouteAuth("header", "T"), VALUE)

    def test_strip_lists(self) -> None:
        for name in ("authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key"):
            self.assertIn(name, CREDENTIAL_HEADERS)
        self.assertEqual(headers_to_strip(RouteAuth("bearer", "T")), CREDENTIAL_HEADERS)
        self.assertIn("x-custom-key", headers_to_strip(RouteAuth("header", "T", "x-custom-key")))
        self.assertEqual(headers_to_strip(RouteAuth("header", "T", "x-api-key")), CREDENTIAL_HEADERS)


class SecretsFileTest(unittest.TestCase):
    def test_load_and_values(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "secrets.json"
            path.write_text(json.dumps({"credentials": {"T": VALUE}, "known_secrets": {"S": "other-secret", "E": ""}}))
            secrets = Secrets.load(path)
        self.assertEqual(secrets.credentials, {"T": VALUE})
        self.assertEqual(secrets.values(), (VALUE, "other-secret"))

    def test_missing_file_is_empty(self) -> None:
        self.assertEqual(Secrets.load("/nonexistent/secrets.json"), Secrets())

    def test_repr_hides_values(self) -> None:
        self.assertNotIn(VALUE, repr(Secrets({"T": VALUE}, {"S": VALUE})))

    def test_malformed_files_never_quote_content(self) -> None:
        for text, fragment in (
            ('{"credentials": {"T": "' + VALUE + '"', "not valid JSON"),
            ('["' + VALUE + '"]', "expected an object"),
            ('{"credentials": {"T": 5}}', "expected a string value"),
            ('{"credentials": ["' + VALUE + '"]}', "expected an object"),
            ('{"credential": {}}', "unknown key"),
        ):
            with self.subTest(fragment=fragment):
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / "secrets.json"
                    path.write_text(text)
                    with self.assertRaises(SecretsError) as caught:
                        Secrets.load(path)
                self.assertIn(fragment, str(caught.exception))
                self.assertNotIn(VALUE, str(caught.exception))

    def test_unreadable_path(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            with self.assertRaisesRegex(SecretsError, "cannot read secrets"):
                Secrets.load(tmp)  # a folder


class CheckCredentialsTest(unittest.TestCase):
    def test_all_present(self) -> None:
        p = policy_with({"scheme": "bearer", "token_ref": "A"}, {"scheme": "basic", "token_ref": "B"})
        check_credentials(p, Secrets({"A": VALUE, "B": "u:p"}))

    def test_missing_names_every_token_ref_and_no_value(self) -> None:
        p = policy_with({"scheme": "bearer", "token_ref": "GITHUB_TOKEN"}, {"scheme": "token", "token_ref": "OTHER"},
                        {"scheme": "bearer", "token_ref": "PRESENT"})
        with self.assertRaises(SecretsError) as caught:
            check_credentials(p, Secrets({"PRESENT": VALUE, "GITHUB_TOKEN": ""}))
        message = str(caught.exception)
        self.assertIn("'GITHUB_TOKEN'", message)
        self.assertIn("'OTHER'", message)
        self.assertNotIn("PRESENT", message)
        self.assertNotIn(VALUE, message)

    def test_no_auth_routes_need_nothing(self) -> None:
        check_credentials(Policy.from_dict({"version": 2, "routes": [{"host": "a.example"}]}), Secrets())

    def test_values_that_cannot_go_in_a_header(self) -> None:
        p = policy_with({"scheme": "bearer", "token_ref": "A"})
        for bad in ("x\r\nEvil: 1", "x\n", "x\x00"):
            with self.subTest(bad=bad):
                with self.assertRaises(SecretsError) as caught:
                    check_credentials(p, Secrets({"A": bad}))
                self.assertIn("'A'", str(caught.exception))
                self.assertNotIn(bad, str(caught.exception))

    def test_basic_needs_user_and_password(self) -> None:
        p = policy_with({"scheme": "basic", "token_ref": "B"})
        with self.assertRaisesRegex(SecretsError, "user:password"):
            check_credentials(p, Secrets({"B": "just-a-token"}))


if __name__ == "__main__":
    unittest.main()
