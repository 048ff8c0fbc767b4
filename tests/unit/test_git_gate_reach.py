"""The pieces of the gate's want check: the reachability check and its kept walk, pkt-line
sections as git reads them, and gzip request bodies inflated within a limit."""

from __future__ import annotations

import gzip
import unittest
import zlib
from unittest import mock

from bot_bottle.sidecar.git_gate import body, pktline, reach
from tests.unit.test_git_gate_wants import HiddenObjectsCase, pkt


class ReachabilityTest(HiddenObjectsCase):
    def test_tips_are_served_without_any_walk(self) -> None:
        checker = reach.Reachability()
        main = self.git("--git-dir", str(self.upstream), "rev-parse", "main")
        with mock.patch.object(reach, "reached") as walk, mock.patch.object(reach, "unreachable_commits") as commits:
            self.assertEqual(checker.unreachable(self.mirrors.path(self.repo), [main, main]), [])
        walk.assert_not_called()
        commits.assert_not_called()

    def test_the_walk_is_kept_while_the_refs_stay_and_dropped_when_they_move(self) -> None:
        checker = reach.Reachability()
        path = self.mirrors.path(self.repo)
        # A branch reaching the secret is published again: its blob is served, from one walk.
        self.git("-C", str(self.work), "push", "-q", str(self.upstream), "leak:refs/heads/again")
        self.refresh_now()
        with mock.patch.object(reach, "reached", wraps=reach.reached) as walk:
            for _ in range(3):
                self.assertEqual(checker.unreachable(path, [self.leak_blob, self.old_readme]), [])
            self.assertEqual(walk.call_count, 1)
            # Taken down again: the kept walk proves nothing any more.
            self.git("--git-dir", str(self.upstream), "update-ref", "-d", "refs/heads/again")
            self.refresh_now()
            self.assertEqual(checker.unreachable(path, [self.old_readme, self.leak_blob]), [self.leak_blob])
            self.assertEqual(walk.call_count, 2)

    def test_a_repository_too_large_to_keep_is_still_checked(self) -> None:
        checker = reach.Reachability(max_cached=2)
        path = self.mirrors.path(self.repo)
        self.assertEqual(checker.unreachable(path, [self.old_readme]), [])
        self.assertEqual(checker.unreachable(path, [self.leak_blob, self.old_tree, self.leak_tag]),
                         [self.leak_blob, self.leak_tag])
        self.assertEqual(checker._walked, {})

    def test_walks_kept_for_several_repos_stay_within_the_limit_oldest_dropped_first(self) -> None:
        path = self.mirrors.path(self.repo)
        objects = len(list(reach.reached(path, reach.read_refs(path).values)))
        checker = reach.Reachability(max_cached=objects + 1)
        other = self.dir / "other.git"
        self.git("clone", "-q", "--mirror", str(path), str(other))
        self.assertEqual(checker.unreachable(path, [self.old_readme]), [])
        self.assertEqual(list(checker._walked), [path])
        self.assertEqual(checker.unreachable(other, [self.old_readme, self.leak_blob]), [self.leak_blob])
        self.assertEqual(list(checker._walked), [other])

    def test_ids_the_mirror_lacks_are_refused(self) -> None:
        missing = "0123456789abcdef0123456789abcdef01234567"
        self.assertEqual(reach.Reachability().unreachable(self.mirrors.path(self.repo), [missing]), [missing])


class SectionTest(unittest.TestCase):
    def test_a_section_is_read_across_any_cut_of_its_bytes(self) -> None:
        data = pkt("want " + "a" * 40 + " ofs-delta\n") + pkt("want " + "B" * 40 + "\n") + b"0000" + pkt("have x\n")
        for size in (1, 3, 7, len(data)):
            with self.subTest(size=size):
                chunks = iter([data[i:i + size] for i in range(0, len(data), size)])
                section = pktline.read_section(chunks, 1 << 20)
                self.assertEqual(pktline.wanted_ids(section.payloads, 40), ["a" * 40, "b" * 40])
                rest = b"".join(chunks)
                self.assertEqual(section.consumed + rest, data)  # nothing lost on the way to git

    def test_git_reads_lengths_in_either_case_and_ends_a_section_on_any_special_packet(self) -> None:
        payload = b"want " + b"c" * 40 + b" " + b"x" * 135 + b"\n"
        head = f"{len(payload) + 4:04X}".encode()
        self.assertEqual(head, b"00BA")
        for end in (b"0000", b"0001", b"0002", b""):
            section = pktline.read_section(iter([head + payload + end + b"0032want " + b"d" * 40 + b"\n"]), 1 << 20)
            self.assertEqual(pktline.wanted_ids(section.payloads, 40), ["c" * 40] if end else ["c" * 40, "d" * 40])

    def test_what_git_would_refuse_is_refused(self) -> None:
        for data in (b"00zz", b"0003", b"0004want", b"fff1" + b"x" * 10):
            with self.subTest(data=data), self.assertRaises(pktline.ProtocolError):
                pktline.read_section(iter([data]), 1 << 20)
        with self.assertRaises(pktline.ProtocolError):
            pktline.read_section(iter([pkt("want " + "a" * 40 + "\n")] * 1000), 10_000)
        for line in (b"want abc\n", b"want\n", b"wants " + b"a" * 40):
            with self.subTest(line=line), self.assertRaises(pktline.ProtocolError):
                pktline.wanted_ids([line], 40)
        self.assertEqual(pktline.wanted_ids([b"shallow " + b"a" * 40, b"filter blob:none\n"], 40), [])


class GunzipTest(unittest.TestCase):
    def test_inflates_in_pieces_and_ignores_what_follows_the_first_member(self) -> None:
        data = bytes(range(256)) * 4000
        packed = gzip.compress(data) + b"trailing junk"
        out = b"".join(body.gunzip(iter([packed[i:i + 100] for i in range(0, len(packed), 100)]), len(data)))
        self.assertEqual(out, data)

    def test_a_highly_compressible_body_stops_at_the_limit(self) -> None:
        bomb = gzip.compress(b"0" * (20 * 1024 * 1024))
        with self.assertRaises(body.TooLarge):
            b"".join(body.gunzip(iter([bomb]), 1024 * 1024))

    def test_a_cut_or_corrupt_stream_is_refused(self) -> None:
        packed = gzip.compress(b"hello" * 1000)
        with self.assertRaises(body.CutShort):
            b"".join(body.gunzip(iter([packed[:-10]]), 1 << 20))
        with self.assertRaises(ValueError):
            b"".join(body.gunzip(iter([packed[:10] + bytes(50)]), 1 << 20))
        self.assertIsInstance(zlib.error(), Exception)


if __name__ == "__main__":
    unittest.main()
