"""PID 1 of the sidecar container: start the daemons, forward signals, reap, fail closed.

Daemons today: the egress proxy (mitmproxy with the egress addon, ``egress/proxy.py``) on the
container's loopback, and socat exposing it
as a unix socket in the volume shared with the agent (``/run/bottle/proxy.sock``); the agent has
no network and reaches the proxy only through that socket. When any daemon dies, everything is
stopped and this process exits non-zero, so the container stops and the agent is offline rather
than unguarded. The git-gate runs when the bottle has repos, the supervise MCP server when the
policy lists the ``supervise`` internal service: its port listens from the start and the server
itself starts on the first connection (``OnFirstConnection``).

Before anything starts, the policy and the secrets file are read and checked: a route whose
credential is missing fails the start with a message naming the credential (never a value).

Files in the shared run folder (the agent mounts it, so nothing private goes there):
``proxy.sock`` the proxy, ``ca.crt`` the bottle CA's public certificate, ``ready`` once the socket
accepts (the proxy may still be loading then: a connection waits for it, see
``PROXY_CONNECT_RETRIES``). The CA's private key stays in the sidecar-only state folder.
"""

from __future__ import annotations

import argparse
import grp
import importlib
import json
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot_bottle.sidecar.ca_maker import (  # noqa: F401 - the CA's names, as the init's own
    CONFDIR_NAME,
    DEFAULT_STATE_DIR,
    MITM_CA_CERT,
    MITM_CA_KEY_SIZE,
    MITM_DHPARAM,
    NO_MITMPROXY,
    STOP_SIGNALS,
    create_ca_files,
    start_ca,
    take_held_stops,
)
from bot_bottle.sidecar.supervise import spool_layout

# ``typing`` costs the start a few milliseconds too; type checkers read this as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from bot_bottle.sidecar.egress.credentials import Secrets, SecretsError, check_credentials  # noqa: F401
    from bot_bottle.sidecar.egress.policy import Policy, PolicyError  # noqa: F401

# Read only once the proxy is started (``preflight``), so imported then, not before it starts:
# the egress policy's and credentials' modules are most of what the init would import otherwise.
_LATE_NAMES = {
    "Secrets": "bot_bottle.sidecar.egress.credentials",
    "SecretsError": "bot_bottle.sidecar.egress.credentials",
    "check_credentials": "bot_bottle.sidecar.egress.credentials",
    "Policy": "bot_bottle.sidecar.egress.policy",
    "PolicyError": "bot_bottle.sidecar.egress.policy",
}


def __getattr__(name: str) -> object:
    """``init.Secrets`` and the other late names still read as the init's own."""
    if name not in _LATE_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LATE_NAMES[name]), name)


SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
STOP_GRACE_SECONDS = 10
READY_TIMEOUT_SECONDS = 60
READY_POLL_SECONDS = 0.01  # a refused connect on loopback costs microseconds; the start waits on it


# In the gate's own folder: the values its push scan looks for (``write_gate_secrets``). The
# host's gate config names it (``provision.git.GATE_SECRETS_PATH``).
GATE_SECRETS_FILE = "known-secrets.json"


@dataclass(frozen=True)
class Config:
    # The host's launch hands these in after start (``receive_config``), onto a tmpfs;
    # a sidecar started without ``config_arrives`` finds them there already.
    policy: Path = Path("/etc/bot-bottle/policy.json")
    # Likewise, mode 600; absent only from a config found in place (a handed-in one holds it).
    secrets: Path = Path("/etc/bot-bottle/secrets.json")
    run_dir: Path = Path("/run/bottle")  # shared with the agent
    state_dir: Path = DEFAULT_STATE_DIR  # sidecar only: CA private key
    log_dir: Path = Path("/var/log/bottle")
    proxy_port: int = 8080
    git_gate_config: Path = Path("/etc/bot-bottle/git-gate.json")  # present when the bottle has repos
    # The supervise MCP server is stdlib only: the system python3 runs it (no venv's site to load).
    supervise_python: Path = Path("/usr/bin/python3")
    config_arrives: bool = False  # wait for the config to be handed in (``receive_config``)
    # ... on PID 1's stdin, at the container's start (``--config-stdin``), not by an exec after.
    config_stdin: bool = False
    # Also publish the CA certificate under this name in the run folder: a name new to each
    # launch, which the host's launch waits for inside the agent (a reused volume may hold an
    # older start's ``ca.crt``, never this name).
    ca_copy: str | None = None

    @property
    def gate_credentials(self) -> Path:
        """The git-gate's own folder of config (its upstream credentials), the gate's alone."""
        return self.git_gate_config.parent / "git-gate"

    @property
    def gate_secrets(self) -> Path:
        """The bottle's own secret values as the git-gate's push scan reads them (``write_gate_secrets``)."""
        return self.gate_credentials / GATE_SECRETS_FILE

    @property
    def supervise_root(self) -> Path:
        """The spool: proposals, decisions, grants. Sidecar only, never on the agent's volume."""
        return self.state_dir / "supervise"

    @property
    def socket_path(self) -> Path:
        return self.run_dir / "proxy.sock"

    @property
    def ready_path(self) -> Path:
        return self.run_dir / "ready"

    @property
    def ca_path(self) -> Path:
        return self.run_dir / "ca.crt"

    @property
    def confdir(self) -> Path:
        return self.state_dir / CONFDIR_NAME

    @property
    def ca_copy_path(self) -> Path | None:
        return self.run_dir / self.ca_copy if self.ca_copy else None


# What ``--ca-copy`` may name: a file of its own in the run folder, never a path.
CA_COPY_NAME = re.compile(r"ca-[0-9a-f]{16,64}\.crt")


def publish_ca(config: Config) -> None:
    """The CA's public certificate in the shared run folder, as ``ca.crt`` and its copy's name."""
    cert = (config.confdir / MITM_CA_CERT).read_bytes()
    _write_atomic(config.ca_path, cert)
    if config.ca_copy_path is not None:
        _write_atomic(config.ca_copy_path, cert)


