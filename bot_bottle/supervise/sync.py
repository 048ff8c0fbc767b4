"""Bring the store up to date with every running bottle's sidecar.

For each running bottle: its pending proposals are imported (once), a proposal the store still
holds as pending but the sidecar no longer lists was decided there without us (the agent's wait
timed out) and is marked expired, and the new lines of its egress log are imported from the
store's cursor. Pending proposals of bottles that no longer run are marked expired too: nobody
is waiting for them any more. Each such change is an audit row.

One bottle whose sidecar cannot be asked does not stop the others: its error is in the report.
The sidecars are asked in parallel, and the console waits only a few seconds for any one of
them, so one slow sidecar neither delays the others nor the operator's screen.

Only what the store held as pending *before* a sidecar's list was read can be expired for
missing from that list: a proposal imported meanwhile (by a second console, or an overlapping
sync) is newer than the list, not gone from it. A proposal a sync expired that its sidecar still
lists as waiting is made pending again.

A damaged row (bytes that are not UTF-8, JSON that is not what bot-bottle wrote: ``DamagedRow``)
does not stop a sync, nor is anything decided about it: it is not expired, reopened or failed,
whatever its sidecar lists, since what it holds cannot be read to judge. It stays as it is and
is named once in the report (``SyncReport.damaged``), while every other row is synced as usual.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bot_bottle.errors import BotBottleError
from bot_bottle.supervise import proposals as states
from bot_bottle.sidecar.supervise.channel import Proposal
from bot_bottle.sidecar.supervise.ctl import MAX_EVENT_BYTES
from bot_bottle.supervise.link import Events, LinkError, SidecarLink
from bot_bottle.supervise.store import AuditEntry, DamagedRow, ProposalRow, StaleProposal, Store, StoreError

SYSTEM_OPERATOR = "bot-bottle"  # who the audit log names for changes no person made
# A granted proposal is applied by the process that decided it, which stamps it (its
# ``updated_at``) every minute while it applies (``apply.HEARTBEAT_S``) and holds its applying
# lock (``Store.applying``) until it is done: however long a build takes, a live apply's last
# stamp is recent. One whose last stamp (or decision) is older than this, and whose lock no
# process holds, lost that process mid-apply: it is failed, so it does not sit "approved" forever
# with nothing happening. The lock is what tells a machine that slept (or a stopped process)
# from a dead apply: on waking, every stamp looks old until the applier's next one, while the
# kernel kept its lock the whole time.
STUCK_AFTER_S = 3600.0
# What one sync reads of one bottle's egress log: a large backlog (a console that was closed for a
# day, a flood of requests) is caught up over several syncs, from the cursor each one leaves, so
# no sync holds many MiB per bottle in memory at once nor keeps the screen waiting on it.
MAX_EVENT_BYTES_PER_SYNC = 2 * 1024 * 1024
MAX_EVENT_CHUNKS = 8  # however small the chunks a sidecar answers with


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
    reopened: int = 0  # expired by an earlier sync while their sidecar still listed them
    errors: list[str] = field(default_factory=list)
    slow: list[str] = field(default_factory=list)  # bottles whose sidecar did not answer in time
    # Bottles whose sidecar could not be read (down, slow, an error), each with its messages (also
    # in ``errors``): the console counts and names them all, not only the first error.
    unread: dict[str, list[str]] = field(default_factory=dict)
    forgotten: list[str] = field(default_factory=list)  # removed bottles whose events were deleted
    # Rows the sync could not read and so left as they are, each once (by row and column).
    damaged: list[DamagedRow] = field(default_factory=list)
    # Rows the sync mended from what their sidecar lists (a proposal whose id was damaged), each
    # said once: the file had damage, and the row is whole again.
    repaired: list[str] = field(default_factory=list)

    def not_read(self, bottle_id: str, message: str) -> None:
        """``bottle_id``'s sidecar could not be read, as ``message`` says."""
        self.errors.append(message)
        self.unread.setdefault(bottle_id, []).append(message)

    def left_damaged(self, *rows: DamagedRow) -> None:
        """``rows`` could not be read: nothing was decided about them. A row met by two reads
        (the pending list, then a look-up by id) is named once."""
        seen = {(d.row, d.column) for d in self.damaged}
        for row in rows:
            if (row.row, row.column) not in seen:
                seen.add((row.row, row.column))
                self.damaged.append(row)

    @property
    def problems(self) -> list[str]:
        """Everything this sync has to say: its errors, each damaged row it met, each it repaired."""
        return [*self.errors, *(damaged_line(d) for d in self.damaged), *self.repaired]


