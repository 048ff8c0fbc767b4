"""State folders, process identity, and the pure parts of a Docker launch."""

from __future__ import annotations

import json
import os
import unittest
from pathlib import Path
from tempfile import TemporaryDirectory

from bot_bottle import proc
from bot_bottle.backend.docker.launch import LaunchOptions, _env_file_text, agent_limits, agent_task_limit, host_pid_max, proxy_env
from bot_bottle.backend.sidecar_config import policy as sidecar_policy
from bot_bottle.backend.docker.names import BottleNames, label_args, new_id
from bot_bottle.demo import evaluate
from bot_bottle.errors import BotBottleError
from bot_bottle.manifest import Layout, load
from bot_bottle.plan import ImageRefs, resolve
from bot_bottle.state import Metadata, StateDir, all_states


class StateFolders(unittest.TestCase):
    def test_metadata_round_trip_and_preserve(self) -> None:
        with TemporaryDirectory() as tmp:
            root = Path(tmp) / "state"
            sdir = StateDir(root, "abcd1234")
            sdir.create()
            meta = Metadata(id="abcd1234", agent="coder", bottle="dev", backend="docker", label="x", snapshot="s:1")
            sdir.write(meta)
            back = StateDir(root, "abcd1234").read()
            self.assertEqual(back, meta)
            self.assertFalse(sdir.preserved)
            sdir.preserve("agent exited with code 3")
            self.assertTrue(sdir.preserved)
            self.assertEqual([s.id for s in all_states(root)], ["abcd1234"])
            sdir.remove()
            self.assertEqual(all_states(root), [])

    def test_missing_and_bad_ids_are_clear_errors(self) -> None:
        with TemporaryDirectory() as tmp:
            with self.assertRaises(BotBottleError) as ctx:
                StateDir(Path(tmp), "nope1234").read()
            self.assertIn("no saved bottle", str(ctx.exception))
            with self.assertRaises(BotBottleError):
                StateDir(Path(tmp), "../etc")


class MetadataShape(unittest.TestCase):
    def write(self, root: Path, text: str) -> StateDir:
        sdir = StateDir(root, "abcd1234")
        sdir.create()
        sdir.metadata_path.write_text(text, encoding="utf-8")
        return sdir

    def test_wrong_shapes_are_clear_errors_naming_the_file(self) -> None:
        cases = {
            "[1, 2]": "expected a JSON object, found an array",
            '"x"': "expected a JSON object, found a string",
            "{}": "missing keys id, agent, bottle, backend",
            '{"id": "abcd1234", "agent": "a", "bottle": "b"}': "missing key backend",
            '{"id": "abcd1234", "agent": "", "bottle": "b", "backend": "docker"}': "'agent' must be a non-empty string",
            '{"id": "abcd1234", "agent": "a", "bottle": "b", "backend": "docker", "exit_code": "1"}':
                "'exit_code' must be an integer or null, found a string",
            '{"id": "abcd1234", "agent": "a", "bottle": "b", "backend": "docker", "label": true}':
                "'label' must be a string or null, found a boolean",
        }
        for text, needle in cases.items():
            with self.subTest(text=text), TemporaryDirectory() as tmp:
                sdir = self.write(Path(tmp), text)
                with self.assertRaises(BotBottleError) as ctx:
                    sdir.read()
                self.assertIn(str(sdir.metadata_path), str(ctx.exception))
                self.assertIn(needle, str(ctx.exception))

    def test_old_metadata_loads_without_started_in(self) -> None:
        old = {"id": "abcd1234", "agent": "coder", "bottle": "dev", "backend": "docker", "cwd": "/src/app",
               "label": None, "color": None, "started_at": 1.5, "image": "agent:1", "snapshot": None,
               "runtime": "runc", "owner": "1:2", "exit_code": None, "extra": {}, "unknown_later_key": 1}
        with TemporaryDirectory() as tmp:
            meta = self.write(Path(tmp), json.dumps(old)).read()
        self.assertIsNone(meta.started_in)
        self.assertEqual((meta.cwd, meta.started_at, meta.image), ("/src/app", 1.5, "agent:1"))

    def test_started_in_is_only_what_the_launcher_gives(self) -> None:
        # Never guessed from the folder a process happens to run in (a resume runs anywhere).
        self.assertIsNone(Metadata(id="abcd1234", agent="a", bottle="b", backend="docker").started_in)
        meta = Metadata(id="abcd1234", agent="a", bottle="b", backend="docker", started_in="/srv/repo")
        self.assertEqual(Metadata.from_dict(meta.to_dict()), meta)


