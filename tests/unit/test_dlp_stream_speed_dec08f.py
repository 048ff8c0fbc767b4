"""The cheap pre-checks of a streamed batch's scan, pinned at their edges.

Over binary data the prefilter searches what can only lie in printable text (runs, the forms of
a secret that are all text) in the batch's stretches of text only, and merges needles that find
the same places (a UTF-16 form's two byte orders, a value's exact and case-blind forms, a needle
holding another: ``dlp.prefilter``); ``known`` skips an anchor holding a character a large text
lacks. Each must let through every value the full search finds: values
exactly as long as a stretch must be, right against non-text bytes, at a batch's edges and cut
by a batch seam, in each form the skipped pass looked for."""

from __future__ import annotations

import base64
import random
import re
import unittest

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp.known import GATE_MIN_TEXT
from bot_bottle.sidecar.dlp.prefilter import RUN, text_view
from bot_bottle.sidecar.dlp.stream import StreamScan

TWELVE = "Ab1!cd2#Ef3$"  # exactly RUN characters, not a run (punctuation): found as a needle
SHORT = "Q7!x#2Lm"  # shorter than a stretch: searched everywhere
LONG = "Vx9!kQ2#mW7pL4zR"  # long enough to be found in any case
PUNCT = "k~9|Qz^`2@w{P}r;"  # base85 of it is full of characters code rarely uses
SECRETS = {"TWELVE": TWELVE, "SHORT": SHORT, "LONG": LONG, "PUNCT": PUNCT}
SCANNER = Scanner(SECRETS)
_TEXT = re.compile(rb"[\t\n\r\x20-\x7e]{%d,}" % RUN)


def binary(rng: random.Random, size: int) -> bytearray:
    """Random bytes without a single stretch of text of ``RUN`` bytes (a sparse batch)."""
    data = bytearray(rng.randbytes(size))
    for m in _TEXT.finditer(bytes(data)):
        data[m.start()] = 0xFF
    return data


def planted(form: bytes, at: int, rng: random.Random, size: int = 1 << 20, edge: int = 0xFF) -> bytearray:
    """``form`` at ``at`` in binary data, right against a non-text byte ``edge`` on each side."""
    data = binary(rng, size)
    data[at:at + len(form)] = form
    if at > 0:
        data[at - 1] = edge
    if at + len(form) < size:
        data[at + len(form)] = edge
    return data


def summary(findings) -> list[tuple[str, str, str, int, int]]:
    return sorted((f.detector, f.secret_name or "", f.encoding or "", f.start, f.end) for f in findings)


def utf16(text: str, order: str) -> bytes:
    return text.encode("utf-16-le" if order == "le" else "utf-16-be")


class TextViewTest(unittest.TestCase):
    def test_stretches_are_every_maximal_run_of_text_of_run_bytes_or_more(self) -> None:
        rng = random.Random(1)
        data = binary(rng, 200_000)
        # Runs of RUN-1, RUN and RUN+1 text bytes against NUL, blanks and high bytes, and at both ends.
        for i, length in enumerate([RUN - 1, RUN, RUN + 1] * 30):
            at = 100 + i * 2000
            data[at - 1] = (0x00, 0x01, 0xFF)[i % 3]
            data[at:at + length] = b"x" * length
            data[at + length] = (0xFF, 0x00, 0x1F)[i % 3]
        data[:RUN] = b"s" * RUN
        data[RUN] = 0
        data[-RUN:] = b"e" * RUN
        data[-RUN - 1] = 0
        view = text_view(data)
        self.assertEqual(view.stretches, [m.span() for m in _TEXT.finditer(bytes(data))])
        self.assertTrue(view.sparse)

    def test_text_is_not_sparse(self) -> None:
        self.assertFalse(text_view(b"def handler(request):\n    return request.json()\n" * 4000).sparse)
        # Text with other bytes between its words (UTF-8 of another script): many stretches.
        words = ("\u043f\u0440\u0438\u0432\u0435\u0442 hello_world_name " * 5000).encode()
        self.assertFalse(text_view(words).sparse)


