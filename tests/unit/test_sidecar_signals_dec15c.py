"""A stop (SIGTERM, SIGINT) ends the sidecar's init at every step of its start, not only once it runs.

The init runs as a subprocess with stand-in daemons (``FAKE_PROXY``, ``FAKE_SOCAT``: small Python
scripts on a private PATH, loopback and a temporary folder only), as ``test_sidecar_init``'s
lifecycle cases do. Each case stops it at one step of the start: waiting for the host's config
(dropped in its folder, or on stdin), while the CA is still being made, while a daemon is not up
yet, and before the init's own handlers are in place (``boot``). The waits below are deadlines
for a hang, never a measure of speed: what is checked is how the init ended (its status, what it
said), and that nothing it started is left running or half-published.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle.sidecar import ca_maker, init
from tests.unit.test_sidecar_init import FAKE_PROXY, FAKE_SOCAT, free_port

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 30  # far past a prompt stop, well short of the init's own 60 s waits

# A socat that takes its time: it listens only once the file HOLD_SOCAT names exists.
HELD_SOCAT = """\
#!{python}
import os, pathlib, socket, sys, time
hold = pathlib.Path(os.environ["HOLD_SOCAT"])
while not hold.exists():
    time.sleep(0.01)
path = next(a for a in sys.argv[1:] if a.startswith("UNIX-LISTEN:")).split(":", 1)[1].split(",", 1)[0]
srv = socket.socket(socket.AF_UNIX); srv.bind(path); srv.listen()
while True:
    conn, _ = srv.accept(); conn.close()
"""

# The init with a CA maker that never finishes: the child ``start_ca`` forks notes its pid, then
# waits where it would make the key (``make_ca_pems``), as a maker slowed by a busy host would.
SLOW_CA_INIT = """\
import os, pathlib, sys, time
from bot_bottle.sidecar import ca_maker, init

def slow_pems():
    pathlib.Path(os.environ["CA_MAKER_PID"]).write_text(str(os.getpid()))
    time.sleep(3600)

ca_maker.make_ca_pems = slow_pems
sys.exit(init.main(sys.argv[1:]))
"""

# PID 1's own start (``python -m bot_bottle.sidecar.boot``), its CA folder in the test's, with a
# stop that arrives right after the CA is begun: before the init module is even imported.
STOP_DURING_BOOT = """\
import os, pathlib, runpy, signal, sys
from bot_bottle.sidecar import ca_maker

ca_maker.DEFAULT_STATE_DIR = pathlib.Path(os.environ["BOOT_STATE_DIR"])
real_start_ca = ca_maker.start_ca

def start_ca_then_stop(confdir):
    pid = real_start_ca(confdir)
    pathlib.Path(os.environ["CA_MAKER_PID"]).write_text(str(pid))
    os.kill(os.getpid(), signal.SIGTERM)
    return pid