def damaged_line(row: DamagedRow) -> str:
    """How a damaged row a sync met reads among the sync's problems (the console's notification
    and ``--once`` name the file)."""
    return f"cannot read the supervise database: an entry in it is damaged ({row}); {row.fate}, the rest synced"


LinkFactory = Callable[[str], SidecarLink]


def running_bottles(state_root: Path | None = None) -> list[BottleInfo]:
    """This user's running bottles of both backends (from the engine's labels), colour from state.

    The engine lists every bottle on the machine; only those with a state folder under
    ``state_root`` are this user's (a bottle's state folder exists from its launch on). Another
    user's bottles, a demo's or a test's, are never shown nor decided from here.
    """
    from bot_bottle.backend.docker.running import running

    return own_bottles(running(), state_root or _default_state_root())


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
         now: float | None = None, state_root: Path | None = None, wait_s: float | None = None,
         fetches: Fetches | None = None) -> SyncReport:
    """Import proposals and egress events from every running bottle into ``store``.

    ``bottles`` defaults to what the Docker engine reports as running (both backends). The
    sidecars are asked all at once, each in a thread of its own; ``wait_s`` bounds how long this
    sync waits for any of them (None: as long as the link's own timeout). A sidecar that has not
    answered by then is reported as slow and left for a later sync, which does not ask it again
    while that question is still out (``fetches`` keeps track; one per process by default).
    """
    report = SyncReport()
    link_for = link_for or SidecarLink
    fetches = FETCHES if fetches is None else fetches
    # Bottles listed here are this home's only; whether another home's bottle still exists is
    # asked of the engine before anything is forgotten. A caller's own list is taken as whole.
    anywhere: Callable[[], set[str]] | None = _on_the_engine if bottles is None else None
    if bottles is None:
        try:
            state_root = state_root or _default_state_root()
            bottles = running_bottles(state_root)
        except Exception as exc:  # noqa: BLE001 - no engine: say so, expire nothing
            report.errors.append(f"cannot list running bottles: {exc}")
            return report
    report.bottles = [b for b in bottles]
    live = {b.id for b in report.bottles if b.status == "running"}
    stamp = time.time() if now is None else now
    # What the store holds as pending, read BEFORE any sidecar is asked: only those can be
    # expired for missing from a sidecar's list. A proposal imported after this (by another
    # console, or an overlapping sync) is newer than the list we get, not gone from it.
    # A damaged one is left out, so nothing below expires it: it cannot be read to be judged.
    before: dict[str, list[ProposalRow]] = {}
    damaged: list[DamagedRow] = []
    for row in store.pending(damaged=damaged):
        before.setdefault(row.bottle_id, []).append(row)
    report.left_damaged(*damaged)
    started: list[tuple[BottleInfo, _Fetch]] = []
    for bottle in report.bottles:
        if bottle.id not in live:
            continue
        fetch = fetches.start(bottle.id, link_for(bottle.id), _cursors(store, bottle.id, report))
        if fetch is None:
            report.not_read(bottle.id, f"bottle {bottle.id}: its sidecar has not answered the previous sync yet "
                                       f"({fetches.busy_for(bottle.id):.0f} s); not asked again meanwhile")
            report.slow.append(bottle.id)
            continue
        started.append((bottle, fetch))
    deadline = None if wait_s is None else time.monotonic() + wait_s
    for bottle, fetch in started:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        fetch.done.wait(left)
        if not fetch.pending_done.is_set():
            report.not_read(bottle.id, f"bottle {bottle.id}: its sidecar did not answer within {wait_s:g} s (slow); "
                                       "its proposals and events wait for a later sync")
            report.slow.append(bottle.id)
            continue
        if fetch.pending_error is not None:
            report.not_read(bottle.id, str(fetch.pending_error))
            if fetch.pending_error.kind == "unreachable":
                continue  # one message per bottle whose sidecar is down
        else:
            _reconcile(store, bottle.id, fetch.pending or [], before.get(bottle.id, []), report)
            _report_refused(store, bottle.id, fetch.refused, report)
        if not fetch.done.is_set():
            report.not_read(bottle.id, f"bottle {bottle.id}: its egress log did not arrive within {wait_s:g} s (slow)")
            report.slow.append(bottle.id)
            continue
        if fetch.events_error is not None:
            report.not_read(bottle.id, str(fetch.events_error))
            continue
        # A log without a (readable) cursor is read from its start: what is kept of it is not
        # imported again.
        rescan = fetch.source not in fetch.cursors
        for chunk in fetch.chunks:
            report.new_events += store.import_events(bottle.id, fetch.source, chunk.records,
                                                     next_offset=chunk.next_offset, rescan=rescan)
    for rows in before.values():
        for row in rows:
            if row.bottle_id not in live:
                report.expired += _expire(store, row.key, f"bottle {row.bottle_id} is no longer running", stamp,
                                          report)
    if report.expired:
        # Only bottles that had something to expire can have too many expired ones now.
        for bottle_id in {row.bottle_id for rows in before.values() for row in rows}:
            store.prune_undecided(bottle_id, SYSTEM_OPERATOR)
    report.interrupted = fail_interrupted(store, now=stamp, report=report)
    if state_root is not None:
        report.forgotten = forget_removed(store, state_root, live, on_the_engine=anywhere, report=report)
    return report


