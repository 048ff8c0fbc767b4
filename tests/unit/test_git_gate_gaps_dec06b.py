"""Push-scan gaps: one finding per secret read in several ways, a cheaper reading of large text
files in legacy encodings, and names that hide an encoded token behind a folder.

- a token in UTF-16 in a text file was reported once per reading (the whole file read as UTF-16
  put it on the wrong line; the engine labels what it decodes itself "(utf-16)"; a run read in
  the other byte order, a character short, joined the true one into an "assignment");
- the UTF-8 reading of a line holding bytes that are not UTF-8 is scanned with those bytes as
  one ASCII control character (``STRAY_BYTE``) when the rest is ASCII, which the engine's search
  for disguised letters skips; what the tests check is still found;
- a ref or file name is also read with its slashes as spaces: an encoded token right after
  "heads/" or a folder's name is a run of its own there.
"""

from __future__ import annotations

import base64
import random
import shutil
import unittest
import zlib

from bot_bottle.sidecar.git_gate import patch
from bot_bottle.sidecar.git_gate.patch import line_views
from bot_bottle.sidecar.git_gate.piece import Piece
from bot_bottle.sidecar.git_gate.scan import PatternDetector, default_detector, scan
from tests._requires import requires
from tests.unit.git_gate_repo_helper import push_repos

GHP = "ghp_" + "Zq7Wm2Xv9Lk4Rt8Pn3Bc6Hd1Fg5Js0Ya2UeQ4"


def findings(data: bytes, detector=None) -> list[str]:  # type: ignore[no-untyped-def]
    """What the scan reports for ``data`` as the added lines of file f (from line 1)."""
    text = data.decode("utf-8", "surrogateescape")  # as the log reader keeps such bytes
    pieces = [Piece("c" * 40, "lines", view, path="f", line=1) for view in line_views(text)]
    return [f.describe() for f in scan(pieces, detector or PatternDetector())]


class OneFindingPerSecretTest(unittest.TestCase):
    def test_a_character_whose_utf16_holds_a_newline_byte_keeps_the_files_lines(self) -> None:
        # "上" is 0A 4E in UTF-16-LE: git counts a line at its first byte, the UTF-16 reading did not.
        data = ("上下\n" * 3 + GHP + "\n").encode("utf-16-le")
        self.assertEqual(data[:18].count(b"\n"), 6)
        self.assertEqual(findings(data), [f"commit {'c' * 12}: file f line 7: detector github-token"])

    def test_a_token_in_the_other_byte_order_is_one_finding(self) -> None:
        # Read little-endian a byte late, "token: ghp_..." is the same run short of its last
        # character; joined after the true reading it read as an assignment of the token.
        out = findings(f"token: {GHP}".encode("utf-16-be"), default_detector())
        self.assertEqual(out, [f"commit {'c' * 12}: file f line 1: detector github-token (utf-16)"])


class StrayByteReadingTest(unittest.TestCase):
    def test_latin1_text_is_scanned_as_ascii_in_its_utf8_reading(self) -> None:
        text = "caf\xe9 cr\xe8me\nna\xefve\n".encode("latin-1").decode("utf-8", "surrogateescape")
        first = line_views(text)[0]
        self.assertTrue(first.isascii(), repr(first))
        self.assertEqual(first, f"caf{patch.STRAY_BYTE} cr{patch.STRAY_BYTE}me\nna{patch.STRAY_BYTE}ve\n")

    def test_utf8_letters_beside_a_stray_byte_keep_the_replacement_character(self) -> None:
        text = "Gr\xfc\xdfe ".encode() + b"\xe9 end"
        first = line_views(text.decode("utf-8", "surrogateescape"))[0]
        self.assertEqual(first, "Gr\xfc\xdfe \ufffd end")

    def test_a_token_right_after_a_stray_byte_is_still_found(self) -> None:
        data = b"key=\xe9" + GHP.encode() + b"\n"
        for detector in (PatternDetector(), default_detector()):
            with self.subTest(detector=type(detector).__name__):
                self.assertEqual(len(findings(data, detector)), 1)
                self.assertIn("line 1: detector github-token", findings(data, detector)[0])

    def test_a_zlib_header_in_that_reading_still_sends_the_gate_to_the_blob(self) -> None:
        # Level 6: 78 9c, the second byte no UTF-8 (it was U+FFFD in the reading looked at).
        head = zlib.compress(b"plain words\n", 6)[:2] + b"plain words"
        first = line_views(head.decode("utf-8", "surrogateescape"))[0]
        self.assertEqual(first[:2], "x" + patch.STRAY_BYTE)
        self.assertTrue(patch._may_be_packed_text(first))

    def test_a_bottle_secret_in_latin1_is_still_found(self) -> None:
        value = "Gr\xfc\xdfe-Pa\xdfwort-2024"
        data = b"filler\n" * 3 + f"x {value} y\n".encode("cp1252")
        out = findings(data, default_detector({"DB_PASSWORD": value}))
        self.assertEqual(out, [f"commit {'c' * 12}: file f line 4: detector known-secret:DB_PASSWORD"])


@requires(shutil.which("git") is not None, "git")
class PushTest(unittest.TestCase):
    def setUp(self) -> None:
        self.repos = push_repos(self)

    def assert_one_finding(self, new: str, place: str, detector) -> str:  # type: ignore[no-untyped-def]
        code, out = self.repos.push_main(new, detector)
        self.assertEqual(code, 1, out)
        self.assertIn("push rejected: 1 possible secret(s)", out)
        self.assertIn(f"commit {new[:12]}: {place}", out)
        self.assertNotIn(GHP, out)
        self.assertEqual(self.repos.verdict_doc()["result"], "rejected")
        self.assertEqual(self.repos.upstream_rev(), self.repos.base)
        return out

    def test_a_utf16_token_past_the_first_8000_bytes_is_one_finding_on_its_line(self) -> None:
        new = self.repos.commit({"notes.txt": b"filler line\n" * 700 + f"{GHP}\n".encode("utf-16-le")}, "notes")
        for detector in (PatternDetector(), default_detector()):
            with self.subTest(detector=type(detector).__name__):
                self.assert_one_finding(new, "file notes.txt line 701: detector github-token", detector)

    def test_base32_of_a_token_right_after_a_folder_or_heads(self) -> None:
        encoded = base64.b32encode(GHP.encode()).decode().rstrip("=")
        (self.repos.work / "docs").mkdir()
        new = self.repos.commit({f"docs/{encoded}": "fine\n"}, "docs")
        self.assert_one_finding(new, "file name docs/[redacted]: detector github-token (base32)", default_detector())
        self.repos.git("-C", str(self.repos.work), "branch", encoded, self.repos.base)
        code, out = self.repos.hook(f"{'0' * 40} {self.repos.base} refs/heads/{encoded}\n", default_detector())
        self.assertEqual(code, 1, out)
        self.assertIn("ref name withheld: it carries a finding>: detector github-token (base32)", out)
        self.assertNotIn(encoded, out)

    def test_ordinary_legacy_text_and_paths_stay_clean(self) -> None:
        (self.repos.work / "src").mkdir()
        new = self.repos.commit({"legacy.txt": "caf\xe9 cr\xe8me\nna\xefve fa\xe7ade\n".encode("latin-1"),
                                 "src/MAIN.c": "int main(void) { return 0; }\n"}, "legacy")
        code, out = self.repos.push_main(new, default_detector())
        self.assertEqual(code, 0, out)
        self.assertEqual(self.repos.upstream_rev(), new)


if __name__ == "__main__":
    unittest.main()
