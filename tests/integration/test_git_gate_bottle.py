"""The git-gate end to end in a real bottle: the agent's git, through its proxy, to the gate, upstream.

The agent uses the repos' real URLs (SSH and HTTPS); its git config sends them to
``git-gate.bottle.internal``, which only its own proxy routes to the gate inside the sidecar.
The upstream is the test's own server (``git_upstream/``) on an internal network; its HTTPS
certificate comes from a throwaway CA the sidecar is told to trust (``upstream_ca_pem``), and the
HTTPS token comes from a host variable (``token_ref``).
"""

from __future__ import annotations

import json
import secrets
import tempfile
import unittest
from pathlib import Path

from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.launch import LaunchOptions
from tests._docker import skip_unless_docker
from tests.integration import _harness as h
from tests.integration.test_git_gate_docker import UPSTREAM_HOST, install_upstream_tls, upstream_image

FAKE_AWS_KEY = "AKIA" + "QZ7RXJ2M4KD8WPLB"  # token-shaped, not a real key


@skip_unless_docker()
class GitGateInABottle(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls._tmp = tempfile.TemporaryDirectory(prefix="bb-gate-bottle-")
        cls.addClassCleanup(cls._tmp.cleanup)
        tmp = Path(cls._tmp.name)
        cls.internet = h.Internet.create()
        cls.addClassCleanup(cls.internet.close)
        cls.token = "tok_" + secrets.token_hex(20)
        name = f"git-upstream-{cls.internet.labels['bot-bottle.id']}"
        engine.run(["create", "--name", name, "--network", cls.internet.network, "--network-alias", UPSTREAM_HOST,
                    *h.label_args(cls.internet.labels), upstream_image()], timeout=60)
        cls.internet.containers[UPSTREAM_HOST] = name
        token_file = tmp / "token"
        token_file.write_text(cls.token + "\n")
        engine.run(["cp", str(token_file), f"{name}:/srv/token"], timeout=60)
        cls.ca = install_upstream_tls(name, tmp)
        engine.run(["start", name], timeout=60)
        h.wait_for(lambda: engine.run(["exec", name, "test", "-e", "/srv/log/ready"], check=False).returncode == 0,
                   "the upstream")
        cls.upstream = name
        host_key = " ".join(engine.run(["exec", name, "cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).stdout.split()[:2])
        key = tmp / "deploy_key"
        key.write_text(engine.run(["exec", name, "cat", "/srv/client/id_ed25519"]).stdout)
        key.chmod(0o600)
        cls.key_line = key.read_text().splitlines()[1]
        bottle = f"""\
---
env:
  ANTHROPIC_API_KEY: ""
egress:
  log: 2
git-gate:
  user: {{name: Bottled Agent, email: agent@bot-bottle.invalid}}
  repos:
    app:
      url: git@{UPSTREAM_HOST}:app.git
      ssh_key: {key}
      known_hosts: "{UPSTREAM_HOST} {host_key}"
    lib:
      url: https://{UPSTREAM_HOST}/lib.git
      token_ref: BB_TEST_LIB_TOKEN
    rogue:
      url: https://{UPSTREAM_HOST}:8443/lib.git
      token_ref: BB_TEST_LIB_TOKEN
---
"""
        cls.layout = h.write_manifests(tmp / "home", bottle=bottle)
        cls.plan = h.plan_for(cls.layout)

    def setUp(self) -> None:
        self.bottle, self.launcher = h.launch(
            self, self.plan, self.layout.state_dir, internet=self.internet,
            options=LaunchOptions(credentials={"BB_TEST_LIB_TOKEN": self.token}, upstream_ca_pem=self.ca.cert.read_text()),
        )

    def git(self, script: str):
        return self.bottle.exec(f"cd /home/node/workspace && {script}")

    def upstream_head(self, repo: str, branch: str = "main") -> str:
        return engine.run(["exec", "-u", "git", self.upstream, "git", "-C", f"/srv/git/{repo}.git",
                           "rev-parse", "--verify", "-q", f"refs/heads/{branch}"], check=False).stdout.strip()

    def test_clone_and_clean_push_through_the_gate_with_real_urls(self) -> None:
        for repo, url in (("app", f"git@{UPSTREAM_HOST}:app.git"), ("lib", f"https://{UPSTREAM_HOST}/lib.git")):
            with self.subTest(repo=repo):
                r = self.git(f"git clone -q {url} {repo} && cd {repo} && git log --oneline | head -n 1")
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                r = self.git(f"cd {repo} && echo change >> README.md && git commit -qam 'clean change' && "
                             "git push -q origin HEAD:main && git rev-parse HEAD")
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertEqual(self.upstream_head(repo), r.stdout.strip().splitlines()[-1])
                author = self.git(f"cd {repo} && git log -1 --format=%an")
                self.assertEqual(author.stdout.strip(), "Bottled Agent")

    def test_https_upstream_got_the_token_over_tls(self) -> None:
        r = self.git(f"git clone -q https://{UPSTREAM_HOST}/lib.git lib")
        self.assertEqual(r.returncode, 0, r.stderr)
        log = [json.loads(line) for line in engine.run(["exec", self.upstream, "cat", "/srv/log/access.log"]).stdout.splitlines()
               if line.startswith("{")]
        http = [e for e in log if e.get("proto") == "http"]
        self.assertTrue(http and all(e["tls"] and e["token"] == "ok" for e in http), http)

    def test_an_untrusted_certificate_fails_closed(self) -> None:
        r = self.git(f"git clone -q https://{UPSTREAM_HOST}:8443/lib.git rogue")
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("upstream rogue unreachable", r.stderr)
        self.assertIn("TLS certificate is not trusted", r.stderr)

    def test_a_push_with_a_secret_is_refused_before_the_upstream(self) -> None:
        r = self.git(f"git clone -q git@{UPSTREAM_HOST}:app.git app")
        self.assertEqual(r.returncode, 0, r.stderr)
        before = self.upstream_head("app")
        r = self.git(f"cd app && echo 'aws_access_key_id = {FAKE_AWS_KEY}' > creds.txt && git add creds.txt && "
                     "git commit -qm 'add config' && git push origin HEAD:main")
        self.assertNotEqual(r.returncode, 0, "a push carrying a cloud key was accepted")
        self.assertIn("creds.txt", r.stderr)
        self.assertNotIn(FAKE_AWS_KEY, r.stdout + r.stderr)
        self.assertEqual(self.upstream_head("app"), before)

    def test_pushing_around_the_gate_fails(self) -> None:
        r = self.git(f"git clone -q git@{UPSTREAM_HOST}:app.git app")
        self.assertEqual(r.returncode, 0, r.stderr)
        before = self.upstream_head("lib")
        attempts = [
            f"git -c url.x.insteadOf=y push http://{UPSTREAM_HOST}/lib.git HEAD:refs/heads/sneaky",
            f"git -c 'url.http://{UPSTREAM_HOST}/.insteadOf=http://elsewhere/' push http://elsewhere/lib.git HEAD:refs/heads/sneaky",
            f"GIT_SSH_COMMAND='ssh -o StrictHostKeyChecking=no' git push ssh://git@{UPSTREAM_HOST}:22/srv/git/lib.git HEAD:refs/heads/sneaky",
            f"curl -sS -m 10 -X POST -H 'content-type: application/x-git-receive-pack-request' "
            f"http://{UPSTREAM_HOST}/lib.git/git-receive-pack --data x; exit 1",
        ]
        for attempt in attempts:
            with self.subTest(attempt=attempt):
                r = self.git(f"cd app && timeout 30 sh -c \"{attempt}\"" if "curl" not in attempt else f"cd app && {attempt}")
                self.assertNotEqual(r.returncode, 0)
        self.assertEqual(self.upstream_head("lib"), before)
        self.assertEqual(self.upstream_head("lib", "sneaky"), "")

    def test_the_agent_cannot_find_the_upstream_credentials(self) -> None:
        for secret in (self.token, self.key_line):
            found = self.bottle.exec(
                f"grep -rlsF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev -- '{secret}' / | head -n 3; "
                f"cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -cF -- '{secret}' || true",
                user="root",
            )
            lines = [line for line in found.stdout.split() if line != "0"]
            self.assertEqual(lines, [], "an upstream credential is visible inside the agent's container")


if __name__ == "__main__":
    unittest.main()
