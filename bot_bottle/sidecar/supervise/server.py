"""The MCP server a bottled agent asks through when the bottle blocks it.

Four tools (docs/supervise.md): ``request-egress``, ``request-capability``,
``request-push-exception``, ``request-token-use``. Each validates its arguments, writes a Proposal
into the spool, waits for the operator's Decision up to the timeout its description states, and
returns the verdict: approved, modified (with the change), rejected (with the reason) or expired.

It listens on the sidecar's loopback (``127.0.0.1:9430``); the agent reaches it through its proxy
as ``http://supervise.bottle.internal/mcp`` (streamable HTTP, stateless, JSON answers: nothing
long-lived to hold open through the proxy).

Plain stdlib throughout (the transport is ``mcp_http``), so the sidecar's system ``python3`` runs
it with nothing installed, and it is unit-tested on the host over real sockets.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import socket
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
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
from bot_bottle.sidecar.supervise.endpoint import DEFAULT_TIMEOUT_S, PATH, PORT, SERVICE
from bot_bottle.sidecar.supervise.mcp_http import McpServer, Tool, ToolError, serve

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
# The MCP glue: the four tools on the stdlib transport (mcp_http)

SERVER_NAME = "bot-bottle-supervise"
SERVER_VERSION = "1"
INSTRUCTIONS = (
    "This bottle blocks what its manifest does not grant. When something you need is "
    "blocked (a host, a package, a push, a held request), ask the operator with these "
    "tools instead of working around the block."
)


def allowed_hosts(port: int) -> list[str]:
    """Host headers the server accepts: its internal name (as the proxy forwards it) and loopback."""
    name = f"{SERVICE}.bottle.internal"
    return [name, f"{name}:*", f"127.0.0.1:{port}", "127.0.0.1:*", "localhost:*"]


def _string(name: str) -> dict[str, Any]:
    return {"title": name.replace("_", " ").title(), "type": "string"}


def _optional_list(name: str, item: str) -> dict[str, Any]:
    return {"anyOf": [{"items": {"type": item}, "type": "array"}, {"type": "null"}],
            "default": None, "title": name.title()}


def _schema(tool: str, properties: dict[str, dict[str, Any]], required: Sequence[str]) -> dict[str, Any]:
    # The shape the mcp SDK derived from the handlers' signatures, which the agents have seen so far.
    return {"properties": properties, "required": list(required), "type": "object",
            "title": f"{tool.replace('-', '_')}Arguments"}


SCHEMAS: dict[str, dict[str, Any]] = {
    "request-egress": _schema("request-egress", {
        "host": _string("host"), "justification": _string("justification"),
        "paths": _optional_list("paths", "string"), "methods": _optional_list("methods", "string"),
        "ports": _optional_list("ports", "integer"),
    }, ("host", "justification")),
    "request-capability": _schema("request-capability", {
        "justification": _string("justification"), "packages": _optional_list("packages", "string"),
        "dockerfile": {"default": "", "title": "Dockerfile", "type": "string"},
    }, ("justification",)),
    "request-push-exception": _schema("request-push-exception", {
        name: _string(name) for name in ("repo", "ref", "old", "new", "finding", "justification")
    }, ("repo", "ref", "old", "new", "finding", "justification")),
    "request-token-use": _schema("request-token-use", {
        "hold_id": _string("hold_id"), "justification": _string("justification"),
    }, ("hold_id", "justification")),
}


def _integer(value: Any) -> int | None:
    """``value`` as an integer the way the SDK's validation took one (``443``, ``443.0``, ``"443"``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit() and len(value) < 20:
        return int(value.strip())
    return None


def _check_value(name: str, value: Any, spec: dict[str, Any]) -> Any:
    if "anyOf" in spec:  # an optional list: null or an array of one item type
        if value is None:
            return None
        if not isinstance(value, list):
            raise ToolInputError(f"{name}: expected a list, got {type(value).__name__}")
        item = spec["anyOf"][0]["items"]["type"]
        return [_check_value(f"{name}[{i}]", v, {"type": item}) for i, v in enumerate(value)]
    if spec["type"] == "integer":
        number = _integer(value)
        if number is None:
            raise ToolInputError(f"{name}: expected an integer, got {value!r}"[:200])
        return number
    if not isinstance(value, str):
        raise ToolInputError(f"{name}: expected a string, got {type(value).__name__}")
    return value


def check_arguments(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """``arguments`` checked against ``tool``'s schema: every required one present, each of its
    type. Names the schema does not know are dropped (the SDK ignored them too)."""
    schema = SCHEMAS[tool]
    missing = [name for name in schema["required"] if name not in arguments]
    if missing:
        raise ToolInputError("; ".join(f"{name}: required" for name in missing))
    return {name: _check_value(name, arguments[name], spec)
            for name, spec in schema["properties"].items() if name in arguments}


def build_tools(spool: Spool, timeout_s: float = DEFAULT_TIMEOUT_S, *, poll: float = POLL_S) -> list[Tool]:
    desc = descriptions(timeout_s)
    rate = AskRate()
    makers: dict[str, Callable[[dict[str, Any]], Proposal]] = {
        "request-egress": lambda a: egress_proposal(
            a["host"], a["justification"], a.get("paths"), a.get("methods"), a.get("ports"), timeout_s=timeout_s),
        "request-capability": lambda a: capability_proposal(
            a["justification"], a.get("packages"), a.get("dockerfile") or "", timeout_s=timeout_s),
        "request-push-exception": lambda a: push_exception_proposal(
            spool, a["repo"], a["ref"], a["old"], a["new"], a["justification"], a["finding"], timeout_s=timeout_s),
        "request-token-use": lambda a: token_use_proposal(spool, a["hold_id"], a["justification"], timeout_s=timeout_s),
    }

    def handler(name: str) -> Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]:
        async def call(arguments: dict[str, Any]) -> dict[str, Any]:
            try:
                return await ask(spool, makers[name](check_arguments(name, arguments)), poll=poll, rate=rate)
            except (ToolInputError, ChannelError) as exc:
                raise ToolError(str(exc)) from None
        return call

    return [Tool(name, desc[name], SCHEMAS[name], handler(name)) for name in makers]


def build_server(spool: Spool, timeout_s: float = DEFAULT_TIMEOUT_S, *, port: int = PORT,
                 poll: float = POLL_S) -> McpServer:
    return McpServer(build_tools(spool, timeout_s, poll=poll), name=SERVER_NAME, version=SERVER_VERSION,
                     instructions=INSTRUCTIONS, allowed_hosts=allowed_hosts(port), path=PATH)


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
    server = build_server(spool, args.timeout, port=args.port)
    if args.fd is None:
        asyncio.run(serve(server, host=args.host, port=args.port))
    else:
        asyncio.run(serve(server, sock=socket.socket(fileno=args.fd)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