class ProcessIdentity(unittest.TestCase):
    def test_own_process_is_alive_and_a_changed_start_time_is_not(self) -> None:
        ident = proc.identity()
        self.assertTrue(proc.is_alive(ident))
        pid = ident.split(":")[0]
        self.assertFalse(proc.is_alive(f"{pid}:1"))
        self.assertFalse(proc.is_alive(None))
        self.assertFalse(proc.is_alive("garbage"))

    def test_dead_pid(self) -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        self.assertFalse(proc.is_alive(f"{pid}:?"))


class LaunchPieces(unittest.TestCase):
    def test_names_and_labels(self) -> None:
        a, b = new_id(), new_id()
        self.assertNotEqual(a, b)
        names = BottleNames(a, "My Agent!")
        self.assertTrue(names.agent_container.endswith("-agent"))
        self.assertIn(a, names.network)
        self.assertTrue(names.slug.startswith("my-agent-"))
        self.assertEqual(label_args({"b": "2", "a": "1"}), ["--label", "a=1", "--label", "b=2"])

    def test_env_file_refuses_multiline_values(self) -> None:
        self.assertEqual(_env_file_text({"A": "1", "B": "x y"}), "A=1\nB=x y\n")
        with self.assertRaises(BotBottleError) as ctx:
            _env_file_text({"K": "line1\nline2-secret"})
        self.assertNotIn("secret", str(ctx.exception))

    def test_proxy_env_points_at_the_local_forwarder(self) -> None:
        env = proxy_env()
        self.assertEqual(env["HTTPS_PROXY"], "http://127.0.0.1:3128")
        self.assertEqual(env["https_proxy"], env["HTTPS_PROXY"])

    def test_sidecar_policy_compiles_routes(self) -> None:
        with TemporaryDirectory() as tmp:
            home = Path(tmp)
            (home / ".bot-bottle/bottles").mkdir(parents=True)
            (home / ".bot-bottle/agents").mkdir(parents=True)
            (home / ".bot-bottle/bottles/b.md").write_text(
                "---\negress:\n  log: 2\n  routes:\n    - host: a.example\n      ports: [8080]\n"
                "      matches:\n        - methods: [GET]\n          paths: [/x]\n---\n"
            )
            (home / ".bot-bottle/agents/a.md").write_text("---\nbottle: b\n---\n")
            manifest = load("a", Layout(home=home, cwd=home))
            plan = resolve(manifest, images=ImageRefs("a:1", "s:1"))
            policy = sidecar_policy(plan)
        self.assertEqual(policy["log"], 2)
        route = next(r for r in policy["routes"] if r["host"] == "a.example")
        self.assertEqual(route["ports"], [8080])
        self.assertEqual(route["matches"], [{"paths": ["/x"], "methods": ["GET"]}])
        self.assertIn("api.anthropic.com", [r["host"] for r in policy["routes"]])


class DemoVerdicts(unittest.TestCase):
    GOOD = {
        "allowed": (0, "hello from allowed.example [HTTP 200]"),
        "blocked": (0, "blocked: evil.example is not an allowed host [HTTP 403]"),
        "blocked-tls": (56, "curl: (56) CONNECT tunnel failed, response 403"),
        "raw-socket": (7, "curl: (7) Couldn't connect to server"),
        "dns": (2, ""),
        "interfaces": (0, "lo"),
        "whoami": (0, "node"),
        "dlp-token": (0, "bot-bottle egress: denied by rule 'dlp': aws-access-key-id [HTTP 403]"),
        "dlp-secret": (0, "bot-bottle egress: denied by rule 'dlp': known-secret:DEMO_DB_PASSWORD (base64) [HTTP 403]"),
    }

    def test_all_held(self) -> None:
        self.assertTrue(all(o.held for o in evaluate(dict(self.GOOD), 0)))

    def test_each_failure_is_reported(self) -> None:
        leaks = {
            "allowed": (7, "curl: (7) failed"),
            "blocked": (0, "hello from evil.example [HTTP 200]"),
            "raw-socket": (0, "hello from evil.example [HTTP 200]"),
            "dns": (0, "172.18.0.3 evil.example"),
            "interfaces": (0, "eth0 lo"),
            "whoami": (0, "root"),
            "dlp-token": (0, "hello from allowed.example [HTTP 200]"),
            "dlp-secret": (0, "hello from allowed.example [HTTP 200]"),
        }
        for name, bad in leaks.items():
            with self.subTest(name=name):
                results = dict(self.GOOD)
                results[name] = bad
                self.assertFalse(all(o.held for o in evaluate(results, 0)))
        self.assertFalse(all(o.held for o in evaluate(dict(self.GOOD), 1)))
        self.assertFalse(all(o.held for o in evaluate({}, 0)))


