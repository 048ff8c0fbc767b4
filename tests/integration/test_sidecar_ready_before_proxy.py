"""The sidecar is ready before its proxy has loaded; what connects meanwhile waits and is served.

The real sidecar image and its real init and socat. The proxy's command is wrapped so that it
starts loading only when the test says so: the bundle must say ``ready`` while the proxy is held,
a request sent through the bottle's socket then must wait (not be refused) and be answered by the
real proxy once it listens, and a proxy that dies before it listens must take the bundle offline.
Nothing here has a network: the container runs with ``--network none``; the request is refused by
the proxy's own policy and never leaves.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from bot_bottle import images
from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.launch import SIDECAR_INIT_CAPS
from tests._docker import skip_unless_docker

RELEASE = "/tmp/let-the-proxy-load"
# Stands in for the image's bottle-proxy: waits for the test's go, then runs the real one.
HELD_PROXY = f"""#!/bin/sh
while [ ! -e {RELEASE} ]; do sleep 0.05; done
exec /opt/mitmproxy/bin/python -c 'import sys; from bot_bottle.sidecar.egress.proxy import main; sys.exit(main())' "$@"
"""
# An agent's first request, through the bottle's socket, to a host no route allows.
CLIENT = r"""
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(60)
s.connect("/run/bottle/proxy.sock")
s.sendall(b"GET http://not-allowed.example/ HTTP/1.1\r\nHost: not-allowed.example\r\nConnection: close\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(data.split(b"\r\n", 1)[0].decode())
"""
POLICY = {"version": 2, "routes": [{"host": "allowed.example"}]}


def docker(*args: str, timeout: float = 120, check: bool = True) -> engine.DockerResult:
    return engine.run(list(args), timeout=timeout, check=check)


@skip_unless_docker()
class ReadyBeforeTheProxyLoads(unittest.TestCase):
    def setUp(self) -> None:
        image = images.ensure_image(images.sidecar_image())
        caps = [arg for cap in SIDECAR_INIT_CAPS for arg in ("--cap-add", cap)]
        self.cid = docker("create", "--network", "none", "--cap-drop", "ALL", *caps,
                          "--label", "bot-bottle.test=sidecar-ready-before-proxy", image).stdout.strip()
        self.addCleanup(docker, "rm", "-f", "-v", self.cid, check=False)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "policy.json").write_text(json.dumps(POLICY))
            (folder / "secrets.json").write_text(json.dumps({"credentials": {}}))
            docker("cp", f"{tmp}/.", f"{self.cid}:/etc/bot-bottle")
            proxy = folder / "bottle-proxy"
            proxy.write_text(HELD_PROXY)
            proxy.chmod(0o755)
            docker("cp", str(proxy), f"{self.cid}:/opt/mitmproxy/bin/bottle-proxy")
        docker("start", self.cid)
        deadline = time.monotonic() + 30
        while docker("exec", self.cid, "test", "-e", "/run/bottle/ready", check=False).returncode != 0:
            if time.monotonic() > deadline:
                self.fail(f"the bundle was not ready while its proxy was held:\n{self.steps_text()}")
            time.sleep(0.1)

    def steps_text(self) -> str:
        logs = docker("logs", self.cid, check=False)
        return logs.stderr + logs.stdout

    def steps(self) -> list[str]:
        return [json.loads(line)["what"] for line in self.steps_text().splitlines()
                if line.startswith('{"event": "sidecar"')]

    def test_a_connection_made_while_the_proxy_loads_waits_and_is_served(self) -> None:
        self.assertNotIn("proxy-listening", self.steps())
        client = subprocess.Popen([engine.docker_binary() or "docker", "exec", self.cid, "python3", "-c", CLIENT],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: client.poll() is None and client.kill())
        time.sleep(1.5)
        if client.poll() is not None:
            self.fail(f"the connection was not held: {client.communicate()}")
        docker("exec", self.cid, "touch", RELEASE)
        out, err = client.communicate(timeout=90)
        self.assertEqual(client.returncode, 0, err)
        self.assertEqual(out.strip(), "HTTP/1.1 403 Forbidden", err)  # the proxy's policy answered
        steps = self.steps()
        self.assertLess(steps.index("ready"), steps.index("proxy-listening"))
        self.assertEqual(docker("inspect", "-f", "{{.State.Running}}", self.cid).stdout.strip(), "true")

    def test_a_proxy_that_dies_before_it_listens_takes_the_bundle_offline(self) -> None:
        started = [json.loads(line) for line in self.steps_text().splitlines() if '"what": "started"' in line]
        proxy = next(step["pid"] for step in started if step["daemon"] == "egress-proxy")
        docker("exec", self.cid, "sh", "-c", f"kill -KILL {proxy}")
        code = docker("wait", self.cid, timeout=60).stdout.strip()
        self.assertEqual(code, "1")
        text = self.steps_text()
        self.assertIn('"what": "offline"', text)
        self.assertIn("egress-proxy exited with status", text)
        self.assertNotIn("proxy-listening", text)


if __name__ == "__main__":
    unittest.main()
