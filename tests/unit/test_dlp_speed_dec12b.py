"""The cheaper passes of a held body's scan, pinned at their edges.

A large request of prose and source code (JSON of docs and Python files, some of them with
characters beyond latin-1, so stored two bytes wide) paid for the same work several times: the
scanned texts were joined three times over (direct layer, forms searched as sent, decoded layer),
each byte-view decoder made its own latin-1 copy of the joined text (now one for the dump and
code-list readers, and one, not two or three, in ``encodings.decode_runs``), two counts of "0x" and "0X" were two whole passes where a search that stops at
the ``MIN_CODES``-th does (``charcodes._enough_hex_prefixes``), four substring searches found
the lines a hex dump may start on where one search for the zeros does (``dumps._first_lines``),
and the table of compatibility characters normalized every code point where only those with a
decomposition can fold (``compat._finders``). Each must find what the old passes found: a secret
just at each edge is still found."""

from __future__ import annotations

import base64
import json
import unicodedata
import unittest

from bench.dumps import xxd
from bot_bottle.sidecar.dlp import Scanner, ScanOptions
from bot_bottle.sidecar.dlp import charcodes, compat, dumps, encodings
from bot_bottle.sidecar.dlp.charcodes import MIN_CODES, decode_code_lists, has_code_list
from bot_bottle.sidecar.dlp.dumps import hex_dumps

PASSWORD = "Vx9!kQ2#mW7pL4zR"
SCANNER = Scanner({"DB_PASSWORD": PASSWORD})
WIDE = "\u4e2d\u6587 \U0001f600"  # stores a text four bytes a character


def scan_json(*contents: str, scanner: Scanner = SCANNER) -> set[tuple[str, str | None]]:
    body = json.dumps({"messages": [{"role": "user", "content": c} for c in contents]}).encode()
    findings = scanner.scan_request("POST", "https://api.example/upload", {"content-type": "application/json"}, body)
    return {(f.detector, f.secret_name) for f in findings}


def names(found: set[tuple[str, str | None]]) -> set[str | None]:
    return {name for _, name in found}


class HexPrefixCountTest(unittest.TestCase):
    """``MIN_CODES`` prefixes ("0x" or "0X", mixed) are enough; one fewer is not."""

    def codes(self, data: bytes, upper_every: int = 0) -> str:
        out = []
        for i, b in enumerate(data):
            prefix = "0X" if upper_every and i % upper_every == 0 else "0x"
            out.append(f"{prefix}{b:02x}")
        return ", ".join(out)

    def test_exactly_min_codes_mixed_case_prefixes(self) -> None:
        text = self.codes(PASSWORD.encode()[:MIN_CODES], upper_every=2)
        self.assertEqual(text.count("0x") + text.count("0X"), MIN_CODES)
        self.assertTrue(charcodes._enough_hex_prefixes(text.encode("latin-1")))
        self.assertTrue(has_code_list(text))
        layers = decode_code_lists(text, limit=1 << 20)
        self.assertIn(PASSWORD[:MIN_CODES], "".join(layer.text for layer in layers))

    def test_one_fewer_is_not_enough(self) -> None:
        text = "x = 1\n" + " ".join(f"0x{b:02x}" for b in b"abcdefg") + "\n"
        self.assertFalse(charcodes._enough_hex_prefixes(text.encode("latin-1")))
        self.assertEqual(decode_code_lists(text, limit=1 << 20), [])

    def test_overlapping_looking_prefixes_counted_as_a_count_does(self) -> None:
        # "0x0x0x": a count finds three, never overlapping; the search finds the same three.
        for text in ("0x0x0x0x0x0x0x0x", "0x0x0x0x0x0x0x", "00xX0X0x" * 2, "0X" * 7 + "0"):
            with self.subTest(text=text):
                self.assertEqual(charcodes._enough_hex_prefixes(text.encode("latin-1")),
                                 text.count("0x") + text.count("0X") >= MIN_CODES)

    def test_secret_as_hex_codes_in_a_wide_text(self) -> None:
        listed = self.codes(PASSWORD.encode(), upper_every=3)
        self.assertIn("DB_PASSWORD", names(scan_json(f"{WIDE}\nkey = [{listed}]\n{WIDE}")))
        self.assertIn("DB_PASSWORD", names(scan_json(f"key = [{listed}]")))

    def test_a_wide_character_is_no_prefix(self) -> None:
        # The latin-1 view writes a wide character as "?": never a "0" or an "x".
        text = "0\u4e2d" * 10 + "\u4e2dx" * 10
        self.assertFalse(charcodes._enough_hex_prefixes(text.encode("latin-1", "replace")))


