"""A push whose commit message carries a bottle secret in a legacy encoding is refused by the gate.

End to end on loopback, as ``test_git_gate_local``: git's smart-HTTP upstream
(``git_upstream/serve.py``), the gate as ``python -m bot_bottle.sidecar.git_gate`` knowing one
non-ASCII secret value from its secrets file, and the agent's git configured by
``configure_git``. A commit written with ``i18n.commitEncoding=ISO-8859-1`` (an ``encoding``
header) and one whose Shift-JIS message has no header at all must both be refused before the
upstream is asked to receive anything; a benign Latin-1 message passes.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.provision.git import configure_git
from tests._requires import requires
from tests.integration.test_git_gate_local import LocalBottle, _wait_for
from tests.integration.test_git_gate_scenarios import USER, parse_access_log

REPO_ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_DIR = Path(__file__).resolve().parent / "git_upstream"
LATIN = "Ölfaß-Größe-Übermaß-Äußerst9"
KANJI = "秘密のパスワード東京タワー"


@dataclass(frozen=True)
class _Repo:
    name: str
    url: str


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@requires(shutil.which("git") is not None, "git")
class LegacyEncodingPushTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls._tmp = tempfile.TemporaryDirectory(prefix="bb-gate-enc-")
        cls.addClassCleanup(cls._tmp.cleanup)
        cls.tmp = tmp = Path(cls._tmp.name)
        (tmp / "upstream").mkdir()
        subprocess.run(["sh", str(UPSTREAM_DIR / "seed.sh"), str(tmp / "upstream"), "lib"], check=True,
                       capture_output=True,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp), "GIT_CONFIG_NOSYSTEM": "1"})
        token_file = tmp / "lib.token"
        token_file.write_text("tok_" + secrets.token_hex(20) + "\n")
        token_file.chmod(0o600)
        ready = tmp / "upstream.ready"
        upstream = subprocess.Popen(
            [sys.executable, str(UPSTREAM_DIR / "serve.py"), "--root", str(tmp / "upstream"), "--listen", "127.0.0.1",
             "--port", "0", "--token-file", str(token_file), "--log", str(tmp / "access.log"), "--ready", str(ready)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.addClassCleanup(_stop, upstream)
        _wait_for(ready.exists, "the upstream")
        secrets_file = tmp / "known-secrets.json"
        secrets_file.write_text(json.dumps({"known_secrets": {"LEGACY_PW": LATIN, "KANJI_PW": KANJI}}))
        config = {
            "version": 1, "user": USER, "secrets_file": str(secrets_file),
            "repos": [{"name": "lib", "url": f"http://127.0.0.1:{int(ready.read_text())}/lib.git",
                       "auth": "https-token", "token_file": str(token_file)}],
        }
        (tmp / "gate.json").write_text(json.dumps(config))
        cls.gate_log = tmp / "gate.log"
        with cls.gate_log.open("wb") as log:
            gate = subprocess.Popen(
                [sys.executable, "-m", "bot_bottle.sidecar.git_gate", "--config", str(tmp / "gate.json"), "--port", "0",
                 "--state-dir", str(tmp / "state")],
                cwd=REPO_ROOT, stdout=log, stderr=log, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        cls.addClassCleanup(_stop, gate)
        _wait_for(lambda: '"ready"' in cls.gate_log.read_text() or gate.poll() is not None, "the gate")
        port = next(json.loads(line) for line in cls.gate_log.read_text().splitlines() if '"ready"' in line)["port"]
        (tmp / "agent").mkdir()
        cls.bottle = LocalBottle(tmp / "agent")
        configure_git(cls.bottle, [_Repo("lib", "https://git.upstream.test/lib.git")], USER, f"http://127.0.0.1:{port}")
        clone = cls.bottle.exec("git clone -q https://git.upstream.test/lib.git work")
        assert clone.returncode == 0, clone.stdout + clone.stderr

    def receive_packs(self) -> int:
        path = self.tmp / "access.log"
        entries = parse_access_log(path.read_text()) if path.exists() else []
        return sum(1 for e in entries if e.get("service") == "git-receive-pack")

    def commit_and_push(self, message: bytes, *config: str) -> tuple[str, str, int]:
        """A commit with ``message`` (bytes as written) on a fresh ``main``, pushed: its id, the
        push's output and exit code."""
        (self.tmp / "agent" / "msg").write_bytes(message)
        options = " ".join(f"-c {shlex.quote(c)}" for c in config)
        made = self.bottle.exec("cd work && git fetch -q origin && git checkout -q -B main origin/main"
                                f" && git {options} commit -q --allow-empty -F ../msg && git rev-parse HEAD")
        self.assertEqual(made.returncode, 0, made.stdout + made.stderr)
        push = self.bottle.exec("cd work && git push origin main")
        return made.stdout.split()[-1], push.stdout + push.stderr, push.returncode

    def assert_refused(self, message: bytes, *config: str) -> None:
        before = self.receive_packs()
        commit, output, code = self.commit_and_push(message, *config)
        self.assertNotEqual(code, 0, output)
        self.assertIn("push rejected", output)
        self.assertRegex(output, rf"commit {commit[:12]}: commit message line \d+: detector known-secret")
        self.assertEqual(self.receive_packs(), before)
        for value in (LATIN, KANJI):
            self.assertNotIn(value, output)

    def test_a_latin1_message_with_an_encoding_header(self) -> None:
        self.assert_refused(f"notes\n\nthe password is {LATIN}\n".encode("latin-1"), "i18n.commitEncoding=ISO-8859-1")

    def test_a_shift_jis_message_without_a_header(self) -> None:
        self.assert_refused(f"memo\n\n{KANJI}\n".encode("shift_jis"), "i18n.commitEncoding=UTF-8")

    def test_zz_a_benign_latin1_message_is_pushed(self) -> None:
        commit, output, code = self.commit_and_push("Füße und Öl\n".encode("latin-1"), "i18n.commitEncoding=ISO-8859-1")
        self.assertEqual(code, 0, output)
        upstream = subprocess.run(["git", "--git-dir", str(self.tmp / "upstream" / "lib.git"), "rev-parse", "main"],
                                  capture_output=True, text=True, check=True).stdout.strip()
        self.assertEqual(upstream, commit)


if __name__ == "__main__":
    unittest.main()
