"""What a fetch may ask the gate for: only objects the refs it shows reach.

The mirror keeps every object it ever fetched; git's upload-pack checks a wanted *commit* against
the refs, but would send a blob, tree or tag object to whoever names its id. Here a branch and an
annotated tag are published upstream, fetched by the gate, then deleted upstream (a secret taken
down); once the gate has refreshed, none of their objects can be had by id, by ``git fetch``, a
raw request (plain or gzipped) or a partial clone's lazy fetch, while the visible history still
can, object by object. (The pieces: ``test_git_gate_reach``.)"""

from __future__ import annotations

import gzip
import subprocess
import unittest
from unittest import mock

from bot_bottle.sidecar.git_gate import pktline
from tests.unit.test_git_gate_server import GateServerCase

NOT_OURS = "not our ref"


def pkt(text: str) -> bytes:
    return pktline.encode(text)


def want_request(*lines: str) -> bytes:
    """A protocol-v0 upload-pack request: the want section, then ``done``."""
    return b"".join(pkt(line) for line in lines) + pktline.FLUSH + pkt("done\n")


class HiddenObjectsCase(GateServerCase):
    """main (three commits; README changed twice) is shown; branch ``leak`` and tag ``leaktag``
    were published, fetched by the gate, and deleted upstream."""

    def setUp(self) -> None:
        super().setUp()
        self.old_readme = self.git("-C", str(self.work), "rev-parse", "HEAD:README")
        self.commit("README", b"hello again\n")
        self.old_commit = self.git("-C", str(self.work), "rev-parse", "HEAD")
        self.old_tree = self.git("-C", str(self.work), "rev-parse", "HEAD^{tree}")
        self.commit("README", b"hello, finally\n")
        self.git("-C", str(self.work), "push", "-q", str(self.upstream), "main")
        self.git("-C", str(self.work), "checkout", "-q", "-b", "leak")
        self.leak_commit = self.commit("secret.env", b"AWS_SECRET_ACCESS_KEY=not-for-the-agent\n")
        self.leak_tree = self.git("-C", str(self.work), "rev-parse", "HEAD^{tree}")
        self.leak_blob = self.git("-C", str(self.work), "rev-parse", "HEAD:secret.env")
        self.git("-C", str(self.work), "tag", "-a", "-m", "release notes naming a secret", "leaktag", "main")
        self.leak_tag = self.git("-C", str(self.work), "rev-parse", "leaktag")
        self.git("-C", str(self.work), "push", "-q", str(self.upstream), "leak", "leaktag")
        self.refresh_now()  # the gate fetched them while they were published
        self.git("--git-dir", str(self.upstream), "update-ref", "-d", "refs/heads/leak")
        self.git("--git-dir", str(self.upstream), "update-ref", "-d", "refs/tags/leaktag")
        self.refresh_now()  # and then saw them taken down
        mirror_dir = str(self.mirrors.path(self.repo))
        for oid in (self.leak_commit, self.leak_tree, self.leak_blob, self.leak_tag):
            self.assertEqual(subprocess.run(["git", "--git-dir", mirror_dir, "cat-file", "-e", oid]).returncode, 0,
                             "the mirror no longer holds the hidden objects: the test proves nothing")
        self.url = f"http://127.0.0.1:{self.port}/lib.git"
        self.hidden = {"blob": self.leak_blob, "tree": self.leak_tree, "tag": self.leak_tag, "commit": self.leak_commit}

    def refresh_now(self) -> None:
        """The mirror made to match the upstream now (as a push has it done, whatever the window)."""
        with self.mirrors.lock(self.repo):
            self.mirrors.refresh_held(self.repo)

    def fetch_by_id(self, folder: str, oid: str, *config: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", folder, *config, "fetch", self.url, oid], env=self.env, capture_output=True,
                              text=True)

    def has(self, folder: str, oid: str) -> bool:
        # No lazy fetch from a partial clone: only what is there.
        return subprocess.run(["git", "-C", folder, "cat-file", "-e", oid], env={**self.env, "GIT_NO_LAZY_FETCH": "1"},
                              capture_output=True).returncode == 0


