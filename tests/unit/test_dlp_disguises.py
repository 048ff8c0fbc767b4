"""Values sent in a disguise the scan must see through: another case, duplicate JSON keys, an
unencoded ``+``, escapes outside a parsed JSON body, wrapped base64, other byte encodings,
large bodies and pieces hidden in names."""

from __future__ import annotations

import base64
import json
import random
import unittest

from bot_bottle.sidecar.dlp import Scanner
from tests.unit import test_dlp_fakes as fakes

RNG = random.Random(9090)
SECRET = fakes.secret_value(RNG, 40)
SCANNER = Scanner({"API_SECRET": SECRET})
URL = "https://api.example.test/v1/x"


def scan(body: bytes | str, content_type: str = "text/plain", scanner: Scanner = SCANNER) -> list:
    data = body.encode() if isinstance(body, str) else body
    return scanner.scan_request("POST", URL, [("Content-Type", content_type)], data)


def names(findings) -> set[str]:
    return {f.secret_name or f.detector for f in findings}


class CaseChangeTest(unittest.TestCase):
    def test_known_secret_in_another_case(self) -> None:
        for variant in (SECRET.swapcase(), SECRET.lower(), SECRET.upper()):
            with self.subTest(variant=variant[:3]):
                findings = scan(f"value: {variant}\n")
                self.assertEqual(names(findings), {"API_SECRET"})
                self.assertEqual(findings[0].encoding, "case")

    def test_exact_value_is_reported_raw_once(self) -> None:
        findings = scan(f"value: {SECRET}\n")
        self.assertEqual([(f.secret_name, f.encoding) for f in findings], [("API_SECRET", None)])

    def test_short_secret_is_not_searched_without_case(self) -> None:
        scanner = Scanner({"SHORT": "Passw0rdXy"})
        self.assertEqual(scan("passw0rdxy", scanner=scanner), [])
        self.assertEqual(names(scan("Passw0rdXy", scanner=scanner)), {"SHORT"})

    def test_header_value_in_another_case(self) -> None:
        findings = SCANNER.scan_request("GET", URL, [("X-Trace", SECRET.swapcase())])
        self.assertEqual(names(findings), {"API_SECRET"})

    def test_case_changed_token_formats(self) -> None:
        aws = fakes.aws_key_id(RNG)
        while not any(c.isdigit() for c in aws[4:]):
            aws = fakes.aws_key_id(RNG)
        cases = {
            "aws-access-key-id": aws.lower(),
            "github-token": fakes.github(RNG).lower(),
            "anthropic-api-key": fakes.anthropic(RNG).upper(),
        }
        for detector, value in cases.items():
            with self.subTest(detector):
                self.assertIn(detector, names(scan(f"x {value} y")))

    def test_lower_case_words_are_not_key_ids(self) -> None:
        for text in ("asiapacificregional2024", "akiaexamplekey12345xyz", "the asia2024conference talk",
                     "ghp_" + "a" * 36, "sk-ant-" + "x" * 40):
            with self.subTest(text):
                self.assertEqual(scan(text), [])


if __name__ == "__main__":
    unittest.main()
