"""A streamed answer read as the egress proxy reads it, for the inbound scan's tests."""

from __future__ import annotations

from bot_bottle.sidecar.dlp import HIGH, scan_response_for_injection
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
