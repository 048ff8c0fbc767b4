"""The host's channel to one bottle's sidecar: ``docker exec -i`` of the supervise ctl.

For both backends a bottle's sidecar bundle is a Docker container named
``bot-bottle-<id>-sidecar`` (``BottleNames.sidecar_container``): a micro-VM bottle's bundle runs
in Docker too. The agent has no Docker socket, so this channel is the operator's alone.

Every verb sends one JSON document on stdin and reads one on stdout (docs/supervise.md). The ctl
reports its own errors as ``{"ok": false, "error", "type"}``; those, a sidecar that is not
running, and output that is not JSON all become ``LinkError`` naming the bottle and the verb.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot_bottle.backend.docker.names import BottleNames
from bot_bottle.errors import BotBottleError
from bot_bottle.sidecar.supervise.channel import ChannelError, Decision, Proposal
from bot_bottle.terminal import one_line

# The sidecar image's interpreter (images/sidecar/Dockerfile: a venv with mitmproxy, our package
# on PYTHONPATH) and the ctl module run with it.
SIDECAR_PYTHON = "/opt/mitmproxy/bin/python"
CTL_MODULE = "bot_bottle.sidecar.supervise.ctl"
CTL_TIMEOUT_S = 60


class LinkError(BotBottleError):
    """The sidecar could not be asked, or answered with an error (``kind`` says which)."""

    def __init__(self, message: str, *, kind: str = "io", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.kind = kind  # the ctl's error type (invalid, unknown-proposal, already-decided, io) or io/unreachable


@dataclass(frozen=True)
class RunResult:
    returncode: int
    stdout: str
    stderr: str


Runner = Callable[[Sequence[str], str], RunResult]


def docker_runner(argv: Sequence[str], stdin: str) -> RunResult:
    """``docker ARGV`` with ``stdin``; never raises for a non-zero exit (the caller reads it)."""
    from bot_bottle.backend.docker import engine

    try:
        result = engine.run(list(argv), input=stdin, timeout=CTL_TIMEOUT_S, check=False)
    except engine.DockerError as exc:
        return RunResult(127, "", str(exc))
    except subprocess.TimeoutExpired:
        return RunResult(124, "", f"no answer within {CTL_TIMEOUT_S} s")
    return RunResult(result.returncode, result.stdout, result.stderr)


@dataclass(frozen=True)
class Events:
    """A chunk of the sidecar's egress log: ``(offset, record)`` pairs and where to read next."""

    start: int
    next_offset: int
    records: list[tuple[int, dict[str, Any]]]


