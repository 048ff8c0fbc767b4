"""Talking upstream: URL endpoints, credentials handed to git without argv or logs, fail-fast probes."""

from __future__ import annotations

import base64
import shutil
import socket
import ssl
import threading
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from bot_bottle.sidecar.git_gate import pktline, upstream, urls
from bot_bottle.sidecar.git_gate.config import RepoConfig
from bot_bottle.sidecar.git_gate.hook import porcelain_line
from bot_bottle.sidecar.git_gate.server import route
from bot_bottle.sidecar.git_gate.config import parse

TOKEN = "glpat-" + "Zx81QwErTy7UiOp2AsDf"


class UrlTest(unittest.TestCase):
    def test_forms_and_endpoints(self) -> None:
        cases = {
            "git@github.com:org/app.git": ("scp", ("github.com", 22), "org/app"),
            "ssh://git@git.example:2222/srv/app.git": ("ssh", ("git.example", 2222), "srv/app"),
            "ssh://git.example/app": ("ssh", ("git.example", 22), "app"),
            "https://github.com/org/app": ("https", ("github.com", 443), "org/app"),
            "http://h.test:8080/x/y.git/": ("http", ("h.test", 8080), "x/y"),
            "/srv/git/app.git": ("local", None, "srv/git/app"),
            "file:///srv/git/app.git": ("file", None, "srv/git/app"),
        }
        for url, (kind, endpoint, path) in cases.items():
            with self.subTest(url=url):
                parsed = urls.parse(url)
                self.assertEqual((parsed.kind, parsed.endpoint, parsed.repo_path), (kind, endpoint, path))

    def test_redact(self) -> None:
        self.assertEqual(urls.redact(f"https://x-access-token:{TOKEN}@github.com/o/r.git"), "https://github.com/o/r.git")
        self.assertEqual(urls.redact(f"https://{TOKEN}@github.com/o/r.git"), "https://github.com/o/r.git")
        self.assertEqual(urls.redact("ssh://git@github.com/o/r.git"), "ssh://git@github.com/o/r.git")
        self.assertEqual(urls.redact("git@github.com:o/r.git"), "git@github.com:o/r.git")


