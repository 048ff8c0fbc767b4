"""Push exceptions in the git-gate: the rejected push says how to ask; a granted push passes once."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle.sidecar.git_gate import hook
from bot_bottle.sidecar.git_gate.config import parse
from bot_bottle.sidecar.git_gate.mirror import HOOK_ENV_VERDICT
from bot_bottle.sidecar.git_gate.scan import PatternDetector
from bot_bottle.sidecar.supervise.channel import Spool, add_grant, push_findings, read_grants
from bot_bottle.sidecar.supervise.server import ToolInputError, push_exception_proposal
from tests._requires import requires

Z = "0" * 40
AWS = "AKIA" + "Z7QK4M2XW9RTB3PL"


@requires(shutil.which("git") is not None, "git")
class PushExceptionTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.dir = Path(tmp.name)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.dir), "GIT_CONFIG_NOSYSTEM": "1",
                    "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@x"}
        self.upstream, self.mirror, self.work = self.dir / "upstream.git", self.dir / "mirror.git", self.dir / "work"
        self.git("init", "-q", "--bare", "-b", "main", str(self.upstream))
        self.git("init", "-q", "-b", "main", str(self.work))
        self.base = self.commit("README", "hello\n", "init")
        self.git("-C", str(self.work), "push", "-q", str(self.upstream), "main")
        self.git("clone", "-q", "--mirror", str(self.upstream), str(self.mirror))
        self.config = parse({"repos": [{"name": "app", "url": str(self.upstream)}]})
        self.verdict = self.dir / "verdict.json"
        self.spool = self.dir / "supervise"
        self.spool.mkdir()

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], env=self.env, capture_output=True, text=True, check=True).stdout.strip()

    def commit(self, name: str, content: str, message: str) -> str:
        (self.work / name).write_text(content)
        self.git("-C", str(self.work), "add", name)
        self.git("-C", str(self.work), "commit", "-q", "-m", message)
        return self.git("-C", str(self.work), "rev-parse", "HEAD")

    def push(self, lines: str, root: Path | None = None) -> tuple[int, str, dict]:
        self.git("-C", str(self.mirror), "fetch", "-q", str(self.work), "+refs/heads/*:refs/incoming/*")
        self.git("-C", str(self.mirror), "update-ref", "-d", "refs/incoming/main")
        env = {**self.env, "GIT_DIR": str(self.mirror), HOOK_ENV_VERDICT: str(self.verdict)}
        err = io.StringIO()
        with mock.patch.dict(os.environ, env, clear=True), contextlib.redirect_stderr(err):
            code = hook.run(self.config, self.config.repos[0], lines, PatternDetector(),
                            supervise_root=root or self.spool)
        return code, err.getvalue(), json.loads(self.verdict.read_text())

    def upstream_main(self) -> str:
        return self.git("--git-dir", str(self.upstream), "rev-parse", "main")

    def test_rejection_names_the_finding_and_how_to_ask(self) -> None:
        new = self.commit("fixture.txt", f"k={AWS}\n", "fixture")
        code, out, verdict = self.push(f"{self.base} {new} refs/heads/main\n")
        self.assertEqual(code, 1)
        fid = verdict["detail"].removeprefix("finding ")
        self.assertTrue(fid.startswith("gf-"))
        self.assertIn("request-push-exception", out)
        self.assertIn(f"repo=app ref=refs/heads/main old={self.base} new={new} finding={fid}", out)
        self.assertNotIn(AWS, out)
        # the same findings give the same id on the next try
        self.assertEqual(self.push(f"{self.base} {new} refs/heads/main\n")[2]["detail"], verdict["detail"])

    def test_the_rejection_is_recorded_and_an_exception_request_shows_what_the_gate_found(self) -> None:
        # The agent's own account (its justification) goes with the gate's findings, never instead.
        new = self.commit("fixture.txt", f"k={AWS}\n", "fixture")
        _, _, verdict = self.push(f"{self.base} {new} refs/heads/main\n")
        fid = verdict["detail"].removeprefix("finding ")
        record = push_findings(self.spool, fid)
        self.assertEqual(record["updates"], [{"ref": "refs/heads/main", "old": self.base, "new": new}])
        self.assertEqual(record["detectors"], ["aws-access-key-id"])
        self.assertEqual(record["places"], [f"commit {new[:12]}: file fixture.txt line 1: detector aws-access-key-id"])
        self.assertNotIn(AWS, json.dumps(record))
        proposal = push_exception_proposal(Spool(self.spool), "app", "refs/heads/main", self.base, new,
                                           "a fake key in a test fixture", fid)
        self.assertEqual((proposal.payload["detectors"], proposal.payload["places"]),
                         (record["detectors"], record["places"]))
        with self.assertRaises(ToolInputError):  # asked before any push was rejected
            push_exception_proposal(Spool(self.spool), "app", "refs/heads/main", self.base, new, "why", "gf-" + "0" * 12)

    def test_a_grant_for_another_finding_does_not_apply(self) -> None:
        new = self.commit("fixture.txt", f"k={AWS}\n", "fixture")
        add_grant(self.spool, {"kind": "push", "repo": "app", "ref": "refs/heads/main", "old": self.base, "new": new,
                               "finding": "gf-" + "0" * 12})
        code, _, verdict = self.push(f"{self.base} {new} refs/heads/main\n")
        self.assertEqual((code, verdict["result"]), (1, "rejected"))
        fid = verdict["detail"].removeprefix("finding ")
        add_grant(self.spool, {"kind": "push", "repo": "app", "ref": "refs/heads/main", "old": self.base, "new": new,
                               "finding": fid})
        code, out, verdict = self.push(f"{self.base} {new} refs/heads/main\n")
        self.assertEqual((code, verdict["result"]), (0, "forwarded"), out)
        self.assertEqual([p["used"] for p in read_grants(self.spool)["pushes"]], [False, True])

    def test_no_hint_without_the_supervise_plane(self) -> None:
        new = self.commit("fixture.txt", f"k={AWS}\n", "fixture")
        code, out, _ = self.push(f"{self.base} {new} refs/heads/main\n", root=self.dir / "no-supervise")
        self.assertEqual(code, 1)
        self.assertNotIn("request-push-exception", out)

    def test_a_granted_push_passes_once(self) -> None:
        new = self.commit("fixture.txt", f"k={AWS}\n", "fixture")
        add_grant(self.spool, {"kind": "push", "repo": "app", "ref": "refs/heads/main", "old": self.base, "new": new})
        code, out, verdict = self.push(f"{self.base} {new} refs/heads/main\n")
        self.assertEqual(code, 0, out)
        self.assertEqual(self.upstream_main(), new)
        self.assertEqual(verdict["result"], "forwarded")
        self.assertIn("push exception", verdict["detail"])
        self.assertEqual(len(verdict["findings"]), 1)  # still recorded
        self.assertTrue(read_grants(self.spool)["pushes"][0]["used"])

    def test_a_grant_is_used_only_once(self) -> None:
        new = self.commit("fixture.txt", f"k={AWS}\n", "fixture")
        add_grant(self.spool, {"kind": "push", "repo": "app", "ref": "refs/heads/main", "old": self.base, "new": new})
        read = read_grants(self.spool)
        read["pushes"][0]["used"] = True
        (self.spool / "grants.json").write_text(json.dumps(read))
        code, _, verdict = self.push(f"{self.base} {new} refs/heads/main\n")
        self.assertEqual((code, verdict["result"]), (1, "rejected"))
        self.assertEqual(self.upstream_main(), self.base)

    def test_a_grant_for_other_commits_does_not_apply(self) -> None:
        granted = self.commit("fixture.txt", f"k={AWS}\n", "fixture")
        new = self.commit("more.txt", f"k2={AWS}\n", "more")
        add_grant(self.spool, {"kind": "push", "repo": "app", "ref": "refs/heads/main", "old": self.base, "new": granted})
        code, _, verdict = self.push(f"{self.base} {new} refs/heads/main\n")
        self.assertEqual((code, verdict["result"]), (1, "rejected"))
        self.assertFalse(read_grants(self.spool)["pushes"][0]["used"])  # not spent on a different range

    def test_every_ref_needs_its_grant(self) -> None:
        new = self.commit("fixture.txt", f"k={AWS}\n", "fixture")
        add_grant(self.spool, {"kind": "push", "repo": "app", "ref": "refs/heads/main", "old": self.base, "new": new})
        code, out, _ = self.push(f"{self.base} {new} refs/heads/main\n{Z} {new} refs/heads/other\n")
        self.assertEqual(code, 1, out)
        self.assertFalse(read_grants(self.spool)["pushes"][0]["used"])  # all or nothing


if __name__ == "__main__":
    unittest.main()
