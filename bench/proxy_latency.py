"""Added latency and upload throughput of the egress proxy, against the same requests sent directly.

Run: ``.venv/bin/python bench/proxy_latency.py [--requests N] [--uploads N]`` (images are built
first, untimed). Writes ``bench/results/proxy_latency.json`` and two plots, ``proxy_latency.png``
(added milliseconds per request) and ``proxy_upload.png`` (16 MB upload throughput).

Setup, all created here and removed by id at the end (also on failure): an ``--internal`` network,
an HTTPS upstream on it with a private CA, a sidecar (the real image and init, trusting that CA),
and two client containers from the agent image: one on the network talking to the upstream
directly, one with ``--network none`` reaching it only through the sidecar's socket, as an agent
does. Both run the same ``curl`` command; curl's own ``time_total`` is what is measured, so
``docker exec`` overhead is not. Targets (medians): under 5 ms added per small intercepted HTTPS
request, and at least 40% of the direct throughput for a 16 MB upload. DLP is on as in a bottle
(token formats and one bottle secret; the upload streams through the chunk-wise scanner);
``--dlp off`` turns the route's detectors off to measure the proxy's own data path. Each upload
round also times one 64 MiB download per side (no target): an answer that large streams through the
inbound scan (echoed secrets, injection phrases) instead of being held whole.

Two reference paths share each upload round, to show where the proxy's time goes: ``relay``, the
same way out (the agent's forwarder, the shared socket, the sidecar) with a plain TCP relay where
the proxy listens (TLS end to end, nothing read), and ``mitmproxy``, a bare ``mitmdump`` of the
image's own mitmproxy (no addon, bodies streamed) behind that same way out. ``upload_ratio`` is
the target's (against direct); ``upload_ratio_to_bare_mitmproxy`` is what the addon, DLP included,
leaves of mitmproxy's own throughput.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import bar_plot, median, write_results  # noqa: E402
from bot_bottle import images  # noqa: E402
from bot_bottle.backend.docker import engine  # noqa: E402
from bot_bottle.backend.docker.launch import AGENT_ENTRY, SIDECAR_INIT_CAPS  # noqa: E402  (as a bottle has them)

HOST = "upstream.bench.example"
RUN_DIR = "/run/bottle"
UPLOAD_MB = 16
# Larger than the answers the proxy holds whole (16 MiB): this one streams through the inbound scan.
DOWNLOAD_MB = 64
# --tuned-forwarder: the agent's forwarder without Nagle and with large copy blocks, as the
# sidecar's own socat runs; compare with the forwarder a bottle runs today (AGENT_ENTRY).
TUNED_FORWARDER = (
    f"socat -b 262144 TCP-LISTEN:3128,bind=127.0.0.1,fork,reuseaddr,nodelay UNIX-CONNECT:{RUN_DIR}/proxy.sock & "
    "exec sleep infinity"
)
MAX_REQUESTS = 2000
# The reference paths (see the module docstring): sockets in the shared volume, ports in the
# proxied client, the bare mitmdump's port and its CA in the sidecar.
RELAY_SOCKET = f"{RUN_DIR}/bench-relay.sock"
BARE_SOCKET = f"{RUN_DIR}/bench-mitm.sock"
RELAY_PORT, BARE_PORT = 3129, 3130
BARE_MITM_PORT = 8089
BARE_CA = f"{RUN_DIR}/bench-mitm-ca.pem"
HELD_ROUNDS = 3
HELD_SMALL = 20
MAX_UPLOADS = 20
# A model request with a long conversation, ~7.5 MB of JSON: under the 8 MiB the scanner takes
# JSON apart, so the proxy holds it whole and scans it in full (seconds). Written by perl (the
# agent image has no python) in the proxied client.
HELD_JSON = (
    r"""perl -e 'my @c = split //, "abcdefghij klmnop\n"; print "{\"messages\": [";'"""
    r"""' for my $i (1..3500) { my $s = ""; $s .= $c[int rand @c] for 1..2000; $s =~ s/\n/\\n/g;'"""
    r"""' print(($i > 1 ? ", " : "") . "{\"role\": \"user\", \"content\": \"$s\"}") } print "]}"'"""
    " > /tmp/held.json"
)

# The upstream: HTTPS with a private CA; a tiny answer for GET (or N MiB of random data for
# /download/N), and for POST the number of bytes read (in 1 MiB chunks, so a 16 MB upload is not
# held in memory twice).
UPSTREAM = r'''
import os, ssl, subprocess, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
NAME = sys.argv[1]
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle and delayed ACKs add
    # ~40 ms to every kept-alive answer and hide what is being measured.
    disable_nagle_algorithm = True
    def _answer(self, body):
        self.send_response(200); self.send_header("content-length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path.startswith("/download/"):
            # N MiB with a Content-Length, written in 1 MiB blocks.
            size = int(self.path.rsplit("/", 1)[1]) << 20
            self.send_response(200); self.send_header("content-length", str(size)); self.end_headers()
            block = os.urandom(1 << 20)
            for _ in range(size >> 20):
                self.wfile.write(block)
            return
        self._answer(b"ok")
    def do_POST(self):
        left, got = int(self.headers.get("content-length") or 0), 0
        while left:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            got += len(chunk); left -= len(chunk)
        self._answer(str(got).encode())
    def log_message(self, *a): pass
d = "/srv"
run = lambda *a: subprocess.run(a, check=True, capture_output=True)
run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=bench CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
    "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.tmp")
run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={NAME}", "-keyout", f"{d}/srv.key", "-out", f"{d}/srv.csr")
open(f"{d}/ext", "w").write(f"subjectAltName=DNS:{NAME}\nextendedKeyUsage=serverAuth\n")
run("openssl", "x509", "-req", "-in", f"{d}/srv.csr", "-CA", f"{d}/ca.tmp", "-CAkey", f"{d}/ca.key",
    "-CAcreateserial", "-days", "2", "-extfile", f"{d}/ext", "-out", f"{d}/srv.pem")
server = ThreadingHTTPServer(("0.0.0.0", 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(f"{d}/srv.pem", f"{d}/srv.key")
server.socket = ctx.wrap_socket(server.socket, server_side=True)
os.rename(f"{d}/ca.tmp", f"{d}/ca.pem")
server.serve_forever()
'''


class Lab:
    """Everything the benchmark creates, removed by id in ``close()``."""

    def __init__(self, forwarder: str = AGENT_ENTRY, dlp: bool = True) -> None:
        self.forwarder = forwarder
        self.dlp = dlp
        self.label = f"bot-bottle.bench=proxy-{secrets.token_hex(4)}"
        self.containers: list[str] = []
        self.networks: list[str] = []
        self.volumes: list[str] = []

    def docker(self, *args: str, timeout: float = 120, check: bool = True) -> engine.DockerResult:
        return engine.run(list(args), timeout=timeout, check=check)

    def container(self, *args: str) -> str:
        cid = self.docker(*args[:1], "--label", self.label, *args[1:]).stdout.strip()
        self.containers.append(cid)
        return cid

    def wait(self, check, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not ready within {timeout:g} s")
            time.sleep(0.1)

    def up(self, tmp: Path) -> None:
        sidecar_image = images.ensure_image(images.sidecar_image())
        agent_image = images.ensure_image(images.agent_image("claude"))
        network = self.docker("network", "create", "--internal", "--label", self.label,
                              f"bb-bench-{secrets.token_hex(4)}").stdout.strip()
        self.networks.append(network)
        volume = self.docker("volume", "create", "--label", self.label).stdout.strip()
        self.volumes.append(volume)
        self.upstream = self.container("run", "-d", "--network", network, "--network-alias", HOST,
                                       "--entrypoint", "python3", sidecar_image, "-c", UPSTREAM, HOST)
        self.wait(lambda: self.docker("exec", self.upstream, "test", "-s", "/srv/ca.pem", check=False).returncode == 0,
                  "the upstream")
        ca = tmp / "upstream-ca.pem"
        self.docker("cp", f"{self.upstream}:/srv/ca.pem", str(ca))

        self.sidecar = self.container("create", "--network", network, "--volume", f"{volume}:{RUN_DIR}",
                                      "--cap-drop", "ALL", *(a for cap in SIDECAR_INIT_CAPS for a in ("--cap-add", cap)),
                                      "--security-opt", "no-new-privileges", "--memory", "512m", sidecar_image)
        config = tmp / "config"
        config.mkdir()
        # Log level 1 (the default): allowed requests write no line, as in a normal bottle.
        route: dict = {"host": HOST, "ports": [443]}
        if not self.dlp:
            route["dlp"] = {"tokens": False, "secrets": False}
        policy = {"version": 2, "log": 1, "internal_services": {}, "routes": [route]}
        (config / "policy.json").write_text(json.dumps(policy))
        # One bottle secret, as a bottle with a prompted value has: its every encoding is searched.
        known = {"BENCH_SECRET": secrets.token_urlsafe(24)}
        (config / "secrets.json").write_text(json.dumps({"credentials": {}, "known_secrets": known}))
        self.docker("cp", f"{config}/.", f"{self.sidecar}:/etc/bot-bottle")
        self.docker("cp", str(ca), f"{self.sidecar}:/etc/ssl/certs/ca-certificates.crt")
        self.docker("start", self.sidecar)
        self.wait(lambda: self.docker("exec", self.sidecar, "test", "-e", f"{RUN_DIR}/ready", check=False).returncode == 0,
                  "the sidecar")

        # The same image and command on both sides; only the way out differs.
        self.direct = self.container("run", "-d", "--network", network, "--entrypoint", "sleep", agent_image, "infinity")
        self.proxied = self.container("run", "-d", "--network", "none", "--volume", f"{volume}:{RUN_DIR}",
                                      "--entrypoint", "sh", agent_image, "-c", self.forwarder)
        for cid in (self.direct, self.proxied):
            self.docker("cp", str(ca), f"{cid}:/tmp/upstream-ca.pem")
            self.docker("exec", cid, "sh", "-c", f"head -c {UPLOAD_MB * 1024 * 1024} /dev/urandom > /tmp/blob")
        self.docker("exec", self.proxied, "sh", "-c", HELD_JSON)
        self.wait(lambda: self.docker("exec", self.proxied, "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/3128",
                                      check=False).returncode == 0, "the forwarder")
        self._references()

    def _references(self) -> None:
        """The relay and bare-mitmproxy paths, each behind a forwarder like the agent's (its
        socat options) and a socket in the shared volume like the proxy's."""
        sidecar_socat = "socat -b 262144 UNIX-LISTEN:{sock},fork,mode=777,unlink-early TCP:{target},nodelay"
        self.docker("exec", "-d", self.sidecar, "sh", "-c",
                    sidecar_socat.format(sock=RELAY_SOCKET, target=f"{HOST}:443"))
        self.docker("exec", "-d", self.sidecar, "sh", "-c",
                    f"/opt/mitmproxy/bin/mitmdump -q --listen-host 127.0.0.1 --listen-port {BARE_MITM_PORT} "
                    "--set stream_large_bodies=1 --set confdir=/tmp/bare-mitm "
                    "--set ssl_verify_upstream_trusted_ca=/etc/ssl/certs/ca-certificates.crt")
        self.docker("exec", "-d", self.sidecar, "sh", "-c",
                    sidecar_socat.format(sock=BARE_SOCKET, target=f"127.0.0.1:{BARE_MITM_PORT}"))
        self.wait(lambda: self.docker("exec", self.sidecar, "test", "-s", "/tmp/bare-mitm/mitmproxy-ca-cert.pem",
                                      check=False).returncode == 0, "the bare mitmproxy")
        self.docker("exec", self.sidecar, "cp", "/tmp/bare-mitm/mitmproxy-ca-cert.pem", BARE_CA)
        for port, sock in ((RELAY_PORT, RELAY_SOCKET), (BARE_PORT, BARE_SOCKET)):
            self.docker("exec", "-d", self.proxied, "sh", "-c",
                        f"socat -b 262144 TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,nodelay UNIX-CONNECT:{sock}")
        for port in (RELAY_PORT, BARE_PORT):
            self.wait(lambda: self.docker("exec", self.proxied, "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}",
                                          check=False).returncode == 0, f"the reference forwarder on {port}")

    def curl(self, client: str, args: str, timeout: float = 600) -> list[str]:
        if client == "proxy":
            cid = self.proxied
            prefix = f"curl -sS --proxy http://127.0.0.1:3128 --cacert {RUN_DIR}/ca.crt"
        elif client == "relay":
            cid = self.proxied
            prefix = f"curl -sS --connect-to {HOST}:443:127.0.0.1:{RELAY_PORT} --cacert /tmp/upstream-ca.pem"
        elif client == "mitmproxy":
            cid = self.proxied
            prefix = f"curl -sS --proxy http://127.0.0.1:{BARE_PORT} --cacert {BARE_CA}"
        else:
            cid = self.direct
            prefix = "curl -sS --cacert /tmp/upstream-ca.pem"
        result = self.docker("exec", cid, "bash", "-c", f"{prefix} {args}", timeout=timeout)
        return result.stdout.split()

    def close(self) -> None:
        if self.containers:
            self.docker("rm", "-f", "-v", *self.containers, timeout=120, check=False)
        for network in self.networks:
            self.docker("network", "rm", network, timeout=60, check=False)
        for volume in self.volumes:
            self.docker("volume", "rm", "-f", volume, timeout=60, check=False)


