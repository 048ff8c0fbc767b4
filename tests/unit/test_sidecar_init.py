"""The sidecar's PID 1: argv of its daemons, readiness, fail-closed exit, clean stop.

The end-to-end cases run ``bot_bottle.sidecar.init`` as a subprocess with stand-in ``bottle-proxy``
and ``socat`` executables (small Python scripts on a private PATH) that listen only on loopback
and a unix socket in a temporary folder. No Docker, no network.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle.sidecar import init
from tests._requires import requires

# The stand-ins and the init's process set-up are shared (``_sidecar_process``); these names stay
# importable from here for the tests that take them from this file.
from tests.unit._sidecar_process import (
    FAKE_PROXY,
    FAKE_SOCAT,
    FAKE_SUPERVISE_PYTHON,
    REPO,
    SidecarProcess,
    children,
    daemon_pids,
    free_port,
    install_script,
    sidecar_steps,
)

__all__ = ["FAKE_PROXY", "FAKE_SOCAT", "FAKE_SUPERVISE_PYTHON", "REPO", "free_port"]


class AccountsTest(unittest.TestCase):
    """The init hands the git-gate and the MCP server their own accounts only where it can."""

    def status(self, cap_eff: str) -> Path:
        tmp = tempfile.NamedTemporaryFile("w", suffix=".status", delete=False)
        self.addCleanup(os.unlink, tmp.name)
        tmp.write(f"Name:\tpython3\nCapInh:\t0000000000000000\nCapEff:\t{cap_eff}\n")
        tmp.close()
        return Path(tmp.name)

    def test_capabilities_are_read_from_the_effective_set(self) -> None:
        self.assertTrue(init._holds_capabilities(init.SWITCH_CAPABILITIES, self.status("00000000000000e1")))
        self.assertFalse(init._holds_capabilities(init.SWITCH_CAPABILITIES, self.status("00000000000000e0")),
                         "no CAP_CHOWN: the gate's files could not be handed over")
        self.assertFalse(init._holds_capabilities(init.SWITCH_CAPABILITIES, self.status("00000000000000c1")),
                         "no CAP_KILL: the init could not stop its daemons")
        self.assertFalse(init._holds_capabilities(init.SWITCH_CAPABILITIES, self.status("0000000000000000")))
        self.assertFalse(init._holds_capabilities(init.SWITCH_CAPABILITIES, Path("/nonexistent/status")))

    def test_no_accounts_outside_the_sidecar_image(self) -> None:
        self.assertIsNone(init.daemon_accounts(("no-such-account-here",), "no-such-group-here"))


class UnswitchableAccountsTest(unittest.TestCase):
    """Root in the sidecar image without the capabilities to switch: no daemon starts as root."""

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        root = Path(tmp.name)
        self.config = init.Config(policy=root / "etc" / "policy.json", secrets=root / "etc" / "secrets.json",
                                  run_dir=root / "run", state_dir=root / "state", log_dir=root / "log",
                                  git_gate_config=root / "etc" / "git-gate.json")
        self.spawned: list[str] = []

    def run_init(self, *, image_has_accounts: bool) -> tuple[int, str]:
        """``init.run`` as root whose capabilities do not let it switch (``daemon_accounts`` is None)."""
        def spawn(_sup: init.Supervisor, name: str, *_args: object, **_kwargs: object) -> int:
            self.spawned.append(name)
            raise init._StartFailed("stop here")  # nothing runs in a unit test

        lookup = mock.Mock() if image_has_accounts else mock.Mock(side_effect=KeyError("none"))
        stderr = io.StringIO()
        # Signals stay this test process's own: the failed start's stop() would arm SIGALRM in it.
        with mock.patch.object(init, "daemon_accounts", return_value=None), \
                mock.patch.object(init.os, "geteuid", return_value=0), \
                mock.patch.object(init.pwd, "getpwnam", lookup), mock.patch.object(init.grp, "getgrnam", lookup), \
                mock.patch.object(init, "start_ca", return_value=None), \
                mock.patch.object(init.signal, "signal"), mock.patch.object(init.signal, "alarm"), \
                mock.patch.object(init.Supervisor, "spawn", spawn), contextlib.redirect_stderr(stderr):
            code = init.run(self.config)
        return code, stderr.getvalue()

    def test_the_start_fails_naming_the_reason(self) -> None:
        code, err = self.run_init(image_has_accounts=True)
        self.assertEqual(code, 1)
        self.assertEqual(self.spawned, [], "a daemon was started as root")
        self.assertIn("refusing to run every daemon as root", err)

    def test_an_image_without_the_accounts_still_runs_as_one_account(self) -> None:
        code, err = self.run_init(image_has_accounts=False)
        self.assertEqual(code, 1)  # the stand-in spawn stops it
        self.assertEqual(self.spawned, ["egress-proxy"])
        self.assertIn("shared-root", err)


class PreflightSecretsTest(unittest.TestCase):
    """A handed-in config without its secrets file fails the start: nothing would know the
    bottle's own values, and no scan would say so."""

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.folder = Path(tmp.name)
        (self.folder / "policy.json").write_text(json.dumps({"version": 2, "routes": []}))

    def config(self, *, arrives: bool) -> init.Config:
        return init.Config(policy=self.folder / "policy.json", secrets=self.folder / "secrets.json",
                           config_arrives=arrives)

    def test_a_handed_in_config_without_secrets_fails_the_start(self) -> None:
        with self.assertRaises(init._StartFailed) as caught:
            init.preflight(self.config(arrives=True))
        self.assertIn(f"has no secrets file {self.folder / 'secrets.json'}", str(caught.exception))

    def test_with_its_secrets_file_it_starts(self) -> None:
        (self.folder / "secrets.json").write_text(json.dumps({"credentials": {}, "known_secrets": {}}))
        self.assertEqual(init.preflight(self.config(arrives=True)).routes, ())

    def test_a_config_found_in_place_may_have_none(self) -> None:
        self.assertEqual(init.preflight(self.config(arrives=False)).routes, ())


