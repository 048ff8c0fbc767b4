"""An approved capability change through a real bottle, with no internet at all.

The test builds a one-file Debian package (``dpkg-deb --build``), indexes it
(``dpkg-scanpackages``) and serves it with ``python3 -m http.server`` from a container on an
``--internal`` network it creates; the capability build joins only that network and reads only
that repository (``registry.CapabilityBuild``, set from Python only).

The bottle runs ``sleep 600`` under ``lifecycle.run_bottle`` in a thread, as ``start`` would.
The agent asks ``request-capability`` with curl through its proxy; the host syncs the proposal
and decides it with ``apply.decide`` (the console's code path). Approved: the agent's call hears
"approved" first, then the bottle restarts on the rebuilt image under the same id, the package's
command runs there and the file written before is still in the workspace; audit rows record it.
Rejected: nothing is built and the same container keeps running.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import textwrap
import threading
import unittest
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot_bottle import images, lifecycle, proc
from bot_bottle.backend import registry
from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.bottle import WORKDIR
from bot_bottle.backend.docker.launch import LaunchOptions
from bot_bottle.backend.docker.names import LABEL_ID, LABEL_OWNER, label_args, new_id
from bot_bottle.manifest import load
from bot_bottle.plan import resolve
from bot_bottle.state import StateDir
from bot_bottle.supervise import apply
from bot_bottle.supervise.store import ProposalRow, Store
from bot_bottle.supervise.sync import BottleInfo, sync
from tests._docker import skip_unless_docker
from tests._requires import requires
from tests.integration._harness import ClassScope, TempHome, remove_bottle, wait_for, write_manifests

MCP_URL = "http://supervise.bottle.internal/mcp"
OPERATOR = "integration-operator"
PROBE = "bb-capability-probe"
PROBE_OUTPUT = "bb-capability-probe: installed by an approved capability change"
NOTE = "written before the restart"
BOTTLE = """\
---
egress:
  routes:
    - host: allowed.example
      ports: [80]
---
"""

# -- the test's own Debian repository -------------------------------------------------------------

HOST = "debrepo.bottle-test"


def tools_missing() -> str | None:
    """Why the repository cannot be built on this host, or None."""
    missing = [t for t in ("dpkg-deb", "dpkg-scanpackages") if shutil.which(t) is None]
    return f"missing {', '.join(missing)} (install dpkg-dev)" if missing else None


def build_package(out: Path, name: str, script: str, version: str = "1.0") -> Path:
    """A ``.deb`` holding ``/usr/local/bin/<name>`` (``script``), architecture ``all``."""
    root = out / f"{name}-pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(textwrap.dedent(f"""\
        Package: {name}
        Version: {version}
        Architecture: all
        Maintainer: bot-bottle tests <tests@bottle-test.invalid>
        Description: a probe installed by an approved capability change in a test
        """))
    binary = root / "usr" / "local" / "bin" / name
    binary.parent.mkdir(parents=True)
    binary.write_text(script)
    binary.chmod(0o755)
    deb = out / "repo" / f"{name}_{version}_all.deb"
    deb.parent.mkdir(exist_ok=True)
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)],
                   check=True, capture_output=True, timeout=120)
    return deb


def index(repo: Path) -> None:
    """A flat repository: ``Packages`` next to the debs (``deb [trusted=yes] URL ./``)."""
    packages = subprocess.run(["dpkg-scanpackages", "--multiversion", ".", "/dev/null"], cwd=repo, check=True,
                              capture_output=True, text=True, timeout=120).stdout
    (repo / "Packages").write_text(packages)


@dataclass
class DebRepo:
    """The network and the server; call ``close()`` (tests use addCleanup)."""

    network: str
    labels: dict[str, str]
    containers: list[str] = field(default_factory=list)

    @property
    def apt_source(self) -> str:
        return f"deb [trusted=yes] http://{HOST}/ ./"

    @classmethod
    def serve(cls, repo: Path) -> DebRepo:
        tag = new_id()
        labels = {LABEL_ID: f"test{tag}", LABEL_OWNER: proc.identity()}
        served = cls(network=f"bb-test-{tag}-debrepo", labels=labels)
        engine.run(["network", "create", "--internal", *label_args(labels), served.network], timeout=60)
        try:
            name = f"debrepo-{labels[LABEL_ID]}"
            image = images.ensure_image(images.sidecar_image())
            engine.run(["create", "--name", name, "--network", served.network, "--network-alias", HOST,
                        "--entrypoint", "python3", *label_args(labels), image,
                        "-m", "http.server", "80", "--directory", "/srv/repo"], timeout=60)
            served.containers.append(name)
            engine.run(["cp", str(repo), f"{name}:/srv/repo"], timeout=60)
            engine.run(["start", name], timeout=60)
        except BaseException:
            served.close()
            raise
        return served

    def requests(self) -> str:
        """The server's access log (http.server logs each request to stderr)."""
        return "\n".join(engine.run(["logs", c], timeout=30, check=False).stderr for c in self.containers)

    def close(self) -> None:
        if self.containers:
            engine.run(["rm", "-f", *self.containers], timeout=60, check=False)
        engine.run(["network", "rm", self.network], timeout=60, check=False)