def keepalive_ms(lab: Lab, client: str, n: int) -> list[float]:
    """n GETs over one connection (one tunnel through the proxy), as an HTTP client pool does."""
    url = f"https://{HOST}/small"
    # -o applies to one URL only: give one per URL so no body lands among the timings.
    args = "-w '%{time_total}\\n' " + " ".join(f"-o /dev/null {shlex.quote(url)}" for _ in range(n))
    times = [float(t) * 1000 for t in lab.curl(client, args)]
    return times[1:]  # the first pays for the connection (and the tunnel's TLS set-up)


def fresh_ms(lab: Lab, client: str, n: int) -> list[float]:
    """n GETs, each on a new connection (new tunnel, new TLS handshakes on both sides)."""
    url = f"https://{HOST}/small"
    loop = f"for i in $(seq {n}); do CURL -o /dev/null -w '%{{time_total}}\\n' {shlex.quote(url)}; done"
    cid = lab.proxied if client == "proxy" else lab.direct
    prefix = (f"curl -sS --proxy http://127.0.0.1:3128 --cacert {RUN_DIR}/ca.crt" if client == "proxy"
              else "curl -sS --cacert /tmp/upstream-ca.pem")
    out = lab.docker("exec", cid, "bash", "-c", loop.replace("CURL", prefix), timeout=600).stdout.split()
    return [float(t) * 1000 for t in out]


