"""The git-gate end to end on loopback: real git, a real smart-HTTP upstream, no Docker needed.

The upstream is ``git_upstream/serve.py`` (git http-backend behind a token check, with an access
log) over repos seeded by ``git_upstream/seed.sh``; the gate runs as ``python -m
bot_bottle.sidecar.git_gate``; the "agent" is git run with a private HOME configured by
``bot_bottle.provision.git.configure_git`` through a small ``Bottle`` that runs shell commands
here. Everything listens on 127.0.0.1. The agent's git also gets a dead loopback proxy, so a URL
the rewrite missed could never leave the machine (not even as a DNS lookup).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.backend import Bottle, ExecResult
from bot_bottle.sidecar.git_gate.mirror import FRESH_FOR
from bot_bottle.provision.git import configure_git
from tests.integration import test_git_gate_scenarios as scenarios
from tests._requires import requires

REPO_ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_DIR = Path(__file__).resolve().parent / "git_upstream"
DEAD_PROXY = "http://127.0.0.1:9"  # discard port: nothing listens, nothing leaves


@dataclass(frozen=True)
class _Repo:
    name: str
    url: str


class LocalBottle(Bottle):
    """Runs commands as this user with a private HOME: enough for the git provisioner."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def env(self) -> dict[str, str]:
        return {
            "HOME": str(self.home),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "http_proxy": DEAD_PROXY,
            "https_proxy": DEAD_PROXY,
            "no_proxy": "127.0.0.1",
            "GIT_SSH_COMMAND": "false",  # no ssh from this test, ever
        }

    def exec(self, cmd: str, *, user: str = "node") -> ExecResult:
        result = subprocess.run(["sh", "-c", cmd], cwd=self.home, env=self.env(), capture_output=True, text=True, timeout=120)
        return ExecResult(result.returncode, result.stdout, result.stderr)

    def cp_in(self, host_path: str | Path, guest_path: str) -> None:
        raise NotImplementedError

    def agent_argv(self, extra: list[str], *, tty: bool) -> list[str]:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _wait_for(check, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.05)


