"""Findings for pushes: which detector fired where, and never the secret, in every message."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import tempfile
import unittest
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.sidecar.git_gate import gitleaks
from bot_bottle.sidecar.git_gate.patch import Piece
from bot_bottle.sidecar.git_gate.scan import (
    GitFinding,
    Hit,
    PatternDetector,
    EngineDetector,
    default_detector,
    SecretsUnreadable,
    load_known_secrets,
    report,
    scan,
)

SHA = "0123456789abcdef" * 2 + "01234567"
AWS = "AKIA" + "Z7QK4M2XW9RTB3PL"
GHP = "ghp_" + "q8Yt3LmN0pR5sV2wX7zA9cE4gJ6kB1dF0hUi"
PEM = "-----BEGIN " + "RSA PRIVATE KEY-----"
OWN = "s3cr3t-value-of-the-bottle"
REF_WITHHELD = "<ref name withheld: it carries a finding>"
NAME_WITHHELD = "(name withheld: it matches a detector)"


class DetectorTest(unittest.TestCase):
    def test_token_formats_with_lines_and_spans(self) -> None:
        text = f"first\nkey = {AWS}\n\n{PEM}\ntoken {GHP}"
        hits = sorted(PatternDetector().hits(text), key=lambda h: h.line)
        self.assertEqual([(h.detector, h.line) for h in hits],
                         [("aws-access-key-id", 2), ("private-key", 4), ("github-token", 5)])
        self.assertEqual(text[hits[0].span[0]:hits[0].span[1]], AWS)

    def test_ordinary_text_is_clean(self) -> None:
        text = "def main():\n    return AKIA_PREFIX + 'ghp_' + sha256('x')  # 0123456789abcdef0123456789abcdef\n"
        self.assertEqual(list(PatternDetector().hits(text)), [])

    def test_known_secret_plain_and_base64(self) -> None:
        detector = PatternDetector(known={"API_TOKEN": OWN, "SHORT": "abc"})
        encoded = base64.b64encode(OWN.encode()).decode()
        hits = list(detector.hits(f"a {OWN}\nb {encoded}\nabc"))
        self.assertEqual([(h.detector, h.line) for h in hits],
                         [("known-secret:API_TOKEN", 1), ("known-secret:API_TOKEN (base64)", 2)])

    def test_engine_adapter_uses_offsets_and_names_only(self) -> None:
        @dataclass(frozen=True)
        class EngineFinding:
            detector: str
            start: int
            end: int
            secret_name: str | None = None
            encoding: str | None = None

        class FakeScanner:
            def scan_text(self, text: str, location: str, *, deep: bool) -> list[EngineFinding]:
                assert deep, "pushes are scanned deep"
                i = text.index("XX")
                return [EngineFinding("fake-token", i, i + 2), EngineFinding("known-secret", 0, 1, "OWN", "base64")]

        hits = list(EngineDetector(FakeScanner()).hits("a\nb XX"))
        self.assertEqual(hits, [Hit("fake-token", 2, (4, 6)), Hit("known-secret:OWN (base64)", 1, (0, 1))])

    def test_engine_adapter_scans_a_long_text_in_windows_within_the_deep_limit(self) -> None:
        @dataclass(frozen=True)
        class EngineFinding:
            detector: str
            start: int
            end: int

        @dataclass(frozen=True)
        class Options:
            deep_limit: int = 1000

        class DeepOnlyScanner:
            """Like the engine: an encoded secret ("ENC") is found only in a text within the deep limit."""

            options = Options()

            def scan_text(self, text: str, location: str, *, deep: bool) -> list[EngineFinding]:
                if len(text) > self.options.deep_limit:
                    return []
                return [EngineFinding("decoded", i, i + 3) for i in range(len(text)) if text.startswith("ENC", i)]

        text = "x" * 99 + "\n" + ("y" * 99 + "\n") * 30 + "ENC\n" + "z" * 2500
        hits = list(EngineDetector(DeepOnlyScanner()).hits(text))
        start = text.index("ENC")
        self.assertEqual(hits, [Hit("decoded", 32, (start, start + 3))])

    def test_the_shared_engine_decodes_past_its_deep_limit(self) -> None:
        detector = default_detector()
        assert isinstance(detector, EngineDetector)
        encoded = base64.b64encode(f"token={GHP}\n".encode()).decode()
        filler = ("x" * 99 + "\n") * (detector.scanner.options.deep_limit // 100 + 10)
        hits = list(detector.hits(filler + encoded + "\n"))
        self.assertTrue(any(h.detector.startswith("github") for h in hits), hits)
        self.assertIn(filler.count("\n") + 1, [h.line for h in hits])

    def test_the_shared_engine_is_used_when_present(self) -> None:
        detector = default_detector({"OWN": OWN})
        self.assertIsInstance(detector, EngineDetector)
        hits = list(detector.hits(f"x\nk={AWS}\n{OWN}"))
        self.assertIn(("aws-access-key-id", 2), [(h.detector, h.line) for h in hits])
        self.assertIn(("known-secret:OWN", 3), [(h.detector, h.line) for h in hits])

    def test_known_secrets_file(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "secrets.json"
            path.write_text(json.dumps({"credentials": {"GH": "v1"}, "known_secrets": {"PW": "v2", "N": 3}}))
            self.assertEqual(load_known_secrets(path), {"GH": "v1", "PW": "v2"})
            self.assertEqual(load_known_secrets(None), {})
            # Named but not there, not readable or not a document: the scan must not go on blind.
            (Path(tmp) / "bad.json").write_text("[1, 2]")
            (Path(tmp) / "broken.json").write_text("{")
            for name in ("missing.json", "bad.json", "broken.json", "."):
                with self.subTest(name=name), self.assertRaises(SecretsUnreadable) as caught:
                    load_known_secrets(Path(tmp) / name)
                self.assertNotIn("v1", str(caught.exception))


class FindingTest(unittest.TestCase):
    def pieces(self) -> list[Piece]:
        return [
            Piece(SHA, "message", f"subject\n\nused {GHP}\n", line=1),
            Piece(SHA, "lines", f"ok\nkey={AWS}", path="conf/app.ini", line=7),
            Piece(SHA, "path", f"keys/{AWS}.txt", path=f"keys/{AWS}.txt"),
            Piece(SHA, "lines", f"{OWN}", path=f"keys/{AWS}.txt", line=1),
            Piece(SHA, "identity", f"{GHP} <a@x>", line=1),
            Piece(SHA, "tag", "release\n" + PEM, line=1),
            Piece(SHA, "binary", f"\x00\x01{AWS}", path="blob.bin"),
        ]

    def test_a_file_name_cannot_pass_for_more_of_the_gates_own_line(self) -> None:
        crafted = "src/settings.py line 12: detector aws-access-key-id [reviewed] -- src/settings.py"
        findings = scan([Piece(SHA, "lines", f"key = {AWS}\n", path=crafted, line=1)], PatternDetector())
        (described,) = [f.describe() for f in findings]
        self.assertEqual(described, f'commit {SHA[:12]}: file "{crafted}" line 1: detector aws-access-key-id')
        self.assertEqual(findings[0].place(), f'file "{crafted}" line 1')

    def test_places_and_detectors(self) -> None:
        findings = scan(self.pieces(), PatternDetector(known={"OWN": OWN}))
        described = [f.describe() for f in findings]
        self.assertEqual(described, [
            f"commit {SHA[:12]}: commit message line 3: detector github-token",
            f"commit {SHA[:12]}: file conf/app.ini line 8: detector aws-access-key-id",
            f"commit {SHA[:12]}: file name keys/[redacted].txt: detector aws-access-key-id",
            f"commit {SHA[:12]}: file keys/[redacted].txt line 1: detector known-secret:OWN",
            f"commit {SHA[:12]}: author/committer name or email: detector github-token",
            f"tag {SHA[:12]}: tag message line 2: detector private-key",
            f"commit {SHA[:12]}: binary file blob.bin: detector aws-access-key-id",
        ])

    def test_no_message_or_log_record_carries_a_secret(self) -> None:
        findings = scan(self.pieces(), PatternDetector(known={"OWN": OWN}))
        text = "\n".join(report(findings)) + json.dumps([f.to_dict() for f in findings])
        for secret in (AWS, GHP, OWN, "PRIVATE KEY-----"):
            self.assertNotIn(secret, text)
        self.assertIn("nothing was sent upstream", text)

    def test_name_without_spans_is_withheld(self) -> None:
        class NoSpans:
            def hits(self, text: str) -> list[Hit]:
                return [Hit("x", 1)] if "bad" in text else []

        findings = scan([Piece(SHA, "path", "bad/name", path="bad/name")], NoSpans())
        self.assertEqual(findings[0].path, "(name withheld: it matches a detector)")

    def test_header_and_ref_places(self) -> None:
        pieces = [
            Piece(SHA, "header", f"x-note {GHP}", path="x-note", line=1),
            Piece(SHA, "tag-header", f"tag {AWS}", path="tag", line=1),
            Piece(SHA, "ref", f"refs/heads/{AWS}"),
        ]
        findings = scan(pieces, PatternDetector())
        self.assertEqual([f.describe() for f in findings], [
            f"commit {SHA[:12]}: commit header x-note: detector github-token",
            f"tag {SHA[:12]}: tag header tag: detector aws-access-key-id",
            f"ref update to {SHA[:12]}: {REF_WITHHELD}: detector aws-access-key-id",
        ])
        self.assertNotIn(AWS, json.dumps([f.to_dict() for f in findings]) + "\n".join(report(findings)))

    def test_a_header_name_that_matches_a_detector_is_withheld(self) -> None:
        name = "hunter2hunter2"
        findings = scan([Piece(SHA, "header", f"{name} x", path=name, line=1)], PatternDetector(known={"PW": name}))
        self.assertEqual([f.describe() for f in findings],
                         [f"commit {SHA[:12]}: commit header {NAME_WITHHELD}: detector known-secret:PW"])

    def test_report_is_bounded(self) -> None:
        findings = [GitFinding(SHA, "lines", "d", f"f{i}", 1) for i in range(60)]
        lines = report(findings, limit=5)
        self.assertEqual(len(lines), 1 + 5 + 1 + 1)
        self.assertIn("... and 55 more", lines[-2])


class GitleaksTest(unittest.TestCase):
    """gitleaks itself is not installed here: a stand-in with its command line and report format."""

    FAKE = """#!{python}