GIT_GATE_PORT = 9420

# The accounts the sidecar image gives its daemons (see images/sidecar/Dockerfile): no daemon
# the agent talks to runs as root or holds a capability. The proxy (and its socket forwarder)
# reads the route credentials, the known secret values and the CA key; the git-gate its
# upstream credentials; the MCP server only the spool. A flaw in one reaches no other's files.
PROXY_ACCOUNT = "bottle-proxy"
GATE_ACCOUNT = "bottle-gate"
SUPERVISE_ACCOUNT = "bottle-supervise"
ACCOUNTS = (PROXY_ACCOUNT, GATE_ACCOUNT, SUPERVISE_ACCOUNT)
SPOOL_GROUP = "bottle-spool"  # the supervise spool: the proxy, both daemons and the host's ctl
# What the gate and the MCP server write in the spool stays readable by the group's other
# members; the proxy's log stays readable by the host's `docker exec` (root, no capability to
# read past a file's mode).
DAEMON_UMASK = 0o007
PROXY_UMASK = 0o022


@dataclass(frozen=True)
class Account:
    uid: int
    gid: int
    groups: tuple[int, ...]  # supplementary: the spool's group
    home: str
    umask: int = DAEMON_UMASK


def daemon_accounts(names: Sequence[str] = ACCOUNTS,
                    spool_group: str = SPOOL_GROUP) -> dict[str, Account] | None:
    """The image's daemon accounts by name, when this init can switch to them: running as root
    where they exist (the sidecar image), with the capabilities to hand them over (the launcher
    grants them). None elsewhere (a test running the init as itself)."""
    if os.geteuid() != 0 or not _holds_capabilities(SWITCH_CAPABILITIES):
        return None
    try:
        spool = grp.getgrnam(spool_group).gr_gid
        entries = [pwd.getpwnam(name) for name in names]
    except KeyError:
        return None
    return {e.pw_name: Account(e.pw_uid, e.pw_gid, (spool,), e.pw_dir,
                               PROXY_UMASK if e.pw_name == PROXY_ACCOUNT else DAEMON_UMASK) for e in entries}


# CAP_CHOWN, CAP_KILL (to stop daemons of other accounts), CAP_SETGID, CAP_SETUID
SWITCH_CAPABILITIES = (0, 5, 6, 7)

# Said when the image has the daemons' accounts but the init cannot switch to them: every daemon
# would run as root and read every other's files (the route credentials, the CA key, the gate's
# upstream credentials), so the start fails instead.
UNSWITCHABLE = ("the sidecar's daemon accounts exist but its init lacks the capabilities to switch "
                "to them (CHOWN, KILL, SETGID, SETUID); refusing to run every daemon as root")


def image_has_accounts(names: Sequence[str] = ACCOUNTS, spool_group: str = SPOOL_GROUP) -> bool:
    """Whether this system has the sidecar image's daemon accounts (it is the sidecar image)."""
    try:
        grp.getgrnam(spool_group)
        for name in names:
            pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _holds_capabilities(bits: Sequence[int], status: Path = Path("/proc/self/status")) -> bool:
    try:
        line = next(ln for ln in status.read_text().splitlines() if ln.startswith("CapEff:"))
        effective = int(line.split(":", 1)[1], 16)
    except (OSError, StopIteration, ValueError):
        return False
    return all(effective >> bit & 1 for bit in bits)


def hand_out_folders(config: Config, accounts: dict[str, Account]) -> None:
    """Give each daemon account its own folders (run as root, before any daemon starts; the
    config need not be here yet).

    The log folder is the proxy's, and the shared run folder its group's too, for the socket;
    the CA folder the proxy's group reads (``share_ca``). The gate's state is the gate's. The
    spool is the group's to read, and each account's to write only where that cannot grant
    anything (``hand_out_spool``).
    """
    proxy, gate = accounts[PROXY_ACCOUNT], accounts[GATE_ACCOUNT]
    config.state_dir.chmod(0o711)
    for path in (config.log_dir, *_tree(config.log_dir)):
        if not path.is_symlink():
            os.chown(path, proxy.uid, proxy.gid)
    os.chown(config.run_dir, 0, proxy.gid)
    config.run_dir.chmod(0o775)  # the agent (uid 1000, not in the group) still writes nothing there
    share_ca(config.confdir, proxy)
    gate_state = config.state_dir / "git-gate"
    gate_state.mkdir(parents=True, exist_ok=True)
    # Children first: once a folder is the gate's (mode 700), root no longer gets into it.
    for path in (*_tree(gate_state)[::-1], gate_state):
        os.chown(path, gate.uid, gate.gid, follow_symlinks=False)
    hand_out_spool(config.supervise_root, gate)


def hand_out_spool(root: Path, gate: Account) -> None:
    """The supervise spool as ``spool_layout.SHARED_FOLDERS`` lays it out: the group reads it all,
    each daemon writes only what cannot grant (its proposals and expiries, the gate its records),
    and only root (the host's ``ctl``) writes decisions and grants.

    A restarted sidecar's spool may hold what an older image wrote (root's files of mode 600, or
    a daemon's in folders the whole group wrote, grants and decisions included): each file
    becomes its folder owner's, mode 640, so nothing a daemon wrote then stays its to change.
    """
    spool_gid = gate.groups[0]
    owners = {"root": os.geteuid(), "gate": gate.uid}
    root.mkdir(parents=True, exist_ok=True)
    _own(root, os.geteuid(), spool_gid, spool_layout.SPOOL_MODE)
    for name, (mode, owner) in spool_layout.SHARED_FOLDERS.items():
        folder = root / name
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            folder.unlink()  # an older image let the group write here; the spool's folders are folders
        folder.mkdir(exist_ok=True)
        for path in _tree(folder):
            if path.is_file() and not path.is_symlink():
                _own(path, owners[owner], spool_gid, 0o640)
        _own(folder, owners[owner], spool_gid, mode)
    for name, mode in ((spool_layout.DECIDE_LOCK_FILE, 0o640), (spool_layout.GRANTS_LOCK_FILE, 0o600),
                       (spool_layout.GRANTS_FILE, 0o640)):
        path = root / name
        if path.is_symlink():
            path.unlink()  # an older image let the group write here; root's files are no links
        if name != spool_layout.GRANTS_FILE:
            path.touch(exist_ok=True)
        if path.is_file():
            _own(path, os.geteuid(), spool_gid, mode)


