"""Shared pieces for integration tests: throwaway manifests, a private "internet", bottles.

The "internet" is a bridge network this harness creates, with upstream servers in containers it
starts itself under names like ``allowed.example`` and ``evil.example``. Nothing here talks to
any address it did not create.
"""

from __future__ import annotations

import json
import tempfile
import unittest
from dataclasses import dataclass, field
from pathlib import Path

from bot_bottle import images
from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.bottle import DockerBottle
from bot_bottle.backend.docker.launch import DockerLauncher, LaunchOptions
from bot_bottle.backend.docker.names import LABEL_ID, LABEL_OWNER, label_args, new_id
from bot_bottle import proc
from bot_bottle.manifest import Layout, load
from bot_bottle.plan import BottlePlan, resolve

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = REPO / "bot_bottle" / "demo" / "upstream.py"

# No provider credential: a headless claude exits at once (non-zero) instead of retrying.
NO_CREDENTIAL_BOTTLE = """\
---
env:
  ANTHROPIC_API_KEY: ""
egress:
  routes:
    - host: allowed.example
      ports: [80]
---
"""

DEFAULT_BOTTLE = """\
---
env:
  PLAIN_SETTING: visible-value
  HOST_SECRET: "${BB_TEST_HOST_SECRET}"
egress:
  log: 2
  routes:
    - host: allowed.example
      ports: [80]
---
"""
DEFAULT_AGENT = "---\nbottle: test\n---\nYou are a test agent.\n"


def write_manifests(home: Path, bottle: str = DEFAULT_BOTTLE, agent: str = DEFAULT_AGENT) -> Layout:
    (home / ".bot-bottle" / "bottles").mkdir(parents=True, exist_ok=True)
    (home / ".bot-bottle" / "agents").mkdir(parents=True, exist_ok=True)
    (home / ".bot-bottle" / "bottles" / "test.md").write_text(bottle)
    (home / ".bot-bottle" / "agents" / "tester.md").write_text(agent)
    return Layout(home=home, cwd=home)


def plan_for(layout: Layout, agent: str = "tester", *, label: str | None = None) -> BottlePlan:
    """The plan as `start` would make it, with the runtime the engine offers (gVisor when registered)."""
    from bot_bottle.cli.common import docker_runtime

    manifest = load(agent, layout)
    runtime, note = docker_runtime()
    return resolve(manifest, backend="docker", runtime=runtime, runtime_note=note, label=label, environ={})


@dataclass
class Internet:
    """A bridge network with upstream servers; call ``close()`` (tests use addCleanup)."""

    network: str
    labels: dict[str, str]
    containers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, *hosts: str) -> Internet:
        tag = new_id()
        labels = {LABEL_ID: f"test{tag}", LABEL_OWNER: proc.identity()}
        net = cls(network=f"bb-test-{tag}-internet", labels=labels)
        # Internal: the test's "internet" has no route to the real one.
        engine.run(["network", "create", "--internal", *label_args(labels), net.network], timeout=60)
        try:
            image = images.ensure_image(images.sidecar_image())
            for host in hosts:
                net.add_upstream(host, image)
        except BaseException:
            net.close()
            raise
        return net

    def add_upstream(self, host: str, image: str) -> str:
        name = f"{host.replace('.', '-')}-{self.labels[LABEL_ID]}"
        engine.run(
            ["create", "--name", name, "--network", self.network, "--network-alias", host,
             "--env", f"UPSTREAM_NAME={host}", "--entrypoint", "python3", *label_args(self.labels),
             image, "/srv/upstream.py", "80"],
            timeout=60,
        )
        self.containers[host] = name
        engine.run(["cp", str(UPSTREAM), f"{name}:/srv/upstream.py"], timeout=60)
        engine.run(["start", name], timeout=60)
        return name

    def add_fake_api(self, host: str, cert: Path, key: Path, *, markers: tuple[str, ...] = ()) -> str:
        """A fake LLM API (bot_bottle/demo/fake_api.py) over HTTPS under ``host``; returns the container."""
        image = images.ensure_image(images.sidecar_image())
        name = f"{host.replace('.', '-')}-{self.labels[LABEL_ID]}"
        engine.run(
            ["create", "--name", name, "--network", self.network, "--network-alias", host,
             "--env", "FAKE_CERT=/srv/server.crt", "--env", "FAKE_KEY=/srv/server.key",
             "--env", f"FAKE_MARKERS={','.join(markers)}",
             "--entrypoint", "python3", *label_args(self.labels), image, "/srv/llm_api.py", "443"],
            timeout=60,
        )
        self.containers[host] = name
        for src, dst in ((REPO / "bot_bottle" / "demo" / "fake_api.py", "/srv/llm_api.py"),
                         (cert, "/srv/server.crt"), (key, "/srv/server.key")):
            engine.run(["cp", str(src), f"{name}:{dst}"], timeout=60)
        engine.run(["start", name], timeout=60)
        return name

    def ip(self, host: str) -> str:
        return engine.run(
            ["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", self.containers[host]],
            timeout=30,
        ).stdout.strip()

    def hits(self, host: str) -> list[dict]:
        out = engine.run(["logs", self.containers[host]], timeout=30, check=False).stdout
        hits = []
        for line in out.splitlines():
            try:
                hits.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        return hits

    def close(self) -> None:
        if self.containers:
            engine.run(["rm", "-f", *self.containers.values()], timeout=60, check=False)
        engine.run(["network", "rm", self.network], timeout=60, check=False)


def launch(
    test: unittest.TestCase,
    plan: BottlePlan,
    state_root: Path,
    *,
    internet: Internet | None = None,
    env: dict[str, str] | None = None,
    options: LaunchOptions | None = None,
) -> tuple[DockerBottle, DockerLauncher]:
    opts = options or LaunchOptions()
    opts.internal_network = True
    if env is not None:
        opts.env = env
    if internet is not None:
        opts.extra_networks = (internet.network,)
    opts.credentials = {**{name: f"test-credential-{name.lower()}" for name in plan.credential_refs}, **dict(opts.credentials)}
    launcher = DockerLauncher(plan, opts, state_root)
    bottle = launcher.launch()
    test.addCleanup(bottle.close)
    return bottle, launcher


class TempHome:
    def __init__(self, test: unittest.TestCase) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="bb-it-")
        test.addCleanup(self._tmp.cleanup)
        self.path = Path(self._tmp.name)


def remove_bottle(bottle_id: str) -> None:
    """Force-remove every Docker object of one bottle (a safety net for failing tests)."""
    label = f"label=bot-bottle.id={bottle_id}"
    for listing, removal in (
        (["ps", "-a", "-q", "--filter", label], ["rm", "-f"]),
        (["network", "ls", "-q", "--filter", label], ["network", "rm"]),
        (["volume", "ls", "-q", "--filter", label], ["volume", "rm", "-f"]),
    ):
        refs = engine.run(listing, timeout=60, check=False).stdout.split()
        if refs:
            engine.run([*removal, *refs], timeout=60, check=False)


def remove_snapshot(bottle_id: str) -> None:
    engine.run(["rmi", "-f", f"bot-bottle/snapshot:{bottle_id}"], timeout=60, check=False)


def wait_for(check, what: str, timeout: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.1)


class ClassScope:
    """What the harness needs of a test (``addCleanup``), for class-wide fixtures in setUpClass."""

    def __init__(self, cls: type[unittest.TestCase]) -> None:
        self.addCleanup = cls.addClassCleanup