import json, sys
args = sys.argv[1:]
if args[0] != "{mode}":
    sys.exit(126)
report = next(a.split("=", 1)[1] for a in args if a.startswith("--report-path="))
assert "--redact" in args, args
assert any(a == "--log-opts=abc --not --all" for a in args), args
json.dump([{{"RuleID": "aws-access-token", "Commit": "abc", "File": "x.py", "StartLine": 3,
            "Secret": "REDACTED", "Match": "key=REDACTED"}}], open(report, "w"))
"""

    def run_fake(self, mode: str) -> list[GitFinding]:
        with tempfile.TemporaryDirectory() as tmp:
            exe = Path(tmp) / "gitleaks"
            exe.write_text(self.FAKE.format(python=sys.executable, mode=mode))
            exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
            return gitleaks.run(["abc", "--not", "--all"], repo_dir=tmp, binary=str(exe), env=dict(os.environ))

    def test_new_and_old_command_lines(self) -> None:
        for mode in ("git", "detect"):
            with self.subTest(mode=mode):
                self.assertEqual(self.run_fake(mode), [GitFinding("abc", "lines", "gitleaks:aws-access-token", "x.py", 3)])

    def test_a_failing_gitleaks_refuses(self) -> None:
        with self.assertRaises(gitleaks.GitleaksError):
            self.run_fake("neither")

    def test_nothing_to_scan_runs_nothing(self) -> None:
        self.assertEqual(gitleaks.run([], repo_dir="/nonexistent", binary="/nonexistent/gitleaks"), [])


if __name__ == "__main__":
    unittest.main()
