"""The cheaper decoded layer reads the same: each helper pinned against the code it replaced
(kept here as the reference), and the decoders' outputs against their reference on many inputs."""

from __future__ import annotations

import base64
import binascii
import io
import random
import re
import unittest
import zipfile

from bot_bottle.sidecar.dlp import Scanner, charcodes, encodings
from bot_bottle.sidecar.dlp.charcodes import decode_code_lists
from bot_bottle.sidecar.dlp.encodings import decode_runs, mostly_printable
from tests.unit import test_dlp_fakes as fakes

RNG = random.Random(1515)
TOKEN = fakes.github(RNG)
_TO_STD = str.maketrans("-_", "+/")


def reference_b64_decode(run: str) -> bytes | None:
    body = run.replace("\n", "").replace("\r", "") if "\n" in run else run
    body = body.rstrip("=").translate(_TO_STD)
    body = body[: len(body) - len(body) % 4] if len(body) % 4 == 1 else body
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def reference_mostly_printable(data: bytes, ratio: float = 0.85) -> bool:
    if not data:
        return False
    printable = len(data.translate(None, encodings._NOT_PRINTABLE))
    if printable >= ratio * len(data):
        return True
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    good = sum(1 for ch in text if ch.isprintable() or ch in "\t\r\n")
    return good >= ratio * len(text)


def reference_candidates(run: str, shape: bytes, start: int) -> list[int]:
    gzip_at = run.find("H4sI")
    candidates = [gzip_at] if gzip_at >= 0 else []
    if run.count("A") * 5 >= len(run):
        candidates.append(0)
    if encodings._b64_tar_at_start(run):
        candidates.append(0)
    probed = run.find("\n")
    probed = len(run) if probed < 0 else probed
    for skip in range(4):
        leads = shape[start + skip + 8 : start + probed : 4][: encodings._PROBE_GROUPS]
        if len(leads) >= 2 and leads.count(b"T") == len(leads):
            candidates.append(skip)
        elif run.startswith(("eJ", "eN", "eF", "eA"), skip):
            candidates.append(skip)
    return candidates


def reference_call_regions(shape: bytes) -> list[tuple[int, int]]:
    regions: list[tuple[int, int]] = []
    first = last = -1
    count = 0
    for m in charcodes._CALL_SHAPE.finditer(shape):
        if count and m.start() - last > charcodes._CALL_GAP:
            if count >= charcodes.MIN_CODES:
                regions.append((max(0, first - charcodes._CALL_GAP), last + charcodes._CAST_MAX))
            count = 0
        if not count:
            first = m.start()
        last = m.end()
        count += 1
    if count >= charcodes.MIN_CODES:
        regions.append((max(0, first - charcodes._CALL_GAP), last + charcodes._CAST_MAX))
    return regions


def reference_decoded(text: str, start: int, end: int, numbers: re.Pattern[str]) -> encodings.Decoded | None:
    chars: list[str] = []
    spans: list[tuple[int, int]] = []
    for m in numbers.finditer(text, start, end):
        number = m.group(m.re.groups)
        value = int(number, 16) if number[:2] in ("0x", "0X") else int(number)
        if 0xDC00 <= value <= 0xDFFF and chars and "\ud800" <= chars[-1] <= "\udbff":
            chars[-1] = chr(0x10000 + ((ord(chars[-1]) - 0xD800) << 10) + (value - 0xDC00))
            spans[-1] = (spans[-1][0], m.end())
            continue
        chars.append(chr(value) if value <= charcodes._MAX_CODE else "\x00")
        spans.append(m.span())
    decoded = "".join(c if not "\ud800" <= c <= "\udfff" else "\x00" for c in chars)
    if not charcodes._PRINTABLE_RUN.search(decoded):
        return None
    return encodings.Decoded("charcodes", start, end, decoded, charcodes._number_map(spans))