class ReceiveConfigTest(unittest.TestCase):
    """The host hands the config in after start, onto the sidecar's tmpfs (never its disk)."""

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.folder = Path(tmp.name)

    def drop(self, files: object) -> None:
        (self.folder / init.CONFIG_DROP).write_text(json.dumps({"files": files}))

    def test_files_are_written_with_their_modes_and_the_drop_removed(self) -> None:
        self.drop({"policy.json": {"mode": 0o600, "text": "{}"},
                   "git-gate/app.key": {"mode": 0o600, "text": "KEY\n"}})
        init.receive_config(self.folder, timeout=1)
        self.assertEqual((self.folder / "policy.json").read_text(), "{}")
        self.assertEqual((self.folder / "git-gate" / "app.key").stat().st_mode & 0o777, 0o600)
        self.assertEqual((self.folder / "git-gate").stat().st_mode & 0o777, 0o700)
        self.assertFalse((self.folder / init.CONFIG_DROP).exists(), "the document with every secret is gone")

    def test_names_outside_the_folder_are_refused(self) -> None:
        for name in ("../escape", "/etc/passwd", "a/b/c", ".incoming", "git-gate/../../x", ""):
            with self.subTest(name=name):
                self.drop({name: {"mode": 0o600, "text": "x"}})
                with self.assertRaises(init._StartFailed):
                    init.receive_config(self.folder, timeout=1)
        self.assertEqual(sorted(p.name for p in self.folder.parent.glob("escape")), [])

    def test_a_file_already_there_is_not_written_through(self) -> None:
        victim = self.folder / "victim"
        victim.write_text("kept")
        (self.folder / "policy.json").symlink_to(victim)
        self.drop({"policy.json": {"mode": 0o600, "text": "{}"}})
        with self.assertRaises(OSError):
            init.receive_config(self.folder, timeout=1)
        self.assertEqual(victim.read_text(), "kept")

    def test_a_config_that_never_comes_or_does_not_parse_fails_the_start(self) -> None:
        with self.assertRaisesRegex(init._StartFailed, "did not arrive"):
            init.receive_config(self.folder, timeout=0.05)
        (self.folder / init.CONFIG_DROP).write_text("[1, 2]")
        with self.assertRaisesRegex(init._StartFailed, "not a config document"):
            init.receive_config(self.folder, timeout=1)