def line_offsets(start: int, next_offset: int, lines: Sequence[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Each record with the byte offset of its line in the sidecar's log.

    The proxy writes compact ASCII JSON lines, so re-serialising a record gives its line back
    byte for byte; when the lengths add up to the chunk, those are the true offsets (the same
    line gets the same key however the log is chunked). If they do not (a line the ctl skipped,
    a writer with other spacing) each record gets ``start + index``: still unique within
    ``[start, next_offset)`` and the same on a re-read from ``start``.
    """
    offsets, pos = [], start
    for record in lines:
        offsets.append(pos)
        pos += len(json.dumps(record, separators=(",", ":"), ensure_ascii=True).encode()) + 1
    if pos != next_offset:
        offsets = [start + i for i in range(len(lines))]
    return list(zip(offsets, lines))


MAX_REFUSED_SHOWN = 20  # refusals one ``pending`` answer is reported with; the rest are counted


def refused_lines(bottle_id: str, refused: Any) -> list[str]:
    """The proposals a sidecar's ``ctl pending`` refused (``channel.forgery``), one line each.

    What the ctl says is the sidecar's, but the ids and reasons quote what a daemon wrote: each
    is one printable line, and a sidecar answering with thousands is counted, not listed."""
    items = [r for r in refused if isinstance(r, dict)] if isinstance(refused, list) else []
    lines = [one_line(f"bottle {bottle_id}: its sidecar refused proposal {str(r.get('id', '?'))[:96]} "
                      f"({str(r.get('kind', '?'))[:32]}) and expired it: {str(r.get('why', '?'))[:300]}")
             for r in items[:MAX_REFUSED_SHOWN]]
    if len(items) > MAX_REFUSED_SHOWN:
        lines.append(f"bottle {bottle_id}: its sidecar refused {len(items) - MAX_REFUSED_SHOWN} more proposals")
    return lines


class SidecarLink:
    """The supervise verbs of one bottle's sidecar."""

    def __init__(self, bottle_id: str, *, container: str | None = None, runner: Runner | None = None,
                 command: Sequence[str] | None = None) -> None:
        self.bottle_id = bottle_id
        self.container = container or BottleNames(bottle_id, "").sidecar_container
        self.runner = runner or docker_runner
        # The argv before the verb; tests run the same ctl without Docker by replacing it.
        self.command = list(command) if command is not None else [
            "exec", "-i", self.container, SIDECAR_PYTHON, "-m", CTL_MODULE,
        ]
        self._incarnation: str | None = None
        # What the last ``pending`` refused as forged (``channel.forgery``), as lines to report.
        self.refused: list[str] = []

    def __repr__(self) -> str:
        return f"SidecarLink({self.bottle_id!r})"

    # -- the verbs -----------------------------------------------------------------------------
    def pending(self) -> list[Proposal]:
        """Proposals without a decision, oldest first (a malformed one is an error, not skipped)."""
        out = self._call("pending")
        items = out.get("proposals")
        if not isinstance(items, list):
            raise self._bad("pending", "no 'proposals' list")
        self.refused = refused_lines(self.bottle_id, out.get("refused"))
        try:
            return [Proposal.from_dict(item) for item in items]
        except ChannelError as exc:
            raise self._bad("pending", str(exc)) from None

    def decide(self, decision: Decision, grant: dict[str, Any] | None = None) -> dict[str, Any]:
        """Record ``decision`` in the spool, after ``grant`` (so a retry after "approved" works)."""
        return self._call("decide", {"decision": decision.to_dict(), "grant": grant})

    def events(self, offset: int) -> Events:
        out = self._call("events", {"offset": offset})
        lines, nxt = out.get("lines"), out.get("offset")
        if not isinstance(lines, list) or isinstance(nxt, bool) or not isinstance(nxt, int):
            raise self._bad("events", "no 'lines' list and 'offset'")
        records = [line for line in lines if isinstance(line, dict)]
        # Where the chunk begins: past what the proxy's log dropped, or 0 when the log is shorter
        # than the offset asked for (the ctl says; an older one does not, and never skips ahead).
        start = out.get("start")
        if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= nxt:
            start = offset if nxt >= offset else 0
        return Events(start, nxt, line_offsets(start, nxt, records))

    def grants(self) -> dict[str, Any]:
        return self._call("grants")

    # -- the container -------------------------------------------------------------------------
    def incarnation(self) -> str:
        """The sidecar container's id: a resumed bottle's new sidecar starts a new log."""
        if self._incarnation is None:
            result = self.runner(["inspect", "-f", "{{.Id}}", self.container], "")
            if result.returncode != 0 or not result.stdout.strip():
                raise LinkError(f"bottle {self.bottle_id}: no sidecar container {self.container} "
                                f"({(result.stderr or '').strip() or 'not found'})", kind="unreachable")
            self._incarnation = result.stdout.strip()[:64]
        return self._incarnation

    # -- plumbing ------------------------------------------------------------------------------
    def _call(self, verb: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        stdin = json.dumps(payload) if payload is not None else ""
        result = self.runner([*self.command, verb], stdin)
        text = (result.stdout or "").strip()
        data: Any = None
        if text:
            try:
                data = json.loads(text.splitlines()[-1])
            except json.JSONDecodeError:
                data = None
        if isinstance(data, dict) and data.get("ok") is False:
            raise LinkError(f"bottle {self.bottle_id}: {verb}: {data.get('error') or 'failed'}",
                            kind=str(data.get("type") or "invalid"))
        if result.returncode != 0 or not isinstance(data, dict):
            detail = (result.stderr or "").strip().splitlines()
            why = detail[-1] if detail else (f"exit status {result.returncode}" if result.returncode else "no JSON answer")
            kind = "unreachable" if result.returncode in (1, 125, 126, 127) and not text else "io"
            raise LinkError(f"bottle {self.bottle_id}: cannot run supervise {verb} in {self.container}: {why}", kind=kind)
        return data

    def _bad(self, verb: str, why: str) -> LinkError:
        return LinkError(f"bottle {self.bottle_id}: supervise {verb} answered something unexpected: {why}", kind="invalid")
