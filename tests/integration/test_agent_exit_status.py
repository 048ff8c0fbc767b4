"""The agent's recorded exit status against the real engine: what a ``docker exec`` client that is
interrupted reports, and what the recorder left in the container meanwhile.

One plain container from the agent images' base (a ``node`` user and the secret env tmpfs added,
as an agent container has them), no network, no bottle: only the exec path is under test.
"""

from __future__ import annotations

import signal
import subprocess
import time
import unittest
import uuid

from bot_bottle import images, lifecycle
from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.bottle import SECRET_ENV_DIR, DockerBottle
from tests._docker import skip_unless_docker
from tests._signals import default_signals


class NoRestart:
    def restart_request(self) -> None:
        return None


def _docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([engine.docker_binary() or "docker", *args], capture_output=True, text=True, timeout=timeout)


@skip_unless_docker()
class RecordedStatus(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        base = images._base_image(images.load_versions())
        if _docker("image", "inspect", base).returncode != 0:
            raise unittest.SkipTest(f"the base image {base} is not on this machine")
        cls.container = f"bb-test-exit-status-{uuid.uuid4().hex[:8]}"
        started = _docker(
            "run", "-d", "--rm", "--name", cls.container, "--network", "none", "--label", "bot-bottle.test=exit-status",
            "--tmpfs", f"{SECRET_ENV_DIR}:rw,nosuid,nodev,noexec,size=1m,mode=0700,uid=1000,gid=1000",
            base, "sh", "-c",
            "useradd -u 1000 -m node && mkdir -p /home/node/workspace && chown node /home/node/workspace "
            "&& touch /ready && exec sleep 600",
        )
        if started.returncode != 0:
            raise AssertionError(started.stderr)
        for _ in range(60):
            if _docker("exec", cls.container, "test", "-e", "/ready").returncode == 0:
                break
            time.sleep(0.5)
        cls.bottle = DockerBottle(cls.container)

    @classmethod
    def tearDownClass(cls) -> None:
        _docker("rm", "-f", cls.container)

    def test_a_finished_run_leaves_its_status_read_once(self) -> None:
        status_file = self.bottle.status_file()
        argv = self.bottle.run_argv(["sh", "-c", "echo out; exit 3"], tty=False, status_file=status_file)
        proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        self.assertEqual((proc.returncode, proc.stdout), (3, "out\n"))
        self.assertEqual(self.bottle.exit_status(status_file), 3)
        self.assertIsNone(self.bottle.exit_status(status_file), "removed once read")

    def test_an_interrupted_client_is_not_a_finished_agent(self) -> None:
        status_file = self.bottle.status_file()
        argv = self.bottle.run_argv(["sleep", "60"], tty=False, status_file=status_file)
        client = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  preexec_fn=default_signals)
        try:
            time.sleep(3)
            client.send_signal(signal.SIGINT)
            code = client.wait(timeout=60)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
        self.assertIsNone(self.bottle.exit_status(status_file), "the agent still runs: nothing is recorded")
        # The docker CLI exits 0 here and leaves the command running: only the missing status tells.
        got = lifecycle._agent_exit(self.bottle, code, status_file, alive=self.bottle.running, state=NoRestart())
        self.assertEqual(got, (lifecycle.DETACHED_EXIT, lifecycle.DETACHED) if code == 0 else (code, None))
        self.assertTrue(self.bottle.running())


if __name__ == "__main__":
    unittest.main()
