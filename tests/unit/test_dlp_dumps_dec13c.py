"""Two dump shapes read back into their bytes, and their look-alikes left alone.

``xxd -e`` (little-endian groups) right-aligns a group the end of the file cut short in its
column: the blanks before it are wider than between the other groups, and the short last line's
bytes used to end before it, losing what the value had on that line. A dump pasted as a table (a
spreadsheet, TSV: a row number or offset, a tab, then the row's bytes as cells, one run or
spaced, maybe a text cell) was not read at all."""

from __future__ import annotations

import hashlib
import json
import unittest

from bench.dumps import xxd
from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp.dumps import hex_dumps, plain_dumps

PASSWORD = "Vx9!kQ2#mW7pL4zR"
SCANNER = Scanner({"DB_PASSWORD": PASSWORD})
TOKEN = "ghp_Xq7vR2xW9mLp4ZtBnC5dK8sJ3hG6fA1eYu0T"  # a GitHub token format, no bottle secret


def xxd_e(data: bytes, group: int = 4) -> str:
    """``xxd -e -g group`` (checked against the real tool byte for byte): groups little-endian,
    a short one right-aligned in its column, then the text column."""
    lines = []
    for at in range(0, len(data), 16):
        chunk = data[at : at + 16]
        cells = []
        for i in range(0, 16, group):
            part = chunk[i : i + group]
            cells.append(part[::-1].hex().rjust(2 * group) if part else " " * (2 * group))
        shown = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{at:08x}: {' '.join(cells)}  {shown}")
    return "\n".join(lines) + "\n"


def shown(chunk: bytes) -> str:
    return "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)


def table(data: bytes, row: str = "index", cells: str = "tabs", text: bool = False, width: int = 16) -> str:
    """``data`` as a tab-separated table: a first cell (row number, decimal or hex offset), the
    bytes (a cell each, one run, or blanks between them), maybe a text cell."""
    out = []
    for n, at in enumerate(range(0, len(data), width)):
        chunk = data[at : at + width]
        first = {"index": str(n), "decimal": str(at), "offset": f"{at:08x}", "colon": f"{at:08x}:"}[row]
        body = {"tabs": "\t".join(f"{b:02x}" for b in chunk), "run": chunk.hex(),
                "spaced": " ".join(f"{b:02x}" for b in chunk)}[cells]
        out.append(f"{first}\t{body}" + (f"\t{shown(chunk)}" if text else ""))
    return "\n".join(out) + "\n"


def found(body: str, ctype: str = "text/plain") -> set[str]:
    findings = SCANNER.scan_request("POST", "https://upload.example/", {"content-type": ctype}, body.encode())
    return {f.secret_name or f.detector for f in findings}


def found_anywhere(body: str) -> set[str]:
    """Found as a plain-text body and as a JSON string value."""
    return found(body) | found(json.dumps({"note": body}), "application/json")


class XxdLittleEndianTest(unittest.TestCase):
    def test_short_last_line_read_whole(self) -> None:
        for group in (2, 4, 8):
            for head in range(0, 40, 3):
                data = b"token: " + b"x" * head + TOKEN.encode()
                dump = xxd_e(data, group)
                texts = [layer.text for layer in hex_dumps(dump, limit=1 << 20)]
                with self.subTest(group=group, head=head):
                    self.assertIn(data.decode("latin-1"), texts)

    def test_token_on_the_short_last_line_found(self) -> None:
        for group in (4, 8):
            for head in range(36, 52):
                # The last line holds the token's last bytes, its last group cut short (for
                # most ``head``): every one is found.
                data = b"token: " + b"y" * head + TOKEN.encode()
                with self.subTest(group=group, head=head):
                    self.assertIn("github-token", found_anywhere(xxd_e(data, group)))

    def test_bottle_secret_on_the_short_last_line_found(self) -> None:
        data = b"DB_PASSWORD=" + b"z" * 23 + PASSWORD.encode() + b"!"
        self.assertIn("DB_PASSWORD", found_anywhere(xxd_e(data)))

    def test_text_column_of_hex_words_not_read_as_bytes(self) -> None:
        # The last line's text column starts with hex words ("cafe"); after a full-width last
        # group it is further away than a right-aligned group ever is.
        data = b"0123456789abcdef" * 2 + b"cafe bad face"[:12]
        texts = [layer.text for layer in hex_dumps(xxd_e(data), limit=1 << 20)]
        self.assertIn(data.decode("latin-1"), texts)
        data = b"0123456789abcdef" * 2 + b"cafe"
        texts = [layer.text for layer in hex_dumps(xxd(data), limit=1 << 20)]
        self.assertIn(data.decode("latin-1"), texts)


