"""The proxy process (``bot_bottle.sidecar.egress.proxy``): real mitmproxy on a loopback port,
the egress addon deciding, none of mitmdump's unused addons loaded.

Runs where mitmproxy is importable (the dev extra); skips elsewhere. Traffic: loopback only, to
the proxy this test starts; the refused request never leaves it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

from tests._requires import requires
from tests.unit.test_sidecar_init import free_port

REPO = Path(__file__).resolve().parents[2]
HAVE_MITMPROXY = importlib.util.find_spec("mitmproxy") is not None


def _exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        out = b""
        while chunk := conn.recv(65536):
            out += chunk
        return out


@requires(HAVE_MITMPROXY, "mitmproxy (the dev extra)")
class ProxyProcessTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix="bb-proxy-")
        self.addCleanup(tmp.cleanup)
        self.dir = Path(tmp.name)
        (self.dir / "conf").mkdir()

    def start(self, policy: dict, port: int, *, pythonpath: str = "", extra: tuple[str, ...] = ()) -> subprocess.Popen[str]:
        (self.dir / "policy.json").write_text(json.dumps(policy))
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot_bottle.sidecar.egress.proxy", "--listen-port", str(port), *extra,
             "--set", f"confdir={self.dir / 'conf'}", "--set", "termlog_verbosity=warn",
             "--set", f"bottle_policy={self.dir / 'policy.json'}", "--set", "rawtcp=false"],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (pythonpath, str(REPO)) if p)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.addCleanup(lambda: (proc.poll() is None and proc.kill(), proc.communicate()))
        return proc

    def wait_listening(self, proc: subprocess.Popen[str], port: int) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self.assertIsNone(proc.poll(), "the proxy exited while starting")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.fail("the proxy did not listen within 30 s")

    def test_the_addon_decides_and_logs_and_sigterm_stops_it_cleanly(self) -> None:
        port = free_port()
        proc = self.start({"version": 2, "log": 2, "routes": [{"host": "a.example"}]}, port)
        self.wait_listening(proc, port)
        answer = _exchange(port, b"GET http://evil.example/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 403"), answer[:200])
        self.assertIn(b"default-deny", answer)
        # mitmproxy's onboarding app (mitm.it) is not there: the policy decides for that name too.
        answer = _exchange(port, b"GET http://mitm.it/ HTTP/1.1\r\nHost: mitm.it\r\nConnection: close\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 403"), answer[:200])
        proc.terminate()
        out, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0, err)
        hosts = [json.loads(line)["host"] for line in out.splitlines() if line.startswith("{")]
        self.assertEqual(hosts, ["evil.example", "mitm.it"])

    def test_with_wait_for_it_loads_its_ca_only_once_the_file_is_there(self) -> None:
        # The sidecar's init makes the CA while the proxy imports: a proxy that loaded its
        # certificates first would make a second CA, not the one the agent trusts.
        port = free_port()
        settled = self.dir / "conf" / ".ca-settled"
        proc = self.start({"version": 2, "routes": [{"host": "a.example"}]}, port, extra=("--wait-for", str(settled)))
        deadline = time.monotonic() + 3  # well past its imports on this machine
        while time.monotonic() < deadline:
            self.assertIsNone(proc.poll(), "the proxy exited while waiting")
            with self.assertRaises(OSError, msg="it listened before the file existed"):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            time.sleep(0.05)
        self.assertEqual(list((self.dir / "conf").iterdir()), [], "it made a CA before the file existed")
        settled.touch()
        self.wait_listening(proc, port)
        self.assertTrue((self.dir / "conf" / "mitmproxy-ca-cert.pem").is_file())

    def test_a_wait_for_file_that_never_comes_is_one_line_and_status_1(self) -> None:
        missing = self.dir / "never"
        proc = self.start({"version": 2, "routes": [{"host": "a.example"}]}, free_port(),
                          extra=("--wait-for", str(missing), "--wait-timeout", "0.2"))
        _, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 1, err)
        self.assertEqual(err.strip(), f"bottle-proxy: {missing} did not appear within 0.2 s")

    def test_a_broken_policy_is_one_line_and_status_1(self) -> None:
        proc = self.start({"version": 2, "routes": [{"hostt": "a.example"}]}, free_port())
        out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(err.strip().splitlines(), ["bottle-proxy: bottle egress: routes[0]: unknown key 'hostt'"])

    def test_a_port_in_use_stops_it(self) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            proc = self.start({"version": 2, "routes": []}, taken.getsockname()[1])
            proc.communicate(timeout=30)
        self.assertNotEqual(proc.returncode, 0)

    def test_a_name_that_resolves_differently_the_second_time_reaches_nothing(self) -> None:
        # The proxy's resolver answers a documentation address first (what the check sees), then
        # loopback (what mitmproxy's own connect sees): DNS rebinding onto the sidecar itself.
        upstream = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(upstream.close)
        port = upstream.getsockname()[1]
        (self.dir / "site").mkdir()
        (self.dir / "site" / "sitecustomize.py").write_text(
            "import socket\n"
            "_real, _seen = socket.getaddrinfo, []\n"
            "def _rebinding(host, *args, **kw):\n"
            "    if host == 'rebind.example':\n"
            "        _seen.append(host)\n"
            "        ip = '203.0.113.9' if len(_seen) == 1 else '127.0.0.1'\n"
            "        return _real(ip, *args, **kw)\n"
            "    return _real(host, *args, **kw)\n"
            "socket.getaddrinfo = _rebinding\n"
        )
        proxy_port = free_port()
        proc = self.start({"version": 2, "routes": [{"host": "rebind.example", "ports": [port]}]}, proxy_port,
                          pythonpath=str(self.dir / "site"))
        self.wait_listening(proc, proxy_port)
        received: list[bytes] = []

        def serve() -> None:
            upstream.settimeout(15)
            try:
                conn, _ = upstream.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(3)
                try:
                    while chunk := conn.recv(65536):
                        received.append(chunk)
                except OSError:
                    pass

        import threading

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        answer = _exchange(proxy_port, f"GET http://rebind.example:{port}/secret HTTP/1.1\r\n"
                                       f"Host: rebind.example:{port}\r\nConnection: close\r\n\r\n".encode())
        server.join(timeout=20)
        self.assertEqual(b"".join(received), b"", "the request reached the sidecar's loopback")
        self.assertFalse(answer.startswith(b"HTTP/1.1 200"), answer[:200])
        proc.terminate()
        out, err = proc.communicate(timeout=20)
        self.assertIn("connected to the sidecar itself", err)
        (line,) = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
        self.assertEqual((line["decision"], line["rule"], line["host"]), ("deny", "resolves-to-sidecar", "rebind.example"))

    def test_only_the_addons_it_runs_are_imported(self) -> None:
        probe = (
            "import sys, asyncio\n"
            "from bot_bottle.sidecar.egress import proxy\n"
            "proxy._bare_addons_package()\n"
            "from mitmproxy.addons import core, proxyserver, next_layer, tlsconfig, block, disable_h2c, errorcheck\n"
            "from bot_bottle.sidecar.egress import addon\n"
            "print(' '.join(sorted(m for m in ('flask', 'passlib', 'mitmproxy.addons.onboarding',\n"
            "      'mitmproxy.addons.clientplayback', 'mitmproxy.addons.proxyauth') if m in sys.modules)))\n"
        )
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "")


if __name__ == "__main__":
    unittest.main()