class HiddenObjectsTest(HiddenObjectsCase):
    def test_no_object_of_a_branch_or_tag_taken_down_can_be_fetched_by_id(self) -> None:
        clone = str(self.dir / "clone")
        self.git("clone", "-q", self.url, clone)
        for kind, oid in self.hidden.items():
            for version in ("0", "2"):
                with self.subTest(kind=kind, protocol=version):
                    run = self.fetch_by_id(clone, oid, "-c", f"protocol.version={version}")
                    self.assertNotEqual(run.returncode, 0, run.stderr)
                    self.assertIn(f"fatal: remote error: upload-pack: {NOT_OURS} {oid}", run.stderr)
                    self.assertFalse(self.has(clone, oid))

    def test_a_raw_request_for_a_hidden_blob_gets_an_error_and_no_pack(self) -> None:
        caps = " multi_ack_detailed side-band-64k ofs-delta no-progress"
        requests = {
            "plain": (want_request(f"want {self.leak_blob}{caps}\n"), {}),
            "upper-case id": (want_request(f"want {self.leak_blob.upper()}{caps}\n"), {}),
            "id glued to capabilities": (want_request(f"want {self.leak_blob}ofs-delta\n"), {}),
            "after a tip": (want_request(f"want {self.base}{caps}\n", f"want {self.leak_blob}\n"), {}),
            "upper-case length": (b"003B" + want_request(f"want {self.leak_blob}ofs-delta\n")[4:], {}),
            "gzip": (gzip.compress(want_request(f"want {self.leak_blob}{caps}\n")), {"Content-Encoding": "gzip"}),
            "x-gzip": (gzip.compress(want_request(f"want {self.leak_blob}{caps}\n")), {"Content-Encoding": "x-gzip"}),
            "no flush": (pkt(f"want {self.leak_blob}{caps}\n"), {}),
        }
        for name, (request, headers) in requests.items():
            with self.subTest(name):
                status, answer = self.post("git-upload-pack", request, headers)
                self.assertEqual(status, 200, answer)
                self.assertIn(f"ERR upload-pack: {NOT_OURS} {self.leak_blob}".encode(), answer)
                self.assertNotIn(b"PACK", answer)
                self.assertNotIn(b"not-for-the-agent", answer)

    def test_a_partial_clone_cannot_lazily_fetch_a_hidden_blob(self) -> None:
        clone = str(self.dir / "partial")
        self.git("clone", "-q", "--filter=blob:none", self.url, clone)
        run = subprocess.run(["git", "-C", clone, "cat-file", "-p", self.leak_blob], env=self.env, capture_output=True,
                             text=True)
        self.assertNotEqual(run.returncode, 0)
        self.assertIn(NOT_OURS, run.stderr)
        self.assertNotIn("not-for-the-agent", run.stdout)

    def test_a_partial_clone_still_fetches_the_visible_history_lazily(self) -> None:
        clone = str(self.dir / "partial")
        self.git("clone", "-q", "--filter=blob:none", self.url, clone)
        self.assertFalse(self.has(clone, self.old_readme))
        self.git("-C", clone, "checkout", "-q", self.base)  # its README is fetched for the checkout
        self.assertTrue(self.has(clone, self.old_readme))
        self.assertIn("hello again", self.git("-C", clone, "log", "-p", "main"))  # each version, fetched as needed

    def test_visible_objects_are_still_served_by_id(self) -> None:
        for kind, oid in {"old blob": self.old_readme, "old tree": self.old_tree, "old commit": self.old_commit}.items():
            with self.subTest(kind):
                empty = str(self.dir / f"empty-{kind.replace(' ', '-')}")
                self.git("init", "-q", empty)
                run = self.fetch_by_id(empty, oid)
                self.assertEqual(run.returncode, 0, run.stderr)
                self.assertTrue(self.has(empty, oid))

    def test_a_clone_of_many_refs_sends_its_wants_gzipped_and_works(self) -> None:
        # Over 1 KiB of wants: git gzips the request, and the gate reads the wants inflated.
        tree = self.git("--git-dir", str(self.upstream), "rev-parse", "main^{tree}")
        refs = ""
        for i in range(60):  # each tag on a commit of its own: git wants each id once
            commit = self.git("--git-dir", str(self.upstream), "commit-tree", tree, "-p", self.base, "-m", f"t{i}")
            refs += f"create refs/tags/t{i:03d} {commit}\n"
        subprocess.run(["git", "--git-dir", str(self.upstream), "update-ref", "--stdin"], input=refs, text=True,
                       env=self.env, check=True)
        from bot_bottle.sidecar.git_gate import body  # (the gate inflates requests itself since this test)

        self.refresh_now()
        with mock.patch.object(body, "gunzip", wraps=body.gunzip) as gunzip:
            self.git("clone", "-q", self.url, str(self.dir / "many"))
        self.assertTrue(gunzip.called, "the clone's request was not gzipped: the test proves nothing")
        self.assertEqual(len(self.git("-C", str(self.dir / "many"), "tag").split()), 60)

    def test_a_malformed_request_is_refused_before_git_runs(self) -> None:
        for name, request in {"bad length": b"zzzz" + b"want x\n", "short length": b"0003", "half a packet": b"0040want"}.items():
            with self.subTest(name):
                status, answer = self.post("git-upload-pack", request)
                self.assertEqual(status, 400, answer)
        status, answer = self.post("git-upload-pack", b"\x1f\x8b" + b"not gzip", {"Content-Encoding": "gzip"})
        self.assertEqual(status, 400, answer)
        status, answer = self.post("git-upload-pack", want_request(f"want {self.base}\n"), {"Content-Encoding": "br"})
        self.assertEqual(status, 415, answer)


if __name__ == "__main__":
    unittest.main()
