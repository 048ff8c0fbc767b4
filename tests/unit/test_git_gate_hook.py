"""The pre-receive check on a real (temporary, local) mirror: refuse on findings, on errors, on
odd objects; forward clean pushes to the upstream (here a bare repo on disk)."""

from __future__ import annotations

import json
import shutil
import unittest
from collections.abc import Iterator
from pathlib import Path

from bot_bottle.sidecar.git_gate.config import parse
from bot_bottle.sidecar.git_gate.scan import Hit, PatternDetector
from bot_bottle.sidecar.supervise import channel
from tests._requires import requires
from tests.unit.git_gate_repo_helper import push_repos

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
        self.repos = push_repos(self)

    def run_hook(self, lines: str, detector=None) -> tuple[int, str, dict]:
        chosen = None if detector is _NO_DETECTOR else detector or PatternDetector()
        # The hook's own default supervise root, as the gate runs it.
        code, out = self.repos.hook(lines, chosen, supervise_root=channel.DEFAULT_ROOT)
        return code, out, self.repos.verdict_doc()

    def test_clean_update_is_forwarded(self) -> None:
        new = self.repos.commit({"a.txt": "fine\n"}, "fine")
        code, out, verdict = self.run_hook(f"{self.repos.base} {new} refs/heads/main\n")
        self.assertEqual(code, 0, out)
        self.assertEqual(self.repos.upstream_rev(), new)
        self.assertEqual((verdict["result"], verdict["commits_scanned"]), ("forwarded", 1))
        self.assertIn("refs/heads/main:", out)

    def test_finding_refuses_and_nothing_goes_upstream(self) -> None:
        new = self.repos.commit({"a.txt": f"k={AWS}\n"}, "cfg")
        code, out, verdict = self.run_hook(f"{self.repos.base} {new} refs/heads/main\n")
        self.assertEqual(code, 1)
        self.assertEqual(self.repos.upstream_rev(), self.repos.base)
        self.assertIn(f"commit {new[:12]}: file a.txt line 1: detector aws-access-key-id", out)
        self.assertNotIn(AWS, out + json.dumps(verdict))
        self.assertEqual(verdict["result"], "rejected")

    def run_with_secrets_file(self, lines: str, secrets_file: Path) -> tuple[int, str, dict]:
        """The hook as the gate runs it: its own detector, from the secrets file its config names."""
        self.repos.config = parse({"repos": [{"name": "app", "url": str(self.repos.upstream)}],
                                   "secrets_file": str(secrets_file)})
        return self.run_hook(lines, detector=_NO_DETECTOR)

    def test_the_bottles_own_secret_is_refused(self) -> None:
        own = "violet-harbour-qmbkzt"  # no token format: only the gate's secrets file knows it
        secrets_file = self.repos.dir / "known-secrets.json"
        secrets_file.write_text(json.dumps({"known_secrets": {"DB_PASSWORD": own}}))
        new = self.repos.commit({"a.txt": f"db = {own}\n"}, "cfg")
        code, out, verdict = self.run_with_secrets_file(f"{self.repos.base} {new} refs/heads/main\n", secrets_file)
        self.assertEqual(code, 1, out)
        self.assertIn("known-secret:DB_PASSWORD", out)
        self.assertNotIn(own, out + json.dumps(verdict))
        self.assertEqual(self.repos.upstream_rev(), self.repos.base)

    def test_an_unreadable_secrets_file_refuses_every_push(self) -> None:
        new = self.repos.commit({"a.txt": "fine\n"}, "fine")
        for secrets_file in (self.repos.dir / "missing.json", self.repos.dir):  # gone; a folder (unreadable as a file)
            with self.subTest(secrets_file=secrets_file.name):
                lines = f"{self.repos.base} {new} refs/heads/main\n"
                code, out, verdict = self.run_with_secrets_file(lines, secrets_file)
                self.assertEqual(code, 1, out)
                self.assertIn("push refused: the gate cannot check it for this bottle's secrets", out)
                self.assertEqual(verdict["result"], "error")
                self.assertEqual(self.repos.upstream_rev(), self.repos.base)

    def run_with_another_repos_token(self, lines: str, token_file: Path) -> tuple[int, str, dict]:
        """The hook as the gate runs it, pushing to ``app`` while ``lib``'s upstream token is in ``token_file``."""
        self.repos.config = parse({"repos": [
            {"name": "app", "url": str(self.repos.upstream)},
            {"name": "lib", "url": "https://git.example/lib.git", "auth": "https-token", "token_file": str(token_file)},
        ]})
        return self.run_hook(lines, detector=_NO_DETECTOR)

    def test_another_repos_upstream_token_is_refused(self) -> None:
        token = "plum-lantern-wqzvhx"  # no token format: only the gate's token file knows it
        token_file = self.repos.dir / "lib.token"
        token_file.write_text(token + "\n")
        new = self.repos.commit({"a.txt": f"t = {token}\n"}, "leak")
        code, out, verdict = self.run_with_another_repos_token(f"{self.repos.base} {new} refs/heads/main\n", token_file)
        self.assertEqual(code, 1, out)
        self.assertNotIn(token, out + json.dumps(verdict))
        self.assertEqual(self.repos.upstream_rev(), self.repos.base)

    def test_an_unreadable_upstream_token_file_refuses_every_push(self) -> None:
        # Skipped, the scan would not know that token, and a push to another repo could carry it.
        new = self.repos.commit({"a.txt": "fine\n"}, "fine")
        for token_file in (self.repos.dir / "missing.token", self.repos.dir):  # gone; a folder (unreadable as a file)
            with self.subTest(token_file=token_file.name):
                lines = f"{self.repos.base} {new} refs/heads/main\n"
                code, out, verdict = self.run_with_another_repos_token(lines, token_file)
                self.assertEqual(code, 1, out)
                self.assertIn("push refused: the gate cannot check it for this bottle's secrets", out)
                self.assertIn(str(token_file), out)
                self.assertEqual(verdict["result"], "error")
                self.assertEqual(self.repos.upstream_rev(), self.repos.base)

    def test_a_broken_detector_refuses(self) -> None:
        new = self.repos.commit({"a.txt": "fine\n"}, "fine")
        code, out, verdict = self.run_hook(f"{self.repos.base} {new} refs/heads/main\n", Exploding())
        self.assertEqual(code, 1)
        self.assertIn("the check failed (ValueError)", out)
        self.assertEqual(verdict["result"], "error")
        self.assertEqual(self.repos.upstream_rev(), self.repos.base)

    def test_a_ref_to_a_blob_is_refused(self) -> None:
        blob = self.repos.git("--git-dir", str(self.repos.mirror), "hash-object", "-w", "--stdin", data=b"x\n")
        code, out, _ = self.run_hook(f"{Z} {blob} refs/heads/blob\n")
        self.assertEqual(code, 1)
        self.assertIn("points to a blob", out)

    def test_garbage_input_is_refused(self) -> None:
        code, out, verdict = self.run_hook("not a ref update\n")
        self.assertEqual(code, 1)
        self.assertEqual(verdict["result"], "refused")

    def test_annotated_tag_message_is_scanned(self) -> None:
        self.repos.git("-C", str(self.repos.work), "tag", "-a", "v1", "-m", f"release with {AWS}")
        tag = self.repos.git("-C", str(self.repos.work), "rev-parse", "v1")
        code, out, _ = self.run_hook(f"{Z} {tag} refs/tags/v1\n")  # the hook fetches the tag first
        self.assertEqual(code, 1)
        self.assertIn(f"tag {tag[:12]}: tag message line 1: detector aws-access-key-id", out)

    def mirror_object(self, kind: str, data: str) -> str:
        """An object written straight into the mirror (no ref names it: as if just pushed)."""
        return self.repos.git("--git-dir", str(self.repos.mirror), "hash-object", "-t", kind, "-w", "--stdin",
                              data=data.encode())

    def tag_object(self, target: str, kind: str = "commit", name: str = "v1", message: str = "release",
                   extra: str = "") -> str:
        return self.mirror_object(
            "tag", f"object {target}\ntype {kind}\ntag {name}\ntagger T <t@x> 1700000000 +0000\n{extra}\n{message}\n"
        )

    def test_every_tag_of_a_chain_is_scanned(self) -> None:
        inner = self.tag_object(self.repos.base, name="inner", message=f"inner {AWS}")
        outer = self.tag_object(inner, kind="tag", name="outer", message="outer")
        code, out, verdict = self.run_hook(f"{Z} {outer} refs/tags/outer\n")
        self.assertEqual(code, 1, out)
        self.assertIn(f"tag {inner[:12]}: tag message line 1: detector aws-access-key-id", out)
        self.assertEqual(verdict["result"], "rejected")

    def test_every_header_of_a_tag_is_scanned(self) -> None:
        for tag, place in ((self.tag_object(self.repos.base, name=AWS), "tag header tag"),
                           (self.tag_object(self.repos.base, extra=f"x-meta {AWS}\n"), "tag header x-meta")):
            with self.subTest(place=place):
                code, out, _ = self.run_hook(f"{Z} {tag} refs/tags/v1\n")
                self.assertEqual(code, 1, out)
                self.assertIn(f"tag {tag[:12]}: {place}: detector aws-access-key-id", out)
                self.assertNotIn(AWS, out)

    def test_a_tag_of_a_blob_or_tree_is_refused(self) -> None:
        blob = self.mirror_object("blob", f"token={GHP}\n")
        tree = self.repos.git("--git-dir", str(self.repos.mirror), "rev-parse", f"{self.repos.base}^{{tree}}")
        for target, kind in ((blob, "blob"), (tree, "tree")):
            with self.subTest(kind=kind):
                inner = self.tag_object(target, kind=kind, name="inner")
                outer = self.tag_object(inner, kind="tag", name="outer")
                code, out, verdict = self.run_hook(f"{Z} {outer} refs/tags/t\n")
                self.assertEqual(code, 1, out)
                self.assertIn(f"refs/tags/t points (through a tag) to a {kind}", out)
                self.assertEqual(verdict["result"], "refused")
        self.assertEqual(self.repos.git("--git-dir", str(self.repos.upstream), "tag"), "")

    def test_a_ref_name_carrying_a_secret_is_refused_and_never_shown(self) -> None:
        # A supervise plane (the folder exists): the exception hint is printed too.
        code, out = self.repos.hook(f"{Z} {self.repos.base} refs/heads/{AWS}\n", PatternDetector(),
                                    supervise_root=self.repos.dir)
        verdict = self.repos.verdict.read_text()
        self.assertEqual(code, 1, out)
        self.assertIn(f"ref update to {self.repos.base[:12]}: {REF_WITHHELD}: detector aws-access-key-id", out)
        self.assertIn(f"ref={REF_WITHHELD}", out)
        self.assertNotIn(AWS, out + verdict)
        self.assertEqual(json.loads(verdict)["updates"][0]["ref"], REF_WITHHELD)
        self.assertNotIn(AWS, self.repos.git("--git-dir", str(self.repos.upstream), "for-each-ref"))

    def test_a_push_to_a_replace_ref_is_refused(self) -> None:
        new = self.repos.commit({"a.txt": "fine\n"}, "fine")
        code, out, verdict = self.run_hook(f"{Z} {new} refs/replace/{self.repos.base}\n")
        self.assertEqual(code, 1, out)
        self.assertIn("pushes to refs/replace/* are refused", out)
        self.assertEqual(verdict["result"], "refused")

    def test_a_push_to_a_ref_that_is_no_branch_or_tag_is_refused(self) -> None:
        new = self.repos.commit({"a.txt": "fine\n"}, "fine")
        for ref in ("refs/meta/config", "refs/notes/commits", "refs/pull/1/head", "refs/changes/01/1/1",
                    "refs/headsx/main", "refs/remotes/origin/main"):
            with self.subTest(ref=ref):
                code, out, verdict = self.run_hook(f"{Z} {new} {ref}\n")
                self.assertEqual(code, 1, out)
                self.assertIn(f"{ref}: pushes go to branches (refs/heads/*) and tags (refs/tags/*)", out)
                self.assertEqual(verdict["result"], "refused")
                upstream_refs = self.repos.git("--git-dir", str(self.repos.upstream), "for-each-ref",
                                               "--format=%(refname)")
                self.assertNotIn(ref, upstream_refs)

    def test_branches_tags_and_review_refs_may_be_pushed(self) -> None:
        new = self.repos.commit({"a.txt": "fine\n"}, "fine")
        for ref in ("refs/heads/feature/x", "refs/tags/v1.0"):
            with self.subTest(ref=ref):
                code, out, _ = self.run_hook(f"{Z} {new} {ref}\n")
                self.assertEqual(code, 0, out)
                self.assertEqual(self.repos.git("--git-dir", str(self.repos.upstream), "rev-parse", ref), new)

    def test_replace_refs_in_the_mirror_do_not_hide_a_commit(self) -> None:
        tree = self.repos.git("--git-dir", str(self.repos.mirror), "rev-parse", f"{self.repos.base}^{{tree}}")
        decoy = self.mirror_object("commit", f"tree {tree}\nparent {self.repos.base}\nauthor T <t@x> 1700000000 +0000\n"
                                             "committer T <t@x> 1700000000 +0000\n\ndecoy\n")
        secret = self.repos.commit({"creds.txt": f"k={AWS}\n"}, "add config")
        self.repos.git("--git-dir", str(self.repos.mirror), "update-ref", f"refs/replace/{secret}", decoy)
        code, out, _ = self.run_hook(f"{self.repos.base} {secret} refs/heads/main\n")
        self.assertEqual(code, 1, out)
        self.assertIn(f"commit {secret[:12]}: file creds.txt line 1: detector aws-access-key-id", out)
        self.assertEqual(self.repos.upstream_rev(), self.repos.base)


if __name__ == "__main__":
    unittest.main()
