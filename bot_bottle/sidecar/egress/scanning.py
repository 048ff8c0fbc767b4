"""The one seam where a request's outbound content (and a response's inbound content) is scanned.

The proxy hands the scanner what the agent sent (before any credential is injected, so the
scanner never mistakes the real token for a leak), and acts on the outcome: ``allow`` forwards,
``redact`` forwards the scanner's rewritten request instead, ``block`` answers 403 naming the
detectors, ``hold`` asks ``HoldHandler`` (the operator console) and blocks unless it approves.
The defaults here scan nothing; the DLP engine plugs in by providing objects with the same
``scan`` methods. Pure data, no mitmproxy: scanners are unit-tested without a proxy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

ALLOW = "allow"
REDACT = "redact"
BLOCK = "block"
HOLD = "hold"
ACTIONS = (ALLOW, REDACT, BLOCK, HOLD)


@dataclass(frozen=True)
class OutboundRequest:
    """One request as the agent sent it, with the policy facts a scanner may need."""

    method: str
    scheme: str
    host: str  # the real target, normalised (for internal services: the reserved name)
    port: int
    path: str  # with the query string: secrets hide there too
    headers: tuple[tuple[str, str], ...]  # (name as sent, value), in order
    body: bytes  # raw, as sent (any Content-Encoding still applied)
    route_index: int | None = None
    dlp: Mapping[str, Any] = field(default_factory=dict)  # the route's DLP settings from the plan
    internal_service: str | None = None  # set when the target is one of the bundle's own services


@dataclass(frozen=True)
class InboundResponse:
    """One upstream answer on its way back to the agent."""

    request: OutboundRequest
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes  # raw, as received


@dataclass(frozen=True)
class ScanOutcome:
    action: str = ALLOW
    detectors: tuple[str, ...] = ()  # names only, never the matched value
    reason: str = ""  # for the 403 and the log: must not contain the matched value
    # ``redact``: what to forward instead (path, headers and body are taken from it). For any
    # action, a scanner that found a secret in the URL should set it too, so the log line shows
    # the redacted path rather than the secret.
    replacement: OutboundRequest | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown scan action {self.action!r}; expected one of {', '.join(ACTIONS)}")

    @property
    def is_event(self) -> bool:
        """Worth a log line at level 1: something was found or acted on."""
        return bool(self.detectors) or self.action != ALLOW


@dataclass(frozen=True)
class InboundOutcome:
    action: str = ALLOW  # allow | redact | block (a response cannot be held)
    detectors: tuple[str, ...] = ()
    reason: str = ""
    body: bytes | None = None  # ``redact``: the raw body to deliver instead
    # ``body`` is in the answer's Content-Encoding, which stays; otherwise it is decoded, and the
    # proxy drops the header with it.
    encoded: bool = False

    def __post_init__(self) -> None:
        if self.action not in (ALLOW, REDACT, BLOCK):
            raise ValueError(f"unknown inbound action {self.action!r}")

    @property
    def is_event(self) -> bool:
        return bool(self.detectors) or self.action != ALLOW


class OutboundScanner(Protocol):
    def scan(self, request: OutboundRequest) -> ScanOutcome: ...


class InboundScanner(Protocol):
    def scan(self, response: InboundResponse) -> InboundOutcome: ...


class HoldHandler(Protocol):
    """Decides a held request: True forwards it, False refuses it. May wait for an operator."""

    def __call__(self, request: OutboundRequest, outcome: ScanOutcome) -> Awaitable[bool]: ...


class NoOutboundScan:
    """Today's default: nothing is scanned, everything the policy allows is forwarded."""

    def scan(self, request: OutboundRequest) -> ScanOutcome:
        return ScanOutcome()


class NoInboundScan:
    def scan(self, response: InboundResponse) -> InboundOutcome:
        return InboundOutcome()


async def refuse_held(request: OutboundRequest, outcome: ScanOutcome) -> bool:
    """No operator console is wired yet: a held request is refused (fail closed)."""
    return False
