"""Inside a real sidecar, each daemon account writes only what cannot grant anything.

The MCP server (``bottle-supervise``) is what the agent talks to: a flaw in it, or in its SDK,
must not let a prompt-injected agent write itself a grant or a decision approving its own
proposal. The proxy (``bottle-proxy``) and the git-gate (``bottle-gate``) likewise. Each account
is tried with ``docker exec -u`` in the running sidecar: what it needs works (the server asks and
expires, the gate records and uses up push grants), and grants.json, decisions, another
account's proposals and the gate's records stay out of its reach. Only root (the host's ``ctl``)
grants and decides.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import unittest

from bot_bottle.sidecar.supervise.channel import Decision
from tests._docker import skip_unless_docker
from tests.integration._harness import ClassScope, Internet, TempHome, launch, plan_for, remove_bottle, write_manifests

SPOOL = "/var/lib/bottle/supervise"
CTL = ["python", "-m", "bot_bottle.sidecar.supervise.ctl"]
PYTHON = {"bottle-supervise": "/usr/bin/python3", "bottle-proxy": "/opt/mitmproxy/bin/python",
          "bottle-gate": "/opt/mitmproxy/bin/python", "root": "python"}
SHA_A, SHA_B = "a" * 40, "b" * 40

# Every write that would grant or decide, tried as one account; prints {attempt: "denied" | "done"}.
ATTEMPTS = """
import json, os, sys
from pathlib import Path
from bot_bottle.sidecar.supervise import channel
from bot_bottle.sidecar.supervise.channel import Decision, Spool

root = Path(sys.argv[1])
theirs = sys.argv[2]  # a proposal root wrote (as the proxy's or another account's would be)
spool = Spool(root)
out = {}

def attempt(name, fn):
    try:
        fn()
        out[name] = "done"
    except PermissionError:
        out[name] = "denied"
    except Exception as exc:  # what an older spool let through, then tripped over
        out[name] = type(exc).__name__

def write(path, text="{}"):
    with open(path, "w") as fh:
        fh.write(text)

grant = {"kind": "route", "route": {"host": "evil.example", "ports": [80]}}
attempt("add grant", lambda: channel.add_grant(root, grant))
attempt("decide", lambda: spool.decide(Decision(theirs.removesuffix(".json"), "approved")))
attempt("write grants.json", lambda: write(root / "grants.json", '{"routes": [{"host": "evil.example"}]}'))
attempt("replace grants.json", lambda: os.replace(root / "proposals" / theirs, root / "grants.json"))
attempt("delete grants.json", lambda: (root / "grants.json").unlink())
attempt("write a decision", lambda: write(root / "decisions" / "forged.json"))
attempt("change another's proposal", lambda: write(root / "proposals" / theirs))
attempt("rename another's proposal", lambda: os.rename(root / "proposals" / theirs, root / "proposals" / "moved.json"))
attempt("delete another's proposal", lambda: (root / "proposals" / theirs).unlink())
attempt("forge a push finding", lambda: write(root / "push-findings" / "gf-0123456789ab.json"))
attempt("take the grants lock", lambda: open(root / ".grants.lock").close())
print(json.dumps(out))
"""

# What an account must still do: the MCP server and the proxy ask and expire their own.
ASK_AND_EXPIRE = """
import json, sys
from bot_bottle.sidecar.supervise.channel import Proposal, Spool
spool = Spool(sys.argv[1])
p = spool.submit(Proposal.new("egress", {"host": "own.example"}, "why", 60))
print(json.dumps({"expired": spool.expire(p.id, "gone").verdict,
                  "pending": [q.id for q in spool.pending()].count(p.id), "id": p.id}))
"""

# The gate records a rejection and uses up a push grant, without writing grants.json.
GATE_USES_A_GRANT = f"""
import json, sys
from bot_bottle.sidecar.supervise import channel
root = sys.argv[1]
channel.record_push_findings(root, "gf-0123456789ab", "app",
                             [{{"ref": "refs/heads/x", "old": "{SHA_A}", "new": "{SHA_B}"}}], ["aws"], ["file x"])
