"""The mirrors' pre-receive hook: scan what a push adds, then forward it upstream, or refuse.

``git receive-pack`` runs this after it has received the agent's objects into a quarantine (so
nothing is in the mirror yet) and before it updates any ref; a non-zero exit rejects every ref
of the push, and whatever this prints reaches the agent's terminal as ``remote: ...`` lines.

Order matters: scan first, and only a clean push is sent upstream; the mirror accepts the refs
only after the upstream did, so the mirror never holds what the upstream refused. Any failure
of the check itself (a scanner error, an object type the gate does not understand, an object
that cannot be read) refuses the push: fail closed.

Nothing here can hold a push forever, nor read all of it into memory: the whole scan has
``proc.SCAN_TIMEOUT`` (every git it runs is killed, with its process group, when that runs out:
verdict ``timeout``), the forwarding push ``upstream.TRANSFER_TIMEOUT``; the log of what the push
adds is read as a stream (``patch.read_pieces``), up to ``patch.MAX_LOG_BYTES`` (past it: a
``scan-limit`` finding).

What is scanned besides the commits' content: each updated ref's name (a name that carries a
finding is never shown, not even in the verdict), and every tag object a ref reaches through a
chain of tags, whole; a ref that ends at a tree or a blob is refused. Pushes to ``refs/replace/*``
are refused, and every git the hook runs (the forwarding push included) ignores replace refs, so
the objects scanned are the objects sent. So are pushes to any ref but a branch, a tag or a
review ref (``PUSHABLE_PREFIXES``).

The outcome (no secret values, just refs, findings' places and the upstream's status) is also
written as JSON to the file named by ``BOT_BOTTLE_GIT_GATE_VERDICT`` so the gate logs it.

Push exceptions (docs/supervise.md): a rejected push prints its finding id and, when the bottle
has the supervise plane, how to ask the operator (``request-push-exception`` with repo, ref, old,
new and that id). When the operator approved, the spool's grants hold a push grant for exactly
(repo, ref, old, new) and that finding id; a push whose every ref update has such an unused
grant passes the scan once (the grants are used up: the gate records each use in the spool's
``push-uses``, never in ``grants.json``, which only the host's ctl writes), and the verdict
records that an exception was used. The rejection is recorded in the spool under its finding
id (``record_rejection``): the request names that id, and the operator is shown what the gate
found, never the agent's own account of it.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot_bottle.sidecar.git_gate import embedded, gitleaks, proc, upstream, urls
from bot_bottle.sidecar.git_gate.config import ConfigError, GateConfig, RepoConfig, load
from bot_bottle.sidecar.git_gate.mirror import HOOK_ENV_VERDICT
from bot_bottle.sidecar.git_gate.objects import ObjectError, git_env, peel
from bot_bottle.sidecar.git_gate.patch import Piece, read_pieces
from bot_bottle.sidecar.git_gate.refs import RefUpdate, RefUpdateError, added_rev_args, parse_updates, push_args
from bot_bottle.sidecar.git_gate.scan import (
    Detector,
    REF_WITHHELD,
    GitFinding,
    default_detector,
    SecretsUnreadable,
    load_known_secrets,
    name_carries_finding,
    report,
    scan,
)
from bot_bottle.sidecar.supervise import channel

# receive-pack's quarantine: the pushed objects live here until the hook says yes.
QUARANTINE_VARS = ("GIT_DIR", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH")
PREFIX = "git-gate: "
# A replace ref makes git show one object in place of another: refused, and ignored by every git
# the hook runs (the scan and the forwarding push must both see the objects actually pushed).
REPLACE_PREFIX = "refs/replace/"
# What a push may update: branches and tags (what the gate shows), and Gerrit's review refs
# (``refs/for/<branch>`` makes a change, never a stored ref). Anything else is a host's meta
# data that a bottle has no business writing (Gerrit's ``refs/meta/config`` is the project's
# access rules) or refs the agent cannot fetch back through the gate (notes, ``refs/pull/*``).
PUSHABLE_PREFIXES = ("refs/heads/", "refs/tags/", "refs/for/")


class Refused(Exception):
    """The push cannot be checked; the message is shown to the agent."""


@dataclass
class Verdict:
    repo: str
    result: str = "error"
    updates: list[dict[str, str]] = field(default_factory=list)
    commits_scanned: int = 0
    detector: str = ""
    findings: list[dict[str, object]] = field(default_factory=list)
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "result": self.result,
            "updates": self.updates,
            "commits_scanned": self.commits_scanned,
            "detector": self.detector,
            "findings": self.findings,
            "detail": self.detail,
        }


def say(*lines: str) -> None:
    for line in lines:
        sys.stderr.write(line if line.startswith(PREFIX) else PREFIX + line)
        sys.stderr.write("\n")
    sys.stderr.flush()


def _git(args: Sequence[str], env: Mapping[str, str]) -> str:
    # Bytes, decoded here: text mode would also split lines at a lone "\r".
    result = proc.run(["git", *args], env=git_env(env), timeout=proc.SCAN_TIMEOUT)
    if result.returncode != 0:
        stderr = result.stderr.decode("utf-8", errors="replace").strip()[:300]
        raise Refused(f"git {args[0]} failed while checking the push: {stderr}")
    return result.stdout.decode("utf-8", errors="replace")


def added_commits(updates: Iterable[RefUpdate], env: Mapping[str, str]) -> list[str]:
    rev_args = added_rev_args(updates)
    if not rev_args:
        return []
    return _git(["rev-list", *rev_args], env).split()


def tag_pieces(
    updates: Iterable[RefUpdate], env: Mapping[str, str], shown: Mapping[str, str],
    budget: embedded.Budget | None = None,
) -> list[Piece]:
    """Every tag object a ref reaches through a chain of tags, whole (headers and message); a ref
    that ends anywhere but at a commit is refused. Streams in tag messages count against
    ``budget``, the push's."""
    budget = embedded.Budget() if budget is None else budget
    pieces = []
    for update in updates:
        if update.kind == "delete":
            continue
        try:
            found, kind = peel(update.new, env=env, budget=budget)
        except ObjectError as exc:
            raise Refused(f"{shown.get(update.ref, update.ref)}: {exc}") from exc
        if kind != "commit":
            through = " (through a tag)" if found else ""
            raise Refused(
                f"{shown.get(update.ref, update.ref)} points{through} to a {kind}; the gate forwards only commits and tags"
            )
        pieces += found
    return pieces


