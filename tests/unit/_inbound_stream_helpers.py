"""Shared pieces of the inbound scan's tests: a streamed answer read as the egress proxy reads it, the
highest confidence found (of one text, or of each of several), the high spans, filler lines, and
the scan's CPU cost."""

from __future__ import annotations

import time
import unittest

from bot_bottle.sidecar.dlp import HIGH, MEDIUM, scan_response_for_injection
from bot_bottle.sidecar.dlp.answer_stream import AnswerStream
from bot_bottle.sidecar.dlp.inbound import SeamContext


def streamed(data: bytes, size: int) -> AnswerStream:
    """``data`` streamed in batches of ``size`` bytes, the injection scan read as the proxy reads it."""

    def injection(text: bytes, context: SeamContext) -> list[tuple[str, bool]]:
        return [(f"{f.detector} ({f.confidence})", f.confidence == HIGH)
                for f in scan_response_for_injection(text, context=context)]

    plan = AnswerStream(echoed=lambda batch: [], injection=injection, overlap=size, batch=size)
    for i in range(0, len(data), size):
        plan.feed(data[i : i + size])
    plan.finish()
    return plan


def top(text: str | bytes) -> str | None:
    """The highest confidence the inbound scan gives ``text``, or None when it finds nothing."""
    found = scan_response_for_injection(text)
    if not found:
        return None
    return HIGH if any(f.confidence == HIGH for f in found) else MEDIUM


def high_spans(text: str) -> list[str]:
    """The stretches of ``text`` found at high confidence."""
    return [text[f.start : f.end] for f in scan_response_for_injection(text) if f.confidence == HIGH]


FILLER = "".join(f"line {i} of an ordinary log\n" for i in range(600))


def lines(size: int) -> str:
    """The filler's whole lines within its first ``size`` characters."""
    return FILLER[:size].rpartition("\n")[0] + "\n"


def assert_each(case: unittest.TestCase, texts: tuple[str, ...], expected: str | None) -> None:
    """Each of ``texts`` gets ``expected`` as its highest confidence (``top``)."""
    for text in texts:
        with case.subTest(text=text):
            case.assertEqual(top(text), expected)


def scan_cost(text: str) -> float:
    """The CPU time of the inbound scan of ``text``: the best of three."""
    best = float("inf")
    for _ in range(3):
        began = time.process_time()
        scan_response_for_injection(text)
        best = min(best, time.process_time() - began)
    return best


def assert_grows_linearly(case: unittest.TestCase, unit: str, small: int = 2_000) -> None:
    """The scan of ``unit`` repeated 8 times as often costs at most three times 8 times as much."""
    case.assertLess(scan_cost(unit * small * 8), scan_cost(unit * small) * 8 * 3, unit)