class GateSecretsTest(unittest.TestCase):
    """The git-gate's push scan gets the bottle's own secret values in a file of its own; the
    route credentials stay in the proxy's secrets file (the gate cannot read that one)."""

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.etc = Path(tmp.name)
        self.config = init.Config(policy=self.etc / "policy.json", secrets=self.etc / "secrets.json",
                                  git_gate_config=self.etc / "git-gate.json")

    def written(self, secrets: init.Secrets) -> dict[str, object]:
        init.write_gate_secrets(self.config, secrets)
        path = self.config.gate_secrets
        self.assertEqual(path.parent, self.etc / "git-gate")
        self.assertEqual(path.stat().st_mode & 0o777, 0o600)
        self.assertEqual(path.parent.stat().st_mode & 0o777, 0o700)
        return json.loads(path.read_text(encoding="utf-8"))

    def test_env_secrets_without_the_route_credentials(self) -> None:
        secrets = init.Secrets(credentials={"API_TOKEN": "route-credential-value-1234"},
                               known_secrets={"DB_PASSWORD": "hunter2-hunter2-x", "API_TOKEN": "route-credential-value-1234",
                                              "EMPTY": ""})
        self.assertEqual(self.written(secrets), {"known_secrets": {"DB_PASSWORD": "hunter2-hunter2-x"}})

    def test_written_again_whole_and_never_through_a_link(self) -> None:
        self.written(init.Secrets(known_secrets={"A": "first-value-aaaa"}))
        decoy = self.etc / "decoy"
        tmp = self.config.gate_secrets.with_name(f".{init.GATE_SECRETS_FILE}.tmp")
        tmp.symlink_to(decoy)  # left by a daemon: the write must not follow it
        self.assertEqual(self.written(init.Secrets(known_secrets={"B": "second-value-bbbb"})),
                         {"known_secrets": {"B": "second-value-bbbb"}})
        self.assertFalse(decoy.exists())

    def test_the_gates_config_names_this_file(self) -> None:
        from bot_bottle.provision import git

        files = git.gate_files([], {})
        self.assertEqual(files.config["secrets_file"], str(init.Config().gate_secrets))


class ArgvTest(unittest.TestCase):
    def test_proxy_argv(self) -> None:
        config = init.Config(policy=Path("/p.json"), state_dir=Path("/s"), log_dir=Path("/l"), proxy_port=9000)
        argv = init.proxy_argv(config)
        self.assertEqual(argv[0], "bottle-proxy")
        joined = " ".join(argv)
        self.assertIn("--listen-host 127.0.0.1 --listen-port 9000", joined)
        self.assertIn("confdir=/s/mitmproxy", argv)
        self.assertIn("bottle_policy=/p.json", argv)
        self.assertIn("bottle_log_dir=/l", argv)
        self.assertIn("rawtcp=false", argv)
        self.assertNotIn("--wait-for", argv)
        waiting = init.proxy_argv(config, wait_for=Path("/s/mitmproxy/.ca-settled"))
        self.assertEqual(waiting[waiting.index("--wait-for") + 1], "/s/mitmproxy/.ca-settled")

    def test_socat_argv(self) -> None:
        config = init.Config(run_dir=Path("/run/x"), proxy_port=9000)
        self.assertEqual(
            init.socat_argv(config),
            ["socat", "-b", "262144", "UNIX-LISTEN:/run/x/proxy.sock,fork,mode=777,unlink-early", "TCP:127.0.0.1:9000,nodelay,retry=3000,interval=0.02"],
        )

    def test_private_key_stays_out_of_the_shared_folder(self) -> None:
        config = init.Config()
        self.assertFalse(config.confdir.is_relative_to(config.run_dir))
        self.assertEqual(config.ca_path.parent, config.run_dir)

    def test_defaults_and_parse_args(self) -> None:
        config = init.parse_args([])
        self.assertEqual(config.policy, Path("/etc/bot-bottle/policy.json"))
        self.assertEqual(config.socket_path, Path("/run/bottle/proxy.sock"))
        self.assertEqual(config.ready_path, Path("/run/bottle/ready"))
        self.assertEqual(config.ca_path, Path("/run/bottle/ca.crt"))
        config = init.parse_args(["--run-dir", "/r", "--proxy-port", "1234"])
        self.assertEqual((config.run_dir, config.proxy_port), (Path("/r"), 1234))