class FirstLinesTest(unittest.TestCase):
    """A dump's first line is found after each line lead, at the start, and next to zero runs."""

    DATA = PASSWORD.encode() + b" end of it"

    def assert_dump_read(self, text: str) -> None:
        layers = hex_dumps(text, limit=1 << 20)
        self.assertTrue(any(PASSWORD in layer.text for layer in layers), (text[:80], layers))

    def test_each_lead_and_the_start(self) -> None:
        dump = xxd(self.DATA)
        self.assertTrue(dump.startswith("00000000"))
        for before in ("", "intro\n", "a\x00", " ", "\t", "x\n   ", "x\n\t\t", "x\x00  "):
            with self.subTest(before=before):
                self.assert_dump_read(before + dump)

    def test_zero_runs_before_the_dump(self) -> None:
        dump = xxd(self.DATA)
        for before in ("0000000000\n", "value 0000000000 and\n", "x000000\n", "000000000000000000 \n",
                       "1000000\n", "000000\n", "0" * 70 + "\n", "000000\x00"):
            with self.subTest(before=before):
                self.assert_dump_read(before + dump)

    def test_zero_run_right_after_a_lead(self) -> None:
        # The offset column is itself a run of zeros longer than six, after a line break.
        self.assert_dump_read("notes\n" + xxd(self.DATA))
        self.assert_dump_read("\n" * 3 + xxd(self.DATA))

    def test_first_lines_as_four_searches_found_them(self) -> None:
        texts = ["a\n000000 x\n000000 y", "000000\t000000 000000\x00000000", "0" * 40 + "\n000000",
                 " 0000000000000 \n\t00000000", "x0000000\n0000000", "00000", "\n" * 5, ""]
        for text in texts:
            with self.subTest(text=text):
                self.assertEqual(dumps._first_lines(text), _first_lines_by_marks(text))

    def test_in_a_wide_text(self) -> None:
        self.assertIn("DB_PASSWORD", names(scan_json(f"{WIDE}\n{xxd(self.DATA)}{WIDE}")))


def _first_lines_by_marks(text: str) -> list[int]:
    """``dumps._first_lines`` as four substring searches, one per line lead."""
    head = text[: dumps._OFFSET_INDENT + len(dumps._FIRST_OFFSET)]
    zeros = [len(head) - len(head.lstrip(" \t"))]
    for mark in dumps._FIRST_LINES:
        at = text.find(mark)
        while at >= 0:
            zeros.append(at + 1)
            at = text.find(mark, at + len(mark))
    starts = {dumps._line_start(text, at) for at in zeros if text.startswith(dumps._FIRST_OFFSET, at)}
    return sorted(starts - {-1})


class SharedLatinViewTest(unittest.TestCase):
    """One latin-1 view of the joined values serves dumps and code lists; one of a text serves
    its base64 runs and their shapes."""

    def test_view_of_a_latin1_text_and_of_a_wide_one(self) -> None:
        narrow = encodings.latin_view("caf\u00e9 ab")
        self.assertTrue(narrow.narrow)
        self.assertEqual(narrow.data, "caf\u00e9 ab".encode("latin-1"))
        wide = encodings.latin_view("caf\u00e9 \u4e2d")
        self.assertFalse(wide.narrow)
        self.assertEqual(wide.data, b"caf\xe9 ?")

    def test_padded_run_read_in_a_latin1_text(self) -> None:
        # Padding is matched with a run only where the text is latin-1 (as before).
        encoded = base64.b64encode(b"password=" + PASSWORD.encode() + b"!").decode()
        self.assertTrue(encoded.endswith("="))
        for text in (f"caf\u00e9 {encoded} x", f"\u4e2d {encoded} x", encoded):
            with self.subTest(text=text[:10]):
                layers = encodings.decode_runs(text, limit=1 << 20)
                self.assertTrue(any(PASSWORD in d.text for d in layers))
                self.assertEqual(encodings._run_spans(text, encodings.latin_view(text)), encodings._run_spans(text))
            spans = encodings._run_spans(text)
            self.assertEqual(text[spans[-1][0]:spans[-1][1]].endswith("="), text.isascii() or "\u00e9" in text)

    def test_shortest_run_next_to_a_wide_character(self) -> None:
        encoded = base64.b64encode(PASSWORD.encode() + b"..").decode()  # 24 characters: MIN_RUN
        self.assertEqual(len(encoded), encodings.MIN_RUN)
        for text in (f"\u4e2d{encoded}\u4e2d", f"{WIDE}\n{encoded}\n", f"\U0001f600{encoded}"):
            with self.subTest(text=text[:3]):
                self.assertIn("DB_PASSWORD", names(scan_json(text)))
                self.assertIn("DB_PASSWORD", names(scan_json("plain words", text)))

    def test_each_decoder_in_one_wide_body(self) -> None:
        data = PASSWORD.encode() + b" end"
        narrow = "\n".join(base64.b64encode(data).decode()[i:i + 8] for i in range(0, 28, 8))
        forms = [
            base64.b64encode(data).decode(),
            data.hex(),
            xxd(data),
            ", ".join(str(b) for b in data),
            narrow,
            " ".join(f"{b:02x}" for b in data),
        ]
        for form in forms:
            with self.subTest(form=form[:20]):
                self.assertIn("DB_PASSWORD", names(scan_json(WIDE, f"{WIDE}\n{form}\n{WIDE}", "code(x)")))


