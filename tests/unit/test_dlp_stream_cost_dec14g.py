"""The cheaper paths of the streamed scan give what the slower ones gave: the base64 run a body
ends in is found with one ``rfind`` and its marks searched once per byte, the prefilter adds a
merged window for a cluster of runs rather than one per run, and a wrapped block is unwrapped
without a regular expression. Each is compared with the computation it replaced."""

from __future__ import annotations

import base64
import gzip
import random
import re
import unittest

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp import stream as stream_module
from bot_bottle.sidecar.dlp.encodings import PACKED_B64_MARKS, _unwrapped
from bot_bottle.sidecar.dlp.prefilter import AFTER, BEFORE, Prefilter, _Bail, _merge
from bot_bottle.sidecar.dlp.stream import StreamScan, long_run_start, packed_run_goes_on
from bot_bottle.sidecar.dlp.tokens import RUN, RUN_CHARS

_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-=\r\n"
_MARKS = tuple(mark.encode("ascii") for mark in PACKED_B64_MARKS)


def reference_packed(data: bytes, longer_than: int) -> bool:
    """What ``packed_run_goes_on`` computed before: ``rstrip`` of the run characters."""
    run = bytes(data[len(data.rstrip(_B64)):]) if data[-1:] and data[-1] in _B64 else b""
    return len(run) > longer_than and any(mark in run for mark in _MARKS)


def reference_run_windows(data: bytes) -> list[tuple[int, int]]:
    """One window per run, as ``Prefilter._find_runs`` added them before, merged."""
    regions = []
    for m in re.finditer(b"[%s]{%d,}" % (re.escape(bytes(sorted(ord(c) for c in RUN_CHARS))), RUN), data):
        regions.append((m.start() - BEFORE, m.end() + AFTER))
    return _merge(regions, len(data))


class PackedRunTest(unittest.TestCase):
    def test_same_answer_as_rstrip_on_generated_tails(self) -> None:
        rng = random.Random(14)
        pieces = [b"\x00\xff", b"abc", b"\n", b"\r\n", b" ", b"H4sI", b"UEsDB", b"QlpoN", b"/Td6WFoA",
                  base64.b64encode(rng.randbytes(60)), b"=="]
        for _ in range(4000):
            data = b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 12)))
            for longer_than in (0, 1, 5, 20, 60, 200):
                with self.subTest(data=data, longer_than=longer_than):
                    self.assertEqual(packed_run_goes_on(bytearray(data), longer_than),
                                     reference_packed(data, longer_than))

    def test_run_start_is_where_the_trailing_run_begins(self) -> None:
        data = b"\x00binary\xff" + b"QUJD" * 40 + b"\n" + b"RUZH" * 10
        self.assertEqual(long_run_start(data, 100), data.index(b"QUJD"))
        self.assertIsNone(long_run_start(data, len(data)))
        self.assertIsNone(long_run_start(data + b"\x00", 10))
        self.assertIsNone(long_run_start(b"", 0))

    def test_each_byte_of_a_long_base64_upload_is_searched_for_marks_about_once(self) -> None:
        body = base64.encodebytes(random.Random(3).randbytes(3 << 20))
        for mark in _MARKS:
            body = body.replace(mark, b"x" * len(mark))
        searched = []
        real = stream_module.holds_mark

        def counting(data: bytes | bytearray, start: int) -> bool:
            searched.append(len(data) - start)
            return real(data, start)

        stream_module.holds_mark = counting
        try:
            scan = StreamScan(scan_batch=lambda batch: [], scan_whole=lambda whole: [], batch=256 * 1024)
            out = b"".join(scan.feed(body[i:i + 50_000]) for i in range(0, len(body), 50_000)) + scan.finish()
        finally:
            stream_module.holds_mark = real
        self.assertEqual(out, body)
        self.assertFalse(scan.whole)
        self.assertGreater(len(searched), 10)
        self.assertLess(sum(searched), 1.2 * len(body))  # searched from the start each time: many times it

    def test_marks_straddling_two_batches_still_hold_the_body(self) -> None:
        packed = base64.b64encode(gzip.compress(b"x" * 50 + random.Random(5).randbytes(400_000))).decode()
        self.assertTrue(packed.startswith("H4sI"))
        for cut in range(1, 4):
            filler = base64.b64encode(random.Random(cut).randbytes(300_000)).replace(b"H4sI", b"AAAA")
            body = filler + packed.encode()
            scan = StreamScan(scan_batch=lambda batch: [], scan_whole=lambda whole: [], batch=64 * 1024,
                              overlap=64 * 1024)
            step = len(filler) - cut  # the mark arrives split across two chunks
            released = scan.feed(body[:step]) + scan.feed(body[step:step + 70_000])
            released += scan.feed(body[step + 70_000:])
            self.assertTrue(scan.whole, cut)
            self.assertLess(len(released), len(filler) + 1)


