"""A fetch's negotiation through the gate: hidden objects answer as if the mirror lacked them,
and git serves each request from the refs the gate checked.

upload-pack acknowledges a ``have`` of any object it holds and dies on a ``shallow`` line naming
one that is not a commit, so a hidden object (of a branch or tag taken down upstream) would tell
whoever names it that it exists. The gate leaves those lines out of what git reads. Ordinary
fetches (incremental, shallow, partial, either protocol the client prefers) must negotiate as
before. (Fixture: ``test_git_gate_wants.HiddenObjectsCase``.)"""

from __future__ import annotations

import gzip
import subprocess
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle.sidecar.git_gate import pktline, reach, view
from tests.unit.test_git_gate_wants import HiddenObjectsCase, pkt

MISSING = "0123456789abcdef0123456789abcdef01234567"
CAPS = " multi_ack_detailed side-band-64k ofs-delta no-progress"


class HaveOracleTest(HiddenObjectsCase):
    def setUp(self) -> None:
        super().setUp()
        self.main = self.git("--git-dir", str(self.upstream), "rev-parse", "main")

    def negotiate(self, *haves: str, gzipped: bool = False) -> bytes:
        """The answer to one negotiation round: the tip of main wanted, ``haves`` had."""
        request = pkt(f"want {self.main}{CAPS}\n") + pktline.FLUSH
        request += b"".join(pkt(f"have {oid}\n") for oid in haves) + pktline.FLUSH
        headers = {"Content-Encoding": "gzip"} if gzipped else {}
        status, answer = self.post("git-upload-pack", gzip.compress(request) if gzipped else request, headers)
        self.assertEqual(status, 200, answer)
        return answer

    def test_a_have_of_a_hidden_object_is_answered_as_one_the_mirror_lacks(self) -> None:
        lacking = self.negotiate(MISSING)
        self.assertEqual(lacking, b"0008NAK\n")
        for kind, oid in self.hidden.items():
            for gzipped in (False, True):
                with self.subTest(kind=kind, gzipped=gzipped):
                    self.assertEqual(self.negotiate(oid, gzipped=gzipped), lacking)
                    self.assertEqual(self.negotiate(oid.upper(), gzipped=gzipped), lacking)
                    # After a common commit, too (git says "ready" there for an id it lacks).
                    self.assertEqual(self.negotiate(self.old_commit, oid), self.negotiate(self.old_commit, MISSING))

    def test_a_have_of_a_visible_commit_is_still_acknowledged(self) -> None:
        answer = self.negotiate(self.leak_commit, self.old_commit)
        self.assertIn(f"ACK {self.old_commit} common".encode(), answer)
        self.assertNotIn(self.leak_commit.encode(), answer)

    def shallow_answer(self, oid: str) -> bytes:
        """What git says before the pack to a shallow client deepening main by one commit."""
        request = (pkt(f"want {self.main}{CAPS}\n") + pkt(f"shallow {oid}\n") + pkt("deepen 1\n") + pktline.FLUSH
                   + pkt("done\n"))
        status, answer = self.post("git-upload-pack", request)
        self.assertEqual(status, 200, answer)
        return answer.partition(b"PACK")[0][:-4]  # the shallow lines and NAK, without the pack's band packet

    def test_a_shallow_line_naming_a_hidden_object_is_answered_as_one_the_mirror_lacks(self) -> None:
        lacking = self.shallow_answer(MISSING)
        self.assertIn(b"NAK", lacking)
        for kind, oid in self.hidden.items():
            with self.subTest(kind):
                self.assertEqual(self.shallow_answer(oid), lacking)

    def test_a_sparse_filter_cannot_name_a_hidden_object(self) -> None:
        # git would read the named blob (or <commit>:<path>) as sparse patterns, reach unchecked.
        def answer(spec: str) -> bytes:
            request = (pkt(f"want {self.main}{CAPS} filter\n") + pkt(f"filter sparse:oid={spec}\n") + pktline.FLUSH
                       + pkt("done\n"))
            status, body = self.post("git-upload-pack", request)
            self.assertEqual(status, 200, body)
            return body

        lacking = answer(MISSING)
        self.assertNotIn(b"PACK", lacking)
        for spec in (self.leak_blob, f"{self.leak_commit}:secret.env"):
            with self.subTest(spec):
                self.assertEqual(answer(spec).replace(spec.encode(), b"X"), lacking.replace(MISSING.encode(), b"X"))
        # blob:none, what a partial clone asks for, is still served.
        request = pkt(f"want {self.main}{CAPS} filter\n") + pkt("filter blob:none\n") + pktline.FLUSH + pkt("done\n")
        self.assertIn(b"PACK", self.post("git-upload-pack", request)[1])

    def test_a_malformed_have_section_is_refused_before_git_runs(self) -> None:
        request = pkt(f"want {self.main}{CAPS}\n") + pktline.FLUSH + pkt(f"have {self.old_commit}\n") + b"zzzz"
        status, answer = self.post("git-upload-pack", request)
        self.assertEqual(status, 400, answer)
        self.assertIn(b"bad packet length", answer)

    def test_nothing_after_done_is_read_as_a_have(self) -> None:
        # upload-pack stops at "done"; what follows is handed on untouched and never read.
        request = (pkt(f"want {self.main}{CAPS}\n") + pktline.FLUSH + pkt(f"have {self.old_commit}\n") + pkt("done\n")
                   + pkt(f"have {self.leak_commit}\n") + pktline.FLUSH)
        status, answer = self.post("git-upload-pack", request)
        self.assertEqual(status, 200, answer)
        self.assertIn(b"PACK", answer)
        self.assertNotIn(self.leak_commit.encode(), answer)


