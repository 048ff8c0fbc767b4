"""A user plugin provider runs a bottle: ``~/.bot-bottle/contrib/echoer/`` through the real CLI.

The plugin is a ``provider.py`` (a ``ProviderInfo`` for a tiny shell "agent" that needs no API)
and a ``Dockerfile`` that adds the script to the built-in agent image. ``bot-bottle start
--headless --prompt`` must build that image, launch the bottle, hand the agent its system prompt,
run the plugin's command with the plugin's headless flags, and stream its output back.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from bot_bottle.backend.docker import engine
from tests._docker import skip_unless_docker
from tests.integration import _harness as h

REPO = Path(__file__).resolve().parents[2]

PROVIDER = """\
from bot_bottle.providers import ProviderInfo

PROVIDER = ProviderInfo(
    template="echoer",
    command="echo-agent",
    api_host="",            # this agent talks to no API: no provider route, no credential
    auth_scheme="bearer",
    auth_header=None,
    default_auth_token="",
    headless_flags=("--task",),
)
"""

DOCKERFILE = """\
ARG BOT_BOTTLE_AGENT_IMAGE
FROM ${BOT_BOTTLE_AGENT_IMAGE}
USER root
COPY echo-agent.sh /usr/local/bin/echo-agent
RUN chmod 755 /usr/local/bin/echo-agent
USER node
"""

AGENT_SCRIPT = """\
#!/bin/sh
# A stand-in agent: report its arguments, who it runs as, and the standing instructions it got.
echo "echo-agent argv: $*"
echo "echo-agent user: $(id -un)"
echo "echo-agent prompt file: $(head -n 1 "$HOME/.bot-bottle/system-prompt.md" 2>/dev/null || echo none)"
"""

BOTTLE = """\
---
agent_provider:
  template: echoer
---
"""


@skip_unless_docker()
class PluginProviderRunsABottle(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix="bb-plugin-")
        self.addCleanup(tmp.cleanup)
        self.home = Path(tmp.name)
        self.marker = "plugin-marker-" + secrets.token_hex(4)
        h.write_manifests(self.home, bottle=BOTTLE, agent=f"---\nbottle: test\n---\n{self.marker}: answer briefly.\n")
        plugin = self.home / ".bot-bottle" / "contrib" / "echoer"
        plugin.mkdir(parents=True)
        (plugin / "provider.py").write_text(PROVIDER)
        (plugin / "Dockerfile").write_text(DOCKERFILE)
        (plugin / "echo-agent.sh").write_text(AGENT_SCRIPT)
        self.env = {**os.environ, "HOME": str(self.home), "PYTHONPATH": str(REPO), "BOT_BOTTLE_INTERNAL_NETWORK": "1"}
        self.addCleanup(lambda: self.cli("cleanup", "--all"))

    def cli(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot_bottle", *args], cwd=self.home, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def test_headless_run_through_the_plugin(self) -> None:
        plan = self.cli("start", "tester", "--dry-run", "--format", "json")
        self.assertEqual(plan.returncode, 0, plan.stderr)
        self.assertIn('"template": "echoer"', plan.stdout)
        self.assertIn("agent-echoer-custom:", plan.stdout)
        image = next(line.split('"')[3] for line in plan.stdout.splitlines() if '"agent": "bot-bottle/agent-echoer' in line)
        existed = engine.run(["image", "inspect", image], check=False, timeout=60).returncode == 0
        if not existed:
            self.addCleanup(lambda: engine.run(["rmi", image], check=False, timeout=120))
        result = self.cli("start", "tester", "--headless", "--prompt", "say hello")
        self.assertEqual(result.returncode, 0, result.stdout[-2000:] + result.stderr[-3000:])
        self.assertIn("echo-agent argv: --task say hello", result.stdout)
        self.assertIn("echo-agent user: node", result.stdout)
        self.assertIn(f"echo-agent prompt file: {self.marker}: answer briefly.", result.stdout)

    def test_a_plugin_that_runs_claude_reads_claudes_files(self) -> None:
        # base_files: the plugin's command is Claude Code's CLI (here a stand-in that shows what
        # Claude Code would read), so it gets Claude Code's prompt file, settings and the
        # supervise server's registration, as the built-in claude template does.
        folder = self.home / ".bot-bottle" / "contrib" / "echoer"
        (folder / "provider.py").write_text(PROVIDER.replace('    headless_flags=("--task",),\n',
                                                             '    headless_flags=("--task",),\n    base_files=True,\n'))
        (folder / "echo-agent.sh").write_text(
            "#!/bin/sh\n"
            'echo "claude prompt: $(head -n 1 "$HOME/.claude/CLAUDE.md" 2>/dev/null || echo none)"\n'
            'echo "claude mode: $(grep -o bypassPermissions "$HOME/.claude/settings.json" 2>/dev/null || echo none)"\n'
            'echo "claude mcp: $(grep -o supervise.bottle.internal "$HOME/.claude.json" 2>/dev/null || echo none)"\n'
            'echo "neutral prompt: $(cat "$HOME/.bot-bottle/system-prompt.md" 2>/dev/null || echo none)"\n'
        )
        plan = self.cli("start", "tester", "--dry-run", "--format", "json")
        self.assertEqual(plan.returncode, 0, plan.stderr)
        image = next(line.split('"')[3] for line in plan.stdout.splitlines() if '"agent": "bot-bottle/agent-echoer' in line)
        if engine.run(["image", "inspect", image], check=False, timeout=60).returncode != 0:
            self.addCleanup(lambda: engine.run(["rmi", image], check=False, timeout=120))
        result = self.cli("start", "tester", "--headless", "--prompt", "say hello")
        self.assertEqual(result.returncode, 0, result.stdout[-2000:] + result.stderr[-3000:])
        self.assertIn(f"claude prompt: {self.marker}: answer briefly.", result.stdout)
        self.assertIn("claude mode: bypassPermissions", result.stdout)
        self.assertIn("claude mcp: supervise.bottle.internal", result.stdout)
        self.assertIn("neutral prompt: none", result.stdout)

    def test_a_broken_plugin_is_a_clear_error(self) -> None:
        (self.home / ".bot-bottle" / "contrib" / "echoer" / "provider.py").write_text("PROVIDER = ProviderInfo(\n")
        result = self.cli("start", "tester", "--dry-run")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("contrib/echoer/provider.py:1: syntax error", result.stderr)
        self.assertNotIn("Traceback", result.stderr)


if __name__ == "__main__":
    unittest.main()