def upload(lab: Lab, client: str, n: int) -> tuple[list[float], list[float]]:
    """(MB/s while transferring, whole request seconds) for n uploads, each on a new connection.

    The rate leaves out connection set-up (curl's ``time_pretransfer``: TCP, CONNECT and TLS),
    which the new-connection latency series measures on its own.
    """
    url = f"https://{HOST}/upload"
    rates, totals = [], []
    for _ in range(n):
        fmt = "%{time_pretransfer} %{time_total}\\n"
        pre, total = lab.curl(client, f"-o /dev/null -w '{fmt}' --data-binary @/tmp/blob {shlex.quote(url)}")
        rates.append(UPLOAD_MB / (float(total) - float(pre)))
        totals.append(float(total))
    return rates, totals


def download(lab: Lab, client: str) -> float:
    """MB/s of one ``DOWNLOAD_MB`` download on a new connection, connection set-up left out."""
    fmt = "%{time_pretransfer} %{time_total} %{size_download}\\n"
    pre, total, size = lab.curl(client, f"-o /dev/null -w '{fmt}' https://{HOST}/download/{DOWNLOAD_MB}")
    if int(size) != DOWNLOAD_MB << 20:
        raise RuntimeError(f"the {client} download got {size} bytes of {DOWNLOAD_MB << 20}")
    return DOWNLOAD_MB / (float(total) - float(pre))  # as the upload series counts


