"""Inside a real sidecar, each daemon account reads exactly the files it needs, and no other.

A protection that cannot read its input may switch itself off without a word: the git-gate's push
scan once ran for several releases without the bottle's own secret values, because a change of
accounts left the secrets file unreadable to it. This test starts a sidecar the way the product
does (with repos behind the gate, supervise on, a route credential and a known secret), then
tries every file each daemon opens, at start and at run time, as that daemon's account with
``docker exec -u``: what it needs must be readable (or writable), and what belongs to another
account (the route credentials and the CA's private key, the gate's upstream credentials) must
not be. The host's ``supervise ctl`` (root, but with no capability to read past a file's mode) is tried
too. A later change of modes or owners that breaks either side fails here, not in the field.
"""

from __future__ import annotations

import subprocess
import tempfile
import unittest
from pathlib import Path

from bot_bottle.backend.docker.launch import LaunchOptions
from tests._docker import skip_unless_docker
from tests.integration import _harness as h

PROXY, GATE, SUPERVISE = "bottle-proxy", "bottle-gate", "bottle-supervise"
CTL = "root"  # the host's `supervise ctl`, over docker exec: root with the init's four capabilities only
CONFIG = "/etc/bot-bottle"
GATE_CREDENTIALS = f"{CONFIG}/git-gate"
CA_DIR = "/var/lib/bottle/mitmproxy"
SPOOL = "/var/lib/bottle/supervise"
UPSTREAM = "git.reads.test"  # never contacted: no fetch or push runs in this test
FINDING = "gf-0123456789ab"

# What the host's ctl (root) and the gate write at run time, the way they write it: a grant,
# and the gate's record of a rejected push (which the MCP server shows the operator).
GRANT = (f"from bot_bottle.sidecar.supervise import channel; channel.add_grant('{SPOOL}', "
         "{'kind': 'route', 'route': {'host': 'granted.reads.test', 'ports': [443]}})")
RECORD = (f"from bot_bottle.sidecar.supervise import channel; channel.record_push_findings('{SPOOL}', "
          f"'{FINDING}', 'app', [{{'ref': 'refs/heads/x', 'old': '{'a' * 40}', 'new': '{'b' * 40}'}}], "
          "['aws-access-key'], ['file x'])")

# Files each daemon opens for reading: the proxy at start (policy, secrets, its CA) and per
# request (the operator's grants); the gate at start (its config) and per push (its secret
# values, its upstream credentials, the grants and their uses); the MCP server per call (the
# gate's records of rejected pushes, the grants).
READS: dict[str, tuple[str, ...]] = {
    PROXY: (
        f"{CONFIG}/policy.json",
        f"{CONFIG}/secrets.json",
        f"{CA_DIR}/mitmproxy-ca.pem",
        f"{CA_DIR}/mitmproxy-ca-cert.pem",
        f"{CA_DIR}/mitmproxy-dhparam.pem",
        f"{SPOOL}/grants.json",
    ),
    GATE: (
        f"{CONFIG}/git-gate.json",
        f"{GATE_CREDENTIALS}/known-secrets.json",
        f"{GATE_CREDENTIALS}/app.key",
        f"{GATE_CREDENTIALS}/app.known_hosts",
        f"{GATE_CREDENTIALS}/lib.token",
        f"{SPOOL}/grants.json",
    ),
    SUPERVISE: (
        f"{SPOOL}/grants.json",
        f"{SPOOL}/push-findings/{FINDING}.json",
    ),
    CTL: (
        f"{SPOOL}/grants.json",
        f"{SPOOL}/push-findings/{FINDING}.json",
        "/var/log/bottle/egress.jsonl",
    ),
}

