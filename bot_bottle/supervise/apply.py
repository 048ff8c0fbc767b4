"""Deciding a proposal and applying the decision, dispatched by kind and by backend.

``decide`` is the one code path the console, ``--once`` scripts and the demo use:

1. the verdict is checked against the proposal (``proposals.decide``): a wrong move or a
   malformed change raises before anything changes;
2. the verdict is stored with its audit row, in one transaction that expects the proposal
   still pending (two operators cannot both decide it);
3. a rejection is delivered to the sidecar; a granted proposal is applied by kind:

   - egress: the route grant and the decision go to the sidecar together (the ctl writes the
     grant first, so the agent's retry after "approved" already passes), then the route is
     appended to ``<state>/approved_routes.json`` (a resume keeps it) and, only when asked, to
     the bottle's manifest;
   - capability: the sidecar is asked first whether the agent still waits for it (if not, the
     decision cannot stand: it fails, nothing is built); ``registry.for_state(state)`` picks
     the bottle's backend; Docker commits the running agent (its work goes into the base) and
     builds the next snapshot with the packages; once the agent has its verdict, a bottle whose
     owner still runs it is restarted on that snapshot (same id, files kept:
     ``lifecycle.run_bottle`` relaunches it); a backend that cannot answers
     ``NotSupportedOnBackend`` having run nothing;
   - push-exception: a one-shot push grant for exactly that repo, ref and range;
   - token-use: a token-use grant for the route and detectors;

4. the proposal ends ``applied``, or ``failed`` with the error (the agent is then told it was
   not granted, and why). A decision the sidecar refuses as ``already-decided`` or
   ``unknown-proposal`` (the agent's wait ended first) did not stand: the proposal fails and
   nothing follows from it (no route kept, no manifest change, no restart). Every step that
   changes something, and every failure, is an audit row: who, what, when, why, before and
   after.
"""

from __future__ import annotations

import getpass
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot_bottle.errors import BotBottleError
from bot_bottle.sidecar.supervise.channel import ChannelError, egress_route
from bot_bottle.supervise import proposals as states
from bot_bottle.supervise import routes as routes_mod
from bot_bottle.supervise.link import LinkError, SidecarLink
from bot_bottle.supervise.store import AuditEntry, ProposalRow, StaleProposal, Store
from bot_bottle.supervise.sync import STUCK_AFTER_S, SYSTEM_OPERATOR

LinkFactory = Callable[[str], SidecarLink]


def default_operator() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment
        return "operator"


@dataclass
class Context:
    """Where a decision's effects go: the user's layout (state, manifests) and the sidecar links."""

    layout: Any  # bot_bottle.manifest.Layout
    link_for: LinkFactory = SidecarLink
    clock: Callable[[], float] = time.time
    state_dir: Path | None = None  # instead of the layout's (tests, other state roots)
    # TEST ONLY: the network and apt repository a capability build uses (tests serve their own
    # on an --internal network). Set from Python only; nothing a user writes reaches it.
    capability_build: Any = None  # bot_bottle.backend.registry.CapabilityBuild

    @property
    def state_root(self) -> Path:
        return Path(self.state_dir or self.layout.state_dir)

    @classmethod
    def default(cls) -> Context:
        from bot_bottle.manifest import Layout

        return cls(layout=Layout.from_env())


class ApplyFailed(BotBottleError):
    """Applying a granted decision did not work; the message says what and why."""


Step = tuple[str, Callable[[], None]]


@dataclass
class Applied:
    """What applying changed: the grant sent to the sidecar, and before/after for the audit."""

    grant: dict[str, Any] | None = None
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    message: str = ""  # told to the agent with the decision
    # (audit action, effect) run once the sidecar took the decision; a failure is recorded on
    # the proposal and audited, but does not undo the grant that already works.
    after_delivery: list[Step] = field(default_factory=list)
    # What applying already changed that stays even if the decision does not stand: then the
    # proposal ends applied late (the operator approved it), saying the agent was not told.
    done_anyway: str = ""


