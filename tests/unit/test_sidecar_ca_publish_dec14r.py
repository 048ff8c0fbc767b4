"""The sidecar publishes the bottle's CA the moment it is made, not after its config and daemons.

The host trusts the CA in the agent as soon as the certificate is in the shared folder: the last
step of a launch. Published from its own thread (``init.publish_when_made``), the certificate goes
out while the init still waits for the config the host hands in; the init runs here as a
subprocess with stand-in daemons (``_sidecar_process``), no Docker, no network.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import unittest
from pathlib import Path

from bot_bottle.sidecar import init
from tests.unit._sidecar_process import SidecarProcess, free_port, hand_in, sidecar_steps

COPY = "ca-" + "ab" * 16 + ".crt"


class PublishedBeforeTheConfigTest(SidecarProcess, unittest.TestCase):
    def setUp(self) -> None:
        self.make_root()
        self.cfg = self.root / "cfg"
        self.cfg.mkdir()

    def start(self) -> subprocess.Popen:
        return self.start_init(self.cfg, free_port(), "--config-arrives", "--ca-copy", COPY,
                               stdout=subprocess.DEVNULL, text=True)

    def hand_in(self, policy: object) -> None:
        hand_in(self.cfg, {"policy.json": (json.dumps(policy), 0o600),
                           "secrets.json": (json.dumps({"credentials": {}, "known_secrets": {}}), 0o600)})

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
        steps = sidecar_steps(err)
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
