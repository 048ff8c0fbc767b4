"""The supervise plane's host half through a real bottle.

The agent (no network but its proxy) asks the sidecar's MCP server for egress with curl; the
host syncs the proposal into its SQLite store over the real ``docker exec`` channel, and
``apply.decide`` (the console's code path) approves or rejects it: the agent's waiting call gets
the verdict, the grant is in the sidecar, the route is kept in the bottle's state for resume (and
in the manifest when asked), and every step is an audit row. A rejection changes nothing. The
bottle's egress log is shipped into the store once per line.

Everything runs on ``--internal`` networks this test creates; the "internet" is the harness's
own upstream containers. Only this test's bottle is synced (other bottles on the engine are
never touched).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import unittest
from concurrent.futures import Future, ThreadPoolExecutor

from bot_bottle.backend.sidecar_config import read_approved_routes
from bot_bottle.manifest import load
from bot_bottle.supervise import apply
from bot_bottle.supervise.link import SidecarLink
from bot_bottle.supervise.store import ProposalRow, Store
from bot_bottle.supervise.sync import BottleInfo, sync
from tests._docker import skip_unless_docker
from tests.integration._harness import ClassScope, Internet, TempHome, launch, plan_for, remove_bottle, wait_for, write_manifests

MCP_URL = "http://supervise.bottle.internal/mcp"
OPERATOR = "integration-operator"

BOTTLE = """\
---
# the test bottle
egress:
  log: 2
  routes:
    - host: allowed.example
      ports: [80]
      dlp: {outbound_on_match: supervise}