class NegotiationTest(HiddenObjectsCase):
    """Real fetches through the gate, each after new work lands upstream."""

    def land_upstream(self, name: str) -> str:
        self.git("-C", str(self.work), "checkout", "-q", "main")
        commit = self.commit(name, f"{name}\n".encode())
        self.git("-C", str(self.work), "push", "-q", str(self.upstream), "main")
        self.refresh_now()
        return commit

    def fetch(self, clone: Path, *args: str, config: tuple[str, ...] = ()) -> str:
        """Fetch through the gate; git's packet trace (what the gate acknowledged)."""
        trace = self.dir / "trace"
        trace.unlink(missing_ok=True)
        run = subprocess.run(["git", "-C", str(clone), *config, "fetch", "-q", *args, "origin"],
                             env={**self.env, "GIT_TRACE_PACKET": str(trace)}, capture_output=True, text=True)
        self.assertEqual(run.returncode, 0, run.stderr)
        return trace.read_text(errors="replace")

    def assert_up_to_date(self, clone: Path) -> None:
        self.assertEqual(self.git("-C", str(clone), "rev-parse", "origin/main"),
                         self.git("--git-dir", str(self.upstream), "rev-parse", "main"))

    def test_incremental_fetches_still_negotiate_in_either_protocol(self) -> None:
        clone = self.dir / "clone"
        self.git("clone", "-q", self.url, str(clone))
        for version in ("0", "2"):
            with self.subTest(protocol=version):
                self.land_upstream(f"v{version}.txt")
                trace = self.fetch(clone, config=("-c", f"protocol.version={version}"))
                self.assertIn("ACK", trace)  # the clone's history was found common: only the new commit came
                self.assert_up_to_date(clone)

    def test_a_clone_holding_a_hidden_commit_still_fetches(self) -> None:
        clone = self.dir / "clone"
        self.git("clone", "-q", self.url, str(clone))
        # The agent's clone got the branch while it was published: its fetches name it as a have.
        self.git("-C", str(clone), "fetch", "-q", str(self.work), "leak:leak")
        self.land_upstream("after.txt")
        trace = self.fetch(clone)
        self.assertIn(f"have {self.leak_commit}", trace)
        self.assertNotIn(f"ACK {self.leak_commit}", trace)
        self.assert_up_to_date(clone)
        self.assertTrue([e for e in self.events if e["what"] == "hidden-lines-dropped"], self.events)

    def test_shallow_clones_fetch_deepen_and_unshallow(self) -> None:
        clone = self.dir / "shallow"
        self.git("clone", "-q", "--depth", "1", self.url, str(clone))
        self.land_upstream("s.txt")
        self.fetch(clone)
        self.assert_up_to_date(clone)
        count = int(self.git("-C", str(clone), "rev-list", "--count", "origin/main"))
        self.fetch(clone, "--deepen=1")
        self.assertEqual(int(self.git("-C", str(clone), "rev-list", "--count", "origin/main")), count + 1)
        self.fetch(clone, "--unshallow")
        self.assertEqual(self.git("-C", str(clone), "rev-list", "--count", "origin/main"),
                         self.git("--git-dir", str(self.upstream), "rev-list", "--count", "main"))

    def test_partial_clones_fetch_and_fill_in_blobs(self) -> None:
        clone = self.dir / "partial"
        self.git("clone", "-q", "--filter=blob:none", self.url, str(clone))
        self.land_upstream("p.txt")
        self.fetch(clone)
        self.assert_up_to_date(clone)
        self.git("-C", str(clone), "merge", "-q", "--ff-only", "origin/main")
        self.assertEqual((clone / "p.txt").read_text(), "p.txt\n")
        self.assertIn("hello again", self.git("-C", str(clone), "log", "-p"))


