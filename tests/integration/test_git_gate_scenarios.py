"""What every git-gate setup must show, written once against a small environment interface.

``GateScenarios`` is a base class: this module's ``load_tests`` gives the loader nothing, and
the scenarios run in its subclasses. ``test_git_gate_local`` runs it on loopback (an HTTP upstream, the gate and git as
host processes), ``test_git_gate_docker`` with containers (SSH and HTTP upstreams, the gate in
the sidecar image, git in the agent image). The upstream is seeded by
``git_upstream/seed.sh``: every repo has ``main`` (whose history added, then removed, an old
fake key), ``legacy`` (the same), ``to-delete`` and ``protected`` (refused by the upstream).
"""

from __future__ import annotations

import json
import re
import shlex
import time
import unittest
from collections.abc import Mapping
from dataclasses import dataclass

from bot_bottle.sidecar.git_gate.mirror import FRESH_FOR

# Fake secrets in the formats the detectors know; none of them is a real credential.
FAKE_AWS_KEY = "AKIA" + "Z7QK4M2XW9RTB3PL"
FAKE_GITHUB_TOKEN = "ghp_" + "q8Yt3LmN0pR5sV2wX7zA9cE4gJ6kB1dF0hUi"
FAKE_SLACK_TOKEN = "xoxb-" + "2648-91735-QpLmZr8KtWx4"
FAKE_PRIVATE_KEY = (
    "-----BEGIN " + "OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END " + "OPENSSH PRIVATE KEY-----\n"
)
ALL_FAKE_SECRETS = (FAKE_AWS_KEY, FAKE_GITHUB_TOKEN, FAKE_SLACK_TOKEN, "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE")
USER = {"name": "Bottle Agent", "email": "agent@bottle.test"}
FAIL_FAST_SECONDS = 10.0


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class GateScenarios(unittest.TestCase):
    """Subclasses provide the environment methods below."""

    __test__ = False  # pytest: collected only in the subclasses (unittest skips it by load_tests)

    # -- the environment (provided by the concrete test class) -------------------------------
    repo_urls: Mapping[str, str]  # repo name -> the real URL the agent uses

    def agent(self, script: str, *, timeout: float = 120) -> Run:  # pragma: no cover - interface
        raise NotImplementedError

    def upstream_refs(self, repo: str) -> dict[str, str]:  # pragma: no cover - interface
        raise NotImplementedError

    def access_log(self) -> list[dict]:  # pragma: no cover - interface
        raise NotImplementedError

    def gate_log(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def stop_upstream(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def start_upstream(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def hang_upstream(self, hung: bool) -> None:  # pragma: no cover - interface
        """Freeze the upstream (connections still open, nothing ever answers), or thaw it."""
        raise NotImplementedError

    def credential_values(self) -> list[str]:  # pragma: no cover - interface
        raise NotImplementedError

    # -- helpers ------------------------------------------------------------------------------
    def clone(self, repo: str, folder: str, *extra: str) -> Run:
        run = self.agent(f"rm -rf {folder} && git clone -q {' '.join(extra)} {shlex.quote(self.repo_urls[repo])} {folder}")
        self.assertEqual(run.returncode, 0, run.output)
        return run

    def in_clone(self, folder: str, script: str) -> Run:
        return self.agent(f"cd {folder} && {script}")

    def receive_packs(self) -> int:
        """How many pushes the upstream has been asked to receive, over SSH or HTTP."""
        count = 0
        for entry in self.access_log():
            if entry.get("proto") == "http" and entry.get("service") == "git-receive-pack":
                count += 1
            elif entry.get("proto") == "ssh" and str(entry.get("command", "")).startswith("git-receive-pack"):
                count += 1
        return count

    def assert_rejected_for_secret(self, run: Run, *, commit: str, place: str, secret: str) -> None:
        self.assertNotEqual(run.returncode, 0, run.output)
        self.assertIn("push rejected", run.stderr)
        self.assertIn("nothing was sent upstream", run.stderr)
        self.assertRegex(run.stderr, rf"commit {commit[:12]}: {re.escape(place)}: detector \S+")
        self.assertNotIn(secret, run.output)

    # -- scenarios ----------------------------------------------------------------------------
    def test_clone_fetch_and_ls_remote_through_the_real_urls(self) -> None:
        for repo, url in self.repo_urls.items():
            with self.subTest(repo=repo):
                folder = f"clone-{repo}"
                self.clone(repo, folder)
                run = self.in_clone(folder, "git rev-parse --abbrev-ref HEAD && cat README.md && git config remote.origin.url"
                                    " && git fetch -q && git pull -q && git config user.email")
                self.assertEqual(run.returncode, 0, run.output)
                lines = run.stdout.splitlines()
                self.assertEqual(lines[0], "main")
                self.assertIn(f"# {repo}", lines)
                self.assertIn(url, lines)
                self.assertEqual(lines[-1], USER["email"])
                listing = self.agent(f"git ls-remote {shlex.quote(url)}")
                self.assertEqual(listing.returncode, 0, listing.output)
                self.assertEqual(
                    {line.split()[1] for line in listing.stdout.splitlines()} >= {"refs/heads/main", "refs/heads/legacy"},
                    True, listing.stdout,
                )
                self.clone(repo, f"partial-{repo}", "--filter=blob:none")
                self.assertEqual(self.in_clone(f"partial-{repo}", "git log -p -1 >/dev/null").returncode, 0)

    def test_clean_push_lands_upstream(self) -> None:
        for repo in self.repo_urls:
            with self.subTest(repo=repo):
                folder = f"clean-{repo}"
                self.clone(repo, folder)
                run = self.in_clone(folder, "git checkout -q -b feature-clean && echo 'hello' > hello.txt && git add hello.txt"
                                    " && git commit -q -m 'add hello' && git push -q -u origin feature-clean"
                                    " && echo more >> hello.txt && git commit -q -am 'more hello' && git push origin feature-clean"
                                    " && git rev-parse HEAD")
                self.assertEqual(run.returncode, 0, run.output)
                head = run.stdout.split()[-1]
                self.assertEqual(self.upstream_refs(repo).get("refs/heads/feature-clean"), head)
                self.assertIn("refs/heads/feature-clean", run.stderr)  # the upstream's result

    def test_a_large_push_and_clone_stream_through(self) -> None:
        # Over 1 MiB git sends the request body chunked; the answer is streamed back.
        for repo in self.repo_urls:
            with self.subTest(repo=repo):
                folder = f"large-{repo}"
                self.clone(repo, folder)
                run = self.in_clone(folder, "git checkout -q -b large && head -c 3000000 /dev/urandom > blob.bin"
                                    " && git add blob.bin && git commit -q -m blob && git push -q origin large"
                                    " && git rev-parse HEAD")
                self.assertEqual(run.returncode, 0, run.output)
                self.assertEqual(self.upstream_refs(repo)["refs/heads/large"], run.stdout.split()[-1])
                again = self.agent(f"rm -rf {folder}-again && git clone -q -b large {shlex.quote(self.repo_urls[repo])}"
                                   f" {folder}-again && cmp {folder}/blob.bin {folder}-again/blob.bin")
                self.assertEqual(again.returncode, 0, again.output)

    def test_pushes_adding_secrets_are_rejected_before_the_upstream(self) -> None:
        cases = [
            # (name, script creating the commit(s), place in the message, secret)
            ("aws-key-in-file", f"mkdir -p conf && printf 'region=eu\\nkey={FAKE_AWS_KEY}\\n' > conf/aws.ini && git add conf"
             " && git commit -q -m 'aws config'", "file conf/aws.ini line 2", FAKE_AWS_KEY),
            ("github-token-in-file", f"printf 'a\\nb\\nc\\ntoken: {FAKE_GITHUB_TOKEN}\\n' > ci.yml && git add ci.yml"
             " && git commit -q -m 'ci'", "file ci.yml line 4", FAKE_GITHUB_TOKEN),
            ("private-key-in-file", f"printf '%s' {shlex.quote(FAKE_PRIVATE_KEY)} > deploy_key && git add deploy_key"
             " && git commit -q -m 'deploy key'", "file deploy_key line 1", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE"),
            ("token-in-commit-message", f"git commit -q --allow-empty -m 'fix ci' -m 'used {FAKE_SLACK_TOKEN} to test'",
             "commit message line 3", FAKE_SLACK_TOKEN),
        ]
        for repo in self.repo_urls:
            folder = f"secret-{repo}"
            self.clone(repo, folder)
            for name, script, place, secret in cases:
                with self.subTest(repo=repo, case=name):
                    before_refs, before_pushes = self.upstream_refs(repo), self.receive_packs()
                    made = self.in_clone(folder, f"git checkout -q main && git reset -q --hard origin/main && {script}"
                                         " && git rev-parse HEAD")
                    self.assertEqual(made.returncode, 0, made.output)
                    commit = made.stdout.split()[-1]
                    run = self.in_clone(folder, "git push origin main")
                    self.assert_rejected_for_secret(run, commit=commit, place=place, secret=secret)
                    self.assertEqual(self.upstream_refs(repo), before_refs)
                    self.assertEqual(self.receive_packs(), before_pushes)
            with self.subTest(repo=repo, case="file-on-new-branch-under-a-clean-tip"):
                before_refs, before_pushes = self.upstream_refs(repo), self.receive_packs()
                made = self.in_clone(folder, "git checkout -q -b new-with-secret origin/main"
                                     f" && mkdir -p src && printf 'API = \"{FAKE_GITHUB_TOKEN}\"\\n' > src/settings.py"
                                     " && git add src && git commit -q -m 'settings' && git rev-parse HEAD"
                                     " && echo ok > ok.txt && git add ok.txt && git commit -q -m 'clean tip'")
                self.assertEqual(made.returncode, 0, made.output)
                run = self.in_clone(folder, "git push -u origin new-with-secret")
                self.assert_rejected_for_secret(run, commit=made.stdout.split()[-1], place="file src/settings.py line 1",
                                                secret=FAKE_GITHUB_TOKEN)
                self.assertNotIn("refs/heads/new-with-secret", self.upstream_refs(repo))
                self.assertEqual(self.upstream_refs(repo), before_refs)
                self.assertEqual(self.receive_packs(), before_pushes)
        log = self.gate_log()
        for secret in (*ALL_FAKE_SECRETS, *self.credential_values()):
            self.assertNotIn(secret, log)
        self.assertIn('"result": "rejected"', log)
        # The gate scans with the shared DLP engine, always (the image is built from this tree).
        self.assertIn('"detector": "dlp-engine"', log)

    def test_deleting_a_branch_is_forwarded(self) -> None:
        for repo, url in self.repo_urls.items():
            with self.subTest(repo=repo):
                self.assertIn("refs/heads/to-delete", self.upstream_refs(repo))
                folder = f"delete-{repo}"
                self.clone(repo, folder)
                run = self.in_clone(folder, "git push origin --delete to-delete")
                self.assertEqual(run.returncode, 0, run.output)
                self.assertNotIn("refs/heads/to-delete", self.upstream_refs(repo))
                listing = self.agent(f"git ls-remote {shlex.quote(url)}")
                self.assertNotIn("refs/heads/to-delete", listing.stdout)

    def test_a_deleted_branch_the_agent_still_holds_is_never_acknowledged(self) -> None:
        # The agent's next fetch names the commit of a branch deleted upstream as a "have": the gate
        # answers as if the mirror lacked it (no "ACK": whether it exists is not told), and the
        # fetch still negotiates and completes.
        for repo in self.repo_urls:
            with self.subTest(repo=repo):
                folder = f"hidden-have-{repo}"
                self.clone(repo, folder)
                run = self.in_clone(folder, "git checkout -q -b gone-have && echo gone > gone.txt && git add gone.txt"
                                    " && git commit -q -m gone && git push -q origin gone-have"
                                    " && git push -q origin --delete gone-have && git rev-parse HEAD")
                self.assertEqual(run.returncode, 0, run.output)
                gone = run.stdout.split()[-1]
                self.clone(repo, f"{folder}-other")
                run = self.in_clone(f"{folder}-other", "git checkout -q -b after-gone && echo next > next.txt"
                                    " && git add next.txt && git commit -q -m next && git push -q origin after-gone"
                                    " && git rev-parse HEAD")
                self.assertEqual(run.returncode, 0, run.output)
                after = run.stdout.split()[-1]
                run = self.in_clone(folder, f"GIT_TRACE_PACKET=$PWD/.git/trace git fetch -q origin"
                                    f" && git rev-parse origin/after-gone && grep -c 'have {gone}' .git/trace;"
                                    f" grep -c 'ACK {gone}' .git/trace; true")
                self.assertEqual(run.returncode, 0, run.output)
                lines = run.stdout.split()
                self.assertEqual(lines[0], after, run.output)
                self.assertGreaterEqual(int(lines[1]), 1, "the fetch named no hidden commit: the test proves nothing")
                self.assertEqual(lines[2], "0", run.output)

    def test_force_push_over_history_with_an_old_secret_is_accepted(self) -> None:
        for repo in self.repo_urls:
            with self.subTest(repo=repo):
                folder = f"force-{repo}"
                self.clone(repo, folder)
                # legacy~1 is the commit that added the (old, published) key: its tree holds it.
                run = self.in_clone(folder, "git checkout -q legacy && git reset -q --hard HEAD~1"
                                    " && grep -q AKIA config/legacy.env && echo fixed > NOTES && git add NOTES"
                                    " && git commit -q -m 'rework' && git push --force origin legacy && git rev-parse HEAD")
                self.assertEqual(run.returncode, 0, run.output)
                self.assertIn("forced update", run.stderr)
                self.assertEqual(self.upstream_refs(repo)["refs/heads/legacy"], run.stdout.split()[-1])

    def test_upstream_rejection_is_the_pushes_result(self) -> None:
        for repo in self.repo_urls:
            with self.subTest(repo=repo):
                folder = f"protected-{repo}"
                self.clone(repo, folder)
                before = self.upstream_refs(repo)["refs/heads/protected"]
                run = self.in_clone(folder, "git checkout -q protected && echo x > x.txt && git add x.txt"
                                    " && git commit -q -m x && git push origin protected")
                self.assertNotEqual(run.returncode, 0, run.output)
                self.assertIn("protected branch: changes to it go through review", run.stderr)
                self.assertIn("[remote rejected]", run.stderr)
                self.assertEqual(self.upstream_refs(repo)["refs/heads/protected"], before)
                # The mirror did not take what the upstream refused: a fresh listing agrees.
                listing = self.agent(f"git ls-remote {shlex.quote(self.repo_urls[repo])} refs/heads/protected")
                self.assertEqual(listing.stdout.split()[0], before)

    def test_zz_upstream_down_fails_fast_with_a_clear_message(self) -> None:
        # Named to run last in its class: it stops the upstream (and starts it again).
        self._fails_fast_while(self.stop_upstream, self.start_upstream, "down")

    def test_zz_upstream_hung_fails_fast_with_a_clear_message(self) -> None:
        self._fails_fast_while(lambda: self.hang_upstream(True), lambda: self.hang_upstream(False), "hung")

    def _fails_fast_while(self, break_it, repair_it, tag: str) -> None:
        folders = {}
        for repo in self.repo_urls:
            folders[repo] = f"{tag}-{repo}"
            self.clone(repo, folders[repo])
            prepared = self.in_clone(folders[repo], f"git checkout -q -b while-{tag} && echo y > y.txt && git add y.txt"
                                     " && git commit -q -m y")
            self.assertEqual(prepared.returncode, 0, prepared.output)
        break_it()
        # What the upstream last said is reused for FRESH_FOR seconds (the agent cannot make the
        # gate ask it more often): past that, the next fetch or push asks, and fails closed.
        time.sleep(FRESH_FOR + 0.5)
        try:
            for repo in self.repo_urls:
                for what, script in (("fetch", "git fetch origin"), ("push", f"git push origin while-{tag}")):
                    with self.subTest(repo=repo, what=what):
                        run = self.in_clone(folders[repo], script)
                        self.assertNotEqual(run.returncode, 0, run.output)
                        self.assertIn(f"fatal: remote error: upstream {repo} unreachable", run.stderr)
                        self.assertLess(run.seconds, FAIL_FAST_SECONDS, f"{what} took {run.seconds:.1f} s")
        finally:
            repair_it()
        time.sleep(FRESH_FOR + 0.5)  # the failure, too, is the answer for that long
        for repo in self.repo_urls:
            run = self.in_clone(folders[repo], f"git fetch origin && git push -q origin while-{tag}")
            self.assertEqual(run.returncode, 0, run.output)

def parse_access_log(text: str) -> list[dict]:
    entries = []
    for line in text.splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return entries


def load_tests(loader: unittest.TestLoader, tests: unittest.TestSuite, pattern: str | None) -> unittest.TestSuite:
    """The base class is not a test of its own."""
    return unittest.TestSuite()
