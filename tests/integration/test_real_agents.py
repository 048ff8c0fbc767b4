"""The real agent CLIs (Claude Code, Codex, pi) inside a bottle, against fake APIs we run ourselves.

The fake APIs play the real API hosts (api.anthropic.com, api.openai.com) on an internal
network, over HTTPS with a test CA the sidecar trusts. They record the credential each request
carried: the proxy must have swapped the agent's placeholder for the real token, and the real
token must be nowhere inside the agent's container.

Each CLI runs the way the product runs it: headless with the provider's own headless flags, and
interactively on a terminal (a pseudo-terminal here) with the files the bottle wrote. Neither may
call a host the proxy refuses, and the interactive one must come up at its input prompt, not at
a first-run question.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import secrets
import select
import shlex
import signal
import struct
import sys
import tempfile
import termios
import time
import unittest
from collections.abc import Sequence
from pathlib import Path

from bot_bottle import lifecycle
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


def _denied(sidecar: str) -> list[str]:
    return [f"{d.get('method')} {d.get('host')}{d.get('path') or ''}"
            for d in _decisions(sidecar) if d["decision"] == "deny"]


# Escape sequences a terminal UI writes: CSI (colours, cursor moves), OSC (titles), and the rest.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]")


def _squeezed(text: str) -> str:
    """``text`` without its whitespace: a TUI moves the cursor where a space would be."""
    return "".join(text.split())


# The agent's exec client relayed as `bot-bottle start` relays it (``pty_relay``, the terminal
# filter included); SIGTERM ends it the way a closing test does, and the relay names what it held.
RELAYED = """\
import signal, sys
from bot_bottle import pty_relay
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
relay = pty_relay.Relay(sys.argv[1:])
proc = relay.start()
try:
    proc.wait()
