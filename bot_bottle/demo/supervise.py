"""The demo's supervise row: the agent asks for a blocked host, the operator's code path approves.

The scripted agent calls the bottle's MCP server (through its proxy, as any agent would) with
``request-egress`` and waits. The demo then does what an operator does in ``bot-bottle supervise``,
through the same functions the console calls: sync the bottle's proposals into the SQLite store
and ``apply.decide`` the egress proposal as approved. The agent's call returns the verdict and
its retry reaches the host, with no restart of anything.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot_bottle.demo.outcome import Outcome

ASKED_HOST = "docs.example"
MCP_URL = "http://supervise.bottle.internal/mcp"
OPERATOR = "demo operator"
_STATUS = "HTTPSTATUS:"


@dataclass
class SuperviseSeen:
    before: str = ""  # HTTP status of the first try, before asking
    verdict: str = ""  # what the agent's MCP call returned
    status: str = ""  # the proposal's status in the operator's store after the decision
    after: str = ""  # HTTP status of the retry
    after_body: str = ""
    error: str = ""


def _get(bottle: Any, url: str) -> tuple[str, str]:
    out = bottle.exec(f"curl -sS --max-time 20 -w {shlex.quote(_STATUS + '%{http_code}')} {shlex.quote(url)}").stdout
    body, _, status = out.rpartition(_STATUS)
    return status, body


def _ask_command(justification: str) -> str:
    body = json.dumps({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "request-egress",
                   "arguments": {"host": ASKED_HOST, "paths": ["/"], "methods": ["GET"], "justification": justification}},
    })
    return (
        f"curl -sS --max-time 120 -X POST {MCP_URL} -H 'Content-Type: application/json' "
        "-H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2025-06-18' "
        f"--data-binary {shlex.quote(body)}"
    )


def _verdict(stdout: str) -> str:
    try:
        result = json.loads(stdout)["result"]
        return str(json.loads(result["content"][0]["text"]).get("verdict", ""))
    except (ValueError, KeyError, IndexError, TypeError):
        return f"(no verdict: {stdout.strip()[:120]})"


def ask_and_approve(bottle: Any, bottle_id: str, layout: Any, state_root: Path,
                    say: Callable[[str], None], *, timeout: float = 60) -> SuperviseSeen:
    from bot_bottle.supervise import apply
    from bot_bottle.supervise.store import Store
    from bot_bottle.supervise.sync import BottleInfo, sync

    seen = SuperviseSeen()
    seen.before, _ = _get(bottle, f"http://{ASKED_HOST}/")
    say(f"the agent asks the operator for {ASKED_HOST} (MCP request-egress) and waits")
    store = Store(layout.home_dir / "supervise.db")
    info = BottleInfo(bottle_id, "demo-agent", "demo", None, "docker", "")
    context = apply.Context(layout=layout, state_dir=state_root)
    with ThreadPoolExecutor(max_workers=1) as pool:
        call = pool.submit(bottle.exec, _ask_command("the task's instructions live on docs.example"))
        try:
            deadline = time.monotonic() + timeout
            row = None
            while row is None and time.monotonic() < deadline and not call.done():
                sync(store, bottles=[info])
                row = next((r for r in store.pending(bottle_id)
                            if r.kind == "egress" and r.payload.get("host") == ASKED_HOST), None)
                if row is None:
                    time.sleep(0.3)
            if row is None:
                seen.error = "the proposal never reached the operator's store"
                return seen
            say(f"operator: approving proposal {row.id} (the console's code path)")
            done = apply.decide(store, row.key, "approved", reason="the demo's operator approves it",
                                operator=OPERATOR, context=context)
            seen.status = done.status
            answer = call.result(timeout=timeout)
            seen.verdict = _verdict(answer.stdout)
        finally:
            store.close()
    seen.after, seen.after_body = _get(bottle, f"http://{ASKED_HOST}/")
    return seen


def evaluate(seen: SuperviseSeen) -> Outcome:
    observed = (seen.error or
                f"first try HTTP {seen.before or '?'}; agent's call answered '{seen.verdict or '?'}'; "
                f"proposal {seen.status or '?'}; retry HTTP {seen.after or '?'}")
    held = (not seen.error and seen.before == "403" and seen.verdict == "approved"
            and seen.status == "applied" and seen.after == "200" and ASKED_HOST in seen.after_body)
    return Outcome(f"ask the operator for {ASKED_HOST} (blocked), through the supervise MCP server",
                   "refused first; approved by the operator, applied live; the retry answers", observed, held)
