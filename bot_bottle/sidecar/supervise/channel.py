"""Proposals, decisions and grants: the formats of docs/supervise.md and the spool that holds them.

The spool is a folder in the sidecar's own filesystem (never on the agent's volume)::

    <root>/proposals/<id>.json   a Proposal still waiting, written once, atomically
    <root>/decisions/<id>.json   its Decision, written once, atomically, by the host's ``ctl`` only
    <root>/expired/<id>.json     an ``expired`` Decision a daemon wrote when its wait ended; it can
                                 only deny (whatever verdict it holds reads as ``expired``), and it
                                 stands over a decision in ``decisions`` (a daemon cannot approve)
    <root>/archive/<id>.json     a Proposal once decided, moved out of ``proposals`` so listing
                                 the pending ones never reads the decided ones; only the newest
                                 ``MAX_ARCHIVED`` are kept (with their decisions)
    <root>/grants.json           what approvals granted (the host's ``ctl`` only); the proxy and
                                 the git-gate re-read it
    <root>/push-uses/<key>-<n>.json  the git-gate's record of the push grants it used up: it only
                                 takes grants away (``read_grants`` marks those entries used)
    <root>/push-findings/<id>.json   the git-gate's record of a push it rejected

Every write is a temp file in the same folder renamed (or hard-linked) into place, so a reader
sees a whole document or none. Grants are changed under an exclusive ``flock`` so two ``ctl``
calls never lose each other's update.

In the sidecar image each daemon account may write only what cannot grant (``SHARED_FOLDERS``,
applied by the sidecar's init): proposals, expiries and archived proposals of its own (sticky
folders), the gate its records; decisions and grants are root's (the host's ``ctl``) alone.

Stdlib only: this module runs in the sidecar and is imported on the host.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pwd
import re
import secrets
import stat
import tempfile
import time
import unicodedata
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The spool's folders and files, in a module of their own for the sidecar's init.
from bot_bottle.sidecar.supervise.spool_layout import (  # noqa: F401 - the channel's own names
    ARCHIVE_DIR,
    DECIDE_LOCK_FILE,
    DECISIONS_DIR,
    EXPIRED_DIR,
    GRANTS_FILE,
    GRANTS_LOCK_FILE,
    PROPOSALS_DIR,
    PUSH_FINDINGS_DIR,
    PUSH_USES_DIR,
    SHARED_FOLDERS,
    SPOOL_MODE,
)

DEFAULT_ROOT = Path("/var/lib/bottle/supervise")
EXPIRE_LOCK_WAIT_S = 2.0  # how long an expiry waits for a ``ctl decide`` under way to finish
_TMP_PREFIX = ".tmp-"

KINDS = ("egress", "capability", "push-exception", "token-use")
VERDICTS = ("approved", "modified", "rejected", "expired")
GRANT_KINDS = ("route", "push", "token-use")

# Ids become file names: one safe path component, nothing that could climb out of the spool.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_METHOD = re.compile(r"^[A-Za-z]{1,20}$")
# Debian package names as the capability build takes them (``backend.registry``): lower case, no
# version pin or architecture. Anything else would be approved only to fail the build afterwards.
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]{1,127}$")
_DETECTOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
FINDING_ID = re.compile(r"^gf-[0-9a-f]{12}$")  # hook.finding_id
# Rejected pushes remembered for ``request-push-exception``: the newest, each with at most this
# many ref updates (a push of more cannot be excepted; the agent can push fewer at a time).
MAX_PUSH_FINDINGS = 200
MAX_PUSH_UPDATES = 64
MAX_PLACES = 20  # of a rejected push's findings, shown to the operator (the rest counted)
MAX_PLACE = 300
MAX_JUSTIFICATION = 4000
MAX_DOCKERFILE = 8000
MAX_TIMEOUT_S = 24 * 3600
# What one proposal may hold: the agent writes it, and the server, the ctl, the host's database
# and the operator's screen all read it, so nothing in it is unbounded.
MAX_LIST_ITEMS = 32  # entries in one list of a payload (paths, methods, ports, packages, detectors)
MAX_ITEM_CHARS = 256  # characters in one entry of such a list
MAX_PROPOSAL_BYTES = 16 * 1024  # the whole proposal as compact UTF-8 JSON, justification included
MAX_HELD_PATH = 2048  # of a held request's path, shown to the operator (the rest is cut)
# Decided proposals kept (with their decisions): the host never reads them back (its own database
# holds what it decided; a proposal gone from ``pending`` is one the agent stopped waiting for),
# but a late ``decide`` should still hear "already decided" and ``request-token-use`` should
# still find a recent held request.
MAX_ARCHIVED = 200

# Who may write where in the spool: ``spool_layout.SHARED_FOLDERS``.


class ChannelError(ValueError):
    """A malformed proposal, decision or grant, or a spool operation that cannot be done."""


class AlreadyDecided(ChannelError):
    """The proposal already has a decision; the first one stands."""


class UnknownProposal(ChannelError):
    """No proposal with that id is in the spool."""


# ---------------------------------------------------------------------------------------------
# Validation helpers


def check_id(value: Any, where: str = "id") -> str:
    if not isinstance(value, str) or not _ID.match(value) or ".." in value:
        raise ChannelError(f"{where}: expected an id of letters, digits, '.', '_' or '-', got {value!r}")
    return value


def new_id(kind: str = "p") -> str:
    """A fresh id that sorts by creation time: ``egress-20261122T054001-1a2b3c4d``."""
    prefix = kind if kind in KINDS else "p"
    return f"{prefix}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"


def _obj(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ChannelError(f"{where}: expected an object")
    return data


def _no_unknown(obj: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(obj) - known)
    if unknown:
        raise ChannelError(f"{where}: unknown key {unknown[0]!r}")


def _str(obj: Mapping[str, Any], key: str, where: str, *, required: bool = True, empty: bool = False) -> str:
    if key not in obj:
        if required:
            raise ChannelError(f"{where}.{key}: required")
        return ""
    value = obj[key]
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise ChannelError(f"{where}.{key}: expected a{'' if empty else ' non-empty'} string")
    return value


def _list(obj: Mapping[str, Any], key: str, where: str, what: str, max_items: int = MAX_LIST_ITEMS) -> list[Any]:
    """``obj[key]`` as a list of at most ``max_items`` entries (counted before anything else is
    looked at, so a huge list costs nothing to refuse)."""
    value = obj.get(key, [])
    if value is None:
        value = []
    if not isinstance(value, list):
        raise ChannelError(f"{where}.{key}: expected a list of {what}")
    if len(value) > max_items:
        raise ChannelError(f"{where}.{key}: {len(value)} entries, at most {max_items} are allowed")
    return value


def _str_list(
    obj: Mapping[str, Any], key: str, where: str, pattern: re.Pattern[str] | None = None, *,
    max_items: int = MAX_LIST_ITEMS, max_chars: int = MAX_ITEM_CHARS,
) -> list[str]:
    value = _list(obj, key, where, "non-empty strings", max_items)
    if not all(isinstance(v, str) and v for v in value):
        raise ChannelError(f"{where}.{key}: expected a list of non-empty strings")
    for i, v in enumerate(value):
        if len(v) > max_chars:
            raise ChannelError(f"{where}.{key}[{i}]: {len(v)} characters, at most {max_chars} are allowed")
    if pattern is not None:
        for i, v in enumerate(value):
            if not pattern.match(v):
                raise ChannelError(f"{where}.{key}[{i}]: {v!r} is not allowed here")
    return list(dict.fromkeys(value))


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ChannelError(f"{where}: expected a number")
    return value


def _host(value: Any, where: str) -> str:
    """A host the proxy would accept in a route (same parser) and a manifest would accept too
    (same rule), normalised."""
    from bot_bottle.sidecar.egress.policy import Policy, PolicyError

    if not isinstance(value, str) or not value.strip():
        raise ChannelError(f"{where}: expected a host name")
    if "/" in value:
        raise ChannelError(f"{where}: {value!r}: give the host name only, without a scheme or path")
    _check_manifest_host(value, where)
    try:
        policy = Policy.from_dict({"version": 2, "routes": [{"host": value}]})
    except PolicyError as exc:
        raise ChannelError(f"{where}: {str(exc).split(': ', 1)[-1]}") from None
    host = policy.routes[0].host
    _check_manifest_host(host, where)
    return host


def _check_manifest_host(host: str, where: str) -> None:
    """Refuse a host the manifest refuses in a route: a granted route is saved there on request,
    and one it refuses would be a grant in force that can never be written down."""
    from bot_bottle.sidecar.egress.hosts import route_host_problem

    problem = route_host_problem(host)
    if problem:
        raise ChannelError(f"{where}: {host!r}: {problem}")


def _ports(obj: Mapping[str, Any], where: str) -> list[int]:
    value = _list(obj, "ports", where, "port numbers")
    for i, port in enumerate(value):
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ChannelError(f"{where}.ports[{i}]: expected a port number 1-65535, got {port!r}")
    return list(dict.fromkeys(value))


def unsafe_char(text: str) -> str | None:
    """The first character of ``text`` that is whitespace, a line break, a control character or
    one that shows nothing (Unicode categories Z* and C*), or None."""
    return next((c for c in text if unicodedata.category(c)[0] in "ZC"), None)


def percent_encode_unsafe(text: str) -> str:
    """``text`` with every character ``unsafe_char`` would name percent-encoded as its UTF-8
    bytes (a lone surrogate from ``surrogateescape`` as the byte it stands for)."""
    if unsafe_char(text) is None:
        return text
    out = []
    for c in text:
        if unicodedata.category(c)[0] not in "ZC":
            out.append(c)
            continue
        raw = c.encode("utf-8", "surrogateescape" if "\udc80" <= c <= "\udcff" else "surrogatepass")
        out.append("".join(f"%{b:02X}" for b in raw))
    return "".join(out)


def _check_path_chars(path: str, where: str) -> None:
    # A path is shown to the operator and becomes part of a route: a space, a line break or an
    # invisible character would let it read as something else (another line, another path).
    bad = unsafe_char(path)
    if bad is not None:
        name = unicodedata.name(bad, "a control character")
        raise ChannelError(f"{where}: contains U+{ord(bad):04X} ({name}); a path has no whitespace, "
                           "line breaks, control or invisible characters (percent-encode them)")


def _paths(obj: Mapping[str, Any], where: str) -> list[str]:
    from bot_bottle.sidecar.egress.policy import path_problem  # the proxy's own rule

    paths = _str_list(obj, "paths", where)
    for i, path in enumerate(paths):
        _check_path_chars(path, f"{where}.paths[{i}]")
        problem = path_problem(path)
        if problem:
            raise ChannelError(f"{where}.paths[{i}]: {problem}")
    return paths


def _sha(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not _SHA.match(value):
        raise ChannelError(f"{where}.{key}: expected a full hex commit id (40 or 64 characters), got {value!r}")
    return value


def _finding_id(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not FINDING_ID.match(value.strip()):
        raise ChannelError(f"{where}.{key}: expected the finding id the git-gate printed (gf- and 12 hex digits)")
    return value.strip()


def _ref(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = _str(obj, key, where)
    if not value.startswith("refs/") or any(c.isspace() for c in value) or ".." in value:
        raise ChannelError(f"{where}.{key}: expected a full ref name such as refs/heads/main, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------
# Payloads


def validate_payload(kind: str, payload: Any, where: str = "payload") -> dict[str, Any]:
    """The payload of a ``kind`` proposal (or a modified one), checked and in canonical form.

    Payloads never carry secret values; nothing here could hold one but free text, which the
    operator reads.
    """
    if kind not in KINDS:
        raise ChannelError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    obj = _obj(payload, where)
    if kind == "egress":
        _no_unknown(obj, {"host", "paths", "methods", "ports"}, where)
        return {
            "host": _host(obj.get("host"), f"{where}.host"),
            "paths": _paths(obj, where),
            "methods": [m.upper() for m in _str_list(obj, "methods", where, _METHOD)],
            "ports": _ports(obj, where),
        }
    if kind == "capability":
        _no_unknown(obj, {"packages", "dockerfile"}, where)
        packages = _str_list(obj, "packages", where, _PACKAGE)
        dockerfile = obj.get("dockerfile", "") or ""
        if not isinstance(dockerfile, str):
            raise ChannelError(f"{where}.dockerfile: expected a string of Dockerfile lines")
        if len(dockerfile) > MAX_DOCKERFILE:
            raise ChannelError(f"{where}.dockerfile: longer than {MAX_DOCKERFILE} characters")
        if not packages and not dockerfile.strip():
            raise ChannelError(f"{where}: name packages or give Dockerfile lines")
        return {"packages": packages, "dockerfile": dockerfile}
    if kind == "push-exception":
        # "detectors" and "places" are the gate's own (``push_findings``), copied in by the
        # supervise server: what the operator reads is what the gate found, not the agent's word.
        _no_unknown(obj, {"repo", "ref", "old", "new", "finding", "detectors", "places"}, where)
        out = {
            "repo": _str(obj, "repo", where),
            "ref": _ref(obj, "ref", where),
            "old": _sha(obj, "old", where),
            "new": _sha(obj, "new", where),
            "finding": _finding_id(obj, "finding", where),
        }
        if "detectors" in obj or "places" in obj:
            out["detectors"] = _str_list(obj, "detectors", where, _DETECTOR)
            # The gate's own list: MAX_PLACES places and an "and N more" line (record_push_findings).
            out["places"] = _str_list(obj, "places", where, max_items=MAX_PLACES + 1, max_chars=MAX_PLACE)
        return out
    # token-use
    _no_unknown(obj, {"hold_id", "method", "host", "path", "route", "detectors"}, where)
    return {
        "hold_id": check_id(obj.get("hold_id"), f"{where}.hold_id"),
        "method": _str(obj, "method", where).upper(),
        "host": _str(obj, "host", where),
        "path": _str(obj, "path", where, empty=True),
        "route": _str(obj, "route", where),
        "detectors": _str_list(obj, "detectors", where, _DETECTOR),
    }


def egress_route(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The policy v2 route an approved (or modified) egress payload grants.

    Default ports are the manifest's (80, 443); paths and methods become one ``matches`` entry.
    No ``auth``: a granted route never injects a credential.
    """
    p = validate_payload("egress", dict(payload))
    route: dict[str, Any] = {"host": p["host"], "ports": p["ports"] or [80, 443]}
    match: dict[str, Any] = {}
    if p["paths"]:
        match["paths"] = p["paths"]
    if p["methods"]:
        match["methods"] = p["methods"]
    if match:
        route["matches"] = [match]
    return route


