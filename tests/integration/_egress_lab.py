"""A private lab for egress tests: an internal network, an echo upstream, a sidecar and an agent.

Everything is created by the lab, labelled, and removed by id when the owning test class ends
(also when setup fails half way). The "internet" is a ``--internal`` bridge network with one
upstream container answering under several names (network aliases), over HTTP on 80 and HTTPS
on 443 with a certificate from a private CA made at start. No request leaves for an address the
lab did not create.
"""

from __future__ import annotations

import hashlib
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

RUN_DIR = "/run/bottle"
PROXY = "http://127.0.0.1:3128"
AGENT_ENTRY = (
    f"socat TCP-LISTEN:3128,bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:{RUN_DIR}/proxy.sock & exec sleep infinity"
)
UPSTREAM_NAMES = ("allowed.example", "api.example", "key.example", "files.example", "open.example", "evil.example")

# The echo upstream: records each request as one JSON line on stdout (the test reads them with
# `docker logs`), including the credentials it received; answers with a JSON summary that holds
# only a hash of any credential, so the agent never receives a real token back.
ECHO_SERVER = r'''
import hashlib, json, os, ssl, subprocess, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
NAMES = sys.argv[1].split(",")
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def _go(self):
        n = int(self.headers.get("content-length") or 0)
        remaining, size = n, 0
        while remaining:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            size += len(chunk); remaining -= len(chunk)
        tls = isinstance(self.connection, ssl.SSLSocket)
        creds = {k: self.headers.get_all(k) or [] for k in ("authorization", "x-api-key", "api-key")}
        print(json.dumps({"hit": self.headers.get("host"), "method": self.command, "path": self.path, "tls": tls,
                          "bytes": size, **creds}), flush=True)
        digest = {k: [hashlib.sha256(v.encode()).hexdigest() for v in vs] for k, vs in creds.items()}
        body = json.dumps({"host": self.headers.get("host"), "path": self.path, "tls": tls, "bytes": size,
                           "sha256": digest}).encode()
        self.send_response(200); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    do_GET = do_POST = do_PUT = _go
    def log_message(self, *a): pass
d = "/srv"
run = lambda *a: subprocess.run(a, check=True, capture_output=True)
run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=egress lab CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
    "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.tmp")
run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={NAMES[0]}", "-keyout", f"{d}/srv.key", "-out", f"{d}/srv.csr")
open(f"{d}/ext", "w").write("subjectAltName=" + ",".join(f"DNS:{n}" for n in NAMES) + "\nextendedKeyUsage=serverAuth\n")
run("openssl", "x509", "-req", "-in", f"{d}/srv.csr", "-CA", f"{d}/ca.tmp", "-CAkey", f"{d}/ca.key",
    "-CAcreateserial", "-days", "2", "-extfile", f"{d}/ext", "-out", f"{d}/srv.pem")
tls = ThreadingHTTPServer(("0.0.0.0", 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(f"{d}/srv.pem", f"{d}/srv.key")
tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
threading.Thread(target=tls.serve_forever, daemon=True).start()
os.rename(f"{d}/ca.tmp", f"{d}/ca.pem")
ThreadingHTTPServer(("0.0.0.0", 80), H).serve_forever()
'''


def docker(*args: str, timeout: float = 120, check: bool = True, input: str | None = None) -> engine.DockerResult:
    return engine.run(list(args), timeout=timeout, check=check, input=input)


