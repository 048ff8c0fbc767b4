"""Egress log records: one JSON object per decision, and which ones a log level keeps.

A record holds the decision, the rule and route that made it, the target, the method, the path
WITHOUT its query string, sizes, the upstream status, the duration and the DLP detector names.
It never holds a header value, a query string or a secret: the ``Scrubber`` replaces any known
secret value that still slipped into a string field (a path, a host, an error text) before the
line is written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot_bottle.sidecar.egress import structure
from bot_bottle.sidecar.egress.core import RequestFacts, Verdict

LOG_OFF, LOG_EVENTS, LOG_ALL = 0, 1, 2
PATH_LIMIT = 200
REASON_LIMIT = 300
REDACTED = "[redacted]"
# Shorter values would mangle ordinary words in paths and messages; such "secrets" are not
# credentials anyway.
MIN_SCRUB_LENGTH = 4


@dataclass(frozen=True)
class Outcome:
    """What happened after the decision: filled in when the request finishes (or is refused)."""

    request_bytes: int | None = None
    response_bytes: int | None = None
    status: int | None = None
    duration_ms: float | None = None
    detectors: tuple[str, ...] = ()
    action: str | None = None  # the DLP action when a scanner acted (redact, block, hold)
    error: str | None = None  # why the upstream exchange failed, when it did


def timestamp(now: float | None = None) -> str:
    """UTC time with milliseconds, as every log line carries it."""
    stamp = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp * 1000) % 1000:03d}Z"


def decision_record(verdict: Verdict, facts: RequestFacts, outcome: Outcome | None = None,
                    *, path: str | None = None, now: float | None = None) -> dict[str, Any]:
    """One log record. ``path`` overrides the facts' path (a scanner's redacted one)."""
    out = outcome or Outcome()
    record: dict[str, Any] = {
        "ts": timestamp(now),
        "event": "egress",
        "decision": verdict.decision,
        "rule": verdict.rule,
        "route": verdict.route_label,
        "host": verdict.host,
        "port": verdict.port,
        "scheme": facts.scheme,
        "method": structure.shown_method(facts.method),
        "path": strip_query(facts.path if path is None else path),
        "connect": facts.is_connect,
        "reason": verdict.reason[:REASON_LIMIT],
        "request_bytes": out.request_bytes,
        "response_bytes": out.response_bytes,
        "status": out.status,
        "duration_ms": None if out.duration_ms is None else round(out.duration_ms, 2),
    }
    if facts.is_connect and verdict.allowed:
        record["tls"] = "passthrough" if verdict.passthrough else "intercept"
    if out.detectors:
        record["detectors"] = list(out.detectors)
    if out.action:
        record["dlp_action"] = out.action
    if out.error:
        record["error"] = out.error[:REASON_LIMIT]
    return record


def should_log(level: int, record: dict[str, Any]) -> bool:
    """Level 0: nothing; 1: denials and DLP events; 2: everything."""
    if level <= LOG_OFF:
        return False
    if level >= LOG_ALL:
        return True
    return record.get("decision") != "allow" or bool(record.get("detectors")) or bool(record.get("dlp_action"))


def strip_query(path: str) -> str:
    """The path without query string or fragment (they carry tokens), bounded in length."""
    shown = path.split("?", 1)[0].split("#", 1)[0]
    return shown if len(shown) <= PATH_LIMIT else shown[: PATH_LIMIT - 3] + "..."


class Scrubber:
    """Replaces every known secret value found in a record's strings (belt and braces)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self._values = tuple(sorted({s for s in secrets if len(s) >= MIN_SCRUB_LENGTH}, key=len, reverse=True))

    def text(self, value: str) -> str:
        for secret in self._values:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def record(self, record: dict[str, Any]) -> dict[str, Any]:
        if not self._values:
            return record
        return {key: self._any(value) for key, value in record.items()}

    def _any(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self._any(v) for v in value]
        if isinstance(value, dict):
            return {k: self._any(v) for k, v in value.items()}
        return value


def to_line(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=True)
