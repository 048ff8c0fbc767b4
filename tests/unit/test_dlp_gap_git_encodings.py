"""The git-gate reads commit and tag objects in every encoding their bytes read in.

A commit message, an identity or a tag message is stored as the committer's tools wrote it: a
non-ASCII secret in latin-1, Shift-JIS or UTF-16 bytes (with an ``encoding`` header or without
one) reads as replacement characters in UTF-8 and must still be found.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.git_gate import objects
from bot_bottle.sidecar.git_gate.objects import RawObject, commit_pieces, split_object, tag_pieces
from bot_bottle.sidecar.git_gate.patch import read_pieces
from bot_bottle.sidecar.git_gate.piece import Piece
from bot_bottle.sidecar.git_gate.scan import EngineDetector, scan
from tests._requires import requires

TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
OID = "2" * 40
LATIN = "Ölfaß-Größe-Übermaß-Äußerst9"  # more non-ASCII letters than a partial match forgives
KANJI = "秘密のパスワード東京タワー"
CYRILLIC = "секретный-пароль-Жук"
GHP = "ghp_" + "q8Yt3LmN0pR5sV2wX7zA9cE4gJ6kB1dF0hUi"
SECRETS = {"LATIN_PW": LATIN, "KANJI_PW": KANJI, "CYR_PW": CYRILLIC}
IDENT = b"T <t@x> 1700000000 +0000"


def _commit(message: bytes, headers: bytes = b"", author: bytes = IDENT) -> RawObject:
    data = b"tree " + TREE.encode() + b"\nauthor " + author + b"\ncommitter " + IDENT + b"\n" + headers + b"\n" + message
    return RawObject(OID, "commit", data)


def _tag(message: bytes, headers: bytes = b"", tagger: bytes = IDENT) -> RawObject:
    data = (b"object " + OID.encode() + b"\ntype commit\ntag v1\ntagger " + tagger + b"\n" + headers + b"\n"
            + message)
    return RawObject("3" * 40, "tag", data)


class GitEncodingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.detector = EngineDetector(Scanner(secrets=SECRETS))

    def found(self, pieces: list[Piece]) -> set[tuple[str, str]]:
        return {(f.kind, f.detector.split(" ")[0]) for f in scan(pieces, self.detector)}

    def test_a_message_in_a_legacy_encoding_without_a_header(self) -> None:
        cases = [
            ("latin-1", LATIN, "LATIN_PW"), ("cp1252", LATIN, "LATIN_PW"), ("shift_jis", KANJI, "KANJI_PW"),
            ("euc_jp", KANJI, "KANJI_PW"), ("gb18030", KANJI, "KANJI_PW"), ("cp1251", CYRILLIC, "CYR_PW"),
            ("koi8-r", CYRILLIC, "CYR_PW"), ("utf-16-le", KANJI, "KANJI_PW"), ("utf-16", LATIN, "LATIN_PW"),
        ]
        for codec, value, name in cases:
            with self.subTest(codec=codec):
                obj = _commit(f"deploy notes\n\nthe password is {value}\n".encode(codec))
                self.assertIn(("message", f"known-secret:{name}"), self.found(commit_pieces(obj)))

    def test_a_message_in_the_encoding_its_header_names(self) -> None:
        for codec, header in (("latin-1", b"ISO-8859-1"), ("shift_jis", b"Shift_JIS"), ("utf-16-le", b"UTF-16LE")):
            with self.subTest(codec=codec):
                value, name = (LATIN, "LATIN_PW") if codec == "latin-1" else (KANJI, "KANJI_PW")
                obj = _commit(f"pw {value}\n".encode(codec), b"encoding " + header + b"\n")
                self.assertIn(("message", f"known-secret:{name}"), self.found(commit_pieces(obj)))

    def test_a_token_in_utf16_without_a_header(self) -> None:
        obj = _commit(f"ci: {GHP}\n".encode("utf-16-le"))
        self.assertIn(("message", "github-token"), self.found(commit_pieces(obj)))

    def test_identity_and_other_headers_in_a_legacy_encoding(self) -> None:
        author = f"{LATIN} <t@x> 1700000000 +0000".encode("latin-1")
        obj = _commit(b"m\n", b"x-note " + f"{KANJI}".encode("shift_jis") + b"\n", author=author)
        found = self.found(commit_pieces(obj))
        self.assertIn(("identity", "known-secret:LATIN_PW"), found)
        self.assertIn(("header", "known-secret:KANJI_PW"), found)

    def test_tag_message_and_tagger_in_a_legacy_encoding(self) -> None:
        tagger = f"{CYRILLIC} <t@x> 1700000000 +0000".encode("koi8-r")
        obj = _tag(f"release\n\n{KANJI}\n".encode("euc_jp"), tagger=tagger)
        pieces, target, kind = tag_pieces(obj)
        self.assertEqual((target, kind), (OID, "commit"))
        found = self.found(pieces)
        self.assertIn(("tag", "known-secret:KANJI_PW"), found)
        self.assertIn(("tagger", "known-secret:CYR_PW"), found)

    def test_tag_message_in_the_encoding_its_header_names(self) -> None:
        obj = _tag(f"pw {LATIN}\n".encode("utf-16-be"), b"encoding UTF-16BE\n")
        self.assertIn(("tag", "known-secret:LATIN_PW"), self.found(tag_pieces(obj)[0]))

    def test_utf8_text_is_read_once(self) -> None:
        # The common case: a UTF-8 message is one piece, as before (no legacy readings).
        self.assertEqual(objects.text_views("Grüße, Привет, 東京\n".encode()), ["Grüße, Привет, 東京\n"])
        obj = _commit("fix: Grüße\n".encode())
        self.assertEqual([p.text for p in commit_pieces(obj) if p.kind == "message"], ["fix: Grüße\n"])

    def test_a_benign_legacy_message_is_not_flagged(self) -> None:
        for codec, text in (("latin-1", "Füße, Öl und Straße\n"), ("shift_jis", "東京タワーの修正\n"),
                            ("koi8-r", "Исправление ошибки в модуле\n"), ("utf-16-le", "fix typo in README\n")):
            with self.subTest(codec=codec):
                self.assertEqual(self.found(commit_pieces(_commit(text.encode(codec)))), set())

    def test_an_unknown_declared_codec_still_reads_the_other_ways(self) -> None:
        obj = _commit(f"pw {LATIN}\n".encode("latin-1"), b"encoding X-NO-SUCH-CODEC\n")
        self.assertIn(("message", "known-secret:LATIN_PW"), self.found(commit_pieces(obj)))

    def test_split_object_keeps_its_shape(self) -> None:
        headers, message = split_object(b"tree x\ngpgsig a\n b\nauthor \xff\n\nbody\x00more")
        self.assertEqual(headers, [("tree", "x"), ("gpgsig", "a\nb"), ("author", "\ufffd")])
        self.assertEqual(message, b"body\x00more")


@requires(shutil.which("git") is not None, "git")
class RealGitEncodingTest(unittest.TestCase):
    """End to end through ``git cat-file``: a commit git wrote with a latin-1 message."""

    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmp.cleanup)
        root = Path(self._tmp.name)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root), "GIT_CONFIG_NOSYSTEM": "1",
                    "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "T",
                    "GIT_COMMITTER_EMAIL": "t@x", "GIT_DIR": str(root / "r" / ".git")}
        self.repo = root / "r"
        subprocess.run(["git", "init", "-q", "-b", "main", str(self.repo)], env=self.env, check=True)

    def test_a_shift_jis_message_git_repaired_into_utf8(self) -> None:
        # Told the message is UTF-8 (the default), git stores each stray byte as a Latin-1
        # character: the Shift-JIS bytes survive only as that mojibake, and are read back from it.
        message = f"memo\n\n{KANJI}\n".encode("shift_jis")
        subprocess.run(["git", "commit", "-q", "--allow-empty", "-F", "-"], cwd=self.repo, env=self.env,
                       input=message, capture_output=True, check=True)
        oid = subprocess.run(["git", "rev-parse", "HEAD"], cwd=self.repo, env=self.env, capture_output=True,
                             text=True, check=True).stdout.strip()
        stored = subprocess.run(["git", "cat-file", "commit", oid], cwd=self.repo, env=self.env,
                                capture_output=True, check=True).stdout
        self.assertNotIn(message.split(b"\n\n")[1], stored)  # git did rewrite it
        detector = EngineDetector(Scanner(secrets=SECRETS))
        found = {(f.kind, f.detector) for f in scan(read_pieces([oid], env=self.env), detector)}
        self.assertIn(("message", "known-secret:KANJI_PW"), found)

    def test_a_commit_with_i18n_commit_encoding(self) -> None:
        message = f"notes\n\n{LATIN}\n".encode("latin-1")
        # One commit with an ``encoding ISO-8859-1`` header, one with the same bytes and none.
        for config in ("i18n.commitEncoding=ISO-8859-1", "i18n.commitEncoding=UTF-8"):
            subprocess.run(["git", "-c", config, "commit", "-q", "--allow-empty", "-F", "-"], cwd=self.repo,
                           env=self.env, input=message, capture_output=True, check=True)
        log = subprocess.run(["git", "rev-list", "HEAD"], cwd=self.repo, env=self.env, capture_output=True,
                             text=True, check=True).stdout.split()
        detector = EngineDetector(Scanner(secrets=SECRETS))
        for oid in log:
            with self.subTest(oid=oid):
                found = {(f.kind, f.detector) for f in scan(read_pieces([oid], env=self.env), detector)}
                self.assertIn(("message", "known-secret:LATIN_PW"), found)


if __name__ == "__main__":
    unittest.main()
