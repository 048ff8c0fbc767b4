"""An upstream that echoes a bottle secret back in base85 or ascii85 has it redacted, as the
outbound scan finds the same forms in a request: the two directions agree."""

from __future__ import annotations

import base64
import random
import unittest

from bot_bottle.sidecar.dlp import Scanner

SECRET = "Kq7vR2xPz9LmW4tYb8Nc"
SECRETS = {"ROUTE_TOKEN": SECRET}


def _forms() -> dict[str, str]:
    data = SECRET.encode()
    return {
        "b85": base64.b85encode(data).decode(),
        "b85 at an offset": base64.b85encode(b"user=" + data + b";x").decode(),
        "b85 padded": base64.b85encode(b"ab" + data, pad=True).decode(),
        "a85": base64.a85encode(data).decode(),
        "a85 with delimiters": base64.a85encode(data, adobe=True).decode(),
        "a85 at an offset": base64.a85encode(b"\x00\x01\x02" + data + b"tail", adobe=True).decode(),
        "a85 wrapped": base64.a85encode(b"header:" + data * 3, wrapcol=44).decode(),
        "uuencode": "begin 644 t\n" + __import__("binascii").b2a_uu(data).decode() + "`\nend\n",
    }


class EchoBase85Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.scanner = Scanner(secrets=SECRETS)

    def test_each_form_is_redacted_in_an_answer(self) -> None:
        for label, form in _forms().items():
            with self.subTest(form=label):
                answer = f'{{"debug": {{"echo": "{form}"}}, "ok": true}}'
                redacted = self.scanner.redact_echoed_secrets(answer)
                self.assertTrue(redacted.changed)
                self.assertIn("[REDACTED:ROUTE_TOKEN]", str(redacted.content))
                self.assertEqual({f.secret_name for f in redacted.findings}, {"ROUTE_TOKEN"})

    def test_outbound_and_inbound_agree(self) -> None:
        for label, form in _forms().items():
            with self.subTest(form=label):
                outbound = self.scanner.scan_request("POST", "https://api.example/x", {}, f"data={form}".encode())
                inbound = self.scanner.redact_echoed_secrets(f"data={form}")
                self.assertEqual({f.secret_name for f in outbound}, {"ROUTE_TOKEN"})
                self.assertEqual({f.secret_name for f in inbound.findings}, {"ROUTE_TOKEN"})

    def test_bytes_answer_and_header_value(self) -> None:
        form = base64.b85encode(SECRET.encode()).decode()
        redacted = self.scanner.redact_echoed_secrets(f"X-Echo: {form}".encode())
        self.assertIsInstance(redacted.content, bytes)
        self.assertNotIn(form[:15].encode(), redacted.content)

    def test_benign_base85_is_left_alone(self) -> None:
        rng = random.Random(7)
        for _ in range(50):
            blob = rng.randbytes(rng.randint(20, 400))
            for text in (base64.b85encode(blob).decode(), base64.a85encode(blob, adobe=True).decode()):
                self.assertFalse(self.scanner.redact_echoed_secrets(f"payload: {text}").changed)


if __name__ == "__main__":
    unittest.main()
