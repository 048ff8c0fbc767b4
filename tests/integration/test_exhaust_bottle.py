"""A hostile agent exhausting its bottle's task limits, in a real bottle: the bottle must be
online again once the agent lets go.

Both attacks are bounded (a few hundred connections held for seconds; a fork bomb held at the
agent's own task limit for seconds) and end by themselves. The only traffic goes to the bottle's
own sidecar and to an upstream this test runs.
"""

from __future__ import annotations

import shlex
import tempfile
import time
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle import lifecycle
from bot_bottle.backend.docker import engine, snapshot_room
from bot_bottle.backend.docker.launch import WORKDIR, DockerLauncher, LaunchOptions
from bot_bottle.errors import BotBottleError
from bot_bottle.sidecar import init
from tests._docker import skip_unless_docker
from tests.integration import _harness as h

# Opens up to N connections to the sidecar's proxy socket, stopping at the first that is not
# taken at once (non-blocking: under gVisor a blocking connect to a full backlog cannot be
# interrupted, not even by SIGKILL), holds them all for a few seconds, then prints how many it had.
CONNECTION_FLOOD = r"""
use Socket; use Fcntl;
my ($n, $hold) = @ARGV; my @held;
for (1 .. $n) {
    socket(my $s, PF_UNIX, SOCK_STREAM, 0) or last;
    fcntl($s, F_SETFL, fcntl($s, F_GETFL, 0) | O_NONBLOCK);
    connect($s, pack_sockaddr_un("/run/bottle/proxy.sock")) or last;
    push @held, $s;
}
sleep $hold; print scalar(@held), "\n";
"""

# Forks until the agent's task limit refuses, the children holding their place for a few seconds;
# meanwhile connects to the agent's forwarder (which must fork to serve it) and waits them all out.
FORK_BOMB = r"""
use IO::Socket::INET;
my ($hold) = @ARGV; my $forked = 0;
while ($forked < 5000) { my $p = fork(); last unless defined $p; if ($p == 0) { sleep $hold; exit 0 } $forked++ }
for (1 .. 3) { my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1:3128", Timeout => 2); close $c if $c }
1 while wait() != -1;
print "$forked\n";
"""


@skip_unless_docker()
class TaskExhaustionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        scope = h.ClassScope(cls)
        home = h.TempHome(scope)
        cls.internet = h.Internet.create("allowed.example")
        cls.addClassCleanup(cls.internet.close)
        plan = h.plan_for(h.write_manifests(home.path))
        # A small task limit, so the fork bomb stays small.
        options = LaunchOptions(pids_limit=128, env={"PLAIN_SETTING": "x", "HOST_SECRET": "exhaust-test-value"})
        cls.bottle, cls.launcher = h.launch(scope, plan, home.path / "state", internet=cls.internet, options=options)

    def perl(self, script: str, *args: object, timeout: int = 120) -> str:
        cmd = f"timeout {timeout} perl -e {shlex.quote(script)} {' '.join(str(a) for a in args)}"
        return self.bottle.exec(cmd).stdout.strip()

    def running(self, container: str) -> bool:
        out = engine.run(["inspect", "-f", "{{.State.Running}}", container], timeout=30, check=False)
        return out.stdout.strip() == "true"

    def assert_online(self, within: float = 20) -> None:
        deadline = time.monotonic() + within
        code = ""
        while time.monotonic() < deadline:
            code = self.bottle.exec("curl -s -m 5 -o /dev/null -w '%{http_code}' http://allowed.example/").stdout
            if code == "200":
                return
            time.sleep(1)
        self.fail(f"the bottle stayed offline (last answer {code!r})")

    def test_a_connection_flood_on_the_proxy_socket_leaves_the_sidecar_serving(self) -> None:
        self.assert_online()
        held = self.perl(CONNECTION_FLOOD, 600, 5)
        self.assertTrue(held.isdigit(), held)
        self.assertGreaterEqual(int(held), init.SOCAT_MAX_CHILDREN, "the flood never reached the bound")
        self.assertTrue(self.running(self.launcher.names.sidecar_container),
                        "the sidecar stopped under the flood: " + self._sidecar_tail())
        self.assert_online()

    def test_a_fork_bomb_at_the_agents_limit_leaves_its_forwarder_serving(self) -> None:
        self.assert_online()
        forked = self.perl(FORK_BOMB, 4)
        self.assertTrue(forked.isdigit(), forked)
        self.assertLess(int(forked), 5000, "the agent's task limit never refused a fork")
        self.assertTrue(self.running(self.launcher.names.agent_container))
        self.assert_online()

    def _sidecar_tail(self) -> str:
        logs = engine.run(["logs", "--tail", "5", self.launcher.names.sidecar_container], timeout=30, check=False)
        return (logs.stdout + logs.stderr).strip()


@skip_unless_docker()
class RefusedSnapshotTest(unittest.TestCase):
    """The agent has made its snapshot impossible (a file too big for the engine's disk: here the
    room check is told so, no disk is filled); its preserved bottle keeps the container."""

    def test_the_work_stays_in_the_stopped_container_and_can_be_copied_out(self) -> None:
        home = h.TempHome(self)
        plan = h.plan_for(h.write_manifests(home.path))
        options = LaunchOptions(env={"PLAIN_SETTING": "x", "HOST_SECRET": "exhaust-test-value"})
        bottle, launcher = h.launch(self, plan, home.path / "state", options=options)
        self.addCleanup(h.remove_bottle, launcher.names.id)
        self.assertEqual(bottle.exec(f"mkdir -p {WORKDIR} && echo precious > {WORKDIR}/work.txt").returncode, 0)
        refused = BotBottleError("its snapshot would write 50.0 GiB; it was not taken")
        with mock.patch.object(snapshot_room, "check", side_effect=refused), self.assertRaises(BotBottleError):
            lifecycle.snapshot(launcher.names.id, launcher.names.agent_container, home.path / "state")
        launcher.preserve_reason = "agent exited with code 1 (snapshot failed)"
        launcher.teardown()
        agent = launcher.names.agent_container
        self.assertIn(f"docker cp {agent}:{WORKDIR} DIR", launcher.preserve_reason)
        state = engine.run(["inspect", "-f", "{{.State.Running}}", agent], timeout=30, check=False)
        self.assertEqual((state.returncode, state.stdout.strip()), (0, "false"), "the agent's container is not kept stopped")
        with tempfile.TemporaryDirectory() as out:
            engine.run(["cp", f"{agent}:{WORKDIR}/work.txt", out], timeout=60)
            self.assertEqual((Path(out) / "work.txt").read_text(), "precious\n")
        self.assertFalse(engine.run(["ps", "-q", "--filter", f"name={launcher.names.sidecar_container}"],
                                    timeout=30).stdout.strip(), "the sidecar is left running")
        # A resume would start from an older snapshot over the kept work: refused, saying so,
        # before anything is created or the kept container touched.
        again = DockerLauncher(plan, LaunchOptions(resume=True, bottle_id=launcher.names.id), home.path / "state")
        with self.assertRaises(BotBottleError) as ctx:
            again.launch()
        self.assertIn(f"{agent} is still there", str(ctx.exception))
        state = engine.run(["inspect", "-f", "{{.State.Running}}", agent], timeout=30, check=False)
        self.assertEqual((state.returncode, state.stdout.strip()), (0, "false"), "the resume touched the kept container")
        self.assertFalse(engine.run(["ps", "-a", "-q", "--filter", f"name={launcher.names.sidecar_container}"],
                                    timeout=30).stdout.strip(), "the refused resume created a sidecar")


if __name__ == "__main__":
    unittest.main()
