"""The supervise plane's sidecar half through a real bottle.

The agent (no network, only its proxy) calls the MCP server at
``http://supervise.bottle.internal/mcp`` with JSON-RPC over streamable HTTP (curl inside the
agent container); the proposal appears through the host's channel (``docker exec <sidecar>
python -m bot_bottle.sidecar.supervise.ctl pending``); the decision written through the same
channel comes back to the agent's still-waiting call. Everything runs on ``--internal`` networks
this test creates; the "internet" is the harness's own upstream containers.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import unittest
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from bot_bottle.backend.docker import engine
from bot_bottle.sidecar.supervise.channel import Decision, egress_route
from tests._docker import skip_unless_docker
from tests.integration._harness import ClassScope, Internet, TempHome, launch, plan_for, remove_bottle, wait_for, write_manifests

MCP_URL = "http://supervise.bottle.internal/mcp"
CTL = ["python", "-m", "bot_bottle.sidecar.supervise.ctl"]

# A push the git-gate rejected, as its hook records it in the sidecar's spool
# (channel.record_push_findings): an exception can be asked for only for such a push.
REJECTED_PUSH = (
    "from bot_bottle.sidecar.supervise.channel import record_push_findings\n"
    "record_push_findings('/var/lib/bottle/supervise', 'gf-0123456789ab', 'app',"
    " [{'ref': 'refs/heads/fix', 'old': '1' * 40, 'new': '2' * 40}], ['aws-access-key-id'],"
    " ['commit 222222222222: file t/fixture.env line 1: detector aws-access-key-id'])\n"
)

BOTTLE = """\
---
egress:
  log: 2
  routes:
    - host: allowed.example
      ports: [80]
