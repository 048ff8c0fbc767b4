"""The gate's HTTP side against a hostile client, with a real gate in this process, real git and a
local upstream: a push body it would have to inflate is refused, a body cut short or a client that
goes quiet does not leave git running (or the repo's lock held), a killed push leaves no
quarantine, a pack past ``MAX_PUSH_PACK`` is refused while it arrives, and fetches speak protocol v0
only. (What a fetch may ask for: ``test_git_gate_wants``; how often the upstream is asked:
``test_git_gate_refresh``.)"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import zlib
from pathlib import Path
from typing import Any
from unittest import mock

from bot_bottle.sidecar.git_gate import mirror, server
from bot_bottle.sidecar.git_gate.config import parse
from bot_bottle.sidecar.git_gate.mirror import Mirrors
from tests._requires import requires

MiB = 1024 * 1024
ZERO = "0" * 40
QUARANTINES = ("tmp_objdir-incoming-*", "incoming-*")  # receive-pack's, in git 2.34+ and before


def _pack_object_header(kind: int, size: int) -> bytes:
    byte = (kind << 4) | (size & 0x0F)
    size >>= 4
    out = bytearray()
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


def stored_blob_pack(size: int) -> bytes:
    """A pack of one blob of ``size`` zero bytes kept uncompressed (zlib level 0): its size on
    the wire is its size in the quarantine. No trailer: it is only ever sent in part here."""
    body = zlib.compress(b"\0" * size, 0)
    return b"PACK" + (2).to_bytes(4, "big") + (1).to_bytes(4, "big") + _pack_object_header(3, size) + body


def receive_pack_request(old: str, new: str, ref: str) -> bytes:
    command = f"{old} {new} {ref}\0report-status\n".encode()
    return b"%04x" % (len(command) + 4) + command + b"0000"


@requires(shutil.which("git") is not None, "git")
class GateServerCase(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix="bb-gate-server-")
        self.addCleanup(tmp.cleanup)
        self.dir = Path(tmp.name)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.dir), "GIT_CONFIG_NOSYSTEM": "1",
                    "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "T",
                    "GIT_COMMITTER_EMAIL": "t@x", "LC_ALL": "C"}
        self.upstream = self.dir / "upstream.git"
        self.work = self.dir / "work"
        self.git("init", "-q", "--bare", "-b", "main", str(self.upstream))
        self.git("init", "-q", "-b", "main", str(self.work))
        (self.work / "README").write_text("hello\n")
        self.git("-C", str(self.work), "add", "README")
        self.git("-C", str(self.work), "commit", "-q", "-m", "init")
        self.git("-C", str(self.work), "push", "-q", str(self.upstream), "main")
        self.base = self.git("-C", str(self.work), "rev-parse", "HEAD")
        raw = {"version": 1, "repos": [{"name": "lib", "url": str(self.upstream), "auth": "none"}]}
        config_path = self.dir / "gate.json"
        config_path.write_text(json.dumps(raw))
        self.config = parse(raw)
        self.repo = self.config.repos[0]
        self.state = self.dir / "state"
        self.mirrors = Mirrors(self.config, config_path, self.state)
        self.mirrors.prepare()
        self.objects = self.mirrors.path(self.repo) / "objects"
        self.events: list[dict[str, Any]] = []
        self.events_changed = threading.Condition()
        patcher = mock.patch.object(server, "log", side_effect=self._log)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.addCleanup(self._kill_strays)  # runs after the server is stopped (cleanups are LIFO)
        self.httpd = server.make_server(self.config, self.mirrors, self.state, "127.0.0.1", 0)
        self.port = self.httpd.server_address[1]
        thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self.addCleanup(self.httpd.server_close)
        self.addCleanup(self.httpd.shutdown)

    # -- helpers ------------------------------------------------------------------------------
    def git(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(["git", *args], env=self.env, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"git {args} failed: {result.stderr}")
        return result.stdout.strip() if check else result.stdout + result.stderr

    def _log(self, event: str, **fields: Any) -> None:
        with self.events_changed:
            self.events.append({"what": event, **fields})
            self.events_changed.notify_all()

    def wait_for_event(self, what: str, timeout: float) -> dict[str, Any]:
        with self.events_changed:
            found = self.events_changed.wait_for(lambda: [e for e in self.events if e["what"] == what], timeout)
        if not found:
            raise AssertionError(f"no {what!r} event within {timeout:g} s; events: {self.events}")
        return found[0]

    def strays(self) -> list[int]:
        """Processes still working in this test's mirrors (git http-backend, receive-pack, ...)."""
        root = str(self.mirrors.root.resolve())
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.readlink(entry / "cwd").startswith(root):
                        pids.append(int(entry.name))
                except OSError:
                    pass
        return pids

    def _kill_strays(self) -> None:
        # Only ever needed against the code before the fix: a spinning backend must not outlive the test.
        for pid in self.strays():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def raw_request(self, endpoint: str, headers: dict[str, str]) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.addCleanup(sock.close)
        lines = [f"POST /lib.git/{endpoint} HTTP/1.1", "Host: gate",
                 f"Content-Type: application/x-{endpoint}-request", *(f"{k}: {v}" for k, v in headers.items())]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return sock

    def post(self, endpoint: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("POST", f"/lib.git/{endpoint}", body=body,
                         headers={"Content-Type": f"application/x-{endpoint}-request", **(headers or {})})
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()

    def quarantines(self) -> list[str]:
        return sorted(p.name for pattern in QUARANTINES for p in self.objects.glob(pattern))

    def commit(self, name: str, data: bytes) -> str:
        (self.work / name).write_bytes(data)
        self.git("-C", str(self.work), "add", name)
        self.git("-C", str(self.work), "commit", "-q", "-m", f"add {name}")
        return self.git("-C", str(self.work), "rev-parse", "HEAD")

    def push_through_gate(self, ref: str) -> str:
        url = f"http://127.0.0.1:{self.port}/lib.git"
        return self.git("-C", str(self.work), "push", url, f"HEAD:{ref}", check=False)


class PushBodyTest(GateServerCase):
    def test_a_gzip_push_body_is_refused_before_git_runs(self) -> None:
        # A pack stored uncompressed inflates ~1000x from a gzip body: 1 MB sent, 1 GB on disk.
        status, answer = self.post("git-receive-pack", gzip.compress(receive_pack_request(ZERO, self.base, "refs/heads/x")),
                                   {"Content-Encoding": "gzip"})
        self.assertEqual(status, 415, answer)
        self.assertNotIn("push", [e["what"] for e in self.events])
        self.assertEqual(self.strays(), [])

    def test_a_real_git_push_is_not_encoded_and_passes(self) -> None:
        new = self.commit("a.txt", b"fine\n")
        out = self.push_through_gate("refs/heads/feature")
        self.assertIn("feature", out)
        self.assertEqual(self.git("--git-dir", str(self.upstream), "rev-parse", "refs/heads/feature"), new)

    def test_a_pack_past_the_limit_is_refused_while_it_arrives(self) -> None:
        self.assertEqual(self.git("--git-dir", str(self.mirrors.path(self.repo)), "config", "receive.maxInputSize"),
                         str(mirror.MAX_PUSH_PACK))
        with mock.patch.object(mirror, "MAX_PUSH_PACK", 1 * MiB):
            self.mirrors.prepare()
        self.commit("big.bin", os.urandom(3 * MiB))  # random: the pack cannot be smaller than the file
        out = self.push_through_gate("refs/heads/big")
        self.assertIn("pack exceeds maximum allowed size", out)
        self.assertEqual(self.git("--git-dir", str(self.upstream), "branch", "--list", "big"), "")
        self.assertEqual(self.quarantines(), [])


class CutShortTest(GateServerCase):
    def test_a_body_shorter_than_its_length_stops_git_at_once(self) -> None:
        # git 2.39's http-backend, told the length, loops at full CPU on the early end, holding the
        # push's lock (and every fetch's refresh) until the backend's hour is up.
        with mock.patch.object(server, "BACKEND_TIMEOUT", 30.0):
            sock = self.raw_request("git-receive-pack", {"Content-Length": "1000"})
            sock.sendall(b"0000")
            sock.close()
            self.wait_for_event("push", timeout=10)
        self.wait_for_event("request-cut-short", timeout=1)
        self.assertEqual(self.strays(), [])
        self.assertTrue(self.mirrors.lock(self.repo).acquire(timeout=1))
        self.mirrors.lock(self.repo).release()

    def test_a_client_that_goes_quiet_is_dropped_and_the_lock_freed(self) -> None:
        self.assertEqual(server.Handler.timeout, server.CLIENT_TIMEOUT)
        self.assertLessEqual(server.CLIENT_TIMEOUT, 300)
        with mock.patch.object(server.Handler, "timeout", 1.0), mock.patch.object(server, "BACKEND_TIMEOUT", 30.0):
            sock = self.raw_request("git-receive-pack", {"Content-Length": "1000"})
            sock.sendall(b"0000")  # and then nothing, the connection kept open
            self.wait_for_event("push", timeout=10)
            self.wait_for_event("request-cut-short", timeout=1)
            self.assertEqual(self.strays(), [])

    def test_a_chunked_body_cut_short_stops_git_and_leaves_no_quarantine(self) -> None:
        body = receive_pack_request(ZERO, "1" * 40, "refs/heads/cut") + stored_blob_pack(8 * MiB)[: 4 * MiB]
        sock = self.raw_request("git-receive-pack", {"Transfer-Encoding": "chunked"})
        sock.sendall(b"%x\r\n" % len(body) + body + b"\r\n")
        sock.close()
        self.wait_for_event("push", timeout=20)
        self.wait_for_event("request-cut-short", timeout=1)
        self.assertEqual(self.strays(), [])
        self.assertEqual(self.quarantines(), [])


class QuarantineTest(GateServerCase):
    def test_a_push_killed_at_its_deadline_leaves_no_quarantine(self) -> None:
        # The backend's watchdog kills receive-pack and index-pack with SIGKILL: git cannot clean up.
        body = receive_pack_request(ZERO, "1" * 40, "refs/heads/slow") + stored_blob_pack(8 * MiB)[: 4 * MiB]
        with mock.patch.object(server, "BACKEND_TIMEOUT", 3.0):
            sock = self.raw_request("git-receive-pack", {"Transfer-Encoding": "chunked"})
            sock.sendall(b"%x\r\n" % len(body) + body + b"\r\n")  # and then nothing, kept open
            deadline = time.monotonic() + 2.5
            while not self.quarantines() and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertNotEqual(self.quarantines(), [], "receive-pack made no quarantine: the test proves nothing")
            self.wait_for_event("push", timeout=15)
        self.wait_for_event("backend-timeout", timeout=1)
        self.assertEqual(self.quarantines(), [])
        self.assertEqual(self.strays(), [])

    def test_leftovers_are_removed_after_each_push_and_at_start(self) -> None:
        for name in ("tmp_objdir-incoming-AbC123", "incoming-XyZ789"):
            (self.objects / name / "pack").mkdir(parents=True)
            (self.objects / name / "pack" / "tmp_pack_1").write_bytes(b"x" * 1000)
        status, _ = self.post("git-receive-pack", b"0000")
        self.assertEqual(status, 200)
        self.assertEqual(self.quarantines(), [])
        (self.objects / "tmp_objdir-incoming-Def456").mkdir()
        self.mirrors.prepare()  # what the gate does when it starts
        self.assertEqual(self.quarantines(), [])
        self.assertTrue((self.objects / "pack").is_dir())


class ProtocolTest(GateServerCase):
    def test_a_request_for_protocol_v2_is_answered_in_v0(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self.addCleanup(conn.close)
        conn.request("GET", "/lib.git/info/refs?service=git-upload-pack", headers={"Git-Protocol": "version=2"})
        answer = conn.getresponse().read()
        self.assertIn(b"# service=git-upload-pack", answer)
        self.assertNotIn(b"version 2", answer)
        self.assertNotIn(b"object-info", answer)
        self.assertIn(f"{self.base} HEAD".encode(), answer)

    def test_a_commit_no_branch_reaches_cannot_be_fetched_by_id(self) -> None:
        self.git("-C", str(self.work), "checkout", "-q", "-b", "leak")
        leak = self.commit("oops.env", b"KEY=value\n")
        self.git("-C", str(self.work), "push", "-q", str(self.upstream), "leak")
        self.mirrors.refresh(self.repo)  # the mirror fetched it while it was published
        self.git("--git-dir", str(self.upstream), "update-ref", "-d", "refs/heads/leak")
        clone = self.dir / "clone"
        url = f"http://127.0.0.1:{self.port}/lib.git"
        with self.mirrors.lock(self.repo):
            self.mirrors.refresh_held(self.repo)  # the gate sees the branch taken down (as a push would)
        self.git("clone", "-q", url, str(clone))
        self.assertEqual(self.git("--git-dir", str(self.mirrors.path(self.repo)), "cat-file", "-t", leak), "commit")
        out = self.git("-C", str(clone), "-c", "protocol.version=2", "fetch", url, leak, check=False)
        self.assertIn("not our ref", out)
        self.assertNotEqual(subprocess.run(["git", "-C", str(clone), "cat-file", "-e", leak], env=self.env).returncode, 0)

    def test_a_partial_clone_still_fetches_its_missing_blobs(self) -> None:
        clone = self.dir / "partial"
        url = f"http://127.0.0.1:{self.port}/lib.git"
        self.git("clone", "-q", "--filter=blob:none", url, str(clone))
        self.assertEqual((clone / "README").read_text(), "hello\n")
        self.git("-C", str(clone), "log", "-p", "-1")


if __name__ == "__main__":
    unittest.main()