def _own(path: Path, uid: int, gid: int, mode: int) -> None:
    """``path`` owned by ``uid``:``gid`` with ``mode``. Root without CAP_FOWNER changes the mode
    of its own files only: the file becomes root's first, gets its mode, then its owner's."""
    os.chown(path, os.geteuid(), gid, follow_symlinks=False)
    path.chmod(mode)
    if uid != os.geteuid():
        os.chown(path, uid, gid, follow_symlinks=False)


def hand_out_config(config: Config, accounts: dict[str, Account]) -> None:
    """Give each daemon account its own part of the config the host handed in (run as root,
    before the daemons read it).

    The host's files come as root's with mode 600. The policy and secrets become readable by
    the proxy's group (root, the init, keeps them); the git-gate's config and upstream
    credentials become the gate's. The folders holding them are only traversable, so no account
    lists what is not its own.
    """
    proxy, gate = accounts[PROXY_ACCOUNT], accounts[GATE_ACCOUNT]
    for folder in {config.policy.parent, config.git_gate_config.parent}:
        if folder.is_dir():
            folder.chmod(0o711)
    for path in (config.policy, config.secrets):
        if path.is_file():
            os.chown(path, 0, proxy.gid)
            path.chmod(0o640)
    gate_credentials = config.gate_credentials
    for path in (config.git_gate_config, *_tree(gate_credentials)[::-1], gate_credentials):
        if path.exists() or path.is_symlink():
            os.chown(path, gate.uid, gate.gid, follow_symlinks=False)


def write_gate_secrets(config: Config, secrets: Secrets) -> None:
    """The bottle's own secret values, for the git-gate's push scan, in the gate's own folder
    (``hand_out_config`` makes it the gate's).

    The secrets file stays the proxy's: it holds the route credentials, which the agent never
    sees and the gate, which the agent talks to, has no need of. The gate gets the values the
    agent's environment holds anyway (its ``?prompt`` and ``${HOST_VAR}`` values), the ones a
    push could carry out; a value that is also a route credential stays the proxy's alone.
    """
    credentials = set(secrets.credentials.values())
    own = {name: value for name, value in secrets.known_secrets.items() if value and value not in credentials}
    config.gate_credentials.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_private(config.gate_secrets, json.dumps({"known_secrets": own}))


def share_ca(confdir: Path, proxy: Account) -> None:
    """The CA folder readable by the proxy's group: root keeps it (the init makes the CA there),
    the proxy loads it. Done before the proxy loads it, whether made now or by an earlier start."""
    os.chown(confdir, 0, proxy.gid)
    confdir.chmod(0o750)
    for path in _tree(confdir):
        if path.is_file() and not path.is_symlink():
            os.chown(path, 0, proxy.gid)
            path.chmod(0o640)


def _tree(folder: Path) -> list[Path]:
    """Everything under ``folder``, never through a symlink (a daemon may have planted one)."""
    out: list[Path] = []
    for top, dirs, files in os.walk(folder):
        out += [Path(top, name) for name in (*dirs, *files)]
    return out


def git_gate_argv(config: Config) -> list[str]:
    return [
        sys.executable, "-m", "bot_bottle.sidecar.git_gate",
        "--config", str(config.git_gate_config),
        "--port", str(GIT_GATE_PORT),
        "--state-dir", str(config.state_dir / "git-gate"),
    ]


SUPERVISE_SERVICE = "supervise"


def supervise_argv(config: Config, port: int, fd: int | None = None) -> list[str]:
    """The MCP server's argv; with ``fd`` it serves the listening socket the init hands it."""
    return [
        str(config.supervise_python), "-m", "bot_bottle.sidecar.supervise.server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--root", str(config.supervise_root),
        *(["--fd", str(fd)] if fd is not None else []),
    ]


# The egress proxy's command (bot_bottle.sidecar.egress.proxy, installed on the image's PATH):
# mitmproxy's proxy core with the egress addon, without mitmdump's 31 default addons.
PROXY_COMMAND = "bottle-proxy"


def proxy_argv(config: Config, command: str = PROXY_COMMAND, *, wait_for: Path | None = None) -> list[str]:
    """The proxy's argv; with ``wait_for`` it loads its CA only once that file exists."""
    argv = [
        command,
        "--listen-host", "127.0.0.1",
        "--listen-port", str(config.proxy_port),
        *(["--wait-for", str(wait_for)] if wait_for is not None else []),
        "--set", f"confdir={config.confdir}",
        "--set", "termlog_verbosity=warn",
        "--set", f"bottle_policy={config.policy}",
        "--set", f"bottle_secrets={config.secrets}",
        "--set", f"bottle_log_dir={config.log_dir}",
        # Where held requests become proposals and grants are read (the supervise spool).
        "--set", f"bottle_supervise_dir={config.supervise_root}",
        # Bytes that are not HTTP inside an allowed tunnel would skip every request rule: with raw
        # TCP off, mitmproxy parses them as HTTP and refuses what does not parse.
        "--set", "rawtcp=false",
    ]
    if SYSTEM_CA_BUNDLE.exists():
        # Verify upstreams against the system store (which holds any extra CA the image was
        # built with) instead of the certifi bundle mitmproxy would use otherwise.
        argv += ["--set", f"ssl_verify_upstream_trusted_ca={SYSTEM_CA_BUNDLE}"]
    return argv