# ---------------------------------------------------------------------------------------------
# Proposal and Decision


@dataclass(frozen=True)
class Proposal:
    id: str
    kind: str
    justification: str
    payload: dict[str, Any]
    timeout_s: float
    created_at: float = field(default_factory=lambda: round(time.time(), 3))

    def __post_init__(self) -> None:
        check_id(self.id, "proposal.id")
        if self.kind not in KINDS:
            raise ChannelError(f"proposal.kind: expected one of {', '.join(KINDS)}, got {self.kind!r}")
        if not isinstance(self.justification, str) or not self.justification.strip():
            raise ChannelError("proposal.justification: required (say why the agent needs this)")
        if len(self.justification) > MAX_JUSTIFICATION:
            raise ChannelError(f"proposal.justification: longer than {MAX_JUSTIFICATION} characters")
        timeout = _number(self.timeout_s, "proposal.timeout_s")
        if not 0 < timeout <= MAX_TIMEOUT_S:
            raise ChannelError(f"proposal.timeout_s: expected 0 < seconds <= {MAX_TIMEOUT_S}, got {timeout!r}")
        _number(self.created_at, "proposal.created_at")
        object.__setattr__(self, "payload", validate_payload(self.kind, self.payload, "proposal.payload"))
        size = self.size()
        if size > MAX_PROPOSAL_BYTES:
            raise ChannelError(f"proposal: {size} bytes as JSON, at most {MAX_PROPOSAL_BYTES} are allowed "
                               "(justification included): shorten the justification or ask for less")

    def size(self) -> int:
        """Bytes of the proposal as compact UTF-8 JSON (what ``MAX_PROPOSAL_BYTES`` limits)."""
        try:
            return len(json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        except UnicodeEncodeError:
            # A lone surrogate (an undecoded byte): no UTF-8 reader (the host's database) takes it,
            # so it is a malformed proposal, refused like any other, not a crash of its reader.
            raise ChannelError("proposal: holds a lone surrogate, not valid Unicode text") from None

    @classmethod
    def new(cls, kind: str, payload: Mapping[str, Any], justification: str, timeout_s: float) -> Proposal:
        return cls(id=new_id(kind), kind=kind, justification=justification, payload=dict(payload), timeout_s=timeout_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "created_at": self.created_at,
            "justification": self.justification,
            "payload": dict(self.payload),
            "timeout_s": self.timeout_s,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Proposal:
        obj = _obj(data, "proposal")
        _no_unknown(obj, {"id", "kind", "created_at", "justification", "payload", "timeout_s"}, "proposal")
        for key in ("id", "kind", "created_at", "justification", "payload", "timeout_s"):
            if key not in obj:
                raise ChannelError(f"proposal.{key}: required")
        return cls(
            id=obj["id"], kind=obj["kind"], justification=obj["justification"], payload=obj["payload"],
            timeout_s=obj["timeout_s"], created_at=obj["created_at"],
        )


@dataclass(frozen=True)
class Decision:
    id: str
    verdict: str
    reason: str = ""
    change: dict[str, Any] | None = None  # the modified payload, only with verdict "modified"
    decided_at: float = field(default_factory=lambda: round(time.time(), 3))
    operator: str = ""

    def __post_init__(self) -> None:
        check_id(self.id, "decision.id")
        if self.verdict not in VERDICTS:
            raise ChannelError(f"decision.verdict: expected one of {', '.join(VERDICTS)}, got {self.verdict!r}")
        if not isinstance(self.reason, str):
            raise ChannelError("decision.reason: expected a string")
        if not isinstance(self.operator, str):
            raise ChannelError("decision.operator: expected a string")
        _number(self.decided_at, "decision.decided_at")
        if self.verdict == "modified":
            if not isinstance(self.change, dict):
                raise ChannelError("decision.change: a 'modified' decision carries the modified payload")
        elif self.change is not None:
            raise ChannelError(f"decision.change: only a 'modified' decision carries a change, not {self.verdict!r}")

    @property
    def granted(self) -> bool:
        return self.verdict in ("approved", "modified")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "verdict": self.verdict,
            "reason": self.reason,
            "change": dict(self.change) if self.change is not None else None,
            "decided_at": self.decided_at,
            "operator": self.operator,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Decision:
        obj = _obj(data, "decision")
        _no_unknown(obj, {"id", "verdict", "reason", "change", "decided_at", "operator"}, "decision")
        for key in ("id", "verdict"):
            if key not in obj:
                raise ChannelError(f"decision.{key}: required")
        kwargs: dict[str, Any] = {"id": obj["id"], "verdict": obj["verdict"]}
        for key in ("reason", "change", "decided_at", "operator"):
            if key in obj and not (key in ("reason", "operator") and obj[key] is None):
                kwargs[key] = obj[key]
        return cls(**kwargs)

    def check_against(self, proposal: Proposal) -> Decision:
        """This decision with its change validated against the proposal's kind (canonical form)."""
        if self.id != proposal.id:
            raise ChannelError(f"decision.id: {self.id!r} does not answer proposal {proposal.id!r}")
        if self.change is None:
            return self
        change = validate_payload(proposal.kind, self.change, "decision.change")
        return Decision(self.id, self.verdict, self.reason, change, self.decided_at, self.operator)


def held_request_proposal(
    method: str, host: str, path: str, route: str, detectors: list[str] | tuple[str, ...], timeout_s: float,
) -> Proposal:
    """The proxy's own ``token-use`` proposal for a request DLP ``supervise`` holds.

    Its id is also its ``hold_id``: the proxy's 403 names it, and the agent passes it to
    ``request-token-use``, which copies this payload (what the proxy saw, not what the agent says).
    The path should be given without its query string (queries can carry the very secret).
    """
    pid = new_id("token-use")
    # The request's own bytes, as the operator should read them: an undecodable byte (mitmproxy
    # hands it over as a lone surrogate, which no proposal can hold), a control or an invisible
    # character percent-encoded, so neither breaks the proposal nor reads as something else.
    method, path = percent_encode_unsafe(method), percent_encode_unsafe(path)
    if len(path) > MAX_HELD_PATH:  # the proposal must fit MAX_PROPOSAL_BYTES; the grant never names a path
        path = path[:MAX_HELD_PATH] + "...(cut)"
    payload = {"hold_id": pid, "method": method, "host": host, "path": path, "route": route, "detectors": list(detectors)}
    names = ", ".join(detectors) or "a detector"
    justification = f"held by the proxy: DLP ({names}) matched a {method.upper()} to {host} on route {route}"
    return Proposal(id=pid, kind="token-use", justification=justification, payload=payload, timeout_s=timeout_s)


# ---------------------------------------------------------------------------------------------
# Atomic files


def _is_shared(folder: Path) -> bool:
    """A spool folder shared by the sidecar's daemon accounts through its group: the init makes
    the spool setgid (``hand_out_folders``), and a folder made inside one inherits the bit."""
    try:
        return bool(folder.stat().st_mode & stat.S_ISGID)
    except FileNotFoundError:
        return False


def _make_folder(folder: Path) -> None:
    """``folder`` and its parents; in a shared spool, with its mode from ``SHARED_FOLDERS`` (the
    sidecar's init makes them all before any daemon starts, so this is for a spool made by hand)."""
    if folder.is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    if _is_shared(folder):
        try:
            folder.chmod(SHARED_FOLDERS.get(folder.name, (SPOOL_MODE, "root"))[0])
        except PermissionError:
            pass  # another account made it first, and made it so


def _file_mode(folder: Path, mode: int) -> int:
    """``mode`` for a file in ``folder``; in a shared spool the group may read what the owner
    may, never write it (no account changes another's file)."""
    return mode | (mode & 0o400) >> 3 if _is_shared(folder) else mode


def _write_temp(path: Path, data: Mapping[str, Any], mode: int) -> str:
    """``data`` as JSON in a new private file beside ``path``, synced and given its final mode;
    its name. The caller moves it into place, or removes it."""
    _make_folder(path.parent)
    mode = _file_mode(path.parent, mode)
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _write_atomic(path: Path, data: Mapping[str, Any], mode: int = 0o600) -> None:
    tmp = _write_temp(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _create_atomic(path: Path, data: Mapping[str, Any], mode: int = 0o600) -> bool:
    """Write ``path`` whole, only if it does not exist yet; False if it did (nothing changed)."""
    tmp = _write_temp(path, data, mode)
    try:
        try:
            os.link(tmp, path)  # atomic and exclusive: fails if a decision is already there
        except FileExistsError:
            return False
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


def _stamp_archived(path: Path) -> None:
    """Make ``path``'s mtime the time it was archived: pruning goes by that, so a proposal that
    waited long and was just decided is the newest, and its waiter still finds the decision.
    The host's ``ctl`` may not touch another account's file in a shared spool: it archives a
    copy of its own instead (the folder is root's, so it may replace the file)."""
    try:
        os.utime(path)
        return
    except PermissionError:
        pass
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text)
        os.chmod(tmp, _file_mode(path.parent, 0o600))
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def _read_json(path: Path) -> Any | None:
    """The document in ``path`` (None when there is none); ``ChannelError`` for one that cannot
    be read as JSON, whatever the reason, so a reader that skips a malformed file (``Spool._parse``)
    skips it too, and one bad file never hides the others."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise ChannelError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ChannelError(f"{path}: not valid JSON (line {exc.lineno}): {exc.msg}") from None
    except (ValueError, RecursionError):
        # An integer too long to convert, or nesting too deep to parse.
        raise ChannelError(f"{path}: not JSON this reader can take (a number too long or nesting too deep)") from None


# ---------------------------------------------------------------------------------------------
# The spool


class Spool:
    """Proposals and decisions in ``root`` (see the module docstring)."""

    def __init__(self, root: str | Path = DEFAULT_ROOT) -> None:
        self.root = Path(root)

    @property
    def proposals_dir(self) -> Path:
        return self.root / PROPOSALS_DIR

    @property
    def decisions_dir(self) -> Path:
        return self.root / DECISIONS_DIR

    @property
    def expired_dir(self) -> Path:
        return self.root / EXPIRED_DIR

    @property
    def archive_dir(self) -> Path:
        return self.root / ARCHIVE_DIR

    def ensure(self) -> None:
        """Create the folders; the spool is the sidecar's alone: mode 700, or in the sidecar
        image the daemon accounts' group's (``_is_shared``)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not _is_shared(self.root):
            self.root.chmod(0o700)
        for folder in (self.proposals_dir, self.decisions_dir, self.archive_dir, self.expired_dir):
            _make_folder(folder)

    def submit(self, proposal: Proposal) -> Proposal:
        self.ensure()
        if not _create_atomic(self.proposals_dir / f"{proposal.id}.json", proposal.to_dict()):
            raise ChannelError(f"proposal {proposal.id} already exists")
        return proposal

    def get(self, proposal_id: str) -> Proposal | None:
        """The proposal, waiting or decided (archived); None if the spool has (or kept) no such one."""
        name = f"{check_id(proposal_id)}.json"
        # Waiting first: a proposal moves from there to the archive (atomically), never back.
        data = _read_json(self.proposals_dir / name)
        if data is None:
            data = _read_json(self.archive_dir / name)
        return None if data is None else Proposal.from_dict(data)

    def proposals(self) -> list[Proposal]:
        """Every proposal in the spool, waiting or archived, oldest first; one that does not parse is skipped."""
        out = self._parse(self._files(self.proposals_dir)) + self._parse(self._files(self.archive_dir))
        out.sort(key=lambda p: (p.created_at, p.id))
        return out

    def pending(self) -> list[Proposal]:
        """Proposals without a decision, oldest first.

        Only the waiting ones are read: a decided one is moved to the archive when its decision
        is written, and one found decided here (its decider stopped between the two) is moved
        now, unread.
        """
        waiting, moved = [], False
        for path in self._files(self.proposals_dir):
            if self._is_decided(path.name):
                moved = self._move_to_archive(path.stem) or moved
            else:
                waiting.append(path)
        if moved:
            self._prune_archive()  # once, however many were moved (an old spool moves them all)
        out = self._parse(waiting)
        out.sort(key=lambda p: (p.created_at, p.id))
        return out

    @staticmethod
    def _files(folder: Path) -> list[Path]:
        if not folder.is_dir():
            return []
        return [p for p in folder.glob("*.json") if not p.name.startswith(_TMP_PREFIX)]

    @staticmethod
    def _parse(paths: Sequence[Path]) -> list[Proposal]:
        out: list[Proposal] = []
        for path in paths:
            try:
                data = _read_json(path)
                if data is not None:
                    out.append(Proposal.from_dict(data))
            except ChannelError:
                continue
        return out

    def _archive(self, proposal_id: str) -> None:
        """Move a decided proposal out of the waiting ones, then keep only the newest archived."""
        if self._move_to_archive(proposal_id):
            self._prune_archive()

    def _is_decided(self, name: str) -> bool:
        return (self.decisions_dir / name).exists() or (self.expired_dir / name).exists()

    def _move_to_archive(self, proposal_id: str) -> bool:
        """Move a decided proposal to the archive; False when it is gone already, or is another
        account's (in a shared spool an account moves only its own; ``ctl`` moves any)."""
        name = f"{proposal_id}.json"
        _make_folder(self.archive_dir)
        try:
            os.replace(self.proposals_dir / name, self.archive_dir / name)
        except FileNotFoundError:
            return False  # another process archived it (or pruned it) first
        except PermissionError:
            return False  # another account's: its writer or the host's ctl moves it
        _stamp_archived(self.archive_dir / name)
        return True

    def _prune_archive(self) -> None:
        """Delete the oldest archived proposals, and their decisions, beyond ``MAX_ARCHIVED``
        (in a shared spool, those this account may delete; the host's ``ctl`` deletes any)."""
        for path in _oldest_beyond(self.archive_dir, MAX_ARCHIVED):
            for gone in (path, self.decisions_dir / path.name, self.expired_dir / path.name):
                try:
                    gone.unlink(missing_ok=True)
                except PermissionError:
                    continue

    def decision_for(self, proposal_id: str) -> Decision | None:
        """The proposal's decision: its expiry if a daemon wrote one (it stands over anything
        in ``decisions``, and can only deny), else the host's decision, else None."""
        name = f"{check_id(proposal_id)}.json"
        expiry = self._expiry(proposal_id, name)
        if expiry is not None:
            return expiry
        data = _read_json(self.decisions_dir / name)
        return None if data is None else Decision.from_dict(data)

    def _expiry(self, proposal_id: str, name: str) -> Decision | None:
        """``expired/<id>.json`` as an ``expired`` decision whatever it says: a daemon's file can
        deny, never approve (one that does not parse denies too)."""
        try:
            data = _read_json(self.expired_dir / name)
        except ChannelError:
            data = {}
        if data is None:
            return None
        reason = data.get("reason") if isinstance(data, dict) else None
        return Decision(proposal_id, "expired", reason if isinstance(reason, str) else "no decision in time",
                        operator="timeout")

    def decide(self, decision: Decision) -> Decision:
        """Record the decision; raise ``UnknownProposal`` or ``AlreadyDecided`` (the first one
        stands, and an expiry stands over any other)."""
        proposal = self.get(decision.id)
        if proposal is None:
            raise UnknownProposal(f"no proposal {decision.id} in the spool")
        decision = decision.check_against(proposal)
        target = self.decisions_dir / f"{decision.id}.json"
        if self._expiry(decision.id, target.name) is not None or not _create_atomic(target, decision.to_dict()):
            raise self._already_decided(decision.id)
        if self._expiry(decision.id, target.name) is not None:
            # An expiry that did not wait for the decide lock came in between: it stands (the
            # agent may have heard it), and this decision is taken back.
            target.unlink(missing_ok=True)
            raise self._already_decided(decision.id)
        self._archive(decision.id)
        return decision

    def _already_decided(self, proposal_id: str) -> AlreadyDecided:
        existing = self.decision_for(proposal_id)
        verdict = existing.verdict if existing else "?"
        return AlreadyDecided(f"proposal {proposal_id} is already decided ({verdict})")

    @contextmanager
    def deciding(self, wait_s: float | None = None) -> Iterator[None]:
        """Exclusive against every other ``deciding`` on this spool, in any process.

        ``ctl decide`` writes the grant before the decision (the agent's retry after "approved"
        must already pass) and takes the grant back if an expiry decided first. Without this
        lock that grant would be in force, for a moment, for a proposal its agent heard
        "expired" about: an agent that knows its own timeout could time requests into it.
        Under it the expiry waits, then finds the approval and tells the agent that.
        """
        with _locked(self.root, DECIDE_LOCK_FILE, wait_s, shared=True):
            yield

    def expire(self, proposal_id: str, reason: str = "") -> Decision:
        """Mark a proposal nobody decided in time as expired (in ``expired``, which only denies);
        if a decision won the race, that one."""
        decision = Decision(proposal_id, "expired", reason or "no decision in time", operator="timeout")
        try:
            # Bounded: the server and the proxy expire from their event loops, which a
            # ``ctl decide`` stuck on a slow disk must not hold up for long.
            with self.deciding(wait_s=EXPIRE_LOCK_WAIT_S):
                return self._expire(decision)
        except (PermissionError, TimeoutError):
            # No lock (a spool made by hand, or a decider that does not let go): expiring
            # unlocked beats never expiring, which would leave the proposal waiting forever;
            # ``decide`` takes its decision back if this expiry lands in between.
            return self._expire(decision)

    def _expire(self, decision: Decision) -> Decision:
        existing = self.decision_for(decision.id)
        if existing is not None:
            return existing
        if self.get(decision.id) is None:
            raise UnknownProposal(f"no proposal {decision.id} in the spool")
        if _create_atomic(self.expired_dir / f"{decision.id}.json", decision.to_dict()):
            self._archive(decision.id)
        existing = self.decision_for(decision.id)
        assert existing is not None
        return existing

    def await_decision(self, proposal_id: str, timeout: float, poll: float = 0.25) -> Decision | None:
        """The decision once it is there, or None after ``timeout`` seconds."""
        looks = self._decision_looks(proposal_id, timeout, poll)
        try:
            while True:
                time.sleep(next(looks))
        except StopIteration as done:
            return done.value

    async def await_decision_async(self, proposal_id: str, timeout: float, poll: float = 0.25) -> Decision | None:
        """``await_decision`` for an event loop: sleeps without blocking other requests."""
        import asyncio  # only the MCP server awaits: whoever else imports the channel skips it

        looks = self._decision_looks(proposal_id, timeout, poll)
        try:
            while True:
                await asyncio.sleep(next(looks))
        except StopIteration as done:
            return done.value

    def _decision_looks(self, proposal_id: str, timeout: float, poll: float) -> Generator[float, None, Decision | None]:
        """Looks for the decision until ``timeout``: yields each wait before the next look (the
        caller sleeps it, blocking or not) and returns the decision, or None once time is up."""
        deadline = time.monotonic() + timeout
        while True:
            decision = self._decision_or_none(proposal_id)
            if decision is not None:
                return decision
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            yield min(poll, left)

    def _decision_or_none(self, proposal_id: str) -> Decision | None:
        try:
            return self.decision_for(proposal_id)
        except ChannelError:
            return None  # cannot happen with atomic writers; treat as "not yet" rather than crash


# ---------------------------------------------------------------------------------------------
# Who wrote a proposal

# The accounts that write proposals in the sidecar image's spool (``sidecar.init`` makes them):
# the proxy its held requests, the MCP server the agent's asks. Each file is its writer's, so the
# host's ``ctl`` (root) can tell them apart whatever a proposal says of itself.
PROXY_WRITER = "bottle-proxy"
SERVER_WRITER = "bottle-supervise"


def is_held_request(proposal: Proposal) -> bool:
    """The proxy's own proposal for a request it holds (``held_request_proposal``)."""
    return proposal.kind == "token-use" and proposal.payload.get("hold_id") == proposal.id


def detector_ids(labels: Sequence[Any]) -> list[str]:
    """Finding labels as detector ids, each once: ``known-secret:NAME (base64)`` is
    ``known-secret:NAME`` (a proposal's detector holds no spaces; the encoding stays in the
    gate's ``places``)."""
    return list(dict.fromkeys(str(label).split(" (", 1)[0].strip() for label in labels))


def file_writer(path: Path) -> str:
    """The account that owns ``path`` (its writer: nobody changes another account's file)."""
    uid = path.stat().st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def proposal_writer(spool: Spool, proposal_id: str) -> str | None:
    """Who wrote proposal ``proposal_id`` (waiting or archived): an account name, ``""`` when the
    spool has no such file, None outside the sidecar image (one account writes everything)."""
    if not _is_shared(spool.root):
        return None
    name = f"{check_id(proposal_id)}.json"
    for folder in (spool.proposals_dir, spool.archive_dir):
        try:
            return file_writer(folder / name)
        except FileNotFoundError:
            continue
    return ""


WriterFn = Callable[[str], "str | None"]


def forgery(spool: Spool, proposal: Proposal, writer: WriterFn | None = None) -> str | None:
    """Why ``proposal`` is not what it says it is, or None.

    Any account in the spool's group can write a proposal file, so one the agent reached (a flaw
    in the MCP server) could make one that reads as the proxy's held request, or an
    ask whose request or findings are not what the proxy or the git-gate saw. Only its writer
    (the file's owner) and the records only the proxy and the gate write can be trusted."""
    writer = writer or (lambda pid: proposal_writer(spool, pid))
    who = writer(proposal.id)
    if who is None:
        return None  # not the sidecar image's spool: one account writes everything
    if who == "root":
        return None  # no daemon can make a root file: only the host's ctl and the sidecar's init run as root
    if is_held_request(proposal):
        return None if who == PROXY_WRITER else f"a held request written by {who or 'nobody'}, not by the proxy"
    if who != SERVER_WRITER:
        return f"a {proposal.kind} proposal written by {who or 'nobody'}, not by the MCP server"
    if proposal.kind == "token-use":
        return _held_mismatch(spool, proposal, writer)
    if proposal.kind == "push-exception":
        return _findings_mismatch(spool, proposal)
    return None


def _held_mismatch(spool: Spool, proposal: Proposal, writer: WriterFn) -> str | None:
    """An ask to release a held request must copy the proxy's own proposal of it."""
    hold_id = str(proposal.payload.get("hold_id", ""))
    try:
        held = spool.get(hold_id)
    except ChannelError:
        held = None
    if held is None or not is_held_request(held) or writer(hold_id) not in (PROXY_WRITER, "root"):
        return f"it names {hold_id!r}, which is no request the proxy held"
    if dict(held.payload, hold_id=hold_id) != proposal.payload:
        return f"its request is not the one the proxy held as {hold_id!r}"
    return None


def _findings_mismatch(spool: Spool, proposal: Proposal) -> str | None:
    """A push-exception must carry what the git-gate recorded of that push."""
    payload = proposal.payload
    finding = str(payload.get("finding", ""))
    record = push_findings(spool.root, finding)
    update = {k: payload.get(k) for k in ("ref", "old", "new")}
    if record is None or record.get("repo") != payload.get("repo") or update not in (record.get("updates") or []):
        return f"the git-gate rejected no such push as {finding!r}"
    if (list(payload.get("detectors") or []) != detector_ids(record.get("detectors") or [])
            or list(payload.get("places") or []) != list(record.get("places") or [])):
        return f"its findings are not what the git-gate recorded as {finding!r}"
    return None


# ---------------------------------------------------------------------------------------------
# Grants


def empty_grants() -> dict[str, list[Any]]:
    return {"routes": [], "pushes": [], "token_uses": []}


def _grants_doc(data: Any, path: Path) -> dict[str, list[Any]]:
    if data is None:
        return empty_grants()
    where = str(path)
    obj = _obj(data, where)
    _no_unknown(obj, {"routes", "pushes", "token_uses"}, where)
    doc = empty_grants()
    for key in doc:
        value = obj.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ChannelError(f"{where}: {key}: expected a list of objects")
        doc[key] = value
    return doc


def grants_path(root: str | Path = DEFAULT_ROOT) -> Path:
    return Path(root) / GRANTS_FILE


def read_grants(root: str | Path = DEFAULT_ROOT) -> dict[str, list[Any]]:
    """The grants document (an empty one when the file does not exist yet), with the push
    grants the git-gate used up (``push-uses``) marked ``"used": true``."""
    return _with_uses(_raw_grants(Path(root)), push_uses(root))


def _raw_grants(root: Path) -> dict[str, list[Any]]:
    """``grants.json`` as the host's ``ctl`` wrote it (no use the gate recorded applied)."""
    path = grants_path(root)
    return _grants_doc(_read_json(path), path)


def push_key(entry: Mapping[str, Any]) -> str:
    """What names one push grant's (repo, ref, old, new, finding) in ``push-uses``."""
    ident = json.dumps([entry.get(k) for k in ("repo", "ref", "old", "new", "finding")], separators=(",", ":"))
    return hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def push_uses(root: str | Path) -> dict[str, list[dict[str, Any]]]:
    """The uses the gate recorded, by ``push_key``, in the order they were made (``<key>-<n>``)."""
    uses: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for path in Spool._files(Path(root) / PUSH_USES_DIR):
        key, _, n = path.stem.rpartition("-")
        try:
            data = _read_json(path)
        except ChannelError:
            data = {}
        if key and n.isdigit():
            uses.setdefault(key, []).append((int(n), data if isinstance(data, dict) else {}))
    return {key: [record for _, record in sorted(found, key=lambda x: x[0])] for key, found in uses.items()}


def _with_uses(doc: dict[str, list[Any]], uses: Mapping[str, list[dict[str, Any]]]) -> dict[str, list[Any]]:
    """``doc`` with the first unused push grants of each key marked used, one per recorded use
    (a use beyond the grants there changes nothing: a use only ever takes a grant away)."""
    left = {key: list(records) for key, records in uses.items()}
    pushes = []
    for entry in doc["pushes"]:
        entry = dict(entry)
        records = left.get(push_key(entry))
        if not entry.get("used") and records:
            used_at = records.pop(0).get("used_at")
            entry["used"] = True
            if isinstance(used_at, (int, float)) and not isinstance(used_at, bool):
                entry["used_at"] = used_at
        pushes.append(entry)
    return dict(doc, pushes=pushes)


@contextmanager
def _grants_locked(root: Path) -> Iterator[None]:
    with _locked(root, GRANTS_LOCK_FILE):
        yield


@contextmanager
def _locked(root: Path, name: str, wait_s: float | None = None, *, shared: bool = False) -> Iterator[None]:
    """An exclusive ``flock`` on ``root/name`` (between processes, and between two opens in one);
    with ``wait_s``, ``TimeoutError`` once that long has passed without it. ``shared``: the
    spool's group may take it too (else it is its maker's alone)."""
    _make_folder(root)
    # Opened for reading (flock needs no more), so a shared one serves every account in the
    # spool's group whoever made it.
    fd = os.open(root / name, os.O_RDONLY | os.O_CREAT, _file_mode(root, 0o600) if shared else 0o600)
    with os.fdopen(fd, "rb") as lock:
        if wait_s is None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        else:
            _flock_within(lock, wait_s)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _flock_within(lock: Any, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{lock.name}: held for more than {wait_s:g} s") from None
            time.sleep(0.01)


def validate_grant(grant: Any) -> dict[str, Any]:
    """A grant for ``add_grant`` / ``ctl decide``, checked and in canonical form. Shapes::

        {"kind": "route", "route": <policy v2 route, without auth>}
        {"kind": "push", "repo": NAME, "ref": "refs/heads/x", "old": SHA, "new": SHA[, "finding": ID]}
        {"kind": "token-use", "route": HOST, "detectors": [...]}
    """
    obj = _obj(grant, "grant")
    kind = obj.get("kind")
    if kind not in GRANT_KINDS:
        raise ChannelError(f"grant.kind: expected one of {', '.join(GRANT_KINDS)}, got {kind!r}")
    if kind == "route":
        _no_unknown(obj, {"kind", "route"}, "grant")
        from bot_bottle.sidecar.egress.policy import Policy, PolicyError

        route = _obj(obj.get("route"), "grant.route")
        if route.get("auth") is not None:
            raise ChannelError("grant.route.auth: a granted route cannot inject a credential (put it in the manifest)")
        _check_route_paths(route)
        if isinstance(route.get("host"), str):
            _check_manifest_host(route["host"], "grant.route.host")
        try:
            parsed = Policy.from_dict({"version": 2, "routes": [route]}).routes[0]
        except PolicyError as exc:
            raise ChannelError(f"grant.route: {str(exc).removeprefix('routes[0]').lstrip('.: ')}") from None
        _check_manifest_host(parsed.host, "grant.route.host")
        return {"kind": "route", "route": parsed.to_dict()}
    if kind == "push":
        _no_unknown(obj, {"kind", "repo", "ref", "old", "new", "finding"}, "grant")
        grant = {
            "kind": "push",
            "repo": _str(obj, "repo", "grant"),
            "ref": _ref(obj, "ref", "grant"),
            "old": _sha(obj, "old", "grant"),
            "new": _sha(obj, "new", "grant"),
        }
        if obj.get("finding") is not None:  # from a proposal: only for the findings the operator saw
            grant["finding"] = _finding_id(obj, "finding", "grant")
        return grant
    _no_unknown(obj, {"kind", "route", "detectors"}, "grant")
    return {
        "kind": "token-use",
        "route": _str(obj, "route", "grant"),
        "detectors": sorted(_str_list(obj, "detectors", "grant", _DETECTOR)),
    }


def _check_route_paths(route: Mapping[str, Any]) -> None:
    """A granted route's paths hold no whitespace, control or invisible characters: checked here
    too, not only in the proposal, because the grant is what the proxy acts on."""
    matches = route.get("matches")
    for m, match in enumerate(matches if isinstance(matches, list) else []):
        paths = match.get("paths") if isinstance(match, dict) else None
        for i, path in enumerate(paths if isinstance(paths, list) else []):
            if isinstance(path, str):
                _check_path_chars(path, f"grant.route.matches[{m}].paths[{i}]")


def _grant_entry(g: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(list in the grants document, entry) for a validated grant."""
    if g["kind"] == "route":
        return "routes", dict(g["route"])
    if g["kind"] == "push":
        return "pushes", {k: g[k] for k in ("repo", "ref", "old", "new", "finding") if k in g} | {"used": False}
    return "token_uses", {"route": g["route"], "detectors": g["detectors"]}


def add_grant(root: str | Path, grant: Mapping[str, Any]) -> bool:
    """Add one grant to ``<root>/grants.json`` (atomic, under the lock); False if already there."""
    key, entry = _grant_entry(validate_grant(dict(grant)))
    root = Path(root)
    with _grants_locked(root):
        doc = _raw_grants(root)
        if entry in _with_uses(doc, push_uses(root))[key]:  # (a push: an identical unused grant) nothing to add
            return False
        doc[key].append(entry)
        _write_atomic(grants_path(root), doc, mode=0o644)
        return True


def remove_grant(root: str | Path, grant: Mapping[str, Any]) -> bool:
    """Take back a grant ``add_grant`` added (an unused one, for a push); False if not there."""
    key, entry = _grant_entry(validate_grant(dict(grant)))
    root = Path(root)
    if not grants_path(root).exists():
        return False
    with _grants_locked(root):
        doc = _raw_grants(root)
        shown = _with_uses(doc, push_uses(root))[key]
        if entry not in shown:
            return False
        # The last such entry (all are alike): the uses recorded stay on the ones before it.
        del doc[key][len(shown) - 1 - shown[::-1].index(entry)]
        _write_atomic(grants_path(root), doc, mode=0o644)
        return True


def push_grant_matches(entry: Mapping[str, Any], repo: str, ref: str, old: str, new: str, finding: str | None) -> bool:
    """Is ``entry`` an unused push grant for exactly this update? One given for a finding id
    holds only for that id (the same commits found the same way)."""
    return (not entry.get("used") and (entry.get("repo"), entry.get("ref"), entry.get("old"), entry.get("new"))
            == (repo, ref, old, new) and entry.get("finding") in (None, finding))


def consume_push(root: str | Path, repo: str, ref: str, old: str, new: str, finding: str | None = None) -> bool:
    """Use up an unused push grant for exactly (repo, ref, old, new) (and ``finding``, when the
    grant names one); True if there was one.

    The gate never writes ``grants.json``: it records the use as ``push-uses/<key>-<n>.json``,
    made only if not there yet (so two pushes never use one grant), which can only take a grant
    away. ``n`` counts the grants alike: the operator may grant the same push again.
    """
    root = Path(root)
    try:
        raw = _raw_grants(root)
    except ChannelError:
        return False  # unreadable grants grant nothing
    uses = push_uses(root)
    available = [e for e in _with_uses(raw, uses)["pushes"] if push_grant_matches(e, repo, ref, old, new, finding)]
    for key in dict.fromkeys(push_key(e) for e in available):
        alike = sum(1 for e in raw["pushes"] if not e.get("used") and push_key(e) == key)
        record = {"repo": repo, "ref": ref, "old": old, "new": new, "finding": finding, "used_at": round(time.time(), 3)}
        for n in range(len(uses.get(key, [])), alike):
            if _create_atomic(root / PUSH_USES_DIR / f"{key}-{n}.json", record, mode=0o644):
                return True
    return False


def record_push_findings(
    root: str | Path, finding: str, repo: str, updates: Sequence[Mapping[str, str]], detectors: Sequence[str],
    places: Sequence[str],
) -> None:
    """The git-gate's record of a push it rejected: its updates (ref, old, new), its detectors and
    where they matched (already safe to show), under its finding id. ``request-push-exception``
    takes the operator these, and only for a push the gate did reject."""
    shown = [p[:MAX_PLACE] for p in places[:MAX_PLACES]]
    if len(places) > MAX_PLACES:
        shown.append(f"and {len(places) - MAX_PLACES} more")
    record = {"finding": finding, "repo": repo, "detectors": sorted(set(detectors))[:MAX_LIST_ITEMS],
              "places": shown, "updates": [{k: u[k] for k in ("ref", "old", "new")} for u in updates[:MAX_PUSH_UPDATES]],
              "at": round(time.time(), 3)}
    folder = Path(root) / PUSH_FINDINGS_DIR
    _write_atomic(folder / f"{finding}.json", record, mode=0o644)
    for path in _oldest_beyond(folder, MAX_PUSH_FINDINGS):
        path.unlink(missing_ok=True)


def _oldest_beyond(folder: Path, count: int) -> list[Path]:
    """The records in ``folder`` older (by mtime) than its newest ``count``: the agent can make
    more of them at will, so only the newest are kept."""
    entries = []
    for path in Spool._files(folder):
        try:
            entries.append((path.stat().st_mtime, path.name, path))
        except FileNotFoundError:
            continue  # removed by another process meanwhile
    entries.sort()
    return [path for _, _, path in entries[: max(0, len(entries) - count)]]


def push_findings(root: str | Path, finding: str) -> dict[str, Any] | None:
    """The record ``record_push_findings`` wrote for ``finding``, or None."""
    if not FINDING_ID.match(finding):
        return None
    data = _read_json(Path(root) / PUSH_FINDINGS_DIR / f"{finding}.json")
    return data if isinstance(data, dict) else None


def token_use_granted(root: str | Path, route: str, detectors: list[str] | tuple[str, ...]) -> bool:
    """Is there a token-use grant for ``route`` covering every one of ``detectors``?"""
    wanted = set(detectors)
    for entry in read_grants(root)["token_uses"]:
        if entry.get("route") == route and wanted <= set(entry.get("detectors") or []):
            return True
    return False
