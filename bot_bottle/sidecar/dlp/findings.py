"""What a scan reports: a ``Finding`` names a detector and a place, never the matched value.

Findings travel into JSON logs, 403 bodies, the operator console and exception messages, so the
type has no field that could hold the value: only offsets into the text that was scanned. A
caller that needs the value (to redact it) still has the text and the offsets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

LOW = "low"
MEDIUM = "medium"
HIGH = "high"
CONFIDENCES = (LOW, MEDIUM, HIGH)
_RANK = {LOW: 0, MEDIUM: 1, HIGH: 2}

# Detector ids that are not token formats.
KNOWN_SECRET = "known-secret"
ENTROPY = "high-entropy"
SCAN_LIMIT = "scan-limit"


def confidence_at_least(confidence: str, floor: str) -> bool:
    return _RANK.get(confidence, -1) >= _RANK[floor]


@dataclass(frozen=True)
class Finding:
    """One hit. ``start``/``end`` are offsets into the text named by ``location``.

    ``location`` is built only from fixed words, indices and names that passed a safety check
    (see ``safe_label``), so it never carries a secret either. ``encoding`` says how the value
    was disguised when it was found ("base64", "hex", "url", "split", ...), None for plain.
    """

    detector: str
    name: str
    location: str
    start: int
    end: int
    confidence: str = HIGH
    secret_name: str | None = None
    encoding: str | None = None

    @property
    def label(self) -> str:
        """What a redaction marker names: the secret's name when known, else the detector."""
        return self.secret_name or self.detector

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "detector": self.detector,
            "name": self.name,
            "location": self.location,
            "start": self.start,
            "end": self.end,
            "confidence": self.confidence,
        }
        if self.secret_name is not None:
            out["secret_name"] = self.secret_name
        if self.encoding is not None:
            out["encoding"] = self.encoding
        return out

    def __str__(self) -> str:
        what = f"{self.name} ({self.secret_name})" if self.secret_name else self.name
        how = f", {self.encoding}" if self.encoding else ""
        return f"{what} in {self.location}{how} [{self.confidence}]"


def max_confidence(findings: Iterable[Finding]) -> str | None:
    best: str | None = None
    for finding in findings:
        if best is None or _RANK[finding.confidence] > _RANK[best]:
            best = finding.confidence
    return best


def _specificity(finding: Finding) -> int:
    # Known secrets first (the caller needs the name to tell the bottle's own token from others),
    # then format detectors, then the generic and statistical ones.
    if finding.detector == KNOWN_SECRET:
        return 3
    if finding.detector == ENTROPY:
        return 0
    if finding.detector.startswith("generic"):
        return 1
    return 2


def resolve_overlaps(findings: list[Finding]) -> list[Finding]:
    """Drop a finding whose span lies inside a more specific one (or an equally specific, longer
    one) in the same location: one value, one finding. Partial overlaps are both kept.

    A sweep over spans sorted by start keeps this near linear: only spans still open at a
    finding's start can contain it.
    """
    if len(findings) < 2:
        return list(findings)
    by_location: dict[str, list[Finding]] = {}
    for finding in findings:
        by_location.setdefault(finding.location, []).append(finding)
    kept: list[Finding] = []
    for group in by_location.values():
        # Findings equal up to the sort's first keys (one span found through two encodings) are
        # ordered by the rest, never by the set's order (which changes with the hash seed): the
        # first of equals stands for the others.
        group = sorted(set(group), key=_order)
        open_spans: list[Finding] = []
        for finding in group:
            open_spans = [g for g in open_spans if g.end >= finding.start]
            if not any(_beats(g, finding) for g in open_spans):
                kept.append(finding)
            open_spans.append(finding)
    kept.sort(key=lambda f: (f.location, f.start, f.end, f.detector, _plainness(f.encoding), f.encoding or "",
                             f.secret_name or "", f.name, f.confidence))
    return kept


def _order(finding: Finding) -> tuple[int, int, int, int, str, int, str, str, str]:
    """The sweep's order: by start, the wider first, the more specific and more confident first,
    then the plainer encoding (a value found as sent, or under fewer layers of encoding, is the
    simpler account of what was sent), then names, so equal spans resolve the same on every run."""
    return (finding.start, -finding.end, -_specificity(finding), -_RANK.get(finding.confidence, 0), finding.detector,
            _plainness(finding.encoding), finding.encoding or "", finding.secret_name or "", finding.name)


def _plainness(encoding: str | None) -> int:
    """0 for a value as sent, else the number of encodings stacked ("url+base64": 2)."""
    return 0 if encoding is None else encoding.count("+") + 1


def _beats(container: Finding, inner: Finding) -> bool:
    """True when ``container`` spans ``inner`` and should be the one reported."""
    if not (container.start <= inner.start and inner.end <= container.end):
        return False
    spec_c, spec_i = _specificity(container), _specificity(inner)
    if spec_c != spec_i:
        return spec_c > spec_i
    if (container.start, container.end) == (inner.start, inner.end):
        # Identical spans: the more confident one stands for both (sorted first).
        return _RANK.get(container.confidence, 0) >= _RANK.get(inner.confidence, 0)
    # Same kind, wider: the wider span is the value, unless it is the less confident claim.
    return _RANK.get(container.confidence, 0) >= _RANK.get(inner.confidence, 0)


def dedupe(findings: Iterable[Finding]) -> list[Finding]:
    seen: set[Finding] = set()
    out: list[Finding] = []
    for finding in findings:
        if finding not in seen:
            seen.add(finding)
            out.append(finding)
    return out