def small_while_held(lab: Lab, n: int) -> tuple[list[float], float]:
    """(ms of each of n small GETs on a new kept-alive connection, seconds of the held request)
    while the proxy scans a large JSON request from another connection: the scan must not stop
    the proxy's other connections. The first GET, which sets up its tunnel, is counted too."""
    url = f"https://{HOST}/small"
    prefix = f"curl -sS --proxy http://127.0.0.1:3128 --cacert {RUN_DIR}/ca.crt"
    lab.docker("exec", lab.proxied, "rm", "-f", "/tmp/held.out")
    lab.docker("exec", "-d", lab.proxied, "bash", "-c",
               f"{prefix} -o /dev/null -w '%{{time_total}}' -H 'content-type: application/json' "
               f"--data-binary @/tmp/held.json https://{HOST}/upload > /tmp/held.tmp; mv /tmp/held.tmp /tmp/held.out")
    time.sleep(0.5)  # its body has arrived and its scan has begun
    args = "-w '%{time_total}\\n' " + " ".join(f"-o /dev/null {shlex.quote(url)}" for _ in range(n))
    small = [float(t) * 1000 for t in lab.curl("proxy", args)]
    lab.wait(lambda: lab.docker("exec", lab.proxied, "test", "-s", "/tmp/held.out", check=False).returncode == 0,
             "the held request", timeout=300)
    held = float(lab.docker("exec", lab.proxied, "cat", "/tmp/held.out").stdout)
    return small, held


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) >= 10 else max(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help=f"requests per series (max {MAX_REQUESTS})")
    parser.add_argument("--uploads", type=int, default=5, help=f"16 MB uploads per side (max {MAX_UPLOADS})")
    parser.add_argument("--tuned-forwarder", action="store_true",
                        help="run the agent's forwarder without Nagle and with 256 KiB blocks (see TUNED_FORWARDER)")
    parser.add_argument("--dlp", choices=("on", "off"), default="on",
                        help="off: the route's detectors are turned off (the proxy's own data path)")
    parser.add_argument("--name", default="proxy_latency", help="results file name (default proxy_latency)")
    args = parser.parse_args()
    n = max(10, min(args.requests, MAX_REQUESTS))
    uploads = max(1, min(args.uploads, MAX_UPLOADS))

    lab = Lab(TUNED_FORWARDER if args.tuned_forwarder else AGENT_ENTRY, dlp=args.dlp == "on")
    try:
        with tempfile.TemporaryDirectory(prefix="bb-bench-proxy-") as tmp:
            lab.up(Path(tmp))
        # Warm both paths (certificate generation, connection set-up), untimed.
        keepalive_ms(lab, "proxy", 5)
        keepalive_ms(lab, "direct", 5)
        series: dict[str, list[float]] = {}
        # Interleave direct and proxy runs so both see the same machine load.
        for name, fn, count in (("keepalive", keepalive_ms, n), ("fresh", fresh_ms, n)):
            for side in ("direct", "proxy"):
                series[f"{name}_{side}_ms"] = fn(lab, side, count)
        for _ in range(uploads):  # interleaved, one upload per side at a time
            for side in ("direct", "proxy"):
                rate, total = upload(lab, side, 1)
                series.setdefault(f"upload_{side}_mbps", []).extend(rate)
                series.setdefault(f"upload_{side}_total_s", []).extend(total)
                series.setdefault(f"download_{side}_mbps", []).append(download(lab, side))
            for side in ("relay", "mitmproxy"):
                series.setdefault(f"upload_{side}_mbps", []).extend(upload(lab, side, 1)[0])
        if lab.dlp:
            for _ in range(HELD_ROUNDS):
                small, held = small_while_held(lab, HELD_SMALL)
                series.setdefault("while_held_small_ms", []).extend(small)
                series.setdefault("while_held_slowest_small_ms", []).append(max(small))
                series.setdefault("held_request_s", []).append(held)
    finally:
        lab.close()

    med = {key: median(values) for key, values in series.items()}
    added_keepalive = med["keepalive_proxy_ms"] - med["keepalive_direct_ms"]
    added_fresh = med["fresh_proxy_ms"] - med["fresh_direct_ms"]
    ratio = med["upload_proxy_mbps"] / med["upload_direct_mbps"]
    download_ratio = med["download_proxy_mbps"] / med["download_direct_mbps"]
    result = {
        "requests_per_series": n,
        "uploads_per_side": uploads,
        "upload_mb": UPLOAD_MB,
        "download_mb": DOWNLOAD_MB,
        "dlp": ("on: token formats and one bottle secret; the upload streams through the chunk-wise scanner"
                if lab.dlp else "off: the route's detectors turned off"),
        "forwarder": lab.forwarder,
        "series": series,
        "median": {
            **med,
            "added_keepalive_ms": added_keepalive,
            "added_fresh_connection_ms": added_fresh,
            "upload_ratio": ratio,
            "upload_ratio_relay_to_direct": med["upload_relay_mbps"] / med["upload_direct_mbps"],
            "upload_ratio_bare_mitmproxy_to_direct": med["upload_mitmproxy_mbps"] / med["upload_direct_mbps"],
            "upload_ratio_to_bare_mitmproxy": med["upload_proxy_mbps"] / med["upload_mitmproxy_mbps"],
            "download_ratio": download_ratio,
        },
        "p90": {key: p90(values) for key, values in series.items() if key.endswith("_ms")},
        "targets": {"added_ms_max": 5.0, "upload_ratio_min": 0.4},
        "verdict": {"latency": added_keepalive < 5.0, "upload": ratio >= 0.4},
    }
    if "held_request_s" in series:
        result["while_held"] = {
            "what": (f"{HELD_SMALL} small GETs on one new connection, sent while the proxy scanned a held "
                     "~7.5 MB JSON request from another connection, over rounds"),
            "slowest_small_ms_median": med["while_held_slowest_small_ms"],
            "small_ms_median": med["while_held_small_ms"],
            "held_request_s_median": med["held_request_s"],
        }
    path = write_results(args.name, result)
    bar_plot(args.name, "Small HTTPS GET, median ms (direct vs through the proxy)",
             ["direct, kept-alive", "proxy, kept-alive", "direct, new connection", "proxy, new connection"],
             [med["keepalive_direct_ms"], med["keepalive_proxy_ms"], med["fresh_direct_ms"], med["fresh_proxy_ms"]],
             "ms")
    bar_plot(args.name.replace("latency", "upload") if "latency" in args.name else args.name + "_upload", f"{UPLOAD_MB} MB HTTPS upload, median MB/s",
             ["direct", "the way out, plain relay", "bare mitmproxy", "through the proxy"],
             [med["upload_direct_mbps"], med["upload_relay_mbps"], med["upload_mitmproxy_mbps"], med["upload_proxy_mbps"]],
             "MB/s",
             targets={"40% of direct": 0.4 * med["upload_direct_mbps"]})
    print(f"added latency: {added_keepalive:.2f} ms kept-alive (direct {med['keepalive_direct_ms']:.2f}, "
          f"proxy {med['keepalive_proxy_ms']:.2f}), {added_fresh:.2f} ms with a new connection each; "
          f"upload {med['upload_proxy_mbps']:.1f} MB/s through the proxy vs {med['upload_direct_mbps']:.1f} direct "
          f"({ratio:.0%}; plain relay {med['upload_relay_mbps']:.1f}, bare mitmproxy {med['upload_mitmproxy_mbps']:.1f}, "
          f"the proxy {med['upload_proxy_mbps'] / med['upload_mitmproxy_mbps']:.0%} of bare mitmproxy); {DOWNLOAD_MB} MiB download {med['download_proxy_mbps']:.1f} MB/s vs "
          f"{med['download_direct_mbps']:.1f} ({download_ratio:.0%}) -> {path}")
    if "held_request_s" in series:
        print(f"while a held ~7.5 MB JSON request was scanned ({med['held_request_s']:.2f} s): small GETs "
              f"{med['while_held_small_ms']:.1f} ms median, the slowest {med['while_held_slowest_small_ms']:.0f} ms "
              f"(median over {HELD_ROUNDS} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