class RunWindowsTest(unittest.TestCase):
    def setUp(self) -> None:
        self.rng = random.Random(9)

    def windows_of_runs(self, data: bytes) -> tuple[list[tuple[int, int]], int]:
        regions: list[tuple[int, int]] = []
        bail = _Bail(len(data), float("inf"))
        self.assertFalse(Prefilter._find_runs(data, regions, bail, 0))
        return _merge(regions, len(data)), len(regions)

    def test_a_cluster_of_runs_is_one_window(self) -> None:
        rng = self.rng
        data = bytearray(bytes(rng.randrange(0x80, 0x100) for _ in range(1 << 20)))
        lines = base64.encodebytes(rng.randbytes(75_000))
        data[300_000:300_000 + len(lines)] = lines
        windows, added = self.windows_of_runs(bytes(data))
        self.assertEqual(windows, reference_run_windows(bytes(data)))
        self.assertEqual(added, 1)  # a window per line before: over a thousand

    def test_same_windows_as_one_per_run_for_scattered_runs(self) -> None:
        rng = self.rng
        for trial in range(60):
            size = rng.choice([5_000, 100_000, 400_000])
            data = bytearray(bytes(rng.randrange(0x80, 0x100) for _ in range(size)))
            for _ in range(rng.randrange(0, 25)):
                run = base64.b64encode(rng.randbytes(rng.randrange(6, 40)))
                at = rng.randrange(size)
                data[at:at + len(run)] = run
            with self.subTest(trial=trial):
                self.assertEqual(self.windows_of_runs(bytes(data))[0], reference_run_windows(bytes(data)))

    def test_runs_just_beyond_a_window_s_reach_start_another(self) -> None:
        run = b"Q" * 20
        gap = BEFORE + AFTER
        for extra in (-1, 0, 1):
            data = bytearray(b"\x80" * (3 * gap))
            data[10:30] = run
            start = 30 + gap + extra
            data[start:start + 20] = run
            windows, _ = self.windows_of_runs(bytes(data))
            self.assertEqual(windows, reference_run_windows(bytes(data)))
            self.assertEqual(len(windows), 2 if extra > 0 else 1)

    def test_streamed_findings_unchanged_around_a_block_of_base64(self) -> None:
        secret = "Zx4mQ9vR2kLp8WnT3yHs6BdF1gJc0eUa"
        scanner = Scanner({"BENCH_SECRET": secret})
        rng = self.rng
        data = bytearray(rng.randbytes(1 << 20))
        block = base64.encodebytes(rng.randbytes(90_000))
        data[200_000:200_000 + len(block)] = block
        plant = b" token=" + secret.encode() + b" "
        data[700_000:700_000 + len(plant)] = plant
        found = scanner.scan_batch(bytearray(data), "body", deep=True)
        at = 700_000 + len(b" token=")
        self.assertIn(("BENCH_SECRET", at, at + len(secret)), {(f.secret_name, f.start, f.end) for f in found})


class UnwrappedTest(unittest.TestCase):
    def test_same_as_the_line_break_expression(self) -> None:
        breaks = re.compile(r"\r?\n")
        rng = random.Random(2)
        for _ in range(20_000):
            text = "".join(rng.choice("\r\nab") for _ in range(rng.randrange(14)))
            self.assertEqual(_unwrapped(text), breaks.sub("", text), repr(text))

    def test_lone_carriage_return_stays(self) -> None:
        self.assertEqual(_unwrapped("ab\rcd\r\nef\n"), "ab\rcdef")


if __name__ == "__main__":
    unittest.main()
