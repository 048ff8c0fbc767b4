"""Backend parity: every contract of CONTRACTS.md's parity section, on Docker and smolmachines.

Both backends launch on a fake host (``subprocess.run`` answered and recorded, nothing real
runs), from the same manifest with a literal, a ``?prompt`` and a ``${HOST_VAR}`` env entry, so
every host argv either backend builds can be inspected. Each assertion names the backend.
"""

from __future__ import annotations

import contextlib
import tempfile
import unittest
from collections.abc import Iterator
from pathlib import Path

from bot_bottle.backend import Bottle, ExecResult, registry
from bot_bottle.backend.docker.bottle import SECRET_ENV_FILE as DOCKER_SECRET_ENV_FILE
from bot_bottle.backend.docker.bottle import DockerBottle
from bot_bottle.backend.docker.launch import LaunchOptions
from bot_bottle.backend.smolmachines.bottle import SECRET_ENV_FILE, SmolmachinesBottle
from bot_bottle.state import StateDir
from tests.unit.test_smolmachines_fakehost import (
    HOST_ENVIRON,
    LITERAL,
    SECRET_HOST,
    SECRET_PROMPTED,
    FakeHost,
    bottle_plan,
    env_pairs,
    parse_env_file,
)

BACKENDS = ("docker", "smolmachines")
HANDLES = {"docker": DockerBottle, "smolmachines": SmolmachinesBottle}
BACKEND_CLASSES = {"docker": registry.DockerBackend, "smolmachines": registry.SmolmachinesBackend}
SECRETS = (SECRET_PROMPTED, SECRET_HOST, HOST_ENVIRON["ANTHROPIC_API_KEY"])
MANIFEST_ENV = ("LIT", "ASKED", "FROM_HOST")


class Run:
    """One backend's launch on its own fake host."""

    def __init__(self, case: unittest.TestCase, backend: str, state_root: Path) -> None:
        self.backend = backend
        self.fake = FakeHost()
        self.plan, self.options = bottle_plan(case, backend)
        self.state_root = state_root
        self.launcher: registry.Launch | None = None

    @contextlib.contextmanager
    def host(self) -> Iterator[FakeHost]:
        with self.fake.installed():
            yield self.fake

    def launch(self, options: LaunchOptions | None = None) -> Bottle:
        self.launcher = registry.for_name(self.backend).launcher(
            self.plan, options or self.options, state_root=self.state_root
        )
        return self.launcher.launch()

    def guest_env(self) -> dict[str, str]:
        """The env the agent process gets, as each backend delivers it."""
        if self.backend == "docker":
            (env,) = self.fake.env_files.values()
            return {**env, **parse_env_file(self.fake.files[DOCKER_SECRET_ENV_FILE].decode())}
        create = next(c for c in self.fake.smolvm_calls() if c[:2] == ["machine", "create"])
        return {**env_pairs(create), **parse_env_file(self.fake.files[SECRET_ENV_FILE].decode())}