def ref_pieces(updates: Iterable[RefUpdate]) -> list[Piece]:
    """A ref's name is sent upstream too: it is scanned like any other text the push adds."""
    return [Piece(u.new, "ref", u.ref) for u in updates if u.kind != "delete"]


def withheld_refs(updates: Sequence[RefUpdate], detector: Detector) -> dict[str, str]:
    """Each ref name as it may be shown (in messages, the report, the verdict): a name that
    carries a finding is never shown."""
    return {u.ref: REF_WITHHELD if name_carries_finding(u.ref, detector) else u.ref for u in updates}


def refuse_unpushable_refs(updates: Iterable[RefUpdate], shown: Mapping[str, str]) -> None:
    """Refuse a push to any ref but a branch, a tag or a review ref (``PUSHABLE_PREFIXES``)."""
    for update in updates:
        name = shown.get(update.ref, update.ref)
        if update.ref.startswith(REPLACE_PREFIX):
            raise Refused(
                f"{name}: pushes to refs/replace/* are refused"
                " (a replace ref makes git show one object in place of another)"
            )
        if not update.ref.startswith(PUSHABLE_PREFIXES):
            raise Refused(
                f"{name}: pushes go to branches (refs/heads/*) and tags (refs/tags/*), or refs/for/* for review;"
                " other refs are refused"
            )


def check(
    updates: Sequence[RefUpdate], env: Mapping[str, str], detector: Detector, verdict: Verdict,
    shown: Mapping[str, str] | None = None,
) -> list[GitFinding]:
    shown = withheld_refs(updates, detector) if shown is None else shown
    refuse_unpushable_refs(updates, shown)
    budget = embedded.Budget()  # what the push's compressed streams may cost, tags and commits together
    pieces = [*ref_pieces(updates), *tag_pieces(updates, env, shown, budget)]
    commits = added_commits(updates, env)
    verdict.commits_scanned = len(commits)
    try:
        # Chained, never listed: the log is scanned as git writes it (a list would hold it whole).
        log = read_pieces(commits, env=env, budget=budget)
        try:
            findings = scan(itertools.chain(pieces, log), detector)
        finally:
            log.close()  # a scan that stopped early (too many findings) stops the git reading the log
    except ObjectError as exc:
        raise Refused(str(exc)) from exc
    if gitleaks.available():
        try:
            findings += gitleaks.run(added_rev_args(updates), repo_dir=env.get("GIT_DIR", "."), env=env)
        except gitleaks.GitleaksError as exc:
            raise Refused(str(exc)) from exc
    return findings