def make_repo(packages: dict[str, str]) -> tuple[tempfile.TemporaryDirectory[str], Path]:
    """A temporary folder with ``repo/`` holding each package (name -> script) and its index."""
    tmp = tempfile.TemporaryDirectory(prefix="bb-debrepo-")
    out = Path(tmp.name)
    for name, script in packages.items():
        build_package(out, name, script)
    index(out / "repo")
    return tmp, out / "repo"


# -- the test --------------------------------------------------------------------------------------


def remove_images(bottle_id: str) -> None:
    """Every image this bottle's commits and builds made (they carry its id label)."""
    refs = engine.run(["images", "-a", "-q", "--filter", f"label={LABEL_ID}={bottle_id}"],
                      timeout=60, check=False).stdout.split()
    engine.run(["rmi", "-f", f"bot-bottle/snapshot:{bottle_id}"], timeout=60, check=False)
    if refs:
        engine.run(["rmi", "-f", *sorted(set(refs))], timeout=120, check=False)


def _children_running(word: str) -> list[int]:
    """Pids of this process's children whose command line mentions ``word``."""
    me = str(os.getpid())
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = stat.read_text().rpartition(")")[2].split()[1]
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        if ppid == me and word in cmdline:
            found.append(int(stat.parent.name))
    return found