def _cursors(store: Store, bottle_id: str, report: SyncReport) -> dict[str, int] | None:
    """Where each of the bottle's sidecar logs was read up to. A cursor whose offset is no offset,
    or with bytes that are not UTF-8, is left out (and named): its log is read again from its
    start, what is kept of it imported once, and the others read on. None only when the cursors
    cannot be read at all: the bottle's logs are then not read, its proposals synced all the same."""
    damaged: list[DamagedRow] = []
    try:
        # A cursor whose offset is damaged is left out: that log is read again from its start.
        cursors = store.event_cursors(bottle_id, damaged=damaged)
    except DamagedRow as exc:
        report.left_damaged(exc)
        return None
    report.left_damaged(*damaged)
    return cursors


def _default_state_root() -> Path:
    from bot_bottle.backend.registry import default_state_root

    return default_state_root()


def forget_removed(store: Store, state_root: Path, live: set[str], *,
                   on_the_engine: Callable[[], set[str]] | None = None,
                   report: SyncReport | None = None) -> list[str]:
    """Delete the events, terminal entries and log cursors of bottles that are gone: not
    running and without a state folder under ``state_root`` (a bottle's folder exists from its
    launch until it is removed; a preserved bottle keeps it, and its events, for resume).
    Return the bottles forgotten.

    ``live`` holds this home's running bottles only. A bottle of another home (started with
    another HOME, its state folder there) can have entries here too: its terminal entries are
    recorded in the database of the HOME its launching process runs with. So before anything
    is forgotten, ``on_the_engine`` (when given) names every bottle the engine still has,
    whatever its home, and those are kept; an engine that cannot say keeps them all. A row
    whose bottle id is damaged names no bottle: it is left as it is (and in ``report``)."""
    from bot_bottle.state import StateDir

    gone = []
    damaged: list[DamagedRow] = []
    with_events = store.bottles_with_events(damaged=damaged)
    if report is not None:
        report.left_damaged(*damaged)
    for bottle_id in with_events:
        if bottle_id in live:
            continue
        try:
            kept = StateDir(state_root, bottle_id).exists()
        except (OSError, BotBottleError):
            continue  # an id that names no state folder here: not ours to judge
        if not kept:
            gone.append(bottle_id)
    if gone and on_the_engine is not None:
        try:
            present = on_the_engine()
        except Exception:  # noqa: BLE001 - no engine answers: nothing is known gone
            return []
        gone = [bottle_id for bottle_id in gone if bottle_id not in present]
    for bottle_id in gone:
        store.forget_events(bottle_id)
    return gone


def _on_the_engine() -> set[str]:
    """Every bottle the engine has containers of (running or not), of any home."""
    from bot_bottle.backend.docker.running import running

    return {b.id for b in running()}


@dataclass
class _Fetch:
    """What one bottle's sidecar answered, filled in by its own thread.

    The thread sets ``pending`` (or ``pending_error``) and then ``pending_done``; then the event
    chunks (or ``events_error``) and ``done``. The sync reads a field only after its event is
    set, and writes the store itself: the thread never touches the database.
    """

    bottle_id: str
    started: float
    pending: list[Proposal] | None = None
    pending_error: LinkError | None = None
    refused: list[str] = field(default_factory=list)  # what the sidecar refused as forged, as lines
    source: str = ""
    cursors: dict[str, int] = field(default_factory=dict)  # where each of its logs was read up to
    chunks: list[Events] = field(default_factory=list)
    events_error: LinkError | None = None
    pending_done: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


