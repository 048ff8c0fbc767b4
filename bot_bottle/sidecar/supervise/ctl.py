"""The host's side door into a sidecar's spool: ``python -m bot_bottle.sidecar.supervise.ctl VERB``.

The host runs this with ``docker exec -i <sidecar>``; the agent has no Docker socket and its proxy
never routes to the spool, so this channel is the operator's alone. JSON in on stdin, one JSON
document out on stdout. Verbs (docs/supervise.md):

    pending   -                                   {"proposals": [Proposal, ...]} (+ "refused": [{id, kind, why}])
    decide    {"decision": ..., "grant": ...|null} {"ok": true, "grant_added": bool}
    events    {"offset": N}                       {"offset": M, "lines": [{...}, ...]}
    grants    -                                   the grants document

An error is one JSON line ``{"ok": false, "error": "...", "type": "..."}`` on stdout and exit
status 1 (2 for a command line that names no verb). Types: ``invalid`` (bad input),
``unknown-proposal``, ``already-decided``, ``io``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

from bot_bottle.sidecar.egress.logfile import EARLIER, FIRST, part_marker
from bot_bottle.sidecar.supervise.channel import (
    DEFAULT_ROOT,
    AlreadyDecided,
    ChannelError,
    Decision,
    Spool,
    UnknownProposal,
    WriterFn,
    add_grant,
    forgery,
    read_grants,
    remove_grant,
    validate_grant,
)

DEFAULT_EVENTS_LOG = Path("/var/log/bottle/egress.jsonl")
# One call returns at most this much of the log; the caller asks again from the new offset.
MAX_EVENT_BYTES = 1024 * 1024
MAX_LISTED = 100  # pending proposals one ``pending`` answer lists at most


class CtlError(Exception):
    def __init__(self, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.kind = kind


def _input(stdin: TextIO) -> dict[str, Any]:
    text = stdin.read()
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CtlError(f"stdin: not valid JSON (line {exc.lineno}): {exc.msg}") from None
    if not isinstance(data, dict):
        raise CtlError("stdin: expected a JSON object")
    return data


def do_pending(spool: Spool, writer: WriterFn | None = None) -> dict[str, Any]:
    """The waiting proposals, and apart from them those refused (``channel.forgery``): never
    listed, so never decided, and expired at once, so each is reported once."""
    # The oldest first, and no more than any writer makes (the server's 20 asks, the proxy's
    # 10 holds): the host reads the whole answer into memory, so a spool that holds thousands
    # (a sidecar daemon gone wrong) must not make it unbounded.
    listed, refused = [], []
    for proposal in spool.pending()[:MAX_LISTED]:
        why = forgery(spool, proposal, writer)
        if why is None:
            listed.append(proposal.to_dict())
        else:
            refused.append({"id": proposal.id, "kind": proposal.kind, "why": why})
            _expire_refused(spool, proposal.id, why)
    return {"proposals": listed, **({"refused": refused} if refused else {})}


def _expire_refused(spool: Spool, proposal_id: str, why: str) -> None:
    try:
        spool.expire(proposal_id, f"refused: {why}")
    except (ChannelError, OSError):
        pass  # listed as refused again by the next ``pending``; never decided either way


def do_decide(spool: Spool, request: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(request) - {"decision", "grant"})
    if unknown:
        raise CtlError(f"stdin: unknown key {unknown[0]!r}")
    if "decision" not in request:
        raise CtlError("stdin.decision: required")
    decision = Decision.from_dict(request["decision"])
    grant = request.get("grant")
    proposal = spool.get(decision.id)
    if proposal is None:
        raise UnknownProposal(f"no proposal {decision.id} in the spool")
    decision = decision.check_against(proposal)
    if grant is not None:
        if not decision.granted:
            raise CtlError(f"stdin.grant: a {decision.verdict!r} decision grants nothing")
        grant = validate_grant(grant)
    # No expiry can decide between the check, the grant and the decision (``Spool.deciding``).
    with spool.deciding():
        existing = spool.decision_for(decision.id)
        if existing is not None:
            raise AlreadyDecided(f"proposal {decision.id} is already decided ({existing.verdict})")
        # Never listed by ``pending`` either: a decision for it comes from a host that did not ask.
        if (why := forgery(spool, proposal)) is not None:
            raise CtlError(f"proposal {decision.id} is refused: {why}")
        # The grant goes first: whatever the agent retries after hearing "approved" already works.
        added = add_grant(spool.root, grant) if grant is not None else False
        try:
            spool.decide(decision)
        except AlreadyDecided:
            # Decided meanwhile by a writer that did not take the lock (an older server, or an
            # expiry that could not wait for it): what this decision granted is taken back (a
            # decision that did not stand changes nothing).
            if added:
                remove_grant(spool.root, grant)
            raise
    return {"ok": True, "grant_added": added}


def do_events(log: Path, request: dict[str, Any]) -> dict[str, Any]:
    """Whole JSON lines of the egress log from byte ``offset`` (or the first kept after it: the
    answer's ``start``); the new offset is after the last.

    Offsets are the whole log's, across the proxy's rotations (``logfile``: the current part's
    marker line says where it begins). An offset in a part rotated away since reads on from the
    current part's head, whose marker says how much was dropped. A log shorter than the offset
    was replaced (a new sidecar): reading starts again at 0. A partial last line is left for the
    next call. Lines that are not JSON objects are skipped.
    """
    offset = request.get("offset", 0)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise CtlError(f"stdin.offset: expected a byte offset >= 0, got {offset!r}")
    try:
        offset, chunk = _read_from(log, offset)
    except OSError as exc:
        raise CtlError(f"cannot read {log}: {exc.strerror or exc}", "io") from None
    end = chunk.rfind(b"\n")
    if end < 0:
        return {"start": offset, "offset": offset, "lines": []}
    lines: list[Any] = []
    for raw in chunk[: end + 1].splitlines():
        try:
            item = json.loads(raw)
        except (ValueError, RecursionError):
            # Torn or not UTF-8, but also a number too long to convert or nesting too deep to
            # parse: one bad line, never a failed read that stops every later sync.
            continue
        if isinstance(item, dict):
            lines.append(item)
    return {"start": offset, "offset": offset + end + 1, "lines": lines}


def _read_from(log: Path, offset: int) -> tuple[int, bytes]:
    """(where the chunk begins, up to ``MAX_EVENT_BYTES`` from there) in the log's parts.

    Each part is opened once and read through that one handle, so a rotation meanwhile cannot
    pair one file's marker with another's bytes.
    """
    with ExitStack() as stack:
        parts = []  # (handle, starts_at, size), oldest first
        for path in (log.with_name(log.name + FIRST), log.with_name(log.name + EARLIER), log):
            try:
                fh = stack.enter_context(open(path, "rb"))
            except FileNotFoundError:
                continue
            size = fh.seek(0, 2)
            fh.seek(0)
            marker = part_marker(fh.readline(4096))
            parts.append((fh, marker["starts_at"] if marker else 0, size))
        if not parts:
            return 0, b""
        _, last_start, last_size = parts[-1]
        if offset > last_start + last_size:
            offset = 0
        for fh, starts_at, size in parts:
            if offset < starts_at + size or fh is parts[-1][0]:
                offset = max(offset, starts_at)  # what was dropped before this part is past
                fh.seek(offset - starts_at)
                return offset, fh.read(MAX_EVENT_BYTES)
    return offset, b""


def run(verb: str, stdin: TextIO, *, root: Path, events_log: Path) -> dict[str, Any]:
    spool = Spool(root)
    if verb == "pending":
        return do_pending(spool)
    if verb == "decide":
        return do_decide(spool, _input(stdin))
    if verb == "events":
        return do_events(events_log, _input(stdin))
    if verb == "grants":
        return read_grants(root)
    raise CtlError(f"unknown verb {verb!r}")


def _error_type(exc: Exception) -> str:
    if isinstance(exc, CtlError):
        return exc.kind
    if isinstance(exc, UnknownProposal):
        return "unknown-proposal"
    if isinstance(exc, AlreadyDecided):
        return "already-decided"
    if isinstance(exc, OSError):
        return "io"
    return "invalid"


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    parser = argparse.ArgumentParser(prog="python -m bot_bottle.sidecar.supervise.ctl", description=__doc__.splitlines()[0])
    parser.add_argument("verb", choices=("pending", "decide", "events", "grants"))
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="the spool folder")
    parser.add_argument("--events-log", type=Path, default=DEFAULT_EVENTS_LOG, help="the egress log")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        if exc.code == 0:
            return 0
        stdout.write(json.dumps({"ok": False, "error": "usage: ctl {pending,decide,events,grants}", "type": "usage"}) + "\n")
        return 2
    try:
        result = run(args.verb, stdin, root=args.root, events_log=args.events_log)
    except (CtlError, ChannelError, OSError) as exc:
        message = str(exc) if not isinstance(exc, OSError) else f"{exc.filename or 'spool'}: {exc.strerror or exc}"
        stdout.write(json.dumps({"ok": False, "error": message, "type": _error_type(exc)}) + "\n")
        return 1
    stdout.write(json.dumps(result, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