finally:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    relay.close()
"""


def run_on_a_terminal(argv: list[str], *, ready: str, timeout: float = 90, settle: float = 8) -> tuple[bool, str]:
    """Run ``argv`` on a pseudo-terminal (140x40), relayed as ``bot-bottle start`` relays the
    agent, until its output shows ``ready`` and then for ``settle`` seconds more (a question or a
    call may come right after the first screen), or until ``timeout``; then end it. Returns
    whether ``ready`` was seen, and everything it showed as plain text (escape sequences removed),
    the relay's own last line included."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the relay of the agent's docker exec client, on the terminal
        os.environ["TERM"] = "xterm-256color"
        os.environ["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))  # before the relay reads it
        try:
            os.execv(sys.executable, [sys.executable, "-c", RELAYED, *argv])
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    raw = b""
    seen_at: float | None = None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < min(deadline, (seen_at or deadline) + settle):
            readable, _, _ = select.select([fd], [], [], 0.2)
            if readable:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # the client ended: the terminal is gone
                    break
                if not chunk:
                    break
                raw += chunk
            if seen_at is None and _squeezed(ready) in _squeezed(_ESCAPES.sub("", raw.decode("utf-8", "replace"))):
                seen_at = time.monotonic()
    finally:
        raw += _ended(pid, fd)
        os.close(fd)
    return seen_at is not None, _ESCAPES.sub("", raw.decode("utf-8", "replace"))


def _ended(pid: int, fd: int) -> bytes:
    """End the relay (SIGTERM, then SIGKILL after a few seconds); what it showed meanwhile. The
    agent itself goes with its bottle at cleanup."""
    raw = b""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.waitpid(pid, os.WNOHANG) == (0, 0):
        readable, _, _ = select.select([fd], [], [], 0.2)
        if readable:
            try:
                raw += os.read(fd, 65536)
            except OSError:
                break
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
    return raw


class _RealAgent(unittest.TestCase):
    template = "claude"
    api_host = "api.anthropic.com"
    token_var = "REAL_PROVIDER_TOKEN"
    placeholder_var = "ANTHROPIC_API_KEY"
    stderr = ""  # the headless run's, once run_agent ran

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
        """The agent run headless as ``bot-bottle start --headless`` runs it (the provider's own
        flags), outside a git repository, in the workspace. Returns its stdout; its stderr is
        kept in ``self.stderr``."""
        argv = [self.plan.agent_command, *lifecycle.headless_args(self.plan, "say hello")]
        r = self.bottle.exec(f"cd /home/node/workspace && timeout 180 {shlex.join(argv)} < /dev/null")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.stderr = r.stderr
        return r.stdout

    def assert_nothing_refused(self, known: Sequence[str] = ()) -> None:
        """The CLI called no host the bottle does not allow: each would be a denial in the log
        at every start (update checks, telemetry, downloads) and an error in its session.
        ``known``: refusals the CLI has no setting against (the README names them)."""
        refused = [d for d in _denied(self.launcher.names.sidecar_container) if d not in known]
        self.assertEqual(refused, [])

    def on_a_terminal(self, ready: str) -> tuple[bool, str]:
        """The agent CLI started interactively (``bot-bottle start``'s argv, on a terminal)."""
        return run_on_a_terminal(self.bottle.agent_argv([], tty=True), ready=ready)

    def assert_starts_clean(self, ready: str, unwanted: Sequence[str], what: str,
                            known_refusals: Sequence[str] = ()) -> None:
        """Started on a terminal, the agent CLI shows ``ready`` and none of ``unwanted`` (first-run
        questions, warnings), and calls no host the bottle refuses."""
        shown, screen = self.on_a_terminal(ready=ready)
        for text in unwanted:
            self.assertNotIn(_squeezed(text), _squeezed(screen), f"{what} showed {text!r}:\n{screen[-3000:]}")
        self.assertTrue(shown, f"{what} never showed {ready!r}:\n{screen[-3000:]}")
        # Nothing the CLI prints at its start is held back by the terminal filter.
        self.assertNotIn("held back", screen, f"{what}'s start lost sequences to the filter:\n{screen[-600:]}")
        self.assert_nothing_refused(known_refusals)

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


# What Claude Code 2.1.330 asks on its first interactive start unless its state says it was
# answered: each one's default answer breaks the bottle (exits, logs out, or leaves bypass mode).
CLAUDE_FIRST_RUN_QUESTIONS = (
    "Quick safety check",
    "Yes, I trust this folder",
    "Detected a custom API key",
    "Make auto mode your default permission mode",
    "Not logged in",
    "Auto-update failed",
)


@skip_unless_docker()
class ClaudeCodeInABottle(_RealAgent):
    def test_claude_answers_through_the_proxy_with_the_injected_token(self) -> None:
        self.check()
        records = _records(self.fake)
        self.assertTrue(any(SKILL_MARKER in r["markers"] for r in records), "the skill was not visible to claude")
        self.assert_nothing_refused()

    def test_interactive_claude_starts_at_its_prompt_with_no_question(self) -> None:
        # The status line under the input box; a first-run question takes the screen instead.
        self.assert_starts_clean("bypass permissions on", CLAUDE_FIRST_RUN_QUESTIONS, "claude")


@skip_unless_docker()
class ClaudeCodeWithAnOAuthToken(_RealAgent):
    """A Claude Pro/Max OAuth token: the proxy sends it as a bearer token with the OAuth beta flag."""

    def make_token(self) -> str:
        return "sk-ant-oat01-" + secrets.token_urlsafe(60)

    def test_oauth_token_is_injected_as_bearer_with_the_beta_flag(self) -> None:
        self.check()
        calls = [r for r in _records(self.fake) if r["path"].split("?")[0].endswith("/messages")]
        for record in calls:
            self.assertEqual(record["authorization"], f"Bearer {self.token}")
            self.assertIsNone(record["x-api-key"], "an OAuth token must not go out as x-api-key")
            self.assertIn("oauth-2025-04-20", (record["anthropic-beta"] or "").split(","))
        # The agent itself runs on the placeholder, as with an API key.
        self.assertEqual(self.bottle.exec("printenv ANTHROPIC_API_KEY").stdout.strip(), PLACEHOLDER)


# What Codex 0.169 shows on an interactive start instead of its input box, or over it, when its
# config leaves it to ask: sign-in, the folder's trust, its update notice.
CODEX_FIRST_RUN_QUESTIONS = (
    "Sign in with ChatGPT",
    "Do you trust",
    "Update available",
    "Welcome to Codex",
)


@skip_unless_docker()
class CodexInABottle(_RealAgent):
    template = "codex"
    api_host = "api.openai.com"
    placeholder_var = "OPENAI_API_KEY"

    def test_codex_answers_and_calls_nothing_else(self) -> None:
        self.check()
        allowed = {d["host"] for d in _decisions(self.launcher.names.sidecar_container) if d["decision"] == "allow"}
        # The model API, and the supervise MCP server codex is registered with (through its proxy).
        self.assertEqual(allowed, {"api.openai.com", "supervise.bottle.internal"})
        # Its update check, analytics and plugin catalogue are off in its config.
        self.assert_nothing_refused()

    def test_interactive_codex_starts_at_its_prompt_with_no_question(self) -> None:
        # Its input box; a sign-in screen, a trust question or an update notice would come first.
        # Its status reports (OSC 7501) are held quietly: no "held back" line at its end.
        # Its announcement tip is fetched at every interactive start, with no setting against it.
        self.assert_starts_clean("Ask Codex to do anything", CODEX_FIRST_RUN_QUESTIONS, "codex",
                                 known_refusals=("CONNECT raw.githubusercontent.com",))


# What pi 0.73.1 printed over its own screen in a bottle: Node's warning about the experimental
# proxy agent, a retired pinned model, and its attempts to download the tools its grep and find
# tools run.
PI_NOISE = ("UNDICI-EHPA", "deprecated", "not found. Downloading", "Failed to download")


@skip_unless_docker()
class PiInABottle(_RealAgent):
    template = "pi"

    def test_pi_answers_through_the_proxy_with_the_injected_token(self) -> None:
        version = self.bottle.exec("pi --version 2>&1")  # pi prints its version on stderr
        self.assertEqual(version.returncode, 0, version.stdout)
        self.assertIn("0.73.1", version.stdout.splitlines())
        self.check()
        for noise in PI_NOISE:
            self.assertNotIn(noise, self.stderr)
        self.assert_nothing_refused()

    def test_the_image_has_the_tools_pis_grep_and_find_run(self) -> None:
        found = self.bottle.exec("command -v rg && command -v fdfind && rg --version && fdfind --version")
        self.assertEqual(found.returncode, 0, found.stdout + found.stderr)

    def test_interactive_pi_starts_quietly(self) -> None:
        # pi's footer shows the model it picked (Anthropic's default: no model is pinned).
        self.assert_starts_clean("claude-opus-4-7", PI_NOISE, "pi")


if __name__ == "__main__":
    unittest.main()
