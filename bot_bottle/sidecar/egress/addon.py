"""The mitmproxy adapter for the egress policy: facts in, ``core.decide`` verdict out.

Loaded by mitmdump as a script (``-s .../addon.py``), so imports are absolute. The adapter only
translates: it builds ``RequestFacts`` from mitmproxy's flow, asks ``decide``, answers a denial
with a 403 and writes one JSON line per decision. Every rule lives in ``core``.

Options are prefixed ``bottle_`` because an addon option that shares a name with one of
mitmproxy's own silently overrides it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import IO, Any

from mitmproxy import ctx, exceptions, http

from bot_bottle.sidecar.egress.core import RequestFacts, Verdict, decide
from bot_bottle.sidecar.egress.policy import Policy, PolicyError

LOG_FILE_NAME = "egress.jsonl"
RULE_INTERNAL_ERROR = "internal-error"


class EgressAddon:
    def __init__(self) -> None:
        # Until a policy is loaded nothing is allowed: an empty policy denies everything.
        self.policy = Policy()
        self._log_file: IO[str] | None = None

    # -- mitmproxy lifecycle -------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        loader.add_option("bottle_policy", str, "", "Path of the bottle's egress policy (JSON).")
        loader.add_option("bottle_log_dir", str, "", f"Folder for {LOG_FILE_NAME}; empty: no file.")
        loader.add_option("bottle_log_stdout", bool, True, "Also write decision lines to stdout.")

    def configure(self, updated: set[str]) -> None:
        if "bottle_policy" in updated:
            path = ctx.options.bottle_policy
            if not path:
                self.policy = Policy()
            else:
                try:
                    self.policy = Policy.load(path)
                except PolicyError as exc:
                    # Raising here stops mitmdump at start: a bottle with a broken policy stays offline.
                    raise exceptions.OptionsError(f"bottle_policy: {exc}") from exc
        if "bottle_log_dir" in updated:
            self._close_log()
            if ctx.options.bottle_log_dir:
                folder = Path(ctx.options.bottle_log_dir)
                folder.mkdir(parents=True, exist_ok=True)
                self._log_file = open(folder / LOG_FILE_NAME, "a", encoding="utf-8", buffering=1)

    def done(self) -> None:
        self._close_log()

    # -- hooks ---------------------------------------------------------------------------------

    def http_connect(self, flow: http.HTTPFlow) -> None:
        facts = RequestFacts.make(
            scheme="https",
            host=flow.request.host,
            port=flow.request.port,
            method="CONNECT",
            path="",
            is_connect=True,
        )
        self._enforce(flow, facts)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        # Inside an intercepted tunnel mitmproxy sets request.host/port to the CONNECT target, and
        # for plain HTTP to the absolute URL it connects to: the real target either way.
        request = flow.request
        headers = list(request.headers.items(multi=True))
        if request.authority and not any(k.lower() == "host" for k, _ in headers):
            # HTTP/2 and HTTP/3 carry the host as :authority; check it like a Host header.
            headers.append(("host", request.authority))
        facts = RequestFacts.make(
            scheme=request.scheme,
            host=request.host,
            port=request.port,
            method=request.method,
            path=request.path,
            headers=headers,
        )
        self._enforce(flow, facts)

    # -- internals -----------------------------------------------------------------------------

    def _enforce(self, flow: http.HTTPFlow, facts: RequestFacts) -> None:
        try:
            verdict = decide(facts, self.policy)
        except Exception as exc:  # noqa: BLE001 - a crash in a hook must never let the request through
            verdict = Verdict(
                False, facts.host, facts.port, RULE_INTERNAL_ERROR, f"the proxy could not decide ({type(exc).__name__})"
            )
        flow.metadata["bottle_verdict"] = verdict
        if not verdict.allowed:
            flow.response = http.Response.make(
                403,
                verdict.deny_message(),
                {"Content-Type": "text/plain; charset=utf-8", "X-Bot-Bottle-Rule": verdict.rule},
            )
        self._log(verdict, facts)

    def _log(self, verdict: Verdict, facts: RequestFacts) -> None:
        if self.policy.log == 0 or (self.policy.log == 1 and verdict.allowed):
            return
        line = json.dumps(decision_record(verdict, facts), separators=(",", ":"), sort_keys=False)
        if ctx.options.bottle_log_stdout:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        if self._log_file is not None:
            self._log_file.write(line + "\n")

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def decision_record(verdict: Verdict, facts: RequestFacts) -> dict[str, Any]:
    """One log record. Header values never appear; the path loses its query string."""
    now = time.time()
    return {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z",
        "event": "egress",
        "decision": verdict.decision,
        "rule": verdict.rule,
        "route": verdict.route_label,
        "host": verdict.host,
        "port": verdict.port,
        "scheme": facts.scheme,
        "method": facts.method,
        "path": facts.path.split("?", 1)[0][:200],
        "connect": facts.is_connect,
        "reason": verdict.reason,
    }


addons = [EgressAddon()]
