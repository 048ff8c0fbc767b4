"""The real agent CLIs (Claude Code, Codex, pi) inside a bottle, against fake APIs we run ourselves.

The fake APIs play the real API hosts (api.anthropic.com, api.openai.com) on an internal
network, over HTTPS with a test CA the sidecar trusts. They record the credential each request
carried: the proxy must have swapped the agent's placeholder for the real token, and the real
token must be nowhere inside the agent's container.
"""

from __future__ import annotations

import json
import secrets
import tempfile
import unittest
from pathlib import Path

from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.launch import LaunchOptions
from bot_bottle.lifecycle import PLACEHOLDER
from tests._docker import skip_unless_docker
from bot_bottle.demo import tls
from tests.integration import _harness as h

PROMPT_MARKER = "PROMPTMARK" + secrets.token_hex(4)
SKILL_MARKER = "SKILLMARK" + secrets.token_hex(4)


def _records(container: str) -> list[dict]:
    out = []
    for line in engine.run(["logs", container], timeout=30).stdout.splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def _decisions(sidecar: str) -> list[dict]:
    out = []
    for line in engine.run(["logs", sidecar], timeout=30).stdout.splitlines():
        if line.startswith("{") and '"decision"' in line:
            out.append(json.loads(line))
    return out


class _RealAgent(unittest.TestCase):
    template = "claude"
    api_host = "api.anthropic.com"
    token_var = "REAL_PROVIDER_TOKEN"
    placeholder_var = "ANTHROPIC_API_KEY"

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix="bb-agent-")
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)
        self.ca = tls.make_ca(self.tmp)
        cert, key = self.ca.issue(self.tmp, "api", [self.api_host])
        self.internet = h.Internet.create()
        self.addCleanup(self.internet.close)
        self.fake = self.internet.add_fake_api(self.api_host, cert, key, markers=(PROMPT_MARKER, SKILL_MARKER))
        bottle = (
            "---\negress:\n  log: 2\n"
            f"agent_provider:\n  template: {self.template}\n  auth_token: {self.token_var}\n---\n"
        )
        agent = f"---\nbottle: test\n---\nAlways mention {PROMPT_MARKER} when you answer.\n"
        self.layout = h.write_manifests(self.tmp / "home", bottle=bottle, agent=agent)
        self.plan = h.plan_for(self.layout)
        skill = self.tmp / "skills" / "marker-skill"
        skill.mkdir(parents=True)
        (skill / "SKILL.md").write_text(
            f"---\nname: marker-skill\ndescription: Use when asked about {SKILL_MARKER}.\n---\nSay {SKILL_MARKER}.\n"
        )
        self.token = self.make_token()
        self.bottle, self.launcher = h.launch(
            self, self.plan, self.layout.state_dir, internet=self.internet,
            env={self.placeholder_var: PLACEHOLDER},
            options=LaunchOptions(
                credentials={self.token_var: self.token},
                system_prompt=f"Always mention {PROMPT_MARKER} when you answer.",
                skills=(("marker-skill", skill),),
                upstream_ca_pem=self.ca.cert.read_text(),
            ),
        )

    def make_token(self) -> str:
        if self.api_host == "api.anthropic.com":
            return "sk-ant-api03-" + secrets.token_urlsafe(40)
        return "sk-proj-" + secrets.token_urlsafe(40)

    def run_agent(self) -> str:
        raise NotImplementedError

    def check(self) -> None:
        answer = self.run_agent()
        self.assertIn("Hello from the fake model.", answer)
        records = [r for r in _records(self.fake) if r["method"] == "POST"]
        self.assertTrue(records, "the fake API received no request")
        model_calls = [r for r in records if r["path"].split("?")[0].endswith(("/messages", "/responses"))]
        self.assertTrue(model_calls, f"no model call among {[r['path'] for r in records]}")
        for record in model_calls:
            sent = record["x-api-key"] if record["x-api-key"] else (record["authorization"] or "").removeprefix("Bearer ")
            self.assertEqual(sent, self.token, "the upstream did not receive the real token")
            self.assertNotIn(PLACEHOLDER, json.dumps(record))
        self.assertTrue(any(PROMPT_MARKER in r["markers"] for r in model_calls), "the system prompt never reached the model")
        # The real token exists nowhere in the agent's container: not in its environment, not in a file.
        env = self.bottle.exec("cat /proc/1/environ /proc/self/environ | tr '\\0' '\\n'", user="root")
        self.assertNotIn(self.token, env.stdout)
        found = self.bottle.exec(
            f"grep -rlsF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev '{self.token}' / | head -n 5",
            user="root",
        )
        self.assertEqual(found.stdout.strip(), "", f"the real token is in: {found.stdout}")


