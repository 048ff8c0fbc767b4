"""The MCP server a bottled agent asks through when the bottle blocks it.

Four tools (docs/supervise.md): ``request-egress``, ``request-capability``,
``request-push-exception``, ``request-token-use``. Each validates its arguments, writes a Proposal
into the spool, waits for the operator's Decision up to the timeout its description states, and
returns the verdict: approved, modified (with the change), rejected (with the reason) or expired.

It listens on the sidecar's loopback (``127.0.0.1:9430``); the agent reaches it through its proxy
as ``http://supervise.bottle.internal/mcp`` (streamable HTTP, stateless, JSON answers: nothing
long-lived to hold open through the proxy).

Everything above ``build_server`` is plain stdlib, unit-tested on the host; the ``mcp`` SDK is
imported only by ``build_server``/``main``, which run in the sidecar's own venv (``/opt/supervise``:
the SDK's dependency closure conflicts with mitmproxy's).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bot_bottle.sidecar.supervise.channel import (
    DEFAULT_ROOT,
    ChannelError,
    Decision,
    Proposal,
    Spool,
    detector_ids,
    is_held_request,
    push_findings,
    validate_payload,
)

PORT = 9430
SERVICE = "supervise"
PATH = "/mcp"
DEFAULT_TIMEOUT_S = 300
MAX_PENDING = 20  # an agent cannot bury the operator: beyond this, asks are refused until some are decided
# A call whose caller goes away expires its proposal at once, so MAX_PENDING alone does not bound
# how fast an agent can write proposals (each one lands in the spool and may reach the host).
MAX_ASKS_PER_MINUTE = 30
POLL_S = 0.25


class ToolInputError(ValueError):
    """The agent's arguments cannot become a proposal; the message says what to fix."""


# ---------------------------------------------------------------------------------------------
# Descriptions: what the agent reads, including how long a call waits.


def _minutes(seconds: float) -> str:
    if seconds >= 120 and seconds % 60 == 0:
        return f"{int(seconds // 60)} minutes"
    return f"{int(seconds)} seconds"


def _wait_sentence(timeout_s: float) -> str:
    return (
        f"The call waits up to {_minutes(timeout_s)} for the operator's decision and returns "
        "verdict 'approved', 'modified' (what was granted instead is in 'change'), 'rejected' (with "
        "the operator's 'reason') or 'expired' (nobody decided in time; ask again later, or work "
        "around it). A clear, specific justification gets a faster yes."
    )


def descriptions(timeout_s: float) -> dict[str, str]:
    wait = _wait_sentence(timeout_s)
    return {
        "request-egress": (
            "Ask the operator to let this bottle reach a network host its proxy refuses (the 403 "
            "from the proxy names the host and the rule). Give the host name only (no scheme or "
            "path), optionally the URL path prefixes, HTTP methods and ports you need, and why. "
            "Once approved, retry the request: the proxy allows it at once, no restart. " + wait
        ),
        "request-capability": (
            "Ask the operator to add tools to this bottle's image: Debian package names in "
            "'packages' and/or extra Dockerfile lines (e.g. 'RUN pip install x') in 'dockerfile', "
            "with why you need them. If approved, the bottle is rebuilt and resumed with its state "
            "kept; your session may restart. " + wait
        ),
        "request-push-exception": (
            "Ask the operator to let one push through that the git-gate rejected for a finding "
            "you believe is a false positive (test fixture, documentation example, ...). Give the "
            "repo, the full ref, the old and new commit ids and the finding id exactly as the "
            "gate printed them. If approved, push the same commits again once. " + wait
        ),
        "request-token-use": (
            "Ask the operator to release a request the proxy held because DLP saw a credential "
            "or secret in it (the proxy's 403 names the hold id). Give that hold id and why the "
            "request must carry it. If approved, retry the request. " + wait
        ),
    }


# ---------------------------------------------------------------------------------------------
# Arguments to proposals


def _proposal(kind: str, payload: dict[str, Any], justification: str, timeout_s: float) -> Proposal:
    if not isinstance(justification, str) or not justification.strip():
        raise ToolInputError("justification: required: say what you are doing and why you need this")
    try:
        validate_payload(kind, payload)
        return Proposal.new(kind, payload, justification.strip(), timeout_s)
    except ChannelError as exc:
        raise ToolInputError(str(exc).removeprefix("proposal.").removeprefix("payload.")) from None


