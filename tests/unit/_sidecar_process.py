"""The sidecar's PID 1 (``bot_bottle.sidecar.init``) run as a process for a test, with stand-in
``bottle-proxy`` and ``socat`` executables (small Python scripts on a private PATH) that listen only
on loopback and a unix socket in a temporary folder. No Docker, no network.

``SidecarProcess`` is a mixin for a ``unittest.TestCase``: it holds no tests of its own, so a
test file that uses it runs only its own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot_bottle.sidecar import init

REPO = Path(__file__).resolve().parents[2]

# As the real one: waits for --wait-for, then loads the CA in confdir or makes one (a fake) when
# there is none, and notes which certificate it serves with (``served-ca.pem`` next to confdir).
FAKE_PROXY = """\
#!{python}
import os, socket, sys, pathlib, time
args = sys.argv[1:]
port = int(args[args.index("--listen-port") + 1])
hold = os.environ.get("FAKE_PROXY_HOLD")  # loads (listens) only once this file exists
while hold and not pathlib.Path(hold).exists():
    time.sleep(0.01)
confdir = pathlib.Path(next(a.split("=", 1)[1] for a in args if a.startswith("confdir=")))
if "--wait-for" in args:
    while not pathlib.Path(args[args.index("--wait-for") + 1]).exists():
        time.sleep(0.01)
if not (confdir / "mitmproxy-ca-cert.pem").exists():
    (confdir / "mitmproxy-ca-cert.pem").write_text("-----BEGIN CERTIFICATE-----\\nfake\\n")
    (confdir / "mitmproxy-ca.pem").write_text("-----BEGIN PRIVATE KEY-----\\nsecret\\n")
confdir.with_name("served-ca.pem").write_bytes((confdir / "mitmproxy-ca-cert.pem").read_bytes())
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen()
while True:
    conn, _ = srv.accept(); conn.close()
"""

FAKE_SOCAT = """\
#!{python}
import socket, sys, os
path = next(a for a in sys.argv[1:] if a.startswith("UNIX-LISTEN:")).split(":", 1)[1].split(",", 1)[0]
if os.path.exists(path): os.unlink(path)
srv = socket.socket(socket.AF_UNIX); srv.bind(path); srv.listen()
while True:
    conn, _ = srv.accept(); conn.close()
"""

# Stands in for the supervise venv's python: serves the socket it inherits (``--fd``), answering
# every connection with one line, so a test sees which process accepted it.
FAKE_SUPERVISE_PYTHON = """\
#!{python}
import socket, sys, os
args = sys.argv[1:]
sock = socket.socket(fileno=int(args[args.index("--fd") + 1]))
while True:
    conn, _ = sock.accept()
    conn.sendall(("supervise pid %d\\n" % os.getpid()).encode()); conn.close()
"""

DAEMONS = ("bottle-proxy", "socat")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install_script(path: Path, text: str) -> Path:
    """One stand-in executable at ``path``, run by this test's Python."""
    path.write_text(text.format(python=sys.executable))
    path.chmod(0o755)
    return path


def fake_daemons(folder: Path) -> Path:
    """``folder`` made, holding the stand-in proxy and socat (and nothing else a PATH could find)."""
    folder.mkdir()
    for name, text in (("bottle-proxy", FAKE_PROXY), ("socat", FAKE_SOCAT)):
        install_script(folder / name, text)
    return folder


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """End the init with its whole process group (the stand-ins too) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate(timeout=10)


def children(proc: subprocess.Popen[Any]) -> list[tuple[int, str]]:
    """(pid, argv line) of each process ``proc`` started."""
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(proc.pid)], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        pid, _, args = line.strip().partition(" ")
        found.append((int(pid), args))
    return found


def daemon_pids(proc: subprocess.Popen[Any]) -> dict[str, int]:
    """The stand-in daemons the init runs, by name."""
    return {name: pid for pid, args in children(proc) for name in DAEMONS if f"/{name}" in args}


def sidecar_steps(err: str) -> list[str]:
    """The init's ``sidecar`` events in its stderr, in order."""
    return [json.loads(line)["what"] for line in err.splitlines() if line.startswith('{"event": "sidecar"')]


def config_document(files: dict[str, tuple[str, int]]) -> bytes:
    """The document the host hands in: each file's text and mode by its name."""
    return json.dumps({"files": {name: {"mode": mode, "text": text} for name, (text, mode) in files.items()}}).encode()


def hand_in(folder: Path, files: dict[str, tuple[str, int]]) -> None:
    """Drop the config document into ``folder`` as the host does: whole, by a rename."""
    part = folder / "incoming.part"
    part.write_bytes(config_document(files))
    part.replace(folder / init.CONFIG_DROP)


if TYPE_CHECKING:
    import unittest

    _Base = unittest.TestCase
else:
    _Base = object


class SidecarProcess(_Base):
    """A temporary root with the stand-in daemons in ``bin``, and the init started over it."""

    root: Path
    bin: Path
    run_dir: Path

    def make_root(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name)
        self.bin = fake_daemons(self.root / "bin")
        self.run_dir = self.root / "run"

    def start_init(self, etc: Path, port: int, *args: str, extra_env: dict[str, str] | None = None,
                   **popen: Any) -> subprocess.Popen[Any]:
        """The init with its policy and secrets in ``etc``, its proxy on ``port``, ``args`` after."""
        # Only the stand-ins on PATH: a real proxy or socat on this machine must not be used.
        env = dict(os.environ, PATH=str(self.bin), PYTHONPATH=str(REPO), **(extra_env or {}))
        popen.setdefault("stderr", subprocess.PIPE)
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot_bottle.sidecar.init", "--policy", str(etc / "policy.json"),
             "--secrets", str(etc / "secrets.json"), "--run-dir", str(self.run_dir),
             "--state-dir", str(self.root / "state"), "--log-dir", str(self.root / "log"),
             "--proxy-port", str(port), *args],
            env=env,
            start_new_session=True,  # so cleanup can end the whole group, stand-ins included
            **popen,
        )
        self.addCleanup(kill_group, proc)
        return proc

    def wait_for(self, path: Path, proc: subprocess.Popen[Any], seconds: float = 20, *,
                 late: str | None = None, poll: float = 0.02) -> None:
        """Until ``path`` exists; fails if the init exits first or ``seconds`` pass."""
        deadline = time.monotonic() + seconds
        while not path.exists():
            if proc.poll() is not None:
                self.fail(f"init exited early: {proc.communicate()}")
            if time.monotonic() > deadline:
                self.fail(late or f"{path.name} did not appear within {seconds:g} s")
            time.sleep(poll)

    def wait_ready(self, proc: subprocess.Popen[Any]) -> None:
        self.wait_for(self.run_dir / "ready", proc, late="init never became ready", poll=0.05)
