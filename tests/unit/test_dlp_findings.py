"""Findings are safe to print and log: no repr, str, dict or exception carries a matched value."""

from __future__ import annotations

import base64
import gzip
import json
import random
import unittest

from bot_bottle.sidecar.dlp import (
    HIGH,
    LOW,
    MEDIUM,
    Finding,
    Scanner,
    ScanOptions,
    confidence_at_least,
    detector_name,
    max_confidence,
)
from bot_bottle.sidecar.dlp.findings import resolve_overlaps
from tests.unit import test_dlp_fakes as fakes

RNG = random.Random(5150)
SECRET = fakes.secret_value(RNG, 30)
TOKENS = [fakes.github(RNG), fakes.aws_key_id(RNG), fakes.openai(RNG), fakes.jwt(RNG), fakes.npm(RNG),
          fakes.private_key(RNG), fakes.stripe(RNG), fakes.slack_bot(RNG), fakes.anthropic(RNG)]
SCANNER = Scanner({"MY_SECRET": SECRET}, ScanOptions(entropy=True))


def all_findings() -> list[Finding]:
    out = []
    out += SCANNER.scan_text("\n".join(TOKENS) + SECRET)
    out += SCANNER.scan_request("POST", f"https://x.test/{SECRET}?{SECRET}={SECRET}",
                                [(SECRET, SECRET), ("X", TOKENS[0])],
                                json.dumps({SECRET: [SECRET, TOKENS[2]], "k": base64.b64encode(SECRET.encode()).decode()}))
    out += SCANNER.scan_request("POST", "/", {"Content-Encoding": "gzip"}, gzip.compress(SECRET.encode()))
    out += SCANNER.scan_host(SECRET.encode().hex() + ".evil.example")
    out += SCANNER.scan_message(json.dumps({SECRET: SECRET}))
    out += SCANNER.scan_request("GET", f"/?a={SECRET[:15]}&b={SECRET[15:]}")
    return out


class NoValueLeakTest(unittest.TestCase):
    def test_no_value_in_any_rendering(self) -> None:
        findings = all_findings()
        self.assertGreater(len(findings), 15)
        values = [SECRET, SECRET[:15], SECRET[15:], SECRET.encode().hex()] + TOKENS
        for finding in findings:
            rendered = repr(finding) + str(finding) + json.dumps(finding.to_dict()) + finding.location + finding.name
            for value in values:
                with self.subTest(finding=finding.detector, value=value[:4]):
                    self.assertNotIn(value, rendered)

    def test_no_value_in_redaction_results(self) -> None:
        result = SCANNER.redact_request("GET", f"/?q={SECRET}", {"X": TOKENS[0]})
        rendered = repr(result.findings) + repr(result.unredacted)
        self.assertNotIn(SECRET, rendered)
        self.assertNotIn(TOKENS[0], rendered)

    def test_finding_has_no_value_field(self) -> None:
        self.assertEqual(set(Finding.__dataclass_fields__),
                         {"detector", "name", "location", "start", "end", "confidence", "secret_name", "encoding"})

    def test_errors_do_not_carry_values(self) -> None:
        for bad in ({"A": 123456789}, {"A": None}):
            with self.assertRaises(TypeError) as ctx:
                Scanner(bad)  # type: ignore[arg-type]
            self.assertNotIn("123456789", str(ctx.exception))


class FindingTest(unittest.TestCase):
    def test_to_dict(self) -> None:
        finding = Finding("known-secret", "Bottle secret", "url.query.q", 0, 10, HIGH, "X", "base64")
        self.assertEqual(finding.to_dict(), {"detector": "known-secret", "name": "Bottle secret",
                                             "location": "url.query.q", "start": 0, "end": 10,
                                             "confidence": "high", "secret_name": "X", "encoding": "base64"})
        plain = Finding("github-token", "GitHub token", "body", 3, 43)
        self.assertEqual(set(plain.to_dict()), {"detector", "name", "location", "start", "end", "confidence"})

    def test_str_and_label(self) -> None:
        finding = Finding("known-secret", "Bottle secret", "header:x", 0, 1, HIGH, "TOKEN", "hex")
        self.assertEqual(str(finding), "Bottle secret (TOKEN) in header:x, hex [high]")
        self.assertEqual(finding.label, "TOKEN")
        self.assertEqual(Finding("jwt", "JSON Web Token", "body", 0, 1).label, "jwt")

    def test_confidence_helpers(self) -> None:
        self.assertTrue(confidence_at_least(HIGH, MEDIUM))
        self.assertFalse(confidence_at_least(LOW, MEDIUM))
        self.assertEqual(max_confidence([Finding("a", "a", "t", 0, 1, LOW), Finding("b", "b", "t", 0, 1, MEDIUM)]),
                         MEDIUM)
        self.assertIsNone(max_confidence([]))

    def test_detector_name(self) -> None:
        self.assertEqual(detector_name("github-token"), "GitHub token")
        self.assertEqual(detector_name("nope"), "nope")


class OverlapTest(unittest.TestCase):
    def f(self, detector: str, start: int, end: int, location: str = "t", confidence: str = HIGH) -> Finding:
        return Finding(detector, detector, location, start, end, confidence, "S" if detector == "known-secret" else None)

    def test_known_secret_wins_over_format(self) -> None:
        kept = resolve_overlaps([self.f("github-token", 0, 40), self.f("known-secret", 0, 40)])
        self.assertEqual([k.detector for k in kept], ["known-secret"])

    def test_contained_less_specific_dropped(self) -> None:
        kept = resolve_overlaps([self.f("high-entropy", 5, 20), self.f("jwt", 0, 100)])
        self.assertEqual([k.detector for k in kept], ["jwt"])

    def test_more_specific_inside_wider_generic_kept(self) -> None:
        kept = resolve_overlaps([self.f("generic-secret-assignment", 0, 60), self.f("github-token", 10, 50)])
        self.assertEqual(sorted(k.detector for k in kept), ["generic-secret-assignment", "github-token"])

    def test_partial_overlap_keeps_both(self) -> None:
        self.assertEqual(len(resolve_overlaps([self.f("jwt", 0, 10), self.f("npm-token", 5, 15)])), 2)

    def test_other_locations_untouched(self) -> None:
        self.assertEqual(len(resolve_overlaps([self.f("jwt", 0, 10, "a"), self.f("jwt", 0, 10, "b")])), 2)

    def test_identical_spans_keep_the_confident_one(self) -> None:
        kept = resolve_overlaps([self.f("x", 0, 10, confidence=MEDIUM), self.f("x", 0, 10, confidence=HIGH)])
        self.assertEqual([k.confidence for k in kept], [HIGH])

    def test_many_findings_stay_fast(self) -> None:
        findings = [self.f("jwt", i * 10, i * 10 + 5) for i in range(20000)]
        self.assertEqual(len(resolve_overlaps(findings)), 20000)