class Parity(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)

    def new_run(self, backend: str) -> Run:
        return Run(self, backend, self.tmp / backend / "state")

    # -- env -----------------------------------------------------------------------------------
    def test_secret_env_gives_the_same_guest_env_and_stays_off_every_argv(self) -> None:
        seen: dict[str, dict[str, str]] = {}
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                run = self.new_run(backend)
                with run.host():
                    bottle = run.launch()
                    agent = bottle.agent_argv(["-p", "do it"], tty=False)
                    run.launcher.teardown()  # type: ignore[union-attr]
                env = run.guest_env()
                seen[run.backend] = {k: env.get(k, "<missing>") for k in MANIFEST_ENV}
                self.assertEqual(env.get("ASKED"), SECRET_PROMPTED, f"[{run.backend}] ?prompt value in the guest")
                self.assertEqual(env.get("FROM_HOST"), SECRET_HOST, f"[{run.backend}] ${{HOST_VAR}} value in the guest")
                for config in run.fake.env_files.values():
                    # The container's config (inspect, and the snapshot a commit makes) holds none.
                    self.assertFalse(set(SECRETS) & set(config.values()), f"[{run.backend}] a secret in --env-file")
                for argv in [*run.fake.argvs(), agent]:
                    for secret in SECRETS:
                        self.assertFalse(
                            any(secret in arg for arg in argv),
                            f"[{run.backend}] a secret value is on a host argv: {argv[:5]}...",
                        )
        self.assertEqual(seen["docker"], seen["smolmachines"], "docker and smolmachines deliver different guest env")

    def test_literal_env_reaches_the_guest(self) -> None:
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                run = self.new_run(backend)
                with run.host():
                    run.launch()
                    run.launcher.teardown()  # type: ignore[union-attr]
                self.assertEqual(run.guest_env().get("LIT"), LITERAL, f"[{run.backend}] literal env in the guest")

    # -- resume --------------------------------------------------------------------------------
    def test_resume_metadata_round_trips_and_selects_the_same_backend(self) -> None:
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                run = self.new_run(backend)
                with run.host():
                    first = run.launch()
                    self.assertIsInstance(first, HANDLES[run.backend], f"[{run.backend}] handle class")
                    launcher = run.launcher
                    assert launcher is not None
                    bottle_id = launcher.state.id
                    launcher.preserve_reason = "asked to preserve"
                    launcher.teardown()
                    state = StateDir(run.state_root, bottle_id)
                    self.assertTrue(state.preserved, f"[{run.backend}] state folder preserved")
                    meta = state.read()
                    self.assertEqual(meta.backend, run.backend, f"[{run.backend}] backend in metadata")
                    chosen = registry.for_state(state)
                    self.assertIsInstance(chosen, BACKEND_CLASSES[run.backend], f"[{run.backend}] backend chosen from metadata")
                    self.assertEqual(chosen.name, run.backend, f"[{run.backend}] backend name")
                    again = chosen.launcher(
                        run.plan,
                        LaunchOptions(env=run.options.env, known_secrets=run.options.known_secrets,
                                      bottle_id=bottle_id, resume=True, image_override=meta.snapshot),
                        state_root=run.state_root,
                    )
                    bottle = again.launch()
                    self.assertIsInstance(bottle, HANDLES[run.backend], f"[{run.backend}] resumed handle class")
                    self.assertEqual(again.state.id, bottle_id, f"[{run.backend}] resumed under the same id")
                    self.assertEqual(again.state.read().backend, run.backend, f"[{run.backend}] backend kept on resume")
                    again.teardown()

    # -- remediation ---------------------------------------------------------------------------
    def test_capability_change_dispatches_to_the_owning_backend(self) -> None:
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                run = self.new_run(backend)
                with run.host():
                    run.launch()
                    launcher = run.launcher
                    assert launcher is not None
                    launcher.preserve_reason = "capability proposal pending"
                    launcher.teardown()
                    run.fake.calls.clear()
                    change = registry.CapabilityChange(launcher.state.id, ("ripgrep",), "search the code")
                    owner = registry.for_state(launcher.state)
                    if run.backend == "docker":
                        self.assertTrue(owner.supports_capability_change, "[docker] supports capability changes")
                        ref = registry.apply_capability_change(change, state_root=run.state_root)
                        build = [c for c in run.fake.docker_calls() if c[0] == "build"]
                        self.assertEqual(len(build), 2, "[docker] the packages fetched, then installed")
                        installs = [c.input for c in run.fake.calls if c.input and "dpkg-query" in c.input]
                        self.assertIn("dpkg-query -W ripgrep", installs[-1], "[docker] the package is installed")
                        self.assertEqual(launcher.state.read().snapshot, ref, "[docker] the next resume starts from it")
                    else:
                        self.assertFalse(owner.supports_capability_change, "[smolmachines] says it cannot")
                        before = launcher.state.read()
                        with self.assertRaises(registry.NotSupportedOnBackend) as ctx:
                            registry.apply_capability_change(change, state_root=run.state_root)
                        self.assertIn("not supported on smolmachines", str(ctx.exception), "[smolmachines] clean error")
                        self.assertEqual(run.fake.docker_calls(), [], "[smolmachines] no Docker call for a VM bottle")
                        self.assertEqual(run.fake.smolvm_calls(), [], "[smolmachines] nothing run at all")
                        self.assertEqual(launcher.state.read(), before, "[smolmachines] state unchanged")

    def test_invalid_capability_changes_are_refused_before_anything_runs(self) -> None:
        with self.assertRaises(Exception):
            registry.CapabilityChange("abcdef12", ("ok", "bad; rm -rf /")).validate()

    # -- the handle ----------------------------------------------------------------------------
    def test_agent_argv_exec_users_results_and_close(self) -> None:
        extra = ["-p", "fix the bug; echo $HOME", "--model", "m1"]
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                run = self.new_run(backend)
                with run.host():
                    bottle = run.launch()
                    argv = bottle.agent_argv(extra, tty=True)
                    self.assertIsInstance(argv, list, f"[{run.backend}] agent_argv is a list")
                    self.assertTrue(all(isinstance(a, str) for a in argv), f"[{run.backend}] of strings")
                    self.assertEqual(argv[-len(extra) - 1:], ["claude", *extra],
                                     f"[{run.backend}] agent command then every extra flag, unchanged")
                    run.fake.calls.clear()
                    as_node = bottle.exec("id -un")
                    node_argv = run.fake.argvs()[-1]
                    as_root = bottle.exec("id -un", user="root")
                    root_argv = run.fake.argvs()[-1]
                    for result in (as_node, as_root):
                        self.assertIsInstance(result, ExecResult, f"[{run.backend}] exec returns an ExecResult")
                        self.assertIsInstance(result.returncode, int, f"[{run.backend}] returncode")
                        self.assertIsInstance(result.stdout, str, f"[{run.backend}] stdout")
                        self.assertIsInstance(result.stderr, str, f"[{run.backend}] stderr")
                    self.assertIn("node", node_argv, f"[{run.backend}] exec runs as node by default")
                    self.assertNotIn("root", node_argv, f"[{run.backend}] and not as root")
                    self.assertIn("root", root_argv, f"[{run.backend}] exec runs as root on request")
                    self.assertNotIn("node", root_argv, f"[{run.backend}] and then not as node")
                    bottle.close()
                    bottle.close()  # idempotent: never raises
                    run.launcher.teardown()  # type: ignore[union-attr]
                    run.launcher.teardown()  # type: ignore[union-attr]


class Registry(unittest.TestCase):
    def test_names(self) -> None:
        for name in BACKENDS:
            with self.subTest(backend=name):
                self.assertIsInstance(registry.for_name(name), BACKEND_CLASSES[name], f"[{name}] for_name")
        with self.assertRaises(Exception) as ctx:
            registry.for_name("qemu")
        self.assertIn("qemu", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