# socat copies 8 KiB at a time by default; large uploads through the socket then cost a
# system call pair per 8 KiB. 256 KiB blocks keep the copy cheap.
SOCAT_BUFFER = 256 * 1024
# socat relays each read as one write; with Nagle on, a request's body written just after its
# headers waits for the proxy's delayed ACK (about 40 ms). No Nagle on the loopback hop.


# The agent decides how many connections it opens, and socat forks a process for each: unbounded,
# a few hundred held open used up the bundle's task limit, and then socat's next fork failed and it
# exited, taking the whole bundle (and the bottle's network) down for good. So socat serves at most
# this many connections at once, which leaves the other daemons room under the task limit, and a
# fork that fails anyway is retried once a second instead of ending socat.
SOCAT_MAX_CHILDREN = 160
SOCAT_RETRY = "forever,interval=1"
# Connections past that bound wait, connected, in the socket's backlog (the kernel caps it at
# net.core.somaxconn). It is this long because a connect to a full backlog blocks, and under
# gVisor such a connect cannot be interrupted, not even by SIGKILL or O_NONBLOCK.
SOCAT_BACKLOG = 4096


# The bundle is ready before the proxy has loaded its code (about a third of a second of every
# start): a connection made meanwhile is held by its socat child, which tries the proxy's port
# again every PROXY_CONNECT_INTERVAL until the proxy listens, for as long as the init gives the
# proxy to come up. Past that the start has failed and the whole bundle is going down anyway.
PROXY_CONNECT_INTERVAL = 0.02
PROXY_CONNECT_RETRIES = int(READY_TIMEOUT_SECONDS / PROXY_CONNECT_INTERVAL)


def socat_argv(config: Config, max_children: int | None = None) -> list[str]:
    """socat's argv; with ``max_children`` it is bounded and outlasts a failed fork."""
    bounded = f",max-children={max_children},backlog={SOCAT_BACKLOG},{SOCAT_RETRY}" if max_children else ""
    return [
        "socat",
        "-b", str(SOCAT_BUFFER),
        f"UNIX-LISTEN:{config.socket_path},fork,mode=777,unlink-early{bounded}",
        f"TCP:127.0.0.1:{config.proxy_port},nodelay,retry={PROXY_CONNECT_RETRIES},interval={PROXY_CONNECT_INTERVAL:g}",
    ]


def say(event: str, **fields: object) -> None:
    """One JSON line on stderr; egress decisions own stdout."""
    sys.stderr.write(json.dumps({"event": "sidecar", "what": event, **fields}) + "\n")
    sys.stderr.flush()


@dataclass
class OnFirstConnection:
    """A daemon started when its listening socket (bound by the init) gets its first connection.

    The socket listens from the start, so the service is reachable at ``ready``; a connection
    made before the daemon runs waits in the socket's backlog and is served once it does. The
    daemon inherits the socket (``spawn(fd)`` gives its argv) and the init closes its own copy.
    """

    name: str
    listener: socket.socket
    argv: Callable[[int], list[str]]
    env: dict[str, str] | None = None
    account: Account | None = None