def wait_for(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.1)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Lab:
    """One private internet, one echo upstream, one sidecar, one agent (``--network none``).

    ``owner`` is the TestCase class whose class cleanups remove everything, in reverse order.
    """

    def __init__(self, owner: type[unittest.TestCase], policy: dict, secrets_doc: dict,
                 *, agent_env: dict[str, str] | None = None, internal_service_port: int | None = None) -> None:
        self.owner = owner
        self.label = f"bot-bottle.test=egress-{secrets.token_hex(6)}"
        self.sidecar_ref = images.ensure_image(images.sidecar_image())
        self.agent_ref = images.ensure_image(images.agent_image("claude"))
        self.tmp = tempfile.TemporaryDirectory(prefix="bb-egress-it-")
        owner.addClassCleanup(self.tmp.cleanup)
        self.network = self._make(
            ["network", "create", "--internal", "--label", self.label, f"bb-egress-{secrets.token_hex(6)}"],
            lambda ref: docker("network", "rm", ref, check=False),
        )
        self.volume = self._make(["volume", "create", "--label", self.label],
                                 lambda ref: docker("volume", "rm", "-f", ref, check=False))
        self.upstream = self._upstream()
        self.upstream_ca = Path(self.tmp.name) / "upstream-ca.pem"
        docker("cp", f"{self.upstream}:/srv/ca.pem", str(self.upstream_ca))
        self.sidecar = self._start_sidecar(policy, secrets_doc)
        if internal_service_port is not None:
            self._start_internal_service(internal_service_port)
        env_args = [a for k, v in (agent_env or {}).items() for a in ("-e", f"{k}={v}")]
        self.agent = self._container(
            "run", "-d", "--network", "none", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--volume", f"{self.volume}:{RUN_DIR}", *env_args, "--entrypoint", "sh", self.agent_ref, "-c", AGENT_ENTRY,
        )
        # The upstream's CA, for the passthrough checks (an intercepted tunnel shows the bottle CA instead).
        docker("cp", str(self.upstream_ca), f"{self.agent}:/tmp/upstream-ca.pem")
        wait_for(lambda: docker("exec", self.agent, "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/3128",
                                check=False).returncode == 0, "the agent's forwarder")

    # -- construction ---------------------------------------------------------------------------

    def _make(self, args: list[str], remove) -> str:
        ref = docker(*args).stdout.strip()
        self.owner.addClassCleanup(remove, ref)
        return ref

    def _container(self, verb: str, *args: str) -> str:
        return self._make([verb, "--label", self.label, *args], lambda ref: docker("rm", "-f", "-v", ref, check=False))

    def _upstream(self) -> str:
        aliases = [a for name in UPSTREAM_NAMES for a in ("--network-alias", name)]
        cid = self._container("run", "-d", "--network", self.network, *aliases, "--entrypoint", "python3",
                              self.sidecar_ref, "-c", ECHO_SERVER, ",".join(UPSTREAM_NAMES))
        wait_for(lambda: docker("exec", cid, "test", "-s", "/srv/ca.pem", check=False).returncode == 0,
                 "the upstream's certificate")
        return cid

    def _start_sidecar(self, policy: dict, secrets_doc: dict) -> str:
        cid = self._container(
            "create", "--network", self.network, "--volume", f"{self.volume}:{RUN_DIR}",
            "--cap-drop", "ALL", *(a for cap in SIDECAR_INIT_CAPS for a in ("--cap-add", cap)),
            "--security-opt", "no-new-privileges", "--memory", "512m", self.sidecar_ref,
        )
        config = Path(self.tmp.name) / "config"
        config.mkdir(mode=0o700)
        (config / "policy.json").write_text(json.dumps(policy))
        (config / "secrets.json").write_text(json.dumps(secrets_doc))
        (config / "secrets.json").chmod(0o600)
        docker("cp", f"{config}/.", f"{cid}:/etc/bot-bottle")
        # Test only: the sidecar verifies upstreams against the system store; make that store the
        # lab's private CA so interception is checked end to end.
        docker("cp", str(self.upstream_ca), f"{cid}:/etc/ssl/certs/ca-certificates.crt")
        docker("start", cid)
        wait_for(lambda: docker("exec", cid, "test", "-e", f"{RUN_DIR}/ready", check=False).returncode == 0
                 or not self.running(cid), "sidecar readiness")
        if not self.running(cid):
            raise AssertionError("sidecar exited during start:\n" + self.logs(cid))
        return cid

    def _start_internal_service(self, port: int) -> None:
        """A small dummy service on the sidecar's loopback: what git-gate or supervise will be."""
        docker("exec", self.sidecar, "sh", "-c",
               "mkdir -p /tmp/dummy && echo hello-from-the-internal-service > /tmp/dummy/index.html")
        docker("exec", "-d", self.sidecar, "python3", "-m", "http.server", str(port), "--bind", "127.0.0.1",
               "--directory", "/tmp/dummy")
        probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/', timeout=2)"
        wait_for(lambda: docker("exec", self.sidecar, "python3", "-c", probe, check=False).returncode == 0,
                 "the internal dummy service")

    # -- observation ----------------------------------------------------------------------------

    def running(self, cid: str) -> bool:
        return docker("inspect", "-f", "{{.State.Running}}", cid, check=False).stdout.strip() == "true"

    def logs(self, cid: str) -> str:
        result = docker("logs", cid, check=False)
        return result.stdout + result.stderr

    def ip(self, cid: str) -> str:
        return docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", cid).stdout.strip()

    def hits(self) -> list[dict]:
        return [json.loads(line) for line in docker("logs", self.upstream).stdout.splitlines() if line.startswith("{")]

    def hits_for(self, path: str) -> list[dict]:
        return [h for h in self.hits() if h["path"].split("?")[0] == path]

    def decisions(self) -> list[dict]:
        text = docker("exec", self.sidecar, "cat", "/var/log/bottle/egress.jsonl").stdout
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def decision_for(self, path: str, timeout: float = 10) -> dict:
        found: list[dict] = []

        def look() -> bool:
            found[:] = [d for d in self.decisions() if d.get("path") == path]
            return bool(found)

        wait_for(look, f"a log line for {path}", timeout)
        return found[-1]

    # -- acting as the agent ---------------------------------------------------------------------

    def agent_sh(self, script: str, *, timeout: float = 60, user: str = "node") -> engine.DockerResult:
        env = ["-e", f"http_proxy={PROXY}", "-e", f"HTTP_PROXY={PROXY}", "-e", f"https_proxy={PROXY}",
               "-e", f"HTTPS_PROXY={PROXY}"]
        return docker("exec", "-u", user, *env, self.agent, "bash", "-c", script, timeout=timeout, check=False)

    def curl(self, *args: str, bottle_ca: bool = True) -> tuple[str, str, int]:
        """(status code, body, curl exit code) for a request from inside the agent."""
        marker = "\n@@status="
        ca = ["--cacert", f"{RUN_DIR}/ca.crt"] if bottle_ca else []
        argv = ["curl", "-sS", "--max-time", "20", *ca, "-w", marker + "%{http_code}", *args]
        result = self.agent_sh(" ".join(shlex.quote(a) for a in argv))
        body, _, status = result.stdout.rpartition(marker)
        return status.strip(), body, result.returncode

    def raw(self, request: bytes) -> str:
        """Send bytes as they are to the proxy (through the agent's forwarder); return the answer."""
        # Keep our side open a moment: a client that half-closes at once is taken as gone, and
        # the proxy then drops the answer instead of sending it.
        script = "{ cat; sleep 2; } | socat -t 1 - TCP:127.0.0.1:3128"
        result = docker("exec", "-i", self.agent, "bash", "-c", script, timeout=30, check=False,
                        input=request.decode("latin-1"))
        return result.stdout
