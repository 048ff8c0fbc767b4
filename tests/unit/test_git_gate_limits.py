"""The gate cannot be wedged by a push: its log is scanned in bounded memory (nothing dropped at a
seam), a log past the limit is refused as a scan-limit, and a git that hangs is killed with its
helpers and refuses the push instead of holding it."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle.sidecar.git_gate import patch, proc, upstream
from bot_bottle.sidecar.git_gate.patch import LogReader, read_pieces
from bot_bottle.sidecar.git_gate.scan import PatternDetector, scan
from bot_bottle.sidecar.supervise import channel
from tests._requires import requires
from tests.unit.git_gate_repo_helper import git_env, push_repos

AWS = "AKIA" + "Z7QK4M2XW9RTB3PL"
GHP = "ghp_" + "q8Yt3LmN0pR5sV2wX7zA9cE4gJ6kB1dF0hUi"
ROOT = Path(__file__).resolve().parents[2]
HAS_GIT = shutil.which("git") is not None
MiB = 1024 * 1024


def fast_import(git_dir: Path, files: dict[str, bytes], env: dict[str, str]) -> str:
    """One commit holding ``files`` (written by git fast-import: quick even for hundreds of MB)."""
    subprocess.run(["git", "init", "-q", "--bare", str(git_dir)], env=env, check=True)
    stream = subprocess.Popen(["git", "--git-dir", str(git_dir), "fast-import", "--quiet"], stdin=subprocess.PIPE, env=env)
    assert stream.stdin is not None
    for mark, data in enumerate(files.values(), start=1):
        stream.stdin.write(b"blob\nmark :%d\ndata %d\n" % (mark, len(data)) + data + b"\n")
    stream.stdin.write(b"commit refs/heads/main\ncommitter T <t@x> 1700000000 +0000\ndata 4\nbig\n")
    for mark, name in enumerate(files, start=1):
        stream.stdin.write(b"M 100644 :%d %s\n" % (mark, name.encode()))
    stream.stdin.close()
    if stream.wait() != 0:
        raise RuntimeError("git fast-import failed")
    return subprocess.run(["git", "--git-dir", str(git_dir), "rev-parse", "main"], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


class GitTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmp.cleanup)
        self.dir = Path(self._tmp.name)
        self.env = git_env(self.dir)

    def findings(self, git_dir: Path, commit: str) -> list[str]:
        env = {**self.env, "GIT_DIR": str(git_dir)}
        return [f.describe() for f in scan(read_pieces([commit], env=env), PatternDetector())]


# ---------------------------------------------------------------------------------- memory

MEASURE = textwrap.dedent("""
    import json, os, sys
    from bot_bottle.sidecar.git_gate import hook
    from bot_bottle.sidecar.git_gate.refs import RefUpdate
    from bot_bottle.sidecar.git_gate.scan import PatternDetector

    def peak_kib():
        # This process's own peak (VmHWM): ru_maxrss would carry the parent's peak over the exec.
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))

    detector = PatternDetector(patterns=(), known={"PLANTED": sys.argv[2]})  # str.find: cheap, as the test wants
    before = peak_kib()
    # What the hook runs for a push creating a branch at that commit.
    update = RefUpdate("0" * 40, sys.argv[1], "refs/heads/big")
    findings = hook.check([update], dict(os.environ), detector, hook.Verdict(repo="big"))
    print(json.dumps({"growth_kib": peak_kib() - before, "findings": [f.describe() for f in findings]}))