@dataclass
class Supervisor:
    """Runs daemons as children and reaps every process that ends up parented to PID 1."""

    daemons: dict[int, str] = field(default_factory=dict)
    stopping: bool = False
    pending: OnFirstConnection | None = None  # a daemon not started until someone connects
    failure: tuple[str, int] | None = None  # the first daemon that ended unasked
    asked: int | None = None  # the signal that asked for the stop, if one did
    # Children that are no daemon (the CA's maker): stopped with the daemons, reaped by their
    # own waiter (``wait_helper``), never by ``waitpid(-1)`` before it.
    helpers: set[int] = field(default_factory=set)
    wake: int | None = None  # read end of the signals' wake-up pipe (``listen``): ends a wait at once
    _children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _helper_lock: threading.RLock = field(default_factory=threading.RLock)

    def listen(self) -> Callable[[], None]:
        """Stop on SIGTERM, SIGINT and SIGHUP from now on, and at once on any of them PID 1
        caught before this init handled them (``ca_maker.hold_stops``); what undoes it."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        previous_fd = signal.set_wakeup_fd(wake_w)
        previous = {sig: signal.signal(sig, self.ask) for sig in STOP_SIGNALS}
        self.wake = wake_r
        for sig in take_held_stops():  # read once this init's own handlers are in place
            self.ask(sig)

        def undo() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
            signal.set_wakeup_fd(previous_fd)
            self.wake = None
            os.close(wake_r)
            os.close(wake_w)

        return undo

    def ask(self, sig: int, _frame: object = None) -> None:
        """A signal asking for the stop: the first one is the one the init names."""
        if self.asked is None:
            self.asked = sig
        self.stop()

    def check(self, what: str) -> None:
        """Raise ``_Stopped`` once a stop is asked for, before the start goes on to ``what``."""
        if self.stopping:
            raise _Stopped(f"stopped before {what}")

    def pause(self, timeout: float, fds: Sequence[int] = ()) -> list[int]:
        """Wait up to ``timeout`` for one of ``fds`` to be readable, ending early on a signal (the
        caller looks at ``stopping``); the readable ones."""
        watched = [*fds, *([self.wake] if self.wake is not None else [])]
        if not watched:
            time.sleep(timeout)
            return []
        readable, _, _ = select.select(watched, [], [], max(timeout, 0))
        if self.wake is not None and self.wake in readable:
            try:
                os.read(self.wake, 512)
            except BlockingIOError:
                pass
        return [fd for fd in readable if fd != self.wake]

    def adopt_helper(self, pid: int | None) -> None:
        """``pid`` (None: no child) is stopped with the daemons, reaped by ``wait_helper``."""
        if pid is None:
            return
        with self._helper_lock:
            self.helpers.add(pid)
        if self.stopping:  # asked before it was known here: it ends now
            self._signal_helpers(signal.SIGTERM)

    def wait_helper(self, pid: int) -> int:
        """Wait for the helper ``pid`` to end, reap it and give its exit status. Reaped only once
        it is no longer the stop's to signal: a stop never signals a pid already handed on."""
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        with self._helper_lock:
            self.helpers.discard(pid)
            _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)

    def _signal_helpers(self, sig: int) -> None:
        with self._helper_lock:
            for pid in self.helpers:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass

    def spawn(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None,
              account: Account | None = None, pass_fds: tuple[int, ...] = ()) -> int:
        self.check(f"starting {name}")
        exe = shutil.which(argv[0])
        if exe is None:
            raise _StartFailed(f"{argv[0]} not found on PATH")
        env = dict(env if env is not None else os.environ)
        if account is None:
            pid = os.posix_spawn(exe, list(argv), env)
        else:
            # The switch happens in the child before exec (setgroups, setgid, setuid); a uid other
            # than 0 keeps no capability, and no-new-privileges holds it there.
            env["HOME"] = account.home
            child = subprocess.Popen(  # noqa: S603 - our own argv
                list(argv), executable=exe, env=env, user=account.uid, group=account.gid,
                extra_groups=list(account.groups), umask=account.umask, pass_fds=pass_fds, close_fds=True,
            )
            self._children.append(child)  # reaped by waitpid(-1) below; kept so it is not collected early
            pid = child.pid
        self.daemons[pid] = name
        say("started", daemon=name, pid=pid, **({"uid": account.uid} if account else {}))
        if self.stopping:  # asked while it started, maybe before it was a daemon the stop signals
            self.signal_all(signal.SIGTERM)
            raise _Stopped(f"stopped while starting {name}")
        return pid

    def reap_nowait(self) -> list[tuple[str, int]]:
        """Reap whatever has exited; return the daemons among them as (name, exit status)."""
        dead = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            name = self.daemons.pop(pid, None)
            if name is not None:
                dead.append((name, os.waitstatus_to_exitcode(status)))
        return dead

    def signal_all(self, sig: int) -> None:
        for pid in list(self.daemons):
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass  # gone, or (without CAP_KILL) another account's: the container's end stops it
        self._signal_helpers(sig)

    def stop(self, *_: object) -> None:
        if not self.stopping:
            self.stopping = True
            self.signal_all(signal.SIGTERM)
            signal.signal(signal.SIGALRM, lambda *_: self.signal_all(signal.SIGKILL))
            signal.alarm(STOP_GRACE_SECONDS)

    def start_pending(self) -> None:
        """Start the daemon waiting for its first connection, handing it the listening socket."""
        pending, self.pending = self.pending, None
        if pending is None:
            return
        fd = pending.listener.fileno()
        os.set_inheritable(fd, True)
        try:
            self.spawn(pending.name, pending.argv(fd), pending.env, pending.account, pass_fds=(fd,))
        finally:
            pending.listener.close()  # the daemon holds it now (or nobody, if it failed to start)

    def drop_pending(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.listener.close()

    def _wait_for_connection(self) -> None:
        """Sleep until the pending daemon's socket is connected to, a child ends, or a signal."""
        assert self.pending is not None
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        previous_fd = signal.set_wakeup_fd(wake_w)
        previous_chld = signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the select
        try:
            while self.pending is not None and not self.stopping:
                dead = self.reap_nowait()
                if dead:
                    self._died(dead)
                    break
                readable, _, _ = select.select([self.pending.listener, wake_r], [], [])
                if self.pending.listener in readable and not self.stopping:
                    name = self.pending.name
                    try:
                        self.start_pending()
                    except _Stopped:
                        pass  # asked to stop as it started: a stop like any other (the loop ends)
                    except (OSError, _StartFailed) as exc:
                        say("start-failed", daemon=name, error=f"{type(exc).__name__}: {exc}")
                        self.failure = self.failure or (name, 127)
                        self.stop()
                if wake_r in readable:
                    os.read(wake_r, 512)
        finally:
            signal.signal(signal.SIGCHLD, previous_chld)
            signal.set_wakeup_fd(previous_fd)
            os.close(wake_r)
            os.close(wake_w)

    def _died(self, dead: list[tuple[str, int]]) -> None:
        """Daemons that ended: the first one that ended unasked stops everything."""
        for name, code in dead:
            if not self.stopping:
                self.failure = self.failure or (name, code)
                say("daemon-died", daemon=name, status=code)
                self.stop()

    def wait_all(self) -> tuple[str, int] | None:
        """Block until every daemon is gone; return the first one that died unasked, if any."""
        if self.pending is not None:
            self._wait_for_connection()
        self.drop_pending()  # stopping (or a daemon died) before anyone connected
        while self.daemons:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            name = self.daemons.pop(pid, None)
            if name is None:
                continue  # an orphan re-parented to us: reaped, nothing else to do
            self._died([(name, os.waitstatus_to_exitcode(status))])
        return self.failure


def _tcp_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _unix_answers(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            sock.connect(str(path))
            return True
    except OSError:
        return False


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    tmp.replace(path)


def _write_private(path: Path, text: str) -> None:
    """``text`` in ``path``, mode 600 from its first byte (never readable by another account, even
    for a moment), replacing what was there."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    tmp.replace(path)


def _wait_until(sup: Supervisor, check, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not check():
        dead = sup.reap_nowait()
        if dead or sup.stopping:
            for name, code in dead:
                say("daemon-died", daemon=name, status=code)
            ended = ", ".join(f"{name} exited with status {code}" for name, code in dead) or "stopped"
            raise _StartFailed(f"{ended} while waiting for {what}")
        if time.monotonic() > deadline:
            raise _StartFailed(f"{what} not ready after {READY_TIMEOUT_SECONDS} s")
        sup.pause(READY_POLL_SECONDS)  # a signal ends it early: looked at above


class _StartFailed(Exception):
    pass


class _Stopped(_StartFailed):
    """A stop was asked for (a signal) before the start was done: the init ends as a stop does."""


# The whole config, handed in by the host: a JSON document ``{"files": {name: {"mode": int,
# "text": str}}}``, on PID 1's stdin at the start (``--config-stdin``: the engine's API attaches
# it), or over `docker exec -i` once the sidecar runs, renamed into place when complete.
# The folder is a tmpfs, so the bottle's secrets are never written to the host's disk (as the
# container's writable layer, where `docker cp` would put them, is).
CONFIG_DROP = ".incoming"
_CONFIG_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}(?:/[A-Za-z0-9_][A-Za-z0-9._-]{0,99})?")


# The most a config handed in on stdin may hold: what its tmpfs holds (the launch's 16m).
CONFIG_STDIN_MAX = 16 * 1024 * 1024


def take_stdin() -> int:
    """PID 1's stdin (the host's config, ``--config-stdin``) moved to a descriptor no child
    inherits, /dev/null in its place: no daemon, started before the config is read, can read
    any of it (the proxy would otherwise share the pipe with the git-gate's credentials)."""
    private = os.dup(0)  # not inheritable (Python's default for a new descriptor)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return private


def read_stdin_config(fd: int, timeout: float, sup: Supervisor | None = None) -> bytes:
    """The host's config document from ``fd`` (``take_stdin``), read to its end, then closed.
    A stop asked for meanwhile (``sup``) ends the wait at once."""
    sup = sup if sup is not None else Supervisor()
    deadline = time.monotonic() + timeout
    parts: list[bytes] = []
    size = 0
    try:
        while True:
            sup.check("the bottle's config arrived")
            left = deadline - time.monotonic()
            if left <= 0:
                raise _StartFailed(f"the bottle's config did not arrive within {timeout:g} s")
            if not sup.pause(left, [fd]):
                continue  # a signal, or the time is up: looked at above
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(parts)
            size += len(chunk)
            if size > CONFIG_STDIN_MAX:
                raise _StartFailed(f"the bottle's config is larger than {CONFIG_STDIN_MAX} bytes")
            parts.append(chunk)
    finally:
        os.close(fd)


def receive_config(folder: Path, timeout: float = READY_TIMEOUT_SECONDS, *, stdin_fd: int | None = None,
                   sup: Supervisor | None = None) -> None:
    """Wait for the host's config document (in ``folder``, or on ``stdin_fd`` when given) and
    write out its files in ``folder``, each with its mode. A stop asked for meanwhile (``sup``'s
    signals) ends the wait at once (``_Stopped``)."""
    if stdin_fd is not None:
        document = read_stdin_config(stdin_fd, timeout, sup)
    else:
        document = _wait_for_drop(folder / CONFIG_DROP, timeout, sup if sup is not None else Supervisor())
    try:
        files = json.loads(document.decode("utf-8"))["files"]
        entries = [(name, int(e["mode"]) & 0o777, str(e["text"])) for name, e in files.items()]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _StartFailed(f"the bottle's config is not a config document ({type(exc).__name__})") from None
    for name, mode, text in entries:
        if not _CONFIG_NAME.fullmatch(name):
            raise _StartFailed(f"the bottle's config names a file {name!r} outside its folder")
        target = folder / name
        if target.parent != folder:
            target.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)


def _wait_for_drop(drop: Path, timeout: float, sup: Supervisor) -> bytes:
    """The document the host's exec renames into place, removed once read."""
    deadline = time.monotonic() + timeout
    while not drop.is_file():
        sup.check("the bottle's config arrived")
        if time.monotonic() > deadline:
            raise _StartFailed(f"the bottle's config did not arrive within {timeout:g} s")
        sup.pause(READY_POLL_SECONDS)
    try:
        return drop.read_bytes()
    finally:
        drop.unlink(missing_ok=True)


def preflight(config: Config) -> Policy:
    """Read the policy and the secrets the way the proxy will; raise ``_StartFailed`` if unusable.

    The proxy would refuse them too, but only after it started; this says why in one line,
    before any daemon runs. Messages name credentials (token_ref), never their values.

    A config the host handed in always holds the secrets file (empty maps when the bottle has
    none): without it, the proxy and the git-gate would scan without the bottle's own values, as
    if it had none, and say nothing.
    """
    if config.config_arrives and not config.secrets.is_file():
        raise _StartFailed(f"the bottle's config has no secrets file {config.secrets}: "
                           "nothing could scan for the bottle's own secret values")
    from bot_bottle.sidecar.egress.credentials import Secrets, SecretsError, check_credentials
    from bot_bottle.sidecar.egress.policy import Policy, PolicyError

    try:
        policy = Policy.load(config.policy)
        check_credentials(policy, Secrets.load(config.secrets))
    except (PolicyError, SecretsError) as exc:
        raise _StartFailed(str(exc)) from None
    return policy


def make_ca(confdir: Path) -> bool:
    """Create the bottle's CA where mitmproxy looks for it (``start_ca`` then ``finish_ca``)."""
    return finish_ca(confdir, start_ca(confdir))


def finish_ca(confdir: Path, pid: int | None, sup: Supervisor | None = None) -> bool:
    """Wait for ``start_ca``'s child (that one only: no daemon is reaped here). True when the CA
    is in ``confdir``; False when mitmproxy is not importable here (the proxy then creates it).
    With ``sup``, the child is its helper: a stop ends it (``Supervisor.adopt_helper``)."""
    if pid is not None:
        if sup is not None:
            code = sup.wait_helper(pid)
        else:
            code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        if code not in (0, NO_MITMPROXY):
            raise _StartFailed(f"creating the bottle CA failed (status {code})")
    return (confdir / MITM_CA_CERT).is_file()


def publish_when_made(config: Config, pid: int | None, sup: Supervisor | None = None) -> Callable[[], bool]:
    """Wait for ``start_ca``'s child in a thread of its own and publish the CA the moment it is
    complete; the answer waits for that thread and gives ``finish_ca``'s (or raises its error).

    The CA is what the host trusts in the agent, the last step of a launch: published from here,
    it goes out while the init still takes the config in and starts the daemons, instead of after
    them. Nothing in the init reaps a child (``waitpid(-1)``) before the answer is called.
    """
    outcome: list[bool | BaseException] = []

    def work() -> None:
        try:
            made = finish_ca(config.confdir, pid, sup)
            if sup is not None:
                sup.check("publishing the CA")  # stopped meanwhile: nothing more goes out to the agent
            if made:
                publish_ca(config)
                say("ca-published", path=str(config.ca_path))
            outcome.append(made)
        except BaseException as exc:  # noqa: BLE001 - raised again by the init's own thread
            outcome.append(exc)

    thread = threading.Thread(target=work, name="ca-publish", daemon=True)
    thread.start()

    def answer() -> bool:
        thread.join()
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        return result

    return answer


# Written into confdir once the CA there is complete (or will be the proxy's to make) and the
# config is in place and handed out: what a proxy started with ``--wait-for`` waits for before
# it loads its options and certificates.
CA_SETTLED = ".ca-settled"


def run(config: Config, begun_ca: tuple[int | None] | None = None) -> int:
    """Start the bundle and supervise it; the exit status of the container.

    ``begun_ca`` holds ``start_ca``'s answer when PID 1 began the CA before importing this
    module (``boot``), for this config's CA folder; otherwise it is begun here.

    A stop (SIGTERM, SIGINT, SIGHUP) ends every step of the start as promptly as it ends the
    running bundle: the daemons and the CA's maker are stopped, ``ready`` is not left behind,
    and the init says ``stopped`` and exits 0.
    """
    sup = Supervisor()
    undo = sup.listen()  # first of all: a stop at any step from here on is heard
    try:
        return _run(config, sup, begun_ca)
    finally:
        undo()


def _stop_fields(sup: Supervisor) -> dict[str, str]:
    """What ``stopped`` says of the signal that asked for it."""
    return {"signal": signal.Signals(sup.asked).name} if sup.asked is not None else {}


def _run(config: Config, sup: Supervisor, begun_ca: tuple[int | None] | None) -> int:
    for folder in (config.run_dir, config.state_dir, config.log_dir, config.confdir):
        folder.mkdir(parents=True, exist_ok=True)
    config.confdir.chmod(0o700)
    for stale in (config.ready_path, config.socket_path, config.ca_path, config.confdir / CA_SETTLED,
                  *config.run_dir.glob("ca-*.crt")):
        stale.unlink(missing_ok=True)  # ca.crt too: a reused volume may hold another CA's

    # Before any daemon starts: none may inherit the stdin the config comes on.
    stdin_fd = take_stdin() if config.config_stdin else None

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    ca_made: Callable[[], bool] | None = None
    try:
        # First of all (``boot`` begins it earlier still): making the CA (its imports and key) is
        # the longest step before the host can trust it in the agent, and the folders are handed
        # out meanwhile. ``share_ca`` hands its folder to the proxy again once it is complete.
        ca_child = begun_ca[0] if begun_ca is not None else start_ca(config.confdir)
        sup.adopt_helper(ca_child)  # a stop ends it with the daemons
        ca_made = publish_when_made(config, ca_child, sup)
        accounts = daemon_accounts()
        if accounts is not None:
            hand_out_folders(config, accounts)
        elif os.geteuid() == 0:
            if image_has_accounts():
                raise _StartFailed(UNSWITCHABLE)
            say("shared-root", reason="no daemon accounts in this image")
        proxy_account = accounts[PROXY_ACCOUNT] if accounts else None
        gate_account = accounts[GATE_ACCOUNT] if accounts else None
        supervise_account = accounts[SUPERVISE_ACCOUNT] if accounts else None
        # The CA is made, and the proxy imports its code (the slowest part of a start), while
        # the config is handed in and the other daemons start: the proxy waits for ``settled``
        # only when it loads its options and certificates, once both are in place.
        settled = config.confdir / CA_SETTLED if ca_child is not None or config.config_arrives else None
        sup.spawn("egress-proxy", proxy_argv(config, wait_for=settled), env, proxy_account)
        if config.config_arrives:
            receive_config(config.policy.parent, stdin_fd=stdin_fd, sup=sup)  # closes it once read
        policy = preflight(config)
        if config.git_gate_config.is_file():
            from bot_bottle.sidecar.egress.credentials import Secrets  # loaded already (``preflight``)

            try:
                write_gate_secrets(config, Secrets.load(config.secrets))
            except OSError as exc:  # the gate must not start without them: it would scan blind
                raise _StartFailed(f"cannot write the git-gate's secrets file: {exc.strerror or exc}") from None
        if accounts is not None:
            hand_out_config(config, accounts)
        supervise_port = policy.services.get(SUPERVISE_SERVICE)
        if supervise_port is not None:
            # The policy routes supervise.bottle.internal here, so supervise is on. The MCP
            # server is the slowest daemon to start (~0.6 s of imports, ~45 MB) and many
            # bottles never call it: its port listens from here on, and the server starts on
            # the first connection (the agent's CLI connecting at its own start), with that
            # connection waiting in the backlog meanwhile. If it dies, the bundle goes down
            # with it (fail closed), as every daemon does.
            if shutil.which(str(config.supervise_python)) is None:
                raise _StartFailed(f"{config.supervise_python} not found")  # say so now, not at first use
            config.supervise_root.mkdir(parents=True, exist_ok=True)
            if accounts is None:
                config.supervise_root.chmod(0o700)
            sup.pending = OnFirstConnection(
                "supervise",
                socket.create_server(("127.0.0.1", supervise_port)),
                lambda fd: supervise_argv(config, supervise_port, fd),
                env,
                supervise_account,
            )
        gate = config.git_gate_config.is_file()
        if gate:
            # The git-gate serves the bottle's repos; a bad config makes it exit, and with it the
            # whole bundle (fail closed). It needs nothing from the proxy: it starts alongside.
            sup.spawn("git-gate", git_gate_argv(config), env, gate_account)
        # socat connects to the proxy per connection, and nothing connects before "ready".
        sup.spawn("socat", socat_argv(config, SOCAT_MAX_CHILDREN), account=proxy_account)
        # Published by then (``publish_when_made``) when the init made it: the host trusts it in
        # the agent while the config is read, the daemons start and the proxy loads.
        made = ca_made()
        if proxy_account is not None:
            share_ca(config.confdir, proxy_account)  # before the proxy loads it (``settled``)
        if settled is not None:
            _write_atomic(settled, b"", mode=0o600)
        if not made:
            # mitmproxy creates its CA in confdir at start: there is one to publish (only the
            # certificate) once the proxy listens.
            _wait_until(sup, lambda: _tcp_answers(config.proxy_port), "the proxy port")
            publish_ca(config)
            say("ca-published", path=str(config.ca_path))
        if gate:
            _wait_until(sup, lambda: _tcp_answers(GIT_GATE_PORT), "the git-gate")
        _wait_until(sup, lambda: _unix_answers(config.socket_path), "the proxy socket")
        sup.check("ready")
        # Ready while the proxy may still be loading: socat holds what connects meanwhile
        # (PROXY_CONNECT_RETRIES), so the agent starts alongside the proxy instead of after it.
        # Every connection still meets the proxy with its policy loaded: mitmproxy listens only
        # once its options and the addon are in place. A proxy that never comes up fails the
        # start here, after ready: the bundle goes down and the bottle shows offline.
        _write_atomic(config.ready_path, b"ready\n")
        say("ready", socket=str(config.socket_path))
    except Exception as exc:  # noqa: BLE001 - whatever failed, no daemon may outlive a failed start
        # A stop asked for meanwhile is what ended the start (a CA maker it ended fails, too).
        asked = sup.asked is not None
        if not asked:
            say("start-failed", error=f"{type(exc).__name__}: {exc}")
        sup.stop()  # wait_all then closes a pending daemon's socket too
        _join_ca(ca_made)  # its thread reaps the CA's maker and writes the run folder: done first
        sup.wait_all()
        config.ready_path.unlink(missing_ok=True)
        if asked:
            say("stopped", before="ready", **_stop_fields(sup))
            return 0
        return 1

    try:
        _wait_until(sup, lambda: _tcp_answers(config.proxy_port), "the proxy port")
        say("proxy-listening", port=config.proxy_port)
    except _StartFailed as exc:
        if not sup.stopping:  # a stop asked for meanwhile ends as any stop does, below
            # Past ready the bundle runs: a proxy that never listens takes it offline, as any
            # daemon's end does.
            say("offline", reason=str(exc))
            sup.stop()
            sup.wait_all()
            config.ready_path.unlink(missing_ok=True)
            return 1
    failure = sup.wait_all()
    config.ready_path.unlink(missing_ok=True)
    if failure is not None:
        say("offline", reason=f"{failure[0]} exited with status {failure[1]}")
        return 1
    say("stopped", **_stop_fields(sup))
    return 0


def _join_ca(ca_made: Callable[[], bool] | None) -> None:
    """Wait for the CA's thread on a start that failed or was stopped; its answer no longer matters."""
    if ca_made is None:
        return
    try:
        ca_made()
    except Exception:  # noqa: BLE001, S110 - the start has already failed or been stopped
        pass


def parse_args(argv: Sequence[str] | None = None) -> Config:
    defaults = Config()
    parser = argparse.ArgumentParser(prog="bot-bottle-sidecar", description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, default=defaults.policy)
    parser.add_argument("--secrets", type=Path, default=defaults.secrets)
    parser.add_argument("--run-dir", type=Path, default=defaults.run_dir)
    parser.add_argument("--state-dir", type=Path, default=defaults.state_dir)
    parser.add_argument("--log-dir", type=Path, default=defaults.log_dir)
    parser.add_argument("--proxy-port", type=int, default=defaults.proxy_port)
    parser.add_argument("--supervise-python", type=Path, default=defaults.supervise_python)
    parser.add_argument("--config-arrives", action="store_true",
                        help="wait for the host to hand the config in (over docker exec) before starting")
    parser.add_argument("--config-stdin", action="store_true",
                        help="read the config the host hands in on stdin (to its end) instead")
    parser.add_argument("--ca-copy", default=None,
                        help="also publish the CA certificate under this name (ca-HEX.crt) in the run folder")
    args = parser.parse_args(argv)
    if args.ca_copy is not None and not CA_COPY_NAME.fullmatch(args.ca_copy):
        parser.error(f"--ca-copy: {args.ca_copy!r} is not a name of the form ca-HEX.crt")
    return Config(
        policy=args.policy,
        secrets=args.secrets,
        run_dir=args.run_dir,
        state_dir=args.state_dir,
        log_dir=args.log_dir,
        proxy_port=args.proxy_port,
        supervise_python=args.supervise_python,
        config_arrives=args.config_arrives or args.config_stdin,
        config_stdin=args.config_stdin,
        ca_copy=args.ca_copy,
    )


def main(argv: Sequence[str] | None = None, early_ca: tuple[Path, int | None] | None = None) -> int:
    """``early_ca``: the CA folder ``boot`` began a CA in, and ``start_ca``'s answer there."""
    config = parse_args(argv)
    if early_ca is None:
        return run(config)
    folder, pid = early_ca
    if folder == config.confdir:
        return run(config, (pid,))
    # Begun in the default folder, but this start keeps its state elsewhere: that one is not
    # this start's, and a new one is made where it belongs. Waited for, not stopped: a start
    # with the default folder uses it later (a stop caught meanwhile is acted on in ``run``).
    if pid is not None:
        os.waitpid(pid, 0)
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
