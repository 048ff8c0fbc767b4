"""The addon refuses a credential field in the body of a request on a credentialed route (the
wiring of ``body_credential.body_credential_problem``)."""

from __future__ import annotations

import json
import threading
from unittest import mock

from tests._requires import requires
from tests.unit.test_sidecar_addon import REAL_TOKEN, AddonCase, addon_mod

ATTACKER = "attacker-pat-7c1e9b"


@requires(addon_mod is not None, "mitmproxy (the dev extra)")
class BodyCredentialThroughTheAddonTest(AddonCase):
    def _post(self, host: str, content_type: str, body: bytes):
        flow = self.request_flow(host, port=443 if host == "bearer.example" else 80,
                                 scheme="https" if host == "bearer.example" else "http", method="POST",
                                 content=body, headers=[("Host", host), ("Content-Type", content_type),
                                                        ("Content-Length", str(len(body)))])
        return self.exchange(flow)

    def test_a_form_field_naming_a_credential_gets_a_403_and_no_credential_goes_out(self) -> None:
        flow, lines = self._post("bearer.example", "application/x-www-form-urlencoded",
                                 f"title=x&private_token={ATTACKER}".encode())
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(flow.response.headers["X-Bot-Bottle-Rule"], "credential-in-body")
        self.assertEqual(lines[0]["rule"], "credential-in-body")
        self.assertIn("private_token", flow.response.get_text())
        self.assertNotIn(ATTACKER, flow.response.get_text() + json.dumps(lines))
        self.assertNotIn(REAL_TOKEN, str(flow.request.headers))

    def test_a_json_key_naming_a_credential_is_refused(self) -> None:
        flow, lines = self._post("bearer.example", "application/json", b'{"access_token": "x", "title": "y"}')
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "credential-in-body")

    def test_other_bodies_pass(self) -> None:
        flow, lines = self._post("bearer.example", "application/json", b'{"token": "x", "key": "y"}')
        self.assertEqual(flow.response.status_code, 200, lines)
        self.assertEqual(flow.request.headers["authorization"], f"Bearer {REAL_TOKEN}")
        flow, lines = self._post("allowed.example", "application/x-www-form-urlencoded", b"private_token=x")
        self.assertEqual(flow.response.status_code, 200, lines)

    def test_a_large_body_is_read_off_the_event_loop(self) -> None:
        """Reading a crafted form's fields can take a good part of a second: every other
        connection of the bottle would wait if the proxy's loop did it."""
        threads: list[str] = []
        real = addon_mod.body_credential_problem

        def recorded(*args):
            threads.append(threading.current_thread().name)
            return real(*args)

        body = b"a=" + b"x" * (256 * 1024) + f"&private_token={ATTACKER}".encode()
        with mock.patch.object(addon_mod, "body_credential_problem", recorded):
            flow, lines = self._post("bearer.example", "application/x-www-form-urlencoded", body)
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "credential-in-body")
        self.assertEqual(len(threads), 1)
        self.assertNotEqual(threads[0], threading.main_thread().name)