def decide(store: Store, proposal_id: str | int | ProposalRow, verdict: str, *, reason: str = "",
           change: Mapping[str, Any] | None = None, operator: str | None = None, save_to_manifest: bool = False,
           context: Context | None = None, bottle_id: str | None = None) -> ProposalRow:
    """Decide a proposal and apply the decision; return the proposal as it ends.

    Raises ``InvalidTransition`` / ``InvalidDecision`` (nothing changed) for a verdict that does
    not fit; ``StaleProposal`` if someone decided it first. A failure to apply does not raise:
    the proposal ends ``failed`` with its ``error``, and the audit log has the details.
    """
    ctx = context or Context.default()
    who = operator or default_operator()
    row = _row(store, proposal_id, bottle_id)
    try:
        v = states.decide(row.status, row.kind, verdict, reason=reason, change=change, operator=who, now=ctx.clock())
    except BotBottleError as exc:
        # Decided before this verdict came (another console, a script, the agent's wait ending):
        # said as what happened, not as a move between statuses.
        plain = (states.InvalidTransition(already_decided(row, verdict))
                 if isinstance(exc, states.InvalidTransition) and row.status != states.PENDING else exc)
        store.audit(AuditEntry(operator=who, action=verdict, bottle_id=row.bottle_id, proposal_key=row.key,
                               reason=str(plain), before=_summary(row), after=None, outcome="refused"))
        if plain is exc:
            raise
        raise plain from None
    try:
        row = store.update_proposal(
            row.key, expect=row.status, status=v.status, verdict=v.status, reason=v.reason, change=v.change,
            operator=who, decided_at=v.decided_at,
            audit=AuditEntry(operator=who, action=v.status, bottle_id=row.bottle_id, proposal_key=row.key,
                             reason=v.reason or None, before=_summary(row),
                             after={**_summary(row), "status": v.status, "change": v.change,
                                    "save_to_manifest": save_to_manifest}),
        )
    except StaleProposal as exc:
        # Decided by someone else between reading it and saving this verdict.
        now = store.get(row.key)
        if now.status == states.PENDING:
            # Pending again already (a sync expired it and the next found its agent still
            # waiting): nothing was decided, and the key can simply be pressed again.
            raise StaleProposal(f"{row.bottle_id}/{row.id} changed while this decision was being saved (its "
                                f"wait ended and came back); it was not {verdict}, and is still pending",
                                hint=f"decide it again to have it {verdict}") from None
        raise StaleProposal(already_decided(now, verdict), hint=exc.hint) from None
    link = ctx.link_for(row.bottle_id)
    if v.status not in states.GRANTED:
        error = _deliver(store, row, link, v.decision(row.id), None, who)
        if error:
            store.update_proposal(row.key, expect=row.status, error=f"not delivered to the sidecar: {error}")
        return store.get(row.key)
    # The lock says "this process applies it" for as long as the process lives; the stamps say
    # it to a reader on another machine sharing the home, where the lock cannot be seen.
    with store.applying(row.key), _heartbeat(store, row, HEARTBEAT_S):
        return _apply_granted(store, row, link, v, who, ctx, save_to_manifest)


# A granted proposal whose applying outlives ``sync.STUCK_AFTER_S`` (an image build on a slow
# mirror) must not be failed by a sync meanwhile: the applying process says it still runs, this
# often, by stamping the proposal's ``updated_at``, which the sync's rule reads. A process that
# ends, however it ends, stops stamping, so its proposal is failed an hour after the last stamp.
# Many stamps per ``STUCK_AFTER_S``: one lost to a locked database is no matter.
HEARTBEAT_S = min(60.0, STUCK_AFTER_S / 10)


@contextmanager
def _heartbeat(store: Store, row: ProposalRow, every: float) -> Iterator[None]:
    """While the body runs, stamp ``row`` (still granted) as being applied every ``every`` seconds.

    A stamp rather than the applying process's pid: a pid cannot be told from another process
    that later got the same number (after a reboot, or a wrap), means nothing to a console in
    another pid namespace over the same home, and would need a column of its own; a stamp needs
    none of that and fails safe (a process that is gone stamps nothing). What a stamp cannot say
    is that a process which has not stamped for an hour because the machine slept still runs:
    the applying lock (``Store.applying``, held around this) says that. The stamps go through a
    connection of their own: the deciding thread's connection is not shared across threads.
    """
    done = threading.Event()

    def beat() -> None:
        if done.wait(every):
            return  # applied within one period (an egress route: milliseconds): no connection opened
        try:
            beats = Store(store.path, clock=store.clock)
        except BotBottleError:
            return  # the decision's own connection reports what is wrong with the file
        with beats:
            while True:
                try:
                    if not beats.heartbeat(row.key, states.GRANTED):
                        return  # no longer granted: applied, failed, or failed by a sync
                except (BotBottleError, sqlite3.Error):
                    pass  # locked a moment, or the file damaged: the next stamp, or the lease runs out
                if done.wait(every):
                    return

    # Not joined, so the decision never waits out a lock a stamp waits for: a stamp still in
    # flight when the body ends is the last, and finds the proposal applied or failed (no change).
    threading.Thread(target=beat, daemon=True, name=f"supervise-heartbeat-{row.key}").start()
    try:
        yield
    finally:
        done.set()