def egress_proposal(
    host: str, justification: str, paths: list[str] | None = None, methods: list[str] | None = None,
    ports: list[int] | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Proposal:
    payload = {"host": host, "paths": list(paths or []), "methods": list(methods or []), "ports": list(ports or [])}
    return _proposal("egress", payload, justification, timeout_s)


def capability_proposal(
    justification: str, packages: list[str] | None = None, dockerfile: str = "", *, timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Proposal:
    return _proposal("capability", {"packages": list(packages or []), "dockerfile": dockerfile or ""}, justification, timeout_s)


def push_exception_proposal(
    spool: Spool, repo: str, ref: str, old: str, new: str, justification: str, finding: str,
    *, timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Proposal:
    """A push-exception proposal for a push the git-gate rejected as ``finding``.

    Only a rejection the gate recorded can be asked about, for one of that push's ref updates;
    what it found (detectors and places) is copied from the gate's record, so the operator sees
    what the gate saw, never the agent's account of it.
    """
    payload = {"repo": repo, "ref": ref, "old": (old or "").strip().lower(), "new": (new or "").strip().lower(),
               "finding": (finding or "").strip()}
    try:
        validate_payload("push-exception", payload)
        record = push_findings(spool.root, payload["finding"])
    except ChannelError as exc:
        raise ToolInputError(str(exc).removeprefix("payload.")) from None
    if record is None or record.get("repo") != repo:
        raise ToolInputError(f"finding: the git-gate rejected no push of {repo!r} as {payload['finding']!r}; "
                             "push first, and give the finding id the gate printed")
    update = {k: payload[k] for k in ("ref", "old", "new")}
    if update not in (record.get("updates") or []):
        raise ToolInputError(f"ref, old, new: not a ref update of the push rejected as {payload['finding']!r}; "
                             "give them exactly as the gate printed them")
    # An encoded secret's label (``known-secret:NAME (base64)``) is no detector id: as written it
    # would make the push one nobody could ask about. Its encoding stays in the places.
    payload.update(detectors=detector_ids(record.get("detectors") or []), places=list(record.get("places") or []))
    return _proposal("push-exception", payload, justification, timeout_s)


def token_use_proposal(spool: Spool, hold_id: str, justification: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Proposal:
    """A token-use proposal for the request the proxy held as ``hold_id``.

    What the request was (method, host, path, route, detectors) comes from the proxy's own
    proposal, never from the agent, so the operator sees what the proxy saw.
    """
    try:
        held = spool.get(hold_id)
    except ChannelError as exc:
        raise ToolInputError(f"hold_id: {exc}") from None
    # The proxy's own proposal only, never an earlier ask naming it: the host checks the copy
    # against the proxy's proposal (``channel.forgery``).
    if held is None or not is_held_request(held):
        raise ToolInputError(f"hold_id: no held request {hold_id!r}; use the id the proxy's 403 answer named")
    payload = dict(held.payload, hold_id=hold_id)
    return _proposal("token-use", payload, justification, timeout_s)


# ---------------------------------------------------------------------------------------------
# Asking and answering


class AskRate:
    """At most ``limit`` proposals written per ``window_s`` seconds (a sliding window)."""

    def __init__(self, limit: int = MAX_ASKS_PER_MINUTE, window_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._times: deque[float] = deque()

    def take(self) -> None:
        """Count one proposal, or raise ``ToolInputError`` saying how long to wait."""
        now = self.clock()
        while self._times and now - self._times[0] >= self.window_s:
            self._times.popleft()
        if len(self._times) >= self.limit:
            wait = max(1, math.ceil(self.window_s - (now - self._times[0])))
            raise ToolInputError(f"too many requests: at most {self.limit} in {int(self.window_s)} seconds; "
                                 f"ask again in {wait} seconds")
        self._times.append(now)


def result(proposal: Proposal, decision: Decision) -> dict[str, Any]:
    """What the tool returns to the agent."""
    messages = {
        "approved": "Approved. Retry what was blocked.",
        "modified": "Approved with changes: only what 'change' describes was granted.",
        "rejected": "Rejected by the operator. Do not retry the same thing; see 'reason'.",
        "expired": (
            f"No decision within {_minutes(proposal.timeout_s)}. The request is withdrawn; ask again "
            "later or continue without it."
        ),
    }
    return {
        "proposal_id": proposal.id,
        "verdict": decision.verdict,
        "reason": decision.reason,
        "change": decision.change,
        "message": messages[decision.verdict],
    }


async def ask(spool: Spool, proposal: Proposal, *, poll: float = POLL_S, rate: AskRate | None = None) -> dict[str, Any]:
    """Submit ``proposal``, wait for its decision (or expire it), return the tool's answer.

    If the caller goes away mid-wait, the proposal is expired so the operator is not left
    deciding something nobody waits for. ``rate`` (the server's) bounds how many are written.
    """
    if len(spool.pending()) >= MAX_PENDING:
        raise ToolInputError(
            f"{MAX_PENDING} requests are already waiting for the operator; wait for those to be decided first"
        )
    if rate is not None:
        rate.take()
    spool.submit(proposal)
    decision: Decision | None = None
    try:
        decision = await spool.await_decision_async(proposal.id, proposal.timeout_s, poll)
    finally:
        if decision is None:
            decision = spool.expire(proposal.id, f"no decision within {_minutes(proposal.timeout_s)}")
    return result(proposal, decision)


# ---------------------------------------------------------------------------------------------
# The MCP glue (the SDK is imported here only)


def allowed_hosts(port: int) -> list[str]:
    """Host headers the server accepts: its internal name (as the proxy forwards it) and loopback."""
    name = f"{SERVICE}.bottle.internal"
    return [name, f"{name}:*", f"127.0.0.1:{port}", "127.0.0.1:*", "localhost:*"]


def build_server(spool: Spool, timeout_s: float = DEFAULT_TIMEOUT_S, *, poll: float = POLL_S) -> Any:
    from mcp.server import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer(
        name="bot-bottle-supervise",
        # Warnings only, on stderr: the sidecar's stdout carries the proxy's decision lines.
        log_level="WARNING",
        instructions=(
            "This bottle blocks what its manifest does not grant. When something you need is "
            "blocked (a host, a package, a push, a held request), ask the operator with these "
            "tools instead of working around the block."
        ),
    )
    desc = descriptions(timeout_s)
    rate = AskRate()

    async def _answer(make) -> dict[str, Any]:
        try:
            return await ask(spool, make(), poll=poll, rate=rate)
        except (ToolInputError, ChannelError) as exc:
            raise ToolError(str(exc)) from None

    async def request_egress(
        host: str, justification: str, paths: list[str] | None = None, methods: list[str] | None = None,
        ports: list[int] | None = None,
    ) -> dict[str, Any]:
        return await _answer(lambda: egress_proposal(host, justification, paths, methods, ports, timeout_s=timeout_s))

    async def request_capability(justification: str, packages: list[str] | None = None, dockerfile: str = "") -> dict[str, Any]:
        return await _answer(lambda: capability_proposal(justification, packages, dockerfile, timeout_s=timeout_s))

    async def request_push_exception(
        repo: str, ref: str, old: str, new: str, finding: str, justification: str,
    ) -> dict[str, Any]:
        return await _answer(lambda: push_exception_proposal(spool, repo, ref, old, new, justification, finding,
                                                             timeout_s=timeout_s))

    async def request_token_use(hold_id: str, justification: str) -> dict[str, Any]:
        return await _answer(lambda: token_use_proposal(spool, hold_id, justification, timeout_s=timeout_s))

    for name, fn in (
        ("request-egress", request_egress),
        ("request-capability", request_capability),
        ("request-push-exception", request_push_exception),
        ("request-token-use", request_token_use),
    ):
        server.add_tool(fn, name=name, description=desc[name], structured_output=False)
    return server


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot_bottle.sidecar.supervise.server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="the spool folder")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds a tool call waits for a decision")
    parser.add_argument("--fd", type=int, default=None,
                        help="serve this inherited listening socket (bound to --host/--port by the sidecar's init)")
    args = parser.parse_args(argv)
    spool = Spool(args.root)
    spool.ensure()

    from mcp.server.transport_security import TransportSecuritySettings

    server = build_server(spool, args.timeout)
    security = TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=allowed_hosts(args.port))
    options: dict[str, Any] = {"streamable_http_path": PATH, "json_response": True, "stateless_http": True,
                               "transport_security": security}
    if args.fd is None:
        asyncio.run(server.run_streamable_http_async(host=args.host, port=args.port, **options))
    else:
        asyncio.run(_serve_inherited(server.streamable_http_app(host=args.host, **options), args.fd))
    return 0


async def _serve_inherited(app: Any, fd: int) -> None:
    """Serve ``app`` on a socket the parent bound and listened on; connections already waiting
    in its backlog are the first ones served."""
    import socket

    import uvicorn

    sock = socket.socket(fileno=fd)
    await uvicorn.Server(uvicorn.Config(app, log_level="warning")).serve(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