# Folders each daemon lists or writes in at run time.
WRITES: dict[str, tuple[str, ...]] = {
    PROXY: ("/var/log/bottle", "/run/bottle", f"{SPOOL}/proposals", f"{SPOOL}/expired"),
    GATE: ("/var/lib/bottle/git-gate", f"{SPOOL}/push-findings", f"{SPOOL}/push-uses"),
    SUPERVISE: (f"{SPOOL}/proposals", f"{SPOOL}/expired"),
}
LISTS: dict[str, tuple[str, ...]] = {
    PROXY: (f"{SPOOL}/decisions", f"{SPOOL}/expired", f"{SPOOL}/proposals"),
    GATE: (f"{SPOOL}/push-uses",),
    SUPERVISE: (f"{SPOOL}/decisions", f"{SPOOL}/expired", f"{SPOOL}/proposals", f"{SPOOL}/push-findings"),
    # The host's ctl marks the push grants the gate used up (push-uses) and shows its findings.
    CTL: (f"{SPOOL}/decisions", f"{SPOOL}/expired", f"{SPOOL}/proposals", f"{SPOOL}/push-findings",
          f"{SPOOL}/push-uses", f"{SPOOL}/archive"),
}

# What an account must never read: the route credentials and the CA's private key are the
# proxy's alone; the gate's upstream credentials and secret values are the gate's alone.
GATE_SECRETS = tuple(p for p in READS[GATE] if p.startswith(GATE_CREDENTIALS))
PROXY_SECRETS = (f"{CONFIG}/secrets.json", f"{CA_DIR}/mitmproxy-ca.pem")
NEVER: dict[str, tuple[str, ...]] = {
    PROXY: GATE_SECRETS,
    GATE: PROXY_SECRETS,
    SUPERVISE: (*PROXY_SECRETS, *GATE_SECRETS, f"{CONFIG}/git-gate.json"),
}


def bottle_manifest(key: Path, host_key: str) -> str:
    return f"""\
---
env:
  HOST_SECRET: "${{BB_TEST_HOST_SECRET}}"
egress:
  routes:
    - host: api.reads.test
      ports: [443]
      auth: {{scheme: bearer, token_ref: BB_TEST_ROUTE_TOKEN}}
git-gate:
  repos:
    app:
      url: git@{UPSTREAM}:app.git
      ssh_key: {key}
      known_hosts: "{UPSTREAM} {host_key}"
    lib:
      url: https://{UPSTREAM}/lib.git
      token_ref: BB_TEST_LIB_TOKEN
---
"""


def make_key(folder: Path) -> tuple[Path, str]:
    """A throwaway deploy key, and a public key to pin as the upstream's host key."""
    key = folder / "deploy_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=60)
    public = " ".join(Path(f"{key}.pub").read_text().split()[:2])
    return key, public