@skip_unless_docker()
class ClaudeCodeInABottle(_RealAgent):
    def run_agent(self) -> str:
        r = self.bottle.exec("cd /home/node/workspace && timeout 180 claude -p 'say hello' < /dev/null")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def test_claude_answers_through_the_proxy_with_the_injected_token(self) -> None:
        self.check()
        records = _records(self.fake)
        self.assertTrue(any(SKILL_MARKER in r["markers"] for r in records), "the skill was not visible to claude")


@skip_unless_docker()
class ClaudeCodeWithAnOAuthToken(_RealAgent):
    """A Claude Pro/Max OAuth token: the proxy sends it as a bearer token with the OAuth beta flag."""

    def make_token(self) -> str:
        return "sk-ant-oat01-" + secrets.token_urlsafe(60)

    def run_agent(self) -> str:
        r = self.bottle.exec("cd /home/node/workspace && timeout 180 claude -p 'say hello' < /dev/null")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def test_oauth_token_is_injected_as_bearer_with_the_beta_flag(self) -> None:
        self.check()
        calls = [r for r in _records(self.fake) if r["path"].split("?")[0].endswith("/messages")]
        for record in calls:
            self.assertEqual(record["authorization"], f"Bearer {self.token}")
            self.assertIsNone(record["x-api-key"], "an OAuth token must not go out as x-api-key")
            self.assertIn("oauth-2025-04-20", (record["anthropic-beta"] or "").split(","))
        # The agent itself runs on the placeholder, as with an API key.
        self.assertEqual(self.bottle.exec("printenv ANTHROPIC_API_KEY").stdout.strip(), PLACEHOLDER)


@skip_unless_docker()
class CodexInABottle(_RealAgent):
    template = "codex"
    api_host = "api.openai.com"
    placeholder_var = "OPENAI_API_KEY"

    def run_agent(self) -> str:
        r = self.bottle.exec("cd /home/node/workspace && timeout 180 codex exec --skip-git-repo-check 'say hello' < /dev/null")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def test_codex_answers_and_its_other_calls_are_refused_and_logged(self) -> None:
        self.check()
        denied = {d["host"] for d in _decisions(self.launcher.names.sidecar_container) if d["decision"] == "deny"}
        allowed = {d["host"] for d in _decisions(self.launcher.names.sidecar_container) if d["decision"] == "allow"}
        # The model API, and the supervise MCP server codex is registered with (through its proxy).
        self.assertEqual(allowed, {"api.openai.com", "supervise.bottle.internal"})
        self.assertTrue(denied, "codex made no other call; the allowlist decided nothing")


@skip_unless_docker()
class PiInABottle(_RealAgent):
    template = "pi"

    def run_agent(self) -> str:
        r = self.bottle.exec("cd /home/node/workspace && timeout 180 pi -p 'say hello' < /dev/null")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def test_pi_answers_through_the_proxy_with_the_injected_token(self) -> None:
        version = self.bottle.exec("pi --version 2>&1")  # pi prints its version on stderr
        self.assertEqual(version.returncode, 0, version.stdout)
        self.assertIn("0.73.1", version.stdout.splitlines())
        self.check()


if __name__ == "__main__":
    unittest.main()