""")


# The most the scan's memory may grow by. The scan keeps ~18 MiB whatever the log's size (measured
# at 50, 100 and 200 MB), so a log twice this bound is failed by a scan holding it even once.
GROWTH_BOUND_KIB = 64 * 1024
# A deadline for the scans below that is a hang guard only, derived from no timing: a loaded
# 2-core machine stretches them several times over (a 200 MB log took 45 s of CPU and 139 s at a
# load of 12, the 136 MB one 48 s and 246 s at a load of 17; the old 120 s ran out).
HANG_GUARD_S = 900


@requires(HAS_GIT, "git")
class MemoryTest(GitTestCase):
    def test_a_136_mb_diff_is_scanned_in_bounded_memory_to_its_last_line(self) -> None:
        line = b"x" * 99 + b"\n"
        planted = "planted-secret-value-0123456789"
        count = -(-2 * GROWTH_BOUND_KIB * 1024 // len(line * 20000))  # 68 files of 2 MB: 136 MB
        files = {f"f{i:03}.txt": line * 20000 for i in range(count - 1)}  # of added lines
        files["zz-last.txt"] = line * 20000 + f"end {planted}\n".encode()
        self.assertGreaterEqual(sum(map(len, files.values())), 2 * GROWTH_BOUND_KIB * 1024)
        commit = fast_import(self.dir / "big.git", files, self.env)
        # Unreferenced, as a pushed commit is while the hook runs: the hook scans what no ref has yet.
        subprocess.run(["git", "--git-dir", str(self.dir / "big.git"), "update-ref", "-d", "refs/heads/main"],
                       env=self.env, check=True)
        env = {**self.env, "GIT_DIR": str(self.dir / "big.git"), "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", MEASURE, commit, planted], env=env, capture_output=True, text=True,
                             timeout=HANG_GUARD_S)
        self.assertEqual(out.returncode, 0, out.stderr[-2000:])
        result = json.loads(out.stdout)
        # The secret on the very last line of a 136 MB log is found...
        self.assertEqual(result["findings"], [f"commit {commit[:12]}: file zz-last.txt line 20001: detector known-secret:PLANTED"])
        # ...and memory grew by a small part of the log (it used to hold the log several times over:
        # ~950 MB for 200 MB).
        self.assertLess(result["growth_kib"], GROWTH_BOUND_KIB, f"peak memory grew by {result['growth_kib'] // 1024} MiB")


GIT_PEAK = textwrap.dedent("""
    import json, os, resource, sys
    from bot_bottle.sidecar.git_gate import hook
    from bot_bottle.sidecar.git_gate.refs import RefUpdate
    from bot_bottle.sidecar.git_gate.scan import PatternDetector

    detector = PatternDetector(patterns=(), known={"PLANTED": sys.argv[3]})
    update = RefUpdate(sys.argv[1], sys.argv[2], "refs/heads/big")
    findings = hook.check([update], dict(os.environ), detector, hook.Verdict(repo="big"))
    # The largest peak of the gits the hook ran (and waited for).
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"git_peak_kib": peak, "findings": [f.describe() for f in findings]}))
""")


@requires(HAS_GIT, "git")
class BigTextFileTest(GitTestCase):
    """git diffs a text file whole in memory, both sides and more (a few hundred MB would take
    the sidecar's 512 MB); past ``objects.BIG_FILE`` it calls the file binary and the gate reads
    it by id, in chunks, to its last byte."""

    PLANTED = "planted-secret-value-0123456789"
    LINE = b"an ordinary line of a very large generated text file, nothing in it\n"
    SIZE = 96 * MiB

    def git(self, *args: str, data: bytes | None = None) -> str:
        env = {**self.env, "GIT_DIR": str(self.dir / "big.git")}
        result = subprocess.run(["git", *args], input=data, env=env, capture_output=True, check=True)
        return result.stdout.decode().strip()

    def commit_with(self, content: bytes, parent: str | None) -> str:
        blob = self.git("hash-object", "-w", "--stdin", data=content)
        tree = self.git("mktree", data=f"100644 blob {blob}\tbig.txt\n".encode())
        return self.git("commit-tree", tree, "-m", "big", *(["-p", parent] if parent else []))

    def push(self, old: str, new: str) -> dict:
        env = {**self.env, "GIT_DIR": str(self.dir / "big.git"), "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", GIT_PEAK, old, new, self.PLANTED], env=env, capture_output=True,
                             text=True, timeout=HANG_GUARD_S)
        self.assertEqual(out.returncode, 0, out.stderr[-2000:])
        return json.loads(out.stdout)

    def test_a_new_and_a_changed_huge_text_file_are_scanned_to_the_end_in_bounded_memory(self) -> None:
        subprocess.run(["git", "init", "-q", "--bare", str(self.dir / "big.git")], env=self.env, check=True)
        body = self.LINE * (self.SIZE // len(self.LINE))
        first = self.commit_with(body + f"end {self.PLANTED}\n".encode(), None)
        second = self.commit_with(body + b"more\n" + f"again {self.PLANTED}\n".encode(), first)
        new_file = self.push("0" * 40, first)
        self.git("update-ref", "refs/heads/big", first)  # upstream has it: the next push adds one commit
        changed = self.push(first, second)
        for result, commit in ((new_file, first), (changed, second)):
            self.assertEqual(result["findings"],
                             [f"commit {commit[:12]}: binary file big.txt: detector known-secret:PLANTED"])
        # A new file is loaded once by git (it was: once, plus the diff of it, ~1.7 times its
        # size); a changed one not at all (it was: both sides and the diff).
        self.assertLess(new_file["git_peak_kib"], 1.25 * self.SIZE // 1024, f"{new_file['git_peak_kib'] // 1024} MiB")
        self.assertLess(changed["git_peak_kib"], 48 * 1024, f"{changed['git_peak_kib'] // 1024} MiB")


# ---------------------------------------------------------------------------------- seams

class ReaderTest(unittest.TestCase):
    def test_a_long_line_in_parts_decodes_as_the_whole_would(self) -> None:
        data = ("é€" * 700 + "\n" + "x" * 3000 + "\nlast").encode() + b"\xff\xe2\x82\nend\n"
        with mock.patch.object(patch, "LINE_PART", 7):
            parts = list(LogReader(io.BytesIO(data), 1 << 20).parts())
        lines, current = [], ""
        for text, first, last in parts:
            current = text if first else current + text
            if last:
                lines.append(current)
        self.assertEqual(lines, data.decode("utf-8", "replace").split("\n")[:-1])
        self.assertLessEqual(max(len(t) for t, _, _ in parts), 7 + 3)  # a read, and a character cut by the one before

    def test_the_limit_is_exact(self) -> None:
        data = b"abc\n" * 10
        for limit, over in ((40, False), (39, True)):
            reader = LogReader(io.BytesIO(data), limit)
            list(reader.parts())
            self.assertEqual(reader.over, over, limit)


@requires(HAS_GIT, "git")
class SeamTest(GitTestCase):
    """Small windows and reads (the constants are injectable), secrets planted across every seam."""

    def small(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        stack.enter_context(mock.patch.object(patch, "BLOCK_WINDOW", 4096))  # overlap: half a window
        stack.enter_context(mock.patch.object(patch, "LINE_PART", 1000))
        return stack

    def test_secrets_across_window_and_read_seams_of_many_lines(self) -> None:
        lines = [f"line {i:05} " + "y" * 40 for i in range(3000)]
        planted = {}
        for n, at in enumerate(range(40, 3000, 97)):
            secret = (AWS, GHP)[n % 2]
            lines[at] = lines[at][:30] + f" {secret} " + lines[at][30:]
            planted[at + 1] = "aws-access-key-id" if secret == AWS else "github-token"
        commit = fast_import(self.dir / "r.git", {"many.txt": ("\n".join(lines) + "\n").encode()}, self.env)
        with self.small():
            found = self.findings(self.dir / "r.git", commit)
        expected = [f"commit {commit[:12]}: file many.txt line {line}: detector {det}" for line, det in planted.items()]
        self.assertEqual(found, expected)

    def test_secrets_across_the_seams_of_one_huge_line(self) -> None:
        body = bytearray(b"z" * 60000)
        offsets = [995, 1998, 2040, 4090, 6130, 8180, 30000, 59950]  # around reads (1000) and windows (4096, 2048)
        for n, at in enumerate(offsets):
            secret = (AWS if n % 2 else GHP).encode()
            body[at:at + len(secret)] = secret
            body[at - 1:at] = b" "
            body[at + len(secret):at + len(secret) + 1] = b" "
        data = b"first line\n" + bytes(body) + b"\nthird " + GHP.encode() + b"\n"
        commit = fast_import(self.dir / "r.git", {"one.txt": data}, self.env)
        with self.small():
            found = self.findings(self.dir / "r.git", commit)
        # One finding per detector and line: every planted secret is on line 2 or 3, none is lost.
        self.assertEqual(sorted(found), [
            f"commit {commit[:12]}: file one.txt line 2: detector aws-access-key-id",
            f"commit {commit[:12]}: file one.txt line 2: detector github-token",
            f"commit {commit[:12]}: file one.txt line 3: detector github-token",
        ])
        # And each one on its own is found at a seam (not only thanks to the others).
        for at in offsets:
            with self.subTest(at=at):
                single = bytearray(b"z" * 60000)
                single[at - 1:at + len(AWS) + 1] = b" " + AWS.encode() + b" "
                commit = fast_import(self.dir / f"s{at}.git", {"one.txt": b"first\n" + bytes(single) + b"\n"}, self.env)
                with self.small():
                    self.assertEqual(self.findings(self.dir / f"s{at}.git", commit),
                                     [f"commit {commit[:12]}: file one.txt line 2: detector aws-access-key-id"])

    def test_a_header_line_past_its_limit_is_refused(self) -> None:
        name = "/".join(["n" * 200] * 10)  # "diff --git a/<name> b/<name>": longer than a read (1000)
        commit = fast_import(self.dir / "r.git", {name: b"x\n"}, self.env)
        env = {**self.env, "GIT_DIR": str(self.dir / "r.git")}
        with self.small():  # put together whole from its parts
            self.assertIn(name, [p.path for p in read_pieces([commit], env=env) if p.kind == "path"])
        with self.small(), mock.patch.object(patch, "MAX_HEADER_LINE", 3000):
            with self.assertRaises(patch.ObjectError):
                self.findings(self.dir / "r.git", commit)


# ---------------------------------------------------------------------------------- the hook

@requires(HAS_GIT, "git")
class HookCase(unittest.TestCase):
    def setUp(self) -> None:
        self.repos = push_repos(self)
        self.path = os.environ.get("PATH", "/usr/bin:/bin")  # the hook's PATH (a test may put a git of its own first)

    def commit(self, name: str, content: str) -> str:
        return self.repos.commit({name: content}, f"add {name}")

    def run_hook(self, lines: str) -> tuple[int, str, dict]:
        # The hook's own default supervise root, as the gate runs it.
        code, out = self.repos.hook(lines, PatternDetector(), extra_env={"PATH": self.path},
                                    supervise_root=channel.DEFAULT_ROOT)
        return code, out, self.repos.verdict_doc()


class LogLimitTest(HookCase):
    def test_a_log_past_the_limit_is_a_scan_limit_and_nothing_goes_upstream(self) -> None:
        new = self.commit("data.txt", "harmless line of text\n" * 4000)  # about 90 KB of diff
        with mock.patch.object(patch, "MAX_LOG_BYTES", 64 * 1024):
            code, out, verdict = self.run_hook(f"{self.repos.base} {new} refs/heads/main\n")
        self.assertEqual(code, 1, out)
        self.assertEqual(self.repos.upstream_rev(), self.repos.base)
        self.assertEqual(verdict["result"], "rejected")
        self.assertIn(f"commit {new[:12]}: the diff of the push (not read whole): detector scan-limit"
                      " (the push's diff is larger than 0 MiB, the most the gate reads)", out)
        self.assertIn("push the work in smaller parts", out)

    def test_a_push_with_too_many_findings_is_refused_without_reading_the_rest(self) -> None:
        # A token on every line: each finding is kept, shown and logged, so their number is capped.
        from bot_bottle.sidecar.git_gate import scan as scan_module

        token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
        new = self.commit("tokens.txt", "".join(f"{token[:-4]}{i:04d}\n" for i in range(60)))
        with mock.patch.object(scan_module, "MAX_FINDINGS", 25):
            code, out, verdict = self.run_hook(f"{self.repos.base} {new} refs/heads/main\n")
        self.assertEqual(code, 1, out)
        self.assertEqual(self.repos.upstream_rev(), self.repos.base)
        self.assertEqual(verdict["result"], "rejected")
        self.assertEqual(len(verdict["findings"]), 26)
        self.assertEqual(verdict["findings"][-1]["detector"], "scan-limit (too many findings)")
        self.assertIn("the rest of the push (not read: more than 25 findings): detector scan-limit", out)
        self.assertIn("stops reading a push after 25 findings", out)
        self.assertNotIn(token[:-4], out)

    def test_as_many_findings_as_the_cap_are_all_shown_with_no_limit_finding(self) -> None:
        from bot_bottle.sidecar.git_gate import scan as scan_module

        token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
        new = self.commit("tokens.txt", "".join(f"{token[:-4]}{i:04d}\nplain line\n" for i in range(25)))
        with mock.patch.object(scan_module, "MAX_FINDINGS", 25):
            code, out, verdict = self.run_hook(f"{self.repos.base} {new} refs/heads/main\n")
        self.assertEqual(code, 1, out)
        self.assertEqual(len(verdict["findings"]), 25)
        self.assertNotIn("scan-limit", out)

    def test_a_log_within_the_limit_is_forwarded(self) -> None:
        new = self.commit("data.txt", "harmless line of text\n" * 2000)
        with mock.patch.object(patch, "MAX_LOG_BYTES", 64 * 1024):
            code, out, verdict = self.run_hook(f"{self.repos.base} {new} refs/heads/main\n")
        self.assertEqual((code, verdict["result"]), (0, "forwarded"), out)
        self.assertEqual(self.repos.upstream_rev(), new)


HANGING_GIT = """#!/bin/sh
# git, except that {hang!r} hangs (with a helper holding its output open, as a transport would).
case " $* " in
  *" {hang} "*) echo $$ >> {pids}; sleep 300 & echo $! >> {pids}; wait; exit 1;;