@requires(shutil.which("git") is not None, "git")
class LocalGateTest(scenarios.GateScenarios):
    __test__ = True

    tmp: Path
    upstream_proc: subprocess.Popen[bytes] | None
    gate_proc: subprocess.Popen[bytes]

    @classmethod
    def setUpClass(cls) -> None:
        cls._tmp = tempfile.TemporaryDirectory(prefix="bb-gate-it-")
        cls.addClassCleanup(cls._tmp.cleanup)
        cls.tmp = Path(cls._tmp.name)
        root = cls.tmp / "upstream"
        root.mkdir()
        subprocess.run(["sh", str(UPSTREAM_DIR / "seed.sh"), str(root), "lib"], check=True, capture_output=True,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cls.tmp), "GIT_CONFIG_NOSYSTEM": "1"})
        cls.token = "tok_" + secrets.token_hex(20)
        token_file = cls.tmp / "lib.token"
        token_file.write_text(cls.token + "\n")
        token_file.chmod(0o600)
        cls.upstream_port = 0
        cls.upstream_proc = None
        cls._start_upstream_proc()
        config = {
            "version": 1,
            "user": scenarios.USER,
            "repos": [{"name": "lib", "url": f"http://127.0.0.1:{cls.upstream_port}/lib.git", "auth": "https-token",
                       "token_file": str(token_file)}],
        }
        (cls.tmp / "gate.json").write_text(json.dumps(config))
        cls.gate_log_path = cls.tmp / "gate.log"
        with cls.gate_log_path.open("wb") as log:
            cls.gate_proc = subprocess.Popen(
                [sys.executable, "-m", "bot_bottle.sidecar.git_gate", "--config", str(cls.tmp / "gate.json"),
                 "--port", "0", "--state-dir", str(cls.tmp / "state")],
                cwd=REPO_ROOT, stdout=log, stderr=log, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            )
        cls.addClassCleanup(cls._stop, cls.gate_proc)
        _wait_for(lambda: '"ready"' in cls.gate_log_path.read_text() or cls.gate_proc.poll() is not None, "the gate")
        ready = next(json.loads(l) for l in cls.gate_log_path.read_text().splitlines() if '"ready"' in l)
        cls.gate_port = int(ready["port"])
        home = cls.tmp / "agent"
        home.mkdir()
        cls.bottle = LocalBottle(home)
        cls.repo_urls = {"lib": "https://git.upstream.test/lib.git"}
        configure_git(cls.bottle, [_Repo(n, u) for n, u in cls.repo_urls.items()], scenarios.USER,
                      f"http://127.0.0.1:{ready['port']}")

    @classmethod
    def _start_upstream_proc(cls) -> None:
        ready = cls.tmp / "upstream.ready"
        ready.unlink(missing_ok=True)
        cls.upstream_proc = subprocess.Popen(
            [sys.executable, str(UPSTREAM_DIR / "serve.py"), "--root", str(cls.tmp / "upstream"), "--listen", "127.0.0.1",
             "--port", str(cls.upstream_port), "--token-file", str(cls.tmp / "lib.token"),
             "--log", str(cls.tmp / "access.log"), "--ready", str(ready)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        cls.addClassCleanup(cls._stop, cls.upstream_proc)
        _wait_for(ready.exists, "the upstream")
        cls.upstream_port = int(ready.read_text())

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # -- the environment ------------------------------------------------------------------------
    def agent(self, script: str, *, timeout: float = 120) -> scenarios.Run:
        start = time.monotonic()
        result = self.bottle.exec(script)
        return scenarios.Run(result.returncode, result.stdout, result.stderr, time.monotonic() - start)

    def upstream_refs(self, repo: str) -> dict[str, str]:
        out = subprocess.run(["git", "--git-dir", str(self.tmp / "upstream" / f"{repo}.git"), "for-each-ref",
                              "--format=%(refname) %(objectname)"], capture_output=True, text=True, check=True).stdout
        return dict(line.split(" ", 1) for line in out.splitlines())  # type: ignore[misc]

    def access_log(self) -> list[dict]:
        path = self.tmp / "access.log"
        return scenarios.parse_access_log(path.read_text()) if path.exists() else []

    def gate_log(self) -> str:
        return self.gate_log_path.read_text()

    def stop_upstream(self) -> None:
        assert self.upstream_proc is not None
        self._stop(self.upstream_proc)

    def start_upstream(self) -> None:
        type(self)._start_upstream_proc()

    def hang_upstream(self, hung: bool) -> None:
        # A stopped process still has its listening socket: the kernel accepts, nobody answers.
        assert self.upstream_proc is not None
        os.kill(self.upstream_proc.pid, signal.SIGSTOP if hung else signal.SIGCONT)

    def credential_values(self) -> list[str]:
        return [self.token]

    # -- only here ------------------------------------------------------------------------------
    def test_token_reaches_the_upstream_but_never_the_agent_config_or_gate_log(self) -> None:
        self.clone("lib", "token-check")
        self.assertTrue(all(e["token"] == "ok" for e in self.access_log() if e["proto"] == "http"))
        config = self.agent("git config --global --list").stdout
        self.assertIn("insteadof=https://git.upstream.test/lib.git", config.lower())
        self.assertNotIn(self.token, config)
        self.assertNotIn(self.token, self.gate_log())

    def leak_upstream_and_take_down(self, clone: str, branch: str) -> tuple[str, str]:
        """A key committed on ``branch`` in a new clone, pushed straight upstream, fetched through
        the gate, then the branch deleted upstream: (that commit, origin/main)."""
        self.clone("lib", clone)
        upstream = str(self.tmp / "upstream" / "lib.git")
        run = self.in_clone(clone, f"git checkout -q -b {branch} && printf 'AWS_ACCESS_KEY_ID=AKIAZ7QK4M2XW9RTB3PL\\n'"
                            f" > {branch}.env && git add {branch}.env && git commit -q -m {branch}"
                            f" && git push -q {upstream} {branch}")
        self.assertEqual(run.returncode, 0, run.output)
        self.wait_out_the_window()  # the clone's refresh is reused until then: the fetch must see the push
        run = self.in_clone(clone, f"git fetch -q origin && git rev-parse HEAD origin/{branch} origin/main")
        self.assertEqual(run.returncode, 0, run.output)
        commit, fetched, main = run.stdout.split()
        self.assertEqual(fetched, commit)
        subprocess.run(["git", "--git-dir", upstream, "update-ref", "-d", f"refs/heads/{branch}"], check=True)
        return commit, main

    @staticmethod
    def wait_out_the_window() -> None:
        """Past ``FRESH_FOR`` since the gate last asked the upstream: the next advertisement asks."""
        time.sleep(FRESH_FOR + 0.5)

    def test_a_push_posted_without_its_advertisement_is_checked_against_the_upstream_as_it_is_now(self) -> None:
        # Someone pushes a key upstream by mistake; the agent fetches it; the branch is deleted
        # upstream. A receive-pack posted straight away, without asking for the refs first, must
        # not take those commits for published because the mirror still had them.
        oops, main = self.leak_upstream_and_take_down("revive", "oops")
        pack = subprocess.run(["git", "-C", str(self.tmp / "agent" / "revive"), "pack-objects", "--revs", "--stdout",
                               "-q"], input=f"{oops}\n^{main}\n".encode(), capture_output=True, check=True).stdout
        command = f"{'0' * 40} {oops} refs/heads/revived\0report-status side-band-64k\n".encode()
        body = b"%04x" % (len(command) + 4) + command + b"0000" + pack
        request = urllib.request.Request(f"http://127.0.0.1:{self.gate_port}/lib.git/git-receive-pack", data=body,
                                         method="POST", headers={"Content-Type": "application/x-git-receive-pack-request"})
        with urllib.request.urlopen(request, timeout=120) as answer:
            report = answer.read().decode("latin-1")
        self.assertNotIn("refs/heads/revived", self.upstream_refs("lib"))
        self.assertIn("ng refs/heads/revived", report)
        self.assertIn("detector aws-access-key-id", report)

    def test_no_object_of_a_branch_deleted_upstream_can_be_fetched_by_id(self) -> None:
        # A key pushed upstream by mistake reaches the mirror; the branch is taken down upstream.
        # The mirror still holds the objects (nothing collects them), but no ref reaches them now:
        # not the commit, nor its tree, nor the file with the key (upload-pack alone would send a
        # blob or tree to whoever names its id).
        leaked, _ = self.leak_upstream_and_take_down("takedown-src", "leaked")
        blob = self.in_clone("takedown-src", f"git rev-parse {leaked}:leaked.env").stdout.strip()
        tree = self.in_clone("takedown-src", f"git rev-parse {leaked}^{{tree}}").stdout.strip()
        self.wait_out_the_window()
        self.clone("lib", "takedown-dst")  # its advertisement prunes the branch from the mirror
        mirror = self.tmp / "state" / "mirrors" / "lib.git"
        for oid, kind in ((leaked, "commit"), (blob, "blob"), (tree, "tree")):
            self.assertEqual(subprocess.run(["git", "--git-dir", str(mirror), "cat-file", "-t", oid], capture_output=True,
                                            text=True).stdout.strip(), kind)
            for version in ("2", "0"):
                with self.subTest(kind=kind, protocol=version):
                    run = self.in_clone("takedown-dst", f"git -c protocol.version={version} fetch origin {oid}")
                    self.assertNotEqual(run.returncode, 0, run.output)
                    self.assertIn(f"fatal: remote error: upload-pack: not our ref {oid}", run.stderr)
                    self.assertNotEqual(self.in_clone("takedown-dst", f"git cat-file -e {oid}").returncode, 0)
        # A partial clone fetches missing blobs by id: the visible ones, never that one.
        self.clone("lib", "takedown-partial", "--filter=blob:none")
        self.assertEqual(self.in_clone("takedown-partial", "git log -p >/dev/null").returncode, 0)
        run = self.in_clone("takedown-partial", f"git cat-file -p {blob}")
        self.assertNotEqual(run.returncode, 0, run.output)
        self.assertNotIn("AKIA", run.output)

    def test_the_agent_asks_in_a_loop_and_the_upstream_is_asked_once_per_window(self) -> None:
        self.clone("lib", "hammer")
        self.wait_out_the_window()
        before = self.upstream_advertisements()
        start = time.monotonic()
        run = self.in_clone("hammer", "for i in $(seq 40); do git ls-remote -q origin >/dev/null || exit 1; done"
                            " && for i in $(seq 10); do git fetch -q origin || exit 1; done")
        self.assertEqual(run.returncode, 0, run.output)
        windows = int((time.monotonic() - start) // FRESH_FOR) + 1
        self.assertLessEqual(self.upstream_advertisements() - before, windows)

    def upstream_advertisements(self) -> int:
        """How many times the gate asked the upstream for its refs (each refresh asks once)."""
        return sum(1 for e in self.access_log() if e.get("method") == "GET" and e.get("service") == "git-upload-pack")


if __name__ == "__main__":
    unittest.main()