class SparseBatchTest(unittest.TestCase):
    """``scan_batch`` of binary data with one value in it finds what ``scan_text`` finds."""

    def assert_found(self, data: bytearray, name: str, encoding: str | None = None) -> None:
        fast = SCANNER.scan_batch(data, "body", deep=True)
        full = SCANNER.scan_text(bytes(data), "body", deep=False)
        self.assertEqual(summary(SCANNER.scan_batch(data, "body")), summary(full))
        self.assertIn(name, [f.secret_name for f in fast])
        if encoding is not None:
            self.assertIn((name, encoding), [(f.secret_name, f.encoding) for f in fast])

    def test_a_value_exactly_as_long_as_a_stretch_against_binary_bytes(self) -> None:
        rng = random.Random(2)
        size = 1 << 20
        for at in (0, 1, 500_000, size - len(TWELVE) - 1, size - len(TWELVE)):
            for edge in (0x00, 0xFF, 0x1F):
                with self.subTest(at=at, edge=edge):
                    self.assert_found(planted(TWELVE.encode(), at, rng, size, edge), "TWELVE")

    def test_a_value_shorter_than_a_stretch_against_binary_bytes(self) -> None:
        rng = random.Random(3)
        for at in (0, 123_457, (1 << 20) - len(SHORT)):
            with self.subTest(at=at):
                self.assert_found(planted(SHORT.encode(), at, rng), "SHORT")

    def test_the_forms_whose_needles_were_merged(self) -> None:
        rng = random.Random(4)
        forms = [
            ("exact", LONG, "LONG"), ("upper", LONG.upper(), "LONG"), ("swapped", LONG.swapcase(), "LONG"),
            ("reversed", LONG[::-1], "LONG"),
            ("json", LONG.replace("!", "\\u0021").replace("#", "\\u0023"), "LONG"),
            ("html", LONG.replace("!", "&#33;").replace("#", "&#x23;"), "LONG"),
            ("spaced hex", " ".join(f"{b:02x}" for b in LONG.encode()), "LONG"),
            ("short reversed", SHORT[::-1], "SHORT"), ("twelve reversed", TWELVE[::-1], "TWELVE"),
        ]
        for label, form, name in forms:
            for at in (0, 654_321, (1 << 20) - len(form)):
                with self.subTest(form=label, at=at):
                    self.assert_found(planted(form.encode(), at, rng), name)

    def test_utf16_forms_in_either_byte_order_at_the_edges(self) -> None:
        rng = random.Random(5)
        for value, name in ((LONG, "LONG"), (SHORT, "SHORT"), (TWELVE, "TWELVE")):
            for order in ("le", "be"):
                form = utf16(value, order)
                for at in (0, 333_333, (1 << 20) - len(form)):
                    with self.subTest(name=name, order=order, at=at):
                        # NULs right against it: the edge NUL a needle lost must not matter.
                        self.assert_found(planted(form, at, rng, edge=0x00), name)

    def test_a_token_run_against_binary_bytes_at_the_batch_edges(self) -> None:
        rng = random.Random(6)
        token = "ghp_" + "".join(rng.choice("abcdefghijkLMNOPQ0123456789") for _ in range(36))
        for at in (0, 400_000, (1 << 20) - len(token)):
            with self.subTest(at=at):
                data = planted(token.encode(), at, rng)
                self.assertIn("github-token", [f.detector for f in SCANNER.scan_batch(data, "body", deep=True)])
                self.assertEqual(summary(SCANNER.scan_batch(data, "body")),
                                 summary(SCANNER.scan_text(bytes(data), "body")))

    def test_base64_of_a_value_in_a_short_stretch_is_decoded(self) -> None:
        rng = random.Random(7)
        form = base64.b64encode(TWELVE.encode()).decode()  # 16 characters: the shortest decoded stretch
        data = planted(form.encode(), 777_777, rng)
        self.assertIn(("TWELVE", "base64"),
                      [(f.secret_name, f.encoding) for f in SCANNER.scan_batch(data, "body", deep=True)])