def _apply_granted(store: Store, row: ProposalRow, link: SidecarLink, v: states.Verdict, who: str, ctx: Context,
                   save_to_manifest: bool) -> ProposalRow:
    """Apply a granted decision already saved as ``row`` and deliver it; the proposal as it ends."""
    if row.kind in _COSTLY:
        # Building an image (and restarting the bottle after) is worth one more question first:
        # if the agent's wait already ended, the decision cannot stand, so nothing is done.
        gone = _not_waiting(link, row)
        if gone:
            return _failed(store, row, link, v, who, gone, tell_agent=False)
    payload = states.effective_payload(row.status, row.payload, row.change)
    try:
        applied = _APPLY[row.kind](row, payload, ctx, save_to_manifest)
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the proposal must not stay "approved"
        return _failed(store, row, link, v, who, _message(exc), tell_agent=True)
    error = _deliver(store, row, link, v.decision(row.id, reason=_join(v.reason, applied.message)), applied.grant, who)
    errors = []
    if error:
        if error.kind in _DID_NOT_STAND and applied.done_anyway:
            # Built while the agent's wait ended: what the operator approved is there, so the
            # proposal says so (applied late) rather than "failed" beside a changed bottle.
            return _applied_late(store, row, applied, who, error)
        if error.kind in _DID_NOT_STAND:
            # The sidecar has another decision (the agent's wait ended) or no such proposal: this
            # one did not stand, so nothing follows from it (no restart, no route kept).
            return _failed(store, row, link, v, who,
                           f"the decision did not stand: {error} (the agent's wait had ended); nothing was "
                           "granted, kept or restarted", tell_agent=False)
        if applied.grant is not None:
            # Nothing took effect: the ctl writes the grant only with the decision.
            return _failed(store, row, link, v, who, f"the sidecar did not take the grant: {error}", tell_agent=False)
        errors.append(f"applied, but the agent was not told: {error}")
    for action, effect in applied.after_delivery:
        try:
            effect()
        except Exception as exc:  # noqa: BLE001 - recorded; the grant already in effect stays
            message = _message(exc)
            errors.append(message)
            store.audit(AuditEntry(operator=who, action=action, bottle_id=row.bottle_id, proposal_key=row.key,
                                   reason=message, before=None, after=None, outcome="failed"))
    row = store.update_proposal(
        row.key, expect=row.status, status=states.transition(row.status, states.APPLIED),
        error="; ".join(errors) or None,
        audit=AuditEntry(operator=who, action="apply", bottle_id=row.bottle_id, proposal_key=row.key,
                         reason=applied.message or None, before=applied.before,
                         after={**applied.after, "grant": applied.grant}),
    )
    return row


_ALREADY = {states.FAILED: "had already failed", states.EXPIRED: "had already expired"}


def decided_by(row: ProposalRow) -> str:
    """`` by NAME`` for the operator who decided ``row``; "" when bot-bottle itself did (a wait
    that ended) or no one has."""
    return f" by {row.operator}" if row.operator and row.operator != SYSTEM_OPERATOR else ""


def already_decided(row: ProposalRow, verdict: str) -> str:
    """Why ``verdict`` cannot be given to ``row`` any more, as the operator would say it:
    ``b1/p1 was already rejected by bob at 23:01; it cannot be approved now``."""
    if row.status not in states.STATUSES:
        # Not a decision anybody made: a row changed by hand, or damaged.
        return (f"{row.bottle_id}/{row.id} has a status bot-bottle does not know ({row.status!r}; the supervise "
                f"database may be damaged); it cannot be {verdict}")
    by = decided_by(row)
    when = row.decided_at or row.updated_at
    at = f" at {time.strftime('%H:%M', time.localtime(when))}" if when else ""
    return (f"{row.bottle_id}/{row.id} {_ALREADY.get(row.status, f'was already {row.status}')}{by}{at}; "
            f"it cannot be {verdict} now")


def _applied_late(store: Store, row: ProposalRow, applied: Applied, who: str, error: LinkError) -> ProposalRow:
    """The proposal ends applied, its error saying that the agent was told its request ended
    unanswered and that nothing after delivery (a restart, a route kept) was done."""
    note = (f"applied after the agent's wait had ended ({error}): the agent was told its request expired "
            f"and nothing else followed (no restart); {applied.done_anyway}")
    return store.update_proposal(
        row.key, expect=row.status, status=states.transition(row.status, states.APPLIED), error=note,
        audit=AuditEntry(operator=who, action="apply", bottle_id=row.bottle_id, proposal_key=row.key,
                         reason=note, before=applied.before,
                         after={**{k: x for k, x in applied.after.items() if k != "restart"}, "agent_told": False}),
    )


