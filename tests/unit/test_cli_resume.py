"""``resume ID`` in-process without Docker: metadata checks and where the agent is looked up."""

from __future__ import annotations

import json
import unittest
from pathlib import Path
from typing import Any
from unittest import mock

from bot_bottle import api
from bot_bottle.backend.docker.launch import DockerLauncher, LaunchOptions
from bot_bottle.lifecycle import RunResult
from bot_bottle.state import Metadata, StateDir
from tests.fixtures import SIMPLE_BOTTLE, ManifestTestCase

BOTTLE_ID = "abcdef12"


class ResumeCase(ManifestTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.mh.bottle("dev", SIMPLE_BOTTLE)
        self.state_dir = self.mh.home_dir / "state" / BOTTLE_ID
        self.launched: list[Any] = []

    def write_metadata(self, data: Any) -> Path:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / "metadata.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        return path

    def resume(self, *extra: str) -> Any:
        def fake_run_bottle(manifest: Any, plan: Any, **kwargs: Any) -> RunResult:
            self.launched.append((manifest, plan, kwargs))
            return RunResult(bottle_id=BOTTLE_ID, exit_code=0, preserved=False, preserve_reason=None)

        with mock.patch.object(api, "running", return_value=[]), \
                mock.patch.object(api.lifecycle, "run_bottle", side_effect=fake_run_bottle):
            return self.mh.run_cli("resume", BOTTLE_ID, "--headless", "--prompt", "go on", *extra)


class ResumeMetadataErrors(ResumeCase):
    def assertCleanError(self, result: Any, *needles: str) -> None:
        self.assertNotEqual(result.code, 0)
        self.assertNotIn("internal error", result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(self.launched, [])
        for needle in needles:
            self.assertIn(needle, result.stderr)

    def test_metadata_that_is_not_an_object(self) -> None:
        path = self.write_metadata([1, 2])
        self.assertCleanError(self.resume(), str(path), "expected a JSON object, found an array")

    def test_metadata_missing_keys(self) -> None:
        path = self.write_metadata({})
        self.assertCleanError(self.resume(), str(path), "missing keys id, agent, bottle, backend")
        self.write_metadata({"id": BOTTLE_ID, "agent": "r", "bottle": "dev"})
        self.assertCleanError(self.resume(), str(path), "missing key backend")

    def test_metadata_with_wrong_types(self) -> None:
        path = self.write_metadata({"id": BOTTLE_ID, "agent": 5, "bottle": "dev", "backend": "docker"})
        self.assertCleanError(self.resume(), str(path), "'agent' must be a non-empty string, found a number")
        self.write_metadata({"id": BOTTLE_ID, "agent": "r", "bottle": "dev", "backend": "docker", "started_at": "x"})
        self.assertCleanError(self.resume(), str(path), "'started_at' must be a number")
        self.write_metadata({"id": BOTTLE_ID, "agent": "r", "bottle": "dev", "backend": "docker", "extra": []})
        self.assertCleanError(self.resume(), str(path), "'extra' must be an object")

    def test_metadata_not_utf8(self) -> None:
        self.state_dir.mkdir(parents=True)
        path = self.state_dir / "metadata.json"
        path.write_bytes(b'{"agent": "\xff"}')
        self.assertCleanError(self.resume(), str(path), "not UTF-8")

    def test_unknown_backend_is_one_clean_line(self) -> None:
        path = self.write_metadata({"id": BOTTLE_ID, "agent": "r", "bottle": "dev", "backend": "nope"})
        result = self.resume()
        self.assertCleanError(result, f"{path}: unknown backend 'nope'")
        # Nothing is announced before the metadata is known good, and no "from None".
        self.assertNotIn("resuming", result.stderr)
        self.assertNotIn("None", result.stderr)

    def test_no_image_recorded_says_no_junk(self) -> None:
        self.mh.agent("r", {"bottle": "dev"})
        self.write_metadata({"id": BOTTLE_ID, "agent": "r", "bottle": "dev", "backend": "docker"})
        result = self.resume()
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn(f"resuming bottle {BOTTLE_ID} (r)", result.stderr)
        self.assertNotIn("None", result.stderr)
        self.write_metadata({"id": BOTTLE_ID, "agent": "r", "bottle": "dev", "backend": "docker", "snapshot": "snap:1"})
        self.assertIn("from snapshot snap:1", self.resume().stderr)


class ApprovedRoutesShown(ResumeCase):
    def test_routes_approved_while_it_ran_are_named_as_it_resumes(self) -> None:
        self.mh.agent("r", {"bottle": "dev"})
        self.write_metadata({"id": BOTTLE_ID, "agent": "r", "bottle": "dev", "backend": "docker"})
        self.assertNotIn("approved", self.resume().stderr)
        (self.state_dir / "approved_routes.json").write_text(json.dumps({"routes": [
            {"host": "docs.example", "ports": [443], "matches": [{"paths": ["/api/"]}]}]}))
        result = self.resume()
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn("routes the operator approved for this bottle are kept: docs.example:443 /api/", result.stderr)
        self.assertIn("approved_routes.json to drop them", result.stderr)


class MetadataOfAnotherBottle(ResumeCase):
    def test_a_folder_whose_metadata_names_another_bottle_is_refused(self) -> None:
        self.write_metadata({"id": "zzzzzz9", "agent": "r", "bottle": "dev", "backend": "docker"})
        result = self.resume()
        self.assertNotEqual(result.code, 0)
        self.assertIn("names bottle 'zzzzzz9'", result.stderr)
        self.assertNotIn("Traceback", result.stderr)


class ResumeFindsTheAgentWhereStartDid(ResumeCase):
    def setUp(self) -> None:
        super().setUp()
        # The agent lives only in a repository's ./.bot-bottle/agents/; resume runs elsewhere.
        self.repo = self.mh.cwd.parent / "repo"
        self.agent_file = self.mh.write(self.repo / ".bot-bottle" / "agents" / "r.md", "---\nbottle: dev\n---\nRepo agent.\n")

    def test_start_records_the_folder_holding_the_agent(self) -> None:
        plan = mock.Mock(agent="r", bottle="dev", cwd=None, label=None, color=None, runtime="runc",
                         agent_folder=self.repo)
        meta = DockerLauncher(plan, LaunchOptions(), self.mh.home_dir / "state")._metadata("agent:1")
        self.assertEqual(meta.started_in, str(self.repo))
        self.assertIsNone(meta.cwd)
        # It round-trips through the state folder.
        sdir = StateDir(self.mh.home_dir / "state", meta.id)
        sdir.create()
        sdir.write(meta)
        self.assertEqual(sdir.read(), meta)

    def test_resume_from_another_folder_finds_the_repo_agent(self) -> None:
        self.write_metadata({"id": BOTTLE_ID, "agent": "r", "bottle": "dev", "backend": "docker",
                             "cwd": None, "started_in": str(self.repo), "snapshot": "snap:1"})
        result = self.resume()
        self.assertEqual(result.code, 0, result.stderr)
        self.assertEqual(len(self.launched), 1)
        manifest, _plan, kwargs = self.launched[0]
        self.assertEqual(manifest.agent.path, self.agent_file)
        self.assertEqual(kwargs["options"].image_override, "snap:1")
        self.assertTrue(kwargs["options"].resume)

    def test_started_in_wins_over_the_cwd_copy_source(self) -> None:
        source = self.mh.cwd.parent / "copy-source"
        source.mkdir()
        meta = Metadata(id=BOTTLE_ID, agent="r", bottle="dev", backend="docker", cwd=str(source), started_in=str(self.repo))
        self.assertEqual(api._resume_layout(meta, self.mh.home).cwd, self.repo)

    def test_old_metadata_without_started_in_behaves_as_before(self) -> None:
        self.write_metadata({"id": BOTTLE_ID, "agent": "r", "bottle": "dev", "backend": "docker", "cwd": None})
        meta = StateDir(self.mh.home_dir / "state", BOTTLE_ID).read()
        self.assertIsNone(meta.started_in)  # not guessed from wherever it is read
        # Looked up where resume runs (here: not the repository), as before.
        result = self.resume()
        self.assertNotEqual(result.code, 0)
        self.assertIn("no agent named 'r'", result.stderr)
        # ... or in the --cwd copy source when one was recorded.
        self.write_metadata({"id": BOTTLE_ID, "agent": "r", "bottle": "dev", "backend": "docker", "cwd": str(self.repo)})
        self.assertEqual(self.resume().code, 0)

    def test_a_started_in_folder_that_is_gone_falls_back(self) -> None:
        meta = Metadata(id=BOTTLE_ID, agent="r", bottle="dev", backend="docker", cwd=str(self.repo),
                        started_in=str(self.repo / "gone"))
        self.assertEqual(api._resume_layout(meta, self.mh.home).cwd, self.repo)
        meta = Metadata(id=BOTTLE_ID, agent="r", bottle="dev", backend="docker", started_in=None)
        with mock.patch.object(Path, "cwd", return_value=self.mh.cwd):
            self.assertEqual(api._resume_layout(meta, self.mh.home).cwd, self.mh.cwd)


if __name__ == "__main__":
    unittest.main()
