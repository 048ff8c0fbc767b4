"""The proxy's half of the supervise plane: grants it reads, proposals it writes for held requests.

``Grants`` re-reads ``grants.json`` (``supervise.channel``) whenever its mtime changes: granted
``routes`` are appended to the bottle's own policy (its route indices stay as they were; a
granted route never injects a credential), and ``token_uses`` let a held request through when
its route and every detector it tripped were granted. Nothing restarts: the proxy swaps the
policy it decides with, and connections already open stay open.

``hold`` is what a DLP ``supervise`` hit does when the bottle has the supervise plane: it writes
a ``token-use`` proposal into the spool and waits (``timeout`` seconds, 30 by default) for the
operator's decision. Approved or modified: the request is forwarded. Rejected, expired, or no
decision in time (the proposal is then marked expired): refused, and the refusal names the
proposal id, which the agent can pass to the ``request-token-use`` tool with its reasons.
Proposals carry names only (route, detectors, method, host, path without its query), never a
matched value. No mitmproxy here: the addon calls these with plain data.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.sidecar.egress.policy import Policy, PolicyError, Route
from bot_bottle.sidecar.supervise import channel

DEFAULT_HOLD_TIMEOUT = 30.0


@dataclass(frozen=True)
class TokenUse:
    route: str
    detectors: frozenset[str]


@dataclass(frozen=True)
class HoldResult:
    forward: bool
    proposal_id: str | None = None
    verdict: str = ""  # approved | modified | rejected | expired | granted | refused | error
    note: str = ""


def detector_id(label: str) -> str:
    """A log label (``known-secret:NAME (base64)``) as a detector id for proposals and grants."""
    return label.split(" (", 1)[0].strip()


class Grants:
    """``grants.json`` as last read; ``refresh`` re-reads it when its mtime (or size) changed."""

    def __init__(self, root: str | Path) -> None:
        self.path = channel.grants_path(root)
        self._stamp: tuple[int, int] | None = None
        self.routes: tuple[Route, ...] = ()
        self.token_uses: tuple[TokenUse, ...] = ()
        self.skipped: tuple[str, ...] = ()  # why entries were left out, for the log

    def refresh(self) -> bool:
        """True when the grants changed since the last call (a missing file is no grants)."""
        try:
            st = os.stat(self.path)
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        if stamp is None:
            changed = bool(self.routes or self.token_uses)
            self.routes, self.token_uses, self.skipped = (), (), ()
            return changed
        try:
            doc = channel.read_grants(self.path.parent)
        except channel.ChannelError as exc:
            # Half-written or broken: keep what was granted before, try again on the next change.
            self.skipped = (f"grants.json unreadable: {exc}",)
            return False
        except OSError as exc:
            return self._unreadable(exc)
        self.routes, skipped = parse_routes(doc.get("routes", []))
        self.token_uses = tuple(
            TokenUse(str(g.get("route", "")), frozenset(str(d) for d in g.get("detectors", []) or []))
            for g in doc.get("token_uses", []) if isinstance(g, dict)
        )
        self.skipped = tuple(skipped)
        return True

    def _unreadable(self, exc: OSError) -> bool:
        """A grants file the proxy may not read (a mode or owner changed): what it granted can no
        longer be confirmed, nor a grant the operator took back be seen, so nothing is granted
        until it reads again (tried on every refresh). True the first time, so the log says why."""
        reason = (f"grants.json unreadable: {exc.strerror or type(exc).__name__}",)
        changed = bool(self.routes or self.token_uses) or self.skipped != reason
        self.routes, self.token_uses, self.skipped = (), (), reason
        self._stamp = None
        return changed

    def token_use_granted(self, names: Iterable[str], detectors: Iterable[str]) -> bool:
        """Is every one of ``detectors`` granted on a route named by one of ``names``?"""
        wanted = {detector_id(d) for d in detectors}
        hosts = {n for n in names if n}
        return bool(wanted) and any(g.route in hosts and wanted <= g.detectors for g in self.token_uses)


def parse_routes(raw: Iterable[object]) -> tuple[tuple[Route, ...], list[str]]:
    """Granted routes as policy routes; entries that do not parse, or inject a credential, are
    left out (and named in the second list)."""
    routes: list[Route] = []
    skipped: list[str] = []
    for i, item in enumerate(raw):
        try:
            route = Policy.from_dict({"version": 2, "routes": [item]}).routes[0]
        except PolicyError as exc:
            skipped.append(f"routes[{i}]: {exc}")
            continue
        if route.auth is not None:
            skipped.append(f"routes[{i}]: a granted route cannot inject a credential")
            continue
        routes.append(route)
    return tuple(routes), skipped


def merged_policy(base: Policy, granted: tuple[Route, ...]) -> Policy:
    """The bottle's policy with the granted routes after its own (indices of its own unchanged)."""
    extra = tuple(r for r in granted if r not in base.routes)
    return dataclasses.replace(base, routes=base.routes + extra) if extra else base


def token_use_proposal(*, method: str, host: str, path: str, route: str, detectors: Iterable[str],
                       timeout: float) -> channel.Proposal:
    """The proposal for one held request (``channel.held_request_proposal``: its id is its
    ``hold_id``), with detector ids and the path without its query."""
    ids = sorted({detector_id(d) for d in detectors})
    return channel.held_request_proposal(method.upper(), host, path.split("?", 1)[0].split("#", 1)[0], route, ids,
                                         timeout)


# Held requests waiting for the operator at once, at most: beyond, a held request is refused at
# once. Fewer than the supervise server's own limit (``server.MAX_PENDING``), so a burst of held
# requests can neither bury the operator nor leave the agent unable to ask for anything.
MAX_HELD_PENDING = 10


async def hold(spool: channel.Spool, proposal: channel.Proposal, timeout: float) -> HoldResult:
    """Submit ``proposal`` and wait for its decision; no decision in time expires it. A request
    held with the very same method, host, path, route and detectors as one already waiting waits
    for that one's decision (the operator is asked once, about what both are); past
    ``MAX_HELD_PENDING`` waiting, it is refused at once. A proposal past its own wait (left by a
    sidecar that stopped) counts for neither."""
    same_as = ("method", "host", "path", "route", "detectors")
    try:
        now = time.time()
        held = [p for p in spool.pending() if p.kind == "token-use" and p.payload.get("hold_id") == p.id
                and p.created_at + p.timeout_s > now]
        same = next((p for p in held if all(p.payload.get(k) == proposal.payload.get(k) for k in same_as)), None)
        if same is not None:
            proposal = same
        elif len(held) >= MAX_HELD_PENDING:
            return HoldResult(False, None, "refused",
                              f"{len(held)} held requests already wait for the operator; this one was not held")
        else:
            spool.submit(proposal)
    except (channel.ChannelError, OSError) as exc:
        return HoldResult(False, None, "error", f"the proposal could not be recorded ({type(exc).__name__})")
    decision = await spool.await_decision_async(proposal.id, timeout)
    if decision is None:
        try:
            decision = spool.expire(proposal.id, "no decision while the request was held")
        except (channel.ChannelError, OSError):
            return HoldResult(False, proposal.id, "expired")
    return HoldResult(decision.granted, proposal.id, decision.verdict)