first = channel.consume_push(root, "app", "refs/heads/x", "{SHA_A}", "{SHA_B}", "gf-0123456789ab")
again = channel.consume_push(root, "app", "refs/heads/x", "{SHA_A}", "{SHA_B}", "gf-0123456789ab")
print(json.dumps([first, again]))
"""

# An older image's spool: every folder the group's to write, a daemon's decision and grants.
OLD_SPOOL = """
set -e
old=/tmp/old-spool
rm -rf "$old"; mkdir -p "$old/decisions" "$old/proposals" "$old/archive"
chgrp -R bottle-spool "$old"; chmod 2770 "$old" "$old/decisions" "$old/proposals" "$old/archive"
"""


@skip_unless_docker()
class SpoolPrivilegesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        scope = ClassScope(cls)
        cls.internet = Internet.create("allowed.example")
        cls.addClassCleanup(cls.internet.close)
        home = TempHome(scope)  # type: ignore[arg-type]
        plan = plan_for(write_manifests(home.path))
        assert plan.supervise, "supervise is on by default"
        cls.bottle, cls.launcher = launch(scope, plan, home.path / "state", internet=cls.internet)  # type: ignore[arg-type]
        cls.addClassCleanup(remove_bottle, cls.launcher.names.id)
        cls.sidecar = cls.launcher.names.sidecar_container

    def run_as(self, account: str, script: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        user = [] if account == "root" else ["-u", account]
        proc = subprocess.run(["docker", "exec", "-i", *user, self.sidecar, PYTHON[account], "-", *args],
                              input=script, capture_output=True, text=True, timeout=120)
        if check:
            self.assertEqual(proc.returncode, 0, f"{account}: {proc.stderr}")
        return proc

    def sh(self, script: str, user: str = "root") -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", "exec", "-i", "-u", user, self.sidecar, "sh", "-s"], input=script,
                              capture_output=True, text=True, timeout=120)

    def ctl(self, verb: str, request: dict | None = None) -> tuple[int, dict]:
        proc = subprocess.run(["docker", "exec", "-i", self.sidecar, *CTL, verb],
                              input=json.dumps(request) if request is not None else "", capture_output=True,
                              text=True, timeout=60)
        return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])

    def roots_proposal(self) -> str:
        """A waiting proposal written by root: to every daemon account, another account's."""
        script = ("from bot_bottle.sidecar.supervise.channel import Proposal, Spool\n"
                  f"p = Spool('{SPOOL}').submit(Proposal.new('egress', {{'host': 'theirs.example'}}, 'why', 600))\n"
                  "print(p.id)\n")
        return self.run_as("root", script).stdout.strip()

    def test_no_daemon_account_can_grant_or_decide(self) -> None:
        granted = self.roots_proposal()  # so that grants.json exists
        token_use = {"kind": "token-use", "route": "allowed.example", "detectors": ["aws-access-key"]}
        decision = Decision(granted, "approved", operator="test").to_dict()
        self.assertEqual(self.ctl("decide", {"decision": decision, "grant": token_use})[0], 0)
        theirs = self.roots_proposal()
        for account in ("bottle-supervise", "bottle-proxy", "bottle-gate"):
            with self.subTest(account=account):
                out = json.loads(self.run_as(account, ATTEMPTS, SPOOL, f"{theirs}.json").stdout)
                expected = dict.fromkeys(out, "denied")
                if account == "bottle-gate":
                    expected["forge a push finding"] = "done"  # the gate's own record
                self.assertEqual(out, expected, account)
                self.assertEqual(len(out), 11)
        code, grants = self.ctl("grants")
        self.assertEqual((code, grants["routes"]), (0, []))
        # The proposal is still there, undecided, and root (the host's ctl) decides it.
        self.assertIn(theirs, [p["id"] for p in self.ctl("pending")[1]["proposals"]])
        decision = Decision(theirs, "rejected", "no", operator="test").to_dict()
        self.assertEqual(self.ctl("decide", {"decision": decision, "grant": None}), (0, {"ok": True, "grant_added": False}))

    def test_the_asking_accounts_ask_and_expire_their_own(self) -> None:
        for account in ("bottle-supervise", "bottle-proxy"):
            with self.subTest(account=account):
                out = json.loads(self.run_as(account, ASK_AND_EXPIRE, SPOOL).stdout)
                self.assertEqual((out["expired"], out["pending"]), ("expired", 0))
                # The host's ctl hears it is decided, and can no longer approve it.
                approve = Decision(out["id"], "approved", operator="test").to_dict()
                grant = {"kind": "route", "route": {"host": "own.example", "ports": [443]}}
                code, answer = self.ctl("decide", {"decision": approve, "grant": grant})
                self.assertEqual((code, answer["type"]), (1, "already-decided"))
                self.assertNotIn({"host": "own.example", "ports": [443]}, self.ctl("grants")[1]["routes"])

    def test_the_gate_uses_a_push_grant_without_writing_the_grants(self) -> None:
        ask = ("from bot_bottle.sidecar.supervise.channel import Proposal, Spool\n"
               f"p = Spool('{SPOOL}').submit(Proposal.new('capability', {{'packages': ['jq']}}, 'why', 600))\n"
               "print(p.id)\n")
        pid = self.run_as("root", ask).stdout.strip()
        grant = {"kind": "push", "repo": "app", "ref": "refs/heads/x", "old": SHA_A, "new": SHA_B,
                 "finding": "gf-0123456789ab"}
        decision = Decision(pid, "approved", operator="test").to_dict()
        self.assertEqual(self.ctl("decide", {"decision": decision, "grant": grant})[0], 0)
        self.assertEqual(json.loads(self.run_as("bottle-gate", GATE_USES_A_GRANT, SPOOL).stdout), [True, False])
        (push,) = [p for p in self.ctl("grants")[1]["pushes"] if p["ref"] == "refs/heads/x"]
        self.assertTrue(push["used"])
        raw = self.sh(f"cat {SPOOL}/grants.json").stdout
        self.assertNotIn('"used": true', raw, "the gate's use is its own record, not a change of grants.json")
        owner = self.sh(f"stat -c %U {SPOOL}/grants.json").stdout.strip()
        self.assertEqual(owner, "root")

    def test_an_older_spool_is_taken_back_at_start(self) -> None:
        # A spool an older image left: the group wrote everywhere, so a daemon's files are in
        # decisions and grants.json is the gate's. The init's hand-out makes them root's.
        self.assertEqual(self.sh(OLD_SPOOL).returncode, 0)
        made = self.sh("echo '{}' > /tmp/old-spool/decisions/d.json && chmod 660 /tmp/old-spool/decisions/d.json",
                       "bottle-supervise")
        self.assertEqual(made.returncode, 0, made.stderr)
        made = self.sh("echo '{}' > /tmp/old-spool/grants.json && chmod 660 /tmp/old-spool/grants.json", "bottle-gate")
        self.assertEqual(made.returncode, 0, made.stderr)
        take_back = textwrap.dedent("""
            import grp, pwd
            from pathlib import Path
            from bot_bottle.sidecar.init import Account, hand_out_spool
            gate = pwd.getpwnam("bottle-gate")
            hand_out_spool(Path("/tmp/old-spool"), Account(gate.pw_uid, gate.pw_gid,
                           (grp.getgrnam("bottle-spool").gr_gid,), gate.pw_dir))
        """)
        self.run_as("root", take_back)
        for path in ("/tmp/old-spool/decisions/d.json", "/tmp/old-spool/grants.json"):
            with self.subTest(path=path):
                self.assertNotEqual(self.sh(f"echo x > {path}", "bottle-supervise").returncode, 0)
                self.assertNotEqual(self.sh(f"echo x > {path}", "bottle-gate").returncode, 0)
                self.assertEqual(self.sh(f"cat {path}", "bottle-supervise").returncode, 0, "the group still reads it")
        self.sh("rm -rf /tmp/old-spool")


if __name__ == "__main__":
    unittest.main()
