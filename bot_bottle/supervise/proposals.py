"""The life of a proposal on the host, as pure functions over plain values.

::

    pending ──> approved ──> applied
       │   ──> modified ──> applied
       │                └─> failed     (approved or modified, but applying it did not work)
       ├──> rejected
       └──> expired

``rejected``, ``expired``, ``applied`` and ``failed`` are final. Any other move raises
``InvalidTransition`` naming both statuses, so a console bug or a race can never, say, apply a
rejected proposal or reject an applied one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot_bottle.errors import BotBottleError
from bot_bottle.sidecar.supervise.channel import ChannelError, Decision, validate_payload
from bot_bottle.supervise import MAX_REASON_CHARS
from bot_bottle.terminal import one_line

PENDING = "pending"
APPROVED = "approved"
MODIFIED = "modified"
REJECTED = "rejected"
EXPIRED = "expired"
APPLIED = "applied"
FAILED = "failed"

STATUSES = (PENDING, APPROVED, MODIFIED, REJECTED, EXPIRED, APPLIED, FAILED)
VERDICTS = (APPROVED, MODIFIED, REJECTED, EXPIRED)  # what an operator (or a timeout) decides
OUTCOMES = (APPLIED, FAILED)  # what applying a granted decision ends in

TRANSITIONS: Mapping[str, frozenset[str]] = {
    PENDING: frozenset({APPROVED, MODIFIED, REJECTED, EXPIRED}),
    APPROVED: frozenset({APPLIED, FAILED}),
    MODIFIED: frozenset({APPLIED, FAILED}),
    REJECTED: frozenset(),
    EXPIRED: frozenset(),
    APPLIED: frozenset(),
    FAILED: frozenset(),
}
FINAL = frozenset(s for s, nexts in TRANSITIONS.items() if not nexts)
GRANTED = frozenset({APPROVED, MODIFIED})


class InvalidTransition(BotBottleError):
    """A status change the state machine does not allow."""


class InvalidDecision(BotBottleError):
    """A decision that does not fit the proposal (a missing reason, a malformed change)."""


def check_status(status: str) -> str:
    if status not in TRANSITIONS:
        raise InvalidTransition(f"unknown proposal status {status!r}; expected one of {', '.join(STATUSES)}")
    return status


def can_move(current: str, new: str) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


def transition(current: str, new: str, *, what: str = "the proposal") -> str:
    """``new`` if ``current -> new`` is allowed; otherwise ``InvalidTransition``."""
    check_status(current)
    check_status(new)
    if new not in TRANSITIONS[current]:
        if current in FINAL:
            why = f"{what} is already {current}, which is final"
        else:
            allowed = ", ".join(sorted(TRANSITIONS[current]))
            why = f"from {current} it can only become {allowed}"
        raise InvalidTransition(f"cannot move {what} from {current} to {new}: {why}")
    return new


def is_final(status: str) -> bool:
    return check_status(status) in FINAL


@dataclass(frozen=True)
class Verdict:
    """An operator's checked decision: the new status and what goes to the sidecar."""

    status: str
    reason: str
    change: dict[str, Any] | None
    operator: str
    decided_at: float

    def decision(self, proposal_id: str, *, verdict: str | None = None, reason: str | None = None) -> Decision:
        """The Decision the sidecar's spool records (``verdict``/``reason`` override, e.g. a
        granted proposal that could not be applied is told to the agent as rejected)."""
        v = verdict or self.status
        return Decision(
            id=proposal_id, verdict=v, reason=self.reason if reason is None else reason,
            change=self.change if v == MODIFIED else None, decided_at=self.decided_at, operator=self.operator,
        )


def decide(status: str, kind: str, verdict: str, *, reason: str = "", change: Mapping[str, Any] | None = None,
           operator: str, now: float) -> Verdict:
    """Check an operator's verdict on a proposal of ``kind`` that is now ``status``.

    ``modified`` needs the changed payload, which must be valid for the kind (it is returned in
    canonical form); ``approved`` and ``rejected`` carry no change; ``rejected`` needs a reason,
    because the agent is told it.
    """
    if verdict not in VERDICTS:
        raise InvalidDecision(f"unknown verdict {verdict!r}; expected one of {', '.join(VERDICTS)}")
    transition(status, verdict)
    if not operator.strip():
        raise InvalidDecision("a decision names its operator")
    canonical: dict[str, Any] | None = None
    if verdict == MODIFIED:
        if change is None:
            raise InvalidDecision("a modified decision carries the changed proposal")
        try:
            canonical = validate_payload(kind, dict(change), "change")
        except ChannelError as exc:
            raise InvalidDecision(f"the changed {kind} proposal is not valid: {exc}") from None
    elif change is not None:
        raise InvalidDecision(f"only a modified decision carries a change, not {verdict}")
    if verdict == REJECTED and not reason.strip():
        raise InvalidDecision("a rejection needs a reason: the agent is told it")
    check_reason(reason)
    return Verdict(status=verdict, reason=reason.strip(), change=canonical, operator=operator, decided_at=now)


# Characters a reason may not hold besides control characters: the bidirectional ones, which
# make a terminal show text in another order than it reads (the agent's, or the operator's).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def check_reason(reason: str) -> str:
    """``reason`` if an operator's reason may say it, else ``InvalidDecision`` saying why: at most
    ``MAX_REASON_CHARS`` characters, line breaks and tabs but no other control character (an
    escape sequence in it would reach the agent's terminal, and any screen that shows it later)
    and no bidirectional control. Any script, emoji and joiners are fine."""
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidDecision(f"a reason is at most {MAX_REASON_CHARS} characters; this one has {len(reason)}")
    at = next((i for i, char in enumerate(reason) if _refused(char)), None)
    if at is not None:
        raise InvalidDecision(f"a reason may hold line breaks and tabs, but no other control character; this one has "
                              f"{one_line(reason[at])} at character {at + 1}")
    return reason


def _refused(char: str) -> bool:
    if char in "\t\n" or (" " <= char <= "~"):
        return False
    return unicodedata.category(char) in ("Cc", "Cs") or char in _BIDI


def effective_payload(status: str, payload: Mapping[str, Any], change: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a granted proposal grants: the operator's change when modified, else the request."""
    if status == MODIFIED or (change is not None and status in (APPLIED, FAILED)):
        if change is None:
            raise InvalidDecision("a modified proposal has no change recorded")
        return dict(change)
    return dict(payload)


def overdue(status: str, created_at: float, timeout_s: float | None, now: float, *, grace_s: float = 0) -> bool:
    """A pending proposal whose agent has stopped waiting (its timeout passed)."""
    return status == PENDING and timeout_s is not None and now > created_at + timeout_s + grace_s
