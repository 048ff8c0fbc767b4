"""The sidecar publishes the bottle's CA the moment it is made, not after its config and daemons.

The host trusts the CA in the agent as soon as the certificate is in the shared folder: the last
step of a launch. Published from its own thread (``init.publish_when_made``), the certificate goes
out while the init still waits for the config the host hands in; the init runs here as a
subprocess with stand-in daemons (the ones of ``test_sidecar_init``), no Docker, no network.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

from bot_bottle.sidecar import init
from tests.unit.test_sidecar_init import FAKE_PROXY, FAKE_SOCAT, free_port

REPO = Path(__file__).resolve().parents[2]
COPY = "ca-" + "ab" * 16 + ".crt"


class PublishedBeforeTheConfigTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name)
        self.bin = self.root / "bin"
        self.bin.mkdir()
        for name, text in (("bottle-proxy", FAKE_PROXY), ("socat", FAKE_SOCAT)):
            path = self.bin / name
            path.write_text(text.format(python=sys.executable))
            path.chmod(0o755)
        self.cfg = self.root / "cfg"
        self.cfg.mkdir()
        self.run_dir = self.root / "run"

    def start(self) -> subprocess.Popen:
        env = dict(os.environ, PATH=str(self.bin), PYTHONPATH=str(REPO))
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot_bottle.sidecar.init", "--config-arrives",
             "--policy", str(self.cfg / "policy.json"), "--secrets", str(self.cfg / "secrets.json"),
             "--run-dir", str(self.run_dir), "--state-dir", str(self.root / "state"),
             "--log-dir", str(self.root / "log"), "--proxy-port", str(free_port()), "--ca-copy", COPY],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        self.addCleanup(self._kill, proc)
        return proc

    def _kill(self, proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate(timeout=10)

    def wait_for(self, path: Path, proc: subprocess.Popen, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while not path.exists():
            if proc.poll() is not None:
                self.fail(f"init exited early: {proc.communicate()}")
            if time.monotonic() > deadline:
                self.fail(f"{path.name} did not appear within {seconds:g} s")
            time.sleep(0.02)

    def hand_in(self, policy: object) -> None:
        files = {
            "policy.json": {"mode": 0o600, "text": json.dumps(policy)},
            "secrets.json": {"mode": 0o600, "text": json.dumps({"credentials": {}, "known_secrets": {}})},
        }
        part = self.cfg / "incoming.part"
        part.write_text(json.dumps({"files": files}))
        part.replace(self.cfg / init.CONFIG_DROP)

    def test_the_ca_is_out_while_the_config_has_not_come(self) -> None:
        proc = self.start()
        self.wait_for(self.run_dir / COPY, proc)
        cert = (self.run_dir / COPY).read_bytes()
        self.assertIn(b"BEGIN CERTIFICATE", cert)
        self.assertEqual((self.run_dir / "ca.crt").read_bytes(), cert)
        self.assertFalse((self.run_dir / "ready").exists())
        shared = b"".join(p.read_bytes() for p in self.run_dir.iterdir() if p.is_file())
        self.assertNotIn(b"PRIVATE KEY", shared)
        self.hand_in({"version": 2, "routes": [{"host": "a.example"}]})
        self.wait_for(self.run_dir / "ready", proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0, err)
        steps = [json.loads(line)["what"] for line in err.splitlines() if line.startswith('{"event": "sidecar"')]
        self.assertEqual(steps.count("ca-published"), 1, err)
        self.assertLess(steps.index("ca-published"), steps.index("ready"))
        # The proxy serves the very CA the host was given.
        self.assertEqual((self.root / "state" / "served-ca.pem").read_bytes(), cert)

    def test_a_refused_config_still_fails_the_start_and_nothing_is_ready(self) -> None:
        proc = self.start()
        self.wait_for(self.run_dir / COPY, proc)
        self.hand_in({"version": 2, "routes": "not a list"})
        _, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 1, err)
        self.assertIn('"start-failed"', err)
        self.assertFalse((self.run_dir / "ready").exists())


class AnswerTest(unittest.TestCase):
    """The thread's answer is ``finish_ca``'s, and its error the init's own."""

    def test_a_failed_ca_child_is_raised_by_the_answer(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            config = init.Config(run_dir=Path(tmp) / "run", state_dir=Path(tmp) / "state")
            config.confdir.mkdir(parents=True)
            config.run_dir.mkdir()
            pid = os.fork()
            if pid == 0:
                os._exit(9)
            answer = init.publish_when_made(config, pid)
            with self.assertRaises(init._StartFailed) as caught:
                answer()
            self.assertIn("status 9", str(caught.exception))
            self.assertFalse(config.ca_path.exists())

    def test_no_ca_made_publishes_nothing(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            config = init.Config(run_dir=Path(tmp) / "run", state_dir=Path(tmp) / "state")
            config.confdir.mkdir(parents=True)
            config.run_dir.mkdir()
            self.assertFalse(init.publish_when_made(config, None)())
            self.assertFalse(config.ca_path.exists())


if __name__ == "__main__":
    unittest.main()
