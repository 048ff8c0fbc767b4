"""One local bare mirror per repo: created on start, refreshed from the upstream before serving.

The mirror is a cache the gate may only serve while it is known to match the upstream:
``refresh`` either fetches (with prune) or raises, and the server turns that into an error the
agent sees. The agent must not be able to make the gate ask the upstream as often as it likes (each
ask spends the operator's rate limit there), and nothing may wait for the sake of that limit, so a
request reuses what the upstream last said instead of asking again:

- while a refresh is in flight, every request for the same repo waits for that one and shares its
  result (a clone's burst of requests, parallel agents);
- a request that arrives within ``FRESH_FOR`` seconds of the start of the last refresh takes that
  refresh's outcome as it is, at once: the mirror as it was fetched, or the same error (an
  upstream that refuses or rate-limits is not asked again sooner either);
- a push (``refresh_held``) takes only a refresh that started after it arrived, window or not:
  its check needs the upstream as it is (what the mirror holds counts as published).
A push the gate forwards updates the mirror's refs itself, so the agent sees its own push at once.

A push is received into a quarantine folder (``objects/tmp_objdir-incoming-*``) that git removes
when receive-pack ends; one killed first (a timeout) leaves it behind. ``remove_quarantines``
clears them, at start and after each push, while nothing else can be receiving.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bot_bottle.sidecar.git_gate import proc, upstream, view
from bot_bottle.sidecar.git_gate.config import GateConfig, RepoConfig
from bot_bottle.sidecar.git_gate.patch import MAX_LOG_BYTES

# Branches and tags. A host's review refs (refs/pull/*, refs/changes/*) are read-only there and
# can be huge; they are not what an agent works on.
FETCH_REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
HOOK_ENV_VERDICT = "BOT_BOTTLE_GIT_GATE_VERDICT"
# How long what the upstream said (refs, or an error) is reused without asking again: refreshes
# of one repo are at most one per FRESH_FOR seconds however often the agent asks (720 an hour),
# and an agent's fetch sees what landed upstream, or that the upstream went away, within as long.
# A git command makes one advertisement; only bursts (scripts, loops, a partial clone's lazy
# fetches) come faster than this, and for those the mirror as it is is what they need.
FRESH_FOR = 5.0
PACKAGE_ROOT = Path(__file__).resolve().parents[3]  # the folder holding bot_bottle/
LOCAL_TIMEOUT = 120.0  # a git on the mirror alone (init, config, symbolic-ref): seconds at most
# The most a push's pack may weigh as it arrives (receive.maxInputSize): past it receive-pack stops
# reading and refuses the push. A pack may store a blob uncompressed, so this also bounds the disk
# its quarantine takes. Twice the diff the scan reads (patch.MAX_LOG_BYTES): ordinary pushes are far
# below it, and one near it is past what the scan is sized for anyway.
MAX_PUSH_PACK = 2 * MAX_LOG_BYTES
# Where receive-pack puts what a push brings until the push is accepted (git's tmp-objdir; older
# gits named it without the prefix).
QUARANTINE_GLOBS = ("tmp_objdir-incoming-*", "incoming-*")


@dataclass(frozen=True)
class _Outcome:
    """What the last finished refresh found: when it started (monotonic), and its error."""

    started: float
    error: str | None = None  # None: it succeeded


@dataclass
class _RepoState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Replaced whole (one assignment): a request may read it without the lock.
    last: _Outcome | None = None
    running_since: float | None = None  # the start of the refresh in flight, if one is


class Mirrors:
    def __init__(self, config: GateConfig, config_path: Path, state_dir: Path) -> None:
        self.config = config
        self.config_path = config_path
        self.root = state_dir / "mirrors"
        self.views = state_dir / "views"  # each fetch's own view of a mirror (view.py)
        self._states = {repo.name: _RepoState() for repo in config.repos}

    def path(self, repo: RepoConfig) -> Path:
        return self.root / f"{repo.name}.git"

    def lock(self, repo: RepoConfig) -> threading.Lock:
        """Held while the mirror changes: a refresh, or a push being checked and forwarded."""
        return self._states[repo.name].lock

    # ------------------------------------------------------------------ setup
    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        view.remove_all(self.views)
        for repo in self.config.repos:
            self._init(repo)
            self.remove_quarantines(repo)  # left by pushes a previous gate was killed during

    def remove_quarantines(self, repo: RepoConfig) -> list[str]:
        """Delete the mirror's leftover push quarantines; the names of those removed. Call it only
        while no push into this mirror can be running: at start, or holding ``lock(repo)``."""
        objects = self.path(repo) / "objects"
        removed = []
        for pattern in QUARANTINE_GLOBS:
            for folder in objects.glob(pattern):
                if folder.is_dir() and not folder.is_symlink():
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder.name)
        return removed

    def _init(self, repo: RepoConfig) -> None:
        path = self.path(repo)
        if not (path / "HEAD").exists():
            _git(["init", "--quiet", "--bare", str(path)])
        settings = {
            "gc.auto": "0",  # objects a running clone is reading must not vanish under it
            "http.receivepack": "true",  # pushes are served (and checked by the hook)
            "http.uploadpack": "true",
            "uploadpack.allowFilter": "true",  # partial clones (--filter=blob:none) work
            # But not sparse:oid=<blob>, which git resolves and reads (any object, by id or as
            # <commit>:<path>) with no reach check: it would tell whether a hidden object exists,
            # and its content would decide what the pack holds.
            "uploadpackfilter.sparse:oid.allow": "false",
            # Fetches are served in protocol v0 (see server.py), where git refuses to send a commit
            # no branch or tag reaches (one deleted upstream, a secret taken down). Objects they do
            # reach may be asked for by id: a partial clone fetches its missing blobs that way. (git
            # checks this for commits only: a blob, tree or tag object would go to whoever names its
            # id, so the gate checks every wanted id itself first: reach.py.)
            "uploadpack.allowReachableSHA1InWant": "true",
            "receive.maxInputSize": str(MAX_PUSH_PACK),
            "http.getanyfile": "false",  # smart HTTP only: dumb reads would skip the refresh
            "receive.denyDeletes": "false",
            "receive.denyNonFastForwards": "false",  # the upstream decides, not the mirror
            "receive.advertisePushOptions": "false",
            "core.hooksPath": str(path / "hooks"),
        }
        if self.config.user_name:
            settings["user.name"] = self.config.user_name
        if self.config.user_email:
            settings["user.email"] = self.config.user_email
        for key, value in settings.items():
            _git(["config", key, value], cwd=path)
        self._install_hook(repo, path)

    def _install_hook(self, repo: RepoConfig, path: Path) -> None:
        hooks = path / "hooks"
        hooks.mkdir(exist_ok=True)
        for sample in hooks.glob("*.sample"):
            sample.unlink()
        script = (
            "#!/bin/sh\n"
            "# Every push into this mirror is checked and forwarded upstream by the git-gate.\n"
            f"PYTHONPATH={shlex.quote(str(PACKAGE_ROOT))}${{PYTHONPATH:+:$PYTHONPATH}}\n"
            "export PYTHONPATH\n"
            f"exec {shlex.quote(sys.executable)} -m bot_bottle.sidecar.git_gate.hook"
            f" --config {shlex.quote(str(self.config_path))} --repo {shlex.quote(repo.name)}\n"
        )
        hook = hooks / "pre-receive"
        tmp = hooks / ".pre-receive.tmp"
        tmp.write_text(script)
        tmp.chmod(0o755)
        tmp.replace(hook)

    # ------------------------------------------------------------------ refresh
    def refresh(self, repo: RepoConfig, *, requested_at: float | None = None, fresh_for: float | None = None) -> None:
        """Make sure the mirror matches the upstream as it was at most ``fresh_for`` seconds
        (default ``FRESH_FOR``) before ``requested_at`` (default: now), or since a refresh in
        flight then began, or raise
        ``upstream.UpstreamError``. Returns at once, without the lock, when the last refresh will
        do: a fetch need not wait for a push that holds the lock."""
        state = self._states[repo.name]
        accept_from = self._accept_from(state, requested_at, FRESH_FOR if fresh_for is None else fresh_for)
        if self._reuse(state, accept_from):
            return
        with state.lock:
            self._refresh_locked(repo, accept_from)

    def refresh_held(self, repo: RepoConfig, *, requested_at: float | None = None) -> None:
        """``refresh`` for a caller already holding ``lock(repo)``: a push, whose check must see
        the upstream as it is once the push arrived (nothing older) while nothing else moves the
        mirror."""
        self._refresh_locked(repo, time.monotonic() if requested_at is None else requested_at)

    @staticmethod
    def _accept_from(state: _RepoState, requested_at: float | None, fresh_for: float) -> float:
        """The oldest refresh start this request may take the outcome of."""
        accept_from = (time.monotonic() if requested_at is None else requested_at) - fresh_for
        running = state.running_since
        # One in flight when the request arrived is shared, however long ago it began.
        return accept_from if running is None else min(accept_from, running)

    @staticmethod
    def _reuse(state: _RepoState, accept_from: float) -> bool:
        """Whether the last refresh's outcome answers a request (raising its error if it failed)."""
        last = state.last
        if last is None or last.started < accept_from:
            return False
        if last.error is not None:
            raise upstream.UpstreamError(last.error)
        return True

    def _refresh_locked(self, repo: RepoConfig, accept_from: float) -> None:
        state = self._states[repo.name]
        if self._reuse(state, accept_from):
            return  # one finished while this request waited for the lock
        started = time.monotonic()
        state.running_since = started
        try:
            self._fetch(repo)
        except upstream.UpstreamError as exc:
            state.last = _Outcome(started, str(exc))
            raise
        else:
            state.last = _Outcome(started)
        finally:
            state.running_since = None  # after ``last``: a request never sees neither

    def _fetch(self, repo: RepoConfig) -> None:
        path = self.path(repo)
        creds = upstream.credentials(repo, self.config.connect_timeout)
        upstream.probe(repo.url, self.config.connect_timeout)
        env = upstream.clean_env()
        result = upstream.run_git(
            # --progress keeps data flowing while the upstream prepares a pack (see LOW_SPEED_SECONDS).
            ["fetch", "--prune", "--progress", "--no-write-fetch-head", "--no-auto-gc", repo.url, *FETCH_REFSPECS],
            creds=creds, base_env=env, cwd=path,
        )
        if result.returncode != 0:
            raise upstream.UpstreamError(upstream.failure_text(result, creds))
        self._follow_head(repo, path, creds, env)

    def _follow_head(self, repo: RepoConfig, path: Path, creds: upstream.Credentials, env: dict[str, str]) -> None:
        """Point the mirror's HEAD at the upstream's default branch, so clones check it out."""
        current = _git(["symbolic-ref", "-q", "HEAD"], cwd=path, check=False).stdout.strip()
        if current and _git(["rev-parse", "-q", "--verify", current], cwd=path, check=False).returncode == 0:
            return  # already on an existing branch; asking again would cost a round trip each time
        result = upstream.run_git(["ls-remote", "--symref", repo.url, "HEAD"], creds=creds, base_env=env, cwd=path)
        for line in result.stdout.splitlines():
            if line.startswith("ref: ") and line.endswith("\tHEAD"):
                target = line[len("ref: "):-len("\tHEAD")]
                if target.startswith("refs/heads/"):
                    _git(["symbolic-ref", "HEAD", target], cwd=path)
                return


def _git(args: list[str], *, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        result = proc.run(
            ["git", *args], cwd=cwd, env=upstream.clean_env({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}),
            timeout=LOCAL_TIMEOUT,
        )
    except proc.TimedOut as exc:
        raise RuntimeError(str(exc)) from exc
    out = subprocess.CompletedProcess(result.args, result.returncode, proc.as_text(result.stdout),
                                      proc.as_text(result.stderr))
    if check and out.returncode != 0:
        raise RuntimeError(f"git {args[0]} failed: {out.stderr.strip()}")
    return out