esac
exec {git} "$@"
"""


class TimeoutTest(HookCase):
    def hanging_git(self, hang: str) -> Path:
        bin_dir = self.repos.dir / f"bin-{hang.replace(' ', '-')}"
        bin_dir.mkdir()
        pids = bin_dir / "pids"
        script = bin_dir / "git"
        script.write_text(HANGING_GIT.format(hang=hang, pids=pids, git=shutil.which("git")))
        script.chmod(0o755)
        self.path = f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        self.addCleanup(self.kill_left, pids)
        return pids

    @staticmethod
    def alive(pid: int) -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")  # a zombie has ended (only its parent has not reaped it yet)

    def kill_left(self, pids: Path) -> None:
        for pid in self.pids(pids):
            with contextlib.suppress(OSError):
                os.kill(pid, 9)

    @staticmethod
    def pids(path: Path) -> list[int]:
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def run_bounded(self, lines: str) -> tuple[int, str, dict]:
        """The hook in a thread: a hook that hangs fails the test instead of hanging it."""
        outcome: list[tuple[int, str, dict]] = []
        worker = threading.Thread(target=lambda: outcome.append(self.run_hook(lines)), daemon=True)
        started = time.monotonic()
        worker.start()
        worker.join(30)
        self.assertFalse(worker.is_alive(), "the hook still hangs after 30 s")
        self.assertLess(time.monotonic() - started, 20)
        return outcome[0]

    def assert_all_ended(self, pids: Path) -> None:
        started = self.pids(pids)
        self.assertEqual(len(started), 2, "the hanging git and its helper were started")
        deadline = time.monotonic() + 5
        while any(self.alive(p) for p in started) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual([p for p in started if self.alive(p)], [], "processes left behind")

    def test_a_hanging_scan_git_refuses_the_push(self) -> None:
        for hang in ("rev-list", "cat-file --batch", "log"):
            with self.subTest(hang=hang):
                new = self.commit(f"{hang.split()[0]}.txt", "fine\n")
                pids = self.hanging_git(hang)
                with mock.patch.object(proc, "SCAN_TIMEOUT", 1.5):
                    code, out, verdict = self.run_bounded(f"{self.repos.base} {new} refs/heads/main\n")
                self.assertEqual(code, 1, out)
                self.assertIn(f"push refused: git {hang.split()[0]} did not finish within 1.5 s and was stopped;"
                              " nothing was sent upstream.", out)
                self.assertEqual((verdict["result"], verdict["detail"]),
                                 ("timeout", f"git {hang.split()[0]} did not finish within 1.5 s and was stopped"))
                self.assertEqual(self.repos.upstream_rev(), self.repos.base)
                self.assert_all_ended(pids)

    def test_a_hanging_forwarding_push_refuses_the_push(self) -> None:
        new = self.commit("a.txt", "fine\n")
        pids = self.hanging_git("push")
        with mock.patch.object(upstream, "TRANSFER_TIMEOUT", 1.5):
            code, out, verdict = self.run_bounded(f"{self.repos.base} {new} refs/heads/main\n")
        self.assertEqual(code, 1, out)
        self.assertIn("push refused: git push gave no result within 1.5 s", out)
        self.assertEqual(verdict["result"], "refused")
        self.assertEqual(self.repos.upstream_rev(), self.repos.base)
        self.assert_all_ended(pids)


class ProcTest(unittest.TestCase):
    """The helper itself: a child and the helper it started are both killed at the deadline."""

    HANG = "sleep 300 & echo $! > {pid}; wait"

    def pid_file(self) -> Path:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        return Path(tmp.name) / "pid"

    def assert_gone(self, pid_file: Path) -> None:
        pid = int(pid_file.read_text())
        deadline = time.monotonic() + 5
        while TimeoutTest.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(TimeoutTest.alive(pid))

    def test_run_kills_the_group(self) -> None:
        pid_file = self.pid_file()
        started = time.monotonic()
        with self.assertRaises(proc.TimedOut):
            proc.run(["sh", "-c", self.HANG.format(pid=pid_file)], timeout=0.5)
        self.assertLess(time.monotonic() - started, 10)
        self.assert_gone(pid_file)

    def test_a_stream_is_killed_at_its_deadline_while_read(self) -> None:
        pid_file = self.pid_file()
        with self.assertRaises(proc.TimedOut):
            with proc.Stream(["sh", "-c", "echo hi; " + self.HANG.format(pid=pid_file)], timeout=0.5) as stream:
                self.assertEqual(stream.stdout.readline(), b"hi\n")
                stream.stdout.read()  # blocks until the deadline kills the group
                stream.finish()
        self.assert_gone(pid_file)

    def test_a_spent_deadline_starts_nothing(self) -> None:
        with proc.deadline(0.0), self.assertRaises(proc.TimedOut):
            proc.run(["sh", "-c", "exit 0"], timeout=10)
        self.assertEqual(proc.run(["sh", "-c", "exit 3"], timeout=10).returncode, 3)


if __name__ == "__main__":
    unittest.main()