def b64_soup(rng: random.Random, size: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=\n\r é"
    return "".join(rng.choice(alphabet) for _ in range(size))


def wrapped(data: bytes, width: int = 76) -> str:
    blob = base64.b64encode(data).decode()
    return "\n".join(blob[i : i + width] for i in range(0, len(blob), width))


def as_tuples(layers: list[encodings.Decoded]) -> list[tuple[str, int, int, str, tuple[int, int]]]:
    return [(d.encoding, d.start, d.end, d.text, d.to_parent(0, len(d.text))) for d in layers]


class Base64DecodeTest(unittest.TestCase):
    def test_same_bytes_or_refusal_as_the_library_call(self) -> None:
        rng = random.Random(1)
        samples = [b64_soup(rng, rng.randrange(0, 90)) for _ in range(3000)]
        samples += [base64.b64encode(rng.randbytes(rng.randrange(0, 60))).decode()[: rng.randrange(0, 90)]
                    for _ in range(2000)]
        samples += [base64.urlsafe_b64encode(rng.randbytes(40)).decode(), "QUJD=RA==", "QUJDRA=\n=", "QUJD\u00e9RA"]
        for sample in samples:
            self.assertEqual(encodings._b64_decode(sample), reference_b64_decode(sample), sample)

    def test_a_wrapped_blob_decodes_whole(self) -> None:
        data = RNG.randbytes(500)
        self.assertEqual(encodings._b64_decode(wrapped(data).replace("\n", "\r\n")), data)


class MostlyPrintableTest(unittest.TestCase):
    def test_same_answer_as_the_character_count(self) -> None:
        rng = random.Random(2)
        pieces = [b"hello world ", b"\x00\x00\x00\x00", b"\x01\x02", "grüße ".encode(), "世界".encode(),
                  b"\x7f", b"\t\n", b"\xc3", bytes([rng.randrange(256)])]
        for _ in range(5000):
            data = b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 30)))
            self.assertEqual(mostly_printable(data), reference_mostly_printable(data), data)
        for _ in range(500):
            data = rng.randbytes(rng.randrange(1, 80))
            self.assertEqual(mostly_printable(data), reference_mostly_printable(data), data)

    def test_zero_filled_ascii_is_not_text(self) -> None:
        self.assertFalse(mostly_printable(b"\x00" * 40 + b"ELF header"))
        self.assertTrue(mostly_printable(b"plain words" * 5 + b"\x00"))


class MarksTest(unittest.TestCase):
    def test_marks_are_what_a_search_of_the_text_tells(self) -> None:
        rng = random.Random(3)
        marks = ["H4sI", "UEsDB", "QlpoM", "QlpoN", "QlpoO", "/Td6WFoA", "_Td6WFoA"]
        for _ in range(500):
            text = b64_soup(rng, 200) + rng.choice(marks + [""] * 4) + b64_soup(rng, 50)
            found = encodings._marks_in(text)
            self.assertEqual(found.gzip, "H4sI" in text)
            self.assertEqual(found.packed, encodings._PACKED_B64.search(text) is not None)
            self.assertEqual(found is encodings._NO_MARKS, encodings._PACKED_B64_START.search(text) is None)

    def test_candidates_in_the_order_of_the_list_they_replaced(self) -> None:
        rng = random.Random(4)
        texts = [wrapped(rng.randbytes(600)), wrapped(b"some text to encode, " * 40, 64),
                 "x " + base64.b64encode(b"key=" + TOKEN.encode()).decode() + " eJzLSM3JyVcozy/KSQEAGgQEXQ==",
                 base64.b64encode("wide text here".encode("utf-16-le") * 5).decode(), b64_soup(rng, 4000)]
        for text in texts:
            shape = text.encode("latin-1", "replace").translate(encodings._TEXTISH_MAP)
            for start, end in encodings._run_spans(text) + encodings._wrapped_blocks(text, encodings._run_spans(text)):
                run = text[start:end]
                self.assertEqual(list(encodings._b64_candidates(run, shape, start)),
                                 reference_candidates(run, shape, start))
                if "H4sI" not in run:
                    self.assertEqual(list(encodings._b64_candidates(run, shape, start, False)),
                                     reference_candidates(run, shape, start))

    def test_runs_read_alike_with_and_without_the_text_s_marks(self) -> None:
        rng = random.Random(5)
        for text in (wrapped(b"line of text for the blob " * 300), wrapped(rng.randbytes(3000)), b64_soup(rng, 6000)):
            shape = text.encode("latin-1", "replace").translate(encodings._TEXTISH_MAP)
            marks = encodings._marks_in(text)
            for start, end in encodings._run_spans(text):
                run = text[start:end]
                self.assertEqual(encodings._decode_b64_run(run, shape, start, 1 << 20, marks),
                                 encodings._decode_b64_run(run, shape, start, 1 << 20))

    def test_a_zip_among_dense_lines_of_text_is_still_opened(self) -> None:
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("notes.txt", f"deploy key {TOKEN}\n")
        zipped = base64.b64encode(archive.getvalue()).decode()
        text = wrapped(b"an ordinary paragraph of text, " * 400) + "\n\n" + zipped + "\n"
        self.assertIs(encodings._marks_in(text).packed, True)
        layers = decode_runs(text, limit=1 << 22)
        self.assertTrue(any(TOKEN in d.text and d.encoding == "base64+zip" for d in layers))

    def test_dense_blob_of_text_decodes_every_line_and_the_block(self) -> None:
        source = b"".join(b"def f%d(x):\n    return x + %d\n" % (i, i) for i in range(400))
        text = wrapped(source)
        lines = [line for line in text.split("\n") if len(line) >= encodings.MIN_RUN]
        layers = decode_runs(text, limit=1 << 22)
        self.assertEqual(len([d for d in layers if d.end - d.start <= 76]), len(lines))
        self.assertIn(source.decode(), [d.text for d in layers])


