"""The gate's HTTP side: git's smart protocol for the configured repos, nothing else.

Served paths, per repo ``NAME``:
``GET /NAME.git/info/refs?service=git-upload-pack|git-receive-pack`` (the mirror refreshed from
the upstream first, unless it was within ``mirror.FRESH_FOR`` seconds; an upstream that cannot be
reached is answered with an ERR the agent's git prints), and ``POST /NAME.git/git-upload-pack`` /
``POST /NAME.git/git-receive-pack``. Each is handed to ``git http-backend`` (CGI) over the repo's
mirror. A receive-pack that updates any ref holds the repo's lock for its whole run, so the
pre-receive hook sees a mirror that does not move under it, refreshed again under that lock first
(whatever the window: what the mirror holds counts as published). A fetch's POST that comes
without a recent refresh (``RPC_FRESH_FOR``) refreshes the mirror first; both fail closed when
the upstream cannot be reached, as the advertisement does, with an error git prints. Dumb-HTTP
reads and unknown repos get 404: they would bypass the refresh.

Fetches are served in git's protocol v0 whatever the client asks for (its ``Git-Protocol`` header
is not passed on): v2 hands out any object by id, where v0 refuses a commit no branch or tag
reaches. v0 still sends a blob, tree or tag object to whoever names its id, so the gate reads a
fetch's ``want`` lines itself (inflating a gzip body, and handing git the inflated bytes it
checked) and refuses, before git runs, any id the refs it shows do not reach (``reach``): the
content of a branch or tag deleted upstream stays out of reach. Its ``have`` and ``shallow`` lines
naming anything else are left out of what git reads (git would acknowledge them: whether a hidden
object exists), and git serves the request from a view frozen at the refs checked (``view``): a
refresh that moves them meanwhile cannot make git read other refs than those. A push's body must
come unencoded (git never compresses it): a gzip body could inflate to gigabytes in the mirror's
quarantine. A
request body that ends before its declared end (the client closed or went quiet for
``CLIENT_TIMEOUT``) kills the backend's process group at once: a request cut short is never run,
and cannot hold the repo's lock. An agent that stops reading an answer for as long gets no more
of it: a fetch's git is stopped, a push's runs to its end.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

from bot_bottle.sidecar.git_gate import body, pktline, reach, upstream, view
from bot_bottle.sidecar.git_gate import proc as gate_proc
from bot_bottle.sidecar.git_gate.config import GateConfig, RepoConfig
from bot_bottle.sidecar.git_gate.mirror import HOOK_ENV_VERDICT, Mirrors

SERVICES = ("git-upload-pack", "git-receive-pack")
_PATH_RE = re.compile(r"^/+(?P<name>[A-Za-z0-9_][A-Za-z0-9._-]*?)(?:\.git)?/+(?P<endpoint>info/refs|git-upload-pack|git-receive-pack)$")
CHUNK = 64 * 1024
# A backstop for one request (a push's scan and forwarding are bounded below this: the hook's
# proc.SCAN_TIMEOUT and upstream.TRANSFER_TIMEOUT); the backend's whole process group is killed.
BACKEND_TIMEOUT = 3600.0
# A fetch RPC reuses the refresh of its own ref advertisement (git asks for one first); one that
# comes without any refresh this recent refreshes the mirror itself, or fails closed. (An
# advertisement reuses one only within mirror.FRESH_FOR.)
RPC_FRESH_FOR = 30.0
# Every read from and write to the agent's connection must progress within this many seconds, or
# the request is dropped: a stalled client must not hold a handler thread, a backend and a lock.
CLIENT_TIMEOUT = 60.0
KILLED_GRACE = 5.0  # seconds a killed backend's process group may take to be gone
# A push's body as git sends it: never compressed (remote-curl.c gzips fetch requests only).
PUSH_ENCODINGS = ("", "identity")
FETCH_ENCODINGS = (*PUSH_ENCODINGS, *body.GZIP_ENCODINGS)
# The first section of a request (a fetch's wants, a push's ref updates) is read whole before git
# runs: one line per ref, so even a clone of 100,000 refs stays far below this.
MAX_SECTION = 32 * 1024 * 1024
# What a fetch's gzip body may inflate to (wants and haves: a few MB at the very most).
MAX_FETCH_BODY = 100 * 1024 * 1024
# Connections served at once (``BoundedServer``): git opens one or two per fetch or push, so this
# is many parallel clones' worth, and it keeps the gate's threads and git processes well inside
# the bundle's task limit.
MAX_HANDLERS = 24


def log(event: str, **fields: Any) -> None:
    """One JSON line on stderr; never a credential or secret value (callers pass names only)."""
    sys.stderr.write(json.dumps({"ts": round(time.time(), 3), "event": "git-gate", "what": event, **fields}) + "\n")
    sys.stderr.flush()


class Gate:
    def __init__(self, config: GateConfig, mirrors: Mirrors, state_dir: Path) -> None:
        self.config = config
        self.mirrors = mirrors
        self.verdicts = state_dir / "verdicts"
        self.verdicts.mkdir(parents=True, exist_ok=True)
        self.verdicts.chmod(0o700)
        self.reach = reach.Reachability()


def route(path: str, config: GateConfig) -> tuple[RepoConfig, str] | None:
    """(repo, endpoint) for a request path, or None when the gate does not serve it."""
    match = _PATH_RE.match(path)
    if not match:
        return None
    repo = config.repo(match["name"])
    if repo is None and match["name"].endswith(".git"):
        repo = config.repo(match["name"][: -len(".git")])
    return (repo, match["endpoint"]) if repo is not None else None


class Handler(BaseHTTPRequestHandler):
    server_version = "bot-bottle-git-gate"
    protocol_version = "HTTP/1.1"  # git may send "Expect: 100-continue" with a large push
    timeout = CLIENT_TIMEOUT  # socketserver sets it on the connection: every read and write
    gate: Gate  # set on the subclass made by ``make_server``

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        pass  # each request is logged once, as a JSON line, by the endpoint that served it

    # ------------------------------------------------------------------ dispatch
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        started = time.monotonic()
        parts = urlsplit(self.path)
        found = route(parts.path, self.gate.config)
        if found is None:
            self._plain(404, "not a repository served by the git-gate\n")
            log("request", method=method, path=parts.path, status=404)
            return
        repo, endpoint = found
        if endpoint == "info/refs":
            if method != "GET":
                return self._plain(405, "method not allowed\n")
            service = (parse_qs(parts.query).get("service") or [""])[0]
            if service not in SERVICES:
                self._plain(403, "the git-gate serves git's smart HTTP protocol only\n")
                log("request", repo=repo.name, path=parts.path, status=403)
                return
            self._advertise(repo, service, parts.query, started)
        else:
            if method != "POST":
                return self._plain(405, "method not allowed\n")
            self._rpc(repo, endpoint, started)

    # ------------------------------------------------------------------ endpoints
    def _advertise(self, repo: RepoConfig, service: str, query: str, started: float) -> None:
        try:
            # Fetch and push both start here: the agent sees the upstream's refs as they are now.
            self.gate.mirrors.refresh(repo, requested_at=started)
        except upstream.UpstreamError as exc:
            message = f"upstream {repo.name} unreachable: {exc}"
            body = pktline.error_advertisement(service, message)
            self._send(200, f"application/x-{service}-advertisement", body)
            log("refresh-failed", repo=repo.name, service=service, error=str(exc),
                seconds=round(time.monotonic() - started, 3))
            return
        status = self._backend(repo, "info/refs", "GET", query)
        log("request", repo=repo.name, service=service, endpoint="info/refs", status=status,
            seconds=round(time.monotonic() - started, 3))

    def _rpc(self, repo: RepoConfig, endpoint: str, started: float) -> None:
        if endpoint == "git-receive-pack":
            self._push(repo, started)
        else:
            self._fetch(repo, started)

    def _push(self, repo: RepoConfig, started: float) -> None:
        endpoint = "git-receive-pack"
        if self._encoding(repo, endpoint, PUSH_ENCODINGS, "a push's body unencoded") is None:
            return
        pieces = self._body_pieces()
        section = self._section(repo, endpoint, pieces)
        if section is None:
            return
        verdict_path = self.gate.verdicts / f"{uuid.uuid4().hex}.json"
        with self.gate.mirrors.lock(repo):
            try:
                # Refreshed again, under the lock the check runs in: what the mirror holds counts
                # as published. Had a branch been deleted upstream since the advertisement (a
                # secret taken down), or no advertisement been asked for, its commits would pass
                # unscanned. A request without a ref update changes nothing, checks nothing and
                # asks the upstream nothing: receive-pack just ends.
                if section.payloads and not self._refreshed(repo, endpoint, started, held=True,
                                                            sideband=_sideband(section)):
                    return
                status = self._backend(repo, endpoint, "POST", "", extra_env={HOOK_ENV_VERDICT: str(verdict_path)},
                                       body_pieces=itertools.chain([section.consumed], pieces))
            finally:
                self._remove_quarantines(repo)
        verdict = _read_verdict(verdict_path)
        log("push", repo=repo.name, status=status, seconds=round(time.monotonic() - started, 3), **verdict)

    def _fetch(self, repo: RepoConfig, started: float) -> None:
        endpoint = "git-upload-pack"
        encoding = self._encoding(repo, endpoint, FETCH_ENCODINGS, "a fetch's body unencoded or gzipped")
        if encoding is None:
            return
        pieces = self._body_pieces()
        if encoding in body.GZIP_ENCODINGS:
            # Inflated here, and handed to git inflated: the wants checked are the wants git reads.
            pieces = body.gunzip(pieces, MAX_FETCH_BODY)
        section = self._section(repo, endpoint, pieces)
        if section is None:
            return
        mirror = self.gate.mirrors.path(repo)
        try:
            wanted = pktline.wanted_ids(section.payloads, reach.hex_length(mirror))
        except (pktline.ProtocolError, reach.CheckFailed) as exc:
            self._plain(400, f"{exc}\n")
            log("request", repo=repo.name, endpoint=endpoint, status=400, error=str(exc)[:200])
            return
        # The haves (all upload-pack reads after the wants): the whole request is in before the
        # refs are read, so nothing the client does can hold a check's refs while the mirror moves.
        haves = self._section(repo, endpoint, itertools.chain([section.after], pieces), until_done=True)
        if haves is None:
            return
        if not self._refreshed(repo, endpoint, started, held=False):
            return
        refs = self._wants_served(repo, wanted)
        if refs is None:
            return
        request = self._unhidden(repo, section, haves, refs)
        if request is None:
            return
        status = self._serve_frozen(repo, refs, itertools.chain([request, haves.after], pieces))
        log("request", repo=repo.name, endpoint=endpoint, status=status, seconds=round(time.monotonic() - started, 3))

    def _serve_frozen(self, repo: RepoConfig, refs: reach.Refs, body_pieces: Iterator[bytes]) -> int:
        """Run upload-pack on a view of the mirror frozen at ``refs`` (those just checked): a
        refresh meanwhile changes nothing git reads. A view that cannot be made (a full disk) is
        an error git prints."""
        endpoint = "git-upload-pack"
        with contextlib.ExitStack() as stack:
            try:
                project_root = stack.enter_context(view.frozen(self.gate.mirrors.path(repo), refs, self.gate.mirrors.views))
            except OSError as exc:
                message = f"the git-gate could not prepare this fetch: {exc.strerror or exc}"
                self._fetch_error(message)
                log("fetch-refused", repo=repo.name, error=message[:300])
                return 200
            return self._backend(repo, endpoint, "POST", "", project_root=project_root, body_pieces=body_pieces)

    def _encoding(self, repo: RepoConfig, endpoint: str, allowed: tuple[str, ...], takes: str) -> str | None:
        """The request body's Content-Encoding if it is one of ``allowed``; else answer 415
        (the gate takes ``takes``, as git sends it) and return None."""
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        if encoding in allowed:
            return encoding
        self._plain(415, f"the git-gate takes {takes}, as git sends it\n")
        log("request", repo=repo.name, endpoint=endpoint, status=415, encoding=encoding[:40])
        return None

    def _wants_served(self, repo: RepoConfig, wanted: list[str]) -> reach.Refs | None:
        """The refs as they are now, if every object the fetch asks for is one they reach; if
        not, answer with an error git prints (``fatal: remote error: ...``) and return None."""
        mirror = self.gate.mirrors.path(repo)
        try:
            refs = reach.read_refs(mirror)
            refused = self.gate.reach.unreachable(mirror, wanted, refs)
        except reach.CheckFailed as exc:
            message = f"the git-gate could not check the objects this fetch asks for: {exc}"
            refused = []
        else:
            if not refused:
                return refs
            more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
            message = (f"upload-pack: not our ref {refused[0]}{more}: the git-gate serves only objects that"
                       " its branches and tags reach")
        self._fetch_error(message)
        log("fetch-refused", repo=repo.name, wants=len(wanted), refused=refused[:20], error=message[:300])
        return None

    def _unhidden(self, repo: RepoConfig, wants: pktline.Section, haves: pktline.Section,
                  refs: reach.Refs) -> bytes | None:
        """The request's wants and haves as git is handed them: without the ``shallow`` and
        ``have`` lines naming anything but a commit ``refs`` reach, which upload-pack would
        acknowledge (or die on) and so tell whether a hidden object exists. If the check cannot
        run, answer with the reason and return None."""
        mirror = self.gate.mirrors.path(repo)
        try:
            hexsz = reach.hex_length(mirror)
            shallows = pktline.named_ids(wants.payloads, "shallow", hexsz)
            has = pktline.named_ids(haves.payloads, "have", hexsz)
            dropped = reach.hidden(mirror, refs, shallows + has)
        except reach.CheckFailed as exc:
            message = f"the git-gate could not check the objects this fetch says it has: {exc}"
            self._fetch_error(message)
            log("fetch-refused", repo=repo.name, error=message[:300])
            return None
        if dropped:
            log("hidden-lines-dropped", repo=repo.name, count=len(dropped))  # ids never logged
        return (pktline.without(wants.data, "shallow", hexsz, dropped)
                + pktline.without(haves.data, "have", hexsz, dropped))

    def _fetch_error(self, message: str) -> None:
        """Answer a fetch with an error its git prints (``fatal: remote error: <message>``)."""
        self.close_connection = True  # the rest of the request is not read
        self._send(200, "application/x-git-upload-pack-result", pktline.sideband_error(message))

    def _section(self, repo: RepoConfig, endpoint: str, pieces: Iterator[bytes], *,
                       until_done: bool = False) -> pktline.Section | None:
        """The first section of ``pieces`` (a fetch's wants or haves, a push's ref updates), read
        before git runs; on a body cut short, malformed or too large, answer and return None."""
        try:
            return pktline.read_section(pieces, MAX_SECTION, until_done=until_done)
        except (body.CutShort, OSError):  # closed, reset, or quiet past CLIENT_TIMEOUT
            self._try_plain(400, "the request body ended before its declared end\n")
            log("request-cut-short", repo=repo.name, endpoint=endpoint)
        except ValueError as exc:  # a malformed length or chunk, pkt-lines git would refuse, a gzip bomb
            self._try_plain(400, f"{exc}\n")
            log("request", repo=repo.name, endpoint=endpoint, status=400, error=str(exc)[:200])
        return None

    def _remove_quarantines(self, repo: RepoConfig) -> None:
        """After a push, with its lock still held: a receive-pack killed before it ended (a
        timeout, a body cut short) leaves its quarantine behind, which nothing else removes."""
        removed = self.gate.mirrors.remove_quarantines(repo)
        if removed:
            log("quarantine-removed", repo=repo.name, folders=removed)

    def _refreshed(self, repo: RepoConfig, endpoint: str, requested_at: float, *, held: bool,
                   sideband: bool = False) -> bool:
        """Refresh the mirror (a push: one started since ``requested_at``; a fetch: one started at
        most ``RPC_FRESH_FOR`` before it); when the upstream cannot be reached, answer with the
        reason, as an error the agent's git prints, and return False."""
        try:
            if held:
                self.gate.mirrors.refresh_held(repo, requested_at=requested_at)
            else:
                self.gate.mirrors.refresh(repo, requested_at=requested_at, fresh_for=RPC_FRESH_FOR)
        except upstream.UpstreamError as exc:
            message = f"upstream {repo.name} unreachable: {exc}"
            if endpoint == "git-receive-pack":
                answer = pktline.push_error(message, sideband)
            else:
                answer = pktline.sideband_error(message)
            self.close_connection = True  # the rest of the request is not read
            self._send(200, f"application/x-{endpoint}-result", answer)
            log("refresh-failed", repo=repo.name, endpoint=endpoint, error=str(exc))
            return False
        return True

    # ------------------------------------------------------------------ CGI
    def _backend(self, repo: RepoConfig, endpoint: str, method: str, query: str, extra_env: dict[str, str] | None = None,
                 body_pieces: Iterator[bytes] | None = None, project_root: Path | None = None) -> int:
        """Run git http-backend for the request, its body taken from ``body_pieces`` (what is
        left of it after the gate read its start) or else from the connection, on the repo of
        that name in ``project_root`` (a fetch's frozen view) or else on the mirror."""
        env = upstream.clean_env(
            {
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": "/dev/null",
                "GIT_PROJECT_ROOT": str(project_root or self.gate.mirrors.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "GIT_HTTP_MAX_REQUEST_BUFFER": "100M",
                "PATH_INFO": f"/{repo.name}.git/{endpoint}",
                "QUERY_STRING": query,
                "REQUEST_METHOD": method,
                "REMOTE_ADDR": "127.0.0.1",
                "REMOTE_USER": "agent",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                # No HTTP_GIT_PROTOCOL: protocol v0 only (see the module docstring). No
                # HTTP_CONTENT_ENCODING: git gets every body unencoded (a fetch's is inflated here).
                **(extra_env or {}),
            }
        )
        # No CONTENT_LENGTH either: the gate enforces the body's length and closes git's input at
        # its end (git 2.39, given a length, loops at full CPU on a body that ends early).
        # Its own process group (receive-pack and the hook run in it): a backend past its time is
        # killed whole, even while its answer is still being relayed (reading it would block).
        proc = subprocess.Popen(
            ["git", "http-backend"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, cwd=str(self.gate.mirrors.root), process_group=0,
        )
        watchdog = gate_proc.Watchdog(proc, BACKEND_TIMEOUT)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        # Feed the request body while the answer streams back: neither side may wait for the other.
        cut_short = threading.Event()
        if method != "POST":
            body_pieces = iter(())
        elif body_pieces is None:
            body_pieces = self._body_pieces()
        feeder = threading.Thread(target=self._feed, args=(proc, body_pieces, cut_short), daemon=True)
        feeder.start()
        errors: list[bytes] = []
        drain = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
        drain.start()
        try:
            status, delivered = self._relay(proc.stdout, cut_short)
            if not delivered:
                self._client_gone(proc, endpoint)
        finally:
            proc.wait()  # bounded: the watchdog kills it at BACKEND_TIMEOUT
            watchdog.stop()
            if watchdog.fired or cut_short.is_set():
                # Killed: its helpers (receive-pack, index-pack) may still be dying; let them go
                # before the caller removes what they were writing.
                gate_proc.wait_group_gone(proc.pid, KILLED_GRACE)
            feeder.join(timeout=5)
            drain.join(timeout=5)
        if watchdog.fired:
            log("backend-timeout", repo=repo.name, endpoint=endpoint, seconds=BACKEND_TIMEOUT)
        if cut_short.is_set():
            log("request-cut-short", repo=repo.name, endpoint=endpoint)
        stderr = b"".join(errors).decode("utf-8", "replace").strip()
        if stderr:
            log("backend-stderr", repo=repo.name, endpoint=endpoint, text=stderr[-500:])
        return status

    def _feed(self, proc: subprocess.Popen[bytes], pieces: Iterator[bytes], cut_short: threading.Event) -> None:
        """Copy the request body to the backend. A body that ends before its declared end kills
        the backend's process group at once: git must not act on part of a request, nor wait
        (holding the repo's lock) for the rest."""
        assert proc.stdin is not None
        try:
            self._copy_body(pieces, proc.stdin)
        except (body.CutShort, OSError, ValueError):
            # Cut short, stalled past CLIENT_TIMEOUT, reset, or malformed (a bad length or chunk,
            # a gzip body corrupt or inflating past its limit).
            cut_short.set()  # before the kill: the relay, seeing git's output end, must know why
            gate_proc.kill_group(proc)
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    @staticmethod
    def _copy_body(pieces: Iterator[bytes], sink: IO[bytes]) -> None:
        """The whole body into ``sink``, or ``body.CutShort``. A backend that stops reading early
        (it answered already) ends the copy quietly: that is not the client's doing."""
        for data in pieces:
            try:
                sink.write(data)
            except (OSError, ValueError):
                return

    def _body_pieces(self) -> Iterator[bytes]:
        """The request's body as it arrives from the connection."""
        return body.pieces(self.rfile, self.headers.get("Content-Length"), self.headers.get("Transfer-Encoding", ""))

    def _client_gone(self, proc: subprocess.Popen[bytes], endpoint: str) -> None:
        """The agent stopped reading the answer. A push runs to its end (its forwarding upstream
        must not be cut in the middle; its answer is small); a fetch is stopped, as nobody reads
        the pack it makes."""
        assert proc.stdout is not None
        if endpoint != "git-receive-pack":
            gate_proc.kill_group(proc)
        while proc.stdout.read(CHUNK):
            pass

    def _relay(self, out: IO[bytes], cut_short: threading.Event) -> tuple[int, bool]:
        """Translate the CGI answer (headers, blank line, body) into an HTTP response: (status,
        whether the agent took all of it)."""
        status, headers = 200, []
        first = True
        while True:
            line = out.readline(8192)
            if not line and first:
                # git http-backend died before answering: say so rather than send an empty 200.
                if cut_short.is_set():
                    return 400, self._try_plain(400, "the request body ended before its declared end\n")
                return 502, self._try_plain(502, "the git-gate's git backend failed\n")
            first = False
            if not line or line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip(), value.strip()
            if name.lower() == "status":
                status = int(value.split()[0])
            else:
                headers.append((name, value))
        self.close_connection = True
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            # The length is unknown while git streams: the end of the connection ends the body.
            self.send_header("Connection", "close")
            self.end_headers()
            while data := (out.read1(CHUNK) if hasattr(out, "read1") else out.read(CHUNK)):
                self.wfile.write(data)
        except OSError:  # the agent went away or stopped reading for CLIENT_TIMEOUT
            return status, False
        return status, True

    # ------------------------------------------------------------------ plain answers
    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, max-age=0, must-revalidate")
        self.end_headers()
        self.wfile.write(body)

    def _plain(self, status: int, text: str) -> None:
        # Requests with a body that are not served: read nothing, and do not keep the connection.
        self.close_connection = True
        self._send(status, "text/plain; charset=utf-8", text.encode())

    def _try_plain(self, status: int, text: str) -> bool:
        """``_plain`` to an agent that may be gone already; whether it was delivered."""
        try:
            self._plain(status, text)
        except OSError:
            return False
        return True


def _sideband(section: pktline.Section) -> bool:
    return bool(pktline.capabilities(section.payloads) & {"side-band", "side-band-64k"})


def _read_verdict(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"result": "no-verdict"}
    finally:
        path.unlink(missing_ok=True)
    return {k: data.get(k) for k in ("result", "updates", "commits_scanned", "detector", "findings", "detail")}


class BoundedServer(ThreadingHTTPServer):
    """A threading server that serves at most ``max_handlers`` connections at once.

    Each connection costs a thread, and a request a git process or two besides; the agent decides
    how many it opens, and the bundle's task limit is shared with the proxy's forwarder. Past the
    bound the accept loop waits for a handler to end, so further connections wait in the
    listening socket's backlog (each handler ends within ``CLIENT_TIMEOUT`` of a stalled client).
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 max_handlers: int = MAX_HANDLERS) -> None:
        super().__init__(address, handler)
        self.slots = threading.BoundedSemaphore(max_handlers)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()  # no thread was started to give it back
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def make_server(config: GateConfig, mirrors: Mirrors, state_dir: Path, host: str, port: int,
                max_handlers: int = MAX_HANDLERS) -> ThreadingHTTPServer:
    gate = Gate(config, mirrors, state_dir)
    handler = type("GateHandler", (Handler,), {"gate": gate})
    return BoundedServer((host, port), handler, max_handlers)