@skip_unless_docker()
class SidecarAccountReads(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        scope = h.ClassScope(cls)
        home = h.TempHome(scope)  # type: ignore[arg-type]
        keys = Path(tempfile.mkdtemp(dir=home.path))
        key, host_key = make_key(keys)
        layout = h.write_manifests(home.path, bottle=bottle_manifest(key, host_key))
        plan = h.plan_for(layout)
        assert plan.repos and plan.supervise, "the gate and supervise must both run"
        options = LaunchOptions(
            credentials={"BB_TEST_ROUTE_TOKEN": "route-token-value", "BB_TEST_LIB_TOKEN": "lib-token-value"},
            known_secrets={"HOST_SECRET": "host-secret-value"},
        )
        cls.bottle, cls.launcher = h.launch(scope, plan, home.path / "state", options=options)  # type: ignore[arg-type]
        cls.addClassCleanup(h.remove_bottle, cls.launcher.names.id)
        cls.sidecar = cls.launcher.names.sidecar_container
        for account, script in (("root", GRANT), (GATE, RECORD)):
            subprocess.run(["docker", "exec", "-u", account, cls.sidecar, "/opt/mitmproxy/bin/python", "-c", script],
                           check=True, capture_output=True, timeout=120)

    def as_account(self, account: str, script: str) -> subprocess.CompletedProcess[str]:
        user = [] if account == CTL else ["-u", account]
        return subprocess.run(["docker", "exec", *user, self.sidecar, "sh", "-c", script],
                              capture_output=True, text=True, timeout=60)

    def can(self, account: str, script: str) -> bool:
        return self.as_account(account, script).returncode == 0

    def layout(self) -> str:
        """The files' owners and modes, for a failure's message (names only, no content)."""
        folders = f"{CONFIG} {GATE_CREDENTIALS} {CA_DIR} {SPOOL} /var/log/bottle /run/bottle"
        return subprocess.run(["docker", "exec", self.sidecar, "sh", "-c", f"ls -la {folders}"],
                              capture_output=True, text=True, timeout=60).stdout

    def test_every_file_a_daemon_opens_is_there(self) -> None:
        # Asked as the reading account: root (no capability) cannot see into the gate's folder.
        missing = [(account, path) for account, paths in READS.items() for path in paths
                   if not self.can(account, f"test -f {path}")]
        self.assertEqual(missing, [], f"the sidecar has no such files:\n{self.layout()}")

    def test_each_daemon_reads_what_it_needs(self) -> None:
        for account, paths in READS.items():
            for path in paths:
                with self.subTest(account=account, path=path):
                    self.assertTrue(self.can(account, f"cat {path} > /dev/null"),
                                    f"{account} cannot read {path}: the protection needing it would go without\n"
                                    f"{self.layout()}")

    def test_each_daemon_writes_and_lists_where_it_must(self) -> None:
        for account, folders in WRITES.items():
            for folder in folders:
                with self.subTest(account=account, writes=folder):
                    self.assertTrue(self.can(account, f"test -w {folder} && test -x {folder}"),
                                    f"{account} cannot write in {folder}\n{self.layout()}")
        for account, folders in LISTS.items():
            for folder in folders:
                with self.subTest(account=account, lists=folder):
                    self.assertTrue(self.can(account, f"ls {folder} > /dev/null"),
                                    f"{account} cannot list {folder}\n{self.layout()}")

    def test_no_daemon_reads_another_accounts_secrets(self) -> None:
        for account, paths in NEVER.items():
            for path in paths:
                with self.subTest(account=account, path=path):
                    self.assertFalse(self.can(account, f"cat {path} > /dev/null"),
                                     f"{account} can read {path}, which is not its own\n{self.layout()}")

    def test_the_gate_has_the_bottles_own_secret_values(self) -> None:
        # Its file holds the known secret (what the push scan looks for) and no route credential.
        read = self.as_account(GATE, f"cat {GATE_CREDENTIALS}/known-secrets.json")
        self.assertEqual(read.returncode, 0, read.stderr)
        self.assertIn("host-secret-value", read.stdout)
        self.assertNotIn("route-token-value", read.stdout)

    def test_the_daemons_run_as_their_accounts(self) -> None:
        # A daemon started as root would read everything, and this test would prove nothing.
        ps = subprocess.run(["docker", "exec", self.sidecar, "ps", "-eo", "user:20,args"],
                            capture_output=True, text=True, timeout=60)
        if ps.returncode != 0:  # no ps in the image: read /proc instead
            ps = subprocess.run(["docker", "exec", self.sidecar, "sh", "-c",
                                 "for p in /proc/[0-9]*; do echo $(stat -c %U $p) $(tr '\\0' ' ' < $p/cmdline); done"],
                                capture_output=True, text=True, timeout=60)
        lines = ps.stdout.splitlines()
        proxy = [ln for ln in lines if "bottle-proxy --listen-host" in ln]
        gate = [ln for ln in lines if "bot_bottle.sidecar.git_gate" in ln]
        self.assertTrue(proxy and all(ln.split()[0] == PROXY for ln in proxy), ps.stdout)
        self.assertTrue(gate and all(ln.split()[0] == GATE for ln in gate), ps.stdout)


if __name__ == "__main__":
    unittest.main()