class JoinedOnceTest(unittest.TestCase):
    """The scanned texts are joined once for all layers; segments that are not deep, and values
    longer than ``deep_limit`` (decoded in windows), keep their own joins."""

    def test_forms_and_decoded_layers_placed_on_their_value(self) -> None:
        b85 = base64.b85encode(PASSWORD.encode()).decode()
        b64 = base64.b64encode(PASSWORD.encode()).decode()
        body = json.dumps({"a": "x" * 50, "b": f"key {b85} end", "c": {"d": f"v {b64} w"}}).encode()
        findings = SCANNER.scan_request("POST", "https://api.example/u", {"content-type": "application/json"}, body)
        where = {(f.location, f.encoding) for f in findings if f.secret_name == "DB_PASSWORD"}
        self.assertIn(("body.json:$.b", "base85"), where)
        self.assertIn(("body.json:$.c.d", "base64"), where)
        for f in findings:
            if f.encoding == "base64":
                self.assertIn(json.loads(body)["c"]["d"][f.start:f.end], b64)

    def test_headers_not_deep_beside_deep_values(self) -> None:
        b64 = base64.b64encode(PASSWORD.encode()).decode()
        findings = SCANNER.scan_request("POST", f"https://api.example/u?q={b64}",
                                        {"x-note": "plain", "content-type": "application/json"},
                                        json.dumps({"m": f"{WIDE} {b64}"}).encode())
        self.assertEqual({f.location for f in findings if f.secret_name == "DB_PASSWORD"},
                         {"url.query.q", "body.json:$.m"})

    def test_value_past_the_deep_limit_is_decoded_in_windows(self) -> None:
        scanner = Scanner({"DB_PASSWORD": PASSWORD}, ScanOptions(deep_limit=128 * 1024))  # windows 64 KiB apart
        b64 = base64.b64encode(PASSWORD.encode()).decode()
        long_value = "word " * 40000 + b64 + " tail"  # past the limit: in the last windows only
        found = scan_json("short one", long_value, scanner=scanner)
        self.assertIn(("known-secret", "DB_PASSWORD"), found)


class CompatTableTest(unittest.TestCase):
    """The table of folding characters, built from those with a decomposition, is every
    character that folds."""

    def test_every_folding_character_is_in_the_table(self) -> None:
        finders = compat._finders()
        missing = []
        for cp in range(0x80, 0x20000):
            if 0xD800 <= cp < 0xE000:
                continue
            ch = chr(cp)
            if not compat._folds_to_ascii(ch):
                continue
            pattern = finders.lookalike_run if ch in compat.LOOKALIKES else finders.compat_run
            if pattern.fullmatch(ch.encode("utf-8")) is None:
                missing.append(hex(cp))
        self.assertEqual(missing, [])

    def test_no_character_without_a_decomposition_folds_but_lookalikes(self) -> None:
        for cp in range(0x80, 0x20000):
            ch = chr(cp)
            if 0xD800 <= cp < 0xE000 or unicodedata.decomposition(ch) or ch in compat.LOOKALIKES:
                continue
            self.assertEqual(unicodedata.normalize("NFKC", ch), ch, hex(cp))

    def test_singleton_and_compatibility_forms_fold(self) -> None:
        # KELVIN SIGN (a canonical singleton), fullwidth and mathematical letters, a Cyrillic
        # lookalike, and tag characters.
        value = "Kx9!kQ2#mW7pL4zR"
        scanner = Scanner({"DB_PASSWORD": value})
        disguises = [
            "\u212a" + value[1:],
            "".join(chr(0xFF00 + ord(c) - 0x20) for c in value),
            value[:4] + "".join(chr(0x1D41A + ord(c) - ord("a")) if c.islower() else c for c in value[4:]),
            value.replace("x", "\u0445"),
            "".join(chr(0xE0000 + ord(c)) for c in value),
        ]
        for text in disguises:
            with self.subTest(text=text):
                self.assertIn("DB_PASSWORD", names(scan_json(f"note: {text} done", scanner=scanner)))