class AgentLimits(unittest.TestCase):
    """The agent's task limit: the host cgroup under runc, the sandbox's kernel under gVisor."""

    @staticmethod
    def flags(args: list[str]) -> dict[str, str]:
        return dict(zip(args[::2], args[1::2]))

    def test_runc_bounds_the_container_in_the_host_cgroup(self) -> None:
        opts = LaunchOptions(memory="2g", pids_limit=1024)
        self.assertEqual(self.flags(agent_limits(opts, gvisor=False, pid_max=32768)),
                         {"--memory": "2g", "--pids-limit": "1024"})
        self.assertEqual(agent_task_limit(opts, gvisor=False), 1024)

    def test_gvisor_bounds_the_agent_inside_and_fences_the_sandbox_outside(self) -> None:
        opts = LaunchOptions(memory="2g", pids_limit=1024)
        flags = self.flags(agent_limits(opts, gvisor=True, pid_max=4194304))
        self.assertEqual(flags["--ulimit"], "nproc=512:512")
        self.assertEqual(agent_task_limit(opts, gvisor=True), 512)
        # The sandbox's own threads (stubs x sentry threads) need far more than the agent's tasks.
        self.assertEqual(flags["--pids-limit"], str(512 * 32))
        self.assertEqual(flags["--memory"], "2g")

    def test_a_sandbox_never_takes_more_than_a_quarter_of_the_hosts_pids(self) -> None:
        opts = LaunchOptions(pids_limit=1024)
        self.assertEqual(self.flags(agent_limits(opts, True, pid_max=32768))["--pids-limit"], "8192")
        self.assertEqual(self.flags(agent_limits(opts, True, pid_max=None))["--pids-limit"], "16384")
        # A tiny PID space still leaves the sandbox room for the agent's own limit.
        self.assertEqual(self.flags(agent_limits(opts, True, pid_max=1000))["--pids-limit"], "250")

    def test_where_the_pid_space_caps_the_fence_the_agents_limit_shrinks_with_it(self) -> None:
        # A bombed sandbox near its fence could not be removed: the 32x margin is kept instead.
        opts = LaunchOptions(pids_limit=1024)
        flags = self.flags(agent_limits(opts, True, pid_max=32768))
        self.assertEqual(flags["--ulimit"], "nproc=256:256")
        self.assertEqual(agent_task_limit(opts, True, pid_max=32768), 256)
        self.assertEqual(int(flags["--pids-limit"]) // 256, 32)
        self.assertEqual(agent_task_limit(opts, True, pid_max=4194304), 512)
        self.assertEqual(agent_task_limit(opts, True, pid_max=None), 512)
        # Never below what an agent's CLI and a build need.
        self.assertEqual(agent_task_limit(opts, True, pid_max=1000), 64)
        self.assertEqual(self.flags(agent_limits(opts, True, pid_max=1000))["--ulimit"], "nproc=64:64")
        # runc is bounded in the host cgroup alone: the PID space does not change it.
        self.assertEqual(agent_task_limit(opts, False, pid_max=32768), 1024)

    def test_pid_max_read_from_the_kernel_or_none(self) -> None:
        with TemporaryDirectory() as tmp:
            path = Path(tmp) / "pid_max"
            path.write_text("32768\n")
            self.assertEqual(host_pid_max(path), 32768)
            path.write_text("junk")
            self.assertIsNone(host_pid_max(path))
            self.assertIsNone(host_pid_max(Path(tmp) / "missing"))


if __name__ == "__main__":
    unittest.main()