def _failed(store: Store, row: ProposalRow, link: SidecarLink, v: states.Verdict, who: str, message: str,
            *, tell_agent: bool) -> ProposalRow:
    row = store.update_proposal(
        row.key, expect=row.status, status=states.transition(row.status, states.FAILED), error=message,
        audit=AuditEntry(operator=who, action="apply", bottle_id=row.bottle_id, proposal_key=row.key,
                         reason=message, before=_summary(row), after={"status": states.FAILED}, outcome="failed"),
    )
    if tell_agent:
        # The agent is waiting: it hears "not granted", and why, but not where on the host
        # (the operator's console and the audit log keep the full text).
        reason = f"approved, but it could not be applied: {for_agent(message)}"
        _deliver(store, row, link, v.decision(row.id, verdict=states.REJECTED, reason=reason), None, who)
    return store.get(row.key)


# An absolute or home-relative path: a quoted one whole; else from after a space, bracket or
# '=' (not inside a URL, whose path says nothing of the host) to the next space, quote, bracket
# or ':'.
_QUOTED_HOST_PATH = re.compile(r"""(['"])~?/[^'"\n]*\1""")
_HOST_PATH = re.compile(r"""(?:(?<=[\s(\[={,])|^)~?/[^\s'"()\[\]{},;:]*""")
AGENT_REASON_MAX = 500  # characters of a failure's text the agent reads


def for_agent(message: str) -> str:
    """``message`` as the bottled agent may read it: every host path (the operator's home, the
    state folder, a build's files) replaced by ``<host path>``, and at most
    ``AGENT_REASON_MAX`` characters."""
    home = str(Path.home())
    if len(home) > 1:
        message = message.replace(home, "~")
    message = _HOST_PATH.sub("<host path>", _QUOTED_HOST_PATH.sub("<host path>", message))
    if len(message) > AGENT_REASON_MAX:
        message = message[: AGENT_REASON_MAX - 3] + "..."
    return message


def _deliver(store: Store, row: ProposalRow, link: SidecarLink, decision: Any, grant: dict[str, Any] | None,
             who: str) -> LinkError | None:
    """Send ``decision`` (and ``grant``) to the sidecar; None, or the error (also audited)."""
    try:
        link.decide(decision, grant)
        return None
    except LinkError as exc:
        store.audit(AuditEntry(operator=who, action="deliver", bottle_id=row.bottle_id, proposal_key=row.key,
                               reason=str(exc), before=None, after={"decision": decision.to_dict(), "grant": grant},
                               outcome="failed"))
        return exc


# The ctl's answers saying a decision cannot stand: the proposal has a decision already (the
# server expired it when the agent's wait ended) or the sidecar has no such proposal.
_DID_NOT_STAND = frozenset({"already-decided", "unknown-proposal"})
# Kinds whose applying costs minutes and changes things before the decision is delivered.
_COSTLY = frozenset({"capability"})


def _not_waiting(link: SidecarLink, row: ProposalRow) -> str | None:
    """None while the sidecar still lists ``row`` as waiting; otherwise why nothing is done."""
    try:
        waiting = {p.id for p in link.pending()}
    except LinkError as exc:
        return f"could not check that the agent still waits for it ({exc}); nothing was built or restarted"
    if row.id in waiting:
        return None
    return ("the agent's wait for it had already ended (its sidecar no longer lists it as waiting), so the "
            "decision cannot stand; nothing was built or restarted")


# -- per kind ----------------------------------------------------------------------------------


def _apply_egress(row: ProposalRow, payload: dict[str, Any], ctx: Context, save: bool) -> Applied:
    route = egress_route(payload)
    state = ctx.state_root / row.bottle_id
    applied = Applied(grant={"kind": "route", "route": route}, after={"route": route})

    def keep_for_resume() -> None:
        if not state.is_dir():
            raise ApplyFailed(f"bottle {row.bottle_id} has no state folder ({state}); the route lasts until it stops")
        before, after = routes_mod.add_approved(state, route)
        applied.before["approved_routes"] = before
        applied.after["approved_routes"] = after

    def to_manifest() -> None:
        from bot_bottle.state import StateDir

        meta = StateDir(ctx.state_root, row.bottle_id).read()
        path, old, new = routes_mod.save_to_manifest(ctx.layout, meta.bottle, route,
                                                     note=f"approved in bot-bottle supervise ({row.id})")
        # The line added, not the file: the audit log records the change, the file is the user's.
        applied.after["manifest"] = {"path": str(path), "added": routes_mod.route_line(route),
                                     "lines_before": old.count("\n"), "lines_after": new.count("\n")}

    # Kept in the state only once the sidecar took the grant: a refused delivery leaves nothing.
    applied.after_delivery.append(("keep-for-resume", keep_for_resume))
    if save:
        applied.after_delivery.append(("save-to-manifest", to_manifest))
    return applied