---
"""
FAKE_AWS_KEY = "AKIA" + "QZ7RXJ2M4KD8WPLB"  # token-shaped, not a real key

# A push the git-gate rejected, as its hook records it in the sidecar's spool
# (channel.record_push_findings): an exception can be asked for only for such a push.
REJECTED_PUSH = (
    "from bot_bottle.sidecar.supervise.channel import record_push_findings\n"
    "record_push_findings('/var/lib/bottle/supervise', 'gf-0123456789ab', 'app',"
    " [{'ref': 'refs/heads/fix', 'old': '1' * 40, 'new': '2' * 40}], ['aws-access-key-id'],"
    " ['commit 222222222222: file t/fixture.env line 1: detector aws-access-key-id'])\n"
)


@skip_unless_docker()
class SuperviseHostTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        scope = ClassScope(cls)
        cls.pool = ThreadPoolExecutor(max_workers=2)
        cls.addClassCleanup(cls.pool.shutdown, wait=False, cancel_futures=True)
        cls.internet = Internet.create("allowed.example", "evil.example")
        cls.addClassCleanup(cls.internet.close)
        home = TempHome(scope)  # type: ignore[arg-type]
        cls.layout = write_manifests(home.path, bottle=BOTTLE)
        cls.manifest = home.path / ".bot-bottle" / "bottles" / "test.md"
        cls.state_root = home.path / "state"
        cls.bottle, cls.launcher = launch(scope, plan_for(cls.layout), cls.state_root, internet=cls.internet)  # type: ignore[arg-type]
        cls.addClassCleanup(remove_bottle, cls.launcher.names.id)
        cls.bottle_id = cls.launcher.names.id
        cls.store = Store(home.path / ".bot-bottle" / "supervise.db")
        cls.addClassCleanup(cls.store.close)
        cls.context = apply.Context(layout=cls.layout, state_dir=cls.state_root)
        cls.info = BottleInfo(cls.bottle_id, "tester", None, None, "docker", "")

    # -- helpers ---------------------------------------------------------------------------------
    def sync(self) -> None:
        report = sync(self.store, bottles=[self.info])
        self.assertEqual(report.errors, [])

    def link(self) -> SidecarLink:
        return SidecarLink(self.bottle_id)

    def ask(self, tool: str, arguments: dict) -> Future:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})
        cmd = (
            f"curl -sS --max-time 150 -X POST {MCP_URL} -H 'Content-Type: application/json' "
            "-H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2025-06-18' "
            f"--data-binary {shlex.quote(body)}"
        )
        return self.pool.submit(self.bottle.exec, cmd)

    def answer(self, call: Future) -> dict:
        result = call.result(timeout=170)
        self.assertEqual(result.returncode, 0, result.stderr)
        content = json.loads(result.stdout)["result"]
        self.assertFalse(content.get("isError"), content)
        return json.loads(content["content"][0]["text"])

    def synced_proposal(self, host: str, kind: str = "egress") -> ProposalRow:
        found: list[ProposalRow] = []

        def check() -> bool:
            self.sync()
            found[:] = [r for r in self.store.pending(self.bottle_id)
                        if r.kind == kind and r.payload.get("host", r.payload.get("repo")) == host]
            return bool(found)

        wait_for(check, f"the {kind} proposal for {host} in the store", timeout=60)
        return found[0]

    def post(self, url: str, data: str) -> str:
        marker = "HTTPSTATUS:"
        result = self.bottle.exec(f"curl -sS --max-time 60 -w {shlex.quote(marker + '%{http_code}')} "
                                  f"-X POST --data {shlex.quote(data)} {shlex.quote(url)}")
        return result.stdout.rpartition(marker)[2]

    def get(self, url: str) -> str:
        marker = "HTTPSTATUS:"
        result = self.bottle.exec(f"curl -sS --max-time 20 -w {shlex.quote(marker + '%{http_code}')} {shlex.quote(url)}")
        return result.stdout.rpartition(marker)[2]

    def audit(self, row: ProposalRow) -> list[tuple[str, str, str]]:
        return [(a.operator, a.action, a.outcome) for a in self.store.audit_rows(proposal_key=row.key)]

    # -- tests -----------------------------------------------------------------------------------
    def test_an_approved_egress_proposal_is_applied_kept_and_audited(self) -> None:
        call = self.ask("request-egress", {"host": "evil.example", "paths": ["/approved/"], "methods": ["GET"],
                                           "justification": "the build reads its docs there"})
        row = self.synced_proposal("evil.example")
        self.assertEqual(row.kind, "egress")
        self.assertEqual(row.payload, {"host": "evil.example", "paths": ["/approved/"], "methods": ["GET"], "ports": []})
        self.assertIn("docs", row.justification)
        self.assertFalse(call.done(), "the agent is still waiting for the operator")

        done = apply.decide(self.store, row.key, "approved", reason="docs are fine", operator=OPERATOR,
                            save_to_manifest=True, context=self.context)
        self.assertEqual((done.status, done.error), ("applied", None))

        answer = self.answer(call)
        self.assertEqual((answer["verdict"], answer["proposal_id"], answer["reason"]),
                         ("approved", row.id, "docs are fine"))
        route = {"host": "evil.example", "ports": [80, 443], "matches": [{"paths": ["/approved/"], "methods": ["GET"]}]}
        self.assertIn(route, self.link().grants()["routes"], "the proxy's grants")
        self.assertIn(route, read_approved_routes(self.state_root / self.bottle_id), "kept for resume")
        manifest_routes = load("tester", self.layout).bottle.routes
        self.assertEqual([r.host for r in manifest_routes], ["allowed.example", "evil.example"], "saved when asked")
        self.assertIn("# the test bottle", self.manifest.read_text(), "the rest of the manifest is kept")
        self.assertEqual(self.audit(done), [(OPERATOR, "approved", "ok"), (OPERATOR, "apply", "ok")])
        self.sync()
        self.assertEqual(self.store.get(row.key).status, "applied", "a later sync leaves a decided proposal alone")

    def test_after_approval_the_agents_retry_gets_through(self) -> None:
        self.assertEqual(self.get("http://evil.example/retry/x"), "403")
        call = self.ask("request-egress", {"host": "evil.example", "paths": ["/retry/"],
                                           "justification": "fetch the files it refused"})
        row = self.synced_proposal("evil.example")
        self.assertEqual(apply.decide(self.store, row.key, "approved", operator=OPERATOR, context=self.context).status,
                         "applied")
        self.assertEqual(self.answer(call)["verdict"], "approved")
        self.assertEqual(self.get("http://evil.example/retry/x"), "200")
        self.assertEqual(self.get("http://evil.example/elsewhere"), "403", "only what was granted")

    def test_a_rejected_proposal_changes_nothing(self) -> None:
        call = self.ask("request-egress", {"host": "allowed.example", "ports": [443],
                                           "justification": "the same host over TLS"})
        row = self.synced_proposal("allowed.example")
        grants_before = self.link().grants()
        approved_before = read_approved_routes(self.state_root / self.bottle_id)
        manifest_before = self.manifest.read_text()

        done = apply.decide(self.store, row.key, "rejected", reason="plain HTTP is enough here",
                            operator=OPERATOR, context=self.context)
        self.assertEqual((done.status, done.reason), ("rejected", "plain HTTP is enough here"))
        answer = self.answer(call)
        self.assertEqual((answer["verdict"], answer["reason"]), ("rejected", "plain HTTP is enough here"))
        self.assertEqual(self.link().grants(), grants_before)
        self.assertEqual(read_approved_routes(self.state_root / self.bottle_id), approved_before)
        self.assertEqual(self.manifest.read_text(), manifest_before)
        self.assertEqual(self.audit(done), [(OPERATOR, "rejected", "ok")])

    def test_a_held_request_is_released_by_a_token_use_approval(self) -> None:
        held = self.pool.submit(self.post, "http://allowed.example/upload", f"aws_access_key_id={FAKE_AWS_KEY}")
        row = self.synced_proposal("allowed.example", kind="token-use")
        self.assertEqual((row.payload["method"], row.payload["path"]), ("POST", "/upload"))
        self.assertTrue(row.payload["detectors"], row.payload)
        self.assertNotIn(FAKE_AWS_KEY, json.dumps(row.to_dict()), "the store never holds the matched value")
        self.assertFalse(held.done(), "the request is held while the operator decides")

        done = apply.decide(self.store, row.key, "approved", reason="test fixture key", operator=OPERATOR,
                            context=self.context)
        self.assertEqual(done.status, "applied")
        self.assertEqual(held.result(timeout=60), "200", "the held request went through")
        grant = {"route": row.payload["route"], "detectors": sorted(row.payload["detectors"])}
        self.assertIn(grant, self.link().grants()["token_uses"])
        self.assertEqual(self.post("http://allowed.example/upload", f"aws_access_key_id={FAKE_AWS_KEY}"), "200",
                         "the approval is remembered: no second hold")
        self.assertEqual(self.audit(done), [(OPERATOR, "approved", "ok"), (OPERATOR, "apply", "ok")])

    def test_a_push_exception_is_granted_once_for_that_exact_push(self) -> None:
        old, new = "1" * 40, "2" * 40
        # As the git-gate: its records are its own (no other account writes push-findings).
        made = subprocess.run(["docker", "exec", "-i", "-u", "bottle-gate", self.launcher.names.sidecar_container,
                               "python", "-"], input=REJECTED_PUSH, capture_output=True, text=True, timeout=60)
        self.assertEqual(made.returncode, 0, made.stderr)
        call = self.ask("request-push-exception", {"repo": "app", "ref": "refs/heads/fix", "old": old, "new": new,
                                                   "finding": "gf-0123456789ab",
                                                   "justification": "the match is a fake key in a test fixture"})
        row = self.synced_proposal("app", kind="push-exception")
        done = apply.decide(self.store, row.key, "approved", operator=OPERATOR, context=self.context)
        self.assertEqual(done.status, "applied")
        self.assertEqual(self.answer(call)["verdict"], "approved")
        self.assertIn({"repo": "app", "ref": "refs/heads/fix", "old": old, "new": new, "finding": "gf-0123456789ab",
                       "used": False}, self.link().grants()["pushes"])
        self.assertEqual(self.audit(done), [(OPERATOR, "approved", "ok"), (OPERATOR, "apply", "ok")])

    def test_egress_events_are_shipped_once(self) -> None:
        self.assertEqual(self.get("http://evil.example/shipped-probe"), "403")

        def shipped() -> bool:
            self.sync()
            return any(e.record.get("path") == "/shipped-probe" for e in self.store.events(self.bottle_id, limit=1000))

        wait_for(shipped, "the refused request in the store's events", timeout=30)
        (event,) = [e for e in self.store.events(self.bottle_id, limit=1000) if e.record.get("path") == "/shipped-probe"]
        self.assertEqual((event.record["decision"], event.record["host"]), ("deny", "evil.example"))
        self.store.conn.execute("DELETE FROM event_cursors")  # a second importer starting from 0
        self.sync()
        shipped_again = [e for e in self.store.events(self.bottle_id, limit=1000) if e.record.get("path") == "/shipped-probe"]
        self.assertEqual(len(shipped_again), 1, "each log line is stored once")


if __name__ == "__main__":
    unittest.main()