class XxdLookalikeTest(unittest.TestCase):
    """Dumps of ordinary files, as ``xxd`` and ``xxd -e`` print them: nothing to report."""

    FILES = (
        b"#!/usr/bin/env python3\nimport sys\n\nprint('hello, world')\nsys.exit(0)\n",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06\x00\x00\x00\x5c\x72\xa8\x66",
        b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x03\x00>\x00\x01\x00\x00\x00\x10\x10\x00\x00\x00\x00\x00\x00",
        b"name,count\ncafe,12\nbad face,3\n",
    )

    def test_ordinary_files_clean(self) -> None:
        for data in self.FILES:
            for dump in (xxd(data), xxd(data, 1), xxd_e(data), xxd_e(data, 8)):
                with self.subTest(dump=dump[:40]):
                    self.assertEqual(found_anywhere(dump), set())

    def test_captured_xxd_e_output_clean(self) -> None:
        # ``printf 'cafe bad face cafe bKq7vR2xW9' | xxd -e -g4`` (no secret in it).
        dump = ("00000000: 65666163 64616220 63616620 61632065  cafe bad face ca\n"
                "00000010: 62206566 7637714b 57783252       39  fe bKq7vR2xW9\n")
        self.assertEqual(found_anywhere(dump), set())
        texts = [layer.text for layer in hex_dumps(dump, limit=1 << 20)]
        self.assertIn("cafe bad face cafe bKq7vR2xW9", texts)


class TabTableTest(unittest.TestCase):
    def data(self) -> bytes:
        return b"export GITHUB_TOKEN=" + TOKEN.encode() + b"\n"

    def test_every_shape_found(self) -> None:
        for row in ("index", "decimal", "offset", "colon"):
            for cells in ("tabs", "run", "spaced"):
                for text in (False, True):
                    body = table(self.data(), row, cells, text)
                    with self.subTest(row=row, cells=cells, text=text):
                        self.assertIn("github-token", found_anywhere(body))

    def test_with_a_header_row_and_other_width(self) -> None:
        body = "row\tbytes\n" + table(self.data(), "index", "tabs", width=8)
        self.assertIn("github-token", found_anywhere(body))

    def test_bottle_secret_cut_between_rows(self) -> None:
        data = b"password: " + PASSWORD.encode() + b"\n"
        self.assertIn("DB_PASSWORD", found_anywhere(table(data, "index", "run")))

    def test_layer_is_the_bytes(self) -> None:
        data = self.data()
        text = "intro line\n" + table(data, "index", "tabs", text=True) + "after\n"
        layers = plain_dumps(text, limit=1 << 20)
        self.assertIn(data.decode("latin-1"), [layer.text for layer in layers])

    def test_one_row_is_not_a_table(self) -> None:
        text = table(b"just sixteen b.\n", "index", "tabs")
        self.assertEqual([layer.text for layer in plain_dumps(text, limit=1 << 20)
                          if layer.encoding == "hexdump"], [])


class TabTableLookalikeTest(unittest.TestCase):
    """Tables of hashes and numbers, as tools and spreadsheets write them: nothing to report."""

    def hashes(self, algo: str) -> list[str]:
        return [hashlib.new(algo, f"file-{i}".encode()).hexdigest() for i in range(12)]

    def test_hash_tables_clean(self) -> None:
        for algo in ("md5", "sha1", "sha256"):
            rows = self.hashes(algo)
            bodies = [
                "".join(f"{i}\t{h}\tsrc/file_{i}.py\n" for i, h in enumerate(rows)),
                "id\t" + algo + "\n" + "".join(f"{i + 1}\t{h}\n" for i, h in enumerate(rows)),
                "".join(f"{h}\tsrc/file_{i}.py\n" for i, h in enumerate(rows)),  # sha256sum, tab-separated
                "".join(f"100644 blob {h[:40]}\tsrc/file_{i}.py\n" for i, h in enumerate(rows)),  # git ls-tree
            ]
            for body in bodies:
                with self.subTest(algo=algo, body=body[:30]):
                    self.assertEqual(found_anywhere(body), set())

    def test_number_tables_clean(self) -> None:
        bodies = [
            "".join(f"{i}\t{i * 7 % 100:02d}\t{i * 13 % 100:02d}\t{i * 31 % 100:02d}\t{i * 3 % 100:02d}\n"
                    for i in range(40)),
            "year\tq1\tq2\tq3\tq4\n" + "".join(f"{2000 + i}\t{10 + i}\t{20 + i}\t{30 + i}\t{40 + i}\n" for i in range(20)),
            "".join(f"{i:08x}\t00 00 00 00 ff ff ff ff 00 00 00 00 ff ff ff ff\n" for i in range(0, 64, 16)),
        ]
        for body in bodies:
            with self.subTest(body=body[:30]):
                self.assertEqual(found_anywhere(body), set())


if __name__ == "__main__":
    unittest.main()
