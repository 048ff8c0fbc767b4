"""Bring the store up to date with every running bottle's sidecar.

For each running bottle: its pending proposals are imported (once), a proposal the store still
holds as pending but the sidecar no longer lists was decided there without us (the agent's wait
timed out) and is marked expired, and the new lines of its egress log are imported from the
store's cursor. Pending proposals of bottles that no longer run are marked expired too: nobody
is waiting for them any more. Each such change is an audit row.

One bottle whose sidecar cannot be asked does not stop the others: its error is in the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bot_bottle.errors import BotBottleError
from bot_bottle.supervise import proposals as states
from bot_bottle.supervise.link import LinkError, SidecarLink
from bot_bottle.supervise.store import AuditEntry, StaleProposal, Store

SYSTEM_OPERATOR = "bot-bottle"  # who the audit log names for changes no person made
# A granted proposal is applied by the process that decided it, within minutes (an image build
# is the slowest). One still granted after this long lost that process mid-apply: it is failed,
# so it does not sit "approved" forever with nothing happening.
STUCK_AFTER_S = 3600.0
MAX_EVENT_CHUNKS = 20  # per bottle per sync: a large backlog is caught up over several syncs


@dataclass(frozen=True)
class BottleInfo:
    """A running bottle as the console shows it."""

    id: str
    agent: str
    label: str | None
    color: str | None
    backend: str
    started_at: str
    status: str = "running"
    offline: bool = False  # its sidecar stopped: the agent runs on with no way out

    def uptime(self, now: float | None = None) -> float | None:
        """Seconds since the bottle started, or None when the engine gave no usable time."""
        try:
            started = datetime.fromisoformat(self.started_at).timestamp()
        except (TypeError, ValueError):
            return None
        return max(0.0, (time.time() if now is None else now) - started)

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "agent": self.agent, "label": self.label, "color": self.color,
                "backend": self.backend, "started_at": self.started_at, "status": self.status,
                "offline": self.offline}


@dataclass
class SyncReport:
    bottles: list[BottleInfo] = field(default_factory=list)
    new_proposals: int = 0
    new_events: int = 0
    expired: int = 0
    interrupted: int = 0  # granted proposals whose applying never finished, now failed
    errors: list[str] = field(default_factory=list)


LinkFactory = Callable[[str], SidecarLink]


def running_bottles(state_root: Path | None = None) -> list[BottleInfo]:
    """This user's running bottles of both backends (from the engine's labels), colour from state.

    The engine lists every bottle on the machine; only those with a state folder under
    ``state_root`` are this user's (a bottle's state folder exists from its launch on). Another
    user's bottles, a demo's or a test's, are never shown nor decided from here.
    """
    from bot_bottle.backend.docker.running import running

    if state_root is None:
        from bot_bottle.backend.registry import default_state_root

        state_root = default_state_root()
    return own_bottles(running(), state_root)


def own_bottles(found: Iterable[Any], state_root: Path) -> list[BottleInfo]:
    """``found`` (running bottles from the engine) narrowed to those with state under ``state_root``."""
    from bot_bottle.state import StateDir

    out = []
    for b in found:
        try:
            sdir = StateDir(state_root, b.id)
            mine = sdir.exists()
        except (OSError, BotBottleError):
            mine = False  # an id that cannot name a state folder here
        if not mine:
            continue
        try:
            color = sdir.read().color
        except Exception:  # noqa: BLE001 - the colour is decoration; a bad state folder still is ours
            color = None
        out.append(BottleInfo(b.id, b.agent, b.label, color, b.backend, b.started_at, b.status,
                              offline=bool(getattr(b, "offline", False))))
    return out


def sync(store: Store, *, bottles: Iterable[BottleInfo] | None = None, link_for: LinkFactory | None = None,
         now: float | None = None, state_root: Path | None = None) -> SyncReport:
    """Import proposals and egress events from every running bottle into ``store``.

    ``bottles`` defaults to what the Docker engine reports as running (both backends).
    """
    report = SyncReport()
    link_for = link_for or SidecarLink
    if bottles is None:
        try:
            bottles = running_bottles(state_root)
        except Exception as exc:  # noqa: BLE001 - no engine: say so, expire nothing
            report.errors.append(f"cannot list running bottles: {exc}")
            return report
    report.bottles = [b for b in bottles]
    live = {b.id for b in report.bottles if b.status == "running"}
    stamp = time.time() if now is None else now
    for bottle in report.bottles:
        if bottle.id not in live:
            continue
        link = link_for(bottle.id)
        try:
            _sync_proposals(store, bottle.id, link, report)
        except LinkError as exc:
            report.errors.append(str(exc))
            if exc.kind == "unreachable":
                continue  # one message per bottle whose sidecar is down
        try:
            report.new_events += sync_events(store, bottle.id, link)
        except LinkError as exc:
            report.errors.append(str(exc))
    for row in store.pending():
        if row.bottle_id not in live:
            report.expired += _expire(store, row.key, f"bottle {row.bottle_id} is no longer running", stamp)
    report.interrupted = fail_interrupted(store, now=stamp)
    return report


def fail_interrupted(store: Store, *, now: float) -> int:
    """Fail the granted proposals whose applying never finished (see ``STUCK_AFTER_S``)."""
    failed = 0
    for row in store.proposals(status=states.GRANTED):
        if row.decided_at is None or now - row.decided_at < STUCK_AFTER_S:
            continue
        error = (f"applying it was interrupted: still {row.status} {int((now - row.decided_at) // 60)} min "
                 "after the decision (the deciding process ended); nothing is known to have taken effect")
        try:
            store.update_proposal(
                row.key, expect=row.status, status=states.transition(row.status, states.FAILED), error=error,
                audit=AuditEntry(operator=SYSTEM_OPERATOR, action="fail", bottle_id=row.bottle_id,
                                 proposal_key=row.key, reason=error, before={"status": row.status},
                                 after={"status": states.FAILED}, outcome="failed"),
            )
        except StaleProposal:
            continue  # it finished meanwhile
        failed += 1
    return failed


def _sync_proposals(store: Store, bottle_id: str, link: SidecarLink, report: SyncReport) -> None:
    listed = link.pending()
    for proposal in listed:
        if store.add_proposal(bottle_id, proposal.to_dict()):
            report.new_proposals += 1
    waiting = {p.id for p in listed}
    for row in store.pending(bottle_id):
        if row.id not in waiting:
            # The sidecar holds a decision we did not send: the agent's wait ran out.
            report.expired += _expire(store, row.key, "the agent stopped waiting (no decision in time)", time.time())


def _expire(store: Store, key: int, reason: str, now: float) -> int:
    row = store.get(key)
    try:
        store.update_proposal(
            key, expect=states.PENDING, status=states.transition(row.status, states.EXPIRED),
            verdict=states.EXPIRED, reason=reason, decided_at=now, operator=SYSTEM_OPERATOR,
            audit=AuditEntry(operator=SYSTEM_OPERATOR, action="expire", bottle_id=row.bottle_id,
                             proposal_key=key, reason=reason, before={"status": row.status},
                             after={"status": states.EXPIRED}),
        )
    except StaleProposal:
        return 0  # decided meanwhile: that decision stands
    return 1


def sync_events(store: Store, bottle_id: str, link: SidecarLink) -> int:
    """Import the egress log lines written since the last import; return how many were new."""
    source = link.incarnation()
    offset = store.event_cursor(bottle_id, source)
    added = 0
    for _ in range(MAX_EVENT_CHUNKS):
        chunk = link.events(offset)
        added += store.import_events(bottle_id, source, chunk.records, next_offset=chunk.next_offset)
        if chunk.next_offset <= offset or not chunk.records:
            break
        offset = chunk.next_offset
    return added