class FrozenRefsTest(HiddenObjectsCase):
    """git reads the refs the gate checked, whatever a refresh does to the mirror meanwhile."""

    def test_a_ref_deleted_after_the_check_is_served_as_checked_and_gone_for_the_next_fetch(self) -> None:
        self.git("-C", str(self.work), "push", "-q", str(self.upstream), "leak:refs/heads/again")
        self.refresh_now()
        mirror = str(self.mirrors.path(self.repo))
        real = reach.read_refs
        moved = []

        def read_then_deleted(git_dir: Path) -> reach.Refs:
            refs = real(git_dir)
            if not moved:  # a refresh lands just after the gate read the refs (a takedown)
                self.git("--git-dir", mirror, "update-ref", "-d", "refs/heads/again")
                moved.append(True)
            return refs

        empty = str(self.dir / "empty")
        self.git("init", "-q", empty)
        with mock.patch.object(reach, "read_refs", side_effect=read_then_deleted):
            run = self.fetch_by_id(empty, self.leak_commit)
        self.assertTrue(moved)
        # git agreed with the check (it read the refs checked, not the mirror's of the moment) ...
        self.assertEqual(run.returncode, 0, run.stderr)
        # ... and the next request is checked against the refs as they are now.
        other = str(self.dir / "other")
        self.git("init", "-q", other)
        run = self.fetch_by_id(other, self.leak_blob)
        self.assertIn("not our ref", run.stderr)
        self.assertEqual(list(self.mirrors.views.iterdir()), [], "a request's view was left behind")