---
"""


@skip_unless_docker()
class SuperviseSidecarTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        scope = ClassScope(cls)
        cls.pool = ThreadPoolExecutor(max_workers=2)
        cls.addClassCleanup(cls.pool.shutdown, wait=False, cancel_futures=True)
        cls.internet = Internet.create("allowed.example", "evil.example")
        cls.addClassCleanup(cls.internet.close)
        home = TempHome(scope)  # type: ignore[arg-type]
        layout = write_manifests(home.path, bottle=BOTTLE)
        plan = plan_for(layout)
        assert plan.supervise, "supervise is on by default"
        cls.bottle, cls.launcher = launch(scope, plan, home.path / "state", internet=cls.internet)  # type: ignore[arg-type]
        cls.addClassCleanup(remove_bottle, cls.launcher.names.id)
        cls.sidecar = cls.launcher.names.sidecar_container

    # -- helpers ---------------------------------------------------------------------------------

    def ctl(self, verb: str, request: dict | None = None) -> tuple[int, dict]:
        """The host's channel: docker exec -i on the sidecar, JSON in and out."""
        proc = subprocess.run(
            ["docker", "exec", "-i", self.sidecar, *CTL, verb],
            input=json.dumps(request) if request is not None else "", capture_output=True, text=True, timeout=60,
        )
        lines = proc.stdout.strip().splitlines()
        self.assertTrue(lines, f"ctl {verb} printed nothing: {proc.stderr}")
        return proc.returncode, json.loads(lines[-1])

    def rpc(self, method: str, params: dict, *, timeout: int = 120) -> dict:
        """One JSON-RPC request from inside the agent, through its proxy."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        cmd = (
            f"curl -sS --max-time {timeout} -X POST {MCP_URL} "
            "-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' "
            "-H 'MCP-Protocol-Version: 2025-06-18' "
            f"--data-binary {shlex.quote(body)}"
        )
        result = self.bottle.exec(cmd)
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)

    def call_tool(self, name: str, arguments: dict) -> Future:
        return self.pool.submit(self.rpc, "tools/call", {"name": name, "arguments": arguments})

    def tool_answer(self, future: Future) -> dict:
        response = future.result(timeout=150)
        result = response["result"]
        self.assertFalse(result.get("isError"), result)
        return json.loads(result["content"][0]["text"])

    def wait_pending(self, kind: str) -> dict:
        found: list[dict] = []

        def check() -> bool:
            code, out = self.ctl("pending")
            self.assertEqual(code, 0, out)
            found[:] = [p for p in out["proposals"] if p["kind"] == kind]
            return bool(found)

        wait_for(check, f"a pending {kind} proposal", timeout=60)
        return found[0]

    def agent_get(self, url: str) -> tuple[str, str]:
        return _get(self.bottle, url)

    # -- tests -----------------------------------------------------------------------------------

    def test_agent_is_registered_with_the_server(self) -> None:
        state = json.loads(self.bottle.exec("cat /home/node/.claude.json").stdout)
        self.assertEqual(state["mcpServers"]["supervise"], {"type": "http", "url": MCP_URL})

    def test_claude_code_connects_through_its_proxy(self) -> None:
        """The real Claude Code CLI checks each registered server's health: it must get through."""
        result = self.bottle.exec("timeout 90 claude mcp list 2>&1")
        line = next((l for l in result.stdout.splitlines() if l.startswith("supervise")), "")
        self.assertIn(MCP_URL, line, result.stdout)
        self.assertIn("Connected", line, result.stdout)

    def test_tools_are_listed_through_the_proxy(self) -> None:
        init = self.rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                       "clientInfo": {"name": "curl", "version": "1"}})
        self.assertEqual(init["result"]["serverInfo"]["name"], "bot-bottle-supervise")
        tools = {t["name"]: t for t in self.rpc("tools/list", {})["result"]["tools"]}
        self.assertEqual(set(tools), {"request-egress", "request-capability", "request-push-exception", "request-token-use"})
        self.assertIn("5 minutes", tools["request-egress"]["description"])
        self.assertIn("justification", tools["request-egress"]["inputSchema"]["required"])

    def test_a_missing_justification_is_refused_without_a_proposal(self) -> None:
        response = self.rpc("tools/call", {"name": "request-egress", "arguments": {"host": "evil.example", "justification": " "}})
        self.assertTrue(response["result"]["isError"])
        self.assertIn("justification", response["result"]["content"][0]["text"])
        self.assertEqual([p for p in self.ctl("pending")[1]["proposals"] if p["payload"].get("host") == "evil.example"], [])

    def test_egress_request_approved_through_the_channel(self) -> None:
        status, body = self.agent_get("http://evil.example/before")
        self.assertEqual(status, "403", body)  # refused before anyone approved anything

        call = self.call_tool("request-egress", {
            "host": "evil.example", "paths": ["/docs/"], "methods": ["GET"],
            "justification": "the build fetches its docs from evil.example",
        })
        proposal = self.wait_pending("egress")
        self.assertEqual(proposal["payload"], {"host": "evil.example", "paths": ["/docs/"], "methods": ["GET"], "ports": []})
        self.assertIn("docs", proposal["justification"])
        self.assertFalse(call.done())  # the agent's call is still waiting for the operator

        grant = {"kind": "route", "route": egress_route(proposal["payload"])}
        decision = Decision(proposal["id"], "approved", reason="ok for docs", operator="integration-test")
        code, out = self.ctl("decide", {"decision": decision.to_dict(), "grant": grant})
        self.assertEqual((code, out), (0, {"ok": True, "grant_added": True}))

        answer = self.tool_answer(call)
        self.assertEqual((answer["verdict"], answer["proposal_id"]), ("approved", proposal["id"]))
        code, grants = self.ctl("grants")
        self.assertIn(grant["route"], grants["routes"])
        self.assertNotIn(proposal["id"], [p["id"] for p in self.ctl("pending")[1]["proposals"]])

        # deciding again is refused and changes nothing
        code, out = self.ctl("decide", {"decision": Decision(proposal["id"], "rejected", "no").to_dict(), "grant": None})
        self.assertEqual((code, out["type"]), (1, "already-decided"))

    def test_an_approved_route_works_without_a_restart(self) -> None:
        status, body = self.agent_get("http://evil.example/granted/x")
        self.assertEqual(status, "403", body)
        call = self.call_tool("request-egress", {
            "host": "evil.example", "paths": ["/granted/"], "justification": "fetch the granted files",
        })
        proposal = self.wait_pending("egress")
        grant = {"kind": "route", "route": egress_route(proposal["payload"])}
        decision = Decision(proposal["id"], "approved", operator="integration-test")
        self.assertEqual(self.ctl("decide", {"decision": decision.to_dict(), "grant": grant})[0], 0)
        self.assertEqual(self.tool_answer(call)["verdict"], "approved")
        # right after "approved" the retry works: the grant was written before the decision
        status, body = self.agent_get("http://evil.example/granted/x")
        self.assertEqual(status, "200", body)
        self.assertEqual(self.agent_get("http://evil.example/other")[0], "403")  # only what was granted

    def test_rejection_reaches_the_agent_with_the_reason(self) -> None:
        call = self.call_tool("request-capability", {"packages": ["ripgrep"], "justification": "faster search"})
        proposal = self.wait_pending("capability")
        self.assertEqual(proposal["payload"], {"packages": ["ripgrep"], "dockerfile": ""})
        before = self.ctl("grants")[1]
        code, _ = self.ctl("decide", {"decision": Decision(proposal["id"], "rejected", "use grep -r").to_dict(), "grant": None})
        self.assertEqual(code, 0)
        answer = self.tool_answer(call)
        self.assertEqual((answer["verdict"], answer["reason"]), ("rejected", "use grep -r"))
        self.assertEqual(self.ctl("grants")[1], before)  # a rejection grants nothing

    def test_modified_push_exception(self) -> None:
        old, new = "1" * 40, "2" * 40
        # As the git-gate: its records are its own (no other account writes push-findings).
        made = subprocess.run(["docker", "exec", "-i", "-u", "bottle-gate", self.sidecar, "python", "-"],
                              input=REJECTED_PUSH, capture_output=True, text=True, timeout=60)
        self.assertEqual(made.returncode, 0, made.stderr)
        call = self.call_tool("request-push-exception", {
            "repo": "app", "ref": "refs/heads/fix", "old": old, "new": new, "finding": "gf-0123456789ab",
            "justification": "the match is a fake key in a unit test fixture",
        })
        proposal = self.wait_pending("push-exception")
        self.assertEqual(proposal["payload"]["detectors"], ["aws-access-key-id"])  # the gate's, not the agent's
        change = dict(proposal["payload"], ref="refs/heads/fix-reviewed")
        decision = Decision(proposal["id"], "modified", "push it to a review branch", change=change)
        grant = {"kind": "push", "repo": "app", "ref": change["ref"], "old": old, "new": new, "finding": "gf-0123456789ab"}
        self.assertEqual(self.ctl("decide", {"decision": decision.to_dict(), "grant": grant})[0], 0)
        answer = self.tool_answer(call)
        self.assertEqual(answer["verdict"], "modified")
        self.assertEqual(answer["change"]["ref"], "refs/heads/fix-reviewed")
        pushes = self.ctl("grants")[1]["pushes"]
        self.assertIn({"repo": "app", "ref": "refs/heads/fix-reviewed", "old": old, "new": new,
                       "finding": "gf-0123456789ab", "used": False}, pushes)

    def test_token_use_request_names_what_the_proxy_held(self) -> None:
        # The held request's proposal as the proxy writes it (channel.held_request_proposal), in
        # the sidecar's spool; the agent only knows the hold id from the proxy's 403.
        script = (
            "from bot_bottle.sidecar.supervise.channel import Spool, held_request_proposal\n"
            "p = held_request_proposal('POST', 'api.held.example', '/v1/upload', 'api.held.example', ['aws-access-key'], 5)\n"
            "Spool('/var/lib/bottle/supervise').submit(p)\n"
            "print(p.id)\n"
        )
        made = subprocess.run(["docker", "exec", "-i", self.sidecar, "python", "-"], input=script,
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(made.returncode, 0, made.stderr)
        hold_id = made.stdout.strip()
        self.assertEqual(self.ctl("decide", {"decision": Decision(hold_id, "expired", "held too long").to_dict(), "grant": None})[0], 0)

        call = self.call_tool("request-token-use", {"hold_id": hold_id, "justification": "the key is the docs' example key"})
        proposal = self.wait_pending("token-use")
        self.assertNotEqual(proposal["id"], hold_id)
        self.assertEqual(proposal["payload"], {"hold_id": hold_id, "method": "POST", "host": "api.held.example",
                                               "path": "/v1/upload", "route": "api.held.example",
                                               "detectors": ["aws-access-key"]})
        grant = {"kind": "token-use", "route": "api.held.example", "detectors": ["aws-access-key"]}
        self.assertEqual(self.ctl("decide", {"decision": Decision(proposal["id"], "approved").to_dict(), "grant": grant})[0], 0)
        self.assertEqual(self.tool_answer(call)["verdict"], "approved")
        self.assertIn({"route": "api.held.example", "detectors": ["aws-access-key"]}, self.ctl("grants")[1]["token_uses"])

        unknown = self.rpc("tools/call", {"name": "request-token-use", "arguments": {"hold_id": "no-such-hold", "justification": "x"}})
        self.assertTrue(unknown["result"]["isError"])

    def test_events_are_shipped_from_the_egress_log(self) -> None:
        self.agent_get("http://evil.example/event-probe")
        lines: list[dict] = []

        def seen() -> bool:
            code, out = self.ctl("events", {"offset": 0})
            lines[:] = out["lines"]
            return code == 0 and any("event-probe" in json.dumps(line) for line in lines)

        wait_for(seen, "the refused request in the shipped events", timeout=30)
        code, out = self.ctl("events", {"offset": 0})
        code2, out2 = self.ctl("events", {"offset": out["offset"]})
        self.assertEqual((code2, out2["offset"]), (0, out["offset"]))

    def test_the_agent_cannot_reach_the_spool(self) -> None:
        # The spool is in the sidecar's filesystem only; the proxy routes just the MCP endpoint.
        self.assertNotEqual(self.bottle.exec("ls /var/lib/bottle/supervise").returncode, 0)
        status, _ = self.agent_get("http://supervise.bottle.internal/grants.json")
        self.assertNotEqual(status, "200")

    def test_the_expiring_daemons_take_the_decide_lock_the_host_made(self) -> None:
        # ``ctl decide`` (root, over docker exec) and an expiry (the MCP server's or the proxy's
        # account) exclude each other through the spool's decide lock: whoever makes it first,
        # each account can take it (an expiry that could not would fall back to none, silently).
        take = ("from bot_bottle.sidecar.supervise.channel import Spool\n"
                "with Spool('/var/lib/bottle/supervise').deciding(wait_s=5): print('locked')\n")
        self.assertEqual(engine.run(["exec", self.sidecar, "python", "-c", take], timeout=60).stdout.strip(), "locked")
        for account, python in (("bottle-supervise", "/usr/bin/python3"),
                                ("bottle-proxy", "/opt/mitmproxy/bin/python")):
            with self.subTest(account=account):
                result = engine.run(["exec", "-u", account, self.sidecar, python, "-c", take], timeout=60, check=False)
                self.assertEqual((result.returncode, result.stdout.strip()), (0, "locked"), result.stderr)


@skip_unless_docker()
class ResumeKeepsApprovedRoutesTest(unittest.TestCase):
    """A route the operator approved (``<state>/approved_routes.json``) is in the resumed policy."""

    def test_resume_merges_approved_routes(self) -> None:
        from bot_bottle.backend.docker.launch import LaunchOptions

        internet = Internet.create("allowed.example", "evil.example")
        self.addCleanup(internet.close)
        home = TempHome(self)
        state_root = home.path / "state"
        plan = plan_for(write_manifests(home.path, bottle=BOTTLE))
        bottle, launcher = launch(self, plan, state_root, internet=internet)
        bid = launcher.names.id
        self.addCleanup(remove_bottle, bid)
        agent_image = launcher.state.read().image
        self.assertEqual(_get(bottle, "http://evil.example/resumed/x")[0], "403")
        launcher.preserve_reason = "test"
        bottle.close()

        approved = [{"host": "evil.example", "ports": [80], "matches": [{"paths": ["/resumed/"]}]}]
        (launcher.state.path / "approved_routes.json").write_text(json.dumps({"routes": approved}))  # the host side's form
        resumed, relauncher = launch(self, plan, state_root, internet=internet,
                                     options=LaunchOptions(bottle_id=bid, resume=True, image_override=agent_image))
        policy = json.loads(subprocess.run(
            ["docker", "exec", relauncher.names.sidecar_container, "cat", "/etc/bot-bottle/policy.json"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout)
        self.assertEqual(policy["routes"][-1]["host"], "evil.example")
        self.assertIn("supervise", policy["internal_services"])
        self.assertEqual(_get(resumed, "http://evil.example/resumed/x")[0], "200")
        self.assertEqual(_get(resumed, "http://evil.example/other")[0], "403")


@skip_unless_docker()
class PushExceptionThroughTheGateTest(unittest.TestCase):
    """A push the git-gate refused goes through once the operator grants exactly that push."""

    FAKE_AWS_KEY = "AKIA" + "QZ7RXJ2M4KD8WPLB"  # token-shaped, not a real key

    def setUp(self) -> None:
        import tempfile

        from bot_bottle.backend.docker.launch import LaunchOptions
        from tests.integration._harness import label_args
        from tests.integration.test_git_gate_docker import UPSTREAM_HOST, install_upstream_tls, upstream_image

        tmp = tempfile.TemporaryDirectory(prefix="bb-push-exception-")
        self.addCleanup(tmp.cleanup)
        root = Path(tmp.name)
        self.internet = Internet.create()
        self.addCleanup(self.internet.close)
        name = f"git-upstream-{self.internet.labels['bot-bottle.id']}"
        engine.run(["create", "--name", name, "--network", self.internet.network, "--network-alias", UPSTREAM_HOST,
                    *label_args(self.internet.labels), upstream_image()], timeout=60)
        self.internet.containers[UPSTREAM_HOST] = name
        (root / "token").write_text("tok_unused\n")
        engine.run(["cp", str(root / "token"), f"{name}:/srv/token"], timeout=60)
        ca = install_upstream_tls(name, root)
        engine.run(["start", name], timeout=60)
        wait_for(lambda: engine.run(["exec", name, "test", "-e", "/srv/log/ready"], check=False).returncode == 0,
                 "the upstream")
        self.upstream = name
        host_key = " ".join(engine.run(["exec", name, "cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).stdout.split()[:2])
        key = root / "deploy_key"
        key.write_text(engine.run(["exec", name, "cat", "/srv/client/id_ed25519"]).stdout)
        key.chmod(0o600)
        bottle = f"""\
---
git-gate:
  user: {{name: Bottled Agent, email: agent@bot-bottle.invalid}}
  repos:
    app:
      url: git@{UPSTREAM_HOST}:app.git
      ssh_key: {key}
      known_hosts: "{UPSTREAM_HOST} {host_key}"
---
"""
        layout = write_manifests(root / "home", bottle=bottle)
        plan = plan_for(layout)
        self.bottle, self.launcher = launch(self, plan, layout.state_dir, internet=self.internet,
                                            options=LaunchOptions(upstream_ca_pem=ca.cert.read_text()))
        self.addCleanup(remove_bottle, self.launcher.names.id)
        self.url = f"git@{UPSTREAM_HOST}:app.git"

    def git(self, script: str):
        return self.bottle.exec(f"cd /home/node/workspace && {script}")

    def upstream_main(self) -> str:
        return engine.run(["exec", "-u", "git", self.upstream, "git", "-C", "/srv/git/app.git",
                           "rev-parse", "--verify", "-q", "refs/heads/main"], check=False).stdout.strip()

    def ctl(self, verb: str, request: dict | None = None) -> tuple[int, dict]:
        proc = subprocess.run(["docker", "exec", "-i", self.launcher.names.sidecar_container, *CTL, verb],
                              input=json.dumps(request) if request is not None else "",
                              capture_output=True, text=True, timeout=60)
        return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])

    def test_refused_push_asks_and_passes_once(self) -> None:
        self.assertEqual(self.git(f"git clone -q {self.url} app").returncode, 0)
        before = self.upstream_main()
        r = self.git(f"cd app && echo 'aws_access_key_id = {self.FAKE_AWS_KEY}' > fixture.txt && git add fixture.txt && "
                     "git commit -qm 'test fixture' && git push origin HEAD:main")
        self.assertNotEqual(r.returncode, 0, "a push carrying a cloud key was accepted")
        self.assertIn("request-push-exception", r.stderr)
        ask = next(line for line in r.stderr.splitlines() if "repo=app " in line)
        args = dict(field.split("=", 1) for field in ask.split("git-gate:", 1)[1].split())
        new = self.git("cd app && git rev-parse HEAD").stdout.strip()
        self.assertEqual((args["ref"], args["old"], args["new"]), ("refs/heads/main", before, new))
        self.assertTrue(args["finding"].startswith("gf-"))

        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "request-push-exception",
            "arguments": {**args, "justification": "the key in fixture.txt is a documented fake for the tests"}}})
        with ThreadPoolExecutor(max_workers=1) as pool:
            call = pool.submit(self.bottle.exec,
                               f"curl -sS --max-time 120 -X POST {MCP_URL} -H 'Content-Type: application/json' "
                               f"-H 'Accept: application/json, text/event-stream' --data-binary {shlex.quote(body)}")
            found: list[dict] = []

            def pending() -> bool:
                found[:] = [p for p in self.ctl("pending")[1]["proposals"] if p["kind"] == "push-exception"]
                return bool(found)

            wait_for(pending, "the push-exception proposal", timeout=60)
            proposal = found[0]
            self.assertEqual(proposal["payload"]["finding"], args["finding"])
            self.assertEqual(proposal["payload"]["detectors"], ["aws-access-key-id"])  # what the gate found
            grant = {"kind": "push", **{k: proposal["payload"][k] for k in ("repo", "ref", "old", "new", "finding")}}
            decision = Decision(proposal["id"], "approved", operator="integration-test")
            self.assertEqual(self.ctl("decide", {"decision": decision.to_dict(), "grant": grant})[0], 0)
            answer = json.loads(json.loads(call.result(timeout=150).stdout)["result"]["content"][0]["text"])
        self.assertEqual(answer["verdict"], "approved")

        r = self.git("cd app && git push origin HEAD:main")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("let through once", r.stderr)
        self.assertEqual(self.upstream_main(), new)
        self.assertTrue(self.ctl("grants")[1]["pushes"][0]["used"])

        # once: the next push with a finding is refused again
        r = self.git(f"cd app && echo 'k2 = {self.FAKE_AWS_KEY}' > more.txt && git add more.txt && "
                     "git commit -qm more && git push origin HEAD:main")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(self.upstream_main(), new)

    def test_the_sidecars_daemons_run_under_accounts_of_their_own(self) -> None:
        """No daemon the agent talks to is root or holds a capability, and a flaw in one (each
        parses what the agent sends) does not hand over another's files: the route credentials,
        the known secret values and the CA key are the proxy's, the deploy key the gate's."""
        sidecar = self.launcher.names.sidecar_container
        self.bottle.exec(f"curl -sS --max-time 30 -o /dev/null {MCP_URL}")  # the server starts on first use
        ids = json.loads(engine.run(["exec", sidecar, "python3", "-c", PROCESS_IDS], timeout=60).stdout)
        daemons = {
            "bottle-proxy": [p for p in ids if "bottle-proxy" in p["args"] or p["args"].startswith("socat ")],
            "bottle-gate": [p for p in ids if "bot_bottle.sidecar.git_gate" in p["args"]],
            "bottle-supervise": [p for p in ids if "bot_bottle.sidecar.supervise.server" in p["args"]],
        }
        self.assertEqual({k: len(v) >= (2 if k == "bottle-proxy" else 1) for k, v in daemons.items()},
                         dict.fromkeys(daemons, True), ids)
        for account, procs in daemons.items():
            uid = engine.run(["exec", sidecar, "id", "-u", account], timeout=60).stdout.strip()
            for proc in procs:
                self.assertEqual(proc["uid"], [uid] * 4, f"{account}: {proc}")
                self.assertEqual(int(proc["cap_eff"], 16), 0, f"{account} holds capabilities: {proc}")

        def reads(user: str, path: str) -> bool:
            return engine.run(["exec", "-u", user, sidecar, "cat", path], timeout=60, check=False).returncode == 0

        secrets, ca_key = "/etc/bot-bottle/secrets.json", "/var/lib/bottle/mitmproxy/mitmproxy-ca.pem"
        deploy_key = next(line for line in engine.run(["exec", "-u", "bottle-gate", sidecar, "ls", "-1",
                                                       "/etc/bot-bottle/git-gate"], timeout=60).stdout.split())
        deploy_key = f"/etc/bot-bottle/git-gate/{deploy_key}"
        self.assertTrue(reads("bottle-proxy", secrets) and reads("bottle-proxy", ca_key), "the proxy reads its own")
        self.assertTrue(reads("bottle-gate", deploy_key), "the gate reads its own key")
        for user in ("bottle-gate", "bottle-supervise"):
            self.assertFalse(reads(user, secrets), f"{user} reads the route credentials")
            self.assertFalse(reads(user, ca_key), f"{user} reads the CA key")
            self.assertFalse(reads(user, "/etc/bot-bottle/policy.json"), f"{user} reads the policy")
        for user in ("bottle-proxy", "bottle-gate", "bottle-supervise"):
            self.assertFalse(reads(user, f"/proc/{ids[0]['pid']}/environ"), f"{user} reads PID 1's environment")
        self.assertFalse(reads("bottle-supervise", deploy_key), "the MCP server reads the gate's deploy key")
        self.assertFalse(reads("bottle-proxy", deploy_key), "the proxy reads the gate's deploy key")


# Every process in the sidecar: pid, argv, real/effective/saved/fs uid and effective capabilities.
PROCESS_IDS = """
import json, os
out = []
for pid in sorted((p for p in os.listdir('/proc') if p.isdigit()), key=int):
    try:
        status = dict(l.split(':', 1) for l in open(f'/proc/{pid}/status').read().splitlines() if ':' in l)
        args = open(f'/proc/{pid}/cmdline', 'rb').read().replace(b'\\0', b' ').decode()
    except OSError:
        continue
    out.append({'pid': pid, 'args': args, 'uid': status['Uid'].split(), 'cap_eff': status['CapEff'].strip()})
print(json.dumps(out))
"""


def _get(bottle, url: str) -> tuple[str, str]:
    marker = "HTTPSTATUS:"
    result = bottle.exec(f"curl -sS --max-time 20 -w {shlex.quote(marker + '%{http_code}')} {shlex.quote(url)}")
    body, _, status = result.stdout.rpartition(marker)
    return status, body




if __name__ == "__main__":
    unittest.main()
