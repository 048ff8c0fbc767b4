"""Hex of a value with junk bytes around it, and ``xxd -g0`` dumps, read back; their
look-alikes (hashes, ids, ordinary dumps) left alone.

A hex run was read only when its first bytes looked like text at one of its two alignments, so
one junk byte in front (``ab`` + hex + ``cd``) hid the value; junk after it made the whole run
noise. ``xxd -g0`` (and ``-g 16``) writes a line's sixteen bytes as one group, wider than the
dump reader took."""

from __future__ import annotations

import hashlib
import random
import unittest
import uuid
from pathlib import Path

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp.dumps import hex_dumps
from bot_bottle.sidecar.dlp.encodings import decode_runs

SCANNER = Scanner({})
TOKEN = "ghp_Xq7vR2xW9mLp4ZtBnC5dK8sJ3hG6fA1eYu0T"  # a GitHub token format, no bottle secret
TOKEN_HEX = TOKEN.encode().hex()


def found(body: str) -> set[str]:
    findings = SCANNER.scan_request("POST", "https://upload.example/", {"content-type": "text/plain"}, body.encode())
    return {f.secret_name or f.detector for f in findings}


def shown(chunk: bytes) -> str:
    return "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)


def xxd_g0(data: bytes, columns: int = 16, upper: bool = False) -> str:
    """``xxd -g0 -c columns`` (checked against the real tool byte for byte; ``-g 16`` prints
    the same): the offset, the line's bytes as one group padded out, two blanks, the text."""
    lines = []
    for at in range(0, len(data), columns):
        chunk = data[at : at + columns]
        digits = chunk.hex().upper() if upper else chunk.hex()
        lines.append(f"{at:08x}: {digits:<{2 * columns}}  {shown(chunk)}")
    return "\n".join(lines) + "\n"


class HexWithJunkTest(unittest.TestCase):
    def test_one_junk_byte_each_side(self) -> None:
        for before, after in (("ab", "cd"), ("ff", "00"), ("80", "7f"), ("FF", "EE")):
            with self.subTest(before=before, after=after):
                self.assertIn("github-token", found(f'{{"blob": "{before}{TOKEN_HEX}{after}"}}'))

    def test_several_junk_bytes_in_front(self) -> None:
        for junk in ("deadbeef", "ffffffffff", "c0ffee" * 8, "9" + "ab" * 20):
            with self.subTest(junk=junk):
                self.assertIn("github-token", found(f"data={junk}{TOKEN_HEX}\n"))

    def test_odd_junk_shifts_the_alignment(self) -> None:
        self.assertIn("github-token", found(f"x = 'abc{TOKEN_HEX}d'\n"))

    def test_junk_after_the_value(self) -> None:
        self.assertIn("github-token", found(f"{TOKEN_HEX}{'ff' * 30}\n"))
        self.assertIn("github-token", found(f"ab{TOKEN_HEX}{'e9' * 40}\n"))

    def test_hashes_and_ids_decode_to_nothing(self) -> None:
        rng = random.Random(13)
        words = []
        for n in range(3000):
            words.append(hashlib.sha256(str(n).encode()).hexdigest())
            words.append(hashlib.sha1(str(n).encode()).hexdigest())
            words.append(uuid.UUID(int=rng.getrandbits(128)).hex)
            words.append(rng.randbytes(rng.randrange(12, 80)).hex())
        text = "\n".join(f"id_{n} = '{word}'" for n, word in enumerate(words))
        self.assertEqual([d for d in decode_runs(text, limit=1 << 20) if d.encoding == "hex"], [])
        self.assertEqual(found(text), set())

    def test_junk_then_ordinary_text_finds_nothing(self) -> None:
        self.assertEqual(found("ff" + b"just an ordinary sentence here".hex() + "00\n"), set())


class XxdOneGroupTest(unittest.TestCase):
    FILE = f"config\nDB=localhost\ntoken={TOKEN}\nend\n".encode()

    def test_xxd_g0_read(self) -> None:
        self.assertIn("github-token", found(xxd_g0(self.FILE)))

    def test_wider_lines_and_upper_case(self) -> None:
        self.assertIn("github-token", found(xxd_g0(self.FILE, columns=24)))
        self.assertIn("github-token", found(xxd_g0(self.FILE, upper=True)))

    def test_dump_bytes_are_the_file(self) -> None:
        data = b"\x00 leading blank column \xff\x80" + self.FILE
        layers = hex_dumps(xxd_g0(data), limit=1 << 16)
        self.assertEqual([layer.text for layer in layers], [data.decode("latin-1")])

    def test_ordinary_files_stay_clean(self) -> None:
        source = Path(unittest.__file__).read_bytes()[:4096]
        for data in (source, random.Random(7).randbytes(4096), bytes(range(256)) * 4):
            self.assertEqual(found(xxd_g0(data)), set())

    def test_hash_pairs_after_an_offset_are_no_dump(self) -> None:
        md5 = [hashlib.md5(str(n).encode()).hexdigest() for n in range(8)]
        pairs = "".join(f"{n * 16:08x}: {md5[n]}  {md5[n + 1]}\n" for n in range(6))
        ids = "".join(f"{n:06d} {uuid.UUID(int=n * 7919).hex}\n" for n in range(6))
        no_column = "".join(f"{n * 16:08x}: {md5[n]}\n" for n in range(6))
        wrong_column = "".join(f"{n * 16:08x}: {md5[n]}  not its own bytes\n" for n in range(6))
        for text in (pairs, ids, no_column, wrong_column):
            with self.subTest(text=text[:40]):
                self.assertEqual(hex_dumps(text, limit=1 << 16), [])


if __name__ == "__main__":
    unittest.main()
