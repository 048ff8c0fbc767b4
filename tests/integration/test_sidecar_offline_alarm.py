"""The operator is told, on the agent's terminal, when the bottle's sidecar stops; the bottle is kept.

A real bottle with an interactive shell agent started by the real CLI on a pseudo-terminal this
test holds (as in test_agent_terminal_bottle.py). The test kills the egress proxy inside the
sidecar, as a crash would: the sidecar goes offline (fail closed), and within seconds the
operator's terminal says so, naming the proxy's end. The agent then exits 0, and the bottle is
kept anyway (its work may be unpushed: the git-gate stopped with the rest).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import unittest

from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.names import BottleNames
from tests._docker import skip_unless_docker
from tests.integration._operator_terminal import ShellAgentOnATerminal


@skip_unless_docker()
class TheOperatorIsToldWhenTheSidecarStops(ShellAgentOnATerminal):
    PREFIX = "bb-offline-"

    def test_a_crashed_proxy_is_said_on_the_terminal_and_the_bottle_kept(self) -> None:
        self.start_agent()
        self.until(b"READY", timeout=600, after=self.type("echo RE''ADY"))
        bottle_id = self.bottle_id()
        sidecar = BottleNames(bottle_id, "").sidecar_container

        # The agent may start while the proxy still loads: kill it once it listens, so the crash
        # is one in the middle of a run (a proxy that never listens is said differently).
        deadline = time.monotonic() + 120
        logs = engine.run(["logs", sidecar], timeout=60)
        while '"what": "proxy-listening"' not in logs.stderr and time.monotonic() < deadline:
            time.sleep(0.2)
            logs = engine.run(["logs", sidecar], timeout=60)
        self.assertIn('"what": "proxy-listening"', logs.stderr, "the proxy never listened")
        started = [json.loads(line) for line in logs.stderr.splitlines() if '"what": "started"' in line]
        proxy = next(step["pid"] for step in started if step["daemon"] == "egress-proxy")
        mark = len(self.seen)
        engine.run(["exec", sidecar, "sh", "-c", f"kill -KILL {proxy}"], timeout=60)

        at = self.until(b"stopped (egress-proxy exited with status -9)", timeout=60, after=mark)
        told = self.seen[self.seen.rfind(b"bot-bottle: the sidecar of bottle", 0, at + 1):]
        self.assertIn(f"the sidecar of bottle {bottle_id}".encode(), told)
        self.assertIn(f"bot-bottle resume {bottle_id}".encode(), self.seen[at:])
        self.assertEqual(self.seen.count(b"bot-bottle: the sidecar of bottle"), 1, "said once")

        self.type("exit 0")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and self._read(0.5):
            pass
        _, status = os.waitpid(self.pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, self.seen[-2000:])
        listed = subprocess.run([sys.executable, "-m", "bot_bottle", "list", "--format", "json"], cwd=self.home,
                                env=self.env, capture_output=True, text=True, timeout=120)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn(bottle_id, listed.stdout, "the bottle was kept for resume")
        # Rich may wrap the closing line at a space.
        self.assertRegex(self.seen, rb"preserved\s+\(its\s+sidecar\s+stopped\s+while\s+the\s+agent\s+ran")


if __name__ == "__main__":
    unittest.main()