def forward(repo: RepoConfig, config: GateConfig, updates: Sequence[RefUpdate], env: Mapping[str, str]) -> tuple[bool, list[str]]:
    """Push the same updates upstream; (accepted, lines to show)."""
    creds = upstream.credentials(repo, config.connect_timeout)
    upstream.probe(repo.url, config.connect_timeout)
    # The pushed objects are reached through GIT_OBJECT_DIRECTORY and its alternates. The
    # quarantine marker itself stays behind: over a local transport the upstream's receive-pack
    # would inherit it and refuse to update its own refs.
    push_env = {k: v for k, v in env.items() if k != "GIT_QUARANTINE_PATH"}
    result = upstream.run_git(["push", *push_args(repo.url, updates)], creds=creds, base_env=push_env)
    shown = [f"upstream {repo.name} ({urls.redact(repo.url)}):"]
    for line in (result.stderr + result.stdout).splitlines():
        line = line.rstrip()
        if not line or line == "Done" or line.startswith(("To ", "error: failed to push some refs")):
            continue
        shown.append("  " + creds.scrub(porcelain_line(line)))
    return result.returncode == 0, shown


def porcelain_line(line: str) -> str:
    """``<flag>\t<src>:<dst>\t<summary>`` from ``git push --porcelain`` as ``<dst>: <summary>``."""
    fields = line.split("\t")
    if len(fields) == 3 and len(fields[0]) == 1 and ":" in fields[1]:
        return f"{fields[1].rsplit(':', 1)[1]}: {fields[2]}"
    return line


def finding_id(findings: Sequence[GitFinding]) -> str:
    """A short id naming this set of findings (same commits, places and detectors, same id)."""
    keys = sorted(json.dumps(f.to_dict(), sort_keys=True) for f in findings)
    return "gf-" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:12]


def _scanned(updates: Sequence[RefUpdate]) -> list[RefUpdate]:
    return [u for u in updates if u.kind != "delete"]


def exception_hint(
    repo: str, updates: Sequence[RefUpdate], fid: str, shown: Mapping[str, str] | None = None
) -> list[str]:
    """How the agent asks the operator to let exactly this push through once."""
    shown = shown or {}
    lines = [
        f"git-gate: finding id {fid}. If this is a false positive (a test fixture, an example), ask the operator with",
        "git-gate:   the request-push-exception tool (supervise MCP server), one call per ref, then push again:",
    ]
    lines += [
        f"git-gate:   repo={repo} ref={shown.get(u.ref, u.ref)} old={u.old} new={u.new} finding={fid}"
        for u in _scanned(updates)
    ]
    return lines


def use_push_exception(root: Path, repo: str, updates: Sequence[RefUpdate], fid: str | None = None) -> bool:
    """Use up the push grants for every scanned ref update of this push (for finding ``fid``,
    when a grant names one), if all have one.

    All or nothing: a push with one ref not granted is rejected and no grant is spent.
    """
    wanted = _scanned(updates)
    if not wanted:
        return False
    try:
        pushes = channel.read_grants(root)["pushes"]
    except (channel.ChannelError, OSError):
        return False  # unreadable grants grant nothing
    for u in wanted:
        if not any(channel.push_grant_matches(p, repo, u.ref, u.old, u.new, fid) for p in pushes):
            return False
    return all(channel.consume_push(root, repo, u.ref, u.old, u.new, fid) for u in wanted)


def record_rejection(root: Path, repo: str, updates: Sequence[RefUpdate], fid: str, findings: Sequence[GitFinding]) -> None:
    """Keep what the gate found under its id, for ``request-push-exception`` to show the operator
    (what the agent then says about it is only its justification)."""
    try:
        channel.record_push_findings(
            root, fid, repo, [{"ref": u.ref, "old": u.old, "new": u.new} for u in _scanned(updates)],
            [f.detector for f in findings], [f.describe() for f in findings])
    except (channel.ChannelError, OSError) as exc:
        say(f"(the finding could not be recorded for an exception request: {exc.__class__.__name__})")