ca_maker.start_ca = start_ca_then_stop
sys.argv = ["bot_bottle.sidecar.boot", *sys.argv[1:]]
runpy.run_module("bot_bottle.sidecar.boot", run_name="__main__", alter_sys=True)
"""


def in_config_wait(watched: Watched) -> None:
    """Until the init waits for its config: said right after the proxy starts, and the CA is
    made meanwhile (where the certificate code is installed: without it the proxy makes it)."""
    watched.wait_for("started", daemon="egress-proxy")
    if importlib.util.find_spec("cryptography") is not None:
        watched.wait_for("ca-published")


def gone(pid: int) -> bool:
    """Whether ``pid`` has ended (a zombie has: it only waits to be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


class Watched:
    """The init's process and the JSON steps it says on stderr, read as they come."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def events(self) -> list[dict]:
        with self._cond:
            lines = list(self.lines)
        return [json.loads(line) for line in lines if line.startswith('{"event": "sidecar"')]

    def wait_for(self, what: str, **fields: object) -> dict:
        def found() -> dict | None:
            return next((e for e in self.events() if e["what"] == what
                         and all(e.get(k) == v for k, v in fields.items())), None)
        with self._cond:
            self._cond.wait_for(lambda: found() is not None or self.proc.poll() is not None, DEADLINE)
        event = found()
        if event is None:
            raise AssertionError(f"the init never said {what} {fields}:\n" + "\n".join(self.lines))
        return event

    def end(self) -> int:
        """Its exit status, once it has exited by itself (an AssertionError if it hangs)."""
        try:
            code = self.proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            raise AssertionError("the init did not end after the stop:\n" + "\n".join(self.lines)) from None
        self._reader.join(timeout=DEADLINE)
        return code

    def started(self) -> dict[str, int]:
        return {e["daemon"]: e["pid"] for e in self.events() if e["what"] == "started"}

    def text(self) -> str:
        return "\n".join(self.lines)


class StopDuringStartTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name)
        self.bin = self.root / "bin"
        self.bin.mkdir()
        for name, text in (("bottle-proxy", FAKE_PROXY), ("socat", FAKE_SOCAT)):
            self.put_bin(name, text)
        self.etc = self.root / "etc"
        self.etc.mkdir()
        (self.etc / "policy.json").write_text('{"version": 2, "routes": [{"host": "a.example"}]}')
        (self.etc / "secrets.json").write_text('{"credentials": {}, "known_secrets": {}}')
        self.run_dir = self.root / "run"
        self.state_dir = self.root / "state"
        self.env: dict[str, str] = {}

    def put_bin(self, name: str, text: str) -> None:
        path = self.bin / name
        path.write_text(text.format(python=sys.executable))
        path.chmod(0o755)

    def argv(self, *extra: str) -> list[str]:
        return ["--policy", str(self.etc / "policy.json"), "--secrets", str(self.etc / "secrets.json"),
                "--run-dir", str(self.run_dir), "--state-dir", str(self.state_dir),
                "--log-dir", str(self.root / "log"), "--proxy-port", str(free_port()), *extra]

    def start(self, *extra: str, command: list[str] | None = None, stdin: int | None = None) -> Watched:
        # Only the stand-ins on PATH: a real proxy or socat on this machine must not be used.
        env = dict(os.environ, PATH=str(self.bin), PYTHONPATH=str(REPO), **self.env)
        proc = subprocess.Popen(
            [*(command or [sys.executable, "-m", "bot_bottle.sidecar.init"]), *self.argv(*extra)],
            env=env, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True,  # so cleanup can end the whole group, stand-ins included
        )
        self.addCleanup(self._kill, proc)
        return Watched(proc)

    def _kill(self, proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=DEADLINE)
        if proc.stdin is not None:
            proc.stdin.close()

    def assert_stopped(self, watched: Watched, sig: signal.Signals = signal.SIGTERM) -> None:
        """Ended as a stop ends the running bundle: status 0, ``stopped`` its last word, no
        ``start-failed``, every daemon it started gone, nothing left in the run folder that says
        it is ready."""
        code = watched.end()
        self.assertEqual(code, 0, watched.text())
        events = watched.events()
        self.assertEqual(events[-1]["what"], "stopped", watched.text())
        self.assertEqual(events[-1].get("signal"), sig.name)
        self.assertNotIn("start-failed", [e["what"] for e in events])
        self.assertNotIn("ready", [e["what"] for e in events])
        for name, pid in watched.started().items():
            self.assertTrue(gone(pid), f"{name} (pid {pid}) outlived the init")
        self.assertFalse((self.run_dir / "ready").exists())
        self.assertEqual(sorted(p.name for p in self.run_dir.glob(".*")), [], "a half-written file")

    def test_a_stop_while_the_config_is_awaited_in_its_folder(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=sig.name):
                self.run_dir = self.root / f"run-{sig.name}"
                watched = self.start("--config-arrives")
                in_config_wait(watched)
                watched.proc.send_signal(sig)
                self.assert_stopped(watched, sig)
                self.assertEqual(sorted(watched.started()), ["egress-proxy"], "a daemon started after the stop")

    def test_a_stop_while_the_config_is_awaited_on_stdin(self) -> None:
        watched = self.start("--config-stdin", stdin=subprocess.PIPE)  # the host never writes it
        in_config_wait(watched)
        watched.proc.send_signal(signal.SIGTERM)
        self.assert_stopped(watched)

    def test_a_stop_while_a_daemon_comes_up_is_a_stop_not_a_failed_start(self) -> None:
        self.put_bin("socat", HELD_SOCAT)
        self.env = {"HOLD_SOCAT": str(self.root / "never")}
        watched = self.start()
        watched.wait_for("started", daemon="socat")
        watched.proc.send_signal(signal.SIGTERM)
        self.assert_stopped(watched)
        self.assertEqual(sorted(watched.started()), ["egress-proxy", "socat"])
        self.assertEqual(watched.events()[-1].get("before"), "ready")

    def test_a_stop_while_the_ca_is_being_made_ends_its_maker(self) -> None:
        marker = self.root / "ca-maker.pid"
        self.env = {"CA_MAKER_PID": str(marker)}
        watched = self.start(command=[sys.executable, "-c", SLOW_CA_INIT])
        watched.wait_for("started", daemon="socat")  # then it waits for the CA
        deadline = time.monotonic() + DEADLINE
        while not marker.exists():
            self.assertLess(time.monotonic(), deadline, f"the CA maker never began:\n{watched.text()}")
            time.sleep(0.01)
        maker = int(marker.read_text())
        watched.proc.send_signal(signal.SIGTERM)
        self.assert_stopped(watched)
        self.assertTrue(gone(maker), "the CA's maker outlived the init")
        self.assertFalse((self.run_dir / "ca.crt").exists(), "a CA was published after the stop")
        self.assertFalse((self.state_dir / "mitmproxy" / ca_maker.MITM_CA_CERT).exists())

    def test_a_stop_before_the_init_handles_signals_is_not_lost(self) -> None:
        # As PID 1 starts: `boot` begins the CA, and the stop comes before the init is imported.
        marker = self.root / "ca-maker.pid"
        self.env = {"CA_MAKER_PID": str(marker), "BOOT_STATE_DIR": str(self.state_dir)}
        watched = self.start("--config-arrives", command=[sys.executable, "-c", STOP_DURING_BOOT])
        self.assert_stopped(watched)
        self.assertEqual(watched.started(), {}, "a daemon started after the stop")
        maker = marker.read_text()
        if maker != "None":  # None: a CA was there already
            self.assertTrue(gone(int(maker)), "the CA's maker outlived the init")
        cert = self.state_dir / "mitmproxy" / ca_maker.MITM_CA_CERT
        if cert.exists():  # made whole before the stop reached its maker, or not at all
            self.assertTrue(cert.read_bytes().rstrip().endswith(b"-----END CERTIFICATE-----"))


class ConfigWaitTest(unittest.TestCase):
    """``receive_config`` gives up its wait once a stop is asked for (the init's ``Supervisor``)."""

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.folder = Path(tmp.name)
        self.sup = init.Supervisor()
        self.sup.stopping = True

    def test_the_drop_wait_ends_on_a_stop(self) -> None:
        with self.assertRaises(init._Stopped):
            init.receive_config(self.folder, timeout=DEADLINE, sup=self.sup)
        self.assertEqual(list(self.folder.iterdir()), [])

    def test_the_stdin_wait_ends_on_a_stop_and_closes_it(self) -> None:
        read_end, write_end = os.pipe()
        self.addCleanup(os.close, write_end)
        with self.assertRaises(init._Stopped):
            init.receive_config(self.folder, timeout=DEADLINE, stdin_fd=read_end, sup=self.sup)
        with self.assertRaises(OSError):
            os.fstat(read_end)  # closed, as a config read to its end is

    def test_without_a_stop_the_config_still_arrives(self) -> None:
        (self.folder / init.CONFIG_DROP).write_text(json.dumps({"files": {"policy.json": {"mode": 0o600, "text": "{}"}}}))
        init.receive_config(self.folder, timeout=DEADLINE, sup=init.Supervisor())
        self.assertEqual((self.folder / "policy.json").read_text(), "{}")


class CaFileTest(unittest.TestCase):
    """A CA maker ended part way through a file leaves no short file under the file's own name."""

    def test_a_write_cut_short_leaves_no_file_by_that_name(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / ca_maker.MITM_DHPARAM
            real_write = os.write
            calls = []

            def cut_short(fd: int, data: bytes) -> int:
                calls.append(len(data))
                if len(calls) > 1:
                    raise InterruptedError("the maker was stopped here")
                return real_write(fd, bytes(data[:10]))

            with mock.patch.object(ca_maker.os, "write", cut_short), self.assertRaises(InterruptedError):
                ca_maker._write(target, ca_maker.FFDHE2048_PEM, 0o644)
            self.assertFalse(target.exists(), "a short file the next start would take as made")
            ca_maker._write(target, ca_maker.FFDHE2048_PEM, 0o644)
            self.assertEqual(target.read_bytes(), ca_maker.FFDHE2048_PEM)
            self.assertEqual(target.stat().st_mode & 0o777, 0o644)


if __name__ == "__main__":
    unittest.main()