try:
    import mitmproxy.certs  # noqa: F401 - the dev extra; the sidecar image has it too
    HAVE_MITMPROXY = True
except ImportError:
    HAVE_MITMPROXY = False


@requires(HAVE_MITMPROXY, "mitmproxy (dev extra)")
class CaBeforeProxyTest(unittest.TestCase):
    def test_the_ca_exists_before_the_proxy_and_the_proxy_reuses_it(self) -> None:
        from mitmproxy.certs import CertStore

        with tempfile.TemporaryDirectory() as tmp:
            confdir = Path(tmp)
            self.assertTrue(init.make_ca(confdir))
            cert = (confdir / init.MITM_CA_CERT).read_bytes()
            self.assertIn(b"BEGIN CERTIFICATE", cert)
            self.assertNotIn(b"PRIVATE KEY", cert)
            self.assertTrue(init.make_ca(confdir), "a second call keeps the CA")
            self.assertEqual((confdir / init.MITM_CA_CERT).read_bytes(), cert)
            # What the proxy does at start: load the store from confdir. Same CA, nothing regenerated.
            store = CertStore.from_store(confdir, "mitmproxy", init.MITM_CA_KEY_SIZE)
            self.assertEqual((confdir / init.MITM_CA_CERT).read_bytes(), cert)
            self.assertEqual(store.default_ca.cn, "mitmproxy")

    def test_the_init_itself_never_loads_mitmproxy(self) -> None:
        # PID 1 lives as long as the bottle: the CA is made by a child, so mitmproxy's
        # certificate code (and its ~15 MB) never stays in the init.
        with tempfile.TemporaryDirectory() as tmp:
            probe = (
                "import sys; from pathlib import Path; from bot_bottle.sidecar import init; "
                "made = init.make_ca(Path(sys.argv[1])); "
                "print(made, sorted(m for m in sys.modules if m.split('.')[0] in ('mitmproxy', 'OpenSSL', 'cryptography')))"
            )
            out = subprocess.run([sys.executable, "-c", probe, tmp], capture_output=True, text=True, timeout=120,
                                 env=dict(os.environ, PYTHONPATH=str(REPO)))
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(out.stdout.strip(), "True []")
            self.assertIn(b"BEGIN CERTIFICATE", (Path(tmp) / init.MITM_CA_CERT).read_bytes())


