"""``bot-bottle demo``: a real bottle, a scripted agent, and each protection shown working.

The demo's "internet" is servers it runs itself, in its own containers on its own network
(``allowed.example`` and ``evil.example``); nothing leaves this machine. Its manifests live in a
throwaway HOME, so the user's own ~/.bot-bottle is never touched.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bot_bottle import images, lifecycle, plan as plan_mod, proc
from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.bottle import DockerBottle
from bot_bottle.backend.docker.launch import DockerLauncher, LaunchOptions
from bot_bottle.backend.docker.names import LABEL_ID, LABEL_OWNER, LABEL_ROLE, label_args, new_id
from bot_bottle.manifest import Layout, load

HERE = Path(__file__).resolve().parent

DEMO_BOTTLE = """\
---
description: The demo bottle. Only allowed.example is reachable.
env:
  DEMO_MODE: "scripted"
egress:
  log: 2
  routes:
    - host: allowed.example
      ports: [80, 443]
---
"""

DEMO_AGENT = """\
---
bottle: demo
description: A scripted agent that tries to get out.
color: magenta
---
You are the demo agent.
"""


@dataclass(frozen=True)
class Outcome:
    attempt: str
    expected: str
    observed: str
    held: bool


def _start_upstream(network: str, alias: str, image: str, labels: dict[str, str]) -> str:
    name = f"{alias.replace('.', '-')}-{labels[LABEL_ID]}"
    engine.run(
        [
            "create", "--name", name, "--network", network, "--network-alias", alias,
            "--env", f"UPSTREAM_NAME={alias}", "--entrypoint", "python3",
            *label_args(labels), image, "/srv/upstream.py", "80",
        ],
        timeout=60,
    )
    engine.run(["cp", str(HERE / "upstream.py"), f"{name}:/srv/upstream.py"], timeout=60)
    engine.run(["start", name], timeout=60)
    return name


def _hits(container: str) -> list[dict]:
    logs = engine.run(["logs", container], timeout=30, check=False).stdout
    out = []
    for line in logs.splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


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
    out.append(Outcome("requests that reached evil.example", "none", str(evil_hits), evil_hits == 0))
    return out


def run(console: Console, *, progress: Callable[[str], None] | None = None) -> int:
    say = progress or (lambda message: console.print(Text(f"• {message}", style="dim")))
    demo_id = new_id()
    owner = proc.identity()
    labels = {LABEL_ID: f"demo{demo_id}", LABEL_OWNER: owner, LABEL_ROLE: "demo"}
    created: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="bot-bottle-demo-") as tmp:
        home = Path(tmp)
        (home / ".bot-bottle" / "bottles").mkdir(parents=True)
        (home / ".bot-bottle" / "agents").mkdir(parents=True)
        (home / ".bot-bottle" / "bottles" / "demo.md").write_text(DEMO_BOTTLE)
        (home / ".bot-bottle" / "agents" / "demo-agent.md").write_text(DEMO_AGENT)
        layout = Layout(home=home, cwd=home)
        manifest = load("demo-agent", layout)
        from bot_bottle.cli.common import docker_runtime

        runtime, note = docker_runtime()
        plan = plan_mod.resolve(manifest, backend="docker", runtime=runtime, runtime_note=note,
                                label="demo", environ={})
        say(f"agent runtime: {runtime} ({note})")
        say("building images when missing (the first run takes a few minutes)")
        sidecar_ref = images.ensure_image(images.sidecar_image())
        images.ensure_image(images.agent_image(plan.template, plan.agent_dockerfile))

        network = f"bot-bottle-demo{demo_id}-internet"
        results: dict[str, tuple[int, str]] = {}
        decisions: list[str] = []
        evil = ""
        try:
            say("starting the demo's own internet: allowed.example and evil.example")
            created.append(["network", "rm", network])
            engine.run(["network", "create", "--internal", *label_args(labels), network], timeout=60)
            allowed = _start_upstream(network, "allowed.example", sidecar_ref, labels)
            created.insert(0, ["rm", "-f", allowed])
            evil = _start_upstream(network, "evil.example", sidecar_ref, labels)
            created.insert(0, ["rm", "-f", evil])
            evil_ip = engine.run(
                ["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", evil], timeout=30
            ).stdout.strip()

            def scripted(bottle: DockerBottle, launcher: DockerLauncher) -> None:
                say(f"bottle {launcher.names.id} is up; running the scripted agent inside it")
                bottle.cp_in(HERE / "agent.sh", "/home/node/demo-agent.sh")
                result = bottle.exec(f"sh /home/node/demo-agent.sh {evil_ip}")
                results.update(_parse(result.stdout))
                logs = engine.run(["logs", launcher.names.sidecar_container], timeout=30, check=False)
                decisions.extend(line for line in (logs.stdout + logs.stderr).splitlines() if '"decision"' in line)

            say("launching the bottle: sidecar proxy, then the agent with no network")
            lifecycle.run_bottle(
                manifest,
                plan,
                state_root=home / ".bot-bottle" / "state",
                environ={"ANTHROPIC_API_KEY": "demo-placeholder-not-a-real-key"},
                prompt_fn=None,
                tty=False,
                options=LaunchOptions(extra_networks=(network,), internal_network=True),
                progress=say,
                on_launched=scripted,
                command=["true"],
            )
            evil_hits = len(_hits(evil))
        finally:
            for args in created:
                engine.run(args, timeout=60, check=False)

    outcomes = evaluate(results, evil_hits)
    table = Table(title="What the bottle did", title_justify="left", show_lines=True)
    table.add_column("the agent tried")
    table.add_column("expected")
    table.add_column("observed", overflow="fold")
    table.add_column("")
    for o in outcomes:
        table.add_row(o.attempt, o.expected, o.observed, Text("held", style="green") if o.held else Text("FAILED", style="bold red"))
    console.print(table)
    if decisions:
        console.print(Text("proxy decisions (JSON lines from the sidecar):", style="bold"))
        for line in decisions[-10:]:
            console.print(Text(line, style="dim"))
    ok = all(o.held for o in outcomes)
    console.print(Text("every protection held" if ok else "a protection FAILED", style="bold green" if ok else "bold red"))
    return 0 if ok else 1