def _apply_capability(row: ProposalRow, payload: dict[str, Any], ctx: Context, save: bool) -> Applied:
    from bot_bottle.backend import registry
    from bot_bottle.state import StateDir

    if (payload.get("dockerfile") or "").strip():
        raise ApplyFailed("Dockerfile lines are not applied by any backend; modify the proposal to name packages only")
    state = StateDir(ctx.state_root, row.bottle_id)
    backend = registry.for_state(state)  # the backend the bottle runs on, from its metadata
    # The reason is kept as the bottle's "why preserved", which `list` shows as bot-bottle's own
    # words: the proposal's id, never the agent's justification (its text could pass for ours).
    change = registry.CapabilityChange(row.bottle_id, tuple(payload.get("packages") or ()), reason=f"proposal {row.id}",
                                       build=ctx.capability_build)
    change.validate()
    before = state.read()
    if backend.supports_capability_change:
        # The agent's work so far becomes the base the packages are added to.
        backend.commit(row.bottle_id, state_root=ctx.state_root, build=ctx.capability_build)
    ref = backend.apply_capability_change(change, state_root=ctx.state_root)
    names = ", ".join(change.packages)
    applied = Applied(
        before={"backend": backend.name, "image": before.image, "snapshot": before.snapshot},
        after={"backend": backend.name, "snapshot": ref, "packages": list(change.packages)},
        message=f"{names} will be installed when the bottle is resumed (bot-bottle resume {row.bottle_id})",
        done_anyway=f"the image with {names} is built ({ref}) and `bot-bottle resume {row.bottle_id}` starts from it",
    )
    owner_running = getattr(backend, "owner_running", None)
    if owner_running is not None and owner_running(row.bottle_id, state_root=ctx.state_root):
        # Stopped only after the decision reached the sidecar: the agent hears "approved" first.
        applied.message = (f"{names} installed in a new image; the bottle restarts on it now (as `bot-bottle "
                           f"resume {row.bottle_id}` would): running processes end, files are kept")
        applied.after["restart"] = True

        def restart() -> None:
            backend.request_restart(row.bottle_id, state_root=ctx.state_root,
                                    reason=f"capability change approved ({row.id}): {names}")

        applied.after_delivery.append(("restart", restart))
    return applied


def _apply_push(row: ProposalRow, payload: dict[str, Any], ctx: Context, save: bool) -> Applied:
    # For the findings the operator was shown, not for whatever else those commits may hold.
    grant = {"kind": "push", **{k: payload[k] for k in ("repo", "ref", "old", "new", "finding") if payload.get(k)}}
    return Applied(grant=grant, after={"push": grant}, message="the gate lets this exact push through once")


def _apply_token_use(row: ProposalRow, payload: dict[str, Any], ctx: Context, save: bool) -> Applied:
    grant = {"kind": "token-use", "route": payload["route"], "detectors": list(payload.get("detectors") or [])}
    return Applied(grant=grant, after={"token_use": grant},
                   message="allowed on this route for the rest of the sidecar's life")


_APPLY: dict[str, Callable[[ProposalRow, dict[str, Any], Context, bool], Applied]] = {
    "egress": _apply_egress,
    "capability": _apply_capability,
    "push-exception": _apply_push,
    "token-use": _apply_token_use,
}


# -- helpers -----------------------------------------------------------------------------------


def _row(store: Store, proposal_id: str | int | ProposalRow, bottle_id: str | None) -> ProposalRow:
    if isinstance(proposal_id, ProposalRow):
        return store.get(proposal_id.key)
    if isinstance(proposal_id, int):
        return store.get(proposal_id)
    return store.find(proposal_id, bottle_id)


def _summary(row: ProposalRow) -> dict[str, Any]:
    return {"id": row.id, "kind": row.kind, "status": row.status, "payload": row.payload,
            "justification": row.justification}


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _message(exc: BaseException) -> str:
    if not isinstance(exc, (BotBottleError, ChannelError, OSError)):
        return f"internal error: {type(exc).__name__}: {exc}"
    hint = getattr(exc, "hint", None)
    return f"{exc}" + (f" ({hint})" if hint else "")
