"""The pre-receive check on a real (temporary, local) mirror: refuse on findings, on errors, on
odd objects; forward clean pushes to the upstream (here a bare repo on disk)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import unittest
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from bot_bottle.sidecar.git_gate import hook
from bot_bottle.sidecar.git_gate.config import parse
from bot_bottle.sidecar.git_gate.mirror import HOOK_ENV_VERDICT
from bot_bottle.sidecar.git_gate.scan import Hit, PatternDetector
from tests._requires import requires

Z = "0" * 40
AWS = "AKIA" + "Z7QK4M2XW9RTB3PL"
GHP = "ghp_" + "q8Yt3LmN0pR5sV2wX7zA9cE4gJ6kB1dF0hUi"
REF_WITHHELD = "<ref name withheld: it carries a finding>"


class Exploding:
    def hits(self, text: str) -> Iterator[Hit]:
        raise ValueError("detector broke")


_NO_DETECTOR = object()  # run_hook: let the hook make its own (from the config's secrets file)


@requires(shutil.which("git") is not None, "git")
class HookTest(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmp.cleanup)
        self.dir = Path(self._tmp.name)
        self.base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.dir), "GIT_CONFIG_NOSYSTEM": "1",
                         "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "T",
                         "GIT_COMMITTER_EMAIL": "t@x"}
        self.upstream = self.dir / "upstream.git"
        self.mirror = self.dir / "mirror.git"
        self.work = self.dir / "work"
        self.git("init", "-q", "--bare", "-b", "main", str(self.upstream))
        self.git("init", "-q", "-b", "main", str(self.work))
        self.base = self.commit("README", "hello\n", "init")
        self.git("-C", str(self.work), "push", "-q", str(self.upstream), "main")
        self.git("clone", "-q", "--mirror", str(self.upstream), str(self.mirror))
        self.config = parse({"repos": [{"name": "app", "url": str(self.upstream)}]})
        self.verdict = self.dir / "verdict.json"

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], env=self.base_env, capture_output=True, text=True, check=True).stdout.strip()

    def commit(self, name: str, content: str, message: str) -> str:
        (self.work / name).write_text(content)
        self.git("-C", str(self.work), "add", name)
        self.git("-C", str(self.work), "commit", "-q", "-m", message)
        return self.git("-C", str(self.work), "rev-parse", "HEAD")

    def run_hook(self, lines: str, detector=None) -> tuple[int, str, dict]:
        # The pushed objects are in the work repo: make them visible as receive-pack's quarantine would.
        self.git("-C", str(self.mirror), "fetch", "-q", str(self.work), "+refs/heads/*:refs/incoming/*")
        self.git("-C", str(self.mirror), "update-ref", "-d", "refs/incoming/main")
        env = {**self.base_env, "GIT_DIR": str(self.mirror), HOOK_ENV_VERDICT: str(self.verdict)}
        stderr = io.StringIO()
        with mock.patch.dict(os.environ, env, clear=True), contextlib.redirect_stderr(stderr):
            chosen = None if detector is _NO_DETECTOR else detector or PatternDetector()
            code = hook.run(self.config, self.config.repos[0], lines, chosen)
        return code, stderr.getvalue(), json.loads(self.verdict.read_text())

    def upstream_main(self) -> str:
        return self.git("--git-dir", str(self.upstream), "rev-parse", "main")

    def test_clean_update_is_forwarded(self) -> None:
        new = self.commit("a.txt", "fine\n", "fine")
        code, out, verdict = self.run_hook(f"{self.base} {new} refs/heads/main\n")
        self.assertEqual(code, 0, out)
        self.assertEqual(self.upstream_main(), new)
        self.assertEqual((verdict["result"], verdict["commits_scanned"]), ("forwarded", 1))
        self.assertIn("refs/heads/main:", out)

    def test_finding_refuses_and_nothing_goes_upstream(self) -> None:
        new = self.commit("a.txt", f"k={AWS}\n", "cfg")
        code, out, verdict = self.run_hook(f"{self.base} {new} refs/heads/main\n")
        self.assertEqual(code, 1)
        self.assertEqual(self.upstream_main(), self.base)
        self.assertIn(f"commit {new[:12]}: file a.txt line 1: detector aws-access-key-id", out)
        self.assertNotIn(AWS, out + json.dumps(verdict))
        self.assertEqual(verdict["result"], "rejected")

    def run_with_secrets_file(self, lines: str, secrets_file: Path) -> tuple[int, str, dict]:
        """The hook as the gate runs it: its own detector, from the secrets file its config names."""
        self.config = parse({"repos": [{"name": "app", "url": str(self.upstream)}], "secrets_file": str(secrets_file)})
        return self.run_hook(lines, detector=_NO_DETECTOR)

    def test_the_bottles_own_secret_is_refused(self) -> None:
        own = "violet-harbour-qmbkzt"  # no token format: only the gate's secrets file knows it
        secrets_file = self.dir / "known-secrets.json"
        secrets_file.write_text(json.dumps({"known_secrets": {"DB_PASSWORD": own}}))
        new = self.commit("a.txt", f"db = {own}\n", "cfg")
        code, out, verdict = self.run_with_secrets_file(f"{self.base} {new} refs/heads/main\n", secrets_file)
        self.assertEqual(code, 1, out)
        self.assertIn("known-secret:DB_PASSWORD", out)
        self.assertNotIn(own, out + json.dumps(verdict))
        self.assertEqual(self.upstream_main(), self.base)

    def test_an_unreadable_secrets_file_refuses_every_push(self) -> None:
        new = self.commit("a.txt", "fine\n", "fine")
        for secrets_file in (self.dir / "missing.json", self.dir):  # gone; a folder (unreadable as a file)
            with self.subTest(secrets_file=secrets_file.name):
                code, out, verdict = self.run_with_secrets_file(f"{self.base} {new} refs/heads/main\n", secrets_file)
                self.assertEqual(code, 1, out)
                self.assertIn("push refused: the gate cannot check it for this bottle's secrets", out)
                self.assertEqual(verdict["result"], "error")
                self.assertEqual(self.upstream_main(), self.base)

    def run_with_another_repos_token(self, lines: str, token_file: Path) -> tuple[int, str, dict]:
        """The hook as the gate runs it, pushing to ``app`` while ``lib``'s upstream token is in ``token_file``."""
        self.config = parse({"repos": [
            {"name": "app", "url": str(self.upstream)},
            {"name": "lib", "url": "https://git.example/lib.git", "auth": "https-token", "token_file": str(token_file)},
        ]})
        return self.run_hook(lines, detector=_NO_DETECTOR)

    def test_another_repos_upstream_token_is_refused(self) -> None:
        token = "plum-lantern-wqzvhx"  # no token format: only the gate's token file knows it
        token_file = self.dir / "lib.token"
        token_file.write_text(token + "\n")
        new = self.commit("a.txt", f"t = {token}\n", "leak")
        code, out, verdict = self.run_with_another_repos_token(f"{self.base} {new} refs/heads/main\n", token_file)
        self.assertEqual(code, 1, out)
        self.assertNotIn(token, out + json.dumps(verdict))
        self.assertEqual(self.upstream_main(), self.base)

    def test_an_unreadable_upstream_token_file_refuses_every_push(self) -> None:
        # Skipped, the scan would not know that token, and a push to another repo could carry it.
        new = self.commit("a.txt", "fine\n", "fine")
        for token_file in (self.dir / "missing.token", self.dir):  # gone; a folder (unreadable as a file)
            with self.subTest(token_file=token_file.name):
                lines = f"{self.base} {new} refs/heads/main\n"
                code, out, verdict = self.run_with_another_repos_token(lines, token_file)
                self.assertEqual(code, 1, out)
                self.assertIn("push refused: the gate cannot check it for this bottle's secrets", out)
                self.assertIn(str(token_file), out)
                self.assertEqual(verdict["result"], "error")
                self.assertEqual(self.upstream_main(), self.base)

    def test_a_broken_detector_refuses(self) -> None:
        new = self.commit("a.txt", "fine\n", "fine")
        code, out, verdict = self.run_hook(f"{self.base} {new} refs/heads/main\n", Exploding())
        self.assertEqual(code, 1)
        self.assertIn("the check failed (ValueError)", out)
        self.assertEqual(verdict["result"], "error")
        self.assertEqual(self.upstream_main(), self.base)

    def test_a_ref_to_a_blob_is_refused(self) -> None:
        blob = subprocess.run(["git", "--git-dir", str(self.mirror), "hash-object", "-w", "--stdin"], input="x\n",
                              env=self.base_env, capture_output=True, text=True, check=True).stdout.strip()
        code, out, _ = self.run_hook(f"{Z} {blob} refs/heads/blob\n")
        self.assertEqual(code, 1)
        self.assertIn("points to a blob", out)

    def test_garbage_input_is_refused(self) -> None:
        code, out, verdict = self.run_hook("not a ref update\n")
        self.assertEqual(code, 1)
        self.assertEqual(verdict["result"], "refused")

    def test_annotated_tag_message_is_scanned(self) -> None:
        self.git("-C", str(self.work), "tag", "-a", "v1", "-m", f"release with {AWS}")
        tag = self.git("-C", str(self.work), "rev-parse", "v1")
        self.git("-C", str(self.mirror), "fetch", "-q", str(self.work), "+refs/tags/v1:refs/incoming-tag")
        self.git("-C", str(self.mirror), "update-ref", "-d", "refs/incoming-tag")
        code, out, _ = self.run_hook(f"{Z} {tag} refs/tags/v1\n")
        self.assertEqual(code, 1)
        self.assertIn(f"tag {tag[:12]}: tag message line 1: detector aws-access-key-id", out)

    def mirror_object(self, kind: str, data: str) -> str:
        """An object written straight into the mirror (no ref names it: as if just pushed)."""
        return subprocess.run(["git", "--git-dir", str(self.mirror), "hash-object", "-t", kind, "-w", "--stdin"],
                              input=data, env=self.base_env, capture_output=True, text=True, check=True).stdout.strip()

    def tag_object(self, target: str, kind: str = "commit", name: str = "v1", message: str = "release",
                   extra: str = "") -> str:
        return self.mirror_object(
            "tag", f"object {target}\ntype {kind}\ntag {name}\ntagger T <t@x> 1700000000 +0000\n{extra}\n{message}\n"
        )

    def test_every_tag_of_a_chain_is_scanned(self) -> None:
        inner = self.tag_object(self.base, name="inner", message=f"inner {AWS}")
        outer = self.tag_object(inner, kind="tag", name="outer", message="outer")
        code, out, verdict = self.run_hook(f"{Z} {outer} refs/tags/outer\n")
        self.assertEqual(code, 1, out)
        self.assertIn(f"tag {inner[:12]}: tag message line 1: detector aws-access-key-id", out)
        self.assertEqual(verdict["result"], "rejected")

    def test_every_header_of_a_tag_is_scanned(self) -> None:
        for tag, place in ((self.tag_object(self.base, name=AWS), "tag header tag"),
                           (self.tag_object(self.base, extra=f"x-meta {AWS}\n"), "tag header x-meta")):
            with self.subTest(place=place):
                code, out, _ = self.run_hook(f"{Z} {tag} refs/tags/v1\n")
                self.assertEqual(code, 1, out)
                self.assertIn(f"tag {tag[:12]}: {place}: detector aws-access-key-id", out)
                self.assertNotIn(AWS, out)

    def test_a_tag_of_a_blob_or_tree_is_refused(self) -> None:
        blob = self.mirror_object("blob", f"token={GHP}\n")
        tree = self.git("--git-dir", str(self.mirror), "rev-parse", f"{self.base}^{{tree}}")
        for target, kind in ((blob, "blob"), (tree, "tree")):
            with self.subTest(kind=kind):
                inner = self.tag_object(target, kind=kind, name="inner")
                outer = self.tag_object(inner, kind="tag", name="outer")
                code, out, verdict = self.run_hook(f"{Z} {outer} refs/tags/t\n")
                self.assertEqual(code, 1, out)
                self.assertIn(f"refs/tags/t points (through a tag) to a {kind}", out)
                self.assertEqual(verdict["result"], "refused")
        self.assertEqual(self.git("--git-dir", str(self.upstream), "tag"), "")

    def test_a_ref_name_carrying_a_secret_is_refused_and_never_shown(self) -> None:
        env = {**self.base_env, "GIT_DIR": str(self.mirror), HOOK_ENV_VERDICT: str(self.verdict)}
        stderr = io.StringIO()
        with mock.patch.dict(os.environ, env, clear=True), contextlib.redirect_stderr(stderr):
            code = hook.run(self.config, self.config.repos[0], f"{Z} {self.base} refs/heads/{AWS}\n", PatternDetector(),
                            supervise_root=self.dir)  # a supervise plane: the exception hint is printed too
        out, verdict = stderr.getvalue(), self.verdict.read_text()
        self.assertEqual(code, 1, out)
        self.assertIn(f"ref update to {self.base[:12]}: {REF_WITHHELD}: detector aws-access-key-id", out)
        self.assertIn(f"ref={REF_WITHHELD}", out)
        self.assertNotIn(AWS, out + verdict)
        self.assertEqual(json.loads(verdict)["updates"][0]["ref"], REF_WITHHELD)
        self.assertNotIn(AWS, self.git("--git-dir", str(self.upstream), "for-each-ref"))

    def test_a_push_to_a_replace_ref_is_refused(self) -> None:
        new = self.commit("a.txt", "fine\n", "fine")
        code, out, verdict = self.run_hook(f"{Z} {new} refs/replace/{self.base}\n")
        self.assertEqual(code, 1, out)
        self.assertIn("pushes to refs/replace/* are refused", out)
        self.assertEqual(verdict["result"], "refused")

    def test_a_push_to_a_ref_that_is_no_branch_or_tag_is_refused(self) -> None:
        new = self.commit("a.txt", "fine\n", "fine")
        for ref in ("refs/meta/config", "refs/notes/commits", "refs/pull/1/head", "refs/changes/01/1/1",
                    "refs/headsx/main", "refs/remotes/origin/main"):
            with self.subTest(ref=ref):
                code, out, verdict = self.run_hook(f"{Z} {new} {ref}\n")
                self.assertEqual(code, 1, out)
                self.assertIn(f"{ref}: pushes go to branches (refs/heads/*) and tags (refs/tags/*)", out)
                self.assertEqual(verdict["result"], "refused")
                self.assertNotIn(ref, self.git("--git-dir", str(self.upstream), "for-each-ref", "--format=%(refname)"))

    def test_branches_tags_and_review_refs_may_be_pushed(self) -> None:
        new = self.commit("a.txt", "fine\n", "fine")
        for ref in ("refs/heads/feature/x", "refs/tags/v1.0"):
            with self.subTest(ref=ref):
                code, out, _ = self.run_hook(f"{Z} {new} {ref}\n")
                self.assertEqual(code, 0, out)
                self.assertEqual(self.git("--git-dir", str(self.upstream), "rev-parse", ref), new)

    def test_replace_refs_in_the_mirror_do_not_hide_a_commit(self) -> None:
        tree = self.git("--git-dir", str(self.mirror), "rev-parse", f"{self.base}^{{tree}}")
        decoy = self.mirror_object("commit", f"tree {tree}\nparent {self.base}\nauthor T <t@x> 1700000000 +0000\n"
                                             "committer T <t@x> 1700000000 +0000\n\ndecoy\n")
        secret = self.commit("creds.txt", f"k={AWS}\n", "add config")
        self.git("--git-dir", str(self.mirror), "update-ref", f"refs/replace/{secret}", decoy)
        code, out, _ = self.run_hook(f"{self.base} {secret} refs/heads/main\n")
        self.assertEqual(code, 1, out)
        self.assertIn(f"commit {secret[:12]}: file creds.txt line 1: detector aws-access-key-id", out)
        self.assertEqual(self.upstream_main(), self.base)


if __name__ == "__main__":
    unittest.main()
