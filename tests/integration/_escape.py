"""The sandbox-escape suite's machinery: the arena (attackers' servers, a victim bottle) and the oracles.

An attack is a small bash script run as the agent inside a real bottle. Whether it got out is
decided OUTSIDE the bottle, by what the test's own attacker servers recorded, by the Docker
engine, by the host's files and kernel log, or by the test's own secrets showing up where they
must not. A script's exit code and its claims are never trusted.

Everything the attacks aim at is created here: an ``--internal`` "internet" with
``evil.example`` and friends, a fake cloud-metadata server on 169.254.169.254 (its own internal
network, link-local subnet), a TCP service on this host, a git upstream, a victim bottle. Nothing
here sends a packet anywhere else.

``BOT_BOTTLE_ESCAPE_WEAKEN=1`` (read here, by the test only) launches the attacking bottles with
``LaunchOptions.weaken`` set to every weakness: each attack must then FAIL its test, which shows
it can see an escape when there is one.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import secrets
import shlex
import subprocess
import tempfile
import unittest
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from bot_bottle import images
from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.bottle import DockerBottle
from bot_bottle.backend.docker.launch import WEAKNESSES, DockerLauncher, LaunchOptions
from bot_bottle.backend.docker.names import label_args
from tests.integration import _harness as h
from tests.integration.test_docker_bottle_isolation import _host_addresses, _HostService

RECORDER = Path(__file__).with_name("_escape_recorder.py")
RECORDER_TCP = "80,443,8080,8443,22,53"
RECORDER_UDP = "53,5353"
METADATA_IP = "169.254.169.254"
METADATA_SUBNET = "169.254.169.0/24"

FAMILIES = ("egress", "exfiltration", "credentials", "git", "host", "other-bottles")


def weakened() -> bool:
    """The suite's self-test mode: attacking bottles get every weakness (test-only switch)."""
    return os.environ.get("BOT_BOTTLE_ESCAPE_WEAKEN") == "1"


def weaken_set() -> frozenset[str]:
    return WEAKNESSES if weakened() else frozenset()


class ModuleArena:
    """One arena per test module, made on first use (a class that is skipped never builds it):
    ``arena = m.get`` and ``tearDownModule = m.close`` at the module's top level."""

    def __init__(self) -> None:
        self._arena: Arena | None = None

    def get(self) -> Arena:
        if self._arena is None:
            self._arena = Arena.create()
        return self._arena

    def close(self) -> None:
        arena, self._arena = self._arena, None
        if arena is not None:
            arena.close()


def exfil_bottle(wildcard_ports: str = "[80]") -> str:
    """The exfiltration families' bottle: two secrets (a host variable, a prompted value) and an
    allowed host whose DLP blocks, its subdomains on ``wildcard_ports``."""
    return f"""\
---
env:
  HOST_SECRET: "${{BB_TEST_HOST_SECRET}}"
  PROMPT_SECRET: "?A secret asked at start"
egress:
  log: 2
  routes:
    - host: allowed.example
      ports: [80]
      dlp: {{outbound_on_match: block}}
    - host: "*.allowed.example"
      ports: {wildcard_ports}
      dlp: {{outbound_on_match: block}}
---
"""


def marker(name: str) -> str:
    return f"esc-{name}-{secrets.token_hex(4)}"


# --------------------------------------------------------------------------- running an attack

# Every attack script starts with this: no `set -e` (an attacker keeps trying), and `asroot`, which
# runs a command as root by any route the bottle leaves open (already root, or `su` without a
# password), else as the agent itself.
PRELUDE = r"""
set +e
exec 2>&1
asroot() {
  if [ "$(id -u)" = 0 ]; then bash -c "$1"
  elif su root -c true </dev/null >/dev/null 2>&1; then su root -c "$1" </dev/null
  else bash -c "$1"; fi
}
# rawreq [unix:PATH]: bytes on stdin to the proxy (or a unix socket), without half-closing the
# connection (a client that half-closes gets nothing back); prints what comes back within 6 s.
rawreq() {
  RAWREQ_TO="${1:-tcp}" perl -MIO::Socket::INET -MIO::Socket::UNIX -e '
    $SIG{ALRM} = sub { exit 0 }; alarm 6; local $/; my $r = <STDIN>;
    my $to = $ENV{RAWREQ_TO};
    my $s = $to =~ /^unix:(.*)/ ? IO::Socket::UNIX->new(Peer => $1)
          : IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => 3128, Timeout => 5);
    $s or die "connect: $!\n"; print $s $r; my $buf; while (sysread($s, $buf, 65536)) { print $buf }'
}
"""