class Fetches:
    """The sidecar questions still out, one per bottle at most (thread-safe).

    A sidecar that answers slowly (a loaded engine, a stuck ``docker exec``) is not asked again
    by every sync while its last answer is outstanding: they would pile up, each holding a
    ``docker exec`` for up to the link's timeout.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._out: dict[str, _Fetch] = {}

    def start(self, bottle_id: str, link: SidecarLink, cursors: dict[str, int] | None) -> _Fetch | None:
        """Ask ``link`` in a thread of its own; None when that bottle's last question is still out.
        Without ``cursors`` only its pending list is asked for, not its egress log."""
        with self._lock:
            if bottle_id in self._out:
                return None
            fetch = _Fetch(bottle_id, time.monotonic(), cursors=dict(cursors or {}))
            self._out[bottle_id] = fetch
        # A daemon thread: one stuck on a sidecar that never answers must not hold the process
        # open at exit (its ``docker exec`` has a timeout of its own).
        threading.Thread(target=self._run, args=(fetch, link, cursors), daemon=True,
                         name=f"supervise-sync-{bottle_id}").start()
        return fetch

    def busy_for(self, bottle_id: str) -> float:
        with self._lock:
            fetch = self._out.get(bottle_id)
        return 0.0 if fetch is None else time.monotonic() - fetch.started

    def slow(self, after: float) -> list[str]:
        """Bottles whose sidecar has been asked more than ``after`` seconds ago and not answered."""
        now = time.monotonic()
        with self._lock:
            return [b for b, f in self._out.items() if now - f.started > after]

    def _run(self, fetch: _Fetch, link: SidecarLink, cursors: dict[str, int] | None) -> None:
        try:
            try:
                fetch.pending = link.pending()
                fetch.refused = list(getattr(link, "refused", None) or [])
            except LinkError as exc:
                fetch.pending_error = exc
            except Exception as exc:  # noqa: BLE001 - a bug: reported like a link error, the sync goes on
                fetch.pending_error = LinkError(f"bottle {fetch.bottle_id}: pending: {type(exc).__name__}: {exc}")
            fetch.pending_done.set()
            if cursors is None or (fetch.pending_error is not None and fetch.pending_error.kind == "unreachable"):
                return
            try:
                fetch.source = link.incarnation()
                fetch.chunks = _read_events(link, cursors.get(fetch.source, 0))
            except LinkError as exc:
                fetch.events_error = exc
            except Exception as exc:  # noqa: BLE001 - as above
                fetch.events_error = LinkError(f"bottle {fetch.bottle_id}: events: {type(exc).__name__}: {exc}")
        finally:
            fetch.pending_done.set()
            fetch.done.set()
            with self._lock:
                self._out.pop(fetch.bottle_id, None)


FETCHES = Fetches()  # this process's questions out to sidecars


def _read_events(link: SidecarLink, offset: int) -> list[Events]:
    """The egress log from ``offset`` on, up to ``MAX_EVENT_BYTES_PER_SYNC`` (each chunk is
    whole lines, and its ``next_offset`` is where the next sync reads on: nothing is skipped)."""
    chunks: list[Events] = []
    read = 0
    # A chunk is at most the ctl's MAX_EVENT_BYTES: the next is asked for only if it fits too.
    while len(chunks) < MAX_EVENT_CHUNKS and (not chunks or read + MAX_EVENT_BYTES <= MAX_EVENT_BYTES_PER_SYNC):
        chunk = link.events(offset)
        chunks.append(chunk)
        if chunk.next_offset <= offset or not chunk.records:
            break
        read += chunk.next_offset - max(offset, chunk.start)
        offset = chunk.next_offset
    return chunks


def _report_refused(store: Store, bottle_id: str, refused: list[str], report: SyncReport) -> None:
    """What a sidecar refused as forged (an account in it wrote a proposal that is not what it
    says): an error on the status line, and an audit row that stays. The ctl expired each, so
    each is reported once."""
    for line in refused:
        report.errors.append(line)
        store.audit(AuditEntry(operator=SYSTEM_OPERATOR, action="refuse", bottle_id=bottle_id, reason=line,
                               outcome="failed"))


def fail_interrupted(store: Store, *, now: float, report: SyncReport | None = None) -> int:
    """Fail the granted proposals whose applying never finished (see ``STUCK_AFTER_S``): no
    stamp from the applying process for that long, and no process holding its applying lock.
    A damaged one is not failed (nor read): it is left as it is, and named in ``report``."""
    failed = 0
    damaged: list[DamagedRow] = []
    rows = store.proposals(status=states.GRANTED, damaged=damaged)
    if report is not None:
        report.left_damaged(*damaged)
    for row in rows:
        if row.decided_at is None or now - max(row.decided_at, row.updated_at) < STUCK_AFTER_S:
            continue
        if store.apply_alive(row.key):
            continue  # its process runs (the machine slept, or it was stopped): it stamps again
        error = (f"applying it was interrupted: still {row.status} {int((now - row.decided_at) // 60)} min "
                 "after the decision (the deciding process ended); nothing is known to have taken effect")
        try:
            # Not if its applying process stamped it since it was read here: it is alive.
            store.update_proposal(
                row.key, expect=row.status, unchanged_since=row.updated_at,
                status=states.transition(row.status, states.FAILED), error=error,
                audit=AuditEntry(operator=SYSTEM_OPERATOR, action="fail", bottle_id=row.bottle_id,
                                 proposal_key=row.key, reason=error, before={"status": row.status},
                                 after={"status": states.FAILED}, outcome="failed"),
            )
        except StaleProposal:
            continue  # it finished meanwhile, or its applying process stamped it
        failed += 1
    return failed


def _reconcile(store: Store, bottle_id: str, listed: list[Proposal], before: list[ProposalRow],
               report: SyncReport) -> None:
    """Bring one bottle's proposals in the store in line with its sidecar's pending list.

    ``before`` is what the store held as pending for it before the list was asked for.
    """
    waiting = {p.id for p in listed}
    known = {row.id for row in before}
    for proposal in listed:
        mended: list[tuple[int | None, str]] = []
        if store.add_proposal(bottle_id, proposal.to_dict(), repair_by=SYSTEM_OPERATOR, repaired=mended):
            report.new_proposals += 1
        elif mended:
            _mended(store, mended[0], report)
        elif proposal.id not in known:
            report.reopened += _reopen(store, bottle_id, proposal.id, report)
    for row in before:
        if row.id not in waiting:
            # The sidecar holds a decision we did not send: the agent's wait ran out.
            report.expired += _expire(store, row.key, "the agent stopped waiting (no decision in time)", time.time(),
                                      report)


def _mended(store: Store, mended: tuple[int | None, str], report: SyncReport) -> None:
    """A row whose damaged id was repaired from its sidecar's list: said once, as repaired (not
    also as damaged), unless another of its columns is damaged still. A proposal left out
    because several damaged rows could be it: said, those rows named as damaged too."""
    key, said = mended
    report.repaired.append(said)
    if key is None:
        return
    report.damaged = [d for d in report.damaged if d.key != key]
    try:
        store.get(key)
    except DamagedRow as exc:
        report.left_damaged(exc)


def _reopen(store: Store, bottle_id: str, proposal_id: str, report: SyncReport) -> int:
    """Pending again: a proposal a sync expired while its sidecar still lists it as waiting.

    Only a sync's own expiry is undone (an operator's decision never is): it was a mistake, from
    an older bottle list or a sidecar list read before the proposal came in. Without this it
    would stay expired while the agent waits for an answer nobody can give.
    """
    try:
        row = store.find(proposal_id, bottle_id)
    except DamagedRow as exc:
        # Its status cannot be trusted to be the sync's own expiry: nothing is changed.
        report.left_damaged(exc)
        return 0
    except StoreError:
        return 0
    if row.status != states.EXPIRED or row.operator != SYSTEM_OPERATOR:
        return 0
    reason = "its sidecar still lists it as waiting: an earlier sync had expired it too soon"
    try:
        store.update_proposal(
            row.key, expect=states.EXPIRED, status=states.PENDING, verdict=None, reason=None, decided_at=None,
            operator=None, error=None,
            audit=AuditEntry(operator=SYSTEM_OPERATOR, action="reopen", bottle_id=bottle_id, proposal_key=row.key,
                             reason=reason, before={"status": states.EXPIRED, "reason": row.reason},
                             after={"status": states.PENDING}),
        )
    except StaleProposal:
        return 0
    return 1


def _expire(store: Store, key: int, reason: str, now: float, report: SyncReport) -> int:
    try:
        row = store.get(key)
    except DamagedRow as exc:
        report.left_damaged(exc)  # damaged since the pending list was read: left as it is
        return 0
    if row.status != states.PENDING:
        return 0  # decided since this sync read it as pending (here or in a console): that decision stands
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
    """Import the egress log lines written since the last import; return how many were new
    (the same as a sync does for one bottle, in the caller's thread)."""
    source = link.incarnation()
    added = 0
    try:
        offset, rescan = store.event_cursor(bottle_id, source), False
    except DamagedRow:
        offset, rescan = 0, True  # its offset is no offset: read again, what is kept imported once
    for chunk in _read_events(link, offset):
        added += store.import_events(bottle_id, source, chunk.records, next_offset=chunk.next_offset,
                                     rescan=rescan)
    return added