class SeamTest(unittest.TestCase):
    """A value cut by a batch seam, in each form a skipped pass looked for: no byte of it leaves."""

    def stream(self, data: bytes, cut: int) -> tuple[StreamScan, int]:
        scan = StreamScan(scan_batch=lambda b: SCANNER.scan_batch(b, "body", deep=True),
                          scan_whole=lambda b: SCANNER.scan_text(b, deep=True), batch=256 * 1024,
                          overlap=64 * 1024, sniff_json=False)
        sent = 0
        for at in range(0, len(data), 32 * 1024):
            sent += len(scan.feed(data[at:at + 32 * 1024]))
        sent += len(scan.finish())
        return scan, sent

    def test_each_form_cut_by_the_seam(self) -> None:
        rng = random.Random(8)
        seam = 256 * 1024  # the end of the first batch
        forms = [("TWELVE", TWELVE.encode()), ("SHORT", SHORT.encode()), ("LONG", LONG.upper().encode()),
                 ("LONG", utf16(LONG, "le")), ("LONG", utf16(LONG, "be")), ("SHORT", utf16(SHORT, "be"))]
        for name, form in forms:
            for into in (1, len(form) // 2, len(form) - 1):
                with self.subTest(name=name, form=form[:6], into=into):
                    at = seam - into
                    data = bytes(planted(form, at, rng, size=600_000, edge=0x00))
                    scan, sent = self.stream(data, at)
                    self.assertIn(name, [f.secret_name for f in scan.findings])
                    self.assertLessEqual(sent, at)


class AbsentCharacterTest(unittest.TestCase):
    """A large text is searched only for anchors whose characters it holds: the character that
    lets an anchor through may be the text's only one, at its very end."""

    @staticmethod
    def code(size: int) -> str:
        line = "    result = handler(request, value_id=42)  # see notes.\n"
        return (line * (size // len(line) + 1))[:size]

    def test_a_base85_form_whose_rare_characters_are_the_texts_only_ones(self) -> None:
        known = SCANNER.known
        forms = [base64.b85encode(PUNCT.encode()).decode(), base64.a85encode(PUNCT.encode()).decode()]
        for form in forms:
            for size in (GATE_MIN_TEXT - len(form), GATE_MIN_TEXT, 3 * GATE_MIN_TEXT):
                with self.subTest(form=form, size=size):
                    body = self.code(size - len(form))
                    text = body + form
                    self.assertGreaterEqual(len(text), size)
                    found = [(h.secret_name, h.start) for h in known.find_base85(text)]
                    self.assertIn(("PUNCT", len(body)), found)
                    # And at the start, the rest of the text lacking its characters.
                    found = [(h.secret_name, h.start) for h in known.find_base85(form + body)]
                    self.assertIn(("PUNCT", 0), found)

    def test_lowered_and_exact_forms_in_a_large_text(self) -> None:
        known = SCANNER.known
        for form, encoding in ((PUNCT, None), (PUNCT.encode().hex().upper(), "hex"),
                               ("".join(f"%{b:02X}" for b in PUNCT.encode()), "url")):
            with self.subTest(form=form):
                # No letter a-f but the form's own, upper-cased: only the lower-cased text holds them.
                filler = "    x = 42 + y  # ok\n" * (2 * GATE_MIN_TEXT // 20)
                text = filler + form
                hits = [(h.secret_name, h.encoding) for h in known.find(text)]
                self.assertIn(("PUNCT", encoding), hits)

    def test_a_missing_character_finds_nothing_and_a_streamed_batch_still_finds_the_value(self) -> None:
        text = self.code(2 * GATE_MIN_TEXT)
        self.assertEqual([h for h in SCANNER.known.find_base85(text) if h.secret_name == "PUNCT"], [])
        data = (text + "\nblob = '" + base64.b85encode(PUNCT.encode()).decode() + "'\n" + text).encode()
        found = SCANNER.scan_batch(data, "body", deep=True)
        self.assertIn(("PUNCT", "base85"), [(f.secret_name, f.encoding) for f in found])


class PiecesTest(unittest.TestCase):
    """The start of a streamed body is searched for pieces of the secrets only in its runs of the
    secrets' characters: the same findings, at the same offsets, as the search of all of it."""

    @staticmethod
    def both(bodies: list[bytes]) -> tuple[list, list]:
        fast, whole = Scanner(SECRETS), Scanner(SECRETS)
        whole._piece_bytes = b""  # no table: every body is searched whole
        out: tuple[list, list] = ([], [])
        for scanner, results in ((fast, out[0]), (whole, out[1])):
            memory = scanner.new_memory()
            for body in bodies:
                results.append(summary(scanner.scan_fragments(body, memory=memory)))
        return out

    def test_a_secret_sent_in_pieces_across_binary_bodies(self) -> None:
        rng = random.Random(10)
        limit = 1 << 20
        for first, second in ((0, 5000), (70_000, limit - 8), (limit - 5, 12)):
            with self.subTest(first=first, second=second):
                one = planted(LONG[:8].encode(), first, rng, size=limit + 1000)
                two = planted(LONG[8:].encode(), second, rng, size=limit + 1000)
                fast, whole = self.both([bytes(one), bytes(two)])
                self.assertEqual(fast, whole)
                if first + 8 <= limit:
                    self.assertIn("LONG", [name for _, name, _, _, _ in fast[1]])

    def test_many_decoy_pieces_give_what_the_whole_search_gives(self) -> None:
        rng = random.Random(11)
        data = binary(rng, 300_000)
        for i in range(400):
            piece = LONG[i % 12:i % 12 + 5].encode()  # a block and one neighbour: grown, too short
            data[500 + i * 700:500 + i * 700 + 5] = piece
        data[-9:] = LONG[8:].encode() + b"\xff"
        fast, whole = self.both([bytes(data), LONG[:8].encode()])
        self.assertEqual(fast, whole)

    def test_text_is_searched_whole(self) -> None:
        text = ("x = handler(request)  # " + LONG[:9] + "\n").encode() * 20_000
        self.assertIsNone(SCANNER._piece_runs(text))
        self.assertIsNotNone(SCANNER._piece_runs(bytes(binary(random.Random(12), 1 << 20))))


if __name__ == "__main__":
    unittest.main()