@skip_unless_docker()
@requires(tools_missing() is None, "dpkg-deb and dpkg-scanpackages (dpkg-dev)")
class CapabilityThroughARealBottle(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        scope = ClassScope(cls)
        cls.pool = ThreadPoolExecutor(max_workers=2)
        cls.addClassCleanup(cls.pool.shutdown, wait=False, cancel_futures=True)
        tmp, repo = make_repo({PROBE: f"#!/bin/sh\necho '{PROBE_OUTPUT}'\n"})
        cls.addClassCleanup(tmp.cleanup)
        cls.repo = DebRepo.serve(repo)
        cls.addClassCleanup(cls.repo.close)
        cls.build = registry.CapabilityBuild(network=cls.repo.network, apt_source=cls.repo.apt_source)

        home = TempHome(scope)  # type: ignore[arg-type]
        cls.layout = write_manifests(home.path, bottle=BOTTLE)
        cls.state_root = home.path / "state"
        manifest = load("tester", cls.layout)
        from bot_bottle.cli.common import docker_runtime

        runtime, note = docker_runtime()
        plan = resolve(manifest, backend="docker", runtime=runtime, runtime_note=note, environ={})
        cls.launches: list[tuple[Any, Any]] = []
        cls.progress: list[str] = []
        cls.outcome: dict[str, Any] = {}
        launched = threading.Condition()

        def on_launched(bottle: Any, launcher: Any) -> None:
            with launched:
                cls.launches.append((bottle, launcher))
                launched.notify_all()

        def run() -> None:
            try:
                cls.outcome["result"] = lifecycle.run_bottle(
                    manifest, plan, state_root=cls.state_root, environ={"ANTHROPIC_API_KEY": "test-placeholder"},
                    prompt_fn=None, tty=False, options=LaunchOptions(internal_network=True),
                    progress=cls.progress.append, on_launched=on_launched, command=["sleep", "600"],
                    capability_build=cls.build)
            except BaseException as exc:  # noqa: BLE001 - reported by the tests
                cls.outcome["error"] = exc

        cls.worker = threading.Thread(target=run, daemon=True)
        cls.worker.start()
        cls.addClassCleanup(cls._stop)
        with launched:
            launched.wait_for(lambda: cls.launches or not cls.worker.is_alive(), timeout=600)
        if not cls.launches:
            raise AssertionError(f"the bottle never launched: {cls.outcome.get('error')!r}")
        cls.bottle_id = cls.launches[0][1].names.id
        cls.addClassCleanup(remove_images, cls.bottle_id)
        cls.addClassCleanup(remove_bottle, cls.bottle_id)
        cls.launched = launched
        cls.wait_agent(cls.launches[0])
        cls.store = Store(home.path / ".bot-bottle" / "supervise.db")
        cls.addClassCleanup(cls.store.close)
        cls.context = apply.Context(layout=cls.layout, state_dir=cls.state_root, capability_build=cls.build)
        cls.info = BottleInfo(cls.bottle_id, "tester", None, None, "docker", "")

    @classmethod
    def _stop(cls) -> None:
        """End the run: the agent container stopped, the owner's teardown waited for."""
        for _, launcher in cls.launches[-1:]:
            container = launcher.names.agent_container
            engine.run(["stop", "-t", "1", container], timeout=120, check=False)
            cls.worker.join(timeout=30)
            # The `docker exec` client into a gVisor container can outlive the container: end
            # this test's own client (a child of this process, found by its container) by pid.
            for child in _children_running(container):
                os.kill(child, signal.SIGTERM)
        cls.worker.join(timeout=300)

    @staticmethod
    def wait_agent(launch: tuple[Any, Any]) -> None:
        bottle = launch[0]
        # Looked for from inside: `docker top` does not list a gVisor sandbox's processes.
        script = "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done 2>/dev/null | grep -q '^sleep 600'"

        def agent_runs() -> bool:
            return bottle.exec(script).returncode == 0

        wait_for(agent_runs, "the agent command running in the bottle", timeout=300)

    # -- helpers ---------------------------------------------------------------------------------
    @property
    def bottle(self) -> Any:
        return self.launches[-1][0]

    def container_image(self) -> tuple[str, str]:
        name = self.launches[-1][1].names.agent_container
        out = engine.run(["inspect", "-f", "{{.Id}} {{.Image}}", name], timeout=60).stdout.split()
        return out[0], out[1]

    def ask_capability(self, packages: list[str], justification: str) -> Future:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                           "params": {"name": "request-capability",
                                      "arguments": {"packages": packages, "justification": justification}}})
        cmd = (f"curl -sS --max-time 250 -X POST {MCP_URL} -H 'Content-Type: application/json' "
               "-H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2025-06-18' "
               f"--data-binary {shlex.quote(body)}")
        return self.pool.submit(self.bottle.exec, cmd)

    def answer(self, call: Future) -> dict:
        result = call.result(timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        content = json.loads(result.stdout)["result"]
        self.assertFalse(content.get("isError"), content)
        return json.loads(content["content"][0]["text"])

    def synced_proposal(self, justification: str) -> ProposalRow:
        found: list[ProposalRow] = []

        def check() -> bool:
            report = sync(self.store, bottles=[self.info])
            self.assertEqual(report.errors, [])
            found[:] = [r for r in self.store.pending(self.bottle_id)
                        if r.kind == "capability" and r.justification == justification]
            return bool(found)

        wait_for(check, "the capability proposal in the store", timeout=60)
        return found[0]

    def audit(self, row: ProposalRow) -> list[tuple[str, str, str]]:
        return [(a.operator, a.action, a.outcome) for a in self.store.audit_rows(proposal_key=row.key)]

    def snapshot_exists(self) -> bool:
        return engine.run(["image", "inspect", f"bot-bottle/snapshot:{self.bottle_id}"],
                          timeout=60, check=False).returncode == 0

    # -- tests (a: rejected first, on the bottle as launched; b: approved, which restarts it) ----
    def test_a_rejected_capability_changes_nothing(self) -> None:
        before = self.container_image()
        self.assertFalse(self.snapshot_exists())
        call = self.ask_capability([PROBE], "rejected: probe the repository")
        row = self.synced_proposal("rejected: probe the repository")
        done = apply.decide(self.store, row.key, "rejected", reason="not today", operator=OPERATOR,
                            context=self.context)
        self.assertEqual((done.status, done.error), ("rejected", None))
        answer = self.answer(call)
        self.assertEqual((answer["verdict"], answer["reason"]), ("rejected", "not today"))
        self.assertEqual(self.container_image(), before, "the same container, on the same image")
        self.assertEqual(len(self.launches), 1, "not relaunched")
        self.assertFalse(self.snapshot_exists(), "nothing was built")
        state = StateDir(self.state_root, self.bottle_id)
        self.assertIsNone(state.read().snapshot)
        self.assertEqual(state.capability_packages(), ())
        self.assertIsNone(state.restart_request())
        self.assertNotIn(".deb", self.repo.requests(), "the repository was never read")
        self.assertNotEqual(self.bottle.exec(f"command -v {PROBE}").returncode, 0)
        self.assertEqual(self.audit(done), [(OPERATOR, "rejected", "ok")])

    def test_b_approved_capability_restarts_the_bottle_on_the_new_image(self) -> None:
        self.assertNotEqual(self.bottle.exec(f"command -v {PROBE}").returncode, 0, "not installed yet")
        wrote = self.bottle.exec(f"echo {shlex.quote(NOTE)} > {WORKDIR}/bb-note.txt")
        self.assertEqual(wrote.returncode, 0, wrote.stderr)
        # The agent leaves dpkg hooks in its home (the image's HOME stays /home/node in a build):
        # they must not run as root when the operator's approved packages are installed.
        planted = self.bottle.exec(f"printf 'pre-invoke=id -u > {WORKDIR}/bb-dpkg-hook-ran\\n' > \"$HOME/.dpkg.cfg\"")
        self.assertEqual(planted.returncode, 0, planted.stderr)
        first_container, first_image = self.container_image()

        call = self.ask_capability([PROBE], "the tests need the probe")
        row = self.synced_proposal("the tests need the probe")
        self.assertEqual(row.payload.get("packages"), [PROBE])
        self.assertFalse(call.done(), "the agent is waiting for the operator")
        done = apply.decide(self.store, row.key, "approved", reason="fine", operator=OPERATOR, context=self.context)
        self.assertEqual((done.status, done.error), ("applied", None), done.error)

        answer = self.answer(call)  # heard before the stop: the decision is written first
        self.assertEqual((answer["verdict"], answer["proposal_id"]), ("approved", row.id))
        self.assertIn("restarts", answer["reason"])

        with self.launched:
            self.launched.wait_for(lambda: len(self.launches) >= 2 or not self.worker.is_alive(), timeout=600)
        self.assertEqual(len(self.launches), 2, f"relaunched: {self.outcome}")
        self.assertEqual(self.launches[1][1].names.id, self.bottle_id, "the same bottle id")
        self.wait_agent(self.launches[1])
        self.assertTrue(any("restarting bottle" in p and row.id in p for p in self.progress),
                        f"a progress line says why: {self.progress}")
        container, image = self.container_image()
        self.assertNotEqual((container, image), (first_container, first_image), "a new container on a new image")

        probe = self.bottle.exec(PROBE)
        self.assertEqual((probe.returncode, probe.stdout.strip()), (0, PROBE_OUTPUT), probe.stderr)
        note = self.bottle.exec(f"cat {WORKDIR}/bb-note.txt")
        self.assertEqual(note.stdout.strip(), NOTE, "the workspace survived the restart")
        self.assertNotEqual(self.bottle.exec(f"test -e {WORKDIR}/bb-dpkg-hook-ran").returncode, 0,
                            "the agent's dpkg hook ran as root in the build")
        self.assertIn(f"{PROBE}_1.0_all.deb", self.repo.requests(), "installed from the test's repository")
        state = StateDir(self.state_root, self.bottle_id)
        self.assertIsNone(state.restart_request(), "the restart is done")
        self.assertEqual(state.capability_packages(), (), "the running image already has it")
        self.assertEqual(self.audit(done), [(OPERATOR, "approved", "ok"), (OPERATOR, "apply", "ok")])
        applied = [a for a in self.store.audit_rows(proposal_key=done.key) if a.action == "apply"][0]
        self.assertEqual(applied.after.get("packages"), [PROBE])
        self.assertTrue(applied.after.get("restart"))


if __name__ == "__main__":
    unittest.main()