class ViewTest(HiddenObjectsCase):
    def test_a_view_that_cannot_be_made_is_an_error_git_prints(self) -> None:
        with mock.patch.object(view.shutil, "copyfile", side_effect=OSError(28, "No space left on device")):
            run = subprocess.run(["git", "clone", "-q", self.url, str(self.dir / "c")], env=self.env, capture_output=True,
                                 text=True)
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("remote error: the git-gate could not prepare this fetch: No space left on device", run.stderr)
        self.assertEqual(list(self.mirrors.views.iterdir()), [])


    def show_ref(self, git_dir: Path) -> str:
        return self.git("--git-dir", str(git_dir), "show-ref", "--head", "--dereference")

    def test_a_view_holds_exactly_the_refs_read_over_the_mirrors_objects(self) -> None:
        mirror = self.mirrors.path(self.repo)
        self.git("--git-dir", str(self.upstream), "tag", "-a", "-m", "a release", "v1", "main")
        self.refresh_now()
        refs = reach.read_refs(mirror)
        before = self.show_ref(mirror)
        self.assertIn("refs/tags/v1^{}", before)
        with view.frozen(mirror, refs, self.mirrors.views) as root:
            frozen = root / mirror.name
            # The mirror moves: a branch deleted, one created, main moved back.
            self.git("--git-dir", str(mirror), "update-ref", "-d", "refs/tags/v1")
            self.git("--git-dir", str(mirror), "update-ref", "refs/heads/new", self.leak_commit)
            self.git("--git-dir", str(mirror), "update-ref", "refs/heads/main", self.base)
            self.assertEqual(self.show_ref(frozen), before)
            self.assertEqual(self.git("--git-dir", str(frozen), "cat-file", "-t", self.leak_blob), "blob")
            self.git("--git-dir", str(frozen), "fsck", "--connectivity-only", "--no-dangling")
        self.assertFalse(root.exists())

    def test_an_unborn_head_stays_unborn(self) -> None:
        mirror = self.dir / "empty.git"
        self.git("init", "-q", "--bare", "-b", "trunk", str(mirror))
        refs = reach.read_refs(mirror)
        with view.frozen(mirror, refs, self.mirrors.views) as root:
            frozen = root / mirror.name
            self.assertEqual(self.git("--git-dir", str(frozen), "symbolic-ref", "HEAD"), "refs/heads/trunk")
            self.assertEqual(self.git("--git-dir", str(frozen), "for-each-ref"), "")

    def test_views_left_by_a_killed_gate_are_removed_at_start(self) -> None:
        leftover = self.mirrors.views / "0123" / "lib.git"
        leftover.mkdir(parents=True)
        self.mirrors.prepare()
        self.assertEqual(list(self.mirrors.views.iterdir()), [])


class NegotiationPacketsTest(unittest.TestCase):
    def test_the_haves_end_at_a_flush_or_just_after_done_as_upload_pack_reads_them(self) -> None:
        rest = pkt("have " + "b" * 40 + "\n")
        for end in (pktline.FLUSH, pkt("done\n"), pkt("done")):
            with self.subTest(end=end):
                data = pkt("have " + "a" * 40 + "\n") + end
                section = pktline.read_section(iter([data + rest]), 1 << 20, until_done=True)
                self.assertEqual(section.data, data)
                self.assertEqual(section.after, rest)
        # "done" followed by more than one newline is not git's "done": upload-pack dies on it.
        section = pktline.read_section(iter([pkt("done\n\n") + rest]), 1 << 20, until_done=True)
        self.assertEqual(section.data, pkt("done\n\n") + rest)

    def test_lines_are_left_out_by_id_and_every_other_packet_kept_byte_for_byte(self) -> None:
        a, b = "a" * 40, "b" * 40
        upper_length = b"0032" + f"have {b}\n".encode()
        data = pkt(f"have {a}\n") + upper_length + pkt(f"have {a.upper()} extra\n") + pkt("done\n") + pktline.FLUSH
        self.assertEqual(pktline.named_ids(pktline.read_section(iter([data]), 1 << 20).payloads, "have", 40),
                         [a, b, a])
        self.assertEqual(pktline.without(data, "have", 40, {a}), upper_length + pkt("done\n") + pktline.FLUSH)
        self.assertEqual(pktline.without(data, "have", 40, set()), data)
        self.assertEqual(pktline.without(data, "shallow", 40, {a, b}), data)
        # A line git cannot parse is kept (git dies on it before looking anything up).
        self.assertEqual(pktline.named_ids([b"have xyz\n"], "have", 40), [])


if __name__ == "__main__":
    unittest.main()
