"""A bottle still running from before an upgrade keeps its old sidecar (egress proxy, git-gate,
supervise server, with that version's protections) until it is stopped and resumed: `list` says
so for each running bottle whose sidecar image is not this version's, and how to update it."""

from __future__ import annotations

import json
import unittest
from typing import Any
from unittest import mock

from bot_bottle.backend.docker import running as running_mod
from bot_bottle.backend.docker.running import RunningBottle
from bot_bottle.cli import list as list_cmd
from bot_bottle.state import Metadata, StateDir
from tests.fixtures import SIMPLE_BOTTLE, ManifestTestCase

OLD = "bot-bottle/sidecar:0123456789ab"
NEW = "bot-bottle/sidecar:ba9876543210"


def _bottle(bottle_id: str, sidecar_image: str | None) -> RunningBottle:
    return RunningBottle(id=bottle_id, agent="coder", label=None, status="running", started_at="2026-12-05T10:00:00",
                         owner_alive=True, image="bot-bottle/agent-claude:x", sidecar_running=True,
                         sidecar_image=sidecar_image)


class ListNamesOldSidecars(ManifestTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        self.mh.agent("coder", {"bottle": "dev"})
        for bottle_id in ("aaaaaaaa", "bbbbbbbb"):
            state = StateDir(self.mh.home_dir / "state", bottle_id)
            state.create()
            state.write(Metadata(id=bottle_id, agent="coder", bottle="dev", backend="docker", owner=None))
        self.live = [_bottle("aaaaaaaa", OLD), _bottle("bbbbbbbb", NEW), _bottle("cccccccc", OLD)]

    def run_list(self, *argv: str) -> Any:
        with mock.patch.object(list_cmd, "current_sidecar_image", return_value=NEW):
            return self.mh.run_cli("list", "--running", *argv, env={"COLUMNS": "300"}, running=self.live)

    def test_json_marks_only_the_bottles_on_another_sidecar(self) -> None:
        result = self.run_list("--format", "json")
        self.assertEqual(result.code, 0, result.stderr)
        rows = {r["id"]: r["outdated_sidecar"] for r in json.loads(result.stdout)["running"]}
        self.assertEqual(rows, {"aaaaaaaa": True, "bbbbbbbb": False, "cccccccc": True})

    def test_text_says_how_to_update_a_bottle_of_this_home(self) -> None:
        result = self.run_list()
        self.assertEqual(result.code, 0, result.stderr)
        lines = result.stdout.splitlines()
        mine = next(line for line in lines if "aaaaaaaa" in line)
        self.assertIn("its sidecar is an older version's: `bot-bottle stop aaaaaaaa`, then `resume` it", mine)
        current = next(line for line in lines if "bbbbbbbb" in line)
        self.assertNotIn("older version", current)
        # Another home's bottle is only named: stopping it is for the home that started it.
        other = next(line for line in lines if "cccccccc" in line)
        self.assertIn("its sidecar is an older version's", other)
        self.assertNotIn("bot-bottle stop cccccccc", other)

    def test_nothing_is_marked_when_this_version_cannot_be_worked_out(self) -> None:
        self.assertFalse(list_cmd.sidecar_outdated(OLD, None))
        self.assertFalse(list_cmd.sidecar_outdated(None, NEW))
        self.assertFalse(list_cmd.sidecar_outdated(NEW, NEW))
        self.assertTrue(list_cmd.sidecar_outdated(OLD, NEW))


class RunningReadsTheSidecarImage(unittest.TestCase):
    """``running()`` takes the sidecar's image from the engine, beside whether it runs."""

    def test_agent_rows_get_their_sidecars_image(self) -> None:
        def container(role: str, bottle_id: str, image: str, backend: str = "docker") -> dict[str, Any]:
            return {"Config": {"Image": image, "Labels": {"bot-bottle.role": role, "bot-bottle.id": bottle_id,
                                                          "bot-bottle.agent": "coder", "bot-bottle.backend": backend}},
                    "State": {"Status": "running", "Running": True, "StartedAt": "2026-12-05T10:00:00Z"}}

        agents = [container("agent", "aaaaaaaa", "bot-bottle/snapshot:aaaaaaaa")]
        sidecars = [container("sidecar", "aaaaaaaa", OLD)]
        bundles = [container("sidecar", "dddddddd", NEW, backend="smolmachines")]

        def ids(role: str, bottle_id: Any, backend: Any = None) -> list[str]:
            if role == "agent":
                return ["agent-a"]
            return ["bundle-d"] if backend == "smolmachines" else ["sidecar-a"]

        def inspect(found: list[str]) -> list[dict[str, Any]]:
            return sidecars if found == ["sidecar-a"] else agents + bundles

        with mock.patch.object(running_mod, "_container_ids", side_effect=ids), \
                mock.patch.object(running_mod, "_inspect", side_effect=inspect), \
                mock.patch.object(running_mod.proc, "is_alive", return_value=True):
            found = {b.id: b for b in running_mod.running()}
        self.assertEqual(found["aaaaaaaa"].sidecar_image, OLD)
        self.assertTrue(found["aaaaaaaa"].sidecar_running)
        # A micro-VM bottle is its sidecar bundle: that container's image is the sidecar's.
        self.assertEqual(found["dddddddd"].sidecar_image, NEW)
        self.assertIsNone(found["dddddddd"].sidecar_running)


if __name__ == "__main__":
    unittest.main()