class LifecycleTest(SidecarProcess, unittest.TestCase):
    def setUp(self) -> None:
        self.make_root()
        (self.root / "policy.json").write_text('{"version": 2, "routes": [{"host": "a.example"}]}')
        self.procs: list[subprocess.Popen] = []
        self.extra_args: list[str] = []
        self.extra_env: dict[str, str] = {}

    def start(self) -> subprocess.Popen:
        self.port = free_port()
        proc = self.start_init(self.root, self.port, *self.extra_args, extra_env=self.extra_env,
                               stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        return proc

    def daemon_pids(self, proc: subprocess.Popen) -> dict[str, int]:
        return daemon_pids(proc)

    def test_ready_publishes_cert_but_never_the_key(self) -> None:
        proc = self.start()
        self.wait_ready(proc)
        self.assertIn("CERTIFICATE", (self.run_dir / "ca.crt").read_text())
        shared = "".join(p.read_text() for p in self.run_dir.iterdir() if p.is_file())
        self.assertNotIn("PRIVATE KEY", shared)
        self.assertEqual(oct((self.root / "state" / "mitmproxy").stat().st_mode & 0o777), "0o700")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0, err)
        self.assertFalse((self.run_dir / "ready").exists())
        self.assertIn('"stopped"', err)
        # What a launch follows (``SidecarWatch``): the CA is said to be out before ready is.
        steps = self.steps(err)
        self.assertLess(steps.index("ca-published"), steps.index("ready"))
        self.assertEqual(steps.count("ca-published"), 1)

    @requires(HAVE_MITMPROXY, "mitmproxy (dev extra)")
    def test_the_proxy_serves_with_the_ca_the_init_published(self) -> None:
        # The CA is made while the proxy starts: the proxy must wait for it (--wait-for), or it
        # makes its own and the agent trusts a CA the proxy does not use.
        proc = self.start()
        self.wait_ready(proc)
        self.wait_listening()  # ready comes before the proxy has loaded
        published = (self.run_dir / "ca.crt").read_bytes()
        self.assertNotIn(b"fake", published, "the init published no CA of its own")
        self.assertEqual((self.root / "state" / "served-ca.pem").read_bytes(), published)
        steps = [json.loads(line)["what"] for line in self._stderr_lines(proc) if line.startswith('{"event": "sidecar"')]
        self.assertEqual(steps.count("ca-published"), 1)

    def _stderr_lines(self, proc: subprocess.Popen) -> list[str]:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        return err.splitlines()

    def test_a_dying_daemon_takes_everything_offline(self) -> None:
        for victim in ("bottle-proxy", "socat"):
            with self.subTest(victim=victim):
                self.run_dir = self.root / f"run-{victim}"
                proc = self.start()
                self.wait_ready(proc)
                pids = self.daemon_pids(proc)
                self.assertEqual(set(pids), {"bottle-proxy", "socat"})
                os.kill(pids[victim], signal.SIGKILL)
                _, err = proc.communicate(timeout=20)
                self.assertEqual(proc.returncode, 1, err)
                self.assertIn('"daemon-died"', err)
                self.assertIn('"offline"', err)
                self.assertFalse((self.run_dir / "ready").exists())
                survivor = pids["socat" if victim == "bottle-proxy" else "bottle-proxy"]
                with self.assertRaises(ProcessLookupError):
                    os.kill(survivor, 0)

    def steps(self, err: str) -> list[str]:
        return sidecar_steps(err)

    def start_held(self) -> tuple[subprocess.Popen, Path]:
        """Init with a proxy that loads (listens) only once the returned file exists."""
        release = self.root / "let-the-proxy-listen"
        self.extra_env = {"FAKE_PROXY_HOLD": str(release)}
        proc = self.start()
        self.wait_ready(proc)  # while the proxy is held: the agent starts alongside its load
        self.assertFalse(init._tcp_answers(self.port))
        return proc, release

    def wait_listening(self) -> None:
        deadline = time.monotonic() + 20
        while not init._tcp_answers(self.port):
            self.assertLess(time.monotonic(), deadline, "the proxy never listened")
            time.sleep(0.05)

    def test_ready_while_the_proxy_still_loads(self) -> None:
        proc, release = self.start_held()
        release.touch()
        self.wait_listening()
        time.sleep(1)  # the init looks every READY_POLL_SECONDS
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0, err)
        steps = self.steps(err)
        self.assertLess(steps.index("ready"), steps.index("proxy-listening"))
        self.assertEqual(steps[-1], "stopped")

    def test_a_stop_while_the_proxy_loads_is_a_clean_stop(self) -> None:
        proc, _ = self.start_held()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0, err)
        steps = self.steps(err)
        self.assertEqual(steps[-1], "stopped")
        self.assertNotIn("offline", steps)

    def test_a_proxy_that_never_listens_takes_the_bundle_offline(self) -> None:
        proc, _ = self.start_held()
        os.kill(self.daemon_pids(proc)["bottle-proxy"], signal.SIGKILL)
        _, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 1, err)
        self.assertEqual(self.steps(err)[-1], "offline")
        self.assertIn("egress-proxy exited with status -9 while waiting for the proxy port", err)
        self.assertFalse((self.run_dir / "ready").exists())
        with self.assertRaises(ProcessLookupError):  # socat went down with it
            os.kill(self.daemon_pids(proc).get("socat", 2**22), 0)

    def start_with_supervise(self) -> tuple[subprocess.Popen, int]:
        """Init with the supervise service in its policy and a stand-in for its server."""
        port = free_port()
        python = install_script(self.bin / "supervise-python", FAKE_SUPERVISE_PYTHON)
        (self.root / "policy.json").write_text(json.dumps(
            {"version": 2, "routes": [{"host": "a.example"}], "internal_services": {"supervise": port}}))
        self.extra_args = ["--supervise-python", str(python)]
        return self.start(), port

    def supervise_pids(self, proc: subprocess.Popen) -> list[int]:
        return [pid for pid, args in children(proc) if "supervise-python" in args]

    def test_supervise_starts_on_its_first_connection_and_serves_it(self) -> None:
        proc, port = self.start_with_supervise()
        self.wait_ready(proc)
        time.sleep(0.3)
        self.assertEqual(self.supervise_pids(proc), [], "the server started before anyone connected")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.settimeout(10)
            answer = conn.recv(100).decode()  # waits in the backlog until the server runs
        pids = self.supervise_pids(proc)
        self.assertEqual(len(pids), 1, pids)
        self.assertEqual(answer, f"supervise pid {pids[0]}\n")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.settimeout(10)
            self.assertEqual(conn.recv(100).decode(), answer, "a second server was started")
        # Its death takes the bundle offline: tests/unit/test_supervise_server.py.

    def test_a_stop_before_any_connection_is_clean(self) -> None:
        proc, port = self.start_with_supervise()
        self.wait_ready(proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn('"stopped"', err)
        self.assertNotIn('"daemon": "supervise"', err)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()

    def test_another_daemon_dying_before_any_connection_takes_everything_offline(self) -> None:
        proc, _ = self.start_with_supervise()
        self.wait_ready(proc)
        os.kill(self.daemon_pids(proc)["bottle-proxy"], signal.SIGKILL)
        _, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 1, err)
        self.assertIn('"offline"', err)

    def test_supervise_server_missing_fails_the_start_or_takes_everything_offline(self) -> None:
        proc, port = self.start_with_supervise()
        self.wait_ready(proc)
        (self.bin / "supervise-python").unlink()  # gone after the start: found out at first use
        try:  # the connection is closed or reset with the listening socket, never served
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.settimeout(10)
                self.assertEqual(conn.recv(100), b"")
        except ConnectionResetError:
            pass
        _, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 1, err)
        self.assertIn('"start-failed", "daemon": "supervise"', err)
        self.assertIn('"offline"', err)

        self.run_dir = self.root / "run-2"
        proc = self.start()  # missing from the start: the start fails and says why
        _, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 1, err)
        self.assertIn("supervise-python not found", err)
        self.assertFalse((self.run_dir / "ready").exists())

    def test_missing_daemon_fails_start(self) -> None:
        (self.bin / "socat").unlink()
        proc = self.start()
        _, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("start-failed", err)
        self.assertFalse((self.run_dir / "ready").exists())


if __name__ == "__main__":
    unittest.main()