class SpreadWideTextTest(unittest.TestCase):
    """A spelled-out secret in a text with wide characters: read in a one-pass byte view."""

    VALUE = "Tq8Zr3Lp0Wx5Vn7Ks2Yb"  # twenty letters and digits: spread forms are searched
    SCANNER = Scanner({"TOKEN": VALUE, "PHRASE": "correct horse battery staple"})

    def test_spread_next_to_wide_characters(self) -> None:
        for separator in (" ", "\u4e2d", "\u00b7", "\u200b"):
            spread = separator.join(self.VALUE)
            for text in (f"{WIDE} {spread} {WIDE}", f"caf\u00e9 {spread}", f"{spread}\u4e2d", spread):
                with self.subTest(separator=separator, text=text[:4]):
                    hits = [f for f in self.SCANNER.scan_text(text, deep=True) if f.secret_name == "TOKEN"]
                    self.assertTrue(hits)
                    self.assertEqual(text[hits[0].start:hits[0].end], spread)

    def test_words_with_wide_separators_not_a_spread(self) -> None:
        text = "\u4e2d".join("the quick brown fox jumps over the lazy dog".split())
        self.assertEqual([f for f in self.SCANNER.scan_text(text, deep=True) if f.secret_name], [])
        text = "\u4e2d and \u00e9 ".join(["correcthorse", "batterystaple", "= x"])
        self.assertEqual([f for f in self.SCANNER.scan_text(text, deep=True) if f.secret_name], [])


class NarrowBlockAtValueStartTest(unittest.TestCase):
    """Two lines of narrow base64 at a value's very start (a text's, or after the NUL between
    joined values) whose last line is three characters or fewer: no line break comes before the
    first line, and the last is too short to be a hint, so the block was never read."""

    ENCODED = base64.b64encode(PASSWORD.encode()).decode()  # 22 characters and "=="

    def block(self, width: int) -> str:
        return self.ENCODED[:width] + "\n" + self.ENCODED[width:]

    def test_last_line_of_three_two_one_characters(self) -> None:
        for width in (19, 20, 21):
            text = self.block(width)
            with self.subTest(text=text):
                layers = dumps.plain_dumps(text, limit=1 << 20)
                self.assertIn(PASSWORD, [layer.text for layer in layers])
                self.assertEqual((layers[0].start, layers[0].end), (0, len(text)))
                self.assertIn("DB_PASSWORD", names(scan_json(text)))
                self.assertIn("DB_PASSWORD", {f.secret_name for f in SCANNER.scan_text(text, deep=True)})

    def test_after_the_nul_between_joined_values(self) -> None:
        text = "first value\x00" + self.block(20) + "\x00third"
        layers = dumps.plain_dumps(text, limit=1 << 20)
        self.assertEqual([(layer.start, layer.text) for layer in layers], [(12, PASSWORD)])
        self.assertIn("DB_PASSWORD", names(scan_json("intro", self.block(21), "outro")))

    def test_last_line_of_four_read_as_before(self) -> None:
        # Four characters and padding: a hint, as it always was; read once.
        text = self.block(18)
        self.assertEqual([layer.text for layer in dumps.plain_dumps(text, limit=1 << 20)], [PASSWORD])

    def test_hints_after_a_block_at_a_start_still_read(self) -> None:
        later = "\n".join(self.ENCODED[i:i + 8] for i in range(0, 24, 8))
        text = self.block(20) + "\x00" + "words here\n" + later
        texts = [layer.text for layer in dumps.plain_dumps(text, limit=1 << 20)]
        self.assertEqual(texts.count(PASSWORD), 2)

    def test_look_alikes_give_nothing(self) -> None:
        for text in ("Traceback\nError", "hello\nabc", "abcdefghijklmnop\nqrs", "Summary\nOK",
                     "def\nx", "README\nmd"):
            with self.subTest(text=text):
                self.assertEqual(scan_json(text, "x"), set())
                self.assertEqual(SCANNER.scan_text(text, deep=True), [])
        # Lines of lowercase words read as base64 are passed over at a start as after a hint.
        self.assertEqual(dumps.plain_dumps("abcdefghijklmnop\nqrs", limit=1 << 20), [])


if __name__ == "__main__":
    unittest.main()