class CredentialsTest(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmp.cleanup)
        self.dir = Path(self._tmp.name)

    def private(self, name: str, text: str, mode: int = 0o600) -> Path:
        path = self.dir / name
        path.write_text(text)
        path.chmod(mode)
        return path

    def test_ssh_uses_key_file_pinned_hosts_batch_mode_and_timeout(self) -> None:
        key = self.private("app key", "KEY")
        known = self.private("known_hosts", "h ssh-ed25519 AAAA")
        creds = upstream.credentials(RepoConfig("app", "git@h:app.git", "ssh-key", key, known), 5)
        cmd = creds.env["GIT_SSH_COMMAND"]
        for part in ("-F /dev/null", f"-i '{key}'", "IdentitiesOnly=yes", "BatchMode=yes", "ConnectTimeout=5",
                     "StrictHostKeyChecking=yes", f"UserKnownHostsFile={known}", "GlobalKnownHostsFile=/dev/null"):
            self.assertIn(part, cmd)
        self.assertEqual(creds.secrets, ())
        self.assertEqual(creds.env["GIT_TERMINAL_PROMPT"], "0")

    def test_https_token_goes_into_a_header_in_the_environment(self) -> None:
        token = self.private("lib.token", TOKEN + "\n")
        creds = upstream.credentials(RepoConfig("lib", "https://h/lib.git", "https-token", token_file=token, username="bot"), 5)
        self.assertEqual(creds.env["GIT_CONFIG_KEY_0"], "http.extraHeader")
        header = creds.env["GIT_CONFIG_VALUE_0"]
        self.assertEqual(base64.b64decode(header.split()[-1]).decode(), f"bot:{TOKEN}")
        self.assertEqual(creds.scrub(f"error {TOKEN} and {header.split()[-1]}"), "error [redacted] and [redacted]")

    def test_loose_modes_and_missing_files_refuse(self) -> None:
        loose = self.private("loose.token", TOKEN, 0o644)
        with self.assertRaisesRegex(upstream.UpstreamError, "must be mode 600"):
            upstream.credentials(RepoConfig("lib", "https://h/x", "https-token", token_file=loose), 5)
        with self.assertRaisesRegex(upstream.UpstreamError, "missing"):
            upstream.credentials(RepoConfig("lib", "https://h/x", "https-token", token_file=self.dir / "nope"), 5)
        key = self.private("k", "KEY")
        with self.assertRaisesRegex(upstream.UpstreamError, "known_hosts"):
            upstream.credentials(RepoConfig("a", "git@h:a", "ssh-key", key, self.dir / "nope"), 5)

    def test_git_never_sees_the_token_on_its_argv(self) -> None:
        token = self.private("lib.token", TOKEN)
        creds = upstream.credentials(RepoConfig("lib", "https://h/lib.git", "https-token", token_file=token), 5)
        # git itself reports the header it would send; the argv holds only the config key's name.
        result = upstream.run_git(["config", "--get", "http.extraHeader"], creds=creds, base_env=upstream.clean_env())
        self.assertTrue(result.stdout.startswith("Authorization: Basic "))

    def test_failure_text_is_short_and_scrubbed(self) -> None:
        creds = upstream.Credentials(env={}, secrets=(TOKEN,))
        result = subprocess.CompletedProcess([], 128, "", "hint: x\nfatal: unable to access 'https://h/': 401 " + TOKEN +
                                             "\nfatal: Could not read from remote repository.\n")
        self.assertEqual(upstream.failure_text(result, creds), "unable to access 'https://h/': 401 [redacted]")


    def test_tls_is_always_verified_against_the_system_store(self) -> None:
        token = self.private("lib.token", TOKEN)
        for repo in (RepoConfig("lib", "https://h/lib.git", "https-token", token_file=token),
                     RepoConfig("docs", "https://h/docs.git")):
            env = upstream.credentials(repo, 5).env
            settings = {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))}
            self.assertEqual(settings["http.sslVerify"], "true")
            self.assertNotIn("GIT_SSL_NO_VERIFY", env)
            if Path(upstream.SYSTEM_CA_BUNDLE).is_file():
                self.assertEqual(env["GIT_SSL_CAINFO"], upstream.SYSTEM_CA_BUNDLE)
            # The forced setting wins over a mirror's own config saying otherwise.
            with tempfile.TemporaryDirectory() as repo_dir:
                upstream.run_git(["init", "-q", repo_dir], creds=upstream.Credentials(env={}), base_env=upstream.clean_env())
                upstream.run_git(["config", "http.sslVerify", "false"], creds=upstream.Credentials(env={}),
                                 base_env=upstream.clean_env(), cwd=Path(repo_dir))
                got = upstream.run_git(["config", "--get", "http.sslVerify"], creds=upstream.credentials(repo, 5),
                                       base_env=upstream.clean_env(), cwd=Path(repo_dir))
                self.assertEqual(got.stdout.strip(), "true")

    def test_redirects_are_never_followed(self) -> None:
        token = self.private("lib.token", TOKEN)
        for repo in (RepoConfig("lib", "https://h/lib.git", "https-token", token_file=token),
                     RepoConfig("docs", "https://h/docs.git")):
            env = upstream.credentials(repo, 5).env
            settings = {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))}
            self.assertEqual(settings["http.followRedirects"], "false")

    def test_a_redirect_does_not_carry_the_token_elsewhere(self) -> None:
        # The upstream answers the first request with a redirect to another server; git with the
        # gate's settings must stop there, so the other server never sees a request (or the token).
        import http.server

        seen: list[tuple[str, str | None]] = []

        class Elsewhere(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append((self.path, self.headers.get("Authorization")))
                self.send_response(404)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        elsewhere = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)
        target = f"http://127.0.0.1:{elsewhere.server_address[1]}"

        class Upstream(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(302)
                self.send_header("Location", target + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
        for server in (elsewhere, origin):
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.addCleanup(server.server_close)
            self.addCleanup(server.shutdown)
        token = self.private("lib.token", TOKEN)
        url = f"http://127.0.0.1:{origin.server_address[1]}/lib.git"
        creds = upstream.credentials(RepoConfig("lib", url, "https-token", token_file=token), 5)
        result = upstream.run_git(["ls-remote", url], creds=creds, base_env=upstream.clean_env(), timeout=30)
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(seen, [])

    def test_a_refused_certificate_is_named(self) -> None:
        creds = upstream.Credentials(env={})
        for stderr in (
            "fatal: unable to access 'https://h/x/': server certificate verification failed. CAfile: /etc/ssl/certs/ca-certificates.crt CRLfile: none\n",
            "fatal: unable to access 'https://h/x/': SSL certificate problem: unable to get local issuer certificate\n",
            "fatal: unable to access 'https://h/x/': SSL: no alternative certificate subject name matches target host name 'h'\n",
        ):
            text = upstream.failure_text(subprocess.CompletedProcess([], 128, "", stderr), creds)
            self.assertIn("TLS certificate is not trusted", text)
            self.assertIn("unable to access 'https://h/x/'", text)
        plain = upstream.failure_text(subprocess.CompletedProcess([], 128, "", "fatal: repository not found\n"), creds)
        self.assertNotIn("TLS", plain)


class ProbeTest(unittest.TestCase):
    def test_open_port_passes(self) -> None:
        with socket.socket() as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen()
            upstream.probe(f"http://127.0.0.1:{srv.getsockname()[1]}/x.git", 2)

    def test_closed_port_fails_at_once(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        start = time.monotonic()
        with self.assertRaisesRegex(upstream.UpstreamError, f"cannot connect to 127.0.0.1:{port}"):
            upstream.probe(f"ssh://git@127.0.0.1:{port}/x.git", 2)
        self.assertLess(time.monotonic() - start, 2)

    def test_local_paths_are_not_probed(self) -> None:
        upstream.probe("/srv/git/x.git", 0.1)

    def test_https_that_never_handshakes_fails_within_the_timeout(self) -> None:
        with socket.socket() as srv:  # accepts (the kernel does), never answers a ClientHello
            srv.bind(("127.0.0.1", 0))
            srv.listen()
            start = time.monotonic()
            with self.assertRaisesRegex(upstream.UpstreamError, "127.0.0.1"):
                upstream.probe(f"https://127.0.0.1:{srv.getsockname()[1]}/x.git", 1)
            self.assertLess(time.monotonic() - start, 3)

    @unittest.skipUnless(shutil.which("openssl"), "needs the openssl command")
    def test_https_with_a_certificate_from_an_unknown_ca_is_refused_by_name(self) -> None:
        from bot_bottle.demo import tls

        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            cert, key = tls.make_ca(folder).issue(folder, "server", ["localhost"])
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            with socket.socket() as srv:
                srv.bind(("127.0.0.1", 0))
                srv.listen()
                port = srv.getsockname()[1]

                def serve() -> None:
                    conn, _ = srv.accept()
                    try:
                        context.wrap_socket(conn, server_side=True).close()
                    except (ssl.SSLError, OSError):
                        conn.close()

                worker = threading.Thread(target=serve, daemon=True)
                worker.start()
                with self.assertRaisesRegex(upstream.UpstreamError, "TLS certificate is not trusted.*localhost:"):
                    upstream.probe(f"https://localhost:{port}/x.git", 2)
                worker.join(5)


class WireTest(unittest.TestCase):
    def test_error_advertisement_is_valid_pkt_lines(self) -> None:
        body = pktline.error_advertisement("git-upload-pack", "upstream app unreachable:\n timed out")
        self.assertEqual(body, b"001e# service=git-upload-pack\n0000" + b"002cERR upstream app unreachable: timed out\n")

    def test_routes(self) -> None:
        config = parse({"repos": [{"name": "app", "url": "/x"}, {"name": "v1.git", "url": "/y"}]})
        self.assertEqual(route("/app.git/info/refs", config)[1], "info/refs")  # type: ignore[index]
        self.assertEqual(route("/app/git-upload-pack", config)[1], "git-upload-pack")  # type: ignore[index]
        self.assertEqual(route("/app.git//git-receive-pack", config)[1], "git-receive-pack")  # type: ignore[index]
        self.assertEqual(route("/v1.git.git/info/refs", config)[0].name, "v1.git")  # type: ignore[index]
        for path in ("/other.git/info/refs", "/app.git/HEAD", "/app.git/objects/info/packs", "/../app.git/info/refs"):
            self.assertIsNone(route(path, config), path)

    def test_upstream_porcelain_lines_are_readable(self) -> None:
        self.assertEqual(porcelain_line("*\tabc:refs/heads/new\t[new branch]"), "refs/heads/new: [new branch]")
        self.assertEqual(porcelain_line("remote: protected"), "remote: protected")


if __name__ == "__main__":
    unittest.main()