class CallRegionsTest(unittest.TestCase):
    def test_regions_match_the_loop_they_replaced(self) -> None:
        rng = random.Random(6)
        atoms = ["chr(75)", "+", "(0)", "(1, 2)", "[char]", "0x4b", " ", "\n", "a", "(", ")", "(103 -as [char])",
                 "x" * 30, ", "]
        for _ in range(1500):
            text = "".join(rng.choice(atoms) for _ in range(rng.randrange(0, 200)))
            shape = text.encode("latin-1", "replace").translate(charcodes._LIST_MAP)
            self.assertEqual(charcodes._call_regions(shape), reference_call_regions(shape), text)

    def test_calls_and_lists_in_one_text_decode_as_before(self) -> None:
        value = f"key={TOKEN}"
        calls = "+".join(f"chr({ord(c)})" for c in value)
        listed = ", ".join(str(ord(c)) for c in value)
        text = f"a = {calls}\nb = [{listed}]\n" + "f(0); g(1, 2); " * 200
        texts = sorted(d.text for d in decode_code_lists(text, limit=1 << 20))
        self.assertEqual(texts, [value, value])

    def test_lists_decode_as_the_loop_they_replaced(self) -> None:
        rng = random.Random(8)
        pools = [list(range(32, 127)), list(range(0, 40)), [0xD83D, 0xDE00, 0xDC00, 0xD800, 65, 66, 67],
                 [0x110000, 9999999, 72, 105, 0x10FFFF], list(range(150, 400))]
        for _ in range(1500):
            pool = rng.choice(pools)
            codes = [rng.choice(pool) for _ in range(rng.randrange(8, 30))]
            hexed = rng.random() < 0.3
            if rng.random() < 0.3:
                written = "+".join(f"chr({hex(c) if hexed else c})" for c in codes)
                numbers = charcodes._CALL_ARGUMENT
            else:
                written = ", ".join(hex(c) if hexed else str(c) for c in codes)
                numbers = charcodes._NUMBER
            text = "x = [" + written + "]"
            new, old = charcodes._decoded(text, 5, len(text) - 1, numbers), reference_decoded(text, 5, len(text) - 1, numbers)
            self.assertEqual(new is None, old is None, text)
            if new is not None and old is not None:
                self.assertEqual(new.text, old.text)
                for a, b in ((0, 1), (0, len(new.text)), (len(new.text) // 2, len(new.text)), (3, 3)):
                    self.assertEqual(new.to_parent(a, b), old.to_parent(a, b))

    def test_a_minified_script_s_calls_hold_no_region(self) -> None:
        script = "".join(f"f({i % 10});g({i % 7},{i % 3});" + "x" * 45 for i in range(300))
        shape = script.encode().translate(charcodes._LIST_MAP)
        self.assertEqual(charcodes._call_regions(shape), [])


class FindingsTest(unittest.TestCase):
    def test_secrets_in_a_wrapped_blob_are_found_in_a_streamed_batch(self) -> None:
        secret = "Zu8qL2vN9rT4wXy6PmK3"
        scanner = Scanner({"DB_PASS": secret})
        text = b"plain words of a file\n" * 3000 + f"password={secret}\n".encode() + b"more words\n" * 3000
        blob = wrapped(text).encode()
        kinds = {(f.detector, f.secret_name) for f in scanner.scan_batch(blob, deep=True)}
        self.assertTrue(any(name == "DB_PASS" for _, name in kinds), kinds)
        binary = wrapped(RNG.randbytes(60000)).encode()
        self.assertEqual(scanner.scan_batch(binary, deep=True), [])

    def test_equal_layers_on_mixed_inputs(self) -> None:
        rng = random.Random(7)
        for _ in range(40):
            text = b64_soup(rng, 3000) + wrapped(rng.randbytes(rng.randrange(50, 900))) + "\n" + \
                wrapped(f"x {TOKEN} y ".encode() * rng.randrange(1, 30), rng.choice([40, 64, 76]))
            layers = as_tuples(decode_runs(text, limit=1 << 22))
            self.assertEqual(layers, as_tuples(decode_runs(text, limit=1 << 22)))
            self.assertTrue(re.search(re.escape(TOKEN), "".join(t for _, _, _, t, _ in layers)))


if __name__ == "__main__":
    unittest.main()