def _write_verdict(verdict: Verdict) -> None:
    target = os.environ.get(HOOK_ENV_VERDICT)
    if not target:
        return
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(verdict.to_dict(), fh)
    except OSError:
        pass


def run(
    config: GateConfig, repo: RepoConfig, stdin_text: str, detector: Detector | None = None,
    supervise_root: Path = channel.DEFAULT_ROOT,
) -> int:
    verdict = Verdict(repo=repo.name)
    env = git_env(upstream.clean_env({k: os.environ[k] for k in QUARANTINE_VARS if k in os.environ}))
    try:
        updates = parse_updates(stdin_text)
        if not updates:
            verdict.result = "empty"
            return 0
        if detector is None:
            known = load_known_secrets(config.secrets_file)
            known.update(_own_credentials(config))
            detector = default_detector(known)
        verdict.detector = str(getattr(detector, "name", type(detector).__name__))
        # Ref names go into the verdict only once scanned: one that carries a finding is withheld.
        shown = withheld_refs(updates, detector)
        verdict.updates = [{"ref": shown[u.ref], "kind": u.kind, "old": u.old, "new": u.new} for u in updates]
        with proc.deadline(proc.SCAN_TIMEOUT):
            findings = check(updates, env, detector, verdict, shown)
        if findings:
            fid = finding_id(findings)
            verdict.findings = [f.to_dict() for f in findings]
            if use_push_exception(supervise_root, repo.name, updates, fid):
                verdict.detail = f"push exception granted by the operator used for finding {fid}"
                say(f"{len(findings)} finding(s) ({fid}) let through once: the operator granted an exception for this push.")
            else:
                verdict.result = "rejected"
                verdict.detail = f"finding {fid}"
                say(*report(findings))
                if supervise_root.is_dir():  # the bottle has the supervise plane
                    record_rejection(supervise_root, repo.name, updates, fid, findings)
                    say(*exception_hint(repo.name, updates, fid, shown))
                return 1
        accepted, lines = forward(repo, config, updates, env)
        say(*lines)
        if not accepted:
            verdict.result, verdict.detail = "upstream-refused", "; ".join(lines[1:])[:1000]
            say("the upstream did not accept the push; nothing changed in the gate either.")
            return 1
        verdict.result = "forwarded"
        return 0
    except (Refused, RefUpdateError, upstream.UpstreamError) as exc:
        verdict.result, verdict.detail = "refused", str(exc)
        say(f"push refused: {exc}")
        return 1
    except SecretsUnreadable as exc:
        verdict.result, verdict.detail = "error", str(exc)
        say(f"push refused: the gate cannot check it for this bottle's secrets ({exc}); nothing was sent upstream.")
        return 1
    except proc.TimedOut as exc:
        # The scan (or the forwarding push) ran out of time: stopped, and nothing goes on unchecked.
        verdict.result, verdict.detail = "timeout", str(exc)
        say(f"push refused: {exc}; nothing was sent upstream.",
            "a push this large or this intricate cannot be checked in time: push the work in smaller parts.")
        return 1
    except Exception as exc:  # noqa: BLE001 - an unexpected failure must still refuse the push
        verdict.result, verdict.detail = "error", type(exc).__name__
        say(f"push refused: the check failed ({type(exc).__name__}); nothing was sent upstream.")
        return 1
    finally:
        _write_verdict(verdict)


def _own_credentials(config: GateConfig) -> dict[str, str]:
    """The gate's upstream tokens are secrets too: a push must never carry one out.

    A token file the gate cannot read raises ``SecretsUnreadable`` (naming the file): skipped, the
    scan would pass a push to another repo that carries that token.
    """
    out = {}
    for repo in config.repos:
        if repo.token_file is not None:
            try:
                out[f"git-gate:{repo.name}"] = repo.token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SecretsUnreadable(f"cannot read {repo.token_file}: {exc.strerror or exc}") from None
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="git-gate-pre-receive")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--repo", required=True)
    args = parser.parse_args(argv)
    try:
        config = load(args.config)
    except ConfigError as exc:
        say(f"push refused: the gate's configuration is unusable ({exc})")
        return 1
    repo = config.repo(args.repo)
    if repo is None:
        say(f"push refused: repo {args.repo!r} is not configured")
        return 1
    return run(config, repo, sys.stdin.read())


if __name__ == "__main__":
    sys.exit(main())
