"""A home used by an earlier version, met by this one's CLI against the real engine.

The earlier version's state is written by hand (no old checkout is needed): a preserved bottle
whose snapshot image was pruned meanwhile, and a bottle still running on another version's
sidecar image whose launching process is gone (the old CLI killed by the upgrade). The CLI must
answer each with clear words and leave nothing of them behind once `cleanup` ran.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unittest
from pathlib import Path

from bot_bottle import proc
from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.names import (
    LABEL_AGENT, LABEL_BACKEND, LABEL_BOTTLE, LABEL_ID, LABEL_OWNER, LABEL_ROLE, LABEL_STATE, BottleNames, label_args,
    new_id,
)
from bot_bottle.state import Metadata, StateDir
from tests._docker import skip_unless_docker
from tests.integration import _harness as h

REPO = Path(__file__).resolve().parents[2]
# Any local image other than this version's sidecar stands for an earlier version's sidecar.
OLD_SIDECAR_IMAGE = "debian:bookworm-slim"


def _objects_of(home: Path) -> list[str]:
    """Every bot-bottle container, network and volume whose state label is under ``home``."""
    found = []
    for args, key in ((["ps", "-a"], "{{.Names}}"), (["network", "ls"], "{{.Name}}"), (["volume", "ls"], "{{.Name}}")):
        listing = engine.run([*args, "--filter", "label=bot-bottle.role", "--format", key + ' {{.Label "bot-bottle.state"}}'],
                             timeout=60).stdout
        found += [name for name, _, state in (line.partition(" ") for line in listing.splitlines())
                  if state.startswith(f"{home}/")]
    return sorted(found)


def _gone_owner() -> str:
    """An owner identity whose process provably ended: this pid with another start time."""
    pid, _, rest = proc.identity().partition(":")
    return f"{pid}:1-{rest.split('-', 1)[1]}"


@skip_unless_docker()
class AHomeFromAnEarlierVersion(unittest.TestCase):
    def setUp(self) -> None:
        self.home = h.TempHome(self).path
        h.write_manifests(self.home, bottle=h.NO_CREDENTIAL_BOTTLE)
        self.states = self.home / ".bot-bottle" / "state"
        self.env = {**os.environ, "HOME": str(self.home), "PYTHONPATH": str(REPO), "COLUMNS": "300",
                    "ANTHROPIC_API_KEY": "test-placeholder", "BOT_BOTTLE_INTERNAL_NETWORK": "1"}
        self.addCleanup(self._remove_leftovers)

    def _remove_leftovers(self) -> None:
        self.cli("cleanup", "--all")
        for name in _objects_of(self.home):
            for args in (["rm", "-f", "-v", name], ["network", "rm", name], ["volume", "rm", "-f", name]):
                engine.run(args, timeout=60, check=False)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot_bottle", *args], cwd=self.home, env=self.env,
                              capture_output=True, text=True, timeout=300)

    def preserved(self, bottle_id: str, **fields: object) -> StateDir:
        state = StateDir(self.states, bottle_id)
        state.create()
        state.write(Metadata(id=bottle_id, agent="tester", bottle="test", backend="docker", **fields))
        state.preserve("agent exited with code 1")
        return state

    def test_a_preserved_bottle_whose_snapshot_was_pruned_is_refused_clearly(self) -> None:
        bottle_id = new_id()
        snapshot = f"bot-bottle/snapshot:{bottle_id}"  # never made: as after `docker image prune -a`
        state = self.preserved(bottle_id, image="bot-bottle/agent-claude:0123456789ab", snapshot=snapshot)
        result = self.cli("resume", bottle_id, "--headless", "--prompt", "go on")
        self.assertNotEqual(result.returncode, 0, result.stdout)
        self.assertIn(f"its snapshot image {snapshot} is gone", result.stderr)
        self.assertIn(f"remove {state.path} to drop the bottle", result.stderr)
        self.assertNotIn("Error response from daemon", result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(_objects_of(self.home), [], "the refused resume created something")
        self.assertTrue(state.preserved)
        self.assertEqual(state.read().snapshot, snapshot)

    def test_a_bottle_left_running_on_an_old_sidecar_is_named_and_cleaned_up(self) -> None:
        bottle_id = new_id()
        names = BottleNames(bottle_id, "tester")
        state = StateDir(self.states, bottle_id)
        state.create()
        state.write(Metadata(id=bottle_id, agent="tester", bottle="test", backend="docker", owner=_gone_owner()))
        labels = {LABEL_ID: bottle_id, LABEL_AGENT: "tester", LABEL_BOTTLE: "test", LABEL_BACKEND: "docker",
                  LABEL_OWNER: _gone_owner(), LABEL_STATE: str(state.path)}
        engine.run(["network", "create", "--internal", *label_args({**labels, LABEL_ROLE: "network"}), names.network],
                   timeout=60)
        engine.run(["volume", "create", *label_args({**labels, LABEL_ROLE: "socket"}), names.socket_volume], timeout=60)
        for role, name in (("sidecar", names.sidecar_container), ("agent", names.agent_container)):
            engine.run(["run", "-d", "--name", name, "--network", names.network,
                        "--volume", f"{names.socket_volume}:/run/bottle", *label_args({**labels, LABEL_ROLE: role}),
                        OLD_SIDECAR_IMAGE, "sleep", "600"], timeout=120)

        listed = self.cli("list", "--running", "--format", "json")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        row = next(r for r in json.loads(listed.stdout)["running"] if r["id"] == bottle_id)
        self.assertTrue(row["outdated_sidecar"], row)
        self.assertTrue(row["orphaned"], row)
        text = self.cli("list", "--running")
        line = next(line for line in text.stdout.splitlines() if bottle_id in line)
        self.assertIn("orphaned", line)
        self.assertIn("its sidecar is an older version's", re.sub(r"\s+", " ", line))

        cleaned = self.cli("cleanup")
        self.assertEqual(cleaned.returncode, 0, cleaned.stdout + cleaned.stderr)
        self.assertEqual(_objects_of(self.home), [], "cleanup left the old bottle's objects")
        self.assertFalse(state.path.exists())


if __name__ == "__main__":
    unittest.main()