def fill(script: str, **values: object) -> str:
    """Substitute ``@@NAME@@`` placeholders (bash keeps its own ``$`` and braces)."""
    for key, value in values.items():
        script = script.replace(f"@@{key}@@", str(value))
    missing = [part.split("@@")[0] for part in script.split("@@")[1::2]]
    if missing:
        raise KeyError(f"unfilled placeholders: {missing}")
    return script


def run_attack(bottle: DockerBottle, script: str, *, timeout: int = 120, **values: object) -> str:
    """Run one attack as the agent (uid 1000, as the agent's own commands run); return its output."""
    body = PRELUDE + fill(script, **values)
    # Attacks dump arbitrary files: only printable ASCII comes back (the exec reads text).
    cmd = f"timeout -s KILL {timeout} bash -c {shlex.quote(body)} 2>&1 | LC_ALL=C tr -c '\\11\\12\\15\\40-\\176' '?'"
    # Our own bound on the exec: a sandbox that dies under an attack can leave `docker exec` hanging.
    try:
        result = subprocess.run(bottle.exec_argv(cmd, user="node"), capture_output=True, text=True,
                                timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        return f"(the exec did not return within {timeout + 30} s)"
    return result.stdout + result.stderr


def run_attack_watched(bottle: DockerBottle, script: str, tick, *, timeout: int = 120, **values: object) -> str:
    """``run_attack`` for attacks that may take their bottle down: ``tick()`` runs every 0.3 s (the
    oracle samples), and when the bottle's container stops, the hanging exec is abandoned."""
    import time

    body = PRELUDE + fill(script, **values)
    cmd = f"timeout -s KILL {timeout} bash -c {shlex.quote(body)} 2>&1 | LC_ALL=C tr -c '\\11\\12\\15\\40-\\176' '?'"
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(bottle.exec_argv(cmd, user="node"), stdout=out, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout + 30
        note = ""
        polls = 0
        while proc.poll() is None:
            tick()
            polls += 1
            if polls % 5 == 0 and not running(bottle.container):
                note = "\n(the bottle stopped under the attack)"
                break
            if time.monotonic() > deadline:
                note = "\n(the exec did not return in time)"
                break
            time.sleep(0.3)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        out.seek(0)
        return out.read() + note


def running(container: str) -> bool:
    state = engine.run(["inspect", "-f", "{{.State.Running}}", container], timeout=30, check=False)
    return state.stdout.strip() == "true"


# --------------------------------------------------------------------------- recorders and leaks


def recorder_records(container: str) -> list[dict]:
    out = engine.run(["logs", container], timeout=30, check=False).stdout
    records = []
    for line in out.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "raw" in rec:
            rec["bytes"] = base64.b64decode(rec["raw"])
        records.append(rec)
    return records


def _unpacked(data: bytes) -> list[bytes]:
    """The request as sent, plus any compressed body inside it decompressed."""
    views = [data]
    _, _, body = data.partition(b"\r\n\r\n")
    for start in range(len(body)):
        if body[start:start + 2] == b"\x1f\x8b":
            try:
                views.append(gzip.decompress(body[start:]))
            except (OSError, EOFError, zlib.error):
                pass
            break
    return views


def encodings(secret: str) -> dict[str, bytes]:
    raw = secret.encode()
    return {
        "raw": raw,
        "base64": base64.b64encode(raw).rstrip(b"="),
        "base64url": base64.urlsafe_b64encode(raw).rstrip(b"="),
        "hex": raw.hex().encode(),
        "HEX": raw.hex().upper().encode(),
        "percent": "".join(f"%{b:02X}" for b in raw).encode(),
        "percent-lower": "".join(f"%{b:02x}" for b in raw).encode(),
    }


def leaks(records: list[dict], secret: str, *, parts: int = 1) -> list[str]:
    """Where ``secret`` reached an attacker: whole in any encoding, or (``parts`` > 1) every piece
    of it split that many ways, each piece in some record."""
    found = []
    views = [v for rec in records if "bytes" in rec for v in _unpacked(rec["bytes"])]
    for name, needle in encodings(secret).items():
        if any(needle in v or needle.lower() in v.lower() for v in views):
            found.append(f"the secret ({name}) reached {records[0].get('at', '?')}")
    if parts > 1:
        size = -(-len(secret) // parts)
        pieces = [secret[i:i + size].encode() for i in range(0, len(secret), size)]
        if all(any(p in v for v in views) for p in pieces):
            found.append(f"all {parts} pieces of the secret reached {records[0].get('at', '?')}")
    return found


def hits_with(records: list[dict], token: str) -> list[str]:
    """Records (requests, packets) that carry ``token``: the attack's own marker."""
    needle = token.encode()
    return [f"{r.get('at')} {r.get('proto')}:{r.get('port', '')} from {r.get('peer')}: "
            f"{r['bytes'][:120]!r}" for r in records if "bytes" in r and needle in r["bytes"]]


def connections(records: list[dict], proto: str, port: int | None = None) -> list[str]:
    return [f"{r.get('at')} {proto}:{r.get('port', '')} from {r.get('peer')}: {r['bytes'][:80]!r}"
            for r in records if r.get("proto") == proto and (port is None or r.get("port") == port)]


# --------------------------------------------------------------------------- the arena


@dataclass
class Arena:
    """The attackers' world, shared by every family: created once per test module."""

    internet: h.Internet
    tmp: Path
    metadata_network: str = ""
    recorders: dict[str, str] = field(default_factory=dict)  # host name -> container
    host_service: _HostService | None = None
    host_dir: Path | None = None  # a folder on THIS host that only an escape could write into
    victim: DockerBottle | None = None
    victim_launcher: DockerLauncher | None = None
    victim_canary: str = ""
    host_secret: str = field(default_factory=lambda: "hs-" + secrets.token_hex(8) + "-host-var-secret")
    prompt_secret: str = field(default_factory=lambda: "ps-" + secrets.token_hex(8) + "-prompted-secret")
    _launchers: list[DockerLauncher] = field(default_factory=list)

    @classmethod
    def create(cls) -> Arena:
        tmp = Path(tempfile.mkdtemp(prefix="bb-escape-"))
        arena = cls(internet=h.Internet.create(), tmp=tmp)
        try:
            arena._build()
        except BaseException:
            arena.close()
            raise
        return arena

    def _build(self) -> None:
        image = images.ensure_image(images.sidecar_image())
        labels = label_args(self.internet.labels)
        self.metadata_network = self.internet.network.replace("-internet", "-metadata")
        engine.run(["network", "create", "--internal", "--subnet", METADATA_SUBNET, *labels,
                    self.metadata_network], timeout=60)
        # The label is the host-var secret itself: a name the allowed route's wildcard covers.
        self._recorder("allowed.example", image, aliases=(f"{self.host_secret}.allowed.example",))
        self._recorder("evil.example", image)
        self._recorder("api.example", image)
        self._recorder("metadata.google.internal", image, network=self.metadata_network, ip=METADATA_IP)
        self.host_service = _HostService()
        self.host_dir = self.tmp / "host-only"
        self.host_dir.mkdir(mode=0o777)
        self.host_dir.chmod(0o777)
        for name in self.recorders.values():
            h.wait_for(lambda n=name: any(r.get("proto") == "ready" for r in recorder_records(n)), f"recorder {name}")

    def _recorder(self, host: str, image: str, *, aliases: tuple[str, ...] = (), network: str | None = None,
                  ip: str | None = None) -> None:
        name = f"{host.replace('.', '-')}-{self.internet.labels['bot-bottle.id']}"
        net = network or self.internet.network
        alias_args = [a for alias in (host, *aliases) for a in ("--network-alias", alias)]
        engine.run(["create", "--name", name, "--network", net, *alias_args, *(["--ip", ip] if ip else []),
                    "--env", f"RECORDER_NAME={host}", "--env", "PYTHONUNBUFFERED=1", "--entrypoint", "python3",
                    *label_args(self.internet.labels), image, "/srv/recorder.py", RECORDER_TCP, RECORDER_UDP],
                   timeout=60)
        self.internet.containers[host] = name  # Internet.close removes it
        self.recorders[host] = name
        engine.run(["cp", str(RECORDER), f"{name}:/srv/recorder.py"], timeout=60)
        engine.run(["start", name], timeout=60)

    def records(self, host: str) -> list[dict]:
        return [r for r in recorder_records(self.recorders[host]) if r.get("proto") != "ready"]

    def all_records(self) -> list[dict]:
        return [r for host in self.recorders for r in self.records(host)]

    def ip(self, host: str) -> str:
        return engine.run(["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                           self.recorders[host]], timeout=30).stdout.split()[0]

    def host_addresses(self) -> list[str]:
        return _host_addresses()

    # ------------------------------------------------------------------ bottles

    def launch(self, bottle_md: str, *, env: dict[str, str] | None = None, credentials: dict[str, str] | None = None,
               known_secrets: dict[str, str] | None = None, weaken: frozenset[str] | None = None,
               memory: str | None = None, name: str = "b",
               upstream_ca_pem: str | None = None) -> tuple[DockerBottle, DockerLauncher]:
        """A bottle whose sidecar joins the arena's networks; torn down by ``close``."""
        home = self.tmp / f"home-{name}-{secrets.token_hex(3)}"
        layout = h.write_manifests(home, bottle=bottle_md)
        plan = h.plan_for(layout)
        # The provider's API route needs its key too (as in _harness.launch); the test's own values win.
        creds = {**{ref: f"test-credential-{ref.lower()}" for ref in plan.credential_refs}, **(credentials or {})}
        opts = LaunchOptions(
            env=env or {}, credentials=creds, known_secrets=known_secrets or {},
            extra_networks=(self.internet.network, self.metadata_network), internal_network=True,
            weaken=weaken_set() if weaken is None else weaken,
        )
        if memory:
            opts.memory = memory
        if upstream_ca_pem:
            opts.upstream_ca_pem = upstream_ca_pem
        launcher = DockerLauncher(plan, opts, layout.state_dir)
        self._launchers.append(launcher)
        return launcher.launch(), launcher

    def launch_victim(self) -> None:
        """Another user's bottle, never weakened: it may reach evil.example, holds a canary, listens."""
        self.victim_canary = "victim-canary-" + secrets.token_hex(10)
        bottle_md = ("---\nenv:\n  VICTIM_CANARY: \"${BB_VICTIM}\"\negress:\n  log: 2\n  routes:\n"
                     "    - host: evil.example\n      ports: [80]\n---\n")
        self.victim, self.victim_launcher = self.launch(
            bottle_md, env={"VICTIM_CANARY": self.victim_canary}, known_secrets={"VICTIM_CANARY": self.victim_canary},
            weaken=frozenset(), name="victim")
        self.victim.exec(f"echo {self.victim_canary} > /home/node/workspace/canary.txt && "
                         "(setsid socat TCP-LISTEN:8000,fork,reuseaddr SYSTEM:'echo hit >> /tmp/victim-hits' "
                         ">/dev/null 2>&1 &) ; true")

    def victim_hits(self) -> str:
        assert self.victim is not None
        return self.victim.exec("cat /tmp/victim-hits /tmp/escape-hits 2>/dev/null; true", user="root").stdout

    def close(self) -> None:
        # Every step runs even when one fails (an engine stuck on one bottle must not leave the
        # others and the fake internet running); the failures are reported together at the end.
        failures: list[str] = []
        for launcher in reversed(self._launchers):
            try:
                launcher.teardown()
            except Exception:  # noqa: BLE001 - best effort; remove_bottle below is the safety net
                pass
            try:
                h.remove_bottle(launcher.names.id)
            except engine.DockerError as exc:
                failures.append(f"bottle {launcher.names.id}: {exc}")
        if self.host_service is not None:
            self.host_service.close()
        try:
            self.internet.close()
        except engine.DockerError as exc:
            failures.append(f"the arena's internet: {exc}")
        if self.metadata_network:
            try:
                engine.run(["network", "rm", self.metadata_network], timeout=60, check=False)
            except engine.DockerError as exc:
                failures.append(f"network {self.metadata_network}: {exc}")
        subprocess.run(["rm", "-rf", str(self.tmp)], check=False, timeout=120)
        if failures:
            raise AssertionError("the arena was not wholly removed: " + "; ".join(failures))


class EscapeCase(unittest.TestCase):
    """Base for one family's attacks on one backend: ``family`` and ``backend`` name its cell in the table."""

    family = ""
    backend = "docker"
    arena: Arena

    def assertStopped(self, evidence: list[str], output: str = "") -> None:
        if evidence:
            self.fail("ESCAPED: " + "; ".join(evidence[:5]) + (f"\n--- attack output ---\n{output[-1500:]}" if output else ""))
