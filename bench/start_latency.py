"""Bottle start and teardown latency against the floor of a bare ``docker run`` + ``docker exec``.

Run: ``.venv/bin/python bench/start_latency.py [--runs N]`` (images are built first, untimed).
Writes ``bench/results/start_latency.json`` and ``.png``. Targets: start within 2.5x the floor,
teardown under 1 s, idle sidecar under 80 MB. Bottles run on runc, as the floor does. The bottle
is measured as users get it (the supervise plane on) and, interleaved in the same run, without
the supervise plane (``supervise: false``). The sidecar starts its supervise MCP server on the
first connection to it: the bench then makes the call an agent's MCP client makes at its start
(``initialize``) and reports how long it took and the sidecar's memory with the server running.
The sidecar is ready while its proxy may still be loading (a connection made meanwhile waits for
it), so the bench also reports when the bottle's first request through the proxy was answered,
counted from the launch's start.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import bar_plot, median, timed, write_results  # noqa: E402
from bot_bottle import images  # noqa: E402
from bot_bottle.backend.docker import engine  # noqa: E402
from bot_bottle.backend.docker.launch import DockerLauncher, LaunchOptions  # noqa: E402
from bot_bottle.manifest import Layout, load  # noqa: E402
from bot_bottle.plan import resolve  # noqa: E402

BOTTLE = "---\negress:\n  routes:\n    - host: allowed.example\n---\n"
LEAN_BOTTLE = "---\nextends: bench\nsupervise: false\n---\n"
AGENT = "---\nbottle: bench\n---\n"
LEAN_AGENT = "---\nbottle: bench-lean\n---\n"


def _mem_bytes(text: str) -> float:
    value = text.split("/")[0].strip()
    units = {"KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "kB": 1000, "MB": 1000**2, "GB": 1000**3, "B": 1}
    for unit, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    return float("nan")


def floor_run(image: str) -> tuple[float, float]:
    name = f"bb-bench-floor-{time.monotonic_ns()}"

    def up() -> None:
        engine.run(["run", "-d", "--name", name, "--network", "none", "--label", "bot-bottle.bench=1",
                    "--entrypoint", "sleep", image, "infinity"], timeout=120)
        engine.run(["exec", name, "true"], timeout=60)

    start, _ = timed(up)
    stop, _ = timed(lambda: engine.run(["rm", "-f", name], timeout=60))
    return start, stop


# What an agent's MCP client sends first: the sidecar starts its supervise server on it.
MCP_INITIALIZE = ("curl -sS -m 60 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' "
                  "-H 'Accept: application/json, text/event-stream' -d '{\"jsonrpc\": \"2.0\", \"id\": 1, "
                  "\"method\": \"initialize\", \"params\": {\"protocolVersion\": \"2025-06-18\", "
                  "\"capabilities\": {}, \"clientInfo\": {\"name\": \"bench\", \"version\": \"1\"}}}' "
                  "http://supervise.bottle.internal/mcp")


def sidecar_memory(name: str) -> float:
    stats = engine.run(["stats", "--no-stream", "--format", "{{.MemUsage}}", name], timeout=60)
    return _mem_bytes(stats.stdout)


# The agent's first request through its proxy, to a host no route allows: the proxy's own 403.
FIRST_REQUEST = "curl -sS -m 60 -o /dev/null -w '%{http_code}' http://not-allowed.example/"


def bottle_run(plan, state_root: Path) -> tuple[float, float, float, float | None, float | None, float]:
    launcher = DockerLauncher(plan, LaunchOptions(internal_network=True,
                                                  credentials={n: "bench" for n in plan.credential_refs}), state_root)
    began = time.perf_counter()

    def up():
        bottle = launcher.launch()
        result = bottle.exec("true")
        assert result.ok, result.stderr
        return bottle

    start, bottle = timed(up)
    # The sidecar is ready while its proxy may still load (a connection waits for it): how long
    # from the launch's start until a request is answered by the proxy, the exec's own cost included.
    answer = bottle.exec(FIRST_REQUEST)
    assert answer.stdout.strip() == "403", answer.stdout + answer.stderr
    first_answer = time.perf_counter() - began
    time.sleep(2)  # let the sidecar settle before reading its idle memory
    memory = sidecar_memory(launcher.names.sidecar_container)
    first_call = running = None
    if plan.supervise:
        # As Claude Code or Codex do at their start: the supervise server starts on this call.
        first_call, result = timed(lambda: bottle.exec(MCP_INITIALIZE))
        assert result.stdout.strip() == "200", result.stdout + result.stderr
        time.sleep(2)
        running = sidecar_memory(launcher.names.sidecar_container)
    stop, _ = timed(bottle.close)
    return start, stop, memory, first_call, running, first_answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bb-bench-") as tmp:
        home = Path(tmp)
        (home / ".bot-bottle/bottles").mkdir(parents=True)
        (home / ".bot-bottle/agents").mkdir(parents=True)
        (home / ".bot-bottle/bottles/bench.md").write_text(BOTTLE)
        (home / ".bot-bottle/bottles/bench-lean.md").write_text(LEAN_BOTTLE)
        (home / ".bot-bottle/agents/bench.md").write_text(AGENT)
        (home / ".bot-bottle/agents/bench-lean.md").write_text(LEAN_AGENT)
        plan = resolve(load("bench", Layout(home=home, cwd=home)), backend="docker", runtime="runc", environ={})
        lean = resolve(load("bench-lean", Layout(home=home, cwd=home)), backend="docker", runtime="runc", environ={})
        assert plan.supervise and not lean.supervise
        agent_image = images.ensure_image(images.agent_image(plan.template))
        images.ensure_image(images.sidecar_image())
        floor_start, floor_stop, b_start, b_stop, mem = [], [], [], [], []
        lean_start, lean_mem, first_call, mem_running, first_answer = [], [], [], [], []
        # Interleave so both see the same machine load.
        for _ in range(args.runs):
            s, t = floor_run(agent_image)
            floor_start.append(s)
            floor_stop.append(t)
            s, t, m, call, running, answered = bottle_run(plan, home / ".bot-bottle/state")
            first_answer.append(answered)
            b_start.append(s)
            b_stop.append(t)
            mem.append(m)
            first_call.append(call)
            mem_running.append(running)
            s, _, m, _, _, _ = bottle_run(lean, home / ".bot-bottle/state")
            lean_start.append(s)
            lean_mem.append(m)
    result = {
        "runs": args.runs,
        "floor_start_s": floor_start,
        "floor_teardown_s": floor_stop,
        "bottle_start_s": b_start,
        "bottle_teardown_s": b_stop,
        "bottle_first_proxied_answer_s": first_answer,
        "sidecar_idle_bytes": mem,
        "bottle_start_no_supervise_s": lean_start,
        "sidecar_idle_no_supervise_bytes": lean_mem,
        "first_supervise_call_s": first_call,
        "sidecar_supervise_running_bytes": mem_running,
        "median": {
            "floor_start_s": median(floor_start),
            "bottle_start_s": median(b_start),
            "start_ratio": median(b_start) / median(floor_start),
            "bottle_teardown_s": median(b_stop),
            "bottle_first_proxied_answer_s": median(first_answer),
            "sidecar_idle_mb": median(mem) / 1024**2,
            "bottle_start_no_supervise_s": median(lean_start),
            "sidecar_idle_no_supervise_mb": median(lean_mem) / 1024**2,
            "first_supervise_call_s": median(first_call),
            "sidecar_supervise_running_mb": median(mem_running) / 1024**2,
        },
        "targets": {"start_ratio_max": 2.5, "teardown_s_max": 1.0, "sidecar_idle_mb_max": 80},
    }
    med = result["median"]
    path = write_results("start_latency", result)
    bar_plot("start_latency", "Bottle start vs bare docker run + exec (median)",
             ["floor start", "bottle start", "first proxied answer", "bottle teardown"],
             [med["floor_start_s"], med["bottle_start_s"], med["bottle_first_proxied_answer_s"],
              med["bottle_teardown_s"]], "s")
    print(f"floor start {med['floor_start_s']:.2f} s, bottle start {med['bottle_start_s']:.2f} s "
          f"(x{med['start_ratio']:.2f}), first answer through the proxy "
          f"{med['bottle_first_proxied_answer_s']:.2f} s, teardown {med['bottle_teardown_s']:.2f} s, "
          f"sidecar idle {med['sidecar_idle_mb']:.1f} MB; without supervise: start "
          f"{med['bottle_start_no_supervise_s']:.2f} s, sidecar idle {med['sidecar_idle_no_supervise_mb']:.1f} MB; "
          f"first supervise call {med['first_supervise_call_s']:.2f} s, then sidecar "
          f"{med['sidecar_supervise_running_mb']:.1f} MB -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
