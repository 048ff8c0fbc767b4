"""The supervise MCP server's tool logic: arguments to proposals, waiting, answers.

Its transport (``mcp_http``) is tested over real sockets in tests/unit/test_supervise_mcp_http_dec07a.py,
and through a real bottle in tests/integration/test_supervise_sidecar.py.
"""

from __future__ import annotations

import asyncio
import time
import tempfile
import unittest
from pathlib import Path

from bot_bottle.sidecar.supervise import channel, server
from bot_bottle.sidecar.supervise.channel import Decision, Proposal, Spool
from bot_bottle.sidecar.supervise.server import ToolInputError

SHA_A = "a" * 40
SHA_B = "b" * 40
FINDING = "gf-0123456789ab"


class ArgumentTests(unittest.TestCase):
    def test_egress(self) -> None:
        p = server.egress_proposal("Docs.Example", "read the API docs", ["/v1/"], ["get"], [443], timeout_s=30)
        self.assertEqual((p.kind, p.timeout_s, p.justification), ("egress", 30, "read the API docs"))
        self.assertEqual(p.payload, {"host": "docs.example", "paths": ["/v1/"], "methods": ["GET"], "ports": [443]})

    def test_justification_is_required(self) -> None:
        for justification in ("", "   "):
            with self.subTest(justification=justification), self.assertRaises(ToolInputError) as ctx:
                server.egress_proposal("a.example", justification)
            self.assertIn("justification", str(ctx.exception))

    def test_bad_arguments_say_what_to_fix(self) -> None:
        with self.assertRaises(ToolInputError) as ctx:
            server.egress_proposal("https://a.example/x", "why")
        self.assertIn("host", str(ctx.exception))
        with self.assertRaises(ToolInputError):
            server.capability_proposal("why")
        with tempfile.TemporaryDirectory() as tmp, self.assertRaises(ToolInputError):
            server.push_exception_proposal(Spool(tmp), "app", "main", SHA_A, SHA_B, "why", FINDING)

    def test_push_exception_shows_what_the_gate_found_for_a_push_it_rejected(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            spool = Spool(tmp)
            update = {"ref": "refs/heads/x", "old": SHA_A, "new": SHA_B}
            channel.record_push_findings(tmp, FINDING, "app", [update], ["aws-access-key-id"],
                                         ["commit 0123456789ab: file t/fixture.env line 1: detector aws-access-key-id"])
            p = server.push_exception_proposal(spool, "app", "refs/heads/x", SHA_A.upper(), f" {SHA_B} ", "fixture",
                                               f" {FINDING}")
            self.assertEqual(p.payload, {**update, "repo": "app", "finding": FINDING, "detectors": ["aws-access-key-id"],
                                         "places": ["commit 0123456789ab: file t/fixture.env line 1: detector aws-access-key-id"]})
            # Only a push the gate rejected, one of its ref updates, with the id it printed.
            for args in (("app", "refs/heads/x", SHA_A, SHA_B, "why", "gf-000000000000"),
                         ("other", "refs/heads/x", SHA_A, SHA_B, "why", FINDING),
                         ("app", "refs/heads/y", SHA_A, SHA_B, "why", FINDING),
                         ("app", "refs/heads/x", SHA_B, SHA_A, "why", FINDING),
                         ("app", "refs/heads/x", SHA_A, SHA_B, "why", "a dummy key in a fixture, trust me")):
                with self.subTest(args=args), self.assertRaises(ToolInputError):
                    server.push_exception_proposal(spool, *args)

    def test_token_use_copies_the_held_request(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            spool = Spool(tmp)
            held = {"hold_id": "h1", "method": "POST", "host": "api.x", "path": "/v", "route": "api.x", "detectors": ["aws-access-key"]}
            spool.submit(Proposal("h1", "token-use", "held by the proxy", held, 10))
            p = server.token_use_proposal(spool, "h1", "the key is a documented example")
            self.assertEqual(p.payload, held)
            with self.assertRaises(ToolInputError):
                server.token_use_proposal(spool, "nope", "why")
            spool.submit(Proposal("e1", "egress", "x", {"host": "a.example"}, 10))
            with self.assertRaises(ToolInputError):
                server.token_use_proposal(spool, "e1", "why")  # not a held request
            with self.assertRaises(ToolInputError):
                server.token_use_proposal(spool, "../etc", "why")

    def test_descriptions_state_the_timeout(self) -> None:
        desc = server.descriptions(300)
        self.assertEqual(set(desc), {"request-egress", "request-capability", "request-push-exception", "request-token-use"})
        for text in desc.values():
            self.assertIn("5 minutes", text)
        self.assertIn("45 seconds", server.descriptions(45)["request-egress"])


class AskTests(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.spool = Spool(Path(tmp.name) / "spool")

    def test_decision_reaches_the_waiting_call(self) -> None:
        proposal = server.egress_proposal("a.example", "why", timeout_s=10)

        async def scenario() -> dict:
            call = asyncio.create_task(server.ask(self.spool, proposal, poll=0.02))
            for _ in range(100):
                if self.spool.pending():
                    break
                await asyncio.sleep(0.02)
            (pending,) = self.spool.pending()
            self.spool.decide(Decision(pending.id, "modified", "only docs", {"host": "a.example", "paths": ["/docs/"]}))
            return await call

        answer = asyncio.run(scenario())
        self.assertEqual(answer["verdict"], "modified")
        self.assertEqual(answer["reason"], "only docs")
        self.assertEqual(answer["change"]["paths"], ["/docs/"])
        self.assertEqual(answer["proposal_id"], proposal.id)

    def test_no_decision_expires(self) -> None:
        proposal = server.egress_proposal("a.example", "why", timeout_s=0.2)
        answer = asyncio.run(server.ask(self.spool, proposal, poll=0.02))
        self.assertEqual(answer["verdict"], "expired")
        self.assertEqual(self.spool.decision_for(proposal.id).verdict, "expired")
        self.assertEqual(self.spool.pending(), [])

    def test_a_cancelled_call_withdraws_its_proposal(self) -> None:
        proposal = server.egress_proposal("a.example", "why", timeout_s=30)

        async def scenario() -> None:
            call = asyncio.create_task(server.ask(self.spool, proposal, poll=0.02))
            await asyncio.sleep(0.1)
            call.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await call

        asyncio.run(scenario())
        self.assertEqual(self.spool.decision_for(proposal.id).verdict, "expired")

    def test_too_many_pending(self) -> None:
        for i in range(server.MAX_PENDING):
            self.spool.submit(Proposal(f"p-{i}", "egress", "why", {"host": "a.example"}, 60))
        with self.assertRaises(ToolInputError):
            asyncio.run(server.ask(self.spool, server.egress_proposal("b.example", "why"), poll=0.02))
        self.assertEqual(len(self.spool.pending()), server.MAX_PENDING)

    def test_rejection_carries_the_reason(self) -> None:
        proposal = server.capability_proposal("need rg", ["ripgrep"], timeout_s=5)
        self.spool.ensure()

        async def scenario() -> dict:
            call = asyncio.create_task(server.ask(self.spool, proposal, poll=0.02))
            await asyncio.sleep(0.1)
            self.spool.decide(Decision(proposal.id, "rejected", "use grep"))
            return await call

        answer = asyncio.run(scenario())
        self.assertEqual((answer["verdict"], answer["reason"], answer["change"]), ("rejected", "use grep", None))

    def test_allowed_hosts_cover_the_internal_name(self) -> None:
        hosts = server.allowed_hosts(9430)
        self.assertIn("supervise.bottle.internal", hosts)
        self.assertIn("supervise.bottle.internal:*", hosts)
        self.assertFalse(any(h.startswith("0.0.0.0") for h in hosts))



# A stand-in for the supervise venv's python: listens on the --port it is given, like the server.
class SidecarInitTest(unittest.TestCase):
    """The sidecar's PID 1 runs the server exactly when the policy lists it, and fails closed."""

    def test_argv(self) -> None:
        from bot_bottle.sidecar import init

        config = init.Config(state_dir=Path("/var/lib/bottle"))
        argv = init.supervise_argv(config, 9430)
        self.assertEqual(argv[0], "/usr/bin/python3")  # stdlib only: no venv of its own
        self.assertEqual(argv[1:3], ["-m", "bot_bottle.sidecar.supervise.server"])
        self.assertIn("127.0.0.1", argv)
        self.assertEqual(argv[argv.index("--port") + 1], "9430")
        self.assertEqual(argv[argv.index("--root") + 1], "/var/lib/bottle/supervise")
        # the proxy reads grants from and writes held requests into the same spool
        self.assertIn("bottle_supervise_dir=/var/lib/bottle/supervise", init.proxy_argv(config))

    def _start(self, root: Path, policy: dict) -> "subprocess.Popen[str]":
        import json
        import os
        import subprocess
        import sys

        from tests.unit.test_sidecar_init import FAKE_PROXY, FAKE_SOCAT, FAKE_SUPERVISE_PYTHON, REPO, free_port

        bin_dir = root / "bin"
        bin_dir.mkdir()
        for name, text in (("bottle-proxy", FAKE_PROXY), ("socat", FAKE_SOCAT), ("supervise-python", FAKE_SUPERVISE_PYTHON)):
            (bin_dir / name).write_text(text.format(python=sys.executable))
            (bin_dir / name).chmod(0o755)
        (root / "policy.json").write_text(json.dumps(policy))
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot_bottle.sidecar.init", "--policy", str(root / "policy.json"),
             "--secrets", str(root / "secrets.json"), "--run-dir", str(root / "run"),
             "--state-dir", str(root / "state"), "--log-dir", str(root / "log"),
             "--proxy-port", str(free_port()), "--supervise-python", str(bin_dir / "supervise-python")],
            env=dict(os.environ, PATH=str(bin_dir), PYTHONPATH=str(REPO)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )

        def kill() -> None:
            import signal

            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.communicate(timeout=10)

        self.addCleanup(kill)
        deadline = time.monotonic() + 20
        while not (root / "run" / "ready").exists():
            if proc.poll() is not None:
                self.fail(f"init exited early: {proc.communicate()}")
            if time.monotonic() > deadline:
                self.fail("init never became ready")
            time.sleep(0.05)
        return proc

    def _supervise_pid(self, proc) -> int | None:
        import subprocess

        out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(proc.pid)], capture_output=True, text=True).stdout
        for line in out.splitlines():
            pid, _, args = line.strip().partition(" ")
            if "supervise-python" in args:
                return int(pid)
        return None

    def test_started_when_listed_and_its_death_takes_the_bundle_down(self) -> None:
        import os
        import signal
        import socket

        from tests.unit.test_sidecar_init import free_port

        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            port = free_port()
            proc = self._start(root, {"version": 2, "internal_services": {"supervise": port}, "routes": []})
            # Listening from `ready` on, started by the first connection (tests/unit/test_sidecar_init.py).
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.settimeout(10)
                self.assertTrue(conn.recv(100).startswith(b"supervise pid"))
            pid = self._supervise_pid(proc)
            self.assertIsNotNone(pid)
            self.assertEqual((root / "state" / "supervise").stat().st_mode & 0o777, 0o700)
            os.kill(pid, signal.SIGKILL)
            _, err = proc.communicate(timeout=20)
            self.assertEqual(proc.returncode, 1, err)
            self.assertIn('"daemon": "supervise"', err)
            self.assertFalse((root / "run" / "ready").exists())

    def test_not_started_when_not_listed(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            proc = self._start(Path(tmp), {"version": 2, "routes": []})
            self.assertIsNone(self._supervise_pid(proc))


class SidecarImageTest(unittest.TestCase):
    """The server is stdlib only: the sidecar image carries no venv, wheels or pins for it."""

    def test_no_supervise_venv_or_wheels(self) -> None:
        from bot_bottle import images

        spec = images.sidecar_image()
        self.assertNotIn("supervise-wheels", {rel.split("/")[0] for rel, _ in spec.context_files})
        self.assertNotIn("supervise-requirements.txt", dict(spec.generated_files))
        self.assertNotIn("/opt/supervise", spec.dockerfile.read_text())
        pins = images.load_versions()["sidecar"]
        self.assertNotIn("mcp", pins)
        self.assertNotIn("mcp_lock", pins)

    def test_the_server_imports_only_the_stdlib_and_the_sidecar(self) -> None:
        import ast
        import sys

        folder = Path(server.__file__).parent
        for name in ("server.py", "mcp_http.py", "channel.py"):
            tree = ast.parse((folder / name).read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    roots = [alias.name.split(".")[0] for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    roots = [node.module.split(".")[0]]
                else:
                    continue
                for root in roots:
                    with self.subTest(file=name, module=root):
                        self.assertTrue(root in sys.stdlib_module_names or root in ("__future__", "bot_bottle"))


if __name__ == "__main__":
    unittest.main()
